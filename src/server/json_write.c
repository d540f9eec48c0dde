/* JSON as text (json_write.h). */
#include "json_write.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/base/utf8.h"

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

static void append(struct json_out *o, const char *s, size_t n)
{
    if (!o->rc)
        o->rc = llamad_buf_append(&o->b, s, n);
}

void json_raw(struct json_out *o, const char *s)
{
    append(o, s, strlen(s));
}

static const char *short_escape(unsigned char c)
{
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: return NULL;
    }
}

void json_string(struct json_out *o, const char *s, size_t n)
{
    append(o, "\"", 1);
    for (size_t i = 0, k = 1; !o->rc && i < n; i += k) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = short_escape(c);
        char hex[8];
        k = 1;
        if (esc) {
            json_raw(o, esc);
        } else if (c < 0x20) {
            snprintf(hex, sizeof hex, "\\u%04x", c);
            append(o, hex, 6);
        } else if (llamad_utf8_next(s + i, n - i, &k) == LLAMAD_UTF8_CHAR) {
            append(o, s + i, k);
        } else {
            append(o, REPLACEMENT, sizeof REPLACEMENT - 1);
        }
    }
    append(o, "\"", 1);
}

void json_int(struct json_out *o, int64_t v)
{
    char s[24];
    append(o, s, (size_t)snprintf(s, sizeof s, "%" PRId64, v));
}

void json_logprob(struct json_out *o, float f)
{
    if (!isfinite(f)) {
        json_raw(o, "-9999");
        return;
    }
    char s[32];
    int digits = 6;
    do
        snprintf(s, sizeof s, "%.*g", digits, (double)f);
    while (strtof(s, NULL) != f && digits++ < 9); /* 9 digits always read back */
    json_raw(o, s);
}

void json_byte_array(struct json_out *o, const char *bytes, size_t n)
{
    append(o, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            append(o, ",", 1);
        json_int(o, (unsigned char)bytes[i]);
    }
    append(o, "]", 1);
}
