/* Integer dot products of K-quant weight rows (Q4_K, Q5_K, Q6_K) with Q8_K
 * activations: AVX2 (32 values per vector: vpmaddubsw, then vpmaddwd with the
 * sub-block scales) and AVX-512 VNNI (64 values per vector: vpmaddubsw, then
 * vpdpwssd, which multiplies by the scales and accumulates in one step).
 *
 * vpmaddubsw multiplies unsigned by signed bytes, so the quants stay unsigned:
 * Q6_K's keep their offset of 32, which comes off afterwards as 32 times the
 * scaled activation sums (bsums), as in ggml. vpmaddubsw's pair sums cannot
 * saturate (2 * 63 * 128 < 32768). Each block's int32 lanes are converted to float once,
 * times the weight and activation scales. The VNNI matmul decodes each weight block
 * once for up to 4 tokens. Chosen at run time; the reference is quant_act_k.c, the
 * block layouts are described in quant_k.c. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "llamad/kernels/quant.h"
#include "quant_internal.h"

#if defined(__x86_64__)

#include "quant_k_layout.h"
#include "quant_x86.h"

/* ---- Shared by both instruction sets ---- */

/* The 8 six-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K / Q5_K block,
 * unpacked from its 12 bytes (32-bit words w0, w1, w2) a word at a time:
 * sub-blocks 0..3 keep theirs in the low 6 bits of w0 (scales) and w1 (mins),
 * sub-blocks 4..7 in the low (scales) and high (mins) nibbles of w2, with the top
 * 2 bits in the top bits of w0 and w1. Reads 16 bytes, 4 past the scales (still
 * inside the block). */
AVX2_FN static inline __m128i scales_mins(const uint8_t *packed)
{
    __m128i v = _mm_loadu_si128((const __m128i *)packed);
    __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)); /* w0 w2 w1 w2 */
    __m128i b = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)); /* w0 w0 w1 w1 */
    __m128i low6 = _mm_and_si128(a, _mm_set1_epi8(0x3F));
    __m128i high_nibbles_of_w2 = _mm_srlv_epi32(a, _mm_set_epi32(4, 0, 0, 0));
    __m128i nibbles = _mm_and_si128(high_nibbles_of_w2, _mm_set1_epi8(0x0F));
    __m128i top2 = _mm_and_si128(_mm_srli_epi32(b, 2), _mm_set1_epi8(0x30));
    return _mm_blend_epi32(low6, _mm_or_si128(nibbles, top2), 0x0A);
}

/* min_j * (bsums[2j] + bsums[2j + 1]) summed in pairs, as 8 int32 lanes: the
 * second term of a Q4_K / Q5_K block, before its scale dmin * dx. */
AVX2_FN static inline __m256i min_products(__m128i scales_mins8, const int16_t *bsums)
{
    const __m128i each_twice =
        _mm_set_epi8(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scales_mins8, each_twice));
    return _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)bsums));
}

/* d * dx and dmin * dx (lanes 0 and 1) of a Q4_K / Q5_K block. */
AVX2_FN static inline __m128 block_scales(const uint8_t *block, float dx)
{
    uint32_t halves;
    memcpy(&halves, block, sizeof halves);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)halves)), _mm_set1_ps(dx));
}

/* 32 * sum_g scale_g * bsums[g], as 8 int32 lanes: what Q6_K's offset adds to the
 * sums of its unsigned quants. */
AVX2_FN static inline __m256i q6_offset(__m256i scales16, const int16_t *bsums)
{
    __m256i p = _mm256_madd_epi16(scales16, _mm256_loadu_si256((const __m256i *)bsums));
    return _mm256_slli_epi32(p, 5);
}

/* Each block asks for the bytes PREFETCH_AHEAD further on (past a row's end, the
 * next row's): 7 GB/s instead of 11-12 on rows beyond the caches. */
enum { PREFETCH_AHEAD = 4096 };

