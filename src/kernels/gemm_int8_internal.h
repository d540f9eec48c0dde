/* What the int8 GEMM files share. Private to src/gemm_int8*.c. */
#ifndef LLAMAD_GEMM_INT8_INTERNAL_H
#define LLAMAD_GEMM_INT8_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "llamad/kernels/gemm_int8.h"

/* gemm_int8_vnni.c: the AVX-512 VNNI kernels of `type`, or NULL when this CPU
 * lacks VNNI or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_vnni(uint32_t type);

/* gemm_int8_amx.c: the AMX kernels of `type`, or NULL when this CPU lacks AMX,
 * Linux does not grant this process the tile state, or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_amx(uint32_t type);

/* A panel is 32 weight rows as two groups of 16, the 16 lanes of a vector. */
enum { LLAMAD_GEMM_LANES = 16, LLAMAD_GEMM_GROUPS = 2 };
#define LLAMAD_GEMM_PANEL_ROWS (LLAMAD_GEMM_LANES * LLAMAD_GEMM_GROUPS)

/* The packed weights (llamad_gemm_int8_pack): panel after panel, each one block
 * (32 values) after another. A block holds both groups' half-precision scales
 * (d[g][lane], 64 bytes) and then their values, q[g][j][lane] holding values
 * 4j..4j+3 of the lane's row: the operand of vpdpbusd, and 64-byte aligned.
 * Q8_0 values are stored plus 128, so unsigned; Q4_0 blocks keep their bytes
 * (low nibble value i, high nibble value 16 + i, both value + 8): q[g][j] has
 * values 4j.. in its low and 16 + 4j.. in its high nibbles. Rows past the
 * weight's last have zero scales and values. */
struct llamad_gemm_packed_q8_0 {
    uint16_t d[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint8_t q[LLAMAD_GEMM_GROUPS][LLAMAD_Q8_BLOCK / 4][LLAMAD_GEMM_LANES][4];
};

struct llamad_gemm_packed_q4_0 {
    uint16_t d[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint8_t q[LLAMAD_GEMM_GROUPS][LLAMAD_Q8_BLOCK / 8][LLAMAD_GEMM_LANES][4];
};

/* Bytes of one packed block: Q8_0 (q8) or Q4_0. Inline, so a kernel compiled
 * for one type gets a constant. */
static inline size_t llamad_gemm_packed_block_bytes(bool q8)
{
    return q8 ? sizeof(struct llamad_gemm_packed_q8_0) : sizeof(struct llamad_gemm_packed_q4_0);
}

/* The packed panel of w that holds row r (r a multiple of the panel's rows). */
const uint8_t *llamad_gemm_packed_panel(const struct llamad_weight *w, int64_t r);

/* Which lanes of each group of the panel at p0 hold rows below r1. */
void llamad_gemm_live_lanes(int64_t p0, int64_t r1, uint16_t live[LLAMAD_GEMM_GROUPS]);

#endif
