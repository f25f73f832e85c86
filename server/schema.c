/* schema.c - JSON Schema to constraint grammar (see schema.h). One recursive walk: each
 * schema object is checked keyword by keyword (anything not understood is refused by name,
 * with a JSON pointer to where it is), then built bottom-up with the cons_* builders.
 * $ref targets are expanded in place, so a schema that references one definition many
 * times builds it many times; SCHEMA_MAX_NODES bounds that, and a stack of the targets
 * being expanded catches recursion. */
#include "schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_MAX_DEPTH 64 /* schema objects inside one another, $ref hops included */
#define SCHEMA_PATH_MAX  256

typedef struct schema_ctx {
    cons_grammar *g;
    const cJSON *root; /* what "#" refers to */
    const char *param;
    api_error *err;
    const cJSON *refs[SCHEMA_MAX_DEPTH]; /* $ref targets being expanded */
    int n_refs;
    int depth;   /* schema objects being built */
    int nesting; /* objects and arrays being built */
    int64_t nodes;
    char path[SCHEMA_PATH_MAX]; /* JSON pointer of the schema being built */
    size_t path_len;
} schema_ctx;

/* The kinds of keyword a schema object may hold. */
enum {
    SK_OBJ = 1 << 0, /* properties, required, additionalProperties */
    SK_ARR = 1 << 1, /* items, minItems, maxItems */
    SK_STR = 1 << 2, /* minLength, maxLength, format */
    SK_INT = 1 << 3, /* minimum, maximum, exclusiveMinimum, exclusiveMaximum */
};

/* JSON type names, as bits. */
enum {
    ST_NULL = 1 << 0,
    ST_BOOLEAN = 1 << 1,
    ST_OBJECT = 1 << 2,
    ST_ARRAY = 1 << 3,
    ST_NUMBER = 1 << 4,
    ST_STRING = 1 << 5,
    ST_INTEGER = 1 << 6,
};

static const struct {
    const char *name;
    unsigned bit;
} schema_types[] = {
    {"null", ST_NULL},     {"boolean", ST_BOOLEAN}, {"object", ST_OBJECT},   {"array", ST_ARRAY},
    {"number", ST_NUMBER}, {"string", ST_STRING},   {"integer", ST_INTEGER},
};

/* Keywords that only annotate, and those this walk understands (with their kind). */
static const char *const schema_annotations[] = {
    "description", "title",      "default",  "examples",  "$schema",       "$id",   "$comment",
    "strict",      "deprecated", "readOnly", "writeOnly", "discriminator", "$defs", "definitions",
};

#define SK_WHOLE (1u << 8) /* $ref and the combinators: they stand for the whole schema */

static const struct {
    const char *name;
    unsigned kind; /* SK_* (what the keyword constrains), SK_WHOLE, or 0 */
} schema_keywords[] = {
    {"type", 0},
    {"enum", 0},
    {"const", 0},
    {"nullable", 0},
    {"$ref", SK_WHOLE},
    {"anyOf", SK_WHOLE},
    {"oneOf", SK_WHOLE},
    {"allOf", SK_WHOLE},
    {"properties", SK_OBJ},
    {"required", SK_OBJ},
    {"additionalProperties", SK_OBJ},
    {"items", SK_ARR},
    {"minItems", SK_ARR},
    {"maxItems", SK_ARR},
    {"minLength", SK_STR},
    {"maxLength", SK_STR},
    {"format", SK_STR},
    {"minimum", SK_INT},
    {"maximum", SK_INT},
    {"exclusiveMinimum", SK_INT},
    {"exclusiveMaximum", SK_INT},
};

/* ------------------------------------------------------------------ errors */

