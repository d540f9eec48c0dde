/* Option table, command line and conf file parsing.
 *
 * Choices the header leaves open: --max-body-size takes plain bytes or a K, M
 * or G suffix (1024-based); api_key lines and --api-key flags add up rather than
 * replace each other; a bare boolean flag means true and --flag=false is also
 * accepted; an empty value is an error for every option. */
#include "llamad/server/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/model/kvcache_type.h"

#define VERSION_TEXT "llamad 0.1.0"
#define EXIT_USAGE 2

enum opt_kind {
    OPT_STRING,    /* char * at offset, replaced by a later value */
    OPT_BOOL,      /* bool: true|false; a bare flag means true */
    OPT_INT,       /* int in min..max */
    OPT_SIZE,      /* size_t bytes in min..max, optional K/M/G suffix (1024-based) */
    OPT_SECONDS,   /* double in min..max */
    OPT_LOG_LEVEL, /* error|warn|info|debug */
    OPT_KV_TYPE,   /* f16|q8_0|f32, to a tensor type (kvcache_type.h) */
    OPT_API_KEY,   /* appended to api_keys */
    /* Command line only (no conf key): */
    OPT_CONFIG,
    OPT_HELP,
    OPT_VERSION,
};

struct option {
    const char *name; /* long flag without "--" */
    char short_name;  /* 0: none */
    enum opt_kind kind;
    size_t offset;    /* into struct llamad_config */
    long long min, max;
    const char *metavar;
    const char *help;
    /* The default as a value string, applied through the same parser as flags
     * so usage and behaviour cannot drift apart; NULL: unset. */
    const char *dflt;
    /* Usage text after the default ("0 = all cores"), or what unset means. */
    const char *note;
};

#define OFF(field) offsetof(struct llamad_config, field)

