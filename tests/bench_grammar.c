/* `meson test --benchmark grammar-mask`: the allowed-token mask's cost with
 * the JSON grammar of tests/data, for the bundled vocabulary and (when the
 * shared data is there) the 32k and 128k synthetic ones: a cold mask (a fresh
 * matcher, nothing cached) at several places of a JSON text, and the mask of a
 * state met again (cached). Then, per vocabulary, generations under a JSON
 * schema with bounded strings and arrays, each token drawn uniformly from the
 * mask (as a model with random weights at temperature 1 would): the mean, p50,
 * p99 and largest mask time per token. Prints microseconds; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/grammar/grammar.h"
#include "llamad/server/json_schema.h"
#include "llamad/tokenizer/tokenizer.h"
#include "testutil.h"

static void bench(const char *path, const struct llamad_grammar *g)
{
    struct llamad_tokenizer *t = test_load_tokenizer(path);
    struct llamad_grammar_vocab *v;
    if (!t || llamad_grammar_vocab_create(t, &v)) {
        fprintf(stderr, "cannot load %s\n", path);
        exit(1);
    }
    int32_t n = llamad_grammar_vocab_size(v);
    uint8_t *mask = malloc(((size_t)n + 7) / 8);
    static const char *const places[] = {"", "{\"key\": \"some text", "{\"key\": [1, 23",
                                         "{\"key\": {\"inner\": ", "[true, "};
    printf("%s (%d tokens)\n", path, n);
    for (size_t p = 0; p < sizeof places / sizeof *places; p++) {
        double cold = 1e9, warm = 1e9;
        int allowed = 0;
        for (int r = 0; r < 5; r++) {
            struct llamad_grammar_matcher *m;
            if (llamad_grammar_matcher_create(g, v, &m) ||
                llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)places[p],
                                                    strlen(places[p])))
                exit(1);
            double t0 = llamad_now_seconds();
            llamad_grammar_matcher_mask(m, mask);
            double t1 = llamad_now_seconds();
            llamad_grammar_matcher_mask(m, mask);
            double t2 = llamad_now_seconds();
            cold = t1 - t0 < cold ? t1 - t0 : cold;
            warm = t2 - t1 < warm ? t2 - t1 : warm;
            llamad_grammar_matcher_free(m);
        }
        for (int32_t i = 0; i < n; i++)
            allowed += (mask[i >> 3] >> (i & 7)) & 1;
        printf("  after %-24s %7d tokens allowed: cold %9.1f us, cached %6.1f us\n", places[p],
               allowed, cold * 1e6, warm * 1e6);
    }
    free(mask);
    llamad_grammar_vocab_free(v);
    llamad_tokenizer_free(t);
}

/* A list of records: bounded strings (every length a state of its own), a
 * bounded integer, a bounded array of an enum; as many records as fit. */
static const char bench_schema[] =
    "{\"type\": \"array\", \"minItems\": 200, \"items\": {\"type\": \"object\","
    " \"additionalProperties\": false, \"required\": [\"name\", \"age\", \"tags\"],"
    " \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 12},"
    " \"age\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 120},"
    " \"tags\": {\"type\": \"array\", \"items\": {\"enum\": [\"a\", \"b\", \"c\"]},"
    " \"maxItems\": 3}}}}";

enum { GEN_SEEDS = 8, GEN_TOKENS = 256 };

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A uniformly drawn allowed token other than an end token; -1 when none. */
static int32_t draw_allowed(const struct llamad_grammar_vocab *v, const uint8_t *mask, int32_t n)
{
    int32_t allowed = 0;
    for (int32_t i = 0; i < n; i++)
        allowed += ((mask[i >> 3] >> (i & 7)) & 1) && !llamad_grammar_vocab_is_eog(v, i);
    if (allowed == 0)
        return -1;
    int32_t pick = (int32_t)(test_rand_u32() % (uint32_t)allowed);
    for (int32_t i = 0; i < n; i++)
        if (((mask[i >> 3] >> (i & 7)) & 1) && !llamad_grammar_vocab_is_eog(v, i) && pick-- == 0)
            return i;
    return -1;
}

static void bench_generation(const char *path, const struct llamad_grammar *g)
{
    struct llamad_tokenizer *t = test_load_tokenizer(path);
    struct llamad_grammar_vocab *v;
    if (!t || llamad_grammar_vocab_create(t, &v))
        exit(1);
    int32_t n = llamad_grammar_vocab_size(v);
    uint8_t *mask = malloc(((size_t)n + 7) / 8);
    static double times[GEN_SEEDS * GEN_TOKENS];
    size_t count = 0;
    double total = 0;
    for (int seed = 1; seed <= GEN_SEEDS; seed++) {
        struct llamad_grammar_matcher *m;
        if (!mask || llamad_grammar_matcher_create(g, v, &m))
            exit(1);
        test_rand_seed((uint64_t)seed);
        for (int step = 0; step < GEN_TOKENS; step++) {
            double t0 = llamad_now_seconds();
            int rc = llamad_grammar_matcher_mask(m, mask);
            double dt = llamad_now_seconds() - t0;
            int32_t tok = rc ? -1 : draw_allowed(v, mask, n);
            if (tok < 0 || llamad_grammar_matcher_accept(m, tok))
                break;
            times[count++] = dt;
            total += dt;
        }
        llamad_grammar_matcher_free(m);
    }
    qsort(times, count, sizeof *times, compare_double);
    printf("%s: schema generation, %zu masks: mean %.1f us, p50 %.1f us, p99 %.1f us, max %.1f "
           "us\n",
           path, count, total / (double)count * 1e6, times[count / 2] * 1e6,
           times[count * 99 / 100] * 1e6, times[count - 1] * 1e6);
    free(mask);
    llamad_grammar_vocab_free(v);
    llamad_tokenizer_free(t);
}

static struct llamad_grammar *schema_grammar(void)
{
    cJSON *schema = cJSON_Parse(bench_schema);
    struct llamad_buf gbnf = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX];
    struct llamad_grammar *g = NULL;
    if (!schema || llamad_json_schema_to_gbnf(schema, &gbnf, err, sizeof err) ||
        llamad_grammar_parse(gbnf.data, gbnf.len, &g, err, sizeof err)) {
        fprintf(stderr, "the benchmark's schema: %s\n", err);
        exit(1);
    }
    cJSON_Delete(schema);
    llamad_buf_free(&gbnf);
    return g;
}

int main(void)
{
    size_t len;
    char *text = test_read_file(test_data_path("json.gbnf"), &len);
    struct llamad_grammar *g;
    char err[LLAMAD_ERR_MAX];
    if (!text || llamad_grammar_parse(text, len, &g, err, sizeof err)) {
        fprintf(stderr, "json.gbnf: %s\n", text ? err : "cannot read");
        return 1;
    }
    bench(test_model_path("stories260K.gguf"), g);
    const char *shared[] = {"testdata/models/synth256-Q8_0.gguf",
                            "testdata/models/synth-llama3-Q8_0.gguf"};
    for (int i = 0; i < 2; i++) {
        const char *path = test_shared_path(shared[i]);
        if (path)
            bench(path, g);
    }
    llamad_grammar_free(g);
    g = schema_grammar();
    bench_generation(test_model_path("stories260K.gguf"), g);
    for (int i = 0; i < 2; i++) {
        const char *path = test_shared_path(shared[i]);
        if (path)
            bench_generation(path, g);
    }
    llamad_grammar_free(g);
    free(text);
    return 0;
}
