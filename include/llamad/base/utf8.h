/* UTF-8 scanning: the tokenizer, the streaming detokenizer and the API's checks
 * of request text. */
#ifndef LLAMAD_UTF8_H
#define LLAMAD_UTF8_H

#include <stddef.h>

enum llamad_utf8_status {
    LLAMAD_UTF8_CHAR,    /* a whole valid character */
    LLAMAD_UTF8_PARTIAL, /* all of s[0..len) is the valid start of a longer character */
    LLAMAD_UTF8_INVALID, /* s[0..*n) is a maximal invalid subpart: one U+FFFD replaces it */
};

/* Classifies the character that starts s[0..len), len > 0, by RFC 3629 (no
 * overlongs, no surrogates, nothing above U+10FFFF); *n receives the byte count
 * the status speaks of (for PARTIAL, len). */
enum llamad_utf8_status llamad_utf8_next(const char *s, size_t len, size_t *n);

/* Length of the longest prefix of s[0..len) that is valid UTF-8 (whole characters,
 * no overlongs, no surrogates, nothing above U+10FFFF). */
size_t llamad_utf8_valid_prefix(const char *s, size_t len);

#endif
