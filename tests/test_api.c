/* The HTTP API's JSON: request validation (one check per rule, each naming the
 * param the error must carry), defaults, and response bodies parsed back. */
#include <math.h>
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

#include "llamad/base/error.h"
#include "llamad/base/utf8.h"
#include "llamad/format/gguf.h"
#include "llamad/server/api_request.h"
#include "llamad/server/api_response.h"
#include "llamad/server/tool_calls.h"
#include "llamad/tokenizer/tokenizer.h"
#include "testutil.h"

static struct llamad_tokenizer *tok;

static const struct llamad_api_limits lim = {
    .n_vocab = 512,
    .max_stops = 4,
    .max_stop_len = 16,
    .max_top_logprobs = 20,
};

static int setup(void **state)
{
    (void)state;
    tok = test_load_tokenizer(test_model_path("stories260K.gguf"));
    return tok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    llamad_tokenizer_free(tok);
    return 0;
}

/* ---- Request helpers ---- */

static int parse_len(enum llamad_api_kind kind, const char *body, size_t len,
                     struct llamad_api_request *r, struct llamad_api_error *e)
{
    memset(e, 0, sizeof *e);
    return llamad_api_parse_request(kind, body, len, &lim, r, e);
}

static bool request_empty(const struct llamad_api_request *r)
{
    return !r->model && !r->prompt && !r->gen.prompt && !r->messages && !r->gen.logit_bias &&
           !r->gen.stops && !r->gen.stop_lens && r->gen.n_stops == 0 && r->n_messages == 0 &&
           !r->grammar && !r->gen.grammar && !r->tools.tools && r->tools.n == 0;
}

static void check_rejected_len(enum llamad_api_kind kind, const char *body, size_t len,
                               const char *param, int line)
{
    struct llamad_api_request r;
    struct llamad_api_error e;
    int rc = parse_len(kind, body, len, &r, &e);
    bool empty = request_empty(&r);
    llamad_api_request_free(&r);
    if (rc != 400 || e.status != 400 || strcmp(e.type, "invalid_request_error") != 0 ||
        strcmp(e.param, param) != 0 || !empty || !e.message[0])
        fail_msg("line %d: %s -> rc %d, status %d, type '%s', param '%s' (want 400 '%s'), "
                 "empty %d: %s",
                 line, body, rc, e.status, e.type, e.param, param, empty, e.message);
}

#define REJECT(kind, body, param) check_rejected_len(kind, body, strlen(body), param, __LINE__)
#define REJECT_LEN(kind, body, len, param) check_rejected_len(kind, body, len, param, __LINE__)

static void check_accepted(enum llamad_api_kind kind, const char *body,
                           struct llamad_api_request *r, int line)
{
    struct llamad_api_error e;
    int rc = parse_len(kind, body, strlen(body), r, &e);
    if (rc != 0)
        fail_msg("line %d: %s -> %d (param '%s'): %s", line, body, rc, e.param, e.message);
}

#define ACCEPT(kind, body, r) check_accepted(kind, body, r, __LINE__)

/* Accepted and nothing more to look at. */
#define ACCEPT_ONLY(kind, body)                                                                    \
    do {                                                                                           \
        struct llamad_api_request r_;                                                              \
        check_accepted(kind, body, &r_, __LINE__);                                                 \
        llamad_api_request_free(&r_);                                                              \
    } while (0)

#define C LLAMAD_API_COMPLETIONS
#define CHAT LLAMAD_API_CHAT
#define NATIVE LLAMAD_API_NATIVE

/* ---- Body-level checks ---- */

static void test_body_not_utf8_rejected(void **state)
{
    (void)state;
    REJECT(C, "{\"prompt\":\"\xff\"}", "");
    REJECT(C, "{\"prompt\":\"\xc0\xaf\"}", "");     /* overlong */
    REJECT(C, "{\"prompt\":\"\xed\xa0\x80\"}", ""); /* raw surrogate */
    REJECT(C, "{\"prompt\":\"x\"}\xe2\x82", "");    /* cut character */
}

static void test_body_not_json_rejected(void **state)
{
    (void)state;
    struct llamad_api_request r;
    struct llamad_api_error e;
    REJECT(C, "", "");
    REJECT(C, "{\"prompt\":", "");
    REJECT(C, "{\"prompt\":\"x\",}", "");
    REJECT(C, "{\"prompt\":\"x\"} trailing", "");
    REJECT(C, "[{\"prompt\":\"x\"}]", "");
    REJECT(C, "\"prompt\"", "");
    REJECT(C, "null", "");
    assert_int_equal(parse_len(C, "{\"prompt\":}", 11, &r, &e), 400);
    assert_non_null(strstr(e.message, "byte 10"));
    ACCEPT_ONLY(C, " \n{\"prompt\":\"x\"}\r\n\t ");
}

static void test_nul_rejected(void **state)
{
    (void)state;
    static const char raw_nul[] = "{\"prompt\":\"a\0b\"}";
    REJECT(C, "{\"prompt\":\"a\\u0000b\"}", "");
    REJECT(C, "{\"prompt\":\"x\",\"stop\":[\"\\u0000\"]}", "");
    REJECT(C, "{\"prompt\\u0000x\":\"x\"}", ""); /* in a key */
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0000\"}]}", "");
    REJECT_LEN(C, raw_nul, sizeof raw_nul - 1, "");
    /* Without four hex digits cJSON reads U+0000 and cuts the string. */
    REJECT(C, "{\"prompt\":\"a\\uzzzzb\"}", "");
    REJECT(C, "{\"prompt\":\"a\\u12\"}", "");
}

static void test_duplicate_keys_rejected(void **state)
{
    (void)state;
    struct llamad_api_request r;
    struct llamad_api_error e;
    REJECT(C, "{\"prompt\":\"x\",\"prompt\":5}", "");
    const char *twice = "{\"prompt\":\"x\",\"n\":1,\"max_tokens\":2,\"n\":1}";
    assert_int_equal(parse_len(C, twice, strlen(twice), &r, &e), 400);
    assert_non_null(strstr(e.message, "'n' appears twice"));
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"1\":1,\"\\u0031\":2}}", ""); /* one key */
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"role\":\"user\"}]}", "");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"a\":{\"prompt\":1},\"b\":[{\"a\":1},{\"a\":2}]}");
}

static void test_escaped_backslash_then_u0000_accepted(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C, "{\"prompt\":\"a\\\\u0000b\"}", &r);
    assert_string_equal(r.prompt, "a\\u0000b");
    assert_int_equal(r.prompt_len, 8);
    llamad_api_request_free(&r);
    ACCEPT(C, "{\"prompt\":\"q\\\"\\\\\\\\u0000\"}",
           &r); /* q"\\u0000: escaped quote, two backslashes */
    assert_string_equal(r.prompt, "q\"\\\\u0000");
    llamad_api_request_free(&r);
}

static void test_lone_surrogate_rejected(void **state)
{
    (void)state;
    struct llamad_api_request r;
    struct llamad_api_error e;
    const char *body = "{\"prompt\":\"ab\\ud800\"}";
    assert_int_equal(parse_len(C, body, strlen(body), &r, &e), 400);
    assert_non_null(strstr(e.message, "unpaired surrogate \\ud800 at byte 13"));
    REJECT(C, "{\"prompt\":\"\\ud800\"}", "");
    REJECT(C, "{\"prompt\":\"\\udc00x\"}", "");
    REJECT(C, "{\"prompt\":\"\\ud800\\u0041\"}", "");
    REJECT(C, "{\"prompt\":\"\\uD800\\n\"}", "");
    ACCEPT(C, "{\"prompt\":\"\\ud83d\\ude00\\u00e9\"}", &r);
    assert_string_equal(r.prompt, "\xf0\x9f\x98\x80\xc3\xa9");
    llamad_api_request_free(&r);
}

/* ---- Field types and ranges ---- */

static void test_wrong_types_rejected(void **state)
{
    (void)state;
    REJECT(C, "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "temperature");
    REJECT(C, "{\"prompt\":\"x\",\"top_p\":true}", "top_p");
    REJECT(C, "{\"prompt\":\"x\",\"top_k\":\"5\"}", "top_k");
    REJECT(C, "{\"prompt\":\"x\",\"stream\":\"yes\"}", "stream");
    REJECT(C, "{\"prompt\":\"x\",\"stream\":1}", "stream");
    REJECT(C, "{\"prompt\":\"x\",\"model\":5}", "model");
    REJECT(C, "{\"prompt\":\"x\",\"user\":{}}", "user");
    REJECT(C, "{\"prompt\":\"x\",\"seed\":\"1\"}", "seed");
    REJECT(C, "{\"prompt\":\"x\",\"max_tokens\":\"10\"}", "max_tokens");
    REJECT(C, "{\"prompt\":\"x\",\"ignore_eos\":1}", "ignore_eos");
    REJECT(C, "{\"prompt\":\"x\",\"stop\":5}", "stop");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":[]}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"echo\":\"no\"}", "echo");
    REJECT(C, "{\"prompt\":5}", "prompt");
    REJECT(C, "{\"prompt\":{\"text\":\"x\"}}", "prompt");
}

static void test_sampling_ranges(void **state)
{
    (void)state;
    REJECT(C, "{\"prompt\":\"x\",\"temperature\":-0.1}", "temperature");
    REJECT(C, "{\"prompt\":\"x\",\"temperature\":2.01}", "temperature");
    REJECT(C, "{\"prompt\":\"x\",\"temperature\":1e400}", "temperature"); /* inf after strtod */
    REJECT(C, "{\"prompt\":\"x\",\"top_p\":1.5}", "top_p");
    REJECT(C, "{\"prompt\":\"x\",\"top_p\":-0.5}", "top_p");
    REJECT(C, "{\"prompt\":\"x\",\"top_k\":-1}", "top_k");
    REJECT(C, "{\"prompt\":\"x\",\"top_k\":2.5}", "top_k");
    REJECT(C, "{\"prompt\":\"x\",\"min_p\":1.01}", "min_p");
    REJECT(C, "{\"prompt\":\"x\",\"min_p\":-0.01}", "min_p");
    REJECT(C, "{\"prompt\":\"x\",\"presence_penalty\":2.5}", "presence_penalty");
    REJECT(C, "{\"prompt\":\"x\",\"presence_penalty\":-2.5}", "presence_penalty");
    REJECT(C, "{\"prompt\":\"x\",\"frequency_penalty\":3}", "frequency_penalty");
    REJECT(C, "{\"prompt\":\"x\",\"repeat_penalty\":0}", "repeat_penalty");
    REJECT(C, "{\"prompt\":\"x\",\"repeat_penalty\":10.5}", "repeat_penalty");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"repeat_last_n\":-2}", "repeat_last_n");
    REJECT(C, "{\"prompt\":\"x\",\"penalty_last_n\":-2}", "penalty_last_n");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"temperature\":0,\"top_p\":0,\"min_p\":1,\"top_k\":0,"
                   "\"presence_penalty\":-2,\"frequency_penalty\":2,\"repeat_penalty\":10}");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"temperature\":2,\"top_p\":1,\"min_p\":0,"
                   "\"repeat_penalty\":0.01,\"penalty_last_n\":-1}");
}

