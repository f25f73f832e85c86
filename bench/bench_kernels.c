/* bench_kernels.c - speed of the matrix-vector kernels, single thread.
 *
 * For each weight type and each level this CPU has, on a 896x4864 and a 4864x896 matrix (rows x
 * row length, the shapes of a small model's FFN), times kern_matvec (nact 1) and kern_matmul
 * (nact 4, 8 and 16) and prints the weight bytes streamed per second (each call reads the matrix
 * once, whatever nact) and the multiply-adds per second (2 flops each).
 *   usage: bench_kernels [-q] [TYPE...]     e.g. bench_kernels Q4_0 Q4_K; -q: shorter runs */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chatd/kernels.h"

static uint64_t rng_state = 0x0123456789abcdefull;

static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float frand(float lo, float hi) {
    return lo + (hi - lo) * (float)((rnd() >> 40) * 0x1p-24);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random weights: quant bytes at random, every fp16 field of a block set to a sane scale (the
 * speed does not depend on the values, but NaNs and denormals could). */
static uint8_t *make_weights(uint32_t t, int64_t nrows, int64_t n, size_t *nbytes) {
    const size_t total = qtype_row_bytes(t, n) * (size_t)nrows;
    uint8_t *w = malloc(total);
    if (!w) return NULL;
    const qtype_traits *tr = qtype_get(t);
    if (tr->block_elems == 1) {
        for (size_t i = 0; i < total / tr->block_bytes; i++) {
            const float f = frand(-1, 1);
            if (t == QTYPE_F32) {
                memcpy(w + 4 * i, &f, 4);
            } else {
                const uint16_t h = t == QTYPE_F16 ? f32_to_fp16(f) : f32_to_bf16(f);
                memcpy(w + 2 * i, &h, 2);
            }
        }
    } else {
        for (size_t i = 0; i < total; i++) w[i] = (uint8_t)rnd();
        int f1 = 0, f2 = -1; /* offsets of d and of the min, as in quant.c's layouts */
        if (t == QTYPE_Q4_1 || t == QTYPE_Q5_1 || t == QTYPE_Q4_K || t == QTYPE_Q5_K) f2 = 2;
        if (t == QTYPE_Q2_K) f1 = 80, f2 = 82;
        if (t == QTYPE_Q3_K) f1 = 108;
        if (t == QTYPE_Q6_K) f1 = 208;
        for (size_t b = 0; b < total / tr->block_bytes; b++) {
            uint8_t *blk = w + b * tr->block_bytes;
            const uint16_t d = f32_to_fp16(frand(0.001f, 0.1f));
            memcpy(blk + f1, &d, 2);
            if (f2 >= 0) memcpy(blk + f2, &d, 2);
        }
    }
    *nbytes = total;
    return w;
}

static const uint32_t all_types[] = {QTYPE_F32,  QTYPE_F16,  QTYPE_BF16, QTYPE_Q4_0, QTYPE_Q4_1,
                                     QTYPE_Q5_0, QTYPE_Q5_1, QTYPE_Q8_0, QTYPE_Q2_K, QTYPE_Q3_K,
                                     QTYPE_Q4_K, QTYPE_Q5_K, QTYPE_Q6_K};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static volatile float sink;

static void call(kern_level l, uint32_t t, const uint8_t *w, int64_t nrows, const uint8_t *act,
                 int64_t nact, int64_t n, float *y) {
    if (nact == 1)
        kern_matvec(l, t, w, nrows, act, n, y);
    else
        kern_matmul(l, t, w, nrows, act, nact, n, y, nrows);
    sink += y[0];
}

/* Seconds per call: the fastest of the calls made in min_time (at least three), since the
 * machine may be shared and interference only ever adds time. */
static double time_calls(kern_level l, uint32_t t, const uint8_t *w, int64_t nrows,
                         const uint8_t *act, int64_t nact, int64_t n, float *y, double min_time) {
    call(l, t, w, nrows, act, nact, n, y); /* warm the caches */
    double best = 1e30;
    const double start = now();
    for (int reps = 0; reps < 3 || now() - start < min_time; reps++) {
        const double t0 = now();
        call(l, t, w, nrows, act, nact, n, y);
        const double el = now() - t0;
        if (el < best) best = el;
    }
    return best;
}

int main(int argc, char **argv) {
    double min_time = 0.2;
    uint32_t types[N_TYPES];
    size_t ntypes = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0) {
            min_time = 0.05;
            continue;
        }
        size_t k = 0;
        char buf[32];
        while (k < N_TYPES && strcasecmp(argv[i], qtype_name(all_types[k], buf, sizeof buf)) != 0)
            k++;
        if (k == N_TYPES) {
            fprintf(stderr, "bench_kernels: unknown type %s\n", argv[i]);
            return 2;
        }
        if (ntypes < N_TYPES) types[ntypes++] = all_types[k];
    }
    if (!ntypes) {
        memcpy(types, all_types, sizeof all_types);
        ntypes = N_TYPES;
    }

    const kern_level best = kern_detect();
    const int64_t shapes[2][2] = {{896, 4864}, {4864, 896}}; /* rows, row length */
    const int64_t nacts[4] = {1, 4, 8, 16};
    printf("kern_detect: %s; single thread; GB/s = weight bytes per second, GF/s = 2*rows*n*nact "
           "per second\n\n",
           kern_level_name(best));
    printf("%-5s %-7s %-9s | %21s | %21s | %21s | %21s\n", "type", "level", "rows x n",
           "matvec (nact 1)", "matmul nact 4", "matmul nact 8", "matmul nact 16");
    printf("%-5s %-7s %-9s | %10s %10s | %10s %10s | %10s %10s | %10s %10s\n", "", "", "", "GB/s",
           "GF/s", "GB/s", "GF/s", "GB/s", "GF/s", "GB/s", "GF/s");
    for (size_t ti = 0; ti < ntypes; ti++) {
        const uint32_t t = types[ti];
        char tbuf[32];
        for (int s = 0; s < 2; s++) {
            const int64_t nrows = shapes[s][0], n = shapes[s][1];
            if (!kern_supported(t, n)) { /* K-quant rows are whole 256-element blocks */
                printf("%-5s %-7s %4lldx%-4lld | n/a: rows of %lld are not whole %s blocks\n",
                       qtype_name(t, tbuf, sizeof tbuf), "-", (long long)nrows, (long long)n,
                       (long long)n, qtype_name(t, tbuf, sizeof tbuf));
                continue;
            }
            size_t wbytes;
            uint8_t *w = make_weights(t, nrows, n, &wbytes);
            const size_t ab = kern_act_row_bytes(t, n);
            uint8_t *act = malloc(ab * 16);
            float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)(nrows * 16) * sizeof *y);
            if (!w || !act || !x || !y) {
                fprintf(stderr, "bench_kernels: out of memory\n");
                return 1;
            }
            for (int l = 0; l <= (int)best; l++) {
                for (int a = 0; a < 16; a++) {
                    for (int64_t i = 0; i < n; i++) x[i] = frand(-1, 1);
                    kern_quantize_act((kern_level)l, t, x, act + (size_t)a * ab, n);
                }
                printf("%-5s %-7s %4lldx%-4lld |", qtype_name(t, tbuf, sizeof tbuf),
                       kern_level_name((kern_level)l), (long long)nrows, (long long)n);
                for (int k = 0; k < 4; k++) {
                    const double sec =
                        time_calls((kern_level)l, t, w, nrows, act, nacts[k], n, y, min_time);
                    printf(" %10.2f %10.2f |", (double)wbytes / sec * 1e-9,
                           2.0 * (double)nrows * (double)n * (double)nacts[k] / sec * 1e-9);
                }
                printf("\n");
                fflush(stdout);
            }
            free(w), free(act), free(x), free(y);
        }
    }
    return 0;
}
