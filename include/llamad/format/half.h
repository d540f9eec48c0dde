/* IEEE half and bfloat16, and little-endian loads and stores: how model files
 * store numbers, bit for bit.
 *
 * GGUF is little-endian whatever the host, and its tensors keep scales and
 * weights as halves or bfloat16s, so every layer that reads or writes those bytes
 * (the quantizers and kernels above all) takes these conversions from here. The
 * loads and stores go a byte at a time, so they need no alignment and no
 * particular host byte order. */
#ifndef LLAMAD_HALF_H
#define LLAMAD_HALF_H

#include <stdint.h>
#include <string.h>

/* Half and bfloat16 <-> float. Widening is exact; f32->f16 and f32->bf16 round to
 * nearest even, and keep a NaN a NaN. */
float llamad_f16_to_f32(uint16_t h);
uint16_t llamad_f32_to_f16(float f);
float llamad_bf16_to_f32(uint16_t h);
uint16_t llamad_f32_to_bf16(float f);

/* The bits of a float, and the float of some bits. */
static inline uint32_t llamad_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float llamad_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t llamad_load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline void llamad_store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint32_t llamad_load_le32(const uint8_t *p)
{
    return (uint32_t)llamad_load_le16(p) | (uint32_t)llamad_load_le16(p + 2) << 16;
}

static inline void llamad_store_le32(uint8_t *p, uint32_t v)
{
    llamad_store_le16(p, (uint16_t)v);
    llamad_store_le16(p + 2, (uint16_t)(v >> 16));
}

/* The half stored at p (a block's scale, a weight of an F16 row), as a float. */
static inline float llamad_load_f16(const uint8_t *p)
{
    return llamad_f16_to_f32(llamad_load_le16(p));
}

#endif
