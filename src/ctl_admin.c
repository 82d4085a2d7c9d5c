/*
 * ctl_admin.c - casectl for admins: the outbox (list, retry), stats and
 * status.
 *
 * Rationale:
 * - outbox list, stats and status only read; rows name their case by
 *   public ID through a small cache (case_label), one lookup per case.
 * - outbox retry takes only failed mail, and records on each case that
 *   it was queued again and by whom, all in one transaction.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "ctl.h"
#include "json.h"
#include "outbox.h"
#include "report.h"

#define STATUS_ERRORS	10		/* recent failures casectl status shows */

/* Public ID of case id, cached in ids (gint64 * -> char *); "-" for none. */
static const char *
case_label(ctl *c, GHashTable *ids, gint64 id)
{
	store_case *k;
	char *label;

	if (id == 0)
		return "-";
	if ((label = g_hash_table_lookup(ids, &id)) != NULL)
		return label;
	k = store_case_get(c->st, id, NULL);
	label = k != NULL ? g_strdup(k->public_id) : g_strdup_printf("#%" G_GINT64_FORMAT, id);
	store_case_free(k);
	g_hash_table_insert(ids, g_memdup2(&id, sizeof(id)), label);
	return label;
}

static GHashTable *
case_label_cache(void)
{
	return g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
}

static void
ctl_outbox_row_json(GString *out, const store_outbox *o, const char *label)
{
	gboolean first = TRUE;

	g_string_append_c(out, '{');
	json_member_int(out, &first, "id", o->id);
	json_member_str(out, &first, "case", o->case_id != 0 ? label : NULL);
	json_member_str(out, &first, "kind", o->kind);
	json_member_str(out, &first, "rcpt", o->rcpt);
	json_member_str(out, &first, "message_id", o->message_id);
	json_member_str(out, &first, "state", o->state);
	json_member_int(out, &first, "attempts", o->attempts);
	json_member_int(out, &first, "next_attempt", o->next_attempt);
	json_member_str(out, &first, "last_error", o->last_error);
	json_member_int(out, &first, "created", o->created);
	json_member_int(out, &first, "sent_at", o->sent_at);
	g_string_append_c(out, '}');
}

static int
ctl_outbox_list(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "state", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GHashTable) ids = case_label_cache();
	g_autoptr(GError) err = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	const char *state = NULL;
	gboolean json = FALSE;
	guint i, n = 0;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'j')
			json = TRUE;
		else if (ch == 's')
			state = optarg;
		else
			ctl_usage();
	}
	if (optind != argc)
		ctl_usage();
	if (state != NULL && strcmp(state, OUTBOX_QUEUED) != 0 &&
	    strcmp(state, OUTBOX_SENT) != 0 && strcmp(state, OUTBOX_FAILED) != 0) {
		fprintf(stderr, "casectl: --state must be queued, sent or failed\n");
		return CG_EX_USAGE;
	}
	if ((rc = ctl_open_store(c)) != 0)
		return rc;
	if ((rows = store_outbox_list(c->st, 0, &err)) == NULL)
		return ctl_store_failed(err);
	if (json)
		g_string_append_c(out, '[');
	else
		g_string_append_printf(out, "%-6s %-12s %-9s %-7s %-4s %-16s %-28s %s\n", "ID",
		    "CASE", "KIND", "STATE", "TRY", "NEXT", "RCPT", "LAST ERROR");
	for (i = 0; i < rows->len; i++) {
		const store_outbox *o = g_ptr_array_index(rows, i);
		const char *label;

		if (state != NULL && strcmp(o->state, state) != 0)
			continue;
		label = case_label(c, ids, o->case_id);
		if (json) {
			if (n++ > 0)
				g_string_append_c(out, ',');
			ctl_outbox_row_json(out, o, label);
		} else {
			g_autofree char *next = strcmp(o->state, OUTBOX_QUEUED) == 0 ?
			    ctl_fmt_time(o->next_attempt) : g_strdup("-");
			g_autofree char *rcpt = ctl_clip(o->rcpt, 28);
			g_autofree char *why = ctl_clip(o->last_error, 60);

			g_string_append_printf(out, "%-6" G_GINT64_FORMAT " %-12s %-9s %-7s %-4d "
			    "%-16s %-28s %s\n", o->id, label, o->kind, o->state, o->attempts, next,
			    rcpt, o->last_error != NULL ? why : "");
		}
	}
	if (json)
		g_string_append(out, "]\n");
	fwrite(out->str, 1, out->len, stdout);
	return 0;
}

