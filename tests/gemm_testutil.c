#include "gemm_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/format/half.h"
#include "llamad/kernels/gemm_int8.h"
#include "testutil.h"

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "gemm_testutil: out of memory\n");
        abort();
    }
    return p;
}

bool gemm_test_is_k(uint32_t type)
{
    return type == LLAMAD_TYPE_Q4_K || type == LLAMAD_TYPE_Q5_K || type == LLAMAD_TYPE_Q6_K;
}

int64_t gemm_test_block_values(uint32_t type)
{
    return gemm_test_is_k(type) ? 256 : 32;
}

enum llamad_act_format gemm_test_format(uint32_t type)
{
    return gemm_test_is_k(type) ? LLAMAD_ACT_Q8K : LLAMAD_ACT_Q8;
}

/* A scale between -0.1 and 0.1, as the half-precision value a block stores. */
static uint16_t random_scale(void)
{
    return llamad_f32_to_f16(((float)(test_rand_u32() % 2001) - 1000.0f) / 10000.0f);
}

/* The byte or value of weights and activations made random. */
enum { RANDOM = 1000 };

/* A weight whose blocks' bytes are all `fill`, or random ones (RANDOM). */
static struct llamad_weight weight_of(uint32_t type, int64_t rows, int64_t cols, int fill)
{
    const size_t block = llamad_type_info(type)->block_bytes;
    const int64_t blocks = cols / gemm_test_block_values(type);
    const size_t row_bytes = (size_t)blocks * block;
    const size_t d_at = type == LLAMAD_TYPE_Q6_K ? 208 : 0;
    uint8_t *data = must(malloc((size_t)rows * row_bytes));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < blocks; b++) {
            uint8_t *p = data + (size_t)r * row_bytes + (size_t)b * block;
            for (size_t i = 0; i < block; i++)
                p[i] = (uint8_t)(fill == RANDOM ? test_rand_u32() : (uint32_t)fill);
            uint16_t d = random_scale(), dmin = random_scale();
            memcpy(p + d_at, &d, 2);
            if (type == LLAMAD_TYPE_Q4_K || type == LLAMAD_TYPE_Q5_K)
                memcpy(p + 2, &dmin, 2);
        }
    struct llamad_weight w = {
        .type = type, .rows = rows, .cols = cols, .row_bytes = row_bytes, .data = data};
    void *packed =
        must(aligned_alloc(64, (llamad_gemm_int8_packed_bytes(type, rows, cols) + 63) / 64 * 64));
    llamad_gemm_int8_pack(&w, packed);
    w.packed = packed;
    return w;
}

struct llamad_weight gemm_test_weight(uint32_t type, int64_t rows, int64_t cols)
{
    return weight_of(type, rows, cols, RANDOM);
}

struct llamad_weight gemm_test_weight_filled(uint32_t type, int64_t rows, int64_t cols,
                                             uint8_t fill)
{
    return weight_of(type, rows, cols, fill);
}

void gemm_test_weight_free(struct llamad_weight *w)
{
    free((void *)w->data);
    free((void *)w->packed);
}

/* Activations whose values are all `value`, or random ones (RANDOM). */
static struct gemm_test_acts activations_of(uint32_t type, int32_t n_tokens, int64_t cols,
                                            int value)
{
    const enum llamad_act_format f = gemm_test_format(type);
    struct gemm_test_acts a = {NULL, llamad_act_row_bytes(f, cols)};
    a.x = must(malloc((size_t)n_tokens * a.row_bytes));
    const int64_t n = n_tokens * (cols / gemm_test_block_values(type));
    for (int64_t b = 0; b < n; b++) {
        int8_t qs[256];
        for (int i = 0; i < gemm_test_block_values(type); i++)
            qs[i] = (int8_t)(value == RANDOM ? (int)(test_rand_u32() % 255) - 127 : value);
        const float d = llamad_f16_to_f32(random_scale());
        if (f == LLAMAD_ACT_Q8K) {
            struct llamad_q8k_block *x = (struct llamad_q8k_block *)a.x + b;
            x->d = d;
            memcpy(x->qs, qs, sizeof x->qs);
            for (int i = 0; i < 16; i++) {
                x->bsums[i] = 0;
                for (int l = 0; l < 16; l++)
                    x->bsums[i] = (int16_t)(x->bsums[i] + qs[16 * i + l]);
            }
        } else {
            struct llamad_q8_block *x = (struct llamad_q8_block *)a.x + b;
            x->d = d;
            memcpy(x->qs, qs, sizeof x->qs);
            x->sum = 0;
            for (int i = 0; i < 32; i++)
                x->sum += qs[i];
        }
    }
    return a;
}

struct gemm_test_acts gemm_test_activations(uint32_t type, int32_t n_tokens, int64_t cols)
{
    return activations_of(type, n_tokens, cols, RANDOM);
}

struct gemm_test_acts gemm_test_activations_filled(uint32_t type, int32_t n_tokens, int64_t cols,
                                                   int8_t value)
{
    return activations_of(type, n_tokens, cols, value);
}
