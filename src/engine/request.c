/* Generation requests: what one owns, freed once the engine or the owner is
 * done with it. */
#include "llamad/engine/request.h"

#include <stdlib.h>

#include "llamad/grammar/grammar.h"

void llamad_gen_request_clear(struct llamad_gen_request *r)
{
    free(r->prompt);
    free(r->logit_bias);
    for (size_t i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->stops);
    free(r->stop_lens);
    llamad_grammar_free(r->grammar);
    *r = (struct llamad_gen_request){0};
}
