/*
 * test-store.c - the SQLite store: schema and migrations, keys that make
 * ingestion idempotent, transactions, outbox scheduling, filters, search
 * with hostile input, and SQLITE_BUSY handling.
 *
 * Each test gets a fresh database in its own temporary directory; a
 * second raw sqlite3 connection plays "another process" where needed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "cg.h"
#include "store.h"

typedef struct {
	char	*dir;
	char	*path;
	store	*st;
} fixture;

static void
fx_setup(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("test-store-XXXXXX", &error);
	g_assert_no_error(error);
	fx->path = g_build_filename(fx->dir, "casegate.db", NULL);
	fx->st = store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_nonnull(fx->st);
}

static void
fx_teardown(fixture *fx, gconstpointer data)
{
	GDir *d;
	const char *name;

	store_close(fx->st);
	d = g_dir_open(fx->dir, 0, NULL);
	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(fx->dir, name, NULL);

		g_assert_cmpint(g_unlink(p), ==, 0);
	}
	if (d != NULL)
		g_dir_close(d);
	g_assert_cmpint(g_rmdir(fx->dir), ==, 0);
	g_free(fx->path);
	g_free(fx->dir);
}

/* A second connection, as another process would have it. */
static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db = NULL;

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	return db;
}

static void
raw_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		g_error("%s: %s", sql, err);
}

static gint64
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	gint64 v;

	g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &s, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static gint64
new_case(store *st, const char *member, const char *type, const char *team)
{
	g_autoptr(GError) error = NULL;
	store_case c = {
		.member = (char *)member,
		.subject = (char *)"Help",
		.type = (char *)type,
		.team = (char *)team,
	};
	gint64 id;

	id = store_case_create(st, &c, "CASE-", 6, &error);
	g_assert_no_error(error);
	g_assert_cmpint(id, >, 0);
	return id;
}

static gint64
new_message(store *st, gint64 case_id, const char *direction, const char *source_key,
    const char *digest, const char *message_id, const char *subject, const char *text)
{
	g_autoptr(GError) error = NULL;
	store_message m = {
		.case_id = case_id,
		.direction = (char *)direction,
		.role = (char *)"member",
		.message_id = (char *)message_id,
		.source_key = (char *)source_key,
		.raw_digest = (char *)digest,
		.from_addr = (char *)"ann@example.org",
		.to_addrs = (char *)"members@example.org",
		.subject = (char *)subject,
		.text = (char *)text,
		.date = 1700000000,
	};
	gint64 id;

	id = store_message_add(st, &m, &error);
	g_assert_no_error(error);
	g_assert_cmpint(id, >, 0);
	return id;
}

static guint
count_cases(store *st)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) all = store_case_list(st, NULL, &error);

	g_assert_no_error(error);
	return all->len;
}

/* ------------------------------------------------------------------ */

static void
test_open_migrate(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(store_case) c = NULL;
	struct stat sb;
	sqlite3 *db;
	gint64 id;
	int version, i;

	version = store_schema_version(fx->st);
	g_assert_cmpint(version, >=, 1);
	id = new_case(fx->st, "ann@example.org", NULL, NULL);

	/* Members' mail: not world-readable. */
	g_assert_cmpint(stat(fx->path, &sb), ==, 0);
	g_assert_cmpint(sb.st_mode & 007, ==, 0);

	/* Opening again migrates nothing and keeps the data. */
	for (i = 0; i < 2; i++) {
		store_close(fx->st);
		fx->st = store_open(fx->path, &error);
		g_assert_no_error(error);
		g_assert_cmpint(store_schema_version(fx->st), ==, version);
	}
	c = store_case_get(fx->st, id, &error);
	g_assert_no_error(error);
	g_assert_nonnull(c);
	g_assert_cmpstr(c->public_id, ==, "CASE-000001");

	db = raw_open(fx->path);
	g_assert_cmpint(raw_int(db, "PRAGMA user_version"), ==, version);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'messages_fts'"),
	    ==, 1);
	{
		sqlite3_stmt *s = NULL;

		sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
		g_assert_cmpint(sqlite3_step(s), ==, SQLITE_ROW);
		g_assert_cmpstr((const char *)sqlite3_column_text(s, 0), ==, "wal");
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
}

static void
test_newer_refused(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *sql = NULL;
	store *st;
	sqlite3 *db;

	sql = g_strdup_printf("PRAGMA user_version = %d", store_schema_version(fx->st) + 1);
	db = raw_open(fx->path);
	raw_exec(db, sql);
	sqlite3_close(db);

	st = store_open(fx->path, &error);
	g_assert_null(st);
	g_assert_error(error, CG_ERROR, CG_ERROR_CONFIG);
	g_assert_nonnull(strstr(error->message, "newer than this program knows"));
	g_assert_nonnull(strstr(error->message, fx->path));
	g_clear_error(&error);

	st = store_open_readonly(fx->path, &error);
	g_assert_null(st);
	g_assert_error(error, CG_ERROR, CG_ERROR_CONFIG);
}

