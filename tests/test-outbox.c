/*
 * test-outbox.c - template rendering, the composed acknowledgement
 * (parsed back with GMime), its store rows, and the retry backoff.
 * No servers: SMTP delivery is covered by tests/0030-smtp.t and the
 * integration tests against Postfix.
 */
#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "cg.h"
#include "config.h"
#include "outbox.h"
#include "spool.h"
#include "store.h"

typedef struct {
	char	*dir;
	config	 cfg;
	store	*st;
	spool	*sp;
} fixture;

static void
write_file(const char *path, const char *text, gssize len)
{
	GError *e = NULL;

	g_assert_true(g_file_set_contents(path, text, len, &e));
	g_assert_no_error(e);
}

static char *
top_path(const char *rel)
{
	const char *top = g_getenv("CG_TOP");

	return g_build_filename(top != NULL ? top : ".", rel, NULL);
}

static void
fixture_setup(fixture *f)
{
	GError *e = NULL;
	g_autofree char *ack = top_path("templates/en/ack.txt");
	g_autofree char *text = NULL;
	g_autofree char *db = NULL, *sp = NULL, *tpl = NULL;

	f->dir = g_dir_make_tmp("test-outbox-XXXXXX", &e);
	g_assert_no_error(e);
	tpl = g_build_filename(f->dir, "templates", NULL);
	g_assert_cmpint(g_mkdir(tpl, 0700), ==, 0);
	g_assert_true(g_file_get_contents(ack, &text, NULL, &e));
	g_assert_no_error(e);
	{
		g_autofree char *p = g_build_filename(tpl, "ack.txt", NULL);

		write_file(p, text, -1);
	}

	memset(&f->cfg, 0, sizeof(f->cfg));
	f->cfg.address = "members@example.org";
	f->cfg.name = "Member Services";
	f->cfg.domain = "example.org";
	f->cfg.case_prefix = "CASE-";
	f->cfg.case_digits = 6;
	f->cfg.templates = g_steal_pointer(&tpl);
	f->cfg.outbox_max_attempts = 20;
	f->cfg.outbox_retry_min = 30;
	f->cfg.outbox_retry_max = 3600;

	db = g_build_filename(f->dir, "cases.db", NULL);
	f->st = store_open(db, &e);
	g_assert_no_error(e);
	g_assert_nonnull(f->st);
	sp = g_build_filename(f->dir, "spool", NULL);
	f->sp = spool_open(sp, &e);
	g_assert_no_error(e);
	g_assert_nonnull(f->sp);
}

static void
rm_rf(const char *path)
{
	GDir *d;
	const char *name;

	if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		if ((d = g_dir_open(path, 0, NULL)) != NULL) {
			while ((name = g_dir_read_name(d)) != NULL) {
				g_autofree char *p = g_build_filename(path, name, NULL);

				rm_rf(p);
			}
			g_dir_close(d);
		}
		g_rmdir(path);
	} else {
		g_unlink(path);
	}
}

static void
fixture_teardown(fixture *f)
{
	store_close(f->st);
	spool_close(f->sp);
	rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->cfg.templates);
}

/* ---- outbox_render ---- */

static const struct {
	const char *tpl;
	const char *want;
} render_rows[] = {
	{ "Hello {{name}}!", "Hello Bob!" },
	{ "{{ name }}/{{name}}", "Bob/Bob" },
	{ "x{{unknown}}y", "xy" },
	{ "{{ not a key }}", "{{ not a key }}" },
	{ "open {{name", "open {{name" },
	{ "{{{name}}}", "{Bob}" },
	{ "Grüße, {{city}} €", "Grüße, Köln €" },
	{ "", "" },
	{ "no placeholders\n", "no placeholders\n" },
	{ "{{name}}{{name}}", "BobBob" },
	{ "{{}}", "{{}}" },
};

static void
test_render_table(void)
{
	fixture f;
	g_autoptr(GHashTable) vars = g_hash_table_new(g_str_hash, g_str_equal);
	g_autofree char *path = NULL;
	size_t i;

	fixture_setup(&f);
	g_hash_table_insert(vars, "name", "Bob");
	g_hash_table_insert(vars, "city", "Köln");
	path = g_build_filename(f.cfg.templates, "t.txt", NULL);
	for (i = 0; i < G_N_ELEMENTS(render_rows); i++) {
		GError *e = NULL;
		g_autofree char *out = NULL;

		write_file(path, render_rows[i].tpl, -1);
		out = outbox_render(&f.cfg, "t.txt", vars, &e);
		g_assert_no_error(e);
		g_assert_cmpstr(out, ==, render_rows[i].want);
	}
	fixture_teardown(&f);
}

