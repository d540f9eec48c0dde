/* splitmix64 (Steele, Lea and Flood, 2014): the small generator behind the
 * sampler's seeding, llamad-mkmodel's random weights and the tests' data. Its
 * state advances by LLAMAD_SPLITMIX64_STEP per draw, so the state n draws after
 * a seed is seed + n * LLAMAD_SPLITMIX64_STEP: a stream can be entered at any
 * position without drawing the values before it. */
#ifndef LLAMAD_RANDOM_H
#define LLAMAD_RANDOM_H

#include <stdint.h>

#define LLAMAD_SPLITMIX64_STEP 0x9e3779b97f4a7c15ULL

/* The next 64 random bits of the stream whose state is *state. */
uint64_t llamad_splitmix64(uint64_t *state);

/* A standard normal value (Box-Muller) from the next LLAMAD_RANDOM_NORMAL_DRAWS
 * draws: the state k values after a seed is
 * seed + k * LLAMAD_RANDOM_NORMAL_DRAWS * LLAMAD_SPLITMIX64_STEP. */
#define LLAMAD_RANDOM_NORMAL_DRAWS 2
float llamad_random_normal(uint64_t *state);

#endif
