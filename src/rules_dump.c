/*
 * rules_dump.c - print loaded rules back in canonical form: every
 * setting in a fixed order, one per line, conditions as the evaluator
 * sees them (a group with several keys becomes an explicit "all", in
 * evaluation order, cheapest first), sizes in bytes or k/M/G.
 *
 * The output is itself a valid rules file that loads to the same
 * rules, which is what the golden tests (tests/rules/N.ok) rely on.
 */
#include <string.h>

#include "rules_impl.h"

static void
ind(GString *o, int n)
{
	while (n-- > 0)
		g_string_append_c(o, '\t');
}

/* A libconfig string literal (control characters only occur in patterns). */
static void
qstr(GString *o, const char *s)
{
	g_string_append_c(o, '"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			g_string_append_c(o, '\\');
			g_string_append_c(o, (char)c);
		} else if (c == '\t')
			g_string_append(o, "\\t");
		else if (c == '\n')
			g_string_append(o, "\\n");
		else if (c < 0x20 || c == 0x7f)
			g_string_append_printf(o, "\\x%02x", c);
		else
			g_string_append_c(o, (char)c);
	}
	g_string_append_c(o, '"');
}

static void
strs(GString *o, GPtrArray *a)
{
	guint i;

	g_string_append(o, "[ ");
	for (i = 0; i < a->len; i++) {
		if (i > 0)
			g_string_append(o, ", ");
		qstr(o, g_ptr_array_index(a, i));
	}
	g_string_append(o, a->len > 0 ? " ]" : "]");
}

static void
setting_str(GString *o, int n, const char *key, const char *value)
{
	ind(o, n);
	g_string_append_printf(o, "%s = ", key);
	qstr(o, value);
	g_string_append(o, ";\n");
}

/* Short lists on one line, long ones one string per line. */
static void
setting_strs(GString *o, int n, const char *key, GPtrArray *a)
{
	gsize total = 0;
	guint i;

	for (i = 0; i < a->len; i++)
		total += strlen(g_ptr_array_index(a, i)) + 4;
	ind(o, n);
	g_string_append_printf(o, "%s = ", key);
	if (a->len < 2 || total <= 64) {
		strs(o, a);
		g_string_append(o, ";\n");
		return;
	}
	g_string_append(o, "[\n");
	for (i = 0; i < a->len; i++) {
		ind(o, n + 1);
		qstr(o, g_ptr_array_index(a, i));
		g_string_append(o, i + 1 < a->len ? ",\n" : "\n");
	}
	ind(o, n);
	g_string_append(o, "];\n");
}

static void
setting_rx(GString *o, int n, const char *key, GPtrArray *rxs)
{
	g_autoptr(GPtrArray) a = g_ptr_array_new();
	guint i;

	for (i = 0; i < rxs->len; i++)
		g_ptr_array_add(a, ((rules_rx *)g_ptr_array_index(rxs, i))->source);
	if (a->len == 1)
		setting_str(o, n, key, g_ptr_array_index(a, 0));
	else
		setting_strs(o, n, key, a);
	if (rxs->len > 0 && ((rules_rx *)g_ptr_array_index(rxs, 0))->nocase) {
		ind(o, n);
		g_string_append(o, "nocase = true;\n");
	}
}

static void
setting_size(GString *o, int n, const char *key, gint64 v)
{
	static const struct { char suffix; gint64 mult; } units[] = {
		{ 'G', 1 << 30 }, { 'M', 1 << 20 }, { 'k', 1 << 10 },
	};
	guint i;

	ind(o, n);
	for (i = 0; i < G_N_ELEMENTS(units); i++)
		if (v > 0 && v % units[i].mult == 0) {
			g_string_append_printf(o, "%s = \"%" G_GINT64_FORMAT "%c\";\n", key,
			    v / units[i].mult, units[i].suffix);
			return;
		}
	g_string_append_printf(o, "%s = %" G_GINT64_FORMAT "L;\n", key, v);
}

static void dump_members(GString *o, const cond *k, int n);

static void
dump_group(GString *o, const cond *k, int n, gboolean last)
{
	ind(o, n);
	g_string_append(o, "{\n");
	dump_members(o, k, n + 1);
	ind(o, n);
	g_string_append(o, last ? "}\n" : "},\n");
}

static void
dump_members(GString *o, const cond *k, int n)
{
	const char *key = rules_cond_key(k->kind);
	guint i;

	switch (k->kind) {
	case COND_ALL:
	case COND_ANY:
		ind(o, n);
		g_string_append_printf(o, "%s = (\n", key);
		for (i = 0; i < k->kids->len; i++)
			dump_group(o, g_ptr_array_index(k->kids, i), n + 1, i + 1 == k->kids->len);
		ind(o, n);
		g_string_append(o, ");\n");
		break;
	case COND_NOT:
		ind(o, n);
		g_string_append(o, "not = {\n");
		if (k->kids->len > 0)
			dump_members(o, g_ptr_array_index(k->kids, 0), n + 1);
		ind(o, n);
		g_string_append(o, "};\n");
		break;
	case COND_SUBJECT:
	case COND_BODY:
		setting_rx(o, n, key, k->rxs);
		break;
	case COND_HEADER:
		ind(o, n);
		g_string_append(o, "header = {\n");
		setting_str(o, n + 1, "name", k->header);
		if (k->rxs != NULL)
			setting_rx(o, n + 1, "pattern", k->rxs);
		ind(o, n);
		g_string_append(o, "};\n");
		break;
	case COND_ATTACHMENT:
		ind(o, n);
		g_string_append_printf(o, "attachment = %s;\n", k->flag ? "true" : "false");
		break;
	case COND_SIZE_OVER:
	case COND_SIZE_UNDER:
		setting_size(o, n, key, k->size);
		break;
	default:
		if (k->globs->len == 1)
			setting_str(o, n, key, g_ptr_array_index(k->globs, 0));
		else
			setting_strs(o, n, key, k->globs);
		break;
	}
}

