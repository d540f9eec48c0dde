/* JSON Schema to GBNF: the exact grammar of small schemas, every refusal naming
 * its keyword, the limits, and what the grammars match. The grammar engine
 * (llamad_grammar_accepts) runs the converter's output: the integer ranges are
 * held to a brute force over every integer near them, and the schemas of
 * tests/data/json_schema_cases.json to their valid and invalid instances. */
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
#include "testutil.h"

/* ---- The grammar engine, on the converter's output ---- */

static struct llamad_grammar *grammar_parse(const char *text)
{
    struct llamad_grammar *g = NULL;
    char err[LLAMAD_ERR_MAX];
    if (llamad_grammar_parse(text, strlen(text), &g, err, sizeof err) != 0)
        fail_msg("the converter's grammar does not parse: %s\n%s", err, text);
    return g;
}

static bool grammar_accepts(const struct llamad_grammar *g, const char *text)
{
    return llamad_grammar_accepts(g, text, strlen(text));
}

/* ---- Helpers ---- */

/* The grammar of a schema given as JSON text; fails the test on an error. */
static char *convert(const char *schema_json)
{
    cJSON *schema = cJSON_Parse(schema_json);
    if (!schema)
        fail_msg("bad test schema %s", schema_json);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX];
    int rc = llamad_json_schema_to_gbnf(schema, &out, err, sizeof err);
    cJSON_Delete(schema);
    if (rc != 0)
        fail_msg("%s -> %d: %s", schema_json, rc, err);
    return out.data;
}

static void check_golden(const char *schema_json, const char *want, int line)
{
    char *got = convert(schema_json);
    if (strcmp(got, want) != 0)
        fail_msg("line %d: %s\n--- got:\n%s--- want:\n%s", line, schema_json, got, want);
    struct llamad_grammar *g = grammar_parse(got);
    llamad_grammar_free(g);
    free(got);
}

#define GOLDEN(schema, want) check_golden(schema, want, __LINE__)

/* The refusal of a schema: its code, and its message holds every needle. */
static void check_refused(const char *schema_json, int code, const char *needle1,
                          const char *needle2, int line)
{
    cJSON *schema = cJSON_Parse(schema_json);
    if (!schema)
        fail_msg("line %d: bad test schema %s", line, schema_json);
    struct llamad_buf out = LLAMAD_BUF_INIT;
    llamad_buf_append(&out, "x", 1);
    char err[LLAMAD_ERR_MAX];
    int rc = llamad_json_schema_to_gbnf(schema, &out, err, sizeof err);
    cJSON_Delete(schema);
    if (rc != code || !strstr(err, needle1) || (needle2 && !strstr(err, needle2)) || out.len != 1)
        fail_msg("line %d: %s -> %d (want %d), out %zu bytes: '%s' (want '%s' and '%s')", line,
                 schema_json, rc, code, out.len, err, needle1, needle2 ? needle2 : "");
    llamad_buf_free(&out);
}

#define REFUSED(schema, code, n1, n2) check_refused(schema, code, n1, n2, __LINE__)

static void check_matches(const char *schema_json, const char *instance, bool want, int line)
{
    char *text = convert(schema_json);
    if (getenv("DEBUG_GBNF"))
        fprintf(stderr, "%s\n%s", schema_json, text);
    struct llamad_grammar *g = grammar_parse(text);
    bool got = grammar_accepts(g, instance);
    if (got != want)
        fail_msg("line %d: %s %s '%s'; grammar:\n%s", line, schema_json,
                 got ? "accepts" : "refuses", instance, text);
    llamad_grammar_free(g);
    free(text);
}

#define MATCHES(schema, instance) check_matches(schema, instance, true, __LINE__)
#define NO_MATCH(schema, instance) check_matches(schema, instance, false, __LINE__)

/* ---- Golden grammars ---- */

#define WS "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n"
#define CHAR "char ::= [^\"\\\\\\x00-\\x1f] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"
#define STRING "string ::= \"\\\"\" char* \"\\\"\"\n"
#define VALUE "value ::= object | array | string | number | boolean | null\n"
#define OBJECT                                                                                     \
    "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* " \
    ")? \"}\"\n"
#define ARRAY "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"
#define NUMBER                                                                                     \
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]* ) ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]+ )?\n"
#define INTEGER "integer ::= \"-\"? ( \"0\" | [1-9] [0-9]* )\n"
#define BOOLEAN "boolean ::= \"true\" | \"false\"\n"
#define NUL "null ::= \"null\"\n"
#define ANY VALUE OBJECT ARRAY STRING CHAR NUMBER BOOLEAN NUL WS

static void test_golden_primitives(void **state)
{
    (void)state;
    GOLDEN("{}", "root ::= value\n" ANY);
    GOLDEN("true", "root ::= value\n" ANY);
    GOLDEN("{\"title\":\"t\",\"description\":\"d\",\"$schema\":\"x\",\"$id\":\"i\","
           "\"default\":1,\"examples\":[],\"$comment\":\"c\"}",
           "root ::= value\n" ANY);
    GOLDEN("{\"type\":\"string\"}", "root ::= string\n" STRING CHAR);
    GOLDEN("{\"type\":\"integer\"}", "root ::= integer\n" INTEGER);
    GOLDEN("{\"type\":\"number\"}", "root ::= number\n" NUMBER);
    GOLDEN("{\"type\":\"boolean\"}", "root ::= boolean\n" BOOLEAN);
    GOLDEN("{\"type\":\"null\"}", "root ::= null\n" NUL);
    GOLDEN("{\"type\":[\"string\",\"null\"]}", "root ::= null | string\n" STRING CHAR NUL);
    GOLDEN("{\"type\":[\"integer\",\"number\"]}", "root ::= number\n" NUMBER);
    GOLDEN("{\"type\":\"object\"}",
           "root ::= object\n" VALUE OBJECT ARRAY STRING CHAR NUMBER BOOLEAN NUL WS);
    GOLDEN("{\"type\":\"array\"}",
           "root ::= array\n" VALUE OBJECT ARRAY STRING CHAR NUMBER BOOLEAN NUL WS);
}

