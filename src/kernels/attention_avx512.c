/* AVX-512 attention kernels. F32 and F16 keys come laid out by dimension: a
 * vector holds 16 keys' values of one dimension, each query's scores of those 16
 * keys build up lane by lane, dimension by dimension, and no sum runs across
 * lanes. Q8_0 keys come by row, 16 dimensions per vector: scores take
 * four rows at a time for up to 4 queries (two rows for 5 to 8, whose
 * accumulators would not fit in registers otherwise), so each key vector is
 * loaded once for them all and the horizontal sums of four rows share shuffles.
 * The weighted sum keeps 64 values of up to 4 queries' outputs (32 of up to 8)
 * in registers while the value rows stream past. Halves are widened to floats
 * as they are loaded. Reference: attention_kernels.c. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "attention_internal.h"
#include "exp_x86.h"
#include "llamad/format/half.h"
#include "llamad/format/types.h"
#include "llamad/kernels/cpu.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

enum {
    CHUNK_VECTORS = 4, /* head values per pass of the weighted sum: 64 ... */
    WIDE_QUERIES = 4,  /* ... for up to this many queries, 32 for more */
};

/* Lanes of the 16 values starting `left` before the end of a head (none when
 * left <= 0). */
static inline __mmask16 tail_mask(int32_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}

/* 16 cache values (lanes m) from element i of a row of floats or of halves. */
typedef __m512 (*kv_load_fn)(const void *row, int64_t i, __mmask16 m);

AVX512_FN static inline __m512 load_f32(const void *row, int64_t i, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)row + i);
}

AVX512_FN static inline __m512 load_f16(const void *row, int64_t i, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + i));
}

/* Q8_0 rows: 16 bytes of a block (i a multiple of 16, so never past the block)
 * times the block's scale. */
AVX512_FN static inline __m512 load_q8_0(const void *row, int64_t i, __mmask16 m)
{
    const uint8_t *block = (const uint8_t *)row + i / LLAMAD_QK8_0 * LLAMAD_Q8_0_BYTES;
    const __m128i bytes = _mm_maskz_loadu_epi8(m, block + 2 + i % LLAMAD_QK8_0);
    const float d = _cvtsh_ss(llamad_load_le16(block));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)), _mm512_set1_ps(d));
}

/* The sums of four vectors' lanes, as four floats: pairs of vectors are
 * interleaved and added so each step halves the lanes still to add. */
AVX512_FN static inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    /* each 128-bit lane: partial sums of a, b, c, d */
    const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
    const __m512 abcd = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)),
                                      _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
    const __m256 half =
        _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

/* n_q (a constant after inlining) queries against the four rows from element
 * `first` of `keys`: each key vector loaded is multiplied into every query's
 * accumulator. */
AVX512_FN static ALWAYS_INLINE void scores_4rows(const float *q, int64_t q_stride, int n_q,
                                                 const void *keys, int64_t first, int64_t stride,
                                                 int32_t hd, float scale, float *scores,
                                                 int64_t s_stride, kv_load_fn load)
{
    __m512 acc[LLAMAD_ATTENTION_QUERIES][4];
    for (int i = 0; i < n_q; i++)
        for (int r = 0; r < 4; r++)
            acc[i][r] = _mm512_setzero_ps();
    for (int32_t d = 0; d < hd; d += 16) {
        const __mmask16 m = tail_mask(hd - d);
        __m512 k[4];
        for (int r = 0; r < 4; r++)
            k[r] = load(keys, first + r * stride + d, m);
        for (int i = 0; i < n_q; i++) {
            const __m512 qv = _mm512_maskz_loadu_ps(m, q + i * q_stride + d);
            for (int r = 0; r < 4; r++)
                acc[i][r] = _mm512_fmadd_ps(qv, k[r], acc[i][r]);
        }
    }
    for (int i = 0; i < n_q; i++)
        _mm_storeu_ps(
            scores + i * s_stride,
            _mm_mul_ps(sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]), _mm_set1_ps(scale)));
}

/* n_q (5..8, a constant after inlining) queries against the two rows from
 * element `first`: the sums of two queries' two rows share one sum4. */
