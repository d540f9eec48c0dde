/* Reading JSON request bodies (api_read.h): errors, the checks of a raw body,
 * and the typed readers every request parser shares (api_request.c, api_tools.c,
 * api_response.c's small bodies, tool_calls.c). */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_read.h"
#include "llamad/base/utf8.h"

/* ---- Errors ---- */

static int set_errorv(struct llamad_api_error *e, int status, const char *type, const char *param,
                      const char *code, const char *fmt, va_list ap)
{
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type ? type : "");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    return status;
}

int llamad_api_set_error(struct llamad_api_error *e, int status, const char *type,
                         const char *param, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_errorv(e, status, type, param, code, fmt, ap);
    va_end(ap);
    return status;
}

int api_invalid(struct llamad_api_error *e, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_errorv(e, 400, "invalid_request_error", param, NULL, fmt, ap);
    va_end(ap);
    return 400;
}

int api_no_memory(struct llamad_api_error *e)
{
    return llamad_api_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
}

/* ---- Reading a request body ---- */

/* cJSON returns NULL alike for bad JSON and for an allocation that failed: its
 * allocator notes the failure for the parse on this thread. */
static _Thread_local bool json_out_of_memory;

static void *json_malloc(size_t n)
{
    void *p = malloc(n);
    json_out_of_memory |= p == NULL;
    return p;
}

void api_json_oom_reset(void)
{
    json_out_of_memory = false;
}

bool api_json_oom(void)
{
    return json_out_of_memory;
}

void llamad_api_init(void)
{
    cJSON_Hooks hooks = {json_malloc, free};
    cJSON_InitHooks(&hooks);
}

static int hex4(const char *s, size_t avail)
{
    int v = 0;
    if (avail < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The \u escape at s[i] (s[i] == '\\', s[i + 1] == 'u'): refuses U+0000, unpaired
 * surrogates and escapes without four hex digits (cJSON reads "\uzzzz" as U+0000 and
 * cuts the string there); *i moves to the escape's last byte. */
static int check_u_escape(const char *s, size_t len, size_t *i, struct llamad_api_error *err)
{
    size_t at = *i;
    int cp = hex4(s + at + 2, len - at - 2);
    if (cp < 0)
        return api_invalid(err, NULL, "malformed \\u escape at byte %zu", at);
    if (cp == 0)
        return api_invalid(err, NULL, "strings must not contain U+0000 (\\u0000 at byte %zu)", at);
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return api_invalid(err, NULL, "unpaired surrogate \\u%04x at byte %zu", (unsigned)cp, at);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        bool escape = len - at >= 8 && s[at + 6] == '\\' && s[at + 7] == 'u';
        int low = escape ? hex4(s + at + 8, len - at - 8) : -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return api_invalid(err, NULL, "unpaired surrogate \\u%04x at byte %zu", (unsigned)cp,
                               at);
        *i = at + 11;
        return 0;
    }
    *i = at + 5;
    return 0;
}

/* cJSON ends a string at an escaped U+0000 (cutting it silently) and refuses unpaired
 * surrogates without saying why: this pass over the raw body finds both, and raw NUL
 * bytes, with a precise message. */
static int scan_strings(const char *s, size_t len, struct llamad_api_error *err)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        int rc;
        if (s[i] == '\0')
            return api_invalid(err, NULL, "the request body contains a NUL byte (byte %zu)", i);
        if (s[i] == '"')
            in_string = !in_string;
        else if (in_string && s[i] == '\\' && i + 1 < len && s[i + 1] == 'u') {
            if ((rc = check_u_escape(s, len, &i, err)))
                return rc;
        } else if (in_string && s[i] == '\\') {
            i++; /* the escaped character, which may be a quote */
        }
    }
    return 0;
}

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A key twice in one object is refused: parsers differ on which one counts (cJSON
 * takes the first, many take the last), so a proxy checking the request and llamad
 * could read two different requests. Each object's keys are sorted to find one. */
static int check_duplicate_keys(const cJSON *item, struct llamad_api_error *err)
{
    int n = cJSON_IsObject(item) ? cJSON_GetArraySize(item) : 0;
    if (n > 1) {
        const char **keys = malloc((size_t)n * sizeof *keys);
        if (!keys)
            return api_no_memory(err);
        int i = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            keys[i++] = c->string;
        qsort(keys, (size_t)n, sizeof *keys, compare_keys);
        const char *twice = NULL;
        for (i = 1; i < n && !twice; i++)
            if (!strcmp(keys[i - 1], keys[i]))
                twice = keys[i];
        free(keys);
        if (twice)
            return api_invalid(err, NULL, "the key '%.64s' appears twice in one object", twice);
    }
    /* Nesting is bounded by cJSON (CJSON_NESTING_LIMIT), and so is this recursion. */
    for (const cJSON *c = item->child; c; c = c->next) {
        int rc = check_duplicate_keys(c, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The body as a JSON object. cJSON is told the length (the body need not be
 * NUL-terminated) and reports where it stopped; what follows must be whitespace. */
int api_parse_body(const char *body, size_t len, cJSON **root, struct llamad_api_error *err)
{
    *root = NULL;
    if (len == 0)
        return api_invalid(err, NULL, "the request body is empty");
    size_t valid = llamad_utf8_valid_prefix(body, len);
    if (valid < len)
        return api_invalid(err, NULL, "the request body is not valid UTF-8 (byte %zu)", valid);
    int rc = scan_strings(body, len, err);
    if (rc)
        return rc;
    const char *end = NULL;
    json_out_of_memory = false;
    cJSON *json = cJSON_ParseWithLengthOpts(body, len, &end, false);
    size_t at = end ? (size_t)(end - body) : 0;
    if (!json && json_out_of_memory)
        return api_no_memory(err);
    if (!json)
        return api_invalid(err, NULL, "the request body is not valid JSON (error at byte %zu)", at);
    while (at < len && json_space(body[at]))
        at++;
    if (at < len)
        rc = api_invalid(err, NULL, "unexpected data after the JSON value (byte %zu)", at);
    else if (!cJSON_IsObject(json))
        rc = api_invalid(err, NULL, "the request body must be a JSON object");
    else
        rc = check_duplicate_keys(json, err);
    if (rc) {
        cJSON_Delete(json);
        return rc;
    }
    *root = json;
    return 0;
}

/* ---- Typed fields (a JSON null counts as absent) ---- */

const cJSON *api_field(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(it) ? NULL : it;
}

int api_get_bool(const cJSON *obj, const char *name, bool *v, struct llamad_api_error *err)
{
    const cJSON *it = api_field(obj, name);
    if (!it)
        return 0;
    if (!cJSON_IsBool(it))
        return api_invalid(err, name, "'%s' must be a boolean", name);
    *v = cJSON_IsTrue(it);
    return 0;
}
