/*
 * rules.c - load and validate a casegate.rules(5) file: the taxonomy,
 * teams, fields, rules and default, every reference checked.
 *
 * The file is first expanded by rules_include.c (our own @include,
 * relative to the including file, with a map back to file:line), then
 * parsed by libconfig from memory; conditions and regexes are compiled
 * by rules_when.c.  Every problem is collected with its file:line,
 * sorted, and reported at once; a file with any problem yields no rules
 * object, so a reload that fails keeps the old rules running.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

#include "cg.h"
#include "log.h"
#include "rules_impl.h"

#define RULES_MAX_NAME		200

/* ---------------------------------------------------------------- */
/* Errors with positions                                            */

typedef struct {
	guint		 file_idx;
	guint		 line;
	guint		 seq;
	char		*text;		/* complete "file:line: message" */
} load_error;

static guint
file_index(loader *ld, const char *file)
{
	guint i;

	for (i = 0; i < ld->r->files->len; i++)
		if (g_ptr_array_index(ld->r->files, i) == file)
			return i;
	return G_MAXUINT;
}

static void
add_error_at(loader *ld, const char *file, guint line, const char *msg)
{
	load_error e;

	e.file_idx = file != NULL ? file_index(ld, file) : G_MAXUINT;
	e.line = line;
	e.seq = ld->errs->len;
	if (file == NULL)
		e.text = g_strdup_printf("%s: %s", ld->r->path, msg);
	else if (line == 0)
		e.text = g_strdup_printf("%s: %s", file, msg);
	else
		e.text = g_strdup_printf("%s:%u: %s", file, line, msg);
	g_array_append_val(ld->errs, e);
}

G_GNUC_PRINTF(4, 5) void
rules_perr(loader *ld, const char *file, guint line, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	add_error_at(ld, file, line, msg);
}

src_pos
rules_pos_of(loader *ld, const config_setting_t *s)
{
	src_pos p = { NULL, 0 };
	guint line = s != NULL ? config_setting_source_line(s) : 0;

	if (ld->map->len == 0)
		return p;
	if (line == 0)
		line = 1;
	if (line > ld->map->len)
		line = ld->map->len;
	return g_array_index(ld->map, src_pos, line - 1);
}

/* An error about setting s, prefixed with ctx ("rule \"x\"") when set. */
G_GNUC_PRINTF(4, 5) void
rules_serr(loader *ld, const config_setting_t *s, const char *ctx, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;
	src_pos p = rules_pos_of(ld, s);

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (ctx != NULL) {
		g_autofree char *full = g_strdup_printf("%s: %s", ctx, msg);

		add_error_at(ld, p.file, p.line, full);
	} else
		add_error_at(ld, p.file, p.line, msg);
}

static int
load_error_cmp(gconstpointer a, gconstpointer b)
{
	const load_error *x = a, *y = b;

	if (x->file_idx != y->file_idx)
		return x->file_idx < y->file_idx ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}
/* ---------------------------------------------------------------- */
/* Typed access to settings, with errors                            */

const char *
rules_type_word(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:	return "a group { }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:	return "a number";
	case CONFIG_TYPE_FLOAT:	return "a decimal number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL:	return "a boolean";
	case CONFIG_TYPE_ARRAY:	return "an array [ ]";
	case CONFIG_TYPE_LIST:	return "a list ( )";
	default:		return "something else";
	}
}

static gboolean
rules_text_ok(const char *s, size_t max)
{
	const unsigned char *p;

	if (s == NULL || *s == '\0' || strlen(s) > max || !g_utf8_validate(s, -1, NULL))
		return FALSE;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return FALSE;
	return TRUE;
}

/* Keys of group that are not in allowed (NULL-terminated) are errors. */
void
rules_check_keys(loader *ld, const config_setting_t *group, const char *const *allowed,
    const char *ctx)
{
	int i, n = config_setting_length(group);

	for (i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(group, i);
		const char *name = config_setting_name(m);
		const char *const *a;

		for (a = allowed; *a != NULL; a++)
			if (strcmp(*a, name) == 0)
				break;
		if (*a == NULL)
			rules_serr(ld, m, ctx, "unknown key \"%s\"", name);
	}
}

