/* tpl_eval.c - the chat-template evaluator: runs a parsed template over a context with
 * Jinja2's semantics (scoping of set/for/macro, loop variables, break/continue, macros and
 * call blocks, attribute and item lookup, Undefined), writes text fragments tagged with
 * their origin, and bounds every render by steps, depth and output size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tpl_internal.h"

enum { EX_OK = 0, EX_BREAK = 1, EX_CONTINUE = 2, EX_ERR = -1 };

#define DEFAULT_MAX_STEPS  20000000u
#define DEFAULT_MAX_OUTPUT ((size_t)64 << 20)
#define DEFAULT_MAX_DEPTH  400u

/* ---- errors ---- */

static int ev_verror(tpl_ev *e, bool raw, const char *fmt, va_list ap) {
    if (e->failed) return -1;
    e->failed = true;
    char msg[CHATD_ERR_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (raw)
        chatd_errorf(e->err, "%s", msg);
    else
        chatd_errorf(e->err, "chat template error, line %d: %s", e->line, msg);
    return -1;
}

int ev_error(tpl_ev *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ev_verror(e, false, fmt, ap);
    va_end(ap);
    return -1;
}

int ev_raise(tpl_ev *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ev_verror(e, true, fmt, ap);
    va_end(ap);
    return -1;
}

int ev_oom(tpl_ev *e) {
    return ev_error(e, "out of memory");
}

int ev_sb_error(tpl_ev *e, const tpl_sb *b) {
    if (b->fail == TPL_SB_LIMIT)
        return ev_error(e, "output or string longer than the limit of %zu bytes", e->max_str);
    return ev_oom(e);
}

int ev_undef_error(tpl_ev *e, const tpl_value *u) {
    const char *name = u->kind == TPL_UNDEFINED && u->u.undef.name ? u->u.undef.name : "";
    switch (u->kind == TPL_UNDEFINED ? u->u.undef.hint : TPL_UNDEF_PLAIN) {
    case TPL_UNDEF_NAME:
        return ev_error(e, "UndefinedError: '%s' is undefined", name);
    case TPL_UNDEF_NONEATTR:
        e->none_err = true;
        return ev_error(e, "UndefinedError: 'None' has no attribute '%s'", name);
    case TPL_UNDEF_ATTR:
        return ev_error(e, "UndefinedError: '%s' has no attribute '%s'",
                        u->u.undef.obj ? u->u.undef.obj : "object", name);
    default:
        return ev_error(e, "UndefinedError: value is undefined");
    }
}

int ev_charge(tpl_ev *e, uint64_t steps) {
    e->steps += steps;
    if (e->steps > e->max_steps)
        return ev_error(e, "template exceeded the limit of %llu evaluation steps",
                        (unsigned long long)e->max_steps);
    return 0;
}

/* ---- scopes ---- */

static tpl_value *scope_get(const tpl_scope *s, const char *name) {
    for (size_t i = s->n; i-- > 0;)
        if (strcmp(s->names[i], name) == 0) return s->vals[i];
    return NULL;
}

/* Binds name in s (v's reference is taken over). */
static int scope_set(tpl_ev *e, tpl_scope *s, const char *name, tpl_value *v) {
    if (!v) return ev_oom(e);
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            tv_unref(s->vals[i]);
            s->vals[i] = v;
            return 0;
        }
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        const char **nn = realloc(s->names, nc * sizeof *nn);
        if (nn) s->names = nn;
        tpl_value **nv = nn ? realloc(s->vals, nc * sizeof *nv) : NULL;
        if (nv) s->vals = nv;
        if (!nn || !nv) {
            tv_unref(v);
            return ev_oom(e);
        }
        s->cap = nc;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
    return 0;
}

static void scope_free(tpl_scope *s) {
    for (size_t i = 0; i < s->n; i++) tv_unref(s->vals[i]);
    free(s->names);
    free(s->vals);
    memset(s, 0, sizeof *s);
}

/* Scopes live on the C stack and die in LIFO order. The evaluator keeps the living ones
 * in a stack, so a macro finds the scope it was defined in (its closure) only while that
 * scope exists: a macro that escapes its loop falls back to the template's top level
 * instead of reading a dead frame. */
static int scope_enter(tpl_ev *e, tpl_scope *s) {
    if (e->nlive == e->caplive) {
        size_t nc = e->caplive ? e->caplive * 2 : 16;
        tpl_scope **p = realloc(e->live, nc * sizeof *p);
        if (!p) return ev_oom(e);
        e->live = p;
        e->caplive = nc;
    }
    s->serial = ++e->serial;
    e->live[e->nlive++] = s;
    return 0;
}

static void scope_leave(tpl_ev *e, tpl_scope *s) {
    if (e->nlive && e->live[e->nlive - 1] == s) e->nlive--;
    scope_free(s);
}

static tpl_scope *live_scope(const tpl_ev *e, uint64_t serial) {
    for (size_t i = e->nlive; i-- > 0;)
        if (e->live[i]->serial == serial) return e->live[i];
    return NULL;
}

static tpl_value *lookup(tpl_ev *e, const tpl_scope *sc, const char *name) {
    for (const tpl_scope *s = sc; s; s = s->parent) {
        tpl_value *v = scope_get(s, name);
        if (v) return tv_ref(v);
    }
    if (e->ctx) {
        tpl_value *v = tv_dict_findc(e->ctx, name, strlen(name));
        if (v) return tv_ref(v);
    }
    int g = tpl_global_id(name);
    if (g) {
        tpl_value *f = tv_new(TPL_FUNC);
        if (f) f->u.fn.id = g;
        return f;
    }
    return tv_undef_hint(TPL_UNDEF_NAME, NULL, name, strlen(name));
}

/* ---- attribute and item access ---- */

static const char *obj_name(const tpl_value *v) {
    switch (v->kind) {
    case TPL_STRING:
        return "str object";
    case TPL_LIST:
        return v->tuple ? "tuple object" : "list object";
    case TPL_DICT:
        return "dict object";
    case TPL_INT:
        return "int object";
    case TPL_FLOAT:
        return "float object";
    case TPL_BOOL:
        return "bool object";
    case TPL_NAMESPACE:
        return "Namespace object";
    case TPL_LOOP:
        return "LoopContext object";
    default:
        return "object";
    }
}

