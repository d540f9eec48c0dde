/* llamad-cli's command line: where the daemon is, what to ask, how to sample. */
#ifndef LLAMAD_CLI_ARGS_H
#define LLAMAD_CLI_ARGS_H

#include <stdbool.h>

struct cli_args {
    const char *url;     /* the daemon's base URL, without /v1 */
    const char *api_key; /* NULL: none (--api-key, else $LLAMAD_API_KEY) */
    const char *prompt;  /* NULL: an interactive chat on stdin */
    const char *system;  /* NULL: no system message */
    const char *session; /* NULL: one made up for an interactive chat */
    /* Sampling; a field left unset is not sent, so the daemon's default holds. */
    double temperature, top_p; /* NAN: unset */
    long top_k, max_tokens;    /* -1: unset */
    long long seed;
    bool has_seed;
    bool ignore_eos;
};

/* Fills *a from argv. Returns 0 to go on, -1 after printing --help (leave with
 * status 0), or 2 after printing what is wrong (leave with it). */
int cli_parse_args(int argc, char **argv, struct cli_args *a);

#endif
