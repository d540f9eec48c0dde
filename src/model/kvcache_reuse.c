/* Reuse of cached sequences: prefix matching, session take-over, parking, LRU
 * eviction, and the block accounting that admission relies on. */
#include <stdio.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/model/kvcache.h"

/* Where a new sequence's prefix comes from. */
struct plan {
    int32_t source; /* the sequence holding it; -1: nothing reused */
    bool take_over; /* source is the session's idle sequence and becomes the new one */
    int32_t keep;   /* positions reused */
};

/* How many leading positions of s hold the prompt's tokens, leaving at least
 * the last prompt token to compute. */
static int32_t common_prefix(const struct llamad_kv_seq *s, const int32_t *prompt, int32_t n_prompt)
{
    int32_t n = s->len < n_prompt - 1 ? s->len : n_prompt - 1, i = 0;
    while (i < n && s->tokens[i] == prompt[i])
        i++;
    return i;
}

/* The session's own idle sequence is taken over when it offers at least as much
 * as any other; from any other sequence only whole blocks are shared, and only
 * within the tenant unless the cache shares across tenants. */
static struct plan choose_prefix(const struct llamad_kvcache *kv, const int32_t *prompt,
                                 int32_t n_prompt, const char *session, uint32_t tenant)
{
    const int32_t bt = kv->p.block_tokens;
    struct plan own = {-1, true, 0}, share = {-1, false, 0};
    for (int32_t i = 0; i < kv->p.max_seqs; i++) {
        const struct llamad_kv_seq *s = &kv->seqs[i];
        bool same_tenant = s->tenant == tenant;
        if (!s->in_use || (!same_tenant && !kv->p.share_across_tenants))
            continue;
        int32_t n = common_prefix(s, prompt, n_prompt), whole = n - n % bt;
        if (whole > share.keep)
            share = (struct plan){i, false, whole};
        if (same_tenant && session[0] && s->idle && !strcmp(s->session, session)) {
            /* The new sequence writes on into its last block: only when it is the
             * block's sole holder. */
            bool shared_tail = n % bt && llamad_kvcache_seq_pos_shared(kv, i, n);
            own = (struct plan){i, true, shared_tail ? whole : n};
        }
    }
    return own.source >= 0 && own.keep >= share.keep ? own : share;
}

/* Blocks that evicting every idle sequence would free, leaving alone those held
 * by running sequences and those the plan keeps. */
static int32_t reclaimable_blocks(struct llamad_kvcache *kv, const struct plan *pl)
{
    memset(kv->mark, 0, (size_t)kv->p.n_blocks);
    for (int32_t i = 0; i < kv->p.max_seqs; i++) {
        const struct llamad_kv_seq *s = &kv->seqs[i];
        if (s->in_use && !s->idle)
            for (int32_t b = 0; b < s->n_blocks; b++)
                kv->mark[s->table[b]] = 1;
    }
    if (pl->source >= 0)
        for (int32_t b = 0; b < llamad_kvcache_blocks_for(kv, pl->keep); b++)
            kv->mark[kv->seqs[pl->source].table[b]] = 1;
    int32_t n = 0;
    for (int32_t b = 0; b < kv->p.n_blocks; b++)
        n += kv->refs[b] > 0 && !kv->mark[b];
    return n;
}

static bool has_free_slot(const struct llamad_kvcache *kv)
{
    for (int32_t i = 0; i < kv->p.max_seqs; i++)
        if (!kv->seqs[i].in_use)
            return true;
    return false;
}

/* Releases the idle sequence parked longest ago, other than `except`; false
 * when there is none. */
static bool evict_lru(struct llamad_kvcache *kv, int32_t except)
{
    int32_t victim = -1;
    for (int32_t i = 0; i < kv->p.max_seqs; i++) {
        const struct llamad_kv_seq *s = &kv->seqs[i];
        if (s->in_use && s->idle && i != except &&
            (victim < 0 || s->parked < kv->seqs[victim].parked))
            victim = i;
    }
    if (victim < 0)
        return false;
    llamad_kvcache_seq_release(kv, victim);
    return true;
}

/* The first `keep` positions of `source` (whole blocks) become those of seq. */
static void share_prefix(struct llamad_kvcache *kv, int32_t seq, int32_t source, int32_t keep)
{
    struct llamad_kv_seq *s = &kv->seqs[seq];
    const struct llamad_kv_seq *from = &kv->seqs[source];
    for (int32_t b = 0; b < keep / kv->p.block_tokens; b++) {
        s->table[b] = from->table[b];
        kv->refs[from->table[b]]++;
    }
    s->n_blocks = keep / kv->p.block_tokens;
    memcpy(s->tokens, from->tokens, (size_t)keep * sizeof(int32_t));
    s->len = keep;
}

