/* The options llamad-run and llamad-bench share, as entries of their option
 * tables (base/options.h); each tool's struct options has the named field. */
#ifndef LLAMAD_TOOL_OPTIONS_H
#define LLAMAD_TOOL_OPTIONS_H

#include <stddef.h>

#include "llamad/base/options.h"
#include "llamad/model/kvcache_type.h"

/* const char *field: NULL stands for the bundled model. */
#define TOOL_OPTION_MODEL(field)                                                                   \
    {                                                                                              \
        .name = "model", .short_name = 'm', .kind = LLAMAD_OPT_ARG,                                \
        .offset = offsetof(struct options, field), .metavar = "PATH", .help = "GGUF model",        \
        .note = "the bundled model"                                                                \
    }

/* int32_t field: the caller puts llamad_default_threads() there before parsing. */
#define TOOL_OPTION_THREADS(field)                                                                 \
    {                                                                                              \
        .name = "threads", .short_name = 't', .kind = LLAMAD_OPT_INT,                              \
        .offset = offsetof(struct options, field), .min = 1, .max = 1024, .metavar = "N",          \
        .help = "computing threads", .note = "all cores"                                           \
    }

/* uint32_t field: a cache type, as the daemon's --kv-cache-type. */
#define TOOL_OPTION_KV_CACHE_TYPE(field)                                                           \
    {                                                                                              \
        .name = "kv-cache-type", .kind = LLAMAD_OPT_CUSTOM,                                        \
        .offset = offsetof(struct options, field), .parse = llamad_kvcache_type_option,            \
        .metavar = "TYPE", .help = "the KV cache's rows: f16, q8_0 or f32, as the daemon's",       \
        .dflt = "f16"                                                                              \
    }

#endif