static cons_node schema_fail(schema_ctx *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cons_node schema_fail(schema_ctx *c, int status, const char *code, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (status >= 500)
        api_fail(c->err, status, "server_error", NULL, NULL,
                 "The server could not build a grammar for '%s': %s.", c->param, what);
    else
        api_fail(c->err, status, "invalid_request_error", code, c->param,
                 "Invalid schema for '%s': %s (at %s).", c->param, what,
                 c->path_len ? c->path : "#");
    return -1;
}

/* A keyword or form this server cannot enforce. */
#define schema_unsupported(c, ...) schema_fail(c, 400, "unsupported_value", __VA_ARGS__)
/* A schema that is not valid JSON Schema, or that no value can match. */
#define schema_invalid(c, ...) schema_fail(c, 400, "invalid_value", __VA_ARGS__)

/* Checks what a builder returned: a builder error becomes a 400 (500 when memory ran out). */
static cons_node schema_built(schema_ctx *c, cons_node n) {
    if (n >= 0) {
        c->nodes++;
        return n;
    }
    const char *why = cons_grammar_error(c->g);
    if (!why) why = "the grammar could not be built";
    if (strstr(why, "out of memory")) return schema_fail(c, 500, NULL, "%s", why);
    return schema_unsupported(c, "%s", why);
}

/* ------------------------------------------------------------------- paths */

/* Appends "/seg" (JSON-pointer escaped) to the path; returns the length to restore. When the
 * path is full the segment is left out and "/..." marks the cut. */
static size_t schema_path_push(schema_ctx *c, const char *seg) {
    size_t mark = c->path_len;
    char buf[SCHEMA_PATH_MAX];
    size_t n = 0;
    buf[n++] = '/';
    for (const char *s = seg; *s && n + 2 < sizeof buf; s++) {
        if (*s == '~' || *s == '/') {
            buf[n++] = '~';
            buf[n++] = *s == '~' ? '0' : '1';
        } else {
            buf[n++] = *s;
        }
    }
    if (mark + n + 1 > sizeof c->path) {
        static const char cut[] = "/...";
        if (mark + sizeof cut <= sizeof c->path &&
            (mark < 4 || memcmp(c->path + mark - 4, cut, 4) != 0)) {
            memcpy(c->path + mark, cut, sizeof cut);
            c->path_len = mark + 4;
        }
        return mark;
    }
    memcpy(c->path + mark, buf, n);
    c->path_len = mark + n;
    c->path[c->path_len] = 0;
    return mark;
}

static size_t schema_path_push_index(schema_ctx *c, const char *key, int i) {
    char seg[80];
    size_t mark = schema_path_push(c, key);
    snprintf(seg, sizeof seg, "%d", i);
    schema_path_push(c, seg);
    return mark;
}

static void schema_path_pop(schema_ctx *c, size_t mark) {
    c->path_len = mark;
    c->path[mark] = 0;
}

/* ------------------------------------------------------------------ values */

static bool schema_integral(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && floor(v->valuedouble) == v->valuedouble;
}

/* A non-negative integer keyword (minItems, maxLength, ...); 0 absent, 1 set, -1 refused. */
static int schema_count(schema_ctx *c, const cJSON *obj, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return 0;
    if (!schema_integral(v) || v->valuedouble < 0)
        return schema_invalid(c, "'%s' must be a non-negative integer", key);
    *out = v->valuedouble >= 9e18 ? INT64_MAX : (int64_t)v->valuedouble;
    return 1;
}

/* The bits of the JSON types v has (an integral number is both a number and an integer). */
static unsigned schema_value_types(const cJSON *v) {
    if (cJSON_IsNull(v)) return ST_NULL;
    if (cJSON_IsBool(v)) return ST_BOOLEAN;
    if (cJSON_IsString(v)) return ST_STRING;
    if (cJSON_IsArray(v)) return ST_ARRAY;
    if (cJSON_IsObject(v)) return ST_OBJECT;
    if (cJSON_IsNumber(v)) return ST_NUMBER | (schema_integral(v) ? ST_INTEGER : 0);
    return 0;
}

/* "type": a name or a non-empty array of names, as bits; 0 when absent, -1 refused. */
static int schema_types_of(schema_ctx *c, const cJSON *s, unsigned *out) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "type");
    *out = 0;
    if (!t) return 0;
    const cJSON *one = cJSON_IsString(t) ? t : NULL;
    if (!one && (!cJSON_IsArray(t) || !t->child))
        return schema_invalid(c, "'type' must be a type name or a non-empty array of them");
    for (const cJSON *e = one ? one : t->child; e; e = one ? NULL : e->next) {
        unsigned bit = 0;
        for (size_t i = 0; cJSON_IsString(e) && i < sizeof schema_types / sizeof schema_types[0];
             i++)
            if (strcmp(e->valuestring, schema_types[i].name) == 0) bit = schema_types[i].bit;
        if (!bit)
            return cJSON_IsString(e) ? schema_invalid(c, "unknown type '%s'", e->valuestring)
                                     : schema_invalid(c, "'type' must hold type names");
        *out |= bit;
    }
    return 1;
}

