#include "llamad/kernels/matmul_dispatch.h"

#include <stdlib.h>

#include "llamad/base/error.h"
#include "llamad/kernels/gemm_float.h"
#include "llamad/kernels/gemm_int8.h"

struct llamad_matmul_scratch {
    void *act; /* quantized activations for llamad_matmul */
    struct llamad_gemm_int8_scratch *int8;
};

int llamad_matmul_scratch_create(int n_threads, int32_t max_tokens, int64_t max_cols,
                                 struct llamad_matmul_scratch **out, char *err, size_t errsz)
{
    *out = NULL;
    if (max_tokens < 1)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "matmul scratch: max_tokens %d",
                           (int)max_tokens);
    struct llamad_matmul_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    int rc =
        llamad_gemm_int8_scratch_create(n_threads, max_tokens, max_cols, 0, &s->int8, err, errsz);
    if (rc == LLAMAD_OK && !(s->act = malloc(llamad_matmul_scratch_bytes(max_tokens, max_cols))))
        rc = llamad_fail(err, errsz, LLAMAD_ENOMEM, "matmul scratch: %d tokens of %lld columns",
                         (int)max_tokens, (long long)max_cols);
    if (rc != LLAMAD_OK) {
        llamad_matmul_scratch_free(s);
        return rc;
    }
    *out = s;
    return LLAMAD_OK;
}

void llamad_matmul_scratch_free(struct llamad_matmul_scratch *s)
{
    if (!s)
        return;
    llamad_gemm_int8_scratch_free(s->int8);
    free(s->act);
    free(s);
}

size_t llamad_matmul_packed_bytes(const struct llamad_weight *w)
{
    if (llamad_gemm_int8_packs(w->type))
        return llamad_gemm_int8_packed_bytes(w->type, w->rows, w->cols);
    if (llamad_gemm_float_packs(w->type))
        return llamad_gemm_float_packed_bytes(w->type, w->rows, w->cols);
    return 0;
}

void llamad_matmul_pack(const struct llamad_weight *w, void *packed)
{
    if (llamad_gemm_int8_packs(w->type))
        llamad_gemm_int8_pack(w, packed);
    else
        llamad_gemm_float_pack(w, packed);
}

void llamad_dispatch_matmul(struct llamad_threadpool *pool, struct llamad_matmul_scratch *s,
                            const float *x, int32_t n_tokens, const struct llamad_matmul_out *outs,
                            int n_outs)
{
    if (llamad_gemm_int8(pool, s->int8, x, n_tokens, outs, n_outs))
        return;
    llamad_matmul(pool, x, n_tokens, outs, n_outs, s->act);
}
