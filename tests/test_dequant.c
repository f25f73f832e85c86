/* test_dequant.c - dequantizes every tensor of one model file and compares it with
 * gguf-py's dequantization recorded in ../shared/reference/<stem>/dequant.json: the first 16
 * values, and the float64 sum and sum of squares over all values.
 *
 *   usage: test_dequant MODEL.gguf      (a file name inside $CHATD_MODELS_DIR)
 *
 * Tolerances follow the reference README: first16 bit-exact for the block types whose value
 * is a single product (F32/F16/BF16/Q8_0/Q4_0/...), within 1e-6 relative for K-quants (the
 * order of the scale products may move the last bit); sum_sq within 1e-6 relative; sum
 * within 1e-6 * sqrt(n * sum_sq) absolute. Prints the largest deviations seen per type. */
#include "testutil.h"

#include "chatd/gguf.h"
#include "chatd/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest deviations seen for one tensor type. */
typedef struct dev_stats {
    bool seen;
    int n_tensors;
    double first16_rel; /* max |a-b| / |b| over first16 (0 when bit-identical) */
    double sum_sq_rel;  /* max |a-b| / b */
    double sum_norm;    /* max |a-b| / sqrt(n * sum_sq) */
} dev_stats;

static bool is_k_quant(uint32_t type) {
    return type >= QTYPE_Q2_K && type <= QTYPE_Q8_K;
}

/* Dequantizes a tensor row by row (token_embd alone is 39M values), accumulating the
 * float64 sum and sum of squares and keeping the first 16 values. 0, or -1 on refusal. */
static int summarize(const gguf_tensor *t, float first16[16], double *sum, double *sum_sq) {
    int64_t ne0 = t->ne[0], rows = 1;
    for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++) rows *= t->ne[d];
    size_t row_bytes = qtype_row_bytes(t->type, ne0);
    if (row_bytes == 0 || (uint64_t)row_bytes * (uint64_t)rows != t->nbytes) return -1;
    float *row = malloc((size_t)ne0 * sizeof *row);
    if (!row) return -1;
    double s = 0, s2 = 0;
    int kept = 0;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = (const uint8_t *)t->data + (size_t)r * row_bytes;
        if (dequantize_row(t->type, src, row, ne0) != 0) {
            free(row);
            return -1;
        }
        for (int64_t i = 0; i < ne0; i++) {
            double v = row[i];
            s += v;
            s2 += v * v;
            if (kept < 16) first16[kept++] = row[i];
        }
    }
    free(row);
    *sum = s;
    *sum_sq = s2;
    return 0;
}

