/* The byte-level BPE tokenizer: LLaMA-3's vocabulary (from ../shared) against
 * llama.cpp's cases and the reference prompts, the LLaMA-3 pre-tokenizer's
 * pieces, small vocabularies written here, and the work the merge queue does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "../src/tokenizer/tokenizer_merge.h"  /* the merge queue, counted */
#include "../src/tokenizer/tokenizer_pretok.h" /* the pre-tokenizer's pieces */
#include "llamad/base/buf.h"
#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/server/chat.h"
#include "llamad/tokenizer/tokenizer.h"
#include "testutil.h"
#include "tokenizer_testutil.h"

#define LLAMA3_VOCAB "testdata/tokenizer/ggml-vocab-llama3-bpe.gguf"
#define LLAMA3_REFERENCE "testdata/reference/synth-llama3-F16.json"
#define BOS 128000
#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct llamad_tokenizer *llama3; /* NULL while ../shared is absent */
static char llama3_path[4096];

static int setup(void **state)
{
    (void)state;
    const char *p = test_shared_path(LLAMA3_VOCAB);
    if (!p)
        return 0;
    snprintf(llama3_path, sizeof llama3_path, "%s", p);
    llama3 = test_load_tokenizer(llama3_path);
    return llama3 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    llamad_tokenizer_free(llama3);
    return 0;
}

static const struct llamad_tokenizer *need_llama3(void)
{
    if (!llama3) {
        print_message("SKIP: ../shared/" LLAMA3_VOCAB " is not there (set LLAMAD_SHARED_DIR)\n");
        skip();
    }
    return llama3;
}

/* All the ids text needs, in a buffer the caller frees; *n gets the count. */
static int32_t *tokenize_all(const struct llamad_tokenizer *t, const char *text, size_t len,
                             bool bos, size_t *n)
{
    int64_t need = llamad_tokenize(t, text, len, bos, NULL, 0);
    assert_true(need >= 0);
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    assert_non_null(ids);
    assert_int_equal(llamad_tokenize(t, text, len, bos, ids, (size_t)need), need);
    *n = (size_t)need;
    return ids;
}

/* The text comes back: through the streaming detokenizer (valid UTF-8 text), and
 * byte for byte from the tokens' bytes. */
static void assert_round_trip(const struct llamad_tokenizer *t, const char *text, size_t len,
                              bool valid_utf8)
{
    size_t n;
    int32_t *ids = tokenize_all(t, text, len, true, &n);
    assert_int_equal(ids[0], llamad_tokenizer_bos(t));
    struct llamad_buf out = LLAMAD_BUF_INIT;
    if (valid_utf8) {
        assert_int_equal(llamad_detokenize(t, -1, ids, n, &out), LLAMAD_OK);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.len ? out.data : "", text, len);
        llamad_buf_clear(&out);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(llamad_token_to_bytes(t, ids[i], &out), LLAMAD_OK);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.len ? out.data : "", text, len);
    llamad_buf_free(&out);
    free(ids);
}

/* ---- LLaMA-3 ---- */

static void test_llama3_vocab(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    assert_int_equal(llamad_tokenizer_type(t), LLAMAD_VOCAB_BPE);
    assert_int_equal(llamad_tokenizer_n_vocab(t), 128256);
    assert_int_equal(llamad_tokenizer_bos(t), BOS);
    assert_int_equal(llamad_tokenizer_eos(t), 128009);
    assert_int_equal(llamad_tokenizer_unk(t), -1);
    assert_true(llamad_tokenizer_add_bos(t));
    assert_false(llamad_tokenizer_add_space_prefix(t));
    assert_string_equal(llamad_tokenizer_piece(t, 1917), "\xc4\xa0world"); /* "Ġworld" */
    assert_int_equal(llamad_tokenizer_kind(t, BOS), LLAMAD_TOKEN_CONTROL);
}

/* Generation ends at any of <|eot_id|> (the file's EOS), <|eom_id|> and
 * <|end_of_text|>, found by their text; not at BOS or another control token. */
static void test_llama3_end_of_generation(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    const int32_t ends[] = {128009, 128008, 128001};
    for (size_t i = 0; i < N(ends); i++)
        assert_true(llamad_tokenizer_is_eog(t, ends[i]));
    const int32_t others[] = {BOS, 128006 /* <|start_header_id|> */, 1917, -1, 128256};
    for (size_t i = 0; i < N(others); i++)
        assert_false(llamad_tokenizer_is_eog(t, others[i]));
}

