/* kernels_avx512.c - the AVX-512 level of the matrix-vector kernels (compiled with
 * -mavx512f/bw/vl/vnni/dq; kernels.c calls it only when kern_detect() reports AVX-512 with
 * VNNI and the OS saving ZMM state).
 *
 * Only the types that carry most of the work have 512-bit kernels: Q8_0 and Q4_0 (two 32-quant
 * blocks per register, VNNI _mm512_dpbusd_epi32 on |x| and sign-moved y), Q4_K and Q6_K
 * (64 quants per register, maddubs into 16-bit pair sums, then VNNI _mm512_dpwssd_epi32 with the
 * sub-block scales), F32 rows and the float helpers. The integer sums are the ones the other levels
 * form; only the float accumulation order differs. Every other type returns false and runs at the
 * AVX2 level, which every AVX-512 CPU has. Tails use masks instead of scalar loops. */
#include "chatd/kernels.h"

#include <immintrin.h>
#include <string.h>

static inline float rd_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
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

static inline __m512i load512(const void *p) {
    return _mm512_loadu_si512(p);
}

/* lo in bytes 0..31, hi in 32..63 */
static inline __m512i join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* lo in bytes 0..31, zeros above (a lone last block) */
static inline __m512i zext256(__m256i lo) {
    return _mm512_inserti64x4(_mm512_setzero_si512(), lo, 0);
}

/* 16 lanes of sum x*y over 4 bytes: x any int8, y never -128 (activation quants). dpbusd wants
 * unsigned x signed, so |x| meets y with x's sign. */
static inline __m512i dot_i8x4(__m512i x, __m512i y) {
    const __mmask64 neg = _mm512_movepi8_mask(x);
    const __m512i sy = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(x), sy);
}

/* block scales: lanes 0..7 get a, lanes 8..15 get b */
static inline __m512 two_scales(float a, float b) {
    return _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(a), _mm512_set1_ps(b));
}

