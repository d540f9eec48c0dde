/* Tool calls in generated text (src/server/tool_calls.c): each syntax parsed
 * whole and piece by piece, what is not a call kept as text, and the grammar
 * wrapper of a valid call, with a stand-in converter and with the daemon's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/grammar/grammar.h"
#include "llamad/server/json_schema.h"
#include "llamad/server/tool_calls.h"
#include "testutil.h"

static struct llamad_tool tool_list[] = {
    {.name = "get_weather", .parameters = "{\"type\":\"object\"}"},
    {.name = "add", .description = "Adds", .parameters = "{}"},
};
static struct llamad_tools tools = {
    .tools = tool_list, .n = 2, .choice = LLAMAD_TOOL_CHOICE_AUTO, .parallel = true};

/* What a whole output parses into, fed at once (step 0) or in pieces of step bytes. */
struct parsed {
    char content[1024];
    size_t n_calls;
    char names[4][32];
    char args[4][256];
    char ids[4][32];
    size_t index[4];
};

static void parse(enum llamad_tool_syntax syn, const struct llamad_tools *t, const char *text,
                  size_t step, struct parsed *out)
{
    struct llamad_tool_stream s;
    struct llamad_tool_piece piece = {LLAMAD_BUF_INIT, NULL, 0};
    size_t len = strlen(text), at = 0;
    memset(out, 0, sizeof *out);
    llamad_tool_stream_init(&s, syn, t, 42);
    do {
        size_t n = step && len - at > step ? step : len - at;
        bool end = at + n == len;
        assert_int_equal(llamad_tool_stream_feed(&s, text + at, n, end, &piece), 0);
        at += n;
    } while (at < len);
    assert_true(piece.content.len < sizeof out->content);
    if (piece.content.len)
        memcpy(out->content, piece.content.data, piece.content.len);
    out->n_calls = piece.n_calls;
    for (size_t i = 0; i < piece.n_calls && i < 4; i++) {
        snprintf(out->names[i], sizeof out->names[i], "%s", piece.calls[i].name);
        snprintf(out->args[i], sizeof out->args[i], "%s", piece.calls[i].arguments);
        snprintf(out->ids[i], sizeof out->ids[i], "%s", piece.calls[i].id);
        out->index[i] = piece.calls[i].index;
    }
    llamad_tool_piece_free(&piece);
    llamad_tool_stream_free(&s);
}

/* The same result whole, byte by byte and in pieces of 5 (ids aside: each run
 * draws them from the same seed, so they match too). */
static void parse_all_ways(enum llamad_tool_syntax syn, const struct llamad_tools *t,
                           const char *text, struct parsed *out)
{
    struct parsed other;
    parse(syn, t, text, 0, out);
    for (size_t step = 1; step <= 5; step += 4) {
        parse(syn, t, text, step, &other);
        assert_string_equal(other.content, out->content);
        assert_int_equal(other.n_calls, out->n_calls);
        for (size_t i = 0; i < out->n_calls && i < 4; i++) {
            assert_string_equal(other.names[i], out->names[i]);
            assert_string_equal(other.args[i], out->args[i]);
            assert_string_equal(other.ids[i], out->ids[i]);
        }
    }
}

