#include "sdlisten.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "llamad/base/error.h"

enum { SD_LISTEN_FDS_START = 3 };

/* A decimal count or pid, all of the text; -1 when it is not one. */
static long parse_number(const char *s)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    long v = strtol(s, &end, 10);
    return *end == '\0' ? v : -1;
}

static bool is_tcp_listener(int fd)
{
    int listening = 0, type = 0;
    socklen_t n = sizeof listening, m = sizeof type;
    struct sockaddr_storage addr;
    socklen_t alen = sizeof addr;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &n) == 0 && listening &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &m) == 0 && type == SOCK_STREAM &&
           getsockname(fd, (struct sockaddr *)&addr, &alen) == 0 &&
           (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
}

int sd_listen_socket(int *fd, char *err, size_t errsz)
{
    long pid = parse_number(getenv("LISTEN_PID"));
    long n = parse_number(getenv("LISTEN_FDS"));
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    *fd = -1;
    /* Meant for another process (a parent that was passed them): not ours. */
    if (pid != (long)getpid() || n <= 0)
        return LLAMAD_OK;
    if (n > 1)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "systemd passed %ld sockets; llamad serves one (one ListenStream=)", n);
    if (!is_tcp_listener(SD_LISTEN_FDS_START))
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "the socket systemd passed is not a listening TCP socket "
                           "(ListenStream= takes an address and port)");
    /* Shared with systemd, which only holds it: MHD wants it non-blocking. */
    int flags = fcntl(SD_LISTEN_FDS_START, F_GETFL);
    if (fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC) != 0 || flags < 0 ||
        fcntl(SD_LISTEN_FDS_START, F_SETFL, flags | O_NONBLOCK) != 0)
        return llamad_fail(err, errsz, LLAMAD_EIO, "cannot set up the socket systemd passed");
    *fd = SD_LISTEN_FDS_START;
    return LLAMAD_OK;
}
