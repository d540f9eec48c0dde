/* The half and bfloat16 conversions and the little-endian loads and stores of
 * llamad/format/half.h, held to the formats' definitions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "llamad/format/half.h"

static void test_f16_to_f32(void **state)
{
    (void)state;
    assert_true(llamad_f32_bits(llamad_f16_to_f32(0x0000)) == 0x00000000);
    assert_true(llamad_f32_bits(llamad_f16_to_f32(0x8000)) == 0x80000000);
    assert_true(llamad_f16_to_f32(0x3C00) == 1.0f);
    assert_true(llamad_f16_to_f32(0xC000) == -2.0f);
    assert_true(llamad_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(llamad_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(llamad_f16_to_f32(0x0400) == 0x1p-14f);   /* smallest normal */
    assert_true(llamad_f16_to_f32(0x03FF) == 0x3FFp-24f); /* largest subnormal */
    assert_true(llamad_f16_to_f32(0x0001) == 0x1p-24f);   /* smallest subnormal */
    assert_true(llamad_f16_to_f32(0x8001) == -0x1p-24f);
    assert_true(llamad_f16_to_f32(0x7C00) == INFINITY);
    assert_true(llamad_f16_to_f32(0xFC00) == -INFINITY);
    assert_true(isnan(llamad_f16_to_f32(0x7E00)));
    assert_true(isnan(llamad_f16_to_f32(0x7C01)));
}

