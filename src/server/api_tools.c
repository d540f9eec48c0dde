/* Tool calling's request fields (api_read.h): "tools", "tool_choice" and
 * "parallel_tool_calls" of /v1/chat/completions and /apply-template, and the
 * messages' own: an assistant's "tool_calls", a tool message's "tool_call_id"
 * and "name". Every shape is checked here; a wrong one is a 400 naming the
 * field, as OpenAI answers. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_read.h"

#define MAX_TOOLS 128
#define MAX_NAME 64

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A malloc'd copy of item as compact JSON text. */
static char *compact(const cJSON *item)
{
    return cJSON_PrintUnformatted(item);
}

static int parse_tool(const cJSON *it, int i, struct llamad_tool *t, struct llamad_api_error *err)
{
    char param[64];
    snprintf(param, sizeof param, "tools[%d]", i);
    if (!cJSON_IsObject(it))
        return api_invalid(err, param, "'%s' must be an object", param);
    const cJSON *type = api_field(it, "type"), *fn = api_field(it, "function");
    snprintf(param, sizeof param, "tools[%d].type", i);
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)
        return api_invalid(err, param, "'%s' must be \"function\"", param);
    snprintf(param, sizeof param, "tools[%d].function", i);
    if (!cJSON_IsObject(fn))
        return api_invalid(err, param, "'%s' must be an object", param);
    const cJSON *name = api_field(fn, "name"), *desc = api_field(fn, "description"),
                *params = api_field(fn, "parameters"), *strict = api_field(fn, "strict");
    snprintf(param, sizeof param, "tools[%d].function.name", i);
    if (!cJSON_IsString(name) || !name_ok(name->valuestring))
        return api_invalid(err, param, "'%s' must be 1 to %d of a-z, A-Z, 0-9, _ and -", param,
                           MAX_NAME);
    snprintf(param, sizeof param, "tools[%d].function.description", i);
    if (desc && !cJSON_IsString(desc))
        return api_invalid(err, param, "'%s' must be a string", param);
    snprintf(param, sizeof param, "tools[%d].function.parameters", i);
    if (params && !cJSON_IsObject(params))
        return api_invalid(err, param, "'%s' must be a JSON Schema object", param);
    snprintf(param, sizeof param, "tools[%d].function.strict", i);
    if (strict && !cJSON_IsBool(strict))
        return api_invalid(err, param, "'%s' must be a boolean", param);
    t->name = strdup(name->valuestring);
    t->description = desc ? strdup(desc->valuestring) : NULL;
    t->parameters = params ? compact(params) : strdup("{}");
    if (!t->name || (desc && !t->description) || !t->parameters)
        return api_no_memory(err);
    return 0;
}

static int find_tool(const struct llamad_tools *t, const char *name, size_t *at)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->tools[i].name, name) == 0) {
            *at = i;
            return 0;
        }
    return -1;
}

static int parse_choice(const cJSON *root, struct llamad_tools *t, struct llamad_api_error *err)
{
    const cJSON *c = api_field(root, "tool_choice");
    t->choice = t->n ? LLAMAD_TOOL_CHOICE_AUTO : LLAMAD_TOOL_CHOICE_NONE;
    if (!c)
        return 0;
    if (cJSON_IsString(c)) {
        static const char *const names[] = {"none", "auto", "required"};
        size_t k = 0;
        while (k < 3 && strcmp(c->valuestring, names[k]) != 0)
            k++;
        if (k == 3)
            return api_invalid(err, "tool_choice",
                               "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                               "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        if (k > 0 && t->n == 0)
            return api_invalid(err, "tool_choice",
                               "'tool_choice' \"%s\" needs 'tools' with at least one function",
                               names[k]);
        t->choice = (enum llamad_tool_choice)k;
        return 0;
    }
    const cJSON *type = cJSON_IsObject(c) ? api_field(c, "type") : NULL;
    const cJSON *fn = cJSON_IsObject(c) ? api_field(c, "function") : NULL;
    const cJSON *name = cJSON_IsObject(fn) ? api_field(fn, "name") : NULL;
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0 ||
        !cJSON_IsString(name))
        return api_invalid(err, "tool_choice",
                           "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                           "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (find_tool(t, name->valuestring, &t->named) != 0)
        return api_invalid(err, "tool_choice",
                           "'tool_choice' names the function '%.64s', which 'tools' does not "
                           "declare",
                           name->valuestring);
    t->choice = LLAMAD_TOOL_CHOICE_NAMED;
    return 0;
}

int api_parse_tools(const cJSON *root, struct llamad_tools *t, struct llamad_api_error *err)
{
    const cJSON *tools = api_field(root, "tools");
    t->parallel = true;
    int rc = api_get_bool(root, "parallel_tool_calls", &t->parallel, err);
    if (rc)
        return rc;
    if (tools) {
        int n = cJSON_IsArray(tools) ? cJSON_GetArraySize(tools) : -1;
        if (n <= 0) /* OpenAI's minimum length is 1 too */
            return api_invalid(err, "tools", "'tools' must be a non-empty array of functions");
        if (n > MAX_TOOLS)
            return api_invalid(err, "tools", "at most %d tools are supported", MAX_TOOLS);
        if (!(t->tools = calloc((size_t)n, sizeof *t->tools)))
            return api_no_memory(err);
        int i = 0;
        for (const cJSON *it = tools->child; it; it = it->next, i++) {
            /* Counted first, so that a half-filled tool is freed too. */
            struct llamad_tool *tool = &t->tools[t->n++];
            size_t dup;
            if ((rc = parse_tool(it, i, tool, err)))
                return rc;
            if (find_tool(t, tool->name, &dup) == 0 && dup != t->n - 1) {
                char param[64];
                snprintf(param, sizeof param, "tools[%d].function.name", i);
                return api_invalid(err, param, "the function '%s' is declared twice", tool->name);
            }
        }
    }
    return parse_choice(root, t, err);
}

void api_tools_free(struct llamad_tools *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->tools[i].name);
        free(t->tools[i].description);
        free(t->tools[i].parameters);
    }
    free(t->tools);
    memset(t, 0, sizeof *t);
}

