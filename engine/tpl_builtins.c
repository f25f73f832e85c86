/* tpl_builtins.c - what chat templates call: Jinja2's filters and tests, the globals
 * Hugging Face provides (raise_exception, strftime_now, namespace, range, dict), the
 * Python methods of str, list and dict that templates use, and the arithmetic and
 * comparison operators, all with Python's semantics and keeping the origin of request
 * text through every operation that passes it on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tpl_internal.h"

/* ---- names ---- */

enum {
    F_ABS = 1,
    F_ATTR,
    F_CAPITALIZE,
    F_COUNT,
    F_DEFAULT,
    F_DICTSORT,
    F_ESCAPE,
    F_FIRST,
    F_FLOAT,
    F_INDENT,
    F_INT,
    F_ITEMS,
    F_JOIN,
    F_LAST,
    F_LENGTH,
    F_LIST,
    F_LOWER,
    F_MAP,
    F_MAX,
    F_MIN,
    F_REJECT,
    F_REJECTATTR,
    F_REPLACE,
    F_REVERSE,
    F_ROUND,
    F_SAFE,
    F_SELECT,
    F_SELECTATTR,
    F_SORT,
    F_STRING,
    F_SUM,
    F_TITLE,
    F_TOJSON,
    F_TRIM,
    F_UNIQUE,
    F_UPPER,
    F_WORDCOUNT,
};

static const struct {
    const char *name;
    int id;
} k_filters[] = {
    {"abs", F_ABS},           {"attr", F_ATTR},       {"capitalize", F_CAPITALIZE},
    {"count", F_COUNT},       {"d", F_DEFAULT},       {"default", F_DEFAULT},
    {"dictsort", F_DICTSORT}, {"e", F_ESCAPE},        {"escape", F_ESCAPE},
    {"first", F_FIRST},       {"float", F_FLOAT},     {"indent", F_INDENT},
    {"int", F_INT},           {"items", F_ITEMS},     {"join", F_JOIN},
    {"last", F_LAST},         {"length", F_LENGTH},   {"list", F_LIST},
    {"lower", F_LOWER},       {"map", F_MAP},         {"max", F_MAX},
    {"min", F_MIN},           {"reject", F_REJECT},   {"rejectattr", F_REJECTATTR},
    {"replace", F_REPLACE},   {"reverse", F_REVERSE}, {"round", F_ROUND},
    {"safe", F_SAFE},         {"select", F_SELECT},   {"selectattr", F_SELECTATTR},
    {"sort", F_SORT},         {"string", F_STRING},   {"sum", F_SUM},
    {"title", F_TITLE},       {"tojson", F_TOJSON},   {"trim", F_TRIM},
    {"unique", F_UNIQUE},     {"upper", F_UPPER},     {"wordcount", F_WORDCOUNT},
};

enum {
    T_DEFINED = 1,
    T_UNDEFINED,
    T_NONE,
    T_STRING_,
    T_NUMBER,
    T_INTEGER,
    T_FLOAT_,
    T_MAPPING,
    T_ITERABLE,
    T_SEQUENCE,
    T_BOOLEAN,
    T_TRUE,
    T_FALSE,
    T_IN,
    T_EQ,
    T_NE,
    T_GT,
    T_LT,
    T_GE,
    T_LE,
    T_ODD,
    T_EVEN,
    T_DIVISIBLEBY,
    T_CALLABLE,
    T_SAMEAS,
    T_LOWER,
    T_UPPER,
};

static const struct {
    const char *name;
    int id;
} k_tests[] = {
    {"defined", T_DEFINED},
    {"undefined", T_UNDEFINED},
    {"none", T_NONE},
    {"string", T_STRING_},
    {"number", T_NUMBER},
    {"integer", T_INTEGER},
    {"float", T_FLOAT_},
    {"mapping", T_MAPPING},
    {"iterable", T_ITERABLE},
    {"sequence", T_SEQUENCE},
    {"boolean", T_BOOLEAN},
    {"true", T_TRUE},
    {"false", T_FALSE},
    {"in", T_IN},
    {"eq", T_EQ},
    {"equalto", T_EQ},
    {"==", T_EQ},
    {"ne", T_NE},
    {"!=", T_NE},
    {"gt", T_GT},
    {">", T_GT},
    {"greaterthan", T_GT},
    {"lt", T_LT},
    {"<", T_LT},
    {"lessthan", T_LT},
    {"ge", T_GE},
    {">=", T_GE},
    {"le", T_LE},
    {"<=", T_LE},
    {"odd", T_ODD},
    {"even", T_EVEN},
    {"divisibleby", T_DIVISIBLEBY},
    {"callable", T_CALLABLE},
    {"sameas", T_SAMEAS},
    {"lower", T_LOWER},
    {"upper", T_UPPER},
};

/* Global functions, then methods: one id space for TPL_FUNC values. */
enum {
    G_RANGE = 1,
    G_NAMESPACE,
    G_DICT,
    G_RAISE,
    G_STRFTIME,
    M_STRIP,
    M_LSTRIP,
    M_RSTRIP,
    M_SPLIT,
    M_RSPLIT,
    M_STARTSWITH,
    M_ENDSWITH,
    M_UPPER,
    M_LOWER,
    M_TITLE,
    M_CAPITALIZE,
    M_REPLACE,
    M_FIND,
    M_COUNT,
    M_JOIN,
    M_APPEND,
    M_POP,
    M_ITEMS,
    M_KEYS,
    M_VALUES,
    M_GET,
    M_CYCLE,
};

static const struct {
    const char *name;
    int id;
} k_globals[] = {
    {"range", G_RANGE},           {"namespace", G_NAMESPACE},   {"dict", G_DICT},
    {"raise_exception", G_RAISE}, {"strftime_now", G_STRFTIME},
};

static const struct {
    const char *name;
    int id;
    int kind;
} k_methods[] = {
    {"strip", M_STRIP, TPL_STRING},
    {"lstrip", M_LSTRIP, TPL_STRING},
    {"rstrip", M_RSTRIP, TPL_STRING},
    {"split", M_SPLIT, TPL_STRING},
    {"rsplit", M_RSPLIT, TPL_STRING},
    {"startswith", M_STARTSWITH, TPL_STRING},
    {"endswith", M_ENDSWITH, TPL_STRING},
    {"upper", M_UPPER, TPL_STRING},
    {"lower", M_LOWER, TPL_STRING},
    {"title", M_TITLE, TPL_STRING},
    {"capitalize", M_CAPITALIZE, TPL_STRING},
    {"replace", M_REPLACE, TPL_STRING},
    {"find", M_FIND, TPL_STRING},
    {"count", M_COUNT, TPL_STRING},
    {"join", M_JOIN, TPL_STRING},
    {"append", M_APPEND, TPL_LIST},
    {"pop", M_POP, TPL_LIST},
    {"items", M_ITEMS, TPL_DICT},
    {"keys", M_KEYS, TPL_DICT},
    {"values", M_VALUES, TPL_DICT},
    {"get", M_GET, TPL_DICT},
    {"cycle", M_CYCLE, TPL_LOOP},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int tpl_filter_id(const char *name) {
    for (size_t i = 0; i < COUNT(k_filters); i++)
        if (!strcmp(k_filters[i].name, name)) return k_filters[i].id;
    return 0;
}

int tpl_test_id(const char *name) {
    for (size_t i = 0; i < COUNT(k_tests); i++)
        if (!strcmp(k_tests[i].name, name)) return k_tests[i].id;
    return 0;
}

int tpl_global_id(const char *name) {
    for (size_t i = 0; i < COUNT(k_globals); i++)
        if (!strcmp(k_globals[i].name, name)) return k_globals[i].id;
    return 0;
}

int tpl_method_id(const tpl_value *obj, const char *name, size_t len) {
    for (size_t i = 0; i < COUNT(k_methods); i++)
        if (k_methods[i].kind == obj->kind && strlen(k_methods[i].name) == len &&
            !memcmp(k_methods[i].name, name, len))
            return k_methods[i].id;
    return 0;
}

/* ---- helpers ---- */

static tpl_value *oom(tpl_ev *e) {
    ev_oom(e);
    return NULL;
}

static tpl_value *type_error(tpl_ev *e, const tpl_value *v, const char *fmt) {
    if (v->kind == TPL_NONE) e->none_err = true;
    if (v->kind == TPL_UNDEFINED) {
        ev_undef_error(e, v);
        return NULL;
    }
    ev_error(e, fmt, tv_type_name(v));
    return NULL;
}

/* Binds positional and keyword arguments to parameter slots (borrowed; NULL = absent). */
static int bind(tpl_ev *e, const char *fname, const char *const *params, size_t np,
                tpl_value **args, size_t nargs, const char **kwnames, tpl_value **kwvals,
                size_t nkw, tpl_value **slot) {
    for (size_t i = 0; i < np; i++) slot[i] = NULL;
    if (nargs > np)
        return ev_error(e, "TypeError: %s() takes at most %zu arguments (%zu given)", fname, np,
                        nargs);
    for (size_t i = 0; i < nargs; i++) slot[i] = args[i];
    for (size_t k = 0; k < nkw; k++) {
        size_t i;
        for (i = 0; i < np; i++)
            if (!strcmp(params[i], kwnames[k])) break;
        if (i == np)
            return ev_error(e, "TypeError: %s() got an unexpected keyword argument '%s'", fname,
                            kwnames[k]);
        if (slot[i])
            return ev_error(e, "TypeError: %s() got multiple values for argument '%s'", fname,
                            kwnames[k]);
        slot[i] = kwvals[k];
    }
    return 0;
}

static bool given(const tpl_value *v) {
    return v && v->kind != TPL_UNDEFINED;
}
static bool is_none(const tpl_value *v) {
    return !v || v->kind == TPL_NONE;
}

static int want_int(tpl_ev *e, const tpl_value *v, const char *what, int64_t *out) {
    if (v->kind == TPL_INT)
        *out = v->u.i;
    else if (v->kind == TPL_BOOL)
        *out = v->u.b;
    else {
        type_error(e, v, "TypeError: %s must be an integer, not '%s'");
        (void)what;
        return -1;
    }
    return 0;
}

static tpl_value *str_of(tpl_ev *e, const tpl_value *v) {
    return ev_to_str(e, v);
}

static tpl_value *finish(tpl_ev *e, tpl_sb *b) {
    if (b->fail) {
        ev_sb_error(e, b);
        sb_free(b);
        return NULL;
    }
    /* building text costs steps in proportion, which bounds the bytes a render can make */
    if (ev_charge(e, b->len / 8)) {
        sb_free(b);
        return NULL;
    }
    tpl_value *v = sb_finish(b);
    if (!v) {
        sb_free(b);
        return oom(e);
    }
    return v;
}

/* A substring of s by byte offsets, keeping origins. */
static tpl_value *substr(tpl_ev *e, const tpl_value *s, size_t from, size_t to) {
    if (from == 0 && to >= s->u.str.len) return tv_ref((tpl_value *)s);
    tpl_sb b;
    sb_init(&b, e->max_str);
    sb_put_slice(&b, s, from, to);
    return finish(e, &b);
}

/* Copies s with each character mapped by f(position flags); the byte lengths of the
 * mapped characters are kept, so the origins stay where they were. */
enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE_PY, CASE_TITLE_JINJA };

