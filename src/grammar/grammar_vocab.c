/* The vocabulary as the grammar sees it: every token's bytes, which tokens end
 * generation, and a byte trie of the others (grammar_internal.h), so a mask is
 * one walk in which tokens that share a prefix share its work. */
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/tokenizer/tokenizer.h"

struct entry {
    const uint8_t *p;
    uint32_t len;
    int32_t id;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Whether byte b begins a character (is not a UTF-8 continuation byte). */
static bool starts_char(uint8_t b)
{
    return (b & 0xC0) != 0x80;
}

static int build_trie(struct llamad_grammar_vocab *v, struct entry *e, uint32_t n)
{
    size_t total = 1;
    uint32_t max_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        total += e[i].len;
        if (e[i].len > max_len)
            max_len = e[i].len;
    }
    if (total > UINT32_MAX / 2)
        return LLAMAD_ERANGE;
    v->node_byte = malloc(total);
    v->node_end = malloc(total * sizeof *v->node_end);
    v->tok_first = malloc((total + 1) * sizeof *v->tok_first);
    v->trie_tokens = malloc(((size_t)n + 1) * sizeof *v->trie_tokens);
    v->tok_chars = malloc((size_t)n + 1);
    uint32_t *path = malloc(((size_t)max_len + 1) * sizeof *path);
    if (!v->node_byte || !v->node_end || !v->tok_first || !v->trie_tokens || !v->tok_chars ||
        !path) {
        free(path);
        return LLAMAD_ENOMEM;
    }
    uint32_t nodes = 1, depth = 0, n_tok = 0;
    v->node_byte[0] = 0;
    v->tok_first[0] = 0;
    path[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lcp = 0;
        if (i > 0)
            while (lcp < e[i].len && lcp < e[i - 1].len && e[i].p[lcp] == e[i - 1].p[lcp])
                lcp++;
        for (; depth > lcp; depth--)
            v->node_end[path[depth]] = nodes;
        for (; depth < e[i].len; depth++) {
            v->node_byte[nodes] = e[i].p[depth];
            v->tok_first[nodes] = n_tok;
            path[depth + 1] = nodes++;
        }
        uint32_t chars = 0;
        for (uint32_t k = 0; k < e[i].len; k++)
            chars += starts_char(e[i].p[k]);
        v->tok_chars[n_tok] = (uint8_t)(chars < 255 ? chars : 255);
        v->trie_tokens[n_tok++] = e[i].id; /* at the node made last (sorted order) */
    }
    for (;; depth--) {
        v->node_end[path[depth]] = nodes;
        if (depth == 0)
            break;
    }
    v->tok_first[nodes] = n_tok;
    v->n_nodes = nodes;
    free(path);
    return 0;
}

/* UTF-8 decoding, one byte at a time, strictly (RFC 3629): a state is 0 at a
 * character boundary, else the continuation bytes still due (high nibble) and
 * which bytes the next one may be (low nibble, an index into lo/hi). */
static uint8_t utf8_next(uint8_t state, uint8_t b, bool *ok)
{
    static const uint8_t lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80};
    static const uint8_t hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
    if (state == 0) {
        if (b < 0x80)
            return 0;
        if (b >= 0xC2 && b <= 0xDF)
            return 1 << 4;
        if (b >= 0xE0 && b <= 0xEF)
            return (uint8_t)(2 << 4 | (b == 0xE0 ? 1 : b == 0xED ? 2 : 0));
        if (b >= 0xF0 && b <= 0xF4)
            return (uint8_t)(3 << 4 | (b == 0xF0 ? 3 : b == 0xF4 ? 4 : 0));
        *ok = false;
        return 0;
    }
    uint8_t need = state >> 4, r = state & 15;
    if (b < lo[r] || b > hi[r]) {
        *ok = false;
        return 0;
    }
    return (uint8_t)((need - 1) << 4);
}

/* sub_ascii, sub_flags and sub_depth (grammar_internal.h): the decoding state of each
 * node's path top-down, then each subtree's summary bottom-up (children come
 * after their parent in preorder). */
