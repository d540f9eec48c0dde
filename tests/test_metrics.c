#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <regex.h>
#include <cmocka.h>

#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/server/metrics.h"

/* Every metric family, with its type. */
static const struct {
    const char *name;
    const char *type;
} families[] = {
    {"llamad_requests_total", "counter"},
    {"llamad_prompt_tokens_total", "counter"},
    {"llamad_generation_tokens_total", "counter"},
    {"llamad_time_to_first_token_seconds", "histogram"},
    {"llamad_inter_token_latency_seconds", "histogram"},
    {"llamad_request_duration_seconds", "histogram"},
    {"llamad_requests_waiting", "gauge"},
    {"llamad_requests_running", "gauge"},
    {"llamad_kv_cache_blocks_total", "gauge"},
    {"llamad_kv_cache_blocks_reserved", "gauge"},
    {"llamad_kv_cache_blocks_used", "gauge"},
    {"llamad_kv_cache_blocks_idle", "gauge"},
    {"llamad_kv_cache_sequences_idle", "gauge"},
    {"llamad_kv_cache_usage_ratio", "gauge"},
    {"llamad_steps_total", "counter"},
    {"llamad_forward_passes_total", "counter"},
    {"llamad_prompt_tokens_computed_total", "counter"},
    {"llamad_prompt_tokens_cached_total", "counter"},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

static const struct llamad_engine_stats some_stats = {
    .queued = 3,
    .active = 2,
    .kv_blocks_total = 16,
    .kv_blocks_reserved = 4,
    .kv_blocks_used = 3,
    .kv_blocks_idle = 2,
    .kv_seqs_idle = 5,
    .steps = 1000,
    .forward_passes = 1234,
    .prompt_tokens_computed = 500,
    .prompt_tokens_cached = 70,
    .generated_tokens = 900,
};

/* The value of the sample line "<series> <value>", failing when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        if (!strncmp(line, series, n) && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    }
    fail_msg("no sample '%s' in:\n%s", series, text);
    return 0;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static char *render(const struct llamad_metrics *m, const struct llamad_engine_stats *es)
{
    struct llamad_buf out = LLAMAD_BUF_INIT;
    assert_int_equal(llamad_metrics_render(m, es, &out), LLAMAD_OK);
    assert_non_null(out.data);
    return out.data; /* the caller frees */
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    static const double bounds[] = {0.1, 1, 10};
    struct llamad_histogram h = {.bounds = bounds, .n_bounds = 3};
    const double values[] = {0.0, 0.05, 0.1, 0.1000001, 1, 5, 10, 10.5, 1e9};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        llamad_histogram_observe(&h, values[i]);
    llamad_histogram_observe(&h, NAN); /* ignored */
    assert_int_equal(h.counts[0], 3);  /* 0, 0.05 and 0.1 (bounds are inclusive) */
    assert_int_equal(h.counts[1], 2);  /* 0.1000001, 1 */
    assert_int_equal(h.counts[2], 2);  /* 5, 10 */
    assert_int_equal(h.counts[3], 2);  /* above every bound */
    assert_int_equal(h.count, 9);
    double sum = 0;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        sum += values[i];
    assert_true(h.sum == sum);
}

static void test_init_bounds(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    const struct {
        const struct llamad_histogram *h;
        double first, last;
    } cases[] = {{&m.ttft, 0.005, 60}, {&m.itl, 0.001, 5}, {&m.request_duration, 0.01, 300}};
    for (size_t i = 0; i < 3; i++) {
        const struct llamad_histogram *h = cases[i].h;
        assert_true(h->n_bounds > 0 && h->n_bounds <= LLAMAD_HIST_BUCKETS);
        assert_true(h->bounds[0] == cases[i].first);
        assert_true(h->bounds[h->n_bounds - 1] == cases[i].last);
        for (int j = 1; j < h->n_bounds; j++)
            assert_true(h->bounds[j] > h->bounds[j - 1]);
        assert_int_equal(h->count, 0);
    }
}

/* A response's first token waits from its request's arrival; every later one
 * from the token before it, however the tokens are delivered. Three tokens 0.25,
 * 0.28125 and 0.3125 s (exact in binary) after an arrival at an uptime of two
 * hours, which must not leak into any observation. */
static void test_token_clock(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    const double arrival = 7200.0;
    struct llamad_token_clock c = {.last = arrival};
    const double at[] = {0.25, 0.28125, 0.3125};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        llamad_metrics_token(&m, &c, arrival + at[i]);
    assert_int_equal(c.tokens, 3);
    assert_int_equal(m.ttft.count, 1);
    assert_true(m.ttft.sum == 0.25);
    assert_int_equal(m.itl.count, 2);
    assert_true(m.itl.sum == 0.0625);
    assert_int_equal(m.itl.counts[5], 2);              /* (0.025, 0.05]: 0.03125 s each */
    assert_int_equal(m.itl.counts[m.itl.n_bounds], 0); /* nothing above every bound */
}

