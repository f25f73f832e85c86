/* tpl_value.c - chat-template values: reference counting, strings that remember which
 * bytes came from the request, lists and insertion-ordered dicts, Python equality,
 * ordering and truthiness, and the UTF-8 / character helpers the string methods need. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tpl_internal.h"

/* The value singletons are immortal: reference counting never writes to them, so they
 * are shared read-only by every thread. */
static const tpl_value k_none = {.kind = TPL_NONE, .immortal = true};
static const tpl_value k_true = {.kind = TPL_BOOL, .immortal = true, .u.b = true};
static const tpl_value k_false = {.kind = TPL_BOOL, .immortal = true, .u.b = false};
static const tpl_value k_undef = {.kind = TPL_UNDEFINED, .immortal = true};

tpl_value *tv_none(void) {
    return (tpl_value *)&k_none;
}
tpl_value *tv_bool(bool b) {
    return (tpl_value *)(b ? &k_true : &k_false);
}
tpl_value *tv_undef(void) {
    return (tpl_value *)&k_undef;
}

tpl_value *tv_new(int kind) {
    tpl_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = (uint8_t)kind;
    v->refs = 1;
    return v;
}

tpl_value *tv_undef_hint(int hint, const char *obj, const char *name, size_t name_len) {
    tpl_value *v = tv_new(TPL_UNDEFINED);
    if (!v) return NULL;
    v->u.undef.hint = (uint8_t)hint;
    v->u.undef.obj = obj;
    if (name) {
        if (name_len > 64) name_len = 64; /* a hint, not data */
        v->u.undef.name = malloc(name_len + 1);
        if (v->u.undef.name) {
            memcpy(v->u.undef.name, name, name_len);
            v->u.undef.name[name_len] = 0;
        }
    }
    return v;
}

tpl_value *tv_int(int64_t i) {
    tpl_value *v = tv_new(TPL_INT);
    if (v) v->u.i = i;
    return v;
}

tpl_value *tv_float(double f) {
    tpl_value *v = tv_new(TPL_FLOAT);
    if (v) v->u.f = f;
    return v;
}

tpl_value *tv_str(const char *s, size_t n, int origin) {
    tpl_value *v = tv_new(TPL_STRING);
    if (!v) return NULL;
    v->u.str.s = malloc(n + 1);
    if (!v->u.str.s) {
        free(v);
        return NULL;
    }
    if (n) memcpy(v->u.str.s, s, n);
    v->u.str.s[n] = 0;
    v->u.str.len = n;
    v->u.str.runs = &v->u.str.run0;
    v->u.str.nruns = n ? 1 : 0;
    v->u.str.run0 = (tpl_run){n, (uint8_t)origin};
    return v;
}

tpl_value *tv_list(size_t cap) {
    tpl_value *v = tv_new(TPL_LIST);
    if (!v) return NULL;
    if (cap) {
        v->u.list.items = malloc(cap * sizeof *v->u.list.items);
        if (!v->u.list.items) {
            free(v);
            return NULL;
        }
        v->u.list.cap = cap;
    }
    return v;
}

tpl_value *tv_dict(int kind) {
    return tv_new(kind);
}

int tv_list_push(tpl_value *l, tpl_value *item) {
    if (!item) return -1;
    if (l->u.list.n == l->u.list.cap) {
        size_t nc = l->u.list.cap ? l->u.list.cap * 2 : 4;
        tpl_value **p = NULL;
        if (l->u.list.n < TPL_MAX_LIST) p = realloc(l->u.list.items, nc * sizeof *p);
        if (!p) {
            tv_unref(item);
            return -1;
        }
        l->u.list.items = p;
        l->u.list.cap = nc;
    }
    l->u.list.items[l->u.list.n++] = item;
    return 0;
}

tpl_value *tv_list_copy(const tpl_value *l) {
    tpl_value *c = tv_list(l->u.list.n);
    if (!c) return NULL;
    for (size_t i = 0; i < l->u.list.n; i++) c->u.list.items[i] = tv_ref(l->u.list.items[i]);
    c->u.list.n = l->u.list.n;
    return c;
}

static bool key_is_str(const tpl_value *k, const char *s, size_t n) {
    return k->kind == TPL_STRING && k->u.str.len == n && memcmp(k->u.str.s, s, n) == 0;
}

