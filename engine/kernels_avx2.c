/* kernels_avx2.c - the AVX2 level of the matrix-vector kernels (compiled with -mavx2 -mfma
 * -mf16c; kernels.c calls it only when kern_detect() reports AVX2).
 *
 * Everything here computes what ggml's x86 code (ggml-cpu/arch/x86/quants.c, vec.c) computes on
 * an AVX2 machine: its Q8_0/Q8_1 activation quantizer, and dot products that form the same
 * integer sums and add them into the same float accumulators in the same order. The integer part
 * is _mm256_maddubs_epi16 (unsigned x signed bytes into 16-bit pair sums) and _mm256_madd_epi16
 * (16-bit pairs into 32-bit sums); maddubs needs one unsigned operand, so signed x signed takes
 * the absolute value of one side and moves its sign onto the other. */
#include "chatd/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* ---- loads and small helpers ---- */

static inline uint16_t rd_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float rd_f16(const uint8_t *p) {
    return _cvtsh_ss(rd_u16(p));
}

static inline float rd_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __m128i load128(const void *p) {
    return _mm_loadu_si128((const __m128i *)p);
}

static inline __m256i load256(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

static inline __m256i join128(__m128i lo, __m128i hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* ggml's hsum_float_8: the order of these adds is part of the result. */
static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline int hsum_i32(__m256i x) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* sum of x*y over each 4 bytes, as floats. x may be any int8; y must not be -128 (activation
 * quants never are), since its sign is flipped where x is negative. */
static inline __m256 dot_i8x4(__m256i x, __m256i y) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* the same for unsigned x (0..255 with 2*255*127 < 32768, so the pair sums cannot saturate) */
static inline __m256 dot_u8x4(__m256i x, __m256i y) {
    const __m256i p = _mm256_maddubs_epi16(x, y);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* 16 bytes of nibbles to 32 bytes: low nibbles first (elements 0..15), then high (16..31). */
static inline __m256i nibbles32(const uint8_t *p) {
    /* the 16 bytes in both lanes (a load, no shuffle), the high lane shifted right by 4 */
    const __m256i t = _mm256_broadcastsi128_si256(load128(p));
    return _mm256_and_si256(_mm256_srlv_epi64(t, _mm256_set_epi64x(4, 4, 0, 0)),
                            _mm256_set1_epi8(0x0f));
}

/* 32 bits (little-endian) to 32 bytes, 0xff where the bit is set. */
static inline __m256i bits32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    /* byte k gets source byte k/8, then all bits but bit k%8 are forced on */
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)v),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1));
}

/* Shuffle for _mm256_shuffle_epi8 on a register holding 8 int16 in each 128-bit lane: the low lane
 * broadcasts int16 number 2k, the high lane number 2k+1 (scales of two groups of 16 quants). */
static inline __m256i scale_pair(int k) {
    const short lo = (short)(((4 * k + 1) << 8) | (4 * k));
    const short hi = (short)(((4 * k + 3) << 8) | (4 * k + 2));
    return join128(_mm_set1_epi16(lo), _mm_set1_epi16(hi));
}

/* The same for one int16 in both lanes: number k (a scale of 32 quants in Q4_K/Q5_K). */
static inline __m256i scale_one(int k) {
    return _mm256_set1_epi16((short)(((2 * k + 1) << 8) | (2 * k)));
}

/* ---- activation conversion ---- */

#define ROUND_EVEN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* ggml's x86 quantize_row_q8_0 / _q8_1: d = amax/127, q = round-half-even(x * (127/amax)),
 * saturated to int8 by the packs (only NaN could need it). */
static void quantize_q8_01(const float *x, uint8_t *y, int64_t nb, bool q8_1) {
    const int bs = q8_1 ? KERN_Q8_1_BYTES : KERN_Q8_0_BYTES;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < nb; i++, x += 32, y += bs) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_andnot_ps(sign, v0);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v1));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v2));
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v3));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.f;
        const uint16_t dh = _cvtss_sh(d, 0);
        memcpy(y, &dh, 2);
        const __m256 mul = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), ROUND_EVEN));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), ROUND_EVEN));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), ROUND_EVEN));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), ROUND_EVEN));
        if (q8_1) {
            const int sum =
                hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
            const uint16_t sh = _cvtss_sh(d * (float)sum, 0);
            memcpy(y + 2, &sh, 2);
        }
        /* the packs work per 128-bit lane; the permute puts the 4-byte groups back in order */
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(y + bs - 32), i0);
    }
}

/* quantize_row_q8_K_ref, vectorized with the same float operations so the bits are the same:
 * NaNs are skipped by the max (as by the reference's `ax > amax`), and the rounding is
 * nearest_int's add-and-mask, kept as the low byte of min(v, 127) like the reference's store. */
static void quantize_q8_k(const float *x, uint8_t *y, int64_t nb) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < nb; i++, x += QK_K, y += KERN_Q8_K_BYTES) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(y, 0, KERN_Q8_K_BYTES);
            continue;
        }
        float max = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.0f);
        const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
        const __m256i top = _mm256_set1_epi32(127), low8 = _mm256_set1_epi32(0xff);
        uint8_t *qs = y + 4;
        for (int j = 0; j < QK_K; j += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                const __m256 t =
                    _mm256_add_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * k)), magic);
                __m256i q = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(t), mant), bias);
                v[k] = _mm256_and_si256(_mm256_min_epi32(q, top), low8);
            }
            /* values are 0..255 now, so the unsigned packs only narrow */
            __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]),
                                            _mm256_packus_epi32(v[2], v[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(qs + j), p);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += (int8_t)qs[16 * j + k];
            const int16_t s16 = (int16_t)sum;
            memcpy(y + 260 + 2 * j, &s16, sizeof s16);
        }
        const float d = 1 / iscale;
        memcpy(y, &d, sizeof d);
    }
}

/* round to nearest even fp16, as f32_to_fp16 does (NaNs stay NaNs, quiet, with their top payload)
 */
static void quantize_f16(const float *x, uint8_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + 2 * i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        const uint16_t h = _cvtss_sh(x[i], 0);
        memcpy(y + 2 * i, &h, 2);
    }
}

