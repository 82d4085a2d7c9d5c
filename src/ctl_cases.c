/*
 * ctl_cases.c - casectl's reading commands: list, show, search, export.
 * Readable tables for people, stable JSON (--json) for scripts; export
 * writes every case with its fields as JSON or CSV.
 *
 * Rationale:
 * - They open the database read-only and never write: a report cannot
 *   lock out the daemon for long or change what it reports.
 * - One JSON shape for a case (case_json) serves list, search, show and
 *   export, so a script reading one reads them all.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "ctl.h"
#include "json.h"
#include "report.h"

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

/* case_json and the case's "fields", the object left open for more. */
static void
case_fields_json(GString *out, const store_case *k, GPtrArray *fields)
{
	guint i;

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
	g_string_append_c(out, '}');
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
		g_autofree char *when = ctl_fmt_time(k->updated);
		g_autofree char *type = g_strdup_printf("%s%s%s", k->type ? k->type : "-",
		    k->sub_type ? " / " : "", k->sub_type ? k->sub_type : "");
		g_autofree char *t = ctl_clip(type, 28), *m = ctl_clip(k->member, 26);
		g_autofree char *s = ctl_clip(k->subject, 50);

		printf("%-12s %-8s %-16s %-28s %-14s %-26s %s%s%s%s%s\n", k->public_id, k->status,
		    when, t, k->team ? k->team : "-", m, s, k->needs_info ? " (needs info)" : "",
		    k->tags != NULL ? " [" : "", k->tags != NULL ? k->tags : "",
		    k->tags != NULL ? "]" : "");
	}
}

/* The options list and export share; filter_opt reads them. */
#define FILTER_OPTIONS \
	{ "status", required_argument, NULL, 's' }, \
	{ "type", required_argument, NULL, 't' }, \
	{ "team", required_argument, NULL, 'T' }, \
	{ "member", required_argument, NULL, 'm' }, \
	{ "since", required_argument, NULL, 'S' }

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

int
ctl_cmd_list(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		FILTER_OPTIONS,
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
		if (ch == 'j')
			json = TRUE;
		else if (ch == 'l')
			f.limit = atoi(optarg);
		else if (ch == '?' || ch == ':')
			ctl_usage();
		else if (!filter_opt(ch, optarg, &f))
			return CG_EX_USAGE;
	}
	if (optind != argc)
		ctl_usage();
	if ((rc = ctl_open_store(c)) != 0)
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
	g_autofree char *created = ctl_fmt_time(k->created), *updated = ctl_fmt_time(k->updated);
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
		g_autofree char *when = ctl_fmt_time(m->created);
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
		g_autofree char *when = ctl_fmt_time(e->at);

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

	case_fields_json(out, k, fields);
	g_string_append(out, ",\"messages\":[");
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

int
ctl_cmd_show(ctl *c, int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(store_case) k = NULL;
	g_autoptr(GPtrArray) fields = NULL, msgs = NULL, events = NULL, outbox = NULL;
	gboolean json;
	int rc;

	if (!ctl_json_opts(argc, argv, &json) || optind != argc - 1)
		ctl_usage();
	if ((rc = ctl_open_store(c)) != 0)
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
		return CTL_EX_NOCASE;
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

int
ctl_cmd_search(ctl *c, int argc, char **argv)
{
	g_autoptr(GPtrArray) cases = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *text = NULL;
	gboolean json;
	int rc;

	if (!ctl_json_opts(argc, argv, &json) || optind >= argc)
		ctl_usage();
	text = g_strjoinv(" ", argv + optind);
	if (!g_utf8_validate(text, -1, NULL)) {
		fprintf(stderr, "casectl: search text is not valid UTF-8\n");
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_open_store(c)) != 0)
		return rc;
	if ((cases = store_search(c->st, text, &err)) == NULL)
		return ctl_store_failed(err);
	print_cases(cases, json);
	return 0;
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
	guint i;

	g_string_append_c(out, '[');
	for (i = 0; i < cases->len; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		case_fields_json(out, g_ptr_array_index(cases, i),
		    g_ptr_array_index(per_case, i));
		g_string_append_c(out, '}');
	}
	g_string_append(out, "]\n");
}

int
ctl_cmd_export(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		FILTER_OPTIONS,
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
			ctl_usage();
		else if (!filter_opt(ch, optarg, &f))
			return CG_EX_USAGE;
	}
	if (optind != argc || format == NULL ||
	    (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)) {
		fprintf(stderr, "casectl: export needs --format json or --format csv\n");
		return CG_EX_USAGE;
	}
	if ((rc = ctl_open_store(c)) != 0)
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

