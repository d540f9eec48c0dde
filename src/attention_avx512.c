/* AVX-512 attention kernels: 16 head dimensions per vector, masked for a head
 * width that is not a multiple of 16. Scores take four cache rows at a time so
 * the query is loaded once for four; the weighted sum keeps 64 values of the
 * output head in registers while the rows stream past.
 * Reference: attention_kernels.c. */
#include <stdbool.h>
#include <stdint.h>

#include "attention_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

enum { CHUNK_VECTORS = 4 }; /* head values per pass of the weighted sum: 64 */

/* Lanes of the 16 values starting `left` before the end of a head (none when
 * left <= 0). */
static inline __mmask16 tail_mask(int32_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}

AVX512_FN static void scores_avx512(const float *q, const float *keys, int64_t stride,
                                    int32_t rows, int32_t hd, float scale, float *scores)
{
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        for (int32_t d = 0; d < hd; d += 16) {
            const __mmask16 m = tail_mask(hd - d);
            const __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
            for (int i = 0; i < 4; i++)
                acc[i] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, keys + (r + i) * stride + d),
                                         acc[i]);
        }
        for (int i = 0; i < 4; i++)
            scores[r + i] = _mm512_reduce_add_ps(acc[i]) * scale;
    }
    for (; r < rows; r++) {
        __m512 acc = _mm512_setzero_ps();
        for (int32_t d = 0; d < hd; d += 16) {
            const __mmask16 m = tail_mask(hd - d);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d),
                                  _mm512_maskz_loadu_ps(m, keys + r * stride + d), acc);
        }
        scores[r] = _mm512_reduce_add_ps(acc) * scale;
    }
}

AVX512_FN static void weighted_sum_avx512(const float *weights, const float *values,
                                          int64_t stride, int32_t rows, int32_t hd, float *out)
{
    for (int32_t d0 = 0; d0 < hd; d0 += 16 * CHUNK_VECTORS) {
        __mmask16 m[CHUNK_VECTORS];
        __m512 acc[CHUNK_VECTORS];
        for (int v = 0; v < CHUNK_VECTORS; v++) {
            m[v] = tail_mask(hd - d0 - 16 * v);
            acc[v] = _mm512_maskz_loadu_ps(m[v], out + d0 + 16 * v);
        }
        for (int32_t r = 0; r < rows; r++) {
            const __m512 w = _mm512_set1_ps(weights[r]);
            const float *row = values + r * stride + d0;
            for (int v = 0; v < CHUNK_VECTORS; v++)
                acc[v] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m[v], row + 16 * v), acc[v]);
        }
        for (int v = 0; v < CHUNK_VECTORS; v++)
            _mm512_mask_storeu_ps(out + d0 + 16 * v, m[v], acc[v]);
    }
}

static const struct llamad_attention_kernels avx512_kernels = {"avx512", scores_avx512,
                                                               weighted_sum_avx512};

const struct llamad_attention_kernels *llamad_attention_avx512(void)
{
    __builtin_cpu_init();
    bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
              __builtin_cpu_supports("fma");
    return ok ? &avx512_kernels : NULL;
}

#else

const struct llamad_attention_kernels *llamad_attention_avx512(void)
{
    return NULL;
}

#endif
