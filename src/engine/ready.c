/* The list of outboxes with news, from the notify callback to the loop. */
#include "llamad/engine/ready.h"

#include <stdbool.h>
#include <stddef.h>

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
