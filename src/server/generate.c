#include "generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/base/log.h"

#define COMPLETIONS_DEFAULT_MAX_TOKENS 16 /* OpenAI's default for /v1/completions */

static enum llamad_api_kind api_kind(enum route route)
{
    return route == ROUTE_CHAT ? LLAMAD_API_CHAT
                               : route == ROUTE_COMPLETIONS ? LLAMAD_API_COMPLETIONS
                                                            : LLAMAD_API_NATIVE;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (uint64_t)time(NULL) ^ (uint64_t)clock();
    return v;
}

/* ---- Preparation on the thread pool: the prompt's token ids and the engine request ---- */

struct prepare_job {
    uv_work_t work;
    struct request *r;
    struct llamad_gen_request gen;
    struct llamad_api_error err;
    bool failed;
};

static bool prepare_prompt(struct prepare_job *j)
{
    struct request *r = j->r;
    const struct llamad_model *m = r->srv->model;
    const struct llamad_api_request *a = &r->api;
    char err[LLAMAD_ERR_MAX] = "";
    int32_t *ids = NULL;
    size_t n = 0;
    if (a->messages) {
        if (llamad_chat_render(r->srv->chat_template, m->tokenizer, a->messages, a->n_messages,
                               &ids, &n, err, sizeof err) != LLAMAD_OK) {
            llamad_api_set_error(&j->err, 400, "invalid_request_error", "messages", "", "%s", err);
            return false;
        }
    } else if (a->prompt_ids) {
        ids = malloc((a->n_prompt_ids ? a->n_prompt_ids : 1) * sizeof(int32_t));
        if (ids) {
            memcpy(ids, a->prompt_ids, a->n_prompt_ids * sizeof(int32_t));
            n = a->n_prompt_ids;
        }
    } else {
        const char *text = a->prompt ? a->prompt : "";
        bool bos = llamad_tokenizer_add_bos(m->tokenizer);
        int64_t need = llamad_tokenize(m->tokenizer, text, a->prompt_len, bos, NULL, 0);
        if (need >= 0 && (ids = malloc((size_t)(need > 0 ? need : 1) * sizeof(int32_t))))
            n = (size_t)llamad_tokenize(m->tokenizer, text, a->prompt_len, bos, ids, (size_t)need);
    }
    if (!ids) {
        llamad_api_set_error(&j->err, 500, "server_error", "", "", "out of memory");
        return false;
    }
    j->gen.prompt = ids;
    j->gen.n_prompt = (int32_t)n;
    if (n == 0) {
        llamad_api_set_error(&j->err, 400, "invalid_request_error", "prompt", "",
                             "the prompt is empty");
        return false;
    }
    return true;
}

static bool prepare_limits(struct prepare_job *j)
{
    struct request *r = j->r;
    const struct llamad_config *cfg = r->srv->cfg;
    const struct llamad_api_request *a = &r->api;
    int32_t n_ctx = cfg->ctx_size, n_prompt = j->gen.n_prompt;
    const char *param = a->messages ? "messages" : "prompt";
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
    int32_t want = a->max_tokens;
    if (want < 0)
        want = a->kind == LLAMAD_API_COMPLETIONS ? COMPLETIONS_DEFAULT_MAX_TOKENS : cap;
    if (cfg->max_tokens > 0 && want > cfg->max_tokens) {
        llamad_api_set_error(&j->err, 400, "invalid_request_error", "max_tokens", "",
                             "max_tokens is %d; this server generates at most %d tokens per "
                             "request", want, cfg->max_tokens);
        return false;
    }
    j->gen.max_tokens = want < cap ? want : cap; /* past the context: finish_reason "length" */
    return true;
}

/* Moves the sampling settings, stops and logit bias from the parsed request. */
static void prepare_sampling(struct prepare_job *j)
{
    struct llamad_api_request *a = &j->r->api;
    struct llamad_gen_request *g = &j->gen;
    g->sampling = a->sampling;
    if (!a->seed_given)
        g->sampling.seed = random_u64();
    g->logit_bias = a->logit_bias;
    g->sampling.logit_bias = a->logit_bias;
    g->sampling.n_logit_bias = a->n_logit_bias;
    a->logit_bias = NULL;
    a->n_logit_bias = 0;
    g->stops = a->stops;
    g->stop_lens = a->stop_lens;
    g->n_stops = a->n_stops;
    a->stops = NULL;
    a->stop_lens = NULL;
    a->n_stops = 0;
    g->ignore_eos = a->ignore_eos;
    g->logprobs = a->logprobs;
    g->top_logprobs = a->top_logprobs;
    snprintf(g->session_id, sizeof g->session_id, "%s", a->session_id);
}

