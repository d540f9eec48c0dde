/* llamad-bench: prompt processing, token generation and batched decode speeds of
 * a model, llama-bench style, set against two rooflines: the memory bandwidth
 * (decode reads every weight once per step) and the multiply-accumulate peak of
 * the instruction the model's matrices run on.
 *
 * Every test runs once untimed to warm up, then r timed runs; it reports the
 * median tokens/s of those runs ± their standard deviation. Each run starts on
 * fresh, empty KV sequences. Prompts and generations begin with BOS at position
 * 0 and go on with random tokens, as llama-bench's pp and tg do. With a depth d,
 * the generation tests first fill each sequence with d positions, untimed, and
 * then decode from position d: a server's decode steps, after a prompt. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bandwidth.h"
#include "compute_peak.h"
#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/base/options.h"
#include "llamad/base/paths.h"
#include "llamad/format/types.h"
#include "llamad/kernels/cpu.h"
#include "llamad/kernels/gemm_int8.h"
#include "llamad/kernels/threadpool.h"
#include "llamad/model/forward.h"
#include "llamad/model/kvcache.h"
#include "llamad/model/kvcache_type.h"
#include "llamad/model/model.h"
#include "llamad/tokenizer/tokenizer.h"
#include "tool_options.h"

#define MAX_BATCH_SIZES 16
#define MAX_TOKENS 65536
#define MAX_SEQS 1024
#define BANDWIDTH_PASSES 9
#define PEAK_PASSES 5
#define KV_BLOCK_TOKENS 16

struct options {
    const char *model;
    int32_t n_prompt;
    int32_t n_gen;
    int32_t depth;
    uint32_t kv_type;
    int32_t reps;
    int32_t n_threads;
    int32_t batch_sizes[MAX_BATCH_SIZES];
    int n_batch_sizes;
    bool json;
};

#define OFF(field) offsetof(struct options, field)

/* A comma-separated list of batch sizes, no empty items, each an integer in
 * opt's range. */
static int parse_batch_sizes(void *target, const struct llamad_option *opt, const char *value,
                             char *why, size_t whysz)
{
    struct options *o = target;
    struct llamad_option size = {.kind = LLAMAD_OPT_INT, .min = opt->min, .max = opt->max};
    char item[16];
    o->n_batch_sizes = 0;
    for (const char *p = value;; p++) {
        size_t len = strcspn(p, ",");
        if (o->n_batch_sizes == MAX_BATCH_SIZES || len == 0 || len >= sizeof item)
            return llamad_fail(why, whysz, LLAMAD_ERANGE,
                               "expected 1 to %d comma-separated sizes in %lld..%lld",
                               MAX_BATCH_SIZES, opt->min, opt->max);
        memcpy(item, p, len);
        item[len] = '\0';
        size.offset = OFF(batch_sizes) + (size_t)o->n_batch_sizes * sizeof o->batch_sizes[0];
        int rc = llamad_option_store(target, &size, item, why, whysz);
        if (rc)
            return rc;
        o->n_batch_sizes++;
        p += len;
        if (!*p)
            return LLAMAD_OK;
    }
}

/* The table by hand: clang-format would put every field on a line of its own. */
/* clang-format off */
static const struct llamad_option option_list[] = {
    TOOL_OPTION_MODEL(model),
    {.name = "n-prompt", .short_name = 'p', .kind = LLAMAD_OPT_INT, .offset = OFF(n_prompt),
     .min = 0, .max = MAX_TOKENS, .metavar = "N",
     .help = "prompt tokens of the pp test; 0 skips it", .dflt = "512"},
    {.name = "n-gen", .short_name = 'n', .kind = LLAMAD_OPT_INT, .offset = OFF(n_gen), .min = 0,
     .max = MAX_TOKENS, .metavar = "N",
     .help = "tokens per sequence of the tg and batched tests; 0 skips them", .dflt = "128"},
    {.name = "depth", .short_name = 'd', .kind = LLAMAD_OPT_INT, .offset = OFF(depth), .min = 0,
     .max = MAX_TOKENS, .metavar = "N",
     .help = "positions already in each sequence's KV cache when the tg and batched tests "
             "start",
     .dflt = "0"},
    TOOL_OPTION_KV_CACHE_TYPE(kv_type),
    {.name = "repetitions", .short_name = 'r', .kind = LLAMAD_OPT_INT, .offset = OFF(reps),
     .min = 1, .max = 1000, .metavar = "N", .help = "timed runs per test, after one warm-up",
     .dflt = "5"},
    TOOL_OPTION_THREADS(n_threads),
    {.name = "batch-sizes", .short_name = 'b', .kind = LLAMAD_OPT_CUSTOM,
     .parse = parse_batch_sizes, .min = 1, .max = MAX_SEQS, .metavar = "LIST",
     .help = "sequences decoded together in the batched tests, comma-separated",
     .dflt = "4,8,16"},
    {.name = "json", .kind = LLAMAD_OPT_BOOL, .offset = OFF(json),
     .help = "one JSON object per test and line instead of a table"},
    LLAMAD_OPTION_HELP,
};
/* clang-format on */

