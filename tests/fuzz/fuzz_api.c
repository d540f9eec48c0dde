/* libFuzzer target: the request bodies of every endpoint that reads one, parsed
 * and validated as the daemon does (the first byte picks the endpoint, the rest
 * is the body), then answered: the error object, or what a valid request holds
 * checked against the limits it was parsed under. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_vocab.h"
#include "llamad/base/buf.h"
#include "llamad/server/api_request.h"
#include "llamad/server/api_response.h"
#include "llamad/server/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The daemon's limits (generate.c) over LLaMA's vocabulary. */
static const struct llamad_api_limits limits = {
    .n_vocab = 32000, .max_stops = 16, .max_stop_len = 256, .max_top_logprobs = 20};

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static void check_request(const struct llamad_api_request *r)
{
    const struct llamad_gen_request *g = &r->gen;
    check(g->n_prompt >= 0 && (g->n_prompt == 0 || g->prompt));
    for (int32_t i = 0; i < g->n_prompt; i++)
        check(g->prompt[i] >= 0 && g->prompt[i] < limits.n_vocab);
    for (size_t i = 0; i < g->sampling.n_logit_bias; i++)
        check(g->logit_bias[i].token >= 0 && g->logit_bias[i].token < limits.n_vocab);
    check(g->n_stops <= (size_t)limits.max_stops);
    for (size_t i = 0; i < g->n_stops; i++)
        check(g->stop_lens[i] <= limits.max_stop_len);
    check(g->top_logprobs >= 0 && g->top_logprobs <= limits.max_top_logprobs);
    for (size_t i = 0; i < r->n_messages; i++) {
        const struct llamad_chat_message *m = &r->messages[i];
        check(m->role != NULL && m->content != NULL);
        for (size_t k = 0; k < m->n_tool_calls; k++)
            check(m->tool_calls[k].id && m->tool_calls[k].name && m->tool_calls[k].arguments);
    }
    const struct llamad_tools *t = &r->tools;
    check(t->n <= 128 && (t->n == 0 || t->tools));
    check(t->choice != LLAMAD_TOOL_CHOICE_NAMED || t->named < t->n);
    check(t->n > 0 || t->choice == LLAMAD_TOOL_CHOICE_NONE);
    for (size_t i = 0; i < t->n; i++)
        check(t->tools[i].name && t->tools[i].name[0] && t->tools[i].parameters);
    /* A structured-output grammar: whole rules, root first. */
    check(!r->grammar ||
          (strlen(r->grammar) == r->grammar_len && strncmp(r->grammar, "root ::=", 8) == 0));
}

/* POST /apply-template: the messages and tools, rendered as text through a template. */
static void apply_template(enum llamad_chat_template t, const char *body, size_t len,
                           struct llamad_api_error *e)
{
    struct llamad_api_request r = {0};
    if (llamad_api_parse_messages(body, len, &r, e) == 0) {
        check_request(&r);
        struct llamad_buf text = LLAMAD_BUF_INIT;
        char err[256];
        if (llamad_chat_render_text(t, fuzz_vocab(FUZZ_SPM), r.messages, r.n_messages, &r.tools,
                                    &text, err, sizeof err) == 0)
            free(llamad_api_prompt_json(text.data ? text.data : "", text.len, e));
        llamad_buf_free(&text);
    }
    llamad_api_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct llamad_api_error e = {0};
    switch (data[0] % 6) {
    case 3: apply_template((enum llamad_chat_template)(data[0] / 6 % 7), body, len, &e); break;
    case 4: free(llamad_api_tokenize(fuzz_vocab(FUZZ_SPM), body, len, &e)); break;
    case 5: free(llamad_api_detokenize(fuzz_vocab(FUZZ_SPM), body, len, &e)); break;
    default: {
        static const enum llamad_api_kind kinds[] = {LLAMAD_API_COMPLETIONS, LLAMAD_API_CHAT,
                                                     LLAMAD_API_NATIVE};
        struct llamad_api_request r = {0};
        if (llamad_api_parse_request(kinds[data[0] % 6], body, len, &limits, &r, &e) == 0)
            check_request(&r);
        else
            check(e.status >= 400 && e.status < 600);
        llamad_api_request_free(&r);
    }
    }
    if (e.status)
        free(llamad_api_error_json(&e));
    return 0;
}