static tpl_value *missing(tpl_value *obj, const char *name, size_t len) {
    if (obj->kind == TPL_NONE) return tv_undef_hint(TPL_UNDEF_NONEATTR, NULL, name, len);
    return tv_undef_hint(TPL_UNDEF_ATTR, obj_name(obj), name, len);
}

static tpl_value *bound(tpl_value *obj, int id) {
    tpl_value *f = tv_new(TPL_FUNC);
    if (!f) return NULL;
    f->u.fn.id = id;
    f->u.fn.self = tv_ref(obj);
    return f;
}

static tpl_value *loop_attr(tpl_ev *e, tpl_value *lp, const char *name, size_t len) {
    size_t i = lp->u.loop.idx, n = lp->u.loop.items->u.list.n;
    tpl_value *const *items = lp->u.loop.items->u.list.items;
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("index")) return tv_int((int64_t)i + 1);
    if (IS("index0")) return tv_int((int64_t)i);
    if (IS("revindex")) return tv_int((int64_t)(n - i));
    if (IS("revindex0")) return tv_int((int64_t)(n - i - 1));
    if (IS("first")) return tv_bool(i == 0);
    if (IS("last")) return tv_bool(i + 1 == n);
    if (IS("length")) return tv_int((int64_t)n);
    if (IS("depth")) return tv_int(1);
    if (IS("depth0")) return tv_int(0);
    if (IS("previtem")) return i > 0 ? tv_ref(items[i - 1]) : tv_undef();
    if (IS("nextitem")) return i + 1 < n ? tv_ref(items[i + 1]) : tv_undef();
#undef IS
    int m = tpl_method_id(lp, name, len);
    if (m) return bound(lp, m);
    (void)e;
    return missing(lp, name, len);
}

tpl_value *ev_getattr(tpl_ev *e, tpl_value *obj, const char *name, size_t len) {
    tpl_value *r;
    switch (obj->kind) {
    case TPL_UNDEFINED:
        ev_undef_error(e, obj);
        return NULL;
    case TPL_LOOP:
        r = loop_attr(e, obj, name, len);
        break;
    case TPL_NAMESPACE:
        r = tv_dict_findc(obj, name, len);
        r = r ? tv_ref(r) : missing(obj, name, len);
        break;
    case TPL_DICT: {
        /* Python attributes first (d.items is the method), then keys */
        int m = tpl_method_id(obj, name, len);
        if (m) {
            r = bound(obj, m);
            break;
        }
        r = tv_dict_findc(obj, name, len);
        r = r ? tv_ref(r) : missing(obj, name, len);
        break;
    }
    default: {
        int m = tpl_method_id(obj, name, len);
        r = m ? bound(obj, m) : missing(obj, name, len);
    }
    }
    if (!r) ev_oom(e);
    return r;
}

tpl_value *ev_getitem(tpl_ev *e, tpl_value *obj, tpl_value *key) {
    if (obj->kind == TPL_UNDEFINED) {
        ev_undef_error(e, obj);
        return NULL;
    }
    tpl_value *r = NULL;
    /* lookups scan: dicts linearly, strings to find the character */
    if (ev_charge(e, obj->kind == TPL_DICT     ? obj->u.dict.n / 32
                     : obj->kind == TPL_STRING ? obj->u.str.len / 64
                                               : 0))
        return NULL;
    if (obj->kind == TPL_DICT) {
        if (key->kind == TPL_LIST && !key->tuple) {
            ev_error(e, "TypeError: unhashable type: 'list'");
            return NULL;
        }
        r = tv_dict_find(obj, key);
        if (r) return tv_ref(r);
    } else if ((obj->kind == TPL_LIST || obj->kind == TPL_STRING) &&
               (key->kind == TPL_INT || key->kind == TPL_BOOL)) {
        int64_t i = key->kind == TPL_INT ? key->u.i : key->u.b;
        if (obj->kind == TPL_LIST) {
            int64_t n = (int64_t)obj->u.list.n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) return tv_ref(obj->u.list.items[i]);
        } else {
            int64_t n = (int64_t)u8_count(obj->u.str.s, obj->u.str.len);
            if (i < 0) i += n;
            if (i >= 0 && i < n) {
                size_t from = u8_offset(obj->u.str.s, obj->u.str.len, (size_t)i);
                size_t to =
                    from + u8_clen((const unsigned char *)obj->u.str.s, obj->u.str.len, from);
                tpl_sb b;
                sb_init(&b, 0);
                if (sb_put_slice(&b, obj, from, to) != 0 || !(r = sb_finish(&b))) {
                    sb_free(&b);
                    ev_oom(e);
                    return NULL;
                }
                return r;
            }
        }
    }
    if (key->kind == TPL_STRING) {
        /* obj["x"] falls back to the attribute x, as environment.getitem does */
        if (obj->kind == TPL_DICT) {
            int m = tpl_method_id(obj, key->u.str.s, key->u.str.len);
            r = m ? bound(obj, m) : missing(obj, key->u.str.s, key->u.str.len);
            if (!r) ev_oom(e);
            return r;
        }
        return ev_getattr(e, obj, key->u.str.s, key->u.str.len);
    }
    char num[32] = "";
    if (key->kind == TPL_INT) snprintf(num, sizeof num, "%lld", (long long)key->u.i);
    r = missing(obj, num, strlen(num));
    if (!r) ev_oom(e);
    return r;
}

