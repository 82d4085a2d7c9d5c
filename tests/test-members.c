/*
 * test-members.c - the member directory: CSV parsing (a table of good
 * and hostile files: quoting, line breaks inside quotes, BOM, CRLF, NUL,
 * invalid UTF-8, duplicate numbers and addresses), importing into the
 * store (all or nothing, addresses moving between members, --replace),
 * and the language chosen for a case's member.
 */
#include <string.h>
#include <glib/gstdio.h>

#include "cg.h"
#include "config.h"
#include "members.h"
#include "store.h"

#define HDR	"member number,name,email addresses,language\n"

static const struct {
	const char *csv;	/* "\0" inside is written as "\\0" below, see test_nul */
	int	 count;		/* members parsed; -1: must fail */
	const char *error;	/* with count -1: a substring of one error ("m.csv:LINE: ...") */
} rows[] = {
	/* good files */
	{ HDR "1,Alice Martin,alice@example.test,en\n2,Élodie Roy,elodie@example.test,fr\n",
	  2, NULL },
	{ "\xef\xbb\xbf" "Member Number,Name,Email Addresses,Language\r\n"
	  "1,Alice,alice@example.test,EN\r\n2,Bob,bob@example.test,\r\n", 2, NULL },
	{ "Nom,Numéro,Courriel,Langue\nRoy,7,r@example.test,français\n", 1, NULL },
	{ "number,emails\n1,a@example.test\n", 1, NULL },	/* name and language optional */
	{ HDR "\n\n1,A,a@example.test,en\n,,,\n", 1, NULL },	/* blank rows skipped */
	{ HDR "1,\"Doe, \"\"JD\"\" John\",a@example.test,en\n", 1, NULL },
	{ HDR "1,A,\"a@example.test\nb@example.test\",en\n2,B,c@example.test,fr", 2, NULL },
	{ HDR "1,A,a@example.test; b@example.test  A@example.test,en\n", 1, NULL },
	/* hostile and broken files: file:line of the row, nothing imported */
	{ "", -1, "m.csv:1: no header row" },
	{ "\xef\xbb\xbf", -1, "m.csv:1: no header row" },
	{ "member number,colour\n", -1, "m.csv:1: unknown column \"colour\"" },
	{ "name,language\n", -1, "m.csv:1: no member number column" },
	{ "number,name\n", -1, "m.csv:1: no email addresses column" },
	{ "number,number,email\n", -1, "m.csv:1: column \"number\" is given twice" },
	{ HDR "1,A,a@example.test,en\n2,B,\"b@example.test,fr\n", -1,
	  "m.csv:3: a quoted field that starts on this row is never closed" },
	{ HDR "1,\"A\"x,a@example.test,en\n", -1, "m.csv:2: text after the closing quote" },
	{ HDR "1,A \"the\" B,a@example.test,en\n", -1, "m.csv:2: a quote inside unquoted field 2" },
	{ HDR "1,\"Alice\nMartin\",a@example.test,en\n", -1,
	  "m.csv:2: the name must be one line" },
	{ HDR "1,A\xff,a@example.test,en\n", -1, "m.csv:2: field 2 is not valid UTF-8" },
	{ HDR "1,A,a@example.test,en\n2,B,a@example.test,fr\n", -1,
	  "m.csv:3: address a@example.test is also given for member 1 on line 2" },
	{ HDR "1,A,a@example.test,en\n2,B,A@EXAMPLE.TEST,fr\n", -1,
	  "m.csv:3: address a@example.test is also given for member 1" },
	{ HDR "1,A,a@example.test,en\n1,B,b@example.test,fr\n", -1,
	  "m.csv:3: member number 1 is also on line 2" },
	{ HDR "1,A,a@example.test\n", -1, "m.csv:2: 3 fields, but the header has 4" },
	{ HDR "1,A,a@example.test,en,x\n", -1, "m.csv:2: 5 fields, but the header has 4" },
	{ HDR "1,A,a@example.test,de\n", -1, "m.csv:2: unknown language \"de\"" },
	{ HDR "1,A,not-an-address,en\n", -1, "m.csv:2: \"not-an-address\" is not a mail address" },
	{ HDR "1,A,\"a@example.test\r\nRCPT TO:<x@evil.test>\",en\n", -1,
	  "is not a mail address" },
	{ HDR "1,A,,en\n", -1, "m.csv:2: member 1 has no email address" },
	{ HDR ",A,a@example.test,en\n", -1, "m.csv:2: no member number" },
	{ HDR "a@b,A,a@example.test,en\n", -1, "m.csv:2: member number" },
	/* a line break inside quotes moves the line count on */
	{ HDR "1,A,\"a@example.test\nb@example.test\",en\n2,B,bad,fr\n", -1,
	  "m.csv:4: \"bad\" is not a mail address" },
};

