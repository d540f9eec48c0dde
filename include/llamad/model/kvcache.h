/* The key/value cache: fixed-size blocks from one pool, reached through a block
 * table per sequence (paged attention). A sequence holds positions 0..len-1;
 * position p lives in block table[p / block_tokens] at row p % block_tokens.
 *
 * Inside a block the rows of one layer are contiguous: for layer l, the keys,
 * then the values, each head by head, a head's part block_tokens rows of
 * head_dim values. Attention reads one head at a time, so it walks a sequence
 * block by block over contiguous rows (with whole positions of kv_dim values
 * per row, a head's part was a short piece of each long row: 8 sequences
 * decoding at depth 256 ran ~30 % slower). The values are floats (F32), or
 * halves (F16): half the memory and the bytes attention reads, for a rounding of
 * every key and value to 11 significant bits.
 *
 * Reuse. A block is counted by every sequence whose table holds it, and goes
 * back to the pool when the last one lets go. Blocks are shared only when full
 * of computed positions, so they never change again: a sequence writes only
 * into blocks of its own. When a request ends its sequence is parked: it stays,
 * idle, with its token ids, so a later request with the same session id takes
 * it over, and any request shares the full blocks of the longest prefix it has
 * in common with a cached sequence. Idle sequences are evicted, least recently
 * parked first, when a new sequence needs their blocks or their slot; a
 * sequence that is not idle is never evicted. */
#ifndef LLAMAD_KVCACHE_H
#define LLAMAD_KVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/kernels/attention.h"
#include "llamad/model/model.h"

struct llamad_kvcache_params {
    int32_t block_tokens;      /* positions per block (default 16) */
    int32_t n_blocks;          /* blocks in the pool */
    int32_t max_seqs;          /* sequences that may exist at once, idle ones included */
    int32_t n_ctx;             /* positions one sequence may hold at most */
    uint32_t type;             /* LLAMAD_TYPE_F32 (0), _F16, or _Q8_0 (GGUF Q8_0 blocks of 32
                                * values: heads must be a multiple of 32 wide); kvcache_type.h */
    bool share_across_tenants; /* prefixes are shared between tenants too (sessions never) */
};

struct llamad_kv_seq {
    bool in_use;
    bool idle;         /* parked: kept for reuse, may be evicted */
    int32_t len;       /* positions stored */
    int32_t n_blocks;  /* blocks in the table (capacity = n_blocks * block_tokens) */
    int32_t *table;    /* block ids, max_blocks_per_seq entries */
    int32_t *tokens;   /* the token id at each stored position, n_ctx entries */
    char session[129]; /* session id, "" when none */
    uint32_t tenant;   /* whose sequence it is: sessions and prefixes stay within one */
    uint64_t parked;   /* when it was parked (kv->clock), for LRU eviction */
};

struct llamad_kvcache {
    /* The geometry, fixed at creation: anyone may read it. */
    struct llamad_kvcache_params p;
    int32_t n_layer;
    int32_t kv_dim; /* n_head_kv * head_dim */
    int32_t head_dim;
    size_t head_bytes;  /* bytes of one position's head_dim keys (or values) */
    size_t row_bytes;   /* bytes of one position's kv_dim keys (or values) */
    size_t block_bytes; /* bytes of one block */
    int32_t max_blocks_per_seq;
    /* The state: the cache's own. Other modules go through the functions below
     * (the inline ones for the forward pass's per-block reads). */
    uint8_t *pool;      /* n_blocks * block_bytes */
    int32_t *refs;      /* per block: the sequences whose table holds it */
    int32_t *free_list; /* stack of free block ids (refs == 0) */
    int32_t n_free;
    uint8_t *mark;    /* scratch, one byte per block */
    uint8_t *touched; /* per block: its pages made present (seq_touch) */
    uint64_t clock;   /* counts parkings */
    struct llamad_kv_seq *seqs;
};

int llamad_kvcache_create(const struct llamad_hparams *hp, const struct llamad_kvcache_params *p,
                          struct llamad_kvcache **out, char *err, size_t errsz);
void llamad_kvcache_free(struct llamad_kvcache *kv);

/* Bytes one block of `type` (F32, F16 or Q8_0) takes, to size a pool from a memory budget. */
size_t llamad_kvcache_block_bytes(const struct llamad_hparams *hp, int32_t block_tokens,
                                  uint32_t type);
/* Bytes n_seqs full contexts of n_ctx positions of `type` take: the budget that
 * holds them (llamad_engine_params.kv_bytes). */
size_t llamad_kvcache_bytes(const struct llamad_hparams *hp, int32_t n_ctx, int32_t n_seqs,
                            uint32_t type);

/* Blocks that hold n_tokens positions. */
int32_t llamad_kvcache_blocks_for(const struct llamad_kvcache *kv, int32_t n_tokens);

/* A new empty sequence; LLAMAD_ERANGE when max_seqs are in use. */
int llamad_kvcache_seq_new(struct llamad_kvcache *kv, int32_t *seq, char *err, size_t errsz);
/* Frees the sequence and lets go of its blocks. */
void llamad_kvcache_seq_release(struct llamad_kvcache *kv, int32_t seq);
/* Makes room for positions 0..n_tokens-1; LLAMAD_ERANGE when that exceeds n_ctx or
 * the pool has too few free blocks (nothing is allocated then). */
int llamad_kvcache_seq_reserve(struct llamad_kvcache *kv, int32_t seq, int32_t n_tokens, char *err,
                               size_t errsz);
/* Makes the pages of the sequence's blocks present (contents unchanged) where
 * that was not done before, so the forward passes that fill them take no page
 * faults. The pool's memory arrives page by page on first write (it grows with
 * use, up to the budget); without this, a decoding step that crossed into fresh
 * blocks paid for their faults (~1 ms per step every 16 positions with 8
 * sequences of 110M). Call it before a sequence's prompt step, long anyway. */
