/* AVX2/F16C row dequantizers for F32, F16, BF16, Q8_0 and Q4_0, and the F16C
 * conversion of a row to halves.
 *
 * Each function carries its own target attribute, so this file builds without -march
 * flags; none of its code runs unless the CPU check in llamad_quant_avx2_kernels
 * passed. Dequantizing gives the same floats as the reference (one rounding of
 * q * d, or an exact conversion). */
#include "llamad/kernels/cpu.h"
#include "llamad/kernels/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__) || defined(__i386__)

#include "quant_x86.h"

/* ---- float types: F32, F16, BF16 ---- */

/* Eight weights starting at element i, as floats. */
typedef __m256 (*load8_fn)(const uint8_t *row, int64_t i);
/* Weight i as a float, for the tail shorter than eight. */
typedef float (*load1_fn)(const uint8_t *row, int64_t i);

AVX2_INLINE __m256 load8_f32(const uint8_t *row, int64_t i)
{
    return _mm256_loadu_ps((const float *)(row + 4 * i));
}

AVX2_INLINE float load1_f32(const uint8_t *row, int64_t i)
{
    return llamad_f32_from_bits(llamad_load_le32(row + 4 * i));
}

AVX2_INLINE __m256 load8_f16(const uint8_t *row, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
}

AVX2_INLINE float load1_f16(const uint8_t *row, int64_t i)
{
    return _cvtsh_ss(llamad_load_le16(row + 2 * i));
}

AVX2_INLINE __m256 load8_bf16(const uint8_t *row, int64_t i)
{
    __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}

AVX2_INLINE float load1_bf16(const uint8_t *row, int64_t i)
{
    return llamad_bf16_to_f32(llamad_load_le16(row + 2 * i));
}

AVX2_INLINE void dequantize_plain(const uint8_t *w, float *dst, int64_t n, load8_fn load8,
                                  load1_fn load1)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load8(w, i));
    for (; i < n; i++)
        dst[i] = load1(w, i);
}

AVX2_FN static void dequantize_f32(const void *src, float *dst, int64_t n)
{
    dequantize_plain(src, dst, n, load8_f32, load1_f32);
}

AVX2_FN static void dequantize_f16(const void *src, float *dst, int64_t n)
{
    dequantize_plain(src, dst, n, load8_f16, load1_f16);
}

AVX2_FN static void dequantize_bf16(const void *src, float *dst, int64_t n)
{
    dequantize_plain(src, dst, n, load8_bf16, load1_bf16);
}

/* ---- 32-element blocks: Q8_0, Q4_0 ---- */

/* The 32 weights of one block as floats, in element order, eight per vector. */
typedef void (*block32_fn)(const uint8_t *block, __m256 w[4]);

/* The block's fp16 scale d, in every lane. */
AVX2_INLINE __m256 block_scale(const uint8_t *block)
{
    return _mm256_set1_ps(_cvtsh_ss(llamad_load_le16(block)));
}

/* The lowest eight int8 lanes of q, times d. */
AVX2_INLINE __m256 scaled_i8x8(__m128i q, __m256 d)
{
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
}

AVX2_INLINE void weights_q8_0(const uint8_t *block, __m256 w[4])
{
    __m256 d = block_scale(block);
    __m128i q0 = _mm_loadu_si128((const __m128i *)(block + 2));
    __m128i q1 = _mm_loadu_si128((const __m128i *)(block + 2 + 16));
    w[0] = scaled_i8x8(q0, d);
    w[1] = scaled_i8x8(_mm_srli_si128(q0, 8), d);
    w[2] = scaled_i8x8(q1, d);
    w[3] = scaled_i8x8(_mm_srli_si128(q1, 8), d);
}

AVX2_INLINE void weights_q4_0(const uint8_t *block, __m256 w[4])
{
    __m256 d = block_scale(block);
    __m128i qs = _mm_loadu_si128((const __m128i *)(block + 2));
    __m128i nibble = _mm_set1_epi8(0x0F);
    __m128i eight = _mm_set1_epi8(8);
    __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, nibble), eight); /* elements 0..15 */
    __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), nibble), eight);
    w[0] = scaled_i8x8(lo, d);
    w[1] = scaled_i8x8(_mm_srli_si128(lo, 8), d);
    w[2] = scaled_i8x8(hi, d);
    w[3] = scaled_i8x8(_mm_srli_si128(hi, 8), d);
}

AVX2_INLINE void dequantize_block32(const uint8_t *row, float *dst, int64_t n, size_t block_bytes,
                                    block32_fn weights)
{
    for (int64_t i = 0; i < n; i += 32, row += block_bytes) {
        __m256 w[4];
        weights(row, w);
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(dst + i + 8 * k, w[k]);
    }
}

AVX2_FN static void dequantize_q8_0(const void *src, float *dst, int64_t n)
{
    dequantize_block32(src, dst, n, LLAMAD_Q8_0_BYTES, weights_q8_0);
}

AVX2_FN static void dequantize_q4_0(const void *src, float *dst, int64_t n)
{
    dequantize_block32(src, dst, n, LLAMAD_Q4_0_BYTES, weights_q4_0);
}

/* ---- selection ---- */

static const struct llamad_kernels avx2_kernels[LLAMAD_TYPE_ID_LIMIT] = {
    [LLAMAD_TYPE_F32] = {"avx2", dequantize_f32},   [LLAMAD_TYPE_F16] = {"avx2", dequantize_f16},
    [LLAMAD_TYPE_BF16] = {"avx2", dequantize_bf16}, [LLAMAD_TYPE_Q8_0] = {"avx2", dequantize_q8_0},
    [LLAMAD_TYPE_Q4_0] = {"avx2", dequantize_q4_0},
};

const struct llamad_kernels *llamad_quant_avx2_kernels(uint32_t type)
{
    if (type >= LLAMAD_TYPE_ID_LIMIT || avx2_kernels[type].dequantize_row == NULL ||
        !llamad_cpu_runs(LLAMAD_CPU_AVX2))
        return NULL;
    return &avx2_kernels[type];
}

/* vcvtps2ph rounds to nearest even, as the reference does. */
AVX2_FN static void f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = llamad_f32_to_f16(x[i]);
}

llamad_f32_to_f16_row_fn llamad_f32_to_f16_row_avx2(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX2) ? f32_to_f16_row_f16c : NULL;
}

#else

llamad_f32_to_f16_row_fn llamad_f32_to_f16_row_avx2(void)
{
    return NULL;
}

const struct llamad_kernels *llamad_quant_avx2_kernels(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
