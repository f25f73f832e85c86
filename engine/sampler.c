/* sampler.c - the sampling chain and log-probabilities (see include/chatd/sampler.h). */
#include "chatd/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct sampler_cand {
    int32_t id;
    float logit;
} sampler_cand;

struct sampler {
    sampler_params p;
    sampler_bias *bias; /* own copy */
    int64_t n_vocab;
    int32_t *counts;     /* [n_vocab] occurrences of each token seen */
    sampler_cand *cands; /* [n_vocab] scratch */
    uint64_t rng[4];     /* xoshiro256** state */
};

sampler_params sampler_defaults(void) {
    sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    return p;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* A uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t *s) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

sampler *sampler_create(const sampler_params *p, int64_t n_vocab, chatd_error *err) {
    if (!(p->temperature >= 0) || !(p->top_p > 0 && p->top_p <= 1) ||
        !(p->min_p >= 0 && p->min_p <= 1) || p->top_k < 0 || !(p->repetition_penalty > 0) ||
        p->top_logprobs < 0 || p->top_logprobs > SAMPLER_MAX_TOP || n_vocab < 1) {
        chatd_errorf(err, "sampling parameters out of range");
        return NULL;
    }
    for (size_t i = 0; i < p->n_bias; i++)
        if (p->bias[i].id < 0 || p->bias[i].id >= n_vocab) {
            chatd_errorf(err, "logit_bias token id %d is outside the vocabulary", p->bias[i].id);
            return NULL;
        }
    sampler *s = calloc(1, sizeof *s);
    if (!s) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    s->bias = p->n_bias ? malloc(p->n_bias * sizeof *s->bias) : NULL;
    if (!s->counts || !s->cands || (p->n_bias && !s->bias)) {
        sampler_free(s);
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    if (p->n_bias) memcpy(s->bias, p->bias, p->n_bias * sizeof *s->bias);
    s->p.bias = s->bias;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    return s;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->counts);
    free(s->cands);
    free(s->bias);
    free(s);
}

void sampler_accept(sampler *s, int32_t id) {
    if (id >= 0 && id < s->n_vocab) s->counts[id]++;
}

void sampler_top_logprobs(const float *logits, int64_t n_vocab, int n, sampler_token *top,
                          int32_t want, float *want_logprob) {
    if (n_vocab <= 0) return;
    float mx = -INFINITY;
    for (int64_t i = 0; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int64_t i = 0; i < n_vocab; i++) sum += exp((double)(logits[i] - mx));
    /* sum >= 1: the largest logit contributes exp(0) */
    float lse = mx + (float)log(sum > 1 ? sum : 1);
    /* insertion into a short descending list: O(n_vocab) for the usual n <= 20 */
    int have = 0;
    for (int64_t i = 0; i < n_vocab && n > 0; i++) {
        float l = logits[i];
        if (have == n && l <= top[n - 1].logprob) continue;
        int j = have < n ? have++ : n - 1;
        while (j > 0 && top[j - 1].logprob < l) {
            top[j] = top[j - 1];
            j--;
        }
        top[j].id = (int32_t)i;
        top[j].logprob = l;
    }
    for (int j = 0; j < have; j++) top[j].logprob -= lse;
    if (want >= 0 && want_logprob) *want_logprob = logits[want] - lse;
}

static int sampler_cand_desc(const void *a, const void *b) {
    float x = ((const sampler_cand *)a)->logit, y = ((const sampler_cand *)b)->logit;
    if (x != y) return x < y ? 1 : -1;
    int32_t i = ((const sampler_cand *)a)->id, j = ((const sampler_cand *)b)->id;
    return (i > j) - (i < j);
}

