/* The int8 GEMM on AMX.
 *
 * tdpbssd multiplies a tile of 16 tokens x 32 activation bytes by a tile of 32
 * values x 16 weight rows, signed by signed, into 16 x 16 int32 sums. Every
 * 32-value block has its own weight and activation scales, so each block is its
 * own product: the int32 tile is stored and scaled into float accumulators held
 * in AVX-512 registers, one per token, each lane a weight row.
 *
 * The B tiles come from the packed weights (gemm_int8_internal.h), unpacked one
 * panel at a time into the weights' true values as bytes (Q8_0 bytes as they
 * were, Q4_0 nibbles minus 8) and their scales as floats. The A tiles
 * come from a copy of the activations made once per call, 16 tokens' 32 bytes of
 * a block in 512 contiguous bytes: tile rows read from the Q8 blocks themselves
 * (40 bytes apart, so often split across cache lines) made the loads three times
 * slower than the multiplications. The copy pads the last tile with zero tokens.
 * Reference: rows_ref in gemm_int8.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gemm_int8_internal.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define AMX_FN                                                                                     \
    __attribute__((target("amx-tile,amx-int8,avx2,fma,f16c,avx512f,avx512bw,avx512dq,"             \
                          "avx512vl")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    LANES = LLAMAD_GEMM_LANES,
    GROUPS = LLAMAD_GEMM_GROUPS,
    TILE_TOKENS = 16, /* rows of the A and C tiles */
};

/* One 32-value block of a group of a panel, unpacked: the 16 rows' scales, and
 * q[j][row] the row's values 4j..4j+3, an AMX B tile. */
struct panel_block {
    float d[LANES];
    int8_t q[LLAMAD_Q8_BLOCK / 4][LANES][4];
};

static size_t panel_bytes(int64_t cols)
{
    return (size_t)(cols / LLAMAD_Q8_BLOCK) * GROUPS * sizeof(struct panel_block);
}

