/* The matrix products of a forward pass, each sent the fastest way for its batch
 * size and weight type: the row kernels of llamad_matmul for small batches (decode);
 * for large ones the int8 GEMM (llamad_gemm_int8) on Q8_0/Q4_0 weights, OpenBLAS
 * sgemm on dequantized weight tiles (llamad_gemm_blas) on the others.
 *
 * Usage, once per forward context:
 *     llamad_matmul_scratch_create(n_threads, max_tokens, widest_cols, &s, err, errsz);
 * then per product (group of outputs sharing one input):
 *     llamad_dispatch_matmul(pool, s, x, n_tokens, outs, n_outs);
 */
#ifndef LLAMAD_MATMUL_DISPATCH_H
#define LLAMAD_MATMUL_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "llamad/ops.h"
#include "llamad/threadpool.h"

/* The buffers every path needs, for a pool of up to n_threads threads, batches of
 * up to max_tokens and weights of up to max_cols columns. One scratch serves one
 * llamad_dispatch_matmul call at a time. */
struct llamad_matmul_scratch;

int llamad_matmul_scratch_create(int n_threads, int32_t max_tokens, int64_t max_cols,
                                 struct llamad_matmul_scratch **out, char *err, size_t errsz);
void llamad_matmul_scratch_free(struct llamad_matmul_scratch *s);

/* What llamad_matmul computes (every output o.y[t][r] = dot(o.w row r, x[t])), with
 * n_tokens <= max_tokens and every weight at most max_cols wide. */
void llamad_dispatch_matmul(struct llamad_threadpool *pool, struct llamad_matmul_scratch *s,
                            const float *x, int32_t n_tokens, const struct llamad_matmul_out *outs,
                            int n_outs);

#endif
