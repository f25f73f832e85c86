/* kvcache.h - the paged key/value cache.
 *
 * Keys and values live in fixed-size blocks of KV_BLOCK positions handed out from one
 * pool. A sequence owns a block table (its blocks in position order), so memory grows
 * with the tokens actually in use and freeing a sequence returns its blocks at once.
 * Blocks carry a reference count so a common prompt prefix can later be shared by
 * several sequences without copying. Not thread-safe: one owner (the scheduler)
 * allocates and frees; the forward pass only reads and writes block contents. */
#ifndef CHATD_KVCACHE_H
#define CHATD_KVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/error.h"

#define KV_BLOCK 16 /* positions per block */

typedef enum kv_type { KV_F16, KV_F32 } kv_type;

typedef struct kv_pool {
    kv_type type;
    int64_t n_layer;
    int64_t k_dim;      /* n_head_kv * head_dim_k: one position's keys in one layer */
    int64_t v_dim;      /* n_head_kv * head_dim_v */
    int64_t n_blocks;   /* capacity */
    size_t elem_size;   /* 2 (F16) or 4 (F32) */
    uint8_t *k;         /* [n_blocks][n_layer][KV_BLOCK][k_dim] */
    uint8_t *v;         /* [n_blocks][n_layer][KV_BLOCK][v_dim] */
    int32_t *refcount;  /* [n_blocks]; 0 = free */
    int32_t *free_list; /* [n_blocks] stack of free block ids */
    int64_t n_free;
} kv_pool;

/* One sequence's view: its block table and how many positions are filled. */
typedef struct kv_seq {
    int32_t *blocks; /* [cap] block ids in position order */
    int64_t n_blocks;
    int64_t cap;
    int64_t n_pos; /* positions reserved */
} kv_seq;

/* Bytes one block takes (keys and values of every layer). */
size_t kv_block_bytes(kv_type type, int64_t n_layer, int64_t k_dim, int64_t v_dim);

/* Allocates a pool of n_blocks blocks; 0, or -1 with a message. */
int kv_pool_init(kv_pool *p, kv_type type, int64_t n_layer, int64_t k_dim, int64_t v_dim,
                 int64_t n_blocks, chatd_error *err);

/* Frees the pool's memory. */
void kv_pool_free(kv_pool *p);

/* Blocks in use (allocated to at least one sequence). */
int64_t kv_pool_used(const kv_pool *p);

/* Makes room for positions [0, n_pos) in s, taking blocks from the pool; -1 with a
 * message when the pool has too few free blocks (nothing is taken then). */
int kv_seq_reserve(kv_pool *p, kv_seq *s, int64_t n_pos, chatd_error *err);

/* Returns every block of s to the pool (dropping references) and empties s. */
void kv_seq_release(kv_pool *p, kv_seq *s);

/* Frees the block table's memory; call after kv_seq_release. */
void kv_seq_free(kv_seq *s);

/* Address of the keys / values of position pos of layer il in sequence s. */
static inline void *kv_k(const kv_pool *p, const kv_seq *s, int64_t il, int64_t pos) {
    int64_t b = s->blocks[pos / KV_BLOCK];
    return p->k +
           (((size_t)b * p->n_layer + il) * KV_BLOCK + pos % KV_BLOCK) * p->k_dim * p->elem_size;
}
static inline void *kv_v(const kv_pool *p, const kv_seq *s, int64_t il, int64_t pos) {
    int64_t b = s->blocks[pos / KV_BLOCK];
    return p->v +
           (((size_t)b * p->n_layer + il) * KV_BLOCK + pos % KV_BLOCK) * p->v_dim * p->elem_size;
}

#endif
