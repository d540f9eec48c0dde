/* libFuzzer target: arbitrary bytes parsed as JSON and converted to a GBNF
 * grammar as a request's json_schema would be. A success is a grammar of whole
 * "name ::= body" lines, rule root first, within the size limit, and under a
 * prefix (a tool's parameters) the same lines with every rule named under it;
 * a refusal has a message and leaves the output as it was. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/buf.h"
#include "llamad/base/error.h"
#include "llamad/server/json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; (s = strchr(s, '\n')) != NULL; s++)
        n++;
    return n;
}

/* The rules under the prefix "p": as many lines, "p ::=" first, then "p-NAME ::=". */
static void check_prefixed(const cJSON *schema, const char *plain)
{
    struct llamad_buf out = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX] = "";
    int rc = llamad_json_schema_rules(schema, "p", &out, err, sizeof err);
    if (rc == LLAMAD_ENOMEM)
        return;
    check(rc == 0 && count_lines(out.data) == count_lines(plain));
    check(memcmp(out.data, "p ::=", 5) == 0);
    for (const char *line = strchr(out.data, '\n') + 1; *line; line = strchr(line, '\n') + 1)
        check(strncmp(line, "p-", 2) == 0);
    llamad_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *schema = cJSON_ParseWithLength((const char *)data, size);
    if (!schema)
        return 0;
    struct llamad_buf out = LLAMAD_BUF_INIT;
    char err[LLAMAD_ERR_MAX] = "";
    int rc = llamad_json_schema_to_gbnf(schema, &out, err, sizeof err);
    if (rc == 0) {
        check(out.len > 9 && memcmp(out.data, "root ::=", 8) == 0);
        check(out.data[out.len - 1] == '\n' && strlen(out.data) == out.len);
        check(out.len < LLAMAD_SCHEMA_MAX_BYTES + 4096); /* the primitives beside the rules */
        for (const char *line = out.data; *line; line = strchr(line, '\n') + 1)
            check(strstr(line, " ::=") != NULL && strstr(line, " ::=") < strchr(line, '\n'));
        check_prefixed(schema, out.data);
    } else {
        check(rc == LLAMAD_EINVAL || rc == LLAMAD_EUNSUPPORTED || rc == LLAMAD_ENOMEM);
        check(err[0] != '\0' && out.len == 0 && out.data == NULL);
    }
    llamad_buf_free(&out);
    cJSON_Delete(schema);
    return 0;
}
