/* `meson test --benchmark grammar-mask`: the allowed-token mask's cost with
 * the JSON grammar of tests/data, for the bundled vocabulary and (when the
 * shared data is there) the 32k and 128k synthetic ones: a cold mask (a fresh
 * matcher, nothing cached) at several places of a JSON text, and the mask of a
 * state met again (cached). Prints microseconds; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/grammar/grammar.h"
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
    free(text);
    return 0;
}
