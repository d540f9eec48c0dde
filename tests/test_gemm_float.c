/* The float GEMM: every kernel this CPU's kernel set runs gives the plain
 * reference's bits (one fused multiply-add per column, in order), on shapes that
 * leave partial panels, column blocks and token tiles; a token's outputs are the
 * same bits whatever the batch; and the reference is close to the exact dot. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/kernels/gemm_float.h"
#include "llamad/kernels/quant.h"
#include "testutil.h"

static const uint32_t types[] = {LLAMAD_TYPE_F32, LLAMAD_TYPE_F16, LLAMAD_TYPE_BF16};
static const char *const fast[] = {"avx2", "avx512"};

/* rows x cols random weights of `type` in [-1, 1), with their packed copy. */
static struct llamad_weight random_weight(uint32_t type, int64_t rows, int64_t cols)
{
    float *values = malloc((size_t)cols * sizeof *values);
    const size_t row_bytes = (size_t)cols * (type == LLAMAD_TYPE_F32 ? 4 : 2);
    uint8_t *data = malloc((size_t)rows * row_bytes);
    assert_non_null(values);
    assert_non_null(data);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++)
            values[k] = test_rand_float(-1.0f, 1.0f);
        assert_true(llamad_quantize_row_ref(type, values, data + (size_t)r * row_bytes, cols));
    }
    free(values);
    struct llamad_weight w = {
        .type = type, .rows = rows, .cols = cols, .row_bytes = row_bytes, .data = data};
    const size_t bytes = (llamad_gemm_float_packed_bytes(type, rows, cols) + 63) / 64 * 64;
    void *packed = aligned_alloc(64, bytes);
    assert_non_null(packed);
    llamad_gemm_float_pack(&w, packed);
    w.packed = packed;
    return w;
}

static void free_weight(struct llamad_weight *w)
{
    free((void *)w->data);
    free((void *)w->packed);
}

static float *random_tokens(int32_t n_tokens, int64_t cols)
{
    float *x = malloc((size_t)n_tokens * (size_t)cols * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n_tokens * cols; i++)
        x[i] = test_rand_float(-1.0f, 1.0f);
    return x;
}

/* Rows [r0, r1) of every token by `kernel`, into y (rows apart); the rows
 * outside stay as they were. */
static float *run(llamad_gemm_float_fn kernel, const struct llamad_weight *w, int64_t r0,
                  int64_t r1, const float *x, int32_t n_tokens)
{
    float *y = malloc((size_t)n_tokens * (size_t)w->rows * sizeof *y);
    assert_non_null(y);
    for (int64_t i = 0; i < n_tokens * w->rows; i++)
        y[i] = -12345.0f;
    kernel(w, r0, r1, x, n_tokens, y, w->rows);
    return y;
}

/* Shapes: rows short of, at and past a panel; columns short of, at and past a
 * column block (256); row ranges that start and end inside panels. */
static void test_fast_kernels_equal_reference_bits(void **state)
{
    (void)state;
    const struct {
        int64_t rows, cols, r0, r1;
    } shapes[] = {{7, 5, 0, 7},       {32, 64, 0, 32},   {45, 256, 0, 45},
                  {100, 300, 13, 77}, {96, 520, 32, 96}, {70, 768, 40, 41}};
    const int32_t batches[] = {1, 2, 3, 4, 5, 12, 13, 29};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            struct llamad_weight w = random_weight(types[ti], shapes[si].rows, shapes[si].cols);
            float *x = random_tokens(29, w.cols);
            for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
                const int32_t n = batches[bi];
                float *want = run(llamad_gemm_float_variant(w.type, "scalar"), &w, shapes[si].r0,
                                  shapes[si].r1, x, n);
                for (size_t v = 0; v < sizeof fast / sizeof fast[0]; v++) {
                    llamad_gemm_float_fn k = llamad_gemm_float_variant(w.type, fast[v]);
                    if (!k)
                        continue;
                    float *got = run(k, &w, shapes[si].r0, shapes[si].r1, x, n);
                    if (memcmp(got, want, (size_t)n * (size_t)w.rows * sizeof *got) != 0)
                        fail_msg("%s type %u, %lld x %lld rows %lld..%lld, %d tokens: not the "
                                 "reference's bits",
                                 fast[v], (unsigned)w.type, (long long)w.rows, (long long)w.cols,
                                 (long long)shapes[si].r0, (long long)shapes[si].r1, (int)n);
                    free(got);
                }
                free(want);
            }
            free(x);
            free_weight(&w);
        }
}