tpl_value *ev_iterate(tpl_ev *e, tpl_value *v) {
    tpl_value *l = NULL;
    if (ev_charge(e, tpl_len(v) / 8)) return NULL;
    switch (v->kind) {
    case TPL_UNDEFINED:
        l = tv_list(0);
        break;
    case TPL_LIST:
        l = tv_list_copy(v);
        break;
    case TPL_DICT:
        l = tv_list(v->u.dict.n);
        for (size_t i = 0; l && i < v->u.dict.n; i++)
            l->u.list.items[l->u.list.n++] = tv_ref(v->u.dict.keys[i]);
        break;
    case TPL_STRING: {
        l = tv_list(0);
        const unsigned char *s = (const unsigned char *)v->u.str.s;
        for (size_t i = 0; l && i < v->u.str.len;) {
            size_t c = u8_clen(s, v->u.str.len, i);
            tpl_sb b;
            sb_init(&b, 0);
            tpl_value *ch = sb_put_slice(&b, v, i, i + c) == 0 ? sb_finish(&b) : NULL;
            sb_free(&b);
            if (tv_list_push(l, ch) != 0) {
                tv_unref(l);
                l = NULL;
            }
            i += c;
        }
        if (l && ev_charge(e, v->u.str.len / 2)) {
            tv_unref(l);
            return NULL;
        }
        break;
    }
    case TPL_NONE:
        e->none_err = true;
        ev_error(e, "TypeError: 'NoneType' object is not iterable");
        return NULL;
    default:
        ev_error(e, "TypeError: '%s' object is not iterable", tv_type_name(v));
        return NULL;
    }
    if (!l) ev_oom(e);
    return l;
}

/* ---- expressions ---- */

static tpl_value *eval(tpl_ev *e, tpl_scope *sc, const tpl_node *n);
static int exec_body(tpl_ev *e, tpl_scope *sc, tpl_node *const *body, size_t n, tpl_sb *out);

static void unref_all(tpl_value **v, size_t n) {
    for (size_t i = 0; i < n; i++) tv_unref(v[i]);
}

/* Evaluates a node's positional and keyword arguments into args[] and kw[] (allocated
 * together in *mem). */
static int eval_args(tpl_ev *e, tpl_scope *sc, const tpl_node *n, tpl_value ***args,
                     tpl_value ***kw, size_t extra_kw) {
    size_t total = n->nargs + n->nkw + extra_kw;
    tpl_value **mem = calloc(total ? total : 1, sizeof *mem);
    if (!mem) return ev_oom(e);
    for (size_t i = 0; i < n->nargs; i++) {
        if (!(mem[i] = eval(e, sc, n->args[i]))) {
            unref_all(mem, i);
            free(mem);
            return -1;
        }
    }
    for (size_t i = 0; i < n->nkw; i++) {
        if (!(mem[n->nargs + i] = eval(e, sc, n->kwvals[i]))) {
            unref_all(mem, n->nargs + i);
            free(mem);
            return -1;
        }
    }
    *args = mem;
    *kw = mem + n->nargs;
    return 0;
}

static tpl_value *call_macro(tpl_ev *e, tpl_value *m, tpl_value **args, size_t nargs,
                             const char **kwnames, tpl_value **kwvals, size_t nkw) {
    const tpl_node *node = m->u.macro.node;
    tpl_scope *parent = live_scope(e, m->u.macro.scope_serial);
    if (!parent) parent = e->root;
    if (m->u.macro.is_caller) {
        size_t slot = m->u.macro.call_slot;
        if (slot >= e->ncalls || e->calls[slot].gen != m->u.macro.call_gen) {
            ev_error(e, "caller() used outside of its call block");
            return NULL;
        }
        node = e->calls[slot].node;
        parent = e->calls[slot].scope;
    }
    if (++e->depth > e->max_depth) {
        e->depth--;
        ev_error(e, "macro calls nested too deeply");
        return NULL;
    }
    tpl_scope sc = {.parent = parent};
    tpl_value *result = NULL;
    tpl_value *varargs = tv_list(0), *kwargs = tv_dict(TPL_DICT);
    if (scope_enter(e, &sc) != 0) goto done;
    if (!varargs || !kwargs) {
        ev_oom(e);
        goto done;
    }
    varargs->tuple = true;
    for (size_t i = nargs < node->ntargets ? nargs : node->ntargets; i < nargs; i++)
        if (tv_list_push(varargs, tv_ref(args[i])) != 0) {
            ev_oom(e);
            goto done;
        }
    for (size_t k = 0; k < nkw; k++) {
        bool is_param = !strcmp(kwnames[k], "caller");
        for (size_t i = 0; i < node->ntargets && !is_param; i++)
            is_param = !strcmp(kwnames[k], node->targets[i]);
        if (!is_param &&
            tv_dict_put(kwargs, tv_str(kwnames[k], strlen(kwnames[k]), TPL_ORIGIN_TEMPLATE),
                        tv_ref(kwvals[k])) != 0) {
            ev_oom(e);
            goto done;
        }
        if (!strcmp(kwnames[k], "caller") && scope_set(e, &sc, "caller", tv_ref(kwvals[k])) != 0)
            goto done;
    }
    for (size_t i = 0; i < node->ntargets; i++) {
        tpl_value *v = NULL;
        if (i < nargs) v = tv_ref(args[i]);
        for (size_t k = 0; !v && k < nkw; k++)
            if (!strcmp(kwnames[k], node->targets[i])) v = tv_ref(kwvals[k]);
        if (!v && node->kwvals && node->kwvals[i]) {
            if (!(v = eval(e, &sc, node->kwvals[i]))) goto done;
        }
        if (!v) v = tv_undef_hint(TPL_UNDEF_NAME, NULL, node->targets[i], strlen(node->targets[i]));
        if (scope_set(e, &sc, node->targets[i], v) != 0) goto done;
    }
    if (scope_set(e, &sc, "varargs", tv_ref(varargs)) != 0 ||
        scope_set(e, &sc, "kwargs", tv_ref(kwargs)) != 0)
        goto done;
    tpl_sb b;
    sb_init(&b, e->max_str);
    if (exec_body(e, &sc, node->body, node->nbody, &b) >= 0) {
        result = sb_finish(&b);
        if (!result) ev_oom(e);
    }
    sb_free(&b);
done:
    tv_unref(varargs);
    tv_unref(kwargs);
    scope_leave(e, &sc);
    e->depth--;
    return result;
}