static void assert_id(const char *id)
{
    assert_int_equal(strlen(id), 29);
    assert_memory_equal(id, "call_", 5);
    for (size_t i = 5; i < 29; i++)
        assert_non_null(
            strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", id[i]));
}

static void test_tagged_call(void **state)
{
    (void)state;
    struct parsed p;
    parse_all_ways(LLAMAD_TOOL_SYNTAX_TAGGED, &tools,
                   "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                   "{\"city\": \"Oslo\", \"days\": [1, 2]}}\n</tool_call>\n",
                   &p);
    assert_string_equal(p.content, "Let me look.");
    assert_int_equal(p.n_calls, 1);
    assert_string_equal(p.names[0], "get_weather");
    assert_string_equal(p.args[0], "{\"city\":\"Oslo\",\"days\":[1,2]}");
    assert_int_equal(p.index[0], 0);
    assert_id(p.ids[0]);
}

static void test_tagged_several_calls(void **state)
{
    (void)state;
    struct parsed p;
    parse_all_ways(LLAMAD_TOOL_SYNTAX_TAGGED, &tools,
                   "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>\n"
                   "<tool_call>{\"name\": \"get_weather\"}</tool_call>",
                   &p);
    assert_string_equal(p.content, ""); /* the blank between the calls is not content */
    assert_int_equal(p.n_calls, 2);
    assert_string_equal(p.names[0], "add");
    assert_string_equal(p.args[0], "{\"a\":1}");
    assert_string_equal(p.names[1], "get_weather");
    assert_string_equal(p.args[1], "{}"); /* no arguments: none */
    assert_int_equal(p.index[1], 1);
    assert_string_not_equal(p.ids[0], p.ids[1]);

    /* parallel_tool_calls false: the first call only */
    struct llamad_tools one = tools;
    one.parallel = false;
    parse_all_ways(LLAMAD_TOOL_SYNTAX_TAGGED, &one,
                   "<tool_call>{\"name\": \"add\", \"arguments\": {}}</tool_call>"
                   "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>",
                   &p);
    assert_int_equal(p.n_calls, 1);
    assert_string_equal(p.names[0], "add");
    assert_string_equal(p.content, "");
}

/* What is not a well-formed call of a declared function is text, as it was. */
static void test_tagged_not_calls(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "Hello <tool_call>{\"name\": \"add\", \"arguments\": {\"a\": }</tool_call> there",
        "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>",
        "<tool_call>{\"name\": \"add\", \"arguments\": [1]}</tool_call>",
        "<tool_call>[{\"name\": \"add\"}]</tool_call>",
        "<tool_call>{\"name\": \"add\"} {\"name\": \"add\"}</tool_call>",
        "<tool_call>{\"name\": \"add\"", /* cut off */
        "a <tool_ca",                    /* a prefix of the tag, then the end */
        "a < b and <tool> </tool_call>", /* no opening tag */
        "x\n\n",                         /* trailing blanks kept without calls */
    };
    struct parsed p;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        parse_all_ways(LLAMAD_TOOL_SYNTAX_TAGGED, &tools, texts[i], &p);
        assert_int_equal(p.n_calls, 0);
        assert_string_equal(p.content, texts[i]);
    }
    /* An unclosed call that is complete JSON is a call (the model ended there). */
    parse_all_ways(LLAMAD_TOOL_SYNTAX_TAGGED, &tools,
                   "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2}}\n", &p);
    assert_int_equal(p.n_calls, 1);
    assert_string_equal(p.args[0], "{\"a\":2}");
}

/* Streamed, nothing that may still become a call is released early, and text
 * around it is not held longer than it must be. */
static void test_tagged_stream_holds_back(void **state)
{
    (void)state;
    struct llamad_tool_stream s;
    struct llamad_tool_piece piece = {LLAMAD_BUF_INIT, NULL, 0};
    llamad_tool_stream_init(&s, LLAMAD_TOOL_SYNTAX_TAGGED, &tools, 1);
    assert_int_equal(llamad_tool_stream_feed(&s, "Hi <tool", strlen("Hi <tool"), false, &piece), 0);
    /* "Hi" is out; the blank after it waits for what follows */
    assert_int_equal(piece.content.len, 2);
    assert_memory_equal(piece.content.data, "Hi", 2);
    assert_int_equal(llamad_tool_stream_feed(&s, "_call>{\"name\": \"add\"}",
                                             strlen("_call>{\"name\": \"add\"}"), false, &piece),
                     0);
    assert_int_equal(piece.content.len, 2);
    assert_int_equal(piece.n_calls, 0);
    assert_int_equal(
        llamad_tool_stream_feed(&s, "</tool_call>", strlen("</tool_call>"), false, &piece), 0);
    assert_int_equal(piece.n_calls, 1);
    assert_int_equal(llamad_tool_stream_feed(&s, " Done", strlen(" Done"), false, &piece), 0);
    assert_int_equal(piece.content.len, 8);
    assert_memory_equal(piece.content.data, "Hi  Done", 8);
    assert_int_equal(llamad_tool_stream_feed(&s, "", strlen(""), true, &piece), 0);
    assert_int_equal(piece.n_calls, 1);
    llamad_tool_piece_free(&piece);
    llamad_tool_stream_free(&s);
}

static void test_llama3_calls(void **state)
{
    (void)state;
    struct parsed p;
    parse_all_ways(LLAMAD_TOOL_SYNTAX_LLAMA3, &tools,
                   " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}", &p);
    assert_int_equal(p.n_calls, 1);
    assert_string_equal(p.content, "");
    assert_string_equal(p.args[0], "{\"city\":\"Oslo\"}");
    parse_all_ways(LLAMAD_TOOL_SYNTAX_LLAMA3, &tools,
                   "{\"name\": \"add\", \"parameters\": {\"a\": 1}}; {\"name\": \"add\", "
                   "\"arguments\": {\"a\": 2}}\n",
                   &p);
    assert_int_equal(p.n_calls, 2);
    assert_string_equal(p.args[1], "{\"a\":2}");
    static const char *const texts[] = {
        "The answer is {\"name\": \"add\"}", /* a call not at the start is text */
        "{\"name\": \"add\", \"parameters\": {}} and more",
        "{\"name\": \"nope\"}",
        "{\"name\": \"add\"",
        "{}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        parse_all_ways(LLAMAD_TOOL_SYNTAX_LLAMA3, &tools, texts[i], &p);
        assert_int_equal(p.n_calls, 0);
        assert_string_equal(p.content, texts[i]);
    }
}

