/*
 * store.h - the SQLite store: schema, migrations and every query.
 *
 * Every SQL statement of the project lives in store.c, so moving to
 * another database is one file's work.  The database runs in WAL mode
 * with synchronous=FULL, foreign keys on and a busy timeout; the schema
 * is versioned with PRAGMA user_version and migrated forward at open.
 *
 * Tables (see docs/schema.md): cases, case_fields, messages,
 * attachments, events, outbox, mailbox_state.
 *
 * Errors: SQLITE_BUSY/LOCKED, SQLITE_FULL, SQLITE_IOERR and a read-only
 * database are CG_ERROR_TEMP (leave the message on the server, retry);
 * a constraint violation or a bad argument is CG_ERROR_PERM; a file
 * that is not a database, is corrupt or has a newer schema is
 * CG_ERROR_CONFIG.  Messages read "database PATH: WHAT: sqlite's reason".
 *
 * A store is one connection: use it from one thread at a time.  A case
 * id 0 (messages, events, outbox) means "no case" and is stored as NULL.
 */
#ifndef CG_STORE_H
#define CG_STORE_H

#include <glib.h>

typedef struct store store;

#define CASE_ACTIVE	"Active"
#define CASE_RESOLVED	"Resolved"

typedef struct {
	gint64	 id;		/* row id; also the case number */
	char	*public_id;	/* CASE-000123 */
	char	*member;	/* member's address */
	char	*member_name;	/* may be NULL */
	char	*subject;
	char	*type, *sub_type, *update_type;	/* may be NULL */
	char	*team, *priority;		/* may be NULL */
	char	*status;	/* CASE_ACTIVE or CASE_RESOLVED */
	gboolean needs_info;
	gint64	 created, updated;	/* seconds since epoch */
	char	*member_number;	/* member directory number; NULL: not linked */
	char	*lang;		/* language its mail to the member is in ("en", "fr"); may be NULL */
	char	*tags;		/* space-separated ("unknown-member"); NULL: none */
} store_case;

typedef struct {
	gint64	 id;
	gint64	 case_id;
	char	*direction;	/* "in" or "out" */
	char	*role;		/* "member", "staff", "unknown", "gateway" */
	char	*message_id;	/* without <>, may be NULL */
	char	*source_key;	/* "account/folder/uidvalidity/uid", may be NULL */
	char	*raw_digest;	/* spool digest of the raw message, may be NULL */
	char	*from_addr;
	char	*to_addrs;	/* comma separated */
	char	*subject;
	char	*text;
	gint64	 date;		/* Date: header, 0 if none */
	gint64	 created;
} store_message;

typedef struct {
	gint64	 id;
	gint64	 message_row;	/* messages.id */
	char	*digest;	/* spool SPOOL_ATT */
	char	*name;
	char	*content_type;
	gint64	 size;
} store_attachment;

typedef struct {
	gint64	 id;
	gint64	 case_id;
	gint64	 at;
	char	*kind;		/* "created", "message", "ack-queued", "sent", ... */
	char	*actor;		/* address or "casegated" */
	char	*detail;
} store_event;

typedef struct {
	char	*name;
	char	*value;
} store_field;

#define OUTBOX_QUEUED	"queued"
#define OUTBOX_SENT	"sent"
#define OUTBOX_FAILED	"failed"

typedef struct {
	gint64	 id;
	gint64	 case_id;
	char	*kind;		/* "ack", "reply", ... */
	char	*env_from;	/* envelope sender; "" is the null sender <> */
	char	*rcpt;
	char	*message_id;	/* of the composed mail, without <> */
	char	*spool_digest;	/* SPOOL_OUT file holding the composed mail (older rows) */
	GBytes	*recipe;	/* or what to compose it from (recipe.h; store_outbox_add only) */
	char	*state;		/* OUTBOX_* */
	int	 attempts;
	gint64	 next_attempt;
	char	*last_error;
	gint64	 created, sent_at;
} store_outbox;

/*
 * Open or create the database at path (created mode 0640) and migrate
 * it.  A database with a newer schema than this program knows is
 * refused with CG_ERROR_CONFIG.
 */