static const struct llamad_option_table options_table = {
    .usage = "usage: llamad-bench [-m MODEL] [-p N] [-n N] [-d N] [--kv-cache-type T] [-r N]\n"
             "                    [-t N] [-b B,B,...] [--json]\n",
    .epilog = "Speeds are the median of the runs in tokens/s, ± their standard deviation.\n"
              "The roofline: tg is bound by reading every weight once per step from DRAM, and\n"
              "each token its own cached keys and values: at most bandwidth / (weight bytes per\n"
              "step / B + cache bytes per token) tokens/s, B the sequences sharing a step.\n"
              "Every test is also set against the multiply-accumulate peak of the instruction\n"
              "its matrices run on (int8 dot products, AMX tiles or float FMA), measured at\n"
              "start on the same threads: MACs per token (matrices and attention) x tokens/s.\n",
    .options = option_list,
    .n_options = sizeof option_list / sizeof option_list[0],
};

/* Prints the message and the usage to stderr; returns the exit status. */
__attribute__((format(printf, 2, 3))) static int usage_error(const struct options *o,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llamad-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\n");
    va_end(ap);
    llamad_options_usage(stderr, &options_table, o);
    return LLAMAD_EXIT_USAGE;
}

/* Returns 0, -1 after --help, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){.n_threads = llamad_default_threads()};
    char err[LLAMAD_ERR_MAX];
    int status = llamad_options_parse(&options_table, o, argc, argv, err, sizeof err);
    if (status > 0)
        return usage_error(o, "%s", err);
    if (status < 0)
        return status;
    if (o->n_prompt == 0 && o->n_gen == 0)
        return usage_error(o, "-p 0 and -n 0 leave nothing to measure");
    if (o->depth + o->n_gen > MAX_TOKENS)
        return usage_error(o, "-d and -n add up to more than %d positions", MAX_TOKENS);
    return 0;
}

static int32_t imax(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

/* A test: n_seqs sequences of n_tokens each. A prompt test feeds its tokens in one
 * forward pass, a decode test one token per sequence per pass, after `depth`. */
struct test {
    char name[40];
    bool prompt;
    int32_t n_seqs;
    int32_t n_tokens;
    int32_t depth;
};

struct result {
    double median; /* tokens/s */
    double stddev;
};

struct bench {
    const struct options *o;
    struct llamad_model *model;
    struct llamad_forward *fwd;
    struct llamad_kvcache *kv;
    struct llamad_batch_entry *batch;
    float *logits;
    int32_t *seqs;
    int32_t max_seqs;
    uint64_t rng;
    struct bandwidth bw;
    struct compute_peak peak;
    uint64_t step_bytes; /* weight bytes one forward pass reads */
    char types[64];      /* the matrices' tensor types */
};

static int32_t random_token(struct bench *b)
{
    /* xorshift64*: fixed seed, so every run of the tool feeds the same tokens */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return (int32_t)((b->rng * 2685821657736338717ULL >> 33) % (uint64_t)b->model->hp.n_vocab);
}

/* BOS at position 0 (a random token when the vocabulary has none). */
static int32_t token_at(struct bench *b, int32_t pos)
{
    int32_t bos = llamad_tokenizer_bos(b->model->tokenizer);
    return pos == 0 && bos >= 0 ? bos : random_token(b);
}

static void release_seqs(struct bench *b, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        llamad_kvcache_seq_release(b->kv, b->seqs[i]);
}

