/* What the attention kernel files share. Private to src/attention*.c. */
#ifndef LLAMAD_ATTENTION_INTERNAL_H
#define LLAMAD_ATTENTION_INTERNAL_H

#include "llamad/kernels/attention.h"
#include "llamad/kernels/quant.h"

/* attention_avx512.c: the AVX-512 kernels for cache rows of kv_type (F32, F16, Q8_0),
 * or NULL when the CPU lacks AVX-512. */
const struct llamad_attention_kernels *llamad_attention_avx512(uint32_t kv_type);

#endif
