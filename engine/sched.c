/* sched.c - continuous batching (see include/chatd/sched.h).
 *
 * Locks: s->mu guards the queue, the running list's membership and the counters; each
 * request's r->mu guards its event queue and usage. The scheduler thread alone touches
 * the engine, the KV pool and a running request's decoding state, so those need no lock.
 * KV memory is promised before a request joins the batch (its prompt plus max_tokens,
 * capped by the context), so a running sequence can never run out of blocks; blocks are
 * only taken as positions are actually filled. */
#include "chatd/sched.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sched_evnode {
    sched_event ev;
    struct sched_evnode *next;
} sched_evnode;

struct sched_req {
    atomic_int refs;
    atomic_bool cancel;
    sched *s;
    struct sched_req *next; /* in the queue */
    /* parameters (owned copies) */
    int32_t *prompt;
    int64_t n_prompt;
    int64_t max_tokens;
    char *stop[SCHED_MAX_STOP];
    int n_stop;
    size_t stop_max_len;
    bool ignore_eog;
    sampler *smp;
    cons_matcher *cons; /* the output constraint, or NULL */
    uint32_t *mask;     /* its allowed tokens this step */
    /* decoding state: the scheduler thread only */
    kv_seq kv;
    int64_t fed;   /* prompt tokens fed */
    int64_t n_gen; /* tokens generated */
    int32_t last;  /* last sampled token, fed next step */
    int64_t claim; /* KV blocks promised */
    tok_stream stream;
    tok_buf held; /* decoded text not yet released (could start a stop string) */
    double t_submit, t_admit, t_first;
    /* events: r->mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sched_evnode *head, *tail;
    bool ended; /* the final event has been queued */
    sched_usage usage;
};

struct sched {
    engine *e;
    sched_options o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    double grace_until;
    sched_req *q_head, *q_tail;
    int64_t n_queued;
    sched_req **running; /* [max_running] */
    int64_t n_running;
    int64_t claimed; /* KV blocks promised to running requests */
    int64_t completed, cancelled;
    int64_t kv_used; /* snapshot for stats */
    /* step buffers */
    int32_t *tok;
    int64_t *pos;
    kv_seq **seqs;
    bool *want;
    sched_req **owner;
    float *logits; /* [max_running][n_vocab] */
};

static double sched_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t sched_blocks(int64_t positions) {
    return (positions + KV_BLOCK - 1) / KV_BLOCK;
}

static void sched_req_free(sched_req *r) {
    sched_evnode *n = r->head;
    while (n) {
        sched_evnode *next = n->next;
        sched_event_free(&n->ev);
        free(n);
        n = next;
    }
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->prompt);
    sampler_free(r->smp);
    cons_matcher_free(r->cons);
    free(r->mask);
    tok_buf_free(&r->held);
    kv_seq_free(&r->kv);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void sched_req_release(sched_req *r) {
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) sched_req_free(r);
}

void sched_event_free(sched_event *ev) {
    free(ev->text);
    free(ev->tokens);
    memset(ev, 0, sizeof *ev);
}

