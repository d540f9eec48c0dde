/* The int8 GEMM: the reference kernel, the choice of a fast one, and the driver
 * that quantizes a batch and hands the weights' panels out to the pool. */
#include "llamad/kernels/gemm_int8.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_int8_internal.h"
#include "llamad/base/error.h"
#include "quant_internal.h"

/* Every output is the reference dot product of one row with one token. */
static void rows_ref(const struct llamad_weight *w, int64_t r0, int64_t r1, const void *x,
                     int32_t n_tokens, float *y, int64_t y_stride, void *work)
{
    (void)work;
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(w->type);
    const size_t x_row_bytes = llamad_act_row_bytes(ref->format, w->cols);
    for (int64_t r = r0; r < r1; r++)
        for (int32_t t = 0; t < n_tokens; t++)
            y[t * y_stride + r] = ref->dot(w->data + (size_t)r * w->row_bytes,
                                           (const uint8_t *)x + t * x_row_bytes, w->cols);
}

static const struct llamad_gemm_int8_kernels ref_kernels = {"scalar", 1, llamad_gemm_no_work,
                                                            rows_ref};

static bool has_int8_gemm(uint32_t type)
{
    return type == LLAMAD_TYPE_Q8_0 || type == LLAMAD_TYPE_Q4_0 || type == LLAMAD_TYPE_Q4_K ||
           type == LLAMAD_TYPE_Q5_K || type == LLAMAD_TYPE_Q6_K;
}

/* How a batch is quantized for weights of `type` (Q8 blocks, or Q8_K for the K-quants). */
static enum llamad_act_format act_format(uint32_t type)
{
    return llamad_act_kernels_ref(type)->format;
}

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_variant(uint32_t type, const char *isa)
{
    if (!has_int8_gemm(type))
        return NULL;
    if (!strcmp(isa, "scalar"))
        return &ref_kernels;
    if (!strcmp(isa, "avx512vnni"))
        return llamad_gemm_int8_vnni(type);
    if (!strcmp(isa, "amx"))
        return llamad_gemm_int8_amx(type);
    if (!strcmp(isa, "avx2"))
        return llamad_gemm_int8_avx2(type);
    return NULL;
}

/* AMX multiplies tiles of 16 tokens, so a smaller batch pays for the padding,
 * and it unpacks each panel on every call while VNNI reads the packed weights
 * as they are. Measured with llamad-bench -t 2, tokens/s VNNI vs AMX: 1.1B Q8_0
 * pp16 231 vs 224, pp24 291 vs 265, pp32 303 vs 329 (and pp512 323 vs 406
 * before the weights were packed at load); 110M Q8_0 decoding 16 sequences at
 * depth 128, 1430 vs 1337. With 8-token VNNI passes, 110M Q8_0 pp32 is a
 * tie (3,310-3,523 vs 3,302-3,371, noisy runs) and pp48 is AMX's (3,487-3,579
 * vs 3,907-3,967). */
#define AMX_MIN_TOKENS 32

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_for(uint32_t type, int32_t n_tokens)
{
    if (!has_int8_gemm(type))
        return NULL;
    const struct llamad_gemm_int8_kernels *amx =
        n_tokens >= AMX_MIN_TOKENS ? llamad_gemm_int8_amx(type) : NULL;
    const struct llamad_gemm_int8_kernels *fast = amx ? amx : llamad_gemm_int8_vnni(type);
    if (!fast)
        fast = llamad_gemm_int8_avx2(type);
    return fast ? fast : &ref_kernels;
}

/* From one token on, with the weights packed at load: decoding 110M Q8_0 at
 * depth 128 (llamad-bench -d 128 -t 2), tokens/s row kernels of llamad_matmul /
 * GEMM on packed weights: 1 sequence 288-293 / 365-372, 2: 391-409 / 574-590,
 * 4: 520-539 / 692-701, 8: 698-742 (GEMM packing on every call) / 775-851. The
 * reference never pays off. */
int32_t llamad_gemm_int8_min_tokens(uint32_t type)
{
    return llamad_gemm_int8_packs(type) ? 1 : INT32_MAX;
}

