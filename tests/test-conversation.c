/*
 * test-conversation.c - the pieces of a conversation that need no
 * servers: signed Message-IDs, outbox_queue_mail (parsed back with
 * GMime), status subjects, and which case a message may join
 * (conv_find_case against a real store).  The whole flow over Dovecot
 * and Postfix is tests/0200-conversation.t.
 */
#include <string.h>

#include <glib/gstdio.h>

#include "cg.h"
#include "config.h"
#include "conversation.h"
#include "outbox.h"
#include "spool.h"
#include "store.h"
#include "thread.h"

typedef struct {
	char	*dir;
	config	 cfg;
	store	*st;
	spool	*sp;
} fixture;

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
fixture_setup(fixture *f)
{
	GError *e = NULL;
	g_autofree char *db = NULL, *sp = NULL;

	f->dir = g_dir_make_tmp("test-conv-XXXXXX", &e);
	g_assert_no_error(e);
	memset(&f->cfg, 0, sizeof(f->cfg));
	f->cfg.address = "members@example.test";
	f->cfg.name = "Member Services";
	f->cfg.domain = "example.test";
	f->cfg.case_prefix = "CASE-";
	f->cfg.case_digits = 6;
	f->cfg.secret = "0123456789abcdef0123456789abcdef";
	f->cfg.reopen_days = 14;
	f->cfg.plus_addressing = TRUE;
	f->cfg.staff.addresses = g_ptr_array_new();
	f->cfg.staff.domains = g_ptr_array_new();
	g_ptr_array_add(f->cfg.staff.domains, "example.test");
	f->cfg.staff.require_auth = FALSE;
	f->cfg.status_words = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(f->cfg.status_words, g_utf8_casefold("status", -1));
	g_ptr_array_add(f->cfg.status_words, g_utf8_casefold("statut", -1));
	g_ptr_array_add(f->cfg.status_words, g_utf8_casefold("État", -1));
	db = g_build_filename(f->dir, "casegate.db", NULL);
	f->st = store_open(db, &e);
	g_assert_no_error(e);
	sp = g_build_filename(f->dir, "spool", NULL);
	f->sp = spool_open(sp, &e);
	g_assert_no_error(e);
}

static void
fixture_teardown(fixture *f)
{
	store_close(f->st);
	spool_close(f->sp);
	rm_rf(f->dir);
	g_free(f->dir);
	g_ptr_array_unref(f->cfg.staff.addresses);
	g_ptr_array_unref(f->cfg.staff.domains);
	g_ptr_array_unref(f->cfg.status_words);
}

/* ---- signed Message-IDs ---- */

static void
test_signed_ids(void)
{
	config cfg = { .domain = "example.test", .case_prefix = "CASE-", .case_digits = 6,
	    .secret = "a server secret of some length" };
	config other = cfg, none = cfg;
	g_autofree char *id = thread_message_id(&cfg, "CASE-000123");
	g_autofree char *tampered = g_strdup(id), *moved = NULL, *upper = NULL;
	char *p;

	g_assert_cmpint(thread_message_id_case(&cfg, id), ==, 123);
	g_assert_cmpuint(strlen(id), ==, strlen("CASE-000123.") + 32 + strlen("@example.test"));
	/* one flipped hex digit of the MAC */
	p = strchr(tampered, '@') - 1;
	*p = *p == '0' ? '1' : '0';
	g_assert_cmpint(thread_message_id_case(&cfg, tampered), ==, 0);
	/* the same nonce and MAC on another case */
	moved = g_strdup(id);
	memcpy(moved, "CASE-000124", 11);
	g_assert_cmpint(thread_message_id_case(&cfg, moved), ==, 0);
	upper = g_ascii_strup(id, -1);
	g_assert_cmpint(thread_message_id_case(&cfg, upper), ==, 0);
	other.secret = "another secret entirely";
	g_assert_cmpint(thread_message_id_case(&other, id), ==, 0);
	none.secret = NULL;
	g_assert_cmpint(thread_message_id_case(&none, id), ==, 0);
	other = cfg;
	other.domain = "example.org";
	g_assert_cmpint(thread_message_id_case(&other, id), ==, 0);
	g_assert_cmpint(thread_message_id_case(&cfg, NULL), ==, 0);
	g_assert_cmpint(thread_message_id_case(&cfg, "CASE-000123.zz@example.test"), ==, 0);
	g_assert_cmpint(thread_message_id_case(&cfg, "royalties-1.alice@example.test"), ==, 0);
	g_assert_cmpint(thread_message_id_case(&cfg, "@example.test"), ==, 0);
	/* without a secret the id is still unguessable, just not verifiable */
	{
		g_autofree char *plain = thread_message_id(&none, "CASE-000123");

		g_assert_true(g_str_has_prefix(plain, "CASE-000123."));
		g_assert_cmpint(thread_message_id_case(&cfg, plain), ==, 0);
	}
}

