/*
 * casectl - the staff and admin tool: read cases from the database,
 * check and dry-run the rules.  Readable tables for people, stable JSON
 * (--json) for scripts.
 *
 * Staff work a case from here too (resolve, reopen, note, reply,
 * set-type, assign): each change is one transaction that also records
 * an event naming who did it, and mail to the member goes through the
 * same outbox as the daemon's, so casegated delivers it with retries.
 * Reports (export, outbox, stats, status) only read.
 *
 * Exit status: 0 success, 1 no such case (or outbox row), 64 usage, 65
 * bad input (unknown type or team, empty reply), 66 database missing or
 * unreadable, 70 database error, 75 database busy (try again), 78
 * configuration or rules errors.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cg.h"
#include "config.h"
#include "json.h"
#include "lang.h"
#include "log.h"
#include "members.h"
#include "outbox.h"
#include "quarantine.h"
#include "report.h"
#include "rules.h"
#include "spool.h"
#include "store.h"

#define EX_NOCASE 1

typedef struct {
	const char *conf_path;
	config *cfg;
	store *st;
} ctl;

static void print_cases(GPtrArray *cases, gboolean json);

static void G_GNUC_NORETURN
usage(void)
{
	fprintf(stderr,
	    "usage: casectl [-f config] list [--json] [--status S] [--type T] [--team T]\n"
	    "                               [--member ADDR] [--since YYYY-MM-DD] [--limit N]\n"
	    "       casectl [-f config] show [--json] CASE-ID\n"
	    "       casectl [-f config] rules check|dump [FILE]\n"
	    "       casectl [-f config] rules test [--json] MESSAGE.eml ...\n"
	    "       casectl [-f config] search [--json] TEXT ...\n"
	    "       casectl [-f config] resolve [--no-notice] CASE-ID\n"
	    "       casectl [-f config] reopen CASE-ID\n"
	    "       casectl [-f config] note CASE-ID TEXT ...\n"
	    "       casectl [-f config] reply CASE-ID [--from-name NAME] [--file F | TEXT ...]\n"
	    "       casectl [-f config] set-type CASE-ID \"Type / Sub type [/ Update type]\"\n"
	    "       casectl [-f config] assign CASE-ID TEAM\n"
	    "       casectl [-f config] export --format json|csv [--status S] [--type T]\n"
	    "                               [--team T] [--member ADDR] [--since YYYY-MM-DD]\n"
	    "       casectl [-f config] outbox list [--json] [--state queued|sent|failed]\n"
	    "       casectl [-f config] outbox retry ID|--all-failed\n"
	    "       casectl [-f config] stats [--json]\n"
	    "       casectl [-f config] status [--json]\n"
	    "       casectl [-f config] quarantine list [--json] [--all]\n"
	    "       casectl [-f config] quarantine show|release|delete ID\n"
	    "       casectl [-f config] members import [--replace] FILE.csv\n"
	    "       casectl [-f config] members list [--json]\n"
	    "       casectl [-f config] members show [--json] NUMBER|ADDRESS\n");
	exit(CG_EX_USAGE);
}

static int
load_config(ctl *c)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	guint i;

	if (c->cfg != NULL)
		return 0;
	c->cfg = config_load_flags(c->conf_path, CONFIG_SKIP_SECRETS, errors);
	if (c->cfg == NULL) {
		for (i = 0; i < errors->len; i++)
			fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
		return CG_EX_CONFIG;
	}
	return 0;
}

static int
open_store(ctl *c)
{
	g_autoptr(GError) err = NULL;
	int rc;

	if ((rc = load_config(c)) != 0)
		return rc;
	c->st = store_open_readonly(c->cfg->database, &err);
	if (c->st == NULL) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_NOINPUT;
	}
	return 0;
}

static char *
fmt_time(gint64 t)
{
	g_autoptr(GDateTime) dt = NULL;

	if (t <= 0)
		return g_strdup("-");
	dt = g_date_time_new_from_unix_local(t);
	return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M") : g_strdup("-");
}

static gint64
parse_date(const char *s)
{
	g_autofree char *iso = g_strdup_printf("%sT00:00:00", s);
	g_autoptr(GTimeZone) tz = g_time_zone_new_local();
	g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(iso, tz);

	return dt ? g_date_time_to_unix(dt) : -1;
}

static void
case_json(GString *out, const store_case *c)
{
	gboolean first = TRUE;

	g_string_append_c(out, '{');
	json_member_str(out, &first, "id", c->public_id);
	json_member_str(out, &first, "status", c->status);
	json_member_str(out, &first, "subject", c->subject);
	json_member_str(out, &first, "member", c->member);
	json_member_str(out, &first, "member_name", c->member_name);
	json_member_str(out, &first, "type", c->type);
	json_member_str(out, &first, "sub_type", c->sub_type);
	json_member_str(out, &first, "update_type", c->update_type);
	json_member_str(out, &first, "team", c->team);
	json_member_str(out, &first, "priority", c->priority);
	json_member_bool(out, &first, "needs_info", c->needs_info);
	json_member_int(out, &first, "created", c->created);
	json_member_int(out, &first, "updated", c->updated);
	json_member_str(out, &first, "member_number", c->member_number);
	json_member_str(out, &first, "language", c->lang);
	g_string_append(out, ",\"tags\":[");
	{
		g_auto(GStrv) tags = g_strsplit(c->tags != NULL ? c->tags : "", " ", 0);
		guint i, n = 0;

		for (i = 0; tags[i] != NULL; i++)
			if (*tags[i] != '\0') {
				if (n++ > 0)
					g_string_append_c(out, ',');
				json_string(out, tags[i]);
			}
	}
	g_string_append(out, "]}");
}

/* At most width display characters of s, with "..." when cut. */
static char *
clip(const char *s, glong width)
{
	if (s == NULL)
		return g_strdup("-");
	if (g_utf8_strlen(s, -1) <= width)
		return g_strdup(s);
	return g_strdup_printf("%.*s...", (int)(g_utf8_offset_to_pointer(s, width - 3) - s), s);
}

static int
cmd_list(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "status", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "team", required_argument, NULL, 'T' },
		{ "member", required_argument, NULL, 'm' },
		{ "since", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	store_filter f = { 0 };
	g_autoptr(GPtrArray) cases = NULL;
	g_autoptr(GError) err = NULL;
	gboolean json = FALSE;
	int ch, rc;

	/* 0, not 1: glibc then starts afresh and permutes, so options may
	 * come after other arguments (main parsed in order, with "+"). */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = TRUE;
			break;
		case 's':
			if (g_ascii_strcasecmp(optarg, "active") == 0)
				f.status = CASE_ACTIVE;
			else if (g_ascii_strcasecmp(optarg, "resolved") == 0)
				f.status = CASE_RESOLVED;
			else {
				fprintf(stderr, "casectl: --status must be Active or Resolved\n");
				return CG_EX_USAGE;
			}
			break;
		case 't':
			f.type = optarg;
			break;
		case 'T':
			f.team = optarg;
			break;
		case 'm':
			f.member = optarg;
			break;
		case 'S':
			if ((f.since = parse_date(optarg)) < 0) {
				fprintf(stderr, "casectl: --since wants YYYY-MM-DD, not \"%s\"\n", optarg);
				return CG_EX_USAGE;
			}
			break;
		case 'l':
			f.limit = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if ((rc = open_store(c)) != 0)
		return rc;
	cases = store_case_list(c->st, &f, &err);
	if (cases == NULL) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_SOFTWARE;
	}
	print_cases(cases, json);
	return 0;
}

