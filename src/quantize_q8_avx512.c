/* llamad_quantize_q8_blocks in AVX-512, bit for bit: the same float operations
 * in the same order on 16 lanes (amax, d = amax / 127, id = 1 / d, v * id), and
 * roundf's halfway cases away from zero done exactly as the truncated value plus
 * one step wherever the dropped fraction is at least one half. */
#include <stdbool.h>
#include <stdint.h>

#include "llamad/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,f16c")))

/* roundf of 16 values of at most 127 in size. */
AVX512_FN static inline __m512i round_half_away(__m512 v)
{
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t)); /* exact */
    const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 step = _mm512_or_ps(_mm512_set1_ps(1.0f),
                                     _mm512_and_ps(v, _mm512_set1_ps(-0.0f))); /* +-1 */
    return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, step));
}

AVX512_FN static void quantize_q8_avx512(const float *x, struct llamad_q8_block *out, int64_t n)
{
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++) {
        const __m512 lo = _mm512_loadu_ps(x + b * LLAMAD_Q8_BLOCK);
        const __m512 hi = _mm512_loadu_ps(x + b * LLAMAD_Q8_BLOCK + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m512i qlo = round_half_away(_mm512_mul_ps(lo, _mm512_set1_ps(id)));
        const __m512i qhi = round_half_away(_mm512_mul_ps(hi, _mm512_set1_ps(id)));
        _mm_storeu_si128((__m128i *)out[b].qs, _mm512_cvtepi32_epi8(qlo));
        _mm_storeu_si128((__m128i *)(out[b].qs + 16), _mm512_cvtepi32_epi8(qhi));
        out[b].sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi));
        out[b].d = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

llamad_quantize_q8_fn llamad_quantize_q8_avx512(void)
{
    __builtin_cpu_init();
    bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
              __builtin_cpu_supports("f16c");
    return ok ? quantize_q8_avx512 : NULL;
}

#else

llamad_quantize_q8_fn llamad_quantize_q8_avx512(void)
{
    return NULL;
}

#endif
