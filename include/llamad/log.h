/* Logging to stderr, one line per message. Under systemd (JOURNAL_STREAM set)
 * each line starts with a syslog priority prefix "<N>" so journald files it at
 * the right level; elsewhere lines start with a time stamp and the level name. */
#ifndef LLAMAD_LOG_H
#define LLAMAD_LOG_H

#include "llamad/config.h"

void llamad_log_set_level(enum llamad_log_level level);
enum llamad_log_level llamad_log_get_level(void);

void llamad_log(enum llamad_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define llamad_error(...) llamad_log(LLAMAD_LOG_ERROR, __VA_ARGS__)
#define llamad_warn(...) llamad_log(LLAMAD_LOG_WARN, __VA_ARGS__)
#define llamad_info(...) llamad_log(LLAMAD_LOG_INFO, __VA_ARGS__)
#define llamad_debug(...) llamad_log(LLAMAD_LOG_DEBUG, __VA_ARGS__)

#endif