/* ---- AVX2 ---- */

/* 16-bit lane `lane` of each 128-bit half of v, broadcast over that half. */
AVX2_FN static inline __m256i broadcast_lane16(__m256i v, int lane)
{
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(2 * lane | (2 * lane + 1) << 8)));
}

/* sum(q x) over 32 values times the int16 scales, as 8 int32 lanes. */
AVX2_FN static inline __m256i scaled_dot32(__m256i q, const int8_t *x, __m256i scales)
{
    __m256i pairs = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)x));
    return _mm256_madd_epi16(pairs, scales);
}

/* Q4_K / Q5_K: each 32 bytes of qs hold sub-block 2g in their low nibbles and
 * 2g + 1 in their high nibbles. Q5_K's qh (NULL for Q4_K) holds bit 4 of
 * sub-block j in bit j of each byte: those two take bits 0 and 1 of a copy
 * shifted right by 2g. */
AVX2_FN static inline __m256i block_sum_q45_avx2(const uint8_t *qs, const uint8_t *qh,
                                                 const int8_t *x, __m128i scales_mins8)
{
    const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scales_mins8));
    __m256i high = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 4; g++, qs += 32, x += 64) {
        __m256i bytes = _mm256_loadu_si256((const __m256i *)qs);
        __m256i lo = _mm256_and_si256(bytes, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
        if (qh) {
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(high, 4), bit4));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(high, 3), bit4));
            high = _mm256_srli_epi16(high, 2);
        }
        sum = _mm256_add_epi32(sum, scaled_dot32(lo, x, broadcast_lane16(scales, 2 * g)));
        sum = _mm256_add_epi32(sum, scaled_dot32(hi, x + 32, broadcast_lane16(scales, 2 * g + 1)));
    }
    return sum;
}

AVX2_FN static inline float dot_q45_avx2(const uint8_t *w, const struct llamad_q8k_block *x,
                                         int64_t n, int block_bytes, int qh_at, int qs_at)
{
    __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LLAMAD_QK_K; b++, w += block_bytes) {
        prefetch_ahead(w, PREFETCH_AHEAD, block_bytes);
        __m128i sm = scales_mins(w + SCALES_AT);
        __m256i sum = block_sum_q45_avx2(w + qs_at, qh_at ? w + qh_at : NULL, x[b].qs, sm);
        __m128 ds = block_scales(w, x[b].d);
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(ds), _mm256_cvtepi32_ps(sum), acc);
        acc_min = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(ds)),
                                  _mm256_cvtepi32_ps(min_products(sm, x[b].bsums)), acc_min);
    }
    return hsum256(_mm256_sub_ps(acc, acc_min));
}

AVX2_FN static float dot_q4_k_avx2(const void *row, const void *x, int64_t n)
{
    return dot_q45_avx2(row, x, n, LLAMAD_Q4_K_BYTES, 0, Q4_K_QS_AT);
}

AVX2_FN static float dot_q5_k_avx2(const void *row, const void *x, int64_t n)
{
    return dot_q45_avx2(row, x, n, LLAMAD_Q5_K_BYTES, Q5_K_QH_AT, Q5_K_QS_AT);
}

/* Q6_K: in one 128-element half, elements 32k..32k+31 have a nibble of ql[0..31]
 * (k = 0, 2) or ql[32..63] (k = 1, 3), low for k < 2, and bits 2k, 2k+1 of
 * qh[0..31] above it; `scales` holds the half's 8 scales in each 128-bit lane. */
