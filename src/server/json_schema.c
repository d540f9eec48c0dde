/* JSON Schema to GBNF (include/llamad/server/json_schema.h).
 *
 * One walk over the schema: each schema node becomes an expression (a shared
 * primitive's name, or a rule of its own named after its place: root-NAME for
 * properties, -item, -itemN, -N for anyOf branches, def-NAME for $defs), and
 * each $ref target becomes one rule, made before its body so recursion refers
 * back to it. Tokens are followed by `ws`, never preceded, so no two ws meet. */
#include "llamad/server/json_schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"

#define COUNT(a) (sizeof(a) / sizeof *(a))
#define INF (-1) /* an unbounded maximum */

/* The shared primitives, in the order they are written. */
enum prim {
    P_VALUE,
    P_OBJECT,
    P_ARRAY,
    P_STRING,
    P_CHAR,
    P_NUMBER,
    P_INTEGER,
    P_BOOLEAN,
    P_NULL,
    P_WS,
    P_COUNT
};

static const char *const prim_names[P_COUNT] = {
    "value", "object", "array", "string", "char", "number", "integer", "boolean", "null", "ws",
};

/* Bodies, written with the indentation bound of the header. */
static const char *const prim_bodies[P_COUNT] = {
    "object | array | string | number | boolean | null",
    "\"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* )? \"}\"",
    "\"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"",
    "\"\\\"\" char* \"\\\"\"",
    "[^\"\\\\\\x00-\\x1f] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )",
    "\"-\"? ( \"0\" | [1-9] [0-9]* ) ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]+ )?",
    "\"-\"? ( \"0\" | [1-9] [0-9]* )",
    "\"true\" | \"false\"",
    "\"null\"",
    "| \" \" | \"\\n\" [ \\t]{0,20}",
};

/* What each primitive's body refers to. */
static const unsigned prim_deps[P_COUNT] = {
    [P_VALUE] = 1u << P_OBJECT | 1u << P_ARRAY | 1u << P_STRING | 1u << P_NUMBER | 1u << P_BOOLEAN |
                1u << P_NULL,
    [P_OBJECT] = 1u << P_WS | 1u << P_STRING | 1u << P_VALUE,
    [P_ARRAY] = 1u << P_WS | 1u << P_VALUE,
    [P_STRING] = 1u << P_CHAR,
};

struct rule {
    char *name;
    char *body;          /* NULL while being made */
    const cJSON *target; /* the $ref target it stands for, or NULL */
};

struct conv {
    struct rule *rules;
    size_t n_rules, cap_rules;
    size_t bytes;
    unsigned prims;
    const cJSON *root;
    int depth;
    int rc;
    char *err;
    size_t err_len;
    char path[256]; /* the JSON pointer of the node being read */
    size_t path_len;
    /* Left recursion: guards counts the "{" and "[" the node being read is inside;
     * current is the $ref rule being made (0: root), entered at cur_guards. A $ref
     * met at current's own guard level is an edge of rules that consume nothing
     * between them; a cycle of those edges is refused. */
    int guards, cur_guards;
    long current;
    long (*edges)[2];
    size_t n_edges, cap_edges;
};

/* ---- Errors and text ---- */

static int fail(struct conv *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct conv *c, int code, const char *fmt, ...)
{
    if (c->rc)
        return c->rc;
    c->rc = code;
    if (c->err && c->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

static const char *path(const struct conv *c)
{
    return c->path_len ? c->path : "#";
}

static int unsupported(struct conv *c, const char *keyword, const char *why)
{
    return fail(c, LLAMAD_EUNSUPPORTED, "unsupported keyword '%s' at %s%s", keyword, path(c), why);
}

static int invalid(struct conv *c, const char *keyword, const char *what)
{
    return fail(c, LLAMAD_EINVAL, "'%s' at %s %s", keyword, path(c), what);
}

/* Appends "/seg" (JSON pointer escaped, cut when the path is long); returns the
 * length to pop back to. */
static size_t push(struct conv *c, const char *seg)
{
    size_t saved = c->path_len;
    if (!c->path_len)
        c->path[c->path_len++] = '#';
    if (c->path_len + 1 < sizeof c->path)
        c->path[c->path_len++] = '/';
    for (const char *s = seg; *s && c->path_len + 3 < sizeof c->path; s++) {
        if (*s == '~' || *s == '/') {
            c->path[c->path_len++] = '~';
            c->path[c->path_len++] = *s == '~' ? '0' : '1';
        } else {
            c->path[c->path_len++] = *s;
        }
    }
    c->path[c->path_len] = '\0';
    return saved;
}

static size_t push_index(struct conv *c, const char *key, int i)
{
    size_t saved = push(c, key);
    char num[16];
    snprintf(num, sizeof num, "%d", i);
    push(c, num);
    return saved;
}

static void pop(struct conv *c, size_t saved)
{
    c->path_len = saved;
    c->path[saved] = '\0';
    if (!saved)
        c->path[0] = '\0';
}

static void put(struct conv *c, struct llamad_buf *b, const char *s)
{
    if (!c->rc && llamad_buf_append(b, s, strlen(s)) != 0)
        fail(c, LLAMAD_ENOMEM, "out of memory");
}

static void putf(struct conv *c, struct llamad_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void putf(struct conv *c, struct llamad_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(c, b, tmp);
}

/* A GBNF string literal of n bytes. */
static void put_literal(struct conv *c, struct llamad_buf *b, const char *s, size_t n)
{
    put(c, b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char one[8] = {(char)ch, 0};
        if (ch == '"' || ch == '\\')
            snprintf(one, sizeof one, "\\%c", ch);
        else if (ch == '\n')
            snprintf(one, sizeof one, "\\n");
        else if (ch == '\t')
            snprintf(one, sizeof one, "\\t");
        else if (ch == '\r')
            snprintf(one, sizeof one, "\\r");
        else if (ch < 0x20 || ch == 0x7f)
            snprintf(one, sizeof one, "\\x%02x", ch);
        put(c, b, one);
    }
    put(c, b, "\"");
}

static void use(struct conv *c, struct llamad_buf *b, enum prim p)
{
    c->prims |= 1u << p;
    put(c, b, prim_names[p]);
}

/* expr with a quantifier: {lo,hi} where hi may be INF; nothing when hi is 0. */
static void put_repeat(struct conv *c, struct llamad_buf *b, const char *expr, bool atom, long lo,
                       long hi)
{
    if (hi == 0)
        return;
    if (lo == 1 && hi == 1) {
        put(c, b, expr);
        return;
    }
    if (!atom)
        put(c, b, "( ");
    put(c, b, expr);
    if (!atom)
        put(c, b, " )");
    if (lo == 0 && hi == 1)
        put(c, b, "?");
    else if (lo == 0 && hi == INF)
        put(c, b, "*");
    else if (lo == 1 && hi == INF)
        put(c, b, "+");
    else if (hi == INF)
        putf(c, b, "{%ld,}", lo);
    else if (lo == hi)
        putf(c, b, "{%ld}", lo);
    else
        putf(c, b, "{%ld,%ld}", lo, hi);
}

/* ---- Rules ---- */

static bool name_taken(const struct conv *c, const char *name)
{
    for (size_t i = 0; i < P_COUNT; i++) {
        if (strcmp(prim_names[i], name) == 0)
            return true;
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        if (strcmp(c->rules[i].name, name) == 0)
            return true;
    }
    return false;
}

/* A new rule named after hint (sanitized to [a-zA-Z0-9-], made unique); its index or -1. */
static long new_rule(struct conv *c, const char *hint)
{
    if (c->rc)
        return -1;
    if (c->n_rules >= LLAMAD_SCHEMA_MAX_RULES) {
        fail(c, LLAMAD_EINVAL, "the schema needs more than %d grammar rules",
             LLAMAD_SCHEMA_MAX_RULES);
        return -1;
    }
    char base[72], name[88];
    size_t n = 0;
    for (const char *s = hint; *s && n + 1 < sizeof base; s++) {
        char ch = *s;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        base[n++] = ok ? ch : '-';
    }
    base[n] = '\0';
    if (!n)
        snprintf(base, sizeof base, "x");
    snprintf(name, sizeof name, "%s", base);
    /* Numbered from the count of rules: one try, where names could take many. */
    for (size_t k = c->n_rules + 1; name_taken(c, name); k++)
        snprintf(name, sizeof name, "%s-%zu", base, k);
    if (c->n_rules == c->cap_rules) {
        size_t cap = c->cap_rules ? c->cap_rules * 2 : 16;
        struct rule *r = realloc(c->rules, cap * sizeof *r);
        if (!r) {
            fail(c, LLAMAD_ENOMEM, "out of memory");
            return -1;
        }
        c->rules = r;
        c->cap_rules = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        fail(c, LLAMAD_ENOMEM, "out of memory");
        return -1;
    }
    c->rules[c->n_rules] = (struct rule){.name = copy};
    return (long)c->n_rules++;
}

/* Gives rule i its body (taking body's text). */
static void set_body(struct conv *c, long i, struct llamad_buf *body)
{
    if (c->rc || i < 0) {
        llamad_buf_free(body);
        return;
    }
    c->bytes += strlen(c->rules[i].name) + body->len + 6;
    if (c->bytes > LLAMAD_SCHEMA_MAX_BYTES) {
        llamad_buf_free(body);
        fail(c, LLAMAD_EINVAL, "the schema's grammar would exceed %d bytes",
             LLAMAD_SCHEMA_MAX_BYTES);
        return;
    }
    c->rules[i].body = body->data ? body->data : strdup("");
    if (!c->rules[i].body)
        fail(c, LLAMAD_ENOMEM, "out of memory");
    *body = (struct llamad_buf)LLAMAD_BUF_INIT;
}

/* A rule of the given body (taken) named after hint; its name appended to out. */
static void add_rule(struct conv *c, const char *hint, struct llamad_buf *body,
                     struct llamad_buf *out)
{
    long i = new_rule(c, hint);
    set_body(c, i, body);
    if (!c->rc)
        put(c, out, c->rules[i].name);
}

/* ---- Keywords ---- */

static const char *const ignored_keywords[] = {
    "title", "description", "$schema", "$id", "default", "examples", "$comment",
};

enum kw {
    K_TYPE,
    K_PROPERTIES,
    K_REQUIRED,
    K_ADDITIONAL,
    K_ENUM,
    K_CONST,
    K_ITEMS,
    K_PREFIX,
    K_MIN_ITEMS,
    K_MAX_ITEMS,
    K_MIN_LENGTH,
    K_MAX_LENGTH,
    K_MINIMUM,
    K_MAXIMUM,
    K_EXCL_MIN,
    K_EXCL_MAX,
    K_ANY_OF,
    K_ONE_OF,
    K_REF,
    K_DEFS,
    K_DEFINITIONS,
    K_PATTERN,
    K_FORMAT,
    K_COUNT
};

static const char *const keywords[K_COUNT] = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "oneOf",
    "$ref",
    "$defs",
    "definitions",
    "pattern",
    "format",
};

/* The JSON types, as bits. */
enum {
    T_NULL = 1,
    T_BOOLEAN = 2,
    T_OBJECT = 4,
    T_ARRAY = 8,
    T_NUMBER = 16,
    T_INTEGER = 32,
    T_STRING = 64,
    T_ALL = 127
};

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "integer", "string"};

struct node {
    const cJSON *kw[K_COUNT];
};

/* Reads a schema object's keywords into n; refuses unknown ones. */
static int read_keywords(struct conv *c, const cJSON *s, struct node *n)
{
    memset(n, 0, sizeof *n);
    for (const cJSON *k = s->child; k; k = k->next) {
        bool known = false;
        for (size_t i = 0; i < K_COUNT && !known; i++) {
            if (strcmp(k->string, keywords[i]) == 0) {
                n->kw[i] = k;
                known = true;
            }
        }
        for (size_t i = 0; i < COUNT(ignored_keywords) && !known; i++)
            known = strcmp(k->string, ignored_keywords[i]) == 0;
        if (!known) {
            char name[64];
            snprintf(name, sizeof name, "%s", k->string);
            return unsupported(c, name, "");
        }
    }
    return 0;
}

/* Keywords that constrain an instance (all but $defs and definitions). */
static const char *first_constraint(const struct node *n, enum kw except)
{
    for (int i = 0; i < K_COUNT; i++) {
        if (n->kw[i] && i != (int)except && i != K_DEFS && i != K_DEFINITIONS)
            return keywords[i];
    }
    return NULL;
}

/* A non-negative integer keyword within LLAMAD_SCHEMA_MAX_REPEAT, or dflt when absent. */
static long count_kw(struct conv *c, const cJSON *v, const char *name, long dflt)
{
    if (!v)
        return dflt;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble)) {
        invalid(c, name, "must be a non-negative integer");
        return -2;
    }
    if (v->valuedouble > LLAMAD_SCHEMA_MAX_REPEAT) {
        char why[64];
        snprintf(why, sizeof why, "is over the limit of %d", LLAMAD_SCHEMA_MAX_REPEAT);
        invalid(c, name, why);
        return -2;
    }
    return (long)v->valuedouble;
}