static gboolean
has_error(GPtrArray *errors, const char *needle)
{
	guint i;

	for (i = 0; i < errors->len; i++)
		if (strstr(g_ptr_array_index(errors, i), needle) != NULL)
			return TRUE;
	return FALSE;
}

static void
dump(GPtrArray *errors)
{
	guint i;

	for (i = 0; i < errors->len; i++)
		g_printerr("#   %s\n", (char *)g_ptr_array_index(errors, i));
}

static void
test_parse_table(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GPtrArray) out = members_csv_parse(rows[i].csv, strlen(rows[i].csv),
		    "m.csv", errors);

		if (rows[i].count >= 0) {
			if (out == NULL) {
				dump(errors);
				g_error("row %zu: parse failed", i);
			}
			g_assert_cmpint(out->len, ==, rows[i].count);
			g_assert_cmpint(errors->len, ==, 0);
			continue;
		}
		if (out != NULL)
			g_error("row %zu: parsed %u members, want an error \"%s\"", i, out->len,
			    rows[i].error);
		if (!has_error(errors, rows[i].error)) {
			dump(errors);
			g_error("row %zu: no error like \"%s\"", i, rows[i].error);
		}
	}
}

/* What the good rows hold, field by field. */
static void
test_parse_fields(void)
{
	const char *csv = "\xef\xbb\xbf" "Email,Langue,Numéro,Nom\r\n"
	    "\"x@example.test; Y@Example.Test\",fr-CA, 42 ,\"Roy, \"\"Élodie\"\"\"\r\n"
	    "z@example.test,,7,\r\n";
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) out = members_csv_parse(csv, strlen(csv), "m.csv", errors);
	const members_entry *e;

	g_assert_nonnull(out);
	g_assert_cmpint(out->len, ==, 2);
	e = g_ptr_array_index(out, 0);
	g_assert_cmpstr(e->m->number, ==, "42");
	g_assert_cmpstr(e->m->name, ==, "Roy, \"Élodie\"");
	g_assert_cmpstr(e->m->lang, ==, "fr");
	g_assert_cmpint(e->m->addresses->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(e->m->addresses, 0), ==, "x@example.test");
	g_assert_cmpstr(g_ptr_array_index(e->m->addresses, 1), ==, "y@example.test");
	g_assert_cmpint(e->line, ==, 2);
	e = g_ptr_array_index(out, 1);
	g_assert_cmpstr(e->m->number, ==, "7");
	g_assert_cmpstr(e->m->name, ==, "");
	g_assert_null(e->m->lang);
	g_assert_cmpint(e->line, ==, 3);
}

static void
test_parse_nul(void)
{
	const char csv[] = HDR "1,A,a@example.test,en\n2,B\0,b@example.test,fr\n";
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

	g_assert_null(members_csv_parse(csv, sizeof(csv) - 1, "m.csv", errors));
	g_assert_true(has_error(errors, "m.csv:3: a NUL byte"));
}

/* Every bad row is reported, not only the first; the list is capped. */
static void
test_parse_many_errors(void)
{
	GString *csv = g_string_new(HDR);
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	int i;

	g_string_append(csv, "1,A,bad1,en\n2,B,b@example.test,xx\n");
	g_assert_null(members_csv_parse(csv->str, csv->len, "m.csv", errors));
	g_assert_cmpint(errors->len, ==, 2);
	g_assert_true(has_error(errors, "m.csv:2:"));
	g_assert_true(has_error(errors, "m.csv:3:"));
	g_ptr_array_set_size(errors, 0);
	for (i = 0; i < 500; i++)
		g_string_append_printf(csv, "%d,X,nope,en\n", i + 10);
	g_assert_null(members_csv_parse(csv->str, csv->len, "m.csv", errors));
	g_assert_cmpint(errors->len, ==, MEMBERS_ERRORS_MAX + 1);
	g_assert_true(has_error(errors, "the rest are not shown"));
	g_string_free(csv, TRUE);
}

