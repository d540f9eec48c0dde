#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/model/sampler.h"

/* Everything off: greedy, no filters, no penalties. */
static struct llamad_sampling plain(void)
{
    return (struct llamad_sampling){
        .temperature = 0.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .penalty_last_n = 64,
    };
}

static struct llamad_sampling stochastic(uint64_t seed)
{
    struct llamad_sampling p = plain();
    p.temperature = 1.0f;
    p.seed = seed;
    return p;
}

static int32_t sample_once(const struct llamad_sampling *p, const float *logits, int32_t n)
{
    struct llamad_sampler *s = llamad_sampler_create(p, n);
    assert_non_null(s);
    int32_t t = llamad_sampler_sample(s, logits);
    llamad_sampler_free(s);
    return t;
}

/* Fills hist[0, n) with how often each token came out of `draws` samples. */
static void histogram(const struct llamad_sampling *p, const float *logits, int32_t n, int draws,
                      int *hist)
{
    struct llamad_sampler *s = llamad_sampler_create(p, n);
    assert_non_null(s);
    memset(hist, 0, (size_t)n * sizeof *hist);
    for (int i = 0; i < draws; i++) {
        int32_t t = llamad_sampler_sample(s, logits);
        assert_in_range(t, 0, n - 1);
        hist[t]++;
    }
    llamad_sampler_free(s);
}

/* Deterministic pseudo-random logits in [-4, 4). */
static void fill_logits(float *logits, int32_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (int32_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        logits[i] = (float)(x >> 8) / (float)(1u << 24) * 8.0f - 4.0f;
    }
}

