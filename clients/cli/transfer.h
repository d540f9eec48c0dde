/* One streamed POST to the daemon, with libcurl, into a reply. */
#ifndef LLAMAD_CLI_TRANSFER_H
#define LLAMAD_CLI_TRANSFER_H

#include <signal.h>
#include <stddef.h>

#include "reply.h"

enum transfer_result {
    TRANSFER_OK,
    TRANSFER_SERVER_ERROR, /* a non-200 answer or an error event: in r->error */
    TRANSFER_STOPPED,      /* *stop became nonzero: the connection was dropped */
    TRANSFER_FAILED,       /* no answer (connection, protocol): in err */
};

/* POSTs the JSON body to url with the API key and the session id (NULL: none;
 * the session goes in an X-Session-Id header too, for a proxy that routes on
 * it), feeding the SSE answer to r as it arrives. While *stop is zero it waits; once nonzero it
 * drops the connection, which the daemon takes for a cancel. */
enum transfer_result transfer_post(const char *url, const char *api_key, const char *session,
                                   const char *body, struct reply *r, volatile sig_atomic_t *stop,
                                   char *err, size_t errsz);

#endif
