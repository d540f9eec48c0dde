/* The KV cache hands out blocks from one pool, gives them back on truncate and
 * release, and refuses what would exceed the context or the pool; cached
 * sequences are reused (whole blocks shared by reference, a session's own cache
 * taken over) and evicted least recently used first, never while running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/model/kvcache.h"
#include "llamad/model/kvcache_type.h"

static const struct llamad_hparams hp = {.n_vocab = 10,
                                         .n_embd = 8,
                                         .n_layer = 2,
                                         .n_head = 2,
                                         .n_head_kv = 1,
                                         .head_dim = 4,
                                         .n_ff = 16,
                                         .n_ctx_train = 64,
                                         .n_rot = 4,
                                         .rope_base = 10000.0f,
                                         .rms_eps = 1e-5f};

static struct llamad_kvcache *make_sharing(int32_t n_blocks, int32_t max_seqs, int32_t n_ctx,
                                           bool share_across_tenants)
{
    struct llamad_kvcache_params p = {4,     n_blocks,        max_seqs,
                                      n_ctx, LLAMAD_TYPE_F32, share_across_tenants};
    struct llamad_kvcache *kv = NULL;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_kvcache_create(&hp, &p, &kv, err, sizeof err), LLAMAD_OK);
    return kv;
}

static struct llamad_kvcache *make(int32_t n_blocks, int32_t max_seqs, int32_t n_ctx)
{
    return make_sharing(n_blocks, max_seqs, n_ctx, false);
}

static void test_block_geometry(void **state)
{
    (void)state;
    /* 2 layers x (K + V) x 4 positions x kv_dim 4 floats (or halves) */
    assert_int_equal(llamad_kvcache_block_bytes(&hp, 4, LLAMAD_TYPE_F32),
                     2 * 2 * 4 * 4 * sizeof(float));
    assert_int_equal(llamad_kvcache_block_bytes(&hp, 4, LLAMAD_TYPE_F16),
                     2 * 2 * 4 * 4 * sizeof(uint16_t));
    struct llamad_kvcache *kv = make(3, 2, 12);
    float *k0 = llamad_kvcache_rows(kv, 1, 0, 0), *v0 = llamad_kvcache_rows(kv, 1, 0, 1);
    float *k1 = llamad_kvcache_rows(kv, 1, 1, 0);
    assert_ptr_equal(v0, k0 + 4 * 4);
    assert_ptr_equal(k1, k0 + 2 * 4 * 4);
    assert_ptr_equal(llamad_kvcache_rows(kv, 2, 0, 0), (uint8_t *)k0 + kv->block_bytes);
    llamad_kvcache_free(kv);

    struct llamad_kvcache_params p = {4, 3, 2, 12, LLAMAD_TYPE_F16, false};
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_kvcache_create(&hp, &p, &kv, err, sizeof err), LLAMAD_OK);
    uint16_t *h0 = llamad_kvcache_rows(kv, 1, 0, 0), *h1 = llamad_kvcache_rows(kv, 1, 1, 1);
    assert_ptr_equal(h1, h0 + 3 * 4 * 4);
    assert_int_equal(kv->block_bytes, 2 * 2 * 4 * 4 * sizeof(uint16_t));
    llamad_kvcache_free(kv);
}

static void test_type(void **state)
{
    (void)state;
    uint32_t t = 99;
    assert_true(llamad_kvcache_type_parse("f16", &t) && t == LLAMAD_TYPE_F16);
    assert_true(llamad_kvcache_type_parse("f32", &t) && t == LLAMAD_TYPE_F32);
    assert_true(llamad_kvcache_type_parse("q8_0", &t) && t == LLAMAD_TYPE_Q8_0);
    assert_false(llamad_kvcache_type_parse("q4_0", &t));
    assert_false(llamad_kvcache_type_parse("F16", &t));
    assert_false(llamad_kvcache_type_parse("f1", &t));
    assert_false(llamad_kvcache_type_parse("f166", &t));
    assert_int_equal(t, LLAMAD_TYPE_Q8_0); /* a refused name leaves it alone */
    assert_true(llamad_kvcache_type_supported(LLAMAD_TYPE_F32));
    assert_false(llamad_kvcache_type_supported(LLAMAD_TYPE_Q4_0));
    struct llamad_kvcache_params p = {4, 3, 2, 12, LLAMAD_TYPE_Q4_0, false};
    struct llamad_kvcache *kv = NULL;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_kvcache_create(&hp, &p, &kv, err, sizeof err), LLAMAD_EINVAL);
    assert_non_null(strstr(err, "only F32, F16 and Q8_0"));
    assert_null(kv);
    /* Q8_0 blocks are 32 values: heads of 4 cannot be cached that way */
    p.type = LLAMAD_TYPE_Q8_0;
    assert_int_equal(llamad_kvcache_create(&hp, &p, &kv, err, sizeof err), LLAMAD_EINVAL);
    assert_non_null(strstr(err, "multiple of 32"));
    assert_null(kv);
    /* heads of 64: each position's 2 x 64 keys are 4 blocks of 34 bytes */
    struct llamad_hparams wide = hp;
    wide.n_embd = 128;
    wide.n_head = wide.n_head_kv = 2;
    wide.head_dim = 64;
    assert_int_equal(llamad_kvcache_block_bytes(&wide, 4, LLAMAD_TYPE_Q8_0), 2 * 2 * 4 * 4 * 34);
    assert_int_equal(llamad_kvcache_create(&wide, &p, &kv, err, sizeof err), LLAMAD_OK);
    assert_int_equal(kv->row_bytes, 4 * 34);
    assert_int_equal(kv->head_bytes, 2 * 34);
    /* each head's 4 positions together: head 1 after head 0's 4 rows */
    assert_ptr_equal(llamad_kvcache_head(kv, 1, 1, 1, 1),
                     (uint8_t *)llamad_kvcache_rows(kv, 1, 1, 1) + 4 * 2 * 34);
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