/* f32_to_bf16 eight at a time: round to nearest even on the bits, NaNs made quiet. */
static void quantize_bf16(const float *x, uint8_t *y, int64_t n) {
    int64_t i = 0;
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff);
    const __m256i quiet = _mm256_set1_epi32(0x40);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int k = 0; k < 2; k++) {
            const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i + 8 * k));
            const __m256i hi = _mm256_srli_epi32(u, 16);
            const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
            const __m256i rounded = _mm256_srli_epi32(
                _mm256_add_epi32(u, _mm256_add_epi32(half, _mm256_and_si256(hi, one))), 16);
            r[k] = _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, quiet), nan);
        }
        /* both are 0..0xffff, so the signed-input unsigned pack only narrows */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
        _mm256_storeu_si256((__m256i *)(y + 2 * i), p);
    }
    for (; i < n; i++) {
        const uint16_t h = f32_to_bf16(x[i]);
        memcpy(y + 2 * i, &h, 2);
    }
}

bool kern_avx2_quantize(uint32_t wtype, const float *x, void *dst, int64_t n) {
    uint8_t *y = dst;
    switch (kern_act_type(wtype)) {
    case QTYPE_Q8_0:
        quantize_q8_01(x, y, n / 32, false);
        return true;
    case QTYPE_Q8_1:
        quantize_q8_01(x, y, n / 32, true);
        return true;
    case QTYPE_Q8_K:
        quantize_q8_k(x, y, n / QK_K);
        return true;
    case QTYPE_F16:
        quantize_f16(x, y, n);
        return true;
    case QTYPE_BF16:
        quantize_bf16(x, y, n);
        return true;
    case QTYPE_F32:
        memcpy(y, x, (size_t)n * sizeof(float));
        return true;
    default:
        return false;
    }
}

/* ---- dot products: one weight row against one activation row of n elements ---- */

/* The 32-quant block types take R rows (R <= 4, w, w + wrb, ...) against one activation row at
 * a time: one row alone waits on the latency of its accumulating FMA every block, and R
 * independent chains fill that wait. Each row still gets exactly the operations, in the order, of
 * ggml's single-row loop; the activation block is just loaded once for all of them.
 * Q8_0 and Q5_0 (what decode spends its time in) also prefetch: while rows r..r+R-1 are read,
 * each asks for the same place in the row MAXR further on, i.e. the next group's rows, which
 * turns the R interleaved row streams, too many for the hardware prefetcher to follow at the
 * decode's pace, into reads that are already under way (about 1.5x the streamed GB/s). */
#define MAXR   4
#define INLINE static inline __attribute__((always_inline))

/* d[r] = fp16 scale at w + r*wrb (r < R <= 4) times the activation scale da: the same products
 * as one float multiply per row, but one conversion for all R rows, and the per-row broadcast of
 * d[r] is then a plain load rather than a shuffle. */
INLINE void row_scales(const uint8_t *w, size_t wrb, int R, float da, float *d) {
    uint64_t h = 0;
    for (int r = 0; r < R; r++) h |= (uint64_t)rd_u16(w + r * wrb) << (16 * r);
    _mm_storeu_ps(d, _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)h)), _mm_set1_ps(da)));
}

/* Q4_0 x Q8_0 */
INLINE void dots_q4_0(const uint8_t *w, size_t wrb, int R, const uint8_t *a, int64_t n,
                      float *out) {
    __m256 acc[MAXR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, w += 18, a += KERN_Q8_0_BYTES) {
        const float da = rd_f16(a);
        const __m256i qy = load256(a + 2);
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrb;
            const __m256 d = _mm256_set1_ps(rd_f16(wb) * da);
            const __m256i qx = _mm256_sub_epi8(nibbles32(wb + 2), _mm256_set1_epi8(8));
            acc[r] = _mm256_fmadd_ps(d, dot_i8x4(qx, qy), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]);
}

/* Q4_1 x Q8_1: the min m meets the activation block sum s, outside the vector sum. */
INLINE void dots_q4_1(const uint8_t *w, size_t wrb, int R, const uint8_t *a, int64_t n,
                      float *out) {
    __m256 acc[MAXR];
    float summs[MAXR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps(), summs[r] = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 20, a += KERN_Q8_1_BYTES) {
        const float da = rd_f16(a), sa = rd_f16(a + 2);
        const __m256i qy = load256(a + 4);
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrb;
            summs[r] += rd_f16(wb + 2) * sa;
            const __m256 d = _mm256_mul_ps(_mm256_set1_ps(rd_f16(wb)), _mm256_set1_ps(da));
            acc[r] = _mm256_fmadd_ps(d, dot_u8x4(nibbles32(wb + 4), qy), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]) + summs[r];
}

/* Q5_0 x Q8_0. The weight quants are x = u - 16 with u = nibble + 16 * (5th bit) in 0..31, so
 * maddubs takes u as its unsigned operand directly (no sign moves), and the -16 comes off the
 * 16-bit pair sums as 16 * (y pair sum), which is shared by all rows. The integer sum of each
 * 4 quants, and so every float operation after it, is the same as ggml's. */
INLINE void dots_q5_0(const uint8_t *w, size_t wrb, int R, const uint8_t *a, int64_t n,
                      float *out) {
    const __m256i b4 = _mm256_set1_epi8(0x10);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MAXR];
    float ds[MAXR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, w += 22, a += KERN_Q8_0_BYTES) {
        const __m256i qy = load256(a + 2);
        const __m256i y16 = _mm256_maddubs_epi16(b4, qy);
        row_scales(w, wrb, R, rd_f16(a), ds);
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrb;
            _mm_prefetch((const char *)(wb + MAXR * wrb), _MM_HINT_T0);
            const __m256i u =
                _mm256_or_si256(nibbles32(wb + 6), _mm256_and_si256(bits32(wb + 2), b4));
            const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, qy), y16);
            const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&ds[r]), s, acc[r]);
        }
    }
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]);
}

/* Q5_1 x Q8_1 */
INLINE void dots_q5_1(const uint8_t *w, size_t wrb, int R, const uint8_t *a, int64_t n,
                      float *out) {
    __m256 acc[MAXR];
    float summs[MAXR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps(), summs[r] = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 24, a += KERN_Q8_1_BYTES) {
        const __m256 dy = _mm256_set1_ps(rd_f16(a));
        const float sa = rd_f16(a + 2);
        const __m256i qy = load256(a + 4);
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrb;
            const __m256 dx = _mm256_set1_ps(rd_f16(wb));
            summs[r] += rd_f16(wb + 2) * sa;
            const __m256i hi = _mm256_and_si256(bits32(wb + 4), _mm256_set1_epi8(0x10));
            const __m256i qx = _mm256_or_si256(nibbles32(wb + 8), hi);
            acc[r] = _mm256_fmadd_ps(dot_u8x4(qx, qy), _mm256_mul_ps(dx, dy), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]) + summs[r];
}