static void
test_bad_files(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("test-store-XXXXXX", NULL);
	g_autofree char *junk = g_build_filename(dir, "junk.db", NULL);
	g_autofree char *empty = g_build_filename(dir, "empty.db", NULL);
	g_autofree char *missing = g_build_filename(dir, "missing.db", NULL);
	g_autofree char *nodir = g_build_filename(dir, "no", "such", "dir.db", NULL);
	g_autofree char *want = NULL;
	store *st;
	sqlite3 *db;
	char wal[4096];

	/* read-only open of a missing file: say so, do not create it */
	st = store_open_readonly(missing, &error);
	g_assert_null(st);
	g_assert_error(error, CG_ERROR, CG_ERROR_CONFIG);
	want = g_strdup_printf("database %s does not exist", missing);
	g_assert_cmpstr(error->message, ==, want);
	g_assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
	g_clear_error(&error);

	/* not a database */
	g_assert_true(g_file_set_contents(junk, "this is not a database, just some text, "
	    "long enough to be looked at as a header..............................",
	    -1, NULL));
	st = store_open(junk, &error);
	g_assert_null(st);
	g_assert_error(error, CG_ERROR, CG_ERROR_CONFIG);
	g_assert_nonnull(strstr(error->message, "not a database"));
	g_clear_error(&error);

	/* a database without our schema is refused read-only, not guessed at */
	db = raw_open(empty);
	raw_exec(db, "CREATE TABLE t (x)");
	sqlite3_close(db);
	st = store_open_readonly(empty, &error);
	g_assert_null(st);
	g_assert_error(error, CG_ERROR, CG_ERROR_CONFIG);
	g_assert_nonnull(strstr(error->message, "older"));
	g_clear_error(&error);

	/* a directory that is not there */
	st = store_open(nodir, &error);
	g_assert_null(st);
	g_assert_error(error, CG_ERROR, CG_ERROR_CONFIG);
	g_assert_nonnull(strstr(error->message, nodir));
	g_clear_error(&error);

	st = store_open("", &error);
	g_assert_null(st);
	g_assert_error(error, CG_ERROR, CG_ERROR_CONFIG);
	g_clear_error(&error);

	g_snprintf(wal, sizeof(wal), "%s-wal", empty);
	g_unlink(wal);
	g_unlink(junk);
	g_unlink(empty);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_readonly(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(store) ro = NULL;
	g_autoptr(store_case) c = NULL;
	gint64 id;

	id = new_case(fx->st, "ann@example.org", "Royalties", NULL);
	ro = store_open_readonly(fx->path, &error);
	g_assert_no_error(error);
	c = store_case_get_public(ro, "CASE-000001", &error);
	g_assert_no_error(error);
	g_assert_nonnull(c);
	g_assert_cmpint(c->id, ==, id);
	g_assert_false(store_event_add(ro, id, "note", "test", NULL, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_TEMP);
	g_assert_nonnull(strstr(error->message, "readonly"));
	g_clear_error(&error);

	/* with the writer gone (no -wal, no -shm left) */
	g_clear_pointer(&ro, store_close);
	g_clear_pointer(&fx->st, store_close);
	ro = store_open_readonly(fx->path, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(count_cases(ro), ==, 1);
}

static void
test_case_create(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*prefix;
		int		 digits;
		const char	*want;
	} rows[] = {
		{ "CASE-", 6, "CASE-000001" },
		{ "CASE-", 6, "CASE-000002" },
		{ "X", 2, "X03" },
		{ "", 1, "4" },
		{ "T-", 1, "T-5" },		/* wider than digits: not cut */
		{ "CASE-", 6, "CASE-000006" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(store_case) got = NULL;
		store_case c = {
			.member = (char *)"ann@example.org",
			.member_name = (char *)"Ann Example",
			.subject = (char *)"Missing royalties",
			.type = (char *)"Royalties",
			.sub_type = (char *)"Missing Royalties",
			.team = (char *)"distribution",
			.priority = (char *)"high",
			.needs_info = TRUE,
			.status = (char *)CASE_RESOLVED,	/* ignored */
		};
		gint64 id;

		id = store_case_create(fx->st, &c, rows[i].prefix, rows[i].digits, &error);
		g_assert_no_error(error);
		g_assert_cmpint(id, ==, (gint64)i + 1);
		got = store_case_get(fx->st, id, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(got->public_id, ==, rows[i].want);
		g_assert_cmpstr(got->member, ==, "ann@example.org");
		g_assert_cmpstr(got->member_name, ==, "Ann Example");
		g_assert_cmpstr(got->subject, ==, "Missing royalties");
		g_assert_cmpstr(got->type, ==, "Royalties");
		g_assert_cmpstr(got->sub_type, ==, "Missing Royalties");
		g_assert_null(got->update_type);
		g_assert_cmpstr(got->team, ==, "distribution");
		g_assert_cmpstr(got->priority, ==, "high");
		g_assert_cmpstr(got->status, ==, CASE_ACTIVE);
		g_assert_true(got->needs_info);
		g_assert_cmpint(got->created, >, 0);
		g_assert_cmpint(got->updated, ==, got->created);
	}
}

static void
test_case_create_bad(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*member;
		const char	*prefix;
		int		 digits;
	} rows[] = {
		{ NULL, "CASE-", 6 },
		{ "", "CASE-", 6 },
		{ "ann@example.org", NULL, 6 },
		{ "ann@example.org", "CASE-", 0 },
		{ "ann@example.org", "CASE-", 19 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		store_case c = { .member = (char *)rows[i].member };

		g_assert_cmpint(store_case_create(fx->st, &c, rows[i].prefix, rows[i].digits,
		    &error), ==, 0);
		g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	}
	g_assert_cmpuint(count_cases(fx->st), ==, 0);
}

/* Naming fails after the insert: the insert goes too, even outside a transaction. */
static void
test_case_create_atomic(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	store_case c = { .member = (char *)"ann@example.org" };
	sqlite3 *db;

	db = raw_open(fx->path);
	raw_exec(db, "INSERT INTO cases (id, public_id, member, created, updated)"
	    " VALUES (5, 'case-000006', 'x@example.org', 1, 1)");
	sqlite3_close(db);
	g_assert_cmpint(store_case_create(fx->st, &c, "CASE-", 6, &error), ==, 0);
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	g_assert_nonnull(strstr(error->message, "set public id of new case: UNIQUE"));
	g_assert_cmpuint(count_cases(fx->st), ==, 1);
	g_clear_error(&error);
	/* and the connection is usable afterwards */
	g_assert_true(store_begin(fx->st, &error));
	store_rollback(fx->st);
	g_assert_no_error(error);
}

static void
test_case_get_public(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*ask;
		gint64		 want;
	} rows[] = {
		{ "CASE-000002", 2 },
		{ "case-000002", 2 },
		{ "Case-000001", 1 },
		{ "CASE-000003", 0 },
		{ "CASE-2", 0 },
		{ "", 0 },
		{ NULL, 0 },
		{ "' OR 1=1 --", 0 },
	};
	size_t i;

	new_case(fx->st, "ann@example.org", NULL, NULL);
	new_case(fx->st, "bob@example.org", NULL, NULL);
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(store_case) c = store_case_get_public(fx->st, rows[i].ask, &error);

		g_assert_no_error(error);
		if (rows[i].want == 0)
			g_assert_null(c);
		else {
			g_assert_nonnull(c);
			g_assert_cmpint(c->id, ==, rows[i].want);
		}
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(store_case) c = store_case_get(fx->st, 99, &error);

		g_assert_no_error(error);
		g_assert_null(c);
	}
}

static void
test_message_seen(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*source_key, *digest, *message_id;
		int		 want;		/* 0 none, 1 first message, 2 second */
	} rows[] = {
		{ "acct/INBOX/7/1", NULL, NULL, 1 },
		{ NULL, "d1", NULL, 1 },
		{ NULL, NULL, "a@example.org", 1 },
		{ "acct/INBOX/7/2", "d1", "zzz@example.org", 1 },	/* digest wins */
		{ "acct/INBOX/7/9", "d9", "b@example.org", 2 },	/* source key wins */
		{ "acct/INBOX/8/1", NULL, NULL, 0 },		/* other uidvalidity */
		{ NULL, "dout", NULL, 0 },			/* outgoing: not "seen" */
		{ NULL, NULL, "out@example.org", 0 },
		{ NULL, NULL, "A@EXAMPLE.ORG", 0 },		/* Message-IDs are exact */
		{ "", "", "", 0 },
		{ NULL, NULL, NULL, 0 },
	};
	gint64 c1, c2, m1, m2;
	size_t i;

	c1 = new_case(fx->st, "ann@example.org", NULL, NULL);
	c2 = new_case(fx->st, "bob@example.org", NULL, NULL);
	m1 = new_message(fx->st, c1, "in", "acct/INBOX/7/1", "d1", "a@example.org", "s", "t");
	m2 = new_message(fx->st, c2, "in", "acct/INBOX/7/9", "d2", "b@example.org", "s", "t");
	new_message(fx->st, c1, "out", NULL, "dout", "out@example.org", "s", "t");
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		gint64 case_id = -7, got;

		got = store_message_seen(fx->st, rows[i].source_key, rows[i].digest,
		    rows[i].message_id, &case_id, &error);
		g_assert_no_error(error);
		switch (rows[i].want) {
		case 0:
			g_assert_cmpint(got, ==, 0);
			g_assert_cmpint(case_id, ==, 0);
			break;
		case 1:
			g_assert_cmpint(got, ==, m1);
			g_assert_cmpint(case_id, ==, c1);
			break;
		default:
			g_assert_cmpint(got, ==, m2);
			g_assert_cmpint(case_id, ==, c2);
			break;
		}
	}
}

