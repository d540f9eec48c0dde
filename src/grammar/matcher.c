/* The matcher: a pushdown recognizer over code points. Its state is a set of
 * stacks; a stack is a chain of nodes (grammar_internal.h), its top a position
 * at a character class, the nodes below the positions to go on at once the
 * rule above them ends. Consuming a character moves every stack whose class
 * holds it one position on, then expands: a reference pushes each of its
 * rule's alternatives (a reference in the last position of its alternative
 * replaces its frame instead, so right recursion and repetitions keep stacks
 * flat), an alternative's end pops. Equal stacks are kept once; an empty stack
 * means the text so far is a whole sentence.
 *
 * Bytes arrive one at a time; a character's leading bytes are held in the
 * state (as the code points they can still become, checked against the
 * stacks' classes) until its last byte comes.
 *
 * Nodes live in one array: those of the current state are compacted after
 * each accepted token; the mask's trie walk (token_mask.c) appends nodes for
 * the prefix it tries and drops them when it backs out. */
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "llamad/base/error.h"

/* Expansion work allowed for one character (a guard against grammars whose
 * nullable rules make the same stacks again and again), and its depth. A mask
 * has a budget of its own (token_mask.c). */
#define STEP_BUDGET 20000
#define EXPAND_DEPTH 1024
#define BOTTOM_HASH 0x5bd1e995u

struct expand {
    struct llamad_grammar_matcher *m;
    struct mstate *out;
    uint32_t budget;
};

static uint32_t chain_hash(uint32_t pos, uint32_t parent_hash)
{
    uint32_t h = pos * 0x9E3779B1u;
    h ^= parent_hash + 0x7F4A7C15u + (h << 6) + (h >> 2);
    return h * 0x85EBCA6Bu;
}

static uint32_t hash_of(const struct llamad_grammar_matcher *m, int32_t node)
{
    return node < 0 ? BOTTOM_HASH : m->nodes[node].hash;
}

bool matcher_grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return true;
    uint32_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, (size_t)n * size);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

static int32_t new_node(struct llamad_grammar_matcher *m, uint32_t pos, int32_t parent)
{
    if (m->n_nodes >= INT32_MAX / 2 ||
        !matcher_grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof *m->nodes)) {
        m->oom = m->failed = true;
        return -2;
    }
    m->nodes[m->n_nodes] =
        (struct mnode){.pos = pos, .parent = parent, .hash = chain_hash(pos, hash_of(m, parent))};
    return (int32_t)m->n_nodes++;
}

static bool same_chain(const struct llamad_grammar_matcher *m, int32_t a, int32_t b)
{
    while (a != b) {
        if (a < 0 || b < 0 || m->nodes[a].pos != m->nodes[b].pos ||
            m->nodes[a].hash != m->nodes[b].hash)
            return false;
        a = m->nodes[a].parent;
        b = m->nodes[b].parent;
    }
    return true;
}

static bool push_top(struct llamad_grammar_matcher *m, struct mstate *out, int32_t top)
{
    if (out->n >= LLAMAD_GRAMMAR_MAX_STACKS) {
        m->failed = true;
        return false;
    }
    if (!matcher_grow((void **)&m->tops, &m->cap_tops, m->n_tops + 1, sizeof *m->tops)) {
        m->oom = m->failed = true;
        return false;
    }
    m->tops[m->n_tops++] = top;
    out->n++;
    return true;
}

/* A stack whose top is (pos, parent) at a character class; reuse is the node
 * already holding exactly that, or -2. Kept unless an equal one is there. */
static void add_top(struct expand *x, uint32_t pos, int32_t parent, int32_t reuse)
{
    struct llamad_grammar_matcher *m = x->m;
    uint32_t h = chain_hash(pos, hash_of(m, parent));
    for (uint32_t k = 0; k < x->out->n; k++) {
        int32_t t = m->tops[x->out->first + k];
        if (t >= 0 && m->nodes[t].hash == h && m->nodes[t].pos == pos &&
            same_chain(m, m->nodes[t].parent, parent))
            return;
    }
    int32_t node = reuse >= 0 ? reuse : new_node(m, pos, parent);
    if (node >= 0)
        push_top(m, x->out, node);
}

