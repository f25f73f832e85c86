/* schema_check.c - the JSON Schema subset validator for tests (see schema_check.h). It
 * walks schema and instance together, recursing through $ref, and reports the first
 * problem with a JSONPath-like location. */
#include "schema_check.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* deep enough for any real schema; stops a $ref cycle that never reaches the instance */
#define SC_MAX_DEPTH 256

typedef struct sc_ctx {
    const cJSON *root;
    int flags;
    char *err;
    size_t errlen;
    int depth;
} sc_ctx;

static int sc_fail(sc_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sc_fail(sc_ctx *c, const char *path, const char *fmt, ...) {
    if (!c->err || !c->errlen) return -1;
    int n = snprintf(c->err, c->errlen, "%s: ", path);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *sc_kind(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "unknown";
}

static bool sc_is_integer(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && floor(v->valuedouble) == v->valuedouble;
}

/* 1 when v has the type called name, 0 when not, -1 when name is no JSON Schema type. */
static int sc_has_type(const cJSON *v, const char *name) {
    if (strcmp(name, "null") == 0) return cJSON_IsNull(v);
    if (strcmp(name, "boolean") == 0) return cJSON_IsBool(v) != 0;
    if (strcmp(name, "object") == 0) return cJSON_IsObject(v) != 0;
    if (strcmp(name, "array") == 0) return cJSON_IsArray(v) != 0;
    if (strcmp(name, "string") == 0) return cJSON_IsString(v) != 0;
    if (strcmp(name, "number") == 0) return cJSON_IsNumber(v) != 0;
    if (strcmp(name, "integer") == 0) return sc_is_integer(v);
    return -1;
}

/* Keywords that carry no rule. */
static bool sc_is_annotation(const char *k) {
    static const char *const names[] = {
        "description",
        "title",
        "default",
        "examples",
        "example",
        "deprecated",
        "format",
        "discriminator",
        "$comment",
        "$schema",
        "$id",
        "$anchor",
        "readOnly",
        "writeOnly",
        "contentEncoding",
        "contentMediaType",
        "externalDocs",
        "xml",
        "$defs",
        "definitions",
        "nullable",
    };
    if (strncmp(k, "x-", 2) == 0) return true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(k, names[i]) == 0) return true;
    return false;
}

/* Resolves "#/a/b" (optionally prefixed by the document's $id) inside root. */
static const cJSON *sc_resolve(const cJSON *root, const char *ref) {
    const char *hash = strchr(ref, '#');
    if (!hash) return NULL;
    if (hash != ref) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "$id");
        size_t plen = (size_t)(hash - ref);
        if (!cJSON_IsString(id) || strlen(id->valuestring) != plen ||
            strncmp(id->valuestring, ref, plen) != 0)
            return NULL;
    }
    const cJSON *cur = root;
    const char *p = hash + 1;
    while (*p) {
        if (*p != '/') return NULL;
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1')) ch = *p++ == '0' ? '~' : '/';
            if (n + 1 >= sizeof tok) return NULL;
            tok[n++] = ch;
        }
        tok[n] = 0;
        if (cJSON_IsArray(cur)) {
            char *end;
            long idx = strtol(tok, &end, 10);
            if (*end || idx < 0) return NULL;
            cur = cJSON_GetArrayItem(cur, (int)idx);
        } else {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        }
        if (!cur) return NULL;
    }
    return cur;
}

static int sc_check(sc_ctx *c, const cJSON *schema, const cJSON *v, const char *path);

/* Runs a check whose failure is only an answer (anyOf, oneOf, not): the message goes to a
 * scratch buffer, kept for the caller's report. */
static bool sc_try(sc_ctx *c, const cJSON *schema, const cJSON *v, const char *path, char *msg,
                   size_t msglen) {
    sc_ctx sub = *c;
    sub.err = msg;
    sub.errlen = msglen;
    if (msg && msglen) msg[0] = 0;
    return sc_check(&sub, schema, v, path) == 0;
}

static int sc_check_type(sc_ctx *c, const cJSON *t, const cJSON *v, const char *path) {
    if (cJSON_IsString(t)) {
        int r = sc_has_type(v, t->valuestring);
        if (r < 0) return sc_fail(c, path, "schema names unknown type '%s'", t->valuestring);
        return r ? 0 : sc_fail(c, path, "expected %s, got %s", t->valuestring, sc_kind(v));
    }
    if (!cJSON_IsArray(t)) return sc_fail(c, path, "schema 'type' is neither string nor array");
    char names[256] = "";
    for (const cJSON *e = t->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return sc_fail(c, path, "schema 'type' array holds a non-string");
        int r = sc_has_type(v, e->valuestring);
        if (r < 0) return sc_fail(c, path, "schema names unknown type '%s'", e->valuestring);
        if (r) return 0;
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", l ? "|" : "", e->valuestring);
    }
    return sc_fail(c, path, "expected %s, got %s", names, sc_kind(v));
}