static void test_golden_strings(void **state)
{
    (void)state;
    GOLDEN("{\"type\":\"string\",\"minLength\":2,\"maxLength\":5}",
           "root ::= \"\\\"\" char{2,5} \"\\\"\"\n" CHAR);
    GOLDEN("{\"type\":\"string\",\"minLength\":3}", "root ::= \"\\\"\" char{3,} \"\\\"\"\n" CHAR);
    GOLDEN("{\"type\":\"string\",\"maxLength\":1}", "root ::= \"\\\"\" char? \"\\\"\"\n" CHAR);
    GOLDEN("{\"type\":\"string\",\"maxLength\":0}", "root ::= \"\\\"\" \"\\\"\"\n");
    GOLDEN("{\"type\":\"string\",\"minLength\":4,\"maxLength\":4}",
           "root ::= \"\\\"\" char{4} \"\\\"\"\n" CHAR);
    GOLDEN("{\"type\":\"string\",\"format\":\"uuid\"}",
           "root ::= \"\\\"\" [0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" "
           "[0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12} \"\\\"\"\n");
    GOLDEN("{\"type\":\"string\",\"pattern\":\"^a[0-9]+\\\\.b?$\"}",
           "root ::= \"\\\"\" \"a\" [0-9]+ \".\" \"b\"? \"\\\"\"\n");
    GOLDEN("{\"pattern\":\"^(ab|c){2,3}$\"}",
           "root ::= \"\\\"\" ( \"a\" \"b\" | \"c\" ){2,3} \"\\\"\"\n");
    GOLDEN("{\"type\":\"string\",\"pattern\":\"x\"}",
           "root ::= \"\\\"\" char* \"x\" char* \"\\\"\"\n" CHAR);
    /* " and \ and control characters in a class: their JSON escapes. */
    GOLDEN("{\"type\":\"string\",\"pattern\":\"^[\\\"\\\\\\\\\\n]$\"}",
           "root ::= \"\\\"\" ( \"\\\\\" [\"\\\\n] ) \"\\\"\"\n");
    GOLDEN("{\"pattern\":\"^[^@]+$\"}",
           "root ::= \"\\\"\" ( [ -!#-?A-\\[\\]-\xf4\x8f\xbf\xbf] | \"\\\\\" [\"\\\\bfnrt] | "
           "\"\\\\u00\" ( \"0\" [0-7bef] | \"1\" [0-9a-f] ) )+ \"\\\"\"\n");
    GOLDEN("{\"pattern\":\"^[\\\\u0001\\\\u00e9]\\\\u0041$\"}",
           "root ::= \"\\\"\" ( \"\xc3\xa9\" | \"\\\\u0001\" ) \"A\" \"\\\"\"\n");
}

static void test_golden_literals(void **state)
{
    (void)state;
    GOLDEN("{\"const\":\"a\\\"b\"}", "root ::= \"\\\"a\\\\\\\"b\\\"\"\n");
    GOLDEN("{\"enum\":[\"x\",1,true,null,[1,\"y\"],{\"k\":2.5}]}",
           "root ::= \"\\\"x\\\"\" | \"1\" | \"true\" | \"null\" | \"[1,\\\"y\\\"]\" | "
           "\"{\\\"k\\\":2.5}\"\n");
    /* type filters the values. */
    GOLDEN("{\"type\":\"string\",\"enum\":[\"x\",1]}", "root ::= \"\\\"x\\\"\"\n");
    GOLDEN("{\"type\":\"integer\",\"enum\":[1.5,2]}", "root ::= \"2\"\n");
    /* Keywords that only imply a type do not filter the values. */
    GOLDEN("{\"enum\":[1,\"a\"],\"minLength\":2}", "root ::= \"1\" | \"\\\"a\\\"\"\n");
}

static void test_golden_objects(void **state)
{
    (void)state;
    GOLDEN("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},"
           "\"b\":{\"type\":\"string\"}},\"required\":[\"a\"],\"additionalProperties\":false}",
           "root ::= \"{\" ws \"\\\"a\\\"\" ws \":\" ws integer ws ( \",\" ws \"\\\"b\\\"\" ws "
           "\":\" ws string ws )? \"}\"\n" STRING CHAR INTEGER WS);
    /* An optional member before the first required one carries its comma after. */
    GOLDEN("{\"properties\":{\"a\":{\"type\":\"null\"},\"b\":{\"type\":\"null\"}},"
           "\"required\":[\"b\"],\"additionalProperties\":false}",
           "root ::= \"{\" ws ( \"\\\"a\\\"\" ws \":\" ws null ws \",\" ws )? \"\\\"b\\\"\" ws "
           "\":\" ws null ws \"}\"\n" NUL WS);
    /* None required: chained rest rules. */
    GOLDEN("{\"properties\":{\"a\":{\"type\":\"null\"},\"b\":{\"type\":\"null\"},"
           "\"c\":{\"type\":\"null\"}},\"additionalProperties\":false}",
           "root ::= \"{\" ws ( \"\\\"a\\\"\" ws \":\" ws null ws root-rest1 | \"\\\"b\\\"\" ws "
           "\":\" ws null ws root-rest2 | \"\\\"c\\\"\" ws \":\" ws null ws )? \"}\"\n"
           "root-rest2 ::= ( \",\" ws \"\\\"c\\\"\" ws \":\" ws null ws )?\n"
           "root-rest1 ::= ( \",\" ws \"\\\"b\\\"\" ws \":\" ws null ws )? root-rest2\n" NUL WS);
    /* additionalProperties absent: any more members, after the declared ones. */
    GOLDEN("{\"properties\":{\"a\":{\"type\":\"null\"}},\"required\":[\"a\"]}",
           "root ::= \"{\" ws \"\\\"a\\\"\" ws \":\" ws null ws ( \",\" ws string ws \":\" ws "
           "value ws )* \"}\"\n" VALUE OBJECT ARRAY STRING CHAR NUMBER BOOLEAN NUL WS);
    GOLDEN("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
           "root ::= \"{\" ws ( string ws \":\" ws integer ws ( \",\" ws string ws \":\" ws "
           "integer ws )* )? \"}\"\n" STRING CHAR INTEGER WS);
    /* Nested rules are named after their property. */
    GOLDEN("{\"properties\":{\"a b\":{\"type\":\"string\",\"maxLength\":3}},"
           "\"required\":[\"a b\"],\"additionalProperties\":false}",
           "root ::= \"{\" ws \"\\\"a b\\\"\" ws \":\" ws root-a-b ws \"}\"\n"
           "root-a-b ::= \"\\\"\" char{0,3} \"\\\"\"\n" CHAR WS);
}