static void
test_case_by_message_id(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*message_id;
		int		 want;	/* case number, 0 none */
	} rows[] = {
		{ "a@example.org", 1 },
		{ "out@example.org", 1 },
		{ "queued@example.org", 2 },
		{ "nocase@example.org", 0 },
		{ "missing@example.org", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};
	g_autoptr(GError) error = NULL;
	store_outbox o = {
		.kind = (char *)"ack",
		.rcpt = (char *)"bob@example.org",
		.message_id = (char *)"queued@example.org",
	};
	gint64 c1, c2;
	size_t i;

	c1 = new_case(fx->st, "ann@example.org", NULL, NULL);
	c2 = new_case(fx->st, "bob@example.org", NULL, NULL);
	g_assert_cmpint(c1, ==, 1);
	new_message(fx->st, c1, "in", NULL, NULL, "a@example.org", "s", "t");
	new_message(fx->st, c1, "out", NULL, NULL, "out@example.org", "s", "t");
	new_message(fx->st, 0, "in", NULL, NULL, "nocase@example.org", "bounce", "t");
	o.case_id = c2;
	g_assert_cmpint(store_outbox_add(fx->st, &o, &error), >, 0);
	g_assert_no_error(error);
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_assert_cmpint(store_case_by_message_id(fx->st, rows[i].message_id, &error),
		    ==, rows[i].want);
		g_assert_no_error(error);
	}
}

static void
test_duplicates(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*direction, *source_key, *message_id;
		const char	*want;		/* in the error message */
	} rows[] = {
		{ "in", "acct/INBOX/1/1", NULL,
		  ": insert message: UNIQUE constraint failed: messages.source_key" },
		{ "in", "acct/INBOX/1/2", "m1@example.org",
		  ": insert message: UNIQUE constraint failed: messages.direction, "
		  "messages.message_id" },
		{ "sideways", "acct/INBOX/1/3", NULL, "direction must be" },
	};
	gint64 c1;
	guint before;
	size_t i;

	c1 = new_case(fx->st, "ann@example.org", NULL, NULL);
	new_message(fx->st, c1, "in", "acct/INBOX/1/1", "d1", "m1@example.org", "s", "t");
	/* the same Message-ID going out is another row */
	new_message(fx->st, c1, "out", NULL, NULL, "m1@example.org", "s", "t");
	before = count_cases(fx->st);
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) msgs = NULL;
		g_autofree char *want = g_strdup_printf("database %s", fx->path);
		store_message m = {
			.direction = (char *)rows[i].direction,
			.source_key = (char *)rows[i].source_key,
			.message_id = (char *)rows[i].message_id,
		};
		gint64 c2;

		g_assert_true(store_begin(fx->st, &error));
		g_assert_no_error(error);
		c2 = new_case(fx->st, "bob@example.org", NULL, NULL);
		m.case_id = c2;
		g_assert_cmpint(store_message_add(fx->st, &m, &error), ==, 0);
		g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
		g_assert_true(g_str_has_prefix(error->message, want));
		g_assert_nonnull(strstr(error->message, rows[i].want));
		store_rollback(fx->st);

		g_assert_cmpuint(count_cases(fx->st), ==, before);
		msgs = store_case_messages(fx->st, c1, NULL);
		g_assert_cmpuint(msgs->len, ==, 2);
	}
}

