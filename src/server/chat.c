/* Chat templates, rendered straight into token ids.
 *
 * A template emits three kinds of pieces: its own literal text, message content,
 * and control tokens (BOS, EOS, ChatML's <|im_start|>, ...). Adjacent literal text
 * and content are gathered into one run, and each run is tokenized once. That is
 * how llama.cpp tokenizes a rendered template string with special-token parsing:
 * the text between two special tokens is one fragment, and every fragment (the
 * first, and each one after a special token) gets the vocabulary's dummy space
 * prefix, which llamad_tokenize adds too. Content itself is never searched for
 * control tokens, so "</s>" or "<|im_end|>" typed by a user stays text. */
#include "llamad/server/chat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "chat_tools.h"
#include "llamad/base/error.h"

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL, N_ROLES };

static const char *const role_names[N_ROLES] = {"system", "user", "assistant", "tool"};

static const char *const template_names[] = {
    [LLAMAD_CHAT_PLAIN] = "plain",     [LLAMAD_CHAT_LLAMA2] = "llama2",
    [LLAMAD_CHAT_MISTRAL] = "mistral", [LLAMAD_CHAT_CHATML] = "chatml",
    [LLAMAD_CHAT_ZEPHYR] = "zephyr",   [LLAMAD_CHAT_VICUNA] = "vicuna",
    [LLAMAD_CHAT_LLAMA3] = "llama3",
};

#define N_TEMPLATES (sizeof template_names / sizeof template_names[0])

/* ---- Names and detection ---- */

int llamad_chat_from_name(const char *name, enum llamad_chat_template *out)
{
    for (size_t i = 0; name && i < N_TEMPLATES; i++)
        if (strcmp(name, template_names[i]) == 0) {
            *out = (enum llamad_chat_template)i;
            return LLAMAD_OK;
        }
    return LLAMAD_ENOTFOUND;
}

const char *llamad_chat_name(enum llamad_chat_template t)
{
    return (size_t)t < N_TEMPLATES ? template_names[t] : "unknown";
}

static bool has(const char *s, size_t len, const char *marker)
{
    return memmem(s, len, marker, strlen(marker)) != NULL;
}

static bool is_zephyr(const char *s, size_t len)
{
    /* Phi-3 also writes <|user|> and <|assistant|> but ends turns with <|end|>. */
    return has(s, len, "<|user|>") && has(s, len, "<|assistant|>") && !has(s, len, "<|end|>") &&
           (has(s, len, "eos_token") || has(s, len, "</s>"));
}

int llamad_chat_detect(const char *jinja, size_t len, enum llamad_chat_template *out)
{
    if (!jinja)
        return LLAMAD_ENOTFOUND;
    if (has(jinja, len, "<|start_header_id|>"))
        *out = LLAMAD_CHAT_LLAMA3;
    else if (has(jinja, len, "<|im_start|>"))
        *out = LLAMAD_CHAT_CHATML;
    else if (has(jinja, len, "[INST]"))
        *out = has(jinja, len, "<<SYS>>") ? LLAMAD_CHAT_LLAMA2 : LLAMAD_CHAT_MISTRAL;
    else if (is_zephyr(jinja, len))
        *out = LLAMAD_CHAT_ZEPHYR;
    else if (has(jinja, len, "USER:") && has(jinja, len, "ASSISTANT:"))
        *out = LLAMAD_CHAT_VICUNA;
    else
        return LLAMAD_ENOTFOUND;
    return LLAMAD_OK;
}

/* ---- Building the id sequence ---- */

struct render {
    const struct llamad_tokenizer *tok;
    const struct llamad_tools *tools; /* Mistral's [AVAILABLE_TOOLS] (NULL: none) */
    struct llamad_buf *text;          /* rendering as text (llamad_chat_render_text), or NULL */
    struct llamad_buf run;            /* text not yet tokenized */
    int32_t *ids;
    size_t n, cap;
    int rc; /* the first failure; every later step does nothing */
};