/* Q8_0 x Q8_0 */
INLINE void dots_q8_0(const uint8_t *w, size_t wrb, int R, const uint8_t *a, int64_t n,
                      float *out) {
    __m256 acc[MAXR];
    float ds[MAXR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, w += 34, a += KERN_Q8_0_BYTES) {
        const __m256i qy = load256(a + 2);
        row_scales(w, wrb, R, rd_f16(a), ds);
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrb;
            _mm_prefetch((const char *)(wb + MAXR * wrb), _MM_HINT_T0);
            acc[r] =
                _mm256_fmadd_ps(_mm256_broadcast_ss(&ds[r]), dot_i8x4(load256(wb + 2), qy), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]);
}

/* Tiles of R weight rows (R <= 4) x A activation rows (A <= 2) for kern_matmul with nact > 1:
 * the weight block is loaded and unpacked once for all A activation rows. Every output element
 * still gets exactly the operations, in the order, of dots_* above (the same integer sums, then
 * the same scale product d_w * d_a and the same fused multiply-add into its own accumulator), so
 * the results are the bits of computing each activation row alone. y[a * ldy + r] is written;
 * pf asks for the prefetches of dots_* (once per group of weight rows is enough). */
#define MAXA 2

/* the R fp16 weight scales at w, w + wrb, ... as 4 floats */
INLINE __m128 row_scales_w(const uint8_t *w, size_t wrb, int R) {
    uint64_t h = 0;
    for (int r = 0; r < R; r++) h |= (uint64_t)rd_u16(w + r * wrb) << (16 * r);
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

INLINE void tile_q8_0(const uint8_t *w, size_t wrb, int R, const uint8_t *a, size_t arb, int A,
                      int64_t n, float *y, int64_t ldy, bool pf) {
    __m256 acc[MAXR][MAXA];
    float ds[MAXA][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < A; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, w += 34, a += KERN_Q8_0_BYTES) {
        __m256i qy[MAXA];
        const __m128 dw = row_scales_w(w, wrb, R);
        for (int t = 0; t < A; t++) {
            qy[t] = load256(a + t * arb + 2);
            _mm_storeu_ps(ds[t], _mm_mul_ps(dw, _mm_set1_ps(rd_f16(a + t * arb))));
        }
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrb;
            if (pf) _mm_prefetch((const char *)(wb + MAXR * wrb), _MM_HINT_T0);
            const __m256i x = load256(wb + 2);
            const __m256i ax = _mm256_sign_epi8(x, x);
            for (int t = 0; t < A; t++) {
                const __m256i p = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy[t], x));
                const __m256 sf = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
                acc[r][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(&ds[t][r]), sf, acc[r][t]);
            }
        }
    }
    for (int t = 0; t < A; t++)
        for (int r = 0; r < R; r++) y[t * ldy + r] = hsum8(acc[r][t]);
}

INLINE void tile_q5_0(const uint8_t *w, size_t wrb, int R, const uint8_t *a, size_t arb, int A,
                      int64_t n, float *y, int64_t ldy, bool pf) {
    const __m256i b4 = _mm256_set1_epi8(0x10);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MAXR][MAXA];
    float ds[MAXA][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < A; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, w += 22, a += KERN_Q8_0_BYTES) {
        __m256i qy[MAXA], y16[MAXA];
        const __m128 dw = row_scales_w(w, wrb, R);
        for (int t = 0; t < A; t++) {
            qy[t] = load256(a + t * arb + 2);
            y16[t] = _mm256_maddubs_epi16(b4, qy[t]);
            _mm_storeu_ps(ds[t], _mm_mul_ps(dw, _mm_set1_ps(rd_f16(a + t * arb))));
        }
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * wrb;
            if (pf) _mm_prefetch((const char *)(wb + MAXR * wrb), _MM_HINT_T0);
            const __m256i u =
                _mm256_or_si256(nibbles32(wb + 6), _mm256_and_si256(bits32(wb + 2), b4));
            for (int t = 0; t < A; t++) {
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, qy[t]), y16[t]);
                const __m256 sf = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                acc[r][t] = _mm256_fmadd_ps(_mm256_broadcast_ss(&ds[t][r]), sf, acc[r][t]);
            }
        }
    }
    for (int t = 0; t < A; t++)
        for (int r = 0; r < R; r++) y[t * ldy + r] = hsum8(acc[r][t]);
}

/* The super-block types stream one row at a time: the rows a thread owns are contiguous, so
 * this asks for the bytes KPF ahead of the current block (a few blocks on, possibly in the next
 * row) while the block is computed. Without it the loads wait on memory: the hardware prefetcher
 * alone does not keep up with the 2-thread decode. */
#define KPF 1024
INLINE void prefetch_ahead(const uint8_t *w, int bytes) {
    for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(w + KPF + o), _MM_HINT_T0);
}

/* Q8_K activation fields */
static inline float q8k_d(const uint8_t *a) {
    return rd_f32(a);
}