int llamad_kvcache_claim(struct llamad_kvcache *kv, const int32_t *prompt, int32_t n_prompt,
                         int32_t room, const char *session, uint32_t tenant, int32_t *seq,
                         int32_t *cached, char *err, size_t errsz)
{
    if (n_prompt < 1 || room < n_prompt || room > kv->p.n_ctx)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "a sequence of %d prompt positions and room for %d does not fit a "
                           "context of %d",
                           n_prompt, room, kv->p.n_ctx);
    int32_t blocks = llamad_kvcache_blocks_for(kv, room);
    if (blocks > kv->p.n_blocks)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "%d positions need %d KV cache blocks; the whole cache has %d", room,
                           blocks, kv->p.n_blocks);

    struct plan pl = choose_prefix(kv, prompt, n_prompt, session, tenant);
    int32_t kept =
        pl.take_over ? llamad_kvcache_blocks_for(kv, pl.keep) : pl.keep / kv->p.block_tokens;
    int32_t reclaimable = reclaimable_blocks(kv, &pl);
    if (blocks - kept > kv->n_free + reclaimable)
        return llamad_fail(err, errsz, LLAMAD_ERANGE,
                           "KV cache busy: %d blocks needed, %d free or held by idle sequences",
                           blocks - kept, kv->n_free + reclaimable);
    if (!pl.take_over && !has_free_slot(kv) && !evict_lru(kv, pl.source))
        return llamad_fail(err, errsz, LLAMAD_ERANGE, "all %d KV cache sequences are running",
                           kv->p.max_seqs);

    int32_t s;
    if (pl.take_over) {
        s = pl.source;
        kv->seqs[s].idle = false;
        llamad_kvcache_seq_truncate(kv, s, pl.keep);
    } else {
        int rc = llamad_kvcache_seq_new(kv, &s, err, errsz);
        if (rc)
            return rc;
        if (pl.source >= 0)
            share_prefix(kv, s, pl.source, pl.keep);
    }
    snprintf(kv->seqs[s].session, sizeof kv->seqs[s].session, "%s", session);
    kv->seqs[s].tenant = tenant;
    while (kv->n_free < blocks - kv->seqs[s].n_blocks && evict_lru(kv, -1))
        ;
    int rc = llamad_kvcache_seq_reserve(kv, s, room, err, errsz);
    if (rc) { /* the count above says this cannot happen */
        llamad_kvcache_seq_release(kv, s);
        return rc;
    }
    *seq = s;
    *cached = kv->seqs[s].len;
    return LLAMAD_OK;
}

void llamad_kvcache_seq_park(struct llamad_kvcache *kv, int32_t seq)
{
    if (!llamad_kvcache_seq_valid(kv, seq))
        return;
    struct llamad_kv_seq *s = &kv->seqs[seq];
    if (s->len == 0) {
        llamad_kvcache_seq_release(kv, seq);
        return;
    }
    llamad_kvcache_seq_truncate(kv, seq, s->len); /* the room it did not use */
    for (int32_t i = 0; s->session[0] && i < kv->p.max_seqs; i++)
        if (i != seq && kv->seqs[i].in_use && kv->seqs[i].idle && kv->seqs[i].tenant == s->tenant &&
            !strcmp(kv->seqs[i].session, s->session))
            llamad_kvcache_seq_release(kv, i);
    s->idle = true;
    s->parked = ++kv->clock;
}

void llamad_kvcache_stats(struct llamad_kvcache *kv, struct llamad_kvcache_stats *out)
{
    enum { USED = 1, RUNNING = 2 };
    *out = (struct llamad_kvcache_stats){.blocks_total = kv->p.n_blocks,
                                         .blocks_reserved = kv->p.n_blocks - kv->n_free};
    memset(kv->mark, 0, (size_t)kv->p.n_blocks);
    for (int32_t i = 0; i < kv->p.max_seqs; i++) {
        const struct llamad_kv_seq *s = &kv->seqs[i];
        if (!s->in_use)
            continue;
        out->seqs_idle += s->idle;
        int32_t filled = llamad_kvcache_blocks_for(kv, s->len);
        for (int32_t b = 0; b < s->n_blocks; b++)
            kv->mark[s->table[b]] |= (uint8_t)((b < filled ? USED : 0) | (s->idle ? 0 : RUNNING));
    }
    for (int32_t b = 0; b < kv->p.n_blocks; b++) {
        out->blocks_used += (kv->mark[b] & USED) != 0;
        out->blocks_idle += kv->refs[b] > 0 && !(kv->mark[b] & RUNNING);
    }
}
