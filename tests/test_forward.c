/* test_forward.c - teacher-forced comparison of the forward pass with the reference.
 *
 *   test_forward MODEL.gguf MODE THREADS KERNELS
 *
 * MODE q8 (activations rounded as llama.cpp rounds them) is held to rule B of
 * ../shared/reference/README.md against greedy-exact.json (|dlogprob| <= 0.4 over the
 * reference top-10, same top-1 unless the reference gap is <= 0.4); MODE float (exact
 * float activations) to rule A against greedy-f64.json (0.1 / 0.1). MODE q8-kernels
 * forces the quantized SIMD kernels for every product, q8-blas forces OpenBLAS.
 * MODE batched runs each case in one batch with three other sequences of different
 * lengths at different positions, under rule B. Each reference case is one named test
 * case; the largest deviation is printed per model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/engine.h"
#include "chatd/sampler.h"
#include "testutil.h"

typedef struct ref_case {
    const char *id;
    int32_t *ids; /* prompt_ids + tokens */
    int64_t n_prompt;
    int64_t n_steps;
    const cJSON *steps;
} ref_case;

static int32_t *json_ids(const cJSON *a, const cJSON *b, int64_t *n) {
    int na = cJSON_GetArraySize(a), nb = b ? cJSON_GetArraySize(b) : 0;
    int32_t *v = malloc((size_t)(na + nb + 1) * sizeof *v);
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[k++] = (int32_t)e->valuedouble;
    if (b) cJSON_ArrayForEach(e, b) v[k++] = (int32_t)e->valuedouble;
    *n = k;
    return v;
}

/* Compares the candidate logits of the case's steps with the reference; returns the
 * largest |dlogprob| and counts the top-1 flips outside near-ties as failures. */