static void
test_transaction(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) out = NULL;
	g_autoptr(GPtrArray) found = NULL;
	store_outbox o = { .kind = (char *)"ack", .rcpt = (char *)"ann@example.org" };
	gint64 c;
	int i;

	for (i = 0; i < 2; i++) {
		gboolean commit = i == 1;

		g_assert_true(store_begin(fx->st, &error));
		/* no nesting */
		g_assert_false(store_begin(fx->st, &error));
		g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
		g_clear_error(&error);

		c = new_case(fx->st, "ann@example.org", NULL, NULL);
		new_message(fx->st, c, "in", "acct/INBOX/1/1", "d1", "m1@example.org",
		    "Zahlung", "Die Zahlung fehlt");
		o.case_id = c;
		g_assert_cmpint(store_outbox_add(fx->st, &o, &error), >, 0);
		g_assert_true(store_event_add(fx->st, c, "created", "casegated", NULL, &error));
		g_assert_true(store_field_set(fx->st, c, "platform", "Spotify", &error));
		g_assert_no_error(error);
		if (commit)
			g_assert_true(store_commit(fx->st, &error));
		else
			store_rollback(fx->st);
		g_assert_no_error(error);

		g_assert_cmpuint(count_cases(fx->st), ==, commit ? 1 : 0);
		g_assert_cmpint(store_message_seen(fx->st, "acct/INBOX/1/1", NULL, NULL, NULL,
		    &error), ==, commit ? 1 : 0);
		g_clear_pointer(&out, g_ptr_array_unref);
		out = store_outbox_list(fx->st, 0, &error);
		g_assert_cmpuint(out->len, ==, commit ? 1 : 0);
		g_clear_pointer(&found, g_ptr_array_unref);
		found = store_search(fx->st, "zahlung", &error);
		g_assert_cmpuint(found->len, ==, commit ? 1 : 0);
		g_assert_no_error(error);
	}
	/* rollback and commit outside a transaction are harmless */
	store_rollback(fx->st);
	g_assert_false(store_commit(fx->st, &error));
	g_assert_nonnull(error);
}

static store_outbox *
outbox_find(GPtrArray *rows, gint64 id)
{
	guint i;

	for (i = 0; i < rows->len; i++) {
		store_outbox *o = rows->pdata[i];

		if (o->id == id)
			return o;
	}
	return NULL;
}