static void test_golden_arrays(void **state)
{
    (void)state;
    GOLDEN("{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}",
           "root ::= \"[\" ws ( integer ws ( \",\" ws integer ws )* )? \"]\"\n" INTEGER WS);
    GOLDEN("{\"type\":\"array\",\"items\":{\"type\":\"null\"},\"minItems\":2,\"maxItems\":4}",
           "root ::= \"[\" ws null ws \",\" ws null ws ( \",\" ws null ws ){0,2} \"]\"\n" NUL WS);
    GOLDEN("{\"type\":\"array\",\"items\":{\"type\":\"null\"},\"maxItems\":1}",
           "root ::= \"[\" ws ( null ws )? \"]\"\n" NUL WS);
    GOLDEN("{\"prefixItems\":[{\"type\":\"null\"},{\"type\":\"boolean\"}],\"items\":false,"
           "\"minItems\":1}",
           "root ::= \"[\" ws null ws ( \",\" ws boolean ws )? \"]\"\n" BOOLEAN NUL WS);
    GOLDEN("{\"prefixItems\":[{\"type\":\"null\"}],\"items\":{\"type\":\"boolean\"}}",
           "root ::= \"[\" ws ( null ws ( \",\" ws boolean ws )* )? \"]\"\n" BOOLEAN NUL WS);
}

static void test_golden_integers(void **state)
{
    (void)state;
    GOLDEN("{\"type\":\"integer\",\"minimum\":0,\"maximum\":9}", "root ::= [0-9]\n");
    GOLDEN("{\"type\":\"integer\",\"minimum\":1,\"maximum\":100}",
           "root ::= ( [1-9] | [1-9] [0-9] | \"100\" )\n");
    GOLDEN("{\"type\":\"integer\",\"minimum\":-5,\"maximum\":-2}", "root ::= \"-\" [2-5]\n");
    GOLDEN("{\"type\":\"integer\",\"minimum\":10}", "root ::= ( [1-9] [0-9] | [1-9] [0-9]{2,} )\n");
    GOLDEN("{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":5}",
           "root ::= [1-4]\n");
    GOLDEN("{\"type\":\"integer\",\"minimum\":23,\"maximum\":71}",
           "root ::= ( \"2\" [3-9] | [3-6] [0-9] | \"7\" [0-1] )\n");
}

static void test_golden_composition(void **state)
{
    (void)state;
    GOLDEN("{\"anyOf\":[{\"type\":\"string\",\"maxLength\":2},{\"type\":\"null\"}]}",
           "root ::= root-0 | null\nroot-0 ::= \"\\\"\" char{0,2} \"\\\"\"\n" CHAR NUL);
    GOLDEN("{\"oneOf\":[{\"type\":\"boolean\"},{\"type\":\"null\"}]}",
           "root ::= boolean | null\n" BOOLEAN NUL);
    GOLDEN("{\"$defs\":{\"n\":{\"type\":[\"null\",\"array\"],\"items\":{\"$ref\":\"#/$defs/n\"}}},"
           "\"$ref\":\"#/$defs/n\"}",
           "root ::= def-n\n"
           "def-n ::= null | \"[\" ws ( def-n ws ( \",\" ws def-n ws )* )? \"]\"\n" NUL WS);
    GOLDEN("{\"definitions\":{\"x y\":{\"type\":\"integer\"}},\"type\":\"array\","
           "\"items\":{\"$ref\":\"#/definitions/x y\"},\"maxItems\":2}",
           "root ::= \"[\" ws ( def-x-y ws ( \",\" ws def-x-y ws )? )? \"]\"\n"
           "def-x-y ::= integer\n" INTEGER WS);
}

/* ---- Refusals ---- */