static void test_render_cumulative_buckets(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    const double ttfts[] = {0.004, 0.005, 0.2, 0.2, 3, 100};
    for (size_t i = 0; i < sizeof ttfts / sizeof ttfts[0]; i++)
        llamad_histogram_observe(&m.ttft, ttfts[i]);
    char *text = render(&m, &some_stats);

    const char *name = "llamad_time_to_first_token_seconds";
    assert_true(has_line(text, "llamad_time_to_first_token_seconds_bucket{le=\"0.005\"} 2"));
    assert_true(has_line(text, "llamad_time_to_first_token_seconds_bucket{le=\"0.1\"} 2"));
    assert_true(has_line(text, "llamad_time_to_first_token_seconds_bucket{le=\"0.25\"} 4"));
    assert_true(has_line(text, "llamad_time_to_first_token_seconds_bucket{le=\"5\"} 5"));
    assert_true(has_line(text, "llamad_time_to_first_token_seconds_bucket{le=\"60\"} 5"));
    assert_true(has_line(text, "llamad_time_to_first_token_seconds_bucket{le=\"+Inf\"} 6"));
    assert_true(has_line(text, "llamad_time_to_first_token_seconds_count 6"));
    assert_true(fabs(sample(text, "llamad_time_to_first_token_seconds_sum") - 103.409) < 1e-9);

    /* Buckets come in ascending le order with non-decreasing counts, +Inf last
     * and equal to _count. */
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s_bucket{le=\"", name);
    double last_le = -1, last_count = -1;
    int n = 0;
    for (const char *p = text; (p = strstr(p, prefix)); p++) {
        const char *le = p + strlen(prefix);
        double bound = strncmp(le, "+Inf", 4) ? strtod(le, NULL) : INFINITY;
        double count = strtod(strchr(le, ' ') + 1, NULL);
        assert_true(bound > last_le);
        assert_true(count >= last_count);
        last_le = bound;
        last_count = count;
        n++;
    }
    assert_int_equal(n, m.ttft.n_bounds + 1);
    assert_true(isinf(last_le));
    assert_true(last_count == 6);
    free(text);
}

static void test_help_and_type_lines(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    char *text = render(&m, &some_stats);
    for (size_t i = 0; i < N_FAMILIES; i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s %s\n", families[i].name, families[i].type);
        const char *type = strstr(text, line);
        if (!type)
            fail_msg("missing '%s'", line);
        assert_null(strstr(type + 1, line)); /* once */
        snprintf(line, sizeof line, "# HELP %s ", families[i].name);
        const char *help = strstr(text, line);
        assert_non_null(help);
        assert_true(help < type);
    }
    free(text);
}

static void test_engine_gauges_and_ratio(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    m.prompt_tokens = 41;
    m.completion_tokens = 99;
    char *text = render(&m, &some_stats);
    assert_true(has_line(text, "llamad_requests_waiting 3"));
    assert_true(has_line(text, "llamad_requests_running 2"));
    assert_true(has_line(text, "llamad_kv_cache_blocks_total 16"));
    assert_true(has_line(text, "llamad_kv_cache_blocks_reserved 4"));
    assert_true(has_line(text, "llamad_kv_cache_blocks_used 3"));
    assert_true(has_line(text, "llamad_kv_cache_blocks_idle 2"));
    assert_true(has_line(text, "llamad_kv_cache_sequences_idle 5"));
    assert_true(has_line(text, "llamad_kv_cache_usage_ratio 0.25")); /* reserved / total */
    assert_true(has_line(text, "llamad_steps_total 1000"));
    assert_true(has_line(text, "llamad_forward_passes_total 1234"));
    assert_true(has_line(text, "llamad_prompt_tokens_computed_total 500"));
    assert_true(has_line(text, "llamad_prompt_tokens_cached_total 70"));
    assert_true(has_line(text, "llamad_prompt_tokens_total 41"));
    assert_true(has_line(text, "llamad_generation_tokens_total 99"));
    free(text);

    struct llamad_engine_stats empty = {0};
    text = render(&m, &empty);
    assert_true(has_line(text, "llamad_kv_cache_usage_ratio 0"));
    free(text);

    struct llamad_engine_stats third = {.kv_blocks_total = 3, .kv_blocks_reserved = 1};
    text = render(&m, &third);
    assert_true(sample(text, "llamad_kv_cache_usage_ratio") == 1.0 / 3.0); /* no digits lost */
    free(text);
}

