/* What the attention kernel files share. Private to src/kernels/attention*.c. */
#ifndef LLAMAD_ATTENTION_INTERNAL_H
#define LLAMAD_ATTENTION_INTERNAL_H

#include "llamad/kernels/attention.h"
#include "llamad/kernels/quant.h"

/* Of one variant's kernel sets, the one for cache rows of kv_type; NULL for a type
 * other than F32, F16 and Q8_0. */
static inline const struct llamad_attention_kernels *
llamad_attention_of_type(uint32_t kv_type, const struct llamad_attention_kernels *f32,
                         const struct llamad_attention_kernels *f16,
                         const struct llamad_attention_kernels *q8_0)
{
    return kv_type == LLAMAD_TYPE_F32    ? f32
           : kv_type == LLAMAD_TYPE_F16  ? f16
           : kv_type == LLAMAD_TYPE_Q8_0 ? q8_0
                                         : NULL;
}

/* attention_avx512.c: the AVX-512 kernels for cache rows of kv_type (F32, F16, Q8_0),
 * or NULL when the CPU lacks AVX-512. */
const struct llamad_attention_kernels *llamad_attention_avx512(uint32_t kv_type);

/* attention_avx2.c: the AVX2 kernels (with FMA and F16C) for cache rows of kv_type,
 * or NULL when the CPU lacks AVX2 (or LLAMAD_CPU caps the set below it). */
const struct llamad_attention_kernels *llamad_attention_avx2(uint32_t kv_type);

#endif