/* The LLaMA-3 chat template on its own vocabulary: BOS once, each message as
 * <|start_header_id|>role<|end_header_id|> "\n\n" content (stripped) <|eot_id|>,
 * the three markers as their control tokens, then the assistant's header left
 * open; a user's typed "<|eot_id|>" stays text. */
static void test_llama3_chat_template(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    struct llamad_chat_message msgs[] = {
        {.role = "system", .content = "Be brief."},
        {.role = "user", .content = "  Hi <|eot_id|> there\n"},
    };
    int32_t *ids;
    size_t n;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(
        llamad_chat_render(LLAMAD_CHAT_LLAMA3, t, msgs, N(msgs), NULL, &ids, &n, err, sizeof err),
        LLAMAD_OK);
    const int32_t head = llamad_tokenizer_find(t, "<|start_header_id|>", 19);
    const int32_t tail = llamad_tokenizer_find(t, "<|end_header_id|>", 17);
    int32_t want[256];
    size_t w = 0;
    want[w++] = BOS;
    const char *parts[][2] = {
        {"system", "\n\nBe brief."}, {"user", "\n\nHi <|eot_id|> there"}, {"assistant", "\n\n"}};
    for (size_t i = 0; i < N(parts); i++) {
        want[w++] = head;
        w += (size_t)llamad_tokenize(t, parts[i][0], strlen(parts[i][0]), false, want + w, 8);
        want[w++] = tail;
        w += (size_t)llamad_tokenize(t, parts[i][1], strlen(parts[i][1]), false, want + w, 32);
        if (i + 1 < N(parts))
            want[w++] = 128009; /* <|eot_id|> */
    }
    assert_int_equal(n, w);
    assert_memory_equal(ids, want, w * sizeof *ids);
    int eots = 0;
    for (size_t i = 0; i < n; i++)
        eots += ids[i] == 128009;
    assert_int_equal(eots, 2); /* the typed one is characters */
    free(ids);
}

static void test_llama3_cases(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    struct test_vocab_cases c;
    test_vocab_cases_read(llama3_path, &c);
    assert_int_equal(c.n, 46);
    test_vocab_cases_assert(t, &c, "ggml-vocab-llama3-bpe");
    for (size_t i = 0; i < c.n; i++)
        assert_round_trip(t, c.text[i], c.len[i], true);
    test_vocab_cases_free(&c);
}

/* The prompts of the synth-llama3 reference file, as llama.cpp tokenized them
 * (BOS first). */
static void test_llama3_reference_prompts(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    const char *path = test_shared_path(LLAMA3_REFERENCE);
    assert_non_null(path);
    size_t size;
    char *json = test_read_file(path, &size);
    assert_non_null(json);
    cJSON *root = cJSON_ParseWithLength(json, size);
    assert_non_null(root);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    assert_int_equal(cJSON_GetArraySize(cases), 5);
    cJSON_ArrayForEach(c, cases)
    {
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItem(c, "prompt"));
        const cJSON *want = cJSON_GetObjectItem(c, "prompt_ids");
        assert_non_null(prompt);
        int32_t ids[TEST_MAX_IDS];
        size_t n = test_tokenize(t, prompt, strlen(prompt), true, ids);
        assert_int_equal(n, cJSON_GetArraySize(want));
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ids[i], cJSON_GetArrayItem(want, (int)i)->valueint);
        assert_round_trip(t, prompt, strlen(prompt), true);
    }
    cJSON_Delete(root);
    free(json);
}

/* Special-token text typed into a prompt is characters: no control token comes
 * of it, and it comes back as typed. The tokens exist; the chat template puts
 * them in by id. */
