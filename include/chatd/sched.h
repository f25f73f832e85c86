/* sched.h - the scheduler: continuous batching of many requests over one engine.
 *
 * One scheduler thread owns the running batch, the KV pool and the compute threads.
 * Requests wait in a bounded queue and join the batch at step boundaries; long prompts
 * are fed in chunks interleaved with the decode steps of running sequences. Each step
 * every running sequence advances by a prompt chunk or one token; sampled tokens are
 * detokenized (never splitting a UTF-8 character), checked against stop strings and
 * end-of-generation tokens, and delivered to the request's own event queue, which the
 * HTTP side drains. Nothing here touches a socket or JSON.
 *
 * Lifetime: sched_submit() returns a sched_req the caller owns a reference to; the
 * scheduler holds another until the request finishes. sched_req_release() drops the
 * caller's; sched_cancel() asks the scheduler to stop it at the next step boundary. */
#ifndef CHATD_SCHED_H
#define CHATD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chatd/constrain.h"
#include "chatd/engine.h"
#include "chatd/sampler.h"

#define SCHED_MAX_STOP 4

typedef struct sched_options {
    int64_t max_running; /* sequences in the running batch */
    int64_t queue_size;  /* requests that may wait; more are refused */
    int64_t chunk;       /* prompt tokens a sequence feeds per step */
    int64_t step_tokens; /* token budget of one step (<= engine max_batch) */
    int64_t ctx_size;    /* positions per sequence */
    double deadline_s;   /* per-request time limit (0 = none) */
} sched_options;

typedef enum sched_finish {
    SCHED_FINISH_NONE = 0,
    SCHED_FINISH_STOP,      /* end-of-generation token, stop string or completed constraint */
    SCHED_FINISH_LENGTH,    /* max_tokens or the context limit */
    SCHED_FINISH_CANCELLED, /* cancelled by the client */
    SCHED_FINISH_DEADLINE,  /* the per-request deadline passed */
    SCHED_FINISH_ERROR,     /* an engine error (message in the event) */
    SCHED_FINISH_SHUTDOWN   /* the server is stopping */
} sched_finish;

/* What the caller asks for. The scheduler copies everything at submit. */
typedef struct sched_params {
    const int32_t *prompt; /* token ids, already templated and tokenized */
    size_t n_prompt;
    int64_t max_tokens; /* 0 = until the context is full */
    sampler_params sampling;
    const char *stop[SCHED_MAX_STOP]; /* stop strings (NULL-terminated list, may be empty) */
    bool ignore_eog;
    cons_program *constraint; /* or NULL: the output must match it (the scheduler takes its
                                 own reference; the caller keeps and releases its own) */
} sched_params;

/* One event on a request's queue: text released by the stop-string holdback, the
 * tokens behind it, and at the end the finish reason. */
typedef struct sched_event {
    char *text; /* newly released UTF-8 text (owned by the event), may be "" */
    size_t text_len;
    int n_tokens;           /* tokens this event accounts for */
    sampler_result *tokens; /* [n_tokens] ids and log-probabilities */
    sched_finish finish;    /* set on the last event */
    char error[160];        /* with SCHED_FINISH_ERROR */
} sched_event;

typedef struct sched sched;
typedef struct sched_req sched_req;

/* Usage counters of a finished or running request. */
typedef struct sched_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    double queued_s; /* from submit to joining the batch */
    double ttft_s;   /* from submit to the first token */
} sched_usage;

/* Live counters for health checks and tests. */
typedef struct sched_stats {
    int64_t queued;
    int64_t running;
    int64_t kv_blocks_used;
    int64_t kv_blocks_total;
    int64_t completed;
    int64_t cancelled;
} sched_stats;

/* Starts the scheduler thread over an open engine (not owned); NULL with a message. */
sched *sched_start(engine *e, const sched_options *o, chatd_error *err);

/* Stops accepting requests, lets running ones finish up to grace_s seconds, ends the
 * rest with SCHED_FINISH_SHUTDOWN and joins the thread. sched_cancel stays safe to call
 * until sched_free. */
void sched_stop(sched *s, double grace_s);

/* Frees a stopped scheduler (after every caller is done with its requests). */
void sched_free(sched *s);

/* Queues a request; NULL with a message when the queue is full (*full = true) or the
 * parameters are invalid. */
sched_req *sched_submit(sched *s, const sched_params *p, bool *full, chatd_error *err);

/* Waits up to timeout_s for the next event; 1 = event filled, 0 = timed out, -1 = the
 * request has ended and every event has been taken. */
int sched_next(sched_req *r, sched_event *ev, double timeout_s);

/* Frees what an event owns. */
void sched_event_free(sched_event *ev);

/* Asks the scheduler to end the request at the next step boundary. */
void sched_cancel(sched_req *r);

/* Usage counters of the request so far. */
sched_usage sched_req_usage(sched_req *r);

/* Drops the caller's reference (after a cancel, or once -1 came back). */
void sched_req_release(sched_req *r);

/* Current counters. */
sched_stats sched_get_stats(sched *s);

/* Most tokens a sequence may hold. */
int64_t sched_ctx_size(const sched *s);

#endif
