/* DRAM read bandwidth: threads sum disjoint slices of a large buffer with eight
 * independent accumulators, so the loop is bound by loads, not by add latency. */
#include "bandwidth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define MIN_BUFFER ((size_t)1 << 30)
#define LLC_MULTIPLE 4
/* Bytes of one iteration of the widest loop (8 x 64); slices are whole chunks. */
#define CHUNK 512

typedef uint64_t (*sum_fn)(const uint64_t *p, size_t n_words);

#ifdef HAVE_X86
__attribute__((target("avx512f"))) static uint64_t sum_avx512(const uint64_t *p, size_t n)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 8));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 16));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 24));
        a4 = _mm512_add_epi64(a4, _mm512_load_si512(p + i + 32));
        a5 = _mm512_add_epi64(a5, _mm512_load_si512(p + i + 40));
        a6 = _mm512_add_epi64(a6, _mm512_load_si512(p + i + 48));
        a7 = _mm512_add_epi64(a7, _mm512_load_si512(p + i + 56));
    }
    a0 = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
    a4 = _mm512_add_epi64(_mm512_add_epi64(a4, a5), _mm512_add_epi64(a6, a7));
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(a0, a4));
}

__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint64_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0;
    for (size_t i = 0; i < n; i += 32) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
        a4 = _mm256_add_epi64(a4, _mm256_load_si256((const __m256i *)(p + i + 16)));
        a5 = _mm256_add_epi64(a5, _mm256_load_si256((const __m256i *)(p + i + 20)));
        a6 = _mm256_add_epi64(a6, _mm256_load_si256((const __m256i *)(p + i + 24)));
        a7 = _mm256_add_epi64(a7, _mm256_load_si256((const __m256i *)(p + i + 28)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    a4 = _mm256_add_epi64(_mm256_add_epi64(a4, a5), _mm256_add_epi64(a6, a7));
    a0 = _mm256_add_epi64(a0, a4);
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, a0);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

static uint64_t sum_scalar(const uint64_t *p, size_t n)
{
    uint64_t a[8] = {0};
    for (size_t i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] += p[i + k];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static sum_fn pick_sum(const char **isa)
{
#ifdef HAVE_X86
    if (__builtin_cpu_supports("avx512f")) {
        *isa = "avx512f";
        return sum_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        *isa = "avx2";
        return sum_avx2;
    }
#endif
    *isa = "scalar";
    return sum_scalar;
}

struct slice {
    pthread_t thread;
    uint64_t *words;
    size_t n_words;
    sum_fn sum;   /* NULL: touch (write) the slice instead of reading it */
    uint64_t out; /* the sum, stored so the reads cannot be optimised away */
};

static void *slice_worker(void *arg)
{
    struct slice *s = arg;
    if (s->sum) {
        s->out = s->sum(s->words, s->n_words);
    } else {
        for (size_t i = 0; i < s->n_words; i++)
            s->words[i] = i;
    }
    return NULL;
}

/* One pass over every slice, the calling thread taking slice 0. The time includes
 * starting and joining the threads: tens of microseconds against a pass of tens of
 * milliseconds. */
static int run_pass(struct slice *slices, int n, sum_fn sum, double *seconds, char *err,
                    size_t errsz)
{
    double t0 = llamad_now_seconds();
    int started = 1, rc = 0;
    for (int i = 0; i < n; i++)
        slices[i].sum = sum;
    for (; started < n; started++)
        if ((rc = pthread_create(&slices[started].thread, NULL, slice_worker, &slices[started])))
            break;
    slice_worker(&slices[0]);
    for (int i = 1; i < started; i++)
        pthread_join(slices[i].thread, NULL);
    *seconds = llamad_now_seconds() - t0;
    if (rc)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "cannot start thread %d of %d: %s",
                           started + 1, n, strerror(rc));
    return 0;
}

static size_t buffer_size(void)
{
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc <= 0)
        llc = sysconf(_SC_LEVEL2_CACHE_SIZE);
    size_t want = llc > 0 ? (size_t)llc * LLC_MULTIPLE : 0;
    return want > MIN_BUFFER ? want : MIN_BUFFER;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int measure_passes(struct slice *slices, int n_threads, int passes, sum_fn sum,
                          double *times, char *err, size_t errsz)
{
    double touch;
    int rc = run_pass(slices, n_threads, NULL, &touch, err, errsz);
    for (int i = 0; i < passes && rc == 0; i++)
        rc = run_pass(slices, n_threads, sum, &times[i], err, errsz);
    return rc;
}

int bandwidth_measure(int n_threads, int passes, struct bandwidth *out, char *err, size_t errsz)
{
    size_t slice_bytes = buffer_size() / (size_t)n_threads / CHUNK * CHUNK;
    size_t total = slice_bytes * (size_t)n_threads;
    uint64_t *buf = aligned_alloc(CHUNK, total);
    struct slice *slices = calloc((size_t)n_threads, sizeof(*slices));
    double *times = calloc((size_t)passes, sizeof(double));
    int rc = 0;
    if (!buf || !slices || !times) {
        rc =
            llamad_fail(err, errsz, LLAMAD_ENOMEM, "cannot allocate a %zu MiB buffer", total >> 20);
        goto done;
    }
    for (int i = 0; i < n_threads; i++) {
        slices[i].words = buf + (size_t)i * (slice_bytes / sizeof(uint64_t));
        slices[i].n_words = slice_bytes / sizeof(uint64_t);
    }
    sum_fn sum = pick_sum(&out->isa);
    if ((rc = measure_passes(slices, n_threads, passes, sum, times, err, errsz)))
        goto done;
    out->gbps = (double)total / median(times, passes) * 1e-9;
    out->bytes = total;
    out->passes = passes;
done:
    free(times);
    free(slices);
    free(buf);
    return rc;
}
