#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/base/utf8.h"
#include "llamad/format/gguf.h"
#include "llamad/tokenizer/tokenizer.h"
#include "tokenizer_testutil.h"

/* ---- Helpers ---- */

static void assert_valid_utf8(const struct llamad_buf *b)
{
    assert_int_equal(llamad_utf8_valid_prefix(b->data ? b->data : "", b->len), b->len);
}

static int32_t byte_token(const struct llamad_tokenizer *t, uint8_t b)
{
    char piece[8];
    snprintf(piece, sizeof piece, "<0x%02X>", b);
    int32_t id = llamad_tokenizer_find(t, piece, strlen(piece));
    assert_true(id >= 0);
    assert_int_equal(llamad_tokenizer_kind(t, id), LLAMAD_TOKEN_BYTE);
    return id;
}

/* ---- The reference cases of llama.cpp's test-tokenizer-0 ---- */

static void test_vocab_file_cases(void **state)
{
    (void)state;
    struct test_vocab_cases c;
    test_vocab_cases_read(TEST_SPM_VOCAB_FILE, &c);
    assert_int_equal(c.n, 46);
    test_vocab_cases_assert(test_spm, &c, "ggml-vocab-llama-spm");
    test_vocab_cases_free(&c);
}

/* Every reference text comes back byte for byte: the space SentencePiece puts in
 * front is the one dropped after BOS; without BOS before it, it shows. (All the
 * texts are valid UTF-8 and every character has a piece or byte tokens, so nothing
 * is lost to <unk> or U+FFFD.) */
static void test_vocab_file_round_trip(void **state)
{
    (void)state;
    struct test_vocab_cases c;
    test_vocab_cases_read(TEST_SPM_VOCAB_FILE, &c);
    int32_t bos = llamad_tokenizer_bos(test_spm);
    for (size_t i = 0; i < c.n; i++) {
        int32_t ids[TEST_MAX_IDS];
        struct llamad_buf out = LLAMAD_BUF_INIT;
        size_t n = test_tokenize(test_spm, c.text[i], c.len[i], true, ids);
        assert_int_equal(llamad_detokenize(test_spm, -1, ids, n, &out), LLAMAD_OK);
        assert_int_equal(out.len, c.len[i]);
        assert_memory_equal(out.data, c.text[i], c.len[i]);

        llamad_buf_clear(&out);
        n = test_tokenize(test_spm, c.text[i], c.len[i], false, ids);
        assert_int_equal(llamad_detokenize(test_spm, bos, ids, n, &out), LLAMAD_OK);
        assert_int_equal(out.len, c.len[i]);
        assert_memory_equal(out.data, c.text[i], c.len[i]);

        llamad_buf_clear(&out);
        assert_int_equal(llamad_detokenize(test_spm, -1, ids, n, &out), LLAMAD_OK);
        assert_int_equal(out.len, c.len[i] ? c.len[i] + 1 : 0);
        if (c.len[i]) {
            assert_int_equal(out.data[0], ' ');
            assert_memory_equal(out.data + 1, c.text[i], c.len[i]);
        }
        llamad_buf_free(&out);
    }
    test_vocab_cases_free(&c);
}

/* ---- Tokenizing ---- */

static void test_stories_prompt(void **state)
{
    (void)state;
    const int32_t want[] = {1, 403, 407, 261, 378};
    test_assert_ids(test_stories, "Once upon a time", true, want, 5);
    test_assert_ids(test_stories, "Once upon a time", false, want + 1, 4);
    assert_int_equal(llamad_tokenizer_n_vocab(test_stories), 512);
    assert_true(llamad_tokenizer_add_bos(test_stories));
}

static void test_bos_prepended(void **state)
{
    (void)state;
    const int32_t hello[] = {1, 15043, 3186};
    test_assert_ids(test_spm, "Hello world", true, hello, 3);
    test_assert_ids(test_spm, "Hello world", false, hello + 1, 2);
    test_assert_ids(test_spm, "", true, hello, 1);
    test_assert_ids(test_spm, "", false, NULL, 0);
}

