/* The grammar layer's shared representation (private to src/grammar/).
 *
 * A grammar is one flat array of elements. Each rule has alternatives; each
 * alternative is a run of elements ending with an END element. An element is a
 * character class (CHAR: sorted, merged code point ranges, maybe negated; a
 * literal's character is a class of one range) or a reference to a rule (REF).
 * Repetitions are rewritten at parse time into helper rules, so the matcher
 * sees only these three kinds. A "position" is an index into the array. */
#ifndef LLAMAD_GRAMMAR_INTERNAL_H
#define LLAMAD_GRAMMAR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/grammar/grammar.h"

enum gelem_kind { GE_END = 0, GE_CHAR = 1, GE_REF = 2 };

struct gelem {
    uint8_t kind;
    uint8_t negated;   /* CHAR: matches the code points outside the ranges */
    uint16_t n_ranges; /* CHAR: ranges at ranges[2 * arg ...] */
    uint32_t arg;      /* CHAR: first range; REF: rule id */
};

struct grule {
    uint32_t first_alt; /* into alts */
    uint32_t n_alts;
};

struct llamad_grammar {
    struct gelem *elems;
    uint32_t n_elems;
    uint32_t *ranges; /* lo, hi pairs (inclusive) */
    uint32_t n_ranges;
    uint32_t *alts; /* each alternative's first position */
    uint32_t n_alts;
    struct grule *rules;
    uint32_t n_rules;
    uint32_t root;
    uint64_t *ascii; /* per element: a CHAR's class among ASCII, two words */
};

/* Whether code point cp is in the class of CHAR element e. */
static inline bool grammar_class_has(const struct llamad_grammar *g, const struct gelem *e,
                                     uint32_t cp)
{
    if (cp < 128)
        return (g->ascii[2 * (size_t)(e - g->elems) + (cp >> 6)] >> (cp & 63)) & 1;
    const uint32_t *r = g->ranges + 2 * (size_t)e->arg;
    bool in = false;
    for (uint32_t i = 0; i < e->n_ranges; i++) {
        if (cp < r[2 * i])
            break;
        if (cp <= r[2 * i + 1]) {
            in = true;
            break;
        }
    }
    return in != (e->negated != 0);
}

/* Whether the class of e holds some code point of [lo, hi]. */
bool grammar_class_meets(const struct llamad_grammar *g, const struct gelem *e, uint32_t lo,
                         uint32_t hi);

/* The parser's output, before linking: rules by name, each a body of elements
 * with END after each alternative (REF args are rule ids in this table). */
struct gbnf_rule {
    const char *name; /* into the grammar text */
    size_t name_len;
    struct gelem *body;
    uint32_t n_body, cap_body;
    size_t def_at;  /* byte offset of the definition (SIZE_MAX: never defined) */
    size_t used_at; /* byte offset of the first reference */
};

/* Links parsed rules into g (ranges already in g): checks undefined rules, the
 * root, left recursion and the nesting of rules that begin one another.
 * Errors name "line L, column C" of text. */
int grammar_link(struct llamad_grammar *g, struct gbnf_rule *rules, uint32_t n_rules,
                 const char *text, size_t len, char *err, size_t errsz);

/* "line L, column C: " for byte offset at of text, into buf. */
void grammar_where(const char *text, size_t len, size_t at, char *buf, size_t bufsz);

/* The vocabulary and its trie, in preorder: node 0 is the root (no byte); a
 * node's subtree is [i, end[i]); its first child, if any, is i + 1 and the next
 * sibling of a child c is end[c]. Tokens ending at node i are
 * trie_tokens[tok_first[i] .. tok_first[i + 1]). */
struct llamad_grammar_vocab {
    int32_t n_vocab;
    uint8_t *blob;   /* every token's bytes */
    uint32_t *off;   /* token i: blob[off[i] .. off[i + 1]) */
    uint8_t *is_eog; /* per token */
    int32_t *eog;    /* the end-of-generation tokens */
    int32_t n_eog;
    uint32_t n_nodes;
    uint8_t *node_byte;
    uint32_t *node_end;
    uint32_t *tok_first; /* n_nodes + 1 */
    int32_t *trie_tokens;
    /* Per node, of the bytes of its subtree (itself included): which ASCII
     * bytes occur (two 64-bit words), and flags: SUB_NONASCII (a byte >= 0x80
     * occurs), SUB_UTF8_OK (the bytes from the root down are valid UTF-8
     * everywhere in the subtree, a last character possibly unfinished). */
    uint64_t *sub_ascii;
    uint8_t *sub_flags;
    uint8_t *sub_depth; /* per node: the most characters (bytes that start one)
                           on a path down its subtree, itself counted; 255 at most */
    uint8_t *tok_chars; /* per trie_tokens entry: its token's characters (255 at most) */
};

#define SUB_NONASCII 1u
#define SUB_UTF8_OK 2u

