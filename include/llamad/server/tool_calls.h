/* Tool calls in generated text: the parser that finds the served template's call
 * syntax (enum llamad_tool_syntax) in what a model wrote, whole or as it streams,
 * and the grammar that constrains an output to a valid call.
 *
 * Pure functions of their arguments (no I/O, no globals); loop thread. */
#ifndef LLAMAD_TOOL_CALLS_H
#define LLAMAD_TOOL_CALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/base/buf.h"
#include "llamad/server/api_request.h"

struct cJSON;

/* ---- The constraint for tool_choice "required" or a named function ----
 *
 * The converter of one function's parameters (a JSON Schema object) to GBNF:
 * it appends to out the rules of a grammar whose entry rule is named `rule`
 * and whose other rules' names all start with `rule` followed by "-" (so the
 * rules of several functions live in one grammar). Returns 0, or a negative
 * LLAMAD_E* code with err filled. */
typedef int (*llamad_tool_schema_gbnf_fn)(const struct cJSON *schema, const char *rule,
                                          struct llamad_buf *out, char *err, size_t errsz);

/* The GBNF of a valid answer under t's tool_choice (REQUIRED: one call of any
 * declared function, or several when t->parallel; NAMED: calls of tools[named])
 * in syntax syn; each function's arguments follow the rules schema_gbnf makes
 * of its parameters (the daemon's: json_schema.h's llamad_json_schema_rules).
 * The entry rule is "root". Appends to out. Returns 0, or the converter's code
 * with err naming the function. */
int llamad_tool_grammar(enum llamad_tool_syntax syn, const struct llamad_tools *t,
                        llamad_tool_schema_gbnf_fn schema_gbnf, struct llamad_buf *out, char *err,
                        size_t errsz);

/* ---- Parsing the output ---- */

/* A call the model made. */
struct llamad_tool_call_out {
    size_t index;    /* its place among the response's calls, from 0 */
    char id[32];     /* "call_" and 24 random letters and digits */
    char *name;      /* a declared function's */
    char *arguments; /* the arguments object as compact JSON text */
};

/* What one feed released: text that is content (whitespace between calls is
 * not), then the calls completed. */
struct llamad_tool_piece {
    struct llamad_buf content;
    struct llamad_tool_call_out *calls;
    size_t n_calls;
};

/* A model's output as it comes, piece by piece: text that may be the start of a
 * call is held back until it is known to be one or not. TAGGED: from a possible
 * "<tool_call>" to its "</tool_call>" (or the end); LLAMA3: an answer whose
 * first non-blank character is "{", MISTRAL: one whose first is "[", to the
 * end. A call is a JSON object with the "name" of a declared function and its
 * "arguments" ("parameters" too) as an object (absent: {}); anything else stays
 * text. With t->parallel false, calls after the first are dropped. */
struct llamad_tool_stream {
    enum llamad_tool_syntax syntax;
    const struct llamad_tools *tools; /* borrowed */
    uint64_t rng;                     /* the ids' random state */
    struct llamad_buf held;           /* text not yet released */
    struct llamad_buf blank;          /* released whitespace not yet content */
    int state;
    size_t n_calls;
    bool done;
};

void llamad_tool_stream_init(struct llamad_tool_stream *s, enum llamad_tool_syntax syntax,
                             const struct llamad_tools *tools, uint64_t seed);
/* Feeds len bytes (end: the output is over; nothing is held after it). Appends
 * to out. Returns 0 or LLAMAD_ENOMEM. */
int llamad_tool_stream_feed(struct llamad_tool_stream *s, const char *text, size_t len, bool end,
                            struct llamad_tool_piece *out);
void llamad_tool_stream_free(struct llamad_tool_stream *s);
void llamad_tool_piece_free(struct llamad_tool_piece *p);

#endif
