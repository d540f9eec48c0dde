/* Helpers of the tokenizer tests (test_tokenizer.c, test_tokenizer_bpe.c, and
 * test_chat.c's vocabularies). */
#ifndef LLAMAD_TOKENIZER_TESTUTIL_H
#define LLAMAD_TOKENIZER_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/tokenizer/tokenizer.h"

/* The most ids the helpers tokenize into. */
#define TEST_MAX_IDS 4096

/* The vocabularies the tokenizer and chat tests share, loaded by
 * test_vocabs_setup and freed by test_vocabs_teardown (a cmocka group's setup
 * and teardown). */
#define TEST_SPM_VOCAB_FILE LLAMAD_TEST_DATA_DIR "/ggml-vocab-llama-spm.gguf"
extern struct llamad_tokenizer *test_spm;     /* TEST_SPM_VOCAB_FILE: LLaMA's 32000 tokens */
extern struct llamad_tokenizer *test_stories; /* the bundled model's 512 tokens */
int test_vocabs_setup(void **state);
int test_vocabs_teardown(void **state);

/* A vocabulary to write as GGUF metadata: keys whose array is NULL (or whose
 * string is NULL) are left out. */
struct test_vocab_spec {
    const char *model, *pre;
    const char *const *pieces;
    size_t n;
    const float *scores;
    size_t n_scores;
    const int32_t *types;
    size_t n_types;
    const char *const *merges;
    size_t n_merges;
    bool no_space_prefix;
    bool no_bos;        /* tokenizer.ggml.add_bos_token = false */
    const char *id_key; /* an extra uint32 key, e.g. an out-of-range special id */
    uint32_t id_value;
};

/* Loads the tokenizer of s written to a GGUF in memory; returns what
 * llamad_tokenizer_load returned, its message in err (LLAMAD_ERR_MAX bytes). */
int test_load_vocab_spec(const struct test_vocab_spec *s, struct llamad_tokenizer **t, char *err);
/* The load of s fails with code, and the message mentions needle. */
void test_assert_refused(const struct test_vocab_spec *s, int code, const char *needle);

/* Tokenizes into ids (room for TEST_MAX_IDS); returns the count. */
size_t test_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len, bool bos,
                     int32_t *ids);
void test_assert_ids(const struct llamad_tokenizer *t, const char *text, bool bos,
                     const int32_t *want, size_t n_want);
/* The text of ids[0..n) after prev is want. */
void test_assert_detok(const struct llamad_tokenizer *t, int32_t prev, const int32_t *ids, size_t n,
                       const char *want);
/* The id of a piece that must be in the vocabulary. */
int32_t test_find_piece(const struct llamad_tokenizer *t, const char *piece);

/* llama.cpp's test pair beside a vocabulary file: VOCAB.inp holds the texts, each
 * ended by "\n__ggml_vocab_test__\n" (so a text may be empty), VOCAB.out one line
 * of space-separated ids per text (tokenized without BOS). */
#define TEST_MAX_VOCAB_CASES 128
struct test_vocab_cases {
    char *inp, *outp;
    size_t n;
    char *text[TEST_MAX_VOCAB_CASES];
    size_t len[TEST_MAX_VOCAB_CASES];
    char *ids[TEST_MAX_VOCAB_CASES];
};

void test_vocab_cases_read(const char *vocab_path, struct test_vocab_cases *c);
void test_vocab_cases_free(struct test_vocab_cases *c);
/* Tokenizes every text and compares with its ids: prints each mismatch and a line
 * "NAME: k/n cases pass", and fails unless all do. */
void test_vocab_cases_assert(const struct llamad_tokenizer *t, const struct test_vocab_cases *c,
                             const char *name);

#endif