static void
test_outbox(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) due = NULL;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) mine = NULL;
	store_outbox *o;
	gint64 c, id[3], none;
	static const gint64 when[3] = { 300, 100, 200 };
	static const gint64 want_due[] = { 1, 2 };	/* index into id[] */
	int i;

	c = new_case(fx->st, "ann@example.org", NULL, NULL);
	g_assert_cmpint(store_outbox_next_due(fx->st, &error), ==, 0);
	for (i = 0; i < 3; i++) {
		store_outbox row = {
			.case_id = c,
			.kind = (char *)"ack",
			.env_from = (char *)"",
			.rcpt = (char *)"ann@example.org",
			.message_id = (char *)(i == 0 ? "CASE-000001.a@example.org" : NULL),
			.spool_digest = (char *)"abc123",
			.next_attempt = when[i],
		};

		id[i] = store_outbox_add(fx->st, &row, &error);
		g_assert_no_error(error);
	}
	{	/* a "status" reply belongs to no case; "now" when no time given */
		store_outbox row = { .kind = (char *)"status", .rcpt = (char *)"bob@example.org" };

		none = store_outbox_add(fx->st, &row, &error);
		g_assert_cmpint(none, >, 0);
		g_assert_true(store_outbox_mark_sent(fx->st, none, &error));
	}
	{	/* kind and recipient are required */
		store_outbox row = { .kind = (char *)"ack" };

		g_assert_cmpint(store_outbox_add(fx->st, &row, &error), ==, 0);
		g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
		g_clear_error(&error);
	}

	due = store_outbox_due(fx->st, 250, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(due->len, ==, G_N_ELEMENTS(want_due));
	for (i = 0; i < (int)G_N_ELEMENTS(want_due); i++) {
		o = due->pdata[i];
		g_assert_cmpint(o->id, ==, id[want_due[i]]);
		g_assert_cmpstr(o->state, ==, OUTBOX_QUEUED);
		g_assert_cmpstr(o->env_from, ==, "");
		g_assert_cmpstr(o->spool_digest, ==, "abc123");
		g_assert_cmpint(o->case_id, ==, c);
	}
	g_clear_pointer(&due, g_ptr_array_unref);
	due = store_outbox_due(fx->st, 250, 1, &error);
	g_assert_cmpuint(due->len, ==, 1);
	g_assert_cmpint(((store_outbox *)due->pdata[0])->id, ==, id[1]);
	g_assert_cmpint(store_outbox_next_due(fx->st, &error), ==, 100);

	g_assert_true(store_outbox_mark_retry(fx->st, id[1], 400, "421 try later", &error));
	g_assert_cmpint(store_outbox_next_due(fx->st, &error), ==, 200);
	g_assert_true(store_outbox_mark_sent(fx->st, id[2], &error));
	g_assert_true(store_outbox_mark_failed(fx->st, id[0], "550 no such user", &error));
	g_assert_no_error(error);
	g_assert_cmpint(store_outbox_next_due(fx->st, &error), ==, 400);
	g_clear_pointer(&due, g_ptr_array_unref);
	due = store_outbox_due(fx->st, 1000, 10, &error);
	g_assert_cmpuint(due->len, ==, 1);

	g_assert_false(store_outbox_mark_sent(fx->st, 9999, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	g_assert_nonnull(strstr(error->message, "no outbox row 9999"));
	g_clear_error(&error);

	all = store_outbox_list(fx->st, 0, &error);
	g_assert_cmpuint(all->len, ==, 4);
	g_assert_cmpint(((store_outbox *)all->pdata[0])->id, ==, none);	/* newest first */
	mine = store_outbox_list(fx->st, c, &error);
	g_assert_cmpuint(mine->len, ==, 3);
	g_assert_null(outbox_find(mine, none));

	o = outbox_find(all, id[1]);
	g_assert_cmpstr(o->state, ==, OUTBOX_QUEUED);
	g_assert_cmpint(o->attempts, ==, 1);
	g_assert_cmpint(o->next_attempt, ==, 400);
	g_assert_cmpstr(o->last_error, ==, "421 try later");
	o = outbox_find(all, id[2]);
	g_assert_cmpstr(o->state, ==, OUTBOX_SENT);
	g_assert_cmpint(o->sent_at, >, 0);
	g_assert_null(o->last_error);
	o = outbox_find(all, id[0]);
	g_assert_cmpstr(o->state, ==, OUTBOX_FAILED);
	g_assert_cmpstr(o->last_error, ==, "550 no such user");
	g_assert_cmpstr(o->message_id, ==, "CASE-000001.a@example.org");
	g_assert_cmpint(o->sent_at, ==, 0);
	o = outbox_find(all, none);
	g_assert_cmpint(o->case_id, ==, 0);
	g_assert_cmpint(o->next_attempt, >, 1000);

	/* due at time 0 is due now, not "nothing queued" (which is 0) */
	g_assert_true(store_outbox_mark_retry(fx->st, id[1], 0, "again", &error));
	g_assert_no_error(error);
	g_assert_cmpint(store_outbox_next_due(fx->st, &error), ==, 1);
	g_assert_true(store_outbox_mark_sent(fx->st, id[1], &error));
	g_assert_cmpint(store_outbox_next_due(fx->st, &error), ==, 0);
	g_assert_no_error(error);

	/* the outbox thread's connection: NORMAL for its marks, FULL again */
	g_assert_true(store_set_synchronous(fx->st, FALSE, &error));
	g_assert_true(store_set_synchronous(fx->st, TRUE, &error));
	g_assert_no_error(error);
}

static void
test_mailbox(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*account, *folder;
		guint32		 uidvalidity, last_uid;
	} rows[] = {
		{ "members", "INBOX", 7, 100 },
		{ "members", "INBOX", 7, 101 },		/* update */
		{ "members", "Cases", 8, 1 },
		{ "royalties", "INBOX", G_MAXUINT32, G_MAXUINT32 },
		{ "members", "INBOX", 9, 0 },		/* UIDVALIDITY changed */
	};
	g_autoptr(GError) error = NULL;
	guint32 v = 1, u = 1;
	size_t i;

	g_assert_false(store_mailbox_get(fx->st, "members", "INBOX", &v, &u, &error));
	g_assert_no_error(error);
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_assert_true(store_mailbox_set(fx->st, rows[i].account, rows[i].folder,
		    rows[i].uidvalidity, rows[i].last_uid, &error));
		g_assert_true(store_mailbox_get(fx->st, rows[i].account, rows[i].folder, &v, &u,
		    &error));
		g_assert_no_error(error);
		g_assert_cmpuint(v, ==, rows[i].uidvalidity);
		g_assert_cmpuint(u, ==, rows[i].last_uid);
	}
	g_assert_true(store_mailbox_get(fx->st, "members", "Cases", &v, &u, &error));
	g_assert_cmpuint(v, ==, 8);
	g_assert_false(store_mailbox_get(fx->st, "members", "cases", &v, &u, &error));
	g_assert_false(store_mailbox_set(fx->st, "", "INBOX", 1, 1, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
}

static void
test_list_filters(fixture *fx, gconstpointer data)
{
	static const struct {
		store_filter	 f;
		const char	*want;	/* case numbers, newest first */
	} rows[] = {
		{ { 0 }, "5 4 3 2 1" },
		{ { .status = CASE_ACTIVE }, "5 4 2 1" },
		{ { .status = "resolved" }, "3" },
		{ { .type = "Royalties" }, "4 2 1" },
		{ { .type = "royalties", .team = "DISTRIBUTION" }, "4 1" },
		{ { .member = "Ann@Example.org" }, "3 1" },
		{ { .member = "ann@example.org", .status = CASE_ACTIVE }, "1" },
		{ { .since = 2000 }, "5 4 3 2" },
		{ { .since = 2000, .limit = 2 }, "5 4" },
		{ { .limit = 1 }, "5" },
		{ { .limit = -1 }, "5 4 3 2 1" },
		{ { .team = "nobody" }, "" },
		{ { .member = "x' OR '1'='1" }, "" },
		{ { .type = "Royalties' --" }, "" },
	};
	static const struct {
		const char *member, *type, *team;
	} cases[] = {
		{ "ann@example.org", "Royalties", "distribution" },
		{ "bob@example.org", "Royalties", "membership" },
		{ "ANN@example.org", "Support Request", "membership" },
		{ "cid@example.org", "Royalties", "distribution" },
		{ "dan@example.org", NULL, NULL },
	};
	g_autoptr(GError) error = NULL;
	sqlite3 *db;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++)
		new_case(fx->st, cases[i].member, cases[i].type, cases[i].team);
	g_assert_true(store_case_set_status(fx->st, 3, CASE_RESOLVED, &error));
	db = raw_open(fx->path);
	raw_exec(db, "UPDATE cases SET created = 1000 WHERE id = 1");
	sqlite3_close(db);

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GPtrArray) got = store_case_list(fx->st, &rows[i].f, &error);
		g_autoptr(GString) ids = g_string_new(NULL);
		guint j;

		g_assert_no_error(error);
		for (j = 0; j < got->len; j++)
			g_string_append_printf(ids, "%s%" G_GINT64_FORMAT, j ? " " : "",
			    ((store_case *)got->pdata[j])->id);
		g_assert_cmpstr(ids->str, ==, rows[i].want);
	}
}

/* Case numbers search() finds, "1 2", newest first. */
static char *
search_ids(store *st, const char *q)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) got = store_search(st, q, &error);
	GString *ids = g_string_new(NULL);
	guint j;

	g_assert_no_error(error);
	for (j = 0; j < got->len; j++)
		g_string_append_printf(ids, "%s%" G_GINT64_FORMAT, j ? " " : "",
		    ((store_case *)got->pdata[j])->id);
	return g_string_free(ids, FALSE);
}

