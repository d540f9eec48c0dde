/* libFuzzer target: the GGUF reader over a byte buffer (the same parser a file's
 * mapping goes through), every value and tensor it hands out read back, and the
 * tokenizer built from whatever metadata it accepts. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/format/gguf.h"
#include "llamad/tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the bytes read go, so that the reads are not optimised away. */
static volatile uint8_t sink;

/* Reads every byte a value refers to, so that ASan sees any that lie outside the input. */
static uint8_t touch_value(const struct llamad_gguf_value *v)
{
    uint8_t sum = 0;
    if (v->type == LLAMAD_GGUF_STRING) {
        for (uint64_t i = 0; i < v->str.len; i++)
            sum ^= (uint8_t)v->str.data[i];
    } else if (v->type == LLAMAD_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->arr.count; i++) {
            struct llamad_gguf_value e = llamad_gguf_array_get(v, i);
            sum ^= touch_value(&e);
        }
    }
    return sum;
}

static void tokenize_with(const struct llamad_gguf *g)
{
    struct llamad_tokenizer *t = NULL;
    if (llamad_tokenizer_load(g, &t, NULL, 0))
        return;
    static const char text[] = " Hello  world! <s>\n\xe2\x96\x81\xff\xc3(";
    int32_t ids[64];
    int64_t n = llamad_tokenize(t, text, sizeof text - 1, true, ids, 64);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    if (n > 0)
        llamad_detokenize(t, -1, ids, n < 64 ? (size_t)n : 64, &out);
    llamad_buf_free(&out);
    llamad_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct llamad_gguf *g = NULL;
    char err[LLAMAD_ERR_MAX];
    if (llamad_gguf_open_memory(data, size, "fuzz", &g, err, sizeof err))
        return 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const struct llamad_gguf_kv *kv = &g->kv[i];
        sink ^= touch_value(&kv->value);
        char key[128];
        size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
        memcpy(key, kv->key.data, n);
        key[n] = '\0';
        int64_t i64;
        double f64;
        bool b;
        struct llamad_gguf_str s;
        const struct llamad_gguf_value *arr;
        llamad_gguf_get_int(g, key, INT64_MIN, INT64_MAX, &i64, err, sizeof err);
        llamad_gguf_get_float(g, key, &f64, err, sizeof err);
        llamad_gguf_get_bool(g, key, &b, err, sizeof err);
        llamad_gguf_get_str(g, key, &s, err, sizeof err);
        llamad_gguf_get_array(g, key, -1, &arr, err, sizeof err);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const struct llamad_gguf_tensor *t = &g->tensors[i];
        if (t->nbytes)
            sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->nbytes - 1];
        char name[128];
        size_t n = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.data, n);
        name[n] = '\0';
        if (llamad_gguf_find_tensor(g, name) == NULL && n == t->name.len && !memchr(name, 0, n))
            __builtin_trap(); /* a tensor the table holds must be found by its name */
    }
    tokenize_with(g);
    llamad_gguf_close(g);
    return 0;
}