/* ------------------------------------------------------------------ builders */

static cons_node schema_build(schema_ctx *c, const cJSON *s);

/* Builds the sub-schema s found under key (and index, when >= 0). */
static cons_node schema_sub(schema_ctx *c, const cJSON *s, const char *key, int index) {
    size_t mark = index >= 0 ? schema_path_push_index(c, key, index) : schema_path_push(c, key);
    cons_node n = schema_build(c, s);
    schema_path_pop(c, mark);
    return n;
}

/* enum / const: the listed values whose type is among types (all when types is 0). */
static cons_node schema_literals(schema_ctx *c, const cJSON *s, unsigned types) {
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (en && cn) return schema_unsupported(c, "'enum' together with 'const' is not supported");
    if (en && (!cJSON_IsArray(en) || !en->child))
        return schema_invalid(c, "'enum' must be a non-empty array");
    const char *key = en ? "enum" : "const";
    size_t n = 0;
    for (const cJSON *v = en ? en->child : cn; v; v = en ? v->next : NULL)
        if (!types || (schema_value_types(v) & types)) n++;
    if (n == 0) return schema_invalid(c, "no value of '%s' has the schema's 'type'", key);
    if (n > CONS_MAX_LITERALS)
        return schema_unsupported(c, "'%s' with more than %d values is not supported", key,
                                  CONS_MAX_LITERALS);
    char **texts = calloc(n, sizeof *texts);
    if (!texts) return schema_fail(c, 500, NULL, "out of memory");
    size_t k = 0;
    bool oom = false;
    for (const cJSON *v = en ? en->child : cn; v && !oom; v = en ? v->next : NULL)
        if (!types || (schema_value_types(v) & types))
            oom = !(texts[k++] = cJSON_PrintUnformatted(v));
    cons_node node = oom ? schema_fail(c, 500, NULL, "out of memory")
                         : schema_built(c, cons_literals(c->g, (const char *const *)texts, n));
    for (size_t i = 0; i < n; i++) cJSON_free(texts[i]);
    free(texts);
    return node;
}

static cons_node schema_string(schema_ctx *c, const cJSON *s) {
    int64_t lo = 0, hi = -1;
    int rlo = schema_count(c, s, "minLength", &lo);
    int rhi = rlo < 0 ? -1 : schema_count(c, s, "maxLength", &hi);
    if (rlo < 0 || rhi < 0) return -1;
    if (rhi && hi < lo) return schema_invalid(c, "'minLength' is greater than 'maxLength'");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "format");
    cons_format fmt = CONS_FMT_NONE;
    if (f) {
        static const struct {
            const char *name;
            cons_format fmt;
        } formats[] = {{"date", CONS_FMT_DATE},
                       {"time", CONS_FMT_TIME},
                       {"date-time", CONS_FMT_DATE_TIME},
                       {"uuid", CONS_FMT_UUID}};
        if (!cJSON_IsString(f)) return schema_invalid(c, "'format' must be a string");
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
            if (strcmp(f->valuestring, formats[i].name) == 0) fmt = formats[i].fmt;
        if (fmt == CONS_FMT_NONE)
            return schema_unsupported(c,
                                      "'format' '%s' is not supported (only 'date', 'time', "
                                      "'date-time' and 'uuid')",
                                      f->valuestring);
        if (rlo || rhi)
            return schema_unsupported(c, "'format' together with '%s' is not supported",
                                      rlo ? "minLength" : "maxLength");
    }
    return schema_built(c, cons_string(c->g, lo, hi, fmt));
}

/* A bound of an integer: v rounded inwards (up for a lower bound), and one step further in
 * when exclusive. false when v is not a number. */