/* Making a sequence's pages present before its prompt step leaves what its
 * blocks hold as it was (a block may have been written by a forward pass
 * without it, or be shared), and marks every block it holds. */
static void test_touch_keeps_contents(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(4, 2, 16);
    char err[LLAMAD_ERR_MAX];
    int32_t a;
    assert_true((uintptr_t)kv->pool % (2u << 20) == 0); /* huge-page aligned */
    assert_int_equal(llamad_kvcache_seq_new(kv, &a, err, sizeof err), LLAMAD_OK);
    assert_int_equal(llamad_kvcache_seq_reserve(kv, a, 5, err, sizeof err), LLAMAD_OK);
    uint8_t *block = kv->pool + (size_t)kv->seqs[a].table[0] * kv->block_bytes;
    for (size_t i = 0; i < kv->block_bytes; i++)
        block[i] = (uint8_t)(i * 7 + 1);
    llamad_kvcache_seq_touch(kv, a);
    for (size_t i = 0; i < kv->block_bytes; i++)
        assert_int_equal(block[i], (uint8_t)(i * 7 + 1));
    for (int32_t i = 0; i < kv->seqs[a].n_blocks; i++)
        assert_true(kv->touched[kv->seqs[a].table[i]]);
    assert_int_equal(llamad_kvcache_seq_reserve(kv, a, 9, err, sizeof err), LLAMAD_OK);
    assert_false(kv->touched[kv->seqs[a].table[2]]);
    llamad_kvcache_seq_touch(kv, a);
    assert_true(kv->touched[kv->seqs[a].table[2]]);
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

    struct llamad_kvcache_params bad = {0, 1, 1, 1, LLAMAD_TYPE_F32, false};
    assert_int_equal(llamad_kvcache_create(&hp, &bad, &kv, err, sizeof err), LLAMAD_EINVAL);
}

/* What a forward pass leaves: the sequence holds tokens[0..n-1]. */
static void computed(struct llamad_kvcache *kv, int32_t seq, const int32_t *tokens, int32_t n)
{
    assert_true(n <= kv->seqs[seq].n_blocks * kv->p.block_tokens);
    memcpy(kv->seqs[seq].tokens, tokens, (size_t)n * sizeof(int32_t));
    kv->seqs[seq].len = n;
}

static int32_t claim_as(struct llamad_kvcache *kv, uint32_t tenant, const int32_t *prompt,
                        int32_t n, int32_t room, const char *session, int32_t *cached)
{
    int32_t seq = -1;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(
        llamad_kvcache_claim(kv, prompt, n, room, session, tenant, &seq, cached, err, sizeof err),
        LLAMAD_OK);
    return seq;
}

static int32_t claim(struct llamad_kvcache *kv, const int32_t *prompt, int32_t n, int32_t room,
                     const char *session, int32_t *cached)
{
    return claim_as(kv, 0, prompt, n, room, session, cached);
}

static const int32_t story[] = {1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};

