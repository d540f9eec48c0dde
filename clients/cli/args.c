/* llamad-cli's options, parsed with getopt_long. */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char usage[] =
    "usage: llamad-cli [OPTIONS] [PROMPT]\n"
    "\n"
    "Asks a running llamad: with a PROMPT (or -p) once, otherwise a chat on stdin,\n"
    "one message a line, its history and a session kept so the daemon reuses its\n"
    "cache. Tokens are printed as they arrive; Ctrl-C stops an answer, a second\n"
    "Ctrl-C or end of input leaves. A line of timings goes to stderr.\n"
    "\n"
    "  -p, --prompt TEXT       the prompt (same as PROMPT)\n"
    "  -u, --url URL           the daemon (default http://127.0.0.1:8080)\n"
    "  -k, --api-key KEY       its API key (default $LLAMAD_API_KEY)\n"
    "  -s, --system TEXT       a system message first\n"
    "      --session ID        the chat's session id (default: a new one)\n"
    "  -t, --temperature X     sampling temperature\n"
    "      --top-p X           nucleus sampling mass\n"
    "      --top-k N           sample among the N likeliest tokens\n"
    "  -n, --max-tokens N      at most N tokens an answer\n"
    "      --seed N            the sampler's seed\n"
    "      --ignore-eos        go on past the end-of-sequence token\n"
    "  -h, --help              this text\n";

enum { OPT_SESSION = 256, OPT_TOP_P, OPT_TOP_K, OPT_SEED, OPT_IGNORE_EOS };

static const struct option options[] = {
    {"prompt", required_argument, NULL, 'p'},
    {"url", required_argument, NULL, 'u'},
    {"api-key", required_argument, NULL, 'k'},
    {"system", required_argument, NULL, 's'},
    {"session", required_argument, NULL, OPT_SESSION},
    {"temperature", required_argument, NULL, 't'},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"max-tokens", required_argument, NULL, 'n'},
    {"seed", required_argument, NULL, OPT_SEED},
    {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int bad(const char *name, const char *value)
{
    fprintf(stderr, "llamad-cli: bad value for --%s: '%s'\n", name, value);
    return 2;
}

static int number(const char *name, const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return *s && !*end && !errno && isfinite(*out) ? 0 : bad(name, s);
}

static int integer(const char *name, const char *s, long long min, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return *s && !*end && !errno && *out >= min ? 0 : bad(name, s);
}

int cli_parse_args(int argc, char **argv, struct cli_args *a)
{
    *a = (struct cli_args){.url = "http://127.0.0.1:8080",
                           .api_key = getenv("LLAMAD_API_KEY"),
                           .temperature = NAN,
                           .top_p = NAN,
                           .top_k = -1,
                           .max_tokens = -1};
    long long n;
    int c, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "p:u:k:s:t:n:h", options, NULL)) != -1) {
        switch (c) {
        case 'p': a->prompt = optarg; break;
        case 'u': a->url = optarg; break;
        case 'k': a->api_key = optarg; break;
        case 's': a->system = optarg; break;
        case OPT_SESSION: a->session = optarg; break;
        case 't': rc = number("temperature", optarg, &a->temperature); break;
        case OPT_TOP_P: rc = number("top-p", optarg, &a->top_p); break;
        case OPT_TOP_K:
            rc = integer("top-k", optarg, 0, &n);
            a->top_k = (long)n;
            break;
        case 'n':
            rc = integer("max-tokens", optarg, 1, &n);
            a->max_tokens = (long)n;
            break;
        case OPT_SEED:
            rc = integer("seed", optarg, 0, &a->seed);
            a->has_seed = true;
            break;
        case OPT_IGNORE_EOS: a->ignore_eos = true; break;
        case 'h': fputs(usage, stdout); return -1;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (rc)
        return rc;
    if (optind < argc && a->prompt) {
        fprintf(stderr, "llamad-cli: a prompt both as -p and as an argument\n");
        return 2;
    }
    if (optind < argc)
        a->prompt = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "llamad-cli: one prompt only (quote it): '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}
