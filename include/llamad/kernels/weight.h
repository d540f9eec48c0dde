/* A weight matrix as the kernels see it: its bytes (in place in the model file's
 * mapping), its shape and type, and the kernels chosen for it at load. */
#ifndef LLAMAD_WEIGHT_H
#define LLAMAD_WEIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "llamad/kernels/quant.h"

/* A weight matrix of `rows` output rows, each `cols` elements of `type`. */
struct llamad_weight {
    char name[48];
    uint32_t type;
    int64_t rows;
    int64_t cols;
    size_t row_bytes;
    const uint8_t *data;
    const struct llamad_kernels *kernels;
    const struct llamad_act_kernels *act; /* integer kernels on quantized activations, or NULL */
    const void *packed; /* data repacked for its GEMM (matmul_dispatch.h), or NULL */
};

#endif