static void test_whole_blocks_shared_by_reference(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(8, 3, 16);
    int32_t cached;
    int32_t a = claim(kv, story, 10, 12, "", &cached);
    assert_int_equal(cached, 0);
    assert_int_equal(kv->seqs[a].n_blocks, 3);
    computed(kv, a, story, 10);
    llamad_kvcache_seq_park(kv, a);
    assert_true(kv->seqs[a].idle);
    assert_int_equal(kv->seqs[a].n_blocks, 3); /* 10 positions: its third block kept */

    /* Shares 9 tokens with a: the two whole blocks, not the partial third. */
    int32_t other[] = {1, 10, 11, 12, 13, 14, 15, 16, 17, 99, 98};
    int32_t b = claim(kv, other, 11, 14, "", &cached);
    assert_int_not_equal(b, a);
    assert_int_equal(cached, 8);
    assert_int_equal(kv->seqs[b].len, 8);
    assert_memory_equal(kv->seqs[b].table, kv->seqs[a].table, 2 * sizeof(int32_t));
    assert_int_equal(kv->refs[kv->seqs[a].table[0]], 2);
    assert_int_equal(kv->refs[kv->seqs[a].table[2]], 1);
    assert_int_equal(kv->seqs[b].n_blocks, 4); /* 2 shared + 2 of its own for 14 positions */
    assert_int_equal(kv->n_free, 8 - 3 - 2);
    struct llamad_kvcache_stats st;
    llamad_kvcache_stats(kv, &st);
    assert_int_equal(st.blocks_reserved, 5);
    assert_int_equal(st.blocks_used, 3); /* a's three; b has computed nothing of its own */
    assert_int_equal(st.blocks_idle, 1); /* a's third block: the others b holds too */
    assert_int_equal(st.seqs_idle, 1);

    /* Letting go of b leaves a's blocks with a. */
    llamad_kvcache_seq_release(kv, b);
    assert_int_equal(kv->refs[kv->seqs[a].table[0]], 1);
    assert_int_equal(kv->n_free, 5);
    llamad_kvcache_free(kv);
}

static void test_session_taken_over(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(8, 3, 16);
    int32_t cached;
    int32_t a = claim(kv, story, 6, 16, "chat-1", &cached);
    assert_int_equal(kv->seqs[a].n_blocks, 4);
    computed(kv, a, story, 10); /* prompt and four generated tokens */
    llamad_kvcache_seq_park(kv, a);
    assert_int_equal(kv->seqs[a].n_blocks, 3); /* the unused room went back */
    assert_int_equal(kv->n_free, 5);

    /* Another session finds only a's whole blocks. */
    int32_t b = claim(kv, story, 12, 12, "chat-2", &cached);
    assert_int_not_equal(b, a);
    assert_int_equal(cached, 8);
    llamad_kvcache_seq_release(kv, b);

    /* The next turn of chat-1: its own sequence, partial block included. */
    int32_t c = claim(kv, story, 13, 16, "chat-1", &cached);
    assert_int_equal(c, a);
    assert_int_equal(cached, 10);
    assert_false(kv->seqs[c].idle);
    assert_int_equal(kv->seqs[c].n_blocks, 4);
    computed(kv, c, story, 14);
    llamad_kvcache_seq_park(kv, c);

    /* The same prompt again: all but its last token come from the cache. */
    c = claim(kv, story, 14, 16, "chat-1", &cached);
    assert_int_equal(cached, 13);
    assert_int_equal(kv->seqs[c].len, 13);
    llamad_kvcache_free(kv);
}

/* A session's cache whose last block others share: the new turn would write into
 * it, so that block's positions are computed again in a block of its own. */
static void test_shared_tail_block_is_not_written(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(8, 3, 16);
    int32_t cached;
    int32_t a = claim(kv, story, 9, 9, "s", &cached);
    computed(kv, a, story, 9);
    llamad_kvcache_seq_park(kv, a);
    int32_t b = claim(kv, story, 9, 12, "", &cached); /* running, shares a's blocks 0 and 1 */
    assert_int_equal(cached, 8);

    int32_t turn[] = {1, 10, 11, 12, 13, 14, 77, 78, 79, 80};
    int32_t c = claim(kv, turn, 10, 12, "s", &cached);
    assert_int_equal(c, a);
    assert_int_equal(cached, 4); /* 6 in common, but block 1 is b's too */
    assert_int_equal(kv->refs[kv->seqs[c].table[0]], 2);
    assert_int_equal(kv->refs[kv->seqs[c].table[1]], 1);
    assert_int_not_equal(kv->seqs[c].table[1], kv->seqs[b].table[1]);
    llamad_kvcache_free(kv);
}

