/* What the int8 kernels share about packed weights. Q8_0, Q4_0 and K-quant (Q4_K, Q5_K, Q6_K)
 * weights repacked, once at load, into the panels the fast int8 kernels read (the layout is
 * described in gemm_int8_internal.h): each kernel then streams one panel after another through
 * memory instead of gathering 32 rows' blocks on every call. */
#include <stdbool.h>
#include <string.h>

#include "gemm_int8_internal.h"
#include "llamad/format/types.h"
#include "quant_k_layout.h"

size_t llamad_gemm_int8_packed_bytes(uint32_t type, int64_t rows, int64_t cols)
{
    const size_t panels = (size_t)((rows + LLAMAD_GEMM_PANEL_ROWS - 1) / LLAMAD_GEMM_PANEL_ROWS);
    return panels * (size_t)(cols / llamad_gemm_block_values(type)) *
           llamad_gemm_packed_block_bytes(type);
}

const uint8_t *llamad_gemm_packed_panel(const struct llamad_weight *w, int64_t r)
{
    const size_t panel_bytes = (size_t)(w->cols / llamad_gemm_block_values(w->type)) *
                               llamad_gemm_packed_block_bytes(w->type);
    return (const uint8_t *)w->packed + (size_t)(r / LLAMAD_GEMM_PANEL_ROWS) * panel_bytes;
}

size_t llamad_gemm_no_work(int64_t cols, int32_t max_tokens)
{
    (void)cols;
    (void)max_tokens;
    return 0;
}

void llamad_gemm_live_lanes(int64_t p0, int64_t r1, uint16_t live[LLAMAD_GEMM_GROUPS])
{
    for (int g = 0; g < LLAMAD_GEMM_GROUPS; g++) {
        const int64_t n = r1 - p0 - g * LLAMAD_GEMM_LANES;
        live[g] = (uint16_t)(n <= 0 ? 0 : n >= LLAMAD_GEMM_LANES ? 0xFFFF : (1u << n) - 1);
    }
}

/* One row's block into its lane of a packed block, by type. */
static void pack_q8_0(struct llamad_gemm_packed_q8_0 *out, int g, int lane, const uint8_t *in)
{
    memcpy(&out->d[g][lane], in, sizeof out->d[g][lane]);
    for (int j = 0; j < LLAMAD_Q8_BLOCK / 4; j++)
        for (int i = 0; i < 4; i++)
            out->q[g][j][lane][i] = (uint8_t)(in[2 + 4 * j + i] ^ 0x80); /* w + 128 */
}

static void pack_q4_0(struct llamad_gemm_packed_q4_0 *out, int g, int lane, const uint8_t *in)
{
    memcpy(&out->d[g][lane], in, sizeof out->d[g][lane]);
    for (int j = 0; j < LLAMAD_Q8_BLOCK / 8; j++)
        memcpy(out->q[g][j][lane], in + 2 + 4 * j, 4);
}

/* What Q4_K and Q5_K share: d, dmin, the scales' words and the nibbles (at qs_at). */
static void pack_q45_k(uint16_t d[][LLAMAD_GEMM_LANES], uint16_t dmin[][LLAMAD_GEMM_LANES],
                       uint32_t scales[][3][LLAMAD_GEMM_LANES],
                       uint8_t q[][4][8][LLAMAD_GEMM_LANES][4], int g, int lane, const uint8_t *in,
                       int qs_at)
{
    memcpy(&d[g][lane], in, sizeof d[g][lane]);
    memcpy(&dmin[g][lane], in + 2, sizeof dmin[g][lane]);
    for (int i = 0; i < 3; i++)
        memcpy(&scales[g][i][lane], in + SCALES_AT + 4 * i, sizeof scales[g][i][lane]);
    for (int p = 0; p < 4; p++)
        for (int j = 0; j < 8; j++)
            memcpy(q[g][p][j][lane], in + qs_at + 32 * p + 4 * j, 4);
}

static void pack_q4_k(struct llamad_gemm_packed_q4_k *out, int g, int lane, const uint8_t *in)
{
    pack_q45_k(out->d, out->dmin, out->scales, out->q, g, lane, in, Q4_K_QS_AT);
}