static tpl_value *recase(tpl_ev *e, const tpl_value *s, int mode) {
    tpl_sb b;
    sb_init(&b, e->max_str);
    if (sb_put_str(&b, s) != 0) return finish(e, &b);
    unsigned char *p = (unsigned char *)b.s;
    bool prev_cased = false, word_start = true, first = true;
    for (size_t i = 0; i < b.len;) {
        size_t l;
        uint32_t c = u8_get(p, b.len, i, &l), m = c;
        switch (mode) {
        case CASE_UPPER:
            m = cp_upper(c);
            break;
        case CASE_LOWER:
            m = cp_lower(c);
            break;
        case CASE_CAPITALIZE:
            m = first ? cp_upper(c) : cp_lower(c);
            break;
        case CASE_TITLE_PY:
            if (cp_cased(c)) {
                m = prev_cased ? cp_lower(c) : cp_upper(c);
                prev_cased = true;
            } else {
                prev_cased = false;
            }
            break;
        default: { /* Jinja's title: words start after -, whitespace, (, {, [ or < */
            bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || cp_isspace(c);
            if (sep)
                word_start = true;
            else {
                m = word_start ? cp_upper(c) : cp_lower(c);
                word_start = false;
            }
        }
        }
        first = false;
        char enc[4];
        if (m != c && u8_put(m, enc) == l) memcpy(p + i, enc, l);
        i += l;
    }
    return finish(e, &b);
}

/* Python str.strip family: chars NULL strips whitespace, else the characters of chars. */
static bool in_chars(const tpl_value *chars, uint32_t c) {
    if (!chars) return cp_isspace(c);
    const unsigned char *s = (const unsigned char *)chars->u.str.s;
    for (size_t i = 0; i < chars->u.str.len;) {
        size_t l;
        if (u8_get(s, chars->u.str.len, i, &l) == c) return true;
        i += l;
    }
    return false;
}

static tpl_value *strip(tpl_ev *e, const tpl_value *s, const tpl_value *chars, bool left,
                        bool right) {
    if (chars && chars->kind == TPL_NONE) chars = NULL;
    if (chars && chars->kind != TPL_STRING)
        return type_error(e, chars, "TypeError: strip arg must be None or str, not %s");
    const unsigned char *p = (const unsigned char *)s->u.str.s;
    size_t n = s->u.str.len, from = 0, to = n;
    while (left && from < n) {
        size_t l;
        if (!in_chars(chars, u8_get(p, n, from, &l))) break;
        from += l;
    }
    while (right && to > from) {
        size_t st = to - 1;
        while (st > from && to - st < 4 && (p[st] & 0xC0) == 0x80) st--;
        size_t l;
        uint32_t c = u8_get(p, to, st, &l);
        if (st + l != to) {
            st = to - 1;
            c = u8_get(p, to, st, &l);
        }
        if (!in_chars(chars, c)) break;
        to = st;
    }
    return substr(e, s, from, to);
}

