/* Tokenizing speed on English text (`meson test --benchmark`): the text of a
 * file, repeated to 16 KB (a long prompt) and to 4 MB, through the SentencePiece
 * vocabulary of tests/data and, when ../shared is there, LLaMA-3's byte-level
 * BPE; the best of five runs, in MB of text a second. Reported, never asserted.
 *
 *   bench_tokenize TEXT_FILE */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/clock.h"
#include "llamad/tokenizer/tokenizer.h"
#include "testutil.h"
#include "tokenizer_testutil.h"

#define TEXT_BYTES (4u << 20)
#define RUNS 5

static const size_t sizes[] = {16u << 10, TEXT_BYTES};

static int run(const char *name, const char *vocab, const char *text, int32_t *ids)
{
    struct llamad_tokenizer *t = test_load_tokenizer(vocab);
    if (!t)
        return 1;
    int rc = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        double best = 1e30;
        int64_t n = 0;
        for (int r = 0; r < RUNS; r++) {
            double t0 = llamad_now_seconds();
            n = llamad_tokenize(t, text, sizes[k], false, ids, TEXT_BYTES);
            double dt = llamad_now_seconds() - t0;
            if (dt < best)
                best = dt;
        }
        rc |= n < 0;
        printf("%-24s %5zu KB  %7.2f MB/s  (%.2f bytes a token)\n", name, sizes[k] >> 10,
               (double)sizes[k] / best / 1e6, (double)sizes[k] / (double)n);
    }
    llamad_tokenizer_free(t);
    return rc;
}

int main(int argc, char **argv)
{
    size_t size;
    char *unit = argc == 2 ? test_read_file(argv[1], &size) : NULL;
    if (!unit || size == 0) {
        fprintf(stderr, "usage: %s TEXT_FILE\n", argv[0]);
        return 2;
    }
    char *text = malloc(TEXT_BYTES);
    int32_t *ids = malloc(TEXT_BYTES * sizeof *ids);
    if (!text || !ids)
        return 1;
    for (size_t i = 0; i < TEXT_BYTES; i += size)
        memcpy(text + i, unit, i + size <= TEXT_BYTES ? size : TEXT_BYTES - i);
    int rc = run("SentencePiece (LLaMA)", test_data_path("ggml-vocab-llama-spm.gguf"), text, ids);
    const char *bpe = test_shared_path("testdata/tokenizer/ggml-vocab-llama3-bpe.gguf");
    if (bpe)
        rc |= run("byte-level BPE (LLaMA-3)", bpe, text, ids);
    else
        printf("byte-level BPE (LLaMA-3): ../shared is not there (set LLAMAD_SHARED_DIR)\n");
    free(ids);
    free(text);
    free(unit);
    return rc;
}
