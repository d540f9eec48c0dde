/* llamad-mkmodel: writes a LLaMA GGUF with random weights of a chosen shape and
 * tensor type, with the vocabulary of a donor GGUF. Benchmarks and tests use
 * these; their text output is meaningless. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/options.h"
#include "llamad/base/random.h"
#include "llamad/format/gguf.h"
#include "llamad/format/types.h"
#include "llamad/kernels/quant.h"
#include "llamad/kernels/threadpool.h"

struct shape {
    const char *name;
    int64_t dim, layers, heads, kv_heads, ff;
};

static const struct shape presets[] = {
    {"15M", 288, 6, 6, 6, 768},      {"110M", 768, 12, 12, 12, 2048},
    {"1.1B", 2048, 22, 32, 4, 5632}, {"7B", 4096, 32, 32, 32, 11008},
    {"8B", 4096, 32, 32, 8, 14336}, /* LLaMA-3-8B */
};

struct options {
    const char *out;
    const char *vocab;
    const struct shape *preset;
    int64_t dim, layers, heads, kv_heads, ff; /* overrides of the preset's; 0: none */
    struct shape shape;                       /* the preset with the overrides */
    uint32_t type;
    bool q4_k_m; /* --type Q4_K_M: Q4_K with llama-quantize's Q6_K tensors */
    int64_t ctx;
    int64_t seed;
    bool tied;
    bool rope_scaling;
};

/* Appends the i-th of n choices to a list "a, b or c" in buf. */
static void append_choice(char *buf, size_t size, size_t i, size_t n, const char *name)
{
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", name);
}

static int parse_preset(void *target, const struct llamad_option *opt, const char *value, char *why,
                        size_t whysz)
{
    (void)opt;
    struct options *o = target;
    const size_t n = sizeof presets / sizeof presets[0];
    for (size_t i = 0; i < n; i++)
        if (!strcmp(value, presets[i].name)) {
            o->preset = &presets[i];
            return LLAMAD_OK;
        }
    snprintf(why, whysz, "expected ");
    for (size_t i = 0; i < n; i++)
        append_choice(why, whysz, i, n, presets[i].name);
    return LLAMAD_ERANGE;
}

static int parse_type(void *target, const struct llamad_option *opt, const char *value, char *why,
                      size_t whysz)
{
    (void)opt;
    static const uint32_t writable[] = {LLAMAD_TYPE_F32,  LLAMAD_TYPE_F16,  LLAMAD_TYPE_BF16,
                                        LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_Q4_0, LLAMAD_TYPE_Q4_K,
                                        LLAMAD_TYPE_Q5_K, LLAMAD_TYPE_Q6_K};
    struct options *o = target;
    const size_t n = sizeof writable / sizeof writable[0];
    o->q4_k_m = !strcmp(value, "Q4_K_M");
    if (o->q4_k_m)
        value = "Q4_K";
    for (size_t i = 0; i < n; i++)
        if (!strcmp(value, llamad_type_name(writable[i]))) {
            o->type = writable[i];
            return LLAMAD_OK;
        }
    snprintf(why, whysz, "expected ");
    for (size_t i = 0; i < n; i++)
        append_choice(why, whysz, i, n + 1, llamad_type_name(writable[i]));
    append_choice(why, whysz, n, n + 1, "Q4_K_M");
    return LLAMAD_ERANGE;
}

#define OFF(field) offsetof(struct options, field)