static void test_integers_checked_on_double(void **state)
{
    (void)state;
    REJECT(C, "{\"prompt\":\"x\",\"max_tokens\":1e300}", "max_tokens");
    REJECT(C, "{\"prompt\":\"x\",\"max_tokens\":3.5}", "max_tokens");
    REJECT(C, "{\"prompt\":\"x\",\"max_tokens\":-1}", "max_tokens");
    REJECT(C, "{\"prompt\":\"x\",\"max_tokens\":2147483648}", "max_tokens");
    REJECT(CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":1e300}",
           "max_completion_tokens");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"n_predict\":-2}", "n_predict");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"n_predict\":1e300}", "n_predict");
    REJECT(C, "{\"prompt\":\"x\",\"seed\":1e300}", "seed");
    REJECT(C, "{\"prompt\":\"x\",\"seed\":2.5}", "seed");
    REJECT(C, "{\"prompt\":\"x\",\"seed\":1e16}", "seed");
    REJECT(C, "{\"prompt\":\"x\",\"top_k\":1e300}", "top_k");
    REJECT(C, "{\"prompt\":[1e300]}", "prompt");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"max_tokens\":2147483647,\"seed\":9007199254740992}");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"max_tokens\":3.0,\"seed\":-9007199254740992}");
}

static void test_n_must_be_one(void **state)
{
    (void)state;
    struct llamad_api_request r;
    struct llamad_api_error e;
    const char *body = "{\"prompt\":\"x\",\"n\":2}";
    REJECT(C, body, "n");
    assert_int_equal(parse_len(C, body, strlen(body), &r, &e), 400);
    assert_non_null(strstr(e.message, "n=1"));
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":4}", "n");
    REJECT(C, "{\"prompt\":\"x\",\"n\":0}", "n");
    REJECT(C, "{\"prompt\":\"x\",\"n\":1.5}", "n");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"n\":1}");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"n\":null}");
}

/* ---- Structured output ---- */

/* The grammar a request body gets (NULL when none); the caller frees it. */
static char *grammar_of(enum llamad_api_kind kind, const char *body, int line)
{
    struct llamad_api_request r;
    check_accepted(kind, body, &r, line);
    char *g = r.grammar ? strdup(r.grammar) : NULL;
    if (r.grammar && r.grammar_len != strlen(r.grammar))
        fail_msg("line %d: grammar_len %zu for %zu bytes", line, r.grammar_len, strlen(r.grammar));
    llamad_api_request_free(&r);
    return g;
}

static void check_grammar(enum llamad_api_kind kind, const char *body, const char *want_root,
                          int line)
{
    char *g = grammar_of(kind, body, line);
    if (!want_root ? g != NULL : !g || strncmp(g, want_root, strlen(want_root)) != 0)
        fail_msg("line %d: %s -> grammar %s (want it to start '%s')", line, body, g ? g : "(none)",
                 want_root ? want_root : "(none)");
    free(g);
}

#define GRAMMAR(kind, body, root) check_grammar(kind, body, root, __LINE__)

static void test_response_format(void **state)
{
    (void)state;
#define MSG "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
#define JS(inner) MSG "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":" inner "}}"
    GRAMMAR(CHAT, MSG "\"response_format\":{\"type\":\"text\"}}", NULL);
    GRAMMAR(CHAT, MSG "\"response_format\":null}", NULL);
    GRAMMAR(CHAT, MSG "\"response_format\":{\"type\":\"json_object\"}}", "root ::= object\n");
    GRAMMAR(C, "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_object\"}}",
            "root ::= object\n");
    GRAMMAR(CHAT,
            JS("{\"name\":\"n_1-A\",\"strict\":true,\"description\":\"d\","
               "\"schema\":{\"type\":\"string\"}}"),
            "root ::= string\n");
    GRAMMAR(CHAT, JS("{\"name\":\"n\"}"), "root ::= value\n"); /* no schema: any value */
    GRAMMAR(CHAT, JS("{\"name\":\"n\",\"schema\":{},\"strict\":null}"), "root ::= value\n");
    /* llama.cpp's json_object with a schema. */
    GRAMMAR(CHAT,
            MSG "\"response_format\":{\"type\":\"json_object\",\"schema\":{\"type\":"
                "\"integer\",\"minimum\":0,\"maximum\":9}}}",
            "root ::= [0-9]\n");
    /* llama.cpp's json_schema field, on every endpoint. */
    GRAMMAR(NATIVE, "{\"prompt\":\"x\",\"json_schema\":{\"type\":\"boolean\"}}",
            "root ::= boolean\n");
    GRAMMAR(C, "{\"prompt\":\"x\",\"json_schema\":{\"type\":\"null\"}}", "root ::= null\n");
    GRAMMAR(CHAT, MSG "\"json_schema\":{\"enum\":[1]},\"response_format\":{\"type\":\"text\"}}",
            "root ::= \"1\"\n");
    GRAMMAR(NATIVE, "{\"prompt\":\"x\",\"json_schema\":null}", NULL);

    /* Bad shapes name the param. */
    REJECT(CHAT, MSG "\"response_format\":{\"type\":\"json_schema\"}}",
           "response_format.json_schema");
    REJECT(CHAT, JS("[]"), "response_format.json_schema");
    REJECT(CHAT, JS("{\"schema\":{}}"), "response_format.json_schema.name");
    REJECT(CHAT, JS("{\"name\":\"\",\"schema\":{}}"), "response_format.json_schema.name");
    REJECT(CHAT, JS("{\"name\":\"a b\",\"schema\":{}}"), "response_format.json_schema.name");
    REJECT(CHAT, JS("{\"name\":3,\"schema\":{}}"), "response_format.json_schema.name");
    REJECT(CHAT,
           JS("{\"name\":\"a123456789a123456789a123456789a123456789a123456789a123456789abcde\"}"),
           "response_format.json_schema.name");
    ACCEPT_ONLY(
        CHAT,
        JS("{\"name\":\"a123456789a123456789a123456789a123456789a123456789a123456789abcd\"}"));
    REJECT(CHAT, JS("{\"name\":\"n\",\"schema\":\"x\"}"), "response_format.json_schema.schema");
    REJECT(CHAT, JS("{\"name\":\"n\",\"schema\":[]}"), "response_format.json_schema.schema");
    REJECT(CHAT, JS("{\"name\":\"n\",\"strict\":\"yes\"}"), "response_format.json_schema.strict");
    REJECT(CHAT, JS("{\"name\":\"n\",\"description\":1}"),
           "response_format.json_schema.description");
    REJECT(CHAT, MSG "\"response_format\":{\"type\":\"json_object\",\"schema\":1}}",
           "response_format.schema");
    REJECT(CHAT, MSG "\"response_format\":{\"type\":3}}", "response_format");
    REJECT(C, "{\"prompt\":\"x\",\"json_schema\":\"{}\"}", "json_schema");
    REJECT(C, "{\"prompt\":\"x\",\"json_schema\":[]}", "json_schema");
    /* Schemas outside the subset: a 400 naming the keyword and where it is. */
    struct llamad_api_request r;
    struct llamad_api_error e;
    const char *body = JS("{\"name\":\"n\",\"schema\":{\"properties\":{\"a\":{"
                          "\"patternProperties\":{}}}}}");
    assert_int_equal(parse_len(CHAT, body, strlen(body), &r, &e), 400);
    assert_string_equal(e.param, "response_format.json_schema.schema");
    assert_non_null(strstr(e.message, "unsupported keyword 'patternProperties' at #/properties/a"));
    body = "{\"prompt\":\"x\",\"json_schema\":{\"type\":\"string\",\"pattern\":\"(?=a)\"}}";
    assert_int_equal(parse_len(NATIVE, body, strlen(body), &r, &e), 400);
    assert_string_equal(e.param, "json_schema");
    assert_non_null(strstr(e.message, "'pattern'"));
    REJECT(C, "{\"prompt\":\"x\",\"json_schema\":{\"type\":\"string\",\"maxLength\":5000}}",
           "json_schema");
    /* One constraint at most. */
    REJECT(CHAT, MSG "\"json_schema\":{},\"response_format\":{\"type\":\"json_object\"}}",
           "json_schema");
    REJECT(C, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\\"a\\\"\",\"json_schema\":{}}",
           "grammar");
    REJECT(CHAT,
           MSG "\"grammar\":\"root ::= \\\"a\\\"\",\"response_format\":{\"type\":"
               "\"json_object\"}}",
           "grammar");
    ACCEPT_ONLY(CHAT, MSG "\"grammar\":\"root ::= \\\"a\\\"\",\"response_format\":{\"type\":"
                          "\"text\"}}");
#undef JS
#undef MSG
}

static void test_unsupported_params_rejected(void **state)
{
    (void)state;
#define MSG "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
    REJECT(CHAT, MSG "\"functions\":[]}", "functions");
    REJECT(CHAT, MSG "\"function_call\":\"none\"}", "function_call");
    REJECT(CHAT, MSG "\"response_format\":{\"type\":\"xml\"}}", "response_format");
    REJECT(CHAT, MSG "\"response_format\":\"text\"}", "response_format");
    REJECT(CHAT, MSG "\"response_format\":{}}", "response_format");
    ACCEPT_ONLY(CHAT, MSG "\"tools\":null,\"tool_choice\":null,\"parallel_tool_calls\":null,"
                          "\"response_format\":{\"type\":\"text\"}}");
#undef MSG
    REJECT(C, "{\"prompt\":\"x\",\"echo\":true}", "echo");
    REJECT(C, "{\"prompt\":\"x\",\"best_of\":2}", "best_of");
    REJECT(C, "{\"prompt\":\"x\",\"suffix\":\"end\"}", "suffix");
    REJECT(C, "{\"prompt\":\"x\",\"suffix\":3}", "suffix");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"echo\":false,\"best_of\":1,\"suffix\":\"\"}");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"suffix\":null,\"user\":\"u-1\"}");
}

/* ---- Tools ---- */

#define TOOL(name) "{\"type\":\"function\",\"function\":{\"name\":\"" name "\"}}"
#define WEATHER                                                                                    \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather "     \
    "now\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}"
#define USER "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"

static void test_tools_parsed(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(CHAT, USER "\"tools\":[" WEATHER "," TOOL("a-b_9") "],\"parallel_tool_calls\":false}",
           &r);
    assert_int_equal(r.tools.n, 2);
    assert_string_equal(r.tools.tools[0].name, "get_weather");
    assert_string_equal(r.tools.tools[0].description, "Weather now");
    assert_string_equal(r.tools.tools[0].parameters,
                        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}");
    assert_null(r.tools.tools[1].description);
    assert_string_equal(r.tools.tools[1].parameters, "{}");
    assert_int_equal(r.tools.choice, LLAMAD_TOOL_CHOICE_AUTO); /* OpenAI's default with tools */
    assert_false(r.tools.parallel);
    llamad_api_request_free(&r);

    ACCEPT(CHAT, USER "\"tools\":[" WEATHER "],\"tool_choice\":\"none\"}", &r);
    assert_int_equal(r.tools.choice, LLAMAD_TOOL_CHOICE_NONE);
    assert_true(r.tools.parallel);
    llamad_api_request_free(&r);
    ACCEPT(CHAT, USER "\"tool_choice\":\"none\"}", &r);
    assert_int_equal(r.tools.choice, LLAMAD_TOOL_CHOICE_NONE);
    llamad_api_request_free(&r);
    ACCEPT_ONLY(CHAT, USER "\"tools\":null,\"tool_choice\":null,\"parallel_tool_calls\":null}");
    ACCEPT_ONLY(CHAT, USER "\"tools\":[" WEATHER "],\"tool_choice\":\"auto\"}");
    /* tools on the other endpoints are not read (unknown fields are ignored) */
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"tools\":5}");
}

