#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/format/types.h"
#include "llamad/server/config.h"

static char err[LLAMAD_ERR_MAX];

/* Loads from a NULL-terminated argv after the program name. */
static int load_argv(struct llamad_config *c, char **args)
{
    char *argv[48] = {"llamad"};
    int argc = 1;
    while (args[argc - 1]) {
        assert_true(argc < 47);
        argv[argc] = args[argc - 1];
        argc++;
    }
    err[0] = '\0';
    return llamad_config_load(c, argc, argv, err, sizeof err);
}

#define LOAD(c, ...) load_argv((c), (char *[]){__VA_ARGS__, NULL})

/* A temp file holding text; path receives its name (the caller unlinks it). */
static void write_temp(char path[64], const char *text)
{
    strcpy(path, "/tmp/llamad-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void assert_err_contains(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error '%s' does not contain '%s'", err, needle);
}

static void test_defaults(void **state)
{
    (void)state;
    struct llamad_config c;
    assert_int_equal(LOAD(&c, NULL), 0);
    assert_null(c.config_file);
    assert_null(c.model);
    assert_null(c.model_alias);
    assert_false(c.strict_model_name);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.ctx_size, 0);
    assert_int_equal(c.parallel, 4);
    assert_int_equal(c.queue_length, 64);
    assert_int_equal(c.step_tokens, 1024);
    assert_int_equal(c.pass_tokens, 128);
    assert_int_equal(c.kv_cache_mb, 0);
    assert_int_equal(c.kv_cache_type, LLAMAD_TYPE_F16);
    assert_int_equal(c.max_body_size, 1024 * 1024);
    assert_int_equal(c.max_connections, 1024);
    assert_int_equal(c.max_connections_per_ip, 64);
    assert_true(c.request_timeout == 60.0);
    assert_int_equal(c.max_tokens, 0);
    assert_int_equal(c.n_api_keys, 0);
    assert_null(c.api_key_file);
    assert_null(c.chat_template);
    assert_true(c.drain_timeout == 30.0);
    assert_true(c.sse_keepalive == 2.0);
    assert_int_equal(c.log_level, LLAMAD_LOG_INFO);
    llamad_config_free(&c);
}

static void test_flag_forms(void **state)
{
    (void)state;
    struct llamad_config c;
    assert_int_equal(LOAD(&c, "-m", "a.gguf", "--model-alias", "tiny", "--host=0.0.0.0", "--port",
                          "0", "--threads=3", "--ctx-size", "512", "--parallel=8", "--queue-length",
                          "0", "--kv-cache-mb=96", "--max-body-size=4096", "--step-tokens", "64",
                          "--pass-tokens", "0", "--kv-cache-type", "q8_0", "--max-tokens", "100",
                          "--api-key", "k1", "--api-key=k2", "--chat-template", "chatml",
                          "--drain-timeout=2.5", "--log-level", "debug", "--strict-model-name"),
                     0);
    assert_string_equal(c.model, "a.gguf");
    assert_string_equal(c.model_alias, "tiny");
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.port, 0);
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.ctx_size, 512);
    assert_int_equal(c.parallel, 8);
    assert_int_equal(c.queue_length, 0);
    assert_int_equal(c.step_tokens, 64);
    assert_int_equal(c.pass_tokens, 0);
    assert_int_equal(c.kv_cache_type, LLAMAD_TYPE_Q8_0);
    assert_int_equal(c.kv_cache_mb, 96);
    assert_int_equal(c.max_body_size, 4096);
    assert_int_equal(c.max_tokens, 100);
    assert_int_equal(c.n_api_keys, 2);
    assert_string_equal(c.api_keys[0], "k1");
    assert_string_equal(c.api_keys[1], "k2");
    assert_string_equal(c.chat_template, "chatml");
    assert_true(c.drain_timeout == 2.5);
    assert_int_equal(c.log_level, LLAMAD_LOG_DEBUG);
    assert_true(c.strict_model_name);
    llamad_config_free(&c);

    assert_int_equal(LOAD(&c, "--model=b.gguf", "--model", "c.gguf", "--strict-model-name",
                          "--strict-model-name=false"),
                     0);
    assert_string_equal(c.model, "c.gguf"); /* the last one wins */
    assert_false(c.strict_model_name);
    llamad_config_free(&c);
}