static void
show_text(const char *text)
{
	g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", 0);
	int i;

	for (i = 0; lines[i] != NULL; i++)
		printf("    %s\n", lines[i]);
}

static void
show_human(ctl *c, const store_case *k, GPtrArray *fields, GPtrArray *msgs,
    GPtrArray *events, GPtrArray *outbox)
{
	g_autofree char *created = fmt_time(k->created), *updated = fmt_time(k->updated);
	guint i, j;

	printf("Case:        %s\n", k->public_id);
	printf("Subject:     %s\n", k->subject);
	printf("Member:      %s%s%s%s\n", k->member_name ? k->member_name : "",
	    k->member_name ? " <" : "", k->member, k->member_name ? ">" : "");
	printf("Member no.:  %s\n", k->member_number != NULL ? k->member_number :
	    "- (not in the member directory)");
	if (k->tags != NULL)
		printf("Tags:        %s\n", k->tags);
	printf("Language:    %s\n", k->lang != NULL ? k->lang : "-");
	printf("Status:      %s%s\n", k->status, k->needs_info ? " (needs info)" : "");
	printf("Type:        %s", k->type ? k->type : "-");
	if (k->sub_type)
		printf(" / %s", k->sub_type);
	if (k->update_type)
		printf(" / %s", k->update_type);
	printf("\nTeam:        %s\nPriority:    %s\n", k->team ? k->team : "-",
	    k->priority ? k->priority : "-");
	printf("Created:     %s\nUpdated:     %s\n", created, updated);
	for (i = 0; i < fields->len; i++) {
		const store_field *f = g_ptr_array_index(fields, i);

		printf("Field:       %s: %s\n", f->name,
		    f->value && *f->value ? f->value : "(missing)");
	}
	for (i = 0; i < msgs->len; i++) {
		const store_message *m = g_ptr_array_index(msgs, i);
		g_autofree char *when = fmt_time(m->created);
		g_autoptr(GPtrArray) atts = store_message_attachments(c->st, m->id, NULL);

		printf("\n[%u] %s %s  %s (%s)\n    Subject: %s\n", i + 1, when,
		    strcmp(m->direction, "in") == 0 ? "from" : "to",
		    strcmp(m->direction, "in") == 0 ? m->from_addr : m->to_addrs, m->role,
		    m->subject ? m->subject : "");
		for (j = 0; atts != NULL && j < atts->len; j++) {
			const store_attachment *a = g_ptr_array_index(atts, j);

			printf("    Attachment: %s (%s, %" G_GINT64_FORMAT " bytes)\n", a->name,
			    a->content_type, a->size);
		}
		show_text(m->text);
	}
	printf("\nEvents:\n");
	for (i = 0; i < events->len; i++) {
		const store_event *e = g_ptr_array_index(events, i);
		g_autofree char *when = fmt_time(e->at);

		printf("  %s  %-14s %s: %s\n", when, e->kind, e->actor ? e->actor : "-",
		    e->detail ? e->detail : "");
	}
	printf("\nOutbox:\n");
	for (i = 0; i < outbox->len; i++) {
		const store_outbox *o = g_ptr_array_index(outbox, i);

		printf("  %-6s to %s: %s (attempts %d)%s%s\n", o->kind, o->rcpt, o->state,
		    o->attempts, o->last_error ? ": " : "", o->last_error ? o->last_error : "");
	}
}

static void
show_json(ctl *c, const store_case *k, GPtrArray *fields, GPtrArray *msgs,
    GPtrArray *events, GPtrArray *outbox)
{
	GString *out = g_string_new(NULL);
	gboolean first;
	guint i, j;

	case_json(out, k);
	g_string_truncate(out, out->len - 1);
	g_string_append(out, ",\"fields\":{");
	for (i = 0; i < fields->len; i++) {
		const store_field *f = g_ptr_array_index(fields, i);

		if (i > 0)
			g_string_append_c(out, ',');
		json_key(out, f->name);
		json_string(out, f->value);
	}
	g_string_append(out, "},\"messages\":[");
	for (i = 0; i < msgs->len; i++) {
		const store_message *m = g_ptr_array_index(msgs, i);
		g_autoptr(GPtrArray) atts = store_message_attachments(c->st, m->id, NULL);

		first = TRUE;
		g_string_append(out, i > 0 ? ",{" : "{");
		json_member_str(out, &first, "direction", m->direction);
		json_member_str(out, &first, "role", m->role);
		json_member_str(out, &first, "message_id", m->message_id);
		json_member_str(out, &first, "from", m->from_addr);
		json_member_str(out, &first, "to", m->to_addrs);
		json_member_str(out, &first, "subject", m->subject);
		json_member_int(out, &first, "date", m->date);
		json_member_int(out, &first, "created", m->created);
		json_member_str(out, &first, "text", m->text);
		g_string_append(out, ",\"attachments\":[");
		for (j = 0; atts != NULL && j < atts->len; j++) {
			const store_attachment *a = g_ptr_array_index(atts, j);
			gboolean f2 = TRUE;

			g_string_append(out, j > 0 ? ",{" : "{");
			json_member_str(out, &f2, "name", a->name);
			json_member_str(out, &f2, "content_type", a->content_type);
			json_member_int(out, &f2, "size", a->size);
			json_member_str(out, &f2, "digest", a->digest);
			g_string_append_c(out, '}');
		}
		g_string_append(out, "]}");
	}
	g_string_append(out, "],\"events\":[");
	for (i = 0; i < events->len; i++) {
		const store_event *e = g_ptr_array_index(events, i);

		first = TRUE;
		g_string_append(out, i > 0 ? ",{" : "{");
		json_member_int(out, &first, "at", e->at);
		json_member_str(out, &first, "kind", e->kind);
		json_member_str(out, &first, "actor", e->actor);
		json_member_str(out, &first, "detail", e->detail);
		g_string_append_c(out, '}');
	}
	g_string_append(out, "],\"outbox\":[");
	for (i = 0; i < outbox->len; i++) {
		const store_outbox *o = g_ptr_array_index(outbox, i);

		first = TRUE;
		g_string_append(out, i > 0 ? ",{" : "{");
		json_member_str(out, &first, "kind", o->kind);
		json_member_str(out, &first, "rcpt", o->rcpt);
		json_member_str(out, &first, "message_id", o->message_id);
		json_member_str(out, &first, "state", o->state);
		json_member_int(out, &first, "attempts", o->attempts);
		json_member_str(out, &first, "last_error", o->last_error);
		g_string_append_c(out, '}');
	}
	g_string_append(out, "]}\n");
	fputs(out->str, stdout);
	g_string_free(out, TRUE);
}

