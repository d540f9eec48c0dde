/* Tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata.
 *
 * Supported: `tokenizer.ggml.model` = "llama" (SentencePiece BPE: merges by piece
 * score, the leading space as U+2581, byte fallback to <0xNN> tokens), and "gpt2"
 * (byte-level BPE: pieces in GPT-2's byte-to-character spelling, merges in the
 * order of `tokenizer.ggml.merges`) with the pre-tokenizer `tokenizer.ggml.pre` =
 * "llama-bpe" (LLaMA-3). Other vocabulary types and pre-tokenizers are refused at
 * load with a message naming them.
 *
 * Text handed to llamad_tokenize is always plain text: "<s>", "[INST]" or
 * "<|eot_id|>" inside it are characters, never control tokens. */
#ifndef LLAMAD_TOKENIZER_H
#define LLAMAD_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/base/buf.h"
#include "llamad/format/gguf.h"

enum llamad_vocab_type {
    LLAMAD_VOCAB_SPM = 1, /* tokenizer.ggml.model = "llama" */
    LLAMAD_VOCAB_BPE = 2, /* tokenizer.ggml.model = "gpt2" */
};

/* GGUF tokenizer.ggml.token_type values. */
enum llamad_token_kind {
    LLAMAD_TOKEN_NORMAL = 1,
    LLAMAD_TOKEN_UNKNOWN = 2,
    LLAMAD_TOKEN_CONTROL = 3,
    LLAMAD_TOKEN_USER_DEFINED = 4,
    LLAMAD_TOKEN_UNUSED = 5,
    LLAMAD_TOKEN_BYTE = 6,
};

struct llamad_tokenizer;

/* Builds the tokenizer from g's metadata (copies what it needs; g may be closed
 * afterwards). */
int llamad_tokenizer_load(const struct llamad_gguf *g, struct llamad_tokenizer **out, char *err,
                          size_t errsz);
void llamad_tokenizer_free(struct llamad_tokenizer *t);

enum llamad_vocab_type llamad_tokenizer_type(const struct llamad_tokenizer *t);
int32_t llamad_tokenizer_n_vocab(const struct llamad_tokenizer *t);
int32_t llamad_tokenizer_bos(const struct llamad_tokenizer *t); /* -1 when none */
int32_t llamad_tokenizer_eos(const struct llamad_tokenizer *t); /* -1 when none */
int32_t llamad_tokenizer_unk(const struct llamad_tokenizer *t); /* -1 when none */
bool llamad_tokenizer_add_bos(
    const struct llamad_tokenizer *t); /* tokenizer.ggml.add_bos_token, default true */
/* tokenizer.ggml.add_space_prefix of a SentencePiece vocabulary, default true (always
 * false for byte-level BPE): llamad_tokenize puts a space before the text, and the
 * detokenizer drops the space that starts the first piece after BOS. */
bool llamad_tokenizer_add_space_prefix(const struct llamad_tokenizer *t);
/* True for tokens that end generation: the file's EOS, EOT and EOM ids, and the
 * control tokens whose text ends a turn or a text in a known family
 * (<|eot_id|>, <|eom_id|>, <|end_of_text|>, </s>, <|im_end|>, ...). */
bool llamad_tokenizer_is_eog(const struct llamad_tokenizer *t, int32_t id);
/* 0 for an id outside the vocabulary. */
enum llamad_token_kind llamad_tokenizer_kind(const struct llamad_tokenizer *t, int32_t id);
/* The vocabulary entry as stored (e.g. "\xe2\x96\x81Once", "<0x0A>", "</s>", or in
 * byte-level spelling "\xc4\xa0Once" for " Once"); NUL-terminated.
 * NULL for an id outside the vocabulary. */
const char *llamad_tokenizer_piece(const struct llamad_tokenizer *t, int32_t id);
/* Looks a piece up exactly; -1 when absent. */
int32_t llamad_tokenizer_find(const struct llamad_tokenizer *t, const char *piece, size_t len);

/* The markers chat templates (server/chat.c) write as special tokens. Where a
 * vocabulary stores one as a user-defined piece, which text could merge into,
 * the tokenizer never makes it from text: as a token it comes only from a
 * template, never from what a user typed. */