/* ---- outbox_queue_mail ---- */

static GMimeMessage *
parse_outbox(fixture *f, const store_outbox *o)
{
	g_autoptr(GBytes) bytes = NULL;
	const char *raw;
	gsize len;
	GError *e = NULL;
	g_autoptr(GMimeStream) s = NULL;
	g_autoptr(GMimeParser) p = NULL;
	gsize i;

	bytes = outbox_composed(f->st, f->sp, o, &e);
	g_assert_no_error(e);
	raw = g_bytes_get_data(bytes, &len);
	for (i = 0; i < len; i++)
		g_assert_cmpuint((unsigned char)raw[i], <, 0x80);	/* 7-bit */
	s = g_mime_stream_mem_new_with_buffer(raw, len);
	p = g_mime_parser_new_with_stream(s);
	return g_mime_parser_construct_message(p, NULL);
}

static gint64
make_case(fixture *f, const char *member, const char *subject)
{
	store_case c = { .member = (char *)member, .subject = (char *)subject };
	GError *e = NULL;
	gint64 id = store_case_create(f->st, &c, "CASE-", 6, &e);

	g_assert_no_error(e);
	return id;
}

static void
test_queue_mail(void)
{
	fixture f;
	GError *e = NULL;
	g_autoptr(store_case) c = NULL;
	g_autoptr(GPtrArray) refs = g_ptr_array_new();
	g_autoptr(GPtrArray) atts = g_ptr_array_new();
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GMimeMessage) m = NULL;
	g_autofree char *att_digest = NULL;
	store_attachment a = { 0 };
	outbox_mail om = { 0 };
	const store_outbox *o;
	GMimeObject *body;
	gint64 id;

	fixture_setup(&f);
	c = store_case_get(f.st, make_case(&f, "alice@member.test", "Missing royalties"), &e);
	att_digest = spool_put(f.sp, SPOOL_ATT, "%PDF-1.4 test", 13, &e);
	g_assert_no_error(e);
	a.digest = att_digest;
	a.name = "../../statement.pdf";
	a.content_type = "application/pdf\r\nX-Evil: 1";
	g_ptr_array_add(atts, &a);
	g_ptr_array_add(refs, "a@member.test");
	g_ptr_array_add(refs, "bad id with spaces");
	g_ptr_array_add(refs, "b@member.test");
	om.c = c;
	om.kind = "reply";
	om.to_addr = c->member;
	om.to_name = "Alice\r\nBcc: victim@example.net";
	om.from_name = "Sam Staff via Member Services";
	om.text = "Dear Alice, statement attached.";
	om.in_reply_to = "b@member.test";
	om.references = refs;
	om.attachments = atts;
	om.reply_to = "members@example.test";
	om.role = "staff";
	g_assert_true(store_begin(f.st, &e));
	id = outbox_queue_mail(&f.cfg, f.st, f.sp, &om, &e);
	g_assert_no_error(e);
	g_assert_cmpint(id, >, 0);
	g_assert_true(store_commit(f.st, &e));

	rows = store_outbox_list(f.st, c->id, &e);
	g_assert_cmpuint(rows->len, ==, 1);
	o = g_ptr_array_index(rows, 0);
	g_assert_cmpstr(o->kind, ==, "reply");
	g_assert_cmpstr(o->env_from, ==, "members@example.test");	/* NULL: the gateway */
	g_assert_cmpint(thread_message_id_case(&f.cfg, o->message_id), ==, c->id);
	m = parse_outbox(&f, o);
	g_assert_nonnull(m);
	g_assert_cmpstr(g_mime_message_get_subject(m), ==, "Re: Missing royalties [CASE-000001]");
	g_assert_cmpstr(g_mime_object_get_header((GMimeObject *)m, "In-Reply-To"), ==,
	    "<b@member.test>");
	g_assert_cmpstr(g_mime_object_get_header((GMimeObject *)m, "References"), ==,
	    "<a@member.test> <b@member.test>");
	g_assert_null(g_mime_object_get_header((GMimeObject *)m, "Bcc"));
	g_assert_null(g_mime_object_get_header((GMimeObject *)m, "Auto-Submitted"));
	g_assert_nonnull(strstr(g_mime_object_get_header((GMimeObject *)m, "From"),
	    "Sam Staff via Member Services"));
	g_assert_nonnull(strstr(g_mime_object_get_header((GMimeObject *)m, "Reply-To"),
	    "members@example.test"));
	body = g_mime_message_get_mime_part(m);
	g_assert_true(GMIME_IS_MULTIPART(body));
	g_assert_cmpint(g_mime_multipart_get_count((GMimeMultipart *)body), ==, 2);
	{
		GMimePart *part = (GMimePart *)g_mime_multipart_get_part((GMimeMultipart *)body, 1);
		g_autofree char *type = g_mime_content_type_get_mime_type(
		    g_mime_object_get_content_type((GMimeObject *)part));

		g_assert_cmpstr(g_mime_part_get_filename(part), ==, "statement.pdf");
		/* a content type with CR/LF is not copied */
		g_assert_cmpstr(type, ==, "application/octet-stream");
	}
	/* recorded on the case as an outgoing staff message with its attachment */
	{
		g_autoptr(GPtrArray) msgs = store_case_messages(f.st, c->id, &e);
		const store_message *sm = g_ptr_array_index(msgs, 0);
		g_autoptr(GPtrArray) sa = store_message_attachments(f.st, sm->id, &e);

		g_assert_cmpstr(sm->role, ==, "staff");
		g_assert_cmpstr(sm->direction, ==, "out");
		g_assert_cmpuint(sa->len, ==, 1);
	}
	/* a missing attachment file and a bad recipient are errors, nothing queued */
	a.digest = "0000000000000000000000000000000000000000000000000000000000000000";
	g_assert_cmpint(outbox_queue_mail(&f.cfg, f.st, f.sp, &om, &e), ==, 0);
	g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&e);
	om.attachments = NULL;
	om.to_addr = "a@b.test>\r\nRCPT TO:<victim@example.net";
	g_assert_cmpint(outbox_queue_mail(&f.cfg, f.st, f.sp, &om, &e), ==, 0);
	g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&e);
	/* mail about no case: no message row, Message-ID of case 0 */
	om.c = NULL;
	om.kind = "status";
	om.to_addr = "bob@member.test";
	om.env_from = "";
	om.subject = "Re: status";
	om.auto_submitted = "auto-replied";
	g_assert_cmpint(outbox_queue_mail(&f.cfg, f.st, f.sp, &om, &e), >, 0);
	g_assert_no_error(e);
	fixture_teardown(&f);
}

