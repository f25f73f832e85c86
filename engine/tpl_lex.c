/* tpl_lex.c - the chat-template lexer: splits template source into text and tag tokens
 * exactly as Jinja2's lexer does with Hugging Face's settings (trim_blocks and
 * lstrip_blocks on, "-" and "+" whitespace control, raw blocks, newlines normalised and
 * one trailing newline dropped), and tag contents into names, literals and operators. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpl_internal.h"

typedef struct lexer {
    tpl_template *t;
    const char *s; /* normalised source */
    size_t n;
    size_t pos;
    int line;
    size_t line_pos; /* s[0..line_pos) has been counted into line */
    tpl_token *toks;
    size_t ntoks, cap;
    chatd_error *err;
} lexer;

static int line_at(lexer *L, size_t pos) {
    if (pos < L->line_pos) return L->line; /* never moves backwards in practice */
    for (size_t i = L->line_pos; i < pos && i < L->n; i++)
        if (L->s[i] == '\n') L->line++;
    L->line_pos = pos;
    return L->line;
}

static int lex_fail(lexer *L, size_t pos, const char *fmt, const char *what) {
    char msg[160];
    snprintf(msg, sizeof msg, fmt, what);
    return chatd_errorf(L->err, "chat template syntax error, line %d: %s", line_at(L, pos), msg);
}

static tpl_token *push(lexer *L, int type, size_t pos) {
    if (L->ntoks == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 64;
        tpl_token *p = realloc(L->toks, nc * sizeof *p);
        if (!p) {
            chatd_errorf(L->err, "chat template: out of memory");
            return NULL;
        }
        L->toks = p;
        L->cap = nc;
    }
    tpl_token *k = &L->toks[L->ntoks++];
    memset(k, 0, sizeof *k);
    k->type = (uint8_t)type;
    k->line = line_at(L, pos);
    return k;
}

