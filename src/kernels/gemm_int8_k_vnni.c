/* The int8 GEMM's K-quant kernels on AVX-512 VNNI: Q4_K, Q5_K and Q6_K weights packed
 * in 32-row panels (gemm_int8_internal.h) times activations in Q8_K blocks.
 *
 * As in gemm_int8_vnni.c, a vector lane is a weight row: vpdpbusd multiplies 4
 * unsigned values of each of 16 rows by 4 activation bytes broadcast to every
 * lane, so a nibble vector loaded and split in registers serves 16 rows, and
 * every token of the pass. Each sub-block's int32 sums are then multiplied by
 * the rows' scales of that sub-block (vpmulld), so a block's sum is the exact
 * integer the reference makes (quant_act_k.c), and float work is once per block
 * and row. Q4_K's and Q5_K's minimums and Q6_K's offset of 32 come off as the rows' scales
 * or mins times the activation block's 16-value sums (bsums), two per vpdpwssd.
 *
 * Every token's sums are made in the same order whatever the batch, so a token
 * gets the same bits alone or with others. Reference: rows_ref in gemm_int8.c. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gemm_int8_internal.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include "quant_x86.h"

enum {
    LANES = LLAMAD_GEMM_LANES,
    GROUPS = LLAMAD_GEMM_GROUPS,
    PANEL_ROWS = LLAMAD_GEMM_PANEL_ROWS,
    /* Tokens per pass over a panel. Past 4 their sums spill, but reading each
     * weight vector for more tokens pays: llamad-bench -t 2 on 110M Q4_K_M,
     * passes of 4 / 6 / 8 tokens, pp512 2,091-2,110 / 2,209-2,270 /
     * 2,324-2,329 tokens/s, 8 sequences decoding 1,409 / - / 1,640. */
    TILE_TOKENS = 8,
    /* How far ahead in the panel each weight vector asks for its line
     * (load_ahead). Nearer than the Q4_0 kernel's 4 KiB (2 KiB made that one
     * slower), measured: 8B Q4_K_M decoding one stream (llamad-bench
     * -p 0 -n 64 -b 1), 1 / 2 / 3 / 4 KiB gave 5.93-5.96 / 6.01-6.20 /
     * 5.97-5.98 / 5.71-5.83 tokens/s. (The loops over tokens, sub-blocks and
     * vectors below are unrolled, so that the per-token sums stay in
     * registers.) */
    PREFETCH_BYTES = 2048,
    /* 32-value sub-blocks of a Q8_K block: pair sums a block (pair_sums) */
    PAIRS = 8,
};

/* The 4 activation bytes (or two int16 sums) at p, broadcast to every lane. */
VNNI_INLINE __m512i broadcast4(const void *p)
{
    int32_t four;
    memcpy(&four, p, sizeof four);
    return _mm512_set1_epi32(four);
}

/* The weight vector at p, asking for the line PREFETCH_BYTES further on. A
 * prefetch beside each load spreads the requests over the block's work: all of
 * a block's 72 to 105 lines asked for at its start likely queue behind the few
 * misses a core keeps in flight, and hold up the work after them (8B Q4_K_M,
 * one stream, both 2 KiB ahead: 5.93-5.98 tokens/s that way, 6.01-6.20 this
 * way; in L2, bench gemm-kernels' lone Q4_K token: 71-73 GMAC/s with 4 KiB
 * bursts, 86-95 this way). */
VNNI_INLINE __m512i load_ahead(const void *p)
{
    prefetch_ahead(p, PREFETCH_BYTES, 64);
    return _mm512_load_si512(p);
}

/* Makes the compiler finish v here: without it, GCC reorders a block's
 * integer additions so that every sub-block's sums of every token wait, in
 * memory, for one late run of multiplies. */
VNNI_INLINE void settle(__m512i *v)
{
    __asm__("" : "+v"(*v));
}

/* p, hidden from the compiler: the two groups of a panel read the same
 * activations, and without it GCC keeps every broadcast of the first group's
 * for the second, in memory, where reading them again costs nothing. */