static int
cmd_show(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	g_autoptr(GError) err = NULL;
	g_autoptr(store_case) k = NULL;
	g_autoptr(GPtrArray) fields = NULL, msgs = NULL, events = NULL, outbox = NULL;
	gboolean json = FALSE;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'j')
			usage();
		json = TRUE;
	}
	if (optind != argc - 1)
		usage();
	if ((rc = open_store(c)) != 0)
		return rc;
	k = store_case_get_public(c->st, argv[optind], &err);
	if (k == NULL) {
		if (err != NULL) {
			fprintf(stderr, "casectl: %s\n", err->message);
			return CG_EX_SOFTWARE;
		}
		g_autofree char *example = config_case_id(c->cfg, 123);

		fprintf(stderr, "casectl: no case \"%s\" (case IDs look like %s)\n",
		    argv[optind], example);
		return EX_NOCASE;
	}
	fields = store_case_fields(c->st, k->id, &err);
	msgs = fields ? store_case_messages(c->st, k->id, &err) : NULL;
	events = msgs ? store_case_events(c->st, k->id, &err) : NULL;
	outbox = events ? store_outbox_list(c->st, k->id, &err) : NULL;
	if (outbox == NULL) {
		fprintf(stderr, "casectl: %s\n", err ? err->message : "read failed");
		return CG_EX_SOFTWARE;
	}
	if (json)
		show_json(c, k, fields, msgs, events, outbox);
	else
		show_human(c, k, fields, msgs, events, outbox);
	return 0;
}

static int
cmd_rules(ctl *c, int argc, char **argv)
{
	const char *path = NULL;
	gboolean json = FALSE;
	int rc, first = 2;

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "check") == 0 || strcmp(argv[1], "dump") == 0) {
		if (argc > 3)
			usage();
		if (argc == 3)
			return argv[1][0] == 'c' ? rules_cmd_check(argv[2]) :
			    rules_cmd_dump(argv[2]);
	} else if (strcmp(argv[1], "test") == 0) {
		if (argc > 2 && strcmp(argv[2], "--json") == 0) {
			json = TRUE;
			first = 3;
		}
		if (argc <= first)
			usage();
	} else
		usage();
	if ((rc = load_config(c)) != 0)
		return rc;
	path = c->cfg->rules;
	if (path == NULL) {
		fprintf(stderr, "casectl: %s sets no rules file\n", c->conf_path);
		return CG_EX_CONFIG;
	}
	if (strcmp(argv[1], "check") == 0)
		return rules_cmd_check(path);
	if (strcmp(argv[1], "dump") == 0)
		return rules_cmd_dump(path);
	return rules_cmd_test(path, argc - first, argv + first, json);
}

/* ------------------------------------------------------------------ */
/* Working a case: search, resolve, reopen, note, reply, set-type, assign */

#define REPLY_MAX	(1024 * 1024)	/* bytes of text a reply may have */
#define STATUS_ERRORS	10		/* recent failures casectl status shows */

/*
 * Who did it, for the audit trail: the login name, and the sudo user
 * behind it when there is one (casectl runs as the daemon's user).
 */
static char *
ctl_actor(void)
{
	const char *sudo = getenv("SUDO_USER");

	if (sudo != NULL && *sudo != '\0' && strlen(sudo) < 64 && cg_protocol_safe(sudo, 64))
		return g_strdup_printf("%s (sudo) via casectl", sudo);
	return g_strdup_printf("%s via casectl", g_get_user_name());
}

/* A case ID for an error message: control characters escaped, cut short. */
static char *
ctl_shown_id(const char *id)
{
	g_autofree char *esc = g_strescape(id, NULL);

	if (strlen(esc) > 40)
		return g_strdup_printf("%.40s...", esc);
	return g_steal_pointer(&esc);
}

/* Exit status for a failed store call: busy is worth a retry. */
static int
ctl_store_failed(const GError *err)
{
	fprintf(stderr, "casectl: %s\n", err != NULL ? err->message : "database error");
	if (err != NULL && err->code == CG_ERROR_TEMP) {
		fprintf(stderr, "casectl: nothing was changed; try again\n");
		return CG_EX_TEMPFAIL;
	}
	return CG_EX_SOFTWARE;
}

/*
 * Open the database read-write, never creating it: a missing file means
 * a wrong config or a daemon that never ran, and an empty new database
 * would hide that.
 */
static int
open_store_rw(ctl *c)
{
	g_autoptr(GError) err = NULL;
	int rc;

	if ((rc = load_config(c)) != 0)
		return rc;
	if (!g_file_test(c->cfg->database, G_FILE_TEST_IS_REGULAR)) {
		fprintf(stderr, "casectl: database %s does not exist (is database set right in "
		    "%s? casegated creates it on its first start)\n", c->cfg->database,
		    c->conf_path);
		return CG_EX_NOINPUT;
	}
	c->st = store_open(c->cfg->database, &err);
	if (c->st == NULL) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_NOINPUT;
	}
	return 0;
}

/*
 * Find a case by public ID ("CASE-000123", any case) or by number
 * ("123").  Returns 0 and *k_r, EX_NOCASE with a message, or another
 * exit status on a database error.
 */
static int
ctl_find_case(ctl *c, const char *id, store_case **k_r)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *shown = NULL, *example = NULL;
	store_case *k = NULL;
	char *end;
	gint64 n;

	*k_r = NULL;
	if (*id != '\0' && strspn(id, "0123456789") == strlen(id) && strlen(id) <= 18) {
		n = g_ascii_strtoll(id, &end, 10);
		if (n > 0)
			k = store_case_get(c->st, n, &err);
	} else {
		k = store_case_get_public(c->st, id, &err);
	}
	if (err != NULL)
		return ctl_store_failed(err);
	if (k == NULL) {
		shown = ctl_shown_id(id);
		example = config_case_id(c->cfg, 123);
		fprintf(stderr, "casectl: no case \"%s\" (case IDs look like %s, or give the "
		    "number: 123)\n", shown, example);
		return EX_NOCASE;
	}
	*k_r = k;
	return 0;
}

/* Open read-write, start a transaction and load the case. */
static int
ctl_begin_case(ctl *c, const char *id, store_case **k_r)
{
	g_autoptr(GError) err = NULL;
	int rc;

	if ((rc = open_store_rw(c)) != 0)
		return rc;
	if (!store_begin(c->st, &err))
		return ctl_store_failed(err);
	if ((rc = ctl_find_case(c, id, k_r)) != 0)
		store_rollback(c->st);
	return rc;
}

/* Commit, or roll back and report; returns the exit status. */
static int
ctl_finish(ctl *c, gboolean ok, GError *err)
{
	g_autoptr(GError) cerr = NULL;

	if (!ok) {
		store_rollback(c->st);
		if (err != NULL && err->code == CG_ERROR_CONFIG) {
			fprintf(stderr, "casectl: %s\n", err->message);
			return CG_EX_CONFIG;
		}
		return ctl_store_failed(err);
	}
	if (!store_commit(c->st, &cerr))
		return ctl_store_failed(cerr);
	return 0;
}