/* Requeue one failed row and note it on its case; 0 or an exit status. */
static int
ctl_outbox_requeue_one(ctl *c, const store_outbox *o, const char *actor, GError **error)
{
	g_autofree char *detail = g_strdup_printf("outbox %" G_GINT64_FORMAT " (%s to <%s>) "
	    "after %d attempts: %s", o->id, o->kind, o->rcpt, o->attempts,
	    o->last_error != NULL ? o->last_error : "no error recorded");

	if (!store_outbox_requeue(c->st, o->id, error) ||
	    !store_event_add(c->st, o->case_id, "requeued", actor, detail, error))
		return CG_EX_SOFTWARE;
	return 0;
}

static int
ctl_outbox_retry(ctl *c, int argc, char **argv)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(store_outbox) one = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *actor = ctl_actor();
	gboolean all;
	gint64 id = 0;
	char *end = NULL;
	guint i, n = 0;
	int rc;

	if (argc != 2)
		ctl_usage();
	all = strcmp(argv[1], "--all-failed") == 0;
	if (!all) {
		id = g_ascii_strtoll(argv[1], &end, 10);
		if (end == argv[1] || *end != '\0' || id <= 0) {
			fprintf(stderr, "casectl: outbox retry wants a row ID (see casectl outbox "
			    "list) or --all-failed\n");
			return CG_EX_USAGE;
		}
	}
	if ((rc = ctl_open_store_rw(c)) != 0)
		return rc;
	if (!store_begin(c->st, &err))
		return ctl_store_failed(err);
	if (!all) {
		if ((one = store_outbox_get(c->st, id, &err)) == NULL) {
			store_rollback(c->st);
			if (err != NULL)
				return ctl_store_failed(err);
			fprintf(stderr, "casectl: no outbox row %" G_GINT64_FORMAT "\n", id);
			return CTL_EX_NOCASE;
		}
		if (strcmp(one->state, OUTBOX_FAILED) != 0) {
			store_rollback(c->st);
			fprintf(stderr, "casectl: outbox row %" G_GINT64_FORMAT " is %s, not failed; "
			    "only failed mail is retried by hand\n", id, one->state);
			return CG_EX_DATAERR;
		}
		if ((rc = ctl_outbox_requeue_one(c, one, actor, &err)) != 0)
			return ctl_finish(c, FALSE, g_steal_pointer(&err));
		n = 1;
	} else {
		if ((rows = store_outbox_list(c->st, 0, &err)) == NULL)
			return ctl_finish(c, FALSE, g_steal_pointer(&err));
		for (i = 0; i < rows->len; i++) {
			const store_outbox *o = g_ptr_array_index(rows, i);

			if (strcmp(o->state, OUTBOX_FAILED) != 0)
				continue;
			if ((rc = ctl_outbox_requeue_one(c, o, actor, &err)) != 0)
				return ctl_finish(c, FALSE, g_steal_pointer(&err));
			n++;
		}
	}
	if ((rc = ctl_finish(c, TRUE, NULL)) != 0)
		return rc;
	printf("%u failed mail%s queued again; casegated sends %s on its next round\n", n,
	    n == 1 ? "" : "s", n == 1 ? "it" : "them");
	return 0;
}

int
ctl_cmd_outbox(ctl *c, int argc, char **argv)
{
	if (argc < 2)
		ctl_usage();
	if (strcmp(argv[1], "list") == 0)
		return ctl_outbox_list(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "retry") == 0)
		return ctl_outbox_retry(c, argc - 1, argv + 1);
	ctl_usage();
}

