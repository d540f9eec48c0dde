/* AVX2 attention kernels (with FMA and F16C): 8 floats to a vector and 16
 * vector registers, so the tiles are smaller than attention_avx512.c's. F32 and
 * F16 keys come laid out by dimension: a vector holds 8 keys' values of one
 * dimension, a pass takes 16 keys (two vectors) for up to 3 queries, and each
 * score builds up lane by lane in two partial sums (even and odd dimensions), so
 * no sum runs across lanes. Q8_0 keys come by row: the 32 products of a query
 * and a key's block add up unscaled and the block's scale then multiplies their
 * sum into the score, so a byte is only widened; a tile is four rows of one
 * query or two rows of two, and its horizontal sums share shuffles. The weighted
 * sum keeps 64 output values of one query (32 of two; more queries go two at a
 * time) in registers while the value rows stream past, a Q8_0 block's scale
 * folded into each row's weight. Every query's arithmetic is the same whatever
 * shares its call. Rows and head widths that end inside a vector are read and
 * written only that far. Reference: attention_kernels.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attention_internal.h"
#include "llamad/format/types.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include "exp_x86.h"
#include "quant_x86.h"

enum {
    LANES = 8,
    KEY_VECTORS = 2,      /* keys laid out by dimension: 16 keys a pass ... */
    PASS_QUERIES = 3,     /* ... for up to 3 queries ... */
    KEY_PARTS = 2,        /* ... each score in this many partial sums */
    PIECE = LLAMAD_QK8_0, /* a row's values in pieces of a Q8_0 block's 32 */
    PIECE_VECTORS = PIECE / LANES,
    CHUNK_QUERIES = 2, /* weighted sum: up to 2 queries a chunk ... */
    CHUNK_PIECES = 2,  /* ... of 2 pieces for one query, 1 for two */
};

/* The mask of the first `left` (0..8) lanes, for maskload and maskstore. */
AVX2_INLINE __m256i first_lanes(int32_t left)
{
    static const int32_t ones_then_zeros[2 * LANES] = {-1, -1, -1, -1, -1, -1, -1, -1};
    return _mm256_loadu_si256((const __m256i *)(ones_then_zeros + LANES - left));
}

/* 8 floats from p, or its first `left` when fewer (the other lanes 0). */
AVX2_INLINE __m256 load_floats(const float *p, int32_t left)
{
    return left >= LANES ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(left));
}

AVX2_INLINE void store_floats(float *p, __m256 v, int32_t left)
{
    if (left >= LANES)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, first_lanes(left), v);
}

/* 8 cache values from element i of a row of floats or of halves, or its first
 * `left` when fewer. */
typedef __m256 (*kv_load_fn)(const void *row, int64_t i, int32_t left);

AVX2_INLINE __m256 load_f32(const void *row, int64_t i, int32_t left)
{
    return load_floats((const float *)row + i, left);
}

AVX2_INLINE __m256 load_f16(const void *row, int64_t i, int32_t left)
{
    const uint16_t *halves = (const uint16_t *)row + i;
    if (left >= LANES)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)halves));
    uint16_t part[LANES] = {0};
    memcpy(part, halves, (size_t)left * sizeof *part);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)part));
}

/* A row read in pieces of 32 values, each a scale times its vectors: a Q8_0
 * block's scale and widened bytes, or 1 and the floats or halves themselves. */
typedef float (*piece_scale_fn)(const uint8_t *row, int32_t piece);
/* Vector v of a piece, or its first `left` values when fewer. */
typedef __m256 (*piece_vector_fn)(const uint8_t *row, int32_t piece, int v, int32_t left);

AVX2_INLINE float unscaled(const uint8_t *row, int32_t piece)
{
    (void)row, (void)piece;
    return 1.0f;
}

AVX2_INLINE __m256 piece_f32(const uint8_t *row, int32_t piece, int v, int32_t left)
{
    return load_f32(row, (int64_t)piece * PIECE + v * LANES, left);
}

AVX2_INLINE __m256 piece_f16(const uint8_t *row, int32_t piece, int v, int32_t left)
{
    return load_f16(row, (int64_t)piece * PIECE + v * LANES, left);
}

AVX2_INLINE float scale_q8_0(const uint8_t *row, int32_t piece)
{
    return f16_at(row + (size_t)piece * LLAMAD_Q8_0_BYTES);
}

