/*
 * test-templates.c - templates per language: the shipped English and
 * French sets match (same files, same placeholders, same "Subject:"
 * lines), the lookup order (language, default language, the old flat
 * layout), the "Subject:" first line, and the case token kept in a
 * template's subject.
 */
#include <string.h>
#include <glib/gstdio.h>

#include "cg.h"
#include "config.h"
#include "outbox.h"
#include "spool.h"
#include "store.h"

static char *
top_path(const char *rel)
{
	const char *top = g_getenv("CG_TOP");

	return g_build_filename(top != NULL ? top : ".", rel, NULL);
}

static int
cmp_pstr(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted set of {{placeholders}} in text, one per line. */
static char *
placeholders(const char *text)
{
	g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
	GString *out = g_string_new(NULL);
	const char *p = text, *open, *close;
	guint i;

	while ((open = strstr(p, "{{")) != NULL && (close = strstr(open, "}}")) != NULL) {
		g_autofree char *k = g_strstrip(g_strndup(open + 2, close - open - 2));
		gboolean seen = FALSE;

		for (i = 0; i < keys->len && !seen; i++)
			seen = strcmp(g_ptr_array_index(keys, i), k) == 0;
		if (!seen)
			g_ptr_array_add(keys, g_steal_pointer(&k));
		p = close + 2;
	}
	g_ptr_array_sort(keys, cmp_pstr);
	for (i = 0; i < keys->len; i++)
		g_string_append_printf(out, "%s\n", (char *)g_ptr_array_index(keys, i));
	return g_string_free(out, FALSE);
}

static GPtrArray *
dir_files(const char *dir)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *n;

	g_assert_nonnull(d);
	while ((n = g_dir_read_name(d)) != NULL)
		if (g_str_has_suffix(n, ".txt"))
			g_ptr_array_add(names, g_strdup(n));
	g_dir_close(d);
	g_ptr_array_sort(names, cmp_pstr);
	return names;
}

/* Every English template has a French one with the same placeholders. */
static void
test_shipped_sets(void)
{
	g_autofree char *en = top_path("templates/en"), *fr = top_path("templates/fr");
	g_autoptr(GPtrArray) en_names = dir_files(en), fr_names = dir_files(fr);
	static const char *const required[] = { "ack.txt", "ack-missing.txt", "ack-dropped.txt",
	    "relay.txt", "resolved.txt", "status.txt", "notify.txt", "update.txt",
	    "transcript.txt" };
	guint i;

	g_assert_cmpint(en_names->len, ==, fr_names->len);
	for (i = 0; i < G_N_ELEMENTS(required); i++) {
		g_autofree char *p = g_build_filename(en, required[i], NULL);

		if (!g_file_test(p, G_FILE_TEST_IS_REGULAR))
			g_error("templates/en/%s is missing", required[i]);
	}
	for (i = 0; i < en_names->len; i++) {
		const char *name = g_ptr_array_index(en_names, i);
		g_autofree char *pe = g_build_filename(en, name, NULL);
		g_autofree char *pf = g_build_filename(fr, name, NULL);
		g_autofree char *te = NULL, *tf = NULL, *ke = NULL, *kf = NULL;

		g_assert_cmpstr(name, ==, g_ptr_array_index(fr_names, i));
		g_assert_true(g_file_get_contents(pe, &te, NULL, NULL));
		g_assert_true(g_file_get_contents(pf, &tf, NULL, NULL));
		g_assert_true(g_utf8_validate(te, -1, NULL));
		g_assert_true(g_utf8_validate(tf, -1, NULL));
		ke = placeholders(te);
		kf = placeholders(tf);
		if (strcmp(ke, kf) != 0)
			g_error("%s: English placeholders\n%s differ from French\n%s", name, ke, kf);
		g_assert_cmpint(g_str_has_prefix(te, "Subject:"), ==, g_str_has_prefix(tf, "Subject:"));
	}
}

typedef struct {
	char	*dir;
	config	 cfg;
} fixture;

static void
put(const char *dir, const char *rel, const char *text)
{
	g_autofree char *p = g_build_filename(dir, rel, NULL);
	g_autofree char *d = g_path_get_dirname(p);

	g_assert_cmpint(g_mkdir_with_parents(d, 0700), ==, 0);
	g_assert_true(g_file_set_contents(p, text, -1, NULL));
}

