/*
 * outbox.h - composing mail about a case (GMime) and delivering what is
 * queued in the outbox (smtp.c), with retry and backoff.
 *
 * Mail is queued inside the same transaction that records the case, as
 * a recipe in its outbox row (recipe.h), and composed when it is sent:
 * its Message-ID is known from the start, and composition depends only
 * on the row, so a retry sends exactly the same bytes.
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
 * Queue the acknowledgement for a new case: records its recipe, adds an outgoing messages row and an outbox row
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
 * Queue m (composed at delivery: GMime, 7-bit, CRLF) as a recipe:
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
 * outbox_deliver_due for the share of rows with case_id % shares == share
 * (0 <= share < shares; shares <= 1 is outbox_deliver_due itself).
 * Several threads may call it at once, each with its own st, sp and
 * share: the shares are disjoint, so no row is sent twice.
 */
int outbox_deliver_share(const config *cfg, store *st, spool *sp, int share, int shares,
    volatile int *stop, GError **error);

#define OUTBOX_CONNECTIONS_MAX	8	/* smtp.connections */

/*
 * Parallel delivery over up to OUTBOX_CONNECTIONS_MAX SMTP connections
 * (smtp.connections), each with its own database connection (synchronous
 * NORMAL, as the outbox thread's) and spool handle; connection 1 uses
 * st and sp, which stay the caller's.  Returns NULL if a database or
 * spool cannot be opened.  cfg, st and sp must outlive the pool.
 */
typedef struct outbox_pool outbox_pool;
outbox_pool *outbox_pool_new(const config *cfg, store *st, spool *sp, int connections,
    GError **error);
/* The number of connections. */
int outbox_pool_size(const outbox_pool *p);
/*
 * One round: each connection delivers the due rows of its share (at
 * most a batch), in threads of its own; returns when all are done.
 * Returns the number sent; -1 with error when nothing was sent and a
 * connection failed (relay unreachable, database unwritable).  A
 * failure beside mail sent is logged, its rows keep their backoff.
 */
int outbox_pool_deliver_due(outbox_pool *p, volatile int *stop, GError **error);
/* Close the pool's own connections; NULL-safe. */
void outbox_pool_free(outbox_pool *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(outbox_pool, outbox_pool_free)

/*
 * The bytes of outbox row o: composed from its recipe (the same bytes
 * every time), or read from the spool for rows queued by older
 * versions.  A damaged recipe or a file gone from the spool is
 * CG_ERROR_PERM; a read error CG_ERROR_TEMP.
 */
GBytes *outbox_composed(store *st, spool *sp, const store_outbox *o, GError **error);

/* Seconds to wait before attempt number attempts+1: exponential, jittered, capped. */
gint64 outbox_backoff(const config *cfg, int attempts);

#endif
