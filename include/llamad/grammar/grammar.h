/* Grammar-constrained generation: GBNF grammars (llama.cpp's notation), and the
 * set of tokens a grammar allows at each step of a generation.
 *
 * Three objects, from the most to the least shared:
 * - llamad_grammar_vocab: the model's tokens as byte strings, arranged for mask
 *   work (a byte trie, tokens sorted by their bytes); built once per loaded
 *   model, read-only afterwards, shared by every request and thread.
 * - llamad_grammar: a parsed grammar, immutable after parse; any number of
 *   matchers on any threads may use it at once.
 * - llamad_grammar_matcher: one generation's position in a grammar, with its
 *   cache of masks (see llamad_grammar_matcher_mask); used by one thread at a
 *   time (the engine's batcher thread).
 *
 * GBNF: rules `name ::= alternatives` (names of A-Z a-z 0-9 - _), `|`, grouping
 * `( )`, `?` `*` `+` `{m}` `{m,}` `{m,n}` `{,n}`, string literals "..." with
 * escapes (\n \r \t \\ \" \' \[ \] \- \xHH \uHHHH \UHHHHHHHH), character
 * classes [a-z] [^"\\] with ranges and escapes, `.` (any character), comments
 * `#` to the end of the line. A rule ends at the end of its line, except inside
 * parentheses and where the next line goes on with `|`. Text is UTF-8; the
 * grammar matches code points. The start rule is `root`.
 *
 * Limits (past them the parse fails with a message; a hostile grammar cannot
 * make the matcher use unbounded memory or time): LLAMAD_GRAMMAR_MAX_ELEMS
 * elements once repetitions are expanded, LLAMAD_GRAMMAR_MAX_RULES rules (helper
 * rules included) and LLAMAD_GRAMMAR_MAX_NESTING levels of parentheses. Left
 * recursion (a rule that can reach itself before consuming a character, e.g.
 * `a ::= a "x" | "y"` or `("x"?)*`) is refused. A matcher whose grammar is so
 * ambiguous that it is at more than LLAMAD_GRAMMAR_MAX_STACKS places at once,
 * or whose rules begin one another more than 1024 deep, or take more than a
 * fixed amount of work for one character or one mask, fails with
 * LLAMAD_ERANGE. */
#ifndef LLAMAD_GRAMMAR_H
#define LLAMAD_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LLAMAD_GRAMMAR_MAX_ELEMS (1u << 17)
#define LLAMAD_GRAMMAR_MAX_RULES (1u << 14)
#define LLAMAD_GRAMMAR_MAX_NESTING 256
#define LLAMAD_GRAMMAR_MAX_STACKS 256

struct llamad_tokenizer;
struct llamad_grammar;
struct llamad_grammar_vocab;
struct llamad_grammar_matcher;

/* Parses GBNF text (len bytes, not necessarily NUL-terminated). On failure
 * returns LLAMAD_EFORMAT (bad grammar), LLAMAD_ERANGE (past a limit) or
 * LLAMAD_ENOMEM, and writes "line L, column C: what is wrong" into err
 * (columns count characters from 1). Refuses undefined rules, a missing root,
 * rules defined twice and left recursion. */
int llamad_grammar_parse(const char *text, size_t len, struct llamad_grammar **out, char *err,
                         size_t errsz);
void llamad_grammar_free(struct llamad_grammar *g);

/* Whether the whole of text (len bytes of UTF-8) is a sentence of the grammar.
 * For tests and for checking a converter's output. False also when the matcher
 * fails (too ambiguous) or memory runs out. */
bool llamad_grammar_accepts(const struct llamad_grammar *g, const char *text, size_t len);

/* The tokenizer's tokens as the grammar sees them: each token's bytes
 * (llamad_token_to_bytes). Tokens without bytes (control, unknown, unused) are
 * never allowed, except end-of-generation tokens (llamad_tokenizer_is_eog),
 * which are allowed exactly where the grammar may end. */
