/*
 * rules_cmd.c - "casectl rules check" and "casectl rules test": the
 * admin's view of the rules.  Nothing here writes to the database or
 * sends mail; messages are parsed without a spool.
 *
 * The JSON form is for scripts and stays stable: one object per
 * message, keys always present and always in the same order, null for
 * "not set".
 */
#include <stdio.h>
#include <string.h>

#include "cg.h"
#include "json.h"
#include "log.h"
#include "rules_impl.h"

static void
print_errors(GPtrArray *errors)
{
	guint i;

	for (i = 0; i < errors->len; i++)
		fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
}

static rules *
load_or_report(const char *path)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	rules *r = rules_load(path, errors);

	if (r == NULL) {
		print_errors(errors);
		fprintf(stderr, "%s: %u error%s\n", path != NULL ? path : "rules", errors->len,
		    errors->len == 1 ? "" : "s");
	}
	return r;
}

int
rules_cmd_check(const char *path)
{
	g_autoptr(rules) r = load_or_report(path);

	if (r == NULL)
		return CG_EX_CONFIG;
	printf("%s: rules OK (%u case types, %u teams, %u fields, %u rules)\n", path,
	    r->types->len, r->teams->len, r->fdefs->len, r->rules->len);
	return CG_EX_OK;
}

int
rules_cmd_dump(const char *path)
{
	g_autoptr(rules) r = load_or_report(path);
	g_autofree char *text = NULL;

	if (r == NULL)
		return CG_EX_CONFIG;
	text = rules_dump(r);
	fputs(text, stdout);
	return CG_EX_OK;
}

static void
text_line(GString *o, const char *label, const char *value)
{
	g_string_append_printf(o, "  %-12s %s\n", label, value != NULL ? value : "-");
}

char *
rules_decision_to_text(const rules_decision *d)
{
	GString *o = g_string_new(NULL);
	g_autoptr(GPtrArray) missing = rules_decision_missing(d);
	guint i;

	if (d->ignore) {
		text_line(o, "ignored:", d->ignore_reason);
		text_line(o, "rule:", d->rule);
	} else {
		g_autofree char *team = d->team_address != NULL ?
		    g_strdup_printf("%s <%s>", d->team, d->team_address) : g_strdup(d->team);
		g_autofree char *tags = NULL;

		g_ptr_array_add(d->tags, NULL);
		tags = g_strjoinv(", ", (char **)d->tags->pdata);
		g_ptr_array_set_size(d->tags, d->tags->len - 1);
		text_line(o, "type:", d->type);
		text_line(o, "sub type:", d->sub_type);
		text_line(o, "update type:", d->update_type);
		text_line(o, "team:", team);
		text_line(o, "priority:", d->priority);
		text_line(o, "tags:", *tags != '\0' ? tags : NULL);
		text_line(o, "rule:", d->rule);
		for (i = 0; i < d->fields->len; i++) {
			const rules_field *f = g_ptr_array_index(d->fields, i);

			if (f->value != NULL)
				g_string_append_printf(o, "  %-12s %s: %s\n", "found:", f->label,
				    f->value);
		}
		for (i = 0; i < missing->len; i++)
			text_line(o, "missing:", g_ptr_array_index(missing, i));
	}
	for (i = 0; d->explain != NULL && i < d->explain->len; i++)
		text_line(o, i == 0 ? "why:" : "", g_ptr_array_index(d->explain, i));
	return g_string_free(o, FALSE);
}

static void
json_strv(GString *o, gboolean *first, const char *key, GPtrArray *a)
{
	guint i;

	if (!*first)
		g_string_append_c(o, ',');
	*first = FALSE;
	json_key(o, key);
	g_string_append_c(o, '[');
	for (i = 0; a != NULL && i < a->len; i++) {
		if (i > 0)
			g_string_append_c(o, ',');
		json_string(o, g_ptr_array_index(a, i));
	}
	g_string_append_c(o, ']');
}

