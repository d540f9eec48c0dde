/* libFuzzer target: the conf file parser. The input is the conf file, handed to
 * llamad_config_load as `--config` through a memory file, then read again for
 * its log level as SIGHUP does. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "llamad/base/error.h"
#include "llamad/server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("llamad.conf", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        perror("fuzz: memfd");
        __builtin_trap();
    }
    char path[64], err[LLAMAD_ERR_MAX];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char *argv[] = {"llamad", "--config", path, NULL};
    struct llamad_config c;
    if (llamad_config_load(&c, 3, argv, err, sizeof err) == 0) {
        llamad_config_reload_log_level(&c, err, sizeof err);
        llamad_config_free(&c);
    }
    close(fd);
    return 0;
}
