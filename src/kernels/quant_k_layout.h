/* Byte offsets inside one K-quant block (LLAMAD_QK_K elements; the blocks' sizes
 * are in llamad/format/types.h), shared by the reference (quant_k.c,
 * quant_act_k.c) and fast (quant_act_k_x86.c) kernels.
 * Q4_K: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128].
 * Q5_K: as Q4_K with uint8 qh[32] between scales and qs.
 * Q6_K: uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d. */
#ifndef LLAMAD_QUANT_K_LAYOUT_H
#define LLAMAD_QUANT_K_LAYOUT_H

#include "llamad/format/types.h"

enum {
    K_SUB = 32,                    /* elements per scale and min of Q4_K and Q5_K */
    K_N_SUB = LLAMAD_QK_K / K_SUB, /* sub-blocks per Q4_K / Q5_K block */
    SCALES_AT = 4,                 /* Q4_K / Q5_K: offset of scales[12] */
    Q4_K_QS_AT = 16,
    Q5_K_QH_AT = 16,
    Q5_K_QS_AT = 48,
    Q6_K_QH_AT = 128,
    Q6_K_SCALES_AT = 192,
    Q6_K_D_AT = 208,
};

#endif
