/* Pre-tokenizers (internal): a byte-level BPE vocabulary merges only within the
 * pieces its pre-tokenizer, a regular expression named by `tokenizer.ggml.pre`,
 * cuts the text into. */
#ifndef LLAMAD_SRC_TOKENIZER_PRETOK_H
#define LLAMAD_SRC_TOKENIZER_PRETOK_H

#include <stddef.h>

struct llamad_pretok;

/* The pre-tokenizer called name[0..len); LLAMAD_EUNSUPPORTED, naming it, for one
 * llamad does not know. */
int llamad_pretok_new(const char *name, size_t len, struct llamad_pretok **out, char *err,
                      size_t errsz);
void llamad_pretok_free(struct llamad_pretok *p);

/* Called with each piece of the text in order; a nonzero return stops the split
 * and becomes its result. */
typedef int (*llamad_pretok_fn)(void *ctx, size_t start, size_t len);

/* Cuts text[0..len) into pieces that together cover it. Bytes that are not valid
 * UTF-8 are pieces of their own (one per run of them). 0, what fn returned,
 * LLAMAD_ENOMEM, or LLAMAD_ERANGE when a match exceeds the regex engine's limits. */
int llamad_pretok_split(const struct llamad_pretok *p, const char *text, size_t len,
                        llamad_pretok_fn fn, void *ctx);

#endif
