/* The HTTP API's requests (include/llamad/server/api_request.h).
 *
 * The raw body is checked first (api_read.c: valid UTF-8, no U+0000, no unpaired
 * surrogate escape), because cJSON would silently cut a string at an escaped
 * U+0000; then cJSON parses it and every field is validated on its own; the
 * tool fields in api_tools.c. */
#include "llamad/server/api_request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_read.h"
#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/base/utf8.h"
#include "llamad/grammar/grammar.h"
#include "llamad/server/json_schema.h"

#define SEED_LIMIT 9007199254740992.0 /* 2^53: larger integers are not exact in a JSON double */
#define COUNT(a) (sizeof(a) / sizeof *(a))
#define SESSION_ID_MAX (sizeof((struct llamad_gen_request){0}.session_id) - 1)

/* ---- Typed fields (a JSON null counts as absent; api_read.c has the shared ones) ---- */

static int get_string(const cJSON *obj, const char *name, const char **v,
                      struct llamad_api_error *err)
{
    const cJSON *it = api_field(obj, name);
    if (!it)
        return 0;
    if (!cJSON_IsString(it))
        return api_invalid(err, name, "'%s' must be a string", name);
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
    const cJSON *it = api_field(obj, name);
    if (it && !integer_in(it, lo, hi, v))
        return api_invalid(err, name, "'%s' must be an integer from %.0f to %.0f", name, lo, hi);
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
    const cJSON *it = api_field(obj, f->name);
    if (!it)
        return 0;
    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    bool above_lo = f->lo_open ? d > f->lo : d >= f->lo;
    if (f->lo_open && !(above_lo && d <= f->hi))
        return api_invalid(err, f->name, "'%s' must be a number greater than %g and at most %g",
                           f->name, f->lo, f->hi);
    if (!(above_lo && d <= f->hi))
        return api_invalid(err, f->name, "'%s' must be a number from %g to %g", f->name, f->lo,
                           f->hi);
    *(float *)((char *)s + f->offset) = (float)d;
    return 0;
}

/* ---- Request fields ---- */

struct parse {
    enum llamad_api_kind kind;
    const struct llamad_api_limits *lim;
    const cJSON *root;
    struct llamad_api_request *out;
    struct llamad_gen_request *gen; /* &out->gen */
    struct llamad_api_error *err;
};

/* The one place of every default a request starts from. */
static void set_defaults(enum llamad_api_kind kind, struct llamad_api_request *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    /* OpenAI's default for /v1/completions; elsewhere up to the end of the context. */
    out->gen.max_tokens = kind == LLAMAD_API_COMPLETIONS ? 16 : -1;
    llamad_sampling_defaults(&out->gen.sampling); /* llama.cpp's, kept for /completion */
    if (kind != LLAMAD_API_NATIVE) {
        out->gen.sampling.temperature = 1.0f;
        out->gen.sampling.top_k = 0;
        out->gen.sampling.top_p = 1.0f;
        out->gen.sampling.min_p = 0.0f;
    }
}

/* OpenAI parameters llamad does not implement: refused, not silently ignored. */
static const char *const unsupported_fields[] = {"functions", "function_call"};

static int parse_unsupported(struct parse *p)
{
    for (size_t i = 0; i < COUNT(unsupported_fields); i++) {
        if (api_field(p->root, unsupported_fields[i]))
            return api_invalid(p->err, unsupported_fields[i], "'%s' is not supported",
                               unsupported_fields[i]);
    }
    bool echo = false;
    const char *suffix = NULL;
    int64_t n = 1, best_of = 1;
    int rc = api_get_bool(p->root, "echo", &echo, p->err);
    if (rc || (rc = get_string(p->root, "suffix", &suffix, p->err)) ||
        (rc = get_integer(p->root, "n", 0, INT32_MAX, &n, p->err)) ||
        (rc = get_integer(p->root, "best_of", 0, INT32_MAX, &best_of, p->err)))
        return rc;
    if (echo)
        return api_invalid(p->err, "echo", "'echo' is not supported");
    if (suffix && suffix[0])
        return api_invalid(p->err, "suffix", "'suffix' is not supported");
    if (n != 1)
        return api_invalid(p->err, "n", "only n=1 is supported (got %lld)", (long long)n);
    if (best_of != 1)
        return api_invalid(p->err, "best_of", "only best_of=1 is supported (got %lld)",
                           (long long)best_of);
    return 0;
}