AVX2_FN static inline __m256i q6_half_sum_avx2(const uint8_t *ql, const uint8_t *qh,
                                               const int8_t *x, __m256i scales)
{
    const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    __m256i q[4] = {
        _mm256_or_si256(_mm256_and_si256(l0, low4),
                        _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45)),
        _mm256_or_si256(_mm256_and_si256(l1, low4),
                        _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                        _mm256_and_si256(h, bits45)),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                        _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45)),
    };
    __m256i sum = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        /* elements 32k..32k+15 take scale 2k, the next 16 scale 2k + 1 */
        __m256i pick = _mm256_set_m128i(_mm_set1_epi16((short)(0x0302 + 0x0404 * k)),
                                        _mm_set1_epi16((short)(0x0100 + 0x0404 * k)));
        __m256i s = _mm256_shuffle_epi8(scales, pick);
        sum = _mm256_add_epi32(sum, scaled_dot32(q[k], x + 32 * k, s));
    }
    return sum;
}

AVX2_FN static float dot_q6_k_avx2(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8k_block *x = xv;
    const uint8_t *w = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / LLAMAD_QK_K; b++, w += LLAMAD_Q6_K_BYTES) {
        prefetch_ahead(w, PREFETCH_AHEAD, LLAMAD_Q6_K_BYTES);
        __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + Q6_K_SCALES_AT)));
        __m256i sum = _mm256_add_epi32(
            q6_half_sum_avx2(w, w + Q6_K_QH_AT, x[b].qs, _mm256_permute2x128_si256(s16, s16, 0x00)),
            q6_half_sum_avx2(w + 64, w + Q6_K_QH_AT + 32, x[b].qs + 128,
                             _mm256_permute2x128_si256(s16, s16, 0x11)));
        sum = _mm256_sub_epi32(sum, q6_offset(s16, x[b].bsums));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w + Q6_K_D_AT) * x[b].d),
                              _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum256(acc);
}

/* ---- AVX-512 VNNI ----
 * One 512-bit vector holds 64 consecutive elements of a block. */

/* sum(q x) over 64 values times the int16 scales, added to 16 int32 lanes. */
VNNI_FN static inline __m512i scaled_dot64(__m512i sum, __m512i q, const int8_t *x, __m512i scales)
{
    __m512i pairs = _mm512_maddubs_epi16(q, _mm512_loadu_si512(x));
    return _mm512_dpwssd_epi32(sum, pairs, scales);
}

/* From a vector holding the same 8 int16 in each 128-bit lane: lane a broadcast
 * over the lower 256 bits and lane b over the upper. */
VNNI_FN static inline __m512i broadcast_two_lanes16(__m512i v, int a, int b)
{
    __m512i pick = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_set1_epi16((short)(2 * a | (2 * a + 1) << 8))),
        _mm256_set1_epi16((short)(2 * b | (2 * b + 1) << 8)), 1);
    return _mm512_shuffle_epi8(v, pick);
}

/* 32 bytes of Q4_K / Q5_K qs as the 64 elements they hold: their low nibbles (one
 * sub-block), then their high nibbles (the next). */
VNNI_FN static inline __m512i nibbles64(const uint8_t *qs)
{
    const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    __m512i bytes = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qs));
    return _mm512_and_si512(_mm512_srlv_epi16(bytes, shift), _mm512_set1_epi8(0x0F));
}

/* The VNNI kernels ask for a block's bytes twice ahead: VNNI_PREFETCH_L2_AHEAD
 * further on into L2, VNNI_PREFETCH_AHEAD further on into L1, so the near request
 * finds its lines in L2. With the L1 request alone the loads waited on DRAM: an 8B
 * Q4_K_M model decoded 5.0-5.3 tokens/s (4 KiB ahead; 3.5 with no request), 5.6-5.8
 * with both, on two Emerald Rapids cores whose DRAM allows 6.5-6.9. The AVX2
 * kernels, slower per block, gained nothing and lost the instructions. */
enum { VNNI_PREFETCH_AHEAD = 2048, VNNI_PREFETCH_L2_AHEAD = 8192 };

static inline __attribute__((always_inline)) void prefetch_two_levels(const uint8_t *w,
                                                                      int block_bytes)
{
    prefetch_ahead(w, VNNI_PREFETCH_AHEAD, block_bytes);
    for (int i = 0; i < block_bytes; i += 64)
        _mm_prefetch((const char *)w + VNNI_PREFETCH_L2_AHEAD + i, _MM_HINT_T1);
}

