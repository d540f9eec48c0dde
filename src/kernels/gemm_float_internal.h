/* What the float GEMM files share. Private to src/gemm_float*.c. */
#ifndef LLAMAD_GEMM_FLOAT_INTERNAL_H
#define LLAMAD_GEMM_FLOAT_INTERNAL_H

#include <stdint.h>

#include "llamad/kernels/gemm_float.h"

/* One instruction set's kernels, by weight type. */
struct llamad_gemm_float_set {
    llamad_gemm_float_fn f32, f16, bf16;
};

/* gemm_float_avx512.c, gemm_float_avx2.c: the kernels, or NULL when this process's
 * kernel set does not run them. */
const struct llamad_gemm_float_set *llamad_gemm_float_avx512(void);
const struct llamad_gemm_float_set *llamad_gemm_float_avx2(void);

/* Bytes of one packed panel of a weight of `cols` columns, elements of elem_bytes. */
static inline size_t llamad_gemm_float_panel_bytes(int64_t cols, int elem_bytes)
{
    return (size_t)cols * LLAMAD_GEMM_FLOAT_PANEL * (size_t)elem_bytes;
}

#endif
