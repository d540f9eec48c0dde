/* Token sampling: from one position's logits to the next token.
 *
 * Order of operations, each skipped when off:
 *   logit bias -> repetition / presence / frequency penalties over the last
 *   `penalty_last_n` accepted tokens -> allowed-token mask ->
 *   greedy argmax when temperature <= 0, else: temperature -> top-k -> softmax ->
 *   top-p -> min-p -> draw from the renormalised distribution with the seeded RNG.
 * The same parameters, seed and sequence of calls give the same tokens. */
#ifndef LLAMAD_SAMPLER_H
#define LLAMAD_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

struct llamad_logit_bias {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
};

struct llamad_sampling {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off; > 1 discourages repeats (divides positive logits, multiplies
                                negative) */
    float presence_penalty;  /* 0: off; subtracted once from every token in the window */
    float frequency_penalty; /* 0: off; subtracted once per occurrence in the window */
    int32_t penalty_last_n;  /* window of accepted tokens the penalties look at; 0: none; -1: all */
    uint64_t seed;
    const struct llamad_logit_bias *logit_bias; /* copied by llamad_sampler_create */
    size_t n_logit_bias;
};

/* llamad-run's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * penalties off (repeat 1.0, window 64), logit bias none, seed 0. */
void llamad_sampling_defaults(struct llamad_sampling *p);

struct llamad_sampler;

/* NULL when out of memory or when a logit_bias token is outside [0, n_vocab). */
struct llamad_sampler *llamad_sampler_create(const struct llamad_sampling *p, int32_t n_vocab);
void llamad_sampler_free(struct llamad_sampler *s);

/* Restricts sampling to the tokens whose bit is set (bit i of mask[i / 8] is token i,
 * LSB first); NULL allows every token. The mask is copied. If a step leaves no token
 * allowed, sampling returns -1. Returns 0 or LLAMAD_ENOMEM. */
int llamad_sampler_set_allowed(struct llamad_sampler *s, const uint8_t *mask);

/* Records a token of the sequence (prompt tokens too) for the penalty window. */
void llamad_sampler_accept(struct llamad_sampler *s, int32_t token);

/* Picks the next token from n_vocab logits (not modified). Does not accept it. */
int32_t llamad_sampler_sample(struct llamad_sampler *s, const float *logits);

#endif
