/* JSON written as text into a growing buffer, for the answers that hold a
 * field per token (logprobs, /tokenize): a node per field would cost ~100 bytes
 * each where the text costs a few. Defined in json_write.c. Private to src/server/. */
#ifndef LLAMAD_JSON_WRITE_H
#define LLAMAD_JSON_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "llamad/base/buf.h"

/* Text being written; the first failed allocation is kept in rc, and every
 * write after it does nothing. */
struct json_out {
    struct llamad_buf b;
    int rc;
};

/* Bytes as they are (JSON syntax, keys the caller spells). */
void json_raw(struct json_out *o, const char *s);
/* s[0..n) as a JSON string. Bytes that are not UTF-8 become U+FFFD, one per
 * maximal invalid subpart; control characters are escaped. */
void json_string(struct json_out *o, const char *s, size_t n);
void json_int(struct json_out *o, int64_t v);
/* A float as the shortest decimal that reads back as the same float. JSON has
 * no infinities: -inf (or NaN) becomes -9999, OpenAI's value for "very unlikely". */
void json_logprob(struct json_out *o, float f);
/* Bytes as an array of their values, [240,159]. */
void json_byte_array(struct json_out *o, const char *bytes, size_t n);

#endif
