/* Block formats: conversion to and from float, and dot products of a stored
 * weight row with a float activation vector.
 *
 * Every format has a plain reference implementation (`*_ref`, scalar C that reads
 * like the format's definition). Rows are dequantized by a fast one chosen at run
 * time by CPU detection (llamad_kernels_for); tests hold it to the reference. The
 * float dot product has the reference only: wherever a fast kernel set runs, float
 * weights are multiplied by the packed GEMM of gemm_float.h and quantized ones on
 * integer activations (below), so a fast float dot would never run. */
#ifndef LLAMAD_QUANT_H
#define LLAMAD_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/format/half.h" /* the scalar conversions, for the kernels' callers */
#include "llamad/format/types.h"

/* n floats to halves, each as llamad_f32_to_f16 rounds it (F16C when the CPU has it). */
void llamad_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);

/* True when llamad can dequantize and dot-multiply rows of `type`. */
bool llamad_type_computable(uint32_t type);

/* Reference kernels. n is the row length in elements, a multiple of the type's block
 * size. `type` must be computable (callers check with llamad_type_computable). */
void llamad_dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n);
/* Also the row kernel of llamad_matmul for weights with neither integer kernels nor a
 * packed copy (float weights in the scalar kernel set). */
float llamad_dot_ref(uint32_t type, const void *row, const float *x, int64_t n);

/* Quantizers (reference only; used to write models). Supported for F32, F16, BF16,
 * Q8_0, Q4_0, Q4_K, Q5_K and Q6_K, with the rounding of ggml's reference quantizers, so a file we
 * write is what those tools would write from the same floats. Returns false for a
 * type it cannot produce. */
bool llamad_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n);

/* The row dequantizer to use on this CPU (rows of the token embedding, as a
 * token's activations). */
struct llamad_kernels {
    const char *isa; /* "avx2", "scalar", ... : which implementation was chosen */
    void (*dequantize_row)(const void *src, float *dst, int64_t n);
};

/* NULL for a type that is not computable. The result is constant for the process. */
const struct llamad_kernels *llamad_kernels_for(uint32_t type);

/* The reference kernels of `type`, wrapped in the same shape (for tests and for
 * forcing the scalar path). NULL for a type that is not computable. */
const struct llamad_kernels *llamad_kernels_ref(uint32_t type);

/* One named implementation ("scalar", "avx2", "avx512"), whichever the CPU would
 * pick: for tests that hold every variant to the reference. NULL when this CPU
 * cannot run it or it has no kernels for `type`. */
const struct llamad_kernels *llamad_kernels_variant(uint32_t type, const char *isa);

/* ---- Integer dot products on quantized activations ----
 * For quantized weights the fastest dot product multiplies 8-bit integers: an
 * activation row is quantized once per matmul (with the rounding of ggml's Q8_0 or
 * Q8_K, so results match llama.cpp's), and every weight row is then dotted with it
 * in integer arithmetic, one float multiply per block. */
enum llamad_act_format {
    LLAMAD_ACT_Q8 = 1,  /* 32-value blocks, struct llamad_q8_block (Q8_0, Q4_0 weights) */
    LLAMAD_ACT_Q8K = 2, /* 256-value blocks, struct llamad_q8k_block (K-quant weights) */
};
#define LLAMAD_ACT_FORMATS 2

#define LLAMAD_Q8_BLOCK LLAMAD_QK8_0 /* as the Q8_0 and Q4_0 weights' blocks */

struct llamad_q8_block {
    float d;     /* scale: value = d * qs[i] (d is the half-precision-rounded scale) */
    int32_t sum; /* sum of qs, for formats whose weights carry an offset (Q4_0: -8) */
    int8_t qs[LLAMAD_Q8_BLOCK];
};

#define LLAMAD_Q8K_BLOCK LLAMAD_QK_K /* as the K-quants' blocks */

struct llamad_q8k_block {
    float d; /* value = d * qs[i] */
    int8_t qs[LLAMAD_Q8K_BLOCK];
    int16_t bsums[16]; /* sums of qs over each 16 values, for the K-quants' minimums */
};

/* Quantizes n floats (a multiple of 32) into n / 32 blocks. */
void llamad_quantize_q8_blocks(const float *x, struct llamad_q8_block *out, int64_t n);

/* The fastest implementation of llamad_quantize_q8_blocks this CPU runs, with
 * bit-identical results (the reference itself under LLAMAD_CPU=scalar). */
typedef void (*llamad_quantize_q8_fn)(const float *x, struct llamad_q8_block *out, int64_t n);
llamad_quantize_q8_fn llamad_quantize_q8_fast(void);

/* n floats (a multiple of 32) as GGUF Q8_0 blocks (half-precision scale, 32
 * bytes), with the fastest Q8 quantizer: the bytes llamad_quantize_row_ref gives. */
void llamad_quantize_q8_0_row(const float *x, void *out, int64_t n);

/* Batches up to this many tokens have their activations quantized by the calling
 * thread; larger ones by the whole thread pool (a pass of the pool costs more
 * than a few tokens' work). */
#define LLAMAD_QUANTIZE_ALONE_TOKENS 4

/* Bytes n values take in format f (n a multiple of its block), and the quantizer. */
size_t llamad_act_row_bytes(enum llamad_act_format f, int64_t n);
void llamad_quantize_act(enum llamad_act_format f, const float *x, void *out, int64_t n);

struct llamad_act_kernels {
    const char *isa; /* "avx512vnni", "avx2", "scalar" */
    enum llamad_act_format format;
    /* dot of a weight row of n elements with n activations quantized in `format` */
    float (*dot)(const void *row, const void *x, int64_t n);
    /* Optional (NULL: call dot per row and token): n_rows weight rows row_bytes
     * apart times n_tok activation rows x_stride bytes apart, y[t * y_stride + r] =
     * dot(row r, x_t). Each weight block is read once for all the tokens, and each
     * activation block once for several rows. */
    void (*matmul)(const void *w, size_t row_bytes, int64_t n_rows, const void *x, size_t x_stride,
                   int32_t n_tok, int64_t n, float *y, int64_t y_stride);
};

/* The integer kernels for weights of `type` on this CPU; NULL for types that keep
 * float activations (F32, F16, BF16). LLAMAD_CPU=scalar selects the reference. */
const struct llamad_act_kernels *llamad_act_kernels_for(uint32_t type);
/* The plain reference of the same, for tests. */
const struct llamad_act_kernels *llamad_act_kernels_ref(uint32_t type);
/* One named implementation ("scalar", "avx2", "avx512vnni"), for tests that hold
 * every variant to the reference. NULL when this CPU cannot run it or it has no
 * kernels for `type`. */
const struct llamad_act_kernels *llamad_act_kernels_variant(uint32_t type, const char *isa);

#endif