/* ---- importing ---- */

typedef struct {
	char	*dir;
	store	*st;
} fixture;

static void
setup(fixture *f)
{
	GError *e = NULL;
	g_autofree char *db = NULL;

	f->dir = g_dir_make_tmp("test-members-XXXXXX", &e);
	g_assert_no_error(e);
	db = g_build_filename(f->dir, "cases.db", NULL);
	f->st = store_open(db, &e);
	g_assert_no_error(e);
}

static void
teardown(fixture *f)
{
	g_autofree char *db = g_build_filename(f->dir, "cases.db", NULL);
	g_autofree char *wal = g_strconcat(db, "-wal", NULL);
	g_autofree char *shm = g_strconcat(db, "-shm", NULL);

	store_close(f->st);
	g_unlink(db);
	g_unlink(wal);
	g_unlink(shm);
	g_rmdir(f->dir);
	g_free(f->dir);
}

/* Parse and import csv in one transaction, rolled back on failure like casectl does. */
static gboolean
import(fixture *f, const char *csv, gboolean replace, GPtrArray *errors, int *added,
    int *updated)
{
	g_autoptr(GPtrArray) entries = members_csv_parse(csv, strlen(csv), "m.csv", errors);
	GError *e = NULL;
	gboolean ok;

	if (entries == NULL)
		return FALSE;
	g_assert_true(store_begin(f->st, &e));
	ok = members_import(f->st, entries, replace, "m.csv", errors, added, updated, &e);
	g_assert_no_error(e);
	if (!ok) {
		store_rollback(f->st);
		return FALSE;
	}
	g_assert_true(store_commit(f->st, &e));
	g_assert_no_error(e);
	return TRUE;
}

static char *
owner(fixture *f, const char *addr)
{
	GError *e = NULL;
	g_autoptr(store_member) m = store_member_get(f->st, NULL, addr, &e);

	g_assert_no_error(e);
	return m != NULL ? g_strdup(m->number) : NULL;
}

static void
test_import(void)
{
	fixture f;
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(store_member) m = NULL;
	g_autofree char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *o5 = NULL;
	int added = -1, updated = -1;

	setup(&f);
	g_assert_true(import(&f, HDR "1,Alice,alice@example.test;alice@home.test,en\n"
	    "2,Élodie,elodie@example.test,fr\n3,Carl,carl@example.test,\n", FALSE, errors, &added,
	    &updated));
	g_assert_cmpint(added, ==, 3);
	g_assert_cmpint(updated, ==, 0);
	m = store_member_get(f.st, NULL, "ALICE@home.test", NULL);
	g_assert_nonnull(m);
	g_assert_cmpstr(m->number, ==, "1");
	g_assert_cmpstr(m->lang, ==, "en");
	g_assert_cmpint(m->addresses->len, ==, 2);
	g_clear_pointer(&m, store_member_free);
	m = store_member_get(f.st, "3", NULL, NULL);
	g_assert_nonnull(m);
	g_assert_null(m->lang);
	g_clear_pointer(&m, store_member_free);

	/* an address moves from member 1 to member 2, both in the file */
	g_assert_true(import(&f, HDR "1,Alice,alice@example.test,en\n"
	    "2,Élodie,elodie@example.test alice@home.test,fr\n", FALSE, errors, &added, &updated));
	g_assert_cmpint(added, ==, 0);
	g_assert_cmpint(updated, ==, 2);
	o1 = owner(&f, "alice@home.test");
	g_assert_cmpstr(o1, ==, "2");

	/* an address of member 3, who is not in the file: refused, nothing changes */
	g_assert_false(import(&f, HDR "1,Alice B,alice@example.test carl@example.test,fr\n",
	    FALSE, errors, NULL, NULL));
	g_assert_true(has_error(errors, "m.csv:2: address carl@example.test belongs to member 3"));
	o2 = owner(&f, "carl@example.test");
	g_assert_cmpstr(o2, ==, "3");
	m = store_member_get(f.st, "1", NULL, NULL);
	g_assert_cmpstr(m->name, ==, "Alice");	/* the rolled-back import changed nothing */
	g_assert_cmpstr(m->lang, ==, "en");
	g_clear_pointer(&m, store_member_free);

	/* a bad file changes nothing either */
	g_ptr_array_set_size(errors, 0);
	g_assert_false(import(&f, HDR "1,Alice C,alice@example.test,en\n9,X,\"open,en\n", FALSE,
	    errors, NULL, NULL));
	m = store_member_get(f.st, "1", NULL, NULL);
	g_assert_cmpstr(m->name, ==, "Alice");
	g_clear_pointer(&m, store_member_free);

	/* --replace: the directory becomes the file */
	g_ptr_array_set_size(errors, 0);
	g_assert_true(import(&f, HDR "1,Alice B,alice@example.test carl@example.test,fr\n",
	    TRUE, errors, &added, &updated));
	g_assert_cmpint(updated, ==, 1);
	o3 = owner(&f, "carl@example.test");
	g_assert_cmpstr(o3, ==, "1");
	o4 = owner(&f, "elodie@example.test");
	g_assert_null(o4);
	all = store_member_list(f.st, NULL);
	g_assert_cmpint(all->len, ==, 1);
	o5 = owner(&f, "nobody@example.test");
	g_assert_null(o5);
	teardown(&f);
}

