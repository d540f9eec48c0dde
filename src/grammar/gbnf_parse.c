/* GBNF text into rules: a recursive-descent parser over the text, with every
 * repetition rewritten into helper rules as it is read (grammar_internal.h).
 * grammar_link (grammar.c) then checks and flattens what it built. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "llamad/base/error.h"
#include "llamad/base/utf8.h"

#define NO_ITEM UINT32_MAX
#define NAME_SLOTS_MIN 64

struct parser {
    const char *s;
    size_t len, i;
    struct gbnf_rule *rules;
    uint32_t n_rules, cap_rules;
    uint32_t *slots; /* open addressing over named rules: rule id + 1, 0 empty */
    uint32_t n_slots;
    struct llamad_grammar *g; /* its ranges fill as classes are read */
    uint32_t cap_ranges;
    uint32_t n_elems; /* elements in all bodies */
    char *err;
    size_t errsz;
    int rc; /* the first failure */
};

static int fail(struct parser *p, size_t at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, size_t at, int code, const char *fmt, ...)
{
    if (p->rc)
        return p->rc;
    p->rc = code;
    if (p->err && p->errsz) {
        char where[64], what[LLAMAD_ERR_MAX];
        grammar_where(p->s, p->len, at, where, sizeof where);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(p->err, p->errsz, "%s%s", where, what);
    }
    return code;
}

static int oom(struct parser *p)
{
    return fail(p, p->i, LLAMAD_ENOMEM, "out of memory");
}

static bool grow(void **ptr, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return true;
    uint32_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(*ptr, (size_t)n * size);
    if (!q)
        return false;
    *ptr = q;
    *cap = n;
    return true;
}

static int new_rule(struct parser *p, const char *name, size_t name_len, size_t at, uint32_t *id)
{
    if (p->n_rules >= LLAMAD_GRAMMAR_MAX_RULES)
        return fail(p, at, LLAMAD_ERANGE, "more than %u rules (helper rules included)",
                    LLAMAD_GRAMMAR_MAX_RULES);
    if (!grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof *p->rules))
        return oom(p);
    p->rules[p->n_rules] =
        (struct gbnf_rule){.name = name, .name_len = name_len, .def_at = SIZE_MAX, .used_at = at};
    *id = p->n_rules++;
    return 0;
}

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* The id of the rule called name, created (undefined) on first sight. */
static int named_rule(struct parser *p, const char *name, size_t n, size_t at, uint32_t *id)
{
    if (p->n_slots < 2 * (p->n_rules + 1)) {
        uint32_t ns = p->n_slots ? p->n_slots * 2 : NAME_SLOTS_MIN;
        while (ns < 2 * (p->n_rules + 1))
            ns *= 2;
        uint32_t *slots = calloc(ns, sizeof *slots);
        if (!slots)
            return oom(p);
        for (uint32_t r = 0; r < p->n_rules; r++) {
            if (!p->rules[r].name)
                continue;
            uint32_t k = name_hash(p->rules[r].name, p->rules[r].name_len) & (ns - 1);
            while (slots[k])
                k = (k + 1) & (ns - 1);
            slots[k] = r + 1;
        }
        free(p->slots);
        p->slots = slots;
        p->n_slots = ns;
    }
    uint32_t k = name_hash(name, n) & (p->n_slots - 1);
    for (; p->slots[k]; k = (k + 1) & (p->n_slots - 1)) {
        const struct gbnf_rule *r = &p->rules[p->slots[k] - 1];
        if (r->name_len == n && !memcmp(r->name, name, n)) {
            *id = p->slots[k] - 1;
            return 0;
        }
    }
    int rc = new_rule(p, name, n, at, id);
    if (!rc)
        p->slots[k] = *id + 1;
    return rc;
}

