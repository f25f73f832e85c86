/* kernels.c - the matrix-vector kernels: level detection, dispatch, and the scalar level.
 *
 * The scalar level is ggml's reference: quantize_row_q8_{0,1,K}_ref for the activations and
 * the generic ggml_vec_dot_<type>_q8_<x> for the dot products, with the same integer sums and the
 * same float operations in the same order, so it reproduces a llama.cpp built without SIMD. The
 * SIMD levels live in kernels_avx2.c and kernels_avx512.c, compiled with their own -m flags and
 * only called when kern_detect() says the CPU has them. */
#include "chatd/kernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* ggml's reference code has no fused multiply-adds; clang would contract within an expression. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- level detection ---- */

#if defined(__x86_64__) || defined(__i386__)
/* XCR0: which register state the OS saves on a context switch. The intrinsic would need -mxsave,
 * and this file is plain x86-64. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

kern_level kern_detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return KERN_SCALAR;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
               f16c = c & (1u << 29);
    /* without OSXSAVE, xgetbv itself would fault */
    if (!osxsave || !avx || !fma || !f16c) return KERN_SCALAR;
    const uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return KERN_SCALAR; /* XMM and YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return KERN_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 5))) return KERN_SCALAR; /* AVX2 */
    const bool f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31),
               vnni = c & (1u << 11);
    /* opmask, upper halves of ZMM0-15 and ZMM16-31: all three or the OS does not do AVX-512 */
    if (f && dq && bw && vl && vnni && (xcr0 & 0xe0) == 0xe0) return KERN_AVX512;
    return KERN_AVX2;
#else
    return KERN_SCALAR;
#endif
}

kern_level kern_clamp(kern_level want) {
    const kern_level have = kern_detect();
    if ((unsigned)want > (unsigned)have) return have;
    return want;
}

const char *kern_level_name(kern_level l) {
    switch (l) {
    case KERN_SCALAR:
        return "scalar";
    case KERN_AVX2:
        return "avx2";
    case KERN_AVX512:
        return "avx512";
    }
    return "unknown";
}

int kern_level_parse(const char *s, kern_level *out) {
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    if (!s || !out) return -1;
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (kern_level)i;
            return 0;
        }
    }
    return -1;
}

/* ---- types and sizes ---- */

uint32_t kern_act_type(uint32_t wtype) {
    switch (wtype) {
    case QTYPE_Q4_0:
    case QTYPE_Q5_0:
    case QTYPE_Q8_0:
        return QTYPE_Q8_0;
    case QTYPE_Q4_1:
    case QTYPE_Q5_1:
        return QTYPE_Q8_1;
    case QTYPE_Q2_K:
    case QTYPE_Q3_K:
    case QTYPE_Q4_K:
    case QTYPE_Q5_K:
    case QTYPE_Q6_K:
        return QTYPE_Q8_K;
    case QTYPE_F16:
        return QTYPE_F16;
    case QTYPE_BF16:
        return QTYPE_BF16;
    case QTYPE_F32:
        return QTYPE_F32;
    default:
        return QTYPE_MAX_ID;
    }
}

/* Elements and bytes of one activation block. */
static bool act_block(uint32_t atype, int64_t *elems, int64_t *bytes) {
    switch (atype) {
    case QTYPE_Q8_0:
        *elems = 32, *bytes = KERN_Q8_0_BYTES;
        return true;
    case QTYPE_Q8_1:
        *elems = 32, *bytes = KERN_Q8_1_BYTES;
        return true;
    case QTYPE_Q8_K:
        *elems = QK_K, *bytes = KERN_Q8_K_BYTES;
        return true;
    case QTYPE_F16:
    case QTYPE_BF16:
        *elems = 1, *bytes = 2;
        return true;
    case QTYPE_F32:
        *elems = 1, *bytes = 4;
        return true;
    default:
        return false;
    }
}

bool kern_supported(uint32_t wtype, int64_t n) {
    int64_t elems = 1, bytes = 0;
    if (n < 0 || !act_block(kern_act_type(wtype), &elems, &bytes)) return false;
    /* every weight type has the block size of its activation type; checked anyway */
    const qtype_traits *t = qtype_get(wtype);
    return n % elems == 0 && t && n % t->block_elems == 0;
}