/* ---- Structured output: a JSON Schema (or any JSON object) as a grammar ---- */

/* OpenAI's json_schema.name: 1 to 64 of a-z A-Z 0-9 _ -. */
static bool schema_name_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n >= 1 && n <= 64;
}

/* The grammar of schema (NULL: any JSON value) into r->grammar; param names it in errors. */
static int schema_grammar(const struct parse *p, const cJSON *schema, const char *param)
{
    struct llamad_buf g = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX];
    cJSON *any = NULL;
    if (!schema && !(schema = any = cJSON_CreateTrue()))
        return api_no_memory(p->err);
    int rc = llamad_json_schema_to_gbnf(schema, &g, err, sizeof err);
    cJSON_Delete(any);
    if (rc == LLAMAD_ENOMEM || (rc == 0 && !g.data)) {
        llamad_buf_free(&g);
        return api_no_memory(p->err);
    }
    if (rc)
        return api_invalid(p->err, param, "%s: %s", param, err);
    p->out->grammar = g.data;
    p->out->grammar_len = g.len;
    return 0;
}

/* response_format {"type": "json_schema", "json_schema": {name, schema, strict, description}}. */
static int parse_json_schema_format(const struct parse *p, const cJSON *rf)
{
    const cJSON *js = api_field(rf, "json_schema");
    if (!cJSON_IsObject(js))
        return api_invalid(p->err, "response_format.json_schema",
                           "'response_format.json_schema' must be an object");
    const cJSON *name = api_field(js, "name"), *schema = api_field(js, "schema");
    const cJSON *strict = api_field(js, "strict"), *desc = api_field(js, "description");
    if (!cJSON_IsString(name) || !schema_name_ok(name->valuestring))
        return api_invalid(p->err, "response_format.json_schema.name",
                           "'response_format.json_schema.name' must be 1 to 64 characters of "
                           "a-z, A-Z, 0-9, '_' and '-'");
    if (strict && !cJSON_IsBool(strict))
        return api_invalid(p->err, "response_format.json_schema.strict",
                           "'response_format.json_schema.strict' must be a boolean");
    if (desc && !cJSON_IsString(desc))
        return api_invalid(p->err, "response_format.json_schema.description",
                           "'response_format.json_schema.description' must be a string");
    if (schema && !cJSON_IsObject(schema) && !cJSON_IsBool(schema))
        return api_invalid(p->err, "response_format.json_schema.schema",
                           "'response_format.json_schema.schema' must be a JSON Schema object");
    return schema_grammar(p, schema, "response_format.json_schema.schema");
}

/* response_format (text, json_object, json_schema), llama.cpp's json_schema (the
 * schema itself), and grammar (GBNF text, read elsewhere): one of them at most. */
