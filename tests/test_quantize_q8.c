/* The fast Q8 activation quantizers equal the reference bit for bit, halfway
 * cases, all-zero blocks and tiny scales included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/kernels/quant_internal.h" /* the quantizers of each instruction set */
#include "llamad/format/types.h"
#include "llamad/kernels/quant.h"

enum { BLOCKS = 64, N = BLOCKS * LLAMAD_Q8_BLOCK };

/* Blocks of random values at scales from 1e-30 to 1e3, one all zero, one of
 * halfway values (127 makes the multiplier exactly 1). */
static void fill(float *x)
{
    for (int i = 0; i < N; i++) {
        const int block = i / LLAMAD_Q8_BLOCK;
        static const float scales[] = {1e-30f, 1e-6f, 0.01f, 1.0f, 1e3f};
        x[i] = (float)(rand() % 20001 - 10000) / 10000.0f * scales[block % 5];
    }
    memset(x, 0, LLAMAD_Q8_BLOCK * sizeof(float));
    float *half = x + LLAMAD_Q8_BLOCK;
    for (int i = 0; i < LLAMAD_Q8_BLOCK; i++)
        half[i] = (float)(i - 16) + (i % 2 ? 0.5f : -0.5f);
    half[0] = 127.0f;
}

static void check_equal(llamad_quantize_q8_fn fast)
{
    float x[N];
    struct llamad_q8_block want[BLOCKS], got[BLOCKS];
    srand(11);
    for (int round = 0; round < 20; round++) {
        fill(x);
        llamad_quantize_q8_blocks(x, want, N);
        fast(x, got, N);
        for (int b = 0; b < BLOCKS; b++) {
            assert_memory_equal(got[b].qs, want[b].qs, LLAMAD_Q8_BLOCK);
            assert_int_equal(got[b].sum, want[b].sum);
            assert_memory_equal(&got[b].d, &want[b].d, sizeof(float));
        }
    }
}

static void test_avx512_matches_reference(void **state)
{
    (void)state;
    llamad_quantize_q8_fn fast = llamad_quantize_q8_avx512();
    if (!fast) {
        print_message("no AVX-512 quantizer on this CPU\n");
        return;
    }
    check_equal(fast);
}

static void test_avx2_matches_reference(void **state)
{
    (void)state;
    llamad_quantize_q8_fn fast = llamad_quantize_q8_avx2();
    if (!fast) {
        print_message("no AVX2 quantizer on this CPU\n");
        return;
    }
    check_equal(fast);
}

static void test_choice_matches_reference(void **state)
{
    (void)state;
    llamad_quantize_q8_fn chosen = llamad_quantize_q8_fast();
    assert_non_null(chosen);
    check_equal(chosen);
}

/* The Q8_K quantizer of the K-quants' activations: 256-value blocks at scales from
 * 1e-30 to 1e3, one all zero, one whose largest magnitude comes twice with both
 * signs (the first wins), one of values at halfway points after scaling, and
 * non-finite values. */
static void check_q8k_equal(llamad_quantize_q8k_fn fast)
{
    enum { KBLOCKS = 12, KN = KBLOCKS * LLAMAD_Q8K_BLOCK };
    static float x[KN];
    static struct llamad_q8k_block want[KBLOCKS], got[KBLOCKS];
    srand(13);
    for (int round = 0; round < 20; round++) {
        static const float scales[] = {1e-30f, 1e-6f, 0.01f, 1.0f, 1e3f};
        for (int i = 0; i < KN; i++)
            x[i] = (float)(rand() % 20001 - 10000) / 10000.0f *
                   scales[(i / LLAMAD_Q8K_BLOCK + round) % 5];
        memset(x, 0, LLAMAD_Q8K_BLOCK * sizeof(float));
        float *twice = x + LLAMAD_Q8K_BLOCK, *half = x + 2 * LLAMAD_Q8K_BLOCK;
        twice[7] = 2.0f;
        twice[100] = -2.0f;
        for (int i = 0; i < LLAMAD_Q8K_BLOCK; i++)
            half[i] = (float)(i % 254 - 127) + 0.5f * (float)(i % 2);
        half[3] = -127.0f; /* iscale 1: the others stay halfway */
        x[3 * LLAMAD_Q8K_BLOCK + 5] = (round % 3 == 0) ? __builtin_nanf("") : __builtin_inff();
        llamad_quantize_q8k_blocks(x, want, KN);
        fast(x, got, KN);
        for (int b = 0; b < KBLOCKS; b++) {
            assert_memory_equal(got[b].qs, want[b].qs, LLAMAD_Q8K_BLOCK);
            assert_memory_equal(got[b].bsums, want[b].bsums, sizeof want[b].bsums);
            assert_memory_equal(&got[b].d, &want[b].d, sizeof(float));
        }
    }
}

static void test_q8k_avx512_matches_reference(void **state)
{
    (void)state;
    const llamad_quantize_q8k_fn fast = llamad_quantize_q8k_avx512();
    if (!fast) {
        print_message("no AVX-512 Q8_K quantizer on this CPU\n");
        return;
    }
    check_q8k_equal(fast);
}

static void test_q8k_avx2_matches_reference(void **state)
{
    (void)state;
    const llamad_quantize_q8k_fn fast = llamad_quantize_q8k_avx2();
    if (!fast) {
        print_message("no AVX2 Q8_K quantizer on this CPU\n");
        return;
    }
    check_q8k_equal(fast);
}

/* Rows quantized for a Q8_0 KV cache are the GGUF Q8_0 bytes of the weight
 * quantizer (a row a few blocks longer than the chunk it works in). */
static void test_q8_0_row_matches_weight_quantizer(void **state)
{
    (void)state;
    float x[N];
    static uint8_t want[BLOCKS * 34], got[BLOCKS * 34];
    srand(12);
    for (int round = 0; round < 5; round++) {
        fill(x);
        assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_Q8_0, x, want, N - 3 * LLAMAD_Q8_BLOCK));
        llamad_quantize_q8_0_row(x, got, N - 3 * LLAMAD_Q8_BLOCK);
        assert_memory_equal(got, want, (BLOCKS - 3) * 34);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx512_matches_reference),
        cmocka_unit_test(test_avx2_matches_reference),
        cmocka_unit_test(test_choice_matches_reference),
        cmocka_unit_test(test_q8k_avx512_matches_reference),
        cmocka_unit_test(test_q8k_avx2_matches_reference),
        cmocka_unit_test(test_q8_0_row_matches_weight_quantizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