static int reserve(struct render *r, size_t extra)
{
    if (extra <= r->cap - r->n)
        return LLAMAD_OK;
    size_t cap = r->cap ? r->cap : 256;
    while (cap - r->n < extra) {
        if (cap > SIZE_MAX / 2 / sizeof *r->ids)
            return LLAMAD_ENOMEM;
        cap *= 2;
    }
    int32_t *p = realloc(r->ids, cap * sizeof *p);
    if (!p)
        return LLAMAD_ENOMEM;
    r->ids = p;
    r->cap = cap;
    return LLAMAD_OK;
}

static void text(struct render *r, const char *s, size_t len)
{
    if (!r->rc && len)
        r->rc = llamad_buf_append(&r->run, s, len);
}

static void literal(struct render *r, const char *s)
{
    text(r, s, strlen(s));
}

static void content(struct render *r, const struct llamad_chat_message *m)
{
    if (m->content)
        literal(r, m->content);
}

/* Content without its leading and trailing ASCII whitespace, as Python's strip()
 * in the Llama-2-chat template leaves it. */
static void content_stripped(struct render *r, const struct llamad_chat_message *m)
{
    const char *s = m->content ? m->content : "", *end = s + strlen(s);
    while (s < end && strchr(" \t\n\v\f\r", *s))
        s++;
    while (end > s && strchr(" \t\n\v\f\r", end[-1]))
        end--;
    text(r, s, (size_t)(end - s));
}

/* Tokenizes the pending run onto the end of the ids. */
static void flush(struct render *r)
{
    if (r->rc || r->run.len == 0)
        return;
    if (r->text) {
        r->rc = llamad_buf_append(r->text, r->run.data, r->run.len);
        llamad_buf_clear(&r->run);
        return;
    }
    int64_t need =
        llamad_tokenize(r->tok, r->run.data, r->run.len, false, r->ids + r->n, r->cap - r->n);
    if (need > (int64_t)(r->cap - r->n)) {
        r->rc = reserve(r, (size_t)need);
        if (r->rc)
            return;
        need =
            llamad_tokenize(r->tok, r->run.data, r->run.len, false, r->ids + r->n, r->cap - r->n);
    }
    if (need < 0) {
        r->rc = (int)need;
        return;
    }
    r->n += (size_t)need;
    llamad_buf_clear(&r->run);
}

static void token(struct render *r, int32_t id)
{
    flush(r);
    if (r->text) {
        const char *piece = llamad_tokenizer_piece(r->tok, id);
        if (!r->rc && piece)
            r->rc = llamad_buf_append(r->text, piece, strlen(piece));
    } else if (!r->rc && !(r->rc = reserve(r, 1))) {
        r->ids[r->n++] = id;
    }
}

/* A special token of the template: its id, or, when the vocabulary has none, its
 * text (as llama.cpp's special-token parsing leaves a marker it does not know). */
static void special(struct render *r, int32_t id, const char *piece)
{
    if (id >= 0)
        token(r, id);
    else
        literal(r, piece);
}

/* A marker such as "<|im_start|>": special when the vocabulary has it as a control
 * or user-defined piece, the pieces llama.cpp parses as special tokens. */
static void marker(struct render *r, enum llamad_chat_marker m)
{
    const char *piece = llamad_chat_marker_text(m);
    int32_t id = llamad_tokenizer_find(r->tok, piece, strlen(piece));
    enum llamad_token_kind kind = llamad_tokenizer_kind(r->tok, id);
    bool is_special = kind == LLAMAD_TOKEN_CONTROL || kind == LLAMAD_TOKEN_USER_DEFINED;
    special(r, is_special ? id : -1, piece);
}

static void bos(struct render *r)
{
    special(r, llamad_tokenizer_bos(r->tok), llamad_chat_marker_text(LLAMAD_MARKER_BOS));
}

static void eos(struct render *r)
{
    special(r, llamad_tokenizer_eos(r->tok), llamad_chat_marker_text(LLAMAD_MARKER_EOS));
}

/* ---- The templates (roles already checked) ---- */

static enum role role_of(const char *name)
{
    for (int i = 0; name && i < N_ROLES; i++)
        if (strcmp(name, role_names[i]) == 0)
            return (enum role)i;
    return N_ROLES;
}