static void test_tools_refused(void **state)
{
    (void)state;
    REJECT(CHAT, USER "\"tools\":{}}", "tools");
    REJECT(CHAT, USER "\"tools\":[]}", "tools");
    REJECT(CHAT, USER "\"tools\":[5]}", "tools[0]");
    REJECT(CHAT, USER "\"tools\":[{\"type\":\"function\"}]}", "tools[0].function");
    REJECT(CHAT, USER "\"tools\":[{\"type\":\"retrieval\",\"function\":{\"name\":\"f\"}}]}",
           "tools[0].type");
    REJECT(CHAT, USER "\"tools\":[{\"function\":{\"name\":\"f\"}}]}", "tools[0].type");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f") "," TOOL("bad name") "]}", "tools[1].function.name");
    REJECT(CHAT, USER "\"tools\":[" TOOL("") "]}", "tools[0].function.name");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f\\u00e9") "]}", "tools[0].function.name");
    REJECT(CHAT,
           USER "\"tools\":[" TOOL("a234567890123456789012345678901234567890123456789012345678901"
                                   "2345") "]}",
           "tools[0].function.name");
    ACCEPT_ONLY(CHAT, USER
                "\"tools\":[" TOOL("a23456789012345678901234567890123456789012345678901234567890123"
                                   "4") "]}");
    REJECT(CHAT, USER "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":5}}]}",
           "tools[0].function.name");
    REJECT(CHAT,
           USER "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                "[]}}]}",
           "tools[0].function.parameters");
    REJECT(CHAT,
           USER "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":"
                "1}}]}",
           "tools[0].function.description");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f") "," TOOL("f") "]}", "tools[1].function.name");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f") "],\"parallel_tool_calls\":1}",
           "parallel_tool_calls");
    /* tool_choice */
    REJECT(CHAT, USER "\"tool_choice\":\"auto\"}", "tool_choice");
    REJECT(CHAT, USER "\"tool_choice\":\"required\"}", "tool_choice");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f") "],\"tool_choice\":\"always\"}", "tool_choice");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f") "],\"tool_choice\":7}", "tool_choice");
    REJECT(CHAT,
           USER "\"tools\":[" TOOL("f") "],\"tool_choice\":{\"type\":\"function\",\"function\":"
                                        "{\"name\":\"g\"}}}",
           "tool_choice");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f") "],\"tool_choice\":{\"type\":\"function\"}}",
           "tool_choice");
    REJECT(CHAT, USER "\"tools\":[" TOOL("f") "],\"tool_choice\":{\"function\":{\"name\":\"f\"}}}",
           "tool_choice");
    /* The constrained choices: the grammar of a call, in the served template's
     * syntax, compiled; no other constraint beside it. */
    struct llamad_api_request r;
    struct llamad_api_error e;
#define REQUIRED USER "\"tools\":[" WEATHER "," TOOL("f") "],\"tool_choice\":\"required\""
#define NAMED                                                                                      \
    USER "\"tools\":[" TOOL("f") "],\"tool_choice\":{\"type\":\"function\",\"function\":"          \
                                 "{\"name\":\"f\"}}"
    ACCEPT(CHAT, REQUIRED "}", &r);
    assert_int_equal(r.tools.choice, LLAMAD_TOOL_CHOICE_REQUIRED);
    assert_non_null(strstr(r.grammar, "root ::= tool-call (\"\\n\" tool-call)*\n"));
    assert_non_null(strstr(r.grammar, "tool-fn ::= fn-0 | fn-1\n"));
    assert_non_null(strstr(r.grammar, "fn-0-args ::= "));
    assert_non_null(r.gen.grammar);
    llamad_api_request_free(&r);
    ACCEPT(CHAT, NAMED ",\"parallel_tool_calls\":false,\"response_format\":{\"type\":\"text\"}}",
           &r);
    assert_int_equal(r.tools.choice, LLAMAD_TOOL_CHOICE_NAMED);
    assert_int_equal(r.tools.named, 0);
    assert_non_null(strstr(r.grammar, "root ::= tool-call\ntool-call ::= "));
    assert_non_null(strstr(r.grammar, "tool-fn ::= fn-0\n"));
    assert_non_null(r.gen.grammar);
    llamad_api_request_free(&r);
    ACCEPT(CHAT, USER "\"tools\":[" TOOL("f") "],\"tool_choice\":\"auto\"}", &r);
    assert_null(r.grammar); /* auto: the calls are read, the output is free */
    llamad_api_request_free(&r);
    REJECT(CHAT, REQUIRED ",\"grammar\":\"root ::= \\\"x\\\"\"}", "grammar");
    REJECT(CHAT, NAMED ",\"json_schema\":{\"type\":\"string\"}}", "json_schema");
    REJECT(CHAT, REQUIRED ",\"response_format\":{\"type\":\"json_object\"}}", "response_format");
    const char *empty_grammar = NAMED ",\"grammar\":\"\"}";
    assert_int_equal(parse_len(CHAT, empty_grammar, strlen(empty_grammar), &r, &e), 400);
    assert_non_null(strstr(e.message, "'grammar' cannot be given with tool_choice"));
    /* A function's parameters outside the converter's subset. */
    const char *odd =
        USER "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"g\","
             "\"parameters\":{\"patternProperties\":{}}}}],\"tool_choice\":\"required\"}";
    assert_int_equal(parse_len(CHAT, odd, strlen(odd), &r, &e), 400);
    assert_string_equal(e.param, "tools");
    assert_non_null(strstr(e.message, "the parameters of 'g': unsupported keyword"));
    /* Parameters whose grammar is past the engine's size: refused naming "tools". */
    char big[4096] = USER "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"h\","
                          "\"parameters\":{\"type\":\"object\",\"properties\":{";
    for (int k = 0; k < 40; k++)
        snprintf(big + strlen(big), sizeof big - strlen(big),
                 "%s\"p%d\":{\"type\":\"string\",\"maxLength\":1000}", k ? "," : "", k);
    strcat(big, "}}}}],\"tool_choice\":\"required\"}");
    assert_int_equal(parse_len(CHAT, big, strlen(big), &r, &e), 400);
    assert_string_equal(e.param, "tools");
    assert_non_null(strstr(e.message, "the grammar made from 'tools' is refused"));
#undef REQUIRED
#undef NAMED
}

static void test_tool_messages(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(
        CHAT,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},"
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Oslo\\\"}\"}},"
        "{\"id\":\"call_2\",\"function\":{\"name\":\"f\",\"arguments\":\"not json\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"name\":\"get_weather\","
        "\"content\":\"5 C\"},{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"ok\"}]}]}",
        &r);
    assert_int_equal(r.n_messages, 4);
    assert_string_equal(r.messages[1].content, "");
    assert_int_equal(r.messages[1].n_tool_calls, 2);
    assert_string_equal(r.messages[1].tool_calls[0].id, "call_1");
    assert_string_equal(r.messages[1].tool_calls[0].name, "get_weather");
    assert_string_equal(r.messages[1].tool_calls[0].arguments, "{\"city\":\"Oslo\"}");
    assert_string_equal(r.messages[1].tool_calls[1].arguments, "\"not json\"");
    assert_string_equal(r.messages[2].role, "tool");
    assert_string_equal(r.messages[2].tool_call_id, "call_1");
    assert_string_equal(r.messages[2].name, "get_weather");
    assert_string_equal(r.messages[2].content, "5 C");
    assert_null(r.messages[3].name);
    assert_string_equal(r.messages[3].content, "ok");
    llamad_api_request_free(&r);

#define CALL(id, name, args)                                                                       \
    "{\"id\":" id ",\"type\":\"function\",\"function\":{\"name\":" name ",\"arguments\":" args "}" \
    "}"
#define ASSISTANT_CALLS(calls)                                                                     \
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"tool_"         \
    "calls\":" calls "}]}"
    REJECT(CHAT, ASSISTANT_CALLS("{}"), "messages[1].tool_calls");
    REJECT(CHAT, ASSISTANT_CALLS("[5]"), "messages[1].tool_calls[0]");
    REJECT(CHAT, ASSISTANT_CALLS("[" CALL("1", "\"f\"", "\"{}\"") "]"),
           "messages[1].tool_calls[0]");
    REJECT(CHAT, ASSISTANT_CALLS("[" CALL("\"c\"", "\"f g\"", "\"{}\"") "]"),
           "messages[1].tool_calls[0]");
    REJECT(CHAT, ASSISTANT_CALLS("[" CALL("\"c\"", "\"f\"", "{}") "]"),
           "messages[1].tool_calls[0]");
    REJECT(CHAT,
           ASSISTANT_CALLS(
               "[" CALL("\"c\"", "\"f\"", "\"{}\"") "," CALL("\"d\"", "\"f\"", "null") "]"),
           "messages[1].tool_calls[1]");
    REJECT(CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[" CALL(
               "\"c\"", "\"f\"", "\"{}\"") "]}]}",
           "messages[0].tool_calls");
    REJECT(CHAT, ASSISTANT_CALLS("[]"), "messages[1].content"); /* no calls, no content */
    REJECT(CHAT, "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":5,\"content\":\"x\"}]}",
           "messages[0].tool_call_id");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\"}]}",
           "messages[0].content");
    REJECT(
        CHAT,
        "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"c\",\"name\":1,\"content\":\"x\"}]}",
        "messages[0].name");
#undef CALL
#undef ASSISTANT_CALLS
}

/* /apply-template reads tools as /v1/chat/completions does. */
static void test_apply_template_tools(void **state)
{
    (void)state;
    struct llamad_api_request r;
    struct llamad_api_error e;
    const char *body = USER "\"tools\":[" WEATHER "],\"tool_choice\":\"none\"}";
    assert_int_equal(llamad_api_parse_messages(body, strlen(body), &r, &e), 0);
    assert_int_equal(r.tools.n, 1);
    assert_int_equal(r.tools.choice, LLAMAD_TOOL_CHOICE_NONE);
    llamad_api_request_free(&r);
    body = USER "\"tools\":[{\"type\":\"function\"}]}";
    assert_int_equal(llamad_api_parse_messages(body, strlen(body), &r, &e), 400);
    assert_string_equal(e.param, "tools[0].function");
    llamad_api_request_free(&r);
}
#undef USER