/* Q2_K x Q8_K */
static inline float dot_q2_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xf);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, w += 84, a += KERN_Q8_K_BYTES) {
        prefetch_ahead(w, 84);
        const float d = q8k_d(a) * rd_f16(w + 80);
        const float dmin = -q8k_d(a) * rd_f16(w + 82);
        const uint8_t *q2 = w + 16, *q8 = a + 4;
        const __m128i packed = load128(w);
        const __m128i sc8 = _mm_and_si128(packed, m4);
        const __m128i mn8 = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
        const __m256i prod = _mm256_madd_epi16(_mm256_cvtepi8_epi16(mn8), load256(a + 260));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m128i lo = _mm256_castsi256_si128(sc16), hi = _mm256_extracti128_si256(sc16, 1);
        const __m256i scales[2] = {join128(lo, lo), join128(hi, hi)};
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 2; j++, q2 += 32) {
            const __m256i bits = load256(q2);
            __m256i p[4];
            for (int k = 0; k < 4; k++, q8 += 32) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                p[k] = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], scale_pair(k)),
                                         _mm256_maddubs_epi16(q, load256(q8)));
            }
            sumi = _mm256_add_epi32(
                sumi, _mm256_add_epi32(_mm256_add_epi32(p[0], p[1]), _mm256_add_epi32(p[2], p[3])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}

/* Q3_K x Q8_K: the 2 low bits and the (inverted) high bit are multiplied separately, so both
 * stay unsigned for maddubs, and subtracted: q = low - 4*(!hbit). */
static inline float dot_q3_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, w += 110, a += KERN_Q8_K_BYTES) {
        prefetch_ahead(w, 110);
        const float d = q8k_d(a) * rd_f16(w + 108);
        const uint8_t *s = w + 96, *q3 = w + 32, *q8 = a + 4;
        /* the 16 scales (see quant.c), four bytes at a time in integer registers */
        uint32_t u[3];
        memcpy(u, s, 12);
        const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
        const __m128i sc8 =
            _mm_sub_epi8(_mm_set_epi32((int)(((u[1] >> 4) & m4) | (((u[2] >> 6) & m2) << 4)),
                                       (int)(((u[0] >> 4) & m4) | (((u[2] >> 4) & m2) << 4)),
                                       (int)((u[1] & m4) | (((u[2] >> 2) & m2) << 4)),
                                       (int)((u[0] & m4) | ((u[2] & m2) << 4))),
                         _mm_set1_epi8(32));
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m128i lo = _mm256_castsi256_si128(sc16), hi = _mm256_extracti128_si256(sc16, 1);
        const __m256i scales[2] = {join128(lo, lo), join128(hi, hi)};
        const __m256i hbits = load256(w);
        __m256i sumi = _mm256_setzero_si256();
        int bit = 0;
        for (int j = 0; j < 2; j++, q3 += 32) {
            const __m256i bits = load256(q3);
            __m256i p[4];
            for (int k = 0; k < 4; k++, q8 += 32, bit++) {
                const __m256i ql = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                const __m256i clear =
                    _mm256_andnot_si256(hbits, _mm256_slli_epi16(one, bit)); /* 1<<bit if clear */
                const __m256i qh = _mm256_slli_epi16(_mm256_srli_epi16(clear, bit), 2);
                const __m256i y = load256(q8);
                const __m256i p16 =
                    _mm256_sub_epi16(_mm256_maddubs_epi16(ql, y), _mm256_maddubs_epi16(qh, y));
                p[k] = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], scale_pair(k)), p16);
            }
            sumi = _mm256_add_epi32(
                sumi, _mm256_add_epi32(_mm256_add_epi32(p[0], p[1]), _mm256_add_epi32(p[2], p[3])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}

/* The 8 scales and 8 mins of a Q4_K/Q5_K block (6 bits each, packed in 12 bytes), as 16 bytes:
 * scales first. */
static inline __m128i k4_scales_mins(const uint8_t *s) {
    /* four bytes at a time in integer registers: byte stores reloaded as a vector would stall
     * store forwarding */
    uint32_t u[3];
    memcpy(u, s, 12);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t sc_lo = u[0] & m6, mn_lo = u[1] & m6;
    const uint32_t sc_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
    const uint32_t mn_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
    return _mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo);
}

/* Q4_K x Q8_K: the mins meet the activation bsums (summed in pairs: one min per 32 quants). */
static inline float dot_q4_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, w += 144, a += KERN_Q8_K_BYTES) {
        prefetch_ahead(w, 144);
        const float d = q8k_d(a) * rd_f16(w);
        const float dmin = -q8k_d(a) * rd_f16(w + 2);
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales_mins(w + 4));
        const __m256i bsums = load256(a + 260);
        const __m128i q8s =
            _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
        const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), q8s);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
        const __m128i sc = _mm256_castsi256_si128(sm);
        const __m256i scales = join128(sc, sc);
        const uint8_t *q4 = w + 16, *q8 = a + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            const __m256i bits = load256(q4);
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i pl = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, scale_one(2 * j)),
                                                 _mm256_maddubs_epi16(lo, load256(q8)));
            const __m256i ph = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, scale_one(2 * j + 1)),
                                                 _mm256_maddubs_epi16(hi, load256(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
    return hsum8(acc) + _mm_cvtss_f32(acc_m);
}

/* Q5_K x Q8_K: Q4_K plus a 5th bit per quant from qh (bit 2j for the low nibbles of the j-th
 * 64 quants, 2j+1 for the high ones). */
static inline float dot_q5_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    const __m256i m4 = _mm256_set1_epi8(0xf), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / QK_K; i++, w += 176, a += KERN_Q8_K_BYTES) {
        prefetch_ahead(w, 176);
        const float d = q8k_d(a) * rd_f16(w);
        const float dmin = -q8k_d(a) * rd_f16(w + 2);
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales_mins(w + 4));
        const __m256i bsums = load256(a + 260);
        const __m128i q8s =
            _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
        const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), q8s);
        const __m128i z = _mm_setzero_si128();
        const __m128i hs = _mm_hadd_epi32(_mm_hadd_epi32(prod, z), z);
        summs += dmin * (float)_mm_cvtsi128_si32(hs);
        const __m128i sc = _mm256_castsi256_si128(sm);
        const __m256i scales = join128(sc, sc);
        const __m256i hbits = load256(w + 16);
        const uint8_t *q5 = w + 48, *q8 = a + 4;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++, q5 += 32, q8 += 64) {
            const __m256i bits = load256(q5);
            /* bit 2j of each qh byte (shifting 16-bit lanes is fine: only bit 0 of a byte is
             * kept), moved up to 16 */
            const __m256i h0 =
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one), 4);
            const __m256i h1 =
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one), 4);
            const __m256i q0 = _mm256_add_epi8(_mm256_and_si256(bits, m4), h0);
            const __m256i q1 =
                _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
            const __m256i p0 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, scale_one(2 * j)),
                                                 _mm256_maddubs_epi16(q0, load256(q8)));
            const __m256i p1 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, scale_one(2 * j + 1)),
                                                 _mm256_maddubs_epi16(q1, load256(q8 + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) + summs;
}

/* The 6-bit quants of half a Q6_K super-block (128 weights): low nibbles from l0, l1,
 * the two high bits from h, as four vectors of 32 unsigned values. */
static inline void q6k_unpack(__m256i l0, __m256i l1, __m256i h, __m256i m4, __m256i m3,
                              __m256i q[4]) {
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
}

