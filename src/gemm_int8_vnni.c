/* The int8 GEMM on AVX-512 VNNI.
 *
 * vpdpbusd multiplies 16 lanes of 4 unsigned bytes by 4 signed bytes and adds
 * each lane's sum to an int32. The lanes here are 16 weight rows: a panel holds,
 * per 32-value block, the 16 rows' scales as one float vector and their 32 bytes
 * as 8 vectors, vector j holding bytes 4j..4j+3 of every row. A token's 4
 * activation bytes are broadcast to all lanes, so one instruction does 4 values of
 * 16 rows, and each panel vector loaded serves TILE_TOKENS tokens.
 *
 * The weights have to be the unsigned side: Q8_0 bytes are stored plus 128, Q4_0
 * nibbles (value + 8) as they are, and offset * sum(x) of the block (the sum the
 * Q8 activation block carries) comes off the block's int32 before it is scaled.
 * Reference: rows_ref in gemm_int8.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gemm_int8_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define VNNI_FN __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    LANES = LLAMAD_GEMM_LANES,
    GROUPS = LLAMAD_GEMM_GROUPS,
    PANEL_ROWS = LLAMAD_GEMM_PANEL_ROWS,
    TILE_TOKENS = 6, /* tokens per pass over the panel */
    Q8_0_BYTES = 34,
    Q4_0_BYTES = 18,
};

size_t llamad_gemm_panel_bytes(int64_t cols)
{
    return (size_t)(cols / LLAMAD_Q8_BLOCK) * GROUPS * sizeof(struct llamad_gemm_panel_block);
}

void llamad_gemm_live_lanes(int64_t p0, int64_t r1, uint16_t live[GROUPS])
{
    for (int g = 0; g < GROUPS; g++) {
        const int64_t n = r1 - p0 - g * LANES;
        live[g] = (uint16_t)(n <= 0 ? 0 : n >= LANES ? 0xFFFF : (1u << n) - 1);
    }
}

static size_t work_bytes(int64_t cols, int32_t max_tokens)
{
    (void)max_tokens;
    return llamad_gemm_panel_bytes(cols);
}

/* The 16 rows' block scales (half precision at the start of each block), zero for
 * rows the mask leaves out. */
VNNI_FN static ALWAYS_INLINE __m512 gather_scales(const uint8_t *block0, __m512i row_offsets,
                                                  __mmask16 live)
{
    __m512i h = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_offsets, block0, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
}

/* Panel block of 16 Q8_0 rows: the 4-byte groups gathered across rows, plus add. */
VNNI_FN static void pack_q8_0(struct llamad_gemm_panel_block *out, const uint8_t *block0,
                              __m512i row_offsets, __mmask16 live, __m512i add)
{
    _mm512_store_ps(out->d, gather_scales(block0, row_offsets, live));
    for (int j = 0; j < LLAMAD_Q8_BLOCK / 4; j++) {
        __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_offsets,
                                                block0 + 2 + 4 * j, 1);
        _mm512_store_si512(out->q[j], _mm512_add_epi8(v, add));
    }
}

/* Panel block of 16 Q4_0 rows: 4 bytes of nibbles hold values 4j..4j+3 in their
 * low halves and 16 + 4j.. in their high halves. */
VNNI_FN static void pack_q4_0(struct llamad_gemm_panel_block *out, const uint8_t *block0,
                              __m512i row_offsets, __mmask16 live, __m512i add)
{
    const __m512i low = _mm512_set1_epi8(0x0F);
    _mm512_store_ps(out->d, gather_scales(block0, row_offsets, live));
    for (int j = 0; j < LLAMAD_Q8_BLOCK / 8; j++) {
        __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_offsets,
                                                block0 + 2 + 4 * j, 1);
        _mm512_store_si512(out->q[j], _mm512_add_epi8(_mm512_and_si512(v, low), add));
        _mm512_store_si512(out->q[j + 4],
                           _mm512_add_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), add));
    }
}

VNNI_FN void llamad_gemm_pack_panel(const struct llamad_weight *w, int64_t p0,
                                    const uint16_t live[GROUPS], uint8_t q8_add, uint8_t q4_add,
                                    struct llamad_gemm_panel_block *panel)
{
    const int64_t nb = w->cols / LLAMAD_Q8_BLOCK;
    const bool q8 = w->type == LLAMAD_TYPE_Q8_0;
    const size_t block_bytes = q8 ? Q8_0_BYTES : Q4_0_BYTES;
    const __m512i add = _mm512_set1_epi8((char)(q8 ? q8_add : q4_add));
    const __m512i row_offsets =
        _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                           _mm512_set1_epi32((int)w->row_bytes));
    for (int g = 0; g < GROUPS; g++) {
        /* a group wholly past the end reads nothing; its pointer stays in bounds */
        const uint8_t *rows = w->data + (size_t)(live[g] ? p0 + g * LANES : p0) * w->row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            struct llamad_gemm_panel_block *out = &panel[b * GROUPS + g];
            if (q8)
                pack_q8_0(out, rows + b * block_bytes, row_offsets, live[g], add);
            else
                pack_q4_0(out, rows + b * block_bytes, row_offsets, live[g], add);
        }
    }
}

