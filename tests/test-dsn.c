/*
 * test-dsn.c - bounces: RFC 3464 fields read right, the original's
 * Message-ID found, non-standard bounces recognised, auto-replies and
 * ordinary mail not taken for bounces, and the recognition rate over
 * the third-party bounce corpus (tests/corpus: sisimai, BounceParser,
 * bounce_email).
 */
#include <string.h>

#include "cg.h"
#include "dsn.h"
#include "guard.h"
#include "mail.h"

static const char *
top(void)
{
	return g_getenv("CG_TOP") ? g_getenv("CG_TOP") : ".";
}

static char *
corpus(const char *rel)
{
	return g_build_filename(top(), "tests", "corpus", rel, NULL);
}

static const char dsn_two[] =
	"Return-Path: <>\r\n"
	"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
	"To: members@example.org\r\n"
	"Subject: Undelivered Mail Returned to Sender\r\n"
	"Message-ID: <bounce-1@mx.example.net>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/report; report-type=delivery-status;\r\n"
	"\tboundary=\"BB\"\r\n"
	"\r\n"
	"--BB\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"I'm sorry to have to inform you that your message could not be delivered.\r\n"
	"--BB\r\n"
	"Content-Type: message/delivery-status\r\n"
	"\r\n"
	"Reporting-MTA: dns; mx.example.net\r\n"
	"Arrival-Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	"\r\n"
	"Final-Recipient: rfc822; Alice@Example.COM\r\n"
	"Original-Recipient: rfc822;alice@example.com\r\n"
	"Action: failed\r\n"
	"Status: 5.1.1\r\n"
	"Diagnostic-Code: smtp; 550 5.1.1 <alice@example.com>: Recipient address\r\n"
	"    rejected: User unknown in virtual mailbox table\r\n"
	"\r\n"
	"Final-Recipient: rfc822; bob@example.com\r\n"
	"Action: delayed\r\n"
	"Status: 4.4.1\r\n"
	"Diagnostic-Code: X-Postfix; connect to mx.example.com: Connection timed out\r\n"
	"\r\n"
	"--BB\r\n"
	"Content-Type: text/rfc822-headers\r\n"
	"\r\n"
	"From: Member Services <members@example.org>\r\n"
	"To: alice@example.com\r\n"
	"Subject: Your case [CASE-000001]\r\n"
	"Message-ID:\r\n"
	" <CASE-000001.abcdef@example.org>\r\n"
	"\r\n"
	"--BB--\r\n";

static void
test_fields(void)
{
	g_autoptr(dsn_report) r = dsn_parse_data(dsn_two, sizeof(dsn_two) - 1);
	const dsn_rcpt *a, *b;

	g_assert_nonnull(r);
	g_assert_cmpint(r->kind, ==, DSN_STANDARD);
	g_assert_cmpstr(r->reporting_mta, ==, "mx.example.net");
	g_assert_cmpstr(r->orig_message_id, ==, "CASE-000001.abcdef@example.org");
	g_assert_cmpuint(r->rcpts->len, ==, 2);
	a = g_ptr_array_index(r->rcpts, 0);
	b = g_ptr_array_index(r->rcpts, 1);
	g_assert_cmpstr(a->addr, ==, "Alice@example.com");
	g_assert_cmpstr(a->action, ==, "failed");
	g_assert_cmpstr(a->status, ==, "5.1.1");
	g_assert_true(a->failed);
	g_assert_true(a->hard);
	g_assert_nonnull(strstr(a->diagnostic, "User unknown in virtual mailbox table"));
	g_assert_null(strchr(a->diagnostic, '\n'));
	g_assert_cmpstr(b->addr, ==, "bob@example.com");
	g_assert_cmpstr(b->status, ==, "4.4.1");
	g_assert_false(b->failed);
	g_assert_false(b->hard);
	g_assert_true(dsn_report_failed(r) == a);
}

typedef struct {
	const char *file;	/* under tests/corpus */
	dsn_kind kind;
	const char *addr;	/* first recipient */
	const char *status;
	gboolean hard;
	const char *msgid;	/* NULL: none expected */
} corpus_row;