tpl_value *ev_call_value(tpl_ev *e, tpl_value *callee, tpl_value **args, size_t nargs,
                         const char **kwnames, tpl_value **kwvals, size_t nkw) {
    switch (callee->kind) {
    case TPL_UNDEFINED:
        ev_undef_error(e, callee);
        return NULL;
    case TPL_FUNC:
        return tpl_call_builtin(e, callee, args, nargs, kwnames, kwvals, nkw);
    case TPL_MACRO:
        return call_macro(e, callee, args, nargs, kwnames, kwvals, nkw);
    default:
        if (callee->kind == TPL_NONE) e->none_err = true;
        ev_error(e, "TypeError: '%s' object is not callable", tv_type_name(callee));
        return NULL;
    }
}

/* A filter node; its operand is the node's own, or input for {% filter %} chains. */
static tpl_value *eval_filter(tpl_ev *e, tpl_scope *sc, const tpl_node *n, tpl_value *input) {
    tpl_value *v;
    if (n->a && n->a->kind == N_FILTER && input)
        v = eval_filter(e, sc, n->a, input);
    else if (n->a)
        v = eval(e, sc, n->a);
    else
        v = tv_ref(input);
    if (!v) return NULL;
    tpl_value **args, **kw;
    if (eval_args(e, sc, n, &args, &kw, 0) != 0) {
        tv_unref(v);
        return NULL;
    }
    tpl_value *r = tpl_apply_filter(e, n->op, v, args, n->nargs, n->kwnames, kw, n->nkw);
    unref_all(args, n->nargs + n->nkw);
    free(args);
    tv_unref(v);
    return r;
}

static int compare(tpl_ev *e, int op, tpl_value *a, tpl_value *b) {
    int c, r;
    switch (op) {
    case OP_EQ:
    case OP_NE:
        if (ev_charge(e, (tpl_len(a) + (a->kind == TPL_STRING ? a->u.str.len / 64 : 0)) / 8))
            return -1;
        r = tv_equal(a, b, 0);
        if (r < 0) return ev_error(e, "RecursionError: values nested too deeply to compare");
        return op == OP_EQ ? r : !r;
    case OP_IN:
    case OP_NOTIN:
        r = tpl_contains(e, a, b);
        if (r < 0) return -1;
        return op == OP_IN ? r : !r;
    default:
        break;
    }
    if (a->kind == TPL_UNDEFINED) return ev_undef_error(e, a);
    if (b->kind == TPL_UNDEFINED) return ev_undef_error(e, b);
    static const char *const sym[] = {[OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">="};
    if (tv_compare(a, b, &c, 0) != 0) {
        if (a->kind == TPL_NONE || b->kind == TPL_NONE) e->none_err = true;
        return ev_error(e, "TypeError: '%s' not supported between instances of '%s' and '%s'",
                        sym[op], tv_type_name(a), tv_type_name(b));
    }
    if (c == 2) return 0; /* NaN */
    switch (op) {
    case OP_LT:
        return c < 0;
    case OP_LE:
        return c <= 0;
    case OP_GT:
        return c > 0;
    default:
        return c >= 0;
    }
}

static tpl_value *eval_slice(tpl_ev *e, tpl_value *obj, tpl_value *const bounds[3]) {
    int64_t part[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; k++) {
        const tpl_value *b = bounds[k];
        if (!b || b->kind == TPL_NONE) continue;
        if (b->kind == TPL_INT || b->kind == TPL_BOOL) {
            part[k] = b->kind == TPL_INT ? b->u.i : b->u.b;
            given[k] = true;
        } else {
            ev_error(e, "TypeError: slice indices must be integers or None");
            return NULL;
        }
    }
    if (given[2] && part[2] == 0) {
        ev_error(e, "ValueError: slice step cannot be zero");
        return NULL;
    }
    if (obj->kind != TPL_LIST && obj->kind != TPL_STRING) return tv_undef();
    bool is_str = obj->kind == TPL_STRING;
    if (ev_charge(e, is_str ? obj->u.str.len / 8 : obj->u.list.n / 8)) return NULL;
    int64_t n = is_str ? (int64_t)u8_count(obj->u.str.s, obj->u.str.len) : (int64_t)obj->u.list.n;
    int64_t step = part[2], start, stop;
    /* Python's PySlice_AdjustIndices */
    if (!given[0])
        start = step < 0 ? n - 1 : 0;
    else {
        start = part[0];
        if (start < 0) {
            start += n;
            if (start < 0) start = step < 0 ? -1 : 0;
        } else if (start >= n)
            start = step < 0 ? n - 1 : n;
    }
    if (!given[1])
        stop = step < 0 ? -1 : n;
    else {
        stop = part[1];
        if (stop < 0) {
            stop += n;
            if (stop < 0) stop = step < 0 ? -1 : 0;
        } else if (stop >= n)
            stop = step < 0 ? n - 1 : n;
    }
    if (is_str) {
        /* character offsets, then the pieces with their origins */
        size_t *off = malloc(((size_t)n + 1) * sizeof *off);
        if (!off) {
            ev_oom(e);
            return NULL;
        }
        size_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            off[i] = at;
            at += u8_clen((const unsigned char *)obj->u.str.s, obj->u.str.len, at);
        }
        off[n] = at;
        tpl_sb b;
        sb_init(&b, e->max_str);
        int rc = 0;
        if (step == 1) {
            if (start < stop) rc = sb_put_slice(&b, obj, off[start], off[stop]);
        } else {
            for (int64_t i = start; !rc && (step > 0 ? i < stop : i > stop); i += step)
                rc = sb_put_slice(&b, obj, off[i], off[i + 1]);
        }
        free(off);
        tpl_value *r = rc ? NULL : sb_finish(&b);
        if (!r) {
            ev_sb_error(e, &b);
            sb_free(&b);
        }
        return r;
    }
    tpl_value *l = tv_list(0);
    if (!l) {
        ev_oom(e);
        return NULL;
    }
    l->tuple = obj->tuple;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (tv_list_push(l, tv_ref(obj->u.list.items[i])) != 0) {
            tv_unref(l);
            ev_oom(e);
            return NULL;
        }
    }
    return l;
}