static bool schema_int_bound(const cJSON *v, bool lower, bool exclusive, int64_t *out) {
    if (!cJSON_IsNumber(v) || isnan(v->valuedouble)) return false;
    double d = lower ? ceil(v->valuedouble) : floor(v->valuedouble);
    if (exclusive && d == v->valuedouble) d += lower ? 1 : -1;
    /* the engine holds integers of at most 16 digits: clamping far beyond that is exact */
    if (d > 1e17) d = 1e17;
    if (d < -1e17) d = -1e17;
    *out = (int64_t)d;
    return true;
}

static cons_node schema_integer(schema_ctx *c, const cJSON *s) {
    bool has_lo = false, has_hi = false;
    int64_t lo = 0, hi = 0;
    static const struct {
        const char *key;
        bool lower, exclusive;
    } bounds[] = {{"minimum", true, false},
                  {"maximum", false, false},
                  {"exclusiveMinimum", true, true},
                  {"exclusiveMaximum", false, true}};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, bounds[i].key);
        bool exclusive = bounds[i].exclusive;
        if (!v) continue;
        if (cJSON_IsBool(v) && exclusive) { /* draft 4: makes minimum / maximum exclusive */
            v = cJSON_GetObjectItemCaseSensitive(s, bounds[i].lower ? "minimum" : "maximum");
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, bounds[i].key)) || !v) continue;
        }
        int64_t b;
        if (!schema_int_bound(v, bounds[i].lower, exclusive, &b))
            return schema_invalid(c, "'%s' must be a number", bounds[i].key);
        if (bounds[i].lower && (!has_lo || b > lo)) lo = b, has_lo = true;
        if (!bounds[i].lower && (!has_hi || b < hi)) hi = b, has_hi = true;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "format");
    if (cJSON_IsString(f) && strcmp(f->valuestring, "int32") == 0) {
        if (!has_lo || lo < INT32_MIN) lo = INT32_MIN, has_lo = true;
        if (!has_hi || hi > INT32_MAX) hi = INT32_MAX, has_hi = true;
    }
    if (has_lo && has_hi && lo > hi) return schema_invalid(c, "no integer is within the bounds");
    return schema_built(c, cons_integer(c->g, has_lo, lo, has_hi, hi));
}

static cons_node schema_array(schema_ctx *c, const cJSON *s) {
    int64_t lo = 0, hi = -1;
    int rlo = schema_count(c, s, "minItems", &lo);
    int rhi = rlo < 0 ? -1 : schema_count(c, s, "maxItems", &hi);
    if (rlo < 0 || rhi < 0) return -1;
    if (rhi && hi < lo) return schema_invalid(c, "'minItems' is greater than 'maxItems'");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (cJSON_IsArray(items))
        return schema_unsupported(c, "'items' as an array (a tuple) is not supported");
    cons_node it = items ? schema_sub(c, items, "items", -1) : schema_built(c, cons_any(c->g));
    if (it < 0) return -1;
    return schema_built(c, cons_array(c->g, it, lo, hi));
}

static bool schema_listed(const cJSON *arr, const char *name) {
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next)
        if (cJSON_IsString(e) && strcmp(e->valuestring, name) == 0) return true;
    return false;
}

