#include "fuzz_vocab.h"

#include <stdio.h>
#include <stdlib.h>

#include "../testutil.h"

const struct llamad_tokenizer *fuzz_vocab(enum fuzz_vocab which)
{
    static struct llamad_tokenizer *loaded[2];
    if (!loaded[which]) {
        const char *path = which == FUZZ_SPM
                               ? test_data_path("ggml-vocab-llama-spm.gguf")
                               : test_shared_path("testdata/tokenizer/ggml-vocab-llama3-bpe.gguf");
        if (!path) {
            fprintf(stderr, "fuzz: no LLaMA-3 vocabulary: set LLAMAD_SHARED_DIR\n");
            abort();
        }
        loaded[which] = test_load_tokenizer(path);
        if (!loaded[which])
            abort();
    }
    return loaded[which];
}