/* Q6_K x Q8_K: quants are 0..63 for maddubs, and the -32 comes off as 32*sum(y). */
static inline float dot_q6_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    const __m256i m4 = _mm256_set1_epi8(0xf), m3 = _mm256_set1_epi8(3);
    const __m256i m32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, w += 210, a += KERN_Q8_K_BYTES) {
        prefetch_ahead(w, 210);
        const float d = q8k_d(a) * rd_f16(w + 208);
        const uint8_t *ql = w, *qh = w + 128, *q8 = a + 4;
        const __m128i scales = load128(w + 192);
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 2; j++, ql += 64, qh += 32) {
            const __m256i l0 = load256(ql), l1 = load256(ql + 32), h = load256(qh);
            __m256i q[4];
            q6k_unpack(l0, l1, h, m4, m3, q);
            __m256i p[4];
            for (int k = 0; k < 4; k++, q8 += 32) {
                const __m256i y = load256(q8);
                const __m256i p16 =
                    _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], y), _mm256_maddubs_epi16(m32, y));
                /* scales 2s and 2s+1 (s = 4j+k) over the two 16-quant halves */
                const int s = 4 * j + k;
                const __m128i sel = _mm_set_epi64x(0x0101010101010101LL * (2 * s + 1),
                                                   0x0101010101010101LL * (2 * s));
                const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, sel));
                p[k] = _mm256_madd_epi16(sc, p16);
            }
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[0], p[1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[2], p[3]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}

/* One Q4_K / Q6_K weight row against A activation rows (A <= MAXKA) for kern_matmul with
 * nact > 1: each super-block is unpacked once (quants, scales and mins) for all of them. Every
 * result gets exactly the operations of dot_q4_k / dot_q6_k in their order, so the same bits;
 * y[t * ldy] is written. pf asks for dot_*'s prefetches (once per row is enough). */
#define MAXKA 4

INLINE void tile_q4_k(const uint8_t *w, const uint8_t *a, size_t arb, int A, int64_t n, float *y,
                      int64_t ldy, bool pf) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    __m256 acc[MAXKA];
    __m128 acc_m[MAXKA];
    for (int t = 0; t < A; t++) acc[t] = _mm256_setzero_ps(), acc_m[t] = _mm_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, w += 144, a += KERN_Q8_K_BYTES) {
        if (pf) prefetch_ahead(w, 144);
        const float dw = rd_f16(w), dminw = rd_f16(w + 2);
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales_mins(w + 4));
        const __m128i mins = _mm256_extracti128_si256(sm, 1);
        for (int t = 0; t < A; t++) {
            const uint8_t *at = a + t * arb;
            const float dmin = -q8k_d(at) * dminw;
            const __m256i bsums = load256(at + 260);
            const __m128i q8s =
                _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
            const __m128i prod = _mm_madd_epi16(mins, q8s);
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[t]);
        }
        const __m128i sc = _mm256_castsi256_si128(sm);
        const __m256i scales = join128(sc, sc);
        const uint8_t *q4 = w + 16, *q8 = a + 4;
        __m256i sumi[MAXKA];
        for (int t = 0; t < A; t++) sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            const __m256i bits = load256(q4);
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i sl = _mm256_shuffle_epi8(scales, scale_one(2 * j));
            const __m256i sh = _mm256_shuffle_epi8(scales, scale_one(2 * j + 1));
            for (int t = 0; t < A; t++) {
                const uint8_t *q8t = q8 + t * arb;
                const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, load256(q8t)));
                const __m256i ph =
                    _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, load256(q8t + 32)));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(pl, ph));
            }
        }
        for (int t = 0; t < A; t++) {
            const float d = q8k_d(a + t * arb) * dw;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    for (int t = 0; t < A; t++) {
        __m128 m = acc_m[t];
        m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        y[t * ldy] = hsum8(acc[t]) + _mm_cvtss_f32(m);
    }
}

INLINE void tile_q6_k(const uint8_t *w, const uint8_t *a, size_t arb, int A, int64_t n, float *y,
                      int64_t ldy, bool pf) {
    const __m256i m4 = _mm256_set1_epi8(0xf), m3 = _mm256_set1_epi8(3);
    const __m256i m32 = _mm256_set1_epi8(32);
    __m256 acc[MAXKA];
    for (int t = 0; t < A; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, w += 210, a += KERN_Q8_K_BYTES) {
        if (pf) prefetch_ahead(w, 210);
        const float dw = rd_f16(w + 208);
        const uint8_t *ql = w, *qh = w + 128, *q8 = a + 4;
        const __m128i scales = load128(w + 192);
        __m256i sumi[MAXKA];
        for (int t = 0; t < A; t++) sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 2; j++, ql += 64, qh += 32) {
            const __m256i l0 = load256(ql), l1 = load256(ql + 32), h = load256(qh);
            __m256i q[4];
            q6k_unpack(l0, l1, h, m4, m3, q);
            __m256i p[MAXKA][4];
            for (int k = 0; k < 4; k++, q8 += 32) {
                const int s = 4 * j + k;
                const __m128i sel = _mm_set_epi64x(0x0101010101010101LL * (2 * s + 1),
                                                   0x0101010101010101LL * (2 * s));
                const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, sel));
                for (int t = 0; t < A; t++) {
                    const __m256i yv = load256(q8 + t * arb);
                    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], yv),
                                                         _mm256_maddubs_epi16(m32, yv));
                    p[t][k] = _mm256_madd_epi16(sc, p16);
                }
            }
            for (int t = 0; t < A; t++) {
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p[t][0], p[t][1]));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p[t][2], p[t][3]));
            }
        }
        for (int t = 0; t < A; t++) {
            const float d = q8k_d(a + t * arb) * dw;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
        }
    }
    for (int t = 0; t < A; t++) y[t * ldy] = hsum8(acc[t]);
}

/* ggml's GGML_F32x8_REDUCE of four accumulators. */
static inline float reduce4(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    s0 = _mm256_add_ps(s0, s2);
    s1 = _mm256_add_ps(s1, s3);
    s0 = _mm256_add_ps(s0, s1);
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    const __m128 t1 = _mm_hadd_ps(t0, t0);
    return _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}

/* ggml_vec_dot_f32: four FMA accumulators over 32 floats, the rest in float. Byte pointers,
 * since weight and activation rows need not be float-aligned. */
