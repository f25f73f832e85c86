/* kernels.h - the matrix-vector kernels of decode: dot products of weight rows with activation
 * rows, at a SIMD level chosen at run time.
 *
 * As llama.cpp does, each activation row is converted ONCE to the activation type of the weight
 * type (kern_act_type: 8-bit blocks for the quantized types, fp16/bf16/f32 for the float ones),
 * and every dot product then runs on integers inside a block, with one float scale per block.
 *
 * What each level computes, so the engine can reproduce llama.cpp's numbers:
 *  - KERN_SCALAR: ggml's reference activation quantizers (quantize_row_q8_0_ref, _q8_1_ref,
 *    _q8_K_ref) and ggml's generic dot products (ggml-cpu/quants.c), same operations, same order.
 *  - KERN_AVX2: ggml's x86 code. Its Q8_0/Q8_1 activation quantizer is not the reference one: it
 *    multiplies by 127/amax (the reference by 1/(amax/127)) and rounds half to even (the reference
 *    half away from zero), so a few int8 values differ by one from KERN_SCALAR, exactly as between
 *    llama.cpp builds with and without AVX. Q8_K, F16 and BF16 activations are the same bits at
 *    every level. The AVX2 dot products sum in ggml's AVX2 order.
 *  - KERN_AVX512: the AVX2 activations; Q8_0, Q4_0, Q4_K, Q6_K, F32 and the float helpers in
 *    512-bit registers (VNNI), which sums the same integers in another float order; every other
 *    type runs the AVX2 kernel.
 * A level may only be run on a CPU that has it: pass kern_clamp(level) or kern_detect(). */
#ifndef CHATD_KERNELS_H
#define CHATD_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/quant.h"

typedef enum kern_level { KERN_SCALAR, KERN_AVX2, KERN_AVX512 } kern_level;

/* Bytes of one activation block: Q8_0 {fp16 d; int8 qs[32]}, Q8_1 {fp16 d; fp16 s; int8 qs[32]}
 * (s = d * sum(qs)), Q8_K {float d; int8 qs[256]; int16 bsums[16]} (bsums = sums of 16 qs). */
#define KERN_Q8_0_BYTES 34
#define KERN_Q8_1_BYTES 36
#define KERN_Q8_K_BYTES 292

/* Best level this CPU and its OS support (CPUID feature bits and the XSAVE state in XCR0). */
kern_level kern_detect(void);
/* The lower of want and kern_detect(): the level that is safe to run here. */
kern_level kern_clamp(kern_level want);
/* "scalar", "avx2" or "avx512"; "unknown" for a value outside the enum. */
const char *kern_level_name(kern_level l);
/* Parses "scalar" | "avx2" | "avx512" into *out; 0, or -1 (and *out untouched) otherwise. */
int kern_level_parse(const char *s, kern_level *out);

/* Activation type of a weight type (QTYPE_Q8_0, _Q8_1, _Q8_K, _F16, _BF16 or _F32); QTYPE_MAX_ID
 * when there is no kernel for wtype. */
uint32_t kern_act_type(uint32_t wtype);
/* True when there are kernels for rows of n elements of wtype (n >= 0, whole blocks). */
bool kern_supported(uint32_t wtype, int64_t n);
/* Bytes of one activation row of n elements for wtype; 0 when !kern_supported(wtype, n). */
size_t kern_act_row_bytes(uint32_t wtype, int64_t n);
/* Converts x[0..n) to the activation format of wtype in dst (kern_act_row_bytes bytes); does
 * nothing when !kern_supported(wtype, n). */
void kern_quantize_act(kern_level l, uint32_t wtype, const float *x, void *dst, int64_t n);
/* The activation row back to float, exactly q*d per element (so a float GEMM fed with it computes
 * what the integer path computes, except that the Q8_1 dot products of Q4_1/Q5_1 use the block sum
 * s, itself rounded to fp16); zeros when !kern_supported(wtype, n). */
void kern_dequantize_act(uint32_t wtype, const void *src, float *y, int64_t n);

/* y[r] = dot(weight row r, act) for r in [0, nrows): w points at row 0 and rows are
 * qtype_row_bytes(wtype, n) apart; act is one activation row from kern_quantize_act. Writes
 * zeros when !kern_supported(wtype, n). */
void kern_matvec(kern_level l, uint32_t wtype, const void *w, int64_t nrows, const void *act,
                 int64_t n, float *y);
/* y[t*ldy + r] = dot(weight row r, activation row t) for t in [0, nact): every weight row is read
 * once for all activation rows (act rows are kern_act_row_bytes apart). Each result is the same
 * bits kern_matvec gives. Writes zeros when !kern_supported(wtype, n). */
void kern_matmul(kern_level l, uint32_t wtype, const void *w, int64_t nrows, const void *act,
                 int64_t nact, int64_t n, float *y, int64_t ldy);