VNNI_INLINE const struct llamad_q8k_block *unseen(const struct llamad_q8k_block *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* 16 rows' int32 sums of one block, per token of the pass. */
struct block_sums {
    __m512i values[TILE_TOKENS];  /* sum_j scale_j * sum(q x) over sub-block j */
    __m512i offsets[TILE_TOKENS]; /* what comes off: Q4_K/Q5_K mins, Q6_K scales times bsums */
};

/* ---- Q4_K and Q5_K ---- */

/* The scale (int32 lanes) or the min (in both int16 halves of each lane) of
 * sub-block j of 16 rows, from the three words w[] of each row's 12 bytes:
 * sub-blocks 0..3 keep the low 6 bits of bytes j (scales) and 4 + j (mins);
 * 4..7 the low (scales) and high (mins) nibbles of bytes 8 + j - 4, with their
 * top 2 bits in the top bits of bytes j - 4 and j. */
VNNI_INLINE __m512i q4_k_six_bits(const __m512i w[3], int j, bool min)
{
    const __m512i six = _mm512_set1_epi32(0x3F), four = _mm512_set1_epi32(0x0F),
                  top = _mm512_set1_epi32(0x30);
    const __m512i own = min ? w[1] : w[0];
    if (j < 4)
        return _mm512_and_si512(_mm512_srli_epi32(own, 8 * j), six);
    const int at = 8 * (j - 4);
    return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w[2], at + (min ? 4 : 0)), four),
                           _mm512_and_si512(_mm512_srli_epi32(own, at + 2), top));
}

/* Group g of a packed Q4_K or Q5_K block times n_tok tokens' activation
 * blocks. Q5_K's bit 4 of value dword j of sub-block s is bit s of each byte
 * of qh[g][j]. */
VNNI_INLINE void q45_k_group(const uint8_t *block, bool q5, int g,
                             const struct llamad_q8k_block *seen_x, int64_t x_stride,
                             const int32_t *pairs, int64_t pair_stride, int n_tok,
                             struct block_sums *s)
{
    const struct llamad_gemm_packed_q4_k *p4 = (const void *)block;
    const struct llamad_gemm_packed_q5_k *p5 = (const void *)block;
    const uint32_t(*scales)[LANES] = q5 ? p5->scales[g] : p4->scales[g];
    const uint8_t(*q)[8][LANES][4] = q5 ? p5->q[g] : p4->q[g];
    const struct llamad_q8k_block *x = unseen(seen_x);
    const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8((char)0xF0),
                  bit4 = _mm512_set1_epi8(0x10);
    const __m512i w[3] = {load_ahead(scales[0]), load_ahead(scales[1]), load_ahead(scales[2])};
#pragma GCC unroll 16
    for (int t = 0; t < n_tok; t++)
        s->values[t] = s->offsets[t] = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int pair = 0; pair < 4; pair++) { /* sub-blocks 2 pair (low nibbles), 2 pair + 1 */
        __m512i even[TILE_TOKENS], odd[TILE_TOKENS];
#pragma GCC unroll 16
        for (int t = 0; t < n_tok; t++)
            even[t] = odd[t] = _mm512_setzero_si512();
#pragma GCC unroll 16
        for (int j = 0; j < 8; j++) {
            const __m512i v = load_ahead(q[pair][j]);
            __m512i lo = _mm512_and_si512(v, low);
            /* Q4_K's high nibbles stay in place, 16 times their value: one
             * instruction instead of a shift and a mask, and the odd sums are
             * shifted back once (exact: every term is a multiple of 16). */
            __m512i hi =
                q5 ? _mm512_and_si512(_mm512_srli_epi16(v, 4), low) : _mm512_and_si512(v, high);
            if (q5) { /* bits 2 pair and 2 pair + 1 to bit 4 */
                const __m512i h =
                    pair == 0 ? load_ahead(p5->qh[g][j]) : _mm512_load_si512(p5->qh[g][j]);
                const __m512i h_lo = 2 * pair <= 4 ? _mm512_slli_epi16(h, 4 - 2 * pair)
                                                   : _mm512_srli_epi16(h, 2 * pair - 4);
                const __m512i h_hi = 2 * pair + 1 <= 4 ? _mm512_slli_epi16(h, 3 - 2 * pair)
                                                       : _mm512_srli_epi16(h, 2 * pair - 3);
                lo = _mm512_or_si512(lo, _mm512_and_si512(h_lo, bit4));
                hi = _mm512_or_si512(hi, _mm512_and_si512(h_hi, bit4));
            }
#pragma GCC unroll 16
            for (int t = 0; t < n_tok; t++) {
                const int8_t *xq = x[t * x_stride].qs + 64 * pair + 4 * j;
                even[t] = _mm512_dpbusd_epi32(even[t], lo, broadcast4(xq));
                odd[t] = _mm512_dpbusd_epi32(odd[t], hi, broadcast4(xq + 32));
            }
        }
        const __m512i even_scale = q4_k_six_bits(w, 2 * pair, false),
                      odd_scale = q4_k_six_bits(w, 2 * pair + 1, false);
#pragma GCC unroll 16
        for (int t = 0; t < n_tok; t++) {
            if (!q5)
                odd[t] = _mm512_srai_epi32(odd[t], 4);
            s->values[t] = _mm512_add_epi32(
                s->values[t], _mm512_add_epi32(_mm512_mullo_epi32(even[t], even_scale),
                                               _mm512_mullo_epi32(odd[t], odd_scale)));
            settle(&s->values[t]);
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < 8; j++) { /* min_j * (bsums[2j] + bsums[2j + 1]) */
        /* the min fills the low half of each lane, so the pair sum's high half
         * (its sign) multiplies zero */
        const __m512i min = q4_k_six_bits(w, j, true);
#pragma GCC unroll 16
        for (int t = 0; t < n_tok; t++)
            s->offsets[t] =
                _mm512_dpwssd_epi32(s->offsets[t], min, broadcast4(pairs + t * pair_stride + j));
    }
}