static void test_unsupported_keywords(void **state)
{
    (void)state;
    static const char *const keywords[] = {
        "patternProperties",
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "multipleOf",
        "minProperties",
        "maxProperties",
        "uniqueItems",
        "contains",
        "propertyNames",
        "dependentRequired",
        "unevaluatedProperties",
        "contentEncoding",
        "$anchor",
        "$dynamicRef",
        "dependencies",
        "foo",
    };
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++) {
        char schema[256], at_root[128], nested[128];
        snprintf(schema, sizeof schema, "{\"%s\":1}", keywords[i]);
        snprintf(at_root, sizeof at_root, "unsupported keyword '%s' at #", keywords[i]);
        REFUSED(schema, LLAMAD_EUNSUPPORTED, at_root, NULL);
        snprintf(schema, sizeof schema,
                 "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\","
                 "\"items\":{\"%s\":1}}}}",
                 keywords[i]);
        snprintf(nested, sizeof nested, "unsupported keyword '%s' at #/properties/a/items",
                 keywords[i]);
        REFUSED(schema, LLAMAD_EUNSUPPORTED, nested, NULL);
    }
    REFUSED("{\"anyOf\":[{\"type\":\"null\"},{\"x-y\":1}]}", LLAMAD_EUNSUPPORTED,
            "'x-y' at #/anyOf/1", NULL);
    REFUSED("{\"$defs\":{\"a/b\":{\"not\":{}}},\"$ref\":\"#/$defs/a~1b\"}", LLAMAD_EUNSUPPORTED,
            "'$ref'", NULL);
    REFUSED("{\"$defs\":{\"a\":{\"not\":{}}},\"$ref\":\"#/$defs/a\"}", LLAMAD_EUNSUPPORTED,
            "'not' at #/$defs/a", NULL);
    REFUSED("{\"properties\":{\"a~/\":{\"not\":{}}}}", LLAMAD_EUNSUPPORTED,
            "'not' at #/properties/a~0~1", NULL);
    /* Keywords beside $ref and anyOf, bounds on numbers, formats, refs. */
    REFUSED("{\"$defs\":{\"a\":{}},\"$ref\":\"#/$defs/a\",\"type\":\"string\"}",
            LLAMAD_EUNSUPPORTED, "'type'", "$ref");
    REFUSED("{\"anyOf\":[{}],\"minimum\":1}", LLAMAD_EUNSUPPORTED, "'minimum'", "anyOf");
    REFUSED("{\"type\":\"number\",\"minimum\":1}", LLAMAD_EUNSUPPORTED, "'minimum' at #", NULL);
    REFUSED("{\"maximum\":1}", LLAMAD_EUNSUPPORTED, "'maximum'", NULL);
    REFUSED("{\"type\":\"string\",\"format\":\"email\"}", LLAMAD_EUNSUPPORTED, "'format'", "email");
    REFUSED("{\"$ref\":\"#/$defs/nope\"}", LLAMAD_EUNSUPPORTED, "'$ref'", "nope");
    REFUSED("{\"$ref\":\"http://example.com/s.json\"}", LLAMAD_EUNSUPPORTED, "'$ref'", NULL);
    REFUSED("{\"$ref\":\"#\"}", LLAMAD_EUNSUPPORTED, "'$ref'", NULL);
    REFUSED("{\"properties\":{\"a\":false}}", LLAMAD_EUNSUPPORTED, "'false' at #/properties/a",
            NULL);
    REFUSED("{\"required\":[\"a\"]}", LLAMAD_EUNSUPPORTED, "'required'", "'a'");
    /* Recursion that consumes nothing: left recursion, refused. */
    REFUSED("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}",
            LLAMAD_EUNSUPPORTED, "'$ref'", "def-a refers back to itself");
    REFUSED("{\"$defs\":{\"a\":{\"anyOf\":[{\"type\":\"null\"},{\"$ref\":\"#/$defs/b\"}]},"
            "\"b\":{\"oneOf\":[{\"$ref\":\"#/$defs/a\"}]}},\"$ref\":\"#/$defs/a\"}",
            LLAMAD_EUNSUPPORTED, "'$ref'", "refers back to itself");
    REFUSED("{\"$defs\":{\"a\":{\"properties\":{\"x\":{\"$ref\":\"#/$defs/b\"}}},"
            "\"b\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"},{\"$ref\":\"#/$defs/b\"}]}},"
            "\"$ref\":\"#/$defs/a\"}",
            LLAMAD_EUNSUPPORTED, "'$ref'", "def-b refers back to itself");
    REFUSED("{\"type\":\"string\",\"pattern\":\"a\",\"minLength\":1}", LLAMAD_EUNSUPPORTED,
            "'minLength'", NULL);
}

static void test_unsupported_patterns(void **state)
{
    (void)state;
    static const char *const patterns[] = {
        "a(?=b)",   "a(?!b)",      "(?<=a)b",   "(?<n>a)",
        "(a)\\\\1", "a*?",         "a+?",       "a??",
        "a{2}?",    "a*+",         "\\\\bword", "a^b",
        "a$b",      "*a",          "a**",       "(a",
        "a)",       "[a",          "[z-a]",     "a{3,1}",
        "a{2000}",  "\\\\k<n>",    "^a|b",      "a|b$",
        "\\\\p{L}", "[[:alpha:]]", "a{x}",      "[^\\\\x00-\\\\u{10FFFF}]",
    };
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        char schema[256];
        snprintf(schema, sizeof schema, "{\"type\":\"string\",\"pattern\":\"%s\"}", patterns[i]);
        REFUSED(schema, LLAMAD_EUNSUPPORTED, "'pattern' at #", NULL);
    }
}

static void test_malformed_keywords(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"{\"type\":\"str\"}", "'type'"},
        {"{\"type\":[]}", "'type'"},
        {"{\"type\":[\"null\",\"null\"]}", "'type'"},
        {"{\"type\":3}", "'type'"},
        {"{\"properties\":[]}", "'properties'"},
        {"{\"required\":\"a\"}", "'required'"},
        {"{\"required\":[1]}", "'required'"},
        {"{\"additionalProperties\":1}", "'additionalProperties'"},
        {"{\"enum\":[]}", "'enum'"},
        {"{\"enum\":3}", "'enum'"},
        {"{\"type\":\"string\",\"enum\":[1]}", "'enum' or 'const'"},
        {"{\"items\":3}", "'items'"},
        {"{\"prefixItems\":{}}", "'prefixItems'"},
        {"{\"minItems\":-1}", "'minItems'"},
        {"{\"maxItems\":1.5}", "'maxItems'"},
        {"{\"minLength\":\"3\"}", "'minLength'"},
        {"{\"minLength\":3,\"maxLength\":2}", "'maxLength'"},
        {"{\"minItems\":3,\"maxItems\":2}", "'minItems'"},
        {"{\"prefixItems\":[{}],\"items\":false,\"minItems\":2}", "'minItems'"},
        {"{\"type\":\"integer\",\"minimum\":\"1\"}", "'minimum'"},
        {"{\"type\":\"integer\",\"minimum\":3,\"maximum\":2}", "minimum and maximum"},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":2,\"exclusiveMaximum\":3}",
         "minimum and maximum"},
        {"{\"type\":\"integer\",\"maximum\":1e300}", "'maximum'"},
        {"{\"anyOf\":[]}", "'anyOf'"},
        {"{\"oneOf\":{}}", "'oneOf'"},
        {"{\"$ref\":1}", "'$ref'"},
        {"{\"pattern\":1}", "'pattern'"},
        {"{\"format\":1}", "'format'"},
        {"3", "must be an object or a boolean"},
        {"{\"properties\":{\"a\":[]}}", "#/properties/a must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        REFUSED(cases[i][0], LLAMAD_EINVAL, cases[i][1], NULL);
}

/* A schema text of a given shape, built up in a buffer. */
static char *repeat_text(const char *head, const char *unit, int n, const char *sep,
                         const char *tail)
{
    struct llamad_buf b = LLAMAD_BUF_INIT;
    llamad_buf_append(&b, head, strlen(head));
    for (int i = 0; i < n; i++) {
        char u[128];
        snprintf(u, sizeof u, unit, i);
        if (i)
            llamad_buf_append(&b, sep, strlen(sep));
        llamad_buf_append(&b, u, strlen(u));
    }
    llamad_buf_append(&b, tail, strlen(tail));
    return b.data;
}

