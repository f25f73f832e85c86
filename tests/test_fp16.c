/* test_fp16.c - half and bfloat16 conversions: exhaustive round trips, round-to-nearest-even
 * against an independent nearest-value search, ties, subnormals, inf/nan; and the refusals
 * of dequantize_row. Needs no shared material. */
#include "testutil.h"

#include "chatd/quant.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static bool half_is_nan(uint16_t h) {
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

static bool bf16_is_nan(uint16_t h) {
    return (h & 0x7f80) == 0x7f80 && (h & 0x7f);
}

/* Magnitude of a non-negative half computed from the definition, with the inf pattern
 * standing for 2^16 (where rounding to nearest puts the overflow threshold). */
static double half_mag(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) return ldexp(m, -24);
    return ldexp(1024 + m, e - 25);
}

/* The same for bfloat16, with inf standing for 2^128. */
static double bf16_mag(uint16_t h) {
    int e = (h >> 7) & 0xff, m = h & 0x7f;
    if (e == 0) return ldexp(m, -133);
    return ldexp(128 + m, e - 134);
}

/* Reference rounding of a finite float: the largest pattern not above |f| by binary search,
 * then the nearer of it and the next one, ties to the even pattern. */
static uint16_t ref_round(float f, double (*mag)(uint16_t), uint16_t inf) {
    double a = fabs((double)f);
    uint16_t sign = (bits(f) >> 31) ? 0x8000 : 0;
    uint32_t lo = 0, hi = inf; /* invariant: mag(lo) <= a, answer in [lo, hi] */
    if (a >= mag(inf)) return (uint16_t)(sign | inf);
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (mag((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    double dl = a - mag((uint16_t)lo), dh = mag((uint16_t)hi) - a;
    uint32_t r = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
    return (uint16_t)(sign | r);
}

static void check_half_exhaustive(void) {
    tu_case("fp16: all 65536 halves decode and round-trip");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_f32((uint16_t)h);
        uint16_t back = f32_to_fp16(f);
        bool ok;
        if (half_is_nan((uint16_t)h)) {
            ok = isnan(f) && half_is_nan(back) && (back & 0x8000) == (h & 0x8000);
        } else {
            double want = (h & 0x7fff) == 0x7c00 ? INFINITY : half_mag(h & 0x7fff);
            if (h & 0x8000) want = -want;
            ok = (double)f == want && !signbit(f) == !(h & 0x8000) && back == h;
        }
        if (!ok && ++bad <= 5)
            TU_CHECK(false, "half 0x%04x -> %a -> 0x%04x", (unsigned)h, (double)f, back);
    }
    TU_CHECK(bad == 0, "%d halves failed", bad);
}

static void check_bf16_exhaustive(void) {
    tu_case("bf16: all 65536 patterns decode and round-trip");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf16_to_f32((uint16_t)h);
        if (bits(f) != h << 16) bad++;
        uint16_t back = f32_to_bf16(f);
        if (bf16_is_nan((uint16_t)h)) {
            if (!bf16_is_nan(back) || (back & 0x8000) != (h & 0x8000)) bad++;
        } else if (back != h) {
            bad++;
        }
    }
    TU_CHECK(bad == 0, "%d bf16 patterns failed", bad);
}

/* Every float near each rounding boundary (the midpoint between two neighbouring results,
 * +-3 float ulps), plus a stride through all float patterns. */
static void check_rounding(const char *what, uint16_t (*conv)(float), double (*mag)(uint16_t),
                           uint16_t inf, uint32_t n_finite) {
    tu_case("%s: round to nearest even against a reference search", what);
    long bad = 0, n = 0;
    for (uint32_t h = 0; h < n_finite; h++) {
        double mid = (mag((uint16_t)h) + mag((uint16_t)(h + 1))) / 2;
        float fm = (float)mid; /* exact: midpoints of these formats fit in a float */
        if ((double)fm != mid) continue;
        for (int s = 0; s < 2; s++) {
            for (int d = -3; d <= 3; d++) {
                uint32_t b = bits(fm) + (uint32_t)d;
                float f = from_bits(b | (s ? 0x80000000u : 0));
                if (isnan(f) || isinf(f)) continue;
                uint16_t got = conv(f), want = ref_round(f, mag, inf);
                n++;
                if (got != want && ++bad <= 5)
                    TU_CHECK(false, "%s(%a) = 0x%04x, want 0x%04x", what, (double)f, got, want);
            }
        }
    }
    for (uint64_t b = 0; b < 0x100000000ull; b += 4099) {
        float f = from_bits((uint32_t)b);
        if (isnan(f)) continue;
        uint16_t got = conv(f), want = isinf(f) ? (uint16_t)(((uint32_t)b >> 16 & 0x8000) | inf)
                                                : ref_round(f, mag, inf);
        n++;
        if (got != want && ++bad <= 5)
            TU_CHECK(false, "%s(%a) = 0x%04x, want 0x%04x", what, (double)f, got, want);
    }
    TU_CHECK(bad == 0, "%ld of %ld conversions rounded wrongly", bad, n);
}

static void check_half_cases(void) {
    tu_case("fp16: ties, overflow, subnormals, nan");
    struct {
        float f;
        uint16_t h;
    } cases[] = {
        {1.0f, 0x3c00},
        {1.0f + 0x1p-11f, 0x3c00},            /* tie -> even (down) */
        {1.0f + 0x1p-11f + 0x1p-23f, 0x3c01}, /* just above the tie */
        {1.0f + 3 * 0x1p-11f, 0x3c02},        /* tie -> even (up) */
        {-1.0f - 3 * 0x1p-11f, 0xbc02},       /* same, negative */
        {65504.0f, 0x7bff},                   /* largest half */
        {65519.996f, 0x7bff},                 /* below the overflow tie */
        {65520.0f, 0x7c00},                   /* the tie rounds to even = inf */
        {-1e10f, 0xfc00},                     /* overflow keeps the sign */
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {0x1p-24f, 0x0001},                /* smallest subnormal */
        {0x1p-25f, 0x0000},                /* tie with zero -> even = 0 */
        {0x1.000002p-25f, 0x0001},         /* just above that tie */
        {-0x1p-26f, 0x8000},               /* underflow keeps the sign */
        {3 * 0x1p-25f, 0x0002},            /* tie between 1 and 2 -> 2 */
        {5 * 0x1p-25f, 0x0002},            /* tie between 2 and 3 -> 2 */
        {0x1p-14f, 0x0400},                /* smallest normal */
        {0x1p-14f - 0x1p-25f, 0x0400},     /* tie between 0x3ff and 0x400 -> 0x400 */
        {0x1p-14f - 3 * 0x1p-25f, 0x03fe}, /* tie between 0x3fe and 0x3ff -> 0x3fe */
        {0x1.ff8p-15f, 0x03ff},            /* largest subnormal 1023 * 2^-24 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = f32_to_fp16(cases[i].f);
        TU_CHECK(got == cases[i].h, "f32_to_fp16(%a) = 0x%04x, want 0x%04x", (double)cases[i].f,
                 got, cases[i].h);
    }
    TU_CHECK(fp16_to_f32(0x0001) == 0x1p-24f, "0x0001 is 2^-24");
    TU_CHECK(fp16_to_f32(0x03ff) == 0x1.ff8p-15f, "0x03ff is 1023 * 2^-24");
    TU_CHECK(fp16_to_f32(0x7bff) == 65504.0f, "0x7bff is 65504");
    TU_CHECK(isinf(fp16_to_f32(0xfc00)) && fp16_to_f32(0xfc00) < 0, "0xfc00 is -inf");
    TU_CHECK(isnan(fp16_to_f32(0x7e00)) && isnan(fp16_to_f32(0x7c01)), "nan patterns");
    TU_CHECK(half_is_nan(f32_to_fp16(NAN)), "nan stays nan");
    /* a float nan whose payload lives only in the low bits must not become inf */
    TU_CHECK(half_is_nan(f32_to_fp16(from_bits(0x7f800001u))), "low-payload nan stays nan");
    TU_CHECK(f32_to_fp16(from_bits(0xffc00000u)) & 0x8000, "nan keeps its sign");
}

static void check_bf16_cases(void) {
    tu_case("bf16: ties, overflow, nan");
    struct {
        uint32_t f;
        uint16_t h;
    } cases[] = {
        {0x3f808000u, 0x3f80}, /* tie -> even (down) */
        {0x3f818000u, 0x3f82}, /* tie -> even (up) */
        {0x3f808001u, 0x3f81}, /* above the tie */
        {0x7f7f7fffu, 0x7f7f}, /* below the overflow tie */
        {0x7f7f8000u, 0x7f80}, /* the overflow tie rounds to inf */
        {0xff7fffffu, 0xff80}, /* -FLT_MAX rounds to -inf */
        {0x00008000u, 0x0000}, /* subnormal tie -> even zero */
        {0x00018000u, 0x0002}, /* subnormal tie -> even (up) */
        {0x80000000u, 0x8000}, /* -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = f32_to_bf16(from_bits(cases[i].f));
        TU_CHECK(got == cases[i].h, "f32_to_bf16(0x%08x) = 0x%04x, want 0x%04x",
                 (unsigned)cases[i].f, got, cases[i].h);
    }
    TU_CHECK(bf16_is_nan(f32_to_bf16(from_bits(0x7f800001u))), "low-payload nan stays nan");
    TU_CHECK(bf16_is_nan(f32_to_bf16(from_bits(0x7fffffffu))), "all-ones nan does not wrap");
    TU_CHECK(f32_to_bf16(from_bits(0xffc00000u)) == 0xffc0, "negative quiet nan kept");
}

static void check_dequantize_refusals(void) {
    tu_case("dequantize_row: refusals");
    uint8_t src[256] = {0};
    float dst[64];
    TU_CHECK(dequantize_row(QTYPE_Q4_0, src, dst, 31) == -1, "Q4_0 with 31 elements");
    TU_CHECK(dequantize_row(QTYPE_Q4_K, src, dst, 32) == -1, "Q4_K with 32 elements");
    TU_CHECK(dequantize_row(QTYPE_Q4_0, src, dst, -32) == -1, "negative n");
    TU_CHECK(dequantize_row(QTYPE_Q8_1, src, dst, 32) == -1, "unsupported Q8_1");
    TU_CHECK(dequantize_row(4, src, dst, 32) == -1, "removed Q4_2");
    TU_CHECK(dequantize_row(999, src, dst, 32) == -1, "unknown id");
    TU_CHECK(dequantize_row(QTYPE_Q4_0, src, dst, 0) == 0, "empty row");
    TU_CHECK(dequantize_row(QTYPE_F16, src, dst, 3) == 0, "F16 of 3");
}

int main(void) {
    check_half_exhaustive();
    check_bf16_exhaustive();
    check_half_cases();
    check_bf16_cases();
    check_rounding("f32_to_fp16", f32_to_fp16, half_mag, 0x7c00, 0x7c00);
    check_rounding("f32_to_bf16", f32_to_bf16, bf16_mag, 0x7f80, 0x7f80);
    check_dequantize_refusals();
    return tu_finish();
}
