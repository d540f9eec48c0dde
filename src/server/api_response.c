/* The HTTP API's responses (include/llamad/server/api_response.h): trees built
 * with cJSON, but for the parts with a field per token (logprobs, /tokenize),
 * written as text (json_write.h). Every string that comes from the model or the
 * client goes in through json_string(), which escapes it: generated text may
 * hold U+0000 (a <0x00> byte token), which cJSON's C strings cannot carry, and
 * nothing but valid UTF-8 may leave the server. */
#include "llamad/server/api_response.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_logprobs.h"
#include "api_read.h"
#include "json_write.h"
#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/base/utf8.h"

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

/* s[0..n) as a JSON string (an item printed verbatim). */
static cJSON *json_text(const char *s, size_t n)
{
    struct json_out o = {LLAMAD_BUF_INIT, 0};
    json_string(&o, s, n);
    cJSON *item = o.rc ? NULL : cJSON_CreateRaw(o.b.data);
    llamad_buf_free(&o.b);
    return item;
}

/* What o holds, as an item printed verbatim; a failed write clears ok. */
static cJSON *written(bool *ok, struct json_out *o)
{
    cJSON *item = o->rc ? NULL : cJSON_CreateRaw(o->b.data);
    llamad_buf_free(&o->b);
    if (!item)
        *ok = false;
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
 * shows U+FFFD there: json_string never lets the broken bytes through. */
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
    bool role; /* chat chunk: the delta opens with the assistant's role */
    const struct llamad_event *first, *end; /* tokens whose logprobs it reports */
    size_t text_offset;                     /* completions logprobs: bytes of text before `first` */
    const char *finish; /* finish_reason; NULL: null (and for a chat chunk: a delta) */
    const struct llamad_tool_piece *calls;   /* whole chat message: its tool calls */
    const struct llamad_tool_call_out *call; /* chat chunk: one call's delta */
    bool call_head;                          /* ... its head, else its arguments */
    const struct llamad_usage *usage;        /* NULL: none, or "usage": null in chunks */
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
    struct json_out o = {LLAMAD_BUF_INIT, 0};
    if (r->kind != LLAMAD_API_CHAT) {
        api_completion_logprobs(&o, r, p->first, p->end, p->text_offset);
        return written(ok, &o);
    }
    cJSON *lp = cJSON_CreateObject();
    api_sampled_entries(&o, r, p->first, p->end);
    put(ok, lp, "content", written(ok, &o));
    return lp;
}

/* {"index", "id", "type", "function": {"name", "arguments"}}: whole, a stream's
 * head (arguments ""), or a stream's arguments (index and function.arguments). */
static void put_call(bool *ok, cJSON *arr, const struct llamad_tool_call_out *c, bool head,
                     bool args)
{
    cJSON *call = put(ok, arr, NULL, cJSON_CreateObject());
    if (!args || !head)
        put_num(ok, call, "index", (double)c->index);
    if (head) {
        put_str(ok, call, "id", c->id);
        put_str(ok, call, "type", "function");
    }
    cJSON *fn = put_obj(ok, call, "function");
    if (head)
        put_str(ok, fn, "name", c->name);
    put_str(ok, fn, "arguments", args ? c->arguments : "");
}

