/* The inner loops of attention over cached keys and values: up to
 * LLAMAD_ATTENTION_QUERIES query heads (consecutive entries of one sequence, say)
 * against the same run of cache rows, so each row loaded serves all of them.
 * There is a set for each type of cache row, F32, F16 (keys and values read
 * as halves and widened to floats) and Q8_0 (blocks of 32 bytes and a scale;
 * head widths and strides then multiples of 32). Each has a plain reference and fast variants
 * chosen at run time; tests hold every variant this CPU runs to the reference. */
#ifndef LLAMAD_ATTENTION_H
#define LLAMAD_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "llamad/format/types.h"

#define LLAMAD_ATTENTION_QUERIES 8

struct llamad_attention_kernels {
    const char *isa;  /* "avx512", "avx2", "scalar" */
    uint32_t kv_type; /* the cache rows': LLAMAD_TYPE_F32, _F16 or _Q8_0 */
    /* For n_q (1..LLAMAD_ATTENTION_QUERIES) queries of hd values at q + i * q_stride:
     * scores[i * s_stride + r] = scale * dot(query i, key r), r < rows. F32 and F16
     * keys are laid out by dimension, value d of key r at keys[d * stride + r] (as a
     * cache block holds them: one load brings 16 keys' values of a dimension, 8 in
     * AVX2, so no dot product needs a horizontal sum); Q8_0 keys, whose blocks run along
     * the dimensions, by row, key r at keys + r * stride. Strides of keys and
     * values count elements of kv_type. */
    void (*scores)(const float *q, int64_t q_stride, int n_q, const void *keys, int64_t stride,
                   int32_t rows, int32_t hd, float scale, float *scores, int64_t s_stride);
    /* in-place softmax of n scores (llamad_softmax) */
    void (*softmax)(float *x, int32_t n);
    /* For n_q weight rows at weights + i * w_stride and outputs at out + i * o_stride:
     * out_i[d] += sum over r < rows of weights_i[r] * values[r * stride + d], d < hd. */
    void (*weighted_sum)(const float *weights, int64_t w_stride, int n_q, const void *values,
                         int64_t stride, int32_t rows, int32_t hd, float *out, int64_t o_stride);
};

/* Whether the scores kernels for kv_type take keys laid out by dimension (F32,
 * F16) rather than by row (Q8_0, whose blocks run along the dimensions). */
static inline bool llamad_attention_keys_by_dimension(uint32_t kv_type)
{
    return kv_type != LLAMAD_TYPE_Q8_0;
}

/* The fastest kernels this CPU runs for cache rows of kv_type (F32, F16 or Q8_0;
 * the reference under LLAMAD_CPU=scalar); NULL for another type. */
const struct llamad_attention_kernels *llamad_attention_kernels(uint32_t kv_type);

/* One named implementation ("scalar", "avx2", "avx512"); NULL when this CPU cannot run it
 * or kv_type is not F32, F16 or Q8_0. */
const struct llamad_attention_kernels *llamad_attention_variant(const char *isa, uint32_t kv_type);

#endif