static void test_logit_bias(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"5\":1.5,\"511\":-100}}", &r);
    assert_int_equal(r.gen.sampling.n_logit_bias, 2);
    assert_int_equal(r.gen.logit_bias[0].token, 5);
    assert_true(r.gen.logit_bias[0].bias == 1.5f);
    assert_int_equal(r.gen.logit_bias[1].token, 511);
    assert_true(r.gen.logit_bias[1].bias == -100.0f);
    assert_ptr_equal(r.gen.sampling.logit_bias, r.gen.logit_bias);
    assert_int_equal(r.gen.sampling.n_logit_bias, 2);
    llamad_api_request_free(&r);

    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"abc\":1}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"512\":1}}", "logit_bias"); /* == n_vocab */
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"-1\":1}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"1.5\":1}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"\":1}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"99999999999999999999\":1}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"5\":100.5}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"5\":\"x\"}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":{\"5\":false}}", "logit_bias");
    REJECT(C, "{\"prompt\":\"x\",\"logit_bias\":[[5,1]]}", "logit_bias");

    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"logit_bias\":[[5,false],[7,-2.5]]}", &r);
    assert_int_equal(r.gen.sampling.n_logit_bias, 2);
    assert_int_equal(r.gen.logit_bias[0].token, 5);
    assert_true(isinf(r.gen.logit_bias[0].bias) && r.gen.logit_bias[0].bias < 0);
    assert_true(r.gen.logit_bias[1].bias == -2.5f);
    llamad_api_request_free(&r);
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"logit_bias\":{\"9\":false}}", &r);
    assert_true(isinf(r.gen.logit_bias[0].bias));
    llamad_api_request_free(&r);
    REJECT(NATIVE, "{\"prompt\":\"x\",\"logit_bias\":[[\"Hello\",1]]}", "logit_bias");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"logit_bias\":[[600,1]]}", "logit_bias");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"logit_bias\":[[5]]}", "logit_bias");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"logit_bias\":[[5,true]]}", "logit_bias");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"logit_bias\":[5]}", "logit_bias");
}

static void test_stop(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C, "{\"prompt\":\"x\",\"stop\":\"\\n\"}", &r);
    assert_int_equal(r.gen.n_stops, 1);
    assert_string_equal(r.gen.stops[0], "\n");
    assert_int_equal(r.gen.stop_lens[0], 1);
    llamad_api_request_free(&r);

    ACCEPT(C, "{\"prompt\":\"x\",\"stop\":[\"\",\"end\",\"\",\"0123456789abcdef\"]}", &r);
    assert_int_equal(r.gen.n_stops, 2); /* empty strings ignored */
    assert_string_equal(r.gen.stops[0], "end");
    assert_string_equal(r.gen.stops[1], "0123456789abcdef");
    assert_int_equal(r.gen.stop_lens[1], 16);
    llamad_api_request_free(&r);

    ACCEPT(C, "{\"prompt\":\"x\",\"stop\":[]}", &r);
    assert_int_equal(r.gen.n_stops, 0);
    llamad_api_request_free(&r);

    REJECT(C, "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop");
    REJECT(C, "{\"prompt\":\"x\",\"stop\":\"0123456789abcdefg\"}", "stop");
    REJECT(C, "{\"prompt\":\"x\",\"stop\":[\"a\",5]}", "stop");
    ACCEPT_ONLY(C, "{\"prompt\":\"x\",\"stop\":[\"a\",\"\",\"b\",\"c\",\"\",\"d\"]}");
}

static void test_stream_options(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &r);
    assert_true(r.stream);
    assert_true(r.include_usage);
    llamad_api_request_free(&r);
    ACCEPT(C, "{\"prompt\":\"x\",\"stream\":false,\"stream_options\":\"whatever\"}", &r);
    assert_false(r.stream);
    assert_false(r.include_usage);
    llamad_api_request_free(&r);
    ACCEPT(C, "{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", &r);
    assert_false(r.include_usage);
    llamad_api_request_free(&r);
    REJECT(C, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":\"x\"}", "stream_options");
    REJECT(C, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
           "stream_options");
}

static void test_logprobs_completions(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C, "{\"prompt\":\"x\",\"logprobs\":0}", &r);
    assert_true(r.gen.logprobs);
    assert_int_equal(r.gen.top_logprobs, 0);
    llamad_api_request_free(&r);
    ACCEPT(C, "{\"prompt\":\"x\",\"logprobs\":5}", &r);
    assert_true(r.gen.logprobs);
    assert_int_equal(r.gen.top_logprobs, 5);
    llamad_api_request_free(&r);
    ACCEPT(C, "{\"prompt\":\"x\",\"logprobs\":null}", &r);
    assert_false(r.gen.logprobs);
    llamad_api_request_free(&r);
    REJECT(C, "{\"prompt\":\"x\",\"logprobs\":6}", "logprobs");
    REJECT(C, "{\"prompt\":\"x\",\"logprobs\":-1}", "logprobs");
    REJECT(C, "{\"prompt\":\"x\",\"logprobs\":true}", "logprobs");
    REJECT(C, "{\"prompt\":\"x\",\"logprobs\":1.5}", "logprobs");
}

static void test_logprobs_chat(void **state)
{
    (void)state;
    struct llamad_api_request r;
#define MSG "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
    ACCEPT(CHAT, MSG "\"logprobs\":true,\"top_logprobs\":3}", &r);
    assert_true(r.gen.logprobs);
    assert_int_equal(r.gen.top_logprobs, 3);
    llamad_api_request_free(&r);
    ACCEPT(CHAT, MSG "\"logprobs\":true}", &r);
    assert_true(r.gen.logprobs);
    assert_int_equal(r.gen.top_logprobs, 0);
    llamad_api_request_free(&r);
    ACCEPT(CHAT, MSG "\"logprobs\":false}", &r);
    assert_false(r.gen.logprobs);
    llamad_api_request_free(&r);
    REJECT(CHAT, MSG "\"top_logprobs\":2}", "top_logprobs");
    REJECT(CHAT, MSG "\"logprobs\":false,\"top_logprobs\":2}", "top_logprobs");
    REJECT(CHAT, MSG "\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs");
    REJECT(CHAT, MSG "\"logprobs\":1}", "logprobs");
#undef MSG
}

static void test_logprobs_native(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"n_probs\":0}", &r);
    assert_false(r.gen.logprobs);
    llamad_api_request_free(&r);
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"n_probs\":20}", &r);
    assert_true(r.gen.logprobs);
    assert_int_equal(r.gen.top_logprobs, 20);
    llamad_api_request_free(&r);
    REJECT(NATIVE, "{\"prompt\":\"x\",\"n_probs\":21}", "n_probs");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"n_probs\":-1}", "n_probs");
}

static void test_session_id(void **state)
{
    (void)state;
    struct llamad_api_request r;
    char body[512];
    ACCEPT(C, "{\"prompt\":\"x\",\"session_id\":\"user-1.a:b_C\"}", &r);
    assert_string_equal(r.gen.session_id, "user-1.a:b_C");
    llamad_api_request_free(&r);

    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"session_id\":\"%0128d\"}", 0);
    ACCEPT(C, body, &r);
    assert_int_equal(strlen(r.gen.session_id), 128);
    llamad_api_request_free(&r);
    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"session_id\":\"%0129d\"}", 0);
    REJECT(C, body, "session_id");
    REJECT(C, "{\"prompt\":\"x\",\"session_id\":\"a b\"}", "session_id");
    REJECT(C, "{\"prompt\":\"x\",\"session_id\":\"caf\xc3\xa9\"}", "session_id");
    REJECT(C, "{\"prompt\":\"x\",\"session_id\":\"a/b\"}", "session_id");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"session_id\":7}", "session_id");
}

/* X-Session-Id: the body's rules; with session_id too, the same session or a 400. */
static void check_header(const char *body, const char *header, const char *want, int line)
{
    struct llamad_api_request r;
    struct llamad_api_error e;
    check_accepted(C, body, &r, line);
    int rc = llamad_api_session_header(header, &r, &e);
    if (want && rc != 0)
        fail_msg("line %d: header '%s' -> %d: %s", line, header ? header : "(none)", rc, e.message);
    if (want)
        assert_string_equal(r.gen.session_id, want);
    if (!want) {
        if (rc != 400)
            fail_msg("line %d: header '%s' accepted", line, header);
        assert_string_equal(e.param, "X-Session-Id");
        assert_string_equal(e.type, "invalid_request_error");
        assert_non_null(strstr(e.message, "X-Session-Id"));
    }
    llamad_api_request_free(&r);
}

static void test_session_header(void **state)
{
    (void)state;
    char id[200];
    check_header("{\"prompt\":\"x\"}", "user-1.a:b_C", "user-1.a:b_C", __LINE__);
    check_header("{\"prompt\":\"x\"}", NULL, "", __LINE__);
    check_header("{\"prompt\":\"x\"}", "", "", __LINE__); /* empty: no session */
    check_header("{\"prompt\":\"x\",\"session_id\":\"s1\"}", NULL, "s1", __LINE__);
    check_header("{\"prompt\":\"x\",\"session_id\":\"s1\"}", "", "s1", __LINE__);
    check_header("{\"prompt\":\"x\",\"session_id\":\"s1\"}", "s1", "s1", __LINE__);
    check_header("{\"prompt\":\"x\",\"session_id\":\"s1\"}", "s2", NULL, __LINE__);
    check_header("{\"prompt\":\"x\",\"session_id\":\"s1\"}", "S1", NULL, __LINE__);
    snprintf(id, sizeof id, "%0128d", 0);
    check_header("{\"prompt\":\"x\"}", id, id, __LINE__);
    snprintf(id, sizeof id, "%0129d", 0);
    check_header("{\"prompt\":\"x\"}", id, NULL, __LINE__);
    check_header("{\"prompt\":\"x\"}", "a b", NULL, __LINE__);
    check_header("{\"prompt\":\"x\"}", "a,b", NULL, __LINE__);
    check_header("{\"prompt\":\"x\"}", "a/b", NULL, __LINE__);
    check_header("{\"prompt\":\"x\"}", "caf\xc3\xa9", NULL, __LINE__);
    check_header("{\"prompt\":\"x\"}", "a\tb", NULL, __LINE__);
}

/* "grammar": kept as text, compiled once every field is read; a grammar that
 * does not parse is refused naming the place. */
static void test_grammar(void **state)
{
    (void)state;
    struct llamad_api_request r;
    struct llamad_api_error e;
    ACCEPT(C, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\\"a\\\" | [0-9]+\"}", &r);
    assert_non_null(r.gen.grammar);
    assert_string_equal(r.grammar, "root ::= \"a\" | [0-9]+");
    assert_int_equal(r.grammar_len, strlen(r.grammar));
    llamad_api_request_free(&r);
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\\"a\\\"\"}", &r);
    assert_non_null(r.gen.grammar);
    llamad_api_request_free(&r);
    ACCEPT(CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
           "\"grammar\":\"root ::= \\\"a\\\"\"}",
           &r);
    assert_non_null(r.gen.grammar);
    llamad_api_request_free(&r);
    ACCEPT(C, "{\"prompt\":\"x\"}", &r);
    assert_null(r.gen.grammar);
    llamad_api_request_free(&r);

    REJECT(C, "{\"prompt\":\"x\",\"grammar\":7}", "grammar");
    REJECT(NATIVE, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\n  [a-\"}", "grammar");
    assert_int_equal(parse_len(LLAMAD_API_COMPLETIONS,
                               "{\"prompt\":\"x\",\"grammar\":\"root ::= a\\na ::= (\\\"x\\\"\"}",
                               strlen("{\"prompt\":\"x\",\"grammar\":\"root ::= a\\na ::= "
                                      "(\\\"x\\\"\"}"),
                               &r, &e),
                     400);
    assert_string_equal(e.param, "grammar");
    assert_non_null(strstr(e.message, "line 2, column 11"));
    llamad_api_request_free(&r);
    /* The size limit: 64 KiB of text. */
    size_t n = LLAMAD_API_MAX_GRAMMAR + 1;
    char *body = malloc(n + 64);
    assert_non_null(body);
    int k = snprintf(body, n + 64, "{\"prompt\":\"x\",\"grammar\":\"root ::= \\\"a\\\"");
    memset(body + k, ' ', n);
    strcpy(body + k + n, "\"}");
    REJECT(C, body, "grammar");
    free(body);
}

