/* Tool calls in generated text (include/llamad/server/tool_calls.h): the
 * streaming parser of the three call syntaxes, and the GBNF wrapper of a valid
 * call. */
#include "llamad/server/tool_calls.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_read.h"
#include "llamad/base/error.h"
#include "llamad/base/random.h"
#include "llamad/server/json_schema.h"

static const char OPEN_TAG[] = "<tool_call>";
static const char CLOSE_TAG[] = "</tool_call>";
#define OPEN_LEN (sizeof OPEN_TAG - 1)
#define CLOSE_LEN (sizeof CLOSE_TAG - 1)

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- The grammar ---- */

/* s as a GBNF string literal's inside. */
static int gbnf_text(struct llamad_buf *b, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        if (*s == '"' || *s == '\\')
            rc = llamad_buf_append(b, "\\", 1) || llamad_buf_append(b, s, 1);
        else if (*s == '\n')
            rc = llamad_buf_append(b, "\\n", 2);
        else
            rc = llamad_buf_append(b, s, 1);
    }
    return rc ? LLAMAD_ENOMEM : 0;
}

static int put(struct llamad_buf *b, const char *s)
{
    return llamad_buf_append(b, s, strlen(s)) ? LLAMAD_ENOMEM : 0;
}

/* fn-K ::= "\"NAME\", \"KEY\": " fn-K-args, and fn-K-args's rules. */
static int function_rules(const struct llamad_tool *tool, size_t k, const char *key,
                          llamad_tool_schema_gbnf_fn schema_gbnf, struct llamad_buf *out, char *err,
                          size_t errsz)
{
    char rule[32], line[96];
    snprintf(rule, sizeof rule, "fn-%zu-args", k);
    snprintf(line, sizeof line, "fn-%zu ::= \"\\\"", k);
    int rc = put(out, line);
    if (!rc && !(rc = gbnf_text(out, tool->name)) && !(rc = put(out, "\\\", \\\"")) &&
        !(rc = put(out, key)))
        rc = put(out, "\\\": \" ");
    if (!rc && !(rc = put(out, rule)))
        rc = put(out, "\n");
    if (rc)
        return llamad_fail(err, errsz, rc, "out of memory writing the tool grammar");
    cJSON *schema = cJSON_Parse(tool->parameters);
    if (!schema)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory reading a tool's schema");
    char msg[LLAMAD_ERR_MAX] = "";
    rc = schema_gbnf(schema, rule, out, msg, sizeof msg);
    cJSON_Delete(schema);
    if (rc)
        return llamad_fail(err, errsz, rc, "the parameters of '%s': %s", tool->name, msg);
    return 0;
}

int llamad_tool_grammar(enum llamad_tool_syntax syn, const struct llamad_tools *t,
                        llamad_tool_schema_gbnf_fn schema_gbnf, struct llamad_buf *out, char *err,
                        size_t errsz)
{
    /* One call, and how several are joined. */
    static const char *const call[] = {
        [LLAMAD_TOOL_SYNTAX_TAGGED] = ("tool-call ::= \"<tool_call>\\n{\\\"name\\\": \" tool-fn "
                                       "\"}\\n</tool_call>\"\n"),
        [LLAMAD_TOOL_SYNTAX_LLAMA3] = "tool-call ::= \"{\\\"name\\\": \" tool-fn \"}\"\n",
        [LLAMAD_TOOL_SYNTAX_MISTRAL] = "tool-call ::= \"{\\\"name\\\": \" tool-fn \"}\"\n",
    };
    static const char *const root[] = {
        [LLAMAD_TOOL_SYNTAX_TAGGED] = "root ::= tool-call (\"\\n\" tool-call)*\n",
        [LLAMAD_TOOL_SYNTAX_LLAMA3] = "root ::= tool-call (\";\" tool-call)*\n",
        [LLAMAD_TOOL_SYNTAX_MISTRAL] = "root ::= \"[\" tool-call (\", \" tool-call)* \"]\"\n",
    };
    static const char *const root_one[] = {
        [LLAMAD_TOOL_SYNTAX_TAGGED] = "root ::= tool-call\n",
        [LLAMAD_TOOL_SYNTAX_LLAMA3] = "root ::= tool-call\n",
        [LLAMAD_TOOL_SYNTAX_MISTRAL] = "root ::= \"[\" tool-call \"]\"\n",
    };
    const char *key = syn == LLAMAD_TOOL_SYNTAX_LLAMA3 ? "parameters" : "arguments";
    bool named = t->choice == LLAMAD_TOOL_CHOICE_NAMED;
    int rc = put(out, t->parallel ? root[syn] : root_one[syn]);
    if (!rc)
        rc = put(out, call[syn]);
    if (!rc)
        rc = put(out, "tool-fn ::= ");
    for (size_t k = 0; !rc && k < t->n; k++) {
        if (named && k != t->named)
            continue;
        char alt[32];
        snprintf(alt, sizeof alt, "%sfn-%zu", named || k == 0 ? "" : " | ", k);
        rc = put(out, alt);
    }
    if (!rc)
        rc = put(out, "\n");
    if (rc)
        return llamad_fail(err, errsz, rc, "out of memory writing the tool grammar");
    for (size_t k = 0; !rc && k < t->n; k++)
        if (!named || k == t->named)
            rc = function_rules(&t->tools[k], k, key, schema_gbnf, out, err, errsz);
    return rc;
}

