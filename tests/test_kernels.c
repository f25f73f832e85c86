/* test_kernels.c - the matrix-vector kernels (engine/kernels*.c) against plain references.
 *
 * For every weight type and every level this CPU has:
 *  1. activation conversion: the scalar level is bit for bit ggml's reference quantizer (written
 *     out again here); the SIMD levels are bit for bit ggml's x86 quantizer for Q8_0/Q8_1 (127/amax
 *     and round half to even, also written out here; it differs from the reference by one in a
 *     few quants) and the scalar bits for every other activation type;
 *  2. dot products against a float64 sum over dequantize_row(weights) * kern_dequantize_act(act),
 *     within 1e-5 of the sum of |terms|, on random weights (random quant bytes, sane fp16
 *     scales) and activations with zeros, large, tiny and outlier values;
 *  3. kern_matmul gives, bit for bit, kern_matvec of each activation row (and that, each row
 *     computed alone), and writes nothing else;
 *  4. the float helpers against plain loops, at lengths that leave every kind of tail, and their
 *     several-row forms against the single-row ones, bit for bit;
 *  5. kern_dequantize_row against quant.c's dequantize_row, bit for bit;
 * and, when the generated test models are there, the same dot check on real rows of each type. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/gguf.h"
#include "chatd/kernels.h"

/* ---- random numbers (splitmix64: reproducible everywhere) ---- */

static uint64_t rng_state = 0x5eed5eed12345678ull;

static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float frand(float lo, float hi) {
    return lo + (hi - lo) * (float)((rnd() >> 40) * 0x1p-24);
}

/* ---- levels ---- */

static int n_levels; /* levels at or below kern_detect() */

static const uint32_t wtypes[] = {QTYPE_F32,  QTYPE_F16,  QTYPE_BF16, QTYPE_Q4_0, QTYPE_Q4_1,
                                  QTYPE_Q5_0, QTYPE_Q5_1, QTYPE_Q8_0, QTYPE_Q2_K, QTYPE_Q3_K,
                                  QTYPE_Q4_K, QTYPE_Q5_K, QTYPE_Q6_K};
#define N_WTYPES (sizeof wtypes / sizeof wtypes[0])

static const char *tname(uint32_t t) {
    static char buf[32];
    return qtype_name(t, buf, sizeof buf);
}

