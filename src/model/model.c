#include "llamad/model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/bigalloc.h"
#include "llamad/base/error.h"
#include "llamad/grammar/grammar.h"
#include "llamad/kernels/matmul_dispatch.h"

/* Metadata limits: generous for real models, small enough that derived sizes
 * (n_embd * n_ctx, n_vocab * n_embd, ...) cannot overflow. */
#define MAX_LAYERS 1024
#define MAX_WIDTH (1 << 20)
#define MAX_HEADS 4096
#define MAX_CTX (1 << 24)

static int get_dim(const struct llamad_gguf *g, const char *key, int64_t max, int32_t *out,
                   char *err, size_t errsz)
{
    int64_t v;
    int rc = llamad_gguf_get_int(g, key, 1, max, &v, err, errsz);
    if (rc == LLAMAD_ENOTFOUND)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT, "model metadata lacks '%s'", key);
    if (rc)
        return rc;
    *out = (int32_t)v;
    return LLAMAD_OK;
}

/* An optional float key; *out keeps its default when the key is absent. */
static int get_opt_float(const struct llamad_gguf *g, const char *key, float *out, char *err,
                         size_t errsz)
{
    double v;
    int rc = llamad_gguf_get_float(g, key, &v, err, errsz);
    if (rc == LLAMAD_ENOTFOUND)
        return LLAMAD_OK;
    if (rc)
        return rc;
    *out = (float)v;
    return LLAMAD_OK;
}

static int check_architecture(const struct llamad_gguf *g, char *err, size_t errsz)
{
    struct llamad_gguf_str arch;
    int rc = llamad_gguf_get_str(g, "general.architecture", &arch, err, errsz);
    if (rc == LLAMAD_ENOTFOUND)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "model metadata lacks 'general.architecture'");
    if (rc)
        return rc;
    if (!llamad_gguf_str_eq(arch, "llama"))
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "architecture '%.*s' is not supported (llamad runs 'llama' models)",
                           (int)(arch.len > 64 ? 64 : arch.len), arch.data);
    return LLAMAD_OK;
}

static int read_hparams(const struct llamad_gguf *g, struct llamad_hparams *hp, char *err,
                        size_t errsz)
{
    int rc;
    if ((rc = get_dim(g, "llama.block_count", MAX_LAYERS, &hp->n_layer, err, errsz)) ||
        (rc = get_dim(g, "llama.embedding_length", MAX_WIDTH, &hp->n_embd, err, errsz)) ||
        (rc = get_dim(g, "llama.feed_forward_length", MAX_WIDTH, &hp->n_ff, err, errsz)) ||
        (rc = get_dim(g, "llama.attention.head_count", MAX_HEADS, &hp->n_head, err, errsz)) ||
        (rc = get_dim(g, "llama.context_length", MAX_CTX, &hp->n_ctx_train, err, errsz)))
        return rc;

    hp->n_head_kv = hp->n_head;
    if (llamad_gguf_find(g, "llama.attention.head_count_kv") &&
        (rc = get_dim(g, "llama.attention.head_count_kv", MAX_HEADS, &hp->n_head_kv, err, errsz)))
        return rc;
    if (hp->n_embd % hp->n_head != 0)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "embedding_length %d is not a multiple of head_count %d", hp->n_embd,
                           hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "head_count %d is not a multiple of head_count_kv %d", hp->n_head,
                           hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;

    hp->n_rot = hp->head_dim;
    if (llamad_gguf_find(g, "llama.rope.dimension_count") &&
        (rc = get_dim(g, "llama.rope.dimension_count", MAX_WIDTH, &hp->n_rot, err, errsz)))
        return rc;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "rope.dimension_count %d must be even and at most the head size %d",
                           hp->n_rot, hp->head_dim);

    hp->rope_base = 10000.0f;
    hp->rms_eps = 1e-5f;
    if ((rc = get_opt_float(g, "llama.rope.freq_base", &hp->rope_base, err, errsz)) ||
        (rc = get_opt_float(g, "llama.attention.layer_norm_rms_epsilon", &hp->rms_eps, err, errsz)))
        return rc;
    if (!(hp->rope_base > 0.0f) || !(hp->rms_eps > 0.0f) || !(hp->rms_eps < 1.0f))
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "rope.freq_base %g and layer_norm_rms_epsilon %g must be positive "
                           "(epsilon below 1)",
                           (double)hp->rope_base, (double)hp->rms_eps);
    return LLAMAD_OK;
}