static void
setting_fields(GString *o, int n, const rules *r, const char *key, const GArray *req)
{
	g_autoptr(GPtrArray) a = g_ptr_array_new();
	guint i;

	for (i = 0; i < req->len; i++)
		g_ptr_array_add(a, ((rules_fdef *)g_ptr_array_index(r->fdefs,
		    g_array_index(req, int, i)))->name);
	setting_strs(o, n, key, a);
}

static void
dump_action(GString *o, const rules *r, const rules_action *a, int n)
{
	const rules_type *t = a->type >= 0 ? g_ptr_array_index(r->types, a->type) : NULL;

	if (a->ignore != NULL)
		setting_str(o, n, "ignore", a->ignore);
	if (t != NULL) {
		setting_str(o, n, "type", t->name);
		if (a->sub_type >= 0)
			setting_str(o, n, "sub_type", g_ptr_array_index(t->sub_types, a->sub_type));
		if (a->update_type >= 0)
			setting_str(o, n, "update_type",
			    g_ptr_array_index(t->update_types, a->update_type));
	}
	if (a->team >= 0)
		setting_str(o, n, "team", ((rules_team *)g_ptr_array_index(r->teams, a->team))->name);
	if (a->priority != NULL)
		setting_str(o, n, "priority", a->priority);
	if (a->tags != NULL)
		setting_strs(o, n, "tags", a->tags);
	if (a->require != NULL)
		setting_fields(o, n, r, "require", a->require);
	if (a->cont) {
		ind(o, n);
		g_string_append(o, "continue = true;\n");
	}
}

static void
list_open(GString *o, const char *key, guint len)
{
	g_string_append_printf(o, "%s = (%s", key, len > 0 ? "\n" : "");
}

static void
elem_close(GString *o, guint i, guint len)
{
	g_string_append(o, i + 1 < len ? "\t},\n" : "\t}\n");
}

static void
dump_teams(GString *o, const rules *r)
{
	guint i;

	list_open(o, "teams", r->teams->len);
	for (i = 0; i < r->teams->len; i++) {
		const rules_team *t = g_ptr_array_index(r->teams, i);

		g_string_append(o, "\t{\n");
		setting_str(o, 2, "name", t->name);
		if (t->address != NULL)
			setting_str(o, 2, "address", t->address);
		elem_close(o, i, r->teams->len);
	}
	g_string_append(o, ");\n\n");
}

static void
dump_fields(GString *o, const rules *r)
{
	guint i;

	list_open(o, "fields", r->fdefs->len);
	for (i = 0; i < r->fdefs->len; i++) {
		const rules_fdef *f = g_ptr_array_index(r->fdefs, i);

		g_string_append(o, "\t{\n");
		setting_str(o, 2, "name", f->name);
		setting_str(o, 2, "label", f->label);
		setting_rx(o, 2, "pattern", f->rxs);
		elem_close(o, i, r->fdefs->len);
	}
	g_string_append(o, ");\n\n");
}

static void
dump_types(GString *o, const rules *r)
{
	guint i;

	list_open(o, "case_types", r->types->len);
	for (i = 0; i < r->types->len; i++) {
		const rules_type *t = g_ptr_array_index(r->types, i);

		g_string_append(o, "\t{\n");
		setting_str(o, 2, "name", t->name);
		if (t->sub_types->len > 0)
			setting_strs(o, 2, "sub_types", t->sub_types);
		if (t->update_types->len > 0)
			setting_strs(o, 2, "update_types", t->update_types);
		if (t->team >= 0)
			setting_str(o, 2, "team",
			    ((rules_team *)g_ptr_array_index(r->teams, t->team))->name);
		if (t->require != NULL)
			setting_fields(o, 2, r, "require", t->require);
		elem_close(o, i, r->types->len);
	}
	g_string_append(o, ");\n\n");
}

static void
dump_rules(GString *o, const rules *r)
{
	guint i;

	list_open(o, "rules", r->rules->len);
	for (i = 0; i < r->rules->len; i++) {
		const rules_rule *ru = g_ptr_array_index(r->rules, i);

		g_string_append(o, "\t{\n");
		setting_str(o, 2, "name", ru->name);
		g_string_append(o, "\t\twhen = {\n");
		dump_members(o, ru->when, 3);
		g_string_append(o, "\t\t};\n\t\tthen = {\n");
		dump_action(o, r, &ru->then, 3);
		g_string_append(o, "\t\t};\n");
		elem_close(o, i, r->rules->len);
	}
	g_string_append(o, ");\n\n");
}

char *
rules_dump(const rules *r)
{
	GString *o = g_string_new(NULL);

	if (r == NULL)
		return g_string_free(o, FALSE);
	dump_teams(o, r);
	dump_fields(o, r);
	dump_types(o, r);
	dump_rules(o, r);
	g_string_append(o, "default = {\n");
	dump_action(o, r, &r->dflt, 1);
	g_string_append(o, "};\n");
	return g_string_free(o, FALSE);
}
