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
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "http.h"
#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/base/log.h"
#include "llamad/server/api_response.h"
#include "sdlisten.h"

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

struct header_count {
    const char *name;
    int n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    (void)value;
    struct header_count *c = cls;
    c->n += key && !strcasecmp(key, c->name);
    return MHD_YES;
}

int request_header_count(const struct request *r, const char *name)
{
    struct header_count c = {name, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &c);
    return c.n;
}

/* ---- Responses ---- */

static void add_common_headers(struct server *s, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Server", "llamad");
    if (s->state == SERVER_DRAINING || s->state == SERVER_STOPPING)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* With allowed origins every answer depends on the Origin (a cache must not
 * give one origin's answer to another); a listed origin's page may read it. */
static void add_cors_headers(const struct request *r, struct MHD_Response *resp)
{
    if (r->srv->cfg->n_allowed_origins > 0)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    if (r->cors_origin)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, r->cors_origin);
}

/* Sends resp (NULL: nothing to send) with the headers every answer carries now,
 * or keeps it for when MHD calls the handler again. */
static void respond_with(struct request *r, int status, const char *content_type,
                         struct MHD_Response *resp)
{
    if (!resp)
        return;
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    add_common_headers(r->srv, resp);
    add_cors_headers(r, resp);
    if (status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 405 && r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (status == 413) /* the rest of the body is not read: the connection cannot go on */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
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

/* The error when there is no memory to make one. */
static const char no_memory_json[] = "{\"error\":{\"message\":\"out of memory\","
                                     "\"type\":\"server_error\",\"param\":null,\"code\":null}}";

void request_respond(struct request *r, int status, const char *content_type, const char *body,
                     size_t len)
{
    respond_with(r, status, content_type,
                 MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY));
}

void request_respond_static(struct request *r, int status, const char *content_type,
                            const void *body, size_t len, const char *const headers[][2],
                            size_t n_headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        request_respond_no_memory(r);
        return;
    }
    /* The headers are part of the answer (a security policy among them): never
     * the body without them. */
    for (size_t i = 0; i < n_headers; i++) {
        if (MHD_add_response_header(resp, headers[i][0], headers[i][1]) != MHD_YES) {
            MHD_destroy_response(resp);
            request_respond_no_memory(r);
            return;
        }
    }
    respond_with(r, status, content_type, resp);
}

void request_respond_preflight(struct request *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS, r->allow);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_HEADERS,
                                "Authorization, Content-Type");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_MAX_AGE, "3600");
    }
    respond_with(r, 204, NULL, resp);
}

void request_respond_error(struct request *r, const struct llamad_api_error *e)
{
    char *json = llamad_api_error_json(e);
    /* Without memory for the error, the answer is that error: a 500. */
    request_respond(r, json ? e->status : 500, "application/json", json ? json : no_memory_json,
                    json ? strlen(json) : sizeof no_memory_json - 1);
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
    /* MHD frees it once sent: a large answer (/tokenize) is never copied. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(json);
        request_respond_no_memory(r);
        return;
    }
    respond_with(r, status, "application/json", resp);
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
    if (r->client_gone || r->stream_broken)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (r->stream_ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
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
    add_cors_headers(r, resp);
    r->streaming = true;
    r->status = 200;
    r->t_last_write = llamad_now_seconds();
    /* The connection is suspended (it waited for the thread pool): the response
     * is queued when MHD calls the handler again. */
    r->pending = resp;
    request_resume(r);
    return true;
}

/* A stream that lost an event (no memory to make or buffer it) cannot go on as if
 * whole: an error event follows what was sent if it fits, the generation is
 * cancelled and the connection closes without the stream's end. */
static void break_stream(struct request *r)
{
    static const char event[] = "data: ";
    r->stream_broken = true;
    if (!llamad_buf_append(&r->out, event, sizeof event - 1) &&
        !llamad_buf_append(&r->out, no_memory_json, sizeof no_memory_json - 1))
        llamad_buf_append(&r->out, "\n\n", 2);
    r->srv->routes->hang_up(r);
}

