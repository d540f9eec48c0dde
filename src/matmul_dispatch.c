#include "llamad/matmul_dispatch.h"

#include <stdlib.h>

#include "llamad/error.h"
#include "llamad/gemm.h"
#include "llamad/gemm_int8.h"

struct llamad_matmul_scratch {
    void *act; /* quantized activations for llamad_matmul */
    struct llamad_gemm_scratch *blas;
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
    int rc = llamad_gemm_scratch_create(n_threads, max_cols, 0, &s->blas, err, errsz);
    if (rc == LLAMAD_OK)
        rc = llamad_gemm_int8_scratch_create(n_threads, max_tokens, max_cols, 0, &s->int8, err,
                                             errsz);
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
    llamad_gemm_scratch_free(s->blas);
    llamad_gemm_int8_scratch_free(s->int8);
    free(s->act);
    free(s);
}

#define MAX_OUTS 8

void llamad_dispatch_matmul(struct llamad_threadpool *pool, struct llamad_matmul_scratch *s,
                            const float *x, int32_t n_tokens, const struct llamad_matmul_out *outs,
                            int n_outs)
{
    if (llamad_gemm_int8(pool, s->int8, x, n_tokens, outs, n_outs))
        return;
    /* Outputs OpenBLAS declines (a batch below its crossover) stay together, so
     * a Q/K/V group is still one parallel section of the row kernels. */
    struct llamad_matmul_out rest[MAX_OUTS];
    int n_rest = 0;
    if (n_outs > MAX_OUTS) {
        llamad_matmul(pool, x, n_tokens, outs, n_outs, s->act);
        return;
    }
    for (int o = 0; o < n_outs; o++)
        if (!llamad_gemm_blas(pool, s->blas, outs[o].w, x, n_tokens, outs[o].y, outs[o].w->rows))
            rest[n_rest++] = outs[o];
    if (n_rest > 0)
        llamad_matmul(pool, x, n_tokens, rest, n_rest, s->act);
}