static void test_size_query(void **state)
{
    (void)state;
    int32_t ids[2] = {-7, -7};
    assert_int_equal(llamad_tokenize(test_spm, "Hello world", 11, true, NULL, 0), 3);
    assert_int_equal(llamad_tokenize(test_spm, "Hello world", 11, true, ids, 1), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], -7);
    assert_int_equal(llamad_tokenize(test_spm, NULL, 3, false, ids, 2), LLAMAD_EINVAL);
}

static void test_special_strings_are_text(void **state)
{
    (void)state;
    const char *texts[] = {"<s>",   "</s>",   "[INST]",
                           "<unk>", "<0x41>", "<s>[INST] Hi [/INST] Hello</s><s>"};
    const struct llamad_tokenizer *vocabs[] = {test_spm, test_stories};
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            int32_t ids[TEST_MAX_IDS];
            size_t n = test_tokenize(vocabs[v], texts[i], strlen(texts[i]), false, ids);
            for (size_t k = 0; k < n; k++) {
                enum llamad_token_kind kind = llamad_tokenizer_kind(vocabs[v], ids[k]);
                assert_true(kind == LLAMAD_TOKEN_NORMAL || kind == LLAMAD_TOKEN_BYTE);
                assert_true(ids[k] > 2);
            }
            struct llamad_buf out = LLAMAD_BUF_INIT;
            assert_int_equal(
                llamad_detokenize(vocabs[v], llamad_tokenizer_bos(vocabs[v]), ids, n, &out),
                LLAMAD_OK);
            assert_string_equal(out.data, texts[i]);
            llamad_buf_free(&out);
        }
    }
    /* The pieces exist; text just never becomes them. */
    assert_int_equal(llamad_tokenizer_find(test_spm, "<s>", 3), 1);
    assert_int_equal(llamad_tokenizer_find(test_spm, "</s>", 4), 2);
    assert_int_equal(llamad_tokenizer_kind(test_spm, 1), LLAMAD_TOKEN_CONTROL);
}

static void test_byte_fallback_round_trip(void **state)
{
    (void)state;
    const char *llama = "\xf0\x9f\xa6\x99"; /* U+1F999, no piece in the 512-token vocab */
    int32_t ids[TEST_MAX_IDS];
    size_t n = test_tokenize(test_stories, llama, strlen(llama), false, ids);
    assert_int_equal(n, 5);
    assert_string_equal(llamad_tokenizer_piece(test_stories, ids[0]), "\xe2\x96\x81");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(ids[1 + i], byte_token(test_stories, (uint8_t)llama[i]));

    struct llamad_buf out = LLAMAD_BUF_INIT;
    const char *text = "a \xf0\x9f\xa6\x99 b\n";
    n = test_tokenize(test_stories, text, strlen(text), true, ids);
    assert_int_equal(llamad_detokenize(test_stories, -1, ids, n, &out), LLAMAD_OK);
    assert_string_equal(out.data, text);
    llamad_buf_free(&out);
}

/* Invalid UTF-8 in the text: each bad byte is a symbol of its own and falls back to
 * its byte token, so the ids still carry every byte. */
static void test_invalid_text_bytes(void **state)
{
    (void)state;
    int32_t ids[TEST_MAX_IDS];
    size_t n = test_tokenize(test_spm, "\xc3(\xff", 3, false, ids);
    const int32_t want[] = {29871, byte_token(test_spm, 0xc3), test_find_piece(test_spm, "("),
                            byte_token(test_spm, 0xff)};
    assert_int_equal(n, 4);
    assert_memory_equal(ids, want, sizeof want);
    n = test_tokenize(test_spm, "a\0b", 3, false, ids);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], byte_token(test_spm, 0));
}

/* 100 KB of text in well under a second (no quadratic step): checked by hand; this
 * only checks the result stays right at that size. */