static const char *memfind(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

static const char *memrfind(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

static tpl_value *split(tpl_ev *e, const tpl_value *s, const tpl_value *sep, const tpl_value *maxv,
                        bool from_right) {
    int64_t max = -1;
    if (maxv && want_int(e, maxv, "maxsplit", &max)) return NULL;
    if (sep && sep->kind == TPL_NONE) sep = NULL;
    if (sep && sep->kind != TPL_STRING)
        return type_error(e, sep, "TypeError: must be str or None, not %s");
    if (sep && sep->u.str.len == 0) {
        ev_error(e, "ValueError: empty separator");
        return NULL;
    }
    tpl_value *l = tv_list(0);
    if (!l) return oom(e);
    const char *p = s->u.str.s;
    size_t n = s->u.str.len;
    /* pieces as byte ranges, collected in order (reversed afterwards for rsplit) */
    if (sep) {
        size_t lo = 0, hi = n;
        int64_t done = 0;
        for (;;) {
            const char *f = NULL;
            if (max < 0 || done < max)
                f = from_right ? memrfind(p + lo, hi - lo, sep->u.str.s, sep->u.str.len)
                               : memfind(p + lo, hi - lo, sep->u.str.s, sep->u.str.len);
            if (!f) break;
            size_t at = (size_t)(f - p);
            tpl_value *piece =
                from_right ? substr(e, s, at + sep->u.str.len, hi) : substr(e, s, lo, at);
            if (tv_list_push(l, piece) != 0) goto fail;
            if (from_right)
                hi = at;
            else
                lo = at + sep->u.str.len;
            done++;
        }
        if (tv_list_push(l, substr(e, s, lo, hi)) != 0) goto fail;
    } else {
        size_t lo = 0, hi = n, sp;
        int64_t done = 0;
        if (!from_right) {
            for (;;) {
                while (lo < n && (sp = u8_space_at(p, n, lo))) lo += sp;
                if (lo >= n) break;
                if (max >= 0 && done >= max) { /* the rest, trailing whitespace and all */
                    if (tv_list_push(l, substr(e, s, lo, n)) != 0) goto fail;
                    break;
                }
                size_t w = lo;
                while (w < n && !u8_space_at(p, n, w)) w += u8_clen((const unsigned char *)p, n, w);
                if (tv_list_push(l, substr(e, s, lo, w)) != 0) goto fail;
                lo = w;
                done++;
            }
        } else {
            for (;;) {
                while (hi > 0 && (sp = u8_space_before(p, hi))) hi -= sp;
                if (hi == 0) break;
                if (max >= 0 && done >= max) {
                    if (tv_list_push(l, substr(e, s, 0, hi)) != 0) goto fail;
                    break;
                }
                size_t w = hi;
                while (w > 0 && !u8_space_before(p, w)) {
                    size_t st = w - 1;
                    while (st > 0 && w - st < 4 && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
                    if (st + u8_clen((const unsigned char *)p, w, st) != w) st = w - 1;
                    w = st;
                }
                if (tv_list_push(l, substr(e, s, w, hi)) != 0) goto fail;
                hi = w;
                done++;
            }
        }
    }
    if (from_right) { /* collected right to left */
        for (size_t i = 0, j = l->u.list.n; i + 1 < j--; i++) {
            tpl_value *t = l->u.list.items[i];
            l->u.list.items[i] = l->u.list.items[j];
            l->u.list.items[j] = t;
        }
    }
    return l;
fail:
    tv_unref(l);
    return e->failed ? NULL : oom(e);
}

/* Python str.replace (count < 0: all). The replacement keeps its own origins. */
static tpl_value *replace(tpl_ev *e, const tpl_value *s, const tpl_value *old, const tpl_value *neu,
                          int64_t count) {
    tpl_sb b;
    sb_init(&b, e->max_str);
    const char *p = s->u.str.s;
    size_t n = s->u.str.len, on = old->u.str.len, at = 0;
    int64_t done = 0;
    if (on == 0) { /* inserts between every character and at both ends */
        while (count < 0 || done < count) {
            if (sb_put_str(&b, neu)) break;
            done++;
            if (at >= n) break;
            size_t l = u8_clen((const unsigned char *)p, n, at);
            if (sb_put_slice(&b, s, at, at + l)) break;
            at += l;
        }
        sb_put_slice(&b, s, at, n);
        return finish(e, &b);
    }
    while (count < 0 || done < count) {
        const char *f = memfind(p + at, n - at, old->u.str.s, on);
        if (!f) break;
        size_t pos = (size_t)(f - p);
        if (sb_put_slice(&b, s, at, pos) || sb_put_str(&b, neu)) break;
        at = pos + on;
        done++;
        if (ev_charge(e, 1)) {
            sb_free(&b);
            return NULL;
        }
    }
    sb_put_slice(&b, s, at, n);
    return finish(e, &b);
}

/* ---- sorting ---- */

int tpl_msort(void **a, size_t n, int (*cmp)(void *ctx, const void *x, const void *y, int *out),
              void *ctx) {
    if (n < 2) return 0;
    void **tmp = malloc(n * sizeof *tmp);
    if (!tmp) return -1;
    int rc = 0;
    for (size_t w = 1; w < n && rc == 0; w *= 2) {
        for (size_t lo = 0; lo < n && rc == 0; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c;
                if (cmp(ctx, &a[j], &a[i], &c) != 0) {
                    rc = -1;
                    break;
                }
                tmp[k++] = c < 0 ? a[j++] : a[i++];
            }
            if (rc) break;
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        if (rc == 0) memcpy(a, tmp, n * sizeof *a);
    }
    free(tmp);
    return rc;
}

typedef struct sort_item {
    tpl_value *key;  /* owned */
    tpl_value *item; /* borrowed */
} sort_item;

static int item_cmp(void *ctx, const void *x, const void *y, int *out) {
    (void)ctx;
    const sort_item *a = *(sort_item *const *)x, *b = *(sort_item *const *)y;
    int c;
    if (tv_compare(a->key, b->key, &c, 0) != 0) return -1;
    *out = c == 2 ? 0 : c;
    return 0;
}

/* The sort key of an item: an attribute of it (dotted, or an index), lowercased when
 * comparing case-insensitively. */
static tpl_value *sort_key(tpl_ev *e, tpl_value *item, const tpl_value *attr, bool case_sensitive) {
    tpl_value *k = tv_ref(item);
    if (attr && attr->kind == TPL_STRING) {
        const char *a = attr->u.str.s, *end = a + attr->u.str.len;
        while (a <= end && k) {
            const char *dot = memchr(a, '.', (size_t)(end - a));
            size_t len = dot ? (size_t)(dot - a) : (size_t)(end - a);
            tpl_value *nk;
            if (len && a[0] >= '0' && a[0] <= '9') {
                tpl_value *idx = tv_int(strtoll(a, NULL, 10));
                nk = idx ? ev_getitem(e, k, idx) : oom(e);
                tv_unref(idx);
            } else if (k->kind == TPL_UNDEFINED) {
                nk = tv_ref(k);
            } else {
                tpl_value *ks = tv_str(a, len, TPL_ORIGIN_TEMPLATE);
                nk = ks ? ev_getitem(e, k, ks) : oom(e);
                tv_unref(ks);
            }
            tv_unref(k);
            k = nk;
            if (!dot) break;
            a = dot + 1;
        }
    } else if (attr && (attr->kind == TPL_INT)) {
        tpl_value *nk = ev_getitem(e, k, (tpl_value *)attr);
        tv_unref(k);
        k = nk;
    }
    if (k && !case_sensitive && k->kind == TPL_STRING) {
        tpl_value *l = recase(e, k, CASE_LOWER);
        tv_unref(k);
        k = l;
    }
    return k;
}

static void free_items(sort_item *it, size_t n) {
    for (size_t i = 0; i < n; i++) tv_unref(it[i].key);
    free(it);
}

/* Keys for every element of list l. */
static sort_item *keyed(tpl_ev *e, tpl_value *l, const tpl_value *attr, bool cs) {
    sort_item *it = calloc(l->u.list.n ? l->u.list.n : 1, sizeof *it);
    if (!it) {
        ev_oom(e);
        return NULL;
    }
    for (size_t i = 0; i < l->u.list.n; i++) {
        it[i].item = l->u.list.items[i];
        if (!(it[i].key = sort_key(e, it[i].item, attr, cs))) {
            free_items(it, i);
            return NULL;
        }
    }
    return it;
}

static tpl_value *sorted_list(tpl_ev *e, tpl_value *l, const tpl_value *attr, bool cs,
                              bool reverse) {
    size_t n = l->u.list.n;
    sort_item *it = keyed(e, l, attr, cs);
    void **order = it ? malloc((n ? n : 1) * sizeof *order) : NULL;
    if (!order) {
        if (it) free_items(it, n);
        return it ? oom(e) : NULL;
    }
    for (size_t i = 0; i < n; i++) order[reverse ? n - 1 - i : i] = &it[i];
    tpl_value *r = NULL;
    if (ev_charge(e, n) == 0) {
        if (tpl_msort(order, n, item_cmp, NULL) != 0) {
            ev_error(e, "TypeError: '<' not supported between the items being sorted");
        } else if ((r = tv_list(n))) {
            for (size_t i = 0; i < n; i++)
                r->u.list.items[r->u.list.n++] =
                    tv_ref(((sort_item *)order[reverse ? n - 1 - i : i])->item);
        } else {
            oom(e);
        }
    }
    free(order);
    free_items(it, n);
    return r;
}

/* ---- operators ---- */

static bool is_num(const tpl_value *v) {
    return v->kind == TPL_INT || v->kind == TPL_FLOAT || v->kind == TPL_BOOL;
}
static double fnum(const tpl_value *v) {
    return v->kind == TPL_FLOAT ? v->u.f : v->kind == TPL_INT ? (double)v->u.i : v->u.b;
}
static int64_t inum(const tpl_value *v) {
    return v->kind == TPL_INT ? v->u.i : v->u.b;
}

static tpl_value *overflow(tpl_ev *e) {
    ev_error(e, "OverflowError: integer result too large");
    return NULL;
}

static tpl_value *repeat(tpl_ev *e, const tpl_value *seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq->kind == TPL_STRING) {
        if (seq->u.str.len && (uint64_t)times > e->max_str / seq->u.str.len) {
            ev_error(e, "output or string longer than the limit of %zu bytes", e->max_str);
            return NULL;
        }
        tpl_sb b;
        sb_init(&b, e->max_str);
        for (int64_t i = 0; i < times && seq->u.str.len && !b.fail; i++) sb_put_str(&b, seq);
        return finish(e, &b);
    }
    if (seq->u.list.n && (uint64_t)times > TPL_MAX_LIST / seq->u.list.n) {
        ev_error(e, "MemoryError: list too long");
        return NULL;
    }
    size_t n = seq->u.list.n * (size_t)times;
    if (ev_charge(e, n / 4)) return NULL;
    tpl_value *l = tv_list(n);
    if (!l) return oom(e);
    l->tuple = seq->tuple;
    for (int64_t i = 0; i < times; i++)
        for (size_t j = 0; j < seq->u.list.n; j++)
            l->u.list.items[l->u.list.n++] = tv_ref(seq->u.list.items[j]);
    return l;
}

tpl_value *tpl_binop(tpl_ev *e, int op, tpl_value *a, tpl_value *b) {
    static const char *const sym[] = {
        [OP_ADD] = "+",       [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/",
        [OP_FLOORDIV] = "//", [OP_MOD] = "%", [OP_POW] = "**"};
    if (a->kind == TPL_UNDEFINED) {
        ev_undef_error(e, a);
        return NULL;
    }
    if (b->kind == TPL_UNDEFINED) {
        ev_undef_error(e, b);
        return NULL;
    }
    if (is_num(a) && is_num(b)) {
        bool ints = a->kind != TPL_FLOAT && b->kind != TPL_FLOAT;
        int64_t x = ints ? inum(a) : 0, y = ints ? inum(b) : 0, r;
        double fx = fnum(a), fy = fnum(b);
        tpl_value *v = NULL;
        switch (op) {
        case OP_ADD:
            if (!ints)
                v = tv_float(fx + fy);
            else if (__builtin_add_overflow(x, y, &r))
                return overflow(e);
            else
                v = tv_int(r);
            break;
        case OP_SUB:
            if (!ints)
                v = tv_float(fx - fy);
            else if (__builtin_sub_overflow(x, y, &r))
                return overflow(e);
            else
                v = tv_int(r);
            break;
        case OP_MUL:
            if (!ints)
                v = tv_float(fx * fy);
            else if (__builtin_mul_overflow(x, y, &r))
                return overflow(e);
            else
                v = tv_int(r);
            break;
        case OP_DIV:
            if (fy == 0) {
                ev_error(e, "ZeroDivisionError: division by zero");
                return NULL;
            }
            v = tv_float(fx / fy);
            break;
        case OP_FLOORDIV:
        case OP_MOD:
            if (ints) {
                if (y == 0) {
                    ev_error(e, "ZeroDivisionError: integer division or modulo by zero");
                    return NULL;
                }
                if (x == INT64_MIN && y == -1) {
                    if (op == OP_MOD) return tv_int(0);
                    return overflow(e);
                }
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                v = tv_int(op == OP_MOD ? m : q);
            } else {
                if (fy == 0) {
                    ev_error(e, "ZeroDivisionError: float modulo");
                    return NULL;
                }
                /* Python's float_divmod */
                double mod = fmod(fx, fy), div = (fx - mod) / fy, fl;
                if (mod != 0) {
                    if ((fy < 0) != (mod < 0)) {
                        mod += fy;
                        div -= 1.0;
                    }
                } else {
                    mod = copysign(0.0, fy);
                }
                if (div != 0) {
                    fl = floor(div);
                    if (div - fl > 0.5) fl += 1.0;
                } else {
                    fl = copysign(0.0, fx / fy);
                }
                v = tv_float(op == OP_MOD ? mod : fl);
            }
            break;
        case OP_POW:
            if (ints && y >= 0) {
                int64_t acc = 1, base = x;
                for (int64_t k = y; k > 0; k >>= 1) {
                    if ((k & 1) && __builtin_mul_overflow(acc, base, &acc)) return overflow(e);
                    if (k > 1 && __builtin_mul_overflow(base, base, &base)) {
                        /* base overflow only matters if another bit remains */
                        return overflow(e);
                    }
                }
                v = tv_int(acc);
            } else {
                if (fx == 0 && fy < 0) {
                    ev_error(e, "ZeroDivisionError: 0.0 cannot be raised to a negative power");
                    return NULL;
                }
                v = tv_float(pow(fx, fy));
            }
            break;
        default:
            break;
        }
        return v ? v : oom(e);
    }
    if (op == OP_ADD && a->kind == TPL_STRING && b->kind == TPL_STRING) {
        tpl_sb s;
        sb_init(&s, e->max_str);
        sb_put_str(&s, a);
        sb_put_str(&s, b);
        return finish(e, &s);
    }
    if (op == OP_ADD && a->kind == TPL_LIST && b->kind == TPL_LIST && a->tuple == b->tuple) {
        size_t n = a->u.list.n + b->u.list.n;
        if (n > TPL_MAX_LIST) {
            ev_error(e, "MemoryError: list too long");
            return NULL;
        }
        if (ev_charge(e, n / 4)) return NULL;
        tpl_value *l = tv_list(n);
        if (!l) return oom(e);
        l->tuple = a->tuple;
        for (size_t i = 0; i < a->u.list.n; i++)
            l->u.list.items[l->u.list.n++] = tv_ref(a->u.list.items[i]);
        for (size_t i = 0; i < b->u.list.n; i++)
            l->u.list.items[l->u.list.n++] = tv_ref(b->u.list.items[i]);
        return l;
    }
    if (op == OP_MUL && (a->kind == TPL_STRING || a->kind == TPL_LIST) &&
        (b->kind == TPL_INT || b->kind == TPL_BOOL))
        return repeat(e, a, inum(b));
    if (op == OP_MUL && (b->kind == TPL_STRING || b->kind == TPL_LIST) &&
        (a->kind == TPL_INT || a->kind == TPL_BOOL))
        return repeat(e, b, inum(a));
    if (a->kind == TPL_NONE || b->kind == TPL_NONE) e->none_err = true;
    if (op == OP_ADD && a->kind == TPL_STRING)
        ev_error(e, "TypeError: can only concatenate str (not \"%s\") to str", tv_type_name(b));
    else if (op == OP_ADD && a->kind == TPL_LIST)
        ev_error(e, "TypeError: can only concatenate %s (not \"%s\") to %s", tv_type_name(a),
                 tv_type_name(b), tv_type_name(a));
    else
        ev_error(e, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'", sym[op],
                 tv_type_name(a), tv_type_name(b));
    return NULL;
}

int tpl_contains(tpl_ev *e, tpl_value *a, tpl_value *b) {
    /* scans cost in proportion to what they scan */
    size_t n = b->kind == TPL_STRING ? b->u.str.len / 64
               : b->kind == TPL_LIST ? b->u.list.n / 8
               : b->kind == TPL_DICT ? b->u.dict.n / 32
                                     : 0;
    if (ev_charge(e, n)) return -1;
    switch (b->kind) {
    case TPL_STRING:
        if (a->kind != TPL_STRING) {
            if (a->kind == TPL_UNDEFINED) return ev_undef_error(e, a);
            return ev_error(e, "TypeError: 'in <string>' requires string as left operand, not %s",
                            tv_type_name(a));
        }
        return memfind(b->u.str.s, b->u.str.len, a->u.str.s, a->u.str.len) != NULL;
    case TPL_LIST:
        for (size_t i = 0; i < b->u.list.n; i++) {
            int r = tv_equal(a, b->u.list.items[i], 0);
            if (r) return r < 0 ? ev_error(e, "RecursionError: values nested too deeply") : 1;
        }
        return 0;
    case TPL_DICT:
        if ((a->kind == TPL_LIST && !a->tuple) || a->kind == TPL_DICT)
            return ev_error(e, "TypeError: unhashable type: '%s'", tv_type_name(a));
        return tv_dict_find(b, a) != NULL;
    case TPL_UNDEFINED:
        return 0;
    default:
        if (b->kind == TPL_NONE) e->none_err = true;
        return ev_error(e, "TypeError: argument of type '%s' is not iterable", tv_type_name(b));
    }
}

/* ---- number parsing for int() and float() ---- */

/* Python's float(str): surrounding whitespace, underscores between digits, inf/nan. */
static bool parse_float(const tpl_value *s, double *out) {
    char buf[128];
    size_t from = 0, to = s->u.str.len, sp, w = 0;
    while (from < to && (sp = u8_space_at(s->u.str.s, to, from))) from += sp;
    while (to > from && (sp = u8_space_before(s->u.str.s, to))) to -= sp;
    if (to == from || to - from >= sizeof buf) return false;
    const char *p = s->u.str.s;
    for (size_t i = from; i < to; i++) {
        char c = p[i];
        if (c == '_') {
            if (i == from || i + 1 >= to || !(p[i - 1] >= '0' && p[i - 1] <= '9') ||
                !(p[i + 1] >= '0' && p[i + 1] <= '9'))
                return false;
            continue;
        }
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' ||
              (c | 32) == 'i' || (c | 32) == 'n' || (c | 32) == 'f' || (c | 32) == 't' ||
              (c | 32) == 'y' || (c | 32) == 'a'))
            return false;
        buf[w++] = c;
    }
    buf[w] = 0;
    const char *b = buf + (buf[0] == '+' || buf[0] == '-');
    bool word = (b[0] | 32) == 'i' || (b[0] | 32) == 'n';
    if (word) {
        char low[16];
        size_t k = 0;
        for (; k < sizeof low - 1 && b[k]; k++) low[k] = (char)(b[k] | 32);
        low[k] = 0;
        if (strcmp(low, "inf") && strcmp(low, "infinity") && strcmp(low, "nan")) return false;
    } else if ((b[0] | 32) == 'x' || strchr(b, 'x') || strchr(b, 'X')) {
        return false;
    }
    char *end;
    double d = strtod(buf, &end);
    if (*end) return false;
    *out = d;
    return true;
}

/* Python's int(str, 10). */
static bool parse_int(const tpl_value *s, int64_t *out, bool *overflowed) {
    size_t from = 0, to = s->u.str.len, sp;
    const char *p = s->u.str.s;
    *overflowed = false;
    while (from < to && (sp = u8_space_at(p, to, from))) from += sp;
    while (to > from && (sp = u8_space_before(p, to))) to -= sp;
    if (from == to) return false;
    bool neg = false;
    if (p[from] == '+' || p[from] == '-') neg = p[from++] == '-';
    if (from == to) return false;
    uint64_t v = 0;
    for (size_t i = from; i < to; i++) {
        char c = p[i];
        if (c == '_' && i > from && i + 1 < to && p[i + 1] != '_') continue;
        if (c < '0' || c > '9') return false;
        if (v > (UINT64_MAX - 9) / 10)
            *overflowed = true;
        else
            v = v * 10 + (uint64_t)(c - '0');
    }
    if (v > (uint64_t)INT64_MAX + neg) *overflowed = true;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* ---- filters ---- */

static tpl_value *collect(tpl_ev *e, tpl_value *v) {
    return ev_iterate(e, v);
}

static tpl_value *do_tojson(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    tpl_json_opts o = {.item_sep = ", ", .key_sep = ": ", .item_sep_len = 2, .key_sep_len = 2};
    char spaces[128];
    if (slot[0]) o.ensure_ascii = tv_truthy(slot[0]);
    if (slot[3]) o.sort_keys = tv_truthy(slot[3]);
    if (!is_none(slot[1])) {
        o.has_indent = true;
        o.item_sep = ",";
        o.item_sep_len = 1;
        if (slot[1]->kind == TPL_STRING) {
            o.indent = slot[1]->u.str.s;
            o.indent_len = slot[1]->u.str.len;
        } else if (slot[1]->kind == TPL_INT || slot[1]->kind == TPL_BOOL) {
            int64_t k = inum(slot[1]);
            if (k < 0) k = 0;
            if (k > (int64_t)sizeof spaces) {
                ev_error(e, "tojson: indent too large");
                return NULL;
            }
            memset(spaces, ' ', (size_t)k);
            o.indent = spaces;
            o.indent_len = (size_t)k;
        } else {
            return type_error(e, slot[1], "TypeError: tojson indent must be an int or str, not %s");
        }
    }
    if (!is_none(slot[2])) {
        const tpl_value *s = slot[2];
        if (s->kind != TPL_LIST || s->u.list.n != 2 || s->u.list.items[0]->kind != TPL_STRING ||
            s->u.list.items[1]->kind != TPL_STRING) {
            ev_error(e, "TypeError: tojson separators must be a pair of strings");
            return NULL;
        }
        o.item_sep = s->u.list.items[0]->u.str.s;
        o.item_sep_len = s->u.list.items[0]->u.str.len;
        o.key_sep = s->u.list.items[1]->u.str.s;
        o.key_sep_len = s->u.list.items[1]->u.str.len;
    }
    int origin = tv_origin_of(v, 0);
    if (origin < 0) {
        ev_error(e, "ValueError: value nested too deeply for tojson");
        return NULL;
    }
    tpl_sb b;
    sb_init(&b, e->max_str);
    if (ev_write_json(e, &b, v, &o, origin == TPL_ORIGIN_TEMPLATE ? 0 : 1, 0, 0) != 0) {
        sb_free(&b);
        return NULL;
    }
    return finish(e, &b);
}

static tpl_value *do_indent(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    tpl_value *s = str_of(e, v), *ind = NULL;
    if (!s) return NULL;
    if (slot[0] && slot[0]->kind == TPL_STRING)
        ind = tv_ref(slot[0]);
    else {
        int64_t w = 4;
        if (slot[0] && want_int(e, slot[0], "width", &w)) {
            tv_unref(s);
            return NULL;
        }
        if (w < 0) w = 0;
        if (w > 4096) w = 4096;
        char *sp = malloc((size_t)w + 1);
        if (sp) {
            memset(sp, ' ', (size_t)w);
            ind = tv_str(sp, (size_t)w, TPL_ORIGIN_TEMPLATE);
            free(sp);
        }
        if (!ind) {
            tv_unref(s);
            return oom(e);
        }
    }
    bool first = slot[1] && tv_truthy(slot[1]), blank = slot[2] && tv_truthy(slot[2]);
    /* Jinja: s += "\n"; lines = s.splitlines(); first line as is, the others indented
     * unless blank (or blank=True), joined with "\n" */
    tpl_sb b;
    sb_init(&b, e->max_str);
    if (first) sb_put_str(&b, ind);
    const char *p = s->u.str.s;
    size_t n = s->u.str.len, at = 0, line = 0;
    for (;;) { /* every line, the last one even when empty: s + "\n" split at breaks */
        size_t end = at, brk = 0;
        while (end < n) {
            unsigned char c = (unsigned char)p[end];
            if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1C && c <= 0x1E)) {
                brk = (c == '\r' && end + 1 < n && p[end + 1] == '\n') ? 2 : 1;
                break;
            }
            if (c == 0xC2 && end + 1 < n && (unsigned char)p[end + 1] == 0x85) {
                brk = 2;
                break;
            }
            if (c == 0xE2 && end + 2 < n && (unsigned char)p[end + 1] == 0x80 &&
                ((unsigned char)p[end + 2] == 0xA8 || (unsigned char)p[end + 2] == 0xA9)) {
                brk = 3;
                break;
            }
            end++;
        }
        if (line > 0) {
            sb_putc(&b, '\n', TPL_ORIGIN_TEMPLATE);
            if (blank || end > at) sb_put_str(&b, ind);
        }
        sb_put_slice(&b, s, at, end);
        line++;
        if (end == n) break;
        at = end + brk;
    }
    tv_unref(s);
    tv_unref(ind);
    return finish(e, &b);
}

