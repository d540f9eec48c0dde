/* Multiply-accumulate peaks: each thread repeats one instruction into enough
 * independent accumulators (16; AMX: 4 tiles) that neither latency nor memory
 * limits the loop. The operands stay in registers; only the count of
 * instructions retired per second is measured. */
#include "compute_peak.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* A pass of the first calibration length shorter than this is doubled. */
#define MIN_PASS_SECONDS 0.05
#define FIRST_ITERATIONS 4096

/* Runs `iterations` loop iterations; returns a value depending on every
 * accumulator, so the loop cannot be dropped. */
typedef uint32_t (*mac_loop)(uint64_t iterations);

struct loop_kind {
    const char *isa;
    mac_loop run;
    double macs_per_iteration;
};

#ifdef HAVE_X86
/* The empty asms make every accumulator opaque: without them GCC saw sixteen
 * equal chains (same start, same operands) and kept one, so vpdpbusd and
 * vfmadd231ps ran one per iteration, bound by their latency, while 16 were
 * counted. The vpdpbusd peak came out 1.6 times its throughput (16 per 5-cycle
 * latency against 2 a cycle): 1,045 GMAC/s on 2 threads of the Xeon under
 * "Measured on this project's machines", where the fixed loop measures about
 * 730 (366 a thread). */
#define ACCUMULATE4(step, a, b, c, d)                                                              \
    do {                                                                                           \
        a = step(a);                                                                               \
        b = step(b);                                                                               \
        c = step(c);                                                                               \
        d = step(d);                                                                               \
        __asm__("" : "+v"(a), "+v"(b), "+v"(c), "+v"(d));                                          \
    } while (0)
#define ACCUMULATE16(step)                                                                         \
    do {                                                                                           \
        ACCUMULATE4(step, a0, a1, a2, a3);                                                         \
        ACCUMULATE4(step, a4, a5, a6, a7);                                                         \
        ACCUMULATE4(step, a8, a9, a10, a11);                                                       \
        ACCUMULATE4(step, a12, a13, a14, a15);                                                     \
    } while (0)

/* The lanes summed as unsigned: the accumulators wrap over a long loop, which
 * vector adds do silently but a signed scalar sum (_mm512_reduce_add_epi32)
 * must not. */
__attribute__((target("avx512f"))) static uint32_t lane_sum(__m512i v)
{
    uint32_t lanes[16], sum = 0;
    _mm512_storeu_si512(lanes, v);
    for (int i = 0; i < 16; i++)
        sum += lanes[i];
    return sum;
}

/* vpdpbusd: 16 lanes x 4 byte products. */
__attribute__((target("avx512f,avx512vnni"))) static uint32_t loop_vnni(uint64_t iterations)
{
    const __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-5);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
#define VNNI_STEP(acc) _mm512_dpbusd_epi32(acc, u, s)
    for (uint64_t i = 0; i < iterations; i++)
        ACCUMULATE16(VNNI_STEP);
#undef VNNI_STEP
    a0 = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                          _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    a8 = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)),
                          _mm512_add_epi32(_mm512_add_epi32(a12, a13), _mm512_add_epi32(a14, a15)));
    return lane_sum(_mm512_add_epi32(a0, a8));
}

/* Without VNNI the kernels take three instructions for 4 byte products a lane:
 * vpmaddubsw (pairs into int16), vpmaddwd by ones (into int32), vpaddd. Written
 * in assembly: as intrinsics on loop-invariant operands the compiler would
 * compute the product once. Eight accumulators (vpaddd's latency is one cycle)
 * and four rotating temporaries fit AVX2's sixteen registers. */
#define INT8_STEP(acc, tmp)                                                                        \
    "vpmaddubsw %[s], %[u], %[" tmp "]\n\t"                                                        \
    "vpmaddwd %[ones], %[" tmp "], %[" tmp "]\n\t"                                                 \
    "vpaddd %[" tmp "], %[" acc "], %[" acc "]\n\t"
#define INT8_BODY                                                                                  \
    INT8_STEP("a0", "t0")                                                                          \
    INT8_STEP("a1", "t1")                                                                          \
    INT8_STEP("a2", "t2")                                                                          \
    INT8_STEP("a3", "t3")                                                                          \
    INT8_STEP("a4", "t0") INT8_STEP("a5", "t1") INT8_STEP("a6", "t2") INT8_STEP("a7", "t3")
