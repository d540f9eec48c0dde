#include "llamad/base/error.h"

#include <stdarg.h>
#include <stdio.h>

int llamad_fail(char *err, size_t errsz, int code, const char *fmt, ...)
{
    if (err && errsz > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *llamad_status_name(int code)
{
    switch (code) {
    case LLAMAD_OK: return "ok";
    case LLAMAD_EIO: return "I/O error";
    case LLAMAD_EFORMAT: return "format error";
    case LLAMAD_ENOMEM: return "out of memory";
    case LLAMAD_EINVAL: return "invalid argument";
    case LLAMAD_EUNSUPPORTED: return "unsupported";
    case LLAMAD_ENOTFOUND: return "not found";
    case LLAMAD_ERANGE: return "out of range";
    default: return "unknown error";
    }
}
