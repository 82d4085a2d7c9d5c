/*
 * members.c - the member directory: CSV import, lookups, listings.
 *
 * Rationale:
 * - The CSV comes from another system (a spreadsheet, a membership
 *   database), so it is read as hostile: RFC 4180 quoting with line
 *   breaks inside quotes, CRLF or LF, a UTF-8 byte order mark; a NUL
 *   byte, bytes that are not UTF-8, a stray quote or a quoted field
 *   that never ends are errors with the line where the row starts, not
 *   guesses.
 * - All or nothing: every row is checked (and every problem reported,
 *   up to a limit) before anything is written, and the writing happens
 *   in one transaction, so a directory is never half imported.
 * - The header names the columns, so an export with the columns in
 *   another order, or in French, still loads; an unknown column is an
 *   error rather than silently ignored data.
 * - An address belongs to one member: the same address on two rows is
 *   an error, since casegate could not tell whose case a mail is.
 */
#include <string.h>

#include "cg.h"
#include "json.h"
#include "lang.h"
#include "members.h"

#define NUMBER_MAX	64	/* bytes of a member number */
#define NAME_MAX_CHARS	200	/* characters of a name */

enum col { COL_NUMBER, COL_NAME, COL_ADDRESSES, COL_LANG, COL_N };

static const struct {
	const char *name;	/* casefolded, single spaces */
	enum col col;
} col_names[] = {
	{ "member number", COL_NUMBER }, { "number", COL_NUMBER }, { "member", COL_NUMBER },
	{ "member no", COL_NUMBER }, { "member no.", COL_NUMBER }, { "no", COL_NUMBER },
	{ "id", COL_NUMBER }, { "member id", COL_NUMBER }, { "numéro", COL_NUMBER },
	{ "numero", COL_NUMBER }, { "numéro de membre", COL_NUMBER }, { "n°", COL_NUMBER },
	{ "name", COL_NAME }, { "full name", COL_NAME }, { "nom", COL_NAME },
	{ "email addresses", COL_ADDRESSES }, { "email address", COL_ADDRESSES },
	{ "email", COL_ADDRESSES }, { "emails", COL_ADDRESSES }, { "e-mail", COL_ADDRESSES },
	{ "e-mails", COL_ADDRESSES }, { "addresses", COL_ADDRESSES },
	{ "address", COL_ADDRESSES }, { "adresses", COL_ADDRESSES },
	{ "adresse", COL_ADDRESSES }, { "courriel", COL_ADDRESSES },
	{ "courriels", COL_ADDRESSES }, { "adresses e-mail", COL_ADDRESSES },
	{ "language", COL_LANG }, { "lang", COL_LANG }, { "langue", COL_LANG },
};

/* ---- reading CSV records ---- */

typedef struct {
	const char *p, *end;
	const char *name;
	int	 line;		/* physical line of p */
	GPtrArray *errors;
	int	 nerrors;
} csv_reader;

