#include "llamad/base/random.h"

#include <math.h>

uint64_t llamad_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += LLAMAD_SPLITMIX64_STEP);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float llamad_random_normal(uint64_t *state)
{
    /* u1 in (0, 1], so the logarithm is finite */
    double u1 = ((double)(llamad_splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(llamad_splitmix64(state) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