static void add_done(struct expand *x)
{
    for (uint32_t k = 0; k < x->out->n; k++)
        if (x->m->tops[x->out->first + k] == TOP_DONE)
            return;
    push_top(x->m, x->out, TOP_DONE);
}

/* Every stack that (pos, parent) becomes once references are pushed and ended
 * alternatives popped, down to character classes or the empty stack. */
static void expand(struct expand *x, uint32_t pos, int32_t parent, uint32_t depth)
{
    struct llamad_grammar_matcher *m = x->m;
    const struct llamad_grammar *g = m->g;
    int32_t reuse = -2;
    for (;;) {
        if (m->failed)
            return;
        if (x->budget-- == 0 || m->work_left-- == 0 || depth > EXPAND_DEPTH) {
            m->failed = true;
            return;
        }
        const struct gelem *e = &g->elems[pos];
        if (e->kind == GE_END) {
            if (parent < 0) {
                add_done(x);
                return;
            }
            if ((uint32_t)parent < m->n_base)
                m->reached[parent] = 1;
            reuse = parent;
            pos = m->nodes[parent].pos;
            parent = m->nodes[parent].parent;
            continue;
        }
        if (e->kind == GE_CHAR) {
            add_top(x, pos, parent, reuse);
            return;
        }
        const struct grule *r = &g->rules[e->arg];
        int32_t base = parent;
        if (g->elems[pos + 1].kind != GE_END) {
            base = new_node(m, pos + 1, parent);
            if (base < -1)
                return;
        }
        for (uint32_t a = 0; a < r->n_alts && !m->failed; a++)
            expand(x, g->alts[r->first_alt + a], base, depth + 1);
        return;
    }
}

/* The code points a partial character can still become: [*lo, *hi], false
 * when none is valid (overlong, surrogate or past U+10FFFF). */
static bool partial_range(const struct mstate *s, uint32_t *lo, uint32_t *hi)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t shift = 6u * s->need;
    uint32_t a = s->cp << shift, b = a | ((1u << shift) - 1);
    if (a < min_cp[s->len])
        a = min_cp[s->len];
    if (b > 0x10FFFF)
        b = 0x10FFFF;
    if (a >= 0xD800 && a <= 0xDFFF)
        a = 0xE000;
    if (b >= 0xD800 && b <= 0xDFFF)
        b = 0xD7FF;
    *lo = a;
    *hi = b;
    return a <= b;
}

static bool partial_feasible(const struct llamad_grammar_matcher *m, const struct mstate *s)
{
    uint32_t lo, hi;
    if (!partial_range(s, &lo, &hi))
        return false;
    for (uint32_t k = 0; k < s->n; k++) {
        int32_t t = m->tops[s->first + k];
        if (t >= 0 && grammar_class_meets(m->g, &m->g->elems[m->nodes[t].pos], lo, hi))
            return true;
    }
    return false;
}

/* Whether states a and b have the same stacks in the same order. */
static bool same_stacks(const struct llamad_grammar_matcher *m, const struct mstate *a,
                        const struct mstate *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t k = 0; k < a->n; k++) {
        int32_t x = m->tops[a->first + k], y = m->tops[b->first + k];
        if (x != y && (x < 0 || y < 0 || !same_chain(m, x, y)))
            return false;
    }
    return true;
}

uint64_t matcher_signature(const struct llamad_grammar_matcher *m, const struct mstate *s,
                           uint32_t cp)
{
    uint64_t sig = 0;
    for (uint32_t k = 0; k < s->n && s->n <= 64; k++) {
        int32_t t = m->tops[s->first + k];
        if (t >= 0 && grammar_class_has(m->g, &m->g->elems[m->nodes[t].pos], cp))
            sig |= 1ull << k;
    }
    return sig;
}

