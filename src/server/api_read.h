/* Reading JSON request bodies: defined in api_read.c (api_parse_ids in
 * api_request.c, which parses the generation requests with them), and shared
 * with api_tools.c, tool_calls.c and api_response.c (the small bodies of
 * /tokenize and /detokenize). Private to src/server/. */
#ifndef LLAMAD_API_READ_H
#define LLAMAD_API_READ_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/server/api_request.h"

/* A 400 naming the offending field; returns 400. */
int api_invalid(struct llamad_api_error *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A 500 "out of memory"; returns 500. */
int api_no_memory(struct llamad_api_error *e);

/* The body (len bytes, not necessarily NUL-terminated) as a JSON object in *root
 * (the caller deletes it). Returns 0, or the status with e filled (*root NULL). */
int api_parse_body(const char *body, size_t len, cJSON **root, struct llamad_api_error *err);

/* Whether a cJSON allocation on this thread failed since the reset: tells a
 * parse that ran out of memory from text that is not JSON. */
void api_json_oom_reset(void);
bool api_json_oom(void);

/* A member of obj; NULL when absent or JSON null (null counts as absent). */
const cJSON *api_field(const cJSON *obj, const char *name);
/* Sets *v only when the member is there; refuses a non-boolean. */
int api_get_bool(const cJSON *obj, const char *name, bool *v, struct llamad_api_error *err);
/* Token ids of a JSON array, each an integer in [0, n_vocab); param names the
 * field in errors. *ids is malloc'd (NULL for an empty array), also after a failure. */
int api_parse_ids(const cJSON *arr, int32_t n_vocab, const char *param, int32_t **ids, size_t *n,
                  struct llamad_api_error *err);

/* Tool calling (api_tools.c). "tools", "tool_choice" and "parallel_tool_calls"
 * of root into *t (free it with api_tools_free, also after a failure). */
int api_parse_tools(const cJSON *root, struct llamad_tools *t, struct llamad_api_error *err);
void api_tools_free(struct llamad_tools *t);
/* Message i's tool fields (role already checked): an assistant's "tool_calls", a
 * tool message's "tool_call_id" (required) and "name". Free with
 * api_message_tools_free, also after a failure. */
int api_parse_message_tools(const cJSON *msg, int i, const char *role,
                            struct llamad_chat_message *m, struct llamad_api_error *err);
void api_message_tools_free(struct llamad_chat_message *m);
/* tool_calls.c: for tool_choice "required" or a named function, the grammar of
 * a valid call in syntax syn into out->grammar (taking the place of a user's
 * constraint, so other, the request's field that constrains the output when
 * one does, is a 400 naming it; a function's parameters outside json_schema.h's
 * subset, a 400 naming tools). 0 for other choices. */
int api_constrain_tools(const struct llamad_tools *t, enum llamad_tool_syntax syn,
                        const char *other, struct llamad_api_request *out,
                        struct llamad_api_error *err);

#endif