/* Cases as a table or as a JSON array (list, search). */
static void
print_cases(GPtrArray *cases, gboolean json)
{
	guint i;

	if (json) {
		GString *out = g_string_new("[");

		for (i = 0; i < cases->len; i++) {
			if (i > 0)
				g_string_append_c(out, ',');
			case_json(out, g_ptr_array_index(cases, i));
		}
		g_string_append(out, "]\n");
		fputs(out->str, stdout);
		g_string_free(out, TRUE);
		return;
	}
	printf("%-12s %-8s %-16s %-28s %-14s %-26s %s\n", "CASE", "STATUS", "UPDATED", "TYPE",
	    "TEAM", "MEMBER", "SUBJECT");
	for (i = 0; i < cases->len; i++) {
		const store_case *k = g_ptr_array_index(cases, i);
		g_autofree char *when = fmt_time(k->updated);
		g_autofree char *type = g_strdup_printf("%s%s%s", k->type ? k->type : "-",
		    k->sub_type ? " / " : "", k->sub_type ? k->sub_type : "");
		g_autofree char *t = clip(type, 28), *m = clip(k->member, 26);
		g_autofree char *s = clip(k->subject, 50);

		printf("%-12s %-8s %-16s %-28s %-14s %-26s %s%s%s%s%s\n", k->public_id, k->status,
		    when, t, k->team ? k->team : "-", m, s, k->needs_info ? " (needs info)" : "",
		    k->tags != NULL ? " [" : "", k->tags != NULL ? k->tags : "",
		    k->tags != NULL ? "]" : "");
	}
}

/* Leading options of a subcommand: only --json. */
static gboolean
json_only_opts(int argc, char **argv, gboolean *json_r)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*json_r = FALSE;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'j')
			return FALSE;
		*json_r = TRUE;
	}
	return TRUE;
}

static int
cmd_search(ctl *c, int argc, char **argv)
{
	g_autoptr(GPtrArray) cases = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *text = NULL;
	gboolean json;
	int rc;

	if (!json_only_opts(argc, argv, &json) || optind >= argc)
		usage();
	text = g_strjoinv(" ", argv + optind);
	if (!g_utf8_validate(text, -1, NULL)) {
		fprintf(stderr, "casectl: search text is not valid UTF-8\n");
		return CG_EX_DATAERR;
	}
	if ((rc = open_store(c)) != 0)
		return rc;
	if ((cases = store_search(c->st, text, &err)) == NULL)
		return ctl_store_failed(err);
	print_cases(cases, json);
	return 0;
}

/*
 * In-Reply-To and References for mail to the member about case k:
 * answer the member's last message that has a Message-ID (else the last
 * message of the case that has one); References are the case's ids up
 * to it, oldest first.  *irt_r is NULL when nothing can be threaded.
 */
static gboolean
case_thread(ctl *c, const store_case *k, char **irt_r, GPtrArray **refs_r, GError **error)
{
	g_autoptr(GPtrArray) msgs = store_case_messages(c->st, k->id, error);
	g_autoptr(GPtrArray) refs = g_ptr_array_new_with_free_func(g_free);
	gint last = -1, any = -1, i;

	*irt_r = NULL;
	*refs_r = NULL;
	if (msgs == NULL)
		return FALSE;
	for (i = 0; i < (gint)msgs->len; i++) {
		const store_message *m = g_ptr_array_index(msgs, i);

		if (m->message_id == NULL || *m->message_id == '\0')
			continue;
		any = i;
		if (strcmp(m->direction, "in") == 0 && m->from_addr != NULL &&
		    g_ascii_strcasecmp(m->from_addr, k->member) == 0)
			last = i;
	}
	if (last < 0)
		last = any;
	if (last < 0)
		return TRUE;
	for (i = 0; i < last; i++) {
		const store_message *m = g_ptr_array_index(msgs, i);

		if (m->message_id != NULL && *m->message_id != '\0')
			g_ptr_array_add(refs, g_strdup(m->message_id));
	}
	*irt_r = g_strdup(((store_message *)g_ptr_array_index(msgs, last))->message_id);
	*refs_r = g_steal_pointer(&refs);
	return TRUE;
}

/* Queue mail of kind with text to the case's member, threaded; outbox id or 0. */
static gint64
queue_to_member(ctl *c, const store_case *k, const char *kind, const char *from_name,
    const char *subject, const char *text, const char *auto_submitted, const char *role,
    GError **error)
{
	g_autoptr(spool) sp = NULL;
	g_autoptr(GPtrArray) refs = NULL;
	g_autofree char *irt = NULL;
	outbox_mail m = { 0 };

	if ((sp = spool_open(c->cfg->spool, error)) == NULL)
		return 0;
	if (!case_thread(c, k, &irt, &refs, error))
		return 0;
	m.c = k;
	m.kind = kind;
	m.to_addr = k->member;
	m.to_name = k->member_name;
	m.from_name = from_name;
	m.subject = subject;
	m.text = text;
	m.in_reply_to = irt;
	m.references = refs;
	m.auto_submitted = auto_submitted;
	m.role = role;
	return outbox_queue_mail(c->cfg, c->st, sp, &m, error);
}

/* "Type / Sub type / Update type" of a case, or "-". */
static char *
type_line(const char *type, const char *sub, const char *upd)
{
	if (type == NULL)
		return g_strdup("-");
	return g_strdup_printf("%s%s%s%s%s", type, sub ? " / " : "", sub ? sub : "",
	    upd ? " / " : "", upd ? upd : "");
}

/* The {{placeholders}} of mail to the member of case k, written in lang. */
static GHashTable *
member_vars(ctl *c, const store_case *k, const char *lang)
{
	GHashTable *v = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

	g_hash_table_insert(v, "case_id", g_strdup(k->public_id));
	g_hash_table_insert(v, "subject", g_strdup(k->subject));
	g_hash_table_insert(v, "member_name", g_strdup(k->member_name != NULL &&
	    *k->member_name != '\0' ? k->member_name : k->member));
	g_hash_table_insert(v, "type", k->type == NULL && g_strcmp0(lang, "fr") == 0 ?
	    g_strdup("pas encore classée") : type_line(k->type, k->sub_type, k->update_type));
	g_hash_table_insert(v, "team", g_strdup(k->team != NULL ? k->team : c->cfg->name));
	g_hash_table_insert(v, "status", g_strdup(lang_status_label(lang, k->status)));
	g_hash_table_insert(v, "member", g_strdup(k->member));
	g_hash_table_insert(v, "member_number", g_strdup(k->member_number != NULL ?
	    k->member_number : "-"));
	g_hash_table_insert(v, "gateway_name", g_strdup(c->cfg->name));
	g_hash_table_insert(v, "gateway_address", g_strdup(c->cfg->address));
	return v;
}

/*
 * The text (and the template's subject, if it has one) of mail to the
 * member of case k from template name, in the member's language.
 */
