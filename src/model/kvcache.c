/* The block pool and the sequences' block tables: allocation, reference counts,
 * truncation. Reuse of cached sequences is in kvcache_reuse.c. */
#include "llamad/model/kvcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/bigalloc.h"
#include "llamad/base/error.h"
#include "llamad/format/types.h"
#include "llamad/model/kvcache_type.h"

/* Bytes of n values of a cache row of `type` (Q8_0: n a multiple of its block). */
static size_t row_bytes(uint32_t type, int64_t n)
{
    if (type == LLAMAD_TYPE_Q8_0)
        return (size_t)(n / LLAMAD_QK8_0) * LLAMAD_Q8_0_BYTES;
    return (size_t)n * (type == LLAMAD_TYPE_F16 ? sizeof(uint16_t) : sizeof(float));
}

size_t llamad_kvcache_block_bytes(const struct llamad_hparams *hp, int32_t block_tokens,
                                  uint32_t type)
{
    return (size_t)hp->n_layer * 2 * (size_t)block_tokens *
           row_bytes(type, (int64_t)hp->n_head_kv * hp->head_dim);
}

size_t llamad_kvcache_bytes(const struct llamad_hparams *hp, int32_t n_ctx, int32_t n_seqs,
                            uint32_t type)
{
    return llamad_kvcache_block_bytes(hp, 1, type) * (size_t)n_ctx * (size_t)n_seqs;
}

int32_t llamad_kvcache_blocks_for(const struct llamad_kvcache *kv, int32_t n_tokens)
{
    return (int32_t)(((int64_t)n_tokens + kv->p.block_tokens - 1) / kv->p.block_tokens);
}

int llamad_kvcache_create(const struct llamad_hparams *hp, const struct llamad_kvcache_params *p,
                          struct llamad_kvcache **out, char *err, size_t errsz)
{
    if (p->block_tokens < 1 || p->n_blocks < 1 || p->max_seqs < 1 || p->n_ctx < 1)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "KV cache needs at least one block, token, sequence and position");
    if (!llamad_kvcache_type_supported(p->type))
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "KV cache of type %s: only F32, F16 and Q8_0",
                           llamad_type_name(p->type));
    if (p->type == LLAMAD_TYPE_Q8_0 && hp->head_dim % LLAMAD_QK8_0 != 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "a q8_0 KV cache needs attention heads of a multiple of 32 values; "
                           "this model's have %d (use f16)",
                           hp->head_dim);
    struct llamad_kvcache *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory for the KV cache");
    kv->p = *p;
    kv->n_layer = hp->n_layer;
    kv->kv_dim = hp->n_head_kv * hp->head_dim;
    kv->head_dim = hp->head_dim;
    kv->head_bytes = row_bytes(p->type, hp->head_dim);
    kv->row_bytes = row_bytes(p->type, kv->kv_dim);
    kv->block_bytes = llamad_kvcache_block_bytes(hp, p->block_tokens, p->type);
    kv->max_blocks_per_seq = (p->n_ctx + p->block_tokens - 1) / p->block_tokens;

    if ((size_t)p->n_blocks > SIZE_MAX / kv->block_bytes)
        goto nomem;
    kv->pool = llamad_big_alloc((size_t)p->n_blocks * kv->block_bytes);
    kv->free_list = malloc((size_t)p->n_blocks * sizeof(int32_t));
    kv->refs = calloc((size_t)p->n_blocks, sizeof(int32_t));
    kv->mark = calloc((size_t)p->n_blocks, 1);
    kv->touched = calloc((size_t)p->n_blocks, 1);
    kv->seqs = calloc((size_t)p->max_seqs, sizeof(*kv->seqs));
    if (!kv->pool || !kv->free_list || !kv->refs || !kv->mark || !kv->touched || !kv->seqs)
        goto nomem;
    for (int32_t i = 0; i < p->n_blocks; i++)
        kv->free_list[i] = p->n_blocks - 1 - i; /* block 0 is handed out first */
    kv->n_free = p->n_blocks;
    *out = kv;
    return LLAMAD_OK;
nomem:
    llamad_kvcache_free(kv);
    return llamad_fail(err, errsz, LLAMAD_ENOMEM,
                       "out of memory for a KV cache of %d blocks of %zu bytes", p->n_blocks,
                       llamad_kvcache_block_bytes(hp, p->block_tokens, p->type));
}

void llamad_kvcache_free(struct llamad_kvcache *kv)
{
    if (!kv)
        return;
    if (kv->seqs)
        for (int32_t i = 0; i < kv->p.max_seqs; i++) {
            free(kv->seqs[i].table);
            free(kv->seqs[i].tokens);
        }
    free(kv->seqs);
    free(kv->free_list);
    free(kv->refs);
    free(kv->mark);
    free(kv->touched);
    free(kv->pool);
    free(kv);
}

