#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "llamad/format/types.h"
#include "llamad/kernels/cpu.h"
#include "llamad/kernels/quant.h"
#include "testutil.h"

#if defined(__x86_64__) || defined(__i386__)
#endif

static const uint32_t computable_types[] = {
    LLAMAD_TYPE_F32,  LLAMAD_TYPE_F16,  LLAMAD_TYPE_BF16,
    LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_Q4_0, LLAMAD_TYPE_Q6_K,
};
#define N_COMPUTABLE (sizeof computable_types / sizeof computable_types[0])

/* ---- helpers ---- */

static size_t row_bytes(uint32_t type, int64_t n)
{
    uint64_t bytes;
    assert_true(llamad_type_bytes(type, (uint64_t)n, &bytes));
    return (size_t)bytes;
}

/* Exactly `size` bytes (at least one), so ASan reports any read past a row. */
static void *alloc_exact(size_t size)
{
    void *p = malloc(size ? size : 1);
    assert_non_null(p);
    return p;
}

/* Runs the reference kernels (both through llamad_kernels_ref and the type-taking
 * functions) and the chosen fast dequantizer on a hand-made row, and requires the
 * exact dequantized values and the exact dot product: every test row is built so
 * that the sum is exact in float. */
static void check_hand_row(uint32_t type, const void *row, int64_t n, const float *x,
                           const float *want, float want_dot)
{
    const struct llamad_kernels *ks[2] = {llamad_kernels_ref(type), llamad_kernels_for(type)};
    float got[256];
    assert_true(n <= 256);

    for (int k = 0; k < 2; k++) {
        assert_non_null(ks[k]);
        ks[k]->dequantize_row(row, got, n);
        for (int64_t i = 0; i < n; i++) {
            if (llamad_f32_bits(got[i]) != llamad_f32_bits(want[i]))
                fail_msg("%s %s: element %lld is %.9g, want %.9g", llamad_type_name(type),
                         ks[k]->isa, (long long)i, got[i], want[i]);
        }
    }

    memset(got, 0, (size_t)n * sizeof *got);
    llamad_dequantize_row_ref(type, row, got, n);
    assert_memory_equal(got, want, (size_t)n * sizeof *got);
    assert_true(llamad_dot_ref(type, row, x, n) == want_dot);
}

/* ---- halves ---- */

/* The row conversion (F16C where the CPU has it) rounds every value as the
 * scalar conversion does (test_half.c holds that one to the format): its edge
 * values, random ones across the whole range, and row lengths that leave a
 * partial vector. NaNs stay NaNs. */
static void test_f32_to_f16_row(void **state)
{
    (void)state;
    enum { N = 1000 };
    static const float edges[] = {0.0f,
                                  -0.0f,
                                  65519.99f,
                                  65520.0f,
                                  -65520.0f,
                                  1e10f,
                                  INFINITY,
                                  -INFINITY,
                                  1.0f + 0x1p-11f,
                                  1.0f + 0x3p-11f,
                                  2.0f - 0x1p-12f,
                                  0x1p-25f,
                                  0x3p-25f,
                                  0x5p-25f,
                                  0x7FFp-25f,
                                  1e-30f,
                                  NAN};
    float x[N];
    uint16_t y[N];
    test_splitmix_seed(41);
    for (int i = 0; i < N; i++) {
        x[i] = i < (int)(sizeof edges / sizeof edges[0])
                   ? edges[i]
                   : llamad_f32_from_bits((uint32_t)test_splitmix_u64());
    }
    for (int n = 0; n <= 20; n++) {
        llamad_f32_to_f16_row(x, y, N - n);
        for (int i = 0; i < N - n; i++) {
            uint16_t want = llamad_f32_to_f16(x[i]);
            if (isnan(x[i]))
                assert_true((y[i] & 0x7C00) == 0x7C00 && (y[i] & 0x03FF) != 0);
            else if (y[i] != want)
                fail_msg("value %d (%a): row conversion 0x%04x, scalar 0x%04x", i, (double)x[i],
                         y[i], want);
        }
    }
}