store *store_open(const char *path, GError **error);
/*
 * Open an existing database read-only (casectl list/show); no migration.
 * A missing file, or a schema older or newer than this program's, is
 * CG_ERROR_CONFIG.
 */
store *store_open_readonly(const char *path, GError **error);
void store_close(store *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store, store_close)

/* Schema version of an open database; -1 (logged) on error. */
int store_schema_version(store *st);

/* Busy timeout of this connection in ms (default 5000); for tests and tools. */
void store_set_busy_timeout(store *st, int ms);

/*
 * synchronous=FULL (the default: every COMMIT is durable) or NORMAL for
 * this connection: commits may be lost on a power failure, so only for
 * writes that are safe to redo (the outbox's state marks; store.c says
 * why).  FALSE with error when SQLite refuses.
 */
gboolean store_set_synchronous(store *st, gboolean full, GError **error);

/*
 * BEGIN IMMEDIATE (retried while busy; CG_ERROR_TEMP when still locked;
 * CG_ERROR_PERM when a transaction is already open) / COMMIT (rolls
 * back when the commit fails) / ROLLBACK (no-op outside a transaction).
 */
gboolean store_begin(store *st, GError **error);
gboolean store_commit(store *st, GError **error);
void store_rollback(store *st);

/*
 * Group commit (several messages per transaction): store_savepoint
 * opens a savepoint inside the open transaction (CG_ERROR_PERM when
 * none is open), store_release keeps its work, store_rollback_to undoes
 * it and ends it.  SQLite itself rolls back the whole transaction on
 * some errors (disk full, I/O error): store_rollback_to then fails and
 * store_in_transaction turns FALSE, which means the group is lost.
 */
gboolean store_savepoint(store *st, GError **error);
gboolean store_release(store *st, GError **error);
gboolean store_rollback_to(store *st, GError **error);
gboolean store_in_transaction(store *st);

/*
 * Has this message been stored already?  Looks up, in this order, the
 * source key, the raw digest and (for direction "in") the Message-ID;
 * any may be NULL.  Returns the messages.id found, 0 if none, -1 on
 * error; *case_id_r gets the case of the message found.
 */
gint64 store_message_seen(store *st, const char *source_key, const char *raw_digest,
    const char *message_id, gint64 *case_id_r, GError **error);

/*
 * Case of a message with this Message-ID in either direction, or of an
 * outbox row with it (mail queued but not recorded as a message); 0 if
 * none, -1 on error.
 */
gint64 store_case_by_message_id(store *st, const char *message_id, GError **error);

/*
 * Insert a case from c (member, member_name, subject, type, sub_type,
 * update_type, team, priority, needs_info are read; status is Active)
 * and give it the public id prefix + number padded to digits (1..18).
 * Both happen or neither, inside or outside a transaction.
 * Returns the case id, or 0 on error.
 */
gint64 store_case_create(store *st, const store_case *c, const char *prefix, int digits,
    GError **error);

/* Load a case by id or by public id (case-insensitive); NULL if missing (no error set) or on error. */
store_case *store_case_get(store *st, gint64 id, GError **error);
store_case *store_case_get_public(store *st, const char *public_id, GError **error);

/* Change status (CASE_ACTIVE / CASE_RESOLVED), needs_info, and touch updated. */
gboolean store_case_set_status(store *st, gint64 case_id, const char *status, GError **error);
gboolean store_case_set_needs_info(store *st, gint64 case_id, gboolean needs_info, GError **error);
gboolean store_case_touch(store *st, gint64 case_id, GError **error);

typedef struct {
	const char *status;	/* NULL: any */
	const char *type;
	const char *team;
	const char *member;
	gint64	 since;		/* created >= since; 0: any */
	int	 limit;		/* 0: no limit */
} store_filter;

/*
 * Cases matching f (NULL: all), newest first; store_case * elements,
 * owned by the array.  status, type, team and member compare without
 * regard to case.
 */
GPtrArray *store_case_list(store *st, const store_filter *f, GError **error);

/*
 * Full-text search over message subjects and texts (accents and case
 * folded).  Each word of text is searched as a literal string, words
 * ANDed; a trailing '*' makes a word a prefix.  Returns the cases of the
 * matching messages, newest first (store_case *, owned by the array);
 * no words give an empty array.  NULL on error.
 */
