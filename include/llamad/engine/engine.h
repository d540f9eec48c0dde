/* The engine: one batcher thread that owns the model's KV cache and every
 * running sequence, and serves submitted generation requests together.
 *
 * Each step packs one batch: a token of every decoding sequence plus prompt
 * chunks of newly admitted ones (under a per-step token budget, so a long prompt
 * does not stall the others), runs one forward pass over it, samples every
 * sequence with its own sampler, and appends what each produced to its request's
 * outbox. Requests join and leave between steps.
 *
 * The engine never touches HTTP: results go to a `struct llamad_outbox`, and the
 * engine calls the owner's notify callback after appending to one. */
#ifndef LLAMAD_ENGINE_H
#define LLAMAD_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/model/model.h"
#include "llamad/model/sampler.h"

enum llamad_finish {
    LLAMAD_FINISH_NONE = 0,
    LLAMAD_FINISH_STOP,      /* end-of-sequence token or a stop string */
    LLAMAD_FINISH_LENGTH,    /* max_tokens reached, or the context is full */
    LLAMAD_FINISH_CANCELLED, /* llamad_engine_cancel, e.g. the client went away */
    LLAMAD_FINISH_ERROR,     /* see the event's error text */
};

struct llamad_top_logprob {
    int32_t token;
    float logprob;
};

struct llamad_usage {
    int32_t prompt_tokens;
    int32_t completion_tokens;
    int32_t cached_tokens;   /* prompt tokens whose KV came from the cache */
    double queued_ms;        /* submit to admission */
    double prompt_ms;        /* admission to the first sampled token */
    double generation_ms;    /* first sampled token to the end */
};

enum llamad_event_kind {
    LLAMAD_EVENT_TOKEN, /* one sampled token */
    LLAMAD_EVENT_DONE,  /* the last event of a request */
};

struct llamad_event {
    enum llamad_event_kind kind;
    struct llamad_event *next;

    /* TOKEN */
    int32_t token;
    char *piece;          /* the token's own bytes (may be part of a UTF-8 character) */
    size_t piece_len;
    char *text;           /* text released by this token: whole UTF-8 characters, never
                           * part of a stop string; may be empty or span earlier tokens */
    size_t text_len;
    float logprob;        /* log-probability of the token under the model (before
                           * sampling transforms); set when logprobs were asked */
    struct llamad_top_logprob *top; /* n_top most likely tokens, most likely first */
    int32_t n_top;

    /* DONE (also uses .text: what was still held back when the request ended, e.g.
     * the start of a stop string that can no longer complete) */
    enum llamad_finish finish;
    char *error;          /* FINISH_ERROR: what went wrong */
    int error_status;     /* FINISH_ERROR: the HTTP status it maps to (400, 500, 503) */
    struct llamad_usage usage;
};

void llamad_event_free(struct llamad_event *e);

/* Where a request's results go. Shared by the engine and the owner (the HTTP
 * layer) and freed by whichever releases it last. */
struct llamad_outbox {
    pthread_mutex_t mutex;
    struct llamad_event *head, *tail; /* under mutex */
    atomic_int refs;
    atomic_bool cancelled;            /* set by llamad_engine_cancel */
    void *owner;                      /* the owner's per-request data */
    /* For the owner's llamad_ready_list, under its mutex. */
    struct llamad_outbox *ready_next;
    bool ready_linked;
};

struct llamad_outbox *llamad_outbox_new(void *owner); /* refs = 1 (the caller's) */
void llamad_outbox_retain(struct llamad_outbox *o);
void llamad_outbox_release(struct llamad_outbox *o);
/* Takes every event queued so far (a list in order, NULL when none). */
struct llamad_event *llamad_outbox_take(struct llamad_outbox *o);
/* Appends one event (the outbox owns it from then on). */
void llamad_outbox_push(struct llamad_outbox *o, struct llamad_event *e);

/* The outboxes that got events since the owner last looked: linked by the
 * engine's notify callback (any thread), drained by the owner's thread. */
struct llamad_ready_list {
    pthread_mutex_t mutex;
    struct llamad_outbox *head;
};

void llamad_ready_init(struct llamad_ready_list *l);
/* Releases what is still linked. */
void llamad_ready_destroy(struct llamad_ready_list *l);
/* Links o (and retains it) unless it is linked already. */
void llamad_ready_push(struct llamad_ready_list *l, struct llamad_outbox *o);
/* Calls fn on every outbox linked so far, then releases it. Each is unlinked
 * just before fn sees it, so events pushed after that are announced by a new
 * link for the next drain, and a push during the drain never changes the list
 * being walked. */
void llamad_ready_drain(struct llamad_ready_list *l, void (*fn)(struct llamad_outbox *o, void *ctx),
                        void *ctx);

struct llamad_gen_request {
    int32_t *prompt;      /* token ids, BOS included when wanted; owned by the request */
    int32_t n_prompt;
    int32_t max_tokens;   /* tokens to generate at most (0: only the prompt is computed) */
    struct llamad_sampling sampling; /* logit_bias points into this request */
    struct llamad_logit_bias *logit_bias; /* owned */
    char **stops;         /* owned, n_stops strings */
    size_t *stop_lens;
    size_t n_stops;
    bool ignore_eos;
    bool logprobs;        /* compute the sampled token's logprob */
    int32_t top_logprobs; /* and this many alternatives (0..20) */
    char session_id[129]; /* "" when none */
};

/* Frees what the request owns (not the struct itself). */
void llamad_gen_request_clear(struct llamad_gen_request *r);

struct llamad_engine_params {
    int32_t n_threads;     /* computing threads, the batcher thread included */
    int32_t n_ctx;         /* positions one sequence may use */
    int32_t max_active;    /* sequences decoded together */
    int32_t max_queued;    /* requests waiting for admission */
    int32_t step_tokens;   /* most tokens in one step (prompt chunks + decodes) */
    int32_t pass_tokens;   /* a step that carries decoding tokens runs them and its prompt
                            * chunks in forward passes of at most this many, the decoding
                            * ones all in the first (0: every step in one pass) */
    size_t kv_bytes;       /* KV cache memory, running and cached sequences together
                            * (0: room for max_active full contexts) */
    uint32_t kv_type;      /* the cache's rows: LLAMAD_TYPE_F32 (0, default), _F16 or _Q8_0 */
};

typedef void (*llamad_notify_fn)(void *ctx, struct llamad_outbox *o);

struct llamad_engine;

/* Starts the batcher thread. The model must outlive the engine. notify(ctx, o)
 * is called on the batcher thread after events were appended to o. */
int llamad_engine_start(const struct llamad_model *m, const struct llamad_engine_params *p,
                        llamad_notify_fn notify, void *notify_ctx, struct llamad_engine **out,
                        char *err, size_t errsz);

/* Stops the batcher: running and queued requests end with FINISH_CANCELLED
 * events; then the thread is joined and everything freed. */
void llamad_engine_stop(struct llamad_engine *e);

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
    uint64_t steps;          /* batches run: every decoding sequence gains a token */
    uint64_t forward_passes; /* passes through the model: a step's passes (pass_tokens) */
    uint64_t prompt_tokens_computed;
    uint64_t prompt_tokens_cached;
    uint64_t generated_tokens;
};
void llamad_engine_stats(struct llamad_engine *e, struct llamad_engine_stats *out);

#endif
