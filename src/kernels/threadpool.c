#include "llamad/kernels/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "llamad/base/error.h"

/* How long an idle helper polls for the next task before it sleeps (about a
 * millisecond of pause instructions). Parallel sections of one forward pass come
 * back to back, so a short spin saves a futex wake-up for each of them; a long one
 * would steal the core from a thread that still has work when threads outnumber
 * cores. */
#define SPIN_ROUNDS 8192
/* A spinning thread gives the core away this often so the others still make
 * progress: from the start when threads outnumber cores, else only once a
 * wait has lasted YIELD_AFTER rounds (a thread descheduled by other load).
 * Yielding from the start of every wait was a system call every few sections,
 * about 120 per decode step of the 110M model (strace -c). */
#define YIELD_EVERY 256
#define YIELD_AFTER 2048

struct worker_arg {
    struct llamad_threadpool *pool;
    int ith;
};

struct llamad_threadpool {
    int n_threads;
    pthread_t *threads;
    struct worker_arg *args;

    pthread_mutex_t mutex;
    pthread_cond_t wake;

    atomic_uint_fast64_t generation; /* bumped once per run; helpers wait for a change */
    atomic_int unfinished;           /* helpers still running the current task */
    atomic_int sleepers;             /* helpers asleep on `wake` (or about to be) */
    atomic_bool stopping;
    bool oversubscribed; /* more threads than online cores */

    llamad_task_fn fn;
    void *ctx;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One round of a spin-wait: a pause, or now and then the core given away. */
static void spin_round(const struct llamad_threadpool *p, unsigned i)
{
    if ((p->oversubscribed || i >= YIELD_AFTER) && i % YIELD_EVERY == YIELD_EVERY - 1)
        sched_yield();
    else
        cpu_relax();
}

/* Waits until the generation differs from `seen`; returns the new one. A helper
 * counts itself in `sleepers` before its last look at the generation, and run()
 * bumps the generation before it looks at `sleepers` (both sequentially
 * consistent), so one of them sees the other: either the helper finds the new
 * task or run() wakes it. Without sleepers, run() makes no system call. */
static uint_fast64_t wait_for_task(struct llamad_threadpool *p, uint_fast64_t seen)
{
    for (unsigned i = 0; i < SPIN_ROUNDS; i++) {
        uint_fast64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load(&p->stopping))
            return g;
        spin_round(p, i);
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->sleepers, 1);
    uint_fast64_t g;
    while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stopping))
        pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

static void *worker_main(void *argp)
{
    struct worker_arg *arg = argp;
    struct llamad_threadpool *p = arg->pool;
    uint_fast64_t seen = 0;
    for (;;) {
        seen = wait_for_task(p, seen);
        if (atomic_load(&p->stopping))
            return NULL;
        p->fn(p->ctx, arg->ith, p->n_threads);
        atomic_fetch_sub_explicit(&p->unfinished, 1, memory_order_release);
    }
}

int llamad_threadpool_create(int n_threads, struct llamad_threadpool **out, char *err, size_t errsz)
{
    if (n_threads < 1 || n_threads > 1024)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "thread count %d is not in 1..1024",
                           n_threads);
    struct llamad_threadpool *p = calloc(1, sizeof(*p));
    if (!p)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory for the thread pool");
    p->n_threads = n_threads;
    p->threads = calloc((size_t)n_threads, sizeof(*p->threads));
    p->args = calloc((size_t)n_threads, sizeof(*p->args));
    if (!p->threads || !p->args) {
        free(p->threads);
        free(p->args);
        free(p);
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory for the thread pool");
    }
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->unfinished, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stopping, false);
    p->oversubscribed = n_threads > llamad_default_threads();
    for (int i = 1; i < n_threads; i++) {
        p->args[i].pool = p;
        p->args[i].ith = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]) != 0) {
            p->n_threads = i; /* free() joins the ones that started */
            llamad_threadpool_free(p);
            return llamad_fail(err, errsz, LLAMAD_ENOMEM, "cannot start worker thread %d", i);
        }
    }
    *out = p;
    return LLAMAD_OK;
}

void llamad_threadpool_free(struct llamad_threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p->args);
    free(p);
}

int llamad_threadpool_size(const struct llamad_threadpool *p)
{
    return p->n_threads;
}

int32_t llamad_default_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int32_t)cores : 1;
}

void llamad_threadpool_run(struct llamad_threadpool *p, llamad_task_fn fn, void *ctx)
{
    if (p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->unfinished, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }

    fn(ctx, 0, p->n_threads);

    for (unsigned spins = 0; atomic_load_explicit(&p->unfinished, memory_order_acquire) > 0;
         spins++) {
        if (spins < SPIN_ROUNDS)
            spin_round(p, spins);
        else
            sched_yield(); /* a helper was descheduled: let it run */
    }
}

void llamad_split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    int64_t base = n / nth, extra = n % nth;
    *begin = ith * base + (ith < extra ? ith : extra);
    *end = *begin + base + (ith < extra ? 1 : 0);
}
