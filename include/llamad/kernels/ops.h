/* The element-wise and matrix operations of the transformer. */
#ifndef LLAMAD_OPS_H
#define LLAMAD_OPS_H

#include <stdint.h>

#include "llamad/kernels/threadpool.h"
#include "llamad/kernels/weight.h"

/* out = x / sqrt(mean(x^2) + eps) * w, over n elements (out may alias x). */
void llamad_rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps);

/* Rotary position embedding, in place, on n_heads consecutive heads of head_dim
 * values: the first n_rot values of each head are rotated as adjacent pairs
 * (v[2i], v[2i+1]) by angle pos * base^(-2i / n_rot) / factors[i], the layout GGUF
 * LLaMA files store their Q and K rows for. factors (n_rot / 2 values, NULL for
 * none) are LLaMA-3.1's rope scaling, the file's rope_freqs.weight: each pair's
 * frequency divided by its factor. The rotations of a position are computed once
 * (cs[2i], cs[2i+1] = the cosine and sine of pair i's angle, n_rot values) and
 * serve every layer's queries and keys, so every attention path (one token,
 * batches, the cache's keys) sees them. */
void llamad_rope_angles(float *cs, int32_t n_rot, int32_t pos, float base, const float *factors);
void llamad_rope(float *v, int32_t n_heads, int32_t head_dim, int32_t n_rot, const float *cs);

/* In-place softmax of n values (max subtracted first). */
void llamad_softmax(float *x, int32_t n);

/* gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^-x): an AVX-512 kernel
 * where the CPU has it (within a few ulp of the reference), else the plain
 * reference, which LLAMAD_CPU=scalar forces. */
void llamad_silu_mul(float *gate, const float *up, int64_t n);
void llamad_silu_mul_ref(float *gate, const float *up, int64_t n);

/* One weight matrix and where its output goes in a joint matmul. */
struct llamad_matmul_out {
    const struct llamad_weight *w;
    float *y; /* n_tokens rows of w->rows values */
};

/* For every output o and token t: o.y[t][r] = dot(o.w row r, x[t]) where x holds
 * n_tokens rows of `cols` values (every o.w has that many columns). The rows of all
 * outputs together are split across the pool's threads, so a Q/K/V or gate/up
 * group is one parallel section. Weights with integer kernels (w->act) use x
 * quantized once, per activation format, into act_scratch, which holds
 * llamad_matmul_scratch_bytes(n_tokens, cols) (NULL: float kernels throughout). */
void llamad_matmul(struct llamad_threadpool *pool, const float *x, int32_t n_tokens,
                   const struct llamad_matmul_out *outs, int n_outs, void *act_scratch);
size_t llamad_matmul_scratch_bytes(int32_t n_tokens, int64_t cols);

#endif