static const char *aname(uint32_t wtype) {
    static char buf[32];
    return qtype_name(kern_act_type(wtype), buf, sizeof buf);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void wr16(uint8_t *p, uint16_t v) {
    memcpy(p, &v, 2);
}

static uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* ---- weights ---- */

/* Offsets of the fp16 fields of one weight block: the scale d, then the min (m / dmin), or -1. */
static void fp16_fields(uint32_t t, int *d, int *m) {
    *m = -1;
    switch (t) {
    case QTYPE_Q4_1:
    case QTYPE_Q5_1:
    case QTYPE_Q4_K:
    case QTYPE_Q5_K:
        *d = 0, *m = 2;
        break;
    case QTYPE_Q2_K:
        *d = 80, *m = 82;
        break;
    case QTYPE_Q3_K:
        *d = 108;
        break;
    case QTYPE_Q6_K:
        *d = 208;
        break;
    default:
        *d = 0;
        break;
    }
}

/* nrows rows of n elements: random quant bytes with sane fp16 scales, or random floats. */
static uint8_t *make_weights(uint32_t t, int64_t nrows, int64_t n, size_t *nbytes) {
    const size_t rb = qtype_row_bytes(t, n), total = rb * (size_t)nrows;
    uint8_t *w = xmalloc(total + 1) + 1; /* odd address: the kernels must not assume alignment */
    if (t == QTYPE_F32) {
        for (size_t i = 0; i < total / 4; i++) {
            const float f = frand(-1, 1);
            memcpy(w + 4 * i, &f, 4);
        }
    } else if (t == QTYPE_F16 || t == QTYPE_BF16) {
        for (size_t i = 0; i < total / 2; i++) {
            const float f = frand(-2, 2);
            wr16(w + 2 * i, t == QTYPE_F16 ? f32_to_fp16(f) : f32_to_bf16(f));
        }
    } else {
        for (size_t i = 0; i < total; i++) w[i] = (uint8_t)rnd();
        const qtype_traits *tr = qtype_get(t);
        int d, m;
        fp16_fields(t, &d, &m);
        for (size_t b = 0; b < total / tr->block_bytes; b++) {
            uint8_t *blk = w + b * tr->block_bytes;
            const float sign = (m < 0 && (rnd() & 1)) ? -1.0f : 1.0f; /* d > 0 where mins exist */
            wr16(blk + d, f32_to_fp16(sign * frand(0.001f, 0.1f)));
            if (m >= 0) {
                const bool kq = t != QTYPE_Q4_1 && t != QTYPE_Q5_1;
                wr16(blk + m, f32_to_fp16(kq ? frand(0.001f, 0.1f) : frand(-0.1f, 0.1f)));
            }
        }
    }
    *nbytes = total;
    return w;
}

static void free_weights(uint8_t *w) {
    free(w - 1);
}

/* ---- activations ---- */

enum {
    ACT_RANDOM,
    ACT_ZEROS,
    ACT_LARGE,
    ACT_TINY,
    ACT_OUTLIER,
    ACT_MIXED,
    ACT_TIES,
    ACT_ALLZERO,
    ACT_N
};
static const char *act_names[ACT_N] = {"random",  "zeros", "large", "tiny",
                                       "outlier", "mixed", "ties",  "allzero"};

/* small_sums: for Q8_1 activations, whose block sum s = d*sum(q) is stored as fp16 and so (in
 * ggml too) overflows once a block sums past 65504: large values stay below that. */
static void make_act(int kind, float *x, int64_t n, bool small_sums) {
    const float big = small_sums ? 1500.0f : 3e4f, ebig = small_sums ? 7.0f : 10.0f;
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case ACT_RANDOM:
            x[i] = frand(-1, 1);
            break;
        case ACT_ZEROS: /* the first 32 all zero, then a quarter of the rest */
            x[i] = (i < 32 || (rnd() & 3) == 0) ? 0.0f : frand(-1, 1);
            break;
        case ACT_LARGE: /* still finite in fp16 */
            x[i] = frand(-big, big);
            break;
        case ACT_TINY:
            x[i] = frand(-1e-5f, 1e-5f);
            break;
        case ACT_OUTLIER: /* one huge value among small ones in every 32 */
            x[i] = (i % 32 == 7) ? 1e4f : frand(-0.01f, 0.01f);
            break;
        case ACT_MIXED: /* magnitudes from e^-10 to e^10 */
            x[i] = ((rnd() & 1) ? 1.0f : -1.0f) * expf(frand(-10, ebig));
            break;
        case ACT_TIES: /* amax 127 makes the scale 1, so k + 0.5 is a rounding tie */
            x[i] = (i % 32 == 0) ? 127.0f : (float)((int)(rnd() % 200) - 100) + 0.5f;
            break;
        default:
            x[i] = 0.0f;
            break;
        }
    }
}

/* ---- reference activation quantizers, written out from ggml independently of the engine ---- */

/* quantize_row_q8_{0,1}_ref (x86 == false) or ggml's x86 quantize_row_q8_{0,1} (x86 == true). */
static void emu_q8_01(const float *x, uint8_t *y, int64_t n, bool q8_1, bool x86) {
    const int bs = q8_1 ? KERN_Q8_1_BYTES : KERN_Q8_0_BYTES, off = q8_1 ? 4 : 2;
    for (int64_t b = 0; b < n / 32; b++, x += 32, y += bs) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = x86 ? (amax != 0 ? 127.0f / amax : 0) : (d != 0 ? 1.0f / d : 0);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            const float v = x[j] * id;
            long q = x86 ? lrintf(v) : lroundf(v);
            q = q < -128 ? -128 : q > 127 ? 127 : q;
            const int8_t q8 = (int8_t)q;
            memcpy(y + off + j, &q8, 1);
            sum += q8;
        }
        wr16(y, f32_to_fp16(d));
        if (q8_1) wr16(y + 2, f32_to_fp16((float)sum * d));
    }
}

/* quantize_row_q8_K_ref */
static void emu_q8_k(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256, y += KERN_Q8_K_BYTES) {
        float max = 0, amax = 0;
        for (int j = 0; j < 256; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        memset(y, 0, KERN_Q8_K_BYTES);
        if (amax == 0) continue;
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            const float v = iscale * x[j];
            /* nearest_int: half to even; the NaNs that get here (no payload) come out as 0 */
            long q = isnan(v) ? 0 : lrintf(v);
            const int8_t q8 = (int8_t)(q > 127 ? 127 : q);
            memcpy(y + 4 + j, &q8, 1);
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += (int8_t)y[4 + 16 * g + j];
            const int16_t s = (int16_t)sum;
            memcpy(y + 260 + 2 * g, &s, 2);
        }
        const float d = 1 / iscale;
        memcpy(y, &d, 4);
    }
}