/* ---- Q6_K ---- */

/* Value dword 16c + 4i + k of a packed Q6_K group (i, k < 4; sub-block 4c + i):
 * its low nibbles from ql[c][(4i + k) % 8] (low half for i < 2), its top bits
 * from bits 2i, 2i + 1 of qh[c][k], moved to bits 4 and 5. */
VNNI_INLINE __m512i q6_k_values(const struct llamad_gemm_packed_q6_k *p, int g, int c, int i, int k)
{
    const __m512i low = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    const void *ql = p->ql[g][c][(4 * i + k) % 8], *qh = p->qh[g][c][k];
    __m512i l = i < 2 ? load_ahead(ql) : _mm512_load_si512(ql);
    __m512i h = i == 0 ? load_ahead(qh) : _mm512_load_si512(qh);
    if (i >= 2)
        l = _mm512_srli_epi16(l, 4);
    h = i == 0   ? _mm512_slli_epi16(h, 4)
        : i == 1 ? _mm512_slli_epi16(h, 2)
        : i == 3 ? _mm512_srli_epi16(h, 2)
                 : h;
    return _mm512_or_si512(_mm512_and_si512(l, low), _mm512_and_si512(h, top));
}

/* The int16 scales of sub-blocks 2i and 2i + 1 in each lane. */
VNNI_INLINE __m512i q6_k_scale_pair(const struct llamad_gemm_packed_q6_k *p, int g, int i)
{
    return _mm512_cvtepi8_epi16(_mm256_load_si256((const __m256i *)p->scales[g][i]));
}

/* Group g of a packed Q6_K block times n_tok tokens' activation blocks. */
VNNI_INLINE void q6_k_group(const struct llamad_gemm_packed_q6_k *p, int g,
                            const struct llamad_q8k_block *seen_x, int64_t x_stride, int n_tok,
                            struct block_sums *s)
{
    const struct llamad_q8k_block *x = unseen(seen_x);
#pragma GCC unroll 16
    for (int t = 0; t < n_tok; t++)
        s->values[t] = s->offsets[t] = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int c = 0; c < 4; c++)