/* The operand of ldtilecfg (palette 1). */
struct tile_config {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* Tiles 0 and 1 hold the int32 products of two blocks, 2 and 3 their tokens
 * (A), 4 and 5 their weights (B: 8 rows of 16 weight rows x 4 bytes). */
AMX_FN static void load_tile_config(void)
{
    struct tile_config cfg = {.palette = 1};
    for (int i = 0; i < 2; i++) {
        cfg.rows[0 + i] = TILE_TOKENS;
        cfg.colsb[0 + i] = LANES * sizeof(int32_t);
        cfg.rows[2 + i] = TILE_TOKENS;
        cfg.colsb[2 + i] = LLAMAD_Q8_BLOCK;
        cfg.rows[4 + i] = LLAMAD_Q8_BLOCK / 4;
        cfg.colsb[4 + i] = LANES * 4;
    }
    _tile_loadconfig(&cfg);
}

/* Activations as the A tiles read them: for each tile of 16 tokens and each
 * block, the tokens' 32 bytes (qs) and scales (d), zero past the last token. */
struct token_tiles {
    int8_t (*qs)[TILE_TOKENS][LLAMAD_Q8_BLOCK];
    float (*d)[TILE_TOKENS];
};

static size_t token_tile_count(int32_t n_tokens)
{
    return (size_t)(n_tokens + TILE_TOKENS - 1) / TILE_TOKENS;
}

static size_t work_bytes(int64_t cols, int32_t max_tokens)
{
    const size_t blocks = token_tile_count(max_tokens) * (size_t)(cols / LLAMAD_Q8_BLOCK);
    return panel_bytes(cols) +
           blocks * (sizeof(int8_t[TILE_TOKENS][LLAMAD_Q8_BLOCK]) + sizeof(float[TILE_TOKENS]));
}

/* The token tiles in the work buffer after the panel, filled from x. */
static struct token_tiles pack_tokens(const struct llamad_q8_block *x, int32_t n_tokens,
                                      int64_t cols, void *work)
{
    const int64_t nb = cols / LLAMAD_Q8_BLOCK;
    const size_t blocks = token_tile_count(n_tokens) * (size_t)nb;
    struct token_tiles tt;
    tt.qs = (void *)((uint8_t *)work + panel_bytes(cols));
    tt.d = (void *)(tt.qs + blocks);
    for (size_t tb = 0; tb < blocks; tb++) {
        const int64_t t0 = (int64_t)(tb / (size_t)nb) * TILE_TOKENS, b = (int64_t)(tb % (size_t)nb);
        for (int t = 0; t < TILE_TOKENS; t++) {
            if (t0 + t < n_tokens) {
                const struct llamad_q8_block *xb = &x[(t0 + t) * nb + b];
                memcpy(tt.qs[tb][t], xb->qs, LLAMAD_Q8_BLOCK);
                tt.d[tb][t] = xb->d;
            } else {
                memset(tt.qs[tb][t], 0, LLAMAD_Q8_BLOCK);
                tt.d[tb][t] = 0.0f;
            }
        }
    }
    return tt;
}

/* The packed panel of w at row p0, as panel[b * GROUPS + g] (Q8_0 bytes back from
 * w + 128 to w, Q4_0 nibbles split and made w - 8). */
AMX_FN static void unpack_panel(const struct llamad_weight *w, int64_t p0,
                                struct panel_block *panel)
{
    const int64_t nb = w->cols / LLAMAD_Q8_BLOCK;
    const bool q8 = w->type == LLAMAD_TYPE_Q8_0;
    const size_t block_bytes = llamad_gemm_packed_block_bytes(w->type);
    const uint8_t *packed = llamad_gemm_packed_panel(w, p0);
    const __m512i low = _mm512_set1_epi8(0x0F), sign = _mm512_set1_epi8((char)0x80),
                  minus_8 = _mm512_set1_epi8(-8);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = packed + (size_t)b * block_bytes;
        const uint16_t(*d)[LANES] = (const void *)pb; /* both layouts start with d */
        for (int g = 0; g < GROUPS; g++) {
            struct panel_block *out = &panel[b * GROUPS + g];
            _mm512_store_ps(out->d, _mm512_cvtph_ps(_mm256_load_si256((const void *)d[g])));
            if (q8) {
                const struct llamad_gemm_packed_q8_0 *in = (const void *)pb;
                for (int j = 0; j < LLAMAD_Q8_BLOCK / 4; j++)
                    _mm512_store_si512(out->q[j],
                                       _mm512_xor_si512(_mm512_load_si512(in->q[g][j]), sign));
            } else {
                const struct llamad_gemm_packed_q4_0 *in = (const void *)pb;
                for (int j = 0; j < LLAMAD_Q8_BLOCK / 8; j++) {
                    const __m512i v = _mm512_load_si512(in->q[g][j]);
                    _mm512_store_si512(out->q[j],
                                       _mm512_add_epi8(_mm512_and_si512(v, low), minus_8));
                    _mm512_store_si512(
                        out->q[j + 4],
                        _mm512_add_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), minus_8));
                }
            }
        }
    }
}

/* One block's int32 products c (16 tokens x 16 rows) times the rows' scales dw
 * and the tokens' scales dx, into acc. */
AMX_FN static ALWAYS_INLINE void scale_block(__m512 acc[TILE_TOKENS],
                                             const int32_t c[TILE_TOKENS][LANES], const float *dw,
                                             const float dx[TILE_TOKENS])
{
    const __m512 d = _mm512_load_ps(dw);
#pragma GCC unroll 16
    for (int t = 0; t < TILE_TOKENS; t++) {
        const __m512 s =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[t])), _mm512_set1_ps(dx[t]));
        acc[t] = _mm512_fmadd_ps(s, d, acc[t]);
    }
}

/* Tile c = tile a, loaded with the tokens' block at qs, times tile b, loaded
 * with the panel block pb. (A macro: the intrinsics take tile numbers only as
 * literals.) */
#define MULTIPLY_BLOCK(c, a, b, qs, pb)                                                            \
    do {                                                                                           \
        _tile_loadd(a, qs, LLAMAD_Q8_BLOCK);                                                       \
        _tile_loadd(b, (pb)->q, LANES * 4);                                                        \
        _tile_zero(c);                                                                             \
        _tile_dpbssd(c, a, b);                                                                     \
    } while (0)

/* Blocks b and b + 1 (qs[0], p0 and qs[1], p1) into tiles 0 and 1. */
AMX_FN static ALWAYS_INLINE void multiply_pair(const struct panel_block *p0,
                                               const struct panel_block *p1,
                                               const int8_t (*qs)[TILE_TOKENS][LLAMAD_Q8_BLOCK])
{
    MULTIPLY_BLOCK(0, 2, 4, qs[0], p0);
    MULTIPLY_BLOCK(1, 3, 5, qs[1], p1);
}

