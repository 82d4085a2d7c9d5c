/*
 * log.c - the one log format.  OpenBSD daemons' vocabulary: log_warn
 * adds strerror(errno), log_warnx does not; fatal exits.
 *
 * Under systemd stderr goes to the journal, which reads a "<N>" prefix
 * as the syslog priority; elsewhere the daemon uses syslog(3), facility
 * mail, like the MTA beside it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static const char *log_prog = "casegate";
static log_target log_to = LOG_TO_STDERR;
static int log_verbose;

void
log_init(const char *prog, log_target target, int verbose)
{
	log_prog = prog;
	log_to = target;
	log_verbose = verbose;
	if (target == LOG_TO_SYSLOG)
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

int
log_get_verbose(void)
{
	return log_verbose;
}

static void
log_emit(int pri, const char *msg)
{
	switch (log_to) {
	case LOG_TO_SYSLOG:
		syslog(pri, "%s", msg);
		break;
	case LOG_TO_JOURNAL:
		fprintf(stderr, "<%d>%s\n", pri, msg);
		break;
	default:
		fprintf(stderr, "%s: %s\n", log_prog, msg);
		break;
	}
}

static void
log_vlog(int pri, const char *errstr, const char *fmt, va_list ap)
{
	char *msg, *p;

	msg = g_strdup_vprintf(fmt, ap);
	/* One event, one line: a value from the outside world must not be
	 * able to start a forged log line. */
	for (p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (errstr != NULL) {
		char *full = g_strdup_printf("%s: %s", msg, errstr);

		log_emit(pri, full);
		g_free(full);
	} else
		log_emit(pri, msg);
	g_free(msg);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_WARNING, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_ERR, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vlog(LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

static void
log_glib_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
    gpointer data)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		log_err("%s: %s", domain ? domain : "glib", message);
	else if (level & G_LOG_LEVEL_WARNING)
		log_warnx("%s: %s", domain ? domain : "glib", message);
	else
		log_debug("%s: %s", domain ? domain : "glib", message);
}

void
log_capture_glib(void)
{
	g_log_set_default_handler(log_glib_handler, NULL);
}