static void test_connection_limits(void **state)
{
    (void)state;
    struct llamad_config c;
    char path[64];
    write_temp(path, "max_connections = 200\nmax_connections_per_ip = 0\nrequest_timeout = 5\n");
    assert_int_equal(LOAD(&c, "--config", path), 0);
    assert_int_equal(c.max_connections, 200);
    assert_int_equal(c.max_connections_per_ip, 0);
    assert_true(c.request_timeout == 5.0);
    llamad_config_free(&c);
    assert_int_equal(LOAD(&c, "--config", path, "--max-connections=3", "--max-connections-per-ip",
                          "2", "--request-timeout", "0.5"),
                     0);
    assert_int_equal(c.max_connections, 3);
    assert_int_equal(c.max_connections_per_ip, 2);
    assert_true(c.request_timeout == 0.5);
    llamad_config_free(&c);
    unlink(path);

    assert_int_equal(LOAD(&c, "--max-connections", "0"), 2);
    assert_err_contains("--max-connections");
    assert_int_equal(LOAD(&c, "--max-connections-per-ip", "-1"), 2);
    assert_err_contains("--max-connections-per-ip");
    assert_int_equal(LOAD(&c, "--request-timeout", "3601"), 2);
    assert_err_contains("--request-timeout");
}

static void test_max_body_size_suffixes(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        size_t bytes;
    } cases[] = {{"--max-body-size=1024", 1024},
                 {"--max-body-size=64K", 64 << 10},
                 {"--max-body-size=8m", 8 << 20},
                 {"--max-body-size=1G", 1 << 30}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct llamad_config c;
        assert_int_equal(LOAD(&c, (char *)cases[i].arg), 0);
        assert_int_equal(c.max_body_size, cases[i].bytes);
        llamad_config_free(&c);
    }
}

static void test_conf_file_parsing(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, "# llamad test conf\n"
                     "\n"
                     "   model = /models/x.gguf   \n"
                     "port=9000 # trailing comment\n"
                     "\tthreads\t=\t2\t\n"
                     "model_alias = \"name with # and \\\"quotes\\\" and \\\\\"  # comment\n"
                     "api_key = first\n"
                     "api_key = sec#ond\n"
                     "api_key = \"  spaced  \"\n"
                     "strict_model_name = true\n"
                     "max_body_size = 2M\r\n"
                     "log_level = warn\n"
                     "drain_timeout = 0\n"
                     "sse_keepalive = 0.5\n"
                     "kv_cache_type = f32\n"
                     "  # indented comment\n");
    struct llamad_config c;
    int rc = LOAD(&c, "--config", path);
    unlink(path);
    assert_int_equal(rc, 0);
    assert_string_equal(c.config_file, path);
    assert_string_equal(c.model, "/models/x.gguf");
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.threads, 2);
    assert_string_equal(c.model_alias, "name with # and \"quotes\" and \\");
    assert_int_equal(c.n_api_keys, 3);
    assert_string_equal(c.api_keys[0], "first");
    assert_string_equal(c.api_keys[1], "sec#ond");
    assert_string_equal(c.api_keys[2], "  spaced  ");
    assert_true(c.strict_model_name);
    assert_int_equal(c.max_body_size, 2 << 20);
    assert_int_equal(c.log_level, LLAMAD_LOG_WARN);
    assert_true(c.drain_timeout == 0.0);
    assert_true(c.sse_keepalive == 0.5);
    assert_int_equal(c.kv_cache_type, LLAMAD_TYPE_F32);
    llamad_config_free(&c);
}

