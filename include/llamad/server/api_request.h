/* The HTTP API's requests: JSON bodies parsed and validated into plain structs,
 * and the errors that answer a request (OpenAI's error objects). OpenAI's shapes
 * for /v1/completions and /v1/chat/completions, llama.cpp's server field names
 * for the native /completion.
 *
 * Runs on the loop thread; every function here is pure (no I/O, no globals but
 * cJSON's allocator hooks, which llamad_api_init sets once). */
#ifndef LLAMAD_API_REQUEST_H
#define LLAMAD_API_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/engine/request.h"
#include "llamad/model/sampler.h"

enum llamad_api_kind {
    LLAMAD_API_COMPLETIONS, /* POST /v1/completions */
    LLAMAD_API_CHAT,        /* POST /v1/chat/completions */
    LLAMAD_API_NATIVE,      /* POST /completion (llama.cpp server field names) */
};

/* An OpenAI-style error: {"error": {"message", "type", "param", "code"}}. */
struct llamad_api_error {
    int status;     /* HTTP status: 400, 401, 404, 405, 413, 500, 503 */
    char type[32];  /* "invalid_request_error", "authentication_error", "server_error", ... */
    char param[64]; /* the offending field ("" when none: JSON null) */
    char code[48];  /* e.g. "model_not_found", "context_length_exceeded" ("" -> null) */
    char message[320];
};