/* Queues an event on r (taking ownership of its buffers). */
static void sched_push(sched_req *r, sched_event *ev) {
    sched_evnode *n = malloc(sizeof *n);
    pthread_mutex_lock(&r->mu);
    if (n) {
        n->ev = *ev;
        n->next = NULL;
        if (r->tail)
            r->tail->next = n;
        else
            r->head = n;
        r->tail = n;
    } else {
        /* out of memory: the text is lost, but a final event still ends the request */
        sched_event_free(ev);
    }
    if (ev->finish != SCHED_FINISH_NONE) r->ended = true;
    r->usage.completion_tokens = r->n_gen;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int sched_next(sched_req *r, sched_event *ev, double timeout_s) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double secs = floor(timeout_s);
    until.tv_sec += (time_t)secs;
    until.tv_nsec += (long)((timeout_s - secs) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->head && !r->ended) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) break;
    }
    int rc;
    if (r->head) {
        sched_evnode *n = r->head;
        r->head = n->next;
        if (!r->head) r->tail = NULL;
        *ev = n->ev;
        free(n);
        rc = 1;
    } else {
        rc = r->ended ? -1 : 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

sched_usage sched_req_usage(sched_req *r) {
    pthread_mutex_lock(&r->mu);
    sched_usage u = r->usage;
    pthread_mutex_unlock(&r->mu);
    return u;
}

void sched_cancel(sched_req *r) {
    atomic_store(&r->cancel, true);
    sched *s = r->s;
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Ends a request: flushes its text, queues the final event, returns its KV blocks and
 * drops the scheduler's reference. Called by the scheduler thread with s->mu NOT held. */
static void sched_finish_req(sched *s, sched_req *r, sched_finish why, const char *error) {
    tok_buf rest = {0};
    if (why == SCHED_FINISH_LENGTH || why == SCHED_FINISH_STOP || why == SCHED_FINISH_CANCELLED ||
        why == SCHED_FINISH_DEADLINE || why == SCHED_FINISH_SHUTDOWN) {
        /* an incomplete character at the end becomes U+FFFD; held text is released
         * unless a stop string matched (then held was already trimmed) */
        tok_stream_flush(&r->stream, &r->held, NULL);
        if (r->held.len) tok_buf_append(&rest, r->held.data, r->held.len, NULL);
    }
    sched_event ev = {0};
    ev.finish = why;
    if (error) snprintf(ev.error, sizeof ev.error, "%s", error);
    ev.text = rest.data ? rest.data : calloc(1, 1);
    ev.text_len = rest.len;
    sched_push(r, &ev);
    kv_seq_release(&s->e->kv, &r->kv);
    pthread_mutex_lock(&s->mu);
    s->kv_used = kv_pool_used(&s->e->kv);
    s->claimed -= r->claim;
    r->claim = 0;
    if (why == SCHED_FINISH_CANCELLED)
        s->cancelled++;
    else
        s->completed++;
    pthread_mutex_unlock(&s->mu);
    sched_req_release(r);
}

/* Length of the longest suffix of text that is a proper prefix of a stop string. */
static size_t sched_stop_prefix(const sched_req *r, const char *text, size_t len) {
    size_t best = 0;
    for (int i = 0; i < r->n_stop; i++) {
        size_t sl = strlen(r->stop[i]);
        for (size_t k = sl - 1 < len ? sl - 1 : len; k > best; k--)
            if (memcmp(text + len - k, r->stop[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* Feeds a sampled token through detokenization and stop strings and queues its event;
 * complete = the output constraint allows nothing more. True when the request is
 * finished (and already ended). */
static bool sched_emit(sched *s, sched_req *r, const sampler_result *res, bool complete) {
    chatd_error err = {{0}};
    int32_t id = res->chosen.id;
    sched_event ev = {0};
    ev.n_tokens = 1;
    ev.tokens = malloc(sizeof *ev.tokens);
    if (ev.tokens) *ev.tokens = *res;
    r->n_gen++;
    if (r->n_gen == 1) {
        r->t_first = sched_now();
        pthread_mutex_lock(&r->mu);
        r->usage.ttft_s = r->t_first - r->t_submit;
        pthread_mutex_unlock(&r->mu);
    }
    bool eog = !r->ignore_eog && tok_is_eog(s->e->tok, id);
    if (eog) {
        free(ev.tokens); /* the end-of-generation token is not part of the reply */
        r->n_gen--;
        sched_finish_req(s, r, SCHED_FINISH_STOP, NULL);
        return true;
    }
    size_t before = r->held.len;
    if (tok_stream_push(&r->stream, id, &r->held, &err) != 0) {
        free(ev.tokens);
        sched_finish_req(s, r, SCHED_FINISH_ERROR, err.msg);
        return true;
    }
    /* a stop string anywhere in the held text (it may have begun in an earlier token) */
    for (int i = 0; i < r->n_stop; i++) {
        size_t sl = strlen(r->stop[i]);
        size_t from = before >= sl ? before - sl + 1 : 0;
        char *hit = NULL;
        if (r->held.len >= sl)
            hit = memmem(r->held.data + from, r->held.len - from, r->stop[i], sl);
        if (hit) {
            size_t keep = (size_t)(hit - r->held.data);
            ev.text = malloc(keep + 1);
            if (ev.text) {
                memcpy(ev.text, r->held.data, keep);
                ev.text[keep] = 0;
                ev.text_len = keep;
            }
            r->held.len = 0;
            sched_push(r, &ev);
            r->stream.n_held = 0; /* the rest is cut off */
            sched_finish_req(s, r, SCHED_FINISH_STOP, NULL);
            return true;
        }
    }
    size_t hold = sched_stop_prefix(r, r->held.data ? r->held.data : "", r->held.len);
    size_t out = r->held.len - hold;
    ev.text = malloc(out + 1);
    if (ev.text) {
        if (out) memcpy(ev.text, r->held.data, out);
        ev.text[out] = 0;
        ev.text_len = out;
        memmove(r->held.data, r->held.data + out, hold);
        r->held.len = hold;
        if (r->held.data) r->held.data[hold] = 0;
    }
    sched_push(r, &ev);
    if (complete) {
        sched_finish_req(s, r, SCHED_FINISH_STOP, NULL);
        return true;
    }
    int64_t pos_next = r->n_prompt + r->n_gen; /* position the token would be fed at */
    if ((r->max_tokens > 0 && r->n_gen >= r->max_tokens) || pos_next >= s->o.ctx_size) {
        sched_finish_req(s, r, SCHED_FINISH_LENGTH, NULL);
        return true;
    }
    return false;
}

/* Removes running[i] (order is not kept). */
static void sched_drop_running(sched *s, int64_t i) {
    pthread_mutex_lock(&s->mu);
    s->running[i] = s->running[--s->n_running];
    pthread_mutex_unlock(&s->mu);
}

/* Admits queued requests while there is room; ends cancelled queued ones. s->mu held. */
static void sched_admit(sched *s, sched_req **ended, int *n_ended) {
    int64_t total = s->e->kv.n_blocks;
    sched_req **pp = &s->q_head, *prev = NULL;
    while (*pp) {
        sched_req *r = *pp;
        bool cancelled = atomic_load(&r->cancel) ||
                         (s->o.deadline_s > 0 && sched_now() - r->t_submit > s->o.deadline_s);
        if (!cancelled && s->n_running >= s->o.max_running) break;
        if (!cancelled) {
            int64_t want = r->max_tokens > 0 ? r->n_prompt + r->max_tokens : s->o.ctx_size;
            if (want > s->o.ctx_size) want = s->o.ctx_size;
            int64_t claim = sched_blocks(want);
            if (s->claimed + claim > total) break; /* wait for memory, first come first served */
            r->claim = claim;
            s->claimed += claim;
            r->t_admit = sched_now();
            s->running[s->n_running++] = r;
        } else if (*n_ended < 64) {
            ended[(*n_ended)++] = r;
        } else {
            break;
        }
        *pp = r->next;
        if (s->q_tail == r) s->q_tail = prev;
        s->n_queued--;
        r->next = NULL;
    }
}

/* One step: a batch over every running sequence, then sampling. */
static void sched_step(sched *s) {
    engine *e = s->e;
    int64_t V = e->m->hp.n_vocab, nb = 0, budget = s->o.step_tokens;
    double now = sched_now();
    chatd_error err = {{0}};
    /* cancellations and deadlines */
    for (int64_t i = 0; i < s->n_running;) {
        sched_req *r = s->running[i];
        sched_finish why = SCHED_FINISH_NONE;
        if (atomic_load(&r->cancel))
            why = SCHED_FINISH_CANCELLED;
        else if (s->o.deadline_s > 0 && now - r->t_submit > s->o.deadline_s)
            why = SCHED_FINISH_DEADLINE;
        else if (s->stopping && now > s->grace_until)
            why = SCHED_FINISH_SHUTDOWN;
        if (why != SCHED_FINISH_NONE) {
            sched_drop_running(s, i);
            sched_finish_req(s, r, why, NULL);
            continue;
        }
        i++;
    }
    /* decode tokens first (one each, cheap), then prompt chunks in the remaining budget */
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < s->n_running && nb < budget; i++) {
            sched_req *r = s->running[i];
            bool decoding = r->fed == r->n_prompt;
            if (decoding != (pass == 0)) continue;
            int64_t n = decoding ? 1 : r->n_prompt - r->fed;
            if (n > s->o.chunk) n = s->o.chunk;
            if (n > budget - nb) n = budget - nb;
            int64_t start = decoding ? r->n_prompt + r->n_gen - 1 : r->fed;
            if (kv_seq_reserve(&e->kv, &r->kv, start + n, &err) != 0)
                continue; /* cannot happen: claimed */
            for (int64_t j = 0; j < n; j++) {
                s->tok[nb] = decoding ? r->last : r->prompt[r->fed + j];
                s->pos[nb] = start + j;
                s->seqs[nb] = &r->kv;
                s->want[nb] = decoding || r->fed + j == r->n_prompt - 1;
                s->owner[nb] = r;
                nb++;
            }
            if (!decoding) r->fed += n;
        }
    }
    if (nb == 0) return;
    fwd_batch b = {.n = nb, .token = s->tok, .pos = s->pos, .seq = s->seqs, .logits = s->want};
    if (fwd_eval(e->fwd, &b, s->logits, &err) != 0) {
        for (int64_t i = s->n_running - 1; i >= 0; i--) {
            sched_req *r = s->running[i];
            sched_drop_running(s, i);
            sched_finish_req(s, r, SCHED_FINISH_ERROR, err.msg);
        }
        return;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < nb; i++) {
        if (!s->want[i]) continue;
        sched_req *r = s->owner[i];
        sampler_result res;
        const float *logits = s->logits + (size_t)k * V;
        k++;
        int32_t id;
        bool done = false;
        const char *fail = NULL;
        if (r->cons) {
            /* only tokens that keep the output on a path to a complete match, within what
             * may still be generated */
            int64_t left = s->o.ctx_size - (r->n_prompt + r->n_gen);
            if (r->max_tokens > 0 && r->max_tokens - r->n_gen < left)
                left = r->max_tokens - r->n_gen;
            id = -1;
            if (cons_allowed(r->cons, left, r->mask) <= 0)
                fail = "no token can continue the constrained output";
            else if ((id = sampler_sample_masked(r->smp, logits, r->mask, &res)) < 0 ||
                     cons_advance(r->cons, id) != 0)
                fail = "the sampler chose a token the constraint refuses";
            else
                done = cons_finished(r->cons);
        } else {
            id = sampler_sample(r->smp, logits, &res);
        }
        bool ended;
        if (fail) {
            sched_finish_req(s, r, SCHED_FINISH_ERROR, fail);
            ended = true;
        } else {
            sampler_accept(r->smp, id);
            r->last = id;
            ended = sched_emit(s, r, &res, done);
        }
        if (ended) {
            for (int64_t j = 0; j < s->n_running; j++)
                if (s->running[j] == r) {
                    sched_drop_running(s, j);
                    break;
                }
        }
    }
    pthread_mutex_lock(&s->mu);
    s->kv_used = kv_pool_used(&e->kv);
    pthread_mutex_unlock(&s->mu);
}

static void *sched_main(void *arg) {
    sched *s = arg;
    for (;;) {
        sched_req *ended[64];
        int n_ended = 0;
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {
            /* no new work: every queued request ends now */
            while (s->q_head && n_ended < 64) {
                sched_req *r = s->q_head;
                s->q_head = r->next;
                s->n_queued--;
                ended[n_ended++] = r;
            }
            if (!s->q_head) s->q_tail = NULL;
        } else {
            sched_admit(s, ended, &n_ended);
        }
        bool idle = s->n_running == 0 && n_ended == 0;
        if (idle && s->stopping && !s->q_head) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        if (idle) {
            pthread_cond_wait(&s->cv, &s->mu);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < n_ended; i++)
            sched_finish_req(s, ended[i],
                             s->stopping                      ? SCHED_FINISH_SHUTDOWN
                             : atomic_load(&ended[i]->cancel) ? SCHED_FINISH_CANCELLED
                                                              : SCHED_FINISH_DEADLINE,
                             NULL);
        sched_step(s);
    }
    return NULL;
}

/* Frees the step buffers and the scheduler itself. */
static void sched_free_buffers(sched *s) {
    free(s->running);
    free(s->tok);
    free(s->pos);
    free(s->seqs);
    free(s->want);
    free(s->owner);
    free(s->logits);
    free(s);
}

sched *sched_start(engine *e, const sched_options *o, chatd_error *err) {
    sched *s = calloc(1, sizeof *s);
    if (!s) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    s->e = e;
    s->o = *o;
    if (s->o.max_running < 1) s->o.max_running = 1;
    if (s->o.queue_size < 0) s->o.queue_size = 0;
    if (s->o.step_tokens < 1 || s->o.step_tokens > e->o.max_batch)
        s->o.step_tokens = e->o.max_batch;
    if (s->o.chunk < 1 || s->o.chunk > s->o.step_tokens) s->o.chunk = s->o.step_tokens;
    if (s->o.ctx_size < 1 || s->o.ctx_size > e->o.max_ctx) s->o.ctx_size = e->o.max_ctx;
    if (s->o.step_tokens < s->o.max_running) s->o.max_running = s->o.step_tokens;
    int64_t B = s->o.step_tokens, V = e->m->hp.n_vocab;
    s->running = calloc((size_t)s->o.max_running, sizeof *s->running);
    s->tok = calloc((size_t)B, sizeof *s->tok);
    s->pos = calloc((size_t)B, sizeof *s->pos);
    s->seqs = calloc((size_t)B, sizeof *s->seqs);
    s->want = calloc((size_t)B, sizeof *s->want);
    s->owner = calloc((size_t)B, sizeof *s->owner);
    /* at most one wanted row per running sequence per step */
    s->logits = malloc((size_t)s->o.max_running * (size_t)V * sizeof *s->logits);
    if (!s->running || !s->tok || !s->pos || !s->seqs || !s->want || !s->owner || !s->logits) {
        chatd_errorf(err, "out of memory for the scheduler");
        goto fail;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        chatd_errorf(err, "cannot start the scheduler thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        goto fail;
    }
    return s;
fail:
    sched_free_buffers(s);
    return NULL;
}

void sched_stop(sched *s, double grace_s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    s->grace_until = sched_now() + grace_s;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
}

void sched_free(sched *s) {
    if (!s) return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    sched_free_buffers(s);
}

sched_req *sched_submit(sched *s, const sched_params *p, bool *full, chatd_error *err) {
    *full = false;
    if (p->n_prompt == 0) {
        chatd_errorf(err, "the prompt is empty");
        return NULL;
    }
    if ((int64_t)p->n_prompt >= s->o.ctx_size) {
        chatd_errorf(err, "the prompt has %zu tokens; the context holds %lld", p->n_prompt,
                     (long long)s->o.ctx_size);
        return NULL;
    }
    if (p->max_tokens < 0 || (int64_t)p->n_prompt + p->max_tokens > s->o.ctx_size) {
        chatd_errorf(err, "%zu prompt tokens and %lld more exceed the context of %lld", p->n_prompt,
                     (long long)p->max_tokens, (long long)s->o.ctx_size);
        return NULL;
    }
    if (sched_blocks(s->o.ctx_size) > s->e->kv.n_blocks) {
        /* could never be admitted if it needs the whole context */
        int64_t want = p->max_tokens ? (int64_t)p->n_prompt + p->max_tokens : s->o.ctx_size;
        if (sched_blocks(want) > s->e->kv.n_blocks) {
            chatd_errorf(err, "the request needs more KV memory than the server has");
            return NULL;
        }
    }
    sched_req *r = calloc(1, sizeof *r);
    if (!r) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    atomic_init(&r->refs, 2);
    atomic_init(&r->cancel, false);
    r->s = s;
    r->n_prompt = (int64_t)p->n_prompt;
    r->max_tokens = p->max_tokens;
    r->ignore_eog = p->ignore_eog;
    r->prompt = malloc(p->n_prompt * sizeof *r->prompt);
    r->smp = sampler_create(&p->sampling, s->e->m->hp.n_vocab, err);
    bool ok = r->prompt && r->smp;
    if (ok && p->constraint) {
        r->cons = cons_matcher_new(p->constraint, err);
        r->mask = r->cons ? malloc(cons_mask_words(r->cons) * sizeof *r->mask) : NULL;
        if (!r->cons) {
            sched_req_free(r);
            return NULL;
        }
        ok = r->mask != NULL;
    }
    for (int i = 0; ok && i < SCHED_MAX_STOP && p->stop[i]; i++) {
        if (!p->stop[i][0]) continue; /* an empty stop string never matches */
        r->stop[r->n_stop] = strdup(p->stop[i]);
        ok = r->stop[r->n_stop] != NULL;
        if (ok) r->n_stop++;
    }
    if (!ok) {
        if (r->smp) chatd_errorf(err, "out of memory");
        sched_req_free(r);
        return NULL;
    }
    memcpy(r->prompt, p->prompt, p->n_prompt * sizeof *r->prompt);
    tok_stream_init(&r->stream, s->e->tok, false);
    r->t_submit = sched_now();
    r->usage.prompt_tokens = r->n_prompt;
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->n_queued >= s->o.queue_size) {
        bool stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        *full = !stopping;
        chatd_errorf(err, stopping ? "the server is shutting down"
                                   : "the server is busy: the request queue is full");
        sched_req_free(r);
        return NULL;
    }
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->n_queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return r;
}

sched_stats sched_get_stats(sched *s) {
    sched_stats st;
    pthread_mutex_lock(&s->mu);
    st.queued = s->n_queued;
    st.running = s->n_running;
    st.kv_blocks_used = s->kv_used;
    st.kv_blocks_total = s->e->kv.n_blocks;
    st.completed = s->completed;
    st.cancelled = s->cancelled;
    pthread_mutex_unlock(&s->mu);
    return st;
}

int64_t sched_ctx_size(const sched *s) {
    return s->o.ctx_size;
}
