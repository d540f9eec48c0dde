/* The int8 GEMM on AVX-512 VNNI.
 *
 * vpdpbusd multiplies 16 lanes of 4 unsigned bytes by 4 signed bytes and adds
 * each lane's sum to an int32. The lanes here are 16 weight rows: the packed
 * weights (gemm_int8_internal.h) hold, per 32-value block, the 16 rows' scales
 * as one vector and their values as 8 vectors, vector j holding values
 * 4j..4j+3 of every row (Q4_0: 4 vectors of nibbles, split in registers). A
 * token's 4 activation bytes are broadcast to all lanes, so one instruction does
 * 4 values of 16 rows, and each weight vector loaded serves TILE_TOKENS tokens.
 *
 * The weights are the unsigned side: Q8_0 bytes are stored plus 128, Q4_0
 * nibbles (value + 8) as they are, and offset * sum(x) of the block (the sum the
 * Q8 activation block carries) comes off the block's int32 before it is scaled.
 * Every token's sums are made in the same order whatever the batch, so a token
 * gets the same result alone or with others. Reference: rows_ref in gemm_int8.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gemm_int8_internal.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include "quant_x86.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    LANES = LLAMAD_GEMM_LANES,
    GROUPS = LLAMAD_GEMM_GROUPS,
    PANEL_ROWS = LLAMAD_GEMM_PANEL_ROWS,
    /* Tokens per pass over the panel. A decoding batch of up to 8 tokens takes
     * one pass, so each weight vector loaded serves all of them (llamad-bench
     * -b 4,8 on 110M Q8_0: passes of 6 tokens, the rest in pairs, gave 1,242 and
     * 2,041 tokens/s, one pass 1,510 and 2,434): the spills its 32
     * accumulators cost are cheaper than reading the panel again. */
    TILE_TOKENS = 8,
    /* How far ahead in the packed weights each block asks for its lines: a
     * thread streams one panel after another, and without this waits on DRAM
     * for every block (7B Q4_0 decoding 5.9 against 7.3-7.6 tokens/s; 2 and 8
     * KiB measured no better). */
    PREFETCH_BYTES = 4096,
};

/* Adds each group's weight vector wq[g] (4 values of 16 rows) times the tokens'
 * bytes 4 * xj.. to dot[g][t]; a lone token's sums go to dot[g][chain] (0 or 1),
 * two chains of additions that do not wait on each other. */
VNNI_FN static ALWAYS_INLINE void multiply_values(__m512i dot[GROUPS][TILE_TOKENS],
                                                  const __m512i wq[GROUPS], int xj,
                                                  const struct llamad_q8_block *xb,
                                                  int64_t x_stride, int n_tok, int chain)
{
    for (int t = 0; t < n_tok; t++) {
        int32_t four;
        memcpy(&four, xb[t * x_stride].qs + 4 * xj, sizeof four);
        const __m512i xq = _mm512_set1_epi32(four);
        const int slot = n_tok == 1 ? chain : t;
        for (int g = 0; g < GROUPS; g++)
            dot[g][slot] = _mm512_dpbusd_epi32(dot[g][slot], wq[g], xq);
    }
}

/* n_tok (1..TILE_TOKENS, a constant after inlining) tokens against the whole
 * packed panel; y_rows points at the panel's first row of the first token's
 * output. start[b * n_tok + t] is -offset * (block b's sum) of the pass's
 * token t (unread for a lone token). */
