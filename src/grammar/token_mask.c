/* The allowed-token mask: one walk of the vocabulary's byte trie with the
 * matcher's stacks, a subtree dropped at the first byte no stack survives;
 * and a cache of masks.
 *
 * The cache: a mask depends on the state's partial character, its stacks (how
 * many, in order) and, of each stack, only the nodes the walk read: its top
 * and the nodes below that the walk went back down into (m->reached) when the
 * rules above them ended. A stack read down to its bottom is keyed as such
 * (past it the grammar ends). So a place met again under other outer frames
 * (inside the 5th item of a list as inside the 4th, where each item is a
 * position of its own) costs one lookup and a copy, as does a place inside a
 * string or a number met again. The cache belongs to the matcher, so to one
 * generation and the thread that runs it; no lock. States whose key is longer
 * than KEY_MAX (very deep nesting) are not cached.
 *
 * Inside the walk, two shortcuts (see walk): transitions are remembered per
 * state by which stacks a character takes, and chains (grammar_internal.h):
 * from a state, where its commonest characters lead, level after level. A
 * subtree of the trie whose bytes all keep the chain going is allowed whole,
 * or, where the chain ends in a refusal (a bounded string's last length), its
 * tokens short enough are allowed by a scan of their lengths, without a walk.
 * Together they make a first visit cheap where it used to be dearest (inside
 * a string, where nearly every token fits). This is instead of XGrammar's
 * per-position split into context-independent and context-dependent tokens:
 * the key is exactly what the mask read, so it is never wrong, and it drops
 * the context the tokens did not reach. */
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "llamad/base/error.h"

#define KEY_MAX 4096
/* Expansion steps one mask may take in all (a few million for JSON on a 128k
 * vocabulary); past it the grammar counts as too ambiguous. */
#define MASK_WORK 20000000u
#define KEY_BOTTOM 0xFFFFFFFDu /* the stack ends here, and the walk read it all */
#define KEY_DONE 0xFFFFFFFEu   /* an empty stack */
#define KEY_SEP 0xFFFFFFFFu    /* the rest of the stack was not read */

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

/* After a walk: the current state's key into m->key (see the cache above);
 * its length, or 0 when not cached. */
static uint32_t state_key(struct llamad_grammar_matcher *m)
{
    const struct mstate *s = &m->cur;
    uint32_t n = 0;
    if (!key_push(m, &n, s->cp) || !key_push(m, &n, (uint32_t)s->need << 8 | s->len) ||
        !key_push(m, &n, s->n))
        return 0;
    for (uint32_t k = 0; k < s->n; k++) {
        int32_t t = m->tops[s->first + k];
        if (t == TOP_DONE) {
            if (!key_push(m, &n, KEY_DONE))
                return 0;
            continue;
        }
        do {
            if (!key_push(m, &n, m->nodes[t].pos))
                return 0;
            t = m->nodes[t].parent;
        } while (t >= 0 && m->reached[t]);
        if (!key_push(m, &n, t < 0 ? KEY_BOTTOM : KEY_SEP))
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

/* The hash of what every key of the current state starts with: the partial
 * character, the number of stacks and their tops. */
static uint32_t tops_hash(const struct llamad_grammar_matcher *m)
{
    const struct mstate *s = &m->cur;
    uint32_t k[3] = {s->cp, (uint32_t)s->need << 8 | s->len, s->n};
    uint32_t h = key_hash(k, 3);
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t t = m->tops[s->first + i];
        h = (h ^ (t == TOP_DONE ? KEY_DONE : m->nodes[t].pos)) * 16777619u;
    }
    return h;
}

/* Whether the current state has the parts of entry e's key. */
static bool entry_matches(const struct llamad_grammar_matcher *m, const struct mask_entry *e)
{
    const struct mstate *s = &m->cur;
    const uint32_t *k = e->key;
    if (k[0] != s->cp || k[1] != ((uint32_t)s->need << 8 | s->len) || k[2] != s->n)
        return false;
    k += 3;
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t t = m->tops[s->first + i];
        if (t == TOP_DONE) {
            if (*k++ != KEY_DONE)
                return false;
            continue;
        }
        for (;; t = m->nodes[t].parent, k++) {
            if (*k == KEY_SEP || *k == KEY_BOTTOM) {
                if (*k++ == KEY_BOTTOM && t >= 0)
                    return false;
                break;
            }
            if (t < 0 || *k != m->nodes[t].pos)
                return false;
        }
    }
    return true;
}

