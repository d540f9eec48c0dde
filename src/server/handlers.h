/* The routes: what the daemon answers on each path, given to server_listen.
 * Sits above http.h (the answers) and generate.h (the generation endpoints).
 * Private to src/server/. */
#ifndef LLAMAD_HANDLERS_H
#define LLAMAD_HANDLERS_H

#include "http.h"

extern const struct http_routes server_routes;

#endif
