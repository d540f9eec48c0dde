/* The transformer's element-wise operations against hand-computed values, and the
 * threaded matmul against a plain loop over dequantized rows. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/kernels/ops.h"
#include "llamad/kernels/quant.h"

static void test_rmsnorm(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 0.5f, 2, -1};
    float out[4];
    llamad_rmsnorm(out, x, w, 4, 0.0f);
    const float rms = sqrtf((1 + 4 + 9 + 16) / 4.0f);
    for (int i = 0; i < 4; i++)
        assert_float_equal(out[i], x[i] / rms * w[i], 1e-6);
    /* eps is added inside the root: an all-zero row stays finite */
    const float z[4] = {0};
    llamad_rmsnorm(out, z, w, 4, 1e-5f);
    for (int i = 0; i < 4; i++)
        assert_float_equal(out[i], 0.0f, 0.0);
}

static void test_rope_rotates_adjacent_pairs(void **state)
{
    (void)state;
    /* 2 heads of 6, the first 4 rotated. */
    float v[12], orig[12];
    for (int i = 0; i < 12; i++)
        v[i] = orig[i] = (float)(i + 1);
    const int pos = 7;
    const float base = 10000.0f;
    float cs[6];
    llamad_rope_angles(cs, 4, pos, base, NULL);
    llamad_rope(v, 2, 6, 4, cs);
    for (int h = 0; h < 2; h++) {
        for (int i = 0; i < 4; i += 2) {
            double theta = pos * pow(base, -(double)i / 4);
            double x0 = orig[h * 6 + i], x1 = orig[h * 6 + i + 1];
            assert_float_equal(v[h * 6 + i], x0 * cos(theta) - x1 * sin(theta), 1e-5);
            assert_float_equal(v[h * 6 + i + 1], x0 * sin(theta) + x1 * cos(theta), 1e-5);
        }
        assert_float_equal(v[h * 6 + 4], orig[h * 6 + 4], 0.0);
        assert_float_equal(v[h * 6 + 5], orig[h * 6 + 5], 0.0);
    }
    /* position 0 is the identity */
    float u[6] = {1, 2, 3, 4, 5, 6};
    llamad_rope_angles(cs, 6, 0, base, NULL);
    llamad_rope(u, 1, 6, 6, cs);
    for (int i = 0; i < 6; i++)
        assert_float_equal(u[i], (float)(i + 1), 0.0);
}

/* LLaMA-3.1's rope scaling: each pair's angle divided by its factor (factors of
 * 1 change nothing, bit for bit). */
static void test_rope_factors_divide_each_angle(void **state)
{
    (void)state;
    const float base = 500000.0f, factors[4] = {1.0f, 2.5f, 8.0f, 1.0f};
    const float ones[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    float cs[8], plain[8], unit[8];
    llamad_rope_angles(cs, 8, 1000, base, factors);
    llamad_rope_angles(plain, 8, 1000, base, NULL);
    llamad_rope_angles(unit, 8, 1000, base, ones);
    assert_memory_equal(plain, unit, sizeof plain);
    for (int i = 0; i < 8; i += 2) {
        const double theta = 1000.0 * pow(base, -(double)i / 8) / factors[i / 2];
        assert_float_equal(cs[i], cos(theta), 2e-3);
        assert_float_equal(cs[i + 1], sin(theta), 2e-3);
    }
    /* the angle a factor of 8 gives at position 1000 is the plain one at 125 */
    float at125[8];
    llamad_rope_angles(at125, 8, 125, base, NULL);
    assert_float_equal(cs[4], at125[4], 1e-4);
    assert_float_equal(cs[5], at125[5], 1e-4);
}

static void test_softmax(void **state)
{
    (void)state;
    float x[3] = {1000.0f, 1001.0f, -INFINITY}; /* large values must not overflow */
    llamad_softmax(x, 3);
    assert_float_equal(x[0], 1.0 / (1.0 + exp(1.0)), 1e-6);
    assert_float_equal(x[1], exp(1.0) / (1.0 + exp(1.0)), 1e-6);
    assert_float_equal(x[2], 0.0f, 0.0);
}

static void test_silu_mul(void **state)
{
    (void)state;
    float g[3] = {0.0f, 2.0f, -3.0f};
    const float u[3] = {5.0f, 0.5f, 2.0f};
    llamad_silu_mul(g, u, 3);
    assert_float_equal(g[0], 0.0f, 0.0);
    assert_float_equal(g[1], 2.0 / (1.0 + exp(-2.0)) * 0.5, 1e-6);
    assert_float_equal(g[2], -3.0 / (1.0 + exp(3.0)) * 2.0, 1e-6);
}

/* The vector SiLU (where the CPU has one) against the reference on values from
 * -100 to 100, zeros, extremes and a tail that is not a whole vector: within a
 * few ulp. (Below -88 the reference's e^-x overflows and it returns 0 where the
 * true value is a tiny negative number; either passes.) */
static void test_silu_mul_matches_reference(void **state)
{
    (void)state;
    enum { N = 1000 + 7 };
    static float g[N], want[N], up[N];
    for (int i = 0; i < N; i++) {
        g[i] = (float)(i - N / 2) / 5.0f;
        up[i] = 0.25f + (float)(i % 13) / 7.0f;
    }
    g[0] = 0.0f, g[1] = -0.0f, g[2] = 88.0f, g[3] = -88.0f, g[4] = 1e30f, g[5] = -1e30f;
    g[6] = 1e-30f, g[7] = -1e-30f;
    memcpy(want, g, sizeof g);
    llamad_silu_mul_ref(want, up, N);
    llamad_silu_mul(g, up, N);
    for (int i = 0; i < N; i++) {
        const double tol = 4e-7 * fabs((double)want[i]) + 1e-30;
        if (!(fabs((double)g[i] - want[i]) <= tol))
            fail_msg("silu_mul[%d]: %g, reference %g", i, (double)g[i], (double)want[i]);
    }
}

/* A random weight of the given type, quantized from floats. */
static struct llamad_weight make_weight(uint32_t type, int64_t rows, int64_t cols, void **storage)
{
    uint64_t row_bytes;
    assert_true(llamad_type_bytes(type, (uint64_t)cols, &row_bytes));
    uint8_t *data = malloc((size_t)(row_bytes * (uint64_t)rows));
    float *tmp = malloc((size_t)cols * sizeof(float));
    assert_non_null(data);
    assert_non_null(tmp);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            tmp[c] = (float)((rand() % 2001) - 1000) / 1000.0f;
        assert_true(llamad_quantize_row_ref(type, tmp, data + r * row_bytes, cols));
    }
    free(tmp);
    *storage = data;
    struct llamad_weight w = {.type = type,
                              .rows = rows,
                              .cols = cols,
                              .row_bytes = (size_t)row_bytes,
                              .data = data,
                              .kernels = llamad_kernels_for(type),
                              .act = llamad_act_kernels_for(type)};
    return w;
}

