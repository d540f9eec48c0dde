/* The HTTP API's JSON (include/llamad/server/api.h).
 *
 * Requests: the raw body is checked first (valid UTF-8, no U+0000, no unpaired
 * surrogate escape), because cJSON would silently cut a string at an escaped U+0000;
 * then cJSON parses it and every field is validated on its own.
 *
 * Responses: trees built with cJSON. Every string that comes from the model or the
 * client goes in through json_text(), which escapes it here: generated text may hold
 * U+0000 (a <0x00> byte token), which cJSON's C strings cannot carry, and nothing
 * but valid UTF-8 may leave the server. */
#include "llamad/server/api.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/base/utf8.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */
#define SEED_LIMIT 9007199254740992.0 /* 2^53: larger integers are not exact in a JSON double */
#define MAX_SESSION_ID 128
#define COUNT(a) (sizeof(a) / sizeof *(a))

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

/* A 400 naming the offending field. */
static int invalid(struct llamad_api_error *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int invalid(struct llamad_api_error *e, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_errorv(e, 400, "invalid_request_error", param, NULL, fmt, ap);
    va_end(ap);
    return 400;
}

static int no_memory(struct llamad_api_error *e)
{
    return llamad_api_set_error(e, 500, "server_error", NULL, NULL, "out of memory");
}

/* ---- Building JSON ----
 * Every builder takes `ok`: the first failed allocation clears it, and put() deletes
 * whatever it could not attach, so a failed build frees everything with its root. */

static cJSON *put(bool *ok, cJSON *parent, const char *key, cJSON *item)
{
    bool added =
        item && parent &&
        (key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item));
    if (!added) {
        cJSON_Delete(item);
        *ok = false;
        return NULL;
    }
    return item;
}

static const char *short_escape(unsigned char c)
{
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: return NULL;
    }
}

/* s[0..n) as a JSON string (an item printed verbatim). Bytes that are not UTF-8
 * become U+FFFD, one per maximal invalid subpart. */
static cJSON *json_text(const char *s, size_t n)
{
    struct llamad_buf b = LLAMAD_BUF_INIT;
    int rc = llamad_buf_append(&b, "\"", 1);
    for (size_t i = 0, k = 1; !rc && i < n; i += k) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = short_escape(c);
        char hex[8];
        k = 1;
        if (esc) {
            rc = llamad_buf_append(&b, esc, strlen(esc));
        } else if (c < 0x20) {
            snprintf(hex, sizeof hex, "\\u%04x", c);
            rc = llamad_buf_append(&b, hex, 6);
        } else if (llamad_utf8_next(s + i, n - i, &k) == LLAMAD_UTF8_CHAR) {
            rc = llamad_buf_append(&b, s + i, k);
        } else {
            rc = llamad_buf_append(&b, REPLACEMENT, sizeof REPLACEMENT - 1);
        }
    }
    if (!rc)
        rc = llamad_buf_append(&b, "\"", 1);
    cJSON *item = rc ? NULL : cJSON_CreateRaw(b.data);
    llamad_buf_free(&b);
    return item;
}

static void put_text(bool *ok, cJSON *obj, const char *key, const char *s, size_t n)
{
    put(ok, obj, key, json_text(s, n));
}

static void put_str(bool *ok, cJSON *obj, const char *key, const char *s)
{
    put_text(ok, obj, key, s, strlen(s));
}

static void put_num(bool *ok, cJSON *obj, const char *key, double v)
{
    put(ok, obj, key, cJSON_CreateNumber(isfinite(v) ? v : 0.0));
}

static void put_bool(bool *ok, cJSON *obj, const char *key, bool v)
{
    put(ok, obj, key, cJSON_CreateBool(v));
}

static void put_null(bool *ok, cJSON *obj, const char *key)
{
    put(ok, obj, key, cJSON_CreateNull());
}

static cJSON *put_obj(bool *ok, cJSON *parent, const char *key)
{
    return put(ok, parent, key, cJSON_CreateObject());
}

static cJSON *put_arr(bool *ok, cJSON *parent, const char *key)
{
    return put(ok, parent, key, cJSON_CreateArray());
}

/* Prints and frees the tree; NULL when the build failed. */
static char *finish_json(bool ok, cJSON *root)
{
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

/* A message cut inside a character (snprintf truncation, or a %.40s of client text)
 * shows U+FFFD there: json_text never lets the broken bytes through. */
char *llamad_api_error_json(const struct llamad_api_error *e)
{
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    cJSON *error = put_obj(&ok, root, "error");
    put_str(&ok, error, "message", e->message);
    put_str(&ok, error, "type", e->type);
    if (e->param[0])
        put_str(&ok, error, "param", e->param);
    else
        put_null(&ok, error, "param");
    if (e->code[0])
        put_str(&ok, error, "code", e->code);
    else
        put_null(&ok, error, "code");
    return finish_json(ok, root);
}

/* ---- Reading a request body ---- */

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

/* The \u escape at s[i] (s[i] == '\\', s[i + 1] == 'u'): refuses U+0000 and unpaired
 * surrogates; *i moves to the escape's last byte. A malformed escape is left for
 * cJSON to reject. */
static int check_u_escape(const char *s, size_t len, size_t *i, struct llamad_api_error *err)
{
    size_t at = *i;
    int cp = hex4(s + at + 2, len - at - 2);
    if (cp < 0)
        return 0;
    if (cp == 0)
        return invalid(err, NULL, "strings must not contain U+0000 (\\u0000 at byte %zu)", at);
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return invalid(err, NULL, "unpaired surrogate \\u%04x at byte %zu", (unsigned)cp, at);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        bool escape = len - at >= 8 && s[at + 6] == '\\' && s[at + 7] == 'u';
        int low = escape ? hex4(s + at + 8, len - at - 8) : -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return invalid(err, NULL, "unpaired surrogate \\u%04x at byte %zu", (unsigned)cp, at);
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
            return invalid(err, NULL, "the request body contains a NUL byte (byte %zu)", i);
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

/* The body as a JSON object. cJSON is told the length (the body need not be
 * NUL-terminated) and reports where it stopped; what follows must be whitespace. */
static int parse_body(const char *body, size_t len, cJSON **root, struct llamad_api_error *err)
{
    *root = NULL;
    if (len == 0)
        return invalid(err, NULL, "the request body is empty");
    size_t valid = llamad_utf8_valid_prefix(body, len);
    if (valid < len)
        return invalid(err, NULL, "the request body is not valid UTF-8 (byte %zu)", valid);
    int rc = scan_strings(body, len, err);
    if (rc)
        return rc;
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(body, len, &end, false);
    size_t at = end ? (size_t)(end - body) : 0;
    if (!json)
        return invalid(err, NULL, "the request body is not valid JSON (error at byte %zu)", at);
    while (at < len && json_space(body[at]))
        at++;
    if (at < len)
        rc = invalid(err, NULL, "unexpected data after the JSON value (byte %zu)", at);
    else if (!cJSON_IsObject(json))
        rc = invalid(err, NULL, "the request body must be a JSON object");
    if (rc) {
        cJSON_Delete(json);
        return rc;
    }
    *root = json;
    return 0;
}

/* ---- Typed fields (a JSON null counts as absent) ---- */

static const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(it) ? NULL : it;
}

static int get_bool(const cJSON *obj, const char *name, bool *v, struct llamad_api_error *err)
{
    const cJSON *it = field(obj, name);
    if (!it)
        return 0;
    if (!cJSON_IsBool(it))
        return invalid(err, name, "'%s' must be a boolean", name);
    *v = cJSON_IsTrue(it);
    return 0;
}

static int get_string(const cJSON *obj, const char *name, const char **v,
                      struct llamad_api_error *err)
{
    const cJSON *it = field(obj, name);
    if (!it)
        return 0;
    if (!cJSON_IsString(it))
        return invalid(err, name, "'%s' must be a string", name);
    *v = it->valuestring;
    return 0;
}

/* Whether it is an integer within [lo, hi]. Checked on the double: cJSON saturates
 * valueint, so 1e300 would pass as INT_MAX. */
static bool integer_in(const cJSON *it, double lo, double hi, int64_t *v)
{
    if (!cJSON_IsNumber(it))
        return false;
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi)
        return false;
    *v = (int64_t)d;
    return true;
}

