#include "generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "job.h"
#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/server/api_response.h"

/* A generation request's own state (its r->route_state). */
struct generation {
    struct llamad_api_request api;
    struct llamad_api_reply reply;
    char reply_id[48];
    struct llamad_outbox *outbox;
    bool finished;                              /* the DONE event was handled */
    struct llamad_event *tokens, **tokens_tail; /* non-streamed: every TOKEN event */
    size_t text_sent;                           /* bytes of completion text streamed */
    struct llamad_tool_stream tools;            /* streamed, reply.tools set: the calls */
};

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (uint64_t)time(NULL) ^ (uint64_t)clock();
    return v;
}

/* ---- Preparation on the thread pool: the prompt's token ids, max_tokens, the seed ---- */

struct prepare_job {
    struct request_job job;
    struct generation *g;
    struct llamad_api_error err;
    bool failed;
};

static bool prepare_prompt(struct prepare_job *j)
{
    struct request *r = j->job.r;
    const struct llamad_model *m = r->srv->model;
    struct llamad_api_request *a = &j->g->api;
    char err[LLAMAD_ERR_MAX] = "";
    int32_t *ids = NULL;
    size_t n = 0;
    if (a->gen.prompt) /* given as token ids (the parser refuses none) */
        return true;
    if (a->messages) {
        int rc = llamad_chat_render(r->srv->chat_template, m->tokenizer, a->messages, a->n_messages,
                                    &a->tools, &ids, &n, err, sizeof err);
        if (rc == LLAMAD_ENOMEM) {
            llamad_api_set_error(&j->err, 500, "server_error", "", "", "out of memory");
            return false;
        }
        if (rc != LLAMAD_OK) {
            llamad_api_set_error(&j->err, 400, "invalid_request_error", "messages", "", "%s", err);
            return false;
        }
    } else {
        const char *text = a->prompt ? a->prompt : "";
        bool bos = llamad_tokenizer_add_bos(m->tokenizer);
        int64_t need = llamad_tokenize(m->tokenizer, text, a->prompt_len, bos, NULL, 0), got = -1;
        if (need >= 0 && (ids = malloc((size_t)(need > 0 ? need : 1) * sizeof(int32_t))))
            got = llamad_tokenize(m->tokenizer, text, a->prompt_len, bos, ids, (size_t)need);
        if (got < 0) { /* both passes allocate as they go */
            free(ids);
            ids = NULL;
        }
        n = got > 0 ? (size_t)got : 0;
    }
    if (!ids) {
        llamad_api_set_error(&j->err, 500, "server_error", "", "", "out of memory");
        return false;
    }
    a->gen.prompt = ids;
    a->gen.n_prompt = (int32_t)n;
    if (n == 0) {
        llamad_api_set_error(&j->err, 400, "invalid_request_error", "prompt", "",
                             "the prompt is empty");
        return false;
    }
    return true;
}

static bool prepare_limits(struct prepare_job *j)
{
    struct request *r = j->job.r;
    const struct llamad_config *cfg = r->srv->cfg;
    struct llamad_gen_request *g = &j->g->api.gen;
    int32_t n_ctx = cfg->ctx_size, n_prompt = g->n_prompt;
    const char *param = j->g->api.messages ? "messages" : "prompt";
    if (n_prompt >= n_ctx) {
        llamad_api_set_error(&j->err, 400, "invalid_request_error", param,
                             "context_length_exceeded",
                             "This model's maximum context length is %d tokens. However, your "
                             "prompt has %d tokens, which leaves no room to generate.",
                             n_ctx, n_prompt);
        return false;
    }
    int32_t room = n_ctx - n_prompt;
    int32_t cap = cfg->max_tokens > 0 && cfg->max_tokens < room ? cfg->max_tokens : room;
    int32_t want = g->max_tokens < 0 ? cap : g->max_tokens;
    if (cfg->max_tokens > 0 && want > cfg->max_tokens) {
        llamad_api_set_error(&j->err, 400, "invalid_request_error", "max_tokens", "",
                             "max_tokens is %d; this server generates at most %d tokens per "
                             "request",
                             want, cfg->max_tokens);
        return false;
    }
    g->max_tokens = want < cap ? want : cap; /* past the context: finish_reason "length" */
    return true;
}