/* Count of each key, largest first, then by name. */
typedef struct {
	const char	*key;
	guint		 n;
} tally;

static int
tally_cmp(gconstpointer a, gconstpointer b)
{
	const tally *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* From a table key (owned elsewhere) -> GUINT count to a sorted GArray of tally. */
static GArray *
tally_sorted(GHashTable *counts)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(tally));
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, counts);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		tally t = { k, GPOINTER_TO_UINT(v) };

		g_array_append_val(out, t);
	}
	g_array_sort(out, tally_cmp);
	return out;
}

static void
tally_add(GHashTable *counts, const char *key)
{
	char *k = g_strdup(key);

	g_hash_table_replace(counts, k, GUINT_TO_POINTER(
	    GPOINTER_TO_UINT(g_hash_table_lookup(counts, k)) + 1));
}

static void
tally_json(GString *out, const char *name, GArray *t)
{
	guint i;

	json_key(out, name);
	g_string_append_c(out, '{');
	for (i = 0; i < t->len; i++) {
		const tally *x = &g_array_index(t, tally, i);

		if (i > 0)
			g_string_append_c(out, ',');
		json_key(out, x->key);
		g_string_append_printf(out, "%u", x->n);
	}
	g_string_append_c(out, '}');
}

static void
tally_text(GString *out, const char *title, GArray *t)
{
	guint i;

	g_string_append_printf(out, "%s:\n", title);
	for (i = 0; i < t->len; i++) {
		const tally *x = &g_array_index(t, tally, i);

		g_string_append_printf(out, "  %6u  %s\n", x->n, x->key);
	}
	if (t->len == 0)
		g_string_append(out, "  (none)\n");
}

int
ctl_cmd_stats(ctl *c, int argc, char **argv)
{
	g_autoptr(GPtrArray) cases = NULL;
	g_autoptr(GArray) delays = NULL, by_status = NULL, by_type = NULL, by_team = NULL;
	g_autoptr(GHashTable) st = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) ty = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) te = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GError) err = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	gint64 queued, failed, active = 0;
	gboolean json, have_median, first = TRUE;
	double median = 0;
	guint i;
	int rc;

	if (!ctl_json_opts(argc, argv, &json) || optind != argc)
		ctl_usage();
	if ((rc = ctl_open_store(c)) != 0)
		return rc;
	if ((cases = store_case_list(c->st, NULL, &err)) == NULL ||
	    (delays = store_first_staff_reply_delays(c->st, &err)) == NULL ||
	    (queued = store_outbox_count(c->st, OUTBOX_QUEUED, &err)) < 0 ||
	    (failed = store_outbox_count(c->st, OUTBOX_FAILED, &err)) < 0)
		return ctl_store_failed(err);
	for (i = 0; i < cases->len; i++) {
		const store_case *k = g_ptr_array_index(cases, i);
		g_autofree char *type = k->type != NULL ? ctl_type_line(k->type, k->sub_type, NULL) :
		    g_strdup("(unclassified)");

		tally_add(ty, type);
		tally_add(te, k->team != NULL ? k->team : "(none)");
		if (strcmp(k->status, CASE_ACTIVE) == 0)
			active++;
	}
	/* Both statuses are always listed, even at zero. */
	g_hash_table_replace(st, g_strdup(CASE_ACTIVE), GUINT_TO_POINTER((guint)active));
	g_hash_table_replace(st, g_strdup(CASE_RESOLVED),
	    GUINT_TO_POINTER(cases->len - (guint)active));
	by_status = tally_sorted(st);
	by_type = tally_sorted(ty);
	by_team = tally_sorted(te);
	have_median = report_median((const gint64 *)(void *)delays->data, delays->len, &median);
	if (json) {
		g_string_append(out, "{\"cases\":{");
		json_member_int(out, &first, "total", cases->len);
		g_string_append_c(out, ',');
		tally_json(out, "by_status", by_status);
		g_string_append_c(out, ',');
		tally_json(out, "by_type", by_type);
		g_string_append_c(out, ',');
		tally_json(out, "by_team", by_team);
		g_string_append(out, "},\"first_staff_reply\":{");
		first = TRUE;
		json_member_int(out, &first, "cases", delays->len);
		g_string_append(out, ",\"median_seconds\":");
		if (have_median)
			g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64)(median + 0.5));
		else
			g_string_append(out, "null");
		g_string_append(out, "},\"backlog\":{");
		first = TRUE;
		json_member_int(out, &first, "active_cases", active);
		json_member_int(out, &first, "outbox_queued", queued);
		json_member_int(out, &first, "outbox_failed", failed);
		g_string_append(out, "}}\n");
	} else {
		g_autofree char *med = have_median ? report_duration((gint64)(median + 0.5)) :
		    g_strdup("no staff reply yet");

		g_string_append_printf(out, "Cases: %u\n", cases->len);
		tally_text(out, "By status", by_status);
		tally_text(out, "By type", by_type);
		tally_text(out, "By team", by_team);
		g_string_append_printf(out, "First staff reply: median %s (over %u case%s)\n", med,
		    delays->len, delays->len == 1 ? "" : "s");
		g_string_append_printf(out, "Backlog: %" G_GINT64_FORMAT " active case%s, "
		    "%" G_GINT64_FORMAT " mail%s queued, %" G_GINT64_FORMAT " failed\n", active,
		    active == 1 ? "" : "s", queued, queued == 1 ? "" : "s", failed);
	}
	fwrite(out->str, 1, out->len, stdout);
	return 0;
}