static int push(struct parser *p, uint32_t rid, struct gelem e)
{
    if (p->n_elems >= LLAMAD_GRAMMAR_MAX_ELEMS)
        return fail(p, p->i, LLAMAD_ERANGE, "the grammar is too large (more than %u elements)",
                    LLAMAD_GRAMMAR_MAX_ELEMS);
    struct gbnf_rule *r = &p->rules[rid];
    if (!grow((void **)&r->body, &r->cap_body, r->n_body + 1, sizeof *r->body))
        return oom(p);
    r->body[r->n_body++] = e;
    p->n_elems++;
    return 0;
}

static const struct gelem END = {.kind = GE_END};

static struct gelem ref(uint32_t rid)
{
    return (struct gelem){.kind = GE_REF, .arg = rid};
}

static bool at_end(const struct parser *p)
{
    return p->i >= p->len;
}

static char peek(const struct parser *p)
{
    return at_end(p) ? '\0' : p->s[p->i];
}

/* Spaces, tabs, carriage returns and comments; newlines too when asked. */
static void skip_space(struct parser *p, bool newlines)
{
    while (!at_end(p)) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
            p->i++;
        } else if (c == '#') {
            while (!at_end(p) && p->s[p->i] != '\n')
                p->i++;
        } else {
            break;
        }
    }
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One character of a literal or class: an escape or a UTF-8 character. */
static int parse_char(struct parser *p, uint32_t *cp)
{
    size_t at = p->i;
    if (p->s[p->i] != '\\') {
        size_t n;
        if (llamad_utf8_next(p->s + p->i, p->len - p->i, &n) != LLAMAD_UTF8_CHAR)
            return fail(p, at, LLAMAD_EFORMAT, "invalid UTF-8");
        const uint8_t *b = (const uint8_t *)p->s + p->i;
        uint32_t c = n == 1 ? b[0] : n == 2 ? b[0] & 0x1Fu : n == 3 ? b[0] & 0x0Fu : b[0] & 0x07u;
        for (size_t k = 1; k < n; k++)
            c = (c << 6) | (b[k] & 0x3Fu);
        *cp = c;
        p->i += n;
        return 0;
    }
    p->i++;
    if (at_end(p))
        return fail(p, at, LLAMAD_EFORMAT, "an escape at the end of the text");
    char c = p->s[p->i++];
    int digits = 0;
    switch (c) {
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case '\\':
    case '"':
    case '\'':
    case '[':
    case ']':
    case '-':
    case '/': *cp = (uint8_t)c; return 0;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default:
        return fail(p, at, LLAMAD_EFORMAT, "unknown escape '\\%c'",
                    c >= 0x20 && c < 0x7f ? c : '?');
    }
    uint64_t v = 0;
    for (int k = 0; k < digits; k++) {
        int h = at_end(p) ? -1 : hex_value(p->s[p->i]);
        if (h < 0)
            return fail(p, at, LLAMAD_EFORMAT, "'\\%c' needs %d hexadecimal digits", c, digits);
        v = v * 16 + (uint64_t)h;
        p->i++;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return fail(p, at, LLAMAD_EFORMAT, "'\\%c' escape of U+%llX, not a character", c,
                    (unsigned long long)v);
    *cp = (uint32_t)v;
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* Appends a class (pairs lo, hi; sorted and merged here) to the grammar's ranges
 * and gives its element. */
static int add_class(struct parser *p, uint32_t *pairs, uint32_t n, bool negated, size_t at,
                     struct gelem *out)
{
    if (n > 1)
        qsort(pairs, n, 2 * sizeof *pairs, cmp_range);
    uint32_t m = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (m && pairs[2 * k] <= pairs[2 * (m - 1) + 1] + 1) {
            if (pairs[2 * k + 1] > pairs[2 * (m - 1) + 1])
                pairs[2 * (m - 1) + 1] = pairs[2 * k + 1];
        } else {
            pairs[2 * m] = pairs[2 * k];
            pairs[2 * m + 1] = pairs[2 * k + 1];
            m++;
        }
    }
    if (m > UINT16_MAX)
        return fail(p, at, LLAMAD_ERANGE, "a character class of more than %u ranges", UINT16_MAX);
    struct llamad_grammar *g = p->g;
    if (g->n_ranges + m > LLAMAD_GRAMMAR_MAX_ELEMS)
        return fail(p, at, LLAMAD_ERANGE, "too many characters in classes and literals");
    /* never NULL, even for classes of no range (".") */
    if (!grow((void **)&g->ranges, &p->cap_ranges, 2 * (g->n_ranges + m) + 2, sizeof *g->ranges))
        return oom(p);
    if (m)
        memcpy(g->ranges + 2 * (size_t)g->n_ranges, pairs, 2 * (size_t)m * sizeof *pairs);
    *out = (struct gelem){
        .kind = GE_CHAR, .negated = negated, .n_ranges = (uint16_t)m, .arg = g->n_ranges};
    g->n_ranges += m;
    return 0;
}

static int parse_literal(struct parser *p, uint32_t rid)
{
    size_t at = p->i++;
    for (;;) {
        if (at_end(p))
            return fail(p, at, LLAMAD_EFORMAT, "a string literal without its closing '\"'");
        if (p->s[p->i] == '"') {
            p->i++;
            return 0;
        }
        uint32_t cp[2];
        struct gelem e;
        int rc = parse_char(p, &cp[0]);
        cp[1] = cp[0];
        if (rc || (rc = add_class(p, cp, 1, false, at, &e)) || (rc = push(p, rid, e)))
            return rc;
    }
}

static int parse_class(struct parser *p, uint32_t rid)
{
    size_t at = p->i++;
    bool negated = false;
    if (peek(p) == '^') {
        negated = true;
        p->i++;
    }
    uint32_t *pairs = NULL, n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (at_end(p)) {
            rc = fail(p, at, LLAMAD_EFORMAT, "a character class without its closing ']'");
            break;
        }
        if (p->s[p->i] == ']') {
            p->i++;
            break;
        }
        size_t item_at = p->i;
        uint32_t lo, hi;
        if ((rc = parse_char(p, &lo)))
            break;
        hi = lo;
        if (peek(p) == '-' && p->i + 1 < p->len && p->s[p->i + 1] != ']') {
            p->i++;
            if ((rc = parse_char(p, &hi)))
                break;
            if (hi < lo) {
                rc = fail(p, item_at, LLAMAD_EFORMAT, "a range whose end comes before its start");
                break;
            }
        }
        if (!grow((void **)&pairs, &cap, 2 * (n + 1), sizeof *pairs)) {
            rc = oom(p);
            break;
        }
        pairs[2 * n] = lo;
        pairs[2 * n + 1] = hi;
        n++;
    }
    struct gelem e;
    if (!rc && !(rc = add_class(p, pairs, n, negated, at, &e)))
        rc = push(p, rid, e);
    free(pairs);
    return rc;
}

