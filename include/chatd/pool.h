/* pool.h - the compute thread pool. The caller plus n-1 workers run one function
 * together (ggml-style): each thread takes its share of every step by its index, and
 * pool_barrier() separates the steps. Workers wait on a condition variable between
 * jobs and spin only briefly, so an idle server uses no CPU. */
#ifndef CHATD_POOL_H
#define CHATD_POOL_H

#include "chatd/error.h"

typedef struct pool pool;

/* One thread's view of a running job. */
typedef struct pool_task {
    pool *p;
    int ith; /* this thread's index, 0 = the caller */
    int nth; /* threads in the job */
} pool_task;

typedef void (*pool_fn)(void *ctx, pool_task *t);

/* Starts n_threads - 1 workers (n_threads >= 1); NULL with a message on failure. */
pool *pool_create(int n_threads, chatd_error *err);

/* Stops and joins the workers; NULL is allowed. */
void pool_destroy(pool *p);

/* Number of threads a job runs on (workers + the caller). */
int pool_size(const pool *p);

/* Runs fn(ctx, task) on every thread and returns when all have finished. */
void pool_run(pool *p, pool_fn fn, void *ctx);

/* Waits until every thread of the running job has reached this barrier. */
void pool_barrier(pool_task *t);

/* The share [*begin, *end) of n items that thread t handles. */
void pool_split(const pool_task *t, long long n, long long *begin, long long *end);

#endif