/* ---- status subjects ---- */

static void
test_status_subject(void)
{
	static const struct { const char *subject; gboolean want; } rows[] = {
		{ "status", TRUE }, { "Status", TRUE }, { "STATUS?", TRUE }, { "Re: status", TRUE },
		{ "  statut  :", TRUE }, { "état", TRUE }, { "ÉTAT", TRUE }, { "Fwd: Statut", TRUE },
		{ "status [CASE-000001]", FALSE }, { "status of my royalties", FALSE },
		{ "my status", FALSE }, { "", FALSE }, { NULL, FALSE },
	};
	fixture f;
	guint i;

	fixture_setup(&f);
	for (i = 0; i < G_N_ELEMENTS(rows); i++)
		if (conv_is_status_subject(&f.cfg, rows[i].subject) != rows[i].want)
			g_error("row %u \"%s\"", i, rows[i].subject ? rows[i].subject : "(null)");
	fixture_teardown(&f);
}

/* ---- which case may a message join ---- */

static mail_msg *
msg(const char *from, const char *subject, const char *irt, const char *to)
{
	g_autofree char *raw = g_strdup_printf("From: %s\nTo: %s\nSubject: %s\n%s%s%s"
	    "Message-ID: <m%u@x.test>\n\nhello\n", from, to != NULL ? to : "members@example.test",
	    subject, irt != NULL ? "In-Reply-To: <" : "", irt != NULL ? irt : "",
	    irt != NULL ? ">\n" : "", g_random_int());
	GError *e = NULL;
	mail_msg *m = mail_parse_data(raw, strlen(raw), NULL, &e);

	g_assert_no_error(e);
	return m;
}

