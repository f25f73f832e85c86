/* chatparse.c - the streaming parser of generated chat text (see chatparse.h).
 *
 * Every byte goes through two state machines, one byte at a time, so the result cannot
 * depend on how the text was cut into fragments:
 *   layer 1 (cp_l1_byte) separates the <think> block and hands the rest to
 *   layer 2 (cp_l2_byte), which finds tool calls in the format of the template.
 * A tool call being parsed keeps its text in `raw` until it is resolved: dropped when
 * it turns into a call, emitted as content when it turns out malformed (from raw_unc on:
 * bytes a live call has already consumed are not given back). A strict incremental JSON
 * recognizer (cp_json) finds the members of a call object and where its arguments begin
 * and end, so the arguments go out exactly as written. Deltas are queued while bytes are
 * processed and handed to the caller at the end of each cp_feed / cp_finish, adjacent
 * text of the same kind merged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chatparse.h"

#define CP_JSON_MAX_DEPTH 64
#define CP_NAME_MAX       256 /* longest function name accepted (R1 name line) */
#define CP_TYPE_MAX       32  /* longest R1 call type word ("function") */
#define CP_ID_DIGITS      24

static const char CP_THINK_OPEN[] = "<think>";
static const char CP_THINK_CLOSE[] = "</think>";
static const char CP_HERMES_OPEN[] = "<tool_call>";
static const char CP_HERMES_CLOSE[] = "</tool_call>";
static const char CP_PYTHON_TAG[] = "<|python_tag|>";
static const char CP_R1_CALLS_BEGIN[] = "<｜tool▁calls▁begin｜>";
static const char CP_R1_CALLS_END[] = "<｜tool▁calls▁end｜>";
static const char CP_R1_CALL_BEGIN[] = "<｜tool▁call▁begin｜>";
static const char CP_R1_CALL_END[] = "<｜tool▁call▁end｜>";
static const char CP_R1_SEP[] = "<｜tool▁sep｜>";

/* ---- small helpers ---- */

typedef struct cp_buf {
    char *s;
    size_t n, cap;
} cp_buf;

static bool cp_is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool cp_is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool cp_is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool cp_all_ws(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!cp_is_ws((unsigned char)s[i])) return false;
    return true;
}

/* Appends n bytes (keeping a NUL after them); false when out of memory. */
static bool cp_buf_put(cp_buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) return false;
        b->s = t;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return true;
}

static char *cp_strndup(const char *s, size_t n) {
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, s, n);
        t[n] = 0;
    }
    return t;
}

/* ---- an incremental, strict JSON recognizer ----
 * Fed one byte at a time, it reports structural events of the outermost object's
 * members: where a key starts and ends, and where each member's value starts and ends. */

enum {
    CP_J_VAL,       /* a value, after optional whitespace */
    CP_J_OBJ_FIRST, /* after '{': a key or '}' */
    CP_J_OBJ_KEY,   /* after ',' in an object: a key */
    CP_J_COLON,     /* after a key */
    CP_J_OBJ_NEXT,  /* after a member: ',' or '}' */
    CP_J_ARR_FIRST, /* after '[': a value or ']' */
    CP_J_ARR_NEXT,  /* after an element: ',' or ']' */
    CP_J_STR,
    CP_J_ESC,
    CP_J_HEX,
    CP_J_NUM,
    CP_J_LIT,
    CP_J_DONE /* the outermost value is complete */
};

enum { CP_N_MINUS, CP_N_ZERO, CP_N_INT, CP_N_FRAC0, CP_N_FRAC, CP_N_EXP0, CP_N_EXPS, CP_N_EXP };

#define CP_JE_ERR       1u  /* the byte cannot continue valid JSON */
#define CP_JE_KEY_START 2u  /* the byte opens a key of the outermost object */
#define CP_JE_KEY_END   4u  /* the byte closes that key */
#define CP_JE_VAL_START 8u  /* the byte starts a member's value */
#define CP_JE_VAL_END   16u /* the byte ends a member's value */
#define CP_JE_VAL_ENDED 32u /* a member's value (a number) ended just before the byte */
#define CP_JE_DONE      64u /* the byte completes the outermost value */

typedef struct cp_json {
    int st, num, hex, depth, lit_pos;
    bool key; /* the string being read is an object key */
    const char *lit;
    char stack[CP_JSON_MAX_DEPTH];
} cp_json;

/* A value has just ended at the current depth: the state after it, and its events. */
static unsigned cp_json_value_done(cp_json *j) {
    if (j->depth == 0) {
        j->st = CP_J_DONE;
        return CP_JE_DONE;
    }
    j->st = j->stack[j->depth - 1] == '{' ? CP_J_OBJ_NEXT : CP_J_ARR_NEXT;
    return j->depth == 1 ? CP_JE_VAL_END : 0;
}

