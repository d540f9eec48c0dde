/* Routing, authentication and the endpoints that answer at once (the chat
 * page, health, models, metrics) or after a job on the libuv thread pool (tokenize,
 * detokenize). Generation endpoints are in generate.c. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "job.h"
#include "llamad/base/error.h"
#include "llamad/server/api_response.h"
#include "llamad/server/origin.h"
#include "page.h"

enum route {
    ROUTE_NONE, /* no such path */
    ROUTE_PAGE, /* the chat page's files (page.h) */
    ROUTE_HEALTH,
    ROUTE_MODELS,
    ROUTE_METRICS,
    ROUTE_COMPLETIONS,
    ROUTE_CHAT,
    ROUTE_NATIVE,
    ROUTE_TOKENIZE,
    ROUTE_DETOKENIZE,
    ROUTE_APPLY_TEMPLATE,
};

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

/* Constant-time comparison: the time taken does not depend on where a guess
 * first differs. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (blen ? blen : 1)];
    return diff == 0;
}

/* Whether r carries a configured key (or needs none); r->tenant becomes the
 * key's number, from 1 (0: no keys, one tenant). */
static bool authorized(struct request *r, enum route route)
{
    const struct llamad_config *cfg = r->srv->cfg;
    /* the page asks its user for the key it then sends to the API */
    if (cfg->n_api_keys == 0 || route == ROUTE_HEALTH || route == ROUTE_PAGE)
        return true;
    const char *h = request_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    const char *key = h + 7;
    size_t len = strlen(key);
    uint32_t tenant = 0;
    for (size_t i = 0; i < cfg->n_api_keys; i++) { /* no early exit, no branch on a match */
        uint32_t match = same_secret(key, len, cfg->api_keys[i], strlen(cfg->api_keys[i]));
        uint32_t mask = 0u - match;
        tenant = (tenant & ~mask) | ((uint32_t)(i + 1) & mask);
    }
    r->tenant = tenant;
    return tenant != 0;
}

/* The route of r's path (ROUTE_NONE when there is none); *method_ok: whether
 * the path takes r's method, which r->allow then names. */
static enum route find_route(struct request *r, bool *method_ok)
{
    size_t n = strcspn(r->path, "?");
    enum route route = ROUTE_NONE;
    *method_ok = false;
    if (page_find(r->path, n)) {
        r->allow = "GET, HEAD";
        *method_ok = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
        return ROUTE_PAGE;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strlen(routes[i].path) != n || strncmp(routes[i].path, r->path, n) != 0)
            continue;
        route = routes[i].route;
        r->allow = routes[i].method;
        if (!strcmp(routes[i].method, r->method)) {
            *method_ok = true;
            break;
        }
    }
    return route;
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
        request_respond_no_memory(r);
        return;
    }
    request_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
                    out.len);
    llamad_buf_free(&out);
}

/* /tokenize, /detokenize and /apply-template run on the thread pool: a long text
 * must not hold up the loop. */
struct text_job {
    struct request_job job;
    enum route route;
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
        int rc = llamad_chat_render_text(srv->chat_template, srv->model->tokenizer, req.messages,
                                         req.n_messages, &req.tools, &text, msg, sizeof msg);
        if (rc == 0)
            json = llamad_api_prompt_json(text.data ? text.data : "", text.len, err);
        else if (rc == LLAMAD_ENOMEM)
            llamad_api_set_error(err, 500, "server_error", "", "", "out of memory");
        else
            llamad_api_set_error(err, 400, "invalid_request_error", "messages", "", "%s", msg);
        llamad_buf_free(&text);
    }
    llamad_api_request_free(&req);
    return json;
}

static void run_text_job(struct request_job *job)
{
    struct text_job *j = (struct text_job *)job;
    struct request *r = job->r;
    const struct llamad_tokenizer *tok = r->srv->model->tokenizer;
    const char *body = r->body.data ? r->body.data : "";
    if (j->route == ROUTE_TOKENIZE)
        j->json = llamad_api_tokenize(tok, body, r->body.len, &j->err);
    else if (j->route == ROUTE_DETOKENIZE)
        j->json = llamad_api_detokenize(tok, body, r->body.len, &j->err);
    else
        j->json = apply_template(r->srv, body, r->body.len, &j->err);
}

static void finish_text_job(struct request_job *job, bool answer)
{
    struct text_job *j = (struct text_job *)job;
    if (answer && j->json)
        request_respond_json(job->r, 200, j->json), j->json = NULL;
    else if (answer)
        request_respond_error(job->r, &j->err);
    free(j->json);
    free(j);
}

static void start_text_job(struct request *r, enum route route)
{
    struct text_job *j = calloc(1, sizeof(*j));
    if (!j) {
        request_respond_no_memory(r);
        return;
    }
    j->route = route;
    j->job.run = run_text_job;
    j->job.done = finish_text_job;
    request_start_job(r, &j->job);
}