void llamad_kvcache_seq_touch(struct llamad_kvcache *kv, int32_t seq);
/* Keeps positions 0..len-1 and lets go of the blocks past them. */
void llamad_kvcache_seq_truncate(struct llamad_kvcache *kv, int32_t seq, int32_t len);

bool llamad_kvcache_seq_valid(const struct llamad_kvcache *kv, int32_t seq);

/* Whether the cache was made for a model of these hyperparameters (its layers
 * and the width of their keys and values). */
bool llamad_kvcache_made_for(const struct llamad_kvcache *kv, const struct llamad_hparams *hp);

/* Positions the sequence holds: 0..len-1 are computed. */
int32_t llamad_kvcache_seq_len(const struct llamad_kvcache *kv, int32_t seq);
/* Positions its blocks have room for (llamad_kvcache_seq_reserve). */
int32_t llamad_kvcache_seq_room(const struct llamad_kvcache *kv, int32_t seq);
/* Whether the block holding position pos (within its room) is held by other
 * sequences too: a shared prefix, whose positions must never be written. */
bool llamad_kvcache_seq_pos_shared(const struct llamad_kvcache *kv, int32_t seq, int32_t pos);
/* The keys and values of position pos, of `token`, are in: the sequence holds
 * it from now on (its length covers it; a later request may share it). */
void llamad_kvcache_seq_computed(struct llamad_kvcache *kv, int32_t seq, int32_t pos,
                                 int32_t token);

/* A sequence for a request of `tenant` whose prompt is prompt[0..n_prompt-1] and
 * which may grow to `room` positions (n_prompt < room <= n_ctx). It starts with
 * the longest cached prefix it can use, never the whole prompt (the last prompt
 * token is always computed, for its logits): the tenant's idle sequence of
 * `session` (non-empty) is taken over, or the full blocks of another sequence
 * of the tenant (of any tenant with share_across_tenants) are shared. A tenant
 * sees nothing of another's sessions, and without sharing not even how much of
 * its prompt another tenant sent before (cached counts would tell it). Then
 * blocks for all of `room` are reserved, evicting idle sequences as needed.
 * *cached gets the positions the sequence starts with (its len).
 * LLAMAD_EINVAL: `room` is more than the whole pool, it never fits.
 * LLAMAD_ERANGE: it does not fit while the sequences now running hold their
 * blocks; nothing changed, try again after one ends. */
int llamad_kvcache_claim(struct llamad_kvcache *kv, const int32_t *prompt, int32_t n_prompt,
                         int32_t room, const char *session, uint32_t tenant, int32_t *seq,
                         int32_t *cached, char *err, size_t errsz);

/* The request of seq ended: it stays as an idle sequence (blocks past its
 * length are let go), replacing any idle one of the same tenant and session; an
 * empty one is released. */
void llamad_kvcache_seq_park(struct llamad_kvcache *kv, int32_t seq);

struct llamad_kvcache_stats {
    int32_t blocks_total;
    int32_t blocks_reserved; /* held by some sequence (not free) */
    int32_t blocks_used;     /* holding at least one computed position */
    int32_t blocks_idle;     /* held by idle sequences only: evicting frees them */
    int32_t seqs_idle;
};
void llamad_kvcache_stats(struct llamad_kvcache *kv, struct llamad_kvcache_stats *out);

/* Keys (kind 0) or values (kind 1) of layer `layer` in block `block`: floats,
 * halves or Q8_0 blocks, as kv->p.type says; head after head. */
static inline void *llamad_kvcache_rows(const struct llamad_kvcache *kv, int32_t block,
                                        int32_t layer, int kind)
{
    return kv->pool + (size_t)block * kv->block_bytes +
           ((size_t)layer * 2 + (size_t)kind) * (size_t)kv->p.block_tokens * kv->row_bytes;
}

/* KV head `head`'s part of those: block_tokens rows of head_bytes, except F32
 * and F16 keys (llamad_kvcache_keys_by_dimension). */
static inline void *llamad_kvcache_head(const struct llamad_kvcache *kv, int32_t block,
                                        int32_t layer, int kind, int32_t head)
{
    return (uint8_t *)llamad_kvcache_rows(kv, block, layer, kind) +
           (size_t)head * (size_t)kv->p.block_tokens * kv->head_bytes;
}

/* Row `row` (a position's head_bytes) of such a part laid out by position. */
static inline void *llamad_kvcache_head_row(const struct llamad_kvcache *kv, int32_t block,
                                            int32_t layer, int kind, int32_t head, int32_t row)
{
    return (uint8_t *)llamad_kvcache_head(kv, block, layer, kind, head) +
           (size_t)row * kv->head_bytes;
}

/* The block of sequence seq that holds position pos (within its room), and
 * the position's row in it. Inline: attention asks once per block it reads. */
static inline int32_t llamad_kvcache_seq_block(const struct llamad_kvcache *kv, int32_t seq,
                                               int32_t pos)
{
    return kv->seqs[seq].table[pos / kv->p.block_tokens];
}

static inline int32_t llamad_kvcache_block_row(const struct llamad_kvcache *kv, int32_t pos)
{
    return pos % kv->p.block_tokens;
}

/* Whether the cache lays a head's keys out by dimension within a block: head_dim
 * runs of block_tokens values, dimension d of the block's token t at
 * d * block_tokens + t. The attention kernels of the cache's type decide. */
static inline bool llamad_kvcache_keys_by_dimension(const struct llamad_kvcache *kv)
{
    return llamad_attention_keys_by_dimension(kv->p.type);
}

#endif
