/*
 * guard.h - the loop policy (RFC 3834) and the rest of mail hygiene:
 * when casegate must not answer a message automatically, what kind of
 * sender wrote it (person, list, auto-responder, bounce), whether it
 * belongs in the quarantine (spam, blocked sender), the per-recipient
 * daily cap and bounce suppression.  One table, one place:
 * docs/loops.md.
 */
#ifndef CG_GUARD_H
#define CG_GUARD_H

#include "config.h"
#include "mail.h"
#include "store.h"

/*
 * Why no automatic reply may be sent in answer to m, or NULL when one
 * may.  The reason is a static string suitable for the case record
 * ("Auto-Submitted: auto-replied", "Precedence: bulk", ...).  Looks at
 * the message only; guard_may_send() adds the cap and suppression.
 */
const char *guard_no_autoreply(const config *cfg, const mail_msg *m);

typedef enum {
	GUARD_PERSON,		/* nothing says otherwise */
	GUARD_BULK,		/* list or bulk mail (List-Id, Precedence) */
	GUARD_AUTOREPLY,	/* out-of-office and other auto-responders */
	GUARD_BOUNCE,		/* a delivery status notification, standard or not */
} guard_kind;

/* "person", "bulk", "auto-reply", "bounce". */
const char *guard_kind_name(guard_kind k);

/*
 * What wrote m.  A bounce is a multipart/report delivery-status or mail
 * that dsn_looks_like_bounce(); an auto-reply has Auto-Submitted:
 * auto-replied, a vendor auto-reply header or an out-of-office subject.
 */
guard_kind guard_classify(const config *cfg, const mail_msg *m);

/*
 * The quarantine reason for spam (cfg->guard.spam_header is "yes...", or
 * the first number in spam_score_header reaches spam_threshold) or a
 * blocked sender (cfg->guard.blocked_senders, glob patterns); NULL
 * otherwise.  Newly allocated.
 */
char *guard_quarantine_reason(const config *cfg, const mail_msg *m);

/*
 * May an automatic mail (kind "ack", ...) answering m go to rcpt at
 * now?  Returns NULL when it may, otherwise the reason, newly
 * allocated: the loop table (m may be NULL to skip it), an address
 * suppressed after repeated hard bounces, or the daily cap
 * (cfg->guard.autoreply_per_day mails in the 24 hours before now).
 * On a database error returns NULL with *error set: check it.
 */
char *guard_may_send(const config *cfg, store *st, const mail_msg *m, const char *rcpt,
    gint64 now, GError **error);

/* Count one automatic mail to rcpt at now, for the daily cap. */
gboolean guard_sent(store *st, const char *rcpt, const char *kind, gint64 case_id, gint64 now,
    GError **error);

/*
 * Record a reported delivery failure to addr (only for mail casegate
 * sent: a bounce for mail we never sent must not suppress anybody).
 * A hard one that makes cfg->guard.bounce_limit within
 * bounce_window_days suppresses addr for suppress_days;
 * *suppressed_until_r (may be NULL) then gets the end, else 0.
 */
gboolean guard_bounce(const config *cfg, store *st, const char *addr, gboolean hard,
    const char *status, const char *diagnostic, gint64 case_id, gint64 now,
    gint64 *suppressed_until_r, GError **error);

/*
 * Is a message of size bytes (RFC822.SIZE) over cfg->limits.max_message_size?
 * The daemon then fetches only its header (imap_fetch_headers) and
 * ingests that with ingest_raw_oversize().
 */
gboolean guard_too_large(const config *cfg, gint64 size);

#endif