/* "<role>: <content>\n" per message, then "assistant:". An assistant message
 * that starts with whitespace follows "assistant:" without the space: it is
 * then what the model generated after "assistant:" (its words start with a
 * space), so the next turn repeats those tokens and reuses their KV cache. */
static void render_plain(struct render *r, const struct llamad_chat_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum role role = role_of(m[i].role);
        bool generated =
            role == ROLE_ASSISTANT && m[i].content && isspace((unsigned char)m[i].content[0]);
        literal(r, role_names[role]);
        literal(r, generated ? ":" : ": ");
        content(r, &m[i]);
        literal(r, "\n");
    }
    literal(r, "assistant:");
}

/* Llama-2-chat: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>"
 * then "<s>[INST] " opens the next turn; every content stripped. The first BOS is
 * the sequence's own. */
static void render_llama2(struct render *r, const struct llamad_chat_message *m, size_t n)
{
    bool in_turn = false;
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            if (i > 0)
                bos(r);
            marker(r, LLAMAD_MARKER_INST);
            literal(r, " ");
            in_turn = true;
        }
        switch (role_of(m[i].role)) {
        case ROLE_SYSTEM:
            literal(r, "<<SYS>>\n");
            content_stripped(r, &m[i]);
            literal(r, "\n<</SYS>>\n\n");
            break;
        case ROLE_USER:
            content_stripped(r, &m[i]);
            literal(r, " ");
            marker(r, LLAMAD_MARKER_INST_END);
            break;
        default: /* assistant */
            literal(r, " ");
            content_stripped(r, &m[i]);
            literal(r, " ");
            eos(r);
            in_turn = false;
        }
    }
}

/* Text made by a chat_tools.c writer, as template text. */
static void tool_text(struct render *r,
                      int (*write)(struct llamad_buf *, enum llamad_tool_syntax,
                                   const struct llamad_chat_message *),
                      const struct llamad_chat_message *m)
{
    struct llamad_buf b = LLAMAD_BUF_INIT;
    if (!r->rc && !(r->rc = write(&b, LLAMAD_TOOL_SYNTAX_MISTRAL, m)))
        text(r, b.data, b.len);
    llamad_buf_free(&b);
}

/* Whether the turn opened at message i holds the conversation's last user message. */
static bool holds_last_user(const struct llamad_chat_message *m, size_t n, size_t i)
{
    size_t last = n;
    for (size_t j = 0; j < n; j++)
        if (role_of(m[j].role) == ROLE_USER)
            last = j;
    for (size_t j = i; j < last; j++)
        if (role_of(m[j].role) == ROLE_ASSISTANT || role_of(m[j].role) == ROLE_TOOL)
            return false;
    return last < n && last >= i;
}

/* Mistral's tools: "[AVAILABLE_TOOLS] [...][/AVAILABLE_TOOLS]". */
static void mistral_tools(struct render *r)
{
    struct llamad_buf b = LLAMAD_BUF_INIT;
    marker(r, LLAMAD_MARKER_AVAILABLE_TOOLS);
    literal(r, " ");
    if (!r->rc && !(r->rc = chat_tools_list(&b, r->tools)))
        text(r, b.data, b.len);
    llamad_buf_free(&b);
    marker(r, LLAMAD_MARKER_AVAILABLE_TOOLS_END);
}

/* Mistral-Instruct: "[INST] {user} [/INST]{assistant}</s>" per exchange; a system
 * message goes into the turn it falls in, followed by "\n\n". With tools, their
 * list comes before the last user turn, an assistant's calls are
 * "[TOOL_CALLS] [...]</s>" and a tool's result "[TOOL_RESULTS] {...}[/TOOL_RESULTS]",
 * outside any turn. */