AVX512_FN static ALWAYS_INLINE void scores_2rows(const float *q, int64_t q_stride, int n_q,
                                                 const void *keys, int64_t first, int64_t stride,
                                                 int32_t hd, float scale, float *scores,
                                                 int64_t s_stride, kv_load_fn load)
{
    __m512 acc[LLAMAD_ATTENTION_QUERIES + 1][2];
    for (int i = 0; i <= n_q; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int32_t d = 0; d < hd; d += 16) {
        const __mmask16 m = tail_mask(hd - d);
        const __m512 k0 = load(keys, first + d, m), k1 = load(keys, first + stride + d, m);
        for (int i = 0; i < n_q; i++) {
            const __m512 qv = _mm512_maskz_loadu_ps(m, q + i * q_stride + d);
            acc[i][0] = _mm512_fmadd_ps(qv, k0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(qv, k1, acc[i][1]);
        }
    }
    for (int i = 0; i < n_q; i += 2) {
        float s[4];
        _mm_storeu_ps(s, _mm_mul_ps(sum4(acc[i][0], acc[i][1], acc[i + 1][0], acc[i + 1][1]),
                                    _mm_set1_ps(scale)));
        scores[i * s_stride] = s[0];
        scores[i * s_stride + 1] = s[1];
        if (i + 1 < n_q) {
            scores[(i + 1) * s_stride] = s[2];
            scores[(i + 1) * s_stride + 1] = s[3];
        }
    }
}

/* Row-major keys (Q8_0). */
AVX512_FN static ALWAYS_INLINE void scores_by_row(const float *q, int64_t q_stride, int n_q,
                                                  const void *keys, int64_t stride, int32_t rows,
                                                  int32_t hd, float scale, float *scores,
                                                  int64_t s_stride, kv_load_fn load)
{
    int32_t r = 0;
    if (n_q <= WIDE_QUERIES)
        for (; r + 4 <= rows; r += 4)
            scores_4rows(q, q_stride, n_q, keys, r * stride, stride, hd, scale, scores + r,
                         s_stride, load);
    else
        for (; r + 2 <= rows; r += 2)
            scores_2rows(q, q_stride, n_q, keys, r * stride, stride, hd, scale, scores + r,
                         s_stride, load);
    for (; r < rows; r++)
        for (int i = 0; i < n_q; i++) {
            __m512 acc = _mm512_setzero_ps();
            for (int32_t d = 0; d < hd; d += 16) {
                const __mmask16 m = tail_mask(hd - d);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i * q_stride + d),
                                      load(keys, r * stride + d, m), acc);
            }
            scores[i * s_stride + r] = _mm512_reduce_add_ps(acc) * scale;
        }
}

/* Keys laid out by dimension (F32, F16): lane j of a vector is key r0 + j.
 * Each score is four partial sums, dimension d adding into part d % 4, so the
 * multiply-adds of one query run in four chains instead of one long one (one
 * query against a block of 16 keys in L2: 2.4 against 3.1 ns per key). Queries
 * go four at a time, each dimension's vector loaded once for them. The parts and
 * the way they are added up are the same whatever the count of queries, so a
 * query's scores do not depend on how many others share the call. */
enum { KEY_PARTS = 4, PASS_QUERIES = 4 };

AVX512_FN static ALWAYS_INLINE void scores_pass(const float *q, int64_t q_stride, int n_q,
                                                const void *keys, int64_t stride, int32_t r0,
                                                __mmask16 m, int32_t hd, float scale, float *scores,
                                                int64_t s_stride, kv_load_fn load)
{
    __m512 acc[PASS_QUERIES][KEY_PARTS];
    for (int i = 0; i < n_q; i++)
        for (int p = 0; p < KEY_PARTS; p++)
            acc[i][p] = _mm512_setzero_ps();
    for (int32_t d0 = 0; d0 < hd; d0 += KEY_PARTS)
        for (int p = 0; p < KEY_PARTS && d0 + p < hd; p++) {
            const __m512 k = load(keys, (d0 + p) * stride + r0, m);
            for (int i = 0; i < n_q; i++)
                acc[i][p] = _mm512_fmadd_ps(_mm512_set1_ps(q[i * q_stride + d0 + p]), k, acc[i][p]);
        }
    _Static_assert(KEY_PARTS == 4, "the parts are added up in pairs below");
    for (int i = 0; i < n_q; i++) {
        const __m512 sum =
            _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3]));
        _mm512_mask_storeu_ps(scores + i * s_stride + r0, m,
                              _mm512_mul_ps(sum, _mm512_set1_ps(scale)));
    }
}

AVX512_FN static ALWAYS_INLINE void scores_by_dimension(const float *q, int64_t q_stride, int n_q,
                                                        const void *keys, int64_t stride,
                                                        int32_t rows, int32_t hd, float scale,
                                                        float *scores, int64_t s_stride,
                                                        kv_load_fn load)
{
    for (int32_t r0 = 0; r0 < rows; r0 += 16) {
        const __mmask16 m = tail_mask(rows - r0);
        for (int q0 = 0; q0 < n_q; q0 += PASS_QUERIES)
            scores_pass(q + q0 * q_stride, q_stride,
                        n_q - q0 < PASS_QUERIES ? n_q - q0 : PASS_QUERIES, keys, stride, r0, m, hd,
                        scale, scores + q0 * s_stride, s_stride, load);
    }
}

