/* The hash tables from piece text to token id that tokenizing looks pieces up in. */
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "tokenizer_internal.h"

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static bool piece_is(const struct llamad_tokenizer *t, int32_t id, const char *s, size_t n)
{
    return t->len[id] == n && memcmp(llamad_piece_text(t, id), s, n) == 0;
}

int32_t llamad_piece_map_find(const struct llamad_tokenizer *t, const struct llamad_piece_map *m,
                              const char *s, size_t n)
{
    /* The table is at most half full, so probing always reaches an empty slot. */
    for (size_t i = hash_bytes(s, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i];
        if (id < 0 || piece_is(t, id, s, n))
            return id;
    }
}

/* Indexes the non-empty pieces whose kind `wanted` accepts; a piece that occurs
 * twice keeps its first id. */
int llamad_piece_map_build(const struct llamad_tokenizer *t, struct llamad_piece_map *m,
                           bool (*wanted)(enum llamad_token_kind))
{
    size_t cap = 16;
    while (cap < 2 * (size_t)t->n_vocab)
        cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots)
        return LLAMAD_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        m->slots[i] = -1;
    m->mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->len[id] == 0 || !wanted(t->kind[id]))
            continue;
        const char *s = llamad_piece_text(t, id);
        size_t i = hash_bytes(s, t->len[id]) & m->mask;
        while (m->slots[i] >= 0 && !piece_is(t, m->slots[i], s, t->len[id]))
            i = (i + 1) & m->mask;
        if (m->slots[i] < 0)
            m->slots[i] = id;
    }
    return LLAMAD_OK;
}
