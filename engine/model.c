/* model.c - maps GGUF metadata and tensors onto the llama / qwen2 / qwen3 architectures.
 *
 * Every tensor the forward pass will read is looked up once here and its shape and type
 * checked against the hyperparameters, so the engine can trust them later. A tensor
 * that the architecture does not use is refused too: computing without it would be
 * silently wrong. */
#include "chatd/model.h"
#include "chatd/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    model_arch arch;
} model_archs[] = {
    {"llama", MODEL_ARCH_LLAMA},
    {"qwen2", MODEL_ARCH_QWEN2},
    {"qwen3", MODEL_ARCH_QWEN3},
};

/* Reads "<arch>.<suffix>" as an integer; def < 0 makes the key required. */
static int hp_int(const gguf_file *f, const char *arch, const char *suffix, int64_t def,
                  int64_t *out, chatd_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gguf_find(f, key)) {
        if (def < 0) return chatd_errorf(err, "metadata key %s is missing", key);
        *out = def;
        return 0;
    }
    if (gguf_get_int(f, key, out, err) != 0) return -1;
    if (*out <= 0 || *out > (1ll << 32))
        return chatd_errorf(err, "metadata key %s has an implausible value %lld", key,
                            (long long)*out);
    return 0;
}

static int hp_float(const gguf_file *f, const char *arch, const char *suffix, double def,
                    double *out, chatd_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gguf_find(f, key)) {
        *out = def;
        return 0;
    }
    return gguf_get_float(f, key, out, err);
}

int model_hparams_read(const gguf_file *f, model_hparams *hp, chatd_error *err) {
    memset(hp, 0, sizeof *hp);
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, err) != 0) return -1;
    const char *a = NULL;
    for (size_t i = 0; i < sizeof model_archs / sizeof model_archs[0]; i++) {
        if (gguf_str_eq(arch, model_archs[i].name)) {
            a = model_archs[i].name;
            hp->arch = model_archs[i].arch;
        }
    }
    if (!a) {
        char name[64];
        return chatd_errorf(err,
                            "architecture '%s' is not supported (chatd runs llama, qwen2, qwen3)",
                            gguf_str_copy(arch, name, sizeof name));
    }
    hp->arch_name = a;
    if (hp_int(f, a, "context_length", -1, &hp->n_ctx_train, err) ||
        hp_int(f, a, "embedding_length", -1, &hp->n_embd, err) ||
        hp_int(f, a, "block_count", -1, &hp->n_layer, err) ||
        hp_int(f, a, "feed_forward_length", -1, &hp->n_ff, err) ||
        hp_int(f, a, "attention.head_count", -1, &hp->n_head, err) ||
        hp_int(f, a, "attention.head_count_kv", hp->n_head, &hp->n_head_kv, err))
        return -1;
    if (hp->n_embd % hp->n_head != 0 && !gguf_find(f, "qwen3.attention.key_length"))
        return chatd_errorf(err, "embedding length %lld is not a multiple of the head count %lld",
                            (long long)hp->n_embd, (long long)hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return chatd_errorf(err, "head count %lld is not a multiple of the KV head count %lld",
                            (long long)hp->n_head, (long long)hp->n_head_kv);
    if (hp->n_layer > 1024 || hp->n_head > 4096)
        return chatd_errorf(err, "implausible model shape (%lld layers, %lld heads)",
                            (long long)hp->n_layer, (long long)hp->n_head);
    int64_t hd = hp->n_embd / hp->n_head;
    if (hp_int(f, a, "attention.key_length", hd, &hp->head_dim_k, err) ||
        hp_int(f, a, "attention.value_length", hd, &hp->head_dim_v, err) ||
        hp_int(f, a, "rope.dimension_count", hp->head_dim_k, &hp->n_rot, err))
        return -1;
    if (hp->n_rot > hp->head_dim_k || hp->n_rot % 2)
        return chatd_errorf(err, "rope dimension count %lld does not fit the head length %lld",
                            (long long)hp->n_rot, (long long)hp->head_dim_k);
    if (hp_float(f, a, "rope.freq_base", 10000.0, &hp->rope_freq_base, err) ||
        hp_float(f, a, "attention.layer_norm_rms_epsilon", 1e-5, &hp->rms_eps, err))
        return -1;
    if (!(hp->rope_freq_base > 0) || !(hp->rms_eps >= 0) || hp->rms_eps > 1)
        return chatd_errorf(err, "invalid rope base %g or RMS epsilon %g", hp->rope_freq_base,
                            hp->rms_eps);
    hp->rope_style = hp->arch == MODEL_ARCH_LLAMA ? MODEL_ROPE_NORM : MODEL_ROPE_NEOX;

    hp->rope_scaling = MODEL_ROPE_SCALING_NONE;
    hp->rope_scale_factor = 1.0;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    if (gguf_find(f, key)) {
        gguf_str t;
        if (gguf_get_str(f, key, &t, err) != 0) return -1;
        if (gguf_str_eq(t, "linear"))
            hp->rope_scaling = MODEL_ROPE_SCALING_LINEAR;
        else if (gguf_str_eq(t, "yarn"))
            hp->rope_scaling = MODEL_ROPE_SCALING_YARN;
        else if (!gguf_str_eq(t, "none")) {
            char name[64];
            return chatd_errorf(err, "rope scaling type '%s' is not supported",
                                gguf_str_copy(t, name, sizeof name));
        }
    }
    if (hp->rope_scaling != MODEL_ROPE_SCALING_NONE) {
        if (hp_float(f, a, "rope.scaling.factor", 1.0, &hp->rope_scale_factor, err) ||
            hp_int(f, a, "rope.scaling.original_context_length", hp->n_ctx_train,
                   &hp->rope_orig_ctx, err))
            return -1;
        if (!(hp->rope_scale_factor >= 1.0) || hp->rope_scale_factor > 1024)
            return chatd_errorf(err, "invalid rope scaling factor %g", hp->rope_scale_factor);
    }
    hp->has_qkv_bias = hp->arch == MODEL_ARCH_QWEN2;
    hp->has_qk_norm = hp->arch == MODEL_ARCH_QWEN3;
    return 0;
}

