/* Grammars as the matcher uses them: the parser's rules checked (every rule
 * defined, a root, no left recursion) and flattened into one element array. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "llamad/base/error.h"

void grammar_where(const char *text, size_t len, size_t at, char *buf, size_t bufsz)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < len; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    snprintf(buf, bufsz, "line %zu, column %zu: ", line, col);
}

bool grammar_class_meets(const struct llamad_grammar *g, const struct gelem *e, uint32_t lo,
                         uint32_t hi)
{
    const uint32_t *r = g->ranges + 2 * (size_t)e->arg;
    for (uint32_t i = 0; i < e->n_ranges; i++) {
        if (!e->negated && r[2 * i] <= hi && r[2 * i + 1] >= lo)
            return true;
        if (e->negated && r[2 * i] <= lo && r[2 * i + 1] >= hi)
            return false; /* one merged range covers all of [lo, hi] */
    }
    return e->negated != 0;
}

static int link_fail(const char *text, size_t len, size_t at, char *err, size_t errsz, int code,
                     const char *what, const struct gbnf_rule *r)
{
    char where[64];
    grammar_where(text, len, at == SIZE_MAX ? 0 : at, where, sizeof where);
    if (r && r->name)
        return llamad_fail(err, errsz, code, "%s%s '%.*s'", where, what,
                           (int)(r->name_len > 64 ? 64 : r->name_len), r->name);
    return llamad_fail(err, errsz, code, "%s%s%s", where, what,
                       r ? " (a group or repetition)" : "");
}

/* Nullable rules (those that can match the empty text), by a worklist: an
 * alternative becomes nullable once every element of it is a nullable rule. */
static int find_nullable(const struct llamad_grammar *g, uint8_t *nullable)
{
    uint32_t *pending = calloc(g->n_alts, sizeof *pending);
    uint32_t *alt_rule = malloc((size_t)g->n_alts * sizeof *alt_rule);
    uint32_t *uses_first = calloc((size_t)g->n_rules + 1, sizeof *uses_first);
    uint32_t *uses = NULL, *work = malloc((size_t)g->n_rules * sizeof *work);
    uint32_t n_uses = 0, n_work = 0;
    int rc = LLAMAD_ENOMEM;
    if (!pending || !alt_rule || !uses_first || !work)
        goto out;
    /* uses[uses_first[r] ..] lists the alternatives (all of whose elements are
     * references) that refer to r, once per reference. */
    for (uint32_t r = 0; r < g->n_rules; r++)
        for (uint32_t a = 0; a < g->rules[r].n_alts; a++) {
            uint32_t ai = g->rules[r].first_alt + a;
            alt_rule[ai] = r;
            bool all_refs = true;
            uint32_t n = 0;
            for (uint32_t pos = g->alts[ai]; g->elems[pos].kind != GE_END; pos++, n++)
                all_refs = all_refs && g->elems[pos].kind == GE_REF;
            pending[ai] = all_refs ? n : UINT32_MAX;
            if (all_refs) {
                for (uint32_t pos = g->alts[ai]; g->elems[pos].kind != GE_END; pos++)
                    uses_first[g->elems[pos].arg + 1]++;
                n_uses += n;
            }
            if (all_refs && n == 0 && !nullable[r]) {
                nullable[r] = 1;
                work[n_work++] = r;
            }
        }
    for (uint32_t r = 0; r < g->n_rules; r++)
        uses_first[r + 1] += uses_first[r];
    uses = malloc(((size_t)n_uses + 1) * sizeof *uses);
    uint32_t *fill = malloc(((size_t)g->n_rules + 1) * sizeof *fill);
    if (!uses || !fill) {
        free(fill);
        goto out;
    }
    memcpy(fill, uses_first, (size_t)g->n_rules * sizeof *fill);
    for (uint32_t ai = 0; ai < g->n_alts; ai++)
        if (pending[ai] != UINT32_MAX)
            for (uint32_t pos = g->alts[ai]; g->elems[pos].kind != GE_END; pos++)
                uses[fill[g->elems[pos].arg]++] = ai;
    free(fill);
    while (n_work) {
        uint32_t r = work[--n_work];
        for (uint32_t k = uses_first[r]; k < uses_first[r + 1]; k++) {
            uint32_t ai = uses[k];
            if (--pending[ai] == 0 && !nullable[alt_rule[ai]]) {
                nullable[alt_rule[ai]] = 1;
                work[n_work++] = alt_rule[ai];
            }
        }
    }
    rc = 0;
out:
    free(pending);
    free(alt_rule);
    free(uses_first);
    free(uses);
    free(work);
    return rc;
}

/* Left recursion: a rule that can begin with itself (after nullable elements).
 * An iterative depth-first search over the "can begin with" edges; returns the
 * rule on a cycle, or UINT32_MAX. */
