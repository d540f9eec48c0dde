/* The reference attention kernels and the choice of a fast variant. */
#include "llamad/attention.h"

#include <stddef.h>
#include <string.h>

#include "attention_internal.h"
#include "llamad/ops.h"
#include "quant_internal.h"

static void scores_ref(const float *q, int64_t q_stride, int n_q, const float *keys,
                       int64_t stride, int32_t rows, int32_t hd, float scale, float *scores,
                       int64_t s_stride)
{
    for (int i = 0; i < n_q; i++)
        for (int32_t r = 0; r < rows; r++) {
            const float *k = keys + r * stride;
            float dot = 0.0f;
            for (int32_t d = 0; d < hd; d++)
                dot += q[i * q_stride + d] * k[d];
            scores[i * s_stride + r] = dot * scale;
        }
}

static void weighted_sum_ref(const float *weights, int64_t w_stride, int n_q, const float *values,
                             int64_t stride, int32_t rows, int32_t hd, float *out, int64_t o_stride)
{
    for (int i = 0; i < n_q; i++)
        for (int32_t r = 0; r < rows; r++)
            for (int32_t d = 0; d < hd; d++)
                out[i * o_stride + d] += weights[i * w_stride + r] * values[r * stride + d];
}

static const struct llamad_attention_kernels ref_kernels = {"scalar", scores_ref,
                                                            llamad_softmax, weighted_sum_ref};

const struct llamad_attention_kernels *llamad_attention_variant(const char *isa)
{
    if (!strcmp(isa, "scalar"))
        return &ref_kernels;
    if (!strcmp(isa, "avx512"))
        return llamad_attention_avx512();
    return NULL;
}

const struct llamad_attention_kernels *llamad_attention_kernels(void)
{
    const struct llamad_attention_kernels *fast =
        llamad_quant_force_scalar() ? NULL : llamad_attention_avx512();
    return fast ? fast : &ref_kernels;
}
