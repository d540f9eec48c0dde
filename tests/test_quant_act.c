/* Quantized activations: the Q8 quantizer by hand, and every integer kernel held
 * to the plain reference. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/kernels/quant.h"
#include "testutil.h"

static void test_quantize_by_hand(void **state)
{
    (void)state;
    float x[32] = {0};
    x[0] = 1.27f;
    x[1] = -0.635f;
    x[2] = 0.005f;  /* 0.5 of a step: rounds away from zero */
    x[3] = -0.004f; /* 0.4 of a step */
    struct llamad_q8_block b;
    llamad_quantize_q8_blocks(x, &b, 32);
    assert_float_equal(b.d, llamad_f16_to_f32(llamad_f32_to_f16(0.01f)), 0.0);
    assert_int_equal(b.qs[0], 127);
    assert_int_equal(b.qs[1], -64); /* -63.5 away from zero */
    assert_int_equal(b.qs[2], 1);
    assert_int_equal(b.qs[3], 0);
    assert_int_equal(b.sum, 127 - 64 + 1);

    float zero[32] = {0};
    llamad_quantize_q8_blocks(zero, &b, 32);
    assert_float_equal(b.d, 0.0f, 0.0);
    assert_int_equal(b.sum, 0);
}

/* A Q8_0 and a Q4_0 block whose dot products are easy to work out. */
static void test_reference_dots_by_hand(void **state)
{
    (void)state;
    struct llamad_q8_block x = {.d = 0.5f};
    for (int i = 0; i < 32; i++) {
        x.qs[i] = (int8_t)(i % 3 - 1); /* -1, 0, 1, -1, ... */
        x.sum += x.qs[i];
    }
    uint8_t q8[34];
    uint16_t two = llamad_f32_to_f16(2.0f);
    memcpy(q8, &two, 2);
    for (int i = 0; i < 32; i++)
        q8[2 + i] = (uint8_t)(int8_t)(i - 16);
    long want = 0;
    for (int i = 0; i < 32; i++)
        want += (long)(i - 16) * x.qs[i];
    assert_float_equal(llamad_act_kernels_ref(LLAMAD_TYPE_Q8_0)->dot(q8, &x, 32), 2.0 * 0.5 * want,
                       0.0);

    uint8_t q4[18];
    memcpy(q4, &two, 2);
    for (int i = 0; i < 16; i++)
        q4[2 + i] = (uint8_t)(i | (15 - i) << 4); /* low nibble i, high 15 - i */
    want = 0;
    for (int i = 0; i < 16; i++)
        want += (long)(i - 8) * x.qs[i] + (long)(15 - i - 8) * x.qs[16 + i];
    assert_float_equal(llamad_act_kernels_ref(LLAMAD_TYPE_Q4_0)->dot(q4, &x, 32), 2.0 * 0.5 * want,
                       0.0);
}

static const char *const isas[] = {"scalar", "avx2", "avx512vnni"};

static const char *type_name(uint32_t type)
{
    return type == LLAMAD_TYPE_Q8_0 ? "Q8_0" : "Q4_0";
}

/* nb random blocks, their scales in [0, 1]; trial 0 takes the extreme quants. */
static void random_weights(uint8_t *w, int nb, int block_bytes, int trial)
{
    for (int b = 0; b < nb; b++) {
        uint16_t d = llamad_f32_to_f16((float)(test_rand_u32() % 1000) / 997.0f);
        memcpy(w + b * block_bytes, &d, 2);
        for (int i = 2; i < block_bytes; i++)
            w[b * block_bytes + i] = trial == 0 ? (i % 2 ? 0x81 : 0x7F) : (uint8_t)test_rand_u32();
    }
}

/* n values quantized; trial 0 takes the extremes. */
static void random_act(struct llamad_q8_block *x, int64_t n, int trial)
{
    float *f = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        f[i] = trial == 0 ? (i % 2 ? 127.0f : -127.0f)
                          : (float)((int)(test_rand_u32() % 2001) - 1000) / 100.0f;
    llamad_quantize_q8_blocks(f, x, n);
    free(f);
}

/* The scale of the rounding a float sum of the products may differ by. */
static double magnitude(const struct llamad_q8_block *x, int nb)
{
    double mag = 0.0;
    for (int b = 0; b < nb; b++)
        mag += 32.0 * 127.0 * 127.0 * fabs((double)x[b].d);
    return 1e-6 * mag + 1e-6;
}

/* Every variant's dot against the reference at 1..9 blocks (odd counts take the
 * kernels' tail paths). */