static char *arena_str(lexer *L, const char *s, size_t n) {
    char *p = tpl_arena_alloc(L->t, n + 1);
    if (!p) {
        chatd_errorf(L->err, "chat template: out of memory");
        return NULL;
    }
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static int push_data(lexer *L, size_t from, size_t to) {
    if (to <= from) return 0;
    tpl_token *k = push(L, T_DATA, from);
    if (!k) return -1;
    k->s = arena_str(L, L->s + from, to - from);
    k->len = to - from;
    return k->s ? 0 : -1;
}

static bool starts(const lexer *L, size_t pos, const char *lit) {
    size_t l = strlen(lit);
    return pos + l <= L->n && memcmp(L->s + pos, lit, l) == 0;
}

static size_t skip_space(const lexer *L, size_t pos) {
    size_t l;
    while (pos < L->n && (l = u8_space_at(L->s, L->n, pos)) > 0) pos += l;
    return pos;
}

/* The text before a tag, after whitespace control: "-" strips all whitespace before the
 * tag; otherwise lstrip_blocks drops spaces between the line start and a block or comment
 * tag ("+" turns that off). Returns the new end of the text. */
static size_t strip_text(const lexer *L, size_t from, size_t to, char sign, bool is_var,
                         bool line_starting) {
    if (sign == '-') {
        size_t l;
        while (to > from && (l = u8_space_before(L->s, to)) > 0 && to - l >= from) to -= l;
        return to;
    }
    if (sign == '+' || is_var) return to;
    size_t l_pos = to;
    while (l_pos > from && L->s[l_pos - 1] != '\n') l_pos--;
    if (l_pos == from && !(line_starting || (l_pos > 0 && L->s[l_pos - 1] == '\n'))) return to;
    if (l_pos == to) return to;
    for (size_t i = l_pos; i < to;) {
        size_t l = u8_space_at(L->s, to, i);
        if (!l) return to;
        i += l;
    }
    return l_pos;
}

/* Python unicode-escape decoding of a string literal's body. */
static int unescape(lexer *L, size_t pos, const char *s, size_t n, tpl_token *k) {
    char *o = tpl_arena_alloc(L->t, n + 1);
    if (!o) return chatd_errorf(L->err, "chat template: out of memory");
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\' || i + 1 >= n) {
            o[w++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        int hex = 0;
        i += 2;
        switch (c) {
        case '\n':
            break;
        case '\\':
            o[w++] = '\\';
            break;
        case '\'':
            o[w++] = '\'';
            break;
        case '"':
            o[w++] = '"';
            break;
        case 'a':
            o[w++] = '\a';
            break;
        case 'b':
            o[w++] = '\b';
            break;
        case 'f':
            o[w++] = '\f';
            break;
        case 'n':
            o[w++] = '\n';
            break;
        case 'r':
            o[w++] = '\r';
            break;
        case 't':
            o[w++] = '\t';
            break;
        case 'v':
            o[w++] = '\v';
            break;
        case 'x':
            hex = 2;
            break;
        case 'u':
            hex = 4;
            break;
        case 'U':
            hex = 8;
            break;
        default:
            if (c >= '0' && c <= '7') {
                uint32_t v = (uint32_t)(c - '0');
                for (int d = 0; d < 2 && i < n && s[i] >= '0' && s[i] <= '7'; d++)
                    v = v * 8 + (uint32_t)(s[i++] - '0');
                w += u8_put(v, o + w);
            } else {
                o[w++] = '\\';
                o[w++] = c;
            }
        }
        if (hex) {
            uint32_t v = 0;
            for (int d = 0; d < hex; d++, i++) {
                char h = i < n ? s[i] : 0;
                int x = (h >= '0' && h <= '9')   ? h - '0'
                        : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                 : -1;
                if (x < 0)
                    return lex_fail(L, pos, "truncated \\%s escape in a string",
                                    hex == 2 ? "xXX" : "uXXXX");
                v = v * 16 + (uint32_t)x;
            }
            if (v > 0x10FFFF)
                return lex_fail(L, pos, "%s", "illegal Unicode character in a string");
            /* an escape expands to at most 4 bytes from at least 4 source bytes */
            w += u8_put(v, o + w);
        }
    }
    o[w] = 0;
    k->s = o;
    k->len = w;
    return 0;
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Digits with single underscores between them (Jinja2 number syntax); returns the end. */
static size_t digits(const lexer *L, size_t p) {
    if (p >= L->n || !is_digit(L->s[p])) return p;
    while (p < L->n) {
        if (is_digit(L->s[p]))
            p++;
        else if (L->s[p] == '_' && p + 1 < L->n && is_digit(L->s[p + 1]))
            p++;
        else
            break;
    }
    return p;
}

static int lex_number(lexer *L, size_t *pp, bool after_dot) {
    size_t p = *pp, start = p;
    size_t e = digits(L, p);
    bool is_float = false;
    if (!after_dot) {
        size_t q = e;
        if (q + 1 < L->n && L->s[q] == '.' && is_digit(L->s[q + 1])) {
            q = digits(L, q + 1);
            is_float = true;
        }
        if (q < L->n && (L->s[q] == 'e' || L->s[q] == 'E')) {
            size_t r = q + 1;
            if (r < L->n && (L->s[r] == '+' || L->s[r] == '-')) r++;
            size_t r2 = digits(L, r);
            if (r2 > r) {
                q = r2;
                is_float = true;
            }
        }
        if (is_float) e = q;
    }
    char buf[128];
    size_t w = 0;
    for (size_t i = start; i < e && w + 1 < sizeof buf; i++)
        if (L->s[i] != '_') buf[w++] = L->s[i];
    buf[w] = 0;
    tpl_token *k = push(L, is_float ? T_FLOAT : T_INT, start);
    if (!k) return -1;
    if (is_float) {
        k->f = strtod(buf, NULL);
    } else {
        int64_t v = 0;
        for (size_t i = 0; i < w; i++) {
            int d = buf[i] - '0';
            if (v > (INT64_MAX - d) / 10)
                return lex_fail(L, start, "%s", "integer literal too large");
            v = v * 10 + d;
        }
        k->i = v;
    }
    *pp = e;
    return 0;
}

static const struct {
    const char *text;
    uint8_t op;
} k_ops[] = {
    {"//", O_FLOORDIV}, {"**", O_POW},   {"==", O_EQ},    {"!=", O_NE},    {"<=", O_LE},
    {">=", O_GE},       {"+", O_ADD},    {"-", O_SUB},    {"*", O_MUL},    {"/", O_DIV},
    {"%", O_MOD},       {"~", O_TILDE},  {"(", O_LPAREN}, {")", O_RPAREN}, {"[", O_LBRACKET},
    {"]", O_RBRACKET},  {"{", O_LBRACE}, {"}", O_RBRACE}, {"<", O_LT},     {">", O_GT},
    {"=", O_ASSIGN},    {".", O_DOT},    {":", O_COLON},  {"|", O_PIPE},   {",", O_COMMA},
    {";", O_SEMI},
};

/* Lexes the inside of a {{ }} or {% %} tag up to its end; *pp starts after the opener. */
static int lex_tag(lexer *L, size_t *pp, bool is_block, size_t tag_start) {
    size_t p = *pp;
    int depth = 0; /* brackets: "}}" inside {{ {'a': {}} }} is not the end */
    for (;;) {
        p = skip_space(L, p);
        if (p >= L->n)
            return lex_fail(L, tag_start, "unexpected end of template, expected '%s'",
                            is_block ? "%}" : "}}");
        if (depth == 0) {
            if (is_block) {
                if (starts(L, p, "-%}")) {
                    if (!push(L, T_BLOCK_END, p)) return -1;
                    *pp = skip_space(L, p + 3);
                    return 0;
                }
                if (starts(L, p, "+%}")) {
                    if (!push(L, T_BLOCK_END, p)) return -1;
                    *pp = p + 3;
                    return 0;
                }
                if (starts(L, p, "%}")) {
                    if (!push(L, T_BLOCK_END, p)) return -1;
                    p += 2;
                    if (p < L->n && L->s[p] == '\n') p++; /* trim_blocks */
                    *pp = p;
                    return 0;
                }
            } else {
                if (starts(L, p, "-}}")) {
                    if (!push(L, T_VAR_END, p)) return -1;
                    *pp = skip_space(L, p + 3);
                    return 0;
                }
                if (starts(L, p, "}}")) {
                    if (!push(L, T_VAR_END, p)) return -1;
                    *pp = p + 2;
                    return 0;
                }
            }
        }
        char c = L->s[p];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t e = p;
            while (e < L->n &&
                   ((L->s[e] >= 'a' && L->s[e] <= 'z') || (L->s[e] >= 'A' && L->s[e] <= 'Z') ||
                    (L->s[e] >= '0' && L->s[e] <= '9') || L->s[e] == '_'))
                e++;
            tpl_token *k = push(L, T_NAME, p);
            if (!k || !(k->s = arena_str(L, L->s + p, e - p))) return -1;
            k->len = e - p;
            p = e;
            continue;
        }
        if (is_digit(c)) {
            bool after_dot =
                L->ntoks && L->toks[L->ntoks - 1].type == T_OP && L->toks[L->ntoks - 1].op == O_DOT;
            if (lex_number(L, &p, after_dot) != 0) return -1;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t e = p + 1;
            while (e < L->n && L->s[e] != c) e += L->s[e] == '\\' ? 2 : 1;
            if (e >= L->n) return lex_fail(L, p, "%s", "unterminated string");
            tpl_token *k = push(L, T_STRING, p);
            if (!k || unescape(L, p, L->s + p + 1, e - p - 1, k) != 0) return -1;
            p = e + 1;
            continue;
        }
        size_t i;
        for (i = 0; i < sizeof k_ops / sizeof k_ops[0]; i++)
            if (starts(L, p, k_ops[i].text)) break;
        if (i == sizeof k_ops / sizeof k_ops[0]) {
            char what[8];
            snprintf(what, sizeof what, "%c", (c >= 32 && c < 127) ? c : '?');
            return lex_fail(L, p, "unexpected char '%s'", what);
        }
        tpl_token *k = push(L, T_OP, p);
        if (!k) return -1;
        k->op = k_ops[i].op;
        if (k->op == O_LPAREN || k->op == O_LBRACKET || k->op == O_LBRACE)
            depth++;
        else if ((k->op == O_RPAREN || k->op == O_RBRACKET || k->op == O_RBRACE) && depth > 0)
            depth--;
        p += strlen(k_ops[i].text);
    }
}

/* After a "{%" (and its sign), is this "raw %}"? Returns the end of the opening tag. */
static size_t raw_open(const lexer *L, size_t p) {
    p = skip_space(L, p);
    if (!starts(L, p, "raw")) return 0;
    p = skip_space(L, p + 3);
    if (starts(L, p, "-%}")) return skip_space(L, p + 3);
    if (starts(L, p, "%}")) return p + 2;
    return 0;
}

/* Finds "{% endraw %}" from p: its start, sign and the position after it. */
static bool raw_close(const lexer *L, size_t p, size_t *at, char *sign, size_t *after) {
    for (; p + 1 < L->n; p++) {
        if (L->s[p] != '{' || L->s[p + 1] != '%') continue;
        size_t q = p + 2;
        char sg = 0;
        if (q < L->n && (L->s[q] == '-' || L->s[q] == '+')) sg = L->s[q++];
        q = skip_space(L, q);
        if (!starts(L, q, "endraw")) continue;
        q = skip_space(L, q + 6);
        if (starts(L, q, "+%}"))
            q += 3;
        else if (starts(L, q, "-%}"))
            q = skip_space(L, q + 3);
        else if (starts(L, q, "%}")) {
            q += 2;
            if (q < L->n && L->s[q] == '\n') q++;
        } else
            continue;
        *at = p;
        *sign = sg;
        *after = q;
        return true;
    }
    return false;
}

int tpl_lex(tpl_template *t, const char *src, size_t len, tpl_token **toks, size_t *ntoks,
            chatd_error *err) {
    lexer L = {.t = t, .line = 1, .err = err};
    /* newlines become "\n" everywhere, and one trailing newline goes (keep_trailing_newline
     * is off) */
    char *s = tpl_arena_alloc(t, len + 1);
    if (!s) return chatd_errorf(err, "chat template: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    L.s = s;
    L.n = n;

    bool line_starting = true;
    size_t p = 0;
    while (p < n) {
        size_t q = p;
        while (q + 1 < n &&
               !(s[q] == '{' && (s[q + 1] == '{' || s[q + 1] == '%' || s[q + 1] == '#')))
            q++;
        if (q + 1 >= n) {
            if (push_data(&L, p, n) != 0) goto fail;
            break;
        }
        char kind = s[q + 1];
        char sign = (q + 2 < n && (s[q + 2] == '-' || s[q + 2] == '+')) ? s[q + 2] : 0;
        size_t open_end = q + 2 + (sign ? 1 : 0);
        size_t raw_end = kind == '%' ? raw_open(&L, open_end) : 0;
        size_t text_end = strip_text(&L, p, q, sign, kind == '{', line_starting);
        if (push_data(&L, p, text_end) != 0) goto fail;

        if (raw_end) {
            size_t at, after;
            char sg;
            if (!raw_close(&L, raw_end, &at, &sg, &after)) {
                lex_fail(&L, q, "%s", "missing end of raw directive");
                goto fail;
            }
            size_t body_end = strip_text(&L, raw_end, at, sg, false, false);
            if (push_data(&L, raw_end, body_end) != 0) goto fail;
            p = after;
        } else if (kind == '#') {
            size_t r = open_end;
            while (r + 1 < n && !(s[r] == '#' && s[r + 1] == '}')) r++;
            if (r + 1 >= n) {
                lex_fail(&L, q, "%s", "missing end of comment tag");
                goto fail;
            }
            char sg = r > open_end ? s[r - 1] : 0;
            p = r + 2;
            if (sg == '-')
                p = skip_space(&L, p);
            else if (sg != '+' && p < n && s[p] == '\n')
                p++;
        } else {
            if (!push(&L, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, q)) goto fail;
            p = open_end;
            if (lex_tag(&L, &p, kind == '%', q) != 0) goto fail;
        }
        line_starting = p > 0 && s[p - 1] == '\n';
    }
    if (!push(&L, T_EOF, n)) goto fail;
    *toks = L.toks;
    *ntoks = L.ntoks;
    return 0;
fail:
    free(L.toks);
    return -1;
}
