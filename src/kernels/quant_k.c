/* The K-quant block formats Q4_K, Q5_K and Q6_K: dequantizing one 256-element block
 * (for quant.c's reference row kernels) and the reference quantizers.
 *
 * The quantizers follow ggml's quantize_row_q4_K_ref, quantize_row_q5_K_ref and
 * quantize_row_q6_K_ref step by step in float arithmetic (no fused multiply-add), so
 * they write what llama.cpp's llama-quantize writes without an importance matrix;
 * tests/test_quant_k.c checks that byte for byte on the shared synthetic models.
 * The block layouts are in quant_k_layout.h. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "llamad/kernels/quant.h"
#include "quant_internal.h"
#include "quant_k_layout.h"

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- the packed 6-bit scales and mins of Q4_K and Q5_K ----
 *
 * Sub-block j < 4 keeps its scale in the low 6 bits of s[j] and its min in those of
 * s[j + 4]. Sub-block j >= 4 keeps the low 4 bits of its scale and of its min in the
 * low and high nibble of s[j + 4], and their top 2 bits in the top bits of s[j - 4]
 * and s[j] (ggml's get_scale_min_k4). */

static void unpack_scale_min(const uint8_t *s, int j, int *scale, int *min)
{
    if (j < 4) {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    } else {
        *scale = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *min = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Packs scale[j], min[j] (each 0..63) for all 8 sub-blocks into s[12]. */
static void pack_scales_mins(const uint8_t *scale, const uint8_t *min, uint8_t *s)
{
    memset(s, 0, 12);
    for (int j = 0; j < K_N_SUB; j++) {
        if (j < 4) {
            s[j] |= scale[j];
            s[j + 4] |= min[j];
        } else {
            s[j + 4] = (uint8_t)((scale[j] & 0x0F) | (min[j] & 0x0F) << 4);
            s[j - 4] |= (uint8_t)(scale[j] >> 4 << 6);
            s[j] |= (uint8_t)(min[j] >> 4 << 6);
        }
    }
}

/* ---- dequantizing ---- */

/* Q4_K and Q5_K: sub-block j (elements 32j .. 32j + 31) has weight
 * d * scale_j * q - dmin * min_j. Its 4 low bits are the low nibbles of
 * qs[32 (j/2) .. 32 (j/2) + 31] for even j and the high nibbles for odd j; for
 * Q5_K, bit j of qh[l] is bit 4 of element 32j + l (qh NULL for Q4_K). */
static void dequantize_scaled_block(const uint8_t *b, const uint8_t *qh, const uint8_t *qs,
                                    float *out)
{
    float d = llamad_load_f16(b);
    float dmin = llamad_load_f16(b + 2);
    for (int j = 0; j < K_N_SUB; j++) {
        int scale, min;
        unpack_scale_min(b + SCALES_AT, j, &scale, &min);
        float dj = d * scale;
        float mj = dmin * min;
        const uint8_t *q = qs + K_SUB * (j / 2);
        for (int l = 0; l < K_SUB; l++) {
            int v = j & 1 ? q[l] >> 4 : q[l] & 0x0F;
            if (qh)
                v |= (qh[l] >> j & 1) << 4;
            out[K_SUB * j + l] = dj * v - mj;
        }
    }
}

void llamad_dequantize_block_q4_k(const uint8_t *b, float *out)
{
    dequantize_scaled_block(b, NULL, b + Q4_K_QS_AT, out);
}

void llamad_dequantize_block_q5_k(const uint8_t *b, float *out)
{
    dequantize_scaled_block(b, b + Q5_K_QH_AT, b + Q5_K_QS_AT, out);
}

/* The 6-bit value of element 32 * k + l (k = 0..3, l = 0..31) of one 128-element half
 * of a Q6_K block, whose ql part is 64 bytes and qh part 32: the low 4 bits are a
 * nibble of ql[l] (k = 0, 2) or ql[l + 32] (k = 1, 3), low nibble for k < 2; the top
 * 2 bits are bits 2k, 2k+1 of qh[l]. Stored with an offset of 32. */
static int q6_k_value(const uint8_t *ql, const uint8_t *qh, int k, int l)
{
    uint8_t lo_byte = ql[l + 32 * (k & 1)];
    int low4 = k < 2 ? lo_byte & 0x0F : lo_byte >> 4;
    int high2 = (qh[l] >> (2 * k)) & 3;
    return (low4 | high2 << 4) - 32;
}

/* Q6_K: two halves of 128 elements; every 16 consecutive elements share one int8
 * scale, and the weight is d * scale * (q - 32). */
void llamad_dequantize_block_q6_k(const uint8_t *b, float *out)
{
    const uint8_t *ql = b;
    const uint8_t *qh = b + Q6_K_QH_AT;
    const int8_t *sc = (const int8_t *)(b + Q6_K_SCALES_AT);
    float d = llamad_load_f16(b + Q6_K_D_AT);

    for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, out += 128) {
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                int e = 32 * k + l;
                out[e] = d * sc[e / 16] * q6_k_value(ql, qh, k, l);
            }
        }
    }
}

