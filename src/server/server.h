/* The daemon's shared state: one struct server, set up by main.c and read by
 * every layer of the daemon (http.c, generate.c, handlers.c). Private to
 * src/server/. */
#ifndef LLAMAD_SERVER_H
#define LLAMAD_SERVER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "llamad/engine/engine.h"
#include "llamad/engine/ready.h"
#include "llamad/model/model.h"
#include "llamad/server/chat.h"
#include "llamad/server/config.h"
#include "llamad/server/metrics.h"

enum server_state { SERVER_LOADING, SERVER_READY, SERVER_DRAINING, SERVER_STOPPING };

struct request;     /* http.h */
struct http_routes; /* http.h */
struct http_conn;   /* http.c */

struct server {
    uv_loop_t *loop;
    const struct llamad_config *cfg;
    enum server_state state;

    struct MHD_Daemon *mhd;
    uv_poll_t mhd_poll;   /* MHD's epoll descriptor */
    uv_timer_t mhd_timer; /* MHD's own timeouts */
    uv_timer_t tick;      /* once a second: keep-alive comments, drain deadline */
    uint16_t port;
    char address[48]; /* where the listening socket is bound, as text (an IPv6 one fits) */
    bool inherited;   /* the socket is systemd's (sdlisten.h) */
    const struct http_routes *routes; /* what becomes of requests (server_listen) */

    /* Engine -> loop: outboxes with new events. */
    uv_async_t wake;
    struct llamad_ready_list ready;

    struct llamad_model *model; /* NULL while loading */
    struct llamad_engine *engine;
    char *model_id;
    int64_t created;
    enum llamad_chat_template chat_template;
    struct llamad_metrics metrics;

    struct request *requests;    /* every live request */
    struct http_conn *conns;     /* every open connection (http.c: the receive deadline) */
    unsigned long limit_refused; /* connections over the limits since t_limit_logged */
    double t_limit_logged;
    uint64_t next_request_id;
    double drain_deadline;
    int exit_status;
};

#endif
