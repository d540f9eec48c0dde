/* Events: what the batcher reports, freed by whoever took them. */
#include "llamad/engine/event.h"

#include <stdlib.h>

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