static const struct llamad_gguf_tensor *find_tensor(const struct llamad_gguf *g, const char *name,
                                                    char *err, size_t errsz)
{
    const struct llamad_gguf_tensor *t = llamad_gguf_find_tensor(g, name);
    if (!t)
        llamad_fail(err, errsz, LLAMAD_EFORMAT, "model lacks tensor '%s'", name);
    return t;
}

static int bind_weight(const struct llamad_gguf_tensor *t, const char *name, int64_t rows,
                       int64_t cols, struct llamad_weight *w, char *err, size_t errsz)
{
    if (t->n_dims != 2 || (int64_t)t->ne[0] != cols || (int64_t)t->ne[1] != rows)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "tensor '%s' has shape [%llu, %llu] (%u dims), expected [%lld, %lld]",
                           name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                           t->n_dims, (long long)cols, (long long)rows);
    if (!llamad_type_computable(t->type))
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "tensor '%s' has type %s, which llamad does not support", name,
                           llamad_type_name(t->type));
    uint64_t row_bytes;
    if (!llamad_type_bytes(t->type, (uint64_t)cols, &row_bytes))
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "tensor '%s': row length %lld is not a whole number of %s blocks", name,
                           (long long)cols, llamad_type_name(t->type));
    snprintf(w->name, sizeof w->name, "%s", name);
    w->type = t->type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)row_bytes;
    w->data = t->data;
    w->kernels = llamad_kernels_for(t->type);
    w->act = llamad_act_kernels_for(t->type);
    return LLAMAD_OK;
}

static int load_weight(const struct llamad_gguf *g, const char *name, int64_t rows, int64_t cols,
                       struct llamad_weight *w, char *err, size_t errsz)
{
    const struct llamad_gguf_tensor *t = find_tensor(g, name, err, errsz);
    if (!t)
        return LLAMAD_EFORMAT;
    return bind_weight(t, name, rows, cols, w, err, errsz);
}

/* Norm vectors are small and read for every token: keep them as f32 copies. */
static int load_norm(const struct llamad_gguf *g, const char *name, int64_t n, float **out,
                     char *err, size_t errsz)
{
    const struct llamad_gguf_tensor *t = find_tensor(g, name, err, errsz);
    if (!t)
        return LLAMAD_EFORMAT;
    if (t->n_dims != 1 || (int64_t)t->ne[0] != n)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "tensor '%s' has %u dims and %llu elements, expected a vector of %lld",
                           name, t->n_dims, (unsigned long long)t->ne[0], (long long)n);
    if (!llamad_type_computable(t->type))
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "tensor '%s' has type %s, which llamad does not support", name,
                           llamad_type_name(t->type));
    float *v = malloc((size_t)n * sizeof(float));
    if (!v)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory for '%s'", name);
    llamad_dequantize_row_ref(t->type, t->data, v, n);
    *out = v;
    return LLAMAD_OK;
}

/* LLaMA-3.1's rope scaling, when the file has it: one positive finite factor per
 * rotated pair. */
static int load_rope_factors(struct llamad_model *m, char *err, size_t errsz)
{
    const char *name = "rope_freqs.weight";
    if (!llamad_gguf_find_tensor(m->gguf, name))
        return LLAMAD_OK;
    int rc = load_norm(m->gguf, name, m->hp.n_rot / 2, &m->rope_factors, err, errsz);
    for (int32_t i = 0; rc == LLAMAD_OK && i < m->hp.n_rot / 2; i++)
        if (!(m->rope_factors[i] > 0.0f) || !isfinite(m->rope_factors[i]))
            rc = llamad_fail(err, errsz, LLAMAD_EFORMAT,
                             "tensor '%s' value %d is %g, not a "
                             "positive number",
                             name, (int)i, (double)m->rope_factors[i]);
    return rc;
}