/* n new sequences with room for `len` positions each, outside the timed part. */
static int open_seqs(struct bench *b, int32_t n, int32_t len, char *err, size_t errsz)
{
    for (int32_t i = 0; i < n; i++) {
        int rc = llamad_kvcache_seq_new(b->kv, &b->seqs[i], err, errsz);
        if (rc) {
            release_seqs(b, i);
            return rc;
        }
        if ((rc = llamad_kvcache_seq_reserve(b->kv, b->seqs[i], len, err, errsz))) {
            release_seqs(b, i + 1);
            return rc;
        }
    }
    return LLAMAD_OK;
}

/* Positions 0..n-1 of sequence `seq` in one forward pass. */
static int run_prompt(struct bench *b, int32_t seq, int32_t n, double *seconds, char *err,
                      size_t errsz)
{
    for (int32_t i = 0; i < n; i++)
        b->batch[i] = (struct llamad_batch_entry){b->seqs[seq], i, token_at(b, i), i == n - 1};
    double t0 = llamad_now_seconds();
    int rc = llamad_forward(b->fwd, b->kv, b->batch, n, b->logits, err, errsz);
    *seconds = llamad_now_seconds() - t0;
    return rc;
}

/* n_steps decode steps of n_seqs sequences, from position `depth`, the positions
 * before it filled first (untimed). */
static int run_decode(struct bench *b, int32_t n_seqs, int32_t depth, int32_t n_steps,
                      double *seconds, char *err, size_t errsz)
{
    int rc = LLAMAD_OK;
    for (int32_t s = 0; s < n_seqs && depth > 0 && rc == LLAMAD_OK; s++)
        rc = run_prompt(b, s, depth, seconds, err, errsz);
    double t0 = llamad_now_seconds();
    for (int32_t pos = depth; pos < depth + n_steps && rc == LLAMAD_OK; pos++) {
        for (int32_t s = 0; s < n_seqs; s++)
            b->batch[s] = (struct llamad_batch_entry){b->seqs[s], pos, token_at(b, pos), true};
        rc = llamad_forward(b->fwd, b->kv, b->batch, n_seqs, b->logits, err, errsz);
    }
    *seconds = llamad_now_seconds() - t0;
    return rc;
}

/* One run of t on fresh sequences; n_tokens overrides t's length (for warm-ups). */
static int run_once(struct bench *b, const struct test *t, int32_t n_tokens, double *seconds,
                    char *err, size_t errsz)
{
    int rc = open_seqs(b, t->n_seqs, t->depth + n_tokens, err, errsz);
    if (rc)
        return rc;
    if (t->prompt)
        rc = run_prompt(b, 0, n_tokens, seconds, err, errsz);
    else
        rc = run_decode(b, t->n_seqs, t->depth, n_tokens, seconds, err, errsz);
    release_seqs(b, t->n_seqs);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct result summarize(double *tps, int n)
{
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < n; i++)
        mean += tps[i] / n;
    for (int i = 0; i < n; i++)
        var += (tps[i] - mean) * (tps[i] - mean);
    qsort(tps, (size_t)n, sizeof(double), cmp_double);
    struct result r;
    r.median = n % 2 ? tps[n / 2] : 0.5 * (tps[n / 2 - 1] + tps[n / 2]);
    r.stddev = n > 1 ? sqrt(var / (n - 1)) : 0.0;
    return r;
}

/* A warm-up like llama-bench's (the whole prompt, one decode step), then the runs. */
static int run_test(struct bench *b, const struct test *t, struct result *r, char *err,
                    size_t errsz)
{
    double *tps = calloc((size_t)b->o->reps, sizeof(double));
    if (!tps)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    double seconds;
    int rc = run_once(b, t, t->prompt ? t->n_tokens : 1, &seconds, err, errsz);
    for (int i = 0; i < b->o->reps && rc == LLAMAD_OK; i++)
        if ((rc = run_once(b, t, t->n_tokens, &seconds, err, errsz)) == LLAMAD_OK)
            tps[i] = (double)t->n_seqs * t->n_tokens / seconds;
    if (rc == LLAMAD_OK)
        *r = summarize(tps, b->o->reps);
    free(tps);
    return rc;
}

/* ---- the model's size and the bytes a decode step reads ---- */

