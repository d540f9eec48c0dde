/* Integer dot products of Q8_0 / Q4_0 weight rows with Q8-quantized activations:
 * AVX-512 VNNI (vpdpbusd, two 32-value blocks per instruction) and AVX2
 * (vpmaddubsw + vpmaddwd). Both multiply unsigned by signed bytes, so a signed
 * weight is split into its magnitude and a sign moved onto the activation; Q4_0's
 * nibbles are unsigned already and its offset of 8 comes off with the block sums.
 * Chosen at run time; reference in quant_act.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "llamad/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__)

#include "quant_x86.h"

enum { Q8_0_BYTES = 34, Q4_0_BYTES = 18 };

/* ---- AVX2 ---- */

/* Sum over 32 bytes of unsigned u times signed s, as 8 int32 lanes. */
AVX2_FN static inline __m256i dot_u8s8_avx2(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* The 32 nibbles of a Q4_0 block as bytes 0..15, in element order. */
AVX2_FN static inline __m256i q4_0_nibbles_avx2(const uint8_t *qs)
{
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
    return _mm256_set_m128i(hi, lo);
}

AVX2_FN static float dot_q8_0_avx2(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8_block *x = xv;
    const uint8_t *w = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++, w += Q8_0_BYTES) {
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i p = dot_u8s8_avx2(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w) * x[b].d), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum256(acc);
}

AVX2_FN static float dot_q4_0_avx2(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8_block *x = xv;
    const uint8_t *w = row;
    __m256 acc = _mm256_setzero_ps();
    float offset = 0.0f; /* the -8 of every nibble: -8 * sum(x) per block */
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++, w += Q4_0_BYTES) {
        __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i p = dot_u8s8_avx2(q4_0_nibbles_avx2(w + 2), xq);
        float scale = f16_at(w) * x[b].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(p), acc);
        offset += scale * (float)(8 * x[b].sum);
    }
    return hsum256(acc) - offset;
}

/* ---- AVX-512 VNNI ---- */

VNNI_FN static inline __m512i join256(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

VNNI_FN static inline __m512 two_scales(float a, float b)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

/* Signed weights times signed activations: |w| (unsigned) times x with w's sign. */
VNNI_FN static inline __m512i dot_s8s8_vnni(__m512i wq, __m512i xq)
{
    __m512i signed_x = _mm512_mask_sub_epi8(xq, _mm512_movepi8_mask(wq), _mm512_setzero_si512(), xq);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wq), signed_x);
}

VNNI_FN static float dot_q8_0_vnni(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8_block *x = xv;
    const uint8_t *w = row;
    const int64_t nb = n / LLAMAD_Q8_BLOCK;
    __m512 acc = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < nb; b += 2, w += 2 * Q8_0_BYTES) {
        __m512i wq = join256(_mm256_loadu_si256((const __m256i *)(w + 2)),
                             _mm256_loadu_si256((const __m256i *)(w + Q8_0_BYTES + 2)));
        __m512i xq = join256(_mm256_loadu_si256((const __m256i *)x[b].qs),
                             _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        __m512 scale = two_scales(f16_at(w) * x[b].d, f16_at(w + Q8_0_BYTES) * x[b + 1].d);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_s8s8_vnni(wq, xq)), scale, acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (b < nb) /* an odd last block */
        sum += dot_q8_0_avx2(w, x + b, LLAMAD_Q8_BLOCK);
    return sum;
}

VNNI_FN static float dot_q4_0_vnni(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8_block *x = xv;
    const uint8_t *w = row;
    const int64_t nb = n / LLAMAD_Q8_BLOCK;
    __m512 acc = _mm512_setzero_ps();
    float offset = 0.0f;
    int64_t b = 0;
    for (; b + 1 < nb; b += 2, w += 2 * Q4_0_BYTES) {
        __m512i wq = join256(q4_0_nibbles_avx2(w + 2), q4_0_nibbles_avx2(w + Q4_0_BYTES + 2));
        __m512i xq = join256(_mm256_loadu_si256((const __m256i *)x[b].qs),
                             _mm256_loadu_si256((const __m256i *)x[b + 1].qs));
        float s0 = f16_at(w) * x[b].d, s1 = f16_at(w + Q4_0_BYTES) * x[b + 1].d;
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, xq);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), two_scales(s0, s1), acc);
        offset += s0 * (float)(8 * x[b].sum) + s1 * (float)(8 * x[b + 1].sum);
    }
    float sum = _mm512_reduce_add_ps(acc) - offset;
    if (b < nb)
        sum += dot_q4_0_avx2(w, x + b, LLAMAD_Q8_BLOCK);
    return sum;
}

/* Up to four activation rows against one weight row: each pair of weight blocks
 * is loaded, and its magnitude and sign mask computed, once for all of them. */