/* ---- which types ---- */

static void test_computable_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_COMPUTABLE; i++)
        assert_true(llamad_type_computable(computable_types[i]));

    const uint32_t not_computable[] = {
        LLAMAD_TYPE_Q3_K,
        LLAMAD_TYPE_IQ2_XS,
        LLAMAD_TYPE_Q4_1,
        LLAMAD_TYPE_Q8_K,
        LLAMAD_TYPE_I32,
        4,
        31,
        LLAMAD_TYPE_ID_LIMIT,
        1000,
        UINT32_MAX,
    };
    for (size_t i = 0; i < sizeof not_computable / sizeof not_computable[0]; i++) {
        uint32_t t = not_computable[i];
        assert_false(llamad_type_computable(t));
        assert_null(llamad_kernels_for(t));
        assert_null(llamad_kernels_ref(t));
    }
}

static void test_kernel_tables(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_COMPUTABLE; i++) {
        uint32_t t = computable_types[i];
        const struct llamad_kernels *fast = llamad_kernels_for(t);
        const struct llamad_kernels *ref = llamad_kernels_ref(t);
        assert_non_null(fast);
        assert_non_null(fast->dequantize_row);
        assert_ptr_equal(fast, llamad_kernels_for(t)); /* constant for the process */
        assert_string_equal(ref->isa, "scalar");
    }
    assert_string_equal(llamad_kernels_for(LLAMAD_TYPE_Q6_K)->isa, "scalar");
}

/* ---- hand-made rows ---- */

static void test_f32_by_hand(void **state)
{
    (void)state;
    const uint8_t row[] = {
        0x00, 0x00, 0x80, 0x3F, /* 1 */
        0x00, 0x00, 0x00, 0xC0, /* -2 */
        0xAB, 0xAA, 0xAA, 0x3E, /* 0.333333343 */
        0xFF, 0xFF, 0x7F, 0x7F, /* FLT_MAX */
        0x01, 0x00, 0x00, 0x00, /* 2^-149 */
        0x00, 0x00, 0x00, 0x80, /* -0 */
        0xDB, 0x0F, 0x49, 0x40, /* 3.14159274 */
        0x00, 0x00, 0xF7, 0x42, /* 123.5 */
        0x00, 0x00, 0x00, 0xBF, /* -0.5 */
        0x00, 0x00, 0x80, 0x3B, /* 2^-8 */
        0x00, 0x00, 0x00, 0x40, /* 2 */
    };
    const float want[] = {1.0f,        -2.0f,  0.333333343f, 3.40282347e38f, 0x1p-149f, -0.0f,
                          3.14159274f, 123.5f, -0.5f,        0x1p-8f,        2.0f};
    const float x[] = {3, 1, 0, 0, 0, 5, 0, 2, 4, 256, -1};
    /* 3 - 2 + 247 - 2 + 1 - 2 */
    check_hand_row(LLAMAD_TYPE_F32, row, 11, x, want, 245.0f);
}

static void test_f16_by_hand(void **state)
{
    (void)state;
    const uint8_t row[] = {
        0x00, 0x3C, /* 1 */
        0x00, 0xC0, /* -2 */
        0x00, 0x38, /* 0.5 */
        0xFF, 0x7B, /* 65504 */
        0x01, 0x00, /* 2^-24 */
        0x00, 0x80, /* -0 */
        0x55, 0x35, /* 1365/4096 */
        0x48, 0x42, /* 3.140625 */
        0x00, 0x04, /* 2^-14 */
        0xFF, 0xFB, /* -65504 */
        0x00, 0x3E, /* 1.5 */
    };
    const float want[] = {1.0f,  -2.0f,           0.5f,      65504.0f, 0x1p-24f,
                          -0.0f, 0.333251953125f, 3.140625f, 0x1p-14f, -65504.0f,
                          1.5f};
    const float x[] = {3, 1, 4, 0, 0x1p20f, 5, 3, 2, 0x1p10f, 0, -2};
    /* 3 - 2 + 2 + 1/16 + 4095/4096 + 6.28125 + 1/16 - 3 */
    check_hand_row(LLAMAD_TYPE_F16, row, 11, x, want, 7.406005859375f);
}

