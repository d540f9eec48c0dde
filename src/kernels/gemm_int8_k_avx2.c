/* The int8 GEMM's K-quant kernels on AVX2 (with FMA and F16C): Q4_K, Q5_K and
 * Q6_K weights packed in 32-row panels (gemm_int8_internal.h) times activations
 * in Q8_K blocks, with the arithmetic of gemm_int8_k_vnni.c.
 *
 * As in gemm_int8_avx2.c, a 16-lane group of a panel is two 8-lane vectors,
 * each lane a weight row and its 4 bytes 4 unsigned values of that row. A
 * token's 4 activation bytes are broadcast to every lane and vpmaddubsw makes
 * 16-bit pair sums; those of one sub-block are added in 16 bits, then vpmaddwd
 * multiplies them by the rows' scale of the sub-block (in both 16-bit halves of
 * each lane) into int32. So each sub-block's sum meets its scale in integers,
 * a block's sum is the exact integer the reference makes (quant_act_k.c), and
 * each weight vector loaded and unpacked serves every token of the tile. Q4_K's
 * and Q5_K's minimums and Q6_K's offset of 32 come off as the rows' mins or
 * scales times the activations' sums, two per vpmaddwd.
 *
 * vpmaddubsw saturates a pair sum past 32767, and so would the 16-bit adds.
 * The activations lie in -127..127 (the bounds below hold for -128 too); the
 * weights' values are unsigned: at most 15 (Q4_K), 31 (Q5_K), 63 (Q6_K, value
 * + 32). A pair sum is at most 2 * 63 * 128 = 16128, and a 16-bit sum adds
 * pair sums of one sub-block only while they fit: all 8 of Q4_K's (8 * 2 * 15
 * * 128 = 30720), 4 of Q5_K's (4 * 2 * 31 * 128 = 31744), 2 of Q6_K's (2 *
 * 16128 = 32256); then it is widened. vpmaddwd's products of those sums and
 * the scales (at most 128 in size) are below 2^22, and a block's int32 sum is
 * at most 8 * 63 * 32 * 31 * 128 (Q5_K) or 16 * 128 * 16 * 63 * 128 (Q6_K),
 * below 2^29: nothing wraps.
 *
 * A block's int32 sums are scaled as the VNNI kernel scales them, the same
 * float operations in the same order, so both kernel sets give the same bits;
 * the integers are exact whichever way a batch is tiled, so a token gets the
 * same bits alone or with others. Reference: rows_ref in gemm_int8.c. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm_int8_internal.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include "gemm_int8_avx2.h"

enum {
    /* int32 words of a Q8_K block's pair sums (pair_sums) */
    MIN_WORDS = 4,
};

/* How far ahead a packed block of `type` asks for its lines: each line, when
 * first read, asks for the same line of the next block, so every line of the
 * panel is asked for once, a block's work ahead, in the order it is read. The
 * VNNI kernel's fixed 2 KiB left Q6_K's lines asked for too late (a group reads
 * its ql and its qh, 4 KiB apart): from DRAM, one token, one thread, Q6_K ran
 * at 12 GMAC/s with 2 KiB, 18-19 with 4 KiB or a block, 14 with no prefetch;
 * Q4_K and Q5_K alike with 4 KiB or a block, 30 and 17 with none (best of 5
 * to 12 runs, the machine shared). */
static inline size_t prefetch_distance(uint32_t type)
{
    return llamad_gemm_packed_block_bytes(type);
}

/* The 8 lanes at p (half of a 64-byte line), asking for the line `ahead`
 * bytes further on unless ahead is 0. */
AVX2_INLINE __m256i load_lanes(const void *p, size_t ahead)
{
    if (ahead)
        prefetch_ahead(p, ahead, 64);
    return _mm256_load_si256(p);
}

/* Makes the compiler finish v here: without it, GCC broadcasts every token's
 * activations before their multiplies and spills the 16-bit sums they go to
 * (Q4_K in L2, 8 tokens: 65 GMAC/s that way, 92 this way). */
AVX2_INLINE void settle(__m256i *v)
{
    __asm__("" : "+x"(*v));
}