static void test_long_text(void **state)
{
    (void)state;
    const char *unit = "Once upon a time, there was a little llama \xf0\x9f\xa6\x99 named 33333. ";
    size_t unit_len = strlen(unit), reps = 100000 / unit_len + 1, len = unit_len * reps;
    char *text = malloc(len);
    assert_non_null(text);
    for (size_t i = 0; i < reps; i++)
        memcpy(text + i * unit_len, unit, unit_len);
    int64_t n = llamad_tokenize(test_spm, text, len, true, NULL, 0);
    assert_true(n > 0);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    assert_non_null(ids);
    assert_int_equal(llamad_tokenize(test_spm, text, len, true, ids, (size_t)n), n);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    assert_int_equal(llamad_detokenize(test_spm, -1, ids, (size_t)n, &out), LLAMAD_OK);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, text, len);
    llamad_buf_free(&out);
    free(ids);
    free(text);
}

/* ---- Detokenizing ---- */

static void test_token_to_bytes(void **state)
{
    (void)state;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    int32_t hello = test_find_piece(test_spm, "\xe2\x96\x81Hello");
    int32_t two_spaces = test_find_piece(test_spm, "\xe2\x96\x81\xe2\x96\x81");
    assert_int_equal(llamad_token_to_bytes(test_spm, hello, &out), LLAMAD_OK);
    assert_int_equal(llamad_token_to_bytes(test_spm, byte_token(test_spm, '\n'), &out), LLAMAD_OK);
    assert_int_equal(llamad_token_to_bytes(test_spm, 1, &out), LLAMAD_OK); /* <s>: control */
    assert_int_equal(llamad_token_to_bytes(test_spm, 0, &out), LLAMAD_OK); /* <unk> */
    assert_int_equal(llamad_token_to_bytes(test_spm, two_spaces, &out), LLAMAD_OK);
    assert_string_equal(out.data, " Hello\n  ");
    assert_int_equal(llamad_token_to_bytes(test_spm, 32000, &out), LLAMAD_EINVAL);
    assert_int_equal(llamad_token_to_bytes(test_spm, -1, &out), LLAMAD_EINVAL);
    assert_string_equal(out.data, " Hello\n  ");
    llamad_buf_free(&out);
}

static void test_detok_streams_whole_chars(void **state)
{
    (void)state;
    const char *emoji = "\xf0\x9f\x98\x81";
    struct llamad_detok d;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    llamad_detok_init(&d, test_stories, -1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(llamad_detok_push(&d, byte_token(test_stories, (uint8_t)emoji[i]), &out),
                         LLAMAD_OK);
        assert_int_equal(out.len, 0);
        assert_int_equal(d.n_pending, i + 1);
    }
    assert_int_equal(llamad_detok_push(&d, byte_token(test_stories, (uint8_t)emoji[3]), &out),
                     LLAMAD_OK);
    assert_string_equal(out.data, emoji);
    assert_int_equal(d.n_pending, 0);
    assert_int_equal(llamad_detok_flush(&d, &out), LLAMAD_OK);
    assert_string_equal(out.data, emoji);
    llamad_buf_free(&out);
}

/* Byte tokens carrying `bytes`, pushed one at a time, then flushed. */
static void assert_detok_bytes(const char *bytes, const char *want)
{
    struct llamad_detok d;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    llamad_detok_init(&d, test_spm, -1);
    for (const char *p = bytes; *p; p++) {
        assert_int_equal(llamad_detok_push(&d, byte_token(test_spm, (uint8_t)*p), &out), LLAMAD_OK);
        assert_valid_utf8(&out);
    }
    assert_int_equal(llamad_detok_flush(&d, &out), LLAMAD_OK);
    assert_valid_utf8(&out);
    assert_string_equal(out.len ? out.data : "", want);
    llamad_buf_free(&out);
}

#define FFFD "\xef\xbf\xbd"