/* What each level must produce for this activation type. */
static void expected_act(kern_level l, uint32_t wtype, const float *x, uint8_t *y, int64_t n) {
    const uint32_t at = kern_act_type(wtype);
    if (at == QTYPE_Q8_0 || at == QTYPE_Q8_1) {
        emu_q8_01(x, y, n, at == QTYPE_Q8_1, l != KERN_SCALAR);
    } else if (at == QTYPE_Q8_K) {
        emu_q8_k(x, y, n);
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (at == QTYPE_F16) wr16(y + 2 * i, f32_to_fp16(x[i]));
            if (at == QTYPE_BF16) wr16(y + 2 * i, f32_to_bf16(x[i]));
            if (at == QTYPE_F32) memcpy(y + 4 * i, &x[i], 4);
        }
    }
}

/* Quants of the two Q8_0/Q8_1 quantizers differ by at most one; d (and so s) never. */
static void check_ref_vs_x86(uint32_t wtype, const uint8_t *ref, const uint8_t *x86, int64_t n,
                             int *ndiff) {
    const bool q81 = kern_act_type(wtype) == QTYPE_Q8_1;
    const int bs = q81 ? KERN_Q8_1_BYTES : KERN_Q8_0_BYTES, off = q81 ? 4 : 2;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *r = ref + b * bs, *s = x86 + b * bs;
        TU_CHECK(rd16(r) == rd16(s), "block %lld: d %04x vs %04x", (long long)b, rd16(r), rd16(s));
        for (int j = 0; j < 32; j++) {
            const int a = (int8_t)r[off + j], c = (int8_t)s[off + j];
            if (a != c) (*ndiff)++;
            TU_CHECK(abs(a - c) <= 1, "block %lld quant %d: %d vs %d", (long long)b, j, a, c);
        }
    }
}

static void test_quantize(uint32_t wtype, kern_level l) {
    tu_case("quantize %s (%s) %s", aname(wtype), tname(wtype), kern_level_name(l));
    const bool ftype = wtype == QTYPE_F32 || wtype == QTYPE_F16 || wtype == QTYPE_BF16;
    const int64_t ns[] = {ftype ? 1003 : 512, ftype ? 7 : 256, 4864};
    int ndiff = 0;
    int64_t nq = 0;
    for (size_t k = 0; k < 3; k++) {
        const int64_t n = ns[k];
        if (!kern_supported(wtype, n)) continue;
        const size_t ab = kern_act_row_bytes(wtype, n);
        float *x = xmalloc((size_t)n * sizeof *x);
        uint8_t *got = xmalloc(ab), *want = xmalloc(ab), *ref = xmalloc(ab);
        for (int kind = 0; kind < ACT_N; kind++) {
            make_act(kind, x, n, kern_act_type(wtype) == QTYPE_Q8_1);
            memset(got, 0xa5, ab);
            kern_quantize_act(l, wtype, x, got, n);
            expected_act(l, wtype, x, want, n);
            size_t bad = 0;
            while (bad < ab && got[bad] == want[bad]) bad++;
            TU_CHECK(bad == ab, "n=%lld %s: byte %zu of %zu is %02x, want %02x", (long long)n,
                     act_names[kind], bad, ab, bad < ab ? got[bad] : 0, bad < ab ? want[bad] : 0);
            const uint32_t at = kern_act_type(wtype);
            if (l != KERN_SCALAR && (at == QTYPE_Q8_0 || at == QTYPE_Q8_1)) {
                expected_act(KERN_SCALAR, wtype, x, ref, n);
                check_ref_vs_x86(wtype, ref, got, n, &ndiff);
                nq += n;
            }
        }
        free(x), free(got), free(want), free(ref);
    }
    if (nq)
        printf("  %s %s: %d of %lld quants differ by one from the reference quantizer\n",
               aname(wtype), kern_level_name(l), ndiff, (long long)nq);
}

/* inf, NaN, -0 and subnormals: every level must agree where the types are the same bits
 * everywhere, and nothing may crash for the others. */