/* Bytes b0..b3 of each 32-bit lane of v as that lane's bytes 0..3; an index
 * of 0x80 gives a zero byte. */
AVX2_INLINE __m256i pick_bytes(__m256i v, int b0, int b1, int b2, int b3)
{
    const __m256i lane_start = _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0,
                                                 0x04040404, 0x08080808, 0x0C0C0C0C);
    const __m256i pick = _mm256_set1_epi32(b0 | b1 << 8 | b2 << 16 | (int)((unsigned)b3 << 24));
    return _mm256_shuffle_epi8(v, _mm256_add_epi32(pick, lane_start));
}

/* The rows' integer factors of one group of a block, for vpmaddwd: scale[h][s]
 * the scale of sub-block s in both int16 halves of each lane of vector h;
 * offset[h][i] the two int16 that multiply the activations' i-th pair of sums
 * (Q4_K, Q5_K: the mins of sub-blocks 2i and 2i + 1; Q6_K: the scales of
 * 16-value sub-blocks 2i and 2i + 1). */
struct group_factors {
    __m256i scale[HALVES][16];
    __m256i offset[HALVES][8];
};

/* 16 rows' int32 sums of one block, per token of the tile. */
struct block_sums {
    __m256i values[HALVES][PASS_TOKENS];  /* sum_s scale_s * sum(q x) over sub-block s */
    __m256i offsets[HALVES][PASS_TOKENS]; /* what comes off: mins or scales times the sums */
};

/* Zeroes sums[hh][t] of nh vectors and n tokens. */
AVX2_INLINE void zero_sums(__m256i sums[HALVES][PASS_TOKENS], int nh, int n)
{
    for (int hh = 0; hh < nh; hh++)
        for (int t = 0; t < n; t++)
            sums[hh][t] = _mm256_setzero_si256();
}

/* A tile's block sums of vectors h0..h0 + nh - 1 into s->values. */
AVX2_INLINE void put_values(__m256i total[HALVES][PASS_TOKENS], int h0, int nh, int n,
                            struct block_sums *s)
{
    for (int hh = 0; hh < nh; hh++)
        for (int t = 0; t < n; t++)
            s->values[h0 + hh][t] = total[hh][t];
}

/* ---- Q4_K and Q5_K ---- */

/* The factors of group g, from the three words of each row's 12 bytes of
 * scales and mins: sub-blocks 0..3 keep the low 6 bits of bytes j (scales,
 * word 0) and 4 + j (mins, word 1); 4..7 the low (scales) and high (mins)
 * nibbles of byte j - 4 of word 2, with their top 2 bits in the top bits of
 * byte j - 4 of words 0 and 1. Each of the four vectors made first holds four
 * sub-blocks' scales or mins as bytes. */
AVX2_INLINE void q45_k_factors(const uint32_t scales[3][LANES], size_t ahead,
                               struct group_factors *f)
{
    const __m256i six = _mm256_set1_epi8(0x3F), four = _mm256_set1_epi8(0x0F),
                  top = _mm256_set1_epi8(0x30);
    for (int h = 0; h < HALVES; h++) {
        const __m256i w0 = load_lanes(scales[0] + 8 * h, h == 0 ? ahead : 0),
                      w1 = load_lanes(scales[1] + 8 * h, h == 0 ? ahead : 0),
                      w2 = load_lanes(scales[2] + 8 * h, h == 0 ? ahead : 0);
        const __m256i bytes[4] = {
            _mm256_and_si256(w0, six),
            _mm256_or_si256(_mm256_and_si256(w2, four),
                            _mm256_and_si256(_mm256_srli_epi32(w0, 2), top)),
            _mm256_and_si256(w1, six),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), four),
                            _mm256_and_si256(_mm256_srli_epi32(w1, 2), top)),
        };
        for (int j = 0; j < 8; j++)
            f->scale[h][j] = pick_bytes(bytes[j / 4], j % 4, 0x80, j % 4, 0x80);
        for (int i = 0; i < 4; i++)
            f->offset[h][i] =
                pick_bytes(bytes[2 + i / 2], 2 * (i % 2), 0x80, 2 * (i % 2) + 1, 0x80);
    }
}