/* Advances the recognizer by one byte; returns CP_JE_* events. */
static unsigned cp_json_push(cp_json *j, unsigned char c) {
    unsigned ev = 0;
    for (;;) {
        switch (j->st) {
        case CP_J_VAL:
            if (cp_is_ws(c)) return ev;
            if (j->depth == 1) ev |= CP_JE_VAL_START;
            if (c == '{' || c == '[') {
                if (j->depth == CP_JSON_MAX_DEPTH) return ev | CP_JE_ERR;
                j->stack[j->depth++] = (char)c;
                j->st = c == '{' ? CP_J_OBJ_FIRST : CP_J_ARR_FIRST;
                return ev;
            }
            if (c == '"') {
                j->st = CP_J_STR;
                j->key = false;
                return ev;
            }
            if (c == '-' || (c >= '0' && c <= '9')) {
                j->st = CP_J_NUM;
                j->num = c == '-' ? CP_N_MINUS : c == '0' ? CP_N_ZERO : CP_N_INT;
                return ev;
            }
            if (c == 't' || c == 'f' || c == 'n') {
                j->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
                j->lit_pos = 1;
                j->st = CP_J_LIT;
                return ev;
            }
            return ev | CP_JE_ERR;
        case CP_J_OBJ_FIRST:
        case CP_J_OBJ_KEY:
            if (cp_is_ws(c)) return ev;
            if (c == '"') {
                j->st = CP_J_STR;
                j->key = true;
                return ev | (j->depth == 1 ? CP_JE_KEY_START : 0);
            }
            if (c == '}' && j->st == CP_J_OBJ_FIRST) {
                j->depth--;
                return ev | cp_json_value_done(j);
            }
            return ev | CP_JE_ERR;
        case CP_J_COLON:
            if (cp_is_ws(c)) return ev;
            if (c != ':') return ev | CP_JE_ERR;
            j->st = CP_J_VAL;
            return ev;
        case CP_J_OBJ_NEXT:
            if (cp_is_ws(c)) return ev;
            if (c == ',') {
                j->st = CP_J_OBJ_KEY;
                return ev;
            }
            if (c != '}') return ev | CP_JE_ERR;
            j->depth--;
            return ev | cp_json_value_done(j);
        case CP_J_ARR_FIRST:
            if (cp_is_ws(c)) return ev;
            if (c == ']') {
                j->depth--;
                return ev | cp_json_value_done(j);
            }
            j->st = CP_J_VAL;
            continue;
        case CP_J_ARR_NEXT:
            if (cp_is_ws(c)) return ev;
            if (c == ',') {
                j->st = CP_J_VAL;
                return ev;
            }
            if (c != ']') return ev | CP_JE_ERR;
            j->depth--;
            return ev | cp_json_value_done(j);
        case CP_J_STR:
            if (c == '"') {
                if (!j->key) return ev | cp_json_value_done(j);
                j->st = CP_J_COLON;
                return ev | (j->depth == 1 ? CP_JE_KEY_END : 0);
            }
            if (c == '\\') j->st = CP_J_ESC;
            return c < 0x20 ? ev | CP_JE_ERR : ev;
        case CP_J_ESC:
            if (c == 'u') {
                j->st = CP_J_HEX;
                j->hex = 4;
                return ev;
            }
            if (c == 0 || !strchr("\"\\/bfnrt", c)) return ev | CP_JE_ERR;
            j->st = CP_J_STR;
            return ev;
        case CP_J_HEX:
            if (!cp_is_hex(c)) return ev | CP_JE_ERR;
            if (--j->hex == 0) j->st = CP_J_STR;
            return ev;
        case CP_J_NUM: {
            bool digit = c >= '0' && c <= '9', ended = false;
            switch (j->num) {
            case CP_N_MINUS:
                if (!digit) return ev | CP_JE_ERR;
                j->num = c == '0' ? CP_N_ZERO : CP_N_INT;
                return ev;
            case CP_N_ZERO:
            case CP_N_INT:
            case CP_N_FRAC:
                if (digit && j->num != CP_N_ZERO) return ev;
                if (c == '.' && j->num != CP_N_FRAC)
                    j->num = CP_N_FRAC0;
                else if (c == 'e' || c == 'E')
                    j->num = CP_N_EXP0;
                else
                    ended = true;
                if (!ended) return ev;
                break;
            case CP_N_FRAC0:
                if (!digit) return ev | CP_JE_ERR;
                j->num = CP_N_FRAC;
                return ev;
            case CP_N_EXP0:
                if (c == '+' || c == '-') {
                    j->num = CP_N_EXPS;
                    return ev;
                }
                if (!digit) return ev | CP_JE_ERR;
                j->num = CP_N_EXP;
                return ev;
            case CP_N_EXPS:
                if (!digit) return ev | CP_JE_ERR;
                j->num = CP_N_EXP;
                return ev;
            default: /* CP_N_EXP */
                if (digit) return ev;
                break;
            }
            /* the number ended before c: c belongs to what follows it */
            unsigned d = cp_json_value_done(j);
            ev |= (d & CP_JE_VAL_END) ? CP_JE_VAL_ENDED : d;
            continue;
        }
        case CP_J_LIT:
            if (c != (unsigned char)j->lit[j->lit_pos]) return ev | CP_JE_ERR;
            if (j->lit[++j->lit_pos]) return ev;
            return ev | cp_json_value_done(j);
        default: /* CP_J_DONE */
            return ev | CP_JE_ERR;
        }
    }
}

/* ---- the parser ---- */

enum { CP_KEY_OTHER, CP_KEY_NAME, CP_KEY_ARGS };

/* The tool call being parsed. Offsets are into the parser's raw buffer. */
typedef struct cp_call {
    cp_json j;
    bool args_only; /* R1: the JSON object is the arguments; the name came before */
    int key;        /* kind of the member whose value is being read */
    size_t key_start, val_start;
    bool name_seen;
    char *name; /* decoded, once complete */
    bool args_started, args_done, args_str;
    size_t args_start, args_end;
    char *args_dec; /* arguments written as a JSON string: the decoded string */
    bool committed; /* live: CP_TOOL_START has gone out */
    int index;
    size_t args_sent; /* live: raw offset up to which the arguments went out */
} cp_call;

/* A complete call held until the end of the reply (LLAMA3 / GENERIC without live_args). */
typedef struct cp_held {
    char *name;
    char *args;
    size_t args_len;
} cp_held;

/* A queued delta. */
typedef struct cp_out {
    cp_kind kind;
    int index;
    char id[8 + CP_ID_DIGITS];
    char *name;
    cp_buf text;
} cp_out;

/* Held-back text while scanning for markers: a whitespace run, then a marker prefix. */
typedef struct cp_scan {
    cp_buf ws;
    cp_buf part;
} cp_scan;

enum { CP_RS_START, CP_RS_LEAD, CP_RS_THINK, CP_RS_AFTER, CP_RS_PASS };

