/* tpl_tokenize.c - rendered prompt to token ids without letting request text become
 * control tokens. llama.cpp tokenizes the whole prompt with parse_special: it cuts the
 * text at special-token matches (longest token first) and runs the tokenizer on each
 * span between them. This does the same cutting, but accepts a CONTROL (or UNKNOWN)
 * token's text only where it lies entirely inside template-written text; the spans in
 * between are tokenized as plain text even where they cross from template into request
 * text, so the ids equal llama.cpp's whenever the request holds no control-token text. */
#include <stdlib.h>
#include <string.h>

#include "tpl_internal.h"

typedef struct special {
    int32_t id;
    const char *text;
    size_t len;
    bool control; /* CONTROL or UNKNOWN: only matched in template text */
} special;

static int cmp_special(const void *a, const void *b) {
    const special *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool all_template(const unsigned char *tmpl, size_t from, size_t n) {
    for (size_t i = from; i < from + n; i++)
        if (!tmpl[i]) return false;
    return true;
}

int tpl_tokenize(const tok_vocab *v, const tpl_output *out, bool add_special, tok_ids *ids,
                 chatd_error *err) {
    if (!v || !out || !ids) return chatd_errorf(err, "tpl_tokenize: bad arguments");
    const size_t n0 = ids->n;
    const char *text = out->buf ? out->buf : "";
    size_t len = out->buf ? out->len : 0;
    int rc = -1;
    unsigned char *tmpl = malloc(len + 1);
    special *sp = NULL;
    tok_match *m = NULL;
    size_t nsp = 0, nm = 0, cap = 0;
    if (!tmpl) goto oom;
    memset(tmpl, 0, len + 1);
    for (size_t f = 0, at = 0; f < out->n; f++) {
        size_t fl = out->frags[f].len;
        if (fl > len - at) fl = len - at;
        if (out->frags[f].origin == TPL_ORIGIN_TEMPLATE) memset(tmpl + at, 1, fl);
        at += fl;
    }

    /* the template's own BOS / EOS text is dropped when the tokenizer adds them itself */
    size_t from = 0, to = len;
    int32_t bos = tok_bos(v), eos = tok_eos(v);
    bool add_bos = add_special && tok_add_bos(v) && bos != TOK_NULL;
    bool add_eos = add_special && tok_add_eos(v) && eos != TOK_NULL;
    size_t tl;
    const char *t;
    if (add_bos && (t = tok_text(v, bos, &tl)) && tl && tl <= len && !memcmp(text, t, tl) &&
        all_template(tmpl, 0, tl))
        from = tl;
    if (add_eos && (t = tok_text(v, eos, &tl)) && tl && tl <= to - from &&
        !memcmp(text + to - tl, t, tl) && all_template(tmpl, to - tl, tl))
        to -= tl;

    /* the special tokens, in llama.cpp's priority order */
    int32_t nv = tok_n_vocab(v);
    for (int32_t id = 0; id < nv; id++) {
        uint32_t a = tok_attr(v, id);
        if (!(a & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))) continue;
        if (nsp == cap) {
            size_t nc = cap ? cap * 2 : 64;
            special *p = realloc(sp, nc * sizeof *p);
            if (!p) goto oom;
            sp = p;
            cap = nc;
        }
        sp[nsp].id = id;
        sp[nsp].text = tok_text(v, id, &sp[nsp].len);
        sp[nsp].control = (a & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)) != 0;
        if (sp[nsp].text && sp[nsp].len) nsp++;
    }
    if (nsp) qsort(sp, nsp, sizeof *sp, cmp_special);

    /* every occurrence of every special token that is allowed where it stands */
    size_t head[256], *next = NULL;
    for (size_t b = 0; b < 256; b++) head[b] = SIZE_MAX;
    if (nsp) {
        next = malloc(nsp * sizeof *next);
        if (!next) goto oom;
        for (size_t r = nsp; r-- > 0;) {
            unsigned char b = (unsigned char)sp[r].text[0];
            next[r] = head[b];
            head[b] = r;
        }
    }
    cap = 0;
    for (size_t i = from; i < to && nsp; i++) {
        for (size_t r = head[(unsigned char)text[i]]; r != SIZE_MAX; r = next[r]) {
            if (sp[r].len > to - i || memcmp(text + i, sp[r].text, sp[r].len) != 0) continue;
            if (sp[r].control && !all_template(tmpl, i, sp[r].len)) continue;
            if (nm == cap) {
                size_t nc = cap ? cap * 2 : 64;
                tok_match *p = realloc(m, nc * sizeof *p);
                if (!p) {
                    free(next);
                    goto oom;
                }
                m = p;
                cap = nc;
            }
            m[nm++] = (tok_match){r, i, sp[r].len};
        }
    }
    free(next);

    /* llama.cpp's decisions: token by token in priority order, leftmost non-overlapping
     * occurrences in text not yet taken */
    long sel = tok_select_specials(m, nm, len, err);
    if (sel < 0) goto fail;
    size_t n_acc = (size_t)sel;

    if (add_bos && tok_ids_push(ids, bos, err) != 0) goto fail;
    size_t at = from;
    for (size_t k = 0; k <= n_acc; k++) {
        size_t end = k < n_acc ? m[k].pos : to;
        if (end > at && tok_encode(v, text + at, end - at, false, false, ids, err) != 0) goto fail;
        if (k < n_acc) {
            if (tok_ids_push(ids, sp[m[k].rank].id, err) != 0) goto fail;
            at = m[k].pos + m[k].len;
        }
    }
    if (add_eos && tok_ids_push(ids, eos, err) != 0) goto fail;
    rc = 0;
    goto done;
oom:
    chatd_errorf(err, "tpl_tokenize: out of memory");
fail:
    ids->n = n0;
done:
    free(tmpl);
    free(sp);
    free(m);
    return rc;
}