static void test_flags_override_file(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, "port = 9000\nhost = 10.0.0.1\nlog_level = error\napi_key = filekey\n");
    struct llamad_config c;
    /* --config comes last, yet the flags before it still win. */
    int rc = LOAD(&c, "--port", "7000", "--api-key", "flagkey", "--config", path);
    assert_int_equal(rc, 0);
    assert_int_equal(c.port, 7000);
    assert_string_equal(c.host, "10.0.0.1");
    assert_int_equal(c.log_level, LLAMAD_LOG_ERROR);
    assert_int_equal(c.n_api_keys, 2); /* keys from both places are accepted */
    assert_string_equal(c.api_keys[0], "filekey");
    assert_string_equal(c.api_keys[1], "flagkey");
    llamad_config_free(&c);

    char arg[80];
    snprintf(arg, sizeof arg, "--config=%s", path);
    rc = LOAD(&c, arg, "--log-level=debug");
    unlink(path);
    assert_int_equal(rc, 0);
    assert_string_equal(c.config_file, path);
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.log_level, LLAMAD_LOG_DEBUG);
    llamad_config_free(&c);
}

static void test_unknown_key_names_file_and_line(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, "port = 1\n# comment\n\nbogus_key = 3\n");
    struct llamad_config c;
    int rc = LOAD(&c, "--config", path);
    assert_int_equal(rc, 2);
    char where[80];
    snprintf(where, sizeof where, "%s:4:", path);
    assert_err_contains(where);
    assert_err_contains("bogus_key");
    llamad_config_free(&c); /* harmless after a failed load */

    /* Keys spell flags with '_'; the dashed form and flag-only names are unknown. */
    const char *bad[] = {"max-body-size = 2048\n", "config = /x\n", "help = true\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(path);
        write_temp(path, bad[i]);
        assert_int_equal(LOAD(&c, "--config", path), 2);
        assert_err_contains(":1: unknown key");
    }
    unlink(path);
}

static void test_unknown_flag(void **state)
{
    (void)state;
    struct llamad_config c;
    assert_int_equal(LOAD(&c, "--port", "1", "--bogus=3"), 2);
    assert_err_contains("--bogus");
    assert_int_equal(LOAD(&c, "--max_body_size", "4096"), 2);
    assert_err_contains("--max_body_size");
    assert_int_equal(LOAD(&c, "stray"), 2);
    assert_err_contains("stray");
    assert_int_equal(LOAD(&c, "--port"), 2);
    assert_err_contains("--port needs a value");
    assert_int_equal(LOAD(&c, "-m"), 2);
    assert_err_contains("-m needs a value");
}

/* Values each option refuses, as flags; the environment is held to the same. */
static const char *const bad_cases[][2] = {
    {"--port=65536", "--port"},
    {"--port=-1", "--port"},
    {"--port=80x", "--port"},
    {"--port=", "--port"},
    {"--threads=1025", "--threads"},
    {"--ctx-size=-1", "--ctx-size"},
    {"--parallel=0", "--parallel"},
    {"--parallel=257", "--parallel"},
    {"--queue-length=65537", "--queue-length"},
    {"--step-tokens=0", "--step-tokens"},
    {"--step-tokens=4097", "--step-tokens"},
    {"--pass-tokens=-1", "--pass-tokens"},
    {"--pass-tokens=4097", "--pass-tokens"},
    {"--kv-cache-mb=-1", "--kv-cache-mb"},
    {"--kv-cache-mb=1048577", "--kv-cache-mb"},
    {"--max-body-size=1023", "--max-body-size"},
    {"--max-body-size=2G", "--max-body-size"},
    {"--max-body-size=1048577K", "--max-body-size"},
    {"--max-body-size=10T", "--max-body-size"},
    {"--max-tokens=-5", "--max-tokens"},
    {"--drain-timeout=3601", "--drain-timeout"},
    {"--drain-timeout=nan", "--drain-timeout"},
    {"--drain-timeout=-1", "--drain-timeout"},
    {"--log-level=verbose", "--log-level"},
    {"--kv-cache-type=q4_0", "--kv-cache-type"},
    {"--strict-model-name=maybe", "--strict-model-name"},
    {"--port=99999999999999999999", "--port"},
};

static void test_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        struct llamad_config c;
        assert_int_equal(LOAD(&c, (char *)bad_cases[i][0]), 2);
        assert_err_contains(bad_cases[i][1]);
        assert_err_contains("invalid value");
    }
    /* Boundaries are accepted. */
    struct llamad_config c;
    assert_int_equal(LOAD(&c, "--port=65535", "--threads=1024", "--parallel=256",
                          "--queue-length=65536", "--drain-timeout=3600"),
                     0);
    llamad_config_free(&c);
}