static const corpus_row corpus_rows[] = {
	{ "sisimai-set-of-emails/bsd/lhost-postfix-01.eml", DSN_STANDARD,
	    "r@p351355.pool.example.ne.jp", "5.1.1", TRUE, NULL },
	{ "sisimai-set-of-emails/bsd/lhost-sendmail-01.eml", DSN_STANDARD,
	    "userunknown@bouncehammer.jp", "5.1.1", TRUE,
	    "E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org" },
	{ "sisimai-set-of-emails/bsd/lhost-qmail-01.eml", DSN_HEURISTIC,
	    "kijitora@example.ne.jp", "5.5.0", TRUE,
	    "000000000.9999999999999.JavaMail.postmaster@mailhub" },
	{ "sisimai-set-of-emails/bsd/lhost-exim-01.eml", DSN_HEURISTIC,
	    "kijitora@example.ed.jp", "5.7.0", TRUE, "E1P1ce6-000Egt-GZ@e1.example.org" },
	/* CR-only line ends */
	{ "sisimai-set-of-emails/mac/lhost-postfix-01.eml", DSN_STANDARD,
	    "r@p351355.pool.example.ne.jp", "5.1.1", TRUE, NULL },
	{ "sisimai-set-of-emails/dos/lhost-gmail-01.eml", DSN_HEURISTIC,
	    "userunknown@example.jp", "5.1.1", TRUE,
	    "D992C2C3-F175-4C4D-97E2-53A90E4E5BF5@gmail.com" },
	{ "bounceparser-corpus/postfix.msg", DSN_STANDARD, "bounce@dest.example.com", "5.0.0",
	    TRUE, "20060527213404.GN13012@mta.domain-1.com" },
	{ "mitio-bounce_email/bounces/tt_bounce_12_soft.txt", DSN_HEURISTIC,
	    "info@radioliepaja.lv", "4.0.0", FALSE,
	    "da9602510709132326l27c896abp48d2df677b444d1b@mail.gmail.com" },
};

static void
test_corpus_rows(void)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(corpus_rows); i++) {
		const corpus_row *c = &corpus_rows[i];
		g_autofree char *path = corpus(c->file);
		g_autoptr(GError) err = NULL;
		g_autoptr(dsn_report) r = dsn_parse_file(path, &err);
		const dsn_rcpt *x;

		g_test_message("%s", c->file);
		g_assert_no_error(err);
		g_assert_nonnull(r);
		g_assert_cmpint(r->kind, ==, c->kind);
		g_assert_cmpuint(r->rcpts->len, >=, 1);
		x = g_ptr_array_index(r->rcpts, 0);
		g_assert_cmpstr(x->addr, ==, c->addr);
		g_assert_cmpstr(x->status, ==, c->status);
		g_assert_cmpint(x->hard, ==, c->hard);
		g_assert_cmpstr(r->orig_message_id, ==, c->msgid);
	}
}

/* Mail that must not be read as a bounce. */
static const char *const not_bounces[] = {
	"sisimai-set-of-emails/not/is-not-bounce-01.eml",
	"sisimai-set-of-emails/not/is-not-bounce-02.eml",
	"sisimai-set-of-emails/bsd/rfc3834-01.eml",
	"sisimai-set-of-emails/bsd/rfc3834-02.eml",
	"bounceparser-corpus/aol-vacation.msg",
	"bounceparser-corpus/autoreply.msg",
	"bounceparser-corpus/polish-autoreply.msg",
	"bounceparser-corpus/spam-with-image.msg",
	"mikel-mail/emails/plain_emails/basic_email.eml",
	"cpython-test_email/msg_08.txt",
};

static void
test_not_bounces(void)
{
	config cfg = { 0 };
	guint i;

	cfg.address = "members@example.org";
	cfg.domain = "example.org";
	cfg.case_prefix = "CASE-";
	for (i = 0; i < G_N_ELEMENTS(not_bounces); i++) {
		g_autofree char *path = corpus(not_bounces[i]);
		g_autoptr(GError) err = NULL;
		g_autoptr(mail_msg) m = NULL;
		g_autoptr(dsn_report) r = NULL;

		if (!g_file_test(path, G_FILE_TEST_EXISTS))
			continue;	/* owned by other tests' corpus copies */
		g_test_message("%s", not_bounces[i]);
		m = mail_parse_file(path, NULL, &err);
		g_assert_no_error(err);
		g_assert_cmpint(guard_classify(&cfg, m), !=, GUARD_BOUNCE);
		r = dsn_parse_file(path, &err);
		g_assert_null(r);
	}
}

/* Files of the bounce corpus that are not bounces (upstream says so). */
static const char *const corpus_negatives[] = {
	"aol-vacation.msg", "autoreply.msg", "polish-autoreply.msg", "warning-5.msg",
	"warning-6.msg", "bluebottle.msg", "spam-bogus-email-in-report.msg",
	"spam-lots-of-bogus-addresses.msg", "spam-with-badly-parsed-email.msg",
	"spam-with-image.msg", NULL,
};

static gboolean
is_negative(const char *name)
{
	const char *const *n;

	for (n = corpus_negatives; *n != NULL; n++)
		if (strcmp(name, *n) == 0)
			return TRUE;
	return FALSE;
}

static void
collect(const char *dir, const char *const *prefixes, GPtrArray *out)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		const char *const *p;
		char *path = g_build_filename(dir, name, NULL);

		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			collect(path, prefixes, out);
			g_free(path);
			continue;
		}
		for (p = prefixes; *p != NULL; p++)
			if (g_str_has_prefix(name, *p))
				break;
		if (*p == NULL || strcmp(name, "SOURCE.md") == 0 || is_negative(name))
			g_free(path);
		else
			g_ptr_array_add(out, path);
	}
	g_dir_close(d);
}

