/* The int8 GEMM of Q8_0 and Q4_0 on AVX2, over the packed weights the VNNI
 * kernel reads (gemm_int8_internal.h).
 *
 * A 16-lane group of a panel is two 8-lane vectors here, each lane a weight row
 * and its 4 bytes values 4j..4j+3 of that row. A token's 4 activation bytes are
 * broadcast to every lane; vpmaddubsw multiplies unsigned by signed bytes into
 * 16-bit pair sums and vpmaddwd adds the pairs into each row's int32.
 *
 * vpmaddubsw saturates a pair sum past 32767, so the unsigned side must stay
 * small. Q8_0: the weight's magnitude (at most 128) meets the activation with
 * the weight's sign (at most 127), 2 * 128 * 127 < 32768, and no offset is
 * left. Q4_0: the nibbles (value + 8, at most 15) meet the activations as they
 * are; a whole block's 8 products fit in 16 bits (8 * 2 * 15 * 127 < 32768), so
 * they are added as such and widened once, and -8 * sum(x) comes off after.
 *
 * The block's int32 sums are the reference's exact integers and are scaled as
 * the VNNI kernel scales them, (sum * dx) * dw added to the lane's float, so
 * both kernel sets give the same bits, and a token the same alone or with
 * others. Reference: rows_ref in gemm_int8.c. */
#include <stdbool.h>
#include <stdint.h>

#include "gemm_int8_internal.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include "gemm_int8_avx2.h"

enum {
    /* Tokens whose sums are made together: their accumulators and the block's
     * weight vectors fit the 16 vector registers. */
    SUB_TOKENS = 4,
    /* How far ahead in the packed weights each block asks for its lines (the
     * VNNI kernel's distance). */
    PREFETCH_BYTES = 4096,
};

/* dot[h][t] = the integer dot products of group g's rows (vector h of the
 * group) with n (a constant after inlining) tokens of the Q8_0 block p. */
AVX2_INLINE void block_sums_q8_0(const struct llamad_gemm_packed_q8_0 *p, int g,
                                 const struct llamad_q8_block *xb, int64_t x_stride, int n,
                                 __m256i dot[HALVES][SUB_TOKENS])
{
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    for (int h = 0; h < HALVES; h++)
        for (int t = 0; t < n; t++)
            dot[h][t] = _mm256_setzero_si256();
    for (int j = 0; j < LLAMAD_Q8_BLOCK / 4; j++) {
        __m256i w[HALVES], magnitude[HALVES];
        for (int h = 0; h < HALVES; h++) {
            /* stored plus 128: the sign bit flipped back gives the signed byte */
            w[h] = _mm256_xor_si256(_mm256_load_si256((const __m256i *)p->q[g][j][8 * h]), flip);
            magnitude[h] = _mm256_abs_epi8(w[h]);
        }
        for (int t = 0; t < n; t++) {
            const __m256i x = broadcast4(xb[t * x_stride].qs + 4 * j);
            for (int h = 0; h < HALVES; h++) {
                const __m256i pairs = _mm256_maddubs_epi16(magnitude[h], _mm256_sign_epi8(x, w[h]));
                dot[h][t] = _mm256_add_epi32(dot[h][t], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
}

/* The same for a Q4_0 block: the 16-bit sums of all 32 values, then widened
 * with the offset's share taken off. */
AVX2_INLINE void block_sums_q4_0(const struct llamad_gemm_packed_q4_0 *p, int g,
                                 const struct llamad_q8_block *xb, int64_t x_stride, int n,
                                 __m256i dot[HALVES][SUB_TOKENS])
{
    const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i sum16[HALVES][SUB_TOKENS];
    for (int h = 0; h < HALVES; h++)
        for (int t = 0; t < n; t++)
            sum16[h][t] = _mm256_setzero_si256();
    for (int j = 0; j < LLAMAD_Q8_BLOCK / 8; j++) {
        __m256i lo[HALVES], hi[HALVES];
        for (int h = 0; h < HALVES; h++) {
            const __m256i v = _mm256_load_si256((const __m256i *)p->q[g][j][8 * h]);
            lo[h] = _mm256_and_si256(v, low);
            hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        }
        for (int t = 0; t < n; t++) {
            const __m256i xlo = broadcast4(xb[t * x_stride].qs + 4 * j);
            const __m256i xhi = broadcast4(xb[t * x_stride].qs + 4 * (j + 4));
            for (int h = 0; h < HALVES; h++)
                sum16[h][t] = _mm256_add_epi16(sum16[h][t],
                                               _mm256_add_epi16(_mm256_maddubs_epi16(lo[h], xlo),
                                                                _mm256_maddubs_epi16(hi[h], xhi)));
        }
    }
    for (int t = 0; t < n; t++) {
        const __m256i start = _mm256_set1_epi32(-8 * xb[t * x_stride].sum);
        for (int h = 0; h < HALVES; h++)
            dot[h][t] = _mm256_add_epi32(_mm256_madd_epi16(sum16[h][t], ones), start);
    }
}

/* n tokens (a constant after inlining) from token t0 of the pass: group g's
 * sums of block pb, scaled into acc[h][t0 + t]. */
AVX2_INLINE void block_tokens(const uint8_t *pb, bool q8, int g, const struct llamad_q8_block *xb,
                              int64_t x_stride, int t0, int n, __m256 acc[HALVES][PASS_TOKENS])
{
    __m256i dot[HALVES][SUB_TOKENS];
    if (q8)
        block_sums_q8_0((const void *)pb, g, xb + t0 * x_stride, x_stride, n, dot);
    else
        block_sums_q4_0((const void *)pb, g, xb + t0 * x_stride, x_stride, n, dot);
    const uint16_t(*d)[LANES] = (const void *)pb; /* both layouts start with d */
    for (int h = 0; h < HALVES; h++) {
        const __m256 dw = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)&d[g][8 * h]));
        for (int t = 0; t < n; t++)
            acc[h][t0 + t] =
                _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot[h][t]),
                                              _mm256_set1_ps(xb[(t0 + t) * x_stride].d)),
                                dw, acc[h][t0 + t]);
    }
}