static uint64_t matrix_bytes(const struct llamad_weight *w)
{
    return (uint64_t)w->rows * w->row_bytes;
}

#define LAYER_MATRICES 7

static void layer_matrices(const struct llamad_layer *L,
                           const struct llamad_weight *out[LAYER_MATRICES])
{
    out[0] = &L->wq;
    out[1] = &L->wk;
    out[2] = &L->wv;
    out[3] = &L->wo;
    out[4] = &L->w_gate;
    out[5] = &L->w_up;
    out[6] = &L->w_down;
}

/* Every matrix of every layer, the output matrix, one embedding row and the norms
 * (held as f32 after load). */
static uint64_t step_weight_bytes(const struct llamad_model *m)
{
    uint64_t norm = (uint64_t)m->hp.n_embd * sizeof(float);
    uint64_t total = m->tok_embd.row_bytes + matrix_bytes(&m->output) + norm;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const struct llamad_weight *w[LAYER_MATRICES];
        layer_matrices(&m->layers[il], w);
        for (int k = 0; k < LAYER_MATRICES; k++)
            total += matrix_bytes(w[k]);
        total += 2 * norm;
    }
    return total;
}

static void add_type(char *buf, size_t size, bool *seen, uint32_t type)
{
    if (type >= LLAMAD_TYPE_ID_LIMIT || seen[type])
        return;
    seen[type] = true;
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? "/" : "", llamad_type_name(type));
}

/* The distinct types of the layers' matrices, the output and the embeddings, in that
 * order: "Q8_0", or "Q4_0/Q6_K" for a mixed file. */
static void matrix_types(const struct llamad_model *m, char *buf, size_t size)
{
    bool seen[LLAMAD_TYPE_ID_LIMIT] = {false};
    buf[0] = '\0';
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const struct llamad_weight *w[LAYER_MATRICES];
        layer_matrices(&m->layers[il], w);
        for (int k = 0; k < LAYER_MATRICES; k++)
            add_type(buf, size, seen, w[k]->type);
    }
    add_type(buf, size, seen, m->output.type);
    add_type(buf, size, seen, m->tok_embd.type);
}

/* ---- output ---- */

static void format_scaled(char *buf, size_t size, double v, const char *const *units, double step)
{
    int u = 0;
    while (v >= step && units[u + 1]) {
        v /= step;
        u++;
    }
    snprintf(buf, size, "%.2f%s%s", v, units[u][0] ? " " : "", units[u]);
}

static void print_table_header(void)
{
    printf("| model | size | params | type | threads | test | t/s |\n"
           "| --- | ---: | ---: | --- | ---: | --- | ---: |\n");
    fflush(stdout);
}

static void print_table_row(const struct bench *b, const struct test *t, const struct result *r)
{
    static const char *const bytes_units[] = {"B", "KiB", "MiB", "GiB", "TiB", NULL};
    static const char *const count_units[] = {"", "K", "M", "B", "T", NULL};
    char size[32], params[32];
    format_scaled(size, sizeof size, (double)b->model->weight_bytes, bytes_units, 1024.0);
    format_scaled(params, sizeof params, (double)b->model->n_params, count_units, 1000.0);
    printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f |\n", b->model->name, size, params,
           b->types, b->o->n_threads, t->name, r->median, r->stddev);
    fflush(stdout);
}

/* Weights are read once per step, shared by the step's n_seqs tokens. */
static double weight_bytes_per_token(const struct bench *b, const struct test *t)
{
    return (double)b->step_bytes / t->n_seqs;
}

/* The positions a token of the test attends to, on average. */
static double positions_seen(const struct test *t)
{
    return t->depth + (t->n_tokens + 1) / 2.0;
}

/* Each token reads its own sequence's cached keys and values: every layer's
 * K and V rows of the positions it sees. At depth, with several sequences,
 * these outweigh the weights they share. */
static double kv_bytes_per_token(const struct bench *b, const struct test *t)
{
    const struct llamad_hparams *hp = &b->model->hp;
    uint64_t head_bytes = 0;
    if (!llamad_type_bytes(b->o->kv_type, (uint64_t)hp->head_dim, &head_bytes))
        return 0.0; /* not reached: the cache was made with this type */
    return positions_seen(t) * hp->n_layer * 2.0 * hp->n_head_kv * (double)head_bytes;
}

