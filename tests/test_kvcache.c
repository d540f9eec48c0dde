/* The KV cache hands out blocks from one pool, gives them back on truncate and
 * release, and refuses what would exceed the context or the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/error.h"
#include "llamad/kvcache.h"

static const struct llamad_hparams hp = {
    .n_vocab = 10, .n_embd = 8, .n_layer = 2, .n_head = 2, .n_head_kv = 1, .head_dim = 4,
    .n_ff = 16, .n_ctx_train = 64, .n_rot = 4, .rope_base = 10000.0f, .rms_eps = 1e-5f};

static struct llamad_kvcache *make(int32_t n_blocks, int32_t max_seqs, int32_t n_ctx)
{
    struct llamad_kvcache_params p = {4, n_blocks, max_seqs, n_ctx};
    struct llamad_kvcache *kv = NULL;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_kvcache_create(&hp, &p, &kv, err, sizeof err), LLAMAD_OK);
    return kv;
}

static void test_block_geometry(void **state)
{
    (void)state;
    /* 2 layers x (K + V) x 4 positions x kv_dim 4 floats */
    assert_int_equal(llamad_kvcache_block_bytes(&hp, 4), 2 * 2 * 4 * 4 * sizeof(float));
    struct llamad_kvcache *kv = make(3, 2, 12);
    float *k0 = llamad_kvcache_rows(kv, 1, 0, 0), *v0 = llamad_kvcache_rows(kv, 1, 0, 1);
    float *k1 = llamad_kvcache_rows(kv, 1, 1, 0);
    assert_ptr_equal(v0, k0 + 4 * 4);
    assert_ptr_equal(k1, k0 + 2 * 4 * 4);
    assert_ptr_equal(llamad_kvcache_rows(kv, 2, 0, 0), k0 + kv->block_floats);
    llamad_kvcache_free(kv);
}

static void test_reserve_truncate_release(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(4, 2, 16);
    char err[LLAMAD_ERR_MAX];
    int32_t a, b;
    assert_int_equal(llamad_kvcache_seq_new(kv, &a, err, sizeof err), LLAMAD_OK);
    assert_int_equal(llamad_kvcache_seq_new(kv, &b, err, sizeof err), LLAMAD_OK);
    assert_int_not_equal(a, b);

    assert_int_equal(llamad_kvcache_seq_reserve(kv, a, 5, err, sizeof err), LLAMAD_OK);
    assert_int_equal(kv->seqs[a].n_blocks, 2);
    assert_int_equal(kv->n_free, 2);
    /* Reserving less than what is held changes nothing. */
    assert_int_equal(llamad_kvcache_seq_reserve(kv, a, 3, err, sizeof err), LLAMAD_OK);
    assert_int_equal(kv->n_free, 2);

    /* b wants 3 blocks, only 2 are free: refused, nothing taken. */
    assert_int_equal(llamad_kvcache_seq_reserve(kv, b, 9, err, sizeof err), LLAMAD_ERANGE);
    assert_non_null(strstr(err, "KV cache full"));
    assert_int_equal(kv->n_free, 2);
    assert_int_equal(kv->seqs[b].n_blocks, 0);

    kv->seqs[a].len = 5;
    llamad_kvcache_seq_truncate(kv, a, 4);
    assert_int_equal(kv->seqs[a].len, 4);
    assert_int_equal(kv->seqs[a].n_blocks, 1);
    assert_int_equal(kv->n_free, 3);
    assert_int_equal(llamad_kvcache_seq_reserve(kv, b, 9, err, sizeof err), LLAMAD_OK);

    llamad_kvcache_seq_release(kv, a);
    assert_false(llamad_kvcache_seq_valid(kv, a));
    assert_int_equal(kv->n_free, 1);
    llamad_kvcache_seq_release(kv, b);
    assert_int_equal(kv->n_free, 4);
    llamad_kvcache_free(kv);
}

static void test_limits(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(8, 1, 10);
    char err[LLAMAD_ERR_MAX];
    int32_t a, b;
    assert_int_equal(llamad_kvcache_seq_new(kv, &a, err, sizeof err), LLAMAD_OK);
    assert_int_equal(llamad_kvcache_seq_new(kv, &b, err, sizeof err), LLAMAD_ERANGE);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(llamad_kvcache_seq_reserve(kv, a, 11, err, sizeof err), LLAMAD_ERANGE);
    assert_non_null(strstr(err, "context"));
    assert_int_equal(llamad_kvcache_seq_reserve(kv, a, 10, err, sizeof err), LLAMAD_OK);
    assert_false(llamad_kvcache_seq_valid(kv, -1));
    assert_false(llamad_kvcache_seq_valid(kv, 1));
    llamad_kvcache_free(kv);

    struct llamad_kvcache_params bad = {0, 1, 1, 1};
    assert_int_equal(llamad_kvcache_create(&hp, &bad, &kv, err, sizeof err), LLAMAD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_geometry),
        cmocka_unit_test(test_reserve_truncate_release),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
