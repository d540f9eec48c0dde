/* JSON Schema to GBNF: a schema (a cJSON tree) becomes the text of a grammar,
 * in llama.cpp's GBNF notation, whose root rule matches exactly the JSON texts
 * the schema accepts (within the subset and the spelling rules below). The
 * grammar layer compiles that text; this module only writes it.
 *
 * The subset: type (a name or a list of them), properties, required,
 * additionalProperties, enum, const, items, prefixItems, minItems, maxItems,
 * minLength, maxLength, minimum, maximum, exclusiveMinimum, exclusiveMaximum
 * (integers only), anyOf, oneOf (as anyOf), $ref to "#/$defs/NAME" or
 * "#/definitions/NAME" (recursion allowed), pattern (the regular expression
 * subset in the README), format date, time, date-time, uuid. Annotations
 * (title, description, $schema, $id, default, examples, $comment) are ignored;
 * any other keyword is refused, naming it and its place in the schema.
 *
 * Spelling: whitespace between tokens is empty, one space, or a newline and at
 * most LLAMAD_SCHEMA_MAX_INDENT spaces or tabs; enum and const values are their
 * compact JSON text; strings matched by pattern, format or const spell each
 * character as JSON's shortest form.
 *
 * Pure; runs on the loop thread. */
#ifndef LLAMAD_JSON_SCHEMA_H
#define LLAMAD_JSON_SCHEMA_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "llamad/base/buf.h"

/* Limits a hostile schema meets (each refusal names it). */
#define LLAMAD_SCHEMA_MAX_INDENT 20    /* spaces or tabs after a newline */
#define LLAMAD_SCHEMA_MAX_RULES 1024   /* rules in one grammar */
#define LLAMAD_SCHEMA_MAX_BYTES 262144 /* bytes of grammar text */
#define LLAMAD_SCHEMA_MAX_REPEAT 1000  /* minLength, maxLength, minItems, maxItems, {m,n} */
#define LLAMAD_SCHEMA_MAX_ENUM 1000    /* values of one enum */
#define LLAMAD_SCHEMA_MAX_DEPTH 64     /* nested schemas */
#define LLAMAD_SCHEMA_MAX_PATTERN 1024 /* bytes of one pattern */
#define LLAMAD_SCHEMA_MAX_INTEGER 9007199254740991.0 /* |minimum|, |maximum|: 2^53 - 1 */
#define LLAMAD_SCHEMA_MAX_RULE_NAME 64               /* bytes of llamad_json_schema_rules's rule */

/* Appends the grammar for schema (an object, or true/false) to out: rule "root"
 * first, then the schema's rules in the order met, then the shared primitives
 * it uses. Returns 0; LLAMAD_EUNSUPPORTED with err naming the keyword and its
 * JSON pointer ("unsupported keyword 'patternProperties' at #/properties/a");
 * LLAMAD_EINVAL for a malformed keyword value or a schema over a limit; or
 * LLAMAD_ENOMEM. On failure out holds what it held before. */
int llamad_json_schema_to_gbnf(const cJSON *schema, struct llamad_buf *out, char *err,
                               size_t err_len);

/* As llamad_json_schema_to_gbnf, with the entry rule named rule instead of
 * "root" and every other rule's name prefixed with rule and "-" (a rule "def-x"
 * becomes "RULE-def-x"), so that the rules of several schemas live in one
 * grammar (a tool's parameters, tool_calls.h). rule is a letter, then letters,
 * digits and '-', LLAMAD_SCHEMA_MAX_RULE_NAME bytes at most (else LLAMAD_EINVAL). */
int llamad_json_schema_rules(const cJSON *schema, const char *rule, struct llamad_buf *out,
                             char *err, size_t err_len);

/* The grammar for any JSON object (response_format {"type": "json_object"}). */
int llamad_json_object_gbnf(struct llamad_buf *out);

#endif
