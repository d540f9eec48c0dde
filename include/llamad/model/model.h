/* A LLaMA-architecture model loaded from a GGUF file: hyper-parameters from the
 * `llama.*` metadata, weights bound in place inside the read-only mapping, and the
 * tokenizer. Everything is validated at load; a loaded model is immutable and may
 * be shared by any number of threads. */
#ifndef LLAMAD_MODEL_H
#define LLAMAD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "llamad/format/gguf.h"
#include "llamad/grammar/grammar.h"
#include "llamad/kernels/weight.h"
#include "llamad/tokenizer/tokenizer.h"

struct llamad_hparams {
    int32_t n_vocab;
    int32_t n_embd; /* model width */
    int32_t n_layer;
    int32_t n_head;      /* query heads */
    int32_t n_head_kv;   /* key/value heads (grouped-query attention when < n_head) */
    int32_t head_dim;    /* n_embd / n_head */
    int32_t n_ff;        /* feed-forward width */
    int32_t n_ctx_train; /* llama.context_length */
    int32_t n_rot;       /* leading dimensions of each head that RoPE rotates */
    float rope_base;
    float rms_eps;
};

struct llamad_layer {
    float *attn_norm; /* n_embd, owned (converted to f32 at load) */
    float *ffn_norm;
    struct llamad_weight wq, wk, wv, wo;
    struct llamad_weight w_gate, w_up, w_down;
};

struct llamad_model {
    struct llamad_gguf *gguf;
    struct llamad_tokenizer *tokenizer;
    struct llamad_grammar_vocab *grammar_vocab; /* the tokens as grammars see them (a byte
                                                 * trie), built at load, read-only after */
    struct llamad_hparams hp;
    struct llamad_weight tok_embd;
    struct llamad_weight output; /* the same matrix as tok_embd when the file ties them */
    float *output_norm;
    float *rope_factors; /* rope_freqs.weight (n_rot / 2, owned), or NULL: llamad_rope_angles */
    struct llamad_layer *layers;
    void *packed; /* the weights' packed copies (their .packed point into it), or NULL */
    char *name;   /* general.name, else the file name */
    uint64_t n_params;
    uint64_t weight_bytes; /* bytes of all tensors */
};

int llamad_model_load(const char *path, struct llamad_model **out, char *err, size_t errsz);
void llamad_model_free(struct llamad_model *m);

#endif
