/* Origin, Host and Sec-Fetch-Site checks (origin.h). */
#include "llamad/server/origin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A "host[:port]" or "[v6]:port" split up. */
struct authority {
    char name[256]; /* without brackets */
    long port;
};

static bool parse_port(const char *s, long *port)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 5 || s[n] != '\0')
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    *port = v;
    return v <= 65535;
}

/* The port is default_port when none is written. False when s is not of that
 * form (nothing may follow: no path, no user). */
static bool parse_authority(const char *s, long default_port, struct authority *a)
{
    const char *name = s, *end, *rest;
    if (*s == '[') {
        name = s + 1;
        end = strchr(name, ']');
        if (!end)
            return false;
        rest = end + 1;
    } else {
        end = name + strcspn(name, ":");
        rest = end;
    }
    size_t n = (size_t)(end - name);
    if (n == 0 || n >= sizeof a->name)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)name[i]) || strchr("/?#@[]\\", name[i]))
            return false;
    memcpy(a->name, name, n);
    a->name[n] = '\0';
    a->port = default_port;
    if (*rest == '\0')
        return true;
    return *rest == ':' && parse_port(rest + 1, &a->port);
}

bool llamad_address_is_loopback(const char *name)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (!strcasecmp(name, "localhost"))
        return true;
    if (inet_pton(AF_INET, name, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, name, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

bool llamad_host_is_loopback(const char *host)
{
    struct authority a;
    /* A bare IPv6 address has colons of its own: only [::1] is an IPv6 Host. */
    if (!parse_authority(host, 80, &a) || (host[0] != '[' && strchr(a.name, ':')))
        return false;
    return llamad_address_is_loopback(a.name);
}

bool llamad_origin_is_same(const char *origin, const char *host)
{
    static const char http[] = "http://";
    struct authority o, h;
    return host && strncasecmp(origin, http, sizeof http - 1) == 0 &&
           parse_authority(origin + sizeof http - 1, 80, &o) && parse_authority(host, 80, &h) &&
           o.port == h.port && !strcasecmp(o.name, h.name);
}

bool llamad_origin_valid(const char *origin)
{
    struct authority a;
    const char *rest = NULL;
    if (!strncasecmp(origin, "http://", 7))
        rest = origin + 7;
    else if (!strncasecmp(origin, "https://", 8))
        rest = origin + 8;
    return rest && parse_authority(rest, 0, &a);
}

/* Whether origin is one of the listed ones (the whole text, without case:
 * schemes and host names are case-insensitive, and ports are digits). */
static bool listed(const struct llamad_origin_policy *p, const char *origin)
{
    for (size_t i = 0; i < p->n_allowed; i++)
        if (!strcasecmp(p->allowed[i], origin))
            return true;
    return false;
}

enum llamad_origin_verdict llamad_origin_check(const struct llamad_origin_policy *p,
                                               const char *host, const char *origin,
                                               const char *fetch_site)
{
    /* No Host at all is HTTP/1.0 from a program, not a browser. */
    if (p->loopback && host && !llamad_host_is_loopback(host))
        return LLAMAD_ORIGIN_MISDIRECTED;
    if (origin && listed(p, origin))
        return LLAMAD_ORIGIN_CORS;
    if (origin && !llamad_origin_is_same(origin, host))
        return LLAMAD_ORIGIN_FORBIDDEN;
    if (fetch_site && !strcasecmp(fetch_site, "cross-site"))
        return LLAMAD_ORIGIN_FORBIDDEN;
    return LLAMAD_ORIGIN_OK;
}