int api_constrain_tools(const struct llamad_tools *t, enum llamad_tool_syntax syn,
                        const char *other, struct llamad_api_request *out,
                        struct llamad_api_error *err)
{
    if (t->choice != LLAMAD_TOOL_CHOICE_REQUIRED && t->choice != LLAMAD_TOOL_CHOICE_NAMED)
        return 0;
    if (other)
        return api_invalid(err, other,
                           "'%s' cannot be given with tool_choice \"required\" or a named "
                           "function, which constrains the output to a call: one constraint at "
                           "most",
                           other);
    char msg[LLAMAD_ERR_MAX] = "";
    struct llamad_buf gbnf = LLAMAD_BUF_INIT;
    int rc = llamad_tool_grammar(syn, t, llamad_json_schema_rules, &gbnf, msg, sizeof msg);
    if (rc) {
        llamad_buf_free(&gbnf);
        return rc == LLAMAD_ENOMEM ? api_no_memory(err) : api_invalid(err, "tools", "%s", msg);
    }
    out->grammar = gbnf.data;
    out->grammar_len = gbnf.len;
    return 0;
}

/* ---- Parsing ---- */

enum { ST_START, ST_TEXT, ST_CALL, ST_HOLD };

void llamad_tool_stream_init(struct llamad_tool_stream *s, enum llamad_tool_syntax syntax,
                             const struct llamad_tools *tools, uint64_t seed)
{
    *s = (struct llamad_tool_stream){.syntax = syntax,
                                     .tools = tools,
                                     .rng = seed,
                                     .held = LLAMAD_BUF_INIT,
                                     .blank = LLAMAD_BUF_INIT,
                                     .state =
                                         syntax == LLAMAD_TOOL_SYNTAX_TAGGED ? ST_TEXT : ST_START};
}

void llamad_tool_stream_free(struct llamad_tool_stream *s)
{
    llamad_buf_free(&s->held);
    llamad_buf_free(&s->blank);
}

void llamad_tool_piece_free(struct llamad_tool_piece *p)
{
    llamad_buf_free(&p->content);
    for (size_t i = 0; i < p->n_calls; i++) {
        free(p->calls[i].name);
        free(p->calls[i].arguments);
    }
    free(p->calls);
    memset(p, 0, sizeof *p);
}

/* Text that is content; whitespace at its end waits until more content follows
 * it (between and around calls it is not content), so that the content is the
 * same however the text was cut into pieces. */
static int release(struct llamad_tool_stream *s, const char *text, size_t len,
                   struct llamad_tool_piece *out)
{
    size_t body = len;
    while (body > 0 && blank(text[body - 1]))
        body--;
    if (body > 0) {
        if (llamad_buf_append(&out->content, s->blank.data, s->blank.len) ||
            llamad_buf_append(&out->content, text, body))
            return LLAMAD_ENOMEM;
        llamad_buf_clear(&s->blank);
    }
    return llamad_buf_append(&s->blank, text + body, len - body) ? LLAMAD_ENOMEM : 0;
}