static tpl_value *eval_inner(tpl_ev *e, tpl_scope *sc, const tpl_node *n) {
    tpl_value *a = NULL, *b = NULL, *r = NULL;
    switch (n->kind) {
    case N_CONST:
        return tv_ref(n->value);
    case N_NAME:
        r = lookup(e, sc, n->name);
        break;
    case N_GETATTR:
        if (!(a = eval(e, sc, n->a))) return NULL;
        r = ev_getattr(e, a, n->name, strlen(n->name));
        tv_unref(a);
        return r;
    case N_GETITEM:
        if (!(a = eval(e, sc, n->a))) return NULL;
        if (!(b = eval(e, sc, n->b))) break;
        r = ev_getitem(e, a, b);
        break;
    case N_SLICE: {
        tpl_value *bounds[3] = {NULL, NULL, NULL};
        const tpl_node *parts[3] = {n->b, n->c, n->d};
        if (!(a = eval(e, sc, n->a))) return NULL;
        if (a->kind == TPL_UNDEFINED) {
            ev_undef_error(e, a);
            tv_unref(a);
            return NULL;
        }
        bool ok = true;
        for (int k = 0; k < 3 && ok; k++)
            if (parts[k] && !(bounds[k] = eval(e, sc, parts[k]))) ok = false;
        if (ok) r = eval_slice(e, a, bounds);
        for (int k = 0; k < 3; k++) tv_unref(bounds[k]);
        break;
    }
    case N_CALL: {
        if (!(a = eval(e, sc, n->a))) return NULL;
        tpl_value **args, **kw;
        if (eval_args(e, sc, n, &args, &kw, 0) == 0) {
            r = ev_call_value(e, a, args, n->nargs, n->kwnames, kw, n->nkw);
            unref_all(args, n->nargs + n->nkw);
            free(args);
        }
        break;
    }
    case N_FILTER:
        return eval_filter(e, sc, n, NULL);
    case N_TEST: {
        if (!(a = eval(e, sc, n->a))) return NULL;
        tpl_value **args, **kw;
        if (eval_args(e, sc, n, &args, &kw, 0) == 0) {
            int t = n->nkw ? ev_error(e, "tests take no keyword arguments")
                           : tpl_apply_test(e, n->op, a, args, n->nargs);
            if (t >= 0) r = tv_bool(n->neg ? !t : t);
            unref_all(args, n->nargs + n->nkw);
            free(args);
        }
        break;
    }
    case N_NEG:
    case N_POS: {
        if (!(a = eval(e, sc, n->a))) return NULL;
        if (a->kind == TPL_UNDEFINED) {
            ev_undef_error(e, a);
            break;
        }
        if (a->kind == TPL_FLOAT)
            r = tv_float(n->kind == N_NEG ? -a->u.f : a->u.f);
        else if (a->kind == TPL_INT || a->kind == TPL_BOOL) {
            int64_t x = a->kind == TPL_INT ? a->u.i : a->u.b;
            if (n->kind == N_NEG && x == INT64_MIN) {
                ev_error(e, "OverflowError: integer too large");
                break;
            }
            r = tv_int(n->kind == N_NEG ? -x : x);
        } else {
            if (a->kind == TPL_NONE) e->none_err = true;
            ev_error(e, "TypeError: bad operand type for unary %c: '%s'",
                     n->kind == N_NEG ? '-' : '+', tv_type_name(a));
            break;
        }
        if (!r) ev_oom(e);
        break;
    }
    case N_NOT:
        if (!(a = eval(e, sc, n->a))) return NULL;
        r = tv_bool(!tv_truthy(a));
        break;
    case N_BINOP:
        if (!(a = eval(e, sc, n->a))) return NULL;
        if (!(b = eval(e, sc, n->b))) break;
        r = tpl_binop(e, n->op, a, b);
        break;
    case N_AND:
    case N_OR:
        if (!(a = eval(e, sc, n->a))) return NULL;
        if (tv_truthy(a) == (n->kind == N_OR)) return a;
        tv_unref(a);
        return eval(e, sc, n->b);
    case N_COMPARE: {
        if (!(a = eval(e, sc, n->a))) return NULL;
        int ok = 1;
        for (size_t i = 0; i < n->nargs && ok == 1; i++) {
            if (!(b = eval(e, sc, n->args[i]))) {
                ok = -1;
                break;
            }
            ok = compare(e, n->cmpops[i], a, b);
            tv_unref(a);
            a = b;
            b = NULL;
        }
        if (ok >= 0) r = tv_bool(ok == 1);
        break;
    }
    case N_CONCAT: {
        tpl_sb s;
        sb_init(&s, e->max_str);
        bool ok = true;
        for (size_t i = 0; i < n->nargs && ok; i++) {
            tpl_value *x = eval(e, sc, n->args[i]);
            ok = x && ev_write_str(e, &s, x) == 0;
            tv_unref(x);
        }
        if (ok && !ev_charge(e, s.len / 8)) {
            r = sb_finish(&s);
            if (!r) ev_oom(e);
        }
        sb_free(&s);
        return r;
    }
    case N_COND:
        if (!(a = eval(e, sc, n->a))) return NULL;
        if (tv_truthy(a))
            r = eval(e, sc, n->b);
        else
            r = n->c ? eval(e, sc, n->c) : tv_undef();
        break;
    case N_LIST:
    case N_TUPLE:
        if (!(r = tv_list(n->nargs))) return ev_oom(e), NULL;
        r->tuple = n->kind == N_TUPLE;
        for (size_t i = 0; i < n->nargs; i++) {
            tpl_value *x = eval(e, sc, n->args[i]);
            if (!x) {
                tv_unref(r);
                return NULL;
            }
            r->u.list.items[r->u.list.n++] = x;
        }
        return r;
    case N_DICT:
        if (!(r = tv_dict(TPL_DICT))) return ev_oom(e), NULL;
        for (size_t i = 0; i < n->nargs; i++) {
            tpl_value *k = eval(e, sc, n->args[i]);
            if (k && ((k->kind == TPL_LIST && !k->tuple) || k->kind == TPL_DICT ||
                      k->kind == TPL_UNDEFINED)) {
                if (k->kind == TPL_UNDEFINED)
                    ev_undef_error(e, k);
                else
                    ev_error(e, "TypeError: unhashable type: '%s'", tv_type_name(k));
                tv_unref(k);
                k = NULL;
            }
            tpl_value *v = k ? eval(e, sc, n->kwvals[i]) : NULL;
            if (!k || !v) {
                tv_unref(k);
                tv_unref(r);
                return NULL;
            }
            if (tv_dict_put(r, k, v) != 0) {
                tv_unref(r);
                return ev_oom(e), NULL;
            }
        }
        return r;
    default:
        ev_error(e, "internal: not an expression");
        return NULL;
    }
    tv_unref(a);
    tv_unref(b);
    if (!r && !e->failed) ev_oom(e);
    return r;
}

