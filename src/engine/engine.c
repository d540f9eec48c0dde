#include "llamad/engine/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/clock.h"
#include "llamad/base/error.h"
#include "llamad/engine/event.h"
#include "llamad/model/forward.h"
#include "llamad/model/kvcache.h"
#include "sequence.h"

#define KV_BLOCK_TOKENS 16
#define MAX_IDLE_SEQS 4096 /* cached sequences kept beyond the running ones, at most */

struct queued {
    struct llamad_gen_request req;
    struct llamad_outbox *out;
    double t_submit;
    struct queued *next;
};

struct slot {
    bool used;
    uint64_t admitted; /* admission number: prompt chunks go first-come first-served */
    struct sequence seq;
};

struct llamad_engine {
    const struct llamad_model *m;
    struct llamad_engine_params p;
    struct llamad_forward *fwd;
    struct llamad_kvcache *kv;
    llamad_notify_fn notify;
    void *notify_ctx;

    pthread_t thread;
    pthread_mutex_t mutex; /* guards the queue, `stopping` and `stats` */
    pthread_cond_t wake;
    struct queued *q_head, *q_tail;
    bool stopping;
    bool joined; /* llamad_engine_stop is done (the caller's thread only) */
    struct llamad_engine_stats stats;

    /* The heartbeat (llamad_engine_alive): steps ended, and whether the batcher
     * waits with no work (set before it waits, cleared by a submit, which is the
     * only way work arrives). */
    _Atomic uint64_t beats;
    atomic_bool idle;

    /* Batcher-thread state. */
    struct slot *slots;  /* max_active */
    struct slot **order; /* used slots by admission */
    uint64_t n_admitted;
    struct llamad_batch_entry *batch; /* step_tokens entries */
    struct slot **row_owner;          /* the slot of each logits row */
    float *logits;                    /* max_active rows of n_vocab */
    struct llamad_outbox **touched;   /* outboxes to notify after a step */
    int n_touched;
};

/* ---- Notification: every outbox that got events in a step, once ---- */

static void touch(struct llamad_engine *e, struct llamad_outbox *o)
{
    for (int i = 0; i < e->n_touched; i++)
        if (e->touched[i] == o)
            return;
    llamad_outbox_retain(o);
    e->touched[e->n_touched++] = o;
}

static void notify_touched(struct llamad_engine *e)
{
    for (int i = 0; i < e->n_touched; i++) {
        e->notify(e->notify_ctx, e->touched[i]);
        llamad_outbox_release(e->touched[i]);
    }
    e->n_touched = 0;
}

/* ---- Sequences ---- */

static void end_sequence(struct llamad_engine *e, struct slot *s, enum llamad_finish why,
                         int status, const char *error)
{
    touch(e, s->seq.out);
    sequence_finish(&s->seq, why, status, error, llamad_now_seconds());
    if (why == LLAMAD_FINISH_ERROR) /* what it computed is not trusted for reuse */
        llamad_kvcache_seq_release(e->kv, s->seq.kv_seq);
    else
        llamad_kvcache_seq_park(e->kv, s->seq.kv_seq);
    llamad_outbox_release(s->seq.out);
    s->used = false;
}

/* A queued request that cannot start gets its DONE event right away. */
static void refuse_queued(struct llamad_engine *e, struct queued *q, enum llamad_finish why,
                          int status, const char *error)
{
    struct llamad_event *done = calloc(1, sizeof(*done));
    if (done) {
        done->kind = LLAMAD_EVENT_DONE;
        done->finish = why;
        done->error = error ? strdup(error) : NULL;
        done->error_status = status;
        done->usage.prompt_tokens = q->req.n_prompt;
        llamad_outbox_push(q->out, done);
    }
    touch(e, q->out);
    llamad_outbox_release(q->out);
    llamad_gen_request_clear(&q->req);
    free(q);
}

static struct slot *free_slot(struct llamad_engine *e)
{
    for (int32_t i = 0; i < e->p.max_active; i++)
        if (!e->slots[i].used)
            return &e->slots[i];
    return NULL;
}

/* Positions a request may fill: its prompt and its generation, capped at the
 * context. */
static int32_t request_room(const struct llamad_engine *e, const struct llamad_gen_request *r)
{
    int32_t room = r->n_prompt + r->max_tokens;
    return room > e->p.n_ctx || room < r->n_prompt ? e->p.n_ctx : room;
}

