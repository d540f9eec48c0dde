/* Reference integer dot products of K-quant weight rows (Q4_K, Q5_K, Q6_K) with
 * activations in Q8_K blocks, with the arithmetic of ggml's
 * ggml_vec_dot_q{4,5,6}_K_q8_K: exact integer sums per 256-element block, then one
 * multiply by the weight and activation scales. The block layouts are described in
 * quant_k.c; the fast versions are in quant_act_k_x86.c. */
#include <stddef.h>
#include <stdint.h>

#include "llamad/kernels/quant.h"
#include "quant_internal.h"
#include "quant_k_layout.h"

/* The 6-bit scale and min of sub-block j of Q4_K / Q5_K (ggml's get_scale_min_k4). */
static void scale_min(const uint8_t *s, int j, int *scale, int *min)
{
    if (j < 4) {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    } else {
        *scale = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *min = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* The unsigned quant of element i of a Q4_K / Q5_K block: a nibble of
 * qs[32 (j/2) + l] (low for even sub-block j), plus bit j of qh[l] as bit 4 for
 * Q5_K (qh NULL for Q4_K); i = 32 j + l. */
static int q45_value(const uint8_t *qs, const uint8_t *qh, int i)
{
    int j = i / K_SUB, l = i % K_SUB;
    uint8_t byte = qs[K_SUB * (j / 2) + l];
    int v = j & 1 ? byte >> 4 : byte & 0x0F;
    if (qh)
        v |= (qh[l] >> j & 1) << 4;
    return v;
}

/* Q4_K and Q5_K: the weight is d * scale_j * q - dmin * min_j, so a block adds
 * d dx * sum_j scale_j sum(q x) - dmin dx * sum_j min_j sum(x), the sums of x being
 * the activation block's bsums (two per sub-block). */
static float dot_scaled_ref(const uint8_t *w, const struct llamad_q8k_block *x, int64_t n,
                            int block_bytes, int qh_at, int qs_at)
{
    double acc = 0.0;
    for (int64_t b = 0; b < n / LLAMAD_QK_K; b++, w += block_bytes) {
        const uint8_t *qh = qh_at ? w + qh_at : NULL;
        int32_t sum_q = 0, sum_min = 0;
        for (int j = 0; j < LLAMAD_QK_K / K_SUB; j++) {
            int scale, min;
            scale_min(w + SCALES_AT, j, &scale, &min);
            int32_t s = 0;
            for (int i = K_SUB * j; i < K_SUB * (j + 1); i++)
                s += q45_value(w + qs_at, qh, i) * x[b].qs[i];
            sum_q += scale * s;
            sum_min += min * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        acc += (double)(llamad_load_f16(w) * x[b].d) * sum_q -
               (double)(llamad_load_f16(w + 2) * x[b].d) * sum_min;
    }
    return (float)acc;
}

static float dot_q4_k_ref(const void *row, const void *x, int64_t n)
{
    return dot_scaled_ref(row, x, n, LLAMAD_Q4_K_BYTES, 0, Q4_K_QS_AT);
}

static float dot_q5_k_ref(const void *row, const void *x, int64_t n)
{
    return dot_scaled_ref(row, x, n, LLAMAD_Q5_K_BYTES, Q5_K_QH_AT, Q5_K_QS_AT);
}

/* The signed 6-bit quant of element i of a Q6_K block. In each 128-element half
 * (64 bytes of ql, 32 of qh), element 32 k + l has the low nibble (k < 2) or high
 * nibble of ql[l + 32 (k & 1)] as its low 4 bits and bits 2k, 2k+1 of qh[l] as its
 * top 2; it is stored with an offset of 32. */
static int q6_value(const uint8_t *block, int i)
{
    int half = i / 128, k = i % 128 / 32, l = i % 32;
    const uint8_t *ql = block + 64 * half, *qh = block + Q6_K_QH_AT + 32 * half;
    uint8_t lo = ql[l + 32 * (k & 1)];
    int low4 = k < 2 ? lo & 0x0F : lo >> 4;
    return (low4 | (qh[l] >> 2 * k & 3) << 4) - 32;
}

/* Q6_K: every 16 elements share an int8 scale; the weight is d * scale * q. */
static float dot_q6_k_ref(const void *row, const void *xv, int64_t n)
{
    const struct llamad_q8k_block *x = xv;
    const uint8_t *w = row;
    double acc = 0.0;
    for (int64_t b = 0; b < n / LLAMAD_QK_K; b++, w += LLAMAD_Q6_K_BYTES) {
        const int8_t *scales = (const int8_t *)(w + Q6_K_SCALES_AT);
        int32_t sum = 0;
        for (int g = 0; g < 16; g++) {
            int32_t s = 0;
            for (int i = 16 * g; i < 16 * (g + 1); i++)
                s += q6_value(w, i) * x[b].qs[i];
            sum += scales[g] * s;
        }
        acc += (double)(llamad_load_f16(w + Q6_K_D_AT) * x[b].d) * sum;
    }
    return (float)acc;
}

static const struct llamad_act_kernels ref_q4_k = {"scalar", LLAMAD_ACT_Q8K, dot_q4_k_ref, NULL};
static const struct llamad_act_kernels ref_q5_k = {"scalar", LLAMAD_ACT_Q8K, dot_q5_k_ref, NULL};
static const struct llamad_act_kernels ref_q6_k = {"scalar", LLAMAD_ACT_Q8K, dot_q6_k_ref, NULL};

const struct llamad_act_kernels *llamad_act_k_kernels_ref(uint32_t type)
{
    switch (type) {
    case LLAMAD_TYPE_Q4_K: return &ref_q4_k;
    case LLAMAD_TYPE_Q5_K: return &ref_q5_k;
    case LLAMAD_TYPE_Q6_K: return &ref_q6_k;
    default: return NULL;
    }
}
