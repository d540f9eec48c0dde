/* A growable byte buffer, used wherever text is produced piece by piece. */
#ifndef LLAMAD_BUF_H
#define LLAMAD_BUF_H

#include <stddef.h>

struct llamad_buf {
    char *data; /* NUL-terminated whenever len > 0 or after any append */
    size_t len;
    size_t cap;
};

/* Braced initializers as macros: clang-format would spread them over lines. */
/* clang-format off */
#define LLAMAD_BUF_INIT {NULL, 0, 0}
/* clang-format on */

/* Appends n bytes; returns 0 or LLAMAD_ENOMEM (the buffer is unchanged then). */
int llamad_buf_append(struct llamad_buf *b, const void *bytes, size_t n);
/* Makes room for len + n bytes (and the NUL) in one allocation of exactly that
 * size when there is less, so that appends up to it never move or double the
 * buffer; returns 0 or LLAMAD_ENOMEM (the buffer is unchanged then). */
int llamad_buf_reserve(struct llamad_buf *b, size_t n);
/* Removes the first n bytes (n <= len). */
void llamad_buf_consume(struct llamad_buf *b, size_t n);
void llamad_buf_clear(struct llamad_buf *b);
void llamad_buf_free(struct llamad_buf *b);

#endif