static gint64
role_message(store *st, gint64 case_id, const char *direction, const char *role,
    const char *subject)
{
	g_autoptr(GError) error = NULL;
	store_message m = {
		.case_id = case_id, .direction = (char *)direction, .role = (char *)role,
		.subject = (char *)subject, .text = (char *)"body", .date = 1700000000,
	};
	gint64 id = store_message_add(st, &m, &error);

	g_assert_no_error(error);
	g_assert_cmpint(id, >, 0);
	return id;
}

/*
 * Messages are indexed once per transaction, at its COMMIT (schema 7):
 * what a savepoint rolled back is never indexed, what the gateway wrote
 * itself never is, and FTS5's own check agrees with its content view.
 */
static void
test_search_deferred(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL, *s5 = NULL;
	gint64 c1, c2;
	sqlite3 *db;

	c1 = new_case(fx->st, "ann@example.org", NULL, NULL);
	c2 = new_case(fx->st, "bob@example.org", NULL, NULL);
	g_assert_true(store_begin(fx->st, &error));
	g_assert_true(store_savepoint(fx->st, &error));
	role_message(fx->st, c1, "in", "member", "alpha");
	g_assert_true(store_release(fx->st, &error));
	g_assert_true(store_savepoint(fx->st, &error));
	role_message(fx->st, c2, "in", "member", "beta");
	g_assert_true(store_rollback_to(fx->st, &error));
	g_assert_true(store_savepoint(fx->st, &error));
	role_message(fx->st, c2, "out", "gateway", "gamma acknowledgement");
	role_message(fx->st, c2, "out", "staff", "delta answer");
	g_assert_true(store_release(fx->st, &error));
	/* indexed at the commit, not before */
	s1 = search_ids(fx->st, "alpha");
	g_assert_cmpstr(s1, ==, "");
	g_clear_pointer(&s1, g_free);
	g_assert_true(store_commit(fx->st, &error));
	g_assert_no_error(error);

	s1 = search_ids(fx->st, "alpha");
	s2 = search_ids(fx->st, "beta");
	s3 = search_ids(fx->st, "gamma");
	s4 = search_ids(fx->st, "delta");
	g_assert_cmpstr(s1, ==, "1");
	g_assert_cmpstr(s2, ==, "");
	g_assert_cmpstr(s3, ==, "");
	g_assert_cmpstr(s4, ==, "2");

	db = raw_open(fx->path);
	g_assert_cmpint(raw_int(db, "SELECT count(*) FROM fts_pending"), ==, 0);
	raw_exec(db, "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')");
	/* an admin's hand edits keep the index right */
	raw_exec(db, "UPDATE messages SET subject = 'epsilon' WHERE subject = 'alpha'");
	raw_exec(db, "DELETE FROM messages WHERE subject = 'gamma acknowledgement'");
	raw_exec(db, "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')");
	sqlite3_close(db);
	/* an update queued outside our connection is indexed when the store opens */
	store_close(fx->st);
	fx->st = store_open(fx->path, &error);
	g_assert_no_error(error);
	s5 = search_ids(fx->st, "epsilon");
	g_assert_cmpstr(s5, ==, "1");
	g_clear_pointer(&s1, g_free);
	s1 = search_ids(fx->st, "alpha");
	g_assert_cmpstr(s1, ==, "");
}

/* A schema-6 database (a trigger per row, acknowledgements indexed) migrates to 7. */
static void
test_search_migrate_6(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *s1 = NULL, *s2 = NULL;
	gint64 c;
	sqlite3 *db;

	c = new_case(fx->st, "ann@example.org", NULL, NULL);
	store_close(fx->st);
	fx->st = NULL;
	db = raw_open(fx->path);
	raw_exec(db, "DROP TRIGGER messages_fts_queue; DROP TRIGGER messages_fts_ad;"
	    " DROP TRIGGER messages_fts_au; DROP TABLE fts_pending; DROP TABLE messages_fts;"
	    " DROP VIEW messages_searchable;"
	    " CREATE VIRTUAL TABLE messages_fts USING fts5 (subject, text,"
	    "  content = 'messages', content_rowid = 'id',"
	    "  tokenize = 'unicode61 remove_diacritics 2');"
	    " CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN"
	    "  INSERT INTO messages_fts (rowid, subject, text)"
	    "  VALUES (new.id, new.subject, new.text); END;"
	    " CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN"
	    "  INSERT INTO messages_fts (messages_fts, rowid, subject, text)"
	    "  VALUES ('delete', old.id, old.subject, old.text); END;"
	    " CREATE TRIGGER messages_fts_au AFTER UPDATE OF subject, text ON messages BEGIN"
	    "  SELECT 1; END;"
	    " ALTER TABLE outbox DROP COLUMN recipe;"
	    " PRAGMA user_version = 6;");
	raw_exec(db, "INSERT INTO messages (case_id, direction, role, subject, text, created)"
	    " VALUES (1, 'in', 'member', 'zeta question', 'x', 1),"
	    " (1, 'out', 'gateway', 'eta receipt', 'y', 1)");
	g_assert_cmpint(c, ==, 1);
	sqlite3_close(db);

	fx->st = store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_cmpint(store_schema_version(fx->st), >=, 7);
	s1 = search_ids(fx->st, "zeta");
	s2 = search_ids(fx->st, "eta");
	g_assert_cmpstr(s1, ==, "1");
	g_assert_cmpstr(s2, ==, "");
	db = raw_open(fx->path);
	raw_exec(db, "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')");
	sqlite3_close(db);
}

