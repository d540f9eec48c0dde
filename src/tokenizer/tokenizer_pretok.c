/* Pre-tokenizers as PCRE2 regular expressions.
 *
 * The patterns are written in Unicode classes (\p{L} letters, \p{N} numbers,
 * \s white space) over the whole of Unicode; PCRE2 has them, and is a tested
 * engine with a JIT compiler, where tables and a matcher of our own would be
 * neither. Patterns are compiled for UTF-8 with Unicode semantics (PCRE2_UTF,
 * PCRE2_UCP) and JIT-compiled where the platform allows. */
#include "tokenizer_pretok.h"

#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "llamad/base/error.h"
#include "llamad/base/utf8.h"
#include "llamad/tokenizer/tokenizer.h" /* llamad_utf8_valid_prefix */

/* Unicode's White_Space property, which is what \s means in these patterns to
 * the tokenizers they come from (Hugging Face's, llama.cpp's). PCRE2's \s also
 * takes U+180E MONGOLIAN VOWEL SEPARATOR, out of White_Space since Unicode 6.3;
 * spelled out, the class leaves it to \p{...} like any other character. */
#define WS                                                                                         \
    "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"                                           \
    "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* LLaMA-3's pattern, with [WS] for \s and [^WS] for \S:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
 *   |\s*[\r\n]+|\s+(?!\S)|\s+ */
#define LLAMA3_PATTERN                                                                             \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"                       \
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+"

static const struct {
    const char *name, *pattern;
} known[] = {
    {"llama-bpe", LLAMA3_PATTERN},
};

struct llamad_pretok {
    pcre2_code *re;
};

static const char *pattern_of(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i].name) == len && memcmp(known[i].name, name, len) == 0)
            return known[i].pattern;
    return NULL;
}

int llamad_pretok_new(const char *name, size_t len, struct llamad_pretok **out, char *err,
                      size_t errsz)
{
    *out = NULL;
    const char *pattern = pattern_of(name, len);
    int shown = len > 64 ? 64 : (int)len;
    if (!pattern)
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "tokenizer.ggml.pre is \"%.*s\": that pre-tokenizer is not supported; "
                           "only \"llama-bpe\" (LLaMA-3) is",
                           shown, name);
    struct llamad_pretok *p = malloc(sizeof *p);
    if (!p)
        return llamad_fail(err, errsz, LLAMAD_ENOMEM, "out of memory loading the vocabulary");
    int code;
    PCRE2_SIZE at;
    p->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                          &at, NULL);
    if (!p->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        free(p);
        /* The patterns are ours: this is a PCRE2 built without Unicode support. */
        return llamad_fail(err, errsz, LLAMAD_EUNSUPPORTED,
                           "the \"%.*s\" pre-tokenizer does not compile with this PCRE2: %s", shown,
                           name, (const char *)msg);
    }
    /* Without a JIT for this platform the interpreter finds the same matches. */
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    *out = p;
    return LLAMAD_OK;
}

void llamad_pretok_free(struct llamad_pretok *p)
{
    if (!p)
        return;
    pcre2_code_free(p->re);
    free(p);
}

/* Splits s[0..n), valid UTF-8, which starts at offset `base` of the text. The
 * text was checked once, so every match skips PCRE2's own check of the whole
 * subject (which, per match, would make the split quadratic). */
static int split_valid(pcre2_code *re, pcre2_match_data *md, const char *s, size_t n, size_t base,
                       llamad_pretok_fn fn, void *ctx)
{
    int rc = LLAMAD_OK;
    for (size_t at = 0; at < n && !rc;) {
        size_t start = n, end = n;
        int m =
            pcre2_match(re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK | PCRE2_NOTEMPTY, md, NULL);
        if (m >= 0) {
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            start = ov[0];
            end = ov[1];
        } else if (m != PCRE2_ERROR_NOMATCH) {
            return m == PCRE2_ERROR_NOMEMORY ? LLAMAD_ENOMEM : LLAMAD_ERANGE;
        }
        /* Text a pattern skips would be lost otherwise: it is a piece too. */
        if (start > at)
            rc = fn(ctx, base + at, start - at);
        if (!rc && end > start)
            rc = fn(ctx, base + start, end - start);
        at = end;
    }
    return rc;
}

int llamad_pretok_split(const struct llamad_pretok *p, const char *text, size_t len,
                        llamad_pretok_fn fn, void *ctx)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!md)
        return LLAMAD_ENOMEM;
    int rc = LLAMAD_OK;
    for (size_t i = 0, n; i < len && !rc; i += n) {
        n = llamad_utf8_valid_prefix(text + i, len - i);
        if (n) {
            rc = split_valid(p->re, md, text + i, n, i, fn, ctx);
            continue;
        }
        size_t k;
        while (i + n < len && llamad_utf8_next(text + i + n, len - i - n, &k) != LLAMAD_UTF8_CHAR)
            n += k;
        rc = fn(ctx, i, n);
    }
    pcre2_match_data_free(md);
    return rc;
}