/* One K-quant block decoded for the VNNI kernels: four vectors of 64 unsigned
 * quants and the int16 scales each is multiplied by, and what the offsets need
 * (Q4_K / Q5_K: the packed scales and mins, and dmin; Q6_K: the int16 scales). */
struct k_block {
    __m512i q[4];
    __m512i scales[4];
    __m128i scales_mins;
    __m256i scales16;
    float d, dmin;
};

/* sum(q x) of a decoded block with its 256 activations, times the scales, added to sum. */
VNNI_INLINE __m512i k_block_sum(const struct k_block *k, __m512i sum, const int8_t *x)
{
    for (int g = 0; g < 4; g++)
        sum = scaled_dot64(sum, k->q[g], x + 64 * g, k->scales[g]);
    return sum;
}

/* Q4_K / Q5_K, sub-blocks 2g and 2g + 1 per vector. Q5_K's bit 4 of sub-block j is
 * bit j of each qh byte (qh_at 0 for Q4_K). */
VNNI_INLINE void decode_q45(const uint8_t *w, int qh_at, int qs_at, struct k_block *k)
{
    const uint8_t *qs = w + qs_at;
    k->scales_mins = scales_mins(w + SCALES_AT);
    __m512i scales = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(k->scales_mins));
    __m512i high = qh_at ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w + qh_at)))
                         : _mm512_setzero_si512();
    /* the qh bits of sub-blocks 0 and 1, one per 256-bit half */
    __m512i high_bit = _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(2), 1);
    for (int g = 0; g < 4; g++, qs += 32) {
        __m512i q = nibbles64(qs);
        if (qh_at) { /* bit 4 is clear in a nibble: adding 16 sets it */
            __mmask64 set = _mm512_test_epi8_mask(high, high_bit);
            q = _mm512_mask_add_epi8(q, set, q, _mm512_set1_epi8(0x10));
            high_bit = _mm512_slli_epi16(high_bit, 2);
        }
        k->q[g] = q;
        k->scales[g] = broadcast_two_lanes16(scales, 2 * g, 2 * g + 1);
    }
    k->d = f16_at(w);
    k->dmin = f16_at(w + 2);
}

/* One Q4_K / Q5_K row by T tokens (x_stride bytes apart): each block is decoded
 * once for all T. y[t * y_stride]. */
VNNI_INLINE void row_q45(const uint8_t *w, const uint8_t *xv, size_t x_stride, int64_t n, int T,
                         int block_bytes, int qh_at, int qs_at, float *y, int64_t y_stride)
{
    __m512 acc[4];
    __m256 acc_min[4];
    for (int t = 0; t < T; t++) {
        acc[t] = _mm512_setzero_ps();
        acc_min[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < n / LLAMAD_QK_K; b++, w += block_bytes) {
        prefetch_two_levels(w, block_bytes);
        struct k_block k;
        decode_q45(w, qh_at, qs_at, &k);
        for (int t = 0; t < T; t++) {
            const struct llamad_q8k_block *x =
                (const struct llamad_q8k_block *)(xv + t * x_stride) + b;
            __m512i sum = k_block_sum(&k, _mm512_setzero_si512(), x->qs);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(k.d * x->d), _mm512_cvtepi32_ps(sum), acc[t]);
            acc_min[t] = _mm256_fmadd_ps(_mm256_set1_ps(k.dmin * x->d),
                                         _mm256_cvtepi32_ps(min_products(k.scales_mins, x->bsums)),
                                         acc_min[t]);
        }
    }
    for (int t = 0; t < T; t++)
        y[t * y_stride] = _mm512_reduce_add_ps(acc[t]) - hsum256(acc_min[t]);
}

