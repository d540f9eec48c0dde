/* libFuzzer target: the tool-call parser (src/server/tool_calls.c) over a
 * model's output. The first byte picks the call syntax (bits 0-1), whether
 * parallel calls are allowed (bit 2) and the size of the pieces the output is
 * fed in (bits 3-7, 0: whole); the rest is the output. Fed whole or in pieces,
 * it must parse the same, and with no call found, the content must be the
 * output itself, byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llamad/server/tool_calls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        __builtin_trap();
}

static struct llamad_tool tool_list[] = {
    {.name = "get_weather", .parameters = "{}"},
    {.name = "add", .parameters = "{}"},
};

static void parse(enum llamad_tool_syntax syn, const struct llamad_tools *t, const char *text,
                  size_t len, size_t step, struct llamad_tool_piece *out)
{
    struct llamad_tool_stream s;
    size_t at = 0;
    llamad_tool_stream_init(&s, syn, t, 7);
    do {
        size_t n = step && len - at > step ? step : len - at;
        check(llamad_tool_stream_feed(&s, text + at, n, at + n == len, out) == 0);
        at += n;
    } while (at < len);
    llamad_tool_stream_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    enum llamad_tool_syntax syn = (enum llamad_tool_syntax)(data[0] % 3);
    struct llamad_tools t = {tool_list, 2, LLAMAD_TOOL_CHOICE_AUTO, 0, (data[0] & 4) != 0};
    size_t step = data[0] >> 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct llamad_tool_piece whole = {LLAMAD_BUF_INIT, NULL, 0};
    struct llamad_tool_piece pieces = {LLAMAD_BUF_INIT, NULL, 0};
    parse(syn, &t, text, len, 0, &whole);
    parse(syn, &t, text, len, step ? step : 1, &pieces);
    check(whole.content.len == pieces.content.len && whole.n_calls == pieces.n_calls);
    check(whole.content.len == 0 ||
          !memcmp(whole.content.data, pieces.content.data, whole.content.len));
    if (whole.n_calls == 0)
        check(whole.content.len == len && (len == 0 || !memcmp(whole.content.data, text, len)));
    check(t.parallel || whole.n_calls <= 1);
    for (size_t i = 0; i < whole.n_calls; i++) {
        check(whole.calls[i].index == i && whole.calls[i].arguments[0] == '{');
        check(!strcmp(whole.calls[i].name, "get_weather") || !strcmp(whole.calls[i].name, "add"));
        check(!strcmp(whole.calls[i].arguments, pieces.calls[i].arguments));
    }
    llamad_tool_piece_free(&whole);
    llamad_tool_piece_free(&pieces);
    return 0;
}
