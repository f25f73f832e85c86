/* sampler.h - turns one sequence's logits into its next token.
 *
 * Applies logit_bias, repetition / presence / frequency penalties, then greedy choice or
 * top-k, top-p and min-p filtering (on the untempered distribution, as llama.cpp orders
 * them) followed by temperature and a draw from the sequence's own seeded generator, so
 * a request with a seed gives the same tokens whatever else shares its batch. It also
 * reports the chosen token's log-probability and the top-N alternatives from the raw
 * distribution (before bias, penalties, temperature and filters), as OpenAI reports them. */
#ifndef CHATD_SAMPLER_H
#define CHATD_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/error.h"

#define SAMPLER_MAX_TOP 20

typedef struct sampler_bias {
    int32_t id;
    float bias; /* added to the logit; -100 bans, +100 forces in practice */
} sampler_bias;

typedef struct sampler_params {
    float temperature;       /* 0 = greedy */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* 1 = off */
    float min_p;             /* 0 = off */
    float presence_penalty;  /* OpenAI: subtracted once from every token seen */
    float frequency_penalty; /* OpenAI: subtracted per occurrence */
    float
        repetition_penalty; /* CTRL-style: 1 = off; positive logits divided, negative multiplied */
    uint64_t seed;
    const sampler_bias *bias; /* [n_bias], copied at create */
    size_t n_bias;
    int top_logprobs; /* alternatives to report, 0 to SAMPLER_MAX_TOP */
} sampler_params;

/* The default parameters: temperature 1, no filters, no penalties, seed 0. */
sampler_params sampler_defaults(void);

typedef struct sampler_token {
    int32_t id;
    float logprob; /* log-probability under the raw distribution */
} sampler_token;

/* What one sampling step chose and reports. */
typedef struct sampler_result {
    sampler_token chosen;
    int n_top;                          /* = top_logprobs */
    sampler_token top[SAMPLER_MAX_TOP]; /* highest raw log-probabilities, descending */
} sampler_result;

typedef struct sampler sampler;

/* Creates a sampler for a vocabulary of n_vocab tokens; NULL with a message when a
 * parameter is out of range. */
sampler *sampler_create(const sampler_params *p, int64_t n_vocab, chatd_error *err);

/* Frees the sampler; NULL is allowed. */
void sampler_free(sampler *s);

/* Records a token as seen, for the penalties. */
void sampler_accept(sampler *s, int32_t id);

/* Chooses the next token from logits ([n_vocab], not modified) and fills res. */
int32_t sampler_sample(sampler *s, const float *logits, sampler_result *res);

/* The same, choosing only among the tokens whose bit is set in mask (one bit per token;
 * constrained decoding); -1 when the mask allows none. The reported log-probabilities
 * stay those of the raw distribution. */
int32_t sampler_sample_masked(sampler *s, const float *logits, const uint32_t *mask,
                              sampler_result *res);

/* Log-probabilities of the raw distribution: the top n ids (descending) and, when want
 * is >= 0, the log-probability of id want. Used by sampler_sample and by scoring. */
void sampler_top_logprobs(const float *logits, int64_t n_vocab, int n, sampler_token *top,
                          int32_t want, float *want_logprob);

#endif