static void test_limits(void **state)
{
    (void)state;
    REFUSED("{\"type\":\"string\",\"maxLength\":1001}", LLAMAD_EINVAL, "'maxLength'", "1000");
    REFUSED("{\"type\":\"string\",\"minLength\":100000}", LLAMAD_EINVAL, "'minLength'", NULL);
    REFUSED("{\"type\":\"array\",\"maxItems\":5000}", LLAMAD_EINVAL, "'maxItems'", NULL);
    REFUSED("{\"type\":\"string\",\"pattern\":\"^a{1001}$\"}", LLAMAD_EUNSUPPORTED, "'pattern'",
            "1000");
    /* Too many enum values. */
    char *s = repeat_text("{\"enum\":[", "%d", 1001, ",", "]}");
    REFUSED(s, LLAMAD_EINVAL, "'enum'", "1000");
    free(s);
    s = repeat_text("{\"enum\":[", "%d", 1000, ",", "]}");
    free(convert(s));
    free(s);
    /* Nested too deep. */
    s = repeat_text("", "{\"items\":", 70, "", "{}");
    struct llamad_buf b = LLAMAD_BUF_INIT;
    llamad_buf_append(&b, s, strlen(s));
    for (int i = 0; i < 70; i++)
        llamad_buf_append(&b, "}", 1);
    REFUSED(b.data, LLAMAD_EINVAL, "nested over 64", NULL);
    free(s);
    llamad_buf_free(&b);
    /* Too many rules: many properties, each a rule of its own. */
    s = repeat_text("{\"properties\":{", "\"p%d\":{\"type\":\"string\",\"maxLength\":2}", 1100, ",",
                    "}}");
    REFUSED(s, LLAMAD_EINVAL, "more than 1024 grammar rules", NULL);
    free(s);
    /* Too many bytes: long literal values. */
    s = repeat_text("{\"enum\":[", "\"%0100d\"", 1000, ",", "]}");
    struct llamad_buf big = LLAMAD_BUF_INIT;
    llamad_buf_append(&big, "{\"anyOf\":[", 10);
    for (int i = 0; i < 4; i++) {
        if (i)
            llamad_buf_append(&big, ",", 1);
        llamad_buf_append(&big, s, strlen(s));
    }
    llamad_buf_append(&big, "]}", 2);
    REFUSED(big.data, LLAMAD_EINVAL, "262144 bytes", NULL);
    free(s);
    llamad_buf_free(&big);
    /* Many optional properties stay linear: 500 of them, a few hundred KB at most. */
    s = repeat_text("{\"additionalProperties\":false,\"properties\":{", "\"p%d\":{}", 300, ",",
                    "}}");
    char *g = convert(s);
    assert_true(strlen(g) < 100000);
    free(g);
    free(s);
}

/* ---- Integer ranges against a brute force ---- */

static void check_range(bool has_lo, long lo, bool has_hi, long hi)
{
    char schema[160];
    int n = snprintf(schema, sizeof schema, "{\"type\":\"integer\"");
    if (has_lo)
        n += snprintf(schema + n, sizeof schema - (size_t)n, ",\"minimum\":%ld", lo);
    if (has_hi)
        n += snprintf(schema + n, sizeof schema - (size_t)n, ",\"maximum\":%ld", hi);
    snprintf(schema + n, sizeof schema - (size_t)n, "}");
    char *text = convert(schema);
    struct llamad_grammar *g = grammar_parse(text);
    long from = (has_lo ? lo : has_hi ? hi : 0) - 60, to = (has_hi ? hi : has_lo ? lo : 0) + 60;
    for (long v = from; v <= to; v++) {
        char num[32];
        snprintf(num, sizeof num, "%ld", v);
        bool want = (!has_lo || v >= lo) && (!has_hi || v <= hi);
        if (grammar_accepts(g, num) != want)
            fail_msg("%s: %ld %s; grammar:\n%s", schema, v, want ? "refused" : "accepted", text);
    }
    /* Never another spelling. */
    static const char *const others[] = {"-0", "00", "01", "+1", "", "-", "1.0", "1e2", " 1"};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        if (grammar_accepts(g, others[i]))
            fail_msg("%s accepts '%s'", schema, others[i]);
    }
    llamad_grammar_free(g);
    free(text);
}

static void test_integer_ranges_exhaustive(void **state)
{
    (void)state;
    /* Every range with both ends in [-130, 130] stepping by 7, and every one
     * with one end near a power of ten. */
    for (long lo = -130; lo <= 130; lo += 7) {
        for (long hi = lo; hi <= 130; hi += 11)
            check_range(true, lo, true, hi);
    }
    static const long edges[] = {-1001, -1000, -999, -101, -100, -99, -11, -10, -9,   -1,  0,
                                 1,     9,     10,   11,   99,   100, 101, 999, 1000, 1001};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
        for (size_t j = i; j < sizeof edges / sizeof *edges; j++)
            check_range(true, edges[i], true, edges[j]);
        check_range(true, edges[i], false, 0);
        check_range(false, 0, true, edges[i]);
    }
    check_range(true, 123456, true, 987654);
    check_range(true, -987654, true, -123456);
    check_range(true, 1999, true, 30001);
    check_range(true, 9007199254740900, true, 9007199254740991);
    check_range(true, -9007199254740991, true, -9007199254740900);
    /* Large values beyond the brute force's window. */
    MATCHES("{\"type\":\"integer\",\"minimum\":-5}", "123456789012345678901234567890");
    NO_MATCH("{\"type\":\"integer\",\"minimum\":-5}", "-123456789012345678901234567890");
    MATCHES("{\"type\":\"integer\",\"maximum\":5}", "-123456789012345678901234567890");
    NO_MATCH("{\"type\":\"integer\",\"maximum\":5}", "123456789012345678901234567890");
    /* Fractional bounds round inward; exclusive bounds step past. */
    check_range(true, 3, true, 7);
    MATCHES("{\"type\":\"integer\",\"minimum\":2.5,\"maximum\":4.5}", "3");
    NO_MATCH("{\"type\":\"integer\",\"minimum\":2.5,\"maximum\":4.5}", "2");
    NO_MATCH("{\"type\":\"integer\",\"minimum\":2.5,\"maximum\":4.5}", "5");
    MATCHES("{\"type\":\"integer\",\"exclusiveMinimum\":2.5,\"exclusiveMaximum\":4}", "3");
    NO_MATCH("{\"type\":\"integer\",\"exclusiveMinimum\":2.5,\"exclusiveMaximum\":4}", "4");
    NO_MATCH("{\"type\":\"integer\",\"exclusiveMinimum\":3,\"minimum\":1}", "3");
    MATCHES("{\"type\":\"integer\",\"exclusiveMinimum\":3,\"minimum\":1}", "4");
}

