/* The forward pass gives every sequence the logits it would get alone, whatever
 * else shares its batch, however the batch is chunked and however many threads
 * compute it; and it refuses malformed batches without changing anything. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/kernels/quant.h"
#include "llamad/model/forward.h"
#include "llamad/model/kvcache.h"
#include "llamad/model/model.h"
#include "testutil.h"

struct fixture {
    struct llamad_model *m;
    int32_t n_vocab;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    fx->m = test_load_bundled_model();
    fx->n_vocab = fx->m->hp.n_vocab;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    llamad_model_free(fx->m);
    free(fx);
    return 0;
}

struct runner {
    struct llamad_forward *f;
    struct llamad_kvcache *kv;
};

static struct runner make_typed_runner(const struct llamad_model *m, int32_t threads,
                                       int32_t max_batch, uint32_t kv_type)
{
    struct runner r;
    char err[LLAMAD_ERR_MAX];
    struct llamad_kvcache_params kp = {16, 64, 4, 256, kv_type, false};
    struct llamad_forward_params fp = {threads, max_batch, 256};
    assert_int_equal(llamad_kvcache_create(&m->hp, &kp, &r.kv, err, sizeof err), LLAMAD_OK);
    assert_int_equal(llamad_forward_create(m, &fp, &r.f, err, sizeof err), LLAMAD_OK);
    return r;
}

static struct runner make_runner(const struct llamad_model *m, int32_t threads, int32_t max_batch)
{
    return make_typed_runner(m, threads, max_batch, LLAMAD_TYPE_F32);
}

static void free_runner(struct runner *r)
{
    llamad_forward_free(r->f);
    llamad_kvcache_free(r->kv);
}

static int32_t new_seq(struct runner *r, int32_t room)
{
    int32_t s;
    assert_int_equal(llamad_kvcache_seq_new(r->kv, &s, NULL, 0), LLAMAD_OK);
    assert_int_equal(llamad_kvcache_seq_reserve(r->kv, s, room, NULL, 0), LLAMAD_OK);
    return s;
}

/* Logits of every position of `tokens` run as one sequence alone. */
static float *run_alone(const struct llamad_model *m, const int32_t *tokens, int32_t n,
                        int32_t threads, int32_t max_batch)
{
    struct runner r = make_runner(m, threads, max_batch);
    int32_t s = new_seq(&r, n);
    struct llamad_batch_entry *b = calloc((size_t)n, sizeof(*b));
    for (int32_t i = 0; i < n; i++)
        b[i] = (struct llamad_batch_entry){s, i, tokens[i], true};
    float *logits = malloc((size_t)n * (size_t)m->hp.n_vocab * sizeof(float));
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_forward(r.f, r.kv, b, n, logits, err, sizeof err), LLAMAD_OK);
    free(b);
    free_runner(&r);
    return logits;
}

static void assert_rows_close(const float *a, const float *b, int32_t n_vocab)
{
    for (int32_t i = 0; i < n_vocab; i++)
        assert_float_equal(a[i], b[i], 1e-5);
}

static const int32_t seq_a[] = {1, 403, 407, 261, 378, 432, 298, 315, 421, 395};
static const int32_t seq_b[] = {1, 385, 328, 432, 261, 298};

/* Two sequences of different lengths: prompts in one batch (interleaved, only
 * some logits asked), then decode steps of both together. */
static void test_two_sequences_in_one_batch_match_alone(void **state)
{
    struct fixture *fx = *state;
    const int32_t na = 10, nb = 6, V = fx->n_vocab;
    float *alone_a = run_alone(fx->m, seq_a, na, 2, 512);
    float *alone_b = run_alone(fx->m, seq_b, nb, 2, 512);

    struct runner r = make_runner(fx->m, 2, 512);
    int32_t sa = new_seq(&r, na), sb = new_seq(&r, nb);
    /* Prompt: a's first 7 and b's first 3, interleaved; logits of a's 7th and b's 2nd. */
    struct llamad_batch_entry b[10];
    int n = 0;
    for (int32_t i = 0; i < 7; i++) {
        b[n++] = (struct llamad_batch_entry){sa, i, seq_a[i], i == 6};
        if (i < 3)
            b[n++] = (struct llamad_batch_entry){sb, i, seq_b[i], i == 1};
    }
    float logits[2 * 512];
    assert_true(V <= 512);
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_forward(r.f, r.kv, b, n, logits, err, sizeof err), LLAMAD_OK);
    /* Entry order: b's position 1 comes before a's position 6. */
    assert_rows_close(logits, alone_b + 1 * V, V);
    assert_rows_close(logits + V, alone_a + 6 * V, V);

    /* Decode steps: one token of each sequence per batch. */
    for (int32_t step = 0; step < 3; step++) {
        struct llamad_batch_entry d[2] = {
            {sb, 3 + step, seq_b[3 + step], true},
            {sa, 7 + step, seq_a[7 + step], true},
        };
        assert_int_equal(llamad_forward(r.f, r.kv, d, 2, logits, err, sizeof err), LLAMAD_OK);
        assert_rows_close(logits, alone_b + (3 + step) * V, V);
        assert_rows_close(logits + V, alone_a + (7 + step) * V, V);
    }
    assert_int_equal(r.kv->seqs[sa].len, 10);
    assert_int_equal(r.kv->seqs[sb].len, 6);
    free_runner(&r);
    free(alone_a);
    free(alone_b);
}