static tpl_value *do_join(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    tpl_sb b;
    sb_init(&b, e->max_str);
    const tpl_value *sep = slot[0];
    tpl_value *seps = NULL;
    if (sep && sep->kind != TPL_STRING) {
        if (!(seps = str_of(e, sep))) {
            tv_unref(l);
            return NULL;
        }
        sep = seps;
    }
    for (size_t i = 0; i < l->u.list.n && !e->failed; i++) {
        if (i && sep) sb_put_str(&b, sep);
        tpl_value *item = tv_ref(l->u.list.items[i]);
        if (given(slot[1])) {
            tpl_value *k = sort_key(e, item, slot[1], true);
            tv_unref(item);
            item = k;
        }
        if (!item || ev_write_str(e, &b, item) != 0) {
            tv_unref(item);
            break;
        }
        tv_unref(item);
    }
    tv_unref(seps);
    tv_unref(l);
    if (e->failed) {
        sb_free(&b);
        return NULL;
    }
    return finish(e, &b);
}

/* select / reject / selectattr / rejectattr / map share the argument layout: the first
 * positional may be an attribute (the *attr variants), then a test or filter name, then
 * its arguments. */
static tpl_value *do_select(tpl_ev *e, int id, tpl_value *v, tpl_value **args, size_t nargs) {
    bool attr = id == F_SELECTATTR || id == F_REJECTATTR,
         reject = id == F_REJECT || id == F_REJECTATTR;
    size_t at = 0;
    const tpl_value *attr_name = NULL;
    if (attr) {
        if (nargs < 1) {
            ev_error(e, "TypeError: %s needs an attribute name",
                     reject ? "rejectattr" : "selectattr");
            return NULL;
        }
        attr_name = args[at++];
    }
    int test = 0;
    if (at < nargs) {
        if (args[at]->kind != TPL_STRING || !(test = tpl_test_id(args[at]->u.str.s))) {
            ev_error(e, "TemplateRuntimeError: no test named %s",
                     args[at]->kind == TPL_STRING ? args[at]->u.str.s : "(not a string)");
            return NULL;
        }
        at++;
    }
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    tpl_value *r = tv_list(0);
    if (!r) {
        tv_unref(l);
        return oom(e);
    }
    for (size_t i = 0; i < l->u.list.n; i++) {
        tpl_value *item = l->u.list.items[i],
                  *x = attr ? sort_key(e, item, attr_name, true) : tv_ref(item);
        int ok = -1;
        if (x) ok = test ? tpl_apply_test(e, test, x, args + at, nargs - at) : tv_truthy(x);
        tv_unref(x);
        if (ok < 0 || (ok != reject && tv_list_push(r, tv_ref(item)) != 0)) {
            if (ok >= 0) oom(e);
            tv_unref(r);
            tv_unref(l);
            return NULL;
        }
    }
    tv_unref(l);
    return r;
}