/* Q5_K's bit 4 of each value of sub-blocks 2p and 2p + 1: bits 2p and 2p + 1
 * of each byte of qh, moved to bit 4 of *even and *odd. */
AVX2_INLINE void q5_k_bit4(__m256i qh, int p, __m256i *even, __m256i *odd)
{
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    const __m256i at0 = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * p));
    *even = _mm256_and_si256(_mm256_slli_epi16(at0, 4), bit4);
    *odd = _mm256_and_si256(_mm256_slli_epi16(at0, 3), bit4);
}

/* s->values of n tokens and vectors h0..h0 + nh - 1 (n and nh constants after
 * inlining): group g's sub-block sums of a packed Q4_K or Q5_K block, times
 * their scales. In pair p, value dword j of sub-blocks 2p and 2p + 1 are the
 * low and high nibbles of q[p][j] (and Q5_K's bits 2p and 2p + 1 of qh[j]).
 * Vector h0 asks for the lines `ahead` bytes on (none if 0). */
AVX2_INLINE void q45_k_values(const uint8_t *block, bool q5, int g, const struct group_factors *f,
                              const struct llamad_q8k_block *x, int64_t x_stride, int n, int h0,
                              int nh, size_t ahead, struct block_sums *s)
{
    const struct llamad_gemm_packed_q4_k *p4 = (const void *)block;
    const struct llamad_gemm_packed_q5_k *p5 = (const void *)block;
    const uint8_t(*q)[8][LANES][4] = q5 ? p5->q[g] : p4->q[g];
    const __m256i low = _mm256_set1_epi8(0x0F);
    /* value dwords per 16-bit sum, within the saturation bound */
    const int run = q5 ? 4 : 8;
    __m256i total[HALVES][PASS_TOKENS];
    zero_sums(total, nh, n);
    for (int p = 0; p < 4; p++)
        for (int j0 = 0; j0 < 8; j0 += run) {
            __m256i even[HALVES][PASS_TOKENS], odd[HALVES][PASS_TOKENS];
            zero_sums(even, nh, n);
            zero_sums(odd, nh, n);
#pragma GCC unroll 4
            for (int j = j0; j < j0 + run; j++) {
                __m256i lo[HALVES], hi[HALVES];
                for (int hh = 0; hh < nh; hh++) {
                    const int h = h0 + hh;
                    const __m256i v = load_lanes(q[p][j][8 * h], hh == 0 ? ahead : 0);
                    lo[hh] = _mm256_and_si256(v, low);
                    hi[hh] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                    if (q5) {
                        __m256i lo4, hi4;
                        q5_k_bit4(load_lanes(p5->qh[g][j][8 * h], p == 0 && hh == 0 ? ahead : 0), p,
                                  &lo4, &hi4);
                        lo[hh] = _mm256_or_si256(lo[hh], lo4);
                        hi[hh] = _mm256_or_si256(hi[hh], hi4);
                    }
                }
                for (int t = 0; t < n; t++) {
                    const int8_t *xq = x[t * x_stride].qs + 64 * p + 4 * j;
                    const __m256i x_even = broadcast4(xq), x_odd = broadcast4(xq + 32);
                    for (int hh = 0; hh < nh; hh++) {
                        even[hh][t] =
                            _mm256_add_epi16(even[hh][t], _mm256_maddubs_epi16(lo[hh], x_even));
                        odd[hh][t] =
                            _mm256_add_epi16(odd[hh][t], _mm256_maddubs_epi16(hi[hh], x_odd));
                        settle(&even[hh][t]);
                        settle(&odd[hh][t]);
                    }
                }
            }
            for (int hh = 0; hh < nh; hh++)
                for (int t = 0; t < n; t++) {
                    const int h = h0 + hh;
                    const __m256i sum =
                        _mm256_add_epi32(_mm256_madd_epi16(even[hh][t], f->scale[h][2 * p]),
                                         _mm256_madd_epi16(odd[hh][t], f->scale[h][2 * p + 1]));
                    total[hh][t] = _mm256_add_epi32(total[hh][t], sum);
                }
        }
    put_values(total, h0, nh, n, s);
}

