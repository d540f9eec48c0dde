/* Block formats: the reference kernels, the reference quantizers, and the choice
 * between the reference row dequantizers and the fast ones of quant_avx2.c and
 * quant_avx512.c. The K-quant blocks (Q4_K, Q5_K, Q6_K) are read and written by
 * quant_k.c; the block sizes are the type table's (llamad/format/types.h), halves
 * and bfloat16s are converted by llamad/format/half.h.
 *
 * Stored bytes are read one at a time as little-endian, so the reference needs no
 * alignment and no particular host byte order. */
#include "llamad/kernels/quant.h"
#include "quant_internal.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- dequantizing one block ---- */

typedef void (*dequantize_block_fn)(const uint8_t *block, float *out);

static void dequantize_block_f32(const uint8_t *b, float *out)
{
    out[0] = llamad_f32_from_bits(llamad_load_le32(b));
}

static void dequantize_block_f16(const uint8_t *b, float *out)
{
    out[0] = llamad_load_f16(b);
}

static void dequantize_block_bf16(const uint8_t *b, float *out)
{
    out[0] = llamad_bf16_to_f32(llamad_load_le16(b));
}

/* Q8_0: fp16 d, int8 qs[32]; x[j] = d * qs[j]. */
static void dequantize_block_q8_0(const uint8_t *b, float *out)
{
    float d = llamad_load_f16(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    for (int j = 0; j < LLAMAD_QK8_0; j++)
        out[j] = qs[j] * d;
}

/* Q4_0: fp16 d, uint8 qs[16]; the low nibbles are elements 0..15, the high ones
 * 16..31, each stored with an offset of 8. */
static void dequantize_block_q4_0(const uint8_t *b, float *out)
{
    float d = llamad_load_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < LLAMAD_QK4_0 / 2; j++) {
        out[j] = ((qs[j] & 0x0F) - 8) * d;
        out[j + LLAMAD_QK4_0 / 2] = ((qs[j] >> 4) - 8) * d;
    }
}

/* ---- reference row kernels ---- */

/* The block decoder of each computable type; its block size is the type table's. */
static const dequantize_block_fn dequantize_block_of[LLAMAD_TYPE_ID_LIMIT] = {
    [LLAMAD_TYPE_F32] = dequantize_block_f32,
    [LLAMAD_TYPE_F16] = dequantize_block_f16,
    [LLAMAD_TYPE_BF16] = dequantize_block_bf16,
    [LLAMAD_TYPE_Q8_0] = dequantize_block_q8_0,
    [LLAMAD_TYPE_Q4_0] = dequantize_block_q4_0,
    [LLAMAD_TYPE_Q4_K] = llamad_dequantize_block_q4_k,
    [LLAMAD_TYPE_Q5_K] = llamad_dequantize_block_q5_k,
    [LLAMAD_TYPE_Q6_K] = llamad_dequantize_block_q6_k,
};

static void dequantize_blocks(uint32_t type, const uint8_t *src, float *dst, int64_t n)
{
    const uint32_t elems = llamad_type_info(type)->block_elems;
    const uint32_t bytes = llamad_type_info(type)->block_bytes;
    for (int64_t i = 0; i < n; i += elems, src += bytes)
        dequantize_block_of[type](src, dst + i);
}

/* Dequantizes a block, then multiply-adds in element order. The sum is kept in
 * double (each float product is exact there), so the reference is close to the
 * exact dot product of the stored weights and x. */
static float dot_blocks(uint32_t type, const uint8_t *row, const float *x, int64_t n)
{
    const uint32_t elems = llamad_type_info(type)->block_elems;
    const uint32_t bytes = llamad_type_info(type)->block_bytes;
    float w[LLAMAD_QK_K]; /* the largest block */
    double acc = 0.0;
    for (int64_t i = 0; i < n; i += elems, row += bytes) {
        dequantize_block_of[type](row, w);
        for (uint32_t j = 0; j < elems; j++)
            acc += (double)w[j] * x[i + j];
    }
    return (float)acc;
}

