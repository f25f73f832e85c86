/* tok_decode.c - token ids back to text: one id's piece, a whole sequence (with
 * llama_detokenize's optional clean-ups), and a streaming decoder for replies that go out
 * token by token and must never carry a broken UTF-8 character. */
#include "tok_internal.h"

#include <string.h>

/* ---- decoding ---- */

const char *tok_piece(const tok_vocab *v, int32_t id, bool special, size_t *len) {
    if (!v || id < 0 || id >= v->n_tokens) {
        if (len) *len = 0;
        return NULL;
    }
    if (!special && (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = v->piece_len[id];
    return v->piece_arena + v->piece_off[id];
}

/* llama_detokenize's clean_up_tokenization_spaces, pass for pass. */
static size_t clean_spaces(char *text, size_t total) {
    size_t total1 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total1; ++i) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        text[total++] = x;
    }
    size_t total2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total2; ++i) {
        char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    size_t total3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total3; ++i) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') {
                total--;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
            }
        }
        text[total++] = x;
    }
    return total;
}

int tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, unsigned flags, tok_buf *out,
               chatd_error *err) {
    if (!v || !out || (!ids && n)) return chatd_errorf(err, "tokenizer: bad arguments");
    size_t start = out->len;
    bool remove_space = (flags & TOK_DECODE_STRIP_PREFIX) && v->add_space_prefix;
    if ((flags & TOK_DECODE_REMOVE_SPECIAL) && v->add_bos && n > 0 && ids[0] == v->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if ((flags & TOK_DECODE_REMOVE_SPECIAL) && v->add_eos && n > 0 && ids[n - 1] == v->eos) n--;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = tok_piece(v, ids[i], (flags & TOK_DECODE_SPECIAL) != 0, &len);
        if (!p) {
            out->len = start;
            if (out->data) out->data[start] = '\0';
            return chatd_errorf(err, "tokenizer: token id %d is outside the vocabulary (0..%d)",
                                ids[i], v->n_tokens - 1);
        }
        if (remove_space && len && *p == ' ') {
            p++;
            len--;
        }
        remove_space = false;
        if (tok_buf_append(out, p, len, err) != 0) return -1;
    }
    if (!out->data && tok_buf_append(out, "", 0, err) != 0) return -1;
    if ((flags & TOK_DECODE_CLEAN_SPACES) && v->clean_spaces) {
        out->len = start + clean_spaces(out->data + start, out->len - start);
        out->data[out->len] = '\0';
    }
    return 0;
}

/* ---- streaming ---- */

void tok_stream_init(tok_stream *s, const tok_vocab *v, bool special) {
    s->v = v;
    s->special = special;
    s->n_held = 0;
}

size_t tok_stream_pending(const tok_stream *s) {
    return s->n_held;
}

/* How many bytes the sequence led by b has in all, 0 if b cannot lead one. */
static size_t utf8_need(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* Whether b may follow the bytes held so far (Unicode's well-formed table: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static bool utf8_next_ok(const unsigned char *held, size_t n_held, unsigned char b) {
    if ((b & 0xC0) != 0x80) return false;
    if (n_held != 1) return true;
    switch (held[0]) {
    case 0xE0:
        return b >= 0xA0;
    case 0xED:
        return b <= 0x9F;
    case 0xF0:
        return b >= 0x90;
    case 0xF4:
        return b <= 0x8F;
    default:
        return true;
    }
}

int tok_stream_push_bytes(tok_stream *s, const void *bytes, size_t n, tok_buf *out,
                          chatd_error *err) {
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *p = bytes;
    size_t run = 0; /* start of the pending run of complete input bytes to copy */
    for (size_t i = 0; i < n;) {
        unsigned char b = p[i];
        if (s->n_held == 0) {
            size_t need = utf8_need(b);
            if (need == 1) {
                i++;
                continue;
            }
            /* flush the complete run before this byte */
            if (i > run && tok_buf_append(out, p + run, i - run, err) != 0) return -1;
            if (need == 0) {
                if (tok_buf_append(out, repl, 3, err) != 0) return -1;
            } else {
                s->held[s->n_held++] = b;
            }
            run = ++i;
            continue;
        }
        if (!utf8_next_ok(s->held, s->n_held, b)) {
            /* the held prefix can never complete: one U+FFFD, then look at b afresh */
            if (tok_buf_append(out, repl, 3, err) != 0) return -1;
            s->n_held = 0;
            run = i;
            continue;
        }
        s->held[s->n_held++] = b;
        run = ++i;
        if (s->n_held == utf8_need(s->held[0])) {
            if (tok_buf_append(out, s->held, s->n_held, err) != 0) return -1;
            s->n_held = 0;
        }
    }
    if (n > run && tok_buf_append(out, p + run, n - run, err) != 0) return -1;
    if (!out->data && tok_buf_append(out, "", 0, err) != 0) return -1;
    return 0;
}

int tok_stream_push(tok_stream *s, int32_t id, tok_buf *out, chatd_error *err) {
    size_t len;
    const char *p = tok_piece(s->v, id, s->special, &len);
    if (!p)
        return chatd_errorf(err, "tokenizer: token id %d is outside the vocabulary (0..%d)", id,
                            s->v ? s->v->n_tokens - 1 : -1);
    return tok_stream_push_bytes(s, p, len, out, err);
}

int tok_stream_flush(tok_stream *s, tok_buf *out, chatd_error *err) {
    if (s->n_held) {
        s->n_held = 0;
        if (tok_buf_append(out, "\xEF\xBF\xBD", 3, err) != 0) return -1;
    }
    if (!out->data && tok_buf_append(out, "", 0, err) != 0) return -1;
    return 0;
}
