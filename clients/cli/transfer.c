/* libcurl: a POST whose answer is fed to the SSE parser as it arrives, or kept
 * whole when it is an error. Ctrl-C is seen within one of curl's progress
 * calls (they come at least once a second), and aborting closes the socket. */
#include "transfer.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

#define MAX_ERROR_BODY (64 * 1024)

struct ctx {
    CURL *curl;
    struct reply *r;
    struct sse sse;
    long status;
    char *body; /* a non-200 answer */
    size_t body_len;
    volatile sig_atomic_t *stop;
};

static int keep_body(struct ctx *c, const char *bytes, size_t n)
{
    if (c->body_len + n > MAX_ERROR_BODY)
        n = MAX_ERROR_BODY - c->body_len;
    char *b = realloc(c->body, c->body_len + n + 1);
    if (!b)
        return -1;
    memcpy(b + c->body_len, bytes, n);
    c->body = b;
    c->body_len += n;
    b[c->body_len] = '\0';
    return 0;
}

static size_t on_data(char *bytes, size_t size, size_t n, void *user)
{
    struct ctx *c = user;
    if (*c->stop)
        return 0; /* anything but n aborts the transfer */
    if (!c->status)
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
    int rc = c->status == 200 ? sse_feed(&c->sse, bytes, n) : keep_body(c, bytes, n);
    return rc ? 0 : size * n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const struct ctx *c = user;
    return *c->stop != 0;
}

enum transfer_result transfer_post(const char *url, const char *api_key, const char *session,
                                   const char *body, struct reply *r, volatile sig_atomic_t *stop,
                                   char *err, size_t errsz)
{
    struct ctx c = {.r = r, .stop = stop};
    char auth[1024], session_header[192], curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
        headers = curl_slist_append(headers, auth);
    }
    if (session && headers) { /* a proxy in front of replicas routes on it */
        snprintf(session_header, sizeof session_header, "X-Session-Id: %s", session);
        headers = curl_slist_append(headers, session_header);
    }
    c.curl = curl_easy_init();
    if (!c.curl || !headers) {
        snprintf(err, errsz, "out of memory");
        curl_slist_free_all(headers);
        return TRANSFER_FAILED;
    }
    sse_init(&c.sse, reply_event, r);
    curl_easy_setopt(c.curl, CURLOPT_URL, url);
    curl_easy_setopt(c.curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c.curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c.curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c.curl, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(c.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c.curl, CURLOPT_XFERINFODATA, &c);
    curl_easy_setopt(c.curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c.curl, CURLOPT_NOSIGNAL, 1L); /* our SIGINT handler stays ours */
    curl_easy_setopt(c.curl, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode rc = curl_easy_perform(c.curl);
    r->t_end = reply_now();

    enum transfer_result result = TRANSFER_OK;
    if (*stop) {
        result = TRANSFER_STOPPED;
    } else if (rc != CURLE_OK) {
        snprintf(err, errsz, "%s: %s", url, *curl_err ? curl_err : curl_easy_strerror(rc));
        result = TRANSFER_FAILED;
    } else if (c.status != 200) {
        reply_set_error(r, c.status, c.body ? c.body : "");
        result = TRANSFER_SERVER_ERROR;
    } else if (r->error) {
        result = TRANSFER_SERVER_ERROR;
    } else if (!r->done) {
        snprintf(err, errsz, "%s: the stream ended before its [DONE]", url);
        result = TRANSFER_FAILED;
    }
    sse_free(&c.sse);
    free(c.body);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c.curl);
    return result;
}
