/* tpl_internal.h - what the chat-template sources share: the value layout, strings with
 * per-byte origins, the syntax tree, the evaluator's state and the built-in filters,
 * tests and methods. Not a public header. */
#ifndef CHATD_TPL_INTERNAL_H
#define CHATD_TPL_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/template.h"

/* Bounds that keep hostile templates and data from exhausting the C stack: nesting of
 * values walked recursively (printing, tojson, comparisons) and of the syntax tree. */
#define TPL_VALUE_DEPTH  256
#define TPL_PARSE_DEPTH  200
#define TPL_MAX_RANGE    100000 /* as Jinja2's sandbox */
#define TPL_MAX_LIST     (1u << 22)
#define TPL_ORIGIN_MIXED 2 /* only in tv_origin_of: both origins occur */

/* ---- strings ---- */

/* Origins of a string's bytes as runs: run i covers [runs[i-1].end, runs[i].end). */
typedef struct tpl_run {
    size_t end;
    uint8_t origin;
} tpl_run;

/* Undefined values remember why they are undefined, for Jinja2's error messages. */
enum {
    TPL_UNDEF_PLAIN = 0,
    TPL_UNDEF_NAME,     /* 'x' is undefined */
    TPL_UNDEF_ATTR,     /* 'dict object' has no attribute 'x' */
    TPL_UNDEF_NONEATTR, /* 'None' has no attribute 'x' (the None fallback's trigger) */
};

struct tpl_value {
    uint8_t kind;
    bool immortal; /* static or owned by a template: never counted, never freed here */
    bool frozen;   /* built by the caller: templates may not modify it */
    bool tuple;    /* a list that prints as a tuple */
    uint32_t refs;
    tpl_value *next_free; /* the iterative free's work list */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *s; /* NUL-terminated */
            size_t len;
            tpl_run *runs; /* nruns == 0 iff len == 0 */
            size_t nruns;
            tpl_run run0; /* storage when there is one run */
        } str;
        struct {
            tpl_value **items;
            size_t n, cap;
        } list;
        struct { /* dicts and namespaces */
            tpl_value **keys, **vals;
            size_t n, cap;
        } dict;
        struct {
            const struct tpl_node *node;
            uint64_t scope_serial; /* the scope it was defined in (its closure) */
            size_t call_slot;      /* caller(): the call block frame it belongs to */
            uint64_t call_gen;
            bool is_caller;
        } macro;
        struct {
            int id;          /* TPL_FN_* or TPL_M_* */
            tpl_value *self; /* bound methods: the object */
        } fn;
        struct {
            tpl_value *items; /* the list being iterated */
            size_t idx;
        } loop;
        struct {
            char *name;      /* owned, may be NULL */
            const char *obj; /* e.g. "dict object" */
            uint8_t hint;
        } undef;
    } u;
};

/* A growable string with origins; also the render's output sink. */
typedef struct tpl_sb {
    char *s;
    size_t len, cap;
    tpl_run *runs;
    size_t nruns, rcap;
    size_t limit; /* longest allowed length */
    int fail;     /* 0, TPL_SB_OOM or TPL_SB_LIMIT once an append failed */
} tpl_sb;

enum { TPL_SB_OOM = 1, TPL_SB_LIMIT = 2 };

void sb_init(tpl_sb *b, size_t limit);
void sb_free(tpl_sb *b);
int sb_put(tpl_sb *b, const char *s, size_t n, int origin);
int sb_putc(tpl_sb *b, char c, int origin);
int sb_puts(tpl_sb *b, const char *s, int origin);
/* Appends bytes [from, to) of string value v with their origins. */
int sb_put_slice(tpl_sb *b, const tpl_value *v, size_t from, size_t to);
int sb_put_str(tpl_sb *b, const tpl_value *v);
/* The built string as a new value (the builder is emptied); NULL when memory runs out. */
tpl_value *sb_finish(tpl_sb *b);

/* ---- values (tpl_value.c) ---- */

