/* prompt.c - from an OpenAI chat request to the token ids the model reads: the request's
 * messages become the Jinja context Hugging Face's apply_chat_template would build, the
 * model's chat template renders it, and the output is tokenized so that only markup the
 * template wrote can become control tokens (see engine/template). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/template.h"
#include "chatparse.h"
#include "server.h"

typedef struct prompt_ctx {
    char *bos_text; /* the BOS / EOS token texts, or NULL */
    char *eos_text;
    bool has_developer;   /* the template knows the developer role */
    cp_format fmt;        /* the template's tool-call syntax */
    bool renders_tools;   /* the template writes the tools itself */
    bool thinks;          /* the template knows <think> blocks (a reasoning model) */
    bool enable_thinking; /* the template reads enable_thinking */
} prompt_ctx;

static char *prompt_token_text(const tok_vocab *v, int32_t id) {
    if (id == TOK_NULL) return NULL;
    size_t n = 0;
    const char *t = tok_text(v, id, &n);
    if (!t) return NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, t, n);
        s[n] = 0;
    }
    return s;
}

int prompt_init(server *srv, char *err, size_t errlen) {
    prompt_ctx *p = calloc(1, sizeof *p);
    if (!p) return snprintf(err, errlen, "out of memory"), -1;
    srv->prompt = p;
    char *src = NULL;
    size_t len = 0;
    const char *origin = "the model file";
    if (srv->cfg->chat_template_file) {
        FILE *fp = fopen(srv->cfg->chat_template_file, "rb");
        if (!fp) return snprintf(err, errlen, "cannot read %s", srv->cfg->chat_template_file), -1;
        fseek(fp, 0, SEEK_END);
        long n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        src = n >= 0 ? malloc((size_t)n + 1) : NULL;
        if (src && fread(src, 1, (size_t)n, fp) == (size_t)n) {
            src[n] = 0;
            len = (size_t)n;
        } else {
            free(src);
            src = NULL;
        }
        fclose(fp);
        if (!src) return snprintf(err, errlen, "cannot read %s", srv->cfg->chat_template_file), -1;
        origin = srv->cfg->chat_template_file;
    } else {
        gguf_str s;
        if (gguf_get_str(srv->e->m->file, "tokenizer.chat_template", &s, NULL) == 0) {
            src = malloc(s.len + 1);
            if (!src) return snprintf(err, errlen, "out of memory"), -1;
            gguf_str_copy(s, src, s.len + 1);
            len = s.len;
        } else {
            src = strdup(tpl_chatml_source());
            if (!src) return snprintf(err, errlen, "out of memory"), -1;
            len = strlen(src);
            origin = "ChatML (the model has no template)";
        }
    }
    chatd_error cerr = {{0}};
    srv->tpl = tpl_parse(src, len, &cerr);
    p->has_developer = strstr(src, "developer") != NULL;
    p->fmt = cp_detect_format(src);
    p->renders_tools = cp_template_renders_tools(src);
    p->thinks = strstr(src, "</think>") != NULL;
    p->enable_thinking = strstr(src, "enable_thinking") != NULL;
    free(src);
    if (!srv->tpl) return snprintf(err, errlen, "chat template of %s: %s", origin, cerr.msg), -1;
    p->bos_text = prompt_token_text(srv->e->tok, tok_bos(srv->e->tok));
    p->eos_text = prompt_token_text(srv->e->tok, tok_eos(srv->e->tok));
    srv_log(srv, LOG_INFO, "chat template: %s", origin);
    return 0;
}

void prompt_free(server *srv) {
    if (srv->tpl) tpl_free(srv->tpl);
    srv->tpl = NULL;
    if (srv->prompt) {
        free(srv->prompt->bos_text);
        free(srv->prompt->eos_text);
        free(srv->prompt);
    }
    srv->prompt = NULL;
}

