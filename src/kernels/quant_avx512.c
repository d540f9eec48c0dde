/* AVX-512 row dequantizers for F32, F16 and BF16: 16 lanes at a time, masked
 * loads and stores for the tail. Chosen over the AVX2 ones at run time when the
 * CPU has AVX-512; the reference is in quant.c. */
#include <stdbool.h>
#include <stdint.h>

#include "llamad/kernels/cpu.h"
#include "llamad/kernels/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

/* Up to 16 elements starting at i, as floats; lanes past n are zero. */
typedef __m512 (*load16_fn)(const uint8_t *row, int64_t i, __mmask16 m);

AVX512_FN static inline __m512 load16_f32(const uint8_t *row, int64_t i, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
}

AVX512_FN static inline __m512 load16_f16(const uint8_t *row, int64_t i, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
}

AVX512_FN static inline __m512 load16_bf16(const uint8_t *row, int64_t i, __mmask16 m)
{
    __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)); /* bf16 is a float's top half */
}

static inline __mmask16 tail_mask(int64_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

AVX512_FN static inline void dequantize16(const void *row, float *dst, int64_t n, load16_fn load)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, load(row, i, m));
    }
}

#define DEQUANTIZER(name)                                                                          \
    AVX512_FN static void dequantize_##name(const void *row, float *dst, int64_t n)                \
    {                                                                                              \
        dequantize16(row, dst, n, load16_##name);                                                  \
    }

DEQUANTIZER(f32)
DEQUANTIZER(f16)
DEQUANTIZER(bf16)

static const struct llamad_kernels avx512_f32 = {"avx512", dequantize_f32};
static const struct llamad_kernels avx512_f16 = {"avx512", dequantize_f16};
static const struct llamad_kernels avx512_bf16 = {"avx512", dequantize_bf16};

const struct llamad_kernels *llamad_quant_avx512_kernels(uint32_t type)
{
    if (!llamad_cpu_runs(LLAMAD_CPU_AVX512))
        return NULL;
    switch (type) {
    case LLAMAD_TYPE_F32: return &avx512_f32;
    case LLAMAD_TYPE_F16: return &avx512_f16;
    case LLAMAD_TYPE_BF16: return &avx512_bf16;
    default: return NULL;
    }
}

#else

const struct llamad_kernels *llamad_quant_avx512_kernels(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
