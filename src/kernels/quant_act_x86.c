/* Integer dot products of Q8_0 / Q4_0 weight rows with Q8-quantized activations:
 * AVX2 (vpmaddubsw + vpmaddwd; a signed weight is split into its magnitude and a
 * sign moved onto the activation) and AVX-512 VNNI (vpdpbusd on unsigned weights,
 * in tiles of rows by tokens, described below). Q4_0's nibbles are unsigned
 * already and its offset of 8 comes off with the block sums. Chosen at run time;
 * reference in quant_act.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "llamad/kernels/cpu.h"
#include "llamad/kernels/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__)

#include "quant_x86.h"

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
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++, w += LLAMAD_Q8_0_BYTES) {
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
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++, w += LLAMAD_Q4_0_BYTES) {
        __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i p = dot_u8s8_avx2(q4_0_nibbles_avx2(w + 2), xq);
        float scale = f16_at(w) * x[b].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(p), acc);
        offset += scale * (float)(8 * x[b].sum);
    }
    return hsum256(acc) - offset;
}

/* ---- AVX-512 VNNI ----
 * vpdpbusd multiplies unsigned by signed bytes, so the weights are made unsigned
 * (Q8_0: w + 128, by flipping the sign bit; Q4_0: the stored nibbles, w + 8) and
 * the offset's share, offset * sum(x), comes off by starting each sum at
 * -offset * sum(x) (an activation block carries its sum). A vector holds a pair of
 * blocks, 8 int32 lanes of each; a tile of R weight rows by T tokens loads each
 * pair of weight blocks once for its T tokens and each activation pair once for
 * its R rows, and keeps R * T independent accumulators. */

enum block_format { FMT_Q8_0, FMT_Q4_0 };

/* Tiles are 4 rows by 4, 2 or 1 tokens: 16 accumulators with their operands
 * still fit the 32 vector registers. */
enum { TILE_ROWS = 4, TILE_TOKENS = 4 };

/* Each tile asks for the pair of blocks it reads in the tile TILE_ROWS rows on. */
enum { PREFETCH_BYTES = 2 * 64 };

VNNI_FN static inline __m512i join256(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Which block (0 or 1 of the pair) each int32 lane sums. Q8_0 keeps element order;
 * Q4_0's vector holds the low nibbles of both blocks, then the high ones, so the
 * activations are reordered to match: x0[0..15] x1[0..15] x0[16..31] x1[16..31]. */
VNNI_INLINE __m512i lane_blocks(enum block_format f)
{
    return f == FMT_Q8_0 ? _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
                         : _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
}

/* One pair of activation blocks: quants in the weights' order, the scale of
 * each lane's block, and the starting sums that take the weight offset off. */
struct act_pair {
    __m512i q;
    __m512i start;
    __m512 d;
};

VNNI_INLINE struct act_pair act_pair(const struct llamad_q8_block *x, enum block_format f)
{
    struct act_pair a;
    a.q = join256(_mm256_loadu_si256((const __m256i *)x[0].qs),
                  _mm256_loadu_si256((const __m256i *)x[1].qs));
    if (f == FMT_Q4_0)
        a.q = _mm512_shuffle_i64x2(a.q, a.q, _MM_SHUFFLE(3, 1, 2, 0));
    __m512i lanes = lane_blocks(f);
    __m128 d = _mm_unpacklo_ps(_mm_set_ss(x[0].d), _mm_set_ss(x[1].d));
    a.d = _mm512_permutexvar_ps(lanes, _mm512_castps128_ps512(d));
    __m128i sums = _mm_unpacklo_epi32(_mm_cvtsi32_si128(x[0].sum), _mm_cvtsi32_si128(x[1].sum));
    __m512i s = _mm512_permutexvar_epi32(lanes, _mm512_castsi128_si512(sums));
    /* offset * sum over the block's 8 lanes: Q8_0 128 / 8 = 16 per lane, Q4_0 8 / 8 */
    a.start = _mm512_sub_epi32(_mm512_setzero_si512(), f == FMT_Q8_0 ? _mm512_slli_epi32(s, 4) : s);
    return a;
}

/* One pair of weight blocks: unsigned quants and the scale of each lane's block. */
VNNI_INLINE void weight_pair(const uint8_t *w, enum block_format f, __m512i *q, __m512 *d)
{
    if (f == FMT_Q8_0) {
        *q = _mm512_xor_si512(
            join256(_mm256_loadu_si256((const __m256i *)(w + 2)),
                    _mm256_loadu_si256((const __m256i *)(w + LLAMAD_Q8_0_BYTES + 2))),
            _mm512_set1_epi8((char)0x80));
        /* the fp16 scales are 16-bit words 0 and 17 of the pair's 68 bytes */
        __m512i words = _mm512_loadu_si512(w);
        __m512i pick = _mm512_zextsi256_si512(
            _mm256_set_epi16(17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, 0, 0, 0));
        *d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(pick, words)));
    } else {
        __m256i qs = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(w + 2))),
            _mm_loadu_si128((const __m128i *)(w + LLAMAD_Q4_0_BYTES + 2)), 1);
        __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(qs), qs, 1);
        __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
        *q = _mm512_and_si512(_mm512_srlv_epi16(both, shift), _mm512_set1_epi8(0x0F));
        /* the fp16 scales are 16-bit words 0 and 9 of the pair's 36 bytes */
        __m256i words = _mm256_loadu_si256((const __m256i *)w);
        __m256i pick = _mm256_set_epi16(9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0);
        *d = _mm512_cvtph_ps(_mm256_permutexvar_epi16(pick, words));
    }
}