static bool declared(const struct llamad_tools *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->tools[i].name, name) == 0)
            return true;
    return false;
}

/* A call object's name and arguments, checked; NULL name when it is not a call. */
static bool call_parts(const struct llamad_tool_stream *s, const cJSON *obj, const char **name,
                       const cJSON **args)
{
    const cJSON *n = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "name") : NULL;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "arguments");
    if (!a)
        a = cJSON_GetObjectItemCaseSensitive(obj, "parameters");
    if (!cJSON_IsString(n) || !declared(s->tools, n->valuestring) || (a && !cJSON_IsObject(a)))
        return false;
    *name = n->valuestring;
    *args = a;
    return true;
}

static void make_id(struct llamad_tool_stream *s, char id[32])
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    memcpy(id, "call_", 5);
    for (int i = 0; i < 24; i++)
        id[5 + i] = alnum[llamad_splitmix64(&s->rng) % (sizeof alnum - 1)];
    id[29] = '\0';
}

static int emit(struct llamad_tool_stream *s, const char *name, const cJSON *args,
                struct llamad_tool_piece *out)
{
    if (!s->tools->parallel && s->n_calls > 0)
        return 0; /* one call at most: the rest are dropped */
    struct llamad_tool_call_out *p = realloc(out->calls, (out->n_calls + 1) * sizeof *p);
    if (!p)
        return LLAMAD_ENOMEM;
    out->calls = p;
    struct llamad_tool_call_out *c = &p[out->n_calls];
    memset(c, 0, sizeof *c);
    c->index = s->n_calls;
    make_id(s, c->id);
    c->name = strdup(name);
    c->arguments = args ? cJSON_PrintUnformatted(args) : strdup("{}");
    if (!c->name || !c->arguments) {
        free(c->name);
        free(c->arguments);
        return LLAMAD_ENOMEM;
    }
    out->n_calls++;
    s->n_calls++;
    return 0;
}

/* The JSON values of text[0..len), one after another with blanks (and, for
 * LLaMA-3, ';') between; *n is how many. NULL when any is not JSON. */
static cJSON *json_values(const char *text, size_t len, bool semicolons, int *n)
{
    cJSON *list = cJSON_CreateArray();
    size_t at = 0;
    *n = 0;
    while (list) {
        while (at < len && (blank(text[at]) || (semicolons && text[at] == ';')))
            at++;
        if (at == len)
            return list;
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(text + at, len - at, &end, false);
        if (!v || !cJSON_AddItemToArray(list, v)) {
            cJSON_Delete(v);
            break;
        }
        at = (size_t)(end - text);
        (*n)++;
    }
    cJSON_Delete(list);
    return NULL;
}

/* Whether every object of arr is a call; if so they are emitted. */
static int emit_all(struct llamad_tool_stream *s, const cJSON *arr, bool *ok,
                    struct llamad_tool_piece *out)
{
    const char *name;
    const cJSON *args;
    *ok = cJSON_GetArraySize(arr) > 0;
    for (const cJSON *c = arr->child; c && *ok; c = c->next)
        *ok = call_parts(s, c, &name, &args);
    int rc = 0;
    for (const cJSON *c = arr->child; *ok && c && !rc; c = c->next) {
        call_parts(s, c, &name, &args);
        rc = emit(s, name, args, out);
    }
    return rc;
}

