/* Block formats: conversion to and from float, and dot products of a stored
 * weight row with a float activation vector.
 *
 * Every format has a plain reference implementation (`*_ref`, scalar C that reads
 * like the format's definition) and a fast one chosen at run time by CPU detection
 * (llamad_kernels_for); tests hold the fast one to the reference. */
#ifndef LLAMAD_QUANT_H
#define LLAMAD_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "llamad/types.h"

/* IEEE half and bfloat16 <-> float. f32->f16 rounds to nearest even; f32->bf16 too. */
float llamad_f16_to_f32(uint16_t h);
uint16_t llamad_f32_to_f16(float f);
float llamad_bf16_to_f32(uint16_t h);
uint16_t llamad_f32_to_bf16(float f);

/* True when llamad can dequantize and dot-multiply rows of `type`. */
bool llamad_type_computable(uint32_t type);

/* Reference kernels. n is the row length in elements, a multiple of the type's block
 * size. `type` must be computable (callers check with llamad_type_computable). */
void llamad_dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n);
float llamad_dot_ref(uint32_t type, const void *row, const float *x, int64_t n);

/* Quantizers (reference only; used to write models). Supported for F32, F16, BF16,
 * Q8_0 and Q4_0, with the rounding of ggml's reference quantizers, so a file we
 * write is what those tools would write from the same floats. Returns false for a
 * type it cannot produce. */
bool llamad_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n);

/* The kernels to use on this CPU. */
struct llamad_kernels {
    const char *isa; /* "avx2", "scalar", ... : which implementation was chosen */
    void (*dequantize_row)(const void *src, float *dst, int64_t n);
    float (*dot)(const void *row, const float *x, int64_t n);
};

/* NULL for a type that is not computable. The result is constant for the process. */
const struct llamad_kernels *llamad_kernels_for(uint32_t type);

/* The reference kernels of `type`, wrapped in the same shape (for tests and for
 * forcing the scalar path). NULL for a type that is not computable. */
const struct llamad_kernels *llamad_kernels_ref(uint32_t type);

#endif