/* ---- Structure: what the grammars match ---- */

static void test_whitespace_bounded(void **state)
{
    (void)state;
    const char *schema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\"}}}";
    MATCHES(schema, "{\"a\":[1,2]}");
    MATCHES(schema, "{ \"a\" : [ 1 , 2 ] }");
    MATCHES(schema, "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
    MATCHES(schema, "{\n\t\t\"a\":[]}");
    /* At most 20 after a newline, one space alone, never two runs. */
    MATCHES(schema, "{\n                    \"a\":[]}");
    NO_MATCH(schema, "{\n                     \"a\":[]}");
    NO_MATCH(schema, "{  \"a\":[]}");
    NO_MATCH(schema, "{\n\n\"a\":[]}");
    NO_MATCH(schema, " {\"a\":[]}");
    NO_MATCH(schema, "{\"a\":[]} ");
    NO_MATCH(schema, "{\r\"a\":[]}");
}

static void test_strings_escapes(void **state)
{
    (void)state;
    const char *schema = "{\"type\":\"string\",\"maxLength\":3}";
    MATCHES(schema, "\"\\\\\\\"\\/\"");
    MATCHES(schema, "\"\\b\\f\\n\"");
    MATCHES(schema, "\"\\r\\t\\u00e9\"");
    MATCHES(schema, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""); /* é € 😀: three characters */
    NO_MATCH(schema, "\"abcd\"");
    NO_MATCH(schema, "\"\\x\"");
    NO_MATCH(schema, "\"\\u00e\"");
    NO_MATCH(schema, "\"\t\"");
    NO_MATCH(schema, "\"\x01\"");
    NO_MATCH(schema, "\"\"\"");
}

static void test_optional_members(void **state)
{
    (void)state;
    /* Every subset of four optional members, in order; never out of order. */
    const char *schema =
        "{\"properties\":{\"a\":{\"const\":1},\"b\":{\"const\":2},\"c\":{\"const\":"
        "3},\"d\":{\"const\":4}},\"additionalProperties\":false}";
    const char *schema_req = "{\"properties\":{\"a\":{\"const\":1},\"b\":{\"const\":2},\"c\":{"
                             "\"const\":3},\"d\":{\"const\":4}},\"required\":[\"c\"]}";
    for (unsigned mask = 0; mask < 16; mask++) {
        char text[64] = "{";
        for (int i = 0; i < 4; i++) {
            if (mask & 1u << i)
                snprintf(text + strlen(text), sizeof text - strlen(text), "%s\"%c\":%d",
                         strlen(text) > 1 ? "," : "", 'a' + i, i + 1);
        }
        strcat(text, "}");
        check_matches(schema, text, true, __LINE__);
        check_matches(schema_req, text, (mask & 4) != 0, __LINE__);
    }
    NO_MATCH(schema, "{\"b\":2,\"a\":1}");
    NO_MATCH(schema, "{\"a\":1,}");
    NO_MATCH(schema, "{,\"a\":1}");
    NO_MATCH(schema, "{\"a\":1,\"a\":1}");
    NO_MATCH(schema, "{\"e\":1}");
    /* Absent additionalProperties: more members after the declared ones. */
    MATCHES(schema_req, "{\"c\":3,\"e\":[1]}");
    MATCHES(schema_req, "{\"a\":1,\"c\":3,\"d\":4,\"e\":null,\"f\":{}}");
    NO_MATCH(schema_req, "{\"e\":1,\"c\":3}");
    MATCHES("{\"properties\":{\"a\":{\"const\":1}}}", "{\"z\":0}");
    MATCHES("{\"properties\":{\"a\":{\"const\":1}}}", "{\"a\":1,\"z\":0,\"y\":1}");
    MATCHES("{\"properties\":{\"a\":{\"const\":1}}}", "{}");
}

static void test_array_lengths(void **state)
{
    (void)state;
    char schema[160], text[128];
    for (int lo = 0; lo <= 3; lo++) {
        for (int hi = lo; hi <= 4; hi++) {
            for (int k = 0; k <= 3; k++) {
                for (int items_false = 0; items_false <= 1; items_false++) {
                    int n =
                        snprintf(schema, sizeof schema, "{\"minItems\":%d,\"maxItems\":%d", lo, hi);
                    if (k)
                        n +=
                            snprintf(schema + n, sizeof schema - (size_t)n, ",\"prefixItems\":[%s]",
                                     k == 1   ? "{\"const\":0}"
                                     : k == 2 ? "{\"const\":0},{\"const\":1}"
                                              : "{\"const\":0},{\"const\":1},{\"const\":2}");
                    snprintf(schema + n, sizeof schema - (size_t)n, ",\"items\":%s}",
                             items_false ? "false" : "{\"const\":9}");
                    int lmax = items_false ? (hi < k ? hi : k) : hi;
                    if (lo > lmax) {
                        REFUSED(schema, LLAMAD_EINVAL, "'minItems'", NULL);
                        continue;
                    }
                    for (int len = 0; len <= 6; len++) {
                        strcpy(text, "[");
                        for (int j = 0; j < len; j++)
                            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%d",
                                     j ? "," : "", j < k ? j : 9);
                        strcat(text, "]");
                        check_matches(schema, text, len >= lo && len <= lmax, __LINE__);
                    }
                }
            }
        }
    }
    /* An item of the wrong schema. */
    NO_MATCH("{\"prefixItems\":[{\"const\":0}],\"items\":{\"const\":9}}", "[9]");
    NO_MATCH("{\"prefixItems\":[{\"const\":0}],\"items\":{\"const\":9}}", "[0,0]");
}