static const struct option options[] = {
    {"config", 0, OPT_CONFIG, OFF(config_file), 0, 0, "FILE",
     "conf file read before the flags (flags override it)", NULL, "none"},
    {"model", 'm', OPT_STRING, OFF(model), 0, 0, "PATH", "GGUF model file", NULL,
     "the bundled model"},
    {"model-alias", 0, OPT_STRING, OFF(model_alias), 0, 0, "NAME",
     "model id in responses", NULL, "the model's file name"},
    {"strict-model-name", 0, OPT_BOOL, OFF(strict_model_name), 0, 0, NULL,
     "answer 404 for requests naming another model", "false", NULL},
    {"host", 0, OPT_STRING, OFF(host), 0, 0, "ADDR", "address to listen on", "127.0.0.1", NULL},
    {"port", 0, OPT_INT, OFF(port), 0, 65535, "N", "TCP port to listen on", "8080",
     NULL},
    {"threads", 0, OPT_INT, OFF(threads), 0, 1024, "N", "computing threads", "0",
     "all cores"},
    {"ctx-size", 0, OPT_INT, OFF(ctx_size), 0, INT_MAX, "N", "context positions per sequence",
     "0", "the model's context length"},
    {"parallel", 0, OPT_INT, OFF(parallel), 1, 256, "N", "sequences decoded together", "4",
     NULL},
    {"queue-length", 0, OPT_INT, OFF(queue_length), 0, 65536, "N",
     "requests waiting beyond --parallel", "64", NULL},
    {"step-tokens", 0, OPT_INT, OFF(step_tokens), 1, 4096, "N",
     "most tokens in one step (prompt chunks and one per decoding sequence; at least "
     "--parallel): fewer shorten the pause a new prompt makes in other streams",
     "1024", NULL},
    {"pass-tokens", 0, OPT_INT, OFF(pass_tokens), 0, 4096, "N",
     "while sequences are decoding, a step's prompt chunks go through the model in passes "
     "of at most N tokens, which keeps the decoding steps after them fast (0: one pass)",
     "128", NULL},
    {"kv-cache-type", 0, OPT_KV_TYPE, OFF(kv_cache_type), 0, 0, "TYPE",
     "KV cache rows: f16 (half of f32's memory, faster decoding), q8_0 (about half of f16's; "
     "heads a multiple of 32 wide) or f32 (exact attention)", "f16", NULL},
    {"kv-cache-mb", 0, OPT_INT, OFF(kv_cache_mb), 0, 1 << 20, "MB",
     "KV cache memory (MiB) for running requests and cached sessions", "0",
     "twice --parallel full contexts, at most a quarter of the RAM"},
    {"max-body-size", 0, OPT_SIZE, OFF(max_body_size), 1024, 1024LL * 1024 * 1024, "BYTES",
     "largest request body; K/M/G suffixes are 1024-based", "1M", NULL},
    {"max-tokens", 0, OPT_INT, OFF(max_tokens), 0, INT_MAX, "N",
     "cap on tokens generated per request", "0", "up to the context"},
    {"api-key", 0, OPT_API_KEY, 0, 0, 0, "KEY",
     "accept this bearer key (repeatable; with no key, none is asked)", NULL, "none"},
    {"api-key-file", 0, OPT_STRING, OFF(api_key_file), 0, 0, "FILE",
     "more keys, one a line, '#' comments", NULL, "none"},
    {"chat-template", 0, OPT_STRING, OFF(chat_template), 0, 0, "NAME",
     "chat template to use", NULL, "detected from the model"},
    {"drain-timeout", 0, OPT_SECONDS, OFF(drain_timeout), 0, 3600, "SECONDS",
     "grace for running requests after SIGTERM", "30", NULL},
    {"sse-keepalive", 0, OPT_SECONDS, OFF(sse_keepalive), 0, 3600, "SECONDS",
     "SSE comment on a stream silent this long (a prompt in progress); 0: none", "2", NULL},
    {"log-level", 0, OPT_LOG_LEVEL, OFF(log_level), 0, 0, "LEVEL",
     "error, warn, info or debug (SIGHUP re-reads it)", "info", NULL},
    {"help", 'h', OPT_HELP, 0, 0, 0, NULL, "print this help and exit", NULL, NULL},
    {"version", 0, OPT_VERSION, 0, 0, 0, NULL, "print the version and exit", NULL, NULL},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

static bool flag_only(const struct option *o)
{
    return o->kind == OPT_CONFIG || o->kind == OPT_HELP || o->kind == OPT_VERSION;
}

/* --- usage ---------------------------------------------------------------- */

static void print_usage(FILE *out)
{
    fprintf(out, "usage: llamad [options]\n"
                 "Options (conf file keys are the long names with '_' for '-'):\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option *o = &options[i];
        char left[64];
        int n = o->short_name ? snprintf(left, sizeof left, "-%c, ", o->short_name)
                              : snprintf(left, sizeof left, "    ");
        snprintf(left + n, sizeof left - (size_t)n, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-32s %s", left, o->help);
        if (o->dflt)
            fprintf(out, " (default: %s%s%s)", o->dflt, o->note ? " = " : "",
                    o->note ? o->note : "");
        else if (o->note)
            fprintf(out, " (default: %s)", o->note);
        fputc('\n', out);
    }
}

/* --- values --------------------------------------------------------------- */

/* Parses a whole-string decimal integer; no sign or space in front. */
static bool parse_ll(const char *s, long long *out, char **end)
{
    if (!isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    *out = strtoll(s, end, 10);
    return errno == 0;
}

static bool parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    return parse_ll(s, out, &end) && *end == '\0' && *out >= min && *out <= max;
}

static bool parse_size(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;
    if (!parse_ll(s, &v, &end))
        return false;
    long long unit = 1;
    switch (*end) {
    case '\0': break;
    case 'K': case 'k': unit = 1LL << 10; end++; break;
    case 'M': case 'm': unit = 1LL << 20; end++; break;
    case 'G': case 'g': unit = 1LL << 30; end++; break;
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

static bool parse_seconds(const char *s, double min, double max, double *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end != '\0' || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
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

static int append_key(struct llamad_config *c, const char *key)
{
    char **keys = realloc(c->api_keys, (c->n_api_keys + 1) * sizeof *keys);
    if (!keys)
        return LLAMAD_ENOMEM;
    c->api_keys = keys;
    if (!(keys[c->n_api_keys] = strdup(key)))
        return LLAMAD_ENOMEM;
    c->n_api_keys++;
    return LLAMAD_OK;
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

/* Stores value v of option o into c. On a bad value writes what was expected
 * into why and returns LLAMAD_ERANGE; LLAMAD_ENOMEM when out of memory. */
static int set_value(struct llamad_config *c, const struct option *o, const char *v, char *why,
                     size_t whysz)
{
    void *field = (char *)c + o->offset;
    long long n;
    if (*v == '\0')
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "the value is empty");
    switch (o->kind) {
    case OPT_STRING:
    case OPT_CONFIG:
        return set_string(field, v);
    case OPT_API_KEY:
        return append_key(c, v);
    case OPT_BOOL:
        if (!parse_bool(v, field))
            return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected true or false");
        return LLAMAD_OK;
    case OPT_INT:
        if (!parse_int(v, o->min, o->max, &n))
            return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected an integer in %lld..%lld",
                               o->min, o->max);
        *(int *)field = (int)n;
        return LLAMAD_OK;
    case OPT_SIZE:
        if (!parse_size(v, o->min, o->max, &n))
            return llamad_fail(why, whysz, LLAMAD_ERANGE,
                               "expected bytes in %lld..%lld, optionally with a K, M or G "
                               "suffix", o->min, o->max);
        *(size_t *)field = (size_t)n;
        return LLAMAD_OK;
    case OPT_SECONDS:
        if (!parse_seconds(v, (double)o->min, (double)o->max, field))
            return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected seconds in %lld..%lld",
                               o->min, o->max);
        return LLAMAD_OK;
    case OPT_KV_TYPE:
        if (!llamad_kvcache_type_parse(v, field))
            return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected f16, q8_0 or f32");
        return LLAMAD_OK;
    case OPT_LOG_LEVEL:
        if (!llamad_log_level_parse(v, field))
            return llamad_fail(why, whysz, LLAMAD_ERANGE,
                               "expected error, warn, info or debug");
        return LLAMAD_OK;
    case OPT_HELP:
    case OPT_VERSION: /* acted on in split_args, never stored */
        break;
    }
    return llamad_fail(why, whysz, LLAMAD_EINVAL, "takes no value");
}

/* Applies v to option o, formatting a failure as "<where>invalid value ..."
 * with the option shown as `shown` (a flag or a conf key). */
static int apply(struct llamad_config *c, const struct option *o, const char *v,
                 const char *where, const char *shown, char *err, size_t errsz)
{
    char why[128];
    int rc = set_value(c, o, v, why, sizeof why);
    if (rc == LLAMAD_ENOMEM)
        return llamad_fail(err, errsz, rc, "out of memory");
    if (rc)
        return llamad_fail(err, errsz, rc, "%sinvalid value '%s' for %s: %s", where, v, shown,
                           why);
    return LLAMAD_OK;
}

static int set_defaults(struct llamad_config *c, char *err, size_t errsz)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option *o = &options[i];
        if (o->dflt) {
            int rc = apply(c, o, o->dflt, "", o->name, err, errsz);
            if (rc)
                return rc;
        }
    }
    return LLAMAD_OK;
}

/* --- conf file lines -------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Unquotes "..." in place (s points at the opening quote); what follows the
 * closing quote may only be blanks and a comment. Returns NULL on an error,
 * which *why then names. */
static char *unquote(char *s, const char **why)
{
    char *out = s, *p = s + 1;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\') {
                *why = "unknown escape in quoted value (only \\\" and \\\\)";
                return NULL;
            }
        }
        *out++ = *p;
    }
    if (*p != '"') {
        *why = "missing closing quote";
        return NULL;
    }
    *out = '\0';
    for (p++; isspace((unsigned char)*p); p++)
        ;
    if (*p && *p != '#') {
        *why = "text after the closing quote";
        return NULL;
    }
    return s;
}

