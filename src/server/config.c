/* The daemon's option table (parsed by base/options.c) and its conf file.
 *
 * Choices the header leaves open: --max-body-size takes plain bytes or a K, M
 * or G suffix (1024-based); api_key and allowed_origins lines and their flags
 * add up rather than replace each other (and so do their environment
 * variables); a bare boolean flag means true and --flag=false is also accepted;
 * an empty value is an error for every option, in a flag, a conf line or the
 * environment alike. */
#include "llamad/server/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/options.h"
#include "llamad/model/kvcache_type.h"
#include "llamad/server/origin.h"

#define OFF(field) offsetof(struct llamad_config, field)

static int parse_log_level(void *target, const struct llamad_option *opt, const char *value,
                           char *why, size_t whysz)
{
    if (!llamad_log_level_parse(value, llamad_option_field(target, opt)))
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected error, warn, info or debug");
    return LLAMAD_OK;
}

/* Appends a copy of the first n bytes of s to a list of strings. */
static int append(char ***list, size_t *count, const char *s, size_t n)
{
    char **grown = realloc(*list, (*count + 1) * sizeof *grown);
    if (!grown)
        return LLAMAD_ENOMEM;
    *list = grown;
    if (!(grown[*count] = strndup(s, n)))
        return LLAMAD_ENOMEM;
    (*count)++;
    return LLAMAD_OK;
}

static int append_key(struct llamad_config *c, const char *key)
{
    return append(&c->api_keys, &c->n_api_keys, key, strlen(key));
}

/* --api-key and api_key add up rather than replace each other. */
static int parse_api_key(void *target, const struct llamad_option *opt, const char *value,
                         char *why, size_t whysz)
{
    (void)opt;
    if (*value == '\0')
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "the value is empty");
    return append_key(target, value);
}

/* Origins separated by commas or blanks; like keys, each flag and line adds to
 * the list. */
static int parse_origins(void *target, const struct llamad_option *opt, const char *value,
                         char *why, size_t whysz)
{
    (void)opt;
    struct llamad_config *c = target;
    static const char sep[] = ", \t";
    if (*value == '\0')
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "the value is empty");
    for (const char *p = value + strspn(value, sep); *p; p += strspn(p, sep)) {
        size_t n = strcspn(p, sep);
        char origin[300];
        bool ok = n < sizeof origin;
        if (ok) {
            memcpy(origin, p, n);
            origin[n] = '\0';
            ok = llamad_origin_valid(origin);
        }
        if (!ok)
            return llamad_fail(why, whysz, LLAMAD_ERANGE,
                               "'%.*s' is not an origin: expected http[s]://HOST[:PORT]",
                               (int)(n < 100 ? n : 100), p);
        if (append(&c->allowed_origins, &c->n_allowed_origins, p, n))
            return llamad_fail(why, whysz, LLAMAD_ENOMEM, "out of memory");
        p += n;
    }
    return LLAMAD_OK;
}