static tpl_value *do_map(tpl_ev *e, tpl_value *v, tpl_value **args, size_t nargs,
                         const char **kwnames, tpl_value **kwvals, size_t nkw) {
    const tpl_value *attr = NULL, *def = NULL;
    for (size_t k = 0; k < nkw; k++) {
        if (!strcmp(kwnames[k], "attribute"))
            attr = kwvals[k];
        else if (!strcmp(kwnames[k], "default"))
            def = kwvals[k];
        else if (attr || nargs == 0) {
            ev_error(e, "TypeError: map() got an unexpected keyword argument '%s'", kwnames[k]);
            return NULL;
        }
    }
    int filter = 0;
    if (!attr) {
        if (nargs < 1 || args[0]->kind != TPL_STRING ||
            !(filter = tpl_filter_id(args[0]->u.str.s))) {
            ev_error(e, "TemplateRuntimeError: map needs a filter name or attribute=");
            return NULL;
        }
    }
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    tpl_value *r = tv_list(l->u.list.n);
    if (!r) {
        tv_unref(l);
        return oom(e);
    }
    for (size_t i = 0; i < l->u.list.n; i++) {
        tpl_value *x;
        if (attr) {
            x = sort_key(e, l->u.list.items[i], attr, true);
            if (x && x->kind == TPL_UNDEFINED && def) {
                tv_unref(x);
                x = tv_ref((tpl_value *)def);
            }
        } else {
            x = tpl_apply_filter(e, filter, l->u.list.items[i], args + 1, nargs - 1, kwnames,
                                 kwvals, nkw);
        }
        if (!x) {
            tv_unref(r);
            tv_unref(l);
            return NULL;
        }
        r->u.list.items[r->u.list.n++] = x;
    }
    tv_unref(l);
    return r;
}

static tpl_value *do_unique(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    bool cs = slot[0] && tv_truthy(slot[0]);
    sort_item *it = keyed(e, l, slot[1], cs);
    tpl_value *r = it ? tv_list(0) : NULL;
    for (size_t i = 0; r && i < l->u.list.n; i++) {
        bool seen = false;
        if (ev_charge(e, i / 8 + 1)) {
            tv_unref(r);
            r = NULL;
            break;
        }
        for (size_t j = 0; j < i && !seen; j++) seen = tv_equal(it[j].key, it[i].key, 0) == 1;
        if (!seen && tv_list_push(r, tv_ref(it[i].item)) != 0) {
            tv_unref(r);
            r = oom(e);
        }
    }
    if (it)
        free_items(it, l->u.list.n);
    else if (!e->failed)
        oom(e);
    tv_unref(l);
    return r;
}

static tpl_value *do_minmax(tpl_ev *e, tpl_value *v, tpl_value **slot, bool want_max) {
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    bool cs = slot[0] && tv_truthy(slot[0]);
    sort_item *it = keyed(e, l, slot[1], cs);
    tpl_value *r = NULL;
    if (it) {
        size_t best = 0;
        bool ok = true;
        for (size_t i = 1; i < l->u.list.n && ok; i++) {
            int c;
            if (tv_compare(it[i].key, it[best].key, &c, 0) != 0)
                ok = false;
            else if (c != 2 && (want_max ? c > 0 : c < 0))
                best = i;
        }
        if (!ok)
            ev_error(e, "TypeError: '<' not supported between the items compared");
        else
            r = l->u.list.n ? tv_ref(it[best].item) : tv_undef();
        free_items(it, l->u.list.n);
    }
    tv_unref(l);
    return r;
}

static tpl_value *do_round(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    int64_t prec = 0;
    if (slot[0] && want_int(e, slot[0], "precision", &prec)) return NULL;
    const char *method = "common";
    if (slot[1]) {
        if (slot[1]->kind != TPL_STRING) {
            ev_error(e, "FilterArgumentError: method must be common, ceil or floor");
            return NULL;
        }
        method = slot[1]->u.str.s;
    }
    if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor")) {
        ev_error(e, "FilterArgumentError: method must be common, ceil or floor");
        return NULL;
    }
    if (!is_num(v)) return type_error(e, v, "TypeError: type %s doesn't define __round__ method");
    if (!strcmp(method, "common")) {
        if (v->kind != TPL_FLOAT && prec >= 0) return tv_int(inum(v));
        double x = fnum(v), r;
        if (isnan(x) || isinf(x)) return tv_float(x);
        if (prec > 300)
            r = x;
        else if (prec >= 0) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x); /* correctly rounded, ties to even */
            r = strtod(buf, NULL);
        } else {
            double p = pow(10.0, (double)-prec);
            r = nearbyint(x / p) * p;
        }
        return v->kind == TPL_FLOAT ? tv_float(r) : tv_int((int64_t)r);
    }
    double p = pow(10.0, (double)prec), x = fnum(v) * p;
    return tv_float((!strcmp(method, "ceil") ? ceil(x) : floor(x)) / p);
}

static int origin_at(const tpl_value *s, size_t i) {
    for (size_t r = 0; r < s->u.str.nruns; r++)
        if (i < s->u.str.runs[r].end) return s->u.str.runs[r].origin;
    return TPL_ORIGIN_TEMPLATE;
}