/* --- the environment ------------------------------------------------------ */

static const char *const env_vars[] = {
    "LLAMAD_CONFIG",
    "LLAMAD_MODEL",
    "LLAMAD_PORT",
    "LLAMAD_HOST",
    "LLAMAD_PARALLEL",
    "LLAMAD_MAX_BODY_SIZE",
    "LLAMAD_LOG_LEVEL",
    "LLAMAD_API_KEY",
    "LLAMAD_ALLOWED_ORIGINS",
    "LLAMAD_KV_CACHE_TYPE",
    "LLAMAD_STRICT_MODEL_NAME",
    "LLAMAD_DRAIN_TIMEOUT",
    "LLAMAD_BOGUS",
    "LLAMAD_HELP",
    "LLAMAD_VERSION",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
}

/* The variable of a flag's option: --max-body-size -> LLAMAD_MAX_BODY_SIZE. */
static void flag_to_env(const char *flag, char *name, size_t size)
{
    size_t n = (size_t)snprintf(name, size, "LLAMAD_%s", flag + 2);
    for (size_t i = 0; i < n && i < size; i++)
        name[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
}

static void test_env_sets_every_kind(void **state)
{
    (void)state;
    clear_env();
    setenv("LLAMAD_MODEL", "/models/other.gguf", 1);
    setenv("LLAMAD_PORT", "9100", 1);
    setenv("LLAMAD_HOST", "0.0.0.0", 1);
    setenv("LLAMAD_MAX_BODY_SIZE", "2M", 1);
    setenv("LLAMAD_STRICT_MODEL_NAME", "true", 1);
    setenv("LLAMAD_KV_CACHE_TYPE", "f32", 1);
    setenv("LLAMAD_LOG_LEVEL", "debug", 1);
    setenv("LLAMAD_DRAIN_TIMEOUT", "2.5", 1);
    setenv("LLAMAD_API_KEY", "envkey", 1);
    setenv("LLAMAD_ALLOWED_ORIGINS", "https://a.example, http://b.example:81", 1);
    /* Other LLAMAD_ names (LLAMAD_CPU, the tests' own) are none of the daemon's
     * business, and --help and --version have no variable. */
    setenv("LLAMAD_BOGUS", "1", 1);
    setenv("LLAMAD_HELP", "true", 1);
    setenv("LLAMAD_VERSION", "true", 1);
    struct llamad_config c;
    assert_int_equal(LOAD(&c, NULL), 0);
    clear_env();
    assert_string_equal(c.model, "/models/other.gguf");
    assert_int_equal(c.port, 9100);
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.max_body_size, 2 * 1024 * 1024);
    assert_true(c.strict_model_name);
    assert_int_equal(c.kv_cache_type, LLAMAD_TYPE_F32);
    assert_int_equal(c.log_level, LLAMAD_LOG_DEBUG);
    assert_true(c.drain_timeout == 2.5);
    assert_int_equal(c.n_api_keys, 1);
    assert_string_equal(c.api_keys[0], "envkey");
    assert_int_equal(c.n_allowed_origins, 2);
    assert_string_equal(c.allowed_origins[1], "http://b.example:81");
    assert_int_equal(c.parallel, 4); /* untouched: the default */
    llamad_config_free(&c);
}

/* Flags override the environment, which overrides the conf file, which
 * overrides the defaults; keys add up from all three. */