static int parse_structured_output(struct parse *p)
{
    const cJSON *rf = api_field(p->root, "response_format");
    const cJSON *js = api_field(p->root, "json_schema");
    const cJSON *type = cJSON_IsObject(rf) ? api_field(rf, "type") : NULL;
    if (rf && !cJSON_IsString(type))
        return api_invalid(p->err, "response_format",
                           "'response_format' must be an object with a string 'type'");
    bool rf_json = rf && strcmp(type->valuestring, "text") != 0;
    if (rf_json && strcmp(type->valuestring, "json_object") != 0 &&
        strcmp(type->valuestring, "json_schema") != 0)
        return api_invalid(p->err, "response_format",
                           "response_format type '%.40s' is not supported (\"text\", "
                           "\"json_object\" or \"json_schema\")",
                           type->valuestring);
    if (js && !cJSON_IsObject(js) && !cJSON_IsBool(js))
        return api_invalid(p->err, "json_schema", "'json_schema' must be a JSON Schema object");
    if (api_field(p->root, "grammar") && (js || rf_json))
        return api_invalid(p->err, "grammar",
                           "'grammar' cannot be given with '%s': one constraint at most",
                           js ? "json_schema" : "response_format");
    if (js && rf_json)
        return api_invalid(p->err, "json_schema",
                           "'json_schema' cannot be given with a JSON 'response_format': one "
                           "constraint at most");
    if (js)
        return schema_grammar(p, js, "json_schema");
    if (!rf_json)
        return 0;
    if (strcmp(type->valuestring, "json_schema") == 0)
        return parse_json_schema_format(p, rf);
    /* json_object: any object, or (llama.cpp's extension) the object schema given. */
    const cJSON *schema = api_field(rf, "schema");
    if (schema && !cJSON_IsObject(schema))
        return api_invalid(p->err, "response_format.schema",
                           "'response_format.schema' must be a JSON Schema object");
    if (schema)
        return schema_grammar(p, schema, "response_format.schema");
    struct llamad_buf g = LLAMAD_BUF_INIT;
    if (llamad_json_object_gbnf(&g) != 0 || !g.data) {
        llamad_buf_free(&g);
        return api_no_memory(p->err);
    }
    p->out->grammar = g.data;
    p->out->grammar_len = g.len;
    return 0;
}

static int parse_model(struct parse *p)
{
    const char *model = NULL;
    int rc = get_string(p->root, "model", &model, p->err);
    if (rc || !model)
        return rc;
    p->out->model = strdup(model);
    return p->out->model ? 0 : api_no_memory(p->err);
}

int api_parse_ids(const cJSON *arr, int32_t n_vocab, const char *param, int32_t **ids, size_t *n,
                  struct llamad_api_error *err)
{
    int count = cJSON_GetArraySize(arr);
    *ids = NULL;
    *n = 0;
    if (count == 0)
        return 0;
    if (!(*ids = malloc((size_t)count * sizeof **ids)))
        return api_no_memory(err);
    for (const cJSON *e = arr->child; e; e = e->next) {
        int64_t id;
        if (!integer_in(e, 0, (double)n_vocab - 1, &id))
            return api_invalid(err, param, "'%s[%zu]' must be a token id (an integer from 0 to %d)",
                               param, *n, (int)n_vocab - 1);
        (*ids)[(*n)++] = (int32_t)id;
    }
    return 0;
}

/* A string, an array of one string, or an array of token ids. */
static int parse_prompt(struct parse *p)
{
    const cJSON *it = api_field(p->root, "prompt");
    if (!it)
        return api_invalid(p->err, "prompt", "'prompt' is required");
    if (cJSON_IsArray(it) && cJSON_IsString(it->child)) {
        int n = cJSON_GetArraySize(it);
        if (n > 1 && cJSON_IsString(it->child->next))
            return api_invalid(p->err, "prompt",
                               "only one prompt per request is supported (got %d)", n);
        if (n > 1)
            return api_invalid(p->err, "prompt",
                               "a prompt mixing text and token ids is not supported");
        it = it->child;
    }
    if (cJSON_IsString(it)) {
        if (!(p->out->prompt = strdup(it->valuestring)))
            return api_no_memory(p->err);
        p->out->prompt_len = strlen(p->out->prompt);
        return 0;
    }
    if (!cJSON_IsArray(it) || !it->child)
        return api_invalid(p->err, "prompt",
                           "'prompt' must be a string or a non-empty array of token ids");
    size_t n = 0;
    int rc = api_parse_ids(it, p->lim->n_vocab, "prompt", &p->gen->prompt, &n, p->err);
    p->gen->n_prompt = (int32_t)n; /* fewer than INT_MAX: cJSON counts array items in an int */
    return rc;
}

