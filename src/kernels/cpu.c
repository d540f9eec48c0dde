#include "llamad/kernels/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/log.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static const char *const set_names[LLAMAD_CPU_SETS] = {"scalar", "avx2", "avx512", "vnni", "amx"};

const char *llamad_cpu_set_name(enum llamad_cpu_set set)
{
    return (unsigned)set < LLAMAD_CPU_SETS ? set_names[set] : "?";
}

/* The index of a set's name, or -1. */
static int parse_set(const char *name)
{
    for (int i = 0; i < LLAMAD_CPU_SETS; i++)
        if (!strcmp(name, set_names[i]))
            return i;
    return -1;
}

#if defined(__x86_64__)

/* Linux hands out the AMX tile state only to processes that ask for it. */
enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };

/* CPUID leaf 7 EDX bits 24 and 25; __builtin_cpu_supports knows them only in newer
 * compilers. Asked once: CPUID traps to the hypervisor on a virtual machine. */
static bool amx_granted(void)
{
    unsigned a, b, c, d;
    const unsigned tile = 1u << 24, int8 = 1u << 25;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & tile) && (d & int8) &&
           syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

/* F16C from CPUID leaf 1 (ECX bit 29) where the compiler's __builtin_cpu_supports
 * does not know "f16c" (clang before 16). */
static bool has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

/* __builtin_cpu_supports also checks that the OS saves the AVX and AVX-512 state. */
static enum llamad_cpu_set detect(void)
{
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()))
        return LLAMAD_CPU_SCALAR;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")))
        return LLAMAD_CPU_AVX2;
    if (!__builtin_cpu_supports("avx512vnni"))
        return LLAMAD_CPU_AVX512;
    return amx_granted() ? LLAMAD_CPU_AMX : LLAMAD_CPU_VNNI;
}

#else

static enum llamad_cpu_set detect(void)
{
    return LLAMAD_CPU_SCALAR;
}

#endif

static enum llamad_cpu_set detected, in_use;

static void decide(void)
{
    detected = detect();
    in_use = detected;
    const char *cap = getenv("LLAMAD_CPU");
    const int capped = cap && *cap ? parse_set(cap) : -1;
    if (capped >= 0 && (enum llamad_cpu_set)capped < detected)
        in_use = (enum llamad_cpu_set)capped;
}

static pthread_once_t decided = PTHREAD_ONCE_INIT;

enum llamad_cpu_set llamad_cpu_detected(void)
{
    pthread_once(&decided, decide);
    return detected;
}

enum llamad_cpu_set llamad_cpu_set(void)
{
    pthread_once(&decided, decide);
    return in_use;
}

bool llamad_cpu_runs(enum llamad_cpu_set set)
{
    return set <= llamad_cpu_set();
}

int llamad_cpu_check_env(char *err, size_t errsz)
{
    const char *cap = getenv("LLAMAD_CPU");
    if (cap && *cap && parse_set(cap) < 0)
        return llamad_fail(err, errsz, LLAMAD_EINVAL,
                           "LLAMAD_CPU is \"%.32s\": expected scalar, avx2, avx512, vnni or amx",
                           cap);
    return LLAMAD_OK;
}

void llamad_cpu_describe(char *out, size_t outsz)
{
    const enum llamad_cpu_set set = llamad_cpu_set(), cpu = llamad_cpu_detected();
    if (set == cpu)
        snprintf(out, outsz, "%s", llamad_cpu_set_name(set));
    else
        snprintf(out, outsz, "%s (LLAMAD_CPU caps this CPU's %s)", llamad_cpu_set_name(set),
                 llamad_cpu_set_name(cpu));
}

void llamad_cpu_log(void)
{
    char set[96];
    llamad_cpu_describe(set, sizeof set);
    llamad_info("kernel set: %s", set);
}