static void
test_render_errors(void)
{
	fixture f;
	g_autofree char *big = NULL, *bad = NULL, *path = NULL;
	const char *names[] = { "missing.txt", "../ack.txt", ".hidden", "", "big.txt", "bad.txt" };
	size_t i;

	fixture_setup(&f);
	path = g_build_filename(f.cfg.templates, "big.txt", NULL);
	big = g_malloc(64 * 1024 + 2);
	memset(big, 'a', 64 * 1024 + 1);
	big[64 * 1024 + 1] = '\0';
	write_file(path, big, -1);
	g_free(path);
	path = g_build_filename(f.cfg.templates, "bad.txt", NULL);
	write_file(path, "latin1 \xfc bytes", -1);
	for (i = 0; i < G_N_ELEMENTS(names); i++) {
		GError *e = NULL;
		char *out = outbox_render(&f.cfg, names[i], NULL, &e);

		g_assert_null(out);
		g_assert_error(e, CG_ERROR, CG_ERROR_CONFIG);
		g_error_free(e);
	}
	fixture_teardown(&f);
}

/* ---- outbox_queue_ack ---- */

static gint64
make_case(fixture *f, const char *subject, const char *member_name, store_case **c_r)
{
	store_case c = { 0 };
	GError *e = NULL;
	gint64 id;

	c.member = "alice@member.example";
	c.member_name = (char *)member_name;
	c.subject = (char *)subject;
	c.type = "Royalties";
	c.sub_type = "Statement";
	c.team = "Royalties Team";
	id = store_case_create(f->st, &c, f->cfg.case_prefix, f->cfg.case_digits, &e);
	g_assert_no_error(e);
	g_assert_cmpint(id, >, 0);
	*c_r = store_case_get(f->st, id, &e);
	g_assert_no_error(e);
	g_assert_nonnull(*c_r);
	return id;
}

static mail_msg *
make_orig(const char *subject, const char *message_id, int nrefs)
{
	mail_msg *m = g_new0(mail_msg, 1);
	int i;

	m->subject = g_strdup(subject);
	m->message_id = g_strdup(message_id);
	m->from_addr = g_strdup("alice@member.example");
	m->references = g_ptr_array_new_with_free_func(g_free);
	for (i = 0; i < nrefs; i++)
		g_ptr_array_add(m->references, g_strdup_printf("ref.%d@member.example", i));
	return m;
}

static void
free_orig(mail_msg *m)
{
	g_free(m->subject);
	g_free(m->message_id);
	g_free(m->from_addr);
	g_ptr_array_unref(m->references);
	g_free(m);
}

/* Queue an ack and return its composed bytes; the outbox row goes to *o_r. */
static char *
queue(fixture *f, const store_case *c, const mail_msg *orig, GPtrArray *missing,
    gsize *len_r, store_outbox **o_r)
{
	outbox_ack_info info = { c, orig, missing };
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GBytes) bytes = NULL;
	GError *e = NULL;
	char *raw;
	gint64 id;

	g_assert_true(store_begin(f->st, &e));
	id = outbox_queue_ack(&f->cfg, f->st, f->sp, &info, &e);
	g_assert_no_error(e);
	g_assert_cmpint(id, >, 0);
	g_assert_true(store_commit(f->st, &e));

	rows = store_outbox_list(f->st, c->id, &e);
	g_assert_no_error(e);
	g_assert_cmpuint(rows->len, ==, 1);
	*o_r = g_ptr_array_steal_index(rows, 0);
	g_assert_cmpint((*o_r)->id, ==, id);
	/* a recipe in the row, composed here as at delivery */
	g_assert_null((*o_r)->spool_digest);
	bytes = outbox_composed(f->st, f->sp, *o_r, &e);
	g_assert_no_error(e);
	*len_r = g_bytes_get_size(bytes);
	raw = g_malloc(*len_r + 1);
	memcpy(raw, g_bytes_get_data(bytes, NULL), *len_r);
	raw[*len_r] = '\0';
	return raw;
}

static GMimeMessage *
parse(const char *raw, gsize len)
{
	g_autoptr(GMimeStream) s = g_mime_stream_mem_new_with_buffer(raw, len);
	g_autoptr(GMimeParser) p = g_mime_parser_new_with_stream(s);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_assert_nonnull(m);
	return m;
}

