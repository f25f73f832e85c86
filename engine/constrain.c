/* constrain.c - constrained decoding: grammars, their compilation against a vocabulary,
 * and the per-generation matcher that says which tokens may come next.
 *
 * A matcher state is a stack of frames, one per grammar node being matched (an object,
 * the string inside it, ...). Feeding a byte to a state either consumes it (the top frame
 * advances, perhaps completing and popping), hands it to the parent (a number ends when a
 * non-digit comes), pushes a child, or fails. Where the grammar leaves a choice open
 * (anyOf, "one more repetition or stop") the state forks, so a matcher holds a small set
 * of states. The token mask is a walk over the vocabulary sorted by bytes: tokens that
 * share a prefix share the states computed for it, and a failed prefix skips every token
 * that starts with it. Inside a JSON string or a free-text block, the tokens that cannot
 * change the structure are admitted as a precomputed class without walking. */
#include "chatd/constrain.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONS_MAX_DEPTH  40                  /* frames in one state */
#define CONS_MAX_STATES 32                  /* states a matcher follows at once */
#define CONS_MAX_STEPS  4096                /* loop guard of one byte's feed */
#define CONS_INT_LIMIT  10000000000000000LL /* 10^16: integers have at most 16 digits */

enum cons_kind {
    K_ANY,
    K_STRING,
    K_NUMBER,
    K_INTEGER,
    K_LITERALS,
    K_ARRAY,
    K_OBJECT,
    K_ANYOF,
    K_TEXT,
    K_UNTIL,
    K_SEQ,
    K_REPEAT,
    K_WS,
};

typedef struct cons_str {
    char *s;
    size_t len;
} cons_str;

typedef struct cons_prop {
    char *name; /* JSON-escaped, without quotes */
    size_t len;
    int32_t value;
    bool required;
    int32_t next; /* grammar: next property of the same object (-1 ends) */
} cons_prop;

typedef struct cons_gnode {
    uint8_t kind;
    uint8_t fmt;
    bool has_min, has_max;
    int64_t min, max; /* string length, array items, repeat count, integer bounds */
    int32_t child;    /* array items, repeat item, object additionalProperties (-1 none) */
    int32_t sep;      /* repeat separator (-1 none) */
    int32_t first, n; /* kids (seq, anyof), strs (literals, text, until), props (object) */
    int32_t last;     /* grammar: last property of an object */
    uint64_t req;     /* program: required properties of an object (bit = index - first) */
    int64_t minlen;   /* bytes of the shortest match (-1 not yet computed) */
} cons_gnode;

struct cons_grammar {
    cons_gnode *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t *kids;
    int32_t n_kids, cap_kids;
    cons_str *strs;
    int32_t n_strs, cap_strs;
    cons_prop *props;
    int32_t n_props, cap_props;
    int32_t any_node; /* the shared nodes behind cons_any (-1 until first used) */
    int32_t any_obj, any_arr, any_str, any_num, any_lit;
    char error[256];
};

struct cons_vocab {
    int32_t n_vocab;
    const tok_vocab *tok;
    char *bytes;     /* every token's text, back to back */
    uint32_t *off;   /* [n_vocab + 1] */
    uint8_t *is_eog; /* [n_vocab] */
    int32_t *eog;    /* end-of-generation ids */
    size_t n_eog;
    int32_t *sorted; /* tokens with text, not EOG, by bytes */
    int32_t n_sorted;
    uint32_t maxlen;
    size_t words;         /* mask words */
    uint32_t *plain_bits; /* tokens that are plain JSON string characters */
    int32_t *plain;       /* the same as a list */
    int32_t n_plain;
    uint16_t *nchars;     /* characters of a plain token */
    uint16_t *plain_from; /* smallest k such that bytes k.. of the token are plain */
    int32_t *str_walk;    /* tokens that may continue a string but change its state, sorted */
    int32_t n_str_walk;
};

typedef struct cons_until_class {
    uint32_t *free_bits; /* tokens without the terminator's first byte */
    int32_t *walk;       /* the others, sorted */
    int32_t n_walk;
} cons_until_class;

struct cons_program {
    atomic_int refs;
    const cons_vocab *cv;
    cons_gnode *nodes;
    int32_t n_nodes;
    int32_t *kids;
    cons_str *strs;
    cons_prop *props;
    int32_t n_strs, n_props;
    int32_t root;
    int32_t any_obj, any_arr, any_str, any_num, any_lit;
    cons_until_class *until; /* [n_nodes], set for K_UNTIL nodes */
};

/* One frame: field use depends on the node kind (see st_feed). Laid out without padding
 * so that states compare with memcmp. */
typedef struct cons_frame {
    int64_t count; /* string characters, array items, repeat count, digits */
    int64_t value; /* integer magnitude so far; date-time hour digit */
    uint64_t seen; /* object: properties given (bit = index - first) */
    int32_t node;
    int32_t lo, hi; /* literal / key candidates [lo, hi); date: month, day digit */
    int32_t pos;    /* bytes matched of a literal, key, text, terminator, format; seq index */
    int32_t prop;   /* object: the property whose value comes (-1 = additional) */
    uint8_t phase;
    uint8_t ws;   /* whitespace bytes in the current gap */
    uint8_t esc;  /* string: 1 after a backslash, 2..5 = hex digits to go + 1 */
    uint8_t u8;   /* UTF-8 continuation bytes to go */
    uint8_t u8lo; /* range of the next continuation byte */
    uint8_t u8hi;
    uint8_t anyd;  /* nesting of free values */
    uint8_t flags; /* number: negative; object key: may be a free key */
    int32_t spare;
} cons_frame;

typedef struct cons_state {
    int32_t depth;
    int32_t spare;
    cons_frame f[CONS_MAX_DEPTH];
} cons_state;

#define STATE_HEAD    offsetof(cons_state, f)
#define STATE_SIZE(d) (STATE_HEAD + (size_t)(d) * sizeof(cons_frame))

typedef struct cons_out {
    cons_state *v; /* [CONS_MAX_STATES] */
    int n;
} cons_out;

struct cons_matcher {
    cons_program *p;
    cons_state *cur; /* [CONS_MAX_STATES] */
    int n_cur;
    bool ended; /* an end-of-generation token was accepted */
    cons_out out;
    /* the walk: states of every prefix depth, packed */
    unsigned char *arena;
    size_t arena_cap;
    size_t *lvl_off; /* [maxlen + 2] */
    int *lvl_n;
    int64_t *lvl_rem; /* free_string_rem of each level */
    unsigned char *path;
    /* tokens the walk found possible, with the bytes they leave to write (budgeted) */
    int32_t *cand_id;
    int64_t *cand_rem;
    int32_t n_cand;
};

static int utf8_lead(unsigned c, uint8_t *lo, uint8_t *hi);
static bool utf8_valid(const unsigned char *s, size_t n);

/* ------------------------------------------------------------------------------------ */
/* building a grammar */

cons_grammar *cons_grammar_new(chatd_error *err) {
    cons_grammar *g = calloc(1, sizeof *g);
    if (!g) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    g->any_node = g->any_obj = g->any_arr = g->any_str = g->any_num = g->any_lit = -1;
    return g;
}

void cons_grammar_free(cons_grammar *g) {
    if (!g) return;
    for (int32_t i = 0; i < g->n_strs; i++) free(g->strs[i].s);
    for (int32_t i = 0; i < g->n_props; i++) free(g->props[i].name);
    free(g->nodes);
    free(g->kids);
    free(g->strs);
    free(g->props);
    free(g);
}

const char *cons_grammar_error(const cons_grammar *g) {
    return g && g->error[0] ? g->error : NULL;
}

static int32_t gram_fail(cons_grammar *g, const char *msg) {
    if (!g->error[0]) snprintf(g->error, sizeof g->error, "%s", msg);
    return -1;
}

/* Grows an array of elements of size sz to hold one more; false when memory runs out. */
static bool gram_grow(void **v, int32_t n, int32_t *cap, size_t sz) {
    if (n < *cap) return true;
    int32_t nc = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, (size_t)nc * sz);
    if (!nv) return false;
    *v = nv;
    *cap = nc;
    return true;
}

static int32_t gram_node(cons_grammar *g, uint8_t kind) {
    if (g->error[0]) return -1;
    if (!gram_grow((void **)&g->nodes, g->n_nodes, &g->cap_nodes, sizeof *g->nodes))
        return gram_fail(g, "out of memory");
    cons_gnode *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->child = n->sep = n->last = -1;
    n->first = -1;
    n->minlen = -1;
    return g->n_nodes++;
}

static bool gram_valid(const cons_grammar *g, cons_node n) {
    return n >= 0 && n < g->n_nodes;
}

static int32_t gram_str(cons_grammar *g, const char *s, size_t len) {
    if (!gram_grow((void **)&g->strs, g->n_strs, &g->cap_strs, sizeof *g->strs))
        return gram_fail(g, "out of memory");
    char *c = malloc(len + 1);
    if (!c) return gram_fail(g, "out of memory");
    if (len) memcpy(c, s, len);
    c[len] = 0;
    g->strs[g->n_strs].s = c;
    g->strs[g->n_strs].len = len;
    return g->n_strs++;
}

static int32_t gram_kids(cons_grammar *g, const cons_node *kids, size_t n) {
    int32_t first = g->n_kids;
    for (size_t i = 0; i < n; i++) {
        if (!gram_valid(g, kids[i])) return gram_fail(g, "invalid child node");
        if (!gram_grow((void **)&g->kids, g->n_kids, &g->cap_kids, sizeof *g->kids))
            return gram_fail(g, "out of memory");
        g->kids[g->n_kids++] = kids[i];
    }
    return first;
}

cons_node cons_string(cons_grammar *g, int64_t min_len, int64_t max_len, cons_format fmt) {
    if (!g) return -1;
    if (min_len < 0 || (max_len >= 0 && max_len < min_len))
        return gram_fail(g, "string length bounds are inconsistent");
    if (fmt != CONS_FMT_NONE && (min_len > 0 || max_len >= 0))
        return gram_fail(g, "a string format cannot be combined with length bounds");
    int32_t n = gram_node(g, K_STRING);
    if (n < 0) return -1;
    g->nodes[n].min = min_len;
    g->nodes[n].max = max_len;
    g->nodes[n].fmt = (uint8_t)fmt;
    return n;
}

cons_node cons_number(cons_grammar *g) {
    return g ? gram_node(g, K_NUMBER) : -1;
}

static int64_t clamp_int(int64_t v) {
    if (v > CONS_INT_LIMIT) return CONS_INT_LIMIT;
    if (v < -CONS_INT_LIMIT) return -CONS_INT_LIMIT;
    return v;
}