static void test_bf16_by_hand(void **state)
{
    (void)state;
    const uint8_t row[] = {
        0x80, 0x3F, /* 1 */
        0x00, 0xC0, /* -2 */
        0x00, 0x3F, /* 0.5 */
        0x49, 0x40, /* 3.140625 */
        0x7F, 0x7F, /* 255 * 2^120, the largest finite */
        0x01, 0x00, /* 2^-133 */
        0x00, 0x80, /* -0 */
        0xAB, 0x3E, /* 171/512 */
        0xF7, 0xC2, /* -123.5 */
        0x80, 0x3B, /* 2^-8 */
        0x00, 0x40, /* 2 */
    };
    const float want[] = {1.0f,  -2.0f,        0.5f,    3.140625f, 0x1.FEp127f, 0x1p-133f,
                          -0.0f, 0.333984375f, -123.5f, 0x1p-8f,   2.0f};
    const float x[] = {3, 1, 4, 2, 0, 0, 7, 3, 0.5f, 256, -1};
    /* 3 - 2 + 2 + 6.28125 + 1.001953125 - 61.75 + 1 - 2 */
    check_hand_row(LLAMAD_TYPE_BF16, row, 11, x, want, -52.466796875f);
}

static void test_q8_0_by_hand(void **state)
{
    (void)state;
    const uint8_t block[34] = {
        0x00, 0x38,                                     /* d = 0.5 */
        0x80, 0x7F,                                     /* -128, 127 */
        0x01, 0xFF, 0x02, 0xFE, 0x03, 0xFD, 0x04, 0xFC, /* 1, -1, 2, -2, ... */
        0x05, 0xFB, 0x06, 0xFA, 0x07, 0xF9, 0x08, 0xF8, 0x09, 0xF7,
        0x0A, 0xF6, 0x0B, 0xF5, 0x0C, 0xF4, 0x0D, 0xF3, 0x0E, 0xF2, /* ..., 14, -14 */
        0x0F, 0x00,                                                 /* 15, 0 */
    };
    float want[32] = {-64.0f, 63.5f};
    for (int k = 1; k <= 14; k++) {
        want[2 * k] = 0.5f * (float)k;
        want[2 * k + 1] = -0.5f * (float)k;
    }
    want[30] = 7.5f;
    want[31] = 0.0f;
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i + 1);
    /* -64 + 127, each pair (k/2, -k/2) at x = 2k+1, 2k+2 adds -k/2 (-52.5 in all), 7.5*31 */
    check_hand_row(LLAMAD_TYPE_Q8_0, block, 32, x, want, 243.0f);
}

static void test_q4_0_by_hand(void **state)
{
    (void)state;
    /* d = 0.5; byte j holds nibble j (element j) and 15 - j (element j + 16). */
    const uint8_t block[18] = {
        0x00, 0x38, 0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96,
        0x87, 0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F,
    };
    const float want[32] = {
        -4.0f, -3.5f, -3.0f, -2.5f, -2.0f, -1.5f, -1.0f, -0.5f, /* (j - 8) / 2 */
        0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  2.5f,  3.0f,  3.5f,
        3.5f,  3.0f,  2.5f,  2.0f,  1.5f,  1.0f,  0.5f,  0.0f, /* (7 - j) / 2 */
        -0.5f, -1.0f, -1.5f, -2.0f, -2.5f, -3.0f, -3.5f, -4.0f,
    };
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i + 1);
    /* sum (j+1)(j-8)/2 = 136 and sum (j+17)(7-j)/2 = -268 over j = 0..15 */
    check_hand_row(LLAMAD_TYPE_Q4_0, block, 32, x, want, -132.0f);
}