static void test_detok_invalid_bytes(void **state)
{
    (void)state;
    assert_detok_bytes("a\xc3\xa9"
                       "b\xe2\x82\xac",
                       "a\xc3\xa9"
                       "b\xe2\x82\xac");
    assert_detok_bytes("\x80", FFFD);
    assert_detok_bytes("\xbf\x80", FFFD FFFD);
    assert_detok_bytes("\xc0\x80", FFFD FFFD);          /* overlong */
    assert_detok_bytes("\xc1\xbf", FFFD FFFD);          /* overlong */
    assert_detok_bytes("\xe0\x80\x80", FFFD FFFD FFFD); /* overlong */
    assert_detok_bytes("\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD);
    assert_detok_bytes("\xed\xa0\x80", FFFD FFFD FFFD);          /* surrogate */
    assert_detok_bytes("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* > U+10FFFF */
    assert_detok_bytes("\xf5\x80", FFFD FFFD);
    assert_detok_bytes("\xff", FFFD);
    assert_detok_bytes("\xc3(", FFFD "(");     /* cut short by ASCII */
    assert_detok_bytes("\xe2\x82(", FFFD "("); /* one maximal subpart */
    assert_detok_bytes("\xf0\x9f\x98\xc3\xa9", FFFD "\xc3\xa9");
    assert_detok_bytes("\xf0\x9f\x98", FFFD); /* truncated, then flush */
    assert_detok_bytes("x\xe2\x82", "x" FFFD);
}

/* An invalid byte is released as soon as it is known to be invalid, not at flush. */
static void test_detok_releases_invalid_at_once(void **state)
{
    (void)state;
    struct llamad_detok d;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    llamad_detok_init(&d, test_spm, -1);
    assert_int_equal(llamad_detok_push(&d, byte_token(test_spm, 0xe2), &out), LLAMAD_OK);
    assert_int_equal(out.len, 0);
    int32_t a = test_find_piece(test_spm, "\xe2\x96\x81"
                                          "a");
    assert_int_equal(llamad_detok_push(&d, a, &out), LLAMAD_OK);
    assert_string_equal(out.data, FFFD " a");
    assert_int_equal(d.n_pending, 0);
    assert_int_equal(llamad_detok_push(&d, 32000, &out), LLAMAD_EINVAL);
    assert_string_equal(out.data, FFFD " a");
    llamad_buf_free(&out);
}

static void test_detok_space_after_bos(void **state)
{
    (void)state;
    const int32_t hello_world[] = {15043, 3186}; /* "▁Hello" "▁world" */
    test_assert_detok(test_spm, 1, hello_world, 2, "Hello world");
    test_assert_detok(test_spm, -1, hello_world, 2, " Hello world");
    test_assert_detok(test_spm, 3186, hello_world, 2, " Hello world");
    const int32_t with_bos[] = {1, 15043, 3186};
    test_assert_detok(test_spm, -1, with_bos, 3, "Hello world");
    const int32_t bos_no_space[] = {1, test_find_piece(test_spm, "Hello")};
    test_assert_detok(test_spm, -1, bos_no_space, 2, "Hello");
    const int32_t bos_two_spaces[] = {1, test_find_piece(test_spm, "\xe2\x96\x81\xe2\x96\x81"),
                                      15043};
    test_assert_detok(test_spm, -1, bos_two_spaces, 3, "  Hello");

    /* Streaming: only the piece right after BOS loses its space. */
    struct llamad_detok d;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    llamad_detok_init(&d, test_spm, -1);
    assert_int_equal(llamad_detok_push(&d, 15043, &out), LLAMAD_OK);
    assert_string_equal(out.data, " Hello");
    assert_int_equal(llamad_detok_push(&d, 1, &out), LLAMAD_OK);
    assert_int_equal(llamad_detok_push(&d, 3186, &out), LLAMAD_OK);
    assert_int_equal(llamad_detok_push(&d, 3186, &out), LLAMAD_OK);
    assert_string_equal(out.data, " Helloworld world");
    llamad_buf_free(&out);
}

/* ---- Vocabularies built in memory ---- */

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const toy_pieces[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab",
                                         "abc",   "aa",  "bc",   "<", "s", ">", "<s"};
static const float toy_scores[] = {0, 0, 0, 0, 0, 0, 10, 5, 1, 2, 0, 0, 0, 3};
static const int32_t toy_types[] = {2, 3, 3, 1, 1, 1, 5, 1, 1, 1, 1, 1, 1, 1};

static const struct test_vocab_spec toy = {
    .model = "llama",
    .pieces = toy_pieces,
    .n = N(toy_pieces),
    .scores = toy_scores,
    .n_scores = N(toy_scores),
    .types = toy_types,
    .n_types = N(toy_types),
    .no_space_prefix = true,
};

static void test_merge_rules(void **state)
{
    (void)state;
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_tokenizer *t;
    assert_int_equal(test_load_vocab_spec(&toy, &t, err), LLAMAD_OK);
    assert_false(llamad_tokenizer_add_space_prefix(t));
    /* "ab" scores highest but is unused: it is split back into a, b. */
    test_assert_ids(t, "ab", false, (const int32_t[]){3, 4}, 2);
    /* ab (10) beats bc (2), and abc is reached through it. */
    test_assert_ids(t, "abc", false, (const int32_t[]){7}, 1);
    /* Equal scores: the leftmost pair merges first. */
    test_assert_ids(t, "aaa", false, (const int32_t[]){8, 3}, 2);
    /* "<s" merges, "<s>" is a control piece and never forms. */
    test_assert_ids(t, "<s>", false, (const int32_t[]){13, 12}, 2);
    /* No byte tokens: a character without a piece is one <unk>. */
    test_assert_ids(t,
                    "d\xc3\xa9"
                    "a",
                    false, (const int32_t[]){0, 0, 3}, 3);
    /* No space prefix: nothing dropped after BOS either. */
    test_assert_ids(t, "", true, (const int32_t[]){1}, 1);
    test_assert_detok(t, 1, (const int32_t[]){3, 0, 1, 2}, 4, "a");
    llamad_tokenizer_free(t);
}

/* A chat marker stored as a user-defined piece is never what typed text becomes,
 * even where merging reaches it: it is split back like an unused piece. Other
 * user-defined pieces still are. */
static void test_user_defined_markers_not_from_text(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "<unk>", "<s>", "</s>", "[",    "I",     "N",      "S",  "T",   "]",    "F",
        "O",     "[I",  "[IN",  "[INS", "[INST", "[INST]", "[F", "[FO", "[FOO", "[FOO]",
    };
    static const float scores[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 4, 5, 6, 2, 3, 4, 5};
    int32_t types[N(pieces)];
    for (size_t i = 0; i < N(pieces); i++)
        types[i] = i == 0  ? LLAMAD_TOKEN_UNKNOWN
                   : i < 3 ? LLAMAD_TOKEN_CONTROL
                           : LLAMAD_TOKEN_NORMAL;
    types[15] = types[19] = LLAMAD_TOKEN_USER_DEFINED; /* "[INST]", "[FOO]" */
    const struct test_vocab_spec s = {.model = "llama",
                                      .pieces = pieces,
                                      .n = N(pieces),
                                      .scores = scores,
                                      .n_scores = N(scores),
                                      .types = types,
                                      .n_types = N(types),
                                      .no_space_prefix = true};
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_tokenizer *t;
    assert_int_equal(test_load_vocab_spec(&s, &t, err), LLAMAD_OK);
    test_assert_ids(t, "[INST]", false, (const int32_t[]){14, 8}, 2);
    test_assert_ids(t, "x[INST][INST]", false, (const int32_t[]){0, 14, 8, 14, 8}, 5);
    test_assert_ids(t, "[FOO]", false, (const int32_t[]){19}, 1);
    assert_int_equal(llamad_tokenizer_find(t, "[INST]", 6),
                     15); /* still a piece of the vocabulary */
    llamad_tokenizer_free(t);
}

/* A hostile vocabulary: "a" and unused pieces a^2 .. a^CHAIN, each scoring above
 * the one before, so that a^CHAIN merges one letter at a time into a chain of
 * CHAIN - 1 merges, and is then split back letter by letter. */
#define CHAIN 6000

struct chain_run {
    const struct llamad_tokenizer *t;
    const char *text;
    int64_t n;
    int32_t *ids;
};

static void *tokenize_chain(void *arg)
{
    struct chain_run *r = arg;
    r->n = llamad_tokenize(r->t, r->text, CHAIN, false, r->ids, CHAIN);
    return NULL;
}

static void test_long_merge_chain_on_small_stack(void **state)
{
    (void)state;
    char *text = malloc(CHAIN + 1);
    const char **pieces = malloc((CHAIN + 3) * sizeof *pieces);
    float *scores = malloc((CHAIN + 3) * sizeof *scores);
    int32_t *types = malloc((CHAIN + 3) * sizeof *types);
    int32_t *ids = malloc(CHAIN * sizeof *ids);
    assert_true(text && pieces && scores && types && ids);
    memset(text, 'a', CHAIN);
    text[CHAIN] = '\0';
    static const char *const specials[] = {"<unk>", "<s>", "</s>"};
    for (size_t i = 0; i < CHAIN + 3; i++) {
        /* piece 3 + k is a^(k+1), a suffix of text */
        pieces[i] = i < 3 ? specials[i] : text + CHAIN - (i - 2);
        scores[i] = (float)i;
        types[i] = i == 0   ? LLAMAD_TOKEN_UNKNOWN
                   : i < 3  ? LLAMAD_TOKEN_CONTROL
                   : i == 3 ? LLAMAD_TOKEN_NORMAL
                            : LLAMAD_TOKEN_UNUSED;
    }
    const struct test_vocab_spec s = {.model = "llama",
                                      .pieces = pieces,
                                      .n = CHAIN + 3,
                                      .scores = scores,
                                      .n_scores = CHAIN + 3,
                                      .types = types,
                                      .n_types = CHAIN + 3,
                                      .no_space_prefix = true};
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_tokenizer *t;
    assert_int_equal(test_load_vocab_spec(&s, &t, err), LLAMAD_OK);
    /* 128 KiB of stack: a frame per merge of the chain would need more. */
    struct chain_run r = {t, text, -1, ids};
    pthread_attr_t attr;
    pthread_t thread;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 128 * 1024), 0);
    assert_int_equal(pthread_create(&thread, &attr, tokenize_chain, &r), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_int_equal(r.n, CHAIN);
    for (size_t i = 0; i < CHAIN; i++)
        assert_int_equal(ids[i], 3);
    llamad_tokenizer_free(t);
    free(ids);
    free(types);
    free(scores);
    free(pieces);
    free(text);
}