static void run_prepare(struct request_job *job)
{
    struct prepare_job *j = (struct prepare_job *)job;
    struct llamad_api_request *a = &j->g->api;
    j->failed = !prepare_prompt(j) || !prepare_limits(j);
    if (!a->seed_given)
        a->gen.sampling.seed = random_u64();
}

/* ---- Events from the engine ---- */

/* Sends a chunk that is due: NULL for it is no memory, which breaks the stream. */
static void send_owned(struct request *r, char *json)
{
    request_stream_send(r, json);
    free(json);
}

/* A streamed piece through the tool-call parser: its content as the token's text
 * (with the token's logprobs), then the calls it completed, each a head chunk and
 * an arguments chunk. */
static void stream_tool_piece(struct request *r, struct generation *g, struct llamad_event *e,
                              bool end)
{
    struct llamad_tool_piece piece = {LLAMAD_BUF_INIT, NULL, 0};
    if (llamad_tool_stream_feed(&g->tools, e->text, e->text_len, end, &piece) != 0) {
        llamad_tool_piece_free(&piece);
        send_owned(r, NULL); /* no memory: the stream breaks */
        return;
    }
    struct llamad_event content = *e;
    content.text = piece.content.data;
    content.text_len = piece.content.len;
    content.next = NULL;
    if (llamad_api_chunk_due(&g->reply, &content))
        send_owned(r, llamad_api_chunk_token_json(&g->reply, &content, g->text_sent));
    g->text_sent += content.text_len;
    for (size_t i = 0; i < piece.n_calls; i++) {
        send_owned(r, llamad_api_chunk_tool_call_json(&g->reply, &piece.calls[i], true));
        send_owned(r, llamad_api_chunk_tool_call_json(&g->reply, &piece.calls[i], false));
        g->reply.called = true;
    }
    llamad_tool_piece_free(&piece);
}

static void stream_token(struct request *r, struct generation *g, struct llamad_event *e)
{
    if (g->reply.tools) {
        stream_tool_piece(r, g, e, false);
        llamad_event_free(e);
        return;
    }
    if (llamad_api_chunk_due(&g->reply, e))
        send_owned(r, llamad_api_chunk_token_json(&g->reply, e, g->text_sent));
    g->text_sent += e->text_len;
    llamad_event_free(e);
}

static const char *cancel_message(const struct request *r)
{
    return r->srv->state == SERVER_DRAINING || r->srv->state == SERVER_STOPPING
               ? "the server is shutting down"
               : "the request was cancelled";
}

/* The error a DONE event stands for, when it is not a normal end. */
static bool done_error(const struct request *r, const struct llamad_event *done,
                       struct llamad_api_error *e)
{
    if (done->finish == LLAMAD_FINISH_ERROR) {
        int status = done->error_status ? done->error_status : 500;
        llamad_api_set_error(e, status, status < 500 ? "invalid_request_error" : "server_error", "",
                             "", "%s", done->error ? done->error : "generation failed");
        return true;
    }
    if (done->finish == LLAMAD_FINISH_CANCELLED) {
        llamad_api_set_error(e, 503, "server_error", "", "", "%s", cancel_message(r));
        return true;
    }
    return false;
}

/* Ends the stream, after its last events unless nobody reads them. */
static void stream_done(struct request *r, struct generation *g, struct llamad_event *done)
{
    struct llamad_api_error e;
    if (r->client_gone) {
        request_stream_end(r);
        return;
    }
    if (done_error(r, done, &e)) {
        send_owned(r, llamad_api_error_json(&e));
    } else {
        struct llamad_event tail = {.kind = LLAMAD_EVENT_TOKEN,
                                    .token = -1,
                                    .text = done->text,
                                    .text_len = done->text_len};
        if (g->reply.tools) { /* the end of the output: nothing is held back after it */
            stream_tool_piece(r, g, &tail, true);
        } else if (done->text_len) {
            send_owned(r, llamad_api_chunk_token_json(&g->reply, &tail, g->text_sent));
            g->text_sent += done->text_len;
        }
        send_owned(r, llamad_api_chunk_final_json(&g->reply, done));
        if (g->reply.include_usage)
            send_owned(r, llamad_api_chunk_usage_json(&g->reply, done));
    }
    if (g->api.kind != LLAMAD_API_NATIVE)
        request_stream_send(r, "[DONE]");
    request_stream_end(r);
}