static int load_layer(const struct llamad_gguf *g, const struct llamad_hparams *hp, int il,
                      struct llamad_layer *L, char *err, size_t errsz)
{
    int64_t d = hp->n_embd, dkv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
    const struct {
        const char *suffix;
        struct llamad_weight *w;
        int64_t rows, cols;
    } mats[] = {
        {"attn_q", &L->wq, d, d},        {"attn_k", &L->wk, dkv, d},
        {"attn_v", &L->wv, dkv, d},      {"attn_output", &L->wo, d, d},
        {"ffn_gate", &L->w_gate, ff, d}, {"ffn_up", &L->w_up, ff, d},
        {"ffn_down", &L->w_down, d, ff},
    };
    char name[64];
    int rc;

    snprintf(name, sizeof name, "blk.%d.attn_norm.weight", il);
    if ((rc = load_norm(g, name, d, &L->attn_norm, err, errsz)))
        return rc;
    snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", il);
    if ((rc = load_norm(g, name, d, &L->ffn_norm, err, errsz)))
        return rc;
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", il, mats[i].suffix);
        if ((rc = load_weight(g, name, mats[i].rows, mats[i].cols, mats[i].w, err, errsz)))
            return rc;
    }
    return LLAMAD_OK;
}

/* The vocabulary size comes from the embedding matrix; the tokenizer must agree. */
static int load_embeddings(struct llamad_model *m, char *err, size_t errsz)
{
    const struct llamad_gguf_tensor *t = find_tensor(m->gguf, "token_embd.weight", err, errsz);
    if (!t)
        return LLAMAD_EFORMAT;
    if (t->n_dims != 2 || t->ne[1] == 0 || t->ne[1] > INT32_MAX)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "tensor 'token_embd.weight' must be a matrix of n_embd x n_vocab");
    m->hp.n_vocab = (int32_t)t->ne[1];
    if (llamad_tokenizer_n_vocab(m->tokenizer) != m->hp.n_vocab)
        return llamad_fail(err, errsz, LLAMAD_EFORMAT,
                           "the tokenizer has %d tokens but token_embd.weight has %d rows",
                           llamad_tokenizer_n_vocab(m->tokenizer), m->hp.n_vocab);
    int rc =
        bind_weight(t, "token_embd.weight", m->hp.n_vocab, m->hp.n_embd, &m->tok_embd, err, errsz);
    if (rc)
        return rc;
    const struct llamad_gguf_tensor *out = llamad_gguf_find_tensor(m->gguf, "output.weight");
    if (!out) {
        m->output = m->tok_embd; /* tied embeddings */
        return LLAMAD_OK;
    }
    return bind_weight(out, "output.weight", m->hp.n_vocab, m->hp.n_embd, &m->output, err, errsz);
}

enum { LAYER_MATRICES = 7 };

static void layer_matrices(struct llamad_layer *L, struct llamad_weight *out[LAYER_MATRICES])
{
    struct llamad_weight *mats[LAYER_MATRICES] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                                  &L->w_gate, &L->w_up, &L->w_down};
    memcpy(out, mats, sizeof mats);
}

/* The packed copy of w at `at` in the arena (when w is to be packed), and the
 * bytes of arena it takes. */
static size_t pack_weight(struct llamad_model *m, struct llamad_weight *w, uint8_t *at)
{
    const size_t bytes = (llamad_matmul_packed_bytes(w) + 63) / 64 * 64;
    if (bytes == 0 || !at)
        return bytes;
    llamad_matmul_pack(w, at);
    w->packed = at;
    if (w->data != m->tok_embd.data)
        llamad_gguf_release(m->gguf, w->data, (size_t)w->rows * w->row_bytes);
    return bytes;
}

/* Every matrix of the model packed at arena, one after another (NULL: nothing
 * written, only counted); the bytes they take. */
static size_t pack_all(struct llamad_model *m, uint8_t *arena)
{
    size_t used = pack_weight(m, &m->output, arena);
    for (int il = 0; il < m->hp.n_layer; il++) {
        struct llamad_weight *mats[LAYER_MATRICES];
        layer_matrices(&m->layers[il], mats);
        for (int i = 0; i < LAYER_MATRICES; i++)
            used += pack_weight(m, mats[i], arena ? arena + used : NULL);
    }
    return used;
}