static void csv_error(csv_reader *r, int line, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
csv_error(csv_reader *r, int line, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	if (r->nerrors++ == MEMBERS_ERRORS_MAX) {
		g_ptr_array_add(r->errors, g_strdup_printf("%s: more than %d errors; the rest "
		    "are not shown", r->name, MEMBERS_ERRORS_MAX));
		return;
	}
	if (r->nerrors > MEMBERS_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_ptr_array_add(r->errors, g_strdup_printf("%s:%d: %s", r->name, line, msg));
}

/* Skip to the start of the next line (after a broken record). */
static void
skip_line(csv_reader *r)
{
	while (r->p < r->end && *r->p != '\n')
		r->p++;
	if (r->p < r->end) {
		r->p++;
		r->line++;
	}
}

/* At a line end (LF or CRLF) or the end of the data: consume it. */
static gboolean
at_eol(csv_reader *r)
{
	if (r->p >= r->end)
		return TRUE;
	if (*r->p == '\n' || (*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n')) {
		r->p += *r->p == '\r' ? 2 : 1;
		r->line++;
		return TRUE;
	}
	return FALSE;
}

/* A quoted field from after its opening quote; FALSE on a broken one. */
static gboolean
quoted_field(csv_reader *r, int start, GString *f)
{
	for (;;) {
		if (r->p >= r->end) {
			csv_error(r, start, "a quoted field that starts on this row is never "
			    "closed (a quote inside a field must be doubled: \"\")");
			return FALSE;
		}
		if (*r->p == '"') {
			if (r->p + 1 < r->end && r->p[1] == '"') {
				g_string_append_c(f, '"');
				r->p += 2;
				continue;
			}
			r->p++;
			return TRUE;
		}
		if (*r->p == '\n')
			r->line++;
		g_string_append_c(f, *r->p++);
	}
}

/*
 * The next record into fields (char *); *line_r is where it starts.
 * FALSE at the end of the data.  A broken record is reported, skipped
 * and returned with *broken_r set.
 */
static gboolean
csv_record(csv_reader *r, GPtrArray *fields, int *line_r, gboolean *broken_r)
{
	GString *f = g_string_new(NULL);

	g_ptr_array_set_size(fields, 0);
	*broken_r = FALSE;
	*line_r = r->line;
	if (r->p >= r->end) {
		g_string_free(f, TRUE);
		return FALSE;
	}
	for (;;) {
		g_string_truncate(f, 0);
		if (r->p < r->end && *r->p == '"') {
			r->p++;
			if (!quoted_field(r, *line_r, f))
				goto broken;
			if (r->p < r->end && *r->p != ',' && !at_eol(r)) {
				csv_error(r, *line_r, "text after the closing quote of field %u (a "
				    "quote inside a field must be doubled: \"\")", fields->len + 1);
				goto broken;
			}
		} else {
			while (r->p < r->end && *r->p != ',' && *r->p != '\n' &&
			    !(*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n')) {
				if (*r->p == '"') {
					csv_error(r, *line_r, "a quote inside unquoted field %u (put "
					    "the whole field in quotes and double the quote)",
					    fields->len + 1);
					goto broken;
				}
				g_string_append_c(f, *r->p++);
			}
		}
		g_ptr_array_add(fields, g_strndup(f->str, f->len));
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		at_eol(r);
		g_string_free(f, TRUE);
		return TRUE;
	}
broken:
	g_string_free(f, TRUE);
	skip_line(r);
	*broken_r = TRUE;
	return TRUE;
}

/* ---- checking rows ---- */

static gboolean
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return TRUE;
	return FALSE;
}

/* "Member  Number" -> "member number" */
static char *
column_key(const char *s)
{
	g_autofree char *folded = g_utf8_casefold(s, -1);
	g_auto(GStrv) words = g_strsplit_set(g_strstrip(folded), " \t_", 0);
	GString *out = g_string_new(NULL);
	guint i;

	for (i = 0; words[i] != NULL; i++) {
		if (*words[i] == '\0')
			continue;
		if (out->len > 0)
			g_string_append_c(out, ' ');
		g_string_append(out, words[i]);
	}
	return g_string_free(out, FALSE);
}

/* Map the header's columns; FALSE (reported) when it is unusable. */
static gboolean
read_header(csv_reader *r, GPtrArray *fields, int line, int map[COL_N])
{
	gboolean ok = TRUE;
	guint i;
	size_t k;

	for (k = 0; k < COL_N; k++)
		map[k] = -1;
	for (i = 0; i < fields->len; i++) {
		const char *raw = g_ptr_array_index(fields, i);
		g_autofree char *key = NULL;

		if (!g_utf8_validate(raw, -1, NULL) || has_control(raw)) {
			csv_error(r, line, "column %u of the header is not UTF-8 text", i + 1);
			ok = FALSE;
			continue;
		}
		key = column_key(raw);
		for (k = 0; k < G_N_ELEMENTS(col_names); k++)
			if (strcmp(key, col_names[k].name) == 0)
				break;
		if (k == G_N_ELEMENTS(col_names)) {
			csv_error(r, line, "unknown column \"%s\" (the first row must name the "
			    "columns: member number, name, email addresses, language)", raw);
			ok = FALSE;
		} else if (map[col_names[k].col] >= 0) {
			csv_error(r, line, "column \"%s\" is given twice", raw);
			ok = FALSE;
		} else
			map[col_names[k].col] = (int)i;
	}
	if (ok && map[COL_NUMBER] < 0)
		csv_error(r, line, "no member number column (the first row must name the "
		    "columns: member number, name, email addresses, language)");
	if (ok && map[COL_ADDRESSES] < 0)
		csv_error(r, line, "no email addresses column (the first row must name the "
		    "columns: member number, name, email addresses, language)");
	return ok && map[COL_NUMBER] >= 0 && map[COL_ADDRESSES] >= 0;
}

static const char *
cell(GPtrArray *fields, const int map[COL_N], enum col c)
{
	return map[c] >= 0 ? g_ptr_array_index(fields, map[c]) : "";
}

/* Split and check the addresses of one row into m->addresses. */
static gboolean
row_addresses(csv_reader *r, int line, const char *s, store_member *m)
{
	g_auto(GStrv) parts = g_strsplit_set(s, ";, \t\r\n", 0);
	gboolean ok = TRUE;
	guint i, j;

	for (i = 0; parts[i] != NULL; i++) {
		g_autofree char *a = g_ascii_strdown(parts[i], -1);
		gboolean dup = FALSE;

		if (*a == '\0')
			continue;
		if (!cg_address_valid(a)) {
			g_autofree char *shown = g_strescape(parts[i], NULL);

			csv_error(r, line, "\"%.80s\" is not a mail address", shown);
			ok = FALSE;
			continue;
		}
		for (j = 0; j < m->addresses->len && !dup; j++)
			dup = strcmp(a, g_ptr_array_index(m->addresses, j)) == 0;
		if (!dup)
			g_ptr_array_add(m->addresses, g_steal_pointer(&a));
	}
	if (ok && m->addresses->len == 0) {
		csv_error(r, line, "member %s has no email address", m->number);
		ok = FALSE;
	}
	return ok;
}

/* One data row into a member; NULL (reported) when it is bad. */
static store_member *
read_row(csv_reader *r, GPtrArray *fields, int line, const int map[COL_N], guint ncols)
{
	g_autoptr(store_member) m = g_new0(store_member, 1);
	g_autofree char *lang = NULL;
	gboolean ok = TRUE;
	guint i;

	m->addresses = g_ptr_array_new_with_free_func(g_free);
	if (fields->len != ncols) {
		csv_error(r, line, "%u fields, but the header has %u (a comma inside a field "
		    "needs quotes)", fields->len, ncols);
		return NULL;
	}
	for (i = 0; i < fields->len; i++)
		if (!g_utf8_validate(g_ptr_array_index(fields, i), -1, NULL)) {
			csv_error(r, line, "field %u is not valid UTF-8 (save the file as UTF-8)",
			    i + 1);
			return NULL;
		}
	m->number = g_strstrip(g_strdup(cell(fields, map, COL_NUMBER)));
	m->name = g_strstrip(g_strdup(cell(fields, map, COL_NAME)));
	if (*m->number == '\0') {
		csv_error(r, line, "no member number");
		ok = FALSE;
	} else if (strlen(m->number) > NUMBER_MAX || has_control(m->number) ||
	    strchr(m->number, '@') != NULL) {
		csv_error(r, line, "member number \"%.*s\" must be at most %d bytes, without "
		    "'@' or control characters", 40, m->number, NUMBER_MAX);
		ok = FALSE;
	}
	if (has_control(m->name) || g_utf8_strlen(m->name, -1) > NAME_MAX_CHARS) {
		csv_error(r, line, "the name must be one line of at most %d characters",
		    NAME_MAX_CHARS);
		ok = FALSE;
	}
	lang = g_strstrip(g_strdup(cell(fields, map, COL_LANG)));
	if (*lang != '\0' && (m->lang = g_strdup(lang_normalise(lang))) == NULL) {
		g_autofree char *shown = g_strescape(lang, NULL);

		csv_error(r, line, "unknown language \"%.40s\" (casegate writes %s; leave it "
		    "empty when not known)", shown, lang_known());
		ok = FALSE;
	}
	if (ok && !row_addresses(r, line, cell(fields, map, COL_ADDRESSES), m))
		ok = FALSE;
	return ok ? g_steal_pointer(&m) : NULL;
}

void
members_entry_free(members_entry *e)
{
	if (e == NULL)
		return;
	store_member_free(e->m);
	g_free(e);
}

/* A row of nothing but empty fields. */
static gboolean
blank_record(GPtrArray *fields)
{
	guint i;

	for (i = 0; i < fields->len; i++) {
		const char *s = g_ptr_array_index(fields, i);

		if (s[strspn(s, " \t")] != '\0')
			return FALSE;
	}
	return TRUE;
}

/* Numbers and addresses must be unique across the file. */
static void
check_unique(csv_reader *r, members_entry *e, GHashTable *numbers, GHashTable *addrs)
{
	gpointer prev;
	guint i;

	if ((prev = g_hash_table_lookup(numbers, e->m->number)) != NULL)
		csv_error(r, e->line, "member number %s is also on line %d", e->m->number,
		    ((members_entry *)prev)->line);
	else
		g_hash_table_insert(numbers, e->m->number, e);
	for (i = 0; i < e->m->addresses->len; i++) {
		const char *a = g_ptr_array_index(e->m->addresses, i);
		members_entry *other = g_hash_table_lookup(addrs, a);

		if (other != NULL)
			csv_error(r, e->line, "address %s is also given for member %s on line %d; "
			    "an address can belong to one member only", a, other->m->number,
			    other->line);
		else
			g_hash_table_insert(addrs, (gpointer)a, e);
	}
}

GPtrArray *
members_csv_parse(const char *data, gsize len, const char *name, GPtrArray *errors)
{
	csv_reader r = { data, data + len, name, 1, errors, 0 };
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(
	    (GDestroyNotify)members_entry_free);
	g_autoptr(GPtrArray) fields = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) numbers = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) addrs = g_hash_table_new(g_str_hash, g_str_equal);
	const char *nul;
	gboolean header = FALSE, broken;
	int map[COL_N], line;
	guint ncols = 0;

	if (len > MEMBERS_CSV_MAX) {
		g_ptr_array_add(errors, g_strdup_printf("%s: larger than %d MiB", name,
		    MEMBERS_CSV_MAX >> 20));
		return NULL;
	}
	if ((nul = memchr(data, '\0', len)) != NULL) {
		int l = 1;
		const char *p;

		for (p = data; p < nul; p++)
			l += *p == '\n';
		csv_error(&r, l, "a NUL byte: this is not a text file");
		return NULL;
	}
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		r.p += 3;	/* UTF-8 byte order mark (spreadsheets write one) */
	while (csv_record(&r, fields, &line, &broken)) {
		store_member *m;
		members_entry *e;

		if (broken || blank_record(fields))
			continue;
		if (!header) {
			header = TRUE;
			if (!read_header(&r, fields, line, map))
				return NULL;
			ncols = fields->len;
			continue;
		}
		if ((m = read_row(&r, fields, line, map, ncols)) == NULL)
			continue;
		e = g_new0(members_entry, 1);
		e->m = m;
		e->line = line;
		g_ptr_array_add(out, e);
		check_unique(&r, e, numbers, addrs);
	}
	if (!header)
		csv_error(&r, 1, "no header row (member number, name, email addresses, "
		    "language) and no members");
	if (r.nerrors > 0)
		return NULL;
	return g_steal_pointer(&out);
}

/* ---- writing the directory ---- */

/* Addresses that belong to members the file does not mention (without replace). */
static gboolean
check_owners(store *st, GPtrArray *entries, const char *name, GPtrArray *errors,
    GError **error)
{
	g_autoptr(GHashTable) numbers = g_hash_table_new(g_str_hash, g_str_equal);
	guint i, j, before = errors->len;

	for (i = 0; i < entries->len; i++)
		g_hash_table_add(numbers, ((members_entry *)g_ptr_array_index(entries, i))->m->number);
	for (i = 0; i < entries->len; i++) {
		const members_entry *e = g_ptr_array_index(entries, i);

		for (j = 0; j < e->m->addresses->len; j++) {
			const char *a = g_ptr_array_index(e->m->addresses, j);
			g_autoptr(store_member) owner = store_member_get(st, NULL, a, error);

			if (owner == NULL && error != NULL && *error != NULL)
				return FALSE;
			if (owner != NULL && !g_hash_table_contains(numbers, owner->number))
				g_ptr_array_add(errors, g_strdup_printf("%s:%d: address %s belongs to "
				    "member %s in the directory, who is not in this file (give them "
				    "another address, or import with --replace to make this file the "
				    "whole directory)", name, e->line, a, owner->number));
		}
	}
	return errors->len == before;
}

gboolean
members_import(store *st, GPtrArray *entries, gboolean replace, const char *name,
    GPtrArray *errors, int *added_r, int *updated_r, GError **error)
{
	int added = 0, updated = 0;
	guint i;

	if (!replace) {
		GError *e = NULL;

		if (!check_owners(st, entries, name, errors, &e)) {
			if (e != NULL)
				g_propagate_error(error, e);
			return FALSE;
		}
	}
	for (i = 0; i < entries->len; i++) {
		const members_entry *e = g_ptr_array_index(entries, i);
		g_autoptr(store_member) old = store_member_get(st, e->m->number, NULL, error);

		if (old == NULL && error != NULL && *error != NULL)
			return FALSE;
		if (old != NULL)
			updated++;
		else
			added++;
	}
	if (replace && !store_members_clear(st, error))
		return FALSE;
	/* First without addresses: an address may move between two members of the file. */
	for (i = 0; i < entries->len; i++) {
		store_member bare = *((members_entry *)g_ptr_array_index(entries, i))->m;

		bare.addresses = NULL;
		if (!store_member_put(st, &bare, error))
			return FALSE;
	}
	for (i = 0; i < entries->len; i++)
		if (!store_member_put(st, ((members_entry *)g_ptr_array_index(entries, i))->m,
		    error))
			return FALSE;
	if (added_r != NULL)
		*added_r = added;
	if (updated_r != NULL)
		*updated_r = updated;
	return TRUE;
}

const char *
members_case_lang(const config *cfg, store *st, const store_case *c)
{
	g_autoptr(store_member) m = NULL;
	const char *code;

	if (c == NULL)
		return lang_default(cfg);
	m = store_member_get(st, NULL, c->member, NULL);
	if (m != NULL && (code = lang_normalise(m->lang)) != NULL)
		return code;
	if ((code = lang_normalise(c->lang)) != NULL)
		return code;
	return lang_default(cfg);
}

/* ---- listings ---- */

static void
member_json(GString *out, const store_member *m)
{
	gboolean first = TRUE;
	guint i;

	g_string_append_c(out, '{');
	json_member_str(out, &first, "number", m->number);
	json_member_str(out, &first, "name", m->name);
	json_member_str(out, &first, "language", m->lang);
	g_string_append(out, ",\"addresses\":[");
	for (i = 0; i < m->addresses->len; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		json_string(out, g_ptr_array_index(m->addresses, i));
	}
	g_string_append(out, "]");
	json_member_int(out, &first, "updated", m->updated);
	g_string_append_c(out, '}');
}

static char *
join_addresses(const store_member *m)
{
	g_autofree char **v = g_new0(char *, m->addresses->len + 1);
	guint i;

	for (i = 0; i < m->addresses->len; i++)
		v[i] = g_ptr_array_index(m->addresses, i);
	return g_strjoinv(" ", v);
}

gboolean
members_print_list(store *st, gboolean json, FILE *out, GError **error)
{
	g_autoptr(GPtrArray) all = store_member_list(st, error);
	GString *s;
	guint i;

	if (all == NULL)
		return FALSE;
	s = g_string_new(json ? "[" : NULL);
	if (!json)
		g_string_append_printf(s, "%-12s %-4s %-30s %s\n", "NUMBER", "LANG", "NAME",
		    "ADDRESSES");
	for (i = 0; i < all->len; i++) {
		const store_member *m = g_ptr_array_index(all, i);
		g_autofree char *addrs = NULL;

		if (json) {
			if (i > 0)
				g_string_append_c(s, ',');
			member_json(s, m);
			continue;
		}
		addrs = join_addresses(m);
		g_string_append_printf(s, "%-12s %-4s %-30s %s\n", m->number,
		    m->lang != NULL ? m->lang : "-", *m->name != '\0' ? m->name : "-", addrs);
	}
	if (json)
		g_string_append(s, "]\n");
	fputs(s->str, out);
	g_string_free(s, TRUE);
	return TRUE;
}

/* The cases from any of m's addresses, newest first. */
static GPtrArray *
member_cases(store *st, const store_member *m, GError **error)
{
	GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)store_case_free);
	guint i;

	for (i = 0; i < m->addresses->len; i++) {
		store_filter f = { 0 };
		g_autoptr(GPtrArray) some = NULL;

		f.member = g_ptr_array_index(m->addresses, i);
		if ((some = store_case_list(st, &f, error)) == NULL) {
			g_ptr_array_unref(all);
			return NULL;
		}
		while (some->len > 0)
			g_ptr_array_add(all, g_ptr_array_steal_index(some, 0));
	}
	return all;
}

