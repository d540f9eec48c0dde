/* The OpenBLAS prompt-processing product against a plain double-precision loop
 * over dequantized rows, and the cases in which it declines. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/error.h"
#include "llamad/gemm.h"
#include "llamad/quant.h"

#define MAX_COLS 96

/* A random weight of the given type, quantized from floats. */
static struct llamad_weight make_weight(uint32_t type, int64_t rows, int64_t cols, void **storage)
{
    uint64_t row_bytes;
    assert_true(llamad_type_bytes(type, (uint64_t)cols, &row_bytes));
    uint8_t *data = malloc((size_t)(row_bytes * (uint64_t)rows));
    float tmp[MAX_COLS];
    assert_non_null(data);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            tmp[c] = (float)((rand() % 2001) - 1000) / 1000.0f;
        assert_true(llamad_quantize_row_ref(type, tmp, data + r * row_bytes, cols));
    }
    *storage = data;
    return (struct llamad_weight){.type = type, .rows = rows, .cols = cols,
                                  .row_bytes = (size_t)row_bytes, .data = data,
                                  .kernels = llamad_kernels_for(type),
                                  .act = llamad_act_kernels_for(type)};
}

static float *random_floats(int64_t n)
{
    float *v = malloc((size_t)n * sizeof(float));
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)((rand() % 201) - 100) / 100.0f;
    return v;
}

/* Every y[t][r] equals the double-precision dot product of dequantized row r with
 * x[t], and the padding between token rows of y is left alone. */
static void check_against_loop(const struct llamad_weight *w, const float *x, int32_t n_tokens,
                               const float *y, int64_t y_stride, float pad)
{
    float row[MAX_COLS];
    for (int64_t r = 0; r < w->rows; r++) {
        llamad_dequantize_row_ref(w->type, w->data + r * w->row_bytes, row, w->cols);
        for (int32_t t = 0; t < n_tokens; t++) {
            double want = 0.0, mag = 0.0;
            for (int64_t c = 0; c < w->cols; c++) {
                want += (double)row[c] * x[t * w->cols + c];
                mag += fabs((double)row[c] * x[t * w->cols + c]);
            }
            assert_float_equal(y[t * y_stride + r], want, 1e-5 * mag + 1e-6);
        }
    }
    for (int32_t t = 0; t < n_tokens; t++)
        for (int64_t r = w->rows; r < y_stride; r++)
            assert_float_equal(y[t * y_stride + r], pad, 0.0);
}

static void test_matches_plain_loop(void **state)
{
    (void)state;
    const uint32_t types[] = {LLAMAD_TYPE_F32, LLAMAD_TYPE_F16, LLAMAD_TYPE_BF16,
                              LLAMAD_TYPE_Q8_0};
    const int64_t rows[] = {37, 300};
    const int32_t tokens[] = {1, 3, 33};
    const int64_t cols = 96;
    const float pad = -7.0f;
    srand(5);
    float *x = random_floats(33 * cols);
    for (int threads = 1; threads <= 3; threads++) {
        struct llamad_threadpool *pool;
        struct llamad_gemm_scratch *s;
        assert_int_equal(llamad_threadpool_create(threads, &pool, NULL, 0), LLAMAD_OK);
        assert_int_equal(llamad_gemm_scratch_create(threads, cols, 1, &s, NULL, 0), LLAMAD_OK);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
                void *storage;
                struct llamad_weight w = make_weight(types[ti], rows[ri], cols, &storage);
                for (size_t ki = 0; ki < sizeof tokens / sizeof tokens[0]; ki++)
                    for (int64_t extra = 0; extra <= 5; extra += 5) {
                        const int64_t y_stride = w.rows + extra;
                        const int64_t n = tokens[ki] * y_stride;
                        float *y = malloc((size_t)n * sizeof(float));
                        assert_non_null(y);
                        for (int64_t i = 0; i < n; i++)
                            y[i] = pad;
                        assert_true(llamad_gemm_blas(pool, s, &w, x, tokens[ki], y, y_stride));
                        check_against_loop(&w, x, tokens[ki], y, y_stride, pad);
                        free(y);
                    }
                free(storage);
            }
        llamad_gemm_scratch_free(s);
        llamad_threadpool_free(pool);
    }
    free(x);
}