static void test_env_precedence(void **state)
{
    (void)state;
    clear_env();
    char path[64];
    write_temp(path, "port = 9000\nhost = 10.0.0.1\nparallel = 2\nlog_level = error\n"
                     "api_key = filekey\n");
    setenv("LLAMAD_PORT", "9100", 1);
    setenv("LLAMAD_PARALLEL", "3", 1);
    setenv("LLAMAD_API_KEY", "envkey", 1);
    struct llamad_config c;
    int rc = LOAD(&c, "--parallel", "5", "--api-key", "flagkey", "--config", path);
    assert_int_equal(rc, 0);
    assert_string_equal(c.host, "10.0.0.1"); /* the file's */
    assert_int_equal(c.log_level, LLAMAD_LOG_ERROR);
    assert_int_equal(c.port, 9100);  /* the environment's over the file's */
    assert_int_equal(c.parallel, 5); /* the flag's over both */
    assert_int_equal(c.queue_length, 64);
    assert_int_equal(c.n_api_keys, 3);
    assert_string_equal(c.api_keys[0], "filekey");
    assert_string_equal(c.api_keys[1], "envkey");
    assert_string_equal(c.api_keys[2], "flagkey");
    llamad_config_free(&c);

    /* LLAMAD_CONFIG names the file when no --config does. */
    clear_env();
    setenv("LLAMAD_CONFIG", path, 1);
    assert_int_equal(LOAD(&c, NULL), 0);
    assert_string_equal(c.config_file, path);
    assert_int_equal(c.port, 9000);
    llamad_config_free(&c);

    /* --config wins over it: a missing file named in the environment is not read. */
    char other[64];
    write_temp(other, "port = 9200\n");
    setenv("LLAMAD_CONFIG", "/nonexistent/llamad.conf", 1);
    assert_int_equal(LOAD(&c, "--config", other), 0);
    assert_string_equal(c.config_file, other);
    assert_int_equal(c.port, 9200);
    llamad_config_free(&c);
    unlink(other);

    assert_int_equal(LOAD(&c, NULL), 2);
    assert_err_contains("/nonexistent/llamad.conf");
    setenv("LLAMAD_CONFIG", "", 1);
    assert_int_equal(LOAD(&c, NULL), 2);
    assert_err_contains("LLAMAD_CONFIG");

    /* SIGHUP: the file's level does not override the environment's. */
    clear_env();
    setenv("LLAMAD_LOG_LEVEL", "warn", 1);
    assert_int_equal(LOAD(&c, "--config", path), 0);
    assert_int_equal(c.log_level, LLAMAD_LOG_WARN);
    assert_int_equal(llamad_config_reload_log_level(&c, err, sizeof err), 0);
    assert_int_equal(c.log_level, LLAMAD_LOG_WARN);
    clear_env();
    assert_int_equal(llamad_config_reload_log_level(&c, err, sizeof err), 0);
    assert_int_equal(c.log_level, LLAMAD_LOG_ERROR);
    llamad_config_free(&c);
    unlink(path);
}

/* Every value a flag refuses, its variable refuses with the same words, naming
 * the variable. */
static void test_env_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        clear_env();
        struct llamad_config c;
        assert_int_equal(LOAD(&c, (char *)bad_cases[i][0]), 2);
        char flag_err[sizeof err];
        strcpy(flag_err, err);

        const char *value = strchr(bad_cases[i][0], '=') + 1;
        char name[64];
        flag_to_env(bad_cases[i][1], name, sizeof name);
        setenv(name, value, 1);
        int rc = LOAD(&c, NULL);
        unsetenv(name);
        assert_int_equal(rc, 2);
        assert_err_contains(name);
        assert_err_contains("invalid value");
        /* The same explanation: the text after "for <flag>" and "for <VAR>". */
        const char *flag_why = strstr(flag_err, bad_cases[i][1]) + strlen(bad_cases[i][1]);
        const char *env_why = strstr(err, name) + strlen(name);
        assert_string_equal(env_why, flag_why);
    }
    /* A flag given as well does not excuse a bad variable. */
    setenv("LLAMAD_PORT", "http", 1);
    struct llamad_config c;
    assert_int_equal(LOAD(&c, "--port", "9000"), 2);
    assert_err_contains("LLAMAD_PORT");
    clear_env();
}

static void test_bad_value_in_file(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, "parallel = 4\nqueue_length = lots\n");
    struct llamad_config c;
    assert_int_equal(LOAD(&c, "--config", path), 2);
    char where[80];
    snprintf(where, sizeof where, "%s:2:", path);
    assert_err_contains(where);
    assert_err_contains("queue_length");
    unlink(path);
}