/* The table by hand: clang-format would put every field on a line of its own. */
/* clang-format off */
static const struct llamad_option option_list[] = {
    {.name = "output", .short_name = 'o', .kind = LLAMAD_OPT_ARG, .offset = OFF(out),
     .metavar = "PATH", .help = "the GGUF file to write"},
    {.name = "vocab", .kind = LLAMAD_OPT_ARG, .offset = OFF(vocab), .metavar = "PATH",
     .help = "GGUF whose tokenizer.* metadata is copied (e.g. a vocab file)"},
    {.name = "preset", .kind = LLAMAD_OPT_CUSTOM, .parse = parse_preset, .metavar = "NAME",
     .help = "15M, 110M, 1.1B (TinyLlama shape), 7B or 8B (LLaMA-3-8B shape)", .dflt = "15M"},
    {.name = "type", .kind = LLAMAD_OPT_CUSTOM, .parse = parse_type, .metavar = "T",
     .help = "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K for the matrices (norms stay "
             "F32), or Q4_K_M (Q4_K with llama-quantize's Q6_K tensors). Q8_0 and Q4_0 need "
             "dim and ff multiples of 32, the K types multiples of 256",
     .dflt = "F32"},
    {.name = "dim", .kind = LLAMAD_OPT_INT64, .offset = OFF(dim), .min = 1, .max = 1 << 16,
     .metavar = "N", .help = "model width", .note = "the preset's"},
    {.name = "layers", .kind = LLAMAD_OPT_INT64, .offset = OFF(layers), .min = 1, .max = 1024,
     .metavar = "N", .help = "layers", .note = "the preset's"},
    {.name = "heads", .kind = LLAMAD_OPT_INT64, .offset = OFF(heads), .min = 1, .max = 1024,
     .metavar = "N", .help = "attention heads", .note = "the preset's"},
    {.name = "kv-heads", .kind = LLAMAD_OPT_INT64, .offset = OFF(kv_heads), .min = 1,
     .max = 1024, .metavar = "N", .help = "key/value heads", .note = "the preset's"},
    {.name = "ff", .kind = LLAMAD_OPT_INT64, .offset = OFF(ff), .min = 1, .max = 1 << 18,
     .metavar = "N", .help = "feed-forward width", .note = "the preset's"},
    {.name = "ctx", .kind = LLAMAD_OPT_INT64, .offset = OFF(ctx), .min = 1, .max = 1 << 24,
     .metavar = "N", .help = "context_length", .dflt = "2048"},
    {.name = "seed", .kind = LLAMAD_OPT_INT64, .offset = OFF(seed), .min = 0, .max = INT64_MAX,
     .metavar = "N", .help = "random seed", .dflt = "1"},
    {.name = "tied", .kind = LLAMAD_OPT_BOOL, .offset = OFF(tied),
     .help = "no output.weight: the output layer reuses token_embd"},
    {.name = "rope-scaling", .kind = LLAMAD_OPT_BOOL, .offset = OFF(rope_scaling),
     .help = "LLaMA-3.1's rope: freq_base 500000 and rope_freqs.weight (scale 8, low/high "
             "frequency factors 1 and 4, original context 8192)"},
    LLAMAD_OPTION_HELP,
};
/* clang-format on */

static const struct llamad_option_table options_table = {
    .usage = "usage: llamad-mkmodel -o OUT.gguf --vocab DONOR.gguf [--preset NAME] [options]\n",
    .options = option_list,
    .n_options = sizeof option_list / sizeof option_list[0],
};

/* The preset with the numbers given on the command line; a shape with any of
 * them is named "custom". */
static void resolve_shape(struct options *o)
{
    struct shape *s = &o->shape;
    *s = *o->preset;
    const struct {
        int64_t given, *field;
    } overrides[] = {{o->dim, &s->dim},
                     {o->layers, &s->layers},
                     {o->heads, &s->heads},
                     {o->kv_heads, &s->kv_heads},
                     {o->ff, &s->ff}};
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++)
        if (overrides[i].given) {
            *overrides[i].field = overrides[i].given;
            s->name = NULL;
        }
}