/* Declined cases leave y untouched and return false for the caller to fall back. */
static void test_declines(void **state)
{
    (void)state;
    struct llamad_threadpool *pool;
    struct llamad_gemm_scratch *s, *narrow, *one_thread;
    assert_int_equal(llamad_threadpool_create(2, &pool, NULL, 0), LLAMAD_OK);
    assert_int_equal(llamad_gemm_scratch_create(2, 64, 8, &s, NULL, 0), LLAMAD_OK);
    assert_int_equal(llamad_gemm_scratch_create(2, 32, 1, &narrow, NULL, 0), LLAMAD_OK);
    assert_int_equal(llamad_gemm_scratch_create(1, 64, 1, &one_thread, NULL, 0), LLAMAD_OK);
    void *storage;
    struct llamad_weight w = make_weight(LLAMAD_TYPE_F16, 4, 64, &storage);
    float *x = random_floats(8 * 64);
    float y[8 * 4] = {0};
    assert_false(llamad_gemm_blas(pool, s, &w, x, 7, y, 4));          /* below min_tokens */
    assert_false(llamad_gemm_blas(pool, narrow, &w, x, 8, y, 4));     /* rows too wide */
    assert_false(llamad_gemm_blas(pool, one_thread, &w, x, 8, y, 4)); /* pool too big */
    struct llamad_weight opaque = w;
    opaque.kernels = NULL; /* a type llamad cannot compute */
    assert_false(llamad_gemm_blas(pool, s, &opaque, x, 8, y, 4));
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        assert_float_equal(y[i], 0.0f, 0.0);
    assert_true(llamad_gemm_blas(pool, s, &w, x, 8, y, 4));
    check_against_loop(&w, x, 8, y, 4, 0.0f);
    free(x);
    free(storage);
    llamad_gemm_scratch_free(one_thread);
    llamad_gemm_scratch_free(narrow);
    llamad_gemm_scratch_free(s);
    llamad_threadpool_free(pool);
}

static void test_scratch_rejects_bad_sizes(void **state)
{
    (void)state;
    struct llamad_gemm_scratch *s = (struct llamad_gemm_scratch *)&s;
    char err[LLAMAD_ERR_MAX] = "";
    assert_int_equal(llamad_gemm_scratch_create(0, 64, 0, &s, err, sizeof err), LLAMAD_EINVAL);
    assert_null(s);
    assert_true(strlen(err) > 0);
    assert_int_equal(llamad_gemm_scratch_create(1, 0, 0, &s, NULL, 0), LLAMAD_EINVAL);
    assert_int_equal(llamad_gemm_scratch_create(1, 64, -1, &s, NULL, 0), LLAMAD_EINVAL);
    llamad_gemm_scratch_free(NULL);
}

/* A scratch made with min_tokens 0 follows llamad_gemm_min_tokens, which every
 * kernel set gives a finite value for the float types. */
static void test_default_thresholds(void **state)
{
    (void)state;
    const uint32_t floats[] = {LLAMAD_TYPE_F32, LLAMAD_TYPE_F16, LLAMAD_TYPE_BF16};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        const int32_t min = llamad_gemm_min_tokens(floats[i]);
        assert_true(min >= 1 && min <= 512);
    }
    assert_int_equal(llamad_gemm_min_tokens(LLAMAD_TYPE_IQ2_XXS), INT32_MAX);

    struct llamad_threadpool *pool;
    struct llamad_gemm_scratch *s;
    assert_int_equal(llamad_threadpool_create(2, &pool, NULL, 0), LLAMAD_OK);
    assert_int_equal(llamad_gemm_scratch_create(2, 32, 0, &s, NULL, 0), LLAMAD_OK);
    void *storage;
    struct llamad_weight w = make_weight(LLAMAD_TYPE_BF16, 3, 32, &storage);
    const int32_t min = llamad_gemm_min_tokens(LLAMAD_TYPE_BF16);
    float *x = random_floats((int64_t)min * 32), *y = random_floats((int64_t)min * 3);
    assert_false(llamad_gemm_blas(pool, s, &w, x, min - 1, y, 3));
    assert_true(llamad_gemm_blas(pool, s, &w, x, min, y, 3));
    check_against_loop(&w, x, min, y, 3, 0.0f);
    free(x);
    free(y);
    free(storage);
    llamad_gemm_scratch_free(s);
    llamad_threadpool_free(pool);
}

static void test_core_name(void **state)
{
    (void)state;
    const char *core = llamad_blas_init();
    assert_non_null(core);
    assert_true(strlen(core) > 0);
    assert_string_equal(llamad_blas_core(), core);
    /* A better kernel set is only named when the one in use is generic. */
    const char *better = llamad_blas_better_core();
    if (better)
        assert_string_not_equal(better, core);
    if (!strcmp(core, "SkylakeX") || !strcmp(core, "Haswell"))
        assert_null(better);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_plain_loop),
        cmocka_unit_test(test_declines),
        cmocka_unit_test(test_scratch_rejects_bad_sizes),
        cmocka_unit_test(test_default_thresholds),
        cmocka_unit_test(test_core_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