size_t kern_act_row_bytes(uint32_t wtype, int64_t n) {
    int64_t elems = 1, bytes = 0;
    if (!kern_supported(wtype, n) || !act_block(kern_act_type(wtype), &elems, &bytes)) return 0;
    return (size_t)(n / elems * bytes);
}

/* ---- byte access: blocks sit at odd offsets, so everything goes through bytes ---- */

static inline uint16_t rd_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline float rd_f16(const uint8_t *p) {
    return fp16_to_f32(rd_u16(p));
}

static inline float rd_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

static inline int rd_i16(const uint8_t *p) {
    int16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void wr_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* ---- reference activation quantizers ---- */

/* What x86 code compiled from ggml's `int8_t q = roundf(v)` stores: the value when it fits, 0 for
 * NaN and for what the 32-bit conversion cannot hold (only garbage input gets there). C leaves
 * that conversion undefined, so it is spelled out. */
static inline uint8_t to_i8_bits(float r) {
    if (!(r > -2147483648.0f && r < 2147483648.0f)) return 0;
    return (uint8_t)((uint32_t)(int32_t)r & 0xffu);
}

/* quantize_row_q8_0_ref / quantize_row_q8_1_ref: d = amax/127, q = roundf(x * (1/d)); Q8_1 also
 * stores s = fp16(d * sum(q)). */
static void quantize_q8_01_ref(const float *x, uint8_t *y, int64_t nb, bool q8_1) {
    const int bs = q8_1 ? KERN_Q8_1_BYTES : KERN_Q8_0_BYTES;
    for (int64_t i = 0; i < nb; i++, x += 32, y += bs) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(x[j]);
            amax = amax > a ? amax : a; /* ggml's MAX(), NaN behaviour included */
        }
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        wr_u16(y, f32_to_fp16(d));
        uint8_t *qs = y + (q8_1 ? 4 : 2);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            qs[j] = to_i8_bits(roundf(x[j] * id));
            sum += (int8_t)qs[j];
        }
        if (q8_1) wr_u16(y + 2, f32_to_fp16((float)sum * d));
    }
}

/* ggml's nearest_int: round half to even through the float adder; the same bits for any input,
 * which the SIMD copy relies on. */
static inline int nearest_int(float v) {
    const float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* quantize_row_q8_K_ref: the element of largest magnitude (the first of equals) maps to -127, so
 * the scale d = 1/iscale keeps its sign; bsums are sums of 16 quants. An all-zero block is all
 * zeros (ggml leaves its bsums unwritten; zero is what any dot product makes of them). */
static void quantize_q8_k_ref(const float *x, uint8_t *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K, y += KERN_Q8_K_BYTES) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(y, 0, KERN_Q8_K_BYTES);
            continue;
        }
        const float iscale = -127.0f / max;
        uint8_t *qs = y + 4;
        for (int j = 0; j < QK_K; j++) {
            const int v = nearest_int(iscale * x[j]);
            qs[j] = (uint8_t)((v < 127 ? v : 127) & 0xff);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += (int8_t)qs[16 * j + k];
            const int16_t s16 = (int16_t)sum; /* |sum| <= 16*128 */
            memcpy(y + 260 + 2 * j, &s16, sizeof s16);
        }
        const float d = 1 / iscale;
        memcpy(y, &d, sizeof d);
    }
}

static void quantize_scalar(uint32_t atype, const float *x, uint8_t *dst, int64_t n) {
    switch (atype) {
    case QTYPE_Q8_0:
        quantize_q8_01_ref(x, dst, n / 32, false);
        break;
    case QTYPE_Q8_1:
        quantize_q8_01_ref(x, dst, n / 32, true);
        break;
    case QTYPE_Q8_K:
        quantize_q8_k_ref(x, dst, n / QK_K);
        break;
    case QTYPE_F16:
        for (int64_t i = 0; i < n; i++) wr_u16(dst + 2 * i, f32_to_fp16(x[i]));
        break;
    case QTYPE_BF16:
        for (int64_t i = 0; i < n; i++) wr_u16(dst + 2 * i, f32_to_bf16(x[i]));
        break;
    case QTYPE_F32:
        memcpy(dst, x, (size_t)n * sizeof(float));
        break;
    default:
        break;
    }
}

