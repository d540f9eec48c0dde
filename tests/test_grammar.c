/* The grammar engine: GBNF parse errors and their positions, sentences each
 * construct accepts and refuses, a JSON grammar over JSON texts, the matcher's
 * partial UTF-8 and its limits. (test_grammar_mask holds the token masks to a
 * brute-force check.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llamad/base/error.h"
#include "llamad/grammar/grammar.h"
#include "testutil.h"

static struct llamad_grammar *parse_ok(const char *text)
{
    struct llamad_grammar *g = NULL;
    char err[LLAMAD_ERR_MAX];
    int rc = llamad_grammar_parse(text, strlen(text), &g, err, sizeof err);
    if (rc)
        fail_msg("grammar %s: %s", text, err);
    return g;
}

struct case_ {
    const char *grammar;
    const char *yes[8]; /* accepted; NULL-terminated */
    const char *no[8];  /* refused */
};

static void check_cases(const struct case_ *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct llamad_grammar *g = parse_ok(c[i].grammar);
        for (size_t k = 0; k < 8 && c[i].yes[k]; k++)
            if (!llamad_grammar_accepts(g, c[i].yes[k], strlen(c[i].yes[k])))
                fail_msg("%s should accept \"%s\"", c[i].grammar, c[i].yes[k]);
        for (size_t k = 0; k < 8 && c[i].no[k]; k++)
            if (llamad_grammar_accepts(g, c[i].no[k], strlen(c[i].no[k])))
                fail_msg("%s should refuse \"%s\"", c[i].grammar, c[i].no[k]);
        llamad_grammar_free(g);
    }
}

static void test_constructs(void **state)
{
    (void)state;
    static const struct case_ cases[] = {
        {"root ::= \"yes\" | \"no\"", {"yes", "no"}, {"", "ye", "yess", "noyes", "Yes"}},
        {"root ::= \"a\\n\\t\\\\\\\"\\x41\\u00e9\\U0001F600\"",
         {"a\n\t\\\"A\xc3\xa9\xf0\x9f\x98\x80"},
         {"a\n\t\\\"A\xc3\xa9", "a"}},
        {"root ::= [a-c0-9_]", {"a", "b", "c", "0", "9", "_"}, {"d", "", "ab", "-", "A"}},
        {"root ::= [^a-c\\n]", {"d", "A", "\xc3\xa9", "\xe2\x82\xac"}, {"a", "c", "\n", "", "dd"}},
        {"root ::= .", {"x", "\xf0\x9f\x98\x80", "\n"}, {"", "xy"}},
        {"root ::= [α-ω]+ [^α-ω]", {"αβγx", "ω日"}, {"x", "αβ", "αβγ", "αβγδ"}},
        {"root ::= [\\u4e00-\\u9fff]{2} \"!\"", {"日本!"}, {"日!", "日本人!", "ab!"}},
        {"root ::= \"a\"? \"b\"", {"ab", "b"}, {"a", "aab", ""}},
        {"root ::= \"a\"* \"b\"", {"b", "ab", "aaaab"}, {"a", "ba", ""}},
        {"root ::= \"ab\"+", {"ab", "abab"}, {"", "a", "aba"}},
        {"root ::= \"a\"{3}", {"aaa"}, {"aa", "aaaa", ""}},
        {"root ::= \"a\"{2,}", {"aa", "aaaaaa"}, {"a", ""}},
        {"root ::= \"a\"{1,3}", {"a", "aa", "aaa"}, {"", "aaaa"}},
        {"root ::= \"a\"{,2} \"b\"", {"b", "ab", "aab"}, {"aaab"}},
        {"root ::= \"a\"{0}", {""}, {"a"}},
        {"root ::= (\"x\" | \"y\" \"z\")* \"!\"",
         {"!", "x!", "yzx!", "xxyz!"},
         {"y!", "xy!", "z!"}},
        {"root ::= ((\"a\" \"b\"?)+ \"c\"){2}", {"acac", "abaacabc"}, {"ac", "abc", "bcac"}},
        {"root ::= arr\narr ::= \"[\" (arr (\",\" arr)*)? \"]\"",
         {"[]", "[[]]", "[[],[[]]]", "[[[[[[]]]]]]"},
         {"[", "[[]", "[],[]", "[,]", "]"}},
        {"root ::= item (\",\" item)*\nitem ::= [0-9]+ | \"(\" root \")\"",
         {"1", "1,22", "(1,2),3", "((7))"},
         {"", "1,", "(1", "()"}},
        {"root ::= ws-a\n  | \"z\"\nws-a ::= \"a\" # a comment\n# another\n",
         {"a", "z"},
         {"az", ""}},
        {"root ::= a | \"\"\na ::= \"x\" a | \"y\"", {"", "y", "xxy"}, {"x", "yy"}},
        {"root ::= [\\]\\-\\[]+", {"]-[", "-"}, {"a", ""}},
    };
    check_cases(cases, sizeof cases / sizeof *cases);
}

