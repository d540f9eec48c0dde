/* Streaming detokenizer: token bytes go out only as whole, valid UTF-8 characters. */
#include "llamad/tokenizer/tokenizer.h"

#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/utf8.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

void llamad_detok_init(struct llamad_detok *d, const struct llamad_tokenizer *t, int32_t prev_token)
{
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->prev = prev_token;
}

/* The space SentencePiece put before the text shows up at the start of the first
 * piece after BOS; it was not part of the text. */
static bool drops_space(const struct llamad_detok *d)
{
    return d->prev >= 0 && d->prev == llamad_tokenizer_bos(d->tok) &&
           llamad_tokenizer_add_space_prefix(d->tok);
}

/* Appends the whole characters of s[0..n) to out, one U+FFFD per maximal invalid
 * subpart, and sets *held to the length of the unfinished character that ends s. */
static int release(const char *s, size_t n, struct llamad_buf *out, size_t *held)
{
    size_t i = 0;
    while (i < n) {
        size_t valid = llamad_utf8_valid_prefix(s + i, n - i), k;
        int rc = llamad_buf_append(out, s + i, valid);
        if (rc)
            return rc;
        i += valid;
        if (i == n || llamad_utf8_next(s + i, n - i, &k) == LLAMAD_UTF8_PARTIAL)
            break;
        if ((rc = llamad_buf_append(out, REPLACEMENT, sizeof REPLACEMENT - 1)))
            return rc;
        i += k;
    }
    *held = n - i;
    return LLAMAD_OK;
}

static void drop_byte(struct llamad_buf *b, size_t at)
{
    memmove(b->data + at, b->data + at + 1, b->len - at - 1);
    b->data[--b->len] = '\0';
}

int llamad_detok_push(struct llamad_detok *d, int32_t id, struct llamad_buf *out)
{
    struct llamad_buf bytes = LLAMAD_BUF_INIT;
    size_t base = out->len, held = 0;
    int rc = llamad_buf_append(&bytes, d->pending, d->n_pending);
    if (!rc)
        rc = llamad_token_to_bytes(d->tok, id, &bytes);
    if (!rc && drops_space(d) && bytes.len > d->n_pending && bytes.data[d->n_pending] == ' ')
        drop_byte(&bytes, d->n_pending);
    if (!rc)
        rc = release(bytes.data, bytes.len, out, &held);
    if (rc) {
        if (out->data) {
            out->len = base; /* the stream stays where it was */
            out->data[base] = '\0';
        }
    } else {
        memcpy(d->pending, bytes.data + bytes.len - held, held); /* held <= 3 */
        d->n_pending = (uint8_t)held;
        d->prev = id;
    }
    llamad_buf_free(&bytes);
    return rc;
}

int llamad_detok_flush(struct llamad_detok *d, struct llamad_buf *out)
{
    if (d->n_pending == 0)
        return LLAMAD_OK;
    /* The held bytes are the valid start of one character: one replacement. */
    int rc = llamad_buf_append(out, REPLACEMENT, sizeof REPLACEMENT - 1);
    if (!rc)
        d->n_pending = 0;
    return rc;
}

int llamad_detokenize(const struct llamad_tokenizer *t, int32_t prev_token, const int32_t *ids,
                      size_t n, struct llamad_buf *out)
{
    struct llamad_detok d;
    llamad_detok_init(&d, t, prev_token);
    size_t base = out->len;
    int rc = LLAMAD_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = llamad_detok_push(&d, ids[i], out);
    if (!rc)
        rc = llamad_detok_flush(&d, out);
    if (rc && out->data) {
        out->len = base;
        out->data[base] = '\0';
    }
    return rc;
}
