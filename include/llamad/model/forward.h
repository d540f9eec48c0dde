/* One transformer forward pass over a batch of tokens from any number of
 * sequences. Each entry is a token of one sequence at one position; it attends
 * to that sequence's cached positions 0..pos only. Logits are computed only for
 * the entries that ask for them. */
#ifndef LLAMAD_FORWARD_H
#define LLAMAD_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/model/kvcache.h"
#include "llamad/model/model.h"

struct llamad_batch_entry {
    int32_t seq; /* KV cache sequence id */
    int32_t pos; /* position in that sequence */
    int32_t token;
    bool logits; /* compute this entry's logits */
};

struct llamad_forward_params {
    int32_t n_threads; /* computing threads, the caller included */
    int32_t max_batch; /* entries computed together; longer batches run in chunks */
    int32_t n_ctx;     /* the most positions a sequence may attend to */
};

struct llamad_forward;

int llamad_forward_create(const struct llamad_model *m, const struct llamad_forward_params *p,
                          struct llamad_forward **out, char *err, size_t errsz);
void llamad_forward_free(struct llamad_forward *f);

/* Runs the batch. For every sequence, its entries must continue it in order
 * (positions len, len+1, ... where len is its cached length; to go back, truncate
 * the sequence first), and room must have been reserved for them
 * (llamad_kvcache_seq_reserve). The batch is checked whole before anything is
 * computed; a bad batch changes nothing and fails with LLAMAD_EINVAL.
 * logits receives n_vocab floats for each entry with .logits set, in batch order. */
int llamad_forward(struct llamad_forward *f, struct llamad_kvcache *kv,
                   const struct llamad_batch_entry *batch, int32_t n, float *logits, char *err,
                   size_t errsz);

/* The same in passes through the model of chosen sizes: the first of at most
 * `first` entries, each later one of at most `rest` (either 0 or above max_batch
 * meaning max_batch). *passes (when not NULL) gets how many there were. */
int llamad_forward_passes(struct llamad_forward *f, struct llamad_kvcache *kv,
                          const struct llamad_batch_entry *batch, int32_t n, int32_t first,
                          int32_t rest, float *logits, int32_t *passes, char *err, size_t errsz);

#endif
