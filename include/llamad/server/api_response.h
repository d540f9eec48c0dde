/* The HTTP API's responses: response bodies and server-sent-event payloads built
 * from engine events (OpenAI's shapes, and llama.cpp's server shapes for the
 * native /completion), error objects, and the small endpoints that answer from
 * their body at once: /tokenize, /detokenize, and /apply-template's answer.
 *
 * Runs on the loop thread; every function here is pure (no I/O, no globals). */
#ifndef LLAMAD_API_RESPONSE_H
#define LLAMAD_API_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/engine/event.h"
#include "llamad/server/api_request.h"
#include "llamad/server/tool_calls.h"
#include "llamad/tokenizer/tokenizer.h"

/* {"error": {...}} as a malloc'd NUL-terminated string (NULL when out of memory). */
char *llamad_api_error_json(const struct llamad_api_error *e);

/* What every response body of one request shares. */
struct llamad_api_reply {
    enum llamad_api_kind kind;
    const char *id;                     /* "cmpl-...", "chatcmpl-..." */
    int64_t created;                    /* unix seconds */
    const char *model;                  /* the served model's id */
    const struct llamad_tokenizer *tok; /* renders top-logprob tokens */
    bool logprobs;
    int32_t top_logprobs;
    bool include_usage;
    /* Chat with tools that may be called: the output is parsed for calls in
     * tool_syntax (tool_calls.h), their ids drawn from tool_seed. NULL: text. */
    const struct llamad_tools *tools;
    enum llamad_tool_syntax tool_syntax;
    uint64_t tool_seed;
    bool called; /* streamed: calls were sent, the finish_reason is "tool_calls" */
};

/* Non-streamed response: `tokens` is the request's list of TOKEN events (linked by
 * ->next, possibly NULL), `done` its DONE event. With r->tools, calls in the text
 * become message.tool_calls (content null when nothing else was said) and the
 * finish_reason "tool_calls". A TOKEN event whose token is -1
 * carries only text (what was held back until the end: DONE's text) and has no
 * logprobs entry. The text is the concatenation of
 * the events' .text. Malloc'd JSON, NULL when out of memory. */
char *llamad_api_response_json(const struct llamad_api_reply *r, const struct llamad_event *tokens,
                               const struct llamad_event *done);

/* Streaming payloads (the JSON after "data: "; the caller adds framing). NULL when
 * out of memory, or when there is nothing to send for that event (e.g. a token
 * that released no text and carries no logprobs); llamad_api_chunk_due tells the
 * two apart. */
char *
llamad_api_chunk_first_json(const struct llamad_api_reply *r); /* chat: delta.role; else NULL */
/* Whether a token event has a chunk (its text, or its logprobs); the first chunk
 * and the usage chunk are due when that function's comment says. */
bool llamad_api_chunk_due(const struct llamad_api_reply *r, const struct llamad_event *token);
char *llamad_api_chunk_token_json(const struct llamad_api_reply *r,
                                  const struct llamad_event *token,
                                  size_t text_offset /* bytes of text sent before it */);
char *llamad_api_chunk_final_json(const struct llamad_api_reply *r,
                                  const struct llamad_event *done);
/* A streamed call: its head (index, id, type, name, "arguments": "") or its
 * arguments (index and an arguments fragment: here all of them at once). */
char *llamad_api_chunk_tool_call_json(const struct llamad_api_reply *r,
                                      const struct llamad_tool_call_out *c, bool head);
/* include_usage: the usage-only chunk ("choices": []); NULL when not asked. */
char *llamad_api_chunk_usage_json(const struct llamad_api_reply *r,
                                  const struct llamad_event *done);

/* GET /v1/models */
char *llamad_api_models_json(const char *model_id, int64_t created);

/* POST /tokenize: {"content": string, "add_special": bool (default false),
 * "with_pieces": bool (default false)} -> {"tokens": [ids]} or, with pieces,
 * {"tokens": [{"id": n, "piece": string}]} (a piece that is not whole UTF-8 is
 * given as an array of byte values, as llama.cpp does). */
char *llamad_api_tokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                          struct llamad_api_error *err);

/* POST /detokenize: {"tokens": [ids]} -> {"content": string}. */
char *llamad_api_detokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                            struct llamad_api_error *err);

/* POST /apply-template's answer: {"prompt": text} (the request: see
 * llamad_api_parse_messages). */
char *llamad_api_prompt_json(const char *text, size_t len, struct llamad_api_error *err);

#endif