static void
test_case_lang(void)
{
	fixture f;
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	config cfg = { 0 };
	store_case c = { 0 };

	setup(&f);
	g_assert_true(import(&f, HDR "1,Élodie,elodie@example.test,fr\n2,Carl,carl@example.test,\n",
	    FALSE, errors, NULL, NULL));
	c.member = "ELODIE@example.test";
	c.lang = "en";
	g_assert_cmpstr(members_case_lang(&cfg, f.st, &c), ==, "fr");	/* the directory first */
	c.member = "carl@example.test";	/* in the directory without a language */
	g_assert_cmpstr(members_case_lang(&cfg, f.st, &c), ==, "en");
	c.lang = "fr";
	g_assert_cmpstr(members_case_lang(&cfg, f.st, &c), ==, "fr");	/* then the case's */
	c.member = "stranger@example.test";
	c.lang = NULL;
	g_assert_cmpstr(members_case_lang(&cfg, f.st, &c), ==, "en");	/* then the default */
	cfg.language = "fr";
	g_assert_cmpstr(members_case_lang(&cfg, f.st, &c), ==, "fr");
	g_assert_cmpstr(members_case_lang(&cfg, f.st, NULL), ==, "fr");
	teardown(&f);
}

/* The listings print what was imported; show on an unknown key fails. */
static void
test_print(void)
{
	fixture f;
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *path = NULL, *text = NULL;
	GError *e = NULL;
	FILE *fp;

	setup(&f);
	g_assert_true(import(&f, HDR "7,\"Roy, \"\"É\"\"\",e@example.test,fr\n", FALSE, errors,
	    NULL, NULL));
	path = g_build_filename(f.dir, "out", NULL);
	fp = fopen(path, "w");
	g_assert_nonnull(fp);
	g_assert_true(members_print_list(f.st, TRUE, fp, &e));
	g_assert_true(members_print_one(f.st, "E@EXAMPLE.TEST", FALSE, fp, &e));
	g_assert_false(members_print_one(f.st, "8", FALSE, fp, &e));
	g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&e);
	fclose(fp);
	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	g_assert_nonnull(strstr(text, "[{\"number\":\"7\",\"name\":\"Roy, \\\"É\\\"\","
	    "\"language\":\"fr\",\"addresses\":[\"e@example.test\"]"));
	g_assert_nonnull(strstr(text, "Member:      7\n"));
	g_unlink(path);
	teardown(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/members/parse-table", test_parse_table);
	g_test_add_func("/members/parse-fields", test_parse_fields);
	g_test_add_func("/members/parse-nul", test_parse_nul);
	g_test_add_func("/members/parse-many-errors", test_parse_many_errors);
	g_test_add_func("/members/import", test_import);
	g_test_add_func("/members/case-lang", test_case_lang);
	g_test_add_func("/members/print", test_print);
	return g_test_run();
}
