/* forward.h - one batched forward pass of the transformer.
 *
 * A batch mixes tokens of several sequences at any positions: a prompt chunk of one,
 * single decode tokens of others. Every weight matrix is read once per batch. Large
 * batches multiply with OpenBLAS on weights dequantized panel by panel; small batches
 * use the quantized SIMD kernels. Either way the activations are rounded to the format
 * the weights' integer kernels take (Q8_0, Q8_K, F16, ...), as llama.cpp does, so both
 * paths compute the same numbers and a sequence's results do not depend on what else
 * is in its batch. */
#ifndef CHATD_FORWARD_H
#define CHATD_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "chatd/error.h"
#include "chatd/kernels.h"
#include "chatd/kvcache.h"
#include "chatd/model.h"
#include "chatd/pool.h"

typedef struct fwd_options {
    int64_t max_batch;      /* most tokens in one batch (scratch buffers are sized by it) */
    int64_t max_ctx;        /* most positions a sequence may hold */
    kern_level level;       /* SIMD level of the kernels */
    bool float_activations; /* no activation rounding: float GEMM everywhere (slow, exact) */
    int64_t blas_min_batch; /* batches at least this large use BLAS (0 = default) */
} fwd_options;

/* One batch: token i of sequence seq[i] at position pos[i]. */
typedef struct fwd_batch {
    int64_t n;
    const int32_t *token; /* [n] */
    const int64_t *pos;   /* [n] */
    kv_seq *const *seq;   /* [n]; positions [0, pos] must be reserved */
    const bool *logits;   /* [n] whether next-token logits of token i are wanted */
} fwd_batch;

typedef struct fwd_ctx fwd_ctx;

/* Prepares scratch buffers for a model; NULL with a message on failure. */
fwd_ctx *fwd_create(const model *m, pool *p, kv_pool *kv, const fwd_options *o, chatd_error *err);

/* Frees the context; NULL is allowed. */
void fwd_free(fwd_ctx *c);

/* Runs the batch, writing the K/V of every token into the cache and the logits of each
 * wanted token, in batch order, into logits ([n_wanted][n_vocab]). */
int fwd_eval(fwd_ctx *c, const fwd_batch *b, float *logits, chatd_error *err);

#endif
