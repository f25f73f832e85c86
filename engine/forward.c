/* forward.c - the batched transformer forward pass for llama, qwen2 and qwen3.
 *
 * All compute threads run fwd_job together; each takes its share of every step (tokens,
 * weight rows or attention heads) and pool_barrier() separates the steps, as in ggml.
 * Per layer: RMSNorm -> Q/K/V (+ qwen2 biases, qwen3 Q/K norms) -> RoPE -> write K/V to
 * the paged cache -> causal attention over the block table -> output projection ->
 * residual -> RMSNorm -> SwiGLU feed-forward -> residual. */
#include "chatd/forward.h"
#include "chatd/quant.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define FWD_PANEL          128 /* weight rows dequantized at a time for the BLAS path */
#define FWD_BLAS_MIN_BATCH 32  /* default: batches this large use BLAS */
#define FWD_SLOTS          4   /* chunk counters of the BLAS path, used in turn */

/* What one compute thread owns. */
typedef struct fwd_thread {
    float *panel;  /* [FWD_PANEL][max_in] dequantized weight rows */
    float *scores; /* [group][max_ctx] attention weights of the heads sharing a KV head */
    float *rope;   /* [n_rot] cos, sin pairs for one position */
    /* which activations c->act / c->xr currently hold, so Q, K and V (and gate and up)
     * quantize their shared input once; every thread updates its copy in lockstep */
    const float *act_src;
    uint32_t act_type;
    uint64_t act_epoch;
    uint64_t epoch; /* bumped whenever an activation buffer is rewritten */
    /* chunk claiming of the BLAS path (fwd_claim): BLAS matmuls so far in this job, and where
     * each counter slot stood before its current (or next) loop */
    uint64_t n_loops;
    int64_t slot_base[FWD_SLOTS];
} fwd_thread;

struct fwd_ctx {
    const model *m;
    pool *pool;
    kv_pool *kv;
    fwd_options o;
    int64_t max_in;      /* longest weight row */
    size_t act_row;      /* bytes of one quantized activation row (longest) */
    float *x;            /* [max_batch][n_embd] residual stream */
    float *xn;           /* [max_batch][n_embd] normalized input of a block */
    float *q;            /* [max_batch][n_head * head_dim_k] */
    float *k;            /* [max_batch][n_head_kv * head_dim_k] */
    float *v;            /* [max_batch][n_head_kv * head_dim_v] */
    float *att;          /* [max_batch][n_head * head_dim_v] attention output */
    float *proj;         /* [max_batch][n_embd] output of attn_output / ffn_down */
    float *gate;         /* [max_batch][n_ff] */
    float *up;           /* [max_batch][n_ff] */
    float *xr;           /* [max_batch][max_in] activations rounded for the BLAS path */
    uint8_t *act;        /* [max_batch][act_row] quantized activations */
    float *rope_factors; /* [n_rot / 2] llama3 frequency factors (1 when absent) */
    fwd_thread *threads; /* [pool size] */
    /* next chunk of the BLAS matmuls, one counter per slot (fwd_claim); zeroed per job */
    atomic_llong chunk_next[FWD_SLOTS];
    /* the running job */
    const fwd_batch *b;
    float *logits;
    int64_t *wanted; /* [max_batch] batch indices whose logits are wanted */
    int64_t n_wanted;
};

static void *fwd_alloc(size_t n, size_t size, bool *ok) {
    void *p = calloc(n ? n : 1, size);
    if (!p) *ok = false;
    return p;
}