cons_node cons_integer(cons_grammar *g, bool has_min, int64_t min, bool has_max, int64_t max) {
    if (!g) return -1;
    int64_t lo = has_min ? clamp_int(min) : -(CONS_INT_LIMIT - 1);
    int64_t hi = has_max ? clamp_int(max) : CONS_INT_LIMIT - 1;
    if (lo > hi) return gram_fail(g, "integer bounds leave no value");
    if (lo >= CONS_INT_LIMIT || hi <= -CONS_INT_LIMIT)
        return gram_fail(g, "integer bounds are beyond 16 digits");
    int32_t n = gram_node(g, K_INTEGER);
    if (n < 0) return -1;
    g->nodes[n].min = lo;
    g->nodes[n].max = hi;
    return n;
}

cons_node cons_literals(cons_grammar *g, const char *const *json_texts, size_t n) {
    if (!g) return -1;
    if (n == 0) return gram_fail(g, "an enum needs at least one value");
    if (n > CONS_MAX_LITERALS) return gram_fail(g, "an enum has too many values");
    int32_t node = gram_node(g, K_LITERALS);
    if (node < 0) return -1;
    int32_t first = g->n_strs;
    for (size_t i = 0; i < n; i++) {
        size_t len = json_texts[i] ? strlen(json_texts[i]) : 0;
        if (len == 0) return gram_fail(g, "an enum value is empty");
        if (!utf8_valid((const unsigned char *)json_texts[i], len))
            return gram_fail(g, "an enum value is not valid UTF-8");
        if (gram_str(g, json_texts[i], len) < 0) return -1;
    }
    g->nodes[node].first = first;
    g->nodes[node].n = (int32_t)n;
    return node;
}

cons_node cons_null(cons_grammar *g) {
    const char *v[] = {"null"};
    return cons_literals(g, v, 1);
}

cons_node cons_boolean(cons_grammar *g) {
    const char *v[] = {"false", "true"};
    return cons_literals(g, v, 2);
}

cons_node cons_array(cons_grammar *g, cons_node items, int64_t min_items, int64_t max_items) {
    if (!g) return -1;
    if (!gram_valid(g, items)) return gram_fail(g, "invalid array items node");
    if (min_items < 0 || (max_items >= 0 && max_items < min_items))
        return gram_fail(g, "array length bounds are inconsistent");
    int32_t n = gram_node(g, K_ARRAY);
    if (n < 0) return -1;
    g->nodes[n].child = items;
    g->nodes[n].min = min_items;
    g->nodes[n].max = max_items;
    return n;
}

cons_node cons_object(cons_grammar *g, cons_node additional) {
    if (!g) return -1;
    if (additional != -1 && !gram_valid(g, additional))
        return gram_fail(g, "invalid additionalProperties node");
    int32_t n = gram_node(g, K_OBJECT);
    if (n < 0) return -1;
    g->nodes[n].child = additional;
    return n;
}

/* True when s[0..n) is valid UTF-8. */
static bool utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint8_t lo, hi;
        int k = utf8_lead(s[i], &lo, &hi);
        if (!k || i + (size_t)k > n) return false;
        for (int j = 1; j < k; j++) {
            unsigned d = s[i + (size_t)j];
            if (d < (j == 1 ? lo : 0x80) || d > (j == 1 ? hi : 0xBF)) return false;
        }
        i += (size_t)k;
    }
    return true;
}

/* Appends name to b as the inside of a JSON string; false when it does not fit. */
static bool json_escape(const char *name, char *b, size_t cap, size_t *len) {
    size_t o = 0;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        char tmp[8];
        size_t k;
        if (*s == '"' || *s == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*s;
            k = 2;
        } else if (*s < 0x20) {
            k = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *s);
        } else {
            tmp[0] = (char)*s;
            k = 1;
        }
        if (o + k >= cap) return false;
        memcpy(b + o, tmp, k);
        o += k;
    }
    b[o] = 0;
    *len = o;
    return true;
}

int cons_object_prop(cons_grammar *g, cons_node object, const char *name, cons_node value,
                     bool required) {
    if (!g || g->error[0]) return -1;
    if (!gram_valid(g, object) || g->nodes[object].kind != K_OBJECT)
        return gram_fail(g, "property added to a node that is not an object");
    if (!gram_valid(g, value)) return gram_fail(g, "invalid property value node");
    if (!name) return gram_fail(g, "property without a name");
    if (!utf8_valid((const unsigned char *)name, strlen(name)))
        return gram_fail(g, "a property name is not valid UTF-8");
    if (g->nodes[object].n >= CONS_MAX_PROPS) return gram_fail(g, "too many properties");
    char esc[512];
    size_t len;
    if (!json_escape(name, esc, sizeof esc, &len)) return gram_fail(g, "property name too long");
    for (int32_t i = g->nodes[object].first; i >= 0; i = g->props[i].next)
        if (g->props[i].len == len && memcmp(g->props[i].name, esc, len) == 0)
            return gram_fail(g, "property declared twice");
    if (!gram_grow((void **)&g->props, g->n_props, &g->cap_props, sizeof *g->props))
        return gram_fail(g, "out of memory");
    char *c = malloc(len + 1);
    if (!c) return gram_fail(g, "out of memory");
    memcpy(c, esc, len + 1);
    int32_t pi = g->n_props++;
    g->props[pi] = (cons_prop){c, len, value, required, -1};
    cons_gnode *o = &g->nodes[object];
    if (o->last >= 0)
        g->props[o->last].next = pi;
    else
        o->first = pi;
    o->last = pi;
    o->n++;
    return 0;
}

cons_node cons_any_of(cons_grammar *g, const cons_node *alts, size_t n) {
    if (!g) return -1;
    if (n == 0) return gram_fail(g, "anyOf needs at least one alternative");
    if (n == 1) return gram_valid(g, alts[0]) ? alts[0] : gram_fail(g, "invalid node");
    if (n > CONS_MAX_STATES) return gram_fail(g, "anyOf has too many alternatives");
    int32_t node = gram_node(g, K_ANYOF);
    if (node < 0) return -1;
    int32_t first = gram_kids(g, alts, n);
    if (first < 0) return -1;
    g->nodes[node].first = first;
    g->nodes[node].n = (int32_t)n;
    return node;
}

cons_node cons_text(cons_grammar *g, const char *text, size_t len) {
    if (!g) return -1;
    if (len == 0) return gram_fail(g, "empty text node");
    int32_t node = gram_node(g, K_TEXT);
    if (node < 0) return -1;
    int32_t s = gram_str(g, text, len);
    if (s < 0) return -1;
    g->nodes[node].first = s;
    g->nodes[node].n = 1;
    return node;
}

cons_node cons_until(cons_grammar *g, const char *end) {
    if (!g) return -1;
    size_t len = end ? strlen(end) : 0;
    if (len == 0 || len > 64) return gram_fail(g, "a terminator must be 1 to 64 bytes");
    int32_t node = gram_node(g, K_UNTIL);
    if (node < 0) return -1;
    int32_t s = gram_str(g, end, len);
    if (s < 0) return -1;
    g->nodes[node].first = s;
    g->nodes[node].n = 1;
    return node;
}

cons_node cons_seq(cons_grammar *g, const cons_node *items, size_t n) {
    if (!g) return -1;
    if (n == 0) return gram_fail(g, "empty sequence");
    if (n == 1) return gram_valid(g, items[0]) ? items[0] : gram_fail(g, "invalid node");
    int32_t node = gram_node(g, K_SEQ);
    if (node < 0) return -1;
    int32_t first = gram_kids(g, items, n);
    if (first < 0) return -1;
    g->nodes[node].first = first;
    g->nodes[node].n = (int32_t)n;
    return node;
}

cons_node cons_repeat(cons_grammar *g, cons_node item, cons_node sep, int64_t min, int64_t max) {
    if (!g) return -1;
    if (!gram_valid(g, item) || (sep != -1 && !gram_valid(g, sep)))
        return gram_fail(g, "invalid repeat node");
    if (min < 0 || (max >= 0 && max < min) || max == 0)
        return gram_fail(g, "repeat bounds are inconsistent");
    int32_t node = gram_node(g, K_REPEAT);
    if (node < 0) return -1;
    g->nodes[node].child = item;
    g->nodes[node].sep = sep;
    g->nodes[node].min = min;
    g->nodes[node].max = max;
    return node;
}

cons_node cons_ws(cons_grammar *g) {
    return g ? gram_node(g, K_WS) : -1;
}

cons_node cons_any(cons_grammar *g) {
    if (!g) return -1;
    if (g->any_node >= 0) return g->any_node;
    /* the concrete shapes a free value takes once its first byte is known */
    int32_t any = gram_node(g, K_ANY);
    if (any < 0) return -1;
    int32_t obj = cons_object(g, any);
    int32_t arr = cons_array(g, any, 0, -1);
    int32_t str = cons_string(g, 0, -1, CONS_FMT_NONE);
    int32_t num = cons_number(g);
    const char *lits[] = {"false", "null", "true"};
    int32_t lit = cons_literals(g, lits, 3);
    if (obj < 0 || arr < 0 || str < 0 || num < 0 || lit < 0) return -1;
    g->any_node = any;
    g->any_obj = obj;
    g->any_arr = arr;
    g->any_str = str;
    g->any_num = num;
    g->any_lit = lit;
    /* recursive through ANY: lengths fixed here rather than computed */
    g->nodes[any].minlen = 1;
    g->nodes[obj].minlen = 2;
    g->nodes[arr].minlen = 2;
    return any;
}

/* ------------------------------------------------------------------------------------ */
/* the vocabulary */

static int cv_cmp_bytes(const cons_vocab *cv, int32_t a, int32_t b) {
    uint32_t la = cv->off[a + 1] - cv->off[a], lb = cv->off[b + 1] - cv->off[b];
    int c = memcmp(cv->bytes + cv->off[a], cv->bytes + cv->off[b], la < lb ? la : lb);
    if (c) return c;
    return la < lb ? -1 : la > lb ? 1 : (a < b ? -1 : a > b);
}

/* Merge sort of token ids by bytes (a context pointer instead of qsort's globals). */
static void cv_sort(const cons_vocab *cv, int32_t *v, int32_t *tmp, int32_t n) {
    if (n < 2) return;
    int32_t h = n / 2;
    cv_sort(cv, v, tmp, h);
    cv_sort(cv, v + h, tmp, n - h);
    int32_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cv_cmp_bytes(cv, v[i], v[j]) <= 0 ? v[i++] : v[j++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, (size_t)n * sizeof *v);
}

/* Length of the UTF-8 sequence led by c and the range of its second byte; 0 if c
 * cannot lead one. */
