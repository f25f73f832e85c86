/* pool.c - the compute thread pool (see include/chatd/pool.h).
 *
 * A job is announced by bumping a generation counter under the mutex; workers spin on
 * it for a short while (a forward pass issues jobs back to back) and then sleep on the
 * condition variable. Barriers inside a job are a sense-reversing spin barrier: the
 * steps of one forward pass are microseconds apart, too short to sleep between. */
#include "chatd/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_PAUSE() _mm_pause()
#else
#define POOL_PAUSE() ((void)0)
#endif

/* Spins before sleeping between jobs; about 50-100 microseconds. */
#define POOL_SPIN 20000
/* Spins at a barrier before yielding the core: short, so that with more threads than
 * free cores the thread everyone waits for gets to run. */
#define POOL_BARRIER_SPIN 1000

struct pool {
    int n_threads;
    pthread_t *threads; /* [n_threads - 1] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint generation; /* bumped for each job */
    atomic_int running;     /* workers still in the current job */
    atomic_bool stop;
    pool_fn fn;
    void *ctx;
    /* barrier */
    atomic_int barrier_count;
    atomic_uint barrier_phase;
};

typedef struct pool_worker_arg {
    pool *p;
    int ith;
} pool_worker_arg;

static void *pool_worker(void *arg) {
    pool_worker_arg *a = arg;
    pool *p = a->p;
    pool_task t = {p, a->ith, p->n_threads};
    free(a);
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop) && spins < POOL_SPIN) {
            POOL_PAUSE();
            spins++;
        }
        if (gen == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = gen;
        p->fn(p->ctx, &t);
        atomic_fetch_sub_explicit(&p->running, 1, memory_order_acq_rel);
    }
    return NULL;
}

pool *pool_create(int n_threads, chatd_error *err) {
    if (n_threads < 1 || n_threads > 1024) {
        chatd_errorf(err, "thread count %d out of range (1 to 1024)", n_threads);
        return NULL;
    }
    pool *p = calloc(1, sizeof *p);
    if (!p) {
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        pool_destroy(p);
        chatd_errorf(err, "out of memory");
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        pool_worker_arg *a = malloc(sizeof *a);
        if (!a) {
            p->n_threads = i;
            pool_destroy(p);
            chatd_errorf(err, "out of memory");
            return NULL;
        }
        a->p = p;
        a->ith = i;
        if (pthread_create(&p->threads[i - 1], NULL, pool_worker, a) != 0) {
            free(a);
            p->n_threads = i;
            pool_destroy(p);
            chatd_errorf(err, "cannot start compute thread %d", i);
            return NULL;
        }
    }
    return p;
}

void pool_destroy(pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int pool_size(const pool *p) {
    return p->n_threads;
}

void pool_run(pool *p, pool_fn fn, void *ctx) {
    pool_task t = {p, 0, p->n_threads};
    if (p->n_threads == 1) {
        fn(ctx, &t);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->barrier_count, 0);
    atomic_store(&p->running, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, &t);
    while (atomic_load_explicit(&p->running, memory_order_acquire) > 0) POOL_PAUSE();
}

void pool_barrier(pool_task *t) {
    pool *p = t->p;
    if (t->nth == 1) return;
    unsigned phase = atomic_load_explicit(&p->barrier_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->barrier_count, 1, memory_order_acq_rel) == t->nth - 1) {
        atomic_store_explicit(&p->barrier_count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->barrier_phase, 1, memory_order_release);
        return;
    }
    int spins = 0;
    while (atomic_load_explicit(&p->barrier_phase, memory_order_acquire) == phase) {
        POOL_PAUSE();
        /* more threads than cores (oversubscribed or a busy machine): let others run */
        if (++spins > POOL_BARRIER_SPIN) sched_yield();
    }
}

void pool_split(const pool_task *t, long long n, long long *begin, long long *end) {
    long long per = (n + t->nth - 1) / t->nth;
    long long b = per * t->ith;
    long long e = b + per;
    *begin = b < n ? b : n;
    *end = e < n ? e : n;
}