/* R rows (row_bytes apart) by T token rows (x_stride bytes apart) of nb blocks:
 * y[t * y_stride + r]. An odd last block goes through the AVX2 kernel. */
VNNI_INLINE void tile(const uint8_t *w, size_t row_bytes, const uint8_t *xv, size_t x_stride,
                      int64_t nb, enum block_format f, int R, int T, float *y, int64_t y_stride)
{
    const int bytes = f == FMT_Q8_0 ? LLAMAD_Q8_0_BYTES : LLAMAD_Q4_0_BYTES;
    __m512 acc[TILE_ROWS][TILE_TOKENS];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        struct act_pair x[TILE_TOKENS];
        for (int t = 0; t < T; t++)
            x[t] = act_pair((const struct llamad_q8_block *)(xv + t * x_stride) + b, f);
        for (int r = 0; r < R; r++) {
            const uint8_t *wp = w + r * row_bytes + b * bytes;
            prefetch_ahead(wp, TILE_ROWS * row_bytes, PREFETCH_BYTES);
            __m512i q;
            __m512 d;
            weight_pair(wp, f, &q, &d);
            for (int t = 0; t < T; t++) {
                __m512i p = _mm512_dpbusd_epi32(x[t].start, q, x[t].q);
                acc[r][t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(d, x[t].d), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            float sum = _mm512_reduce_add_ps(acc[r][t]);
            if (b < nb) {
                const uint8_t *wb = w + r * row_bytes + b * bytes;
                const void *xb = (const struct llamad_q8_block *)(xv + t * x_stride) + b;
                sum += f == FMT_Q8_0 ? dot_q8_0_avx2(wb, xb, LLAMAD_Q8_BLOCK)
                                     : dot_q4_0_avx2(wb, xb, LLAMAD_Q8_BLOCK);
            }
            y[t * y_stride + r] = sum;
        }
}

/* Rows by tokens in tiles: the tile's rows stay in L1 while the tokens pass. */
VNNI_INLINE void matmul_vnni(const uint8_t *w, size_t row_bytes, int64_t n_rows, const void *xv,
                             size_t x_stride, int32_t n_tok, int64_t n, float *y, int64_t y_stride,
                             enum block_format f)
{
    const uint8_t *x = xv;
    const int64_t nb = n / LLAMAD_Q8_BLOCK;
    int64_t r = 0;
    for (; r + TILE_ROWS <= n_rows; r += TILE_ROWS) {
        const uint8_t *wr = w + r * row_bytes;
        int32_t t = 0;
        for (; t + 4 <= n_tok; t += 4)
            tile(wr, row_bytes, x + t * x_stride, x_stride, nb, f, TILE_ROWS, 4,
                 y + t * y_stride + r, y_stride);
        for (; t + 2 <= n_tok; t += 2)
            tile(wr, row_bytes, x + t * x_stride, x_stride, nb, f, TILE_ROWS, 2,
                 y + t * y_stride + r, y_stride);
        for (; t < n_tok; t++)
            tile(wr, row_bytes, x + t * x_stride, x_stride, nb, f, TILE_ROWS, 1,
                 y + t * y_stride + r, y_stride);
    }
    for (; r < n_rows; r++)
        for (int32_t t = 0; t < n_tok; t++)
            tile(w + r * row_bytes, row_bytes, x + t * x_stride, x_stride, nb, f, 1, 1,
                 y + t * y_stride + r, y_stride);
}

VNNI_FN static void matmul_q8_0_vnni(const void *w, size_t row_bytes, int64_t n_rows, const void *x,
                                     size_t x_stride, int32_t n_tok, int64_t n, float *y,
                                     int64_t y_stride)
{
    matmul_vnni(w, row_bytes, n_rows, x, x_stride, n_tok, n, y, y_stride, FMT_Q8_0);
}

VNNI_FN static void matmul_q4_0_vnni(const void *w, size_t row_bytes, int64_t n_rows, const void *x,
                                     size_t x_stride, int32_t n_tok, int64_t n, float *y,
                                     int64_t y_stride)
{
    matmul_vnni(w, row_bytes, n_rows, x, x_stride, n_tok, n, y, y_stride, FMT_Q4_0);
}

VNNI_FN static float dot_q8_0_vnni(const void *row, const void *x, int64_t n)
{
    float y;
    matmul_vnni(row, 0, 1, x, 0, 1, n, &y, 1, FMT_Q8_0);
    return y;
}

VNNI_FN static float dot_q4_0_vnni(const void *row, const void *x, int64_t n)
{
    float y;
    matmul_vnni(row, 0, 1, x, 0, 1, n, &y, 1, FMT_Q4_0);
    return y;
}

/* ---- Selection ---- */

static const struct llamad_act_kernels vnni_q8_0 = {"avx512vnni", LLAMAD_ACT_Q8, dot_q8_0_vnni,
                                                    matmul_q8_0_vnni};
static const struct llamad_act_kernels vnni_q4_0 = {"avx512vnni", LLAMAD_ACT_Q8, dot_q4_0_vnni,
                                                    matmul_q4_0_vnni};
static const struct llamad_act_kernels avx2_q8_0 = {"avx2", LLAMAD_ACT_Q8, dot_q8_0_avx2, NULL};
static const struct llamad_act_kernels avx2_q4_0 = {"avx2", LLAMAD_ACT_Q8, dot_q4_0_avx2, NULL};

static bool cpu_runs(const char *isa)
{
    if (!strcmp(isa, "avx2"))
        return llamad_cpu_runs(LLAMAD_CPU_AVX2);
    return !strcmp(isa, "avx512vnni") && llamad_cpu_runs(LLAMAD_CPU_VNNI);
}

const struct llamad_act_kernels *llamad_act_kernels_x86(uint32_t type, const char *isa)
{
    if (!cpu_runs(isa))
        return NULL;
    bool vnni = !strcmp(isa, "avx512vnni");
    switch (type) {
    case LLAMAD_TYPE_Q8_0: return vnni ? &vnni_q8_0 : &avx2_q8_0;
    case LLAMAD_TYPE_Q4_0: return vnni ? &vnni_q4_0 : &avx2_q4_0;
    case LLAMAD_TYPE_Q4_K:
    case LLAMAD_TYPE_Q5_K:
    case LLAMAD_TYPE_Q6_K: return llamad_act_k_kernels_x86(type, isa);
    default: return NULL;
    }
}

#else

const struct llamad_act_kernels *llamad_act_kernels_x86(uint32_t type, const char *isa)
{
    (void)type;
    (void)isa;
    return NULL;
}

#endif