static cons_node schema_object(schema_ctx *c, const cJSON *s) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    if (props && !cJSON_IsObject(props)) return schema_invalid(c, "'properties' must be an object");
    if (req && !cJSON_IsArray(req)) return schema_invalid(c, "'required' must be an array");
    size_t n = 0;
    for (const cJSON *e = req ? req->child : NULL; e; e = e->next) {
        if (!cJSON_IsString(e)) return schema_invalid(c, "'required' must hold strings");
        bool seen = false;
        for (const cJSON *d = req->child; d != e && !seen; d = d->next)
            seen = strcmp(d->valuestring, e->valuestring) == 0;
        if (seen) return schema_invalid(c, "'required' lists '%s' twice", e->valuestring);
        if (!cJSON_GetObjectItemCaseSensitive(props, e->valuestring)) n++;
    }
    n += (size_t)cJSON_GetArraySize(props);
    if (n > CONS_MAX_PROPS)
        return schema_unsupported(c, "an object with more than %d properties is not supported",
                                  CONS_MAX_PROPS);

    /* what other keys may hold: -1 none; built before the properties, and shared by the
     * required keys that 'properties' does not describe */
    cons_node other;
    if (!add || cJSON_IsTrue(add))
        other = schema_built(c, cons_any(c->g));
    else if (cJSON_IsFalse(add))
        other = -1;
    else if (cJSON_IsObject(add))
        other = schema_sub(c, add, "additionalProperties", -1);
    else
        return schema_invalid(c, "'additionalProperties' must be a boolean or a schema");
    if (other < 0 && !cJSON_IsFalse(add)) return -1;

    /* the value nodes come first: a failure inside one must not leave a half-built object */
    cons_node values[CONS_MAX_PROPS];
    size_t k = 0;
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next, k++) {
        size_t mark = schema_path_push(c, "properties");
        values[k] = schema_sub(c, p, p->string ? p->string : "", -1);
        schema_path_pop(c, mark);
        if (values[k] < 0) return -1;
    }
    for (const cJSON *e = req ? req->child : NULL; e; e = e->next)
        if (!cJSON_GetObjectItemCaseSensitive(props, e->valuestring) && other < 0)
            return schema_invalid(c,
                                  "'required' lists '%s', which 'properties' does not define "
                                  "while 'additionalProperties' is false",
                                  e->valuestring);

    cons_node obj = schema_built(c, cons_object(c->g, other));
    if (obj < 0) return -1;
    k = 0;
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next, k++) {
        const char *name = p->string ? p->string : "";
        if (cons_object_prop(c->g, obj, name, values[k], schema_listed(req, name)) < 0)
            return schema_built(c, -1);
    }
    for (const cJSON *e = req ? req->child : NULL; e; e = e->next)
        if (!cJSON_GetObjectItemCaseSensitive(props, e->valuestring) &&
            cons_object_prop(c->g, obj, e->valuestring, other, true) < 0)
            return schema_built(c, -1);
    return obj;
}

/* One alternative of a type list: the node for values of type bit under schema s. */
static cons_node schema_typed(schema_ctx *c, const cJSON *s, unsigned bit, unsigned kinds) {
    cons_node n;
    switch (bit) {
    case ST_NULL:
        return schema_built(c, cons_null(c->g));
    case ST_BOOLEAN:
        return schema_built(c, cons_boolean(c->g));
    case ST_STRING:
        return schema_string(c, s);
    case ST_INTEGER:
        return schema_integer(c, s);
    case ST_NUMBER:
        if (kinds & SK_INT) {
            static const char *const keys[] = {"minimum", "maximum", "exclusiveMinimum",
                                               "exclusiveMaximum"};
            const char *key = keys[0];
            for (size_t i = 0; i < 4; i++)
                if (cJSON_GetObjectItemCaseSensitive(s, keys[i])) {
                    key = keys[i];
                    break;
                }
            return schema_unsupported(c,
                                      "'%s' is not supported for 'type': 'number' (only for "
                                      "'integer')",
                                      key);
        }
        return schema_built(c, cons_number(c->g));
    case ST_OBJECT:
    case ST_ARRAY:
        if (c->nesting >= SCHEMA_MAX_NESTING)
            return schema_unsupported(c,
                                      "objects and arrays nested more than %d deep are not "
                                      "supported",
                                      SCHEMA_MAX_NESTING);
        c->nesting++;
        n = bit == ST_OBJECT ? schema_object(c, s) : schema_array(c, s);
        c->nesting--;
        return n;
    default:
        return schema_invalid(c, "unknown type");
    }
}

