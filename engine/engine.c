/* engine.c - opening a model with everything needed to run it (see include/chatd/engine.h). */
#include "chatd/engine.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

engine_options engine_defaults(void) {
    engine_options o;
    memset(&o, 0, sizeof o);
    o.kv_type = KV_F16;
    return o;
}

int engine_open(engine *e, const char *path, const engine_options *opt, chatd_error *err) {
    memset(e, 0, sizeof *e);
    e->o = *opt;
    engine_options *o = &e->o;
    if (o->n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->n_threads = n > 0 ? (int)n : 1;
    }
    e->level = kern_detect();
    if (o->kernels) {
        kern_level want;
        if (kern_level_parse(o->kernels, &want) != 0)
            return chatd_errorf(err, "unknown kernel level '%s' (scalar, avx2, avx512)",
                                o->kernels);
        if (want > e->level)
            return chatd_errorf(err, "this CPU cannot run %s kernels (best: %s)", o->kernels,
                                kern_level_name(e->level));
        e->level = want;
    }
    e->m = model_open(path, err);
    if (!e->m) return -1;
    e->tok = tok_load(e->m->file, err);
    if (!e->tok) {
        chatd_error_prefix(err, "%s: tokenizer", path);
        engine_close(e);
        return -1;
    }
    const model_hparams *hp = &e->m->hp;
    if (o->max_batch <= 0) o->max_batch = 512;
    if (o->max_ctx <= 0) o->max_ctx = hp->n_ctx_train;
    if (o->kv_blocks <= 0) o->kv_blocks = (o->max_ctx + KV_BLOCK - 1) / KV_BLOCK;
    e->pool = pool_create(o->n_threads, err);
    if (!e->pool || kv_pool_init(&e->kv, o->kv_type, hp->n_layer, hp->n_head_kv * hp->head_dim_k,
                                 hp->n_head_kv * hp->head_dim_v, o->kv_blocks, err) != 0) {
        engine_close(e);
        return -1;
    }
    fwd_options fo = {.max_batch = o->max_batch,
                      .max_ctx = o->max_ctx,
                      .level = e->level,
                      .float_activations = o->float_activations,
                      .blas_min_batch = o->blas_min_batch};
    e->fwd = fwd_create(e->m, e->pool, &e->kv, &fo, err);
    if (!e->fwd) {
        engine_close(e);
        return -1;
    }
    return 0;
}

void engine_close(engine *e) {
    fwd_free(e->fwd);
    if (e->kv.k || e->kv.refcount) kv_pool_free(&e->kv);
    pool_destroy(e->pool);
    tok_free(e->tok);
    model_close(e->m);
    memset(e, 0, sizeof *e);
}

int engine_prefill(engine *e, kv_seq *s, const int32_t *ids, int64_t n, int64_t start, bool all,
                   float *logits, chatd_error *err) {
    int64_t B = e->o.max_batch, V = e->m->hp.n_vocab;
    if (start + n > e->o.max_ctx)
        return chatd_errorf(err, "%lld positions exceed the context size %lld",
                            (long long)(start + n), (long long)e->o.max_ctx);
    if (kv_seq_reserve(&e->kv, s, start + n, err) != 0) return -1;
    int64_t *pos = malloc((size_t)B * sizeof *pos);
    kv_seq **seqs = malloc((size_t)B * sizeof *seqs);
    bool *want = malloc((size_t)B * sizeof *want);
    int rc = 0;
    if (!pos || !seqs || !want) rc = chatd_errorf(err, "out of memory");
    for (int64_t off = 0; rc == 0 && off < n; off += B) {
        int64_t m = n - off < B ? n - off : B;
        for (int64_t i = 0; i < m; i++) {
            pos[i] = start + off + i;
            seqs[i] = s;
            want[i] = logits && (all || off + i == n - 1);
        }
        fwd_batch b = {.n = m, .token = ids + off, .pos = pos, .seq = seqs, .logits = want};
        float *out = !logits ? NULL : all ? logits + (size_t)off * V : logits;
        rc = fwd_eval(e->fwd, &b, out, err);
    }
    free(pos);
    free(seqs);
    free(want);
    return rc;
}
