/* Loading a model: hyper-parameters and tensors bound from a real file, tied
 * embeddings, and a clear refusal for every kind of bad or unsupported model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/format/gguf.h"
#include "llamad/kernels/quant.h"
#include "llamad/model/model.h"
#include "testutil.h"

static void test_bundled_model_hparams(void **state)
{
    (void)state;
    struct llamad_model *m = test_load_bundled_model();
    const struct llamad_hparams *hp = &m->hp;
    assert_int_equal(hp->n_vocab, 512);
    assert_int_equal(hp->n_embd, 64);
    assert_int_equal(hp->n_layer, 5);
    assert_int_equal(hp->n_head, 8);
    assert_int_equal(hp->n_head_kv, 4);
    assert_int_equal(hp->head_dim, 8);
    assert_int_equal(hp->n_ff, 172);
    assert_int_equal(hp->n_ctx_train, 2048);
    assert_int_equal(hp->n_rot, 8);
    assert_float_equal(hp->rope_base, 10000.0f, 0.0);
    assert_float_equal(hp->rms_eps, 1e-5f, 1e-9);
    assert_ptr_not_equal(m->output.data, m->tok_embd.data); /* this file has output.weight */
    assert_int_equal(m->layers[4].w_down.rows, 64);
    assert_int_equal(m->layers[4].w_down.cols, 172);
    assert_string_equal(m->layers[4].w_down.name, "blk.4.ffn_down.weight");
    llamad_model_free(m);
}

/* What to break in a small model built for one test. */
struct variant {
    const char *arch;        /* general.architecture */
    const char *skip_tensor; /* leave this tensor out */
    const char *skip_key;    /* leave this metadata key out */
    uint32_t matrix_type;    /* type of blk.0.attn_q */
    int64_t q_rows;          /* rows of blk.0.attn_q */
    uint32_t heads;          /* attention.head_count */
    bool block_count_as_string;
    int64_t vocab_rows;   /* rows of token_embd */
    int64_t rope_factors; /* values of rope_freqs.weight (0: no such tensor) */
    float rope_factor;    /* each of them */
};

static const struct variant good = {"llama", NULL, NULL, LLAMAD_TYPE_F32, 64, 4, false, 512, 0, 0};

enum { DIM = 64, FF = 96, KV_DIM = 32 };

static void add_matrix(struct llamad_gguf_writer *w, const char *name, uint32_t type, int64_t rows,
                       int64_t cols)
{
    uint64_t bytes;
    assert_true(llamad_type_bytes(type, (uint64_t)(rows * cols), &bytes));
    uint8_t *data = calloc(1, (size_t)bytes);
    if (type == LLAMAD_TYPE_F32)
        for (int64_t i = 0; i < rows * cols; i++)
            ((float *)data)[i] = 0.01f * (float)(i % 7);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    assert_int_equal(llamad_gguf_writer_add_tensor(w, name, type, rows == 1 ? 1 : 2, ne, data),
                     LLAMAD_OK);
    free(data);
}

/* Writes a 1-layer model with the bundled model's vocabulary; returns its path. */
static const char *write_model(const struct variant *v, char *path, size_t size)
{
    snprintf(path, size, "/tmp/llamad-test-model-%d.gguf", (int)getpid());
    struct llamad_gguf *donor;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_gguf_open(test_model_path("stories260K.gguf"), &donor, err, sizeof err),
                     LLAMAD_OK);
    struct llamad_gguf_writer *w = llamad_gguf_writer_new();
    for (uint64_t i = 0; i < donor->n_kv; i++) {
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)donor->kv[i].key.len, donor->kv[i].key.data);
        if (!strncmp(key, "tokenizer.", 10))
            assert_int_equal(llamad_gguf_writer_add_value(w, key, &donor->kv[i].value), LLAMAD_OK);
    }
    llamad_gguf_close(donor);

    struct {
        const char *key;
        uint32_t value;
    } dims[] = {
        {"llama.block_count", 1},
        {"llama.embedding_length", DIM},
        {"llama.feed_forward_length", FF},
        {"llama.attention.head_count", v->heads},
        {"llama.attention.head_count_kv", 2},
        {"llama.context_length", 256},
    };
    llamad_gguf_writer_add_str(w, "general.architecture", v->arch);
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (v->skip_key && !strcmp(v->skip_key, dims[i].key))
            continue;
        if (v->block_count_as_string && !strcmp(dims[i].key, "llama.block_count"))
            llamad_gguf_writer_add_str(w, dims[i].key, "one");
        else
            llamad_gguf_writer_add_u32(w, dims[i].key, dims[i].value);
    }

    struct {
        const char *name;
        uint32_t type;
        int64_t rows, cols;
    } t[] = {
        {"token_embd.weight", LLAMAD_TYPE_F32, v->vocab_rows, DIM},
        {"output_norm.weight", LLAMAD_TYPE_F32, 1, DIM},
        {"blk.0.attn_norm.weight", LLAMAD_TYPE_F32, 1, DIM},
        {"blk.0.ffn_norm.weight", LLAMAD_TYPE_F32, 1, DIM},
        {"blk.0.attn_q.weight", v->matrix_type, v->q_rows, DIM},
        {"blk.0.attn_k.weight", LLAMAD_TYPE_F32, KV_DIM, DIM},
        {"blk.0.attn_v.weight", LLAMAD_TYPE_F32, KV_DIM, DIM},
        {"blk.0.attn_output.weight", LLAMAD_TYPE_F32, DIM, DIM},
        {"blk.0.ffn_gate.weight", LLAMAD_TYPE_F32, FF, DIM},
        {"blk.0.ffn_up.weight", LLAMAD_TYPE_F32, FF, DIM},
        {"blk.0.ffn_down.weight", LLAMAD_TYPE_F32, DIM, FF},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!v->skip_tensor || strcmp(v->skip_tensor, t[i].name))
            add_matrix(w, t[i].name, t[i].type, t[i].rows, t[i].cols);
    if (v->rope_factors > 0) {
        float factors[64];
        for (int64_t i = 0; i < v->rope_factors; i++)
            factors[i] = v->rope_factor;
        uint64_t ne[1] = {(uint64_t)v->rope_factors};
        assert_int_equal(
            llamad_gguf_writer_add_tensor(w, "rope_freqs.weight", LLAMAD_TYPE_F32, 1, ne, factors),
            LLAMAD_OK);
    }
    assert_int_equal(llamad_gguf_writer_write_file(w, path, err, sizeof err), LLAMAD_OK);
    llamad_gguf_writer_free(w);
    return path;
}

