/* HTTP: libmicrohttpd on the libuv loop, the requests, and the ways to answer
 * one (a whole body, a JSON body, an error object, a server-sent-event stream).
 * It knows nothing of routes: the layer above hands its struct http_routes to
 * server_listen and is called back with each request. Private to src/server/. */
#ifndef LLAMAD_HTTP_H
#define LLAMAD_HTTP_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "llamad/base/buf.h"
#include "llamad/server/api_request.h"
#include "llamad/server/metrics.h"
#include "server.h"

struct request_job; /* job.h */

/* Per HTTP request (MHD's request closure). */
struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    uint64_t id;
    char method[8];
    char path[64];
    const char *allow;       /* the methods the path takes, for a 405's Allow header */
    const char *cors_origin; /* a listed origin's page sent it: answers let that page read them */
    double t_start;
    struct llamad_buf body;
    int status;                   /* the status answered, for the log and metrics */
    struct MHD_Response *pending; /* to queue when MHD calls the handler again */

    /* r is freed when MHD is done with it and no job holds it (request_release):
     * MHD's reference and a job's. conn is NULL once MHD is done with it. */
    int refs;
    bool completed_ok; /* MHD is done: the answer went out whole */

    bool suspended;
    uv_poll_t *hangup; /* watches the socket while suspended */
    bool client_gone;
    struct request_job *job; /* job.h: a job on the thread pool; r stays suspended */
    bool awaiting;           /* request_await: resumed before its answer, it waits again */

    /* A server-sent-event stream (request_stream_start). */
    bool streaming;        /* the stream response was queued */
    bool stream_ended;     /* request_stream_end: nothing follows what is in out */
    bool stream_broken;    /* an event was lost: out goes, then the connection closes */
    bool reader_waiting;   /* the stream reader suspended the connection */
    struct llamad_buf out; /* streamed bytes not yet handed to MHD */
    size_t out_sent;
    double t_last_write; /* the stream's latest bytes (keep-alive comments) */

    /* The tokens of the answer, for the log line (the route counts them). */
    struct llamad_token_clock clock; /* started at t_start; counts the tokens generated */
    int32_t prompt_tokens;

    uint32_t tenant; /* the API key it came with (from 1; 0 without keys): its KV cache's */

    void *route_state; /* the route's own per-request state */
    struct request *prev, *next;
};

/* What becomes of requests: the layer above's callbacks (server_listen). */
struct http_routes {
    /* The headers are in, the body is not: answer r now (and return true) when
     * they alone refuse it; its body is then never read. */
    bool (*screen)(struct request *r);
    /* The body is in and r has no answer yet: answer it, now or later. */
    void (*handle)(struct request *r);
    /* The client went away while r was suspended (r->client_gone is set). */
    void (*hang_up)(struct request *r);
    /* MHD is done with r (ok: the answer went out whole) and no job holds it; r
     * is freed next. */
    void (*completed)(struct request *r, bool ok);
};

/* Listens on cfg's host and port; requests go to routes. */
int server_listen(struct server *s, const struct http_routes *routes, char *err, size_t errsz);
void server_close_listener(struct server *s);
void server_run_mhd(struct server *s);
/* An SSE comment on every stream that has been silent for sse_keepalive seconds
 * (a long prompt is being processed), so that proxies keep the connection. */
void server_keep_streams_alive(struct server *s, double now);

/* Closes every connection that has been sending its request for longer than
 * request_timeout seconds (since it connected, or since its previous answer). */
void server_enforce_deadlines(struct server *s, double now);

/* At shutdown: resumes every suspended request so MHD can finish it (one with
 * nothing to send counts as its client gone), and lets them write what they have. */
void server_finish_suspended(struct server *s);

/* A job holds r past its connection's end: r is freed at the last release. */
void request_retain(struct request *r);
void request_release(struct request *r);

void request_suspend(struct request *r);
void request_resume(struct request *r);
/* r's answer comes later, from outside MHD (the engine): r stays suspended, and
 * when it is resumed before it is answered it waits again. */
void request_await(struct request *r);
/* A request header's value, NULL when absent. */
const char *request_header(const struct request *r, const char *name);
/* How many times the header name (any case) is in r's request. */
int request_header_count(const struct request *r, const char *name);

/* Answers with a complete body (copied) now, or once the handler runs again
 * when the connection is suspended. */
void request_respond(struct request *r, int status, const char *content_type, const char *body,
                     size_t len);
/* Answers with a body that lives as long as the daemon (not copied; NULL with
 * len 0: none) and the extra headers given as name, value pairs. */
void request_respond_static(struct request *r, int status, const char *content_type,
                            const void *body, size_t len, const char *const headers[][2],
                            size_t n_headers);
/* Answers a CORS preflight of r->cors_origin: 204, the methods of r->allow,
 * the headers a client sends (Authorization, Content-Type). */
void request_respond_preflight(struct request *r);
/* Answers with json (malloc'd, freed here); NULL answers a 500 "out of memory". */
void request_respond_json(struct request *r, int status, char *json);
void request_respond_error(struct request *r, const struct llamad_api_error *e);
/* A 500 "out of memory" error. */
void request_respond_no_memory(struct request *r);

/* Answers with a server-sent-event stream (status 200) whose bytes follow as
 * they are sent. False when it could not start: r was answered with a 500. */
bool request_stream_start(struct request *r);
/* Adds one event, "data: DATA"; NULL (an event that could not be made) or no
 * memory to buffer it breaks the stream: an error event, then the connection
 * closes and the generation is cancelled. */
void request_stream_send(struct request *r, const char *data);
/* Hands what was sent to the stream's reader when it is waiting for more. */
void request_stream_flush(struct request *r);
/* Nothing follows what was sent: the stream ends after it. */
void request_stream_end(struct request *r);

#endif