/* Looks up a tensor and checks its shape (ne1 = 0 for a vector) and type. */
static int model_tensor(const model *m, const char *name, int64_t ne0, int64_t ne1, bool required,
                        const gguf_tensor **out, chatd_error *err) {
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    *out = t;
    if (!t) return required ? chatd_errorf(err, "tensor %s is missing", name) : 0;
    int64_t want_dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == ne0 && t->ne[1] == (ne1 ? ne1 : 1) && t->ne[2] == 1 && t->ne[3] == 1 &&
              (int64_t)t->n_dims <= want_dims;
    if (!ok)
        return chatd_errorf(err,
                            "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                            name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                            (long long)t->ne[3], (long long)ne0, (long long)(ne1 ? ne1 : 1));
    const qtype_traits *tr = qtype_get(t->type);
    if (!tr || !tr->supported) {
        char buf[32];
        return chatd_errorf(err, "tensor %s has type %s, which chatd does not support", name,
                            qtype_name(t->type, buf, sizeof buf));
    }
    /* norms, biases and rope factors are read as float vectors */
    if (!ne1 && t->type != QTYPE_F32) {
        char buf[32];
        return chatd_errorf(err, "tensor %s has type %s (F32 expected for a vector)", name,
                            qtype_name(t->type, buf, sizeof buf));
    }
    return 0;
}

static int model_bind_layer(model *m, int64_t il, chatd_error *err) {
    const model_hparams *hp = &m->hp;
    model_layer *l = &m->layers[il];
    int64_t q_out = hp->n_head * hp->head_dim_k, k_out = hp->n_head_kv * hp->head_dim_k,
            v_out = hp->n_head_kv * hp->head_dim_v, o_in = hp->n_head * hp->head_dim_v;
    char n[96];
#define T(field, suffix, ne0, ne1, req)                                                            \
    (snprintf(n, sizeof n, "blk.%lld." suffix, (long long)il),                                     \
     model_tensor(m, n, ne0, ne1, req, &l->field, err))
    if (T(attn_norm, "attn_norm.weight", hp->n_embd, 0, true) ||
        T(wq, "attn_q.weight", hp->n_embd, q_out, true) ||
        T(wk, "attn_k.weight", hp->n_embd, k_out, true) ||
        T(wv, "attn_v.weight", hp->n_embd, v_out, true) ||
        T(wo, "attn_output.weight", o_in, hp->n_embd, true) ||
        T(bq, "attn_q.bias", q_out, 0, hp->has_qkv_bias) ||
        T(bk, "attn_k.bias", k_out, 0, hp->has_qkv_bias) ||
        T(bv, "attn_v.bias", v_out, 0, hp->has_qkv_bias) ||
        T(q_norm, "attn_q_norm.weight", hp->head_dim_k, 0, hp->has_qk_norm) ||
        T(k_norm, "attn_k_norm.weight", hp->head_dim_k, 0, hp->has_qk_norm) ||
        T(ffn_norm, "ffn_norm.weight", hp->n_embd, 0, true) ||
        T(ffn_gate, "ffn_gate.weight", hp->n_embd, hp->n_ff, true) ||
        T(ffn_up, "ffn_up.weight", hp->n_embd, hp->n_ff, true) ||
        T(ffn_down, "ffn_down.weight", hp->n_ff, hp->n_embd, true))
        return -1;
#undef T
    /* Llama files may carry Q/K/V biases too (some fine-tunes); qwen3 never does. */
    if (hp->arch == MODEL_ARCH_QWEN3 && (l->bq || l->bk || l->bv))
        return chatd_errorf(err, "qwen3 layer %lld has attention biases, which qwen3 does not use",
                            (long long)il);
    if (!!l->bq != !!l->bk || !!l->bk != !!l->bv)
        return chatd_errorf(err, "layer %lld has only some of the Q/K/V biases", (long long)il);
    return 0;
}

/* True when name is a tensor that model_from_gguf bound (so nothing is ignored). */
static bool model_uses(const model *m, const gguf_tensor *t) {
    if (t == m->token_embd || t == m->output_norm || t == m->output || t == m->rope_freqs)
        return true;
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const gguf_tensor *all[] = {l->attn_norm, l->wq,       l->wk,     l->wv,      l->wo,
                                    l->bq,        l->bk,       l->bv,     l->q_norm,  l->k_norm,
                                    l->ffn_norm,  l->ffn_gate, l->ffn_up, l->ffn_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (all[i] == t) return true;
    }
    return false;
}

model *model_from_gguf(gguf_file *f, chatd_error *err) {
    model *m = calloc(1, sizeof *m);
    if (!m) {
        chatd_errorf(err, "out of memory");
        gguf_close(f);
        return NULL;
    }
    m->file = f;
    model_hparams *hp = &m->hp;
    if (model_hparams_read(f, hp, err) != 0) goto fail;
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te) {
        chatd_errorf(err, "tensor token_embd.weight is missing");
        goto fail;
    }
    hp->n_vocab = te->ne[1];
    if (model_tensor(m, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->token_embd, err) ||
        model_tensor(m, "output_norm.weight", hp->n_embd, 0, true, &m->output_norm, err) ||
        model_tensor(m, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output, err) ||
        model_tensor(m, "rope_freqs.weight", hp->n_rot / 2, 0, false, &m->rope_freqs, err))
        goto fail;
    hp->tied_output = m->output == NULL;
    if (hp->tied_output) m->output = m->token_embd;
    hp->has_rope_freqs = m->rope_freqs != NULL;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        chatd_errorf(err, "out of memory");
        goto fail;
    }
    for (int64_t il = 0; il < hp->n_layer; il++)
        if (model_bind_layer(m, il, err) != 0) goto fail;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (!model_uses(m, t)) {
            char name[128];
            chatd_errorf(err, "tensor %s is not part of the %s architecture as chatd runs it",
                         gguf_str_copy(t->name, name, sizeof name), hp->arch_name);
            goto fail;
        }
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        m->n_params += n;
    }
    return m;
fail:
    model_close(m);
    return NULL;
}

model *model_open(const char *path, chatd_error *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) return NULL;
    model *m = model_from_gguf(f, err);
    if (!m) chatd_error_prefix(err, "%s", path);
    return m;
}

void model_close(model *m) {
    if (!m) return;
    gguf_close(m->file);
    free(m->layers);
    free(m);
}
