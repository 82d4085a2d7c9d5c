/*
 * log.h - one log format for the whole program.
 *
 * Under systemd (JOURNAL_STREAM set) or with -d, lines go to stderr with
 * a "<N>" journald priority prefix; otherwise to syslog, facility mail.
 * casectl and tests log to plain stderr.  Never log body text or secrets.
 */
#ifndef CG_LOG_H
#define CG_LOG_H

#include <glib.h>

typedef enum {
	LOG_TO_STDERR,		/* plain "prog: message" */
	LOG_TO_JOURNAL,		/* "<3>message" on stderr */
	LOG_TO_SYSLOG,
} log_target;

/* Set the program name, where lines go and verbosity (0 info, 1+ debug). */
void log_init(const char *prog, log_target target, int verbose);
/* Raise or lower verbosity at run time. */
void log_set_verbose(int verbose);
int  log_get_verbose(void);

/* log_warn appends ": strerror(errno)" and preserves errno. */
void log_warn(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log_err(const char *fmt, ...) G_GNUC_PRINTF(1, 2);	/* error level */
void log_info(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log_debug(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* fatal: log and exit(1); only at start-up or on impossible states. */
void fatal(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;
void fatalx(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;

/* Route GLib and GMime warnings through this module. */
void log_capture_glib(void);

#endif