static inline float dot_f32_impl(const uint8_t *x, const uint8_t *y, int64_t n) {
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    const int64_t np = n & ~(int64_t)31;
    for (int64_t i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            s[j] = _mm256_fmadd_ps(
                _mm256_loadu_ps((const float *)(const void *)(x + 4 * (i + 8 * j))),
                _mm256_loadu_ps((const float *)(const void *)(y + 4 * (i + 8 * j))), s[j]);
    float sum = reduce4(s[0], s[1], s[2], s[3]);
    for (int64_t i = np; i < n; i++) sum += rd_f32(x + 4 * i) * rd_f32(y + 4 * i);
    return sum;
}

static inline float dot_f32_row(const uint8_t *w, const uint8_t *a, int64_t n) {
    return dot_f32_impl(w, a, n);
}

/* ggml_vec_dot_f16: as f32 on converted halves, the rest summed in double. */
static inline float dot_f16_row(const uint8_t *w, const uint8_t *a, int64_t n) {
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    const int64_t np = n & ~(int64_t)31;
    for (int64_t i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            s[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(load128(w + 2 * (i + 8 * j))),
                                   _mm256_cvtph_ps(load128(a + 2 * (i + 8 * j))), s[j]);
    double sum = reduce4(s[0], s[1], s[2], s[3]);
    for (int64_t i = np; i < n; i++) sum += (double)(rd_f16(w + 2 * i) * rd_f16(a + 2 * i));
    return (float)sum;
}

static inline __m256 load_bf16x8(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
}

static inline float rd_bf16(const uint8_t *p) {
    return bf16_to_f32(rd_u16(p));
}

/* ggml_vec_dot_bf16 (AVX2): four multiply-then-add accumulators, the rest in double. */
static inline float dot_bf16_row(const uint8_t *w, const uint8_t *a, int64_t n) {
    __m256 c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps(),
           c4 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const uint8_t *x = w + 2 * i, *y = a + 2 * i;
        c1 = _mm256_add_ps(_mm256_mul_ps(load_bf16x8(x), load_bf16x8(y)), c1);
        c2 = _mm256_add_ps(_mm256_mul_ps(load_bf16x8(x + 16), load_bf16x8(y + 16)), c2);
        c3 = _mm256_add_ps(_mm256_mul_ps(load_bf16x8(x + 32), load_bf16x8(y + 32)), c3);
        c4 = _mm256_add_ps(_mm256_mul_ps(load_bf16x8(x + 48), load_bf16x8(y + 48)), c4);
    }
    c1 = _mm256_add_ps(_mm256_add_ps(c1, c3), _mm256_add_ps(c2, c4));
    __m128 g = _mm_add_ps(_mm256_extractf128_ps(c1, 1), _mm256_castps256_ps128(c1));
    g = _mm_add_ps(g, _mm_movehl_ps(g, g));
    g = _mm_add_ss(g, _mm_movehdup_ps(g));
    double sum = _mm_cvtss_f32(g);
    for (; i < n; i++) sum += (double)(rd_bf16(w + 2 * i) * rd_bf16(a + 2 * i));
    return (float)sum;
}

/* ---- rows x activations ---- */

/* The dots above are inlined into their row loop; every weight row is used for all activation
 * rows while it is in L1 (for the 32-quant types, every group of MAXR rows). */
#define ROWS(name, dot)                                                                            \
    static void name(const uint8_t *w, size_t wrb, int64_t nrows, const uint8_t *act, size_t arb,  \
                     int64_t nact, int64_t n, float *y, int64_t ldy) {                             \
        for (int64_t r = 0; r < nrows; r++, w += wrb) {                                            \
            const uint8_t *ar = act;                                                               \
            for (int64_t t = 0; t < nact; t++, ar += arb) y[t * ldy + r] = dot(w, ar, n);          \
        }                                                                                          \
    }

#define ROWS_MULTI(name, dots)                                                                     \
    static void name(const uint8_t *w, size_t wrb, int64_t nrows, const uint8_t *act, size_t arb,  \
                     int64_t nact, int64_t n, float *y, int64_t ldy) {                             \
        int64_t r = 0;                                                                             \
        float o[MAXR];                                                                             \
        for (; r + MAXR <= nrows; r += MAXR) {                                                     \
            for (int64_t t = 0; t < nact; t++) {                                                   \
                dots(w + r * wrb, wrb, MAXR, act + t * arb, n, o);                                 \
                memcpy(y + t * ldy + r, o, sizeof o);                                              \
            }                                                                                      \
        }                                                                                          \
        for (; r < nrows; r++)                                                                     \
            for (int64_t t = 0; t < nact; t++)                                                     \
                dots(w + r * wrb, wrb, 1, act + t * arb, n, y + t * ldy + r);                      \
    }

/* The same with tiles for nact > 1: every group of MAXR weight rows against the activation rows
 * MAXA at a time, any last one alone (dots, the nact 1 kernel). */
#define ROWS_TILE(name, dots, tile)                                                                \
    static void name(const uint8_t *w, size_t wrb, int64_t nrows, const uint8_t *act, size_t arb,  \
                     int64_t nact, int64_t n, float *y, int64_t ldy) {                             \
        int64_t r = 0;                                                                             \
        float o[MAXR];                                                                             \
        for (; r + MAXR <= nrows; r += MAXR) {                                                     \
            int64_t t = 0;                                                                         \
            for (; t + MAXA <= nact; t += MAXA)                                                    \
                tile(w + r * wrb, wrb, MAXR, act + t * arb, arb, MAXA, n, y + t * ldy + r, ldy,    \
                     t == 0);                                                                      \
            for (; t < nact; t++) {                                                                \
                dots(w + r * wrb, wrb, MAXR, act + t * arb, n, o);                                 \
                memcpy(y + t * ldy + r, o, sizeof o);                                              \
            }                                                                                      \
        }                                                                                          \
        for (; r < nrows; r++) {                                                                   \
            int64_t t = 0;                                                                         \
            for (; t + MAXA <= nact; t += MAXA)                                                    \
                tile(w + r * wrb, wrb, 1, act + t * arb, arb, MAXA, n, y + t * ldy + r, ldy,       \
                     t == 0);                                                                      \
            for (; t < nact; t++) dots(w + r * wrb, wrb, 1, act + t * arb, n, y + t * ldy + r);    \
        }                                                                                          \
    }

/* One weight row at a time against the activation rows MAXKA, 2, then 1 at a time (dot, the
 * nact 1 kernel). */
#define ROWS_KTILE(name, dot, tile)                                                                \
    static void name(const uint8_t *w, size_t wrb, int64_t nrows, const uint8_t *act, size_t arb,  \
                     int64_t nact, int64_t n, float *y, int64_t ldy) {                             \
        for (int64_t r = 0; r < nrows; r++, w += wrb) {                                            \
            int64_t t = 0;                                                                         \
            for (; t + MAXKA <= nact; t += MAXKA)                                                  \
                tile(w, act + t * arb, arb, MAXKA, n, y + t * ldy + r, ldy, t == 0);               \
            if (t + 2 <= nact) {                                                                   \
                tile(w, act + t * arb, arb, 2, n, y + t * ldy + r, ldy, t == 0);                   \
                t += 2;                                                                            \
            }                                                                                      \
            if (t < nact) y[t * ldy + r] = dot(w, act + t * arb, n);                               \
        }                                                                                          \
    }

ROWS_MULTI(rows_q4_0, dots_q4_0)
ROWS_MULTI(rows_q4_1, dots_q4_1)
ROWS_TILE(rows_q5_0, dots_q5_0, tile_q5_0)
ROWS_MULTI(rows_q5_1, dots_q5_1)
ROWS_TILE(rows_q8_0, dots_q8_0, tile_q8_0)
ROWS(rows_q2_k, dot_q2_k)
ROWS(rows_q3_k, dot_q3_k)
ROWS_KTILE(rows_q4_k, dot_q4_k, tile_q4_k)
ROWS(rows_q5_k, dot_q5_k)
ROWS_KTILE(rows_q6_k, dot_q6_k, tile_q6_k)
ROWS(rows_f32, dot_f32_row)
ROWS(rows_f16, dot_f16_row)
ROWS(rows_bf16, dot_bf16_row)

bool kern_avx2_rows(uint32_t wtype, const void *w, size_t wrb, int64_t nrows, const void *act,
                    size_t arb, int64_t nact, int64_t n, float *y, int64_t ldy) {
    void (*rows)(const uint8_t *, size_t, int64_t, const uint8_t *, size_t, int64_t, int64_t,
                 float *, int64_t);
    switch (wtype) {
    case QTYPE_Q4_0:
        rows = rows_q4_0;
        break;
    case QTYPE_Q4_1:
        rows = rows_q4_1;
        break;
    case QTYPE_Q5_0:
        rows = rows_q5_0;
        break;
    case QTYPE_Q5_1:
        rows = rows_q5_1;
        break;
    case QTYPE_Q8_0:
        rows = rows_q8_0;
        break;
    case QTYPE_Q2_K:
        rows = rows_q2_k;
        break;
    case QTYPE_Q3_K:
        rows = rows_q3_k;
        break;
    case QTYPE_Q4_K:
        rows = rows_q4_k;
        break;
    case QTYPE_Q5_K:
        rows = rows_q5_k;
        break;
    case QTYPE_Q6_K:
        rows = rows_q6_k;
        break;
    case QTYPE_F32:
        rows = rows_f32;
        break;
    case QTYPE_F16:
        rows = rows_f16;
        break;
    case QTYPE_BF16:
        rows = rows_bf16;
        break;
    default:
        return false;
    }
    rows(w, wrb, nrows, act, arb, nact, n, y, ldy);
    return true;
}

/* ---- float helpers for attention ---- */

float kern_avx2_dot_f32(const float *a, const float *b, int64_t n) {
    return dot_f32_impl((const uint8_t *)a, (const uint8_t *)b, n);
}

void kern_avx2_axpy_f32(float a, const float *x, float *y, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 32; j += 8)
            _mm256_storeu_ps(y + i + j, _mm256_fmadd_ps(_mm256_loadu_ps(x + i + j), va,
                                                        _mm256_loadu_ps(y + i + j)));
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

float kern_avx2_dot_f32_f16(const float *a, const uint16_t *b, int64_t n) {
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++)
            s[j] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * j),
                                   _mm256_cvtph_ps(load128(b + i + 8 * j)), s[j]);
    for (; i + 8 <= n; i += 8)
        s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(load128(b + i)), s[0]);
    double sum = reduce4(s[0], s[1], s[2], s[3]);
    for (; i < n; i++) sum += (double)(a[i] * _cvtsh_ss(b[i]));
    return (float)sum;
}

