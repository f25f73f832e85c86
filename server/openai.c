/* openai.c - OpenAI's request and response formats (see openai.h): request bodies are
 * parsed with cJSON and checked field by field with OpenAI's own error messages and codes;
 * responses are assembled with cJSON, but every string and float is written by this file
 * (as cJSON "raw" nodes), because cJSON copies string bytes verbatim and token text may be
 * partial or invalid UTF-8, and it prints floats with 17 digits. */
#include "openai.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define API_IRE "invalid_request_error"

/* ---------------------------------------------------------------- errors */

int api_fail(api_error *err, int status, const char *type, const char *code, const char *param,
             const char *fmt, ...) {
    if (!err) return -1;
    err->status = status;
    err->type = type ? type : API_IRE;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------ JSON text output */

/* A growing byte buffer; an allocation failure is remembered and reported once at the end,
 * so writers need not check every append. */
typedef struct api_buf {
    char *p;
    size_t len, cap;
    bool oom;
} api_buf;

static void api_buf_put(api_buf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void api_buf_str(api_buf *b, const char *s) {
    api_buf_put(b, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0 when the bytes there are not one. */
static size_t api_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2 || c > 0xF4) return 0;
    size_t need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
    if (c == 0xED && s[1] > 0x9F) return 0; /* UTF-16 surrogate */
    if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && s[1] > 0x8F) return 0; /* above U+10FFFF */
    return need;
}

/* Appends s[0..n) as a JSON string literal. A byte that does not start a well-formed UTF-8
 * sequence becomes U+FFFD, so the output is valid JSON whatever the input; U+2028/2029 are
 * escaped because JavaScript string literals cannot hold them raw. */
static void api_buf_quote(api_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    if (!s) n = 0;
    api_buf_put(b, "\"", 1);
    size_t i = 0;
    while (i < n && !b->oom) {
        size_t run = i; /* a run of bytes that need no escaping is copied at once */
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\') run++;
        if (run > i) {
            api_buf_put(b, u + i, run - i);
            i = run;
            continue;
        }
        unsigned c = u[i];
        if (c < 0x80) {
            char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
            size_t el = 2;
            switch (c) {
            case '"':
                esc[1] = '"';
                break;
            case '\\':
                esc[1] = '\\';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
            api_buf_put(b, esc, el);
            i++;
            continue;
        }
        size_t sl = api_utf8_seq(u + i, n - i);
        if (sl == 0) {
            api_buf_put(b, "\xEF\xBF\xBD", 3);
            i++;
        } else if (sl == 3 && u[i] == 0xE2 && u[i + 1] == 0x80 && (u[i + 2] & 0xFE) == 0xA8) {
            api_buf_str(b, u[i + 2] == 0xA8 ? "\\u2028" : "\\u2029");
            i += 3;
        } else {
            api_buf_put(b, u + i, sl);
            i += sl;
        }
    }
    api_buf_put(b, "\"", 1);
}

/* The shortest decimal that reads back as the same float (at most 9 digits). Values that
 * are not finite, or below OpenAI's floor of -9999, are written as -9999.0: JSON has no
 * -Infinity, and -9999.0 is what OpenAI reports for improbable tokens. */
static void api_fmt_logprob(float f, char out[32]) {
    if (!isfinite(f) || f < -9999.0f) f = -9999.0f;
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)f);
        if (strtof(out, NULL) == f) break;
    }
    for (char *p = out; *p; p++)
        if (*p == ',') *p = '.'; /* a locale with a decimal comma must not break JSON */
}

/* The shortest decimal that reads back as the same double, for error messages. */
static void api_fmt_double(double d, char out[40]) {
    if (!isfinite(d)) {
        snprintf(out, 40, "%s", d > 0 ? "a number too large" : "a number too small");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d) break;
    }
}

/* A raw cJSON node holding the buffer's text; frees the buffer. NULL on allocation failure. */
static cJSON *api_buf_raw(api_buf *b) {
    cJSON *j = b->oom || !b->p ? NULL : cJSON_CreateRaw(b->p);
    free(b->p);
    b->p = NULL;
    return j;
}

static cJSON *api_str(const char *s, size_t n) {
    api_buf b = {0};
    api_buf_quote(&b, s, n);
    return api_buf_raw(&b);
}

static cJSON *api_cstr(const char *s) {
    return api_str(s, s ? strlen(s) : 0);
}

static cJSON *api_int(int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateRaw(buf);
}

static cJSON *api_logprob(float f) {
    char buf[32];
    api_fmt_logprob(f, buf);
    return cJSON_CreateRaw(buf);
}

/* The token's bytes as a JSON array of integers: the true bytes, even where `token` had to
 * show U+FFFD. */
static cJSON *api_bytes(const char *s, size_t n) {
    api_buf b = {0};
    api_buf_put(&b, "[", 1);
    for (size_t i = 0; s && i < n && !b.oom; i++) {
        char num[8];
        int l = snprintf(num, sizeof num, i ? ",%u" : "%u", (unsigned)(unsigned char)s[i]);
        api_buf_put(&b, num, (size_t)l);
    }
    api_buf_put(&b, "]", 1);
    return api_buf_raw(&b);
}

