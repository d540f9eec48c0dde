/* The one list of the types a KV cache supports. Each has attention kernels
 * (kernels/attention.h) and a way into the cache (forward.c's stores). */
#include "llamad/model/kvcache_type.h"

#include <stddef.h>

#include "llamad/base/error.h"
#include "llamad/base/options.h"
#include "llamad/format/types.h"

static const uint32_t cache_types[] = {LLAMAD_TYPE_F16, LLAMAD_TYPE_Q8_0, LLAMAD_TYPE_F32};

bool llamad_kvcache_type_supported(uint32_t type)
{
    for (size_t i = 0; i < sizeof cache_types / sizeof cache_types[0]; i++)
        if (cache_types[i] == type)
            return true;
    return false;
}

bool llamad_kvcache_type_parse(const char *name, uint32_t *type)
{
    uint32_t t;
    if (!llamad_type_parse(name, &t) || !llamad_kvcache_type_supported(t))
        return false;
    *type = t;
    return true;
}

int llamad_kvcache_type_option(void *target, const struct llamad_option *opt, const char *value,
                               char *why, size_t whysz)
{
    if (!llamad_kvcache_type_parse(value, llamad_option_field(target, opt)))
        return llamad_fail(why, whysz, LLAMAD_ERANGE, "expected f16, q8_0 or f32");
    return LLAMAD_OK;
}