/* Q6_K with every 6-bit value at 32 (weight 0) except seven, placed to exercise each
 * quarter, both halves, both scale groups of a quarter and a negative scale. */
static void test_q6_k_by_hand(void **state)
{
    (void)state;
    uint8_t block[210];
    uint8_t *ql = block, *qh = block + 128, *scales = block + 192;
    memset(ql, 0x00, 128);
    memset(qh, 0xAA, 64); /* top bits 2 everywhere: q = 32 */
    for (int i = 0; i < 16; i++)
        scales[i] = (uint8_t)(i + 1);
    scales[15] = (uint8_t)-16;
    block[208] = 0x00; /* d = 0.25 */
    block[209] = 0x34;

    ql[0] = 0x05; /* element 0: q1 of l = 0, low 5, top 3: 53 - 32 = 21, scale 1 */
    qh[0] = 0xAB;
    ql[17] = 0x0F; /* element 17: q1 of l = 17, low 15, top 0: -17, scale 2 */
    qh[17] = 0xA8;
    ql[35] = 0x01; /* element 35: q2 of l = 3, low 1, top 1: -15, scale 3 */
    qh[3] = 0xA6;
    ql[20] = 0xF0; /* element 84: q3 of l = 20, high 15, top 3: 31, scale 6 */
    qh[20] = 0xBA;
    qh[31] = 0x2A;  /* element 127: q4 of l = 31, high 0, top 0: -32, scale 8 */
    ql[69] = 0x30;  /* element 197: second half, q3 of l = 5, high 3, top 2: 3, scale 13 */
    ql[127] = 0x70; /* element 255: second half, q4 of l = 31, high 7, top 3: 23, scale -16 */
    qh[63] = 0xEA;

    float want[256] = {0};
    for (int i = 240; i < 255; i++)
        want[i] = -0.0f;          /* 0.25 * -16 * 0 */
    want[0] = 0.25f * 1 * 21;     /* 5.25 */
    want[17] = 0.25f * 2 * -17;   /* -8.5 */
    want[35] = 0.25f * 3 * -15;   /* -11.25 */
    want[84] = 0.25f * 6 * 31;    /* 46.5 */
    want[127] = 0.25f * 8 * -32;  /* -64 */
    want[197] = 0.25f * 13 * 3;   /* 9.75 */
    want[255] = 0.25f * -16 * 23; /* -92 */
    float x[256];
    for (int i = 0; i < 256; i++)
        x[i] = (float)i;
    /* 0 - 144.5 - 393.75 + 3906 - 8128 + 1920.75 - 23460 */
    check_hand_row(LLAMAD_TYPE_Q6_K, block, 256, x, want, -26299.5f);
}

/* ---- quantizers ---- */

static void test_quantize_float_rows(void **state)
{
    (void)state;
    const float src[3] = {1.0f, -2.0f, 65520.0f};
    uint8_t out[12];

    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_F32, src, out, 3));
    const uint8_t want_f32[12] = {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00,
                                  0x00, 0xC0, 0x00, 0xF0, 0x7F, 0x47};
    assert_memory_equal(out, want_f32, 12);

    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_F16, src, out, 3));
    const uint8_t want_f16[6] = {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x7C};
    assert_memory_equal(out, want_f16, 6);

    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_BF16, src, out, 3));
    const uint8_t want_bf16[6] = {0x80, 0x3F, 0x00, 0xC0, 0x80, 0x47};
    assert_memory_equal(out, want_bf16, 6);
}

