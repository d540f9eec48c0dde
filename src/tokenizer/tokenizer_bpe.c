/* Byte-level BPE tokenizing ("gpt2" vocabularies: LLaMA-3's).
 *
 * Pieces are stored in GPT-2's byte-level spelling, one character per byte:
 * the bytes printable in Latin-1 ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF)
 * stand for themselves, the other 68 (controls, space, U+00A0, U+00AD) for
 * U+0100 onwards in byte order, so a piece holds no space ("Ġthe" is " the").
 *
 * Tokenizing: the pre-tokenizer (tokenizer_pretok.c) cuts the text into words.
 * A word that is itself a piece is that token, unmerged, as LLaMA-3's tokenizer
 * does ("ignore_merges": its merges do not reach every such word); otherwise the
 * word's bytes merge pairwise in the order of `tokenizer.ggml.merges`, lower
 * index first, leftmost pair among equals (tokenizer_merge.c).
 *
 * Control pieces never take part, so their text (<|eot_id|>) in a prompt stays
 * text. Bytes that are not valid UTF-8 form words of their own and
 * become their bytes' tokens: every byte of the text comes back from the ids. */
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/utf8.h"
#include "tokenizer_internal.h"
#include "tokenizer_merge.h"
#include "tokenizer_pretok.h"

#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_MERGES "tokenizer.ggml.merges"

/* A merge's priority is its rank as a float, exact up to 2^24. */
#define MAX_MERGES (1u << 24)

/* Every character of the byte-level spelling is below U+0144. */
#define SPELLING_CHARS (256 + 68)

/* Merge `rank` of pieces left and right, into piece result; rank -1: empty. */
struct merge_slot {
    int32_t left, right, rank, result;
};

struct llamad_bpe {
    struct llamad_pretok *pretok;
    struct merge_slot *merges;         /* open addressing on (left, right) */
    size_t mask;                       /* slot count - 1; the count is a power of two */
    uint16_t byte_char[256];           /* the character spelling each byte */
    int16_t char_byte[SPELLING_CHARS]; /* the byte a character spells; -1 for none */
    int32_t byte_token[256];           /* the piece of each byte's character */
};

/* ---- The byte-level spelling ---- */

static void make_spelling(struct llamad_bpe *b)
{
    for (int c = 0; c < SPELLING_CHARS; c++)
        b->char_byte[c] = -1;
    uint16_t next = 256;
    for (int i = 0; i < 256; i++) {
        bool printable = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
        b->byte_char[i] = printable ? (uint16_t)i : next++;
        b->char_byte[b->byte_char[i]] = (int16_t)i;
    }
}

/* Writes the UTF-8 of a spelling character (below U+0800); returns its length. */
static size_t put_char(uint16_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = (char)(0xC0 | c >> 6);
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

/* The byte the character at s[0..len) spells, or -1; *n gets the character's
 * length (of an invalid sequence: its maximal invalid subpart). */
static int spelled_byte(const struct llamad_bpe *b, const char *s, size_t len, size_t *n)
{
    const uint8_t *p = (const uint8_t *)s;
    if (llamad_utf8_next(s, len, n) != LLAMAD_UTF8_CHAR || *n > 2)
        return -1;
    unsigned c = *n == 1 ? p[0] : (unsigned)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    return c < SPELLING_CHARS ? b->char_byte[c] : -1;
}

int llamad_bpe_append_text(const struct llamad_tokenizer *t, struct llamad_buf *out,
                           const char *piece, size_t n)
{
    int rc = LLAMAD_OK;
    for (size_t i = 0, k; i < n && !rc; i += k) {
        int byte = spelled_byte(t->bpe, piece + i, n - i, &k);
        uint8_t u = (uint8_t)byte;
        /* A character outside the spelling stands for itself. */
        rc = byte >= 0 ? llamad_buf_append(out, &u, 1) : llamad_buf_append(out, piece + i, k);
    }
    return rc;
}

/* ---- Merges ---- */

static struct merge_slot *slot_of(const struct llamad_bpe *b, int32_t left, int32_t right)
{
    uint64_t h = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) * 0x9E3779B97F4A7C15u;
    for (size_t i = (size_t)(h >> 32) & b->mask;; i = (i + 1) & b->mask) {
        struct merge_slot *s = &b->merges[i];
        if (s->rank < 0 || (s->left == left && s->right == right))
            return s;
    }
}

