#include "llamad/ops.h"

#include <math.h>
#include <stdbool.h>

void llamad_rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps)
{
    double sum = 0.0; /* double: the sum of squares of a wide row loses digits in float */
    for (int32_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int32_t i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

void llamad_rope(float *v, int32_t n_heads, int32_t head_dim, int32_t n_rot, int32_t pos,
                 float base)
{
    /* The angle of pair i is pos * theta_scale^i, built by repeated multiplication. */
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int32_t i = 0; i < n_rot; i += 2) {
        const float c = cosf(theta), s = sinf(theta);
        for (int32_t h = 0; h < n_heads; h++) {
            float *p = v + (int64_t)h * head_dim + i;
            const float x0 = p[0], x1 = p[1];
            p[0] = x0 * c - x1 * s;
            p[1] = x0 * s + x1 * c;
        }
        theta *= theta_scale;
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

void llamad_silu_mul(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

struct matmul_task {
    const float *x;
    const struct llamad_q8_block *xq; /* x quantized, when some weight has integer kernels */
    int32_t n_tokens;
    const struct llamad_matmul_out *outs;
    int n_outs;
    int64_t total_rows;
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
            const bool integer = w->act && t->xq;
            const int64_t blocks = w->cols / LLAMAD_Q8_BLOCK;
            for (int64_t r = lo; r < hi; r++) {
                const uint8_t *row = w->data + (size_t)r * w->row_bytes;
                /* The row stays in L1 while every token's activations pass by it. */
                for (int32_t k = 0; k < t->n_tokens; k++)
                    y[(int64_t)k * w->rows + r] =
                        integer ? w->act->dot(row, t->xq + k * blocks, w->cols)
                                : w->kernels->dot(row, t->x + (int64_t)k * w->cols, w->cols);
            }
        }
        base += w->rows;
    }
}

static void matmul_worker(void *ctx, int ith, int nth)
{
    const struct matmul_task *t = ctx;
    int64_t begin, end;
    llamad_split_range(t->total_rows, ith, nth, &begin, &end);
    matmul_rows(t, begin, end);
}

void llamad_matmul(struct llamad_threadpool *pool, const float *x, int32_t n_tokens,
                   const struct llamad_matmul_out *outs, int n_outs,
                   struct llamad_q8_block *q8_scratch)
{
    struct matmul_task t = {x, NULL, n_tokens, outs, n_outs, 0};
    bool integer = false;
    for (int o = 0; o < n_outs; o++) {
        t.total_rows += outs[o].w->rows;
        integer |= outs[o].w->act != NULL;
    }
    int64_t cols = outs[0].w->cols;
    if (integer && q8_scratch && cols % LLAMAD_Q8_BLOCK == 0) {
        for (int32_t k = 0; k < n_tokens; k++)
            llamad_quantize_q8_blocks(x + (int64_t)k * cols,
                                      q8_scratch + (int64_t)k * (cols / LLAMAD_Q8_BLOCK), cols);
        t.xq = q8_scratch;
    }
    llamad_threadpool_run(pool, matmul_worker, &t);
}
