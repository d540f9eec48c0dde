/* Quantized activations: the Q8 quantizer and the reference integer dot
 * products, and the choice of the fast ones (quant_act_x86.c). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "llamad/kernels/quant.h"
#include "quant_internal.h"

void llamad_quantize_q8_blocks(const float *x, struct llamad_q8_block *out, int64_t n)
{
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++) {
        const float *v = x + b * LLAMAD_Q8_BLOCK;
        float amax = 0.0f;
        for (int i = 0; i < LLAMAD_Q8_BLOCK; i++)
            amax = fmaxf(amax, fabsf(v[i]));
        /* As ggml's Q8_0: the values are scaled by the exact 127/amax, the stored
         * scale is amax/127 rounded to half precision. */
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < LLAMAD_Q8_BLOCK; i++) {
            out[b].qs[i] = (int8_t)roundf(v[i] * id);
            sum += out[b].qs[i];
        }
        out[b].d = llamad_f16_to_f32(llamad_f32_to_f16(d));
        out[b].sum = sum;
    }
}

llamad_quantize_q8_fn llamad_quantize_q8_fast(void)
{
    llamad_quantize_q8_fn fast = llamad_quantize_q8_avx512();
    if (!fast)
        fast = llamad_quantize_q8_avx2();
    return fast ? fast : llamad_quantize_q8_blocks;
}

void llamad_quantize_q8_0_row(const float *x, void *out, int64_t n)
{
    enum { CHUNK = 8 }; /* blocks quantized at a time */
    const llamad_quantize_q8_fn quantize = llamad_quantize_q8_fast();
    struct llamad_q8_block q[CHUNK];
    uint8_t *o = out;
    for (int64_t b0 = 0; b0 < n / LLAMAD_Q8_BLOCK; b0 += CHUNK) {
        const int64_t nb = n / LLAMAD_Q8_BLOCK - b0 < CHUNK ? n / LLAMAD_Q8_BLOCK - b0 : CHUNK;
        quantize(x + b0 * LLAMAD_Q8_BLOCK, q, nb * LLAMAD_Q8_BLOCK);
        for (int64_t b = 0; b < nb; b++, o += LLAMAD_Q8_0_BYTES) {
            const uint16_t d = llamad_f32_to_f16(q[b].d); /* exact: d is a half already */
            llamad_store_le16(o, d);
            memcpy(o + 2, q[b].qs, LLAMAD_Q8_BLOCK);
        }
    }
}

size_t llamad_act_row_bytes(enum llamad_act_format f, int64_t n)
{
    return f == LLAMAD_ACT_Q8K ? (size_t)(n / LLAMAD_Q8K_BLOCK) * sizeof(struct llamad_q8k_block)
                               : (size_t)(n / LLAMAD_Q8_BLOCK) * sizeof(struct llamad_q8_block);
}

void llamad_quantize_act(enum llamad_act_format f, const float *x, void *out, int64_t n)
{
    if (f == LLAMAD_ACT_Q8K) {
        llamad_quantize_q8k_fn fast = llamad_quantize_q8k_avx512();
        if (!fast)
            fast = llamad_quantize_q8k_avx2();
        (fast ? fast : llamad_quantize_q8k_blocks)(x, out, n);
    } else {
        llamad_quantize_q8_fast()(x, out, n);
    }
}

/* Q8_0 block: fp16 d, int8 qs[32]. */
static float dot_q8_0_ref(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8_block *x = xv;
    const uint8_t *w = row;
    double acc = 0.0;
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++, w += LLAMAD_Q8_0_BYTES) {
        int32_t s = 0;
        for (int i = 0; i < LLAMAD_Q8_BLOCK; i++)
            s += (int8_t)w[2 + i] * x[b].qs[i];
        acc += (double)(llamad_load_f16(w) * x[b].d) * s;
    }
    return (float)acc;
}

/* Q4_0 block: fp16 d, 16 bytes of nibbles (low: elements 0..15, high: 16..31),
 * each value nibble - 8. */
static float dot_q4_0_ref(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8_block *x = xv;
    const uint8_t *w = row;
    double acc = 0.0;
    for (int64_t b = 0; b < n / LLAMAD_Q8_BLOCK; b++, w += LLAMAD_Q4_0_BYTES) {
        int32_t s = 0;
        for (int i = 0; i < LLAMAD_QK4_0 / 2; i++)
            s += ((w[2 + i] & 0x0F) - 8) * x[b].qs[i] +
                 ((w[2 + i] >> 4) - 8) * x[b].qs[i + LLAMAD_QK4_0 / 2];
        acc += (double)(llamad_load_f16(w) * x[b].d) * s;
    }
    return (float)acc;
}

static const struct llamad_act_kernels ref_q8_0 = {"scalar", LLAMAD_ACT_Q8, dot_q8_0_ref, NULL};
static const struct llamad_act_kernels ref_q4_0 = {"scalar", LLAMAD_ACT_Q8, dot_q4_0_ref, NULL};

const struct llamad_act_kernels *llamad_act_kernels_ref(uint32_t type)
{
    switch (type) {
    case LLAMAD_TYPE_Q8_0: return &ref_q8_0;
    case LLAMAD_TYPE_Q4_0: return &ref_q4_0;
    case LLAMAD_TYPE_Q4_K:
    case LLAMAD_TYPE_Q5_K:
    case LLAMAD_TYPE_Q6_K: return llamad_act_k_kernels_ref(type);
    default: return NULL;
    }
}

const struct llamad_act_kernels *llamad_act_kernels_variant(uint32_t type, const char *isa)
{
    return !strcmp(isa, "scalar") ? llamad_act_kernels_ref(type)
                                  : llamad_act_kernels_x86(type, isa);
}

const struct llamad_act_kernels *llamad_act_kernels_for(uint32_t type)
{
    const struct llamad_act_kernels *ref = llamad_act_kernels_ref(type);
    if (!ref)
        return NULL;
    const struct llamad_act_kernels *fast = llamad_act_kernels_x86(type, "avx512vnni");
    if (!fast)
        fast = llamad_act_kernels_x86(type, "avx2");
    return fast ? fast : ref;
}
