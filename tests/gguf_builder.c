/* gguf_builder.c - in-memory GGUF images for tests (see gguf_builder.h). */
#include "gguf_builder.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gb_put(gb_buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            fprintf(stderr, "gguf_builder: out of memory\n");
            exit(1);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void gb_u8(gb_buf *b, uint8_t v) {
    gb_put(b, &v, 1);
}
void gb_u32(gb_buf *b, uint32_t v) {
    gb_put(b, &v, 4);
}
void gb_u64(gb_buf *b, uint64_t v) {
    gb_put(b, &v, 8);
}
void gb_f32(gb_buf *b, float v) {
    gb_put(b, &v, 4);
}
void gb_str(gb_buf *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_put(b, s, strlen(s));
}
void gb_pad(gb_buf *b, size_t align) {
    while (b->len % align) gb_u8(b, 0);
}
void gb_free(gb_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}
void gb_put_u32(gb_buf *b, size_t at, uint32_t v) {
    memcpy(b->data + at, &v, 4);
}
void gb_put_u64(gb_buf *b, size_t at, uint64_t v) {
    memcpy(b->data + at, &v, 8);
}

static void gb_kv_u32(gb_buf *b, const char *key, uint32_t v) {
    gb_str(b, key);
    gb_u32(b, 4); /* GGUF_TYPE_UINT32 */
    gb_u32(b, v);
}

static void gb_kv_f32(gb_buf *b, const char *key, float v) {
    gb_str(b, key);
    gb_u32(b, 6); /* GGUF_TYPE_FLOAT32 */
    gb_f32(b, v);
}

static void gb_kv_str(gb_buf *b, const char *key, const char *v) {
    gb_str(b, key);
    gb_u32(b, 8); /* GGUF_TYPE_STRING */
    gb_str(b, v);
}

typedef struct gb_tensor {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[2];
} gb_tensor;

void gb_tiny_model(gb_buf *b, gb_layout *lay) {
    enum { E = 32, FF = 64, V = 8 };
    static const gb_tensor tensors[] = {
        {"token_embd.weight", 2, {E, V}},        {"output_norm.weight", 1, {E, 1}},
        {"blk.0.attn_norm.weight", 1, {E, 1}},   {"blk.0.attn_q.weight", 2, {E, E}},
        {"blk.0.attn_k.weight", 2, {E, E / 2}},  {"blk.0.attn_v.weight", 2, {E, E / 2}},
        {"blk.0.attn_output.weight", 2, {E, E}}, {"blk.0.ffn_norm.weight", 1, {E, 1}},
        {"blk.0.ffn_gate.weight", 2, {E, FF}},   {"blk.0.ffn_up.weight", 2, {E, FF}},
        {"blk.0.ffn_down.weight", 2, {FF, E}},
    };
    enum { NT = sizeof tensors / sizeof tensors[0] };
    memset(lay, 0, sizeof *lay);
    gb_u32(b, 0x46554747u);
    lay->version = b->len;
    gb_u32(b, 3);
    lay->n_tensors = b->len;
    gb_u64(b, NT);
    lay->n_kv = b->len;
    gb_u64(b, 14);
    lay->first_key_len = b->len;
    gb_kv_str(b, "general.architecture", "llama");
    gb_kv_str(b, "general.name", "tiny test model");
    gb_kv_u32(b, "general.alignment", 32);
    gb_kv_u32(b, "llama.context_length", 128);
    gb_kv_u32(b, "llama.embedding_length", E);
    gb_kv_u32(b, "llama.block_count", 1);
    gb_kv_u32(b, "llama.feed_forward_length", FF);
    gb_kv_u32(b, "llama.attention.head_count", 2);
    gb_kv_u32(b, "llama.attention.head_count_kv", 1);
    gb_kv_f32(b, "llama.rope.freq_base", 10000.0f);
    gb_kv_f32(b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gb_kv_str(b, "tokenizer.ggml.model", "llama");
    /* tokens: an array of strings */
    gb_str(b, "tokenizer.ggml.tokens");
    gb_u32(b, 9); /* ARRAY */
    gb_u32(b, 8); /* of STRING */
    lay->tokens_count = b->len;
    gb_u64(b, V);
    static const char *toks[V] = {"<unk>", "<s>", "</s>",          "a",
                                  "b",     "c",   "\342\226\201a", /* U+2581 then 'a' */
                                  "ab"};
    for (int i = 0; i < V; i++) gb_str(b, toks[i]);
    /* scores: an array of float32 */
    gb_str(b, "tokenizer.ggml.scores");
    gb_u32(b, 9);
    gb_u32(b, 6);
    gb_u64(b, V);
    for (int i = 0; i < V; i++) gb_f32(b, -(float)i);

    uint64_t offset = 0;
    for (int i = 0; i < NT; i++) {
        if (i == 0) lay->first_tensor = b->len;
        gb_str(b, tensors[i].name);
        if (i == 0) lay->first_ndims = b->len;
        gb_u32(b, tensors[i].n_dims);
        if (i == 0) lay->first_ne0 = b->len;
        for (uint32_t d = 0; d < tensors[i].n_dims; d++) gb_u64(b, tensors[i].ne[d]);
        if (i == 0) lay->first_type = b->len;
        gb_u32(b, 0); /* F32 */
        if (i == 0) lay->first_offset = b->len;
        if (i == 1) lay->second_offset = b->len;
        gb_u64(b, offset);
        uint64_t bytes = tensors[i].ne[0] * tensors[i].ne[1] * 4;
        offset += (bytes + 31) / 32 * 32;
    }
    gb_pad(b, 32);
    lay->data_offset = b->len;
    for (int i = 0; i < NT; i++) {
        uint64_t n = tensors[i].ne[0] * tensors[i].ne[1];
        for (uint64_t k = 0; k < n; k++) gb_f32(b, (float)((k * 7 + (uint64_t)i) % 13) / 13.0f);
        if (i + 1 < NT) gb_pad(b, 32);
    }
}

/* ---- a byte-level vocabulary ---- */

enum { GB_T_U32 = 4, GB_T_I32 = 5, GB_T_STR = 8, GB_T_ARR = 9 };

size_t gb_byte_text(unsigned b, char *out) {
    unsigned n = 0, cpt = b;
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!printable) {
        for (unsigned k = 0; k < b; k++)
            if (!((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE)) n++;
        cpt = 256 + n;
    }
    if (cpt < 0x80) {
        out[0] = (char)cpt;
        out[1] = 0;
        return 1;
    }
    out[0] = (char)(0xC0 | (cpt >> 6));
    out[1] = (char)(0x80 | (cpt & 0x3F));
    out[2] = 0;
    return 2;
}

/* GPT-2's byte-to-unicode text of the bytes of s. */
static void gb_byte_level(const char *s, char *out) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) o += gb_byte_text(*p, out + o);
    out[o] = 0;
}

