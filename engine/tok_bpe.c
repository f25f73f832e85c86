/* tok_bpe.c - byte-level BPE (GPT-2 style, as Qwen2/2.5/3, DeepSeek-R1-Distill and
 * Llama 3 use it): the pre-tokenizer that cuts text into words, and the rank-ordered merges
 * that turn each word into tokens, with a per-call cache for words seen before.
 *
 * Pre-tokenizing follows llama.cpp rather than the regular expression it is named after:
 * llama.cpp runs the Llama 3 expression through a hand-written splitter, and the Qwen2 one
 * through std::regex on a text where each code point is collapsed to one byte of its
 * category. Both come down to the same walk over code point classes, differing only in how
 * many digits make a word, so one splitter serves both (see split_words). */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

#define OOM(err) chatd_errorf((err), "tokenizer: out of memory")

/* ---- merges ---- */

static inline uint64_t merge_hash(uint64_t key) {
    key ^= key >> 31;
    key *= 0x7FB5D329728EA185ull;
    key ^= key >> 27;
    key *= 0x81DADEF4BC2DD44Dull;
    return key ^ (key >> 33);
}

/* The filter word and the two bits of a pair key (a blocked Bloom filter). */
static inline uint64_t filter_bits(uint64_t h) {
    return (1ull << ((h >> 40) & 63)) | (1ull << ((h >> 46) & 63));
}