static void test_requests_by_code(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    char *text = render(&m, &some_stats);
    assert_null(strstr(text, "llamad_requests_total{")); /* none seen yet */
    free(text);

    const int codes[] = {200, 200, 200, 404, 503, 200, 99, 600, -1};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        llamad_metrics_count_request(&m, codes[i]);
    assert_int_equal(m.requests_by_status[2], 4);
    assert_int_equal(m.requests_by_status[4], 1);
    assert_int_equal(m.requests_by_status[5], 1);
    text = render(&m, &some_stats);
    assert_true(has_line(text, "llamad_requests_total{code=\"200\"} 4"));
    assert_true(has_line(text, "llamad_requests_total{code=\"404\"} 1"));
    assert_true(has_line(text, "llamad_requests_total{code=\"503\"} 1"));
    assert_null(strstr(text, "code=\"99\""));
    assert_null(strstr(text, "code=\"600\""));
    assert_null(strstr(text, "code=\"500\""));
    free(text);
}

static void test_render_appends(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    assert_int_equal(llamad_buf_append(&out, "kept\n", 5), LLAMAD_OK);
    assert_int_equal(llamad_metrics_render(&m, &some_stats, &out), LLAMAD_OK);
    assert_memory_equal(out.data, "kept\n# HELP ", 12);
    llamad_buf_free(&out);
}

/* The sample name with a histogram's _bucket/_sum/_count suffix removed when
 * the family is a histogram. */
static bool in_family(const char *sample_name, size_t len, const char *family, const char *type)
{
    size_t f = strlen(family);
    if (len == f)
        return !strncmp(sample_name, family, f);
    if (strcmp(type, "histogram") || len < f || strncmp(sample_name, family, f))
        return false;
    const char *suffix = sample_name + f;
    size_t n = len - f;
    return (n == 7 && !strncmp(suffix, "_bucket", 7)) || (n == 4 && !strncmp(suffix, "_sum", 4)) ||
           (n == 6 && !strncmp(suffix, "_count", 6));
}

static void test_every_line_parses(void **state)
{
    (void)state;
    struct llamad_metrics m;
    llamad_metrics_init(&m);
    llamad_metrics_count_request(&m, 200);
    llamad_metrics_count_request(&m, 429);
    llamad_histogram_observe(&m.itl, 0.0123);
    llamad_histogram_observe(&m.request_duration, 1e-7);
    llamad_histogram_observe(&m.request_duration, 12345.678);
    struct llamad_engine_stats es = some_stats;
    es.kv_blocks_total = 7;
    char *text = render(&m, &es);

#define NAME "[a-zA-Z_:][a-zA-Z0-9_:]*"
#define LABEL "[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
#define VALUE "(\\+Inf|-Inf|NaN|-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?)"
    regex_t sample_re, comment_re;
    assert_int_equal(
        regcomp(&sample_re, "^(" NAME ")(\\{" LABEL "(," LABEL ")*\\})? " VALUE "$", REG_EXTENDED),
        0);
    assert_int_equal(regcomp(&comment_re,
                             "^# (HELP (" NAME ") [^\n]+|TYPE (" NAME
                             ") (counter|gauge|histogram|summary|untyped))$",
                             REG_EXTENDED),
                     0);

    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    char family[96] = "", type[16] = "";
    int samples = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        regmatch_t g[4];
        if (line[0] == '#') {
            if (regexec(&comment_re, line, 4, g, 0))
                fail_msg("bad comment line '%s'", line);
            if (!strncmp(line, "# TYPE ", 7))
                sscanf(line, "# TYPE %95s %15s", family, type);
        } else {
            if (regexec(&sample_re, line, 2, g, 0))
                fail_msg("bad sample line '%s'", line);
            /* Each sample belongs to the family whose TYPE came last. */
            if (!in_family(line, (size_t)(g[1].rm_eo - g[1].rm_so), family, type))
                fail_msg("sample '%s' outside family %s", line, family);
            samples++;
        }
        line = nl + 1;
    }
    assert_true(samples > 3 * 16);
    regfree(&sample_re);
    regfree(&comment_re);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_init_bounds),
        cmocka_unit_test(test_token_clock),
        cmocka_unit_test(test_render_cumulative_buckets),
        cmocka_unit_test(test_help_and_type_lines),
        cmocka_unit_test(test_engine_gauges_and_ratio),
        cmocka_unit_test(test_requests_by_code),
        cmocka_unit_test(test_render_appends),
        cmocka_unit_test(test_every_line_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