/* n_tok (1..TILE_TOKENS, a constant after inlining) tokens against the whole
 * panel; y_rows points at the panel's first row of the first token's output. */
VNNI_FN static ALWAYS_INLINE void panel_tokens(const struct llamad_gemm_panel_block *panel,
                                               int64_t nb, const struct llamad_q8_block *x,
                                               int64_t x_stride,
                                               int n_tok, int32_t offset, float *y_rows,
                                               int64_t y_stride, const uint16_t live[GROUPS])
{
    __m512 acc[GROUPS][TILE_TOKENS];
    for (int g = 0; g < GROUPS; g++)
        for (int t = 0; t < n_tok; t++)
            acc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const struct llamad_gemm_panel_block *pb = &panel[b * GROUPS];
        __m512i dot[GROUPS][TILE_TOKENS];
        for (int t = 0; t < n_tok; t++) {
            /* the weights' offset times the block's activation sum comes off */
            __m512i start = _mm512_set1_epi32(-offset * x[t * x_stride + b].sum);
            for (int g = 0; g < GROUPS; g++)
                dot[g][t] = start;
        }
        for (int j = 0; j < LLAMAD_Q8_BLOCK / 4; j++) {
            __m512i wq[GROUPS];
            for (int g = 0; g < GROUPS; g++)
                wq[g] = _mm512_load_si512(pb[g].q[j]);
            for (int t = 0; t < n_tok; t++) {
                int32_t four;
                memcpy(&four, x[t * x_stride + b].qs + 4 * j, sizeof four);
                const __m512i xq = _mm512_set1_epi32(four);
                for (int g = 0; g < GROUPS; g++)
                    dot[g][t] = _mm512_dpbusd_epi32(dot[g][t], wq[g], xq);
            }
        }
        for (int t = 0; t < n_tok; t++) {
            const __m512 dx = _mm512_set1_ps(x[t * x_stride + b].d);
            for (int g = 0; g < GROUPS; g++)
                acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[g][t]),
                                            _mm512_mul_ps(_mm512_load_ps(pb[g].d), dx), acc[g][t]);
        }
    }
    for (int t = 0; t < n_tok; t++)
        for (int g = 0; g < GROUPS; g++)
            _mm512_mask_storeu_ps(y_rows + t * y_stride + g * LANES, live[g], acc[g][t]);
}

VNNI_FN static void rows_vnni(const struct llamad_weight *w, int64_t r0, int64_t r1,
                              const struct llamad_q8_block *x, int32_t n_tokens, float *y,
                              int64_t y_stride, void *work)
{
    const int64_t nb = w->cols / LLAMAD_Q8_BLOCK;
    const int32_t offset = w->type == LLAMAD_TYPE_Q8_0 ? 128 : 8;
    struct llamad_gemm_panel_block *panel = work;
    for (int64_t p0 = r0; p0 < r1; p0 += PANEL_ROWS) {
        uint16_t live[GROUPS];
        llamad_gemm_live_lanes(p0, r1, live);
        llamad_gemm_pack_panel(w, p0, live, 0x80, 0, panel);
        /* whole tiles, then the rest in pairs and a last single token */
        int32_t t = 0;
        for (; t + TILE_TOKENS <= n_tokens; t += TILE_TOKENS)
            panel_tokens(panel, nb, x + t * nb, nb, TILE_TOKENS, offset, y + t * y_stride + p0,
                         y_stride, live);
        for (; t + 2 <= n_tokens; t += 2)
            panel_tokens(panel, nb, x + t * nb, nb, 2, offset, y + t * y_stride + p0, y_stride,
                         live);
        if (t < n_tokens)
            panel_tokens(panel, nb, x + t * nb, nb, 1, offset, y + t * y_stride + p0, y_stride,
                         live);
    }
}

static const struct llamad_gemm_int8_kernels vnni_kernels = {"avx512vnni", PANEL_ROWS,
                                                             work_bytes, rows_vnni};

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_vnni(uint32_t type)
{
    __builtin_cpu_init();
    bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c");
    if (!vnni || (type != LLAMAD_TYPE_Q8_0 && type != LLAMAD_TYPE_Q4_0))
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
