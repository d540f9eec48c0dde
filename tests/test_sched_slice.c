/* The daemon's short scheduling slices: asking for them keeps the thread's
 * policy and nice value (an operator's `nice` or systemd `Nice=` must stay),
 * the kernel records the slice where it knows slices, threads created later
 * share it, and a thread with no slice to ask for is told so. Each case runs
 * in its own thread, since the attributes are per thread and an idle thread
 * may not return to normal. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "llamad/base/sched_slice.h"

enum { SLICE_NS = 100000 };

struct attr_v0 {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
};

/* What a case saw in its own thread; the main thread asserts on it, because a
 * cmocka assertion may not fail from another thread. */
struct outcome {
    int setup;  /* 0 when the thread's starting policy or nice could be set */
    int result; /* of llamad_sched_short_slice */
    int nice_after, policy_after;
    struct attr_v0 before, after, child; /* child: a thread it created after */
};

static struct attr_v0 current_attr(void)
{
    struct attr_v0 a;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0u) != 0)
        a.policy = UINT32_MAX;
    return a;
}

static void *child_attr(void *arg)
{
    *(struct attr_v0 *)arg = current_attr();
    return NULL;
}

/* Runs the call in a new thread whose policy is `policy`, and nice `nice` for
 * the normal ones. */
struct start {
    int policy, nice;
    struct outcome out;
};

static void *run_case(void *arg)
{
    struct start *c = arg;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    struct sched_param p = {0};
    c->out.setup = sched_setscheduler(0, c->policy, &p);
    if (c->out.setup == 0 && c->policy != SCHED_IDLE)
        c->out.setup = setpriority(PRIO_PROCESS, (id_t)tid, c->nice);
    if (c->out.setup != 0)
        return NULL;
    c->out.before = current_attr();
    c->out.result = llamad_sched_short_slice(SLICE_NS);
    c->out.after = current_attr();
    c->out.policy_after = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
    c->out.nice_after = getpriority(PRIO_PROCESS, (id_t)tid);
    pthread_t child;
    if (pthread_create(&child, NULL, child_attr, &c->out.child) != 0 ||
        pthread_join(child, NULL) != 0)
        c->out.child.policy = UINT32_MAX;
    return NULL;
}

static struct outcome in_thread(int policy, int nice)
{
    struct start c = {.policy = policy, .nice = nice};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_case, &c), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.out.setup, 0);
    return c.out;
}

static void test_keeps_nice_and_records_slice(void **state)
{
    (void)state;
    struct outcome o = in_thread(SCHED_OTHER, 4);
    assert_int_equal(o.result, 0);
    assert_int_equal(o.nice_after, 4);
    assert_int_equal(o.policy_after, SCHED_OTHER);
    /* Kernels that know custom slices (6.12 on) report the slice in effect,
     * the default one before the call; older ones report none. */
    if (o.before.runtime != 0)
        assert_int_equal(o.after.runtime, SLICE_NS);
}

/* The engine's threads are created by the loop thread after it asked: they
 * run in the same short slices, with the same nice value. */
static void test_later_threads_share_the_slice(void **state)
{
    (void)state;
    struct outcome o = in_thread(SCHED_OTHER, 3);
    assert_int_equal(o.result, 0);
    assert_int_equal(o.child.policy, SCHED_OTHER);
    assert_int_equal(o.child.nice, 3);
    if (o.before.runtime != 0)
        assert_int_equal(o.child.runtime, SLICE_NS);
}

static void test_keeps_batch_policy(void **state)
{
    (void)state;
    struct outcome o = in_thread(SCHED_BATCH, 2);
    assert_int_equal(o.result, 0);
    assert_int_equal(o.policy_after, SCHED_BATCH);
    assert_int_equal(o.nice_after, 2);
}

static void test_idle_thread_is_left_alone(void **state)
{
    (void)state;
    struct outcome o = in_thread(SCHED_IDLE, 0);
    assert_int_equal(o.result, -EINVAL);
    assert_int_equal(o.policy_after, SCHED_IDLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_nice_and_records_slice),
        cmocka_unit_test(test_later_threads_share_the_slice),
        cmocka_unit_test(test_keeps_batch_policy),
        cmocka_unit_test(test_idle_thread_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
