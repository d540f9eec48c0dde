/* e^x on 16 lanes of AVX-512, for the kernels that need it (softmax, SiLU).
 * Include only from x86-64 code compiled with these targets. */
#ifndef LLAMAD_EXP_AVX512_H
#define LLAMAD_EXP_AVX512_H

#include <immintrin.h>

/* Within a few ulp of expf for x <= 0 (the callers keep to that domain): x = n
 * ln2 + r with |r| <= ln2 / 2 (ln2 in two parts so n ln2 is exact), a degree-6
 * polynomial for e^r, and 2^n applied by vscalefps (which underflows to 0
 * cleanly). */
__attribute__((target("avx512f,fma"))) static inline __m512 llamad_exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f)); /* e^-104 is 0 in float */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    static const float c[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                              4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
    __m512 p = _mm512_set1_ps(c[0]);
    for (int i = 1; i < 6; i++)
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

#endif