enum {
    CP_TS_PASS,    /* plain content to the end */
    CP_TS_SCAN,    /* HERMES / R1 content, looking for a call marker */
    CP_TS_H_PRE,   /* after <tool_call>: whitespace, then '{' */
    CP_TS_OBJ,     /* a call object {"name":..., "arguments":...} */
    CP_TS_H_POST,  /* after the object: whitespace, then </tool_call> */
    CP_TS_L_START, /* LLAMA3 / GENERIC: the start of the reply */
    CP_TS_L_TAG,   /* <|python_tag|> */
    CP_TS_L_PRE,   /* after the tag: whitespace, then '{' */
    CP_TS_L_SEP,   /* after a call: whitespace or ';', then the next '{' or the end */
    CP_TS_R_BLOCK, /* R1 block: whitespace, then the next call or the end of the block */
    CP_TS_R_TYPE,  /* "function" then the separator */
    CP_TS_R_NAME,  /* the name, to the end of its line */
    CP_TS_R_FENCE, /* optional ```json, then '{' */
    CP_TS_R_ARGS,  /* the arguments object */
    CP_TS_R_POST   /* optional ```, then the end of the call */
};

struct cp_parser {
    cp_options o;
    uint64_t rng;
    bool oom, failed, finished;
    /* layer 1: reasoning */
    int rs;
    cp_buf lead; /* CP_RS_START: whitespace and a prefix of <think> so far */
    cp_scan rscan;
    /* layer 2: tool calls */
    int ts;
    cp_scan cscan;
    bool after_call; /* no content but whitespace since the last call */
    cp_buf raw;      /* text of the call being parsed */
    size_t raw_unc;  /* raw[raw_unc..] has not been consumed by a live call */
    cp_buf tok;      /* a literal being matched */
    int fence;       /* R1: backticks of a fence; 4 = after the fence's language word */
    int type_len;
    cp_buf name; /* R1: the name line */
    int block_calls;
    cp_call call;
    cp_held *held;
    int n_held, cap_held;
    int n_calls;
    /* queued output */
    cp_out *q;
    size_t nq, capq;
};

static uint64_t cp_rand(cp_parser *p) {
    uint64_t x = p->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static cp_out *cp_q_new(cp_parser *p, cp_kind kind, int index) {
    if (p->nq == p->capq) {
        size_t cap = p->capq ? p->capq * 2 : 16;
        cp_out *q = realloc(p->q, cap * sizeof *q);
        if (!q) {
            p->oom = true;
            return NULL;
        }
        p->q = q;
        p->capq = cap;
    }
    cp_out *o = &p->q[p->nq++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->index = index;
    return o;
}

/* Queues text of a kind, merged with the previous delta when it is the same. */
static void cp_q_text(cp_parser *p, cp_kind kind, int index, const char *s, size_t n) {
    if (n == 0 || p->oom) return;
    cp_out *o = p->nq ? &p->q[p->nq - 1] : NULL;
    if (!o || o->kind != kind || o->index != index || kind == CP_TOOL_START)
        o = cp_q_new(p, kind, index);
    if (o && !cp_buf_put(&o->text, s, n)) p->oom = true;
}

/* Queues CP_TOOL_START for a new call with a fresh id; returns the call's index. */
static int cp_q_start(cp_parser *p, const char *name) {
    int index = p->n_calls++;
    cp_out *o = name ? cp_q_new(p, CP_TOOL_START, index) : NULL;
    if (!o) {
        p->oom = true; /* a call without its name only happens when memory ran out */
        return index;
    }
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    memcpy(o->id, "call_", 5);
    for (int i = 0; i < CP_ID_DIGITS; i++) o->id[5 + i] = digits[cp_rand(p) % 62];
    o->id[5 + CP_ID_DIGITS] = 0;
    o->name = cp_strndup(name, strlen(name));
    if (!o->name) p->oom = true;
    return index;
}

static void cp_content(cp_parser *p, const char *s, size_t n) {
    if (n == 0) return;
    if (!cp_all_ws(s, n)) p->after_call = false;
    cp_q_text(p, CP_CONTENT, 0, s, n);
}

static void cp_text(cp_parser *p, cp_kind kind, const char *s, size_t n) {
    if (kind == CP_CONTENT)
        cp_content(p, s, n);
    else
        cp_q_text(p, kind, 0, s, n);
}

static void cp_add(cp_parser *p, cp_buf *b, const char *s, size_t n) {
    if (!cp_buf_put(b, s, n)) p->oom = true;
}

/* ---- scanning text for markers, holding back whitespace and marker prefixes ---- */

/* Passes scanned-over text on, holding back a trailing whitespace run. */
static void cp_scan_out(cp_parser *p, cp_scan *sc, const char *s, size_t n, cp_kind kind) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && cp_is_ws((unsigned char)s[j])) j++;
        if (j == n) {
            cp_add(p, &sc->ws, s + i, n - i);
            return;
        }
        while (j < n && !cp_is_ws((unsigned char)s[j])) j++;
        cp_text(p, kind, sc->ws.s, sc->ws.n);
        sc->ws.n = 0;
        /* s[i..j) is whitespace then non-whitespace */
        cp_text(p, kind, s + i, j - i);
        i = j;
    }
}

/* Scans one byte of text for the markers: returns the index of a marker that the byte
 * completes (the whitespace right before it stays in sc->ws), or -1; text that is
 * certainly not part of a marker goes out as kind. */
static int cp_scan_byte(cp_parser *p, cp_scan *sc, unsigned char c, const char *const *marks,
                        int n_marks, cp_kind kind) {
    if (sc->part.n == 0) {
        bool starts = false;
        for (int m = 0; m < n_marks; m++) starts |= (unsigned char)marks[m][0] == c;
        if (!starts) {
            cp_scan_out(p, sc, (const char *)&c, 1, kind);
            return -1;
        }
    }
    if (!cp_buf_put(&sc->part, (const char *)&c, 1)) {
        p->oom = true;
        return -1;
    }
    const char *s = sc->part.s;
    size_t len = sc->part.n;
    for (size_t i = 0; i < len; i++)
        for (int m = 0; m < n_marks; m++)
            if (strlen(marks[m]) == len - i && !memcmp(s + i, marks[m], len - i)) {
                cp_scan_out(p, sc, s, i, kind);
                sc->part.n = 0;
                return m;
            }
    for (size_t i = 0; i < len; i++)
        for (int m = 0; m < n_marks; m++)
            if (strlen(marks[m]) > len - i && !memcmp(s + i, marks[m], len - i)) {
                /* keep the longest suffix that may still become a marker */
                cp_scan_out(p, sc, s, i, kind);
                memmove(sc->part.s, s + i, len - i);
                sc->part.n = len - i;
                return -1;
            }
    cp_scan_out(p, sc, s, len, kind);
    sc->part.n = 0;
    return -1;
}