/* Q8_0 x Q8_0, two blocks per step. */
static inline float dot_q8_0(const uint8_t *w, const uint8_t *a, int64_t n) {
    const int64_t nb = n / 32;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, w += 68, a += 2 * KERN_Q8_0_BYTES) {
        const __m512i x = join256(load256(w + 2), load256(w + 36));
        const __m512i y = join256(load256(a + 2), load256(a + 36));
        const __m512 d = two_scales(rd_f16(w) * rd_f16(a), rd_f16(w + 34) * rd_f16(a + 34));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(dot_i8x4(x, y)), acc);
    }
    if (i < nb) {
        const __m512i s = dot_i8x4(zext256(load256(w + 2)), zext256(load256(a + 2)));
        const __m512 d = _mm512_maskz_mov_ps(0x00ff, _mm512_set1_ps(rd_f16(w) * rd_f16(a)));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* Q4_0 x Q8_0, two blocks per step: 16 bytes of nibbles per block become its 32 quants. */
static inline float dot_q4_0(const uint8_t *w, const uint8_t *a, int64_t n) {
    const int64_t nb = n / 32;
    const __m512i m4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2, w += 36, a += 2 * KERN_Q8_0_BYTES) {
        const __m256i ab =
            _mm256_inserti128_si256(_mm256_castsi128_si256(load128(w + 2)), load128(w + 20), 1);
        /* 128-bit lanes [a, b, a>>4, b>>4] reordered to [a, a>>4, b, b>>4], as the quants lie */
        __m512i x = join256(ab, _mm256_srli_epi16(ab, 4));
        x = _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(3, 1, 2, 0));
        x = _mm512_sub_epi8(_mm512_and_si512(x, m4), eight);
        const __m512i y = join256(load256(a + 2), load256(a + 36));
        const __m512 d = two_scales(rd_f16(w) * rd_f16(a), rd_f16(w + 18) * rd_f16(a + 34));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(dot_i8x4(x, y)), acc);
    }
    if (i < nb) {
        const __m128i q = load128(w + 2);
        const __m256i t =
            _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
        const __m512i x = _mm512_sub_epi8(_mm512_and_si512(zext256(t), m4), eight);
        /* the zero upper half became -8s; the zero activations there cancel them */
        const __m512i s = dot_i8x4(x, zext256(load256(a + 2)));
        const __m512 d = _mm512_maskz_mov_ps(0x00ff, _mm512_set1_ps(rd_f16(w) * rd_f16(a)));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* int16 lanes 0..15 = a, 16..31 = b: the scales of two 32-quant sub-blocks */
static inline __m512i two_scales16(int a, int b) {
    return join256(_mm256_set1_epi16((short)a), _mm256_set1_epi16((short)b));
}

/* Scale and min j of a Q4_K block (see quant.c). */
static inline void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static inline int rd_i16(const uint8_t *p) {
    int16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Q4_K x Q8_K: 64 quants per register (32 bytes of nibbles: low nibbles are sub-block 2j, high
 * ones 2j+1); the mins meet the activation bsums in integers. */
static inline float dot_q4_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m512 acc = _mm512_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / QK_K; i++, w += 144, a += KERN_Q8_K_BYTES) {
        const float dy = rd_f32(a);
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) k4_scale_min(w + 4, j, &sc[j], &mn[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++)
            summ += mn[j] * (rd_i16(a + 260 + 4 * j) + rd_i16(a + 262 + 4 * j));
        const uint8_t *q4 = w + 16, *q8 = a + 4;
        __m512i sumi = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            const __m256i bits = load256(q4);
            const __m512i x = join256(_mm256_and_si256(bits, m4),
                                      _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4));
            const __m512i p = _mm512_maddubs_epi16(x, load512(q8));
            sumi = _mm512_dpwssd_epi32(sumi, p, two_scales16(sc[2 * j], sc[2 * j + 1]));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(dy * rd_f16(w)), _mm512_cvtepi32_ps(sumi), acc);
        summs += dy * rd_f16(w + 2) * (float)summ;
    }
    return _mm512_reduce_add_ps(acc) - summs;
}

/* int16 scale index of each of the 32 pair sums of 64 Q6_K quants: 4 scales of 16 quants. */
static const int16_t q6k_scale_idx[4][32] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
     2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5,
     6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8,  8,  8,  8,  8,  8,  8,  8,  9,  9,  9,  9,  9,  9,  9,  9,
     10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13,
     14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

/* Q6_K x Q8_K: quants stay 0..63 for maddubs; the -32 comes off at the end as 32 * the scaled
 * activation bsums (one bsum per 16 quants, exactly the Q6_K scale groups). */
static inline float dot_q6_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
    __m512i idx[4];
    for (int k = 0; k < 4; k++) idx[k] = load512(q6k_scale_idx[k]);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, w += 210, a += KERN_Q8_K_BYTES) {
        const uint8_t *ql = w, *qh = w + 128, *q8 = a + 4;
        const __m256i sc16 = _mm256_cvtepi8_epi16(load128(w + 192));
        const __m512i scales = zext256(sc16);
        /* sum over the 16 groups of scale * bsum, in 8 int32 lanes */
        const __m256i corr = _mm256_madd_epi16(sc16, load256(a + 260));
        __m512i sumi = _mm512_setzero_si512();
        for (int j = 0; j < 2; j++, ql += 64, qh += 32, q8 += 128) {
            const __m512i l = load512(ql);
            const __m256i h32 = load256(qh);
            /* per byte, bits 0-1 are the top bits of quants l (lanes 0..31) and l+32 (32..63),
             * bits 4-5 those of quants l+64 and l+96 */
            const __m512i h = join256(h32, _mm256_srli_epi16(h32, 2));
            const __m512i lo = _mm512_or_si512(_mm512_and_si512(l, m4),
                                               _mm512_slli_epi16(_mm512_and_si512(h, m3), 4));
            const __m512i hi = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 4), m3), 4));
            const __m512i s0 = _mm512_permutexvar_epi16(idx[2 * j], scales);
            const __m512i s1 = _mm512_permutexvar_epi16(idx[2 * j + 1], scales);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(lo, load512(q8)), s0);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(hi, load512(q8 + 64)), s1);
        }
        sumi = _mm512_sub_epi32(sumi, zext256(_mm256_slli_epi32(corr, 5)));
        const float d = rd_f32(a) * rd_f16(w + 208);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* lanes below n - i (at most 16) */
