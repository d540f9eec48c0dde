#include "tokenizer_testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/format/gguf.h"
#include "testutil.h"

#define CASE_SEPARATOR "\n__ggml_vocab_test__\n"

struct llamad_tokenizer *test_spm, *test_stories;

int test_vocabs_setup(void **state)
{
    (void)state;
    test_spm = test_load_tokenizer(TEST_SPM_VOCAB_FILE);
    test_stories = test_load_tokenizer(test_model_path("stories260K.gguf"));
    return test_spm && test_stories ? 0 : -1;
}

int test_vocabs_teardown(void **state)
{
    (void)state;
    llamad_tokenizer_free(test_spm);
    llamad_tokenizer_free(test_stories);
    return 0;
}

/* ---- Vocabularies written in memory ---- */

static void add_strings(struct llamad_gguf_writer *w, const char *key, const char *const *s,
                        size_t n)
{
    if (s)
        assert_int_equal(llamad_gguf_writer_add_str_array(w, key, s, n), 0);
}

int test_load_vocab_spec(const struct test_vocab_spec *s, struct llamad_tokenizer **t, char *err)
{
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(llamad_gguf_writer_add_str(w, "tokenizer.ggml.model", s->model), 0);
    if (s->pre)
        assert_int_equal(llamad_gguf_writer_add_str(w, "tokenizer.ggml.pre", s->pre), 0);
    add_strings(w, "tokenizer.ggml.tokens", s->pieces, s->n);
    add_strings(w, "tokenizer.ggml.merges", s->merges, s->n_merges);
    if (s->scores)
        assert_int_equal(llamad_gguf_writer_add_array(w, "tokenizer.ggml.scores",
                                                      LLAMAD_GGUF_FLOAT32, s->scores, s->n_scores),
                         0);
    if (s->types)
        assert_int_equal(llamad_gguf_writer_add_array(w, "tokenizer.ggml.token_type",
                                                      LLAMAD_GGUF_INT32, s->types, s->n_types),
                         0);
    if (s->no_space_prefix)
        assert_int_equal(llamad_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", false),
                         0);
    if (s->no_bos)
        assert_int_equal(llamad_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", false), 0);
    if (s->id_key)
        assert_int_equal(llamad_gguf_writer_add_u32(w, s->id_key, s->id_value), 0);
    uint8_t *mem = NULL;
    size_t size = 0;
    assert_int_equal(llamad_gguf_writer_to_memory(w, &mem, &size, err, LLAMAD_ERR_MAX), 0);
    llamad_gguf_writer_free(w);
    struct llamad_gguf *g = NULL;
    assert_int_equal(llamad_gguf_open_memory(mem, size, "vocab", &g, err, LLAMAD_ERR_MAX), 0);
    *t = NULL;
    int rc = llamad_tokenizer_load(g, t, err, LLAMAD_ERR_MAX);
    llamad_gguf_close(g);
    free(mem);
    return rc;
}

void test_assert_refused(const struct test_vocab_spec *s, int code, const char *needle)
{
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_tokenizer *t = NULL;
    assert_int_equal(test_load_vocab_spec(s, &t, err), code);
    assert_null(t);
    if (!strstr(err, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

/* ---- Tokenizing and detokenizing ---- */

size_t test_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len, bool bos,
                     int32_t *ids)
{
    int64_t n = llamad_tokenize(t, text, len, bos, ids, TEST_MAX_IDS);
    assert_true(n >= 0 && n <= TEST_MAX_IDS);
    return (size_t)n;
}

void test_assert_ids(const struct llamad_tokenizer *t, const char *text, bool bos,
                     const int32_t *want, size_t n_want)
{
    int32_t ids[TEST_MAX_IDS];
    size_t n = test_tokenize(t, text, strlen(text), bos, ids);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
}

void test_assert_detok(const struct llamad_tokenizer *t, int32_t prev, const int32_t *ids, size_t n,
                       const char *want)
{
    struct llamad_buf out = LLAMAD_BUF_INIT;
    assert_int_equal(llamad_detokenize(t, prev, ids, n, &out), LLAMAD_OK);
    assert_string_equal(out.len ? out.data : "", want);
    llamad_buf_free(&out);
}

int32_t test_find_piece(const struct llamad_tokenizer *t, const char *piece)
{
    int32_t id = llamad_tokenizer_find(t, piece, strlen(piece));
    assert_true(id >= 0);
    return id;
}

/* ---- llama.cpp's case files ---- */

static char *read_beside(const char *vocab_path, const char *ext, size_t *size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s", vocab_path, ext);
    char *data = test_read_file(path, size);
    if (!data)
        fail_msg("cannot read %s", path);
    return data;
}

void test_vocab_cases_read(const char *vocab_path, struct test_vocab_cases *c)
{
    size_t inp_size, out_size;
    c->inp = read_beside(vocab_path, ".inp", &inp_size);
    c->outp = read_beside(vocab_path, ".out", &out_size);
    c->n = 0;
    char *at = c->inp, *end = c->inp + inp_size, *sep;
    const size_t sep_len = strlen(CASE_SEPARATOR);
    while ((sep = memmem(at, (size_t)(end - at), CASE_SEPARATOR, sep_len))) {
        assert_true(c->n < TEST_MAX_VOCAB_CASES);
        c->text[c->n] = at;
        c->len[c->n] = (size_t)(sep - at);
        c->n++;
        at = sep + sep_len;
    }
    assert_ptr_equal(at, end); /* nothing after the last separator */

    size_t lines = 0;
    for (char *line = c->outp, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        assert_true(lines < c->n);
        c->ids[lines++] = line;
    }
    assert_int_equal(lines, c->n);
}

void test_vocab_cases_free(struct test_vocab_cases *c)
{
    free(c->inp);
    free(c->outp);
}

static size_t parse_ids(const char *line, int32_t *ids)
{
    size_t n = 0;
    char *end;
    for (long v = strtol(line, &end, 10); end != line; v = strtol(line, &end, 10)) {
        assert_true(n < TEST_MAX_IDS);
        ids[n++] = (int32_t)v;
        line = end;
    }
    return n;
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s:", label);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

/* The text with control characters and backslashes escaped, for failure reports. */
static void print_text(const char *label, const char *s, size_t n)
{
    fprintf(stderr, "    %s: \"", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '"')
            fprintf(stderr, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fprintf(stderr, "\"\n");
}

void test_vocab_cases_assert(const struct llamad_tokenizer *t, const struct test_vocab_cases *c,
                             const char *name)
{
    size_t passed = 0;
    for (size_t i = 0; i < c->n; i++) {
        int32_t want[TEST_MAX_IDS], got[TEST_MAX_IDS];
        size_t n_want = parse_ids(c->ids[i], want);
        size_t n_got = test_tokenize(t, c->text[i], c->len[i], false, got);
        if (n_got == n_want && memcmp(got, want, n_got * sizeof *got) == 0) {
            passed++;
            continue;
        }
        fprintf(stderr, "  case %zu failed:\n", i);
        print_text("text    ", c->text[i], c->len[i]);
        print_ids("expected", want, n_want);
        print_ids("got     ", got, n_got);
    }
    printf("  %s: %zu/%zu cases pass\n", name, passed, c->n);
    assert_int_equal(passed, c->n);
}