/* Sets *v only when the field is there. */
static int get_integer(const cJSON *obj, const char *name, double lo, double hi, int64_t *v,
                       struct llamad_api_error *err)
{
    const cJSON *it = field(obj, name);
    if (it && !integer_in(it, lo, hi, v))
        return invalid(err, name, "'%s' must be an integer from %.0f to %.0f", name, lo, hi);
    return 0;
}

struct float_field {
    const char *name;
    size_t offset; /* of the float in struct llamad_sampling */
    double lo, hi;
    bool lo_open; /* lo itself is refused */
};

static const struct float_field float_fields[] = {
    {"temperature", offsetof(struct llamad_sampling, temperature), 0, 2, false},
    {"top_p", offsetof(struct llamad_sampling, top_p), 0, 1, false},
    {"min_p", offsetof(struct llamad_sampling, min_p), 0, 1, false},
    {"presence_penalty", offsetof(struct llamad_sampling, presence_penalty), -2, 2, false},
    {"frequency_penalty", offsetof(struct llamad_sampling, frequency_penalty), -2, 2, false},
    {"repeat_penalty", offsetof(struct llamad_sampling, repeat_penalty), 0, 10, true},
};

static int get_float(const cJSON *obj, const struct float_field *f, struct llamad_sampling *s,
                     struct llamad_api_error *err)
{
    const cJSON *it = field(obj, f->name);
    if (!it)
        return 0;
    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    bool above_lo = f->lo_open ? d > f->lo : d >= f->lo;
    if (f->lo_open && !(above_lo && d <= f->hi))
        return invalid(err, f->name, "'%s' must be a number greater than %g and at most %g",
                       f->name, f->lo, f->hi);
    if (!(above_lo && d <= f->hi))
        return invalid(err, f->name, "'%s' must be a number from %g to %g", f->name, f->lo, f->hi);
    *(float *)((char *)s + f->offset) = (float)d;
    return 0;
}

/* ---- Request fields ---- */

struct parse {
    enum llamad_api_kind kind;
    const struct llamad_api_limits *lim;
    const cJSON *root;
    struct llamad_api_request *out;
    struct llamad_api_error *err;
};

static void set_defaults(enum llamad_api_kind kind, struct llamad_api_request *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->max_tokens = -1;
    llamad_sampling_defaults(&out->sampling); /* llama.cpp's, kept for /completion */
    if (kind != LLAMAD_API_NATIVE) {
        out->sampling.temperature = 1.0f;
        out->sampling.top_k = 0;
        out->sampling.top_p = 1.0f;
        out->sampling.min_p = 0.0f;
    }
}

/* OpenAI parameters llamad does not implement: refused, not silently ignored. */
static const char *const unsupported_fields[] = {
    "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls",
};

static int parse_response_format(const struct parse *p)
{
    const cJSON *rf = field(p->root, "response_format");
    if (!rf)
        return 0;
    const cJSON *type = cJSON_IsObject(rf) ? field(rf, "type") : NULL;
    if (!cJSON_IsString(type))
        return invalid(p->err, "response_format",
                       "'response_format' must be an object with a string 'type'");
    if (strcmp(type->valuestring, "text") != 0)
        return invalid(p->err, "response_format",
                       "response_format type '%.40s' is not supported (only \"text\")",
                       type->valuestring);
    return 0;
}

static int parse_unsupported(struct parse *p)
{
    for (size_t i = 0; i < COUNT(unsupported_fields); i++) {
        if (field(p->root, unsupported_fields[i]))
            return invalid(p->err, unsupported_fields[i], "'%s' is not supported",
                           unsupported_fields[i]);
    }
    bool echo = false;
    const char *suffix = NULL;
    int64_t n = 1, best_of = 1;
    int rc = parse_response_format(p);
    if (rc || (rc = get_bool(p->root, "echo", &echo, p->err)) ||
        (rc = get_string(p->root, "suffix", &suffix, p->err)) ||
        (rc = get_integer(p->root, "n", 0, INT32_MAX, &n, p->err)) ||
        (rc = get_integer(p->root, "best_of", 0, INT32_MAX, &best_of, p->err)))
        return rc;
    if (echo)
        return invalid(p->err, "echo", "'echo' is not supported");
    if (suffix && suffix[0])
        return invalid(p->err, "suffix", "'suffix' is not supported");
    if (n != 1)
        return invalid(p->err, "n", "only n=1 is supported (got %lld)", (long long)n);
    if (best_of != 1)
        return invalid(p->err, "best_of", "only best_of=1 is supported (got %lld)",
                       (long long)best_of);
    return 0;
}