static inline __mmask16 tail16(int64_t left) {
    return (__mmask16)((1u << left) - 1u);
}

/* Four accumulators of 16, then one, then a masked tail. Byte pointers: rows need not be
 * float-aligned. */
static inline float dot_f32_impl(const void *xp, const void *yp, int64_t n) {
    const float *x = xp, *y = yp;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(),
           s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static inline float dot_f32_row(const uint8_t *w, const uint8_t *a, int64_t n) {
    return dot_f32_impl(w, a, n);
}

/* rows x activations, as in kernels_avx2.c */
#define ROWS(name, dot)                                                                            \
    static void name(const uint8_t *w, size_t wrb, int64_t nrows, const uint8_t *act, size_t arb,  \
                     int64_t nact, int64_t n, float *y, int64_t ldy) {                             \
        for (int64_t r = 0; r < nrows; r++, w += wrb) {                                            \
            const uint8_t *ar = act;                                                               \
            for (int64_t t = 0; t < nact; t++, ar += arb) y[t * ldy + r] = dot(w, ar, n);          \
        }                                                                                          \
    }

ROWS(rows_q8_0, dot_q8_0)
ROWS(rows_q4_0, dot_q4_0)
ROWS(rows_q4_k, dot_q4_k)
ROWS(rows_q6_k, dot_q6_k)
ROWS(rows_f32, dot_f32_row)

bool kern_avx512_rows(uint32_t wtype, const void *w, size_t wrb, int64_t nrows, const void *act,
                      size_t arb, int64_t nact, int64_t n, float *y, int64_t ldy) {
    void (*rows)(const uint8_t *, size_t, int64_t, const uint8_t *, size_t, int64_t, int64_t,
                 float *, int64_t);
    switch (wtype) {
    case QTYPE_Q8_0:
        rows = rows_q8_0;
        break;
    case QTYPE_Q4_0:
        rows = rows_q4_0;
        break;
    case QTYPE_Q4_K:
        rows = rows_q4_k;
        break;
    case QTYPE_Q6_K:
        rows = rows_q6_k;
        break;
    case QTYPE_F32:
        rows = rows_f32;
        break;
    default:
        return false;
    }
    rows(w, wrb, nrows, act, arb, nact, n, y, ldy);
    return true;
}

/* ---- float helpers for attention ---- */

float kern_avx512_dot_f32(const float *a, const float *b, int64_t n) {
    return dot_f32_impl(a, b, n);
}

void kern_avx512_axpy_f32(float a, const float *x, float *y, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i,
                         _mm512_fmadd_ps(_mm512_loadu_ps(x + i), va, _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 r =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), va, _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* 16 fp16 values, or the first `m` of them */
static inline __m512 load_f16x16(const uint16_t *p) {
    return _mm512_cvtph_ps(load256(p));
}

static inline __m512 load_f16x16_mask(const uint16_t *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

float kern_avx512_dot_f32_f16(const float *a, const uint16_t *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_f16x16(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load_f16x16(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_f16x16(b + i), s0);
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), load_f16x16_mask(b + i, m), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

void kern_avx512_axpy_f16(float a, const uint16_t *x, float *y, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(load_f16x16(x + i), va, _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 m = tail16(n - i);
        const __m512 r =
            _mm512_fmadd_ps(load_f16x16_mask(x + i, m), va, _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}
