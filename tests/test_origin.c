/* Origin, Host and Sec-Fetch-Site checks (origin.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "llamad/server/origin.h"

/* fn takes every name of yes (NULL-terminated) and none of no. */
static void expect(bool (*fn)(const char *), const char *const *yes, const char *const *no)
{
    for (; *yes; yes++)
        if (!fn(*yes))
            fail_msg("'%s' refused", *yes);
    for (; *no; no++)
        if (fn(*no))
            fail_msg("'%s' taken", *no);
}

static void test_address_is_loopback(void **state)
{
    (void)state;
    expect(llamad_address_is_loopback,
           (const char *[]){"localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "::1",
                            "0:0:0:0:0:0:0:1", NULL},
           (const char *[]){"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "evil.example", "localhost.",
                            "localhost.evil.example", "127.0.0.1.evil.example", "127.1", "", NULL});
}

static void test_host_is_loopback(void **state)
{
    (void)state;
    expect(llamad_host_is_loopback,
           (const char *[]){"localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:80",
                            "127.9.9.9:65535", "[::1]", "[::1]:8080", "LOCALHOST:1", NULL},
           (const char *[]){"evil.example", "evil.example:8080", "::1", "[::1", "[::1]x",
                            "localhost:", "localhost:x", "localhost:99999", "127.0.0.1:80:80",
                            "[::2]:80", "user@localhost", "", "localhost/path", ":8080", NULL});
}

static void test_origin_is_same(void **state)
{
    (void)state;
    assert_true(llamad_origin_is_same("http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_true(llamad_origin_is_same("HTTP://LocalHost:8080", "localhost:8080"));
    assert_true(llamad_origin_is_same("http://example.com", "example.com:80"));
    assert_true(llamad_origin_is_same("http://example.com:80", "example.com"));
    assert_true(llamad_origin_is_same("http://[::1]:8080", "[::1]:8080"));
    assert_false(llamad_origin_is_same("https://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_false(llamad_origin_is_same("http://127.0.0.1:3000", "127.0.0.1:8080"));
    assert_false(llamad_origin_is_same("http://localhost:8080", "127.0.0.1:8080"));
    assert_false(llamad_origin_is_same("http://evil.example", "127.0.0.1:8080"));
    assert_false(llamad_origin_is_same("null", "127.0.0.1:8080"));
    assert_false(llamad_origin_is_same("http://127.0.0.1:8080/", "127.0.0.1:8080"));
    assert_false(llamad_origin_is_same("http://127.0.0.1:8080", NULL));
}

static void test_origin_valid(void **state)
{
    (void)state;
    assert_true(llamad_origin_valid("https://app.example"));
    assert_true(llamad_origin_valid("http://localhost:3000"));
    assert_true(llamad_origin_valid("http://[::1]:3000"));
    assert_false(llamad_origin_valid("app.example"));
    assert_false(llamad_origin_valid("https://app.example/"));
    assert_false(llamad_origin_valid("https://"));
    assert_false(llamad_origin_valid("ftp://app.example"));
    assert_false(llamad_origin_valid("null"));
    assert_false(llamad_origin_valid("*"));
}

static void test_check(void **state)
{
    (void)state;
    char *allowed[] = {"https://app.example"};
    const struct llamad_origin_policy none = {NULL, 0, true}, some = {allowed, 1, true},
                                      open = {NULL, 0, false};
    const char *host = "127.0.0.1:8080";
    /* Programs send neither header; a page of the daemon's own origin is fine. */
    assert_int_equal(llamad_origin_check(&none, host, NULL, NULL), LLAMAD_ORIGIN_OK);
    assert_int_equal(llamad_origin_check(&none, NULL, NULL, NULL), LLAMAD_ORIGIN_OK);
    assert_int_equal(llamad_origin_check(&none, host, "http://127.0.0.1:8080", "same-origin"),
                     LLAMAD_ORIGIN_OK);
    assert_int_equal(llamad_origin_check(&none, host, NULL, "none"), LLAMAD_ORIGIN_OK);
    /* Another site's page. */
    assert_int_equal(llamad_origin_check(&none, host, "https://app.example", "cross-site"),
                     LLAMAD_ORIGIN_FORBIDDEN);
    assert_int_equal(llamad_origin_check(&none, host, "http://127.0.0.1:3000", "same-site"),
                     LLAMAD_ORIGIN_FORBIDDEN);
    assert_int_equal(llamad_origin_check(&none, host, NULL, "Cross-Site"), LLAMAD_ORIGIN_FORBIDDEN);
    assert_int_equal(llamad_origin_check(&none, host, "null", NULL), LLAMAD_ORIGIN_FORBIDDEN);
    /* A listed one gets CORS, the others still 403. */
    assert_int_equal(llamad_origin_check(&some, host, "https://app.example", "cross-site"),
                     LLAMAD_ORIGIN_CORS);
    assert_int_equal(llamad_origin_check(&some, host, "HTTPS://APP.example", NULL),
                     LLAMAD_ORIGIN_CORS);
    assert_int_equal(llamad_origin_check(&some, host, "https://evil.example", "cross-site"),
                     LLAMAD_ORIGIN_FORBIDDEN);
    assert_int_equal(llamad_origin_check(&some, host, "http://app.example", NULL),
                     LLAMAD_ORIGIN_FORBIDDEN);
    /* DNS rebinding: only on loopback, and before any origin. */
    assert_int_equal(llamad_origin_check(&some, "evil.example", "https://app.example", NULL),
                     LLAMAD_ORIGIN_MISDIRECTED);
    assert_int_equal(llamad_origin_check(&none, "evil.example:8080", NULL, NULL),
                     LLAMAD_ORIGIN_MISDIRECTED);
    assert_int_equal(llamad_origin_check(&open, "evil.example:8080", NULL, NULL), LLAMAD_ORIGIN_OK);
    assert_int_equal(
        llamad_origin_check(&open, "evil.example:8080", "http://evil.example:8080", NULL),
        LLAMAD_ORIGIN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_is_loopback),
        cmocka_unit_test(test_host_is_loopback),
        cmocka_unit_test(test_origin_is_same),
        cmocka_unit_test(test_origin_valid),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