static void respond_whole(struct request *r, struct generation *g, struct llamad_event *done)
{
    struct llamad_api_error e;
    if (done_error(r, done, &e)) {
        request_respond_error(r, &e);
        return;
    }
    if (done->text_len) { /* held-back text: one more piece of the completion */
        struct llamad_event *tail = calloc(1, sizeof(*tail));
        if (!tail) {
            request_respond_no_memory(r);
            return;
        }
        tail->kind = LLAMAD_EVENT_TOKEN;
        tail->token = -1;
        tail->text = done->text;
        tail->text_len = done->text_len;
        done->text = NULL;
        done->text_len = 0;
        *g->tokens_tail = tail;
        g->tokens_tail = &tail->next;
    }
    request_respond_json(r, 200, llamad_api_response_json(&g->reply, g->tokens, done));
}

void generate_events(struct request *r)
{
    struct generation *g = r->route_state;
    struct llamad_event *list = llamad_outbox_take(g->outbox);
    while (list) {
        struct llamad_event *e = list;
        list = e->next;
        e->next = NULL;
        if (e->kind == LLAMAD_EVENT_TOKEN) {
            llamad_metrics_token(&r->srv->metrics, &r->clock, llamad_now_seconds());
            if (r->streaming) {
                stream_token(r, g, e);
            } else {
                *g->tokens_tail = e;
                g->tokens_tail = &e->next;
            }
            continue;
        }
        g->finished = true;
        r->prompt_tokens = e->usage.prompt_tokens;
        r->srv->metrics.prompt_tokens += (uint64_t)e->usage.prompt_tokens;
        r->srv->metrics.completion_tokens += (uint64_t)e->usage.completion_tokens;
        if (r->streaming)
            stream_done(r, g, e);
        else if (!r->client_gone)
            respond_whole(r, g, e);
        llamad_event_free(e);
    }
    if (r->streaming)
        request_stream_flush(r);
}

/* ---- Start and end ---- */

static void fill_reply(struct request *r, struct generation *g)
{
    bool chat = g->api.kind == LLAMAD_API_CHAT;
    uint64_t a = random_u64(), b = random_u64();
    snprintf(g->reply_id, sizeof g->reply_id, "%s-%016llx%08llx", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)a, (unsigned long long)(b & 0xffffffffu));
    g->reply = (struct llamad_api_reply){
        .kind = g->api.kind,
        .id = g->reply_id,
        .created = (int64_t)time(NULL),
        .model = r->srv->model_id,
        .tok = r->srv->model->tokenizer,
        .logprobs = g->api.gen.logprobs,
        .top_logprobs = g->api.gen.top_logprobs,
        .include_usage = g->api.include_usage,
    };
    const struct llamad_tools *t = &g->api.tools;
    if (chat && t->n && t->choice != LLAMAD_TOOL_CHOICE_NONE) {
        g->reply.tools = t;
        g->reply.tool_syntax = llamad_chat_tool_syntax(r->srv->chat_template);
        g->reply.tool_seed = random_u64();
        llamad_tool_stream_init(&g->tools, g->reply.tool_syntax, t, g->reply.tool_seed);
    }
}

/* The request goes to the engine as it was parsed and prepared. */
static void submit(struct request *r, struct generation *g)
{
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_api_error e;
    r->prompt_tokens = g->api.gen.n_prompt;
    g->api.gen.tenant = r->tenant;
    g->outbox = llamad_outbox_new(r);
    int rc = g->outbox
                 ? llamad_engine_submit(r->srv->engine, &g->api.gen, g->outbox, err, sizeof err)
                 : LLAMAD_ENOMEM;
    if (rc == LLAMAD_OK) {
        if (!g->api.stream)
            request_await(r); /* until the DONE event */
        else if (request_stream_start(r) && g->api.kind == LLAMAD_API_CHAT)
            send_owned(r, llamad_api_chunk_first_json(&g->reply));
        return;
    }
    llamad_outbox_release(g->outbox);
    g->outbox = NULL;
    if (rc == LLAMAD_ERANGE)
        llamad_api_set_error(&e, 503, "server_error", "", "server_busy", "%s", err);
    else if (rc == LLAMAD_EINVAL)
        llamad_api_set_error(&e, 400, "invalid_request_error", "prompt", "context_length_exceeded",
                             "%s", err);
    else if (rc == LLAMAD_EUNSUPPORTED) /* more than the whole KV cache */
        llamad_api_set_error(&e, 400, "invalid_request_error", "max_tokens",
                             "context_length_exceeded", "%s", err);
    else
        llamad_api_set_error(&e, 500, "server_error", "", "", "%s", err);
    request_respond_error(r, &e);
}