static int32_t find_piece(const struct llamad_tokenizer *t, const char *s, size_t n)
{
    return llamad_piece_map_find(t, &t->merge, s, n);
}

/* Entry `rank`, "A B": A, B and AB must be pieces text can become. A pair listed twice
 * keeps its first rank. joined: room for two pieces. */
static int add_merge(const struct llamad_tokenizer *t, struct llamad_bpe *b, int32_t rank,
                     struct llamad_gguf_str e, char *joined, char *err, size_t errsz)
{
    const char *sp = e.len > 1 ? memchr(e.data + 1, ' ', e.len - 1) : NULL;
    int32_t left = -1, right = -1, result = -1;
    if (sp) {
        size_t n_left = (size_t)(sp - e.data), n_right = e.len - n_left - 1;
        left = find_piece(t, e.data, n_left);
        right = find_piece(t, sp + 1, n_right);
        if (left >= 0 && right >= 0) {
            memcpy(joined, e.data, n_left);
            memcpy(joined + n_left, sp + 1, n_right);
            result = find_piece(t, joined, n_left + n_right);
        }
    }
    if (result < 0)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "%s entry %d (\"%.*s\") is not two pieces of the vocabulary, joined "
                           "by a space, whose join is a piece too",
                           KEY_MERGES, (int)rank, e.len > 64 ? 64 : (int)e.len, e.data);
    struct merge_slot *s = slot_of(b, left, right);
    if (s->rank < 0)
        *s = (struct merge_slot){left, right, rank, result};
    return LLAMAD_OK;
}

static int load_merges(const struct llamad_gguf *g, const struct llamad_tokenizer *t,
                       struct llamad_bpe *b, char *err, size_t errsz)
{
    if (!llamad_gguf_find(g, KEY_MERGES))
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "no %s: a \"gpt2\" vocabulary needs them",
                           KEY_MERGES);
    const struct llamad_gguf_value *merges;
    int rc = llamad_gguf_get_array(g, KEY_MERGES, LLAMAD_GGUF_STRING, &merges, err, errsz);
    if (rc)
        return rc;
    uint64_t n = merges->arr.count;
    if (n > MAX_MERGES)
        return llamad_fail(err, errsz, LLAMAD_ERANGE, "%s has %llu entries, more than 2^24",
                           KEY_MERGES, (unsigned long long)n);
    size_t cap = 16;
    while (cap / 4 * 3 < n) /* at most three quarters full */
        cap *= 2;
    b->merges = malloc(cap * sizeof *b->merges);
    char *joined = malloc(2 * t->max_merge_len + 1);
    if (!b->merges || !joined) {
        free(joined);
        return LLAMAD_ENOMEM;
    }
    b->mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        b->merges[i].rank = -1;
    for (uint64_t r = 0; r < n && !rc; r++)
        rc = add_merge(t, b, (int32_t)r, llamad_gguf_array_get(merges, r).str, joined, err, errsz);
    free(joined);
    return rc;
}

/* ---- Loading ---- */

static int index_byte_pieces(const struct llamad_tokenizer *t, struct llamad_bpe *b, char *err,
                             size_t errsz)
{
    make_spelling(b);
    for (int i = 0; i < 256; i++) {
        char c[2];
        size_t n = put_char(b->byte_char[i], c);
        b->byte_token[i] = find_piece(t, c, n);
        if (b->byte_token[i] < 0)
            return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                               "the vocabulary has no piece \"%.*s\" for the byte 0x%02X, so "
                               "some text could not be tokenized",
                               (int)n, c, i);
    }
    return LLAMAD_OK;
}