static void render_mistral(struct render *r, const struct llamad_chat_message *m, size_t n)
{
    bool in_turn = false;
    for (size_t i = 0; i < n; i++) {
        if (role_of(m[i].role) == ROLE_TOOL) {
            marker(r, LLAMAD_MARKER_TOOL_RESULTS);
            literal(r, " ");
            tool_text(r, chat_tools_result, &m[i]);
            marker(r, LLAMAD_MARKER_TOOL_RESULTS_END);
            continue;
        }
        if (!in_turn) {
            if (r->tools && holds_last_user(m, n, i))
                mistral_tools(r);
            marker(r, LLAMAD_MARKER_INST);
            literal(r, " ");
            in_turn = true;
        }
        switch (role_of(m[i].role)) {
        case ROLE_SYSTEM:
            content(r, &m[i]);
            literal(r, "\n\n");
            break;
        case ROLE_USER:
            content(r, &m[i]);
            literal(r, " ");
            marker(r, LLAMAD_MARKER_INST_END);
            break;
        default: /* assistant */
            content(r, &m[i]);
            if (m[i].n_tool_calls) {
                marker(r, LLAMAD_MARKER_TOOL_CALLS);
                literal(r, " ");
                tool_text(r, chat_tools_calls, &m[i]);
            }
            eos(r);
            in_turn = false;
        }
    }
}

/* "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then "<|im_start|>assistant\n". */
static void render_chatml(struct render *r, const struct llamad_chat_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        marker(r, LLAMAD_MARKER_IM_START);
        literal(r, role_names[role_of(m[i].role)]);
        literal(r, "\n");
        content(r, &m[i]);
        marker(r, LLAMAD_MARKER_IM_END);
        literal(r, "\n");
    }
    marker(r, LLAMAD_MARKER_IM_START);
    literal(r, "assistant\n");
}

/* Zephyr / TinyLlama-Chat: "<|{role}|>\n{content}</s>\n" per message, then "<|assistant|>\n". */
static void render_zephyr(struct render *r, const struct llamad_chat_message *m, size_t n)
{
    static const enum llamad_chat_marker tags[N_ROLES] = {LLAMAD_MARKER_SYSTEM, LLAMAD_MARKER_USER,
                                                          LLAMAD_MARKER_ASSISTANT};
    for (size_t i = 0; i < n; i++) {
        marker(r, tags[role_of(m[i].role)]);
        literal(r, "\n");
        content(r, &m[i]);
        eos(r);
        literal(r, "\n");
    }
    marker(r, tags[ROLE_ASSISTANT]);
    literal(r, "\n");
}

/* Vicuna v1.1: "{system}\n\nUSER: {user}\nASSISTANT: {assistant}</s>\n", then "ASSISTANT:". */
static void render_vicuna(struct render *r, const struct llamad_chat_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (role_of(m[i].role)) {
        case ROLE_SYSTEM:
            content(r, &m[i]);
            literal(r, "\n\n");
            break;
        case ROLE_USER:
            literal(r, "USER: ");
            content(r, &m[i]);
            literal(r, "\n");
            break;
        default: /* assistant */
            literal(r, "ASSISTANT: ");
            content(r, &m[i]);
            eos(r);
            literal(r, "\n");
        }
    }
    literal(r, "ASSISTANT:");
}

/* LLaMA-3 Instruct: "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
 * per message, every content stripped (its template trims), then the assistant's
 * header left open. A tool's result is LLaMA-3.1's "ipython" turn. The template's leading
 * <|begin_of_text|> is the sequence's own BOS, written once by llamad_chat_render. */
static void render_llama3(struct render *r, const struct llamad_chat_message *m, size_t n)
{
    for (size_t i = 0; i <= n; i++) {
        marker(r, LLAMAD_MARKER_START_HEADER);
        enum role role = i < n ? role_of(m[i].role) : ROLE_ASSISTANT;
        literal(r, role == ROLE_TOOL ? "ipython" : role_names[role]);
        marker(r, LLAMAD_MARKER_END_HEADER);
        literal(r, "\n\n");
        if (i == n)
            break;
        content_stripped(r, &m[i]);
        marker(r, LLAMAD_MARKER_EOT);
    }
}

typedef void (*render_fn)(struct render *, const struct llamad_chat_message *, size_t);

static const render_fn renderers[N_TEMPLATES] = {
    [LLAMAD_CHAT_PLAIN] = render_plain,     [LLAMAD_CHAT_LLAMA2] = render_llama2,
    [LLAMAD_CHAT_MISTRAL] = render_mistral, [LLAMAD_CHAT_CHATML] = render_chatml,
    [LLAMAD_CHAT_ZEPHYR] = render_zephyr,   [LLAMAD_CHAT_VICUNA] = render_vicuna,
    [LLAMAD_CHAT_LLAMA3] = render_llama3,
};