static void
setup(fixture *f)
{
	GError *e = NULL;

	f->dir = g_dir_make_tmp("test-templates-XXXXXX", &e);
	g_assert_no_error(e);
	memset(&f->cfg, 0, sizeof(f->cfg));
	f->cfg.templates = g_build_filename(f->dir, "tpl", NULL);
	f->cfg.address = "members@example.org";
	f->cfg.name = "Member Services";
	f->cfg.domain = "example.org";
	f->cfg.case_prefix = "CASE-";
	f->cfg.case_digits = 6;
	put(f->cfg.templates, "a.txt", "flat a");
	put(f->cfg.templates, "b.txt", "flat b");
	put(f->cfg.templates, "en/b.txt", "en b");
	put(f->cfg.templates, "fr/b.txt", "fr b");
	put(f->cfg.templates, "fr/c.txt", "fr c");
	put(f->cfg.templates, "en/s.txt", "Subject: Hi {{name}} [{{case_id}}]\n\nBody {{name}}\n");
	put(f->cfg.templates, "en/crlf.txt", "Subject: X\r\n\r\nBody\r\n");
	put(f->cfg.templates, "en/empty-subject.txt", "Subject:   \nBody\n");
	put(f->cfg.templates, "en/no-subject.txt", "Subjects are fine\n");
}

static void
rm_rf(const char *path)
{
	GDir *d;
	const char *n;

	if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		if ((d = g_dir_open(path, 0, NULL)) != NULL) {
			while ((n = g_dir_read_name(d)) != NULL) {
				g_autofree char *p = g_build_filename(path, n, NULL);

				rm_rf(p);
			}
			g_dir_close(d);
		}
		g_rmdir(path);
	} else
		g_unlink(path);
}

static void
teardown(fixture *f)
{
	rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->cfg.templates);
}

static const struct {
	const char *default_lang;	/* cfg.language; NULL: unset (English) */
	const char *lang;
	const char *name;
	const char *want;	/* NULL: CG_ERROR_CONFIG */
} lookup_rows[] = {
	{ NULL, "fr", "b.txt", "fr b" },
	{ NULL, "en", "b.txt", "en b" },
	{ NULL, NULL, "b.txt", "en b" },	/* the default language */
	{ "fr", NULL, "b.txt", "fr b" },
	{ NULL, "de", "b.txt", "en b" },	/* no such language: the default's */
	{ NULL, "fr", "a.txt", "flat a" },	/* in no language: the old layout */
	{ NULL, "en", "c.txt", NULL },		/* French only, asked in English */
	{ "fr", "en", "c.txt", "fr c" },	/* ... unless French is the default */
	{ NULL, "../fr", "b.txt", "en b" },	/* a language is never a path */
	{ NULL, ".", "b.txt", "en b" },
	{ NULL, "fr", "../a.txt", NULL },
	{ NULL, "fr", "missing.txt", NULL },
};

static void
test_lookup(void)
{
	fixture f;
	size_t i;

	setup(&f);
	for (i = 0; i < G_N_ELEMENTS(lookup_rows); i++) {
		GError *e = NULL;
		g_autofree char *out = NULL;

		f.cfg.language = (char *)lookup_rows[i].default_lang;
		out = outbox_render_lang(&f.cfg, lookup_rows[i].lang, lookup_rows[i].name, NULL,
		    NULL, &e);
		if (lookup_rows[i].want == NULL) {
			g_assert_null(out);
			g_assert_error(e, CG_ERROR, CG_ERROR_CONFIG);
			g_clear_error(&e);
			continue;
		}
		g_assert_no_error(e);
		if (g_strcmp0(out, lookup_rows[i].want) != 0)
			g_error("row %zu: got \"%s\", want \"%s\"", i, out, lookup_rows[i].want);
	}
	f.cfg.language = NULL;
	g_assert_true(outbox_template_exists(&f.cfg, "fr", "c.txt"));
	g_assert_false(outbox_template_exists(&f.cfg, "en", "c.txt"));
	g_assert_true(outbox_template_exists(&f.cfg, "en", "a.txt"));
	teardown(&f);
}

