/* The int8 GEMM: every kernel variant this CPU runs held to the reference on
 * random blocks of every type it takes (row ranges and token counts that leave
 * partial panels and token tiles), and the threaded driver against plain dot
 * products. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gemm_testutil.h"
#include "llamad/base/error.h"
#include "llamad/kernels/cpu.h"
#include "llamad/kernels/gemm_int8.h"
#include "llamad/kernels/quant.h"
#include "testutil.h"

static const char *const variants[] = {"avx2", "avx512vnni", "amx"};
static const uint32_t types[] = {LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_Q4_0, LLAMAD_TYPE_Q4_K,
                                 LLAMAD_TYPE_Q5_K, LLAMAD_TYPE_Q6_K};

/* Activation c of token t's row, as a float. */
static double activation(const struct llamad_weight *w, const struct gemm_test_acts *a, int32_t t,
                         int64_t c)
{
    const uint8_t *row = a->x + (size_t)t * a->row_bytes;
    if (gemm_test_is_k(w->type)) {
        const struct llamad_q8k_block *x = (const struct llamad_q8k_block *)row + c / 256;
        return (double)x->d * x->qs[c % 256];
    }
    const struct llamad_q8_block *x = (const struct llamad_q8_block *)row + c / 32;
    return (double)x->d * x->qs[c % 32];
}

/* Sum over the row of |w * x|: the scale of the rounding either result may have. */
static double magnitude(const struct llamad_weight *w, int64_t r, const struct gemm_test_acts *a,
                        int32_t t)
{
    float row[512];
    assert_true(w->cols <= 512);
    llamad_dequantize_row_ref(w->type, w->data + (size_t)r * w->row_bytes, row, w->cols);
    double sum = 0.0;
    for (int64_t c = 0; c < w->cols; c++)
        sum += fabs((double)row[c] * activation(w, a, t, c));
    return sum;
}

/* Rows [r0, r1) of each variant equal the reference's, and the rest of y keeps
 * its fill. */
static void check_variant(const struct llamad_gemm_int8_kernels *k, const struct llamad_weight *w,
                          int64_t r0, int64_t r1, const struct gemm_test_acts *a, int32_t n_tokens)
{
    const struct llamad_gemm_int8_kernels *ref = llamad_gemm_int8_variant(w->type, "scalar");
    const int64_t y_stride = w->rows + 3, n = n_tokens * y_stride;
    float *want = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)n * sizeof(float));
    void *work = aligned_alloc(64, k->work_bytes(w->cols, n_tokens) + 64);
    assert_true(want && got && work);
    for (int64_t i = 0; i < n; i++)
        want[i] = got[i] = -5.0f;
    ref->rows(w, r0, r1, a->x, n_tokens, want, y_stride, NULL);
    k->rows(w, r0, r1, a->x, n_tokens, got, y_stride, work);
    for (int32_t t = 0; t < n_tokens; t++)
        for (int64_t r = 0; r < y_stride; r++) {
            const int64_t i = t * y_stride + r;
            if (r < r0 || r >= r1) {
                assert_float_equal(got[i], -5.0f, 0.0);
                continue;
            }
            const double tol = 1e-5 * magnitude(w, r, a, t) + 1e-6;
            if (fabs((double)got[i] - want[i]) > tol)
                fail_msg("%s type %u row %lld token %d: %g, reference %g", k->isa,
                         (unsigned)w->type, (long long)r, t, (double)got[i], (double)want[i]);
        }
    free(work);
    free(got);
    free(want);
}

static void test_variants_match_reference(void **state)
{
    (void)state;
    const int64_t rows[] = {1, 16, 33, 45, 70};
    const int64_t cols[] = {32, 96, 256}, k_cols[] = {256, 512};
    const int32_t tokens[] = {1, 3, 4, 6, 9, 16, 17, 35};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const struct llamad_gemm_int8_kernels *k =
                llamad_gemm_int8_variant(types[ti], variants[v]);
            if (!k) {
                print_message("no %s int8 GEMM on this CPU\n", variants[v]);
                continue;
            }
            assert_string_equal(k->isa, variants[v]);
            const int64_t *widths = gemm_test_is_k(types[ti]) ? k_cols : cols;
            const size_t n_widths = gemm_test_is_k(types[ti]) ? 2 : 3;
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                for (size_t ci = 0; ci < n_widths; ci++) {
                    struct llamad_weight w = gemm_test_weight(types[ti], rows[ri], widths[ci]);
                    struct gemm_test_acts a = gemm_test_activations(types[ti], 35, widths[ci]);
                    for (size_t ki = 0; ki < sizeof tokens / sizeof tokens[0]; ki++) {
                        check_variant(k, &w, 0, w.rows, &a, tokens[ki]);
                        /* a share of a thread: from a later panel, ending inside one */
                        if (w.rows > 33)
                            check_variant(k, &w, 32, w.rows - 1, &a, tokens[ki]);
                        if (w.rows > 1)
                            check_variant(k, &w, 0, w.rows - 1, &a, tokens[ki]);
                    }
                    free(a.x);
                    gemm_test_weight_free(&w);
                }
        }
}