VNNI_FN static void dot_q8_0_multi_vnni(const void *row, const void *xv, size_t x_stride,
                                        int n_tok, int64_t n, float *out)
{
    const int64_t nb = n / LLAMAD_Q8_BLOCK;
    const struct llamad_q8_block *x[4];
    __m512 acc[4];
    for (int t = 0; t < n_tok; t++) {
        x[t] = (const struct llamad_q8_block *)((const uint8_t *)xv + (size_t)t * x_stride);
        acc[t] = _mm512_setzero_ps();
    }
    const uint8_t *w = row;
    int64_t b = 0;
    for (; b + 1 < nb; b += 2, w += 2 * Q8_0_BYTES) {
        __m512i wq = join256(_mm256_loadu_si256((const __m256i *)(w + 2)),
                             _mm256_loadu_si256((const __m256i *)(w + Q8_0_BYTES + 2)));
        __m512i magnitude = _mm512_abs_epi8(wq);
        __mmask64 negative = _mm512_movepi8_mask(wq);
        float d0 = f16_at(w), d1 = f16_at(w + Q8_0_BYTES);
        for (int t = 0; t < n_tok; t++) {
            __m512i xq = join256(_mm256_loadu_si256((const __m256i *)x[t][b].qs),
                                 _mm256_loadu_si256((const __m256i *)x[t][b + 1].qs));
            xq = _mm512_mask_sub_epi8(xq, negative, _mm512_setzero_si512(), xq);
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), magnitude, xq);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                     two_scales(d0 * x[t][b].d, d1 * x[t][b + 1].d), acc[t]);
        }
    }
    for (int t = 0; t < n_tok; t++) {
        out[t] = _mm512_reduce_add_ps(acc[t]);
        if (b < nb)
            out[t] += dot_q8_0_avx2(w, x[t] + b, LLAMAD_Q8_BLOCK);
    }
}

VNNI_FN static void dot_q4_0_multi_vnni(const void *row, const void *xv, size_t x_stride,
                                        int n_tok, int64_t n, float *out)
{
    const int64_t nb = n / LLAMAD_Q8_BLOCK;
    const struct llamad_q8_block *x[4];
    __m512 acc[4];
    float offset[4];
    for (int t = 0; t < n_tok; t++) {
        x[t] = (const struct llamad_q8_block *)((const uint8_t *)xv + (size_t)t * x_stride);
        acc[t] = _mm512_setzero_ps();
        offset[t] = 0.0f;
    }
    const uint8_t *w = row;
    int64_t b = 0;
    for (; b + 1 < nb; b += 2, w += 2 * Q4_0_BYTES) {
        __m512i wq = join256(q4_0_nibbles_avx2(w + 2), q4_0_nibbles_avx2(w + Q4_0_BYTES + 2));
        float d0 = f16_at(w), d1 = f16_at(w + Q4_0_BYTES);
        for (int t = 0; t < n_tok; t++) {
            __m512i xq = join256(_mm256_loadu_si256((const __m256i *)x[t][b].qs),
                                 _mm256_loadu_si256((const __m256i *)x[t][b + 1].qs));
            float s0 = d0 * x[t][b].d, s1 = d1 * x[t][b + 1].d;
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, xq);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), two_scales(s0, s1), acc[t]);
            offset[t] += s0 * (float)(8 * x[t][b].sum) + s1 * (float)(8 * x[t][b + 1].sum);
        }
    }
    for (int t = 0; t < n_tok; t++) {
        out[t] = _mm512_reduce_add_ps(acc[t]) - offset[t];
        if (b < nb)
            out[t] += dot_q4_0_avx2(w, x[t] + b, LLAMAD_Q8_BLOCK);
    }
}

/* ---- Selection ---- */

static const struct llamad_act_kernels vnni_q8_0 = {"avx512vnni", LLAMAD_ACT_Q8, dot_q8_0_vnni,
                                                     dot_q8_0_multi_vnni};
static const struct llamad_act_kernels vnni_q4_0 = {"avx512vnni", LLAMAD_ACT_Q8, dot_q4_0_vnni,
                                                     dot_q4_0_multi_vnni};
static const struct llamad_act_kernels avx2_q8_0 = {"avx2", LLAMAD_ACT_Q8, dot_q8_0_avx2, NULL};
static const struct llamad_act_kernels avx2_q4_0 = {"avx2", LLAMAD_ACT_Q8, dot_q4_0_avx2, NULL};

static bool has_vnni(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static bool has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

const struct llamad_act_kernels *llamad_act_kernels_x86(uint32_t type)
{
    bool vnni = has_vnni(), avx2 = has_avx2();
    switch (type) {
    case LLAMAD_TYPE_Q8_0:
        return vnni ? &vnni_q8_0 : avx2 ? &avx2_q8_0 : NULL;
    case LLAMAD_TYPE_Q4_0:
        return vnni ? &vnni_q4_0 : avx2 ? &avx2_q4_0 : NULL;
    case LLAMAD_TYPE_Q4_K:
    case LLAMAD_TYPE_Q5_K:
    case LLAMAD_TYPE_Q6_K:
        return llamad_act_k_kernels_x86(type, vnni ? "avx512vnni" : "avx2");
    default:
        return NULL;
    }
}

#else

const struct llamad_act_kernels *llamad_act_kernels_x86(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