static struct mask_entry *cache_find(struct llamad_grammar_matcher *m, uint32_t h)
{
    for (int i = 0; i < LLAMAD_GRAMMAR_MASK_CACHE; i++) {
        struct mask_entry *e = &m->cache[i];
        if (e->mask && e->hash == h && entry_matches(m, e))
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

/* Subtrees of fewer tokens are walked rather than checked against a chain
 * (which may have to make its levels). Measured with bench_grammar's schema
 * generations on the 128k vocabulary, p99 mask time: 16 tokens 1.04 ms, 8
 * 0.93 ms, 4 0.89 ms, 2 1.01 ms. */
#define WHOLE_MIN 4

/* Levels a chain follows at most: tokens are rarely longer. */
#define CHAIN_MAX 48
#define NEXT_UNKNOWN (-2)

static bool grow_levels(struct llamad_grammar_matcher *m)
{
    return matcher_grow((void **)&m->levels, &m->cap_levels, m->n_levels + 1, sizeof *m->levels);
}

static int64_t find_level(const struct llamad_grammar_matcher *m, const struct mstate *s)
{
    for (uint32_t i = m->n_levels; i-- > 0;)
        if (m->levels[i].first == s->first && m->levels[i].n == s->n)
            return i;
    return -1;
}

/* The index in m->levels of state s's level (at a character boundary),
 * found or made (its next not followed yet); -1 when out of memory or after a
 * failure. Indices, not pointers: the walks below the caller grow m->levels,
 * which may move it. */
static int64_t level_of(struct llamad_grammar_matcher *m, const struct mstate *s)
{
    int64_t found = find_level(m, s);
    if (found >= 0 || m->failed)
        return found;
    /* The commonest signature among ASCII characters: where most of them go. */
    uint64_t sig[128], seen[8], best = 0;
    int counts[8], n_seen = 0, best_count = 0;
    struct chain_level l = {.first = s->first, .n = s->n, .next = NEXT_UNKNOWN};
    matcher_ascii_signatures(m, s, sig);
    for (uint32_t b = 0; b < 128; b++) {
        if (!sig[b]) {
            l.refused[b >> 6] |= 1ull << (b & 63);
            continue;
        }
        int k = 0;
        while (k < n_seen && seen[k] != sig[b])
            k++;
        if (k == n_seen) {
            if (n_seen == 8)
                continue; /* rarer signatures cannot be the commonest */
            seen[n_seen] = sig[b];
            counts[n_seen++] = 0;
        }
        if (++counts[k] > best_count) {
            best_count = counts[k];
            best = sig[b];
        }
    }
    struct mstate next = {0};
    bool have_next = false;
    for (uint32_t b = 0; b < 128 && best; b++) {
        if (sig[b] != best)
            continue;
        if (!have_next && !(have_next = matcher_advance_cp(m, s, b, &next)))
            break;
        l.ascii[b >> 6] |= 1ull << (b & 63);
    }
    if (m->failed)
        return -1;
    bool uniform = matcher_nonascii_uniform(m, s);
    uint64_t sig_above = uniform ? matcher_signature(m, s, 0x80) : 1;
    l.nonascii_refused = uniform && sig_above == 0 && s->n <= 64;
    l.to_first = next.first;
    l.to_n = next.n;
    l.nonascii = have_next && uniform && sig_above == best;
    if (!grow_levels(m))
        return -1;
    if (!have_next)
        l.next = -1;
    else if (next.first == s->first && next.n == s->n)
        l.next = (int32_t)m->n_levels;
    m->levels[m->n_levels] = l;
    return m->n_levels++;
}

/* The level after level `at` (made when not there yet), or -1. */
static int64_t next_level(struct llamad_grammar_matcher *m, int64_t at)
{
    if (m->levels[at].next != NEXT_UNKNOWN)
        return m->levels[at].next;
    struct mstate to = {.first = m->levels[at].to_first, .n = m->levels[at].to_n};
    int64_t next = level_of(m, &to);
    m->levels[at].next = (int32_t)next;
    return next;
}

/* Drops the levels from `keep` on, and the links older levels have to them. */
static void drop_levels(struct llamad_grammar_matcher *m, uint32_t keep)
{
    if (m->n_levels <= keep)
        return;
    for (uint32_t i = 0; i < keep; i++)
        if (m->levels[i].next >= (int32_t)keep)
            m->levels[i].next = NEXT_UNKNOWN;
    m->n_levels = keep;
}

static bool covers(const uint64_t set[2], const uint64_t *bytes)
{
    return !(bytes[0] & ~set[0]) && !(bytes[1] & ~set[1]);
}

#define REACH_ALL INT32_MAX
#define REACH_UNKNOWN (-1)

/* How far the chain from level `at` takes the tokens of c's subtree, each
 * character at its place among the level's characters: all of them
 * (REACH_ALL); those of at most r characters from here, the longer ones
 * refused where the chain stops (r); or not known without walking. */
static int32_t chain_reach(struct llamad_grammar_matcher *m, int64_t at, uint32_t c)
{
    const struct llamad_grammar_vocab *v = m->v;
    const uint64_t *bytes = v->sub_ascii + 2 * (size_t)c;
    uint8_t f = v->sub_flags[c];
    bool nonascii = f & SUB_NONASCII;
    if (nonascii && !(f & SUB_UTF8_OK))
        return REACH_UNKNOWN;
    for (int32_t r = 0; r < v->sub_depth[c]; r++) {
        if (at < 0 || r == CHAIN_MAX)
            return REACH_UNKNOWN;
        const struct chain_level *l = &m->levels[at];
        if (!covers(l->ascii, bytes) || (nonascii && !l->nonascii)) {
            bool refused = covers(l->refused, bytes) && (!nonascii || l->nonascii_refused);
            return refused ? r : REACH_UNKNOWN;
        }
        if (l->next == at)
            return REACH_ALL; /* the same characters from here on */
        at = next_level(m, at);
    }
    return REACH_ALL;
}

/* The tokens at trie_tokens[from .. to) of at most `chars` characters. */
static void allow_short(const struct llamad_grammar_vocab *v, uint32_t from, uint32_t to,
                        uint32_t chars, uint8_t *mask)
{
    for (uint32_t k = from; k < to; k++)
        if (v->tok_chars[k] <= chars) {
            int32_t t = v->trie_tokens[k];
            mask[t >> 3] |= (uint8_t)(1u << (t & 7));
        }
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
 * which the next children reuse. Where every byte of a large subtree keeps
 * s's chain going (a string's ordinary characters, within its length), the
 * subtree is allowed whole. */
static void walk(struct llamad_grammar_matcher *m, uint32_t node, uint32_t chars,
                 const struct mstate *s, uint8_t *mask, bool whole_ok)
{
    const struct llamad_grammar_vocab *v = m->v;
    uint32_t keep_nodes = m->n_nodes, keep_tops = m->n_tops, keep_memo = m->n_memo;
    uint32_t keep_levels = m->n_levels;
    /* s's chain level, if the walk above made one: its steps are known */
    int64_t level = s->need == 0 ? find_level(m, s) : -1;
    bool level_tried = level >= 0;
    for (uint32_t c = node + 1; c < v->node_end[node]; c = v->node_end[c]) {
        uint32_t tok_end = v->tok_first[v->node_end[c]];
        if (whole_ok && s->need == 0 && tok_end - v->tok_first[c] >= WHOLE_MIN) {
            if (!level_tried) {
                level_tried = true;
                level = level_of(m, s);
                if (m->failed)
                    return;
                keep_nodes = m->n_nodes;
                keep_tops = m->n_tops;
                keep_memo = m->n_memo;
                keep_levels = m->n_levels;
            }
            int32_t reach = level >= 0 ? chain_reach(m, level, c) : REACH_UNKNOWN;
            if (m->failed)
                return;
            if (m->n_levels > keep_levels) { /* levels made: kept while s is walked */
                keep_nodes = m->n_nodes;
                keep_tops = m->n_tops;
                keep_memo = m->n_memo;
                keep_levels = m->n_levels;
            }
            if (reach == REACH_ALL) {
                allow_range(v, v->tok_first[c], tok_end, mask);
                continue;
            }
            if (reach != REACH_UNKNOWN) { /* 0: the whole subtree refused */
                if (reach > 0)
                    allow_short(v, v->tok_first[c], tok_end, chars + (uint32_t)reach, mask);
                continue;
            }
        }
        uint32_t memo_before = m->n_memo;
        struct mstate next;
        bool ok;
        uint8_t b = v->node_byte[c];
        if (level >= 0 && b < 0x80 && ((m->levels[level].ascii[b >> 6] >> (b & 63)) & 1)) {
            /* one of the chain's characters: the step is known */
            next = (struct mstate){.first = m->levels[level].to_first, .n = m->levels[level].to_n};
            ok = true;
        } else {
            ok = matcher_step(m, s, b, &next);
        }
        if (m->n_memo > memo_before && m->memo[m->n_memo - 1].first == s->first) {
            keep_nodes = m->n_nodes;
            keep_tops = m->n_tops;
            keep_memo = m->n_memo;
        }
        if (ok) {
            allow_range(v, v->tok_first[c], v->tok_first[c + 1], mask);
            if (v->node_end[c] > c + 1)
                walk(m, c, chars + ((b & 0xC0) != 0x80), &next, mask, whole_ok);
        }
        m->n_nodes = keep_nodes;
        m->n_tops = keep_tops;
        m->n_memo = keep_memo;
        drop_levels(m, keep_levels);
        if (m->failed)
            return;
    }
}

/* m->reached for the current state's n nodes, all clear. */
static bool grow_reached(struct llamad_grammar_matcher *m, uint32_t n)
{
    if (!matcher_grow((void **)&m->reached, &m->cap_reached, n, 1))
        return false;
    if (n)
        memset(m->reached, 0, n);
    return true;
}

int llamad_grammar_matcher_mask(struct llamad_grammar_matcher *m, uint8_t *mask)
{
    const struct llamad_grammar_vocab *v = m->v;
    if (!v || m->ended)
        return LLAMAD_EINVAL;
    size_t bytes = ((size_t)v->n_vocab + 7) / 8;
    uint32_t h = tops_hash(m);
    struct mask_entry *hit = cache_find(m, h);
    if (hit) {
        memcpy(mask, hit->mask, bytes);
        hit->used = ++m->clock;
        return 0;
    }
    memset(mask, 0, bytes);
    m->work_left = MASK_WORK;
    uint32_t node_mark = m->n_nodes, top_mark = m->n_tops;
    if (!grow_reached(m, node_mark))
        return LLAMAD_ENOMEM;
    m->n_base = node_mark;
    m->memo_on = true;
    m->n_memo = m->n_levels = 0;
    /* Whole subtrees only from a character boundary: the trie's UTF-8 summary
     * counts from its root. */
    walk(m, 0, 0, &m->cur, mask, m->cur.need == 0);
    m->memo_on = false;
    m->n_base = 0;
    m->n_memo = m->n_levels = 0;
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
    uint32_t n = state_key(m);
    if (n)
        cache_store(m, n, h, mask, bytes);
    return 0;
}
