/* Logging to stderr, one line per message. Under systemd (JOURNAL_STREAM set)
 * each line starts with a syslog priority prefix "<N>" so journald files it at
 * the right level; elsewhere lines start with a time stamp and the level name.
 * A message's control characters are written escaped (llamad_log_escape), so a
 * message is always exactly one line. */
#ifndef LLAMAD_LOG_H
#define LLAMAD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum llamad_log_level { LLAMAD_LOG_ERROR, LLAMAD_LOG_WARN, LLAMAD_LOG_INFO, LLAMAD_LOG_DEBUG };

void llamad_log_set_level(enum llamad_log_level level);
enum llamad_log_level llamad_log_get_level(void);

void llamad_log(enum llamad_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copies src into dst (cap > 4 bytes), its control characters (below 0x20, and
 * 0x7f) as \xNN; cut short rather than split an escape when dst is full. Returns
 * the length written, NUL excluded. */
size_t llamad_log_escape(char *dst, size_t cap, const char *src);

/* "error", "warn", "info", "debug"; and back (false for another word). */
const char *llamad_log_level_name(enum llamad_log_level l);
bool llamad_log_level_parse(const char *s, enum llamad_log_level *out);

#define llamad_error(...) llamad_log(LLAMAD_LOG_ERROR, __VA_ARGS__)
#define llamad_warn(...) llamad_log(LLAMAD_LOG_WARN, __VA_ARGS__)
#define llamad_info(...) llamad_log(LLAMAD_LOG_INFO, __VA_ARGS__)
#define llamad_debug(...) llamad_log(LLAMAD_LOG_DEBUG, __VA_ARGS__)

#endif
