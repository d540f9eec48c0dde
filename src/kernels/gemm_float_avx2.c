/* The float GEMM (gemm_float.h) in AVX2: a vector holds 8 rows of one panel's
 * column (a panel is 4 vectors), each lane one row's running sum for one token.
 * Tiles of one panel by up to 3 tokens fill 12 of the 16 registers with sums;
 * columns go in blocks of KB as in gemm_float_avx512.c, whose sums these equal
 * bit for bit. */
#include <stdbool.h>
#include <stdint.h>

#include "gemm_float_internal.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include "quant_x86.h"

#define FLOAT_FN __attribute__((target("avx2,fma,f16c")))
#define FLOAT_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

enum {
    PANEL = LLAMAD_GEMM_FLOAT_PANEL,
    LANES = 8,
    VECTORS = PANEL / LANES,
    KB = 256,
    TILE_TOKENS = 3,
    PREFETCH_AHEAD = 4096, /* as in gemm_float_avx512.c */
};

typedef __m256 (*load_fn)(const uint8_t *p);

FLOAT_INLINE __m256 load_f32(const uint8_t *p)
{
    return _mm256_load_ps((const float *)p);
}

FLOAT_INLINE __m256 load_f16(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_load_si128((const __m128i *)p));
}

FLOAT_INLINE __m256 load_bf16(const uint8_t *p)
{
    const __m256i h = _mm256_cvtepu16_epi32(_mm_load_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}

/* Columns [k0, k1) of one panel by T tokens, as tile() in gemm_float_avx512.c;
 * mask[v] has all bits set in the lanes of vector v that are rows to write. The
 * first token tile over a block (stream) prefetches it; the others find it in L1. */
FLOAT_INLINE void tile(const uint8_t *panel, const float *x, int64_t cols, int T, int64_t k0,
                       int64_t k1, bool stream, float *y, int64_t y_stride, const __m256i *mask,
                       load_fn load, int eb)
{
    __m256 acc[VECTORS][TILE_TOKENS];
    for (int v = 0; v < VECTORS; v++)
        for (int t = 0; t < T; t++)
            acc[v][t] = k0 == 0 ? _mm256_setzero_ps()
                                : _mm256_maskload_ps(y + t * y_stride + v * LANES, mask[v]);
    for (int64_t k = k0; k < k1; k++) {
        __m256 xb[TILE_TOKENS];
        if (stream)
            prefetch_ahead(panel + (size_t)k * PANEL * eb, PREFETCH_AHEAD, PANEL * eb);
        for (int t = 0; t < T; t++)
            xb[t] = _mm256_broadcast_ss(x + t * cols + k);
        for (int v = 0; v < VECTORS; v++) {
            const __m256 w = load(panel + (size_t)(k * PANEL + v * LANES) * eb);
            for (int t = 0; t < T; t++)
                acc[v][t] = _mm256_fmadd_ps(w, xb[t], acc[v][t]);
        }
    }
    for (int v = 0; v < VECTORS; v++)
        for (int t = 0; t < T; t++)
            _mm256_maskstore_ps(y + t * y_stride + v * LANES, mask[v], acc[v][t]);
}

/* Rows [r0, r1): panel by panel, each column block past every token tile. */
FLOAT_INLINE void rows_any(const struct llamad_weight *w, int64_t r0, int64_t r1, const float *x,
                           int32_t n_tokens, float *y, int64_t y_stride, load_fn load, int eb)
{
    const int64_t cols = w->cols;
    const size_t panel_bytes = llamad_gemm_float_panel_bytes(cols, eb);
    for (int64_t p = r0 / PANEL; p * PANEL < r1; p++) {
        __m256i mask[VECTORS];
        for (int v = 0; v < VECTORS; v++) {
            int32_t m[LANES];
            for (int i = 0; i < LANES; i++) {
                const int64_t r = p * PANEL + v * LANES + i;
                m[i] = r >= r0 && r < r1 ? -1 : 0;
            }
            mask[v] = _mm256_loadu_si256((const __m256i *)m);
        }
        const uint8_t *panel = (const uint8_t *)w->packed + (size_t)p * panel_bytes;
        for (int64_t k0 = 0; k0 < cols; k0 += KB) {
            const int64_t k1 = k0 + KB < cols ? k0 + KB : cols;
            for (int32_t t0 = 0; t0 < n_tokens; t0 += TILE_TOKENS) {
                float *yt = y + t0 * y_stride + p * PANEL;
                const float *xt = x + t0 * cols;
                switch (n_tokens - t0) {
                case 1:
                    tile(panel, xt, cols, 1, k0, k1, t0 == 0, yt, y_stride, mask, load, eb);
                    break;
                case 2:
                    tile(panel, xt, cols, 2, k0, k1, t0 == 0, yt, y_stride, mask, load, eb);
                    break;
                default: tile(panel, xt, cols, 3, k0, k1, t0 == 0, yt, y_stride, mask, load, eb);
                }
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

const struct llamad_gemm_float_set *llamad_gemm_float_avx2(void)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX2) ? &kernels : NULL;
}

#else

const struct llamad_gemm_float_set *llamad_gemm_float_avx2(void)
{
    return NULL;
}

#endif
