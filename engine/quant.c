/* quant.c - ggml tensor types: the table of block layouts and the dequantizers.
 *
 * Block layouts follow ggml (ggml-common.h / ggml-quants.c). Each dequantizer turns
 * whole blocks into float32 exactly as ggml's reference code does, so the values match
 * gguf-py and llama.cpp bit for bit. */
#include "chatd/quant.h"

#include <stdio.h>
#include <string.h>

/* The reference computes d*q - m as a rounded product then a rounded difference; a fused
 * multiply-add would change the last bit. GCC in ISO C mode never contracts; clang does
 * within an expression unless told not to. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Every ggml type id, so refusal messages can name what a file holds. Sizes only for
 * the types chatd reads. */
static const qtype_traits qtype_table[QTYPE_MAX_ID] = {
    [QTYPE_F32] = {"F32", 1, 4, true},
    [QTYPE_F16] = {"F16", 1, 2, true},
    [QTYPE_Q4_0] = {"Q4_0", 32, 18, true},
    [QTYPE_Q4_1] = {"Q4_1", 32, 20, true},
    [4] = {"Q4_2", 0, 0, false},
    [5] = {"Q4_3", 0, 0, false},
    [QTYPE_Q5_0] = {"Q5_0", 32, 22, true},
    [QTYPE_Q5_1] = {"Q5_1", 32, 24, true},
    [QTYPE_Q8_0] = {"Q8_0", 32, 34, true},
    [QTYPE_Q8_1] = {"Q8_1", 0, 0, false},
    [QTYPE_Q2_K] = {"Q2_K", 256, 84, true},
    [QTYPE_Q3_K] = {"Q3_K", 256, 110, true},
    [QTYPE_Q4_K] = {"Q4_K", 256, 144, true},
    [QTYPE_Q5_K] = {"Q5_K", 256, 176, true},
    [QTYPE_Q6_K] = {"Q6_K", 256, 210, true},
    [QTYPE_Q8_K] = {"Q8_K", 0, 0, false},
    [16] = {"IQ2_XXS", 0, 0, false},
    [17] = {"IQ2_XS", 0, 0, false},
    [18] = {"IQ3_XXS", 0, 0, false},
    [19] = {"IQ1_S", 0, 0, false},
    [20] = {"IQ4_NL", 0, 0, false},
    [21] = {"IQ3_S", 0, 0, false},
    [22] = {"IQ2_S", 0, 0, false},
    [23] = {"IQ4_XS", 0, 0, false},
    [24] = {"I8", 0, 0, false},
    [25] = {"I16", 0, 0, false},
    [26] = {"I32", 0, 0, false},
    [27] = {"I64", 0, 0, false},
    [28] = {"F64", 0, 0, false},
    [29] = {"IQ1_M", 0, 0, false},
    [QTYPE_BF16] = {"BF16", 1, 2, true},
    [34] = {"TQ1_0", 0, 0, false},
    [35] = {"TQ2_0", 0, 0, false},
    [39] = {"MXFP4", 0, 0, false},
};

const qtype_traits *qtype_get(uint32_t type) {
    if (type >= QTYPE_MAX_ID || !qtype_table[type].name) return NULL;
    return &qtype_table[type];
}

const char *qtype_name(uint32_t type, char *buf, size_t bufsize) {
    const qtype_traits *t = qtype_get(type);
    if (t) return t->name;
    snprintf(buf, bufsize, "type#%u", type);
    return buf;
}

size_t qtype_row_bytes(uint32_t type, int64_t n) {
    const qtype_traits *t = qtype_get(type);
    if (!t || !t->supported || n < 0 || n % t->block_elems) return 0;
    return (size_t)(n / t->block_elems) * t->block_bytes;
}

/* ---- scalar conversions ---- */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in float */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_to_f32(sign | 0x7f800000u | (mant << 13)); /* inf, nan + payload */
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

float bf16_to_f32(uint16_t h) {
    return bits_to_f32((uint32_t)h << 16);
}

uint16_t f32_to_fp16(float f) {
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) /* nan: keep the top payload bits, force quiet so it stays a nan */
        return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                                 /* normal half */
        uint32_t h = (a - 0x38000000u) >> 13;               /* rebias 127 -> 15 */
        uint32_t rest = a & 0x1fff;
        /* a carry out of the mantissa correctly bumps the exponent */
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u) return sign; /* <= 2^-25: the tie at 2^-25 rounds to even zero */
    /* subnormal half: value = m * 2^-24 */
    uint32_t e = a >> 23;
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t h = mant >> shift;
    uint32_t rest = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1))) h++; /* 0x3ff+1 = smallest normal, as wanted */
    return (uint16_t)(sign | h);
}

uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* ---- little-endian field readers: blocks are packed at odd offsets, so bytes only ---- */

static inline uint16_t rd_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* int8 without relying on implementation-defined narrowing */
static inline int rd_i8(const uint8_t *p) {
    return (int)p[0] - ((p[0] & 0x80) ? 256 : 0);
}

static inline float rd_fp16(const uint8_t *p) {
    return fp16_to_f32(rd_u16(p));
}

/* ---- dequantizers, one per type; nb = number of blocks ---- */

static void dequant_f32(const uint8_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = bits_to_f32(rd_u32(x + 4 * i));
}

static void dequant_f16(const uint8_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = rd_fp16(x + 2 * i);
}

static void dequant_bf16(const uint8_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = bf16_to_f32(rd_u16(x + 2 * i));
}

/* Q8_0, 34 bytes / 32: d fp16 @0, qs[32] int8 @2. y = q*d */
static void dequant_q8_0(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 34, y += 32) {
        const float d = rd_fp16(x);
        for (int j = 0; j < 32; j++) y[j] = (float)rd_i8(x + 2 + j) * d;
    }
}

/* Q4_0, 18 bytes / 32: d fp16 @0, qs[16] @2. Low nibbles are elements 0..15, high 16..31;
 * y = (q-8)*d */
static void dequant_q4_0(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 18, y += 32) {
        const float d = rd_fp16(x);
        const uint8_t *qs = x + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((qs[j] & 0xf) - 8) * d;
            y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

/* Q4_1, 20 bytes / 32: d fp16 @0, m fp16 @2, qs[16] @4 (nibbles as Q4_0); y = q*d + m */
static void dequant_q4_1(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 20, y += 32) {
        const float d = rd_fp16(x);
        const float m = rd_fp16(x + 2);
        const uint8_t *qs = x + 4;
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(qs[j] & 0xf) * d + m;
            y[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

/* Q5_0, 22 bytes / 32: d fp16 @0, qh u32 @2 (bit j = 5th bit of element j), qs[16] @6;
 * y = (q-16)*d */
static void dequant_q5_0(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 22, y += 32) {
        const float d = rd_fp16(x);
        const uint32_t qh = rd_u32(x + 2);
        const uint8_t *qs = x + 6;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(((qs[j] & 0xf) | h0) - 16) * d;
            y[j + 16] = (float)(((qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

/* Q5_1, 24 bytes / 32: d fp16 @0, m fp16 @2, qh u32 @4, qs[16] @8; y = q*d + m */
static void dequant_q5_1(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 24, y += 32) {
        const float d = rd_fp16(x);
        const float m = rd_fp16(x + 2);
        const uint32_t qh = rd_u32(x + 4);
        const uint8_t *qs = x + 8;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)((qs[j] & 0xf) | h0) * d + m;
            y[j + 16] = (float)((qs[j] >> 4) | h1) * d + m;
        }
    }
}

/* Q2_K, 84 bytes / 256: scales[16] @0 (low nibble scale, high nibble min, one per 16
 * elements), qs[64] @16 (2-bit), d fp16 @80, dmin fp16 @82. Each 128-element half uses 32
 * qs bytes; bit pair 2k of byte l holds element 32k + l. y = (d*sc)*q - dmin*m */
static void dequant_q2_k(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 84) {
        const uint8_t *scales = x;
        const uint8_t *q = x + 16;
        const float d = rd_fp16(x + 80);
        const float dmin = rd_fp16(x + 82);
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) { /* two groups of 16: q[0..15], q[16..31] */
                    const uint8_t sc = scales[is++];
                    const float dl = d * (float)(sc & 0xf);
                    const float ml = dmin * (float)(sc >> 4);
                    const uint8_t *qq = q + 16 * k;
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((qq[l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* The 16 signed 6-bit scales of a Q3_K block: bytes 0..7 hold the low nibbles (scale j in
 * byte j%8, low nibble for j<8, high for j>=8); bytes 8..11 hold the top 2 bits (scale j
 * at bits 2*(j/4) of byte 8 + j%4). Stored with +32 bias. */
static void q3_k_scales(const uint8_t *s, int out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (lo | (hi << 4)) - 32;
    }
}

/* Q3_K, 110 bytes / 256: hmask[32] @0 (3rd bit; bit b of byte l is element 32b + l),
 * qs[64] @32 (low 2 bits, laid out as Q2_K), scales[12] @96 (see q3_k_scales), d fp16 @108.
 * q = low2 - (hbit ? 0 : 4); y = (d*sc)*q */
static void dequant_q3_k(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 110) {
        const uint8_t *hm = x;
        const uint8_t *q = x + 32;
        int sc[16];
        q3_k_scales(x + 96, sc);
        const float d = rd_fp16(x + 108);
        int is = 0;
        uint8_t m = 1;
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int k = 0; k < 2; k++) {
                    const float dl = d * (float)sc[is++];
                    const uint8_t *qq = q + 16 * k;
                    const uint8_t *hh = hm + 16 * k;
                    for (int l = 0; l < 16; l++) {
                        const int v = ((qq[l] >> shift) & 3) - ((hh[l] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

/* Scale and min j (0..7) of a Q4_K/Q5_K block from its 12 packed bytes: for j<4 the low 6
 * bits of bytes j and j+4; for j>=4 a nibble of byte j+4 plus the top 2 bits of bytes j-4
 * (scale) and j (min). */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K, 144 bytes / 256: d fp16 @0, dmin fp16 @2, scales[12] @4 (k4_scale_min), qs[128] @16.
 * Each 64 elements use 32 bytes: low nibbles first 32, high nibbles next 32.
 * y = (d*sc)*q - dmin*m */
static void dequant_q4_k(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 144) {
        const float d = rd_fp16(x);
        const float dmin = rd_fp16(x + 2);
        const uint8_t *scales = x + 4;
        const uint8_t *q = x + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            int sc, m;
            k4_scale_min(scales, j, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k4_scale_min(scales, j + 1, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xf) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

/* Q5_K, 176 bytes / 256: d fp16 @0, dmin fp16 @2, scales[12] @4, qh[32] @16 (5th bit; bit b
 * of byte l is element 32b + l), qs[128] @48 (as Q4_K). y = (d*sc)*q - dmin*m */
static void dequant_q5_k(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 176) {
        const float d = rd_fp16(x);
        const float dmin = rd_fp16(x + 2);
        const uint8_t *scales = x + 4;
        const uint8_t *qh = x + 16;
        const uint8_t *ql = x + 48;
        for (int j = 0; j < 8; j += 2, ql += 32) {
            int sc, m;
            k4_scale_min(scales, j, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k4_scale_min(scales, j + 1, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            const uint8_t u1 = (uint8_t)(1u << j), u2 = (uint8_t)(2u << j);
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((ql[l] & 0xf) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

/* Q6_K, 210 bytes / 256: ql[128] @0 (low 4 bits), qh[64] @128 (high 2 bits), scales[16] int8
 * @192 (one per 16 elements), d fp16 @208. Per 128 elements (64 ql, 32 qh bytes), byte l
 * gives elements l, l+32 (low nibbles of ql[l], ql[l+32]) and l+64, l+96 (high nibbles),
 * with qh[l] bit pairs 0,2,4,6 in that order. y = (d*sc)*(q-32) */
static void dequant_q6_k(const uint8_t *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 210) {
        const uint8_t *ql = x;
        const uint8_t *qh = x + 128;
        const uint8_t *sc = x + 192;
        const float d = rd_fp16(x + 208);
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)rd_i8(sc + is) * (float)q1;
                y[l + 32] = d * (float)rd_i8(sc + is + 2) * (float)q2;
                y[l + 64] = d * (float)rd_i8(sc + is + 4) * (float)q3;
                y[l + 96] = d * (float)rd_i8(sc + is + 6) * (float)q4;
            }
        }
    }
}

int dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const qtype_traits *t = qtype_get(type);
    if (!t || !t->supported || n < 0 || n % t->block_elems) return -1;
    const uint8_t *x = src;
    const int64_t nb = n / t->block_elems;
    switch (type) {
    case QTYPE_F32:
        dequant_f32(x, dst, n);
        return 0;
    case QTYPE_F16:
        dequant_f16(x, dst, n);
        return 0;
    case QTYPE_BF16:
        dequant_bf16(x, dst, n);
        return 0;
    case QTYPE_Q8_0:
        dequant_q8_0(x, dst, nb);
        return 0;
    case QTYPE_Q4_0:
        dequant_q4_0(x, dst, nb);
        return 0;
    case QTYPE_Q4_1:
        dequant_q4_1(x, dst, nb);
        return 0;
    case QTYPE_Q5_0:
        dequant_q5_0(x, dst, nb);
        return 0;
    case QTYPE_Q5_1:
        dequant_q5_1(x, dst, nb);
        return 0;
    case QTYPE_Q2_K:
        dequant_q2_k(x, dst, nb);
        return 0;
    case QTYPE_Q3_K:
        dequant_q3_k(x, dst, nb);
        return 0;
    case QTYPE_Q4_K:
        dequant_q4_k(x, dst, nb);
        return 0;
    case QTYPE_Q5_K:
        dequant_q5_k(x, dst, nb);
        return 0;
    case QTYPE_Q6_K:
        dequant_q6_k(x, dst, nb);
        return 0;
    default:
        return -1;
    }
}