void request_stream_send(struct request *r, const char *data)
{
    size_t len = r->out.len;
    if (r->stream_broken)
        return;
    if (data && !llamad_buf_append(&r->out, "data: ", 6) &&
        !llamad_buf_append(&r->out, data, strlen(data)) && !llamad_buf_append(&r->out, "\n\n", 2))
        return;
    if (len < r->out.len) { /* no half event: back to before it */
        r->out.len = len;
        r->out.data[len] = '\0';
    }
    break_stream(r);
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

/* ---- Connections: the time a request may take to arrive ---- */

/* One open connection (MHD's socket context). */
struct http_conn {
    struct MHD_Connection *conn;
    bool receiving;     /* its next request is on its way, or awaited */
    double t_receiving; /* since when */
    struct http_conn *prev, *next;
};

static void set_receiving(struct MHD_Connection *conn, bool receiving)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *c = ci ? ci->socket_context : NULL;
    if (c) {
        c->receiving = receiving;
        c->t_receiving = llamad_now_seconds();
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *s = cls;
    struct http_conn *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        if (!(c = calloc(1, sizeof *c)))
            return; /* it goes without a deadline */
        c->conn = conn;
        c->receiving = true;
        c->t_receiving = llamad_now_seconds();
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        *socket_context = c;
    } else if (c) {
        if (c->prev)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        free(c);
        *socket_context = NULL;
    }
}

void server_enforce_deadlines(struct server *s, double now)
{
    const double limit = s->cfg->request_timeout;
    if (limit <= 0)
        return;
    for (struct http_conn *c = s->conns; c; c = c->next) {
        if (!c->receiving || now - c->t_receiving < limit)
            continue;
        c->receiving = false;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        llamad_debug("closing a connection that sent no whole request in %.0f s", limit);
        /* MHD reads the end of the stream and closes the connection itself. */
        if (ci)
            shutdown(ci->connect_fd, SHUT_RDWR);
    }
}

/* ---- Request bodies ---- */

static void too_large(const struct request *r, struct llamad_api_error *e)
{
    llamad_api_set_error(e, 413, "invalid_request_error", "", "",
                         "the request body is larger than %zu bytes", r->srv->cfg->max_body_size);
}

/* A body over max_body_size by its Content-Length gets 413 before a byte of
 * it is read; one within it gets a buffer of exactly its size. MHD has refused
 * a malformed Content-Length already. */
static void check_content_length(struct request *r)
{
    const char *value = request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!value)
        return;
    unsigned long long n = strtoull(value, NULL, 10);
    struct llamad_api_error e;
    if (n > r->srv->cfg->max_body_size) {
        too_large(r, &e);
        request_respond_error(r, &e);
    } else if (n > 0 && llamad_buf_reserve(&r->body, (size_t)n) != LLAMAD_OK) {
        request_respond_no_memory(r);
    }
}

/* A chunked body past max_body_size: MHD (0.9.75) queues no response while a
 * body arrives, so the 413 is written to the socket here and the connection is
 * closed (MHD_NO) without reading the rest. */
static enum MHD_Result cut_body(struct request *r)
{
    struct llamad_api_error e;
    too_large(r, &e);
    char *json = llamad_api_error_json(&e);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    char head[160];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nServer: llamad\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     json ? strlen(json) : 0);
    if (json && ci && llamad_buf_append(&out, head, (size_t)n) == LLAMAD_OK &&
        llamad_buf_append(&out, json, strlen(json)) == LLAMAD_OK)
        (void)send(ci->connect_fd, out.data, out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    llamad_buf_free(&out);
    free(json);
    r->status = 413;
    return MHD_NO;
}

/* Appends a piece of the body (len + n <= max_body_size). A body of unknown
 * length (chunked) grows by doubling, but never past max_body_size. */
