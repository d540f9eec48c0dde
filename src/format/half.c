/* IEEE half and bfloat16 <-> float, in integer arithmetic on the bits, so the
 * result is the same on every host and needs no F16C (the kernels use F16C for
 * rows; they round as these functions do). */
#include "llamad/format/half.h"

/* m >> shift (shift in 1..31), rounded to nearest, ties to even. */
static uint32_t shift_round_even(uint32_t m, unsigned shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return q;
}

float llamad_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    if (exp == 0) { /* zero or subnormal: mant units of 2^-24, exact in float */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return llamad_f32_from_bits(sign | 0x7F800000 | mant << 13);
    return llamad_f32_from_bits(sign | (exp + 127 - 15) << 23 | mant << 13);
}

uint16_t llamad_f32_to_f16(float f)
{
    uint32_t x = llamad_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    int exp = (int)((x >> 23) & 0xFF);
    uint32_t mant = x & 0x7FFFFF;

    if (exp == 0xFF) /* infinity, or a NaN made quiet that keeps its top payload bits */
        return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 | mant >> 13 : 0));

    int e = exp - 127 + 15; /* the biased half exponent */
    if (e >= 31)
        return (uint16_t)(sign | 0x7C00);
    if (e <= 0) {
        /* A half subnormal counts units of 2^-24: (1.mant * 2^23) >> (14 - e). Below
         * e = -10 the value is under half the smallest subnormal and rounds to zero. */
        if (e < -10)
            return sign;
        return (uint16_t)(sign | shift_round_even(mant | 0x800000, (unsigned)(14 - e)));
    }
    /* When rounding carries out of the mantissa it increments the exponent field,
     * which is the right result, up to and including infinity. */
    return (uint16_t)(sign | (((uint32_t)e << 10) + shift_round_even(mant, 13)));
}

float llamad_bf16_to_f32(uint16_t h)
{
    return llamad_f32_from_bits((uint32_t)h << 16);
}

uint16_t llamad_f32_to_bf16(float f)
{
    uint32_t x = llamad_f32_bits(f);
    if ((x & 0x7FFFFFFF) > 0x7F800000) /* NaN: rounding could turn it into infinity */
        return (uint16_t)(x >> 16 | 0x40);
    return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}
