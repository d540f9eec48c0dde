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
    uint32_t *path = malloc(((size_t)max_len + 1) * sizeof *path);
    if (!v->node_byte || !v->node_end || !v->tok_first || !v->trie_tokens || !path) {
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
