/* The activation quantizers in AVX2, for CPUs without AVX-512: the same float
 * operations in the same order as the references (llamad_quantize_q8_blocks,
 * llamad_quantize_q8k_blocks) and the AVX-512 quantizers, on 8 lanes, so all
 * give the same bits. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "llamad/kernels/cpu.h"
#include "llamad/kernels/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__)

#include "quant_x86.h"

AVX2_INLINE __m256 abs_ps(__m256 v)
{
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

AVX2_INLINE float max_lane(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

AVX2_INLINE int32_t sum_lanes(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

/* roundf of 8 values of at most 127 in size: the truncated value, plus one
 * step away from zero wherever the dropped fraction (exact) is at least one half. */
AVX2_INLINE __m256i round_half_away(__m256 v)
{
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(abs_ps(_mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 step = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
    return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, step)));
}

/* Int32 lanes of int8 range, 8 from each of a and b, as 16 bytes in order. */
AVX2_INLINE __m128i bytes_of_two(__m256i a, __m256i b)
{
    const __m256i words = _mm256_packs_epi32(a, b); /* a0-3 b0-3 | a4-7 b4-7 */
    const __m256i bytes = _mm256_packs_epi16(words, words);
    return _mm256_castsi256_si128(
        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5)));
}

AVX2_FN static void quantize_q8_avx2(const float *x, struct llamad_q8_block *out, int64_t n)
{
    enum { VECTORS = LLAMAD_Q8_BLOCK / 8 };
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++) {
        __m256 v[VECTORS];
        __m256 amax8 = _mm256_setzero_ps();
        for (int i = 0; i < VECTORS; i++) {
            v[i] = _mm256_loadu_ps(x + b * LLAMAD_Q8_BLOCK + 8 * i);
            amax8 = _mm256_max_ps(amax8, abs_ps(v[i]));
        }
        const float amax = max_lane(amax8);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256i q[VECTORS];
        for (int i = 0; i < VECTORS; i++)
            q[i] = round_half_away(_mm256_mul_ps(v[i], _mm256_set1_ps(id)));
        _mm_storeu_si128((__m128i *)out[b].qs, bytes_of_two(q[0], q[1]));
        _mm_storeu_si128((__m128i *)(out[b].qs + 16), bytes_of_two(q[2], q[3]));
        out[b].sum =
            sum_lanes(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        out[b].d = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

llamad_quantize_q8_fn llamad_quantize_q8_avx2(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX2) ? quantize_q8_avx2 : NULL;
}

/* The value of largest magnitude (its first occurrence; NaNs never win),
 * iscale = -127 / it, each value's product with iscale rounded to nearest even
 * (rintf), at most 127, and the sums of 16. */
AVX2_FN static void quantize_q8k_avx2(const float *x, struct llamad_q8k_block *out, int64_t n)
{
    enum { SIXTEENS = LLAMAD_Q8K_BLOCK / 16 };
    for (int64_t b = 0; b < n / LLAMAD_Q8K_BLOCK; b++, x += LLAMAD_Q8K_BLOCK) {
        struct llamad_q8k_block *o = &out[b];
        __m256 amax8 = _mm256_setzero_ps();
        for (int i = 0; i < LLAMAD_Q8K_BLOCK; i += 8) {
            const __m256 a = abs_ps(_mm256_loadu_ps(x + i));
            amax8 =
                _mm256_blendv_ps(amax8, _mm256_max_ps(amax8, a), _mm256_cmp_ps(a, a, _CMP_ORD_Q));
        }
        const float amax = max_lane(amax8);
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
        for (int s = 0; s < SIXTEENS; s++) {
            __m256i q[2];
            for (int h = 0; h < 2; h++) {
                const __m256 p =
                    _mm256_mul_ps(_mm256_loadu_ps(x + 16 * s + 8 * h), _mm256_set1_ps(iscale));
                /* the reference's range for rintf, then its NaN (0), 127 cap and int8 cast */
                const __m256 c = _mm256_min_ps(_mm256_max_ps(p, _mm256_set1_ps(-4194303.0f)),
                                               _mm256_set1_ps(4194303.0f));
                const __m256 r = _mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                __m256i v = _mm256_min_epi32(_mm256_cvtps_epi32(r), _mm256_set1_epi32(127));
                v = _mm256_and_si256(v, _mm256_castps_si256(_mm256_cmp_ps(p, p, _CMP_ORD_Q)));
                q[h] = _mm256_srai_epi32(_mm256_slli_epi32(v, 24), 24);
            }
            _mm_storeu_si128((__m128i *)(o->qs + 16 * s), bytes_of_two(q[0], q[1]));
            o->bsums[s] = (int16_t)sum_lanes(_mm256_add_epi32(q[0], q[1]));
        }
        o->d = 1.0f / iscale;
    }
}

llamad_quantize_q8k_fn llamad_quantize_q8k_avx2(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX2) ? quantize_q8k_avx2 : NULL;
}

#else

llamad_quantize_q8_fn llamad_quantize_q8_avx2(void)
{
    return NULL;
}

llamad_quantize_q8k_fn llamad_quantize_q8k_avx2(void)
{
    return NULL;
}

#endif