static tpl_value *eval(tpl_ev *e, tpl_scope *sc, const tpl_node *n) {
    if (e->failed) return NULL;
    e->line = n->line;
    if (ev_charge(e, 1)) return NULL;
    if (++e->depth > e->max_depth) {
        e->depth--;
        ev_error(e, "template nested too deeply");
        return NULL;
    }
    tpl_value *r = eval_inner(e, sc, n);
    e->depth--;
    return r;
}

/* ---- statements ---- */

/* Binds targets to v: one name, or unpacking a sequence into several. */
static int assign(tpl_ev *e, tpl_scope *sc, const tpl_node *n, tpl_value *v) {
    if (!n->target_tuple) return scope_set(e, sc, n->targets[0], tv_ref(v));
    tpl_value *items = v->kind == TPL_LIST ? tv_ref(v) : ev_iterate(e, v);
    if (!items) return -1;
    int rc = 0;
    if (items->u.list.n != n->ntargets) {
        rc = ev_error(e, "ValueError: %s values to unpack (expected %zu, got %zu)",
                      items->u.list.n < n->ntargets ? "not enough" : "too many", n->ntargets,
                      items->u.list.n);
    }
    for (size_t i = 0; rc == 0 && i < n->ntargets; i++)
        rc = scope_set(e, sc, n->targets[i], tv_ref(items->u.list.items[i]));
    tv_unref(items);
    return rc;
}

static int exec_for(tpl_ev *e, tpl_scope *sc, const tpl_node *n, tpl_sb *out) {
    tpl_value *it = eval(e, sc, n->a);
    if (!it) return EX_ERR;
    tpl_value *items = ev_iterate(e, it);
    tv_unref(it);
    if (!items) return EX_ERR;
    if (n->b) { /* for x in xs if cond: filter first, so loop.length counts what remains */
        tpl_value *kept = tv_list(0);
        if (!kept) {
            tv_unref(items);
            return ev_oom(e);
        }
        for (size_t i = 0; i < items->u.list.n; i++) {
            tpl_scope fs = {.parent = sc};
            tpl_value *c = NULL;
            if (scope_enter(e, &fs) == 0 && assign(e, &fs, n, items->u.list.items[i]) == 0)
                c = eval(e, &fs, n->b);
            scope_leave(e, &fs);
            if (!c) {
                tv_unref(kept);
                tv_unref(items);
                return EX_ERR;
            }
            bool keep = tv_truthy(c);
            tv_unref(c);
            if (keep && tv_list_push(kept, tv_ref(items->u.list.items[i])) != 0) {
                tv_unref(kept);
                tv_unref(items);
                return ev_oom(e);
            }
        }
        tv_unref(items);
        items = kept;
    }
    int rc = EX_OK;
    if (items->u.list.n == 0) {
        tv_unref(items);
        return exec_body(e, sc, n->else_body, n->nelse, out);
    }
    for (size_t i = 0; i < items->u.list.n; i++) {
        if (ev_charge(e, 1)) {
            rc = EX_ERR;
            break;
        }
        tpl_scope ls = {.parent = sc};
        tpl_value *lp = tv_new(TPL_LOOP);
        if (lp) {
            lp->u.loop.items = tv_ref(items);
            lp->u.loop.idx = i;
        }
        rc = scope_enter(e, &ls);
        if (rc == 0) rc = assign(e, &ls, n, items->u.list.items[i]);
        if (rc == 0)
            rc = scope_set(e, &ls, "loop", lp);
        else
            tv_unref(lp);
        if (rc == 0) rc = exec_body(e, &ls, n->body, n->nbody, out);
        scope_leave(e, &ls);
        if (rc == EX_BREAK) {
            rc = EX_OK;
            break;
        }
        if (rc == EX_CONTINUE) rc = EX_OK;
        if (rc < 0) break;
    }
    tv_unref(items);
    return rc;
}

static int exec_callblock(tpl_ev *e, tpl_scope *sc, const tpl_node *n, tpl_sb *out) {
    const tpl_node *call = n->a;
    if (e->ncalls == e->capcalls) {
        size_t nc = e->capcalls ? e->capcalls * 2 : 4;
        tpl_callframe *p = realloc(e->calls, nc * sizeof *p);
        if (!p) return ev_oom(e);
        e->calls = p;
        e->capcalls = nc;
    }
    size_t slot = e->ncalls++;
    e->calls[slot] = (tpl_callframe){n, sc, ++e->gen};
    tpl_value *caller = tv_new(TPL_MACRO), *callee = NULL, *r = NULL;
    tpl_value **args = NULL, **kw = NULL;
    const char **names = NULL;
    if (!caller) {
        ev_oom(e);
        goto done;
    }
    caller->u.macro.node = n;
    caller->u.macro.is_caller = true;
    caller->u.macro.call_slot = slot;
    caller->u.macro.call_gen = e->calls[slot].gen;
    if (!(callee = eval(e, sc, call->a))) goto done;
    if (eval_args(e, sc, call, &args, &kw, 1) != 0) goto done;
    names = malloc((call->nkw + 1) * sizeof *names);
    if (!names) {
        ev_oom(e);
        goto done;
    }
    for (size_t i = 0; i < call->nkw; i++) names[i] = call->kwnames[i];
    names[call->nkw] = "caller";
    kw[call->nkw] = tv_ref(caller);
    r = ev_call_value(e, callee, args, call->nargs, names, kw, call->nkw + 1);
    if (r && ev_write_str(e, out, r) != 0) {
        tv_unref(r);
        r = NULL;
    }
done:
    if (args) {
        unref_all(args, call->nargs + call->nkw + 1);
        free(args);
    }
    free(names);
    tv_unref(callee);
    tv_unref(caller);
    e->ncalls--;
    if (!r) return EX_ERR;
    tv_unref(r);
    return EX_OK;
}

