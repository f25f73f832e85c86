/* quant.h - ggml tensor types: block layouts, sizes and dequantization.
 *
 * A tensor row of n elements of a block-quantized type is n / block_elems blocks of
 * block_bytes each. The type ids are ggml's, as stored in GGUF tensor directories. */
#ifndef CHATD_QUANT_H
#define CHATD_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ggml type ids (only those chatd reads are named). */
typedef enum qtype {
    QTYPE_F32 = 0,
    QTYPE_F16 = 1,
    QTYPE_Q4_0 = 2,
    QTYPE_Q4_1 = 3,
    QTYPE_Q5_0 = 6,
    QTYPE_Q5_1 = 7,
    QTYPE_Q8_0 = 8,
    QTYPE_Q8_1 = 9,
    QTYPE_Q2_K = 10,
    QTYPE_Q3_K = 11,
    QTYPE_Q4_K = 12,
    QTYPE_Q5_K = 13,
    QTYPE_Q6_K = 14,
    QTYPE_Q8_K = 15,
    QTYPE_BF16 = 30,
    QTYPE_MAX_ID = 40
} qtype;

#define QK_K 256 /* elements per K-quant super-block */

/* Static facts about one ggml type. */
typedef struct qtype_traits {
    const char *name;     /* "Q4_K", ... */
    uint32_t block_elems; /* elements per block (1 for F32/F16/BF16) */
    uint32_t block_bytes; /* bytes per block */
    bool supported;       /* chatd can load tensors of this type */
} qtype_traits;

/* Traits of a type id; NULL for ids chatd does not know at all. */
const qtype_traits *qtype_get(uint32_t type);

/* Name of a type id, or "type#N" written into buf for unknown ids. */
const char *qtype_name(uint32_t type, char *buf, size_t bufsize);

/* Bytes taken by a row of n elements; 0 when n is not a whole number of blocks. */
size_t qtype_row_bytes(uint32_t type, int64_t n);

/* IEEE half and bfloat16 to float. */
float fp16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
/* float to IEEE half (round to nearest even) and to bfloat16 (round to nearest even). */
uint16_t f32_to_fp16(float f);
uint16_t f32_to_bf16(float f);

/* Dequantizes n elements (a multiple of the block size) from src into dst.
 * Returns 0, or -1 when the type is unsupported or n is not a whole number of blocks. */
int dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

#endif