/* Prints the message; returns the exit status. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llamad-mkmodel: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return LLAMAD_EXIT_USAGE;
}

/* Returns 0, -1 after --help, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){0};
    char err[LLAMAD_ERR_MAX];
    int status = llamad_options_parse(&options_table, o, argc, argv, err, sizeof err);
    if (status > 0)
        return usage_error("%s", err);
    if (status < 0)
        return status;
    if (!o->out || !o->vocab)
        return usage_error("-o OUT and --vocab DONOR are required (see --help)");
    resolve_shape(o);
    const struct shape *s = &o->shape;
    if (s->dim % s->heads || s->heads % s->kv_heads || (s->dim / s->heads) % 2)
        return usage_error("dim must split into an even head size, and heads into kv-heads");
    /* Every matrix row is dim or ff long and is stored as whole blocks. */
    uint32_t block = llamad_type_info(o->type)->block_elems;
    if (s->dim % block || s->ff % block)
        return usage_error("%s needs dim (%lld) and ff (%lld) to be multiples of %u",
                           llamad_type_name(o->type), (long long)s->dim, (long long)s->ff, block);
    return 0;
}

/* One tensor's random content: normal values of a given spread (or a constant),
 * from a generator seeded per tensor so every file is reproducible; or, for a
 * vector, the given values. */
struct tensor_fill {
    uint32_t type;
    int64_t rows, cols;
    float stddev; /* 0: every value is `constant` */
    float constant;
    uint64_t seed;
    const float *values;            /* cols values of a one-row tensor, or NULL */
    struct llamad_threadpool *pool; /* fills the rows in parallel */
};

struct fill_job {
    const struct tensor_fill *t;
    uint8_t *dst;
    uint64_t row_bytes;
    int failed; /* a worker could not allocate its row buffer */
};

static void fill_rows(void *ctx, int ith, int nth)
{
    struct fill_job *job = ctx;
    const struct tensor_fill *t = job->t;
    int64_t begin, end;
    llamad_split_range(t->rows, ith, nth, &begin, &end);
    if (begin == end)
        return;
    float *row = malloc((size_t)t->cols * sizeof(float));
    if (!row) {
        __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    for (int64_t r = begin; r < end; r++) {
        /* The generator's state at row r is known without drawing the rows before
         * it, so any number of threads fill the rows and give the same file. */
        uint64_t state = t->seed + LLAMAD_SPLITMIX64_STEP * LLAMAD_RANDOM_NORMAL_DRAWS *
                                       (uint64_t)r * (uint64_t)t->cols;
        for (int64_t c = 0; c < t->cols; c++)
            row[c] = t->values       ? t->values[c]
                     : t->stddev > 0 ? llamad_random_normal(&state) * t->stddev
                                     : t->constant;
        llamad_quantize_row_ref(t->type, row, job->dst + (uint64_t)r * job->row_bytes, t->cols);
    }
    free(row);
}

static int fill_tensor(void *ctx, void *dst, uint64_t nbytes)
{
    const struct tensor_fill *t = ctx;
    struct fill_job job = {t, dst, 0, 0};
    if (!llamad_type_bytes(t->type, (uint64_t)t->cols, &job.row_bytes) ||
        job.row_bytes * (uint64_t)t->rows != nbytes)
        return LLAMAD_EINVAL;
    llamad_threadpool_run(t->pool, fill_rows, &job);
    return job.failed ? LLAMAD_ENOMEM : LLAMAD_OK;
}

struct model_writer {
    struct llamad_gguf_writer *w;
    struct tensor_fill *fills; /* one per tensor, alive until the file is written */
    size_t n_fills;
    uint64_t seed;
    float *rope_factors; /* --rope-scaling: head_dim / 2 values */
    struct llamad_threadpool *pool;
};

static int add_tensor(struct model_writer *mw, const char *name, uint32_t type, int64_t rows,
                      int64_t cols, float stddev, float constant)
{
    struct tensor_fill *t = &mw->fills[mw->n_fills];
    *t = (struct tensor_fill){
        type, rows, cols, stddev, constant, mw->seed * 1000003 + mw->n_fills, NULL, mw->pool};
    mw->n_fills++;
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    return llamad_gguf_writer_add_tensor_lazy(mw->w, name, type, rows == 1 ? 1 : 2, ne, fill_tensor,
                                              t);
}

static int copy_tokenizer(struct llamad_gguf_writer *w, const char *donor_path, int64_t *n_vocab,
                          char *err, size_t errsz)
{
    struct llamad_gguf *donor;
    int rc = llamad_gguf_open(donor_path, &donor, err, errsz);
    if (rc)
        return rc;
    const struct llamad_gguf_value *tokens;
    rc = llamad_gguf_get_array(donor, "tokenizer.ggml.tokens", LLAMAD_GGUF_STRING, &tokens, err,
                               errsz);
    for (uint64_t i = 0; rc == LLAMAD_OK && i < donor->n_kv; i++) {
        const struct llamad_gguf_kv *kv = &donor->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.data, "tokenizer.", 10) != 0)
            continue;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255),
                 kv->key.data);
        rc = llamad_gguf_writer_add_value(w, key, &kv->value);
    }
    if (rc == LLAMAD_OK)
        *n_vocab = (int64_t)tokens->arr.count;
    llamad_gguf_close(donor);
    return rc;
}

