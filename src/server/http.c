/* libmicrohttpd driven from the libuv loop (http.h): MHD runs in
 * external-event-loop mode, its epoll descriptor watched by a uv_poll_t and its
 * timeouts by a uv_timer_t. Requests that wait (for the thread pool or the
 * engine) are suspended connections; while suspended, the loop watches their
 * socket for hang-ups, which MHD cannot see then. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/base/log.h"
#include "llamad/server/api_response.h"

/* ---- MHD on the loop ---- */

static void on_mhd_timer(uv_timer_t *t);

/* Runs MHD's pending work and re-arms its timeout. */
void server_run_mhd(struct server *s)
{
    if (!s->mhd)
        return;
    MHD_run(s->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
        uv_timer_start(&s->mhd_timer, on_mhd_timer, ms, 0);
    else
        uv_timer_stop(&s->mhd_timer);
}

static void on_mhd_timer(uv_timer_t *t)
{
    server_run_mhd(t->data);
}

static void on_mhd_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    server_run_mhd(p->data);
}

/* ---- Suspension and hang-up watching ---- */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void stop_hangup_watch(struct request *r)
{
    if (r->hangup) {
        uv_poll_stop(r->hangup);
        uv_close((uv_handle_t *)r->hangup, free_handle);
        r->hangup = NULL;
    }
}

static void on_socket_event(uv_poll_t *p, int status, int events)
{
    struct request *r = p->data;
    bool gone = status < 0 || (events & UV_DISCONNECT);
    if (!gone && (events & UV_READABLE)) {
        char c;
        ssize_t n =
            recv(MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD)->connect_fd,
                 &c, 1, MSG_PEEK | MSG_DONTWAIT);
        gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        if (!gone) /* a pipelined request: MHD reads it later; stop polling for it */
            uv_poll_start(p, UV_DISCONNECT, on_socket_event);
    }
    if (!gone)
        return;
    llamad_debug("request %llu: client went away", (unsigned long long)r->id);
    r->client_gone = true;
    stop_hangup_watch(r);
    r->srv->routes->hang_up(r);
    if (!r->job)
        request_resume(r); /* MHD then closes the connection */
}

void request_suspend(struct request *r)
{
    if (r->suspended)
        return;
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->hangup = malloc(sizeof(*r->hangup));
    if (!ci || !r->hangup || uv_poll_init_socket(r->srv->loop, r->hangup, ci->connect_fd) != 0) {
        free(r->hangup);
        r->hangup = NULL;
        return;
    }
    r->hangup->data = r;
    uv_poll_start(r->hangup, UV_READABLE | UV_DISCONNECT, on_socket_event);
}

void request_resume(struct request *r)
{
    if (!r->suspended)
        return;
    stop_hangup_watch(r);
    r->suspended = false;
    MHD_resume_connection(r->conn);
}

void request_await(struct request *r)
{
    r->awaiting = true;
    request_suspend(r);
}