tpl_value *tv_dict_findc(const tpl_value *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (key_is_str(d->u.dict.keys[i], key, n)) return d->u.dict.vals[i];
    return NULL;
}

tpl_value *tv_dict_find(const tpl_value *d, const tpl_value *key) {
    if (key->kind == TPL_STRING) return tv_dict_findc(d, key->u.str.s, key->u.str.len);
    for (size_t i = 0; i < d->u.dict.n; i++)
        if (tv_equal(d->u.dict.keys[i], key, 0) == 1) return d->u.dict.vals[i];
    return NULL;
}

int tv_dict_put(tpl_value *d, tpl_value *key, tpl_value *val) {
    if (!key || !val) {
        tv_unref(key);
        tv_unref(val);
        return -1;
    }
    for (size_t i = 0; i < d->u.dict.n; i++) {
        if (tv_equal(d->u.dict.keys[i], key, 0) == 1) {
            /* Python keeps the first key object and replaces the value */
            tv_unref(d->u.dict.vals[i]);
            d->u.dict.vals[i] = val;
            tv_unref(key);
            return 0;
        }
    }
    if (d->u.dict.n == d->u.dict.cap) {
        size_t nc = d->u.dict.cap ? d->u.dict.cap * 2 : 4;
        tpl_value **k = NULL, **v = NULL;
        if (d->u.dict.n < TPL_MAX_LIST) {
            k = realloc(d->u.dict.keys, nc * sizeof *k);
            if (k) d->u.dict.keys = k;
            v = k ? realloc(d->u.dict.vals, nc * sizeof *v) : NULL;
            if (v) d->u.dict.vals = v;
        }
        if (!k || !v) {
            tv_unref(key);
            tv_unref(val);
            return -1;
        }
        d->u.dict.cap = nc;
    }
    d->u.dict.keys[d->u.dict.n] = key;
    d->u.dict.vals[d->u.dict.n] = val;
    d->u.dict.n++;
    return 0;
}

/* ---- freeing: iterative, so a value nested a million levels deep cannot overflow the
 * stack ---- */

static void drop(tpl_value *c, tpl_value **work) {
    if (!c || c->immortal) return;
    if (--c->refs) return;
    c->next_free = *work;
    *work = c;
}

void tpl_value_free(tpl_value *v) {
    if (!v || v->immortal) return;
    if (--v->refs) return;
    v->next_free = NULL;
    tpl_value *work = v;
    while (work) {
        tpl_value *x = work;
        work = x->next_free;
        switch (x->kind) {
        case TPL_STRING:
            free(x->u.str.s);
            if (x->u.str.runs != &x->u.str.run0) free(x->u.str.runs);
            break;
        case TPL_LIST:
            for (size_t i = 0; i < x->u.list.n; i++) drop(x->u.list.items[i], &work);
            free(x->u.list.items);
            break;
        case TPL_DICT:
        case TPL_NAMESPACE:
            for (size_t i = 0; i < x->u.dict.n; i++) {
                drop(x->u.dict.keys[i], &work);
                drop(x->u.dict.vals[i], &work);
            }
            free(x->u.dict.keys);
            free(x->u.dict.vals);
            break;
        case TPL_FUNC:
            drop(x->u.fn.self, &work);
            break;
        case TPL_LOOP:
            drop(x->u.loop.items, &work);
            break;
        case TPL_UNDEFINED:
            free(x->u.undef.name);
            break;
        default:
            break;
        }
        free(x);
    }
}

/* ---- the public constructors ---- */

tpl_value *tpl_value_undefined(void) {
    return tv_undef();
}
tpl_value *tpl_value_null(void) {
    return tv_none();
}
tpl_value *tpl_value_bool(bool b) {
    return tv_bool(b);
}
tpl_value *tpl_value_int(int64_t i) {
    return tv_int(i);
}
tpl_value *tpl_value_float(double d) {
    return tv_float(d);
}
tpl_value *tpl_value_string(const char *s, size_t len, tpl_origin origin) {
    if (!s && len) return NULL;
    return tv_str(s ? s : "", len, origin == TPL_ORIGIN_TEMPLATE ? 0 : 1);
}
tpl_value *tpl_value_list(void) {
    tpl_value *v = tv_list(0);
    if (v) v->frozen = true;
    return v;
}
tpl_value *tpl_value_dict(void) {
    tpl_value *v = tv_dict(TPL_DICT);
    if (v) v->frozen = true;
    return v;
}