static int parse_count(struct parser *p, uint32_t *v)
{
    size_t at = p->i;
    uint64_t x = 0;
    if (!(peek(p) >= '0' && peek(p) <= '9'))
        return fail(p, at, LLAMAD_EFORMAT, "expected a number");
    while (peek(p) >= '0' && peek(p) <= '9') {
        x = x * 10 + (uint64_t)(p->s[p->i++] - '0');
        if (x > LLAMAD_GRAMMAR_MAX_ELEMS)
            return fail(p, at, LLAMAD_ERANGE, "a repetition count above %u",
                        LLAMAD_GRAMMAR_MAX_ELEMS);
    }
    *v = (uint32_t)x;
    return 0;
}

static int new_helper(struct parser *p, size_t at, uint32_t *id)
{
    int rc = new_rule(p, NULL, 0, at, id);
    if (!rc)
        p->rules[*id].def_at = at;
    return rc;
}

/* The item at body[start..] of rule rid, repeated by the operator at p->i. */
static int parse_repeat(struct parser *p, uint32_t rid, uint32_t start)
{
    size_t at = p->i;
    char op = p->s[p->i++];
    uint32_t lo = 0, hi = UINT32_MAX;
    int rc = 0;
    if (op == '+') {
        lo = 1;
    } else if (op == '?') {
        hi = 1;
    } else if (op == '{') {
        skip_space(p, false);
        if (peek(p) != ',' && (rc = parse_count(p, &lo)))
            return rc;
        skip_space(p, false);
        if (peek(p) == ',') {
            p->i++;
            skip_space(p, false);
            if (peek(p) != '}' && (rc = parse_count(p, &hi)))
                return rc;
            skip_space(p, false);
        } else {
            hi = lo;
        }
        if (peek(p) != '}')
            return fail(p, p->i, LLAMAD_EFORMAT, "expected '}' to close the repetition");
        p->i++;
        if (hi < lo)
            return fail(p, at, LLAMAD_EFORMAT,
                        "a repetition {%u,%u} whose maximum is below its minimum", lo, hi);
    }
    struct gbnf_rule *r = &p->rules[rid];
    uint32_t count = r->n_body - start;
    if (count == 0) /* an empty item: its repetitions are empty too */
        return 0;
    uint64_t cost = (uint64_t)lo + (hi == UINT32_MAX ? 4u : 4u * ((uint64_t)hi - lo));
    if (p->n_elems + cost > LLAMAD_GRAMMAR_MAX_ELEMS)
        return fail(p, at, LLAMAD_ERANGE,
                    "the repetition makes the grammar too large (more than %u elements)",
                    LLAMAD_GRAMMAR_MAX_ELEMS);
    struct gelem x = r->body[start];
    if (count > 1) { /* a sequence (a literal of several characters): a rule of its own */
        uint32_t h;
        if ((rc = new_helper(p, at, &h)))
            return rc;
        r = &p->rules[rid];
        for (uint32_t k = start; k < r->n_body && !rc; k++)
            rc = push(p, h, p->rules[rid].body[k]);
        if (rc || (rc = push(p, h, END)))
            return rc;
        x = ref(h);
    }
    p->n_elems -= count;
    p->rules[rid].n_body = start;
    for (uint32_t k = 0; k < lo; k++)
        if ((rc = push(p, rid, x)))
            return rc;
    if (hi == UINT32_MAX) { /* h ::= x h | (empty) */
        uint32_t h;
        if ((rc = new_helper(p, at, &h)) || (rc = push(p, h, x)) || (rc = push(p, h, ref(h))) ||
            (rc = push(p, h, END)) || (rc = push(p, h, END)))
            return rc;
        return push(p, rid, ref(h));
    }
    /* Up to hi - lo more: o1 ::= x | (empty); ok ::= x o(k-1) | (empty). */
    uint32_t prev = NO_ITEM;
    for (uint32_t k = lo; k < hi; k++) {
        uint32_t h;
        if ((rc = new_helper(p, at, &h)) || (rc = push(p, h, x)) ||
            (prev != NO_ITEM && (rc = push(p, h, ref(prev)))) || (rc = push(p, h, END)) ||
            (rc = push(p, h, END)))
            return rc;
        prev = h;
    }
    return prev == NO_ITEM ? 0 : push(p, rid, ref(prev));
}

