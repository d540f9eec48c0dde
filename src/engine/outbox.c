/* Events, outboxes and generation requests: the data that crosses from the
 * engine's batcher thread to the loop thread. */
#include <stdlib.h>

#include "llamad/engine/engine.h"

void llamad_event_free(struct llamad_event *e)
{
    while (e) {
        struct llamad_event *next = e->next;
        free(e->piece);
        free(e->text);
        free(e->top);
        free(e->error);
        free(e);
        e = next;
    }
}

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

void llamad_ready_init(struct llamad_ready_list *l)
{
    pthread_mutex_init(&l->mutex, NULL);
    l->head = NULL;
}

void llamad_ready_destroy(struct llamad_ready_list *l)
{
    while (l->head) {
        struct llamad_outbox *o = l->head;
        l->head = o->ready_next;
        llamad_outbox_release(o);
    }
    pthread_mutex_destroy(&l->mutex);
}

void llamad_ready_push(struct llamad_ready_list *l, struct llamad_outbox *o)
{
    pthread_mutex_lock(&l->mutex);
    if (!o->ready_linked) {
        o->ready_linked = true;
        llamad_outbox_retain(o);
        o->ready_next = l->head;
        l->head = o;
    }
    pthread_mutex_unlock(&l->mutex);
}

void llamad_ready_drain(struct llamad_ready_list *l, void (*fn)(struct llamad_outbox *o, void *ctx),
                        void *ctx)
{
    pthread_mutex_lock(&l->mutex);
    struct llamad_outbox *list = l->head;
    l->head = NULL;
    pthread_mutex_unlock(&l->mutex);
    while (list) {
        struct llamad_outbox *o = list;
        /* Still marked linked until now, so no push could relink it and
         * overwrite ready_next while the rest of this list was waiting. */
        pthread_mutex_lock(&l->mutex);
        list = o->ready_next;
        o->ready_linked = false;
        pthread_mutex_unlock(&l->mutex);
        fn(o, ctx);
        llamad_outbox_release(o);
    }
}

void llamad_gen_request_clear(struct llamad_gen_request *r)
{
    free(r->prompt);
    free(r->logit_bias);
    for (size_t i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->stops);
    free(r->stop_lens);
    *r = (struct llamad_gen_request){0};
}