/* Adds item to obj under a literal key; false (and item freed) when anything is missing. */
static bool api_add(cJSON *obj, const char *key, cJSON *item) {
    if (!obj || !item) {
        cJSON_Delete(item);
        return false;
    }
    if (!cJSON_AddItemToObjectCS(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static bool api_push(cJSON *arr, cJSON *item) {
    if (!arr || !item) {
        cJSON_Delete(item);
        return false;
    }
    if (!cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* Prints and frees root; NULL when building failed (ok false) or printing ran out of memory. */
static char *api_finish(cJSON *root, bool ok) {
    char *out = ok && root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return out;
}

char *api_error_body(const api_error *err) {
    if (!err) return NULL;
    const char *type = err->type ? err->type : err->status >= 500 ? "server_error" : API_IRE;
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_CreateObject();
    bool ok = api_add(root, "error", e);
    ok = ok &&
         api_add(e, "message", api_str(err->message, strnlen(err->message, sizeof err->message)));
    ok = ok && api_add(e, "type", api_cstr(type));
    size_t plen = strnlen(err->param, sizeof err->param);
    ok = ok && api_add(e, "param", plen ? api_str(err->param, plen) : cJSON_CreateNull());
    ok = ok && api_add(e, "code", err->code ? api_cstr(err->code) : cJSON_CreateNull());
    return api_finish(root, ok);
}

/* -------------------------------------------------------- request parsing */

typedef struct api_parse {
    const cJSON *body;
    api_request *req;
    api_error *err;
    int64_t vocab_size;
} api_parse;

static bool api_integral(double d) {
    return isfinite(d) && floor(d) == d;
}

/* The words OpenAI uses for a JSON value's type ("an integer", "a decimal", "null"...). */
static const char *api_type_name(const cJSON *v) {
    if (!v || cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return api_integral(v->valuedouble) ? "an integer" : "a decimal";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "an unknown value";
}

static int api_bad_type(api_error *err, const char *param, const char *want, const cJSON *got) {
    return api_fail(err, 400, API_IRE, "invalid_type", param,
                    "Invalid type for '%s': expected %s, but got %s instead.", param, want,
                    api_type_name(got));
}

static int api_missing(api_error *err, const char *param) {
    return api_fail(err, 400, API_IRE, "missing_required_parameter", param,
                    "Missing required parameter: '%s'.", param);
}

static int api_unsupported(api_error *err, const char *param) {
    return api_fail(err, 400, API_IRE, "unsupported_parameter", param,
                    "Unsupported parameter: '%s' is not supported yet by this server.", param);
}

/* A member of obj; JSON null counts as absent, as OpenAI treats null optional fields. */
static const cJSON *api_field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* Each checker returns 0 when v (may be NULL = absent) is absent, 1 when it set *out, and
 * -1 with err filled when v is wrong. */
static int api_get_number(const cJSON *v, const char *param, double lo, bool lo_open, double hi,
                          double *out, api_error *err) {
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return api_bad_type(err, param, "a decimal", v);
    double d = v->valuedouble;
    char got[40];
    api_fmt_double(d, got);
    if (!isfinite(d) || d > hi) {
        char lim[40];
        api_fmt_double(hi, lim);
        return api_fail(err, 400, API_IRE, "decimal_above_max_value", param,
                        "Invalid '%s': decimal above maximum value. Expected a value <= %s, but "
                        "got %s instead.",
                        param, lim, got);
    }
    if (d < lo || (lo_open && d == lo)) {
        char lim[40];
        api_fmt_double(lo, lim);
        return api_fail(err, 400, API_IRE, "decimal_below_min_value", param,
                        "Invalid '%s': decimal below minimum value. Expected a value %s %s, but "
                        "got %s instead.",
                        param, lo_open ? ">" : ">=", lim, got);
    }
    *out = d;
    return 1;
}

static int api_get_int(const cJSON *v, const char *param, int64_t lo, int64_t hi, int64_t *out,
                       api_error *err) {
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !api_integral(v->valuedouble))
        return api_bad_type(err, param, "an integer", v);
    double d = v->valuedouble;
    char got[40];
    api_fmt_double(d, got);
    /* compared as doubles first: converting an out-of-range double to int64_t is undefined */
    bool above = d >= 9223372036854775808.0, below = d < -9223372036854775808.0;
    if (!above && !below) {
        above = (int64_t)d > hi;
        below = (int64_t)d < lo;
    }
    if (above)
        return api_fail(err, 400, API_IRE, "integer_above_max_value", param,
                        "Invalid '%s': integer above maximum value. Expected a value <= %" PRId64
                        ", but got %s instead.",
                        param, hi, got);
    if (below)
        return api_fail(err, 400, API_IRE, "integer_below_min_value", param,
                        "Invalid '%s': integer below minimum value. Expected a value >= %" PRId64
                        ", but got %s instead.",
                        param, lo, got);
    *out = (int64_t)d;
    return 1;
}

static int api_get_bool(const cJSON *v, const char *param, bool *out, api_error *err) {
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return api_bad_type(err, param, "a boolean", v);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int api_get_string(const cJSON *v, const char *param, const char **out, api_error *err) {
    if (!v) return 0;
    if (!cJSON_IsString(v) || !v->valuestring) return api_bad_type(err, param, "a string", v);
    *out = v->valuestring;
    return 1;
}

static int api_get_object(const cJSON *v, const char *param, api_error *err) {
    if (!v) return 0;
    if (!cJSON_IsObject(v)) return api_bad_type(err, param, "an object", v);
    return 1;
}

static int api_oom(api_error *err) {
    return api_fail(err, 500, "server_error", NULL, NULL,
                    "The server ran out of memory while reading the request.");
}

static char *api_strdup(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* Duplicates a string field into *dst; same return convention as the checkers. */
static int api_dup_string(const cJSON *v, const char *param, char **dst, api_error *err) {
    const char *s = "";
    int r = api_get_string(v, param, &s, err);
    if (r <= 0) return r;
    if (!(*dst = api_strdup(s))) return api_oom(err);
    return 1;
}

typedef enum api_field_use {
    API_USE_COMMON,
    API_USE_CHAT,
    API_USE_COMPLETION,
} api_field_use;

/* Every top-level field either endpoint knows. Fields accepted only to be refused by name
 * (functions, audio...) are listed too, so that they get "not supported yet" rather than
 * "unrecognized". */
static const struct {
    const char *name;
    api_field_use use;
} api_fields[] = {
    {"model", API_USE_COMMON},
    {"stream", API_USE_COMMON},
    {"stream_options", API_USE_COMMON},
    {"max_tokens", API_USE_COMMON},
    {"temperature", API_USE_COMMON},
    {"top_p", API_USE_COMMON},
    {"n", API_USE_COMMON},
    {"stop", API_USE_COMMON},
    {"presence_penalty", API_USE_COMMON},
    {"frequency_penalty", API_USE_COMMON},
    {"logit_bias", API_USE_COMMON},
    {"logprobs", API_USE_COMMON},
    {"seed", API_USE_COMMON},
    {"user", API_USE_COMMON},
    {"top_k", API_USE_COMMON},
    {"min_p", API_USE_COMMON},
    {"repetition_penalty", API_USE_COMMON},
    {"messages", API_USE_CHAT},
    {"max_completion_tokens", API_USE_CHAT},
    {"top_logprobs", API_USE_CHAT},
    {"metadata", API_USE_CHAT},
    {"store", API_USE_CHAT},
    {"service_tier", API_USE_CHAT},
    {"safety_identifier", API_USE_CHAT},
    {"prompt_cache_key", API_USE_CHAT},
    {"prompt_cache_retention", API_USE_CHAT},
    {"chat_template_kwargs", API_USE_CHAT},
    {"tools", API_USE_CHAT},
    {"tool_choice", API_USE_CHAT},
    {"parallel_tool_calls", API_USE_CHAT},
    {"functions", API_USE_CHAT},
    {"function_call", API_USE_CHAT},
    {"response_format", API_USE_CHAT},
    {"audio", API_USE_CHAT},
    {"modalities", API_USE_CHAT},
    {"prediction", API_USE_CHAT},
    {"web_search_options", API_USE_CHAT},
    {"reasoning_effort", API_USE_CHAT},
    {"verbosity", API_USE_CHAT},
    {"prompt", API_USE_COMPLETION},
    {"echo", API_USE_COMPLETION},
    {"suffix", API_USE_COMPLETION},
    {"best_of", API_USE_COMPLETION},
};

static int api_check_unknown(api_parse *p) {
    for (const cJSON *f = p->body->child; f; f = f->next) {
        const char *key = f->string ? f->string : "";
        bool known = false;
        for (size_t i = 0; i < sizeof api_fields / sizeof api_fields[0] && !known; i++)
            known = strcmp(key, api_fields[i].name) == 0 &&
                    (api_fields[i].use == API_USE_COMMON ||
                     api_fields[i].use ==
                         (p->req->kind == API_CHAT ? API_USE_CHAT : API_USE_COMPLETION));
        if (!known)
            return api_fail(p->err, 400, API_IRE, NULL, key,
                            "Unrecognized request argument supplied: %s", key);
    }
    return 0;
}

/* Joins the text parts of an array content with newlines, the way most chat servers feed
 * multi-part text to a chat template. */
static int api_parse_parts(const cJSON *arr, size_t mi, char **out, api_error *err) {
    char param[96];
    size_t total = 0, j = 0;
    for (const cJSON *part = arr->child; part; part = part->next, j++) {
        if (!cJSON_IsObject(part)) {
            snprintf(param, sizeof param, "messages[%zu].content[%zu]", mi, j);
            return api_bad_type(err, param, "an object", part);
        }
        snprintf(param, sizeof param, "messages[%zu].content[%zu].type", mi, j);
        const cJSON *type = api_field(part, "type");
        const char *t = "";
        if (!type) return api_missing(err, param);
        if (api_get_string(type, param, &t, err) < 0) return -1;
        if (strcmp(t, "text") != 0) {
            static const char *const openai_types[] = {"image_url", "input_audio", "file",
                                                       "refusal", "audio"};
            for (size_t k = 0; k < sizeof openai_types / sizeof openai_types[0]; k++)
                if (strcmp(t, openai_types[k]) == 0)
                    return api_fail(err, 400, API_IRE, "unsupported_value", param,
                                    "Unsupported value: '%s' does not support '%s' with this "
                                    "server. Only 'text' content parts are supported.",
                                    param, t);
            return api_fail(err, 400, API_IRE, "invalid_value", param,
                            "Invalid value: '%s'. Supported values are: 'text'.", t);
        }
        snprintf(param, sizeof param, "messages[%zu].content[%zu].text", mi, j);
        const cJSON *text = api_field(part, "text");
        const char *s = "";
        if (!text) return api_missing(err, param);
        if (api_get_string(text, param, &s, err) < 0) return -1;
        total += strlen(s) + 1;
    }
    char *buf = malloc(total + 1);
    if (!buf) return api_oom(err);
    size_t len = 0;
    for (const cJSON *part = arr->child; part; part = part->next) {
        const char *s = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        size_t n = strlen(s);
        if (len) buf[len++] = '\n';
        memcpy(buf + len, s, n);
        len += n;
    }
    buf[len] = 0;
    *out = buf;
    return 0;
}

/* Content: a string, an array of text parts, or (assistant with tool_calls) null/absent. */
static int api_parse_content(const cJSON *m, size_t mi, api_message *msg, api_error *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", mi);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!c || cJSON_IsNull(c)) {
        if (strcmp(msg->role, "assistant") == 0 && msg->tool_calls) return 0;
        if (!c) return api_missing(err, param);
        return api_bad_type(err, param, "one of a string or array of objects", c);
    }
    if (cJSON_IsString(c) && c->valuestring) {
        if (!(msg->content = api_strdup(c->valuestring))) return api_oom(err);
        return 0;
    }
    if (cJSON_IsArray(c)) return api_parse_parts(c, mi, &msg->content, err);
    return api_bad_type(err, param, "one of a string or array of objects", c);
}

static int api_parse_message(const cJSON *m, size_t mi, api_message *msg, api_error *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu]", mi);
    if (!cJSON_IsObject(m)) return api_bad_type(err, param, "an object", m);

    snprintf(param, sizeof param, "messages[%zu].role", mi);
    const cJSON *role = api_field(m, "role");
    const char *r = "";
    if (!role) return api_missing(err, param);
    if (api_get_string(role, param, &r, err) < 0) return -1;
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    bool valid = false;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) valid |= strcmp(r, roles[i]) == 0;
    if (!valid && strcmp(r, "function") == 0)
        return api_fail(err, 400, API_IRE, "unsupported_value", param,
                        "Unsupported value: '%s' does not support 'function' with this server. "
                        "Use 'tool' messages instead.",
                        param);
    if (!valid)
        return api_fail(err, 400, API_IRE, "invalid_value", param,
                        "Invalid value: '%s'. Supported values are: 'system', 'developer', "
                        "'user', 'assistant', and 'tool'.",
                        r);
    if (!(msg->role = api_strdup(r))) return api_oom(err);

    snprintf(param, sizeof param, "messages[%zu].name", mi);
    if (api_dup_string(api_field(m, "name"), param, &msg->name, err) < 0) return -1;

    if (strcmp(r, "assistant") == 0) {
        snprintf(param, sizeof param, "messages[%zu].tool_calls", mi);
        const cJSON *tc = api_field(m, "tool_calls");
        if (tc && !cJSON_IsArray(tc)) return api_bad_type(err, param, "an array", tc);
        if (tc && !tc->child)
            return api_fail(err, 400, API_IRE, "empty_array", param,
                            "Invalid '%s': empty array. Expected an array with minimum length 1, "
                            "but got an empty array instead.",
                            param);
        if (tc && !(msg->tool_calls = cJSON_Duplicate(tc, 1))) return api_oom(err);
    }
    if (strcmp(r, "tool") == 0) {
        snprintf(param, sizeof param, "messages[%zu].tool_call_id", mi);
        const cJSON *id = api_field(m, "tool_call_id");
        if (!id) return api_missing(err, param);
        if (api_dup_string(id, param, &msg->tool_call_id, err) < 0) return -1;
    }
    return api_parse_content(m, mi, msg, err);
}

static int api_parse_messages(api_parse *p) {
    const cJSON *msgs = api_field(p->body, "messages");
    if (!msgs) return api_missing(p->err, "messages");
    if (!cJSON_IsArray(msgs)) return api_bad_type(p->err, "messages", "an array", msgs);
    size_t n = (size_t)cJSON_GetArraySize(msgs);
    if (n == 0)
        return api_fail(p->err, 400, API_IRE, "empty_array", "messages",
                        "Invalid 'messages': empty array. Expected an array with minimum length "
                        "1, but got an empty array instead.");
    if (!(p->req->messages = calloc(n, sizeof *p->req->messages))) return api_oom(p->err);
    size_t i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        p->req->n_messages = i + 1; /* so api_request_free sees what was filled so far */
        if (api_parse_message(m, i, &p->req->messages[i], p->err) < 0) return -1;
    }
    return 0;
}

static int api_check_token(api_parse *p, double d, const char *param) {
    int64_t limit = p->vocab_size > 0 ? p->vocab_size : INT32_MAX;
    if (d < 0 || d >= (double)limit)
        return api_fail(p->err, 400, API_IRE, "invalid_value", param,
                        "Invalid '%s': token id %.0f is out of range. Expected a value in [0, "
                        "%" PRId64 ").",
                        param, d, limit);
    return 0;
}

/* One prompt given as an array of token ids. */
static int api_parse_ids(api_parse *p, const cJSON *arr, const char *param, int32_t **ids,
                         size_t *len) {
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0)
        return api_fail(p->err, 400, API_IRE, "empty_array", param,
                        "Invalid '%s': empty array. Expected an array with minimum length 1, but "
                        "got an empty array instead.",
                        param);
    if (!(*ids = malloc(n * sizeof **ids))) return api_oom(p->err);
    size_t i = 0;
    char ep[96];
    for (const cJSON *v = arr->child; v; v = v->next, i++) {
        snprintf(ep, sizeof ep, "%s[%zu]", param, i);
        if (!cJSON_IsNumber(v) || !api_integral(v->valuedouble))
            return api_bad_type(p->err, ep, "an integer", v);
        if (api_check_token(p, v->valuedouble, ep) < 0) return -1;
        (*ids)[i] = (int32_t)v->valuedouble;
    }
    *len = n;
    return 0;
}

/* prompt: a string, an array of strings, an array of token ids, or an array of such arrays. */
static int api_parse_prompt(api_parse *p) {
    api_request *req = p->req;
    const cJSON *pr = api_field(p->body, "prompt");
    static const char *const want = "one of a string, array of strings, array of integers, or "
                                    "array of arrays of integers";
    if (!pr) return api_missing(p->err, "prompt");
    if (cJSON_IsString(pr) && pr->valuestring) {
        if (!(req->prompts = calloc(1, sizeof *req->prompts))) return api_oom(p->err);
        req->n_prompts = 1;
        if (!(req->prompts[0] = api_strdup(pr->valuestring))) return api_oom(p->err);
        return 0;
    }
    if (!cJSON_IsArray(pr)) return api_bad_type(p->err, "prompt", want, pr);
    size_t n = (size_t)cJSON_GetArraySize(pr);
    if (n == 0)
        return api_fail(p->err, 400, API_IRE, "empty_array", "prompt",
                        "Invalid 'prompt': empty array. Expected an array with minimum length 1, "
                        "but got an empty array instead.");
    const cJSON *first = pr->child;
    char param[64];
    if (cJSON_IsNumber(first)) { /* one prompt of token ids */
        if (!(req->prompt_ids = calloc(1, sizeof *req->prompt_ids)) ||
            !(req->prompt_ids_len = calloc(1, sizeof *req->prompt_ids_len)))
            return api_oom(p->err);
        req->n_prompts = 1;
        return api_parse_ids(p, pr, "prompt", &req->prompt_ids[0], &req->prompt_ids_len[0]);
    }
    if (cJSON_IsString(first)) {
        if (!(req->prompts = calloc(n, sizeof *req->prompts))) return api_oom(p->err);
        req->n_prompts = n;
        size_t i = 0;
        for (const cJSON *v = pr->child; v; v = v->next, i++) {
            snprintf(param, sizeof param, "prompt[%zu]", i);
            if (!cJSON_IsString(v) || !v->valuestring)
                return api_bad_type(p->err, param, "a string", v);
            if (!(req->prompts[i] = api_strdup(v->valuestring))) return api_oom(p->err);
        }
        return 0;
    }
    if (cJSON_IsArray(first)) {
        if (!(req->prompt_ids = calloc(n, sizeof *req->prompt_ids)) ||
            !(req->prompt_ids_len = calloc(n, sizeof *req->prompt_ids_len)))
            return api_oom(p->err);
        req->n_prompts = n;
        size_t i = 0;
        for (const cJSON *v = pr->child; v; v = v->next, i++) {
            snprintf(param, sizeof param, "prompt[%zu]", i);
            if (!cJSON_IsArray(v)) return api_bad_type(p->err, param, "an array of integers", v);
            if (api_parse_ids(p, v, param, &req->prompt_ids[i], &req->prompt_ids_len[i]) < 0)
                return -1;
        }
        return 0;
    }
    return api_bad_type(p->err, "prompt[0]", "one of a string, integer, or array of integers",
                        first);
}

/* stop: a string or up to API_MAX_STOP strings. Empty strings are dropped: they would match
 * before the first token and end every generation at once. */
static int api_parse_stop(api_parse *p) {
    const cJSON *st = api_field(p->body, "stop");
    size_t k = 0;
    if (!st) return 0;
    if (cJSON_IsString(st) && st->valuestring) {
        if (st->valuestring[0] && !(p->req->stop[k++] = api_strdup(st->valuestring)))
            return api_oom(p->err);
        return 0;
    }
    if (!cJSON_IsArray(st))
        return api_bad_type(p->err, "stop", "one of a string or array of strings", st);
    int n = cJSON_GetArraySize(st);
    if (n > API_MAX_STOP)
        return api_fail(p->err, 400, API_IRE, "array_above_max_length", "stop",
                        "Invalid 'stop': array too long. Expected an array with maximum length "
                        "%d, but got an array with length %d instead.",
                        API_MAX_STOP, n);
    int i = 0;
    for (const cJSON *v = st->child; v; v = v->next, i++) {
        char param[32];
        snprintf(param, sizeof param, "stop[%d]", i);
        if (!cJSON_IsString(v) || !v->valuestring)
            return api_bad_type(p->err, param, "a string", v);
        if (v->valuestring[0] && !(p->req->stop[k++] = api_strdup(v->valuestring)))
            return api_oom(p->err);
    }
    return 0;
}

/* A logit_bias key: a token id written in decimal digits; -1 when it is not one. */
static int64_t api_bias_key(const char *s) {
    int64_t v = 0;
    if (!s || !*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v > INT32_MAX) return INT32_MAX + (int64_t)1; /* out of every vocabulary */
    }
    return v;
}

static int api_parse_logit_bias(api_parse *p) {
    const cJSON *lb = api_field(p->body, "logit_bias");
    if (api_get_object(lb, "logit_bias", p->err) <= 0) return lb ? -1 : 0;
    size_t n = (size_t)cJSON_GetArraySize(lb);
    if (n == 0) return 0;
    if (!(p->req->logit_bias = calloc(n, sizeof *p->req->logit_bias))) return api_oom(p->err);
    for (const cJSON *e = lb->child; e; e = e->next) {
        const char *key = e->string ? e->string : "";
        int64_t id = api_bias_key(key);
        if (id < 0)
            return api_fail(p->err, 400, API_IRE, NULL, "logit_bias",
                            "Invalid key in 'logit_bias': %s. You should only be submitting "
                            "non-negative integers.",
                            key);
        if (p->vocab_size > 0 && id >= p->vocab_size)
            return api_fail(p->err, 400, API_IRE, NULL, "logit_bias",
                            "Invalid key in 'logit_bias': %s. Maximum value is %" PRId64 ".", key,
                            p->vocab_size - 1);
        if (id > INT32_MAX)
            return api_fail(p->err, 400, API_IRE, NULL, "logit_bias",
                            "Invalid key in 'logit_bias': %s. Maximum value is %d.", key,
                            INT32_MAX);
        double bias;
        if (api_get_number(e, "logit_bias", -100, false, 100, &bias, p->err) < 0) return -1;
        p->req->logit_bias[p->req->n_logit_bias++] = (api_logit_bias){(int32_t)id, (float)bias};
    }
    return 0;
}

static int api_parse_stream(api_parse *p) {
    api_request *req = p->req;
    if (api_get_bool(api_field(p->body, "stream"), "stream", &req->stream, p->err) < 0) return -1;
    const cJSON *so = api_field(p->body, "stream_options");
    int r = api_get_object(so, "stream_options", p->err);
    if (r <= 0) return r;
    if (!req->stream)
        return api_fail(p->err, 400, API_IRE, NULL, "stream_options",
                        "The 'stream_options' parameter is only allowed when 'stream' is "
                        "enabled.");
    for (const cJSON *f = so->child; f; f = f->next) {
        const char *key = f->string ? f->string : "";
        bool ignored;
        char param[160];
        snprintf(param, sizeof param, "stream_options.%s", key);
        if (strcmp(key, "include_usage") == 0) {
            if (api_get_bool(api_field(so, key), param, &req->include_usage, p->err) < 0) return -1;
        } else if (strcmp(key, "include_obfuscation") == 0) {
            /* obfuscation pads chunks against a side channel of OpenAI's; nothing to do here */
            if (api_get_bool(api_field(so, key), param, &ignored, p->err) < 0) return -1;
        } else {
            return api_fail(p->err, 400, API_IRE, NULL, param,
                            "Unrecognized request argument supplied: %s", param);
        }
    }
    return 0;
}

/* Sampling and length fields both endpoints share. */
static int api_parse_sampling(api_parse *p) {
    api_request *req = p->req;
    const cJSON *b = p->body;
    api_error *err = p->err;
    int64_t v;
    if (api_get_number(api_field(b, "temperature"), "temperature", 0, false, 2, &req->temperature,
                       err) < 0 ||
        api_get_number(api_field(b, "top_p"), "top_p", 0, false, 1, &req->top_p, err) < 0 ||
        api_get_number(api_field(b, "presence_penalty"), "presence_penalty", -2, false, 2,
                       &req->presence_penalty, err) < 0 ||
        api_get_number(api_field(b, "frequency_penalty"), "frequency_penalty", -2, false, 2,
                       &req->frequency_penalty, err) < 0 ||
        api_get_number(api_field(b, "min_p"), "min_p", 0, false, 1, &req->min_p, err) < 0 ||
        api_get_number(api_field(b, "repetition_penalty"), "repetition_penalty", 0, true, 1e9,
                       &req->repetition_penalty, err) < 0)
        return -1;
    int r = api_get_int(api_field(b, "top_k"), "top_k", 0, INT32_MAX, &v, err);
    if (r < 0) return -1;
    if (r) req->top_k = (int32_t)v;
    if ((r = api_get_int(api_field(b, "n"), "n", 1, API_MAX_N, &v, err)) < 0) return -1;
    if (r) req->n = (int)v;
    if ((r = api_get_int(api_field(b, "seed"), "seed", INT64_MIN, INT64_MAX, &v, err)) < 0)
        return -1;
    if (r) {
        req->has_seed = true;
        req->seed = (uint64_t)v;
    }

    const cJSON *mt = api_field(b, "max_tokens");
    const cJSON *mct = req->kind == API_CHAT ? api_field(b, "max_completion_tokens") : NULL;
    if (mt && mct)
        return api_fail(err, 400, API_IRE, "invalid_parameter_combination", "max_tokens",
                        "Setting 'max_tokens' and 'max_completion_tokens' at the same time is "
                        "not supported.");
    if (api_get_int(mt, "max_tokens", 1, INT64_MAX, &req->max_tokens, err) < 0 ||
        api_get_int(mct, "max_completion_tokens", 1, INT64_MAX, &req->max_tokens, err) < 0)
        return -1;

    if (api_parse_stop(p) < 0 || api_parse_logit_bias(p) < 0) return -1;
    if (api_dup_string(api_field(b, "user"), "user", &req->user, err) < 0) return -1;
    return api_parse_stream(p);
}

/* Fields this server does not implement: refused by name, except the values that ask for
 * exactly the default behaviour, which are accepted so that clients sending them work. */
static int api_parse_unsupported(api_parse *p) {
    static const char *const refused[] = {"functions",  "function_call",      "audio",
                                          "prediction", "web_search_options", "verbosity"};
    const cJSON *b = p->body;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (api_field(b, refused[i])) return api_unsupported(p->err, refused[i]);

    const cJSON *mod = api_field(b, "modalities");
    if (mod) {
        if (!cJSON_IsArray(mod)) return api_bad_type(p->err, "modalities", "an array", mod);
        for (const cJSON *m = mod->child; m; m = m->next)
            if (!cJSON_IsString(m) || strcmp(m->valuestring, "text") != 0)
                return api_unsupported(p->err, "modalities");
    }
    return 0;
}

/* Refuses a member of obj that known (NULL-terminated) does not list, the way OpenAI does
 * inside nested objects: "Unknown parameter: 'response_format.schema'." */
static int api_check_keys(const cJSON *obj, const char *prefix, const char *const *known,
                          api_error *err) {
    for (const cJSON *f = obj->child; f; f = f->next) {
        const char *key = f->string ? f->string : "";
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++) ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            char param[160];
            snprintf(param, sizeof param, "%s.%s", prefix, key);
            return api_fail(err, 400, API_IRE, "unknown_parameter", param,
                            "Unknown parameter: '%s'.", param);
        }
    }
    return 0;
}