static inline const tok_merge *merge_find(const tok_vocab *v, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    /* Most adjacent pairs in a word have no merge; the filter (a few hundred KB, unlike
     * the table's megabytes) rejects nearly all of them without a cache miss. */
    uint64_t h = merge_hash(key);
    uint64_t bits = filter_bits(h);
    if ((v->merge_filter[h & v->merge_filter_mask] & bits) != bits) return NULL;
    for (uint32_t i = (uint32_t)merge_hash(key) & v->merges_mask;; i = (i + 1) & v->merges_mask) {
        const tok_merge *m = &v->merges[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
    }
}

static uint64_t pair_str_hash(const char *l, size_t ll, const char *r, size_t rl) {
    return tok_hash(l, ll) ^ (tok_hash(r, rl) * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
}

/* The slot of the byte-string pair (l, r) in the index of merges that are not both
 * tokens: the one holding it, or the empty one where it would go. */
static uint32_t *merge_str_slot(const tok_vocab *v, const char *l, size_t ll, const char *r,
                                size_t rl) {
    uint64_t h = pair_str_hash(l, ll, r, rl);
    for (size_t i = (size_t)h & v->merges_str_mask;; i = (i + 1) & v->merges_str_mask) {
        uint32_t s = v->merges_str_index[i];
        if (!s) return &v->merges_str_index[i];
        const tok_merge_str *m = &v->merges_str[s - 1];
        if (m->llen == ll && m->rlen == rl && memcmp(v->merge_arena + m->loff, l, ll) == 0 &&
            memcmp(v->merge_arena + m->roff, r, rl) == 0)
            return &v->merges_str_index[i];
    }
}

/* The rank of merging the byte strings l and r when they are not both tokens, or -1.
 * Only the first line with a given pair is kept, which is llama.cpp's answer. */
static int32_t merge_str_rank(const tok_vocab *v, const char *l, size_t ll, const char *r,
                              size_t rl) {
    if (!v->n_merges_str) return -1;
    uint32_t s = *merge_str_slot(v, l, ll, r, rl);
    return s ? v->merges_str[s - 1].rank : -1;
}

/* Makes the index of non-token merges big enough for one more entry. */
static int merge_str_reserve(tok_vocab *v, chatd_error *err) {
    size_t cap = v->merges_str_index ? v->merges_str_mask + 1 : 0;
    if ((v->n_merges_str + 1) * 2 <= cap) return 0;
    size_t ncap = cap ? cap * 2 : 64;
    uint32_t *idx = calloc(ncap, sizeof *idx);
    if (!idx) return OOM(err);
    free(v->merges_str_index);
    v->merges_str_index = idx;
    v->merges_str_mask = ncap - 1;
    for (size_t k = 0; k < v->n_merges_str; k++) {
        const tok_merge_str *m = &v->merges_str[k];
        *merge_str_slot(v, v->merge_arena + m->loff, m->llen, v->merge_arena + m->roff, m->rlen) =
            (uint32_t)k + 1;
    }
    return 0;
}

int tok_bpe_load_merges(tok_vocab *v, const gguf_value *merges, chatd_error *err) {
    uint64_t n = merges->v.arr.n;
    if (n >= INT32_MAX) return chatd_errorf(err, "tokenizer: %llu merges", (unsigned long long)n);
    size_t cap = 16;
    while (cap < n + n / 2) cap *= 2;
    v->merges = malloc(cap * sizeof *v->merges);
    if (!v->merges) return OOM(err);
    for (size_t i = 0; i < cap; i++) v->merges[i].key = UINT64_MAX;
    v->merges_mask = (uint32_t)(cap - 1);
    size_t fcap = 64; /* filter words, about 16 bits per merge */
    while (fcap * 64 < n * 16) fcap *= 2;
    v->merge_filter = calloc(fcap, sizeof *v->merge_filter);
    if (!v->merge_filter) return OOM(err);
    v->merge_filter_mask = fcap - 1;

    size_t cat_cap = 256, arena_len = 0, arena_cap = 0, str_cap = 0;
    char *cat = malloc(cat_cap);
    if (!cat) return OOM(err);
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        gguf_str w = merges->v.arr.items[i].v.str;
        /* "left right", split at the first space after the first byte, as llama.cpp does;
         * a line without one is the pair ("", "") */
        const char *first = w.ptr, *second = w.ptr;
        size_t fl = 0, sl = 0;
        for (size_t p = 1; p < w.len; p++)
            if (w.ptr[p] == ' ') {
                fl = p;
                second = w.ptr + p + 1;
                sl = w.len - p - 1;
                break;
            }
        int32_t a = tok_lookup(v, first, fl), b = tok_lookup(v, second, sl);
        if (a != TOK_NULL && b != TOK_NULL && v->raw_len[a] != UINT32_MAX &&
            v->raw_len[b] != UINT32_MAX) {
            uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
            uint32_t j = (uint32_t)merge_hash(key) & v->merges_mask;
            while (v->merges[j].key != UINT64_MAX && v->merges[j].key != key)
                j = (j + 1) & v->merges_mask;
            if (v->merges[j].key == key) continue; /* an earlier line wins */
            size_t la = v->raw_len[a], lb = v->raw_len[b];
            if (la + lb > cat_cap) {
                while (la + lb > cat_cap) cat_cap *= 2;
                char *p = realloc(cat, cat_cap);
                if (!p) {
                    rc = OOM(err);
                    break;
                }
                cat = p;
            }
            memcpy(cat, v->raw_arena + v->raw_off[a], la);
            memcpy(cat + la, v->raw_arena + v->raw_off[b], lb);
            v->merges[j] = (tok_merge){key, (int32_t)i, tok_strmap_find(&v->raw_map, cat, la + lb)};
            uint64_t h = merge_hash(key);
            v->merge_filter[h & v->merge_filter_mask] |= filter_bits(h);
            continue;
        }
        /* A half that is not a token can still be a symbol in the middle of a merge (when
         * some merge's result is not a token); one that is not byte-encoded never can. */
        if (fl == 0 || sl == 0) continue;
        if (arena_len + fl + sl > arena_cap) {
            size_t nc = arena_cap ? arena_cap : 1024;
            while (arena_len + fl + sl > nc) nc *= 2;
            char *p = realloc(v->merge_arena, nc);
            if (!p) {
                rc = OOM(err);
                break;
            }
            v->merge_arena = p;
            arena_cap = nc;
        }
        size_t rl = tok_gpt2_unbyte(v, first, fl, v->merge_arena + arena_len);
        if (rl == SIZE_MAX) continue;
        size_t rr = tok_gpt2_unbyte(v, second, sl, v->merge_arena + arena_len + rl);
        if (rr == SIZE_MAX) continue;
        if (merge_str_reserve(v, err) != 0) {
            rc = -1;
            break;
        }
        uint32_t *slot =
            merge_str_slot(v, v->merge_arena + arena_len, rl, v->merge_arena + arena_len + rl, rr);
        if (*slot) continue; /* an earlier line wins */
        if (v->n_merges_str == str_cap) {
            size_t nc = str_cap ? str_cap * 2 : 16;
            tok_merge_str *p = realloc(v->merges_str, nc * sizeof *p);
            if (!p) {
                rc = OOM(err);
                break;
            }
            v->merges_str = p;
            str_cap = nc;
        }
        v->merges_str[v->n_merges_str++] =
            (tok_merge_str){(uint32_t)arena_len, (uint32_t)rl, (uint32_t)(arena_len + rl),
                            (uint32_t)rr, (int32_t)i};
        *slot = (uint32_t)v->n_merges_str;
        arena_len += rl + rr;
    }
    free(cat);
    return rc;
}

/* ---- the per-call word cache ---- */

/* Words up to this long are cached; longer ones are rare and cheap to miss. */
#define CACHE_MAX_WORD 128
/* Past this many words the cache stops growing (memory stays bounded on huge inputs). */
#define CACHE_MAX_ENTRIES (1u << 18)

typedef struct cache_entry {
    uint32_t key_off, key_len, ids_off, ids_n;
} cache_entry;

/* A direct-mapped memo of merge-table lookups. The merge table is megabytes and each
 * probe is a cache miss; text repeats its pairs (above all CJK, whose words are long and
 * rarely repeat whole), so a small table that stays in L2 answers most of them. */
#define PAIR_MEMO_MAX 8192

typedef struct pair_memo {
    uint64_t key; /* left << 32 | right; UINT64_MAX when empty */
    int32_t rank; /* -1: no such merge */
    int32_t result;
} pair_memo;

struct tok_wcache {
    pair_memo *memo;
    size_t memo_mask;
    uint32_t *slot; /* entry index + 1; 0 when empty */
    uint32_t *slot_hash;
    uint32_t mask;
    cache_entry *e;
    size_t n, cap;
    char *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
};

tok_wcache *tok_wcache_new(size_t text_len) {
    tok_wcache *c = calloc(1, sizeof(tok_wcache));
    if (!c) return NULL;
    /* sized to the text: a short chat message should not pay for clearing a big memo */
    size_t n = 256;
    while (n < PAIR_MEMO_MAX && n < text_len / 8) n *= 2;
    c->memo = malloc(n * sizeof *c->memo);
    if (!c->memo) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) c->memo[i].key = UINT64_MAX;
    c->memo_mask = n - 1;
    return c;
}