/* The fast kernels read packed weights; the reference reads the file's. */
bool llamad_gemm_int8_packs(uint32_t type)
{
    const struct llamad_gemm_int8_kernels *k = llamad_gemm_int8_for(type, 1);
    return k && k != &ref_kernels;
}

struct llamad_gemm_int8_scratch {
    int n_threads;
    int32_t max_tokens;
    int64_t max_cols;
    int32_t min_tokens;
    void *xq;      /* max_tokens rows of max_cols values, in either activation format */
    uint8_t *work; /* n_threads buffers, work_stride bytes apart */
    size_t work_stride;
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

int llamad_gemm_int8_scratch_create(int n_threads, int32_t max_tokens, int64_t max_cols,
                                    int32_t min_tokens, struct llamad_gemm_int8_scratch **out,
                                    char *err, size_t errsz)
{
    *out = NULL;
    if (n_threads < 1 || max_tokens < 1 || max_cols < 1 || min_tokens < 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "int8 gemm scratch: n_threads %d, max_tokens %d, max_cols %lld, "
                           "min_tokens %d",
                           n_threads, (int)max_tokens, (long long)max_cols, (int)min_tokens);
    /* the kernels of the smallest and the largest batch: the choice changes once */
    size_t work = 0;
    const uint32_t types[] = {LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_Q4_0, LLAMAD_TYPE_Q4_K,
                              LLAMAD_TYPE_Q5_K, LLAMAD_TYPE_Q6_K};
    const int32_t batches[] = {1, max_tokens};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        for (size_t j = 0; j < sizeof batches / sizeof batches[0]; j++) {
            size_t b = llamad_gemm_int8_for(types[i], batches[j])->work_bytes(max_cols, max_tokens);
            work = b > work ? b : work;
        }
    struct llamad_gemm_int8_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    *s = (struct llamad_gemm_int8_scratch){n_threads, max_tokens, max_cols,          min_tokens,
                                           NULL,      NULL,       round_up(work, 64)};
    const size_t q8 = llamad_act_row_bytes(LLAMAD_ACT_Q8, (int64_t)round_up((size_t)max_cols, 32));
    const size_t q8k =
        llamad_act_row_bytes(LLAMAD_ACT_Q8K, (int64_t)round_up((size_t)max_cols, LLAMAD_Q8K_BLOCK));
    s->xq = malloc((size_t)max_tokens * (q8 > q8k ? q8 : q8k));
    /* 64-byte aligned: the kernels read their panels with aligned vector loads */
    s->work = aligned_alloc(64, round_up((size_t)n_threads * s->work_stride, 64) + 64);
    if (!s->xq || !s->work) {
        llamad_gemm_int8_scratch_free(s);
        return llamad_fail(err, errsz, LLAMAD_ENOMEM,
                           "int8 gemm scratch: %d tokens of %lld columns", (int)max_tokens,
                           (long long)max_cols);
    }
    *out = s;
    return LLAMAD_OK;
}

void llamad_gemm_int8_scratch_free(struct llamad_gemm_int8_scratch *s)
{
    if (!s)
        return;
    free(s->xq);
    free(s->work);
    free(s);
}

struct gemm_task {
    const struct llamad_gemm_int8_scratch *s;
    const float *x;
    int32_t n_tokens;
    int64_t cols;
    enum llamad_act_format format; /* of the quantized batch, s->xq */
    size_t x_row_bytes;
    const struct llamad_matmul_out *outs;
    int n_outs;
    const struct llamad_gemm_int8_kernels *kernels[LLAMAD_GEMM_INT8_MAX_OUTS];
    int64_t total_panels; /* of all outputs, one after another */
    int64_t piece;        /* panels handed out at a time */
    atomic_int_fast64_t next_piece;
};

static void quantize_tokens(const struct gemm_task *t, int64_t begin, int64_t end)
{
    for (int64_t k = begin; k < end; k++)
        llamad_quantize_act(t->format, t->x + k * t->cols,
                            (uint8_t *)t->s->xq + (size_t)k * t->x_row_bytes, t->cols);
}

static void quantize_worker(void *ctx, int ith, int nth)
{
    const struct gemm_task *t = ctx;
    int64_t begin, end;
    llamad_split_range(t->n_tokens, ith, nth, &begin, &end);
    quantize_tokens(t, begin, end);
}

static int64_t panels_of(const struct llamad_weight *w)
{
    return (w->rows + LLAMAD_GEMM_PANEL_ROWS - 1) / LLAMAD_GEMM_PANEL_ROWS;
}

/* Panels [begin, end) of all outputs' panels, one after another. */
static void run_panels(const struct gemm_task *t, int64_t begin, int64_t end, void *work)
{
    int64_t base = 0;
    for (int o = 0; o < t->n_outs && begin < end; o++) {
        const struct llamad_weight *w = t->outs[o].w;
        const int64_t n = panels_of(w);
        const int64_t lo = begin > base ? begin - base : 0, hi = end - base < n ? end - base : n;
        if (lo < hi) {
            const int64_t r0 = lo * LLAMAD_GEMM_PANEL_ROWS;
            const int64_t r1 =
                hi * LLAMAD_GEMM_PANEL_ROWS < w->rows ? hi * LLAMAD_GEMM_PANEL_ROWS : w->rows;
            t->kernels[o]->rows(w, r0, r1, t->s->xq, t->n_tokens, t->outs[o].y, w->rows, work);
        }
        base += n;
    }
}

/* Pieces of panels are taken in order by whoever is free, so a thread that runs
 * late (the machine may be shared) leaves its share to the others. */
static void rows_worker(void *ctx, int ith, int nth)
{
    (void)nth;
    struct gemm_task *t = ctx;
    void *work = t->s->work + (size_t)ith * t->s->work_stride;
    for (;;) {
        const int64_t begin =
            atomic_fetch_add_explicit(&t->next_piece, 1, memory_order_relaxed) * t->piece;
        if (begin >= t->total_panels)
            return;
        run_panels(t, begin, begin + t->piece, work);
    }
}

bool llamad_gemm_int8(struct llamad_threadpool *pool, struct llamad_gemm_int8_scratch *s,
                      const float *x, int32_t n_tokens, const struct llamad_matmul_out *outs,
                      int n_outs)
{
    const int nth = llamad_threadpool_size(pool);
    if (n_tokens > s->max_tokens || nth > s->n_threads || n_outs < 1 ||
        n_outs > LLAMAD_GEMM_INT8_MAX_OUTS)
        return false;
    const int64_t cols = outs[0].w->cols;
    const enum llamad_act_format format =
        has_int8_gemm(outs[0].w->type) ? act_format(outs[0].w->type) : LLAMAD_ACT_Q8;
    struct gemm_task t = {s,    x,      n_tokens, cols, format, llamad_act_row_bytes(format, cols),
                          outs, n_outs, {NULL},   0,    0,      0};
    int32_t pieces_per_thread = INT32_MAX;
    for (int o = 0; o < n_outs; o++) {
        const struct llamad_weight *w = outs[o].w;
        const int32_t min = s->min_tokens ? s->min_tokens : llamad_gemm_int8_min_tokens(w->type);
        if (!has_int8_gemm(w->type) || n_tokens < min || w->cols > s->max_cols || w->cols != cols ||
            act_format(w->type) != format)
            return false;
        t.kernels[o] = llamad_gemm_int8_for(w->type, n_tokens);
        if (t.kernels[o] != &ref_kernels && !w->packed)
            return false;
        if (t.kernels[o]->pieces_per_thread < pieces_per_thread)
            pieces_per_thread = t.kernels[o]->pieces_per_thread;
        t.total_panels += panels_of(w);
    }
    const int64_t pieces = (int64_t)nth * pieces_per_thread;
    t.piece = (t.total_panels + pieces - 1) / pieces;
    if (n_tokens <= LLAMAD_QUANTIZE_ALONE_TOKENS)
        quantize_tokens(&t, 0, n_tokens);
    else
        llamad_threadpool_run(pool, quantize_worker, &t);
    llamad_threadpool_run(pool, rows_worker, &t);
    return true;
}
