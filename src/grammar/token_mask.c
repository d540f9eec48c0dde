/* The allowed-token mask: one walk of the vocabulary's byte trie with the
 * matcher's stacks, a subtree dropped at the first byte no stack survives;
 * and a cache of masks by the matcher's exact state.
 *
 * The cache: a state is its stacks (each the chain of its positions) and any
 * partial character. Generation keeps coming back to the same states (inside
 * a string or a number the stacks are the same after every token, as
 * repetitions do not grow them), and there the mask costs one lookup and a
 * copy. It belongs to the matcher, so to one generation and the thread that
 * runs it; no lock. States whose key is longer than KEY_MAX (very deep
 * nesting) are not cached.
 *
 * Inside the walk, two shortcuts (see walk): transitions are remembered per
 * state by which stacks a character takes, and a state that comes back to
 * itself on every byte of a subtree allows the subtree whole. Together they
 * make a first visit cheap where it used to be dearest (inside a string,
 * where nearly every token fits). This is instead of XGrammar's per-position
 * split into context-independent and context-dependent tokens: the exact
 * state costs nothing to key and is never wrong, and the walk's shortcuts
 * cover the places that split exists for; what it would still win is the
 * first visit of states the shortcuts do not reach (bounded repetitions). */
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "llamad/base/error.h"

#define KEY_MAX 4096
/* Expansion steps one mask may take in all (a few million for JSON on a 128k
 * vocabulary); past it the grammar counts as too ambiguous. */
#define MASK_WORK 20000000u
#define KEY_DONE 0xFFFFFFFEu
#define KEY_SEP 0xFFFFFFFFu

static bool key_push(struct llamad_grammar_matcher *m, uint32_t *n, uint32_t v)
{
    if (*n >= KEY_MAX)
        return false;
    if (*n >= m->cap_key) {
        uint32_t cap = m->cap_key ? m->cap_key * 2 : 64;
        uint32_t *k = realloc(m->key, cap * sizeof *k);
        if (!k)
            return false;
        m->key = k;
        m->cap_key = cap;
    }
    m->key[(*n)++] = v;
    return true;
}

/* The current state's key into m->key; its length, or 0 when not cached. */
static uint32_t state_key(struct llamad_grammar_matcher *m)
{
    const struct mstate *s = &m->cur;
    uint32_t n = 0;
    if (!key_push(m, &n, s->cp) || !key_push(m, &n, (uint32_t)s->need << 8 | s->len))
        return 0;
    for (uint32_t k = 0; k < s->n; k++) {
        int32_t t = m->tops[s->first + k];
        if (t == TOP_DONE) {
            if (!key_push(m, &n, KEY_DONE))
                return 0;
            continue;
        }
        for (; t >= 0; t = m->nodes[t].parent)
            if (!key_push(m, &n, m->nodes[t].pos))
                return 0;
        if (!key_push(m, &n, KEY_SEP))
            return 0;
    }
    return n;
}

static uint32_t key_hash(const uint32_t *k, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 16777619u;
    return h;
}

static struct mask_entry *cache_find(struct llamad_grammar_matcher *m, uint32_t n, uint32_t h)
{
    for (int i = 0; i < LLAMAD_GRAMMAR_MASK_CACHE; i++) {
        struct mask_entry *e = &m->cache[i];
        if (e->mask && e->hash == h && e->key_len == n &&
            !memcmp(e->key, m->key, n * sizeof *m->key))
            return e;
    }
    return NULL;
}

static void cache_store(struct llamad_grammar_matcher *m, uint32_t n, uint32_t h,
                        const uint8_t *mask, size_t bytes)
{
    struct mask_entry *e = &m->cache[0];
    for (int i = 0; i < LLAMAD_GRAMMAR_MASK_CACHE; i++) {
        if (!m->cache[i].mask) {
            e = &m->cache[i];
            break;
        }
        if (m->cache[i].used < e->used)
            e = &m->cache[i];
    }
    uint32_t *key = realloc(e->key, n * sizeof *key);
    if (!key)
        return;
    e->key = key;
    if (!e->mask && !(e->mask = malloc(bytes)))
        return;
    memcpy(e->key, m->key, n * sizeof *key);
    memcpy(e->mask, mask, bytes);
    e->key_len = n;
    e->hash = h;
    e->used = ++m->clock;
}

/* Subtrees of fewer tokens are walked rather than checked whole. */
#define WHOLE_MIN 16

/* The index in m->loops of state s's loop entry (at a character boundary):
 * found, or made by stepping s with every ASCII character and one above; -1
 * when out of memory or after a failure. An index, not a pointer: the walks
 * below the caller grow m->loops, which may move it. */
static int64_t loop_of(struct llamad_grammar_matcher *m, const struct mstate *s)
{
    for (uint32_t i = m->n_loops; i-- > 0;)
        if (m->loops[i].first == s->first && m->loops[i].n == s->n)
            return i;
    struct loop_entry e = {.first = s->first, .n = s->n};
    for (uint32_t b = 0; b < 128 && !m->failed; b++) {
        struct mstate next;
        if (matcher_advance_cp(m, s, b, &next) && next.first == s->first && next.n == s->n)
            e.ascii[b >> 6] |= 1ull << (b & 63);
    }
    if (matcher_nonascii_uniform(m, s)) {
        struct mstate next;
        e.nonascii =
            matcher_advance_cp(m, s, 0x80, &next) && next.first == s->first && next.n == s->n;
    }
    if (m->failed)
        return -1;
    if (m->n_loops >= m->cap_loops) {
        uint32_t cap = m->cap_loops ? 2 * m->cap_loops : 16;
        struct loop_entry *l = realloc(m->loops, cap * sizeof *l);
        if (!l)
            return -1;
        m->loops = l;
        m->cap_loops = cap;
    }
    m->loops[m->n_loops] = e;
    return m->n_loops++;
}

