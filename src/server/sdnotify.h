/* systemd's notification protocol (sd_notify), spoken directly: a datagram to
 * $NOTIFY_SOCKET. Does nothing when not run by systemd. Private to src/. */
#ifndef LLAMAD_SDNOTIFY_H
#define LLAMAD_SDNOTIFY_H

#include <stdint.h>

void sd_notify_state(const char *state); /* "READY=1", "STOPPING=1", "WATCHDOG=1", ... */

/* The watchdog interval systemd asked for ($WATCHDOG_USEC), in milliseconds; 0: none. */
uint64_t sd_watchdog_ms(void);

#endif