tpl_value *tv_new(int kind);
tpl_value *tv_none(void);
tpl_value *tv_bool(bool b);
tpl_value *tv_undef(void);
/* An undefined value with a hint (name is copied; may be NULL). */
tpl_value *tv_undef_hint(int hint, const char *obj, const char *name, size_t name_len);
tpl_value *tv_int(int64_t i);
tpl_value *tv_float(double f);
tpl_value *tv_str(const char *s, size_t n, int origin);
tpl_value *tv_list(size_t cap);
tpl_value *tv_dict(int kind);
static inline tpl_value *tv_ref(tpl_value *v) {
    if (v && !v->immortal) v->refs++;
    return v;
}
#define tv_unref tpl_value_free
/* Appends (the item's reference is taken over, even on failure). */
int tv_list_push(tpl_value *l, tpl_value *item);
/* dict lookup with Python key equality; borrowed; NULL when absent. */
tpl_value *tv_dict_find(const tpl_value *d, const tpl_value *key);
tpl_value *tv_dict_findc(const tpl_value *d, const char *key, size_t n);
/* dict[key] = val (both references taken over, even on failure). */
int tv_dict_put(tpl_value *d, tpl_value *key, tpl_value *val);

/* Python truthiness. */
bool tv_truthy(const tpl_value *v);
/* Python ==: 1 equal, 0 not, -1 nested too deeply. */
int tv_equal(const tpl_value *a, const tpl_value *b, int depth);
/* Python ordering of numbers, strings and sequences: 0 and *cmp set, or -1 when the
 * kinds cannot be ordered (or nesting is too deep). */
int tv_compare(const tpl_value *a, const tpl_value *b, int *cmp, int depth);
/* Python type name as in TypeError messages: "str", "int", "NoneType", ... */
const char *tv_type_name(const tpl_value *v);
/* TPL_ORIGIN_TEMPLATE, TPL_ORIGIN_REQUEST or TPL_ORIGIN_MIXED over every string inside v
 * (template when there is none); -1 when nested too deeply. */
int tv_origin_of(const tpl_value *v, int depth);
/* True when v (transitively) contains target: the cycle check of list.append. -1 on
 * nesting too deep. */
int tv_contains(const tpl_value *v, const tpl_value *target, int depth);
/* A shallow copy of a list (a fresh, mutable list). */
tpl_value *tv_list_copy(const tpl_value *l);

/* ---- UTF-8 and characters (tpl_value.c) ---- */

/* Length of the character at s[i]: a valid UTF-8 sequence, or 1 for an invalid byte. */
size_t u8_clen(const unsigned char *s, size_t n, size_t i);
/* The code point at s[i] (an invalid byte gives 0xDC00 + byte), its length in *clen. */
uint32_t u8_get(const unsigned char *s, size_t n, size_t i, size_t *clen);
/* Number of characters. */
size_t u8_count(const char *s, size_t n);
/* Byte offset of character index ci (n when past the end). */
size_t u8_offset(const char *s, size_t n, size_t ci);
size_t u8_put(uint32_t cp, char *out);
/* Python's str.isspace for one code point. */
bool cp_isspace(uint32_t c);
bool cp_isalnum(uint32_t c);
/* Case mapping for the scripts whose cases keep the UTF-8 length (ASCII, Latin-1,
 * Latin Extended-A, Greek, Cyrillic, full-width Latin); others map to themselves. */
uint32_t cp_upper(uint32_t c);
uint32_t cp_lower(uint32_t c);
bool cp_cased(uint32_t c);
/* Length of Python whitespace at s[i] (0 when none). */
size_t u8_space_at(const char *s, size_t n, size_t i);
/* Length of Python whitespace ending at s[i) (the character before i; 0 when none). */
size_t u8_space_before(const char *s, size_t i);

/* ---- number formatting (tpl_json.c) ---- */

/* Python repr of a float into buf (at least 32 bytes). */
void tv_format_float(double d, char *buf);

/* ---- tokens (tpl_lex.c) ---- */

enum {
    T_EOF = 0,
    T_DATA,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
};