static void
test_find_case(void)
{
	fixture f;
	ingest_ctx ctx = { 0 };
	GError *e = NULL;
	gint64 c1, c2;
	g_autofree char *signed_id = NULL;
	store_message in = { 0 };
	struct {
		const char *from, *subject, *irt, *to;
		gint64 want_case, want_refused, want_link;
		staff_role role;
	} rows[] = {
		/* the member by token, by her own Message-ID, by a signed id */
		{ "alice@member.test", "Re: x [CASE-000001]", NULL, NULL, 1, 0, 0, ROLE_MEMBER },
		{ "alice@member.test", "x", "orig.alice@member.test", NULL, 1, 0, 0, ROLE_MEMBER },
		/* a stranger: token and known id refused, signed id admitted */
		{ "mallory@evil.test", "Re: x [CASE-000001]", NULL, NULL, 0, 1, 0, ROLE_UNKNOWN },
		{ "mallory@evil.test", "x", "orig.alice@member.test", NULL, 0, 1, 0, ROLE_UNKNOWN },
		{ "mallory@evil.test", "x", "SIGNED", NULL, 1, 0, 0, ROLE_UNKNOWN },
		/* a participant and staff by token */
		{ "carol@member.test", "[CASE-000001]", NULL, NULL, 1, 0, 0, ROLE_PARTICIPANT },
		{ "sam@example.test", "[CASE-000001]", NULL, NULL, 1, 0, 0, ROLE_STAFF },
		/* plus-address, and one for another gateway */
		{ "alice@member.test", "hi", NULL, "members+CASE-000001@example.test", 1, 0, 0,
		  ROLE_MEMBER },
		{ "alice@member.test", "hi", NULL, "others+CASE-000001@example.test", 0, 0, 0,
		  ROLE_UNKNOWN },
		/* a token for no case, no token at all */
		{ "alice@member.test", "[CASE-000099]", NULL, NULL, 0, 0, 0, ROLE_UNKNOWN },
		{ "alice@member.test", "new question", NULL, NULL, 0, 0, 0, ROLE_UNKNOWN },
		/* case 2 was resolved 30 days ago: the member gets a new linked case, staff join */
		{ "bob@member.test", "[CASE-000002]", NULL, NULL, 0, 0, 2, ROLE_MEMBER },
		{ "sam@example.test", "[CASE-000002]", NULL, NULL, 2, 0, 0, ROLE_STAFF },
	};
	guint i;

	fixture_setup(&f);
	ctx.cfg = &f.cfg;
	ctx.st = f.st;
	ctx.sp = f.sp;
	c1 = make_case(&f, "alice@member.test", "x");
	c2 = make_case(&f, "bob@member.test", "y");
	g_assert_cmpint(c1, ==, 1);
	in.case_id = c1;
	in.direction = "in";
	in.role = "member";
	in.message_id = "orig.alice@member.test";
	in.from_addr = "alice@member.test";
	g_assert_cmpint(store_message_add(f.st, &in, &e), >, 0);
	g_assert_true(store_participant_add(f.st, c1, "carol@member.test", "cc", &e));
	g_assert_true(store_case_set_status(f.st, c2, CASE_RESOLVED, &e));
	g_assert_true(store_event_add(f.st, c2, "resolved", "sam@example.test", "#resolve", &e));
	g_assert_no_error(e);
	signed_id = thread_message_id(&f.cfg, "CASE-000001");
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(mail_msg) m = msg(rows[i].from, rows[i].subject,
		    rows[i].irt != NULL && strcmp(rows[i].irt, "SIGNED") == 0 ? signed_id :
		    rows[i].irt, rows[i].to);
		conv_match cm;

		if (rows[i].want_link != 0) {
			/* a window of 0 days: a resolution a second ago is too old */
			f.cfg.reopen_days = 0;
			g_usleep(1100 * 1000);
		}
		g_assert_true(conv_find_case(&ctx, m, NULL, &cm, &e));
		g_assert_no_error(e);
		if (cm.case_id != rows[i].want_case || cm.refused != rows[i].want_refused ||
		    cm.link_to != rows[i].want_link ||
		    (cm.case_id + cm.refused + cm.link_to > 0 && cm.role != rows[i].role))
			g_error("row %u (%s, %s): case %" G_GINT64_FORMAT " refused %" G_GINT64_FORMAT
			    " link %" G_GINT64_FORMAT " role %d (%s)", i, rows[i].from,
			    rows[i].subject, cm.case_id, cm.refused, cm.link_to, cm.role,
			    cm.via ? cm.via : "");
		f.cfg.reopen_days = 14;
	}
	fixture_teardown(&f);
}

/* ---- the config settings of conversations ---- */