/* The table by hand: clang-format would put every field on a line of its own. */
/* clang-format off */
static const struct llamad_option options[] = {
    {.name = "config", .kind = LLAMAD_OPT_STRING, .offset = OFF(config_file), .metavar = "FILE",
     .help = "conf file read before the flags (flags override it)", .note = "none"},
    {.name = "model", .short_name = 'm', .kind = LLAMAD_OPT_STRING, .offset = OFF(model),
     .metavar = "PATH", .help = "GGUF model file", .note = "the bundled model"},
    {.name = "model-alias", .kind = LLAMAD_OPT_STRING, .offset = OFF(model_alias),
     .metavar = "NAME", .help = "model id in responses", .note = "the model's file name"},
    {.name = "strict-model-name", .kind = LLAMAD_OPT_BOOL, .offset = OFF(strict_model_name),
     .help = "answer 404 for requests naming another model", .dflt = "false"},
    {.name = "host", .kind = LLAMAD_OPT_STRING, .offset = OFF(host), .metavar = "ADDR",
     .help = "address to listen on", .dflt = "127.0.0.1"},
    {.name = "port", .kind = LLAMAD_OPT_INT, .offset = OFF(port), .min = 0, .max = 65535,
     .metavar = "N", .help = "TCP port to listen on", .dflt = "8080"},
    {.name = "threads", .kind = LLAMAD_OPT_INT, .offset = OFF(threads), .min = 0, .max = 1024,
     .metavar = "N", .help = "computing threads", .dflt = "0", .note = "all cores"},
    {.name = "ctx-size", .kind = LLAMAD_OPT_INT, .offset = OFF(ctx_size), .min = 0,
     .max = INT_MAX, .metavar = "N", .help = "context positions per sequence", .dflt = "0",
     .note = "the model's context length"},
    {.name = "parallel", .kind = LLAMAD_OPT_INT, .offset = OFF(parallel), .min = 1, .max = 256,
     .metavar = "N", .help = "sequences decoded together", .dflt = "4"},
    {.name = "queue-length", .kind = LLAMAD_OPT_INT, .offset = OFF(queue_length), .min = 0,
     .max = 65536, .metavar = "N", .help = "requests waiting beyond --parallel", .dflt = "64"},
    {.name = "step-tokens", .kind = LLAMAD_OPT_INT, .offset = OFF(step_tokens), .min = 1,
     .max = 4096, .metavar = "N",
     .help = "most tokens in one step (prompt chunks and one per decoding sequence; at least "
             "--parallel): fewer shorten the pause a new prompt makes in other streams",
     .dflt = "1024"},
    {.name = "pass-tokens", .kind = LLAMAD_OPT_INT, .offset = OFF(pass_tokens), .min = 0,
     .max = 4096, .metavar = "N",
     .help = "while sequences are decoding, a step's prompt chunks go through the model in "
             "passes of at most N tokens, which keeps the decoding steps after them fast "
             "(0: one pass)",
     .dflt = "128"},
    {.name = "kv-cache-type", .kind = LLAMAD_OPT_CUSTOM, .offset = OFF(kv_cache_type),
     .parse = llamad_kvcache_type_option, .metavar = "TYPE",
     .help = "KV cache rows: f16 (half of f32's memory, faster decoding), q8_0 (about half of "
             "f16's; heads a multiple of 32 wide) or f32 (exact attention)",
     .dflt = "f16"},
    {.name = "kv-cache-mb", .kind = LLAMAD_OPT_INT, .offset = OFF(kv_cache_mb), .min = 0,
     .max = 1 << 20, .metavar = "MB",
     .help = "KV cache memory (MiB) for running requests and cached sessions", .dflt = "0",
     .note = "twice --parallel full contexts, at most a quarter of the RAM"},
    {.name = "max-body-size", .kind = LLAMAD_OPT_SIZE, .offset = OFF(max_body_size),
     .min = 1024, .max = 1024LL * 1024 * 1024, .metavar = "BYTES",
     .help = "largest request body; K/M/G suffixes are 1024-based", .dflt = "1M"},
    {.name = "max-connections", .kind = LLAMAD_OPT_INT, .offset = OFF(max_connections), .min = 1,
     .max = 1 << 20, .metavar = "N",
     .help = "open connections in all; more wait in the listen queue", .dflt = "1024"},
    {.name = "max-connections-per-ip", .kind = LLAMAD_OPT_INT,
     .offset = OFF(max_connections_per_ip), .min = 0, .max = 1 << 20, .metavar = "N",
     .help = "open connections from one client address; more are closed at once (0: no limit "
             "but --max-connections)", .dflt = "64"},
    {.name = "request-timeout", .kind = LLAMAD_OPT_DOUBLE, .offset = OFF(request_timeout),
     .lo = 0, .hi = 3600, .metavar = "SECONDS",
     .help = "time a client has to send a whole request, headers and body, from connecting or "
             "from its previous answer; then the connection is closed (0: no limit)",
     .dflt = "60"},
    {.name = "max-tokens", .kind = LLAMAD_OPT_INT, .offset = OFF(max_tokens), .min = 0,
     .max = INT_MAX, .metavar = "N", .help = "cap on tokens generated per request", .dflt = "0",
     .note = "up to the context"},
    {.name = "api-key", .kind = LLAMAD_OPT_CUSTOM, .parse = parse_api_key, .metavar = "KEY",
     .help = "accept this bearer key (repeatable; with no key, none is asked)", .note = "none"},
    {.name = "api-key-file", .kind = LLAMAD_OPT_STRING, .offset = OFF(api_key_file),
     .metavar = "FILE", .help = "more keys, one a line, '#' comments", .note = "none"},
    {.name = "kv-share-across-keys", .kind = LLAMAD_OPT_BOOL, .offset = OFF(kv_share_across_keys),
     .help = "reuse prompt prefixes cached for one API key in requests of another (their "
             "cached_tokens then tell what the other sent); sessions stay each key's own",
     .dflt = "false"},
    {.name = "allowed-origins", .kind = LLAMAD_OPT_CUSTOM, .parse = parse_origins,
     .metavar = "ORIGINS",
     .help = "web origins (http[s]://HOST[:PORT], comma-separated, repeatable) whose pages may "
             "call the server (CORS); other sites' pages get 403",
     .note = "none"},
    {.name = "chat-template", .kind = LLAMAD_OPT_STRING, .offset = OFF(chat_template),
     .metavar = "NAME", .help = "chat template to use", .note = "detected from the model"},
    {.name = "drain-timeout", .kind = LLAMAD_OPT_DOUBLE, .offset = OFF(drain_timeout), .lo = 0,
     .hi = 3600, .metavar = "SECONDS", .help = "grace for running requests after SIGTERM",
     .dflt = "30"},
    {.name = "sse-keepalive", .kind = LLAMAD_OPT_DOUBLE, .offset = OFF(sse_keepalive), .lo = 0,
     .hi = 3600, .metavar = "SECONDS",
     .help = "SSE comment on a stream silent this long (a prompt in progress); 0: none",
     .dflt = "2"},
    {.name = "log-level", .kind = LLAMAD_OPT_CUSTOM, .offset = OFF(log_level),
     .parse = parse_log_level, .metavar = "LEVEL",
     .help = "error, warn, info or debug (SIGHUP re-reads it)", .dflt = "info"},
    LLAMAD_OPTION_HELP,
    {.name = "version", .kind = LLAMAD_OPT_VERSION, .help = "print the version and exit"},
};
/* clang-format on */

