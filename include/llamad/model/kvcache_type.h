/* The types a KV cache's rows may have: F16, Q8_0 and F32, named as options
 * spell types (the format layer's names in lower case: f16, q8_0, f32). Apart
 * from kvcache.h so that what only names a cache type (the configuration, the
 * tools' flags) needs none of the cache. */
#ifndef LLAMAD_KVCACHE_TYPE_H
#define LLAMAD_KVCACHE_TYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether a cache may hold rows of `type` (llamad_kvcache_create refuses others). */
bool llamad_kvcache_type_supported(uint32_t type);

/* "f16" / "q8_0" / "f32" to LLAMAD_TYPE_F16 / _Q8_0 / _F32; false, *type left
 * alone, for anything else. */
bool llamad_kvcache_type_parse(const char *name, uint32_t *type);

/* --kv-cache-type of the daemon and the tools: an option parser (base/options.h)
 * storing a cache type into a uint32_t field. */
struct llamad_option;
int llamad_kvcache_type_option(void *target, const struct llamad_option *opt, const char *value,
                               char *why, size_t whysz);

#endif