/* Renders a body into a fresh string (block set, filter blocks). */
static tpl_value *capture(tpl_ev *e, tpl_scope *sc, const tpl_node *n) {
    tpl_sb b;
    sb_init(&b, e->max_str);
    tpl_value *r = NULL;
    if (exec_body(e, sc, n->body, n->nbody, &b) >= 0 && !(r = sb_finish(&b))) ev_oom(e);
    sb_free(&b);
    if (r && n->a) {
        tpl_value *f = eval_filter(e, sc, n->a, r);
        tv_unref(r);
        r = f;
    }
    return r;
}

static int exec_node(tpl_ev *e, tpl_scope *sc, const tpl_node *n, tpl_sb *out) {
    tpl_value *v;
    int rc;
    switch (n->kind) {
    case N_TEXT:
        return sb_put_str(out, n->value) ? ev_sb_error(e, out) : EX_OK;
    case N_PRINT:
        if (!(v = eval(e, sc, n->a))) return EX_ERR;
        rc = ev_write_str(e, out, v);
        tv_unref(v);
        return rc ? EX_ERR : EX_OK;
    case N_IF:
        if (!(v = eval(e, sc, n->a))) return EX_ERR;
        rc = tv_truthy(v);
        tv_unref(v);
        return rc ? exec_body(e, sc, n->body, n->nbody, out)
                  : exec_body(e, sc, n->else_body, n->nelse, out);
    case N_FOR:
        return exec_for(e, sc, n, out);
    case N_SET:
        if (!(v = eval(e, sc, n->a))) return EX_ERR;
        rc = assign(e, sc, n, v);
        tv_unref(v);
        return rc ? EX_ERR : EX_OK;
    case N_SET_ATTR: {
        tpl_value *ns = lookup(e, sc, n->name);
        if (!ns) return ev_oom(e);
        if (ns->kind != TPL_NAMESPACE) {
            tv_unref(ns);
            return ev_error(
                e, "TemplateRuntimeError: cannot assign attribute on non-namespace object");
        }
        if (!(v = eval(e, sc, n->a))) {
            tv_unref(ns);
            return EX_ERR;
        }
        rc = tv_contains(v, ns, 0);
        if (rc != 0) {
            tv_unref(v);
            tv_unref(ns);
            return ev_error(e, "a namespace cannot contain itself");
        }
        rc = tv_dict_put(ns, tv_str(n->targets[0], strlen(n->targets[0]), TPL_ORIGIN_TEMPLATE), v);
        tv_unref(ns);
        return rc ? ev_oom(e) : EX_OK;
    }
    case N_SET_BLOCK:
        if (!(v = capture(e, sc, n))) return EX_ERR;
        return scope_set(e, sc, n->targets[0], v) ? EX_ERR : EX_OK;
    case N_MACRO:
        if (!(v = tv_new(TPL_MACRO))) return ev_oom(e);
        v->u.macro.node = n;
        v->u.macro.scope_serial = sc->serial;
        return scope_set(e, sc, n->name, v) ? EX_ERR : EX_OK;
    case N_CALLBLOCK:
        return exec_callblock(e, sc, n, out);
    case N_FILTERBLOCK:
        if (!(v = capture(e, sc, n))) return EX_ERR;
        rc = ev_write_str(e, out, v);
        tv_unref(v);
        return rc ? EX_ERR : EX_OK;
    case N_WITH: {
        tpl_scope ws = {.parent = sc};
        rc = scope_enter(e, &ws) ? EX_ERR : EX_OK;
        for (size_t i = 0; i < n->ntargets && rc == EX_OK; i++) {
            v = eval(e, sc, n->args[i]);
            rc = v ? scope_set(e, &ws, n->targets[i], v) : EX_ERR;
        }
        if (rc == EX_OK) rc = exec_body(e, &ws, n->body, n->nbody, out);
        scope_leave(e, &ws);
        return rc;
    }
    case N_BREAK:
        return EX_BREAK;
    case N_CONTINUE:
        return EX_CONTINUE;
    case N_BLOCK:
        return exec_body(e, sc, n->body, n->nbody, out);
    default:
        return ev_error(e, "internal: not a statement");
    }
}

static int exec_body(tpl_ev *e, tpl_scope *sc, tpl_node *const *body, size_t n, tpl_sb *out) {
    if (++e->depth > e->max_depth) {
        e->depth--;
        return ev_error(e, "template nested too deeply");
    }
    int rc = EX_OK;
    for (size_t i = 0; i < n && rc == EX_OK; i++) {
        if (e->failed) {
            rc = EX_ERR;
            break;
        }
        e->line = body[i]->line;
        if (ev_charge(e, 1)) {
            rc = EX_ERR;
            break;
        }
        rc = exec_node(e, sc, body[i], out);
    }
    e->depth--;
    return rc;
}

/* ---- rendering ---- */