/* The end of the text: releases a held marker prefix; the held whitespace run is
 * dropped or released. */
static void cp_scan_flush(cp_parser *p, cp_scan *sc, cp_kind kind, bool drop_ws) {
    cp_scan_out(p, sc, sc->part.s, sc->part.n, kind);
    sc->part.n = 0;
    if (!drop_ws) cp_text(p, kind, sc->ws.s, sc->ws.n);
    sc->ws.n = 0;
}

/* Adds c to the literal being matched: the index of the literal it completes, -1 while
 * it is a proper prefix of one, -2 when none can match any more. */
static int cp_tok_match(cp_parser *p, unsigned char c, const char *const *lits, int n) {
    if (!cp_buf_put(&p->tok, (const char *)&c, 1)) {
        p->oom = true;
        return -2;
    }
    int r = -2;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(lits[i]);
        if (l >= p->tok.n && !memcmp(lits[i], p->tok.s, p->tok.n)) {
            if (l == p->tok.n) return i;
            r = -1;
        }
    }
    return r;
}

/* ---- tool calls ---- */

static void cp_call_reset(cp_parser *p) {
    free(p->call.name);
    free(p->call.args_dec);
    memset(&p->call, 0, sizeof p->call);
}

static void cp_held_clear(cp_parser *p) {
    for (int i = 0; i < p->n_held; i++) {
        free(p->held[i].name);
        free(p->held[i].args);
    }
    p->n_held = 0;
}

/* The arguments of the current call as they go out: decoded string or raw text. */
static const char *cp_call_args(cp_parser *p, size_t *len) {
    cp_call *cl = &p->call;
    if (cl->args_str) {
        *len = strlen(cl->args_dec);
        return cl->args_dec;
    }
    *len = cl->args_end - cl->args_start;
    return p->raw.s + cl->args_start;
}

/* Emits the current call (complete) unless it went out live; clears the call text. */
static void cp_call_complete(cp_parser *p) {
    cp_call *cl = &p->call;
    if (!cl->committed) {
        size_t n = 0;
        const char *a = cp_call_args(p, &n);
        int index = cp_q_start(p, cl->name);
        cp_q_text(p, CP_TOOL_ARGS, index, a, n);
    }
    cp_call_reset(p);
    p->raw.n = 0;
    p->raw_unc = 0;
    p->after_call = true;
}

/* Keeps the current complete call until the end of the reply (LLAMA3 / GENERIC). */
static void cp_call_hold(cp_parser *p) {
    if (p->n_held == p->cap_held) {
        int cap = p->cap_held ? p->cap_held * 2 : 4;
        cp_held *h = realloc(p->held, (size_t)cap * sizeof *h);
        if (!h) {
            p->oom = true;
            return;
        }
        p->held = h;
        p->cap_held = cap;
    }
    size_t n = 0;
    const char *a = cp_call_args(p, &n);
    cp_held *h = &p->held[p->n_held++];
    h->name = cp_strndup(p->call.name, strlen(p->call.name));
    h->args = cp_strndup(a, n);
    h->args_len = n;
    if (!h->name || !h->args) p->oom = true;
}

/* A member of the call object ended at raw offset end: checks and keeps its value. */
static int cp_member_end(cp_parser *p, size_t end) {
    cp_call *cl = &p->call;
    const char *v = p->raw.s + cl->val_start;
    if (cl->key == CP_KEY_NAME) {
        cJSON *j = cJSON_ParseWithLength(v, end - cl->val_start);
        if (cJSON_IsString(j) && j->valuestring[0]) {
            cl->name = cp_strndup(j->valuestring, strlen(j->valuestring));
            if (!cl->name) p->oom = true;
        }
        cJSON_Delete(j);
        return cl->name ? 0 : -1;
    }
    if (cl->key != CP_KEY_ARGS) return 0;
    cl->args_done = true;
    cl->args_end = end;
    if (!cl->args_str) return 0;
    /* arguments written as a string: it must hold a JSON object */
    cJSON *j = cJSON_ParseWithLength(v, end - cl->val_start);
    cJSON *o = cJSON_IsString(j) ? cJSON_ParseWithOpts(j->valuestring, NULL, true) : NULL;
    if (cJSON_IsObject(o)) {
        cl->args_dec = cp_strndup(j->valuestring, strlen(j->valuestring));
        if (!cl->args_dec) p->oom = true;
    }
    cJSON_Delete(o);
    cJSON_Delete(j);
    return cl->args_dec ? 0 : -1;
}

/* live_args: announces the call once possible and sends the arguments seen so far
 * (raw text up to offset upto). */
static void cp_call_live(cp_parser *p, size_t upto) {
    cp_call *cl = &p->call;
    if (!cl->committed) {
        if (!cl->name || !cl->args_started || (cl->args_str && !cl->args_done)) return;
        cl->committed = true;
        cl->index = cp_q_start(p, cl->name);
        cl->args_sent = cl->args_start;
        if (cl->args_str) cp_q_text(p, CP_TOOL_ARGS, cl->index, cl->args_dec, strlen(cl->args_dec));
    }
    p->raw_unc = upto;
    if (cl->args_str) return;
    size_t end = cl->args_done ? cl->args_end : upto;
    if (end > cl->args_sent) {
        cp_q_text(p, CP_TOOL_ARGS, cl->index, p->raw.s + cl->args_sent, end - cl->args_sent);
        cl->args_sent = end;
    }
}