/* Moves the k largest candidates to the front of c[0..n), sorted descending. */
static void sampler_partial_sort(sampler_cand *c, int64_t n, int64_t k) {
    if (k >= n) {
        qsort(c, (size_t)n, sizeof *c, sampler_cand_desc);
        return;
    }
    /* quickselect on the k-th largest, then sort the front */
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        sampler_cand pivot = c[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (sampler_cand_desc(&c[i], &pivot) < 0) i++;
            while (sampler_cand_desc(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                sampler_cand t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
    qsort(c, (size_t)k, sizeof *c, sampler_cand_desc);
}

int32_t sampler_sample(sampler *s, const float *logits, sampler_result *res) {
    return sampler_sample_masked(s, logits, NULL, res);
}

int32_t sampler_sample_masked(sampler *s, const float *logits, const uint32_t *mask,
                              sampler_result *res) {
    const sampler_params *p = &s->p;
    int64_t n = s->n_vocab;
    sampler_cand *c = s->cands;
    bool any = mask == NULL;
    for (int64_t i = 0; i < n; i++) {
        float l = logits[i];
        if (mask && !(mask[i / 32] >> (i % 32) & 1)) {
            c[i].id = (int32_t)i;
            c[i].logit = -INFINITY; /* never chosen: exp() of it is 0 in every filter */
            continue;
        }
        any = true;
        int32_t cnt = s->counts[i];
        if (cnt > 0) {
            if (p->repetition_penalty != 1.0f)
                l = l > 0 ? l / p->repetition_penalty : l * p->repetition_penalty;
            l -= p->presence_penalty + p->frequency_penalty * (float)cnt;
        }
        c[i].id = (int32_t)i;
        c[i].logit = l;
    }
    if (!any) return -1;
    for (size_t i = 0; i < p->n_bias; i++) c[p->bias[i].id].logit += p->bias[i].bias;

    int32_t chosen;
    if (p->temperature <= 0) {
        int64_t best = 0;
        for (int64_t i = 1; i < n; i++)
            if (c[i].logit > c[best].logit) best = i;
        chosen = (int32_t)best;
    } else {
        /* the candidates that survive top-k, top-p and min-p, largest first */
        int64_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
        bool filters = k < n || p->top_p < 1 || p->min_p > 0;
        int64_t m = k < 256 ? k : 256;
        for (; filters;) {
            sampler_partial_sort(c, n, m);
            if (m >= k) break;
            /* is the prefix enough for top-p and min-p? */
            double sum = 0, head = 0;
            float mx = c[0].logit;
            for (int64_t i = 0; i < n; i++) sum += exp((double)(c[i].logit - mx));
            for (int64_t i = 0; i < m; i++) head += exp((double)(c[i].logit - mx));
            bool enough_p = p->top_p < 1 && head / sum >= p->top_p;
            bool enough_min = p->min_p > 0 && exp((double)(c[m - 1].logit - mx)) < p->min_p;
            if (enough_p || enough_min) {
                k = m;
                break;
            }
            m = m * 4 < k ? m * 4 : k;
        }
        float mx = c[0].logit;
        if (!filters) /* unsorted: the largest logit still anchors the exponentials */
            for (int64_t i = 1; i < n; i++)
                if (c[i].logit > mx) mx = c[i].logit;
        double sum = 0;
        for (int64_t i = 0; i < k; i++) sum += exp((double)(c[i].logit - mx));
        int64_t keep = k;
        if (p->top_p < 1) {
            double cum = 0;
            for (int64_t i = 0; i < k; i++) {
                cum += exp((double)(c[i].logit - mx)) / sum;
                if (cum >= p->top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
        if (p->min_p > 0) {
            int64_t i = 1;
            while (i < keep && exp((double)(c[i].logit - mx)) >= p->min_p) i++;
            keep = i;
        }
        /* temperature, then one draw */
        double total = 0;
        for (int64_t i = 0; i < keep; i++) total += exp((double)(c[i].logit - mx) / p->temperature);
        double u = rng_uniform(s->rng) * total, acc = 0;
        chosen = c[0].id; /* replaced below; rounding falls back to the last possible one */
        for (int64_t i = 0; i < keep; i++) {
            double w = exp((double)(c[i].logit - mx) / p->temperature);
            if (w > 0) chosen = c[i].id;
            acc += w;
            if (u < acc) break;
        }
    }
    if (res) {
        res->n_top = p->top_logprobs;
        res->chosen.id = chosen;
        sampler_top_logprobs(logits, n, p->top_logprobs, res->top, chosen, &res->chosen.logprob);
    }
    return chosen;
}