const char *
rules_get_string(loader *ld, const config_setting_t *group, const char *key, gboolean required,
    const char *ctx)
{
	config_setting_t *s = config_setting_get_member(group, key);
	const char *v;

	if (s == NULL) {
		if (required)
			rules_serr(ld, group, ctx, "\"%s\" is missing", key);
		return NULL;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		rules_serr(ld, s, ctx, "\"%s\" must be a string, not %s", key, rules_type_word(s));
		return NULL;
	}
	v = config_setting_get_string(s);
	if (!rules_text_ok(v, 4096)) {
		rules_serr(ld, s, ctx, "\"%s\" must be non-empty UTF-8 text without control characters", key);
		return NULL;
	}
	return v;
}

/* Patterns may hold TAB or newline ("\t" in a libconfig string is one). */
static gboolean
pattern_ok(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) <= 4096 && g_utf8_validate(s, -1, NULL);
}

/*
 * A string, or an array or list of strings; NULL when absent or wrong.
 * Patterns (regexes) may hold control characters, names may not.
 */
GPtrArray *
rules_get_strings_as(loader *ld, const config_setting_t *group, const char *key, const char *ctx,
    gboolean patterns)
{
	config_setting_t *s = config_setting_get_member(group, key);
	GPtrArray *out;
	int i, n;

	if (s == NULL)
		return NULL;
	out = g_ptr_array_new();
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		const char *v = config_setting_get_string(s);

		if (!(patterns ? pattern_ok(v) : rules_text_ok(v, 4096)))
			rules_serr(ld, s, ctx, "\"%s\" must be non-empty UTF-8 text%s", key,
			    patterns ? "" : " without control characters");
		else
			g_ptr_array_add(out, (char *)v);
		return out;
	}
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		rules_serr(ld, s, ctx, "\"%s\" must be a string or a list of strings, not %s",
		    key, rules_type_word(s));
		return out;
	}
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		const char *v;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			rules_serr(ld, e, ctx, "\"%s\" must hold strings, not %s", key, rules_type_word(e));
			continue;
		}
		v = config_setting_get_string(e);
		if (!(patterns ? pattern_ok(v) : rules_text_ok(v, 4096))) {
			rules_serr(ld, e, ctx, "\"%s\": empty, not UTF-8%s", key,
			    patterns ? "" : " or control characters");
			continue;
		}
		g_ptr_array_add(out, (char *)v);
	}
	return out;
}

GPtrArray *
rules_get_strings(loader *ld, const config_setting_t *group, const char *key, const char *ctx)
{
	return rules_get_strings_as(ld, group, key, ctx, FALSE);
}

gboolean
rules_get_bool(loader *ld, const config_setting_t *group, const char *key, gboolean dflt,
    const char *ctx)
{
	config_setting_t *s = config_setting_get_member(group, key);

	if (s == NULL)
		return dflt;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		rules_serr(ld, s, ctx, "\"%s\" must be true or false, not %s", key, rules_type_word(s));
		return dflt;
	}
	return config_setting_get_bool(s) != 0;
}

/*
 * A size: a non-negative integer (64-bit ones need the L suffix) or a
 * string such as "500k", "10M", "1G" (binary multiples).  libconfig
 * silently wraps a plain integer above 2^31-1, which shows up here as
 * a negative number: reported, never used.
 */
gboolean
rules_get_size(loader *ld, const config_setting_t *s, const char *ctx, gint64 *size_r)
{
	const gint64 max = G_GINT64_CONSTANT(1) << 50;
	const char *name = config_setting_name(s);
	gint64 v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_type(s) == CONFIG_TYPE_INT ?
		    config_setting_get_int(s) : config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_STRING: {
		const char *str = config_setting_get_string(s);
		char *end;
		guint64 u, mult = 1;

		if (!g_ascii_isdigit(str[0])) {
			rules_serr(ld, s, ctx, "\"%s\": \"%s\" is not a size (use e.g. 500k, 10M or 1G)",
			    name, str);
			return FALSE;
		}
		errno = 0;
		u = g_ascii_strtoull(str, &end, 10);
		switch (*end) {
		case 'k': case 'K': mult = 1024; end++; break;
		case 'm': case 'M': mult = 1024 * 1024; end++; break;
		case 'g': case 'G': mult = 1024 * 1024 * 1024; end++; break;
		}
		if (*end != '\0') {
			rules_serr(ld, s, ctx, "\"%s\": \"%s\" is not a size (use e.g. 500k, 10M or 1G)",
			    name, str);
			return FALSE;
		}
		if (errno != 0 || u > (guint64)max / mult) {
			rules_serr(ld, s, ctx, "\"%s\": \"%s\" is too large", name, str);
			return FALSE;
		}
		v = (gint64)(u * mult);
		break;
	}
	default:
		rules_serr(ld, s, ctx, "\"%s\" must be a size such as \"10M\" or 1048576L, not %s",
		    name, rules_type_word(s));
		return FALSE;
	}
	if (v < 0) {
		rules_serr(ld, s, ctx, "\"%s\": negative size %" G_GINT64_FORMAT
		    " (a plain number above 2147483647 wraps: write it with an L suffix or as \"10M\")",
		    name, v);
		return FALSE;
	}
	if (v > max) {
		rules_serr(ld, s, ctx, "\"%s\": size %" G_GINT64_FORMAT " is too large", name, v);
		return FALSE;
	}
	*size_r = v;
	return TRUE;
}