static void pack_q5_k(struct llamad_gemm_packed_q5_k *out, int g, int lane, const uint8_t *in)
{
    pack_q45_k(out->d, out->dmin, out->scales, out->q, g, lane, in, Q5_K_QS_AT);
    for (int j = 0; j < 8; j++)
        memcpy(out->qh[g][j][lane], in + Q5_K_QH_AT + 4 * j, 4);
}

/* The unsigned value (0..63) of element e of a Q6_K block: in each half of 128,
 * quarter k's 32 elements take the low (k < 2) or high nibbles of ql[32 (k % 2)..]
 * and bits 2k, 2k + 1 of qh[0..31]. */
static uint8_t q6_k_value(const uint8_t *in, int e)
{
    const int half = e / 128, k = e % 128 / 32, l = e % 32;
    const uint8_t low = in[64 * half + 32 * (k % 2) + l];
    const uint8_t high = in[Q6_K_QH_AT + 32 * half + l];
    return (uint8_t)((k < 2 ? low & 0x0F : low >> 4) | (high >> 2 * k & 3) << 4);
}

static void pack_q6_k(struct llamad_gemm_packed_q6_k *out, int g, int lane, const uint8_t *in)
{
    uint8_t v[LLAMAD_QK_K];
    for (int e = 0; e < LLAMAD_QK_K; e++)
        v[e] = q6_k_value(in, e);
    memcpy(&out->d[g][lane], in + Q6_K_D_AT, sizeof out->d[g][lane]);
    for (int i = 0; i < 8; i++)
        memcpy(out->scales[g][i][lane], in + Q6_K_SCALES_AT + 2 * i, 2);
    for (int c = 0; c < 4; c++)
        for (int n = 0; n < 4; n++) {
            const uint8_t *chunk = v + 64 * c + n; /* value n of each dword of the chunk */
            for (int k = 0; k < 8; k++)            /* value dwords 16c + k and 16c + 8 + k */
                out->ql[g][c][k][lane][n] =
                    (uint8_t)((chunk[4 * k] & 0x0F) | (chunk[4 * (8 + k)] & 0x0F) << 4);
            for (int k = 0; k < 4; k++) {
                uint8_t top = 0;
                for (int i = 0; i < 4; i++)
                    top |= (uint8_t)(chunk[4 * (4 * i + k)] >> 4 << 2 * i);
                out->qh[g][c][k][lane][n] = top;
            }
        }
}

/* One row's block into its lane of a packed block. */
static void pack_block(uint32_t type, void *out, int g, int lane, const uint8_t *in)
{
    switch (type) {
    case LLAMAD_TYPE_Q8_0: pack_q8_0(out, g, lane, in); break;
    case LLAMAD_TYPE_Q4_0: pack_q4_0(out, g, lane, in); break;
    case LLAMAD_TYPE_Q4_K: pack_q4_k(out, g, lane, in); break;
    case LLAMAD_TYPE_Q5_K: pack_q5_k(out, g, lane, in); break;
    default: pack_q6_k(out, g, lane, in); break;
    }
}

void llamad_gemm_int8_pack(const struct llamad_weight *w, void *packed)
{
    const int64_t nb = w->cols / llamad_gemm_block_values(w->type);
    const size_t in_bytes = llamad_type_info(w->type)->block_bytes;
    const size_t out_bytes = llamad_gemm_packed_block_bytes(w->type);
    memset(packed, 0, llamad_gemm_int8_packed_bytes(w->type, w->rows, w->cols));
    for (int64_t r = 0; r < w->rows; r++) {
        const int g = (int)(r % LLAMAD_GEMM_PANEL_ROWS) / LLAMAD_GEMM_LANES;
        const int lane = (int)(r % LLAMAD_GEMM_LANES);
        uint8_t *panel = (uint8_t *)packed + (size_t)(r / LLAMAD_GEMM_PANEL_ROWS * nb) * out_bytes;
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int64_t b = 0; b < nb; b++)
            pack_block(w->type, panel + (size_t)b * out_bytes, g, lane, row + b * in_bytes);
    }
}