/* Q8_0 rounds half away from zero (roundf), unlike rint. */
static void test_quantize_q8_0_known(void **state)
{
    (void)state;
    float src[64] = {127.0f, 2.5f, -2.5f, 0.49f, -127.0f, 0.5f, -0.5f, 1.5f};
    for (int j = 8; j < 32; j++)
        src[j] = (float)(j - 20);
    /* the second block is all zeros */
    uint8_t out[68];
    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_Q8_0, src, out, 64));

    uint8_t want[68] = {0x00, 0x3C, 127, 3, (uint8_t)-3, 0, (uint8_t)-127, 1, (uint8_t)-1, 2};
    for (int j = 8; j < 32; j++)
        want[2 + j] = (uint8_t)(j - 20);
    assert_memory_equal(out, want, sizeof want);
}

/* Q4_0 takes the first element of largest magnitude with its sign, rounds halves up
 * in nibble space and clips the far end at 15. */
static void test_quantize_q4_0_known(void **state)
{
    (void)state;
    float src[96] = {7.0f, 3.5f, -3.5f, -8.0f, 0.49f, -0.5f, 0.5f, 6.6f, -7.9f, 2.0f, 8.0f};
    for (int j = 0; j < 16; j++)
        src[16 + j] = (float)(j - 8);
    src[32] = 8.0f; /* second block: d = -1 */
    src[33] = -8.0f;
    src[34] = 3.0f;
    src[35] = -3.5f;
    /* the third block is all zeros */
    uint8_t out[54];
    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_Q4_0, src, out, 96));

    const uint8_t want[54] = {
        0x00, 0x3C, /* d = 1 */
        0x0F, 0x1C, 0x25, 0x30, 0x48, 0x58, 0x69, 0x7F, 0x80, 0x9A,
        0xAF, 0xB8, 0xC8, 0xD8, 0xE8, 0xF8, 0x00, 0xBC, /* d = -1 */
        0x80, 0x8F, 0x85, 0x8C, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
        0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x00, 0x80, /* d = 0 / -8 = -0, as ggml stores it */
        0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
        0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
    };
    assert_memory_equal(out, want, sizeof want);

    float back[96];
    llamad_dequantize_row_ref(LLAMAD_TYPE_Q4_0, out, back, 96);
    assert_true(back[10] == 7.0f);  /* 8 clipped */
    assert_true(back[33] == -7.0f); /* -8 clipped when the max is +8 */
    assert_true(back[35] == -4.0f); /* -3.5 rounds to -4 when d < 0 */
}

static void test_quantize_unsupported(void **state)
{
    (void)state;
    const uint32_t types[] = {LLAMAD_TYPE_Q3_K, LLAMAD_TYPE_Q8_K, LLAMAD_TYPE_Q4_1, 999};
    float src[256] = {1.0f};
    uint8_t out[256];
    uint8_t untouched[256];
    memset(untouched, 0xA5, sizeof untouched);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        memcpy(out, untouched, sizeof out);
        assert_false(llamad_quantize_row_ref(types[i], src, out, 256));
        assert_memory_equal(out, untouched, sizeof out);
    }
}

/* Blocks of 32 random values whose magnitude varies from block to block, with one
 * all-zero block and one block holding a single outlier. */
static void fill_blocks(float *x, int blocks)
{
    for (int b = 0; b < blocks; b++) {
        float scale = exp2f((float)(b % 24 - 12));
        for (int j = 0; j < 32; j++)
            x[32 * b + j] = test_splitmix_float() * scale;
    }
    memset(x + 32 * 5, 0, 32 * sizeof *x);
    for (int j = 0; j < 32; j++)
        x[32 * 6 + j] = 0.01f * test_splitmix_float();
    x[32 * 6 + 17] = -50.0f;
}

/* Error bound: rounding to the grid (d/2), plus up to 127 times the error of
 * storing d as a half. */