static void
assert_7bit_crlf(const char *raw, gsize len)
{
	gsize i;

	g_assert_cmpuint(len, >, 0);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)raw[i];

		g_assert_cmpuint(ch, <, 0x80);
		g_assert_cmpuint(ch, !=, 0);
		if (ch == '\n')
			g_assert_true(i > 0 && raw[i - 1] == '\r');
		if (ch == '\r')
			g_assert_true(i + 1 < len && raw[i + 1] == '\n');
	}
	g_assert_true(raw[len - 1] == '\n');
}

static char *
body_text(GMimeMessage *m)
{
	GMimeObject *body = g_mime_message_get_mime_part(m);

	g_assert_true(GMIME_IS_TEXT_PART(body));
	return g_mime_text_part_get_text((GMimeTextPart *)body);
}

static void
test_ack_compose(void)
{
	fixture f;
	g_autoptr(store_case) c = NULL;
	g_autoptr(store_outbox) o = NULL;
	g_autoptr(GMimeMessage) m = NULL;
	g_autoptr(GPtrArray) missing = g_ptr_array_new();
	g_autofree char *raw = NULL, *text = NULL, *want_suffix = NULL;
	mail_msg *orig = make_orig("Re: Royalty statement missing", "orig.1@member.example", 30);
	GMimeReferences *refs;
	InternetAddressList *al;
	const char *v;
	gsize len;

	fixture_setup(&f);
	make_case(&f, "Royalty statement missing", "Alice Example", &c);
	g_assert_cmpstr(c->public_id, ==, "CASE-000001");
	g_ptr_array_add(missing, "Work title");
	g_ptr_array_add(missing, "Platform");
	raw = queue(&f, c, orig, missing, &len, &o);
	assert_7bit_crlf(raw, len);
	m = parse(raw, len);

	al = g_mime_message_get_from(m);
	g_assert_cmpint(internet_address_list_length(al), ==, 1);
	g_assert_cmpstr(internet_address_mailbox_get_addr(
	    (InternetAddressMailbox *)internet_address_list_get_address(al, 0)), ==,
	    "members@example.org");
	g_assert_cmpstr(internet_address_get_name(internet_address_list_get_address(al, 0)), ==,
	    "Member Services");
	al = g_mime_message_get_to(m);
	g_assert_cmpint(internet_address_list_length(al), ==, 1);
	g_assert_cmpstr(internet_address_mailbox_get_addr(
	    (InternetAddressMailbox *)internet_address_list_get_address(al, 0)), ==,
	    "alice@member.example");

	v = g_mime_message_get_subject(m);
	g_assert_nonnull(strstr(v, "[CASE-000001]"));
	g_assert_nonnull(strstr(v, "Royalty statement missing"));

	v = g_mime_message_get_message_id(m);
	g_assert_true(g_str_has_prefix(v, "CASE-000001."));
	g_assert_true(g_str_has_suffix(v, "@example.org"));
	g_assert_cmpstr(v, ==, o->message_id);

	v = g_mime_object_get_header((GMimeObject *)m, "In-Reply-To");
	g_assert_nonnull(v);
	{
		g_autofree char *id = g_mime_utils_decode_message_id(v);

		g_assert_cmpstr(id, ==, "orig.1@member.example");
	}
	v = g_mime_object_get_header((GMimeObject *)m, "References");
	g_assert_nonnull(v);
	refs = g_mime_references_parse(NULL, v);
	g_assert_cmpint(g_mime_references_length(refs), ==, 20);
	g_assert_cmpstr(g_mime_references_get_message_id(refs, 19), ==, "orig.1@member.example");
	/* the newest references are kept, the oldest dropped */
	g_assert_cmpstr(g_mime_references_get_message_id(refs, 18), ==, "ref.29@member.example");
	g_assert_cmpstr(g_mime_references_get_message_id(refs, 0), ==, "ref.11@member.example");
	g_mime_references_free(refs);

	g_assert_cmpstr(g_mime_object_get_header((GMimeObject *)m, "Auto-Submitted"), ==,
	    "auto-replied");
	g_assert_cmpstr(g_mime_object_get_header((GMimeObject *)m, "X-Auto-Response-Suppress"),
	    ==, "All");
	g_assert_nonnull(g_mime_object_get_header((GMimeObject *)m, "Date"));

	text = body_text(m);
	g_assert_nonnull(strstr(text, "CASE-000001"));
	g_assert_nonnull(strstr(text, "Work title"));
	g_assert_nonnull(strstr(text, "Platform"));
	g_assert_nonnull(strstr(text, "Royalties / Statement"));
	g_assert_nonnull(strstr(text, "Royalties Team"));
	g_assert_nonnull(strstr(text, "Alice Example"));
	g_assert_nonnull(strstr(text, "Please reply"));
	g_assert_null(strstr(text, "{{"));

	/* the outbox row: queued, null sender, due now */
	g_assert_cmpstr(o->state, ==, OUTBOX_QUEUED);
	g_assert_cmpstr(o->env_from, ==, "");
	g_assert_cmpstr(o->rcpt, ==, "alice@member.example");
	g_assert_cmpstr(o->kind, ==, "ack");
	g_assert_cmpint(o->attempts, ==, 0);
	g_assert_cmpint(o->next_attempt, <=, cg_now());
	g_assert_cmpint(o->case_id, ==, c->id);
	{
		GError *e = NULL;
		g_autoptr(GPtrArray) due = store_outbox_due(f.st, cg_now(), 10, &e);

		g_assert_no_error(e);
		g_assert_cmpuint(due->len, ==, 1);
	}

	/* the outgoing message row and the event */
	{
		GError *e = NULL;
		g_autoptr(GPtrArray) msgs = store_case_messages(f.st, c->id, &e);
		g_autoptr(GPtrArray) evs = store_case_events(f.st, c->id, &e);
		const store_message *sm;
		gboolean found = FALSE;
		guint i;

		g_assert_no_error(e);
		g_assert_cmpuint(msgs->len, ==, 1);
		sm = g_ptr_array_index(msgs, 0);
		g_assert_cmpstr(sm->direction, ==, "out");
		g_assert_cmpstr(sm->role, ==, "gateway");
		g_assert_cmpstr(sm->message_id, ==, o->message_id);
		g_assert_null(sm->raw_digest);	/* the bytes are in the outbox row */
		g_assert_cmpstr(sm->to_addrs, ==, "alice@member.example");
		for (i = 0; i < evs->len; i++) {
			const store_event *ev = g_ptr_array_index(evs, i);

			if (strcmp(ev->kind, "ack-queued") == 0) {
				found = TRUE;
				g_assert_cmpstr(ev->detail, ==, "to <alice@member.example>");
			}
		}
		g_assert_true(found);
	}
	free_orig(orig);
	fixture_teardown(&f);
}