GPtrArray *store_search(store *st, const char *text, GError **error);

/*
 * Insert a message row; returns its id or 0 on error (a duplicate
 * source key or (direction, Message-ID) is CG_ERROR_PERM).  m->id and
 * m->created are ignored; empty message_id, source_key and raw_digest
 * are stored as NULL.
 */
gint64 store_message_add(store *st, const store_message *m, GError **error);
gint64 store_attachment_add(store *st, const store_attachment *a, GError **error);
/* Add an audit event (kind required) at the current time. */
gboolean store_event_add(store *st, gint64 case_id, const char *kind, const char *actor,
    const char *detail, GError **error);
/* Set a case field; a NULL value removes it. */
gboolean store_field_set(store *st, gint64 case_id, const char *name, const char *value,
    GError **error);

/* A case's messages (oldest first), attachments of one message, events, fields. */
GPtrArray *store_case_messages(store *st, gint64 case_id, GError **error);
GPtrArray *store_message_attachments(store *st, gint64 message_row, GError **error);
GPtrArray *store_case_events(store *st, gint64 case_id, GError **error);
GPtrArray *store_case_fields(store *st, gint64 case_id, GError **error);

/*
 * Queue an outgoing mail (kind and rcpt required; next_attempt 0 means
 * now); returns the outbox id or 0 on error.
 */
gint64 store_outbox_add(store *st, const store_outbox *o, GError **error);
/* Queued rows with next_attempt <= now, oldest first, at most limit. */
GPtrArray *store_outbox_due(store *st, gint64 now, int limit, GError **error);
/*
 * The same, only rows with case_id % shares == share (no case: 0;
 * 0 <= share < shares): parallel delivery gives each SMTP connection
 * its own share, so no row is ever in two connections' hands, and the
 * mail of one case (a staff reply, then the resolution notice) leaves
 * over one connection in the order it was queued.
 */
GPtrArray *store_outbox_due_share(store *st, gint64 now, int limit, int share, int shares,
    GError **error);
/*
 * Earliest next_attempt of a queued row (at least 1, so a row queued for
 * time 0 reads as due long ago), 0 if none is queued, -1 on error.
 */
gint64 store_outbox_next_due(store *st, GError **error);
/* All rows of a case or, with case_id 0, of every case, newest first. */
GPtrArray *store_outbox_list(store *st, gint64 case_id, GError **error);
/*
 * Each mark counts an attempt.  sent sets sent_at and clears last_error;
 * retry keeps the row queued until next_attempt; failed is final.  An
 * unknown id is CG_ERROR_PERM.
 */
gboolean store_outbox_mark_sent(store *st, gint64 id, GError **error);
gboolean store_outbox_mark_retry(store *st, gint64 id, gint64 next_attempt, const char *why,
    GError **error);
gboolean store_outbox_mark_failed(store *st, gint64 id, const char *why, GError **error);

/*
 * IMAP position per account and folder.  get returns FALSE without
 * error when there is none; set inserts or replaces.
 */
gboolean store_mailbox_get(store *st, const char *account, const char *folder,
    guint32 *uidvalidity_r, guint32 *last_uid_r, GError **error);
gboolean store_mailbox_set(store *st, const char *account, const char *folder,
    guint32 uidvalidity, guint32 last_uid, GError **error);

/* --- casectl: staff changes, outbox repair, reports, daemon status --- */

/* Set a case's taxonomy (type required; empty sub/update types are NULL) and touch it. */
gboolean store_case_set_type(store *st, gint64 case_id, const char *type,
    const char *sub_type, const char *update_type, GError **error);
/* Set a case's team (NULL or "" for none) and touch it. */
gboolean store_case_set_team(store *st, gint64 case_id, const char *team, GError **error);

/* One outbox row; NULL if missing (no error set) or on error. */
store_outbox *store_outbox_get(store *st, gint64 id, GError **error);
/* The recipe kept in row id; NULL without error when the row has none. */
GBytes *store_outbox_recipe(store *st, gint64 id, GError **error);
/*
 * A failed row back to queued, due now, attempts reset to 0 (the full
 * retry schedule applies again).  A row that is missing or not failed is
 * CG_ERROR_PERM.
 */