static int load_pretok(const struct llamad_gguf *g, struct llamad_bpe *b, char *err, size_t errsz)
{
    if (!llamad_gguf_find(g, KEY_PRE))
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "no %s: which pre-tokenizer this \"gpt2\" vocabulary needs is unknown",
                           KEY_PRE);
    struct llamad_gguf_str pre;
    int rc = llamad_gguf_get_str(g, KEY_PRE, &pre, err, errsz);
    return rc ? rc : llamad_pretok_new(pre.data, pre.len, &b->pretok, err, errsz);
}

int llamad_bpe_load(const struct llamad_gguf *g, struct llamad_tokenizer *t, char *err,
                    size_t errsz)
{
    struct llamad_bpe *b = calloc(1, sizeof *b);
    if (!b)
        return LLAMAD_ENOMEM;
    t->bpe = b;
    int rc;
    if ((rc = load_pretok(g, b, err, errsz)) || (rc = index_byte_pieces(t, b, err, errsz)))
        return rc;
    return load_merges(g, t, b, err, errsz);
}

void llamad_bpe_free(struct llamad_bpe *b)
{
    if (!b)
        return;
    llamad_pretok_free(b->pretok);
    free(b->merges);
    free(b);
}

/* ---- Tokenizing ---- */

struct session {
    const struct llamad_tokenizer *t;
    const uint8_t *text;
    char *spelled; /* room for the longest piece and one more character */
    struct llamad_merger merger;
    struct llamad_token_sink *out;
};

/* Two runs merge when the merges list them; the earlier the entry, the sooner. */
static bool bpe_pair(const void *ctx, const struct llamad_merge_node *l,
                     const struct llamad_merge_node *r, float *priority, int32_t *id)
{
    const struct llamad_bpe *b = ctx;
    const struct merge_slot *s = slot_of(b, l->id, r->id);
    if (s->rank < 0)
        return false;
    *priority = -(float)s->rank;
    *id = s->result;
    return true;
}

/* The piece whose byte-level spelling is the word p[0..len), or -1. */
static int32_t whole_word(const struct session *s, const uint8_t *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n >= s->t->max_merge_len)
            return -1; /* longer than every piece */
        n += put_char(s->t->bpe->byte_char[p[i]], s->spelled + n);
    }
    return find_piece(s->t, s->spelled, n);
}

static bool bpe_keep(const void *ctx, const struct llamad_merge_node *n)
{
    const struct session *s = ctx;
    return llamad_from_text(s->t, n->id);
}

static void bpe_out(void *ctx, const struct llamad_merge_node *n)
{
    struct session *s = ctx;
    llamad_sink_put(s->out, n->id);
}

/* A pre-tokenizer's piece: one token when the vocabulary has it whole, else merged
 * from its bytes; a chat marker among the results is split back (llamad_from_text). */
static int word(void *ctx, size_t start, size_t len)
{
    struct session *s = ctx;
    const uint8_t *p = s->text + start;
    int32_t id = whole_word(s, p, len);
    if (id >= 0 && llamad_from_text(s->t, id)) {
        llamad_sink_put(s->out, id);
        return LLAMAD_OK;
    }
    int rc = llamad_merger_start(&s->merger, len);
    if (rc)
        return rc;
    for (size_t i = 0; i < len; i++)
        llamad_merger_push(&s->merger, (uint32_t)i, 1, s->t->bpe->byte_token[p[i]]);
    llamad_merger_run(&s->merger);
    llamad_merger_output(&s->merger, bpe_keep, bpe_out, s);
    return LLAMAD_OK;
}

int llamad_bpe_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len,
                        struct llamad_token_sink *out)
{
    struct session s = {
        .t = t,
        .text = (const uint8_t *)text,
        .spelled = malloc(t->max_merge_len + 2),
        .merger = LLAMAD_MERGER_INIT(bpe_pair, t->bpe),
        .out = out,
    };
    int rc = s.spelled ? llamad_pretok_split(t->bpe->pretok, text, len, word, &s) : LLAMAD_ENOMEM;
    free(s.spelled);
    llamad_merger_free(&s.merger);
    return rc;
}
