/* The chat page's files, served (page.h). */
#include "page.h"

#include <string.h>

/* Nothing but the daemon's own files: no inline script or style, no other
 * origin, no forms, no framing. The page talks to the API of its own origin. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

const struct page_file *page_find(const char *path, size_t n)
{
    for (size_t i = 0; i < page_n_files; i++)
        if (strlen(page_files[i].path) == n && !strncmp(page_files[i].path, path, n))
            return &page_files[i];
    return NULL;
}

/* Whether an If-None-Match value names etag: "*", or one of its
 * comma-separated tags (a weak W/ one too: the comparison is weak, RFC 9110). */
static bool etag_matches(const char *value, const char *etag)
{
    size_t n = strlen(etag);
    while (value && *value) {
        value += strspn(value, " \t,");
        if (*value == '*')
            return true;
        if (!strncmp(value, "W/", 2))
            value += 2;
        if (!strncmp(value, etag, n) && strchr(" \t,", value[n]))
            return true;
        value = strchr(value, ',');
    }
    return false;
}

void page_serve(struct request *r, const struct page_file *f)
{
    const char *const headers[][2] = {
        {"Content-Security-Policy", csp},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"Cross-Origin-Opener-Policy", "same-origin"},
        /* kept, but asked after each time: a new daemon may serve a new page */
        {"Cache-Control", "no-cache"},
        {"ETag", f->etag},
    };
    size_t n = sizeof headers / sizeof headers[0];
    if (etag_matches(request_header(r, "If-None-Match"), f->etag))
        request_respond_static(r, 304, NULL, NULL, 0, headers, n);
    else
        request_respond_static(r, 200, f->content_type, f->data, f->len, headers, n);
}
