#ifndef LLAMAD_SCHED_SLICE_H
#define LLAMAD_SCHED_SLICE_H

#include <stdint.h>

/* Asks the scheduler to run the calling thread, and the threads it creates
 * afterwards, in slices of slice_ns (Linux 6.12 and later take 0.1-100 ms),
 * keeping its policy and nice value. EEVDF lets a thread that wakes up preempt
 * a running one once the running one has had its slice; with short slices all
 * round, a thread that wakes briefly (the event loop with tokens to write) runs
 * within about a slice even when compute threads keep every core busy.
 *
 * Returns 0 when the kernel took the request (one that predates custom slices
 * ignores it), or a negative errno: -EINVAL for a real-time or idle thread,
 * which has no slice; -ENOSYS without the system calls. */
int llamad_sched_short_slice(uint64_t slice_ns);

#endif
