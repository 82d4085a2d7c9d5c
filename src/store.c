/*
 * store.c - the SQLite store: schema, migrations and every query.
 *
 * Rationale:
 * - One connection per thread.  Every fixed statement is prepared once
 *   per connection (SQLITE_PREPARE_PERSISTENT) and kept in an array
 *   indexed by an enum: the daemon runs these per message.  The few
 *   shapes of the case list, whose WHERE depends on the filter, are kept
 *   in a hash table keyed by their SQL.  A statement is always reset and
 *   its bindings cleared when the caller's scope ends (g_autoptr), so a
 *   half-read statement never holds a read transaction open.
 * - Values reach SQL only as bound parameters, never pasted into text;
 *   search terms are quoted as FTS5 strings so no input is FTS syntax.
 * - WAL with synchronous=FULL: a commit survives power loss before the
 *   source message is moved on IMAP (libs.md, pitfall 17).
 * - The schema is an array of migration steps; PRAGMA user_version says
 *   how many have run.  Each step runs inside BEGIN IMMEDIATE, so two
 *   processes opening a fresh database cannot both migrate it.
 * - A case id 0 means "no case" and is stored as NULL (a bounce recorded
 *   without a case, a "status" reply about several cases).
 * - cases.id is AUTOINCREMENT so a case number, and with it the public
 *   id, is never handed out twice, even if the newest case is deleted.
 * - The file is long on purpose: design.md keeps every query here, so
 *   moving to another database stays one file's work.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cg.h"
#include "log.h"
#include "store.h"

#define STORE_BUSY_MS		5000
#define STORE_BEGIN_TRIES	4
#define STORE_BEGIN_SLEEP_US	50000
#define STORE_JOURNAL_LIMIT	"67108864"

static gboolean fts_index_pending(store *, GError **);

/* ------------------------------------------------------------------ */
/* Schema */

static const char migration_1[] =
	"CREATE TABLE cases ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  public_id TEXT COLLATE NOCASE UNIQUE,"
	"  member TEXT NOT NULL,"
	"  member_name TEXT,"
	"  subject TEXT NOT NULL DEFAULT '',"
	"  type TEXT, sub_type TEXT, update_type TEXT,"
	"  team TEXT, priority TEXT,"
	"  status TEXT NOT NULL DEFAULT 'Active'"
	"    CHECK (status IN ('Active', 'Resolved')),"
	"  needs_info INTEGER NOT NULL DEFAULT 0 CHECK (needs_info IN (0, 1)),"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL);"
	"CREATE INDEX cases_member ON cases (member COLLATE NOCASE, status);"
	"CREATE TABLE case_fields ("
	"  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY (case_id, name)) WITHOUT ROWID;"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  case_id INTEGER REFERENCES cases (id),"
	"  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),"
	"  role TEXT NOT NULL DEFAULT 'unknown',"
	"  message_id TEXT,"
	"  source_key TEXT UNIQUE,"
	"  raw_digest TEXT,"
	"  from_addr TEXT, to_addrs TEXT, subject TEXT, text TEXT,"
	"  date INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX messages_message_id ON messages (direction, message_id)"
	"  WHERE message_id IS NOT NULL;"
	"CREATE INDEX messages_raw_digest ON messages (raw_digest);"
	"CREATE INDEX messages_case ON messages (case_id);"
	"CREATE TABLE attachments ("
	"  id INTEGER PRIMARY KEY,"
	"  message_row INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
	"  digest TEXT NOT NULL,"
	"  name TEXT, content_type TEXT,"
	"  size INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX attachments_message ON attachments (message_row);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  case_id INTEGER REFERENCES cases (id) ON DELETE CASCADE,"
	"  at INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  actor TEXT, detail TEXT);"
	"CREATE INDEX events_case ON events (case_id, id);"
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  case_id INTEGER REFERENCES cases (id),"
	"  kind TEXT NOT NULL,"
	"  env_from TEXT NOT NULL DEFAULT '',"
	"  rcpt TEXT NOT NULL,"
	"  message_id TEXT,"
	"  spool_digest TEXT,"
	"  state TEXT NOT NULL DEFAULT 'queued'"
	"    CHECK (state IN ('queued', 'sent', 'failed')),"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  created INTEGER NOT NULL,"
	"  sent_at INTEGER);"
	"CREATE INDEX outbox_due ON outbox (state, next_attempt);"
	"CREATE INDEX outbox_case ON outbox (case_id);"
	"CREATE INDEX outbox_message_id ON outbox (message_id);"
	"CREATE TABLE mailbox_state ("
	"  account TEXT NOT NULL,"
	"  folder TEXT NOT NULL,"
	"  uidvalidity INTEGER NOT NULL,"
	"  last_uid INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  PRIMARY KEY (account, folder)) WITHOUT ROWID;"
	/* Full-text index over messages; external content, so the text is
	 * stored once, kept in step by triggers. */
	"CREATE VIRTUAL TABLE messages_fts USING fts5 (subject, text,"
	"  content = 'messages', content_rowid = 'id',"
	"  tokenize = 'unicode61 remove_diacritics 2');"
	"CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN"
	"  INSERT INTO messages_fts (rowid, subject, text)"
	"    VALUES (new.id, new.subject, new.text);"
	"END;"
	"CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN"
	"  INSERT INTO messages_fts (messages_fts, rowid, subject, text)"
	"    VALUES ('delete', old.id, old.subject, old.text);"
	"END;"
	"CREATE TRIGGER messages_fts_au AFTER UPDATE OF subject, text ON messages BEGIN"
	"  INSERT INTO messages_fts (messages_fts, rowid, subject, text)"
	"    VALUES ('delete', old.id, old.subject, old.text);"
	"  INSERT INTO messages_fts (rowid, subject, text)"
	"    VALUES (new.id, new.subject, new.text);"
	"END;";

/* What the daemon last reported per mailbox, for casectl status. */
static const char migration_daemon_status[] =
	"CREATE TABLE daemon_status ("
	"  account TEXT PRIMARY KEY,"
	"  pid INTEGER NOT NULL DEFAULT 0,"
	"  started INTEGER NOT NULL DEFAULT 0,"
	"  last_poll INTEGER NOT NULL DEFAULT 0,"
	"  waiting INTEGER NOT NULL DEFAULT -1,"
	"  last_error TEXT,"
	"  updated INTEGER NOT NULL) WITHOUT ROWID;";

/* Mail hygiene (issue 5): the quarantine, the automatic mail sent per
 * recipient (daily cap), hard bounces and the addresses they stop. */
static const char migration_hygiene[] =
	"CREATE TABLE quarantine ("
	"  id INTEGER PRIMARY KEY,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  raw_digest TEXT NOT NULL,"
	"  source_key TEXT,"
	"  reason TEXT NOT NULL,"
	"  from_addr TEXT, subject TEXT, message_id TEXT,"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL DEFAULT 'held'"
	"    CHECK (state IN ('held', 'released', 'deleted')));"
	"CREATE INDEX quarantine_state ON quarantine (state, id);"
	"CREATE INDEX quarantine_digest ON quarantine (raw_digest);"
	"CREATE INDEX quarantine_source ON quarantine (source_key);"
	"CREATE TABLE autoreply_log ("
	"  id INTEGER PRIMARY KEY,"
	"  rcpt TEXT NOT NULL COLLATE NOCASE,"
	"  at INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  case_id INTEGER REFERENCES cases (id) ON DELETE SET NULL);"
	"CREATE INDEX autoreply_log_rcpt ON autoreply_log (rcpt, at);"
	"CREATE TABLE bounces ("
	"  id INTEGER PRIMARY KEY,"
	"  addr TEXT NOT NULL COLLATE NOCASE,"
	"  at INTEGER NOT NULL,"
	"  hard INTEGER NOT NULL CHECK (hard IN (0, 1)),"
	"  status TEXT, diagnostic TEXT,"
	"  case_id INTEGER REFERENCES cases (id) ON DELETE SET NULL);"
	"CREATE INDEX bounces_addr ON bounces (addr, at);"
	"CREATE TABLE suppressed ("
	"  addr TEXT PRIMARY KEY COLLATE NOCASE,"
	"  until INTEGER NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  created INTEGER NOT NULL) WITHOUT ROWID;";

/* Conversations (issue 4): a case opened after the reopen window links
 * the old one; people copied on a case may follow it up. */
static const char migration_conversations[] =
	"ALTER TABLE cases ADD COLUMN linked_to INTEGER REFERENCES cases (id);"
	"CREATE INDEX cases_linked_to ON cases (linked_to);"
	"CREATE TABLE case_participants ("
	"  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,"
	"  addr TEXT NOT NULL COLLATE NOCASE,"
	"  role TEXT NOT NULL,"
	"  added INTEGER NOT NULL,"
	"  PRIMARY KEY (case_id, addr)) WITHOUT ROWID;";

/* The visible new text of an incoming message (quotes and signature
 * trimmed), kept beside the full text. */
static const char migration_visible[] =
	"ALTER TABLE messages ADD COLUMN visible TEXT;";

/* The member directory (issue 4, point 11): members by number, their
 * addresses (an address belongs to one member), and on each case the
 * member it was linked to, the language its mail is written in and its
 * tags ("unknown-member"). */
static const char migration_members[] =
	"CREATE TABLE members ("
	"  number TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  lang TEXT,"
	"  updated INTEGER NOT NULL);"
	"CREATE TABLE member_addresses ("
	"  addr TEXT PRIMARY KEY COLLATE NOCASE,"
	"  number TEXT NOT NULL REFERENCES members (number) ON DELETE CASCADE)"
	"  WITHOUT ROWID;"
	"CREATE INDEX member_addresses_number ON member_addresses (number);"
	"ALTER TABLE cases ADD COLUMN member_number TEXT;"
	"ALTER TABLE cases ADD COLUMN lang TEXT;"
	"ALTER TABLE cases ADD COLUMN tags TEXT;"
	"CREATE INDEX cases_member_number ON cases (member_number);";

/*
 * Full-text indexing once per transaction.  An FTS5 table written in a
 * transaction flushes its pending terms to a new segment at every
 * statement savepoint that follows, so a trigger per inserted message
 * wrote one segment per message (and merged them again): 15% of the
 * ingest CPU.  A new message is now only queued in fts_pending;
 * store_commit indexes the queue in one statement just before COMMIT.
 * Mail the gateway composes itself (acknowledgements, notifications,
 * status lists: role 'gateway') is template text or a copy of the
 * member's and is no longer indexed: the index's content is the view
 * messages_searchable, so FTS5's 'rebuild' and 'integrity-check' agree
 * with it.  casegate never updates or deletes rows of messages; the
 * triggers keep the index right if an admin does.
 */
