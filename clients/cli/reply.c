/* The chunks of a streamed chat answer (OpenAI's shape), read with cJSON. */
#include "reply.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double reply_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void reply_init(struct reply *r, FILE *out)
{
    *r = (struct reply){
        .out = out, .completion_tokens = -1, .prompt_tokens = -1, .cached_tokens = -1};
    r->t_start = reply_now();
}

void reply_free(struct reply *r)
{
    free(r->text);
    free(r->error);
}

static int keep_text(struct reply *r, const char *s)
{
    size_t n = strlen(s);
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap * 2 : 1024;
        while (r->text_len + n + 1 > cap)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t)
            return -1;
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, n + 1);
    r->text_len += n;
    return 0;
}

static long number(const cJSON *obj, const char *name)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(n) ? (long)n->valuedouble : -1;
}

/* "error 401 invalid_api_key: a valid API key is needed" from an error object. */
static void set_error_object(struct reply *r, long status, const cJSON *error)
{
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(error, "message");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(error, "type");
    const char *kind = cJSON_IsString(code) && *code->valuestring ? code->valuestring
                       : cJSON_IsString(type)                     ? type->valuestring
                                                                  : "error";
    const char *text = cJSON_IsString(msg) ? msg->valuestring : "(no message)";
    char *line = malloc(strlen(kind) + strlen(text) + 48);
    if (!line)
        return;
    if (status)
        sprintf(line, "error %ld %s: %s", status, kind, text);
    else
        sprintf(line, "error %s: %s", kind, text);
    free(r->error);
    r->error = line;
}

static void take_usage(struct reply *r, const cJSON *usage)
{
    r->completion_tokens = number(usage, "completion_tokens");
    r->prompt_tokens = number(usage, "prompt_tokens");
    r->cached_tokens =
        number(cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details"), "cached_tokens");
}

int reply_event(const char *data, void *user)
{
    struct reply *r = user;
    if (strcmp(data, "[DONE]") == 0) {
        r->done = 1;
        return 0;
    }
    cJSON *root = cJSON_Parse(data);
    if (!root)
        return 0; /* not JSON: nothing of ours */
    int rc = 0;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(error))
        set_error_object(r, 0, error);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(usage))
        take_usage(r, usage);
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    if (cJSON_IsString(content) && *content->valuestring) {
        if (!r->chunks)
            r->t_first = reply_now();
        r->chunks++;
        fputs(content->valuestring, r->out);
        fflush(r->out);
        rc = keep_text(r, content->valuestring);
    }
    cJSON_Delete(root);
    return rc;
}

void reply_set_error(struct reply *r, long status, const char *body)
{
    cJSON *root = cJSON_Parse(body);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(error)) {
        set_error_object(r, status, error);
    } else {
        char *line = malloc(64);
        if (line)
            snprintf(line, 64, "error %ld: the server's answer is no error object", status);
        free(r->error);
        r->error = line;
    }
    cJSON_Delete(root);
}