static int sc_check_object(sc_ctx *c, const cJSON *schema, const cJSON *v, const char *path) {
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    char sub[1024];
    if (req) {
        if (!cJSON_IsArray(req)) return sc_fail(c, path, "schema 'required' is not an array");
        for (const cJSON *r = req->child; r; r = r->next)
            if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
                return sc_fail(c, path, "missing required member '%s'", r->valuestring);
    }
    for (const cJSON *m = v->child; m; m = m->next) {
        const char *key = m->string ? m->string : "";
        snprintf(sub, sizeof sub, "%s.%s", path, key);
        const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, key) : NULL;
        if (ps) {
            if (sc_check(c, ps, m, sub) < 0) return -1;
        } else if (addl) {
            if (cJSON_IsFalse(addl)) return sc_fail(c, sub, "member not allowed by the schema");
            if (!cJSON_IsTrue(addl) && sc_check(c, addl, m, sub) < 0) return -1;
        } else if ((c->flags & SCHEMA_STRICT) && props) {
            return sc_fail(c, sub, "member not declared by the schema (strict mode)");
        }
    }
    return 0;
}

static int sc_check_array(sc_ctx *c, const cJSON *schema, const cJSON *v, const char *path) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(schema, "prefixItems");
    const cJSON *pi = prefix ? prefix->child : NULL;
    char sub[1024];
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        snprintf(sub, sizeof sub, "%s[%d]", path, i);
        if (pi) {
            if (sc_check(c, pi, e, sub) < 0) return -1;
            pi = pi->next;
        } else if (items && sc_check(c, items, e, sub) < 0) {
            return -1;
        }
    }
    return 0;
}

static int sc_check_combinator(sc_ctx *c, const char *k, const cJSON *val, const cJSON *v,
                               const char *path) {
    if (!cJSON_IsArray(val) || !val->child)
        return sc_fail(c, path, "schema '%s' is not a non-empty array", k);
    char first[512] = "", msg[512];
    int n_ok = 0, i = 0;
    for (const cJSON *s = val->child; s; s = s->next, i++) {
        bool ok = sc_try(c, s, v, path, msg, sizeof msg);
        if (!ok && strcmp(k, "allOf") == 0) return sc_fail(c, path, "allOf[%d]: %s", i, msg);
        if (ok) n_ok++;
        if (!ok && !first[0]) snprintf(first, sizeof first, "branch %d: %.480s", i, msg);
    }
    if (strcmp(k, "anyOf") == 0 && n_ok == 0)
        return sc_fail(c, path, "matches no branch of anyOf (%s)", first);
    if (strcmp(k, "oneOf") == 0 && n_ok != 1)
        return n_ok ? sc_fail(c, path, "matches %d branches of oneOf, not exactly one", n_ok)
                    : sc_fail(c, path, "matches no branch of oneOf (%s)", first);
    return 0;
}

static int sc_check_bounds(sc_ctx *c, const char *k, const cJSON *val, const cJSON *v,
                           const char *path) {
    if (!cJSON_IsNumber(val)) return sc_fail(c, path, "schema '%s' is not a number", k);
    double lim = val->valuedouble;
    if (strcmp(k, "minimum") == 0 || strcmp(k, "maximum") == 0 ||
        strcmp(k, "exclusiveMinimum") == 0 || strcmp(k, "exclusiveMaximum") == 0) {
        if (!cJSON_IsNumber(v)) return 0;
        double d = v->valuedouble;
        bool bad = strcmp(k, "minimum") == 0            ? d < lim
                   : strcmp(k, "maximum") == 0          ? d > lim
                   : strcmp(k, "exclusiveMinimum") == 0 ? d <= lim
                                                        : d >= lim;
        return bad ? sc_fail(c, path, "%g violates %s %g", d, k, lim) : 0;
    }
    double n;
    if (strcmp(k, "minItems") == 0 || strcmp(k, "maxItems") == 0) {
        if (!cJSON_IsArray(v)) return 0;
        n = cJSON_GetArraySize(v);
    } else {
        if (!cJSON_IsString(v)) return 0;
        n = (double)strlen(v->valuestring);
    }
    bool bad = strncmp(k, "min", 3) == 0 ? n < lim : n > lim;
    return bad ? sc_fail(c, path, "length %g violates %s %g", n, k, lim) : 0;
}