/* Neither a subject nor a name with CR/LF can add a header line. */
static void
test_ack_header_injection(void)
{
	fixture f;
	g_autoptr(store_case) c = NULL;
	g_autoptr(store_outbox) o = NULL;
	g_autoptr(GMimeMessage) m = NULL;
	g_autofree char *raw = NULL;
	g_auto(GStrv) lines = NULL;
	mail_msg *orig = make_orig("hi\r\nBcc: x@y", "orig.2@member.example", 0);
	gsize len;
	int i;

	fixture_setup(&f);
	make_case(&f, "hi\r\nBcc: x@y", "Eve\r\nBcc: victim@example.net", &c);
	raw = queue(&f, c, orig, NULL, &len, &o);
	assert_7bit_crlf(raw, len);
	lines = g_strsplit(raw, "\r\n", -1);
	for (i = 0; lines[i] != NULL; i++)
		g_assert_false(g_ascii_strncasecmp(lines[i], "bcc:", 4) == 0);
	m = parse(raw, len);
	g_assert_null(g_mime_object_get_header((GMimeObject *)m, "Bcc"));
	g_assert_cmpint(internet_address_list_length(g_mime_message_get_bcc(m)), ==, 0);
	g_assert_nonnull(strstr(g_mime_message_get_subject(m), "[CASE-000001]"));
	g_assert_null(strchr(g_mime_message_get_subject(m), '\n'));
	g_assert_nonnull(strstr(g_mime_message_get_subject(m), "hi Bcc: x@y"));
	g_assert_cmpint(internet_address_list_length(g_mime_message_get_to(m)), ==, 1);
	free_orig(orig);
	fixture_teardown(&f);
}

/* Without an original Message-ID there is nothing to thread under. */
static void
test_ack_no_message_id(void)
{
	fixture f;
	g_autoptr(store_case) c = NULL;
	g_autoptr(store_outbox) o = NULL;
	g_autoptr(GMimeMessage) m = NULL;
	g_autofree char *raw = NULL, *text = NULL;
	mail_msg *orig = make_orig("Plain question", NULL, 2);
	gsize len;

	fixture_setup(&f);
	make_case(&f, "Plain question", NULL, &c);
	raw = queue(&f, c, orig, NULL, &len, &o);
	m = parse(raw, len);
	g_assert_null(g_mime_object_get_header((GMimeObject *)m, "In-Reply-To"));
	g_assert_null(g_mime_object_get_header((GMimeObject *)m, "References"));
	text = body_text(m);
	/* no missing fields: no request for them */
	g_assert_null(strstr(text, "Please reply"));
	g_assert_nonnull(strstr(text, "alice@member.example"));
	free_orig(orig);
	fixture_teardown(&f);
}