static int check_messages(const struct llamad_chat_message *msgs, size_t n, char *err, size_t errsz)
{
    if (n == 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "the conversation has no messages");
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role)
            return llamad_fail(err, errsz, LLAMAD_EINVAL, "message %zu has no role", i);
        if (role_of(msgs[i].role) == N_ROLES)
            return llamad_fail(err, errsz, LLAMAD_EINVAL,
                               "message %zu has role \"%.64s\"; the roles are system, user, "
                               "assistant and tool",
                               i, msgs[i].role);
    }
    return LLAMAD_OK;
}

enum llamad_tool_syntax llamad_chat_tool_syntax(enum llamad_chat_template t)
{
    return t == LLAMAD_CHAT_LLAMA3    ? LLAMAD_TOOL_SYNTAX_LLAMA3
           : t == LLAMAD_CHAT_MISTRAL ? LLAMAD_TOOL_SYNTAX_MISTRAL
                                      : LLAMAD_TOOL_SYNTAX_TAGGED;
}

/* ---- Tools as text: the conversation rewritten for a template without tool markers ---- */

static void free_rewritten(struct llamad_chat_message *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free(m[i].content);
    free(m);
}

/* Message m of the rewritten conversation: its role (a static name) and its text. */
static int rewrite_one(enum llamad_chat_template t, const struct llamad_chat_message *m,
                       const struct llamad_buf *preamble, bool first_user,
                       struct llamad_chat_message *o)
{
    enum llamad_tool_syntax syn = llamad_chat_tool_syntax(t);
    enum role role = role_of(m->role);
    const char *content = m->content ? m->content : "";
    struct llamad_buf b = LLAMAD_BUF_INIT;
    int rc = llamad_buf_append(&b, "", 0);
    o->role = (char *)role_names[role];
    if (!rc && role == ROLE_USER && first_user && preamble && syn == LLAMAD_TOOL_SYNTAX_LLAMA3)
        rc = llamad_buf_append(&b, preamble->data, preamble->len);
    if (!rc && role != ROLE_TOOL)
        rc = llamad_buf_append(&b, content, strlen(content));
    if (!rc && role == ROLE_SYSTEM && preamble && syn == LLAMAD_TOOL_SYNTAX_TAGGED)
        rc = llamad_buf_append(&b, "\n\n", 2) ||
             llamad_buf_append(&b, preamble->data, preamble->len);
    if (!rc && role == ROLE_ASSISTANT && m->n_tool_calls) {
        if (content[0])
            rc = llamad_buf_append(&b, "\n", 1);
        rc = rc ? rc : chat_tools_calls(&b, syn, m);
    }
    if (!rc && role == ROLE_TOOL) {
        rc = chat_tools_result(&b, syn, m);
        if (t != LLAMAD_CHAT_CHATML && t != LLAMAD_CHAT_LLAMA3)
            o->role = (char *)role_names[ROLE_USER];
    }
    o->content = b.data;
    if (rc)
        return LLAMAD_ENOMEM;
    return LLAMAD_OK;
}

/* The conversation with its tools written as text (every template but Mistral's):
 * *out is NULL when nothing needs rewriting. */