/* Starts a queued request, or returns false and leaves it queued when the KV
 * cache cannot hold it until a running request ends. Its sequence gets the
 * longest cached prefix of its prompt and blocks for all of its room, so an
 * admitted request always finishes. */
static bool admit(struct llamad_engine *e, struct queued *q, struct slot *s)
{
    char err[LLAMAD_ERR_MAX];
    int32_t kv_seq, cached;
    int rc =
        llamad_kvcache_claim(e->kv, q->req.prompt, q->req.n_prompt, request_room(e, &q->req),
                             q->req.session_id, q->req.tenant, &kv_seq, &cached, err, sizeof err);
    if (rc == LLAMAD_ERANGE)
        return false;
    if (rc) {
        refuse_queued(e, q, LLAMAD_FINISH_ERROR, rc == LLAMAD_EINVAL ? 400 : 500, err);
        return true;
    }
    if (sequence_init(&s->seq, e->m, &q->req, q->out, kv_seq, cached, q->t_submit,
                      llamad_now_seconds())) {
        llamad_kvcache_seq_release(e->kv, kv_seq);
        refuse_queued(e, q, LLAMAD_FINISH_ERROR, 500, "out of memory");
        return true;
    }
    s->used = true;
    s->admitted = e->n_admitted++;
    e->stats.prompt_tokens_cached += (uint64_t)cached;
    free(q);
    return true;
}

/* Under the mutex: moves queued requests into free slots, first come first
 * served, and answers the cancelled ones. The first that must wait for room in
 * the KV cache holds back the ones behind it. */
static void admit_queued(struct llamad_engine *e)
{
    struct queued *q;
    while ((q = e->q_head) != NULL) {
        struct slot *s = NULL;
        bool cancelled = atomic_load(&q->out->cancelled);
        if (!cancelled && !(s = free_slot(e)))
            break;
        e->q_head = q->next;
        if (cancelled) {
            refuse_queued(e, q, LLAMAD_FINISH_CANCELLED, 0, NULL);
        } else if (!admit(e, q, s)) {
            e->q_head = q; /* still first in line */
            break;
        }
        e->stats.queued--;
    }
    if (!e->q_head)
        e->q_tail = NULL;
}

static int by_admission(const void *a, const void *b)
{
    const struct slot *x = *(struct slot *const *)a, *y = *(struct slot *const *)b;
    return (x->admitted > y->admitted) - (x->admitted < y->admitted);
}

/* The used slots in admission order; returns how many. */
static int32_t collect_active(struct llamad_engine *e)
{
    int32_t n = 0;
    for (int32_t i = 0; i < e->p.max_active; i++)
        if (e->slots[i].used)
            e->order[n++] = &e->slots[i];
    qsort(e->order, (size_t)n, sizeof(e->order[0]), by_admission);
    return n;
}

static void drop_cancelled(struct llamad_engine *e, int32_t n_active)
{
    for (int32_t i = 0; i < n_active; i++) {
        struct slot *s = e->order[i];
        if (s->used && atomic_load(&s->seq.out->cancelled))
            end_sequence(e, s, LLAMAD_FINISH_CANCELLED, 0, NULL);
    }
}

/* ---- One step ---- */

/* Packs one decode token of every decoding sequence (the first *n_decoding
 * entries), then prompt chunks of the others in admission order until the step's
 * token budget is spent. Returns the number of entries; rows get the slot of each
 * logits row. */
static int32_t pack_batch(struct llamad_engine *e, int32_t n_active, int32_t *n_rows,
                          int32_t *n_decoding, int32_t *n_prompt_tokens)
{
    int32_t n = 0, rows = 0, prompt = 0;
    for (int32_t i = 0; i < n_active; i++) {
        struct slot *s = e->order[i];
        if (s->used && s->seq.decoding) {
            e->batch[n++] =
                (struct llamad_batch_entry){s->seq.kv_seq, s->seq.n_fed, s->seq.next_token, true};
            e->row_owner[rows++] = s;
        }
    }
    *n_decoding = n;
    for (int32_t i = 0; i < n_active && n < e->p.step_tokens; i++) {
        struct slot *s = e->order[i];
        if (!s->used || s->seq.decoding)
            continue;
        llamad_kvcache_seq_touch(e->kv, s->seq.kv_seq);
        int32_t left = s->seq.req.n_prompt - s->seq.n_fed;
        int32_t chunk = left < e->p.step_tokens - n ? left : e->p.step_tokens - n;
        for (int32_t k = 0; k < chunk; k++) {
            int32_t pos = s->seq.n_fed + k;
            bool last = pos == s->seq.req.n_prompt - 1;
            e->batch[n++] =
                (struct llamad_batch_entry){s->seq.kv_seq, pos, s->seq.req.prompt[pos], last};
            if (last)
                e->row_owner[rows++] = s;
        }
        prompt += chunk;
    }
    *n_rows = rows;
    *n_prompt_tokens = prompt;
    return n;
}