#pragma GCC unroll 16
        for (int i = 0; i < 4; i++) {
            const int sub = 4 * c + i;
            __m512i sums[TILE_TOKENS];
#pragma GCC unroll 16
            for (int t = 0; t < n_tok; t++)
                sums[t] = _mm512_setzero_si512();
#pragma GCC unroll 16
            for (int k = 0; k < 4; k++) {
                const __m512i v = q6_k_values(p, g, c, i, k);
#pragma GCC unroll 16
                for (int t = 0; t < n_tok; t++)
                    sums[t] = _mm512_dpbusd_epi32(
                        sums[t], v, broadcast4(x[t * x_stride].qs + 16 * sub + 4 * k));
            }
            const __m512i pair = q6_k_scale_pair(p, g, sub / 2);
            const __m512i scale = sub % 2 ? _mm512_srai_epi32(pair, 16)
                                          : _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
#pragma GCC unroll 16
            for (int t = 0; t < n_tok; t++)
                s->values[t] = _mm512_add_epi32(s->values[t], _mm512_mullo_epi32(sums[t], scale));
#pragma GCC unroll 16
            for (int t = 0; t < n_tok; t++)
                settle(&s->values[t]);
        }
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) { /* 32 * sum_j scale_j * bsums[j] */
        const __m512i pair = q6_k_scale_pair(p, g, i);
#pragma GCC unroll 16
        for (int t = 0; t < n_tok; t++)
            s->offsets[t] =
                _mm512_dpwssd_epi32(s->offsets[t], pair, broadcast4(x[t * x_stride].bsums + 2 * i));
    }
#pragma GCC unroll 16
    for (int t = 0; t < n_tok; t++)
        s->offsets[t] = _mm512_slli_epi32(s->offsets[t], 5);
}

/* ---- Both ---- */

/* n_tok (1..TILE_TOKENS, a constant after inlining) tokens against a whole packed
 * panel of `type`; y_rows points at the panel's first row of the first token's
 * output. A block adds d dx * values - dmin dx * offsets (Q4_K, Q5_K), d dx * (values -
 * offsets) (Q6_K), per row. */
VNNI_INLINE void panel_tokens(const uint8_t *panel, uint32_t type, int64_t nb,
                              const struct llamad_q8k_block *x, const int32_t *pairs,
                              int64_t x_stride, int n_tok, float *y_rows, int64_t y_stride,
                              const uint16_t live[GROUPS])
{
    const bool q6 = type == LLAMAD_TYPE_Q6_K, q5 = type == LLAMAD_TYPE_Q5_K;
    const size_t block_bytes = llamad_gemm_packed_block_bytes(type);
    __m512 acc[GROUPS][TILE_TOKENS];
#pragma GCC unroll 16
    for (int g = 0; g < GROUPS; g++)
#pragma GCC unroll 16
        for (int t = 0; t < n_tok; t++)
            acc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * block_bytes;
        /* the lines before the first vector read with load_ahead: d, dmin (Q4_K,
         * Q5_K) or d and the scales (Q6_K) */
        const size_t head = q6 ? offsetof(struct llamad_gemm_packed_q6_k, ql)
                               : offsetof(struct llamad_gemm_packed_q4_k, scales);
        prefetch_ahead(pb, PREFETCH_BYTES, (int)head);
        const uint16_t(*d)[LANES] = (const void *)pb; /* both layouts start with d */
        const struct llamad_q8k_block *xb = x + b;
#pragma GCC unroll 16
        for (int g = 0; g < GROUPS; g++) {
            struct block_sums s;
            const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)d[g]));
            if (!q6) { /* Q4_K and Q5_K start alike */
                const struct llamad_gemm_packed_q4_k *p = (const void *)pb;
                q45_k_group(pb, q5, g, xb, x_stride, pairs + b * PAIRS, x_stride * PAIRS, n_tok,
                            &s);
                const __m512 dmin = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)p->dmin[g]));
#pragma GCC unroll 16
                for (int t = 0; t < n_tok; t++) {
                    const __m512 dx = _mm512_set1_ps(xb[t * x_stride].d);
                    acc[g][t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx),
                                                _mm512_cvtepi32_ps(s.values[t]), acc[g][t]);
                    acc[g][t] = _mm512_fnmadd_ps(_mm512_mul_ps(dmin, dx),
                                                 _mm512_cvtepi32_ps(s.offsets[t]), acc[g][t]);
                }
            } else {
                q6_k_group((const void *)pb, g, xb, x_stride, n_tok, &s);
#pragma GCC unroll 16
                for (int t = 0; t < n_tok; t++) {
                    const __m512 dx = _mm512_set1_ps(xb[t * x_stride].d);
                    const __m512i sum = _mm512_sub_epi32(s.values[t], s.offsets[t]);
                    acc[g][t] =
                        _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(sum), acc[g][t]);
                }
            }
        }
    }