/* What a decoding token reads from memory: its share of the weights and its
 * sequence's cache. */
static double bytes_per_token(const struct bench *b, const struct test *t)
{
    return weight_bytes_per_token(b, t) + kv_bytes_per_token(b, t);
}

static double roofline_fraction(const struct bench *b, const struct test *t, const struct result *r)
{
    return r->median * bytes_per_token(b, t) / (b->bw.gbps * 1e9);
}

/* Multiply-accumulates per token: each matrix element once (the output matrix
 * only for the tokens whose logits are asked for: the last of a prompt, every
 * decoded one), and attention's two products (scores, weighted values) over the
 * positions each token sees, averaged over the test. */
static double macs_per_token(const struct bench *b, const struct test *t)
{
    const struct llamad_model *m = b->model;
    double layers = 0.0;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        const struct llamad_weight *w[LAYER_MATRICES];
        layer_matrices(&m->layers[il], w);
        for (int k = 0; k < LAYER_MATRICES; k++)
            layers += (double)w[k]->rows * (double)w[k]->cols;
    }
    double output = (double)m->output.rows * (double)m->output.cols;
    double attention =
        2.0 * m->hp.n_layer * (double)m->hp.n_head * (double)m->hp.head_dim * positions_seen(t);
    return layers + attention + (t->prompt ? output / t->n_tokens : output);
}

/* The peak of the instruction the test's matrices run on: the layers' matrix
 * type and the tokens of one forward pass choose the kernel. */
static const struct mac_peak *peak_for(const struct bench *b, const struct test *t)
{
    uint32_t type = b->model->layers[0].wq.type;
    if (type == LLAMAD_TYPE_F32 || type == LLAMAD_TYPE_F16 || type == LLAMAD_TYPE_BF16)
        return &b->peak.f32;
    const struct llamad_gemm_int8_kernels *k =
        llamad_gemm_int8_for(type, t->prompt ? t->n_tokens : t->n_seqs);
    return k && !strcmp(k->isa, "amx") ? &b->peak.amx : &b->peak.int8;
}

/* Achieved GMAC/s, and its fraction of the peak (0 when the set has no peak). */
static double achieved_gmacs(const struct bench *b, const struct test *t, const struct result *r)
{
    return r->median * macs_per_token(b, t) * 1e-9;
}

static double compute_fraction(const struct bench *b, const struct test *t, const struct result *r)
{
    const struct mac_peak *p = peak_for(b, t);
    return p->isa ? achieved_gmacs(b, t, r) / p->gmacs : 0.0;
}

static double rounded(double v, double scale)
{
    return round(v * scale) / scale;
}

static int print_json(const struct bench *b, const struct test *t, const struct result *r)
{
    char kv_type[LLAMAD_TYPE_NAME_MAX];
    llamad_type_lower_name(b->o->kv_type, kv_type);
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "test", t->name) &&
              cJSON_AddStringToObject(o, "model", b->model->name) &&
              cJSON_AddNumberToObject(o, "tokens_per_second", rounded(r->median, 1e3)) &&
              cJSON_AddNumberToObject(o, "stddev", rounded(r->stddev, 1e3)) &&
              cJSON_AddNumberToObject(o, "runs", b->o->reps) &&
              cJSON_AddNumberToObject(o, "threads", b->o->n_threads) &&
              cJSON_AddNumberToObject(o, "depth", t->depth) &&
              cJSON_AddStringToObject(o, "kv_cache_type", kv_type) &&
              cJSON_AddNumberToObject(o, "model_bytes", (double)b->model->weight_bytes) &&
              cJSON_AddNumberToObject(o, "macs_per_token", round(macs_per_token(b, t))) &&
              cJSON_AddNumberToObject(o, "gmacs", rounded(achieved_gmacs(b, t, r), 1e3));
    const struct mac_peak *peak = peak_for(b, t);
    if (ok && peak->isa)
        ok =
            cJSON_AddStringToObject(o, "peak_instruction", peak->isa) &&
            cJSON_AddNumberToObject(o, "peak_gmacs", rounded(peak->gmacs, 1e3)) &&
            cJSON_AddNumberToObject(o, "compute_fraction", rounded(compute_fraction(b, t, r), 1e4));
    if (ok && !t->prompt)
        ok = cJSON_AddNumberToObject(o, "weight_bytes_per_token",
                                     round(weight_bytes_per_token(b, t))) &&
             cJSON_AddNumberToObject(o, "kv_bytes_per_token", round(kv_bytes_per_token(b, t))) &&
             cJSON_AddNumberToObject(o, "bandwidth_gbps", rounded(b->bw.gbps, 1e3)) &&
             cJSON_AddNumberToObject(o, "roofline_fraction",
                                     rounded(roofline_fraction(b, t, r), 1e4));
    char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!line)
        return LLAMAD_ENOMEM;
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    return LLAMAD_OK;
}