static uint32_t find_left_cycle(const struct llamad_grammar *g, const uint8_t *nullable,
                                uint8_t *color, uint32_t *stack_rule, uint32_t *stack_pos)
{
    for (uint32_t start = 0; start < g->n_rules; start++) {
        if (color[start])
            continue;
        stack_rule[0] = start;
        stack_pos[0] = 0;
        color[start] = 1;
        uint32_t depth = 1;
        while (depth) {
            uint32_t r = stack_rule[depth - 1];
            const struct grule *rule = &g->rules[r];
            /* stack_pos: the alternative of r to look at next; its prefix of
             * references is walked again from the start after each visit. */
            uint32_t a = stack_pos[depth - 1];
            if (a >= rule->n_alts) {
                color[r] = 2;
                depth--;
                continue;
            }
            stack_pos[depth - 1]++;
            for (uint32_t pos = g->alts[rule->first_alt + a]; g->elems[pos].kind == GE_REF; pos++) {
                uint32_t t = g->elems[pos].arg;
                if (color[t] == 1)
                    return t;
                if (color[t] == 0) {
                    /* visit t now; this alternative's later references are
                     * looked at when it is visited again (stack_pos went back) */
                    stack_pos[depth - 1]--;
                    color[t] = 1;
                    stack_rule[depth] = t;
                    stack_pos[depth] = 0;
                    depth++;
                    break;
                }
                if (!nullable[t])
                    break;
            }
        }
    }
    return UINT32_MAX;
}

/* Each CHAR element's class among the ASCII characters, as a bit set: the
 * matcher tests those most, a whole state's stacks at once. */
static uint64_t *ascii_sets(const struct llamad_grammar *g)
{
    uint64_t *sets = calloc(2 * ((size_t)g->n_elems + 1), sizeof *sets);
    if (!sets)
        return NULL;
    for (uint32_t i = 0; i < g->n_elems; i++) {
        const struct gelem *e = &g->elems[i];
        if (e->kind != GE_CHAR)
            continue;
        const uint32_t *r = g->ranges + 2 * (size_t)e->arg;
        for (uint32_t k = 0; k < e->n_ranges && r[2 * k] < 128; k++) {
            uint32_t hi = r[2 * k + 1] < 128 ? r[2 * k + 1] : 127;
            for (uint32_t cp = r[2 * k]; cp <= hi; cp++)
                sets[2 * (size_t)i + (cp >> 6)] |= 1ull << (cp & 63);
        }
        if (e->negated) {
            sets[2 * (size_t)i] = ~sets[2 * (size_t)i];
            sets[2 * (size_t)i + 1] = ~sets[2 * (size_t)i + 1];
        }
    }
    return sets;
}

int grammar_link(struct llamad_grammar *g, struct gbnf_rule *rules, uint32_t n_rules,
                 const char *text, size_t len, char *err, size_t errsz)
{
    uint32_t root = UINT32_MAX;
    size_t n_elems = 0, n_alts = 0;
    for (uint32_t r = 0; r < n_rules; r++) {
        if (rules[r].def_at == SIZE_MAX)
            return link_fail(text, len, rules[r].used_at, err, errsz, LLAMAD_EFORMAT,
                             "undefined rule", &rules[r]);
        if (rules[r].name && rules[r].name_len == 4 && !memcmp(rules[r].name, "root", 4))
            root = r;
        n_elems += rules[r].n_body;
        for (uint32_t k = 0; k < rules[r].n_body; k++)
            n_alts += rules[r].body[k].kind == GE_END;
    }
    if (root == UINT32_MAX)
        return link_fail(text, len, 0, err, errsz, LLAMAD_EFORMAT, "the grammar has no rule 'root'",
                         NULL);
    g->elems = malloc((n_elems + 1) * sizeof *g->elems);
    g->alts = malloc((n_alts + 1) * sizeof *g->alts);
    g->rules = calloc((size_t)n_rules + 1, sizeof *g->rules);
    if (!g->elems || !g->alts || !g->rules)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    g->n_rules = n_rules;
    g->root = root;
    for (uint32_t r = 0; r < n_rules; r++) {
        g->rules[r].first_alt = g->n_alts;
        uint32_t start = g->n_elems;
        for (uint32_t k = 0; k < rules[r].n_body; k++) {
            g->elems[g->n_elems++] = rules[r].body[k];
            if (rules[r].body[k].kind == GE_END) {
                g->alts[g->n_alts++] = start;
                start = g->n_elems;
            }
        }
        g->rules[r].n_alts = g->n_alts - g->rules[r].first_alt;
    }
    if (!(g->ascii = ascii_sets(g)))
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    uint8_t *nullable = calloc(n_rules, 1), *color = calloc(n_rules, 1);
    uint32_t *stack_rule = malloc((size_t)n_rules * sizeof *stack_rule);
    uint32_t *stack_pos = malloc((size_t)n_rules * sizeof *stack_pos);
    int rc = 0;
    if (!nullable || !color || !stack_rule || !stack_pos || find_nullable(g, nullable)) {
        rc = llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    } else {
        uint32_t r = find_left_cycle(g, nullable, color, stack_rule, stack_pos);
        if (r != UINT32_MAX)
            rc = link_fail(text, len, rules[r].def_at, err, errsz, LLAMAD_EFORMAT,
                           "left recursion (a rule that can begin with itself) through rule",
                           &rules[r]);
    }
    free(nullable);
    free(color);
    free(stack_rule);
    free(stack_pos);
    return rc;
}

void llamad_grammar_free(struct llamad_grammar *g)
{
    if (!g)
        return;
    free(g->elems);
    free(g->ranges);
    free(g->alts);
    free(g->rules);
    free(g->ascii);
    free(g);
}