/* Matcher state (see matcher.c). A stack is a chain of nodes, its top first;
 * a node holds a position and its parent (-1: the bottom). Tops are node
 * indices, or TOP_DONE for the empty stack (the grammar is complete). */
#define TOP_DONE (-1)

struct mnode {
    uint32_t pos;
    int32_t parent;
    uint32_t hash; /* of the whole chain, for deduplication */
};

struct mstate {
    uint32_t first, n; /* its tops: m->tops[first .. first + n) */
    uint32_t cp;       /* a partial character: bits so far */
    uint8_t need;      /* continuation bytes still to come (0: none pending) */
    uint8_t len;       /* the partial character's whole length in bytes */
};

/* A cached mask and the part of the state it depends on (token_mask.c). */
struct mask_entry {
    uint32_t *key;
    uint32_t key_len;
    uint32_t hash; /* of the state's tops only, to pass over most entries */
    uint64_t used;
    uint8_t *mask;
};

/* A transition the mask's walk already made: from the state whose tops are
 * m->tops[first .. first + n), the stacks in sig (bit k: top k) took a
 * character; result is the state that gave. Which character does not matter,
 * only which stacks took it, so inside a string every ordinary character
 * reuses one expansion. */
struct memo_entry {
    uint32_t first, n;
    uint64_t sig;
    struct mstate result;
};

/* A state the mask's walk met at a character boundary, and where its
 * commonest characters take it: every ASCII character in ascii (and every
 * other one, when nonascii) takes it to one same state, levels[next] (-1: not
 * followed further). Following next from a state gives the characters that
 * keep a string going for as many characters as a subtree of the trie is deep,
 * bounded strings included (each length a state of its own); a subtree made
 * only of those is allowed whole without being walked. A state that comes
 * back to itself is its own next. */
struct chain_level {
    uint32_t first, n;
    uint64_t ascii[2];
    bool nonascii;
    uint64_t refused[2]; /* the ASCII characters no stack takes */
    bool nonascii_refused;
    uint32_t to_first, to_n; /* the state those characters take it to */
    int32_t next;
};

struct llamad_grammar_matcher {
    const struct llamad_grammar *g;
    const struct llamad_grammar_vocab *v;
    struct mnode *nodes;
    uint32_t n_nodes, cap_nodes;
    int32_t *tops;
    uint32_t n_tops, cap_tops;
    struct mstate cur;
    bool ended;  /* an end-of-generation token was accepted */
    bool failed; /* the last advance went past a limit (too ambiguous) */
    bool oom;
    uint64_t work_left;      /* expansion steps the current operation may still take */
    struct memo_entry *memo; /* the walk's transitions, a stack unwound with the arena */
    uint32_t n_memo, cap_memo;
    bool memo_on; /* only while a mask is computed */
    /* While a mask is computed: the current state's own nodes are those below
     * n_base, and reached[i] says the walk went back down into node i (the
     * rule above it ended), so the mask depends on node i's position. */
    uint32_t n_base;
    uint8_t *reached;
    uint32_t cap_reached;
    struct chain_level *levels; /* a stack unwound with the arena, as memo */
    uint32_t n_levels, cap_levels;
    uint32_t *key; /* scratch: the cache key of the current state */
    uint32_t cap_key;
    struct mask_entry cache[LLAMAD_GRAMMAR_MASK_CACHE];
    uint64_t clock;
};

/* Grows array *p (of *cap elements of size bytes) to hold at least need;
 * false when out of memory (the array unchanged). */
bool matcher_grow(void **p, uint32_t *cap, uint32_t need, size_t size);
/* Advances state s by one byte into *out (tops appended to m->tops; nodes to
 * m->nodes). False when the byte is refused or a limit was hit (m->failed). */
bool matcher_step(struct llamad_grammar_matcher *m, const struct mstate *s, uint8_t byte,
                  struct mstate *out);
/* Advances state s by one whole character (see matcher_step). */
bool matcher_advance_cp(struct llamad_grammar_matcher *m, const struct mstate *s, uint32_t cp,
                        struct mstate *out);
/* Whether every top's class holds all code points from 0x80 up or none of
 * them (so that they all take the same stacks). */
bool matcher_nonascii_uniform(const struct llamad_grammar_matcher *m, const struct mstate *s);
/* Which of state s's first 64 stacks take code point cp (bit k: stack k); 0
 * when s has more stacks. Characters with the same signature take s to the
 * same state. */
uint64_t matcher_signature(const struct llamad_grammar_matcher *m, const struct mstate *s,
                           uint32_t cp);
/* matcher_signature for every ASCII character at once. */
void matcher_ascii_signatures(const struct llamad_grammar_matcher *m, const struct mstate *s,
                              uint64_t sig[128]);
bool matcher_state_can_end(const struct llamad_grammar_matcher *m, const struct mstate *s);

#endif