void matcher_ascii_signatures(const struct llamad_grammar_matcher *m, const struct mstate *s,
                              uint64_t sig[128])
{
    memset(sig, 0, 128 * sizeof *sig);
    for (uint32_t k = 0; k < s->n && s->n <= 64; k++) {
        int32_t t = m->tops[s->first + k];
        if (t < 0)
            continue;
        const uint64_t *set = m->g->ascii + 2 * (size_t)m->nodes[t].pos;
        for (uint32_t w = 0; w < 2; w++)
            for (uint64_t bits = set[w]; bits; bits &= bits - 1)
                sig[64 * w + (uint32_t)__builtin_ctzll(bits)] |= 1ull << k;
    }
}

static bool advance_cp(struct llamad_grammar_matcher *m, const struct mstate *s, uint32_t cp,
                       struct mstate *out)
{
    *out = (struct mstate){.first = m->n_tops};
    bool memo = m->memo_on && s->n <= 64;
    uint64_t sig = 0;
    if (memo) {
        sig = matcher_signature(m, s, cp);
        if (!sig)
            return false;
        for (uint32_t i = m->n_memo; i-- > 0;) {
            const struct memo_entry *e = &m->memo[i];
            if (e->first == s->first && e->n == s->n && e->sig == sig) {
                *out = e->result;
                return true;
            }
        }
    }
    uint32_t node_mark = m->n_nodes;
    struct expand x = {.m = m, .out = out, .budget = STEP_BUDGET};
    for (uint32_t k = 0; k < s->n && !m->failed; k++) {
        int32_t t = m->tops[s->first + k];
        if (t < 0 || (memo && !((sig >> k) & 1)))
            continue;
        uint32_t pos = m->nodes[t].pos;
        if (memo || grammar_class_has(m->g, &m->g->elems[pos], cp))
            expand(&x, pos + 1, m->nodes[t].parent, 0);
    }
    bool ok = out->n > 0 && !m->failed;
    if (ok && memo && same_stacks(m, s, out)) {
        /* Back where it was (a string's ordinary character): the walk below
         * goes on in s itself, and its transitions stay remembered. */
        m->n_nodes = node_mark;
        m->n_tops = out->first;
        *out = (struct mstate){.first = s->first, .n = s->n};
    }
    if (ok && memo) {
        if (!matcher_grow((void **)&m->memo, &m->cap_memo, m->n_memo + 1, sizeof *m->memo))
            return ok; /* not remembered: only time is spent */
        m->memo[m->n_memo++] = (struct memo_entry){s->first, s->n, sig, *out};
    }
    return ok;
}

bool matcher_advance_cp(struct llamad_grammar_matcher *m, const struct mstate *s, uint32_t cp,
                        struct mstate *out)
{
    return advance_cp(m, s, cp, out);
}

bool matcher_nonascii_uniform(const struct llamad_grammar_matcher *m, const struct mstate *s)
{
    for (uint32_t k = 0; k < s->n; k++) {
        int32_t t = m->tops[s->first + k];
        if (t < 0)
            continue;
        const struct gelem *e = &m->g->elems[m->nodes[t].pos];
        const uint32_t *r = m->g->ranges + 2 * (size_t)e->arg;
        for (uint32_t i = 0; i < e->n_ranges; i++) {
            bool meets = r[2 * i + 1] >= 0x80;
            bool covers = r[2 * i] <= 0x80 && r[2 * i + 1] >= 0x10FFFF;
            if (meets && !covers)
                return false;
        }
    }
    return true;
}