/* How many positions each sequence gained in this batch. */
static void advance_fed(struct llamad_engine *e, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < e->p.max_active; j++)
            if (e->slots[j].used && e->slots[j].seq.kv_seq == e->batch[i].seq) {
                e->slots[j].seq.n_fed++;
                break;
            }
}

/* Runs the step's n entries through the model, its logits rows into e->logits.
 * With sequences decoding (the first n_decoding entries, all in the first pass),
 * the prompt chunks go through in passes of at most pass_tokens: the decoding
 * steps that follow then find more of the weights still in the CPU's caches than after one long
 * pass, which reads them once in a hundred milliseconds (110M Q8_0 on a 2-core machine, 8 streams
 * starting together: the first decoding step after the prompts 5.6-7.7 ms after passes of 512
 * tokens, 4.2-6.0 ms after passes of 128; steady steps 3.7-4.4 ms). With nobody decoding, a step is
 * one pass, the fastest for prompts (pp512 there 4,970-5,060 tokens/s in one pass, 4,590-4,630 in
 * passes of 128). Returns the count of passes, or -1 with err filled. */
static int32_t run_passes(struct llamad_engine *e, int32_t n, int32_t n_decoding, char *err,
                          size_t errsz)
{
    const int32_t rest = n_decoding > 0 ? e->p.pass_tokens : 0;
    const int32_t first = rest > 0 && n_decoding > rest ? n_decoding : rest;
    int32_t passes;
    if (llamad_forward_passes(e->fwd, e->kv, e->batch, n, first, rest, e->logits, &passes, err,
                              errsz))
        return -1;
    return passes;
}

static void run_step(struct llamad_engine *e, int32_t n_active)
{
    int32_t n_rows, n_decoding, n_prompt;
    int32_t n = pack_batch(e, n_active, &n_rows, &n_decoding, &n_prompt);
    if (n == 0)
        return;
    char err[LLAMAD_ERR_MAX] = "";
    int32_t passes = run_passes(e, n, n_decoding, err, sizeof err);
    if (passes < 0) {
        for (int32_t i = 0; i < n_active; i++)
            if (e->order[i]->used)
                end_sequence(e, e->order[i], LLAMAD_FINISH_ERROR, 500, err);
        return;
    }
    advance_fed(e, n);
    double now = llamad_now_seconds();
    int32_t generated = 0;
    for (int32_t r = 0; r < n_rows; r++) {
        struct slot *s = e->row_owner[r];
        int32_t before = s->seq.n_gen;
        enum llamad_finish why = sequence_sample(
            &s->seq, e->m, e->logits + (size_t)r * (size_t)e->m->hp.n_vocab, e->p.n_ctx, now);
        touch(e, s->seq.out);
        generated += s->seq.n_gen - before;
        if (why == LLAMAD_FINISH_ERROR && s->seq.error)
            end_sequence(e, s, why, s->seq.error_status, s->seq.error);
        else if (why != LLAMAD_FINISH_NONE)
            end_sequence(e, s, why, why == LLAMAD_FINISH_ERROR ? 500 : 0,
                         why == LLAMAD_FINISH_ERROR ? "out of memory while sampling" : NULL);
    }
    pthread_mutex_lock(&e->mutex);
    e->stats.steps++;
    e->stats.forward_passes += (uint64_t)passes;
    e->stats.prompt_tokens_computed += (uint64_t)n_prompt;
    e->stats.generated_tokens += (uint64_t)generated;
    pthread_mutex_unlock(&e->mutex);
}

static void publish_gauges(struct llamad_engine *e, int32_t n_active)
{
    struct llamad_kvcache_stats ks;
    llamad_kvcache_stats(e->kv, &ks);
    e->stats.active = n_active;
    e->stats.kv_blocks_total = ks.blocks_total;
    e->stats.kv_blocks_reserved = ks.blocks_reserved;
    e->stats.kv_blocks_used = ks.blocks_used;
    e->stats.kv_blocks_idle = ks.blocks_idle;
    e->stats.kv_seqs_idle = ks.seqs_idle;
}

