/* The float GEMM's packing, its plain reference, and the choice of kernel. */
#include "llamad/kernels/gemm_float.h"

#include <math.h>
#include <string.h>

#include "gemm_float_internal.h"
#include "llamad/format/types.h"
#include "llamad/kernels/quant.h"

/* Bytes of one element of a float type (F32, F16, BF16: blocks of one), 0 for
 * any other type. */
static int elem_bytes(uint32_t type)
{
    const bool is_float =
        type == LLAMAD_TYPE_F32 || type == LLAMAD_TYPE_F16 || type == LLAMAD_TYPE_BF16;
    return is_float ? (int)llamad_type_info(type)->block_bytes : 0;
}

/* Element k of a row of `type` as a float. */
static float elem_at(uint32_t type, const uint8_t *row, int64_t k)
{
    float v;
    llamad_dequantize_row_ref(type, row + (size_t)k * (size_t)elem_bytes(type), &v, 1);
    return v;
}

/* The arithmetic of gemm_float.h as it reads: one fmaf per column, in order. */
static void rows_ref(const struct llamad_weight *w, int64_t r0, int64_t r1, const float *x,
                     int32_t n_tokens, float *y, int64_t y_stride)
{
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int32_t t = 0; t < n_tokens; t++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < w->cols; k++)
                acc = fmaf(elem_at(w->type, row, k), x[(int64_t)t * w->cols + k], acc);
            y[(int64_t)t * y_stride + r] = acc;
        }
    }
}

/* The kernel of `type` in one set (NULL: the set does not run here). */
static llamad_gemm_float_fn of_type(const struct llamad_gemm_float_set *set, uint32_t type)
{
    if (!set)
        return NULL;
    return type == LLAMAD_TYPE_F32    ? set->f32
           : type == LLAMAD_TYPE_F16  ? set->f16
           : type == LLAMAD_TYPE_BF16 ? set->bf16
                                      : NULL;
}

llamad_gemm_float_fn llamad_gemm_float_variant(uint32_t type, const char *isa)
{
    if (!strcmp(isa, "scalar"))
        return elem_bytes(type) ? rows_ref : NULL;
    if (!strcmp(isa, "avx2"))
        return of_type(llamad_gemm_float_avx2(), type);
    if (!strcmp(isa, "avx512"))
        return of_type(llamad_gemm_float_avx512(), type);
    return NULL;
}

llamad_gemm_float_fn llamad_gemm_float_for(uint32_t type)
{
    llamad_gemm_float_fn fast = of_type(llamad_gemm_float_avx512(), type);
    return fast ? fast : of_type(llamad_gemm_float_avx2(), type);
}

bool llamad_gemm_float_packs(uint32_t type)
{
    return llamad_gemm_float_for(type) != NULL;
}

size_t llamad_gemm_float_packed_bytes(uint32_t type, int64_t rows, int64_t cols)
{
    const int64_t panels = (rows + LLAMAD_GEMM_FLOAT_PANEL - 1) / LLAMAD_GEMM_FLOAT_PANEL;
    return (size_t)panels * llamad_gemm_float_panel_bytes(cols, elem_bytes(type));
}

void llamad_gemm_float_pack(const struct llamad_weight *w, void *packed)
{
    const int eb = elem_bytes(w->type);
    const size_t panel_bytes = llamad_gemm_float_panel_bytes(w->cols, eb);
    memset(packed, 0, llamad_gemm_float_packed_bytes(w->type, w->rows, w->cols));
    for (int64_t r = 0; r < w->rows; r++) {
        uint8_t *panel = (uint8_t *)packed + (size_t)(r / LLAMAD_GEMM_FLOAT_PANEL) * panel_bytes;
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        const size_t lane = (size_t)(r % LLAMAD_GEMM_FLOAT_PANEL);
        for (int64_t k = 0; k < w->cols; k++)
            memcpy(panel + ((size_t)k * LLAMAD_GEMM_FLOAT_PANEL + lane) * (size_t)eb,
                   row + (size_t)k * (size_t)eb, (size_t)eb);
    }
}

void llamad_gemm_float_rows(const struct llamad_weight *w, int64_t r0, int64_t r1, const float *x,
                            int32_t n_tokens, float *y, int64_t y_stride)
{
    llamad_gemm_float_for(w->type)(w, r0, r1, x, n_tokens, y, y_stride);
}
