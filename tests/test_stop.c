#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/model/stop.h"

/* A matcher over NUL-terminated stop strings plus the text it released so far. */
struct fixture {
    struct llamad_stop *stop;
    struct llamad_buf out;
    bool stopped;
};

static void setup_stops(struct fixture *f, const char *const *stops, size_t n)
{
    size_t lens[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(stops[i]);
    f->stop = llamad_stop_create(stops, lens, n);
    assert_non_null(f->stop);
    f->out = (struct llamad_buf)LLAMAD_BUF_INIT;
    f->stopped = false;
}

static void teardown_stops(struct fixture *f)
{
    llamad_stop_free(f->stop);
    llamad_buf_free(&f->out);
}

static void push(struct fixture *f, const char *text)
{
    assert_int_equal(llamad_stop_push(f->stop, text, strlen(text), &f->out, &f->stopped),
                     LLAMAD_OK);
}

static void finish(struct fixture *f)
{
    assert_int_equal(llamad_stop_finish(f->stop, &f->out), LLAMAD_OK);
}

/* Released text so far, "" when nothing was ever appended. */
static const char *released(const struct fixture *f)
{
    return f->out.len ? f->out.data : "";
}

static void test_split_across_two_pushes(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"STOP"}, 1);
    push(&f, "Hello ST");
    assert_string_equal(released(&f), "Hello ");
    assert_false(f.stopped);
    push(&f, "OP world");
    assert_string_equal(released(&f), "Hello ");
    assert_true(f.stopped);
    teardown_stops(&f);
}

static void test_split_across_three_pushes(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"<|end|>"}, 1);
    push(&f, "abc<");
    assert_string_equal(released(&f), "abc");
    push(&f, "|end");
    assert_string_equal(released(&f), "abc");
    assert_false(f.stopped);
    push(&f, "|>xyz");
    assert_string_equal(released(&f), "abc");
    assert_true(f.stopped);
    teardown_stops(&f);
}

static void test_released_when_no_stop_can_start(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"XYZ"}, 1);
    push(&f, "Hello");
    assert_string_equal(released(&f), "Hello");
    push(&f, " XY");
    assert_string_equal(released(&f), "Hello ");
    assert_false(f.stopped);
    teardown_stops(&f);
}

static void test_prefix_then_divergence(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"abc"}, 1);
    push(&f, "ab");
    assert_string_equal(released(&f), "");
    push(&f, "d");
    assert_string_equal(released(&f), "abd");
    assert_false(f.stopped);
    teardown_stops(&f);
}

static void test_overlapping_candidates(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"aab"}, 1);
    push(&f, "a");
    push(&f, "a");
    assert_string_equal(released(&f), "");
    push(&f, "a"); /* "aaa": only the last "aa" can still start "aab" */
    assert_string_equal(released(&f), "a");
    push(&f, "b");
    assert_string_equal(released(&f), "a");
    assert_true(f.stopped);
    teardown_stops(&f);

    setup_stops(&f, (const char *[]){"aab"}, 1);
    push(&f, "aaab");
    assert_string_equal(released(&f), "a");
    assert_true(f.stopped);
    teardown_stops(&f);
}

static void test_earliest_stop_wins(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"world", "lo"}, 2);
    push(&f, "hello world");
    assert_string_equal(released(&f), "hel");
    assert_true(f.stopped);
    teardown_stops(&f);

    /* The longer one starts first, though the shorter ends first. */
    setup_stops(&f, (const char *[]){"bc", "abcd"}, 2);
    push(&f, "xabcd");
    assert_string_equal(released(&f), "x");
    assert_true(f.stopped);
    teardown_stops(&f);

    /* Held text from an earlier push counts too. */
    setup_stops(&f, (const char *[]){"END", "ENDX"}, 2);
    push(&f, "1 EN");
    assert_string_equal(released(&f), "1 ");
    push(&f, "D 2 ENDX");
    assert_string_equal(released(&f), "1 ");
    assert_true(f.stopped);
    teardown_stops(&f);
}

static void test_multibyte_stop(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"。", "→X"}, 2);
    push(&f, "日本");
    assert_string_equal(released(&f), "日本");
    push(&f, "a→");
    assert_string_equal(released(&f), "日本a"); /* the arrow may start "→X" */
    push(&f, "Y");
    assert_string_equal(released(&f), "日本a→Y");
    push(&f, "語。です");
    assert_string_equal(released(&f), "日本a→Y語");
    assert_true(f.stopped);
    teardown_stops(&f);

    /* "è" and "é" share their first byte: not a prefix of each other. */
    setup_stops(&f, (const char *[]){"é!"}, 1);
    push(&f, "café");
    assert_string_equal(released(&f), "caf");
    push(&f, "è");
    assert_string_equal(released(&f), "caféè");
    push(&f, "é");
    push(&f, "!");
    assert_string_equal(released(&f), "caféè");
    assert_true(f.stopped);
    teardown_stops(&f);
}

static void test_finish_releases_held_tail(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"abc"}, 1);
    push(&f, "xab");
    assert_string_equal(released(&f), "x");
    finish(&f);
    assert_string_equal(released(&f), "xab");
    assert_false(f.stopped);
    teardown_stops(&f);
}

static void test_no_stops_pass_through(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, NULL, 0);
    push(&f, "any");
    push(&f, " text");
    assert_string_equal(released(&f), "any text");
    finish(&f);
    assert_string_equal(released(&f), "any text");
    assert_false(f.stopped);
    teardown_stops(&f);

    /* Empty stop strings are ignored. */
    setup_stops(&f, (const char *[]){"", ""}, 2);
    push(&f, "abc");
    assert_string_equal(released(&f), "abc");
    assert_false(f.stopped);
    teardown_stops(&f);
}

static void test_nothing_after_stop(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"##"}, 1);
    push(&f, "a##b");
    assert_string_equal(released(&f), "a");
    assert_true(f.stopped);
    f.stopped = false;
    push(&f, "more text");
    assert_true(f.stopped);
    finish(&f);
    assert_string_equal(released(&f), "a");
    teardown_stops(&f);
}

static void test_long_stream_holds_little(void **state)
{
    (void)state;
    struct fixture f;
    setup_stops(&f, (const char *[]){"aaaab"}, 1);
    size_t pushed = 0;
    for (int i = 0; i < 10000; i++) {
        push(&f, "a");
        pushed++;
        /* At most len("aaaab") - 1 bytes are ever held. */
        assert_true(f.out.len + 4 >= pushed);
    }
    push(&f, "b");
    assert_int_equal(f.out.len, pushed - 4);
    assert_true(f.stopped);
    teardown_stops(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_across_two_pushes),
        cmocka_unit_test(test_split_across_three_pushes),
        cmocka_unit_test(test_released_when_no_stop_can_start),
        cmocka_unit_test(test_prefix_then_divergence),
        cmocka_unit_test(test_overlapping_candidates),
        cmocka_unit_test(test_earliest_stop_wins),
        cmocka_unit_test(test_multibyte_stop),
        cmocka_unit_test(test_finish_releases_held_tail),
        cmocka_unit_test(test_no_stops_pass_through),
        cmocka_unit_test(test_nothing_after_stop),
        cmocka_unit_test(test_long_stream_holds_little),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