static void test_quantize_special(uint32_t wtype, kern_level l) {
    tu_case("quantize specials %s %s", aname(wtype), kern_level_name(l));
    const int64_t n = 512;
    float x[512];
    const float specials[] = {INFINITY, -INFINITY, NAN,      -NAN,    -0.0f,   1e-40f,
                              -1e-45f,  65520.0f,  65504.0f, 5.9e-8f, 2.9e-8f, 3e38f};
    for (int64_t i = 0; i < n; i++) x[i] = (i % 5 == 0) ? specials[(i / 5) % 12] : frand(-1, 1);
    const size_t ab = kern_act_row_bytes(wtype, n);
    uint8_t *got = xmalloc(ab), *want = xmalloc(ab);
    kern_quantize_act(l, wtype, x, got, n);
    const uint32_t at = kern_act_type(wtype);
    if (at != QTYPE_Q8_0 && at != QTYPE_Q8_1) {
        kern_quantize_act(KERN_SCALAR, wtype, x, want, n);
        TU_CHECK(memcmp(got, want, ab) == 0, "%s differs from the scalar level", aname(wtype));
        if (at == QTYPE_Q8_K) {
            emu_q8_k(x, want, n);
            TU_CHECK(memcmp(got, want, ab) == 0, "Q8_K differs from the reference");
        }
    }
    free(got), free(want);
}

/* ---- dot products ---- */

/* float64 reference of weight row . activation row, and the sum of |terms|. For Q4_1/Q5_1 the
 * kernels (as ggml) meet the min m with the activation's stored block sum s (fp16-rounded), so
 * the reference takes the min part from s too: rows are dequantized with m = 0, plus m*s. */
static void reference_dot(uint32_t wtype, const uint8_t *w, const uint8_t *act, int64_t n,
                          double *sum, double *abssum) {
    float *wf = xmalloc((size_t)n * sizeof *wf), *af = xmalloc((size_t)n * sizeof *af);
    const size_t rb = qtype_row_bytes(wtype, n);
    const bool q81 = kern_act_type(wtype) == QTYPE_Q8_1;
    uint8_t *wc = NULL;
    if (q81) {
        wc = xmalloc(rb);
        memcpy(wc, w, rb);
        const size_t bb = qtype_get(wtype)->block_bytes;
        for (size_t b = 0; b < rb / bb; b++) wr16(wc + b * bb + 2, 0);
    }
    dequantize_row(wtype, q81 ? wc : w, wf, n);
    kern_dequantize_act(wtype, act, af, n);
    double s = 0, as = 0;
    for (int64_t i = 0; i < n; i++) {
        const double t = (double)wf[i] * (double)af[i];
        s += t;
        as += fabs(t);
    }
    if (q81) {
        const size_t bb = qtype_get(wtype)->block_bytes;
        for (int64_t b = 0; b < n / 32; b++) {
            const double t = (double)fp16_to_f32(rd16(w + b * bb + 2)) *
                             (double)fp16_to_f32(rd16(act + b * KERN_Q8_1_BYTES + 2));
            s += t;
            as += fabs(t);
        }
        free(wc);
    }
    free(wf), free(af);
    *sum = s;
    *abssum = as;
}

static void check_dot(const char *what, uint32_t wtype, kern_level l, const uint8_t *w,
                      int64_t nrows, const float *x, int64_t n) {
    const size_t ab = kern_act_row_bytes(wtype, n), rb = qtype_row_bytes(wtype, n);
    uint8_t *act = xmalloc(ab + 1) + 1; /* odd address */
    float *y = xmalloc((size_t)nrows * sizeof *y);
    kern_quantize_act(l, wtype, x, act, n);
    kern_matvec(l, wtype, w, nrows, act, n, y);
    for (int64_t r = 0; r < nrows; r++) {
        double ref, abs_terms;
        reference_dot(wtype, w + r * rb, act, n, &ref, &abs_terms);
        const double err = fabs((double)y[r] - ref);
        TU_CHECK(isfinite(y[r]) && err <= 1e-5 * abs_terms,
                 "%s n=%lld row %lld: got %.9g, want %.9g (err %.3g, sum|terms| %.3g)", what,
                 (long long)n, (long long)r, y[r], ref, err, abs_terms);
    }
    free(act - 1), free(y);
}

static void test_dot(uint32_t wtype, kern_level l) {
    tu_case("dot %s x %s %s", tname(wtype), aname(wtype), kern_level_name(l));
    const uint32_t be = qtype_get(wtype)->block_elems;
    const int64_t fns[] = {1, 7, 31, 32, 33, 100, 257, 896};
    const int64_t qns[] = {32, 64, 96, 160, 896};
    const int64_t kns[] = {256, 512, 768, 4864};
    const int64_t *ns = be == 1 ? fns : be == 32 ? qns : kns;
    const size_t nn = be == 1 ? 8 : be == 32 ? 5 : 4;
    for (size_t k = 0; k < nn; k++) {
        const int64_t n = ns[k], nrows = 5; /* a group of 4 rows and a lone one */
        size_t wb;
        uint8_t *w = make_weights(wtype, nrows, n, &wb);
        float *x = xmalloc((size_t)n * sizeof *x);
        for (int kind = 0; kind < ACT_N; kind++) {
            make_act(kind, x, n, kern_act_type(wtype) == QTYPE_Q8_1);
            check_dot(act_names[kind], wtype, l, w, nrows, x, n);
        }
        free(x);
        free_weights(w);
    }
}