/* Q6_K: one half's 64 bytes of ql give elements 0..63 from their low nibbles and
 * 64..127 from their high ones; the top 2 bits are bits 0-1 and 2-3 of qh[0..31]
 * for the first vector's 256-bit halves, 4-5 and 6-7 for the second's. */
VNNI_INLINE void q6_half(const uint8_t *ql, const uint8_t *qh, __m512i *a, __m512i *b)
{
    const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
    const __m512i shift_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shift_b = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512i l = _mm512_loadu_si512(ql);
    __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
    *a = _mm512_or_si512(_mm512_and_si512(l, low4),
                         _mm512_and_si512(_mm512_sllv_epi16(h, shift_a), bits45));
    *b = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                         _mm512_and_si512(_mm512_srlv_epi16(h, shift_b), bits45));
}

/* The int16 scales of the 16-element groups 4m..4m+3, each over one 128-bit lane
 * (8 lanes of 16 bits: 16 elements after vpmaddubsw). */
VNNI_FN static inline __m512i q6_scales(__m512i scales16, int m)
{
    const long long one = 0x0001000100010001LL;
    __m512i lane = _mm512_set_epi64(3 * one, 3 * one, 2 * one, 2 * one, one, one, 0, 0);
    __m512i index = _mm512_add_epi16(lane, _mm512_set1_epi16((short)(4 * m)));
    return _mm512_permutexvar_epi16(index, scales16);
}

VNNI_INLINE void decode_q6(const uint8_t *w, struct k_block *k)
{
    k->scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + Q6_K_SCALES_AT)));
    __m512i scales = _mm512_zextsi256_si512(k->scales16);
    q6_half(w, w + Q6_K_QH_AT, &k->q[0], &k->q[1]);
    q6_half(w + 64, w + Q6_K_QH_AT + 32, &k->q[2], &k->q[3]);
    for (int m = 0; m < 4; m++)
        k->scales[m] = q6_scales(scales, m);
    k->d = f16_at(w + Q6_K_D_AT);
}

/* One Q6_K row by T tokens, as row_q45. */
VNNI_INLINE void row_q6(const uint8_t *w, const uint8_t *xv, size_t x_stride, int64_t n, int T,
                        float *y, int64_t y_stride)
{
    __m512 acc[4];
    for (int t = 0; t < T; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / LLAMAD_QK_K; b++, w += LLAMAD_Q6_K_BYTES) {
        prefetch_two_levels(w, LLAMAD_Q6_K_BYTES);
        struct k_block k;
        decode_q6(w, &k);
        for (int t = 0; t < T; t++) {
            const struct llamad_q8k_block *x =
                (const struct llamad_q8k_block *)(xv + t * x_stride) + b;
            __m256i offset = q6_offset(k.scales16, x->bsums);
            __m512i sum = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), offset));
            sum = k_block_sum(&k, sum, x->qs);
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(k.d * x->d), _mm512_cvtepi32_ps(sum), acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        y[t * y_stride] = _mm512_reduce_add_ps(acc[t]);
}

/* One row by T (4, 2 or 1) tokens; block_bytes says the format. */
VNNI_INLINE void row_k(const uint8_t *w, const uint8_t *x, size_t x_stride, int64_t n, int T,
                       float *y, int64_t y_stride, int block_bytes, int qh_at, int qs_at)
{
    if (block_bytes == LLAMAD_Q6_K_BYTES)
        row_q6(w, x, x_stride, n, T, y, y_stride);
    else
        row_q45(w, x, x_stride, n, T, block_bytes, qh_at, qs_at, y, y_stride);
}

/* Every row by the tokens in groups of 4, 2 and 1: a row's blocks are decoded once
 * per group and stay in L1 for the next. */