static const char migration_fts_deferred[] =
	"DROP TRIGGER messages_fts_ai;"
	"DROP TRIGGER messages_fts_ad;"
	"DROP TRIGGER messages_fts_au;"
	"DROP TABLE messages_fts;"
	"CREATE VIEW messages_searchable AS"
	"  SELECT id, subject, text FROM messages WHERE role <> 'gateway';"
	"CREATE VIRTUAL TABLE messages_fts USING fts5 (subject, text,"
	"  content = 'messages_searchable', content_rowid = 'id',"
	"  tokenize = 'unicode61 remove_diacritics 2');"
	"INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');"
	"CREATE TABLE fts_pending (id INTEGER PRIMARY KEY);"
	"CREATE TRIGGER messages_fts_queue AFTER INSERT ON messages"
	"  WHEN new.role <> 'gateway' BEGIN"
	"  INSERT OR IGNORE INTO fts_pending (id) VALUES (new.id);"
	"END;"
	"CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages"
	"  WHEN old.role <> 'gateway' BEGIN"
	"  INSERT INTO messages_fts (messages_fts, rowid, subject, text)"
	"    SELECT 'delete', old.id, old.subject, old.text"
	"    WHERE NOT EXISTS (SELECT 1 FROM fts_pending WHERE id = old.id);"
	"  DELETE FROM fts_pending WHERE id = old.id;"
	"END;"
	"CREATE TRIGGER messages_fts_au AFTER UPDATE OF subject, text ON messages"
	"  WHEN old.role <> 'gateway' BEGIN"
	"  INSERT INTO messages_fts (messages_fts, rowid, subject, text)"
	"    SELECT 'delete', old.id, old.subject, old.text"
	"    WHERE NOT EXISTS (SELECT 1 FROM fts_pending WHERE id = old.id);"
	"  INSERT OR IGNORE INTO fts_pending (id) VALUES (new.id);"
	"END;";

/*
 * A queued mail is kept as its recipe (recipe.h): what outbox.c
 * composes it from when it sends.  spool_digest stays for rows queued
 * before, whose composed bytes are in the spool.
 */
static const char migration_outbox_recipe[] =
	"ALTER TABLE outbox ADD COLUMN recipe BLOB;";

/* Step i brings the schema from version i to i + 1.  Append only. */
static const char *const migrations[] = {
	migration_1,
	migration_daemon_status,
	migration_hygiene,
	migration_conversations,
	migration_visible,
	migration_members,
	migration_fts_deferred,
	migration_outbox_recipe,
};
#define STORE_VERSION	((int)G_N_ELEMENTS(migrations))

/* ------------------------------------------------------------------ */
/* Statements */

#define CASE_COLS	"id, public_id, member, member_name, subject, type, sub_type, " \
			"update_type, team, priority, status, needs_info, created, updated, " \
			"member_number, lang, tags"
#define MSG_COLS	"id, case_id, direction, role, message_id, source_key, raw_digest, " \
			"from_addr, to_addrs, subject, text, date, created"
#define OUTBOX_COLS	"id, case_id, kind, env_from, rcpt, message_id, spool_digest, state, " \
			"attempts, next_attempt, last_error, created, sent_at"

enum query {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_SAVEPOINT,
	Q_RELEASE,
	Q_ROLLBACK_TO,
	Q_CASE_INSERT,
	Q_CASE_SET_PUBLIC,
	Q_CASE_GET,
	Q_CASE_GET_PUBLIC,
	Q_CASE_SET_STATUS,
	Q_CASE_SET_NEEDS_INFO,
	Q_CASE_TOUCH,
	Q_SEEN_SOURCE,
	Q_SEEN_DIGEST,
	Q_SEEN_MSGID,
	Q_CASE_BY_MSGID,
	Q_MSG_INSERT,
	Q_ATT_INSERT,
	Q_EVENT_INSERT,
	Q_FIELD_SET,
	Q_FIELD_DELETE,
	Q_CASE_MESSAGES,
	Q_MSG_ATTS,
	Q_CASE_EVENTS,
	Q_CASE_FIELDS,
	Q_OUTBOX_INSERT,
	Q_OUTBOX_DUE,
	Q_OUTBOX_NEXT,
	Q_OUTBOX_LIST_ALL,
	Q_OUTBOX_LIST_CASE,
	Q_OUTBOX_SENT,
	Q_OUTBOX_RETRY,
	Q_OUTBOX_FAILED,
	Q_OUTBOX_DUE_SHARE,
	Q_MBOX_GET,
	Q_MBOX_SET,
	Q_SEARCH,
	Q_FTS_INDEX,
	Q_FTS_CLEAR,
	Q_COUNT
};

static const char *const query_sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVEPOINT] = "SAVEPOINT store_sp",
	[Q_RELEASE] = "RELEASE store_sp",
	[Q_ROLLBACK_TO] = "ROLLBACK TO store_sp",
	[Q_CASE_INSERT] =
	    "INSERT INTO cases (member, member_name, subject, type, sub_type, update_type,"
	    " team, priority, status, needs_info, created, updated)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'Active', ?9, ?10, ?10)",
	[Q_CASE_SET_PUBLIC] = "UPDATE cases SET public_id = ?2 WHERE id = ?1",
	[Q_CASE_GET] = "SELECT " CASE_COLS " FROM cases WHERE id = ?1",
	[Q_CASE_GET_PUBLIC] = "SELECT " CASE_COLS " FROM cases WHERE public_id = ?1",
	[Q_CASE_SET_STATUS] = "UPDATE cases SET status = ?2, updated = ?3 WHERE id = ?1",
	[Q_CASE_SET_NEEDS_INFO] = "UPDATE cases SET needs_info = ?2, updated = ?3 WHERE id = ?1",
	[Q_CASE_TOUCH] = "UPDATE cases SET updated = ?2 WHERE id = ?1",
	[Q_SEEN_SOURCE] = "SELECT id, case_id FROM messages WHERE source_key = ?1",
	[Q_SEEN_DIGEST] =
	    "SELECT id, case_id FROM messages WHERE raw_digest = ?1 AND direction = 'in'"
	    " ORDER BY id LIMIT 1",
	[Q_SEEN_MSGID] =
	    "SELECT id, case_id FROM messages WHERE direction = 'in' AND message_id = ?1",
	/* The IN lets the (direction, message_id) index serve both
	 * directions; the outbox covers mail composed but not yet
	 * recorded as a message. */
	[Q_CASE_BY_MSGID] =
	    "SELECT case_id FROM messages WHERE direction IN ('in', 'out')"
	    " AND message_id = ?1 AND case_id IS NOT NULL"
	    " UNION ALL SELECT case_id FROM outbox WHERE message_id = ?1"
	    " AND case_id IS NOT NULL LIMIT 1",
	[Q_MSG_INSERT] =
	    "INSERT INTO messages (case_id, direction, role, message_id, source_key,"
	    " raw_digest, from_addr, to_addrs, subject, text, date, created)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[Q_ATT_INSERT] =
	    "INSERT INTO attachments (message_row, digest, name, content_type, size)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_EVENT_INSERT] =
	    "INSERT INTO events (case_id, at, kind, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_FIELD_SET] =
	    "INSERT INTO case_fields (case_id, name, value) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (case_id, name) DO UPDATE SET value = excluded.value",
	[Q_FIELD_DELETE] = "DELETE FROM case_fields WHERE case_id = ?1 AND name = ?2",
	[Q_CASE_MESSAGES] = "SELECT " MSG_COLS " FROM messages WHERE case_id = ?1 ORDER BY id",
	[Q_MSG_ATTS] =
	    "SELECT id, message_row, digest, name, content_type, size FROM attachments"
	    " WHERE message_row = ?1 ORDER BY id",
	[Q_CASE_EVENTS] =
	    "SELECT id, case_id, at, kind, actor, detail FROM events WHERE case_id = ?1"
	    " ORDER BY id",
	[Q_CASE_FIELDS] = "SELECT name, value FROM case_fields WHERE case_id = ?1 ORDER BY name",
	[Q_OUTBOX_INSERT] =
	    "INSERT INTO outbox (case_id, kind, env_from, rcpt, message_id, spool_digest,"
	    " state, next_attempt, created, recipe)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9)",
	[Q_OUTBOX_DUE] =
	    "SELECT " OUTBOX_COLS " FROM outbox WHERE state = 'queued' AND next_attempt <= ?1"
	    " ORDER BY next_attempt, id LIMIT ?2",
	[Q_OUTBOX_NEXT] = "SELECT min(next_attempt) FROM outbox WHERE state = 'queued'",
	[Q_OUTBOX_LIST_ALL] = "SELECT " OUTBOX_COLS " FROM outbox ORDER BY id DESC",
	[Q_OUTBOX_LIST_CASE] =
	    "SELECT " OUTBOX_COLS " FROM outbox WHERE case_id = ?1 ORDER BY id DESC",
	[Q_OUTBOX_SENT] =
	    "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2,"
	    " last_error = NULL WHERE id = ?1",
	[Q_OUTBOX_RETRY] =
	    "UPDATE outbox SET state = 'queued', attempts = attempts + 1, next_attempt = ?2,"
	    " last_error = ?3 WHERE id = ?1",
	[Q_OUTBOX_FAILED] =
	    "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2"
	    " WHERE id = ?1",
	[Q_OUTBOX_DUE_SHARE] =
	    "SELECT " OUTBOX_COLS " FROM outbox WHERE state = 'queued' AND next_attempt <= ?1"
	    " AND coalesce(case_id, 0) % ?3 = ?4 ORDER BY next_attempt, id LIMIT ?2",
	[Q_MBOX_GET] =
	    "SELECT uidvalidity, last_uid FROM mailbox_state WHERE account = ?1 AND folder = ?2",
	[Q_MBOX_SET] =
	    "INSERT INTO mailbox_state (account, folder, uidvalidity, last_uid, updated)"
	    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, folder) DO UPDATE SET"
	    " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,"
	    " updated = excluded.updated",
	[Q_SEARCH] =
	    "SELECT " CASE_COLS " FROM cases WHERE id IN (SELECT case_id FROM messages"
	    " WHERE id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1))"
	    " ORDER BY id DESC",
	[Q_FTS_INDEX] =
	    "INSERT INTO messages_fts (rowid, subject, text)"
	    " SELECT m.id, m.subject, m.text FROM fts_pending p JOIN messages m ON m.id = p.id"
	    " ORDER BY p.id",
	[Q_FTS_CLEAR] = "DELETE FROM fts_pending",
};

struct store {
	sqlite3		*db;
	char		*path;
	gboolean	 readonly;
	sqlite3_stmt	*stmts[Q_COUNT];
	GHashTable	*dynamic;	/* SQL -> sqlite3_stmt, case list shapes */
};

/*
 * A cached statement borrowed for one call: g_autoptr(stmt_ref) resets
 * it and clears its bindings at the end of the scope.
 */
typedef sqlite3_stmt stmt_ref;

static void
stmt_release(stmt_ref *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(stmt_ref, stmt_release)

/* ------------------------------------------------------------------ */
/* Errors */

static int
error_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_NOMEM:
	case SQLITE_INTERRUPT:
	case SQLITE_PROTOCOL:
		return CG_ERROR_TEMP;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		/* Retrying will not help; the admin must look at the file. */
		return CG_ERROR_CONFIG;
	default:
		return CG_ERROR_PERM;
	}
}

