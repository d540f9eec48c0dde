/* llamad-run: generate text from a prompt once, on the command line.
 *
 * Writes exactly the generated text to stdout as it is produced (the prompt is
 * not echoed) and one line of speeds to stderr. */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/base/options.h"
#include "llamad/base/paths.h"
#include "llamad/base/utf8.h"
#include "llamad/kernels/cpu.h"
#include "llamad/kernels/threadpool.h"
#include "llamad/model/forward.h"
#include "llamad/model/kvcache.h"
#include "llamad/model/kvcache_type.h"
#include "llamad/model/model.h"
#include "llamad/model/sampler.h"
#include "llamad/model/stop.h"
#include "llamad/tokenizer/tokenizer.h"
#include "tool_options.h"

#define MAX_STOPS 16

struct options {
    const char *model;
    const char *prompt;
    int32_t n_predict;
    int32_t n_threads;
    int32_t n_ctx;    /* 0: the model's training context */
    uint32_t kv_type; /* the KV cache's rows, F16 unless --kv-cache-type f32 */
    bool ignore_eos;
    const char *stops[MAX_STOPS];
    size_t n_stops;
    struct llamad_sampling sampling;
};

#define OFF(field) offsetof(struct options, field)

static int add_stop(void *target, const struct llamad_option *opt, const char *value, char *why,
                    size_t whysz)
{
    (void)opt;
    struct options *o = target;
    if (o->n_stops == MAX_STOPS)
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "at most %d --stop strings", MAX_STOPS);
    o->stops[o->n_stops++] = value;
    return LLAMAD_OK;
}

/* The sampling defaults are llamad_sampling_defaults()'s, shown from the struct. */
/* The table by hand: clang-format would put every field on a line of its own. */
/* clang-format off */
static const struct llamad_option option_list[] = {
    TOOL_OPTION_MODEL(model),
    {.name = "prompt", .short_name = 'p', .kind = LLAMAD_OPT_ARG, .offset = OFF(prompt),
     .metavar = "TEXT", .help = "prompt text (BOS is added as the vocabulary asks)"},
    {.name = "n-predict", .short_name = 'n', .kind = LLAMAD_OPT_INT, .offset = OFF(n_predict),
     .min = 0, .max = INT32_MAX, .metavar = "N", .help = "tokens to generate at most",
     .dflt = "128"},
    TOOL_OPTION_THREADS(n_threads),
    {.name = "ctx-size", .short_name = 'c', .kind = LLAMAD_OPT_INT, .offset = OFF(n_ctx),
     .min = 1, .max = INT32_MAX, .metavar = "N", .help = "context positions",
     .note = "the model's"},
    TOOL_OPTION_KV_CACHE_TYPE(kv_type),
    {.name = "temp", .kind = LLAMAD_OPT_FLOAT, .offset = OFF(sampling.temperature), .lo = 0,
     .hi = 100, .metavar = "T", .help = "temperature; 0 is greedy"},
    {.name = "top-k", .kind = LLAMAD_OPT_INT, .offset = OFF(sampling.top_k), .min = 0,
     .max = INT32_MAX, .metavar = "K", .help = "keep the K most likely tokens; 0 is off"},
    {.name = "top-p", .kind = LLAMAD_OPT_FLOAT, .offset = OFF(sampling.top_p), .lo = 0, .hi = 1,
     .metavar = "P", .help = "nucleus sampling; 1 is off"},
    {.name = "min-p", .kind = LLAMAD_OPT_FLOAT, .offset = OFF(sampling.min_p), .lo = 0, .hi = 1,
     .metavar = "P", .help = "drop tokens below P x the top probability"},
    {.name = "repeat-penalty", .kind = LLAMAD_OPT_FLOAT, .offset = OFF(sampling.repeat_penalty),
     .lo = 0.01, .hi = 100, .metavar = "R", .help = "penalise recent tokens; 1 is off"},
    {.name = "repeat-last-n", .kind = LLAMAD_OPT_INT, .offset = OFF(sampling.penalty_last_n),
     .min = -1, .max = INT32_MAX, .metavar = "N", .help = "window of the penalties; -1 is all"},
    {.name = "presence-penalty", .kind = LLAMAD_OPT_FLOAT,
     .offset = OFF(sampling.presence_penalty), .lo = -2, .hi = 2, .metavar = "X",
     .help = "subtracted once from every token in the window"},
    {.name = "frequency-penalty", .kind = LLAMAD_OPT_FLOAT,
     .offset = OFF(sampling.frequency_penalty), .lo = -2, .hi = 2, .metavar = "X",
     .help = "subtracted once per occurrence in the window"},
    {.name = "seed", .kind = LLAMAD_OPT_UINT64, .offset = OFF(sampling.seed), .metavar = "N",
     .help = "random seed", .note = "from the clock"},
    {.name = "stop", .kind = LLAMAD_OPT_CUSTOM, .parse = add_stop, .metavar = "TEXT",
     .help = "stop before this text (repeatable)"},
    {.name = "ignore-eos", .kind = LLAMAD_OPT_BOOL, .offset = OFF(ignore_eos),
     .help = "keep generating past end-of-sequence"},
    LLAMAD_OPTION_HELP,
};
/* clang-format on */