static void check_error(const char *text, int code, const char *want)
{
    struct llamad_grammar *g = (struct llamad_grammar *)1;
    char err[LLAMAD_ERR_MAX] = "";
    int rc = llamad_grammar_parse(text, strlen(text), &g, err, sizeof err);
    if (rc != code || g != NULL || !strstr(err, want))
        fail_msg("grammar \"%s\": rc %d, \"%s\"; expected %d and \"%s\"", text, rc, err, code,
                 want);
}

static void test_parse_errors(void **state)
{
    (void)state;
    check_error("root ::= \"abc", LLAMAD_EFORMAT, "line 1, column 10: a string literal");
    check_error("root ::= [a-", LLAMAD_EFORMAT, "line 1, column 10: a character class");
    check_error("root ::= x\n", LLAMAD_EFORMAT, "line 1, column 10: undefined rule 'x'");
    check_error("a ::= \"x\"\n", LLAMAD_EFORMAT, "the grammar has no rule 'root'");
    check_error("root ::= \"a\"\nroot ::= \"b\"", LLAMAD_EFORMAT,
                "line 2, column 1: rule 'root' is defined twice");
    check_error("root ::= \"a\" ::= \"b\"", LLAMAD_EFORMAT, "line 1, column 14: unexpected ':'");
    check_error("root ::= (\"a\"\n\n", LLAMAD_EFORMAT,
                "expected ')' to close the '(' at line 1, column 10");
    check_error("root ::= \"a\")", LLAMAD_EFORMAT, "line 1, column 13: a ')' without its '('");
    check_error("root \"a\"", LLAMAD_EFORMAT, "line 1, column 6: expected '::='");
    check_error("root ::= *", LLAMAD_EFORMAT, "line 1, column 10: '*' with nothing");
    check_error("root ::= [z-a]", LLAMAD_EFORMAT, "line 1, column 11: a range whose end");
    check_error("root ::= \"\\q\"", LLAMAD_EFORMAT, "line 1, column 11: unknown escape");
    check_error("root ::= \"\\uD800\"", LLAMAD_EFORMAT, "not a character");
    check_error("root ::= \"\xff\"", LLAMAD_EFORMAT, "line 1, column 11: invalid UTF-8");
    check_error("root ::= \"a\"{3,2}", LLAMAD_EFORMAT, "maximum is below its minimum");
    check_error("root ::= \"a\"{2", LLAMAD_EFORMAT, "expected '}'");
    check_error("root ::= root \"a\" | \"b\"", LLAMAD_EFORMAT,
                "line 1, column 1: left recursion (a rule that can begin with itself) through "
                "rule 'root'");
    check_error("root ::= x\nx ::= y? root \"a\"\ny ::= \"y\"", LLAMAD_EFORMAT, "left recursion");
    check_error("root ::= (\"a\"?)*", LLAMAD_EFORMAT, "left recursion");
    check_error("ok ::= \"a\"\n\n  root ::= ok é", LLAMAD_EFORMAT,
                "line 3, column 15: unexpected '?'");
    check_error("", LLAMAD_EFORMAT, "no rule 'root'");
    /* Limits: huge counts, deep nesting, too many rules. */
    check_error("root ::= \"a\"{1000000}", LLAMAD_ERANGE, "line 1, column 14: a repetition count");
    check_error("root ::= \"a\"{131000} \"b\"{131000}", LLAMAD_ERANGE, "too large");
    check_error("root ::= \"a\"{0,60000}", LLAMAD_ERANGE, "too large");
    size_t n = 3 * 1000 + 32;
    char *deep = malloc(n);
    assert_non_null(deep);
    size_t k = (size_t)snprintf(deep, n, "root ::= ");
    for (int i = 0; i < 1000; i++)
        deep[k++] = '(';
    deep[k++] = '"', deep[k++] = 'a', deep[k++] = '"';
    for (int i = 0; i < 1000; i++)
        deep[k++] = ')';
    deep[k] = '\0';
    check_error(deep, LLAMAD_ERANGE, "parentheses nested more than 256 deep");
    free(deep);
}

