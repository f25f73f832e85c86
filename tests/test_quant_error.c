/* test_quant_error.c - dequantization of the types no public model holds (Q4_1, Q5_0, Q5_1,
 * Q2_K, Q3_K, Q5_K), checked by quantization error.
 *
 * tests/make_quant_models.sh writes the qwen2-tiny preset in every recipe from the same
 * float weights into $CHATD_QUANT_MODELS_DIR. Each 2-D weight of each quantized file is
 * dequantized and compared with the same tensor of the F32 file: its relative RMS error must
 * lie within [0.8x, 1.25x] of the generator's documented figure for its type
 * (shared/models/README.md, "Quantizers"). Correct code lands within 6% of those figures on
 * every tensor; a swapped nibble, a misplaced high bit or a wrong scale unpacking multiplies
 * the error several times. */
#include "testutil.h"

#include "chatd/gguf.h"
#include "chatd/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Expected relative RMS error per type (the generator's own quantizers, not llama.cpp's). */
static double expected_rel_rms(uint32_t type) {
    switch (type) {
    case QTYPE_Q8_0:
        return 0.005;
    case QTYPE_Q6_K:
        return 0.018;
    case QTYPE_Q5_K:
    case QTYPE_Q5_1:
    case QTYPE_Q5_0:
        return 0.0385; /* 3.7-4% */
    case QTYPE_Q4_K:
    case QTYPE_Q4_1:
    case QTYPE_Q4_0:
        return 0.0775; /* 7.5-8% */
    case QTYPE_Q3_K:
        return 0.15;
    case QTYPE_Q2_K:
        return 0.32;
    default:
        return -1;
    }
}

/* Recipes and the type each one is there to exercise. */
static const struct {
    const char *recipe;
    uint32_t main_type;
} recipes[] = {
    {"q4_1", QTYPE_Q4_1},   {"q5_0", QTYPE_Q5_0},   {"q5_1", QTYPE_Q5_1}, {"q2_k", QTYPE_Q2_K},
    {"q3_k_m", QTYPE_Q3_K}, {"q5_k_m", QTYPE_Q5_K}, {"q4_0", QTYPE_Q4_0}, {"q8_0", QTYPE_Q8_0},
    {"q6_k", QTYPE_Q6_K},   {"q4_k_m", QTYPE_Q4_K},
};

/* Error totals for one type over all files. */
typedef struct type_stats {
    int n_tensors;
    double err2, ref2;       /* summed squared error and squared reference */
    double min_rel, max_rel; /* per-tensor relative RMS extremes */
} type_stats;

static gguf_file *open_model(const char *dir, const char *recipe) {
    char path[4096];
    snprintf(path, sizeof path, "%s/qwen2-tiny-%s.gguf", dir, recipe);
    chatd_error err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    TU_CHECK(f != NULL, "gguf_open(%s): %s", path, err.msg);
    return f;
}

/* Squared error of t against the F32 tensor ref, and the squared norm of ref, row by row. */
static int tensor_error(const gguf_tensor *t, const gguf_tensor *ref, double *err2, double *ref2) {
    int64_t ne0 = t->ne[0], rows = 1;
    for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++) rows *= t->ne[d];
    size_t row_bytes = qtype_row_bytes(t->type, ne0);
    size_t ref_row_bytes = qtype_row_bytes(ref->type, ne0);
    if (!row_bytes || !ref_row_bytes || (uint64_t)row_bytes * (uint64_t)rows != t->nbytes ||
        (uint64_t)ref_row_bytes * (uint64_t)rows != ref->nbytes)
        return -1;
    float *a = malloc((size_t)ne0 * sizeof *a), *b = malloc((size_t)ne0 * sizeof *b);
    int rc = a && b ? 0 : -1;
    double e2 = 0, r2 = 0;
    for (int64_t r = 0; r < rows && rc == 0; r++) {
        rc |= dequantize_row(t->type, (const uint8_t *)t->data + (size_t)r * row_bytes, a, ne0);
        rc |= dequantize_row(ref->type, (const uint8_t *)ref->data + (size_t)r * ref_row_bytes, b,
                             ne0);
        for (int64_t i = 0; i < ne0 && rc == 0; i++) {
            double d = (double)a[i] - b[i];
            e2 += d * d;
            r2 += (double)b[i] * b[i];
        }
    }
    free(a);
    free(b);
    *err2 = e2;
    *ref2 = r2;
    return rc;
}