/* Operator tokens. */
enum {
    O_ADD = 1,
    O_SUB,
    O_MUL,
    O_DIV,
    O_FLOORDIV,
    O_MOD,
    O_POW,
    O_TILDE,
    O_LPAREN,
    O_RPAREN,
    O_LBRACKET,
    O_RBRACKET,
    O_LBRACE,
    O_RBRACE,
    O_EQ,
    O_NE,
    O_LT,
    O_LE,
    O_GT,
    O_GE,
    O_ASSIGN,
    O_DOT,
    O_COLON,
    O_PIPE,
    O_COMMA,
    O_SEMI,
};

typedef struct tpl_token {
    uint8_t type;
    uint8_t op;
    int line;
    const char *s; /* T_DATA, T_NAME, T_STRING: NUL-terminated, in the template's arena */
    size_t len;
    int64_t i;
    double f;
} tpl_token;

/* Splits source into tokens as Jinja2's lexer does with trim_blocks and lstrip_blocks
 * (newlines normalised, one trailing newline dropped). *toks is malloc'ed; T_EOF ends it. */
int tpl_lex(tpl_template *t, const char *src, size_t len, tpl_token **toks, size_t *ntoks,
            chatd_error *err);

/* ---- the syntax tree (tpl_parse.c) ---- */

typedef enum tpl_nkind {
    /* expressions */
    N_CONST,
    N_NAME,
    N_GETATTR,
    N_GETITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_NEG,
    N_POS,
    N_NOT,
    N_BINOP,
    N_AND,
    N_OR,
    N_COMPARE,
    N_CONCAT,
    N_COND,
    N_LIST,
    N_TUPLE,
    N_DICT,
    /* statements */
    N_TEXT,
    N_PRINT,
    N_IF,
    N_FOR,
    N_SET,
    N_SET_ATTR,
    N_SET_BLOCK,
    N_MACRO,
    N_CALLBLOCK,
    N_FILTERBLOCK,
    N_WITH,
    N_BREAK,
    N_CONTINUE,
    N_BLOCK,
} tpl_nkind;

/* Binary operators and comparisons. */
enum {
    OP_ADD = 1,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOTIN,
};

typedef struct tpl_node {
    uint8_t kind;
    uint8_t op; /* operator, filter or test id */
    bool neg;   /* "is not" */
    uint16_t h; /* height of the expression tree, bounded by TPL_PARSE_DEPTH */
    int line;
    const char *name; /* identifier, attribute, filter, test or macro name */
    tpl_value *value; /* N_CONST, N_TEXT (immortal) */
    struct tpl_node *a, *b, *c, *d;
    struct tpl_node **args; /* arguments, elements, dict keys, compare operands, with values */
    size_t nargs;
    uint8_t *cmpops;          /* N_COMPARE: one per operand */
    const char **kwnames;     /* keyword argument names */
    struct tpl_node **kwvals; /* keyword values, dict values, parameter defaults */
    size_t nkw;
    const char **targets; /* assignment / loop targets, parameters */
    size_t ntargets;
    bool target_tuple; /* "for a, b in" / "set a, b =": unpack */
    struct tpl_node **body;
    size_t nbody;
    struct tpl_node **else_body;
    size_t nelse;
} tpl_node;

typedef struct tpl_arena_chunk {
    struct tpl_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} tpl_arena_chunk;

struct tpl_template {
    tpl_arena_chunk *arena;
    tpl_node **body;
    size_t nbody;
};

void *tpl_arena_alloc(tpl_template *t, size_t n);

/* ---- evaluation (tpl_eval.c) ---- */

typedef struct tpl_scope {
    struct tpl_scope *parent;
    uint64_t serial; /* identifies the scope while it is alive (see tpl_ev.live) */
    const char **names;
    tpl_value **vals;
    size_t n, cap;
} tpl_scope;

typedef struct tpl_callframe {
    const tpl_node *node; /* the call block */
    tpl_scope *scope;     /* where it runs: the scope its caller() body sees */
    uint64_t gen;
} tpl_callframe;

typedef struct tpl_ev {
    const tpl_template *t;
    const tpl_value *ctx;
    tpl_scope *root;
    uint64_t steps, max_steps;
    unsigned depth, max_depth;
    size_t max_str;
    int64_t now;
    chatd_error *err;
    bool failed;
    bool none_err; /* the error was an operation on None (see tpl_render_chat) */
    int line;
    tpl_callframe *calls;
    size_t ncalls, capcalls;
    uint64_t gen;
    tpl_scope **live; /* the scopes alive now, innermost last */
    size_t nlive, caplive;
    uint64_t serial;
} tpl_ev;