static void test_patterns_match(void **state)
{
    (void)state;
    const char *phone = "{\"pattern\":\"^\\\\(?\\\\d{3}\\\\)?[- ]?\\\\d{3}-\\\\d{4}$\"}";
    MATCHES(phone, "\"(555) 123-4567\"");
    MATCHES(phone, "\"555-123-4567\"");
    NO_MATCH(phone, "\"55-123-4567\"");
    const char *words = "{\"pattern\":\"^(\\\\w+\\\\s?)+$\"}";
    MATCHES(words, "\"hello world\"");
    MATCHES(words, "\"a\\tb\\n\"");
    NO_MATCH(words, "\"hello, world\"");
    const char *quote = "{\"pattern\":\"^a\\\"b\\\\\\\\c$\"}"; /* a"b\c */
    MATCHES(quote, "\"a\\\"b\\\\c\"");
    NO_MATCH(quote, "\"a\"b\\c\"");
    const char *dot = "{\"pattern\":\"^.{2}$\"}";
    MATCHES(dot, "\"\xc3\xa9x\"");
    MATCHES(dot, "\"\\\"\\t\"");
    NO_MATCH(dot, "\"\\nx\"");
    NO_MATCH(dot, "\"abc\"");
    const char *unanchored = "{\"pattern\":\"ab|cd\"}";
    MATCHES(unanchored, "\"xxcdyy\"");
    MATCHES(unanchored, "\"ab\"");
    NO_MATCH(unanchored, "\"acbd\"");
    const char *neg = "{\"pattern\":\"^[^0-9\\\\s]*$\"}";
    MATCHES(neg, "\"abc\\\"\\\\\\u0001\"");
    NO_MATCH(neg, "\"a1\"");
    NO_MATCH(neg, "\"a b\"");
    const char *class_escapes = "{\"pattern\":\"^[\\\\d\\\\-.]+$\"}";
    MATCHES(class_escapes, "\"1-2.3\"");
    NO_MATCH(class_escapes, "\"1_2\"");
    /* Escaped characters under a quantifier: the backslash and its letter repeat together. */
    const char *escaped = "{\"pattern\":\"^[\\\"\\\\n]{2}$\"}";
    MATCHES(escaped, "\"\\\"\\n\"");
    MATCHES(escaped, "\"\\n\\n\"");
    NO_MATCH(escaped, "\"\\\"\"");
    NO_MATCH(escaped, "\"\\\"n\"");
    const char *controls = "{\"pattern\":\"^[\\\\u0000-\\\\u001f]+$\"}";
    MATCHES(controls, "\"\\u0000\\b\\u001f\\t\"");
    NO_MATCH(controls, "\"\\u0020\"");
    NO_MATCH(controls, "\"\\u000A\""); /* the shortest spelling only: \n */
    MATCHES("{\"pattern\":\"^\\\\u0041\\\\u00e9$\"}", "\"A\xc3\xa9\"");
    const char *counted = "{\"pattern\":\"^x{2,}y{0,1}(?:z|w){3}$\"}";
    MATCHES(counted, "\"xxxyzwz\"");
    MATCHES(counted, "\"xxwww\"");
    NO_MATCH(counted, "\"xyzzz\"");
}

static void test_formats_match(void **state)
{
    (void)state;
    const char *date = "{\"type\":\"string\",\"format\":\"date\"}";
    MATCHES(date, "\"2024-02-29\"");
    MATCHES(date, "\"1999-12-31\"");
    NO_MATCH(date, "\"2024-13-01\"");
    NO_MATCH(date, "\"2024-00-10\"");
    NO_MATCH(date, "\"2024-01-32\"");
    NO_MATCH(date, "\"24-01-01\"");
    /* the calendar: month lengths, leap years, no year 0 */
    MATCHES(date, "\"2000-02-29\"");
    MATCHES(date, "\"0004-02-29\"");
    MATCHES(date, "\"2023-04-30\"");
    MATCHES(date, "\"0001-01-01\"");
    NO_MATCH(date, "\"2023-02-29\"");
    NO_MATCH(date, "\"1900-02-29\"");
    NO_MATCH(date, "\"2023-04-31\"");
    NO_MATCH(date, "\"2023-11-31\"");
    NO_MATCH(date, "\"2023-02-30\"");
    NO_MATCH(date, "\"0000-01-01\"");
    const char *time = "{\"type\":\"string\",\"format\":\"time\"}";
    MATCHES(time, "\"23:59:59Z\"");
    MATCHES(time, "\"08:30:00.123+02:00\"");
    NO_MATCH(time, "\"24:00:00Z\"");
    NO_MATCH(time, "\"12:60:00Z\"");
    NO_MATCH(time, "\"12:00:00\"");
    const char *dt = "{\"type\":\"string\",\"format\":\"date-time\"}";
    MATCHES(dt, "\"2024-05-06T07:08:09Z\"");
    MATCHES(dt, "\"2024-05-06t07:08:09.5-05:30\"");
    NO_MATCH(dt, "\"2024-05-06 07:08:09Z\"");
    const char *uuid = "{\"type\":\"string\",\"format\":\"uuid\"}";
    MATCHES(uuid, "\"123e4567-e89b-12d3-a456-426614174000\"");
    NO_MATCH(uuid, "\"123e4567e89b12d3a456426614174000\"");
    NO_MATCH(uuid, "\"123e4567-e89b-12d3-a456-42661417400g\"");
}

/* Every case of tests/data/json_schema_cases.json: each "valid" instance matched, each
 * "invalid" and "valid_but_refused" one not (tests/check_json_schema_cases.py
 * holds the labels to a JSON Schema validator). */