/* Remember name under kind; report a duplicate with the first position. */
static gboolean
unique_name(loader *ld, const char *kind, const char *name, const config_setting_t *s,
    const char *ctx)
{
	g_autofree char *key = g_strdup_printf("%s\x1f%s", kind, name);
	const char *first = g_hash_table_lookup(ld->seen, key);
	src_pos p;

	if (first != NULL) {
		rules_serr(ld, s, ctx, "duplicate %s \"%s\" (first defined at %s)", kind, name, first);
		return FALSE;
	}
	p = rules_pos_of(ld, s);
	g_hash_table_insert(ld->seen, g_steal_pointer(&key),
	    g_strdup_printf("%s:%u", p.file != NULL ? p.file : "?", p.line));
	return TRUE;
}

static int
str_index(GPtrArray *a, const char *s)
{
	guint i;

	if (a == NULL || s == NULL)
		return -1;
	for (i = 0; i < a->len; i++)
		if (strcmp(g_ptr_array_index(a, i), s) == 0)
			return (int)i;
	return -1;
}

static int
type_index(const rules *r, const char *name)
{
	guint i;

	for (i = 0; i < r->types->len; i++)
		if (strcmp(((rules_type *)g_ptr_array_index(r->types, i))->name, name) == 0)
			return (int)i;
	return -1;
}

static int
team_index(const rules *r, const char *name)
{
	guint i;

	for (i = 0; i < r->teams->len; i++)
		if (strcmp(((rules_team *)g_ptr_array_index(r->teams, i))->name, name) == 0)
			return (int)i;
	return -1;
}

static int
fdef_index(const rules *r, const char *name)
{
	guint i;

	for (i = 0; i < r->fdefs->len; i++)
		if (strcmp(((rules_fdef *)g_ptr_array_index(r->fdefs, i))->name, name) == 0)
			return (int)i;
	return -1;
}

/* The named list of groups at top level; NULL when absent or wrong. */
static config_setting_t *
top_list(loader *ld, config_t *cfg, const char *key, gboolean required)
{
	config_setting_t *s = config_setting_get_member(config_root_setting(cfg), key);

	if (s == NULL) {
		if (required)
			rules_perr(ld, ld->r->files->len > 0 ? g_ptr_array_index(ld->r->files, 0) : NULL,
			    0, "\"%s\" is missing", key);
		return NULL;
	}
	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		rules_serr(ld, s, NULL, "\"%s\" must be a list ( { ... }, { ... } ), not %s",
		    key, rules_type_word(s));
		return NULL;
	}
	return s;
}

/* ---------------------------------------------------------------- */
/* Actions                                                          */

static const char *const priorities[] = { "low", "normal", "high", "urgent", NULL };

static void
action_clear(rules_action *a)
{
	if (a->tags != NULL)
		g_ptr_array_free(a->tags, TRUE);
	if (a->require != NULL)
		g_array_free(a->require, TRUE);
	g_free(a->priority);
	g_free(a->ignore);
	memset(a, 0, sizeof(*a));
	a->type = a->sub_type = a->update_type = a->team = -1;
}

