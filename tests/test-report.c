/*
 * test-report.c - casectl's pure helpers (report.c: CSV quoting, the
 * median, durations, times, the "Type / Sub" notation), the store
 * queries casectl adds (type/team, outbox requeue, first staff reply
 * delays, failure events, daemon status) and the rules queries behind
 * set-type and assign.
 */
#include <string.h>

#include <glib/gstdio.h>

#include "cg.h"
#include "report.h"
#include "rules.h"
#include "store.h"

/* --- CSV ------------------------------------------------------------ */

static void
test_csv_field(void)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ NULL, "" },
		{ "", "" },
		{ "plain", "plain" },
		{ "with space", "with space" },
		{ "a,b", "\"a,b\"" },
		{ "say \"hi\"", "\"say \"\"hi\"\"\"" },
		{ "\"", "\"\"\"\"" },
		{ "line\nbreak", "\"line\nbreak\"" },
		{ "cr\rlf\r\n", "\"cr\rlf\r\n\"" },
		{ "=SUM(A1:A2)", "=SUM(A1:A2)" },	/* data, not escaped: see report.c */
		{ "Réclamation; été", "Réclamation; été" },
		{ "bad \xff byte", "bad \xef\xbf\xbd byte" },
		{ "Invoice, \"urgent\"\r\nnext", "\"Invoice, \"\"urgent\"\"\r\nnext\"" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GString) out = g_string_new(NULL);

		report_csv_field(out, rows[i].in);
		g_assert_cmpstr(out->str, ==, rows[i].out);
	}
}

static void
test_csv_row(void)
{
	const char *fields[] = { "CASE-000001", NULL, "a,b", "x\"y" };
	g_autoptr(GString) out = g_string_new(NULL);

	report_csv_row(out, fields, G_N_ELEMENTS(fields));
	g_assert_cmpstr(out->str, ==, "CASE-000001,,\"a,b\",\"x\"\"y\"\r\n");
	g_string_truncate(out, 0);
	report_csv_row(out, fields, 0);
	g_assert_cmpstr(out->str, ==, "\r\n");
}

/* --- median ------------------------------------------------------------ */

static void
test_median(void)
{
	static const struct {
		gint64 v[6];
		gsize n;
		double want;
	} rows[] = {
		{ { 5 }, 1, 5 },
		{ { 1, 3 }, 2, 2 },
		{ { 1, 2 }, 2, 1.5 },
		{ { 9, 1, 5 }, 3, 5 },
		{ { 10, 40, 20, 30 }, 4, 25 },
		{ { 0, 0, 0, 100 }, 4, 0 },
		{ { 7, 7, 7, 7, 7, 7 }, 6, 7 },
		{ { G_MAXINT64, G_MAXINT64 }, 2, (double)G_MAXINT64 },
	};
	size_t i;
	double m;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		gint64 before[6];

		memcpy(before, rows[i].v, sizeof(before));
		g_assert_true(report_median(rows[i].v, rows[i].n, &m));
		g_assert_cmpfloat_with_epsilon(m, rows[i].want, 1e-9 * (1 + rows[i].want));
		/* the input is left as it was */
		g_assert_cmpmem(before, sizeof(before), rows[i].v, sizeof(before));
	}
	m = -1;
	g_assert_false(report_median(NULL, 0, &m));
	g_assert_false(report_median(rows[0].v, 0, &m));
	g_assert_cmpfloat(m, ==, -1);
}

/* --- durations, times, types ----------------------------------------------- */