VNNI_FN static ALWAYS_INLINE void panel_tokens(const uint8_t *panel, bool q8, int64_t nb,
                                               const struct llamad_q8_block *x,
                                               const int32_t *start, int64_t x_stride, int n_tok,
                                               float *y_rows, int64_t y_stride,
                                               const uint16_t live[GROUPS])
{
    const int32_t offset = q8 ? 128 : 8;
    const size_t block_bytes =
        llamad_gemm_packed_block_bytes(q8 ? LLAMAD_TYPE_Q8_0 : LLAMAD_TYPE_Q4_0);
    const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8((char)0xF0);
    __m512 acc[GROUPS][TILE_TOKENS];
    for (int g = 0; g < GROUPS; g++)
        for (int t = 0; t < n_tok; t++)
            acc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * block_bytes;
        for (size_t line = 0; line < block_bytes; line += 64)
            _mm_prefetch((const char *)pb + PREFETCH_BYTES + line, _MM_HINT_T0);
        const uint16_t(*d)[LANES] = (const void *)pb; /* both layouts start with d */
        const struct llamad_q8_block *xb = x + b;
        __m512i dot[GROUPS][TILE_TOKENS];
        for (int t = 0; t < n_tok; t++) {
            /* the weights' offset times the block's activation sum comes off */
            const __m512i s = _mm512_set1_epi32(n_tok == 1 ? -offset * xb[t * x_stride].sum
                                                           : start[b * n_tok + t]);
            for (int g = 0; g < GROUPS; g++)
                dot[g][t] = s;
        }
        if (n_tok == 1)
            for (int g = 0; g < GROUPS; g++)
                dot[g][1] = _mm512_setzero_si512();
        if (q8) {
            const struct llamad_gemm_packed_q8_0 *p = (const void *)pb;
            for (int j = 0; j < LLAMAD_Q8_BLOCK / 4; j++) {
                __m512i wq[GROUPS];
                for (int g = 0; g < GROUPS; g++)
                    wq[g] = _mm512_load_si512(p->q[g][j]);
                multiply_values(dot, wq, j, xb, x_stride, n_tok, j & 1);
            }
        } else {
            const struct llamad_gemm_packed_q4_0 *p = (const void *)pb;
            for (int j = 0; j < LLAMAD_Q8_BLOCK / 8; j++) {
                __m512i lo[GROUPS], hi[GROUPS];
                for (int g = 0; g < GROUPS; g++) {
                    const __m512i v = _mm512_load_si512(p->q[g][j]);
                    lo[g] = _mm512_and_si512(v, low);
                    /* a lone token's high nibbles stay in place, 16 times their
                     * value, in a chain of their own that is shifted back once
                     * (exact: every term is a multiple of 16): one instruction
                     * where a shift and a mask were */
                    hi[g] = n_tok == 1 ? _mm512_and_si512(v, high)
                                       : _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                }
                multiply_values(dot, lo, j, xb, x_stride, n_tok, 0);
                multiply_values(dot, hi, j + 4, xb, x_stride, n_tok, 1);
            }
        }
        if (n_tok == 1) /* integers: the same sum as one chain */
            for (int g = 0; g < GROUPS; g++)
                dot[g][0] =
                    _mm512_add_epi32(dot[g][0], q8 ? dot[g][1] : _mm512_srai_epi32(dot[g][1], 4));
        /* (sum * dx) * dw, as the AMX kernel rounds it: a batch gives the same
         * bits on either */
        for (int g = 0; g < GROUPS; g++) {
            const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)d[g]));
            for (int t = 0; t < n_tok; t++)
                acc[g][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot[g][t]),
                                                          _mm512_set1_ps(xb[t * x_stride].d)),
                                            dw, acc[g][t]);
        }
    }
    for (int t = 0; t < n_tok; t++)
        for (int g = 0; g < GROUPS; g++)
            _mm512_mask_storeu_ps(y_rows + t * y_stride + g * LANES, live[g], acc[g][t]);
}

