/* The attention kernels: every variant this CPU runs against the reference, for
 * cache rows of floats and of halves, at head widths and row counts that leave
 * partial vectors and partial groups, for every number of queries at once. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/format/types.h"
#include "llamad/kernels/attention.h"
#include "llamad/kernels/quant.h"

static const char *const variants[] = {"avx512", "avx2"};

static float *random_floats(size_t n)
{
    float *v = malloc(n * sizeof(float));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    return v;
}

static void check_close(const float *got, const float *want, int32_t n, double tol)
{
    for (int32_t i = 0; i < n; i++)
        if (fabs((double)got[i] - want[i]) > tol)
            fail_msg("value %d: %g, reference %g", i, (double)got[i], (double)want[i]);
}

/* Cache values of `type` from n floats: the floats themselves, halves in a new
 * buffer (*owned) or Q8_0 blocks in one. */
static void *as_cache(uint32_t type, float *floats, int64_t n, void **owned)
{
    *owned = NULL;
    if (type == LLAMAD_TYPE_F16) {
        *owned = malloc((size_t)n * sizeof(uint16_t));
        assert_non_null(*owned);
        llamad_f32_to_f16_row(floats, *owned, n);
    } else if (type == LLAMAD_TYPE_Q8_0) {
        *owned = malloc((size_t)n / 32 * 34);
        assert_non_null(*owned);
        llamad_quantize_q8_0_row(floats, *owned, n);
    }
    return *owned ? *owned : floats;
}

/* n_q query heads of hd values against `rows` cache rows stride apart; queries,
 * score rows and outputs each their own distance apart. F32 and F16 keys are laid
 * out by dimension, each dimension's `rows` values k_stride apart. (Q8_0 rows: hd
 * and the stride whole blocks of 32; keys by row like the values.) */
static void check_variant(const struct llamad_attention_kernels *k, int32_t hd, int32_t rows,
                          int n_q)
{
    const struct llamad_attention_kernels *ref = llamad_attention_variant("scalar", k->kv_type);
    const bool q8 = k->kv_type == LLAMAD_TYPE_Q8_0;
    const int64_t stride = q8 ? hd + 32 : hd + 7, q_stride = hd + 3, s_stride = rows + 2,
                  o_stride = hd + 1, k_stride = q8 ? stride : rows + 5;
    const int64_t n_keys = q8 ? rows * stride : hd * k_stride;
    float *q = random_floats((size_t)(n_q * q_stride)),
          *floats = random_floats((size_t)(rows * stride));
    float *key_floats = random_floats((size_t)n_keys);
    void *converted, *converted_keys;
    void *cache = as_cache(k->kv_type, floats, rows * stride, &converted);
    void *keys = as_cache(k->kv_type, key_floats, n_keys, &converted_keys);
    float *weights = random_floats((size_t)(n_q * s_stride));
    float *start = random_floats((size_t)(n_q * o_stride));
    float want[LLAMAD_ATTENTION_QUERIES * 300], got[LLAMAD_ATTENTION_QUERIES * 300];
    /* every term is at most 1 in size: the rounding is a few ulps of hd or rows */
    for (int64_t i = 0; i < n_q * s_stride; i++)
        want[i] = got[i] = 42.0f;
    ref->scores(q, q_stride, n_q, keys, k_stride, rows, hd, 0.125f, want, s_stride);
    k->scores(q, q_stride, n_q, keys, k_stride, rows, hd, 0.125f, got, s_stride);
    check_close(got, want, (int32_t)(n_q * s_stride), 1e-6 * hd); /* gaps left alone */
    memcpy(want, start, (size_t)(n_q * o_stride) * sizeof(float));
    memcpy(got, start, (size_t)(n_q * o_stride) * sizeof(float));
    ref->weighted_sum(weights, s_stride, n_q, cache, stride, rows, hd, want, o_stride);
    k->weighted_sum(weights, s_stride, n_q, cache, stride, rows, hd, got, o_stride);
    check_close(got, want, (int32_t)(n_q * o_stride), 1e-6 * rows);
    /* softmax of scores spread over a wide range: relative error of a few ulps (the
     * worst over 200,000 random rows of up to 256 was 4.7e-7, 4 ulps) */
    for (int32_t i = 0; i < hd; i++)
        want[i] = got[i] = 30.0f * q[i] + (i % 3 == 0 ? -60.0f : 0.0f);
    ref->softmax(want, hd);
    k->softmax(got, hd);
    for (int32_t i = 0; i < hd; i++)
        if (fabs((double)got[i] - want[i]) > 6e-7 * want[i] + 1e-30)
            fail_msg("softmax of %d: value %d is %.9g, reference %.9g", hd, i, (double)got[i],
                     (double)want[i]);
    free(start);
    free(weights);
    free(converted_keys);
    free(key_floats);
    free(converted);
    free(floats);
    free(q);
}