/* s->offsets of n tokens: sum_j min_j * (bsums[2j] + bsums[2j + 1]), from the
 * pair sums (pair_sums), MIN_WORDS per block, pair_stride apart per token. */
AVX2_INLINE void q45_k_offsets(const struct group_factors *f, const int32_t *pairs,
                               int64_t pair_stride, int n, struct block_sums *s)
{
    for (int t = 0; t < n; t++)
        for (int h = 0; h < HALVES; h++) {
            __m256i sum = _mm256_madd_epi16(f->offset[h][0], broadcast4(pairs + t * pair_stride));
            for (int i = 1; i < MIN_WORDS; i++)
                sum = _mm256_add_epi32(
                    sum,
                    _mm256_madd_epi16(f->offset[h][i], broadcast4(pairs + t * pair_stride + i)));
            s->offsets[h][t] = sum;
        }
}

/* ---- Q6_K ---- */

/* The factors of group g: each lane's int8 scales of sub-blocks 2i and 2i + 1,
 * as int16, and each of them in both halves of the lane. */
AVX2_INLINE void q6_k_factors(const struct llamad_gemm_packed_q6_k *p, int g,
                              struct group_factors *f)
{
    for (int h = 0; h < HALVES; h++)
        for (int i = 0; i < 8; i++) {
            const __m256i pair =
                _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)p->scales[g][i][8 * h]));
            f->offset[h][i] = pair;
            f->scale[h][2 * i] = pick_bytes(pair, 0, 1, 0, 1);
            f->scale[h][2 * i + 1] = pick_bytes(pair, 2, 3, 2, 3);
        }
}

/* Value dword 16c + 4i + k of vector h of a packed Q6_K group (i, k < 4;
 * sub-block 4c + i): its low nibbles from ql[c][(4i + k) % 8] (low half for
 * i < 2), its top bits from bits 2i, 2i + 1 of qh[c][k], moved to bits 4 and
 * 5. The lines ask for theirs `ahead` bytes on at their first use. */
AVX2_INLINE __m256i q6_k_vector(const struct llamad_gemm_packed_q6_k *p, int g, int c, int i, int k,
                                int h, size_t ahead)
{
    const __m256i low = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    __m256i l = load_lanes(p->ql[g][c][(4 * i + k) % 8][8 * h], i < 2 ? ahead : 0);
    __m256i q = load_lanes(p->qh[g][c][k][8 * h], i == 0 ? ahead : 0);
    if (i >= 2)
        l = _mm256_srli_epi16(l, 4);
    q = i == 0   ? _mm256_slli_epi16(q, 4)
        : i == 1 ? _mm256_slli_epi16(q, 2)
        : i == 3 ? _mm256_srli_epi16(q, 2)
                 : q;
    return _mm256_or_si256(_mm256_and_si256(l, low), _mm256_and_si256(q, top));
}

/* As q45_k_values, for a packed Q6_K block: each 16-value sub-block is 4 value
 * dwords, 2 to a 16-bit sum. */
AVX2_INLINE void q6_k_values(const struct llamad_gemm_packed_q6_k *p, int g,
                             const struct group_factors *f, const struct llamad_q8k_block *x,
                             int64_t x_stride, int n, int h0, int nh, size_t ahead,
                             struct block_sums *s)
{
    __m256i total[HALVES][PASS_TOKENS];
    zero_sums(total, nh, n);
    for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 2
            for (int k0 = 0; k0 < 4; k0 += 2) {
                const int sub = 4 * c + i;
                __m256i sums[HALVES][PASS_TOKENS];
                zero_sums(sums, nh, n);
#pragma GCC unroll 2
                for (int k = k0; k < k0 + 2; k++) {
                    __m256i v[HALVES];
                    for (int hh = 0; hh < nh; hh++)
                        v[hh] = q6_k_vector(p, g, c, i, k, h0 + hh, hh == 0 ? ahead : 0);
                    for (int t = 0; t < n; t++) {
                        const __m256i xq = broadcast4(x[t * x_stride].qs + 16 * sub + 4 * k);
                        for (int hh = 0; hh < nh; hh++) {
                            sums[hh][t] =
                                _mm256_add_epi16(sums[hh][t], _mm256_maddubs_epi16(v[hh], xq));
                            settle(&sums[hh][t]);
                        }
                    }
                }
                for (int hh = 0; hh < nh; hh++)
                    for (int t = 0; t < n; t++)
                        total[hh][t] = _mm256_add_epi32(
                            total[hh][t], _mm256_madd_epi16(sums[hh][t], f->scale[h0 + hh][sub]));
            }
    put_values(total, h0, nh, n, s);
}

