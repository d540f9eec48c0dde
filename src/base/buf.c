#include "llamad/base/buf.h"

#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"

int llamad_buf_append(struct llamad_buf *b, const void *bytes, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) {
            if (cap > ((size_t)-1) / 2)
                return LLAMAD_ENOMEM;
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p)
            return LLAMAD_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return LLAMAD_OK;
}

int llamad_buf_reserve(struct llamad_buf *b, size_t n)
{
    if (n > (size_t)-1 - b->len - 1)
        return LLAMAD_ENOMEM;
    size_t cap = b->len + n + 1;
    if (cap <= b->cap)
        return LLAMAD_OK;
    char *p = realloc(b->data, cap);
    if (!p)
        return LLAMAD_ENOMEM;
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return LLAMAD_OK;
}

void llamad_buf_consume(struct llamad_buf *b, size_t n)
{
    if (n >= b->len) {
        llamad_buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void llamad_buf_clear(struct llamad_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void llamad_buf_free(struct llamad_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