/*
 * Every bounce of the corpus: how many are recognised (classified as a
 * bounce and parsed), how many name a recipient and the original's
 * Message-ID.  The issue asks for 95 % recognised.
 */
static void
test_corpus_rate(void)
{
	static const char *const sisimai[] = { "lhost-", "rhost-", "rfc3464-", NULL };
	static const char *const all[] = { "", NULL };
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *d1 = corpus("sisimai-set-of-emails");
	g_autofree char *d2 = corpus("bounceparser-corpus");
	g_autofree char *d3 = corpus("mitio-bounce_email/bounces");
	config cfg = { 0 };
	guint i, seen = 0, rcpt = 0, msgid = 0;
	double rate;

	cfg.address = "members@example.org";
	cfg.domain = "example.org";
	cfg.case_prefix = "CASE-";
	collect(d1, sisimai, files);
	collect(d2, all, files);
	collect(d3, all, files);
	g_assert_cmpuint(files->len, >=, 600);
	for (i = 0; i < files->len; i++) {
		const char *path = g_ptr_array_index(files, i);
		g_autoptr(mail_msg) m = mail_parse_file(path, NULL, NULL);
		g_autoptr(dsn_report) r = dsn_parse_file(path, NULL);

		if (m == NULL || r == NULL || guard_classify(&cfg, m) != GUARD_BOUNCE) {
			g_test_message("not recognised: %s", path);
			continue;
		}
		seen++;
		if (r->rcpts->len > 0 && ((dsn_rcpt *)g_ptr_array_index(r->rcpts, 0))->addr)
			rcpt++;
		if (r->orig_message_id != NULL)
			msgid++;
	}
	rate = 100.0 * seen / files->len;
	g_test_message("bounce corpus: %u files, %u recognised (%.1f %%), %u with a "
	    "recipient (%.1f %%), %u with the original Message-ID (%.1f %%)", files->len,
	    seen, rate, rcpt, 100.0 * rcpt / files->len, msgid, 100.0 * msgid / files->len);
	g_assert_cmpfloat(rate, >=, 95.0);
	g_assert_cmpfloat(100.0 * rcpt / files->len, >=, 90.0);
}

/* Hostile reports: absurd field counts, garbage, truncation; no crash, bounded output. */
static void
test_hostile(void)
{
	GString *s = g_string_new("From: MAILER-DAEMON@x.example\nReturn-Path: <>\n"
	    "Subject: Undelivered Mail\nContent-Type: multipart/report; "
	    "report-type=delivery-status; boundary=Z\n\n--Z\n"
	    "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n");
	g_autoptr(dsn_report) r = NULL;
	int i;

	for (i = 0; i < 500; i++)
		g_string_append_printf(s, "Final-Recipient: rfc822; u%d@example.com\r\n"
		    "Action: failed\nStatus: 5.1.%d\nDiagnostic-Code: smtp; 550 %s\n\n", i, i % 10,
		    i == 3 ? "\x01\x02\x1b[31m evil\r\nInjected: yes" : "no");
	g_string_append(s, "Final-Recipient: rfc822; \"a\r\n RCPT TO:<x@y>\"@evil.example\n"
	    "Action: failed\n\n--Z--\n");
	r = dsn_parse_data(s->str, s->len);
	g_assert_nonnull(r);
	g_assert_cmpuint(r->rcpts->len, <=, 100);
	for (i = 0; i < (int)r->rcpts->len; i++) {
		const dsn_rcpt *x = g_ptr_array_index(r->rcpts, i);

		g_assert_true(x->addr == NULL || cg_address_valid(x->addr));
		g_assert_true(x->diagnostic == NULL || (strpbrk(x->diagnostic, "\r\n\x1b") == NULL &&
		    g_utf8_validate(x->diagnostic, -1, NULL)));
	}
	g_string_free(s, TRUE);
	/* truncated in the middle, empty, not mail at all */
	g_assert_null(dsn_parse_data("", 0));
	g_assert_null(dsn_parse_data("\x00\x01\x02", 3));
	g_clear_pointer(&r, dsn_report_free);
	r = dsn_parse_data(dsn_two, 600);
	g_assert_true(r == NULL || r->rcpts->len <= 2);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/dsn/fields", test_fields);
	g_test_add_func("/dsn/corpus-rows", test_corpus_rows);
	g_test_add_func("/dsn/not-bounces", test_not_bounces);
	g_test_add_func("/dsn/corpus-rate", test_corpus_rate);
	g_test_add_func("/dsn/hostile", test_hostile);
	return g_test_run();
}
