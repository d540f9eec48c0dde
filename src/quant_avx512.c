/* AVX-512 float kernels for F32, F16 and BF16 weights: four 16-lane FMA
 * accumulators, masked loads for the tail, and a matmul that takes a batch of
 * tokens in tiles of rows by tokens. Chosen over the AVX2 ones at run time
 * when the CPU has AVX-512 (F, BW, VL); the reference is in quant.c. */
#include <stdbool.h>
#include <stdint.h>

#include "llamad/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__)

#include "quant_x86.h"

/* Bytes ahead of the row's current position that dot16 asks for: the hardware
 * prefetcher alone leaves it waiting on rows streamed from DRAM. */
enum { PREFETCH_AHEAD = 4096 };

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
/* Inlined into each kernel, so the loader and tile shape become constants there. */
#define AVX512_INLINE static inline __attribute__((always_inline, \
    target("avx512f,avx512bw,avx512vl,fma,f16c")))

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

/* One weight row by T tokens (up to 4; rows of n floats): each 16 weights are
 * converted once for the T tokens. Each (row, token) sum has four accumulators
 * taking 16 columns in turn, then the tail in the first; one token alone is the
 * plain dot product, and a token's sum comes out the same, bit for bit, whatever
 * T is: a sequence decodes to the same tokens alone or batched with others. */
AVX512_INLINE void row_by_tokens(const uint8_t *w, const float *x, int64_t n, int T,
                                 float *y, int64_t y_stride, load16_fn load, int elem_bytes)
{
    __m512 acc[4][4];
    for (int t = 0; t < T; t++)
        for (int a = 0; a < 4; a++)
            acc[t][a] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        prefetch_ahead(w + i * elem_bytes, PREFETCH_AHEAD, 64 * elem_bytes);
        for (int a = 0; a < 4; a++) {
            __m512 wv = load(w, i + 16 * a, 0xFFFF);
            for (int t = 0; t < T; t++)
                acc[t][a] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * n + i + 16 * a),
                                            acc[t][a]);
        }
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 wv = load(w, i, m);
        for (int t = 0; t < T; t++)
            acc[t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * n + i), acc[t][0]);
    }
    for (int t = 0; t < T; t++)
        y[t * y_stride] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]),
                                                             _mm512_add_ps(acc[t][2], acc[t][3])));
}

AVX512_FN static inline float dot16(const void *row, const float *x, int64_t n, load16_fn load,
                                   int elem_bytes)
{
    float y;
    row_by_tokens(row, x, n, 1, &y, 1, load, elem_bytes);
    return y;
}

AVX512_FN static inline void dequantize16(const void *row, float *dst, int64_t n, load16_fn load)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, load(row, i, m));
    }
}

/* Row by row, the tokens in fours (then a two and a one), so a weight is read and
 * converted once per 4 tokens. */
AVX512_INLINE void matmul16(const uint8_t *w, size_t row_bytes, int64_t n_rows,
                            const float *x, int32_t n_tok, int64_t n, float *y,
                            int64_t y_stride, load16_fn load, int elem_bytes)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *wr = w + r * row_bytes;
        int32_t t = 0;
        for (; t + 4 <= n_tok; t += 4)
            row_by_tokens(wr, x + t * n, n, 4, y + t * y_stride + r, y_stride, load, elem_bytes);
        for (; t + 2 <= n_tok; t += 2)
            row_by_tokens(wr, x + t * n, n, 2, y + t * y_stride + r, y_stride, load, elem_bytes);
        for (; t < n_tok; t++)
            row_by_tokens(wr, x + t * n, n, 1, y + t * y_stride + r, y_stride, load, elem_bytes);
    }
}

#define FLOAT_KERNELS(name, elem_bytes)                                                        \
    AVX512_FN static float dot_##name(const void *row, const float *x, int64_t n)             \
    {                                                                                          \
        return dot16(row, x, n, load16_##name, elem_bytes);                                   \
    }                                                                                          \
    AVX512_FN static void dequantize_##name(const void *row, float *dst, int64_t n)           \
    {                                                                                          \
        dequantize16(row, dst, n, load16_##name);                                             \
    }                                                                                          \
    AVX512_FN static void matmul_##name(const void *w, size_t row_bytes, int64_t n_rows,      \
                                        const float *x, int32_t n_tok, int64_t n, float *y,   \
                                        int64_t y_stride)                                      \
    {                                                                                          \
        matmul16(w, row_bytes, n_rows, x, n_tok, n, y, y_stride, load16_##name, elem_bytes);  \
    }

FLOAT_KERNELS(f32, 4)
FLOAT_KERNELS(f16, 2)
FLOAT_KERNELS(bf16, 2)

static const struct llamad_kernels avx512_f32 = {"avx512", dequantize_f32, dot_f32, matmul_f32};
static const struct llamad_kernels avx512_f16 = {"avx512", dequantize_f16, dot_f16, matmul_f16};
static const struct llamad_kernels avx512_bf16 = {"avx512", dequantize_bf16, dot_bf16,
                                                  matmul_bf16};

const struct llamad_kernels *llamad_quant_avx512_kernels(uint32_t type)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("fma"))
        return NULL;
    switch (type) {
    case LLAMAD_TYPE_F32:
        return &avx512_f32;
    case LLAMAD_TYPE_F16:
        return &avx512_f16;
    case LLAMAD_TYPE_BF16:
        return &avx512_bf16;
    default:
        return NULL;
    }
}

#else

const struct llamad_kernels *llamad_quant_avx512_kernels(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