static void print_peak(const struct mac_peak *p, const char *what, bool *first)
{
    if (!p->isa)
        return;
    printf("%s%s %s %.1f GMAC/s", *first ? "" : ", ", what, p->isa, p->gmacs);
    *first = false;
}

static void print_roofline_head(const struct bench *b)
{
    if (b->o->n_gen > 0) {
        printf("\nweights read per decode step: %.2f MB (%d layers x %d matrices, output, one "
               "embedding row, norms)\n",
               (double)b->step_bytes * 1e-6, b->model->hp.n_layer, LAYER_MATRICES);
        printf("DRAM read bandwidth: %.2f GB/s (%d threads, %s loop, %.2f GiB buffer, median of "
               "%d passes)\n",
               b->bw.gbps, b->o->n_threads, b->bw.isa, (double)b->bw.bytes / (1 << 30),
               b->bw.passes);
    } else {
        printf("\n");
    }
    bool first = true;
    printf("multiply-accumulate peaks (%d threads, median of %d passes): ", b->o->n_threads,
           PEAK_PASSES);
    print_peak(&b->peak.int8, "int8", &first);
    print_peak(&b->peak.amx, "AMX", &first);
    print_peak(&b->peak.f32, "f32", &first);
    printf("%s\n", first ? "none (scalar kernels)" : "");
}

static void print_roofline_line(const struct bench *b, const struct test *t, const struct result *r)
{
    printf("%s: %.2f t/s", t->name, r->median);
    if (!t->prompt) {
        double bound = b->bw.gbps * 1e9 / bytes_per_token(b, t);
        printf(" of a %.2f t/s bandwidth bound", bound);
        if (t->n_seqs > 1)
            printf(" (%d tokens per weight read)", t->n_seqs);
        printf(" = %.1f%%", 100.0 * roofline_fraction(b, t, r));
    }
    printf("; %.3f GMAC/token, %.1f GMAC/s", macs_per_token(b, t) * 1e-9, achieved_gmacs(b, t, r));
    const struct mac_peak *p = peak_for(b, t);
    if (p->isa)
        printf(" = %.1f%% of the %s peak", 100.0 * compute_fraction(b, t, r), p->isa);
    printf("\n");
}

/* ---- setup ---- */

static int32_t largest_batch(const struct options *o)
{
    int32_t m = 1;
    for (int i = 0; i < o->n_batch_sizes; i++)
        m = imax(m, o->batch_sizes[i]);
    return m;
}

/* The KV pool holds the largest test: the prompt, or the largest batch of
 * generations after their depth. */
static int open_bench(struct bench *b, char *err, size_t errsz)
{
    const struct options *o = b->o;
    const struct llamad_hparams *hp = &b->model->hp;
    int32_t bt = KV_BLOCK_TOKENS;
    b->max_seqs = o->n_gen > 0 ? largest_batch(o) : 1;
    int32_t gen_len = o->n_gen > 0 ? o->depth + o->n_gen : 0;
    int32_t n_ctx = imax(1, imax(o->n_prompt, gen_len));
    int32_t n_blocks = imax((o->n_prompt + bt - 1) / bt, b->max_seqs * ((gen_len + bt - 1) / bt));
    struct llamad_kvcache_params kp = {bt, n_blocks, b->max_seqs, n_ctx, o->kv_type, false};
    struct llamad_forward_params fp = {
        o->n_threads, imax(imax(o->n_prompt, o->n_gen > 0 ? o->depth : 0), b->max_seqs), n_ctx};
    int rc;
    if ((rc = llamad_kvcache_create(hp, &kp, &b->kv, err, errsz)) ||
        (rc = llamad_forward_create(b->model, &fp, &b->fwd, err, errsz)))
        return rc;
    b->batch = calloc((size_t)fp.max_batch, sizeof(*b->batch));
    b->logits = calloc((size_t)b->max_seqs * (size_t)hp->n_vocab, sizeof(float));
    b->seqs = calloc((size_t)b->max_seqs, sizeof(*b->seqs));
    if (!b->batch || !b->logits || !b->seqs)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    b->rng = 0x9e3779b97f4a7c15ULL;
    b->step_bytes = step_weight_bytes(b->model);
    matrix_types(b->model, b->types, sizeof b->types);
    return LLAMAD_OK;
}