enum llamad_chat_marker {
    LLAMAD_MARKER_INST,                /* [INST] */
    LLAMAD_MARKER_INST_END,            /* [/INST] */
    LLAMAD_MARKER_IM_START,            /* <|im_start|> */
    LLAMAD_MARKER_IM_END,              /* <|im_end|> */
    LLAMAD_MARKER_SYSTEM,              /* <|system|> */
    LLAMAD_MARKER_USER,                /* <|user|> */
    LLAMAD_MARKER_ASSISTANT,           /* <|assistant|> */
    LLAMAD_MARKER_START_HEADER,        /* <|start_header_id|> */
    LLAMAD_MARKER_END_HEADER,          /* <|end_header_id|> */
    LLAMAD_MARKER_EOT,                 /* <|eot_id|> */
    LLAMAD_MARKER_BOS,                 /* <s> */
    LLAMAD_MARKER_EOS,                 /* </s> */
    LLAMAD_MARKER_AVAILABLE_TOOLS,     /* [AVAILABLE_TOOLS] (Mistral's tools) */
    LLAMAD_MARKER_AVAILABLE_TOOLS_END, /* [/AVAILABLE_TOOLS] */
    LLAMAD_MARKER_TOOL_CALLS,          /* [TOOL_CALLS] */
    LLAMAD_MARKER_TOOL_RESULTS,        /* [TOOL_RESULTS] */
    LLAMAD_MARKER_TOOL_RESULTS_END,    /* [/TOOL_RESULTS] */
    LLAMAD_CHAT_MARKERS
};
const char *llamad_chat_marker_text(enum llamad_chat_marker m);

/* Tokenizes len bytes of text, prepending BOS when add_bos. Writes at most cap ids
 * into out and returns the number of ids the text needs (call again with a larger
 * buffer when that is more than cap), or a negative LLAMAD_E* code. */
int64_t llamad_tokenize(const struct llamad_tokenizer *t, const char *text, size_t len,
                        bool add_bos, int32_t *out, size_t cap);

/* The text a token stands for, appended to out: U+2581 becomes a space, <0xNN>
 * becomes the byte NN, a byte-level piece the bytes it spells (so the result may be
 * part of a UTF-8 character); control, unknown and unused tokens give nothing,
 * user-defined ones their piece as is.
 * Returns 0, LLAMAD_EINVAL for an id outside the vocabulary, or LLAMAD_ENOMEM. */
int llamad_token_to_bytes(const struct llamad_tokenizer *t, int32_t id, struct llamad_buf *out);

/* Streaming detokenizer: turns tokens into text as they are produced and releases
 * only whole UTF-8 characters; bytes of an unfinished character are held until it
 * completes. A space that starts the first piece after BOS is dropped (when the
 * vocabulary adds a space prefix, as that space came from it). Bytes that can never
 * form a valid character are released as U+FFFD, one per maximal invalid subpart. */
struct llamad_detok {
    const struct llamad_tokenizer *tok;
    int32_t prev;       /* previous token, -1 when none */
    uint8_t pending[4]; /* bytes of an unfinished UTF-8 character */
    uint8_t n_pending;
};

/* prev_token: the last token already in the sequence (e.g. the prompt's last, BOS
 * for an empty prompt), or -1. */
void llamad_detok_init(struct llamad_detok *d, const struct llamad_tokenizer *t,
                       int32_t prev_token);
/* Appends the complete characters that token id finishes to out. 0, LLAMAD_EINVAL
 * (id outside the vocabulary) or LLAMAD_ENOMEM. */
int llamad_detok_push(struct llamad_detok *d, int32_t id, struct llamad_buf *out);
/* End of the stream: held bytes of an unfinished character are released as U+FFFD. */
int llamad_detok_flush(struct llamad_detok *d, struct llamad_buf *out);

/* Whole-sequence convenience: the text of ids[0..n), as a streaming detokenizer
 * starting after prev_token would produce it, flushed. */
int llamad_detokenize(const struct llamad_tokenizer *t, int32_t prev_token, const int32_t *ids,
                      size_t n, struct llamad_buf *out);

#endif
