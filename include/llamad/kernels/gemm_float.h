/* Float weights (F32, F16, BF16) times float activations, packed once at load
 * into panels, with a result that does not depend on the batch.
 *
 * The arithmetic, the same in every kernel set: y[t][r] starts at 0 and takes
 * w[r][k] * x[t][k] for k = 0, 1, ..., cols - 1 in that order, each step one
 * fused multiply-add in float. A vector lane holds one (row, token) sum, so
 * neither the tile shape nor the vector width nor the batch changes a single
 * bit: a request's logits are the same alone or batched with others, and the
 * AVX2 and AVX-512 kernels agree with the plain reference bit for bit.
 *
 * The packed layout: panels of LLAMAD_GEMM_FLOAT_PANEL rows, one after another;
 * within a panel, column after column, the panel's rows' values at that column
 * side by side in the weight's own type (so a vector load takes 16 rows' values
 * of one column). Rows past the weight's last are zeros. Same bytes as the file's.
 *
 * Usage: a model packs every float weight for which llamad_gemm_float_packs()
 * holds into w->packed (llamad_gemm_float_pack); llamad_matmul then computes its
 * rows with llamad_gemm_float_rows. */
#ifndef LLAMAD_GEMM_FLOAT_H
#define LLAMAD_GEMM_FLOAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/kernels/weight.h"

#define LLAMAD_GEMM_FLOAT_PANEL 32

/* y[t * y_stride + r] for r0 <= r < r1 and t < n_tokens, x holding n_tokens rows
 * of w->cols floats; the fast kernels read w->packed, the reference w->data. */
typedef void (*llamad_gemm_float_fn)(const struct llamad_weight *w, int64_t r0, int64_t r1,
                                     const float *x, int32_t n_tokens, float *y, int64_t y_stride);

/* The fastest kernel this CPU's kernel set has for `type`, NULL when it has none
 * (types other than F32, F16 and BF16; the scalar set, whose row kernels read the
 * weights unpacked). */
llamad_gemm_float_fn llamad_gemm_float_for(uint32_t type);

/* One named implementation ("scalar", "avx2", "avx512"), for tests; NULL when this
 * CPU's kernel set does not run it or `type` has none. "scalar" is the reference
 * of the arithmetic above, reading the unpacked rows. */
llamad_gemm_float_fn llamad_gemm_float_variant(uint32_t type, const char *isa);

/* Whether the weights of `type` are packed on this CPU (llamad_gemm_float_for). */
bool llamad_gemm_float_packs(uint32_t type);

/* Bytes of w's packed copy, and the copy itself (64-byte aligned memory) made from
 * w->data. */
size_t llamad_gemm_float_packed_bytes(uint32_t type, int64_t rows, int64_t cols);
void llamad_gemm_float_pack(const struct llamad_weight *w, void *packed);

/* Computes rows [r0, r1) with llamad_gemm_float_for(w->type), which must exist. */
void llamad_gemm_float_rows(const struct llamad_weight *w, int64_t r0, int64_t r1, const float *x,
                            int32_t n_tokens, float *y, int64_t y_stride);

#endif
