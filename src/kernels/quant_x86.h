/* What the x86 kernel files share: the target attributes that let one binary
 * carry AVX2 and AVX-512 code chosen at run time, and two small helpers.
 * Include only inside `#if defined(__x86_64__)`. */
#ifndef LLAMAD_QUANT_X86_H
#define LLAMAD_QUANT_X86_H

#include <stdint.h>

#include <immintrin.h>

#include "llamad/format/half.h"

#define AVX2_TARGET "avx2,fma,f16c"
#define VNNI_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"
#define AVX2_FN __attribute__((target(AVX2_TARGET)))
#define VNNI_FN __attribute__((target(VNNI_TARGET)))
/* For helpers inlined into each kernel, so what is passed to them as constants
 * (a loader, a block format, a tile size) becomes straight-line code there. */
#define AVX2_INLINE static inline __attribute__((always_inline, target(AVX2_TARGET)))
#define VNNI_INLINE static inline __attribute__((always_inline, target(VNNI_TARGET)))

/* A stored half-precision scale, converted by the F16C instruction (a library
 * call per block would cost more than the block's arithmetic). */
AVX2_FN static inline float f16_at(const uint8_t *p)
{
    return _cvtsh_ss(llamad_load_le16(p));
}

/* Asks for the `bytes` bytes at p + distance, ahead of their use: weight rows
 * stream from memory once per matmul, and the hardware prefetcher alone leaves
 * the kernels waiting for them. A prefetch never faults, so an address past the
 * buffer is harmless; it is computed as an integer for that reason. Always
 * inlined: GCC drops a prefetch it inlines into a function of a wider target. */
static inline __attribute__((always_inline)) void prefetch_ahead(const uint8_t *p, size_t distance,
                                                                 int bytes)
{
    for (int i = 0; i < bytes; i += 64)
        _mm_prefetch((const char *)((uintptr_t)p + distance + (uintptr_t)i), _MM_HINT_T0);
}

/* Sum of the 8 lanes of v. */
AVX2_FN static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