/* ---- quantizing ---- */

/* Round to nearest, ties to even, as ggml's nearest_int does for |v| <= 4194303 (its
 * range). Beyond that ggml's result is meaningless; here it saturates, and NaN gives
 * 0 as in ggml, so odd input cannot reach an undefined conversion. */
static int nearest_int(float v)
{
    if (isnan(v))
        return 0;
    return (int)rintf(v < -4194303.0f ? -4194303.0f : v > 4194303.0f ? 4194303.0f : v);
}

/* Weighted squared error of scale * L[i] + min against x[i]. */
static float fit_error(int n, const float *x, const float *w, const uint8_t *L, float scale,
                       float min)
{
    float err = 0;
    for (int i = 0; i < n; i++) {
        float diff = scale * L[i] + min - x[i];
        err += w[i] * (diff * diff);
    }
    return err;
}

/* ggml's make_qkx2_quants (squared error): levels L[i] in 0..nmax with
 * x[i] ~ scale * L[i] + min, min <= 0. Starts from the grid spanning [min(x, 0),
 * max(x)], then tries nstep + 1 wider or narrower grids (nmax + rmin + rdelta * is
 * levels over the same span), fits scale and min to each by weighted least squares
 * and keeps the best. Returns the scale; *neg_min gets -min. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }

    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
    float best = fit_error(n, x, w, L, scale, min);

    uint8_t Laux[K_SUB];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0))
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = fit_error(n, x, w, Laux, this_scale, this_min);
        if (err < best) {
            memcpy(L, Laux, (size_t)n);
            best = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* The 6-bit level of v for the inverse scale inv, as ggml computes it: the uint8_t
 * conversion wraps a negative level (possible only for a negative fitted scale)
 * before the clip at 63. */
static uint8_t level_6bit(float inv, float v)
{
    uint8_t l = (uint8_t)nearest_int(inv * v);
    return l < 63 ? l : 63;
}

/* The shared part of Q4_K and Q5_K (levels 0..nmax): fits every 32-element sub-block
 * with weights av + |x| (av the sub-block's RMS), stores d, dmin and the 6-bit scales
 * and mins in the block's first 16 bytes, then requantizes each element against the
 * stored scale and min into L. */