static int parse_alternates(struct parser *p, uint32_t rid, int depth);

static int parse_sequence(struct parser *p, uint32_t rid, int depth)
{
    uint32_t item = NO_ITEM;
    for (;;) {
        skip_space(p, depth > 0);
        char c = peek(p);
        uint32_t start = p->rules[rid].n_body;
        int rc = 0;
        if (c == '"') {
            rc = parse_literal(p, rid);
        } else if (c == '[') {
            rc = parse_class(p, rid);
        } else if (c == '.') {
            struct gelem any;
            p->i++;
            if (!(rc = add_class(p, NULL, 0, true, p->i - 1, &any)))
                rc = push(p, rid, any);
        } else if (c == '(') {
            size_t at = p->i++;
            uint32_t h;
            if (depth + 1 > LLAMAD_GRAMMAR_MAX_NESTING)
                return fail(p, at, LLAMAD_ERANGE, "parentheses nested more than %d deep",
                            LLAMAD_GRAMMAR_MAX_NESTING);
            if ((rc = new_helper(p, at, &h)) || (rc = parse_alternates(p, h, depth + 1)))
                return rc;
            skip_space(p, true);
            if (peek(p) != ')') {
                char open[64];
                grammar_where(p->s, p->len, at, open, sizeof open);
                open[strlen(open) - 2] = '\0'; /* the ": " after the place */
                return fail(p, p->i, LLAMAD_EFORMAT, "expected ')' to close the '(' at %s", open);
            }
            p->i++;
            rc = push(p, rid, ref(h));
        } else if (name_char(c)) {
            size_t at = p->i;
            while (name_char(peek(p)))
                p->i++;
            uint32_t r;
            if (!(rc = named_rule(p, p->s + at, p->i - at, at, &r)))
                rc = push(p, rid, ref(r));
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (item == NO_ITEM)
                return fail(p, p->i, LLAMAD_EFORMAT, "'%c' with nothing before it to repeat", c);
            if ((rc = parse_repeat(p, rid, item)))
                return rc;
            continue; /* the repeated item may be repeated again */
        } else {
            return 0;
        }
        if (rc)
            return rc;
        item = start;
    }
}