static GArray *
field_refs(loader *ld, const config_setting_t *group, const char *key, const char *ctx)
{
	g_autoptr(GPtrArray) names = rules_get_strings(ld, group, key, ctx);
	config_setting_t *s = config_setting_get_member(group, key);
	GArray *out;
	guint i;

	if (names == NULL)
		return NULL;
	out = g_array_new(FALSE, FALSE, sizeof(int));
	for (i = 0; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		int f = fdef_index(ld->r, name), j;
		gboolean dup = FALSE;

		if (f < 0) {
			rules_serr(ld, s, ctx, "unknown field \"%s\"", name);
			continue;
		}
		for (j = 0; j < (int)out->len; j++)
			dup |= g_array_index(out, int, j) == f;
		if (dup)
			rules_serr(ld, s, ctx, "field \"%s\" required twice", name);
		else
			g_array_append_val(out, f);
	}
	return out;
}

static void
action_taxonomy(loader *ld, const config_setting_t *g, const char *ctx, rules_action *a)
{
	const char *type = rules_get_string(ld, g, "type", FALSE, ctx);
	const char *sub = rules_get_string(ld, g, "sub_type", FALSE, ctx);
	const char *upd = rules_get_string(ld, g, "update_type", FALSE, ctx);
	rules_type *t;

	if (type != NULL && (a->type = type_index(ld->r, type)) < 0)
		rules_serr(ld, config_setting_get_member(g, "type"), ctx, "unknown case type \"%s\"", type);
	if ((sub != NULL || upd != NULL) && type == NULL)
		rules_serr(ld, config_setting_get_member(g, sub != NULL ? "sub_type" : "update_type"), ctx,
		    "\"%s\" needs \"type\" in the same action", sub != NULL ? "sub_type" : "update_type");
	if (a->type < 0)
		return;
	t = g_ptr_array_index(ld->r->types, a->type);
	if (sub != NULL && (a->sub_type = str_index(t->sub_types, sub)) < 0)
		rules_serr(ld, config_setting_get_member(g, "sub_type"), ctx,
		    "unknown sub type \"%s\" of case type \"%s\"", sub, t->name);
	if (upd != NULL && (a->update_type = str_index(t->update_types, upd)) < 0)
		rules_serr(ld, config_setting_get_member(g, "update_type"), ctx,
		    "unknown update type \"%s\" of case type \"%s\"", upd, t->name);
}

static void
action_parse(loader *ld, const config_setting_t *g, gboolean is_default, const char *ctx,
    rules_action *a)
{
	static const char *const rule_keys[] = { "type", "sub_type", "update_type", "team",
	    "priority", "tags", "require", "ignore", "continue", NULL };
	const char *team, *prio, *ignore;

	action_clear(a);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		rules_serr(ld, g, ctx, "\"%s\" must be a group { ... }, not %s",
		    config_setting_name(g), rules_type_word(g));
		return;
	}
	/* The default has the rule keys minus ignore and continue. */
	rules_check_keys(ld, g, is_default ? (const char *const[]){ "type", "sub_type",
	    "update_type", "team", "priority", "tags", "require", NULL } : rule_keys, ctx);
	if (config_setting_length(g) == 0)
		rules_serr(ld, g, ctx, "no action");
	if (is_default && config_setting_get_member(g, "type") == NULL)
		rules_serr(ld, g, ctx, "\"type\" is missing");
	action_taxonomy(ld, g, ctx, a);
	if ((team = rules_get_string(ld, g, "team", FALSE, ctx)) != NULL &&
	    (a->team = team_index(ld->r, team)) < 0)
		rules_serr(ld, config_setting_get_member(g, "team"), ctx, "unknown team \"%s\"", team);
	if ((prio = rules_get_string(ld, g, "priority", FALSE, ctx)) != NULL) {
		if (g_strv_contains(priorities, prio))
			a->priority = g_strdup(prio);
		else
			rules_serr(ld, config_setting_get_member(g, "priority"), ctx,
			    "unknown priority \"%s\" (use low, normal, high or urgent)", prio);
	}
	if (config_setting_get_member(g, "tags") != NULL) {
		g_autoptr(GPtrArray) tags = rules_get_strings(ld, g, "tags", ctx);
		guint i;

		a->tags = g_ptr_array_new_with_free_func(g_free);
		for (i = 0; tags != NULL && i < tags->len; i++)
			g_ptr_array_add(a->tags, g_strdup(g_ptr_array_index(tags, i)));
	}
	a->require = field_refs(ld, g, "require", ctx);
	if (is_default)
		return;
	a->cont = rules_get_bool(ld, g, "continue", FALSE, ctx);
	if ((ignore = rules_get_string(ld, g, "ignore", FALSE, ctx)) != NULL) {
		a->ignore = g_strdup(ignore);
		if (config_setting_length(g) > 1)
			rules_serr(ld, config_setting_get_member(g, "ignore"), ctx,
			    "\"ignore\" cannot be combined with other actions");
	}
}

