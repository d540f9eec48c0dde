/* libFuzzer target: the tokenizers, LLaMA's SentencePiece and LLaMA-3's byte-level
 * BPE (bit 0 of the first byte picks one). Bit 1 clear: the rest is text, tokenized
 * and streamed back through the detokenizer, which must give the text back when it
 * is valid UTF-8 (and, for SentencePiece, holds no U+2581). Bit 1 set: the rest is token ids (16
 * bits each, some outside the vocabulary) streamed through the detokenizer, whose output must be
 * valid UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_vocab.h"
#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/base/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

/* Streams ids through a detokenizer into out, one push per id, then flushes. */
static void stream(const struct llamad_tokenizer *t, int32_t prev, const int32_t *ids, size_t n,
                   struct llamad_buf *out)
{
    struct llamad_detok d;
    llamad_detok_init(&d, t, prev);
    for (size_t i = 0; i < n; i++) {
        int rc = llamad_detok_push(&d, ids[i], out);
        check(rc == LLAMAD_OK || (rc == LLAMAD_EINVAL && llamad_tokenizer_piece(t, ids[i]) == 0));
    }
    check(llamad_detok_flush(&d, out) == LLAMAD_OK);
    check(llamad_utf8_valid_prefix(out->data ? out->data : "", out->len) == out->len);
}

static void text_round_trip(const struct llamad_tokenizer *t, const char *text, size_t len,
                            bool add_bos)
{
    int64_t n = llamad_tokenize(t, text, len, add_bos, NULL, 0);
    check(n >= 0);
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    check(ids && llamad_tokenize(t, text, len, add_bos, ids, (size_t)n) == n);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    size_t skip = add_bos && n > 0 && ids[0] == llamad_tokenizer_bos(t) ? 1 : 0;
    int32_t prev = skip ? ids[0] : -1;
    for (int64_t i = 0; i < n; i++)
        check(ids[i] >= 0 && ids[i] < llamad_tokenizer_n_vocab(t));
    stream(t, prev, ids + skip, (size_t)n - skip, &out);
    /* The space prefix SentencePiece adds is dropped only after BOS. */
    bool extra_space = llamad_tokenizer_add_space_prefix(t) && !skip && len > 0;
    const char *back = out.data ? out.data + extra_space : "";
    size_t back_len = out.len - extra_space;
    /* SentencePiece writes spaces as U+2581, so one in the text comes back a space. */
    bool spm_mark = llamad_tokenizer_type(t) == LLAMAD_VOCAB_SPM &&
                    memmem(text, len, "\xe2\x96\x81", 3) != NULL;
    if (llamad_utf8_valid_prefix(text, len) == len && !spm_mark)
        check(back_len == len && memcmp(back, text, len) == 0);
    llamad_buf_free(&out);
    free(ids);
}

static void id_stream(const struct llamad_tokenizer *t, const uint8_t *p, size_t len)
{
    size_t n = len / 2;
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    check(ids != NULL);
    for (size_t i = 0; i < n; i++) /* LLaMA's 32000 and a little beyond; LLaMA-3's first 64K */
        ids[i] = (int32_t)(p[2 * i] | p[2 * i + 1] << 8) - 8;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    stream(t, n ? ids[0] : -1, ids, n, &out);
    llamad_buf_free(&out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const struct llamad_tokenizer *t = fuzz_vocab(data[0] & 1 ? FUZZ_BPE : FUZZ_SPM);
    if (data[0] & 2)
        id_stream(t, data + 1, size - 1);
    else
        text_round_trip(t, (const char *)data + 1, size - 1, data[0] & 4);
    return 0;
}