int tpl_list_append(tpl_value *list, tpl_value *item) {
    if (!list || list->kind != TPL_LIST || list == item) {
        tv_unref(item);
        return -1;
    }
    return tv_list_push(list, item);
}

int tpl_dict_setn(tpl_value *dict, const char *key, size_t len, tpl_origin origin,
                  tpl_value *value) {
    if (!dict || dict->kind != TPL_DICT || (!key && len) || dict == value) {
        tv_unref(value);
        return -1;
    }
    return tv_dict_put(dict, tpl_value_string(key, len, origin), value);
}

int tpl_dict_set(tpl_value *dict, const char *key, tpl_value *value) {
    if (!key) {
        tv_unref(value);
        return -1;
    }
    return tpl_dict_setn(dict, key, strlen(key), TPL_ORIGIN_REQUEST, value);
}

tpl_value *tpl_value_ref(tpl_value *v) {
    return tv_ref(v);
}

tpl_kind tpl_value_kind(const tpl_value *v) {
    return v ? (tpl_kind)v->kind : TPL_UNDEFINED;
}

tpl_value *tpl_dict_get(const tpl_value *dict, const char *key) {
    if (!dict || !key || dict->kind != TPL_DICT) return NULL;
    return tv_dict_findc(dict, key, strlen(key));
}

size_t tpl_len(const tpl_value *v) {
    if (!v) return 0;
    if (v->kind == TPL_LIST) return v->u.list.n;
    if (v->kind == TPL_DICT || v->kind == TPL_NAMESPACE) return v->u.dict.n;
    return 0;
}

tpl_value *tpl_list_get(const tpl_value *list, size_t i) {
    if (!list || list->kind != TPL_LIST || i >= list->u.list.n) return NULL;
    return list->u.list.items[i];
}

const char *tpl_string(const tpl_value *v, size_t *len) {
    if (!v || v->kind != TPL_STRING) return NULL;
    if (len) *len = v->u.str.len;
    return v->u.str.s;
}

/* ---- string builder ---- */

void sb_init(tpl_sb *b, size_t limit) {
    memset(b, 0, sizeof *b);
    b->limit = limit ? limit : SIZE_MAX / 4;
}

void sb_free(tpl_sb *b) {
    free(b->s);
    free(b->runs);
    memset(b, 0, sizeof *b);
}

static int sb_reserve(tpl_sb *b, size_t n) {
    if (b->fail) return -1;
    if (n > b->limit || b->len > b->limit - n) {
        b->fail = TPL_SB_LIMIT;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n + 1) nc *= 2;
        char *p = realloc(b->s, nc);
        if (!p) {
            b->fail = TPL_SB_OOM;
            return -1;
        }
        b->s = p;
        b->cap = nc;
    }
    return 0;
}

static int sb_run(tpl_sb *b, size_t end, int origin) {
    if (b->nruns && b->runs[b->nruns - 1].origin == origin) {
        b->runs[b->nruns - 1].end = end;
        return 0;
    }
    if (b->nruns == b->rcap) {
        size_t nc = b->rcap ? b->rcap * 2 : 4;
        tpl_run *p = realloc(b->runs, nc * sizeof *p);
        if (!p) {
            b->fail = TPL_SB_OOM;
            return -1;
        }
        b->runs = p;
        b->rcap = nc;
    }
    b->runs[b->nruns++] = (tpl_run){end, (uint8_t)origin};
    return 0;
}

int sb_put(tpl_sb *b, const char *s, size_t n, int origin) {
    if (!n) return b->fail ? -1 : 0;
    if (sb_reserve(b, n) != 0) return -1;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
    return sb_run(b, b->len, origin);
}

int sb_putc(tpl_sb *b, char c, int origin) {
    return sb_put(b, &c, 1, origin);
}
int sb_puts(tpl_sb *b, const char *s, int origin) {
    return sb_put(b, s, strlen(s), origin);
}

int sb_put_slice(tpl_sb *b, const tpl_value *v, size_t from, size_t to) {
    if (to > v->u.str.len) to = v->u.str.len;
    if (from >= to) return b->fail ? -1 : 0;
    if (sb_reserve(b, to - from) != 0) return -1;
    size_t start = b->len;
    memcpy(b->s + b->len, v->u.str.s + from, to - from);
    b->len += to - from;
    b->s[b->len] = 0;
    size_t lo = 0;
    for (size_t r = 0; r < v->u.str.nruns; r++) {
        size_t hi = v->u.str.runs[r].end;
        if (hi > from && lo < to) {
            size_t e = (hi < to ? hi : to) - from + start;
            if (sb_run(b, e, v->u.str.runs[r].origin) != 0) return -1;
        }
        lo = hi;
        if (lo >= to) break;
    }
    return 0;
}