#define INT8_OPERANDS(reg)                                                                         \
    : [a0] "+" reg(a0), [a1] "+" reg(a1), [a2] "+" reg(a2), [a3] "+" reg(a3), [a4] "+" reg(a4),    \
      [a5] "+" reg(a5), [a6] "+" reg(a6), [a7] "+" reg(a7), [t0] "=&" reg(t0), [t1] "=&" reg(t1),  \
      [t2] "=&" reg(t2), [t3] "=&" reg(t3)                                                         \
    : [u] reg(u), [s] reg(s), [ones] reg(ones)

__attribute__((target("avx512f,avx512bw"))) static uint32_t loop_avx512_int8(uint64_t iterations)
{
    const __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-5), ones = _mm512_set1_epi16(1);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0, t0, t1, t2, t3;
    for (uint64_t i = 0; i < iterations; i++)
        __asm__ volatile(INT8_BODY INT8_OPERANDS("v"));
    a0 = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                          _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    return lane_sum(a0);
}

__attribute__((target("avx2"))) static uint32_t loop_avx2_int8(uint64_t iterations)
{
    const __m256i u = _mm256_set1_epi8(3), s = _mm256_set1_epi8(-5), ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
            a7 = a0, t0, t1, t2, t3;
    for (uint64_t i = 0; i < iterations; i++)
        __asm__ volatile(INT8_BODY INT8_OPERANDS("x"));
    a0 = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                          _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
    uint32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, a0);
    return lanes[0] ^ lanes[7];
}
#undef INT8_OPERANDS
#undef INT8_BODY
#undef INT8_STEP

__attribute__((target("avx512f"))) static uint32_t loop_fma512(uint64_t iterations)
{
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-3f);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
           a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
#define FMA512_STEP(acc) _mm512_fmadd_ps(acc, x, y)
    for (uint64_t i = 0; i < iterations; i++)
        ACCUMULATE16(FMA512_STEP);
#undef FMA512_STEP
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                       _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    a8 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                       _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15)));
    return (uint32_t)_mm512_reduce_add_ps(_mm512_add_ps(a0, a8));
}

/* 12 chains, not 16: with the two operands they fit the 16 ymm registers,
 * where 16 had GCC keep four in memory, and a store and a load in each of
 * those chains held the loop to a third of the FMA ports' rate (Zen 3: 32 of
 * about 96 GMAC/s on 2 threads). 12 cover the 4-5 cycle latency at 2 a cycle. */
__attribute__((target("avx2,fma"))) static uint32_t loop_fma256(uint64_t iterations)
{
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0,
           a8 = a0, a9 = a0, a10 = a0, a11 = a0;
#define FMA256_STEP(acc) _mm256_fmadd_ps(acc, x, y)
    for (uint64_t i = 0; i < iterations; i++) {
        ACCUMULATE4(FMA256_STEP, a0, a1, a2, a3);
        ACCUMULATE4(FMA256_STEP, a4, a5, a6, a7);
        ACCUMULATE4(FMA256_STEP, a8, a9, a10, a11);
    }
#undef FMA256_STEP
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    a8 = _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11));
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(a0, a8));
    return (uint32_t)lanes[0];
}