static int rewrite(enum llamad_chat_template t, const struct llamad_chat_message *msgs, size_t n,
                   const struct llamad_tools *tools, struct llamad_chat_message **out,
                   size_t *n_out)
{
    bool on = tools && tools->n && tools->choice != LLAMAD_TOOL_CHOICE_NONE;
    bool any = on;
    for (size_t i = 0; i < n; i++)
        any |= msgs[i].n_tool_calls > 0 || role_of(msgs[i].role) == ROLE_TOOL;
    *out = NULL;
    *n_out = 0;
    if (!any || t == LLAMAD_CHAT_MISTRAL)
        return LLAMAD_OK;
    enum llamad_tool_syntax syn = llamad_chat_tool_syntax(t);
    struct llamad_buf pre = LLAMAD_BUF_INIT;
    struct llamad_chat_message *o = calloc(n + 1, sizeof *o);
    int rc = o ? LLAMAD_OK : LLAMAD_ENOMEM;
    if (!rc && on)
        rc = chat_tools_preamble(&pre, syn, tools);
    size_t k = 0;
    bool first_user = true;
    if (!rc && on && syn == LLAMAD_TOOL_SYNTAX_TAGGED && role_of(msgs[0].role) != ROLE_SYSTEM) {
        o[k].role = (char *)role_names[ROLE_SYSTEM];
        o[k].content = strdup(pre.data);
        rc = o[k++].content ? LLAMAD_OK : LLAMAD_ENOMEM;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        bool system_first = i == 0 && role_of(msgs[i].role) == ROLE_SYSTEM;
        bool user = role_of(msgs[i].role) == ROLE_USER;
        const struct llamad_buf *p = on && (system_first || (user && first_user)) ? &pre : NULL;
        rc = rewrite_one(t, &msgs[i], p, user && first_user, &o[k++]);
        first_user &= !user;
    }
    llamad_buf_free(&pre);
    if (rc) {
        free_rewritten(o, k);
        return rc;
    }
    *out = o;
    *n_out = k;
    return LLAMAD_OK;
}

/* The messages through template t into r: ids, or text when r->text is set. */
static int render_messages(enum llamad_chat_template t, struct render *r,
                           const struct llamad_chat_message *msgs, size_t n,
                           const struct llamad_tools *tools, char *err, size_t errsz)
{
    if ((size_t)t >= N_TEMPLATES)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "unknown chat template %d", (int)t);
    int rc = check_messages(msgs, n, err, errsz);
    struct llamad_chat_message *rewritten = NULL;
    size_t n_rewritten = 0;
    if (rc || (rc = rewrite(t, msgs, n, tools, &rewritten, &n_rewritten)))
        return rc == LLAMAD_ENOMEM
                   ? llamad_fail(err, errsz, rc, "out of memory rendering the chat prompt")
                   : rc;
    if (t == LLAMAD_CHAT_MISTRAL && tools && tools->n && tools->choice != LLAMAD_TOOL_CHOICE_NONE)
        r->tools = tools;
    if (llamad_tokenizer_add_bos(r->tok))
        token(r, llamad_tokenizer_bos(r->tok));
    renderers[t](r, rewritten ? rewritten : msgs, rewritten ? n_rewritten : n);
    free_rewritten(rewritten, n_rewritten);
    flush(r);
    llamad_buf_free(&r->run);
    if (r->rc == LLAMAD_ENOMEM)
        return llamad_fail(err, errsz, r->rc, "out of memory rendering the chat prompt");
    if (r->rc)
        return llamad_fail(err, errsz, r->rc, "the chat prompt cannot be tokenized: %s",
                           llamad_status_name(r->rc));
    return LLAMAD_OK;
}

int llamad_chat_render(enum llamad_chat_template t, const struct llamad_tokenizer *tok,
                       const struct llamad_chat_message *msgs, size_t n,
                       const struct llamad_tools *tools, int32_t **ids, size_t *n_ids, char *err,
                       size_t errsz)
{
    *ids = NULL;
    *n_ids = 0;
    struct render r = {.tok = tok, .run = LLAMAD_BUF_INIT};
    r.rc = reserve(&r, 1); /* so that r.ids is never NULL */
    int rc = render_messages(t, &r, msgs, n, tools, err, errsz);
    if (rc) {
        free(r.ids);
        return rc;
    }
    *ids = r.ids;
    *n_ids = r.n;
    return LLAMAD_OK;
}

int llamad_chat_render_text(enum llamad_chat_template t, const struct llamad_tokenizer *tok,
                            const struct llamad_chat_message *msgs, size_t n,
                            const struct llamad_tools *tools, struct llamad_buf *out, char *err,
                            size_t errsz)
{
    struct render r = {.tok = tok, .text = out, .run = LLAMAD_BUF_INIT};
    return render_messages(t, &r, msgs, n, tools, err, errsz);
}