void kern_quantize_act(kern_level l, uint32_t wtype, const float *x, void *dst, int64_t n) {
    if (!kern_supported(wtype, n) || n == 0) return;
    if ((l == KERN_AVX2 || l == KERN_AVX512) && kern_avx2_quantize(wtype, x, dst, n)) return;
    quantize_scalar(kern_act_type(wtype), x, dst, n);
}

void kern_dequantize_act(uint32_t wtype, const void *src, float *y, int64_t n) {
    if (!kern_supported(wtype, n)) {
        if (n > 0) memset(y, 0, (size_t)n * sizeof(float));
        return;
    }
    const uint8_t *p = src;
    switch (kern_act_type(wtype)) {
    case QTYPE_Q8_0:
    case QTYPE_Q8_1: {
        const int bs = kern_act_type(wtype) == QTYPE_Q8_1 ? KERN_Q8_1_BYTES : KERN_Q8_0_BYTES;
        for (int64_t i = 0; i < n / 32; i++, p += bs, y += 32) {
            const float d = rd_f16(p);
            const int8_t *qs = (const int8_t *)(p + bs - 32);
            for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
        }
        break;
    }
    case QTYPE_Q8_K:
        for (int64_t i = 0; i < n / QK_K; i++, p += KERN_Q8_K_BYTES, y += QK_K) {
            const float d = rd_f32(p);
            const int8_t *qs = (const int8_t *)(p + 4);
            for (int j = 0; j < QK_K; j++) y[j] = (float)qs[j] * d;
        }
        break;
    default: /* F16, BF16, F32: the row is a tensor row of that type */
        dequantize_row(kern_act_type(wtype), src, y, n);
        break;
    }
}

/* ---- scalar dot products: ggml's generic code, one weight row against one activation row ----
 * Weight block layouts are in quant.c; int8 activation quants are read through int8_t pointers
 * (a character type, so any byte buffer may be read that way). */

/* Q4_0 x Q8_0: sum_i (q-8)*a, scaled by dx then dy as ggml writes it. */
static float dot_q4_0(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 18, a += KERN_Q8_0_BYTES) {
        const uint8_t *qs = w + 2;
        const int8_t *q8 = (const int8_t *)(a + 2);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 16; j++) {
            s0 += ((qs[j] & 0xf) - 8) * q8[j];
            s1 += ((qs[j] >> 4) - 8) * q8[j + 16];
        }
        sumf += (float)(s0 + s1) * rd_f16(w) * rd_f16(a);
    }
    return sumf;
}

/* Q4_1 x Q8_1: the min m meets the activation block sum s. */
static float dot_q4_1(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 20, a += KERN_Q8_1_BYTES) {
        const uint8_t *qs = w + 4;
        const int8_t *q8 = (const int8_t *)(a + 4);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 16; j++) {
            s0 += (qs[j] & 0xf) * q8[j];
            s1 += (qs[j] >> 4) * q8[j + 16];
        }
        sumf += (rd_f16(w) * rd_f16(a)) * (float)(s0 + s1) + rd_f16(w + 2) * rd_f16(a + 2);
    }
    return sumf;
}

static inline uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Q5_0 x Q8_0 */
static float dot_q5_0(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 22, a += KERN_Q8_0_BYTES) {
        const uint32_t qh = rd_u32(w + 2);
        const uint8_t *qs = w + 6;
        const int8_t *q8 = (const int8_t *)(a + 2);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            s0 += (((qs[j] & 0xf) | h0) - 16) * q8[j];
            s1 += (((qs[j] >> 4) | h1) - 16) * q8[j + 16];
        }
        sumf += (rd_f16(w) * rd_f16(a)) * (float)(s0 + s1);
    }
    return sumf;
}

/* Q5_1 x Q8_1 */
static float dot_q5_1(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 24, a += KERN_Q8_1_BYTES) {
        const uint32_t qh = rd_u32(w + 4);
        const uint8_t *qs = w + 8;
        const int8_t *q8 = (const int8_t *)(a + 4);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            s0 += ((qs[j] & 0xf) | h0) * q8[j];
            s1 += ((qs[j] >> 4) | h1) * q8[j + 16];
        }
        sumf += (rd_f16(w) * rd_f16(a)) * (float)(s0 + s1) + rd_f16(w + 2) * rd_f16(a + 2);
    }
    return sumf;
}