const char *request_header(const struct request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* ---- Responses ---- */

static void add_common_headers(struct server *s, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Server", "llamad");
    if (s->state == SERVER_DRAINING || s->state == SERVER_STOPPING)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

void request_respond(struct request *r, int status, const char *content_type, const char *body,
                     size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    add_common_headers(r->srv, resp);
    if (status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 405 && r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    r->status = status;
    r->awaiting = false;
    if (r->suspended) {
        if (r->pending)
            MHD_destroy_response(r->pending);
        r->pending = resp;
        request_resume(r);
        return;
    }
    MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
}

void request_respond_error(struct request *r, const struct llamad_api_error *e)
{
    char *json = llamad_api_error_json(e);
    static const char fallback[] = "{\"error\":{\"message\":\"out of memory\","
                                   "\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    request_respond(r, e->status, "application/json", json ? json : fallback,
                    json ? strlen(json) : sizeof fallback - 1);
    free(json);
}

void request_respond_no_memory(struct request *r)
{
    struct llamad_api_error e;
    llamad_api_set_error(&e, 500, "server_error", "", "", "out of memory");
    request_respond_error(r, &e);
}

void request_respond_json(struct request *r, int status, char *json)
{
    if (!json) {
        request_respond_no_memory(r);
        return;
    }
    request_respond(r, status, "application/json", json, strlen(json));
    free(json);
}

/* ---- Server-sent-event streams ---- */

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
    if (r->stream_ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (r->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    /* Nothing yet: park the connection until there is more. */
    r->reader_waiting = true;
    request_suspend(r);
    return 0;
}

bool request_stream_start(struct request *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, r, NULL);
    if (!resp) {
        request_respond_no_memory(r);
        return false;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "Server", "llamad");
    r->streaming = true;
    r->status = 200;
    r->t_last_write = llamad_now_seconds();
    /* The connection is suspended (it waited for the thread pool): the response
     * is queued when MHD calls the handler again. */
    r->pending = resp;
    request_resume(r);
    return true;
}

void request_stream_send(struct request *r, const char *data)
{
    if (!data)
        return;
    llamad_buf_append(&r->out, "data: ", 6);
    llamad_buf_append(&r->out, data, strlen(data));
    llamad_buf_append(&r->out, "\n\n", 2);
}

void request_stream_flush(struct request *r)
{
    r->t_last_write = llamad_now_seconds();
    if (r->reader_waiting) {
        r->reader_waiting = false;
        request_resume(r);
    }
}

void request_stream_end(struct request *r)
{
    r->stream_ended = true;
    request_stream_flush(r);
}

void server_finish_suspended(struct server *s)
{
    for (struct request *r = s->requests; r; r = r->next)
        if (r->suspended) {
            if (!r->pending && !r->streaming)
                r->client_gone = true;
            request_resume(r);
        }
    for (int i = 0; i < 8 && s->requests; i++)
        server_run_mhd(s);
}

void server_keep_streams_alive(struct server *s, double now)
{
    const double every = s->cfg->sse_keepalive;
    for (struct request *r = s->requests; r; r = r->next) {
        if (every > 0 && r->streaming && !r->stream_ended && !r->client_gone &&
            now - r->t_last_write >= every) {
            llamad_buf_append(&r->out, ": keep-alive\n\n", 14);
            request_stream_flush(r);
        }
    }
}

/* ---- Request lifecycle ---- */

static void link_request(struct server *s, struct request *r)
{
    r->next = s->requests;
    if (s->requests)
        s->requests->prev = r;
    s->requests = r;
}

static void unlink_request(struct server *s, struct request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        s->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static struct request *new_request(struct server *s, struct MHD_Connection *conn,
                                   const char *method, const char *url)
{
    struct request *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->srv = s;
    r->conn = conn;
    r->refs = 1; /* MHD's */
    r->id = ++s->next_request_id;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    r->t_start = llamad_now_seconds();
    r->clock.last = r->t_start;
    link_request(s, r);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    struct server *s = cls;
    struct request *r = *req_cls;
    if (!r) {
        r = new_request(s, conn, method, url);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        return MHD_YES; /* MHD calls again, with the body if there is one */
    }
    if (*upload_data_size > 0) {
        if (r->body.len + *upload_data_size > s->cfg->max_body_size)
            r->body_too_large = true;
        else if (llamad_buf_append(&r->body, upload_data, *upload_data_size) != LLAMAD_OK)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->client_gone)
        return MHD_NO;
    if (r->pending) {
        enum MHD_Result ok = MHD_queue_response(conn, (unsigned)r->status, r->pending);
        MHD_destroy_response(r->pending);
        r->pending = NULL;
        return ok;
    }
    if (r->job || r->awaiting) {
        request_suspend(r); /* resumed before there is an answer: wait again */
        return MHD_YES;
    }
    if (r->status)
        return MHD_YES;
    s->routes->handle(r);
    return MHD_YES;
}

static void log_request(const struct request *r)
{
    llamad_info("request id=%llu method=%s path=%s status=%d prompt_tokens=%d "
                "completion_tokens=%d duration_ms=%.1f%s",
                (unsigned long long)r->id, r->method, r->path, r->status, r->prompt_tokens,
                r->clock.tokens, (llamad_now_seconds() - r->t_start) * 1e3,
                r->client_gone ? " client_gone=1" : "");
}

void request_retain(struct request *r)
{
    r->refs++;
}

void request_release(struct request *r)
{
    if (--r->refs > 0)
        return;
    struct server *s = r->srv;
    s->routes->completed(r, r->completed_ok);
    if (r->status == 0)
        r->status = 499; /* closed before an answer (nginx's convention) */
    llamad_metrics_count_request(&s->metrics, r->status);
    llamad_histogram_observe(&s->metrics.request_duration, llamad_now_seconds() - r->t_start);
    log_request(r);
    llamad_buf_free(&r->body);
    llamad_buf_free(&r->out);
    unlink_request(s, r);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct request *r = *req_cls;
    if (!r)
        return;
    r->completed_ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    stop_hangup_watch(r);
    if (r->pending)
        MHD_destroy_response(r->pending);
    r->pending = NULL;
    r->conn = NULL;
    r->suspended = false;
    *req_cls = NULL;
    request_release(r);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    llamad_warn("http: %s", line);
}

/* Resolves host:port into a socket address MHD binds. */
static int resolve(const char *host, int port, struct sockaddr_storage *addr, char *err,
                   size_t errsz)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "cannot resolve listen address '%s': %s",
                           host, gai_strerror(rc));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return LLAMAD_OK;
}

int server_listen(struct server *s, const struct http_routes *routes, char *err, size_t errsz)
{
    struct sockaddr_storage addr;
    s->routes = routes;
    int rc = resolve(s->cfg->host, s->cfg->port, &addr, err, errsz);
    if (rc)
        return rc;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, (uint16_t)s->cfg->port, NULL, NULL, on_request, s,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                              MHD_OPTION_EXTERNAL_LOGGER, log_mhd, s, MHD_OPTION_END);
    if (!s->mhd)
        return llamad_fail(err, errsz, LLAMAD_EIO, "cannot listen on %s:%d: %s", s->cfg->host,
                           s->cfg->port, strerror(errno));
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    const union MHD_DaemonInfo *epfd = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    s->port = port ? port->port : (uint16_t)s->cfg->port;
    uv_poll_init(s->loop, &s->mhd_poll, epfd->epoll_fd);
    s->mhd_poll.data = s;
    uv_poll_start(&s->mhd_poll, UV_READABLE, on_mhd_poll);
    uv_timer_init(s->loop, &s->mhd_timer);
    s->mhd_timer.data = s;
    server_run_mhd(s);
    return LLAMAD_OK;
}

/* Stops accepting: established connections go on. */
void server_close_listener(struct server *s)
{
    if (!s->mhd)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}