/* The merge of tokens (a, b): its rank, or -1, and the merged token in *result. */
static inline int32_t pair_rank(const tok_vocab *v, tok_wcache *c, int32_t a, int32_t b,
                                int32_t *result) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    pair_memo *m = &c->memo[merge_hash(key) & c->memo_mask];
    if (m->key != key) {
        const tok_merge *t = merge_find(v, a, b);
        *m = (pair_memo){key, t ? t->rank : -1, t ? t->result : TOK_NULL};
    }
    *result = m->result;
    return m->rank;
}

void tok_wcache_free(tok_wcache *c) {
    if (!c) return;
    free(c->memo);
    free(c->slot);
    free(c->slot_hash);
    free(c->e);
    free(c->keys);
    free(c->ids);
    free(c);
}

static const cache_entry *cache_find(const tok_wcache *c, const char *w, size_t n, uint64_t h) {
    if (!c->slot) return NULL;
    for (uint32_t i = (uint32_t)h & c->mask;; i = (i + 1) & c->mask) {
        uint32_t s = c->slot[i];
        if (!s) return NULL;
        const cache_entry *e = &c->e[s - 1];
        if (c->slot_hash[i] == (uint32_t)(h >> 32) && e->key_len == n &&
            memcmp(c->keys + e->key_off, w, n) == 0)
            return e;
    }
}