static void test_cases_file(void **state)
{
    (void)state;
    size_t size;
    char *text = test_read_file(test_data_path("json_schema_cases.json"), &size);
    assert_non_null(text);
    cJSON *cases = cJSON_Parse(text);
    free(text);
    assert_true(cJSON_IsArray(cases));
    int n = 0, instances = 0;
    for (const cJSON *cs = cases->child; cs; cs = cs->next, n++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(cs, "name");
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(cs, "schema");
        assert_true(cJSON_IsString(name) && schema);
        struct llamad_buf out = LLAMAD_BUF_INIT;
        char err[LLAMAD_ERR_MAX];
        if (llamad_json_schema_to_gbnf(schema, &out, err, sizeof err) != 0)
            fail_msg("case %s: %s", name->valuestring, err);
        struct llamad_grammar *g = grammar_parse(out.data);
        static const char *const labels[] = {"valid", "invalid", "valid_but_refused"};
        for (int l = 0; l < 3; l++) {
            bool valid = l == 0;
            const cJSON *list = cJSON_GetObjectItemCaseSensitive(cs, labels[l]);
            if (l == 2 && !list)
                continue;
            assert_true(cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0);
            for (const cJSON *inst = list->child; inst; inst = inst->next, instances++) {
                assert_true(cJSON_IsString(inst));
                if (grammar_accepts(g, inst->valuestring) != (bool)valid)
                    fail_msg("case %s: %s %s; grammar:\n%s", name->valuestring,
                             valid ? "refuses" : "accepts", inst->valuestring, out.data);
            }
        }
        llamad_grammar_free(g);
        llamad_buf_free(&out);
    }
    assert_true(n >= 30);
    print_message("%d cases, %d instances\n", n, instances);
    cJSON_Delete(cases);
}

static void test_json_object(void **state)
{
    (void)state;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    assert_int_equal(llamad_json_object_gbnf(&out), 0);
    assert_string_equal(out.data,
                        "root ::= object\n" VALUE OBJECT ARRAY STRING CHAR NUMBER BOOLEAN NUL WS);
    struct llamad_grammar *g = grammar_parse(out.data);
    assert_true(grammar_accepts(g, "{\"a\":[1,{\"b\":null}],\"c\":-1.5e3}"));
    assert_true(grammar_accepts(g, "{}"));
    assert_false(grammar_accepts(g, "[]"));
    assert_false(grammar_accepts(g, "{\"a\":01}"));
    assert_false(grammar_accepts(g, "{\"a\":1,}"));
    llamad_grammar_free(g);
    llamad_buf_free(&out);
}

/* Rules under a prefix: the entry named as asked, every other name prefixed
 * (references inside string literals and character classes left alone), so two
 * schemas with the same $defs and primitives make one grammar. */
static void test_prefixed_rules(void **state)
{
    (void)state;
    static const char *const schemas[] = {
        "{\"$defs\":{\"n\":{\"type\":[\"null\",\"array\"],\"items\":{\"$ref\":\"#/$defs/n\"}}},"
        "\"$ref\":\"#/$defs/n\"}",
        "{\"$defs\":{\"n\":{\"type\":\"string\",\"pattern\":\"^[a-c]x$\"}},\"type\":\"object\","
        "\"properties\":{\"root\":{\"$ref\":\"#/$defs/n\"},\"v\":{}},\"required\":[\"root\"]}",
    };
    struct llamad_buf out = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX];
    const char *head = "root ::= a | b\n";
    llamad_buf_append(&out, head, strlen(head));
    for (size_t i = 0; i < 2; i++) {
        cJSON *schema = cJSON_Parse(schemas[i]);
        assert_int_equal(llamad_json_schema_rules(schema, i ? "b" : "a", &out, err, sizeof err), 0);
        cJSON_Delete(schema);
    }
    assert_non_null(strstr(out.data, "\na ::= a-def-n\n"
                                     "a-def-n ::= a-null | \"[\" a-ws ( a-def-n a-ws ( \",\" a-ws "
                                     "a-def-n a-ws )* )? \"]\"\n"
                                     "a-null ::= \"null\"\n"
                                     "a-ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n"
                                     "b ::= "));
    assert_non_null(strstr(out.data, "\nb-value ::= b-object | b-array | b-string | b-number | "
                                     "b-boolean | b-null\n"));
    assert_null(strstr(out.data, "\nvalue ::="));
    struct llamad_grammar *g = grammar_parse(out.data);
    assert_true(grammar_accepts(g, "[[],null]"));
    assert_true(grammar_accepts(g, "{\"root\": \"bx\", \"v\": [1, {\"a\": null}]}"));
    assert_false(grammar_accepts(g, "{\"root\": \"dx\"}"));
    assert_false(grammar_accepts(g, "[1]"));
    llamad_grammar_free(g);

    /* A name the grammar could not use. */
    cJSON *schema = cJSON_CreateTrue();
    size_t len = out.len;
    assert_int_equal(llamad_json_schema_rules(schema, "1a", &out, err, sizeof err), LLAMAD_EINVAL);
    assert_int_equal(llamad_json_schema_rules(schema, "a_b", &out, err, sizeof err), LLAMAD_EINVAL);
    assert_int_equal(llamad_json_schema_rules(schema, "", &out, err, sizeof err), LLAMAD_EINVAL);
    assert_int_equal(out.len, len);
    cJSON_Delete(schema);
    llamad_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_primitives),
        cmocka_unit_test(test_golden_strings),
        cmocka_unit_test(test_golden_literals),
        cmocka_unit_test(test_golden_objects),
        cmocka_unit_test(test_golden_arrays),
        cmocka_unit_test(test_golden_integers),
        cmocka_unit_test(test_golden_composition),
        cmocka_unit_test(test_unsupported_keywords),
        cmocka_unit_test(test_unsupported_patterns),
        cmocka_unit_test(test_malformed_keywords),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_integer_ranges_exhaustive),
        cmocka_unit_test(test_whitespace_bounded),
        cmocka_unit_test(test_strings_escapes),
        cmocka_unit_test(test_optional_members),
        cmocka_unit_test(test_array_lengths),
        cmocka_unit_test(test_patterns_match),
        cmocka_unit_test(test_formats_match),
        cmocka_unit_test(test_cases_file),
        cmocka_unit_test(test_json_object),
        cmocka_unit_test(test_prefixed_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
