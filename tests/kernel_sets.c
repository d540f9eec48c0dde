/* The suite's runs of the lower kernel sets.
 *
 *     kernel_sets SET PROGRAM [ARGS...]   runs PROGRAM with LLAMAD_CPU=SET, or exits
 *                                         77 (meson's skip) when this CPU lacks SET
 *     kernel_sets --summary               one line: the sets the suite exercises on
 *                                         this CPU, and the ones it lacks
 *
 * Every kernel, forward and conformance test runs once with the CPU's own set and
 * once more under each set below it (tests/meson.build), so an AVX-512 machine
 * also tests the AVX2 kernels and the references. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamad/kernels/cpu.h"

static int parse(const char *name)
{
    for (int s = 0; s < LLAMAD_CPU_SETS; s++)
        if (!strcmp(name, llamad_cpu_set_name((enum llamad_cpu_set)s)))
            return s;
    return -1;
}

static int summary(void)
{
    const enum llamad_cpu_set cpu = llamad_cpu_detected();
    printf("kernel sets exercised:");
    for (int s = 0; s <= (int)cpu; s++)
        printf(" %s%s", llamad_cpu_set_name((enum llamad_cpu_set)s),
               s == (int)cpu ? " (this CPU's own)" : "");
    printf("; this CPU lacks:");
    if (cpu + 1 == LLAMAD_CPU_SETS)
        printf(" none");
    for (int s = cpu + 1; s < LLAMAD_CPU_SETS; s++)
        printf(" %s", llamad_cpu_set_name((enum llamad_cpu_set)s));
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--summary"))
        return summary();
    const int set = argc >= 3 ? parse(argv[1]) : -1;
    if (set < 0) {
        fprintf(stderr, "usage: kernel_sets SET PROGRAM [ARGS...] | kernel_sets --summary\n");
        return 2;
    }
    if (set > (int)llamad_cpu_detected()) {
        printf("this CPU lacks the %s kernel set\n", argv[1]);
        return 77;
    }
    setenv("LLAMAD_CPU", argv[1], 1);
    execv(argv[2], argv + 2);
    perror(argv[2]);
    return 127;
}