/* sum a[i]*b[i] over n floats (attention scores). */
float kern_dot_f32(kern_level l, const float *a, const float *b, int64_t n);
/* y[i] += a*x[i] over n floats (attention output). */
void kern_axpy_f32(kern_level l, float a, const float *x, float *y, int64_t n);
/* sum a[i]*b[i] where b holds n fp16 values (a KV-cache row). */
float kern_dot_f32_f16(kern_level l, const float *a, const uint16_t *b, int64_t n);
/* y[i] += a*float(x[i]) where x holds n fp16 values (a KV-cache row). */
void kern_axpy_f16(kern_level l, float a, const uint16_t *x, float *y, int64_t n);

/* The attention of a group of query heads that share one KV head (GQA), over several cache rows
 * at once: each KV row is converted from fp16 once for all heads, and there is one call per run
 * of rows instead of one per row and head. Every result is bit for bit what the single-row
 * helpers above give, called in the same order.
 *   kern_dot_f32_f16_rows: s[j*lds + p] = kern_dot_f32_f16(q + j*ldq, k + p*ldk, n)
 *       for j < nq, p < nk.
 *   kern_axpy_f16_rows: for p = 0, 1, ... nv-1 in turn, for j < ny:
 *       kern_axpy_f16(a[j*lda + p], v + p*ldv, y + j*ldy, n). */
void kern_dot_f32_f16_rows(kern_level l, const float *q, int64_t ldq, int64_t nq, const uint16_t *k,
                           int64_t ldk, int64_t nk, int64_t n, float *s, int64_t lds);
void kern_axpy_f16_rows(kern_level l, const float *a, int64_t lda, int64_t ny, const uint16_t *v,
                        int64_t ldv, int64_t nv, float *y, int64_t ldy, int64_t n);

/* dst[0..n) = the weight row src of wtype as floats: bit for bit dequantize_row (quant.c), which
 * it calls for the types without a SIMD version here (Q8_0, Q5_0, Q4_K and Q6_K have one).
 * Returns what dequantize_row returns: 0, or -1 for an unsupported type or length. */
int kern_dequantize_row(kern_level l, uint32_t wtype, const void *src, float *dst, int64_t n);

/* ---- Per-level entry points: engine/kernels.c dispatches to them, nothing else calls them.
 * The bool ones return false when the level has no kernel for the type, and the dispatcher then
 * runs the level below. wrb/arb are the weight and activation row strides in bytes. ---- */

/* AVX2 rows x activations product (as kern_matmul); false for a type without an AVX2 kernel.
 * With nact > 1, Q8_0 and Q5_0 run tiles of 4 weight rows x 2 activation rows, Q4_K and Q6_K one
 * weight row x up to 4 activation rows: each weight block is unpacked once per tile, and every
 * result keeps the float operations (and their order) of the one-row kernel, so the same bits. */
bool kern_avx2_rows(uint32_t wtype, const void *w, size_t wrb, int64_t nrows, const void *act,
                    size_t arb, int64_t nact, int64_t n, float *y, int64_t ldy);
/* AVX2 activation conversion for wtype (as kern_quantize_act). */
bool kern_avx2_quantize(uint32_t wtype, const float *x, void *dst, int64_t n);
/* AVX2 kern_dot_f32. */
float kern_avx2_dot_f32(const float *a, const float *b, int64_t n);
/* AVX2 kern_axpy_f32. */
void kern_avx2_axpy_f32(float a, const float *x, float *y, int64_t n);
/* AVX2 kern_dot_f32_f16. */
float kern_avx2_dot_f32_f16(const float *a, const uint16_t *b, int64_t n);
/* AVX2 kern_axpy_f16. */
void kern_avx2_axpy_f16(float a, const uint16_t *x, float *y, int64_t n);
/* AVX2 kern_dequantize_row; false for a type it does not convert. */
bool kern_avx2_dequantize_row(uint32_t wtype, const uint8_t *src, float *dst, int64_t n);
/* AVX2 kern_dot_f32_f16_rows and kern_axpy_f16_rows. */
void kern_avx2_dot_f32_f16_rows(const float *q, int64_t ldq, int64_t nq, const uint16_t *k,
                                int64_t ldk, int64_t nk, int64_t n, float *s, int64_t lds);
void kern_avx2_axpy_f16_rows(const float *a, int64_t lda, int64_t ny, const uint16_t *v,
                             int64_t ldv, int64_t nv, float *y, int64_t ldy, int64_t n);

/* AVX-512 rows x activations product; false for a type without an AVX-512 kernel. */
bool kern_avx512_rows(uint32_t wtype, const void *w, size_t wrb, int64_t nrows, const void *act,
                      size_t arb, int64_t nact, int64_t n, float *y, int64_t ldy);
/* AVX-512 kern_dot_f32. */
float kern_avx512_dot_f32(const float *a, const float *b, int64_t n);
/* AVX-512 kern_axpy_f32. */
void kern_avx512_axpy_f32(float a, const float *x, float *y, int64_t n);
/* AVX-512 kern_dot_f32_f16. */
float kern_avx512_dot_f32_f16(const float *a, const uint16_t *b, int64_t n);
/* AVX-512 kern_axpy_f16. */
void kern_avx512_axpy_f16(float a, const uint16_t *x, float *y, int64_t n);

#endif
