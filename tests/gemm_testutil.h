/* Random int8 GEMM operands, shared by the GEMM's tests and its benchmark. */
#ifndef LLAMAD_GEMM_TESTUTIL_H
#define LLAMAD_GEMM_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/kernels/quant.h"
#include "llamad/kernels/weight.h"

/* Whether `type` is a K-quant (Q4_K, Q5_K, Q6_K), whose blocks hold 256 values
 * and whose activations are Q8_K blocks. */
bool gemm_test_is_k(uint32_t type);
/* Values per weight block and per activation block (32, or 256 for the K-quants). */
int64_t gemm_test_block_values(uint32_t type);
/* The activation format weights of `type` take. */
enum llamad_act_format gemm_test_format(uint32_t type);

/* Random blocks: any byte for the quantized values and the K-quants' sub-block
 * scales and mins (Q8_0 and Q6_K extremes included), a random half-precision
 * scale in [-0.1, 0.1] (and Q4_K's dmin), with the packed copy the fast
 * kernels read (test_rand_u32's sequence). Aborts when out of memory. */
struct llamad_weight gemm_test_weight(uint32_t type, int64_t rows, int64_t cols);
/* As gemm_test_weight, with every byte of the values, scales and mins `fill`
 * (the half-precision scales stay random): the extremes a kernel's 16-bit sums
 * must not saturate on. */
struct llamad_weight gemm_test_weight_filled(uint32_t type, int64_t rows, int64_t cols,
                                             uint8_t fill);
void gemm_test_weight_free(struct llamad_weight *w);

/* n_tokens rows of cols activations in the format weights of `type` take:
 * random bytes, scales and their sums. */
struct gemm_test_acts {
    uint8_t *x;
    size_t row_bytes; /* one token's */
};
struct gemm_test_acts gemm_test_activations(uint32_t type, int32_t n_tokens, int64_t cols);
/* As gemm_test_activations, every value `value` (the quantizers' range is
 * -127..127). */
struct gemm_test_acts gemm_test_activations_filled(uint32_t type, int32_t n_tokens, int64_t cols,
                                                   int8_t value);

#endif