int llamad_grammar_vocab_create(const struct llamad_tokenizer *t,
                                struct llamad_grammar_vocab **out);
void llamad_grammar_vocab_free(struct llamad_grammar_vocab *v);
int32_t llamad_grammar_vocab_size(const struct llamad_grammar_vocab *v);
/* Token id's bytes (*len of them; NULL for none) and whether it ends generation. */
const uint8_t *llamad_grammar_vocab_bytes(const struct llamad_grammar_vocab *v, int32_t id,
                                          size_t *len);
bool llamad_grammar_vocab_is_eog(const struct llamad_grammar_vocab *v, int32_t id);
/* The end-of-generation tokens (*n of them). */
const int32_t *llamad_grammar_vocab_eog(const struct llamad_grammar_vocab *v, int32_t *n);

/* A generation at the start of grammar g; g and v (v may be NULL when only
 * llamad_grammar_matcher_accept_bytes is used) must outlive the matcher. */
int llamad_grammar_matcher_create(const struct llamad_grammar *g,
                                  const struct llamad_grammar_vocab *v,
                                  struct llamad_grammar_matcher **out);
void llamad_grammar_matcher_free(struct llamad_grammar_matcher *m);
/* An independent copy of m at the same place (same grammar and vocabulary). */
int llamad_grammar_matcher_clone(const struct llamad_grammar_matcher *m,
                                 struct llamad_grammar_matcher **out);

/* The tokens allowed next: bit i of mask[i / 8] (LSB first) is token i; the
 * mask has (n_vocab + 7) / 8 bytes. Its format is llamad_sampler_set_allowed's.
 * A token is allowed when its bytes take the grammar somewhere it can go on
 * (a token may end inside a UTF-8 character that some allowed character
 * completes); end-of-generation tokens when the grammar may end here. Once the
 * grammar is complete and nothing can follow, only those are allowed.
 *
 * The mask is computed by walking the vocabulary's trie with the matcher's
 * stacks, a subtree dropped as soon as no stack survives its prefix, and one
 * whose every token is known to fit (a string's ordinary characters, within
 * its remaining length) taken whole. Masks are cached by the part of the state
 * they read (the partial character, and of each stack its top and the frames
 * below that the walk went down into), so a place the generation comes back
 * to (inside a string or number, between the items of a list, the same place
 * in the next item) costs a lookup and a copy. The cache holds up to
 * LLAMAD_GRAMMAR_MASK_CACHE masks (each n_vocab / 8 bytes, made as needed),
 * least recently used evicted.
 * Returns 0, LLAMAD_EINVAL (no vocabulary, or the generation ended),
 * LLAMAD_ERANGE (too ambiguous) or LLAMAD_ENOMEM. */
#define LLAMAD_GRAMMAR_MASK_CACHE 256
int llamad_grammar_matcher_mask(struct llamad_grammar_matcher *m, uint8_t *mask);

/* Advances past token; LLAMAD_EINVAL (the matcher unchanged) if the grammar
 * does not allow it there. An end-of-generation token ends the generation. */
int llamad_grammar_matcher_accept(struct llamad_grammar_matcher *m, int32_t token);
/* Advances past len bytes of text (they may end inside a character);
 * LLAMAD_EINVAL (unchanged) when the grammar does not allow them. */
int llamad_grammar_matcher_accept_bytes(struct llamad_grammar_matcher *m, const uint8_t *bytes,
                                        size_t len);

/* Whether token is allowed now, found by running its bytes from the current
 * state and backing out (the matcher is unchanged): the brute-force check the
 * tests hold llamad_grammar_matcher_mask to. */
bool llamad_grammar_matcher_allows(struct llamad_grammar_matcher *m, int32_t token);

/* Whether the text so far is a whole sentence (an end token may come now). */
bool llamad_grammar_matcher_can_end(const struct llamad_grammar_matcher *m);
/* Whether some character may still follow (false once the grammar is complete). */
bool llamad_grammar_matcher_can_continue(const struct llamad_grammar_matcher *m);

#endif
