/*
 * imap.h - the IMAP source (libetpan): TLS with certificate and host-name
 * checks, LOGIN, SELECT, listing new UIDs, batched UID FETCH streamed to
 * the spool, UID MOVE (or COPY + \Deleted + UID EXPUNGE), IDLE or polling.
 *
 * Every call has a timeout (the account's).  A stream or parse error
 * leaves the connection dead: the caller closes it and reconnects later.
 * Folder names are checked (cg_protocol_safe) and encoded to modified
 * UTF-7 before they reach libetpan, which escapes nothing.
 */
#ifndef CG_IMAP_H
#define CG_IMAP_H

#include <glib.h>
#include "config.h"
#include "spool.h"

typedef struct imap_conn imap_conn;

/*
 * A folder name (UTF-8) as it goes on the wire: checked with
 * cg_protocol_safe (no CR, LF, NUL, controls, whitespace, '<', '>'),
 * then encoded to modified UTF-7 (RFC 3501 5.1.3): "Entw\u00fcrfe" ->
 * "Entw&APw-rfe", "&" -> "&-".  Newly allocated; NULL and
 * CG_ERROR_CONFIG for a refused name or invalid UTF-8.
 */
char *imap_folder_encode(const char *folder, GError **error);

typedef struct {
	guint32	 uid;
	gint64	 size;		/* RFC822.SIZE */
} imap_uid;

typedef struct {
	guint32	 uid;
	char	*digest;	/* raw message committed to the spool, SPOOL_RAW */
	gint64	 size;
} imap_fetched;

/*
 * Connect, do TLS (implicit or STARTTLS, refusing plaintext), verify the
 * certificate, then LOGIN.  CG_ERROR_CONFIG for a certificate or login
 * refusal, CG_ERROR_TEMP for network trouble.  With auth = "oauth2" the
 * access token is fetched (oauth_access_token: cached, refreshed before
 * it expires) before connecting, and the login is AUTHENTICATE XOAUTH2;
 * a token source failure is that error and nothing is sent, a refusal
 * reads "server refused the OAuth2 token: ..." (CG_ERROR_CONFIG).
 */
imap_conn *imap_open(const imap_account *acct, GError **error);

/* Close the stream without a blocking LOGOUT and free; NULL-safe. */
void imap_close(imap_conn *c);

/* SELECT folder; fills UIDVALIDITY and UIDNEXT. */
gboolean imap_select(imap_conn *c, const char *folder, guint32 *uidvalidity_r,
    guint32 *uidnext_r, GError **error);

/* CREATE folder unless it exists. */
gboolean imap_ensure_folder(imap_conn *c, const char *folder, GError **error);

/*
 * UIDs >= min_uid in the selected folder (the n:* quirk filtered out),
 * ascending, with their RFC822.SIZE.  Returns a GArray of imap_uid.
 */
GArray *imap_list_from(imap_conn *c, guint32 min_uid, GError **error);

/*
 * UID FETCH BODY.PEEK[] for uids (one command per batch), each body
 * streamed into a spool file and committed (fsync) as SPOOL_RAW.
 * Returns a GArray of imap_fetched (free with imap_fetched_array_free);
 * UIDs the server no longer has are simply missing from it.
 */
GArray *imap_fetch(imap_conn *c, spool *sp, const guint32 *uids, guint n, GError **error);
void imap_fetched_array_free(GArray *a);

/*
 * The same with BODY.PEEK[HEADER]: only the header block of each
 * message, for mail over the size limit (guard_too_large()), which is
 * then ingested with ingest_raw_oversize().  imap_fetched.size is the
 * header's size.
 */
GArray *imap_fetch_headers(imap_conn *c, spool *sp, const guint32 *uids, guint n,
    GError **error);

/* Move uids to folder: UID MOVE, or COPY + STORE \Deleted + UID EXPUNGE. */
gboolean imap_move(imap_conn *c, const guint32 *uids, guint n, const char *folder,
    GError **error);

/*
 * Does the server offer IDLE (after login), and is it still in use?
 * False after imap_disable_idle() or after the server refused IDLE.
 */
gboolean imap_has_idle(imap_conn *c);

/*
 * Poll with NOOP instead of IDLE on this connection: for servers whose
 * IDLE breaks libetpan (an untagged response before "+ idling" stalls
 * mailimap_idle until the timeout, upstream issue #393).  NULL-safe.
 */
void imap_disable_idle(imap_conn *c);

typedef enum {
	IMAP_WAIT_ERROR = -1,
	IMAP_WAIT_TIMEOUT = 0,	/* nothing happened; check anyway */
	IMAP_WAIT_NEWMAIL,	/* the server said EXISTS/RECENT */
	IMAP_WAIT_WOKEN,	/* wake_fd became readable */
} imap_wait_result;

/*
 * Wait up to secs for new mail: IDLE when offered (ended with DONE
 * before returning), otherwise sleep and NOOP.  Returns early when
 * wake_fd (a self-pipe; -1 for none) becomes readable; does not read it.
 */
imap_wait_result imap_wait(imap_conn *c, int secs, int wake_fd, GError **error);

#endif