static int parse_model(struct parse *p)
{
    const char *model = NULL;
    int rc = get_string(p->root, "model", &model, p->err);
    if (rc || !model)
        return rc;
    p->out->model = strdup(model);
    return p->out->model ? 0 : no_memory(p->err);
}

/* Token ids of a JSON array, each an integer in [0, n_vocab). *ids is malloc'd (NULL
 * for an empty array). */
static int parse_ids(const cJSON *arr, int32_t n_vocab, const char *param, int32_t **ids, size_t *n,
                     struct llamad_api_error *err)
{
    int count = cJSON_GetArraySize(arr);
    *ids = NULL;
    *n = 0;
    if (count == 0)
        return 0;
    if (!(*ids = malloc((size_t)count * sizeof **ids)))
        return no_memory(err);
    for (const cJSON *e = arr->child; e; e = e->next) {
        int64_t id;
        if (!integer_in(e, 0, (double)n_vocab - 1, &id))
            return invalid(err, param, "'%s[%zu]' must be a token id (an integer from 0 to %d)",
                           param, *n, (int)n_vocab - 1);
        (*ids)[(*n)++] = (int32_t)id;
    }
    return 0;
}

/* A string, an array of one string, or an array of token ids. */
static int parse_prompt(struct parse *p)
{
    const cJSON *it = field(p->root, "prompt");
    if (!it)
        return invalid(p->err, "prompt", "'prompt' is required");
    if (cJSON_IsArray(it) && cJSON_IsString(it->child)) {
        int n = cJSON_GetArraySize(it);
        if (n > 1 && cJSON_IsString(it->child->next))
            return invalid(p->err, "prompt", "only one prompt per request is supported (got %d)",
                           n);
        if (n > 1)
            return invalid(p->err, "prompt", "a prompt mixing text and token ids is not supported");
        it = it->child;
    }
    if (cJSON_IsString(it)) {
        if (!(p->out->prompt = strdup(it->valuestring)))
            return no_memory(p->err);
        p->out->prompt_len = strlen(p->out->prompt);
        return 0;
    }
    if (!cJSON_IsArray(it) || !it->child)
        return invalid(p->err, "prompt",
                       "'prompt' must be a string or a non-empty array of token ids");
    return parse_ids(it, p->lim->n_vocab, "prompt", &p->out->prompt_ids, &p->out->n_prompt_ids,
                     p->err);
}

/* Content given as parts: the "text" parts joined with newlines. */
static int join_parts(const struct parse *p, int i, const cJSON *parts, struct llamad_buf *b)
{
    int j = 0;
    for (const cJSON *part = parts->child; part; part = part->next, j++) {
        const cJSON *type = cJSON_IsObject(part) ? field(part, "type") : NULL;
        const cJSON *text = cJSON_IsObject(part) ? field(part, "text") : NULL;
        char param[64];
        snprintf(param, sizeof param, "messages[%d].content[%d].type", i, j);
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
            return invalid(p->err, param, "only content parts of type \"text\" are supported");
        snprintf(param, sizeof param, "messages[%d].content[%d].text", i, j);
        if (!cJSON_IsString(text))
            return invalid(p->err, param, "a text part needs a string 'text'");
        if ((j > 0 && llamad_buf_append(b, "\n", 1)) ||
            llamad_buf_append(b, text->valuestring, strlen(text->valuestring)))
            return no_memory(p->err);
    }
    return 0;
}

/* A message's content as a malloc'd string. */
static int message_content(const struct parse *p, int i, const cJSON *msg, bool assistant,
                           char **out)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (!content || (cJSON_IsNull(content) && !assistant))
        return invalid(p->err, param, "'%s' is required", param);
    if (!cJSON_IsNull(content) && !cJSON_IsString(content) && !cJSON_IsArray(content))
        return invalid(p->err, param, "'%s' must be a string or an array of text parts", param);
    struct llamad_buf b = LLAMAD_BUF_INIT;
    int rc = llamad_buf_append(&b, "", 0) ? no_memory(p->err) : 0;
    if (!rc && cJSON_IsString(content) &&
        llamad_buf_append(&b, content->valuestring, strlen(content->valuestring)))
        rc = no_memory(p->err);
    if (!rc && cJSON_IsArray(content))
        rc = join_parts(p, i, content, &b);
    if (rc) {
        llamad_buf_free(&b);
        return rc;
    }
    *out = b.data;
    return 0;
}

static int parse_message(const struct parse *p, int i, const cJSON *msg,
                         struct llamad_chat_message *m)
{
    static const char *const roles[] = {"system", "user", "assistant"};
    char param[64];
    snprintf(param, sizeof param, "messages[%d]", i);
    if (!cJSON_IsObject(msg))
        return invalid(p->err, param, "'%s' must be an object", param);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
    size_t r = 0;
    while (cJSON_IsString(role) && r < COUNT(roles) && strcmp(role->valuestring, roles[r]) != 0)
        r++;
    snprintf(param, sizeof param, "messages[%d].role", i);
    if (!cJSON_IsString(role) || r == COUNT(roles))
        return invalid(p->err, param, "'%s' must be \"system\", \"user\" or \"assistant\"", param);
    int rc = message_content(p, i, msg, strcmp(roles[r], "assistant") == 0, &m->content);
    if (rc)
        return rc;
    if (!(m->role = strdup(roles[r])))
        return no_memory(p->err);
    return 0;
}