void kern_avx2_axpy_f16(float a, const uint16_t *x, float *y, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            y + i, _mm256_fmadd_ps(_mm256_cvtph_ps(load128(x + i)), va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * _cvtsh_ss(x[i]);
}

/* ---- attention over several cache rows and heads ---- */

/* Cache rows converted to float per call, at most (16 KiB on the stack); longer rows, or more of
 * them, go in several passes. */
#define ROWS_BUF 4096

static void f16_to_f32_row(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(load128(x + i)));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

/* kern_avx2_dot_f32_f16 with b already converted (the conversion is exact, and the operations
 * and their order are the same, so is the result). */
static inline float dot_f32_conv(const float *a, const float *b, int64_t n) {
    __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++)
            s[j] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * j), _mm256_loadu_ps(b + i + 8 * j),
                                   s[j]);
    for (; i + 8 <= n; i += 8)
        s[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s[0]);
    double sum = reduce4(s[0], s[1], s[2], s[3]);
    for (; i < n; i++) sum += (double)(a[i] * b[i]);
    return (float)sum;
}

void kern_avx2_dot_f32_f16_rows(const float *q, int64_t ldq, int64_t nq, const uint16_t *k,
                                int64_t ldk, int64_t nk, int64_t n, float *s, int64_t lds) {
    if (n > ROWS_BUF) {
        for (int64_t j = 0; j < nq; j++)
            for (int64_t p = 0; p < nk; p++)
                s[j * lds + p] = kern_avx2_dot_f32_f16(q + j * ldq, k + p * ldk, n);
        return;
    }
    float buf[ROWS_BUF];
    const int64_t per = ROWS_BUF / n;
    for (int64_t p0 = 0; p0 < nk; p0 += per) {
        const int64_t np = nk - p0 < per ? nk - p0 : per;
        for (int64_t p = 0; p < np; p++) f16_to_f32_row(k + (p0 + p) * ldk, buf + p * n, n);
        for (int64_t j = 0; j < nq; j++)
            for (int64_t p = 0; p < np; p++)
                s[j * lds + p0 + p] = dot_f32_conv(q + j * ldq, buf + p * n, n);
    }
}

/* kern_avx2_axpy_f16 of nv converted rows into one y, in row order: each element gets the same
 * fused multiply-adds in the same order, but y stays in registers across the rows. */