static char *
member_text(ctl *c, const store_case *k, const char *name, char **subject_r,
    GError **error)
{
	const char *lang = members_case_lang(c->cfg, c->st, k);
	g_autoptr(GHashTable) v = member_vars(c, k, lang);

	return outbox_render_lang(c->cfg, lang, name, v, subject_r, error);
}

/* resolve/reopen: set status, record it, tell the member on resolve. */
static int
set_status(ctl *c, const char *id, const char *status, gboolean notice)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *actor = ctl_actor(), *text = NULL, *subject = NULL;
	gboolean resolve = strcmp(status, CASE_RESOLVED) == 0, ok;
	gint64 ob = 0;
	int rc;

	if ((rc = ctl_begin_case(c, id, &k)) != 0)
		return rc;
	if (strcmp(k->status, status) == 0) {
		store_rollback(c->st);
		printf("%s is already %s; nothing changed\n", k->public_id, status);
		return 0;
	}
	ok = store_case_set_status(c->st, k->id, status, &err) &&
	    store_event_add(c->st, k->id, resolve ? "resolved" : "reopened", actor, NULL, &err);
	if (ok && resolve && notice) {
		ok = (text = member_text(c, k, "resolved.txt", &subject, &err)) != NULL &&
		    (ob = queue_to_member(c, k, "resolved", NULL, subject, text, "auto-generated",
		    "gateway", &err)) != 0;
	}
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	if (ob != 0)
		printf("%s: %s; notice to %s queued (outbox %" G_GINT64_FORMAT ")\n",
		    k->public_id, status, k->member, ob);
	else
		printf("%s: %s\n", k->public_id, status);
	return 0;
}

static int
cmd_resolve(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-notice", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	gboolean notice = TRUE;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'n')
			usage();
		notice = FALSE;
	}
	if (optind != argc - 1)
		usage();
	return set_status(c, argv[optind], CASE_RESOLVED, notice);
}

static int
cmd_reopen(ctl *c, int argc, char **argv)
{
	if (argc != 2)
		usage();
	return set_status(c, argv[1], CASE_ACTIVE, FALSE);
}

/* Text staff typed: valid UTF-8, not blank, bounded. */
static gboolean
staff_text_ok(const char *what, const char *text, gsize len)
{
	const char *p;

	if (len > REPLY_MAX) {
		fprintf(stderr, "casectl: %s is longer than %d bytes\n", what, REPLY_MAX);
		return FALSE;
	}
	if (memchr(text, '\0', len) != NULL || !g_utf8_validate(text, (gssize)len, NULL)) {
		fprintf(stderr, "casectl: %s is not valid UTF-8 text\n", what);
		return FALSE;
	}
	for (p = text; *p != '\0' && g_ascii_isspace(*p); p++)
		;
	if (*p == '\0') {
		fprintf(stderr, "casectl: %s is empty\n", what);
		return FALSE;
	}
	return TRUE;
}

static int
cmd_note(ctl *c, int argc, char **argv)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *actor = ctl_actor(), *text = NULL;
	gboolean ok;
	int rc;

	if (argc < 3)
		usage();
	text = g_strjoinv(" ", argv + 2);
	if (!staff_text_ok("the note", text, strlen(text)))
		return CG_EX_DATAERR;
	if ((rc = ctl_begin_case(c, argv[1], &k)) != 0)
		return rc;
	ok = store_event_add(c->st, k->id, "note", actor, text, &err) &&
	    store_case_touch(c->st, k->id, &err);
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: note added\n", k->public_id);
	return 0;
}

/* The reply text: --file F (- is stdin) or the remaining words. */
static char *
reply_text(const char *file, int argc, char **argv, gsize *len_r)
{
	g_autoptr(GError) err = NULL;
	char *text = NULL;

	if (file == NULL) {
		text = g_strjoinv(" ", argv);
		*len_r = strlen(text);
		return text;
	}
	if (strcmp(file, "-") == 0) {
		GString *in = g_string_new(NULL);
		char buf[8192];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0 && in->len <= REPLY_MAX)
			g_string_append_len(in, buf, (gssize)n);
		*len_r = in->len;
		return g_string_free(in, FALSE);
	}
	if (!g_file_get_contents(file, &text, len_r, &err)) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return NULL;
	}
	return text;
}

static int
cmd_reply(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from-name", required_argument, NULL, 'n' },
		{ "file", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *actor = ctl_actor(), *text = NULL, *from = NULL, *detail = NULL;
	const char *name = NULL, *file = NULL, *id;
	gboolean ok;
	gint64 ob = 0;
	gsize len;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'n')
			name = optarg;
		else if (ch == 'F')
			file = optarg;
		else
			usage();
	}
	if (optind >= argc || (file != NULL) != (optind == argc - 1))
		usage();
	id = argv[optind];
	if ((text = reply_text(file, argc - optind - 1, argv + optind + 1, &len)) == NULL)
		return CG_EX_NOINPUT;
	if (!staff_text_ok("the reply", text, len))
		return CG_EX_DATAERR;
	if (name != NULL && (!g_utf8_validate(name, -1, NULL) || strlen(name) > 100)) {
		fprintf(stderr, "casectl: --from-name must be UTF-8 text of at most 100 bytes\n");
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_begin_case(c, id, &k)) != 0)
		return rc;
	/* As for relayed staff mail: the person, via the gateway. */
	if (name != NULL && *name != '\0')
		from = g_strdup_printf("%s via %s", name, c->cfg->name);
	detail = g_strdup_printf("to <%s>%s%s", k->member, name != NULL ? " as " : "",
	    name != NULL ? name : "");
	/* the staff member wrote the whole mail here: it goes as written, no relay.txt */
	ok = (ob = queue_to_member(c, k, "reply", from, NULL, text, NULL, "staff", &err)) != 0 &&
	    store_event_add(c->st, k->id, "reply", actor, detail, &err) &&
	    store_case_touch(c->st, k->id, &err);
	if (!ok && err != NULL && err->code == CG_ERROR_PERM) {
		store_rollback(c->st);
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: reply to %s queued (outbox %" G_GINT64_FORMAT ")\n", k->public_id, k->member,
	    ob);
	return 0;
}

/* The rules the daemon uses, for validating taxonomy and teams. */
static int
ctl_rules(ctl *c, rules **r_r)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	guint i;

	if (c->cfg->rules == NULL) {
		fprintf(stderr, "casectl: %s sets no rules file, so there is no taxonomy or team "
		    "to check against\n", c->conf_path);
		return CG_EX_CONFIG;
	}
	if ((*r_r = rules_load(c->cfg->rules, errors)) == NULL) {
		for (i = 0; i < errors->len; i++)
			fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
		return CG_EX_CONFIG;
	}
	return 0;
}

