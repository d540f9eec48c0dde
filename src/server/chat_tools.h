/* Tools in a conversation, as the text a template's model reads (chat.c): the
 * list of functions and how to call them, the calls an assistant message made
 * as the model writes them, and a tool's result as the template shows it.
 * Defined in chat_tools.c. Private to src/server/. */
#ifndef LLAMAD_CHAT_TOOLS_H
#define LLAMAD_CHAT_TOOLS_H

#include "llamad/base/buf.h"
#include "llamad/server/api_request.h"

/* The functions and the instructions (TAGGED: for the system message, LLAMA3:
 * to open the first user message). Each returns 0 or LLAMAD_ENOMEM, appending to b. */
int chat_tools_preamble(struct llamad_buf *b, enum llamad_tool_syntax syn,
                        const struct llamad_tools *t);
/* The functions as one JSON array (Mistral's [AVAILABLE_TOOLS]). */
int chat_tools_list(struct llamad_buf *b, const struct llamad_tools *t);
/* m's tool calls in syntax syn (MISTRAL: the array after [TOOL_CALLS]). */
int chat_tools_calls(struct llamad_buf *b, enum llamad_tool_syntax syn,
                     const struct llamad_chat_message *m);
/* A tool message's content as syntax syn shows it (MISTRAL: the object inside
 * [TOOL_RESULTS]). */
int chat_tools_result(struct llamad_buf *b, enum llamad_tool_syntax syn,
                      const struct llamad_chat_message *m);

#endif
