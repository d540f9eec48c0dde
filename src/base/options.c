/* Command-line options from a table: matching arguments to options, parsing
 * values by kind, and the help text. */
#include "llamad/base/options.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"

/* Help lines are wrapped to fit a terminal of this many columns. */
#define USAGE_COLUMNS 80

/* --- values --------------------------------------------------------------- */

/* A decimal integer, the whole string, with at most a leading '-': no '+', no
 * blanks, no empty digits. */
static bool parse_integer(const char *s, long long min, long long max, long long *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (!isdigit((unsigned char)digits[0]))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_size(const char *s, long long min, long long max, long long *out)
{
    if (!isdigit((unsigned char)s[0]))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return false;
    long long unit = 1;
    switch (*end) {
    case '\0': break;
    case 'K':
    case 'k':
        unit = 1LL << 10;
        end++;
        break;
    case 'M':
    case 'm':
        unit = 1LL << 20;
        end++;
        break;
    case 'G':
    case 'g':
        unit = 1LL << 30;
        end++;
        break;
    default: return false;
    }
    if (*end != '\0' || v > max / unit)
        return false;
    v *= unit;
    if (v < min)
        return false;
    *out = v;
    return true;
}

/* A decimal number, the whole string, read as a float (the float nearest the
 * text, as strtof gives) or as a double. Digits or a '.' come first, after at
 * most a '-': strtod's "nan", "inf" and blanks are not numbers here. */
static bool parse_number(const char *s, bool as_float, double *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (!isdigit((unsigned char)digits[0]) && digits[0] != '.')
        return false;
    char *end;
    errno = 0;
    *out = as_float ? (double)strtof(s, &end) : strtod(s, &end);
    return errno == 0 && *end == '\0';
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true"))
        *out = true;
    else if (!strcmp(s, "false"))
        *out = false;
    else
        return false;
    return true;
}

static int set_string(char **field, const char *v)
{
    char *copy = strdup(v);
    if (!copy)
        return LLAMAD_ENOMEM;
    free(*field);
    *field = copy;
    return LLAMAD_OK;
}

static int store_integer(void *field, const struct llamad_option *o, const char *v, char *why,
                         size_t whysz)
{
    long long n;
    if (!parse_integer(v, o->min, o->max, &n))
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected an integer in %lld..%lld", o->min,
                           o->max);
    if (o->kind == LLAMAD_OPT_INT)
        *(int *)field = (int)n;
    else
        *(int64_t *)field = (int64_t)n;
    return LLAMAD_OK;
}

static int store_number(void *field, const struct llamad_option *o, const char *v, char *why,
                        size_t whysz)
{
    const bool as_float = o->kind == LLAMAD_OPT_FLOAT;
    double x;
    /* A float is held to its range as a float, so a bound such as 0.01 admits "0.01". */
    bool ok = parse_number(v, as_float, &x) &&
              (as_float ? (float)x >= (float)o->lo && (float)x <= (float)o->hi
                        : x >= o->lo && x <= o->hi);
    if (!ok)
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected a number in %g..%g", o->lo, o->hi);
    if (as_float)
        *(float *)field = (float)x;
    else
        *(double *)field = x;
    return LLAMAD_OK;
}

int llamad_option_store(void *target, const struct llamad_option *o, const char *v, char *why,
                        size_t whysz)
{
    void *field = llamad_option_field(target, o);
    long long n;
    if (*v == '\0' && o->kind != LLAMAD_OPT_ARG && o->kind != LLAMAD_OPT_CUSTOM)
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "the value is empty");
    switch (o->kind) {
    case LLAMAD_OPT_ARG: *(const char **)field = v; return LLAMAD_OK;
    case LLAMAD_OPT_STRING: return set_string(field, v);
    case LLAMAD_OPT_BOOL:
        if (!parse_bool(v, field))
            return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected true or false");
        return LLAMAD_OK;
    case LLAMAD_OPT_INT:
    case LLAMAD_OPT_INT64: return store_integer(field, o, v, why, whysz);
    case LLAMAD_OPT_UINT64:
        if (!parse_u64(v, field))
            return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected an integer in 0..%" PRIu64,
                               UINT64_MAX);
        return LLAMAD_OK;
    case LLAMAD_OPT_SIZE:
        if (!parse_size(v, o->min, o->max, &n))
            return llamad_fail(why, whysz, LLAMAD_ERANGE,
                               "expected bytes in %lld..%lld, optionally with a K, M or G "
                               "suffix",
                               o->min, o->max);
        *(size_t *)field = (size_t)n;
        return LLAMAD_OK;
    case LLAMAD_OPT_FLOAT:
    case LLAMAD_OPT_DOUBLE: return store_number(field, o, v, why, whysz);
    case LLAMAD_OPT_CUSTOM: return o->parse(target, o, v, why, whysz);
    case LLAMAD_OPT_HELP:
    case LLAMAD_OPT_VERSION: /* acted on when the command line is split, never stored */ break;
    }
    return llamad_fail(why, whysz, LLAMAD_EINVAL, "takes no value");
}

