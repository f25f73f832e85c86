/* gguf_builder.h - writes small GGUF images in memory for tests and fuzz seeds.
 *
 * gb_tiny_model() builds a complete, valid llama model (every tensor present, F32
 * weights, a tokenizer vocabulary) that the reader must accept; tests then corrupt it
 * field by field. The layout of the image is recorded so a test can find the byte
 * offset of any field it wants to break. */
#ifndef CHATD_GGUF_BUILDER_H
#define CHATD_GGUF_BUILDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct gb_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} gb_buf;

/* Offsets of interesting fields in an image made by gb_tiny_model. */
typedef struct gb_layout {
    size_t version;       /* uint32 version */
    size_t n_tensors;     /* uint64 tensor count */
    size_t n_kv;          /* uint64 metadata count */
    size_t first_key_len; /* uint64 length of the first key */
    size_t tokens_count;  /* uint64 length of the tokenizer.ggml.tokens array */
    size_t first_tensor;  /* start of the first tensor info (its name length) */
    size_t first_ndims;   /* uint32 n_dims of the first tensor */
    size_t first_ne0;     /* uint64 ne[0] of the first tensor */
    size_t first_type;    /* uint32 type of the first tensor */
    size_t first_offset;  /* uint64 offset of the first tensor */
    size_t second_offset; /* uint64 offset of the second tensor */
    size_t data_offset;   /* start of the tensor data section */
} gb_layout;

void gb_u8(gb_buf *b, uint8_t v);
void gb_u32(gb_buf *b, uint32_t v);
void gb_u64(gb_buf *b, uint64_t v);
void gb_f32(gb_buf *b, float v);
void gb_str(gb_buf *b, const char *s);
void gb_pad(gb_buf *b, size_t align);
void gb_free(gb_buf *b);
void gb_put_u32(gb_buf *b, size_t at, uint32_t v);
void gb_put_u64(gb_buf *b, size_t at, uint64_t v);

/* A valid llama model: n_embd 32, 1 layer, 2 heads, n_ff 64, 8 tokens, alignment 32. */
void gb_tiny_model(gb_buf *b, gb_layout *lay);

/* GPT-2's byte-to-unicode text of byte b into out (NUL-terminated, at most 3 bytes with
 * the NUL); returns its length. */
size_t gb_byte_text(unsigned b, char *out);

/* A tokenizer-only image of a byte-level BPE vocabulary (pre-tokenizer qwen2): the 256
 * bytes, then the extra tokens (raw bytes, under 32 each), then an end-of-text control
 * token, whose id it returns (-1 when memory runs out). */
int32_t gb_byte_vocab(gb_buf *b, const char *const *extra, size_t n_extra);

#endif