/* The row dequantizer of one type, in the shape of struct llamad_kernels. */
#define REF_KERNELS(name, type)                                                                    \
    static void dequantize_##name##_ref(const void *src, float *dst, int64_t n)                    \
    {                                                                                              \
        dequantize_blocks(type, src, dst, n);                                                      \
    }

REF_KERNELS(f32, LLAMAD_TYPE_F32)
REF_KERNELS(f16, LLAMAD_TYPE_F16)
REF_KERNELS(bf16, LLAMAD_TYPE_BF16)
REF_KERNELS(q8_0, LLAMAD_TYPE_Q8_0)
REF_KERNELS(q4_0, LLAMAD_TYPE_Q4_0)
REF_KERNELS(q4_k, LLAMAD_TYPE_Q4_K)
REF_KERNELS(q5_k, LLAMAD_TYPE_Q5_K)
REF_KERNELS(q6_k, LLAMAD_TYPE_Q6_K)

static const struct llamad_kernels ref_kernels[LLAMAD_TYPE_ID_LIMIT] = {
    [LLAMAD_TYPE_F32] = {"scalar", dequantize_f32_ref},
    [LLAMAD_TYPE_F16] = {"scalar", dequantize_f16_ref},
    [LLAMAD_TYPE_BF16] = {"scalar", dequantize_bf16_ref},
    [LLAMAD_TYPE_Q8_0] = {"scalar", dequantize_q8_0_ref},
    [LLAMAD_TYPE_Q4_0] = {"scalar", dequantize_q4_0_ref},
    [LLAMAD_TYPE_Q4_K] = {"scalar", dequantize_q4_k_ref},
    [LLAMAD_TYPE_Q5_K] = {"scalar", dequantize_q5_k_ref},
    [LLAMAD_TYPE_Q6_K] = {"scalar", dequantize_q6_k_ref},
};

bool llamad_type_computable(uint32_t type)
{
    return type < LLAMAD_TYPE_ID_LIMIT && ref_kernels[type].dequantize_row != NULL;
}

const struct llamad_kernels *llamad_kernels_ref(uint32_t type)
{
    return llamad_type_computable(type) ? &ref_kernels[type] : NULL;
}

void llamad_dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n)
{
    assert(llamad_type_computable(type) && n % llamad_type_info(type)->block_elems == 0);
    ref_kernels[type].dequantize_row(src, dst, n);
}

float llamad_dot_ref(uint32_t type, const void *row, const float *x, int64_t n)
{
    assert(llamad_type_computable(type) && n % llamad_type_info(type)->block_elems == 0);
    return dot_blocks(type, row, x, n);
}

/* ---- reference quantizers ---- */

/* ggml turns these floats into int8 with a plain C cast. Out of int8's range (NaN
 * included) the cast is undefined; such values come only from NaN or infinite
 * weights, or from a block so small that 1/d overflows, and become 0 here (ggml's
 * cast gives 0 for NaN and infinities on x86 too). */
static int to_int8_like_ggml(float v)
{
    return v > -129.0f && v < 128.0f ? (int)v : 0;
}

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* ggml's quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d) (ties away from
 * zero). The quotient uses the float d; only the stored d is rounded to half. */
static void quantize_block_q8_0(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    for (int j = 0; j < LLAMAD_QK8_0; j++) {
        float a = fabsf(x[j]);
        if (a > amax)
            amax = a;
    }
    float d = amax / 127;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    llamad_store_le16(b, llamad_f32_to_f16(d));
    for (int j = 0; j < LLAMAD_QK8_0; j++)
        b[2 + j] = (uint8_t)(int8_t)to_int8_like_ggml(roundf(x[j] * id));
}

/* ggml's quantize_row_q4_0_ref: d = -m / 8 where m is the first element of largest
 * magnitude, so m itself maps to stored 0 (value -8 d); q = trunc(x / d + 8.5), at
 * most 15, which rounds halves up and clips the far end to 7 d. */