AVX512_FN static void softmax_avx512(float *x, int32_t n)
{
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, x + i));
    }
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 sum = _mm512_setzero_ps();
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 e = llamad_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_mask_add_ps(sum, m, sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

/* n_q (a constant after inlining) outputs of 64 values (32 for more than
 * WIDE_QUERIES) in registers; each value vector loaded is added into every one
 * of them. */
AVX512_FN static ALWAYS_INLINE void weighted_sum_queries(const float *weights, int64_t w_stride,
                                                         int n_q, const void *values,
                                                         int64_t stride, int32_t rows, int32_t hd,
                                                         float *out, int64_t o_stride,
                                                         kv_load_fn load)
{
    const int chunk = n_q <= WIDE_QUERIES ? CHUNK_VECTORS : CHUNK_VECTORS / 2;
    for (int32_t d0 = 0; d0 < hd; d0 += 16 * chunk) {
        __mmask16 m[CHUNK_VECTORS];
        __m512 acc[LLAMAD_ATTENTION_QUERIES][CHUNK_VECTORS];
        for (int v = 0; v < chunk; v++) {
            m[v] = tail_mask(hd - d0 - 16 * v);
            for (int i = 0; i < n_q; i++)
                acc[i][v] = _mm512_maskz_loadu_ps(m[v], out + i * o_stride + d0 + 16 * v);
        }
        for (int32_t r = 0; r < rows; r++) {
            __m512 row[CHUNK_VECTORS];
            for (int v = 0; v < chunk; v++)
                row[v] = load(values, r * stride + d0 + 16 * v, m[v]);
            for (int i = 0; i < n_q; i++) {
                const __m512 w = _mm512_set1_ps(weights[i * w_stride + r]);
                for (int v = 0; v < chunk; v++)
                    acc[i][v] = _mm512_fmadd_ps(w, row[v], acc[i][v]);
            }
        }
        for (int v = 0; v < chunk; v++)
            for (int i = 0; i < n_q; i++)
                _mm512_mask_storeu_ps(out + i * o_stride + d0 + 16 * v, m[v], acc[i][v]);
    }
}

/* CALL(n, name) with n the value of n_q, 1..LLAMAD_ATTENTION_QUERIES, as a
 * constant: each count is compiled with its accumulators laid out for it. */
_Static_assert(LLAMAD_ATTENTION_QUERIES == 8, "BY_QUERY_COUNT names every query count");
#define BY_QUERY_COUNT(CALL, name)                                                                 \
    switch (n_q) {                                                                                 \
    case 8: CALL(8, name); break;                                                                  \
    case 7: CALL(7, name); break;                                                                  \
    case 6: CALL(6, name); break;                                                                  \
    case 5: CALL(5, name); break;                                                                  \
    case 4: CALL(4, name); break;                                                                  \
    case 3: CALL(3, name); break;                                                                  \
    case 2: CALL(2, name); break;                                                                  \
    default: CALL(1, name); break;                                                                 \
    }
#define SCORES_CALL(n, name)                                                                       \
    scores_##name##_layout(q, q_stride, n, keys, stride, rows, hd, scale, scores, s_stride,        \
                           load_##name)
#define WEIGHTED_SUM_CALL(n, name)                                                                 \
    weighted_sum_queries(weights, w_stride, n, values, stride, rows, hd, out, o_stride, load_##name)

/* The kernels of one cache type. */
#define KV_KERNELS(name, type)                                                                     \
    AVX512_FN static void scores_##name(                                                           \
        const float *q, int64_t q_stride, int n_q, const void *keys, int64_t stride, int32_t rows, \
        int32_t hd, float scale, float *scores, int64_t s_stride){BY_QUERY_COUNT(                  \
        SCORES_CALL,                                                                               \
        name)} AVX512_FN static void weighted_sum_##name(const float *weights, int64_t w_stride,   \
                                                         int n_q, const void *values,              \
                                                         int64_t stride, int32_t rows, int32_t hd, \
                                                         float *out, int64_t o_stride)             \
    {                                                                                              \
        BY_QUERY_COUNT(WEIGHTED_SUM_CALL, name)                                                    \
    }                                                                                              \
    static const struct llamad_attention_kernels avx512_##name = {                                 \
        "avx512", type, scores_##name, softmax_avx512, weighted_sum_##name};

/* Each type's key layout, as llamad_attention_keys_by_dimension (attention.h) says. */
#define scores_f32_layout scores_by_dimension
#define scores_f16_layout scores_by_dimension
#define scores_q8_0_layout scores_by_row

KV_KERNELS(f32, LLAMAD_TYPE_F32)
KV_KERNELS(f16, LLAMAD_TYPE_F16)
KV_KERNELS(q8_0, LLAMAD_TYPE_Q8_0)

const struct llamad_attention_kernels *llamad_attention_avx512(uint32_t kv_type)
{
    return llamad_cpu_runs(LLAMAD_CPU_AVX512)
               ? llamad_attention_of_type(kv_type, &avx512_f32, &avx512_f16, &avx512_q8_0)
               : NULL;
}

#else

const struct llamad_attention_kernels *llamad_attention_avx512(uint32_t kv_type)
{
    (void)kv_type;
    return NULL;
}

#endif
