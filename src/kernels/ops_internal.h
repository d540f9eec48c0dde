/* What ops.c and its vector kernels share. Private to src/ops*.c. */
#ifndef LLAMAD_OPS_INTERNAL_H
#define LLAMAD_OPS_INTERNAL_H

#include "llamad/kernels/ops.h"

typedef void (*llamad_silu_mul_fn)(float *gate, const float *up, int64_t n);

/* ops_avx512.c: the AVX-512 SiLU, or NULL when this CPU lacks AVX-512. */
llamad_silu_mul_fn llamad_silu_mul_avx512(void);
/* ops_avx2.c: the AVX2 SiLU, or NULL when this CPU lacks AVX2 and FMA. */
llamad_silu_mul_fn llamad_silu_mul_avx2(void);

#endif