static void
test_search(fixture *fx, gconstpointer data)
{
	static const struct {
		const char	*q;
		const char	*want;	/* case numbers, newest first */
	} rows[] = {
		{ "cafe", "1" },
		{ "CAFÉ", "1" },
		{ "MÜLLER", "1" },
		{ "muller", "1" },
		{ "arger", "2" },
		{ "Ärger", "2" },
		{ "rechnung", "2 1" },
		{ "rechnung cafe", "1" },	/* words are ANDed */
		{ "rechnung  \t ärger", "2" },
		{ "4711", "3" },
		{ "4711-\"", "3" },		/* was an FTS5 syntax error */
		{ "4711-", "3" },
		{ "\"", "" },
		{ "\"\"\"", "" },
		{ "\"Müller", "1" },
		{ "inv*", "3" },		/* prefix search survives */
		{ "*", "" },
		{ "", "" },
		{ "   ", "" },
		{ "NEAR(", "" },
		{ "rechnung OR ärger", "" },	/* OR is a word, not syntax */
		{ "subject:cafe", "" },	/* a literal: the phrase "subject cafe" */
		{ "text:", "" },
		{ "-cafe", "1" },
		{ "^cafe", "1" },
		{ "cafe AND", "" },
		{ "(", "" },
		{ "nonexistent", "" },
		{ "\xff\xfe", "" },		/* invalid UTF-8 */
	};
	gint64 c1, c2, c3;
	size_t i;

	c1 = new_case(fx->st, "ann@example.org", NULL, NULL);
	c2 = new_case(fx->st, "bob@example.org", NULL, NULL);
	c3 = new_case(fx->st, "cid@example.org", NULL, NULL);
	new_message(fx->st, c1, "in", NULL, NULL, NULL, "Rechnung für Café Müller", "Bitte prüfen.");
	new_message(fx->st, c2, "in", NULL, NULL, NULL, "Über Ärger", "Die Rechnung ist falsch.");
	new_message(fx->st, c2, "out", NULL, NULL, NULL, "Re: Über Ärger", "Wir prüfen das.");
	new_message(fx->st, c3, "in", NULL, NULL, NULL, "Invoice", "Payment #4711-A is overdue.");
	new_message(fx->st, c3, "in", NULL, NULL, NULL, "broken \xff\xfe bytes", "x\x80y");
	new_message(fx->st, 0, "in", NULL, NULL, NULL, "Cafe bounce", "no case");

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) got = store_search(fx->st, rows[i].q, &error);
		g_autoptr(GString) ids = g_string_new(NULL);
		guint j;

		g_assert_no_error(error);
		g_assert_nonnull(got);
		for (j = 0; j < got->len; j++)
			g_string_append_printf(ids, "%s%" G_GINT64_FORMAT, j ? " " : "",
			    ((store_case *)got->pdata[j])->id);
		if (strcmp(ids->str, rows[i].want) != 0)
			g_error("search \"%s\": got \"%s\", want \"%s\"", rows[i].q, ids->str,
			    rows[i].want);
	}
	{
		g_autoptr(GPtrArray) got = store_search(fx->st, NULL, NULL);

		g_assert_cmpuint(got->len, ==, 0);
	}
}