static void test_llama3_special_text(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    const char *texts[] = {"<|eot_id|>", "<|begin_of_text|>",
                           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"};
    for (size_t i = 0; i < N(texts); i++) {
        int32_t ids[TEST_MAX_IDS];
        size_t n = test_tokenize(t, texts[i], strlen(texts[i]), false, ids);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(llamad_tokenizer_kind(t, ids[k]), LLAMAD_TOKEN_NORMAL);
        test_assert_detok(t, BOS, ids, n, texts[i]);
    }
    int32_t ids[TEST_MAX_IDS];
    assert_int_equal(test_tokenize(t, "<|eot_id|>", 10, false, ids), 7); /* <, |, e, ot, ... */
    assert_int_equal(ids[0], test_find_piece(t, "<"));
    assert_int_equal(ids[1], test_find_piece(t, "|"));
    assert_int_equal(test_find_piece(t, "<|eot_id|>"), 128009);
    assert_int_equal(llamad_tokenizer_kind(t, 128009), LLAMAD_TOKEN_CONTROL);
    test_assert_detok(t, -1, (const int32_t[]){BOS, 128009}, 2, "");
}

/* The emoji U+1F999 is three tokens, none of them a whole character: the
 * streaming detokenizer holds the bytes until the character is complete. */
static void test_llama3_stream_holds_partial_chars(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    int32_t ids[TEST_MAX_IDS];
    size_t n = test_tokenize(t, "\xf0\x9f\xa6\x99", 4, false, ids);
    assert_int_equal(n, 3);
    struct llamad_detok d;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    llamad_detok_init(&d, t, BOS);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(llamad_detok_push(&d, ids[i], &out), LLAMAD_OK);
        assert_int_equal(out.len, 0);
    }
    assert_int_equal(llamad_detok_push(&d, ids[2], &out), LLAMAD_OK);
    assert_string_equal(out.data, "\xf0\x9f\xa6\x99");
    llamad_buf_free(&out);
}

/* 900 KB prompts that are one pre-tokenizer piece (a letter, an emoji
 * repeated), many short ones (digits), and random bytes: each comes back whole.
 * The time is printed, not held to a bound (the merge queue's work is:
 * test_merge_queue_work). */
static void test_llama3_long_inputs(void **state)
{
    (void)state;
    const struct llamad_tokenizer *t = need_llama3();
    const size_t len = 900000;
    char *text = malloc(len);
    assert_non_null(text);
    for (int kind = 0; kind < 4; kind++) {
        static const char *const names[] = {"one letter", "one emoji", "digits", "random bytes"};
        for (size_t i = 0; i < len; i++)
            text[i] = kind == 0   ? 'a'
                      : kind == 1 ? "\xf0\x9f\xa6\x99"[i % 4]
                      : kind == 2 ? (char)('0' + i % 10)
                                  : (char)test_rand_u32();
        double t0 = llamad_now_seconds();
        size_t n;
        free(tokenize_all(t, text, len, false, &n));
        print_message("  900 KB of %s: %zu tokens in %.3f s\n", names[kind], n,
                      llamad_now_seconds() - t0);
        if (kind == 2)
            assert_int_equal(n, len / 3); /* every three digits are one token */
        assert_round_trip(t, text, len, kind < 3);
    }
    free(text);
}

/* ---- The LLaMA-3 pre-tokenizer ---- */

struct pieces {
    const char *text;
    char got[512];
};

/* Records the pieces as "piece|piece|...". */
static int record(void *ctx, size_t start, size_t len)
{
    struct pieces *p = ctx;
    size_t at = strlen(p->got);
    assert_true(at + len + 2 < sizeof p->got);
    if (at)
        p->got[at++] = '|';
    memcpy(p->got + at, p->text + start, len);
    p->got[at + len] = '\0';
    return LLAMAD_OK;
}

static void assert_pieces(const struct llamad_pretok *pre, const char *text, const char *want)
{
    struct pieces p = {.text = text};
    assert_int_equal(llamad_pretok_split(pre, text, strlen(text), record, &p), LLAMAD_OK);
    assert_string_equal(p.got, want);
}

