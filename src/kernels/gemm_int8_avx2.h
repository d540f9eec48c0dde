/* What the AVX2 int8 GEMM kernels share (gemm_int8_avx2.c, gemm_int8_k_avx2.c):
 * a panel's shape in 8-lane vectors, its accumulators for a pass of tokens, a
 * token's activation bytes broadcast to every lane, and a pass's outputs
 * stored. Private to those two; include only inside `#if defined(__x86_64__)`. */
#ifndef LLAMAD_GEMM_INT8_AVX2_H
#define LLAMAD_GEMM_INT8_AVX2_H

#include <stdint.h>
#include <string.h>

#include "gemm_int8_internal.h"
#include "quant_x86.h"

enum {
    LANES = LLAMAD_GEMM_LANES,
    GROUPS = LLAMAD_GEMM_GROUPS,
    PANEL_ROWS = LLAMAD_GEMM_PANEL_ROWS,
    HALVES = LANES / 8, /* 8-lane vectors per group */
    /* Tokens per pass over a panel, as in the VNNI kernels: each block read
     * from memory serves all of them. */
    PASS_TOKENS = 8,
};

/* A pass's float outputs: acc[g][h][t], token t's rows 8h..8h+7 of group g. */
typedef __m256 panel_acc[GROUPS][HALVES][PASS_TOKENS];

/* The 4 bytes at p (activations, or two int16 sums), broadcast to every lane. */
AVX2_INLINE __m256i broadcast4(const void *p)
{
    int32_t four;
    memcpy(&four, p, sizeof four);
    return _mm256_set1_epi32(four);
}

/* Zeroes n_tok tokens' outputs. */
AVX2_INLINE void panel_acc_zero(panel_acc acc, int n_tok)
{
    for (int g = 0; g < GROUPS; g++)
        for (int h = 0; h < HALVES; h++)
            for (int t = 0; t < n_tok; t++)
                acc[g][h][t] = _mm256_setzero_ps();
}

/* n_tok tokens' outputs of a panel stored at y_rows + t * y_stride (the
 * panel's first row), into the rows whose bits live[g] has set only. A whole
 * group takes plain stores: vmaskmovps to memory is slow on AMD's cores
 * (110M Q4_K_M, pp128 on Zen 3: a tenth of the GEMM's time). */
AVX2_INLINE void panel_acc_store(panel_acc acc, int n_tok, float *y_rows, int64_t y_stride,
                                 const uint16_t live[GROUPS])
{
    const __m256i bit = _mm256_set_epi32(128, 64, 32, 16, 8, 4, 2, 1);
    for (int t = 0; t < n_tok; t++)
        for (int g = 0; g < GROUPS; g++)
            for (int h = 0; h < HALVES; h++) {
                float *y = y_rows + t * y_stride + g * LANES + 8 * h;
                if (live[g] == 0xFFFF) {
                    _mm256_storeu_ps(y, acc[g][h][t]);
                    continue;
                }
                const __m256i bits = _mm256_set1_epi32(live[g] >> (8 * h) & 0xFF);
                _mm256_maskstore_ps(y, _mm256_cmpeq_epi32(_mm256_and_si256(bits, bit), bit),
                                    acc[g][h][t]);
            }
}

#endif