static tpl_value *do_escape(tpl_ev *e, tpl_value *v) {
    tpl_value *s = str_of(e, v);
    if (!s) return NULL;
    tpl_sb b;
    sb_init(&b, e->max_str);
    size_t run = 0;
    for (size_t i = 0; i < s->u.str.len; i++) {
        const char *rep = NULL;
        switch (s->u.str.s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&#34;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        sb_put_slice(&b, s, run, i);
        sb_puts(&b, rep, origin_at(s, i));
        run = i + 1;
    }
    sb_put_slice(&b, s, run, s->u.str.len);
    tv_unref(s);
    return finish(e, &b);
}

static tpl_value *do_dictsort(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    if (v->kind != TPL_DICT)
        return type_error(e, v, "TypeError: can only dictsort a mapping, not %s");
    bool cs = slot[0] && tv_truthy(slot[0]), rev = slot[2] && tv_truthy(slot[2]);
    bool by_value = false;
    if (slot[1]) {
        if (slot[1]->kind == TPL_STRING && !strcmp(slot[1]->u.str.s, "value"))
            by_value = true;
        else if (!(slot[1]->kind == TPL_STRING && !strcmp(slot[1]->u.str.s, "key"))) {
            ev_error(e, "FilterArgumentError: You can only sort by either \"key\" or \"value\"");
            return NULL;
        }
    }
    tpl_value *pairs = tv_list(v->u.dict.n);
    if (!pairs) return oom(e);
    for (size_t i = 0; i < v->u.dict.n; i++) {
        tpl_value *t = tv_list(2);
        if (!t) {
            tv_unref(pairs);
            return oom(e);
        }
        t->tuple = true;
        t->u.list.items[0] = tv_ref(v->u.dict.keys[i]);
        t->u.list.items[1] = tv_ref(v->u.dict.vals[i]);
        t->u.list.n = 2;
        pairs->u.list.items[pairs->u.list.n++] = t;
    }
    tpl_value idx = {.kind = TPL_INT, .immortal = true, .u.i = by_value ? 1 : 0};
    tpl_value *r = sorted_list(e, pairs, &idx, cs, rev);
    tv_unref(pairs);
    return r;
}

static tpl_value *do_sum(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    tpl_value *acc = slot[1] ? tv_ref(slot[1]) : tv_int(0);
    for (size_t i = 0; acc && i < l->u.list.n; i++) {
        tpl_value *x = given(slot[0]) ? sort_key(e, l->u.list.items[i], slot[0], true)
                                      : tv_ref(l->u.list.items[i]);
        tpl_value *n = x ? tpl_binop(e, OP_ADD, acc, x) : NULL;
        tv_unref(x);
        tv_unref(acc);
        acc = n;
    }
    tv_unref(l);
    return acc;
}

static tpl_value *do_reverse(tpl_ev *e, tpl_value *v) {
    if (v->kind == TPL_STRING) {
        tpl_sb b;
        sb_init(&b, e->max_str);
        const unsigned char *p = (const unsigned char *)v->u.str.s;
        size_t n = v->u.str.len;
        size_t *starts = malloc((n ? n : 1) * sizeof *starts), k = 0;
        if (!starts) return oom(e);
        for (size_t i = 0; i < n; i += u8_clen(p, n, i)) starts[k++] = i;
        for (size_t j = k; j-- > 0;) sb_put_slice(&b, v, starts[j], j + 1 < k ? starts[j + 1] : n);
        free(starts);
        return finish(e, &b);
    }
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    for (size_t i = 0, j = l->u.list.n; i + 1 < j--; i++) {
        tpl_value *t = l->u.list.items[i];
        l->u.list.items[i] = l->u.list.items[j];
        l->u.list.items[j] = t;
    }
    return l;
}

static tpl_value *do_int(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    tpl_value *def = slot[0] ? slot[0] : NULL;
    int64_t base = 10;
    if (slot[1] && want_int(e, slot[1], "base", &base)) return NULL;
    switch (v->kind) {
    case TPL_INT:
        return tv_ref(v);
    case TPL_BOOL:
        return tv_int(v->u.b);
    case TPL_FLOAT:
        if (isnan(v->u.f) || isinf(v->u.f) || fabs(v->u.f) >= 9.2233720368547758e18)
            return overflow(e);
        return tv_int((int64_t)v->u.f);
    case TPL_STRING: {
        int64_t i;
        bool of;
        if (base == 10 && parse_int(v, &i, &of)) return of ? overflow(e) : tv_int(i);
        if (base != 10 && base >= 2 && base <= 36) {
            char *end, buf[80];
            size_t n = v->u.str.len < sizeof buf - 1 ? v->u.str.len : sizeof buf - 1;
            memcpy(buf, v->u.str.s, n);
            buf[n] = 0;
            long long r = strtoll(buf, &end, (int)base);
            while (*end == ' ') end++;
            if (end != buf && !*end) return tv_int(r);
        }
        double d;
        if (parse_float(v, &d)) {
            if (isnan(d) || isinf(d) || fabs(d) >= 9.2233720368547758e18) return overflow(e);
            return tv_int((int64_t)d);
        }
        break;
    }
    default:
        break;
    }
    return def ? tv_ref(def) : tv_int(0);
}

static tpl_value *do_float(tpl_ev *e, tpl_value *v, tpl_value **slot) {
    (void)e;
    double d;
    switch (v->kind) {
    case TPL_FLOAT:
        return tv_ref(v);
    case TPL_INT:
    case TPL_BOOL:
        return tv_float(fnum(v));
    case TPL_STRING:
        if (parse_float(v, &d)) return tv_float(d);
        break;
    default:
        break;
    }
    return slot[0] ? tv_ref(slot[0]) : tv_float(0.0);
}

static tpl_value *do_length(tpl_ev *e, tpl_value *v) {
    switch (v->kind) {
    case TPL_UNDEFINED:
        return tv_int(0);
    case TPL_STRING:
        if (ev_charge(e, v->u.str.len / 64)) return NULL;
        return tv_int((int64_t)u8_count(v->u.str.s, v->u.str.len));
    case TPL_LIST:
        return tv_int((int64_t)v->u.list.n);
    case TPL_DICT:
        return tv_int((int64_t)v->u.dict.n);
    default:
        if (v->kind == TPL_NONE) e->none_err = true;
        ev_error(e, "TypeError: object of type '%s' has no len()", tv_type_name(v));
        return NULL;
    }
}

static tpl_value *first_last(tpl_ev *e, tpl_value *v, bool last) {
    tpl_value *l = collect(e, v);
    if (!l) return NULL;
    tpl_value *r = l->u.list.n ? tv_ref(l->u.list.items[last ? l->u.list.n - 1 : 0]) : tv_undef();
    tv_unref(l);
    return r;
}

static tpl_value *do_wordcount(tpl_ev *e, tpl_value *v) {
    tpl_value *s = str_of(e, v);
    if (!s) return NULL;
    int64_t words = 0;
    bool in = false;
    const unsigned char *p = (const unsigned char *)s->u.str.s;
    for (size_t i = 0; i < s->u.str.len;) {
        size_t l;
        uint32_t c = u8_get(p, s->u.str.len, i, &l);
        bool w = c == '_' || cp_isalnum(c);
        if (w && !in) words++;
        in = w;
        i += l;
    }
    tv_unref(s);
    return tv_int(words);
}

#define SIG0()                                                                                     \
    if (nargs || nkw) {                                                                            \
        ev_error(e, "TypeError: %s() takes no arguments", fname);                                  \
        return NULL;                                                                               \
    }

#define SIG(...)                                                                                   \
    static const char *const params[] = {__VA_ARGS__};                                             \
    tpl_value *slot[sizeof params / sizeof params[0]];                                             \
    if (bind(e, fname, params, sizeof params / sizeof params[0], args, nargs, kwnames, kwvals,     \
             nkw, slot) != 0)                                                                      \
    return NULL

tpl_value *tpl_apply_filter(tpl_ev *e, int id, tpl_value *v, tpl_value **args, size_t nargs,
                            const char **kwnames, tpl_value **kwvals, size_t nkw) {
    const char *fname = "filter";
    for (size_t i = 0; i < COUNT(k_filters); i++)
        if (k_filters[i].id == id) {
            fname = k_filters[i].name;
            break;
        }
    if (ev_charge(e, 1)) return NULL;
    switch (id) {
    case F_DEFAULT: {
        SIG("default_value", "boolean");
        bool use = v->kind == TPL_UNDEFINED || (slot[1] && tv_truthy(slot[1]) && !tv_truthy(v));
        if (!use) return tv_ref(v);
        return slot[0] ? tv_ref(slot[0]) : tv_str("", 0, TPL_ORIGIN_TEMPLATE);
    }
    case F_TOJSON: {
        SIG("ensure_ascii", "indent", "separators", "sort_keys");
        return do_tojson(e, v, slot);
    }
    case F_LENGTH:
    case F_COUNT: {
        SIG0();
        return do_length(e, v);
    }
    case F_MAP:
        return do_map(e, v, args, nargs, kwnames, kwvals, nkw);
    case F_SELECT:
    case F_REJECT:
    case F_SELECTATTR:
    case F_REJECTATTR:
        if (nkw) {
            ev_error(e, "TypeError: %s() takes no keyword arguments", fname);
            return NULL;
        }
        return do_select(e, id, v, args, nargs);
    default:
        break;
    }
    /* the rest: string-like or collection filters with fixed signatures */
    switch (id) {
    case F_TRIM: {
        SIG("chars");
        tpl_value *s = str_of(e, v), *r = s ? strip(e, s, slot[0], true, true) : NULL;
        tv_unref(s);
        return r;
    }
    case F_UPPER:
    case F_LOWER:
    case F_CAPITALIZE:
    case F_TITLE: {
        SIG0();
        tpl_value *s = str_of(e, v);
        int mode = id == F_UPPER   ? CASE_UPPER
                   : id == F_LOWER ? CASE_LOWER
                   : id == F_TITLE ? CASE_TITLE_JINJA
                                   : CASE_CAPITALIZE;
        tpl_value *r = s ? recase(e, s, mode) : NULL;
        tv_unref(s);
        return r;
    }
    case F_REPLACE: {
        SIG("old", "new", "count");
        if (!slot[0] || !slot[1]) {
            ev_error(e, "TypeError: replace() needs old and new");
            return NULL;
        }
        int64_t count = -1;
        if (!is_none(slot[2]) && want_int(e, slot[2], "count", &count)) return NULL;
        tpl_value *s = str_of(e, v), *o = str_of(e, slot[0]), *n = str_of(e, slot[1]);
        tpl_value *r = s && o && n ? replace(e, s, o, n, count) : NULL;
        tv_unref(s);
        tv_unref(o);
        tv_unref(n);
        return r;
    }
    case F_STRING:
    case F_SAFE: {
        SIG0();
        return str_of(e, v);
    }
    case F_JOIN: {
        SIG("d", "attribute");
        return do_join(e, v, slot);
    }
    case F_LIST: {
        SIG0();
        return collect(e, v);
    }
    case F_FIRST:
    case F_LAST: {
        SIG0();
        return first_last(e, v, id == F_LAST);
    }
    case F_INT: {
        SIG("default", "base");
        return do_int(e, v, slot);
    }
    case F_FLOAT: {
        SIG("default");
        return do_float(e, v, slot);
    }
    case F_ABS: {
        SIG0();
        if (v->kind == TPL_FLOAT) return tv_float(fabs(v->u.f));
        if (v->kind == TPL_INT || v->kind == TPL_BOOL) {
            int64_t x = inum(v);
            if (x == INT64_MIN) return overflow(e);
            return tv_int(x < 0 ? -x : x);
        }
        return type_error(e, v, "TypeError: bad operand type for abs(): '%s'");
    }
    case F_ROUND: {
        SIG("precision", "method");
        return do_round(e, v, slot);
    }
    case F_ITEMS: {
        SIG0();
        if (v->kind == TPL_UNDEFINED) return tv_list(0);
        if (v->kind != TPL_DICT)
            return type_error(e, v, "TypeError: Can only get item pairs from a mapping, not %s");
        tpl_value *l = tv_list(v->u.dict.n);
        for (size_t i = 0; l && i < v->u.dict.n; i++) {
            tpl_value *t = tv_list(2);
            if (!t) {
                tv_unref(l);
                return oom(e);
            }
            t->tuple = true;
            t->u.list.items[0] = tv_ref(v->u.dict.keys[i]);
            t->u.list.items[1] = tv_ref(v->u.dict.vals[i]);
            t->u.list.n = 2;
            l->u.list.items[l->u.list.n++] = t;
        }
        return l ? l : oom(e);
    }
    case F_DICTSORT: {
        SIG("case_sensitive", "by", "reverse");
        return do_dictsort(e, v, slot);
    }
    case F_SORT: {
        SIG("reverse", "case_sensitive", "attribute");
        tpl_value *l = collect(e, v), *r;
        if (!l) return NULL;
        r = sorted_list(e, l, given(slot[2]) ? slot[2] : NULL, slot[1] && tv_truthy(slot[1]),
                        slot[0] && tv_truthy(slot[0]));
        tv_unref(l);
        return r;
    }
    case F_UNIQUE: {
        SIG("case_sensitive", "attribute");
        return do_unique(e, v, slot);
    }
    case F_MIN:
    case F_MAX: {
        SIG("case_sensitive", "attribute");
        return do_minmax(e, v, slot, id == F_MAX);
    }
    case F_SUM: {
        SIG("attribute", "start");
        return do_sum(e, v, slot);
    }
    case F_REVERSE: {
        SIG0();
        return do_reverse(e, v);
    }
    case F_INDENT: {
        SIG("width", "first", "blank");
        return do_indent(e, v, slot);
    }
    case F_WORDCOUNT: {
        SIG0();
        return do_wordcount(e, v);
    }
    case F_ESCAPE: {
        SIG0();
        return do_escape(e, v);
    }
    case F_ATTR: {
        SIG("name");
        if (!slot[0] || slot[0]->kind != TPL_STRING) {
            ev_error(e, "TypeError: attr() needs an attribute name");
            return NULL;
        }
        if (v->kind == TPL_UNDEFINED) return tv_ref(v);
        return ev_getattr(e, v, slot[0]->u.str.s, slot[0]->u.str.len);
    }
    default:
        ev_error(e, "internal: unknown filter");
        return NULL;
    }
}

/* ---- tests ---- */

static bool cased_all(const tpl_value *s, bool upper) {
    bool any = false;
    const unsigned char *p = (const unsigned char *)s->u.str.s;
    for (size_t i = 0; i < s->u.str.len;) {
        size_t l;
        uint32_t c = u8_get(p, s->u.str.len, i, &l);
        if (cp_cased(c)) {
            any = true;
            if (upper ? cp_lower(c) == c && cp_upper(c) != c : cp_upper(c) == c && cp_lower(c) != c)
                return false;
        }
        i += l;
    }
    return any;
}

int tpl_apply_test(tpl_ev *e, int id, tpl_value *v, tpl_value **args, size_t nargs) {
    size_t need = 0;
    switch (id) {
    case T_IN:
    case T_EQ:
    case T_NE:
    case T_GT:
    case T_LT:
    case T_GE:
    case T_LE:
    case T_DIVISIBLEBY:
    case T_SAMEAS:
        need = 1;
        break;
    default:
        break;
    }
    if (nargs != need)
        return ev_error(e, "TypeError: test takes %zu argument(s), %zu given", need, nargs);
    tpl_value *a = need ? args[0] : NULL;
    switch (id) {
    case T_DEFINED:
        return v->kind != TPL_UNDEFINED;
    case T_UNDEFINED:
        return v->kind == TPL_UNDEFINED;
    case T_NONE:
        return v->kind == TPL_NONE;
    case T_STRING_:
        return v->kind == TPL_STRING;
    case T_NUMBER:
        return is_num(v);
    case T_INTEGER:
        return v->kind == TPL_INT;
    case T_FLOAT_:
        return v->kind == TPL_FLOAT;
    case T_MAPPING:
        return v->kind == TPL_DICT;
    case T_ITERABLE:
    case T_SEQUENCE:
        return v->kind == TPL_STRING || v->kind == TPL_LIST || v->kind == TPL_DICT ||
               v->kind == TPL_UNDEFINED;
    case T_BOOLEAN:
        return v->kind == TPL_BOOL;
    case T_TRUE:
        return v->kind == TPL_BOOL && v->u.b;
    case T_FALSE:
        return v->kind == TPL_BOOL && !v->u.b;
    case T_CALLABLE:
        return v->kind == TPL_MACRO || v->kind == TPL_FUNC;
    case T_IN:
        return tpl_contains(e, v, a);
    case T_EQ:
    case T_NE: {
        int r = tv_equal(v, a, 0);
        if (r < 0) return ev_error(e, "RecursionError: values nested too deeply");
        return id == T_EQ ? r : !r;
    }
    case T_GT:
    case T_LT:
    case T_GE:
    case T_LE: {
        if (v->kind == TPL_UNDEFINED) return ev_undef_error(e, v);
        if (a->kind == TPL_UNDEFINED) return ev_undef_error(e, a);
        int c;
        if (tv_compare(v, a, &c, 0) != 0) {
            if (v->kind == TPL_NONE || a->kind == TPL_NONE) e->none_err = true;
            return ev_error(e, "TypeError: cannot compare '%s' and '%s'", tv_type_name(v),
                            tv_type_name(a));
        }
        if (c == 2) return 0;
        return id == T_GT ? c > 0 : id == T_LT ? c < 0 : id == T_GE ? c >= 0 : c <= 0;
    }
    case T_ODD:
    case T_EVEN:
    case T_DIVISIBLEBY: {
        tpl_value two = {.kind = TPL_INT, .immortal = true, .u.i = 2};
        tpl_value *m = tpl_binop(e, OP_MOD, v, id == T_DIVISIBLEBY ? a : &two);
        if (!m) return -1;
        double r = fnum(m);
        tv_unref(m);
        return id == T_ODD ? r == 1 : r == 0;
    }
    case T_SAMEAS:
        if (v == a) return 1;
        if (v->kind != a->kind) return 0;
        if (v->kind == TPL_NONE || v->kind == TPL_UNDEFINED) return v->kind == TPL_NONE;
        if (v->kind == TPL_BOOL) return v->u.b == a->u.b;
        if (v->kind == TPL_INT) return v->u.i == a->u.i && v->u.i >= -5 && v->u.i <= 256;
        return 0;
    case T_LOWER:
    case T_UPPER: {
        tpl_value *s = str_of(e, v);
        if (!s) return -1;
        int r = cased_all(s, id == T_UPPER);
        tv_unref(s);
        return r;
    }
    default:
        return ev_error(e, "internal: unknown test");
    }
}

/* ---- global functions and methods ---- */

static tpl_value *do_range(tpl_ev *e, tpl_value **args, size_t nargs, size_t nkw) {
    if (nkw || nargs < 1 || nargs > 3) {
        ev_error(e, "TypeError: range expected 1 to 3 positional arguments");
        return NULL;
    }
    int64_t p[3] = {0, 0, 1};
    for (size_t i = 0; i < nargs; i++)
        if (want_int(e, args[i], "range argument", &p[nargs == 1 ? 1 : i])) return NULL;
    if (p[2] == 0) {
        ev_error(e, "ValueError: range() arg 3 must not be zero");
        return NULL;
    }
    double len = p[2] > 0 ? ceil(((double)p[1] - (double)p[0]) / (double)p[2])
                          : ceil(((double)p[0] - (double)p[1]) / (double)-p[2]);
    if (len < 0) len = 0;
    if (len > TPL_MAX_RANGE) {
        ev_error(
            e,
            "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
            TPL_MAX_RANGE);
        return NULL;
    }
    if (ev_charge(e, (uint64_t)len / 2)) return NULL;
    tpl_value *l = tv_list((size_t)len);
    if (!l) return oom(e);
    for (size_t i = 0; i < (size_t)len; i++) {
        tpl_value *x = tv_int(p[0] + (int64_t)i * p[2]);
        if (!x) {
            tv_unref(l);
            return oom(e);
        }
        l->u.list.items[l->u.list.n++] = x;
    }
    return l;
}

/* namespace(...) and dict(...): an optional mapping, then keyword arguments. */
static tpl_value *do_mapping(tpl_ev *e, int kind, tpl_value **args, size_t nargs,
                             const char **kwnames, tpl_value **kwvals, size_t nkw) {
    if (nargs > 1 || (nargs == 1 && args[0]->kind != TPL_DICT && args[0]->kind != TPL_NAMESPACE)) {
        ev_error(e, "TypeError: %s() takes an optional mapping and keyword arguments",
                 kind == TPL_NAMESPACE ? "namespace" : "dict");
        return NULL;
    }
    tpl_value *d = tv_dict(kind);
    if (!d) return oom(e);
    if (nargs == 1)
        for (size_t i = 0; i < args[0]->u.dict.n; i++)
            if (tv_dict_put(d, tv_ref(args[0]->u.dict.keys[i]), tv_ref(args[0]->u.dict.vals[i])) !=
                0) {
                tv_unref(d);
                return oom(e);
            }
    for (size_t k = 0; k < nkw; k++)
        if (tv_dict_put(d, tv_str(kwnames[k], strlen(kwnames[k]), TPL_ORIGIN_TEMPLATE),
                        tv_ref(kwvals[k])) != 0) {
            tv_unref(d);
            return oom(e);
        }
    return d;
}

static tpl_value *do_strftime(tpl_ev *e, tpl_value **args, size_t nargs) {
    if (nargs != 1 || args[0]->kind != TPL_STRING) {
        ev_error(e, "TypeError: strftime_now() takes one format string");
        return NULL;
    }
    time_t t = (time_t)e->now;
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        ev_error(e, "strftime_now: cannot convert the time");
        return NULL;
    }
    size_t cap = 256 + args[0]->u.str.len * 4;
    if (cap > 65536) {
        ev_error(e, "strftime_now: format too long");
        return NULL;
    }
    char *buf = malloc(cap);
    if (!buf) return oom(e);
    size_t n = args[0]->u.str.len ? strftime(buf, cap, args[0]->u.str.s, &tm) : 0;
    tpl_value *r = tv_str(buf, n, TPL_ORIGIN_TEMPLATE);
    free(buf);
    return r ? r : oom(e);
}

