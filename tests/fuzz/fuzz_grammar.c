/* libFuzzer target: the GBNF parser, and the matcher on what parses. The input
 * is grammar text up to its first NUL byte; the bytes after it are fed to the
 * matcher as text (llamad_grammar_accepts), then drive a generation over the
 * bundled model's vocabulary (512 tokens): at each of up to 16 steps the mask
 * is computed, a byte chooses one of its tokens, and that token must be
 * accepted; an end token must be allowed exactly where the grammar may end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "llamad/base/error.h"
#include "llamad/grammar/grammar.h"
#include "llamad/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct llamad_grammar_vocab *vocab(void)
{
    static struct llamad_grammar_vocab *v;
    if (!v) {
        struct llamad_tokenizer *t = test_load_tokenizer(test_model_path("stories260K.gguf"));
        if (!t || llamad_grammar_vocab_create(t, &v)) {
            fprintf(stderr, "fuzz: cannot load the bundled model's vocabulary\n");
            __builtin_trap();
        }
        llamad_tokenizer_free(t);
    }
    return v;
}

static void generate(const struct llamad_grammar *g, const uint8_t *choices, size_t n)
{
    const struct llamad_grammar_vocab *v = vocab();
    int32_t n_vocab = llamad_grammar_vocab_size(v);
    uint8_t mask[(512 + 7) / 8 + 64];
    if ((size_t)(n_vocab + 7) / 8 > sizeof mask)
        __builtin_trap();
    struct llamad_grammar_matcher *m;
    if (llamad_grammar_matcher_create(g, v, &m))
        return;
    for (size_t step = 0; step < 16 && step < n; step++) {
        if (llamad_grammar_matcher_mask(m, mask))
            break;
        int32_t allowed[512], n_allowed = 0;
        bool eog = false;
        for (int32_t t = 0; t < n_vocab; t++) {
            if (!((mask[t >> 3] >> (t & 7)) & 1))
                continue;
            if (llamad_grammar_vocab_is_eog(v, t))
                eog = true;
            else
                allowed[n_allowed++] = t;
        }
        if (eog != llamad_grammar_matcher_can_end(m))
            __builtin_trap();
        if (n_allowed == 0)
            break;
        int32_t t = allowed[choices[step] % n_allowed];
        if (!llamad_grammar_matcher_allows(m, t) || llamad_grammar_matcher_accept(m, t))
            __builtin_trap(); /* the mask allowed a token the matcher refuses */
    }
    llamad_grammar_matcher_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    const uint8_t *rest = nul ? nul + 1 : data + size;
    size_t rest_len = nul ? size - glen - 1 : 0;
    struct llamad_grammar *g;
    char err[LLAMAD_ERR_MAX];
    if (llamad_grammar_parse((const char *)data, glen, &g, err, sizeof err)) {
        if (!strstr(err, "line ") || !strstr(err, "column "))
            __builtin_trap(); /* every refusal says where */
        return 0;
    }
    llamad_grammar_accepts(g, (const char *)rest, rest_len);
    generate(g, rest, rest_len);
    llamad_grammar_free(g);
    return 0;
}