bool matcher_step(struct llamad_grammar_matcher *m, const struct mstate *s, uint8_t byte,
                  struct mstate *out)
{
    if (s->need == 0) {
        if (byte < 0x80)
            return advance_cp(m, s, byte, out);
        *out = *s;
        if (byte >= 0xC2 && byte <= 0xDF) {
            out->len = 2;
            out->cp = byte & 0x1Fu;
        } else if (byte >= 0xE0 && byte <= 0xEF) {
            out->len = 3;
            out->cp = byte & 0x0Fu;
        } else if (byte >= 0xF0 && byte <= 0xF4) {
            out->len = 4;
            out->cp = byte & 0x07u;
        } else {
            return false;
        }
        out->need = (uint8_t)(out->len - 1);
        return partial_feasible(m, out);
    }
    if ((byte & 0xC0) != 0x80)
        return false;
    *out = *s;
    out->cp = (s->cp << 6) | (byte & 0x3Fu);
    out->need = (uint8_t)(s->need - 1);
    if (out->need > 0)
        return partial_feasible(m, out);
    uint32_t lo, hi;
    if (!partial_range(out, &lo, &hi) || lo != out->cp)
        return false; /* overlong or a surrogate */
    return advance_cp(m, s, out->cp, out);
}

bool matcher_state_can_end(const struct llamad_grammar_matcher *m, const struct mstate *s)
{
    if (s->need)
        return false;
    for (uint32_t k = 0; k < s->n; k++)
        if (m->tops[s->first + k] == TOP_DONE)
            return true;
    return false;
}

