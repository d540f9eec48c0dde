/* Q8_0 and Q4_0 weights repacked, once at load, into the panels the fast int8
 * kernels read (the layout is described in gemm_int8_internal.h): each kernel
 * then streams one panel after another through memory instead of gathering 32
 * rows' blocks on every call. */
#include <stdbool.h>
#include <string.h>

#include "gemm_int8_internal.h"
#include "llamad/format/types.h"

size_t llamad_gemm_int8_packed_bytes(uint32_t type, int64_t rows, int64_t cols)
{
    const size_t panels = (size_t)((rows + LLAMAD_GEMM_PANEL_ROWS - 1) / LLAMAD_GEMM_PANEL_ROWS);
    return panels * (size_t)(cols / LLAMAD_Q8_BLOCK) *
           llamad_gemm_packed_block_bytes(type == LLAMAD_TYPE_Q8_0);
}

const uint8_t *llamad_gemm_packed_panel(const struct llamad_weight *w, int64_t r)
{
    const size_t panel_bytes = (size_t)(w->cols / LLAMAD_Q8_BLOCK) *
                               llamad_gemm_packed_block_bytes(w->type == LLAMAD_TYPE_Q8_0);
    return (const uint8_t *)w->packed + (size_t)(r / LLAMAD_GEMM_PANEL_ROWS) * panel_bytes;
}

void llamad_gemm_live_lanes(int64_t p0, int64_t r1, uint16_t live[LLAMAD_GEMM_GROUPS])
{
    for (int g = 0; g < LLAMAD_GEMM_GROUPS; g++) {
        const int64_t n = r1 - p0 - g * LLAMAD_GEMM_LANES;
        live[g] = (uint16_t)(n <= 0 ? 0 : n >= LLAMAD_GEMM_LANES ? 0xFFFF : (1u << n) - 1);
    }
}

/* One row's block into its lane of a packed block. */
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

void llamad_gemm_int8_pack(const struct llamad_weight *w, void *packed)
{
    const int64_t nb = w->cols / LLAMAD_Q8_BLOCK;
    const bool q8 = w->type == LLAMAD_TYPE_Q8_0;
    const size_t in_bytes = llamad_type_info(w->type)->block_bytes;
    const size_t out_bytes = llamad_gemm_packed_block_bytes(q8);
    memset(packed, 0, llamad_gemm_int8_packed_bytes(w->type, w->rows, w->cols));
    for (int64_t r = 0; r < w->rows; r++) {
        const int g = (int)(r % LLAMAD_GEMM_PANEL_ROWS) / LLAMAD_GEMM_LANES;
        const int lane = (int)(r % LLAMAD_GEMM_LANES);
        uint8_t *panel = (uint8_t *)packed + (size_t)(r / LLAMAD_GEMM_PANEL_ROWS * nb) * out_bytes;
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int64_t b = 0; b < nb; b++) {
            if (q8)
                pack_q8_0((void *)(panel + (size_t)b * out_bytes), g, lane, row + b * in_bytes);
            else
                pack_q4_0((void *)(panel + (size_t)b * out_bytes), g, lane, row + b * in_bytes);
        }
    }
}