/* ---- Prompt and messages ---- */

static void test_prompt_forms(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C, "{\"prompt\":\"Once upon\"}", &r);
    assert_string_equal(r.prompt, "Once upon");
    assert_int_equal(r.prompt_len, 9);
    assert_null(r.gen.prompt);
    llamad_api_request_free(&r);

    ACCEPT(C, "{\"prompt\":[\"only one\"]}", &r);
    assert_string_equal(r.prompt, "only one");
    llamad_api_request_free(&r);

    ACCEPT(NATIVE, "{\"prompt\":[1,403,511]}", &r);
    assert_null(r.prompt);
    assert_int_equal(r.gen.n_prompt, 3);
    assert_int_equal(r.gen.prompt[0], 1);
    assert_int_equal(r.gen.prompt[1], 403);
    assert_int_equal(r.gen.prompt[2], 511);
    llamad_api_request_free(&r);

    ACCEPT(C, "{\"prompt\":\"\"}", &r);
    assert_string_equal(r.prompt, "");
    llamad_api_request_free(&r);

    REJECT(C, "{\"prompt\":[\"a\",\"b\"]}", "prompt");
    REJECT(C, "{\"prompt\":[]}", "prompt");
    REJECT(NATIVE, "{\"prompt\":[1,\"a\"]}", "prompt");
    REJECT(NATIVE, "{\"prompt\":[\"a\",1]}", "prompt");
    REJECT(C, "{\"prompt\":[512]}", "prompt");
    REJECT(C, "{\"prompt\":[-1]}", "prompt");
    REJECT(C, "{\"prompt\":[1.5]}", "prompt");
    REJECT(C, "{\"prompt\":[[1,2]]}", "prompt");
    REJECT(C, "{\"model\":\"m\"}", "prompt");
    REJECT(NATIVE, "{\"prompt\":null}", "prompt");
}

static void test_chat_messages(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(CHAT,
           "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},"
           "{\"type\":\"text\",\"text\":\"there\"}],\"name\":\"bob\"},"
           "{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\",\"content\":[]}]}",
           &r);
    assert_int_equal(r.n_messages, 4);
    assert_string_equal(r.messages[0].role, "system");
    assert_string_equal(r.messages[0].content, "Be brief.");
    assert_string_equal(r.messages[1].role, "user");
    assert_string_equal(r.messages[1].content, "Hi\nthere"); /* parts joined by newlines */
    assert_string_equal(r.messages[2].role, "assistant");
    assert_string_equal(r.messages[2].content, "");
    assert_string_equal(r.messages[3].content, "");
    assert_null(r.prompt);
    llamad_api_request_free(&r);

    REJECT(CHAT, "{\"messages\":[]}", "messages");
    REJECT(CHAT, "{\"prompt\":\"x\"}", "messages");
    REJECT(CHAT, "{\"messages\":{\"role\":\"user\"}}", "messages");
    REJECT(CHAT, "{\"messages\":[\"hi\"]}", "messages[0]");
    REJECT(CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"content\":"
           "\"x\"}]}",
           "messages[1].tool_call_id");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", "messages[0].role");
    REJECT(CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"User\",\"content\":\"x\"}]}", "messages[0].role");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"assistant\"}]}", "messages[0].content");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content");
    REJECT(CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
           "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}",
           "messages[0].content[1].type");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
           "messages[0].content[0].text");
}

/* ---- Defaults and values ---- */

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C,
           "{\"prompt\":\"x\",\"foo\":1,\"bar\":{\"baz\":[1,null]},\"Temperature\":\"hot\","
           "\"messages\":7,\"n_probs\":\"x\",\"logit_bias\":null}",
           &r);
    assert_true(r.gen.sampling.temperature == 1.0f);
    assert_int_equal(r.gen.sampling.n_logit_bias, 0);
    llamad_api_request_free(&r);
    ACCEPT_ONLY(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"extra\":[]}],"
                      "\"prompt\":5,\"metadata\":{},\"store\":false}");
}

static void check_v1_defaults(enum llamad_api_kind kind, const char *body)
{
    struct llamad_api_request r;
    ACCEPT(kind, body, &r);
    assert_int_equal(r.kind, kind);
    assert_true(r.gen.sampling.temperature == 1.0f);
    assert_true(r.gen.sampling.top_p == 1.0f);
    assert_int_equal(r.gen.sampling.top_k, 0);
    assert_true(r.gen.sampling.min_p == 0.0f);
    assert_true(r.gen.sampling.presence_penalty == 0.0f);
    assert_true(r.gen.sampling.frequency_penalty == 0.0f);
    assert_true(r.gen.sampling.repeat_penalty == 1.0f);
    assert_int_equal(r.gen.sampling.penalty_last_n, 64);
    /* OpenAI's 16 for completions; chat runs up to the end of the context (-1). */
    assert_int_equal(r.gen.max_tokens, kind == C ? 16 : -1);
    assert_false(r.seed_given);
    assert_false(r.stream);
    assert_false(r.include_usage);
    assert_false(r.gen.logprobs);
    assert_false(r.gen.ignore_eos);
    assert_int_equal(r.gen.n_stops, 0);
    assert_int_equal(r.gen.sampling.n_logit_bias, 0);
    assert_null(r.model);
    assert_string_equal(r.gen.session_id, "");
    llamad_api_request_free(&r);
}

static void test_defaults_v1(void **state)
{
    (void)state;
    check_v1_defaults(C, "{\"prompt\":\"x\"}");
    check_v1_defaults(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
}

static void test_defaults_native(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(NATIVE, "{\"prompt\":\"x\"}", &r);
    assert_int_equal(r.kind, NATIVE);
    assert_true(r.gen.sampling.temperature == 0.8f);
    assert_int_equal(r.gen.sampling.top_k, 40);
    assert_true(r.gen.sampling.top_p == 0.95f);
    assert_true(r.gen.sampling.min_p == 0.05f);
    assert_true(r.gen.sampling.repeat_penalty == 1.0f);
    assert_int_equal(r.gen.sampling.penalty_last_n, 64);
    assert_int_equal(r.gen.max_tokens, -1);
    assert_false(r.seed_given);
    assert_false(r.gen.logprobs);
    llamad_api_request_free(&r);
}

static void test_values_parsed(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(
        C,
        "{\"model\":\"gpt-x\",\"prompt\":\"x\",\"temperature\":0.5,\"top_p\":0.9,\"top_k\":7,"
        "\"min_p\":0.1,\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"repeat_penalty\":1.2,"
        "\"penalty_last_n\":-1,\"max_tokens\":12,\"seed\":42,\"ignore_eos\":true,\"user\":\"me\"}",
        &r);
    assert_string_equal(r.model, "gpt-x");
    assert_true(r.gen.sampling.temperature == 0.5f);
    assert_true(r.gen.sampling.top_p == 0.9f);
    assert_int_equal(r.gen.sampling.top_k, 7);
    assert_true(r.gen.sampling.min_p == 0.1f);
    assert_true(r.gen.sampling.presence_penalty == 0.5f);
    assert_true(r.gen.sampling.frequency_penalty == -0.5f);
    assert_true(r.gen.sampling.repeat_penalty == 1.2f);
    assert_int_equal(r.gen.sampling.penalty_last_n, -1);
    assert_int_equal(r.gen.max_tokens, 12);
    assert_true(r.seed_given);
    assert_int_equal(r.gen.sampling.seed, 42);
    assert_true(r.gen.ignore_eos);
    llamad_api_request_free(&r);

    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"repeat_last_n\":32,\"n_predict\":5}", &r);
    assert_int_equal(r.gen.sampling.penalty_last_n, 32);
    assert_int_equal(r.gen.max_tokens, 5);
    llamad_api_request_free(&r);
}

static void test_max_tokens_names(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5,"
           "\"max_completion_tokens\":9}",
           &r);
    assert_int_equal(r.gen.max_tokens, 9);
    llamad_api_request_free(&r);
    ACCEPT(C, "{\"prompt\":\"x\",\"max_tokens\":1}", &r);
    assert_int_equal(r.gen.max_tokens, 1);
    llamad_api_request_free(&r);
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"n_predict\":-1}", &r);
    assert_int_equal(r.gen.max_tokens, -1);
    llamad_api_request_free(&r);
}

/* OpenAI refuses a max_tokens below 1, naming the field; llama.cpp's n_predict 0
 * (and its alias max_tokens there) asks for the prompt alone. */
static void test_max_tokens_zero(void **state)
{
    (void)state;
    REJECT(C, "{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens");
    REJECT(CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}",
           "max_tokens");
    REJECT(CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":0}",
           "max_completion_tokens");
    struct llamad_api_request r;
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"n_predict\":0}", &r);
    assert_int_equal(r.gen.max_tokens, 0);
    llamad_api_request_free(&r);
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"max_tokens\":0}", &r);
    assert_int_equal(r.gen.max_tokens, 0);
    llamad_api_request_free(&r);
}

static void test_seed(void **state)
{
    (void)state;
    struct llamad_api_request r;
    ACCEPT(C, "{\"prompt\":\"x\",\"seed\":-5}", &r);
    assert_true(r.seed_given);
    assert_true(r.gen.sampling.seed == (uint64_t)-5);
    llamad_api_request_free(&r);
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"seed\":-1}", &r);
    assert_false(r.seed_given); /* llama.cpp: random */
    llamad_api_request_free(&r);
    ACCEPT(NATIVE, "{\"prompt\":\"x\",\"seed\":7}", &r);
    assert_true(r.seed_given);
    assert_int_equal(r.gen.sampling.seed, 7);
    llamad_api_request_free(&r);
}

/* ---- Responses ---- */

/* Parses a response (freeing it), checking it is valid UTF-8 first. */
static cJSON *parse_json(char *s)
{
    assert_non_null(s);
    size_t n = strlen(s);
    assert_int_equal(llamad_utf8_valid_prefix(s, n), n);
    cJSON *j = cJSON_Parse(s);
    if (!j)
        fail_msg("not JSON: %s", s);
    free(s);
    return j;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        fail_msg("no '%s'", key);
    return it;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *it = get(obj, key);
    assert_true(cJSON_IsString(it));
    return it->valuestring;
}

static double get_num(const cJSON *obj, const char *key)
{
    const cJSON *it = get(obj, key);
    assert_true(cJSON_IsNumber(it));
    return it->valuedouble;
}