static void test_variants_match_reference(void **state)
{
    (void)state;
    /* 45 and 12: a partial vector after a whole one, of values and of keys in
     * AVX2's vectors of 8 */
    const int32_t widths[] = {1, 5, 16, 45, 64, 80, 128, 200};
    const int32_t rows[] = {1, 3, 4, 7, 12, 16, 17};
    const uint32_t types[] = {LLAMAD_TYPE_F32, LLAMAD_TYPE_F16};
    srand(3);
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
        for (size_t t = 0; t < 2; t++) {
            const struct llamad_attention_kernels *k =
                llamad_attention_variant(variants[v], types[t]);
            if (!k) {
                print_message("no %s attention kernels on this CPU\n", variants[v]);
                continue;
            }
            assert_string_equal(k->isa, variants[v]);
            assert_int_equal(k->kv_type, types[t]);
            for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
                for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
                    for (int n_q = 1; n_q <= LLAMAD_ATTENTION_QUERIES; n_q++)
                        check_variant(k, widths[w], rows[r], n_q);
        }
    const int32_t block_widths[] = {32, 64, 128, 256};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const struct llamad_attention_kernels *k =
            llamad_attention_variant(variants[v], LLAMAD_TYPE_Q8_0);
        if (!k)
            continue;
        assert_int_equal(k->kv_type, LLAMAD_TYPE_Q8_0);
        for (size_t w = 0; w < sizeof block_widths / sizeof block_widths[0]; w++)
            for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
                for (int n_q = 1; n_q <= LLAMAD_ATTENTION_QUERIES; n_q++)
                    check_variant(k, block_widths[w], rows[r], n_q);
    }
}

/* The Q8_0 reference reads each value as its block's scale times its byte. */
static void test_q8_0_rows_are_scale_times_byte(void **state)
{
    (void)state;
    const struct llamad_attention_kernels *ref =
        llamad_attention_variant("scalar", LLAMAD_TYPE_Q8_0);
    float values[64], row[64];
    for (int i = 0; i < 64; i++)
        values[i] = i < 32 ? (float)(i - 16) / 16.0f : (float)(i % 5) * 100.0f;
    uint8_t blocks[2 * 34];
    llamad_quantize_q8_0_row(values, blocks, 64);
    float one = 1.0f, out[64] = {0};
    ref->weighted_sum(&one, 1, 1, blocks, 64, 1, 64, out, 64);
    llamad_dequantize_row_ref(LLAMAD_TYPE_Q8_0, blocks, row, 64);
    assert_memory_equal(out, row, sizeof row);
    for (int i = 0; i < 64; i++) /* within half a step of the block's scale */
        assert_float_equal(out[i], values[i], i < 32 ? 1.0 / 127 : 400.0 / 127);
}

/* Softmax of rows that end where their buffer ends reads and writes nothing past
 * them (the address sanitizer build holds it to that). */
static void test_softmax_stays_in_its_row(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        const struct llamad_attention_kernels *k =
            llamad_attention_variant(variants[v], LLAMAD_TYPE_F32);
        if (!k)
            continue;
        for (int32_t n = 1; n <= 40; n++) {
            float *x = malloc((size_t)n * sizeof *x);
            assert_non_null(x);
            for (int32_t i = 0; i < n; i++)
                x[i] = (float)(i % 7);
            k->softmax(x, n);
            double sum = 0.0;
            for (int32_t i = 0; i < n; i++)
                sum += x[i];
            assert_float_equal(sum, 1.0, 1e-5);
            free(x);
        }
    }
}

static void test_choice(void **state)
{
    (void)state;
    const uint32_t types[] = {LLAMAD_TYPE_F32, LLAMAD_TYPE_F16, LLAMAD_TYPE_Q8_0};
    for (size_t t = 0; t < 3; t++) {
        const struct llamad_attention_kernels *k = llamad_attention_kernels(types[t]);
        assert_non_null(k);
        assert_int_equal(k->kv_type, types[t]);
        /* the widest set this CPU runs (under LLAMAD_CPU's cap) */
        const char *want = llamad_attention_variant("avx512", types[t]) ? "avx512"
                           : llamad_attention_variant("avx2", types[t]) ? "avx2"
                                                                        : "scalar";
        assert_string_equal(k->isa, want);
        assert_null(llamad_attention_variant("sse9", types[t]));
    }
    assert_null(llamad_attention_kernels(LLAMAD_TYPE_Q4_0));
    assert_null(llamad_attention_variant("scalar", LLAMAD_TYPE_BF16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants_match_reference),
        cmocka_unit_test(test_q8_0_rows_are_scale_times_byte),
        cmocka_unit_test(test_softmax_stays_in_its_row),
        cmocka_unit_test(test_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