int sb_put_str(tpl_sb *b, const tpl_value *v) {
    return sb_put_slice(b, v, 0, v->u.str.len);
}

tpl_value *sb_finish(tpl_sb *b) {
    tpl_value *v = tv_new(TPL_STRING);
    if (!v) return NULL;
    if (!b->s) {
        b->s = malloc(1);
        if (!b->s) {
            free(v);
            return NULL;
        }
        b->s[0] = 0;
    }
    v->u.str.s = b->s;
    v->u.str.len = b->len;
    if (b->nruns <= 1) {
        v->u.str.run0 = b->nruns ? b->runs[0] : (tpl_run){0, 0};
        v->u.str.runs = &v->u.str.run0;
        v->u.str.nruns = b->nruns;
        free(b->runs);
    } else {
        v->u.str.runs = b->runs;
        v->u.str.nruns = b->nruns;
    }
    size_t limit = b->limit;
    memset(b, 0, sizeof *b);
    b->limit = limit;
    return v;
}

/* ---- Python semantics ---- */

bool tv_truthy(const tpl_value *v) {
    switch (v->kind) {
    case TPL_UNDEFINED:
    case TPL_NONE:
        return false;
    case TPL_BOOL:
        return v->u.b;
    case TPL_INT:
        return v->u.i != 0;
    case TPL_FLOAT:
        return v->u.f != 0.0;
    case TPL_STRING:
        return v->u.str.len != 0;
    case TPL_LIST:
        return v->u.list.n != 0;
    case TPL_DICT:
        return v->u.dict.n != 0;
    default:
        return true;
    }
}

static bool is_num(const tpl_value *v) {
    return v->kind == TPL_INT || v->kind == TPL_FLOAT || v->kind == TPL_BOOL;
}

static double num_f(const tpl_value *v) {
    return v->kind == TPL_FLOAT ? v->u.f : v->kind == TPL_INT ? (double)v->u.i : v->u.b;
}

static int64_t num_i(const tpl_value *v) {
    return v->kind == TPL_INT ? v->u.i : v->u.b;
}

int tv_equal(const tpl_value *a, const tpl_value *b, int depth) {
    if (depth > TPL_VALUE_DEPTH) return -1;
    if (a == b) return 1;
    if (is_num(a) && is_num(b)) {
        if (a->kind != TPL_FLOAT && b->kind != TPL_FLOAT) return num_i(a) == num_i(b);
        return num_f(a) == num_f(b);
    }
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case TPL_UNDEFINED:
    case TPL_NONE:
        return 1;
    case TPL_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case TPL_LIST:
        if (a->tuple != b->tuple || a->u.list.n != b->u.list.n) return 0;
        for (size_t i = 0; i < a->u.list.n; i++) {
            int r = tv_equal(a->u.list.items[i], b->u.list.items[i], depth + 1);
            if (r != 1) return r;
        }
        return 1;
    case TPL_DICT:
        if (a->u.dict.n != b->u.dict.n) return 0;
        for (size_t i = 0; i < a->u.dict.n; i++) {
            const tpl_value *bv = tv_dict_find(b, a->u.dict.keys[i]);
            if (!bv) return 0;
            int r = tv_equal(a->u.dict.vals[i], bv, depth + 1);
            if (r != 1) return r;
        }
        return 1;
    case TPL_FUNC:
        return a->u.fn.id == b->u.fn.id && a->u.fn.self == b->u.fn.self;
    default:
        return 0; /* identity, checked above */
    }
}