static void test_conf_syntax_errors(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"port 8080\n", "expected key = value"},
        {"= 3\n", "missing key"},
        {"model = \"open\n", "missing closing quote"},
        {"model = \"a\\nb\"\n", "unknown escape"},
        {"model = \"a\" b\n", "after the closing quote"},
        {"model =\n", "empty"},
        {"model = # nothing\n", "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[64];
        write_temp(path, cases[i][0]);
        struct llamad_config c;
        assert_int_equal(LOAD(&c, "--config", path), 2);
        assert_err_contains(":1: ");
        assert_err_contains(cases[i][1]);
        unlink(path);
    }
}

static void test_missing_conf_file(void **state)
{
    (void)state;
    struct llamad_config c;
    assert_int_equal(LOAD(&c, "--config", "/tmp/llamad-test-config-does-not-exist"), 2);
    assert_err_contains("/tmp/llamad-test-config-does-not-exist");
}

static void test_api_key_file(void **state)
{
    (void)state;
    char keys[64], conf[64];
    write_temp(keys, "# operators\n  alpha-key-1  \n\n\t# old\nbeta key 2\r\n");
    char text[128];
    snprintf(text, sizeof text, "api_key_file = %s\napi_key = conf-key\n", keys);
    write_temp(conf, text);
    struct llamad_config c;
    int rc = LOAD(&c, "--config", conf, "--api-key", "flag-key");
    unlink(conf);
    unlink(keys);
    assert_int_equal(rc, 0);
    assert_string_equal(c.api_key_file, keys);
    assert_int_equal(c.n_api_keys, 4);
    assert_string_equal(c.api_keys[0], "conf-key");
    assert_string_equal(c.api_keys[1], "flag-key");
    assert_string_equal(c.api_keys[2], "alpha-key-1");
    assert_string_equal(c.api_keys[3], "beta key 2");
    llamad_config_free(&c);

    assert_int_equal(LOAD(&c, "--api-key", "k", "--api-key-file", keys), 2);
    assert_err_contains(keys);
}

static void test_reload_log_level(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, "port = 9000\nlog_level = warn\n");
    struct llamad_config c;
    assert_int_equal(LOAD(&c, "--config", path), 0);
    assert_int_equal(c.log_level, LLAMAD_LOG_WARN);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("port = not-reread\nlog_level = \"debug\" # louder\n", f);
    fclose(f);
    assert_int_equal(llamad_config_reload_log_level(&c, err, sizeof err), 0);
    assert_int_equal(c.log_level, LLAMAD_LOG_DEBUG);
    assert_int_equal(c.port, 9000);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("log_level = chatty\n", f);
    fclose(f);
    assert_true(llamad_config_reload_log_level(&c, err, sizeof err) < 0);
    assert_err_contains(":1:");
    assert_int_equal(c.log_level, LLAMAD_LOG_DEBUG); /* unchanged */

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("# no level here\n", f);
    fclose(f);
    assert_int_equal(llamad_config_reload_log_level(&c, err, sizeof err), 0);
    assert_int_equal(c.log_level, LLAMAD_LOG_DEBUG);

    unlink(path);
    assert_true(llamad_config_reload_log_level(&c, err, sizeof err) < 0);
    assert_err_contains(path);
    llamad_config_free(&c);

    /* Without a conf file there is nothing to re-read. */
    assert_int_equal(LOAD(&c, "--log-level", "error"), 0);
    assert_int_equal(llamad_config_reload_log_level(&c, err, sizeof err), 0);
    assert_int_equal(c.log_level, LLAMAD_LOG_ERROR);
    llamad_config_free(&c);
}

/* Runs a load with stdout sent to a temp file; returns what was printed (malloc'd). */
static char *load_capturing_stdout(struct llamad_config *c, char *arg, int *rc)
{
    char path[64];
    write_temp(path, "");
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_non_null(freopen(path, "w", stdout));
    *rc = LOAD(c, arg);
    fflush(stdout);
    assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
    close(saved);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = calloc(1, 8192);
    assert_non_null(text);
    size_t n = fread(text, 1, 8191, f);
    text[n] = '\0';
    fclose(f);
    unlink(path);
    return text;
}