static const cJSON *choice0(const cJSON *root)
{
    const cJSON *choices = get(root, "choices");
    assert_int_equal(cJSON_GetArraySize(choices), 1);
    const cJSON *c = cJSON_GetArrayItem(choices, 0);
    assert_int_equal((int)get_num(c, "index"), 0);
    return c;
}

/* Three token events " Once", " upon", " a" (ids 403, 407, 261) with logprobs and
 * three alternatives each, and a DONE event. */
struct events {
    struct llamad_event tok[3];
    struct llamad_top_logprob top[3][3];
    struct llamad_event done;
};

static void make_events(struct events *ev, enum llamad_finish finish)
{
    static const int32_t ids[3] = {403, 407, 261};
    static const char *const text[3] = {" Once", " upon", " a"};
    memset(ev, 0, sizeof *ev);
    for (int i = 0; i < 3; i++) {
        struct llamad_event *e = &ev->tok[i];
        e->kind = LLAMAD_EVENT_TOKEN;
        e->next = i < 2 ? &ev->tok[i + 1] : NULL;
        e->token = ids[i];
        e->piece = (char *)text[i];
        e->piece_len = strlen(text[i]);
        e->text = (char *)text[i];
        e->text_len = strlen(text[i]);
        e->logprob = -0.25f * (float)(i + 1);
        ev->top[i][0] = (struct llamad_top_logprob){ids[i], e->logprob};
        ev->top[i][1] = (struct llamad_top_logprob){378, -2.5f}; /* " time" */
        ev->top[i][2] = (struct llamad_top_logprob){198, -7.0f}; /* <0xC3> */
        e->top = ev->top[i];
        e->n_top = 3;
    }
    ev->done.kind = LLAMAD_EVENT_DONE;
    ev->done.finish = finish;
    ev->done.usage = (struct llamad_usage){.prompt_tokens = 7,
                                           .completion_tokens = 3,
                                           .cached_tokens = 4,
                                           .prompt_ms = 2.0,
                                           .generation_ms = 30.0};
}

static struct llamad_api_reply make_reply(enum llamad_api_kind kind)
{
    return (struct llamad_api_reply){
        .kind = kind,
        .id = kind == CHAT ? "chatcmpl-42" : "cmpl-42",
        .created = 1700000000,
        .model = "stories260K",
        .tok = tok,
    };
}

static void check_usage(const cJSON *root)
{
    const cJSON *u = get(root, "usage");
    assert_int_equal((int)get_num(u, "prompt_tokens"), 7);
    assert_int_equal((int)get_num(u, "completion_tokens"), 3);
    assert_int_equal((int)get_num(u, "total_tokens"), 10);
    assert_int_equal((int)get_num(get(u, "prompt_tokens_details"), "cached_tokens"), 4);
}

static void check_envelope(const cJSON *root, const char *id, const char *object)
{
    assert_string_equal(get_str(root, "id"), id);
    assert_string_equal(get_str(root, "object"), object);
    assert_int_equal((int64_t)get_num(root, "created"), 1700000000);
    assert_string_equal(get_str(root, "model"), "stories260K");
}

static void test_completion_response(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_LENGTH);
    struct llamad_api_reply r = make_reply(C);
    cJSON *root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    check_envelope(root, "cmpl-42", "text_completion");
    const cJSON *c = choice0(root);
    assert_string_equal(get_str(c, "text"), " Once upon a");
    assert_string_equal(get_str(c, "finish_reason"), "length");
    assert_true(cJSON_IsNull(get(c, "logprobs")));
    check_usage(root);
    cJSON_Delete(root);

    /* No tokens at all; finish reasons that are not success still render as "stop". */
    ev.done.finish = LLAMAD_FINISH_CANCELLED;
    root = parse_json(llamad_api_response_json(&r, NULL, &ev.done));
    c = choice0(root);
    assert_string_equal(get_str(c, "text"), "");
    assert_string_equal(get_str(c, "finish_reason"), "stop");
    cJSON_Delete(root);
}

static void test_completion_logprobs(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    ev.tok[2].logprob = -INFINITY;
    struct llamad_api_reply r = make_reply(C);
    r.logprobs = true;
    r.top_logprobs = 2;
    cJSON *root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    const cJSON *lp = get(choice0(root), "logprobs");
    const cJSON *tokens = get(lp, "tokens"), *lps = get(lp, "token_logprobs");
    const cJSON *tops = get(lp, "top_logprobs"), *offs = get(lp, "text_offset");
    assert_int_equal(cJSON_GetArraySize(tokens), 3);
    assert_int_equal(cJSON_GetArraySize(lps), 3);
    assert_int_equal(cJSON_GetArraySize(tops), 3);
    assert_int_equal(cJSON_GetArraySize(offs), 3);
    assert_string_equal(cJSON_GetArrayItem(tokens, 1)->valuestring, " upon");
    assert_true(cJSON_GetArrayItem(lps, 0)->valuedouble == -0.25);
    assert_true(cJSON_GetArrayItem(lps, 2)->valuedouble == -9999.0); /* -inf */
    assert_int_equal(cJSON_GetArrayItem(offs, 0)->valueint, 0);
    assert_int_equal(cJSON_GetArrayItem(offs, 1)->valueint, 5);
    assert_int_equal(cJSON_GetArrayItem(offs, 2)->valueint, 10);
    const cJSON *top1 = cJSON_GetArrayItem(tops, 1);
    assert_int_equal(cJSON_GetArraySize(top1), 2); /* capped by the request's 2 */
    assert_true(get_num(top1, " upon") == -0.5);
    assert_true(get_num(top1, " time") == -2.5);
    cJSON_Delete(root);
}

static void test_partial_utf8_tokens(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    ev.tok[0].token = 198; /* <0xC3>: half of "á" */
    ev.tok[0].piece = (char *)"\xc3";
    ev.tok[0].piece_len = 1;
    ev.tok[0].text = (char *)"";
    ev.tok[0].text_len = 0;
    ev.tok[0].next = NULL;
    struct llamad_api_reply r = make_reply(C);
    r.logprobs = true;
    r.top_logprobs = 3;
    cJSON *root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    const cJSON *lp = get(choice0(root), "logprobs");
    assert_string_equal(cJSON_GetArrayItem(get(lp, "tokens"), 0)->valuestring, "bytes:\\xc3");
    assert_true(get_num(cJSON_GetArrayItem(get(lp, "top_logprobs"), 0), "bytes:\\xc3") == -7.0);
    cJSON_Delete(root);

    r = make_reply(CHAT);
    r.logprobs = true;
    r.top_logprobs = 3;
    root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    const cJSON *entry = cJSON_GetArrayItem(get(get(choice0(root), "logprobs"), "content"), 0);
    assert_string_equal(get_str(entry, "token"), "bytes:\\xc3");
    const cJSON *bytes = get(entry, "bytes");
    assert_int_equal(cJSON_GetArraySize(bytes), 1);
    assert_int_equal(cJSON_GetArrayItem(bytes, 0)->valueint, 0xc3);
    cJSON_Delete(root);
}

static void test_text_with_nul_escaped(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    ev.tok[0].text = (char *)"a\0b\"\n";
    ev.tok[0].text_len = 5;
    ev.tok[0].next = NULL;
    struct llamad_api_reply r = make_reply(C);
    char *s = llamad_api_response_json(&r, ev.tok, &ev.done);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"text\":\"a\\u0000b\\\"\\n\""));
    cJSON_Delete(parse_json(s));
}

static void test_chat_response(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(CHAT);
    cJSON *root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    check_envelope(root, "chatcmpl-42", "chat.completion");
    const cJSON *c = choice0(root);
    const cJSON *msg = get(c, "message");
    assert_string_equal(get_str(msg, "role"), "assistant");
    assert_string_equal(get_str(msg, "content"), " Once upon a");
    assert_string_equal(get_str(c, "finish_reason"), "stop");
    assert_true(cJSON_IsNull(get(c, "logprobs")));
    check_usage(root);
    cJSON_Delete(root);
}

static void test_chat_logprobs(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(CHAT);
    r.logprobs = true;
    r.top_logprobs = 3;
    cJSON *root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    const cJSON *content = get(get(choice0(root), "logprobs"), "content");
    assert_int_equal(cJSON_GetArraySize(content), 3);
    const cJSON *e = cJSON_GetArrayItem(content, 0);
    assert_string_equal(get_str(e, "token"), " Once");
    assert_true(get_num(e, "logprob") == -0.25);
    assert_int_equal(cJSON_GetArraySize(get(e, "bytes")), 5);
    assert_int_equal(cJSON_GetArrayItem(get(e, "bytes"), 0)->valueint, ' ');
    const cJSON *tops = get(e, "top_logprobs");
    assert_int_equal(cJSON_GetArraySize(tops), 3);
    const cJSON *t1 = cJSON_GetArrayItem(tops, 1);
    assert_string_equal(get_str(t1, "token"), " time");
    assert_true(get_num(t1, "logprob") == -2.5);
    assert_int_equal(cJSON_GetArraySize(get(t1, "bytes")), 5);
    const cJSON *t2 = cJSON_GetArrayItem(tops, 2);
    assert_string_equal(get_str(t2, "token"), "bytes:\\xc3");
    assert_false(cJSON_HasObjectItem(e, "id")); /* llama.cpp's field only */
    cJSON_Delete(root);
}

static void test_completion_chunks(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(C);
    assert_null(llamad_api_chunk_first_json(&r));
    assert_null(llamad_api_chunk_usage_json(&r, &ev.done));

    cJSON *root = parse_json(llamad_api_chunk_token_json(&r, &ev.tok[1], 5));
    check_envelope(root, "cmpl-42", "text_completion");
    const cJSON *c = choice0(root);
    assert_string_equal(get_str(c, "text"), " upon");
    assert_true(cJSON_IsNull(get(c, "finish_reason")));
    assert_true(cJSON_IsNull(get(c, "logprobs")));
    assert_false(cJSON_HasObjectItem(root, "usage"));
    cJSON_Delete(root);

    ev.tok[1].text = (char *)"";
    ev.tok[1].text_len = 0;
    assert_null(llamad_api_chunk_token_json(&r, &ev.tok[1], 5)); /* nothing to send */

    r.logprobs = true;
    r.top_logprobs = 1;
    root = parse_json(llamad_api_chunk_token_json(&r, &ev.tok[1], 5));
    c = choice0(root);
    assert_string_equal(get_str(c, "text"), "");
    const cJSON *lp = get(c, "logprobs");
    assert_int_equal(cJSON_GetArraySize(get(lp, "tokens")), 1); /* this token only */
    assert_int_equal(cJSON_GetArrayItem(get(lp, "text_offset"), 0)->valueint, 5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(get(lp, "top_logprobs"), 0)), 1);
    cJSON_Delete(root);

    root = parse_json(llamad_api_chunk_final_json(&r, &ev.done));
    c = choice0(root);
    assert_string_equal(get_str(c, "text"), "");
    assert_string_equal(get_str(c, "finish_reason"), "stop");
    assert_true(cJSON_IsNull(get(c, "logprobs")));
    cJSON_Delete(root);
}