/* "database PATH: WHAT: sqlite's message", code from rc. */
static void
db_error(store *st, int rc, GError **error, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void
db_error(store *st, int rc, GError **error, const char *fmt, ...)
{
	g_autofree char *what = NULL;
	const char *msg;
	va_list ap;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	/* A failed bind does not always leave its message on the handle. */
	if (st->db != NULL && sqlite3_extended_errcode(st->db) == rc)
		msg = sqlite3_errmsg(st->db);
	else
		msg = sqlite3_errstr(rc);
	g_set_error(error, CG_ERROR, error_code(rc), "database %s: %s: %s", st->path, what, msg);
}

static void
arg_error(store *st, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
arg_error(store *st, GError **error, const char *fmt, ...)
{
	g_autofree char *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, CG_ERROR, CG_ERROR_PERM, "database %s: %s", st->path, what);
}

/* ------------------------------------------------------------------ */
/* Statement helpers */

static sqlite3_stmt *
prepare_cached(store *st, const char *sql, GError **error)
{
	sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		db_error(st, rc, error, "prepare \"%.40s...\"", sql);
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

static stmt_ref *
query(store *st, enum query q, GError **error)
{
	if (st->stmts[q] == NULL)
		st->stmts[q] = prepare_cached(st, query_sql[q], error);
	return st->stmts[q];
}

static stmt_ref *
query_dynamic(store *st, const char *sql, GError **error)
{
	sqlite3_stmt *s;

	s = g_hash_table_lookup(st->dynamic, sql);
	if (s == NULL) {
		s = prepare_cached(st, sql, error);
		if (s != NULL)
			g_hash_table_insert(st->dynamic, g_strdup(sql), s);
	}
	return s;
}

/*
 * Binding: each helper is a no-op once *rc holds an error, so a run of
 * binds is checked once.  Strings are copied (SQLITE_TRANSIENT): the
 * statement outlives the caller's buffers.
 */
static void
bind_text(sqlite3_stmt *s, int i, const char *v, int *rc)
{
	if (*rc != SQLITE_OK)
		return;
	if (v == NULL)
		*rc = sqlite3_bind_null(s, i);
	else
		*rc = sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static void
bind_int64(sqlite3_stmt *s, int i, gint64 v, int *rc)
{
	if (*rc == SQLITE_OK)
		*rc = sqlite3_bind_int64(s, i, v);
}

/* A case id: 0 means none and is stored as NULL. */
static void
bind_case(sqlite3_stmt *s, int i, gint64 case_id, int *rc)
{
	if (*rc != SQLITE_OK)
		return;
	if (case_id == 0)
		*rc = sqlite3_bind_null(s, i);
	else
		*rc = sqlite3_bind_int64(s, i, case_id);
}

/* Run a statement that returns no rows; what names it in errors. */
static gboolean
run(store *st, sqlite3_stmt *s, int bind_rc, GError **error, const char *what)
{
	int rc;

	if (bind_rc != SQLITE_OK) {
		db_error(st, bind_rc, error, "%s", what);
		return FALSE;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		db_error(st, rc, error, "%s", what);
		return FALSE;
	}
	return TRUE;
}

/* Like run, and the statement must have changed a row. */
static gboolean
run_one(store *st, sqlite3_stmt *s, int bind_rc, GError **error, const char *what,
    const char *missing)
{
	if (!run(st, s, bind_rc, error, what))
		return FALSE;
	if (sqlite3_changes(st->db) == 0) {
		arg_error(st, error, "%s: %s", what, missing);
		return FALSE;
	}
	return TRUE;
}

static char *
col_text(sqlite3_stmt *s, int i)
{
	return g_strdup((const char *)sqlite3_column_text(s, i));
}

/* ------------------------------------------------------------------ */
/* Rows */

static store_case *
read_case(sqlite3_stmt *s)
{
	store_case *c = g_new0(store_case, 1);

	c->id = sqlite3_column_int64(s, 0);
	c->public_id = col_text(s, 1);
	c->member = col_text(s, 2);
	c->member_name = col_text(s, 3);
	c->subject = col_text(s, 4);
	c->type = col_text(s, 5);
	c->sub_type = col_text(s, 6);
	c->update_type = col_text(s, 7);
	c->team = col_text(s, 8);
	c->priority = col_text(s, 9);
	c->status = col_text(s, 10);
	c->needs_info = sqlite3_column_int(s, 11) != 0;
	c->created = sqlite3_column_int64(s, 12);
	c->updated = sqlite3_column_int64(s, 13);
	c->member_number = col_text(s, 14);
	c->lang = col_text(s, 15);
	c->tags = col_text(s, 16);
	return c;
}

static gpointer
read_message(sqlite3_stmt *s)
{
	store_message *m = g_new0(store_message, 1);

	m->id = sqlite3_column_int64(s, 0);
	m->case_id = sqlite3_column_int64(s, 1);
	m->direction = col_text(s, 2);
	m->role = col_text(s, 3);
	m->message_id = col_text(s, 4);
	m->source_key = col_text(s, 5);
	m->raw_digest = col_text(s, 6);
	m->from_addr = col_text(s, 7);
	m->to_addrs = col_text(s, 8);
	m->subject = col_text(s, 9);
	m->text = col_text(s, 10);
	m->date = sqlite3_column_int64(s, 11);
	m->created = sqlite3_column_int64(s, 12);
	return m;
}

static gpointer
read_attachment(sqlite3_stmt *s)
{
	store_attachment *a = g_new0(store_attachment, 1);

	a->id = sqlite3_column_int64(s, 0);
	a->message_row = sqlite3_column_int64(s, 1);
	a->digest = col_text(s, 2);
	a->name = col_text(s, 3);
	a->content_type = col_text(s, 4);
	a->size = sqlite3_column_int64(s, 5);
	return a;
}

static gpointer
read_event(sqlite3_stmt *s)
{
	store_event *e = g_new0(store_event, 1);

	e->id = sqlite3_column_int64(s, 0);
	e->case_id = sqlite3_column_int64(s, 1);
	e->at = sqlite3_column_int64(s, 2);
	e->kind = col_text(s, 3);
	e->actor = col_text(s, 4);
	e->detail = col_text(s, 5);
	return e;
}

static gpointer
read_field(sqlite3_stmt *s)
{
	store_field *f = g_new0(store_field, 1);

	f->name = col_text(s, 0);
	f->value = col_text(s, 1);
	return f;
}

static gpointer
read_outbox(sqlite3_stmt *s)
{
	store_outbox *o = g_new0(store_outbox, 1);

	o->id = sqlite3_column_int64(s, 0);
	o->case_id = sqlite3_column_int64(s, 1);
	o->kind = col_text(s, 2);
	o->env_from = col_text(s, 3);
	o->rcpt = col_text(s, 4);
	o->message_id = col_text(s, 5);
	o->spool_digest = col_text(s, 6);
	o->state = col_text(s, 7);
	o->attempts = sqlite3_column_int(s, 8);
	o->next_attempt = sqlite3_column_int64(s, 9);
	o->last_error = col_text(s, 10);
	o->created = sqlite3_column_int64(s, 11);
	o->sent_at = sqlite3_column_int64(s, 12);
	return o;
}

static gpointer
read_case_any(sqlite3_stmt *s)
{
	return read_case(s);
}

/* Step s to the end, collecting rows with reader into a new array. */
static GPtrArray *
collect(store *st, sqlite3_stmt *s, int bind_rc, gpointer (*reader)(sqlite3_stmt *),
    GDestroyNotify free_fn, GError **error, const char *what)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(free_fn);
	int rc;

	if (bind_rc != SQLITE_OK) {
		db_error(st, bind_rc, error, "%s", what);
		return NULL;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		g_ptr_array_add(rows, reader(s));
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "%s", what);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

/* ------------------------------------------------------------------ */
/* Open, pragmas, migrations */

static void
finalize_stmt(gpointer s)
{
	sqlite3_finalize(s);
}

static store *
store_new(const char *path)
{
	store *st = g_new0(store, 1);

	st->path = g_strdup(path);
	st->dynamic = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
	    finalize_stmt);
	return st;
}

void
store_close(store *st)
{
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->stmts[i]);
	g_hash_table_destroy(st->dynamic);
	if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
		log_warnx("database %s: close: %s", st->path, sqlite3_errmsg(st->db));
	g_free(st->path);
	g_free(st);
}

static gboolean
exec(store *st, const char *sql, GError **error, const char *what)
{
	int rc;

	rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		db_error(st, rc, error, "%s", what);
		return FALSE;
	}
	return TRUE;
}

/* Run a one-value PRAGMA and return its text, or NULL with error set. */
static char *
pragma_text(store *st, const char *sql, GError **error)
{
	sqlite3_stmt *s = NULL;
	char *value = NULL;
	int rc;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			value = g_strdup((const char *)sqlite3_column_text(s, 0));
			if (value == NULL)
				value = g_strdup("");
			rc = SQLITE_OK;
		}
	}
	if (rc != SQLITE_OK && rc != SQLITE_DONE)
		db_error(st, rc, error, "%s", sql);
	else if (value == NULL)
		db_error(st, SQLITE_ERROR, error, "%s: no result", sql);
	sqlite3_finalize(s);
	return value;
}

/* PRAGMA user_version, or -1 with error set. */
static int
read_version(store *st, GError **error)
{
	g_autofree char *v = pragma_text(st, "PRAGMA user_version", error);

	return v != NULL ? (int)g_ascii_strtoll(v, NULL, 10) : -1;
}

int
store_schema_version(store *st)
{
	g_autoptr(GError) error = NULL;
	int version;

	if ((version = read_version(st, &error)) < 0)
		log_warnx("%s", error->message);
	return version;
}

void
store_set_busy_timeout(store *st, int ms)
{
	sqlite3_busy_timeout(st->db, ms);
}

/*
 * synchronous=NORMAL in WAL mode: a COMMIT reaches the OS but is not
 * fsynced (checkpoints still are), so a power failure or OS crash can
 * lose the last few commits of this connection, never corrupt the file.
 * Only the outbox thread asks for it, for its state marks: a lost "sent"
 * means the same bytes (same Message-ID) go out once more after the
 * crash, the duplicate SMTP cannot avoid anyway.  A FULL commit of
 * another connection fsyncs the WAL, these frames included.
 */
gboolean
store_set_synchronous(store *st, gboolean full, GError **error)
{
	return exec(st, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
	    error, "set synchronous");
}

static gboolean
set_pragmas(store *st, GError **error)
{
	g_autofree char *mode = NULL;

	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	if (!exec(st, "PRAGMA foreign_keys = ON", error, "set foreign_keys"))
		return FALSE;
	if (st->readonly)
		return TRUE;
	/* journal_mode persists in the file; the rest is per connection. */
	mode = pragma_text(st, "PRAGMA journal_mode = WAL", error);
	if (mode == NULL)
		return FALSE;
	if (g_ascii_strcasecmp(mode, "wal") != 0)
		log_warnx("database %s: journal mode is %s, not wal (is it on a network "
		    "file system?)", st->path, mode);
	return exec(st, "PRAGMA synchronous = FULL;"
	    "PRAGMA journal_size_limit = " STORE_JOURNAL_LIMIT, error, "set pragmas");
}

static gboolean
check_version(store *st, int version, GError **error)
{
	if (version > STORE_VERSION) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "database %s: schema version %d is newer than this program knows (%d); "
		    "run a newer casegate or restore a backup", st->path, version,
		    STORE_VERSION);
		return FALSE;
	}
	return TRUE;
}