static bool refuse_early(struct request *r, enum route route, bool method_ok)
{
    struct llamad_api_error e;
    if (r->srv->state == SERVER_DRAINING || r->srv->state == SERVER_STOPPING) {
        llamad_api_set_error(&e, 503, "server_error", "", "", "the server is shutting down");
    } else if (route == ROUTE_NONE) {
        llamad_api_set_error(&e, 404, "invalid_request_error", "", "", "no such endpoint: %s %s",
                             r->method, r->path);
    } else if (!method_ok) {
        llamad_api_set_error(&e, 405, "invalid_request_error", "", "", "%s is not allowed on %s",
                             r->method, r->path);
    } else if (!authorized(r, route)) {
        llamad_api_set_error(&e, 401, "invalid_request_error", "", "invalid_api_key",
                             "a valid API key is needed: send 'Authorization: Bearer KEY'");
    } else if (route != ROUTE_HEALTH && route != ROUTE_METRICS && route != ROUTE_PAGE &&
               r->srv->state == SERVER_LOADING) {
        llamad_api_set_error(&e, 503, "server_error", "", "", "the model is still loading");
    } else {
        return false;
    }
    request_respond_error(r, &e);
    return true;
}

/* Answers 421 or 403 to a request a browser sent for another site's page
 * (origin.h); a listed origin's gets CORS headers, and its preflight (OPTIONS)
 * is answered here, before any key is asked for: browsers send none with it. */
static bool refuse_cross_site(struct request *r, enum route route)
{
    const struct llamad_config *cfg = r->srv->cfg;
    const struct llamad_origin_policy policy = {
        .allowed = cfg->allowed_origins,
        .n_allowed = cfg->n_allowed_origins,
        /* the socket's own address: a socket from systemd names no --host */
        .loopback = llamad_address_is_loopback(r->srv->address),
    };
    const char *host = request_header(r, MHD_HTTP_HEADER_HOST);
    const char *origin = request_header(r, MHD_HTTP_HEADER_ORIGIN);
    struct llamad_api_error e;
    switch (llamad_origin_check(&policy, host, origin, request_header(r, "Sec-Fetch-Site"))) {
    case LLAMAD_ORIGIN_OK: return false;
    case LLAMAD_ORIGIN_CORS:
        r->cors_origin = origin;
        if (route == ROUTE_NONE || strcmp(r->method, "OPTIONS") != 0)
            return false;
        request_respond_preflight(r);
        return true;
    case LLAMAD_ORIGIN_FORBIDDEN:
        /* A link from another site's page to the chat page (a navigation
         * carries no Origin) opens it: the page is static, and frame-ancestors
         * keeps it out of frames. The API calls it makes are same-origin. */
        if (route == ROUTE_PAGE && !origin)
            return false;
        llamad_api_set_error(&e, 403, "invalid_request_error", "", "cross_origin",
                             "requests from web pages of other origins are refused (the "
                             "server's allowed_origins lists those it serves)");
        break;
    case LLAMAD_ORIGIN_MISDIRECTED:
        llamad_api_set_error(&e, 421, "invalid_request_error", "", "misdirected_request",
                             "this server listens on loopback and answers only to a loopback "
                             "Host (localhost, 127.0.0.1, [::1])");
        break;
    }
    request_respond_error(r, &e);
    return true;
}

/* On the headers alone, before the body is read (a refused body never is).
 * handle_request asks again: the state may change while the body arrives. */
static bool screen_request(struct request *r)
{
    bool method_ok;
    enum route route = find_route(r, &method_ok);
    return refuse_cross_site(r, route) ||
           (!(route == ROUTE_HEALTH && method_ok) && refuse_early(r, route, method_ok));
}

static void handle_request(struct request *r)
{
    bool method_ok;
    enum route route = find_route(r, &method_ok);
    if (refuse_cross_site(r, route))
        return;
    if (route == ROUTE_HEALTH && method_ok) {
        handle_health(r); /* also while loading or draining */
        return;
    }
    if (refuse_early(r, route, method_ok))
        return;
    switch (route) {
    case ROUTE_PAGE: page_serve(r, page_find(r->path, strcspn(r->path, "?"))); break;
    case ROUTE_MODELS:
        request_respond_json(r, 200, llamad_api_models_json(r->srv->model_id, r->srv->created));
        break;
    case ROUTE_METRICS: handle_metrics(r); break;
    case ROUTE_TOKENIZE:
    case ROUTE_DETOKENIZE:
    case ROUTE_APPLY_TEMPLATE: start_text_job(r, route); break;
    case ROUTE_COMPLETIONS: generate_start(r, LLAMAD_API_COMPLETIONS); break;
    case ROUTE_CHAT: generate_start(r, LLAMAD_API_CHAT); break;
    case ROUTE_NATIVE: generate_start(r, LLAMAD_API_NATIVE); break;
    case ROUTE_NONE:
    case ROUTE_HEALTH: break;
    }
}

/* The client left while r waited: its job need not start, its generation stops. */
static void hang_up(struct request *r)
{
    request_cancel_job(r);
    generate_cancel(r);
}

/* Only generation requests keep state of their own past their answer. */
const struct http_routes server_routes = {
    .screen = screen_request,
    .handle = handle_request,
    .hang_up = hang_up,
    .completed = generate_end,
};
