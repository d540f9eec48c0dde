/* Daemon configuration: built-in defaults, then the conf file, then the
 * environment, then command-line flags (flags win). Every conf key is its long
 * flag with '_' for '-' (--max-body-size <-> max_body_size), and its variable is
 * LLAMAD_ and the key in capitals (LLAMAD_MAX_BODY_SIZE); LLAMAD_CONFIG names
 * the conf file when no --config does. Variables of other names are not read.
 * conf/llamad.conf documents each key. */
#ifndef LLAMAD_CONFIG_H
#define LLAMAD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/base/log.h"

struct llamad_config {
    char *config_file;          /* --config FILE (NULL: none) */
    char *model;                /* --model/-m PATH (NULL: the bundled model) */
    char *model_alias;          /* --model-alias NAME: the id responses carry (NULL: file name) */
    bool strict_model_name;     /* --strict-model-name: other names get 404 model_not_found */
    char *host;                 /* --host ADDR, default "127.0.0.1" */
    int port;                   /* --port N, default 8080 (0: any free port, printed at start) */
    int threads;                /* --threads N, default 0 = all cores */
    int ctx_size;               /* --ctx-size N, default 0 = the model's context_length */
    int parallel;               /* --parallel N: sequences decoded together, default 4 */
    int queue_length;           /* --queue-length N: requests waiting beyond those, default 64 */
    int step_tokens;            /* --step-tokens N: most tokens in one step, default 1024
                                 * (raised to --parallel when below it) */
    int pass_tokens;            /* --pass-tokens N: a step's passes while sequences decode,
                                 * default 128 (0: one pass) */
    uint32_t kv_cache_type;     /* --kv-cache-type f16|q8_0|f32: LLAMAD_TYPE_F16 (default) */
    int kv_cache_mb;            /* --kv-cache-mb N: KV cache memory in MiB, default 0 = sized
                                 * from --parallel, the context and the RAM (main.c) */
    size_t max_body_size;       /* --max-body-size BYTES, default 1 MiB */
    int max_connections;        /* --max-connections N: open connections in all, default 1024 */
    int max_connections_per_ip; /* --max-connections-per-ip N: from one client address,
                                 * default 64 (0: no limit of its own) */
    double request_timeout;     /* --request-timeout SECONDS: to send a whole request, default 60 */
    int max_tokens;  /* --max-tokens N: cap on tokens generated per request, default 0 = context */
    char **api_keys; /* --api-key KEY (repeatable) */
    size_t n_api_keys;
    char *api_key_file;        /* --api-key-file FILE: one key per line, '#' comments */
    bool kv_share_across_keys; /* --kv-share-across-keys: prefixes cached for one key serve
                                * requests of the others, default false */
    char **allowed_origins;    /* --allowed-origins A,B (repeatable): CORS for these pages */
    size_t n_allowed_origins;
    char *chat_template;  /* --chat-template NAME: overrides detection (NULL: detect) */
    double sse_keepalive; /* --sse-keepalive SECONDS: comment on a silent stream, default 2 */
    double
        drain_timeout; /* --drain-timeout SECONDS: SIGTERM grace for running requests, default 30 */
    enum llamad_log_level log_level; /* --log-level error|warn|info|debug, default info */
};

/* Defaults, then --config FILE if given among the args (else $LLAMAD_CONFIG),
 * then the LLAMAD_<KEY> variables, then the args.
 * Returns 0; -1 after --help/--version was printed (exit 0); or a positive exit
 * status (2) with err filled for a bad flag, value, key or file. Keys from
 * --api-key-file are appended to api_keys. */
int llamad_config_load(struct llamad_config *c, int argc, char **argv, char *err, size_t errsz);
void llamad_config_free(struct llamad_config *c);

/* Reads just the log level from the conf file again (SIGHUP); with
 * LLAMAD_LOG_LEVEL set, the level stays (the environment outranks the file). */
int llamad_config_reload_log_level(struct llamad_config *c, char *err, size_t errsz);

#endif