int tv_compare(const tpl_value *a, const tpl_value *b, int *cmp, int depth) {
    if (depth > TPL_VALUE_DEPTH) return -1;
    if (is_num(a) && is_num(b)) {
        if (a->kind != TPL_FLOAT && b->kind != TPL_FLOAT) {
            int64_t x = num_i(a), y = num_i(b);
            *cmp = (x > y) - (x < y);
        } else {
            double x = num_f(a), y = num_f(b);
            if (isnan(x) || isnan(y))
                *cmp = 2; /* every ordering is false */
            else
                *cmp = (x > y) - (x < y);
        }
        return 0;
    }
    if (a->kind != b->kind) return -1;
    if (a->kind == TPL_STRING) {
        size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
        int r = memcmp(a->u.str.s, b->u.str.s, n);
        if (r == 0) r = (a->u.str.len > b->u.str.len) - (a->u.str.len < b->u.str.len);
        *cmp = (r > 0) - (r < 0);
        return 0;
    }
    if (a->kind == TPL_LIST && a->tuple == b->tuple) {
        size_t n = a->u.list.n < b->u.list.n ? a->u.list.n : b->u.list.n;
        for (size_t i = 0; i < n; i++) {
            int eq = tv_equal(a->u.list.items[i], b->u.list.items[i], depth + 1);
            if (eq < 0) return -1;
            if (eq) continue;
            return tv_compare(a->u.list.items[i], b->u.list.items[i], cmp, depth + 1);
        }
        *cmp = (a->u.list.n > b->u.list.n) - (a->u.list.n < b->u.list.n);
        return 0;
    }
    return -1;
}

const char *tv_type_name(const tpl_value *v) {
    switch (v->kind) {
    case TPL_UNDEFINED:
        return "Undefined";
    case TPL_NONE:
        return "NoneType";
    case TPL_BOOL:
        return "bool";
    case TPL_INT:
        return "int";
    case TPL_FLOAT:
        return "float";
    case TPL_STRING:
        return "str";
    case TPL_LIST:
        return v->tuple ? "tuple" : "list";
    case TPL_DICT:
        return "dict";
    case TPL_NAMESPACE:
        return "Namespace";
    case TPL_MACRO:
        return "Macro";
    case TPL_LOOP:
        return "LoopContext";
    default:
        return "builtin_function_or_method";
    }
}

int tv_origin_of(const tpl_value *v, int depth) {
    if (depth > TPL_VALUE_DEPTH) return -1;
    int o = -1; /* none seen yet */
    switch (v->kind) {
    case TPL_STRING:
        for (size_t i = 0; i < v->u.str.nruns; i++) {
            int r = v->u.str.runs[i].origin;
            o = o < 0 ? r : (o == r ? o : TPL_ORIGIN_MIXED);
        }
        return o < 0 ? TPL_ORIGIN_TEMPLATE : o;
    case TPL_LIST:
    case TPL_DICT:
    case TPL_NAMESPACE: {
        size_t n = v->kind == TPL_LIST ? v->u.list.n : v->u.dict.n * 2;
        for (size_t i = 0; i < n; i++) {
            const tpl_value *c = v->kind == TPL_LIST ? v->u.list.items[i]
                                 : (i & 1)           ? v->u.dict.vals[i / 2]
                                                     : v->u.dict.keys[i / 2];
            int r = tv_origin_of(c, depth + 1);
            if (r < 0) return -1;
            if (r == TPL_ORIGIN_TEMPLATE && o < 0)
                o = r;
            else if (r != TPL_ORIGIN_TEMPLATE)
                o = (o < 0 || o == r) ? r : TPL_ORIGIN_MIXED;
            else if (o == TPL_ORIGIN_REQUEST)
                o = TPL_ORIGIN_MIXED;
        }
        return o < 0 ? TPL_ORIGIN_TEMPLATE : o;
    }
    default:
        return TPL_ORIGIN_TEMPLATE;
    }
}

int tv_contains(const tpl_value *v, const tpl_value *target, int depth) {
    if (v == target) return 1;
    if (depth > TPL_VALUE_DEPTH) return -1;
    size_t n = 0;
    if (v->kind == TPL_LIST)
        n = v->u.list.n;
    else if (v->kind == TPL_DICT || v->kind == TPL_NAMESPACE)
        n = v->u.dict.n;
    else if (v->kind == TPL_FUNC && v->u.fn.self)
        return tv_contains(v->u.fn.self, target, depth + 1);
    else if (v->kind == TPL_LOOP)
        return tv_contains(v->u.loop.items, target, depth + 1);
    for (size_t i = 0; i < n; i++) {
        const tpl_value *c = v->kind == TPL_LIST ? v->u.list.items[i] : v->u.dict.vals[i];
        int r = tv_contains(c, target, depth + 1);
        if (r) return r;
    }
    return 0;
}

/* ---- UTF-8 ---- */

