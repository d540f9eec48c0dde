/* The inner loops of attention over cached keys and values: up to
 * LLAMAD_ATTENTION_QUERIES query heads (consecutive entries of one sequence, say)
 * against the same run of cache rows, so each row loaded serves all of them.
 * Each has a plain reference and fast variants chosen at run time; tests hold
 * every variant this CPU runs to the reference. */
#ifndef LLAMAD_ATTENTION_H
#define LLAMAD_ATTENTION_H

#include <stdint.h>

#define LLAMAD_ATTENTION_QUERIES 4

struct llamad_attention_kernels {
    const char *isa; /* "avx512", "scalar" */
    /* For n_q (1..LLAMAD_ATTENTION_QUERIES) queries of hd values at q + i * q_stride:
     * scores[i * s_stride + r] = scale * dot(query i, keys + r * stride), r < rows. */
    void (*scores)(const float *q, int64_t q_stride, int n_q, const float *keys, int64_t stride,
                   int32_t rows, int32_t hd, float scale, float *scores, int64_t s_stride);
    /* in-place softmax of n scores (llamad_softmax) */
    void (*softmax)(float *x, int32_t n);
    /* For n_q weight rows at weights + i * w_stride and outputs at out + i * o_stride:
     * out_i[d] += sum over r < rows of weights_i[r] * values[r * stride + d], d < hd. */
    void (*weighted_sum)(const float *weights, int64_t w_stride, int n_q, const float *values,
                         int64_t stride, int32_t rows, int32_t hd, float *out, int64_t o_stride);
};

/* The fastest kernels this CPU runs (the reference under LLAMAD_FORCE_SCALAR). */
const struct llamad_attention_kernels *llamad_attention_kernels(void);

/* One named implementation ("scalar", "avx512"); NULL when this CPU cannot run it. */
const struct llamad_attention_kernels *llamad_attention_variant(const char *isa);

#endif