/* A function or schema name: ^[a-zA-Z0-9_-]{1,64}$, refused with OpenAI's messages. */
static int api_check_name(const char *s, const char *param, api_error *err) {
    size_t n = strlen(s);
    if (n == 0)
        return api_fail(err, 400, API_IRE, "empty_string", param,
                        "Invalid '%s': empty string. Expected a string with minimum length 1, "
                        "but got an empty string instead.",
                        param);
    if (n > API_MAX_NAME)
        return api_fail(err, 400, API_IRE, "string_above_max_length", param,
                        "Invalid '%s': string too long. Expected a string with maximum length "
                        "%d, but got a string with length %zu instead.",
                        param, API_MAX_NAME, n);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return api_fail(err, 400, API_IRE, "invalid_value", param,
                            "Invalid '%s': string does not match pattern. Expected a string that "
                            "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                            param);
    }
    return 0;
}

/* Removes the members of obj whose value is JSON null (absent, as OpenAI reads them), so
 * that the copies a request keeps hold only values of the documented types. */
static void api_drop_nulls(cJSON *obj) {
    cJSON *f = obj ? obj->child : NULL;
    while (f) {
        cJSON *next = f->next;
        if (cJSON_IsNull(f)) cJSON_Delete(cJSON_DetachItemViaPointer(obj, f));
        f = next;
    }
}

