/*
 * casectl - the staff and admin tool: read cases from the database,
 * check and dry-run the rules.  Readable tables for people, stable JSON
 * (--json) for scripts.
 *
 * Exit status: 0 success, 1 no such case, 64 usage, 66 database
 * missing or unreadable, 78 configuration or rules errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cg.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "rules.h"
#include "store.h"

#define EX_NOCASE 1

typedef struct {
	const char *conf_path;
	config *cfg;
	store *st;
} ctl;

static void G_GNUC_NORETURN
usage(void)
{
	fprintf(stderr,
	    "usage: casectl [-f config] list [--json] [--status S] [--type T] [--team T]\n"
	    "                               [--member ADDR] [--since YYYY-MM-DD] [--limit N]\n"
	    "       casectl [-f config] show [--json] CASE-ID\n"
	    "       casectl [-f config] rules check|dump [FILE]\n"
	    "       casectl [-f config] rules test [--json] MESSAGE.eml ...\n");
	exit(CG_EX_USAGE);
}

static int
load_config(ctl *c)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	guint i;

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
	g_string_append_c(out, '}');
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
	guint i;

	optind = 1;
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
		return 0;
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

		printf("%-12s %-8s %-16s %-28s %-14s %-26s %s%s\n", k->public_id, k->status,
		    when, t, k->team ? k->team : "-", m, s, k->needs_info ? " (needs info)" : "");
	}
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

	optind = 1;
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
	else {
		fprintf(stderr, "casectl: unknown command \"%s\"\n", argv[0]);
		usage();
	}
	store_close(c.st);
	config_free(c.cfg);
	g_mime_shutdown();
	return rc;
}
