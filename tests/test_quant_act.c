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

#include "llamad/quant.h"

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

static uint64_t rng = 88172645463325252ULL;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* Random weight rows and activations, including extremes, at 1..9 blocks (odd
 * counts take the kernels' tail paths). */
static void check_fast_equals_ref(uint32_t type, int block_bytes)
{
    const struct llamad_act_kernels *fast = llamad_act_kernels_for(type);
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(type);
    assert_non_null(fast);
    print_message("%s integer kernel: %s\n", type == LLAMAD_TYPE_Q8_0 ? "Q8_0" : "Q4_0", fast->isa);
    for (int nb = 1; nb <= 9; nb++) {
        for (int trial = 0; trial < 50; trial++) {
            uint8_t *w = malloc((size_t)nb * (size_t)block_bytes);
            struct llamad_q8_block *x = malloc((size_t)nb * sizeof(*x));
            float *xf = malloc((size_t)nb * 32 * sizeof(float));
            for (int i = 0; i < nb * 32; i++)
                xf[i] = trial == 0 ? (i % 2 ? 127.0f : -127.0f)
                                   : (float)((int)(next_u32() % 2001) - 1000) / 100.0f;
            llamad_quantize_q8_blocks(xf, x, nb * 32);
            for (int b = 0; b < nb; b++) {
                uint16_t d = llamad_f32_to_f16((float)(next_u32() % 1000) / 997.0f);
                memcpy(w + b * block_bytes, &d, 2);
                for (int i = 2; i < block_bytes; i++)
                    w[b * block_bytes + i] = trial == 0 ? (i % 2 ? 0x81 : 0x7F) : (uint8_t)next_u32();
            }
            float a = fast->dot(w, x, nb * 32), e = ref->dot(w, x, nb * 32);
            double mag = 0.0;
            for (int b = 0; b < nb; b++)
                mag += 32.0 * 127.0 * 127.0 * fabs((double)x[b].d);
            assert_float_equal(a, e, 1e-6 * mag + 1e-6);
            free(w);
            free(x);
            free(xf);
        }
    }
}

static void test_fast_q8_0(void **state)
{
    (void)state;
    check_fast_equals_ref(LLAMAD_TYPE_Q8_0, 34);
}

static void test_fast_q4_0(void **state)
{
    (void)state;
    check_fast_equals_ref(LLAMAD_TYPE_Q4_0, 18);
}

/* dot_multi over 1..4 activation rows gives each row's single dot. */
static void check_multi(uint32_t type, int block_bytes)
{
    const struct llamad_act_kernels *k = llamad_act_kernels_for(type);
    if (!k->dot_multi) {
        print_message("%s: no multi-token kernel on this CPU (%s)\n",
                      type == LLAMAD_TYPE_Q8_0 ? "Q8_0" : "Q4_0", k->isa);
        return;
    }
    for (int nb = 1; nb <= 7; nb += 3) {
        uint8_t *w = malloc((size_t)nb * (size_t)block_bytes);
        struct llamad_q8_block *x = malloc(4 * (size_t)nb * sizeof(*x));
        float xf[7 * 32];
        for (int b = 0; b < nb; b++) {
            uint16_t d = llamad_f32_to_f16(0.25f + (float)b);
            memcpy(w + b * block_bytes, &d, 2);
            for (int i = 2; i < block_bytes; i++)
                w[b * block_bytes + i] = (uint8_t)next_u32();
        }
        for (int t = 0; t < 4; t++) {
            for (int i = 0; i < nb * 32; i++)
                xf[i] = (float)((int)(next_u32() % 2001) - 1000) / 100.0f;
            llamad_quantize_q8_blocks(xf, x + t * nb, nb * 32);
        }
        for (int n_tok = 1; n_tok <= 4; n_tok++) {
            float out[4];
            k->dot_multi(w, x, (size_t)nb * sizeof(*x), n_tok, nb * 32, out);
            for (int t = 0; t < n_tok; t++) {
                float want = k->dot(w, x + t * nb, nb * 32);
                assert_float_equal(out[t], want, 1e-6 * fabsf(want) + 1e-6);
            }
        }
        free(w);
        free(x);
    }
}

static void test_multi_token_kernels(void **state)
{
    (void)state;
    check_multi(LLAMAD_TYPE_Q8_0, 34);
    check_multi(LLAMAD_TYPE_Q4_0, 18);
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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_by_hand),
        cmocka_unit_test(test_reference_dots_by_hand),
        cmocka_unit_test(test_fast_q8_0),
        cmocka_unit_test(test_fast_q4_0),
        cmocka_unit_test(test_multi_token_kernels),
        cmocka_unit_test(test_types_without_integer_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