/* Cuts a trailing comment: a '#' after whitespace (so "a#b" stays a value). */
static void cut_comment(char *v)
{
    for (char *p = v; *p; p++) {
        if (*p == '#' && p > v && isspace((unsigned char)p[-1])) {
            *p = '\0';
            return;
        }
    }
}

/* Splits one line into key and value. Returns 1 with *key and *value set, 0 for
 * a blank or comment line, or -1 with *why set. */
static int split_line(char *line, char **key, char **value, const char **why)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq) {
        *why = "expected key = value";
        return -1;
    }
    *eq = '\0';
    *key = trim(s);
    if (**key == '\0') {
        *why = "missing key before '='";
        return -1;
    }
    char *v = trim(eq + 1);
    if (*v == '"') {
        *value = unquote(v, why);
        return *value ? 1 : -1;
    }
    /* From eq + 1, so that "key = # note" is a comment as well. */
    cut_comment(eq + 1);
    *value = trim(eq + 1);
    return 1;
}

/* Called for each key = value line of a conf file; where is "FILE:LINE: ". */
typedef int (*conf_entry_fn)(void *ctx, const char *key, const char *value, const char *where,
                             char *err, size_t errsz);

static int read_conf(const char *path, conf_entry_fn fn, void *ctx, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return llamad_fail(err, errsz, LLAMAD_EIO, "cannot open conf file %s: %s", path,
                           strerror(errno));
    char *line = NULL, where[PATH_MAX + 32];
    size_t cap = 0;
    int rc = LLAMAD_OK;
    for (unsigned lineno = 1; rc == LLAMAD_OK && getline(&line, &cap, f) >= 0; lineno++) {
        char *key, *value;
        const char *why;
        snprintf(where, sizeof where, "%s:%u: ", path, lineno);
        int kind = split_line(line, &key, &value, &why);
        if (kind < 0)
            rc = llamad_fail(err, errsz, LLAMAD_EFORMAT, "%s%s", where, why);
        else if (kind > 0)
            rc = fn(ctx, key, value, where, err, errsz);
    }
    if (rc == LLAMAD_OK && ferror(f))
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "cannot read conf file %s", path);
    free(line);
    fclose(f);
    return rc;
}