static void run_prepare(uv_work_t *w)
{
    struct prepare_job *j = w->data;
    j->failed = !prepare_prompt(j) || !prepare_limits(j);
    if (!j->failed)
        prepare_sampling(j);
}

/* ---- Streaming ---- */

static void append_sse(struct request *r, const char *json)
{
    if (!json)
        return;
    llamad_buf_append(&r->out, "data: ", 6);
    llamad_buf_append(&r->out, json, strlen(json));
    llamad_buf_append(&r->out, "\n\n", 2);
}

static void append_sse_owned(struct request *r, char *json)
{
    append_sse(r, json);
    free(json);
}

/* Hands the stream's bytes to MHD when its reader is waiting for them. */
static void wake_reader(struct request *r)
{
    r->t_last_write = llamad_now_seconds();
    if (r->reader_waiting) {
        r->reader_waiting = false;
        request_resume(r);
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct request *r = cls;
    size_t avail = r->out.len - r->out_sent;
    if (avail > 0) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, r->out.data + r->out_sent, n);
        r->out_sent += n;
        if (r->out_sent == r->out.len) {
            llamad_buf_clear(&r->out);
            r->out_sent = 0;
        }
        return (ssize_t)n;
    }
    if (r->finished)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (r->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    /* Nothing yet: park the connection until the engine has more. */
    r->reader_waiting = true;
    request_suspend(r);
    return 0;
}

static void start_stream(struct request *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, r, NULL);
    if (!resp) {
        struct llamad_api_error e;
        llamad_api_set_error(&e, 500, "server_error", "", "", "out of memory");
        request_respond_error(r, &e);
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "Server", "llamad");
    r->streaming = true;
    r->status = 200;
    append_sse_owned(r, llamad_api_chunk_first_json(&r->reply));
    r->t_last_write = llamad_now_seconds();
    /* The connection is suspended (it waited for the thread pool): the response
     * is queued when MHD calls the handler again. */
    r->pending = resp;
    request_resume(r);
}

/* ---- Events from the engine ---- */

static void stream_token(struct request *r, struct llamad_event *e)
{
    append_sse_owned(r, llamad_api_chunk_token_json(&r->reply, e, r->text_sent));
    r->text_sent += e->text_len;
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
        llamad_api_set_error(e, done->error_status ? done->error_status : 500, "server_error", "",
                             "", "%s", done->error ? done->error : "generation failed");
        return true;
    }
    if (done->finish == LLAMAD_FINISH_CANCELLED) {
        llamad_api_set_error(e, 503, "server_error", "", "", "%s", cancel_message(r));
        return true;
    }
    return false;
}

static void stream_done(struct request *r, struct llamad_event *done)
{
    struct llamad_api_error e;
    if (done_error(r, done, &e)) {
        append_sse_owned(r, llamad_api_error_json(&e));
    } else {
        if (done->text_len) {
            struct llamad_event tail = {.kind = LLAMAD_EVENT_TOKEN, .token = -1,
                                        .text = done->text, .text_len = done->text_len};
            append_sse_owned(r, llamad_api_chunk_token_json(&r->reply, &tail, r->text_sent));
            r->text_sent += done->text_len;
        }
        append_sse_owned(r, llamad_api_chunk_final_json(&r->reply, done));
        append_sse_owned(r, llamad_api_chunk_usage_json(&r->reply, done));
    }
    if (r->route != ROUTE_NATIVE)
        llamad_buf_append(&r->out, "data: [DONE]\n\n", 14);
}

static void respond_whole(struct request *r, struct llamad_event *done)
{
    struct llamad_api_error e;
    if (done_error(r, done, &e)) {
        request_respond_error(r, &e);
        return;
    }
    if (done->text_len) { /* held-back text: one more piece of the completion */
        struct llamad_event *tail = calloc(1, sizeof(*tail));
        if (tail) {
            tail->kind = LLAMAD_EVENT_TOKEN;
            tail->token = -1;
            tail->text = done->text;
            tail->text_len = done->text_len;
            done->text = NULL;
            done->text_len = 0;
            *r->tokens_tail = tail;
            r->tokens_tail = &tail->next;
        }
    }
    char *json = llamad_api_response_json(&r->reply, r->tokens, done);
    if (!json) {
        llamad_api_set_error(&e, 500, "server_error", "", "", "out of memory");
        request_respond_error(r, &e);
        return;
    }
    request_respond(r, 200, "application/json", json, strlen(json));
    free(json);
}