/* Non-ASCII names, subject and body still leave as 7-bit. */
static void
test_ack_utf8(void)
{
	fixture f;
	g_autoptr(store_case) c = NULL;
	g_autoptr(store_outbox) o = NULL;
	g_autoptr(GMimeMessage) m = NULL;
	g_autoptr(GPtrArray) missing = g_ptr_array_new();
	g_autofree char *raw = NULL, *text = NULL;
	mail_msg *orig = make_orig("Grüße aus Köln – Abrechnung €", "u.1@member.example", 1);
	InternetAddressList *al;
	gsize len;

	fixture_setup(&f);
	make_case(&f, "Grüße aus Köln – Abrechnung €", "Jürgen Müller", &c);
	g_ptr_array_add(missing, "Titel des Werks");
	raw = queue(&f, c, orig, missing, &len, &o);
	assert_7bit_crlf(raw, len);
	m = parse(raw, len);
	g_assert_nonnull(strstr(g_mime_message_get_subject(m), "Grüße aus Köln – Abrechnung €"));
	al = g_mime_message_get_to(m);
	g_assert_cmpstr(internet_address_get_name(internet_address_list_get_address(al, 0)), ==,
	    "Jürgen Müller");
	text = body_text(m);
	g_assert_nonnull(strstr(text, "Hello Jürgen Müller,"));
	g_assert_nonnull(strstr(text, "Grüße aus Köln – Abrechnung €"));
	g_assert_nonnull(strstr(text, "  - Titel des Werks"));
	free_orig(orig);
	fixture_teardown(&f);
}

static void
test_ack_bad_member(void)
{
	fixture f;
	store_case c = { 0 };
	outbox_ack_info info = { &c, NULL, NULL };
	GError *e = NULL;

	fixture_setup(&f);
	c.public_id = "CASE-000009";
	c.member = "a@b.example>\r\nRCPT TO:<victim@example.net";
	g_assert_cmpint(outbox_queue_ack(&f.cfg, f.st, f.sp, &info, &e), ==, 0);
	g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
	g_error_free(e);
	fixture_teardown(&f);
}

/* ---- recipes: composed at delivery, the same bytes every time ---- */

static store_outbox *
queue_notify(fixture *f, const store_case *c, GPtrArray *atts)
{
	outbox_mail m = {
		.c = c, .kind = "notify", .to_addr = "team@example.org", .text = "New case.",
		.attachments = atts, .role = "gateway",
	};
	GError *e = NULL;
	gint64 id;

	g_assert_true(store_begin(f->st, &e));
	id = outbox_queue_mail(&f->cfg, f->st, f->sp, &m, &e);
	g_assert_no_error(e);
	g_assert_cmpint(id, >, 0);
	g_assert_true(store_commit(f->st, &e));
	return store_outbox_get(f->st, id, &e);
}

static gboolean
bytes_contain(GBytes *b, const char *needle)
{
	return g_strstr_len(g_bytes_get_data(b, NULL), g_bytes_get_size(b), needle) != NULL;
}

/* Files under the spool's kind directory (SPOOL_OUT: nothing is composed there now). */
static guint
spool_files(fixture *f, const char *kind)
{
	g_autofree char *dir = g_build_filename(f->dir, "spool", kind, NULL);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;
	guint n = 0;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *sub = g_build_filename(dir, name, NULL);
		g_autoptr(GDir) d2 = g_dir_open(sub, 0, NULL);

		while (d2 != NULL && g_dir_read_name(d2) != NULL)
			n++;
		if (d2 == NULL)
			n++;
	}
	return n;
}

/*
 * Queueing records a recipe and composes nothing; delivery composes it,
 * the same bytes every time (Date: from the row, the boundary from the
 * Message-ID), even after the gateway's name changed.  An attachment
 * gone from the spool and a damaged recipe are permanent errors.
 */