/* One entry of tools: {"type":"function","function":{"name","description","parameters",
 * "strict"}}. The parameters schema is only checked to be an object here; whether this
 * server can enforce it is decided when its grammar is built (server/schema.c). */
static int api_parse_tool(const cJSON *t, int i, api_error *err) {
    char param[96], prefix[64];
    snprintf(prefix, sizeof prefix, "tools[%d]", i);
    if (!cJSON_IsObject(t)) return api_bad_type(err, prefix, "an object", t);

    snprintf(param, sizeof param, "%s.type", prefix);
    const cJSON *type = api_field(t, "type");
    const char *ts = "";
    if (!type) return api_missing(err, param);
    if (api_get_string(type, param, &ts, err) < 0) return -1;
    if (strcmp(ts, "custom") == 0)
        return api_fail(err, 400, API_IRE, "unsupported_value", param,
                        "Unsupported value: '%s' does not support 'custom' with this server. "
                        "Only 'function' tools are supported.",
                        param);
    if (strcmp(ts, "function") != 0)
        return api_fail(err, 400, API_IRE, "invalid_value", param,
                        "Invalid value: '%s'. Supported values are: 'function' and 'custom'.", ts);

    snprintf(param, sizeof param, "%s.function", prefix);
    const cJSON *fn = api_field(t, "function");
    if (!fn) return api_missing(err, param);
    if (api_get_object(fn, param, err) < 0) return -1;
    static const char *const tool_keys[] = {"type", "function", NULL};
    if (api_check_keys(t, prefix, tool_keys, err) < 0) return -1;

    char fprefix[80];
    snprintf(fprefix, sizeof fprefix, "%s.function", prefix);
    snprintf(param, sizeof param, "%s.name", fprefix);
    const cJSON *name = api_field(fn, "name");
    const char *s = "";
    if (!name) return api_missing(err, param);
    if (api_get_string(name, param, &s, err) < 0 || api_check_name(s, param, err) < 0) return -1;

    snprintf(param, sizeof param, "%s.description", fprefix);
    if (api_get_string(api_field(fn, "description"), param, &s, err) < 0) return -1;
    snprintf(param, sizeof param, "%s.parameters", fprefix);
    if (api_get_object(api_field(fn, "parameters"), param, err) < 0) return -1;
    bool strict;
    snprintf(param, sizeof param, "%s.strict", fprefix);
    if (api_get_bool(api_field(fn, "strict"), param, &strict, err) < 0) return -1;
    static const char *const fn_keys[] = {"name", "description", "parameters", "strict", NULL};
    return api_check_keys(fn, fprefix, fn_keys, err);
}