static void test_pretok_llama3(void **state)
{
    (void)state;
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_pretok *pre = NULL;
    assert_int_equal(llamad_pretok_new("llama-bpe", 9, &pre, err, sizeof err), LLAMAD_OK);
    assert_pieces(pre, "Hello world", "Hello| world");
    assert_pieces(pre, "I'M sure they'll", "I|'M| sure| they|'ll");
    assert_pieces(pre, "1234567 x3.14", "123|456|7| x|3|.|14");
    assert_pieces(pre, "a  \n\n b", "a|  \n\n| b");
    assert_pieces(pre, "x   y  ", "x|  | y|  ");
    assert_pieces(pre, "f(n-1);\n}\n", "f|(n|-|1|);\n|}\n");
    assert_pieces(pre, "na\xc3\xafve \xe4\xbd\xa0\xe5\xa5\xbd", /* naive, ni hao */
                  "na\xc3\xafve| \xe4\xbd\xa0\xe5\xa5\xbd");
    /* U+180E is not white space to Unicode (nor to the reference tokenizers),
     * though it is to PCRE2's \s: it stays with the punctuation. */
    assert_pieces(pre, "!\xe1\xa0\x8e", "!\xe1\xa0\x8e");
    /* Invalid UTF-8: a run of it is a piece of its own. */
    assert_pieces(pre,
                  "a\xff\xfe"
                  "b\xc3",
                  "a|\xff\xfe|b|\xc3");
    llamad_pretok_free(pre);

    assert_int_equal(llamad_pretok_new("qwen2", 5, &pre, err, sizeof err), LLAMAD_EUNSUPPORTED);
    assert_null(pre);
    assert_non_null(strstr(err, "\"qwen2\""));
}

/* ---- Vocabularies written here ---- */

/* GPT-2's spelling of each byte, stated here independently of the tokenizer:
 * Latin-1's printable bytes are themselves, the other 68 U+0100 onwards. */
static char spelled[256][3];
static const char *pieces[256 + 8];

static size_t make_byte_pieces(void)
{
    int next = 0x100;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int c = printable ? b : next++;
        if (c < 0x80)
            spelled[b][0] = (char)c;
        else
            snprintf(spelled[b], sizeof spelled[b], "%c%c", 0xC0 | c >> 6, 0x80 | (c & 0x3F));
        pieces[b] = spelled[b];
    }
    assert_int_equal(next, 0x144);
    return 256;
}

/* The byte pieces, then: ab bc abc aa xyz <|x|> (control, BOS) and a piece
 * outside the byte-level spelling. */
static struct test_vocab_spec toy_spec(const char *const *merges, size_t n_merges, int32_t *types)
{
    size_t n = make_byte_pieces();
    const char *more[] = {"ab", "bc", "abc", "aa", "xyz", "<|x|>", "\xe4\xb8\xad"};
    for (size_t i = 0; i < N(more); i++) {
        types[n] = i == 5 ? LLAMAD_TOKEN_CONTROL : LLAMAD_TOKEN_NORMAL;
        pieces[n++] = more[i];
    }
    for (size_t i = 0; i < 256; i++)
        types[i] = LLAMAD_TOKEN_NORMAL;
    return (struct test_vocab_spec){.model = "gpt2",
                                    .pre = "llama-bpe",
                                    .pieces = pieces,
                                    .n = n,
                                    .types = types,
                                    .n_types = n,
                                    .merges = merges,
                                    .n_merges = n_merges,
                                    .id_key = "tokenizer.ggml.bos_token_id",
                                    .id_value = 261};
}

enum { AB = 256, BC, ABC, AA, XYZ, CONTROL, OUTSIDE };

static struct llamad_tokenizer *load_toy(const char *const *merges, size_t n_merges)
{
    int32_t types[256 + 8];
    struct test_vocab_spec s = toy_spec(merges, n_merges, types);
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_tokenizer *t = NULL;
    if (test_load_vocab_spec(&s, &t, err))
        fail_msg("%s", err);
    return t;
}