static int parse_alternates(struct parser *p, uint32_t rid, int depth)
{
    for (;;) {
        int rc = parse_sequence(p, rid, depth);
        if (rc || (rc = push(p, rid, END)))
            return rc;
        size_t save = p->i;
        skip_space(p, true); /* at the top level, a next line may go on with '|' */
        if (peek(p) != '|') {
            if (depth == 0)
                p->i = save;
            return 0;
        }
        p->i++;
        skip_space(p, true);
    }
}

static int parse_rules(struct parser *p)
{
    skip_space(p, true);
    while (!at_end(p)) {
        size_t at = p->i;
        while (name_char(peek(p)))
            p->i++;
        if (p->i == at)
            return fail(p, at, LLAMAD_EFORMAT, "expected a rule name");
        uint32_t rid;
        int rc = named_rule(p, p->s + at, p->i - at, at, &rid);
        if (rc)
            return rc;
        if (p->rules[rid].def_at != SIZE_MAX)
            return fail(p, at, LLAMAD_EFORMAT, "rule '%.*s' is defined twice",
                        (int)(p->i - at > 64 ? 64 : p->i - at), p->s + at);
        p->rules[rid].def_at = at;
        skip_space(p, false);
        if (p->len - p->i < 3 || memcmp(p->s + p->i, "::=", 3) != 0)
            return fail(p, p->i, LLAMAD_EFORMAT, "expected '::=' after the rule name");
        p->i += 3;
        skip_space(p, true);
        if ((rc = parse_alternates(p, rid, 0)))
            return rc;
        skip_space(p, false);
        if (!at_end(p) && p->s[p->i] != '\n') {
            char c = p->s[p->i];
            if (c == ')')
                return fail(p, p->i, LLAMAD_EFORMAT, "a ')' without its '('");
            return fail(p, p->i, LLAMAD_EFORMAT, "unexpected '%c' (expected the end of the line)",
                        c > 0x20 && c < 0x7f ? c : '?');
        }
        skip_space(p, true);
    }
    return 0;
}

int llamad_grammar_parse(const char *text, size_t len, struct llamad_grammar **out, char *err,
                         size_t errsz)
{
    *out = NULL;
    if (err && errsz)
        err[0] = '\0';
    struct parser p = {.s = text ? text : "", .len = text ? len : 0, .err = err, .errsz = errsz};
    p.g = calloc(1, sizeof *p.g);
    int rc = p.g ? parse_rules(&p) : oom(&p);
    if (!rc)
        rc = grammar_link(p.g, p.rules, p.n_rules, p.s, p.len, err, errsz);
    for (uint32_t r = 0; r < p.n_rules; r++)
        free(p.rules[r].body);
    free(p.rules);
    free(p.slots);
    if (rc) {
        llamad_grammar_free(p.g);
        return rc;
    }
    *out = p.g;
    return 0;
}