static void test_f32_to_f16(void **state)
{
    (void)state;
    assert_int_equal(llamad_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(llamad_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(llamad_f32_to_f16(1.0f), 0x3C00);
    assert_int_equal(llamad_f32_to_f16(-2.0f), 0xC000);
    assert_int_equal(llamad_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(llamad_f32_to_f16(65519.99f), 0x7BFF);
    assert_int_equal(llamad_f32_to_f16(65520.0f), 0x7C00); /* tie between 65504 and 2^16 */
    assert_int_equal(llamad_f32_to_f16(-65520.0f), 0xFC00);
    assert_int_equal(llamad_f32_to_f16(1e10f), 0x7C00);
    assert_int_equal(llamad_f32_to_f16(INFINITY), 0x7C00);
    assert_int_equal(llamad_f32_to_f16(-INFINITY), 0xFC00);

    /* rounding ties go to the even mantissa */
    assert_int_equal(llamad_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);
    assert_int_equal(llamad_f32_to_f16(1.0f + 0x3p-11f), 0x3C02);
    assert_int_equal(llamad_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    assert_int_equal(llamad_f32_to_f16(2.0f - 0x1p-12f), 0x4000); /* carries into the exponent */

    /* subnormals */
    assert_int_equal(llamad_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(llamad_f32_to_f16(-0x1p-24f), 0x8001);
    assert_int_equal(llamad_f32_to_f16(0x1p-25f), 0x0000); /* tie with zero: even */
    assert_int_equal(llamad_f32_to_f16(0x1.000002p-25f), 0x0001);
    assert_int_equal(llamad_f32_to_f16(0x3p-25f), 0x0002); /* tie between 1 and 2 */
    assert_int_equal(llamad_f32_to_f16(0x5p-25f), 0x0002); /* tie between 2 and 3 */
    assert_int_equal(llamad_f32_to_f16(0x3FFp-24f), 0x03FF);
    assert_int_equal(llamad_f32_to_f16(0x7FFp-25f), 0x0400); /* rounds up to the smallest normal */
    assert_int_equal(llamad_f32_to_f16(0x1p-14f), 0x0400);
    assert_int_equal(llamad_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(llamad_f32_to_f16(llamad_f32_from_bits(0x00000001)), 0x0000);

    uint16_t nan = llamad_f32_to_f16(NAN);
    assert_int_equal(nan & 0x7C00, 0x7C00);
    assert_true((nan & 0x03FF) != 0);
    /* a NaN whose payload lives only in low bits must not become infinity */
    uint16_t low_nan = llamad_f32_to_f16(llamad_f32_from_bits(0x7F800001));
    assert_int_equal(low_nan & 0x7C00, 0x7C00);
    assert_true((low_nan & 0x03FF) != 0);
}

/* Every half converts to float and back to itself (NaNs to some NaN). */
static void test_f16_round_trip_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        float f = llamad_f16_to_f32((uint16_t)h);
        uint16_t back = llamad_f32_to_f16(f);
        if (isnan(f)) {
            assert_true((back & 0x7C00) == 0x7C00 && (back & 0x03FF) != 0);
            assert_int_equal(back & 0x8000, h & 0x8000);
        } else if (back != h) {
            fail_msg("half 0x%04x -> %.9g -> 0x%04x", h, f, back);
        }
    }
}

static void test_bf16(void **state)
{
    (void)state;
    assert_true(llamad_bf16_to_f32(0x3F80) == 1.0f);
    assert_true(llamad_bf16_to_f32(0x4049) == 3.140625f);
    assert_true(llamad_bf16_to_f32(0xC2F7) == -123.5f);
    assert_true(llamad_bf16_to_f32(0x0001) == 0x1p-133f);
    assert_true(llamad_f32_bits(llamad_bf16_to_f32(0x8000)) == 0x80000000);
    assert_true(llamad_bf16_to_f32(0x7F80) == INFINITY);
    assert_true(isnan(llamad_bf16_to_f32(0x7FC0)));

    assert_int_equal(llamad_f32_to_bf16(0.0f), 0x0000);
    assert_int_equal(llamad_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(llamad_f32_to_bf16(1.0f), 0x3F80);
    assert_int_equal(llamad_f32_to_bf16(llamad_f32_from_bits(0x3F808000)), 0x3F80); /* tie: even */
    assert_int_equal(llamad_f32_to_bf16(llamad_f32_from_bits(0x3F818000)), 0x3F82); /* tie: even */
    assert_int_equal(llamad_f32_to_bf16(llamad_f32_from_bits(0x3F808001)), 0x3F81);
    assert_int_equal(llamad_f32_to_bf16(llamad_f32_from_bits(0x3F807FFF)), 0x3F80);
    assert_int_equal(llamad_f32_to_bf16(3.14159265f), 0x4049);
    assert_int_equal(llamad_f32_to_bf16(0x1.FEp127f), 0x7F7F);
    assert_int_equal(llamad_f32_to_bf16(3.4028235e38f), 0x7F80); /* FLT_MAX rounds up to inf */
    assert_int_equal(llamad_f32_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(llamad_f32_to_bf16(-INFINITY), 0xFF80);
    assert_int_equal(llamad_f32_to_bf16(llamad_f32_from_bits(0x00000001)), 0x0000);

    /* NaNs stay NaN, including ones whose payload is below the kept bits */
    uint16_t nans[] = {
        llamad_f32_to_bf16(NAN),
        llamad_f32_to_bf16(llamad_f32_from_bits(0x7F800001)),
        llamad_f32_to_bf16(llamad_f32_from_bits(0xFFFFFFFF)),
    };
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        assert_true(isnan(llamad_bf16_to_f32(nans[i])));
}

/* GGUF stores the low byte first, whatever the host, at any address. */
static void test_little_endian(void **state)
{
    (void)state;
    uint8_t b[5] = {0};
    llamad_store_le16(b + 1, 0x1234);
    const uint8_t want16[3] = {0x00, 0x34, 0x12};
    assert_memory_equal(b, want16, sizeof want16);
    assert_int_equal(llamad_load_le16(b + 1), 0x1234);

    llamad_store_le32(b + 1, 0x89ABCDEFu);
    const uint8_t want32[5] = {0x00, 0xEF, 0xCD, 0xAB, 0x89};
    assert_memory_equal(b, want32, sizeof want32);
    assert_int_equal(llamad_load_le32(b + 1), 0x89ABCDEFu);

    const uint8_t one_half_in[3] = {0xFF, 0x00, 0x3C}; /* 1.0 as a half, at offset 1 */
    assert_true(llamad_load_f16(one_half_in + 1) == 1.0f);
    assert_int_equal(llamad_f32_bits(1.0f), 0x3F800000u);
    assert_true(llamad_f32_from_bits(0xC0000000u) == -2.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_to_f32),         cmocka_unit_test(test_f32_to_f16),
        cmocka_unit_test(test_f16_round_trip_all), cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_little_endian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