static int utf8_lead(unsigned c, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* How a token behaves inside a JSON string body: 1 = plain characters only (chars set),
 * 2 = may continue the string but changes its state (a quote, a backslash, or a
 * character cut at the end), 0 = can never continue it. */
static int cv_string_class(const unsigned char *b, size_t n, uint16_t *chars) {
    size_t i = 0;
    unsigned cnt = 0;
    while (i < n) {
        unsigned c = b[i];
        if (c == '"' || c == '\\') return 2;
        if (c < 0x20) return 0;
        if (c < 0x80) {
            i++;
            cnt++;
            continue;
        }
        uint8_t lo, hi;
        int k = utf8_lead(c, &lo, &hi);
        if (!k) return 0;
        for (int j = 1; j < k; j++) {
            if (i + (size_t)j >= n) return 2; /* cut at the end of the token */
            unsigned d = b[i + (size_t)j];
            if (d < (j == 1 ? lo : 0x80) || d > (j == 1 ? hi : 0xBF)) return 0;
        }
        i += (size_t)k;
        cnt++;
    }
    *chars = (uint16_t)(cnt > 65535 ? 65535 : cnt);
    return 1;
}

cons_vocab *cons_vocab_new(const tok_vocab *v, chatd_error *err) {
    cons_vocab *cv = calloc(1, sizeof *cv);
    if (!cv) goto oom;
    int32_t n = tok_n_vocab(v);
    cv->n_vocab = n;
    cv->tok = v;
    cv->words = ((size_t)n + 31) / 32;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t len = 0;
        if (tok_piece(v, i, false, &len)) total += len;
    }
    cv->bytes = malloc(total + 1);
    cv->off = malloc(((size_t)n + 1) * sizeof *cv->off);
    cv->is_eog = calloc((size_t)n, 1);
    cv->sorted = malloc((size_t)n * sizeof *cv->sorted);
    cv->plain_bits = calloc(cv->words, sizeof *cv->plain_bits);
    cv->plain = malloc((size_t)n * sizeof *cv->plain);
    cv->nchars = calloc((size_t)n, sizeof *cv->nchars);
    cv->str_walk = malloc((size_t)n * sizeof *cv->str_walk);
    cv->plain_from = calloc((size_t)n, sizeof *cv->plain_from);
    int32_t *tmp = malloc((size_t)n * sizeof *tmp);
    if (!cv->bytes || !cv->off || !cv->is_eog || !cv->sorted || !cv->plain_bits || !cv->plain ||
        !cv->nchars || !cv->str_walk || !cv->plain_from || !tmp) {
        free(tmp);
        goto oom;
    }
    const int32_t *eog;
    cv->n_eog = tok_eog_ids(v, &eog);
    cv->eog = malloc((cv->n_eog ? cv->n_eog : 1) * sizeof *cv->eog);
    if (!cv->eog) {
        free(tmp);
        goto oom;
    }
    for (size_t i = 0; i < cv->n_eog; i++) {
        cv->eog[i] = eog[i];
        if (eog[i] >= 0 && eog[i] < n) cv->is_eog[eog[i]] = 1;
    }
    size_t o = 0;
    for (int32_t i = 0; i < n; i++) {
        cv->off[i] = (uint32_t)o;
        size_t len = 0;
        const char *s = tok_piece(v, i, false, &len);
        if (s && len) {
            memcpy(cv->bytes + o, s, len);
            o += len;
        }
        if (len > cv->maxlen) cv->maxlen = (uint32_t)len;
    }
    cv->off[n] = (uint32_t)o;
    for (int32_t i = 0; i < n; i++)
        if (cv->off[i + 1] > cv->off[i] && !cv->is_eog[i]) cv->sorted[cv->n_sorted++] = i;
    cv_sort(cv, cv->sorted, tmp, cv->n_sorted);
    free(tmp);
    for (int32_t k = 0; k < cv->n_sorted; k++) {
        int32_t id = cv->sorted[k];
        uint16_t chars = 0;
        int cls = cv_string_class((const unsigned char *)cv->bytes + cv->off[id],
                                  cv->off[id + 1] - cv->off[id], &chars);
        if (cls == 1) {
            cv->plain_bits[id / 32] |= 1u << (id % 32);
            cv->plain[cv->n_plain++] = id;
            cv->nchars[id] = chars;
        } else if (cls == 2) {
            cv->str_walk[cv->n_str_walk++] = id;
        }
        const unsigned char *b = (const unsigned char *)cv->bytes + cv->off[id];
        uint32_t len = cv->off[id + 1] - cv->off[id], k = 0;
        while (k < len && cv_string_class(b + k, len - k, &chars) != 1) k++;
        cv->plain_from[id] = (uint16_t)(k > 65535 ? 65535 : k);
    }
    return cv;
oom:
    cons_vocab_free(cv);
    chatd_errorf(err, "out of memory building the constraint vocabulary");
    return NULL;
}

void cons_vocab_free(cons_vocab *cv) {
    if (!cv) return;
    free(cv->bytes);
    free(cv->off);
    free(cv->is_eog);
    free(cv->eog);
    free(cv->sorted);
    free(cv->plain_bits);
    free(cv->plain);
    free(cv->nchars);
    free(cv->str_walk);
    free(cv->plain_from);
    free(cv);
}

/* ------------------------------------------------------------------------------------ */
/* compiling */

