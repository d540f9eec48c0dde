/* The hand-over of events from the engine's batcher thread to the loop thread:
 * every event pushed into an outbox must reach its owner, however the pushes
 * and the owner's drains interleave. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "llamad/engine/event.h"
#include "llamad/engine/outbox.h"
#include "llamad/engine/ready.h"

enum { OUTBOXES = 4, ROUNDS = 300, EVENTS_PER_ROUND = 200 };

struct round {
    struct llamad_ready_list ready;
    struct llamad_outbox *out[OUTBOXES];
    int received[OUTBOXES]; /* by the draining thread only */
    int sent[OUTBOXES];     /* by the pushing thread only */
    atomic_bool done;
};

/* The batcher's part: an event into a random outbox, then the notification. */
static void *push_events(void *arg)
{
    struct round *r = arg;
    unsigned seed = 12345;
    for (int i = 0; i < EVENTS_PER_ROUND; i++) {
        int k = rand_r(&seed) % OUTBOXES;
        struct llamad_event *e = calloc(1, sizeof(*e));
        assert_non_null(e);
        e->kind = LLAMAD_EVENT_TOKEN;
        llamad_outbox_push(r->out[k], e);
        r->sent[k]++;
        llamad_ready_push(&r->ready, r->out[k]);
    }
    atomic_store(&r->done, true);
    return NULL;
}

/* The owner's part: takes and counts every event of a notified outbox. */
static void take_events(struct llamad_outbox *o, void *ctx)
{
    struct round *r = ctx;
    for (int k = 0; k < OUTBOXES; k++)
        if (r->out[k] == o) {
            struct llamad_event *list = llamad_outbox_take(o);
            for (struct llamad_event *e = list; e; e = e->next)
                r->received[k]++;
            llamad_event_free(list);
        }
}

/* Pushes race drains; once the pushing stops and one more drain has run, each
 * outbox's events have all been taken. A drain that lost a notification (say,
 * by walking links a concurrent push rewrote) leaves some behind. */
static void test_every_event_reaches_the_owner(void **state)
{
    (void)state;
    for (int round = 0; round < ROUNDS; round++) {
        struct round r = {0};
        llamad_ready_init(&r.ready);
        for (int k = 0; k < OUTBOXES; k++)
            assert_non_null(r.out[k] = llamad_outbox_new(&r));
        atomic_init(&r.done, false);
        pthread_t pusher;
        assert_int_equal(pthread_create(&pusher, NULL, push_events, &r), 0);
        while (!atomic_load(&r.done))
            llamad_ready_drain(&r.ready, take_events, &r);
        pthread_join(pusher, NULL);
        llamad_ready_drain(&r.ready, take_events, &r);
        for (int k = 0; k < OUTBOXES; k++) {
            if (r.received[k] != r.sent[k])
                fail_msg("round %d, outbox %d: %d of %d events taken", round, k, r.received[k],
                         r.sent[k]);
            llamad_outbox_release(r.out[k]);
        }
        llamad_ready_destroy(&r.ready);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_event_reaches_the_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
