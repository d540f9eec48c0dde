/* Chat history as a cJSON array, and the request around it. */
#include "chat.h"

#include <math.h>

int chat_init(struct chat *c, const char *system)
{
    c->messages = cJSON_CreateArray();
    if (!c->messages)
        return -1;
    return system ? chat_add(c, "system", system) : 0;
}

void chat_free(struct chat *c)
{
    cJSON_Delete(c->messages);
}

int chat_add(struct chat *c, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "role", role) ||
        !cJSON_AddStringToObject(m, "content", content) || !cJSON_AddItemToArray(c->messages, m)) {
        cJSON_Delete(m);
        return -1;
    }
    return 0;
}

void chat_drop_last(struct chat *c)
{
    int n = cJSON_GetArraySize(c->messages);
    if (n)
        cJSON_DeleteItemFromArray(c->messages, n - 1);
}

char *chat_request(const struct chat *c, const struct cli_args *a, const char *session)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *opts = cJSON_AddObjectToObject(body, "stream_options");
    /* A reference: the history stays the chat's, deleting body leaves it. */
    int ok = body && opts && cJSON_AddItemReferenceToObject(body, "messages", c->messages) &&
             cJSON_AddBoolToObject(body, "stream", 1) &&
             cJSON_AddBoolToObject(opts, "include_usage", 1);
    if (ok && session)
        ok = cJSON_AddStringToObject(body, "session_id", session) != NULL;
    if (ok && !isnan(a->temperature))
        ok = cJSON_AddNumberToObject(body, "temperature", a->temperature) != NULL;
    if (ok && !isnan(a->top_p))
        ok = cJSON_AddNumberToObject(body, "top_p", a->top_p) != NULL;
    if (ok && a->top_k >= 0)
        ok = cJSON_AddNumberToObject(body, "top_k", (double)a->top_k) != NULL;
    if (ok && a->max_tokens > 0)
        ok = cJSON_AddNumberToObject(body, "max_tokens", (double)a->max_tokens) != NULL;
    if (ok && a->has_seed)
        ok = cJSON_AddNumberToObject(body, "seed", (double)a->seed) != NULL;
    if (ok && a->ignore_eos)
        ok = cJSON_AddBoolToObject(body, "ignore_eos", 1) != NULL;
    char *text = ok ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    return text;
}