static int api_parse_tools(api_parse *p) {
    api_request *req = p->req;
    api_error *err = p->err;
    const cJSON *tools = api_field(p->body, "tools");
    if (!tools) return 0;
    if (!cJSON_IsArray(tools)) return api_bad_type(err, "tools", "an array", tools);
    int n = cJSON_GetArraySize(tools);
    if (n == 0)
        return api_fail(err, 400, API_IRE, "empty_array", "tools",
                        "Invalid 'tools': empty array. Expected an array with minimum length 1, "
                        "but got an empty array instead.");
    if (n > API_MAX_TOOLS)
        return api_fail(err, 400, API_IRE, "array_above_max_length", "tools",
                        "Invalid 'tools': array too long. Expected an array with maximum length "
                        "%d, but got an array with length %d instead.",
                        API_MAX_TOOLS, n);
    int i = 0;
    for (const cJSON *t = tools->child; t; t = t->next, i++)
        if (api_parse_tool(t, i, err) < 0) return -1;
    if (!(req->tools = cJSON_Duplicate(tools, 1))) return api_oom(err);
    for (cJSON *t = req->tools->child; t; t = t->next) {
        api_drop_nulls(t);
        api_drop_nulls(cJSON_GetObjectItemCaseSensitive(t, "function"));
    }
    req->tool_choice = API_TOOL_AUTO;
    return 0;
}

/* The function named name in the validated tools, or NULL. */
static const cJSON *api_find_tool(const cJSON *tools, const char *name) {
    for (const cJSON *t = tools ? tools->child : NULL; t; t = t->next) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return fn;
    }
    return NULL;
}

static int api_tool_choice_without_tools(api_error *err) {
    return api_fail(err, 400, API_IRE, NULL, "tool_choice",
                    "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                    "are specified.");
}

/* tool_choice: "none" | "auto" | "required" | {"type":"function","function":{"name"}}. Runs
 * after api_parse_tools. "none" is accepted without tools, as it asks for what happens
 * anyway. */
static int api_parse_tool_choice(api_parse *p) {
    api_request *req = p->req;
    api_error *err = p->err;
    const cJSON *tc = api_field(p->body, "tool_choice");
    if (!tc) return 0;
    if (cJSON_IsString(tc) && tc->valuestring) {
        static const struct {
            const char *name;
            api_tool_choice choice;
        } choices[] = {
            {"none", API_TOOL_NONE}, {"auto", API_TOOL_AUTO}, {"required", API_TOOL_REQUIRED}};
        for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
            if (strcmp(tc->valuestring, choices[i].name) != 0) continue;
            if (!req->tools && choices[i].choice != API_TOOL_NONE)
                return api_tool_choice_without_tools(err);
            req->tool_choice = choices[i].choice;
            return 0;
        }
        return api_fail(err, 400, API_IRE, "invalid_value", "tool_choice",
                        "Invalid value: '%s'. Supported values are: 'none', 'auto', and "
                        "'required'.",
                        tc->valuestring);
    }
    if (!cJSON_IsObject(tc))
        return api_bad_type(err, "tool_choice", "one of a string or object", tc);

    const cJSON *type = api_field(tc, "type");
    const char *ts = "";
    if (!type) return api_missing(err, "tool_choice.type");
    if (api_get_string(type, "tool_choice.type", &ts, err) < 0) return -1;
    if (strcmp(ts, "allowed_tools") == 0 || strcmp(ts, "custom") == 0)
        return api_fail(err, 400, API_IRE, "unsupported_value", "tool_choice.type",
                        "Unsupported value: 'tool_choice.type' does not support '%s' with this "
                        "server. Supported values are: 'function'.",
                        ts);
    if (strcmp(ts, "function") != 0)
        return api_fail(err, 400, API_IRE, "invalid_value", "tool_choice.type",
                        "Invalid value: '%s'. Supported values are: 'function', "
                        "'allowed_tools', and 'custom'.",
                        ts);
    const cJSON *fn = api_field(tc, "function");
    if (!fn) return api_missing(err, "tool_choice.function");
    if (api_get_object(fn, "tool_choice.function", err) < 0) return -1;
    static const char *const tc_keys[] = {"type", "function", NULL};
    if (api_check_keys(tc, "tool_choice", tc_keys, err) < 0) return -1;
    const cJSON *name = api_field(fn, "name");
    const char *s = "";
    if (!name) return api_missing(err, "tool_choice.function.name");
    if (api_get_string(name, "tool_choice.function.name", &s, err) < 0) return -1;
    static const char *const fn_keys[] = {"name", NULL};
    if (api_check_keys(fn, "tool_choice.function", fn_keys, err) < 0) return -1;

    if (!req->tools) return api_tool_choice_without_tools(err);
    if (!api_find_tool(req->tools, s))
        return api_fail(err, 400, API_IRE, "invalid_value", "tool_choice",
                        "Invalid value for 'tool_choice': function '%s' is not one of the "
                        "functions in 'tools'.",
                        s);
    if (!(req->tool_choice_name = api_strdup(s))) return api_oom(err);
    req->tool_choice = API_TOOL_NAMED;
    return 0;
}

/* response_format: {"type":"text"} | {"type":"json_object"} | {"type":"json_schema",
 * "json_schema":{"name","description","schema","strict"}}. A json_schema without a schema
 * is kept as {} (any JSON value), so a grammar can always be built from req->json_schema. */
static int api_parse_response_format(api_parse *p) {
    api_request *req = p->req;
    api_error *err = p->err;
    const cJSON *rf = api_field(p->body, "response_format");
    if (!rf) return 0;
    if (!cJSON_IsObject(rf)) return api_bad_type(err, "response_format", "an object", rf);
    const cJSON *t = api_field(rf, "type");
    const char *ts = "";
    if (!t) return api_missing(err, "response_format.type");
    if (api_get_string(t, "response_format.type", &ts, err) < 0) return -1;
    static const char *const plain_keys[] = {"type", NULL};
    if (strcmp(ts, "text") == 0 || strcmp(ts, "json_object") == 0) {
        if (api_check_keys(rf, "response_format", plain_keys, err) < 0) return -1;
        req->response_format = ts[0] == 't' ? API_FORMAT_TEXT : API_FORMAT_JSON_OBJECT;
        return 0;
    }
    if (strcmp(ts, "json_schema") != 0)
        return api_fail(err, 400, API_IRE, "invalid_value", "response_format.type",
                        "Invalid value: '%s'. Supported values are: 'text', 'json_object', and "
                        "'json_schema'.",
                        ts);

    const cJSON *js = api_field(rf, "json_schema");
    if (!js) return api_missing(err, "response_format.json_schema");
    if (api_get_object(js, "response_format.json_schema", err) < 0) return -1;
    static const char *const rf_keys[] = {"type", "json_schema", NULL};
    if (api_check_keys(rf, "response_format", rf_keys, err) < 0) return -1;
    const char *param = "response_format.json_schema.name";
    const cJSON *name = api_field(js, "name");
    const char *s = "";
    if (!name) return api_missing(err, param);
    if (api_get_string(name, param, &s, err) < 0 || api_check_name(s, param, err) < 0) return -1;
    if (api_get_string(api_field(js, "description"), "response_format.json_schema.description", &s,
                       err) < 0)
        return -1;
    const cJSON *schema = api_field(js, "schema");
    if (api_get_object(schema, "response_format.json_schema.schema", err) < 0) return -1;
    if (api_get_bool(api_field(js, "strict"), "response_format.json_schema.strict",
                     &req->json_schema_strict, err) < 0)
        return -1;
    static const char *const js_keys[] = {"name", "description", "schema", "strict", NULL};
    if (api_check_keys(js, "response_format.json_schema", js_keys, err) < 0) return -1;

    if (!(req->json_schema_name = api_strdup(name->valuestring))) return api_oom(err);
    req->json_schema = schema ? cJSON_Duplicate(schema, 1) : cJSON_CreateObject();
    if (!req->json_schema) return api_oom(err);
    req->response_format = API_FORMAT_JSON_SCHEMA;
    return 0;
}