/* A JSON value as a template value; strings are request data. */
static tpl_value *prompt_from_json(const cJSON *j) {
    if (cJSON_IsString(j))
        return tpl_value_string(j->valuestring, strlen(j->valuestring), TPL_ORIGIN_REQUEST);
    if (cJSON_IsBool(j)) return tpl_value_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == (double)(int64_t)d && d > -9e15 && d < 9e15) return tpl_value_int((int64_t)d);
        return tpl_value_float(d);
    }
    if (cJSON_IsArray(j)) {
        tpl_value *l = tpl_value_list();
        const cJSON *e;
        cJSON_ArrayForEach(e, j) if (l && tpl_list_append(l, prompt_from_json(e)) != 0) {
            tpl_value_free(l);
            return NULL;
        }
        return l;
    }
    if (cJSON_IsObject(j)) {
        tpl_value *d = tpl_value_dict();
        const cJSON *e;
        cJSON_ArrayForEach(e, j) if (d && tpl_dict_set(d, e->string, prompt_from_json(e)) != 0) {
            tpl_value_free(d);
            return NULL;
        }
        return d;
    }
    return tpl_value_null();
}

/* tool_calls as HF users pass them: arguments parsed from the OpenAI JSON string, except
 * for templates that splice the string in as it is (DeepSeek R1's). */
static tpl_value *prompt_tool_calls(const cJSON *calls, bool parse_args) {
    cJSON *copy = cJSON_Duplicate(calls, 1);
    if (!copy) return NULL;
    cJSON *c;
    if (parse_args) cJSON_ArrayForEach(c, copy) {
            cJSON *fn = cJSON_GetObjectItem(c, "function");
            cJSON *args = fn ? cJSON_GetObjectItem(fn, "arguments") : NULL;
            if (cJSON_IsString(args)) {
                cJSON *parsed = cJSON_Parse(args->valuestring);
                if (parsed) cJSON_ReplaceItemInObject(fn, "arguments", parsed);
            }
        }
    tpl_value *v = prompt_from_json(copy);
    cJSON_Delete(copy);
    return v;
}

static int prompt_set_str(tpl_value *d, const char *key, const char *s, tpl_origin o) {
    return tpl_dict_set(d, key, tpl_value_string(s, strlen(s), o));
}

/* The template context of a chat request, as apply_chat_template builds it. */
static tpl_value *prompt_context(server *srv, const api_request *req, bool add_generation_prompt) {
    prompt_ctx *p = srv->prompt;
    tpl_value *ctx = tpl_value_dict(), *msgs = tpl_value_list();
    if (!ctx || !msgs) {
        tpl_value_free(ctx);
        tpl_value_free(msgs);
        return NULL;
    }
    int rc = 0;
    /* a template that does not write the tools gets them described in the system prompt */
    char *tools_text = NULL;
    if (req->tools && !p->renders_tools) {
        chatd_error cerr = {{0}};
        tools_text =
            cp_tools_prompt(p->fmt == CP_FMT_NONE ? CP_FMT_GENERIC : p->fmt, req->tools, &cerr);
        if (!tools_text) rc = -1;
    }
    bool first_system = req->n_messages > 0 && (!strcmp(req->messages[0].role, "system") ||
                                                !strcmp(req->messages[0].role, "developer"));
    if (tools_text && !first_system) {
        tpl_value *d = tpl_value_dict();
        rc |= d ? 0 : -1;
        if (d) {
            rc |= prompt_set_str(d, "role", "system", TPL_ORIGIN_REQUEST);
            rc |= prompt_set_str(d, "content", tools_text, TPL_ORIGIN_REQUEST);
            rc |= tpl_list_append(msgs, d);
        }
    }
    for (size_t i = 0; i < req->n_messages && rc == 0; i++) {
        const api_message *m = &req->messages[i];
        tpl_value *d = tpl_value_dict();
        if (!d) {
            rc = -1;
            break;
        }
        const char *role = m->role;
        if (!strcmp(role, "developer") && !p->has_developer) role = "system";
        rc |= prompt_set_str(d, "role", role, TPL_ORIGIN_REQUEST);
        if (i == 0 && first_system && tools_text) {
            size_t a = m->content ? strlen(m->content) : 0, b = strlen(tools_text);
            char *both = malloc(a + b + 3);
            rc |= both ? 0 : -1;
            if (both) {
                snprintf(both, a + b + 3, "%s%s%s", a ? m->content : "", a ? "\n\n" : "",
                         tools_text);
                rc |= prompt_set_str(d, "content", both, TPL_ORIGIN_REQUEST);
                free(both);
            }
        } else {
            rc |= tpl_dict_set(
                d, "content",
                m->content ? tpl_value_string(m->content, strlen(m->content), TPL_ORIGIN_REQUEST)
                           : tpl_value_null());
        }
        if (m->name) rc |= prompt_set_str(d, "name", m->name, TPL_ORIGIN_REQUEST);
        if (m->tool_call_id)
            rc |= prompt_set_str(d, "tool_call_id", m->tool_call_id, TPL_ORIGIN_REQUEST);
        if (m->tool_calls)
            rc |= tpl_dict_set(d, "tool_calls",
                               prompt_tool_calls(m->tool_calls, p->fmt != CP_FMT_R1));
        rc |= tpl_list_append(msgs, d);
    }
    rc |= tpl_dict_set(ctx, "messages", msgs);
    free(tools_text);
    rc |= tpl_dict_set(ctx, "tools", req->tools ? prompt_from_json(req->tools) : tpl_value_null());
    if (req->reasoning_effort == API_EFFORT_NONE && p->enable_thinking)
        rc |= tpl_dict_set(ctx, "enable_thinking", tpl_value_bool(false));
    rc |= tpl_dict_set(ctx, "documents", tpl_value_null());
    rc |= tpl_dict_set(ctx, "add_generation_prompt", tpl_value_bool(add_generation_prompt));
    /* special-token texts come from the model, not the request */
    if (p->bos_text) rc |= prompt_set_str(ctx, "bos_token", p->bos_text, TPL_ORIGIN_TEMPLATE);
    if (p->eos_text) rc |= prompt_set_str(ctx, "eos_token", p->eos_text, TPL_ORIGIN_TEMPLATE);
    if (req->chat_template_kwargs) {
        const cJSON *e;
        cJSON_ArrayForEach(e, req->chat_template_kwargs) rc |=
            tpl_dict_set(ctx, e->string, prompt_from_json(e));
    }
    if (rc != 0) {
        tpl_value_free(ctx);
        return NULL;
    }
    return ctx;
}