int llamad_grammar_matcher_create(const struct llamad_grammar *g,
                                  const struct llamad_grammar_vocab *v,
                                  struct llamad_grammar_matcher **out)
{
    *out = NULL;
    struct llamad_grammar_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return LLAMAD_ENOMEM;
    m->g = g;
    m->v = v;
    m->cur = (struct mstate){0};
    m->work_left = UINT64_MAX;
    struct expand x = {.m = m, .out = &m->cur, .budget = STEP_BUDGET};
    const struct grule *root = &g->rules[g->root];
    for (uint32_t a = 0; a < root->n_alts && !m->failed; a++)
        expand(&x, g->alts[root->first_alt + a], -1, 0);
    if (m->failed) {
        int rc = m->oom ? LLAMAD_ENOMEM : LLAMAD_ERANGE;
        llamad_grammar_matcher_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void llamad_grammar_matcher_free(struct llamad_grammar_matcher *m)
{
    if (!m)
        return;
    free(m->nodes);
    free(m->tops);
    free(m->key);
    free(m->memo);
    free(m->levels);
    free(m->reached);
    for (int i = 0; i < LLAMAD_GRAMMAR_MASK_CACHE; i++) {
        free(m->cache[i].key);
        free(m->cache[i].mask);
    }
    free(m);
}

int llamad_grammar_matcher_clone(const struct llamad_grammar_matcher *m,
                                 struct llamad_grammar_matcher **out)
{
    struct llamad_grammar_matcher *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return LLAMAD_ENOMEM;
    c->g = m->g;
    c->v = m->v;
    c->cur = m->cur;
    c->ended = m->ended;
    c->n_nodes = m->n_nodes;
    c->n_tops = m->n_tops;
    if (!matcher_grow((void **)&c->nodes, &c->cap_nodes, m->n_nodes + 1, sizeof *c->nodes) ||
        !matcher_grow((void **)&c->tops, &c->cap_tops, m->n_tops + 1, sizeof *c->tops)) {
        llamad_grammar_matcher_free(c);
        return LLAMAD_ENOMEM;
    }
    if (m->n_nodes)
        memcpy(c->nodes, m->nodes, m->n_nodes * sizeof *c->nodes);
    if (m->n_tops)
        memcpy(c->tops, m->tops, m->n_tops * sizeof *c->tops);
    *out = c;
    return 0;
}

/* Keeps only the nodes the current stacks reach. A parent is always older
 * than its children (lower index), so one pass in index order renumbers. */
static void compact(struct llamad_grammar_matcher *m)
{
    int32_t *map = malloc(((size_t)m->n_nodes + 1) * sizeof *map);
    if (!map)
        return; /* not compacted this time: only memory is spent */
    for (uint32_t i = 0; i < m->n_nodes; i++)
        map[i] = -1;
    for (uint32_t k = 0; k < m->cur.n; k++)
        for (int32_t t = m->tops[m->cur.first + k]; t >= 0 && map[t] == -1; t = m->nodes[t].parent)
            map[t] = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        if (map[i] < 0)
            continue;
        struct mnode nd = m->nodes[i];
        if (nd.parent >= 0)
            nd.parent = map[nd.parent];
        map[i] = (int32_t)n;
        m->nodes[n++] = nd;
    }
    m->n_nodes = n;
    for (uint32_t k = 0; k < m->cur.n; k++) {
        int32_t t = m->tops[m->cur.first + k];
        m->tops[k] = t >= 0 ? map[t] : t;
    }
    m->cur.first = 0;
    m->n_tops = m->cur.n;
    free(map);
}

int llamad_grammar_matcher_accept_bytes(struct llamad_grammar_matcher *m, const uint8_t *bytes,
                                        size_t len)
{
    if (m->ended)
        return LLAMAD_EINVAL;
    uint32_t node_mark = m->n_nodes, top_mark = m->n_tops;
    struct mstate s = m->cur, next;
    m->work_left = UINT64_MAX;
    for (size_t i = 0; i < len; i++) {
        if (!matcher_step(m, &s, bytes[i], &next)) {
            int rc = m->oom ? LLAMAD_ENOMEM : m->failed ? LLAMAD_ERANGE : LLAMAD_EINVAL;
            m->n_nodes = node_mark;
            m->n_tops = top_mark;
            m->failed = m->oom = false;
            return rc;
        }
        s = next;
    }
    m->cur = s;
    compact(m);
    return 0;
}

int llamad_grammar_matcher_accept(struct llamad_grammar_matcher *m, int32_t token)
{
    const struct llamad_grammar_vocab *v = m->v;
    if (!v || token < 0 || token >= v->n_vocab || m->ended)
        return LLAMAD_EINVAL;
    if (v->is_eog[token]) {
        if (!matcher_state_can_end(m, &m->cur))
            return LLAMAD_EINVAL;
        m->ended = true;
        return 0;
    }
    size_t len = v->off[token + 1] - v->off[token];
    if (len == 0)
        return LLAMAD_EINVAL;
    return llamad_grammar_matcher_accept_bytes(m, v->blob + v->off[token], len);
}

bool llamad_grammar_matcher_can_end(const struct llamad_grammar_matcher *m)
{
    return !m->ended && matcher_state_can_end(m, &m->cur);
}

bool llamad_grammar_matcher_can_continue(const struct llamad_grammar_matcher *m)
{
    if (m->ended)
        return false;
    for (uint32_t k = 0; k < m->cur.n; k++)
        if (m->tops[m->cur.first + k] >= 0)
            return true;
    return false;
}

bool llamad_grammar_matcher_allows(struct llamad_grammar_matcher *m, int32_t token)
{
    const struct llamad_grammar_vocab *v = m->v;
    if (!v || token < 0 || token >= v->n_vocab || m->ended)
        return false;
    if (v->is_eog[token])
        return matcher_state_can_end(m, &m->cur);
    uint32_t node_mark = m->n_nodes, top_mark = m->n_tops;
    struct mstate s = m->cur, next;
    m->work_left = UINT64_MAX;
    bool ok = v->off[token + 1] > v->off[token];
    for (uint32_t i = v->off[token]; ok && i < v->off[token + 1]; i++) {
        ok = matcher_step(m, &s, v->blob[i], &next);
        s = next;
    }
    m->n_nodes = node_mark;
    m->n_tops = top_mark;
    m->failed = m->oom = false;
    return ok;
}

bool llamad_grammar_accepts(const struct llamad_grammar *g, const char *text, size_t len)
{
    struct llamad_grammar_matcher *m;
    if (llamad_grammar_matcher_create(g, NULL, &m))
        return false;
    bool ok = llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)text, len) == 0 &&
              llamad_grammar_matcher_can_end(m);
    llamad_grammar_matcher_free(m);
    return ok;
}