/* Is the daemon's process there?  Only meaningful on the same host. */
static gboolean
pid_alive(gint64 pid)
{
	if (pid <= 0 || pid > G_MAXINT)
		return FALSE;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Recent failures: delivery and other events, and outbox rows with an error. */
static void
status_errors(ctl *c, GPtrArray *events, GPtrArray *rows, GHashTable *ids, gboolean json,
    GString *out)
{
	guint i, n = 0;

	g_string_append(out, json ? ",\"errors\":[" : "Recent errors:\n");
	for (i = 0; i < events->len; i++) {
		const store_event *e = g_ptr_array_index(events, i);
		const char *label = case_label(c, ids, e->case_id);
		gboolean first = TRUE;

		if (json) {
			g_string_append(out, n++ > 0 ? ",{" : "{");
			json_member_int(out, &first, "at", e->at);
			json_member_str(out, &first, "source", "event");
			json_member_str(out, &first, "case", e->case_id != 0 ? label : NULL);
			json_member_str(out, &first, "kind", e->kind);
			json_member_str(out, &first, "detail", e->detail);
			g_string_append_c(out, '}');
		} else {
			g_autofree char *when = ctl_fmt_time(e->at);

			n++;
			g_string_append_printf(out, "  %s  %-12s %-16s %s\n", when, label, e->kind,
			    e->detail != NULL ? e->detail : "");
		}
	}
	for (i = 0; i < rows->len && i < STATUS_ERRORS * 4; i++) {
		const store_outbox *o = g_ptr_array_index(rows, i);
		const char *label;
		gboolean first = TRUE;

		/* Failed rows are in the events already; these are retrying. */
		if (o->last_error == NULL || strcmp(o->state, OUTBOX_QUEUED) != 0)
			continue;
		label = case_label(c, ids, o->case_id);
		if (json) {
			g_string_append(out, n++ > 0 ? ",{" : "{");
			json_member_int(out, &first, "at", o->created);
			json_member_str(out, &first, "source", "outbox");
			json_member_str(out, &first, "case", o->case_id != 0 ? label : NULL);
			json_member_str(out, &first, "kind", "retrying");
			json_member_str(out, &first, "detail", o->last_error);
			json_member_int(out, &first, "outbox_id", o->id);
			g_string_append_c(out, '}');
		} else {
			n++;
			g_string_append_printf(out, "  outbox %-6" G_GINT64_FORMAT " %-12s retrying "
			    "(attempt %d): %s\n", o->id, label, o->attempts, o->last_error);
		}
	}
	if (json)
		g_string_append_c(out, ']');
	else if (n == 0)
		g_string_append(out, "  (none)\n");
}

static void
status_daemon(GPtrArray *ds, gboolean json, GString *out)
{
	guint i;

	g_string_append(out, json ? "\"daemon\":[" : "Daemon:\n");
	for (i = 0; i < ds->len; i++) {
		const store_daemon_status *d = g_ptr_array_index(ds, i);
		gboolean first = TRUE;

		if (json) {
			g_string_append(out, i > 0 ? ",{" : "{");
			json_member_str(out, &first, "account", d->account);
			json_member_int(out, &first, "pid", d->pid);
			json_member_bool(out, &first, "pid_alive", pid_alive(d->pid));
			json_member_int(out, &first, "started", d->started);
			json_member_int(out, &first, "last_poll", d->last_poll);
			json_member_int(out, &first, "waiting", d->waiting);
			json_member_str(out, &first, "last_error", d->last_error);
			json_member_int(out, &first, "updated", d->updated);
			g_string_append_c(out, '}');
		} else {
			g_autofree char *poll = ctl_fmt_time(d->last_poll);
			g_autofree char *ago = d->last_poll > 0 ?
			    report_duration(cg_now() - d->last_poll) : g_strdup("never");
			g_autofree char *waiting = d->waiting >= 0 ?
			    g_strdup_printf("%" G_GINT64_FORMAT, d->waiting) : g_strdup("unknown");

			g_string_append_printf(out, "  %s: pid %" G_GINT64_FORMAT " (%s), last poll "
			    "%s (%s ago), %s message%s waiting\n", d->account, d->pid,
			    pid_alive(d->pid) ? "running" : "not running", poll, ago, waiting,
			    d->waiting == 1 ? "" : "s");
			if (d->last_error != NULL)
				g_string_append_printf(out, "    last error: %s\n", d->last_error);
		}
	}
	if (json)
		g_string_append_c(out, ']');
	else if (ds->len == 0)
		g_string_append(out, "  no report yet (casegated has not polled since it was "
		    "upgraded, or never ran)\n");
}

int
ctl_cmd_status(ctl *c, int argc, char **argv)
{
	g_autoptr(GPtrArray) ds = NULL, events = NULL, rows = NULL;
	g_autoptr(GHashTable) ids = case_label_cache();
	g_autoptr(GError) err = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	gint64 queued, failed, due;
	gboolean json, first = TRUE;
	int rc;

	if (!ctl_json_opts(argc, argv, &json) || optind != argc)
		ctl_usage();
	if ((rc = ctl_open_store(c)) != 0)
		return rc;
	if ((ds = store_daemon_status_get(c->st, &err)) == NULL ||
	    (events = store_events_failed(c->st, STATUS_ERRORS, &err)) == NULL ||
	    (rows = store_outbox_list(c->st, 0, &err)) == NULL ||
	    (queued = store_outbox_count(c->st, OUTBOX_QUEUED, &err)) < 0 ||
	    (failed = store_outbox_count(c->st, OUTBOX_FAILED, &err)) < 0 ||
	    (due = store_outbox_next_due(c->st, &err)) < 0)
		return ctl_store_failed(err);
	if (json)
		g_string_append_c(out, '{');
	status_daemon(ds, json, out);
	if (json) {
		g_string_append(out, ",\"outbox\":{");
		json_member_int(out, &first, "queued", queued);
		json_member_int(out, &first, "failed", failed);
		json_member_int(out, &first, "next_due", due);
		g_string_append_c(out, '}');
	} else {
		g_autofree char *next = ctl_fmt_time(due);

		g_string_append_printf(out, "Outbox: %" G_GINT64_FORMAT " queued (next due %s), "
		    "%" G_GINT64_FORMAT " failed\n", queued, queued > 0 ? next : "-", failed);
	}
	status_errors(c, events, rows, ids, json, out);
	if (json)
		g_string_append(out, "}\n");
	fwrite(out->str, 1, out->len, stdout);
	return 0;
}
