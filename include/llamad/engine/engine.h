/* The engine: one batcher thread that owns the model's KV cache and every
 * running sequence, and serves submitted generation requests together.
 *
 * Each step packs one batch: a token of every decoding sequence plus prompt
 * chunks of newly admitted ones (under a per-step token budget, so a long prompt
 * does not stall the others), runs one forward pass over it, samples every
 * sequence with its own sampler, and appends what each produced to its request's
 * outbox. Requests join and leave between steps.
 *
 * The engine never touches HTTP: requests come in as a `struct llamad_gen_request`
 * (request.h), results go to a `struct llamad_outbox` (outbox.h) as events
 * (event.h), and the engine calls the owner's notify callback after appending
 * to one. */
#ifndef LLAMAD_ENGINE_H
#define LLAMAD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/engine/outbox.h"
#include "llamad/engine/request.h"
#include "llamad/model/model.h"

struct llamad_engine_params {
    int32_t n_threads;   /* computing threads, the batcher thread included */
    int32_t n_ctx;       /* positions one sequence may use */
    int32_t max_active;  /* sequences decoded together */
    int32_t max_queued;  /* requests waiting for admission */
    int32_t step_tokens; /* most tokens in one step (prompt chunks + decodes) */
    int32_t pass_tokens; /* a step that carries decoding tokens runs them and its prompt
                          * chunks in forward passes of at most this many, the decoding
                          * ones all in the first (0: every step in one pass) */
    size_t kv_bytes;     /* KV cache memory, running and cached sequences together
                          * (0: room for max_active full contexts) */
    uint32_t kv_type;    /* the cache's rows: LLAMAD_TYPE_F32 (0, default), _F16 or _Q8_0 */
    bool kv_share_across_tenants; /* requests of one tenant reuse prompt prefixes another
                                   * computed (sessions stay each tenant's own) */
};

typedef void (*llamad_notify_fn)(void *ctx, struct llamad_outbox *o);

struct llamad_engine;

/* Starts the batcher thread. The model must outlive the engine. notify(ctx, o)
 * is called on the batcher thread after events were appended to o. */
int llamad_engine_start(const struct llamad_model *m, const struct llamad_engine_params *p,
                        llamad_notify_fn notify, void *notify_ctx, struct llamad_engine **out,
                        char *err, size_t errsz);

/* Stops the batcher: running and queued requests end with FINISH_CANCELLED
 * events, and the thread is joined. e stays until llamad_engine_free, so that
 * whoever still holds it may ask: submit then refuses, cancel changes nothing,
 * stats answer. Idempotent. */
void llamad_engine_stop(struct llamad_engine *e);

/* Stops e if it runs, and frees it (e may be NULL). */
void llamad_engine_free(struct llamad_engine *e);

/* Queues a request. On success the engine owns *r's contents (r is cleared) and
 * holds a reference to o; events arrive in o. LLAMAD_ERANGE when the queue is full
 * (the caller answers 503), LLAMAD_EINVAL when the prompt is empty or too long
 * for the context, LLAMAD_EUNSUPPORTED when its prompt and max_tokens need more
 * than the whole KV cache (err says why). A request whose KV room is held by
 * running ones waits in the queue. With a session_id, the request's KV cache
 * stays after it ends, for the session's next request. */
int llamad_engine_submit(struct llamad_engine *e, struct llamad_gen_request *r,
                         struct llamad_outbox *o, char *err, size_t errsz);

/* Asks the engine to drop the request of o before its next step. Idempotent;
 * the request still ends with a DONE event (FINISH_CANCELLED). */
void llamad_engine_cancel(struct llamad_engine *e, struct llamad_outbox *o);

/* A consistent snapshot of the engine's gauges and counters. */
struct llamad_engine_stats {
    int32_t queued;
    int32_t active;
    int32_t kv_blocks_total;
    int32_t kv_blocks_reserved; /* held by running and cached sequences */
    int32_t kv_blocks_used;     /* holding computed positions */
    int32_t kv_blocks_idle;     /* held by cached sequences only (evictable) */
    int32_t kv_seqs_idle;       /* cached sequences of finished requests */
    uint64_t steps;             /* batches run: every decoding sequence gains a token */
    uint64_t forward_passes;    /* passes through the model: a step's passes (pass_tokens) */
    uint64_t prompt_tokens_computed;
    uint64_t prompt_tokens_cached;
    uint64_t generated_tokens;
};
void llamad_engine_stats(struct llamad_engine *e, struct llamad_engine_stats *out);

/* For a watchdog: true when the batcher ended a step since the call that saw
 * *beat (which is updated) or waits with no work; false while one step has not
 * ended since then (a hung engine). Takes no lock: a stuck batcher cannot stall
 * the caller. */
bool llamad_engine_alive(struct llamad_engine *e, uint64_t *beat);

#endif
