/* Routing, authentication and the endpoints that answer at once (health,
 * models, metrics) or after a job on the libuv thread pool (tokenize,
 * detokenize). Generation endpoints are in generate.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "llamad/base/error.h"
#include "llamad/base/log.h"
#include "server.h"

static const struct {
    const char *path;
    const char *method;
    enum route route;
} routes[] = {
    {"/health", "GET", ROUTE_HEALTH},
    {"/v1/models", "GET", ROUTE_MODELS},
    {"/metrics", "GET", ROUTE_METRICS},
    {"/v1/completions", "POST", ROUTE_COMPLETIONS},
    {"/v1/chat/completions", "POST", ROUTE_CHAT},
    {"/completion", "POST", ROUTE_NATIVE},
    {"/completions", "POST", ROUTE_NATIVE},
    {"/tokenize", "POST", ROUTE_TOKENIZE},
    {"/detokenize", "POST", ROUTE_DETOKENIZE},
    {"/apply-template", "POST", ROUTE_APPLY_TEMPLATE},
};

static void respond_json(struct request *r, int status, char *json)
{
    if (!json) {
        struct llamad_api_error e;
        llamad_api_set_error(&e, 500, "server_error", "", "", "out of memory");
        request_respond_error(r, &e);
        return;
    }
    request_respond(r, status, "application/json", json, strlen(json));
    free(json);
}

/* Constant-time comparison: the time taken does not depend on where a guess
 * first differs. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (blen ? blen : 1)];
    return diff == 0;
}

static bool authorized(struct request *r)
{
    const struct llamad_config *cfg = r->srv->cfg;
    if (cfg->n_api_keys == 0 || r->route == ROUTE_HEALTH)
        return true;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    const char *key = h + 7;
    size_t len = strlen(key);
    bool ok = false;
    for (size_t i = 0; i < cfg->n_api_keys; i++) /* no early exit */
        ok |= same_secret(key, len, cfg->api_keys[i], strlen(cfg->api_keys[i]));
    return ok;
}

static void find_route(struct request *r)
{
    size_t n = strcspn(r->path, "?");
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strlen(routes[i].path) != n || strncmp(routes[i].path, r->path, n) != 0)
            continue;
        path_known = true;
        r->route = routes[i].route;
        if (!strcmp(routes[i].method, r->method)) {
            r->route_found = true;
            return;
        }
    }
    r->route_found = false;
    if (!path_known)
        r->route = (enum route)-1;
}

static void handle_health(struct request *r)
{
    static const char *const bodies[] = {
        [SERVER_LOADING] = "{\"status\":\"loading\"}",
        [SERVER_READY] = "{\"status\":\"ok\"}",
        [SERVER_DRAINING] = "{\"status\":\"draining\"}",
        [SERVER_STOPPING] = "{\"status\":\"stopping\"}",
    };
    const char *body = bodies[r->srv->state];
    request_respond(r, r->srv->state == SERVER_READY ? 200 : 503, "application/json", body,
                    strlen(body));
}

static void handle_metrics(struct request *r)
{
    struct llamad_engine_stats es = {0};
    if (r->srv->engine)
        llamad_engine_stats(r->srv->engine, &es);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    if (llamad_metrics_render(&r->srv->metrics, &es, &out) != 0) {
        llamad_buf_free(&out);
        respond_json(r, 500, NULL);
        return;
    }
    request_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
                    out.len);
    llamad_buf_free(&out);
}

/* /tokenize, /detokenize and /apply-template run on the thread pool: a long text
 * must not hold up the loop. */
struct text_job {
    uv_work_t work;
    struct request *r;
    char *json;
    struct llamad_api_error err;
};