static void test_defaults(void **state)
{
    (void)state;
    const char *pieces[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "x", ""};
    const struct test_vocab_spec s = {.model = "llama", .pieces = pieces, .n = N(pieces)};
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_tokenizer *t;
    assert_int_equal(test_load_vocab_spec(&s, &t, err), LLAMAD_OK);
    assert_int_equal(llamad_tokenizer_type(t), LLAMAD_VOCAB_SPM);
    assert_int_equal(llamad_tokenizer_bos(t), 1);
    assert_int_equal(llamad_tokenizer_eos(t), 2);
    assert_int_equal(llamad_tokenizer_unk(t), 0);
    assert_true(llamad_tokenizer_add_bos(t));
    assert_true(llamad_tokenizer_add_space_prefix(t));
    assert_true(llamad_tokenizer_is_eog(t, 2));
    assert_false(llamad_tokenizer_is_eog(t, 1));
    assert_int_equal(llamad_tokenizer_kind(t, 1), LLAMAD_TOKEN_NORMAL);
    assert_string_equal(llamad_tokenizer_piece(t, 5), ""); /* kept, never looked up */
    assert_int_equal(llamad_tokenizer_find(t, "", 0), -1);
    assert_null(llamad_tokenizer_piece(t, 6));
    assert_int_equal(llamad_tokenizer_kind(t, 6), 0);
    test_assert_ids(t, "x", true, (const int32_t[]){1, 3, 4}, 3);
    llamad_tokenizer_free(t);

    /* 0xFFFFFFFF means "no such token". */
    const struct test_vocab_spec no_eos = {.model = "llama",
                                           .pieces = pieces,
                                           .n = N(pieces),
                                           .id_key = "tokenizer.ggml.eos_token_id",
                                           .id_value = UINT32_MAX};
    assert_int_equal(test_load_vocab_spec(&no_eos, &t, err), LLAMAD_OK);
    assert_int_equal(llamad_tokenizer_eos(t), -1);
    assert_false(llamad_tokenizer_is_eog(t, 2));
    llamad_tokenizer_free(t);
}

