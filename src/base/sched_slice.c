#include "llamad/base/sched_slice.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The first version of the kernel's struct sched_attr (sched_setattr(2));
 * Debian 12's C library has no wrapper for these calls. */
struct sched_attr_v0 {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime; /* the slice, for the fair policies */
    uint64_t sched_deadline;
    uint64_t sched_period;
};

enum { ATTR_RESET_ON_FORK = 0x01 }; /* sched_flags: children start as default */

int llamad_sched_short_slice(uint64_t slice_ns)
{
#if defined(SYS_sched_getattr) && defined(SYS_sched_setattr)
    struct sched_attr_v0 attr;
    memset(&attr, 0, sizeof attr);
    if (syscall(SYS_sched_getattr, 0, &attr, (unsigned)sizeof attr, 0u) != 0)
        return -errno;
    if (attr.sched_policy != SCHED_OTHER && attr.sched_policy != SCHED_BATCH)
        return -EINVAL; /* real-time and idle threads have no slice to ask for */
    /* Setting the attributes sets all of them: the policy and nice value go
     * back as they were read, so an operator's nice setting stays, and so does
     * reset-on-fork if it was asked for. */
    attr.size = sizeof attr;
    attr.sched_flags &= ATTR_RESET_ON_FORK;
    attr.sched_runtime = slice_ns;
    attr.sched_deadline = attr.sched_period = 0;
    if (syscall(SYS_sched_setattr, 0, &attr, 0u) != 0)
        return -errno;
    return 0;
#else
    (void)slice_ns;
    return -ENOSYS;
#endif
}