static tpl_value *str_method(tpl_ev *e, int id, tpl_value *s, tpl_value **args, size_t nargs,
                             const char **kwnames, tpl_value **kwvals, size_t nkw) {
    const char *fname = "str method";
    switch (id) {
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP: {
        SIG("chars");
        return strip(e, s, slot[0], id != M_RSTRIP, id != M_LSTRIP);
    }
    case M_SPLIT:
    case M_RSPLIT: {
        SIG("sep", "maxsplit");
        return split(e, s, slot[0], slot[1], id == M_RSPLIT);
    }
    case M_STARTSWITH:
    case M_ENDSWITH: {
        SIG("prefix");
        const tpl_value *p = slot[0];
        if (!p) {
            ev_error(e, "TypeError: %s() takes at least 1 argument",
                     id == M_STARTSWITH ? "startswith" : "endswith");
            return NULL;
        }
        size_t n = p->kind == TPL_LIST && p->tuple ? p->u.list.n : 1;
        for (size_t i = 0; i < n; i++) {
            const tpl_value *x = p->kind == TPL_LIST && p->tuple ? p->u.list.items[i] : p;
            if (x->kind != TPL_STRING)
                return type_error(e, x,
                                  "TypeError: startswith/endswith first arg must be str or a tuple "
                                  "of str, not %s");
            size_t xl = x->u.str.len;
            if (xl <= s->u.str.len &&
                !memcmp(s->u.str.s + (id == M_STARTSWITH ? 0 : s->u.str.len - xl), x->u.str.s, xl))
                return tv_bool(true);
        }
        return tv_bool(false);
    }
    case M_UPPER:
    case M_LOWER:
    case M_TITLE:
    case M_CAPITALIZE: {
        SIG0();
        return recase(e, s,
                      id == M_UPPER   ? CASE_UPPER
                      : id == M_LOWER ? CASE_LOWER
                      : id == M_TITLE ? CASE_TITLE_PY
                                      : CASE_CAPITALIZE);
    }
    case M_REPLACE: {
        SIG("old", "new", "count");
        int64_t count = -1;
        if (!slot[0] || !slot[1] || slot[0]->kind != TPL_STRING || slot[1]->kind != TPL_STRING) {
            ev_error(e, "TypeError: replace() arguments must be str");
            return NULL;
        }
        if (slot[2] && want_int(e, slot[2], "count", &count)) return NULL;
        return replace(e, s, slot[0], slot[1], count);
    }
    case M_FIND:
    case M_COUNT: {
        SIG("sub");
        if (!slot[0] || slot[0]->kind != TPL_STRING) {
            ev_error(e, "TypeError: must be str");
            return NULL;
        }
        const tpl_value *sub = slot[0];
        if (id == M_FIND) {
            const char *f = memfind(s->u.str.s, s->u.str.len, sub->u.str.s, sub->u.str.len);
            return tv_int(f ? (int64_t)u8_count(s->u.str.s, (size_t)(f - s->u.str.s)) : -1);
        }
        if (!sub->u.str.len) return tv_int((int64_t)u8_count(s->u.str.s, s->u.str.len) + 1);
        int64_t c = 0;
        for (size_t at = 0;;) {
            const char *f =
                memfind(s->u.str.s + at, s->u.str.len - at, sub->u.str.s, sub->u.str.len);
            if (!f) break;
            c++;
            at = (size_t)(f - s->u.str.s) + sub->u.str.len;
        }
        return tv_int(c);
    }
    case M_JOIN: {
        SIG("iterable");
        if (!slot[0]) {
            ev_error(e, "TypeError: join() takes exactly one argument");
            return NULL;
        }
        tpl_value *l = collect(e, slot[0]);
        if (!l) return NULL;
        tpl_sb b;
        sb_init(&b, e->max_str);
        for (size_t i = 0; i < l->u.list.n; i++) {
            if (l->u.list.items[i]->kind != TPL_STRING) {
                ev_error(e, "TypeError: sequence item %zu: expected str instance, %s found", i,
                         tv_type_name(l->u.list.items[i]));
                tv_unref(l);
                sb_free(&b);
                return NULL;
            }
            if (i) sb_put_str(&b, s);
            sb_put_str(&b, l->u.list.items[i]);
        }
        tv_unref(l);
        return finish(e, &b);
    }
    default:
        ev_error(e, "internal: unknown method");
        return NULL;
    }
}

