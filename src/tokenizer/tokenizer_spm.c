/* SentencePiece BPE tokenizing ("llama" vocabularies).
 *
 * The text (with a space put in front when add_space_prefix) has its spaces
 * replaced by U+2581 and is split into UTF-8 characters; then the adjacent pair
 * whose concatenation is the highest-scoring vocabulary piece is merged, over and
 * over (ties: leftmost pair; tokenizer_merge.c).
 *
 * Which pieces text can turn into follows SentencePiece: normal, user-defined and
 * unused pieces take part in merging; control (<s>), unknown (<unk>) and byte
 * (<0xNN>) pieces never do, so "<s>" in the text stays characters. An unused piece,
 * or a user-defined one that is a chat template's marker, is never emitted: it is
 * split back into the pieces it was merged from. A single
 * character that is no piece becomes its <0xNN> byte tokens (or <unk> when the
 * vocabulary lacks one of them). */
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/utf8.h"
#include "tokenizer_internal.h"
#include "tokenizer_merge.h"

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's stand-in for a space. */
#define SPACE_MARK "\xe2\x96\x81"
#define SPACE_MARK_LEN 3

struct spm_word {
    const struct llamad_tokenizer *t;
    char *text; /* the escaped text */
    struct llamad_token_sink *out;
};

/* Two runs merge when their text together is a piece; its score ranks the merge. */
static bool spm_pair(const void *ctx, const struct llamad_merge_node *l,
                     const struct llamad_merge_node *r, float *priority, int32_t *id)
{
    const struct spm_word *w = ctx;
    size_t len = (size_t)l->len + r->len;
    if (len > w->t->max_merge_len)
        return false;
    *id = llamad_piece_map_find(w->t, &w->t->merge, w->text + l->start, len);
    if (*id < 0)
        return false;
    *priority = w->t->score[*id];
    return true;
}

static void byte_fallback(struct spm_word *w, const struct llamad_merge_node *n)
{
    const uint8_t *p = (const uint8_t *)w->text + n->start;
    for (uint32_t i = 0; i < n->len; i++)
        if (w->t->byte_token[p[i]] < 0) {
            llamad_sink_put(w->out, w->t->unk); /* the load check guarantees an unk then */
            return;
        }
    for (uint32_t i = 0; i < n->len; i++)
        llamad_sink_put(w->out, w->t->byte_token[p[i]]);
}

static bool spm_keep(const void *ctx, const struct llamad_merge_node *n)
{
    const struct spm_word *w = ctx;
    return n->id >= 0 && llamad_from_text(w->t, n->id);
}

/* A run's piece, or (a character that is no piece text may give) its byte tokens. */
static void spm_out(void *ctx, const struct llamad_merge_node *n)
{
    struct spm_word *w = ctx;
    if (spm_keep(w, n))
        llamad_sink_put(w->out, n->id);
    else
        byte_fallback(w, n);
}

/* The text as SentencePiece sees it: the optional space prefix, spaces as U+2581. */
static char *escape_text(const struct llamad_tokenizer *t, const char *text, size_t len,
                         size_t *out_len)
{
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t marks = spaces + (t->add_space_prefix ? 1 : 0);
    size_t n = len - spaces + marks * SPACE_MARK_LEN;
    char *s = malloc(n), *w = s;
    if (!s)
        return NULL;
    if (t->add_space_prefix) {
        memcpy(w, SPACE_MARK, SPACE_MARK_LEN);
        w += SPACE_MARK_LEN;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(w, SPACE_MARK, SPACE_MARK_LEN);
            w += SPACE_MARK_LEN;
        } else {
            *w++ = text[i];
        }
    }
    *out_len = n;
    return s;
}

/* The escaped text's characters (an invalid byte is one on its own) start the word. */
static void push_chars(struct spm_word *w, struct llamad_merger *m, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n;
        if (llamad_utf8_next(w->text + i, len - i, &n) != LLAMAD_UTF8_CHAR)
            n = 1;
        llamad_merger_push(m, (uint32_t)i, (uint32_t)n,
                           llamad_piece_map_find(w->t, &w->t->merge, w->text + i, n));
        i += n;
    }
}

int llamad_spm_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len,
                        struct llamad_token_sink *out)
{
    /* The escaped text (3 bytes per space) must stay within the merger's range. */
    if (len > (INT32_MAX / 2 - SPACE_MARK_LEN) / SPACE_MARK_LEN)
        return LLAMAD_ERANGE;
    struct spm_word w = {.t = t, .out = out};
    struct llamad_merger m = LLAMAD_MERGER_INIT(spm_pair, &w);
    size_t n;
    int rc = LLAMAD_ENOMEM;
    w.text = escape_text(t, text, len, &n);
    if (w.text && (rc = llamad_merger_start(&m, n)) == LLAMAD_OK) {
        push_chars(&w, &m, n);
        llamad_merger_run(&m);
        llamad_merger_output(&m, spm_keep, spm_out, &w);
    }
    free(w.text);
    llamad_merger_free(&m);
    return rc;
}

int llamad_spm_append_text(struct llamad_buf *out, const char *p, size_t n)
{
    const char *end = p + n, *mark;
    while ((mark = memmem(p, (size_t)(end - p), SPACE_MARK, SPACE_MARK_LEN))) {
        int rc = llamad_buf_append(out, p, (size_t)(mark - p));
        if (rc || (rc = llamad_buf_append(out, " ", 1)))
            return rc;
        p = mark + SPACE_MARK_LEN;
    }
    return llamad_buf_append(out, p, (size_t)(end - p));
}