/* Finds a conf key: the long name with '_' for '-' (a '-' in a key is unknown). */
static const struct option *find_key(const char *key)
{
    char name[32];
    size_t n = strlen(key);
    if (n >= sizeof name || strchr(key, '-'))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        name[i] = key[i] == '_' ? '-' : key[i];
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!flag_only(&options[i]) && !strcmp(options[i].name, name))
            return &options[i];
    return NULL;
}

static int load_entry(void *ctx, const char *key, const char *value, const char *where,
                      char *err, size_t errsz)
{
    const struct option *o = find_key(key);
    if (!o)
        return llamad_fail(err, errsz, LLAMAD_ENOTFOUND, "%sunknown key '%s'", where, key);
    return apply(ctx, o, value, where, key, err, errsz);
}

struct level_reload {
    bool found;
    enum llamad_log_level level;
};

static int level_entry(void *ctx, const char *key, const char *value, const char *where,
                       char *err, size_t errsz)
{
    struct level_reload *r = ctx;
    if (strcmp(key, "log_level"))
        return LLAMAD_OK;
    if (!llamad_log_level_parse(value, &r->level))
        return llamad_fail(err, errsz, LLAMAD_ERANGE,
                           "%sinvalid value '%s' for log_level: expected error, warn, info or "
                           "debug", where, value);
    r->found = true;
    return LLAMAD_OK;
}

/* A key absent from the file leaves the running level as it is. */
int llamad_config_reload_log_level(struct llamad_config *c, char *err, size_t errsz)
{
    if (!c->config_file)
        return LLAMAD_OK;
    struct level_reload r = {false, c->log_level};
    int rc = read_conf(c->config_file, level_entry, &r, err, errsz);
    if (rc == LLAMAD_OK && r.found)
        c->log_level = r.level;
    return rc;
}

/* --- api key file --------------------------------------------------------- */

static int read_key_file(struct llamad_config *c, char *err, size_t errsz)
{
    FILE *f = fopen(c->api_key_file, "r");
    if (!f)
        return llamad_fail(err, errsz, LLAMAD_EIO, "cannot open api key file %s: %s",
                           c->api_key_file, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int rc = LLAMAD_OK;
    while (rc == LLAMAD_OK && getline(&line, &cap, f) >= 0) {
        char *key = trim(line);
        if (*key && *key != '#' && append_key(c, key))
            rc = llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    }
    if (rc == LLAMAD_OK && ferror(f))
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "cannot read api key file %s",
                         c->api_key_file);
    free(line);
    fclose(f);
    return rc;
}