static void test_mistral_calls(void **state)
{
    (void)state;
    struct parsed p;
    /* [TOOL_CALLS] is a control token where the vocabulary has it (no text), else text. */
    static const char *const calls[] = {
        " [{\"name\": \"add\", \"arguments\": {\"a\": 1}}, {\"name\": \"get_weather\", "
        "\"arguments\": {}, \"id\": \"abc123def\"}]",
        "[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 1}}, {\"name\": "
        "\"get_weather\"}]",
    };
    for (size_t i = 0; i < 2; i++) {
        parse_all_ways(LLAMAD_TOOL_SYNTAX_MISTRAL, &tools, calls[i], &p);
        assert_int_equal(p.n_calls, 2);
        assert_string_equal(p.content, "");
        assert_string_equal(p.names[0], "add");
        assert_string_equal(p.args[0], "{\"a\":1}");
        assert_string_equal(p.names[1], "get_weather");
    }
    static const char *const texts[] = {
        "[1, 2]",
        "[{\"name\": \"add\"}, 3]",
        "[]",
        "Sure: [{\"name\": \"add\"}]",
        "[{\"name\": \"add\"}] [{\"name\": \"add\"}]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        parse_all_ways(LLAMAD_TOOL_SYNTAX_MISTRAL, &tools, texts[i], &p);
        assert_int_equal(p.n_calls, 0);
        assert_string_equal(p.content, texts[i]);
    }
}

/* ---- The grammar wrapper ---- */

/* A stand-in converter: every schema's arguments are "{}". */
static int empty_object_rules(const struct cJSON *schema, const char *rule, struct llamad_buf *out,
                              char *err, size_t errsz)
{
    (void)err;
    (void)errsz;
    assert_true(cJSON_IsObject(schema));
    char line[96];
    snprintf(line, sizeof line, "%s ::= \"{}\"\n", rule);
    return llamad_buf_append(out, line, strlen(line));
}

static void grammar(enum llamad_tool_syntax syn, const struct llamad_tools *t, const char *want)
{
    struct llamad_buf b = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX] = "";
    assert_int_equal(llamad_tool_grammar(syn, t, empty_object_rules, &b, err, sizeof err), 0);
    assert_string_equal(b.data, want);
    llamad_buf_free(&b);
}

static void test_grammar(void **state)
{
    (void)state;
    struct llamad_tools t = tools;
    t.choice = LLAMAD_TOOL_CHOICE_REQUIRED;
    grammar(LLAMAD_TOOL_SYNTAX_TAGGED, &t,
            "root ::= tool-call (\"\\n\" tool-call)*\n"
            "tool-call ::= \"<tool_call>\\n{\\\"name\\\": \" tool-fn \"}\\n</tool_call>\"\n"
            "tool-fn ::= fn-0 | fn-1\n"
            "fn-0 ::= \"\\\"get_weather\\\", \\\"arguments\\\": \" fn-0-args\n"
            "fn-0-args ::= \"{}\"\n"
            "fn-1 ::= \"\\\"add\\\", \\\"arguments\\\": \" fn-1-args\n"
            "fn-1-args ::= \"{}\"\n");
    t.choice = LLAMAD_TOOL_CHOICE_NAMED;
    t.named = 1;
    t.parallel = false;
    grammar(LLAMAD_TOOL_SYNTAX_LLAMA3, &t,
            "root ::= tool-call\n"
            "tool-call ::= \"{\\\"name\\\": \" tool-fn \"}\"\n"
            "tool-fn ::= fn-1\n"
            "fn-1 ::= \"\\\"add\\\", \\\"parameters\\\": \" fn-1-args\n"
            "fn-1-args ::= \"{}\"\n");
    t.parallel = true;
    grammar(LLAMAD_TOOL_SYNTAX_MISTRAL, &t,
            "root ::= \"[\" tool-call (\", \" tool-call)* \"]\"\n"
            "tool-call ::= \"{\\\"name\\\": \" tool-fn \"}\"\n"
            "tool-fn ::= fn-1\n"
            "fn-1 ::= \"\\\"add\\\", \\\"arguments\\\": \" fn-1-args\n"
            "fn-1-args ::= \"{}\"\n");
}

