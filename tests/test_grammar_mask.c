/* The allowed-token mask against brute force: for the bundled model's
 * vocabulary (512 tokens), the synthetic 32k SentencePiece one and the 128k
 * LLaMA-3 byte-level one (shared data; those cases skip without it), a
 * generation is driven through several grammars by choosing allowed tokens at
 * random (fixed seed), and at every step the mask must have exactly the bits
 * of a check that runs each token's bytes on its own from the matcher's state
 * (end-of-generation tokens included). Also prints the mask's cost per step
 * (not asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/grammar/grammar.h"
#include "llamad/tokenizer/tokenizer.h"
#include "testutil.h"

static const char *const grammars[] = {
    NULL, /* tests/data/json.gbnf */
    "root ::= \"yes\" | \"no\"",
    "root ::= arr\narr ::= \"[\" ws (arr (\",\" ws arr)*)? \"]\"\nws ::= \" \"?",
    "root ::= ([α-ω] | [^a-z\\x00-\\x7f] | \"日本\" | [0-9]+ \" \" | \"the\" | "
    "\"\\u00e9t\\u00e9\")* "
    "\".\"",
    "root ::= \"{\\\"name\\\": \\\"\" [A-Za-z ]{1,20} \"\\\", \\\"age\\\": \" [0-9]{1,3} \"}\"",
    /* the JSON Schema converter's bounded whitespace, around small integers */
    "root ::= \"[\" ws item (\",\" ws item)* \"]\"\nitem ::= \"-\"? [0-5] ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}",
    /* the converter's records: bounded strings with escapes, each record a
     * position of its own (masks keyed on what they read are reused across) */
    "root ::= \"[\" ws item ws (\",\" ws item ws){3} (\",\" ws item ws)* \"]\"\n"
    "item ::= \"{\" ws \"\\\"n\\\":\" ws \"\\\"\" char{0,6} \"\\\"\" ws \",\" ws "
    "\"\\\"t\\\":\" ws \"[\" ws (\"1\" ws (\",\" ws \"2\" ws){0,2})? \"]\" ws \"}\"\n"
    "char ::= [^\"\\\\\\x00-\\x1f] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}",
};

static bool bit(const uint8_t *mask, int32_t t)
{
    return (mask[t >> 3] >> (t & 7)) & 1;
}

struct stats {
    double total_us, max_us;
    int n;
};

/* One generation of at most steps tokens; every mask checked. */
static void drive(const struct llamad_grammar *g, const struct llamad_grammar_vocab *v, int steps,
                  uint64_t seed, struct stats *st)
{
    int32_t n_vocab = llamad_grammar_vocab_size(v);
    size_t bytes = ((size_t)n_vocab + 7) / 8;
    uint8_t *mask = malloc(bytes);
    int32_t *allowed = malloc((size_t)n_vocab * sizeof *allowed);
    int32_t *short_ones = malloc((size_t)n_vocab * sizeof *short_ones);
    assert_true(mask && allowed && short_ones);
    struct llamad_grammar_matcher *m;
    assert_int_equal(llamad_grammar_matcher_create(g, v, &m), 0);
    test_splitmix_seed(seed);
    for (int step = 0; step < steps; step++) {
        double t0 = llamad_now_seconds();
        assert_int_equal(llamad_grammar_matcher_mask(m, mask), 0);
        double us = (llamad_now_seconds() - t0) * 1e6;
        st->total_us += us;
        st->max_us = us > st->max_us ? us : st->max_us;
        st->n++;
        int32_t n_allowed = 0, n_short = 0;
        bool eog_allowed = false;
        for (int32_t t = 0; t < n_vocab; t++) {
            bool want = llamad_grammar_matcher_allows(m, t);
            if (bit(mask, t) != want)
                fail_msg("step %d: token %d is %s by the mask but %s by brute force", step, t,
                         bit(mask, t) ? "allowed" : "refused", want ? "allowed" : "refused");
            if (!want)
                continue;
            size_t len;
            llamad_grammar_vocab_bytes(v, t, &len);
            if (llamad_grammar_vocab_is_eog(v, t)) {
                eog_allowed = true;
                continue;
            }
            allowed[n_allowed++] = t;
            if (len <= 2)
                short_ones[n_short++] = t;
        }
        assert_int_equal(eog_allowed, llamad_grammar_matcher_can_end(m));
        if (n_allowed == 0) {
            assert_true(eog_allowed); /* complete: only the end may come */
            assert_false(llamad_grammar_matcher_can_continue(m));
            break;
        }
        /* Half the time a short token, so structure (quotes, brackets) comes. */
        uint64_t r = test_splitmix_u64();
        int32_t t = (r & 1) && n_short ? short_ones[(r >> 1) % (uint64_t)n_short]
                                       : allowed[(r >> 1) % (uint64_t)n_allowed];
        assert_int_equal(llamad_grammar_matcher_accept(m, t), 0);
    }
    /* A refused token leaves the matcher as it was. */
    assert_int_equal(llamad_grammar_matcher_mask(m, mask), 0);
    for (int32_t t = 0; t < n_vocab; t++) {
        size_t len;
        llamad_grammar_vocab_bytes(v, t, &len);
        if (!bit(mask, t) && !llamad_grammar_vocab_is_eog(v, t)) {
            assert_int_equal(llamad_grammar_matcher_accept(m, t), LLAMAD_EINVAL);
            break;
        }
    }
    uint8_t *again = malloc(bytes);
    assert_non_null(again);
    assert_int_equal(llamad_grammar_matcher_mask(m, again), 0);
    assert_memory_equal(mask, again, bytes);
    free(again);
    if (llamad_grammar_matcher_can_end(m)) {
        for (int32_t t = 0; t < n_vocab; t++)
            if (llamad_grammar_vocab_is_eog(v, t)) {
                assert_int_equal(llamad_grammar_matcher_accept(m, t), 0);
                assert_int_equal(llamad_grammar_matcher_mask(m, mask), LLAMAD_EINVAL);
                break;
            }
    }
    llamad_grammar_matcher_free(m);
    free(mask);
    free(allowed);
    free(short_ones);
}