static void quantize_scaled_block(const float *x, uint8_t *b, int nmax, float rmin, float rdelta,
                                  int nstep, uint8_t *L)
{
    float scales[K_N_SUB], mins[K_N_SUB];
    float max_scale = 0, max_min = 0; /* both are >= 0: the min is subtracted */
    for (int j = 0; j < K_N_SUB; j++) {
        const float *xj = x + K_SUB * j;
        float sum_x2 = 0;
        for (int l = 0; l < K_SUB; l++)
            sum_x2 += xj[l] * xj[l];
        float av = sqrtf(sum_x2 / K_SUB);
        float w[K_SUB];
        for (int l = 0; l < K_SUB; l++)
            w[l] = av + fabsf(xj[l]);
        scales[j] = fit_scale_min(K_SUB, nmax, xj, w, L + K_SUB * j, &mins[j], rmin, rdelta, nstep);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }

    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[K_N_SUB], lm[K_N_SUB];
    for (int j = 0; j < K_N_SUB; j++) {
        ls[j] = level_6bit(inv_scale, scales[j]);
        lm[j] = level_6bit(inv_min, mins[j]);
    }
    pack_scales_mins(ls, lm, b + SCALES_AT);
    llamad_store_le16(b, llamad_f32_to_f16(max_scale / 63.0f));
    llamad_store_le16(b + 2, llamad_f32_to_f16(max_min / 63.0f));

    float d = llamad_load_f16(b), dmin = llamad_load_f16(b + 2);
    for (int j = 0; j < K_N_SUB; j++) {
        int sc, m;
        unpack_scale_min(b + SCALES_AT, j, &sc, &m);
        float dj = d * sc;
        if (dj == 0.0f) /* keep the levels of the fit */
            continue;
        float mj = dmin * m;
        for (int l = 0; l < K_SUB; l++) {
            int q = nearest_int((x[K_SUB * j + l] + mj) / dj);
            L[K_SUB * j + l] = (uint8_t)clamp_int(q, 0, nmax);
        }
    }
}

/* ggml's quantize_row_q4_K_ref for one block. */
void llamad_quantize_block_q4_k(const float *x, uint8_t *b)
{
    uint8_t L[LLAMAD_QK_K];
    quantize_scaled_block(x, b, 15, -1.0f, 0.1f, 20, L);
    uint8_t *qs = b + Q4_K_QS_AT;
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < K_SUB; l++)
            qs[K_SUB * g + l] = (uint8_t)(L[64 * g + l] | L[64 * g + K_SUB + l] << 4);
}

/* ggml's quantize_row_q5_K_ref for one block. */
void llamad_quantize_block_q5_k(const float *x, uint8_t *b)
{
    uint8_t L[LLAMAD_QK_K];
    quantize_scaled_block(x, b, 31, -0.5f, 0.1f, 15, L);
    uint8_t *qh = b + Q5_K_QH_AT;
    uint8_t *qs = b + Q5_K_QS_AT;
    memset(qh, 0, K_SUB);
    for (int j = 0; j < K_N_SUB; j++) {
        for (int l = 0; l < K_SUB; l++) {
            int q = L[K_SUB * j + l];
            qh[l] |= (uint8_t)((q >> 4) << j);
            uint8_t *byte = &qs[K_SUB * (j / 2) + l];
            *byte = (uint8_t)(j & 1 ? (*byte & 0x0F) | (q & 0x0F) << 4 : q & 0x0F);
        }
    }
}

/* Level of v (-32..31) for the inverse scale iscale. */
static int q6_level(float iscale, float v)
{
    return clamp_int(nearest_int(iscale * v), -32, 31);
}

/* The sums of a least-squares fit of x by scale * level, weighted by x^2. */
static void q6_fit_sums(const float *x, float iscale, float *sumlx, float *suml2)
{
    *sumlx = *suml2 = 0;
    for (int i = 0; i < 16; i++) {
        int l = q6_level(iscale, x[i]);
        float w = x[i] * x[i];
        *sumlx += w * x[i] * l;
        *suml2 += w * l * l;
    }
}

static void q6_levels(const float *x, float iscale, uint8_t *L)
{
    for (int i = 0; i < 16; i++)
        L[i] = (uint8_t)(q6_level(iscale, x[i]) + 32);
}

