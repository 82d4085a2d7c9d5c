/*
 * dsn.h - delivery status notifications: RFC 3464 multipart/report
 * (message/delivery-status with the original in a message/rfc822 or
 * text/rfc822-headers part), and the common non-standard bounces
 * (qmail, old sendmail, Exchange, Notes, webmail) read heuristically.
 */
#ifndef CG_DSN_H
#define CG_DSN_H

#include <glib.h>
#include "mail.h"

typedef struct {
	char	*addr;		/* Final- or Original-Recipient; valid address or NULL */
	char	*action;	/* "failed", "delayed", "delivered", ... lowercase, may be NULL */
	char	*status;	/* "5.1.1", may be NULL */
	char	*diagnostic;	/* one line of valid UTF-8, at most 300 bytes, may be NULL */
	gboolean hard;		/* a permanent failure (status 5.x.x, or read as such) */
	gboolean failed;	/* not delivered (hard or soft); FALSE for delayed/delivered */
} dsn_rcpt;

typedef enum {
	DSN_STANDARD,		/* multipart/report with a delivery-status part */
	DSN_HEURISTIC,		/* recognised from headers and text */
} dsn_kind;

typedef struct {
	dsn_kind kind;
	char	*reporting_mta;	/* may be NULL */
	char	*orig_message_id; /* Message-ID of the mail that failed, without <>; may be NULL */
	GPtrArray *message_ids;	/* char *: every candidate id found in the returned
				 * part or text, best first (includes orig_message_id) */
	GPtrArray *rcpts;	/* dsn_rcpt *, possibly empty */
} dsn_report;

/*
 * A cheap test on a parsed message: a multipart/report delivery-status,
 * or mail from MAILER-DAEMON/postmaster/the null sender or with a bounce
 * subject that carries failure evidence.  Auto-replies are not bounces.
 */
gboolean dsn_looks_like_bounce(const mail_msg *m);

/*
 * Parse a raw message as a bounce.  Returns NULL (no error) when it is
 * not one, NULL with an error only for I/O trouble (CG_ERROR_TEMP).  At
 * most the first 4 MiB are read.  Free with dsn_report_free.
 */
dsn_report *dsn_parse_file(const char *path, GError **error);
dsn_report *dsn_parse_data(const char *data, size_t len);

/* The first recipient that failed, or NULL. */
const dsn_rcpt *dsn_report_failed(const dsn_report *r);

void dsn_report_free(dsn_report *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dsn_report, dsn_report_free)

#endif