/* Makes room for need elements; the (possibly moved) block, or NULL when memory runs out
 * (the old block is then untouched). */
static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(p, nc * elem);
    if (q) *cap = nc;
    return q;
}

int tok_wcache_get(const tok_wcache *c, const char *w, size_t n, uint64_t *hash, tok_out *o) {
    if (n > CACHE_MAX_WORD) return 0;
    *hash = tok_hash(w, n);
    const cache_entry *e = cache_find(c, w, n, *hash);
    if (!e) return 0;
    for (uint32_t k = 0; k < e->ids_n; k++)
        if (tok_ids_push(o->ids, c->ids[e->ids_off + k], o->err) != 0) return -1;
    return 1;
}

void tok_wcache_put(tok_wcache *c, const char *w, size_t n, uint64_t h, const int32_t *ids,
                    size_t n_ids) {
    if (n > CACHE_MAX_WORD || c->n >= CACHE_MAX_ENTRIES) return;
    if (!c->slot || (c->n + 1) * 2 > (size_t)c->mask + 1) {
        size_t cap = c->slot ? ((size_t)c->mask + 1) * 2 : 1024;
        uint32_t *slot = calloc(cap, sizeof *slot);
        uint32_t *sh = malloc(cap * sizeof *sh);
        if (!slot || !sh) {
            free(slot);
            free(sh);
            return;
        }
        for (size_t k = 0; k < c->n; k++) {
            const cache_entry *e = &c->e[k];
            uint64_t eh = tok_hash(c->keys + e->key_off, e->key_len);
            size_t i = (size_t)eh & (cap - 1);
            while (slot[i]) i = (i + 1) & (cap - 1);
            slot[i] = (uint32_t)k + 1;
            sh[i] = (uint32_t)(eh >> 32);
        }
        free(c->slot);
        free(c->slot_hash);
        c->slot = slot;
        c->slot_hash = sh;
        c->mask = (uint32_t)(cap - 1);
    }
    void *p = grow(c->e, &c->cap, c->n + 1, sizeof *c->e);
    if (!p) return;
    c->e = p;
    if (!(p = grow(c->keys, &c->keys_cap, c->keys_len + n, 1))) return;
    c->keys = p;
    if (!(p = grow(c->ids, &c->ids_cap, c->ids_len + n_ids, sizeof *c->ids))) return;
    c->ids = p;
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, n_ids * sizeof *ids);
    c->e[c->n] =
        (cache_entry){(uint32_t)c->keys_len, (uint32_t)n, (uint32_t)c->ids_len, (uint32_t)n_ids};
    c->keys_len += n;
    c->ids_len += n_ids;
    uint32_t i = (uint32_t)h & c->mask;
    while (c->slot[i]) i = (i + 1) & c->mask;
    c->slot[i] = (uint32_t)++c->n;
    c->slot_hash[i] = (uint32_t)(h >> 32);
}

/* ---- merging one word ---- */

typedef struct sym {
    uint32_t start, n; /* bytes of the word; n == 0 once merged into its left neighbour */
    int32_t prev, next;
    int32_t id; /* the token this text is, or TOK_NULL */
} sym;

typedef struct bigram {
    int32_t rank, left, right, result;
    uint32_t size; /* bytes of both halves when queued: a changed pair is stale */
} bigram;