static void
test_mail_recipe(void)
{
	fixture f;
	g_autoptr(store_case) c = NULL;
	g_autoptr(store_outbox) small = NULL, big = NULL;
	g_autoptr(GBytes) b1 = NULL, b2 = NULL, b3 = NULL, gone = NULL, bad = NULL;
	g_autoptr(GPtrArray) atts = g_ptr_array_new();
	g_autoptr(GMimeMessage) m = NULL;
	g_autoptr(GDateTime) date = NULL;
	g_autofree char *data = g_malloc(100 * 1024), *digest = NULL, *path = NULL;
	g_autofree char *dbpath = NULL, *sql = NULL;
	store_attachment a = { 0 };
	GError *e = NULL;
	sqlite3 *db;
	gsize i;

	fixture_setup(&f);
	make_case(&f, "Statement", "Alice Example", &c);
	for (i = 0; i < 100 * 1024; i++)
		data[i] = (char)(i * 7919 % 251);
	digest = spool_put(f.sp, SPOOL_ATT, data, 100 * 1024, &e);
	g_assert_no_error(e);
	a.digest = digest;
	a.name = (char *)"statement.pdf";
	a.content_type = (char *)"application/pdf";
	a.size = 100 * 1024;
	g_ptr_array_add(atts, &a);

	small = queue_notify(&f, c, NULL);
	big = queue_notify(&f, c, atts);
	g_assert_null(small->spool_digest);
	g_assert_null(big->spool_digest);
	g_assert_cmpuint(spool_files(&f, SPOOL_OUT), ==, 0);

	b1 = outbox_composed(f.st, f.sp, small, &e);
	g_assert_no_error(e);
	g_assert_true(bytes_contain(b1, "New case."));
	b2 = outbox_composed(f.st, f.sp, big, &e);
	g_assert_no_error(e);
	g_assert_cmpuint(g_bytes_get_size(b2), >, 100 * 1024 * 4 / 3);
	g_assert_true(bytes_contain(b2, "statement.pdf"));
	/* a reload with another gateway name changes nothing queued */
	f.cfg.name = "Somebody Else";
	b3 = outbox_composed(f.st, f.sp, big, &e);
	g_assert_no_error(e);
	g_assert_true(g_bytes_equal(b2, b3));
	g_assert_false(bytes_contain(b3, "Somebody Else"));
	m = parse(g_bytes_get_data(b3, NULL), g_bytes_get_size(b3));
	date = g_mime_message_get_date(m);
	g_assert_nonnull(date);
	date = g_date_time_ref(date);
	g_assert_cmpint(g_date_time_to_unix(date), ==, big->created);
	g_assert_cmpstr(g_mime_message_get_message_id(m), ==, big->message_id);

	path = spool_path(f.sp, SPOOL_ATT, digest);
	g_assert_cmpint(g_unlink(path), ==, 0);
	gone = outbox_composed(f.st, f.sp, big, &e);
	g_assert_null(gone);
	g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
	g_assert_nonnull(strstr(e->message, "missing from the spool"));
	g_clear_error(&e);

	/* a damaged row: an error, not a crash */
	dbpath = g_build_filename(f.dir, "cases.db", NULL);
	g_assert_cmpint(sqlite3_open(dbpath, &db), ==, SQLITE_OK);
	sql = g_strdup_printf("UPDATE outbox SET recipe = x'0102030405' WHERE id = %"
	    G_GINT64_FORMAT, small->id);
	g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	bad = outbox_composed(f.st, f.sp, small, &e);
	g_assert_null(bad);
	g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&e);
	fixture_teardown(&f);
}

/* ---- outbox_deliver_due, without a relay ---- */

static void
test_deliver_nothing_due(void)
{
	fixture f;
	GError *e = NULL;

	fixture_setup(&f);
	/* No relay configured: connecting would fail, so 0 proves it did not try. */
	g_assert_cmpint(outbox_deliver_due(&f.cfg, f.st, f.sp, NULL, &e), ==, 0);
	g_assert_no_error(e);
	fixture_teardown(&f);
}

static void
test_deliver_unreachable(void)
{
	fixture f;
	g_autoptr(store_case) c = NULL;
	g_autoptr(store_outbox) o = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree char *raw = NULL;
	const store_outbox *r;
	mail_msg *orig = make_orig("Relay down", "d.1@member.example", 0);
	GError *e = NULL;
	gint64 before = cg_now();
	gsize len;

	fixture_setup(&f);
	make_case(&f, "Relay down", NULL, &c);
	raw = queue(&f, c, orig, NULL, &len, &o);
	/* Nothing listens on port 1; plaintext is allowed to loopback. */
	f.cfg.smtp.host = "127.0.0.1";
	f.cfg.smtp.port = 1;
	f.cfg.smtp.tls = TLS_NONE;
	f.cfg.smtp.timeout = 5;
	g_assert_cmpint(outbox_deliver_due(&f.cfg, f.st, f.sp, NULL, &e), ==, -1);
	g_assert_error(e, CG_ERROR, CG_ERROR_TEMP);
	g_assert_nonnull(strstr(e->message, "127.0.0.1:1"));
	g_clear_error(&e);

	rows = store_outbox_list(f.st, c->id, &e);
	g_assert_no_error(e);
	g_assert_cmpuint(rows->len, ==, 1);
	r = g_ptr_array_index(rows, 0);
	g_assert_cmpstr(r->state, ==, OUTBOX_QUEUED);
	g_assert_cmpint(r->attempts, ==, 1);
	g_assert_cmpint(r->next_attempt, >=, before + 15);
	g_assert_nonnull(r->last_error);
	g_assert_nonnull(strstr(r->last_error, "connect"));
	/* not due any more: the next round does not connect */
	g_assert_cmpint(outbox_deliver_due(&f.cfg, f.st, f.sp, NULL, &e), ==, 0);
	g_assert_no_error(e);
	free_orig(orig);
	fixture_teardown(&f);
}

