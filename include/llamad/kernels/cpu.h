/* Which of llamad's kernel sets this process runs.
 *
 * The kernel sets form a ladder, each needing the CPU features of the ones below
 * it: scalar (the plain references), avx2 (AVX2, FMA, F16C), avx512 (AVX-512 F,
 * BW, DQ, VL), vnni (AVX-512 VNNI) and amx (AMX-TILE and AMX-INT8, with the tile
 * state granted by Linux). CPUID decides the highest this CPU runs; LLAMAD_CPU in
 * the environment (one of those names) caps it, so a machine can test every set
 * below its own. Every kernel's chooser asks llamad_cpu_runs(), so a cap applies
 * to all of them at once. Decided on first use and constant for the process. */
#ifndef LLAMAD_CPU_H
#define LLAMAD_CPU_H

#include <stdbool.h>
#include <stddef.h>

enum llamad_cpu_set {
    LLAMAD_CPU_SCALAR,
    LLAMAD_CPU_AVX2,
    LLAMAD_CPU_AVX512,
    LLAMAD_CPU_VNNI,
    LLAMAD_CPU_AMX,
};
#define LLAMAD_CPU_SETS 5

/* The highest set the CPU runs, whatever LLAMAD_CPU says. */
enum llamad_cpu_set llamad_cpu_detected(void);

/* The set in use: the detected one, capped by LLAMAD_CPU. */
enum llamad_cpu_set llamad_cpu_set(void);

/* True when the kernels of `set` may run: set <= llamad_cpu_set(). */
bool llamad_cpu_runs(enum llamad_cpu_set set);

/* "scalar", "avx2", "avx512", "vnni", "amx". */
const char *llamad_cpu_set_name(enum llamad_cpu_set set);

/* Programs call this at start: fails with a message naming the value when
 * LLAMAD_CPU is set to something else than a set's name (the library alone
 * ignores such a value and uses what the CPU runs). */
int llamad_cpu_check_env(char *err, size_t errsz);

/* The set in use, and the cap when LLAMAD_CPU lowered it, e.g. "avx2 (LLAMAD_CPU
 * caps this CPU's vnni)". */
void llamad_cpu_describe(char *out, size_t outsz);

/* Logs llamad_cpu_describe at info level: for programs to call at start. */
void llamad_cpu_log(void);

#endif