static gboolean
migrate(store *st, GError **error)
{
	int version, from;

	version = read_version(st, error);
	if (version < 0 || !check_version(st, version, error))
		return FALSE;
	if (version == STORE_VERSION)
		return TRUE;
	if (!store_begin(st, error))
		return FALSE;
	/* Read again under the write lock: another process may have won. */
	version = read_version(st, error);
	if (version < 0 || !check_version(st, version, error)) {
		store_rollback(st);
		return FALSE;
	}
	for (from = version; version < STORE_VERSION; version++) {
		g_autofree char *set = NULL;
		g_autofree char *what = g_strdup_printf("migrate to schema version %d",
		    version + 1);

		set = g_strdup_printf("PRAGMA user_version = %d", version + 1);
		if (!exec(st, migrations[version], error, what) ||
		    !exec(st, set, error, what)) {
			store_rollback(st);
			return FALSE;
		}
	}
	if (!store_commit(st, error))
		return FALSE;
	/* Upgrading data is worth a line; creating a new file is not. */
	if (from > 0)
		log_info("database %s: migrated schema from version %d to %d", st->path, from,
		    STORE_VERSION);
	return TRUE;
}

/*
 * Create the file ourselves so it is not world-readable (it holds
 * members' mail); SQLite gives -wal and -shm the database's mode.
 */
static gboolean
create_private(const char *path, GError **error)
{
	int fd, saved;

	/*
	 * O_EXCL: never open and close an existing database here.  close()
	 * drops every POSIX lock this process holds on the file, so another
	 * connection of this process (another thread's store) would look
	 * unused to other processes, and the next sqlite3 that closes there
	 * checkpoints and deletes the WAL under our feet: later commits lost.
	 */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1 && errno == EEXIST)
		return TRUE;
	if (fd == -1) {
		saved = errno;
		g_set_error(error, CG_ERROR,
		    saved == ENOSPC || saved == EIO || saved == EINTR ? CG_ERROR_TEMP :
		    CG_ERROR_CONFIG, "database %s: open: %s", path, g_strerror(saved));
		return FALSE;
	}
	close(fd);
	return TRUE;
}

static store *
open_db(const char *path, gboolean readonly, GError **error)
{
	g_autoptr(store) st = NULL;
	int flags, rc;

	if (path == NULL || *path == '\0') {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "database: no path given");
		return NULL;
	}
	st = store_new(path);
	st->readonly = readonly;
	if (readonly) {
		if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
			g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
			    "database %s does not exist", path);
			return NULL;
		}
		flags = SQLITE_OPEN_READONLY;
	} else {
		if (!create_private(path, error))
			return NULL;
		flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}
	rc = sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		db_error(st, rc, error, "open");
		return NULL;
	}
	sqlite3_extended_result_codes(st->db, 1);
	if (!set_pragmas(st, error))
		return NULL;
	return g_steal_pointer(&st);
}

store *
store_open(const char *path, GError **error)
{
	g_autoptr(store) st = NULL;

	st = open_db(path, FALSE, error);
	/* Queued by an insert outside a transaction that died before indexing it. */
	if (st == NULL || !migrate(st, error) || !fts_index_pending(st, error))
		return NULL;
	return g_steal_pointer(&st);
}

store *
store_open_readonly(const char *path, GError **error)
{
	g_autoptr(store) st = NULL;
	int version;

	st = open_db(path, TRUE, error);
	if (st == NULL)
		return NULL;
	version = read_version(st, error);
	if (version < 0 || !check_version(st, version, error))
		return NULL;
	if (version < STORE_VERSION) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "database %s: schema version %d is older than %d; start casegated once "
		    "to migrate it", path, version, STORE_VERSION);
		return NULL;
	}
	return g_steal_pointer(&st);
}

/* ------------------------------------------------------------------ */
/* Transactions */

gboolean
store_begin(store *st, GError **error)
{
	int rc = SQLITE_OK, i;

	if (!sqlite3_get_autocommit(st->db)) {
		arg_error(st, error, "begin: a transaction is already open");
		return FALSE;
	}
	/*
	 * The busy handler already waits busy_timeout; the retries cover
	 * the cases where SQLite returns BUSY without calling it (WAL
	 * recovery by another connection, a lock held across the wait).
	 */
	for (i = 0; i < STORE_BEGIN_TRIES; i++) {
		g_autoptr(stmt_ref) s = query(st, Q_BEGIN, error);

		if (s == NULL)
			return FALSE;
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE)
			return TRUE;
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			break;
		if (i + 1 < STORE_BEGIN_TRIES)
			g_usleep(STORE_BEGIN_SLEEP_US);
	}
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		db_error(st, rc, error, "begin (still locked after %d tries)", STORE_BEGIN_TRIES);
	else
		db_error(st, rc, error, "begin");
	return FALSE;
}

/*
 * Index the messages queued in fts_pending (migration_fts_deferred) in
 * one statement: one FTS5 segment per transaction, not per message.
 */
static gboolean
fts_index_pending(store *st, GError **error)
{
	g_autoptr(stmt_ref) ins = NULL;
	g_autoptr(stmt_ref) del = NULL;

	if (st->readonly)
		return TRUE;
	return (ins = query(st, Q_FTS_INDEX, error)) != NULL &&
	    run(st, ins, SQLITE_OK, error, "index new messages for search") &&
	    (del = query(st, Q_FTS_CLEAR, error)) != NULL &&
	    run(st, del, SQLITE_OK, error, "index new messages for search");
}

gboolean
store_commit(store *st, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc;

	if (!fts_index_pending(st, error)) {
		store_rollback(st);
		return FALSE;
	}
	if ((s = query(st, Q_COMMIT, error)) == NULL) {
		store_rollback(st);
		return FALSE;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "commit");
		store_rollback(st);
		return FALSE;
	}
	return TRUE;
}

void
store_rollback(store *st)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(stmt_ref) s = NULL;
	int rc;

	if (st == NULL || sqlite3_get_autocommit(st->db))
		return;
	s = query(st, Q_ROLLBACK, &error);
	if (s == NULL) {
		log_warnx("%s", error->message);
		return;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		log_warnx("database %s: rollback: %s", st->path, sqlite3_errmsg(st->db));
}

/*
 * Group commit: one savepoint per message inside the caller's
 * transaction, so one bad message is undone without losing the others.
 * The name differs from store_case_create's, which nests inside.
 */
gboolean
store_savepoint(store *st, GError **error)
{
	if (sqlite3_get_autocommit(st->db)) {
		arg_error(st, error, "savepoint: no transaction is open");
		return FALSE;
	}
	return exec(st, "SAVEPOINT group_sp", error, "savepoint");
}

gboolean
store_release(store *st, GError **error)
{
	return exec(st, "RELEASE group_sp", error, "release savepoint");
}

gboolean
store_rollback_to(store *st, GError **error)
{
	/* ROLLBACK TO keeps the savepoint open; RELEASE ends it. */
	if (!exec(st, "ROLLBACK TO group_sp", error, "roll back to savepoint") ||
	    !exec(st, "RELEASE group_sp", error, "release savepoint"))
		return FALSE;
	return TRUE;
}

gboolean
store_in_transaction(store *st)
{
	return st != NULL && !sqlite3_get_autocommit(st->db);
}

/* ------------------------------------------------------------------ */
/* Messages */

static gboolean
present(const char *s)
{
	return s != NULL && *s != '\0';
}

/* One of the seen lookups: 1 found, 0 not found, -1 error. */
static int
seen_by(store *st, enum query q, const char *key, gint64 *id_r, gint64 *case_id_r,
    GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(key))
		return 0;
	if ((s = query(st, q, error)) == NULL)
		return -1;
	bind_text(s, 1, key, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(s, 0);
		*case_id_r = sqlite3_column_int64(s, 1);
		return 1;
	}
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "look up message");
		return -1;
	}
	return 0;
}

gint64
store_message_seen(store *st, const char *source_key, const char *raw_digest,
    const char *message_id, gint64 *case_id_r, GError **error)
{
	const struct {
		enum query	 q;
		const char	*key;
	} keys[] = {
		{ Q_SEEN_SOURCE, source_key },
		{ Q_SEEN_DIGEST, raw_digest },
		{ Q_SEEN_MSGID, message_id },
	};
	gint64 id = 0, case_id = 0;
	size_t i;
	int r;

	if (case_id_r != NULL)
		*case_id_r = 0;
	for (i = 0; i < G_N_ELEMENTS(keys); i++) {
		r = seen_by(st, keys[i].q, keys[i].key, &id, &case_id, error);
		if (r < 0)
			return -1;
		if (r > 0) {
			if (case_id_r != NULL)
				*case_id_r = case_id;
			return id;
		}
	}
	return 0;
}

gint64
store_case_by_message_id(store *st, const char *message_id, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(message_id))
		return 0;
	if ((s = query(st, Q_CASE_BY_MSGID, error)) == NULL)
		return -1;
	bind_text(s, 1, message_id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return sqlite3_column_int64(s, 0);
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "look up Message-ID");
		return -1;
	}
	return 0;
}

gint64
store_message_add(store *st, const store_message *m, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;
	gint64 id;

	if (m->direction == NULL ||
	    (strcmp(m->direction, "in") != 0 && strcmp(m->direction, "out") != 0)) {
		arg_error(st, error, "insert message: direction must be \"in\" or \"out\"");
		return 0;
	}
	if ((s = query(st, Q_MSG_INSERT, error)) == NULL)
		return 0;
	bind_case(s, 1, m->case_id, &rc);
	bind_text(s, 2, m->direction, &rc);
	bind_text(s, 3, m->role != NULL ? m->role : "unknown", &rc);
	/* An empty key would make every keyless message a duplicate. */
	bind_text(s, 4, present(m->message_id) ? m->message_id : NULL, &rc);
	bind_text(s, 5, present(m->source_key) ? m->source_key : NULL, &rc);
	bind_text(s, 6, present(m->raw_digest) ? m->raw_digest : NULL, &rc);
	bind_text(s, 7, m->from_addr, &rc);
	bind_text(s, 8, m->to_addrs, &rc);
	bind_text(s, 9, m->subject, &rc);
	bind_text(s, 10, m->text, &rc);
	bind_int64(s, 11, m->date, &rc);
	bind_int64(s, 12, cg_now(), &rc);
	if (!run(st, s, rc, error, "insert message"))
		return 0;
	id = sqlite3_last_insert_rowid(st->db);
	/* Outside a transaction no store_commit will index it. */
	if (sqlite3_get_autocommit(st->db) && !fts_index_pending(st, error))
		return 0;
	return id;
}

gint64
store_attachment_add(store *st, const store_attachment *a, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(a->digest)) {
		arg_error(st, error, "insert attachment: no digest");
		return 0;
	}
	if ((s = query(st, Q_ATT_INSERT, error)) == NULL)
		return 0;
	bind_int64(s, 1, a->message_row, &rc);
	bind_text(s, 2, a->digest, &rc);
	bind_text(s, 3, a->name, &rc);
	bind_text(s, 4, a->content_type, &rc);
	bind_int64(s, 5, a->size, &rc);
	if (!run(st, s, rc, error, "insert attachment"))
		return 0;
	return sqlite3_last_insert_rowid(st->db);
}

