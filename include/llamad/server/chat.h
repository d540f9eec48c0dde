/* Chat templates: a list of messages rendered into the token sequence a
 * chat-tuned model expects. The template's special tokens go in as their ids;
 * message content is tokenized as plain text and never re-parsed, so "</s>" or
 * "<|im_end|>" typed by a user stays text. */
#ifndef LLAMAD_CHAT_H
#define LLAMAD_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "llamad/base/buf.h"
#include "llamad/server/api_request.h"
#include "llamad/tokenizer/tokenizer.h"

enum llamad_chat_template {
    LLAMAD_CHAT_PLAIN,   /* documented fallback: "<role>: <content>\n" lines, then "assistant:" */
    LLAMAD_CHAT_LLAMA2,  /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s> */
    LLAMAD_CHAT_MISTRAL, /* <s>[INST] ... [/INST] ...</s> (system folded into the first user turn)
                          */
    LLAMAD_CHAT_CHATML,  /* <|im_start|>role\n...<|im_end|>\n */
    LLAMAD_CHAT_ZEPHYR,  /* <|role|>\n...</s>\n */
    LLAMAD_CHAT_VICUNA,  /* system\n\nUSER: ...\nASSISTANT: ...</s> */
    LLAMAD_CHAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
};

/* Recognises a GGUF tokenizer.chat_template (a Jinja string) by its markers.
 * Returns 0 and *out, or LLAMAD_ENOTFOUND when it is none of the known ones (the
 * caller logs that and uses PLAIN). */
int llamad_chat_detect(const char *jinja, size_t len, enum llamad_chat_template *out);

/* The conf names: "plain", "llama2", "mistral", "chatml", "zephyr", "vicuna", "llama3". */
int llamad_chat_from_name(const char *name, enum llamad_chat_template *out);
const char *llamad_chat_name(enum llamad_chat_template t);

/* How template t's model writes a tool call: LLaMA-3's JSON, Mistral's
 * [TOOL_CALLS] array, and for ChatML and every other template the tagged form. */
enum llamad_tool_syntax llamad_chat_tool_syntax(enum llamad_chat_template t);

/* Renders messages (roles system/user/assistant/tool) and the opening of the
 * assistant's reply into token ids (BOS first when the vocabulary adds one).
 * tools (NULL: none) are listed for the model as the template's family expects,
 * unless their choice is NONE; an assistant's tool_calls and a tool message's
 * result are written in the template's call syntax (chat_tools.c):
 *   LLaMA-3: the functions open the first user message; calls are the
 *     assistant's JSON {"name", "parameters"}; results are ipython turns.
 *   Mistral: [AVAILABLE_TOOLS][...][/AVAILABLE_TOOLS] before the last user
 *     turn, [TOOL_CALLS][...] calls, [TOOL_RESULTS]{...}[/TOOL_RESULTS] results
 *     (special tokens where the vocabulary has them as control tokens).
 *   ChatML: the functions in <tools> in the system message (one is added when
 *     the conversation has none), calls in <tool_call> blocks, results as tool
 *     turns holding <tool_response> blocks.
 *   Others: as ChatML, but results are user turns.
 * *ids is malloc'd. Returns 0 or a negative LLAMAD_E* code with err filled
 * (e.g. an unknown role). */
int llamad_chat_render(enum llamad_chat_template t, const struct llamad_tokenizer *tok,
                       const struct llamad_chat_message *msgs, size_t n,
                       const struct llamad_tools *tools, int32_t **ids, size_t *n_ids, char *err,
                       size_t errsz);

/* The same conversation as text, for a person to read (POST /apply-template): the
 * template's literal text and the content as they are, each special token as its
 * piece ("<|start_header_id|>", "<s>", ...). Appends to out. */
int llamad_chat_render_text(enum llamad_chat_template t, const struct llamad_tokenizer *tok,
                            const struct llamad_chat_message *msgs, size_t n,
                            const struct llamad_tools *tools, struct llamad_buf *out, char *err,
                            size_t errsz);

#endif