static void check_vocab(const char *path, const char *label, int steps, int seeds)
{
    struct llamad_tokenizer *tok = test_load_tokenizer(path);
    assert_non_null(tok);
    struct llamad_grammar_vocab *v;
    double t0 = llamad_now_seconds();
    assert_int_equal(llamad_grammar_vocab_create(tok, &v), 0);
    printf("%s: vocabulary trie built in %.1f ms\n", label, (llamad_now_seconds() - t0) * 1e3);
    size_t len;
    char *json = test_read_file(test_data_path("json.gbnf"), &len);
    assert_non_null(json);
    for (size_t i = 0; i < sizeof grammars / sizeof *grammars; i++) {
        const char *text = grammars[i] ? grammars[i] : json;
        struct llamad_grammar *g;
        char err[LLAMAD_ERR_MAX];
        if (llamad_grammar_parse(text, strlen(text), &g, err, sizeof err))
            fail_msg("grammar %zu: %s", i, err);
        struct stats st = {0};
        for (int s = 0; s < seeds; s++)
            drive(g, v, steps, 1000 * i + (uint64_t)s, &st);
        printf("%s, grammar %zu: %d masks, %.1f us each on average, %.1f us at most\n", label, i,
               st.n, st.total_us / st.n, st.max_us);
        llamad_grammar_free(g);
    }
    free(json);
    llamad_grammar_vocab_free(v);
    llamad_tokenizer_free(tok);
}

static void test_bundled(void **state)
{
    (void)state;
    check_vocab(test_model_path("stories260K.gguf"), "stories260K", 200, 4);
}

static void test_synth256(void **state)
{
    (void)state;
    const char *path = test_shared_path("testdata/models/synth256-Q8_0.gguf");
    if (!path)
        skip();
    check_vocab(path, "synth256 (32k SentencePiece)", 80, 2);
}

static void test_llama3(void **state)
{
    (void)state;
    const char *path = test_shared_path("testdata/models/synth-llama3-Q8_0.gguf");
    if (!path)
        skip();
    check_vocab(path, "synth-llama3 (128k byte-level BPE)", 30, 1);
}

/* A path that once read a loop entry after a deeper walk had moved the array
 * (the mask then allowed " ода" inside the whitespace): "[", "3", "\n" of
 * the LLaMA-3 vocabulary, each mask checked against the brute force. */
static void test_llama3_whitespace_path(void **state)
{
    (void)state;
    const char *path = test_shared_path("testdata/models/synth-llama3-Q8_0.gguf");
    if (!path)
        skip();
    struct llamad_tokenizer *tok = test_load_tokenizer(path);
    struct llamad_grammar_vocab *v;
    assert_int_equal(llamad_grammar_vocab_create(tok, &v), 0);
    const char *text = grammars[5];
    struct llamad_grammar *g;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_grammar_parse(text, strlen(text), &g, err, sizeof err), 0);
    struct llamad_grammar_matcher *m;
    assert_int_equal(llamad_grammar_matcher_create(g, v, &m), 0);
    int32_t n_vocab = llamad_grammar_vocab_size(v);
    uint8_t *mask = malloc(((size_t)n_vocab + 7) / 8);
    assert_non_null(mask);
    static const int32_t path_tokens[] = {7764, 18, 198, -1};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(llamad_grammar_matcher_mask(m, mask), 0);
        for (int32_t t = 0; t < n_vocab; t++)
            if (bit(mask, t) != llamad_grammar_matcher_allows(m, t))
                fail_msg("after %d tokens: token %d is %s by the mask", i, t,
                         bit(mask, t) ? "allowed" : "refused");
        if (path_tokens[i] >= 0)
            assert_int_equal(llamad_grammar_matcher_accept(m, path_tokens[i]), 0);
    }
    free(mask);
    llamad_grammar_matcher_free(m);
    llamad_grammar_free(g);
    llamad_grammar_vocab_free(v);
    llamad_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundled),
        cmocka_unit_test(test_synth256),
        cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_llama3_whitespace_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
