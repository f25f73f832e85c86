/* test_sampler.c - the sampling chain, log-probabilities, KV block pool and thread pool
 * on synthetic inputs whose right answers are known in closed form. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/kvcache.h"
#include "chatd/pool.h"
#include "chatd/sampler.h"
#include "testutil.h"

#define V 1000

static void fill_logits(float *l, uint64_t seed) {
    for (int i = 0; i < V; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        l[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 8.0 - 4.0);
    }
}

static int argmax(const float *l) {
    int b = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static void test_logprobs(void) {
    tu_case("sampler/logprobs-normalized");
    float l[V];
    fill_logits(l, 1);
    sampler_token top[20];
    float lp_want;
    sampler_top_logprobs(l, V, 20, top, 7, &lp_want);
    double sum = 0, mx = -1e30;
    for (int i = 0; i < V; i++) mx = fmax(mx, l[i]);
    for (int i = 0; i < V; i++) sum += exp(l[i] - mx);
    for (int k = 0; k < 20; k++) {
        double want = l[top[k].id] - mx - log(sum);
        TU_CHECK(fabs(top[k].logprob - want) < 1e-5, "top %d logprob %f vs %f", k, top[k].logprob,
                 want);
        if (k) TU_CHECK(top[k].logprob <= top[k - 1].logprob, "not descending at %d", k);
    }
    TU_CHECK(top[0].id == argmax(l), "top-1 is not the argmax");
    TU_CHECK(fabs(lp_want - (l[7] - mx - log(sum))) < 1e-5, "logprob of a given id");
}

static void test_greedy_and_bias(void) {
    float l[V];
    fill_logits(l, 2);
    chatd_error err = {{0}};
    tu_case("sampler/greedy");
    sampler_params p = sampler_defaults();
    p.temperature = 0;
    p.top_logprobs = 5;
    sampler *s = sampler_create(&p, V, &err);
    sampler_result r;
    TU_CHECK(sampler_sample(s, l, &r) == argmax(l), "greedy is not the argmax");
    TU_CHECK(r.n_top == 5 && r.top[0].id == r.chosen.id, "top logprobs reported");
    sampler_free(s);

    tu_case("sampler/logit-bias-forces-and-bans");
    sampler_bias b[2] = {{argmax(l), -100.0f}, {3, 100.0f}};
    p.bias = b;
    p.n_bias = 2;
    s = sampler_create(&p, V, &err);
    TU_CHECK(sampler_sample(s, l, &r) == 3, "bias +100 must win");
    /* the reported logprobs are the raw distribution's, unaffected by bias */
    TU_CHECK(r.top[0].id == argmax(l), "logprobs must ignore the bias");
    sampler_free(s);

    tu_case("sampler/bias-out-of-range-refused");
    b[0].id = V;
    s = sampler_create(&p, V, &err);
    TU_CHECK(s == NULL && strstr(err.msg, "logit_bias"), "bad id accepted");

    tu_case("sampler/presence-and-frequency-penalty");
    p = sampler_defaults();
    p.temperature = 0;
    p.frequency_penalty = 2.0f;
    s = sampler_create(&p, V, &err);
    float flat[V];
    for (int i = 0; i < V; i++) flat[i] = 0;
    flat[10] = 3.0f;
    flat[11] = 2.5f;
    TU_CHECK(sampler_sample(s, flat, NULL) == 10, "before penalty");
    sampler_accept(s, 10);
    TU_CHECK(sampler_sample(s, flat, NULL) == 11, "frequency penalty must demote token 10");
    sampler_free(s);
    p.frequency_penalty = 0;
    p.repetition_penalty = 1.3f;
    s = sampler_create(&p, V, &err);
    sampler_accept(s, 10);
    TU_CHECK(sampler_sample(s, flat, NULL) == 11, "3/1.3 < 2.5: repetition penalty");
    sampler_free(s);
}

