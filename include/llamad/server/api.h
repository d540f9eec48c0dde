/* The HTTP API's JSON: request bodies parsed and validated into plain structs,
 * and response bodies / server-sent-event payloads built from engine events.
 * OpenAI's shapes for /v1/completions and /v1/chat/completions, llama.cpp's
 * server shapes for the native /completion, /tokenize and /detokenize.
 *
 * Runs on the loop thread; every function here is pure (no I/O, no globals). */
#ifndef LLAMAD_API_H
#define LLAMAD_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/engine/event.h"
#include "llamad/model/sampler.h"
#include "llamad/tokenizer/tokenizer.h"

enum llamad_api_kind {
    LLAMAD_API_COMPLETIONS, /* POST /v1/completions */
    LLAMAD_API_CHAT,        /* POST /v1/chat/completions */
    LLAMAD_API_NATIVE,      /* POST /completion (llama.cpp server field names) */
};

/* An OpenAI-style error: {"error": {"message", "type", "param", "code"}}. */
struct llamad_api_error {
    int status;        /* HTTP status: 400, 401, 404, 405, 413, 500, 503 */
    char type[32];     /* "invalid_request_error", "authentication_error", "server_error", ... */
    char param[64];    /* the offending field ("" when none: JSON null) */
    char code[48];     /* e.g. "model_not_found", "context_length_exceeded" ("" -> null) */
    char message[320];
};

/* Fills e and returns e->status. */
int llamad_api_set_error(struct llamad_api_error *e, int status, const char *type,
                         const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* {"error": {...}} as a malloc'd NUL-terminated string (NULL when out of memory). */
char *llamad_api_error_json(const struct llamad_api_error *e);

struct llamad_chat_message {
    char *role;    /* "system", "user" or "assistant" */
    char *content; /* UTF-8 text (content parts of type "text" are joined) */
};

struct llamad_api_request {
    enum llamad_api_kind kind;
    char *model;                /* NULL when omitted */

    /* The prompt: text, token ids, or chat messages. */
    char *prompt;               /* NUL-terminated UTF-8 text, NULL when not text */
    size_t prompt_len;
    int32_t *prompt_ids;        /* when the prompt was given as token ids */
    size_t n_prompt_ids;
    struct llamad_chat_message *messages;
    size_t n_messages;

    int32_t max_tokens;         /* -1 when not given (the server applies its default);
                                 * 0 only from /completion: the prompt alone */
    struct llamad_sampling sampling; /* logit_bias points into .logit_bias */
    bool seed_given;            /* false: the server draws a random seed */
    struct llamad_logit_bias *logit_bias;
    size_t n_logit_bias;
    char **stops;
    size_t *stop_lens;
    size_t n_stops;
    bool stream;
    bool include_usage;         /* stream_options.include_usage */
    bool logprobs;              /* return logprobs of the sampled tokens */
    int32_t top_logprobs;       /* and of this many alternatives */
    bool ignore_eos;
    char session_id[129];       /* "" when none */
};

struct llamad_api_limits {
    int32_t n_vocab;         /* token ids (prompt, logit_bias) must be below this */
    int32_t max_stops;       /* stop strings accepted */
    size_t max_stop_len;     /* bytes per stop string */
    int32_t max_top_logprobs;
};

/* Parses and validates a request body (len bytes, not necessarily NUL-terminated).
 * Checks: the body is valid UTF-8 and a JSON object; no string holds U+0000;
 * every field has the right type; integers are integral and in range (checked on
 * the double value); OpenAI parameters llamad does not implement (n > 1, echo,
 * best_of > 1, suffix, tools, tool_choice, functions, function_call,
 * response_format other than text, logprobs on... as documented) are refused
 * naming the param. Unknown fields are ignored. Defaults follow the endpoint:
 * OpenAI's (temperature 1, top_p 1, no top-k or min-p) for the /v1 endpoints,
 * llama.cpp's (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05) for /completion.
 * Returns 0, or the HTTP status with err filled; *out is then empty. */
int llamad_api_parse_request(enum llamad_api_kind kind, const char *body, size_t len,
                             const struct llamad_api_limits *lim, struct llamad_api_request *out,
                             struct llamad_api_error *err);
void llamad_api_request_free(struct llamad_api_request *r);

/* What every response body of one request shares. */
struct llamad_api_reply {
    enum llamad_api_kind kind;
    const char *id;       /* "cmpl-...", "chatcmpl-..." */
    int64_t created;      /* unix seconds */
    const char *model;    /* the served model's id */
    const struct llamad_tokenizer *tok; /* renders top-logprob tokens */
    bool logprobs;
    int32_t top_logprobs;
    bool include_usage;
};

/* Non-streamed response: `tokens` is the request's list of TOKEN events (linked by
 * ->next, possibly NULL), `done` its DONE event. A TOKEN event whose token is -1
 * carries only text (what was held back until the end: DONE's text) and has no
 * logprobs entry. The text is the concatenation of
 * the events' .text. Malloc'd JSON, NULL when out of memory. */
char *llamad_api_response_json(const struct llamad_api_reply *r, const struct llamad_event *tokens,
                               const struct llamad_event *done);

/* Streaming payloads (the JSON after "data: "; the caller adds framing). NULL when
 * out of memory, or when there is nothing to send for that event (e.g. a token
 * that released no text and carries no logprobs). */
char *llamad_api_chunk_first_json(const struct llamad_api_reply *r); /* chat: delta.role; else NULL */
char *llamad_api_chunk_token_json(const struct llamad_api_reply *r, const struct llamad_event *token,
                                  size_t text_offset /* bytes of text sent before it */);
char *llamad_api_chunk_final_json(const struct llamad_api_reply *r, const struct llamad_event *done);
/* include_usage: the usage-only chunk ("choices": []); NULL when not asked. */
char *llamad_api_chunk_usage_json(const struct llamad_api_reply *r, const struct llamad_event *done);

/* GET /v1/models */
char *llamad_api_models_json(const char *model_id, int64_t created);

/* POST /tokenize: {"content": string, "add_special": bool (default false),
 * "with_pieces": bool (default false)} -> {"tokens": [ids]} or, with pieces,
 * {"tokens": [{"id": n, "piece": string}]} (a piece that is not whole UTF-8 is
 * given as an array of byte values, as llama.cpp does). */
char *llamad_api_tokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                          struct llamad_api_error *err);
/* POST /apply-template, in two halves around the chat renderer: the request's
 * "messages" (as /v1/chat/completions takes them) into out->messages (free out
 * with llamad_api_request_free, also after a failure); and the answer
 * {"prompt": text}. */
int llamad_api_parse_messages(const char *body, size_t len, struct llamad_api_request *out,
                              struct llamad_api_error *err);
char *llamad_api_prompt_json(const char *text, size_t len, struct llamad_api_error *err);

/* POST /detokenize: {"tokens": [ids]} -> {"content": string}. */
char *llamad_api_detokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                            struct llamad_api_error *err);

#endif