static int cp_key_kind(const char *k, size_t n) {
    if (n == 4 && !memcmp(k, "name", 4)) return CP_KEY_NAME;
    if ((n == 9 && !memcmp(k, "arguments", 9)) || (n == 10 && !memcmp(k, "parameters", 10)))
        return CP_KEY_ARGS;
    return CP_KEY_OTHER;
}

/* Starts a call object (its '{' is the next byte). */
static void cp_call_begin(cp_parser *p, bool args_only) {
    cp_call_reset(p);
    p->call.args_only = args_only;
}

/* One byte (at raw offset k) of the call object: -1 malformed, 0 more to come, 1 done. */
static int cp_call_byte(cp_parser *p, unsigned char c, size_t k) {
    cp_call *cl = &p->call;
    unsigned ev = cp_json_push(&cl->j, c);
    if (ev & CP_JE_ERR) return -1;
    if (cl->args_only) {
        if (!cl->args_started) {
            cl->args_started = true;
            cl->args_start = k;
        }
        if (ev & CP_JE_DONE) {
            cl->args_done = true;
            cl->args_end = k + 1;
        }
    } else {
        if ((ev & CP_JE_VAL_ENDED) && cp_member_end(p, k) < 0) return -1;
        if (ev & CP_JE_KEY_START) cl->key_start = k;
        if (ev & CP_JE_KEY_END)
            cl->key = cp_key_kind(p->raw.s + cl->key_start + 1, k - cl->key_start - 1);
        if (ev & CP_JE_VAL_START) {
            cl->val_start = k;
            if (cl->key == CP_KEY_NAME) {
                if (cl->name_seen || c != '"') return -1;
                cl->name_seen = true;
            } else if (cl->key == CP_KEY_ARGS) {
                if (cl->args_started || (c != '{' && c != '"')) return -1;
                cl->args_started = true;
                cl->args_start = k;
                cl->args_str = c == '"';
            }
        }
        if ((ev & CP_JE_VAL_END) && cp_member_end(p, k + 1) < 0) return -1;
        if ((ev & CP_JE_DONE) && (!cl->name || !cl->args_done)) return -1;
    }
    if (p->o.live_args) cp_call_live(p, k + 1);
    return (ev & CP_JE_DONE) ? 1 : 0;
}

/* The call being parsed is malformed: its text not consumed by a live call becomes
 * content, and scanning goes on from the byte that broke it. */
static void cp_fail_call(cp_parser *p) {
    if (p->raw.n > p->raw_unc) cp_content(p, p->raw.s + p->raw_unc, p->raw.n - p->raw_unc);
    p->raw.n = 0;
    p->raw_unc = 0;
    p->tok.n = 0;
    cp_call_reset(p);
    cp_held_clear(p);
    p->ts = p->o.fmt == CP_FMT_HERMES || p->o.fmt == CP_FMT_R1 ? CP_TS_SCAN : CP_TS_PASS;
}

/* Starts a call object with the byte c = '{' at raw offset k. */
static int cp_obj_open(cp_parser *p, unsigned char c, size_t k) {
    if (c != '{') return -1;
    cp_call_begin(p, false);
    p->ts = CP_TS_OBJ;
    return cp_call_byte(p, c, k) < 0 ? -1 : 0;
}

/* One byte (already appended to raw at offset k) inside a call's markup: 0 accepted,
 * -1 the call is malformed at this byte. */