/* s->offsets of n tokens: 32 * sum_s scale_s * bsums[s]. */
AVX2_INLINE void q6_k_offsets(const struct group_factors *f, const struct llamad_q8k_block *x,
                              int64_t x_stride, int n, struct block_sums *s)
{
    for (int t = 0; t < n; t++)
        for (int h = 0; h < HALVES; h++) {
            const int16_t *bsums = x[t * x_stride].bsums;
            __m256i sum = _mm256_madd_epi16(f->offset[h][0], broadcast4(bsums));
            for (int i = 1; i < 8; i++)
                sum = _mm256_add_epi32(
                    sum, _mm256_madd_epi16(f->offset[h][i], broadcast4(bsums + 2 * i)));
            s->offsets[h][t] = _mm256_slli_epi32(sum, 5);
        }
}

/* ---- All three ---- */

/* A tile kernel: s->values of group g of block pb for the tile's tokens (as
 * many as the kernel is made for). */
typedef void tile_fn(const uint8_t *pb, int g, const struct group_factors *f,
                     const struct llamad_q8k_block *xb, int64_t x_stride, struct block_sums *s);

/* The tile's tokens against both vectors of group g, nh vectors unpacked at a
 * time: both for one or two tokens, one for more, whose 16-bit sums then fill
 * the registers. In L2, Q4_K / Q5_K / Q6_K, GMAC/s: 1 token 64 / 40 / 37 both
 * at a time, 53 / 33 / 34 one at a time; 8 tokens, Q6_K: 50 both, 70 one. */
AVX2_INLINE void tile_values(const uint8_t *pb, uint32_t type, int g, const struct group_factors *f,
                             const struct llamad_q8k_block *xb, int64_t x_stride, int n,
                             struct block_sums *s)
{
    const int nh = n <= 2 ? HALVES : 1;
    const size_t ahead = prefetch_distance(type);
    for (int h0 = 0; h0 < HALVES; h0 += nh)
        if (type == LLAMAD_TYPE_Q6_K)
            q6_k_values((const void *)pb, g, f, xb, x_stride, n, h0, nh, h0 == 0 ? ahead : 0, s);
        else
            q45_k_values(pb, type == LLAMAD_TYPE_Q5_K, g, f, xb, x_stride, n, h0, nh,
                         h0 == 0 ? ahead : 0, s);
}

/* One tile kernel per type and token count, each a function of its own: with
 * them all inlined into one, as in gemm_int8_k_vnni.c, GCC's register
 * allocation for the whole spilled the inner loops' sums and constants (Q4_K
 * in L2, 8 tokens, in a version before settle: 36 GMAC/s that way, 55 this). */
#define TILE_KERNEL(name, type, n)                                                                 \
    AVX2_FN __attribute__((noinline)) static void name(                                            \
        const uint8_t *pb, int g, const struct group_factors *f,                                   \
        const struct llamad_q8k_block *xb, int64_t x_stride, struct block_sums *s)                 \
    {                                                                                              \
        tile_values(pb, type, g, f, xb, x_stride, n, s);                                           \
    }