/* ---------------------------------------------------------------- */
/* Taxonomy, teams, fields, rules, default                          */

static void
type_free(rules_type *t)
{
	if (t == NULL)
		return;
	g_free(t->name);
	g_ptr_array_free(t->sub_types, TRUE);
	g_ptr_array_free(t->update_types, TRUE);
	if (t->require != NULL)
		g_array_free(t->require, TRUE);
	g_free(t);
}

static void
team_free(rules_team *t)
{
	if (t == NULL)
		return;
	g_free(t->name);
	g_free(t->address);
	g_free(t);
}

static void
fdef_free(rules_fdef *f)
{
	if (f == NULL)
		return;
	g_free(f->name);
	g_free(f->label);
	g_ptr_array_free(f->rxs, TRUE);
	g_free(f);
}

static void
rule_free(rules_rule *r)
{
	if (r == NULL)
		return;
	g_free(r->name);
	rules_cond_free(r->when);
	action_clear(&r->then);
	g_free(r);
}

static GPtrArray *
unique_strings(loader *ld, const config_setting_t *g, const char *key, const char *ctx)
{
	g_autoptr(GPtrArray) in = rules_get_strings(ld, g, key, ctx);
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	guint i;

	for (i = 0; in != NULL && i < in->len; i++) {
		const char *s = g_ptr_array_index(in, i);

		if (strlen(s) > RULES_MAX_NAME)
			rules_serr(ld, config_setting_get_member(g, key), ctx, "\"%s\" is too long", s);
		else if (str_index(out, s) >= 0)
			rules_serr(ld, config_setting_get_member(g, key), ctx,
			    "%s: \"%s\" listed twice", key, s);
		else
			g_ptr_array_add(out, g_strdup(s));
	}
	return out;
}

/* The "name" of a list element, checked and made unique; NULL if bad. */
static const char *
elem_name(loader *ld, const config_setting_t *g, const char *kind, int idx, char **ctx_r)
{
	const char *name;
	g_autofree char *ctx = g_strdup_printf("%s #%d", kind, idx + 1);

	*ctx_r = NULL;
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		rules_serr(ld, g, ctx, "must be a group { name = \"...\"; ... }, not %s", rules_type_word(g));
		return NULL;
	}
	if ((name = rules_get_string(ld, g, "name", TRUE, ctx)) == NULL)
		return NULL;
	if (strlen(name) > RULES_MAX_NAME) {
		rules_serr(ld, g, ctx, "name is longer than %d bytes", RULES_MAX_NAME);
		return NULL;
	}
	*ctx_r = g_strdup_printf("%s \"%s\"", kind, name);
	if (!unique_name(ld, kind, name, config_setting_get_member(g, "name"), NULL))
		return NULL;
	return name;
}

static void
load_teams(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "address", NULL };
	config_setting_t *list = top_list(ld, cfg, "teams", FALSE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "team", i, &ctx), *addr;
		rules_team *t;

		if (name == NULL)
			continue;
		rules_check_keys(ld, g, keys, ctx);
		t = g_new0(rules_team, 1);
		t->name = g_strdup(name);
		if ((addr = rules_get_string(ld, g, "address", FALSE, ctx)) != NULL) {
			if (cg_address_valid(addr))
				t->address = g_strdup(addr);
			else
				rules_serr(ld, config_setting_get_member(g, "address"), ctx,
				    "\"%s\" is not a valid mail address", addr);
		}
		g_ptr_array_add(ld->r->teams, t);
	}
}

static gboolean
field_name_ok(const char *s)
{
	if (!g_ascii_islower(*s))
		return FALSE;
	for (; *s != '\0'; s++)
		if (!g_ascii_islower(*s) && !g_ascii_isdigit(*s) && *s != '_')
			return FALSE;
	return TRUE;
}

