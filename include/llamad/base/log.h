/* Logging to stderr, one line per message. Under systemd (JOURNAL_STREAM set)
 * each line starts with a syslog priority prefix "<N>" so journald files it at
 * the right level; elsewhere lines start with a time stamp and the level name. */
#ifndef LLAMAD_LOG_H
#define LLAMAD_LOG_H

#include <stdbool.h>

enum llamad_log_level { LLAMAD_LOG_ERROR, LLAMAD_LOG_WARN, LLAMAD_LOG_INFO, LLAMAD_LOG_DEBUG };

void llamad_log_set_level(enum llamad_log_level level);
enum llamad_log_level llamad_log_get_level(void);

void llamad_log(enum llamad_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "error", "warn", "info", "debug"; and back (false for another word). */
const char *llamad_log_level_name(enum llamad_log_level l);
bool llamad_log_level_parse(const char *s, enum llamad_log_level *out);

#define llamad_error(...) llamad_log(LLAMAD_LOG_ERROR, __VA_ARGS__)
#define llamad_warn(...) llamad_log(LLAMAD_LOG_WARN, __VA_ARGS__)
#define llamad_info(...) llamad_log(LLAMAD_LOG_INFO, __VA_ARGS__)
#define llamad_debug(...) llamad_log(LLAMAD_LOG_DEBUG, __VA_ARGS__)

#endif
