/* The inner loops of attention over cached keys and values: one query head
 * against a run of cache rows. Each has a plain reference and fast variants chosen
 * at run time; tests hold every variant this CPU runs to the reference. */
#ifndef LLAMAD_ATTENTION_H
#define LLAMAD_ATTENTION_H

#include <stdint.h>

struct llamad_attention_kernels {
    const char *isa; /* "avx512", "scalar" */
    /* scores[r] = scale * dot(q, keys + r * stride) over hd values, r < rows */
    void (*scores)(const float *q, const float *keys, int64_t stride, int32_t rows, int32_t hd,
                   float scale, float *scores);
    /* in-place softmax of n scores (llamad_softmax) */
    void (*softmax)(float *x, int32_t n);
    /* out[d] += sum over r < rows of weights[r] * values[r * stride + d], d < hd */
    void (*weighted_sum)(const float *weights, const float *values, int64_t stride, int32_t rows,
                         int32_t hd, float *out);
};

/* The fastest kernels this CPU runs (the reference under LLAMAD_FORCE_SCALAR). */
const struct llamad_attention_kernels *llamad_attention_kernels(void);

/* One named implementation ("scalar", "avx512"); NULL when this CPU cannot run it. */
const struct llamad_attention_kernels *llamad_attention_variant(const char *isa);

#endif