size_t u8_clen(const unsigned char *s, size_t n, size_t i) {
    unsigned char c = s[i];
    size_t need = c < 0x80                   ? 1
                  : (c >= 0xC2 && c <= 0xDF) ? 2
                  : (c >= 0xE0 && c <= 0xEF) ? 3
                  : (c >= 0xF0 && c <= 0xF4) ? 4
                                             : 0;
    if (need <= 1) return 1;
    if (i + need > n) return 1;
    for (size_t k = 1; k < need; k++)
        if ((s[i + k] & 0xC0) != 0x80) return 1;
    return need;
}

uint32_t u8_get(const unsigned char *s, size_t n, size_t i, size_t *clen) {
    size_t l = u8_clen(s, n, i);
    *clen = l;
    unsigned char c = s[i];
    if (l == 1) return c < 0x80 ? c : 0xDC00u + c;
    if (l == 2) return ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
    if (l == 3)
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
               (s[i + 2] & 0x3F);
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
           ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
}

size_t u8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; c++) i += u8_clen((const unsigned char *)s, n, i);
    return c;
}

size_t u8_offset(const char *s, size_t n, size_t ci) {
    size_t i = 0;
    while (ci-- && i < n) i += u8_clen((const unsigned char *)s, n, i);
    return i;
}

size_t u8_put(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp >= 0xDC80 && cp <= 0xDCFF) { /* an invalid byte carried through u8_get */
        o[0] = (unsigned char)(cp - 0xDC00);
        return 1;
    }
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

bool cp_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t u8_space_at(const char *s, size_t n, size_t i) {
    size_t l;
    uint32_t c = u8_get((const unsigned char *)s, n, i, &l);
    return cp_isspace(c) ? l : 0;
}

size_t u8_space_before(const char *s, size_t i) {
    if (!i) return 0;
    size_t st = i - 1;
    while (st > 0 && i - st < 4 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
    size_t l;
    uint32_t c = u8_get((const unsigned char *)s, i, st, &l);
    if (st + l != i) { /* not a whole character: the last byte alone */
        c = u8_get((const unsigned char *)s, i, i - 1, &l);
        st = i - 1;
    }
    return cp_isspace(c) ? i - st : 0;
}

/* Pairs where upper and lower case alternate (upper even or upper odd). */
static bool alt_pair(uint32_t c, uint32_t lo, uint32_t hi) {
    return c >= lo && c <= hi;
}

uint32_t cp_lower(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (c == 0x178) return 0xFF;
    if (alt_pair(c, 0x100, 0x12F) || alt_pair(c, 0x132, 0x137) || alt_pair(c, 0x14A, 0x177))
        return c | 1;
    if (alt_pair(c, 0x139, 0x148) || alt_pair(c, 0x179, 0x17E)) return (c & 1) ? c + 1 : c;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (alt_pair(c, 0x460, 0x481) || alt_pair(c, 0x48A, 0x4BF)) return c | 1;
    if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
    return c;
}

uint32_t cp_upper(uint32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (alt_pair(c, 0x100, 0x12F) || alt_pair(c, 0x132, 0x137) || alt_pair(c, 0x14A, 0x177))
        return c & ~1u;
    if (alt_pair(c, 0x139, 0x148) || alt_pair(c, 0x179, 0x17E)) return (c & 1) ? c : c - 1;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x3B1 && c <= 0x3C9) return c - 32;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    if (alt_pair(c, 0x460, 0x481) || alt_pair(c, 0x48A, 0x4BF)) return c & ~1u;
    if (c >= 0xFF41 && c <= 0xFF5A) return c - 32;
    return c;
}

bool cp_cased(uint32_t c) {
    return cp_upper(c) != c || cp_lower(c) != c || c == 0xDF || c == 0xAA || c == 0xBA;
}

bool cp_isalnum(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
    if (c >= 0xDC80 && c <= 0xDCFF) return false;
    /* beyond ASCII: letters and digits of every script count as word characters, which is
     * what Python's \w does for all but punctuation, symbols and spaces */
    if (cp_isspace(c)) return false;
    if (c < 0xC0)
        return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA ||
               (c >= 0xBC && c <= 0xBE);
    if (c == 0xD7 || c == 0xF7) return false;
    if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) ||
        (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
        (c >= 0x2190 && c <= 0x2BFF) || (c >= 0x1F000 && c <= 0x1FAFF))
        return false;
    return true;
}