#define PROMPT_NO_THINK "<think>\n\n</think>\n\n"

/* Does the request turn thinking off where the template itself cannot? */
static bool prompt_closes_thinking(const server *srv, const api_request *req) {
    const prompt_ctx *p = srv->prompt;
    return req->reasoning_effort == API_EFFORT_NONE && p->thinks && !p->enable_thinking &&
           req->add_generation_prompt;
}

int prompt_chat(server *srv, const api_request *req, tok_ids *ids, char **text_out,
                api_error *err) {
    tpl_value *ctx = prompt_context(srv, req, req->add_generation_prompt);
    if (!ctx) return api_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    tpl_output out;
    memset(&out, 0, sizeof out);
    chatd_error cerr = {{0}};
    int rc = tpl_render_chat(srv->tpl, ctx, NULL, &out, &cerr);
    tpl_value_free(ctx);
    if (rc != 0)
        return api_fail(err, 400, "invalid_request_error", "invalid_chat_template", "messages",
                        "The chat template could not render these messages: %s", cerr.msg);
    rc = tpl_tokenize(srv->e->tok, &out, true, ids, &cerr);
    if (rc == 0 && prompt_closes_thinking(srv, req)) {
        /* a reasoning model whose template cannot turn thinking off: an empty thinking
         * block in the prompt does, as Qwen3's template writes it */
        rc = tok_encode(srv->e->tok, PROMPT_NO_THINK, strlen(PROMPT_NO_THINK), false, true, ids,
                        &cerr);
    }
    if (rc == 0 && text_out) {
        size_t n = 0;
        const char *t = tpl_output_text(&out, &n);
        /* as llama.cpp shows it: without a leading BOS text the tokenizer adds itself */
        const char *bos = srv->prompt->bos_text;
        if (bos && tok_add_bos(srv->e->tok) && n >= strlen(bos) && !strncmp(t, bos, strlen(bos))) {
            t += strlen(bos);
            n -= strlen(bos);
        }
        const char *extra = prompt_closes_thinking(srv, req) ? PROMPT_NO_THINK : "";
        size_t ne = strlen(extra);
        *text_out = malloc(n + ne + 1);
        if (*text_out) {
            memcpy(*text_out, t, n);
            memcpy(*text_out + n, extra, ne + 1);
        }
    }
    tpl_output_free(&out);
    if (rc != 0)
        return api_fail(err, 400, "invalid_request_error", NULL, "messages", "%s", cerr.msg);
    return 0;
}

int prompt_tool_format(const server *srv) {
    return srv->prompt->fmt;
}

bool prompt_thinks(const server *srv) {
    return srv->prompt->thinks;
}