static void
test_round_trip(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) ev = NULL;
	g_autoptr(GPtrArray) fields = NULL;
	g_autoptr(GPtrArray) msgs = NULL;
	g_autoptr(GPtrArray) atts = NULL;
	g_autoptr(store_case) c = NULL;
	store_event *e;
	store_field *f;
	store_message *m;
	store_attachment *a;
	store_attachment a1 = { .digest = (char *)"aaa", .name = (char *)"Rechnung.pdf",
	    .content_type = (char *)"application/pdf", .size = 12345 };
	store_attachment a2 = { .digest = (char *)"bbb", .size = 0 };
	gint64 id, mid, mid2;

	id = new_case(fx->st, "ann@example.org", NULL, NULL);
	mid = new_message(fx->st, id, "in", "k/INBOX/1/5", "raw1", "m@example.org",
	    "Subject ü", "Text\nwith lines");
	mid2 = new_message(fx->st, id, "out", NULL, NULL, NULL, "Re: Subject ü", "Answer");

	/* events: NULL actor and detail allowed, kind required */
	g_assert_true(store_event_add(fx->st, id, "created", "casegated", "rule \"x\"", &error));
	g_assert_true(store_event_add(fx->st, id, "message", NULL, NULL, &error));
	g_assert_true(store_event_add(fx->st, 0, "rules-reloaded", "casegated", NULL, &error));
	g_assert_no_error(error);
	g_assert_false(store_event_add(fx->st, id, "", NULL, NULL, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&error);
	g_assert_false(store_event_add(fx->st, 999, "created", NULL, NULL, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);		/* foreign key */
	g_assert_nonnull(strstr(error->message, "FOREIGN KEY"));
	g_clear_error(&error);
	ev = store_case_events(fx->st, id, &error);
	g_assert_cmpuint(ev->len, ==, 2);
	e = ev->pdata[0];
	g_assert_cmpstr(e->kind, ==, "created");
	g_assert_cmpstr(e->actor, ==, "casegated");
	g_assert_cmpstr(e->detail, ==, "rule \"x\"");
	g_assert_cmpint(e->case_id, ==, id);
	g_assert_cmpint(e->at, >, 0);
	e = ev->pdata[1];
	g_assert_cmpstr(e->kind, ==, "message");
	g_assert_null(e->actor);

	/* fields: set, overwrite, remove; sorted by name */
	g_assert_true(store_field_set(fx->st, id, "work_titles", "Song A", &error));
	g_assert_true(store_field_set(fx->st, id, "platform", "Spotify", &error));
	g_assert_true(store_field_set(fx->st, id, "work_titles", "Song A, Song B", &error));
	g_assert_true(store_field_set(fx->st, id, "dates", "2024", &error));
	g_assert_true(store_field_set(fx->st, id, "dates", NULL, &error));
	g_assert_no_error(error);
	g_assert_false(store_field_set(fx->st, id, NULL, "x", &error));
	g_clear_error(&error);
	fields = store_case_fields(fx->st, id, &error);
	g_assert_cmpuint(fields->len, ==, 2);
	f = fields->pdata[0];
	g_assert_cmpstr(f->name, ==, "platform");
	g_assert_cmpstr(f->value, ==, "Spotify");
	f = fields->pdata[1];
	g_assert_cmpstr(f->name, ==, "work_titles");
	g_assert_cmpstr(f->value, ==, "Song A, Song B");

	/* attachments */
	a1.message_row = mid;
	a2.message_row = mid;
	g_assert_cmpint(store_attachment_add(fx->st, &a1, &error), >, 0);
	g_assert_cmpint(store_attachment_add(fx->st, &a2, &error), >, 0);
	g_assert_no_error(error);
	a2.message_row = 4242;
	g_assert_cmpint(store_attachment_add(fx->st, &a2, &error), ==, 0);
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&error);
	atts = store_message_attachments(fx->st, mid, &error);
	g_assert_cmpuint(atts->len, ==, 2);
	a = atts->pdata[0];
	g_assert_cmpstr(a->digest, ==, "aaa");
	g_assert_cmpstr(a->name, ==, "Rechnung.pdf");
	g_assert_cmpstr(a->content_type, ==, "application/pdf");
	g_assert_cmpint(a->size, ==, 12345);
	g_assert_cmpint(a->message_row, ==, mid);
	a = atts->pdata[1];
	g_assert_null(a->name);

	/* messages, oldest first, every column */
	msgs = store_case_messages(fx->st, id, &error);
	g_assert_cmpuint(msgs->len, ==, 2);
	m = msgs->pdata[0];
	g_assert_cmpint(m->id, ==, mid);
	g_assert_cmpint(m->case_id, ==, id);
	g_assert_cmpstr(m->direction, ==, "in");
	g_assert_cmpstr(m->role, ==, "member");
	g_assert_cmpstr(m->message_id, ==, "m@example.org");
	g_assert_cmpstr(m->source_key, ==, "k/INBOX/1/5");
	g_assert_cmpstr(m->raw_digest, ==, "raw1");
	g_assert_cmpstr(m->from_addr, ==, "ann@example.org");
	g_assert_cmpstr(m->to_addrs, ==, "members@example.org");
	g_assert_cmpstr(m->subject, ==, "Subject ü");
	g_assert_cmpstr(m->text, ==, "Text\nwith lines");
	g_assert_cmpint(m->date, ==, 1700000000);
	g_assert_cmpint(m->created, >, 0);
	m = msgs->pdata[1];
	g_assert_cmpint(m->id, ==, mid2);
	g_assert_null(m->source_key);

	/* status, needs_info, touch */
	g_assert_true(store_case_set_status(fx->st, id, CASE_RESOLVED, &error));
	g_assert_true(store_case_set_needs_info(fx->st, id, TRUE, &error));
	g_assert_true(store_case_touch(fx->st, id, &error));
	g_assert_no_error(error);
	c = store_case_get(fx->st, id, &error);
	g_assert_cmpstr(c->status, ==, CASE_RESOLVED);
	g_assert_true(c->needs_info);
	g_assert_cmpint(c->updated, >=, c->created);
	g_assert_false(store_case_set_status(fx->st, id, "Closed", &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&error);
	g_assert_false(store_case_set_status(fx->st, id, NULL, &error));
	g_clear_error(&error);
	g_assert_false(store_case_set_status(fx->st, 77, CASE_ACTIVE, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	g_assert_nonnull(strstr(error->message, "no case 77"));
	g_clear_error(&error);
	g_assert_false(store_case_touch(fx->st, 77, &error));
	g_clear_error(&error);
}

static void
test_busy(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	sqlite3 *other;
	gint64 t0, ms;

	other = raw_open(fx->path);
	raw_exec(other, "BEGIN IMMEDIATE; INSERT INTO events (at, kind) VALUES (1, 'x')");
	store_set_busy_timeout(fx->st, 20);

	t0 = g_get_monotonic_time();
	g_assert_false(store_begin(fx->st, &error));
	ms = (g_get_monotonic_time() - t0) / 1000;
	g_assert_error(error, CG_ERROR, CG_ERROR_TEMP);
	g_assert_nonnull(strstr(error->message, "database is locked"));
	g_assert_nonnull(strstr(error->message, "tries"));
	/* it tried more than once: each try waits the busy timeout */
	g_assert_cmpint(ms, >=, 60);
	g_clear_error(&error);

	/* a write outside a transaction is temporary too */
	g_assert_false(store_event_add(fx->st, 0, "x", NULL, NULL, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_TEMP);
	g_clear_error(&error);
	/* reading works under WAL while the other connection writes */
	g_assert_cmpuint(count_cases(fx->st), ==, 0);

	raw_exec(other, "COMMIT");
	sqlite3_close(other);
	g_assert_true(store_begin(fx->st, &error));
	g_assert_no_error(error);
	store_rollback(fx->st);
}

static void
test_free_null(void)
{
	store_close(NULL);
	store_rollback(NULL);
	store_case_free(NULL);
	store_message_free(NULL);
	store_attachment_free(NULL);
	store_event_free(NULL);
	store_field_free(NULL);
	store_outbox_free(NULL);
	g_assert_true(TRUE);
}

#define ADD(name, fn) \
	g_test_add(name, fixture, NULL, fx_setup, fn, fx_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/store/open-migrate", test_open_migrate);
	ADD("/store/newer-refused", test_newer_refused);
	g_test_add_func("/store/bad-files", test_bad_files);
	ADD("/store/readonly", test_readonly);
	ADD("/store/case-create", test_case_create);
	ADD("/store/case-create-bad", test_case_create_bad);
	ADD("/store/case-create-atomic", test_case_create_atomic);
	ADD("/store/case-get-public", test_case_get_public);
	ADD("/store/message-seen", test_message_seen);
	ADD("/store/case-by-message-id", test_case_by_message_id);
	ADD("/store/duplicates", test_duplicates);
	ADD("/store/transaction", test_transaction);
	ADD("/store/outbox", test_outbox);
	ADD("/store/mailbox", test_mailbox);
	ADD("/store/list-filters", test_list_filters);
	ADD("/store/search", test_search);
	ADD("/store/search-deferred", test_search_deferred);
	ADD("/store/search-migrate-6", test_search_migrate_6);
	ADD("/store/round-trip", test_round_trip);
	ADD("/store/busy", test_busy);
	g_test_add_func("/store/free-null", test_free_null);
	return g_test_run();
}