static void put_chat_text(bool *ok, cJSON *choice, const struct v1_part *p)
{
    if (!p->chunk) {
        cJSON *msg = put_obj(ok, choice, "message");
        put_str(ok, msg, "role", "assistant");
        if (p->calls && p->calls->n_calls && p->text_len == 0)
            put_null(ok, msg, "content");
        else
            put_text(ok, msg, "content", p->text, p->text_len);
        cJSON *calls = p->calls && p->calls->n_calls ? put_arr(ok, msg, "tool_calls") : NULL;
        for (size_t i = 0; calls && i < p->calls->n_calls; i++)
            put_call(ok, calls, &p->calls->calls[i], true, true);
        return;
    }
    cJSON *delta = put_obj(ok, choice, "delta"); /* the last chunk's delta is empty */
    if (p->role)
        put_str(ok, delta, "role", "assistant");
    if (p->call)
        put_call(ok, put_arr(ok, delta, "tool_calls"), p->call, p->call_head, !p->call_head);
    else if (!p->finish)
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
    if (probs) {
        struct json_out o = {LLAMAD_BUF_INIT, 0};
        api_sampled_entries(&o, r, first, end);
        put(&ok, root, "completion_probabilities", written(&ok, &o));
    }
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
    char *json = NULL;
    if (r->kind == LLAMAD_API_NATIVE) {
        json = native_json(r, text.data, text.len, r->logprobs, tokens, NULL, done);
    } else if (r->kind == LLAMAD_API_CHAT && r->tools) {
        struct llamad_tool_stream ts;
        struct llamad_tool_piece piece = {LLAMAD_BUF_INIT, NULL, 0};
        llamad_tool_stream_init(&ts, r->tool_syntax, r->tools, r->tool_seed);
        if (llamad_tool_stream_feed(&ts, text.data ? text.data : "", text.len, true, &piece) == 0) {
            struct v1_part p = {.text = piece.content.data,
                                .text_len = piece.content.len,
                                .first = tokens,
                                .finish =
                                    piece.n_calls ? "tool_calls" : finish_reason(done->finish),
                                .usage = &done->usage,
                                .calls = &piece};
            json = v1_json(r, &p);
        }
        llamad_tool_piece_free(&piece);
        llamad_tool_stream_free(&ts);
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

bool llamad_api_chunk_due(const struct llamad_api_reply *r, const struct llamad_event *token)
{
    return token->text_len > 0 || (r->logprobs && token->token >= 0);
}

char *llamad_api_chunk_token_json(const struct llamad_api_reply *r,
                                  const struct llamad_event *token, size_t text_offset)
{
    bool has_token = token->token >= 0;
    if (!llamad_api_chunk_due(r, token))
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
    struct v1_part p = {.chunk = true,
                        .finish = r->called ? "tool_calls" : finish_reason(done->finish)};
    return v1_json(r, &p);
}

char *llamad_api_chunk_tool_call_json(const struct llamad_api_reply *r,
                                      const struct llamad_tool_call_out *c, bool head)
{
    struct v1_part p = {.chunk = true, .call = c, .call_head = head};
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

/* {"tokens": [...]} written as text: 1 MB of emoji is a million tokens. A
 * piece that is whole UTF-8 is a string, else its byte values (as llama.cpp). */
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
    struct json_out o = {LLAMAD_BUF_INIT, 0};
    struct llamad_buf piece = LLAMAD_BUF_INIT;
    json_raw(&o, "{\"tokens\":[");
    for (int64_t i = 0; i < n && !o.rc; i++) {
        json_raw(&o, i ? "," : "");
        if (!with_pieces) {
            json_int(&o, ids[i]);
            continue;
        }
        json_raw(&o, "{\"id\":");
        json_int(&o, ids[i]);
        json_raw(&o, ",\"piece\":");
        llamad_buf_clear(&piece);
        if (!o.rc && (o.rc = llamad_token_to_bytes(tok, ids[i], &piece)) == 0) {
            if (llamad_utf8_valid_prefix(piece.data, piece.len) == piece.len)
                json_string(&o, piece.data, piece.len);
            else
                json_byte_array(&o, piece.data, piece.len);
        }
        json_raw(&o, "}");
    }
    json_raw(&o, "]}");
    llamad_buf_free(&piece);
    free(ids);
    if (o.rc) {
        llamad_buf_free(&o.b);
        api_no_memory(err);
    }
    return o.b.data;
}

char *llamad_api_tokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                          struct llamad_api_error *err)
{
    cJSON *root;
    if (api_parse_body(body, len, &root, err))
        return NULL;
    const cJSON *content = api_field(root, "content");
    bool add_special = false, with_pieces = false;
    char *json = NULL;
    if (!cJSON_IsString(content))
        api_invalid(err, "content", "'content' must be a string");
    else if (!api_get_bool(root, "add_special", &add_special, err) &&
             !api_get_bool(root, "with_pieces", &with_pieces, err))
        json = tokens_json(tok, content->valuestring, add_special, with_pieces, err);
    cJSON_Delete(root);
    return json;
}

char *llamad_api_detokenize(const struct llamad_tokenizer *tok, const char *body, size_t len,
                            struct llamad_api_error *err)
{
    cJSON *root;
    if (api_parse_body(body, len, &root, err))
        return NULL;
    const cJSON *tokens = api_field(root, "tokens");
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = cJSON_IsArray(tokens)
                 ? 0
                 : api_invalid(err, "tokens", "'tokens' must be an array of token ids");
    if (!rc)
        rc = api_parse_ids(tokens, llamad_tokenizer_n_vocab(tok), "tokens", &ids, &n, err);
    cJSON_Delete(root);
    struct llamad_buf text = LLAMAD_BUF_INIT;
    if (!rc && llamad_detokenize(tok, -1, ids, n, &text))
        rc = api_no_memory(err);
    free(ids);
    char *json = NULL;
    if (!rc) {
        bool ok = true;
        cJSON *out = cJSON_CreateObject();
        put_text(&ok, out, "content", text.data, text.len);
        if (!(json = finish_json(ok, out)))
            api_no_memory(err);
    }
    llamad_buf_free(&text);
    return json;
}

char *llamad_api_prompt_json(const char *text, size_t len, struct llamad_api_error *err)
{
    bool ok = true;
    cJSON *out = cJSON_CreateObject();
    put_text(&ok, out, "prompt", text, len);
    char *json = finish_json(ok, out);
    if (!json)
        api_no_memory(err);
    return json;
}
