/* Byte offsets and sizes inside one 256-element K-quant block, shared by the
 * reference (quant_k.c, quant_act_k.c) and fast (quant_act_k_x86.c) kernels.
 * Q4_K: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128] (144 bytes).
 * Q5_K: as Q4_K with uint8 qh[32] between scales and qs (176 bytes).
 * Q6_K: uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d (210 bytes). */
#ifndef LLAMAD_QUANT_K_LAYOUT_H
#define LLAMAD_QUANT_K_LAYOUT_H

enum {
    QK_K = 256,
    K_SUB = 32,     /* elements per scale and min of Q4_K and Q5_K */
    K_N_SUB = 8,    /* sub-blocks per Q4_K / Q5_K block */
    SCALES_AT = 4,  /* Q4_K / Q5_K: offset of scales[12] */
    Q4_K_QS_AT = 16,
    Q4_K_BYTES = 144,
    Q5_K_QH_AT = 16,
    Q5_K_QS_AT = 48,
    Q5_K_BYTES = 176,
    Q6_K_QH_AT = 128,
    Q6_K_SCALES_AT = 192,
    Q6_K_D_AT = 208,
    Q6_K_BYTES = 210,
};

#endif
