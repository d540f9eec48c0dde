/* What the engine reports about a request: one event per sampled token, then
 * a last one saying why the request ended, with its usage. Made on the
 * batcher thread, read on the owner's (through an outbox). */
#ifndef LLAMAD_EVENT_H
#define LLAMAD_EVENT_H

#include <stddef.h>
#include <stdint.h>

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
    int32_t cached_tokens; /* prompt tokens whose KV came from the cache */
    double queued_ms;      /* submit to admission */
    double prompt_ms;      /* admission to the first sampled token */
    double generation_ms;  /* first sampled token to the end */
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
    char *piece; /* the token's own bytes (may be part of a UTF-8 character) */
    size_t piece_len;
    char *text; /* text released by this token: whole UTF-8 characters, never
                 * part of a stop string; may be empty or span earlier tokens */
    size_t text_len;
    float logprob;                  /* log-probability of the token under the model (before
                                     * sampling transforms); set when logprobs were asked */
    struct llamad_top_logprob *top; /* n_top most likely tokens, most likely first */
    int32_t n_top;

    /* DONE (also uses .text: what was still held back when the request ended, e.g.
     * the start of a stop string that can no longer complete) */
    enum llamad_finish finish;
    char *error;      /* FINISH_ERROR: what went wrong */
    int error_status; /* FINISH_ERROR: the HTTP status it maps to (400, 500, 503) */
    struct llamad_usage usage;
};

/* Frees e and every event linked after it. */
void llamad_event_free(struct llamad_event *e);

#endif
