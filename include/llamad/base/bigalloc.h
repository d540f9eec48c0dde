/* Large buffers that the kernels stream through (the packed weights, the KV
 * cache pool): aligned to 2 MiB and, where Linux allows it, backed by
 * transparent huge pages, so reading them misses the TLB 512 times less often. */
#ifndef LLAMAD_BIGALLOC_H
#define LLAMAD_BIGALLOC_H

#include <stddef.h>

/* At least `bytes` (rounded up to 2 MiB), or NULL; release with free(). The
 * memory is not touched: pages arrive on first write. */
void *llamad_big_alloc(size_t bytes);

/* Makes every page of [p, p + bytes) present and writable, leaving their
 * contents as they are, so later writes there cost no page fault. */
void llamad_big_prefault(void *p, size_t bytes);

#endif