static void quantize_block_q4_0(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < LLAMAD_QK4_0; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    float d = max / -8;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    llamad_store_le16(b, llamad_f32_to_f16(d));
    for (int j = 0; j < LLAMAD_QK4_0 / 2; j++) {
        uint8_t lo = (uint8_t)min_int(15, to_int8_like_ggml(x[j] * id + 8.5f));
        uint8_t hi = (uint8_t)min_int(15, to_int8_like_ggml(x[j + LLAMAD_QK4_0 / 2] * id + 8.5f));
        b[2 + j] = (uint8_t)(lo | hi << 4);
    }
}

bool llamad_quantize_row_ref(uint32_t type, const float *src, void *dst, int64_t n)
{
    uint8_t *out = dst;
    switch (type) {
    case LLAMAD_TYPE_F32:
        for (int64_t i = 0; i < n; i++)
            llamad_store_le32(out + 4 * i, llamad_f32_bits(src[i]));
        return true;
    case LLAMAD_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            llamad_store_le16(out + 2 * i, llamad_f32_to_f16(src[i]));
        return true;
    case LLAMAD_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            llamad_store_le16(out + 2 * i, llamad_f32_to_bf16(src[i]));
        return true;
    case LLAMAD_TYPE_Q8_0:
        assert(n % LLAMAD_QK8_0 == 0);
        for (int64_t i = 0; i < n / LLAMAD_QK8_0; i++)
            quantize_block_q8_0(src + i * LLAMAD_QK8_0, out + i * LLAMAD_Q8_0_BYTES);
        return true;
    case LLAMAD_TYPE_Q4_0:
        assert(n % LLAMAD_QK4_0 == 0);
        for (int64_t i = 0; i < n / LLAMAD_QK4_0; i++)
            quantize_block_q4_0(src + i * LLAMAD_QK4_0, out + i * LLAMAD_Q4_0_BYTES);
        return true;
    case LLAMAD_TYPE_Q4_K:
        assert(n % LLAMAD_QK_K == 0);
        for (int64_t i = 0; i < n / LLAMAD_QK_K; i++)
            llamad_quantize_block_q4_k(src + i * LLAMAD_QK_K, out + i * LLAMAD_Q4_K_BYTES);
        return true;
    case LLAMAD_TYPE_Q5_K:
        assert(n % LLAMAD_QK_K == 0);
        for (int64_t i = 0; i < n / LLAMAD_QK_K; i++)
            llamad_quantize_block_q5_k(src + i * LLAMAD_QK_K, out + i * LLAMAD_Q5_K_BYTES);
        return true;
    case LLAMAD_TYPE_Q6_K:
        assert(n % LLAMAD_QK_K == 0);
        for (int64_t i = 0; i < n / LLAMAD_QK_K; i++)
            llamad_quantize_block_q6_k(src + i * LLAMAD_QK_K, out + i * LLAMAD_Q6_K_BYTES);
        return true;
    default: return false;
    }
}

/* ---- choosing kernels ---- */

static void f32_to_f16_row_ref(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = llamad_f32_to_f16(x[i]);
}

void llamad_f32_to_f16_row(const float *x, uint16_t *y, int64_t n)
{
    static _Atomic(llamad_f32_to_f16_row_fn) chosen;
    llamad_f32_to_f16_row_fn f = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (!f) {
        f = llamad_f32_to_f16_row_avx2();
        if (!f)
            f = f32_to_f16_row_ref;
        atomic_store_explicit(&chosen, f, memory_order_relaxed);
    }
    f(x, y, n);
}

const struct llamad_kernels *llamad_kernels_for(uint32_t type)
{
    if (!llamad_type_computable(type))
        return NULL;
    const struct llamad_kernels *fast = llamad_quant_avx512_kernels(type);
    if (!fast)
        fast = llamad_quant_avx2_kernels(type);
    return fast ? fast : &ref_kernels[type];
}

const struct llamad_kernels *llamad_kernels_variant(uint32_t type, const char *isa)
{
    if (!llamad_type_computable(type))
        return NULL;
    if (!strcmp(isa, "scalar"))
        return &ref_kernels[type];
    if (!strcmp(isa, "avx2"))
        return llamad_quant_avx2_kernels(type);
    if (!strcmp(isa, "avx512"))
        return llamad_quant_avx512_kernels(type);
    return NULL;
}
