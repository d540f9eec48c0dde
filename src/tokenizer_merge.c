#include "tokenizer_merge.h"

#include <stdlib.h>

#include "llamad/error.h"

/* A candidate merge of symbol `left` with its right neighbour `right`, valid as
 * long as both still hold the nodes they held when it was queued. */
struct llamad_merge_candidate {
    double priority;
    int32_t left, right, left_node, right_node, id;
};

static bool before(const struct llamad_merge_candidate *a, const struct llamad_merge_candidate *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

static void heap_push(struct llamad_merger *m, struct llamad_merge_candidate c)
{
    size_t i = m->n_heap++;
    while (i > 0 && before(&c, &m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = c;
}

static struct llamad_merge_candidate heap_pop(struct llamad_merger *m)
{
    struct llamad_merge_candidate top = m->heap[0], last = m->heap[--m->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->n_heap)
            break;
        if (c + 1 < m->n_heap && before(&m->heap[c + 1], &m->heap[c]))
            c++;
        if (!before(&m->heap[c], &last))
            break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (m->n_heap > 0)
        m->heap[i] = last;
    return top;
}

/* Queues the merge of adjacent symbols a and b when the caller says they merge. */
static void consider(struct llamad_merger *m, int32_t a, int32_t b)
{
    if (a < 0 || b < 0)
        return;
    struct llamad_merge_candidate c = {.left = a, .right = b};
    c.left_node = m->sym[a].node;
    c.right_node = m->sym[b].node;
    if (m->pair(m->ctx, &m->node[c.left_node], &m->node[c.right_node], &c.priority, &c.id))
        heap_push(m, c);
}

static void *grow(void *p, size_t count, size_t size)
{
    return count > SIZE_MAX / size ? NULL : realloc(p, count * size);
}

int llamad_merger_start(struct llamad_merger *m, size_t n)
{
    m->n_sym = m->n_node = 0;
    m->n_heap = 0;
    if (n <= m->room)
        return LLAMAD_OK;
    if (n > INT32_MAX / 2)
        return LLAMAD_ERANGE;
    /* n symbols take at most n - 1 merges (2n nodes), and queue at most n - 1
     * pairs at the start and two per merge (3n candidates). */
    void *sym = grow(m->sym, n, sizeof *m->sym);
    if (sym)
        m->sym = sym;
    void *node = grow(m->node, 2 * n, sizeof *m->node);
    if (node)
        m->node = node;
    void *heap = grow(m->heap, 3 * n, sizeof *m->heap);
    if (heap)
        m->heap = heap;
    if (!sym || !node || !heap)
        return LLAMAD_ENOMEM;
    m->room = n;
    return LLAMAD_OK;
}

void llamad_merger_push(struct llamad_merger *m, uint32_t start, uint32_t len, int32_t id)
{
    int32_t k = m->n_sym++;
    m->node[k] = (struct llamad_merge_node){start, len, id, -1, -1};
    m->sym[k] = (struct llamad_merge_symbol){k - 1, -1, k};
    if (k > 0)
        m->sym[k - 1].next = k;
}

void llamad_merger_run(struct llamad_merger *m)
{
    m->n_node = m->n_sym;
    for (int32_t i = 1; i < m->n_sym; i++)
        consider(m, i - 1, i);
    while (m->n_heap > 0) {
        struct llamad_merge_candidate c = heap_pop(m);
        struct llamad_merge_symbol *l = &m->sym[c.left], *r = &m->sym[c.right];
        if (l->node != c.left_node || r->node != c.right_node)
            continue; /* one side changed since this pair was queued */
        const struct llamad_merge_node *ln = &m->node[l->node], *rn = &m->node[r->node];
        int32_t k = m->n_node++;
        m->node[k] = (struct llamad_merge_node){ln->start, ln->len + rn->len, c.id, l->node,
                                                r->node};
        l->node = k;
        r->node = -1;
        l->next = r->next;
        if (r->next >= 0)
            m->sym[r->next].prev = c.left;
        consider(m, l->prev, c.left);
        consider(m, c.left, l->next);
    }
}

void llamad_merger_free(struct llamad_merger *m)
{
    free(m->sym);
    free(m->node);
    free(m->heap);
}