/* kern_matmul == kern_matvec of each activation row, bit for bit; the gaps of ldy untouched.
 * Row counts around the AVX2 tile of 4 weight rows, nact 1..9 around its activation tiles. */
static void test_matmul(uint32_t wtype, kern_level l) {
    tu_case("matmul %s %s", tname(wtype), kern_level_name(l));
    const qtype_traits *tr = qtype_get(wtype);
    const int64_t n = tr->block_elems == 1 ? 77 : tr->block_elems == 32 ? 128 : 512;
    static const int64_t row_counts[] = {1, 3, 4, 5, 9};
    for (size_t rc = 0; rc < sizeof row_counts / sizeof row_counts[0]; rc++) {
        const int64_t nrows = row_counts[rc], ldy = nrows + 3;
        size_t wb;
        uint8_t *w = make_weights(wtype, nrows, n, &wb);
        for (int64_t nact = 1; nact <= 9; nact++) {
            const size_t ab = kern_act_row_bytes(wtype, n);
            uint8_t *act = xmalloc(ab * (size_t)nact);
            float *x = xmalloc((size_t)n * sizeof *x);
            for (int64_t t = 0; t < nact; t++) {
                make_act((int)((t + nrows) % ACT_N), x, n, kern_act_type(wtype) == QTYPE_Q8_1);
                kern_quantize_act(l, wtype, x, act + t * ab, n);
            }
            float *y = xmalloc((size_t)(ldy * nact) * sizeof *y), yv[9];
            for (int64_t i = 0; i < ldy * nact; i++) y[i] = -12345.0f;
            kern_matmul(l, wtype, w, nrows, act, nact, n, y, ldy);
            for (int64_t t = 0; t < nact; t++) {
                kern_matvec(l, wtype, w, nrows, act + t * ab, n, yv);
                for (int64_t r = 0; r < ldy; r++) {
                    const float got = y[t * ldy + r];
                    float one = 0;
                    if (r < nrows) {
                        /* a row computed alone: rows computed side by side must not change a
                         * bit */
                        kern_matvec(l, wtype, w + r * qtype_row_bytes(wtype, n), 1, act + t * ab, n,
                                    &one);
                        TU_CHECK(memcmp(&one, &yv[r], 4) == 0,
                                 "rows=%lld nact=%lld act %lld row %lld alone: %.9g vs %.9g",
                                 (long long)nrows, (long long)nact, (long long)t, (long long)r, one,
                                 yv[r]);
                    }
                    if (r < nrows)
                        TU_CHECK(memcmp(&got, &yv[r], 4) == 0,
                                 "rows=%lld nact=%lld act %lld row %lld: %.9g vs %.9g",
                                 (long long)nrows, (long long)nact, (long long)t, (long long)r, got,
                                 yv[r]);
                    else
                        TU_CHECK(got == -12345.0f,
                                 "rows=%lld nact=%lld: wrote y[%lld] outside the rows",
                                 (long long)nrows, (long long)nact, (long long)(t * ldy + r));
                }
            }
            free(act), free(x), free(y);
        }
        free_weights(w);
    }
}

/* ---- float helpers ---- */

static const int64_t helper_ns[] = {0,  1,  2,  3,  7,  8,  9,  15,  16,
                                    17, 31, 32, 33, 63, 64, 65, 100, 1000};
#define N_HELPER_NS (sizeof helper_ns / sizeof helper_ns[0])