static int api_parse_reasoning_effort(api_parse *p) {
    static const struct {
        const char *name;
        api_reasoning_effort effort;
    } efforts[] = {{"none", API_EFFORT_NONE},
                   {"minimal", API_EFFORT_MINIMAL},
                   {"low", API_EFFORT_LOW},
                   {"medium", API_EFFORT_MEDIUM},
                   {"high", API_EFFORT_HIGH}};
    const char *s = "";
    int r = api_get_string(api_field(p->body, "reasoning_effort"), "reasoning_effort", &s, p->err);
    if (r <= 0) return r;
    for (size_t i = 0; i < sizeof efforts / sizeof efforts[0]; i++)
        if (strcmp(s, efforts[i].name) == 0) {
            p->req->reasoning_effort = efforts[i].effort;
            return 0;
        }
    return api_fail(p->err, 400, API_IRE, "invalid_value", "reasoning_effort",
                    "Invalid value: '%s'. Supported values are: 'none', 'minimal', 'low', "
                    "'medium', and 'high'.",
                    s);
}

/* Tools, structured output and reasoning: the chat fields that steer what is generated. */
static int api_parse_steering(api_parse *p) {
    if (api_parse_unsupported(p) < 0 || api_parse_tools(p) < 0 || api_parse_tool_choice(p) < 0)
        return -1;
    if (api_get_bool(api_field(p->body, "parallel_tool_calls"), "parallel_tool_calls",
                     &p->req->parallel_tool_calls, p->err) < 0)
        return -1;
    if (api_parse_response_format(p) < 0) return -1;
    return api_parse_reasoning_effort(p);
}

static int api_parse_chat(api_parse *p) {
    api_request *req = p->req;
    const cJSON *b = p->body;
    api_error *err = p->err;
    if (api_parse_messages(p) < 0) return -1;
    if (api_get_bool(api_field(b, "logprobs"), "logprobs", &req->logprobs, err) < 0) return -1;
    int64_t v;
    int r = api_get_int(api_field(b, "top_logprobs"), "top_logprobs", 0, 20, &v, err);
    if (r < 0) return -1;
    if (r && !req->logprobs)
        return api_fail(err, 400, API_IRE, NULL, "top_logprobs",
                        "The 'top_logprobs' parameter is only allowed when 'logprobs' is "
                        "enabled.");
    if (r) req->top_logprobs = (int)v;
    if (api_parse_sampling(p) < 0) return -1;

    /* accepted and ignored: storage, tagging and caching hints of OpenAI's own service */
    const cJSON *md = api_field(b, "metadata");
    if (api_get_object(md, "metadata", err) < 0) return -1;
    for (const cJSON *e = md ? md->child : NULL; e; e = e->next)
        if (!cJSON_IsString(e)) return api_bad_type(err, "metadata", "a string value", e);
    bool store;
    const char *s = "";
    if (api_get_bool(api_field(b, "store"), "store", &store, err) < 0 ||
        api_get_string(api_field(b, "safety_identifier"), "safety_identifier", &s, err) < 0 ||
        api_get_string(api_field(b, "prompt_cache_key"), "prompt_cache_key", &s, err) < 0 ||
        api_get_string(api_field(b, "prompt_cache_retention"), "prompt_cache_retention", &s, err) <
            0)
        return -1;

    const char *tier = "";
    if ((r = api_get_string(api_field(b, "service_tier"), "service_tier", &tier, err)) < 0)
        return -1;
    if (r && strcmp(tier, "auto") != 0 && strcmp(tier, "default") != 0) {
        static const char *const openai_tiers[] = {"flex", "scale", "priority", "fast"};
        for (size_t i = 0; i < sizeof openai_tiers / sizeof openai_tiers[0]; i++)
            if (strcmp(tier, openai_tiers[i]) == 0)
                return api_fail(err, 400, API_IRE, "unsupported_value", "service_tier",
                                "Unsupported value: 'service_tier' does not support '%s' with "
                                "this server. Supported values are: 'auto' and 'default'.",
                                tier);
        return api_fail(err, 400, API_IRE, "invalid_value", "service_tier",
                        "Invalid value: '%s'. Supported values are: 'auto', 'default', 'flex', "
                        "'scale', and 'priority'.",
                        tier);
    }

    const cJSON *kw = api_field(b, "chat_template_kwargs");
    if (api_get_object(kw, "chat_template_kwargs", err) < 0) return -1;
    if (kw && !(req->chat_template_kwargs = cJSON_Duplicate(kw, 1))) return api_oom(err);
    return api_parse_steering(p);
}

static int api_parse_completion(api_parse *p) {
    api_request *req = p->req;
    const cJSON *b = p->body;
    api_error *err = p->err;
    if (api_parse_prompt(p) < 0) return -1;
    int64_t v;
    int r = api_get_int(api_field(b, "logprobs"), "logprobs", 0, 5, &v, err);
    if (r < 0) return -1;
    if (r) {
        req->logprobs = true;
        req->top_logprobs = (int)v;
    }
    if (api_parse_sampling(p) < 0) return -1;

    bool echo = false;
    if (api_get_bool(api_field(b, "echo"), "echo", &echo, err) < 0) return -1;
    if (echo)
        return api_fail(err, 400, API_IRE, "unsupported_value", "echo",
                        "Unsupported value: 'echo' does not support true with this server yet.");
    const char *suffix = "";
    if ((r = api_get_string(api_field(b, "suffix"), "suffix", &suffix, err)) < 0) return -1;
    if (r && suffix[0]) return api_unsupported(err, "suffix");
    if ((r = api_get_int(api_field(b, "best_of"), "best_of", 1, 20, &v, err)) < 0) return -1;
    if (r && v < req->n)
        return api_fail(err, 400, API_IRE, "invalid_value", "best_of",
                        "Invalid 'best_of': it must be greater than or equal to 'n' (%d), but "
                        "got %" PRId64 " instead.",
                        req->n, v);
    if (r && v > req->n)
        return api_fail(err, 400, API_IRE, "unsupported_value", "best_of",
                        "Unsupported value: 'best_of' must equal 'n' on this server (ranking "
                        "extra candidates is not supported yet).");
    return 0;
}

int api_parse_request(api_kind kind, const char *body, size_t len, int64_t vocab_size,
                      api_request *req, api_error *err) {
    if (!req) return api_fail(err, 500, "server_error", NULL, NULL, "No request to fill.");
    memset(req, 0, sizeof *req);
    req->kind = kind;
    req->add_generation_prompt = true; /* a chat request always asks for the next turn */
    req->temperature = 1;
    req->top_p = 1;
    req->repetition_penalty = 1;
    req->n = 1;
    req->tool_choice = API_TOOL_NONE; /* api_parse_tools makes it AUTO when tools are given */
    req->parallel_tool_calls = true;

    const char *end = NULL;
    cJSON *root = body && len ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : NULL;
    /* cJSON stops at the end of the first value; anything but whitespace after it is an
     * error too, as it is for any strict JSON reader */
    if (root && end) {
        for (const char *q = end; q < body + len; q++)
            if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
                cJSON_Delete(root);
                root = NULL;
                break;
            }
    }
    if (!root)
        return api_fail(err, 400, API_IRE, NULL, NULL,
                        "We could not parse the JSON body of your request. (HINT: This likely "
                        "means you aren't using your HTTP library correctly. The OpenAI API "
                        "expects a JSON payload, but what was sent was not valid JSON. If you "
                        "have trouble figuring out how to fix this, please contact the "
                        "administrator of this server.)");
    if (!cJSON_IsObject(root)) {
        api_fail(err, 400, API_IRE, "invalid_type", NULL,
                 "Invalid type for request body: expected an object, but got %s instead.",
                 api_type_name(root));
        cJSON_Delete(root);
        return -1;
    }

    api_parse p = {root, req, err, vocab_size};
    int rc = api_check_unknown(&p);
    if (rc == 0) {
        const cJSON *model = api_field(root, "model");
        if (model && !cJSON_IsString(model))
            rc = api_bad_type(err, "model", "a string", model);
        else if (!model || !model->valuestring || !model->valuestring[0])
            rc = api_fail(err, 400, API_IRE, "missing_required_parameter", "model",
                          "you must provide a model parameter");
        else if (!(req->model = api_strdup(model->valuestring)))
            rc = api_oom(err);
    }
    if (rc == 0) rc = kind == API_CHAT ? api_parse_chat(&p) : api_parse_completion(&p);
    cJSON_Delete(root);
    if (rc != 0) {
        api_request_free(req);
        return -1;
    }
    return 0;
}