static void
load_fields(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "label", "pattern", "nocase", NULL };
	config_setting_t *list = top_list(ld, cfg, "fields", FALSE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "field", i, &ctx), *label;
		rules_fdef *f;

		if (name == NULL)
			continue;
		rules_check_keys(ld, g, keys, ctx);
		if (!field_name_ok(name))
			rules_serr(ld, config_setting_get_member(g, "name"), ctx,
			    "a field name is lowercase letters, digits and _, starting with a letter");
		f = g_new0(rules_fdef, 1);
		f->name = g_strdup(name);
		label = rules_get_string(ld, g, "label", FALSE, ctx);
		f->label = g_strdup(label != NULL ? label : name);
		if (config_setting_get_member(g, "pattern") == NULL) {
			rules_serr(ld, g, ctx, "\"pattern\" is missing");
			f->rxs = g_ptr_array_new();
		} else
			f->rxs = rules_rx_list(ld, g, "pattern", ctx,
			    rules_get_bool(ld, g, "nocase", FALSE, ctx), TRUE);
		g_ptr_array_add(ld->r->fdefs, f);
	}
}

static void
load_types(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "sub_types", "update_types", "team",
	    "require", NULL };
	config_setting_t *list = top_list(ld, cfg, "case_types", TRUE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	if (list != NULL && n == 0)
		rules_serr(ld, list, NULL, "\"case_types\" is empty");
	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "case type", i, &ctx), *team;
		rules_type *t;

		if (name == NULL)
			continue;
		rules_check_keys(ld, g, keys, ctx);
		t = g_new0(rules_type, 1);
		t->name = g_strdup(name);
		t->sub_types = unique_strings(ld, g, "sub_types", ctx);
		t->update_types = unique_strings(ld, g, "update_types", ctx);
		t->team = -1;
		if ((team = rules_get_string(ld, g, "team", FALSE, ctx)) != NULL &&
		    (t->team = team_index(ld->r, team)) < 0)
			rules_serr(ld, config_setting_get_member(g, "team"), ctx, "unknown team \"%s\"", team);
		t->require = field_refs(ld, g, "require", ctx);
		g_ptr_array_add(ld->r->types, t);
	}
}

static void
load_rules(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "when", "then", "nocase", NULL };
	config_setting_t *list = top_list(ld, cfg, "rules", FALSE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i), *when, *then;
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "rule", i, &ctx);
		rules_rule *r;
		src_pos p;

		if (name == NULL)
			continue;
		rules_check_keys(ld, g, keys, ctx);
		r = g_new0(rules_rule, 1);
		r->name = g_strdup(name);
		p = rules_pos_of(ld, g);
		r->file = p.file;
		r->line = (int)p.line;
		if ((when = config_setting_get_member(g, "when")) == NULL)
			rules_serr(ld, g, ctx, "\"when\" is missing");
		else
			r->when = rules_cond_parse(ld, when, rules_get_bool(ld, g, "nocase", FALSE, ctx), ctx);
		if ((then = config_setting_get_member(g, "then")) == NULL) {
			rules_serr(ld, g, ctx, "\"then\" is missing");
			action_clear(&r->then);
		} else
			action_parse(ld, then, FALSE, ctx, &r->then);
		g_ptr_array_add(ld->r->rules, r);
	}
}

static void
load_default(loader *ld, config_t *cfg)
{
	config_setting_t *g = config_setting_get_member(config_root_setting(cfg), "default");
	src_pos p;

	action_clear(&ld->r->dflt);
	if (g == NULL) {
		rules_perr(ld, g_ptr_array_index(ld->r->files, 0), 0,
		    "\"default\" is missing (the action when no rule matches)");
		return;
	}
	action_parse(ld, g, TRUE, "default", &ld->r->dflt);
	p = rules_pos_of(ld, g);
	ld->r->dflt_file = p.file;
	ld->r->dflt_line = (int)p.line;
}

static void
load_config(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "case_types", "teams", "fields", "rules",
	    "default", NULL };

	rules_check_keys(ld, config_root_setting(cfg), keys, NULL);
	load_teams(ld, cfg);
	load_fields(ld, cfg);
	load_types(ld, cfg);
	load_rules(ld, cfg);
	load_default(ld, cfg);
}

/* ---------------------------------------------------------------- */
/* Public: load and free                                            */