/* --- command line ----------------------------------------------------------- */

/* One flag of the command line with its value (NULL for a bare flag). */
struct flag {
    const struct option *opt;
    const char *value;
};

static const struct option *find_flag(const char *arg, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option *o = &options[i];
        if (arg[1] == '-' && strlen(o->name) == len - 2 && !strncmp(arg + 2, o->name, len - 2))
            return o;
        if (arg[1] != '-' && len == 2 && o->short_name == arg[1])
            return o;
    }
    return NULL;
}

/* Splits argv into flags. Returns 0, -1 after printing --help or --version, or
 * EXIT_USAGE with err set. */
static int split_args(int argc, char **argv, struct flag *flags, int *n_flags, char *err,
                      size_t errsz)
{
    *n_flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        bool is_long = a[0] == '-' && a[1] == '-';
        size_t len = is_long && eq ? (size_t)(eq - a) : strlen(a);
        const struct option *o = a[0] == '-' ? find_flag(a, len) : NULL;
        if (!o) {
            llamad_fail(err, errsz, EXIT_USAGE, "unknown %s '%.*s' (see --help)",
                        a[0] == '-' ? "flag" : "argument", (int)len, a);
            return EXIT_USAGE;
        }
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION) {
            if (a[len]) {
                llamad_fail(err, errsz, EXIT_USAGE, "--%s takes no value", o->name);
                return EXIT_USAGE;
            }
            if (o->kind == OPT_HELP)
                print_usage(stdout);
            else
                puts(VERSION_TEXT);
            return -1;
        }
        const char *value = a[len] ? a + len + 1 : NULL;
        if (!value && o->kind != OPT_BOOL) {
            if (i + 1 >= argc) {
                llamad_fail(err, errsz, EXIT_USAGE, "%s needs a value (see --help)", a);
                return EXIT_USAGE;
            }
            value = argv[++i];
        }
        flags[(*n_flags)++] = (struct flag){o, value};
    }
    return 0;
}

static int apply_flags(struct llamad_config *c, const struct flag *flags, int n, char *err,
                       size_t errsz)
{
    for (int i = 0; i < n; i++) {
        const struct option *o = flags[i].opt;
        char shown[64];
        snprintf(shown, sizeof shown, "--%s", o->name);
        int rc = apply(c, o, flags[i].value ? flags[i].value : "true", "", shown, err, errsz);
        if (rc)
            return rc;
    }
    return LLAMAD_OK;
}

static int load(struct llamad_config *c, int argc, char **argv, char *err, size_t errsz)
{
    struct flag *flags = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *flags);
    if (!flags)
        return llamad_fail(err, errsz, EXIT_USAGE, "out of memory");
    int n_flags;
    int rc = split_args(argc, argv, flags, &n_flags, err, errsz);
    if (rc == 0 && set_defaults(c, err, errsz))
        rc = EXIT_USAGE;
    /* The conf file named last on the command line comes before all flags. */
    for (int i = n_flags - 1; rc == 0 && i >= 0; i--) {
        if (flags[i].opt->kind == OPT_CONFIG) {
            if (set_string(&c->config_file, flags[i].value) ||
                read_conf(c->config_file, load_entry, c, err, errsz))
                rc = EXIT_USAGE;
            break;
        }
    }
    if (rc == 0 && apply_flags(c, flags, n_flags, err, errsz))
        rc = EXIT_USAGE;
    if (rc == 0 && c->api_key_file && read_key_file(c, err, errsz))
        rc = EXIT_USAGE;
    free(flags);
    return rc;
}

int llamad_config_load(struct llamad_config *c, int argc, char **argv, char *err, size_t errsz)
{
    memset(c, 0, sizeof *c);
    int rc = load(c, argc, argv, err, errsz);
    if (rc)
        llamad_config_free(c);
    return rc;
}

void llamad_config_free(struct llamad_config *c)
{
    free(c->config_file);
    free(c->model);
    free(c->model_alias);
    free(c->host);
    for (size_t i = 0; i < c->n_api_keys; i++)
        free(c->api_keys[i]);
    free(c->api_keys);
    free(c->api_key_file);
    free(c->chat_template);
    memset(c, 0, sizeof *c);
}
