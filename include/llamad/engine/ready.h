/* The outboxes that got events since the owner last looked: linked by the
 * engine's notify callback (any thread), drained by the owner's thread. The
 * links are the outboxes' own (ready_next, ready_linked), so linking never
 * allocates. */
#ifndef LLAMAD_READY_H
#define LLAMAD_READY_H

#include <pthread.h>

#include "llamad/engine/outbox.h"

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

#endif