fwd_ctx *fwd_create(const model *m, pool *p, kv_pool *kv, const fwd_options *o, chatd_error *err) {
    const model_hparams *hp = &m->hp;
    if (hp->rope_scaling == MODEL_ROPE_SCALING_YARN) {
        chatd_errorf(err, "YaRN rope scaling is not supported yet");
        return NULL;
    }
    if (o->max_batch < 1 || o->max_ctx < 1) {
        chatd_errorf(err, "invalid batch or context size");
        return NULL;
    }
    fwd_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    c->m = m;
    c->pool = p;
    c->kv = kv;
    c->o = *o;
    if (c->o.blas_min_batch <= 0) c->o.blas_min_batch = FWD_BLAS_MIN_BATCH;
    int64_t T = o->max_batch, E = hp->n_embd, F = hp->n_ff;
    int64_t qd = hp->n_head * hp->head_dim_k, kd = hp->n_head_kv * hp->head_dim_k,
            vd = hp->n_head_kv * hp->head_dim_v, od = hp->n_head * hp->head_dim_v;
    c->max_in = E;
    if (F > c->max_in) c->max_in = F;
    if (od > c->max_in) c->max_in = od;
    /* the longest quantized activation row over every weight type in the model */
    c->act_row = 0;
    for (uint64_t i = 0; i < m->file->n_tensors; i++) {
        const gguf_tensor *t = &m->file->tensors[i];
        if (t->n_dims < 2) continue;
        size_t rb = kern_act_row_bytes(t->type, t->ne[0]);
        if (rb > c->act_row) c->act_row = rb;
    }
    bool ok = true;
    c->x = fwd_alloc((size_t)(T * E), sizeof(float), &ok);
    c->xn = fwd_alloc((size_t)(T * E), sizeof(float), &ok);
    c->q = fwd_alloc((size_t)(T * qd), sizeof(float), &ok);
    c->k = fwd_alloc((size_t)(T * kd), sizeof(float), &ok);
    c->v = fwd_alloc((size_t)(T * vd), sizeof(float), &ok);
    c->att = fwd_alloc((size_t)(T * od), sizeof(float), &ok);
    c->proj = fwd_alloc((size_t)(T * E), sizeof(float), &ok);
    c->gate = fwd_alloc((size_t)(T * F), sizeof(float), &ok);
    c->up = fwd_alloc((size_t)(T * F), sizeof(float), &ok);
    c->xr = fwd_alloc((size_t)(T * c->max_in), sizeof(float), &ok);
    c->act = fwd_alloc((size_t)T * c->act_row, 1, &ok);
    c->wanted = fwd_alloc((size_t)T, sizeof(int64_t), &ok);
    c->rope_factors = fwd_alloc((size_t)hp->n_rot / 2, sizeof(float), &ok);
    int nth = pool_size(p);
    c->threads = fwd_alloc((size_t)nth, sizeof(fwd_thread), &ok);
    for (int i = 0; ok && i < nth; i++) {
        c->threads[i].panel = fwd_alloc((size_t)(FWD_PANEL * c->max_in), sizeof(float), &ok);
        c->threads[i].scores =
            fwd_alloc((size_t)(o->max_ctx * (hp->n_head / hp->n_head_kv)), sizeof(float), &ok);
        c->threads[i].rope = fwd_alloc((size_t)hp->n_rot, sizeof(float), &ok);
    }
    if (!ok) {
        fwd_free(c);
        chatd_errorf(err, "out of memory for forward-pass buffers (batch %lld)", (long long)T);
        return NULL;
    }
    for (int64_t i = 0; i < hp->n_rot / 2; i++)
        c->rope_factors[i] = m->rope_freqs ? ((const float *)m->rope_freqs->data)[i] : 1.0f;
    /* our threads split the work; OpenBLAS must not start threads of its own on top */
    openblas_set_num_threads(1);
    return c;
}

void fwd_free(fwd_ctx *c) {
    if (!c) return;
    if (c->threads)
        for (int i = 0; i < pool_size(c->pool); i++) {
            free(c->threads[i].panel);
            free(c->threads[i].scores);
            free(c->threads[i].rope);
        }
    free(c->threads);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->proj);
    free(c->gate);
    free(c->up);
    free(c->xr);
    free(c->act);
    free(c->wanted);
    free(c->rope_factors);
    free(c);
}

/* ---- matrix products ---- */

/* The BLAS path hands out chunks of weight rows through shared counters: the next chunk index of
 * the current matmul is an atomic increment. Counters are never reset during a job: each thread
 * leaves a loop of n chunks on its first claim past the end, so once all have left, the counter
 * stands exactly n + nth above where it stood before, and every thread moves its copy of that
 * base (slot_base) by as much. A slot is used again FWD_SLOTS matmuls later, and there is a
 * barrier at least every FWD_SLOTS - 1 matmuls (Q, K and V in a row are the longest run), so by
 * then every thread has left the slot's previous loop. */