gboolean
members_print_one(store *st, const char *key, gboolean json, FILE *out, GError **error)
{
	gboolean by_addr = key != NULL && strchr(key, '@') != NULL;
	g_autoptr(store_member) m = NULL;
	g_autoptr(GPtrArray) cases = NULL;
	g_autofree char *addrs = NULL;
	GString *s;
	guint i;

	if (key == NULL || *key == '\0' || !g_utf8_validate(key, -1, NULL)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "give a member number or an address");
		return FALSE;
	}
	m = store_member_get(st, by_addr ? NULL : key, by_addr ? key : NULL, error);
	if (m == NULL) {
		g_autofree char *shown = g_strescape(key, NULL);

		if (error != NULL && *error != NULL)
			return FALSE;
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "no member %s \"%.60s\" in the "
		    "directory", by_addr ? "with the address" : "number", shown);
		return FALSE;
	}
	if ((cases = member_cases(st, m, error)) == NULL)
		return FALSE;
	s = g_string_new(NULL);
	if (json) {
		member_json(s, m);
		g_string_truncate(s, s->len - 1);
		g_string_append(s, ",\"cases\":[");
		for (i = 0; i < cases->len; i++) {
			const store_case *c = g_ptr_array_index(cases, i);
			gboolean first = TRUE;

			g_string_append(s, i > 0 ? ",{" : "{");
			json_member_str(s, &first, "id", c->public_id);
			json_member_str(s, &first, "status", c->status);
			json_member_str(s, &first, "subject", c->subject);
			json_member_str(s, &first, "member", c->member);
			g_string_append_c(s, '}');
		}
		g_string_append(s, "]}\n");
	} else {
		addrs = join_addresses(m);
		g_string_append_printf(s, "Member:      %s\nName:        %s\nLanguage:    %s\n"
		    "Addresses:   %s\nCases:       %u\n", m->number, *m->name ? m->name : "-",
		    m->lang != NULL ? m->lang : "- (from their mail, else the default)", addrs,
		    cases->len);
		for (i = 0; i < cases->len; i++) {
			const store_case *c = g_ptr_array_index(cases, i);

			g_string_append_printf(s, "  %-12s %-8s %s <%s>\n", c->public_id, c->status,
			    c->subject, c->member);
		}
	}
	fputs(s->str, out);
	g_string_free(s, TRUE);
	return TRUE;
}