static int
cmd_set_type(ctl *c, int argc, char **argv)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(rules) r = NULL;
	g_autofree char *type = NULL, *sub = NULL, *upd = NULL, *actor = ctl_actor();
	g_autofree char *before = NULL, *after = NULL, *detail = NULL;
	gboolean ok;
	int rc;

	if (argc != 3)
		usage();
	if (!report_parse_type(argv[2], &type, &sub, &upd)) {
		fprintf(stderr, "casectl: write the type as \"Type\", \"Type / Sub type\" or "
		    "\"Type / Sub type / Update type\"\n");
		return CG_EX_DATAERR;
	}
	if ((rc = load_config(c)) != 0 || (rc = ctl_rules(c, &r)) != 0)
		return rc;
	if (!rules_taxonomy_valid(r, type, sub, upd, &err)) {
		fprintf(stderr, "casectl: %s: %s\n", c->cfg->rules, err->message);
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_begin_case(c, argv[1], &k)) != 0)
		return rc;
	before = type_line(k->type, k->sub_type, k->update_type);
	after = type_line(type, sub, upd);
	detail = g_strdup_printf("%s -> %s", before, after);
	ok = store_case_set_type(c->st, k->id, type, sub, upd, &err) &&
	    store_event_add(c->st, k->id, "type", actor, detail, &err);
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: type %s\n", k->public_id, detail);
	return 0;
}

static int
cmd_assign(ctl *c, int argc, char **argv)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(rules) r = NULL;
	g_autofree char *actor = ctl_actor(), *detail = NULL;
	gboolean ok;
	int rc;

	if (argc != 3)
		usage();
	if ((rc = load_config(c)) != 0 || (rc = ctl_rules(c, &r)) != 0)
		return rc;
	if (!rules_team_valid(r, argv[2], &err)) {
		fprintf(stderr, "casectl: %s: %s\n", c->cfg->rules, err->message);
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_begin_case(c, argv[1], &k)) != 0)
		return rc;
	detail = g_strdup_printf("%s -> %s", k->team != NULL ? k->team : "-", argv[2]);
	ok = store_case_set_team(c->st, k->id, argv[2], &err) &&
	    store_event_add(c->st, k->id, "team", actor, detail, &err);
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: team %s\n", k->public_id, detail);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reports: export, outbox, stats, status */

/* list/export filter options; FALSE (message printed) on a bad value. */
static gboolean
filter_opt(int ch, const char *arg, store_filter *f)
{
	switch (ch) {
	case 's':
		if (g_ascii_strcasecmp(arg, "active") == 0)
			f->status = CASE_ACTIVE;
		else if (g_ascii_strcasecmp(arg, "resolved") == 0)
			f->status = CASE_RESOLVED;
		else {
			fprintf(stderr, "casectl: --status must be Active or Resolved\n");
			return FALSE;
		}
		return TRUE;
	case 't':
		f->type = arg;
		return TRUE;
	case 'T':
		f->team = arg;
		return TRUE;
	case 'm':
		f->member = arg;
		return TRUE;
	case 'S':
		if ((f->since = parse_date(arg)) < 0) {
			fprintf(stderr, "casectl: --since wants YYYY-MM-DD, not \"%s\"\n", arg);
			return FALSE;
		}
		return TRUE;
	}
	return FALSE;
}

/* Sorted names of every field any of the cases has (char *, borrowed from fields). */
static GPtrArray *
field_names(GPtrArray *per_case)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *names = g_ptr_array_new();
	guint i, j;

	for (i = 0; i < per_case->len; i++) {
		GPtrArray *fields = g_ptr_array_index(per_case, i);

		for (j = 0; j < fields->len; j++) {
			store_field *f = g_ptr_array_index(fields, j);

			if (g_hash_table_add(seen, f->name))
				g_ptr_array_add(names, f->name);
		}
	}
	g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
	return names;
}

static const char *
field_value(GPtrArray *fields, const char *name)
{
	guint i;

	for (i = 0; i < fields->len; i++) {
		store_field *f = g_ptr_array_index(fields, i);

		if (strcmp(f->name, name) == 0)
			return f->value;
	}
	return NULL;
}

static void
export_csv(GString *out, GPtrArray *cases, GPtrArray *per_case)
{
	static const char *const head[] = { "id", "status", "created", "updated", "member",
	    "member_name", "subject", "type", "sub_type", "update_type", "team", "priority",
	    "needs_info" };
	enum { NHEAD = G_N_ELEMENTS(head) };
	g_autoptr(GPtrArray) names = field_names(per_case);
	g_autofree const char **row = g_new0(const char *, NHEAD + names->len);
	guint i, j;

	for (j = 0; j < NHEAD; j++)
		row[j] = head[j];
	for (j = 0; j < names->len; j++)
		row[NHEAD + j] = g_strdup_printf("field:%s", (char *)g_ptr_array_index(names, j));
	report_csv_row(out, row, NHEAD + names->len);
	for (j = 0; j < names->len; j++)
		g_free((char *)row[NHEAD + j]);
	for (i = 0; i < cases->len; i++) {
		const store_case *k = g_ptr_array_index(cases, i);
		g_autofree char *created = report_iso_time(k->created);
		g_autofree char *updated = report_iso_time(k->updated);
		const char *vals[NHEAD] = { k->public_id, k->status, created, updated, k->member,
		    k->member_name, k->subject, k->type, k->sub_type, k->update_type, k->team,
		    k->priority, k->needs_info ? "yes" : "no" };

		memcpy(row, vals, sizeof(vals));
		for (j = 0; j < names->len; j++)
			row[NHEAD + j] = field_value(g_ptr_array_index(per_case, i),
			    g_ptr_array_index(names, j));
		report_csv_row(out, row, NHEAD + names->len);
	}
}

static void
export_json(GString *out, GPtrArray *cases, GPtrArray *per_case)
{
	guint i, j;

	g_string_append_c(out, '[');
	for (i = 0; i < cases->len; i++) {
		GPtrArray *fields = g_ptr_array_index(per_case, i);

		if (i > 0)
			g_string_append_c(out, ',');
		case_json(out, g_ptr_array_index(cases, i));
		g_string_truncate(out, out->len - 1);
		g_string_append(out, ",\"fields\":{");
		for (j = 0; j < fields->len; j++) {
			const store_field *f = g_ptr_array_index(fields, j);

			if (j > 0)
				g_string_append_c(out, ',');
			json_key(out, f->name);
			json_string(out, f->value);
		}
		g_string_append(out, "}}");
	}
	g_string_append(out, "]\n");
}