static int64_t fwd_claim(fwd_ctx *c, fwd_thread *ts, int slot) {
    return atomic_fetch_add_explicit(&c->chunk_next[slot], 1, memory_order_relaxed) -
           ts->slot_base[slot];
}

static const uint8_t *fwd_row(const gguf_tensor *w, int64_t r) {
    return (const uint8_t *)w->data + (size_t)r * qtype_row_bytes(w->type, w->ne[0]);
}

/* y[t][r] = x[t] . W[r] for t < T, every row r of W (y has W->ne[1] columns). */
static void fwd_matmul(fwd_ctx *c, pool_task *t, const gguf_tensor *w, const float *x, int64_t T,
                       float *y) {
    fwd_thread *ts = &c->threads[t->ith];
    int64_t n_in = w->ne[0], n_out = w->ne[1];
    uint32_t at = kern_act_type(w->type);
    bool blas = c->o.float_activations || T >= c->o.blas_min_batch;
    bool round = !c->o.float_activations && w->type != QTYPE_F32;
    bool fresh = ts->act_src == x && ts->act_type == at && ts->act_epoch == ts->epoch;
    long long b, e;
    if ((!blas || round) && !fresh) {
        /* quantize each activation row once for every weight row that reads it */
        /* rows at the stride kern_matmul expects: one activation row of this type */
        size_t arb = kern_act_row_bytes(w->type, n_in);
        pool_split(t, T, &b, &e);
        for (long long i = b; i < e; i++) {
            uint8_t *a = c->act + (size_t)i * arb;
            kern_quantize_act(c->o.level, w->type, x + i * n_in, a, n_in);
            if (blas) kern_dequantize_act(w->type, a, c->xr + i * n_in, n_in);
        }
        pool_barrier(t);
        ts->act_src = x;
        ts->act_type = at;
        ts->act_epoch = ts->epoch;
    }
    if (!blas) {
        /* rows in chunks of 16 so each thread streams a contiguous part of W */
        long long chunks = (n_out + 15) / 16;
        pool_split(t, chunks, &b, &e);
        int64_t r0 = b * 16, r1 = e * 16 < n_out ? e * 16 : n_out;
        if (r1 > r0)
            kern_matmul(c->o.level, w->type, fwd_row(w, r0), r1 - r0, c->act, T, n_in, y + r0,
                        n_out);
        return;
    }
    const float *xin = round ? c->xr : x;
    /* Every sgemm call packs all of x (T x n_in) again, so a chunk of rows should be tall: up to
     * the panel buffer (FWD_PANEL rows of the longest weight row, more rows of a shorter one),
     * but about 4 chunks per thread, which the threads claim as they go: a thread that the OS
     * (or a busy machine) holds back then does fewer of them instead of delaying everyone at the
     * next barrier. The chunk bounds depend on the sizes only, not on who computes what. */
    int64_t panel = FWD_PANEL * c->max_in / n_in / 8 * 8;
    int64_t chunk = (n_out + 4 * t->nth - 1) / (4 * t->nth);
    chunk = chunk < 64 ? 64 : (chunk + 7) / 8 * 8;
    if (chunk > panel) chunk = panel;
    /* a counter slot per matmul, in turn; see fwd_claim */
    const int slot = (int)(ts->n_loops++ % FWD_SLOTS);
    for (int64_t r0; (r0 = fwd_claim(c, ts, slot) * chunk) < n_out;) {
        int64_t nr = n_out - r0 < chunk ? n_out - r0 : chunk;
        for (int64_t r = 0; r < nr; r++)
            kern_dequantize_row(c->o.level, w->type, fwd_row(w, r0 + r), ts->panel + r * n_in,
                                n_in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nr, (int)n_in, 1.0f, xin,
                    (int)n_in, ts->panel, (int)n_in, 0.0f, y + r0, (int)n_out);
    }
    ts->slot_base[slot] += (n_out + chunk - 1) / chunk + t->nth;
}

/* ---- element-wise steps ---- */