static int schema_expr(struct conv *c, const cJSON *s, const char *hint, long slot,
                       struct llamad_buf *out);

/* The schema at key (a member of parent) as an expression, its path pushed. */
static int sub_expr(struct conv *c, const cJSON *s, const char *seg, const char *hint,
                    struct llamad_buf *out)
{
    size_t saved = push(c, seg);
    schema_expr(c, s, hint, -1, out);
    pop(c, saved);
    return c->rc;
}

/* ---- Literals: const, enum ---- */

static int json_literal(struct conv *c, const cJSON *v, struct llamad_buf *out)
{
    char *text = cJSON_PrintUnformatted(v);
    if (!text)
        return fail(c, LLAMAD_ENOMEM, "out of memory");
    put_literal(c, out, text, strlen(text));
    free(text);
    return c->rc;
}

static unsigned type_of(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return T_NULL;
    if (cJSON_IsBool(v))
        return T_BOOLEAN;
    if (cJSON_IsObject(v))
        return T_OBJECT;
    if (cJSON_IsArray(v))
        return T_ARRAY;
    if (cJSON_IsString(v))
        return T_STRING;
    /* A whole number is an integer and a number. */
    return v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e300
               ? T_NUMBER | T_INTEGER
               : T_NUMBER;
}

/* const and enum: the values of the allowed types, each its compact JSON text. */
static int literals_expr(struct conv *c, const struct node *n, unsigned types, const char *hint,
                         long slot, struct llamad_buf *out)
{
    struct llamad_buf body = LLAMAD_BUF_INIT;
    const cJSON *values = n->kw[K_CONST];
    size_t count = 0;
    if (!values) {
        values = n->kw[K_ENUM];
        size_t saved = push(c, "enum");
        if (!cJSON_IsArray(values) || cJSON_GetArraySize(values) == 0)
            invalid(c, "enum", "must be a non-empty array");
        else if (cJSON_GetArraySize(values) > LLAMAD_SCHEMA_MAX_ENUM)
            fail(c, LLAMAD_EINVAL, "'enum' at %s has more than %d values", path(c),
                 LLAMAD_SCHEMA_MAX_ENUM);
        pop(c, saved);
        for (const cJSON *v = c->rc ? NULL : values->child; v; v = v->next) {
            if (!(type_of(v) & types))
                continue;
            if (count++)
                put(c, &body, " | ");
            json_literal(c, v, &body);
        }
    } else if (type_of(values) & types) {
        json_literal(c, values, &body);
        count = 1;
    }
    if (!c->rc && count == 0)
        fail(c, LLAMAD_EINVAL, "no value of 'enum' or 'const' at %s has the schema's type",
             path(c));
    if (c->rc) {
        llamad_buf_free(&body);
        return c->rc;
    }
    if (slot >= 0) {
        set_body(c, slot, &body);
        put(c, out, c->rules[slot].name);
    } else {
        add_rule(c, hint, &body, out);
    }
    return c->rc;
}

/* ---- Integers: a range as a grammar over decimal digits ---- */

/* Digit strings x and y of the same length L, x <= y: every string of length L
 * between them. */
static void same_length(struct conv *c, struct llamad_buf *b, const char *x, const char *y,
                        size_t len)
{
    if (len == 0)
        return;
    size_t common = 0;
    while (common < len && x[common] == y[common])
        common++;
    if (common) { /* the digits they share, as one literal */
        put(c, b, "\"");
        for (size_t k = 0; k < common; k++)
            putf(c, b, "%c", x[k]);
        put(c, b, "\"");
        if (common < len) {
            put(c, b, " ");
            same_length(c, b, x + common, y + common, len - common);
        }
        return;
    }
    bool x_zeros = strspn(x + 1, "0") == len - 1, y_nines = strspn(y + 1, "9") == len - 1;
    char lo = (char)(x_zeros ? x[0] : x[0] + 1), hi = (char)(y_nines ? y[0] : y[0] - 1);
    char zeros[24], nines[24];
    memset(zeros, '0', len - 1);
    memset(nines, '9', len - 1);
    zeros[len - 1] = nines[len - 1] = '\0';
    int alts = 0;
    struct llamad_buf whole = LLAMAD_BUF_INIT, *outer = b;
    b = &whole;
    if (!x_zeros) {
        putf(c, b, "\"%c\" ", x[0]); /* len > 1: x's rest has a non-zero digit */
        same_length(c, b, x + 1, nines, len - 1);
        alts++;
    }
    if (lo <= hi) {
        if (alts++)
            put(c, b, " | ");
        if (lo == hi)
            putf(c, b, "\"%c\"", lo);
        else
            putf(c, b, "[%c-%c]", lo, hi);
        if (len > 1)
            put_repeat(c, b, " [0-9]", true, (long)len - 1, (long)len - 1);
    }
    if (!y_nines) {
        if (alts++)
            put(c, b, " | ");
        putf(c, b, "\"%c\" ", y[0]);
        same_length(c, b, zeros, y + 1, len - 1);
    }
    put(c, outer, alts > 1 ? "( " : "");
    put(c, outer, whole.data ? whole.data : "");
    put(c, outer, alts > 1 ? " )" : "");
    llamad_buf_free(&whole);
}