int32_t gb_byte_vocab(gb_buf *b, const char *const *extra, size_t n_extra) {
    size_t n = 256 + n_extra + 1;
    char(*texts)[64] = calloc(n, sizeof *texts);
    if (!texts) return -1;
    for (unsigned c = 0; c < 256; c++) {
        char one[2] = {(char)c, 0};
        if (c == 0) /* NUL cannot be written through a C string: its GPT-2 text is U+0100 */
            snprintf(texts[c], sizeof texts[c], "\xC4\x80");
        else
            gb_byte_level(one, texts[c]);
    }
    for (size_t i = 0; i < n_extra; i++)
        if (strlen(extra[i]) < sizeof texts[0] / 2) gb_byte_level(extra[i], texts[256 + i]);
    int32_t eos = (int32_t)(256 + n_extra);
    snprintf(texts[eos], sizeof texts[eos], "<|endoftext|>");
    gb_u32(b, 0x46554747u); /* "GGUF" */
    gb_u32(b, 3);
    gb_u64(b, 0); /* tensors */
    gb_u64(b, 6); /* key/values */
    gb_kv_str(b, "tokenizer.ggml.model", "gpt2");
    gb_kv_str(b, "tokenizer.ggml.pre", "qwen2");
    gb_str(b, "tokenizer.ggml.tokens");
    gb_u32(b, GB_T_ARR);
    gb_u32(b, GB_T_STR);
    gb_u64(b, n);
    for (size_t i = 0; i < n; i++) gb_str(b, texts[i]);
    gb_str(b, "tokenizer.ggml.token_type");
    gb_u32(b, GB_T_ARR);
    gb_u32(b, GB_T_I32);
    gb_u64(b, n);
    for (size_t i = 0; i < n; i++) gb_u32(b, (int32_t)i == eos ? 3u : 1u); /* control : normal */
    gb_str(b, "tokenizer.ggml.merges");
    gb_u32(b, GB_T_ARR);
    gb_u32(b, GB_T_STR);
    gb_u64(b, 1);
    gb_str(b, "a b");
    gb_str(b, "tokenizer.ggml.eos_token_id");
    gb_u32(b, GB_T_U32);
    gb_u32(b, (uint32_t)eos);
    free(texts);
    return eos;
}
