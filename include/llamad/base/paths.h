/* Where the bundled default model lives. */
#ifndef LLAMAD_PATHS_H
#define LLAMAD_PATHS_H

#include <stddef.h>

/* The bundled model's path: the source tree's models/ for a program run from the
 * build tree it was built in, the installed data directory otherwise. Both are
 * compiled in by meson. Writes into buf and returns it. */
const char *llamad_default_model_path(char *buf, size_t size);

#endif
