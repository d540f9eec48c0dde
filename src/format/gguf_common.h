/* Pieces the GGUF reader (gguf.c) and writer (gguf_writer.c) share. Private to src/. */
#ifndef LLAMAD_GGUF_COMMON_H
#define LLAMAD_GGUF_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "llamad/format/gguf.h"

#define LLAMAD_GGUF_ALIGNMENT_KEY "general.alignment"
/* The longest key or tensor name accepted (the spec's key limit). */
#define LLAMAD_GGUF_MAX_NAME_LEN 65535
/* Arrays nested deeper are refused, so recursion stays shallow. */
#define LLAMAD_GGUF_MAX_ARRAY_DEPTH 8
#define LLAMAD_GGUF_ESC_SHOWN 48 /* bytes of a name shown in messages */
#define LLAMAD_GGUF_ESC_BUF (LLAMAD_GGUF_ESC_SHOWN * 4 + 4)

/* Bytes a value of a fixed-size type takes in the file; 0 for STRING and ARRAY,
 * whose size varies, and for unknown types. */
unsigned llamad_gguf_value_size(enum llamad_gguf_type t);

/* Copies a key or name into buf in printable form: bytes outside printable ASCII,
 * quotes and backslashes become \xNN, and long names are cut short with "...". */
const char *llamad_gguf_escape(char buf[LLAMAD_GGUF_ESC_BUF], const void *s, uint64_t len);

static inline uint64_t llamad_gguf_align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

static inline bool llamad_gguf_valid_alignment(uint64_t a)
{
    return a != 0 && a <= UINT32_MAX && (a & (a - 1)) == 0;
}

#endif