static void test_chat_chunks_with_usage(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_LENGTH);
    struct llamad_api_reply r = make_reply(CHAT);
    r.include_usage = true;

    cJSON *root = parse_json(llamad_api_chunk_first_json(&r));
    check_envelope(root, "chatcmpl-42", "chat.completion.chunk");
    const cJSON *c = choice0(root);
    assert_string_equal(get_str(get(c, "delta"), "role"), "assistant");
    assert_string_equal(get_str(get(c, "delta"), "content"), "");
    assert_true(cJSON_IsNull(get(c, "finish_reason")));
    assert_true(cJSON_IsNull(get(root, "usage")));
    cJSON_Delete(root);

    struct llamad_buf text = LLAMAD_BUF_INIT;
    size_t offset = 0;
    for (int i = 0; i < 3; i++) {
        root = parse_json(llamad_api_chunk_token_json(&r, &ev.tok[i], offset));
        c = choice0(root);
        const cJSON *delta = get(c, "delta");
        assert_false(cJSON_HasObjectItem(delta, "role"));
        const char *piece = get_str(delta, "content");
        assert_int_equal(llamad_buf_append(&text, piece, strlen(piece)), 0);
        offset += strlen(piece);
        assert_true(cJSON_IsNull(get(root, "usage")));
        cJSON_Delete(root);
    }
    assert_string_equal(text.data, " Once upon a");
    llamad_buf_free(&text);

    root = parse_json(llamad_api_chunk_final_json(&r, &ev.done));
    c = choice0(root);
    assert_null(get(c, "delta")->child); /* {} */
    assert_string_equal(get_str(c, "finish_reason"), "length");
    assert_true(cJSON_IsNull(get(root, "usage")));
    cJSON_Delete(root);

    root = parse_json(llamad_api_chunk_usage_json(&r, &ev.done));
    check_envelope(root, "chatcmpl-42", "chat.completion.chunk");
    assert_true(cJSON_IsArray(get(root, "choices")));
    assert_int_equal(cJSON_GetArraySize(get(root, "choices")), 0);
    check_usage(root);
    cJSON_Delete(root);
}

/* A chat answer with tools: the calls in its text become message.tool_calls. */
static void test_chat_tool_calls_response(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    static const char *const text[3] = {"<tool_call>{\"name\": \"get_",
                                        "weather\", \"arguments\": "
                                        "{\"unit\": \"c\"}}",
                                        "</tool_call>"};
    for (int i = 0; i < 3; i++) {
        ev.tok[i].text = (char *)text[i];
        ev.tok[i].text_len = strlen(text[i]);
    }
    struct llamad_tool tool = {.name = "get_weather", .parameters = "{}"};
    struct llamad_tools tools = {&tool, 1, LLAMAD_TOOL_CHOICE_AUTO, 0, true};
    struct llamad_api_reply r = make_reply(CHAT);
    r.tools = &tools;
    r.tool_syntax = LLAMAD_TOOL_SYNTAX_TAGGED;
    r.tool_seed = 3;
    cJSON *root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    const cJSON *c = choice0(root), *msg = get(c, "message");
    assert_string_equal(get_str(c, "finish_reason"), "tool_calls");
    assert_true(cJSON_IsNull(get(msg, "content")));
    const cJSON *calls = get(msg, "tool_calls");
    assert_int_equal(cJSON_GetArraySize(calls), 1);
    const cJSON *call = calls->child;
    assert_int_equal(strlen(get_str(call, "id")), 29);
    assert_false(cJSON_HasObjectItem(call, "index")); /* a whole message's calls have none */
    assert_string_equal(get_str(call, "type"), "function");
    assert_string_equal(get_str(get(call, "function"), "name"), "get_weather");
    assert_string_equal(get_str(get(call, "function"), "arguments"), "{\"unit\":\"c\"}");
    cJSON_Delete(root);

    /* The same text without tools in play is content. */
    r.tools = NULL;
    root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    assert_string_equal(get_str(get(choice0(root), "message"), "content"),
                        "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"unit\": "
                        "\"c\"}}</tool_call>");
    assert_string_equal(get_str(choice0(root), "finish_reason"), "stop");
    cJSON_Delete(root);
}

/* OpenAI's streamed call: a head delta (index, id, type, name, "arguments": ""),
 * then its arguments (index, function.arguments), and the finish_reason "tool_calls". */
static void test_chat_tool_call_chunks(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(CHAT);
    struct llamad_tool_call_out call = {
        .index = 1, .id = "call_x", .name = "add", .arguments = "{\"a\":1}"};
    cJSON *root = parse_json(llamad_api_chunk_tool_call_json(&r, &call, true));
    const cJSON *delta = get(choice0(root), "delta");
    assert_false(cJSON_HasObjectItem(delta, "content"));
    const cJSON *tc = get(delta, "tool_calls")->child;
    assert_int_equal((int)get_num(tc, "index"), 1);
    assert_string_equal(get_str(tc, "id"), "call_x");
    assert_string_equal(get_str(tc, "type"), "function");
    assert_string_equal(get_str(get(tc, "function"), "name"), "add");
    assert_string_equal(get_str(get(tc, "function"), "arguments"), "");
    assert_true(cJSON_IsNull(get(choice0(root), "finish_reason")));
    cJSON_Delete(root);

    root = parse_json(llamad_api_chunk_tool_call_json(&r, &call, false));
    tc = get(get(choice0(root), "delta"), "tool_calls")->child;
    assert_int_equal((int)get_num(tc, "index"), 1);
    assert_false(cJSON_HasObjectItem(tc, "id"));
    assert_false(cJSON_HasObjectItem(tc, "type"));
    assert_false(cJSON_HasObjectItem(get(tc, "function"), "name"));
    assert_string_equal(get_str(get(tc, "function"), "arguments"), "{\"a\":1}");
    cJSON_Delete(root);

    r.called = true;
    root = parse_json(llamad_api_chunk_final_json(&r, &ev.done));
    assert_string_equal(get_str(choice0(root), "finish_reason"), "tool_calls");
    cJSON_Delete(root);
}

static void test_chat_chunk_logprobs(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(CHAT);
    r.logprobs = true;
    r.top_logprobs = 2;
    cJSON *root = parse_json(llamad_api_chunk_token_json(&r, &ev.tok[0], 0));
    const cJSON *content = get(get(choice0(root), "logprobs"), "content");
    assert_int_equal(cJSON_GetArraySize(content), 1);
    assert_int_equal(cJSON_GetArraySize(get(cJSON_GetArrayItem(content, 0), "top_logprobs")), 2);
    assert_false(cJSON_HasObjectItem(root, "usage"));
    cJSON_Delete(root);
}

static void check_timings(const cJSON *root, const char *stop_type)
{
    assert_true(cJSON_IsTrue(get(root, "stop")));
    assert_string_equal(get_str(root, "model"), "stories260K");
    assert_int_equal((int)get_num(root, "tokens_predicted"), 3);
    assert_int_equal((int)get_num(root, "tokens_evaluated"), 7);
    assert_string_equal(get_str(root, "stop_type"), stop_type);
    assert_string_equal(get_str(root, "stopping_word"), "");
    const cJSON *t = get(root, "timings");
    assert_int_equal((int)get_num(t, "prompt_n"), 3); /* 7 prompt tokens, 4 cached */
    assert_true(get_num(t, "prompt_ms") == 2.0);
    assert_true(fabs(get_num(t, "prompt_per_second") - 1500.0) < 1e-9);
    assert_int_equal((int)get_num(t, "predicted_n"), 3);
    assert_true(get_num(t, "predicted_ms") == 30.0);
    assert_true(fabs(get_num(t, "predicted_per_second") - 100.0) < 1e-9);
}

static void test_native_response(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(NATIVE);
    cJSON *root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    assert_string_equal(get_str(root, "content"), " Once upon a");
    check_timings(root, "eos");
    assert_false(cJSON_HasObjectItem(root, "completion_probabilities"));
    cJSON_Delete(root);

    ev.done.finish = LLAMAD_FINISH_LENGTH;
    r.logprobs = true;
    r.top_logprobs = 2;
    root = parse_json(llamad_api_response_json(&r, ev.tok, &ev.done));
    check_timings(root, "limit");
    const cJSON *probs = get(root, "completion_probabilities");
    assert_int_equal(cJSON_GetArraySize(probs), 3);
    const cJSON *p0 = cJSON_GetArrayItem(probs, 0);
    assert_int_equal((int)get_num(p0, "id"), 403);
    assert_string_equal(get_str(p0, "token"), " Once");
    assert_true(get_num(p0, "logprob") == -0.25);
    assert_int_equal(cJSON_GetArraySize(get(p0, "bytes")), 5);
    const cJSON *tops = get(p0, "top_logprobs");
    assert_int_equal(cJSON_GetArraySize(tops), 2);
    assert_int_equal((int)get_num(cJSON_GetArrayItem(tops, 1), "id"), 378);
    cJSON_Delete(root);
}

static void test_native_chunks(void **state)
{
    (void)state;
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(NATIVE);
    r.include_usage = true; /* has no meaning for llama.cpp's shapes */
    assert_null(llamad_api_chunk_first_json(&r));
    assert_null(llamad_api_chunk_usage_json(&r, &ev.done));

    cJSON *root = parse_json(llamad_api_chunk_token_json(&r, &ev.tok[0], 0));
    assert_string_equal(get_str(root, "content"), " Once");
    assert_true(cJSON_IsFalse(get(root, "stop")));
    assert_int_equal(cJSON_GetArraySize(root), 2);
    cJSON_Delete(root);

    r.logprobs = true;
    r.top_logprobs = 1;
    root = parse_json(llamad_api_chunk_token_json(&r, &ev.tok[0], 0));
    assert_int_equal(cJSON_GetArraySize(get(root, "completion_probabilities")), 1);
    cJSON_Delete(root);

    root = parse_json(llamad_api_chunk_final_json(&r, &ev.done));
    assert_string_equal(get_str(root, "content"), "");
    check_timings(root, "eos");
    assert_false(cJSON_HasObjectItem(root, "completion_probabilities"));
    cJSON_Delete(root);
}

static void test_error_json(void **state)
{
    (void)state;
    struct llamad_api_error e;
    assert_int_equal(llamad_api_set_error(&e, 404, "invalid_request_error", NULL, "model_not_found",
                                          "model '%s' not found", "x"),
                     404);
    assert_int_equal(e.status, 404);
    cJSON *root = parse_json(llamad_api_error_json(&e));
    const cJSON *err = get(root, "error");
    assert_string_equal(get_str(err, "message"), "model 'x' not found");
    assert_string_equal(get_str(err, "type"), "invalid_request_error");
    assert_true(cJSON_IsNull(get(err, "param")));
    assert_string_equal(get_str(err, "code"), "model_not_found");
    cJSON_Delete(root);

    struct llamad_api_request r;
    const char *body = "{\"prompt\":\"x\",\"temperature\":9}";
    assert_int_equal(parse_len(C, body, strlen(body), &r, &e), 400);
    root = parse_json(llamad_api_error_json(&e));
    err = get(root, "error");
    assert_string_equal(get_str(err, "param"), "temperature");
    assert_true(cJSON_IsNull(get(err, "code")));
    cJSON_Delete(root);

    /* A message cut inside a character still gives valid UTF-8. */
    char longmsg[400];
    memset(longmsg, 'a', 318);
    strcpy(longmsg + 318, "\xe2\x82\xac");
    llamad_api_set_error(&e, 500, "server_error", "", "", "%s", longmsg);
    cJSON_Delete(parse_json(llamad_api_error_json(&e)));
}