void api_request_free(api_request *req) {
    if (!req) return;
    free(req->model);
    for (size_t i = 0; req->messages && i < req->n_messages; i++) {
        api_message *m = &req->messages[i];
        free(m->role);
        free(m->content);
        free(m->name);
        free(m->tool_call_id);
        cJSON_Delete(m->tool_calls);
    }
    free(req->messages);
    cJSON_Delete(req->chat_template_kwargs);
    for (size_t i = 0; req->prompts && i < req->n_prompts; i++) free(req->prompts[i]);
    free(req->prompts);
    for (size_t i = 0; req->prompt_ids && i < req->n_prompts; i++) free(req->prompt_ids[i]);
    free(req->prompt_ids);
    free(req->prompt_ids_len);
    for (int i = 0; i < API_MAX_STOP; i++) free(req->stop[i]);
    free(req->logit_bias);
    free(req->user);
    cJSON_Delete(req->tools);
    free(req->tool_choice_name);
    cJSON_Delete(req->json_schema);
    free(req->json_schema_name);
    memset(req, 0, sizeof *req);
}

/* -------------------------------------------------------------- responses */

/* Fills buf with n random bytes from the kernel; false when no kernel source worked. */
static bool api_random_bytes(unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, GRND_NONBLOCK);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got == n) return true;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    return got == n;
}

/* Writes n random letters and digits to out (no NUL). salt only seeds the fallback used when
 * the kernel gives no randomness: a clock-and-address hash, unique enough for ids. */
static void api_random_alnum(char *out, size_t n, uintptr_t salt) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char pool[64];
    size_t used = sizeof pool;
    struct timespec ts = {0};
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)salt ^
                 ((uint64_t)getpid() << 32);
    size_t len = 0;
    while (len < n) {
        if (used == sizeof pool) {
            if (!api_random_bytes(pool, sizeof pool))
                for (size_t i = 0; i < sizeof pool; i++) {
                    x += 0x9E3779B97F4A7C15ull; /* splitmix64 */
                    uint64_t z = x;
                    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
                    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
                    pool[i] = (unsigned char)(z ^ (z >> 31));
                }
            used = 0;
        }
        unsigned char c = pool[used++];
        if (c >= 248) continue; /* 248 = 4 * 62: keeps every character equally likely */
        out[len++] = alnum[c % 62];
    }
}

void api_meta_init(api_meta *m, api_kind kind, const char *model) {
    enum { ID_CHARS = 29 }; /* as long as OpenAI's own ids */
    if (!m) return;
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->model = model;
    m->created = (int64_t)time(NULL);
    const char *prefix = kind == API_CHAT ? "chatcmpl-" : "cmpl-";
    size_t len = strlen(prefix);
    memcpy(m->id, prefix, len);
    api_random_alnum(m->id + len, ID_CHARS, (uintptr_t)m);
    m->id[len + ID_CHARS] = 0;
}

void api_tool_call_id(char out[API_TOOL_ID_SIZE]) {
    enum { ID_CHARS = 24 }; /* as long as OpenAI's call ids */
    if (!out) return;
    memcpy(out, "call_", 5);
    api_random_alnum(out + 5, ID_CHARS, (uintptr_t)out);
    out[5 + ID_CHARS] = 0;
}

