/* systemd's socket passing (sd_listen_fds), spoken directly: the listening
 * socket a socket unit hands over as descriptor 3 with $LISTEN_FDS and
 * $LISTEN_PID. Private to src/server/. */
#ifndef LLAMAD_SDLISTEN_H
#define LLAMAD_SDLISTEN_H

#include <stddef.h>

/* Sets *fd to the passed socket (close-on-exec, non-blocking), or to -1 when
 * none was passed to this process. Fails when several were, or when it is not
 * a listening TCP socket. The variables are removed from the environment
 * either way, so no child takes them for its own. */
int sd_listen_socket(int *fd, char *err, size_t errsz);

#endif