static void test_lru_eviction_never_running(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(6, 4, 16);
    char err[LLAMAD_ERR_MAX];
    int32_t cached, seq;
    int32_t p1[] = {1, 2, 3, 4, 5}, p2[] = {1, 6, 7, 8, 9}, p3[] = {1, 7, 7, 7, 7};
    int32_t a = claim(kv, p1, 5, 8, "a", &cached);
    computed(kv, a, p1, 5);
    int32_t b = claim(kv, p2, 5, 8, "b", &cached);
    computed(kv, b, p2, 5);
    llamad_kvcache_seq_park(kv, b); /* b parked first: least recently used */
    llamad_kvcache_seq_park(kv, a);
    int32_t r = claim(kv, p3, 5, 8, "", &cached); /* running, 2 blocks */
    assert_int_equal(kv->n_free, 0);

    /* 2 blocks: b goes, a stays. */
    int32_t c = claim(kv, p3, 5, 5, "", &cached);
    assert_false(kv->seqs[b].in_use);
    assert_true(kv->seqs[a].in_use && kv->seqs[a].idle);
    /* 4 blocks, 2 could come from a, the rest are running: wait, nothing changes. */
    assert_int_equal(llamad_kvcache_claim(kv, p3, 5, 16, "", 0, &seq, &cached, err, sizeof err),
                     LLAMAD_ERANGE);
    assert_non_null(strstr(err, "busy"));
    assert_true(kv->seqs[a].in_use && kv->seqs[a].idle);
    assert_true(kv->seqs[r].in_use && kv->seqs[c].in_use);
    /* Once one running sequence ends and is parked, both idle ones make room. */
    llamad_kvcache_seq_park(kv, c);
    seq = claim(kv, p1, 5, 16, "", &cached);
    assert_false(kv->seqs[a].in_use);
    assert_int_equal(kv->seqs[seq].n_blocks, 4);
    assert_true(kv->seqs[r].in_use && !kv->seqs[r].idle);
    llamad_kvcache_free(kv);
}

static void test_claim_limits(void **state)
{
    (void)state;
    struct llamad_kvcache *kv = make(4, 2, 20);
    char err[LLAMAD_ERR_MAX];
    int32_t seq, cached;
    /* 17 positions need 5 blocks of 4; the pool has 4. */
    assert_int_equal(llamad_kvcache_claim(kv, story, 5, 17, "", 0, &seq, &cached, err, sizeof err),
                     LLAMAD_EINVAL);
    assert_non_null(strstr(err, "whole cache has 4"));
    assert_int_equal(llamad_kvcache_claim(kv, story, 5, 21, "", 0, &seq, &cached, err, sizeof err),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_kvcache_claim(kv, story, 5, 4, "", 0, &seq, &cached, err, sizeof err),
                     LLAMAD_EINVAL);
    assert_int_equal(kv->n_free, 4);

    /* A session parked twice keeps one cache; an empty sequence is not kept. */
    int32_t a = claim(kv, story, 5, 5, "s", &cached);
    int32_t b = claim(kv, story, 5, 5, "s", &cached);
    computed(kv, a, story, 5);
    computed(kv, b, story, 5);
    llamad_kvcache_seq_park(kv, a);
    llamad_kvcache_seq_park(kv, b);
    assert_false(kv->seqs[a].in_use);
    assert_true(kv->seqs[b].idle);
    llamad_kvcache_seq_release(kv, b);
    a = claim(kv, story, 5, 5, "", &cached);
    llamad_kvcache_seq_park(kv, a);
    assert_false(kv->seqs[a].in_use);
    assert_int_equal(kv->n_free, 4);
    llamad_kvcache_free(kv);
}

/* Tenants (API keys): a session id names each tenant's own cache, and prefixes
 * cross between tenants only when the cache shares them. */
static void test_tenants_kept_apart(void **state)
{
    (void)state;
    for (int sharing = 0; sharing <= 1; sharing++) {
        struct llamad_kvcache *kv = make_sharing(12, 4, 16, sharing);
        int32_t cached;
        int32_t a = claim_as(kv, 1, story, 10, 12, "s", &cached);
        computed(kv, a, story, 10);
        llamad_kvcache_seq_park(kv, a);

        /* Tenant 2, same session id: a fresh sequence; a's whole blocks only
         * when shared, never its session's partial block. */
        int32_t b = claim_as(kv, 2, story, 13, 16, "s", &cached);
        assert_int_not_equal(b, a);
        assert_int_equal(cached, sharing ? 8 : 0);
        computed(kv, b, story, 13);
        llamad_kvcache_seq_park(kv, b);
        assert_true(kv->seqs[a].in_use && kv->seqs[a].idle); /* b's parking kept it */

        /* No session either: tenant 2 now finds its own blocks, tenant 3 none
         * unless shared. */
        int32_t c = claim_as(kv, 3, story, 13, 13, "", &cached);
        assert_int_equal(cached, sharing ? 12 : 0);
        llamad_kvcache_seq_release(kv, c);

        /* Tenant 1's session is still its own. */
        int32_t d = claim_as(kv, 1, story, 12, 16, "s", &cached);
        assert_int_equal(d, a);
        assert_int_equal(cached, 10);
        llamad_kvcache_free(kv);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_geometry),
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_reserve_truncate_release),
        cmocka_unit_test(test_touch_keeps_contents),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_whole_blocks_shared_by_reference),
        cmocka_unit_test(test_session_taken_over),
        cmocka_unit_test(test_shared_tail_block_is_not_written),
        cmocka_unit_test(test_lru_eviction_never_running),
        cmocka_unit_test(test_claim_limits),
        cmocka_unit_test(test_tenants_kept_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
