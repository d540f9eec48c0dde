/* The key/value cache: fixed-size blocks from one pool, reached through a block
 * table per sequence (paged attention). A sequence holds positions 0..len-1;
 * position p lives in block table[p / block_tokens] at row p % block_tokens.
 *
 * Inside a block the rows of one layer are contiguous: for layer l, the keys are
 * block_tokens rows of kv_dim floats, followed by the values, so attention walks
 * a sequence block by block over plain arrays. */
#ifndef LLAMAD_KVCACHE_H
#define LLAMAD_KVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/model.h"

struct llamad_kvcache_params {
    int32_t block_tokens; /* positions per block (default 16) */
    int32_t n_blocks;     /* blocks in the pool */
    int32_t max_seqs;     /* sequences that may exist at once */
    int32_t n_ctx;        /* positions one sequence may hold at most */
};

struct llamad_kv_seq {
    bool in_use;
    int32_t len;      /* positions stored */
    int32_t n_blocks; /* blocks in the table (capacity = n_blocks * block_tokens) */
    int32_t *table;   /* block ids, max_blocks_per_seq entries */
};

struct llamad_kvcache {
    struct llamad_kvcache_params p;
    int32_t n_layer;
    int32_t kv_dim;         /* n_head_kv * head_dim */
    size_t block_floats;    /* floats in one block */
    float *pool;            /* n_blocks * block_floats */
    int32_t *free_list;     /* stack of free block ids */
    int32_t n_free;
    int32_t max_blocks_per_seq;
    struct llamad_kv_seq *seqs;
};

int llamad_kvcache_create(const struct llamad_hparams *hp, const struct llamad_kvcache_params *p,
                          struct llamad_kvcache **out, char *err, size_t errsz);
void llamad_kvcache_free(struct llamad_kvcache *kv);

/* Bytes one block takes, to size a pool from a memory budget. */
size_t llamad_kvcache_block_bytes(const struct llamad_hparams *hp, int32_t block_tokens);

/* A new empty sequence; LLAMAD_ERANGE when max_seqs are in use. */
int llamad_kvcache_seq_new(struct llamad_kvcache *kv, int32_t *seq, char *err, size_t errsz);
/* Frees the sequence and its blocks. */
void llamad_kvcache_seq_release(struct llamad_kvcache *kv, int32_t seq);
/* Makes room for positions 0..n_tokens-1; LLAMAD_ERANGE when that exceeds n_ctx or
 * the pool has too few free blocks (nothing is allocated then). */
int llamad_kvcache_seq_reserve(struct llamad_kvcache *kv, int32_t seq, int32_t n_tokens,
                               char *err, size_t errsz);
/* Keeps positions 0..len-1 and frees the blocks past them. */
void llamad_kvcache_seq_truncate(struct llamad_kvcache *kv, int32_t seq, int32_t len);

bool llamad_kvcache_seq_valid(const struct llamad_kvcache *kv, int32_t seq);

/* Rows of keys (kind 0) or values (kind 1) of layer `layer` in block `block`. */
static inline float *llamad_kvcache_rows(const struct llamad_kvcache *kv, int32_t block,
                                         int32_t layer, int kind)
{
    return kv->pool + (size_t)block * kv->block_floats +
           ((size_t)layer * 2 + (size_t)kind) * (size_t)kv->p.block_tokens * (size_t)kv->kv_dim;
}

#endif