/* Records an error (the first one wins) and returns -1. */
int ev_error(tpl_ev *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records the template's own message (raise_exception) verbatim; returns -1. */
int ev_raise(tpl_ev *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The error for a failed string builder. */
int ev_sb_error(tpl_ev *e, const tpl_sb *b);
/* The error for using an undefined value (Jinja2's UndefinedError). */
int ev_undef_error(tpl_ev *e, const tpl_value *u);
int ev_oom(tpl_ev *e);
/* Charges work; -1 once the step limit is passed. */
int ev_charge(tpl_ev *e, uint64_t steps);
/* Calls a callable value. */
tpl_value *ev_call_value(tpl_ev *e, tpl_value *callee, tpl_value **args, size_t nargs,
                         const char **kwnames, tpl_value **kwvals, size_t nkw);
/* Attribute and item access as Jinja2's environment.getattr / getitem. */
tpl_value *ev_getattr(tpl_ev *e, tpl_value *obj, const char *name, size_t len);
tpl_value *ev_getitem(tpl_ev *e, tpl_value *obj, tpl_value *key);
/* Materialises an iterable (list, tuple, string, dict keys, undefined) as a list. */
tpl_value *ev_iterate(tpl_ev *e, tpl_value *v);

/* str(v) appended to b (strings keep their origins). */
int ev_write_str(tpl_ev *e, tpl_sb *b, const tpl_value *v);
/* str(v) as a new string value. */
tpl_value *ev_to_str(tpl_ev *e, const tpl_value *v);
/* repr(v) appended to b with the given origin. */
int ev_write_repr(tpl_ev *e, tpl_sb *b, const tpl_value *v, int origin, int depth);

/* json.dumps options. */
typedef struct tpl_json_opts {
    bool ensure_ascii;
    bool sort_keys;
    bool has_indent;
    const char *indent; /* indent string (may be empty) */
    size_t indent_len;
    const char *item_sep, *key_sep;
    size_t item_sep_len, key_sep_len;
} tpl_json_opts;

/* json.dumps(v) appended to b, all of one origin. */
int ev_write_json(tpl_ev *e, tpl_sb *b, const tpl_value *v, const tpl_json_opts *o, int origin,
                  size_t level, int depth);

/* ---- built-ins (tpl_builtins.c) ---- */

/* A stable merge sort of n pointers; cmp sets *out (<0, 0, >0) and returns -1 when the two
 * cannot be ordered, which makes the sort return -1. */
int tpl_msort(void **a, size_t n, int (*cmp)(void *ctx, const void *x, const void *y, int *out),
              void *ctx);

/* Filters, tests, global functions and methods by name: an id > 0, or 0 when unknown. */
int tpl_filter_id(const char *name);
int tpl_test_id(const char *name);
int tpl_global_id(const char *name);
/* The method of obj's type called name, or 0. */
int tpl_method_id(const tpl_value *obj, const char *name, size_t len);

/* Applies filter id to v. */
tpl_value *tpl_apply_filter(tpl_ev *e, int id, tpl_value *v, tpl_value **args, size_t nargs,
                            const char **kwnames, tpl_value **kwvals, size_t nkw);
/* Applies test id to v: 1 true, 0 false, -1 error. */
int tpl_apply_test(tpl_ev *e, int id, tpl_value *v, tpl_value **args, size_t nargs);
/* Calls a global function or a bound method (fn->u.fn.id). */
tpl_value *tpl_call_builtin(tpl_ev *e, tpl_value *fn, tpl_value **args, size_t nargs,
                            const char **kwnames, tpl_value **kwvals, size_t nkw);
/* Arithmetic and comparison operators. */
tpl_value *tpl_binop(tpl_ev *e, int op, tpl_value *a, tpl_value *b);
/* Python "a in b": 1, 0 or -1 on error. */
int tpl_contains(tpl_ev *e, tpl_value *a, tpl_value *b);

#endif