gboolean
store_event_add(store *st, gint64 case_id, const char *kind, const char *actor,
    const char *detail, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(kind)) {
		arg_error(st, error, "insert event: no kind");
		return FALSE;
	}
	if ((s = query(st, Q_EVENT_INSERT, error)) == NULL)
		return FALSE;
	bind_case(s, 1, case_id, &rc);
	bind_int64(s, 2, cg_now(), &rc);
	bind_text(s, 3, kind, &rc);
	bind_text(s, 4, actor, &rc);
	bind_text(s, 5, detail, &rc);
	return run(st, s, rc, error, "insert event");
}

gboolean
store_field_set(store *st, gint64 case_id, const char *name, const char *value,
    GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(name)) {
		arg_error(st, error, "set field: no name");
		return FALSE;
	}
	s = query(st, value != NULL ? Q_FIELD_SET : Q_FIELD_DELETE, error);
	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	bind_text(s, 2, name, &rc);
	if (value != NULL)
		bind_text(s, 3, value, &rc);
	return run(st, s, rc, error, "set field");
}

/* Rows of a query with one integer key. */
static GPtrArray *
list_by_id(store *st, enum query q, gint64 key, gpointer (*reader)(sqlite3_stmt *),
    GDestroyNotify free_fn, GError **error, const char *what)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if ((s = query(st, q, error)) == NULL)
		return NULL;
	bind_int64(s, 1, key, &rc);
	return collect(st, s, rc, reader, free_fn, error, what);
}

GPtrArray *
store_case_messages(store *st, gint64 case_id, GError **error)
{
	return list_by_id(st, Q_CASE_MESSAGES, case_id, read_message,
	    (GDestroyNotify)store_message_free, error, "list messages");
}

GPtrArray *
store_message_attachments(store *st, gint64 message_row, GError **error)
{
	return list_by_id(st, Q_MSG_ATTS, message_row, read_attachment,
	    (GDestroyNotify)store_attachment_free, error, "list attachments");
}

GPtrArray *
store_case_events(store *st, gint64 case_id, GError **error)
{
	return list_by_id(st, Q_CASE_EVENTS, case_id, read_event,
	    (GDestroyNotify)store_event_free, error, "list events");
}

GPtrArray *
store_case_fields(store *st, gint64 case_id, GError **error)
{
	return list_by_id(st, Q_CASE_FIELDS, case_id, read_field,
	    (GDestroyNotify)store_field_free, error, "list fields");
}

/* ------------------------------------------------------------------ */
/* Cases */

/*
 * Savepoints make a multi-statement call all-or-nothing inside or
 * outside the caller's transaction (outside, one starts a transaction).
 */
static gboolean
savepoint(store *st, enum query q, GError **error)
{
	g_autoptr(stmt_ref) s = query(st, q, error);

	return s != NULL && run(st, s, SQLITE_OK, error, query_sql[q]);
}

static void
savepoint_undo(store *st)
{
	g_autoptr(GError) error = NULL;

	/* ROLLBACK TO keeps the savepoint open; RELEASE ends it. */
	if (!savepoint(st, Q_ROLLBACK_TO, &error) || !savepoint(st, Q_RELEASE, &error))
		log_warnx("%s", error->message);
}

gint64
store_case_create(store *st, const store_case *c, const char *prefix, int digits,
    GError **error)
{
	g_autofree char *public_id = NULL;
	gint64 id = 0;
	int rc = SQLITE_OK;

	if (!present(c->member)) {
		arg_error(st, error, "create case: no member address");
		return 0;
	}
	if (prefix == NULL || digits < 1 || digits > 18) {
		arg_error(st, error, "create case: bad public id format (prefix %s, %d digits)",
		    prefix != NULL ? prefix : "(none)", digits);
		return 0;
	}
	if (!savepoint(st, Q_SAVEPOINT, error))
		return 0;
	{
		g_autoptr(stmt_ref) s = query(st, Q_CASE_INSERT, error);

		if (s == NULL)
			goto fail;
		bind_text(s, 1, c->member, &rc);
		bind_text(s, 2, c->member_name, &rc);
		bind_text(s, 3, c->subject != NULL ? c->subject : "", &rc);
		bind_text(s, 4, c->type, &rc);
		bind_text(s, 5, c->sub_type, &rc);
		bind_text(s, 6, c->update_type, &rc);
		bind_text(s, 7, c->team, &rc);
		bind_text(s, 8, c->priority, &rc);
		bind_int64(s, 9, c->needs_info ? 1 : 0, &rc);
		bind_int64(s, 10, cg_now(), &rc);
		if (!run(st, s, rc, error, "insert case"))
			goto fail;
		id = sqlite3_last_insert_rowid(st->db);
	}
	public_id = g_strdup_printf("%s%0*" G_GINT64_FORMAT, prefix, digits, id);
	{
		g_autoptr(stmt_ref) s = query(st, Q_CASE_SET_PUBLIC, error);

		if (s == NULL)
			goto fail;
		bind_int64(s, 1, id, &rc);
		bind_text(s, 2, public_id, &rc);
		if (!run(st, s, rc, error, "set public id of new case"))
			goto fail;
	}
	if (!savepoint(st, Q_RELEASE, error))
		goto fail;
	return id;
fail:
	savepoint_undo(st);
	return 0;
}

static store_case *
case_get_by(store *st, enum query q, gint64 id, const char *public_id, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if ((s = query(st, q, error)) == NULL)
		return NULL;
	if (public_id != NULL)
		bind_text(s, 1, public_id, &rc);
	else
		bind_int64(s, 1, id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return read_case(s);
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "load case");
	return NULL;
}

store_case *
store_case_get(store *st, gint64 id, GError **error)
{
	return case_get_by(st, Q_CASE_GET, id, NULL, error);
}

store_case *
store_case_get_public(store *st, const char *public_id, GError **error)
{
	if (!present(public_id))
		return NULL;
	return case_get_by(st, Q_CASE_GET_PUBLIC, 0, public_id, error);
}

/* An UPDATE of one case: ?1 id, ?2 value (if any), then now. */
static gboolean
case_update(store *st, enum query q, gint64 case_id, const char *text, gint64 num,
    gboolean has_value, GError **error, const char *what)
{
	g_autoptr(stmt_ref) s = NULL;
	g_autofree char *missing = g_strdup_printf("no case %" G_GINT64_FORMAT, case_id);
	int rc = SQLITE_OK, n = 2;

	if ((s = query(st, q, error)) == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	if (has_value) {
		if (text != NULL)
			bind_text(s, n++, text, &rc);
		else
			bind_int64(s, n++, num, &rc);
	}
	bind_int64(s, n, cg_now(), &rc);
	return run_one(st, s, rc, error, what, missing);
}

gboolean
store_case_set_status(store *st, gint64 case_id, const char *status, GError **error)
{
	if (status == NULL ||
	    (strcmp(status, CASE_ACTIVE) != 0 && strcmp(status, CASE_RESOLVED) != 0)) {
		arg_error(st, error, "set status: \"%s\" is neither %s nor %s",
		    status != NULL ? status : "(null)", CASE_ACTIVE, CASE_RESOLVED);
		return FALSE;
	}
	return case_update(st, Q_CASE_SET_STATUS, case_id, status, 0, TRUE, error,
	    "set status");
}

gboolean
store_case_set_needs_info(store *st, gint64 case_id, gboolean needs_info, GError **error)
{
	return case_update(st, Q_CASE_SET_NEEDS_INFO, case_id, NULL, needs_info ? 1 : 0, TRUE,
	    error, "set needs_info");
}

gboolean
store_case_touch(store *st, gint64 case_id, GError **error)
{
	return case_update(st, Q_CASE_TOUCH, case_id, NULL, 0, FALSE, error, "touch case");
}

GPtrArray *
store_case_list(store *st, const store_filter *f, GError **error)
{
	static const store_filter all;
	g_autoptr(GString) sql = g_string_new("SELECT " CASE_COLS " FROM cases WHERE 1");
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK, n = 1;

	if (f == NULL)
		f = &all;
	/* Only the shape of the query depends on the filter; values are
	 * bound in the same order below.  At most 64 shapes get cached. */
	if (f->status != NULL)
		g_string_append(sql, " AND status = ? COLLATE NOCASE");
	if (f->type != NULL)
		g_string_append(sql, " AND type = ? COLLATE NOCASE");
	if (f->team != NULL)
		g_string_append(sql, " AND team = ? COLLATE NOCASE");
	if (f->member != NULL)
		g_string_append(sql, " AND member = ? COLLATE NOCASE");
	if (f->since != 0)
		g_string_append(sql, " AND created >= ?");
	g_string_append(sql, " ORDER BY id DESC");
	if (f->limit > 0)
		g_string_append(sql, " LIMIT ?");
	if ((s = query_dynamic(st, sql->str, error)) == NULL)
		return NULL;
	if (f->status != NULL)
		bind_text(s, n++, f->status, &rc);
	if (f->type != NULL)
		bind_text(s, n++, f->type, &rc);
	if (f->team != NULL)
		bind_text(s, n++, f->team, &rc);
	if (f->member != NULL)
		bind_text(s, n++, f->member, &rc);
	if (f->since != 0)
		bind_int64(s, n++, f->since, &rc);
	if (f->limit > 0)
		bind_int64(s, n++, f->limit, &rc);
	return collect(st, s, rc, read_case_any, (GDestroyNotify)store_case_free, error,
	    "list cases");
}

/*
 * Each whitespace-separated word becomes an FTS5 string ("..." with
 * embedded quotes doubled), so nothing the user types is FTS syntax;
 * the words are ANDed.  A trailing '*' stays a prefix search.  NULL
 * when there is no word.
 */
static char *
fts_query(const char *text)
{
	g_auto(GStrv) words = g_strsplit_set(text, " \t\r\n\f\v", -1);
	g_autoptr(GString) q = g_string_new(NULL);
	char **w;
	const char *p;

	for (w = words; *w != NULL; w++) {
		size_t len = strlen(*w);
		gboolean prefix = FALSE;

		while (len > 0 && (*w)[len - 1] == '*') {
			prefix = TRUE;
			len--;
		}
		if (len == 0)
			continue;
		if (q->len > 0)
			g_string_append_c(q, ' ');
		g_string_append_c(q, '"');
		for (p = *w; p < *w + len; p++) {
			if (*p == '"')
				g_string_append_c(q, '"');
			g_string_append_c(q, *p);
		}
		g_string_append_c(q, '"');
		if (prefix)
			g_string_append_c(q, '*');
	}
	if (q->len == 0)
		return NULL;
	return g_string_free(g_steal_pointer(&q), FALSE);
}

GPtrArray *
store_search(store *st, const char *text, GError **error)
{
	g_autofree char *match = NULL;
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (text == NULL || (match = fts_query(text)) == NULL)
		return g_ptr_array_new_with_free_func((GDestroyNotify)store_case_free);
	if ((s = query(st, Q_SEARCH, error)) == NULL)
		return NULL;
	bind_text(s, 1, match, &rc);
	return collect(st, s, rc, read_case_any, (GDestroyNotify)store_case_free, error,
	    "search");
}

/* ------------------------------------------------------------------ */
/* Outbox */

gint64
store_outbox_add(store *st, const store_outbox *o, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	gint64 now = cg_now();
	int rc = SQLITE_OK;

	if (!present(o->kind) || !present(o->rcpt)) {
		arg_error(st, error, "queue mail: no %s", present(o->kind) ? "recipient" : "kind");
		return 0;
	}
	if ((s = query(st, Q_OUTBOX_INSERT, error)) == NULL)
		return 0;
	bind_case(s, 1, o->case_id, &rc);
	bind_text(s, 2, o->kind, &rc);
	bind_text(s, 3, o->env_from != NULL ? o->env_from : "", &rc);
	bind_text(s, 4, o->rcpt, &rc);
	bind_text(s, 5, present(o->message_id) ? o->message_id : NULL, &rc);
	bind_text(s, 6, o->spool_digest, &rc);
	bind_int64(s, 7, o->next_attempt != 0 ? o->next_attempt : now, &rc);
	bind_int64(s, 8, now, &rc);
	if (rc == SQLITE_OK && o->recipe != NULL)
		rc = sqlite3_bind_blob64(s, 9, g_bytes_get_data(o->recipe, NULL),
		    g_bytes_get_size(o->recipe), SQLITE_STATIC);
	if (!run(st, s, rc, error, "queue mail"))
		return 0;
	return sqlite3_last_insert_rowid(st->db);
}

GPtrArray *
store_outbox_due(store *st, gint64 now, int limit, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if ((s = query(st, Q_OUTBOX_DUE, error)) == NULL)
		return NULL;
	bind_int64(s, 1, now, &rc);
	bind_int64(s, 2, limit > 0 ? limit : -1, &rc);
	return collect(st, s, rc, read_outbox, (GDestroyNotify)store_outbox_free, error,
	    "list due mail");
}

GPtrArray *
store_outbox_due_share(store *st, gint64 now, int limit, int share, int shares,
    GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (shares < 1 || share < 0 || share >= shares) {
		arg_error(st, error, "list due mail: share %d of %d", share, shares);
		return NULL;
	}
	if ((s = query(st, Q_OUTBOX_DUE_SHARE, error)) == NULL)
		return NULL;
	bind_int64(s, 1, now, &rc);
	bind_int64(s, 2, limit > 0 ? limit : -1, &rc);
	bind_int64(s, 3, shares, &rc);
	bind_int64(s, 4, share, &rc);
	return collect(st, s, rc, read_outbox, (GDestroyNotify)store_outbox_free, error,
	    "list due mail");
}

gint64
store_outbox_next_due(store *st, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc;

	if ((s = query(st, Q_OUTBOX_NEXT, error)) == NULL)
		return -1;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		db_error(st, rc, error, "next due mail");
		return -1;
	}
	if (sqlite3_column_type(s, 0) == SQLITE_NULL)
		return 0;	/* nothing queued */
	/* a row queued for time 0 is due now, not "nothing queued" */
	return MAX(sqlite3_column_int64(s, 0), 1);
}

