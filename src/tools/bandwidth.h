/* The machine's DRAM read bandwidth, measured the way a memory-bound decode reads
 * weights: several threads each streaming their own slice of one buffer much
 * larger than the last-level cache. Private to llamad-bench. */
#ifndef LLAMAD_TOOLS_BANDWIDTH_H
#define LLAMAD_TOOLS_BANDWIDTH_H

#include <stddef.h>

struct bandwidth {
    double gbps;  /* median pass, in 1e9 bytes/s */
    size_t bytes; /* bytes read per pass */
    int passes;
    const char *isa; /* the summing loop used: "avx512f", "avx2" or "scalar" */
};

/* Reads a buffer of 1 GiB, or four times the last-level cache when that is larger,
 * once to touch it and then `passes` timed times with n_threads threads. Returns 0,
 * or a negative LLAMAD_E* code with a message in err. */
int bandwidth_measure(int n_threads, int passes, struct bandwidth *out, char *err, size_t errsz);

#endif
