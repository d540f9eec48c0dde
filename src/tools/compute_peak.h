/* The machine's multiply-accumulate peak for the kernel set in use, measured the
 * way the roofline needs it: every benchmark thread running a loop of the set's
 * widest multiply-accumulate instruction with enough independent accumulators
 * that only the instruction's throughput limits it. Private to llamad-bench and
 * tests/bench_gemm.c. */
#ifndef LLAMAD_TOOLS_COMPUTE_PEAK_H
#define LLAMAD_TOOLS_COMPUTE_PEAK_H

#include <stddef.h>

/* One instruction's peak on the benchmark's threads. */
struct mac_peak {
    const char *isa; /* the instruction, e.g. "vpdpbusd zmm"; NULL when the set has none */
    double gmacs;    /* multiply-accumulates per second, in 1e9, all threads together */
};

struct compute_peak {
    struct mac_peak int8; /* the vector int8 dot product of the quantized kernels */
    struct mac_peak amx;  /* AMX tiles (tdpbssd), when the set is amx */
    struct mac_peak f32;  /* fused multiply-add of the float kernels */
};

/* Measures each instruction the kernel set in use (llamad_cpu_set) has, on
 * n_threads threads, median of `passes` timed passes. Returns 0, or a negative
 * LLAMAD_E* code with a message in err. */
int compute_peak_measure(int n_threads, int passes, struct compute_peak *out, char *err,
                         size_t errsz);

#endif