/* Resolves a local reference ("#", "#/$defs/Name", any "#/a/b/0"); NULL when it does not. */
static const cJSON *schema_resolve(const cJSON *root, const char *ref) {
    if (ref[0] != '#') return NULL;
    const cJSON *v = root;
    const char *p = ref + 1;
    if (*p && *p != '/') return NULL; /* "#name": an anchor */
    while (v && *p == '/') {
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1')) ch = *p++ == '0' ? '~' : '/';
            if (n + 1 >= sizeof seg) return NULL;
            seg[n++] = ch;
        }
        seg[n] = 0;
        if (cJSON_IsArray(v)) {
            char *end = NULL;
            long i = strtol(seg, &end, 10);
            v = n && end && !*end && i >= 0 ? cJSON_GetArrayItem(v, (int)i) : NULL;
        } else {
            v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, seg) : NULL;
        }
    }
    return v;
}

static cons_node schema_ref(schema_ctx *c, const cJSON *s) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(s, "$ref");
    if (!cJSON_IsString(r)) return schema_invalid(c, "'$ref' must be a string");
    const char *ref = r->valuestring;
    if (ref[0] != '#')
        return schema_unsupported(c,
                                  "'$ref' to '%s' is not supported (only references inside the "
                                  "schema, such as '#/$defs/Name')",
                                  ref);
    const cJSON *target = schema_resolve(c->root, ref);
    if (!target) return schema_invalid(c, "'$ref' '%s' does not resolve", ref);
    for (int i = 0; i < c->n_refs; i++)
        if (c->refs[i] == target)
            return schema_unsupported(c, "recursive '$ref' ('%s') is not supported", ref);
    if (c->n_refs >= SCHEMA_MAX_DEPTH)
        return schema_unsupported(c, "'$ref' chains deeper than %d are not supported",
                                  SCHEMA_MAX_DEPTH);
    /* errors inside the target point at the target, where the keyword is written */
    char saved[SCHEMA_PATH_MAX];
    size_t saved_len = c->path_len;
    memcpy(saved, c->path, saved_len + 1);
    snprintf(c->path, sizeof c->path, "%s", ref);
    c->path_len = strlen(c->path);
    c->refs[c->n_refs++] = target;
    cons_node n = schema_build(c, target);
    c->n_refs--;
    memcpy(c->path, saved, saved_len + 1);
    c->path_len = saved_len;
    return n;
}

/* anyOf / oneOf (all alternatives), or allOf with a single member. */
static cons_node schema_combined(schema_ctx *c, const cJSON *s, const char *key) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(s, key);
    if (!cJSON_IsArray(arr) || !arr->child)
        return schema_invalid(c, "'%s' must be a non-empty array of schemas", key);
    int n = cJSON_GetArraySize(arr);
    if (strcmp(key, "allOf") == 0) {
        if (n != 1)
            return schema_unsupported(c, "'allOf' with more than one schema is not supported");
        return schema_sub(c, arr->child, key, 0);
    }
    if (n > 32)
        return schema_unsupported(c, "'%s' with more than 32 alternatives is not supported", key);
    cons_node alts[32];
    int i = 0;
    for (const cJSON *a = arr->child; a; a = a->next, i++)
        if ((alts[i] = schema_sub(c, a, key, i)) < 0) return -1;
    return schema_built(c, cons_any_of(c->g, alts, (size_t)n));
}

/* Sorts the members of schema object s: refuses unknown ones, returns the SK_* kinds of
 * constraint seen, the first of them (for messages), and the SK_WHOLE keyword present. */
static int schema_scan(schema_ctx *c, const cJSON *s, unsigned *kinds, const char **first_kind,
                       const char **whole) {
    *kinds = 0;
    *first_kind = *whole = NULL;
    for (const cJSON *f = s->child; f; f = f->next) {
        const char *key = f->string ? f->string : "";
        bool known = strncmp(key, "x-", 2) == 0;
        for (size_t i = 0; !known && i < sizeof schema_annotations / sizeof schema_annotations[0];
             i++)
            known = strcmp(key, schema_annotations[i]) == 0;
        for (size_t i = 0; !known && i < sizeof schema_keywords / sizeof schema_keywords[0]; i++) {
            if (strcmp(key, schema_keywords[i].name) != 0) continue;
            known = true;
            unsigned kind = schema_keywords[i].kind;
            if (kind == SK_WHOLE) {
                if (*whole)
                    return schema_unsupported(c, "'%s' together with '%s' is not supported", *whole,
                                              key);
                *whole = schema_keywords[i].name;
            } else if (kind) {
                if (!*first_kind) *first_kind = schema_keywords[i].name;
                *kinds |= kind;
            }
        }
        if (!known) return schema_unsupported(c, "'%s' is not supported", key);
    }
    return 0;
}