/* The held text as calls (the whole of it), or else as content. */
static int settle(struct llamad_tool_stream *s, const char *text, size_t len, const char *prefix,
                  const char *suffix, struct llamad_tool_piece *out)
{
    const char *body = text;
    size_t n = len;
    while (n && blank(*body))
        body++, n--;
    if (s->syntax == LLAMAD_TOOL_SYNTAX_MISTRAL && n >= 12 && !memcmp(body, "[TOOL_CALLS]", 12))
        body += 12, n -= 12;
    int count = 0, rc = 0;
    bool ok = false;
    api_json_oom_reset();
    cJSON *values = json_values(body, n, s->syntax == LLAMAD_TOOL_SYNTAX_LLAMA3, &count);
    if (!values && api_json_oom())
        return LLAMAD_ENOMEM;
    if (values && s->syntax == LLAMAD_TOOL_SYNTAX_MISTRAL) {
        /* One array of calls. */
        ok = count == 1 && cJSON_IsArray(values->child);
        if (ok)
            rc = emit_all(s, values->child, &ok, out);
    } else if (values) {
        ok = s->syntax == LLAMAD_TOOL_SYNTAX_LLAMA3 || count == 1;
        if (ok)
            rc = emit_all(s, values, &ok, out);
    }
    cJSON_Delete(values);
    if (rc || ok)
        return rc;
    /* Not a call: the text as it was, tags and all, is content. */
    struct llamad_buf all = LLAMAD_BUF_INIT;
    if ((prefix && llamad_buf_append(&all, prefix, strlen(prefix))) ||
        llamad_buf_append(&all, text, len) ||
        (suffix && llamad_buf_append(&all, suffix, strlen(suffix))))
        rc = LLAMAD_ENOMEM;
    if (!rc)
        rc = release(s, all.data, all.len, out);
    llamad_buf_free(&all);
    return rc;
}

/* How much of the end of text[0..len) may be the start of tag. */
static size_t partial_tag(const char *text, size_t len, const char *tag, size_t tag_len)
{
    for (size_t k = tag_len - 1; k > 0; k--)
        if (k <= len && !memcmp(text + len - k, tag, k))
            return k;
    return 0;
}

/* One step over the held text; *more: call again. */
static int step(struct llamad_tool_stream *s, bool end, bool *more, struct llamad_tool_piece *out)
{
    char *h = s->held.data;
    size_t len = s->held.len, used = 0;
    int rc = 0;
    *more = false;
    switch (s->state) {
    case ST_START: {
        size_t i = 0;
        while (i < len && blank(h[i]))
            i++;
        if (i < len) {
            char first = s->syntax == LLAMAD_TOOL_SYNTAX_LLAMA3 ? '{' : '[';
            s->state = h[i] == first ? ST_HOLD : ST_TEXT;
            *more = true;
        } else if (end) {
            rc = release(s, h, len, out);
            used = len;
        }
        break;
    }
    case ST_TEXT: {
        if (s->syntax != LLAMAD_TOOL_SYNTAX_TAGGED) {
            rc = release(s, h, len, out);
            used = len;
            break;
        }
        const char *at = memmem(h, len, OPEN_TAG, OPEN_LEN);
        if (at) {
            rc = release(s, h, (size_t)(at - h), out);
            used = (size_t)(at - h) + OPEN_LEN;
            s->state = ST_CALL;
            *more = true;
        } else {
            used = len - (end ? 0 : partial_tag(h, len, OPEN_TAG, OPEN_LEN));
            rc = release(s, h, used, out);
        }
        break;
    }
    case ST_CALL: {
        const char *at = memmem(h, len, CLOSE_TAG, CLOSE_LEN);
        if (at) {
            size_t body = (size_t)(at - h);
            rc = settle(s, h, body, OPEN_TAG, CLOSE_TAG, out);
            used = body + CLOSE_LEN;
            s->state = ST_TEXT;
            *more = true;
        } else if (end) {
            rc = settle(s, h, len, OPEN_TAG, NULL, out);
            used = len;
        }
        break;
    }
    default: /* ST_HOLD */
        if (end) {
            rc = settle(s, h, len, NULL, NULL, out);
            used = len;
        }
    }
    if (!rc)
        llamad_buf_consume(&s->held, used);
    return rc;
}

int llamad_tool_stream_feed(struct llamad_tool_stream *s, const char *text, size_t len, bool end,
                            struct llamad_tool_piece *out)
{
    if (s->done)
        return 0;
    if (llamad_buf_append(&s->held, text, len))
        return LLAMAD_ENOMEM;
    bool more = true;
    int rc = 0;
    while (more && !rc)
        rc = step(s, end, &more, out);
    if (!rc && end) {
        s->done = true;
        if (s->n_calls == 0 && s->blank.len &&
            llamad_buf_append(&out->content, s->blank.data, s->blank.len))
            return LLAMAD_ENOMEM;
        llamad_buf_clear(&s->blank);
    }
    return rc;
}