static void alt(struct conv *c, struct llamad_buf *b, int *n)
{
    if ((*n)++)
        put(c, b, " | ");
}

/* Every decimal spelling (no leading zeros) of the integers in [a, b], a >= 0;
 * b < 0 means no upper bound. Appends alternatives, counting them in *n. */
static void nonneg_range(struct conv *c, struct llamad_buf *out, int64_t a, int64_t b, int *n)
{
    char as[24], bs[24];
    int la = snprintf(as, sizeof as, "%lld", (long long)a);
    int lb = b < 0 ? 20 : snprintf(bs, sizeof bs, "%lld", (long long)b);
    for (int len = la; len <= lb && len <= 19; len++) {
        int64_t lo = 1, hi;
        for (int i = 1; i < len; i++)
            lo *= 10;
        hi = len == 19 ? INT64_MAX : lo * 10 - 1;
        if (len == 1)
            lo = 0;
        if (lo < a)
            lo = a;
        if (b >= 0 && hi > b)
            hi = b;
        if (b < 0 && len > la) {
            /* Every number longer than a: any digits after a non-zero one. */
            alt(c, out, n);
            put(c, out, "[1-9]");
            putf(c, out, " [0-9]{%d,}", la);
            return;
        }
        if (lo > hi)
            continue;
        char xs[24], ys[24];
        snprintf(xs, sizeof xs, "%lld", (long long)lo);
        snprintf(ys, sizeof ys, "%lld", (long long)hi);
        alt(c, out, n);
        same_length(c, out, xs, ys, (size_t)len);
    }
}

/* The integers in [lo, hi] (has_lo/has_hi false: unbounded that side) as one
 * expression: the negative ones as "-" and a magnitude, then the others. */
static void integer_range(struct conv *c, struct llamad_buf *out, bool has_lo, int64_t lo,
                          bool has_hi, int64_t hi)
{
    int n = 0;
    struct llamad_buf b = LLAMAD_BUF_INIT;
    /* The negative ones: "-" and a magnitude in [max(1, -hi), -lo]. */
    if (!has_lo || lo < 0) {
        int64_t mlo = has_hi && hi < 0 ? -hi : 1;
        int64_t mhi = has_lo ? -lo : -1;
        int m = 0;
        struct llamad_buf mag = LLAMAD_BUF_INIT;
        nonneg_range(c, &mag, mlo, mhi, &m);
        alt(c, &b, &n);
        put(c, &b, m > 1 ? "\"-\" ( " : "\"-\" ");
        put(c, &b, mag.data ? mag.data : "");
        if (m > 1)
            put(c, &b, " )");
        llamad_buf_free(&mag);
    }
    if (!has_hi || hi >= 0)
        nonneg_range(c, &b, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1, &n);
    if (n > 1) {
        put(c, out, "( ");
        put(c, out, b.data);
        put(c, out, " )");
    } else {
        put(c, out, b.data ? b.data : "");
    }
    llamad_buf_free(&b);
}

/* One bound of an integer: minimum (inclusive) or exclusiveMinimum, rounded inward. */
static bool integer_bound(struct conv *c, const cJSON *v, const char *name, bool lower,
                          bool exclusive, int64_t *bound)
{
    if (!v)
        return false;
    if (!cJSON_IsNumber(v)) {
        invalid(c, name, "must be a number");
        return false;
    }
    double d = v->valuedouble;
    if (fabs(d) > LLAMAD_SCHEMA_MAX_INTEGER) {
        invalid(c, name, "is beyond +-(2^53 - 1)");
        return false;
    }
    double r = lower ? ceil(d) : floor(d);
    if (exclusive && r == d)
        r += lower ? 1 : -1;
    *bound = (int64_t)r;
    return true;
}

static void integer_expr(struct conv *c, const struct node *n, struct llamad_buf *out)
{
    int64_t lo = 0, hi = 0, x;
    bool has_lo = integer_bound(c, n->kw[K_MINIMUM], "minimum", true, false, &lo);
    bool has_hi = integer_bound(c, n->kw[K_MAXIMUM], "maximum", false, false, &hi);
    if (integer_bound(c, n->kw[K_EXCL_MIN], "exclusiveMinimum", true, true, &x) &&
        (!has_lo || x > lo))
        lo = x, has_lo = true;
    if (integer_bound(c, n->kw[K_EXCL_MAX], "exclusiveMaximum", false, true, &x) &&
        (!has_hi || x < hi))
        hi = x, has_hi = true;
    if (c->rc)
        return;
    if (!has_lo && !has_hi) {
        use(c, out, P_INTEGER);
        return;
    }
    if (has_lo && has_hi && lo > hi) {
        fail(c, LLAMAD_EINVAL, "no integer at %s is within its minimum and maximum", path(c));
        return;
    }
    integer_range(c, out, has_lo, lo, has_hi, hi);
}

/* ---- Strings: length, format, pattern ---- */

static const char *const format_bodies[][2] = {
    /* Calendar dates of the years 0001-9999: 31 days in the long months, 30 in
     * April, June, September and November, 28 in February and the 29th in
     * leap years (divisible by 4, centuries only by 400). */
    {"date",
     "( ( [0-9]{3} [1-9] | [0-9]{2} [1-9] \"0\" | [0-9] [1-9] \"00\" | [1-9] \"000\" ) "
     "\"-\" ( ( \"0\" [13578] | \"1\" [02] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] ) "
     "| ( \"0\" [469] | \"11\" ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"30\" ) "
     "| \"02-\" ( \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8] ) ) "
     "| ( [0-9]{2} ( \"0\" [48] | [2468] [048] | [13579] [26] ) "
     "| ( \"0\" [48] | [2468] [048] | [13579] [26] ) \"00\" ) \"-02-29\" )"},
    {"time", "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] "
             "( \".\" [0-9]+ )? ( [zZ] | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )"},
    {"uuid", "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" "
             "[0-9a-fA-F]{12}"},
};

static void format_expr(struct conv *c, const cJSON *f, struct llamad_buf *out)
{
    size_t saved = push(c, "format");
    if (!cJSON_IsString(f)) {
        pop(c, saved);
        invalid(c, "format", "must be a string");
        return;
    }
    bool date_time = strcmp(f->valuestring, "date-time") == 0;
    const char *body = NULL;
    for (size_t i = 0; i < COUNT(format_bodies); i++) {
        if (strcmp(f->valuestring, format_bodies[i][0]) == 0)
            body = format_bodies[i][1];
    }
    pop(c, saved);
    if (!body && !date_time) {
        char why[96];
        snprintf(why, sizeof why, " (format '%.40s'; date, time, date-time and uuid are)",
                 f->valuestring);
        unsupported(c, "format", why);
        return;
    }
    struct llamad_buf b = LLAMAD_BUF_INIT;
    put(c, &b, "\"\\\"\" ");
    if (date_time) {
        put(c, &b, format_bodies[0][1]);
        put(c, &b, " [tT] ");
        put(c, &b, format_bodies[1][1]);
    } else {
        put(c, &b, body);
    }
    put(c, &b, " \"\\\"\"");
    put(c, out, b.data);
    llamad_buf_free(&b);
}

/* A regular expression's code point set: sorted, merged ranges. */
struct cset {
    uint32_t lo[64], hi[64];
    int n;
};

static bool cset_add(struct cset *s, uint32_t lo, uint32_t hi)
{
    if (s->n == (int)COUNT(s->lo))
        return false;
    int i = s->n++;
    while (i > 0 && s->lo[i - 1] > lo) {
        s->lo[i] = s->lo[i - 1];
        s->hi[i] = s->hi[i - 1];
        i--;
    }
    s->lo[i] = lo;
    s->hi[i] = hi;
    int m = 0;
    for (int k = 0; k < s->n; k++) {
        if (m && s->lo[k] <= s->hi[m - 1] + 1) {
            if (s->hi[k] > s->hi[m - 1])
                s->hi[m - 1] = s->hi[k];
        } else {
            s->lo[m] = s->lo[k];
            s->hi[m] = s->hi[k];
            m++;
        }
    }
    s->n = m;
    return true;
}

static void cset_negate(struct cset *s)
{
    struct cset r = {.n = 0};
    uint32_t next = 0;
    for (int k = 0; k < s->n; k++) {
        if (s->lo[k] > next)
            cset_add(&r, next, s->lo[k] - 1);
        next = s->hi[k] + 1;
    }
    if (next <= 0x10FFFF)
        cset_add(&r, next, 0x10FFFF);
    *s = r;
}