/* n_tok (1..PASS_TOKENS, a constant after inlining) tokens against the whole
 * packed panel; y_rows points at the panel's first row of the first token's
 * output. */
AVX2_INLINE void panel_tokens(const uint8_t *panel, bool q8, int64_t nb,
                              const struct llamad_q8_block *x, int64_t x_stride, int n_tok,
                              float *y_rows, int64_t y_stride, const uint16_t live[GROUPS])
{
    const size_t block_bytes =
        llamad_gemm_packed_block_bytes(q8 ? LLAMAD_TYPE_Q8_0 : LLAMAD_TYPE_Q4_0);
    panel_acc acc;
    panel_acc_zero(acc, n_tok);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * block_bytes;
        for (size_t line = 0; line < block_bytes; line += 64)
            _mm_prefetch((const char *)pb + PREFETCH_BYTES + line, _MM_HINT_T0);
        for (int g = 0; g < GROUPS; g++) {
            if (n_tok > SUB_TOKENS) {
                block_tokens(pb, q8, g, x + b, x_stride, 0, SUB_TOKENS, acc[g]);
                block_tokens(pb, q8, g, x + b, x_stride, SUB_TOKENS, n_tok - SUB_TOKENS, acc[g]);
            } else {
                block_tokens(pb, q8, g, x + b, x_stride, 0, n_tok, acc[g]);
            }
        }
    }
    panel_acc_store(acc, n_tok, y_rows, y_stride, live);
}

/* Whole passes of tokens, then the rest in one pass. */
AVX2_INLINE void panel_batch(const uint8_t *panel, bool q8, int64_t nb,
                             const struct llamad_q8_block *x, int32_t n_tokens, float *y_rows,
                             int64_t y_stride, const uint16_t live[GROUPS])
{
    int32_t t = 0;
    for (; t + PASS_TOKENS <= n_tokens; t += PASS_TOKENS)
        panel_tokens(panel, q8, nb, x + t * nb, nb, PASS_TOKENS, y_rows + t * y_stride, y_stride,
                     live);
    x += t * nb;
    y_rows += t * y_stride;
#define PASS(n) panel_tokens(panel, q8, nb, x, nb, n, y_rows, y_stride, live)
    LLAMAD_GEMM_REST_PASS(n_tokens - t, PASS)
#undef PASS
}

AVX2_FN static void rows_avx2(const struct llamad_weight *w, int64_t r0, int64_t r1, const void *x,
                              int32_t n_tokens, float *y, int64_t y_stride, void *work)
{
    (void)work;
    const int64_t nb = w->cols / LLAMAD_Q8_BLOCK;
    for (int64_t p0 = r0; p0 < r1; p0 += PANEL_ROWS) {
        uint16_t live[GROUPS];
        llamad_gemm_live_lanes(p0, r1, live);
        const uint8_t *panel = llamad_gemm_packed_panel(w, p0);
        /* two copies, so that each has its block layout as a constant */
        if (w->type == LLAMAD_TYPE_Q8_0)
            panel_batch(panel, true, nb, x, n_tokens, y + p0, y_stride, live);
        else
            panel_batch(panel, false, nb, x, n_tokens, y + p0, y_stride, live);
    }
}

static const struct llamad_gemm_int8_kernels avx2_kernels = {"avx2", 8, llamad_gemm_no_work,
                                                             rows_avx2};

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_avx2(uint32_t type)
{
    if (type == LLAMAD_TYPE_Q4_K || type == LLAMAD_TYPE_Q5_K || type == LLAMAD_TYPE_Q6_K)
        return llamad_gemm_int8_k_avx2(type);
    if (!llamad_cpu_runs(LLAMAD_CPU_AVX2) || (type != LLAMAD_TYPE_Q8_0 && type != LLAMAD_TYPE_Q4_0))
        return NULL;
    return &avx2_kernels;
}

#else

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_avx2(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