bool llamad_kvcache_seq_valid(const struct llamad_kvcache *kv, int32_t seq)
{
    return seq >= 0 && seq < kv->p.max_seqs && kv->seqs[seq].in_use;
}

bool llamad_kvcache_made_for(const struct llamad_kvcache *kv, const struct llamad_hparams *hp)
{
    return kv->n_layer == hp->n_layer && kv->kv_dim == hp->n_head_kv * hp->head_dim;
}

int32_t llamad_kvcache_seq_len(const struct llamad_kvcache *kv, int32_t seq)
{
    return kv->seqs[seq].len;
}

int32_t llamad_kvcache_seq_room(const struct llamad_kvcache *kv, int32_t seq)
{
    return kv->seqs[seq].n_blocks * kv->p.block_tokens;
}

bool llamad_kvcache_seq_pos_shared(const struct llamad_kvcache *kv, int32_t seq, int32_t pos)
{
    return kv->refs[llamad_kvcache_seq_block(kv, seq, pos)] > 1;
}

void llamad_kvcache_seq_computed(struct llamad_kvcache *kv, int32_t seq, int32_t pos, int32_t token)
{
    struct llamad_kv_seq *s = &kv->seqs[seq];
    s->tokens[pos] = token;
    if (pos + 1 > s->len)
        s->len = pos + 1;
}

int llamad_kvcache_seq_new(struct llamad_kvcache *kv, int32_t *seq, char *err, size_t errsz)
{
    for (int32_t i = 0; i < kv->p.max_seqs; i++) {
        struct llamad_kv_seq *s = &kv->seqs[i];
        if (s->in_use)
            continue;
        if (!s->table)
            s->table = malloc((size_t)kv->max_blocks_per_seq * sizeof(int32_t));
        if (!s->tokens)
            s->tokens = malloc((size_t)kv->p.n_ctx * sizeof(int32_t));
        if (!s->table || !s->tokens)
            return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory for a block table");
        s->in_use = true;
        s->idle = false;
        s->len = 0;
        s->n_blocks = 0;
        s->session[0] = '\0';
        s->tenant = 0;
        *seq = i;
        return LLAMAD_OK;
    }
    return llamad_fail(err, errsz, LLAMAD_ERANGE, "all %d KV cache sequences are in use",
                       kv->p.max_seqs);
}

void llamad_kvcache_seq_truncate(struct llamad_kvcache *kv, int32_t seq, int32_t len)
{
    struct llamad_kv_seq *s = &kv->seqs[seq];
    if (len < 0)
        len = 0;
    if (len < s->len)
        s->len = len;
    int32_t keep = (len + kv->p.block_tokens - 1) / kv->p.block_tokens;
    while (s->n_blocks > keep) {
        int32_t b = s->table[--s->n_blocks];
        if (--kv->refs[b] == 0)
            kv->free_list[kv->n_free++] = b;
    }
}

void llamad_kvcache_seq_release(struct llamad_kvcache *kv, int32_t seq)
{
    if (!llamad_kvcache_seq_valid(kv, seq))
        return;
    llamad_kvcache_seq_truncate(kv, seq, 0);
    kv->seqs[seq].in_use = false;
}

void llamad_kvcache_seq_touch(struct llamad_kvcache *kv, int32_t seq)
{
    const struct llamad_kv_seq *s = &kv->seqs[seq];
    for (int32_t i = 0; i < s->n_blocks; i++) {
        const int32_t b = s->table[i];
        if (!kv->touched[b]) {
            llamad_big_prefault(kv->pool + (size_t)b * kv->block_bytes, kv->block_bytes);
            kv->touched[b] = 1;
        }
    }
}

int llamad_kvcache_seq_reserve(struct llamad_kvcache *kv, int32_t seq, int32_t n_tokens, char *err,
                               size_t errsz)
{
    struct llamad_kv_seq *s = &kv->seqs[seq];
    if (n_tokens > kv->p.n_ctx)
        return llamad_fail(err, errsz, LLAMAD_ERANGE, "%d positions exceed the context size of %d",
                           n_tokens, kv->p.n_ctx);
    int32_t need = llamad_kvcache_blocks_for(kv, n_tokens) - s->n_blocks;
    if (need <= 0)
        return LLAMAD_OK;
    if (need > kv->n_free)
        return llamad_fail(err, errsz, LLAMAD_ERANGE,
                           "KV cache full: %d more blocks needed, %d free", need, kv->n_free);
    while (need-- > 0) {
        int32_t b = kv->free_list[--kv->n_free];
        kv->refs[b] = 1;
        s->table[s->n_blocks++] = b;
    }
    return LLAMAD_OK;
}