static void test_refuses_other_models(void **state)
{
    (void)state;
    const char *pieces[] = {"a", "b", "ab"};
    const struct test_vocab_spec s = {.model = "bert", .pieces = pieces, .n = N(pieces)};
    test_assert_refused(&s, LLAMAD_EUNSUPPORTED, "bert");
    const struct test_vocab_spec other = {.model = "mystery", .pieces = pieces, .n = N(pieces)};
    test_assert_refused(&other, LLAMAD_EUNSUPPORTED, "mystery");
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    struct test_vocab_spec s = toy;
    s.n_scores = s.n - 1;
    test_assert_refused(&s, LLAMAD_EFORMAT, "tokenizer.ggml.scores");

    int32_t types[N(toy_types) + 1];
    memcpy(types, toy_types, sizeof toy_types);
    types[N(toy_types)] = LLAMAD_TOKEN_NORMAL;
    s = toy;
    s.types = types;
    s.n_types = s.n + 1;
    test_assert_refused(&s, LLAMAD_EFORMAT, "tokenizer.ggml.token_type");

    s.n_types = s.n;
    types[4] = 7;
    test_assert_refused(&s, LLAMAD_EFORMAT, "token 4");
    types[4] = 0;
    test_assert_refused(&s, LLAMAD_EFORMAT, "token 4");
    types[4] = LLAMAD_TOKEN_BYTE; /* "b" is no <0xNN> */
    test_assert_refused(&s, LLAMAD_EFORMAT, "token 4");

    s = toy;
    s.id_key = "tokenizer.ggml.bos_token_id";
    s.id_value = (uint32_t)N(toy_pieces);
    test_assert_refused(&s, LLAMAD_EFORMAT, "tokenizer.ggml.bos_token_id");

    s = toy;
    s.n = s.n_scores = s.n_types = 0;
    test_assert_refused(&s, LLAMAD_EFORMAT, "tokenizer.ggml.tokens");

    s = toy;
    s.id_key = "tokenizer.ggml.unknown_token_id";
    s.id_value = UINT32_MAX; /* neither <unk> nor byte tokens */
    test_assert_refused(&s, LLAMAD_EUNSUPPORTED, "unknown token");
}