static const struct llamad_option_table options_table = {
    .usage = "usage: llamad-run [-m MODEL] -p PROMPT [-n N] [options]\n",
    .options = option_list,
    .n_options = sizeof option_list / sizeof option_list[0],
};

/* Returns 0, -1 after --help, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct options *o)
{
    llamad_sampling_defaults(&o->sampling);
    o->sampling.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    o->n_threads = llamad_default_threads();

    char err[LLAMAD_ERR_MAX];
    int status = llamad_options_parse(&options_table, o, argc, argv, err, sizeof err);
    if (status > 0) {
        fprintf(stderr, "llamad-run: %s\n", err);
        return status;
    }
    if (status == 0 && !o->prompt) {
        fprintf(stderr, "llamad-run: a prompt is needed: -p TEXT (see --help)\n");
        return LLAMAD_EXIT_USAGE;
    }
    return status;
}

struct session {
    struct llamad_model *model;
    struct llamad_forward *fwd;
    struct llamad_kvcache *kv;
    struct llamad_sampler *sampler;
    struct llamad_stop *stop;
    int32_t seq;
    int32_t n_ctx;
    float *logits;
    int32_t *prompt;
    int64_t n_prompt;
};

static int tokenize_prompt(struct session *s, const char *text, char *err, size_t errsz)
{
    const struct llamad_tokenizer *tok = s->model->tokenizer;
    size_t len = strlen(text);
    if (llamad_utf8_valid_prefix(text, len) != len)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "the prompt is not valid UTF-8");
    bool bos = llamad_tokenizer_add_bos(tok);
    int64_t n = llamad_tokenize(tok, text, len, bos, NULL, 0);
    if (n < 0)
        return llamad_fail(err, errsz, (int)n, "cannot tokenize the prompt");
    s->prompt = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!s->prompt)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    s->n_prompt = llamad_tokenize(tok, text, len, bos, s->prompt, (size_t)n);
    if (s->n_prompt == 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "the prompt is empty and the vocabulary adds no BOS to start from");
    return LLAMAD_OK;
}

static int open_session(struct session *s, const struct options *o, char *err, size_t errsz)
{
    const struct llamad_hparams *hp = &s->model->hp;
    s->n_ctx = o->n_ctx ? o->n_ctx : hp->n_ctx_train;
    int rc;
    if ((rc = tokenize_prompt(s, o->prompt, err, errsz)))
        return rc;
    if (s->n_prompt >= s->n_ctx)
        return llamad_fail(err, errsz, LLAMAD_ERANGE,
                           "the prompt has %lld tokens; the context holds %d",
                           (long long)s->n_prompt, s->n_ctx);
    struct llamad_kvcache_params kp = {16, 0, 1, s->n_ctx, o->kv_type, false};
    kp.n_blocks = (s->n_ctx + kp.block_tokens - 1) / kp.block_tokens;
    struct llamad_forward_params fp = {o->n_threads, 512, s->n_ctx};
    if ((rc = llamad_kvcache_create(hp, &kp, &s->kv, err, errsz)) ||
        (rc = llamad_kvcache_seq_new(s->kv, &s->seq, err, errsz)) ||
        (rc = llamad_forward_create(s->model, &fp, &s->fwd, err, errsz)))
        return rc;
    s->logits = malloc((size_t)hp->n_vocab * sizeof(float));
    s->sampler = llamad_sampler_create(&o->sampling, hp->n_vocab);
    size_t lens[MAX_STOPS];
    for (size_t i = 0; i < o->n_stops; i++)
        lens[i] = strlen(o->stops[i]);
    s->stop = llamad_stop_create(o->stops, lens, o->n_stops);
    if (!s->logits || !s->sampler || !s->stop)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    return LLAMAD_OK;
}

static void close_session(struct session *s)
{
    llamad_stop_free(s->stop);
    llamad_sampler_free(s->sampler);
    free(s->logits);
    free(s->prompt);
    llamad_forward_free(s->fwd);
    llamad_kvcache_free(s->kv);
    llamad_model_free(s->model);
}

/* Feeds tokens [0, n) starting at position pos; logits of the last one. */
static int feed(struct session *s, const int32_t *tokens, int32_t n, int32_t pos, char *err,
                size_t errsz)
{
    struct llamad_batch_entry *batch = malloc((size_t)n * sizeof(*batch));
    if (!batch)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++)
        batch[i] = (struct llamad_batch_entry){s->seq, pos + i, tokens[i], i == n - 1};
    int rc = llamad_kvcache_seq_reserve(s->kv, s->seq, pos + n, err, errsz);
    if (rc == LLAMAD_OK)
        rc = llamad_forward(s->fwd, s->kv, batch, n, s->logits, err, errsz);
    free(batch);
    return rc;
}