/* Scratch for one fragment, reused word after word. */
typedef struct bpe_work {
    sym *s;
    size_t s_cap;
    bigram *h;
    size_t h_n, h_cap;
} bpe_work;

static inline bool bg_less(const bigram *a, const bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_work *w, bigram b) {
    size_t i = w->h_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_less(&b, &w->h[p])) break;
        w->h[i] = w->h[p];
        i = p;
    }
    w->h[i] = b;
}

static bigram heap_pop(bpe_work *w) {
    bigram top = w->h[0];
    bigram last = w->h[--w->h_n];
    size_t i = 0, n = w->h_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bg_less(&w->h[c + 1], &w->h[c])) c++;
        if (!bg_less(&w->h[c], &last)) break;
        w->h[i] = w->h[c];
        i = c;
    }
    if (n) w->h[i] = last;
    return top;
}

static void add_bigram(const tok_vocab *v, bpe_work *w, tok_wcache *c, const char *word, int32_t l,
                       int32_t r) {
    if (l < 0 || r < 0) return;
    const sym *a = &w->s[l], *b = &w->s[r];
    int32_t rank, result;
    if (a->id != TOK_NULL && b->id != TOK_NULL) {
        rank = pair_rank(v, c, a->id, b->id, &result);
        if (rank < 0) return;
    } else {
        if (!v->n_merges_str) return;
        rank = merge_str_rank(v, word + a->start, a->n, word + b->start, b->n);
        if (rank < 0) return;
        result = tok_strmap_find(&v->raw_map, word + a->start, (size_t)a->n + b->n);
    }
    heap_push(w, (bigram){rank, l, r, result, a->n + b->n});
}

