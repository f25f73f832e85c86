/* kvcache.c - the paged key/value cache (see include/chatd/kvcache.h). */
#include "chatd/kvcache.h"

#include <stdlib.h>
#include <string.h>

size_t kv_block_bytes(kv_type type, int64_t n_layer, int64_t k_dim, int64_t v_dim) {
    size_t es = type == KV_F16 ? 2 : 4;
    return (size_t)n_layer * KV_BLOCK * (size_t)(k_dim + v_dim) * es;
}

int kv_pool_init(kv_pool *p, kv_type type, int64_t n_layer, int64_t k_dim, int64_t v_dim,
                 int64_t n_blocks, chatd_error *err) {
    memset(p, 0, sizeof *p);
    if (n_blocks < 1 || n_blocks > INT32_MAX)
        return chatd_errorf(err, "KV cache of %lld blocks is out of range", (long long)n_blocks);
    p->type = type;
    p->n_layer = n_layer;
    p->k_dim = k_dim;
    p->v_dim = v_dim;
    p->n_blocks = n_blocks;
    p->elem_size = type == KV_F16 ? 2 : 4;
    size_t kb = (size_t)n_blocks * n_layer * KV_BLOCK * k_dim * p->elem_size;
    size_t vb = (size_t)n_blocks * n_layer * KV_BLOCK * v_dim * p->elem_size;
    /* calloc: pages are touched only when a block is first written */
    p->k = calloc(1, kb);
    p->v = calloc(1, vb);
    p->refcount = calloc((size_t)n_blocks, sizeof *p->refcount);
    p->free_list = malloc((size_t)n_blocks * sizeof *p->free_list);
    if (!p->k || !p->v || !p->refcount || !p->free_list) {
        kv_pool_free(p);
        return chatd_errorf(err, "out of memory for a KV cache of %.1f MiB",
                            (double)(kb + vb) / (1 << 20));
    }
    /* hand out low block ids first */
    for (int64_t i = 0; i < n_blocks; i++) p->free_list[i] = (int32_t)(n_blocks - 1 - i);
    p->n_free = n_blocks;
    return 0;
}

void kv_pool_free(kv_pool *p) {
    free(p->k);
    free(p->v);
    free(p->refcount);
    free(p->free_list);
    memset(p, 0, sizeof *p);
}

int64_t kv_pool_used(const kv_pool *p) {
    return p->n_blocks - p->n_free;
}

int kv_seq_reserve(kv_pool *p, kv_seq *s, int64_t n_pos, chatd_error *err) {
    int64_t need = (n_pos + KV_BLOCK - 1) / KV_BLOCK;
    if (need <= s->n_blocks) {
        if (n_pos > s->n_pos) s->n_pos = n_pos;
        return 0;
    }
    int64_t more = need - s->n_blocks;
    if (more > p->n_free)
        return chatd_errorf(err, "KV cache full: %lld more blocks needed, %lld free",
                            (long long)more, (long long)p->n_free);
    if (need > s->cap) {
        int64_t cap = s->cap ? s->cap : 8;
        while (cap < need) cap *= 2;
        int32_t *b = realloc(s->blocks, (size_t)cap * sizeof *b);
        if (!b) return chatd_errorf(err, "out of memory for a block table");
        s->blocks = b;
        s->cap = cap;
    }
    for (int64_t i = 0; i < more; i++) {
        int32_t id = p->free_list[--p->n_free];
        p->refcount[id] = 1;
        s->blocks[s->n_blocks++] = id;
    }
    s->n_pos = n_pos;
    return 0;
}

void kv_seq_release(kv_pool *p, kv_seq *s) {
    for (int64_t i = 0; i < s->n_blocks; i++) {
        int32_t id = s->blocks[i];
        if (--p->refcount[id] == 0) p->free_list[p->n_free++] = id;
    }
    s->n_blocks = 0;
    s->n_pos = 0;
}

void kv_seq_free(kv_seq *s) {
    free(s->blocks);
    memset(s, 0, sizeof *s);
}