static void test_merge_order(void **state)
{
    (void)state;
    const char *ab_first[] = {"a b", "b c", "ab c", "a a"};
    struct llamad_tokenizer *t = load_toy(ab_first, N(ab_first));
    int32_t space = test_find_piece(t, "\xc4\xa0"); /* U+0120 spells the byte 0x20 */
    test_assert_ids(t, "abcc", false, (const int32_t[]){ABC, 'c'}, 2);
    test_assert_ids(t, "abc", true, (const int32_t[]){CONTROL, ABC}, 2);
    /* Equal ranks: the leftmost pair first. */
    test_assert_ids(t, "aaa", false, (const int32_t[]){AA, 'a'}, 2);
    /* Merging stays within a pre-tokenizer piece: " ab" is Ġ, ab. */
    test_assert_ids(t, "c ab", false, (const int32_t[]){'c', space, AB}, 3);
    /* A word that is a piece is that token, though no merge leads to it. */
    test_assert_ids(t, "xyz", false, (const int32_t[]){XYZ}, 1);
    /* Control pieces are not text's: "<|x|>" is characters. */
    test_assert_ids(t, "<|x|>", false, (const int32_t[]){'<', '|', 'x', '|', '>'}, 5);
    test_assert_detok(t, -1, (const int32_t[]){CONTROL, AB, space, OUTSIDE}, 4, "ab \xe4\xb8\xad");
    assert_false(llamad_tokenizer_add_space_prefix(t));
    llamad_tokenizer_free(t);

    const char *bc_first[] = {"b c", "a b", "ab c"};
    t = load_toy(bc_first, N(bc_first));
    test_assert_ids(t, "abcc", false, (const int32_t[]){'a', BC, 'c'}, 3);
    /* A word that is a piece is that token, though no merge leads to it now. */
    test_assert_ids(t, "abc", false, (const int32_t[]){ABC}, 1);
    llamad_tokenizer_free(t);
}

static void test_refuses(void **state)
{
    (void)state;
    int32_t types[256 + 8];
    const char *merges[] = {"a b"};
    struct test_vocab_spec s = toy_spec(merges, N(merges), types);
    s.pre = "qwen2";
    test_assert_refused(&s, LLAMAD_EUNSUPPORTED, "\"qwen2\"");
    s.pre = NULL;
    test_assert_refused(&s, LLAMAD_EUNSUPPORTED, "tokenizer.ggml.pre");

    s = toy_spec(NULL, 0, types);
    test_assert_refused(&s, LLAMAD_EFORMAT, "tokenizer.ggml.merges");
    const char *bad[][2] = {{"a b", "ab"}, {"a b", "a q"}, {"a b", "x y"}, {"a b", " a"}};
    for (size_t i = 0; i < N(bad); i++) {
        s = toy_spec(bad[i], 2, types);
        test_assert_refused(&s, LLAMAD_EFORMAT, "entry 1");
    }

    s = toy_spec(merges, N(merges), types);
    pieces['!'] = "!!"; /* no piece spells the byte '!' any more */
    test_assert_refused(&s, LLAMAD_EUNSUPPORTED, "0x21");
}

/* ---- The merge queue's work ---- */

static size_t pair_calls;

/* Every pair merges, shorter ones first: like BPE on one letter repeated. */
static bool any_pair(const void *ctx, const struct llamad_merge_node *l,
                     const struct llamad_merge_node *r, float *priority, int32_t *id)
{
    (void)ctx;
    pair_calls++;
    *priority = -(float)(l->len + r->len);
    *id = 0;
    return true;
}

/* A word of 900,000 symbols merges into one with at most four pair lookups per
 * symbol (n - 1 to start; for each of the n - 1 merges, itself and the two new
 * pairs), each with one O(log n) heap step; merging by rescanning the word
 * would take some n^2 / 2. */
static void test_merge_queue_work(void **state)
{
    (void)state;
    const size_t n = 900000;
    struct llamad_merger m = LLAMAD_MERGER_INIT(any_pair, NULL);
    assert_int_equal(llamad_merger_start(&m, n), LLAMAD_OK);
    for (size_t i = 0; i < n; i++)
        llamad_merger_push(&m, (uint32_t)i, 1, 0);
    pair_calls = 0;
    llamad_merger_run(&m);
    assert_true(pair_calls <= 4 * n);
    assert_int_equal(m.sym[0].next, -1);
    assert_int_equal(m.node[m.sym[0].node].len, n);
    llamad_merger_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_vocab),
        cmocka_unit_test(test_llama3_end_of_generation),
        cmocka_unit_test(test_llama3_chat_template),
        cmocka_unit_test(test_llama3_cases),
        cmocka_unit_test(test_llama3_reference_prompts),
        cmocka_unit_test(test_llama3_special_text),
        cmocka_unit_test(test_llama3_stream_holds_partial_chars),
        cmocka_unit_test(test_llama3_long_inputs),
        cmocka_unit_test(test_pretok_llama3),
        cmocka_unit_test(test_merge_order),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_merge_queue_work),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