static float rope_base(const struct options *o)
{
    return o->rope_scaling ? 500000.0f : 10000.0f;
}

/* LLaMA-3.1's rope_freqs.weight, as its converters write it: pairs whose
 * wavelength is under original_context / 4 keep their frequency (factor 1), those
 * over original_context / 1 are slowed 8 times, and those between blend the two. */
static void llama31_rope_factors(float base, int64_t n_rot, float *factors)
{
    const double scale = 8.0, low = 1.0, high = 4.0, original_context = 8192.0;
    for (int64_t i = 0; i < n_rot / 2; i++) {
        const double wavelength = 2.0 * M_PI / pow(base, -2.0 * (double)i / (double)n_rot);
        if (wavelength < original_context / high) {
            factors[i] = 1.0f;
        } else if (wavelength > original_context / low) {
            factors[i] = (float)scale;
        } else {
            const double smooth = (original_context / wavelength - low) / (high - low);
            factors[i] = (float)(1.0 / ((1.0 - smooth) / scale + smooth));
        }
    }
}

static int add_metadata(struct llamad_gguf_writer *w, const struct options *o, int64_t n_vocab)
{
    const struct shape *s = &o->shape;
    char name[96];
    snprintf(name, sizeof name, "llamad-synthetic-%s-%s", s->name ? s->name : "custom",
             o->q4_k_m ? "Q4_K_M" : llamad_type_name(o->type));
    int rc;
    if ((rc = llamad_gguf_writer_add_str(w, "general.architecture", "llama")) ||
        (rc = llamad_gguf_writer_add_str(w, "general.name", name)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.vocab_size", (uint32_t)n_vocab)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.context_length", (uint32_t)o->ctx)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)s->dim)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.block_count", (uint32_t)s->layers)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)s->ff)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)s->heads)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.attention.head_count_kv",
                                         (uint32_t)s->kv_heads)) ||
        (rc = llamad_gguf_writer_add_u32(w, "llama.rope.dimension_count",
                                         (uint32_t)(s->dim / s->heads))) ||
        (rc = llamad_gguf_writer_add_f32(w, "llama.rope.freq_base", rope_base(o))) ||
        (rc = llamad_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f)))
        return rc;
    return LLAMAD_OK;
}

/* The type of a layer's matrix: --type's, except in a Q4_K_M file, where
 * llama-quantize gives Q6_K to attn_v and ffn_down in the first and last eighth
 * of the layers and every third layer between. */
static uint32_t matrix_type(const struct options *o, const char *suffix, int64_t layer)
{
    const int64_t n = o->shape.layers;
    const bool more_bits = layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2;
    if (o->q4_k_m && more_bits && (!strcmp(suffix, "attn_v") || !strcmp(suffix, "ffn_down")))
        return LLAMAD_TYPE_Q6_K;
    return o->type;
}

