/* A persistent pool of computing threads that runs one parallel-for at a time.
 *
 * The thread that calls llamad_threadpool_run is worker 0 and computes its share
 * too, so a pool of n threads starts n - 1 helpers. Idle helpers spin briefly
 * (the next parallel section of a forward pass usually follows within
 * microseconds), then sleep on a condition variable. */
#ifndef LLAMAD_THREADPOOL_H
#define LLAMAD_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

struct llamad_threadpool;

/* fn(ctx, ith, nth) runs once on every worker, ith in [0, nth). */
typedef void (*llamad_task_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 computing threads in all, the caller included. */
int llamad_threadpool_create(int n_threads, struct llamad_threadpool **out, char *err,
                             size_t errsz);
void llamad_threadpool_free(struct llamad_threadpool *p);
int llamad_threadpool_size(const struct llamad_threadpool *p);

/* The default number of computing threads: one per online CPU. */
int32_t llamad_default_threads(void);

/* Runs fn on every worker and returns when all have finished. Not reentrant: only
 * one thread may call it at a time, and fn must not call it. */
void llamad_threadpool_run(struct llamad_threadpool *p, llamad_task_fn fn, void *ctx);

/* The share [*begin, *end) of n items that worker ith of nth takes. */
void llamad_split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end);

#endif
