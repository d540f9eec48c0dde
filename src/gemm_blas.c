#include "llamad/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/error.h"
#include "llamad/log.h"

/* Weight rows dequantized per sgemm call. OpenBLAS repacks the activations for
 * every call, so short tiles waste work: 128 rows ran up to 1.3x faster than 32
 * on 4096-column weights, and 256 gained nothing more. */
#define GEMM_TILE_ROWS 128

struct llamad_gemm_scratch {
    int n_threads;
    int64_t max_cols;
    int32_t min_tokens;
    float *tiles; /* n_threads tiles of GEMM_TILE_ROWS * max_cols floats */
};

/* OpenBLAS kernel sets grouped by the SIMD width they use; each has its own
 * crossover table. */
enum core_class { CORE_AVX512, CORE_AVX2, CORE_GENERIC };

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static enum core_class blas_class;

static enum core_class classify_core(const char *name)
{
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *const avx2[] = {"Haswell", "Zen"};
    for (size_t i = 0; i < sizeof avx512 / sizeof avx512[0]; i++)
        if (strcmp(name, avx512[i]) == 0)
            return CORE_AVX512;
    for (size_t i = 0; i < sizeof avx2 / sizeof avx2[0]; i++)
        if (strcmp(name, avx2[i]) == 0)
            return CORE_AVX2;
    return CORE_GENERIC;
}

static void blas_setup(void)
{
    openblas_set_num_threads(1);
    blas_class = classify_core(openblas_get_corename());
}

const char *llamad_blas_init(void)
{
    pthread_once(&blas_once, blas_setup);
    return llamad_blas_core();
}

const char *llamad_blas_core(void)
{
    return openblas_get_corename();
}

const char *llamad_blas_better_core(void)
{
    llamad_blas_init();
    if (blas_class != CORE_GENERIC)
        return NULL;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
#endif
    return NULL;
}

void llamad_blas_log_core(void)
{
    const char *core = llamad_blas_init(), *better = llamad_blas_better_core();
    llamad_info("OpenBLAS kernel set: %s", core);
    if (better)
        llamad_warn("OpenBLAS runs its generic kernel set %s on this CPU, which makes prompt "
                    "processing several times slower: start the process with "
                    "OPENBLAS_CORETYPE=%s in its environment", core, better);
}

#define NEVER INT32_MAX

/* The smallest batch (of 1, 2, 4, ... 512) from which llamad_gemm_blas beat
 * llamad_matmul on both a 768x768 and a 2048x768 weight, two threads on an
 * AVX-512 Xeon, each kernel set forced with OPENBLAS_CORETYPE. The generic sets
 * (SSE3 "Prescott" and the like) never catch up with the integer kernels.
 * F16 and BF16 on AVX-512 were re-measured against the 4-token float tiles
 * (110M model, batched decode): the tiles lead at 8 tokens, tie at 16. */
static const struct {
    uint32_t type;
    int32_t min_tokens[3]; /* by enum core_class */
} crossovers[] = {
    {LLAMAD_TYPE_F32, {16, 16, 32}},
    {LLAMAD_TYPE_F16, {16, 16, 64}},
    {LLAMAD_TYPE_BF16, {16, 16, 64}},
    {LLAMAD_TYPE_Q4_0, {8, 16, 64}},
    {LLAMAD_TYPE_Q8_0, {32, 32, NEVER}},
    {LLAMAD_TYPE_Q4_K, {32, 32, NEVER}},
    {LLAMAD_TYPE_Q5_K, {32, 32, NEVER}},
    {LLAMAD_TYPE_Q6_K, {128, 128, NEVER}},
};

int32_t llamad_gemm_min_tokens(uint32_t type)
{
    llamad_blas_init();
    for (size_t i = 0; i < sizeof crossovers / sizeof crossovers[0]; i++)
        if (crossovers[i].type == type)
            return crossovers[i].min_tokens[blas_class];
    return NEVER;
}

int llamad_gemm_scratch_create(int n_threads, int64_t max_cols, int32_t min_tokens,
                               struct llamad_gemm_scratch **out, char *err, size_t errsz)
{
    *out = NULL;
    if (n_threads < 1 || max_cols < 1 || min_tokens < 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "gemm scratch: n_threads %d, max_cols %lld, min_tokens %d",
                           n_threads, (long long)max_cols, (int)min_tokens);
    llamad_blas_init();
    struct llamad_gemm_scratch *s = malloc(sizeof *s);
    float *tiles = calloc((size_t)n_threads * GEMM_TILE_ROWS * (size_t)max_cols, sizeof(float));
    if (!s || !tiles) {
        free(s);
        free(tiles);
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "gemm scratch: %d tiles of %lld columns",
                           n_threads, (long long)max_cols);
    }
    *s = (struct llamad_gemm_scratch){n_threads, max_cols, min_tokens, tiles};
    *out = s;
    return LLAMAD_OK;
}

void llamad_gemm_scratch_free(struct llamad_gemm_scratch *s)
{
    if (!s)
        return;
    free(s->tiles);
    free(s);
}

struct gemm_task {
    const struct llamad_weight *w;
    const float *x;
    int32_t n_tokens;
    float *y;
    int64_t y_stride;
    float *tiles;
};

/* y[:, r0 .. r0 + n) = X * Wtile^T, Wtile being n float rows of w->cols values
 * at `rows`, ld apart. */
static void gemm_tile(const struct gemm_task *t, const float *rows, int64_t ld, int64_t r0,
                      int64_t n)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->n_tokens, (int)n, (int)t->w->cols,
                1.0f, t->x, (int)t->w->cols, rows, (int)ld, 0.0f, t->y + r0, (int)t->y_stride);
}

static void gemm_worker(void *ctx, int ith, int nth)
{
    const struct gemm_task *t = ctx;
    const struct llamad_weight *w = t->w;
    int64_t begin, end;
    llamad_split_range(w->rows, ith, nth, &begin, &end);
    if (begin == end)
        return;
    if (w->type == LLAMAD_TYPE_F32) {
        /* Already float: the whole share in one call, OpenBLAS blocks it for cache. */
        gemm_tile(t, (const float *)(w->data + (size_t)begin * w->row_bytes),
                  (int64_t)(w->row_bytes / sizeof(float)), begin, end - begin);
        return;
    }
    float *tile = t->tiles + (size_t)ith * GEMM_TILE_ROWS * (size_t)w->cols;
    for (int64_t r0 = begin; r0 < end; r0 += GEMM_TILE_ROWS) {
        const int64_t n = end - r0 < GEMM_TILE_ROWS ? end - r0 : GEMM_TILE_ROWS;
        for (int64_t i = 0; i < n; i++)
            w->kernels->dequantize_row(w->data + (size_t)(r0 + i) * w->row_bytes,
                                       tile + i * w->cols, w->cols);
        gemm_tile(t, tile, w->cols, r0, n);
    }
}

bool llamad_gemm_blas(struct llamad_threadpool *pool, struct llamad_gemm_scratch *s,
                      const struct llamad_weight *w, const float *x, int32_t n_tokens,
                      float *y, int64_t y_stride)
{
    const int32_t min_tokens = s->min_tokens ? s->min_tokens : llamad_gemm_min_tokens(w->type);
    if (n_tokens < min_tokens || !w->kernels || w->cols > s->max_cols ||
        llamad_threadpool_size(pool) > s->n_threads)
        return false;
    struct gemm_task t = {w, x, n_tokens, y, y_stride, s->tiles};
    llamad_threadpool_run(pool, gemm_worker, &t);
    return true;
}