static void *batcher_main(void *arg)
{
    struct llamad_engine *e = arg;
    pthread_mutex_lock(&e->mutex);
    for (;;) {
        int32_t n_active = collect_active(e);
        while (!e->stopping && !e->q_head && n_active == 0) {
            atomic_store(&e->idle, true);
            pthread_cond_wait(&e->wake, &e->mutex);
        }
        if (e->stopping)
            break;
        admit_queued(e);
        n_active = collect_active(e);
        publish_gauges(e, n_active);
        pthread_mutex_unlock(&e->mutex);

        drop_cancelled(e, n_active);
        run_step(e, n_active);
        /* Gauges first: what a notified owner reads already includes this step. */
        pthread_mutex_lock(&e->mutex);
        publish_gauges(e, collect_active(e));
        pthread_mutex_unlock(&e->mutex);
        notify_touched(e);
        atomic_fetch_add(&e->beats, 1);
        pthread_mutex_lock(&e->mutex);
    }
    /* Stopping: everything still here ends as cancelled. */
    struct queued *q = e->q_head;
    e->q_head = e->q_tail = NULL;
    e->stats.queued = 0;
    pthread_mutex_unlock(&e->mutex);
    while (q) {
        struct queued *next = q->next;
        refuse_queued(e, q, LLAMAD_FINISH_CANCELLED, 0, NULL);
        q = next;
    }
    for (int32_t i = 0; i < e->p.max_active; i++)
        if (e->slots[i].used)
            end_sequence(e, &e->slots[i], LLAMAD_FINISH_CANCELLED, 0, NULL);
    notify_touched(e);
    atomic_store(&e->idle, true); /* no work will come */
    return NULL;
}

/* ---- Public interface ---- */

static int allocate(struct llamad_engine *e, char *err, size_t errsz)
{
    const struct llamad_engine_params *p = &e->p;
    size_t block_bytes = llamad_kvcache_block_bytes(&e->m->hp, KV_BLOCK_TOKENS, p->kv_type);
    int64_t blocks_per_seq = (p->n_ctx + KV_BLOCK_TOKENS - 1) / KV_BLOCK_TOKENS;
    int64_t blocks =
        p->kv_bytes ? (int64_t)(p->kv_bytes / block_bytes) : blocks_per_seq * p->max_active;
    if (blocks < 1 || blocks > INT32_MAX)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "a KV cache of %zu bytes holds %lld blocks of %zu bytes", p->kv_bytes,
                           (long long)blocks, block_bytes);
    int32_t idle = blocks < MAX_IDLE_SEQS ? (int32_t)blocks : MAX_IDLE_SEQS;
    struct llamad_kvcache_params kp = {.block_tokens = KV_BLOCK_TOKENS,
                                       .n_blocks = (int32_t)blocks,
                                       .max_seqs = p->max_active + idle,
                                       .n_ctx = p->n_ctx,
                                       .type = p->kv_type,
                                       .share_across_tenants = p->kv_share_across_tenants};
    struct llamad_forward_params fp = {p->n_threads, p->step_tokens, p->n_ctx};
    int rc;
    if ((rc = llamad_kvcache_create(&e->m->hp, &kp, &e->kv, err, errsz)) ||
        (rc = llamad_forward_create(e->m, &fp, &e->fwd, err, errsz)))
        return rc;
    e->slots = calloc((size_t)p->max_active, sizeof(*e->slots));
    e->order = calloc((size_t)p->max_active, sizeof(*e->order));
    e->row_owner = calloc((size_t)p->max_active, sizeof(*e->row_owner));
    e->touched = calloc((size_t)p->max_active + (size_t)p->max_queued + 1, sizeof(*e->touched));
    e->batch = calloc((size_t)p->step_tokens, sizeof(*e->batch));
    e->logits = malloc((size_t)p->max_active * (size_t)e->m->hp.n_vocab * sizeof(float));
    if (!e->slots || !e->order || !e->row_owner || !e->touched || !e->batch || !e->logits)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory for the engine");
    publish_gauges(e, 0);
    return LLAMAD_OK;
}

static void free_engine(struct llamad_engine *e)
{
    llamad_forward_free(e->fwd);
    llamad_kvcache_free(e->kv);
    free(e->slots);
    free(e->order);
    free(e->row_owner);
    free(e->touched);
    free(e->batch);
    free(e->logits);
    pthread_mutex_destroy(&e->mutex);
    pthread_cond_destroy(&e->wake);
    free(e);
}