AMX_FN static ALWAYS_INLINE void store_pair(int32_t c[2][TILE_TOKENS][LANES])
{
    _tile_stored(0, c[0], LANES * sizeof(int32_t));
    _tile_stored(1, c[1], LANES * sizeof(int32_t));
}

/* A tile of tokens (n_tok of them stored) against group g of the panel, in pairs
 * of blocks: the tiles multiply one pair while the vector units scale the one
 * before. qs and dx are the tile's first block, y_rows the group's first row of
 * the tile's first token's output. */
AMX_FN static void group_tokens(const struct panel_block *panel, int g, int64_t nb,
                                const int8_t (*qs)[TILE_TOKENS][LLAMAD_Q8_BLOCK],
                                const float (*dx)[TILE_TOKENS], int n_tok, float *y_rows,
                                int64_t y_stride, uint16_t live)
{
    int32_t c[2][2][TILE_TOKENS][LANES] __attribute__((aligned(64)));
    __m512 acc[TILE_TOKENS];
#pragma GCC unroll 16
    for (int t = 0; t < TILE_TOKENS; t++)
        acc[t] = _mm512_setzero_ps();
    const int64_t pairs = nb / 2;
    for (int64_t i = 0; i <= pairs; i++) {
        const int64_t b = 2 * i;
        if (i < pairs)
            multiply_pair(&panel[b * GROUPS + g], &panel[(b + 1) * GROUPS + g], qs + b);
        if (i > 0) {
            const struct panel_block *p0 = &panel[(b - 2) * GROUPS + g];
            scale_block(acc, c[(i - 1) & 1][0], p0->d, dx[b - 2]);
            scale_block(acc, c[(i - 1) & 1][1], p0[GROUPS].d, dx[b - 1]);
        }
        if (i < pairs)
            store_pair(c[i & 1]);
    }
    if (nb & 1) {
        const int64_t b = nb - 1;
        const struct panel_block *p0 = &panel[b * GROUPS + g];
        MULTIPLY_BLOCK(0, 2, 4, qs[b], p0);
        _tile_stored(0, c[0][0], LANES * sizeof(int32_t));
        scale_block(acc, c[0][0], p0->d, dx[b]);
    }
#pragma GCC unroll 16
    for (int t = 0; t < TILE_TOKENS; t++)
        if (t < n_tok)
            _mm512_mask_storeu_ps(y_rows + t * y_stride, live, acc[t]);
}

AMX_FN static void rows_amx(const struct llamad_weight *w, int64_t r0, int64_t r1, const void *x,
                            int32_t n_tokens, float *y, int64_t y_stride, void *work)
{
    const int64_t nb = w->cols / LLAMAD_Q8_BLOCK;
    struct panel_block *panel = work;
    const struct token_tiles tt = pack_tokens(x, n_tokens, w->cols, work);
    /* the tile loads below are asm the compiler cannot see reading the copy */
    __asm__ volatile("" ::: "memory");
    load_tile_config();
    for (int64_t p0 = r0; p0 < r1; p0 += LLAMAD_GEMM_PANEL_ROWS) {
        uint16_t live[GROUPS];
        llamad_gemm_live_lanes(p0, r1, live);
        unpack_panel(w, p0, panel);
        for (int32_t t0 = 0; t0 < n_tokens; t0 += TILE_TOKENS) {
            const size_t tb = (size_t)(t0 / TILE_TOKENS * nb);
            const int n_tok = n_tokens - t0 < TILE_TOKENS ? n_tokens - t0 : TILE_TOKENS;
            for (int g = 0; g < GROUPS && live[g]; g++)
                group_tokens(panel, g, nb, tt.qs + tb, tt.d + tb, n_tok,
                             y + t0 * y_stride + p0 + g * LANES, y_stride, live[g]);
        }
    }
    _tile_release();
}

/* One piece per thread: each call copies the whole batch into token tiles. */
static const struct llamad_gemm_int8_kernels amx_kernels = {"amx", 1, work_bytes, rows_amx};

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_amx(uint32_t type)
{
    /* the packed weights are the VNNI kernel's: the CPU must run that too; the
     * K-quants have no AMX kernels */
    if ((type != LLAMAD_TYPE_Q8_0 && type != LLAMAD_TYPE_Q4_0) || !llamad_gemm_int8_vnni(type))
        return NULL;
    return llamad_cpu_runs(LLAMAD_CPU_AMX) ? &amx_kernels : NULL;
}

#else

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_amx(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
