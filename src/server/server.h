/* The daemon's shared state and per-request state. Private to src/: http.c
 * (libmicrohttpd on the libuv loop), handlers.c (the endpoints) and main.c. */
#ifndef LLAMAD_SERVER_H
#define LLAMAD_SERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "llamad/server/api.h"
#include "llamad/base/buf.h"
#include "llamad/server/chat.h"
#include "llamad/server/config.h"
#include "llamad/engine/engine.h"
#include "llamad/server/metrics.h"
#include "llamad/model/model.h"

enum server_state { SERVER_LOADING, SERVER_READY, SERVER_DRAINING, SERVER_STOPPING };

enum route {
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

struct request;

struct server {
    uv_loop_t *loop;
    const struct llamad_config *cfg;
    enum server_state state;

    struct MHD_Daemon *mhd;
    uv_poll_t mhd_poll;   /* MHD's epoll descriptor */
    uv_timer_t mhd_timer; /* MHD's own timeouts */
    uv_timer_t tick;      /* once a second: keep-alive comments, drain deadline */
    uint16_t port;

    /* Engine -> loop: outboxes with new events. */
    uv_async_t wake;
    struct llamad_ready_list ready;

    struct llamad_model *model; /* NULL while loading */
    struct llamad_engine *engine;
    char *model_id;
    int64_t created;
    enum llamad_chat_template chat_template;
    struct llamad_metrics metrics;

    struct request *requests; /* every live request */
    uint64_t next_request_id;
    double drain_deadline;
    int exit_status;
};

/* Per HTTP request (MHD's request closure). */
struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    uint64_t id;
    char method[8];
    char path[64];
    enum route route;
    bool route_found;
    double t_start;
    struct llamad_buf body;
    bool body_too_large;
    int status;                  /* the status answered, for the log and metrics */
    struct MHD_Response *pending;/* to queue when MHD calls the handler again */

    bool suspended;
    uv_poll_t *hangup;           /* watches the socket while suspended */
    bool client_gone;
    bool work_pending;           /* a preparation job runs on the thread pool */

    /* Generation requests. */
    struct llamad_api_request api;
    struct llamad_api_reply reply;
    char reply_id[48];
    struct llamad_outbox *outbox;
    bool streaming;              /* the stream response was queued */
    bool reader_waiting;         /* the stream reader suspended the connection */
    bool finished;               /* the DONE event was handled */
    struct llamad_event *tokens, **tokens_tail; /* non-streamed: every TOKEN event */
    struct llamad_buf out;       /* streamed bytes not yet handed to MHD */
    size_t out_sent;
    size_t text_sent;            /* bytes of completion text streamed */
    double t_last_write;         /* the stream's latest bytes (keep-alive comments) */
    struct llamad_token_clock clock; /* started at t_start; counts the tokens generated */
    int32_t prompt_tokens;

    struct request *prev, *next;
};

/* http.c */
int server_listen(struct server *s, char *err, size_t errsz);
void server_close_listener(struct server *s);
void server_run_mhd(struct server *s);
void request_suspend(struct request *r);
void request_resume(struct request *r);
/* Answers with a complete body (copied) now, or once the handler runs again
 * when the connection is suspended. */
void request_respond(struct request *r, int status, const char *content_type, const char *body,
                     size_t len);
void request_respond_error(struct request *r, const struct llamad_api_error *e);

/* handlers.c */
void handle_request(struct request *r);
void handle_engine_events(struct request *r);
void handle_tick(struct server *s, double now);
void request_release_generation(struct request *r);

#endif
