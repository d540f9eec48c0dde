/* What the int8 GEMM files share. Private to src/gemm_int8*.c. */
#ifndef LLAMAD_GEMM_INT8_INTERNAL_H
#define LLAMAD_GEMM_INT8_INTERNAL_H

#include "llamad/gemm_int8.h"

/* gemm_int8_vnni.c: the AVX-512 VNNI kernels of `type`, or NULL when this CPU
 * lacks VNNI or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_vnni(uint32_t type);

#endif
