#include "llamad/kernels/ops.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "llamad/kernels/gemm_float.h"
#include "ops_internal.h"
#include "quant_internal.h"

void llamad_rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps)
{
    double sum = 0.0; /* double: the sum of squares of a wide row loses digits in float */
    for (int32_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int32_t i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

void llamad_rope_angles(float *cs, int32_t n_rot, int32_t pos, float base, const float *factors)
{
    /* The angle of pair i is pos * theta_scale^i, built by repeated multiplication
     * (as the reference implementation does), then divided by the pair's factor. */
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int32_t i = 0; i < n_rot; i += 2) {
        const float angle = factors ? theta / factors[i / 2] : theta;
        cs[i] = cosf(angle);
        cs[i + 1] = sinf(angle);
        theta *= theta_scale;
    }
}

void llamad_rope(float *v, int32_t n_heads, int32_t head_dim, int32_t n_rot, const float *cs)
{
    for (int32_t i = 0; i < n_rot; i += 2) {
        const float c = cs[i], s = cs[i + 1];
        for (int32_t h = 0; h < n_heads; h++) {
            float *p = v + (int64_t)h * head_dim + i;
            const float x0 = p[0], x1 = p[1];
            p[0] = x0 * c - x1 * s;
            p[1] = x0 * s + x1 * c;
        }
    }
}

void llamad_softmax(float *x, int32_t n)
{
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int32_t i = 0; i < n; i++)
        x[i] *= inv;
}

void llamad_silu_mul_ref(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static llamad_silu_mul_fn silu_mul_kernel;

static void choose_silu_mul(void)
{
    llamad_silu_mul_fn fast = llamad_silu_mul_avx512();
    if (!fast)
        fast = llamad_silu_mul_avx2();
    silu_mul_kernel = fast ? fast : llamad_silu_mul_ref;
}

void llamad_silu_mul(float *gate, const float *up, int64_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, choose_silu_mul);
    silu_mul_kernel(gate, up, n);
}

struct matmul_task {
    const float *x;
    const void *xq[LLAMAD_ACT_FORMATS + 1]; /* x quantized per format, when used; by format */
    size_t xq_row[LLAMAD_ACT_FORMATS + 1];  /* bytes of one quantized row */
    int32_t n_tokens;
    const struct llamad_matmul_out *outs;
    int n_outs;
    int64_t total_rows;
    atomic_int_fast64_t next_chunk; /* chunks of rows are taken in order by whoever is free */
};

/* Rows [begin, end) of the concatenation of all outputs' rows. */
static void matmul_rows(const struct matmul_task *t, int64_t begin, int64_t end)
{
    int64_t base = 0;
    for (int o = 0; o < t->n_outs && begin < end; o++) {
        const struct llamad_weight *w = t->outs[o].w;
        int64_t lo = begin - base, hi = end - base;
        if (lo < w->rows && hi > 0) {
            if (lo < 0)
                lo = 0;
            if (hi > w->rows)
                hi = w->rows;
            float *y = t->outs[o].y;
            const uint8_t *xq = w->act ? t->xq[w->act->format] : NULL;
            const size_t xq_row = w->act ? t->xq_row[w->act->format] : 0;
            if (xq && w->act->matmul) {
                w->act->matmul(w->data + (size_t)lo * w->row_bytes, w->row_bytes, hi - lo, xq,
                               xq_row, t->n_tokens, w->cols, y + lo, w->rows);
            } else if (!xq && w->packed) {
                llamad_gemm_float_rows(w, lo, hi, t->x, t->n_tokens, y, w->rows);
            } else { /* integer rows, or float ones unpacked (the scalar set's reference) */
                for (int64_t r = lo; r < hi; r++) {
                    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
                    for (int32_t k = 0; k < t->n_tokens; k++)
                        y[(int64_t)k * w->rows + r] =
                            xq ? w->act->dot(row, xq + (size_t)k * xq_row, w->cols)
                               : llamad_dot_ref(w->type, row, t->x + (int64_t)k * w->cols, w->cols);
                }
            }
        }
        base += w->rows;
    }
}