static void close_bench(struct bench *b)
{
    free(b->seqs);
    free(b->logits);
    free(b->batch);
    llamad_forward_free(b->fwd);
    llamad_kvcache_free(b->kv);
    llamad_model_free(b->model);
}

/* pp, tg, then one batched test per batch size; " @ dN" names a depth, as
 * llama-bench does. */
static int list_tests(const struct options *o, struct test *tests)
{
    char at[16] = "";
    if (o->depth > 0)
        snprintf(at, sizeof at, " @ d%d", o->depth);
    int n = 0;
    if (o->n_prompt > 0) {
        tests[n] = (struct test){.prompt = true, .n_seqs = 1, .n_tokens = o->n_prompt};
        snprintf(tests[n++].name, sizeof tests->name, "pp%d", o->n_prompt);
    }
    if (o->n_gen > 0) {
        tests[n] = (struct test){.n_seqs = 1, .n_tokens = o->n_gen, .depth = o->depth};
        snprintf(tests[n++].name, sizeof tests->name, "tg%d%s", o->n_gen, at);
        for (int i = 0; i < o->n_batch_sizes; i++) {
            tests[n] =
                (struct test){.n_seqs = o->batch_sizes[i], .n_tokens = o->n_gen, .depth = o->depth};
            snprintf(tests[n++].name, sizeof tests->name, "tg%d_batch%d%s", o->n_gen,
                     o->batch_sizes[i], at);
        }
    }
    return n;
}

static int run_all(struct bench *b, char *err, size_t errsz)
{
    struct test tests[2 + MAX_BATCH_SIZES];
    struct result results[2 + MAX_BATCH_SIZES];
    int n = list_tests(b->o, tests), rc = LLAMAD_OK;
    if (!b->o->json)
        print_table_header();
    for (int i = 0; i < n && rc == LLAMAD_OK; i++) {
        if ((rc = run_test(b, &tests[i], &results[i], err, errsz)))
            break;
        if (b->o->json)
            rc = print_json(b, &tests[i], &results[i]);
        else
            print_table_row(b, &tests[i], &results[i]);
    }
    if (rc || b->o->json)
        return rc;
    print_roofline_head(b);
    for (int i = 0; i < n; i++)
        print_roofline_line(b, &tests[i], &results[i]);
    return LLAMAD_OK;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;

    char path[PATH_MAX], err[LLAMAD_ERR_MAX] = "";
    const char *model_path = o.model ? o.model : llamad_default_model_path(path, sizeof path);
    struct bench b = {.o = &o};
    if (llamad_cpu_check_env(err, sizeof err)) {
        fprintf(stderr, "llamad-bench: %s\n", err);
        return 2;
    }
    llamad_cpu_log();
    /* The bandwidth buffer is freed before the KV cache and activations exist; only
     * the generation tests are set against it. Every test is set against the
     * compute peaks. */
    int rc = llamad_model_load(model_path, &b.model, err, sizeof err);
    if (rc == LLAMAD_OK && o.n_gen > 0)
        rc = bandwidth_measure(o.n_threads, BANDWIDTH_PASSES, &b.bw, err, sizeof err);
    if (rc == LLAMAD_OK)
        rc = compute_peak_measure(o.n_threads, PEAK_PASSES, &b.peak, err, sizeof err);
    if (rc == LLAMAD_OK)
        rc = open_bench(&b, err, sizeof err);
    if (rc == LLAMAD_OK)
        rc = run_all(&b, err, sizeof err);
    close_bench(&b);
    if (rc) {
        fprintf(stderr, "llamad-bench: %s\n", err[0] ? err : llamad_status_name(rc));
        return 1;
    }
    return 0;
}