static void
test_duration(void)
{
	static const struct {
		gint64 s;
		const char *out;
	} rows[] = {
		{ -1, "-" }, { 0, "0s" }, { 59, "59s" }, { 60, "1m" }, { 3599, "59m" },
		{ 3600, "1h 00m" }, { 3725, "1h 02m" }, { 86399, "23h 59m" },
		{ 86400, "1d 00h" }, { 90000, "1d 01h" }, { 10 * 86400 + 5 * 3600, "10d 05h" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *s = report_duration(rows[i].s);

		g_assert_cmpstr(s, ==, rows[i].out);
	}
}

static void
test_iso_time(void)
{
	g_autofree char *zero = report_iso_time(0), *neg = report_iso_time(-5);
	g_autofree char *t = report_iso_time(1795946400);

	g_assert_cmpstr(zero, ==, "");
	g_assert_cmpstr(neg, ==, "");
	g_assert_cmpstr(t, ==, "2026-11-29T10:00:00Z");
}

static void
test_parse_type(void)
{
	static const struct {
		const char *in;
		gboolean ok;
		const char *type, *sub, *upd;
	} rows[] = {
		{ "Royalties", TRUE, "Royalties", NULL, NULL },
		{ "  Royalties  ", TRUE, "Royalties", NULL, NULL },
		{ "Royalties / Missing Royalties", TRUE, "Royalties", "Missing Royalties", NULL },
		{ "Account Update/Member Account/Address", TRUE, "Account Update",
		    "Member Account", "Address" },
		{ "", FALSE, NULL, NULL, NULL },
		{ "   ", FALSE, NULL, NULL, NULL },
		{ "/", FALSE, NULL, NULL, NULL },
		{ "Royalties /", FALSE, NULL, NULL, NULL },
		{ "Royalties // x", FALSE, NULL, NULL, NULL },
		{ "a / b / c / d", FALSE, NULL, NULL, NULL },
		{ NULL, FALSE, NULL, NULL, NULL },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *type = NULL, *sub = NULL, *upd = NULL;

		g_assert_cmpint(report_parse_type(rows[i].in, &type, &sub, &upd), ==, rows[i].ok);
		g_assert_cmpstr(type, ==, rows[i].type);
		g_assert_cmpstr(sub, ==, rows[i].sub);
		g_assert_cmpstr(upd, ==, rows[i].upd);
	}
}

/* --- rules queries ------------------------------------------------------------ */

static const char rules_text[] =
	"teams = ( { name = \"distribution\"; }, { name = \"membership\"; } );\n"
	"case_types = (\n"
	"  { name = \"Royalties\"; sub_types = [ \"Missing Royalties\" ]; },\n"
	"  { name = \"Account Update\"; sub_types = [ \"Member Account\" ];\n"
	"    update_types = [ \"Address\", \"Banking\" ]; },\n"
	"  { name = \"Support Request\"; }\n"
	");\n"
	"default = { type = \"Support Request\"; team = \"membership\"; };\n";

static void
test_rules_queries(void)
{
	static const struct {
		const char *type, *sub, *upd;
		const char *err;	/* NULL: valid */
	} rows[] = {
		{ "Royalties", NULL, NULL, NULL },
		{ "Royalties", "", "", NULL },
		{ "Royalties", "Missing Royalties", NULL, NULL },
		{ "Account Update", "Member Account", "Banking", NULL },
		{ "Account Update", NULL, "Address", NULL },
		{ "royalties", NULL, NULL,
		    "unknown case type \"royalties\" (known: \"Royalties\", \"Account Update\", "
		    "\"Support Request\")" },
		{ NULL, NULL, NULL, "unknown case type \"\"" },
		{ "Royalties", "Banking", NULL,
		    "unknown sub type \"Banking\" of case type \"Royalties\" "
		    "(known: \"Missing Royalties\")" },
		{ "Royalties", NULL, "Address",
		    "unknown update type \"Address\" of case type \"Royalties\" (known: none)" },
		{ "Support Request", "Anything", NULL, "(known: none)" },
	};
	g_autofree char *dir = g_dir_make_tmp("test-report-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "t.rules", NULL);
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(rules) r = NULL;
	g_autoptr(GError) err = NULL;
	size_t i;

	g_assert_true(g_file_set_contents(path, rules_text, -1, NULL));
	r = rules_load(path, errors);
	g_assert_nonnull(r);
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		gboolean ok = rules_taxonomy_valid(r, rows[i].type, rows[i].sub, rows[i].upd, &err);

		if (rows[i].err == NULL) {
			g_assert_no_error(err);
			g_assert_true(ok);
			continue;
		}
		g_assert_false(ok);
		g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
		g_assert_nonnull(strstr(err->message, rows[i].err));
		g_clear_error(&err);
	}
	g_assert_true(rules_team_valid(r, "membership", NULL));
	g_assert_false(rules_team_valid(r, "Membership", &err));
	g_assert_cmpstr(err->message, ==,
	    "unknown team \"Membership\" (known: \"distribution\", \"membership\")");
	g_clear_error(&err);
	g_assert_false(rules_team_valid(r, NULL, NULL));
	g_assert_false(rules_team_valid(r, "", NULL));
	g_unlink(path);
	g_rmdir(dir);
}

/* --- store queries ------------------------------------------------------------ */

typedef struct {
	char	*dir, *path;
	store	*st;
} fixture;

static void
fx_setup(fixture *fx, gconstpointer data)
{
	GError *error = NULL;

	fx->dir = g_dir_make_tmp("test-report-XXXXXX", &error);
	g_assert_no_error(error);
	fx->path = g_build_filename(fx->dir, "t.db", NULL);
	fx->st = store_open(fx->path, &error);
	g_assert_no_error(error);
}

static void
fx_teardown(fixture *fx, gconstpointer data)
{
	const char *const suffix[] = { "", "-wal", "-shm" };
	size_t i;

	store_close(fx->st);
	for (i = 0; i < G_N_ELEMENTS(suffix); i++) {
		g_autofree char *p = g_strconcat(fx->path, suffix[i], NULL);

		g_unlink(p);
	}
	g_rmdir(fx->dir);
	g_free(fx->path);
	g_free(fx->dir);
}

static gint64
new_case(store *st, const char *member)
{
	store_case c = { .member = (char *)member, .subject = "s" };
	GError *error = NULL;
	gint64 id = store_case_create(st, &c, "CASE-", 6, &error);

	g_assert_no_error(error);
	g_assert_cmpint(id, >, 0);
	return id;
}

static void
test_store_type_team(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(store_case) k = NULL;
	gint64 id = new_case(fx->st, "a@example.org");

	g_assert_true(store_case_set_type(fx->st, id, "Account Update", "Member Account",
	    "Banking", &err));
	g_assert_true(store_case_set_team(fx->st, id, "membership", &err));
	g_assert_no_error(err);
	k = store_case_get(fx->st, id, &err);
	g_assert_cmpstr(k->type, ==, "Account Update");
	g_assert_cmpstr(k->sub_type, ==, "Member Account");
	g_assert_cmpstr(k->update_type, ==, "Banking");
	g_assert_cmpstr(k->team, ==, "membership");
	g_clear_pointer(&k, store_case_free);
	/* empty parts clear */
	g_assert_true(store_case_set_type(fx->st, id, "Royalties", "", NULL, &err));
	g_assert_true(store_case_set_team(fx->st, id, "", &err));
	k = store_case_get(fx->st, id, &err);
	g_assert_cmpstr(k->type, ==, "Royalties");
	g_assert_null(k->sub_type);
	g_assert_null(k->update_type);
	g_assert_null(k->team);
	/* errors */
	g_assert_false(store_case_set_type(fx->st, id, "", NULL, NULL, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);
	g_assert_false(store_case_set_type(fx->st, 999, "Royalties", NULL, NULL, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);
	g_assert_false(store_case_set_team(fx->st, 999, "x", &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
}

static void
test_store_outbox_requeue(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(store_outbox) o = NULL;
	store_outbox row = { .kind = "ack", .rcpt = "a@example.org" };
	gint64 id, other;

	row.case_id = new_case(fx->st, "a@example.org");
	id = store_outbox_add(fx->st, &row, &err);
	other = store_outbox_add(fx->st, &row, &err);
	g_assert_no_error(err);
	g_assert_cmpint(store_outbox_count(fx->st, OUTBOX_QUEUED, &err), ==, 2);
	/* only a failed row can be requeued */
	g_assert_false(store_outbox_requeue(fx->st, id, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);
	g_assert_true(store_outbox_mark_retry(fx->st, id, cg_now() + 3600, "busy", &err));
	g_assert_true(store_outbox_mark_failed(fx->st, id, "550 no", &err));
	g_assert_cmpint(store_outbox_count(fx->st, OUTBOX_FAILED, &err), ==, 1);
	g_assert_true(store_outbox_requeue(fx->st, id, &err));
	g_assert_no_error(err);
	o = store_outbox_get(fx->st, id, &err);
	g_assert_nonnull(o);
	g_assert_cmpstr(o->state, ==, OUTBOX_QUEUED);
	g_assert_cmpint(o->attempts, ==, 0);
	g_assert_cmpint(o->next_attempt, <=, cg_now());
	g_assert_cmpstr(o->last_error, ==, "550 no");	/* kept for the record */
	g_assert_cmpint(store_outbox_count(fx->st, OUTBOX_FAILED, &err), ==, 0);
	g_assert_cmpint(store_outbox_count(fx->st, OUTBOX_QUEUED, &err), ==, 2);
	/* a missing row */
	g_assert_null(store_outbox_get(fx->st, other + 100, &err));
	g_assert_no_error(err);
	g_assert_false(store_outbox_requeue(fx->st, other + 100, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
}

static void
add_out(store *st, gint64 case_id, const char *role, const char *mid)
{
	store_message m = { .case_id = case_id, .direction = "out", .role = (char *)role,
	    .message_id = (char *)mid, .to_addrs = "a@example.org" };
	GError *error = NULL;

	g_assert_cmpint(store_message_add(st, &m, &error), >, 0);
	g_assert_no_error(error);
}

static void
test_store_delays_and_failures(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GArray) none = NULL, d = NULL;
	g_autoptr(GPtrArray) ev = NULL;
	gint64 a = new_case(fx->st, "a@example.org"), b = new_case(fx->st, "b@example.org");

	none = store_first_staff_reply_delays(fx->st, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(none->len, ==, 0);
	add_out(fx->st, a, "gateway", "ack-a");	/* not staff */
	add_out(fx->st, a, "staff", "r1-a");
	add_out(fx->st, a, "staff", "r2-a");	/* only the first counts */
	add_out(fx->st, b, "gateway", "ack-b");
	d = store_first_staff_reply_delays(fx->st, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(d->len, ==, 1);
	g_assert_cmpint(g_array_index(d, gint64, 0), >=, 0);
	g_assert_cmpint(g_array_index(d, gint64, 0), <=, 5);

	g_assert_true(store_event_add(fx->st, a, "created", "x", NULL, &err));
	g_assert_true(store_event_add(fx->st, a, "delivery-failed", "casegated", "one", &err));
	g_assert_true(store_event_add(fx->st, 0, "error", "casegated", "two", &err));
	g_assert_true(store_event_add(fx->st, b, "failedish", "x", NULL, &err));
	g_assert_true(store_event_add(fx->st, b, "login-failed", "casegated", "three", &err));
	ev = store_events_failed(fx->st, 2, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(ev->len, ==, 2);
	g_assert_cmpstr(((store_event *)g_ptr_array_index(ev, 0))->detail, ==, "three");
	g_assert_cmpstr(((store_event *)g_ptr_array_index(ev, 1))->detail, ==, "two");
	g_clear_pointer(&ev, g_ptr_array_unref);
	ev = store_events_failed(fx->st, 0, &err);
	g_assert_cmpuint(ev->len, ==, 3);
}

static void
test_store_daemon_status(fixture *fx, gconstpointer data)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	store_daemon_status ds = { .account = "members", .pid = 42, .started = 100,
	    .last_poll = 200, .waiting = 3, .last_error = "imap: refused" };
	const store_daemon_status *r;

	rows = store_daemon_status_get(fx->st, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(rows->len, ==, 0);
	g_clear_pointer(&rows, g_ptr_array_unref);
	g_assert_true(store_daemon_status_set(fx->st, &ds, &err));
	ds.account = "royalties";
	ds.waiting = -1;
	ds.last_error = NULL;
	g_assert_true(store_daemon_status_set(fx->st, &ds, &err));
	/* the same account again replaces its row; "" is no error */
	ds.account = "members";
	ds.last_poll = 300;
	ds.waiting = 0;
	ds.last_error = "";
	g_assert_true(store_daemon_status_set(fx->st, &ds, &err));
	g_assert_no_error(err);
	rows = store_daemon_status_get(fx->st, &err);
	g_assert_cmpuint(rows->len, ==, 2);
	r = g_ptr_array_index(rows, 0);
	g_assert_cmpstr(r->account, ==, "members");
	g_assert_cmpint(r->pid, ==, 42);
	g_assert_cmpint(r->started, ==, 100);
	g_assert_cmpint(r->last_poll, ==, 300);
	g_assert_cmpint(r->waiting, ==, 0);
	g_assert_null(r->last_error);
	g_assert_cmpint(r->updated, >, 0);
	r = g_ptr_array_index(rows, 1);
	g_assert_cmpstr(r->account, ==, "royalties");
	g_assert_cmpint(r->waiting, ==, -1);
	/* no account */
	ds.account = NULL;
	g_assert_false(store_daemon_status_set(fx->st, &ds, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);
	g_assert_false(store_daemon_status_set(fx->st, NULL, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	store_daemon_status_free(NULL);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/report/csv-field", test_csv_field);
	g_test_add_func("/report/csv-row", test_csv_row);
	g_test_add_func("/report/median", test_median);
	g_test_add_func("/report/duration", test_duration);
	g_test_add_func("/report/iso-time", test_iso_time);
	g_test_add_func("/report/parse-type", test_parse_type);
	g_test_add_func("/report/rules-queries", test_rules_queries);
	g_test_add("/report/store/type-team", fixture, NULL, fx_setup, test_store_type_team,
	    fx_teardown);
	g_test_add("/report/store/outbox-requeue", fixture, NULL, fx_setup,
	    test_store_outbox_requeue, fx_teardown);
	g_test_add("/report/store/delays-failures", fixture, NULL, fx_setup,
	    test_store_delays_and_failures, fx_teardown);
	g_test_add("/report/store/daemon-status", fixture, NULL, fx_setup,
	    test_store_daemon_status, fx_teardown);
	return g_test_run();
}
