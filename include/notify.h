/*
 * notify.h - the systemd notification protocol (sd_notify(3)), spoken
 * directly: one datagram to $NOTIFY_SOCKET.  Without systemd every call
 * is a no-op.
 */
#ifndef CG_NOTIFY_H
#define CG_NOTIFY_H

#include <glib.h>

/* Send "READY=1", "STATUS=...", "WATCHDOG=1", "STOPPING=1" ...; FALSE if not under systemd. */
gboolean notify_send(const char *state);
gboolean notify_printf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* The watchdog interval systemd asks for ($WATCHDOG_USEC for this PID), in ms; 0 if none. */
gint64 notify_watchdog_ms(void);

#endif