static int cp_l2_frame(cp_parser *p, unsigned char c, size_t k) {
    static const char *const hermes_close[] = {CP_HERMES_CLOSE};
    static const char *const python_tag[] = {CP_PYTHON_TAG};
    static const char *const r1_block[] = {CP_R1_CALL_BEGIN, CP_R1_CALLS_END};
    static const char *const r1_sep[] = {CP_R1_SEP};
    static const char *const r1_end[] = {CP_R1_CALL_END};
    int r;
    switch (p->ts) {
    case CP_TS_H_PRE:
    case CP_TS_L_PRE:
        if (cp_is_ws(c)) return 0;
        return cp_obj_open(p, c, k);
    case CP_TS_OBJ:
        r = cp_call_byte(p, c, k);
        if (r <= 0) return r;
        if (p->o.fmt == CP_FMT_HERMES) {
            p->ts = CP_TS_H_POST;
            p->tok.n = 0;
        } else if (p->call.committed) {
            cp_call_complete(p);
            p->ts = CP_TS_L_SEP;
        } else {
            cp_call_hold(p);
            cp_call_reset(p);
            p->ts = CP_TS_L_SEP;
        }
        return 0;
    case CP_TS_H_POST:
        if (p->tok.n == 0 && cp_is_ws(c)) return 0;
        r = cp_tok_match(p, c, hermes_close, 1);
        if (r == -2) return -1;
        if (r == 0) {
            cp_call_complete(p);
            p->ts = CP_TS_SCAN;
        }
        return 0;
    case CP_TS_L_START:
        if (cp_is_ws(c)) return 0;
        if (c != '<' || p->o.fmt != CP_FMT_LLAMA3) return cp_obj_open(p, c, k);
        p->tok.n = 0;
        p->ts = CP_TS_L_TAG;
        return cp_l2_frame(p, c, k);
    case CP_TS_L_TAG:
        r = cp_tok_match(p, c, python_tag, 1);
        if (r == -2) return -1;
        if (r == 0) p->ts = CP_TS_L_PRE;
        return 0;
    case CP_TS_L_SEP:
        if (cp_is_ws(c) || c == ';') return 0;
        return cp_obj_open(p, c, k);
    case CP_TS_R_BLOCK:
        if (p->tok.n == 0 && cp_is_ws(c)) return 0;
        r = cp_tok_match(p, c, r1_block, 2);
        if (r == -2) return -1;
        if (r == 0) {
            p->tok.n = 0;
            p->type_len = 0;
            p->ts = CP_TS_R_TYPE;
        } else if (r == 1) {
            if (p->block_calls == 0) return -1; /* an empty block is not a tool call */
            p->raw.n = 0;
            p->raw_unc = 0;
            p->ts = CP_TS_SCAN;
        }
        return 0;
    case CP_TS_R_TYPE:
        if (p->tok.n == 0 && p->type_len < CP_TYPE_MAX &&
            (cp_is_ws(c) || cp_is_alpha(c) || c == '_')) {
            p->type_len++;
            return 0;
        }
        r = cp_tok_match(p, c, r1_sep, 1);
        if (r == -2) return -1;
        if (r == 0) {
            p->name.n = 0;
            p->ts = CP_TS_R_NAME;
        }
        return 0;
    case CP_TS_R_NAME:
        if (c == '\n' || c == '`' || c == '{') {
            while (p->name.n && cp_is_ws((unsigned char)p->name.s[p->name.n - 1])) p->name.n--;
            if (p->name.n == 0) return c == '\n' ? 0 : -1;
            p->fence = 0;
            p->ts = CP_TS_R_FENCE;
            return cp_l2_frame(p, c, k);
        }
        if (cp_is_ws(c) && p->name.n == 0) return 0;
        if ((c < 0x20 && !cp_is_ws(c)) || c == '<' || p->name.n >= CP_NAME_MAX) return -1;
        cp_add(p, &p->name, (const char *)&c, 1);
        return 0;
    case CP_TS_R_FENCE:
        if (c == '`' && p->fence < 3) {
            p->fence++;
            return 0;
        }
        if (p->fence == 1 || p->fence == 2) return -1;
        if (cp_is_ws(c)) {
            if (p->fence == 3) p->fence = 4;
            return 0;
        }
        if (p->fence == 3 && cp_is_alpha(c)) return 0; /* the fence's language word */
        if (c != '{') return -1;
        cp_call_begin(p, true);
        p->call.name = cp_strndup(p->name.s, p->name.n);
        if (!p->call.name) p->oom = true;
        p->ts = CP_TS_R_ARGS;
        return cp_call_byte(p, c, k) < 0 ? -1 : 0;
    case CP_TS_R_ARGS:
        r = cp_call_byte(p, c, k);
        if (r <= 0) return r;
        p->fence = 0;
        p->tok.n = 0;
        p->ts = CP_TS_R_POST;
        return 0;
    case CP_TS_R_POST:
        if (p->tok.n == 0) {
            if (c == '`' && p->fence < 3) {
                p->fence++;
                return 0;
            }
            if (p->fence == 1 || p->fence == 2) return -1;
            if (cp_is_ws(c)) return 0;
        }
        r = cp_tok_match(p, c, r1_end, 1);
        if (r == -2) return -1;
        if (r == 0) {
            cp_call_complete(p);
            p->block_calls++;
            p->tok.n = 0;
            p->ts = CP_TS_R_BLOCK;
        }
        return 0;
    default:
        return -1;
    }
}

/* Layer 2: one byte of content. */
static void cp_l2_byte(cp_parser *p, unsigned char c) {
    static const char *const hermes_marks[] = {CP_HERMES_OPEN};
    static const char *const r1_marks[] = {CP_R1_CALLS_BEGIN, CP_R1_CALL_BEGIN};
    for (;;) {
        if (p->ts == CP_TS_PASS) {
            cp_content(p, (const char *)&c, 1);
            return;
        }
        if (p->ts == CP_TS_SCAN) {
            bool r1 = p->o.fmt == CP_FMT_R1;
            const char *const *marks = r1 ? r1_marks : hermes_marks;
            int m = cp_scan_byte(p, &p->cscan, c, marks, r1 ? 2 : 1, CP_CONTENT);
            if (m < 0) return;
            /* a call may start here: its text, with the whitespace before it, is held */
            p->raw.n = 0;
            p->raw_unc = 0;
            cp_add(p, &p->raw, p->cscan.ws.s, p->cscan.ws.n);
            cp_add(p, &p->raw, marks[m], strlen(marks[m]));
            p->cscan.ws.n = 0;
            p->tok.n = 0;
            p->block_calls = 0;
            p->type_len = 0;
            p->ts = !r1 ? CP_TS_H_PRE : m == 0 ? CP_TS_R_BLOCK : CP_TS_R_TYPE;
            return;
        }
        if (!cp_buf_put(&p->raw, (const char *)&c, 1)) {
            p->oom = true;
            return;
        }
        if (cp_l2_frame(p, c, p->raw.n - 1) == 0) return;
        p->raw.n--; /* c is not part of the call: it is scanned again as content */
        cp_fail_call(p);
    }
}

/* Layer 2: the end of the text. */
static void cp_l2_finish(cp_parser *p) {
    switch (p->ts) {
    case CP_TS_PASS:
    case CP_TS_SCAN:
        break;
    case CP_TS_H_POST:
    case CP_TS_R_POST:
        /* the call is complete; only its closing markup was cut off */
        cp_call_complete(p);
        break;
    case CP_TS_R_BLOCK:
        if (p->block_calls == 0) cp_fail_call(p);
        break;
    case CP_TS_L_SEP:
        for (int i = 0; i < p->n_held && !p->oom; i++) {
            int index = cp_q_start(p, p->held[i].name);
            cp_q_text(p, CP_TOOL_ARGS, index, p->held[i].args, p->held[i].args_len);
        }
        cp_held_clear(p);
        break;
    default:
        cp_fail_call(p);
        break;
    }
    if (p->ts == CP_TS_SCAN || p->ts == CP_TS_R_BLOCK)
        cp_scan_flush(p, &p->cscan, CP_CONTENT, p->after_call);
    p->raw.n = 0;
}

/* ---- layer 1: reasoning ---- */