gboolean store_outbox_requeue(store *st, gint64 id, GError **error);
/* Number of outbox rows in state (OUTBOX_*); -1 on error. */
gint64 store_outbox_count(store *st, const char *state, GError **error);

/*
 * For each case with an outgoing message of role "staff": seconds from
 * the case's creation to the first one (never negative).  A GArray of
 * gint64, in case order; NULL on error.
 */
GArray *store_first_staff_reply_delays(store *st, GError **error);

/* Events whose kind ends in "failed" or is "error", newest first, at most limit (0: all). */
GPtrArray *store_events_failed(store *st, int limit, GError **error);

/*
 * What the daemon last reported about one mailbox (table daemon_status,
 * one row per account), for casectl status.
 */
typedef struct {
	char	*account;	/* imap account name from the config ("members") */
	gint64	 pid;		/* daemon's process id */
	gint64	 started;	/* when the daemon started, seconds since epoch */
	gint64	 last_poll;	/* last completed look at the folder; 0: never */
	gint64	 waiting;	/* messages in the watched folder then; -1: unknown */
	char	*last_error;	/* NULL or "" when the last poll succeeded */
	gint64	 updated;	/* set by the store when written */
} store_daemon_status;

/*
 * Insert or replace the row of ds->account (required); updated is set to
 * now, ds->updated is ignored.  Runs in the caller's transaction if one
 * is open, else on its own.
 */
gboolean store_daemon_status_set(store *st, const store_daemon_status *ds, GError **error);
/* Every row, by account (store_daemon_status *, owned by the array); NULL on error. */
GPtrArray *store_daemon_status_get(store *st, GError **error);
void store_daemon_status_free(store_daemon_status *ds);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_daemon_status, store_daemon_status_free)

/* --- conversations (issue 4) --- */

/* Someone copied on a case (role "cc", "staff" ...); adding twice is a no-op. */
gboolean store_participant_add(store *st, gint64 case_id, const char *addr, const char *role,
    GError **error);
/* The participants' addresses (char *, owned by the array), oldest first; NULL on error. */
GPtrArray *store_case_participants(store *st, gint64 case_id, GError **error);
/*
 * The newest message of a case with this direction ("in"/"out") and
 * role (either NULL: any); NULL when there is none (no error) or on error.
 */
store_message *store_case_last_message(store *st, gint64 case_id, const char *direction,
    const char *role, GError **error);
/* Message-IDs of a case's messages, oldest first (char *); NULL on error. */
GPtrArray *store_case_message_ids(store *st, gint64 case_id, GError **error);
/* Set a case's priority (NULL or "" for none) and touch it. */
gboolean store_case_set_priority(store *st, gint64 case_id, const char *priority,
    GError **error);
/* Record that case_id continues linked_to (0: none). */
gboolean store_case_set_linked(store *st, gint64 case_id, gint64 linked_to, GError **error);
/* The case case_id continues, 0 if none, -1 on error. */
gint64 store_case_linked_to(store *st, gint64 case_id, GError **error);
/* Time of the newest event of kind on a case, 0 if none, -1 on error. */
gint64 store_case_last_event(store *st, gint64 case_id, const char *kind, GError **error);
/*
 * The visible new text of a message (quotes and signature trimmed),
 * stored beside its full text; get returns NULL when unset or on error.
 */
gboolean store_message_set_visible(store *st, gint64 message_row, const char *visible,
    GError **error);
char *store_message_visible(store *st, gint64 message_row, GError **error);

/* All NULL-safe. */
void store_case_free(store_case *c);
void store_message_free(store_message *m);
void store_attachment_free(store_attachment *a);
void store_event_free(store_event *e);
void store_field_free(store_field *f);
void store_outbox_free(store_outbox *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_case, store_case_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_outbox, store_outbox_free)

/*
 * Mail hygiene (issue 5).  The quarantine holds messages casegate will
 * not turn into cases on its own (spam, blocked senders, ignored by a
 * rule, unparseable, bounces and auto-replies that match no case): the
 * raw copy stays in the spool under raw_digest.
 */