/* Loads the variant; returns the status and leaves the message in err. */
static int load_variant(const struct variant *v, char *err, size_t errsz)
{
    char path[128];
    struct llamad_model *m = NULL;
    err[0] = '\0';
    int rc = llamad_model_load(write_model(v, path, sizeof path), &m, err, errsz);
    if (rc == LLAMAD_OK) {
        assert_ptr_equal(m->output.data, m->tok_embd.data); /* tied: no output.weight */
        llamad_model_free(m);
    } else {
        assert_null(m);
    }
    unlink(path);
    return rc;
}

static void test_small_model_with_tied_embeddings_loads(void **state)
{
    (void)state;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(load_variant(&good, err, sizeof err), LLAMAD_OK);
}

static void expect_failure(struct variant v, int code, const char *needle)
{
    char err[LLAMAD_ERR_MAX];
    int rc = load_variant(&v, err, sizeof err);
    if (rc != code || !strstr(err, needle))
        fail_msg("got %d '%s', want %d with '%s'", rc, err, code, needle);
}

static void test_unsupported_architecture(void **state)
{
    (void)state;
    struct variant v = good;
    v.arch = "falcon";
    expect_failure(v, LLAMAD_EUNSUPPORTED, "architecture 'falcon'");
}

static void test_missing_tensor(void **state)
{
    (void)state;
    struct variant v = good;
    v.skip_tensor = "blk.0.ffn_up.weight";
    expect_failure(v, LLAMAD_EFORMAT, "blk.0.ffn_up.weight");
}

static void test_wrong_shape(void **state)
{
    (void)state;
    struct variant v = good;
    v.q_rows = 60;
    expect_failure(v, LLAMAD_EFORMAT, "blk.0.attn_q.weight' has shape [64, 60]");
}

static void test_unsupported_tensor_type(void **state)
{
    (void)state;
    struct variant v = good;
    v.matrix_type = LLAMAD_TYPE_Q4_1; /* a valid GGUF type llamad does not compute */
    expect_failure(v, LLAMAD_EUNSUPPORTED, "blk.0.attn_q.weight' has type Q4_1");
}

static void test_missing_and_mistyped_metadata(void **state)
{
    (void)state;
    struct variant v = good;
    v.skip_key = "llama.embedding_length";
    expect_failure(v, LLAMAD_EFORMAT, "llama.embedding_length");
    v = good;
    v.block_count_as_string = true;
    expect_failure(v, LLAMAD_EFORMAT, "llama.block_count");
    v = good;
    v.heads = 5;
    expect_failure(v, LLAMAD_EFORMAT, "head_count");
}

/* LLaMA-3.1's rope_freqs.weight: one positive factor per rotated pair (heads of
 * 16 values: 8), read at load; a wrong count or a factor that is not a positive
 * number is refused. */
static void test_rope_factors(void **state)
{
    (void)state;
    struct variant v = good;
    v.rope_factors = 8;
    v.rope_factor = 2.5f;
    char path[128], err[LLAMAD_ERR_MAX];
    struct llamad_model *m = NULL;
    assert_int_equal(llamad_model_load(write_model(&v, path, sizeof path), &m, err, sizeof err),
                     LLAMAD_OK);
    unlink(path);
    assert_non_null(m->rope_factors);
    for (int i = 0; i < 8; i++)
        assert_true(m->rope_factors[i] == 2.5f);
    llamad_model_free(m);
    v.rope_factors = 7;
    expect_failure(v, LLAMAD_EFORMAT, "rope_freqs.weight");
    v.rope_factors = 8;
    v.rope_factor = 0.0f;
    expect_failure(v, LLAMAD_EFORMAT, "not a positive number");
    v.rope_factor = -1.0f / 0.0f;
    expect_failure(v, LLAMAD_EFORMAT, "not a positive number");
}

static void test_vocabulary_mismatch(void **state)
{
    (void)state;
    struct variant v = good;
    v.vocab_rows = 500;
    expect_failure(v, LLAMAD_EFORMAT, "tokenizer has 512 tokens");
}

static void test_missing_file(void **state)
{
    (void)state;
    char err[LLAMAD_ERR_MAX] = "";
    struct llamad_model *m = NULL;
    assert_int_equal(llamad_model_load("/nonexistent/model.gguf", &m, err, sizeof err), LLAMAD_EIO);
    assert_non_null(strstr(err, "/nonexistent/model.gguf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundled_model_hparams),
        cmocka_unit_test(test_small_model_with_tied_embeddings_loads),
        cmocka_unit_test(test_unsupported_architecture),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_unsupported_tensor_type),
        cmocka_unit_test(test_missing_and_mistyped_metadata),
        cmocka_unit_test(test_rope_factors),
        cmocka_unit_test(test_vocabulary_mismatch),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
