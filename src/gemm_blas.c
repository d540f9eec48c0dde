#include "llamad/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>

#include "llamad/error.h"

/* Weight rows dequantized per sgemm call: enough that OpenBLAS's packing of the
 * activations (repeated for every call) stays a small share of the work, few
 * enough that a tile of the widest rows stays in L2 for the packing that
 * follows its conversion. */
#ifndef GEMM_TILE_ROWS
#define GEMM_TILE_ROWS 64
#endif

struct llamad_gemm_scratch {
    int n_threads;
    int64_t max_cols;
    int32_t min_tokens;
    float *tiles; /* n_threads tiles of GEMM_TILE_ROWS * max_cols floats */
};

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_setup(void)
{
    openblas_set_num_threads(1);
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

int32_t llamad_gemm_min_tokens(uint32_t type)
{
    switch (type) {
    case LLAMAD_TYPE_F32: return 16;
    case LLAMAD_TYPE_F16:
    case LLAMAD_TYPE_BF16: return 16;
    default: return 32;
    }
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