static int
cmd_export(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "status", required_argument, NULL, 's' },
		{ "type", required_argument, NULL, 't' },
		{ "team", required_argument, NULL, 'T' },
		{ "member", required_argument, NULL, 'm' },
		{ "since", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	store_filter f = { 0 };
	g_autoptr(GPtrArray) cases = NULL, per_case = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	const char *format = NULL;
	int ch, rc;
	guint i;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'f')
			format = optarg;
		else if (ch == '?' || ch == ':')
			usage();
		else if (!filter_opt(ch, optarg, &f))
			return CG_EX_USAGE;
	}
	if (optind != argc || format == NULL ||
	    (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)) {
		fprintf(stderr, "casectl: export needs --format json or --format csv\n");
		return CG_EX_USAGE;
	}
	if ((rc = open_store(c)) != 0)
		return rc;
	if ((cases = store_case_list(c->st, &f, &err)) == NULL)
		return ctl_store_failed(err);
	per_case = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	for (i = 0; i < cases->len; i++) {
		GPtrArray *fields = store_case_fields(c->st,
		    ((store_case *)g_ptr_array_index(cases, i))->id, &err);

		if (fields == NULL)
			return ctl_store_failed(err);
		g_ptr_array_add(per_case, fields);
	}
	if (strcmp(format, "csv") == 0)
		export_csv(out, cases, per_case);
	else
		export_json(out, cases, per_case);
	fwrite(out->str, 1, out->len, stdout);
	return 0;
}

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
outbox_row_json(GString *out, const store_outbox *o, const char *label)
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
outbox_list(ctl *c, int argc, char **argv)
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
			usage();
	}
	if (optind != argc)
		usage();
	if (state != NULL && strcmp(state, OUTBOX_QUEUED) != 0 &&
	    strcmp(state, OUTBOX_SENT) != 0 && strcmp(state, OUTBOX_FAILED) != 0) {
		fprintf(stderr, "casectl: --state must be queued, sent or failed\n");
		return CG_EX_USAGE;
	}
	if ((rc = open_store(c)) != 0)
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
			outbox_row_json(out, o, label);
		} else {
			g_autofree char *next = strcmp(o->state, OUTBOX_QUEUED) == 0 ?
			    fmt_time(o->next_attempt) : g_strdup("-");
			g_autofree char *rcpt = clip(o->rcpt, 28);
			g_autofree char *why = clip(o->last_error, 60);

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
outbox_requeue_one(ctl *c, const store_outbox *o, const char *actor, GError **error)
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
outbox_retry(ctl *c, int argc, char **argv)
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
		usage();
	all = strcmp(argv[1], "--all-failed") == 0;
	if (!all) {
		id = g_ascii_strtoll(argv[1], &end, 10);
		if (end == argv[1] || *end != '\0' || id <= 0) {
			fprintf(stderr, "casectl: outbox retry wants a row ID (see casectl outbox "
			    "list) or --all-failed\n");
			return CG_EX_USAGE;
		}
	}
	if ((rc = open_store_rw(c)) != 0)
		return rc;
	if (!store_begin(c->st, &err))
		return ctl_store_failed(err);
	if (!all) {
		if ((one = store_outbox_get(c->st, id, &err)) == NULL) {
			store_rollback(c->st);
			if (err != NULL)
				return ctl_store_failed(err);
			fprintf(stderr, "casectl: no outbox row %" G_GINT64_FORMAT "\n", id);
			return EX_NOCASE;
		}
		if (strcmp(one->state, OUTBOX_FAILED) != 0) {
			store_rollback(c->st);
			fprintf(stderr, "casectl: outbox row %" G_GINT64_FORMAT " is %s, not failed; "
			    "only failed mail is retried by hand\n", id, one->state);
			return CG_EX_DATAERR;
		}
		if ((rc = outbox_requeue_one(c, one, actor, &err)) != 0)
			return ctl_finish(c, FALSE, g_steal_pointer(&err));
		n = 1;
	} else {
		if ((rows = store_outbox_list(c->st, 0, &err)) == NULL)
			return ctl_finish(c, FALSE, g_steal_pointer(&err));
		for (i = 0; i < rows->len; i++) {
			const store_outbox *o = g_ptr_array_index(rows, i);

			if (strcmp(o->state, OUTBOX_FAILED) != 0)
				continue;
			if ((rc = outbox_requeue_one(c, o, actor, &err)) != 0)
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

static int
cmd_outbox(ctl *c, int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "list") == 0)
		return outbox_list(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "retry") == 0)
		return outbox_retry(c, argc - 1, argv + 1);
	usage();
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

static int
cmd_stats(ctl *c, int argc, char **argv)
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

	if (!json_only_opts(argc, argv, &json) || optind != argc)
		usage();
	if ((rc = open_store(c)) != 0)
		return rc;
	if ((cases = store_case_list(c->st, NULL, &err)) == NULL ||
	    (delays = store_first_staff_reply_delays(c->st, &err)) == NULL ||
	    (queued = store_outbox_count(c->st, OUTBOX_QUEUED, &err)) < 0 ||
	    (failed = store_outbox_count(c->st, OUTBOX_FAILED, &err)) < 0)
		return ctl_store_failed(err);
	for (i = 0; i < cases->len; i++) {
		const store_case *k = g_ptr_array_index(cases, i);
		g_autofree char *type = k->type != NULL ? type_line(k->type, k->sub_type, NULL) :
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
			g_autofree char *when = fmt_time(e->at);

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
			g_autofree char *poll = fmt_time(d->last_poll);
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

static int
cmd_status(ctl *c, int argc, char **argv)
{
	g_autoptr(GPtrArray) ds = NULL, events = NULL, rows = NULL;
	g_autoptr(GHashTable) ids = case_label_cache();
	g_autoptr(GError) err = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	gint64 queued, failed, due;
	gboolean json, first = TRUE;
	int rc;

	if (!json_only_opts(argc, argv, &json) || optind != argc)
		usage();
	if ((rc = open_store(c)) != 0)
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
		g_autofree char *next = fmt_time(due);

		g_string_append_printf(out, "Outbox: %" G_GINT64_FORMAT " queued (next due %s), "
		    "%" G_GINT64_FORMAT " failed\n", queued, queued > 0 ? next : "-", failed);
	}
	status_errors(c, events, rows, ids, json, out);
	if (json)
		g_string_append(out, "}\n");
	fwrite(out->str, 1, out->len, stdout);
	return 0;
}

/*
 * casectl quarantine list|show|release|delete: what casegate held back
 * (spam, blocked senders, ignored by a rule, unparseable, bounces and
 * auto-replies matching none of our mail).  Release ingests the message
 * as if it were new.
 */
static int
quarantine_id(const char *arg, gint64 *id_r)
{
	char *end = NULL;

	*id_r = g_ascii_strtoll(arg, &end, 10);
	if (end == arg || *end != '\0' || *id_r <= 0) {
		fprintf(stderr, "casectl: \"%s\" is not a quarantine entry number (see "
		    "casectl quarantine list)\n", arg);
		return CG_EX_USAGE;
	}
	return 0;
}

static int
quarantine_failed(const char *what, GError *err)
{
	if (err != NULL && err->code == CG_ERROR_PERM) {
		fprintf(stderr, "casectl: quarantine %s: %s\n", what, err->message);
		return EX_NOCASE;
	}
	return ctl_store_failed(err);
}

static int
quarantine_list(ctl *c, int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	gboolean json = FALSE, all = FALSE;
	int i, rc;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = TRUE;
		else if (strcmp(argv[i], "--all") == 0)
			all = TRUE;
		else
			usage();
	}
	if ((rc = open_store(c)) != 0)
		return rc;
	if (!quarantine_print_list(c->st, all, json, stdout, &err))
		return ctl_store_failed(err);
	return 0;
}