static void cp_l1_byte(cp_parser *p, unsigned char c) {
    static const char *const think_close[] = {CP_THINK_CLOSE};
    switch (p->rs) {
    case CP_RS_START: {
        if (!cp_buf_put(&p->lead, (const char *)&c, 1)) {
            p->oom = true;
            return;
        }
        size_t i = 0;
        while (i < p->lead.n && cp_is_ws((unsigned char)p->lead.s[i])) i++;
        size_t m = p->lead.n - i;
        if (m == 0) return;
        if (m <= strlen(CP_THINK_OPEN) && !memcmp(p->lead.s + i, CP_THINK_OPEN, m)) {
            if (m == strlen(CP_THINK_OPEN)) {
                p->lead.n = 0;
                p->rs = CP_RS_LEAD;
            }
            return;
        }
        p->rs = CP_RS_PASS;
        for (size_t k = 0; k < p->lead.n; k++) cp_l2_byte(p, (unsigned char)p->lead.s[k]);
        p->lead.n = 0;
        return;
    }
    case CP_RS_LEAD:
        if (cp_is_ws(c)) return;
        p->rs = CP_RS_THINK;
        break;
    case CP_RS_AFTER:
        if (cp_is_ws(c)) return;
        p->rs = CP_RS_PASS;
        break;
    default:
        break;
    }
    if (p->rs == CP_RS_PASS) {
        cp_l2_byte(p, c);
    } else if (cp_scan_byte(p, &p->rscan, c, think_close, 1, CP_REASONING) == 0) {
        p->rscan.ws.n = 0; /* whitespace before </think> */
        p->rs = CP_RS_AFTER;
    }
}

/* ---- the public interface ---- */

cp_format cp_detect_format(const char *src) {
    if (!src) return CP_FMT_GENERIC;
    if (strstr(src, CP_R1_CALLS_BEGIN) || strstr(src, CP_R1_CALL_BEGIN)) return CP_FMT_R1;
    if (strstr(src, CP_HERMES_OPEN)) return CP_FMT_HERMES;
    if (strstr(src, CP_PYTHON_TAG) || strstr(src, "\"parameters\": ") ||
        strstr(src, "Environment: ipython"))
        return CP_FMT_LLAMA3;
    return CP_FMT_GENERIC;
}

static bool cp_is_ident(unsigned char c) {
    return cp_is_alpha(c) || c == '_' || (c >= '0' && c <= '9');
}

bool cp_template_renders_tools(const char *src) {
    if (!src) return false;
    const char *s = src;
    while ((s = strchr(s, '{')) != NULL) {
        if (s[1] == '#') { /* a comment */
            const char *e = strstr(s + 2, "#}");
            if (!e) return false;
            s = e + 2;
            continue;
        }
        if (s[1] != '{' && s[1] != '%') {
            s++;
            continue;
        }
        char close = s[1] == '{' ? '}' : '%';
        char prev = 0; /* the last non-space character of the block so far */
        s += 2;
        while (*s && !(*s == close && s[1] == '}')) {
            if (*s == '\'' || *s == '"') {
                char q = *s++;
                while (*s && *s != q) s += (*s == '\\' && s[1]) ? 2 : 1;
                if (*s) s++;
                prev = q;
            } else if (cp_is_ident((unsigned char)*s) && !(*s >= '0' && *s <= '9')) {
                const char *b = s;
                while (cp_is_ident((unsigned char)*s)) s++;
                if (s - b == 5 && !memcmp(b, "tools", 5) && prev != '.') return true;
                prev = 'a';
            } else {
                if (!cp_is_ws((unsigned char)*s)) prev = *s;
                s++;
            }
        }
        if (*s) s += 2;
    }
    return false;
}

const char *cp_format_name(cp_format fmt) {
    switch (fmt) {
    case CP_FMT_HERMES:
        return "hermes";
    case CP_FMT_LLAMA3:
        return "llama3";
    case CP_FMT_R1:
        return "r1";
    case CP_FMT_GENERIC:
        return "generic";
    default:
        return "none";
    }
}

char *cp_tools_prompt(cp_format fmt, const cJSON *tools, chatd_error *err) {
    static const char *const syntax[] = {
        [CP_FMT_HERMES] =
            "For each function call, return a JSON object with the function name and "
            "arguments within <tool_call></tool_call> tags:\n<tool_call>\n{\"name\": "
            "\"FUNCTION_NAME\", \"arguments\": {\"ARGUMENT\": VALUE}}\n</tool_call>\n",
        [CP_FMT_LLAMA3] = "To call a function, respond with only JSON in the format "
                          "{\"name\": \"FUNCTION_NAME\", \"parameters\": {\"ARGUMENT\": VALUE}}. "
                          "Do not use variables.\n",
        [CP_FMT_R1] = "To call functions, reply with exactly this and nothing after it, one "
                      "<｜tool▁call▁begin｜>...<｜tool▁call▁end｜> per call:\n"
                      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
                      "FUNCTION_NAME\n```json\n{\"ARGUMENT\": VALUE}\n```<｜tool▁call▁end｜>"
                      "<｜tool▁calls▁end｜>\n"
                      "The arguments are a JSON object following the function's parameters. "
                      "If no function is needed, answer normally.\n",
        [CP_FMT_GENERIC] = "To call a function, reply with only a JSON object of this form "
                           "and nothing else:\n{\"name\": \"FUNCTION_NAME\", \"arguments\": "
                           "{\"ARGUMENT\": VALUE}}\nTo call several functions, write one such "
                           "object per line. The arguments are a JSON object following the "
                           "function's parameters. If no function is needed, answer normally, "
                           "without JSON.\n",
    };
    if ((int)fmt <= (int)CP_FMT_NONE || (int)fmt > (int)CP_FMT_GENERIC) {
        chatd_errorf(err, "no tool-call format to describe");
        return NULL;
    }
    if (!cJSON_IsArray(tools)) {
        chatd_errorf(err, "tools must be an array");
        return NULL;
    }
    cp_buf b = {0};
    static const char head[] = "# Tools\n\nYou may call one or more functions to help with the "
                               "user's request. The functions, one JSON object per line:\n";
    bool ok = cp_buf_put(&b, head, strlen(head));
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (!cJSON_IsObject(fn)) fn = t;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(fn, "description");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (!cJSON_IsString(name) || !name->valuestring[0]) {
            free(b.s);
            chatd_errorf(err, "tools[%d] has no function name", i);
            return NULL;
        }
        cJSON *o = cJSON_CreateObject();
        ok = ok && o && cJSON_AddStringToObject(o, "name", name->valuestring);
        if (ok && cJSON_IsString(desc))
            ok = cJSON_AddStringToObject(o, "description", desc->valuestring) != NULL;
        if (ok && params) {
            cJSON *d = cJSON_Duplicate(params, true);
            ok = d && cJSON_AddItemToObject(o, "parameters", d);
            if (!ok) cJSON_Delete(d);
        }
        char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
        ok = s && cp_buf_put(&b, s, strlen(s)) && cp_buf_put(&b, "\n", 1);
        free(s);
        cJSON_Delete(o);
        i++;
    }
    ok = ok && cp_buf_put(&b, "\n", 1) && cp_buf_put(&b, syntax[fmt], strlen(syntax[fmt]));
    if (!ok) {
        free(b.s);
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    return b.s;
}