static int parse_messages(struct parse *p)
{
    const cJSON *msgs = field(p->root, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return invalid(p->err, "messages", "'messages' must be a non-empty array of messages");
    struct llamad_api_request *out = p->out;
    out->messages = calloc((size_t)cJSON_GetArraySize(msgs), sizeof *out->messages);
    if (!out->messages)
        return no_memory(p->err);
    int i = 0;
    for (const cJSON *msg = msgs->child; msg; msg = msg->next, i++) {
        /* Counted before parsing, so that a half-filled message is freed too. */
        int rc = parse_message(p, i, msg, &out->messages[out->n_messages++]);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_input(struct parse *p)
{
    return p->kind == LLAMAD_API_CHAT ? parse_messages(p) : parse_prompt(p);
}

static int parse_sampling(struct parse *p)
{
    struct llamad_sampling *s = &p->out->sampling;
    int64_t top_k = s->top_k, last_n = s->penalty_last_n;
    int rc = 0;
    for (size_t i = 0; !rc && i < COUNT(float_fields); i++)
        rc = get_float(p->root, &float_fields[i], s, p->err);
    /* repeat_last_n is llama.cpp's name; -1 means the whole sequence. */
    if (rc || (rc = get_integer(p->root, "top_k", 0, INT32_MAX, &top_k, p->err)) ||
        (rc = get_integer(p->root, "repeat_last_n", -1, INT32_MAX, &last_n, p->err)) ||
        (rc = get_integer(p->root, "penalty_last_n", -1, INT32_MAX, &last_n, p->err)))
        return rc;
    s->top_k = (int32_t)top_k;
    s->penalty_last_n = (int32_t)last_n;
    return 0;
}

/* The later name wins: max_completion_tokens replaced max_tokens in OpenAI's chat API;
 * n_predict is llama.cpp's, where -1 means no limit and 0 evaluates the prompt (into the
 * cache) and generates nothing. OpenAI refuses less than 1. */
static int parse_max_tokens(struct parse *p)
{
    bool native = p->kind == LLAMAD_API_NATIVE;
    const char *names[] = {"max_tokens", native ? "n_predict" : "max_completion_tokens"};
    int64_t v = -1;
    for (size_t i = 0; i < COUNT(names); i++) {
        int rc = get_integer(p->root, names[i], native ? -1 : 1, INT32_MAX, &v, p->err);
        if (rc)
            return rc;
    }
    p->out->max_tokens = (int32_t)v;
    return 0;
}

static int parse_seed(struct parse *p)
{
    int64_t seed = -1;
    const cJSON *it = field(p->root, "seed");
    if (!it)
        return 0;
    if (!integer_in(it, -SEED_LIMIT, SEED_LIMIT, &seed))
        return invalid(p->err, "seed", "'seed' must be an integer from -2^53 to 2^53");
    if (seed < 0 && p->kind == LLAMAD_API_NATIVE)
        return 0; /* llama.cpp: a negative seed asks for a random one */
    p->out->sampling.seed = (uint64_t)seed;
    p->out->seed_given = true;
    return 0;
}

static int add_stop(struct parse *p, const char *s)
{
    struct llamad_api_request *out = p->out;
    size_t len = strlen(s);
    if (len == 0)
        return 0;
    if (len > p->lim->max_stop_len)
        return invalid(p->err, "stop", "stop strings must be at most %zu bytes",
                       p->lim->max_stop_len);
    if (out->n_stops >= (size_t)p->lim->max_stops)
        return invalid(p->err, "stop", "at most %d stop strings are supported",
                       (int)p->lim->max_stops);
    if (!(out->stops[out->n_stops] = strdup(s)))
        return no_memory(p->err);
    out->stop_lens[out->n_stops++] = len;
    return 0;
}

static int parse_stops(struct parse *p)
{
    const cJSON *it = field(p->root, "stop");
    if (!it)
        return 0;
    if (!cJSON_IsString(it) && !cJSON_IsArray(it))
        return invalid(p->err, "stop", "'stop' must be a string or an array of strings");
    size_t n = cJSON_IsArray(it) ? (size_t)cJSON_GetArraySize(it) : 1;
    if (n == 0)
        return 0;
    p->out->stops = calloc(n, sizeof *p->out->stops);
    p->out->stop_lens = calloc(n, sizeof *p->out->stop_lens);
    if (!p->out->stops || !p->out->stop_lens)
        return no_memory(p->err);
    if (cJSON_IsString(it))
        return add_stop(p, it->valuestring);
    for (const cJSON *s = it->child; s; s = s->next) {
        if (!cJSON_IsString(s))
            return invalid(p->err, "stop", "'stop' must be a string or an array of strings");
        int rc = add_stop(p, s->valuestring);
        if (rc)
            return rc;
    }
    return 0;
}

/* A bias: a number in [-100, 100]; for llama.cpp also false, which bans the token. */
static int bias_value(const struct parse *p, const cJSON *v, float *bias)
{
    bool native = p->kind == LLAMAD_API_NATIVE;
    if (native && cJSON_IsFalse(v)) {
        *bias = -INFINITY;
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= -100 && d <= 100))
        return invalid(p->err, "logit_bias", "logit_bias values must be numbers from -100 to 100%s",
                       native ? " (or false)" : "");
    *bias = (float)d;
    return 0;
}

/* A decimal token id below n_vocab, as OpenAI's logit_bias keys are. */
static bool token_key(const char *key, int32_t n_vocab, int32_t *id)
{
    int64_t v = 0;
    for (const char *c = key; *c; c++) {
        if (*c < '0' || *c > '9' || (v = v * 10 + (*c - '0')) >= n_vocab)
            return false;
    }
    *id = (int32_t)v;
    return key[0] != '\0';
}

/* {"id": bias} member, or (llama.cpp) an [id, bias] pair. */
static int bias_entry(const struct parse *p, const cJSON *e, bool pair, struct llamad_logit_bias *b)
{
    int32_t n_vocab = p->lim->n_vocab;
    int64_t id = 0;
    bool id_ok;
    if (pair) {
        id_ok = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                integer_in(e->child, 0, n_vocab - 1.0, &id);
    } else {
        int32_t key_id = 0;
        id_ok = token_key(e->string, n_vocab, &key_id);
        id = key_id;
    }
    if (!id_ok)
        return invalid(p->err, "logit_bias",
                       "logit_bias entries must name token ids from 0 to %d%s", (int)n_vocab - 1,
                       pair ? " as [id, bias] pairs" : "");
    b->token = (int32_t)id;
    return bias_value(p, pair ? e->child->next : e, &b->bias);
}

static int parse_logit_bias(struct parse *p)
{
    const cJSON *it = field(p->root, "logit_bias");
    bool native = p->kind == LLAMAD_API_NATIVE;
    bool pairs = native && cJSON_IsArray(it);
    if (!it)
        return 0;
    if (!cJSON_IsObject(it) && !pairs)
        return invalid(p->err, "logit_bias",
                       "'logit_bias' must be an object mapping token ids to biases%s",
                       native ? ", or an array of [id, bias] pairs" : "");
    size_t n = (size_t)cJSON_GetArraySize(it);
    if (n == 0)
        return 0;
    if (!(p->out->logit_bias = calloc(n, sizeof *p->out->logit_bias)))
        return no_memory(p->err);
    for (const cJSON *e = it->child; e; e = e->next) {
        int rc = bias_entry(p, e, pairs, &p->out->logit_bias[p->out->n_logit_bias]);
        if (rc)
            return rc;
        p->out->n_logit_bias++;
    }
    return 0;
}

/* /v1/completions: logprobs = how many alternatives (0..5; 0: the sampled token's
 * only). Chat: logprobs true plus top_logprobs (0..20). Native: n_probs > 0. Each is
 * also capped by the server's limit. */
static int parse_logprobs(struct parse *p)
{
    int32_t cap = p->lim->max_top_logprobs;
    int64_t top = -1; /* -1: off */
    bool on = false;
    int rc;
    switch (p->kind) {
    case LLAMAD_API_COMPLETIONS:
        rc = get_integer(p->root, "logprobs", 0, cap < 5 ? cap : 5, &top, p->err);
        break;
    case LLAMAD_API_CHAT:
        if ((rc = get_bool(p->root, "logprobs", &on, p->err)))
            break;
        if (field(p->root, "top_logprobs") && !on)
            return invalid(p->err, "top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
        top = on ? 0 : -1;
        rc = get_integer(p->root, "top_logprobs", 0, cap < 20 ? cap : 20, &top, p->err);
        break;
    default:
        rc = get_integer(p->root, "n_probs", 0, cap, &top, p->err);
        top = top > 0 ? top : -1;
        break;
    }
    p->out->logprobs = top >= 0;
    p->out->top_logprobs = top >= 0 ? (int32_t)top : 0;
    return rc;
}

/* stream_options only means something for a stream (OpenAI's), else it is ignored. */
static int parse_stream(struct parse *p)
{
    int rc = get_bool(p->root, "stream", &p->out->stream, p->err);
    if (rc || !p->out->stream || p->kind == LLAMAD_API_NATIVE)
        return rc;
    const cJSON *opts = field(p->root, "stream_options");
    if (!opts)
        return 0;
    const cJSON *usage = cJSON_IsObject(opts) ? field(opts, "include_usage") : NULL;
    if (!cJSON_IsObject(opts) || (usage && !cJSON_IsBool(usage)))
        return invalid(p->err, "stream_options",
                       "'stream_options' must be an object with a boolean 'include_usage'");
    p->out->include_usage = cJSON_IsTrue(usage);
    return 0;
}

static bool session_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

static int parse_extensions(struct parse *p)
{
    const char *user = NULL, *session = NULL;
    int rc = get_bool(p->root, "ignore_eos", &p->out->ignore_eos, p->err);
    if (rc || (rc = get_string(p->root, "user", &user, p->err)) ||
        (rc = get_string(p->root, "session_id", &session, p->err)) || !session)
        return rc;
    size_t len = strlen(session);
    for (size_t i = 0; i < len; i++) {
        if (!session_id_char(session[i]))
            return invalid(p->err, "session_id", "'session_id' may only hold A-Z a-z 0-9 . _ : -");
    }
    if (len > MAX_SESSION_ID)
        return invalid(p->err, "session_id", "'session_id' must be at most %d bytes",
                       MAX_SESSION_ID);
    memcpy(p->out->session_id, session, len + 1);
    return 0;
}

int llamad_api_parse_request(enum llamad_api_kind kind, const char *body, size_t len,
                             const struct llamad_api_limits *lim, struct llamad_api_request *out,
                             struct llamad_api_error *err)
{
    static int (*const steps[])(struct parse *) = {
        parse_unsupported, parse_model, parse_input, parse_sampling, parse_max_tokens, parse_seed,
        parse_stops, parse_logit_bias, parse_logprobs, parse_stream, parse_extensions,
    };
    cJSON *root;
    set_defaults(kind, out);
    int rc = parse_body(body, len, &root, err);
    struct parse p = {.kind = kind, .lim = lim, .root = root, .out = out, .err = err};
    for (size_t i = 0; !rc && i < COUNT(steps); i++)
        rc = steps[i](&p);
    cJSON_Delete(root);
    if (rc) {
        llamad_api_request_free(out);
        return rc;
    }
    out->sampling.logit_bias = out->logit_bias;
    out->sampling.n_logit_bias = out->n_logit_bias;
    return 0;
}

void llamad_api_request_free(struct llamad_api_request *r)
{
    free(r->model);
    free(r->prompt);
    free(r->prompt_ids);
    for (size_t i = 0; i < r->n_messages; i++) {
        free(r->messages[i].role);
        free(r->messages[i].content);
    }
    free(r->messages);
    free(r->logit_bias);
    for (size_t i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->stops);
    free(r->stop_lens);
    memset(r, 0, sizeof *r);
}

/* ---- Tokens in responses ---- */

/* A float as the shortest decimal that reads back as the same float (cJSON would
 * print the widened double with 17 digits). JSON has no infinities: a logprob of
 * -inf (or NaN) becomes -9999, OpenAI's value for "very unlikely". */
static double logprob_number(float f)
{
    if (!isfinite(f))
        return -9999.0;
    char s[32];
    int digits = 6;
    do
        snprintf(s, sizeof s, "%.*g", digits, (double)f);
    while (strtof(s, NULL) != f && digits++ < 9); /* 9 digits always read back */
    return strtod(s, NULL);
}

/* A token's bytes as a NUL-terminated string in out. A token that is not whole
 * UTF-8 by itself (part of a character, or U+0000) is written as OpenAI writes
 * such tokens, "bytes:" and a \xNN per byte (e.g. "bytes:\xe2\x80"); the exact bytes
 * are in the "bytes" arrays where the format has them. */
static int render_token(const char *bytes, size_t n, struct llamad_buf *out)
{
    llamad_buf_clear(out);
    if (llamad_utf8_valid_prefix(bytes, n) == n && !(n && memchr(bytes, '\0', n)))
        return llamad_buf_append(out, bytes, n);
    int rc = llamad_buf_append(out, "bytes:", 6);
    for (size_t i = 0; !rc && i < n; i++) {
        char hex[8];
        snprintf(hex, sizeof hex, "\\x%02x", (unsigned char)bytes[i]);
        rc = llamad_buf_append(out, hex, 4);
    }
    return rc;
}

/* The bytes of a top-logprob alternative; an id outside the vocabulary gives none. */
static int token_bytes(const struct llamad_api_reply *r, int32_t id, struct llamad_buf *out)
{
    llamad_buf_clear(out);
    int rc = llamad_token_to_bytes(r->tok, id, out);
    return rc == LLAMAD_EINVAL ? 0 : rc;
}

static int32_t n_alternatives(const struct llamad_api_reply *r, const struct llamad_event *e)
{
    if (!e->top)
        return 0;
    return e->n_top < r->top_logprobs ? e->n_top : r->top_logprobs;
}

/* OpenAI completions' per-token {token text: logprob}. Two alternatives that render
 * to the same text would repeat a key: the likelier (first) one is kept. */
static cJSON *top_dict(bool *ok, const struct llamad_api_reply *r, const struct llamad_event *e)
{
    cJSON *dict = cJSON_CreateObject();
    struct llamad_buf bytes = LLAMAD_BUF_INIT, text = LLAMAD_BUF_INIT;
    for (int32_t i = 0; i < n_alternatives(r, e) && *ok; i++) {
        if (token_bytes(r, e->top[i].token, &bytes) || render_token(bytes.data, bytes.len, &text))
            *ok = false;
        else if (!cJSON_GetObjectItemCaseSensitive(dict, text.data))
            put_num(ok, dict, text.data, logprob_number(e->top[i].logprob));
    }
    llamad_buf_free(&bytes);
    llamad_buf_free(&text);
    return dict;
}

/* OpenAI completions' logprobs of the tokens first..end. text_offset: byte offsets
 * into the completion's text (OpenAI counts characters of prompt + completion; llamad
 * never echoes the prompt, and bytes are what a client can slice exactly). */
static cJSON *completion_logprobs(bool *ok, const struct llamad_api_reply *r,
                                  const struct llamad_event *first, const struct llamad_event *end,
                                  size_t offset)
{
    cJSON *lp = cJSON_CreateObject();
    cJSON *tokens = put_arr(ok, lp, "tokens"), *logprobs = put_arr(ok, lp, "token_logprobs");
    cJSON *tops = put_arr(ok, lp, "top_logprobs"), *offsets = put_arr(ok, lp, "text_offset");
    struct llamad_buf text = LLAMAD_BUF_INIT;
    for (const struct llamad_event *e = first; e != end && *ok; e = e->next) {
        if (e->token < 0) { /* text released at the end, no token of its own */
            offset += e->text_len;
            continue;
        }
        if (render_token(e->piece, e->piece_len, &text)) {
            *ok = false;
            break;
        }
        put_str(ok, tokens, NULL, text.data);
        put_num(ok, logprobs, NULL, logprob_number(e->logprob));
        put(ok, tops, NULL, top_dict(ok, r, e));
        put_num(ok, offsets, NULL, (double)offset);
        offset += e->text_len;
    }
    llamad_buf_free(&text);
    return lp;
}

/* {"id"?, "token", "logprob", "bytes"}: OpenAI chat's per-token shape, and (with the
 * id) llama.cpp's. */
static cJSON *token_entry(bool *ok, bool with_id, int32_t id, const char *bytes, size_t n,
                          float logprob)
{
    cJSON *entry = cJSON_CreateObject();
    struct llamad_buf text = LLAMAD_BUF_INIT;
    if (with_id)
        put_num(ok, entry, "id", id);
    if (render_token(bytes, n, &text))
        *ok = false;
    else
        put_str(ok, entry, "token", text.data);
    put_num(ok, entry, "logprob", logprob_number(logprob));
    cJSON *arr = put_arr(ok, entry, "bytes");
    for (size_t i = 0; i < n && *ok; i++)
        put_num(ok, arr, NULL, (unsigned char)bytes[i]);
    llamad_buf_free(&text);
    return entry;
}

/* The sampled token's entry with its "top_logprobs" alternatives. */
static cJSON *sampled_entry(bool *ok, const struct llamad_api_reply *r,
                            const struct llamad_event *e)
{
    bool native = r->kind == LLAMAD_API_NATIVE;
    cJSON *entry = token_entry(ok, native, e->token, e->piece, e->piece_len, e->logprob);
    cJSON *tops = put_arr(ok, entry, "top_logprobs");
    struct llamad_buf bytes = LLAMAD_BUF_INIT;
    for (int32_t i = 0; i < n_alternatives(r, e) && *ok; i++) {
        const struct llamad_top_logprob *t = &e->top[i];
        if (token_bytes(r, t->token, &bytes))
            *ok = false;
        else
            put(ok, tops, NULL,
                token_entry(ok, native, t->token, bytes.data, bytes.len, t->logprob));
    }
    llamad_buf_free(&bytes);
    return entry;
}

static cJSON *sampled_entries(bool *ok, const struct llamad_api_reply *r,
                              const struct llamad_event *first, const struct llamad_event *end)
{
    cJSON *arr = cJSON_CreateArray();
    for (const struct llamad_event *e = first; e != end && *ok; e = e->next)
        if (e->token >= 0) /* -1: text released at the end, no token of its own */
            put(ok, arr, NULL, sampled_entry(ok, r, e));
    return arr;
}

/* ---- /v1 bodies and chunks ---- */

static const char *finish_reason(enum llamad_finish f)
{
    /* CANCELLED and ERROR are the caller's to report; "stop" if they get here. */
    return f == LLAMAD_FINISH_LENGTH ? "length" : "stop";
}

/* What one /v1 body or stream chunk says. */
struct v1_part {
    bool chunk;
    const char *text; /* the completion's text, or a chunk's piece of it */
    size_t text_len;
    bool role;        /* chat chunk: the delta opens with the assistant's role */
    const struct llamad_event *first, *end; /* tokens whose logprobs it reports */
    size_t text_offset;                     /* completions logprobs: bytes of text before `first` */
    const char *finish; /* finish_reason; NULL: null (and for a chat chunk: a delta) */
    const struct llamad_usage *usage; /* NULL: none, or "usage": null in chunks */
};

static cJSON *envelope(bool *ok, const struct llamad_api_reply *r, bool chunk)
{
    const char *object = r->kind != LLAMAD_API_CHAT ? "text_completion"
                         : chunk                    ? "chat.completion.chunk"
                                                    : "chat.completion";
    cJSON *root = cJSON_CreateObject();
    if (!root)
        *ok = false;
    put_str(ok, root, "id", r->id);
    put_str(ok, root, "object", object);
    put_num(ok, root, "created", (double)r->created);
    put_str(ok, root, "model", r->model);
    return root;
}

static void put_usage(bool *ok, cJSON *root, const struct llamad_usage *u)
{
    cJSON *usage = put_obj(ok, root, "usage");
    put_num(ok, usage, "prompt_tokens", u->prompt_tokens);
    put_num(ok, usage, "completion_tokens", u->completion_tokens);
    put_num(ok, usage, "total_tokens", (double)u->prompt_tokens + u->completion_tokens);
    cJSON *details = put_obj(ok, usage, "prompt_tokens_details");
    put_num(ok, details, "cached_tokens", u->cached_tokens);
}

/* Logprobs are null when not asked and in chunks that carry no token. */
static cJSON *v1_logprobs(bool *ok, const struct llamad_api_reply *r, const struct v1_part *p)
{
    if (!r->logprobs || (p->chunk && !p->first))
        return cJSON_CreateNull();
    if (r->kind != LLAMAD_API_CHAT)
        return completion_logprobs(ok, r, p->first, p->end, p->text_offset);
    cJSON *lp = cJSON_CreateObject();
    put(ok, lp, "content", sampled_entries(ok, r, p->first, p->end));
    return lp;
}

static void put_chat_text(bool *ok, cJSON *choice, const struct v1_part *p)
{
    if (!p->chunk) {
        cJSON *msg = put_obj(ok, choice, "message");
        put_str(ok, msg, "role", "assistant");
        put_text(ok, msg, "content", p->text, p->text_len);
        return;
    }
    cJSON *delta = put_obj(ok, choice, "delta"); /* the last chunk's delta is empty */
    if (p->role)
        put_str(ok, delta, "role", "assistant");
    if (!p->finish)
        put_text(ok, delta, "content", p->text, p->text_len);
}

static char *v1_json(const struct llamad_api_reply *r, const struct v1_part *p)
{
    bool ok = true;
    cJSON *root = envelope(&ok, r, p->chunk);
    cJSON *choice = put(&ok, put_arr(&ok, root, "choices"), NULL, cJSON_CreateObject());
    put_num(&ok, choice, "index", 0);
    if (r->kind == LLAMAD_API_CHAT)
        put_chat_text(&ok, choice, p);
    else
        put_text(&ok, choice, "text", p->text, p->text_len);
    put(&ok, choice, "logprobs", v1_logprobs(&ok, r, p));
    if (p->finish)
        put_str(&ok, choice, "finish_reason", p->finish);
    else
        put_null(&ok, choice, "finish_reason");
    if (p->usage)
        put_usage(&ok, root, p->usage);
    else if (p->chunk && r->include_usage)
        put_null(&ok, root, "usage");
    return finish_json(ok, root);
}

/* ---- llama.cpp's /completion ---- */

static const char *stop_type(enum llamad_finish f)
{
    /* The DONE event does not say whether EOS or a stop string ended generation:
     * both are "eos" here, and stopping_word stays "". */
    switch (f) {
    case LLAMAD_FINISH_STOP: return "eos";
    case LLAMAD_FINISH_LENGTH: return "limit";
    default: return "none";
    }
}

static double per_second(int32_t n, double ms)
{
    return ms > 0 ? n * 1000.0 / ms : 0.0;
}

/* prompt_n counts the prompt tokens computed (the cached ones were not); tokens_cached
 * the prompt tokens whose KV came from the cache. */
static void put_native_summary(bool *ok, cJSON *root, const struct llamad_api_reply *r,
                               const struct llamad_event *done)
{
    const struct llamad_usage *u = &done->usage;
    int32_t prompt_n = u->prompt_tokens - u->cached_tokens;
    put_str(ok, root, "model", r->model);
    put_num(ok, root, "tokens_predicted", u->completion_tokens);
    put_num(ok, root, "tokens_evaluated", u->prompt_tokens);
    put_num(ok, root, "tokens_cached", u->cached_tokens);
    put_str(ok, root, "stop_type", stop_type(done->finish));
    put_str(ok, root, "stopping_word", "");
    cJSON *t = put_obj(ok, root, "timings");
    put_num(ok, t, "prompt_n", prompt_n);
    put_num(ok, t, "prompt_ms", u->prompt_ms);
    put_num(ok, t, "prompt_per_second", per_second(prompt_n, u->prompt_ms));
    put_num(ok, t, "predicted_n", u->completion_tokens);
    put_num(ok, t, "predicted_ms", u->generation_ms);
    put_num(ok, t, "predicted_per_second", per_second(u->completion_tokens, u->generation_ms));
}

/* {"content", "stop"} plus, when probs, "completion_probabilities" for first..end
 * (llama.cpp's shape since early 2025: id, token, bytes, logprob, top_logprobs), and
 * when done != NULL the summary of the finished request. */
static char *native_json(const struct llamad_api_reply *r, const char *text, size_t len, bool probs,
                         const struct llamad_event *first, const struct llamad_event *end,
                         const struct llamad_event *done)
{
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    put_text(&ok, root, "content", text, len);
    put_bool(&ok, root, "stop", done != NULL);
    if (probs)
        put(&ok, root, "completion_probabilities", sampled_entries(&ok, r, first, end));
    if (done)
        put_native_summary(&ok, root, r, done);
    return finish_json(ok, root);
}

/* ---- Public response builders ---- */

char *llamad_api_response_json(const struct llamad_api_reply *r, const struct llamad_event *tokens,
                               const struct llamad_event *done)
{
    struct llamad_buf text = LLAMAD_BUF_INIT;
    for (const struct llamad_event *e = tokens; e; e = e->next) {
        if (llamad_buf_append(&text, e->text, e->text_len)) {
            llamad_buf_free(&text);
            return NULL;
        }
    }
    char *json;
    if (r->kind == LLAMAD_API_NATIVE) {
        json = native_json(r, text.data, text.len, r->logprobs, tokens, NULL, done);
    } else {
        struct v1_part p = {.text = text.data,
                            .text_len = text.len,
                            .first = tokens,
                            .finish = finish_reason(done->finish),
                            .usage = &done->usage};
        json = v1_json(r, &p);
    }
    llamad_buf_free(&text);
    return json;
}

char *llamad_api_chunk_first_json(const struct llamad_api_reply *r)
{
    if (r->kind != LLAMAD_API_CHAT)
        return NULL;
    struct v1_part p = {.chunk = true, .role = true};
    return v1_json(r, &p);
}

char *llamad_api_chunk_token_json(const struct llamad_api_reply *r,
                                  const struct llamad_event *token, size_t text_offset)
{
    bool has_token = token->token >= 0;
    if (token->text_len == 0 && !(r->logprobs && has_token))
        return NULL;
    if (r->kind == LLAMAD_API_NATIVE)
        return native_json(r, token->text, token->text_len, r->logprobs && has_token, token,
                           token->next, NULL);
    struct v1_part p = {.chunk = true,
                        .text = token->text,
                        .text_len = token->text_len,
                        .first = has_token ? token : NULL,
                        .end = token->next,
                        .text_offset = text_offset};
    return v1_json(r, &p);
}

char *llamad_api_chunk_final_json(const struct llamad_api_reply *r, const struct llamad_event *done)
{
    if (r->kind == LLAMAD_API_NATIVE)
        return native_json(r, NULL, 0, false, NULL, NULL, done);
    struct v1_part p = {.chunk = true, .finish = finish_reason(done->finish)};
    return v1_json(r, &p);
}

char *llamad_api_chunk_usage_json(const struct llamad_api_reply *r, const struct llamad_event *done)
{
    if (!r->include_usage || r->kind == LLAMAD_API_NATIVE)
        return NULL;
    bool ok = true;
    cJSON *root = envelope(&ok, r, true);
    put_arr(&ok, root, "choices");
    put_usage(&ok, root, &done->usage);
    return finish_json(ok, root);
}

char *llamad_api_models_json(const char *model_id, int64_t created)
{
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    put_str(&ok, root, "object", "list");
    cJSON *model = put(&ok, put_arr(&ok, root, "data"), NULL, cJSON_CreateObject());
    put_str(&ok, model, "id", model_id);
    put_str(&ok, model, "object", "model");
    put_num(&ok, model, "created", (double)created);
    put_str(&ok, model, "owned_by", "llamad");
    return finish_json(ok, root);
}

/* ---- /tokenize and /detokenize ---- */

/* llamad_tokenize into a malloc'd array, grown once if the first guess was short. */
static int64_t tokenize_all(const struct llamad_tokenizer *tok, const char *text, size_t len,
                            bool add_bos, int32_t **ids)
{
    size_t cap =
        len + 2; /* byte fallback: a token per byte at most, plus BOS and the space prefix */
    for (;;) {
        int32_t *p = realloc(*ids, cap * sizeof **ids);
        if (!p)
            return LLAMAD_ENOMEM;
        *ids = p;
        int64_t n = llamad_tokenize(tok, text, len, add_bos, *ids, cap);
        if (n < 0 || (uint64_t)n <= cap)
            return n;
        cap = (size_t)n;
    }
}

/* A piece that is whole UTF-8 as a string, else its byte values (as llama.cpp). */
static cJSON *piece_item(const char *bytes, size_t n)
{
    if (llamad_utf8_valid_prefix(bytes, n) == n)
        return json_text(bytes, n);
    bool ok = true;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n && ok; i++)
        put_num(&ok, arr, NULL, (unsigned char)bytes[i]);
    if (!ok) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

static char *tokens_json(const struct llamad_tokenizer *tok, const char *text, bool add_special,
                         bool with_pieces, struct llamad_api_error *err)
{
    int32_t *ids = NULL;
    bool add_bos = add_special && llamad_tokenizer_add_bos(tok) && llamad_tokenizer_bos(tok) >= 0;
    int64_t n = tokenize_all(tok, text, strlen(text), add_bos, &ids);
    if (n < 0) {
        free(ids);
        llamad_api_set_error(err, 500, "server_error", NULL, NULL, "cannot tokenize: %s",
                             llamad_status_name((int)n));
        return NULL;
    }
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = put_arr(&ok, root, "tokens");
    struct llamad_buf piece = LLAMAD_BUF_INIT;
    for (int64_t i = 0; i < n && ok; i++) {
        if (!with_pieces) {
            put_num(&ok, arr, NULL, ids[i]);
            continue;
        }
        cJSON *t = put(&ok, arr, NULL, cJSON_CreateObject());
        put_num(&ok, t, "id", ids[i]);
        llamad_buf_clear(&piece);
        if (llamad_token_to_bytes(tok, ids[i], &piece))
            ok = false;
        else
            put(&ok, t, "piece", piece_item(piece.data, piece.len));
    }
    llamad_buf_free(&piece);
    free(ids);
    char *json = finish_json(ok, root);
    if (!json)
        no_memory(err);
    return json;
}

char *llamad_api_tokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                          struct llamad_api_error *err)
{
    cJSON *root;
    if (parse_body(body, len, &root, err))
        return NULL;
    const cJSON *content = field(root, "content");
    bool add_special = false, with_pieces = false;
    char *json = NULL;
    if (!cJSON_IsString(content))
        invalid(err, "content", "'content' must be a string");
    else if (!get_bool(root, "add_special", &add_special, err) &&
             !get_bool(root, "with_pieces", &with_pieces, err))
        json = tokens_json(tok, content->valuestring, add_special, with_pieces, err);
    cJSON_Delete(root);
    return json;
}

char *llamad_api_detokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                            struct llamad_api_error *err)
{
    cJSON *root;
    if (parse_body(body, len, &root, err))
        return NULL;
    const cJSON *tokens = field(root, "tokens");
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = cJSON_IsArray(tokens)
                 ? 0
                 : invalid(err, "tokens", "'tokens' must be an array of token ids");
    if (!rc)
        rc = parse_ids(tokens, llamad_tokenizer_n_vocab(tok), "tokens", &ids, &n, err);
    cJSON_Delete(root);
    struct llamad_buf text = LLAMAD_BUF_INIT;
    if (!rc && llamad_detokenize(tok, -1, ids, n, &text))
        rc = no_memory(err);
    free(ids);
    char *json = NULL;
    if (!rc) {
        bool ok = true;
        cJSON *out = cJSON_CreateObject();
        put_text(&ok, out, "content", text.data, text.len);
        if (!(json = finish_json(ok, out)))
            no_memory(err);
    }
    llamad_buf_free(&text);
    return json;
}

int llamad_api_parse_messages(const char *body, size_t len, struct llamad_api_request *out,
                              struct llamad_api_error *err)
{
    cJSON *root;
    set_defaults(LLAMAD_API_CHAT, out);
    int rc = parse_body(body, len, &root, err);
    struct parse p = {.kind = LLAMAD_API_CHAT, .root = root, .out = out, .err = err};
    if (!rc)
        rc = parse_messages(&p);
    cJSON_Delete(root);
    return rc;
}

char *llamad_api_prompt_json(const char *text, size_t len, struct llamad_api_error *err)
{
    bool ok = true;
    cJSON *out = cJSON_CreateObject();
    put_text(&ok, out, "prompt", text, len);
    char *json = finish_json(ok, out);
    if (!json)
        no_memory(err);
    return json;
}