static int append_body(struct request *r, const char *data, size_t n)
{
    struct llamad_buf *b = &r->body;
    if (b->len + n >= b->cap) {
        size_t want = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
        if (want > r->srv->cfg->max_body_size)
            want = r->srv->cfg->max_body_size;
        if (llamad_buf_reserve(b, want - b->len) != LLAMAD_OK)
            return LLAMAD_ENOMEM;
    }
    return llamad_buf_append(b, data, n);
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
        fault_request_start(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, FAULT_HEADER));
        r = new_request(s, conn, method, url);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        check_content_length(r);
        if (!r->status)
            s->routes->screen(r);
        if (r->status) /* answered on its headers: its body is never read */
            set_receiving(conn, false);
        return MHD_YES; /* MHD calls again, with the body if there is one */
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->status)
            return MHD_YES;
        if (n > s->cfg->max_body_size - r->body.len)
            return cut_body(r);
        return append_body(r, upload_data, n) == LLAMAD_OK ? MHD_YES : MHD_NO;
    }
    set_receiving(conn, false); /* the whole request is in */
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
    struct request *r = *req_cls;
    fault_request_end();
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
    set_receiving(conn, true); /* a kept-alive connection's next request */
    request_release(r);
}

/* MHD says so for each connection over max_connections(_per_ip): a flood of
 * connections would flood the log, so the count is said at most once a minute. */
static bool limit_message(struct server *s, const char *line)
{
    if (!strstr(line, "connection limit"))
        return false;
    double now = llamad_now_seconds();
    s->limit_refused++;
    if (now - s->t_limit_logged >= 60) {
        llamad_warn("http: connection limit reached (max_connections, max_connections_per_ip): "
                    "%lu connection(s) refused since this was last said",
                    s->limit_refused);
        s->limit_refused = 0;
        s->t_limit_logged = now;
    }
    return true;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    if (!limit_message(cls, line))
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

/* Every connection is a descriptor: the soft limit is raised to the hard one,
 * and a max_connections that still does not fit is said at start. */
static void raise_fd_limit(int max_connections)
{
    const rlim_t spare = 64; /* the listener, the loop's own, the model file, logs */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)max_connections + spare > rl.rlim_cur)
        llamad_warn("max_connections is %d, but this process may open %llu descriptors in all: "
                    "raise its limit (LimitNOFILE=) or lower max_connections",
                    max_connections, (unsigned long long)rl.rlim_cur);
}

/* Where the listening socket is bound, whoever bound it: its port (--port 0
 * asks for any) and its address as text, which decides origin.h's Host check. */
static void learn_address(struct server *s)
{
    const union MHD_DaemonInfo *lfd = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    s->port = (uint16_t)s->cfg->port;
    snprintf(s->address, sizeof s->address, "%s", s->cfg->host);
    if (!lfd || getsockname(lfd->listen_fd, (struct sockaddr *)&addr, &len) != 0)
        return;
    if (addr.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&addr;
        inet_ntop(AF_INET, &in->sin_addr, s->address, sizeof s->address);
        s->port = ntohs(in->sin_port);
    } else if (addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, s->address, sizeof s->address);
        s->port = ntohs(in6->sin6_port);
    }
}

int server_listen(struct server *s, const struct http_routes *routes, char *err, size_t errsz)
{
    struct sockaddr_storage addr;
    int inherited;
    s->routes = routes;
    int rc = sd_listen_socket(&inherited, err, errsz);
    if (rc == LLAMAD_OK && inherited < 0)
        rc = resolve(s->cfg->host, s->cfg->port, &addr, err, errsz);
    if (rc)
        return rc;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (inherited < 0 && addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* A socket systemd passed is served as it is; --host and --port then say nothing. */
    struct MHD_OptionItem where[] = {
        inherited >= 0 ? (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, inherited, NULL}
                       : (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_END, 0, NULL},
    };
    raise_fd_limit(s->cfg->max_connections);
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)s->cfg->port, NULL, NULL, on_request, s,
        /* the logger first: MHD warns about the options before it otherwise */
        MHD_OPTION_EXTERNAL_LOGGER, log_mhd, s, MHD_OPTION_ARRAY, where,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)s->cfg->max_connections_per_ip, MHD_OPTION_END);
    if (!s->mhd && inherited >= 0)
        return llamad_fail(err, errsz, LLAMAD_EIO, "cannot serve the socket systemd passed: %s",
                           strerror(errno));
    if (!s->mhd)
        return llamad_fail(err, errsz, LLAMAD_EIO, "cannot listen on %s:%d: %s", s->cfg->host,
                           s->cfg->port, strerror(errno));
    learn_address(s);
    s->inherited = inherited >= 0;
    const union MHD_DaemonInfo *epfd = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
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