static int32_t argmax(const float *logits, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

static void test_greedy_argmax_and_ties(void **state)
{
    (void)state;
    struct llamad_sampling p = plain();
    assert_int_equal(sample_once(&p, (const float[]){1, 3, 2, -1}, 4), 1);
    assert_int_equal(sample_once(&p, (const float[]){5, 2, 5, 5}, 4), 0);
    assert_int_equal(sample_once(&p, (const float[]){1, 7, 3, 7}, 4), 1);
    assert_int_equal(sample_once(&p, (const float[]){-9, -8, -8.5f}, 3), 1);
}

/* Plain greedy skips the copy of the logits; a zero bias forces the copy and
 * must pick the same token, ties, NaN and infinities included. */
static void test_greedy_fast_path_matches_adjusted(void **state)
{
    (void)state;
    enum { N = 1003 }; /* not a multiple of the argmax's lanes */
    static float logits[N];
    struct llamad_sampling fast = plain(), adjusted = plain();
    struct llamad_logit_bias zero = {0, 0.0f};
    adjusted.logit_bias = &zero;
    adjusted.n_logit_bias = 1;
    for (uint32_t seed = 0; seed < 40; seed++) {
        fill_logits(logits, N, seed);
        for (int32_t i = 0; i < N; i++) {
            /* Coarse values give ties; some specials are sprinkled in. */
            logits[i] = roundf(logits[i]);
            uint32_t r = (seed * 31u + (uint32_t)i * 17u) % 97u;
            if (r == 0)
                logits[i] = NAN;
            else if (r == 1)
                logits[i] = -INFINITY;
            else if (r == 2 && seed % 4 == 0)
                logits[i] = INFINITY;
        }
        if (seed % 10 == 9) /* nothing finite: both give -1 */
            for (int32_t i = 0; i < N; i++)
                logits[i] = i % 2 ? NAN : -INFINITY;
        assert_int_equal(sample_once(&fast, logits, N), sample_once(&adjusted, logits, N));
    }
    /* Zeros of either sign are equal: the first one wins. */
    const float zeros[] = {-1, -0.0f, 0.0f, -0.0f, -2, -3, -4, -5, -6, 0.0f};
    assert_int_equal(sample_once(&fast, zeros, 10), 1);
    assert_int_equal(sample_once(&adjusted, zeros, 10), 1);
}

static void test_logit_bias(void **state)
{
    (void)state;
    const float logits[] = {1, 3, 2};
    struct llamad_sampling p = plain();

    struct llamad_logit_bias raise = {2, 2.0f};
    p.logit_bias = &raise;
    p.n_logit_bias = 1;
    assert_int_equal(sample_once(&p, logits, 3), 2);

    struct llamad_logit_bias ban = {1, -INFINITY};
    p.logit_bias = &ban;
    assert_int_equal(sample_once(&p, logits, 3), 2);

    /* A banned token never comes out of sampling either, however likely. */
    struct llamad_sampling q = stochastic(7);
    struct llamad_logit_bias ban_top = {1, -INFINITY};
    q.logit_bias = &ban_top;
    q.n_logit_bias = 1;
    int hist[3];
    histogram(&q, (const float[]){0, 10, 0}, 3, 1000, hist);
    assert_int_equal(hist[1], 0);
    assert_true(hist[0] > 0 && hist[2] > 0);
}

static void test_logit_bias_out_of_range_rejected(void **state)
{
    (void)state;
    struct llamad_sampling p = plain();
    struct llamad_logit_bias bad[] = {{-1, 1.0f}, {3, 1.0f}};
    p.n_logit_bias = 1;
    p.logit_bias = &bad[0];
    assert_null(llamad_sampler_create(&p, 3));
    p.logit_bias = &bad[1];
    assert_null(llamad_sampler_create(&p, 3));
}

static int32_t greedy_after(const struct llamad_sampling *p, const float *logits, int32_t n,
                            const int32_t *accepted, size_t n_accepted)
{
    struct llamad_sampler *s = llamad_sampler_create(p, n);
    assert_non_null(s);
    for (size_t i = 0; i < n_accepted; i++)
        llamad_sampler_accept(s, accepted[i]);
    int32_t t = llamad_sampler_sample(s, logits);
    llamad_sampler_free(s);
    return t;
}

static void test_repeat_penalty_positive(void **state)
{
    (void)state;
    const float logits[] = {2.0f, 1.5f};
    const int32_t once[] = {0}, thrice[] = {0, 0, 0};
    struct llamad_sampling p = plain();

    p.repeat_penalty = 1.5f; /* 2 / 1.5 = 1.33 < 1.5 (multiplying would give 3) */
    assert_int_equal(greedy_after(&p, logits, 2, once, 1), 1);
    p.repeat_penalty = 1.25f; /* 2 / 1.25 = 1.6 > 1.5 */
    assert_int_equal(greedy_after(&p, logits, 2, once, 1), 0);
    /* Applied once per distinct token: three times would give 2 / 1.95 = 1.02. */
    assert_int_equal(greedy_after(&p, logits, 2, thrice, 3), 0);
}

static void test_repeat_penalty_negative(void **state)
{
    (void)state;
    const float logits[] = {-1.0f, -1.4f};
    const int32_t once[] = {0};
    struct llamad_sampling p = plain();

    p.repeat_penalty = 1.5f; /* -1 * 1.5 = -1.5 < -1.4 (dividing would give -0.67) */
    assert_int_equal(greedy_after(&p, logits, 2, once, 1), 1);
    p.repeat_penalty = 1.3f; /* -1.3 > -1.4 */
    assert_int_equal(greedy_after(&p, logits, 2, once, 1), 0);
}

static void test_presence_and_frequency_penalties(void **state)
{
    (void)state;
    const float logits[] = {3.0f, 2.0f};
    const int32_t twice[] = {0, 0};
    struct llamad_sampling p = plain();

    p.presence_penalty = 0.9f; /* 3 - 0.9 = 2.1 */
    assert_int_equal(greedy_after(&p, logits, 2, twice, 2), 0);
    p.presence_penalty = 1.1f; /* 1.9: counted once, not per occurrence */
    assert_int_equal(greedy_after(&p, logits, 2, twice, 2), 1);

    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.45f; /* 3 - 2 * 0.45 = 2.1 */
    assert_int_equal(greedy_after(&p, logits, 2, twice, 2), 0);
    p.frequency_penalty = 0.55f; /* 1.9 */
    assert_int_equal(greedy_after(&p, logits, 2, twice, 2), 1);

    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.2f; /* 3 - 0.5 - 0.4 = 2.1 */
    assert_int_equal(greedy_after(&p, logits, 2, twice, 2), 0);
    p.frequency_penalty = 0.3f; /* 3 - 0.5 - 0.6 = 1.9 */
    assert_int_equal(greedy_after(&p, logits, 2, twice, 2), 1);
}

static void test_penalty_window(void **state)
{
    (void)state;
    const float logits[] = {3, 2, 0, 0};
    struct llamad_sampling p = plain();
    p.presence_penalty = 2.0f;
    p.penalty_last_n = 2;

    struct llamad_sampler *s = llamad_sampler_create(&p, 4);
    assert_non_null(s);
    llamad_sampler_accept(s, 0);
    assert_int_equal(llamad_sampler_sample(s, logits), 1);
    llamad_sampler_accept(s, 2);
    assert_int_equal(llamad_sampler_sample(s, logits), 1);
    llamad_sampler_accept(s, 3); /* token 0 leaves the window */
    assert_int_equal(llamad_sampler_sample(s, logits), 0);
    llamad_sampler_accept(s, 0);
    assert_int_equal(llamad_sampler_sample(s, logits), 1);
    llamad_sampler_free(s);

    /* No window: nothing is penalised. */
    p.penalty_last_n = 0;
    const int32_t seen[] = {0};
    assert_int_equal(greedy_after(&p, logits, 4, seen, 1), 0);
}

static void test_penalty_window_unbounded(void **state)
{
    (void)state;
    const float logits[] = {3, 2, 0, 0};
    struct llamad_sampling p = plain();
    p.presence_penalty = 2.0f;
    p.penalty_last_n = -1;

    struct llamad_sampler *s = llamad_sampler_create(&p, 4);
    assert_non_null(s);
    llamad_sampler_accept(s, 0);
    for (int i = 0; i < 1000; i++)
        llamad_sampler_accept(s, 2 + i % 2);
    assert_int_equal(llamad_sampler_sample(s, logits), 1);
    llamad_sampler_free(s);
}

static void test_allowed_mask(void **state)
{
    (void)state;
    float logits[10];
    for (int i = 0; i < 10; i++)
        logits[i] = (float)(10 - i);
    const uint8_t only_3_and_9[2] = {1u << 3, 1u << 1};
    const uint8_t none[2] = {0, 0};

    struct llamad_sampling p = plain();
    struct llamad_sampler *s = llamad_sampler_create(&p, 10);
    assert_non_null(s);
    assert_int_equal(llamad_sampler_set_allowed(s, only_3_and_9), LLAMAD_OK);
    assert_int_equal(llamad_sampler_sample(s, logits), 3);
    assert_int_equal(llamad_sampler_set_allowed(s, none), LLAMAD_OK);
    assert_int_equal(llamad_sampler_sample(s, logits), -1);
    assert_int_equal(llamad_sampler_set_allowed(s, NULL), LLAMAD_OK);
    assert_int_equal(llamad_sampler_sample(s, logits), 0);
    llamad_sampler_free(s);

    struct llamad_sampling q = stochastic(3);
    s = llamad_sampler_create(&q, 10);
    assert_non_null(s);
    assert_int_equal(llamad_sampler_set_allowed(s, only_3_and_9), LLAMAD_OK);
    int seen3 = 0, seen9 = 0;
    for (int i = 0; i < 2000; i++) {
        int32_t t = llamad_sampler_sample(s, logits);
        assert_true(t == 3 || t == 9);
        seen3 += t == 3;
        seen9 += t == 9;
    }
    assert_true(seen3 > 0 && seen9 > 0);
    assert_int_equal(llamad_sampler_set_allowed(s, none), LLAMAD_OK);
    assert_int_equal(llamad_sampler_sample(s, logits), -1);
    llamad_sampler_free(s);
}

static void test_no_finite_logit_gives_minus_one(void **state)
{
    (void)state;
    const float banned[] = {-INFINITY, -INFINITY, -INFINITY};
    struct llamad_sampling p = plain();
    assert_int_equal(sample_once(&p, banned, 3), -1);
    struct llamad_sampling q = stochastic(1);
    assert_int_equal(sample_once(&q, banned, 3), -1);
}

static void test_top_k_1_is_greedy(void **state)
{
    (void)state;
    enum { N = 500 };
    float logits[N];
    for (uint64_t seed = 0; seed < 200; seed++) {
        fill_logits(logits, N, (uint32_t)seed);
        struct llamad_sampling p = stochastic(seed);
        p.top_k = 1;
        assert_int_equal(sample_once(&p, logits, N), argmax(logits, N));
    }
}

static void test_top_k_limits_candidates(void **state)
{
    (void)state;
    const float logits[] = {0.5f, 3, 0.1f, 2.5f, 2.9f, -1};
    struct llamad_sampling p = stochastic(11);
    p.top_k = 3; /* tokens 1, 4, 3 */
    int hist[6];
    histogram(&p, logits, 6, 3000, hist);
    assert_int_equal(hist[0] + hist[2] + hist[5], 0);
    assert_true(hist[1] > 0 && hist[3] > 0 && hist[4] > 0);
}

static void test_top_p(void **state)
{
    (void)state;
    int hist[4];
    struct llamad_sampling p = stochastic(5);
    p.top_p = 0.01f;
    histogram(&p, (const float[]){1, 2, 0.5f, 1.9f}, 4, 1000, hist);
    assert_int_equal(hist[1], 1000);

    /* p = 0.5, 0.3, 0.2: the first two reach 0.8 >= 0.6. */
    p.top_p = 0.6f;
    histogram(&p, (const float[]){logf(0.3f), logf(0.5f), logf(0.2f)}, 3, 3000, hist);
    assert_int_equal(hist[2], 0);
    assert_true(hist[0] > 0 && hist[1] > 0);
}

static void test_min_p(void **state)
{
    (void)state;
    /* p = 0.5, 0.3, 0.15, 0.05; min_p 0.2 keeps p >= 0.1. */
    const float logits[] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    struct llamad_sampling p = stochastic(9);
    p.min_p = 0.2f;
    int hist[4];
    histogram(&p, logits, 4, 5000, hist);
    assert_int_equal(hist[3], 0);
    assert_true(hist[0] > 0 && hist[1] > 0 && hist[2] > 0);
}

static void draw_sequence(uint64_t seed, const float *logits, int32_t n, int32_t *out, int count)
{
    struct llamad_sampling p = stochastic(seed);
    p.top_k = 20;
    p.top_p = 0.9f;
    struct llamad_sampler *s = llamad_sampler_create(&p, n);
    assert_non_null(s);
    for (int i = 0; i < count; i++)
        out[i] = llamad_sampler_sample(s, logits);
    llamad_sampler_free(s);
}

static void test_seed_determinism(void **state)
{
    (void)state;
    enum { N = 50, DRAWS = 1000 };
    float logits[N];
    fill_logits(logits, N, 42);
    int32_t a[DRAWS], b[DRAWS], c[DRAWS];
    draw_sequence(1234, logits, N, a, DRAWS);
    draw_sequence(1234, logits, N, b, DRAWS);
    draw_sequence(1235, logits, N, c, DRAWS);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

static void assert_distribution(const float *logits, float temperature, const double *expect)
{
    enum { DRAWS = 20000 };
    struct llamad_sampling p = stochastic(2024);
    p.temperature = temperature;
    int hist[3];
    histogram(&p, logits, 3, DRAWS, hist);
    for (int i = 0; i < 3; i++)
        assert_float_equal((double)hist[i] / DRAWS, expect[i], 0.02);
}

static void test_empirical_distribution(void **state)
{
    (void)state;
    const float logits[] = {0, 1, 2};
    /* softmax(0, 1, 2) and softmax(0, 2, 4) */
    const double t1[] = {0.0900, 0.2447, 0.6652};
    const double t05[] = {0.0159, 0.1173, 0.8668};
    assert_distribution(logits, 1.0f, t1);
    assert_distribution(logits, 0.5f, t05);
}

static void test_nan_logits_never_chosen(void **state)
{
    (void)state;
    const float logits[] = {NAN, 1, NAN, 0.5f};
    struct llamad_sampling p = plain();
    assert_int_equal(sample_once(&p, logits, 4), 1);

    struct llamad_sampling q = stochastic(8);
    int hist[4];
    histogram(&q, logits, 4, 1000, hist);
    assert_int_equal(hist[0] + hist[2], 0);
    assert_true(hist[1] > 0 && hist[3] > 0);

    assert_int_equal(sample_once(&p, (const float[]){NAN, NAN}, 2), -1);
    assert_int_equal(sample_once(&q, (const float[]){NAN, NAN}, 2), -1);
}

static void test_logits_not_modified(void **state)
{
    (void)state;
    float logits[6] = {1, 2, 3, -4, NAN, 0.5f};
    float copy[6];
    memcpy(copy, logits, sizeof logits);
    struct llamad_logit_bias bias = {0, 5.0f};
    struct llamad_sampling p = stochastic(4);
    p.top_k = 3;
    p.top_p = 0.9f;
    p.repeat_penalty = 1.3f;
    p.logit_bias = &bias;
    p.n_logit_bias = 1;
    struct llamad_sampler *s = llamad_sampler_create(&p, 6);
    assert_non_null(s);
    llamad_sampler_accept(s, 2);
    for (int i = 0; i < 10; i++)
        assert_in_range(llamad_sampler_sample(s, logits), 0, 5);
    llamad_sampler_free(s);
    assert_memory_equal(logits, copy, sizeof logits);
}

static void test_defaults(void **state)
{
    (void)state;
    struct llamad_sampling p;
    llamad_sampling_defaults(&p);
    assert_float_equal(p.temperature, 0.8, 1e-6);
    assert_int_equal(p.top_k, 40);
    assert_float_equal(p.top_p, 0.95, 1e-6);
    assert_float_equal(p.min_p, 0.05, 1e-6);
    assert_float_equal(p.repeat_penalty, 1.0, 0.0);
    assert_int_equal(p.penalty_last_n, 64);
    assert_int_equal(p.n_logit_bias, 0);

    enum { N = 32000 };
    static float logits[N];
    fill_logits(logits, N, 99);
    struct llamad_sampler *s = llamad_sampler_create(&p, N);
    assert_non_null(s);
    for (int i = 0; i < 20; i++) {
        int32_t t = llamad_sampler_sample(s, logits);
        assert_in_range(t, 0, N - 1);
        llamad_sampler_accept(s, t);
    }
    llamad_sampler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_argmax_and_ties),
        cmocka_unit_test(test_greedy_fast_path_matches_adjusted),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_logit_bias_out_of_range_rejected),
        cmocka_unit_test(test_repeat_penalty_positive),
        cmocka_unit_test(test_repeat_penalty_negative),
        cmocka_unit_test(test_presence_and_frequency_penalties),
        cmocka_unit_test(test_penalty_window),
        cmocka_unit_test(test_penalty_window_unbounded),
        cmocka_unit_test(test_allowed_mask),
        cmocka_unit_test(test_no_finite_logit_gives_minus_one),
        cmocka_unit_test(test_top_k_1_is_greedy),
        cmocka_unit_test(test_top_k_limits_candidates),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_empirical_distribution),
        cmocka_unit_test(test_nan_logits_never_chosen),
        cmocka_unit_test(test_logits_not_modified),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
