/* The thread pool runs every worker exactly once per call, splits ranges exactly,
 * and survives many back-to-back runs (the pattern of a forward pass). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/kernels/threadpool.h"

struct count_task {
    atomic_int calls;
    atomic_int seen[8];
    int64_t sum_len;
    atomic_llong covered;
};

static void count_worker(void *ctx, int ith, int nth)
{
    struct count_task *t = ctx;
    atomic_fetch_add(&t->calls, 1);
    atomic_fetch_add(&t->seen[ith], 1);
    int64_t b, e;
    llamad_split_range(t->sum_len, ith, nth, &b, &e);
    atomic_fetch_add(&t->covered, e - b);
}

static void test_every_worker_runs_once(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        struct llamad_threadpool *p;
        char err[LLAMAD_ERR_MAX];
        assert_int_equal(llamad_threadpool_create(n, &p, err, sizeof err), LLAMAD_OK);
        assert_int_equal(llamad_threadpool_size(p), n);
        for (int round = 0; round < 500; round++) {
            struct count_task t = {0};
            t.sum_len = 1000 + round;
            llamad_threadpool_run(p, count_worker, &t);
            assert_int_equal(atomic_load(&t.calls), n);
            for (int i = 0; i < n; i++)
                assert_int_equal(atomic_load(&t.seen[i]), 1);
            assert_int_equal(atomic_load(&t.covered), t.sum_len);
        }
        llamad_threadpool_free(p);
    }
}

static void test_runs_after_idle_sleep(void **state)
{
    (void)state;
    struct llamad_threadpool *p;
    assert_int_equal(llamad_threadpool_create(3, &p, NULL, 0), LLAMAD_OK);
    struct count_task t = {0};
    t.sum_len = 10;
    usleep(300 * 1000); /* long enough for the helpers to stop spinning and sleep */
    llamad_threadpool_run(p, count_worker, &t);
    assert_int_equal(atomic_load(&t.calls), 3);
    llamad_threadpool_free(p);
}

static void test_split_range_is_exact_and_balanced(void **state)
{
    (void)state;
    for (int64_t n = 0; n < 50; n++)
        for (int nth = 1; nth <= 7; nth++) {
            int64_t next = 0;
            for (int i = 0; i < nth; i++) {
                int64_t b, e;
                llamad_split_range(n, i, nth, &b, &e);
                assert_int_equal(b, next);
                assert_true(e - b == n / nth || e - b == n / nth + 1);
                next = e;
            }
            assert_int_equal(next, n);
        }
}

static void test_rejects_bad_thread_count(void **state)
{
    (void)state;
    struct llamad_threadpool *p;
    char err[LLAMAD_ERR_MAX];
    assert_int_equal(llamad_threadpool_create(0, &p, err, sizeof err), LLAMAD_EINVAL);
    assert_non_null(strstr(err, "thread count"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_worker_runs_once),
        cmocka_unit_test(test_runs_after_idle_sleep),
        cmocka_unit_test(test_split_range_is_exact_and_balanced),
        cmocka_unit_test(test_rejects_bad_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