static bool cset_has(const struct cset *s, uint32_t cp)
{
    for (int k = 0; k < s->n; k++) {
        if (cp >= s->lo[k] && cp <= s->hi[k])
            return true;
    }
    return false;
}

static void put_cp(struct conv *c, struct llamad_buf *b, uint32_t cp, bool in_class)
{
    char u[8];
    if (cp < 0x20 || cp == 0x7f ||
        (in_class && (cp == ']' || cp == '\\' || cp == '^' || cp == '-' || cp == '[')) ||
        (!in_class && (cp == '"' || cp == '\\'))) {
        if (cp < 0x20 || cp == 0x7f)
            snprintf(u, sizeof u, "\\x%02x", cp);
        else
            snprintf(u, sizeof u, "\\%c", (char)cp);
        put(c, b, u);
        return;
    }
    int n = 0;
    if (cp < 0x80) {
        u[n++] = (char)cp;
    } else if (cp < 0x800) {
        u[n++] = (char)(0xC0 | cp >> 6);
        u[n++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        u[n++] = (char)(0xE0 | cp >> 12);
        u[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[n++] = (char)(0x80 | (cp & 0x3F));
    } else {
        u[n++] = (char)(0xF0 | cp >> 18);
        u[n++] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[n++] = (char)(0x80 | (cp & 0x3F));
    }
    u[n] = '\0';
    put(c, b, u);
}

static bool short_escape(uint32_t ch)
{
    return ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' || ch == '\t';
}

/* The JSON text of one character of s: itself where JSON allows it raw, else
 * its shortest escape. One expression (grouped when it has alternatives). */
static void cset_expr(struct conv *c, struct llamad_buf *out, const struct cset *s)
{
    struct llamad_buf b = LLAMAD_BUF_INIT;
    int alts = 0;
    /* The raw part: from U+0020, without " and \. */
    struct cset raw = {.n = 0};
    for (int k = 0; k < s->n; k++) {
        uint32_t lo = s->lo[k] < 0x20 ? 0x20 : s->lo[k], hi = s->hi[k];
        static const uint32_t cuts[] = {'"', '\\'};
        for (size_t i = 0; i < COUNT(cuts) && lo <= hi; i++) {
            if (lo <= cuts[i] && cuts[i] <= hi) {
                if (lo < cuts[i])
                    cset_add(&raw, lo, cuts[i] - 1);
                lo = cuts[i] + 1;
            }
        }
        if (lo <= hi)
            cset_add(&raw, lo, hi);
    }
    if (raw.n == 1 && raw.lo[0] == raw.hi[0]) {
        put(c, &b, "\"");
        put_cp(c, &b, raw.lo[0], false);
        put(c, &b, "\"");
        alts++;
    } else if (raw.n) {
        put(c, &b, "[");
        for (int k = 0; k < raw.n; k++) {
            put_cp(c, &b, raw.lo[k], true);
            if (raw.hi[k] > raw.lo[k]) {
                put(c, &b, "-");
                put_cp(c, &b, raw.hi[k], true);
            }
        }
        put(c, &b, "]");
        alts++;
    }
    /* The escaped ones: " \ and the five with short escapes as one class after a
     * backslash; the other control characters as \u00XX (all 27 in one expression). */
    static const char shorts[] = "\"\"\\\\\bb\ff\nn\rr\tt";
    char short_class[8];
    size_t n_short = 0;
    for (size_t i = 0; i + 1 < sizeof shorts; i += 2) {
        if (cset_has(s, (unsigned char)shorts[i]))
            short_class[n_short++] = shorts[i + 1];
    }
    bool compound = false; /* an alternative of two tokens: grouped even alone */
    if (n_short) {
        compound = true;
        if (alts++)
            put(c, &b, " | ");
        put(c, &b, "\"\\\\\" ");
        if (n_short == 1) {
            char esc[2] = {short_class[0], 0};
            put_literal(c, &b, esc, 1);
        } else {
            put(c, &b, "[");
            for (size_t i = 0; i < n_short; i++)
                put_cp(c, &b, (unsigned char)short_class[i], true);
            put(c, &b, "]");
        }
    }
    int n_long = 0;
    for (uint32_t ch = 0; ch < 0x20; ch++)
        n_long += !short_escape(ch) && cset_has(s, ch);
    if (n_long == 27) {
        compound = true;
        if (alts++)
            put(c, &b, " | ");
        put(c, &b, "\"\\\\u00\" ( \"0\" [0-7bef] | \"1\" [0-9a-f] )");
    }
    for (uint32_t ch = 0; ch < 0x20 && n_long < 27; ch++) {
        if (short_escape(ch) || !cset_has(s, ch))
            continue;
        char esc[8];
        snprintf(esc, sizeof esc, "\\u%04x", ch);
        if (alts++)
            put(c, &b, " | ");
        put_literal(c, &b, esc, strlen(esc));
    }
    if (alts == 0)
        fail(c, LLAMAD_EUNSUPPORTED,
             "unsupported keyword 'pattern' at %s (a class that matches no character)", path(c));
    put(c, out, alts > 1 || compound ? "( " : "");
    put(c, out, b.data ? b.data : "");
    put(c, out, alts > 1 || compound ? " )" : "");
    llamad_buf_free(&b);
}

struct rx {
    struct conv *c;
    const char *s;
    size_t i, n;
    int depth;
};

static int rx_fail(struct rx *r, const char *what)
{
    char why[192];
    snprintf(why, sizeof why, " (%s, at offset %zu of the pattern)", what, r->i);
    return unsupported(r->c, "pattern", why);
}

/* One UTF-8 code point of the pattern. */
static uint32_t rx_cp(struct rx *r)
{
    unsigned char b0 = (unsigned char)r->s[r->i];
    int len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? b0 : len == 2 ? b0 & 0x1F : len == 3 ? b0 & 0x0F : b0 & 0x07;
    for (int k = 1; k < len && r->i + (size_t)k < r->n; k++)
        cp = cp << 6 | ((unsigned char)r->s[r->i + k] & 0x3F);
    r->i += (size_t)len;
    return cp;
}

/* A class escape (\d \w \s and their negations) into s, or one code point into *cp.
 * Returns 1 for a class, 0 for a code point, -1 after an error. */
static int rx_escape(struct rx *r, struct cset *s, uint32_t *cp)
{
    if (++r->i >= r->n)
        return rx_fail(r, "a trailing '\\'"), -1;
    char e = r->s[r->i];
    struct cset d = {.n = 0};
    switch (e) {
    case 'd':
    case 'D': cset_add(&d, '0', '9'); break;
    case 'w':
    case 'W':
        cset_add(&d, '0', '9');
        cset_add(&d, 'A', 'Z');
        cset_add(&d, 'a', 'z');
        cset_add(&d, '_', '_');
        break;
    case 's':
    case 'S':
        cset_add(&d, '\t', '\r');
        cset_add(&d, ' ', ' ');
        break;
    case 'n':
        r->i++;
        *cp = '\n';
        return 0;
    case 't':
        r->i++;
        *cp = '\t';
        return 0;
    case 'r':
        r->i++;
        *cp = '\r';
        return 0;
    case 'f':
        r->i++;
        *cp = '\f';
        return 0;
    case 'v':
        r->i++;
        *cp = '\v';
        return 0;
    case 'u': {
        unsigned v = 0;
        for (int k = 1; k <= 4; k++) {
            char h = r->i + (size_t)k < r->n ? r->s[r->i + (size_t)k] : 0;
            int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
            if (d < 0)
                return rx_fail(r, "a \\u without four hex digits"), -1;
            v = v << 4 | (unsigned)d;
        }
        if (v >= 0xD800 && v <= 0xDFFF)
            return rx_fail(r, "a \\u escape of a surrogate"), -1;
        r->i += 5;
        *cp = v;
        return 0;
    }
    default:
        if (strchr("^$.|?*+()[]{}/\\-\"", e) && e) {
            r->i++;
            *cp = (uint32_t)(unsigned char)e;
            return 0;
        }
        return rx_fail(r, "an escape other than \\d \\w \\s \\D \\W \\S \\n \\t \\r \\f \\v "
                          "\\uXXXX or an escaped punctuation character"),
               -1;
    }
    r->i++;
    if (e == 'D' || e == 'W' || e == 'S')
        cset_negate(&d);
    for (int k = 0; k < d.n; k++)
        cset_add(s, d.lo[k], d.hi[k]);
    return 1;
}

static int rx_class(struct rx *r, struct cset *s)
{
    bool negate = false;
    r->i++; /* '[' */
    if (r->i < r->n && r->s[r->i] == '^') {
        negate = true;
        r->i++;
    }
    for (bool first = true; r->i < r->n && (first || r->s[r->i] != ']'); first = false) {
        uint32_t lo, hi;
        int k = 0;
        if (r->s[r->i] == '\\') {
            k = rx_escape(r, s, &lo);
            if (k < 0)
                return -1;
            if (k == 1)
                continue;
        } else if (r->s[r->i] == '[') {
            return rx_fail(r, "a '[' inside a class");
        } else {
            lo = rx_cp(r);
        }
        hi = lo;
        if (r->i + 1 < r->n && r->s[r->i] == '-' && r->s[r->i + 1] != ']') {
            r->i++;
            if (r->s[r->i] == '\\') {
                k = rx_escape(r, s, &hi);
                if (k != 0)
                    return k < 0 ? -1 : rx_fail(r, "a class escape ending a range");
            } else {
                hi = rx_cp(r);
            }
            if (hi < lo)
                return rx_fail(r, "a range out of order");
        }
        if (!cset_add(s, lo, hi))
            return rx_fail(r, "a class of more than 64 ranges");
    }
    if (r->i >= r->n)
        return rx_fail(r, "an unclosed '['");
    r->i++; /* ']' */
    if (negate)
        cset_negate(s);
    return 0;
}

static int rx_alt(struct rx *r, struct llamad_buf *out, int *branches);

static bool rx_number(struct rx *r, long *v)
{
    size_t start = r->i;
    *v = 0;
    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9' && *v <= 100000)
        *v = *v * 10 + (r->s[r->i++] - '0');
    return r->i > start;
}

/* A quantifier after an atom: its bounds, or 1,1 when none. */
static int rx_quantifier(struct rx *r, long *lo, long *hi)
{
    *lo = *hi = 1;
    if (r->i >= r->n)
        return 0;
    char q = r->s[r->i];
    if (q == '?' || q == '*' || q == '+') {
        *lo = q == '+' ? 1 : 0;
        *hi = q == '?' ? 1 : INF;
        r->i++;
    } else if (q == '{') {
        r->i++;
        if (!rx_number(r, lo))
            return rx_fail(r, "a '{' that starts no {m}, {m,} or {m,n}");
        *hi = *lo;
        if (r->i < r->n && r->s[r->i] == ',') {
            r->i++;
            if (!rx_number(r, hi))
                *hi = INF;
        }
        if (r->i >= r->n || r->s[r->i] != '}')
            return rx_fail(r, "an unclosed '{'");
        r->i++;
        if ((*hi != INF && *hi < *lo))
            return rx_fail(r, "a {m,n} with n < m");
        if (*lo > LLAMAD_SCHEMA_MAX_REPEAT || *hi > LLAMAD_SCHEMA_MAX_REPEAT)
            return rx_fail(r, "a repetition count over 1000");
    } else {
        return 0;
    }
    if (r->i < r->n && (r->s[r->i] == '?' || r->s[r->i] == '+'))
        return rx_fail(r, "a lazy or possessive quantifier");
    if (r->i < r->n && strchr("?*+{", r->s[r->i]))
        return rx_fail(r, "a quantifier after a quantifier");
    return 0;
}

static int rx_seq(struct rx *r, struct llamad_buf *out)
{
    int atoms = 0;
    while (r->i < r->n && r->s[r->i] != '|' && r->s[r->i] != ')') {
        struct llamad_buf atom = LLAMAD_BUF_INIT;
        struct cset s = {.n = 0};
        char ch = r->s[r->i];
        /* Every atom is one token or a group: it takes a quantifier as it is. */
        if (ch == '(') {
            r->i++;
            if (r->i < r->n && r->s[r->i] == '?') {
                if (r->i + 1 < r->n && r->s[r->i + 1] == ':')
                    r->i += 2;
                else
                    return rx_fail(r, "a lookaround or named group");
            }
            if (++r->depth > 32)
                return rx_fail(r, "groups nested over 32 deep");
            int branches = 0;
            put(r->c, &atom, "( ");
            rx_alt(r, &atom, &branches);
            put(r->c, &atom, " )");
            r->depth--;
            if (r->c->rc) {
                llamad_buf_free(&atom);
                return r->c->rc;
            }
            if (r->i >= r->n || r->s[r->i] != ')') {
                llamad_buf_free(&atom);
                return rx_fail(r, "an unclosed '('");
            }
            r->i++;
        } else if (ch == '[' || ch == '.' || ch == '\\') {
            uint32_t cp = 0;
            int k = 1;
            if (ch == '[') {
                k = rx_class(r, &s) < 0 ? -1 : 1;
            } else if (ch == '.') {
                r->i++;
                cset_add(&s, '\n', '\n');
                cset_negate(&s);
            } else {
                k = rx_escape(r, &s, &cp);
            }
            if (k < 0)
                return r->c->rc;
            if (k == 0)
                cset_add(&s, cp, cp);
            cset_expr(r->c, &atom, &s);
        } else if (strchr("*+?{", ch)) {
            return rx_fail(r, "a quantifier with nothing to repeat");
        } else if (ch == '^' || ch == '$') {
            return rx_fail(r, "an anchor ('^', '$') not at the pattern's start or end");
        } else if (ch == ']' || ch == '}') {
            return rx_fail(r, "an unmatched ']' or '}'");
        } else {
            uint32_t cp = rx_cp(r);
            cset_add(&s, cp, cp);
            cset_expr(r->c, &atom, &s);
        }
        long lo, hi;
        if (rx_quantifier(r, &lo, &hi) == 0 && !r->c->rc) {
            if (atoms++)
                put(r->c, out, " ");
            if (!atom.data)
                put(r->c, out, "\"\"");
            else
                put_repeat(r->c, out, atom.data, true, lo, hi);
            if (hi == 0)
                put(r->c, out, "\"\"");
        }
        llamad_buf_free(&atom);
        if (r->c->rc)
            return r->c->rc;
    }
    if (!atoms)
        put(r->c, out, "\"\"");
    return r->c->rc;
}

static int rx_alt(struct rx *r, struct llamad_buf *out, int *branches)
{
    for (;;) {
        if ((*branches)++)
            put(r->c, out, " | ");
        if (rx_seq(r, out))
            return r->c->rc;
        if (r->i >= r->n || r->s[r->i] != '|')
            return 0;
        r->i++;
    }
}

static void pattern_expr(struct conv *c, const cJSON *p, struct llamad_buf *out)
{
    size_t saved = push(c, "pattern");
    if (!cJSON_IsString(p)) {
        pop(c, saved);
        invalid(c, "pattern", "must be a string");
        return;
    }
    pop(c, saved);
    const char *s = p->valuestring;
    size_t n = strlen(s);
    if (n > LLAMAD_SCHEMA_MAX_PATTERN) {
        invalid(c, "pattern", "is longer than 1024 bytes");
        return;
    }
    bool start = n && s[0] == '^';
    size_t backslashes = 0;
    while (backslashes + 1 < n && s[n - 2 - backslashes] == '\\')
        backslashes++;
    bool end = n > (size_t)start && s[n - 1] == '$' && backslashes % 2 == 0;
    struct rx r = {.c = c, .s = s, .i = start, .n = end ? n - 1 : n};
    struct llamad_buf core = LLAMAD_BUF_INIT, b = LLAMAD_BUF_INIT;
    int branches = 0;
    rx_alt(&r, &core, &branches);
    if (!c->rc && r.i < r.n)
        rx_fail(&r, "an unmatched ')'");
    if (!c->rc && branches > 1 && (start || end))
        rx_fail(&r, "a top-level '|' beside an anchor: group the alternatives");
    put(c, &b, "\"\\\"\" ");
    if (!start) {
        use(c, &b, P_CHAR);
        put(c, &b, "* ");
    }
    if (branches > 1)
        put(c, &b, "( ");
    put(c, &b, core.data ? core.data : "\"\"");
    if (branches > 1)
        put(c, &b, " )");
    if (!end) {
        put(c, &b, " ");
        use(c, &b, P_CHAR);
        put(c, &b, "*");
    }
    put(c, &b, " \"\\\"\"");
    llamad_buf_free(&core);
    if (c->rc) {
        llamad_buf_free(&b);
        return;
    }
    put(c, out, b.data);
    llamad_buf_free(&b);
}

static void string_expr(struct conv *c, const struct node *n, struct llamad_buf *out)
{
    const cJSON *minl = n->kw[K_MIN_LENGTH], *maxl = n->kw[K_MAX_LENGTH];
    const cJSON *pattern = n->kw[K_PATTERN], *format = n->kw[K_FORMAT];
    if (pattern && (format || minl || maxl)) {
        unsupported(c, format ? "format" : minl ? "minLength" : "maxLength", " (beside 'pattern')");
        return;
    }
    if (format && (minl || maxl)) {
        unsupported(c, minl ? "minLength" : "maxLength", " (beside 'format')");
        return;
    }
    if (pattern) {
        pattern_expr(c, pattern, out);
        return;
    }
    if (format) {
        format_expr(c, format, out);
        return;
    }
    long lo = count_kw(c, minl, "minLength", 0), hi = count_kw(c, maxl, "maxLength", INF);
    if (c->rc)
        return;
    if (lo == 0 && hi == INF) {
        use(c, out, P_STRING);
        return;
    }
    if (hi != INF && hi < lo) {
        fail(c, LLAMAD_EINVAL, "'maxLength' at %s is below 'minLength'", path(c));
        return;
    }
    struct llamad_buf b = LLAMAD_BUF_INIT;
    put(c, &b, "\"\\\"\" ");
    c->prims |= hi != 0 ? 1u << P_CHAR : 0;
    put_repeat(c, &b, "char", true, lo, hi);
    put(c, &b, hi == 0 ? "\"\\\"\"" : " \"\\\"\"");
    put(c, out, b.data);
    llamad_buf_free(&b);
}

/* ---- Arrays ---- */

static void array_expr(struct conv *c, const struct node *n, const char *hint,
                       struct llamad_buf *out)
{
    const cJSON *items = n->kw[K_ITEMS], *prefix = n->kw[K_PREFIX];
    long m = count_kw(c, n->kw[K_MIN_ITEMS], "minItems", 0);
    long mx = count_kw(c, n->kw[K_MAX_ITEMS], "maxItems", INF);
    if (c->rc)
        return;
    if (!items && !prefix && m == 0 && mx == INF) {
        use(c, out, P_ARRAY);
        return;
    }
    if (prefix && (!cJSON_IsArray(prefix) || cJSON_GetArraySize(prefix) == 0)) {
        invalid(c, "prefixItems", "must be a non-empty array of schemas");
        return;
    }
    if (items && !cJSON_IsObject(items) && !cJSON_IsBool(items)) {
        invalid(c, "items", "must be a schema");
        return;
    }
    long k = prefix ? cJSON_GetArraySize(prefix) : 0;
    if (k > LLAMAD_SCHEMA_MAX_REPEAT) {
        invalid(c, "prefixItems", "has over 1000 schemas");
        return;
    }
    bool has_c = !cJSON_IsFalse(items);
    long lmax = has_c ? mx : (mx != INF && mx < k ? mx : k);
    if (lmax != INF && m > lmax) {
        fail(c, LLAMAD_EINVAL, "'minItems' at %s is more than the array can hold", path(c));
        return;
    }
    /* The element expressions, each followed by ws. */
    char **el = calloc((size_t)k + 1, sizeof *el);
    if (!el) {
        fail(c, LLAMAD_ENOMEM, "out of memory");
        return;
    }
    char h[96];
    for (long j = 0; j < k && !c->rc; j++) {
        struct llamad_buf e = LLAMAD_BUF_INIT;
        snprintf(h, sizeof h, "%s-item%ld", hint, j);
        size_t saved = push_index(c, "prefixItems", (int)j);
        c->guards++;
        schema_expr(c, cJSON_GetArrayItem(prefix, (int)j), h, -1, &e);
        c->guards--;
        pop(c, saved);
        put(c, &e, " ws");
        el[j] = e.data;
    }
    if (has_c && !c->rc) {
        struct llamad_buf e = LLAMAD_BUF_INIT;
        snprintf(h, sizeof h, "%s-item", hint);
        c->guards++;
        if (items)
            sub_expr(c, items, "items", h, &e);
        else
            use(c, &e, P_VALUE);
        c->guards--;
        put(c, &e, " ws");
        el[k] = e.data;
    }
    c->prims |= 1u << P_WS;
    struct llamad_buf b = LLAMAD_BUF_INIT, sep = LLAMAD_BUF_INIT;
    put(c, &b, "\"[\" ws");
    long req_prefix = m < k ? m : k;
    for (long j = 0; j < req_prefix && !c->rc; j++) {
        put(c, &b, j ? " \",\" ws " : " ");
        put(c, &b, el[j]);
    }
    if (m > k && !c->rc) { /* required items of the items schema */
        long r = m - k;
        put(c, &b, " ");
        if (k == 0) {
            put(c, &b, el[k]);
            r--;
            if (r)
                put(c, &b, " ");
        }
        put(c, &sep, "\",\" ws ");
        put(c, &sep, el[k] ? el[k] : "");
        if (r)
            put_repeat(c, &b, sep.data, false, r, r);
    }
    /* The optional rest: prefix positions m..k-1 nested, then the items schema. */
    long start = m > k ? m : k;
    long t = !has_c ? 0 : lmax == INF ? INF : lmax > start ? lmax - start : 0;
    long opened = 0;
    for (long j = m; j < k && (lmax == INF || j < lmax) && !c->rc; j++, opened++) {
        put(c, &b, j ? " ( \",\" ws " : " ( ");
        put(c, &b, el[j]);
    }
    if (t != 0 && !c->rc) {
        put(c, &b, " ");
        if (start == 0) {
            struct llamad_buf more = LLAMAD_BUF_INIT;
            put(c, &more, "\",\" ws ");
            put(c, &more, el[k]);
            llamad_buf_clear(&sep);
            put(c, &sep, el[k]);
            if (t != 1)
                put(c, &sep, " ");
            put_repeat(c, &sep, more.data ? more.data : "", false, 0, t == INF ? INF : t - 1);
            llamad_buf_free(&more);
            put_repeat(c, &b, sep.data ? sep.data : "", false, 0, 1);
        } else {
            llamad_buf_clear(&sep);
            put(c, &sep, "\",\" ws ");
            put(c, &sep, el[k]);
            put_repeat(c, &b, sep.data, false, 0, t);
        }
    }
    for (long j = 0; j < opened; j++)
        put(c, &b, " )?");
    put(c, &b, " \"]\"");
    for (long j = 0; j <= k; j++)
        free(el[j]);
    free(el);
    llamad_buf_free(&sep);
    if (c->rc) {
        llamad_buf_free(&b);
        return;
    }
    put(c, out, b.data);
    llamad_buf_free(&b);
}

/* ---- Objects ---- */

static void object_expr(struct conv *c, const struct node *n, const char *hint,
                        struct llamad_buf *out)
{
    const cJSON *props = n->kw[K_PROPERTIES], *req = n->kw[K_REQUIRED];
    const cJSON *extra = n->kw[K_ADDITIONAL];
    if (props && !cJSON_IsObject(props))
        invalid(c, "properties", "must be an object of schemas");
    if (req && !cJSON_IsArray(req))
        invalid(c, "required", "must be an array of strings");
    if (extra && !cJSON_IsObject(extra) && !cJSON_IsBool(extra))
        invalid(c, "additionalProperties", "must be a schema");
    for (const cJSON *r = req ? req->child : NULL; r && !c->rc; r = r->next) {
        if (!cJSON_IsString(r))
            invalid(c, "required", "must be an array of strings");
        else if (!cJSON_GetObjectItemCaseSensitive(props, r->valuestring)) {
            char why[128];
            snprintf(why, sizeof why, " (required property '%.60s' is not in 'properties')",
                     r->valuestring);
            unsupported(c, "required", why);
        }
    }
    if (c->rc)
        return;
    if (!props && !req && !extra) {
        use(c, out, P_OBJECT);
        return;
    }
    int np = props ? cJSON_GetArraySize(props) : 0;
    char **kv = calloc((size_t)np + 1, sizeof *kv);
    bool *required = calloc((size_t)np + 1, sizeof *required);
    if (!kv || !required) {
        free(kv);
        free(required);
        fail(c, LLAMAD_ENOMEM, "out of memory");
        return;
    }
    c->prims |= 1u << P_WS;
    char h[160];
    int i = 0, first_req = -1;
    for (const cJSON *p = props ? props->child : NULL; p && !c->rc; p = p->next, i++) {
        struct llamad_buf e = LLAMAD_BUF_INIT;
        cJSON *key = cJSON_CreateString(p->string);
        if (!key) {
            fail(c, LLAMAD_ENOMEM, "out of memory");
            break;
        }
        json_literal(c, key, &e);
        cJSON_Delete(key);
        put(c, &e, " ws \":\" ws ");
        snprintf(h, sizeof h, "%s-%.60s", hint, p->string);
        size_t saved = push(c, "properties");
        c->guards++;
        sub_expr(c, p, p->string, h, &e);
        c->guards--;
        pop(c, saved);
        put(c, &e, " ws");
        kv[i] = e.data;
        for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
            required[i] = required[i] || strcmp(r->valuestring, p->string) == 0;
        if (required[i] && first_req < 0)
            first_req = i;
    }
    /* Extra members: any key, additionalProperties' schema (any value when absent). */
    char *ex = NULL;
    if (!cJSON_IsFalse(extra) && !c->rc) {
        struct llamad_buf e = LLAMAD_BUF_INIT;
        use(c, &e, P_STRING);
        put(c, &e, " ws \":\" ws ");
        snprintf(h, sizeof h, "%s-additional", hint);
        c->guards++;
        if (cJSON_IsObject(extra))
            sub_expr(c, extra, "additionalProperties", h, &e);
        else
            use(c, &e, P_VALUE);
        c->guards--;
        put(c, &e, " ws");
        ex = e.data;
    }
    struct llamad_buf b = LLAMAD_BUF_INIT, extras = LLAMAD_BUF_INIT;
    if (ex) {
        put(c, &extras, "( \",\" ws ");
        put(c, &extras, ex);
        put(c, &extras, " )*");
    }
    put(c, &b, "\"{\" ws ");
    if (first_req >= 0) {
        /* Optional members before the first required one carry their comma after. */
        for (int j = 0; j < np; j++) {
            if (j < first_req)
                put(c, &b, "( "), put(c, &b, kv[j]), put(c, &b, " \",\" ws )? ");
            else if (j == first_req)
                put(c, &b, kv[j]), put(c, &b, " ");
            else if (required[j])
                put(c, &b, "\",\" ws "), put(c, &b, kv[j]), put(c, &b, " ");
            else
                put(c, &b, "( \",\" ws "), put(c, &b, kv[j]), put(c, &b, " )? ");
        }
        if (ex)
            put(c, &b, extras.data), put(c, &b, " ");
    } else if (np || ex) {
        /* No member is required: the first present one picks the alternative, and
         * rest-J (the members from J on, each optional) follows it. */
        char **rest = calloc((size_t)np + 1, sizeof *rest);
        if (!rest)
            fail(c, LLAMAD_ENOMEM, "out of memory");
        for (int j = np - 1; j >= 1 && !c->rc; j--) {
            struct llamad_buf r = LLAMAD_BUF_INIT;
            put(c, &r, "( \",\" ws ");
            put(c, &r, kv[j]);
            put(c, &r, " )?");
            if (j + 1 < np)
                put(c, &r, " "), put(c, &r, rest[j + 1]);
            else if (ex)
                put(c, &r, " "), put(c, &r, extras.data);
            snprintf(h, sizeof h, "%s-rest%d", hint, j);
            long idx = new_rule(c, h);
            set_body(c, idx, &r);
            rest[j] = c->rc ? NULL : strdup(c->rules[idx].name);
            if (!c->rc && !rest[j])
                fail(c, LLAMAD_ENOMEM, "out of memory");
        }
        put(c, &b, "( ");
        for (int j = 0; j < np && !c->rc; j++) {
            if (j)
                put(c, &b, " | ");
            put(c, &b, kv[j]);
            if (j + 1 < np)
                put(c, &b, " "), put(c, &b, rest[j + 1]);
            else if (ex)
                put(c, &b, " "), put(c, &b, extras.data);
        }
        if (ex) {
            put(c, &b, np ? " | " : "");
            put(c, &b, ex);
            put(c, &b, " ");
            put(c, &b, extras.data);
        }
        put(c, &b, " )? ");
        for (int j = 0; rest && j <= np; j++)
            free(rest[j]);
        free(rest);
    }
    put(c, &b, "\"}\"");
    for (int j = 0; j <= np; j++)
        free(kv[j]);
    free(kv);
    free(required);
    free(ex);
    llamad_buf_free(&extras);
    if (c->rc) {
        llamad_buf_free(&b);
        return;
    }
    put(c, out, b.data);
    llamad_buf_free(&b);
}

/* ---- Schemas ---- */

/* A reference to rule to from the rule being made: an edge when nothing is
 * consumed between their starts. */
static void add_edge(struct conv *c, long to)
{
    if (c->rc || c->guards != c->cur_guards)
        return;
    if (c->n_edges == c->cap_edges) {
        size_t cap = c->cap_edges ? c->cap_edges * 2 : 16;
        long(*e)[2] = realloc(c->edges, cap * sizeof *e);
        if (!e) {
            fail(c, LLAMAD_ENOMEM, "out of memory");
            return;
        }
        c->edges = e;
        c->cap_edges = cap;
    }
    c->edges[c->n_edges][0] = c->current;
    c->edges[c->n_edges++][1] = to;
}

/* Depth-first over the edges from rule i: the rule that closes a cycle, or -1. */
static long cycle_from(const struct conv *c, long i, unsigned char *state)
{
    if (state[i] == 1)
        return i;
    if (state[i] == 2)
        return -1;
    state[i] = 1;
    for (size_t e = 0; e < c->n_edges; e++) {
        long found = c->edges[e][0] == i ? cycle_from(c, c->edges[e][1], state) : -1;
        if (found >= 0)
            return found;
    }
    state[i] = 2;
    return -1;
}

static void check_left_recursion(struct conv *c)
{
    if (c->rc || !c->n_edges)
        return;
    unsigned char *state = calloc(c->n_rules, 1);
    if (!state) {
        fail(c, LLAMAD_ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < c->n_rules && !c->rc; i++) {
        long found = cycle_from(c, (long)i, state);
        if (found >= 0)
            fail(c, LLAMAD_EUNSUPPORTED,
                 "unsupported keyword '$ref': rule %s refers back to itself through $ref, "
                 "anyOf or oneOf before any '{' or '[' (a schema that never ends)",
                 c->rules[found].name);
    }
    free(state);
}

/* "#/$defs/NAME" or "#/definitions/NAME": one rule per target, made before its body. */
static int ref_expr(struct conv *c, const cJSON *ref, struct llamad_buf *out)
{
    size_t saved = push(c, "$ref");
    if (!cJSON_IsString(ref)) {
        pop(c, saved);
        return invalid(c, "$ref", "must be a string");
    }
    const char *s = ref->valuestring, *key = NULL;
    const cJSON *defs = NULL;
    if (strncmp(s, "#/$defs/", 8) == 0) {
        key = s + 8;
        defs = cJSON_GetObjectItemCaseSensitive(c->root, "$defs");
    } else if (strncmp(s, "#/definitions/", 14) == 0) {
        key = s + 14;
        defs = cJSON_GetObjectItemCaseSensitive(c->root, "definitions");
    }
    const cJSON *target = key && cJSON_IsObject(defs) && !strchr(key, '/') && !strchr(key, '~')
                              ? cJSON_GetObjectItemCaseSensitive(defs, key)
                              : NULL;
    pop(c, saved);
    if (!target) {
        char why[128];
        snprintf(why, sizeof why,
                 " ('%.60s': only #/$defs/NAME and #/definitions/NAME of the "
                 "root schema)",
                 s);
        return unsupported(c, "$ref", why);
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        if (c->rules[i].target == target) {
            add_edge(c, (long)i);
            put(c, out, c->rules[i].name);
            return c->rc;
        }
    }
    char hint[80];
    snprintf(hint, sizeof hint, "def-%.60s", key);
    long slot = new_rule(c, hint);
    if (slot < 0)
        return c->rc;
    c->rules[slot].target = target;
    add_edge(c, slot);
    long outer_rule = c->current;
    int outer_guards = c->cur_guards;
    c->current = slot;
    c->cur_guards = c->guards;
    size_t outer = c->path_len;
    char saved_path[sizeof c->path];
    memcpy(saved_path, c->path, sizeof c->path);
    c->path_len = 0;
    c->path[0] = '\0';
    push(c, s[2] == '$' ? "$defs" : "definitions");
    push(c, key);
    schema_expr(c, target, c->rules[slot].name, slot, out);
    memcpy(c->path, saved_path, sizeof c->path);
    c->path_len = outer;
    c->current = outer_rule;
    c->cur_guards = outer_guards;
    return c->rc;
}

static unsigned read_types(struct conv *c, const struct node *n)
{
    const cJSON *t = n->kw[K_TYPE];
    if (!t) {
        unsigned implied = 0;
        if (n->kw[K_PROPERTIES] || n->kw[K_REQUIRED] || n->kw[K_ADDITIONAL])
            implied |= T_OBJECT;
        if (n->kw[K_ITEMS] || n->kw[K_PREFIX] || n->kw[K_MIN_ITEMS] || n->kw[K_MAX_ITEMS])
            implied |= T_ARRAY;
        if (n->kw[K_MIN_LENGTH] || n->kw[K_MAX_LENGTH] || n->kw[K_PATTERN] || n->kw[K_FORMAT])
            implied |= T_STRING;
        if (n->kw[K_MINIMUM] || n->kw[K_MAXIMUM] || n->kw[K_EXCL_MIN] || n->kw[K_EXCL_MAX])
            implied |= T_NUMBER;
        return implied ? implied : T_ALL;
    }
    unsigned types = 0;
    int count = 0;
    for (const cJSON *e = cJSON_IsArray(t) ? t->child : t; e;
         e = cJSON_IsArray(t) ? e->next : NULL) {
        unsigned bit = 0;
        for (size_t i = 0; i < COUNT(type_names) && cJSON_IsString(e); i++) {
            if (strcmp(e->valuestring, type_names[i]) == 0)
                bit = 1u << i;
        }
        if (!bit || (types & bit)) {
            invalid(c, "type", "must be a JSON type name or a list of distinct ones");
            return 0;
        }
        types |= bit;
        count++;
    }
    if (!count)
        invalid(c, "type", "must name at least one type");
    return types;
}

static int schema_expr(struct conv *c, const cJSON *s, const char *hint, long slot,
                       struct llamad_buf *out)
{
    if (c->rc)
        return c->rc;
    if (++c->depth > LLAMAD_SCHEMA_MAX_DEPTH) {
        c->depth--;
        return fail(c, LLAMAD_EINVAL, "the schema is nested over %d deep at %s",
                    LLAMAD_SCHEMA_MAX_DEPTH, path(c));
    }
    struct llamad_buf b = LLAMAD_BUF_INIT;
    struct node n;
    const char *other;
    if (cJSON_IsFalse(s)) {
        fail(c, LLAMAD_EUNSUPPORTED, "unsupported schema 'false' at %s (it matches nothing)",
             path(c));
    } else if (!cJSON_IsTrue(s) && !cJSON_IsObject(s)) {
        fail(c, LLAMAD_EINVAL, "the schema at %s must be an object or a boolean", path(c));
    } else if (cJSON_IsTrue(s) || read_keywords(c, s, &n) != 0) {
        if (!c->rc)
            use(c, &b, P_VALUE);
    } else if (n.kw[K_REF]) {
        if ((other = first_constraint(&n, K_REF)) != NULL)
            unsupported(c, other, " (beside '$ref')");
        else
            ref_expr(c, n.kw[K_REF], &b);
    } else if (n.kw[K_ANY_OF] || n.kw[K_ONE_OF]) {
        enum kw k = n.kw[K_ANY_OF] ? K_ANY_OF : K_ONE_OF;
        const cJSON *list = n.kw[k];
        if ((other = first_constraint(&n, k)) != NULL) {
            unsupported(c, other, n.kw[K_ANY_OF] ? " (beside 'anyOf')" : " (beside 'oneOf')");
        } else if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
            invalid(c, keywords[k], "must be a non-empty array of schemas");
        } else {
            int i = 0;
            for (const cJSON *e = list->child; e && !c->rc; e = e->next, i++) {
                char h[96];
                snprintf(h, sizeof h, "%s-%d", hint, i);
                if (i)
                    put(c, &b, " | ");
                size_t saved = push_index(c, keywords[k], i);
                schema_expr(c, e, h, -1, &b);
                pop(c, saved);
            }
        }
    } else {
        unsigned types = read_types(c, &n);
        if (!c->rc && (n.kw[K_CONST] || n.kw[K_ENUM])) {
            c->depth--;
            return literals_expr(c, &n, n.kw[K_TYPE] ? types : T_ALL, hint, slot, out);
        }
        if (types & T_NUMBER) {
            for (int k = K_MINIMUM; k <= K_EXCL_MAX && !c->rc; k++) {
                if (n.kw[k])
                    unsupported(c, keywords[k], " (bounds apply to \"type\": \"integer\" only)");
            }
        }
        /* One alternative per type, in a fixed order. */
        int alts = 0;
        for (unsigned bit = 1; bit <= T_STRING && !c->rc; bit <<= 1) {
            if (!(types & bit) || (bit == T_INTEGER && (types & T_NUMBER)))
                continue;
            if (alts++)
                put(c, &b, " | ");
            switch (bit) {
            case T_NULL: use(c, &b, P_NULL); break;
            case T_BOOLEAN: use(c, &b, P_BOOLEAN); break;
            case T_OBJECT: object_expr(c, &n, hint, &b); break;
            case T_ARRAY: array_expr(c, &n, hint, &b); break;
            case T_NUMBER: use(c, &b, P_NUMBER); break;
            case T_INTEGER: integer_expr(c, &n, &b); break;
            default: string_expr(c, &n, &b); break;
            }
        }
        if (types == T_ALL && !c->rc) { /* no type: any value */
            llamad_buf_clear(&b);
            use(c, &b, P_VALUE);
        }
    }
    c->depth--;
    if (c->rc) {
        llamad_buf_free(&b);
        return c->rc;
    }
    bool simple = b.data && !strpbrk(b.data, " \"[(");
    if (slot >= 0) {
        set_body(c, slot, &b);
        put(c, out, c->rules[slot].name);
    } else if (simple) {
        put(c, out, b.data);
        llamad_buf_free(&b);
    } else {
        add_rule(c, hint, &b, out);
    }
    return c->rc;
}

/* ---- The grammar ---- */

static void write_rule(struct conv *c, struct llamad_buf *b, const char *name, const char *body)
{
    put(c, b, name);
    put(c, b, body[0] ? " ::= " : " ::=");
    put(c, b, body);
    put(c, b, "\n");
}

static void free_rules(struct conv *c)
{
    for (size_t i = 0; i < c->n_rules; i++) {
        free(c->rules[i].name);
        free(c->rules[i].body);
    }
    free(c->rules);
    free(c->edges);
}

static bool name_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool name_char(char ch)
{
    return name_start(ch) || (ch >= '0' && ch <= '9') || ch == '-';
}

/* text[0..len) with its rule names changed: "root" to entry, any other NAME to
 * entry-NAME. The converter writes names only as [a-zA-Z][a-zA-Z0-9-]* outside
 * string literals and character classes, so a scan that skips those finds them all. */
static int rename_rules(const char *text, size_t len, const char *entry, struct llamad_buf *out)
{
    int rc = 0;
    for (size_t i = 0, j; i < len && !rc; i = j) {
        j = i + 1;
        if (text[i] == '"' || text[i] == '[') {
            char close = text[i] == '"' ? '"' : ']';
            while (j < len && text[j] != close)
                j += text[j] == '\\' ? 2 : 1;
            j = j < len ? j + 1 : len;
        } else if (name_start(text[i])) {
            while (j < len && name_char(text[j]))
                j++;
            rc = llamad_buf_append(out, entry, strlen(entry));
            if (j - i == 4 && memcmp(text + i, "root", 4) == 0)
                continue;
            if (!rc)
                rc = llamad_buf_append(out, "-", 1);
        }
        if (!rc)
            rc = llamad_buf_append(out, text + i, j - i);
    }
    return rc;
}

/* The grammar of schema with its entry rule named entry (NULL: "root", and no
 * other name changed; else rename_rules's names), appended to out. */
static int convert(const cJSON *schema, const char *entry, struct llamad_buf *out, char *err,
                   size_t err_len)
{
    struct conv c = {.root = schema, .err = err, .err_len = err_len};
    if (err && err_len)
        err[0] = '\0';
    struct llamad_buf ignored = LLAMAD_BUF_INIT, text = LLAMAD_BUF_INIT;
    long root = new_rule(&c, "root");
    schema_expr(&c, schema, "root", root, &ignored);
    llamad_buf_free(&ignored);
    check_left_recursion(&c);
    for (int pass = 0; pass < P_COUNT; pass++) { /* the primitives' own needs */
        for (int p = 0; p < P_COUNT; p++) {
            if (c.prims & 1u << p)
                c.prims |= prim_deps[p];
        }
    }
    for (size_t i = 0; i < c.n_rules && !c.rc; i++)
        write_rule(&c, &text, c.rules[i].name, c.rules[i].body ? c.rules[i].body : "");
    for (int p = 0; p < P_COUNT && !c.rc; p++) {
        if (c.prims & 1u << p)
            write_rule(&c, &text, prim_names[p], prim_bodies[p]);
    }
    struct llamad_buf renamed = LLAMAD_BUF_INIT;
    const struct llamad_buf *done = entry ? &renamed : &text;
    if (!c.rc && ((entry && rename_rules(text.data, text.len, entry, &renamed) != 0) ||
                  llamad_buf_append(out, done->data, done->len) != 0))
        fail(&c, LLAMAD_ENOMEM, "out of memory");
    llamad_buf_free(&text);
    llamad_buf_free(&renamed);
    free_rules(&c);
    return c.rc;
}

int llamad_json_schema_to_gbnf(const cJSON *schema, struct llamad_buf *out, char *err,
                               size_t err_len)
{
    return convert(schema, NULL, out, err, err_len);
}

int llamad_json_schema_rules(const cJSON *schema, const char *rule, struct llamad_buf *out,
                             char *err, size_t err_len)
{
    size_t n = 0;
    while (name_char(rule[n]))
        n++;
    if (!name_start(rule[0]) || rule[n] || n > LLAMAD_SCHEMA_MAX_RULE_NAME) {
        if (err && err_len)
            snprintf(err, err_len, "'%.64s' is not a letter and up to %d of a-z A-Z 0-9 -", rule,
                     LLAMAD_SCHEMA_MAX_RULE_NAME - 1);
        return LLAMAD_EINVAL;
    }
    return convert(schema, rule, out, err, err_len);
}

int llamad_json_object_gbnf(struct llamad_buf *out)
{
    cJSON *schema = cJSON_CreateObject();
    if (!schema || !cJSON_AddStringToObject(schema, "type", "object")) {
        cJSON_Delete(schema);
        return LLAMAD_ENOMEM;
    }
    int rc = llamad_json_schema_to_gbnf(schema, out, NULL, 0);
    cJSON_Delete(schema);
    return rc;
}