static void
json_fields(GString *o, const rules_decision *d)
{
	guint i;

	g_string_append_c(o, ',');
	json_key(o, "fields");
	g_string_append_c(o, '[');
	for (i = 0; i < d->fields->len; i++) {
		const rules_field *f = g_ptr_array_index(d->fields, i);
		gboolean first = TRUE;

		g_string_append(o, i > 0 ? ",{" : "{");
		json_member_str(o, &first, "name", f->name);
		json_member_str(o, &first, "label", f->label);
		json_member_str(o, &first, "value", f->value);
		g_string_append_c(o, '}');
	}
	g_string_append_c(o, ']');
}

/* The decision's members (no braces), after a leading comma unless *first. */
static void
json_decision_members(GString *o, gboolean *first, const rules_decision *d)
{
	g_autoptr(GPtrArray) missing = rules_decision_missing(d);

	json_member_bool(o, first, "ignore", d->ignore);
	json_member_str(o, first, "ignore_reason", d->ignore_reason);
	json_member_str(o, first, "type", d->type);
	json_member_str(o, first, "sub_type", d->sub_type);
	json_member_str(o, first, "update_type", d->update_type);
	json_member_str(o, first, "team", d->team);
	json_member_str(o, first, "team_address", d->team_address);
	json_member_str(o, first, "priority", d->priority);
	json_strv(o, first, "tags", d->tags);
	json_member_str(o, first, "rule", d->rule);
	json_fields(o, d);
	json_strv(o, first, "missing", missing);
	json_strv(o, first, "explain", d->explain);
}

char *
rules_decision_to_json(const rules_decision *d)
{
	GString *o = g_string_new("{");
	gboolean first = TRUE;

	json_decision_members(o, &first, d);
	g_string_append_c(o, '}');
	return g_string_free(o, FALSE);
}

static int
test_one(const rules *r, const char *path, gboolean json, gboolean last)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(mail_msg) m = mail_parse_file(path, NULL, &error);
	g_autoptr(rules_decision) d = NULL;
	GString *o = g_string_new(json ? "  {" : NULL);
	gboolean first = TRUE;
	int rc = CG_EX_OK;

	if (json)
		json_member_str(o, &first, "file", path);
	if (m == NULL) {
		rc = g_error_matches(error, CG_ERROR, CG_ERROR_PERM) ? CG_EX_DATAERR :
		    CG_EX_NOINPUT;
		fprintf(stderr, "%s: %s\n", path, error != NULL ? error->message : "cannot parse");
		if (json)
			json_member_str(o, &first, "error", error != NULL ? error->message :
			    "cannot parse");
	} else {
		d = rules_classify(r, m, NULL, TRUE);
		if (json) {
			json_member_str(o, &first, "error", NULL);
			json_decision_members(o, &first, d);
		} else {
			g_autofree char *text = rules_decision_to_text(d);

			g_string_append_printf(o, "%s:\n%s", path, text);
		}
	}
	if (json)
		g_string_append(o, last ? "}\n" : "},\n");
	else if (!last)
		g_string_append_c(o, '\n');
	fputs(o->str, stdout);
	g_string_free(o, TRUE);
	return rc;
}

int
rules_cmd_test(const char *path, int argc, char **argv, gboolean json)
{
	g_autoptr(rules) r = NULL;
	int i, rc = CG_EX_OK;

	if (argc < 1) {
		fprintf(stderr, "rules test: no message given\n");
		return CG_EX_USAGE;
	}
	if ((r = load_or_report(path)) == NULL)
		return CG_EX_CONFIG;
	if (json)
		fputs("[\n", stdout);
	for (i = 0; i < argc; i++) {
		int one = test_one(r, argv[i], json, i + 1 == argc);

		if (one != CG_EX_OK && rc == CG_EX_OK)
			rc = one;
	}
	if (json)
		fputs("]\n", stdout);
	fflush(stdout);
	return rc;
}
