/* tokenizer.c - text to ids: splitting the text at special tokens the way llama.cpp's
 * tokenizer_st_partition does, handing the raw pieces to byte-level BPE (tok_bpe.c) or
 * SentencePiece (tok_spm.c), adding BOS/EOS; plus the small pieces every tokenizer file
 * shares (growable buffers, hashing, the string map) and the vocab accessors. Loading is
 * in tok_load.c, decoding in tok_decode.c.
 *
 * The reference is llama.cpp's src/llama-vocab.cpp; where this code does something odd,
 * it is because the reference does, and a model only understands the ids its reference
 * tokenizer produces. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

#define OOM(err) chatd_errorf((err), "tokenizer: out of memory")

/* ---- growable buffers ---- */

void tok_ids_free(tok_ids *ids) {
    if (!ids) return;
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

static int ids_reserve(tok_ids *ids, size_t extra, chatd_error *err) {
    if (ids->cap - ids->n >= extra) return 0;
    size_t cap = ids->cap ? ids->cap : 16;
    while (cap - ids->n < extra) {
        if (cap > SIZE_MAX / 2 / sizeof(int32_t)) return OOM(err);
        cap *= 2;
    }
    int32_t *p = realloc(ids->v, cap * sizeof *p);
    if (!p) return OOM(err);
    ids->v = p;
    ids->cap = cap;
    return 0;
}

int tok_ids_push(tok_ids *ids, int32_t id, chatd_error *err) {
    if (ids->n == ids->cap && ids_reserve(ids, 1, err) != 0) return -1;
    ids->v[ids->n++] = id;
    return 0;
}

void tok_buf_free(tok_buf *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tok_buf_append(tok_buf *b, const void *data, size_t n, chatd_error *err) {
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) return OOM(err);
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p) return OOM(err);
        b->data = p;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
}

uint64_t tok_hash(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)len * 0xFF51AFD7ED558CCDull);
    while (len >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ mix64(k)) * 0x9FB21C651E98DF25ull;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t k = 0;
        memcpy(&k, p, len);
        h = (h ^ mix64(k ^ 0xA5A5A5A5ull)) * 0x9FB21C651E98DF25ull;
    }
    return mix64(h);
}

int tok_strmap_init(tok_strmap *m, size_t n_keys, const char *arena, const uint32_t *off,
                    const uint32_t *len, chatd_error *err) {
    size_t cap = 16;
    while (cap < n_keys * 2) cap *= 2;
    m->hash = malloc(cap * sizeof *m->hash);
    m->id = malloc(cap * sizeof *m->id);
    if (!m->hash || !m->id) {
        free(m->hash);
        free(m->id);
        m->hash = NULL;
        m->id = NULL;
        return OOM(err);
    }
    for (size_t i = 0; i < cap; i++) m->id[i] = TOK_NULL;
    m->mask = (uint32_t)(cap - 1);
    m->arena = arena;
    m->off = off;
    m->len = len;
    return 0;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->hash);
    free(m->id);
    m->hash = NULL;
    m->id = NULL;
}

static inline bool strmap_eq(const tok_strmap *m, int32_t id, const void *key, size_t len) {
    return m->len[id] == len && memcmp(m->arena + m->off[id], key, len) == 0;
}

int32_t tok_strmap_insert(tok_strmap *m, int32_t id) {
    const char *key = m->arena + m->off[id];
    size_t len = m->len[id];
    uint64_t h = tok_hash(key, len);
    for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
        if (m->id[i] == TOK_NULL) {
            m->id[i] = id;
            m->hash[i] = (uint32_t)(h >> 32);
            return id;
        }
        if (m->hash[i] == (uint32_t)(h >> 32) && strmap_eq(m, m->id[i], key, len)) return m->id[i];
    }
}

int32_t tok_strmap_find(const tok_strmap *m, const void *key, size_t len) {
    if (!m->id) return TOK_NULL;
    uint64_t h = tok_hash(key, len);
    for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->id[i];
        if (id == TOK_NULL) return TOK_NULL;
        if (m->hash[i] == (uint32_t)(h >> 32) && strmap_eq(m, id, key, len)) return id;
    }
}

/* ---- splitting text at special tokens (llama.cpp's tokenizer_st_partition) ---- */

/* A piece of the input: a special token, or raw text to run the tokenizer on. */
typedef struct frag {
    size_t off, len;
    int32_t id; /* TOK_NULL for raw text */
} frag;

