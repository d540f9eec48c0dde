/* The float GEMM (gemm_float.h) in AVX-512: a vector holds 16 rows of one
 * panel's column, each lane one row's running sum for one token.
 *
 * A tile is NP panels (2 vectors each) by T tokens, NP * 2 * T accumulators:
 * one panel by up to 12 tokens for a batch (24 accumulators, two weight loads and
 * twelve broadcasts per 24 multiply-adds), two panels by up to 4 tokens for a
 * few (decoding: four or more independent sums in flight per column). Columns
 * are taken in blocks of KB, each panel's block staying in L1 while every token
 * tile passes it; between blocks the sums wait in y, which changes nothing in
 * their order. */
#include <stdbool.h>
#include <stdint.h>

#include "gemm_float_internal.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include "quant_x86.h"

#define FLOAT_FN __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")))
#define FLOAT_INLINE                                                                               \
    static inline                                                                                  \
        __attribute__((always_inline, target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")))

enum {
    PANEL = LLAMAD_GEMM_FLOAT_PANEL,
    LANES = 16,
    KB = 256,          /* columns per block */
    BATCH_TOKENS = 12, /* tokens of a one-panel tile */
    FEW_TOKENS = 4,    /* batches up to this many take two-panel tiles */
    /* Bytes ahead of a panel's current column that the first token tile over a
     * block asks for: it streams the weights from memory (once per step when
     * decoding), faster than the hardware prefetcher alone brings them. */
    PREFETCH_AHEAD = 4096,
};

/* 16 values at p (aligned), as floats. */
typedef __m512 (*load_fn)(const uint8_t *p);

FLOAT_INLINE __m512 load_f32(const uint8_t *p)
{
    return _mm512_load_ps((const float *)p);
}

FLOAT_INLINE __m512 load_f16(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)p));
}

FLOAT_INLINE __m512 load_bf16(const uint8_t *p)
{
    const __m512i h = _mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)); /* bf16 is a float's top half */
}

/* nk columns of NP panels (panel_bytes apart; `panel` and `x` at the block's first
 * column, x's token rows `cols` apart) by T tokens. y points at the first panel's
 * first row; mask[v] says which lanes of vector v are rows to write. The sums
 * start at 0 in the first block and continue from y after it. */
FLOAT_INLINE void tile(const uint8_t *panel, size_t panel_bytes, int NP, const float *x,
                       int64_t cols, int T, int64_t nk, bool first, bool stream, float *y,
                       int64_t y_stride, const __mmask16 *mask, load_fn load, int eb)
{
    __m512 acc[4][BATCH_TOKENS];
    for (int v = 0; v < 2 * NP; v++)
        for (int t = 0; t < T; t++)
            acc[v][t] = first ? _mm512_setzero_ps()
                              : _mm512_maskz_loadu_ps(mask[v], y + t * y_stride + v * LANES);
    for (int64_t k = 0; k < nk; k++) {
        __m512 w[4];
        if (stream)
            for (int p = 0; p < NP; p++)
                prefetch_ahead(panel + p * panel_bytes + (size_t)k * PANEL * eb, PREFETCH_AHEAD,
                               PANEL * eb);
        for (int p = 0; p < NP; p++)
            for (int g = 0; g < 2; g++)
                w[2 * p + g] = load(panel + p * panel_bytes + (size_t)(k * PANEL + g * LANES) * eb);
        for (int t = 0; t < T; t++) {
            const __m512 xb = _mm512_set1_ps(x[t * cols + k]);
            for (int v = 0; v < 2 * NP; v++)
                acc[v][t] = _mm512_fmadd_ps(w[v], xb, acc[v][t]);
        }
    }
    for (int v = 0; v < 2 * NP; v++)
        for (int t = 0; t < T; t++)
            _mm512_mask_storeu_ps(y + t * y_stride + v * LANES, mask[v], acc[v][t]);
}

/* The lanes of vector v (16 rows from row `first`) that fall in [r0, r1). */
static inline __mmask16 rows_mask(int64_t first, int64_t r0, int64_t r1)
{
    uint32_t m = 0;
    for (int i = 0; i < LANES; i++)
        m |= (uint32_t)(first + i >= r0 && first + i < r1) << i;
    return (__mmask16)m;
}

#define TILE_CASE(np, t)                                                                           \
    case t:                                                                                        \
        tile(panel, panel_bytes, np, x, cols, t, nk, first, stream, y, y_stride, mask, load, eb);  \
        break;

