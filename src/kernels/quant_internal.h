/* What the files of the quantization module share: the functions one defines
 * and another registers. Private to the quant*.c
 * files of src/kernels/; callers use llamad/kernels/quant.h. */
#ifndef LLAMAD_QUANT_INTERNAL_H
#define LLAMAD_QUANT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "llamad/kernels/quant.h"

/* quant_avx2.c: the AVX2/F16C row dequantizer of `type`, or NULL when the CPU
 * lacks those features or the type has none. */
const struct llamad_kernels *llamad_quant_avx2_kernels(uint32_t type);

/* quant_avx2.c: llamad_f32_to_f16_row with F16C, or NULL when the CPU lacks it. */
typedef void (*llamad_f32_to_f16_row_fn)(const float *x, uint16_t *y, int64_t n);
llamad_f32_to_f16_row_fn llamad_f32_to_f16_row_avx2(void);

/* quant_avx512.c: the AVX-512 row dequantizer of `type` (F32, F16, BF16), or NULL. */
const struct llamad_kernels *llamad_quant_avx512_kernels(uint32_t type);

/* quant_act_x86.c: the integer kernels of `type` in one instruction set,
 * "avx512vnni" or "avx2", or NULL when this CPU lacks it or the type has none. */
const struct llamad_act_kernels *llamad_act_kernels_x86(uint32_t type, const char *isa);

/* quantize_q8_avx512.c: llamad_quantize_q8_blocks and llamad_quantize_q8k_blocks
 * in AVX-512, or NULL when the CPU lacks it. */
llamad_quantize_q8_fn llamad_quantize_q8_avx512(void);
typedef void (*llamad_quantize_q8k_fn)(const float *x, struct llamad_q8k_block *out, int64_t n);
llamad_quantize_q8k_fn llamad_quantize_q8k_avx512(void);

/* quant_act_k.c: the reference integer kernels of the K-quants (Q4_K, Q5_K, Q6_K on
 * Q8_K activations), or NULL for another type. */
const struct llamad_act_kernels *llamad_act_k_kernels_ref(uint32_t type);

/* quant_act_k_x86.c: the integer K-quant kernels of one instruction set, "avx512vnni"
 * or "avx2" (which the caller has checked this CPU runs), or NULL when `type` is not
 * Q4_K, Q5_K or Q6_K. */
const struct llamad_act_kernels *llamad_act_k_kernels_x86(uint32_t type, const char *isa);

/* quantize_q8_avx2.c: the same in AVX2, or NULL when the CPU lacks it. */
llamad_quantize_q8_fn llamad_quantize_q8_avx2(void);
llamad_quantize_q8k_fn llamad_quantize_q8k_avx2(void);

/* quant_k.c: one 256-element block of a K-quant to floats and back. */
void llamad_dequantize_block_q4_k(const uint8_t *block, float *out);
void llamad_dequantize_block_q5_k(const uint8_t *block, float *out);
void llamad_dequantize_block_q6_k(const uint8_t *block, float *out);
void llamad_quantize_block_q4_k(const float *x, uint8_t *block);
void llamad_quantize_block_q5_k(const float *x, uint8_t *block);
void llamad_quantize_block_q6_k(const float *x, uint8_t *block);

/* quant_k.c: activations in Q8_K blocks (ggml's quantize_row_q8_K rounding). */
void llamad_quantize_q8k_blocks(const float *x, struct llamad_q8k_block *out, int64_t n);

#endif
