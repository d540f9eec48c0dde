/* libFuzzer target: the chat renderer. The first byte picks the template, the
 * vocabulary (bit 3), whether to render ids or text (bit 4) and whether tools
 * are given (bit 5: a function the model is told of, and each assistant message
 * calls it with its content as the arguments); the rest is the conversation:
 * messages separated by NUL bytes, each a role byte (system, user, assistant,
 * tool, or an unknown role) followed by its content. Content must add no control
 * or user-defined token to what the template puts around it. */
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
                     const struct llamad_chat_message *msgs, size_t n,
                     const struct llamad_tools *tools)
{
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char err[256];
    if (llamad_chat_render(tmpl, tok, msgs, n, tools, &ids, &n_ids, err, sizeof err))
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
    static const char *const roles[] = {"system", "user", "assistant", "tool", "function"};
    static struct llamad_tool tool = {.name = "f", .description = "d", .parameters = "{}"};
    struct llamad_tools tools = {&tool, 1, LLAMAD_TOOL_CHOICE_AUTO, 0, true};
    const struct llamad_tools *use_tools = data[0] & 32 ? &tools : NULL;
    struct llamad_tool_call calls[MAX_MESSAGES];
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
        msgs[n] = (struct llamad_chat_message){
            .role = (char *)roles[(uint8_t)*p % 5], .content = *p ? p + 1 : p, .tool_call_id = "c"};
        if (use_tools && !strcmp(msgs[n].role, "assistant")) {
            calls[n] =
                (struct llamad_tool_call){.id = "c", .name = "f", .arguments = msgs[n].content};
            msgs[n].tool_calls = &calls[n];
            msgs[n].n_tool_calls = 1;
        }
        n++;
    }
    if (data[0] & 16) {
        struct llamad_buf out = LLAMAD_BUF_INIT;
        char err[256];
        llamad_chat_render_text(tmpl, tok, msgs, n, use_tools, &out, err, sizeof err);
        llamad_buf_free(&out);
    } else {
        /* The template's special tokens are all there are: content adds none. */
        long with_content = specials(tmpl, tok, msgs, n, use_tools);
        for (size_t i = 0; i < n; i++) {
            msgs[i].content = "";
            calls[i].arguments = "";
        }
        if (with_content != specials(tmpl, tok, msgs, n, use_tools))
            __builtin_trap();
    }
    free(text);
    return 0;
}