/* The largest sums the kernels can meet: every value and scale at the top of
 * its range (0xFF), or the most negative Q8_0 weight and Q6_K scale (0x80),
 * times activations all 127 or all -127. A kernel that adds products in 16
 * bits past their bound (vpmaddubsw saturates) gives sums far off. */
static void test_extremes_do_not_saturate(void **state)
{
    (void)state;
    const uint8_t fills[] = {0xFF, 0x80, 0x77};
    const int8_t values[] = {127, -127};
    const int32_t tokens[] = {1, 2, 8, 17};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const struct llamad_gemm_int8_kernels *k =
                llamad_gemm_int8_variant(types[ti], variants[v]);
            if (!k)
                continue;
            const int64_t cols = gemm_test_is_k(types[ti]) ? 512 : 256;
            for (size_t fi = 0; fi < sizeof fills / sizeof fills[0]; fi++)
                for (size_t vi = 0; vi < sizeof values / sizeof values[0]; vi++) {
                    struct llamad_weight w =
                        gemm_test_weight_filled(types[ti], 45, cols, fills[fi]);
                    struct gemm_test_acts a =
                        gemm_test_activations_filled(types[ti], 17, cols, values[vi]);
                    for (size_t ki = 0; ki < sizeof tokens / sizeof tokens[0]; ki++)
                        check_variant(k, &w, 0, w.rows, &a, tokens[ki]);
                    free(a.x);
                    gemm_test_weight_free(&w);
                }
        }
}

/* Each token's outputs are the same bits whatever else is in its batch, and
 * whichever variant the batch's size chose (a lone token takes the one chosen
 * for one token: VNNI, or AVX2 without it, so on a VNNI CPU the AVX2 kernels
 * are held to the VNNI kernels' bits): greedy decoding must not change with
 * the server's load. */
static void test_tokens_same_alone_or_batched(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const struct llamad_gemm_int8_kernels *lone = llamad_gemm_int8_for(types[ti], 1);
        if (!strcmp(lone->isa, "scalar"))
            continue;
        struct llamad_weight w = gemm_test_weight(types[ti], 45, 256);
        struct gemm_test_acts a = gemm_test_activations(types[ti], 20, 256);
        float alone[20][45], batch[20 * 45];
        void *lone_work = aligned_alloc(64, lone->work_bytes(w.cols, 1) + 64);
        assert_non_null(lone_work);
        for (int32_t t = 0; t < 20; t++)
            lone->rows(&w, 0, w.rows, a.x + t * a.row_bytes, 1, alone[t], w.rows, lone_work);
        free(lone_work);
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
            const struct llamad_gemm_int8_kernels *k =
                llamad_gemm_int8_variant(types[ti], variants[v]);
            if (!k)
                continue;
            void *work = aligned_alloc(64, k->work_bytes(w.cols, 20) + 64);
            assert_non_null(work);
            for (int32_t n = 1; n <= 20; n++) {
                k->rows(&w, 0, w.rows, a.x, n, batch, w.rows, work);
                for (int32_t t = 0; t < n; t++)
                    if (memcmp(alone[t], batch + t * w.rows, sizeof alone[t]) != 0)
                        fail_msg("%s: token %d of %d differs from the token alone", k->isa, t, n);
            }
            free(work);
        }
        free(a.x);
        gemm_test_weight_free(&w);
    }
}

/* The choice for this CPU is one of the variants, the reference only when none
 * runs: AMX for a long batch where the CPU has it (Q8_0 and Q4_0), VNNI for a
 * short one, AVX2 (every type) without VNNI; other types have none. */