static const struct llamad_option_table table = {
    .usage = "usage: llamad [options]\n"
             "Options (conf file keys are the long names with '_' for '-'; environment\n"
             "variables are LLAMAD_ and the key in capitals, LLAMAD_MAX_BODY_SIZE;\n"
             "flags override the environment, which overrides the conf file):\n",
    .version = "llamad 0.1.0",
    .options = options,
    .n_options = sizeof options / sizeof options[0],
};

static bool is_config_flag(const struct llamad_option *o)
{
    return !strcmp(o->name, "config");
}

/* Options of the command line alone, never conf keys. */
static bool flag_only(const struct llamad_option *o)
{
    return is_config_flag(o) || o->kind == LLAMAD_OPT_HELP || o->kind == LLAMAD_OPT_VERSION;
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
static const struct llamad_option *find_key(const char *key)
{
    char name[32];
    size_t n = strlen(key);
    if (n >= sizeof name || strchr(key, '-'))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        name[i] = key[i] == '_' ? '-' : key[i];
    for (size_t i = 0; i < table.n_options; i++)
        if (!flag_only(&options[i]) && !strcmp(options[i].name, name))
            return &options[i];
    return NULL;
}

static int load_entry(void *ctx, const char *key, const char *value, const char *where, char *err,
                      size_t errsz)
{
    const struct llamad_option *o = find_key(key);
    if (!o)
        return llamad_fail(err, errsz, LLAMAD_ENOTFOUND, "%sunknown key '%s'", where, key);
    return llamad_option_apply(ctx, o, value, where, key, err, errsz);
}

struct level_reload {
    bool found;
    struct llamad_config values; /* only log_level is read into it */
};

static int level_entry(void *ctx, const char *key, const char *value, const char *where, char *err,
                       size_t errsz)
{
    struct level_reload *r = ctx;
    if (strcmp(key, "log_level"))
        return LLAMAD_OK;
    int rc = load_entry(&r->values, key, value, where, err, errsz);
    r->found = rc == LLAMAD_OK;
    return rc;
}

/* --- environment ------------------------------------------------------------ */

/* The variable of option o: LLAMAD_ and the long name in capitals with '_' for
 * '-' (LLAMAD_MAX_BODY_SIZE), which is the conf key in capitals. */
static void env_name(const struct llamad_option *o, char *name, size_t size)
{
    size_t n = (size_t)snprintf(name, size, "LLAMAD_%s", o->name);
    for (size_t i = 0; i < n && i < size; i++)
        name[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
}

/* The value of o's variable, or NULL when it is not set; name receives the
 * variable's name. */
static const char *env_value(const struct llamad_option *o, char name[48])
{
    env_name(o, name, 48);
    return getenv(name);
}

/* Stores the value of every conf key's variable that is set. */
static int apply_env(struct llamad_config *c, char *err, size_t errsz)
{
    for (size_t i = 0; i < table.n_options; i++) {
        char name[48];
        const char *value = flag_only(&options[i]) ? NULL : env_value(&options[i], name);
        if (value) {
            int rc = llamad_option_apply(c, &options[i], value, "", name, err, errsz);
            if (rc)
                return rc;
        }
    }
    return LLAMAD_OK;
}

static const struct llamad_option *config_option(void)
{
    for (size_t i = 0; i < table.n_options; i++)
        if (is_config_flag(&options[i]))
            return &options[i];
    return NULL;
}

/* A key absent from the file leaves the running level as it is, and so does a
 * level in the environment, which outranks the file. */
int llamad_config_reload_log_level(struct llamad_config *c, char *err, size_t errsz)
{
    if (!c->config_file)
        return LLAMAD_OK;
    struct level_reload r = {.found = false};
    int rc = read_conf(c->config_file, level_entry, &r, err, errsz);
    if (rc == LLAMAD_OK && r.found && !getenv("LLAMAD_LOG_LEVEL"))
        c->log_level = r.values.log_level;
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
        rc = llamad_fail(err, errsz, LLAMAD_EIO, "cannot read api key file %s", c->api_key_file);
    free(line);
    fclose(f);
    return rc;
}

/* --- command line ----------------------------------------------------------- */

/* The --config named last on the command line, or NULL. */
static const struct llamad_option_arg *config_arg(const struct llamad_option_arg *args, int n_args)
{
    for (int i = n_args - 1; i >= 0; i--)
        if (is_config_flag(args[i].opt))
            return &args[i];
    return NULL;
}

static int load(struct llamad_config *c, int argc, char **argv, char *err, size_t errsz)
{
    struct llamad_option_arg *args = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *args);
    if (!args)
        return llamad_fail(err, errsz, LLAMAD_EXIT_USAGE, "out of memory");
    int n_args;
    int rc = llamad_options_split(&table, NULL, argc, argv, args, &n_args, err, errsz);
    if (rc == 0 && llamad_options_defaults(&table, c, err, errsz))
        rc = LLAMAD_EXIT_USAGE;
    /* The conf file (--config, else LLAMAD_CONFIG) comes first, then the
     * environment, then the flags, each overriding what came before. */
    const struct llamad_option_arg *conf = rc == 0 ? config_arg(args, n_args) : NULL;
    char conf_env[48];
    const char *conf_path = rc == 0 && !conf ? env_value(config_option(), conf_env) : NULL;
    if (conf && llamad_options_apply_args(c, conf, 1, err, errsz))
        rc = LLAMAD_EXIT_USAGE;
    else if (conf_path &&
             llamad_option_apply(c, config_option(), conf_path, "", conf_env, err, errsz))
        rc = LLAMAD_EXIT_USAGE;
    if (rc == 0 && c->config_file && read_conf(c->config_file, load_entry, c, err, errsz))
        rc = LLAMAD_EXIT_USAGE;
    if (rc == 0 && apply_env(c, err, errsz))
        rc = LLAMAD_EXIT_USAGE;
    if (rc == 0 && llamad_options_apply_args(c, args, n_args, err, errsz))
        rc = LLAMAD_EXIT_USAGE;
    if (rc == 0 && c->api_key_file && read_key_file(c, err, errsz))
        rc = LLAMAD_EXIT_USAGE;
    free(args);
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
    for (size_t i = 0; i < c->n_allowed_origins; i++)
        free(c->allowed_origins[i]);
    free(c->allowed_origins);
    free(c->chat_template);
    memset(c, 0, sizeof *c);
}