GPtrArray *
store_outbox_list(store *st, gint64 case_id, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query(st, case_id != 0 ? Q_OUTBOX_LIST_CASE : Q_OUTBOX_LIST_ALL, error);
	if (s == NULL)
		return NULL;
	if (case_id != 0)
		bind_int64(s, 1, case_id, &rc);
	return collect(st, s, rc, read_outbox, (GDestroyNotify)store_outbox_free, error,
	    "list outbox");
}

static gboolean
outbox_mark(store *st, enum query q, gint64 id, gint64 when, const char *why,
    GError **error, const char *what)
{
	g_autoptr(stmt_ref) s = NULL;
	g_autofree char *missing = g_strdup_printf("no outbox row %" G_GINT64_FORMAT, id);
	int rc = SQLITE_OK, n = 2;

	if ((s = query(st, q, error)) == NULL)
		return FALSE;
	bind_int64(s, 1, id, &rc);
	if (q != Q_OUTBOX_FAILED)
		bind_int64(s, n++, when, &rc);
	if (q != Q_OUTBOX_SENT)
		bind_text(s, n, why, &rc);
	return run_one(st, s, rc, error, what, missing);
}

gboolean
store_outbox_mark_sent(store *st, gint64 id, GError **error)
{
	return outbox_mark(st, Q_OUTBOX_SENT, id, cg_now(), NULL, error, "mark mail sent");
}

gboolean
store_outbox_mark_retry(store *st, gint64 id, gint64 next_attempt, const char *why,
    GError **error)
{
	return outbox_mark(st, Q_OUTBOX_RETRY, id, next_attempt, why, error,
	    "mark mail for retry");
}

gboolean
store_outbox_mark_failed(store *st, gint64 id, const char *why, GError **error)
{
	return outbox_mark(st, Q_OUTBOX_FAILED, id, 0, why, error, "mark mail failed");
}

/* ------------------------------------------------------------------ */
/* Mailbox state */

gboolean
store_mailbox_get(store *st, const char *account, const char *folder,
    guint32 *uidvalidity_r, guint32 *last_uid_r, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if ((s = query(st, Q_MBOX_GET, error)) == NULL)
		return FALSE;
	bind_text(s, 1, account != NULL ? account : "", &rc);
	bind_text(s, 2, folder != NULL ? folder : "", &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (uidvalidity_r != NULL)
			*uidvalidity_r = (guint32)sqlite3_column_int64(s, 0);
		if (last_uid_r != NULL)
			*last_uid_r = (guint32)sqlite3_column_int64(s, 1);
		return TRUE;
	}
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "read position of %s/%s", account, folder);
	return FALSE;
}

gboolean
store_mailbox_set(store *st, const char *account, const char *folder,
    guint32 uidvalidity, guint32 last_uid, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(account) || !present(folder)) {
		arg_error(st, error, "save mailbox position: no account or folder");
		return FALSE;
	}
	if ((s = query(st, Q_MBOX_SET, error)) == NULL)
		return FALSE;
	bind_text(s, 1, account, &rc);
	bind_text(s, 2, folder, &rc);
	bind_int64(s, 3, uidvalidity, &rc);
	bind_int64(s, 4, last_uid, &rc);
	bind_int64(s, 5, cg_now(), &rc);
	return run(st, s, rc, error, "save mailbox position");
}

/* ------------------------------------------------------------------ */
/* casectl: staff changes, outbox repair, reports, daemon status */

/*
 * These run once per casectl call, so their statements go through the
 * dynamic cache (prepared on first use) instead of the enum above.
 */

gboolean
store_case_set_type(store *st, gint64 case_id, const char *type, const char *sub_type,
    const char *update_type, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	g_autofree char *missing = g_strdup_printf("no case %" G_GINT64_FORMAT, case_id);
	int rc = SQLITE_OK;

	if (!present(type)) {
		arg_error(st, error, "set type: no type");
		return FALSE;
	}
	s = query_dynamic(st, "UPDATE cases SET type = ?2, sub_type = ?3, update_type = ?4,"
	    " updated = ?5 WHERE id = ?1", error);
	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	bind_text(s, 2, type, &rc);
	bind_text(s, 3, present(sub_type) ? sub_type : NULL, &rc);
	bind_text(s, 4, present(update_type) ? update_type : NULL, &rc);
	bind_int64(s, 5, cg_now(), &rc);
	return run_one(st, s, rc, error, "set type", missing);
}

gboolean
store_case_set_team(store *st, gint64 case_id, const char *team, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	g_autofree char *missing = g_strdup_printf("no case %" G_GINT64_FORMAT, case_id);
	int rc = SQLITE_OK;

	s = query_dynamic(st, "UPDATE cases SET team = ?2, updated = ?3 WHERE id = ?1", error);
	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	bind_text(s, 2, present(team) ? team : NULL, &rc);
	bind_int64(s, 3, cg_now(), &rc);
	return run_one(st, s, rc, error, "set team", missing);
}

store_outbox *
store_outbox_get(store *st, gint64 id, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query_dynamic(st, "SELECT " OUTBOX_COLS " FROM outbox WHERE id = ?1", error);
	if (s == NULL)
		return NULL;
	bind_int64(s, 1, id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return read_outbox(s);
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "read outbox row %" G_GINT64_FORMAT, id);
	return NULL;
}

GBytes *
store_outbox_recipe(store *st, gint64 id, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query_dynamic(st, "SELECT recipe FROM outbox WHERE id = ?1 AND recipe IS NOT NULL",
	    error);
	if (s == NULL)
		return NULL;
	bind_int64(s, 1, id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return g_bytes_new(sqlite3_column_blob(s, 0), sqlite3_column_bytes(s, 0));
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "read outbox row %" G_GINT64_FORMAT, id);
	return NULL;
}

gboolean
store_outbox_requeue(store *st, gint64 id, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	g_autofree char *missing = g_strdup_printf("no failed outbox row %" G_GINT64_FORMAT, id);
	int rc = SQLITE_OK;

	/* attempts restart at 0: the full retry schedule applies again. */
	s = query_dynamic(st, "UPDATE outbox SET state = 'queued', attempts = 0,"
	    " next_attempt = ?2 WHERE id = ?1 AND state = 'failed'", error);
	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, id, &rc);
	bind_int64(s, 2, cg_now(), &rc);
	return run_one(st, s, rc, error, "requeue mail", missing);
}

gint64
store_outbox_count(store *st, const char *state, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query_dynamic(st, "SELECT count(*) FROM outbox WHERE state = ?1", error);
	if (s == NULL)
		return -1;
	bind_text(s, 1, state != NULL ? state : "", &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		db_error(st, rc, error, "count outbox rows");
		return -1;
	}
	return sqlite3_column_int64(s, 0);
}

GArray *
store_first_staff_reply_delays(store *st, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	g_autoptr(GArray) out = g_array_new(FALSE, FALSE, sizeof(gint64));
	int rc;

	s = query_dynamic(st, "SELECT min(m.created) - c.created FROM cases c"
	    " JOIN messages m ON m.case_id = c.id"
	    " WHERE m.direction = 'out' AND m.role = 'staff'"
	    " GROUP BY c.id ORDER BY c.id", error);
	if (s == NULL)
		return NULL;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		gint64 d = sqlite3_column_int64(s, 0);

		/* A clock step backwards must not make a negative delay. */
		if (d < 0)
			d = 0;
		g_array_append_val(out, d);
	}
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "first staff replies");
		return NULL;
	}
	return g_steal_pointer(&out);
}

GPtrArray *
store_events_failed(store *st, int limit, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query_dynamic(st, "SELECT id, case_id, at, kind, actor, detail FROM events"
	    " WHERE kind LIKE '%failed' OR kind = 'error' ORDER BY id DESC LIMIT ?1", error);
	if (s == NULL)
		return NULL;
	bind_int64(s, 1, limit > 0 ? limit : -1, &rc);
	return collect(st, s, rc, read_event, (GDestroyNotify)store_event_free, error,
	    "list failures");
}

gboolean
store_daemon_status_set(store *st, const store_daemon_status *ds, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (ds == NULL || !present(ds->account)) {
		arg_error(st, error, "save daemon status: no account");
		return FALSE;
	}
	s = query_dynamic(st, "INSERT INTO daemon_status (account, pid, started, last_poll,"
	    " waiting, last_error, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	    " ON CONFLICT (account) DO UPDATE SET pid = excluded.pid,"
	    " started = excluded.started, last_poll = excluded.last_poll,"
	    " waiting = excluded.waiting, last_error = excluded.last_error,"
	    " updated = excluded.updated", error);
	if (s == NULL)
		return FALSE;
	bind_text(s, 1, ds->account, &rc);
	bind_int64(s, 2, ds->pid, &rc);
	bind_int64(s, 3, ds->started, &rc);
	bind_int64(s, 4, ds->last_poll, &rc);
	bind_int64(s, 5, ds->waiting, &rc);
	bind_text(s, 6, present(ds->last_error) ? ds->last_error : NULL, &rc);
	bind_int64(s, 7, cg_now(), &rc);
	return run(st, s, rc, error, "save daemon status");
}