#pragma GCC unroll 16
    for (int t = 0; t < n_tok; t++)
#pragma GCC unroll 16
        for (int g = 0; g < GROUPS; g++)
            _mm512_mask_storeu_ps(y_rows + t * y_stride + g * LANES, live[g], acc[g][t]);
}

/* Whole tiles of tokens, then the rest in one pass. */
VNNI_INLINE void panel_batch(const uint8_t *panel, uint32_t type, int64_t nb,
                             const struct llamad_q8k_block *x, const int32_t *pairs,
                             int32_t n_tokens, float *y_rows, int64_t y_stride,
                             const uint16_t live[GROUPS])
{
    int32_t t = 0;
    for (; t + TILE_TOKENS <= n_tokens; t += TILE_TOKENS)
        panel_tokens(panel, type, nb, x + t * nb, pairs + t * nb * PAIRS, nb, TILE_TOKENS,
                     y_rows + t * y_stride, y_stride, live);
    x += t * nb;
    pairs += t * nb * PAIRS;
    y_rows += t * y_stride;
#define PASS(n) panel_tokens(panel, type, nb, x, pairs, nb, n, y_rows, y_stride, live)
    LLAMAD_GEMM_REST_PASS(n_tokens - t, PASS)
#undef PASS
}

/* Each token's block's sums of its 32-value sub-blocks (bsums[2j] + bsums[2j +
 * 1]), what Q4_K's and Q5_K's minimums multiply: made once per call, they save
 * each block and row group the instructions that put every min in both halves
 * of a lane. pairs[(t * nb + b) * PAIRS + j]. */
static void pair_sums(const struct llamad_q8k_block *x, int32_t n_tokens, int64_t nb,
                      int32_t *pairs)
{
    for (int64_t i = 0; i < n_tokens * nb; i++)
        for (int j = 0; j < PAIRS; j++)
            pairs[i * PAIRS + j] = x[i].bsums[2 * j] + x[i].bsums[2 * j + 1];
}

/* The pair sums (pair_sums) are the work buffer, in whole 64-byte lines. */
static size_t work_bytes(int64_t cols, int32_t max_tokens)
{
    const size_t bytes =
        (size_t)max_tokens * (size_t)(cols / LLAMAD_QK_K) * PAIRS * sizeof(int32_t);
    return (bytes + 63) / 64 * 64;
}

VNNI_FN static void rows_k_vnni(const struct llamad_weight *w, int64_t r0, int64_t r1,
                                const void *x, int32_t n_tokens, float *y, int64_t y_stride,
                                void *work)
{
    const int64_t nb = w->cols / LLAMAD_QK_K;
    int32_t *pairs = work;
    if (w->type != LLAMAD_TYPE_Q6_K)
        pair_sums(x, n_tokens, nb, pairs);
    for (int64_t p0 = r0; p0 < r1; p0 += PANEL_ROWS) {
        uint16_t live[GROUPS];
        llamad_gemm_live_lanes(p0, r1, live);
        const uint8_t *panel = llamad_gemm_packed_panel(w, p0);
        /* a copy per type, so that each has its block layout as a constant */
        if (w->type == LLAMAD_TYPE_Q4_K)
            panel_batch(panel, LLAMAD_TYPE_Q4_K, nb, x, pairs, n_tokens, y + p0, y_stride, live);
        else if (w->type == LLAMAD_TYPE_Q5_K)
            panel_batch(panel, LLAMAD_TYPE_Q5_K, nb, x, pairs, n_tokens, y + p0, y_stride, live);
        else
            panel_batch(panel, LLAMAD_TYPE_Q6_K, nb, x, pairs, n_tokens, y + p0, y_stride, live);
    }
}

static const struct llamad_gemm_int8_kernels k_vnni_kernels = {"avx512vnni", 8, work_bytes,
                                                               rows_k_vnni};

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_k_vnni(uint32_t type)
{
    if (!llamad_cpu_runs(LLAMAD_CPU_VNNI) ||
        (type != LLAMAD_TYPE_Q4_K && type != LLAMAD_TYPE_Q5_K && type != LLAMAD_TYPE_Q6_K))
        return NULL;
    return &k_vnni_kernels;
}

#else

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_k_vnni(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
