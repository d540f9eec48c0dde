/* Server-sent events, as bytes arrive: lines framed, each event's data lines
 * joined, the event handed on when its blank line comes. */
#ifndef LLAMAD_CLI_SSE_H
#define LLAMAD_CLI_SSE_H

#include <stddef.h>

/* Called with one event's data, NUL-terminated (valid during the call only).
 * Returns 0 to go on, nonzero to stop reading. */
typedef int (*sse_event_fn)(const char *data, void *user);

struct sse {
    char *line; /* the line being received */
    size_t line_len, line_cap;
    char *data; /* the event's data lines so far, '\n' between them */
    size_t data_len, data_cap;
    int has_data;
    sse_event_fn on_event;
    void *user;
};

void sse_init(struct sse *s, sse_event_fn on_event, void *user);
/* Feeds bytes; returns 0, the callback's nonzero value, or -1 out of memory. */
int sse_feed(struct sse *s, const char *bytes, size_t n);
void sse_free(struct sse *s);

#endif