/* Every matrix whose kernels read it packed gets its packed copy (matmul_dispatch.h), all in
 * one allocation, and the file's pages of it leave memory, the kernels reading
 * only the copy. The embedding rows are read by token, so a matrix tied to them
 * keeps its pages. */
static int pack_weights(struct llamad_model *m, char *err, size_t errsz)
{
    const size_t bytes = pack_all(m, NULL);
    if (bytes == 0)
        return LLAMAD_OK;
    m->packed = llamad_big_alloc(bytes);
    if (!m->packed)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM,
                           "out of memory for the packed weights (%zu bytes)", bytes);
    pack_all(m, m->packed);
    return LLAMAD_OK;
}

static int set_name(struct llamad_model *m, const char *path)
{
    struct llamad_gguf_str s;
    if (llamad_gguf_get_str(m->gguf, "general.name", &s, NULL, 0) == LLAMAD_OK && s.len > 0 &&
        s.len < 256) {
        m->name = strndup(s.data, (size_t)s.len);
    } else {
        const char *slash = strrchr(path, '/');
        m->name = strdup(slash ? slash + 1 : path);
    }
    return m->name ? LLAMAD_OK : LLAMAD_ENOMEM;
}

static void count_sizes(struct llamad_model *m)
{
    const struct llamad_gguf *g = m->gguf;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint64_t n = 1;
        for (uint32_t d = 0; d < g->tensors[i].n_dims; d++)
            n *= g->tensors[i].ne[d];
        m->n_params += n;
        m->weight_bytes += g->tensors[i].nbytes;
    }
}

/* Grammar-constrained requests' view of the vocabulary (llamad/grammar/grammar.h). */
static int load_grammar_vocab(struct llamad_model *m, char *err, size_t errsz)
{
    int rc = llamad_grammar_vocab_create(m->tokenizer, &m->grammar_vocab);
    if (rc)
        return llamad_fail(err, errsz, rc, "the vocabulary's grammar trie: %s",
                           llamad_status_name(rc));
    return 0;
}

int llamad_model_load(const char *path, struct llamad_model **out, char *err, size_t errsz)
{
    struct llamad_model *m = calloc(1, sizeof(*m));
    if (!m)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    int rc = llamad_gguf_open(path, &m->gguf, err, errsz);
    if (rc)
        goto fail;
    if ((rc = check_architecture(m->gguf, err, errsz)) ||
        (rc = read_hparams(m->gguf, &m->hp, err, errsz)) ||
        (rc = llamad_tokenizer_load(m->gguf, &m->tokenizer, err, errsz)) ||
        (rc = load_grammar_vocab(m, err, errsz)) || (rc = load_embeddings(m, err, errsz)) ||
        (rc =
             load_norm(m->gguf, "output_norm.weight", m->hp.n_embd, &m->output_norm, err, errsz)) ||
        (rc = load_rope_factors(m, err, errsz)))
        goto fail;

    m->layers = calloc((size_t)m->hp.n_layer, sizeof(*m->layers));
    if (!m->layers) {
        rc = llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
        goto fail;
    }
    for (int il = 0; il < m->hp.n_layer; il++)
        if ((rc = load_layer(m->gguf, &m->hp, il, &m->layers[il], err, errsz)))
            goto fail;
    if ((rc = pack_weights(m, err, errsz)))
        goto fail;
    if ((rc = set_name(m, path))) {
        llamad_fail(err, errsz, rc, "out of memory");
        goto fail;
    }
    count_sizes(m);
    *out = m;
    return LLAMAD_OK;
fail:
    llamad_model_free(m);
    return rc;
}

void llamad_model_free(struct llamad_model *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (int il = 0; il < m->hp.n_layer; il++) {
            free(m->layers[il].attn_norm);
            free(m->layers[il].ffn_norm);
        }
        free(m->layers);
    }
    free(m->packed);
    free(m->output_norm);
    free(m->rope_factors);
    free(m->name);
    llamad_grammar_vocab_free(m->grammar_vocab);
    llamad_tokenizer_free(m->tokenizer);
    llamad_gguf_close(m->gguf);
    free(m);
}
