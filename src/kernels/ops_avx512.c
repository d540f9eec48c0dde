/* The element-wise operations worth a vector kernel: SiLU, which calls expf
 * for every value of the feed-forward layer's width for every token.
 * Reference: llamad_silu_mul_ref in ops.c. */
#include <stdbool.h>
#include <stdint.h>

#include "llamad/kernels/cpu.h"
#include "ops_internal.h"

#if defined(__x86_64__)

#include "exp_x86.h"

#define AVX512_FN __attribute__((target("avx512f,avx512dq,fma")))

/* silu(x) = x / (1 + e^-x), computed as x / (1 + e) for x >= 0 and x e / (1 + e)
 * for x < 0 with e = e^-|x|: the exponential stays at or below 1, where it is
 * accurate, and nothing overflows. */
AVX512_FN static void silu_mul_avx512(float *gate, const float *up, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, gate + i);
        const __m512 e = llamad_exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
        const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        const __m512 num = _mm512_mask_mul_ps(x, negative, x, e);
        const __m512 silu = _mm512_div_ps(num, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(m, up + i)));
    }
}

llamad_silu_mul_fn llamad_silu_mul_avx512(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX512) ? silu_mul_avx512 : NULL;
}

#else

llamad_silu_mul_fn llamad_silu_mul_avx512(void)
{
    return NULL;
}

#endif