/* Attention deals groups of entries (a run of one sequence's consecutive
 * positions, or a few entries that each continue a different sequence) to
 * whichever thread takes them; every entry must be computed once, against its own
 * sequence's rows, or two threads write the same outputs. Entries a0 b0 a1 b1 a2
 * b2 interleave two sequences, then a3..a6 are a run; the pass is repeated
 * because a race shows only now and then. */
static void test_interleaved_entries_match_alone(void **state)
{
    struct fixture *fx = *state;
    const int32_t V = fx->n_vocab;
    float *alone_a = run_alone(fx->m, seq_a, 7, 2, 512);
    float logits[512];
    assert_true(V <= 512);
    char err[LLAMAD_ERR_MAX];
    for (int rep = 0; rep < 50; rep++) {
        struct runner r = make_runner(fx->m, 2, 512);
        int32_t sa = new_seq(&r, 7), sb = new_seq(&r, 3);
        struct llamad_batch_entry b[10];
        int n = 0;
        for (int32_t i = 0; i < 7; i++) {
            b[n++] = (struct llamad_batch_entry){sa, i, seq_a[i], i == 6};
            if (i < 3)
                b[n++] = (struct llamad_batch_entry){sb, i, seq_b[i], false};
        }
        assert_int_equal(llamad_forward(r.f, r.kv, b, n, logits, err, sizeof err), LLAMAD_OK);
        assert_rows_close(logits, alone_a + 6 * V, V);
        free_runner(&r);
    }
    free(alone_a);
}

static void test_chunking_and_threads_do_not_change_logits(void **state)
{
    struct fixture *fx = *state;
    const int32_t V = fx->n_vocab;
    float *ref = run_alone(fx->m, seq_a, 10, 1, 512);
    const int32_t configs[][2] = {{2, 512}, {3, 4}, {1, 1}, {2, 3}};
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        float *got = run_alone(fx->m, seq_a, 10, configs[c][0], configs[c][1]);
        for (int32_t i = 0; i < 10; i++)
            assert_rows_close(got + i * V, ref + i * V, V);
        free(got);
    }
    free(ref);
}

/* An F16 cache holds each key and value rounded to a half: exactly so in the first
 * layer, whose inputs the cache type cannot change yet; the logits stay close to
 * the F32 cache's and pick the same token everywhere. */
static void test_f16_cache(void **state)
{
    struct fixture *fx = *state;
    const int32_t n = 10, V = fx->n_vocab;
    struct runner r32 = make_runner(fx->m, 2, 512);
    struct runner r16 = make_typed_runner(fx->m, 2, 512, LLAMAD_TYPE_F16);
    int32_t s32 = new_seq(&r32, n), s16 = new_seq(&r16, n);
    struct llamad_batch_entry b32[10], b16[10];
    for (int32_t i = 0; i < n; i++) {
        b32[i] = (struct llamad_batch_entry){s32, i, seq_a[i], true};
        b16[i] = (struct llamad_batch_entry){s16, i, seq_a[i], true};
    }
    float *l32 = malloc((size_t)(n * V) * sizeof(float)),
          *l16 = malloc((size_t)(n * V) * sizeof(float));
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_forward(r32.f, r32.kv, b32, n, l32, err, sizeof err), LLAMAD_OK);
    assert_int_equal(llamad_forward(r16.f, r16.kv, b16, n, l16, err, sizeof err), LLAMAD_OK);

    /* Both caches lay keys out by dimension (d * block_tokens + t) and values by
     * token (t * head_dim + d). */
    const int32_t hd = r32.kv->head_dim, n_head_kv = r32.kv->kv_dim / hd;
    const int32_t bt = r32.kv->p.block_tokens;
    assert_true(llamad_kvcache_keys_by_dimension(r32.kv) &&
                llamad_kvcache_keys_by_dimension(r16.kv));
    for (int kind = 0; kind < 2; kind++)
        for (int32_t head = 0; head < n_head_kv; head++) {
            const float *f = llamad_kvcache_head(r32.kv, r32.kv->seqs[s32].table[0], 0, kind, head);
            const uint16_t *h =
                llamad_kvcache_head(r16.kv, r16.kv->seqs[s16].table[0], 0, kind, head);
            for (int32_t t = 0; t < n; t++)
                for (int32_t d = 0; d < hd; d++) {
                    const int32_t at = kind == 0 ? d * bt + t : t * hd + d;
                    assert_int_equal(h[at], llamad_f32_to_f16(f[at]));
                }
        }
    double worst = 0.0;
    for (int32_t p = 0; p < n; p++) {
        int32_t best32 = 0, best16 = 0;
        for (int32_t t = 0; t < V; t++) {
            worst = fmax(worst, fabs((double)l32[p * V + t] - l16[p * V + t]));
            best32 = l32[p * V + t] > l32[p * V + best32] ? t : best32;
            best16 = l16[p * V + t] > l16[p * V + best16] ? t : best16;
        }
        assert_int_equal(best16, best32);
    }
    print_message("F16 cache: largest logit difference from F32 %.4f\n", worst);
    assert_true(worst > 0.0 && worst < 0.02);
    free(l32);
    free(l16);
    free_runner(&r32);
    free_runner(&r16);
}