static cJSON *api_usage_obj(const api_usage *u) {
    int64_t pt = u->prompt_tokens > 0 ? u->prompt_tokens : 0;
    int64_t ct = u->completion_tokens > 0 ? u->completion_tokens : 0;
    int64_t cached = u->cached_tokens > 0 ? u->cached_tokens : 0;
    int64_t reasoning = u->reasoning_tokens > 0 ? u->reasoning_tokens : 0;
    cJSON *o = cJSON_CreateObject();
    bool ok = api_add(o, "prompt_tokens", api_int(pt));
    ok = ok && api_add(o, "completion_tokens", api_int(ct));
    ok = ok && api_add(o, "total_tokens", api_int(pt + ct));
    cJSON *pd = ok ? cJSON_CreateObject() : NULL;
    ok = ok && api_add(o, "prompt_tokens_details", pd) &&
         api_add(pd, "cached_tokens", api_int(cached));
    cJSON *cd = ok ? cJSON_CreateObject() : NULL;
    ok = ok && api_add(o, "completion_tokens_details", cd) &&
         api_add(cd, "reasoning_tokens", api_int(reasoning));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The fields every response and chunk starts with. */
static cJSON *api_envelope(const api_meta *m, const char *object) {
    cJSON *o = cJSON_CreateObject();
    bool ok = api_add(o, "id", api_cstr(m->id));
    ok = ok && api_add(o, "object", api_cstr(object));
    ok = ok && api_add(o, "created", api_int(m->created));
    ok = ok && api_add(o, "model", api_cstr(m->model ? m->model : ""));
    if (m->system_fingerprint)
        ok = ok && api_add(o, "system_fingerprint", api_cstr(m->system_fingerprint));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int api_n_top(const api_token_logprob *t) {
    return t->n_top < 0 ? 0 : t->n_top > 20 ? 20 : t->n_top;
}

/* One entry of a chat logprobs.content array. */
static cJSON *api_chat_token(const api_token_logprob *t) {
    cJSON *o = cJSON_CreateObject();
    size_t tl = t->token ? t->token_len : 0;
    bool ok = api_add(o, "token", api_str(t->token, tl));
    ok = ok && api_add(o, "logprob", api_logprob(t->logprob));
    ok = ok && api_add(o, "bytes", api_bytes(t->token, tl));
    cJSON *top = ok ? cJSON_CreateArray() : NULL;
    ok = ok && api_add(o, "top_logprobs", top);
    for (int k = 0; ok && k < api_n_top(t); k++) {
        size_t kl = t->top_token[k] ? t->top_len[k] : 0;
        cJSON *e = cJSON_CreateObject();
        ok = api_push(top, e) && api_add(e, "token", api_str(t->top_token[k], kl)) &&
             api_add(e, "logprob", api_logprob(t->top_logprob[k])) &&
             api_add(e, "bytes", api_bytes(t->top_token[k], kl));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* {"content":[...],"refusal":null} */
static cJSON *api_chat_logprobs(const api_token_logprob *lp, size_t n) {
    cJSON *o = cJSON_CreateObject();
    cJSON *content = cJSON_CreateArray();
    bool ok = api_add(o, "content", content);
    for (size_t i = 0; ok && i < n; i++) ok = api_push(content, api_chat_token(&lp[i]));
    ok = ok && api_add(o, "refusal", cJSON_CreateNull());
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The legacy completions form: parallel arrays, top_logprobs as {token: logprob} objects and
 * text_offset as byte offsets from the start of this piece of text. */
static cJSON *api_completion_logprobs(const api_token_logprob *lp, size_t n) {
    cJSON *o = cJSON_CreateObject();
    cJSON *tokens = cJSON_CreateArray(), *lps = cJSON_CreateArray();
    cJSON *tops = cJSON_CreateArray(), *offs = cJSON_CreateArray();
    bool ok = api_add(o, "tokens", tokens);
    ok = api_add(o, "token_logprobs", lps) && ok;
    ok = api_add(o, "top_logprobs", tops) && ok;
    ok = api_add(o, "text_offset", offs) && ok;
    size_t offset = 0;
    for (size_t i = 0; ok && i < n; i++) {
        const api_token_logprob *t = &lp[i];
        size_t tl = t->token ? t->token_len : 0;
        ok = api_push(tokens, api_str(t->token, tl)) && api_push(lps, api_logprob(t->logprob)) &&
             api_push(offs, api_int((int64_t)offset));
        offset += tl;
        /* written by hand: keys are token text, which cJSON would copy unescaped; two top
         * tokens that print alike (both partial UTF-8) keep only the more probable one */
        api_buf b = {0};
        api_buf_put(&b, "{", 1);
        size_t starts[20], lens[20];
        int n_keys = 0;
        for (int k = 0; k < api_n_top(t); k++) {
            size_t mark = b.len + (n_keys ? 1 : 0);
            if (n_keys) api_buf_put(&b, ",", 1);
            api_buf_quote(&b, t->top_token[k], t->top_token[k] ? t->top_len[k] : 0);
            if (b.oom) break;
            size_t klen = b.len - mark;
            bool dup = false;
            for (int d = 0; d < n_keys && !dup; d++)
                dup = lens[d] == klen && memcmp(b.p + starts[d], b.p + mark, klen) == 0;
            if (dup) {
                b.len = mark - (n_keys ? 1 : 0);
                b.p[b.len] = 0;
                continue;
            }
            char num[32];
            api_fmt_logprob(t->top_logprob[k], num);
            api_buf_put(&b, ":", 1);
            api_buf_str(&b, num);
            starts[n_keys] = mark;
            lens[n_keys++] = klen;
        }
        api_buf_put(&b, "}", 1);
        ok = api_push(tops, api_buf_raw(&b)) && ok;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The tool_calls array of a finished chat message. */
static cJSON *api_tool_calls(const api_tool_call *calls, size_t n) {
    cJSON *arr = cJSON_CreateArray();
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const api_tool_call *c = &calls[i];
        cJSON *o = cJSON_CreateObject(), *fn = NULL;
        ok = api_push(arr, o) && api_add(o, "id", api_cstr(c->id)) &&
             api_add(o, "type", api_cstr("function")) &&
             api_add(o, "function", fn = cJSON_CreateObject()) &&
             api_add(fn, "name", api_cstr(c->name)) &&
             api_add(fn, "arguments", api_str(c->arguments, c->arguments ? c->arguments_len : 0));
    }
    if (!ok) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

/* The message of a finished chat choice. */
static cJSON *api_chat_message(const api_choice *c, const api_choice_extra *x) {
    size_t tl = c->text ? c->text_len : 0;
    size_t n_calls = x && x->tool_calls ? x->n_tool_calls : 0;
    size_t rl = x && x->reasoning ? x->reasoning_len : 0;
    cJSON *msg = cJSON_CreateObject();
    bool ok = api_add(msg, "role", api_cstr("assistant"));
    /* a reply that is only tool calls has no content, as OpenAI writes it */
    ok = ok && api_add(msg, "content", n_calls && !tl ? cJSON_CreateNull() : api_str(c->text, tl));
    if (rl) ok = ok && api_add(msg, "reasoning_content", api_str(x->reasoning, rl));
    if (n_calls) ok = ok && api_add(msg, "tool_calls", api_tool_calls(x->tool_calls, n_calls));
    ok = ok && api_add(msg, "refusal", cJSON_CreateNull());
    if (!ok) {
        cJSON_Delete(msg);
        return NULL;
    }
    return msg;
}

char *api_response_body_ex(const api_meta *m, const api_choice *choices,
                           const api_choice_extra *extras, size_t n_choices,
                           const api_usage *usage) {
    if (!m || (n_choices && !choices)) return NULL;
    bool chat = m->kind == API_CHAT;
    cJSON *root = api_envelope(m, chat ? "chat.completion" : "text_completion");
    cJSON *arr = cJSON_CreateArray();
    bool ok = api_add(root, "choices", arr);
    for (size_t i = 0; ok && i < n_choices; i++) {
        const api_choice *c = &choices[i];
        size_t tl = c->text ? c->text_len : 0;
        cJSON *ch = cJSON_CreateObject();
        ok = api_push(arr, ch) && api_add(ch, "index", api_int((int64_t)i));
        if (chat)
            ok = ok && api_add(ch, "message", api_chat_message(c, extras ? &extras[i] : NULL));
        else
            ok = ok && api_add(ch, "text", api_str(c->text, tl));
        cJSON *lp = !ok            ? NULL
                    : !c->logprobs ? cJSON_CreateNull()
                    : chat         ? api_chat_logprobs(c->logprobs, c->n_logprobs)
                                   : api_completion_logprobs(c->logprobs, c->n_logprobs);
        ok = ok && api_add(ch, "logprobs", lp);
        ok = ok &&
             api_add(ch, "finish_reason", api_cstr(c->finish_reason ? c->finish_reason : "stop"));
    }
    if (usage) ok = ok && api_add(root, "usage", api_usage_obj(usage));
    return api_finish(root, ok);
}

char *api_response_body(const api_meta *m, const api_choice *choices, size_t n_choices,
                        const api_usage *usage) {
    return api_response_body_ex(m, choices, NULL, n_choices, usage);
}

/* The delta of a chat chunk. */
static cJSON *api_delta_obj(const api_delta *d) {
    size_t tl = d->text ? d->text_len : 0;
    cJSON *delta = cJSON_CreateObject();
    bool ok = delta != NULL;
    if (d->role) ok = ok && api_add(delta, "role", api_cstr(d->role));
    /* the first chunk carries the role and an empty content, as OpenAI's does (null when it
     * starts with something else); the last one, with the finish_reason, may carry nothing */
    if (d->kind == API_DELTA_CONTENT)
        ok = ok && api_add(delta, "content", api_str(d->text, tl));
    else if (d->role)
        ok = ok && api_add(delta, "content",
                           d->kind == API_DELTA_NONE ? api_str("", 0) : cJSON_CreateNull());
    if (d->kind == API_DELTA_REASONING)
        ok = ok && api_add(delta, "reasoning_content", api_str(d->text, tl));
    if (d->kind == API_DELTA_TOOL_START || d->kind == API_DELTA_TOOL_ARGS) {
        cJSON *calls = cJSON_CreateArray(), *call = NULL, *fn = NULL;
        ok = ok && api_add(delta, "tool_calls", calls) &&
             api_push(calls, call = cJSON_CreateObject()) &&
             api_add(call, "index", api_int(d->tool_index < 0 ? 0 : d->tool_index));
        if (d->kind == API_DELTA_TOOL_START)
            ok = ok && api_add(call, "id", api_cstr(d->tool_id)) &&
                 api_add(call, "type", api_cstr("function"));
        ok = ok && api_add(call, "function", fn = cJSON_CreateObject());
        if (d->kind == API_DELTA_TOOL_START) ok = ok && api_add(fn, "name", api_cstr(d->tool_name));
        ok = ok && api_add(fn, "arguments", api_str(d->text, tl));
    }
    if (!ok) {
        cJSON_Delete(delta);
        return NULL;
    }
    return delta;
}

char *api_chunk_body_delta(const api_meta *m, int index, const api_delta *d) {
    if (!m || !d) return NULL;
    bool chat = m->kind == API_CHAT;
    cJSON *root = api_envelope(m, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *arr = cJSON_CreateArray();
    bool ok = api_add(root, "choices", arr);
    cJSON *ch = ok ? cJSON_CreateObject() : NULL;
    ok = ok && api_push(arr, ch);
    ok = ok && api_add(ch, "index", api_int(index < 0 ? 0 : index));
    if (chat) {
        ok = ok && api_add(ch, "delta", api_delta_obj(d));
    } else {
        bool text = d->kind == API_DELTA_CONTENT && d->text;
        ok = ok && api_add(ch, "text", api_str(text ? d->text : "", text ? d->text_len : 0));
    }
    cJSON *lp = !ok            ? NULL
                : !d->logprobs ? cJSON_CreateNull()
                : chat         ? api_chat_logprobs(d->logprobs, d->n_logprobs)
                               : api_completion_logprobs(d->logprobs, d->n_logprobs);
    ok = ok && api_add(ch, "logprobs", lp);
    ok = ok && api_add(ch, "finish_reason",
                       d->finish_reason ? api_cstr(d->finish_reason) : cJSON_CreateNull());
    return api_finish(root, ok);
}

char *api_chunk_body(const api_meta *m, int index, const char *role, const char *text,
                     size_t text_len, const char *finish_reason, const api_token_logprob *logprobs,
                     size_t n_logprobs) {
    api_delta d = {.kind = text ? API_DELTA_CONTENT : API_DELTA_NONE,
                   .role = role,
                   .text = text,
                   .text_len = text_len,
                   .finish_reason = finish_reason,
                   .logprobs = logprobs,
                   .n_logprobs = n_logprobs};
    return api_chunk_body_delta(m, index, &d);
}

char *api_usage_chunk_body(const api_meta *m, const api_usage *usage) {
    if (!m || !usage) return NULL;
    cJSON *root =
        api_envelope(m, m->kind == API_CHAT ? "chat.completion.chunk" : "text_completion");
    bool ok = api_add(root, "choices", cJSON_CreateArray());
    ok = ok && api_add(root, "usage", api_usage_obj(usage));
    return api_finish(root, ok);
}