/* A token's outputs are the same bits alone and in batches of every size up to
 * 40 (which pass through every tile shape). */
static void test_tokens_same_alone_or_batched(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        llamad_gemm_float_fn k = llamad_gemm_float_for(types[ti]);
        if (!k) /* the scalar set: the reference */
            k = llamad_gemm_float_variant(types[ti], "scalar");
        struct llamad_weight w = random_weight(types[ti], 80, 1000);
        float *x = random_tokens(40, w.cols);
        for (int32_t n = 1; n <= 40; n++) {
            float *y = run(k, &w, 0, w.rows, x, n);
            for (int32_t t = 0; t < n; t++) {
                float *alone = run(k, &w, 0, w.rows, x + t * w.cols, 1);
                if (memcmp(alone, y + t * w.rows, (size_t)w.rows * sizeof *alone) != 0)
                    fail_msg("type %u: token %d of %d differs from the token alone",
                             (unsigned)w.type, (int)t, (int)n);
                free(alone);
            }
            free(y);
        }
        free(x);
        free_weight(&w);
    }
}

/* The fused multiply-adds in float stay within a few units of float rounding of
 * the exact dot product (llamad_dot_ref sums in double): |error| <= n * 2^-24 *
 * sum |w x| bounds them. */
static void test_reference_close_to_exact_dot(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        struct llamad_weight w = random_weight(types[ti], 33, 4096);
        float *x = random_tokens(2, w.cols);
        float *y = run(llamad_gemm_float_variant(w.type, "scalar"), &w, 0, w.rows, x, 2);
        float *row = malloc((size_t)w.cols * sizeof *row);
        assert_non_null(row);
        for (int32_t t = 0; t < 2; t++)
            for (int64_t r = 0; r < w.rows; r++) {
                llamad_dequantize_row_ref(w.type, w.data + (size_t)r * w.row_bytes, row, w.cols);
                double magnitude = 0.0;
                for (int64_t k = 0; k < w.cols; k++)
                    magnitude += fabs((double)row[k] * x[t * w.cols + k]);
                const double exact = llamad_dot_ref(w.type, w.data + (size_t)r * w.row_bytes,
                                                    x + t * w.cols, w.cols);
                assert_true(fabs(y[t * w.rows + r] - exact) <= w.cols * 0x1p-24 * magnitude);
            }
        free(row);
        free(y);
        free(x);
        free_weight(&w);
    }
}

/* The packed layout: panel p, column k, lane i holds row 32 p + i's value k, and
 * the rows past the last are zero. */
static void test_packed_layout(void **state)
{
    (void)state;
    struct llamad_weight w = random_weight(LLAMAD_TYPE_F32, 40, 3);
    const float *packed = w.packed, *data = (const float *)w.data;
    assert_int_equal(llamad_gemm_float_packed_bytes(w.type, 40, 3), 2 * 3 * 32 * sizeof(float));
    for (int64_t r = 0; r < 64; r++)
        for (int64_t k = 0; k < 3; k++) {
            const float v = packed[(r / 32) * 3 * 32 + k * 32 + r % 32];
            if (r < 40)
                assert_true(v == data[r * 3 + k]);
            else
                assert_true(v == 0.0f);
        }
    free_weight(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_kernels_equal_reference_bits),
        cmocka_unit_test(test_tokens_same_alone_or_batched),
        cmocka_unit_test(test_reference_close_to_exact_dot),
        cmocka_unit_test(test_packed_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
