/* Allocation failure injection (fault.h) for the faults test build: llamad is
 * linked there with -Wl,--wrap for malloc, calloc, realloc, strdup and strndup,
 * so every allocation of its own code, and cJSON's through the hooks
 * llamad_api_init installs, comes through here first. Allocations inside
 * libmicrohttpd and libuv are theirs and not failed. One request is armed at a
 * time (the test sends them one by one). */
#include "fault.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/log.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static atomic_long countdown; /* allocations until the one that fails; 0: disarmed */
static long armed_with;       /* the request's N (loop thread only) */

/* Whether this allocation is the one to fail: the count reaches 0 exactly once. */
static bool fail_now(void)
{
    long c = atomic_load(&countdown);
    while (c > 0 && !atomic_compare_exchange_weak(&countdown, &c, c - 1))
        ;
    return c == 1;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : __real_strndup(s, n);
}

void fault_request_start(const char *value)
{
    char *end;
    long n = value ? strtol(value, &end, 10) : 0;
    if (n <= 0 || *end)
        return;
    armed_with = n;
    atomic_store(&countdown, n);
}

void fault_request_end(void)
{
    if (!armed_with)
        return;
    long left = atomic_exchange(&countdown, 0);
    if (left == 0)
        llamad_info("fault injection: allocation %ld failed", armed_with);
    else
        llamad_info("fault injection: not reached, %ld allocations", armed_with - left);
    armed_with = 0;
}
