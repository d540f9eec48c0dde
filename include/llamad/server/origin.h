/* Whose page sent a request: the checks that keep a web page from using a
 * visitor's browser against the daemon. Browsers send Origin on every
 * cross-origin request and on every POST, and Sec-Fetch-Site on all of them;
 * curl and the SDKs send neither. A page on another origin is refused unless
 * the operator lists it (then CORS lets it read the answers); when the daemon
 * listens on loopback, a Host that names anything else is a DNS rebinding (a
 * name the attacker controls, pointed at 127.0.0.1) and is refused too. Pure
 * functions of header values, no I/O. */
#ifndef LLAMAD_ORIGIN_H
#define LLAMAD_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/* Whether name, a bare host name or address (a listen address; no port, no
 * brackets), is a loopback one: localhost, 127.x.x.x or ::1. */
bool llamad_address_is_loopback(const char *name);

/* Whether host, a Host header's value (name or address, [IPv6], an optional
 * :port), names the loopback. */
bool llamad_host_is_loopback(const char *host);

/* Whether origin, an Origin header's value, is the daemon's own as reached
 * through host (the Host header): http:// and the same name and port, port 80
 * written or not; names compare without case. */
bool llamad_origin_is_same(const char *origin, const char *host);

/* Whether a configured origin is well formed: http:// or https://, a host,
 * an optional :port, nothing after (browsers send exactly that). */
bool llamad_origin_valid(const char *origin);

struct llamad_origin_policy {
    char *const *allowed; /* origins answered with CORS (llamad_origin_valid ones) */
    size_t n_allowed;
    bool loopback; /* the daemon listens on a loopback address only */
};

enum llamad_origin_verdict {
    LLAMAD_ORIGIN_OK,          /* no browser page of another origin: serve it */
    LLAMAD_ORIGIN_CORS,        /* a listed origin: serve it with CORS headers */
    LLAMAD_ORIGIN_FORBIDDEN,   /* another site's page: 403 */
    LLAMAD_ORIGIN_MISDIRECTED, /* a Host not naming the loopback we listen on: 421 */
};

/* The verdict on a request with these headers (NULL: absent). */
enum llamad_origin_verdict llamad_origin_check(const struct llamad_origin_policy *p,
                                               const char *host, const char *origin,
                                               const char *fetch_site);

#endif
