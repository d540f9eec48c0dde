#include "llamad/base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};
#define N_LEVELS (sizeof level_names / sizeof level_names[0])

static atomic_int current_level = LLAMAD_LOG_INFO;

void llamad_log_set_level(enum llamad_log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum llamad_log_level llamad_log_get_level(void)
{
    return (enum llamad_log_level)atomic_load(&current_level);
}

const char *llamad_log_level_name(enum llamad_log_level l)
{
    return (unsigned)l < N_LEVELS ? level_names[l] : "unknown";
}

bool llamad_log_level_parse(const char *s, enum llamad_log_level *out)
{
    for (size_t i = 0; i < N_LEVELS; i++) {
        if (!strcmp(s, level_names[i])) {
            *out = (enum llamad_log_level)i;
            return true;
        }
    }
    return false;
}

size_t llamad_log_escape(char *dst, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; *src && cap - n > 4; src++) { /* room for \xNN and the NUL */
        unsigned char c = (unsigned char)*src;
        if (c < 0x20 || c == 0x7f) {
            memcpy(dst + n, (char[]){'\\', 'x', hex[c >> 4], hex[c & 15]}, 4);
            n += 4;
        } else {
            dst[n++] = (char)c;
        }
    }
    dst[n] = '\0';
    return n;
}

void llamad_log(enum llamad_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load(&current_level))
        return;
    /* syslog priorities: err 3, warning 4, info 6, debug 7 */
    static const int priority[] = {3, 4, 6, 7};
    char line[2048];
    int n;
    if (getenv("JOURNAL_STREAM")) {
        n = snprintf(line, sizeof line, "<%d>", priority[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level]);
    }
    char message[sizeof line];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* Messages carry what clients send (paths, methods, headers, model names):
     * escaped, none of it can end the line and forge the next. */
    llamad_log_escape(line + n, sizeof line - (size_t)n, message);
    /* One write per line, so lines from different threads do not interleave. */
    fprintf(stderr, "%s\n", line);
}