static gpointer
read_daemon_status(sqlite3_stmt *s)
{
	store_daemon_status *ds = g_new0(store_daemon_status, 1);

	ds->account = col_text(s, 0);
	ds->pid = sqlite3_column_int64(s, 1);
	ds->started = sqlite3_column_int64(s, 2);
	ds->last_poll = sqlite3_column_int64(s, 3);
	ds->waiting = sqlite3_column_int64(s, 4);
	ds->last_error = col_text(s, 5);
	ds->updated = sqlite3_column_int64(s, 6);
	return ds;
}

GPtrArray *
store_daemon_status_get(store *st, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;

	s = query_dynamic(st, "SELECT account, pid, started, last_poll, waiting, last_error,"
	    " updated FROM daemon_status ORDER BY account", error);
	if (s == NULL)
		return NULL;
	return collect(st, s, SQLITE_OK, read_daemon_status,
	    (GDestroyNotify)store_daemon_status_free, error, "read daemon status");
}

void
store_daemon_status_free(store_daemon_status *ds)
{
	if (ds == NULL)
		return;
	g_free(ds->account);
	g_free(ds->last_error);
	g_free(ds);
}

/* ------------------------------------------------------------------ */
/* Freeing */

void
store_case_free(store_case *c)
{
	if (c == NULL)
		return;
	g_free(c->public_id);
	g_free(c->member);
	g_free(c->member_name);
	g_free(c->subject);
	g_free(c->type);
	g_free(c->sub_type);
	g_free(c->update_type);
	g_free(c->team);
	g_free(c->priority);
	g_free(c->status);
	g_free(c->member_number);
	g_free(c->lang);
	g_free(c->tags);
	g_free(c);
}

void
store_message_free(store_message *m)
{
	if (m == NULL)
		return;
	g_free(m->direction);
	g_free(m->role);
	g_free(m->message_id);
	g_free(m->source_key);
	g_free(m->raw_digest);
	g_free(m->from_addr);
	g_free(m->to_addrs);
	g_free(m->subject);
	g_free(m->text);
	g_free(m);
}

void
store_attachment_free(store_attachment *a)
{
	if (a == NULL)
		return;
	g_free(a->digest);
	g_free(a->name);
	g_free(a->content_type);
	g_free(a);
}

void
store_event_free(store_event *e)
{
	if (e == NULL)
		return;
	g_free(e->kind);
	g_free(e->actor);
	g_free(e->detail);
	g_free(e);
}

void
store_field_free(store_field *f)
{
	if (f == NULL)
		return;
	g_free(f->name);
	g_free(f->value);
	g_free(f);
}

void
store_outbox_free(store_outbox *o)
{
	if (o == NULL)
		return;
	g_free(o->kind);
	g_free(o->env_from);
	g_free(o->rcpt);
	g_free(o->message_id);
	g_free(o->spool_digest);
	g_free(o->state);
	g_free(o->last_error);
	if (o->recipe != NULL)
		g_bytes_unref(o->recipe);
	g_free(o);
}

/* ------------------------------------------------------------------ */
/* Mail hygiene (issue 5): quarantine, automatic-mail log, bounces,
 * suppressed addresses.  Their statements are cached by SQL text
 * (query_dynamic) so this section stays self-contained. */

#define QUAR_COLS	"id, created, updated, raw_digest, source_key, reason, from_addr, " \
			"subject, message_id, size, state"

static gpointer
read_quarantine(sqlite3_stmt *s)
{
	store_quarantine *q = g_new0(store_quarantine, 1);

	q->id = sqlite3_column_int64(s, 0);
	q->created = sqlite3_column_int64(s, 1);
	q->updated = sqlite3_column_int64(s, 2);
	q->raw_digest = col_text(s, 3);
	q->source_key = col_text(s, 4);
	q->reason = col_text(s, 5);
	q->from_addr = col_text(s, 6);
	q->subject = col_text(s, 7);
	q->message_id = col_text(s, 8);
	q->size = sqlite3_column_int64(s, 9);
	q->state = col_text(s, 10);
	return q;
}

void
store_quarantine_free(store_quarantine *q)
{
	if (q == NULL)
		return;
	g_free(q->raw_digest);
	g_free(q->source_key);
	g_free(q->reason);
	g_free(q->from_addr);
	g_free(q->subject);
	g_free(q->message_id);
	g_free(q->state);
	g_free(q);
}

gint64
store_quarantine_add(store *st, const store_quarantine *q, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;
	gint64 now = cg_now();

	if (!present(q->raw_digest) || !present(q->reason)) {
		arg_error(st, error, "quarantine: raw digest and reason are required");
		return 0;
	}
	s = query_dynamic(st, "INSERT INTO quarantine (created, updated, raw_digest, "
	    "source_key, reason, from_addr, subject, message_id, size, state) VALUES "
	    "(?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'held')", error);
	if (s == NULL)
		return 0;
	bind_int64(s, 1, now, &rc);
	bind_text(s, 2, q->raw_digest, &rc);
	bind_text(s, 3, present(q->source_key) ? q->source_key : NULL, &rc);
	bind_text(s, 4, q->reason, &rc);
	bind_text(s, 5, q->from_addr, &rc);
	bind_text(s, 6, q->subject, &rc);
	bind_text(s, 7, q->message_id, &rc);
	bind_int64(s, 8, q->size, &rc);
	if (!run(st, s, rc, error, "insert quarantine row"))
		return 0;
	return sqlite3_last_insert_rowid(st->db);
}

store_quarantine *
store_quarantine_get(store *st, gint64 id, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query_dynamic(st, "SELECT " QUAR_COLS " FROM quarantine WHERE id = ?1", error);
	if (s == NULL)
		return NULL;
	bind_int64(s, 1, id, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return read_quarantine(s);
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "load quarantine row");
	return NULL;
}

GPtrArray *
store_quarantine_list(store *st, const char *state, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (state == NULL)
		s = query_dynamic(st, "SELECT " QUAR_COLS " FROM quarantine ORDER BY id DESC",
		    error);
	else
		s = query_dynamic(st, "SELECT " QUAR_COLS " FROM quarantine WHERE state = ?1"
		    " ORDER BY id DESC", error);
	if (s == NULL)
		return NULL;
	if (state != NULL)
		bind_text(s, 1, state, &rc);
	return collect(st, s, rc, read_quarantine, (GDestroyNotify)store_quarantine_free,
	    error, "list quarantine");
}

gboolean
store_quarantine_set_state(store *st, gint64 id, const char *state, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query_dynamic(st, "UPDATE quarantine SET state = ?2, updated = ?3 WHERE id = ?1",
	    error);
	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, id, &rc);
	bind_text(s, 2, state, &rc);
	bind_int64(s, 3, cg_now(), &rc);
	return run_one(st, s, rc, error, "set quarantine state", "no such quarantine entry");
}

gint64
store_quarantine_seen(store *st, const char *source_key, const char *raw_digest,
    GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(source_key) && !present(raw_digest))
		return 0;
	/* A released entry went through ingestion; only held or deleted
	 * ones make a second copy a duplicate. */
	s = query_dynamic(st, "SELECT id FROM quarantine WHERE state <> 'released' AND"
	    " (source_key = ?1 OR raw_digest = ?2) ORDER BY id LIMIT 1", error);
	if (s == NULL)
		return -1;
	bind_text(s, 1, present(source_key) ? source_key : NULL, &rc);
	bind_text(s, 2, present(raw_digest) ? raw_digest : NULL, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return sqlite3_column_int64(s, 0);
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "look up quarantine");
		return -1;
	}
	return 0;
}

gint64
store_digest_refs(store *st, const char *raw_digest, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	s = query_dynamic(st, "SELECT (SELECT count(*) FROM messages WHERE raw_digest = ?1)"
	    " + (SELECT count(*) FROM quarantine WHERE raw_digest = ?1 AND"
	    " state <> 'deleted')", error);
	if (s == NULL)
		return -1;
	bind_text(s, 1, raw_digest, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		db_error(st, rc, error, "count references to a raw message");
		return -1;
	}
	return sqlite3_column_int64(s, 0);
}

gboolean
store_autoreply_log_add(store *st, const char *rcpt, const char *kind, gint64 case_id,
    gint64 at, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(rcpt) || !present(kind)) {
		arg_error(st, error, "automatic-mail log: recipient and kind are required");
		return FALSE;
	}
	s = query_dynamic(st, "INSERT INTO autoreply_log (rcpt, at, kind, case_id)"
	    " VALUES (?1, ?2, ?3, ?4)", error);
	if (s == NULL)
		return FALSE;
	bind_text(s, 1, rcpt, &rc);
	bind_int64(s, 2, at, &rc);
	bind_text(s, 3, kind, &rc);
	bind_case(s, 4, case_id, &rc);
	return run(st, s, rc, error, "insert automatic-mail log row");
}

/* SELECT count(*) ... with ?1 text and ?2 integer; -1 on error. */
static gint64
count_text_since(store *st, const char *sql, const char *key, gint64 since,
    GError **error, const char *what)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if ((s = query_dynamic(st, sql, error)) == NULL)
		return -1;
	bind_text(s, 1, key, &rc);
	bind_int64(s, 2, since, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		db_error(st, rc, error, "%s", what);
		return -1;
	}
	return sqlite3_column_int64(s, 0);
}

gint64
store_autoreply_count(store *st, const char *rcpt, gint64 since, GError **error)
{
	return count_text_since(st, "SELECT count(*) FROM autoreply_log WHERE rcpt = ?1"
	    " AND at >= ?2", rcpt, since, error, "count automatic mail");
}

gboolean
store_bounce_add(store *st, const char *addr, gboolean hard, const char *status,
    const char *diagnostic, gint64 case_id, gint64 at, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(addr)) {
		arg_error(st, error, "bounce: no address");
		return FALSE;
	}
	s = query_dynamic(st, "INSERT INTO bounces (addr, at, hard, status, diagnostic,"
	    " case_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", error);
	if (s == NULL)
		return FALSE;
	bind_text(s, 1, addr, &rc);
	bind_int64(s, 2, at, &rc);
	bind_int64(s, 3, hard ? 1 : 0, &rc);
	bind_text(s, 4, status, &rc);
	bind_text(s, 5, diagnostic, &rc);
	bind_case(s, 6, case_id, &rc);
	return run(st, s, rc, error, "insert bounce");
}

gint64
store_bounce_count(store *st, const char *addr, gint64 since, GError **error)
{
	return count_text_since(st, "SELECT count(*) FROM bounces WHERE addr = ?1"
	    " AND at >= ?2 AND hard = 1", addr, since, error, "count bounces");
}

