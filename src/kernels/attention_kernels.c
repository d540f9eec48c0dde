/* The reference attention kernels and the choice of a fast variant. */
#include "llamad/kernels/attention.h"

#include <stddef.h>
#include <string.h>

#include "attention_internal.h"
#include "llamad/format/types.h"
#include "llamad/kernels/ops.h"
#include "llamad/kernels/quant.h"
#include "quant_internal.h"

/* Element i of a cache row of `type`, as a float (Q8_0: its block's scale times
 * its byte). */
static float kv_value(uint32_t type, const void *row, int64_t i)
{
    if (type == LLAMAD_TYPE_F16)
        return llamad_f16_to_f32(((const uint16_t *)row)[i]);
    if (type == LLAMAD_TYPE_Q8_0) {
        const uint8_t *block = (const uint8_t *)row + i / LLAMAD_QK8_0 * LLAMAD_Q8_0_BYTES;
        return llamad_load_f16(block) * (float)(int8_t)block[2 + i % LLAMAD_QK8_0];
    }
    return ((const float *)row)[i];
}

/* Value d of key r, in the type's layout (attention.h). */
static float key_value(uint32_t type, const void *keys, int64_t stride, int32_t r, int32_t d)
{
    return llamad_attention_keys_by_dimension(type) ? kv_value(type, keys, d * stride + r)
                                                    : kv_value(type, keys, r * stride + d);
}

static void scores_ref(uint32_t type, const float *q, int64_t q_stride, int n_q, const void *keys,
                       int64_t stride, int32_t rows, int32_t hd, float scale, float *scores,
                       int64_t s_stride)
{
    for (int i = 0; i < n_q; i++)
        for (int32_t r = 0; r < rows; r++) {
            float dot = 0.0f;
            for (int32_t d = 0; d < hd; d++)
                dot += q[i * q_stride + d] * key_value(type, keys, stride, r, d);
            scores[i * s_stride + r] = dot * scale;
        }
}

static void weighted_sum_ref(uint32_t type, const float *weights, int64_t w_stride, int n_q,
                             const void *values, int64_t stride, int32_t rows, int32_t hd,
                             float *out, int64_t o_stride)
{
    for (int i = 0; i < n_q; i++)
        for (int32_t r = 0; r < rows; r++)
            for (int32_t d = 0; d < hd; d++)
                out[i * o_stride + d] +=
                    weights[i * w_stride + r] * kv_value(type, values, r * stride + d);
}

#define REF_KERNELS(name, type)                                                                    \
    static void scores_ref_##name(const float *q, int64_t q_stride, int n_q, const void *keys,     \
                                  int64_t stride, int32_t rows, int32_t hd, float scale,           \
                                  float *scores, int64_t s_stride)                                 \
    {                                                                                              \
        scores_ref(type, q, q_stride, n_q, keys, stride, rows, hd, scale, scores, s_stride);       \
    }                                                                                              \
    static void weighted_sum_ref_##name(const float *weights, int64_t w_stride, int n_q,           \
                                        const void *values, int64_t stride, int32_t rows,          \
                                        int32_t hd, float *out, int64_t o_stride)                  \
    {                                                                                              \
        weighted_sum_ref(type, weights, w_stride, n_q, values, stride, rows, hd, out, o_stride);   \
    }                                                                                              \
    static const struct llamad_attention_kernels ref_##name = {                                    \
        "scalar", type, scores_ref_##name, llamad_softmax, weighted_sum_ref_##name};

REF_KERNELS(f32, LLAMAD_TYPE_F32)
REF_KERNELS(f16, LLAMAD_TYPE_F16)
REF_KERNELS(q8_0, LLAMAD_TYPE_Q8_0)

static const struct llamad_attention_kernels *ref_kernels(uint32_t kv_type)
{
    return llamad_attention_of_type(kv_type, &ref_f32, &ref_f16, &ref_q8_0);
}

const struct llamad_attention_kernels *llamad_attention_variant(const char *isa, uint32_t kv_type)
{
    if (!ref_kernels(kv_type))
        return NULL;
    if (!strcmp(isa, "scalar"))
        return ref_kernels(kv_type);
    if (!strcmp(isa, "avx512"))
        return llamad_attention_avx512(kv_type);
    if (!strcmp(isa, "avx2"))
        return llamad_attention_avx2(kv_type);
    return NULL;
}

const struct llamad_attention_kernels *llamad_attention_kernels(uint32_t kv_type)
{
    if (!ref_kernels(kv_type))
        return NULL;
    const struct llamad_attention_kernels *fast = llamad_attention_avx512(kv_type);
    if (!fast)
        fast = llamad_attention_avx2(kv_type);
    return fast ? fast : ref_kernels(kv_type);
}
