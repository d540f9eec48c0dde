/* Strict parsing of command-line numbers for the tools: the whole string must be
 * the number, within [min, max]. */
#ifndef LLAMAD_TOOLS_NUMBERS_H
#define LLAMAD_TOOLS_NUMBERS_H

#include <stdbool.h>
#include <stdint.h>

bool tool_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
bool tool_parse_u64(const char *s, uint64_t *out);
bool tool_parse_float(const char *s, float min, float max, float *out);

#endif