/* Appends the tokens of one pre-tokenized word (raw bytes). */
static int bpe_word(const tok_vocab *v, bpe_work *w, tok_wcache *cache, const char *word, size_t n,
                    tok_out *o) {
    uint64_t h = 0;
    int hit = tok_wcache_get(cache, word, n, &h, o);
    if (hit != 0) return hit < 0 ? -1 : 0;
    size_t first_out = o->ids->n;

    if (v->ignore_merges) {
        int32_t id = tok_strmap_find(&v->raw_map, word, n);
        if (id != TOK_NULL) {
            if (tok_ids_push(o->ids, id, o->err) != 0) return -1;
            goto done;
        }
    }

    if (n > UINT32_MAX / 4) return chatd_errorf(o->err, "tokenizer: word of %zu bytes", n);
    void *p = grow(w->s, &w->s_cap, n, sizeof *w->s);
    if (!p) return OOM(o->err);
    w->s = p;
    if (!(p = grow(w->h, &w->h_cap, 3 * n, sizeof *w->h))) return OOM(o->err);
    w->h = p;
    /* every raw byte starts as one symbol: it is one character of the byte-encoded word */
    for (size_t i = 0; i < n; i++)
        w->s[i] = (sym){(uint32_t)i, 1, (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1,
                        v->byte_tok[(unsigned char)word[i]]};
    w->h_n = 0;
    for (size_t i = 1; i < n; i++) add_bigram(v, w, cache, word, (int32_t)i - 1, (int32_t)i);
    while (w->h_n) {
        bigram b = heap_pop(w);
        sym *l = &w->s[b.left], *r = &w->s[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->id = b.result;
        l->next = r->next;
        if (r->next >= 0) w->s[r->next].prev = b.left;
        add_bigram(v, w, cache, word, l->prev, b.left);
        add_bigram(v, w, cache, word, b.left, l->next);
    }
    for (int32_t i = 0; i != -1; i = w->s[i].next) {
        const sym *s = &w->s[i];
        if (s->id != TOK_NULL) {
            if (tok_ids_push(o->ids, s->id, o->err) != 0) return -1;
            continue;
        }
        /* not a token: llama.cpp looks up each byte of the byte-encoded text alone */
        for (uint32_t k = 0; k < s->n; k++) {
            unsigned char b = (unsigned char)word[s->start + k];
            for (unsigned j = 0; j < v->byte_enc_len[b]; j++) {
                int32_t id = tok_lookup(v, &v->byte_enc[b][j], 1);
                if (id != TOK_NULL && tok_ids_push(o->ids, id, o->err) != 0) return -1;
            }
        }
    }
done:
    tok_wcache_put(cache, word, n, h, o->ids->v + first_out, o->ids->n - first_out);
    return 0;
}

/* ---- pre-tokenizing ---- */

enum { C_L = 1, C_N = 2, C_WS = 4 };

#define L_ C_L
#define N_ C_N
#define W_ C_WS
static const unsigned char ascii_class[128] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  W_, W_, W_, W_, W_, 0,  0, /* \t \n \v \f \r */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    W_, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* space */
    N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, 0,  0,  0,  0,  0,  0,  /* 0-9 */
    0,  L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* A-O */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, 0,  0,  0,  0,  0,  /* P-Z */
    0,  L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* a-o */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, 0,  0,  0,  0,  0,  /* p-z */
};
#undef L_
#undef N_
#undef W_

static unsigned char cpt_class(uint32_t c, size_t *hint) {
    if (c < 128) return ascii_class[c];
    if (tok_cpt_is_space(c)) return C_WS;
    uint8_t f = tok_cpt_flags(c, hint);
    return (f & TOK_CPT_LETTER) ? C_L : (f & TOK_CPT_NUMBER) ? C_N : 0;
}

static inline uint32_t ascii_lower(uint32_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

typedef struct split_ctx {
    const tok_vocab *v;
    bpe_work *w;
    tok_wcache *cache;
    tok_out *o;
    const char *bytes; /* the fragment, as UTF-8 re-encoded from its code points */
    const uint32_t *off;
} split_ctx;

static int emit(split_ctx *x, size_t from, size_t to) {
    if (to <= from) return 0;
    return bpe_word(x->v, x->w, x->cache, x->bytes + x->off[from], x->off[to] - x->off[from], x->o);
}

/* Cuts code points [0, n) into words, llama.cpp's unicode_regex_split_custom_llama3 step
 * for step; max_digits is 3 for Llama 3 (\p{N}{1,3}) and 1 for Qwen2 (\p{N}), whose
 * regex otherwise behaves identically on the collapsed text llama.cpp gives std::regex. */
static int split_words(split_ctx *x, const uint32_t *cpt, const unsigned char *cls, size_t n,
                       size_t max_digits) {
    size_t pos = 0, prev = 0;
#define EMIT_TO(end)                                                                               \
    do {                                                                                           \
        size_t e_ = (end);                                                                         \
        if (emit(x, prev, e_) != 0) return -1;                                                     \
        prev = e_;                                                                                 \
    } while (0)
    while (pos < n) {
        uint32_t c = cpt[pos];
        unsigned char f = cls[pos];

        /* 's 't 're 've 'm 'll 'd, either case */
        if (c == '\'' && pos + 1 < n) {
            uint32_t c1 = ascii_lower(cpt[pos + 1]);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                pos += 2;
                EMIT_TO(pos);
                continue;
            }
            if (pos + 2 < n) {
                uint32_t c2 = ascii_lower(cpt[pos + 2]);
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') ||
                    (c1 == 'l' && c2 == 'l')) {
                    pos += 3;
                    EMIT_TO(pos);
                    continue;
                }
            }
        }

        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(c == '\r' || c == '\n' || (f & C_N))) {
            if ((f & C_L) || (pos + 1 < n && (cls[pos + 1] & C_L))) {
                pos++;
                while (pos < n && (cls[pos] & C_L)) pos++;
                EMIT_TO(pos);
                continue;
            }
        }

        /* \p{N}{1,max_digits} */
        if (f & C_N) {
            size_t ini = pos;
            while (pos < n && (cls[pos] & C_N)) {
                if (++pos - ini >= max_digits) {
                    EMIT_TO(pos);
                    ini = pos;
                }
            }
            EMIT_TO(pos);
            continue;
        }

        /* ' '?[^\s\p{L}\p{N}]+[\r\n]* (past the end of the text counts as no class, which
         * lets a lone trailing space through here, as in llama.cpp) */
        unsigned char f2 = c == ' ' ? (pos + 1 < n ? cls[pos + 1] : 0) : f;
        if (!(f2 & (C_WS | C_L | C_N))) {
            pos += c == ' ';
            while (pos < n && !(cls[pos] & (C_WS | C_L | C_N))) pos++;
            while (pos < n && (cpt[pos] == '\r' || cpt[pos] == '\n')) pos++;
            EMIT_TO(pos);
            continue;
        }

        /* whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+ */
        size_t nws = 0, last_nl = 0;
        while (pos + nws < n && (cls[pos + nws] & C_WS)) {
            if (cpt[pos + nws] == '\r' || cpt[pos + nws] == '\n') last_nl = pos + nws + 1;
            nws++;
        }
        if (last_nl > 0) {
            pos = last_nl;
            EMIT_TO(pos);
            continue;
        }
        if (nws > 1 && pos + nws < n) {
            pos += nws - 1;
            EMIT_TO(pos);
            continue;
        }
        if (nws > 0) {
            pos += nws;
            EMIT_TO(pos);
            continue;
        }
        pos++;
        EMIT_TO(pos);
    }