/* ---- parallel delivery: shares and the pool ---- */

/* Queue n acknowledgements, each on a case of its own. */
static void
queue_many(fixture *f, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		g_autoptr(store_case) c = NULL;
		g_autoptr(store_outbox) o = NULL;
		g_autofree char *subject = g_strdup_printf("Share %d", i);
		g_autofree char *mid = g_strdup_printf("share.%d@member.example", i);
		g_autofree char *raw = NULL;
		mail_msg *orig = make_orig(subject, mid, 0);
		gsize len;

		make_case(f, subject, NULL, &c);
		raw = queue(f, c, orig, NULL, &len, &o);
		free_orig(orig);
	}
}

static void
test_deliver_shares(void)
{
	fixture f;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
	    NULL);
	GError *e = NULL;
	int k;
	guint i;

	fixture_setup(&f);
	queue_many(&f, 7);
	all = store_outbox_due(f.st, cg_now(), 0, &e);
	g_assert_no_error(e);
	g_assert_cmpuint(all->len, ==, 7);
	/* three shares: disjoint, each row in the share of its case, together all */
	for (k = 0; k < 3; k++) {
		g_autoptr(GPtrArray) rows = store_outbox_due_share(f.st, cg_now(), 0, k, 3, &e);

		g_assert_no_error(e);
		g_assert_nonnull(rows);
		g_assert_cmpuint(rows->len, >, 0);
		for (i = 0; i < rows->len; i++) {
			const store_outbox *o = g_ptr_array_index(rows, i);

			g_assert_cmpint(o->case_id % 3, ==, k);
			g_assert_false(g_hash_table_contains(seen, &o->id));
			g_hash_table_add(seen, g_memdup2(&o->id, sizeof(o->id)));
		}
	}
	g_assert_cmpuint(g_hash_table_size(seen), ==, all->len);
	for (i = 0; i < all->len; i++)
		g_assert_true(g_hash_table_contains(seen,
		    &((store_outbox *)g_ptr_array_index(all, i))->id));
	/* the limit holds per share; nothing is due in the past */
	{
		g_autoptr(GPtrArray) one = store_outbox_due_share(f.st, cg_now(), 1, 0, 2, &e);
		g_autoptr(GPtrArray) none = store_outbox_due_share(f.st, 1, 0, 1, 2, &e);

		g_assert_no_error(e);
		g_assert_cmpuint(one->len, ==, 1);
		g_assert_cmpuint(none->len, ==, 0);
	}
	/* hostile arguments are errors, not a modulo by zero */
	g_assert_null(store_outbox_due_share(f.st, cg_now(), 0, 3, 3, &e));
	g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&e);
	g_assert_null(store_outbox_due_share(f.st, cg_now(), 0, 0, 0, &e));
	g_assert_nonnull(e);
	g_clear_error(&e);
	g_assert_null(store_outbox_due_share(f.st, cg_now(), 0, -1, 2, &e));
	g_assert_nonnull(e);
	g_clear_error(&e);
	fixture_teardown(&f);
}