static int render(const tpl_template *t, const tpl_value *ctx, const tpl_options *opts,
                  tpl_output *out, chatd_error *err, bool *none_err) {
    memset(out, 0, sizeof *out);
    *none_err = false;
    if (!t) return chatd_errorf(err, "chat template: no template");
    if (ctx && ctx->kind != TPL_DICT)
        return chatd_errorf(err, "chat template: context is not a dict");
    tpl_ev e = {.t = t, .ctx = ctx, .err = err, .line = 1};
    e.max_steps = opts && opts->max_steps ? opts->max_steps : DEFAULT_MAX_STEPS;
    e.max_str = opts && opts->max_output ? opts->max_output : DEFAULT_MAX_OUTPUT;
    e.max_depth = opts && opts->max_depth ? opts->max_depth : DEFAULT_MAX_DEPTH;
    e.now = opts && opts->now ? opts->now : (int64_t)time(NULL);
    tpl_scope root = {0};
    e.root = &root;
    tpl_sb b;
    sb_init(&b, e.max_str);
    int rc = scope_enter(&e, &root) ? EX_ERR : exec_body(&e, &root, t->body, t->nbody, &b);
    scope_leave(&e, &root);
    free(e.calls);
    free(e.live);
    if (rc < 0 || e.failed) {
        *none_err = e.none_err;
        sb_free(&b);
        if (err && !err->msg[0]) chatd_errorf(err, "chat template: render failed");
        return -1;
    }
    out->frags = malloc((b.nruns ? b.nruns : 1) * sizeof *out->frags);
    if (!b.s) b.s = calloc(1, 1);
    if (!out->frags || !b.s) {
        free(out->frags);
        out->frags = NULL;
        sb_free(&b);
        return chatd_errorf(err, "chat template: out of memory");
    }
    out->buf = b.s;
    out->len = b.len;
    size_t at = 0;
    for (size_t i = 0; i < b.nruns; i++) {
        out->frags[i] = (tpl_fragment){b.s + at, b.runs[i].end - at, (tpl_origin)b.runs[i].origin};
        at = b.runs[i].end;
    }
    out->n = b.nruns;
    free(b.runs);
    return 0;
}

int tpl_render_ex(const tpl_template *t, const tpl_value *context, const tpl_options *opts,
                  tpl_output *out, chatd_error *err) {
    bool none_err;
    if (!out) return chatd_errorf(err, "chat template: no output");
    return render(t, context, opts, out, err, &none_err);
}

int tpl_render(const tpl_template *t, const tpl_value *context, tpl_output *out, chatd_error *err) {
    return tpl_render_ex(t, context, NULL, out, err);
}

static bool is_str(const tpl_value *v, const char *s) {
    return v && v->kind == TPL_STRING && v->u.str.len == strlen(s) &&
           !memcmp(v->u.str.s, s, v->u.str.len);
}

/* An assistant message with tool calls and content None: the messages llama.cpp renders
 * with content "" and Jinja2 templates often fail on. */
static bool null_tool_message(const tpl_value *m) {
    if (!m || m->kind != TPL_DICT) return false;
    const tpl_value *content = tv_dict_findc(m, "content", 7);
    const tpl_value *calls = tv_dict_findc(m, "tool_calls", 10);
    return is_str(tv_dict_findc(m, "role", 4), "assistant") && content &&
           content->kind == TPL_NONE && calls && tv_truthy(calls);
}

/* A shallow copy of the context whose null-content tool-call messages have content "". */
static tpl_value *patch_context(const tpl_value *ctx) {
    const tpl_value *msgs = tv_dict_findc(ctx, "messages", 8);
    if (!msgs || msgs->kind != TPL_LIST) return NULL;
    bool any = false;
    for (size_t i = 0; i < msgs->u.list.n; i++) any |= null_tool_message(msgs->u.list.items[i]);
    if (!any) return NULL;
    tpl_value *nm = tv_list(msgs->u.list.n), *nc = tv_dict(TPL_DICT);
    if (!nm || !nc) goto fail;
    nm->frozen = nc->frozen = true;
    for (size_t i = 0; i < msgs->u.list.n; i++) {
        tpl_value *m = msgs->u.list.items[i];
        if (!null_tool_message(m)) {
            nm->u.list.items[nm->u.list.n++] = tv_ref(m);
            continue;
        }
        tpl_value *c = tv_dict(TPL_DICT);
        if (!c) goto fail;
        c->frozen = true;
        nm->u.list.items[nm->u.list.n++] = c;
        for (size_t k = 0; k < m->u.dict.n; k++) {
            bool is_content = is_str(m->u.dict.keys[k], "content");
            tpl_value *val =
                is_content ? tv_str("", 0, TPL_ORIGIN_REQUEST) : tv_ref(m->u.dict.vals[k]);
            if (tv_dict_put(c, tv_ref(m->u.dict.keys[k]), val) != 0) goto fail;
        }
    }
    for (size_t k = 0; k < ctx->u.dict.n; k++) {
        bool is_msgs = ctx->u.dict.vals[k] == msgs;
        if (tv_dict_put(nc, tv_ref(ctx->u.dict.keys[k]),
                        tv_ref(is_msgs ? nm : ctx->u.dict.vals[k])) != 0)
            goto fail;
    }
    tv_unref(nm);
    return nc;
fail:
    tv_unref(nm);
    tv_unref(nc);
    return NULL;
}

int tpl_render_chat(const tpl_template *t, const tpl_value *context, const tpl_options *opts,
                    tpl_output *out, chatd_error *err) {
    bool none_err;
    if (!out) return chatd_errorf(err, "chat template: no output");
    int rc = render(t, context, opts, out, err, &none_err);
    if (rc == 0 || !none_err || !context || context->kind != TPL_DICT) return rc;
    tpl_value *patched = patch_context(context);
    if (!patched) return rc; /* no such message (or no memory): the first error stands */
    chatd_error err2 = {{0}};
    rc = render(t, patched, opts, out, &err2, &none_err);
    tv_unref(patched);
    if (rc != 0 && err) *err = err2;
    return rc;
}

/* ---- output ---- */

const char *tpl_output_text(const tpl_output *out, size_t *len) {
    if (len) *len = out && out->buf ? out->len : 0;
    return out && out->buf ? out->buf : "";
}

void tpl_output_free(tpl_output *out) {
    if (!out) return;
    free(out->frags);
    free(out->buf);
    memset(out, 0, sizeof *out);
}