static config *
load_conf(const char *dir, const char *extra, GPtrArray *errors)
{
	g_autofree char *conf = g_build_filename(dir, "c.conf", NULL);
	g_autofree char *text = g_strdup_printf(
	    "gateway = { address = \"members@example.test\"; %s };\n"
	    "imap = { host = \"localhost\"; user = \"u\"; password_file = \"pw\"; };\n"
	    "smtp = { host = \"localhost\"; };\n"
	    "database = \"db/casegate.db\"; spool = \"spool\"; templates = \"tpl\";\n%s\n",
	    g_str_has_prefix(extra, "GW:") ? extra + 3 : "",
	    g_str_has_prefix(extra, "GW:") ? "" : extra);

	g_assert_true(g_file_set_contents(conf, text, -1, NULL));
	return config_load(conf, errors);
}

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
test_config(void)
{
	GError *e = NULL;
	g_autofree char *dir = g_dir_make_tmp("test-conv-conf-XXXXXX", &e);
	g_autofree char *pw = g_build_filename(dir, "pw", NULL);
	g_autofree char *tpl = g_build_filename(dir, "tpl", NULL);
	g_autofree char *ack = g_build_filename(tpl, "ack.txt", NULL);
	g_autofree char *db = g_build_filename(dir, "db", NULL);
	g_autofree char *secret = g_build_filename(db, "secret", NULL);
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	config *cfg;
	GStatBuf sb;

	g_assert_no_error(e);
	g_assert_true(g_file_set_contents(pw, "pw\n", -1, NULL));
	g_assert_cmpint(g_chmod(pw, 0600), ==, 0);
	g_assert_cmpint(g_mkdir(tpl, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(db, 0700), ==, 0);
	g_assert_true(g_file_set_contents(ack, "hi\n", -1, NULL));

	/* defaults: a secret is generated 0600 beside the database */
	cfg = load_conf(dir, "", errors);
	g_assert_cmpuint(errors->len, ==, 0);
	g_assert_nonnull(cfg);
	g_assert_cmpint(g_stat(secret, &sb), ==, 0);
	g_assert_cmpint(sb.st_mode & 0777, ==, 0600);
	g_assert_cmpuint(strlen(cfg->secret), ==, 64);
	g_assert_cmpint(cfg->reopen_days, ==, 14);
	g_assert_false(cfg->plus_addressing);
	g_assert_true(conv_is_status_subject(cfg, "Statut"));
	g_assert_true(conv_is_status_subject(cfg, "ÉTAT"));
	config_free(cfg);

	/* settings */
	cfg = load_conf(dir, "staff = { addresses = [ \"Anna@Example.TEST\" ]; "
	    "domains = [ \"staff.example\" ]; authserv_id = \"mx.example.test\"; "
	    "expose_address = true; };\ncases = { reopen_days = 3; "
	    "status_words = [ \"Where are my cases\" ]; };", errors);
	g_assert_cmpuint(errors->len, ==, 0);
	g_assert_cmpstr(g_ptr_array_index(cfg->staff.addresses, 0), ==, "anna@example.test");
	g_assert_true(cfg->staff.require_auth);
	g_assert_true(cfg->staff.expose_address);
	g_assert_cmpint(cfg->reopen_days, ==, 3);
	g_assert_true(conv_is_status_subject(cfg, "Re: where are my cases?"));
	g_assert_false(conv_is_status_subject(cfg, "status"));
	config_free(cfg);

	/* errors, all at once with file:line */
	g_assert_null(load_conf(dir, "staff = { domains = [ \"example.test\" ]; "
	    "addresses = [ \"not an address\" ]; };\ncases = { reopen_days = -1; "
	    "status_words = [ 1 ]; bogus = 1; };", errors));
	g_assert_true(has_error(errors, "staff.require_auth"));
	g_assert_true(has_error(errors, "not a valid mail address"));
	g_assert_true(has_error(errors, "cases.reopen_days"));
	g_assert_true(has_error(errors, "\"cases.status_words\" element 1 must be a non-empty string"));
	g_assert_true(has_error(errors, "unknown setting \"cases.bogus\""));
	g_assert_true(has_error(errors, "c.conf:"));
	g_ptr_array_set_size(errors, 0);

	/* a readable or short secret is refused */
	g_assert_cmpint(g_chmod(secret, 0644), ==, 0);
	g_assert_null(load_conf(dir, "", errors));
	g_assert_true(has_error(errors, "chmod 600"));
	g_ptr_array_set_size(errors, 0);
	g_assert_true(g_file_set_contents(secret, "short\n", -1, NULL));
	g_assert_cmpint(g_chmod(secret, 0600), ==, 0);
	g_assert_null(load_conf(dir, "GW:secret_file = \"db/secret\";", errors));
	g_assert_true(has_error(errors, "at least 16"));
	rm_rf(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/conversation/signed-ids", test_signed_ids);
	g_test_add_func("/conversation/queue-mail", test_queue_mail);
	g_test_add_func("/conversation/status-subject", test_status_subject);
	g_test_add_func("/conversation/find-case", test_find_case);
	g_test_add_func("/conversation/config", test_config);
	return g_test_run();
}