void handle_engine_events(struct request *r)
{
    struct llamad_event *list = llamad_outbox_take(r->outbox);
    while (list) {
        struct llamad_event *e = list;
        list = e->next;
        e->next = NULL;
        if (e->kind == LLAMAD_EVENT_TOKEN) {
            llamad_metrics_token(&r->srv->metrics, &r->clock, llamad_now_seconds());
            if (r->streaming) {
                stream_token(r, e);
            } else {
                *r->tokens_tail = e;
                r->tokens_tail = &e->next;
            }
            continue;
        }
        r->finished = true;
        r->prompt_tokens = e->usage.prompt_tokens;
        r->srv->metrics.prompt_tokens += (uint64_t)e->usage.prompt_tokens;
        r->srv->metrics.completion_tokens += (uint64_t)e->usage.completion_tokens;
        if (r->client_gone)
            ;
        else if (r->streaming)
            stream_done(r, e);
        else
            respond_whole(r, e);
        llamad_event_free(e);
    }
    if (r->streaming)
        wake_reader(r);
}

/* ---- Start and end ---- */

static void fill_reply(struct request *r)
{
    bool chat = r->api.kind == LLAMAD_API_CHAT;
    uint64_t a = random_u64(), b = random_u64();
    snprintf(r->reply_id, sizeof r->reply_id, "%s-%016llx%08llx", chat ? "chatcmpl" : "cmpl",
             (unsigned long long)a, (unsigned long long)(b & 0xffffffffu));
    r->reply = (struct llamad_api_reply){
        .kind = r->api.kind,
        .id = r->reply_id,
        .created = (int64_t)time(NULL),
        .model = r->srv->model_id,
        .tok = r->srv->model->tokenizer,
        .logprobs = r->api.logprobs,
        .top_logprobs = r->api.top_logprobs,
        .include_usage = r->api.include_usage,
    };
}

static void submit(struct request *r, struct prepare_job *j)
{
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_api_error e;
    r->prompt_tokens = j->gen.n_prompt;
    r->outbox = llamad_outbox_new(r);
    int rc = r->outbox ? llamad_engine_submit(r->srv->engine, &j->gen, r->outbox, err, sizeof err)
                       : LLAMAD_ENOMEM;
    if (rc == LLAMAD_OK) {
        if (r->api.stream)
            start_stream(r);
        /* else: stay suspended until the DONE event */
        return;
    }
    llamad_outbox_release(r->outbox);
    r->outbox = NULL;
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

static void finish_prepare(uv_work_t *w, int status)
{
    (void)status;
    struct prepare_job *j = w->data;
    struct request *r = j->r;
    r->work_pending = false;
    if (r->client_gone)
        request_resume(r);
    else if (j->failed)
        request_respond_error(r, &j->err);
    else
        submit(r, j);
    llamad_gen_request_clear(&j->gen);
    free(j);
    server_run_mhd(r->srv);
}

static bool model_name_ok(struct request *r, struct llamad_api_error *e)
{
    const char *want = r->api.model;
    if (!r->srv->cfg->strict_model_name || !want || !strcmp(want, r->srv->model_id))
        return true;
    llamad_api_set_error(e, 404, "invalid_request_error", "model", "model_not_found",
                         "The model '%s' does not exist; this server serves '%s'", want,
                         r->srv->model_id);
    return false;
}

void generate_start(struct request *r)
{
    struct llamad_api_error e;
    const struct llamad_model *m = r->srv->model;
    struct llamad_api_limits lim = {m->hp.n_vocab, 16, 256, 20};
    if (llamad_api_parse_request(api_kind(r->route), r->body.data ? r->body.data : "",
                                 r->body.len, &lim, &r->api, &e) != 0 ||
        !model_name_ok(r, &e)) {
        request_respond_error(r, &e);
        return;
    }
    fill_reply(r);
    struct prepare_job *j = calloc(1, sizeof(*j));
    if (!j) {
        llamad_api_set_error(&e, 500, "server_error", "", "", "out of memory");
        request_respond_error(r, &e);
        return;
    }
    j->r = r;
    j->work.data = j;
    request_suspend(r);
    r->work_pending = true;
    uv_queue_work(r->srv->loop, &j->work, run_prepare, finish_prepare);
}

void request_release_generation(struct request *r)
{
    if (r->outbox) {
        if (!r->finished)
            llamad_engine_cancel(r->srv->engine, r->outbox);
        r->outbox->owner = NULL; /* the loop may still find it on the ready list */
        llamad_outbox_release(r->outbox);
        r->outbox = NULL;
    }
    llamad_event_free(r->tokens);
    r->tokens = NULL;
    llamad_api_request_free(&r->api);
}

/* Every tick: an SSE comment on streams with nothing to say for sse_keepalive
 * seconds (a long prompt is being processed), so proxies keep the connection. */
void handle_tick(struct server *s, double now)
{
    const double every = s->cfg->sse_keepalive;
    for (struct request *r = s->requests; r; r = r->next) {
        if (every > 0 && r->streaming && !r->finished && !r->client_gone &&
            now - r->t_last_write >= every) {
            llamad_buf_append(&r->out, ": keep-alive\n\n", 14);
            wake_reader(r);
        }
    }
}