#define TILE_KERNELS(kind, type)                                                                   \
    TILE_KERNEL(kind##_1, type, 1)                                                                 \
    TILE_KERNEL(kind##_2, type, 2)                                                                 \
    TILE_KERNEL(kind##_3, type, 3)                                                                 \
    TILE_KERNEL(kind##_4, type, 4)                                                                 \
    TILE_KERNEL(kind##_5, type, 5)                                                                 \
    TILE_KERNEL(kind##_6, type, 6)                                                                 \
    TILE_KERNEL(kind##_7, type, 7)                                                                 \
    TILE_KERNEL(kind##_8, type, 8)                                                                 \
    static tile_fn *const kind##_tiles[PASS_TOKENS] = {kind##_1, kind##_2, kind##_3, kind##_4,     \
                                                       kind##_5, kind##_6, kind##_7, kind##_8};

TILE_KERNELS(q4_k, LLAMAD_TYPE_Q4_K)
TILE_KERNELS(q5_k, LLAMAD_TYPE_Q5_K)
TILE_KERNELS(q6_k, LLAMAD_TYPE_Q6_K)

/* The tile kernel of `type` for n_tok tokens. */
static tile_fn *tile_kernel(uint32_t type, int n_tok)
{
    switch (type) {
    case LLAMAD_TYPE_Q4_K: return q4_k_tiles[n_tok - 1];
    case LLAMAD_TYPE_Q5_K: return q5_k_tiles[n_tok - 1];
    default: return q6_k_tiles[n_tok - 1];
    }
}

/* Group g's sums of block pb for n_tok tokens. */
AVX2_FN static void group_sums(const uint8_t *pb, uint32_t type, int g,
                               const struct llamad_q8k_block *xb, const int32_t *pairs,
                               int64_t x_stride, int n_tok, struct block_sums *s)
{
    struct group_factors f;
    if (type == LLAMAD_TYPE_Q6_K)
        q6_k_factors((const void *)pb, g, &f);
    else
        q45_k_factors(((const struct llamad_gemm_packed_q4_k *)pb)->scales[g],
                      prefetch_distance(type), &f);
    tile_kernel(type, n_tok)(pb, g, &f, xb, x_stride, s);
    if (type == LLAMAD_TYPE_Q6_K)
        q6_k_offsets(&f, xb, x_stride, n_tok, s);
    else
        q45_k_offsets(&f, pairs, x_stride * MIN_WORDS, n_tok, s);
}

/* n_tok (1..PASS_TOKENS) tokens against a whole packed panel of `type`;
 * y_rows points at the panel's first row of the first token's output. A block
 * adds d dx * values - dmin dx * offsets (Q4_K, Q5_K), d dx * (values -
 * offsets) (Q6_K), per row, as the VNNI kernel does. */
AVX2_FN static void panel_tokens(const uint8_t *panel, uint32_t type, int64_t nb,
                                 const struct llamad_q8k_block *x, const int32_t *pairs,
                                 int64_t x_stride, int n_tok, float *y_rows, int64_t y_stride,
                                 const uint16_t live[GROUPS])
{
    const bool q6 = type == LLAMAD_TYPE_Q6_K;
    const size_t block_bytes = llamad_gemm_packed_block_bytes(type);
    /* the lines before the first vector read with load_lanes: d, dmin (Q4_K,
     * Q5_K) or d and the scales (Q6_K) */
    const size_t head = q6 ? offsetof(struct llamad_gemm_packed_q6_k, ql)
                           : offsetof(struct llamad_gemm_packed_q4_k, scales);
    panel_acc acc;
    panel_acc_zero(acc, n_tok);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + (size_t)b * block_bytes;
        prefetch_ahead(pb, prefetch_distance(type), (int)head);
        const struct llamad_gemm_packed_q4_k *p = (const void *)pb; /* every layout starts with d */
        const struct llamad_q8k_block *xb = x + b;
        for (int g = 0; g < GROUPS; g++) {
            struct block_sums s;
            group_sums(pb, type, g, xb, pairs + b * MIN_WORDS, x_stride, n_tok, &s);
            for (int h = 0; h < HALVES; h++) {
                const __m256 dw = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)&p->d[g][8 * h]));
                const __m256 dmin =
                    q6 ? dw : _mm256_cvtph_ps(_mm_load_si128((const __m128i *)&p->dmin[g][8 * h]));
                for (int t = 0; t < n_tok; t++) {
                    const __m256 dx = _mm256_set1_ps(xb[t * x_stride].d);
                    if (q6) {
                        const __m256i sum = _mm256_sub_epi32(s.values[h][t], s.offsets[h][t]);
                        acc[g][h][t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx),
                                                       _mm256_cvtepi32_ps(sum), acc[g][h][t]);
                        continue;
                    }
                    acc[g][h][t] = _mm256_fmadd_ps(
                        _mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(s.values[h][t]), acc[g][h][t]);
                    acc[g][h][t] = _mm256_fnmadd_ps(
                        _mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(s.offsets[h][t]), acc[g][h][t]);
                }
            }
        }
    }
    panel_acc_store(acc, n_tok, y_rows, y_stride, live);
}

/* Each token's block's sums of its 32-value sub-blocks, bsums[2j] + bsums[2j +
 * 1] (at most 32 * 128 in size), what Q4_K's and Q5_K's minimums multiply: as
 * int16, two to a word (sub-blocks 2i and 2i + 1 in word i), so that one
 * vpmaddwd takes two. Made once per call. pairs[(t * nb + b) * MIN_WORDS + i]. */
static void pair_sums(const struct llamad_q8k_block *x, int32_t n_tokens, int64_t nb,
                      int32_t *pairs)
{
    for (int64_t k = 0; k < n_tokens * nb; k++)
        for (int i = 0; i < MIN_WORDS; i++) {
            const int16_t *b = x[k].bsums + 4 * i;
            const uint16_t even = (uint16_t)(b[0] + b[1]), odd = (uint16_t)(b[2] + b[3]);
            pairs[k * MIN_WORDS + i] = (int32_t)((uint32_t)even | (uint32_t)odd << 16);
        }
}

/* The pair sums (pair_sums) are the work buffer, in whole 64-byte lines. */
static size_t work_bytes(int64_t cols, int32_t max_tokens)
{
    const size_t bytes =
        (size_t)max_tokens * (size_t)(cols / LLAMAD_QK_K) * MIN_WORDS * sizeof(int32_t);
    return (bytes + 63) / 64 * 64;
}

AVX2_FN static void rows_k_avx2(const struct llamad_weight *w, int64_t r0, int64_t r1,
                                const void *x, int32_t n_tokens, float *y, int64_t y_stride,
                                void *work)
{
    const int64_t nb = w->cols / LLAMAD_QK_K;
    const struct llamad_q8k_block *xq = x;
    int32_t *pairs = work;
    if (w->type != LLAMAD_TYPE_Q6_K)
        pair_sums(xq, n_tokens, nb, pairs);
    for (int64_t p0 = r0; p0 < r1; p0 += PANEL_ROWS) {
        uint16_t live[GROUPS];
        llamad_gemm_live_lanes(p0, r1, live);
        const uint8_t *panel = llamad_gemm_packed_panel(w, p0);
        for (int32_t t = 0; t < n_tokens; t += PASS_TOKENS)
            panel_tokens(panel, w->type, nb, xq + t * nb, pairs + t * nb * MIN_WORDS, nb,
                         n_tokens - t < PASS_TOKENS ? n_tokens - t : PASS_TOKENS,
                         y + t * y_stride + p0, y_stride, live);
    }
}

static const struct llamad_gemm_int8_kernels k_avx2_kernels = {"avx2", 8, work_bytes, rows_k_avx2};

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_k_avx2(uint32_t type)
{
    if (!llamad_cpu_runs(LLAMAD_CPU_AVX2) ||
        (type != LLAMAD_TYPE_Q4_K && type != LLAMAD_TYPE_Q5_K && type != LLAMAD_TYPE_Q6_K))
        return NULL;
    return &k_avx2_kernels;
}

#else

const struct llamad_gemm_int8_kernels *llamad_gemm_int8_k_avx2(uint32_t type)
{
    (void)type;
    return NULL;
}

#endif