static void test_helpers(kern_level l) {
    const int64_t nmax = 1000, pad = 16;
    float *a = xmalloc((size_t)(nmax + pad) * sizeof *a),
          *b = xmalloc((size_t)(nmax + pad) * sizeof *b);
    float *y = xmalloc((size_t)(nmax + pad) * sizeof *y),
          *y0 = xmalloc((size_t)(nmax + pad) * sizeof *y0);
    uint16_t *h = xmalloc((size_t)(nmax + pad) * sizeof *h);
    for (int64_t i = 0; i < nmax + pad; i++) {
        a[i] = frand(-2, 2);
        b[i] = frand(-2, 2);
        y0[i] = frand(-2, 2);
        h[i] = f32_to_fp16(frand(-2, 2));
    }
    const float alpha = 0.7311f;

    tu_case("dot_f32 %s", kern_level_name(l));
    for (size_t k = 0; k < N_HELPER_NS; k++) {
        const int64_t n = helper_ns[k];
        double ref = 0, as = 0;
        for (int64_t i = 0; i < n; i++) ref += (double)a[i] * b[i], as += fabs((double)a[i] * b[i]);
        const float got = kern_dot_f32(l, a, b, n);
        TU_CHECK(fabs(got - ref) <= 1e-6 * as, "n=%lld: %.9g vs %.9g", (long long)n, got, ref);
    }

    tu_case("dot_f32_f16 %s", kern_level_name(l));
    for (size_t k = 0; k < N_HELPER_NS; k++) {
        const int64_t n = helper_ns[k];
        double ref = 0, as = 0;
        for (int64_t i = 0; i < n; i++) {
            const double t = (double)a[i] * fp16_to_f32(h[i]);
            ref += t, as += fabs(t);
        }
        const float got = kern_dot_f32_f16(l, a, h, n);
        TU_CHECK(fabs(got - ref) <= 1e-6 * as, "n=%lld: %.9g vs %.9g", (long long)n, got, ref);
    }

    for (int f16 = 0; f16 < 2; f16++) {
        tu_case("%s %s", f16 ? "axpy_f16" : "axpy_f32", kern_level_name(l));
        for (size_t k = 0; k < N_HELPER_NS; k++) {
            const int64_t n = helper_ns[k];
            memcpy(y, y0, (size_t)(nmax + pad) * sizeof *y);
            if (f16)
                kern_axpy_f16(l, alpha, h, y, n);
            else
                kern_axpy_f32(l, alpha, b, y, n);
            for (int64_t i = 0; i < n + pad; i++) {
                const double xi = f16 ? fp16_to_f32(h[i]) : b[i];
                const double ref = i < n ? y0[i] + (double)alpha * xi : y0[i];
                const double tol = i < n ? 1e-6 * (fabs(y0[i]) + fabs(alpha * xi)) : 0;
                TU_CHECK(fabs(y[i] - ref) <= tol, "n=%lld y[%lld]: %.9g vs %.9g", (long long)n,
                         (long long)i, y[i], ref);
            }
        }
    }
    free(a), free(b), free(y), free(y0), free(h);
}

/* The attention helpers over several cache rows and heads are the single-row helpers called in
 * turn, bit for bit: at lengths that leave every kind of tail, with row strides longer than the
 * rows, and more rows than one pass of the AVX2 buffer holds. */
static void test_attention_rows(kern_level l) {
    static const int64_t ns[] = {1, 7, 8, 31, 32, 33, 64, 100, 128, 300, 5000};
    static const int64_t nks[] = {1, 5, 16, 70};
    const int64_t nq = 7, pad = 3, nkmax = 70, nmax = 5000;
    float *q = xmalloc((size_t)(nq * nmax) * sizeof *q);
    uint16_t *kv = xmalloc((size_t)(nkmax * (nmax + pad)) * sizeof *kv);
    float *a = xmalloc((size_t)(nq * nkmax) * sizeof *a);
    float *s0 = xmalloc((size_t)(nq * nkmax) * sizeof *s0),
          *s1 = xmalloc((size_t)(nq * nkmax) * sizeof *s1);
    float *y0 = xmalloc((size_t)(nq * nmax) * sizeof *y0),
          *y1 = xmalloc((size_t)(nq * nmax) * sizeof *y1);
    for (int64_t i = 0; i < nq * nmax; i++) q[i] = frand(-2, 2);
    for (int64_t i = 0; i < nkmax * (nmax + pad); i++) kv[i] = f32_to_fp16(frand(-2, 2));
    for (int64_t i = 0; i < nq * nkmax; i++) a[i] = frand(0, 1);
    tu_case("attention rows %s", kern_level_name(l));
    for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
        for (size_t ik = 0; ik < sizeof nks / sizeof nks[0]; ik++) {
            const int64_t n = ns[in], nk = nks[ik], ld = n + pad;
            for (int64_t j = 0; j < nq; j++)
                for (int64_t p = 0; p < nk; p++)
                    s0[j * nk + p] = kern_dot_f32_f16(l, q + j * n, kv + p * ld, n);
            kern_dot_f32_f16_rows(l, q, n, nq, kv, ld, nk, n, s1, nk);
            TU_CHECK(memcmp(s0, s1, (size_t)(nq * nk) * sizeof *s0) == 0,
                     "dot rows n=%lld nk=%lld: not the single-row bits", (long long)n,
                     (long long)nk);
            for (int64_t i = 0; i < nq * n; i++) y0[i] = y1[i] = frand(-1, 1);
            for (int64_t p = 0; p < nk; p++)
                for (int64_t j = 0; j < nq; j++)
                    kern_axpy_f16(l, a[j * nk + p], kv + p * ld, y0 + j * n, n);
            kern_axpy_f16_rows(l, a, nk, nq, kv, ld, nk, y1, n, n);
            TU_CHECK(memcmp(y0, y1, (size_t)(nq * n) * sizeof *y0) == 0,
                     "axpy rows n=%lld nk=%lld: not the single-row bits", (long long)n,
                     (long long)nk);
        }
    free(q), free(kv), free(a), free(s0), free(s1), free(y0), free(y1);
}