static void test_q8_0_round_trip(void **state)
{
    (void)state;
    enum { BLOCKS = 64, N = BLOCKS * 32 };
    static float x[N], y[N];
    static uint8_t q[BLOCKS * 34];
    test_splitmix_seed(11);
    fill_blocks(x, BLOCKS);
    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_Q8_0, x, q, N));
    llamad_dequantize_row_ref(LLAMAD_TYPE_Q8_0, q, y, N);

    for (int b = 0; b < BLOCKS; b++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[32 * b + j]));
        float d = amax / 127;
        uint16_t d16 = (uint16_t)(q[34 * b] | q[34 * b + 1] << 8);
        assert_int_equal(d16, llamad_f32_to_f16(d));
        float bound = d / 2 + 127 * fabsf(d - llamad_f16_to_f32(d16)) + amax * 1e-6f;
        for (int j = 0; j < 32; j++) {
            float err = fabsf(x[32 * b + j] - y[32 * b + j]);
            if (err > bound)
                fail_msg("block %d element %d: error %g > %g", b, j, err, bound);
        }
    }
}

/* Error bound: d/2 inside the grid; on the side opposite the largest element the
 * grid stops at 7 |d| and the error can reach |d|; plus up to 8 times the error of
 * storing d as a half. */
static void test_q4_0_round_trip(void **state)
{
    (void)state;
    enum { BLOCKS = 64, N = BLOCKS * 32 };
    static float x[N], y[N];
    static uint8_t q[BLOCKS * 18];
    test_splitmix_seed(12);
    fill_blocks(x, BLOCKS);
    assert_true(llamad_quantize_row_ref(LLAMAD_TYPE_Q4_0, x, q, N));
    llamad_dequantize_row_ref(LLAMAD_TYPE_Q4_0, q, y, N);

    for (int b = 0; b < BLOCKS; b++) {
        const float *xb = x + 32 * b;
        float max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(xb[j]) > fabsf(max))
                max = xb[j];
        float d = max / -8;
        uint16_t d16 = (uint16_t)(q[18 * b] | q[18 * b + 1] << 8);
        assert_int_equal(d16, llamad_f32_to_f16(d));
        float slack = 8 * fabsf(d - llamad_f16_to_f32(d16)) + fabsf(max) * 1e-6f;
        for (int j = 0; j < 32; j++) {
            float err = fabsf(xb[j] - y[32 * b + j]);
            bool clipped = d != 0.0f && xb[j] / d >= 7.5f;
            float bound = (clipped ? fabsf(d) : fabsf(d) / 2) + slack;
            if (err > bound)
                fail_msg("block %d element %d: error %g > %g", b, j, err, bound);
        }
    }
}

/* ---- fast kernels against the reference ---- */

enum fill_mode { FILL_RANDOM, FILL_ZERO, FILL_EXTREME };

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Extreme: one of the two bytes at random; otherwise any byte. */
static uint8_t quant_byte(bool extreme, uint8_t a, uint8_t b)
{
    if (extreme)
        return test_splitmix_u64() & 1 ? a : b;
    return (uint8_t)test_splitmix_u64();
}

/* A block scale as a half: +-65504 when extreme, else up to 2 in magnitude. */
static uint16_t scale_half(bool extreme)
{
    if (extreme)
        return (uint16_t)(0x7BFF | (test_splitmix_u64() & 1 ? 0x8000 : 0));
    return llamad_f32_to_f16(2.0f * test_splitmix_float());
}

/* Extreme: +-big; otherwise random magnitudes over about 2^-spread .. 2^spread. */
static float weight_value(bool extreme, float big, float spread)
{
    if (extreme)
        return copysignf(big, test_splitmix_float());
    return test_splitmix_float() * exp2f(test_splitmix_float() * spread);
}

/* Fills a row of `type`: random values, all zero, or the largest magnitudes the
 * format stores with random signs (1e30 for F32 and BF16, whose largest values
 * would overflow the sum; quants at their ends, scales at +-65504). */
