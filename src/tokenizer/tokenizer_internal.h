/* What the tokenizer's files share (internal): the vocabulary and its indexes,
 * loaded by tokenizer.c and indexed by tokenizer_piece_map.c; SentencePiece tokenizing in
 * tokenizer_spm.c; byte-level BPE in tokenizer_bpe.c. */
#ifndef LLAMAD_SRC_TOKENIZER_INTERNAL_H
#define LLAMAD_SRC_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/base/buf.h"
#include "llamad/format/gguf.h"
#include "llamad/tokenizer/tokenizer.h"

/* Open-addressing hash table from piece text to token id. */
struct llamad_piece_map {
    int32_t *slots; /* -1 when empty */
    size_t mask;    /* slot count - 1; the count is a power of two */
};

struct llamad_bpe;

/* At most this many distinct tokens end generation: the file's EOS, EOT and EOM
 * and the control tokens of end_of_generation_texts (tokenizer.c). */
#define LLAMAD_MAX_EOG 16

struct llamad_tokenizer {
    enum llamad_vocab_type type;
    int32_t n_vocab;
    char *text;    /* every piece, each followed by a NUL */
    size_t *start; /* piece i is text[start[i] .. start[i] + len[i]) */
    size_t *len;
    float *score;
    uint8_t *kind;                 /* enum llamad_token_kind */
    struct llamad_piece_map all;   /* every non-empty piece */
    struct llamad_piece_map merge; /* the pieces text can become */
    size_t max_merge_len;          /* longest piece in `merge`, in bytes */
    int32_t byte_token[256];       /* <0xNN> pieces; -1 when the vocabulary lacks one */
    int32_t bos, eos, unk, eot, eom;
    int32_t eog[LLAMAD_MAX_EOG]; /* the tokens that end generation (llamad_tokenizer_is_eog) */
    int n_eog;
    int32_t marker[LLAMAD_CHAT_MARKERS]; /* user-defined pieces that are chat markers */
    int n_marker;
    bool add_bos, add_space_prefix;
    struct llamad_bpe *bpe; /* byte-level BPE's merges and pre-tokenizer; NULL for SPM */
};

static inline const char *llamad_piece_text(const struct llamad_tokenizer *t, int32_t id)
{
    return t->text + t->start[id];
}

/* Whether tokenizing text may give token id: a normal piece, or a user-defined one
 * that is no chat marker. Unused pieces and markers take part in merging all the
 * same, and are split back into the runs they were merged from. */
static inline bool llamad_from_text(const struct llamad_tokenizer *t, int32_t id)
{
    if (t->kind[id] == LLAMAD_TOKEN_NORMAL)
        return true;
    if (t->kind[id] != LLAMAD_TOKEN_USER_DEFINED)
        return false;
    for (int i = 0; i < t->n_marker; i++)
        if (t->marker[i] == id)
            return false;
    return true;
}

/* tokenizer_piece_map.c: indexes in m the non-empty pieces of t whose kind `wanted`
 * accepts (a piece that occurs twice keeps its first id); finds the token whose
 * piece is s[0..n) in m, or -1. */
int llamad_piece_map_build(const struct llamad_tokenizer *t, struct llamad_piece_map *m,
                           bool (*wanted)(enum llamad_token_kind));
int32_t llamad_piece_map_find(const struct llamad_tokenizer *t, const struct llamad_piece_map *m,
                              const char *s, size_t n);

/* Where tokenizing writes: ids beyond cap are counted, not stored. */
struct llamad_token_sink {
    int32_t *ids;
    size_t cap, n;
};

static inline void llamad_sink_put(struct llamad_token_sink *s, int32_t id)
{
    if (s->n < s->cap)
        s->ids[s->n] = id;
    s->n++;
}

/* tokenizer_spm.c: tokenizes len > 0 bytes of text the SentencePiece way. */
int llamad_spm_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len,
                        struct llamad_token_sink *out);
/* Appends a normal piece's text: U+2581 becomes a space. */
int llamad_spm_append_text(struct llamad_buf *out, const char *piece, size_t n);

/* tokenizer_bpe.c: reads the merges and the pre-tokenizer of a "gpt2" vocabulary
 * whose pieces t holds and indexes. */
int llamad_bpe_load(const struct llamad_gguf *g, struct llamad_tokenizer *t, char *err,
                    size_t errsz);
void llamad_bpe_free(struct llamad_bpe *b);
/* Tokenizes len > 0 bytes of text: the pre-tokenizer's pieces, each merged alone. */
int llamad_bpe_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len,
                        struct llamad_token_sink *out);
/* Appends a normal piece's text: its byte-level spelling back to bytes. */
int llamad_bpe_append_text(const struct llamad_tokenizer *t, struct llamad_buf *out,
                           const char *piece, size_t n);

#endif
