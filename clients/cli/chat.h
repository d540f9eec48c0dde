/* A chat's history, and the request body that sends it. */
#ifndef LLAMAD_CLI_CHAT_H
#define LLAMAD_CLI_CHAT_H

#include <cjson/cJSON.h>

#include "args.h"

struct chat {
    cJSON *messages; /* [{"role": ..., "content": ...}, ...] */
};

/* Starts a history, with the system message when there is one. 0 or -1. */
int chat_init(struct chat *c, const char *system);
void chat_free(struct chat *c);
/* Appends a message; 0 or -1 out of memory. */
int chat_add(struct chat *c, const char *role, const char *content);
/* Removes the last message (a turn the server refused). */
void chat_drop_last(struct chat *c);
/* The streamed /v1/chat/completions body for the history, with the sampling
 * options of a and the session (NULL: none). NULL out of memory; free() it. */
char *chat_request(const struct chat *c, const struct cli_args *a, const char *session);

#endif