static void fill_row(uint32_t type, uint8_t *row, int64_t n, size_t bytes, enum fill_mode mode)
{
    bool extreme = mode == FILL_EXTREME;
    if (mode == FILL_ZERO) {
        memset(row, 0, bytes);
        return;
    }
    switch (type) {
    case LLAMAD_TYPE_F32:
        for (int64_t i = 0; i < n; i++) {
            float v = weight_value(extreme, 1e30f, 16);
            memcpy(row + 4 * i, &v, 4);
        }
        break;
    case LLAMAD_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            put16(row + 2 * i, llamad_f32_to_f16(weight_value(extreme, 65504.0f, 16)));
        break;
    case LLAMAD_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            put16(row + 2 * i, llamad_f32_to_bf16(weight_value(extreme, 1e30f, 40)));
        break;
    case LLAMAD_TYPE_Q8_0:
        for (size_t b = 0; b < bytes; b += 34) {
            put16(row + b, scale_half(extreme));
            for (int j = 2; j < 34; j++)
                row[b + j] = quant_byte(extreme, 0x80, 0x7F); /* -128, 127 */
        }
        break;
    case LLAMAD_TYPE_Q4_0:
        for (size_t b = 0; b < bytes; b += 18) {
            put16(row + b, scale_half(extreme));
            for (int j = 2; j < 18; j++)
                row[b + j] = quant_byte(extreme, 0x0F, 0xF0); /* nibbles 0 and 15 */
        }
        break;
    case LLAMAD_TYPE_Q6_K:
        for (size_t b = 0; b < bytes; b += 210) {
            for (int j = 0; j < 192; j++) /* ql, qh: 6-bit values 0 and 63 */
                row[b + j] = quant_byte(extreme, 0x00, 0xFF);
            for (int j = 192; j < 208; j++) /* scales -128, 127 */
                row[b + j] = quant_byte(extreme, 0x80, 0x7F);
            put16(row + b + 208, scale_half(extreme));
        }
        break;
    default: fail_msg("no filler for type %u", type);
    }
}

/* The fast dequantizer gives the reference's floats, bit for bit. */
static void compare_variant_to_ref(const struct llamad_kernels *fast, uint32_t type, int64_t n,
                                   enum fill_mode mode)
{
    const struct llamad_kernels *ref = llamad_kernels_ref(type);
    size_t bytes = row_bytes(type, n);
    uint8_t *row = alloc_exact(bytes);
    float *w_fast = alloc_exact((size_t)n * sizeof *w_fast);
    float *w_ref = alloc_exact((size_t)n * sizeof *w_ref);

    fill_row(type, row, n, bytes, mode);
    fast->dequantize_row(row, w_fast, n);
    ref->dequantize_row(row, w_ref, n);
    bool same_weights = n == 0 || memcmp(w_fast, w_ref, (size_t)n * sizeof *w_ref) == 0;

    free(row);
    free(w_fast);
    free(w_ref);
    if (!same_weights)
        fail_msg("%s n=%lld mode %d: %s dequantization differs from the reference",
                 llamad_type_name(type), (long long)n, mode, fast->isa);
}

/* Every implementation this CPU runs (the one llamad_kernels_for picks and the
 * ones it passes over) is held to the reference. */
static void compare_fast_to_ref(uint32_t type, int64_t n, enum fill_mode mode)
{
    static const char *const isas[] = {"avx2", "avx512"};
    compare_variant_to_ref(llamad_kernels_for(type), type, n, mode);
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        const struct llamad_kernels *k = llamad_kernels_variant(type, isas[i]);
        if (k)
            compare_variant_to_ref(k, type, n, mode);
    }
}

static void test_fast_float_types(void **state)
{
    (void)state;
    const uint32_t types[] = {LLAMAD_TYPE_F32, LLAMAD_TYPE_F16, LLAMAD_TYPE_BF16};
    const int64_t lengths[] = {0, 1, 7, 8, 9, 31, 32, 33, 63, 1000, 4096 + 5};
    test_splitmix_seed(21);
    for (size_t t = 0; t < 3; t++)
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++)
            for (int mode = FILL_RANDOM; mode <= FILL_EXTREME; mode++)
                compare_fast_to_ref(types[t], lengths[l], (enum fill_mode)mode);
}