static double compare_case(const ref_case *rc, const float *logits, int64_t V, double tol,
                           double tie) {
    double worst = 0;
    for (int64_t i = 0; i < rc->n_steps; i++) {
        const cJSON *st = cJSON_GetArrayItem(rc->steps, (int)i);
        const cJSON *top = cJSON_GetObjectItem(st, "top");
        const float *l = logits + (size_t)i * V;
        sampler_token best[1];
        sampler_top_logprobs(l, V, 1, best, -1, NULL);
        const cJSON *t;
        int k = 0;
        cJSON_ArrayForEach(t, top) {
            int32_t id = (int32_t)cJSON_GetObjectItem(t, "id")->valuedouble;
            double ref = cJSON_GetObjectItem(t, "logprob")->valuedouble;
            float lp;
            sampler_top_logprobs(l, V, 0, NULL, id, &lp);
            double d = fabs((double)lp - ref);
            if (d > worst) worst = d;
            TU_CHECK(d <= tol, "step %lld id %d: logprob %.4f vs reference %.4f", (long long)i, id,
                     lp, ref);
            if (k++ == 0) {
                double gap = cJSON_GetObjectItem(st, "top1_top2_gap")->valuedouble;
                TU_CHECK(best[0].id == id || gap <= tie,
                         "step %lld: top-1 %d, reference %d (gap %.3f)", (long long)i, best[0].id,
                         id, gap);
            }
        }
    }
    return worst;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: test_forward MODEL.gguf q8|q8-kernels|q8-blas|float|batched "
                        "THREADS KERNELS\n");
        return 2;
    }
    const char *file = argv[1], *mode = argv[2], *kernels = argv[4];
    int threads = atoi(argv[3]);
    bool rule_a = !strcmp(mode, "float");
    double tol = rule_a ? 0.1 : 0.4, tie = tol;
    char stem[256], ref_path[4096];
    snprintf(stem, sizeof stem, "%s", file);
    char *dot = strstr(stem, ".gguf");
    if (dot) *dot = 0;
    snprintf(ref_path, sizeof ref_path, "%s/reference/%s/%s", tu_shared_dir(), stem,
             rule_a ? "greedy-f64.json" : "greedy-exact.json");
    const char *model_path = tu_model_path(file);

    kern_level best = kern_detect(), want;
    if (kern_level_parse(kernels, &want) != 0 || want > best) {
        printf("SKIP: this CPU cannot run %s kernels\n", kernels);
        return TU_SKIP_CODE;
    }
    cJSON *ref = tu_load_json(ref_path);
    const cJSON *cases = cJSON_GetObjectItem(ref, "cases");
    int n_cases = cJSON_GetArraySize(cases);
    ref_case *rcs = calloc((size_t)n_cases, sizeof *rcs);
    int64_t max_len = 0, total = 0;
    for (int c = 0; c < n_cases; c++) {
        const cJSON *jc = cJSON_GetArrayItem(cases, c);
        ref_case *rc = &rcs[c];
        rc->id = cJSON_GetObjectItem(jc, "id")->valuestring;
        rc->steps = cJSON_GetObjectItem(jc, "steps");
        rc->n_steps = cJSON_GetArraySize(rc->steps);
        int64_t n;
        rc->ids =
            json_ids(cJSON_GetObjectItem(jc, "prompt_ids"), cJSON_GetObjectItem(jc, "tokens"), &n);
        rc->n_prompt = cJSON_GetArraySize(cJSON_GetObjectItem(jc, "prompt_ids"));
        if (n > max_len) max_len = n;
        total += n;
    }

    engine_options o = engine_defaults();
    o.n_threads = threads;
    o.kernels = kernels;
    o.float_activations = rule_a;
    o.max_ctx = max_len + 1;
    o.max_batch = !strcmp(mode, "batched") ? total : max_len;
    o.kv_blocks = (total + 16 * n_cases) / KV_BLOCK + n_cases;
    if (!strcmp(mode, "q8-kernels")) o.blas_min_batch = INT64_MAX;
    if (!strcmp(mode, "q8-blas")) o.blas_min_batch = 1;
    /* rule B's reference (greedy-exact) ran with an F32 KV cache; rule A allows F16 */
    o.kv_type = rule_a ? KV_F16 : KV_F32;
    engine e;
    chatd_error err = {{0}};
    tu_case("%s/open", file);
    if (engine_open(&e, model_path, &o, &err) != 0) {
        TU_CHECK(0, "engine_open: %s", err.msg);
        return tu_finish();
    }
    int64_t V = e.m->hp.n_vocab;
    double worst = 0;
    float *logits = malloc((size_t)o.max_batch * (size_t)V * sizeof *logits);
    kv_seq *seqs = calloc(4, sizeof *seqs);
    /* the portable C kernels are slow on 150k-token vocabularies: three cases suffice */
    int run_cases = !strcmp(kernels, "scalar") && n_cases > 3 ? 3 : n_cases;
    for (int c = 0; c < run_cases; c++) {
        ref_case *rc = &rcs[c];
        tu_case("%s/%s/%s/t%d/%s", file, mode, rc->id, threads, kernels);
        /* feed prompt + tokens[:n_steps-1]; step i's distribution is at prompt-1+i */
        int64_t n = rc->n_prompt + rc->n_steps - 1;
        int64_t first = rc->n_prompt - 1;
        int rc2;
        if (strcmp(mode, "batched") != 0) {
            rc2 = engine_prefill(&e, &seqs[0], rc->ids, n, 0, true, logits, &err);
            TU_CHECK(rc2 == 0, "prefill: %s", err.msg);
            if (rc2 == 0) {
                double w = compare_case(rc, logits + (size_t)first * V, V, tol, tie);
                if (w > worst) worst = w;
            }
        } else {
            /* three other cases: the first half of each goes in beforehand, the rest in
             * the same batch as this whole case, so the batch mixes positions */
            int64_t n_tok = 0, pos[4096];
            int32_t tok[4096];
            kv_seq *sq[4096];
            bool want[4096];
            for (int k = 1; k <= 3; k++) {
                const ref_case *o2 = &rcs[(c + k) % n_cases];
                int64_t len = o2->n_prompt + o2->n_steps - 1, half = len / 2;
                rc2 = engine_prefill(&e, &seqs[k], o2->ids, half, 0, false, NULL, &err);
                TU_CHECK(rc2 == 0, "prefill other: %s", err.msg);
                kv_seq_reserve(&e.kv, &seqs[k], len, &err);
                for (int64_t j = half; j < len && n_tok < 4096; j++) {
                    tok[n_tok] = o2->ids[j];
                    pos[n_tok] = j;
                    sq[n_tok] = &seqs[k];
                    want[n_tok++] = false;
                }
            }
            TU_CHECK(kv_seq_reserve(&e.kv, &seqs[0], n, &err) == 0, "reserve: %s", err.msg);
            for (int64_t j = 0; j < n && n_tok < 4096; j++) {
                tok[n_tok] = rc->ids[j];
                pos[n_tok] = j;
                sq[n_tok] = &seqs[0];
                want[n_tok++] = j >= first;
            }
            fwd_batch b = {.n = n_tok, .token = tok, .pos = pos, .seq = sq, .logits = want};
            rc2 = fwd_eval(e.fwd, &b, logits, &err);
            TU_CHECK(rc2 == 0, "batched eval: %s", err.msg);
            if (rc2 == 0) {
                double w = compare_case(rc, logits, V, tol, tie);
                if (w > worst) worst = w;
            }
        }
        for (int k = 0; k < 4; k++) kv_seq_release(&e.kv, &seqs[k]);
    }
    tu_case("%s/%s/kv-returned", file, mode);
    TU_CHECK(kv_pool_used(&e.kv) == 0, "%lld KV blocks still in use",
             (long long)kv_pool_used(&e.kv));
    printf("%s %s threads=%d kernels=%s: max |dlogprob| %.4f (tolerance %.2f, %s)\n", file, mode,
           threads, kernels, worst, tol,
           rule_a ? "rule A vs greedy-f64" : "rule B vs greedy-exact");
    for (int k = 0; k < 4; k++) kv_seq_free(&seqs[k]);
    free(seqs);
    free(logits);
    for (int c = 0; c < n_cases; c++) free(rcs[c].ids);
    free(rcs);
    engine_close(&e);
    cJSON_Delete(ref);
    return tu_finish();
}