static void test_json_grammar(void **state)
{
    (void)state;
    size_t len;
    char *text = test_read_file(test_data_path("json.gbnf"), &len);
    assert_non_null(text);
    struct llamad_grammar *g = parse_ok(text);
    static const char *const yes[] = {
        "{}",
        " [ ] ",
        "{\"a\": [1, -2.5e+3, true, false, null], \"b\": {\"c\": \"\\u00e9\\n\"}}",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        "0",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "{\"k\":{\"k\":{\"k\":[{}, [], \"\"]}}}",
    };
    static const char *const no[] = {
        "",    "{",      "{\"a\" 1}", "[1,]",        "01", "1.",           "\"\\x\"",    "\"a\nb\"",
        "tru", "{1: 2}", "[1] [2]",   "\"\\u12G4\"", "-",  "\"\xc3\x28\"", "{\"a\":1,}",
    };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!llamad_grammar_accepts(g, yes[i], strlen(yes[i])))
            fail_msg("JSON grammar should accept %s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (llamad_grammar_accepts(g, no[i], strlen(no[i])))
            fail_msg("JSON grammar should refuse %s", no[i]);
    llamad_grammar_free(g);
    free(text);
}

/* Bytes one at a time: a character split anywhere is held until it completes,
 * and a prefix no allowed character starts with is refused at once. */
static void test_partial_utf8(void **state)
{
    (void)state;
    struct llamad_grammar *g =
        parse_ok("root ::= \"\xc3\xa9\" [\\u4e00-\\u4e0f] \"\xf0\x9f\x98\x80\"");
    struct llamad_grammar_matcher *m;
    assert_int_equal(llamad_grammar_matcher_create(g, NULL, &m), 0);
    const uint8_t *s = (const uint8_t *)"\xc3\xa9\xe4\xb8\x80\xf0\x9f\x98\x80";
    for (int i = 0; i < 9; i++) {
        assert_false(llamad_grammar_matcher_can_end(m));
        assert_int_equal(llamad_grammar_matcher_accept_bytes(m, s + i, 1), 0);
    }
    assert_true(llamad_grammar_matcher_can_end(m));
    assert_false(llamad_grammar_matcher_can_continue(m));
    llamad_grammar_matcher_free(m);

    assert_int_equal(llamad_grammar_matcher_create(g, NULL, &m), 0);
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, s, 2), 0);
    /* U+4E10 is past the class: its second byte already rules it out. */
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)"\xe4", 1), 0);
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)"\xb8\x90", 2),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)"\xb9", 1),
                     LLAMAD_EINVAL);
    /* Overlong and stray bytes never pass. */
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)"\xe0\x80", 2),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)"\x80", 1),
                     LLAMAD_EINVAL);
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)"\xb8\x8f", 2), 0);
    llamad_grammar_matcher_free(m);
    llamad_grammar_free(g);

    g = parse_ok("root ::= [^a]*");
    assert_false(llamad_grammar_accepts(g, "\xed\xa0\x80", 3)); /* a surrogate */
    assert_false(llamad_grammar_accepts(g, "\xc0\xaf", 2));     /* overlong */
    assert_false(llamad_grammar_accepts(g, "\xf4\x90\x80\x80", 4));
    assert_false(llamad_grammar_accepts(g, "\xe2\x82", 2)); /* unfinished */
    assert_true(llamad_grammar_accepts(g, "\xf4\x8f\xbf\xbf\xe2\x82\xac", 7));
    llamad_grammar_free(g);
}

/* Ambiguity past the stack limit fails clearly instead of growing. */
static void test_limits(void **state)
{
    (void)state;
    /* Each "a" can start any of 300 alternatives' second halves. */
    char text[8192];
    size_t k = (size_t)snprintf(text, sizeof text, "root ::= x*\nx ::= \"a\" (");
    for (int i = 0; i < 300; i++)
        k += (size_t)snprintf(text + k, sizeof text - k, "%s\"%c\"? \"b%d\"", i ? " | " : "", 'a',
                              i);
    snprintf(text + k, sizeof text - k, ")\n");
    struct llamad_grammar *g = parse_ok(text);
    struct llamad_grammar_matcher *m;
    assert_int_equal(llamad_grammar_matcher_create(g, NULL, &m), 0);
    assert_int_equal(llamad_grammar_matcher_accept_bytes(m, (const uint8_t *)"a", 1),
                     LLAMAD_ERANGE);
    llamad_grammar_matcher_free(m);
    llamad_grammar_free(g);

    /* Deep but legitimate nesting: 5000 levels of arrays. */
    g = parse_ok("root ::= arr\narr ::= \"[\" arr? \"]\"");
    char *deep = malloc(10001);
    assert_non_null(deep);
    memset(deep, '[', 5000);
    memset(deep + 5000, ']', 5000);
    assert_true(llamad_grammar_accepts(g, deep, 10000));
    assert_false(llamad_grammar_accepts(g, deep, 9999));
    free(deep);
    llamad_grammar_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructs),   cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_json_grammar), cmocka_unit_test(test_partial_utf8),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