int llamad_option_apply(void *target, const struct llamad_option *opt, const char *value,
                        const char *where, const char *shown, char *err, size_t errsz)
{
    char why[160];
    int rc = llamad_option_store(target, opt, value, why, sizeof why);
    if (rc == LLAMAD_ENOMEM)
        return llamad_fail(err, errsz, rc, "out of memory");
    if (rc)
        return llamad_fail(err, errsz, rc, "%sinvalid value '%s' for %s: %s", where, value, shown,
                           why);
    return LLAMAD_OK;
}

int llamad_options_defaults(const struct llamad_option_table *t, void *target, char *err,
                            size_t errsz)
{
    for (size_t i = 0; i < t->n_options; i++) {
        const struct llamad_option *o = &t->options[i];
        char shown[64];
        snprintf(shown, sizeof shown, "--%s", o->name);
        int rc = o->dflt ? llamad_option_apply(target, o, o->dflt, "", shown, err, errsz) : 0;
        if (rc)
            return rc;
    }
    return LLAMAD_OK;
}

/* --- command line ----------------------------------------------------------- */

/* The option of arg's first len bytes: "--name" or "-x". */
static const struct llamad_option *find_flag(const struct llamad_option_table *t, const char *arg,
                                             size_t len)
{
    for (size_t i = 0; i < t->n_options; i++) {
        const struct llamad_option *o = &t->options[i];
        if (arg[1] == '-' && strlen(o->name) == len - 2 && !strncmp(arg + 2, o->name, len - 2))
            return o;
        if (arg[1] != '-' && len == 2 && o->short_name == arg[1])
            return o;
    }
    return NULL;
}

int llamad_options_split(const struct llamad_option_table *t, const void *shown, int argc,
                         char **argv, struct llamad_option_arg *args, int *n_args, char *err,
                         size_t errsz)
{
    *n_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        bool is_long = a[0] == '-' && a[1] == '-';
        size_t len = is_long && eq ? (size_t)(eq - a) : strlen(a);
        const struct llamad_option *o = a[0] == '-' ? find_flag(t, a, len) : NULL;
        if (!o)
            return llamad_fail(err, errsz, LLAMAD_EXIT_USAGE, "unknown %s '%.*s' (see --help)",
                               a[0] == '-' ? "option" : "argument", (int)len, a);
        if (o->kind == LLAMAD_OPT_HELP || o->kind == LLAMAD_OPT_VERSION) {
            if (a[len])
                return llamad_fail(err, errsz, LLAMAD_EXIT_USAGE, "%.*s takes no value", (int)len,
                                   a);
            if (o->kind == LLAMAD_OPT_HELP)
                llamad_options_usage(stdout, t, shown);
            else
                puts(t->version);
            return -1;
        }
        const char *value = a[len] ? a + len + 1 : NULL;
        if (!value && o->kind != LLAMAD_OPT_BOOL) {
            if (i + 1 >= argc)
                return llamad_fail(err, errsz, LLAMAD_EXIT_USAGE, "%s needs a value (see --help)",
                                   a);
            value = argv[++i];
        }
        args[(*n_args)++] = (struct llamad_option_arg){o, value, !is_long};
    }
    return 0;
}

int llamad_options_apply_args(void *target, const struct llamad_option_arg *args, int n_args,
                              char *err, size_t errsz)
{
    for (int i = 0; i < n_args; i++) {
        const struct llamad_option *o = args[i].opt;
        char shown[64];
        if (args[i].short_form)
            snprintf(shown, sizeof shown, "-%c", o->short_name);
        else
            snprintf(shown, sizeof shown, "--%s", o->name);
        int rc = llamad_option_apply(target, o, args[i].value ? args[i].value : "true", "", shown,
                                     err, errsz);
        if (rc)
            return rc;
    }
    return LLAMAD_OK;
}