int llamad_engine_start(const struct llamad_model *m, const struct llamad_engine_params *p,
                        llamad_notify_fn notify, void *notify_ctx, struct llamad_engine **out,
                        char *err, size_t errsz)
{
    if (p->n_ctx < 2 || p->max_active < 1 || p->max_queued < 0 || p->step_tokens < p->max_active ||
        p->pass_tokens < 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "engine needs a context of 2 or more, at least one active sequence, "
                           "a step budget of at least one token per sequence and a pass "
                           "size of 0 or more");
    struct llamad_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    e->m = m;
    e->p = *p;
    e->notify = notify;
    e->notify_ctx = notify_ctx;
    pthread_mutex_init(&e->mutex, NULL);
    pthread_cond_init(&e->wake, NULL);
    int rc = allocate(e, err, errsz);
    if (rc == LLAMAD_OK && pthread_create(&e->thread, NULL, batcher_main, e) != 0)
        rc = llamad_fail(err, errsz, LLAMAD_ENOMEM, "cannot start the batcher thread");
    if (rc) {
        free_engine(e);
        return rc;
    }
    *out = e;
    return LLAMAD_OK;
}

void llamad_engine_stop(struct llamad_engine *e)
{
    if (e->joined)
        return;
    pthread_mutex_lock(&e->mutex);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mutex);
    pthread_join(e->thread, NULL);
    e->joined = true;
}

void llamad_engine_free(struct llamad_engine *e)
{
    if (!e)
        return;
    llamad_engine_stop(e);
    free_engine(e);
}

int llamad_engine_submit(struct llamad_engine *e, struct llamad_gen_request *r,
                         struct llamad_outbox *o, char *err, size_t errsz)
{
    if (r->n_prompt < 1)
        return llamad_fail(err, errsz, LLAMAD_EINVAL, "the prompt is empty");
    if (r->n_prompt >= e->p.n_ctx)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "the prompt has %d tokens; the context holds %d, so at most %d fit",
                           r->n_prompt, e->p.n_ctx, e->p.n_ctx - 1);
    /* A penalty window past the context is the whole sequence, which -1 says
     * without a ring of its size (2^31-1 would ask for 8 GiB). */
    if (r->sampling.penalty_last_n > e->p.n_ctx)
        r->sampling.penalty_last_n = -1;
    /* Read-only after start: no lock needed. */
    int32_t room = request_room(e, r), blocks = llamad_kvcache_blocks_for(e->kv, room);
    if (blocks > e->kv->p.n_blocks)
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "the prompt and max_tokens need %d positions of KV cache; the whole "
                           "cache (kv_cache_mb) holds %d",
                           room, e->kv->p.n_blocks * e->kv->p.block_tokens);
    struct queued *q = calloc(1, sizeof(*q));
    if (!q)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory");
    pthread_mutex_lock(&e->mutex);
    if (e->stopping || e->stats.queued >= e->p.max_queued + e->p.max_active - e->stats.active) {
        pthread_mutex_unlock(&e->mutex);
        free(q);
        return llamad_fail(err, errsz, LLAMAD_ERANGE, "the server is busy: %d requests queued",
                           e->stats.queued);
    }
    q->req = *r;
    *r = (struct llamad_gen_request){0};
    q->out = o;
    llamad_outbox_retain(o);
    q->t_submit = llamad_now_seconds();
    if (e->q_tail)
        e->q_tail->next = q;
    else
        e->q_head = q;
    e->q_tail = q;
    e->stats.queued++;
    atomic_store(&e->idle, false);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mutex);
    return LLAMAD_OK;
}

void llamad_engine_cancel(struct llamad_engine *e, struct llamad_outbox *o)
{
    atomic_store(&o->cancelled, true);
    pthread_mutex_lock(&e->mutex);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mutex);
}

void llamad_engine_stats(struct llamad_engine *e, struct llamad_engine_stats *out)
{
    pthread_mutex_lock(&e->mutex);
    *out = e->stats;
    pthread_mutex_unlock(&e->mutex);
}

bool llamad_engine_alive(struct llamad_engine *e, uint64_t *beat)
{
    uint64_t now = atomic_load(&e->beats);
    bool moved = now != *beat;
    *beat = now;
    return moved || atomic_load(&e->idle);
}