static void test_choice(void **state)
{
    (void)state;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const struct llamad_gemm_int8_kernels *vnni =
            llamad_gemm_int8_variant(types[ti], "avx512vnni");
        const struct llamad_gemm_int8_kernels *amx = llamad_gemm_int8_variant(types[ti], "amx");
        const struct llamad_gemm_int8_kernels *avx2 = llamad_gemm_int8_variant(types[ti], "avx2");
        const char *short_batch = vnni ? "avx512vnni" : avx2 ? "avx2" : "scalar";
        const struct llamad_gemm_int8_kernels *k = llamad_gemm_int8_for(types[ti], 2);
        assert_non_null(k);
        assert_string_equal(k->isa, short_batch);
        k = llamad_gemm_int8_for(types[ti], 512);
        assert_string_equal(k->isa, amx ? "amx" : short_batch);
        assert_int_equal(llamad_gemm_int8_min_tokens(types[ti]) == INT32_MAX, !vnni && !avx2);
        assert_int_equal(avx2 != NULL, llamad_cpu_runs(LLAMAD_CPU_AVX2));
    }
    assert_null(llamad_gemm_int8_for(LLAMAD_TYPE_F16, 512));
    assert_null(llamad_gemm_int8_for(LLAMAD_TYPE_Q2_K, 512));
    assert_null(llamad_gemm_int8_variant(LLAMAD_TYPE_Q4_K, "amx"));
    assert_null(llamad_gemm_int8_variant(LLAMAD_TYPE_Q8_0, "sse9"));
    assert_int_equal(llamad_gemm_int8_min_tokens(LLAMAD_TYPE_BF16), INT32_MAX);
}

static float *random_floats(int64_t n)
{
    float *v = malloc((size_t)n * sizeof(float));
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = ((float)(test_rand_u32() % 2001) - 1000.0f) / 1000.0f;
    return v;
}

/* The driver: x quantized as llamad_matmul does, each output the reference dot
 * products, whatever the pool's size; two weights of types a and b that take
 * the same activations. */
static void check_driver(uint32_t type_a, uint32_t type_b, int64_t cols)
{
    const int32_t n_tokens = 37; /* two whole AMX tiles and a partial one */
    struct llamad_weight a = gemm_test_weight(type_a, 77, cols);
    struct llamad_weight b = gemm_test_weight(type_b, 40, cols);
    float *x = random_floats(n_tokens * cols);
    float *ya = malloc((size_t)(n_tokens * a.rows) * sizeof(float));
    float *yb = malloc((size_t)(n_tokens * b.rows) * sizeof(float));
    const enum llamad_act_format f = gemm_test_format(type_a);
    struct gemm_test_acts xq = {NULL, llamad_act_row_bytes(f, cols)};
    xq.x = malloc((size_t)n_tokens * xq.row_bytes);
    assert_true(ya && yb && xq.x);
    for (int32_t t = 0; t < n_tokens; t++)
        llamad_quantize_act(f, x + t * cols, xq.x + (size_t)t * xq.row_bytes, cols);
    const struct llamad_matmul_out outs[] = {{&a, ya}, {&b, yb}};
    for (int threads = 1; threads <= 3; threads++) {
        struct llamad_threadpool *pool;
        struct llamad_gemm_int8_scratch *s;
        assert_int_equal(llamad_threadpool_create(threads, &pool, NULL, 0), LLAMAD_OK);
        assert_int_equal(llamad_gemm_int8_scratch_create(threads, n_tokens, cols, 1, &s, NULL, 0),
                         LLAMAD_OK);
        assert_true(llamad_gemm_int8(pool, s, x, n_tokens, outs, 2));
        for (int o = 0; o < 2; o++) {
            const struct llamad_weight *w = outs[o].w;
            const struct llamad_act_kernels *ref = llamad_act_kernels_ref(w->type);
            for (int32_t t = 0; t < n_tokens; t++)
                for (int64_t r = 0; r < w->rows; r++) {
                    float want = ref->dot(w->data + (size_t)r * w->row_bytes,
                                          xq.x + (size_t)t * xq.row_bytes, cols);
                    assert_float_equal(outs[o].y[t * w->rows + r], want,
                                       1e-5 * magnitude(w, r, &xq, t) + 1e-6);
                }
        }
        llamad_gemm_int8_scratch_free(s);
        llamad_threadpool_free(pool);
    }
    free(xq.x);
    free(yb);
    free(ya);
    free(x);
    gemm_test_weight_free(&b);
    gemm_test_weight_free(&a);
}

static void test_driver_matches_dots(void **state)
{
    (void)state;
    check_driver(LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_Q4_0, 96);
    check_driver(LLAMAD_TYPE_Q4_K, LLAMAD_TYPE_Q6_K, 512);
    check_driver(LLAMAD_TYPE_Q5_K, LLAMAD_TYPE_Q6_K, 256);
}