/* A cached prefix followed by the rest gives the logits of the whole run at once. */
static void test_incremental_equals_whole(void **state)
{
    struct fixture *fx = *state;
    const int32_t V = fx->n_vocab;
    float *whole = run_alone(fx->m, seq_a, 10, 2, 512);
    struct runner r = make_runner(fx->m, 2, 512);
    int32_t s = new_seq(&r, 10);
    float logits[512];
    for (int32_t i = 0; i < 10; i++) {
        struct llamad_batch_entry e = {s, i, seq_a[i], true};
        assert_int_equal(llamad_forward(r.f, r.kv, &e, 1, logits, NULL, 0), LLAMAD_OK);
        assert_rows_close(logits, whole + i * V, V);
    }
    /* Truncate and recompute the tail: same logits again. */
    llamad_kvcache_seq_truncate(r.kv, s, 4);
    assert_int_equal(llamad_kvcache_seq_reserve(r.kv, s, 10, NULL, 0), LLAMAD_OK);
    for (int32_t i = 4; i < 10; i++) {
        struct llamad_batch_entry e = {s, i, seq_a[i], true};
        assert_int_equal(llamad_forward(r.f, r.kv, &e, 1, logits, NULL, 0), LLAMAD_OK);
        assert_rows_close(logits, whole + i * V, V);
    }
    free_runner(&r);
    free(whole);
}

static void test_bad_batches_are_refused_without_effect(void **state)
{
    struct fixture *fx = *state;
    struct runner r = make_runner(fx->m, 1, 512);
    int32_t s = new_seq(&r, 4);
    char err[LLAMAD_ERR_MAX];
    float logits[512];
    struct llamad_batch_entry gap[2] = {{s, 0, 1, false}, {s, 2, 5, true}};
    assert_int_equal(llamad_forward(r.f, r.kv, gap, 2, logits, err, sizeof err), LLAMAD_EINVAL);
    assert_non_null(strstr(err, "position 1"));
    assert_int_equal(r.kv->seqs[s].len, 0);

    struct llamad_batch_entry bad_token = {s, 0, fx->n_vocab, true};
    assert_int_equal(llamad_forward(r.f, r.kv, &bad_token, 1, logits, err, sizeof err),
                     LLAMAD_EINVAL);
    assert_non_null(strstr(err, "vocabulary"));

    struct llamad_batch_entry bad_seq = {3, 0, 1, true};
    assert_int_equal(llamad_forward(r.f, r.kv, &bad_seq, 1, logits, err, sizeof err),
                     LLAMAD_EINVAL);
    assert_non_null(strstr(err, "no sequence"));

    struct llamad_batch_entry fill[5];
    for (int32_t i = 0; i < 5; i++)
        fill[i] = (struct llamad_batch_entry){s, i, 1, false};
    /* 4 positions reserved rounds up to one block of 16, so 5 fit; 17 do not. */
    assert_int_equal(llamad_forward(r.f, r.kv, fill, 5, logits, err, sizeof err), LLAMAD_OK);
    struct llamad_batch_entry past[12];
    for (int32_t i = 0; i < 12; i++)
        past[i] = (struct llamad_batch_entry){s, 5 + i, 1, false};
    assert_int_equal(llamad_forward(r.f, r.kv, past, 12, logits, err, sizeof err), LLAMAD_EINVAL);
    assert_non_null(strstr(err, "reserved"));
    assert_int_equal(r.kv->seqs[s].len, 5);

    /* A block another sequence holds too is never written into, by either. */
    int32_t t;
    assert_int_equal(llamad_kvcache_seq_new(r.kv, &t, NULL, 0), LLAMAD_OK);
    r.kv->seqs[t].table[0] = r.kv->seqs[s].table[0];
    r.kv->seqs[t].n_blocks = 1;
    r.kv->refs[r.kv->seqs[s].table[0]]++;
    struct llamad_batch_entry into_shared[2] = {{t, 0, 1, true}, {s, 5, 1, true}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(llamad_forward(r.f, r.kv, &into_shared[i], 1, logits, err, sizeof err),
                         LLAMAD_EINVAL);
        assert_non_null(strstr(err, "shared block"));
    }
    free_runner(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_sequences_in_one_batch_match_alone),
        cmocka_unit_test(test_interleaved_entries_match_alone),
        cmocka_unit_test(test_chunking_and_threads_do_not_change_logits),
        cmocka_unit_test(test_incremental_equals_whole),
        cmocka_unit_test(test_f16_cache),
        cmocka_unit_test(test_bad_batches_are_refused_without_effect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
