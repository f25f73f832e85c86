/* tok_spm.c - SentencePiece BPE as llama.cpp runs it (LLaMA, Llama 2, TinyLlama,
 * TinyStories): start from single characters, repeatedly merge the adjacent pair whose
 * merged text is the highest-scoring token, and spell whatever is left that is not a
 * token as <0xNN> byte tokens.
 *
 * llama.cpp also keeps a map from merged text back to its two halves to "resegment"
 * symbols that are not tokens. Every merge it makes produces a token, and no single
 * starting character can equal a pair's text, so that path never changes the output and
 * is left out here. */
#include "tok_internal.h"

#include <stdlib.h>

#define OOM(err) chatd_errorf((err), "tokenizer: out of memory")

typedef struct ssym {
    uint32_t start, n; /* n == 0 once merged into the left neighbour */
    int32_t prev, next;
} ssym;

typedef struct sbigram {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of both halves when queued: a changed pair is stale */
} sbigram;

typedef struct spm_work {
    const tok_vocab *v;
    const char *text;
    ssym *s;
    sbigram *h;
    size_t h_n;
} spm_work;

/* Highest score first; among equals the leftmost pair. */
static inline bool sb_before(const sbigram *a, const sbigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(spm_work *w, sbigram b) {
    size_t i = w->h_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!sb_before(&b, &w->h[p])) break;
        w->h[i] = w->h[p];
        i = p;
    }
    w->h[i] = b;
}

static sbigram heap_pop(spm_work *w) {
    sbigram top = w->h[0];
    sbigram last = w->h[--w->h_n];
    size_t i = 0, n = w->h_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && sb_before(&w->h[c + 1], &w->h[c])) c++;
        if (!sb_before(&w->h[c], &last)) break;
        w->h[i] = w->h[c];
        i = c;
    }
    if (n) w->h[i] = last;
    return top;
}

static void try_add(spm_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    uint32_t size = w->s[l].n + w->s[r].n;
    int32_t id = tok_lookup(w->v, w->text + w->s[l].start, size);
    if (id == TOK_NULL) return;
    heap_push(w, (sbigram){w->v->score[id], l, r, size});
}

/* SentencePiece on text[0, len): one independent run of the merge loop. */
static int spm_run(spm_work *w, const char *text, size_t len, tok_wcache *cache, tok_out *o) {
    const tok_vocab *v = w->v;
    uint64_t h = 0;
    int hit = cache ? tok_wcache_get(cache, text, len, &h, o) : 0;
    if (hit != 0) return hit < 0 ? -1 : 0;
    size_t first_out = o->ids->n;
    w->text = text;
    w->h_n = 0;
    /* one symbol per UTF-8 character, by the lead byte alone (clipped at the end) */
    int32_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t l = tok_utf8_len((unsigned char)text[off]);
        if (l > len - off) l = len - off;
        w->s[n] = (ssym){(uint32_t)off, (uint32_t)l, n - 1, off + l == len ? -1 : n + 1};
        off += l;
        n++;
    }
    for (int32_t i = 1; i < n; i++) try_add(w, i - 1, i);
    while (w->h_n) {
        sbigram b = heap_pop(w);
        ssym *l = &w->s[b.left], *r = &w->s[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->s[r->next].prev = b.left;
        try_add(w, l->prev, b.left);
        try_add(w, b.left, l->next);
    }
    for (int32_t i = 0; i != -1; i = w->s[i].next) {
        const ssym *s = &w->s[i];
        int32_t id = tok_lookup(v, text + s->start, s->n);
        if (id != TOK_NULL) {
            if (tok_ids_push(o->ids, id, o->err) != 0) return -1;
            continue;
        }
        for (uint32_t k = 0; k < s->n; k++) {
            unsigned char b = (unsigned char)text[s->start + k];
            if (v->byte_tok[b] == TOK_NULL)
                return chatd_errorf(o->err,
                                    "tokenizer: the vocabulary has no token for byte 0x%02X", b);
            if (tok_ids_push(o->ids, v->byte_tok[b], o->err) != 0) return -1;
        }
    }
    if (cache) tok_wcache_put(cache, text, len, h, o->ids->v + first_out, o->ids->n - first_out);
    return 0;
}

static bool is_escaped_space(const char *p) {
    return p[0] == '\xE2' && p[1] == '\x96' && p[2] == '\x81';
}

int tok_spm_fragment(const tok_vocab *v, const char *text, size_t len, tok_wcache *cache,
                     tok_out *o) {
    if (len == 0) return 0;
    if (len > UINT32_MAX / 4) return chatd_errorf(o->err, "tokenizer: text of %zu bytes", len);
    spm_work w = {v, text, malloc(len * sizeof(ssym)), malloc(3 * len * sizeof(sbigram)), 0};
    if (!w.s || !w.h) {
        free(w.s);
        free(w.h);
        return OOM(o->err);
    }
    /* Merging one long text is slow (its queue holds every pair of the text at once), so
     * when no token of the vocab can reach across the start of a word ("x▁" inside a
     * token), each word runs on its own: no merge could cross between them, so the
     * result is the same. */
    size_t seg = 0;
    int rc = 0;
    if (v->spm_word_cuts) {
        for (size_t off = 0; off < len && rc == 0;) {
            size_t l = tok_utf8_len((unsigned char)text[off]);
            if (off > seg && off + 3 <= len && is_escaped_space(text + off) &&
                !(off >= 3 && is_escaped_space(text + off - 3))) {
                rc = spm_run(&w, text + seg, off - seg, cache, o);
                seg = off;
            }
            off += l;
        }
    }
    /* without word cuts the whole text is one run, not worth remembering */
    if (rc == 0) rc = spm_run(&w, text + seg, len - seg, v->spm_word_cuts ? cache : NULL, o);
    free(w.s);
    free(w.h);
    return rc;
}