/* kern_dequantize_row is dequantize_row bit for bit, on rows of random bytes (any fp16 scale,
 * NaN and infinities included). */
static void test_dequantize_row(uint32_t wtype, kern_level l) {
    tu_case("dequantize_row %s %s", tname(wtype), kern_level_name(l));
    const int64_t n = 256 * 7;
    if (!kern_supported(wtype, n)) return;
    const size_t rb = qtype_row_bytes(wtype, n);
    uint8_t *w = xmalloc(rb);
    float *y0 = xmalloc((size_t)n * sizeof *y0), *y1 = xmalloc((size_t)n * sizeof *y1);
    for (int rep = 0; rep < 20; rep++) {
        for (size_t i = 0; i < rb; i++) w[i] = (uint8_t)rnd();
        const int r0 = dequantize_row(wtype, w, y0, n),
                  r1 = kern_dequantize_row(l, wtype, w, y1, n);
        TU_CHECK(r0 == r1 && memcmp(y0, y1, (size_t)n * sizeof *y0) == 0,
                 "rep %d: not dequantize_row's bits", rep);
    }
    free(w), free(y0), free(y1);
}

/* ---- real rows from the generated test models ---- */

static void test_model_rows(const char *dir, const char *file, bool *seen_types) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fclose(f);
    chatd_error err = {{0}};
    gguf_file *g = gguf_open(path, &err);
    if (!g) {
        tu_case("real rows %s", file);
        TU_CHECK(0, "%s: %s", path, err.msg);
        return;
    }
    bool done[QTYPE_MAX_ID] = {false};
    for (uint64_t ti = 0; ti < g->n_tensors; ti++) {
        const gguf_tensor *t = &g->tensors[ti];
        const int64_t n = t->ne[0];
        if (t->n_dims < 2 || t->type >= QTYPE_MAX_ID || done[t->type] || n < 32 ||
            !kern_supported(t->type, n))
            continue;
        done[t->type] = seen_types[t->type] = true;
        const int64_t nrows = t->ne[1] < 8 ? t->ne[1] : 8;
        float *x = xmalloc((size_t)n * sizeof *x);
        char name[128];
        gguf_str_copy(t->name, name, sizeof name);
        for (int l = 0; l < n_levels; l++) {
            tu_case("real rows %s %s (%s) %s", file, tname(t->type), name,
                    kern_level_name((kern_level)l));
            for (int kind = 0; kind < ACT_N; kind++) {
                make_act(kind, x, n, kern_act_type(t->type) == QTYPE_Q8_1);
                check_dot(act_names[kind], t->type, (kern_level)l, t->data, nrows, x, n);
            }
        }
        free(x);
    }
    gguf_close(g);
}

static void test_real_rows(void) {
    static const char *models[] = {
        "stories260K.gguf",        "qwen2-tiny-q8_0.gguf",    "qwen2-tiny-q4_k_m.gguf",
        "qwen3-tiny-q8_0.gguf",    "r1-qwen-tiny-q4_0.gguf",  "llama3-tiny-q6_k.gguf",
        "llama-spm-tiny-f32.gguf", "llama-spm-tiny-f16.gguf", "llama-spm-tiny-bf16.gguf"};
    static const char *recipes[] = {"q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q5_k_m"};
    bool seen[QTYPE_MAX_ID] = {false};
    const char *dir = getenv("CHATD_MODELS_DIR");
    if (dir && *dir)
        for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
            test_model_rows(dir, models[i], seen);
    const char *qdir = getenv("CHATD_QUANT_MODELS_DIR");
    if (qdir && *qdir) {
        for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++) {
            char file[64];
            snprintf(file, sizeof file, "qwen2-tiny-%s.gguf", recipes[i]);
            test_model_rows(qdir, file, seen);
        }
    }
    char missing[256] = "";
    for (size_t i = 0; i < N_WTYPES; i++) {
        if (!seen[wtypes[i]]) {
            strncat(missing, " ", sizeof missing - strlen(missing) - 1);
            strncat(missing, tname(wtypes[i]), sizeof missing - strlen(missing) - 1);
        }
    }
    if (*missing)
        printf("SKIP real rows of:%s (no model found; set CHATD_MODELS_DIR and "
               "CHATD_QUANT_MODELS_DIR)\n",
               missing);
}