static void test_distribution(void) {
    chatd_error err = {{0}};
    float l[V];
    for (int i = 0; i < V; i++) l[i] = -30;
    l[0] = logf(0.5f);
    l[1] = logf(0.3f);
    l[2] = logf(0.2f);
    sampler_params p = sampler_defaults();
    p.seed = 1234;
    int counts[3] = {0};
    tu_case("sampler/temperature-1-frequencies");
    sampler *s = sampler_create(&p, V, &err);
    for (int i = 0; i < 20000; i++) {
        int32_t id = sampler_sample(s, l, NULL);
        if (id < 3) counts[id]++;
    }
    sampler_free(s);
    TU_CHECK(fabs(counts[0] / 20000.0 - 0.5) < 0.02 && fabs(counts[1] / 20000.0 - 0.3) < 0.02 &&
                 fabs(counts[2] / 20000.0 - 0.2) < 0.02,
             "frequencies %d %d %d", counts[0], counts[1], counts[2]);

    tu_case("sampler/top-p-cuts-the-tail");
    p.top_p = 0.75f; /* keeps 0.5 + 0.3 */
    s = sampler_create(&p, V, &err);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 5000; i++) counts[sampler_sample(s, l, NULL) % 3]++;
    sampler_free(s);
    TU_CHECK(counts[2] == 0 && counts[0] > 0 && counts[1] > 0, "top-p: %d %d %d", counts[0],
             counts[1], counts[2]);

    tu_case("sampler/top-k-1-is-greedy");
    p = sampler_defaults();
    p.top_k = 1;
    p.seed = 9;
    s = sampler_create(&p, V, &err);
    for (int i = 0; i < 100; i++) TU_CHECK(sampler_sample(s, l, NULL) == 0, "top-k 1");
    sampler_free(s);

    tu_case("sampler/min-p");
    p = sampler_defaults();
    p.min_p = 0.5f; /* keeps tokens with p >= 0.5 * 0.5 */
    s = sampler_create(&p, V, &err);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 2000; i++) counts[sampler_sample(s, l, NULL) % 3]++;
    sampler_free(s);
    TU_CHECK(counts[2] == 0 && counts[1] > 0, "min-p: %d %d %d", counts[0], counts[1], counts[2]);

    tu_case("sampler/same-seed-same-tokens");
    float l2[V];
    fill_logits(l2, 3);
    p = sampler_defaults();
    p.seed = 77;
    sampler *a = sampler_create(&p, V, &err), *b = sampler_create(&p, V, &err);
    for (int i = 0; i < 200; i++)
        TU_CHECK(sampler_sample(a, l2, NULL) == sampler_sample(b, l2, NULL),
                 "seeded run diverged at %d", i);
    sampler_free(a);
    sampler_free(b);

    tu_case("sampler/bad-parameters-refused");
    p = sampler_defaults();
    p.top_p = 0;
    TU_CHECK(sampler_create(&p, V, &err) == NULL, "top_p 0 accepted");
    p = sampler_defaults();
    p.top_logprobs = 21;
    TU_CHECK(sampler_create(&p, V, &err) == NULL, "top_logprobs 21 accepted");
}

static void test_kvcache(void) {
    chatd_error err = {{0}};
    kv_pool p;
    tu_case("kvcache/reserve-and-release");
    TU_CHECK(kv_pool_init(&p, KV_F16, 2, 64, 64, 10, &err) == 0, "%s", err.msg);
    kv_seq a = {0}, b = {0};
    TU_CHECK(kv_seq_reserve(&p, &a, 1, &err) == 0 && a.n_blocks == 1, "one position, one block");
    TU_CHECK(kv_seq_reserve(&p, &a, KV_BLOCK * 3, &err) == 0 && a.n_blocks == 3, "grows");
    TU_CHECK(kv_seq_reserve(&p, &b, KV_BLOCK * 7 + 1, &err) != 0 && strstr(err.msg, "full"),
             "over capacity must fail");
    TU_CHECK(b.n_blocks == 0 && kv_pool_used(&p) == 3, "a failed reserve takes nothing");
    TU_CHECK(kv_seq_reserve(&p, &b, KV_BLOCK * 7, &err) == 0 && kv_pool_used(&p) == 10, "fills");
    /* distinct blocks, distinct addresses */
    TU_CHECK(kv_k(&p, &a, 1, 0) != kv_k(&p, &b, 1, 0) && kv_k(&p, &a, 0, 17) != kv_k(&p, &a, 1, 17),
             "addresses");
    kv_seq_release(&p, &a);
    TU_CHECK(kv_pool_used(&p) == 7 && a.n_blocks == 0, "release returns blocks at once");
    kv_seq_release(&p, &b);
    TU_CHECK(kv_pool_used(&p) == 0, "all back");
    kv_seq_free(&a);
    kv_seq_free(&b);
    kv_pool_free(&p);
}

typedef struct pool_test {
    atomic_int counter;
    int per_thread[64];
    long long sums[64];
} pool_test;

static void pool_job(void *ctx, pool_task *t) {
    pool_test *pt = ctx;
    for (int round = 0; round < 100; round++) {
        atomic_fetch_add(&pt->counter, 1);
        pool_barrier(t);
        /* after the barrier every thread has counted this round */
        if (atomic_load(&pt->counter) < (round + 1) * t->nth) pt->per_thread[t->ith] = -1;
        pool_barrier(t);
    }
    long long b, e;
    pool_split(t, 1000, &b, &e);
    for (long long i = b; i < e; i++) pt->sums[t->ith] += i;
}

static void test_pool(void) {
    chatd_error err = {{0}};
    for (int n = 1; n <= 4; n++) {
        tu_case("pool/barrier-and-split/%d-threads", n);
        pool *p = pool_create(n, &err);
        TU_CHECK(p != NULL, "%s", err.msg);
        if (!p) continue;
        for (int job = 0; job < 20; job++) {
            pool_test pt;
            memset(&pt, 0, sizeof pt);
            pool_run(p, pool_job, &pt);
            long long total = 0;
            for (int i = 0; i < n; i++) {
                TU_CHECK(pt.per_thread[i] == 0, "barrier let thread %d through early", i);
                total += pt.sums[i];
            }
            TU_CHECK(total == 999 * 1000 / 2 && atomic_load(&pt.counter) == 100 * n,
                     "split covers every item once");
        }
        pool_destroy(p);
    }
}

int main(void) {
    test_logprobs();
    test_greedy_and_bias();
    test_distribution();
    test_kvcache();
    test_pool();
    return tu_finish();
}
