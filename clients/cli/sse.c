/* Server-sent events framing (the parts of the WHATWG rules a daemon's stream
 * uses: data fields, comments, CR LF or LF line ends). */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

void sse_init(struct sse *s, sse_event_fn on_event, void *user)
{
    *s = (struct sse){.on_event = on_event, .user = user};
}

void sse_free(struct sse *s)
{
    free(s->line);
    free(s->data);
}

static int append(char **buf, size_t *len, size_t *cap, const char *bytes, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t cap2 = *cap ? *cap : 256;
        while (*len + n + 1 > cap2)
            cap2 *= 2;
        char *b = realloc(*buf, cap2);
        if (!b)
            return -1;
        *buf = b;
        *cap = cap2;
    }
    memcpy(*buf + *len, bytes, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* One complete line, its end removed. */
static int line(struct sse *s, const char *text, size_t n)
{
    if (n == 0) { /* the blank line: the event is complete */
        if (!s->has_data)
            return 0;
        s->has_data = 0;
        s->data_len = 0;
        return s->on_event(s->data, s->user);
    }
    if (n < 5 || memcmp(text, "data:", 5) != 0)
        return 0; /* comments (":...") and fields other than data */
    text += 5;
    n -= 5;
    if (n && *text == ' ')
        text++, n--;
    if (s->has_data && append(&s->data, &s->data_len, &s->data_cap, "\n", 1))
        return -1;
    s->has_data = 1;
    return append(&s->data, &s->data_len, &s->data_cap, text, n);
}

int sse_feed(struct sse *s, const char *bytes, size_t n)
{
    while (n) {
        const char *nl = memchr(bytes, '\n', n);
        size_t part = nl ? (size_t)(nl - bytes) : n;
        if (append(&s->line, &s->line_len, &s->line_cap, bytes, part))
            return -1;
        if (!nl)
            return 0;
        size_t len = s->line_len;
        if (len && s->line[len - 1] == '\r')
            len--;
        s->line_len = 0;
        int rc = line(s, s->line, len);
        if (rc)
            return rc;
        bytes += part + 1;
        n -= part + 1;
    }
    return 0;
}