static int summarize(struct llamad_grammar_vocab *v)
{
    uint32_t n = v->n_nodes;
    uint32_t *parent = malloc((size_t)n * sizeof *parent), *path = malloc((size_t)n * sizeof *path);
    uint8_t *state = malloc(n);
    v->sub_ascii = calloc(2 * (size_t)n, sizeof *v->sub_ascii);
    v->sub_flags = malloc(n);
    v->sub_depth = malloc(n);
    if (!parent || !path || !state || !v->sub_ascii || !v->sub_flags || !v->sub_depth) {
        free(parent);
        free(path);
        free(state);
        return LLAMAD_ENOMEM;
    }
    uint32_t depth = 1;
    path[0] = 0;
    state[0] = 0;
    v->sub_flags[0] = SUB_UTF8_OK;
    memset(v->sub_depth, 0, n);
    for (uint32_t i = 1; i < n; i++) {
        while (v->node_end[path[depth - 1]] <= i)
            depth--;
        uint32_t p = path[depth - 1];
        path[depth++] = i;
        parent[i] = p;
        uint8_t b = v->node_byte[i];
        bool ok = (v->sub_flags[p] & SUB_UTF8_OK) != 0;
        state[i] = ok ? utf8_next(state[p], b, &ok) : 0;
        v->sub_flags[i] = (uint8_t)((ok ? SUB_UTF8_OK : 0) | (b >= 0x80 ? SUB_NONASCII : 0));
        if (b < 0x80)
            v->sub_ascii[2 * (size_t)i + (b >> 6)] |= 1ull << (b & 63);
    }
    /* Top-down, SUB_UTF8_OK said whether the path to a node is valid; bottom-up
     * it becomes whether every path through the subtree is. */
    for (uint32_t i = n; i-- > 1;) {
        uint32_t p = parent[i];
        v->sub_ascii[2 * (size_t)p] |= v->sub_ascii[2 * (size_t)i];
        v->sub_ascii[2 * (size_t)p + 1] |= v->sub_ascii[2 * (size_t)i + 1];
        v->sub_flags[p] |= v->sub_flags[i] & SUB_NONASCII;
        if (v->sub_depth[i] < 255)
            v->sub_depth[i] += starts_char(v->node_byte[i]);
        if (v->sub_depth[p] < v->sub_depth[i])
            v->sub_depth[p] = v->sub_depth[i];
        if (!(v->sub_flags[i] & SUB_UTF8_OK))
            v->sub_flags[p] &= (uint8_t)~SUB_UTF8_OK;
    }
    free(parent);
    free(path);
    free(state);
    return 0;
}

int llamad_grammar_vocab_create(const struct llamad_tokenizer *t, struct llamad_grammar_vocab **out)
{
    *out = NULL;
    struct llamad_grammar_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return LLAMAD_ENOMEM;
    int32_t n = llamad_tokenizer_n_vocab(t);
    struct llamad_buf all = LLAMAD_BUF_INIT;
    struct entry *e = NULL;
    int rc = LLAMAD_ENOMEM;
    v->n_vocab = n;
    v->off = malloc(((size_t)n + 1) * sizeof *v->off);
    v->is_eog = calloc((size_t)n + 1, 1);
    v->eog = malloc(((size_t)n + 1) * sizeof *v->eog);
    e = malloc(((size_t)n + 1) * sizeof *e);
    if (!v->off || !v->is_eog || !v->eog || !e)
        goto out;
    for (int32_t i = 0; i < n; i++) {
        v->off[i] = (uint32_t)all.len;
        if (llamad_tokenizer_is_eog(t, i)) {
            v->is_eog[i] = 1;
            v->eog[v->n_eog++] = i;
            continue;
        }
        if ((rc = llamad_token_to_bytes(t, i, &all)))
            goto out;
        rc = LLAMAD_ENOMEM;
    }
    v->off[n] = (uint32_t)all.len;
    v->blob = malloc(all.len + 1);
    if (!v->blob)
        goto out;
    if (all.len)
        memcpy(v->blob, all.data, all.len);
    uint32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (v->off[i + 1] > v->off[i])
            e[m++] = (struct entry){v->blob + v->off[i], v->off[i + 1] - v->off[i], i};
    qsort(e, m, sizeof *e, cmp_entry);
    rc = build_trie(v, e, m);
    if (!rc)
        rc = summarize(v);
out:
    free(e);
    llamad_buf_free(&all);
    if (rc) {
        llamad_grammar_vocab_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void llamad_grammar_vocab_free(struct llamad_grammar_vocab *v)
{
    if (!v)
        return;
    free(v->blob);
    free(v->off);
    free(v->is_eog);
    free(v->eog);
    free(v->node_byte);
    free(v->node_end);
    free(v->tok_first);
    free(v->trie_tokens);
    free(v->tok_chars);
    free(v->sub_ascii);
    free(v->sub_flags);
    free(v->sub_depth);
    free(v);
}

int32_t llamad_grammar_vocab_size(const struct llamad_grammar_vocab *v)
{
    return v->n_vocab;
}

const uint8_t *llamad_grammar_vocab_bytes(const struct llamad_grammar_vocab *v, int32_t id,
                                          size_t *len)
{
    if (id < 0 || id >= v->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = v->off[id + 1] - v->off[id];
    return *len ? v->blob + v->off[id] : NULL;
}

bool llamad_grammar_vocab_is_eog(const struct llamad_grammar_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n_vocab && v->is_eog[id];
}

const int32_t *llamad_grammar_vocab_eog(const struct llamad_grammar_vocab *v, int32_t *n)
{
    *n = v->n_eog;
    return v->eog;
}
