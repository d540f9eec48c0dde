/* Status codes and the error-message convention shared by every module.
 *
 * Functions that can fail return 0 (LLAMAD_OK) or a negative LLAMAD_E* code and,
 * on failure, write a human-readable message into a buffer the caller owns
 * (`char *err, size_t errsz`; err may be NULL when the caller does not care). */
#ifndef LLAMAD_ERROR_H
#define LLAMAD_ERROR_H

#include <stddef.h>

enum llamad_status {
    LLAMAD_OK = 0,
    LLAMAD_EIO = -1,          /* open, read, write or mmap failed */
    LLAMAD_EFORMAT = -2,      /* malformed input (file or data) */
    LLAMAD_ENOMEM = -3,       /* allocation failed */
    LLAMAD_EINVAL = -4,       /* bad argument from the caller */
    LLAMAD_EUNSUPPORTED = -5, /* well-formed, but not something llamad handles */
    LLAMAD_ENOTFOUND = -6,    /* a looked-up key or name is absent */
    LLAMAD_ERANGE = -7,       /* a value or size is outside what is allowed */
};

/* A buffer size that holds every message llamad writes. */
#define LLAMAD_ERR_MAX 512

/* Formats a message into err (when err != NULL) and returns `code`, so a failing
 * path can `return llamad_fail(err, errsz, LLAMAD_EFORMAT, "...", ...);`. */
int llamad_fail(char *err, size_t errsz, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A short name for a status code ("format error", ...). */
const char *llamad_status_name(int code);

#endif