cp_parser *cp_new(const cp_options *o, chatd_error *err) {
    if (!o) {
        chatd_errorf(err, "chatparse: no options");
        return NULL;
    }
    if ((int)o->fmt < (int)CP_FMT_NONE || (int)o->fmt > (int)CP_FMT_GENERIC) {
        chatd_errorf(err, "chatparse: unknown tool-call format %d", (int)o->fmt);
        return NULL;
    }
    cp_parser *p = calloc(1, sizeof *p);
    if (!p) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    p->o = *o;
    uint64_t seed = o->seed;
    if (!seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)(uintptr_t)p ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec;
    }
    /* splitmix64, so that close seeds give unrelated ids */
    seed += 0x9E3779B97F4A7C15ULL;
    seed = (seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9ULL;
    seed = (seed ^ (seed >> 27)) * 0x94D049BB133111EBULL;
    seed ^= seed >> 31;
    p->rng = seed ? seed : 0x2545F4914F6CDD1DULL;
    p->rs = !o->split_reasoning ? CP_RS_PASS : o->thinking_open ? CP_RS_LEAD : CP_RS_START;
    if (!o->parse_tools || o->fmt == CP_FMT_NONE)
        p->ts = CP_TS_PASS;
    else if (o->fmt == CP_FMT_HERMES || o->fmt == CP_FMT_R1)
        p->ts = CP_TS_SCAN;
    else
        p->ts = CP_TS_L_START;
    return p;
}

static void cp_q_clear(cp_parser *p) {
    for (size_t i = 0; i < p->nq; i++) {
        free(p->q[i].name);
        free(p->q[i].text.s);
    }
    p->nq = 0;
}

/* Hands the queued deltas to the caller. */
static int cp_deliver(cp_parser *p, cp_emit emit, void *user, chatd_error *err) {
    if (p->oom) {
        p->failed = true;
        cp_q_clear(p);
        return chatd_errorf(err, "chatparse: out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < p->nq && rc == 0; i++) {
        const cp_out *o = &p->q[i];
        cp_delta d = {.kind = o->kind, .index = o->index};
        if (o->kind == CP_TOOL_START) {
            d.id = o->id;
            d.name = o->name;
        } else {
            d.text = o->text.s;
            d.len = o->text.n;
        }
        if (emit && emit(user, &d) != 0) {
            p->failed = true;
            rc = chatd_errorf(err, "chatparse: the output callback stopped the parse");
        }
    }
    cp_q_clear(p);
    return rc;
}

static int cp_check(cp_parser *p, chatd_error *err) {
    if (!p) return chatd_errorf(err, "chatparse: no parser");
    if (p->failed) return chatd_errorf(err, "chatparse: the parser failed earlier");
    if (p->finished) return chatd_errorf(err, "chatparse: the output has already ended");
    return 0;
}

int cp_feed(cp_parser *p, const char *text, size_t len, cp_emit emit, void *user,
            chatd_error *err) {
    if (cp_check(p, err) < 0) return -1;
    if (!text && len) return chatd_errorf(err, "chatparse: no text");
    for (size_t i = 0; i < len && !p->oom; i++) cp_l1_byte(p, (unsigned char)text[i]);
    return cp_deliver(p, emit, user, err);
}

int cp_finish(cp_parser *p, cp_emit emit, void *user, chatd_error *err) {
    if (cp_check(p, err) < 0) return -1;
    p->finished = true;
    switch (p->rs) {
    case CP_RS_START: /* not a <think> block after all */
        p->rs = CP_RS_PASS;
        for (size_t k = 0; k < p->lead.n && !p->oom; k++)
            cp_l2_byte(p, (unsigned char)p->lead.s[k]);
        p->lead.n = 0;
        break;
    case CP_RS_LEAD:
    case CP_RS_THINK: /* cut off inside the block: what was seen is reasoning */
        cp_scan_flush(p, &p->rscan, CP_REASONING, true);
        p->rs = CP_RS_PASS;
        break;
    default:
        break;
    }
    if (!p->oom) cp_l2_finish(p);
    return cp_deliver(p, emit, user, err);
}

bool cp_in_reasoning(const cp_parser *p) {
    return p && (p->rs == CP_RS_LEAD || p->rs == CP_RS_THINK);
}

int cp_n_tool_calls(const cp_parser *p) {
    return p ? p->n_calls : 0;
}

void cp_free(cp_parser *p) {
    if (!p) return;
    cp_q_clear(p);
    free(p->q);
    cp_call_reset(p);
    cp_held_clear(p);
    free(p->held);
    cp_buf *bufs[] = {&p->lead,       &p->rscan.ws, &p->rscan.part, &p->cscan.ws,
                      &p->cscan.part, &p->raw,      &p->tok,        &p->name};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]->s);
    free(p);
}