/* ggml's make_qx_quants with rmse_type 1 and no weights, for 16 values and levels
 * -32..31 (stored in L with an offset of 32): the inverse scale -32 / max (max being
 * the element of largest magnitude, with its sign), then -(32 + 0.1 is) / max for
 * is = -9..9; each is fitted by least squares weighted by x^2, and a trial replaces
 * the best so far when it explains more of x. Returns the fitted scale. */
static float fit_scale_q6(const float *x, uint8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < 16; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < 1e-15f) { /* ggml's GROUP_MAX_EPS: all zero */
        memset(L, 0, 16);
        return 0.0f;
    }

    float iscale = -32 / max;
    float sumlx, suml2;
    q6_levels(x, iscale, L);
    q6_fit_sums(x, iscale, &sumlx, &suml2);
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(32 + 0.1f * is) / max;
        q6_fit_sums(x, iscale, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            q6_levels(x, iscale, L);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* ggml's quantize_row_q6_K_ref for one block: a scale per 16 elements, the 16 scales
 * quantized to int8 against the one of largest magnitude (which becomes -128), then
 * every element requantized against its stored scale. */
void llamad_quantize_block_q6_k(const float *x, uint8_t *b)
{
    uint8_t L[LLAMAD_QK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ib++) {
        scales[ib] = fit_scale_q6(x + 16 * ib, L + 16 * ib);
        if (fabsf(scales[ib]) > max_abs_scale) {
            max_abs_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }
    memset(b, 0, LLAMAD_Q6_K_BYTES);
    if (max_abs_scale < 1e-15f) /* all zero: so is the block */
        return;

    float iscale = -128.0f / max_scale;
    llamad_store_le16(b + Q6_K_D_AT, llamad_f32_to_f16(1 / iscale));
    int8_t *sc = (int8_t *)(b + Q6_K_SCALES_AT);
    for (int ib = 0; ib < 16; ib++) /* the low clip only matters for non-finite input */
        sc[ib] = (int8_t)clamp_int(nearest_int(iscale * scales[ib]), -128, 127);

    float d = llamad_load_f16(b + Q6_K_D_AT);
    for (int ib = 0; ib < 16; ib++) {
        float dj = d * sc[ib];
        if (dj == 0.0f) /* keep the levels of the fit */
            continue;
        for (int i = 16 * ib; i < 16 * ib + 16; i++)
            L[i] = (uint8_t)(clamp_int(nearest_int(x[i] / dj), -32, 31) + 32);
    }

    /* the inverse of q6_k_value */
    for (int half = 0; half < 2; half++) {
        uint8_t *ql = b + 64 * half, *qh = b + Q6_K_QH_AT + 32 * half;
        const uint8_t *Lh = L + 128 * half;
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                int q = Lh[32 * k + l];
                ql[l + 32 * (k & 1)] |= (uint8_t)((q & 0x0F) << (k < 2 ? 0 : 4));
                qh[l] |= (uint8_t)((q >> 4) << (2 * k));
            }
        }
    }
}

/* Activations for K-quant dot products: one scale per 256 values, taken from the
 * value of largest magnitude (which maps to -127 or 127, so every level can be
 * negated in int8), plus sums of each 16 for the formats' minimums; as ggml's
 * quantize_row_q8_K. */
void llamad_quantize_q8k_blocks(const float *x, struct llamad_q8k_block *out, int64_t n)
{
    for (int64_t b = 0; b < n / LLAMAD_QK_K; b++, x += LLAMAD_QK_K) {
        struct llamad_q8k_block *o = &out[b];
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < LLAMAD_QK_K; i++)
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        memset(o, 0, sizeof(*o));
        if (amax == 0.0f)
            continue;
        const float iscale = -127.0f / max;
        for (int i = 0; i < LLAMAD_QK_K; i++) {
            int v = nearest_int(iscale * x[i]);
            o->qs[i] = (int8_t)(v > 127 ? 127 : v);
            o->bsums[i / 16] = (int16_t)(o->bsums[i / 16] + o->qs[i]);
        }
        o->d = 1.0f / iscale;
    }
}