int llamad_options_parse(const struct llamad_option_table *t, void *target, int argc, char **argv,
                         char *err, size_t errsz)
{
    struct llamad_option_arg *args = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *args);
    if (!args)
        return llamad_fail(err, errsz, LLAMAD_EXIT_USAGE, "out of memory");
    int n_args;
    int rc = llamad_options_split(t, target, argc, argv, args, &n_args, err, errsz);
    if (rc == 0 && (llamad_options_defaults(t, target, err, errsz) ||
                    llamad_options_apply_args(target, args, n_args, err, errsz)))
        rc = LLAMAD_EXIT_USAGE;
    free(args);
    return rc;
}

/* --- help ------------------------------------------------------------------- */

/* "-m, --model PATH", or "    --host ADDR" for an option without a short flag. */
static void flags_text(const struct llamad_option *o, char *buf, size_t size)
{
    int n =
        o->short_name ? snprintf(buf, size, "-%c, ", o->short_name) : snprintf(buf, size, "    ");
    snprintf(buf + n, size - (size_t)n, "--%s%s%s", o->name, o->metavar ? " " : "",
             o->metavar ? o->metavar : "");
}

/* The value o's field holds in shown; false for none to show (a flag, a string
 * not set, a custom kind). */
static bool value_text(const struct llamad_option *o, const void *shown, char *buf, size_t size)
{
    const void *field = (const char *)shown + o->offset;
    switch (o->kind) {
    case LLAMAD_OPT_ARG:
    case LLAMAD_OPT_STRING: {
        const char *s = *(const char *const *)field;
        if (s)
            snprintf(buf, size, "%s", s);
        return s != NULL;
    }
    case LLAMAD_OPT_INT: snprintf(buf, size, "%d", *(const int *)field); return true;
    case LLAMAD_OPT_INT64: snprintf(buf, size, "%" PRId64, *(const int64_t *)field); return true;
    case LLAMAD_OPT_UINT64: snprintf(buf, size, "%" PRIu64, *(const uint64_t *)field); return true;
    case LLAMAD_OPT_SIZE: snprintf(buf, size, "%zu", *(const size_t *)field); return true;
    case LLAMAD_OPT_FLOAT: snprintf(buf, size, "%g", (double)*(const float *)field); return true;
    case LLAMAD_OPT_DOUBLE: snprintf(buf, size, "%g", *(const double *)field); return true;
    default: return false;
    }
}

/* " (default: VALUE)", " (default: VALUE = NOTE)", " (default: NOTE)" or "". */
static void default_text(const struct llamad_option *o, const void *shown, char *buf, size_t size)
{
    char value[64];
    const char *v = o->dflt;
    if (!v && !o->note && shown && value_text(o, shown, value, sizeof value))
        v = value;
    if (v && o->note)
        snprintf(buf, size, " (default: %s = %s)", v, o->note);
    else if (v || o->note)
        snprintf(buf, size, " (default: %s)", v ? v : o->note);
    else
        buf[0] = '\0';
}

/* The length of the piece of text at p that a line may not break: a word, or a
 * label in parentheses with the word after it, so "(default: 8)" stays whole. */
static size_t unbreakable_length(const char *p)
{
    size_t n = strcspn(p, " ");
    if (p[0] == '(' && n > 1 && p[n - 1] == ':' && p[n] == ' ' && p[n + 1] && p[n + 1] != ' ')
        n += 1 + strcspn(p + n + 1, " ");
    return n;
}

/* Writes text from column col on, breaking lines at blanks to stay within
 * USAGE_COLUMNS and starting each new line at column indent. */
static void put_wrapped(FILE *out, const char *text, int col, int indent)
{
    bool line_empty = true;
    for (const char *p = text; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        int n = (int)unbreakable_length(p);
        if (!line_empty && col + 1 + n > USAGE_COLUMNS) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
            line_empty = true;
        }
        if (!line_empty) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, (size_t)n, out);
        col += n;
        line_empty = false;
        p += n;
    }
    fputc('\n', out);
}

void llamad_options_usage(FILE *out, const struct llamad_option_table *t, const void *shown)
{
    char flags[64], dflt[256], text[1024];
    int width = 0;
    for (size_t i = 0; i < t->n_options; i++) {
        flags_text(&t->options[i], flags, sizeof flags);
        if ((int)strlen(flags) > width)
            width = (int)strlen(flags);
    }
    fputs(t->usage, out);
    for (size_t i = 0; i < t->n_options; i++) {
        const struct llamad_option *o = &t->options[i];
        flags_text(o, flags, sizeof flags);
        default_text(o, shown, dflt, sizeof dflt);
        snprintf(text, sizeof text, "%s%s", o->help, dflt);
        fprintf(out, "  %-*s  ", width, flags);
        put_wrapped(out, text, 2 + width + 2, 2 + width + 2);
    }
    if (t->epilog)
        fputs(t->epilog, out);
}
