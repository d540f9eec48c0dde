#include "llamad/base/paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LLAMAD_BUILD_DIR
#error "meson defines LLAMAD_BUILD_DIR, LLAMAD_SOURCE_MODEL and LLAMAD_INSTALLED_MODEL"
#endif

/* True when the running executable sits directly in the build directory. */
static int running_from_build_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    char build[PATH_MAX];
    if (!realpath(LLAMAD_BUILD_DIR, build))
        return 0;
    return strcmp(exe, build) == 0;
}

const char *llamad_default_model_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s",
             running_from_build_tree() ? LLAMAD_SOURCE_MODEL : LLAMAD_INSTALLED_MODEL);
    return buf;
}