static void axpy_rows_conv(const float *a, const float *x, int64_t nv, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 y0 = _mm256_loadu_ps(y + i), y1 = _mm256_loadu_ps(y + i + 8);
        __m256 y2 = _mm256_loadu_ps(y + i + 16), y3 = _mm256_loadu_ps(y + i + 24);
        for (int64_t p = 0; p < nv; p++) {
            const float *xp = x + p * n + i;
            const __m256 va = _mm256_set1_ps(a[p]);
            y0 = _mm256_fmadd_ps(_mm256_loadu_ps(xp), va, y0);
            y1 = _mm256_fmadd_ps(_mm256_loadu_ps(xp + 8), va, y1);
            y2 = _mm256_fmadd_ps(_mm256_loadu_ps(xp + 16), va, y2);
            y3 = _mm256_fmadd_ps(_mm256_loadu_ps(xp + 24), va, y3);
        }
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + 8, y1);
        _mm256_storeu_ps(y + i + 16, y2);
        _mm256_storeu_ps(y + i + 24, y3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 y0 = _mm256_loadu_ps(y + i);
        for (int64_t p = 0; p < nv; p++)
            y0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + p * n + i), _mm256_set1_ps(a[p]), y0);
        _mm256_storeu_ps(y + i, y0);
    }
    /* the scalar tail as kern_avx2_axpy_f16 writes it (a multiply, then an add) */
    for (; i < n; i++)
        for (int64_t p = 0; p < nv; p++) y[i] += a[p] * x[p * n + i];
}

void kern_avx2_axpy_f16_rows(const float *a, int64_t lda, int64_t ny, const uint16_t *v,
                             int64_t ldv, int64_t nv, float *y, int64_t ldy, int64_t n) {
    if (n > ROWS_BUF) {
        for (int64_t p = 0; p < nv; p++)
            for (int64_t j = 0; j < ny; j++)
                kern_avx2_axpy_f16(a[j * lda + p], v + p * ldv, y + j * ldy, n);
        return;
    }
    float buf[ROWS_BUF];
    const int64_t per = ROWS_BUF / n;
    for (int64_t p0 = 0; p0 < nv; p0 += per) {
        const int64_t np = nv - p0 < per ? nv - p0 : per;
        for (int64_t p = 0; p < np; p++) f16_to_f32_row(v + (p0 + p) * ldv, buf + p * n, n);
        for (int64_t j = 0; j < ny; j++) axpy_rows_conv(a + j * lda + p0, buf, np, y + j * ldy, n);
    }
}

/* ---- weight rows to float (the BLAS path of prefill) ----
 * The same float operations as quant.c's scalar dequantizers, element by element (an int to
 * float conversion, then the multiplies and subtracts in the same order), so the same bits. */

/* y[0..32) = (float)q[k] * d for 32 int8 quants in a register */
static inline void store_q32(__m256i q, __m256 d, float *y) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
    _mm256_storeu_ps(
        y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
    _mm256_storeu_ps(
        y + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
}

/* y[0..32) = d * (float)q[k] - m for 32 unsigned quants (< 128) in a register */
static inline void store_u32_dm(__m256i q, __m256 d, __m256 m, float *y) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++)
        _mm256_storeu_ps(
            y + 8 * k,
            _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part[k]))), m));
}

bool kern_avx2_dequantize_row(uint32_t wtype, const uint8_t *x, float *y, int64_t n) {
    switch (wtype) {
    case QTYPE_Q8_0:
        for (int64_t i = 0; i < n / 32; i++, x += 34, y += 32)
            store_q32(load256(x + 2), _mm256_set1_ps(rd_f16(x)), y);
        return true;
    case QTYPE_Q5_0:
        for (int64_t i = 0; i < n / 32; i++, x += 22, y += 32) {
            const __m256i hi = _mm256_and_si256(bits32(x + 2), _mm256_set1_epi8(0x10));
            const __m256i q =
                _mm256_sub_epi8(_mm256_or_si256(nibbles32(x + 6), hi), _mm256_set1_epi8(16));
            store_q32(q, _mm256_set1_ps(rd_f16(x)), y);
        }
        return true;
    case QTYPE_Q4_K: {
        const __m256i m4 = _mm256_set1_epi8(0xf);
        for (int64_t i = 0; i < n / QK_K; i++, x += 144) {
            const float d = rd_f16(x), dmin = rd_f16(x + 2);
            uint8_t sm[16];
            _mm_storeu_si128((__m128i *)sm, k4_scales_mins(x + 4)); /* scales, then mins */
            const uint8_t *q = x + 16;
            for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
                const __m256i bits = load256(q);
                store_u32_dm(_mm256_and_si256(bits, m4), _mm256_set1_ps(d * (float)sm[j]),
                             _mm256_set1_ps(dmin * (float)sm[8 + j]), y);
                store_u32_dm(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                             _mm256_set1_ps(d * (float)sm[j + 1]),
                             _mm256_set1_ps(dmin * (float)sm[8 + j + 1]), y + 32);
            }
        }
        return true;
    }
    case QTYPE_Q6_K: {
        const __m256i m4 = _mm256_set1_epi8(0xf), m3 = _mm256_set1_epi8(3);
        for (int64_t i = 0; i < n / QK_K; i++, x += 210) {
            const uint8_t *ql = x, *qh = x + 128;
            const int8_t *sc = (const int8_t *)(x + 192);
            const float d = rd_f16(x + 208);
            for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
                const __m256i l0 = load256(ql), l1 = load256(ql + 32), h = load256(qh);
                /* elements 0..31, 32..63, 64..95, 96..127 of this half, as in dot_q6_k */
                const __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(l0, m4),
                                    _mm256_slli_epi16(_mm256_and_si256(h, m3), 4)),
                    _mm256_or_si256(
                        _mm256_and_si256(l1, m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4)),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4)),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4))};
                for (int k = 0; k < 4; k++) {
                    const __m256i qs = _mm256_sub_epi8(q[k], _mm256_set1_epi8(32));
                    /* 16 elements per scale: sc[2k] for the first 16, sc[2k+1] for the rest */
                    const __m128i lo = _mm256_castsi256_si128(qs),
                                  hi = _mm256_extracti128_si256(qs, 1);
                    const __m256 d0 = _mm256_set1_ps(d * (float)sc[2 * k]);
                    const __m256 d1 = _mm256_set1_ps(d * (float)sc[2 * k + 1]);
                    float *yk = y + 32 * k;
                    _mm256_storeu_ps(
                        yk, _mm256_mul_ps(d0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
                    _mm256_storeu_ps(yk + 8,
                                     _mm256_mul_ps(d0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                           _mm_srli_si128(lo, 8)))));
                    _mm256_storeu_ps(
                        yk + 16, _mm256_mul_ps(d1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
                    _mm256_storeu_ps(yk + 24,
                                     _mm256_mul_ps(d1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                           _mm_srli_si128(hi, 8)))));
                }
            }
        }
        return true;
    }
    default:
        return false;
    }
}
