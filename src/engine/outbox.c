/* Outboxes: a request's events from the engine's batcher thread to the loop
 * thread, under the outbox's lock, freed by the last of the two to let go. */
#include "llamad/engine/outbox.h"

#include <stdlib.h>

struct llamad_outbox *llamad_outbox_new(void *owner)
{
    struct llamad_outbox *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    pthread_mutex_init(&o->mutex, NULL);
    atomic_init(&o->refs, 1);
    atomic_init(&o->cancelled, false);
    o->owner = owner;
    return o;
}

void llamad_outbox_retain(struct llamad_outbox *o)
{
    atomic_fetch_add(&o->refs, 1);
}

void llamad_outbox_release(struct llamad_outbox *o)
{
    if (!o || atomic_fetch_sub(&o->refs, 1) != 1)
        return;
    llamad_event_free(o->head);
    pthread_mutex_destroy(&o->mutex);
    free(o);
}

struct llamad_event *llamad_outbox_take(struct llamad_outbox *o)
{
    pthread_mutex_lock(&o->mutex);
    struct llamad_event *list = o->head;
    o->head = o->tail = NULL;
    pthread_mutex_unlock(&o->mutex);
    return list;
}

void llamad_outbox_push(struct llamad_outbox *o, struct llamad_event *e)
{
    e->next = NULL;
    pthread_mutex_lock(&o->mutex);
    if (o->tail)
        o->tail->next = e;
    else
        o->head = e;
    o->tail = e;
    pthread_mutex_unlock(&o->mutex);
}
