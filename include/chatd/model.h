/* model.h - a transformer model as chatd sees it: one hyperparameter struct for every
 * supported architecture (llama, qwen2, qwen3) and views of the weight tensors inside
 * the mapped GGUF file. Nothing is copied or converted at load: the weights stay in the
 * file's mapping, so RAM use is the file size plus what the engine allocates. */
#ifndef CHATD_MODEL_H
#define CHATD_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "chatd/error.h"
#include "chatd/gguf.h"

typedef enum model_arch { MODEL_ARCH_LLAMA, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN3 } model_arch;

/* How rotary embeddings pair dimensions: NORM rotates adjacent pairs (2i, 2i+1) as
 * llama does; NEOX rotates (i, i + n_rot/2) as qwen2/qwen3 do. */
typedef enum model_rope_style { MODEL_ROPE_NORM, MODEL_ROPE_NEOX } model_rope_style;

typedef enum model_rope_scaling {
    MODEL_ROPE_SCALING_NONE,
    MODEL_ROPE_SCALING_LINEAR,
    MODEL_ROPE_SCALING_YARN
} model_rope_scaling;

typedef struct model_hparams {
    model_arch arch;
    const char *arch_name; /* "llama", "qwen2", "qwen3" */
    int64_t n_vocab;       /* rows of token_embd */
    int64_t n_ctx_train;   /* context length the model was trained for */
    int64_t n_embd;        /* width of the residual stream */
    int64_t n_layer;       /* transformer blocks */
    int64_t n_ff;          /* hidden width of the feed-forward network */
    int64_t n_head;        /* query heads */
    int64_t n_head_kv;     /* key/value heads (GQA: n_head is a multiple) */
    int64_t head_dim_k;    /* key (and query) length per head */
    int64_t head_dim_v;    /* value length per head */
    int64_t n_rot;         /* dimensions rotated by RoPE (<= head_dim_k) */
    double rope_freq_base; /* theta */
    model_rope_style rope_style;
    model_rope_scaling rope_scaling;
    double rope_scale_factor; /* linear/yarn factor (1 when none) */
    int64_t rope_orig_ctx;    /* yarn: original context length */
    bool has_rope_freqs;      /* llama3-style per-frequency factors in rope_freqs.weight */
    double rms_eps;           /* RMSNorm epsilon */
    bool tied_output;         /* no output.weight: logits use token_embd */
    bool has_qkv_bias;        /* qwen2: attn_q/k/v biases */
    bool has_qk_norm;         /* qwen3: per-head RMSNorm on Q and K */
} model_hparams;

/* Weight views for one transformer block; optional tensors are NULL when absent. */
typedef struct model_layer {
    const gguf_tensor *attn_norm;    /* [n_embd] */
    const gguf_tensor *wq;           /* [n_embd] x [n_head * head_dim_k] */
    const gguf_tensor *wk;           /* [n_embd] x [n_head_kv * head_dim_k] */
    const gguf_tensor *wv;           /* [n_embd] x [n_head_kv * head_dim_v] */
    const gguf_tensor *wo;           /* [n_head * head_dim_v] x [n_embd] */
    const gguf_tensor *bq, *bk, *bv; /* qwen2 biases, same lengths as the outputs above */
    const gguf_tensor *q_norm;       /* qwen3: [head_dim_k] */
    const gguf_tensor *k_norm;       /* qwen3: [head_dim_k] */
    const gguf_tensor *ffn_norm;     /* [n_embd] */
    const gguf_tensor *ffn_gate;     /* [n_embd] x [n_ff] */
    const gguf_tensor *ffn_up;       /* [n_embd] x [n_ff] */
    const gguf_tensor *ffn_down;     /* [n_ff] x [n_embd] */
} model_layer;

typedef struct model {
    gguf_file *file; /* owned */
    model_hparams hp;
    const gguf_tensor *token_embd;  /* [n_embd] x [n_vocab] */
    const gguf_tensor *output_norm; /* [n_embd] */
    const gguf_tensor *output;      /* [n_embd] x [n_vocab]; token_embd when tied */
    const gguf_tensor *rope_freqs;  /* [n_rot / 2] or NULL */
    model_layer *layers;            /* [n_layer] */
    int64_t n_params;               /* elements over all tensors */
} model;

/* Reads the hyperparameters of a llama, qwen2 or qwen3 file; refuses other architectures. */
int model_hparams_read(const gguf_file *f, model_hparams *hp, chatd_error *err);

/* Opens a model file: hyperparameters, every expected tensor present with the expected
 * shape and a supported type. NULL with a message on failure. */
model *model_open(const char *path, chatd_error *err);

/* Same, over an already open GGUF file, which the model then owns (closed on failure too). */
model *model_from_gguf(gguf_file *f, chatd_error *err);

/* Frees the model and closes its file; NULL is allowed. */
void model_close(model *m);

#endif
