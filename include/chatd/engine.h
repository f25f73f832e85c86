/* engine.h - a loaded model ready to compute: the model file, its tokenizer, the compute
 * threads, the KV cache pool and the forward-pass buffers, opened and closed together.
 * The command-line tools and the scheduler build on it. */
#ifndef CHATD_ENGINE_H
#define CHATD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "chatd/error.h"
#include "chatd/forward.h"
#include "chatd/kernels.h"
#include "chatd/kvcache.h"
#include "chatd/model.h"
#include "chatd/pool.h"
#include "chatd/tokenizer.h"

typedef struct engine_options {
    int n_threads;          /* compute threads (0 = one per core) */
    const char *kernels;    /* "scalar", "avx2", "avx512" or NULL for the best available */
    bool float_activations; /* exact float activations (see fwd_options) */
    int64_t max_batch;      /* tokens per forward pass (0 = 512) */
    int64_t max_ctx;        /* positions per sequence (0 = the model's training context) */
    int64_t kv_blocks;      /* KV pool size in blocks (0 = enough for one max_ctx sequence) */
    kv_type kv_type;        /* KV_F16 (default) or KV_F32 */
    int64_t blas_min_batch; /* batches this large use BLAS (0 = default; huge = never) */
} engine_options;

typedef struct engine {
    model *m;
    tok_vocab *tok;
    pool *pool;
    kv_pool kv;
    fwd_ctx *fwd;
    engine_options o; /* with defaults filled in */
    kern_level level;
} engine;

/* Options with every default. */
engine_options engine_defaults(void);

/* Opens a model file and prepares everything to run it; 0, or -1 with a message. */
int engine_open(engine *e, const char *path, const engine_options *o, chatd_error *err);

/* Releases everything engine_open acquired. */
void engine_close(engine *e);

/* Feeds ids[0..n) of one sequence at positions start.. in batches of max_batch, reserving
 * KV blocks as needed. logits receives the next-token logits of every token (all) or of
 * the last one only ([n or 1][n_vocab]); NULL for none. */
int engine_prefill(engine *e, kv_seq *s, const int32_t *ids, int64_t n, int64_t start, bool all,
                   float *logits, chatd_error *err);

#endif