/* Q8_0 head widths are whole blocks: a vector is never cut short. */
AVX2_INLINE __m256 piece_q8_0(const uint8_t *row, int32_t piece, int v, int32_t left)
{
    (void)left;
    const uint8_t *bytes = row + (size_t)piece * LLAMAD_Q8_0_BYTES + 2 + v * LANES;
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)bytes)));
}

/* n_q (1..PASS_QUERIES) queries against `vectors` (1 or 2) vectors of keys from
 * key r0, of the last vector its first `left` keys; n_q and `vectors` are
 * constants after inlining, and `left` too in the passes of whole vectors. */
AVX2_INLINE void scores_pass(const float *q, int64_t q_stride, int n_q, const void *keys,
                             int64_t stride, int32_t r0, int vectors, int32_t left, int32_t hd,
                             float scale, float *scores, int64_t s_stride, kv_load_fn load)
{
    __m256 acc[PASS_QUERIES][KEY_VECTORS][KEY_PARTS];
    for (int i = 0; i < n_q; i++)
        for (int v = 0; v < vectors; v++)
            for (int p = 0; p < KEY_PARTS; p++)
                acc[i][v][p] = _mm256_setzero_ps();
    for (int32_t d0 = 0; d0 < hd; d0 += KEY_PARTS)
        for (int p = 0; p < KEY_PARTS && d0 + p < hd; p++) {
            __m256 k[KEY_VECTORS];
            for (int v = 0; v < vectors; v++)
                k[v] =
                    load(keys, (d0 + p) * stride + r0 + v * LANES, v == vectors - 1 ? left : LANES);
            for (int i = 0; i < n_q; i++) {
                const __m256 qd = _mm256_broadcast_ss(q + i * q_stride + d0 + p);
                for (int v = 0; v < vectors; v++)
                    acc[i][v][p] = _mm256_fmadd_ps(qd, k[v], acc[i][v][p]);
            }
        }
    _Static_assert(KEY_PARTS == 2, "the parts are added up in one step below");
    for (int i = 0; i < n_q; i++)
        for (int v = 0; v < vectors; v++)
            store_floats(
                scores + i * s_stride + r0 + v * LANES,
                _mm256_mul_ps(_mm256_add_ps(acc[i][v][0], acc[i][v][1]), _mm256_set1_ps(scale)),
                v == vectors - 1 ? left : LANES);
}

/* All n_q queries against the same keys, PASS_QUERIES at a time. */
AVX2_INLINE void scores_keys(const float *q, int64_t q_stride, int n_q, const void *keys,
                             int64_t stride, int32_t r0, int vectors, int32_t left, int32_t hd,
                             float scale, float *scores, int64_t s_stride, kv_load_fn load)
{
    int q0 = 0;
    for (; q0 + PASS_QUERIES <= n_q; q0 += PASS_QUERIES)
        scores_pass(q + q0 * q_stride, q_stride, PASS_QUERIES, keys, stride, r0, vectors, left, hd,
                    scale, scores + q0 * s_stride, s_stride, load);
    _Static_assert(PASS_QUERIES == 3, "the queries left over are 2 or 1");
    if (n_q - q0 == 2)
        scores_pass(q + q0 * q_stride, q_stride, 2, keys, stride, r0, vectors, left, hd, scale,
                    scores + q0 * s_stride, s_stride, load);
    else if (n_q - q0 == 1)
        scores_pass(q + q0 * q_stride, q_stride, 1, keys, stride, r0, vectors, left, hd, scale,
                    scores + q0 * s_stride, s_stride, load);
}

/* Keys laid out by dimension (F32, F16): lane j of a vector is key r0 + j. */
AVX2_INLINE void scores_by_dimension(const float *q, int64_t q_stride, int n_q, const void *keys,
                                     int64_t stride, int32_t rows, int32_t hd, float scale,
                                     float *scores, int64_t s_stride, kv_load_fn load)
{
    int32_t r0 = 0;
    for (; r0 + KEY_VECTORS * LANES <= rows; r0 += KEY_VECTORS * LANES)
        scores_keys(q, q_stride, n_q, keys, stride, r0, KEY_VECTORS, LANES, hd, scale, scores,
                    s_stride, load);
    const int32_t left = rows - r0;
    _Static_assert(KEY_VECTORS == 2, "the keys left over fill part of two vectors or one");
    if (left > LANES)
        scores_keys(q, q_stride, n_q, keys, stride, r0, 2, left - LANES, hd, scale, scores,
                    s_stride, load);
    else if (left > 0)
        scores_keys(q, q_stride, n_q, keys, stride, r0, 1, left, hd, scale, scores, s_stride, load);
}