/* The daemon's converter: two functions whose schemas name the same $defs share
 * one grammar, which accepts their calls and nothing else; a schema outside the
 * converter's subset is refused naming its function. */
static void test_grammar_with_schemas(void **state)
{
    (void)state;
    static struct llamad_tool with_defs[] = {
        {.name = "pick",
         .parameters = "{\"$defs\":{\"n\":{\"enum\":[1,2]}},\"type\":\"object\","
                       "\"properties\":{\"x\":{\"$ref\":\"#/$defs/n\"}},\"required\":[\"x\"],"
                       "\"additionalProperties\":false}"},
        {.name = "say",
         .parameters = "{\"$defs\":{\"n\":{\"type\":\"string\",\"maxLength\":3}},"
                       "\"type\":\"object\",\"properties\":{\"s\":{\"$ref\":\"#/$defs/n\"}},"
                       "\"required\":[\"s\"],\"additionalProperties\":false}"},
    };
    struct llamad_tools t = {
        .tools = with_defs, .n = 2, .choice = LLAMAD_TOOL_CHOICE_REQUIRED, .parallel = true};
    struct llamad_buf b = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX] = "";
    assert_int_equal(llamad_tool_grammar(LLAMAD_TOOL_SYNTAX_MISTRAL, &t, llamad_json_schema_rules,
                                         &b, err, sizeof err),
                     0);
    struct llamad_grammar *g = NULL;
    if (llamad_grammar_parse(b.data, b.len, &g, err, sizeof err) != 0)
        fail_msg("%s\n%s", err, b.data);
    static const char *const good[] = {
        "[{\"name\": \"pick\", \"arguments\": {\"x\": 2}}]",
        "[{\"name\": \"say\", \"arguments\": {\"s\":\"abc\"}}, "
        "{\"name\": \"pick\", \"arguments\": { \"x\":1 }}]",
    };
    static const char *const bad[] = {
        "[{\"name\": \"pick\", \"arguments\": {\"x\": 3}}]",
        "[{\"name\": \"say\", \"arguments\": {\"s\": \"abcd\"}}]",
        "[{\"name\": \"say\", \"arguments\": {\"s\": 1}}]",
        "[{\"name\": \"other\", \"arguments\": {}}]",
        "",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(llamad_grammar_accepts(g, good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(llamad_grammar_accepts(g, bad[i], strlen(bad[i])));
    llamad_grammar_free(g);
    llamad_buf_free(&b);

    with_defs[1].parameters = "{\"not\":{}}";
    assert_int_equal(llamad_tool_grammar(LLAMAD_TOOL_SYNTAX_TAGGED, &t, llamad_json_schema_rules,
                                         &b, err, sizeof err),
                     LLAMAD_EUNSUPPORTED);
    assert_non_null(strstr(err, "the parameters of 'say': unsupported keyword 'not'"));
    llamad_buf_free(&b);
}

/* What the grammar makes the model write is what the parser reads as calls. */
static void test_grammar_output_parses(void **state)
{
    (void)state;
    struct parsed p;
    parse_all_ways(LLAMAD_TOOL_SYNTAX_TAGGED, &tools,
                   "<tool_call>\n{\"name\": \"add\", \"arguments\": {}}\n</tool_call>\n"
                   "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>",
                   &p);
    assert_int_equal(p.n_calls, 2);
    parse_all_ways(
        LLAMAD_TOOL_SYNTAX_LLAMA3, &tools,
        "{\"name\": \"add\", \"parameters\": {}};{\"name\": \"add\", \"parameters\": {}}", &p);
    assert_int_equal(p.n_calls, 2);
    parse_all_ways(
        LLAMAD_TOOL_SYNTAX_MISTRAL, &tools,
        "[{\"name\": \"add\", \"arguments\": {}}, {\"name\": \"add\", \"arguments\": {}}]", &p);
    assert_int_equal(p.n_calls, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tagged_call),
        cmocka_unit_test(test_tagged_several_calls),
        cmocka_unit_test(test_tagged_not_calls),
        cmocka_unit_test(test_tagged_stream_holds_back),
        cmocka_unit_test(test_llama3_calls),
        cmocka_unit_test(test_mistral_calls),
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_grammar_with_schemas),
        cmocka_unit_test(test_grammar_output_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
