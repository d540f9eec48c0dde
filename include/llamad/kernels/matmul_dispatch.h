/* The matrix products of a forward pass, each sent to its weight type's kernels:
 * the int8 GEMM (llamad_gemm_int8) for Q8_0/Q4_0 weights where the CPU has VNNI,
 * llamad_matmul otherwise (the float GEMM on packed F32/F16/BF16 panels, integer
 * dot products on quantized activations for the other types).
 *
 * A weight type takes one arithmetic at every batch size, so a token's outputs are
 * the same bits whatever else is in its batch: a request's answer does not depend
 * on the server's load. (OpenBLAS, which once took large batches, summed in
 * another order than the kernels of small ones; it is no longer used.)
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

#include "llamad/kernels/ops.h"
#include "llamad/kernels/threadpool.h"

/* The buffers every path needs, for a pool of up to n_threads threads, batches of
 * up to max_tokens and weights of up to max_cols columns. One scratch serves one
 * llamad_dispatch_matmul call at a time. */
struct llamad_matmul_scratch;

int llamad_matmul_scratch_create(int n_threads, int32_t max_tokens, int64_t max_cols,
                                 struct llamad_matmul_scratch **out, char *err, size_t errsz);
void llamad_matmul_scratch_free(struct llamad_matmul_scratch *s);

/* The bytes of w's packed copy when the kernels this CPU runs read w packed (the
 * int8 GEMM's Q8_0 and Q4_0 panels, the float GEMM's F32, F16 and BF16 panels), 0
 * when they read the file's rows; and the copy itself, made into 64-byte aligned
 * memory of that size, which the model keeps in w->packed. */
size_t llamad_matmul_packed_bytes(const struct llamad_weight *w);
void llamad_matmul_pack(const struct llamad_weight *w, void *packed);

/* What llamad_matmul computes (every output o.y[t][r] = dot(o.w row r, x[t])), with
 * n_tokens <= max_tokens and every weight at most max_cols wide. */
void llamad_dispatch_matmul(struct llamad_threadpool *pool, struct llamad_matmul_scratch *s,
                            const float *x, int32_t n_tokens, const struct llamad_matmul_out *outs,
                            int n_outs);

#endif
