/* The activation quantizers in AVX-512. llamad_quantize_q8_blocks bit for bit: the same float
 * operations in the same order on 16 lanes (amax, d = amax / 127, id = 1 / d, v * id), and roundf's
 * halfway cases away from zero done exactly as the truncated value plus one step wherever the
 * dropped fraction is at least one half. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "llamad/kernels/cpu.h"
#include "llamad/kernels/quant.h"
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
    const __m512 step =
        _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f))); /* +-1 */
    return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, step));
}

AVX512_FN static void quantize_q8_avx512(const float *x, struct llamad_q8_block *out, int64_t n)
{
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++) {
        const __m512 lo = _mm512_loadu_ps(x + b * LLAMAD_Q8_BLOCK);
        const __m512 hi = _mm512_loadu_ps(x + b * LLAMAD_Q8_BLOCK + 16);
        const float amax =
            _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
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
    return llamad_cpu_runs(LLAMAD_CPU_AVX512) ? quantize_q8_avx512 : NULL;
}

/* llamad_quantize_q8k_blocks bit for bit: the value of largest magnitude (its
 * first occurrence; NaNs never win), iscale = -127 / it, each value's product
 * with iscale rounded to nearest even (rintf), at most 127, and the sums of 16. */
AVX512_FN static void quantize_q8k_avx512(const float *x, struct llamad_q8k_block *out, int64_t n)
{
    enum { VECTORS = LLAMAD_Q8K_BLOCK / 16 };
    for (int64_t b = 0; b < n / LLAMAD_Q8K_BLOCK; b++, x += LLAMAD_Q8K_BLOCK) {
        struct llamad_q8k_block *o = &out[b];
        __m512 amax16 = _mm512_setzero_ps();
        for (int v = 0; v < VECTORS; v++) {
            const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + 16 * v));
            amax16 = _mm512_mask_max_ps(amax16, _mm512_cmp_ps_mask(a, a, _CMP_ORD_Q), amax16, a);
        }
        const float amax = _mm512_reduce_max_ps(amax16);
        memset(o, 0, sizeof *o);
        if (amax == 0.0f)
            continue;
        float max = 0.0f;
        for (int i = 0; i < LLAMAD_Q8K_BLOCK; i++)
            if (x[i] == amax || x[i] == -amax) {
                max = x[i];
                break;
            }
        const float iscale = -127.0f / max;
        for (int v = 0; v < VECTORS; v++) {
            const __m512 p = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * v), _mm512_set1_ps(iscale));
            /* the reference's range for rintf, then its NaN (0), 127 cap and int8 cast */
            const __m512 c = _mm512_min_ps(_mm512_max_ps(p, _mm512_set1_ps(-4194303.0f)),
                                           _mm512_set1_ps(4194303.0f));
            const __m512 r = _mm512_roundscale_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(r), _mm512_set1_epi32(127));
            q = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), q);
            q = _mm512_srai_epi32(_mm512_slli_epi32(q, 24), 24);
            _mm_storeu_si128((__m128i *)(o->qs + 16 * v), _mm512_cvtepi32_epi8(q));
            o->bsums[v] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        o->d = 1.0f / iscale;
    }
}

llamad_quantize_q8k_fn llamad_quantize_q8k_avx512(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX512) ? quantize_q8k_avx512 : NULL;
}

#else

llamad_quantize_q8_fn llamad_quantize_q8_avx512(void)
{
    return NULL;
}

llamad_quantize_q8k_fn llamad_quantize_q8k_avx512(void)
{
    return NULL;
}

#endif