/* y = x / rms(x) * w over n elements (sum of squares in double, as ggml does). */
static void fwd_rmsnorm(float *y, const float *x, const float *w, int64_t n, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / (double)n) + (float)eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* cos/sin of each rotated pair at position pos, computed as ggml does (float powers). */
static void fwd_rope_table(const fwd_ctx *c, int64_t pos, float *cs) {
    const model_hparams *hp = &c->m->hp;
    float theta_scale = powf((float)hp->rope_freq_base, -2.0f / (float)hp->n_rot);
    float freq_scale = (float)(1.0 / hp->rope_scale_factor);
    float theta = (float)pos;
    for (int64_t i = 0; i < hp->n_rot / 2; i++) {
        float th = theta / c->rope_factors[i] * freq_scale;
        cs[2 * i] = cosf(th);
        cs[2 * i + 1] = sinf(th);
        theta *= theta_scale;
    }
}

/* Rotates the first n_rot dimensions of one head. */
static void fwd_rope(float *x, const float *cs, int64_t n_rot, model_rope_style style) {
    int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        int64_t a = style == MODEL_ROPE_NEOX ? i : 2 * i;
        int64_t b = style == MODEL_ROPE_NEOX ? i + half : 2 * i + 1;
        float x0 = x[a], x1 = x[b], co = cs[2 * i], si = cs[2 * i + 1];
        x[a] = x0 * co - x1 * si;
        x[b] = x0 * si + x1 * co;
    }
}