gboolean
store_suppress_set(store *st, const char *addr, gint64 until, const char *reason,
    GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (!present(addr) || !present(reason)) {
		arg_error(st, error, "suppress: address and reason are required");
		return FALSE;
	}
	s = query_dynamic(st, "INSERT INTO suppressed (addr, until, reason, created)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (addr) DO UPDATE SET"
	    " until = excluded.until, reason = excluded.reason", error);
	if (s == NULL)
		return FALSE;
	bind_text(s, 1, addr, &rc);
	bind_int64(s, 2, until, &rc);
	bind_text(s, 3, reason, &rc);
	bind_int64(s, 4, cg_now(), &rc);
	return run(st, s, rc, error, "suppress address");
}

gint64
store_suppressed_until(store *st, const char *addr, gint64 now, char **reason_r,
    GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (reason_r != NULL)
		*reason_r = NULL;
	if (!present(addr))
		return 0;
	s = query_dynamic(st, "SELECT until, reason FROM suppressed WHERE addr = ?1"
	    " AND until > ?2", error);
	if (s == NULL)
		return -1;
	bind_text(s, 1, addr, &rc);
	bind_int64(s, 2, now, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (reason_r != NULL)
			*reason_r = col_text(s, 1);
		return sqlite3_column_int64(s, 0);
	}
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "look up suppressed address");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Conversations: participants, threading, links (issue 4) */

gboolean
store_participant_add(store *st, gint64 case_id, const char *addr, const char *role,
    GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (case_id <= 0 || !present(addr) || !present(role)) {
		arg_error(st, error, "add participant: case, address and role are required");
		return FALSE;
	}
	s = query_dynamic(st, "INSERT INTO case_participants (case_id, addr, role, added)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (case_id, addr) DO NOTHING", error);
	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	bind_text(s, 2, addr, &rc);
	bind_text(s, 3, role, &rc);
	bind_int64(s, 4, cg_now(), &rc);
	return run(st, s, rc, error, "add participant");
}

static gpointer
read_text0(sqlite3_stmt *s)
{
	return col_text(s, 0);
}

GPtrArray *
store_case_participants(store *st, gint64 case_id, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "SELECT addr FROM case_participants"
	    " WHERE case_id = ?1 ORDER BY added, addr", error);
	int rc = SQLITE_OK;

	if (s == NULL)
		return NULL;
	bind_int64(s, 1, case_id, &rc);
	return collect(st, s, rc, read_text0, g_free, error, "list participants");
}

store_message *
store_case_last_message(store *st, gint64 case_id, const char *direction, const char *role,
    GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "SELECT " MSG_COLS " FROM messages"
	    " WHERE case_id = ?1 AND (?2 IS NULL OR direction = ?2)"
	    " AND (?3 IS NULL OR role = ?3) ORDER BY id DESC LIMIT 1", error);
	int rc = SQLITE_OK;

	if (s == NULL)
		return NULL;
	bind_int64(s, 1, case_id, &rc);
	bind_text(s, 2, direction, &rc);
	bind_text(s, 3, role, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return read_message(s);
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "last message of case");
	return NULL;
}

GPtrArray *
store_case_message_ids(store *st, gint64 case_id, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "SELECT message_id FROM messages"
	    " WHERE case_id = ?1 AND message_id IS NOT NULL ORDER BY id", error);
	int rc = SQLITE_OK;

	if (s == NULL)
		return NULL;
	bind_int64(s, 1, case_id, &rc);
	return collect(st, s, rc, read_text0, g_free, error, "message ids of case");
}

gboolean
store_case_set_priority(store *st, gint64 case_id, const char *priority, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "UPDATE cases SET priority = ?2, updated = ?3"
	    " WHERE id = ?1", error);
	g_autofree char *missing = g_strdup_printf("no case %" G_GINT64_FORMAT, case_id);
	int rc = SQLITE_OK;

	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	bind_text(s, 2, present(priority) ? priority : NULL, &rc);
	bind_int64(s, 3, cg_now(), &rc);
	return run_one(st, s, rc, error, "set priority", missing);
}

gboolean
store_case_set_linked(store *st, gint64 case_id, gint64 linked_to, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "UPDATE cases SET linked_to = ?2 WHERE id = ?1",
	    error);
	g_autofree char *missing = g_strdup_printf("no case %" G_GINT64_FORMAT, case_id);
	int rc = SQLITE_OK;

	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	bind_case(s, 2, linked_to, &rc);
	return run_one(st, s, rc, error, "link case", missing);
}

/* One integer from a query binding ?1 (and ?2 text when given); 0 for no row or NULL. */
static gint64
int_query(store *st, const char *sql, gint64 key, const char *text, GError **error,
    const char *what)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, sql, error);
	int rc = SQLITE_OK;

	if (s == NULL)
		return -1;
	bind_int64(s, 1, key, &rc);
	if (text != NULL)
		bind_text(s, 2, text, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return sqlite3_column_int64(s, 0);
	if (rc != SQLITE_DONE) {
		db_error(st, rc, error, "%s", what);
		return -1;
	}
	return 0;
}

gint64
store_case_linked_to(store *st, gint64 case_id, GError **error)
{
	return int_query(st, "SELECT linked_to FROM cases WHERE id = ?1", case_id, NULL, error,
	    "linked case");
}

gint64
store_case_last_event(store *st, gint64 case_id, const char *kind, GError **error)
{
	if (!present(kind)) {
		arg_error(st, error, "last event: no kind");
		return -1;
	}
	return int_query(st, "SELECT max(at) FROM events WHERE case_id = ?1 AND kind = ?2",
	    case_id, kind, error, "last event of case");
}

gboolean
store_message_set_visible(store *st, gint64 message_row, const char *visible, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "UPDATE messages SET visible = ?2 WHERE id = ?1",
	    error);
	g_autofree char *missing = g_strdup_printf("no message %" G_GINT64_FORMAT, message_row);
	int rc = SQLITE_OK;

	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, message_row, &rc);
	bind_text(s, 2, visible, &rc);
	return run_one(st, s, rc, error, "set visible text", missing);
}

char *
store_message_visible(store *st, gint64 message_row, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "SELECT visible FROM messages WHERE id = ?1",
	    error);
	int rc = SQLITE_OK;

	if (s == NULL)
		return NULL;
	bind_int64(s, 1, message_row, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return col_text(s, 0);
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "visible text");
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The member directory (issue 4, point 11) */

#define MEMBER_COLS	"m.number, m.name, m.lang, m.updated, (SELECT group_concat(addr, ' ')" \
			" FROM (SELECT addr FROM member_addresses a WHERE a.number = m.number" \
			" ORDER BY addr))"

static gpointer
read_member(sqlite3_stmt *s)
{
	store_member *m = g_new0(store_member, 1);
	const char *addrs = (const char *)sqlite3_column_text(s, 4);
	g_auto(GStrv) v = g_strsplit(addrs != NULL ? addrs : "", " ", 0);
	guint i;

	m->number = col_text(s, 0);
	m->name = col_text(s, 1);
	m->lang = col_text(s, 2);
	m->updated = sqlite3_column_int64(s, 3);
	m->addresses = g_ptr_array_new_with_free_func(g_free);
	for (i = 0; v[i] != NULL; i++)
		if (*v[i] != '\0')
			g_ptr_array_add(m->addresses, g_strdup(v[i]));
	return m;
}

void
store_member_free(store_member *m)
{
	if (m == NULL)
		return;
	g_free(m->number);
	g_free(m->name);
	g_free(m->lang);
	g_clear_pointer(&m->addresses, g_ptr_array_unref);
	g_free(m);
}

gboolean
store_member_put(store *st, const store_member *m, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;
	guint i;

	if (m == NULL || !present(m->number)) {
		arg_error(st, error, "save member: no member number");
		return FALSE;
	}
	s = query_dynamic(st, "INSERT INTO members (number, name, lang, updated)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (number) DO UPDATE SET"
	    " name = excluded.name, lang = excluded.lang, updated = excluded.updated", error);
	if (s == NULL)
		return FALSE;
	bind_text(s, 1, m->number, &rc);
	bind_text(s, 2, m->name != NULL ? m->name : "", &rc);
	bind_text(s, 3, present(m->lang) ? m->lang : NULL, &rc);
	bind_int64(s, 4, cg_now(), &rc);
	if (!run(st, s, rc, error, "save member"))
		return FALSE;
	g_clear_pointer(&s, stmt_release);
	s = query_dynamic(st, "DELETE FROM member_addresses WHERE number = ?1", error);
	if (s == NULL)
		return FALSE;
	bind_text(s, 1, m->number, &rc);
	if (!run(st, s, rc, error, "replace member addresses"))
		return FALSE;
	for (i = 0; m->addresses != NULL && i < m->addresses->len; i++) {
		g_clear_pointer(&s, stmt_release);
		s = query_dynamic(st, "INSERT INTO member_addresses (addr, number)"
		    " VALUES (?1, ?2)", error);
		if (s == NULL)
			return FALSE;
		bind_text(s, 1, g_ptr_array_index(m->addresses, i), &rc);
		bind_text(s, 2, m->number, &rc);
		if (!run(st, s, rc, error, "save member address"))
			return FALSE;
	}
	return TRUE;
}

gboolean
store_members_clear(store *st, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "DELETE FROM members", error);

	if (s == NULL)
		return FALSE;
	return run(st, s, SQLITE_OK, error, "clear the member directory");
}

store_member *
store_member_get(store *st, const char *number, const char *addr, GError **error)
{
	g_autoptr(stmt_ref) s = NULL;
	int rc = SQLITE_OK;

	if (present(number))
		s = query_dynamic(st, "SELECT " MEMBER_COLS " FROM members m WHERE m.number = ?1",
		    error);
	else if (present(addr))
		s = query_dynamic(st, "SELECT " MEMBER_COLS " FROM members m WHERE m.number ="
		    " (SELECT number FROM member_addresses WHERE addr = ?1)", error);
	else
		return NULL;
	if (s == NULL)
		return NULL;
	bind_text(s, 1, present(number) ? number : addr, &rc);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return read_member(s);
	if (rc != SQLITE_DONE)
		db_error(st, rc, error, "look up member");
	return NULL;
}

GPtrArray *
store_member_list(store *st, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "SELECT " MEMBER_COLS " FROM members m"
	    " ORDER BY length(m.number), m.number", error);

	if (s == NULL)
		return NULL;
	return collect(st, s, SQLITE_OK, read_member, (GDestroyNotify)store_member_free, error,
	    "list members");
}

gboolean
store_case_set_member_info(store *st, gint64 case_id, const char *number, const char *lang,
    const char *tags, GError **error)
{
	g_autoptr(stmt_ref) s = query_dynamic(st, "UPDATE cases SET member_number = ?2,"
	    " lang = ?3, tags = ?4 WHERE id = ?1", error);
	g_autofree char *missing = g_strdup_printf("no case %" G_GINT64_FORMAT, case_id);
	int rc = SQLITE_OK;

	if (s == NULL)
		return FALSE;
	bind_int64(s, 1, case_id, &rc);
	bind_text(s, 2, present(number) ? number : NULL, &rc);
	bind_text(s, 3, present(lang) ? lang : NULL, &rc);
	bind_text(s, 4, present(tags) ? tags : NULL, &rc);
	return run_one(st, s, rc, error, "set case member", missing);
}
