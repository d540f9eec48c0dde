/* Prompt processing on OpenBLAS: the matrix product of a batch of token
 * activations with a weight matrix, y[t][r] = dot(W row r, x[t]), done by
 * cblas_sgemm on float weight rows.
 *
 * The pool's threads split the weight's rows; each converts its rows to float a
 * tile at a time into its own buffer (F32 rows are used in place) and multiplies
 * the tile with all tokens in one sgemm call. OpenBLAS itself runs
 * single-threaded, inside the pool's threads.
 *
 * Usage, once per forward context:
 *     llamad_gemm_scratch_create(n_threads, widest_cols, 0, &s, err, errsz);
 * then per matrix product:
 *     if (!llamad_gemm_blas(pool, s, w, x, n_tokens, y, w->rows))
 *         llamad_matmul(...);   // a batch too small to pay off, or a weight it cannot take
 */
#ifndef LLAMAD_GEMM_H
#define LLAMAD_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/model.h"
#include "llamad/threadpool.h"

/* Sets OpenBLAS to one thread (the pool supplies the parallelism; a pthread
 * OpenBLAS would otherwise keep helper threads of its own spinning beside the
 * pool's) and returns llamad_blas_core(). Thread-safe; only the first call acts.
 * llamad_gemm_scratch_create calls it, so callers need it only to log the core. */
const char *llamad_blas_init(void);

/* The name of the kernel set OpenBLAS chose for this CPU ("SkylakeX", "Haswell",
 * ...). An OpenBLAS older than the CPU may fall back to a slow generic set such
 * as "Prescott"; OPENBLAS_CORETYPE in the environment at process start
 * overrides its choice. */
const char *llamad_blas_core(void);

/* When OpenBLAS runs a generic kernel set on a CPU with AVX2 or AVX-512, the
 * OPENBLAS_CORETYPE value that would use it ("SkylakeX", "Haswell"); NULL when the
 * kernel set in use already fits. OpenBLAS reads that variable as it loads,
 * before main(), so it has to be in the environment the process starts with. */
const char *llamad_blas_better_core(void);

/* Logs the kernel set at info level, and a warning naming the OPENBLAS_CORETYPE
 * to set when llamad_blas_better_core has one. For programs to call at start. */
void llamad_blas_log_core(void);

/* The smallest batch for which llamad_gemm_blas beats llamad_matmul on weights
 * of `type` with the OpenBLAS kernel set in use: measured crossovers for the
 * AVX-512 sets (SkylakeX, Cooperlake, SapphireRapids), the AVX2 sets (Haswell,
 * Zen) and everything else. INT32_MAX when it never does (integer-kernel types
 * on a generic set, types not measured). */
int32_t llamad_gemm_min_tokens(uint32_t type);

/* Per-thread buffers of dequantized weight tiles, for a pool of up to n_threads
 * threads and weights of up to max_cols columns: n_threads * 128 * max_cols
 * floats (11 MB for 2 threads and 11008 columns). min_tokens is the smallest
 * batch llamad_gemm_blas takes: 0 for llamad_gemm_min_tokens(w->type), n > 0 for
 * n whatever the type. One scratch serves one llamad_gemm_blas call at a time. */
struct llamad_gemm_scratch;

int llamad_gemm_scratch_create(int n_threads, int64_t max_cols, int32_t min_tokens,
                               struct llamad_gemm_scratch **out, char *err, size_t errsz);
void llamad_gemm_scratch_free(struct llamad_gemm_scratch *s);

/* y[t * y_stride + r] = sum over c of W[r][c] * x[t * w->cols + c], for every
 * row r < w->rows and token t < n_tokens (y_stride >= w->rows). Returns false,
 * computing nothing, when the batch is below the scratch's min_tokens, when the
 * weight's type is not computable, or when the weight or the pool is larger than
 * the scratch was made for; the caller then uses its own kernels. */
bool llamad_gemm_blas(struct llamad_threadpool *pool, struct llamad_gemm_scratch *s,
                      const struct llamad_weight *w, const float *x, int32_t n_tokens,
                      float *y, int64_t y_stride);

#endif