VNNI_INLINE void matmul_k_vnni(const uint8_t *w, size_t row_bytes, int64_t n_rows, const uint8_t *x,
                               size_t x_stride, int32_t n_tok, int64_t n, float *y,
                               int64_t y_stride, int block_bytes, int qh_at, int qs_at)
{
    for (int64_t r = 0; r < n_rows; r++, w += row_bytes) {
        int32_t t = 0;
        for (; t + 4 <= n_tok; t += 4)
            row_k(w, x + t * x_stride, x_stride, n, 4, y + t * y_stride + r, y_stride, block_bytes,
                  qh_at, qs_at);
        for (; t + 2 <= n_tok; t += 2)
            row_k(w, x + t * x_stride, x_stride, n, 2, y + t * y_stride + r, y_stride, block_bytes,
                  qh_at, qs_at);
        for (; t < n_tok; t++)
            row_k(w, x + t * x_stride, x_stride, n, 1, y + t * y_stride + r, y_stride, block_bytes,
                  qh_at, qs_at);
    }
}

#define K_KERNELS(name, block_bytes, qh_at, qs_at)                                                 \
    VNNI_FN static void matmul_##name##_vnni(const void *w, size_t row_bytes, int64_t n_rows,      \
                                             const void *x, size_t x_stride, int32_t n_tok,        \
                                             int64_t n, float *y, int64_t y_stride)                \
    {                                                                                              \
        matmul_k_vnni(w, row_bytes, n_rows, x, x_stride, n_tok, n, y, y_stride, block_bytes,       \
                      qh_at, qs_at);                                                               \
    }                                                                                              \
    VNNI_FN static float dot_##name##_vnni(const void *row, const void *x, int64_t n)              \
    {                                                                                              \
        float y;                                                                                   \
        matmul_k_vnni(row, 0, 1, x, 0, 1, n, &y, 1, block_bytes, qh_at, qs_at);                    \
        return y;                                                                                  \
    }

K_KERNELS(q4_k, LLAMAD_Q4_K_BYTES, 0, Q4_K_QS_AT)
K_KERNELS(q5_k, LLAMAD_Q5_K_BYTES, Q5_K_QH_AT, Q5_K_QS_AT)
K_KERNELS(q6_k, LLAMAD_Q6_K_BYTES, 0, 0)

/* ---- Selection ---- */

static const struct llamad_act_kernels vnni_q4_k = {"avx512vnni", LLAMAD_ACT_Q8K, dot_q4_k_vnni,
                                                    matmul_q4_k_vnni};
static const struct llamad_act_kernels vnni_q5_k = {"avx512vnni", LLAMAD_ACT_Q8K, dot_q5_k_vnni,
                                                    matmul_q5_k_vnni};
static const struct llamad_act_kernels vnni_q6_k = {"avx512vnni", LLAMAD_ACT_Q8K, dot_q6_k_vnni,
                                                    matmul_q6_k_vnni};
static const struct llamad_act_kernels avx2_q4_k = {"avx2", LLAMAD_ACT_Q8K, dot_q4_k_avx2, NULL};
static const struct llamad_act_kernels avx2_q5_k = {"avx2", LLAMAD_ACT_Q8K, dot_q5_k_avx2, NULL};
static const struct llamad_act_kernels avx2_q6_k = {"avx2", LLAMAD_ACT_Q8K, dot_q6_k_avx2, NULL};

const struct llamad_act_kernels *llamad_act_k_kernels_x86(uint32_t type, const char *isa)
{
    bool vnni = !strcmp(isa, "avx512vnni");
    switch (type) {
    case LLAMAD_TYPE_Q4_K: return vnni ? &vnni_q4_k : &avx2_q4_k;
    case LLAMAD_TYPE_Q5_K: return vnni ? &vnni_q5_k : &avx2_q5_k;
    case LLAMAD_TYPE_Q6_K: return vnni ? &vnni_q6_k : &avx2_q6_k;
    default: return NULL;
    }
}

#else

const struct llamad_act_kernels *llamad_act_k_kernels_x86(uint32_t type, const char *isa)
{
    (void)type;
    (void)isa;
    return NULL;
}

#endif