/* ---- API odds and ends ---- */

static void test_api(void) {
    tu_case("api");
    kern_level l = KERN_SCALAR;
    TU_CHECK(kern_level_parse("avx2", &l) == 0 && l == KERN_AVX2, "parse avx2");
    TU_CHECK(kern_level_parse("avx512", &l) == 0 && l == KERN_AVX512, "parse avx512");
    TU_CHECK(kern_level_parse("scalar", &l) == 0 && l == KERN_SCALAR, "parse scalar");
    TU_CHECK(kern_level_parse("sse", &l) == -1 && l == KERN_SCALAR, "parse sse");
    TU_CHECK(kern_level_parse(NULL, &l) == -1, "parse NULL");
    TU_CHECK(strcmp(kern_level_name(KERN_AVX512), "avx512") == 0, "name");
    TU_CHECK(strcmp(kern_level_name((kern_level)9), "unknown") == 0, "name of 9");
    TU_CHECK(kern_clamp(KERN_AVX512) == kern_detect(), "clamp");
    TU_CHECK(kern_clamp(KERN_SCALAR) == KERN_SCALAR, "clamp scalar");
    TU_CHECK(kern_act_type(QTYPE_Q5_1) == QTYPE_Q8_1 && kern_act_type(QTYPE_Q3_K) == QTYPE_Q8_K &&
                 kern_act_type(QTYPE_Q5_0) == QTYPE_Q8_0 && kern_act_type(QTYPE_BF16) == QTYPE_BF16,
             "act types");
    TU_CHECK(kern_act_type(QTYPE_Q8_K) == QTYPE_MAX_ID && kern_act_type(999) == QTYPE_MAX_ID,
             "no kernel, no act type");
    TU_CHECK(kern_act_row_bytes(QTYPE_Q4_0, 64) == 68 && kern_act_row_bytes(QTYPE_Q4_1, 64) == 72 &&
                 kern_act_row_bytes(QTYPE_Q6_K, 512) == 584 &&
                 kern_act_row_bytes(QTYPE_F16, 3) == 6 && kern_act_row_bytes(QTYPE_F32, 3) == 12,
             "row bytes");
    TU_CHECK(kern_act_row_bytes(QTYPE_Q4_0, 33) == 0 && kern_act_row_bytes(QTYPE_Q4_K, 32) == 0 &&
                 kern_act_row_bytes(QTYPE_Q4_0, -32) == 0 && !kern_supported(77, 32),
             "bad shapes");
    /* bad shapes: zeros out, nothing touched past them, no crash */
    float y[4] = {1, 2, 3, 4}, x[33] = {0};
    uint8_t w[64] = {0}, act[64] = {0};
    kern_matvec(kern_detect(), QTYPE_Q4_0, w, 3, act, 33, y);
    TU_CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 4, "bad n writes zeros");
    memset(act, 0x5a, sizeof act);
    kern_quantize_act(kern_detect(), QTYPE_Q4_0, x, act, 33);
    TU_CHECK(act[0] == 0x5a, "bad n quantizes nothing");
    /* n = 0: dot of nothing */
    y[0] = 7;
    kern_matvec(kern_detect(), QTYPE_Q4_K, w, 1, act, 0, y);
    TU_CHECK(y[0] == 0, "n=0 gives 0");
    TU_CHECK(kern_dot_f32(kern_detect(), x, x, 0) == 0, "dot of nothing");
}

int main(void) {
    const kern_level best = kern_detect();
    printf("kern_detect: %s\n", kern_level_name(best));
    n_levels = (int)best + 1;
    if (best < KERN_AVX2) printf("SKIP avx2: CPU lacks it\n");
    if (best < KERN_AVX512) printf("SKIP avx512: CPU lacks it\n");

    test_api();
    for (int l = 0; l < n_levels; l++) {
        for (size_t i = 0; i < N_WTYPES; i++) {
            test_quantize(wtypes[i], (kern_level)l);
            test_quantize_special(wtypes[i], (kern_level)l);
            test_dot(wtypes[i], (kern_level)l);
            test_matmul(wtypes[i], (kern_level)l);
            test_dequantize_row(wtypes[i], (kern_level)l);
        }
        test_helpers((kern_level)l);
        test_attention_rows((kern_level)l);
    }
    test_real_rows();
    return tu_finish();
}
