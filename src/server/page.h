/* The chat page at /: its HTML, stylesheet and script (src/server/page/),
 * compiled into the daemon at build time (page/embed.py writes the table), and
 * served with a strict Content-Security-Policy. Private to src/server/. */
#ifndef LLAMAD_PAGE_H
#define LLAMAD_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

struct page_file {
    const char *path;         /* "/", "/chat.js", ... */
    const char *content_type; /* with its charset */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, a hash of the bytes */
};

/* The generated table (page_files.c in the build directory). */
extern const struct page_file page_files[];
extern const size_t page_n_files;

/* The page's file at path (its first n bytes: no query), or NULL. */
const struct page_file *page_find(const char *path, size_t n);

/* Answers r (GET or HEAD) with f: 200 with its bytes, or 304 when the client's
 * If-None-Match names its ETag; the security headers either way. */
void page_serve(struct request *r, const struct page_file *f);

#endif