#define QUARANTINE_HELD		"held"
#define QUARANTINE_RELEASED	"released"
#define QUARANTINE_DELETED	"deleted"

typedef struct {
	gint64	 id;
	gint64	 created, updated;
	char	*raw_digest;	/* SPOOL_RAW */
	char	*source_key;	/* may be NULL */
	char	*reason;
	char	*from_addr, *subject, *message_id;	/* may be NULL */
	gint64	 size;
	char	*state;		/* QUARANTINE_* */
} store_quarantine;

/* Add a held entry (raw_digest and reason required); its id, 0 on error. */
gint64 store_quarantine_add(store *st, const store_quarantine *q, GError **error);
/* One entry; NULL if missing (no error set) or on error. */
store_quarantine *store_quarantine_get(store *st, gint64 id, GError **error);
/* Entries in state (NULL: all), newest first. */
GPtrArray *store_quarantine_list(store *st, const char *state, GError **error);
/* Change the state; an unknown id is CG_ERROR_PERM. */
gboolean store_quarantine_set_state(store *st, gint64 id, const char *state, GError **error);
/* Id of a held or deleted entry with this source key or raw digest; 0 none, -1 error. */
gint64 store_quarantine_seen(store *st, const char *source_key, const char *raw_digest,
    GError **error);
/* Messages and live quarantine entries that use a raw spool file; -1 on error. */
gint64 store_digest_refs(store *st, const char *raw_digest, GError **error);
void store_quarantine_free(store_quarantine *q);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_quarantine, store_quarantine_free)

/* Log one automatic mail to rcpt at time at (the daily cap counts these). */
gboolean store_autoreply_log_add(store *st, const char *rcpt, const char *kind, gint64 case_id,
    gint64 at, GError **error);
/* Automatic mails logged for rcpt at or after since; -1 on error. */
gint64 store_autoreply_count(store *st, const char *rcpt, gint64 since, GError **error);

/* Record a delivery failure reported for addr. */
gboolean store_bounce_add(store *st, const char *addr, gboolean hard, const char *status,
    const char *diagnostic, gint64 case_id, gint64 at, GError **error);
/* Hard bounces for addr at or after since; -1 on error. */
gint64 store_bounce_count(store *st, const char *addr, gint64 since, GError **error);
/* Stop automatic mail to addr until the given time (insert or replace). */
gboolean store_suppress_set(store *st, const char *addr, gint64 until, const char *reason,
    GError **error);
/* Until when addr is suppressed (0: it is not, -1: error); *reason_r newly allocated. */
gint64 store_suppressed_until(store *st, const char *addr, gint64 now, char **reason_r,
    GError **error);

/*
 * The member directory (issue 4, point 11).  A member has a number (the
 * key), a name, a language and addresses; an address belongs to at most
 * one member (member_addresses.addr is unique, without regard to case).
 */
typedef struct {
	char	*number;
	char	*name;		/* "" when unknown */
	char	*lang;		/* "en", "fr" ...; NULL: not known */
	GPtrArray *addresses;	/* char *, sorted; never NULL when read */
	gint64	 updated;
} store_member;

/*
 * Insert or replace member m and replace its addresses with
 * m->addresses.  An address that belongs to another member is a
 * constraint error (CG_ERROR_PERM).  Call inside a transaction.
 */
gboolean store_member_put(store *st, const store_member *m, GError **error);
/* Remove every member and address (cases keep their member_number). */
gboolean store_members_clear(store *st, GError **error);
/*
 * The member with this number or, with number NULL, the owner of addr
 * (any case); NULL when none (no error set) or on error.
 */
store_member *store_member_get(store *st, const char *number, const char *addr,
    GError **error);
/* Every member, by number (shorter numbers first); NULL on error. */
GPtrArray *store_member_list(store *st, GError **error);
/* Set a case's member number, language and tags (NULL or "" for none). */
gboolean store_case_set_member_info(store *st, gint64 case_id, const char *number,
    const char *lang, const char *tags, GError **error);
void store_member_free(store_member *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_member, store_member_free)

#endif