static void check_recipe(const char *dir, const gguf_file *f32, const char *recipe,
                         uint32_t main_type, type_stats *stats) {
    char buf[32];
    tu_case("%s: open", recipe);
    gguf_file *f = open_model(dir, recipe);
    if (!f) return;
    int n_main = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (t->type == main_type) n_main++;
        if (t->n_dims != 2) continue;
        char name[256];
        gguf_str_copy(t->name, name, sizeof name);
        const char *type_name = qtype_name(t->type, buf, sizeof buf);
        tu_case("%s/%s (%s)", recipe, name, type_name);
        const gguf_tensor *ref = gguf_find_tensor(f32, name);
        if (!ref) {
            TU_CHECK(false, "no tensor of that name in the F32 file");
            continue;
        }
        TU_CHECK(ref->type == QTYPE_F32, "the reference tensor is not F32");
        if (memcmp(ref->ne, t->ne, sizeof t->ne) != 0 || ref->type != QTYPE_F32) {
            TU_CHECK(false, "shape differs from the F32 file");
            continue;
        }
        double err2, ref2;
        if (tensor_error(t, ref, &err2, &ref2) != 0) {
            TU_CHECK(false, "dequantize_row refused the tensor");
            continue;
        }
        double rel = ref2 > 0 ? sqrt(err2 / ref2) : 0;
        double want = expected_rel_rms(t->type);
        if (t->type == QTYPE_F32) {
            TU_CHECK(err2 == 0, "an F32 copy differs (rel RMS %.3g)", rel);
        } else if (want < 0) {
            TU_CHECK(false, "no expected error for type %s", type_name);
        } else {
            TU_CHECK(rel >= 0.8 * want && rel <= 1.25 * want,
                     "relative RMS error %.4f%%, expected %.2f%% (band %.2f%%..%.2f%%)", 100 * rel,
                     100 * want, 80 * want, 125 * want);
        }
        if (t->type < QTYPE_MAX_ID) {
            type_stats *st = &stats[t->type];
            if (st->n_tensors == 0 || rel < st->min_rel) st->min_rel = rel;
            if (st->n_tensors == 0 || rel > st->max_rel) st->max_rel = rel;
            st->n_tensors++;
            st->err2 += err2;
            st->ref2 += ref2;
        }
    }
    tu_case("%s: holds %s", recipe, qtype_name(main_type, buf, sizeof buf));
    TU_CHECK(n_main > 0, "no tensor of type %s in the %s file", buf, recipe);
    gguf_close(f);
}

int main(void) {
    tu_shared_dir(); /* skips or fails the program when shared material is absent */
    const char *dir = getenv("CHATD_QUANT_MODELS_DIR");
    if (!dir || !*dir)
        tu_skip_or_fail("CHATD_QUANT_MODELS_DIR is unset (run the quant.models test)");
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/qwen2-tiny-f32.gguf", dir);
    FILE *fp = fopen(probe, "rb");
    if (!fp) tu_skip_or_fail("%s missing (run the quant.models test)", probe);
    fclose(fp);

    tu_case("f32: open");
    gguf_file *f32 = open_model(dir, "f32");
    if (!f32) return tu_finish();

    type_stats stats[QTYPE_MAX_ID] = {{0}};
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
        check_recipe(dir, f32, recipes[i].recipe, recipes[i].main_type, stats);

    tu_case("every quantized type was exercised");
    char buf[32];
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++) {
        uint32_t type = recipes[i].main_type;
        TU_CHECK(stats[type].n_tensors > 0, "no 2-D %s tensor checked",
                 qtype_name(type, buf, sizeof buf));
    }
    for (uint32_t type = 0; type < QTYPE_MAX_ID; type++) {
        const type_stats *st = &stats[type];
        if (!st->n_tensors) continue;
        printf("%-5s %3d tensors: relative RMS error %.3f%% overall, %.3f%%..%.3f%% per tensor\n",
               qtype_name(type, buf, sizeof buf), st->n_tensors, 100 * sqrt(st->err2 / st->ref2),
               100 * st->min_rel, 100 * st->max_rel);
    }
    gguf_close(f32);
    return tu_finish();
}
