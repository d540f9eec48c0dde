/* e^x on vectors, 16 lanes of AVX-512 and 8 of AVX2, for the kernels that need
 * it (softmax, SiLU). Within a few ulp of expf for x <= 0 (the callers keep to
 * that domain): x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts so n ln2 is
 * exact), a degree-6 polynomial for e^r, and 2^n applied. Include only from
 * x86-64 code compiled with these targets. */
#ifndef LLAMAD_EXP_X86_H
#define LLAMAD_EXP_X86_H

#include <immintrin.h>

#define LLAMAD_EXP_LOG2E 1.44269504f
#define LLAMAD_EXP_LN2_HIGH 0.693359375f
#define LLAMAD_EXP_LN2_LOW -2.12194440e-4f
/* e^r = 1 + r + r^2 (c[0] r^5 + c[1] r^4 + ... + c[5]) */
#define LLAMAD_EXP_TERMS 6
static const float llamad_exp_coefficients[LLAMAD_EXP_TERMS] = {1.9875691500e-4f, 1.3981999507e-3f,
                                                                8.3334519073e-3f, 4.1665795894e-2f,
                                                                1.6666665459e-1f, 5.0000001201e-1f};

/* 2^n applied by vscalefps, which underflows to 0 cleanly. */
__attribute__((target("avx512f,fma"))) static inline __m512 llamad_exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f)); /* e^-104 is 0 in float */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LLAMAD_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LLAMAD_EXP_LN2_HIGH), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LLAMAD_EXP_LN2_LOW), r);
    __m512 p = _mm512_set1_ps(llamad_exp_coefficients[0]);
    for (int i = 1; i < LLAMAD_EXP_TERMS; i++)
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(llamad_exp_coefficients[i]));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* 2^n written into the exponent bits, which hold only normal floats: below -87,
 * where e^x leaves them, the result is 0 (expf's is below 1.7e-38). */
__attribute__((target("avx2,fma"))) static inline __m256 llamad_exp8(__m256 x)
{
    const __m256 lowest = _mm256_set1_ps(-87.0f);
    const __m256 normal = _mm256_cmp_ps(x, lowest, _CMP_GE_OQ);
    x = _mm256_max_ps(x, lowest);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LLAMAD_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LLAMAD_EXP_LN2_HIGH), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LLAMAD_EXP_LN2_LOW), r);
    __m256 p = _mm256_set1_ps(llamad_exp_coefficients[0]);
    for (int i = 1; i < LLAMAD_EXP_TERMS; i++)
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(llamad_exp_coefficients[i]));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i exponent = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    const __m256 two_to_n = _mm256_castsi256_ps(_mm256_slli_epi32(exponent, 23));
    return _mm256_and_ps(_mm256_mul_ps(p, two_to_n), normal);
}

#endif