tpl_value *tpl_call_builtin(tpl_ev *e, tpl_value *fn, tpl_value **args, size_t nargs,
                            const char **kwnames, tpl_value **kwvals, size_t nkw) {
    int id = fn->u.fn.id;
    tpl_value *self = fn->u.fn.self;
    const char *fname = "function";
    if (ev_charge(e, 1)) return NULL;
    switch (id) {
    case G_RANGE:
        return do_range(e, args, nargs, nkw);
    case G_NAMESPACE:
        return do_mapping(e, TPL_NAMESPACE, args, nargs, kwnames, kwvals, nkw);
    case G_DICT:
        return do_mapping(e, TPL_DICT, args, nargs, kwnames, kwvals, nkw);
    case G_RAISE: {
        tpl_value *m = nargs ? str_of(e, args[0]) : tv_str("", 0, 0);
        if (!m) return NULL;
        ev_raise(e, "%s", m->u.str.s);
        tv_unref(m);
        return NULL;
    }
    case G_STRFTIME:
        return do_strftime(e, args, nargs);
    case M_APPEND: {
        SIG("object");
        if (!slot[0]) {
            ev_error(e, "TypeError: append() takes exactly one argument");
            return NULL;
        }
        if (self->frozen) {
            ev_error(e, "SecurityError: access to attribute 'append' of 'list' object is unsafe.");
            return NULL;
        }
        int c = tv_contains(slot[0], self, 0);
        if (c != 0) {
            ev_error(e, "a list cannot contain itself");
            return NULL;
        }
        if (tv_list_push(self, tv_ref(slot[0])) != 0) return oom(e);
        return tv_none();
    }
    case M_POP: {
        SIG("index");
        if (self->frozen) {
            ev_error(e, "SecurityError: access to attribute 'pop' of 'list' object is unsafe.");
            return NULL;
        }
        int64_t i = -1, n = (int64_t)self->u.list.n;
        if (slot[0] && want_int(e, slot[0], "index", &i)) return NULL;
        if (i < 0) i += n;
        if (i < 0 || i >= n) {
            ev_error(e, "IndexError: pop index out of range");
            return NULL;
        }
        tpl_value *r = self->u.list.items[i];
        memmove(self->u.list.items + i, self->u.list.items + i + 1,
                (size_t)(n - i - 1) * sizeof *self->u.list.items);
        self->u.list.n--;
        return r;
    }
    case M_ITEMS:
    case M_KEYS:
    case M_VALUES: {
        SIG0();
        if (id == M_ITEMS) return tpl_apply_filter(e, F_ITEMS, self, NULL, 0, NULL, NULL, 0);
        tpl_value *l = tv_list(self->u.dict.n);
        if (!l) return oom(e);
        for (size_t i = 0; i < self->u.dict.n; i++)
            l->u.list.items[l->u.list.n++] =
                tv_ref(id == M_KEYS ? self->u.dict.keys[i] : self->u.dict.vals[i]);
        return l;
    }
    case M_GET: {
        SIG("key", "default");
        if (!slot[0]) {
            ev_error(e, "TypeError: get expected at least 1 argument");
            return NULL;
        }
        tpl_value *r = tv_dict_find(self, slot[0]);
        return tv_ref(r ? r : slot[1] ? slot[1] : tv_none());
    }
    case M_CYCLE:
        if (!nargs) {
            ev_error(e, "TypeError: no items for cycling given");
            return NULL;
        }
        return tv_ref(args[self->u.loop.idx % nargs]);
    default:
        if (id >= M_STRIP && id <= M_JOIN)
            return str_method(e, id, self, args, nargs, kwnames, kwvals, nkw);
        ev_error(e, "internal: unknown function");
        return NULL;
    }
}