/* Fills e and returns e->status. */
int llamad_api_set_error(struct llamad_api_error *e, int status, const char *type,
                         const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A call an assistant message made (OpenAI's message.tool_calls[]). */
struct llamad_tool_call {
    char *id;        /* as the client sent it */
    char *name;      /* the function's name */
    char *arguments; /* JSON text, compact: the arguments as sent when they were JSON,
                        else their text as a JSON string */
};

struct llamad_chat_message {
    char *role;    /* "system", "user", "assistant" or "tool" */
    char *content; /* UTF-8 text (content parts of type "text" are joined); never NULL */
    struct llamad_tool_call *tool_calls; /* assistant: the calls it made (NULL, 0: none) */
    size_t n_tool_calls;
    char *tool_call_id; /* tool: the call this message answers; else NULL */
    char *name;         /* tool: the function's name when given; else NULL */
};

/* A function the model may call (tools[] of type "function"). */
struct llamad_tool {
    char *name;        /* [A-Za-z0-9_-], 1 to 64 bytes */
    char *description; /* NULL when none */
    char *parameters;  /* its JSON Schema object as compact JSON text ("{}" when none) */
};

enum llamad_tool_choice {
    LLAMAD_TOOL_CHOICE_NONE,     /* no tools, or "none": the output is text */
    LLAMAD_TOOL_CHOICE_AUTO,     /* the model may call a tool */
    LLAMAD_TOOL_CHOICE_REQUIRED, /* the model must call at least one */
    LLAMAD_TOOL_CHOICE_NAMED,    /* the model must call tools[named] */
};

/* How a template's model writes a call (the syntax tool_calls.c parses and
 * constrains; chat.c's llamad_chat_tool_syntax says which a template has). */
enum llamad_tool_syntax {
    LLAMAD_TOOL_SYNTAX_TAGGED,  /* <tool_call>{"name": ..., "arguments": {...}}</tool_call> */
    LLAMAD_TOOL_SYNTAX_LLAMA3,  /* {"name": ..., "parameters": {...}} as the whole answer */
    LLAMAD_TOOL_SYNTAX_MISTRAL, /* [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] */
};

struct llamad_tools {
    struct llamad_tool *tools;
    size_t n;
    enum llamad_tool_choice choice; /* AUTO by default when tools are given, else NONE */
    size_t named;                   /* NAMED: the index of the tool in tools */
    bool parallel;                  /* parallel_tool_calls (default true) */
};

struct llamad_api_request {
    enum llamad_api_kind kind;
    char *model; /* NULL when omitted */

    /* The prompt: text, chat messages, or token ids (those straight into gen.prompt). */
    char *prompt; /* NUL-terminated UTF-8 text, NULL when not text */
    size_t prompt_len;
    struct llamad_chat_message *messages;
    size_t n_messages;
    struct llamad_tools tools; /* chat: tools, tool_choice, parallel_tool_calls */

    /* GBNF text constraining the output, NUL-terminated, NULL when none: from
     * "grammar" (every endpoint, an extension on the OpenAI ones; at most
     * LLAMAD_API_MAX_GRAMMAR bytes), or made by json_schema.h from
     * response_format json_object / json_schema or "json_schema" (one of them at
     * most). Once every field is read it is parsed into gen.grammar (a grammar
     * that does not parse: 400, param "grammar", the message saying "line L,
     * column C"). */
    char *grammar;
    size_t grammar_len;

    bool seed_given; /* false: the server draws gen.sampling.seed at random */
    bool stream;
    bool include_usage; /* stream_options.include_usage */

    /* What the engine is asked to run, parsed in place: the server adds the prompt's
     * token ids (unless given as ids), settles max_tokens and the seed, and submits
     * it as it is. gen.max_tokens holds the endpoint's default when none was given:
     * 16 on /v1/completions (OpenAI's), else -1, which asks for up to the end of
     * the context (or the server's cap); 0 comes only from /completion (the prompt
     * alone). gen.sampling.logit_bias points at gen.logit_bias. */
    struct llamad_gen_request gen;
};

/* The longest grammar text a request may send (bytes). */
#define LLAMAD_API_MAX_GRAMMAR 65536

struct llamad_api_limits {
    int32_t n_vocab;     /* token ids (prompt, logit_bias) must be below this */
    int32_t max_stops;   /* stop strings accepted */
    size_t max_stop_len; /* bytes per stop string */
    int32_t max_top_logprobs;
    enum llamad_tool_syntax tool_syntax; /* the served template's (chat with tools) */
};

/* Parses and validates a request body (len bytes, not necessarily NUL-terminated).
 * Checks: the body is valid UTF-8 and a JSON object; no string holds U+0000;
 * every field has the right type; integers are integral and in range (checked on
 * the double value); OpenAI parameters llamad does not implement (n > 1, echo,
 * best_of > 1, suffix, functions, function_call, logprobs on... as
 * documented) are refused naming the param. response_format ("text",
 * "json_object", "json_schema") and json_schema (llama.cpp's: the schema itself)
 * become out->grammar, as do tools with tool_choice "required" or a named
 * function (tool_calls.h); giving more than one of them, or either with
 * grammar, is refused; a schema outside json_schema.h's subset gets a 400 naming
 * its keyword. Unknown fields are ignored. Defaults follow the endpoint:
 * OpenAI's (temperature 1, top_p 1, no top-k or min-p; max_tokens 16 for
 * /v1/completions) for the /v1 endpoints, llama.cpp's (llamad_sampling_defaults)
 * for /completion.
 * Returns 0, or the HTTP status with err filled; *out is then empty. */
/* Installs cJSON's allocator hooks, before any thread uses cJSON: with them a
 * parse that ran out of memory is told from bad JSON (a 500, not a 400). */
void llamad_api_init(void);

int llamad_api_parse_request(enum llamad_api_kind kind, const char *body, size_t len,
                             const struct llamad_api_limits *lim, struct llamad_api_request *out,
                             struct llamad_api_error *err);
void llamad_api_request_free(struct llamad_api_request *r);

/* The header that names a session as the body's session_id does, so that a proxy
 * in front of several daemons can route a session's requests on it. */
#define LLAMAD_SESSION_HEADER "X-Session-Id"

/* Applies the X-Session-Id header's value (NULL or "" when absent: nothing to do)
 * to a request parsed by llamad_api_parse_request: the same rules as session_id
 * (up to 128 of A-Z a-z 0-9 . _ : -), and when the body names a session too, the
 * two must be the same one. Returns 0, or 400 with err naming the header; *out is
 * the caller's to free either way. */
int llamad_api_session_header(const char *value, struct llamad_api_request *out,
                              struct llamad_api_error *err);

/* POST /apply-template: the request's "messages", "tools" and "tool_choice" (as
 * /v1/chat/completions takes them) into out->messages and out->tools (free out with
 * llamad_api_request_free, also after a failure); llamad_api_prompt_json (api_response.h) answers.
 */
int llamad_api_parse_messages(const char *body, size_t len, struct llamad_api_request *out,
                              struct llamad_api_error *err);

#endif