static void test_refuses_nul_in_piece(void **state)
{
    (void)state;
    struct llamad_gguf_value items[2] = {
        {.type = LLAMAD_GGUF_STRING, .str = {"<unk>", 5}},
        {.type = LLAMAD_GGUF_STRING, .str = {"a\0b", 3}},
    };
    struct llamad_gguf_value arr = {.type = LLAMAD_GGUF_ARRAY};
    arr.arr.elem_type = LLAMAD_GGUF_STRING;
    arr.arr.count = 2;
    arr.arr.items = items;
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(llamad_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama"), 0);
    assert_int_equal(llamad_gguf_writer_add_value(w, "tokenizer.ggml.tokens", &arr), 0);
    uint8_t *mem = NULL;
    size_t size = 0;
    assert_int_equal(llamad_gguf_writer_to_memory(w, &mem, &size, err, sizeof err), 0);
    llamad_gguf_writer_free(w);
    struct llamad_gguf *g = NULL;
    assert_int_equal(llamad_gguf_open_memory(mem, size, "nul", &g, err, sizeof err), 0);
    struct llamad_tokenizer *t = NULL;
    assert_int_equal(llamad_tokenizer_load(g, &t, err, sizeof err), LLAMAD_EFORMAT);
    assert_null(t);
    assert_non_null(strstr(err, "NUL"));
    llamad_gguf_close(g);
    free(mem);
}

/* ---- UTF-8 validator ---- */

static void test_utf8_valid_prefix(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len, valid;
    } cases[] = {
        {"", 0, 0},
        {"abc", 3, 3},
        {"\x00"
         "a",
         2, 2},
        {"\xc2\x80", 2, 2},         /* U+0080 */
        {"\xdf\xbf", 2, 2},         /* U+07FF */
        {"\xe0\xa0\x80", 3, 3},     /* U+0800 */
        {"\xed\x9f\xbf", 3, 3},     /* U+D7FF */
        {"\xee\x80\x80", 3, 3},     /* U+E000 */
        {"\xef\xbf\xbf", 3, 3},     /* U+FFFF */
        {"\xf0\x90\x80\x80", 4, 4}, /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
        {"a\xc0\x80", 3, 1},        /* overlong */
        {"\xc1\xbf", 2, 0},         /* overlong */
        {"\xe0\x80\x80", 3, 0},     /* overlong */
        {"\xe0\x9f\xbf", 3, 0},     /* overlong */
        {"\xf0\x80\x80\x80", 4, 0}, /* overlong */
        {"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong */
        {"ab\xed\xa0\x80", 5, 2},   /* surrogate U+D800 */
        {"\xed\xbf\xbf", 3, 0},     /* surrogate U+DFFF */
        {"\xf4\x90\x80\x80", 4, 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xff", 1, 0},
        {"\x80", 1, 0},         /* lone continuation */
        {"a\xc3", 2, 1},        /* truncated */
        {"\xe2\x82", 2, 0},     /* truncated */
        {"\xf0\x9f\x98", 3, 0}, /* truncated */
        {"\xc3\xa9\xe2\x82\xac!", 6, 6},
        {"\xc3\xa9\xe2\x82\xac!", 4, 2}, /* the length limits the scan */
    };
    for (size_t i = 0; i < N(cases); i++)
        if (llamad_utf8_valid_prefix(cases[i].s, cases[i].len) != cases[i].valid)
            fail_msg("case %zu: valid prefix %zu, want %zu", i,
                     llamad_utf8_valid_prefix(cases[i].s, cases[i].len), cases[i].valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_file_cases),
        cmocka_unit_test(test_vocab_file_round_trip),
        cmocka_unit_test(test_stories_prompt),
        cmocka_unit_test(test_bos_prepended),
        cmocka_unit_test(test_size_query),
        cmocka_unit_test(test_special_strings_are_text),
        cmocka_unit_test(test_byte_fallback_round_trip),
        cmocka_unit_test(test_invalid_text_bytes),
        cmocka_unit_test(test_long_text),
        cmocka_unit_test(test_token_to_bytes),
        cmocka_unit_test(test_detok_streams_whole_chars),
        cmocka_unit_test(test_detok_invalid_bytes),
        cmocka_unit_test(test_detok_releases_invalid_at_once),
        cmocka_unit_test(test_detok_space_after_bos),
        cmocka_unit_test(test_merge_rules),
        cmocka_unit_test(test_user_defined_markers_not_from_text),
        cmocka_unit_test(test_long_merge_chain_on_small_stack),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_refuses_other_models),
        cmocka_unit_test(test_refuses_malformed),
        cmocka_unit_test(test_refuses_nul_in_piece),
        cmocka_unit_test(test_utf8_valid_prefix),
    };
    return cmocka_run_group_tests(tests, test_vocabs_setup, test_vocabs_teardown);
}