static void check_tensor(const char *model, const gguf_file *f, const cJSON *ref,
                         dev_stats *stats) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(ref, "name"));
    const char *type_name = cJSON_GetStringValue(cJSON_GetObjectItem(ref, "type"));
    tu_case("%s/%s", model, name ? name : "(unnamed)");
    if (!name || !type_name) {
        TU_CHECK(false, "reference entry without name or type");
        return;
    }
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        TU_CHECK(false, "tensor missing from the model");
        return;
    }
    char buf[32];
    const char *got_type = qtype_name(t->type, buf, sizeof buf);
    TU_CHECK(strcmp(got_type, type_name) == 0, "type %s, reference says %s", got_type, type_name);

    const cJSON *shape = cJSON_GetObjectItem(ref, "shape");
    int n_dims = cJSON_GetArraySize(shape);
    TU_CHECK(n_dims == (int)t->n_dims, "%u dims, reference has %d", t->n_dims, n_dims);
    for (int d = 0; d < n_dims && d < GGUF_MAX_DIMS; d++) {
        int64_t want = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
        TU_CHECK(t->ne[d] == want, "ne[%d] = %lld, reference %lld", d, (long long)t->ne[d],
                 (long long)want);
    }
    double n = cJSON_GetNumberValue(cJSON_GetObjectItem(ref, "n_elements"));

    float first16[16] = {0};
    double sum, sum_sq;
    if (summarize(t, first16, &sum, &sum_sq) != 0) {
        TU_CHECK(false, "dequantize_row refused the tensor (type %s, %llu bytes)", got_type,
                 (unsigned long long)t->nbytes);
        return;
    }

    dev_stats *st = &stats[t->type < QTYPE_MAX_ID ? t->type : 0];
    st->seen = true;
    st->n_tensors++;

    const cJSON *ref16 = cJSON_GetObjectItem(ref, "first16");
    int n16 = cJSON_GetArraySize(ref16);
    TU_CHECK(n16 == 16 || n16 == (int)n, "first16 has %d values", n16);
    bool exact = !is_k_quant(t->type);
    for (int i = 0; i < n16 && i < 16; i++) {
        /* the JSON numbers are float32 values printed exactly, so this is lossless */
        float want = (float)cJSON_GetArrayItem(ref16, i)->valuedouble;
        float got = first16[i];
        double dev = got == want ? 0 : fabs((double)got - want) / fabs((double)want);
        if (dev > st->first16_rel) st->first16_rel = dev;
        if (exact)
            TU_CHECK(memcmp(&got, &want, sizeof got) == 0, "value %d: %.9g, reference %.9g", i,
                     (double)got, (double)want);
        else
            TU_CHECK(dev <= 1e-6, "value %d: %.9g, reference %.9g (rel %.3g)", i, (double)got,
                     (double)want, dev);
    }

    double want_sum = cJSON_GetNumberValue(cJSON_GetObjectItem(ref, "sum"));
    double want_sq = cJSON_GetNumberValue(cJSON_GetObjectItem(ref, "sum_sq"));
    double sq_rel = want_sq == sum_sq ? 0 : fabs(sum_sq - want_sq) / want_sq;
    double sum_scale = sqrt(n * want_sq);
    double sum_norm = sum == want_sum ? 0 : fabs(sum - want_sum) / sum_scale;
    if (sq_rel > st->sum_sq_rel) st->sum_sq_rel = sq_rel;
    if (sum_norm > st->sum_norm) st->sum_norm = sum_norm;
    TU_CHECK(sq_rel <= 1e-6, "sum_sq %.17g, reference %.17g (rel %.3g)", sum_sq, want_sq, sq_rel);
    TU_CHECK(sum_norm <= 1e-6, "sum %.17g, reference %.17g (%.3g of sqrt(n*sum_sq))", sum, want_sum,
             sum_norm);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    const char *model = argv[1];
    char ref_path[4096];
    size_t stem_len = strlen(model);
    if (stem_len > 5 && strcmp(model + stem_len - 5, ".gguf") == 0) stem_len -= 5;
    snprintf(ref_path, sizeof ref_path, "%s/reference/%.*s/dequant.json", tu_shared_dir(),
             (int)stem_len, model);
    const char *path = tu_model_path(model);

    chatd_error err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    tu_case("%s: open", model);
    TU_CHECK(f != NULL, "gguf_open(%s): %s", path, err.msg);
    if (!f) return tu_finish();

    cJSON *ref = tu_load_json(ref_path);
    const cJSON *tensors = cJSON_GetObjectItem(ref, "tensors");
    tu_case("%s: tensor count", model);
    TU_CHECK(cJSON_GetArraySize(tensors) == (int)f->n_tensors,
             "model has %llu tensors, reference %d", (unsigned long long)f->n_tensors,
             cJSON_GetArraySize(tensors));

    dev_stats stats[QTYPE_MAX_ID] = {{0}};
    const cJSON *item;
    cJSON_ArrayForEach(item, tensors) check_tensor(model, f, item, stats);

    for (uint32_t type = 0; type < QTYPE_MAX_ID; type++) {
        if (!stats[type].seen) continue;
        char buf[32];
        printf("%-5s %3d tensors: max first16 rel dev %.3g, sum_sq rel dev %.3g, "
               "sum dev %.3g of sqrt(n*sum_sq)\n",
               qtype_name(type, buf, sizeof buf), stats[type].n_tensors, stats[type].first16_rel,
               stats[type].sum_sq_rel, stats[type].sum_norm);
    }
    cJSON_Delete(ref);
    gguf_close(f);
    return tu_finish();
}
