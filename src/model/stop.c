#include "llamad/model/stop.h"

#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"

struct stop_string {
    const char *bytes; /* into llamad_stop.storage */
    size_t len;
};

struct llamad_stop {
    struct stop_string *strs;
    size_t n;
    size_t max_len;
    char *storage;
    /* Text not yet released: always shorter than max_len between pushes,
     * since only a proper prefix of a stop string is held back. */
    struct llamad_buf pending;
    bool stopped;
};

struct llamad_stop *llamad_stop_create(const char *const *stops, const size_t *lens, size_t n)
{
    struct llamad_stop *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    s->strs = malloc((n ? n : 1) * sizeof *s->strs);
    s->storage = malloc(total ? total : 1);
    if (!s->strs || !s->storage) {
        llamad_stop_free(s);
        return NULL;
    }
    char *at = s->storage;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0)
            continue;
        memcpy(at, stops[i], lens[i]);
        s->strs[s->n++] = (struct stop_string){at, lens[i]};
        at += lens[i];
        if (lens[i] > s->max_len)
            s->max_len = lens[i];
    }
    return s;
}

void llamad_stop_free(struct llamad_stop *s)
{
    if (!s)
        return;
    llamad_buf_free(&s->pending);
    free(s->strs);
    free(s->storage);
    free(s);
}

/* Offset of the earliest stop string occurrence in `text`, or len when none. */
static size_t first_stop(const struct llamad_stop *s, const char *text, size_t len)
{
    size_t best = len;
    for (size_t i = 0; i < s->n; i++) {
        /* Searching only text[0, best + len_i) finds only earlier occurrences. */
        size_t span = best + s->strs[i].len < len ? best + s->strs[i].len : len;
        const char *hit = memmem(text, span, s->strs[i].bytes, s->strs[i].len);
        if (hit)
            best = (size_t)(hit - text);
    }
    return best;
}

static bool is_stop_prefix(const struct llamad_stop *s, const char *tail, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->strs[i].len > len && memcmp(s->strs[i].bytes, tail, len) == 0)
            return true;
    return false;
}

/* Length of the longest tail of `text` that is a proper prefix of a stop string. */
static size_t held_tail(const struct llamad_stop *s, const char *text, size_t len)
{
    size_t l = len < s->max_len - 1 ? len : s->max_len - 1;
    for (; l > 0; l--)
        if (is_stop_prefix(s, text + len - l, l))
            return l;
    return 0;
}

/* Moves the first n pending bytes to `out`. */
static int release(struct llamad_stop *s, size_t n, struct llamad_buf *out)
{
    int rc = llamad_buf_append(out, s->pending.data, n);
    if (rc == LLAMAD_OK)
        llamad_buf_consume(&s->pending, n);
    return rc;
}

int llamad_stop_push(struct llamad_stop *s, const char *text, size_t len, struct llamad_buf *out,
                     bool *stopped)
{
    *stopped = s->stopped;
    if (s->stopped)
        return LLAMAD_OK;
    if (s->n == 0)
        return llamad_buf_append(out, text, len);

    int rc = llamad_buf_append(&s->pending, text, len);
    if (rc != LLAMAD_OK)
        return rc;
    const char *p = s->pending.data;
    size_t n = s->pending.len;

    size_t hit = first_stop(s, p, n);
    if (hit < n) {
        rc = release(s, hit, out);
        if (rc != LLAMAD_OK)
            return rc;
        llamad_buf_clear(&s->pending);
        s->stopped = *stopped = true;
        return LLAMAD_OK;
    }
    return release(s, n - held_tail(s, p, n), out);
}

int llamad_stop_finish(struct llamad_stop *s, struct llamad_buf *out)
{
    if (s->stopped)
        return LLAMAD_OK;
    return release(s, s->pending.len, out);
}