/* The operand of ldtilecfg (palette 1): every tile 16 rows of 64 bytes. */
struct tile_config {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* tdpbssd on whole tiles: 16 x 16 int32 results, each a dot product of 64
 * bytes. Tiles 0-3 accumulate, 4-5 are A, 6-7 are B. Each thread configures its
 * own tiles (the tile state is per thread); the set is amx only once Linux
 * granted it (cpu.c). */
__attribute__((target("amx-tile,amx-int8"))) static uint32_t loop_amx(uint64_t iterations)
{
    static const int8_t zeros[16 * 64];
    struct tile_config cfg = {.palette = 1};
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, zeros, 64);
    _tile_loadd(5, zeros, 64);
    _tile_loadd(6, zeros, 64);
    _tile_loadd(7, zeros, 64);
    for (uint64_t i = 0; i < iterations; i++) {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    int32_t c[16 * 16];
    _tile_stored(0, c, 64);
    _tile_release();
    return (uint32_t)c[0];
}
#endif

struct worker {
    pthread_t thread;
    mac_loop run;
    uint64_t iterations;
    uint32_t out;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->out = w->run(w->iterations);
    return NULL;
}

/* One pass of `iterations` on every thread, the calling thread being thread 0. */
static int run_pass(struct worker *workers, int n, mac_loop run, uint64_t iterations,
                    double *seconds, char *err, size_t errsz)
{
    for (int i = 0; i < n; i++)
        workers[i] = (struct worker){.run = run, .iterations = iterations};
    double t0 = llamad_now_seconds();
    int started = 1, rc = 0;
    for (; started < n; started++)
        if ((rc = pthread_create(&workers[started].thread, NULL, worker_main, &workers[started])))
            break;
    worker_main(&workers[0]);
    for (int i = 1; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    *seconds = llamad_now_seconds() - t0;
    if (rc)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "cannot start thread %d of %d: %s",
                           started + 1, n, strerror(rc));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Doubles the iterations until a pass takes MIN_PASS_SECONDS (which warms the
 * units up too), then times `passes` passes and keeps the median. */
static int measure(const struct loop_kind *k, int n_threads, int passes, struct mac_peak *out,
                   char *err, size_t errsz)
{
    struct worker *workers = calloc((size_t)n_threads, sizeof(*workers));
    double *times = calloc((size_t)passes, sizeof(double));
    int rc = 0;
    if (!workers || !times) {
        rc = llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t iterations = FIRST_ITERATIONS;
    double seconds = 0.0;
    while ((rc = run_pass(workers, n_threads, k->run, iterations, &seconds, err, errsz)) == 0 &&
           seconds < MIN_PASS_SECONDS)
        iterations *= 2;
    for (int i = 0; i < passes && rc == 0; i++)
        rc = run_pass(workers, n_threads, k->run, iterations, &times[i], err, errsz);
    if (rc)
        goto done;
    qsort(times, (size_t)passes, sizeof(double), cmp_double);
    double median =
        passes % 2 ? times[passes / 2] : 0.5 * (times[passes / 2 - 1] + times[passes / 2]);
    out->isa = k->isa;
    out->gmacs = k->macs_per_iteration * (double)iterations * n_threads / median * 1e-9;
done:
    free(times);
    free(workers);
    return rc;
}

int compute_peak_measure(int n_threads, int passes, struct compute_peak *out, char *err,
                         size_t errsz)
{
    *out = (struct compute_peak){{NULL, 0.0}, {NULL, 0.0}, {NULL, 0.0}};
    const struct loop_kind *int8 = NULL, *amx = NULL, *f32 = NULL;
#ifdef HAVE_X86
    /* MACs an iteration: 16 instructions (the int8 pairs: 8; AMX: 4 tiles) */
    static const struct loop_kind vnni = {"vpdpbusd zmm", loop_vnni, 16 * 64};
    static const struct loop_kind avx512_int8 = {"vpmaddubsw+vpmaddwd zmm", loop_avx512_int8,
                                                 8 * 64};
    static const struct loop_kind avx2_int8 = {"vpmaddubsw+vpmaddwd ymm", loop_avx2_int8, 8 * 32};
    static const struct loop_kind tiles = {"tdpbssd", loop_amx, 4 * 16 * 16 * 64};
    static const struct loop_kind fma512 = {"vfmadd231ps zmm", loop_fma512, 16 * 16};
    static const struct loop_kind fma256 = {"vfmadd231ps ymm", loop_fma256, 12 * 8};
    if (llamad_cpu_runs(LLAMAD_CPU_VNNI))
        int8 = &vnni;
    else if (llamad_cpu_runs(LLAMAD_CPU_AVX512))
        int8 = &avx512_int8;
    else if (llamad_cpu_runs(LLAMAD_CPU_AVX2))
        int8 = &avx2_int8;
    if (llamad_cpu_runs(LLAMAD_CPU_AMX))
        amx = &tiles;
    if (llamad_cpu_runs(LLAMAD_CPU_AVX512))
        f32 = &fma512;
    else if (llamad_cpu_runs(LLAMAD_CPU_AVX2))
        f32 = &fma256;
#endif
    int rc = 0;
    if (int8)
        rc = measure(int8, n_threads, passes, &out->int8, err, errsz);
    if (amx && rc == 0)
        rc = measure(amx, n_threads, passes, &out->amx, err, errsz);
    if (f32 && rc == 0)
        rc = measure(f32, n_threads, passes, &out->f32, err, errsz);
    return rc;
}