static void finish_prepare(struct request_job *job, bool answer)
{
    struct prepare_job *j = (struct prepare_job *)job;
    if (answer && j->failed)
        request_respond_error(job->r, &j->err);
    else if (answer)
        submit(job->r, j->g);
    free(j);
}

static bool model_name_ok(const struct request *r, const struct generation *g,
                          struct llamad_api_error *e)
{
    const char *want = g->api.model;
    if (!r->srv->cfg->strict_model_name || !want || !strcmp(want, r->srv->model_id))
        return true;
    llamad_api_set_error(e, 404, "invalid_request_error", "model", "model_not_found",
                         "The model '%s' does not exist; this server serves '%s'", want,
                         r->srv->model_id);
    return false;
}

/* The session an X-Session-Id header names, given once at most (a proxy that
 * routes on it would see another value than the daemon). */
static int session_header(const struct request *r, struct generation *g, struct llamad_api_error *e)
{
    if (request_header_count(r, LLAMAD_SESSION_HEADER) > 1)
        return llamad_api_set_error(e, 400, "invalid_request_error", LLAMAD_SESSION_HEADER, "",
                                    "'" LLAMAD_SESSION_HEADER "' may be given once");
    return llamad_api_session_header(request_header(r, LLAMAD_SESSION_HEADER), &g->api, e);
}

/* Parses the body into r's generation state (answering when it is refused). */
static struct generation *parse(struct request *r, enum llamad_api_kind kind)
{
    const struct llamad_api_limits lim = {.n_vocab = r->srv->model->hp.n_vocab,
                                          .max_stops = 16,
                                          .max_stop_len = 256,
                                          .max_top_logprobs = 20,
                                          .tool_syntax =
                                              llamad_chat_tool_syntax(r->srv->chat_template)};
    struct llamad_api_error e;
    struct generation *g = calloc(1, sizeof(*g));
    if (!g) {
        request_respond_no_memory(r);
        return NULL;
    }
    g->tokens_tail = &g->tokens;
    r->route_state = g;
    if (llamad_api_parse_request(kind, r->body.data ? r->body.data : "", r->body.len, &lim, &g->api,
                                 &e) != 0 ||
        session_header(r, g, &e) != 0 || !model_name_ok(r, g, &e)) {
        request_respond_error(r, &e);
        return NULL;
    }
    return g;
}

void generate_start(struct request *r, enum llamad_api_kind kind)
{
    struct generation *g = parse(r, kind);
    if (!g)
        return;
    fill_reply(r, g);
    struct prepare_job *j = calloc(1, sizeof(*j));
    if (!j) {
        request_respond_no_memory(r);
        return;
    }
    j->g = g;
    j->job.run = run_prepare;
    j->job.done = finish_prepare;
    request_start_job(r, &j->job);
}

bool generate_submitted(const struct request *r)
{
    const struct generation *g = r->route_state;
    return g && g->outbox;
}

void generate_cancel(struct request *r)
{
    struct generation *g = r->route_state;
    if (g && g->outbox && !g->finished)
        llamad_engine_cancel(r->srv->engine, g->outbox);
}

bool generate_any_running(const struct server *s)
{
    for (const struct request *r = s->requests; r; r = r->next)
        if (r->job || generate_submitted(r))
            return true;
    return false;
}

void generate_cancel_all(struct server *s)
{
    for (struct request *r = s->requests; r; r = r->next)
        generate_cancel(r);
}

void generate_end(struct request *r, bool ok)
{
    struct generation *g = r->route_state;
    if (!g)
        return;
    if (!ok && g->outbox && !g->finished)
        r->client_gone = true;
    generate_cancel(r);
    if (g->outbox) {
        g->outbox->owner = NULL; /* the loop may still find it on the ready list */
        llamad_outbox_release(g->outbox);
    }
    llamad_event_free(g->tokens);
    llamad_tool_stream_free(&g->tools);
    llamad_api_request_free(&g->api);
    free(g);
    r->route_state = NULL;
}
