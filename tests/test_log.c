#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "llamad/base/log.h"

static void test_escape_control_characters(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(llamad_log_escape(out, sizeof out, "/v1\n2024 info forged\r\t\x1b[1m\x7f"),
                     strlen("/v1\\x0a2024 info forged\\x0d\\x09\\x1b[1m\\x7f"));
    assert_string_equal(out, "/v1\\x0a2024 info forged\\x0d\\x09\\x1b[1m\\x7f");
    /* Printable ASCII and UTF-8 pass unchanged. */
    llamad_log_escape(out, sizeof out, "model \xc3\xa9t\xc3\xa9 \"x\" \\ ~");
    assert_string_equal(out, "model \xc3\xa9t\xc3\xa9 \"x\" \\ ~");
}

static void test_escape_cuts_short_whole(void **state)
{
    (void)state;
    char out[8];
    /* Never half an escape, always terminated, never past cap. */
    assert_int_equal(llamad_log_escape(out, sizeof out, "ab\ncdefgh"), 6);
    assert_string_equal(out, "ab\\x0a");
    assert_int_equal(llamad_log_escape(out, 5, "\n\n"), 4);
    assert_string_equal(out, "\\x0a");
}

/* What llamad_log writes to stderr for one message. */
static char *logged(const char *path)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    llamad_info("request path=%s status=%d", path, 404);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    static char text[4096];
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_log_line_cannot_be_forged(void **state)
{
    (void)state;
    char *text = logged("/x\n2030-01-01T00:00:00.000Z error forged\r\n");
    assert_non_null(strstr(text, "path=/x\\x0a2030-01-01T00:00:00.000Z error forged\\x0d\\x0a "
                                 "status=404\n"));
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1); /* one line */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_control_characters),
        cmocka_unit_test(test_escape_cuts_short_whole),
        cmocka_unit_test(test_log_line_cannot_be_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