/* Content given as parts: the "text" parts joined with newlines. */
static int join_parts(const struct parse *p, int i, const cJSON *parts, struct llamad_buf *b)
{
    int j = 0;
    for (const cJSON *part = parts->child; part; part = part->next, j++) {
        const cJSON *type = cJSON_IsObject(part) ? api_field(part, "type") : NULL;
        const cJSON *text = cJSON_IsObject(part) ? api_field(part, "text") : NULL;
        char param[64];
        snprintf(param, sizeof param, "messages[%d].content[%d].type", i, j);
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
            return api_invalid(p->err, param, "only content parts of type \"text\" are supported");
        snprintf(param, sizeof param, "messages[%d].content[%d].text", i, j);
        if (!cJSON_IsString(text))
            return api_invalid(p->err, param, "a text part needs a string 'text'");
        if ((j > 0 && llamad_buf_append(b, "\n", 1)) ||
            llamad_buf_append(b, text->valuestring, strlen(text->valuestring)))
            return api_no_memory(p->err);
    }
    return 0;
}

/* A message's content as a malloc'd string. */
static int message_content(const struct parse *p, int i, const cJSON *msg, bool has_calls,
                           bool assistant, char **out)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    /* An assistant's content may be null, or absent beside its tool calls. */
    if ((!content && !has_calls) || (cJSON_IsNull(content) && !assistant))
        return api_invalid(p->err, param, "'%s' is required", param);
    if (content && !cJSON_IsNull(content) && !cJSON_IsString(content) && !cJSON_IsArray(content))
        return api_invalid(p->err, param, "'%s' must be a string or an array of text parts", param);
    struct llamad_buf b = LLAMAD_BUF_INIT;
    int rc = llamad_buf_append(&b, "", 0) ? api_no_memory(p->err) : 0;
    if (!rc && cJSON_IsString(content) &&
        llamad_buf_append(&b, content->valuestring, strlen(content->valuestring)))
        rc = api_no_memory(p->err);
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
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    char param[64];
    snprintf(param, sizeof param, "messages[%d]", i);
    if (!cJSON_IsObject(msg))
        return api_invalid(p->err, param, "'%s' must be an object", param);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
    size_t r = 0;
    while (cJSON_IsString(role) && r < COUNT(roles) && strcmp(role->valuestring, roles[r]) != 0)
        r++;
    snprintf(param, sizeof param, "messages[%d].role", i);
    if (!cJSON_IsString(role) || r == COUNT(roles))
        return api_invalid(p->err, param,
                           "'%s' must be \"system\", \"user\", \"assistant\" or \"tool\"", param);
    int rc = api_parse_message_tools(msg, i, roles[r], m, p->err);
    if (rc || (rc = message_content(p, i, msg, m->n_tool_calls > 0,
                                    strcmp(roles[r], "assistant") == 0, &m->content)))
        return rc;
    if (!(m->role = strdup(roles[r])))
        return api_no_memory(p->err);
    return 0;
}