/* Q8_0 x Q8_0 */
static float dot_q8_0(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sumf = 0;
    for (int64_t i = 0; i < n / 32; i++, w += 34, a += KERN_Q8_0_BYTES) {
        const int8_t *qw = (const int8_t *)(w + 2), *q8 = (const int8_t *)(a + 2);
        int s = 0;
        for (int j = 0; j < 32; j++) s += qw[j] * q8[j];
        sumf += (float)s * (rd_f16(w) * rd_f16(a));
    }
    return sumf;
}

/* Q8_K block fields */
static inline float q8k_d(const uint8_t *a) {
    return rd_f32(a);
}
static inline const int8_t *q8k_qs(const uint8_t *a) {
    return (const int8_t *)(a + 4);
}
static inline int q8k_bsum(const uint8_t *a, int j) {
    return rd_i16(a + 260 + 2 * j);
}

/* Q2_K x Q8_K: 16 scales and mins of 4 bits; the mins meet the activation bsums. */
static float dot_q2_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; i++, w += 84, a += KERN_Q8_K_BYTES) {
        const uint8_t *sc = w, *q2 = w + 16;
        const int8_t *q8 = q8k_qs(a);
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += q8k_bsum(a, j) * (sc[j] >> 4);
        const float dall = q8k_d(a) * rd_f16(w + 80);
        const float dmin = q8k_d(a) * rd_f16(w + 82);
        int isum = 0, is = 0;
        for (int half = 0; half < 2; half++, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
                for (int g = 0; g < 2; g++) { /* two groups of 16, each with its own scale */
                    int isuml = 0;
                    for (int l = 16 * g; l < 16 * g + 16; l++)
                        isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += (sc[is++] & 0xf) * isuml;
                }
            }
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* The 16 signed scales of a Q3_K block (see quant.c). */
static void q3_k_scales(const uint8_t *s, int out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (lo | (hi << 4)) - 32;
    }
}

/* ggml's generic K-quant dots keep 8 int32 lanes per block (lane = element index mod 8), scale
 * each by d into 8 float sums, and add those 8 at the very end; this reproduces that order. */
static void lanes_to_sums(const int32_t lanes[8], float d, float sums[8]) {
    for (int l = 0; l < 8; l++) sums[l] += d * (float)lanes[l];
}

/* Q3_K x Q8_K */
static float dot_q3_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sums[8] = {0};
    for (int64_t i = 0; i < n / QK_K; i++, w += 110, a += KERN_Q8_K_BYTES) {
        const uint8_t *hm = w, *q3 = w + 32;
        const int8_t *q8 = q8k_qs(a);
        int sc[16];
        q3_k_scales(w + 96, sc);
        int8_t v[QK_K];
        int e = 0;
        uint8_t m = 1;
        for (int half = 0; half < 2; half++, q3 += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int l = 0; l < 32; l++)
                    v[e++] = (int8_t)(((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            }
        }
        int32_t lanes[8] = {0};
        for (e = 0; e < QK_K; e++) lanes[e & 7] += sc[e >> 4] * (q8[e] * v[e]);
        lanes_to_sums(lanes, rd_f16(w + 108) * q8k_d(a), sums);
    }
    float sumf = 0;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* Scale and min j of a Q4_K/Q5_K block (see quant.c). */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K (qh == NULL) and Q5_K x Q8_K: 8 sub-blocks of 32 with 6-bit scales and mins. */
static float dot_q45_k(const uint8_t *w, const uint8_t *a, int64_t n, bool five) {
    float sums[8] = {0};
    float sumf = 0;
    const int bs = five ? 176 : 144;
    for (int64_t i = 0; i < n / QK_K; i++, w += bs, a += KERN_Q8_K_BYTES) {
        const uint8_t *qh = w + 16, *q4 = w + (five ? 48 : 16);
        const int8_t *q8 = q8k_qs(a);
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) k4_scale_min(w + 4, j, &sc[j], &mn[j]);
        int8_t v[QK_K];
        for (int j = 0; j < 4; j++, q4 += 32) {
            for (int l = 0; l < 32; l++) {
                int lo = q4[l] & 0xf, hi = q4[l] >> 4;
                if (five) {
                    lo += (qh[l] >> (2 * j)) & 1 ? 16 : 0;
                    hi += (qh[l] >> (2 * j + 1)) & 1 ? 16 : 0;
                }
                v[64 * j + l] = (int8_t)lo;
                v[64 * j + 32 + l] = (int8_t)hi;
            }
        }
        int summ = 0;
        for (int j = 0; j < 16; j++) summ += q8k_bsum(a, j) * mn[j / 2];
        int32_t lanes[8] = {0};
        for (int e = 0; e < QK_K; e++) lanes[e & 7] += sc[e >> 5] * (q8[e] * v[e]);
        lanes_to_sums(lanes, rd_f16(w) * q8k_d(a), sums);
        sumf -= rd_f16(w + 2) * q8k_d(a) * (float)summ;
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

static float dot_q4_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    return dot_q45_k(w, a, n, false);
}

static float dot_q5_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    return dot_q45_k(w, a, n, true);
}

