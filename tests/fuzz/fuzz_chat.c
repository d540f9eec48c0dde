/* libFuzzer target: the chat renderer. The first byte picks the template, the
 * vocabulary (bit 3) and whether to render ids or text (bit 4); the rest is the
 * conversation: messages separated by NUL bytes, each a role byte (system, user,
 * assistant, or an unknown role) followed by its content. Content must add no
 * control or user-defined token to what the template puts around it. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_vocab.h"
#include "llamad/base/buf.h"
#include "llamad/server/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each message costs a few tokenizer calls, twice over: with up to 64, the
 * target ran several times slower. */
#define MAX_MESSAGES 8

/* The control and user-defined tokens among a rendering's ids, or -1 when it fails. */
static long specials(enum llamad_chat_template tmpl, const struct llamad_tokenizer *tok,
                     const struct llamad_chat_message *msgs, size_t n)
{
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char err[256];
    if (llamad_chat_render(tmpl, tok, msgs, n, NULL, &ids, &n_ids, err, sizeof err))
        return -1;
    long count = 0;
    for (size_t i = 0; i < n_ids; i++) {
        enum llamad_token_kind kind = llamad_tokenizer_kind(tok, ids[i]);
        if (kind == 0)
            __builtin_trap(); /* outside the vocabulary */
        count += kind == LLAMAD_TOKEN_CONTROL || kind == LLAMAD_TOKEN_USER_DEFINED;
    }
    free(ids);
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    enum llamad_chat_template tmpl = (enum llamad_chat_template)(data[0] % 8);
    const struct llamad_tokenizer *tok = fuzz_vocab(data[0] & 8 ? FUZZ_BPE : FUZZ_SPM);
    /* One copy of the rest, NUL-terminated, cut into messages in place. */
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    struct llamad_chat_message msgs[MAX_MESSAGES];
    size_t n = 0;
    for (char *p = text, *end = text + size - 1; p < end && n < MAX_MESSAGES; p += strlen(p) + 1) {
        msgs[n].role = (char *)roles[(uint8_t)*p % 4];
        msgs[n].content = *p ? p + 1 : p;
        n++;
    }
    if (data[0] & 16) {
        struct llamad_buf out = LLAMAD_BUF_INIT;
        char err[256];
        llamad_chat_render_text(tmpl, tok, msgs, n, NULL, &out, err, sizeof err);
        llamad_buf_free(&out);
    } else {
        /* The template's special tokens are all there are: content adds none. */
        long with_content = specials(tmpl, tok, msgs, n);
        for (size_t i = 0; i < n; i++)
            msgs[i].content = "";
        if (with_content != specials(tmpl, tok, msgs, n))
            __builtin_trap();
    }
    free(text);
    return 0;
}