static gboolean
parse_expanded(loader *ld, config_t *cfg)
{
	src_pos p;
	guint line;

	config_init(cfg);
	/* Any @include left is one our scan did not see: make it fail
	 * loudly rather than resolve against the working directory. */
	config_set_include_dir(cfg, "/nonexistent/casegate-include");
	if (config_read_string(cfg, ld->out->str))
		return TRUE;
	line = (guint)MAX(config_error_line(cfg), 1);
	if (ld->map->len == 0) {
		rules_perr(ld, g_ptr_array_index(ld->r->files, 0), line, "%s", config_error_text(cfg));
		return FALSE;
	}
	p = g_array_index(ld->map, src_pos, MIN(line, ld->map->len) - 1);
	rules_perr(ld, p.file, p.line, "%s", config_error_text(cfg));
	return FALSE;
}

static void
flush_errors(loader *ld, GPtrArray *errors)
{
	guint i;

	g_array_sort(ld->errs, load_error_cmp);
	for (i = 0; i < ld->errs->len; i++) {
		load_error *e = &g_array_index(ld->errs, load_error, i);

		if (errors != NULL)
			g_ptr_array_add(errors, g_steal_pointer(&e->text));
		else
			g_free(e->text);
	}
}

rules *
rules_load(const char *path, GPtrArray *errors)
{
	loader ld = { 0 };
	config_t cfg;
	gboolean parsed = FALSE;
	rules *r;

	r = g_new0(rules, 1);
	r->path = g_strdup(path != NULL ? path : "(null)");
	r->files = g_ptr_array_new_with_free_func(g_free);
	r->types = g_ptr_array_new_with_free_func((GDestroyNotify)type_free);
	r->teams = g_ptr_array_new_with_free_func((GDestroyNotify)team_free);
	r->fdefs = g_ptr_array_new_with_free_func((GDestroyNotify)fdef_free);
	r->rules = g_ptr_array_new_with_free_func((GDestroyNotify)rule_free);
	r->filter = rules_filter_new();
	r->header_ids = rules_header_table_new();
	r->header_names = g_ptr_array_new_with_free_func(g_free);
	action_clear(&r->dflt);
	ld.r = r;
	ld.map = g_array_new(FALSE, FALSE, sizeof(src_pos));
	ld.errs = g_array_new(FALSE, FALSE, sizeof(load_error));
	ld.out = g_string_new(NULL);
	ld.bol = TRUE;
	ld.stack = g_ptr_array_new_with_free_func(g_free);
	ld.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

	if (path == NULL)
		rules_perr(&ld, NULL, 0, "no rules file given");
	else if (rules_include_file(&ld, path) && ld.errs->len == 0) {
		parsed = parse_expanded(&ld, &cfg);
		if (parsed)
			load_config(&ld, &cfg);
		/* Set to compare with and without the prefilter (tests). */
		if (g_getenv("CASEGATE_RULES_NO_PREFILTER") == NULL)
			rules_filter_build(r->filter);
		config_destroy(&cfg);
	}
	if (ld.errs->len > 0) {
		flush_errors(&ld, errors);
		g_clear_pointer(&r, rules_free);
	}
	g_array_free(ld.map, TRUE);
	g_array_free(ld.errs, TRUE);
	g_string_free(ld.out, TRUE);
	g_ptr_array_free(ld.stack, TRUE);
	g_hash_table_destroy(ld.seen);
	return r;
}

void
rules_free(rules *r)
{
	if (r == NULL)
		return;
	g_ptr_array_free(r->rules, TRUE);
	g_ptr_array_free(r->types, TRUE);
	g_ptr_array_free(r->teams, TRUE);
	g_ptr_array_free(r->fdefs, TRUE);
	action_clear(&r->dflt);
	rules_scratch_free(r->scratch);
	rules_filter_free(r->filter);
	g_hash_table_destroy(r->header_ids);
	g_ptr_array_free(r->header_names, TRUE);
	g_ptr_array_free(r->files, TRUE);
	g_free(r->path);
	g_free(r);
}

/* ---------------------------------------------------------------- */
/* Queries for casectl set-type / assign                             */

static const char *
plain_name(gconstpointer p)
{
	return p;
}

static const char *
type_name(gconstpointer p)
{
	return ((const rules_type *)p)->name;
}

static const char *
team_name(gconstpointer p)
{
	return ((const rules_team *)p)->name;
}

/* "A", "B", "C": the names of items, for an error message. */
static char *
name_list(GPtrArray *items, const char *(*name_of)(gconstpointer))
{
	GString *out = g_string_new(NULL);
	guint i;

	for (i = 0; items != NULL && i < items->len; i++)
		g_string_append_printf(out, "%s\"%s\"", i > 0 ? ", " : "",
		    name_of(g_ptr_array_index(items, i)));
	if (out->len == 0)
		g_string_append(out, "none");
	return g_string_free(out, FALSE);
}

