/* Matrix products in integer arithmetic: Q8_0 and Q4_0 weights times activations
 * quantized to Q8 blocks, K-quant weights (Q4_K, Q5_K, Q6_K) times Q8_K blocks,
 * many tokens at once.
 *
 * A kernel computes a range of a weight's rows for every token of a batch. The
 * fast ones read the weights packed once, at load (llamad_gemm_int8_pack), into
 * panels of 32 rows in the layout their instructions take directly (weight bytes
 * interleaved across rows, scales as vectors), and run every token of the batch
 * past each panel, so each weight byte loaded serves every token. They take any
 * batch, one token included: the packed layout also decodes a single token
 * faster than the row kernels of llamad_matmul. llamad_gemm_int8 hands the
 * panels out to a thread pool.
 * Each kernel set has the plain reference (llamad_gemm_int8_variant(type,
 * "scalar")) that the tests hold it to. */
#ifndef LLAMAD_GEMM_INT8_H
#define LLAMAD_GEMM_INT8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/kernels/ops.h"
#include "llamad/kernels/quant.h"
#include "llamad/kernels/threadpool.h"
#include "llamad/kernels/weight.h"

struct llamad_gemm_int8_kernels {
    const char *isa; /* "amx", "avx512vnni", "avx2", "scalar" */
    /* Pieces of a call per thread: several let a thread that runs late leave
     * its work to the others, one suits a kernel that prepares the whole batch
     * on every call. */
    int32_t pieces_per_thread;
    /* Bytes of the per-thread work buffer for weights of `cols` columns and
     * batches of up to max_tokens. */
    size_t (*work_bytes)(int64_t cols, int32_t max_tokens);
    /* y[t * y_stride + r] = dot(row r of w, x[t]) for r0 <= r < r1 and t < n_tokens,
     * x holding n_tokens rows of w->cols values quantized in the format of w's
     * type (struct llamad_q8_block or llamad_q8k_block, llamad_act_kernels_ref).
     * r0 is a multiple of 32 (a panel of the packed weights); the fast kernels
     * read w->packed, the reference w->data. */
    void (*rows)(const struct llamad_weight *w, int64_t r0, int64_t r1, const void *x,
                 int32_t n_tokens, float *y, int64_t y_stride, void *work);
};

/* The fastest kernels this CPU runs for weights of `type` and batches of n_tokens
 * (the reference under LLAMAD_CPU=scalar); NULL for a type other than Q8_0, Q4_0,
 * Q4_K, Q5_K and Q6_K. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_for(uint32_t type, int32_t n_tokens);

/* One named implementation ("scalar", "avx2", "avx512vnni", "amx"), for tests that hold every
 * variant to the reference; NULL when this CPU cannot run it or `type` has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_variant(uint32_t type, const char *isa);

/* Whether this CPU's kernels for `type` read packed weights (false under
 * LLAMAD_CPU=scalar, on CPUs without them and for other types). */
bool llamad_gemm_int8_packs(uint32_t type);

/* Bytes of w's packed copy, and the copy itself (64-byte aligned memory) made
 * from w->data; a model stores it in w->packed. */
size_t llamad_gemm_int8_packed_bytes(uint32_t type, int64_t rows, int64_t cols);
void llamad_gemm_int8_pack(const struct llamad_weight *w, void *packed);

/* The smallest batch from which llamad_gemm_int8 beats the row kernels of
 * llamad_matmul on this CPU; INT32_MAX when it never does. */
int32_t llamad_gemm_int8_min_tokens(uint32_t type);

/* Buffers for llamad_gemm_int8: quantized activations for up to max_tokens rows of
 * up to max_cols columns, and one work buffer per thread of a pool of up to
 * n_threads. min_tokens is the smallest batch llamad_gemm_int8 takes: 0 for
 * llamad_gemm_int8_min_tokens of each weight's type, n > 0 for n whatever the
 * type. One scratch serves one call at a time. */
struct llamad_gemm_int8_scratch;

int llamad_gemm_int8_scratch_create(int n_threads, int32_t max_tokens, int64_t max_cols,
                                    int32_t min_tokens, struct llamad_gemm_int8_scratch **out,
                                    char *err, size_t errsz);
void llamad_gemm_int8_scratch_free(struct llamad_gemm_int8_scratch *s);

#define LLAMAD_GEMM_INT8_MAX_OUTS 8

/* What llamad_matmul computes for the outputs (every o.y[t][r] = dot(o.w row r,
 * x[t])): x quantized once, then the weights' panels handed out to the pool.
 * Returns false, computing nothing, unless every weight has int8 GEMM kernels
 * (llamad_gemm_int8_for), packed weights when those are the fast ones, and
 * n_tokens reaches the scratch's min_tokens for each; when the weights want
 * activations in different formats (Q4_0 beside Q4_K); and when the batch, a
 * weight or the pool is larger than the scratch was made for, or there are more
 * than LLAMAD_GEMM_INT8_MAX_OUTS outputs. */
bool llamad_gemm_int8(struct llamad_threadpool *pool, struct llamad_gemm_int8_scratch *s,
                      const float *x, int32_t n_tokens, const struct llamad_matmul_out *outs,
                      int n_outs);

#endif