/* tile() with NP and T as constants, so its loops unroll into registers. */
FLOAT_INLINE void tile_any(const uint8_t *panel, size_t panel_bytes, int np, const float *x,
                           int64_t cols, int T, int64_t nk, bool first, bool stream, float *y,
                           int64_t y_stride, const __mmask16 *mask, load_fn load, int eb)
{
    if (np == 2) {
        switch (T) {
            TILE_CASE(2, 1)
            TILE_CASE(2, 2)
            TILE_CASE(2, 3)
            TILE_CASE(2, 4)
        }
        return;
    }
    switch (T) {
        TILE_CASE(1, 1)
        TILE_CASE(1, 2)
        TILE_CASE(1, 3)
        TILE_CASE(1, 4)
        TILE_CASE(1, 5)
        TILE_CASE(1, 6)
        TILE_CASE(1, 7)
        TILE_CASE(1, 8)
        TILE_CASE(1, 9)
        TILE_CASE(1, 10)
        TILE_CASE(1, 11)
        TILE_CASE(1, 12)
    }
}

/* A batch's panel block, converted to floats once for all its token tiles (the
 * conversion is exact, so the sums are the same). */
static _Thread_local float block_f32[KB * PANEL] __attribute__((aligned(64)));

FLOAT_INLINE const uint8_t *block_as_f32(const uint8_t *block, int64_t nk, load_fn load, int eb)
{
    for (int64_t i = 0; i < nk * PANEL; i += LANES) {
        prefetch_ahead(block + (size_t)i * eb, PREFETCH_AHEAD, LANES * eb);
        _mm512_store_ps(block_f32 + i, load(block + (size_t)i * eb));
    }
    return (const uint8_t *)block_f32;
}

/* Rows [r0, r1): panel by panel (in pairs for a few tokens), each column block
 * past every token tile. Tiles of a batch are of near-equal size. */
FLOAT_INLINE void rows_any(const struct llamad_weight *w, int64_t r0, int64_t r1, const float *x,
                           int32_t n_tokens, float *y, int64_t y_stride, load_fn load, int eb)
{
    const int64_t cols = w->cols;
    const size_t panel_bytes = llamad_gemm_float_panel_bytes(cols, eb);
    const int np_max = n_tokens <= FEW_TOKENS ? 2 : 1;
    const int32_t tiles = n_tokens <= FEW_TOKENS ? 1 : (n_tokens + BATCH_TOKENS - 1) / BATCH_TOKENS;
    const int32_t tile_tokens = (n_tokens + tiles - 1) / tiles;
    for (int64_t p = r0 / PANEL; p * PANEL < r1; p += np_max) {
        const int np = np_max == 2 && (p + 1) * PANEL < r1 ? 2 : 1;
        __mmask16 mask[4];
        for (int v = 0; v < 2 * np; v++)
            mask[v] = rows_mask(p * PANEL + v * LANES, r0, r1);
        const uint8_t *panel = (const uint8_t *)w->packed + (size_t)p * panel_bytes;
        for (int64_t k0 = 0; k0 < cols; k0 += KB) {
            const int64_t nk = k0 + KB < cols ? KB : cols - k0;
            const uint8_t *block = panel + (size_t)k0 * PANEL * eb;
            if (tiles > 1 && eb != 4) {
                block = block_as_f32(block, nk, load, eb);
                for (int32_t t0 = 0; t0 < n_tokens; t0 += tile_tokens) {
                    const int T = n_tokens - t0 < tile_tokens ? n_tokens - t0 : tile_tokens;
                    tile_any(block, 0, 1, x + t0 * cols + k0, cols, T, nk, k0 == 0, false,
                             y + t0 * y_stride + p * PANEL, y_stride, mask, load_f32, 4);
                }
                continue;
            }
            for (int32_t t0 = 0; t0 < n_tokens; t0 += tile_tokens) {
                const int T = n_tokens - t0 < tile_tokens ? n_tokens - t0 : tile_tokens;
                tile_any(block, panel_bytes, np, x + t0 * cols + k0, cols, T, nk, k0 == 0, t0 == 0,
                         y + t0 * y_stride + p * PANEL, y_stride, mask, load, eb);
            }
        }
    }
}

#define ROWS_KERNEL(name, eb)                                                                      \
    FLOAT_FN static void rows_##name(const struct llamad_weight *w, int64_t r0, int64_t r1,        \
                                     const float *x, int32_t n_tokens, float *y, int64_t y_stride) \
    {                                                                                              \
        rows_any(w, r0, r1, x, n_tokens, y, y_stride, load_##name, eb);                            \
    }

ROWS_KERNEL(f32, 4)
ROWS_KERNEL(f16, 2)
ROWS_KERNEL(bf16, 2)

static const struct llamad_gemm_float_set kernels = {rows_f32, rows_f16, rows_bf16};

const struct llamad_gemm_float_set *llamad_gemm_float_avx512(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX512) ? &kernels : NULL;
}

#else

const struct llamad_gemm_float_set *llamad_gemm_float_avx512(void)
{
    return NULL;
}

#endif
