/* Logprobs as JSON text (api_logprobs.h). */
#include "api_logprobs.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "llamad/base/error.h"
#include "llamad/base/utf8.h"

/* A token's bytes as a NUL-terminated string in out. A token that is not whole
 * UTF-8 by itself (part of a character, or U+0000) is written as OpenAI writes
 * such tokens, "bytes:" and a \xNN per byte (e.g. "bytes:\xe2\x80"); the exact bytes
 * are in the "bytes" arrays where the format has them. */
static int render_token(const char *bytes, size_t n, struct llamad_buf *out)
{
    llamad_buf_clear(out);
    if (llamad_utf8_valid_prefix(bytes, n) == n && !(n && memchr(bytes, '\0', n)))
        return llamad_buf_append(out, bytes, n);
    int rc = llamad_buf_append(out, "bytes:", 6);
    for (size_t i = 0; !rc && i < n; i++) {
        char hex[8];
        snprintf(hex, sizeof hex, "\\x%02x", (unsigned char)bytes[i]);
        rc = llamad_buf_append(out, hex, 4);
    }
    return rc;
}

/* The bytes of a top-logprob alternative; an id outside the vocabulary gives none. */
static int token_bytes(const struct llamad_api_reply *r, int32_t id, struct llamad_buf *out)
{
    llamad_buf_clear(out);
    int rc = llamad_token_to_bytes(r->tok, id, out);
    return rc == LLAMAD_EINVAL ? 0 : rc;
}

static int32_t n_alternatives(const struct llamad_api_reply *r, const struct llamad_event *e)
{
    if (!e->top)
        return 0;
    return e->n_top < r->top_logprobs ? e->n_top : r->top_logprobs;
}

/* Whether the rendered text of alternative i of e repeats an earlier one's. */
static bool repeats_earlier(const struct llamad_api_reply *r, const struct llamad_event *e,
                            int32_t i, const char *text, struct json_out *o)
{
    struct llamad_buf bytes = LLAMAD_BUF_INIT, other = LLAMAD_BUF_INIT;
    bool same = false;
    for (int32_t j = 0; j < i && !same && !o->rc; j++) {
        if ((o->rc = token_bytes(r, e->top[j].token, &bytes)) ||
            (o->rc = render_token(bytes.data, bytes.len, &other)))
            break;
        same = !strcmp(other.data, text);
    }
    llamad_buf_free(&bytes);
    llamad_buf_free(&other);
    return same;
}

/* OpenAI completions' per-token {token text: logprob}. Two alternatives that render
 * to the same text would repeat a key: the likelier (first) one is kept. */
static void top_dict(struct json_out *o, const struct llamad_api_reply *r,
                     const struct llamad_event *e)
{
    struct llamad_buf bytes = LLAMAD_BUF_INIT, text = LLAMAD_BUF_INIT;
    bool first = true;
    json_raw(o, "{");
    for (int32_t i = 0; i < n_alternatives(r, e) && !o->rc; i++) {
        if ((o->rc = token_bytes(r, e->top[i].token, &bytes)) ||
            (o->rc = render_token(bytes.data, bytes.len, &text)) ||
            repeats_earlier(r, e, i, text.data, o))
            continue;
        json_raw(o, first ? "" : ",");
        json_string(o, text.data, text.len);
        json_raw(o, ":");
        json_logprob(o, e->top[i].logprob);
        first = false;
    }
    json_raw(o, "}");
    llamad_buf_free(&bytes);
    llamad_buf_free(&text);
}

/* text_offset: byte offsets into the completion's text (OpenAI counts characters
 * of prompt + completion; llamad never echoes the prompt, and bytes are what a
 * client can slice exactly). The four arrays are written one after another. */
void api_completion_logprobs(struct json_out *o, const struct llamad_api_reply *r,
                             const struct llamad_event *first, const struct llamad_event *end,
                             size_t offset)
{
    static const char *const keys[] = {"{\"tokens\":[", "],\"token_logprobs\":[",
                                       "],\"top_logprobs\":[", "],\"text_offset\":["};
    struct llamad_buf text = LLAMAD_BUF_INIT;
    for (int k = 0; k < 4; k++) {
        json_raw(o, keys[k]);
        size_t at = offset;
        bool comma = false;
        for (const struct llamad_event *e = first; e != end && !o->rc; e = e->next) {
            if (e->token < 0) { /* text released at the end, no token of its own */
                at += e->text_len;
                continue;
            }
            json_raw(o, comma ? "," : "");
            comma = true;
            if (k == 0 && !(o->rc = render_token(e->piece, e->piece_len, &text)))
                json_string(o, text.data, text.len);
            else if (k == 1)
                json_logprob(o, e->logprob);
            else if (k == 2)
                top_dict(o, r, e);
            else if (k == 3)
                json_int(o, (int64_t)at);
            at += e->text_len;
        }
    }
    json_raw(o, "]}");
    llamad_buf_free(&text);
}

/* {"id"?, "token", "logprob", "bytes"}: OpenAI chat's per-token shape, and (with the
 * id) llama.cpp's; the caller closes the object. */
static void token_entry(struct json_out *o, bool with_id, int32_t id, const char *bytes, size_t n,
                        float logprob)
{
    struct llamad_buf text = LLAMAD_BUF_INIT;
    json_raw(o, "{");
    if (with_id) {
        json_raw(o, "\"id\":");
        json_int(o, id);
        json_raw(o, ",");
    }
    json_raw(o, "\"token\":");
    if (!o->rc && !(o->rc = render_token(bytes, n, &text)))
        json_string(o, text.data, text.len);
    json_raw(o, ",\"logprob\":");
    json_logprob(o, logprob);
    json_raw(o, ",\"bytes\":");
    json_byte_array(o, bytes, n);
    llamad_buf_free(&text);
}

/* The sampled token's entry with its "top_logprobs" alternatives. */
static void sampled_entry(struct json_out *o, const struct llamad_api_reply *r,
                          const struct llamad_event *e)
{
    bool native = r->kind == LLAMAD_API_NATIVE;
    token_entry(o, native, e->token, e->piece, e->piece_len, e->logprob);
    json_raw(o, ",\"top_logprobs\":[");
    struct llamad_buf bytes = LLAMAD_BUF_INIT;
    for (int32_t i = 0; i < n_alternatives(r, e) && !o->rc; i++) {
        const struct llamad_top_logprob *t = &e->top[i];
        if ((o->rc = token_bytes(r, t->token, &bytes)))
            break;
        json_raw(o, i ? "," : "");
        token_entry(o, native, t->token, bytes.data, bytes.len, t->logprob);
        json_raw(o, "}");
    }
    json_raw(o, "]}");
    llamad_buf_free(&bytes);
}

void api_sampled_entries(struct json_out *o, const struct llamad_api_reply *r,
                         const struct llamad_event *first, const struct llamad_event *end)
{
    bool comma = false;
    json_raw(o, "[");
    for (const struct llamad_event *e = first; e != end && !o->rc; e = e->next) {
        if (e->token < 0) /* text released at the end, no token of its own */
            continue;
        json_raw(o, comma ? "," : "");
        sampled_entry(o, r, e);
        comma = true;
    }
    json_raw(o, "]");
}
