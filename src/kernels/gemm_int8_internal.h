/* What the int8 GEMM files share. Private to src/gemm_int8*.c. */
#ifndef LLAMAD_GEMM_INT8_INTERNAL_H
#define LLAMAD_GEMM_INT8_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "llamad/format/types.h"
#include "llamad/kernels/gemm_int8.h"

/* gemm_int8_vnni.c: the AVX-512 VNNI kernels of `type`, or NULL when this CPU
 * lacks VNNI or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_vnni(uint32_t type);

/* gemm_int8_amx.c: the AMX kernels of `type`, or NULL when this CPU lacks AMX,
 * Linux does not grant this process the tile state, or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_amx(uint32_t type);

/* gemm_int8_k_vnni.c: the AVX-512 VNNI kernels of the K-quant `type` (Q4_K,
 * Q5_K, Q6_K), or NULL. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_k_vnni(uint32_t type);

/* gemm_int8_avx2.c: the AVX2 kernels of `type` (Q8_0, Q4_0, and the K-quants'
 * of gemm_int8_k_avx2.c), or NULL when this CPU lacks AVX2 or the type has none. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_avx2(uint32_t type);

/* gemm_int8_k_avx2.c: the AVX2 kernels of the K-quant `type` (Q4_K, Q5_K,
 * Q6_K), or NULL. */
const struct llamad_gemm_int8_kernels *llamad_gemm_int8_k_avx2(uint32_t type);

/* A panel is 32 weight rows as two groups of 16, the 16 lanes of a vector. */
enum { LLAMAD_GEMM_LANES = 16, LLAMAD_GEMM_GROUPS = 2 };
#define LLAMAD_GEMM_PANEL_ROWS (LLAMAD_GEMM_LANES * LLAMAD_GEMM_GROUPS)

/* The packed weights (llamad_gemm_int8_pack): panel after panel, each one block
 * (32 values; 256 for the K-quants) after another. A block holds both groups'
 * half-precision scales (d[g][lane], 64 bytes) and then their values, q[g][j][lane]
 * holding values 4j..4j+3 of the lane's row: the operand of vpdpbusd, and 64-byte
 * aligned. Q8_0 values are stored plus 128, so unsigned; Q4_0 blocks keep their
 * bytes (low nibble value i, high nibble value 16 + i, both value + 8): q[g][j] has
 * values 4j.. in its low and 16 + 4j.. in its high nibbles. Rows past the weight's
 * last have zero scales and values. */
struct llamad_gemm_packed_q8_0 {
    uint16_t d[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint8_t q[LLAMAD_GEMM_GROUPS][LLAMAD_Q8_BLOCK / 4][LLAMAD_GEMM_LANES][4];
};

struct llamad_gemm_packed_q4_0 {
    uint16_t d[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint8_t q[LLAMAD_GEMM_GROUPS][LLAMAD_Q8_BLOCK / 8][LLAMAD_GEMM_LANES][4];
};

/* Q4_K keeps each row's bytes, rearranged: d and dmin as vectors, the three
 * 32-bit words of the row's 12 bytes of 6-bit scales and mins (unpacked in
 * registers, 16 rows at a time), and q[g][p][j][lane] = qs bytes 32p + 4j..+3:
 * values 4j.. of sub-block 2p in the low and of 2p + 1 in the high nibbles. */
struct llamad_gemm_packed_q4_k {
    uint16_t d[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint16_t dmin[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint32_t scales[LLAMAD_GEMM_GROUPS][3][LLAMAD_GEMM_LANES];
    uint8_t q[LLAMAD_GEMM_GROUPS][4][8][LLAMAD_GEMM_LANES][4];
};

/* Q5_K as Q4_K, with qh[g][j][lane] = the row's qh bytes 4j..4j+3: bit s of each
 * is bit 4 of that value of sub-block s. */
struct llamad_gemm_packed_q5_k {
    uint16_t d[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint16_t dmin[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    uint32_t scales[LLAMAD_GEMM_GROUPS][3][LLAMAD_GEMM_LANES];
    uint8_t qh[LLAMAD_GEMM_GROUPS][8][LLAMAD_GEMM_LANES][4];
    uint8_t q[LLAMAD_GEMM_GROUPS][4][8][LLAMAD_GEMM_LANES][4];
};

/* Q6_K, its unsigned 6-bit values (value + 32) split into low nibbles and top
 * two bits. In chunk c (values 64c..64c+63, sub-blocks 4c..4c+3 of 16 values),
 * ql[g][c][k] holds value dword 16c + k (values 4(16c + k)..+3) in its low and
 * 16c + 8 + k in its high nibbles; qh[g][c][k] holds the top bits of value dword
 * 16c + 4i + k in bits 2i, 2i + 1 of each byte. scales[g][i][lane] are the
 * int8 scales of sub-blocks 2i and 2i + 1. */
struct llamad_gemm_packed_q6_k {
    uint16_t d[LLAMAD_GEMM_GROUPS][LLAMAD_GEMM_LANES];
    int8_t scales[LLAMAD_GEMM_GROUPS][8][LLAMAD_GEMM_LANES][2];
    uint8_t ql[LLAMAD_GEMM_GROUPS][4][8][LLAMAD_GEMM_LANES][4];
    uint8_t qh[LLAMAD_GEMM_GROUPS][4][4][LLAMAD_GEMM_LANES][4];
};

/* Values per block of `type` (32, or 256 for the K-quants) and bytes of one
 * packed block. Inline, so a kernel compiled for one type gets constants. */
static inline int64_t llamad_gemm_block_values(uint32_t type)
{
    return type == LLAMAD_TYPE_Q4_K || type == LLAMAD_TYPE_Q5_K || type == LLAMAD_TYPE_Q6_K
               ? LLAMAD_QK_K
               : LLAMAD_Q8_BLOCK;
}

static inline size_t llamad_gemm_packed_block_bytes(uint32_t type)
{
    switch (type) {
    case LLAMAD_TYPE_Q8_0: return sizeof(struct llamad_gemm_packed_q8_0);
    case LLAMAD_TYPE_Q4_0: return sizeof(struct llamad_gemm_packed_q4_0);
    case LLAMAD_TYPE_Q4_K: return sizeof(struct llamad_gemm_packed_q4_k);
    case LLAMAD_TYPE_Q5_K: return sizeof(struct llamad_gemm_packed_q5_k);
    default: return sizeof(struct llamad_gemm_packed_q6_k);
    }
}

/* A batch's last tokens, fewer than the VNNI kernels' tile of 8, in one pass:
 * PASS(n) for their count n, a constant in each case, so that each pass is
 * compiled for its count. */
#define LLAMAD_GEMM_REST_PASS(rest, PASS)                                                          \
    switch (rest) {                                                                                \
    case 7: PASS(7); break;                                                                        \
    case 6: PASS(6); break;                                                                        \
    case 5: PASS(5); break;                                                                        \
    case 4: PASS(4); break;                                                                        \
    case 3: PASS(3); break;                                                                        \
    case 2: PASS(2); break;                                                                        \
    case 1: PASS(1); break;                                                                        \
    default: break;                                                                                \
    }

/* work_bytes of the kernels that need no work buffer. */
size_t llamad_gemm_no_work(int64_t cols, int32_t max_tokens);

/* The packed panel of w that holds row r (r a multiple of the panel's rows). */
const uint8_t *llamad_gemm_packed_panel(const struct llamad_weight *w, int64_t r);

/* Which lanes of each group of the panel at p0 hold rows below r1. */
void llamad_gemm_live_lanes(int64_t p0, int64_t r1, uint16_t live[LLAMAD_GEMM_GROUPS]);

#endif