/* ---- Messages ---- */

/* The arguments as JSON text: compact when the client sent JSON, else its text as
 * a JSON string. NULL when out of memory. */
static char *arguments_text(const char *s)
{
    api_json_oom_reset();
    cJSON *j = cJSON_ParseWithOpts(s, NULL, true);
    if (!j && api_json_oom())
        return NULL;
    if (!j)
        j = cJSON_CreateString(s);
    char *out = j ? compact(j) : NULL;
    cJSON_Delete(j);
    return out;
}

static int parse_call(const cJSON *it, int i, int k, struct llamad_tool_call *c,
                      struct llamad_api_error *err)
{
    char param[80];
    snprintf(param, sizeof param, "messages[%d].tool_calls[%d]", i, k);
    const cJSON *id = cJSON_IsObject(it) ? api_field(it, "id") : NULL;
    const cJSON *type = cJSON_IsObject(it) ? api_field(it, "type") : NULL;
    const cJSON *fn = cJSON_IsObject(it) ? api_field(it, "function") : NULL;
    const cJSON *name = cJSON_IsObject(fn) ? api_field(fn, "name") : NULL;
    const cJSON *args = cJSON_IsObject(fn) ? api_field(fn, "arguments") : NULL;
    if (!cJSON_IsString(id) ||
        (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)) ||
        !cJSON_IsString(name) || !name_ok(name->valuestring) || !cJSON_IsString(args))
        return api_invalid(err, param,
                           "'%s' must be {\"id\": string, \"type\": \"function\", \"function\": "
                           "{\"name\": string, \"arguments\": string}}",
                           param);
    c->id = strdup(id->valuestring);
    c->name = strdup(name->valuestring);
    c->arguments = arguments_text(args->valuestring);
    return c->id && c->name && c->arguments ? 0 : api_no_memory(err);
}

int api_parse_message_tools(const cJSON *msg, int i, const char *role,
                            struct llamad_chat_message *m, struct llamad_api_error *err)
{
    char param[64];
    const cJSON *calls = api_field(msg, "tool_calls");
    const cJSON *id = api_field(msg, "tool_call_id"), *name = api_field(msg, "name");
    if (strcmp(role, "tool") == 0) {
        snprintf(param, sizeof param, "messages[%d].tool_call_id", i);
        if (!cJSON_IsString(id))
            return api_invalid(err, param, "'%s' is required: a string", param);
        snprintf(param, sizeof param, "messages[%d].name", i);
        if (name && !cJSON_IsString(name))
            return api_invalid(err, param, "'%s' must be a string", param);
        m->tool_call_id = strdup(id->valuestring);
        m->name = name ? strdup(name->valuestring) : NULL;
        return m->tool_call_id && (!name || m->name) ? 0 : api_no_memory(err);
    }
    if (!calls)
        return 0;
    snprintf(param, sizeof param, "messages[%d].tool_calls", i);
    if (strcmp(role, "assistant") != 0)
        return api_invalid(err, param, "only assistant messages have 'tool_calls'");
    if (!cJSON_IsArray(calls))
        return api_invalid(err, param, "'%s' must be an array of tool calls", param);
    int n = cJSON_GetArraySize(calls), k = 0;
    if (n > 0 && !(m->tool_calls = calloc((size_t)n, sizeof *m->tool_calls)))
        return api_no_memory(err);
    for (const cJSON *it = calls->child; it; it = it->next, k++) {
        int rc = parse_call(it, i, k, &m->tool_calls[m->n_tool_calls++], err);
        if (rc)
            return rc;
    }
    return 0;
}

void api_message_tools_free(struct llamad_chat_message *m)
{
    for (size_t k = 0; k < m->n_tool_calls; k++) {
        free(m->tool_calls[k].id);
        free(m->tool_calls[k].name);
        free(m->tool_calls[k].arguments);
    }
    free(m->tool_calls);
    free(m->tool_call_id);
    free(m->name);
}