static void
test_subject_line(void)
{
	fixture f;
	g_autoptr(GHashTable) v = g_hash_table_new(g_str_hash, g_str_equal);
	g_autofree char *subject = NULL, *body = NULL, *body2 = NULL, *b3 = NULL, *b4 = NULL;
	g_autofree char *s3 = NULL, *s4 = NULL, *s5 = NULL, *b5 = NULL;
	GError *e = NULL;

	setup(&f);
	g_hash_table_insert(v, "name", "Bob\r\nBcc: x@evil.test");
	g_hash_table_insert(v, "case_id", "CASE-000007");
	body = outbox_render_lang(&f.cfg, "en", "s.txt", v, &subject, &e);
	g_assert_no_error(e);
	/* the subject is one line, whatever a placeholder held */
	g_assert_cmpstr(subject, ==, "Hi Bob Bcc: x@evil.test [CASE-000007]");
	g_assert_cmpstr(body, ==, "Body Bob\r\nBcc: x@evil.test\n");
	body2 = outbox_render(&f.cfg, "s.txt", v, &e);	/* the subject line is never text */
	g_assert_cmpstr(body2, ==, body);
	b3 = outbox_render_lang(&f.cfg, "en", "crlf.txt", NULL, &s3, &e);
	g_assert_cmpstr(s3, ==, "X");
	g_assert_cmpstr(b3, ==, "Body\r\n");
	b4 = outbox_render_lang(&f.cfg, "en", "empty-subject.txt", NULL, &s4, &e);
	g_assert_null(s4);
	g_assert_cmpstr(b4, ==, "Body\n");
	b5 = outbox_render_lang(&f.cfg, "en", "no-subject.txt", NULL, &s5, &e);
	g_assert_null(s5);
	g_assert_cmpstr(b5, ==, "Subjects are fine\n");
	g_assert_no_error(e);
	teardown(&f);
}

/* A subject without the case token gets it: replies must find the case. */
static void
test_subject_token(void)
{
	fixture f;
	g_autofree char *db = NULL, *sp_dir = NULL;
	g_autoptr(store) st = NULL;
	g_autoptr(spool) sp = NULL;
	g_autoptr(store_case) c = NULL;
	g_autoptr(GPtrArray) msgs = NULL;
	store_case nc = { 0 };
	outbox_mail m = { 0 };
	GError *e = NULL;
	gint64 id;

	setup(&f);
	db = g_build_filename(f.dir, "cases.db", NULL);
	sp_dir = g_build_filename(f.dir, "spool", NULL);
	st = store_open(db, &e);
	g_assert_no_error(e);
	sp = spool_open(sp_dir, &e);
	g_assert_no_error(e);
	nc.member = "alice@member.example";
	nc.subject = "Royalties";
	id = store_case_create(st, &nc, "CASE-", 6, &e);
	g_assert_no_error(e);
	c = store_case_get(st, id, &e);
	m.c = c;
	m.kind = "resolved";
	m.to_addr = c->member;
	m.text = "done";
	m.subject = "Votre demande est traitée";
	g_assert_cmpint(outbox_queue_mail(&f.cfg, st, sp, &m, &e), >, 0);
	g_assert_no_error(e);
	m.subject = "Re: Royalties [case-000001]";	/* already there, any case */
	g_assert_cmpint(outbox_queue_mail(&f.cfg, st, sp, &m, &e), >, 0);
	msgs = store_case_messages(st, id, &e);
	g_assert_cmpint(msgs->len, ==, 2);
	g_assert_cmpstr(((store_message *)g_ptr_array_index(msgs, 0))->subject, ==,
	    "Votre demande est traitée [CASE-000001]");
	g_assert_cmpstr(((store_message *)g_ptr_array_index(msgs, 1))->subject, ==,
	    "Re: Royalties [case-000001]");
	g_clear_pointer(&st, store_close);
	g_clear_pointer(&sp, spool_close);
	teardown(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/templates/shipped-sets", test_shipped_sets);
	g_test_add_func("/templates/lookup", test_lookup);
	g_test_add_func("/templates/subject-line", test_subject_line);
	g_test_add_func("/templates/subject-token", test_subject_token);
	return g_test_run();
}