/* Declined cases compute nothing and return false for the caller to fall back. */
static void test_declines(void **state)
{
    (void)state;
    struct llamad_threadpool *pool;
    struct llamad_gemm_int8_scratch *s;
    assert_int_equal(llamad_threadpool_create(2, &pool, NULL, 0), LLAMAD_OK);
    assert_int_equal(llamad_gemm_int8_scratch_create(2, 8, 64, 4, &s, NULL, 0), LLAMAD_OK);
    struct llamad_weight w = gemm_test_weight(LLAMAD_TYPE_Q8_0, 5, 64);
    struct llamad_weight wide = gemm_test_weight(LLAMAD_TYPE_Q8_0, 5, 96);
    struct llamad_weight narrow = gemm_test_weight(LLAMAD_TYPE_Q4_0, 5, 32);
    struct llamad_weight q4_0 = gemm_test_weight(LLAMAD_TYPE_Q4_0, 5, 256);
    struct llamad_weight q4_k = gemm_test_weight(LLAMAD_TYPE_Q4_K, 5, 256);
    struct llamad_weight f16 = w, unpacked = w;
    f16.type = LLAMAD_TYPE_F16;
    unpacked.packed = NULL;
    float *x = random_floats(9 * 256), y[9 * 5], y2[9 * 5];
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        y[i] = y2[i] = 0.0f;
    const struct llamad_matmul_out one[] = {{&w, y}}, too_wide[] = {{&wide, y}},
                                   mixed[] = {{&w, y}, {&narrow, y2}}, float_w[] = {{&f16, y}},
                                   not_packed[] = {{&unpacked, y}},
                                   two_formats[] = {{&q4_0, y}, {&q4_k, y2}};
    struct llamad_matmul_out many[LLAMAD_GEMM_INT8_MAX_OUTS + 1];
    for (int o = 0; o <= LLAMAD_GEMM_INT8_MAX_OUTS; o++)
        many[o] = one[0];
    assert_false(llamad_gemm_int8(pool, s, x, 3, one, 1));      /* below min_tokens */
    assert_false(llamad_gemm_int8(pool, s, x, 9, one, 1));      /* more than max_tokens */
    assert_false(llamad_gemm_int8(pool, s, x, 4, too_wide, 1)); /* wider than max_cols */
    assert_false(llamad_gemm_int8(pool, s, x, 4, mixed, 2));    /* inputs of two widths */
    assert_false(llamad_gemm_int8(pool, s, x, 4, float_w, 1));  /* no int8 kernels */
    assert_false(llamad_gemm_int8(pool, s, x, 4, many, LLAMAD_GEMM_INT8_MAX_OUTS + 1));
    if (llamad_gemm_int8_packs(LLAMAD_TYPE_Q8_0)) /* fast kernels need the copy */
        assert_false(llamad_gemm_int8(pool, s, x, 4, not_packed, 1));
    struct llamad_threadpool *big;
    assert_int_equal(llamad_threadpool_create(3, &big, NULL, 0), LLAMAD_OK);
    assert_false(llamad_gemm_int8(big, s, x, 4, one, 1)); /* pool too big */
    struct llamad_gemm_int8_scratch *wide_s;
    assert_int_equal(llamad_gemm_int8_scratch_create(2, 8, 256, 4, &wide_s, NULL, 0), LLAMAD_OK);
    assert_false(llamad_gemm_int8(pool, wide_s, x, 4, two_formats, 2)); /* Q8 and Q8_K inputs */
    llamad_gemm_int8_scratch_free(wide_s);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        assert_true(y[i] == 0.0f && y2[i] == 0.0f);
    assert_true(llamad_gemm_int8(pool, s, x, 4, one, 1));
    llamad_threadpool_free(big);
    free(x);
    gemm_test_weight_free(&q4_k);
    gemm_test_weight_free(&q4_0);
    gemm_test_weight_free(&narrow);
    gemm_test_weight_free(&wide);
    gemm_test_weight_free(&w);
    llamad_gemm_int8_scratch_free(s);
    llamad_threadpool_free(pool);
}

static void test_scratch_rejects_bad_sizes(void **state)
{
    (void)state;
    struct llamad_gemm_int8_scratch *s = (struct llamad_gemm_int8_scratch *)&s;
    char err[LLAMAD_ERR_MAX] = "";
    assert_int_equal(llamad_gemm_int8_scratch_create(0, 8, 64, 0, &s, err, sizeof err),
                     LLAMAD_EINVAL);
    assert_null(s);
    assert_true(strlen(err) > 0);
    assert_int_equal(llamad_gemm_int8_scratch_create(1, 0, 64, 0, &s, NULL, 0), LLAMAD_EINVAL);
    assert_int_equal(llamad_gemm_int8_scratch_create(1, 8, 0, 0, &s, NULL, 0), LLAMAD_EINVAL);
    assert_int_equal(llamad_gemm_int8_scratch_create(1, 8, 64, -1, &s, NULL, 0), LLAMAD_EINVAL);
    llamad_gemm_int8_scratch_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants_match_reference),
        cmocka_unit_test(test_extremes_do_not_saturate),
        cmocka_unit_test(test_tokens_same_alone_or_batched),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_driver_matches_dots),
        cmocka_unit_test(test_declines),
        cmocka_unit_test(test_scratch_rejects_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