static int sc_check(sc_ctx *c, const cJSON *schema, const cJSON *v, const char *path) {
    if (cJSON_IsTrue(schema)) return 0;
    if (cJSON_IsFalse(schema)) return sc_fail(c, path, "schema 'false' allows nothing");
    if (!cJSON_IsObject(schema)) return sc_fail(c, path, "schema is not an object");
    if (c->depth >= SC_MAX_DEPTH) return sc_fail(c, path, "schema nesting too deep ($ref cycle?)");
    c->depth++;
    int rc = 0;
    /* OpenAPI 3.0: nullable widens every other rule to also accept null */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, "nullable")) && cJSON_IsNull(v))
        goto out;
    for (const cJSON *kw = schema->child; kw && rc == 0; kw = kw->next) {
        const char *k = kw->string ? kw->string : "";
        if (sc_is_annotation(k) || strcmp(k, "properties") == 0 ||
            strcmp(k, "additionalProperties") == 0 || strcmp(k, "required") == 0 ||
            strcmp(k, "items") == 0 || strcmp(k, "prefixItems") == 0)
            continue; /* the last five are read by sc_check_object / sc_check_array */
        if (strcmp(k, "type") == 0) {
            rc = sc_check_type(c, kw, v, path);
        } else if (strcmp(k, "enum") == 0) {
            if (!cJSON_IsArray(kw)) {
                rc = sc_fail(c, path, "schema 'enum' is not an array");
                break;
            }
            bool found = false;
            for (const cJSON *e = kw->child; e && !found; e = e->next)
                found = cJSON_Compare(e, v, 1);
            if (!found) {
                char *txt = cJSON_PrintUnformatted(v);
                rc = sc_fail(c, path, "value %.200s is not in the enum", txt ? txt : "?");
                cJSON_free(txt);
            }
        } else if (strcmp(k, "const") == 0) {
            if (!cJSON_Compare(kw, v, 1)) rc = sc_fail(c, path, "value differs from 'const'");
        } else if (strcmp(k, "anyOf") == 0 || strcmp(k, "oneOf") == 0 || strcmp(k, "allOf") == 0) {
            rc = sc_check_combinator(c, k, kw, v, path);
        } else if (strcmp(k, "not") == 0) {
            if (sc_try(c, kw, v, path, NULL, 0)) rc = sc_fail(c, path, "matches a 'not' schema");
        } else if (strcmp(k, "$ref") == 0) {
            const cJSON *target = cJSON_IsString(kw) ? sc_resolve(c->root, kw->valuestring) : NULL;
            rc = target ? sc_check(c, target, v, path)
                        : sc_fail(c, path, "unresolvable $ref '%s'",
                                  cJSON_IsString(kw) ? kw->valuestring : "?");
        } else if (strcmp(k, "minimum") == 0 || strcmp(k, "maximum") == 0 ||
                   strcmp(k, "exclusiveMinimum") == 0 || strcmp(k, "exclusiveMaximum") == 0 ||
                   strcmp(k, "minItems") == 0 || strcmp(k, "maxItems") == 0 ||
                   strcmp(k, "minLength") == 0 || strcmp(k, "maxLength") == 0) {
            rc = sc_check_bounds(c, k, kw, v, path);
        } else {
            rc = sc_fail(c, path, "unsupported keyword '%s' in the schema", k);
        }
    }
    if (rc == 0 && cJSON_IsObject(v)) rc = sc_check_object(c, schema, v, path);
    if (rc == 0 && cJSON_IsArray(v)) rc = sc_check_array(c, schema, v, path);
out:
    c->depth--;
    return rc;
}

int schema_validate_ex(const cJSON *root, const cJSON *schema, const cJSON *instance, int flags,
                       char *err, size_t errlen) {
    sc_ctx c = {root, flags, err, errlen, 0};
    if (err && errlen) err[0] = 0;
    if (!root || !schema) return sc_fail(&c, "$", "no schema");
    if (!instance) return sc_fail(&c, "$", "no instance");
    return sc_check(&c, schema, instance, "$");
}

int schema_validate(const cJSON *root, const char *def_name, const cJSON *instance, char *err,
                    size_t errlen) {
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(root, "$defs");
    const cJSON *schema = def_name ? cJSON_GetObjectItemCaseSensitive(defs, def_name) : NULL;
    if (!schema) {
        if (err && errlen) snprintf(err, errlen, "no definition '%s' in the schema", def_name);
        return -1;
    }
    return schema_validate_ex(root, schema, instance, 0, err, errlen);
}

int schema_validate_text(const cJSON *root, const char *def_name, const char *json, int flags,
                         char *err, size_t errlen) {
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(root, "$defs");
    const cJSON *schema = def_name ? cJSON_GetObjectItemCaseSensitive(defs, def_name) : NULL;
    if (!schema) {
        if (err && errlen) snprintf(err, errlen, "no definition '%s' in the schema", def_name);
        return -1;
    }
    cJSON *inst = json ? cJSON_Parse(json) : NULL;
    if (!inst) {
        if (err && errlen) snprintf(err, errlen, "$: not valid JSON");
        return -1;
    }
    int rc = schema_validate_ex(root, schema, inst, flags, err, errlen);
    cJSON_Delete(inst);
    return rc;
}
