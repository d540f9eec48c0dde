/* Merging adjacent symbols in priority order, the step both BPE tokenizers share
 * (internal). A word starts as small symbols (characters, bytes); the adjacent
 * pair that ranks first is merged into one symbol, over and over, until no pair
 * merges. A heap of candidate pairs over a linked list of symbols makes this
 * O(n log n) in the word's symbols, where rescanning the word after each merge
 * would be O(n^2): a word can be a whole prompt of one repeated letter. */
#ifndef LLAMAD_SRC_TOKENIZER_MERGE_H
#define LLAMAD_SRC_TOKENIZER_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A run of the word: a starting symbol, or what merges made of several. */
struct llamad_merge_node {
    uint32_t start, len; /* its bytes, as offsets into the caller's text */
    int32_t id;          /* the token it is, -1 when none */
    int32_t left, right; /* the two nodes merged into it; -1 for a starting symbol */
};

/* Whether adjacent runs l and r merge; when they do, *priority orders the merge
 * (greater first; among equals the leftmost pair) and *id is the merged token.
 * Asked when the pair is queued and again when it merges. */
typedef bool (*llamad_merge_pair_fn)(const void *ctx, const struct llamad_merge_node *l,
                                     const struct llamad_merge_node *r, float *priority,
                                     int32_t *id);

/* A live symbol of the word; `node` is -1 once merged into its left neighbour. */
struct llamad_merge_symbol {
    int32_t prev, next, node;
};

struct llamad_merger {
    llamad_merge_pair_fn pair;
    const void *ctx;
    struct llamad_merge_symbol *sym; /* after a run: from 0, following next to -1 */
    struct llamad_merge_node *node;
    int32_t n_sym, n_node;
    struct llamad_merge_candidate *heap;
    int32_t *stack;      /* llamad_merger_output's nodes still to go */
    size_t n_heap, room; /* room: starting symbols the arrays hold */
};

/* Braced initializers as macros: clang-format would spread them over lines. */
/* clang-format off */
#define LLAMAD_MERGER_INIT(pair_fn, context) {.pair = (pair_fn), .ctx = (context)}
/* clang-format on */

/* Starts a word of up to n starting symbols (forgetting the previous word),
 * growing the arrays when needed. 0, LLAMAD_ERANGE (n above INT32_MAX / 2) or
 * LLAMAD_ENOMEM. */
int llamad_merger_start(struct llamad_merger *m, size_t n);
/* Appends a starting symbol to the word. */
void llamad_merger_push(struct llamad_merger *m, uint32_t start, uint32_t len, int32_t id);
/* Merges the word's symbols until no adjacent pair merges. */
void llamad_merger_run(struct llamad_merger *m);
/* Whether a run's token may be output as it is. */
typedef bool (*llamad_merge_keep_fn)(const void *ctx, const struct llamad_merge_node *n);
/* Takes the runs the word comes out as, left to right. */
typedef void (*llamad_merge_out_fn)(void *ctx, const struct llamad_merge_node *n);
/* After a run: hands out to `out` the word's runs, each one whole when keep says
 * so, else (one merged from two) the runs it was made of, in turn, else (a
 * starting symbol) whole after all. Without recursion: a hostile vocabulary can
 * chain a merge per byte of a long word. */
void llamad_merger_output(struct llamad_merger *m, llamad_merge_keep_fn keep,
                          llamad_merge_out_fn out, void *ctx);
void llamad_merger_free(struct llamad_merger *m);

#endif