/* Whole tiles of tokens, then the rest in one pass. */
VNNI_FN static ALWAYS_INLINE void panel_batch(const uint8_t *panel, bool q8, int64_t nb,
                                              const struct llamad_q8_block *x, const int32_t *start,
                                              int32_t n_tokens, float *y_rows, int64_t y_stride,
                                              const uint16_t live[GROUPS])
{
    int32_t t = 0;
    for (; t + TILE_TOKENS <= n_tokens; t += TILE_TOKENS)
        panel_tokens(panel, q8, nb, x + t * nb, start + t * nb, nb, TILE_TOKENS,
                     y_rows + t * y_stride, y_stride, live);
    x += t * nb;
    start += t * nb;
    y_rows += t * y_stride;
#define PASS(n) panel_tokens(panel, q8, nb, x, start, nb, n, y_rows, y_stride, live)
    LLAMAD_GEMM_REST_PASS(n_tokens - t, PASS)
#undef PASS
}

/* A batch's block starts, -offset * sum of every token's every block, made once
 * per call: in the block loop they cost a vector broadcast from memory instead
 * of a scalar multiply and a broadcast on the vector ports vpdpbusd needs. A
 * pass's tokens' starts of a block are side by side (start[b * n_tok + t] of
 * the pass's n_tok tokens, after the earlier passes' nb * n_tok), so the loop
 * reads them through one pointer (one per token, [t * nb + b], had the
 * compiler spill registers: 110M Q8_0 decoding 8 and 16 sequences 12 % slower). */
static void block_starts(const struct llamad_q8_block *x, int32_t n_tokens, int64_t nb,
                         int32_t offset, int32_t *start)
{
    for (int32_t t0 = 0; t0 < n_tokens; t0 += TILE_TOKENS) {
        const int32_t n = n_tokens - t0 < TILE_TOKENS ? n_tokens - t0 : TILE_TOKENS;
        for (int64_t b = 0; b < nb; b++)
            for (int32_t t = 0; t < n; t++)
                start[t0 * nb + b * n + t] = -offset * x[(t0 + t) * nb + b].sum;
    }
}

/* A batch's block starts (block_starts) are its work buffer, in whole 64-byte
 * lines (callers give it to aligned_alloc). */
static size_t work_bytes(int64_t cols, int32_t max_tokens)
{
    const size_t bytes = (size_t)max_tokens * (size_t)(cols / LLAMAD_Q8_BLOCK) * sizeof(int32_t);
    return (bytes + 63) / 64 * 64;
}

VNNI_FN static void rows_vnni(const struct llamad_weight *w, int64_t r0, int64_t r1, const void *x,
                              int32_t n_tokens, float *y, int64_t y_stride, void *work)
{
    const int64_t nb = w->cols / LLAMAD_Q8_BLOCK;
    int32_t *start = work;
    if (n_tokens > 1)
        block_starts(x, n_tokens, nb, w->type == LLAMAD_TYPE_Q8_0 ? 128 : 8, start);
    for (int64_t p0 = r0; p0 < r1; p0 += PANEL_ROWS) {
        uint16_t live[GROUPS];
        llamad_gemm_live_lanes(p0, r1, live);
        const uint8_t *panel = llamad_gemm_packed_panel(w, p0);
        /* two copies, so that each has its block layout as a constant */
        if (w->type == LLAMAD_TYPE_Q8_0)
            panel_batch(panel, true, nb, x, start, n_tokens, y + p0, y_stride, live);
        else
            panel_batch(panel, false, nb, x, start, n_tokens, y + p0, y_stride, live);
    }
}

static const struct llamad_gemm_int8_kernels vnni_kernels = {"avx512vnni", 8, work_bytes,
                                                             rows_vnni};

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_vnni(uint32_t type)
{
    if (type == LLAMAD_TYPE_Q4_K || type == LLAMAD_TYPE_Q5_K || type == LLAMAD_TYPE_Q6_K)
        return llamad_gemm_int8_k_vnni(type);
    if (!llamad_cpu_runs(LLAMAD_CPU_VNNI) || (type != LLAMAD_TYPE_Q8_0 && type != LLAMAD_TYPE_Q4_0))
        return NULL;
    return &vnni_kernels;
}

#else

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_vnni(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
