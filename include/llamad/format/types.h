/* Tensor element types, numbered as GGUF files number them (ggml's type ids).
 *
 * The table knows the block geometry of every type a GGUF file may carry, so the
 * reader can check tensor sizes for all of them; which types llamad can compute
 * with is a separate question (see quant.h: llamad_type_computable). */
#ifndef LLAMAD_TYPES_H
#define LLAMAD_TYPES_H

#include <stdbool.h>
#include <stdint.h>

enum llamad_type {
    LLAMAD_TYPE_F32 = 0,
    LLAMAD_TYPE_F16 = 1,
    LLAMAD_TYPE_Q4_0 = 2,
    LLAMAD_TYPE_Q4_1 = 3,
    LLAMAD_TYPE_Q5_0 = 6,
    LLAMAD_TYPE_Q5_1 = 7,
    LLAMAD_TYPE_Q8_0 = 8,
    LLAMAD_TYPE_Q8_1 = 9,
    LLAMAD_TYPE_Q2_K = 10,
    LLAMAD_TYPE_Q3_K = 11,
    LLAMAD_TYPE_Q4_K = 12,
    LLAMAD_TYPE_Q5_K = 13,
    LLAMAD_TYPE_Q6_K = 14,
    LLAMAD_TYPE_Q8_K = 15,
    LLAMAD_TYPE_IQ2_XXS = 16,
    LLAMAD_TYPE_IQ2_XS = 17,
    LLAMAD_TYPE_IQ3_XXS = 18,
    LLAMAD_TYPE_IQ1_S = 19,
    LLAMAD_TYPE_IQ4_NL = 20,
    LLAMAD_TYPE_IQ3_S = 21,
    LLAMAD_TYPE_IQ2_S = 22,
    LLAMAD_TYPE_IQ4_XS = 23,
    LLAMAD_TYPE_I8 = 24,
    LLAMAD_TYPE_I16 = 25,
    LLAMAD_TYPE_I32 = 26,
    LLAMAD_TYPE_I64 = 27,
    LLAMAD_TYPE_F64 = 28,
    LLAMAD_TYPE_IQ1_M = 29,
    LLAMAD_TYPE_BF16 = 30,
    LLAMAD_TYPE_TQ1_0 = 34,
    LLAMAD_TYPE_TQ2_0 = 35,
    LLAMAD_TYPE_ID_LIMIT = 36 /* one past the largest id the table can hold */
};

/* The blocks of the quantized types llamad computes with: elements and bytes per
 * block, for code that needs them as constants (strides, array sizes). The type
 * table below is built from them, so each number has this one home. */
#define LLAMAD_QK8_0 32 /* Q8_0: half d, int8 qs[32] */
#define LLAMAD_Q8_0_BYTES 34
#define LLAMAD_QK4_0 32 /* Q4_0: half d, 16 bytes of two 4-bit values each */
#define LLAMAD_Q4_0_BYTES 18
#define LLAMAD_QK_K 256       /* the K-quants' super-block */
#define LLAMAD_Q4_K_BYTES 144 /* half d, half dmin, 12 bytes of scales, 128 of values */
#define LLAMAD_Q5_K_BYTES 176 /* Q4_K's with 32 bytes of fifth bits */
#define LLAMAD_Q6_K_BYTES 210 /* 128 + 64 bytes of values, 16 int8 scales, half d */

struct llamad_type_info {
    const char *name;     /* "F32", "Q4_0", ... */
    uint32_t block_elems; /* elements per block (1 for plain types) */
    uint32_t block_bytes; /* bytes per block */
};

/* The geometry of type id `type`, or NULL when the id is not a known type. */
const struct llamad_type_info *llamad_type_info(uint32_t type);

/* Name of a type id, "unknown" for ids not in the table. */
const char *llamad_type_name(uint32_t type);

/* Type names as options spell them: the table's names in lower case ("f16",
 * "q8_0"). llamad_type_parse gives the id so named (false for any other name,
 * upper case included); llamad_type_lower_name writes a type's name so spelled
 * into out, LLAMAD_TYPE_NAME_MAX bytes ("unknown" for ids not in the table). */
#define LLAMAD_TYPE_NAME_MAX 8
bool llamad_type_parse(const char *name, uint32_t *type);
void llamad_type_lower_name(uint32_t type, char out[LLAMAD_TYPE_NAME_MAX]);

/* Bytes that n_elems elements of `type` take; false if the type is unknown, n_elems
 * is not a whole number of blocks, or the result overflows. */
bool llamad_type_bytes(uint32_t type, uint64_t n_elems, uint64_t *bytes);

#endif