static void check_dot(uint32_t type, int block_bytes, const char *isa)
{
    const struct llamad_act_kernels *fast = llamad_act_kernels_variant(type, isa);
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(type);
    if (!fast) {
        print_message("%s: no %s kernel on this CPU\n", type_name(type), isa);
        return;
    }
    assert_string_equal(fast->isa, isa);
    for (int nb = 1; nb <= 9; nb++) {
        for (int trial = 0; trial < 50; trial++) {
            uint8_t *w = malloc((size_t)nb * (size_t)block_bytes);
            struct llamad_q8_block *x = malloc((size_t)nb * sizeof(*x));
            random_act(x, nb * 32, trial);
            random_weights(w, nb, block_bytes, trial);
            float a = fast->dot(w, x, nb * 32), e = ref->dot(w, x, nb * 32);
            assert_float_equal(a, e, magnitude(x, nb));
            free(w);
            free(x);
        }
    }
}

static void test_fast_q8_0(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        check_dot(LLAMAD_TYPE_Q8_0, 34, isas[i]);
}

static void test_fast_q4_0(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        check_dot(LLAMAD_TYPE_Q4_0, 18, isas[i]);
}

/* A variant's matmul over 1..9 rows by 1..9 tokens of 1..5 blocks (covering
 * partial tiles and an odd last block) gives the reference dot of each row and
 * token, written at its place of a wider output. */
static void check_matmul(uint32_t type, int block_bytes, const char *isa)
{
    const struct llamad_act_kernels *k = llamad_act_kernels_variant(type, isa);
    if (!k || !k->matmul) {
        print_message("%s: no %s matmul kernel\n", type_name(type), isa);
        return;
    }
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(type);
    enum { MAX_ROWS = 9, MAX_TOK = 9, MAX_NB = 5, Y_STRIDE = MAX_ROWS + 2 };
    uint8_t *w = malloc((size_t)MAX_ROWS * MAX_NB * (size_t)block_bytes);
    struct llamad_q8_block *x = malloc((size_t)MAX_TOK * MAX_NB * sizeof(*x));
    float y[MAX_TOK * Y_STRIDE];
    for (int nb = 1; nb <= MAX_NB; nb++) {
        size_t row_bytes = (size_t)nb * (size_t)block_bytes;
        for (int trial = 0; trial < 3; trial++) {
            random_weights(w, nb * MAX_ROWS, block_bytes, trial);
            random_act(x, (int64_t)nb * 32 * MAX_TOK, trial);
            for (int rows = 1; rows <= MAX_ROWS; rows++) {
                for (int n_tok = 1; n_tok <= MAX_TOK; n_tok++) {
                    for (int i = 0; i < MAX_TOK * Y_STRIDE; i++)
                        y[i] = -1.0f;
                    k->matmul(w, row_bytes, rows, x, (size_t)nb * sizeof(*x), n_tok, nb * 32, y,
                              Y_STRIDE);
                    for (int t = 0; t < MAX_TOK; t++)
                        for (int r = 0; r < Y_STRIDE; r++) {
                            float got = y[t * Y_STRIDE + r];
                            if (t >= n_tok || r >= rows) {
                                assert_true(got == -1.0f); /* nothing written outside */
                                continue;
                            }
                            const struct llamad_q8_block *xt = x + t * nb;
                            float want = ref->dot(w + r * row_bytes, xt, nb * 32);
                            assert_float_equal(got, want, magnitude(xt, nb));
                        }
                }
            }
        }
    }
    free(w);
    free(x);
}

static void test_matmul_kernels(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        check_matmul(LLAMAD_TYPE_Q8_0, 34, isas[i]);
        check_matmul(LLAMAD_TYPE_Q4_0, 18, isas[i]);
    }
}

static void test_types_without_integer_kernels(void **state)
{
    (void)state;
    assert_null(llamad_act_kernels_for(LLAMAD_TYPE_F32));
    assert_null(llamad_act_kernels_for(LLAMAD_TYPE_F16));
    assert_null(llamad_act_kernels_ref(LLAMAD_TYPE_BF16));
    assert_null(llamad_act_kernels_for(999));
}

int main(void)
{
    test_rand_seed(88172645463325252ULL); /* the state these tests' data were drawn from */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_by_hand),
        cmocka_unit_test(test_reference_dots_by_hand),
        cmocka_unit_test(test_fast_q8_0),
        cmocka_unit_test(test_fast_q4_0),
        cmocka_unit_test(test_matmul_kernels),
        cmocka_unit_test(test_types_without_integer_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
