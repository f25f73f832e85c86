/* bench_constrain.c - what constrained decoding costs per generated token.
 *
 * usage: bench_constrain MODEL.gguf [STEPS]
 *
 * Builds the constraint vocabulary of the model's tokenizer, then for a few grammars
 * (response_format json_object, a JSON Schema, Hermes tool calls behind a thinking block)
 * generates with a uniformly random allowed token at every step (a far wider walk through
 * the grammar than a model's choices) and prints the time of cons_allowed (the token
 * mask) and cons_advance per step: mean, median, 99th percentile and maximum. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../server/schema.h"
#include "chatd/constrain.h"
#include "chatd/gguf.h"
#include "chatd/tokenizer.h"

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *SCHEMA =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"order_id\",\"status\",\"items\",\"total\",\"shipped\",\"customer\"],"
    "\"properties\":{\"order_id\":{\"type\":\"string\",\"maxLength\":24},"
    "\"status\":{\"enum\":[\"pending\",\"shipped\",\"delivered\",\"returned\"]},"
    "\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":4,\"items\":{\"type\":\"object\","
    "\"additionalProperties\":false,\"required\":[\"sku\",\"qty\"],\"properties\":{\"sku\":{"
    "\"type\":\"string\"},\"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":99}}}},"
    "\"total\":{\"type\":\"number\"},\"shipped\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"customer\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}}}";

/* The grammar of case k (0 json_object, 1 schema, 2 think + tool call); -1 on error. */
static cons_node bench_grammar(int k, cons_grammar *g) {
    if (k == 0) return cons_object(g, cons_any(g));
    cJSON *schema = cJSON_Parse(SCHEMA);
    api_error err;
    cons_node body = schema_to_grammar(g, schema, "schema", &err);
    cJSON_Delete(schema);
    if (body < 0) {
        fprintf(stderr, "schema: %s\n", err.message);
        return -1;
    }
    if (k == 1) return body;
    const char *head = "{\"name\": \"lookup_order\", \"arguments\": ";
    cons_node call[] = {cons_text(g, head, strlen(head)), body, cons_text(g, "}", 1)};
    cons_node one[] = {cons_text(g, "<tool_call>\n", 12), cons_seq(g, call, 3),
                       cons_text(g, "\n</tool_call>", 13)};
    cons_node all[] = {cons_text(g, "<think>", 7), cons_until(g, "</think>"), cons_ws(g),
                       cons_repeat(g, cons_seq(g, one, 3), cons_text(g, "\n", 1), 1, -1)};
    return cons_seq(g, all, 4);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_constrain MODEL.gguf [STEPS]\n");
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 4000;
    chatd_error err = {{0}};
    gguf_file *f = gguf_open(argv[1], &err);
    tok_vocab *v = f ? tok_load(f, &err) : NULL;
    if (f) gguf_close(f);
    if (!v) {
        fprintf(stderr, "bench_constrain: %s\n", err.msg);
        return 1;
    }
    double t0 = bench_now();
    cons_vocab *cv = cons_vocab_new(v, &err);
    if (!cv) {
        fprintf(stderr, "bench_constrain: %s\n", err.msg);
        return 1;
    }
    printf("vocabulary: %d tokens, constraint tables built in %.1f ms\n", tok_n_vocab(v),
           (bench_now() - t0) * 1e3);
    static const char *names[] = {"json_object", "json_schema (order)", "think + tool call"};
    double *mask_t = malloc((size_t)steps * sizeof *mask_t);
    double *adv_t = malloc((size_t)steps * sizeof *adv_t);
    size_t words = ((size_t)tok_n_vocab(v) + 31) / 32;
    uint32_t *mask = malloc(words * sizeof *mask);
    if (!mask_t || !adv_t || !mask) return 1;
    for (int k = 0; k < 3; k++) {
        cons_grammar *g = cons_grammar_new(&err);
        cons_node root = bench_grammar(k, g);
        double tc = bench_now();
        cons_program *p = root >= 0 ? cons_compile(g, root, cv, &err) : NULL;
        tc = bench_now() - tc;
        cons_grammar_free(g);
        if (!p) {
            fprintf(stderr, "%s: %s\n", names[k], err.msg);
            return 1;
        }
        uint64_t rng = 88172645463325252ull + (uint64_t)k;
        int n = 0, gens = 0;
        while (n < steps) {
            cons_matcher *m = cons_matcher_new(p, &err);
            if (!m) return 1;
            gens++;
            for (int64_t i = 0; i < 200 && n < steps && !cons_finished(m); i++) {
                double a = bench_now();
                int64_t allowed = cons_allowed(m, 200 - i, mask);
                double b = bench_now();
                if (allowed <= 0) break;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                int32_t id = cons_mask_nth(mask, words, (int64_t)(rng % (uint64_t)allowed));
                double c0 = bench_now();
                if (cons_advance(m, id) != 0) break;
                double c1 = bench_now();
                mask_t[n] = b - a;
                adv_t[n] = c1 - c0;
                n++;
                if (tok_is_eog(v, id)) break;
            }
            cons_matcher_free(m);
        }
        cons_program_release(p);
        double sum = 0, asum = 0;
        for (int i = 0; i < n; i++) {
            sum += mask_t[i];
            asum += adv_t[i];
        }
        qsort(mask_t, (size_t)n, sizeof *mask_t, bench_cmp);
        printf("%-22s compile %.2f ms, %d steps in %d generations: mask mean %.3f ms, p50 "
               "%.3f, p99 %.3f, max %.3f; advance mean %.4f ms\n",
               names[k], tc * 1e3, n, gens, sum / n * 1e3, mask_t[n / 2] * 1e3,
               mask_t[(int)(n * 0.99)] * 1e3, mask_t[n - 1] * 1e3, asum / n * 1e3);
    }
    free(mask_t);
    free(adv_t);
    free(mask);
    cons_vocab_free(cv);
    tok_free(v);
    return 0;
}