static void test_models_json(void **state)
{
    (void)state;
    cJSON *root = parse_json(llamad_api_models_json("stories260K", 1700000001));
    assert_string_equal(get_str(root, "object"), "list");
    const cJSON *data = get(root, "data");
    assert_int_equal(cJSON_GetArraySize(data), 1);
    const cJSON *m = cJSON_GetArrayItem(data, 0);
    assert_string_equal(get_str(m, "id"), "stories260K");
    assert_string_equal(get_str(m, "object"), "model");
    assert_int_equal((int64_t)get_num(m, "created"), 1700000001);
    assert_string_equal(get_str(m, "owned_by"), "llamad");
    cJSON_Delete(root);
}

/* ---- /tokenize and /detokenize ---- */

static cJSON *call_tokenize(const char *body)
{
    struct llamad_api_error e;
    char *s = llamad_api_tokenize(tok, body, strlen(body), &e);
    if (!s)
        fail_msg("%s -> %d: %s", body, e.status, e.message);
    return parse_json(s);
}

static void test_tokenize(void **state)
{
    (void)state;
    int32_t ids[16];
    int64_t n = llamad_tokenize(tok, "Once upon a time", 16, false, ids, 16);
    assert_true(n > 0);
    cJSON *root = call_tokenize("{\"content\":\"Once upon a time\"}");
    const cJSON *tokens = get(root, "tokens");
    assert_int_equal(cJSON_GetArraySize(tokens), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(cJSON_GetArrayItem(tokens, i)->valueint, ids[i]);
    cJSON_Delete(root);

    root = call_tokenize("{\"content\":\"Once\",\"add_special\":true}");
    assert_int_equal(cJSON_GetArrayItem(get(root, "tokens"), 0)->valueint,
                     llamad_tokenizer_bos(tok));
    cJSON_Delete(root);

    root = call_tokenize("{\"content\":\"Once\",\"with_pieces\":true}");
    const cJSON *t0 = cJSON_GetArrayItem(get(root, "tokens"), 0);
    assert_int_equal((int)get_num(t0, "id"), 403);
    assert_string_equal(get_str(t0, "piece"), " Once");
    cJSON_Delete(root);

    /* "á" is two byte tokens here: their pieces are not UTF-8, so byte arrays. */
    root = call_tokenize("{\"content\":\"\xc3\xa1\",\"with_pieces\":true}");
    tokens = get(root, "tokens");
    const cJSON *last = cJSON_GetArrayItem(tokens, cJSON_GetArraySize(tokens) - 1);
    const cJSON *piece = get(last, "piece");
    assert_true(cJSON_IsArray(piece));
    assert_int_equal(cJSON_GetArraySize(piece), 1);
    assert_int_equal(cJSON_GetArrayItem(piece, 0)->valueint, 0xa1);
    cJSON_Delete(root);
}

static void check_endpoint_rejects(char *(*fn)(const struct llamad_tokenizer *, const char *,
                                               size_t, struct llamad_api_error *),
                                   const char *body, const char *param)
{
    struct llamad_api_error e;
    memset(&e, 0, sizeof e);
    char *s = fn(tok, body, strlen(body), &e);
    if (s || e.status != 400 || strcmp(e.param, param) != 0)
        fail_msg("%s -> %s, status %d, param '%s' (want 400 '%s')", body, s ? s : "NULL", e.status,
                 e.param, param);
}

static void test_tokenize_errors(void **state)
{
    (void)state;
    check_endpoint_rejects(llamad_api_tokenize, "{}", "content");
    check_endpoint_rejects(llamad_api_tokenize, "{\"content\":5}", "content");
    check_endpoint_rejects(llamad_api_tokenize, "{\"content\":\"x\",\"add_special\":1}",
                           "add_special");
    check_endpoint_rejects(llamad_api_tokenize, "{\"content\":\"x\",\"with_pieces\":\"y\"}",
                           "with_pieces");
    check_endpoint_rejects(llamad_api_tokenize, "{\"content\":", "");
    check_endpoint_rejects(llamad_api_tokenize, "{\"content\":\"\\u0000\"}", "");
}

static void test_detokenize(void **state)
{
    (void)state;
    struct llamad_api_error e;
    const char *body = "{\"tokens\":[1,403,407,261,378]}";
    cJSON *root = parse_json(llamad_api_detokenize(tok, body, strlen(body), &e));
    assert_string_equal(get_str(root, "content"), "Once upon a time"); /* space after BOS dropped */
    cJSON_Delete(root);
    body = "{\"tokens\":[]}";
    root = parse_json(llamad_api_detokenize(tok, body, strlen(body), &e));
    assert_string_equal(get_str(root, "content"), "");
    cJSON_Delete(root);

    check_endpoint_rejects(llamad_api_detokenize, "{\"tokens\":[512]}", "tokens");
    check_endpoint_rejects(llamad_api_detokenize, "{\"tokens\":[-1]}", "tokens");
    check_endpoint_rejects(llamad_api_detokenize, "{\"tokens\":[1.5]}", "tokens");
    check_endpoint_rejects(llamad_api_detokenize, "{\"tokens\":\"1 2\"}", "tokens");
    check_endpoint_rejects(llamad_api_detokenize, "{}", "tokens");
    check_endpoint_rejects(llamad_api_detokenize, "[1,2]", "");
}

/* ---- Allocation failures: every path frees what it took (ASan's leak check) ---- */

static long allocs_left;

static void *failing_malloc(size_t n)
{
    return allocs_left-- > 0 ? malloc(n) : NULL;
}

/* Runs fn with cJSON's allocations failing after 0, 1, 2, ... successes until it
 * succeeds; each failed run must report the failure cleanly. */
static void with_failing_cjson(bool (*fn)(void))
{
    cJSON_Hooks hooks = {failing_malloc, free};
    bool done = false;
    for (long n = 0; !done && n < 100000; n++) {
        allocs_left = n;
        cJSON_InitHooks(&hooks);
        done = fn();
        cJSON_InitHooks(NULL);
    }
    assert_true(done);
}

static bool build_chat_logprobs(void)
{
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_STOP);
    struct llamad_api_reply r = make_reply(CHAT);
    r.logprobs = true;
    r.top_logprobs = 3;
    r.include_usage = true;
    char *a = llamad_api_response_json(&r, ev.tok, &ev.done);
    char *b = llamad_api_chunk_token_json(&r, &ev.tok[0], 0);
    char *c = llamad_api_chunk_usage_json(&r, &ev.done);
    bool ok = a && b && c;
    free(a);
    free(b);
    free(c);
    return ok;
}

static bool build_completion_and_native(void)
{
    struct events ev;
    make_events(&ev, LLAMAD_FINISH_LENGTH);
    struct llamad_api_reply r = make_reply(C), n = make_reply(NATIVE);
    r.logprobs = n.logprobs = true;
    r.top_logprobs = n.top_logprobs = 3;
    struct llamad_api_error e;
    llamad_api_set_error(&e, 400, "invalid_request_error", "n", NULL, "only n=1");
    char *out[] = {
        llamad_api_response_json(&r, ev.tok, &ev.done),
        llamad_api_response_json(&n, ev.tok, &ev.done),
        llamad_api_chunk_final_json(&n, &ev.done),
        llamad_api_error_json(&e),
        llamad_api_models_json("m", 1),
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof out / sizeof *out; i++) {
        ok = ok && out[i];
        free(out[i]);
    }
    return ok;
}

/* cJSON cannot tell running out of memory from bad JSON: a request either parses or
 * gets an error status, and never leaks. */
static bool parse_full_request(void)
{
    static const char body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],\"stop\":[\"x\",\"y\"],"
        "\"logit_bias\":{\"5\":1},\"logprobs\":true,\"top_logprobs\":2,\"session_id\":\"s\"}";
    struct llamad_api_request r;
    struct llamad_api_error e;
    int rc = parse_len(CHAT, body, sizeof body - 1, &r, &e);
    if (rc)
        assert_true(request_empty(&r));
    llamad_api_request_free(&r);
    return rc == 0;
}

static bool tokenize_with_pieces(void)
{
    struct llamad_api_error e;
    const char *body = "{\"content\":\"Once \xc3\xa1\",\"with_pieces\":true}";
    char *s = llamad_api_tokenize(tok, body, strlen(body), &e);
    free(s);
    return s != NULL;
}

static void test_allocation_failures(void **state)
{
    (void)state;
    with_failing_cjson(build_chat_logprobs);
    with_failing_cjson(build_completion_and_native);
    with_failing_cjson(parse_full_request);
    with_failing_cjson(tokenize_with_pieces);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_not_utf8_rejected),
        cmocka_unit_test(test_body_not_json_rejected),
        cmocka_unit_test(test_nul_rejected),
        cmocka_unit_test(test_duplicate_keys_rejected),
        cmocka_unit_test(test_escaped_backslash_then_u0000_accepted),
        cmocka_unit_test(test_lone_surrogate_rejected),
        cmocka_unit_test(test_wrong_types_rejected),
        cmocka_unit_test(test_sampling_ranges),
        cmocka_unit_test(test_integers_checked_on_double),
        cmocka_unit_test(test_n_must_be_one),
        cmocka_unit_test(test_unsupported_params_rejected),
        cmocka_unit_test(test_response_format),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_stream_options),
        cmocka_unit_test(test_logprobs_completions),
        cmocka_unit_test(test_logprobs_chat),
        cmocka_unit_test(test_logprobs_native),
        cmocka_unit_test(test_session_id),
        cmocka_unit_test(test_session_header),
        cmocka_unit_test(test_prompt_forms),
        cmocka_unit_test(test_chat_messages),
        cmocka_unit_test(test_tools_parsed),
        cmocka_unit_test(test_chat_tool_calls_response),
        cmocka_unit_test(test_chat_tool_call_chunks),
        cmocka_unit_test(test_tools_refused),
        cmocka_unit_test(test_tool_messages),
        cmocka_unit_test(test_apply_template_tools),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_defaults_v1),
        cmocka_unit_test(test_defaults_native),
        cmocka_unit_test(test_values_parsed),
        cmocka_unit_test(test_max_tokens_names),
        cmocka_unit_test(test_max_tokens_zero),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_completion_response),
        cmocka_unit_test(test_completion_logprobs),
        cmocka_unit_test(test_partial_utf8_tokens),
        cmocka_unit_test(test_text_with_nul_escaped),
        cmocka_unit_test(test_chat_response),
        cmocka_unit_test(test_chat_logprobs),
        cmocka_unit_test(test_completion_chunks),
        cmocka_unit_test(test_chat_chunks_with_usage),
        cmocka_unit_test(test_chat_chunk_logprobs),
        cmocka_unit_test(test_native_response),
        cmocka_unit_test(test_native_chunks),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_models_json),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_tokenize_errors),
        cmocka_unit_test(test_detokenize),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_grammar),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