static void test_help(void **state)
{
    (void)state;
    static const char *const flags[] = {"--config FILE",
                                        "-m, --model PATH",
                                        "--model-alias",
                                        "--strict-model-name",
                                        "--host ADDR",
                                        "--port N",
                                        "--threads",
                                        "--ctx-size",
                                        "--parallel",
                                        "--queue-length",
                                        "--step-tokens N",
                                        "--pass-tokens N",
                                        "--kv-cache-mb MB",
                                        "--max-body-size",
                                        "--max-tokens",
                                        "--api-key KEY",
                                        "--api-key-file",
                                        "--chat-template",
                                        "--drain-timeout",
                                        "--log-level",
                                        "-h, --help",
                                        "--version",
                                        "(default: 8080)",
                                        "(default: 127.0.0.1)",
                                        "(default: info)",
                                        "(default: 1M)",
                                        "(default: 30)",
                                        "(default: 4)",
                                        "(default: 64)",
                                        "(default: false)",
                                        "--max-connections N",
                                        "--max-connections-per-ip N",
                                        "--request-timeout SECONDS",
                                        "(default: 1024)",
                                        "(default: 60)"};
    struct llamad_config c;
    int rc;
    char *text = load_capturing_stdout(&c, "--help", &rc);
    assert_int_equal(rc, -1);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(text, flags[i]))
            fail_msg("usage lacks '%s':\n%s", flags[i], text);
    free(text);

    text = load_capturing_stdout(&c, "-h", &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(text, "usage: llamad"));
    free(text);

    text = load_capturing_stdout(&c, "--version", &rc);
    assert_int_equal(rc, -1);
    assert_string_equal(text, "llamad 0.1.0\n");
    free(text);
}

static void test_log_level_name(void **state)
{
    (void)state;
    assert_string_equal(llamad_log_level_name(LLAMAD_LOG_ERROR), "error");
    assert_string_equal(llamad_log_level_name(LLAMAD_LOG_WARN), "warn");
    assert_string_equal(llamad_log_level_name(LLAMAD_LOG_INFO), "info");
    assert_string_equal(llamad_log_level_name(LLAMAD_LOG_DEBUG), "debug");
}

/* allowed_origins: a list, from lines and flags alike, each origin checked;
 * kv_share_across_keys: off unless asked for. */
static void test_origins_and_key_sharing(void **state)
{
    (void)state;
    struct llamad_config c;
    assert_int_equal(LOAD(&c, NULL), 0);
    assert_int_equal(c.n_allowed_origins, 0);
    assert_false(c.kv_share_across_keys);
    llamad_config_free(&c);

    char path[64];
    write_temp(path, "allowed_origins = https://app.example, http://localhost:3000\n"
                     "kv_share_across_keys = true\n");
    int rc = LOAD(&c, "--config", path, "--allowed-origins", "http://[::1]:5000");
    unlink(path);
    assert_int_equal(rc, 0);
    assert_true(c.kv_share_across_keys);
    assert_int_equal(c.n_allowed_origins, 3);
    assert_string_equal(c.allowed_origins[0], "https://app.example");
    assert_string_equal(c.allowed_origins[1], "http://localhost:3000");
    assert_string_equal(c.allowed_origins[2], "http://[::1]:5000");
    llamad_config_free(&c);

    assert_int_equal(LOAD(&c, "--allowed-origins", "https://a.example,https://b.example/"), 2);
    assert_err_contains("'https://b.example/' is not an origin");
    assert_int_equal(LOAD(&c, "--allowed-origins", "*"), 2);
    assert_err_contains("'*' is not an origin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flag_forms),
        cmocka_unit_test(test_max_body_size_suffixes),
        cmocka_unit_test(test_connection_limits),
        cmocka_unit_test(test_conf_file_parsing),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_unknown_key_names_file_and_line),
        cmocka_unit_test(test_unknown_flag),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_env_sets_every_kind),
        cmocka_unit_test(test_env_precedence),
        cmocka_unit_test(test_env_bad_values),
        cmocka_unit_test(test_bad_value_in_file),
        cmocka_unit_test(test_conf_syntax_errors),
        cmocka_unit_test(test_missing_conf_file),
        cmocka_unit_test(test_api_key_file),
        cmocka_unit_test(test_reload_log_level),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_log_level_name),
        cmocka_unit_test(test_origins_and_key_sharing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