static void test_fast_quantized_types(void **state)
{
    (void)state;
    const uint32_t types[] = {LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_Q4_0, LLAMAD_TYPE_Q6_K};
    test_splitmix_seed(22);
    for (size_t t = 0; t < 3; t++) {
        int64_t block = llamad_type_info(types[t])->block_elems;
        for (int64_t blocks = 1; blocks <= 9; blocks++)
            for (int mode = FILL_RANDOM; mode <= FILL_EXTREME; mode++)
                compare_fast_to_ref(types[t], blocks * block, (enum fill_mode)mode);
        compare_fast_to_ref(types[t], 4096, FILL_RANDOM);
    }
}

/* ---- LLAMAD_CPU ---- */

#define PRINT_ISAS_ARG "--print-isas"

/* Child mode: one line with the isa llamad_kernels_for picks for each computable type. */
static int print_isas(void)
{
    for (size_t i = 0; i < N_COMPUTABLE; i++)
        printf("%s%s", i ? " " : "", llamad_kernels_for(computable_types[i])->isa);
    printf("\n");
    return 0;
}

/* Runs this program afresh in print-isas mode, with LLAMAD_CPU set to `cap` (unset
 * when NULL) before its first kernel lookup; returns its line. */
static void isas_of_child(const char *cap, char *out, size_t outsz)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        if (cap)
            setenv("LLAMAD_CPU", cap, 1);
        else
            unsetenv("LLAMAD_CPU");
        execl("/proc/self/exe", "test_quant", PRINT_ISAS_ARG, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < outsz && (r = read(fds[0], out + len, outsz - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* What llamad_kernels_for picks for each computable type under a CPU set. */
static const char *isas_for(enum llamad_cpu_set set)
{
    return set >= LLAMAD_CPU_AVX512 ? "avx512 avx512 avx512 avx2 avx2 scalar\n"
           : set >= LLAMAD_CPU_AVX2 ? "avx2 avx2 avx2 avx2 avx2 scalar\n"
                                    : "scalar scalar scalar scalar scalar scalar\n";
}

/* LLAMAD_CPU caps the kernel set of a whole process: every set up to the CPU's own
 * can be chosen on this machine, a set above it or a name it does not know leaves
 * the CPU's choice. */
static void test_cpu_cap(void **state)
{
    (void)state;
    const enum llamad_cpu_set cpu = llamad_cpu_detected();
    char line[256];
    for (int set = LLAMAD_CPU_SCALAR; set < LLAMAD_CPU_SETS; set++) {
        isas_of_child(llamad_cpu_set_name(set), line, sizeof line);
        assert_string_equal(line, isas_for(set < (int)cpu ? (enum llamad_cpu_set)set : cpu));
    }
    isas_of_child(NULL, line, sizeof line);
    assert_string_equal(line, isas_for(cpu));
    isas_of_child("sse9", line, sizeof line);
    assert_string_equal(line, isas_for(cpu));
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], PRINT_ISAS_ARG) == 0)
        return print_isas();

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_to_f16_row),       cmocka_unit_test(test_computable_types),
        cmocka_unit_test(test_kernel_tables),        cmocka_unit_test(test_f32_by_hand),
        cmocka_unit_test(test_f16_by_hand),          cmocka_unit_test(test_bf16_by_hand),
        cmocka_unit_test(test_q8_0_by_hand),         cmocka_unit_test(test_q4_0_by_hand),
        cmocka_unit_test(test_q6_k_by_hand),         cmocka_unit_test(test_quantize_float_rows),
        cmocka_unit_test(test_quantize_q8_0_known),  cmocka_unit_test(test_quantize_q4_0_known),
        cmocka_unit_test(test_quantize_unsupported), cmocka_unit_test(test_q8_0_round_trip),
        cmocka_unit_test(test_q4_0_round_trip),      cmocka_unit_test(test_fast_float_types),
        cmocka_unit_test(test_fast_quantized_types), cmocka_unit_test(test_cpu_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