/* Rows are handed out in chunks, about CHUNKS_PER_THREAD per thread, rather than in
 * one share each: a thread that starts late or is preempted (the machine is shared)
 * leaves its chunks to the others instead of holding up the whole matmul. Each row
 * is still read by one thread only, and a chunk is a multiple of CHUNK_ALIGN rows
 * so the kernels' row tiles stay whole. */
enum { CHUNKS_PER_THREAD = 8, CHUNK_ALIGN = LLAMAD_GEMM_FLOAT_PANEL };

static void matmul_worker(void *ctx, int ith, int nth)
{
    (void)ith;
    struct matmul_task *t = ctx;
    int64_t chunk =
        (t->total_rows + (int64_t)nth * CHUNKS_PER_THREAD - 1) / ((int64_t)nth * CHUNKS_PER_THREAD);
    chunk = (chunk + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
    for (;;) {
        int64_t begin = atomic_fetch_add_explicit(&t->next_chunk, 1, memory_order_relaxed) * chunk;
        if (begin >= t->total_rows)
            return;
        matmul_rows(t, begin, begin + chunk < t->total_rows ? begin + chunk : t->total_rows);
    }
}

size_t llamad_matmul_scratch_bytes(int32_t n_tokens, int64_t cols)
{
    size_t bytes = 0;
    for (int f = 1; f <= LLAMAD_ACT_FORMATS; f++)
        bytes += (size_t)n_tokens * llamad_act_row_bytes((enum llamad_act_format)f, cols) + 64;
    return bytes;
}

/* Where x quantized goes, for every activation format some output's weight uses. */
static void place_inputs(struct matmul_task *t, int64_t cols, uint8_t *scratch)
{
    for (int f = 1; f <= LLAMAD_ACT_FORMATS; f++) {
        bool used = false;
        for (int o = 0; o < t->n_outs; o++)
            used |= t->outs[o].w->act && (int)t->outs[o].w->act->format == f;
        size_t row = llamad_act_row_bytes((enum llamad_act_format)f, cols);
        if (!used || cols % (f == LLAMAD_ACT_Q8K ? LLAMAD_Q8K_BLOCK : LLAMAD_Q8_BLOCK) != 0)
            continue;
        t->xq[f] = scratch;
        t->xq_row[f] = row;
        scratch += (size_t)t->n_tokens * row + 64;
    }
}

/* Tokens [begin, end) of x quantized into every placed format. */
static void quantize_tokens(const struct matmul_task *t, int64_t begin, int64_t end)
{
    const int64_t cols = t->outs[0].w->cols;
    for (int f = 1; f <= LLAMAD_ACT_FORMATS; f++)
        for (int64_t k = begin; t->xq[f] && k < end; k++)
            llamad_quantize_act((enum llamad_act_format)f, t->x + k * cols,
                                (uint8_t *)t->xq[f] + (size_t)k * t->xq_row[f], cols);
}

static void quantize_worker(void *ctx, int ith, int nth)
{
    const struct matmul_task *t = ctx;
    int64_t begin, end;
    llamad_split_range(t->n_tokens, ith, nth, &begin, &end);
    quantize_tokens(t, begin, end);
}

void llamad_matmul(struct llamad_threadpool *pool, const float *x, int32_t n_tokens,
                   const struct llamad_matmul_out *outs, int n_outs, void *act_scratch)
{
    struct matmul_task t = {.x = x, .n_tokens = n_tokens, .outs = outs, .n_outs = n_outs};
    for (int o = 0; o < n_outs; o++)
        t.total_rows += outs[o].w->rows;
    if (act_scratch) {
        place_inputs(&t, outs[0].w->cols, act_scratch);
        if (n_tokens <= LLAMAD_QUANTIZE_ALONE_TOKENS)
            quantize_tokens(&t, 0, n_tokens);
        else
            llamad_threadpool_run(pool, quantize_worker, &t);
    }
    llamad_threadpool_run(pool, matmul_worker, &t);
}