static int
quarantine_release_one(ctl *c, gint64 id)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = NULL;
	g_autoptr(rules) r = NULL;
	ingest_ctx ctx = { 0 };
	ingest_result res;
	int rc;

	if (c->cfg->rules != NULL && (rc = ctl_rules(c, &r)) != 0)
		return rc;
	if ((sp = spool_open(c->cfg->spool, &err)) == NULL)
		return ctl_store_failed(err);
	ctx.cfg = c->cfg;
	ctx.st = c->st;
	ctx.sp = sp;
	ctx.rules = r;
	if (!quarantine_release(&ctx, id, &res, &err))
		return quarantine_failed("release", err);
	printf("released entry %" G_GINT64_FORMAT ": %s %s: %s\n", id,
	    res.public_id ? res.public_id : "-", ingest_outcome_name(res.outcome),
	    res.decision ? res.decision : "");
	ingest_result_clear(&res);
	return 0;
}

static int
cmd_quarantine(ctl *c, int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = NULL;
	gint64 id;
	int rc;

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "list") == 0)
		return quarantine_list(c, argc, argv);
	if (argc != 3 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "release") != 0 &&
	    strcmp(argv[1], "delete") != 0))
		usage();
	if ((rc = quarantine_id(argv[2], &id)) != 0)
		return rc;
	if (strcmp(argv[1], "show") == 0) {
		if ((rc = open_store(c)) != 0)
			return rc;
		if ((sp = spool_open(c->cfg->spool, &err)) == NULL ||
		    !quarantine_print_one(c->st, sp, id, stdout, &err))
			return quarantine_failed("show", err);
		return 0;
	}
	if ((rc = open_store_rw(c)) != 0)
		return rc;
	if (strcmp(argv[1], "release") == 0)
		return quarantine_release_one(c, id);
	if ((sp = spool_open(c->cfg->spool, &err)) == NULL ||
	    !quarantine_delete(c->st, sp, id, &err))
		return quarantine_failed("delete", err);
	printf("deleted entry %" G_GINT64_FORMAT "\n", id);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The member directory: import a CSV, list, show one member */

/* Print "file:line: message" errors and say that nothing changed. */
static int
members_rejected(GPtrArray *errors, const char *file)
{
	guint i;

	for (i = 0; i < errors->len; i++)
		fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
	fprintf(stderr, "casectl: %s was not imported; the member directory is unchanged\n",
	    file);
	return CG_EX_DATAERR;
}

static int
members_import_file(ctl *c, const char *file, gboolean replace)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *data = NULL;
	int added = 0, updated = 0, rc;
	gsize len;

	if (!g_file_get_contents(file, &data, &len, &err)) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_NOINPUT;
	}
	if ((entries = members_csv_parse(data, len, file, errors)) == NULL)
		return members_rejected(errors, file);
	if ((rc = open_store_rw(c)) != 0)
		return rc;
	if (!store_begin(c->st, &err))
		return ctl_store_failed(err);
	if (!members_import(c->st, entries, replace, file, errors, &added, &updated, &err)) {
		store_rollback(c->st);
		if (err != NULL)
			return ctl_store_failed(err);
		return members_rejected(errors, file);
	}
	if (!store_commit(c->st, &err))
		return ctl_store_failed(err);
	printf("%s: %u members imported (%d new, %d updated)%s\n", file, entries->len, added,
	    updated, replace ? "; the directory is now exactly this file" : "");
	return 0;
}

static int
cmd_members(ctl *c, int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	gboolean json = FALSE, replace = FALSE;
	const char *arg = NULL;
	int i, rc;

	if (argc < 2)
		usage();
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && strcmp(argv[1], "import") != 0)
			json = TRUE;
		else if (strcmp(argv[i], "--replace") == 0 && strcmp(argv[1], "import") == 0)
			replace = TRUE;
		else if (arg == NULL && (argv[i][0] != '-' || argv[i][1] == '\0'))
			arg = argv[i];
		else
			usage();
	}
	if (strcmp(argv[1], "import") == 0) {
		if (arg == NULL)
			usage();
		return members_import_file(c, arg, replace);
	}
	if (strcmp(argv[1], "list") == 0) {
		if (arg != NULL)
			usage();
		if ((rc = open_store(c)) != 0)
			return rc;
		if (!members_print_list(c->st, json, stdout, &err))
			return ctl_store_failed(err);
		return 0;
	}
	if (strcmp(argv[1], "show") != 0 || arg == NULL)
		usage();
	if ((rc = open_store(c)) != 0)
		return rc;
	if (!members_print_one(c->st, arg, json, stdout, &err)) {
		if (err != NULL && err->code == CG_ERROR_PERM) {
			fprintf(stderr, "casectl: %s\n", err->message);
			return EX_NOCASE;
		}
		return ctl_store_failed(err);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	ctl c = { 0 };
	int ch, rc;

	c.conf_path = getenv("CASEGATE_CONF");
	if (c.conf_path == NULL)
		c.conf_path = "/etc/casegate/casegate.conf";
	while ((ch = getopt(argc, argv, "+f:vh")) != -1) {
		switch (ch) {
		case 'f':
			c.conf_path = optarg;
			break;
		case 'v':
			log_set_verbose(log_get_verbose() + 1);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	log_init("casectl", LOG_TO_STDERR, log_get_verbose());
	cg_mime_init();

	if (strcmp(argv[0], "list") == 0)
		rc = cmd_list(&c, argc, argv);
	else if (strcmp(argv[0], "show") == 0)
		rc = cmd_show(&c, argc, argv);
	else if (strcmp(argv[0], "rules") == 0)
		rc = cmd_rules(&c, argc, argv);
	else if (strcmp(argv[0], "search") == 0)
		rc = cmd_search(&c, argc, argv);
	else if (strcmp(argv[0], "resolve") == 0)
		rc = cmd_resolve(&c, argc, argv);
	else if (strcmp(argv[0], "reopen") == 0)
		rc = cmd_reopen(&c, argc, argv);
	else if (strcmp(argv[0], "note") == 0)
		rc = cmd_note(&c, argc, argv);
	else if (strcmp(argv[0], "reply") == 0)
		rc = cmd_reply(&c, argc, argv);
	else if (strcmp(argv[0], "set-type") == 0)
		rc = cmd_set_type(&c, argc, argv);
	else if (strcmp(argv[0], "assign") == 0)
		rc = cmd_assign(&c, argc, argv);
	else if (strcmp(argv[0], "export") == 0)
		rc = cmd_export(&c, argc, argv);
	else if (strcmp(argv[0], "outbox") == 0)
		rc = cmd_outbox(&c, argc, argv);
	else if (strcmp(argv[0], "stats") == 0)
		rc = cmd_stats(&c, argc, argv);
	else if (strcmp(argv[0], "quarantine") == 0)
		rc = cmd_quarantine(&c, argc, argv);
	else if (strcmp(argv[0], "status") == 0)
		rc = cmd_status(&c, argc, argv);
	else if (strcmp(argv[0], "members") == 0)
		rc = cmd_members(&c, argc, argv);
	else {
		fprintf(stderr, "casectl: unknown command \"%s\"\n", argv[0]);
		usage();
	}
	store_close(c.st);
	config_free(c.cfg);
	g_mime_shutdown();
	return rc;
}
