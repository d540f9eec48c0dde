/* Where a request's results go: the events of one request, queued by the
 * engine's batcher thread and taken by the owner (the HTTP layer) on its own.
 * Shared by the two and freed by whichever releases it last. */
#ifndef LLAMAD_OUTBOX_H
#define LLAMAD_OUTBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "llamad/engine/event.h"

struct llamad_outbox {
    pthread_mutex_t mutex;
    struct llamad_event *head, *tail; /* under mutex */
    atomic_int refs;
    atomic_bool cancelled; /* set by llamad_engine_cancel */
    void *owner;           /* the owner's per-request data */
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

#endif
