#include "llamad/format/types.h"

#include <ctype.h>
#include <stddef.h>

/* The sizes of types.h, from their blocks' layouts. */
_Static_assert(LLAMAD_Q8_0_BYTES == 2 + LLAMAD_QK8_0, "Q8_0: a half, then a byte a value");
_Static_assert(LLAMAD_Q4_0_BYTES == 2 + LLAMAD_QK4_0 / 2, "Q4_0: a half, then 4 bits a value");
_Static_assert(LLAMAD_Q4_K_BYTES == 2 + 2 + 12 + LLAMAD_QK_K / 2, "Q4_K: d, dmin, scales, values");
_Static_assert(LLAMAD_Q5_K_BYTES == LLAMAD_Q4_K_BYTES + LLAMAD_QK_K / 8, "Q5_K: Q4_K's and a bit");
_Static_assert(LLAMAD_Q6_K_BYTES == LLAMAD_QK_K / 2 + LLAMAD_QK_K / 4 + LLAMAD_QK_K / 16 + 2,
               "Q6_K: 4 + 2 bits a value, an int8 scale per 16 values, a half");

/* Block geometry of ggml's types (GGUF tensor type ids). Ids 4, 5 and 31-33 were
 * retired by ggml and are left empty. */
static const struct llamad_type_info type_table[LLAMAD_TYPE_ID_LIMIT] = {
    [LLAMAD_TYPE_F32] = {"F32", 1, 4},
    [LLAMAD_TYPE_F16] = {"F16", 1, 2},
    [LLAMAD_TYPE_Q4_0] = {"Q4_0", LLAMAD_QK4_0, LLAMAD_Q4_0_BYTES},
    [LLAMAD_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [LLAMAD_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [LLAMAD_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [LLAMAD_TYPE_Q8_0] = {"Q8_0", LLAMAD_QK8_0, LLAMAD_Q8_0_BYTES},
    [LLAMAD_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [LLAMAD_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [LLAMAD_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [LLAMAD_TYPE_Q4_K] = {"Q4_K", LLAMAD_QK_K, LLAMAD_Q4_K_BYTES},
    [LLAMAD_TYPE_Q5_K] = {"Q5_K", LLAMAD_QK_K, LLAMAD_Q5_K_BYTES},
    [LLAMAD_TYPE_Q6_K] = {"Q6_K", LLAMAD_QK_K, LLAMAD_Q6_K_BYTES},
    [LLAMAD_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [LLAMAD_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [LLAMAD_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [LLAMAD_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [LLAMAD_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [LLAMAD_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
    [LLAMAD_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [LLAMAD_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
    [LLAMAD_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [LLAMAD_TYPE_I8] = {"I8", 1, 1},
    [LLAMAD_TYPE_I16] = {"I16", 1, 2},
    [LLAMAD_TYPE_I32] = {"I32", 1, 4},
    [LLAMAD_TYPE_I64] = {"I64", 1, 8},
    [LLAMAD_TYPE_F64] = {"F64", 1, 8},
    [LLAMAD_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [LLAMAD_TYPE_BF16] = {"BF16", 1, 2},
    [LLAMAD_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [LLAMAD_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
};

const struct llamad_type_info *llamad_type_info(uint32_t type)
{
    if (type >= LLAMAD_TYPE_ID_LIMIT || type_table[type].name == NULL)
        return NULL;
    return &type_table[type];
}

const char *llamad_type_name(uint32_t type)
{
    const struct llamad_type_info *ti = llamad_type_info(type);
    return ti ? ti->name : "unknown";
}

/* Whether `name` is `known` in lower case. */
static bool is_lower_name(const char *name, const char *known)
{
    for (; *known; name++, known++)
        if (*name != (char)tolower((unsigned char)*known))
            return false;
    return *name == '\0';
}

bool llamad_type_parse(const char *name, uint32_t *type)
{
    for (uint32_t t = 0; t < LLAMAD_TYPE_ID_LIMIT; t++)
        if (type_table[t].name && is_lower_name(name, type_table[t].name)) {
            *type = t;
            return true;
        }
    return false;
}

void llamad_type_lower_name(uint32_t type, char out[LLAMAD_TYPE_NAME_MAX])
{
    const char *name = llamad_type_name(type);
    size_t i = 0;
    for (; name[i] && i < LLAMAD_TYPE_NAME_MAX - 1; i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    out[i] = '\0';
}

bool llamad_type_bytes(uint32_t type, uint64_t n_elems, uint64_t *bytes)
{
    const struct llamad_type_info *ti = llamad_type_info(type);
    if (!ti || n_elems % ti->block_elems != 0)
        return false;
    uint64_t blocks = n_elems / ti->block_elems;
    if (blocks > UINT64_MAX / ti->block_bytes)
        return false;
    *bytes = blocks * ti->block_bytes;
    return true;
}