/* The prompt the model's chat template makes of the request's messages, as text. */
static char *apply_template(const struct server *srv, const char *body, size_t len,
                            struct llamad_api_error *err)
{
    struct llamad_api_request req;
    char *json = NULL;
    if (llamad_api_parse_messages(body, len, &req, err) == 0) {
        struct llamad_buf text = LLAMAD_BUF_INIT;
        char msg[LLAMAD_ERR_MAX];
        if (llamad_chat_render_text(srv->chat_template, srv->model->tokenizer, req.messages,
                                    req.n_messages, &text, msg, sizeof msg) == 0)
            json = llamad_api_prompt_json(text.data ? text.data : "", text.len, err);
        else
            llamad_api_set_error(err, 400, "invalid_request_error", "messages", "", "%s", msg);
        llamad_buf_free(&text);
    }
    llamad_api_request_free(&req);
    return json;
}

static void run_text_job(uv_work_t *w)
{
    struct text_job *j = w->data;
    struct request *r = j->r;
    const struct llamad_tokenizer *tok = r->srv->model->tokenizer;
    const char *body = r->body.data ? r->body.data : "";
    if (r->route == ROUTE_TOKENIZE)
        j->json = llamad_api_tokenize(tok, body, r->body.len, &j->err);
    else if (r->route == ROUTE_DETOKENIZE)
        j->json = llamad_api_detokenize(tok, body, r->body.len, &j->err);
    else
        j->json = apply_template(r->srv, body, r->body.len, &j->err);
}

static void finish_text_job(uv_work_t *w, int status)
{
    (void)status;
    struct text_job *j = w->data;
    struct request *r = j->r;
    r->work_pending = false;
    if (r->client_gone)
        request_resume(r);
    else if (j->json)
        respond_json(r, 200, j->json), j->json = NULL;
    else
        request_respond_error(r, &j->err);
    free(j->json);
    free(j);
    server_run_mhd(r->srv);
}

static void start_text_job(struct request *r)
{
    struct text_job *j = calloc(1, sizeof(*j));
    if (!j) {
        respond_json(r, 500, NULL);
        return;
    }
    j->r = r;
    j->work.data = j;
    request_suspend(r);
    r->work_pending = true;
    uv_queue_work(r->srv->loop, &j->work, run_text_job, finish_text_job);
}

static bool refuse_early(struct request *r)
{
    struct llamad_api_error e;
    if (r->srv->state == SERVER_DRAINING || r->srv->state == SERVER_STOPPING) {
        llamad_api_set_error(&e, 503, "server_error", "", "", "the server is shutting down");
    } else if ((int)r->route == -1) {
        llamad_api_set_error(&e, 404, "invalid_request_error", "", "",
                             "no such endpoint: %s %s", r->method, r->path);
    } else if (!r->route_found) {
        llamad_api_set_error(&e, 405, "invalid_request_error", "", "",
                             "%s is not allowed on %s", r->method, r->path);
    } else if (!authorized(r)) {
        llamad_api_set_error(&e, 401, "invalid_request_error", "", "invalid_api_key",
                             "a valid API key is needed: send 'Authorization: Bearer KEY'");
    } else if (r->body_too_large) {
        llamad_api_set_error(&e, 413, "invalid_request_error", "", "",
                             "the request body is larger than %zu bytes",
                             r->srv->cfg->max_body_size);
    } else if (r->route != ROUTE_HEALTH && r->route != ROUTE_METRICS &&
               r->srv->state == SERVER_LOADING) {
        llamad_api_set_error(&e, 503, "server_error", "", "", "the model is still loading");
    } else {
        return false;
    }
    request_respond_error(r, &e);
    return true;
}

void handle_request(struct request *r)
{
    find_route(r);
    if (r->route == ROUTE_HEALTH && r->route_found) {
        handle_health(r); /* also while loading or draining */
        return;
    }
    if (refuse_early(r))
        return;
    switch (r->route) {
    case ROUTE_MODELS:
        respond_json(r, 200, llamad_api_models_json(r->srv->model_id, r->srv->created));
        break;
    case ROUTE_METRICS:
        handle_metrics(r);
        break;
    case ROUTE_TOKENIZE:
    case ROUTE_DETOKENIZE:
    case ROUTE_APPLY_TEMPLATE:
        start_text_job(r);
        break;
    case ROUTE_COMPLETIONS:
    case ROUTE_CHAT:
    case ROUTE_NATIVE:
        generate_start(r);
        break;
    case ROUTE_HEALTH:
        break;
    }
}