/* Whether every byte of c's subtree brings state s back to itself. */
static bool loops_whole(const struct llamad_grammar_vocab *v, const struct loop_entry *l,
                        uint32_t c)
{
    const uint64_t *a = v->sub_ascii + 2 * (size_t)c;
    if ((a[0] & ~l->ascii[0]) || (a[1] & ~l->ascii[1]))
        return false;
    uint8_t f = v->sub_flags[c];
    return !(f & SUB_NONASCII) || (l->nonascii && (f & SUB_UTF8_OK));
}

static void allow_range(const struct llamad_grammar_vocab *v, uint32_t from, uint32_t to,
                        uint8_t *mask)
{
    for (uint32_t k = from; k < to; k++) {
        int32_t t = v->trie_tokens[k];
        mask[t >> 3] |= (uint8_t)(1u << (t & 7));
    }
}

/* The children of trie node `node`, tried from state s: each one's tokens are
 * allowed when a stack survives its bytes, and its subtree is walked then.
 * What a child's step appends (nodes, tops) is dropped after the child, except
 * a transition from s itself that the step remembered (matcher.c's memo),
 * which the next children reuse. Where s comes back to itself on every byte of
 * a large subtree (a string's ordinary characters), the subtree is allowed
 * whole. */
static void walk(struct llamad_grammar_matcher *m, uint32_t node, const struct mstate *s,
                 uint8_t *mask, bool whole_ok)
{
    const struct llamad_grammar_vocab *v = m->v;
    uint32_t keep_nodes = m->n_nodes, keep_tops = m->n_tops, keep_memo = m->n_memo;
    uint32_t keep_loops = m->n_loops;
    int64_t loop = -1;
    bool loop_tried = false;
    for (uint32_t c = node + 1; c < v->node_end[node]; c = v->node_end[c]) {
        uint32_t tok_end = v->tok_first[v->node_end[c]];
        if (whole_ok && s->need == 0 && tok_end - v->tok_first[c] >= WHOLE_MIN) {
            if (!loop_tried) {
                loop_tried = true;
                loop = loop_of(m, s);
                if (m->failed)
                    return;
                keep_nodes = m->n_nodes;
                keep_tops = m->n_tops;
                keep_memo = m->n_memo;
                keep_loops = m->n_loops;
            }
            if (loop >= 0 && loops_whole(v, &m->loops[loop], c)) {
                allow_range(v, v->tok_first[c], tok_end, mask);
                continue;
            }
        }
        uint32_t memo_before = m->n_memo;
        struct mstate next;
        bool ok = matcher_step(m, s, v->node_byte[c], &next);
        if (m->n_memo > memo_before && m->memo[m->n_memo - 1].first == s->first) {
            keep_nodes = m->n_nodes;
            keep_tops = m->n_tops;
            keep_memo = m->n_memo;
        }
        if (ok) {
            allow_range(v, v->tok_first[c], v->tok_first[c + 1], mask);
            if (v->node_end[c] > c + 1)
                walk(m, c, &next, mask, whole_ok);
        }
        m->n_nodes = keep_nodes;
        m->n_tops = keep_tops;
        m->n_memo = keep_memo;
        m->n_loops = keep_loops;
        if (m->failed)
            return;
    }
}

int llamad_grammar_matcher_mask(struct llamad_grammar_matcher *m, uint8_t *mask)
{
    const struct llamad_grammar_vocab *v = m->v;
    if (!v || m->ended)
        return LLAMAD_EINVAL;
    size_t bytes = ((size_t)v->n_vocab + 7) / 8;
    uint32_t n = state_key(m);
    uint32_t h = n ? key_hash(m->key, n) : 0;
    struct mask_entry *hit = n ? cache_find(m, n, h) : NULL;
    if (hit) {
        memcpy(mask, hit->mask, bytes);
        hit->used = ++m->clock;
        return 0;
    }
    memset(mask, 0, bytes);
    m->work_left = MASK_WORK;
    uint32_t node_mark = m->n_nodes, top_mark = m->n_tops;
    m->memo_on = true;
    m->n_memo = m->n_loops = 0;
    /* Whole subtrees only from a character boundary: the trie's UTF-8 summary
     * counts from its root. */
    walk(m, 0, &m->cur, mask, m->cur.need == 0);
    m->memo_on = false;
    m->n_memo = m->n_loops = 0;
    m->n_nodes = node_mark;
    m->n_tops = top_mark;
    if (m->failed) {
        int rc = m->oom ? LLAMAD_ENOMEM : LLAMAD_ERANGE;
        m->failed = m->oom = false;
        return rc;
    }
    if (matcher_state_can_end(m, &m->cur))
        for (int32_t i = 0; i < v->n_eog; i++)
            mask[v->eog[i] >> 3] |= (uint8_t)(1u << (v->eog[i] & 7));
    if (n)
        cache_store(m, n, h, mask, bytes);
    return 0;
}