static void test_matmul_matches_plain_loop(void **state)
{
    (void)state;
    const uint32_t types[] = {LLAMAD_TYPE_F32, LLAMAD_TYPE_F16, LLAMAD_TYPE_BF16, LLAMAD_TYPE_Q8_0,
                              LLAMAD_TYPE_Q4_0};
    srand(11);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        for (int threads = 1; threads <= 3; threads++) {
            struct llamad_threadpool *pool;
            assert_int_equal(llamad_threadpool_create(threads, &pool, NULL, 0), LLAMAD_OK);
            const int64_t cols = 64, rows_a = 37, rows_b = 5;
            const int32_t n_tokens = 5; /* a tile of 4 tokens and one more */
            void *sa, *sb;
            struct llamad_weight a = make_weight(types[ti], rows_a, cols, &sa);
            struct llamad_weight b = make_weight(types[ti], rows_b, cols, &sb);
            float x[5 * 64], ya[5 * 37], yb[5 * 5], row[64];
            for (int i = 0; i < n_tokens * cols; i++)
                x[i] = (float)((rand() % 201) - 100) / 100.0f;
            struct llamad_matmul_out outs[] = {{&a, ya}, {&b, yb}};
            /* Float activations: every output equals a plain loop over dequantized rows. */
            llamad_matmul(pool, x, n_tokens, outs, 2, NULL);
            for (int o = 0; o < 2; o++) {
                const struct llamad_weight *w = outs[o].w;
                for (int32_t t = 0; t < n_tokens; t++)
                    for (int64_t r = 0; r < w->rows; r++) {
                        llamad_dequantize_row_ref(w->type, w->data + r * w->row_bytes, row, cols);
                        double want = 0.0, mag = 0.0;
                        for (int64_t c = 0; c < cols; c++) {
                            want += (double)row[c] * x[t * cols + c];
                            mag += fabs((double)row[c] * x[t * cols + c]);
                        }
                        assert_float_equal(outs[o].y[t * w->rows + r], want, 1e-5 * mag + 1e-6);
                    }
            }
            /* Quantized activations: the integer reference on the same Q8 blocks. */
            struct llamad_q8_block xq[2];
            void *scratch = malloc(llamad_matmul_scratch_bytes(n_tokens, cols));
            llamad_matmul(pool, x, n_tokens, outs, 2, scratch);
            free(scratch);
            for (int o = 0; o < 2; o++) {
                const struct llamad_weight *w = outs[o].w;
                const struct llamad_act_kernels *ref = llamad_act_kernels_ref(w->type);
                for (int32_t t = 0; t < n_tokens; t++) {
                    llamad_quantize_q8_blocks(x + t * cols, xq, cols);
                    for (int64_t r = 0; r < w->rows; r++) {
                        const uint8_t *wr = w->data + r * w->row_bytes;
                        float want = ref ? ref->dot(wr, xq, cols)
                                         : llamad_dot_ref(w->type, wr, x + t * cols, cols);
                        assert_float_equal(outs[o].y[t * w->rows + r], want,
                                           1e-5 * fabsf(want) + 1e-4);
                    }
                }
            }
            free(sa);
            free(sb);
            llamad_threadpool_free(pool);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope_rotates_adjacent_pairs),
        cmocka_unit_test(test_rope_factors_divide_each_angle),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_silu_mul),
        cmocka_unit_test(test_silu_mul_matches_reference),
        cmocka_unit_test(test_matmul_matches_plain_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
