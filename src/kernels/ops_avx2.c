/* The AVX2 SiLU: ops_avx512.c's, 8 lanes at a time. A width that does not end
 * on a whole vector finishes in a zero-padded copy of its tail, so every value
 * goes through the same arithmetic. Reference: llamad_silu_mul_ref in ops.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "llamad/kernels/cpu.h"
#include "ops_internal.h"

#if defined(__x86_64__)

#include "exp_x86.h"

#define AVX2_FN __attribute__((target("avx2,fma")))

enum { LANES = 8 };

/* silu(x) = x / (1 + e) for x >= 0 and x e / (1 + e) for x < 0, with
 * e = e^-|x| <= 1, as in ops_avx512.c. */
AVX2_FN static __m256 silu8(__m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 e = llamad_exp8(_mm256_sub_ps(zero, magnitude));
    const __m256 negative = _mm256_cmp_ps(x, zero, _CMP_LT_OQ);
    const __m256 num = _mm256_blendv_ps(x, _mm256_mul_ps(x, e), negative);
    return _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

AVX2_FN static void silu_mul_avx2(float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        const __m256 silu = silu8(_mm256_loadu_ps(gate + i));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    if (i == n)
        return;
    float gate_tail[LANES] = {0}, up_tail[LANES] = {0};
    const size_t left = (size_t)(n - i) * sizeof(float);
    memcpy(gate_tail, gate + i, left);
    memcpy(up_tail, up + i, left);
    const __m256 silu = silu8(_mm256_loadu_ps(gate_tail));
    _mm256_storeu_ps(gate_tail, _mm256_mul_ps(silu, _mm256_loadu_ps(up_tail)));
    memcpy(gate + i, gate_tail, left);
}

llamad_silu_mul_fn llamad_silu_mul_avx2(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX2) ? silu_mul_avx2 : NULL;
}

#else

llamad_silu_mul_fn llamad_silu_mul_avx2(void)
{
    return NULL;
}

#endif