gboolean
rules_taxonomy_valid(const rules *r, const char *type, const char *sub_type,
    const char *update_type, GError **error)
{
	const rules_type *t;
	g_autofree char *known = NULL;
	int i;

	if (type == NULL || *type == '\0' || (i = type_index(r, type)) < 0) {
		known = name_list(r->types, type_name);
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "unknown case type \"%s\" (known: %s)",
		    type != NULL ? type : "", known);
		return FALSE;
	}
	t = g_ptr_array_index(r->types, i);
	if (sub_type != NULL && *sub_type != '\0' && str_index(t->sub_types, sub_type) < 0) {
		known = name_list(t->sub_types, plain_name);
		g_set_error(error, CG_ERROR, CG_ERROR_PERM,
		    "unknown sub type \"%s\" of case type \"%s\" (known: %s)", sub_type, t->name,
		    known);
		return FALSE;
	}
	if (update_type != NULL && *update_type != '\0' &&
	    str_index(t->update_types, update_type) < 0) {
		known = name_list(t->update_types, plain_name);
		g_set_error(error, CG_ERROR, CG_ERROR_PERM,
		    "unknown update type \"%s\" of case type \"%s\" (known: %s)", update_type,
		    t->name, known);
		return FALSE;
	}
	return TRUE;
}

gboolean
rules_team_valid(const rules *r, const char *team, GError **error)
{
	g_autofree char *known = NULL;

	if (team != NULL && *team != '\0' && team_index(r, team) >= 0)
		return TRUE;
	known = name_list(r->teams, team_name);
	g_set_error(error, CG_ERROR, CG_ERROR_PERM, "unknown team \"%s\" (known: %s)",
	    team != NULL ? team : "", known);
	return FALSE;
}

/* ---- lookups for staff commands (#team, #type) ---- */

static gboolean
name_eq(const char *a, const char *b)
{
	g_autofree char *fa = g_utf8_casefold(a, -1);
	g_autofree char *fb = g_utf8_casefold(b, -1);

	return strcmp(fa, fb) == 0;
}

static const rules_team *
team_named(const rules *r, const char *team)
{
	guint i;

	for (i = 0; r != NULL && team != NULL && i < r->teams->len; i++) {
		const rules_team *t = g_ptr_array_index(r->teams, i);

		if (name_eq(t->name, team))
			return t;
	}
	return NULL;
}

const char *
rules_team_address(const rules *r, const char *team)
{
	const rules_team *t = team_named(r, team);

	return t != NULL ? t->address : NULL;
}

const char *
rules_team_name(const rules *r, const char *team)
{
	const rules_team *t = team_named(r, team);

	return t != NULL ? t->name : NULL;
}

static const char *
list_named(GPtrArray *a, const char *name)
{
	guint i;

	for (i = 0; a != NULL && i < a->len; i++)
		if (name_eq(g_ptr_array_index(a, i), name))
			return g_ptr_array_index(a, i);
	return NULL;
}

char *
rules_type_check(const rules *r, const char *const in[3], const char *out[3])
{
	const rules_type *t = NULL;
	guint i;

	out[0] = out[1] = out[2] = NULL;
	for (i = 0; r != NULL && in[0] != NULL && i < r->types->len; i++)
		if (name_eq(((rules_type *)g_ptr_array_index(r->types, i))->name, in[0]))
			t = g_ptr_array_index(r->types, i);
	if (t == NULL)
		return g_strdup_printf("unknown case type \"%s\"", in[0] != NULL ? in[0] : "");
	out[0] = t->name;
	if (in[1] != NULL && (out[1] = list_named(t->sub_types, in[1])) == NULL)
		return g_strdup_printf("\"%s\" is not a sub type of \"%s\"", in[1], t->name);
	if (in[1] == NULL && t->sub_types != NULL && t->sub_types->len > 0)
		return g_strdup_printf("case type \"%s\" needs a sub type (e.g. \"%s\")", t->name,
		    (char *)g_ptr_array_index(t->sub_types, 0));
	if (in[2] != NULL && (out[2] = list_named(t->update_types, in[2])) == NULL)
		return g_strdup_printf("\"%s\" is not an update type of \"%s\"", in[2], t->name);
	return NULL;
}
