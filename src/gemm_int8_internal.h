/* What the int8 GEMM files share. Private to src/gemm_int8*.c. */
#ifndef LLAMAD_GEMM_INT8_INTERNAL_H
#define LLAMAD_GEMM_INT8_INTERNAL_H

#include "llamad/gemm_int8.h"

/* gemm_int8_vnni.c: the AVX-512 VNNI kernels of `type`, or NULL when this CPU
 * lacks VNNI or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_vnni(uint32_t type);

/* gemm_int8_amx.c: the AMX kernels of `type`, or NULL when this CPU lacks AMX,
 * Linux does not grant this process the tile state, or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_amx(uint32_t type);

/* The fast kernels' panels: 32 weight rows as two groups of 16, block by block. */
enum { LLAMAD_GEMM_LANES = 16, LLAMAD_GEMM_GROUPS = 2 };
#define LLAMAD_GEMM_PANEL_ROWS (LLAMAD_GEMM_LANES * LLAMAD_GEMM_GROUPS)

/* One 32-value block of a group: the 16 rows' scales, and q[j][row] the row's
 * values 4j..4j+3, which is both the lanes of vpdpbusd and an AMX B tile. */
struct llamad_gemm_panel_block {
    float d[LLAMAD_GEMM_LANES];
    uint8_t q[LLAMAD_Q8_BLOCK / 4][LLAMAD_GEMM_LANES][4];
};

/* Bytes of a panel of weights `cols` wide. */
size_t llamad_gemm_panel_bytes(int64_t cols);

/* Which lanes of each group of the panel at p0 hold rows below r1. */
void llamad_gemm_live_lanes(int64_t p0, int64_t r1, uint16_t live[LLAMAD_GEMM_GROUPS]);

/* The rows of the panel at p0 that `live` marks into panel[b * GROUPS + g], every
 * Q8_0 byte plus q8_add and every Q4_0 nibble plus q4_add (mod 256); the other
 * lanes get zero scales. Runs on CPUs with AVX-512 (F, BW) and F16C only
 * (gemm_int8_vnni.c). */
void llamad_gemm_pack_panel(const struct llamad_weight *w, int64_t p0,
                            const uint16_t live[LLAMAD_GEMM_GROUPS], uint8_t q8_add,
                            uint8_t q4_add, struct llamad_gemm_panel_block *panel);

#endif
