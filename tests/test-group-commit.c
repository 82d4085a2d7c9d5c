/*
 * test-group-commit.c - the store side of group commit (issue 8): one
 * savepoint per message inside a transaction of several.  What the
 * exactly-once promise needs: a message rolled back to its savepoint
 * takes nothing else with it, the others survive the COMMIT, a
 * savepoint outside a transaction is refused, and a transaction that
 * is gone is visible to the caller (store_in_transaction), so it never
 * acks (moves) messages whose cases were not committed.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "cg.h"
#include "log.h"
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

	fx->dir = g_dir_make_tmp("test-group-commit-XXXXXX", &error);
	g_assert_no_error(error);
	fx->path = g_build_filename(fx->dir, "casegate.db", NULL);
	fx->st = store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_nonnull(fx->st);
}

static void
fx_teardown(fixture *fx, gconstpointer data)
{
	g_autoptr(GDir) d = NULL;
	const char *name;

	store_close(fx->st);
	d = g_dir_open(fx->dir, 0, NULL);
	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(fx->dir, name, NULL);

		g_unlink(p);
	}
	g_rmdir(fx->dir);
	g_free(fx->path);
	g_free(fx->dir);
}

/* One "message": a case, inside its own savepoint; keep or undo it. */
static gint64
message(store *st, const char *member, gboolean keep)
{
	g_autoptr(GError) error = NULL;
	store_case c = { .member = (char *)member, .subject = (char *)"subject" };
	gint64 id;

	g_assert_true(store_savepoint(st, &error));
	g_assert_no_error(error);
	id = store_case_create(st, &c, "CASE-", 6, &error);
	g_assert_no_error(error);
	g_assert_cmpint(id, >, 0);
	if (keep)
		g_assert_true(store_release(st, &error));
	else
		g_assert_true(store_rollback_to(st, &error));
	g_assert_no_error(error);
	g_assert_true(store_in_transaction(st));
	return id;
}

static guint
cases(store *st)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) all = store_case_list(st, NULL, &error);

	g_assert_no_error(error);
	return all->len;
}

static gboolean
has_member(store *st, const char *member)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) all = store_case_list(st, NULL, &error);
	guint i;

	for (i = 0; i < all->len; i++)
		if (strcmp(((store_case *)g_ptr_array_index(all, i))->member, member) == 0)
			return TRUE;
	return FALSE;
}

/* Rows: which of five messages in one group fail (are rolled back). */
static const struct {
	const char	*name;
	gboolean	 keep[5];
	guint		 committed;
} groups[] = {
	{ "all kept", { TRUE, TRUE, TRUE, TRUE, TRUE }, 5 },
	{ "first fails", { FALSE, TRUE, TRUE, TRUE, TRUE }, 4 },
	{ "middle fails", { TRUE, TRUE, FALSE, TRUE, TRUE }, 4 },
	{ "last fails", { TRUE, TRUE, TRUE, TRUE, FALSE }, 4 },
	{ "all fail", { FALSE, FALSE, FALSE, FALSE, FALSE }, 0 },
};

static void
test_groups(fixture *fx, gconstpointer data)
{
	guint row, i;

	for (row = 0; row < G_N_ELEMENTS(groups); row++) {
		g_autoptr(GError) error = NULL;
		guint before = cases(fx->st);

		g_test_message("group: %s", groups[row].name);
		g_assert_true(store_begin(fx->st, &error));
		for (i = 0; i < 5; i++) {
			g_autofree char *member = g_strdup_printf("m%u.%u@example.test", row, i);

			message(fx->st, member, groups[row].keep[i]);
		}
		g_assert_true(store_commit(fx->st, &error));
		g_assert_no_error(error);
		g_assert_false(store_in_transaction(fx->st));
		g_assert_cmpuint(cases(fx->st) - before, ==, groups[row].committed);
		for (i = 0; i < 5; i++) {
			g_autofree char *member = g_strdup_printf("m%u.%u@example.test", row, i);

			g_assert_cmpint(has_member(fx->st, member), ==, groups[row].keep[i]);
		}
	}
}

static void
test_savepoint_needs_transaction(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(store_in_transaction(fx->st));
	g_assert_false(store_savepoint(fx->st, &error));
	g_assert_error(error, CG_ERROR, CG_ERROR_PERM);
	g_assert_false(store_in_transaction(fx->st));
}

/* The whole group lost (as SQLite does on disk full): nothing to ack. */
static void
test_lost_transaction(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(store_begin(fx->st, &error));
	message(fx->st, "a@example.test", TRUE);
	g_assert_true(store_savepoint(fx->st, &error));
	store_rollback(fx->st);		/* stands in for SQLite's own rollback */
	g_assert_false(store_in_transaction(fx->st));
	g_assert_false(store_rollback_to(fx->st, &error));
	g_assert_nonnull(error);
	g_assert_cmpuint(cases(fx->st), ==, 0);
}

/* A case number rolled back with its message is never seen committed twice. */
static void
test_ids_after_rollback(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	gint64 a, b;

	g_assert_true(store_begin(fx->st, &error));
	a = message(fx->st, "a@example.test", TRUE);
	message(fx->st, "b@example.test", FALSE);
	b = message(fx->st, "c@example.test", TRUE);
	g_assert_true(store_commit(fx->st, &error));
	g_assert_cmpint(b, >, a);
	g_assert_cmpuint(cases(fx->st), ==, 2);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	log_init("test-group-commit", LOG_TO_STDERR, 0);
	g_test_add("/group-commit/groups", fixture, NULL, fx_setup, test_groups, fx_teardown);
	g_test_add("/group-commit/savepoint-needs-transaction", fixture, NULL, fx_setup,
	    test_savepoint_needs_transaction, fx_teardown);
	g_test_add("/group-commit/lost-transaction", fixture, NULL, fx_setup,
	    test_lost_transaction, fx_teardown);
	g_test_add("/group-commit/ids-after-rollback", fixture, NULL, fx_setup,
	    test_ids_after_rollback, fx_teardown);
	return g_test_run();
}
