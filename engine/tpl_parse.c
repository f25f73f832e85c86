/* tpl_parse.c - the chat-template parser: Jinja2's grammar (statements, expression
 * precedence, filters, tests, subscripts and slices) into a syntax tree that lives in the
 * template's arena, with nesting bounded so that no template can exhaust the stack. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpl_internal.h"

/* ---- the arena: every node, name and constant of a template, freed at once ---- */

void *tpl_arena_alloc(tpl_template *t, size_t n) {
    n = (n + 15) & ~(size_t)15;
    tpl_arena_chunk *c = t->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = t->arena;
        c->used = 0;
        c->cap = cap;
        t->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void tpl_free(tpl_template *t) {
    if (!t) return;
    tpl_arena_chunk *c = t->arena;
    while (c) {
        tpl_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(t);
}

/* ---- parser state ---- */

typedef struct parser {
    tpl_template *t;
    tpl_token *tk;
    size_t ntk, i;
    chatd_error *err;
    bool failed;
    int depth; /* recursion of the parser itself */
    int loops; /* enclosing for loops (break/continue are legal inside) */
} parser;

static tpl_token *cur(parser *p) {
    return &p->tk[p->i];
}
static tpl_token *peek(parser *p, size_t k) {
    return p->i + k < p->ntk ? &p->tk[p->i + k] : &p->tk[p->ntk - 1];
}
static void advance(parser *p) {
    if (p->tk[p->i].type != T_EOF) p->i++;
}

static const char *describe(const tpl_token *k) {
    static const char *const names[] = {
        "end of template", "template data", "'{{'",  "'}}'",    "'{%'", "'%}'", "name",
        "string",          "integer",       "float", "operator"};
    return k->type < sizeof names / sizeof names[0] ? names[k->type] : "token";
}

static void *fail(parser *p, const char *fmt, ...) {
    if (!p->failed) {
        p->failed = true;
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        chatd_errorf(p->err, "chat template syntax error, line %d: %s", cur(p)->line, msg);
    }
    return NULL;
}

static void *oom(parser *p) {
    if (!p->failed) {
        p->failed = true;
        chatd_errorf(p->err, "chat template: out of memory");
    }
    return NULL;
}

static bool is_op(parser *p, int op) {
    return cur(p)->type == T_OP && cur(p)->op == op;
}
static bool is_name(parser *p, const char *name) {
    return cur(p)->type == T_NAME && strcmp(cur(p)->s, name) == 0;
}
static bool accept_op(parser *p, int op) {
    if (!is_op(p, op)) return false;
    advance(p);
    return true;
}
static bool accept_name(parser *p, const char *name) {
    if (!is_name(p, name)) return false;
    advance(p);
    return true;
}
static bool expect_op(parser *p, int op, const char *text) {
    if (accept_op(p, op)) return true;
    fail(p, "expected '%s', got %s%s%s", text, describe(cur(p)), cur(p)->type == T_NAME ? " " : "",
         cur(p)->type == T_NAME ? cur(p)->s : "");
    return false;
}
static bool expect_type(parser *p, int type) {
    if (cur(p)->type == type) {
        advance(p);
        return true;
    }
    tpl_token k = {.type = (uint8_t)type};
    fail(p, "expected %s, got %s%s%s", describe(&k), describe(cur(p)),
         cur(p)->type == T_NAME ? " " : "", cur(p)->type == T_NAME ? cur(p)->s : "");
    return false;
}

static bool enter(parser *p) {
    if (++p->depth > TPL_PARSE_DEPTH) {
        fail(p, "template nested too deeply");
        return false;
    }
    return true;
}

static tpl_node *mk(parser *p, int kind, int line) {
    tpl_node *n = tpl_arena_alloc(p->t, sizeof *n);
    if (!n) return oom(p);
    n->kind = (uint8_t)kind;
    n->line = line;
    n->h = 1;
    return n;
}

/* Recomputes a node's height from its children; fails when the tree is too deep to
 * evaluate recursively. */
static tpl_node *seal(parser *p, tpl_node *n) {
    if (!n) return NULL;
    unsigned h = 0;
    const tpl_node *kids[4] = {n->a, n->b, n->c, n->d};
    for (int i = 0; i < 4; i++)
        if (kids[i] && kids[i]->h > h) h = kids[i]->h;
    for (size_t i = 0; i < n->nargs; i++)
        if (n->args[i] && n->args[i]->h > h) h = n->args[i]->h;
    for (size_t i = 0; i < n->nkw; i++)
        if (n->kwvals && n->kwvals[i] && n->kwvals[i]->h > h) h = n->kwvals[i]->h;
    if (h + 1 > TPL_PARSE_DEPTH) return fail(p, "expression nested too deeply");
    n->h = (uint16_t)(h + 1);
    return n;
}

/* Appends to an arena array, doubling its capacity (the old copy stays in the arena). */
static bool vpush(parser *p, void ***arr, size_t *n, size_t *cap, void *x) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        void **na = tpl_arena_alloc(p->t, nc * sizeof *na);
        if (!na) {
            oom(p);
            return false;
        }
        if (*n) memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = x;
    return true;
}

static tpl_value *const_value(parser *p, int kind) {
    tpl_value *v = tpl_arena_alloc(p->t, sizeof *v);
    if (!v) return oom(p);
    v->kind = (uint8_t)kind;
    v->immortal = true;
    return v;
}

static tpl_value *const_string(parser *p, const char *s, size_t n) {
    tpl_value *v = const_value(p, TPL_STRING);
    if (!v) return NULL;
    v->u.str.s = (char *)s; /* arena text, NUL-terminated, never written */
    v->u.str.len = n;
    v->u.str.runs = &v->u.str.run0;
    v->u.str.nruns = n ? 1 : 0;
    v->u.str.run0 = (tpl_run){n, TPL_ORIGIN_TEMPLATE};
    return v;
}

static tpl_node *parse_expression(parser *p, bool condexpr);
static tpl_node *parse_tuple(parser *p, bool condexpr, bool explicit_paren, const char *end_name);
static tpl_node *parse_unary(parser *p, bool with_filter);
static tpl_node *parse_postfix(parser *p, tpl_node *n);
static tpl_node *parse_filter_expr(parser *p, tpl_node *n);

/* ---- expressions, in Jinja2's precedence order ---- */

static tpl_node *parse_list(parser *p) {
    tpl_node *n = mk(p, N_LIST, cur(p)->line);
    size_t cap = 0;
    advance(p); /* [ */
    while (n && !is_op(p, O_RBRACKET)) {
        if (n->nargs && !expect_op(p, O_COMMA, ",")) return NULL;
        if (is_op(p, O_RBRACKET)) break;
        tpl_node *x = parse_expression(p, true);
        if (!x || !vpush(p, (void ***)&n->args, &n->nargs, &cap, x)) return NULL;
    }
    if (!n || !expect_op(p, O_RBRACKET, "]")) return NULL;
    return seal(p, n);
}

static tpl_node *parse_dict(parser *p) {
    tpl_node *n = mk(p, N_DICT, cur(p)->line);
    size_t cap = 0, capv = 0;
    advance(p); /* { */
    while (n && !is_op(p, O_RBRACE)) {
        if (n->nargs && !expect_op(p, O_COMMA, ",")) return NULL;
        if (is_op(p, O_RBRACE)) break;
        tpl_node *k = parse_expression(p, true);
        if (!k || !expect_op(p, O_COLON, ":")) return NULL;
        tpl_node *v = parse_expression(p, true);
        if (!v || !vpush(p, (void ***)&n->args, &n->nargs, &cap, k) ||
            !vpush(p, (void ***)&n->kwvals, &n->nkw, &capv, v))
            return NULL;
    }
    if (!n || !expect_op(p, O_RBRACE, "}")) return NULL;
    return seal(p, n);
}

static tpl_node *parse_primary(parser *p) {
    tpl_token *k = cur(p);
    tpl_node *n;
    switch (k->type) {
    case T_NAME:
        n = mk(p, N_CONST, k->line);
        if (!n) return NULL;
        if (!strcmp(k->s, "true") || !strcmp(k->s, "True"))
            n->value = tv_bool(true);
        else if (!strcmp(k->s, "false") || !strcmp(k->s, "False"))
            n->value = tv_bool(false);
        else if (!strcmp(k->s, "none") || !strcmp(k->s, "None"))
            n->value = tv_none();
        else {
            n->kind = N_NAME;
            n->name = k->s;
        }
        advance(p);
        return n;
    case T_STRING: {
        /* adjacent literals join: 'a' 'b' is 'ab' */
        size_t total = 0, j = p->i;
        while (p->tk[j].type == T_STRING) total += p->tk[j++].len;
        char *s = tpl_arena_alloc(p->t, total + 1);
        if (!s) return oom(p);
        size_t w = 0;
        while (cur(p)->type == T_STRING) {
            memcpy(s + w, cur(p)->s, cur(p)->len);
            w += cur(p)->len;
            advance(p);
        }
        s[w] = 0;
        n = mk(p, N_CONST, k->line);
        if (!n || !(n->value = const_string(p, s, w))) return NULL;
        return n;
    }
    case T_INT:
    case T_FLOAT:
        n = mk(p, N_CONST, k->line);
        if (!n || !(n->value = const_value(p, k->type == T_INT ? TPL_INT : TPL_FLOAT))) return NULL;
        if (k->type == T_INT)
            n->value->u.i = k->i;
        else
            n->value->u.f = k->f;
        advance(p);
        return n;
    case T_OP:
        if (k->op == O_LPAREN) {
            advance(p);
            n = parse_tuple(p, true, true, NULL);
            if (!n || !expect_op(p, O_RPAREN, ")")) return NULL;
            return n;
        }
        if (k->op == O_LBRACKET) return parse_list(p);
        if (k->op == O_LBRACE) return parse_dict(p);
        break;
    default:
        break;
    }
    return fail(p, "unexpected %s", describe(k));
}

/* A tuple where one is allowed ("a, b"); a single expression without a comma is just
 * that expression. */
static tpl_node *parse_tuple(parser *p, bool condexpr, bool explicit_paren, const char *end_name) {
    int line = cur(p)->line;
    tpl_node *t = mk(p, N_TUPLE, line);
    size_t cap = 0;
    bool is_tuple = false;
    if (!t) return NULL;
    for (;;) {
        if (t->nargs && !expect_op(p, O_COMMA, ",")) return NULL;
        int ty = cur(p)->type;
        if (ty == T_VAR_END || ty == T_BLOCK_END || is_op(p, O_RPAREN) ||
            (end_name && is_name(p, end_name)))
            break;
        tpl_node *x = parse_expression(p, condexpr);
        if (!x || !vpush(p, (void ***)&t->args, &t->nargs, &cap, x)) return NULL;
        if (is_op(p, O_COMMA))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (t->nargs) return t->args[0];
        if (!explicit_paren) return fail(p, "expected an expression, got %s", describe(cur(p)));
    }
    return seal(p, t);
}

static bool parse_call_args(parser *p, tpl_node *n) {
    size_t cap = 0, capk = 0, capv = 0, nk = 0;
    advance(p); /* ( */
    while (!is_op(p, O_RPAREN)) {
        if ((n->nargs || n->nkw) && !expect_op(p, O_COMMA, ",")) return false;
        if (is_op(p, O_RPAREN)) break;
        if (is_op(p, O_MUL) || is_op(p, O_POW)) {
            fail(p, "*args and **kwargs are not supported");
            return false;
        }
        if (cur(p)->type == T_NAME && peek(p, 1)->type == T_OP && peek(p, 1)->op == O_ASSIGN) {
            const char *kw = cur(p)->s;
            advance(p);
            advance(p);
            tpl_node *v = parse_expression(p, true);
            /* names and values grow in step */
            if (!v || !vpush(p, (void ***)&n->kwnames, &nk, &capk, (void *)kw) ||
                !vpush(p, (void ***)&n->kwvals, &n->nkw, &capv, v))
                return false;
            continue;
        }
        if (n->nkw) {
            fail(p, "invalid syntax for function call expression");
            return false;
        }
        tpl_node *a = parse_expression(p, true);
        if (!a || !vpush(p, (void ***)&n->args, &n->nargs, &cap, a)) return false;
    }
    return expect_op(p, O_RPAREN, ")");
}

static tpl_node *parse_call(parser *p, tpl_node *callee) {
    tpl_node *n = mk(p, N_CALL, cur(p)->line);
    if (!n) return NULL;
    n->a = callee;
    if (!parse_call_args(p, n)) return NULL;
    return seal(p, n);
}

/* After "|" or "is": a dotted name. */
static const char *dotted_name(parser *p) {
    if (cur(p)->type != T_NAME) return fail(p, "expected a name, got %s", describe(cur(p)));
    const char *name = cur(p)->s;
    advance(p);
    while (is_op(p, O_DOT) && peek(p, 1)->type == T_NAME) {
        advance(p);
        size_t a = strlen(name), b = strlen(cur(p)->s);
        char *j = tpl_arena_alloc(p->t, a + b + 2);
        if (!j) return oom(p);
        memcpy(j, name, a);
        j[a] = '.';
        memcpy(j + a + 1, cur(p)->s, b + 1);
        name = j;
        advance(p);
    }
    return name;
}

static tpl_node *parse_filter(parser *p, tpl_node *operand) {
    tpl_node *n = mk(p, N_FILTER, cur(p)->line);
    if (!n) return NULL;
    n->a = operand;
    if (!(n->name = dotted_name(p))) return NULL;
    int id = tpl_filter_id(n->name);
    if (!id) return fail(p, "no filter named '%s'", n->name);
    n->op = (uint8_t)id;
    if (is_op(p, O_LPAREN) && !parse_call_args(p, n)) return NULL;
    return seal(p, n);
}

static tpl_node *parse_test(parser *p, tpl_node *operand) {
    tpl_node *n = mk(p, N_TEST, cur(p)->line);
    if (!n) return NULL;
    advance(p); /* is */
    n->a = operand;
    n->neg = accept_name(p, "not");
    if (!(n->name = dotted_name(p))) return NULL;
    int id = tpl_test_id(n->name);
    if (!id) return fail(p, "no test named '%s'", n->name);
    n->op = (uint8_t)id;
    tpl_token *k = cur(p);
    if (is_op(p, O_LPAREN)) {
        if (!parse_call_args(p, n)) return NULL;
    } else if ((k->type == T_NAME || k->type == T_STRING || k->type == T_INT ||
                k->type == T_FLOAT || is_op(p, O_LBRACKET) || is_op(p, O_LBRACE)) &&
               !is_name(p, "else") && !is_name(p, "or") && !is_name(p, "and")) {
        if (is_name(p, "is")) return fail(p, "you cannot chain multiple tests with is");
        if (!enter(p)) return NULL;
        tpl_node *arg = parse_primary(p);
        if (arg) arg = parse_postfix(p, arg);
        p->depth--;
        if (!arg) return NULL;
        n->args = tpl_arena_alloc(p->t, sizeof *n->args);
        if (!n->args) return oom(p);
        n->args[0] = arg;
        n->nargs = 1;
    }
    return seal(p, n);
}

/* One subscript inside [...]: an expression or a slice a:b:c (parts optional). */
static tpl_node *parse_subscribed(parser *p) {
    int line = cur(p)->line;
    tpl_node *parts[3] = {NULL, NULL, NULL};
    if (!accept_op(p, O_COLON)) {
        tpl_node *x = parse_expression(p, true);
        if (!x) return NULL;
        if (!accept_op(p, O_COLON)) return x;
        parts[0] = x;
    }
    if (!is_op(p, O_COLON) && !is_op(p, O_RBRACKET) && !is_op(p, O_COMMA)) {
        if (!(parts[1] = parse_expression(p, true))) return NULL;
    }
    if (accept_op(p, O_COLON) && !is_op(p, O_RBRACKET) && !is_op(p, O_COMMA)) {
        if (!(parts[2] = parse_expression(p, true))) return NULL;
    }
    tpl_node *s = mk(p, N_SLICE, line);
    if (!s) return NULL;
    s->b = parts[0];
    s->c = parts[1];
    s->d = parts[2];
    return s;
}

static tpl_node *parse_subscript(parser *p, tpl_node *obj) {
    int line = cur(p)->line;
    if (accept_op(p, O_DOT)) {
        tpl_token *k = cur(p);
        tpl_node *n = mk(p, k->type == T_NAME ? N_GETATTR : N_GETITEM, line);
        if (!n) return NULL;
        n->a = obj;
        if (k->type == T_NAME) {
            n->name = k->s;
        } else if (k->type == T_INT) {
            tpl_node *c = mk(p, N_CONST, line);
            if (!c || !(c->value = const_value(p, TPL_INT))) return NULL;
            c->value->u.i = k->i;
            n->b = c;
        } else {
            return fail(p, "expected name or number after '.'");
        }
        advance(p);
        return seal(p, n);
    }
    advance(p); /* [ */
    tpl_node *items[1] = {NULL};
    tpl_node *tuple = NULL;
    size_t cap = 0;
    while (!is_op(p, O_RBRACKET)) {
        if ((items[0] || tuple) && !expect_op(p, O_COMMA, ",")) return NULL;
        if (is_op(p, O_RBRACKET)) break;
        tpl_node *x = parse_subscribed(p);
        if (!x) return NULL;
        if (!items[0] && !tuple) {
            items[0] = x;
            continue;
        }
        if (!tuple) {
            if (!(tuple = mk(p, N_TUPLE, line)) ||
                !vpush(p, (void ***)&tuple->args, &tuple->nargs, &cap, items[0]))
                return NULL;
        }
        if (!vpush(p, (void ***)&tuple->args, &tuple->nargs, &cap, x)) return NULL;
    }
    if (!expect_op(p, O_RBRACKET, "]")) return NULL;
    if (!items[0]) return fail(p, "expected a subscript");
    if (tuple) {
        for (size_t i = 0; i < tuple->nargs; i++)
            if (tuple->args[i]->kind == N_SLICE && !tuple->args[i]->a)
                return fail(p, "slices inside tuples are not supported");
        if (!seal(p, tuple)) return NULL;
        tpl_node *n = mk(p, N_GETITEM, line);
        if (!n) return NULL;
        n->a = obj;
        n->b = tuple;
        return seal(p, n);
    }
    if (items[0]->kind == N_SLICE && !items[0]->a) {
        items[0]->a = obj;
        return seal(p, items[0]);
    }
    tpl_node *n = mk(p, N_GETITEM, line);
    if (!n) return NULL;
    n->a = obj;
    n->b = items[0];
    return seal(p, n);
}

static tpl_node *parse_postfix(parser *p, tpl_node *n) {
    while (n) {
        if (is_op(p, O_DOT) || is_op(p, O_LBRACKET))
            n = parse_subscript(p, n);
        else if (is_op(p, O_LPAREN))
            n = parse_call(p, n);
        else
            break;
    }
    return n;
}

static tpl_node *parse_filter_expr(parser *p, tpl_node *n) {
    while (n) {
        if (accept_op(p, O_PIPE))
            n = parse_filter(p, n);
        else if (is_name(p, "is"))
            n = parse_test(p, n);
        else if (is_op(p, O_LPAREN))
            n = parse_call(p, n);
        else
            break;
    }
    return n;
}

static tpl_node *parse_unary(parser *p, bool with_filter) {
    if (!enter(p)) return NULL;
    int line = cur(p)->line;
    tpl_node *n;
    if (is_op(p, O_SUB) || is_op(p, O_ADD)) {
        int kind = is_op(p, O_SUB) ? N_NEG : N_POS;
        advance(p);
        tpl_node *x = parse_unary(p, false);
        n = x ? mk(p, kind, line) : NULL;
        if (n) n->a = x;
        n = seal(p, n);
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static tpl_node *binop(parser *p, int kind, int op, tpl_node *l, tpl_node *r, int line) {
    if (!l || !r) return NULL;
    tpl_node *n = mk(p, kind, line);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = l;
    n->b = r;
    return seal(p, n);
}

static tpl_node *parse_pow(parser *p) {
    tpl_node *l = parse_unary(p, true);
    while (l && is_op(p, O_POW)) {
        int line = cur(p)->line;
        advance(p);
        l = binop(p, N_BINOP, OP_POW, l, parse_unary(p, true), line);
    }
    return l;
}

static tpl_node *parse_math2(parser *p) {
    tpl_node *l = parse_pow(p);
    while (l) {
        int op = is_op(p, O_MUL)        ? OP_MUL
                 : is_op(p, O_DIV)      ? OP_DIV
                 : is_op(p, O_FLOORDIV) ? OP_FLOORDIV
                 : is_op(p, O_MOD)      ? OP_MOD
                                        : 0;
        if (!op) break;
        int line = cur(p)->line;
        advance(p);
        l = binop(p, N_BINOP, op, l, parse_pow(p), line);
    }
    return l;
}

static tpl_node *parse_concat(parser *p) {
    int line = cur(p)->line;
    tpl_node *first = parse_math2(p);
    if (!first || !is_op(p, O_TILDE)) return first;
    tpl_node *n = mk(p, N_CONCAT, line);
    size_t cap = 0;
    if (!n || !vpush(p, (void ***)&n->args, &n->nargs, &cap, first)) return NULL;
    while (accept_op(p, O_TILDE)) {
        tpl_node *x = parse_math2(p);
        if (!x || !vpush(p, (void ***)&n->args, &n->nargs, &cap, x)) return NULL;
    }
    return seal(p, n);
}

static tpl_node *parse_math1(parser *p) {
    tpl_node *l = parse_concat(p);
    while (l && (is_op(p, O_ADD) || is_op(p, O_SUB))) {
        int op = is_op(p, O_ADD) ? OP_ADD : OP_SUB, line = cur(p)->line;
        advance(p);
        l = binop(p, N_BINOP, op, l, parse_concat(p), line);
    }
    return l;
}

static tpl_node *parse_compare(parser *p) {
    int line = cur(p)->line;
    tpl_node *first = parse_math1(p);
    if (!first) return NULL;
    tpl_node *n = NULL;
    size_t cap = 0, capo = 0, nops = 0;
    for (;;) {
        int op = is_op(p, O_EQ)   ? OP_EQ
                 : is_op(p, O_NE) ? OP_NE
                 : is_op(p, O_LT) ? OP_LT
                 : is_op(p, O_LE) ? OP_LE
                 : is_op(p, O_GT) ? OP_GT
                 : is_op(p, O_GE) ? OP_GE
                                  : 0;
        if (op)
            advance(p);
        else if (accept_name(p, "in"))
            op = OP_IN;
        else if (is_name(p, "not") && peek(p, 1)->type == T_NAME && !strcmp(peek(p, 1)->s, "in")) {
            advance(p);
            advance(p);
            op = OP_NOTIN;
        } else
            break;
        tpl_node *x = parse_math1(p);
        if (!x) return NULL;
        if (!n) {
            if (!(n = mk(p, N_COMPARE, line))) return NULL;
            n->a = first;
        }
        if (!vpush(p, (void ***)&n->args, &n->nargs, &cap, x)) return NULL;
        /* the operators ride in a byte array next to the operands */
        if (nops == capo) {
            size_t nc = capo ? capo * 2 : 4;
            uint8_t *no = tpl_arena_alloc(p->t, nc);
            if (!no) return oom(p);
            if (nops) memcpy(no, n->cmpops, nops);
            n->cmpops = no;
            capo = nc;
        }
        n->cmpops[nops++] = (uint8_t)op;
    }
    return n ? seal(p, n) : first;
}

static tpl_node *parse_not(parser *p) {
    if (is_name(p, "not")) {
        int line = cur(p)->line;
        advance(p);
        if (!enter(p)) return NULL;
        tpl_node *x = parse_not(p);
        p->depth--;
        tpl_node *n = x ? mk(p, N_NOT, line) : NULL;
        if (n) n->a = x;
        return seal(p, n);
    }
    return parse_compare(p);
}

static tpl_node *parse_and(parser *p) {
    tpl_node *l = parse_not(p);
    while (l && is_name(p, "and")) {
        int line = cur(p)->line;
        advance(p);
        l = binop(p, N_AND, 0, l, parse_not(p), line);
    }
    return l;
}

static tpl_node *parse_or(parser *p) {
    tpl_node *l = parse_and(p);
    while (l && is_name(p, "or")) {
        int line = cur(p)->line;
        advance(p);
        l = binop(p, N_OR, 0, l, parse_and(p), line);
    }
    return l;
}

static tpl_node *parse_expression(parser *p, bool condexpr) {
    if (!enter(p)) return NULL;
    tpl_node *n = parse_or(p);
    while (condexpr && n && is_name(p, "if")) {
        int line = cur(p)->line;
        advance(p);
        tpl_node *test = parse_or(p), *other = NULL;
        if (!test) {
            n = NULL;
            break;
        }
        if (accept_name(p, "else") && !(other = parse_expression(p, true))) {
            n = NULL;
            break;
        }
        tpl_node *c = mk(p, N_COND, line);
        if (c) {
            c->a = test;
            c->b = n;
            c->c = other;
        }
        n = seal(p, c);
    }
    p->depth--;
    return n;
}

/* ---- statements ---- */

static bool parse_body(parser *p, const char *const *ends, const char **which, tpl_node ***body,
                       size_t *nbody);

static bool is_const_name(const char *s) {
    return !strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "none") || !strcmp(s, "True") ||
           !strcmp(s, "False") || !strcmp(s, "None");
}

/* Assignment targets: a name, or names separated by commas (optionally in parentheses). */
static bool parse_targets(parser *p, tpl_node *n, const char *end_name) {
    size_t cap = 0;
    bool paren = accept_op(p, O_LPAREN);
    for (;;) {
        if (cur(p)->type != T_NAME || is_const_name(cur(p)->s)) {
            fail(p, "can't assign to %s", describe(cur(p)));
            return false;
        }
        if (!vpush(p, (void ***)&n->targets, &n->ntargets, &cap, (void *)cur(p)->s)) return false;
        advance(p);
        if (!accept_op(p, O_COMMA)) break;
        n->target_tuple = true;
        if (paren && is_op(p, O_RPAREN)) break;
        if (!paren && ((end_name && is_name(p, end_name)) || is_op(p, O_ASSIGN) ||
                       cur(p)->type == T_BLOCK_END))
            break;
    }
    return !paren || expect_op(p, O_RPAREN, ")");
}

/* Macro and caller parameters: (a, b=default, ...). */
static bool parse_params(parser *p, tpl_node *n) {
    size_t cap = 0, capd = 0, nd = 0;
    if (!expect_op(p, O_LPAREN, "(")) return false;
    while (!is_op(p, O_RPAREN)) {
        if (n->ntargets && !expect_op(p, O_COMMA, ",")) return false;
        if (is_op(p, O_RPAREN)) break;
        if (cur(p)->type != T_NAME || is_const_name(cur(p)->s)) {
            fail(p, "expected a parameter name");
            return false;
        }
        const char *name = cur(p)->s;
        advance(p);
        tpl_node *def = NULL;
        if (accept_op(p, O_ASSIGN) && !(def = parse_expression(p, true))) return false;
        if (!def && nd && n->kwvals[nd - 1]) {
            fail(p, "non-default argument follows default argument");
            return false;
        }
        if (!vpush(p, (void ***)&n->targets, &n->ntargets, &cap, (void *)name) ||
            !vpush(p, (void ***)&n->kwvals, &nd, &capd, def))
            return false;
    }
    n->nkw = 0; /* defaults are indexed by parameter, not keyword arguments */
    advance(p);
    return true;
}

static bool end_block(parser *p) {
    return expect_type(p, T_BLOCK_END);
}

static tpl_node *parse_for(parser *p, int line) {
    tpl_node *n = mk(p, N_FOR, line);
    if (!n || !parse_targets(p, n, "in")) return NULL;
    if (!accept_name(p, "in")) return fail(p, "expected 'in' in for loop");
    if (!(n->a = parse_tuple(p, false, false, "recursive"))) return NULL;
    if (accept_name(p, "if") && !(n->b = parse_expression(p, true))) return NULL;
    if (is_name(p, "recursive")) return fail(p, "recursive loops are not supported");
    if (!end_block(p)) return NULL;
    static const char *const ends[] = {"endfor", "else", NULL};
    const char *which;
    p->loops++;
    bool ok = parse_body(p, ends, &which, &n->body, &n->nbody);
    p->loops--;
    if (!ok || !end_block(p)) return NULL;
    if (!strcmp(which, "else")) {
        static const char *const ends2[] = {"endfor", NULL};
        if (!parse_body(p, ends2, &which, &n->else_body, &n->nelse) || !end_block(p)) return NULL;
    }
    return n;
}

static tpl_node *parse_if(parser *p, int line) {
    tpl_node *n = mk(p, N_IF, line);
    if (!n || !(n->a = parse_tuple(p, false, false, NULL)) || !end_block(p)) return NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    const char *which;
    if (!parse_body(p, ends, &which, &n->body, &n->nbody)) return NULL;
    if (!strcmp(which, "elif")) {
        tpl_node *e = parse_if(p, cur(p)->line); /* consumes through endif */
        if (!e || !(n->else_body = tpl_arena_alloc(p->t, sizeof *n->else_body)))
            return e ? oom(p) : NULL;
        n->else_body[0] = e;
        n->nelse = 1;
        return n;
    }
    if (!end_block(p)) return NULL;
    if (!strcmp(which, "else")) {
        static const char *const ends2[] = {"endif", NULL};
        if (!parse_body(p, ends2, &which, &n->else_body, &n->nelse) || !end_block(p)) return NULL;
    }
    return n;
}

/* A filter chain for {% filter %} and {% set x | f %}: the innermost operand is NULL,
 * standing for the block's output. */
static tpl_node *parse_filter_chain(parser *p) {
    tpl_node *n = NULL;
    do {
        if (!(n = parse_filter(p, n))) return NULL;
    } while (accept_op(p, O_PIPE));
    return n;
}

static tpl_node *parse_set(parser *p, int line) {
    if (cur(p)->type == T_NAME && peek(p, 1)->type == T_OP && peek(p, 1)->op == O_DOT &&
        peek(p, 2)->type == T_NAME) {
        tpl_node *n = mk(p, N_SET_ATTR, line);
        if (!n) return NULL;
        n->name = cur(p)->s;
        advance(p);
        advance(p);
        n->targets = tpl_arena_alloc(p->t, sizeof *n->targets);
        if (!n->targets) return oom(p);
        n->targets[0] = cur(p)->s;
        n->ntargets = 1;
        advance(p);
        if (!expect_op(p, O_ASSIGN, "=")) return NULL;
        if (!(n->a = parse_tuple(p, true, false, NULL)) || !end_block(p)) return NULL;
        return n;
    }
    tpl_node *n = mk(p, N_SET, line);
    if (!n || !parse_targets(p, n, NULL)) return NULL;
    if (accept_op(p, O_ASSIGN)) {
        if (!(n->a = parse_tuple(p, true, false, NULL)) || !end_block(p)) return NULL;
        return n;
    }
    if (n->target_tuple) return fail(p, "a block set needs a single name");
    n->kind = N_SET_BLOCK;
    if (accept_op(p, O_PIPE) && !(n->a = parse_filter_chain(p))) return NULL;
    if (!end_block(p)) return NULL;
    static const char *const ends[] = {"endset", NULL};
    const char *which;
    if (!parse_body(p, ends, &which, &n->body, &n->nbody) || !end_block(p)) return NULL;
    return n;
}

static tpl_node *parse_macro(parser *p, int line) {
    tpl_node *n = mk(p, N_MACRO, line);
    if (!n) return NULL;
    if (cur(p)->type != T_NAME) return fail(p, "expected a macro name");
    n->name = cur(p)->s;
    advance(p);
    if (!parse_params(p, n) || !end_block(p)) return NULL;
    static const char *const ends[] = {"endmacro", NULL};
    const char *which;
    int loops = p->loops;
    p->loops = 0;
    bool ok = parse_body(p, ends, &which, &n->body, &n->nbody);
    p->loops = loops;
    if (!ok) return NULL;
    if (cur(p)->type == T_NAME) advance(p); /* {% endmacro name %} */
    return end_block(p) ? n : NULL;
}

static tpl_node *parse_callblock(parser *p, int line) {
    tpl_node *n = mk(p, N_CALLBLOCK, line);
    if (!n) return NULL;
    if (is_op(p, O_LPAREN) && !parse_params(p, n)) return NULL;
    if (!(n->a = parse_expression(p, true))) return NULL;
    if (n->a->kind != N_CALL) return fail(p, "expected a call in {%% call %%}");
    if (!end_block(p)) return NULL;
    static const char *const ends[] = {"endcall", NULL};
    const char *which;
    int loops = p->loops;
    p->loops = 0;
    bool ok = parse_body(p, ends, &which, &n->body, &n->nbody);
    p->loops = loops;
    return ok && end_block(p) ? n : NULL;
}

static tpl_node *parse_with(parser *p, int line) {
    tpl_node *n = mk(p, N_WITH, line);
    size_t capt = 0, capv = 0;
    if (!n) return NULL;
    while (cur(p)->type != T_BLOCK_END) {
        if (n->ntargets && !expect_op(p, O_COMMA, ",")) return NULL;
        if (cur(p)->type != T_NAME || is_const_name(cur(p)->s)) return fail(p, "expected a name");
        if (!vpush(p, (void ***)&n->targets, &n->ntargets, &capt, (void *)cur(p)->s)) return NULL;
        advance(p);
        if (!expect_op(p, O_ASSIGN, "=")) return NULL;
        tpl_node *v = parse_expression(p, true);
        if (!v || !vpush(p, (void ***)&n->args, &n->nargs, &capv, v)) return NULL;
    }
    advance(p);
    static const char *const ends[] = {"endwith", NULL};
    const char *which;
    return parse_body(p, ends, &which, &n->body, &n->nbody) && end_block(p) ? n : NULL;
}

static tpl_node *parse_statement(parser *p) {
    advance(p); /* {% */
    tpl_token *k = cur(p);
    if (k->type != T_NAME) return fail(p, "tag name expected");
    int line = k->line;
    const char *tag = k->s;
    advance(p);
    if (!enter(p)) return NULL;
    tpl_node *n = NULL;
    if (!strcmp(tag, "for"))
        n = parse_for(p, line);
    else if (!strcmp(tag, "if"))
        n = parse_if(p, line);
    else if (!strcmp(tag, "set"))
        n = parse_set(p, line);
    else if (!strcmp(tag, "macro"))
        n = parse_macro(p, line);
    else if (!strcmp(tag, "call"))
        n = parse_callblock(p, line);
    else if (!strcmp(tag, "with"))
        n = parse_with(p, line);
    else if (!strcmp(tag, "filter")) {
        n = mk(p, N_FILTERBLOCK, line);
        static const char *const ends[] = {"endfilter", NULL};
        const char *which;
        if (n) {
            if (!(n->a = parse_filter_chain(p)) || !end_block(p) ||
                !parse_body(p, ends, &which, &n->body, &n->nbody) || !end_block(p))
                n = NULL;
        }
    } else if (!strcmp(tag, "break") || !strcmp(tag, "continue")) {
        if (!p->loops)
            n = fail(p, "'%s' outside of a loop", tag);
        else if ((n = mk(p, tag[0] == 'b' ? N_BREAK : N_CONTINUE, line)) && !end_block(p))
            n = NULL;
    } else if (!strcmp(tag, "generation")) {
        /* Hugging Face's assistant-mask tag: renders its body unchanged */
        static const char *const ends[] = {"endgeneration", NULL};
        const char *which;
        n = mk(p, N_BLOCK, line);
        if (n &&
            (!end_block(p) || !parse_body(p, ends, &which, &n->body, &n->nbody) || !end_block(p)))
            n = NULL;
    } else {
        n = fail(p, "encountered unknown tag '%s'", tag);
    }
    p->depth--;
    return n;
}

/* Statements and text up to one of the end tags (whose name it consumes) or, when ends
 * is NULL, the end of the template. */
static bool parse_body(parser *p, const char *const *ends, const char **which, tpl_node ***body,
                       size_t *nbody) {
    size_t cap = 0;
    for (;;) {
        tpl_token *k = cur(p);
        tpl_node *n = NULL;
        switch (k->type) {
        case T_EOF:
            if (ends) {
                fail(p, "unexpected end of template, expected '%s'", ends[0]);
                return false;
            }
            return true;
        case T_DATA:
            n = mk(p, N_TEXT, k->line);
            if (!n || !(n->value = const_string(p, k->s, k->len))) return false;
            advance(p);
            break;
        case T_VAR_BEGIN:
            advance(p);
            n = mk(p, N_PRINT, k->line);
            if (!n || !(n->a = parse_tuple(p, true, false, NULL))) return false;
            if (!expect_type(p, T_VAR_END)) return false;
            break;
        case T_BLOCK_BEGIN: {
            tpl_token *name = peek(p, 1);
            if (ends && name->type == T_NAME) {
                for (size_t i = 0; ends[i]; i++) {
                    if (!strcmp(name->s, ends[i])) {
                        *which = ends[i];
                        advance(p);
                        advance(p);
                        return true;
                    }
                }
            }
            if (!(n = parse_statement(p))) return false;
            break;
        }
        default:
            fail(p, "unexpected %s", describe(k));
            return false;
        }
        if (!vpush(p, (void ***)body, nbody, &cap, n)) return false;
    }
}

tpl_template *tpl_parse(const char *src, size_t len, chatd_error *err) {
    if (!src && len) {
        chatd_errorf(err, "chat template: no source");
        return NULL;
    }
    tpl_template *t = calloc(1, sizeof *t);
    if (!t) {
        chatd_errorf(err, "chat template: out of memory");
        return NULL;
    }
    tpl_token *toks = NULL;
    size_t ntoks = 0;
    if (tpl_lex(t, src ? src : "", len, &toks, &ntoks, err) != 0) {
        tpl_free(t);
        return NULL;
    }
    parser p = {.t = t, .tk = toks, .ntk = ntoks, .err = err};
    bool ok = parse_body(&p, NULL, NULL, &t->body, &t->nbody);
    free(toks);
    if (!ok) {
        tpl_free(t);
        return NULL;
    }
    return t;
}

const char *tpl_chatml_source(void) {
    return "{%- for message in messages -%}\n"
           "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] if "
           "message['content'] is string else '') + '<|im_end|>\\n' -}}\n"
           "{%- endfor -%}\n"
           "{%- if add_generation_prompt -%}\n"
           "{{- '<|im_start|>assistant\\n' -}}\n"
           "{%- endif -%}\n";
}