static int write_text(struct llamad_buf *text)
{
    if (text->len && fwrite(text->data, 1, text->len, stdout) != text->len)
        return LLAMAD_EIO;
    fflush(stdout);
    llamad_buf_clear(text);
    return LLAMAD_OK;
}

static int generate(struct session *s, const struct options *o, char *err, size_t errsz)
{
    const struct llamad_tokenizer *tok = s->model->tokenizer;
    double t0 = llamad_now_seconds();
    int rc = feed(s, s->prompt, (int32_t)s->n_prompt, 0, err, errsz);
    if (rc)
        return rc;
    double t1 = llamad_now_seconds();
    for (int64_t i = 0; i < s->n_prompt; i++)
        llamad_sampler_accept(s->sampler, s->prompt[i]);

    struct llamad_detok detok;
    llamad_detok_init(&detok, tok, s->prompt[s->n_prompt - 1]);
    struct llamad_buf piece = LLAMAD_BUF_INIT, text = LLAMAD_BUF_INIT;
    int32_t pos = (int32_t)s->n_prompt, n_gen = 0;
    bool stopped = false;
    while (rc == LLAMAD_OK && !stopped && n_gen < o->n_predict && pos < s->n_ctx) {
        int32_t token = llamad_sampler_sample(s->sampler, s->logits);
        if (token < 0 || (!o->ignore_eos && llamad_tokenizer_is_eog(tok, token)))
            break;
        llamad_sampler_accept(s->sampler, token);
        n_gen++;
        if ((rc = llamad_detok_push(&detok, token, &piece)) ||
            (rc = llamad_stop_push(s->stop, piece.data ? piece.data : "", piece.len, &text,
                                   &stopped)) ||
            (rc = write_text(&text)))
            break;
        llamad_buf_clear(&piece);
        if (!stopped && n_gen < o->n_predict && pos + 1 < s->n_ctx)
            rc = feed(s, &token, 1, pos, err, errsz);
        pos++;
    }
    if (rc == LLAMAD_OK && !stopped) {
        llamad_buf_clear(&piece);
        if ((rc = llamad_detok_flush(&detok, &piece)) == LLAMAD_OK &&
            (rc = llamad_stop_push(s->stop, piece.data ? piece.data : "", piece.len, &text,
                                   &stopped)) == LLAMAD_OK &&
            (rc = llamad_stop_finish(s->stop, &text)) == LLAMAD_OK)
            rc = write_text(&text);
    }
    llamad_buf_free(&piece);
    llamad_buf_free(&text);
    if (rc && err && !err[0])
        llamad_fail(err, errsz, rc, "%s while generating", llamad_status_name(rc));
    double t2 = llamad_now_seconds();
    fprintf(stderr,
            "\nllamad-run: prompt %lld tokens, %.1f tokens/s; generation %d tokens, %.1f "
            "tokens/s; %d threads\n",
            (long long)s->n_prompt, (double)s->n_prompt / (t1 - t0), n_gen,
            n_gen > 0 ? (double)n_gen / (t2 - t1) : 0.0, o->n_threads);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;

    char path[PATH_MAX], err[LLAMAD_ERR_MAX] = "";
    const char *model_path = o.model ? o.model : llamad_default_model_path(path, sizeof path);
    struct session s = {0};
    if (llamad_cpu_check_env(err, sizeof err)) {
        fprintf(stderr, "llamad-run: %s\n", err);
        return 2;
    }
    int rc = llamad_model_load(model_path, &s.model, err, sizeof err);
    if (rc == LLAMAD_OK)
        rc = open_session(&s, &o, err, sizeof err);
    if (rc == LLAMAD_OK)
        rc = generate(&s, &o, err, sizeof err);
    close_session(&s);
    if (rc) {
        fprintf(stderr, "llamad-run: %s\n", err[0] ? err : llamad_status_name(rc));
        return 1;
    }
    return 0;
}