static int parse_messages(struct parse *p)
{
    const cJSON *msgs = api_field(p->root, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return api_invalid(p->err, "messages", "'messages' must be a non-empty array of messages");
    struct llamad_api_request *out = p->out;
    out->messages = calloc((size_t)cJSON_GetArraySize(msgs), sizeof *out->messages);
    if (!out->messages)
        return api_no_memory(p->err);
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

/* The field that constrains the output, or NULL: "grammar" (read later), or the
 * one parse_structured_output made the grammar of (at most one of them is given). */
static const char *constraint_field(const struct parse *p)
{
    if (api_field(p->root, "grammar"))
        return "grammar";
    if (!p->out->grammar)
        return NULL;
    return api_field(p->root, "json_schema") ? "json_schema" : "response_format";
}

/* Chat: the tools, and for tool_choice "required" or a named function the
 * constraint that makes the output a valid call (tool_calls.h). */
static int parse_chat_tools(struct parse *p)
{
    if (p->kind != LLAMAD_API_CHAT)
        return 0;
    int rc = api_parse_tools(p->root, &p->out->tools, p->err);
    if (rc)
        return rc;
    return api_constrain_tools(&p->out->tools, p->lim->tool_syntax, constraint_field(p), p->out,
                               p->err);
}

static int parse_sampling(struct parse *p)
{
    struct llamad_sampling *s = &p->gen->sampling;
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
    int64_t v = p->gen->max_tokens;
    for (size_t i = 0; i < COUNT(names); i++) {
        int rc = get_integer(p->root, names[i], native ? -1 : 1, INT32_MAX, &v, p->err);
        if (rc)
            return rc;
    }
    p->gen->max_tokens = (int32_t)v;
    return 0;
}

static int parse_seed(struct parse *p)
{
    int64_t seed = -1;
    const cJSON *it = api_field(p->root, "seed");
    if (!it)
        return 0;
    if (!integer_in(it, -SEED_LIMIT, SEED_LIMIT, &seed))
        return api_invalid(p->err, "seed", "'seed' must be an integer from -2^53 to 2^53");
    if (seed < 0 && p->kind == LLAMAD_API_NATIVE)
        return 0; /* llama.cpp: a negative seed asks for a random one */
    p->gen->sampling.seed = (uint64_t)seed;
    p->out->seed_given = true;
    return 0;
}

static int add_stop(struct parse *p, const char *s)
{
    struct llamad_gen_request *out = p->gen;
    size_t len = strlen(s);
    if (len == 0)
        return 0;
    if (len > p->lim->max_stop_len)
        return api_invalid(p->err, "stop", "stop strings must be at most %zu bytes",
                           p->lim->max_stop_len);
    if (out->n_stops >= (size_t)p->lim->max_stops)
        return api_invalid(p->err, "stop", "at most %d stop strings are supported",
                           (int)p->lim->max_stops);
    if (!(out->stops[out->n_stops] = strdup(s)))
        return api_no_memory(p->err);
    out->stop_lens[out->n_stops++] = len;
    return 0;
}

static int parse_stops(struct parse *p)
{
    const cJSON *it = api_field(p->root, "stop");
    if (!it)
        return 0;
    if (!cJSON_IsString(it) && !cJSON_IsArray(it))
        return api_invalid(p->err, "stop", "'stop' must be a string or an array of strings");
    size_t n = cJSON_IsArray(it) ? (size_t)cJSON_GetArraySize(it) : 1;
    if (n == 0)
        return 0;
    p->gen->stops = calloc(n, sizeof *p->gen->stops);
    p->gen->stop_lens = calloc(n, sizeof *p->gen->stop_lens);
    if (!p->gen->stops || !p->gen->stop_lens)
        return api_no_memory(p->err);
    if (cJSON_IsString(it))
        return add_stop(p, it->valuestring);
    for (const cJSON *s = it->child; s; s = s->next) {
        if (!cJSON_IsString(s))
            return api_invalid(p->err, "stop", "'stop' must be a string or an array of strings");
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
        return api_invalid(p->err, "logit_bias",
                           "logit_bias values must be numbers from -100 to 100%s",
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
        return api_invalid(p->err, "logit_bias",
                           "logit_bias entries must name token ids from 0 to %d%s",
                           (int)n_vocab - 1, pair ? " as [id, bias] pairs" : "");
    b->token = (int32_t)id;
    return bias_value(p, pair ? e->child->next : e, &b->bias);
}

static int parse_logit_bias(struct parse *p)
{
    const cJSON *it = api_field(p->root, "logit_bias");
    bool native = p->kind == LLAMAD_API_NATIVE;
    bool pairs = native && cJSON_IsArray(it);
    if (!it)
        return 0;
    if (!cJSON_IsObject(it) && !pairs)
        return api_invalid(p->err, "logit_bias",
                           "'logit_bias' must be an object mapping token ids to biases%s",
                           native ? ", or an array of [id, bias] pairs" : "");
    size_t n = (size_t)cJSON_GetArraySize(it);
    if (n == 0)
        return 0;
    struct llamad_gen_request *g = p->gen;
    if (!(g->logit_bias = calloc(n, sizeof *g->logit_bias)))
        return api_no_memory(p->err);
    g->sampling.logit_bias = g->logit_bias;
    for (const cJSON *e = it->child; e; e = e->next) {
        int rc = bias_entry(p, e, pairs, &g->logit_bias[g->sampling.n_logit_bias]);
        if (rc)
            return rc;
        g->sampling.n_logit_bias++;
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
        if ((rc = api_get_bool(p->root, "logprobs", &on, p->err)))
            break;
        if (api_field(p->root, "top_logprobs") && !on)
            return api_invalid(p->err, "top_logprobs",
                               "'top_logprobs' requires 'logprobs' to be true");
        top = on ? 0 : -1;
        rc = get_integer(p->root, "top_logprobs", 0, cap < 20 ? cap : 20, &top, p->err);
        break;
    default:
        rc = get_integer(p->root, "n_probs", 0, cap, &top, p->err);
        top = top > 0 ? top : -1;
        break;
    }
    p->gen->logprobs = top >= 0;
    p->gen->top_logprobs = top >= 0 ? (int32_t)top : 0;
    return rc;
}

/* stream_options only means something for a stream (OpenAI's), else it is ignored. */
static int parse_stream(struct parse *p)
{
    int rc = api_get_bool(p->root, "stream", &p->out->stream, p->err);
    if (rc || !p->out->stream || p->kind == LLAMAD_API_NATIVE)
        return rc;
    const cJSON *opts = api_field(p->root, "stream_options");
    if (!opts)
        return 0;
    const cJSON *usage = cJSON_IsObject(opts) ? api_field(opts, "include_usage") : NULL;
    if (!cJSON_IsObject(opts) || (usage && !cJSON_IsBool(usage)))
        return api_invalid(p->err, "stream_options",
                           "'stream_options' must be an object with a boolean 'include_usage'");
    p->out->include_usage = cJSON_IsTrue(usage);
    return 0;
}

static bool session_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

/* The rules of a session id, named param in the error: the body's field or the header. */
static int check_session_id(const char *session, const char *param, struct llamad_api_error *err)
{
    size_t len = strlen(session);
    for (size_t i = 0; i < len; i++) {
        if (!session_id_char(session[i]))
            return api_invalid(err, param, "'%s' may only hold A-Z a-z 0-9 . _ : -", param);
    }
    if (len > SESSION_ID_MAX)
        return api_invalid(err, param, "'%s' must be at most %zu bytes", param, SESSION_ID_MAX);
    return 0;
}

static int parse_extensions(struct parse *p)
{
    const char *user = NULL, *session = NULL;
    int rc = api_get_bool(p->root, "ignore_eos", &p->gen->ignore_eos, p->err);
    if (rc || (rc = get_string(p->root, "user", &user, p->err)) ||
        (rc = get_string(p->root, "session_id", &session, p->err)) || !session ||
        (rc = check_session_id(session, "session_id", p->err)))
        return rc;
    memcpy(p->gen->session_id, session, strlen(session) + 1);
    return 0;
}

int llamad_api_session_header(const char *value, struct llamad_api_request *out,
                              struct llamad_api_error *err)
{
    if (!value || !*value)
        return 0;
    int rc = check_session_id(value, LLAMAD_SESSION_HEADER, err);
    if (rc)
        return rc;
    if (out->gen.session_id[0] && strcmp(out->gen.session_id, value) != 0)
        return api_invalid(err, LLAMAD_SESSION_HEADER,
                           "'" LLAMAD_SESSION_HEADER "' and 'session_id' name different sessions");
    memcpy(out->gen.session_id, value, strlen(value) + 1);
    return 0;
}

/* "grammar" (an extension on every endpoint, as llama.cpp's server has it): GBNF
 * text, kept as text here; compile_grammar turns it into the engine's grammar. */
static int parse_grammar(struct parse *p)
{
    const char *text = NULL;
    int rc = get_string(p->root, "grammar", &text, p->err);
    if (rc || !text)
        return rc;
    size_t len = strlen(text);
    if (len > LLAMAD_API_MAX_GRAMMAR)
        return api_invalid(p->err, "grammar", "'grammar' must be at most %d bytes",
                           LLAMAD_API_MAX_GRAMMAR);
    if (!(p->out->grammar = malloc(len + 1)))
        return api_no_memory(p->err);
    memcpy(p->out->grammar, text, len + 1);
    p->out->grammar_len = len;
    return 0;
}

/* The field the request's grammar text came from, for its errors. */
static const char *grammar_source(const struct parse *p)
{
    enum llamad_tool_choice c = p->out->tools.choice;
    if (!api_field(p->root, "grammar") &&
        (c == LLAMAD_TOOL_CHOICE_REQUIRED || c == LLAMAD_TOOL_CHOICE_NAMED))
        return "tools";
    return constraint_field(p);
}

/* The last step, once every field is read: the grammar text (from "grammar",
 * or made from another field) parsed into gen.grammar. */
static int compile_grammar(struct parse *p)
{
    struct llamad_api_request *r = p->out;
    if (!r->grammar)
        return 0;
    char msg[LLAMAD_ERR_MAX];
    int rc = llamad_grammar_parse(r->grammar, r->grammar_len, &r->gen.grammar, msg, sizeof msg);
    if (rc == LLAMAD_ENOMEM)
        return api_no_memory(p->err);
    const char *from = grammar_source(p);
    if (rc && !strcmp(from, "grammar"))
        return api_invalid(p->err, "grammar", "'grammar' does not parse: %.280s", msg);
    if (rc) /* a grammar made here: only the engine's limits refuse it */
        return api_invalid(p->err, from, "the grammar made from '%s' is refused: %.280s", from,
                           msg);
    return 0;
}

int llamad_api_parse_request(enum llamad_api_kind kind, const char *body, size_t len,
                             const struct llamad_api_limits *lim, struct llamad_api_request *out,
                             struct llamad_api_error *err)
{
    static int (*const steps[])(struct parse *) = {
        parse_unsupported, parse_structured_output, parse_model,     parse_input,
        parse_sampling,    parse_max_tokens,        parse_seed,      parse_stops,
        parse_logit_bias,  parse_logprobs,          parse_stream,    parse_extensions,
        parse_chat_tools,  parse_grammar,           compile_grammar,
    };
    cJSON *root;
    set_defaults(kind, out);
    int rc = api_parse_body(body, len, &root, err);
    struct parse p = {
        .kind = kind, .lim = lim, .root = root, .out = out, .gen = &out->gen, .err = err};
    for (size_t i = 0; !rc && i < COUNT(steps); i++)
        rc = steps[i](&p);
    cJSON_Delete(root);
    if (rc)
        llamad_api_request_free(out);
    return rc;
}

void llamad_api_request_free(struct llamad_api_request *r)
{
    free(r->model);
    free(r->prompt);
    free(r->grammar);
    for (size_t i = 0; i < r->n_messages; i++) {
        free(r->messages[i].role);
        free(r->messages[i].content);
        api_message_tools_free(&r->messages[i]);
    }
    api_tools_free(&r->tools);
    free(r->messages);
    llamad_gen_request_clear(&r->gen);
    memset(r, 0, sizeof *r);
}

int llamad_api_parse_messages(const char *body, size_t len, struct llamad_api_request *out,
                              struct llamad_api_error *err)
{
    cJSON *root;
    set_defaults(LLAMAD_API_CHAT, out);
    int rc = api_parse_body(body, len, &root, err);
    struct parse p = {
        .kind = LLAMAD_API_CHAT, .root = root, .out = out, .gen = &out->gen, .err = err};
    if (!rc && !(rc = parse_messages(&p)))
        rc = api_parse_tools(root, &out->tools, err);
    cJSON_Delete(root);
    return rc;
}