static int cmp_match(const void *a, const void *b) {
    const tok_match *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_match_pos(const void *a, const void *b) {
    const tok_match *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

long tok_select_specials(tok_match *m, size_t n, size_t len, chatd_error *err) {
    if (n == 0) return 0;
    unsigned char *taken = calloc(len + 1, 1);
    if (!taken) return chatd_errorf(err, "out of memory");
    qsort(m, n, sizeof *m, cmp_match);
    size_t n_acc = 0, last_end = 0;
    for (size_t k = 0; k < n; k++) {
        if (k == 0 || m[k].rank != m[k - 1].rank) last_end = 0;
        bool ok = m[k].pos >= last_end;
        for (size_t j = m[k].pos; ok && j < m[k].pos + m[k].len; j++) ok = !taken[j];
        if (!ok) continue;
        memset(taken + m[k].pos, 1, m[k].len);
        last_end = m[k].pos + m[k].len;
        m[n_acc++] = m[k];
    }
    free(taken);
    qsort(m, n_acc, sizeof *m, cmp_match_pos);
    return (long)n_acc;
}

/* llama.cpp takes the special tokens one at a time, longest first, and cuts every
 * leftmost non-overlapping occurrence out of the text that is still raw. Doing that
 * literally costs one scan of the text per special token (256 for Llama 3); this finds
 * every occurrence of every token in one trie walk and then replays the same decisions,
 * token by token, on the sorted matches. */
static int partition(const tok_vocab *v, const char *text, size_t len, bool parse_special,
                     frag **out, size_t *n_out, chatd_error *err) {
    const unsigned char *t = (const unsigned char *)text;
    tok_match *m = NULL;
    size_t nm = 0, cap = 0;
    for (size_t i = 0; i < len && v->n_special; i++) {
        if (!v->special_first[t[i]]) continue;
        int32_t node = 0;
        for (size_t j = i; j < len; j++) {
            int32_t c = v->trie[node].child;
            while (c >= 0 && v->trie[c].byte != t[j]) c = v->trie[c].sibling;
            if (c < 0) break;
            node = c;
            int32_t id = v->trie[node].id;
            if (id == TOK_NULL) continue;
            if (!parse_special && (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
            if (nm == cap) {
                size_t nc = cap ? cap * 2 : 16;
                tok_match *p = realloc(m, nc * sizeof *p);
                if (!p) {
                    free(m);
                    return OOM(err);
                }
                m = p;
                cap = nc;
            }
            m[nm++] = (tok_match){(size_t)v->special_rank[id], i, v->text_len[id]};
        }
    }

    long sel = tok_select_specials(m, nm, len, err);
    if (sel < 0) {
        free(m);
        return -1;
    }
    size_t n_acc = (size_t)sel;
    frag *fr = malloc((2 * n_acc + 1) * sizeof *fr);
    if (!fr) {
        free(m);
        return OOM(err);
    }
    size_t nf = 0, at = 0;
    for (size_t k = 0; k < n_acc; k++) {
        if (m[k].pos > at) fr[nf++] = (frag){at, m[k].pos - at, TOK_NULL};
        fr[nf++] = (frag){m[k].pos, m[k].len, v->special[m[k].rank]};
        at = m[k].pos + m[k].len;
    }
    if (at < len) fr[nf++] = (frag){at, len - at, TOK_NULL};
    free(m);
    *out = fr;
    *n_out = nf;
    return 0;
}

/* ---- encoding ---- */

static int encode_spm(const tok_vocab *v, const char *text, size_t len, const frag *fr, size_t nf,
                      bool add_special, tok_out *o) {
    bool prev_special = true; /* the text starts as if after a special token */
    if (add_special && v->add_bos && tok_ids_push(o->ids, v->bos, o->err) != 0) return -1;
    tok_wcache *cache = NULL;
    for (size_t k = 0; k < nf; k++) {
        if (fr[k].id != TOK_NULL) {
            if (tok_ids_push(o->ids, fr[k].id, o->err) != 0) goto fail;
            prev_special = true;
            continue;
        }
        if (!cache && !(cache = tok_wcache_new(len))) {
            OOM(o->err);
            goto fail;
        }
        /* SentencePiece sees " " + text with every space written as U+2581 */
        bool prefix = v->add_space_prefix && prev_special;
        size_t n = fr[k].len + prefix;
        char *buf = malloc(n * 3 + 1);
        if (!buf) {
            OOM(o->err);
            goto fail;
        }
        size_t w = 0;
        if (prefix) {
            memcpy(buf, "\xE2\x96\x81", 3);
            w = 3;
        }
        const char *s = text + fr[k].off;
        for (size_t i = 0; i < fr[k].len; i++) {
            if (s[i] == ' ') {
                memcpy(buf + w, "\xE2\x96\x81", 3);
                w += 3;
            } else {
                buf[w++] = s[i];
            }
        }
        int rc = tok_spm_fragment(v, buf, w, cache, o);
        free(buf);
        if (rc != 0) goto fail;
        prev_special = false;
    }
    tok_wcache_free(cache);
    if (add_special && v->add_eos && tok_ids_push(o->ids, v->eos, o->err) != 0) return -1;
    return 0;
fail:
    tok_wcache_free(cache);
    return -1;
}

static int encode_bpe(const tok_vocab *v, const char *text, size_t len, const frag *fr, size_t nf,
                      bool add_special, tok_out *o) {
    if (add_special && v->add_bos && tok_ids_push(o->ids, v->bos, o->err) != 0) return -1;
    tok_wcache *cache = NULL;
    int rc = 0;
    for (size_t k = 0; k < nf && rc == 0; k++) {
        if (fr[k].id != TOK_NULL) {
            rc = tok_ids_push(o->ids, fr[k].id, o->err);
            continue;
        }
        if (!cache) {
            cache = tok_wcache_new(len);
            if (!cache) {
                rc = OOM(o->err);
                break;
            }
        }
        rc = tok_bpe_fragment(v, text + fr[k].off, fr[k].len, cache, o);
    }
    tok_wcache_free(cache);
    if (rc != 0) return -1;
    if (add_special && v->add_eos && tok_ids_push(o->ids, v->eos, o->err) != 0) return -1;
    return 0;
}

int tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
               bool parse_special, tok_ids *out, chatd_error *err) {
    if (!v || !out || (!text && len)) return chatd_errorf(err, "tokenizer: bad arguments");
    size_t n0 = out->n;
    frag *fr = NULL;
    size_t nf = 0;
    if (len && partition(v, text, len, parse_special, &fr, &nf, err) != 0) return -1;
    tok_out o = {out, err};
    int rc = v->kind == TOK_KIND_SPM ? encode_spm(v, text, len, fr, nf, add_special, &o)
                                     : encode_bpe(v, text, len, fr, nf, add_special, &o);
    free(fr);
    if (rc != 0) out->n = n0;
    return rc;
}

/* ---- accessors ---- */

static bool valid_id(const tok_vocab *v, int32_t id) {
    return v && id >= 0 && id < v->n_tokens;
}

int32_t tok_n_vocab(const tok_vocab *v) {
    return v->n_tokens;
}
tok_kind tok_vocab_kind(const tok_vocab *v) {
    return v->kind;
}
const char *tok_model_name(const tok_vocab *v) {
    return v->model_name;
}
const char *tok_pre_name(const tok_vocab *v) {
    return v->pre_name;
}

const char *tok_text(const tok_vocab *v, int32_t id, size_t *len) {
    if (!valid_id(v, id)) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = v->text_len[id];
    return v->text_arena + v->text_off[id];
}

int32_t tok_find(const tok_vocab *v, const char *text, size_t len) {
    return tok_lookup(v, text, len);
}

uint32_t tok_attr(const tok_vocab *v, int32_t id) {
    return valid_id(v, id) ? v->attr[id] : 0;
}
float tok_score(const tok_vocab *v, int32_t id) {
    return valid_id(v, id) ? v->score[id] : 0.0f;
}
bool tok_is_control(const tok_vocab *v, int32_t id) {
    return valid_id(v, id) && (v->attr[id] & TOK_ATTR_CONTROL);
}

bool tok_is_eog(const tok_vocab *v, int32_t id) {
    if (!valid_id(v, id)) return false;
    size_t lo = 0, hi = v->n_eog;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->eog[mid] == id) return true;
        if (v->eog[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

size_t tok_eog_ids(const tok_vocab *v, const int32_t **ids) {
    if (ids) *ids = v->eog;
    return v->n_eog;
}

int32_t tok_bos(const tok_vocab *v) {
    return v->bos;
}
int32_t tok_eos(const tok_vocab *v) {
    return v->eos;
}
int32_t tok_eot(const tok_vocab *v) {
    return v->eot;
}
int32_t tok_eom(const tok_vocab *v) {
    return v->eom;
}
int32_t tok_pad(const tok_vocab *v) {
    return v->pad;
}
int32_t tok_unk(const tok_vocab *v) {
    return v->unk;
}
int32_t tok_nl(const tok_vocab *v) {
    return v->nl;
}
bool tok_add_bos(const tok_vocab *v) {
    return v->add_bos;
}
bool tok_add_eos(const tok_vocab *v) {
    return v->add_eos;
}
bool tok_add_space_prefix(const tok_vocab *v) {
    return v->add_space_prefix;
}