static cons_node schema_build(schema_ctx *c, const cJSON *s) {
    if (cJSON_IsTrue(s)) return schema_built(c, cons_any(c->g));
    if (cJSON_IsFalse(s)) return schema_unsupported(c, "a 'false' schema is not supported");
    if (!cJSON_IsObject(s)) return schema_invalid(c, "a schema must be an object or a boolean");
    if (c->depth >= SCHEMA_MAX_DEPTH)
        return schema_unsupported(c, "schemas nested more than %d deep are not supported",
                                  SCHEMA_MAX_DEPTH);
    if (c->nodes >= SCHEMA_MAX_NODES)
        return schema_unsupported(c, "the schema expands to more than %d grammar nodes",
                                  SCHEMA_MAX_NODES);

    unsigned kinds, types;
    const char *first_kind, *whole;
    if (schema_scan(c, s, &kinds, &first_kind, &whole) < 0 || schema_types_of(c, s, &types) < 0)
        return -1;
    const cJSON *nullable = cJSON_GetObjectItemCaseSensitive(s, "nullable");
    if (nullable && !cJSON_IsBool(nullable))
        return schema_invalid(c, "'nullable' must be a boolean");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    bool literal = en || cJSON_GetObjectItemCaseSensitive(s, "const");
    if (whole) {
        /* $ref, anyOf, oneOf, allOf: only annotations may stand beside them */
        const char *other = types      ? "type"
                            : literal  ? (en ? "enum" : "const")
                            : nullable ? "nullable"
                                       : first_kind;
        if (other)
            return schema_unsupported(c, "'%s' together with '%s' is not supported", whole, other);
    }

    c->depth++;
    cons_node n;
    if (whole && whole[0] == '$') {
        n = schema_ref(c, s);
    } else if (whole) {
        n = schema_combined(c, s, whole);
    } else if (literal) {
        n = schema_literals(c, s, types);
    } else if (types) {
        cons_node alts[8];
        size_t k = 0;
        n = 0;
        for (size_t i = 0; i < sizeof schema_types / sizeof schema_types[0] && n >= 0; i++)
            if (types & schema_types[i].bit) {
                /* integer inside number: "number" already allows every integer */
                if (schema_types[i].bit == ST_INTEGER && (types & ST_NUMBER)) continue;
                n = alts[k++] = schema_typed(c, s, schema_types[i].bit, kinds);
            }
        if (n >= 0) n = k == 1 ? alts[0] : schema_built(c, cons_any_of(c->g, alts, k));
    } else if (kinds == 0) {
        n = schema_built(c, cons_any(c->g));
    } else if (kinds == SK_INT) {
        n = schema_unsupported(c, "'%s' without 'type': 'integer' is not supported", first_kind);
    } else if (kinds != SK_OBJ && kinds != SK_ARR && kinds != SK_STR) {
        n = schema_unsupported(c, "keywords of several types without 'type' are not supported");
    } else {
        n = schema_typed(c, s,
                         kinds == SK_OBJ   ? ST_OBJECT
                         : kinds == SK_ARR ? ST_ARRAY
                                           : ST_STRING,
                         kinds);
    }
    c->depth--;
    if (n >= 0 && cJSON_IsTrue(nullable) && !(types & ST_NULL)) {
        cons_node alts[2] = {n, schema_built(c, cons_null(c->g))};
        n = alts[1] < 0 ? -1 : schema_built(c, cons_any_of(c->g, alts, 2));
    }
    return n;
}

cons_node schema_to_grammar(cons_grammar *g, const cJSON *schema, const char *param,
                            api_error *err) {
    schema_ctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.root = schema;
    c.param = param ? param : "";
    c.err = err;
    c.path[0] = '#';
    c.path_len = 1;
    if (!g) return schema_fail(&c, 500, NULL, "no grammar to build into");
    if (!schema) return schema_invalid(&c, "no schema");
    return schema_build(&c, schema);
}