/* Q6_K x Q8_K: 16 int8 scales, quants 6-bit minus 32. */
static float dot_q6_k(const uint8_t *w, const uint8_t *a, int64_t n) {
    float sums[8] = {0};
    for (int64_t i = 0; i < n / QK_K; i++, w += 210, a += KERN_Q8_K_BYTES) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192), *q8 = q8k_qs(a);
        int8_t v[QK_K];
        for (int half = 0; half < 2; half++, ql += 64, qh += 32) {
            int8_t *o = v + 128 * half;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)(((ql[l] & 0xf) | ((qh[l] & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int32_t lanes[8] = {0};
        for (int e = 0; e < QK_K; e++) lanes[e & 7] += sc[e >> 4] * (q8[e] * v[e]);
        lanes_to_sums(lanes, rd_f16(w + 208) * q8k_d(a), sums);
    }
    float sumf = 0;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    return sumf;
}

/* Float rows: ggml's scalar vec_dot sums float products in double. */
static float dot_f32_row(const uint8_t *w, const uint8_t *a, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(rd_f32(w + 4 * i) * rd_f32(a + 4 * i));
    return (float)sum;
}

static float dot_f16_row(const uint8_t *w, const uint8_t *a, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(rd_f16(w + 2 * i) * rd_f16(a + 2 * i));
    return (float)sum;
}

static float dot_bf16_row(const uint8_t *w, const uint8_t *a, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(bf16_to_f32(rd_u16(w + 2 * i)) * bf16_to_f32(rd_u16(a + 2 * i)));
    return (float)sum;
}

typedef float (*dot_fn)(const uint8_t *w, const uint8_t *a, int64_t n);

static dot_fn scalar_dot(uint32_t wtype) {
    switch (wtype) {
    case QTYPE_Q4_0:
        return dot_q4_0;
    case QTYPE_Q4_1:
        return dot_q4_1;
    case QTYPE_Q5_0:
        return dot_q5_0;
    case QTYPE_Q5_1:
        return dot_q5_1;
    case QTYPE_Q8_0:
        return dot_q8_0;
    case QTYPE_Q2_K:
        return dot_q2_k;
    case QTYPE_Q3_K:
        return dot_q3_k;
    case QTYPE_Q4_K:
        return dot_q4_k;
    case QTYPE_Q5_K:
        return dot_q5_k;
    case QTYPE_Q6_K:
        return dot_q6_k;
    case QTYPE_F32:
        return dot_f32_row;
    case QTYPE_F16:
        return dot_f16_row;
    case QTYPE_BF16:
        return dot_bf16_row;
    default:
        return NULL;
    }
}

/* ---- dispatch ---- */

void kern_matmul(kern_level l, uint32_t wtype, const void *w, int64_t nrows, const void *act,
                 int64_t nact, int64_t n, float *y, int64_t ldy) {
    if (nrows <= 0 || nact <= 0) return;
    if (!kern_supported(wtype, n)) {
        for (int64_t t = 0; t < nact; t++) memset(y + t * ldy, 0, (size_t)nrows * sizeof(float));
        return;
    }
    const size_t wrb = qtype_row_bytes(wtype, n), arb = kern_act_row_bytes(wtype, n);
    if (l == KERN_AVX512 && kern_avx512_rows(wtype, w, wrb, nrows, act, arb, nact, n, y, ldy))
        return;
    if ((l == KERN_AVX2 || l == KERN_AVX512) &&
        kern_avx2_rows(wtype, w, wrb, nrows, act, arb, nact, n, y, ldy))
        return;
    const dot_fn dot = scalar_dot(wtype);
    const uint8_t *wr = w;
    for (int64_t r = 0; r < nrows; r++, wr += wrb) {
        const uint8_t *ar = act;
        for (int64_t t = 0; t < nact; t++, ar += arb) y[t * ldy + r] = dot(wr, ar, n);
    }
}

void kern_matvec(kern_level l, uint32_t wtype, const void *w, int64_t nrows, const void *act,
                 int64_t n, float *y) {
    kern_matmul(l, wtype, w, nrows, act, 1, n, y, nrows);
}

float kern_dot_f32(kern_level l, const float *a, const float *b, int64_t n) {
    if (l == KERN_AVX512) return kern_avx512_dot_f32(a, b, n);
    if (l == KERN_AVX2) return kern_avx2_dot_f32(a, b, n);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(a[i] * b[i]);
    return (float)sum;
}

void kern_axpy_f32(kern_level l, float a, const float *x, float *y, int64_t n) {
    if (l == KERN_AVX512) {
        kern_avx512_axpy_f32(a, x, y, n);
    } else if (l == KERN_AVX2) {
        kern_avx2_axpy_f32(a, x, y, n);
    } else {
        for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
    }
}

float kern_dot_f32_f16(kern_level l, const float *a, const uint16_t *b, int64_t n) {
    if (l == KERN_AVX512) return kern_avx512_dot_f32_f16(a, b, n);
    if (l == KERN_AVX2) return kern_avx2_dot_f32_f16(a, b, n);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(a[i] * fp16_to_f32(b[i]));
    return (float)sum;
}

void kern_axpy_f16(kern_level l, float a, const uint16_t *x, float *y, int64_t n) {
    if (l == KERN_AVX512) {
        kern_avx512_axpy_f16(a, x, y, n);
    } else if (l == KERN_AVX2) {
        kern_avx2_axpy_f16(a, x, y, n);
    } else {
        for (int64_t i = 0; i < n; i++) y[i] += a * fp16_to_f32(x[i]);
    }
}

/* The AVX2 level converts each cache row once for all heads; the others (AVX-512 included, whose
 * single-row helpers sum in another order) run their single-row helper for every pair. */
void kern_dot_f32_f16_rows(kern_level l, const float *q, int64_t ldq, int64_t nq, const uint16_t *k,
                           int64_t ldk, int64_t nk, int64_t n, float *s, int64_t lds) {
    if (l == KERN_AVX2) {
        kern_avx2_dot_f32_f16_rows(q, ldq, nq, k, ldk, nk, n, s, lds);
        return;
    }
    for (int64_t j = 0; j < nq; j++)
        for (int64_t p = 0; p < nk; p++)
            s[j * lds + p] = kern_dot_f32_f16(l, q + j * ldq, k + p * ldk, n);
}

void kern_axpy_f16_rows(kern_level l, const float *a, int64_t lda, int64_t ny, const uint16_t *v,
                        int64_t ldv, int64_t nv, float *y, int64_t ldy, int64_t n) {
    if (l == KERN_AVX2) {
        kern_avx2_axpy_f16_rows(a, lda, ny, v, ldv, nv, y, ldy, n);
        return;
    }
    for (int64_t p = 0; p < nv; p++)
        for (int64_t j = 0; j < ny; j++)
            kern_axpy_f16(l, a[j * lda + p], v + p * ldv, y + j * ldy, n);
}

int kern_dequantize_row(kern_level l, uint32_t wtype, const void *src, float *dst, int64_t n) {
    if ((l == KERN_AVX2 || l == KERN_AVX512) && kern_supported(wtype, n) &&
        kern_avx2_dequantize_row(wtype, src, dst, n))
        return 0;
    return dequantize_row(wtype, src, dst, n);
}
