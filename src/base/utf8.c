#include "llamad/base/utf8.h"

#include <stdint.h>

/* Length of the character a lead byte announces, 0 when it cannot lead one
 * (continuation bytes, the overlong leads C0/C1, and F5..FF beyond U+10FFFF). */
static size_t lead_length(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

/* The second byte's range is narrower after four leads: that is what rules out
 * overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4). */
static void second_byte_range(uint8_t lead, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    switch (lead) {
    case 0xE0: *lo = 0xA0; break;
    case 0xED: *hi = 0x9F; break;
    case 0xF0: *lo = 0x90; break;
    case 0xF4: *hi = 0x8F; break;
    default: break;
    }
}

enum llamad_utf8_status llamad_utf8_next(const char *s, size_t len, size_t *n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t need = lead_length(p[0]);
    if (need == 0) {
        *n = 1;
        return LLAMAD_UTF8_INVALID;
    }
    for (size_t i = 1; i < need; i++) {
        if (i == len) {
            *n = len;
            return LLAMAD_UTF8_PARTIAL;
        }
        uint8_t lo = 0x80, hi = 0xBF;
        if (i == 1)
            second_byte_range(p[0], &lo, &hi);
        if (p[i] < lo || p[i] > hi) {
            *n = i;
            return LLAMAD_UTF8_INVALID;
        }
    }
    *n = need;
    return LLAMAD_UTF8_CHAR;
}

size_t llamad_utf8_valid_prefix(const char *s, size_t len)
{
    size_t i = 0, n;
    while (i < len && llamad_utf8_next(s + i, len - i, &n) == LLAMAD_UTF8_CHAR)
        i += n;
    return i;
}
