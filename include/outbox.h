/*
 * outbox.h - composing mail about a case (GMime) and delivering what is
 * queued in the outbox (smtp.c), with retry and backoff.
 *
 * Mail is composed when it is queued, inside the same transaction that
 * records the case, and kept in its outbox row (up to 64 KiB) or in the
 * spool (SPOOL_OUT): its Message-ID is known from the start and a retry
 * sends exactly the same bytes.
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
} outbox_ack_info;	/* written in c->lang, else the default language */

/*
 * Render the template file name (in cfg->templates) with {{key}}
 * placeholders from vars (char * -> char *).  An unknown placeholder is
 * left empty; a missing template is CG_ERROR_CONFIG.  Newly allocated.
 */
char *outbox_render(const config *cfg, const char *name, GHashTable *vars, GError **error);

/*
 * outbox_render in language lang (NULL: the default): the file is
 * templates/<lang>/<name>, else the default language's, else
 * templates/<name>.  A first line "Subject: ..." is not part of the text:
 * rendered, it goes to *subject_r (may be NULL; NULL when there is none).
 */
char *outbox_render_lang(const config *cfg, const char *lang, const char *name,
    GHashTable *vars, char **subject_r, GError **error);

/* Is there a template name for lang (or the default language, or without one)? */
gboolean outbox_template_exists(const config *cfg, const char *lang, const char *name);

/*
 * Compose the acknowledgement for a new case and queue it: keeps the
 * mail (row or spool), adds an outgoing messages row and an outbox row
 * (call inside a transaction).  Returns the outbox id, 0 on error.
 */
gint64 outbox_queue_ack(const config *cfg, store *st, spool *sp, const outbox_ack_info *info,
    GError **error);

/*
 * Any other mail about a case: a staff reply relayed to the member, a
 * team notification, a "resolved" notice, a status list, a command
 * transcript.  From is always the gateway address (display name
 * from_name, or the gateway's name).
 */
typedef struct {
	const store_case *c;		/* case the mail is about; NULL for none (status list) */
	const char	*kind;		/* outbox kind: "reply", "notify", "resolved", "status", "transcript" */
	const char	*to_addr;
	const char	*to_name;	/* may be NULL */
	const char	*from_name;	/* NULL: cfg->name */
	const char	*subject;	/* NULL: thread_subject(c->subject, reply) */
	const char	*text;		/* body, UTF-8 */
	const char	*in_reply_to;	/* Message-ID answered, without <>; may be NULL */
	GPtrArray	*references;	/* char *, oldest first; may be NULL */
	GPtrArray	*attachments;	/* store_attachment *, files in the spool; may be NULL */
	const char	*reply_to;	/* Reply-To address or NULL */
	const char	*auto_submitted; /* "auto-replied", "auto-generated" or NULL (a person wrote it) */
	const char	*env_from;	/* envelope sender: NULL the gateway address, "" the null sender */
	const char	*role;		/* messages.role of the outgoing row: "gateway", "staff" */
} outbox_mail;

/*
 * Compose m (GMime, 7-bit, CRLF), keep it (row or spool), and queue it:
 * an outgoing messages row (when m->c is set), an outbox row, an event.
 * Call inside a transaction.  Returns the outbox id, 0 on error.
 */
gint64 outbox_queue_mail(const config *cfg, store *st, spool *sp, const outbox_mail *m,
    GError **error);

/*
 * Deliver every queued row that is due, over one SMTP connection.
 * Returns the number sent, or -1 if the relay could not be reached (the
 * rows stay queued with a later next_attempt).  *stop is checked between
 * messages.
 */
int outbox_deliver_due(const config *cfg, store *st, spool *sp, volatile int *stop,
    GError **error);

/*
 * The composed bytes of outbox row o, from the row or the spool.  Gone
 * from both is CG_ERROR_PERM; a read error CG_ERROR_TEMP.
 */
GBytes *outbox_composed(store *st, spool *sp, const store_outbox *o, GError **error);

/* Seconds to wait before attempt number attempts+1: exponential, jittered, capped. */
gint64 outbox_backoff(const config *cfg, int attempts);

#endif