static int str_cmp(const void *a, const void *b) {
    const cons_str *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int prop_cmp(const void *a, const void *b) {
    const cons_prop *x = a, *y = b;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int64_t digits_of(int64_t v) {
    int64_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static int64_t sat_add(int64_t a, int64_t b) {
    return a > INT64_MAX / 4 || b > INT64_MAX / 4 ? INT64_MAX / 4 : a + b;
}

static int64_t sat_mul(int64_t a, int64_t b) {
    if (a == 0 || b == 0) return 0;
    return a > (INT64_MAX / 4) / b ? INT64_MAX / 4 : a * b;
}

static const int fmt_len[] = {0, 10, 9, 20, 36};

/* Bytes of the shortest match of node i; -2 marks a node being computed (recursion). */
static int64_t prog_minlen(cons_program *p, int32_t i, chatd_error *err) {
    cons_gnode *n = &p->nodes[i];
    if (n->minlen >= 0) return n->minlen;
    if (n->minlen == -2) return chatd_errorf(err, "the grammar is recursive");
    n->minlen = -2;
    int64_t m = 0, c;
    switch (n->kind) {
    case K_ANY:
        m = 1;
        break;
    case K_STRING:
        m = n->fmt ? 2 + fmt_len[n->fmt] : 2 + n->min;
        break;
    case K_NUMBER:
        m = 1;
        break;
    case K_INTEGER:
        m = n->min <= 0 && n->max >= 0 ? 1
            : n->min > 0               ? digits_of(n->min)
                                       : 1 + digits_of(-n->max);
        break;
    case K_LITERALS:
        m = INT64_MAX / 4;
        for (int32_t k = 0; k < n->n; k++)
            if ((int64_t)p->strs[n->first + k].len < m) m = (int64_t)p->strs[n->first + k].len;
        break;
    case K_ARRAY:
        if ((c = prog_minlen(p, n->child, err)) < 0) return -1;
        m = 2 + (n->min ? sat_add(sat_mul(n->min, c), n->min - 1) : 0);
        break;
    case K_OBJECT: {
        m = 2;
        int64_t nreq = 0;
        for (int32_t k = 0; k < n->n; k++) {
            const cons_prop *pr = &p->props[n->first + k];
            if ((c = prog_minlen(p, pr->value, err)) < 0) return -1;
            if (pr->required) {
                m = sat_add(m, (int64_t)pr->len + 3 + c);
                nreq++;
            }
        }
        if (n->child >= 0 && prog_minlen(p, n->child, err) < 0) return -1;
        m += nreq > 1 ? nreq - 1 : 0;
        break;
    }
    case K_ANYOF:
        m = INT64_MAX / 4;
        for (int32_t k = 0; k < n->n; k++) {
            if ((c = prog_minlen(p, p->kids[n->first + k], err)) < 0) return -1;
            if (c < m) m = c;
        }
        break;
    case K_TEXT:
    case K_UNTIL:
        m = (int64_t)p->strs[n->first].len;
        break;
    case K_SEQ:
        for (int32_t k = 0; k < n->n; k++) {
            if ((c = prog_minlen(p, p->kids[n->first + k], err)) < 0) return -1;
            m = sat_add(m, c);
        }
        break;
    case K_REPEAT: {
        if ((c = prog_minlen(p, n->child, err)) < 0) return -1;
        if (c == 0) return chatd_errorf(err, "a repeated item may not be empty");
        int64_t s = n->sep >= 0 ? prog_minlen(p, n->sep, err) : 0;
        if (s < 0) return -1;
        m = n->min ? sat_add(sat_mul(n->min, c), sat_mul(n->min - 1, s)) : 0;
        break;
    }
    case K_WS:
        m = 0;
        break;
    }
    n->minlen = m;
    return m;
}

void cons_program_release(cons_program *p) {
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    for (int32_t i = 0; i < p->n_strs; i++) free(p->strs[i].s);
    for (int32_t i = 0; i < p->n_props; i++) free(p->props[i].name);
    if (p->until)
        for (int32_t i = 0; i < p->n_nodes; i++) {
            free(p->until[i].free_bits);
            free(p->until[i].walk);
        }
    free(p->until);
    free(p->nodes);
    free(p->kids);
    free(p->strs);
    free(p->props);
    free(p);
}

/* The class of a free-text block: tokens without the terminator's first byte leave its
 * match where it was (at the start), the others are walked. */
static int prog_until_class(cons_program *p, int32_t i) {
    const cons_vocab *cv = p->cv;
    cons_until_class *u = &p->until[i];
    unsigned char e0 = (unsigned char)p->strs[p->nodes[i].first].s[0];
    u->free_bits = calloc(cv->words, sizeof *u->free_bits);
    u->walk = malloc(((size_t)cv->n_sorted + 1) * sizeof *u->walk);
    if (!u->free_bits || !u->walk) return -1;
    for (int32_t k = 0; k < cv->n_sorted; k++) {
        int32_t id = cv->sorted[k];
        const char *b = cv->bytes + cv->off[id];
        if (memchr(b, e0, cv->off[id + 1] - cv->off[id]))
            u->walk[u->n_walk++] = id;
        else
            u->free_bits[id / 32] |= 1u << (id % 32);
    }
    return 0;
}

cons_program *cons_compile(const cons_grammar *g, cons_node root, const cons_vocab *cv,
                           chatd_error *err) {
    if (!g || !cv) {
        chatd_errorf(err, "no grammar to compile");
        return NULL;
    }
    if (g->error[0]) {
        chatd_errorf(err, "%s", g->error);
        return NULL;
    }
    if (!gram_valid(g, root)) {
        chatd_errorf(err, "invalid root node");
        return NULL;
    }
    cons_program *p = calloc(1, sizeof *p);
    if (!p) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->cv = cv;
    p->root = root;
    p->any_obj = g->any_obj;
    p->any_arr = g->any_arr;
    p->any_str = g->any_str;
    p->any_num = g->any_num;
    p->any_lit = g->any_lit;
    p->n_nodes = g->n_nodes;
    p->nodes = malloc((size_t)g->n_nodes * sizeof *p->nodes);
    p->kids = malloc(((size_t)g->n_kids + 1) * sizeof *p->kids);
    p->strs = calloc((size_t)g->n_strs + 1, sizeof *p->strs);
    p->props = calloc((size_t)g->n_props + 1, sizeof *p->props);
    p->until = calloc((size_t)g->n_nodes, sizeof *p->until);
    if (!p->nodes || !p->kids || !p->strs || !p->props || !p->until) goto oom;
    memcpy(p->nodes, g->nodes, (size_t)g->n_nodes * sizeof *p->nodes);
    if (g->n_kids) memcpy(p->kids, g->kids, (size_t)g->n_kids * sizeof *p->kids);
    for (int32_t i = 0; i < g->n_strs; i++) {
        p->strs[i].s = malloc(g->strs[i].len + 1);
        if (!p->strs[i].s) goto oom;
        memcpy(p->strs[i].s, g->strs[i].s, g->strs[i].len + 1);
        p->strs[i].len = g->strs[i].len;
        p->n_strs++;
    }
    /* properties: each object's list made contiguous and sorted by name, so that the
     * keys that share a prefix form a range */
    for (int32_t i = 0; i < g->n_nodes; i++) {
        cons_gnode *n = &p->nodes[i];
        if (n->kind == K_OBJECT) {
            int32_t first = p->n_props;
            for (int32_t k = g->nodes[i].first; k >= 0; k = g->props[k].next) {
                cons_prop pr = g->props[k];
                pr.name = malloc(pr.len + 1);
                if (!pr.name) goto oom;
                memcpy(pr.name, g->props[k].name, pr.len + 1);
                p->props[p->n_props++] = pr;
            }
            n->first = first;
            qsort(p->props + first, (size_t)n->n, sizeof *p->props, prop_cmp);
            n->req = 0;
            for (int32_t k = 0; k < n->n; k++)
                if (p->props[first + k].required) n->req |= 1ull << k;
        } else if (n->kind == K_LITERALS) {
            qsort(p->strs + n->first, (size_t)n->n, sizeof *p->strs, str_cmp);
            int32_t w = 1; /* drop duplicates */
            for (int32_t k = 1; k < n->n; k++) {
                cons_str *a = &p->strs[n->first + w - 1], *b = &p->strs[n->first + k];
                if (a->len == b->len && memcmp(a->s, b->s, a->len) == 0) continue;
                cons_str t = p->strs[n->first + w];
                p->strs[n->first + w] = *b;
                *b = t;
                w++;
            }
            n->n = w;
        }
    }
    for (int32_t i = 0; i < p->n_nodes; i++) {
        if (prog_minlen(p, i, err) < 0) {
            cons_program_release(p);
            return NULL;
        }
        if (p->nodes[i].kind == K_UNTIL && prog_until_class(p, i) < 0) goto oom;
    }
    return p;
oom:
    cons_program_release(p);
    chatd_errorf(err, "out of memory compiling a grammar");
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* matching one byte */

static bool is_ws(int c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

static bool is_hex(int c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static const int64_t pow10_tab[] = {1LL,
                                    10LL,
                                    100LL,
                                    1000LL,
                                    10000LL,
                                    100000LL,
                                    1000000LL,
                                    10000000LL,
                                    100000000LL,
                                    1000000000LL,
                                    10000000000LL,
                                    100000000000LL,
                                    1000000000000LL,
                                    10000000000000LL,
                                    100000000000000LL,
                                    1000000000000000LL,
                                    10000000000000000LL};

/* Fewest digits to append to an integer prefix (magnitude v of d digits, d = 0 for none
 * yet; sign neg) so that it lands in [lo, hi]; -1 when no extension does. A leading zero
 * takes no more digits. */
static int64_t int_more_digits(int64_t lo, int64_t hi, bool neg, int64_t v, int64_t d) {
    int64_t mlo, mhi; /* allowed magnitudes for this sign */
    if (neg) {
        if (lo > -1) return -1;
        mlo = hi < -1 ? -hi : 1;
        mhi = -lo;
    } else {
        if (hi < 0) return -1;
        mlo = lo > 0 ? lo : 0;
        mhi = hi;
    }
    for (int64_t k = 0; d + k <= CONS_MAX_DIGITS; k++) {
        int64_t a, b;
        if (d == 0) {
            if (k == 0) continue;
            a = k == 1 ? 0 : pow10_tab[k - 1]; /* the numbers of exactly k digits */
            b = pow10_tab[k] - 1;
        } else {
            if (v == 0 && k > 0) break;
            a = v * pow10_tab[k];
            b = a + pow10_tab[k] - 1;
        }
        if (a <= mhi && b >= mlo) return k;
    }
    return -1;
}

/* The tail of a time after the seconds: an optional fraction of up to 9 digits, then Z or
 * an offset +hh:mm / -hh:mm. f->count is the part (0 none yet, 1 fraction, 3 complete,
 * 4 offset), f->value the characters of that part so far, f->lo the offset's hour digit. */
static bool fmt_tail(cons_frame *f, int c) {
    int d = c - '0';
    if (f->count == 1 && is_digit(c)) {
        if (f->value >= 9) return false;
        f->value++;
        return true;
    }
    if (f->count == 0 || (f->count == 1 && f->value > 0)) {
        if (c == '.' && f->count == 0) {
            f->count = 1;
            f->value = 0;
            return true;
        }
        if (c == 'Z') {
            f->count = 3;
            return true;
        }
        if (c == '+' || c == '-') {
            f->count = 4;
            f->value = 0;
            return true;
        }
        return false;
    }
    if (f->count != 4) return false;
    switch (f->value) {
    case 0:
        if (!is_digit(c) || d > 2) return false;
        f->lo = d;
        break;
    case 1:
        if (!is_digit(c) || (f->lo == 2 && d > 3)) return false;
        break;
    case 2:
        if (c != ':') return false;
        break;
    case 3:
        if (!is_digit(c) || d > 5) return false;
        break;
    default:
        if (!is_digit(c)) return false;
        f->count = 3;
        return true;
    }
    f->value++;
    return true;
}

/* Bytes of the string value (closing quote included) a format still needs. */
static int64_t fmt_rem(int fmt, const cons_frame *f) {
    int fixed = fmt_len[fmt];
    if (fmt != CONS_FMT_TIME && fmt != CONS_FMT_DATE_TIME) return fixed - f->pos + 1;
    int base = fixed - 1; /* up to the seconds; "Z" is the shortest tail */
    if (f->pos < base) return base - f->pos + 2;
    switch (f->count) {
    case 0:
        return 2;
    case 1:
        return f->value ? 2 : 3;
    case 4:
        return 5 - f->value + 1;
    default:
        return 1;
    }
}

/* Can the formatted string close here? */
static bool fmt_done(int fmt, const cons_frame *f) {
    if (fmt != CONS_FMT_TIME && fmt != CONS_FMT_DATE_TIME) return f->pos == fmt_len[fmt];
    return f->count == 3;
}

/* Can character c come at position pos of a formatted string? Uses the frame to keep
 * the digits later positions depend on. */
static bool fmt_ok(int fmt, cons_frame *f, int c) {
    int pos = f->pos;
    if (fmt == CONS_FMT_UUID) {
        if (pos == 8 || pos == 13 || pos == 18 || pos == 23) return c == '-';
        return is_hex(c) && !(c >= 'A' && c <= 'F');
    }
    if (fmt == CONS_FMT_DATE || fmt == CONS_FMT_DATE_TIME) {
        if (pos < 10) {
            int d = c - '0';
            switch (pos) {
            case 4:
            case 7:
                return c == '-';
            case 5:
                if (!is_digit(c) || d > 1) return false;
                f->lo = d * 10;
                return true;
            case 6:
                if (!is_digit(c) || (f->lo == 0 && d == 0) || (f->lo == 10 && d > 2)) return false;
                f->lo += d;
                return true;
            case 8:
                if (!is_digit(c) || d > (f->lo == 2 ? 2 : 3)) return false;
                f->hi = d;
                return true;
            case 9: {
                if (!is_digit(c)) return false;
                int m = f->lo;
                bool long_month =
                    m == 1 || m == 3 || m == 5 || m == 7 || m == 8 || m == 10 || m == 12;
                if (f->hi == 0) return d >= 1;
                if (f->hi == 3) return long_month ? d <= 1 : d == 0;
                if (f->hi == 2 && m == 2) return d <= 8; /* no 29 February: leap years aside */
                return true;
            }
            default:
                return is_digit(c);
            }
        }
        if (fmt == CONS_FMT_DATE) return false;
        if (pos == 10) return c == 'T';
        pos -= 11;
    }
    /* time: hh:mm:ss, then the tail (fraction, zone) in fmt_tail */
    int d = c - '0';
    if (pos >= 8) return fmt_tail(f, c);
    switch (pos) {
    case 0:
        if (!is_digit(c) || d > 2) return false;
        f->value = d;
        return true;
    case 1:
        return is_digit(c) && (f->value < 2 || d <= 3);
    case 2:
    case 5:
        return c == ':';
    case 3:
    case 6:
        return is_digit(c) && d <= 5;
    default: /* 4, 7 */
        return is_digit(c);
    }
}

static void out_push(cons_out *out, const cons_state *s) {
    size_t sz = STATE_SIZE(s->depth);
    for (int i = 0; i < out->n; i++)
        if (out->v[i].depth == s->depth && memcmp(&out->v[i], s, sz) == 0) return;
    if (out->n >= CONS_MAX_STATES) return; /* keep the first paths: still valid output */
    memcpy(&out->v[out->n++], s, sz);
}

/* Pushes a frame for node; false when the state is full. */
static bool st_push(const cons_program *p, cons_state *s, int32_t node) {
    if (s->depth >= CONS_MAX_DEPTH) return false;
    cons_frame *f = &s->f[s->depth];
    uint8_t anyd = 0;
    if (s->depth > 0) {
        const cons_frame *par = &s->f[s->depth - 1];
        anyd = par->anyd + (par->node == p->any_obj || par->node == p->any_arr);
    }
    memset(f, 0, sizeof *f);
    f->node = node;
    f->anyd = anyd;
    f->prop = -1;
    const cons_gnode *n = &p->nodes[node];
    if (n->kind == K_LITERALS) {
        f->lo = n->first;
        f->hi = n->first + n->n;
    }
    s->depth++;
    return true;
}

/* Pops the top frame, which has completed, and tells its parents (which may complete in
 * turn). */
static void st_pop_done(const cons_program *p, cons_state *s) {
    for (;;) {
        s->depth--;
        if (s->depth == 0) return;
        cons_frame *f = &s->f[s->depth - 1];
        const cons_gnode *n = &p->nodes[f->node];
        switch (n->kind) {
        case K_ARRAY:
            f->count++;
            f->phase = 3;
            f->ws = 0;
            return;
        case K_OBJECT:
            f->phase = 6;
            f->ws = 0;
            return;
        case K_SEQ:
            if (f->pos < n->n) return;
            continue; /* the last item completed the sequence */
        case K_REPEAT:
            if (f->phase == 1) {
                f->count++;
                f->phase = 2;
            } else {
                f->phase = 4;
            }
            return;
        default:
            return;
        }
    }
}

/* Is there an unused property among the key candidates [lo, hi)? */
static bool key_viable(const cons_gnode *n, const cons_frame *f) {
    for (int32_t k = f->lo; k < f->hi; k++)
        if (!(f->seen >> (k - n->first) & 1)) return true;
    return false;
}

/* JSON string-body rules for one byte (escape and UTF-8 state in f); false if c cannot
 * come here. *closes is set when c is the closing quote, *starts_char when it begins a
 * character. */
static bool str_body(cons_frame *f, int c, bool *closes, bool *starts_char) {
    *closes = *starts_char = false;
    if (f->u8) {
        if (c < f->u8lo || c > f->u8hi) return false;
        f->u8--;
        f->u8lo = 0x80;
        f->u8hi = 0xBF;
        return true;
    }
    if (f->esc == 1) {
        if (c == 'u') {
            f->esc = 5;
            return true;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0) return false;
        f->esc = 0;
        return true;
    }
    if (f->esc >= 2) {
        /* \uXXXX, but no surrogate (D800-DFFF): alone they are not text, and pairs are
         * not worth their cost; u8lo marks a first digit D meanwhile */
        if (!is_hex(c)) return false;
        if (f->esc == 5) f->u8lo = c == 'd' || c == 'D';
        if (f->esc == 4 && f->u8lo == 1 && !(c >= '0' && c <= '7')) return false;
        f->esc = f->esc == 2 ? 0 : f->esc - 1;
        if (!f->esc) f->u8lo = 0;
        return true;
    }
    if (c == '"') {
        *closes = true;
        return true;
    }
    if (c == '\\') {
        f->esc = 1;
        *starts_char = true;
        return true;
    }
    if (c < 0x20) return false;
    if (c >= 0x80) {
        uint8_t lo, hi;
        int k = utf8_lead((unsigned)c, &lo, &hi);
        if (!k) return false;
        f->u8 = (uint8_t)(k - 1);
        f->u8lo = lo;
        f->u8hi = hi;
    }
    *starts_char = true;
    return true;
}

static void st_feed(const cons_program *p, cons_state *s, int c, cons_out *out);

/* Whitespace between JSON tokens, in the two shapes models write: one space, or a
 * newline and an indentation of up to CONS_MAX_WS spaces or tabs. (Fewer shapes also
 * make the token walk cheaper: every whitespace prefix is a branch of the vocabulary.) */
static bool json_gap(cons_frame *f, int c) {
    if (f->ws == 0) {
        if (c != ' ' && c != '\n') return false;
        f->ws = c == ' ' ? 0x80 : 1;
        return true;
    }
    if (f->ws & 0x80 || (c != ' ' && c != '\t') || f->ws > CONS_MAX_WS) return false;
    f->ws++;
    return true;
}

/* Forks: a copy of s where the top frame completes now (c goes to the parent). */
static void st_fork_end(const cons_program *p, const cons_state *s, int c, cons_out *out) {
    cons_state t;
    memcpy(&t, s, STATE_SIZE(s->depth));
    st_pop_done(p, &t);
    st_feed(p, &t, c, out);
}

/* Begins an object key at the opening quote. */
static bool obj_key_start(const cons_gnode *n, cons_frame *f) {
    f->phase = 2;
    f->lo = n->first;
    f->hi = n->first + n->n;
    f->pos = 0;
    f->esc = f->u8 = 0;
    f->flags = n->child >= 0;
    return f->flags || key_viable(n, f);
}

/* What feeding one byte to a state's top frame did. */
typedef enum feed_result {
    FEED_DROP,  /* nothing to keep: the byte cannot come here, or forks took care of it */
    FEED_TAKEN, /* the byte was consumed: keep the state */
    FEED_AGAIN  /* the top frame changed without consuming the byte: feed it again */
} feed_result;

/* Optional whitespace: takes whitespace, ends at anything else. */
static feed_result feed_ws(const cons_program *p, cons_state *s, cons_frame *f, int c) {
    if (is_ws(c) && f->ws < CONS_MAX_WS) {
        f->ws++;
        return FEED_TAKEN;
    }
    st_pop_done(p, s);
    return FEED_AGAIN;
}

/* Exact text. */
static feed_result feed_text(const cons_program *p, cons_state *s, cons_frame *f,
                             const cons_gnode *n, int c) {
    const cons_str *t = &p->strs[n->first];
    if ((unsigned char)t->s[f->pos] != c) return FEED_DROP;
    if ((size_t)++f->pos == t->len) st_pop_done(p, s);
    return FEED_TAKEN;
}

/* Free text up to a terminator: pos is the longest prefix of the terminator that ends
 * the text so far. */
static feed_result feed_until(const cons_program *p, cons_state *s, cons_frame *f,
                              const cons_gnode *n, int c) {
    const cons_str *t = &p->strs[n->first];
    if ((unsigned char)t->s[f->pos] == c) {
        if ((size_t)++f->pos == t->len) st_pop_done(p, s);
        return FEED_TAKEN;
    }
    int k = f->pos;
    for (; k > 0; k--) {
        if ((unsigned char)t->s[k - 1] != c) continue;
        if (memcmp(t->s, t->s + f->pos - k + 1, (size_t)k - 1) == 0) break;
    }
    f->pos = k;
    return FEED_TAKEN;
}

/* A sequence: pushes its next item (pos counts the items begun). */
static feed_result feed_seq(const cons_program *p, cons_state *s, cons_frame *f,
                            const cons_gnode *n) {
    if (f->pos >= n->n) {
        st_pop_done(p, s);
        return FEED_AGAIN;
    }
    return st_push(p, s, p->kids[n->first + f->pos++]) ? FEED_AGAIN : FEED_DROP;
}

/* One of several alternatives: one state per alternative, each fed the byte. */
static feed_result feed_any_of(const cons_program *p, const cons_state *s, const cons_gnode *n,
                               int c, cons_out *out) {
    for (int32_t k = 0; k < n->n; k++) {
        cons_state t;
        memcpy(&t, s, STATE_SIZE(s->depth));
        t.depth--;
        if (st_push(p, &t, p->kids[n->first + k])) st_feed(p, &t, c, out);
    }
    return FEED_DROP;
}

/* Repetition. Phases: 0 before the first item, 1 in an item, 2 after an item, 3 in a
 * separator, 4 after one. Where it may both stop and go on, a fork stops. */
static feed_result feed_repeat(const cons_program *p, cons_state *s, cons_frame *f,
                               const cons_gnode *n, int c, cons_out *out) {
    if (f->phase == 4) { /* after a separator an item must follow */
        f->phase = 1;
        return st_push(p, s, n->child) ? FEED_AGAIN : FEED_DROP;
    }
    bool can_end = f->count >= n->min, can_more = n->max < 0 || f->count < n->max;
    if (can_end && can_more) st_fork_end(p, s, c, out);
    if (!can_more) {
        st_pop_done(p, s);
        return FEED_AGAIN;
    }
    bool sep = f->phase == 2 && n->sep >= 0;
    f->phase = sep ? 3 : 1;
    return st_push(p, s, sep ? n->sep : n->child) ? FEED_AGAIN : FEED_DROP;
}

/* A free value: its first byte says which shape it takes. */
static feed_result feed_any(const cons_program *p, cons_frame *f, int c) {
    if (c == '{' || c == '[') {
        if (f->anyd >= CONS_MAX_ANY_DEPTH) return FEED_DROP;
        f->node = c == '{' ? p->any_obj : p->any_arr;
    } else if (c == '"') {
        f->node = p->any_str;
    } else if (c == '-' || is_digit(c)) {
        f->node = p->any_num;
    } else if (c == 't' || c == 'f' || c == 'n') {
        f->node = p->any_lit;
        f->lo = p->nodes[p->any_lit].first;
        f->hi = f->lo + p->nodes[p->any_lit].n;
    } else {
        return FEED_DROP;
    }
    return FEED_AGAIN;
}

/* One of a sorted set of JSON texts: [lo, hi) are those that match so far. */
static feed_result feed_literals(const cons_program *p, cons_state *s, cons_frame *f, int c) {
    int32_t lo = -1, hi = -1;
    for (int32_t k = f->lo; k < f->hi; k++) {
        const cons_str *t = &p->strs[k];
        bool m = t->len > (size_t)f->pos && (unsigned char)t->s[f->pos] == c;
        if (m && lo < 0) lo = k;
        if (m) hi = k + 1;
    }
    if (lo < 0) {
        if (p->strs[f->lo].len != (size_t)f->pos) return FEED_DROP;
        st_pop_done(p, s); /* a complete value, and c is the parent's */
        return FEED_AGAIN;
    }
    f->lo = lo;
    f->hi = hi;
    f->pos++;
    if (hi - lo == 1 && p->strs[lo].len == (size_t)f->pos) st_pop_done(p, s);
    return FEED_TAKEN;
}

/* A JSON string: phase 0 before the opening quote, 1 inside (count characters). */
static feed_result feed_string(const cons_program *p, cons_state *s, cons_frame *f,
                               const cons_gnode *n, int c) {
    if (f->phase == 0) {
        if (c != '"') return FEED_DROP;
        f->phase = 1;
        return FEED_TAKEN;
    }
    if (n->fmt) {
        if (c == '"') {
            if (!fmt_done(n->fmt, f)) return FEED_DROP;
            st_pop_done(p, s);
            return FEED_TAKEN;
        }
        bool tail = (n->fmt == CONS_FMT_TIME || n->fmt == CONS_FMT_DATE_TIME) &&
                    f->pos >= fmt_len[n->fmt] - 1;
        if ((!tail && f->pos >= fmt_len[n->fmt]) || !fmt_ok(n->fmt, f, c)) return FEED_DROP;
        if (!tail) f->pos++;
        return FEED_TAKEN;
    }
    bool closes, starts;
    if (!str_body(f, c, &closes, &starts)) return FEED_DROP;
    if (closes) {
        if (f->count < n->min) return FEED_DROP;
        st_pop_done(p, s);
    } else if (starts) {
        if (n->max >= 0 && f->count >= n->max) return FEED_DROP;
        f->count++;
    }
    return FEED_TAKEN;
}

/* A JSON number or integer. Phases: 0 start, 1 after '-', 2 integer digits, 3 after a
 * leading 0, 4 after '.', 5 fraction digits, 6 after 'e', 7 after the exponent's sign,
 * 8 exponent digits. An integer's prefix must stay extendable into [min, max]. */
static feed_result feed_number(const cons_program *p, cons_state *s, cons_frame *f,
                               const cons_gnode *n, int c) {
    bool integer = n->kind == K_INTEGER;
    int d = c - '0';
    switch (f->phase) {
    case 0:
    case 1:
        if (f->phase == 0 && c == '-') {
            if (integer && int_more_digits(n->min, n->max, true, 0, 0) < 0) return FEED_DROP;
            f->flags = 1;
            f->phase = 1;
            return FEED_TAKEN;
        }
        if (!is_digit(c) || (d == 0 && f->flags && integer)) return FEED_DROP; /* no -0 */
        if (integer && int_more_digits(n->min, n->max, f->flags, d, 1) < 0) return FEED_DROP;
        f->phase = d == 0 ? 3 : 2;
        f->count = 1;
        f->value = d;
        return FEED_TAKEN;
    case 2:
    case 3:
        if (is_digit(c) && f->phase == 2 && f->count < CONS_MAX_DIGITS) {
            int64_t v = f->value * 10 + d;
            if (integer && int_more_digits(n->min, n->max, f->flags, v, f->count + 1) < 0)
                return FEED_DROP;
            f->value = v;
            f->count++;
            return FEED_TAKEN;
        }
        if (!integer && (c == '.' || c == 'e' || c == 'E')) {
            f->phase = c == '.' ? 4 : 6;
            return FEED_TAKEN;
        }
        if (integer && int_more_digits(n->min, n->max, f->flags, f->value, f->count) != 0)
            return FEED_DROP;
        break;
    case 4:
    case 7:
        if (!is_digit(c)) return FEED_DROP;
        f->phase = f->phase == 4 ? 5 : 8;
        f->count = 1;
        return FEED_TAKEN;
    case 5:
        if (is_digit(c) && f->count < CONS_MAX_DIGITS) {
            f->count++;
            return FEED_TAKEN;
        }
        if (c == 'e' || c == 'E') {
            f->phase = 6;
            return FEED_TAKEN;
        }
        break;
    case 6:
        if (c == '+' || c == '-') {
            f->phase = 7;
            return FEED_TAKEN;
        }
        if (!is_digit(c)) return FEED_DROP;
        f->phase = 8;
        f->count = 1;
        return FEED_TAKEN;
    default: /* 8 */
        if (is_digit(c) && f->count < 3) {
            f->count++;
            return FEED_TAKEN;
        }
        break;
    }
    st_pop_done(p, s); /* the number is complete; c belongs to what follows */
    return FEED_AGAIN;
}

/* A JSON array. Phases: 0 before '[', 1 after it, 2 in an item, 3 after an item, 4 after
 * a comma. */
static feed_result feed_array(const cons_program *p, cons_state *s, cons_frame *f,
                              const cons_gnode *n, int c) {
    if (f->phase == 0) {
        if (c != '[') return FEED_DROP;
        f->phase = 1;
        return FEED_TAKEN;
    }
    if (f->phase == 2) return FEED_DROP; /* an item is on top while it is open */
    if (is_ws(c)) return json_gap(f, c) ? FEED_TAKEN : FEED_DROP;
    f->ws = 0;
    if (c == ']' && f->phase != 4) {
        if (f->count < n->min) return FEED_DROP;
        st_pop_done(p, s);
        return FEED_TAKEN;
    }
    if (f->phase == 3) {
        if (c != ',' || (n->max >= 0 && f->count >= n->max)) return FEED_DROP;
        f->phase = 4;
        return FEED_TAKEN;
    }
    if (n->max == 0) return FEED_DROP;
    f->phase = 2;
    return st_push(p, s, n->child) ? FEED_AGAIN : FEED_DROP;
}

/* Inside an object's key: a declared name (raw bytes compared; names are escaped and
 * valid UTF-8, so a complete one leaves no escape or character open) and, with
 * additionalProperties, any string (JSON string rules). */
static feed_result feed_key(const cons_program *p, cons_frame *f, const cons_gnode *n, int c) {
    bool free_ok = f->flags != 0, free_closes = false, starts;
    if (free_ok) {
        cons_frame t = *f;
        free_ok = str_body(&t, c, &free_closes, &starts);
        f->esc = t.esc;
        f->u8 = t.u8;
        f->u8lo = t.u8lo;
        f->u8hi = t.u8hi;
    }
    if (c == '"') {
        int32_t exact = -1;
        if (f->lo < f->hi && p->props[f->lo].len == (size_t)f->pos) exact = f->lo;
        if (exact >= 0 && f->seen >> (exact - n->first) & 1) return FEED_DROP; /* repeated */
        if (exact < 0 && !(free_ok && free_closes)) return FEED_DROP;
        f->prop = exact;
        if (exact >= 0) f->seen |= 1ull << (exact - n->first);
        f->esc = f->u8 = 0;
        f->phase = 3;
        f->ws = 0;
        return FEED_TAKEN;
    }
    int32_t lo = -1, hi = -1;
    for (int32_t k = f->lo; k < f->hi; k++) {
        const cons_prop *pr = &p->props[k];
        bool m = pr->len > (size_t)f->pos && (unsigned char)pr->name[f->pos] == c;
        if (m && lo < 0) lo = k;
        if (m) hi = k + 1;
    }
    f->lo = lo < 0 ? f->hi : lo;
    f->hi = lo < 0 ? f->hi : hi;
    f->pos++;
    f->flags = free_ok;
    return f->flags || key_viable(n, f) ? FEED_TAKEN : FEED_DROP;
}

/* A JSON object. Phases: 0 before '{', 1 after it, 2 in a key, 3 after a key, 4 after
 * ':', 5 in a value, 6 after a value, 7 after a comma. */
static feed_result feed_object(const cons_program *p, cons_state *s, cons_frame *f,
                               const cons_gnode *n, int c) {
    if (f->phase == 0) {
        if (c != '{') return FEED_DROP;
        f->phase = 1;
        return FEED_TAKEN;
    }
    if (f->phase == 2) return feed_key(p, f, n, c);
    if (f->phase == 5) return FEED_DROP; /* the value is on top while it is open */
    if (is_ws(c)) return json_gap(f, c) ? FEED_TAKEN : FEED_DROP;
    f->ws = 0;
    if (c == '}' && (f->phase == 1 || f->phase == 6)) {
        if (n->req & ~f->seen) return FEED_DROP;
        st_pop_done(p, s);
        return FEED_TAKEN;
    }
    switch (f->phase) {
    case 1:
    case 7:
        return c == '"' && obj_key_start(n, f) ? FEED_TAKEN : FEED_DROP;
    case 3:
        if (c != ':') return FEED_DROP;
        f->phase = 4;
        return FEED_TAKEN;
    case 4:
        f->phase = 5;
        return st_push(p, s, f->prop >= 0 ? p->props[f->prop].value : n->child) ? FEED_AGAIN
                                                                                : FEED_DROP;
    default: {                     /* 6 */
        bool more = n->child >= 0; /* anything left to add? */
        for (int32_t k = 0; k < n->n && !more; k++)
            if (!(f->seen >> k & 1)) more = true;
        if (c != ',' || !more) return FEED_DROP;
        f->phase = 7;
        return FEED_TAKEN;
    }
    }
}

/* Feeds byte c to state s (modified); every state that results goes to out. */
static void st_feed(const cons_program *p, cons_state *s, int c, cons_out *out) {
    for (int guard = 0; guard < CONS_MAX_STEPS && s->depth > 0; guard++) {
        cons_frame *f = &s->f[s->depth - 1];
        const cons_gnode *n = &p->nodes[f->node];
        feed_result r = FEED_DROP;
        switch (n->kind) {
        case K_WS:
            r = feed_ws(p, s, f, c);
            break;
        case K_TEXT:
            r = feed_text(p, s, f, n, c);
            break;
        case K_UNTIL:
            r = feed_until(p, s, f, n, c);
            break;
        case K_SEQ:
            r = feed_seq(p, s, f, n);
            break;
        case K_ANYOF:
            r = feed_any_of(p, s, n, c, out);
            break;
        case K_REPEAT:
            r = feed_repeat(p, s, f, n, c, out);
            break;
        case K_ANY:
            r = feed_any(p, f, c);
            break;
        case K_LITERALS:
            r = feed_literals(p, s, f, c);
            break;
        case K_STRING:
            r = feed_string(p, s, f, n, c);
            break;
        case K_NUMBER:
        case K_INTEGER:
            r = feed_number(p, s, f, n, c);
            break;
        case K_ARRAY:
            r = feed_array(p, s, f, n, c);
            break;
        case K_OBJECT:
            r = feed_object(p, s, f, n, c);
            break;
        }
        if (r == FEED_TAKEN) out_push(out, s);
        if (r != FEED_AGAIN) return;
    }
}

/* ------------------------------------------------------------------------------------ */
/* shortest completions */

/* Bytes still needed by the required properties not yet given, as ",\"k\":v" each. */
static int64_t obj_req_rest(const cons_program *p, const cons_gnode *n, uint64_t seen) {
    int64_t m = 0;
    for (int32_t k = 0; k < n->n; k++)
        if ((n->req >> k & 1) && !(seen >> k & 1)) {
            const cons_prop *pr = &p->props[n->first + k];
            m = sat_add(m, 1 + (int64_t)pr->len + 3 + p->nodes[pr->value].minlen);
        }
    return m;
}

/* Bytes a frame still needs after its active child (top = no child is active). */
static int64_t frame_rem(const cons_program *p, const cons_frame *f, bool top) {
    const cons_gnode *n = &p->nodes[f->node];
    switch (n->kind) {
    case K_WS:
        return 0;
    case K_TEXT:
    case K_UNTIL:
        return (int64_t)p->strs[n->first].len - f->pos;
    case K_ANY:
    case K_ANYOF:
        return n->minlen;
    case K_SEQ: {
        int64_t m = 0;
        for (int32_t k = f->pos; k < n->n; k++)
            m = sat_add(m, p->nodes[p->kids[n->first + k]].minlen);
        return m;
    }
    case K_REPEAT: {
        int64_t ml = p->nodes[n->child].minlen, ms = n->sep >= 0 ? p->nodes[n->sep].minlen : 0;
        int64_t done = f->count + (f->phase == 1 ? 1 : 0); /* items given once the child ends */
        int64_t left = n->min > done ? n->min - done : 0;
        if (f->phase == 3 || f->phase == 4) /* a separator was started: an item must follow */
            return sat_add(ml, sat_mul(left > 1 ? left - 1 : 0, ms + ml));
        if (f->phase == 0) return n->minlen;
        return sat_mul(left, ms + ml);
    }
    case K_LITERALS: {
        if (p->strs[f->lo].len == (size_t)f->pos) return 0;
        int64_t m = INT64_MAX / 4;
        for (int32_t k = f->lo; k < f->hi; k++)
            if ((int64_t)p->strs[k].len - f->pos < m) m = (int64_t)p->strs[k].len - f->pos;
        return m;
    }
    case K_STRING:
        if (f->phase == 0) return n->minlen;
        if (n->fmt) return fmt_rem(n->fmt, f);
        return (int64_t)f->u8 +
               (f->esc == 1   ? 1
                : f->esc >= 2 ? f->esc - 1
                              : 0) +
               (n->min > f->count ? n->min - f->count : 0) + 1;
    case K_NUMBER:
        return f->phase == 0 ? 1
                             : (f->phase == 1 || f->phase == 4 || f->phase == 6 || f->phase == 7);
    case K_INTEGER: {
        if (f->phase == 0) return n->minlen;
        if (f->phase == 1) {
            int64_t best = INT64_MAX / 4;
            for (int d = 1; d <= 9; d++) {
                int64_t k = int_more_digits(n->min, n->max, true, d, 1);
                if (k >= 0 && k + 1 < best) best = k + 1;
            }
            return best;
        }
        int64_t k = int_more_digits(n->min, n->max, f->flags, f->value, f->count);
        return k < 0 ? INT64_MAX / 4 : k;
    }
    case K_ARRAY: {
        int64_t ml = p->nodes[n->child].minlen;
        int64_t have = f->count + (f->phase == 2 ? 1 : 0);
        int64_t left = n->min > have ? n->min - have : 0;
        switch (f->phase) {
        case 0:
            return n->minlen;
        case 1:
            return left ? sat_add(sat_mul(left, ml), left) : 1;
        case 4: {
            int64_t k = left > 1 ? left : 1;
            return sat_add(sat_mul(k, ml), k);
        }
        default:
            return sat_add(sat_mul(left, ml + 1), 1); /* 2 (in an item), 3 */
        }
    }
    case K_OBJECT: {
        int64_t rest = obj_req_rest(p, n, f->seen);
        switch (f->phase) {
        case 0:
            return n->minlen;
        case 1:
            return rest ? rest : 1; /* the first needs no comma; '}' balances it */
        case 3:
        case 4: {
            int64_t v =
                f->prop >= 0 ? p->nodes[p->props[f->prop].value].minlen : p->nodes[n->child].minlen;
            return sat_add(sat_add(v, rest), (f->phase == 3 ? 1 : 0) + 1);
        }
        case 5:
        case 6:
            return sat_add(rest, 1);
        case 7: {
            if (rest) return rest; /* "," already given; '}' balances the extra comma */
            int64_t best = INT64_MAX / 4;
            for (int32_t k = 0; k < n->n; k++)
                if (!(f->seen >> k & 1)) {
                    const cons_prop *pr = &p->props[n->first + k];
                    int64_t c = (int64_t)pr->len + 3 + p->nodes[pr->value].minlen;
                    if (c < best) best = c;
                }
            if (n->child >= 0 && 3 + p->nodes[n->child].minlen < best)
                best = 3 + p->nodes[n->child].minlen;
            return sat_add(best, 1);
        }
        default: { /* 2: inside a key */
            int64_t best = INT64_MAX / 4;
            for (int32_t k = f->lo; k < f->hi; k++) {
                int32_t bit = k - n->first;
                if (f->seen >> bit & 1) continue;
                const cons_prop *pr = &p->props[k];
                int64_t c = (int64_t)pr->len - f->pos + 2 + p->nodes[pr->value].minlen;
                c = sat_add(c, obj_req_rest(p, n, f->seen | 1ull << bit));
                if (c < best) best = c;
            }
            if (f->flags) {
                int64_t c = (int64_t)f->u8 +
                            (f->esc == 1   ? 1
                             : f->esc >= 2 ? f->esc - 1
                                           : 0) +
                            2 + p->nodes[n->child].minlen;
                c = sat_add(c, rest);
                if (c < best) best = c;
            }
            return sat_add(best, 1);
        }
        }
    }
    }
    (void)top;
    return 0;
}

static int64_t st_rem(const cons_program *p, const cons_state *s) {
    int64_t m = 0;
    for (int32_t i = 0; i < s->depth; i++)
        m = sat_add(m, frame_rem(p, &s->f[i], i == s->depth - 1));
    return m;
}

/* ------------------------------------------------------------------------------------ */
/* matchers */

cons_matcher *cons_matcher_new(cons_program *p, chatd_error *err) {
    cons_matcher *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->p = p;
    atomic_fetch_add(&p->refs, 1);
    uint32_t L = p->cv->maxlen + 2;
    m->cur = malloc(CONS_MAX_STATES * sizeof *m->cur);
    m->out.v = malloc(CONS_MAX_STATES * sizeof *m->out.v);
    m->lvl_off = malloc(L * sizeof *m->lvl_off);
    m->lvl_n = malloc(L * sizeof *m->lvl_n);
    m->lvl_rem = malloc(L * sizeof *m->lvl_rem);
    m->path = malloc(L);
    m->cand_id = malloc((size_t)p->cv->n_vocab * sizeof *m->cand_id);
    m->cand_rem = malloc((size_t)p->cv->n_vocab * sizeof *m->cand_rem);
    m->arena_cap = 1 << 16;
    m->arena = malloc(m->arena_cap);
    if (!m->cur || !m->out.v || !m->lvl_off || !m->lvl_n || !m->lvl_rem || !m->path ||
        !m->cand_id || !m->cand_rem || !m->arena)
        goto oom;
    memset(&m->cur[0], 0, STATE_HEAD);
    if (!st_push(p, &m->cur[0], p->root)) goto oom;
    m->n_cur = 1;
    return m;
oom:
    cons_matcher_free(m);
    chatd_errorf(err, "out of memory starting a constrained generation");
    return NULL;
}

void cons_matcher_free(cons_matcher *m) {
    if (!m) return;
    if (m->p) cons_program_release(m->p);
    free(m->cur);
    free(m->out.v);
    free(m->lvl_off);
    free(m->lvl_n);
    free(m->lvl_rem);
    free(m->path);
    free(m->cand_id);
    free(m->cand_rem);
    free(m->arena);
    free(m);
}

size_t cons_mask_words(const cons_matcher *m) {
    return m->p->cv->words;
}

int64_t cons_remaining(const cons_matcher *m) {
    if (m->ended) return 0;
    int64_t best = -1;
    for (int i = 0; i < m->n_cur; i++) {
        int64_t r = st_rem(m->p, &m->cur[i]);
        if (best < 0 || r < best) best = r;
    }
    return best;
}

bool cons_complete(const cons_matcher *m) {
    return cons_remaining(m) == 0;
}

bool cons_finished(const cons_matcher *m) {
    if (m->ended) return true;
    if (m->n_cur == 0) return false;
    for (int i = 0; i < m->n_cur; i++)
        if (m->cur[i].depth != 0) return false;
    return true;
}

/* Feeds one byte to every state of a packed set; the results land in m->out. */
static void set_feed(cons_matcher *m, const unsigned char *set, int n, int c) {
    m->out.n = 0;
    cons_state s;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const cons_state *in = (const cons_state *)(const void *)(set + o);
        size_t sz = STATE_SIZE(in->depth);
        memcpy(&s, in, sz);
        st_feed(m->p, &s, c, &m->out);
        o += sz;
    }
}

static size_t set_size(const unsigned char *set, int n) {
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += STATE_SIZE(((const cons_state *)(const void *)(set + o))->depth);
    return o;
}

/* Packs m->out at arena offset off; false when memory runs out. */
static bool arena_put(cons_matcher *m, size_t off, size_t *end) {
    size_t need = off;
    for (int i = 0; i < m->out.n; i++) need += STATE_SIZE(m->out.v[i].depth);
    if (need > m->arena_cap) {
        size_t nc = m->arena_cap;
        while (nc < need) nc *= 2;
        unsigned char *na = realloc(m->arena, nc);
        if (!na) return false;
        m->arena = na;
        m->arena_cap = nc;
    }
    size_t o = off;
    for (int i = 0; i < m->out.n; i++) {
        size_t sz = STATE_SIZE(m->out.v[i].depth);
        memcpy(m->arena + o, &m->out.v[i], sz);
        o += sz;
    }
    *end = o;
    return true;
}

static int64_t set_min_rem(const cons_matcher *m, const unsigned char *set, int n) {
    int64_t best = INT64_MAX;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const cons_state *s = (const cons_state *)(const void *)(set + o);
        int64_t r = st_rem(m->p, s);
        if (r < best) best = r;
        o += STATE_SIZE(s->depth);
    }
    return best;
}

/* When m->out holds one state inside the body of a string without a length limit, the
 * bytes it still needs (plain characters leave that unchanged); else -1. */
static int64_t free_string_rem(const cons_matcher *m) {
    if (m->out.n != 1 || m->out.v[0].depth == 0) return -1;
    const cons_state *s = &m->out.v[0];
    const cons_frame *f = &s->f[s->depth - 1];
    const cons_gnode *n = &m->p->nodes[f->node];
    if (n->kind != K_STRING || f->phase != 1 || n->fmt || f->esc || f->u8 || n->max >= 0) return -1;
    return st_rem(m->p, s);
}

/* First index after i in list whose token does not start with the k bytes pre. */
static int32_t skip_prefix(const cons_vocab *cv, const int32_t *list, int32_t n, int32_t i,
                           const unsigned char *pre, uint32_t k) {
    int32_t lo = i + 1, hi = n; /* answer in [lo, hi] */
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int32_t t = list[mid];
        uint32_t len = cv->off[t + 1] - cv->off[t];
        bool has = len >= k && memcmp(cv->bytes + cv->off[t], pre, k) == 0;
        if (has)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A token the walk found possible: allowed at once without a budget, else kept with the
 * bytes it leaves to write, for cons_allowed to decide. */
static void walk_accept(cons_matcher *m, int32_t t, int64_t rem, int64_t budget, uint32_t *mask) {
    if (budget < 0) {
        mask[t / 32] |= 1u << (t % 32);
        return;
    }
    m->cand_id[m->n_cand] = t;
    m->cand_rem[m->n_cand++] = rem;
}

/* Walks the tokens of list (sorted by bytes) from the current states, passing those that
 * may come next to walk_accept. 0, or -1 when memory runs out. */
static int walk(cons_matcher *m, const int32_t *list, int32_t n_list, int64_t budget,
                uint32_t *mask) {
    const cons_vocab *cv = m->p->cv;
    size_t end;
    m->out.n = m->n_cur;
    memcpy(m->out.v, m->cur, (size_t)m->n_cur * sizeof *m->cur);
    if (!arena_put(m, 0, &end)) return -1;
    m->lvl_off[0] = 0;
    m->lvl_n[0] = m->n_cur;
    m->lvl_rem[0] = free_string_rem(m);
    uint32_t valid = 0; /* levels 0..valid hold states for path[0..valid) */
    for (int32_t i = 0; i < n_list;) {
        int32_t t = list[i];
        const unsigned char *b = (const unsigned char *)cv->bytes + cv->off[t];
        uint32_t len = cv->off[t + 1] - cv->off[t];
        uint32_t d = 0;
        while (d < valid && d < len && m->path[d] == b[d]) d++;
        bool ok = true;
        uint32_t j = d;
        for (; j < len; j++) {
            if (m->lvl_rem[j] >= 0 && cv->plain_from[t] <= j) {
                /* inside a free string, and the rest of the token is plain characters */
                walk_accept(m, t, m->lvl_rem[j], budget, mask);
                break;
            }
            const unsigned char *set = m->arena + m->lvl_off[j];
            set_feed(m, set, m->lvl_n[j], b[j]);
            if (m->out.n == 0) {
                ok = false;
                break;
            }
            size_t next = m->lvl_off[j] + set_size(set, m->lvl_n[j]);
            if (!arena_put(m, next, &end)) return -1;
            m->lvl_off[j + 1] = next;
            m->lvl_n[j + 1] = m->out.n;
            m->lvl_rem[j + 1] = free_string_rem(m);
            m->path[j] = b[j];
        }
        if (ok && j < len) { /* taken by the shortcut */
            valid = j;
            i++;
        } else if (ok) {
            valid = len;
            int64_t rem =
                budget < 0 ? 0 : set_min_rem(m, m->arena + m->lvl_off[len], m->lvl_n[len]);
            walk_accept(m, t, rem, budget, mask);
            i++;
        } else {
            valid = j;
            m->path[j] = b[j];
            i = skip_prefix(cv, list, n_list, i, m->path, j + 1);
        }
    }
    return 0;
}

/* The range [lo, hi) of the sorted vocabulary whose tokens begin with byte c. */
static void prefix_range(const cons_vocab *cv, unsigned char c, int32_t *lo, int32_t *hi) {
    int32_t a = 0, b = cv->n_sorted;
    while (a < b) { /* first token whose first byte is >= c */
        int32_t mid = a + (b - a) / 2;
        if ((unsigned char)cv->bytes[cv->off[cv->sorted[mid]]] < c)
            a = mid + 1;
        else
            b = mid;
    }
    *lo = a;
    b = cv->n_sorted;
    while (a < b) { /* first token whose first byte is > c */
        int32_t mid = a + (b - a) / 2;
        if ((unsigned char)cv->bytes[cv->off[cv->sorted[mid]]] <= c)
            a = mid + 1;
        else
            b = mid;
    }
    *hi = a;
}

/* Admits a class of tokens at once: those of bits, or of the plain ones with at most
 * max_chars characters when max_chars >= 0. */
static void group_admit(const cons_vocab *cv, const uint32_t *bits, int64_t max_chars,
                        uint32_t *mask) {
    if (max_chars < 0) {
        for (size_t w = 0; w < cv->words; w++) mask[w] |= bits[w];
        return;
    }
    for (int32_t k = 0; k < cv->n_plain; k++) {
        int32_t id = cv->plain[k];
        if (cv->nchars[id] <= max_chars) mask[id / 32] |= 1u << (id % 32);
    }
}

int64_t cons_allowed(cons_matcher *m, int64_t budget, uint32_t *mask) {
    const cons_program *p = m->p;
    const cons_vocab *cv = p->cv;
    memset(mask, 0, cv->words * sizeof *mask);
    if (m->ended || m->n_cur == 0 || budget == 0) return 0;
    const int32_t *list = cv->sorted;
    int32_t n_list = cv->n_sorted;
    /* a class admitted wholesale: its bits, a character limit, the bytes it leaves */
    const uint32_t *gbits = NULL;
    int64_t gmax = -1, grem = 0;
    /* tokens in the class that may also take another path (continue a declared key, a
     * terminator's partial match) are walked too: they begin with one of these bytes */
    unsigned char extra[CONS_MAX_PROPS];
    int n_extra = 0;
    if (m->n_cur == 1 && m->cur[0].depth > 0) {
        const cons_state *s = &m->cur[0];
        const cons_frame *f = &s->f[s->depth - 1];
        const cons_gnode *n = &p->nodes[f->node];
        cons_state t;
        if (n->kind == K_STRING && f->phase == 1 && !n->fmt && !f->esc && !f->u8) {
            /* a string body: plain characters keep the state but for the count */
            gbits = cv->plain_bits;
            gmax = n->max < 0 ? -1 : n->max - f->count;
            /* what the class leaves at worst: a one-character token, which still counts
             * towards minLength */
            grem = st_rem(p, s) - (f->count < n->min ? 1 : 0);
            list = cv->str_walk;
            n_list = cv->n_str_walk;
        } else if (n->kind == K_OBJECT && f->phase == 2 && f->flags && !f->esc && !f->u8) {
            /* a key that may be any string: plain characters are always possible (they may
             * leave the declared names behind, so they leave what a free key leaves) */
            memcpy(&t, s, STATE_SIZE(s->depth));
            t.f[t.depth - 1].lo = t.f[t.depth - 1].hi;
            gbits = cv->plain_bits;
            grem = st_rem(p, &t);
            list = cv->str_walk;
            n_list = cv->n_str_walk;
            for (int32_t k = f->lo; k < f->hi; k++) {
                const cons_prop *pr = &p->props[k];
                if (pr->len <= (size_t)f->pos || (f->seen >> (k - n->first) & 1)) continue;
                unsigned char c = (unsigned char)pr->name[f->pos];
                if (n_extra == 0 || extra[n_extra - 1] != c) extra[n_extra++] = c; /* sorted */
            }
        } else if (n->kind == K_UNTIL) {
            /* free text: a token without the terminator's first byte leaves no partial
             * match behind unless it continues the match, and those begin with the
             * terminator's next byte: they are walked too */
            const cons_until_class *u = &p->until[f->node];
            memcpy(&t, s, STATE_SIZE(s->depth));
            t.f[t.depth - 1].pos = 0;
            gbits = u->free_bits;
            grem = st_rem(p, &t);
            list = u->walk;
            n_list = u->n_walk;
            if (f->pos > 0) extra[n_extra++] = (unsigned char)p->strs[n->first].s[f->pos];
        }
    }
    m->n_cand = 0;
    if (walk(m, list, n_list, budget, mask) < 0) return -1;
    bool complete = cons_complete(m); /* end-of-generation tokens may come */
    for (int k = 0; k < n_extra; k++) {
        int32_t lo = 0, hi = 0;
        prefix_range(cv, extra[k], &lo, &hi);
        if (walk(m, cv->sorted + lo, hi - lo, budget, mask) < 0) return -1;
    }
    if (budget < 0) {
        if (gbits) group_admit(cv, gbits, gmax, mask);
    } else {
        /* within the budget: what still fits; when nothing does (the shortest completion
         * in bytes is longer than the tokens left), what brings the end nearest */
        int64_t thr = budget - 1, best = gbits ? grem : INT64_MAX;
        for (int32_t k = 0; k < m->n_cand; k++)
            if (m->cand_rem[k] < best) best = m->cand_rem[k];
        if (complete) best = 0;
        if (best > thr) thr = best;
        for (int32_t k = 0; k < m->n_cand; k++)
            if (m->cand_rem[k] <= thr) mask[m->cand_id[k] / 32] |= 1u << (m->cand_id[k] % 32);
        if (gbits && grem <= thr) group_admit(cv, gbits, gmax, mask);
    }
    if (complete)
        for (size_t i = 0; i < cv->n_eog; i++) mask[cv->eog[i] / 32] |= 1u << (cv->eog[i] % 32);
    int64_t allowed = 0; /* the lists walked may overlap: count the bits */
    for (size_t w = 0; w < cv->words; w++) allowed += __builtin_popcount(mask[w]);
    return allowed;
}

int32_t cons_mask_nth(const uint32_t *mask, size_t words, int64_t k) {
    for (size_t w = 0; w < words; w++) {
        int c = __builtin_popcount(mask[w]);
        if (k >= c) {
            k -= c;
            continue;
        }
        for (int bit = 0; bit < 32; bit++)
            if (mask[w] >> bit & 1 && k-- == 0) return (int32_t)(w * 32 + (size_t)bit);
    }
    return -1;
}

int cons_advance_bytes(cons_matcher *m, const char *bytes, size_t len) {
    if (m->ended) return len ? -1 : 0;
    size_t end;
    m->out.n = m->n_cur;
    memcpy(m->out.v, m->cur, (size_t)m->n_cur * sizeof *m->cur);
    if (!arena_put(m, 0, &end)) return -1;
    int n = m->n_cur;
    for (size_t i = 0; i < len; i++) {
        set_feed(m, m->arena, n, (unsigned char)bytes[i]);
        if (m->out.n == 0) return -1;
        if (!arena_put(m, 0, &end)) return -1;
        n = m->out.n;
    }
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const cons_state *s = (const cons_state *)(const void *)(m->arena + o);
        memcpy(&m->cur[i], s, STATE_SIZE(s->depth));
        o += STATE_SIZE(s->depth);
    }
    m->n_cur = n;
    return 0;
}

int cons_advance(cons_matcher *m, int32_t id) {
    const cons_vocab *cv = m->p->cv;
    if (id < 0 || id >= cv->n_vocab) return -1;
    if (cv->is_eog[id]) {
        if (!cons_complete(m)) return -1;
        m->ended = true;
        return 0;
    }
    uint32_t len = cv->off[id + 1] - cv->off[id];
    if (len == 0) return -1; /* a control token is never part of constrained output */
    return cons_advance_bytes(m, cv->bytes + cv->off[id], len);
}
