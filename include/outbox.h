/*
 * outbox.h - composing mail about a case (GMime) and delivering what is
 * queued in the outbox (smtp.c), with retry and backoff.
 *
 * Mail is composed when it is queued, inside the same transaction that
 * records the case, and written to the spool (SPOOL_OUT): its Message-ID
 * is known from the start and a retry sends exactly the same bytes.
 */
#ifndef CG_OUTBOX_H
#define CG_OUTBOX_H

#include <glib.h>
#include "config.h"
#include "mail.h"
#include "spool.h"
#include "store.h"

/* What the acknowledgement says about the case. */
typedef struct {
	const store_case *c;	/* the case (public_id, subject, type ...) */
	const mail_msg	*orig;	/* the member's message we answer */
	GPtrArray	*missing;	/* char *: labels of fields still missing, may be NULL */
} outbox_ack_info;

/*
 * Render the template file name (in cfg->templates) with {{key}}
 * placeholders from vars (char * -> char *).  An unknown placeholder is
 * left empty; a missing template is CG_ERROR_CONFIG.  Newly allocated.
 */
char *outbox_render(const config *cfg, const char *name, GHashTable *vars, GError **error);

/*
 * Compose the acknowledgement for a new case and queue it: writes the
 * mail to the spool, adds an outgoing messages row and an outbox row
 * (call inside a transaction).  Returns the outbox id, 0 on error.
 */
gint64 outbox_queue_ack(const config *cfg, store *st, spool *sp, const outbox_ack_info *info,
    GError **error);

/*
 * Deliver every queued row that is due, over one SMTP connection.
 * Returns the number sent, or -1 if the relay could not be reached (the
 * rows stay queued with a later next_attempt).  *stop is checked between
 * messages.
 */
int outbox_deliver_due(const config *cfg, store *st, spool *sp, volatile int *stop,
    GError **error);

/* Seconds to wait before attempt number attempts+1: exponential, jittered, capped. */
gint64 outbox_backoff(const config *cfg, int attempts);

#endif