static void fwd_store(const kv_pool *kv, void *dst, const float *src, int64_t n) {
    if (kv->type == KV_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = f32_to_fp16(src[i]);
}

/* Biases, Q/K norms, RoPE, and the K/V of each token into the cache. */
static void fwd_qkv_finish(fwd_ctx *c, pool_task *t, const model_layer *l, int64_t il) {
    const model_hparams *hp = &c->m->hp;
    const fwd_batch *bt = c->b;
    fwd_thread *ts = &c->threads[t->ith];
    int64_t hk = hp->head_dim_k, qd = hp->n_head * hk, kd = hp->n_head_kv * hk,
            vd = hp->n_head_kv * hp->head_dim_v;
    long long b, e;
    pool_split(t, bt->n, &b, &e);
    for (long long i = b; i < e; i++) {
        float *q = c->q + i * qd, *k = c->k + i * kd, *v = c->v + i * vd;
        if (l->bq) {
            const float *bq = l->bq->data, *bk = l->bk->data, *bv = l->bv->data;
            for (int64_t j = 0; j < qd; j++) q[j] += bq[j];
            for (int64_t j = 0; j < kd; j++) k[j] += bk[j];
            for (int64_t j = 0; j < vd; j++) v[j] += bv[j];
        }
        if (l->q_norm) {
            for (int64_t h = 0; h < hp->n_head; h++)
                fwd_rmsnorm(q + h * hk, q + h * hk, l->q_norm->data, hk, hp->rms_eps);
            for (int64_t h = 0; h < hp->n_head_kv; h++)
                fwd_rmsnorm(k + h * hk, k + h * hk, l->k_norm->data, hk, hp->rms_eps);
        }
        fwd_rope_table(c, bt->pos[i], ts->rope);
        for (int64_t h = 0; h < hp->n_head; h++)
            fwd_rope(q + h * hk, ts->rope, hp->n_rot, hp->rope_style);
        for (int64_t h = 0; h < hp->n_head_kv; h++)
            fwd_rope(k + h * hk, ts->rope, hp->n_rot, hp->rope_style);
        fwd_store(c->kv, kv_k(c->kv, bt->seq[i], il, bt->pos[i]), k, kd);
        fwd_store(c->kv, kv_v(c->kv, bt->seq[i], il, bt->pos[i]), v, vd);
    }
}

/* Causal attention of every token over its sequence's cached positions. The work items are
 * (token, KV head) pairs: the query heads that share a KV head (GQA) go together, so each cache
 * row is read and converted once for all of them, a whole cache block at a time. The items are
 * dealt out round-robin, since a token late in a prompt attends over more positions than an
 * early one and contiguous shares would leave the first threads idle. */
static void fwd_attention(fwd_ctx *c, pool_task *t, int64_t il) {
    const model_hparams *hp = &c->m->hp;
    const fwd_batch *bt = c->b;
    const kv_pool *kv = c->kv;
    const kern_level lv = c->o.level;
    float *s = c->threads[t->ith].scores; /* [group][max_ctx] */
    const int64_t ctx = c->o.max_ctx;
    int64_t hk = hp->head_dim_k, hv = hp->head_dim_v, group = hp->n_head / hp->n_head_kv;
    float scale = 1.0f / sqrtf((float)hk);
    bool f16 = kv->type == KV_F16;
    for (long long w = t->ith; w < bt->n * hp->n_head_kv; w += t->nth) {
        int64_t i = w / hp->n_head_kv, g = w % hp->n_head_kv;
        const float *q = c->q + (i * hp->n_head + g * group) * hk; /* [group][hk] */
        float *out = c->att + (i * hp->n_head + g * group) * hv;   /* [group][hv] */
        const kv_seq *seq = bt->seq[i];
        int64_t n = bt->pos[i] + 1;
        /* scores, one cache block (positions p0 .. p0+np-1, rows k_dim apart) at a time */
        for (int64_t p0 = 0; p0 < n; p0 += KV_BLOCK) {
            int64_t np = n - p0 < KV_BLOCK ? n - p0 : KV_BLOCK;
            const void *kb = kv_k(kv, seq, il, p0); /* this KV head's part of each row: + g*hk */
            if (f16)
                kern_dot_f32_f16_rows(lv, q, hk, group, (const uint16_t *)kb + g * hk, kv->k_dim,
                                      np, hk, s + p0, ctx);
            else
                for (int64_t j = 0; j < group; j++)
                    for (int64_t p = 0; p < np; p++)
                        s[j * ctx + p0 + p] = kern_dot_f32(
                            lv, q + j * hk, (const float *)kb + g * hk + p * kv->k_dim, hk);
        }
        for (int64_t j = 0; j < group; j++) {
            float *sj = s + j * ctx, mx = -INFINITY;
            for (int64_t p = 0; p < n; p++) {
                sj[p] *= scale;
                if (sj[p] > mx) mx = sj[p];
            }
            double sum = 0;
            for (int64_t p = 0; p < n; p++) {
                sj[p] = expf(sj[p] - mx);
                sum += sj[p];
            }
            float inv = (float)(1.0 / sum);
            for (int64_t p = 0; p < n; p++) sj[p] *= inv;
        }
        memset(out, 0, (size_t)(group * hv) * sizeof(float));
        for (int64_t p0 = 0; p0 < n; p0 += KV_BLOCK) {
            int64_t np = n - p0 < KV_BLOCK ? n - p0 : KV_BLOCK;
            const void *vb = kv_v(kv, seq, il, p0); /* this KV head's part of each row: + g*hv */
            if (f16)
                kern_axpy_f16_rows(lv, s + p0, ctx, group, (const uint16_t *)vb + g * hv, kv->v_dim,
                                   np, out, hv, hv);
            else
                for (int64_t p = 0; p < np; p++)
                    for (int64_t j = 0; j < group; j++)
                        kern_axpy_f32(lv, s[j * ctx + p0 + p],
                                      (const float *)vb + g * hv + p * kv->v_dim, out + j * hv, hv);
        }
    }
}

/* x += proj (when add), then xn = RMSNorm(x) * w, for this thread's tokens. */
static void fwd_residual_norm(fwd_ctx *c, pool_task *t, bool add, const gguf_tensor *w) {
    const model_hparams *hp = &c->m->hp;
    int64_t E = hp->n_embd;
    long long b, e;
    pool_split(t, c->b->n, &b, &e);
    for (long long i = b; i < e; i++) {
        float *x = c->x + i * E;
        if (add)
            for (int64_t j = 0; j < E; j++) x[j] += c->proj[i * E + j];
        if (w) fwd_rmsnorm(c->xn + i * E, x, w->data, E, hp->rms_eps);
    }
    c->threads[t->ith].epoch++;
}

static void fwd_swiglu(fwd_ctx *c, pool_task *t) {
    int64_t F = c->m->hp.n_ff;
    long long b, e;
    pool_split(t, c->b->n * F, &b, &e);
    for (long long j = b; j < e; j++) {
        float g = c->gate[j];
        c->gate[j] = g / (1.0f + expf(-g)) * c->up[j];
    }
    c->threads[t->ith].epoch++;
}

static void fwd_job(void *ctx, pool_task *t) {
    fwd_ctx *c = ctx;
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const fwd_batch *bt = c->b;
    int64_t T = bt->n, E = hp->n_embd;
    long long b, e;

    pool_split(t, T, &b, &e);
    for (long long i = b; i < e; i++)
        dequantize_row(m->token_embd->type, fwd_row(m->token_embd, bt->token[i]), c->x + i * E, E);
    pool_barrier(t);

    for (int64_t il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        fwd_residual_norm(c, t, il > 0, l->attn_norm);
        pool_barrier(t);
        fwd_matmul(c, t, l->wq, c->xn, T, c->q);
        fwd_matmul(c, t, l->wk, c->xn, T, c->k);
        fwd_matmul(c, t, l->wv, c->xn, T, c->v);
        pool_barrier(t);
        fwd_qkv_finish(c, t, l, il);
        pool_barrier(t);
        fwd_attention(c, t, il);
        c->threads[t->ith].epoch++;
        pool_barrier(t);
        fwd_matmul(c, t, l->wo, c->att, T, c->proj);
        pool_barrier(t);
        fwd_residual_norm(c, t, true, l->ffn_norm);
        pool_barrier(t);
        fwd_matmul(c, t, l->ffn_gate, c->xn, T, c->gate);
        fwd_matmul(c, t, l->ffn_up, c->xn, T, c->up);
        pool_barrier(t);
        fwd_swiglu(c, t);
        pool_barrier(t);
        fwd_matmul(c, t, l->ffn_down, c->gate, T, c->proj);
        pool_barrier(t);
    }
    /* the last residual, then the output norm of just the wanted tokens */
    pool_split(t, c->n_wanted, &b, &e);
    for (long long j = b; j < e; j++) {
        int64_t i = c->wanted[j];
        float *x = c->x + i * E;
        for (int64_t k = 0; k < E; k++) x[k] += c->proj[i * E + k];
        fwd_rmsnorm(c->xn + j * E, x, m->output_norm->data, E, hp->rms_eps);
    }
    c->threads[t->ith].epoch++;
    pool_barrier(t);
    if (c->n_wanted > 0) fwd_matmul(c, t, m->output, c->xn, c->n_wanted, c->logits);
}

int fwd_eval(fwd_ctx *c, const fwd_batch *b, float *logits, chatd_error *err) {
    const model_hparams *hp = &c->m->hp;
    if (b->n < 1 || b->n > c->o.max_batch)
        return chatd_errorf(err, "batch of %lld tokens (1 to %lld allowed)", (long long)b->n,
                            (long long)c->o.max_batch);
    c->n_wanted = 0;
    for (int64_t i = 0; i < b->n; i++) {
        if (b->token[i] < 0 || b->token[i] >= hp->n_vocab)
            return chatd_errorf(err, "token id %d is outside the vocabulary (0 to %lld)",
                                b->token[i], (long long)hp->n_vocab - 1);
        if (b->pos[i] < 0 || b->pos[i] >= c->o.max_ctx || b->pos[i] >= b->seq[i]->n_pos)
            return chatd_errorf(err, "position %lld of batch token %lld is not reserved",
                                (long long)b->pos[i], (long long)i);
        if (b->logits[i]) c->wanted[c->n_wanted++] = i;
    }
    c->b = b;
    c->logits = logits;
    for (int i = 0; i < pool_size(c->pool); i++) {
        fwd_thread *ts = &c->threads[i];
        ts->act_src = NULL;
        ts->n_loops = 0;
        for (int k = 0; k < FWD_SLOTS; k++) ts->slot_base[k] = 0;
    }
    /* published to the workers by pool_run's start of the job */
    for (int k = 0; k < FWD_SLOTS; k++)
        atomic_store_explicit(&c->chunk_next[k], 0, memory_order_relaxed);
    pool_run(c->pool, fwd_job, c);
    c->b = NULL;
    return 0;
}
