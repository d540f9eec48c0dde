/* Stop strings over streamed text.
 *
 * Text arrives piece by piece (whole UTF-8 characters, from the detokenizer). The
 * matcher releases text as soon as it is certain not to be part of a stop string,
 * holds back a tail that could still be the beginning of one, and when a stop
 * string completes (possibly across many pieces) reports it and releases only the
 * text before it. A stop string is never part of the released text. */
#ifndef LLAMAD_STOP_H
#define LLAMAD_STOP_H

#include <stdbool.h>
#include <stddef.h>

#include "llamad/base/buf.h"

struct llamad_stop;

/* Copies the n stop strings (lens[i] bytes each; empty strings are ignored).
 * NULL when out of memory. n = 0 is valid: all text passes straight through. */
struct llamad_stop *llamad_stop_create(const char *const *stops, const size_t *lens, size_t n);
void llamad_stop_free(struct llamad_stop *s);

/* Feeds len bytes of new text. Appends the text now safe to release to `out`.
 * Sets *stopped when a stop string completed: `out` then ends right before its
 * first occurrence and the rest is dropped; further pushes release nothing.
 * Returns 0 or LLAMAD_ENOMEM. */
int llamad_stop_push(struct llamad_stop *s, const char *text, size_t len, struct llamad_buf *out,
                     bool *stopped);

/* The stream ended for another reason (EOS, length): releases the held-back tail. */
int llamad_stop_finish(struct llamad_stop *s, struct llamad_buf *out);

#endif