#undef EMIT_TO
    return 0;
}

int tok_bpe_fragment(const tok_vocab *v, const char *text, size_t len, tok_wcache *cache,
                     tok_out *out) {
    const unsigned char *t = (const unsigned char *)text;
    if (len > UINT32_MAX / 4)
        return chatd_errorf(out->err, "tokenizer: text of %zu bytes is too long", len);
    uint32_t *cpt = malloc(len * sizeof *cpt);
    uint32_t *off = malloc((len + 1) * sizeof *off);
    unsigned char *cls = malloc(len);
    char *norm = NULL;
    bpe_work w = {0};
    int rc = -1;
    if (!cpt || !off || !cls) {
        OOM(out->err);
        goto end;
    }
    /* Decode as llama.cpp does; where that changes the bytes (invalid sequences become
     * U+FFFD, overlong forms shrink), the words are cut from the re-encoded text. */
    size_t n = 0, hint = 0;
    bool changed = false;
    for (size_t i = 0; i < len;) {
        size_t from = i;
        if (t[i] < 0x80) { /* ASCII needs no decoding and cannot change */
            off[n] = (uint32_t)i;
            cls[n] = ascii_class[t[i]];
            cpt[n++] = t[i++];
            continue;
        }
        uint32_t c = tok_utf8_decode(t, len, &i);
        unsigned char e[4];
        size_t el = tok_utf8_encode(c, e);
        if (el != i - from || memcmp(e, t + from, el) != 0) changed = true;
        off[n] = (uint32_t)from;
        cls[n] = cpt_class(c, &hint);
        cpt[n++] = c;
    }
    off[n] = (uint32_t)len;
    const char *bytes = text;
    if (changed) {
        norm = malloc(n * 4 + 1);
        if (!norm) {
            OOM(out->err);
            goto end;
        }
        size_t at = 0;
        for (size_t k = 0; k < n; k++) {
            off[k] = (uint32_t)at;
            at += tok_utf8_encode(cpt[k], (unsigned char *)norm + at);
        }
        off[n] = (uint32_t)at;
        bytes = norm;
    }
    split_ctx x = {v, &w, cache, out, bytes, off};
    rc = split_words(&x, cpt, cls, n, v->pre == TOK_PRE_LLAMA3 ? 3 : 1);
end:
    free(cpt);
    free(off);
    free(cls);
    free(norm);
    free(w.s);
    free(w.h);
    return rc;
}