static int add_tensors(struct model_writer *mw, const struct options *o, int64_t n_vocab)
{
    const struct shape *s = &o->shape;
    const int64_t kv_dim = s->dim / s->heads * s->kv_heads;
    const float spread = 0.02f;
    char name[64];
    int rc;
    if ((rc = add_tensor(mw, "token_embd.weight", o->type, n_vocab, s->dim, spread, 0)) ||
        (rc = add_tensor(mw, "output_norm.weight", LLAMAD_TYPE_F32, 1, s->dim, 0, 1.0f)))
        return rc;
    /* Q4_K_M keeps the output layer in Q6_K */
    const uint32_t output_type = o->q4_k_m ? LLAMAD_TYPE_Q6_K : o->type;
    if (!o->tied && (rc = add_tensor(mw, "output.weight", output_type, n_vocab, s->dim, spread, 0)))
        return rc;
    if (o->rope_scaling) {
        const int64_t n_rot = s->dim / s->heads;
        llama31_rope_factors(rope_base(o), n_rot, mw->rope_factors);
        if ((rc = add_tensor(mw, "rope_freqs.weight", LLAMAD_TYPE_F32, 1, n_rot / 2, 0, 0)))
            return rc;
        mw->fills[mw->n_fills - 1].values = mw->rope_factors;
    }
    const struct {
        const char *suffix;
        int64_t rows, cols;
    } mats[] = {{"attn_q", s->dim, s->dim},  {"attn_k", kv_dim, s->dim},
                {"attn_v", kv_dim, s->dim},  {"attn_output", s->dim, s->dim},
                {"ffn_gate", s->ff, s->dim}, {"ffn_up", s->ff, s->dim},
                {"ffn_down", s->dim, s->ff}};
    for (int64_t l = 0; l < s->layers; l++) {
        snprintf(name, sizeof name, "blk.%lld.attn_norm.weight", (long long)l);
        if ((rc = add_tensor(mw, name, LLAMAD_TYPE_F32, 1, s->dim, 0, 1.0f)))
            return rc;
        snprintf(name, sizeof name, "blk.%lld.ffn_norm.weight", (long long)l);
        if ((rc = add_tensor(mw, name, LLAMAD_TYPE_F32, 1, s->dim, 0, 1.0f)))
            return rc;
        for (size_t m = 0; m < sizeof mats / sizeof mats[0]; m++) {
            snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, mats[m].suffix);
            if ((rc = add_tensor(mw, name, matrix_type(o, mats[m].suffix, l), mats[m].rows,
                                 mats[m].cols, spread, 0)))
                return rc;
        }
    }
    return LLAMAD_OK;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;

    char err[LLAMAD_ERR_MAX] = "";
    struct model_writer mw = {0};
    mw.seed = (uint64_t)o.seed;
    mw.w = llamad_gguf_writer_new();
    mw.fills = calloc((size_t)(4 + o.shape.layers * 9), sizeof(*mw.fills));
    mw.rope_factors = calloc((size_t)(o.shape.dim / o.shape.heads), sizeof(float));
    int64_t n_vocab = 0;
    int rc = (!mw.w || !mw.fills || !mw.rope_factors) ? LLAMAD_ENOMEM : LLAMAD_OK;
    if (rc == LLAMAD_OK)
        rc = llamad_threadpool_create(llamad_default_threads(), &mw.pool, err, sizeof err);
    if (rc == LLAMAD_OK)
        rc = copy_tokenizer(mw.w, o.vocab, &n_vocab, err, sizeof err);
    if (rc == LLAMAD_OK && (rc = add_metadata(mw.w, &o, n_vocab)) == LLAMAD_OK &&
        (rc = add_tensors(&mw, &o, n_vocab)) == LLAMAD_OK)
        rc = llamad_gguf_writer_write_file(mw.w, o.out, err, sizeof err);
    llamad_gguf_writer_free(mw.w);
    free(mw.fills);
    free(mw.rope_factors);
    if (mw.pool)
        llamad_threadpool_free(mw.pool);
    if (rc) {
        fprintf(stderr, "llamad-mkmodel: %s\n", err[0] ? err : llamad_status_name(rc));
        return 1;
    }
    fprintf(stderr, "llamad-mkmodel: wrote %s (%lld layers, dim %lld, %s)\n", o.out,
            (long long)o.shape.layers, (long long)o.shape.dim, llamad_type_name(o.type));
    return 0;
}