/* The sums of four vectors' lanes, as four floats: pairs of vectors are
 * interleaved and added so each step halves the lanes still to add (the same
 * order of additions for each of the four). */
AVX2_INLINE __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    const __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
    const __m256 abcd = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)),
                                      _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

enum {
    TILE_QUERIES = 2, /* a Q8_0 tile: up to 2 queries ... */
    TILE_DOTS = 4,    /* ... and 4 query-row pairs, the most one sum4 adds up */
};

/* Q8_0 keys by row: n_q (1 or 2) queries against n_rows rows (4 for one query, 2
 * for two, 1 for the rows left over), both constants after inlining. */
AVX2_INLINE void scores_q8_0_tile(const float *q, int64_t q_stride, int n_q, const uint8_t *keys,
                                  int64_t row_bytes, int n_rows, int32_t hd, float scale,
                                  float *scores, int64_t s_stride)
{
    __m256 acc[TILE_DOTS];
    for (int t = 0; t < n_q * n_rows; t++)
        acc[t] = _mm256_setzero_ps();
    for (int32_t b = 0; b < hd / PIECE; b++) {
        __m256 dot[TILE_DOTS];
        for (int v = 0; v < PIECE_VECTORS; v++) {
            __m256 qv[TILE_QUERIES];
            for (int i = 0; i < n_q; i++)
                qv[i] = _mm256_loadu_ps(q + i * q_stride + b * PIECE + v * LANES);
            for (int r = 0; r < n_rows; r++) {
                const __m256 k = piece_q8_0(keys + r * row_bytes, b, v, LANES);
                for (int i = 0; i < n_q; i++)
                    dot[i * n_rows + r] = v == 0 ? _mm256_mul_ps(qv[i], k)
                                                 : _mm256_fmadd_ps(qv[i], k, dot[i * n_rows + r]);
            }
        }
        for (int r = 0; r < n_rows; r++) {
            const __m256 d = _mm256_set1_ps(scale_q8_0(keys + r * row_bytes, b));
            for (int i = 0; i < n_q; i++)
                acc[i * n_rows + r] = _mm256_fmadd_ps(dot[i * n_rows + r], d, acc[i * n_rows + r]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    float sums[TILE_DOTS];
    _mm_storeu_ps(sums, sum4(acc[0], n_q * n_rows > 1 ? acc[1] : zero,
                             n_q * n_rows > 2 ? acc[2] : zero, n_q * n_rows > 3 ? acc[3] : zero));
    for (int i = 0; i < n_q; i++)
        for (int r = 0; r < n_rows; r++)
            scores[i * s_stride + r] = sums[i * n_rows + r] * scale;
}

/* n_q (1 or 2, a constant after inlining) queries against every row. */
AVX2_INLINE void scores_q8_0_queries(const float *q, int64_t q_stride, int n_q, const uint8_t *keys,
                                     int64_t row_bytes, int32_t rows, int32_t hd, float scale,
                                     float *scores, int64_t s_stride)
{
    const int tile_rows = TILE_DOTS / n_q;
    int32_t r = 0;
    for (; r + tile_rows <= rows; r += tile_rows)
        scores_q8_0_tile(q, q_stride, n_q, keys + r * row_bytes, row_bytes, tile_rows, hd, scale,
                         scores + r, s_stride);
    for (; r < rows; r++)
        scores_q8_0_tile(q, q_stride, n_q, keys + r * row_bytes, row_bytes, 1, hd, scale,
                         scores + r, s_stride);
}

/* n_q (1..CHUNK_QUERIES) outputs' values from piece p0 on, `pieces` of them (the
 * first `left` values only when fewer), in registers while every row is added
 * in: the row's weight for each query times the piece's scale, then the piece's
 * vectors. All but `left` are constants after inlining. */
AVX2_INLINE void weighted_sum_chunk(const float *weights, int64_t w_stride, int n_q,
                                    const uint8_t *values, int64_t row_bytes, int32_t rows,
                                    int32_t p0, int pieces, int32_t left, float *out,
                                    int64_t o_stride, piece_scale_fn scale_of,
                                    piece_vector_fn vector_of)
{
    enum { CHUNK_VECTORS = CHUNK_PIECES * PIECE_VECTORS };
    __m256 acc[CHUNK_QUERIES][CHUNK_VECTORS];
    int32_t lanes[CHUNK_VECTORS]; /* of each vector: 8 or more whole, 0 or less none */
    out += p0 * PIECE;
    for (int v = 0; v < pieces * PIECE_VECTORS; v++) {
        lanes[v] = left - v * LANES;
        for (int i = 0; i < n_q; i++)
            acc[i][v] = lanes[v] > 0 ? load_floats(out + i * o_stride + v * LANES, lanes[v])
                                     : _mm256_setzero_ps();
    }
    for (int32_t r = 0; r < rows; r++) {
        const uint8_t *row = values + r * row_bytes;
        for (int p = 0; p < pieces; p++) {
            const float s = scale_of(row, p0 + p);
            __m256 w[CHUNK_QUERIES];
            for (int i = 0; i < n_q; i++)
                w[i] = _mm256_set1_ps(weights[i * w_stride + r] * s);
            for (int u = 0; u < PIECE_VECTORS; u++) {
                const int v = p * PIECE_VECTORS + u;
                if (lanes[v] <= 0)
                    break;
                const __m256 x = vector_of(row, p0 + p, u, lanes[v]);
                for (int i = 0; i < n_q; i++)
                    acc[i][v] = _mm256_fmadd_ps(w[i], x, acc[i][v]);
            }
        }
    }
    for (int v = 0; v < pieces * PIECE_VECTORS && lanes[v] > 0; v++)
        for (int i = 0; i < n_q; i++)
            store_floats(out + i * o_stride + v * LANES, acc[i][v], lanes[v]);
}

/* n_q (1 or 2, a constant after inlining) outputs, chunk by chunk, the last
 * piece cut short where the head ends inside it. */
AVX2_INLINE void weighted_sum_queries(const float *weights, int64_t w_stride, int n_q,
                                      const uint8_t *values, int64_t row_bytes, int32_t rows,
                                      int32_t hd, float *out, int64_t o_stride,
                                      piece_scale_fn scale_of, piece_vector_fn vector_of)
{
    const int pieces = CHUNK_PIECES / n_q;
    int32_t p0 = 0;
    for (; (p0 + pieces) * PIECE <= hd; p0 += pieces)
        weighted_sum_chunk(weights, w_stride, n_q, values, row_bytes, rows, p0, pieces,
                           pieces * PIECE, out, o_stride, scale_of, vector_of);
    for (; p0 * PIECE < hd; p0++)
        weighted_sum_chunk(weights, w_stride, n_q, values, row_bytes, rows, p0, 1, hd - p0 * PIECE,
                           out, o_stride, scale_of, vector_of);
}

/* All n_q outputs, CHUNK_QUERIES at a time. */
AVX2_INLINE void weighted_sum(const float *weights, int64_t w_stride, int n_q,
                              const uint8_t *values, int64_t row_bytes, int32_t rows, int32_t hd,
                              float *out, int64_t o_stride, piece_scale_fn scale_of,
                              piece_vector_fn vector_of)
{
    int q0 = 0;
    _Static_assert(CHUNK_QUERIES == 2, "a query left over goes alone");
    for (; q0 + 2 <= n_q; q0 += 2)
        weighted_sum_queries(weights + q0 * w_stride, w_stride, 2, values, row_bytes, rows, hd,
                             out + q0 * o_stride, o_stride, scale_of, vector_of);
    if (q0 < n_q)
        weighted_sum_queries(weights + q0 * w_stride, w_stride, 1, values, row_bytes, rows, hd,
                             out + q0 * o_stride, o_stride, scale_of, vector_of);
}

/* The largest of a vector's lanes. */
AVX2_INLINE float max_of_lanes(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

/* 8 floats from p, the lanes past the first `left` -infinity. */
AVX2_INLINE __m256 load_scores(const float *p, int32_t left)
{
    if (left >= LANES)
        return _mm256_loadu_ps(p);
    const __m256i m = first_lanes(left);
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, m),
                            _mm256_castsi256_ps(m));
}

AVX2_FN static void softmax_avx2(float *x, int32_t n)
{
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (int32_t i = 0; i < n; i += LANES)
        vmax = _mm256_max_ps(vmax, load_scores(x + i, n - i));
    const __m256 max = _mm256_set1_ps(max_of_lanes(vmax));
    __m256 sum = _mm256_setzero_ps();
    for (int32_t i = 0; i < n; i += LANES) { /* e^-infinity is 0: the lanes past n add nothing */
        const __m256 e = llamad_exp8(_mm256_sub_ps(load_scores(x + i, n - i), max));
        store_floats(x + i, e, n - i);
        sum = _mm256_add_ps(sum, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum256(sum));
    for (int32_t i = 0; i < n; i += LANES)
        store_floats(x + i, _mm256_mul_ps(load_floats(x + i, n - i), inv), n - i);
}

AVX2_FN static void scores_f32(const float *q, int64_t q_stride, int n_q, const void *keys,
                               int64_t stride, int32_t rows, int32_t hd, float scale, float *scores,
                               int64_t s_stride)
{
    scores_by_dimension(q, q_stride, n_q, keys, stride, rows, hd, scale, scores, s_stride,
                        load_f32);
}

AVX2_FN static void scores_f16(const float *q, int64_t q_stride, int n_q, const void *keys,
                               int64_t stride, int32_t rows, int32_t hd, float scale, float *scores,
                               int64_t s_stride)
{
    scores_by_dimension(q, q_stride, n_q, keys, stride, rows, hd, scale, scores, s_stride,
                        load_f16);
}

AVX2_FN static void scores_q8_0(const float *q, int64_t q_stride, int n_q, const void *keys,
                                int64_t stride, int32_t rows, int32_t hd, float scale,
                                float *scores, int64_t s_stride)
{
    const int64_t row_bytes = stride / LLAMAD_QK8_0 * LLAMAD_Q8_0_BYTES;
    int q0 = 0;
    _Static_assert(TILE_QUERIES == 2, "a query left over goes alone");
    for (; q0 + 2 <= n_q; q0 += 2)
        scores_q8_0_queries(q + q0 * q_stride, q_stride, 2, keys, row_bytes, rows, hd, scale,
                            scores + q0 * s_stride, s_stride);
    if (q0 < n_q)
        scores_q8_0_queries(q + q0 * q_stride, q_stride, 1, keys, row_bytes, rows, hd, scale,
                            scores + q0 * s_stride, s_stride);
}

AVX2_FN static void weighted_sum_f32(const float *weights, int64_t w_stride, int n_q,
                                     const void *values, int64_t stride, int32_t rows, int32_t hd,
                                     float *out, int64_t o_stride)
{
    weighted_sum(weights, w_stride, n_q, values, stride * (int64_t)sizeof(float), rows, hd, out,
                 o_stride, unscaled, piece_f32);
}

AVX2_FN static void weighted_sum_f16(const float *weights, int64_t w_stride, int n_q,
                                     const void *values, int64_t stride, int32_t rows, int32_t hd,
                                     float *out, int64_t o_stride)
{
    weighted_sum(weights, w_stride, n_q, values, stride * (int64_t)sizeof(uint16_t), rows, hd, out,
                 o_stride, unscaled, piece_f16);
}

AVX2_FN static void weighted_sum_q8_0(const float *weights, int64_t w_stride, int n_q,
                                      const void *values, int64_t stride, int32_t rows, int32_t hd,
                                      float *out, int64_t o_stride)
{
    weighted_sum(weights, w_stride, n_q, values, stride / LLAMAD_QK8_0 * LLAMAD_Q8_0_BYTES, rows,
                 hd, out, o_stride, scale_q8_0, piece_q8_0);
}

static const struct llamad_attention_kernels avx2_f32 = {"avx2", LLAMAD_TYPE_F32, scores_f32,
                                                         softmax_avx2, weighted_sum_f32};
static const struct llamad_attention_kernels avx2_f16 = {"avx2", LLAMAD_TYPE_F16, scores_f16,
                                                         softmax_avx2, weighted_sum_f16};
static const struct llamad_attention_kernels avx2_q8_0 = {"avx2", LLAMAD_TYPE_Q8_0, scores_q8_0,
                                                          softmax_avx2, weighted_sum_q8_0};

const struct llamad_attention_kernels *llamad_attention_avx2(uint32_t kv_type)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX2)
               ? llamad_attention_of_type(kv_type, &avx2_f32, &avx2_f16, &avx2_q8_0)
               : NULL;
}

#else

const struct llamad_attention_kernels *llamad_attention_avx2(uint32_t kv_type)
{
    (void)kv_type;
    return NULL;
}

#endif
