/* A generation request as the engine takes it: the prompt's token ids and
 * how to sample and stop. Filled by the owner (the HTTP layer), then handed
 * over whole to llamad_engine_submit. */
#ifndef LLAMAD_REQUEST_H
#define LLAMAD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llamad/model/sampler.h"

struct llamad_grammar;

struct llamad_gen_request {
    int32_t *prompt; /* token ids, BOS included when wanted; owned by the request */
    int32_t n_prompt;
    int32_t max_tokens; /* tokens to generate at most (0: only the prompt is computed) */
    struct llamad_sampling sampling;      /* its logit_bias is this request's array below */
    struct llamad_logit_bias *logit_bias; /* owned */
    char **stops;                         /* owned, n_stops strings */
    size_t *stop_lens;
    size_t n_stops;
    bool ignore_eos; /* with a grammar: end tokens are left out while the grammar can go
                      * on, and still end generation once it cannot */
    struct llamad_grammar *grammar; /* owned, or NULL: the output must be a sentence of it */
    bool logprobs;                  /* compute the sampled token's logprob */
    int32_t top_logprobs;           /* and this many alternatives (0..20) */
    char session_id[129];           /* "" when none */
    uint32_t tenant;                /* whose request (the API key's): it sees only the tenant's
                                     * sessions, and its prefixes unless the engine shares them */
};

/* Frees what the request owns (not the struct itself). */
void llamad_gen_request_clear(struct llamad_gen_request *r);

#endif