static void
test_pool_unreachable(void)
{
	fixture f;
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree char *db = NULL, *sp = NULL;
	GError *e = NULL;
	gint64 before = cg_now();
	outbox_pool *p;
	guint i;

	fixture_setup(&f);
	db = g_build_filename(f.dir, "cases.db", NULL);
	sp = g_build_filename(f.dir, "spool", NULL);
	f.cfg.database = db;
	f.cfg.spool = sp;
	queue_many(&f, 5);
	f.cfg.smtp.host = "127.0.0.1";
	f.cfg.smtp.port = 1;
	f.cfg.smtp.tls = TLS_NONE;
	f.cfg.smtp.timeout = 5;

	/* out-of-range sizes are clamped, not trusted */
	p = outbox_pool_new(&f.cfg, f.st, f.sp, 0, &e);
	g_assert_no_error(e);
	g_assert_cmpint(outbox_pool_size(p), ==, 1);
	outbox_pool_free(p);
	p = outbox_pool_new(&f.cfg, f.st, f.sp, 100, &e);
	g_assert_no_error(e);
	g_assert_cmpint(outbox_pool_size(p), ==, OUTBOX_CONNECTIONS_MAX);
	outbox_pool_free(p);

	p = outbox_pool_new(&f.cfg, f.st, f.sp, 3, &e);
	g_assert_no_error(e);
	g_assert_cmpint(outbox_pool_size(p), ==, 3);
	/* every connection fails: -1, and every row waits for its next attempt */
	g_assert_cmpint(outbox_pool_deliver_due(p, NULL, &e), ==, -1);
	g_assert_error(e, CG_ERROR, CG_ERROR_TEMP);
	g_assert_nonnull(strstr(e->message, "127.0.0.1:1"));
	g_clear_error(&e);
	rows = store_outbox_list(f.st, 0, &e);
	g_assert_no_error(e);
	g_assert_cmpuint(rows->len, ==, 5);
	for (i = 0; i < rows->len; i++) {
		const store_outbox *r = g_ptr_array_index(rows, i);

		g_assert_cmpstr(r->state, ==, OUTBOX_QUEUED);
		g_assert_cmpint(r->attempts, ==, 1);	/* each row tried once, by one share */
		g_assert_cmpint(r->next_attempt, >=, before + 15);
	}
	/* not due any more: the next round connects nowhere */
	g_assert_cmpint(outbox_pool_deliver_due(p, NULL, &e), ==, 0);
	g_assert_no_error(e);
	outbox_pool_free(p);

	/* a database that cannot be opened: no pool, an error */
	f.cfg.database = "/nonexistent/dir/cases.db";
	g_assert_null(outbox_pool_new(&f.cfg, f.st, f.sp, 2, &e));
	g_assert_nonnull(e);
	g_clear_error(&e);
	f.cfg.database = NULL;
	f.cfg.spool = NULL;
	fixture_teardown(&f);
}

/* ---- outbox_backoff ---- */

static void
test_backoff_bounds(void)
{
	config cfg = { 0 };
	int a, k;

	cfg.outbox_retry_min = 30;
	cfg.outbox_retry_max = 3600;
	for (a = 0; a <= 30; a++) {
		double want = MIN(3600.0, 30.0 * (double)(1ULL << a));

		for (k = 0; k < 50; k++) {
			gint64 v = outbox_backoff(&cfg, a);

			g_assert_cmpint(v, >=, 15);
			g_assert_cmpfloat((double)v, >=, want * 0.8 - 1);
			g_assert_cmpfloat((double)v, <=, want * 1.2);
		}
	}
	/* hostile input: huge and negative attempt counts */
	g_assert_cmpint(outbox_backoff(&cfg, G_MAXINT), <=, 3600 * 1.2);
	g_assert_cmpint(outbox_backoff(&cfg, -5), >=, 15);
	g_assert_cmpint(outbox_backoff(&cfg, -5), <=, 36);
	/* unset config: sane defaults, never zero */
	cfg.outbox_retry_min = 0;
	cfg.outbox_retry_max = 0;
	g_assert_cmpint(outbox_backoff(&cfg, 0), >=, 1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/outbox/render/table", test_render_table);
	g_test_add_func("/outbox/render/errors", test_render_errors);
	g_test_add_func("/outbox/ack/compose", test_ack_compose);
	g_test_add_func("/outbox/ack/header-injection", test_ack_header_injection);
	g_test_add_func("/outbox/ack/no-message-id", test_ack_no_message_id);
	g_test_add_func("/outbox/ack/utf8", test_ack_utf8);
	g_test_add_func("/outbox/ack/bad-member", test_ack_bad_member);
	g_test_add_func("/outbox/mail/recipe", test_mail_recipe);
	g_test_add_func("/outbox/deliver/nothing-due", test_deliver_nothing_due);
	g_test_add_func("/outbox/deliver/unreachable", test_deliver_unreachable);
	g_test_add_func("/outbox/deliver/shares", test_deliver_shares);
	g_test_add_func("/outbox/deliver/pool-unreachable", test_pool_unreachable);
	g_test_add_func("/outbox/backoff/bounds", test_backoff_bounds);
	return g_test_run();
}
