/* 2 MiB-aligned allocations advised into transparent huge pages (see bigalloc.h).
 * With THP set to "madvise" (Debian's default) anonymous memory gets huge pages
 * only when asked for: the packed weights of 110M Q8_0 in 4 KiB pages ran 8
 * sequences decoding at depth 256 ~6 % slower. */
#include "llamad/base/bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2u << 20, SMALL_PAGE = 4096 };

void *llamad_big_alloc(size_t bytes)
{
    if (bytes == 0 || bytes > SIZE_MAX - HUGE_PAGE)
        return NULL;
    const size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, rounded);
#ifdef MADV_HUGEPAGE
    if (p)
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice: without it, small pages */
#endif
    return p;
}

void llamad_big_prefault(void *p, size_t bytes)
{
    if (bytes == 0)
        return;
    const uintptr_t begin = (uintptr_t)p / SMALL_PAGE * SMALL_PAGE;
    const uintptr_t end = ((uintptr_t)p + bytes + SMALL_PAGE - 1) / SMALL_PAGE * SMALL_PAGE;
#ifdef MADV_POPULATE_WRITE
    if (madvise((void *)begin, end - begin, MADV_POPULATE_WRITE) == 0)
        return;
#endif
    /* before Linux 5.14: write each page's first byte back to itself */
    for (uintptr_t page = begin; page < end; page += SMALL_PAGE) {
        volatile uint8_t *b = (volatile uint8_t *)(page < (uintptr_t)p ? (uintptr_t)p : page);
        *b = *b;
    }
}
