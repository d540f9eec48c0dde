/* Tools in a conversation, as text (chat_tools.h).
 *
 * The wording of the instructions is llamad's own; the shapes are each family's:
 * Hermes-style <tools> and <tool_call> blocks for ChatML and every template
 * without a tool format of its own, LLaMA-3.1's JSON definitions before the first
 * user message and {"name", "parameters"} calls, Mistral's JSON arrays. A call in
 * the history is written exactly as tool_calls.c's grammar makes the model write
 * one. */
#include "chat_tools.h"

#include <stdlib.h>
#include <string.h>

#include "json_write.h"
#include "llamad/base/error.h"

static void raw(struct json_out *o, const char *s)
{
    json_raw(o, s);
}

static void str(struct json_out *o, const char *s)
{
    json_string(o, s, strlen(s));
}

static void tool_json(struct json_out *o, const struct llamad_tool *t)
{
    raw(o, "{\"type\": \"function\", \"function\": {\"name\": ");
    str(o, t->name);
    if (t->description) {
        raw(o, ", \"description\": ");
        str(o, t->description);
    }
    raw(o, ", \"parameters\": ");
    raw(o, t->parameters);
    raw(o, "}}");
}

/* Moves o's text onto the end of b. */
static int done(struct llamad_buf *b, struct json_out *o)
{
    int rc = o->rc;
    if (!rc && o->b.len && llamad_buf_append(b, o->b.data, o->b.len))
        rc = LLAMAD_ENOMEM;
    llamad_buf_free(&o->b);
    return rc;
}

static void choice_line(struct json_out *o, const struct llamad_tools *t)
{
    switch (t->choice) {
    case LLAMAD_TOOL_CHOICE_REQUIRED: raw(o, "Answer with function calls only."); break;
    case LLAMAD_TOOL_CHOICE_NAMED:
        raw(o, "Answer by calling ");
        str(o, t->tools[t->named].name);
        raw(o, ".");
        break;
    default: raw(o, "When no function helps, answer in words instead.");
    }
    raw(o, t->parallel ? " Several calls may be made at once." : " Make at most one call.");
}

int chat_tools_preamble(struct llamad_buf *b, enum llamad_tool_syntax syn,
                        const struct llamad_tools *t)
{
    struct json_out o = {LLAMAD_BUF_INIT, 0};
    if (syn == LLAMAD_TOOL_SYNTAX_LLAMA3) {
        raw(&o, "These functions can be called, described as JSON:\n\n");
        for (size_t i = 0; i < t->n; i++) {
            tool_json(&o, &t->tools[i]);
            raw(&o, "\n\n");
        }
        raw(&o, "To call one, answer with nothing but a JSON object of the form "
                "{\"name\": function name, \"parameters\": object of argument values}; "
                "separate several calls with \";\". ");
        choice_line(&o, t);
        raw(&o, "\n\n");
        return done(b, &o);
    }
    raw(&o, "These functions can be called, described as JSON:\n<tools>\n");
    for (size_t i = 0; i < t->n; i++) {
        tool_json(&o, &t->tools[i]);
        raw(&o, "\n");
    }
    raw(&o, "</tools>\nTo call one, write a JSON object with the function's name and its "
            "arguments inside <tool_call></tool_call> tags, one block per call:\n<tool_call>\n"
            "{\"name\": \"function name\", \"arguments\": {\"argument\": \"value\"}}\n"
            "</tool_call>\n");
    choice_line(&o, t);
    return done(b, &o);
}

int chat_tools_list(struct llamad_buf *b, const struct llamad_tools *t)
{
    struct json_out o = {LLAMAD_BUF_INIT, 0};
    raw(&o, "[");
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            raw(&o, ", ");
        tool_json(&o, &t->tools[i]);
    }
    raw(&o, "]");
    return done(b, &o);
}

int chat_tools_calls(struct llamad_buf *b, enum llamad_tool_syntax syn,
                     const struct llamad_chat_message *m)
{
    struct json_out o = {LLAMAD_BUF_INIT, 0};
    if (syn == LLAMAD_TOOL_SYNTAX_MISTRAL)
        raw(&o, "[");
    for (size_t k = 0; k < m->n_tool_calls; k++) {
        const struct llamad_tool_call *c = &m->tool_calls[k];
        static const char *const sep[] = {
            [LLAMAD_TOOL_SYNTAX_TAGGED] = "\n",
            [LLAMAD_TOOL_SYNTAX_LLAMA3] = ";",
            [LLAMAD_TOOL_SYNTAX_MISTRAL] = ", ",
        };
        if (k)
            raw(&o, sep[syn]);
        if (syn == LLAMAD_TOOL_SYNTAX_TAGGED)
            raw(&o, "<tool_call>\n");
        raw(&o, "{\"name\": ");
        str(&o, c->name);
        raw(&o, syn == LLAMAD_TOOL_SYNTAX_LLAMA3 ? ", \"parameters\": " : ", \"arguments\": ");
        raw(&o, c->arguments); /* JSON text (api_tools.c) */
        if (syn == LLAMAD_TOOL_SYNTAX_MISTRAL) {
            raw(&o, ", \"id\": ");
            str(&o, c->id);
        }
        raw(&o, "}");
        if (syn == LLAMAD_TOOL_SYNTAX_TAGGED)
            raw(&o, "\n</tool_call>");
    }
    if (syn == LLAMAD_TOOL_SYNTAX_MISTRAL)
        raw(&o, "]");
    return done(b, &o);
}

int chat_tools_result(struct llamad_buf *b, enum llamad_tool_syntax syn,
                      const struct llamad_chat_message *m)
{
    struct json_out o = {LLAMAD_BUF_INIT, 0};
    const char *content = m->content ? m->content : "";
    switch (syn) {
    case LLAMAD_TOOL_SYNTAX_MISTRAL:
        raw(&o, "{\"content\": ");
        str(&o, content);
        raw(&o, ", \"call_id\": ");
        str(&o, m->tool_call_id ? m->tool_call_id : "");
        raw(&o, "}");
        break;
    case LLAMAD_TOOL_SYNTAX_LLAMA3: raw(&o, content); break;
    default:
        raw(&o, "<tool_response>\n");
        raw(&o, content);
        raw(&o, "\n</tool_response>");
    }
    return done(b, &o);
}
