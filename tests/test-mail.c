/*
 * test-mail.c - message parsing (mail.c) and the text helpers under it
 * (text.c): hand-written messages for each trap, then real messages from
 * tests/corpus/ with values checked by reading the files.
 */
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "mail.h"
#include "spool.h"
#include "text.h"

/*
 * Helpers.
 */

static mail_msg *
parse_ok(const char *raw, spool *sp)
{
	g_autoptr(GError) err = NULL;
	mail_msg *m = mail_parse_data(raw, strlen(raw), sp, &err);

	g_assert_no_error(err);
	g_assert_nonnull(m);
	return m;
}

static gboolean
has_problem(const mail_msg *m, const char *needle)
{
	guint i;

	for (i = 0; i < m->problems->len; i++)
		if (strstr(g_ptr_array_index(m->problems, i), needle) != NULL)
			return TRUE;
	return FALSE;
}

static gboolean
clean_utf8(const char *s)
{
	return s == NULL || (g_utf8_validate(s, -1, NULL) && strpbrk(s, "\r\n") == NULL);
}

/* Everything a mail_msg holds is valid UTF-8 and fit for its use. */
static void
assert_sane(const mail_msg *m)
{
	guint i;

	g_assert_nonnull(m->subject);
	g_assert_nonnull(m->text);
	g_assert_true(clean_utf8(m->subject));
	g_assert_true(g_utf8_validate(m->text, -1, NULL));
	g_assert_true(clean_utf8(m->from_name));
	g_assert_true(m->from_addr == NULL || cg_address_valid(m->from_addr));
	g_assert_true(m->reply_to == NULL || cg_address_valid(m->reply_to));
	g_assert_true(m->message_id == NULL || cg_protocol_safe(m->message_id, 998));
	g_assert_true(m->in_reply_to == NULL || cg_protocol_safe(m->in_reply_to, 998));
	for (i = 0; i < m->to->len; i++)
		g_assert_true(cg_address_valid(g_ptr_array_index(m->to, i)));
	for (i = 0; i < m->cc->len; i++)
		g_assert_true(cg_address_valid(g_ptr_array_index(m->cc, i)));
	for (i = 0; i < m->references->len; i++)
		g_assert_true(cg_protocol_safe(g_ptr_array_index(m->references, i), 998));
	for (i = 0; i < m->headers->len; i++) {
		mail_header *h = g_ptr_array_index(m->headers, i);

		g_assert_true(clean_utf8(h->name));
		g_assert_true(clean_utf8(h->value));
	}
	for (i = 0; i < m->attachments->len; i++) {
		mail_attachment *a = g_ptr_array_index(m->attachments, i);

		g_assert_true(clean_utf8(a->name));
		g_assert_cmpstr(a->name, !=, "");
		g_assert_null(strchr(a->name, '/'));
		g_assert_true(clean_utf8(a->content_type));
		g_assert_nonnull(strchr(a->content_type, '/'));
	}
	for (i = 0; i < m->problems->len; i++)
		g_assert_true(clean_utf8(g_ptr_array_index(m->problems, i)));
}

static const char *
corpus_dir(void)
{
	static char *dir;

	if (dir == NULL) {
		const char *top = g_getenv("CG_TOP");

		dir = g_build_filename(top != NULL ? top : ".", "tests", "corpus", NULL);
	}
	return dir;
}

/*
 * The text helpers.
 */

static void
test_decode_header(void)
{
	static const struct { const char *raw, *want; gboolean problem; } rows[] = {
		/* GMime bug #133: padded base64 word followed by another */
		{ " =?UTF-8?B?UmVjaG51bmc=?= =?UTF-8?B?IE5yLiA0NzEx?=\r\n", "Rechnung Nr. 4711", FALSE },
		{ "=?UTF-8?B?SGVsbG8=?= =?UTF-8?B?IHdvcmxk?=", "Hello world", FALSE },
		{ "=?utf-8?q?caf=C3=A9_au_lait?=", "caf\xc3\xa9 au lait", FALSE },
		{ "=?iso-8859-1?q?caf=E9?= =?utf-8?b?IOKCrA==?=", "caf\xc3\xa9 \xe2\x82\xac", FALSE },
		/* one character split across two words */
		{ "=?UTF-8?B?ww==?= =?UTF-8?B?qQ==?=", "\xc3\xa9", FALSE },
		{ "[Automatyczna =?iso-8859-2?Q?odpowied=BC?=] test", "[Automatyczna odpowied\xc5\xba] test", FALSE },
		{ "=?utf-8*de?q?Gr=C3=BC=C3=9Fe?=", "Gr\xc3\xbc\xc3\x9f" "e", FALSE },
		{ "plain  text\r\n\tfolded", "plain text folded", FALSE },
		{ "=?x-bogus?q?abc?=", "abc", TRUE },
		{ "raw latin1 caf\xe9", "raw latin1 caf\xc3\xa9", TRUE },
		{ "raw utf8 caf\xc3\xa9", "raw utf8 caf\xc3\xa9", FALSE },
		{ "=?broken", "=?broken", FALSE },
		{ "=?utf-8?x?abc?=", "=?utf-8?x?abc?=", FALSE },
		{ "a =?utf-8?q?b?= c", "a b c", FALSE },
		{ "=?utf-8?q?a=0D=0AX-Injected:_1?=", "aX-Injected: 1", FALSE },
		{ "=?utf-8?b?AGE=?=", "a", FALSE },	/* NUL dropped */
		{ "", "", FALSE },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *problem = NULL;
		g_autofree char *got = text_decode_header(rows[i].raw, &problem);

		g_test_message("row %zu", i);
		g_assert_cmpstr(got, ==, rows[i].want);
		g_assert_cmpint(problem != NULL, ==, rows[i].problem);
	}
}

static void
test_to_utf8(void)
{
	static const struct {
		const char *in, *charset, *want, *problem;
	} rows[] = {
		{ "caf\xe9", NULL, "caf\xc3\xa9", "windows-1252" },
		{ "caf\xc3\xa9", NULL, "caf\xc3\xa9", NULL },
		{ "ok \xff\xfe end", "utf-8", "ok \xc3\xbf\xc3\xbe end", "not valid UTF-8" },
		{ "\x93quoted\x94", "iso-8859-1", "\xe2\x80\x9cquoted\xe2\x80\x9d", NULL },
		{ "Hi Mom -+Jjo--!", "unicode-1-1-utf-7", "Hi Mom -\xe2\x98\xba-!", NULL },
		{ "\xf7\xc5\xd2\xd3\xc9\xd1", "koi8-r", "\xd0\x92\xd0\xb5\xd1\x80\xd1\x81\xd0\xb8\xd1\x8f", NULL },
		{ "abc", "x-unknown", "abc", "charset x-unknown unknown, decoded as UTF-8" },
		{ "ab\xe9", "x-unknown", "ab\xc3\xa9", "charset x-unknown unknown, decoded as windows-1252" },
		{ "\x1b$B$\"\x1b(B", "iso-2022-jp", "\xe3\x81\x82", NULL },
		{ "a\xff" "b", "shift_jis", "a\xef\xbf\xbd" "b", "invalid bytes" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *problem = NULL;
		g_autofree char *got = text_to_utf8(rows[i].in, strlen(rows[i].in),
		    rows[i].charset, &problem);

		g_test_message("row %zu", i);
		g_assert_cmpstr(got, ==, rows[i].want);
		if (rows[i].problem == NULL)
			g_assert_null(problem);
		else
			g_assert_nonnull(strstr(problem, rows[i].problem));
	}
	{
		/* NUL bytes are dropped whatever the charset */
		g_autofree char *a = text_to_utf8("a\0b", 3, NULL, NULL);
		g_autofree char *b = text_to_utf8("a\0b", 3, "koi8-r", NULL);
		g_autofree char *c = text_make_utf8("a\0b\xff", 4, NULL);

		g_assert_cmpstr(a, ==, "ab");
		g_assert_cmpstr(b, ==, "ab");
		g_assert_cmpstr(c, ==, "ab\xc3\xbf");
	}
}

static void
test_header_clean(void)
{
	static const struct { const char *in, *want; } rows[] = {
		{ "a\r\nX-Evil: 1", "aX-Evil: 1" },
		{ "  lead and trail  ", "lead and trail" },
		{ "tab\there", "tab here" },
		{ "bell\a\x1b[31m", "bell[31m" },
		{ "c1\xc2\x85" "x", "c1x" },
		{ "bad\xff", "bad\xc3\xbf" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *got = text_header_clean(rows[i].in);

		g_assert_cmpstr(got, ==, rows[i].want);
	}
}

static void
test_merge_words(void)
{
	g_autofree char *a = text_merge_encoded_words(
	    "name=\"=?UTF-8?B?UmU=?= =?UTF-8?B?Y2hudW5nLnBkZg==?=\"");
	g_autofree char *b = text_merge_encoded_words("=?UTF-8?B?UmU=?= plain");
	g_autofree char *c = text_merge_encoded_words("no words");

	/* "Rechnung.pdf" as one word */
	g_assert_cmpstr(a, ==, "name=\"=?UTF-8?B?UmVjaG51bmcucGRm?=\"");
	g_assert_cmpstr(b, ==, "=?UTF-8?B?UmU=?= plain");
	g_assert_cmpstr(c, ==, "no words");
}

static void
test_html(void)
{
	static const struct { const char *html, *want; } rows[] = {
		{ "<p>Hello &amp; <b>welcome</b></p><p>Second</p>", "Hello & welcome\n\nSecond" },
		{ "<html><head><title>T</title><style>p{}</style></head>"
		  "<body>Line<br>Next<script>alert(1)</script></body></html>", "Line\nNext" },
		{ "<ul><li>one</li><li>two</li></ul>", "- one\n- two" },
		{ "<div>Hi</div><blockquote>quoted<br>more</blockquote><div>after</div>",
		  "Hi\n\n> quoted\n> more\n\nafter" },
		{ "<a href=\"https://example.org/x\">here</a>", "here <https://example.org/x>" },
		{ "<a href=\"https://example.org/\">https://example.org/</a>", "https://example.org/" },
		{ "<a href=\"javascript:evil()\">x</a>", "x" },
		{ "caf&eacute;&nbsp;&#8364;", "caf\xc3\xa9 \xe2\x82\xac" },
		{ "<pre>a  b\n c</pre>", "a  b\n c" },
		{ "<p>unclosed <b>bold <i>it", "unclosed bold it" },
		{ "", "" },
		{ "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *got = text_from_html(rows[i].html,
		    strlen(rows[i].html), 1 << 20);

		g_test_message("row %zu", i);
		g_assert_cmpstr(got, ==, rows[i].want);
	}
	{
		g_autofree char *got = text_from_html("<p>abcdef\xc3\xa9</p>", 13, 7);

		g_assert_cmpstr(got, ==, "abcdef");
	}
}

/*
 * Hand-written messages.
 */

typedef struct {
	const char	*name;
	const char	*raw;
	const char	*subject;	/* NULL: not checked */
	const char	*from;		/* NULL: not checked; "-": none */
	const char	*text_has;	/* substring of text */
	int		 html;		/* text_from_html, -1: not checked */
	int		 natt;		/* attachments, -1: not checked */
	const char	*att_name;	/* first attachment */
	const char	*att_type;
	const char	*problem_has;
} mail_case;

static const mail_case inline_cases[] = {
	{ "bug133-subject",
	  "From: a@example.com\n"
	  "Subject: =?UTF-8?B?UmVjaG51bmc=?= =?UTF-8?B?IE5yLiA0NzEx?=\n\nbody\n",
	  "Rechnung Nr. 4711", "a@example.com", "body", 0, 0, NULL, NULL, NULL },
	{ "bug133-filename",
	  "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=XX\n\n"
	  "--XX\nContent-Type: text/plain\n\nsee attached\n"
	  "--XX\nContent-Type: application/pdf; name=\"=?UTF-8?B?UmU=?= =?UTF-8?B?Y2hudW5nLnBkZg==?=\"\n"
	  "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--XX--\n",
	  "x", NULL, "see attached", 0, 1, "Rechnung.pdf", "application/pdf", NULL },
	{ "rfc2231-filename",
	  "From: a@example.com\nSubject: rates\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=XX\n\n"
	  "--XX\nContent-Type: text/plain; charset=us-ascii\n\nrates\n"
	  "--XX\nContent-Type: Application/PDF\n"
	  "Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates%20%C3%BC.pdf\n\n%PDF\n--XX--\n",
	  "rates", NULL, "rates", 0, 1, "\xe2\x82\xac rates \xc3\xbc.pdf", "application/pdf", NULL },
	{ "traversal-filename",
	  "From: a@example.com\nSubject: evil\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=XX\n\n"
	  "--XX\nContent-Type: text/plain\n\nhi\n"
	  "--XX\nContent-Type: application/octet-stream\n"
	  "Content-Disposition: attachment; filename=\"../../etc/passwd\"\n\nroot:x:0:0\n--XX--\n",
	  "evil", NULL, "hi", 0, 1, "passwd", "application/octet-stream", "sanitised" },
	{ "latin1-no-charset",
	  "From: a@example.com\nSubject: x\n\ncaf\xe9 cr\xe8me\n",
	  "x", NULL, "caf\xc3\xa9 cr\xc3\xa8me", 0, 0, NULL, NULL, "windows-1252" },
	{ "utf8-declared-invalid",
	  "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
	  "Content-Type: text/plain; charset=utf-8\n\nok \xff\xfe end\n",
	  "x", NULL, "ok \xc3\xbf\xc3\xbe end", 0, 0, NULL, NULL, "not valid UTF-8" },
	{ "unknown-charset",
	  "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
	  "Content-Type: text/plain; charset=x-unknown\n\nna\xefve\n",
	  "x", NULL, "na\xc3\xafve", 0, 0, NULL, NULL, "charset x-unknown unknown, decoded as windows-1252" },
	{ "qp-iso-8859-2",
	  "From: a@example.com\nSubject: =?ISO-8859-2?Q?Nikad_vi=B9e?=\nMIME-Version: 1.0\n"
	  "Content-Type: text/plain; charset=ISO-8859-2\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "Na =B9triku se su=B9i =B9osi=E6.\n",
	  "Nikad vi\xc5\xa1" "e", NULL, "Na \xc5\xa1triku se su\xc5\xa1i \xc5\xa1osi\xc4\x87.", 0, 0, NULL, NULL, NULL },
	{ "html-only",
	  "From: a@example.com\nSubject: html\nMIME-Version: 1.0\n"
	  "Content-Type: text/html; charset=windows-1252\n\n"
	  "<html><head><style>p {}</style></head><body><p>Dear team,</p>"
	  "<p>price \x80 5 &amp; more</p><script>x()</script></body></html>\n",
	  "html", NULL, "Dear team,\n\nprice \xe2\x82\xac 5 & more", 1, 0, NULL, NULL, NULL },
	{ "alternative-prefers-plain",
	  "From: a@example.com\nSubject: alt\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/alternative; boundary=XX\n\n"
	  "--XX\nContent-Type: text/plain; charset=utf-8\n\nplain version\n"
	  "--XX\nContent-Type: text/html; charset=utf-8\n\n<p>html version</p>\n--XX--\n",
	  "alt", NULL, "plain version", 0, 0, NULL, NULL, NULL },
	{ "alternative-html-first",
	  "From: a@example.com\nSubject: alt\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/alternative; boundary=XX\n\n"
	  "--XX\nContent-Type: text/html; charset=utf-8\n\n<p>html version</p>\n"
	  "--XX\nContent-Type: text/plain; charset=utf-8\n\nplain version\n--XX--\n",
	  "alt", NULL, "plain version", 0, 0, NULL, NULL, NULL },
	{ "alternative-empty-plain",
	  "From: a@example.com\nSubject: alt\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/alternative; boundary=XX\n\n"
	  "--XX\nContent-Type: text/plain; charset=utf-8\n\n \n\n"
	  "--XX\nContent-Type: text/html; charset=utf-8\n\n<p>the real text</p>\n--XX--\n",
	  "alt", NULL, "the real text", 1, 0, NULL, NULL, NULL },
	{ "text-attachment-is-not-body",
	  "From: a@example.com\nSubject: log\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=XX\n\n"
	  "--XX\nContent-Type: text/plain\nContent-Disposition: attachment; filename=log.txt\n\nlog line\n"
	  "--XX\nContent-Type: text/html\n\n<p>body</p>\n--XX--\n",
	  "log", NULL, "body", 1, 1, "log.txt", "text/plain", NULL },
	{ "nested-rfc822",
	  "From: a@example.com\nSubject: Fwd: inner\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=OUT\n\n"
	  "--OUT\nContent-Type: text/html\n\n<p>outer text</p>\n"
	  "--OUT\nContent-Type: message/rfc822\n\n"
	  "From: b@example.com\nSubject: inner\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=IN\n\n"
	  "--IN\nContent-Type: text/plain\n\ninner text\n"
	  "--IN\nContent-Type: application/octet-stream; name=inner.bin\n"
	  "Content-Transfer-Encoding: base64\n\nAAECAw==\n--IN--\n"
	  "--OUT--\n",
	  "Fwd: inner", "a@example.com", "outer text", 1, 1, "inner.bin", "application/octet-stream", NULL },
	{ "only-forwarded",
	  "From: a@example.com\nSubject: Fwd\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=OUT\n\n"
	  "--OUT\nContent-Type: message/rfc822\n\n"
	  "From: b@example.com\nSubject: inner\n\ninner text\n"
	  "--OUT--\n",
	  "Fwd", "a@example.com", "inner text", 0, 0, NULL, NULL, NULL },
	{ "crlf-in-quoted-address",
	  "From: Mallory <\"a\r\n RCPT TO:<victim@example.net>\"@example.com>\r\n"
	  "To: \"b\r\n DATA\"@example.com, ok@example.com\r\n"
	  "Subject: x\r\n\r\nbody\r\n",
	  "x", "-", "body", 0, 0, NULL, NULL, "unusable address" },
	{ "missing-headers",
	  "X-Nothing: here\n\nbody only\n",
	  "", "-", "body only", 0, 0, NULL, NULL, NULL },
	{ "mbox-from-line",
	  "From someone@example.com Mon Jan  1 00:00:00 2024\n"
	  "From: c@example.com\nSubject: mbox\n\nbody\n",
	  "mbox", "c@example.com", "body", 0, 0, NULL, NULL, NULL },
	{ "control-in-body",
	  "From: a@example.com\nSubject: ctl\n\nbefore\x01" "after\n",
	  "ctl", NULL, "before\x01" "after", 0, 0, NULL, NULL, NULL },
	{ "cr-only",
	  "From: a@example.com\rSubject: old mac\r\rbody line 1\rbody line 2\r",
	  "old mac", "a@example.com", "body line 1\nbody line 2", 0, 0, NULL, NULL, "CR-only" },
	{ "utf7-bounce",
	  "From: postmaster@example.com\nSubject: DSN\nMIME-Version: 1.0\n"
	  "Content-Type: text/plain; charset=unicode-1-1-utf-7\n\nHi Mom -+Jjo--!\n",
	  "DSN", NULL, "Hi Mom -\xe2\x98\xba-!", 0, 0, NULL, NULL, NULL },
	{ "8bit-utf8-headers",
	  "From: =?UTF-8?B?SsO8cmdlbg==?= =?UTF-8?B?IE3DvGxsZXI=?= <j@Example.DE>\n"
	  "Subject: Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln\n\nx\n",
	  "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln", "j@example.de", "x", 0, 0, NULL, NULL, NULL },
	{ "signature-not-attachment",
	  "From: a@example.com\nSubject: signed\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/signed; boundary=XX; protocol=\"application/pgp-signature\"\n\n"
	  "--XX\nContent-Type: text/plain\n\nsigned text\n"
	  "--XX\nContent-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n--XX--\n",
	  "signed", NULL, "signed text", 0, 0, NULL, NULL, NULL },
	{ "inline-image-no-name",
	  "From: a@example.com\nSubject: img\nMIME-Version: 1.0\n"
	  "Content-Type: multipart/related; boundary=XX\n\n"
	  "--XX\nContent-Type: text/html\n\n<p>see <img src=\"cid:1\" alt=\"logo\"></p>\n"
	  "--XX\nContent-Type: IMAGE/PNG\nContent-ID: <1>\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--XX--\n",
	  "img", NULL, "see logo", 1, 1, "attachment", "image/png", NULL },
};

static void
check_case(const mail_case *c, const mail_msg *m)
{
	g_test_message("case %s", c->name);
	assert_sane(m);
	if (c->subject != NULL)
		g_assert_cmpstr(m->subject, ==, c->subject);
	if (c->from != NULL && strcmp(c->from, "-") == 0)
		g_assert_null(m->from_addr);
	else if (c->from != NULL)
		g_assert_cmpstr(m->from_addr, ==, c->from);
	if (c->text_has != NULL && strstr(m->text, c->text_has) == NULL)
		g_error("%s: text \"%s\" lacks \"%s\"", c->name, m->text, c->text_has);
	if (c->html >= 0)
		g_assert_cmpint(m->text_from_html, ==, c->html);
	if (c->natt >= 0)
		g_assert_cmpuint(m->attachments->len, ==, c->natt);
	if (c->att_name != NULL) {
		mail_attachment *a = g_ptr_array_index(m->attachments, 0);

		g_assert_cmpstr(a->name, ==, c->att_name);
		g_assert_cmpstr(a->content_type, ==, c->att_type);
	}
	if (c->problem_has != NULL && !has_problem(m, c->problem_has))
		g_error("%s: no problem noted matching \"%s\"", c->name, c->problem_has);
}

static void
test_inline_cases(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(inline_cases); i++) {
		g_autoptr(mail_msg) m = parse_ok(inline_cases[i].raw, NULL);

		check_case(&inline_cases[i], m);
	}
}

/* The same messages through a file, with attachments spooled. */
static void
test_inline_cases_file_spool(void)
{
	g_autofree char *dir = g_dir_make_tmp("test-mail-XXXXXX", NULL);
	g_autofree char *file = g_build_filename(dir, "msg.eml", NULL);
	g_autofree char *spdir = g_build_filename(dir, "spool", NULL);
	g_autoptr(spool) sp = spool_open(spdir, NULL);
	g_autofree char *cmd = NULL;
	size_t i;
	guint k;

	g_assert_nonnull(sp);
	for (i = 0; i < G_N_ELEMENTS(inline_cases); i++) {
		g_autoptr(GError) err = NULL;
		g_autoptr(mail_msg) m = NULL;

		g_assert_true(g_file_set_contents(file, inline_cases[i].raw, -1, NULL));
		m = mail_parse_file(file, sp, &err);
		g_assert_no_error(err);
		check_case(&inline_cases[i], m);
		g_assert_cmpint(m->size, ==, strlen(inline_cases[i].raw));
		for (k = 0; k < m->attachments->len; k++) {
			mail_attachment *a = g_ptr_array_index(m->attachments, k);
			g_autofree char *path = spool_path(sp, SPOOL_ATT, a->digest);
			struct stat st;

			g_assert_nonnull(path);
			g_assert_cmpint(stat(path, &st), ==, 0);
			g_assert_cmpint(st.st_size, ==, a->size);
		}
	}
	cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

static void
test_attachment_content(void)
{
	static const char raw[] =
	    "From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=XX\n\n"
	    "--XX\nContent-Type: text/plain\n\nhi\n"
	    "--XX\nContent-Type: application/octet-stream; name=a.bin\n"
	    "Content-Transfer-Encoding: base64\n\naGVsbG8K\n"
	    "--XX\nContent-Type: application/octet-stream; name=b.bin\n"
	    "Content-Transfer-Encoding: quoted-printable\n\nhello=0A=\n\n--XX--\n";
	g_autofree char *dir = g_dir_make_tmp("test-mail-XXXXXX", NULL);
	g_autoptr(spool) sp = spool_open(dir, NULL);
	g_autoptr(mail_msg) m = parse_ok(raw, sp);
	g_autoptr(mail_msg) m2 = parse_ok(raw, NULL);
	mail_attachment *a, *b;
	g_autofree char *path = NULL, *data = NULL, *cmd = NULL;
	gsize len;

	g_assert_cmpuint(m->attachments->len, ==, 2);
	a = g_ptr_array_index(m->attachments, 0);
	b = g_ptr_array_index(m->attachments, 1);
	/* sha256("hello\n"): same bytes, same file */
	g_assert_cmpstr(a->digest, ==,
	    "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
	g_assert_cmpstr(a->digest, ==, b->digest);
	g_assert_cmpint(a->size, ==, 6);
	path = spool_path(sp, SPOOL_ATT, a->digest);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpmem(data, len, "hello\n", 6);
	/* without a spool: listed and sized, not saved */
	a = g_ptr_array_index(m2->attachments, 0);
	g_assert_null(a->digest);
	g_assert_cmpint(a->size, ==, 6);
	g_assert_cmpstr(a->name, ==, "a.bin");
	cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

static void
test_addresses(void)
{
	static const char raw[] =
	    "From: \"Doe, John\" <John.Doe@Example.COM>\n"
	    "To: Team: a@example.org, B@Example.ORG;, undisclosed-recipients:;\n"
	    "To: user@xn--mnchen-3ya.de, bare-local-part\n"
	    "Cc: =?UTF-8?B?SsO8cmdlbg==?= <j@example.de>, a@example.org, broken@\n"
	    "Reply-To: Support: help@example.net, other@example.net;\n"
	    "Return-Path: <Bounce@Example.COM>\n"
	    "Subject: addrs\n\nx\n";
	g_autoptr(mail_msg) m = parse_ok(raw, NULL);

	assert_sane(m);
	g_assert_cmpstr(m->from_addr, ==, "John.Doe@example.com");
	g_assert_cmpstr(m->from_name, ==, "Doe, John");
	g_assert_cmpuint(m->to->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(m->to, 0), ==, "a@example.org");
	g_assert_cmpstr(g_ptr_array_index(m->to, 1), ==, "B@example.org");
	g_assert_cmpstr(g_ptr_array_index(m->to, 2), ==, "user@xn--mnchen-3ya.de");
	g_assert_cmpuint(m->cc->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(m->cc, 0), ==, "j@example.de");
	g_assert_cmpstr(m->reply_to, ==, "help@example.net");
	g_assert_cmpstr(m->return_path, ==, "Bounce@example.com");
	g_assert_true(has_problem(m, "bare-local-part"));
	g_assert_cmpstr(mail_addr_domain(m->from_addr), ==, "example.com");
	g_assert_null(mail_addr_domain("nodomain"));
	g_assert_null(mail_addr_domain("trailing@"));
	g_assert_null(mail_addr_domain(NULL));
}

/* libs.md 5.7: a fold inside a quoted local part keeps its CRLF in GMime */
static void
test_crlf_address(void)
{
	g_autoptr(mail_msg) m = parse_ok(inline_cases[15].raw, NULL);

	g_assert_cmpstr(inline_cases[15].name, ==, "crlf-in-quoted-address");
	g_assert_null(m->from_addr);
	g_assert_cmpuint(m->to->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(m->to, 0), ==, "ok@example.com");
}

static void
test_return_path(void)
{
	static const struct { const char *raw; const char *want; } rows[] = {
		{ "Return-Path: <>\n\nx\n", "" },
		{ "Return-Path: < >\n\nx\n", "" },
		{ "Return-Path: <a@b.example>\n\nx\n", "a@b.example" },
		{ "Return-Path: a@B.EXAMPLE\n\nx\n", "a@b.example" },
		{ "Return-Path: <a b@c.example>\n\nx\n", NULL },
		{ "Subject: none\n\nx\n", NULL },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(mail_msg) m = parse_ok(rows[i].raw, NULL);

		g_assert_cmpstr(m->return_path, ==, rows[i].want);
	}
}

static void
test_ids_and_date(void)
{
	static const struct {
		const char *raw, *msgid, *irt, *refs;
		gint64 date;
	} rows[] = {
		{ "Message-ID: <abc.123@mail.example.com>\n"
		  "In-Reply-To: <prev.1@example.com> (comment)\n"
		  "References: <root.0@example.com>\n <prev.1@example.com> garbage\n"
		  "Date: Thu, 01 Jan 2015 00:00:00 +0000\n\nx\n",
		  "abc.123@mail.example.com", "prev.1@example.com",
		  "root.0@example.com prev.1@example.com", 1420070400 },
		{ "Message-ID: <a b@example.com>\nDate: yesterday\n\nx\n",
		  NULL, NULL, "", 0 },
		{ "Message-ID: <a\x01" "b@example.com>\nIn-Reply-To: <x<y@z>\n\nx\n",
		  NULL, NULL, "", 0 },
		{ "Message-ID: no-brackets@example.com\n"
		  "Date: Tue, 10 May 2005 11:26:39 -0600\n\nx\n",
		  "no-brackets@example.com", NULL, "", 1115745999 },
		{ "Message-ID: <caf\xc3\xa9@example.com>\n\nx\n", NULL, NULL, "", 0 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(mail_msg) m = parse_ok(rows[i].raw, NULL);
		g_autofree char *refs = NULL;

		g_test_message("row %zu", i);
		assert_sane(m);
		g_assert_cmpstr(m->message_id, ==, rows[i].msgid);
		g_assert_cmpstr(m->in_reply_to, ==, rows[i].irt);
		g_ptr_array_add(m->references, NULL);
		refs = g_strjoinv(" ", (char **)m->references->pdata);
		g_ptr_array_set_size(m->references, m->references->len - 1);
		g_assert_cmpstr(refs, ==, rows[i].refs);
		g_assert_cmpint(m->date, ==, rows[i].date);
	}
}

static void
test_headers(void)
{
	static const char raw[] =
	    "Received: from a\n\tby b\nSubject: =?utf-8?q?hi?=\n"
	    "X-Spam: =?UTF-8?B?UmVjaG51bmc=?= =?UTF-8?B?IE5yLiA0NzEx?=\n"
	    "X-Evil: a\r\n =?utf-8?q?b=0D=0AInjected:_1?=\nsubject: second\n\nx\n";
	g_autoptr(mail_msg) m = parse_ok(raw, NULL);
	mail_header *h;

	assert_sane(m);
	g_assert_cmpuint(m->headers->len, ==, 5);
	h = g_ptr_array_index(m->headers, 0);
	g_assert_cmpstr(h->name, ==, "Received");
	g_assert_cmpstr(h->value, ==, "from a by b");
	g_assert_cmpstr(mail_header_get(m, "x-spam"), ==, "Rechnung Nr. 4711");
	g_assert_cmpstr(mail_header_get(m, "X-Evil"), ==, "a bInjected: 1");
	g_assert_cmpstr(mail_header_get(m, "SUBJECT"), ==, "hi");
	g_assert_cmpstr(m->subject, ==, "hi");
	g_assert_null(mail_header_get(m, "X-Missing"));
	g_assert_null(mail_header_get(NULL, "Subject"));
}

static void
test_nul_bytes(void)
{
	static const char raw[] = "From: a@example.com\nSubject: a\0b\n\nbefore\0after\n";
	g_autoptr(GError) err = NULL;
	g_autoptr(mail_msg) m = mail_parse_data(raw, sizeof(raw) - 1, NULL, &err);

	g_assert_no_error(err);
	assert_sane(m);
	g_assert_nonnull(strstr(m->text, "beforeafter"));
}

static void
test_caps(void)
{
	GString *s = g_string_new("From: a@example.com\n");
	g_autoptr(mail_msg) m = NULL, m2 = NULL;
	int i;

	for (i = 0; i < 1100; i++)
		g_string_append_printf(s, "X-H%d: v\n", i);
	g_string_append(s, "\nbody\n");
	m = parse_ok(s->str, NULL);
	g_assert_cmpuint(m->headers->len, ==, 1000);
	g_assert_true(has_problem(m, "headers"));

	g_string_assign(s, "From: a@example.com\nSubject: big\n\n");
	for (i = 0; i < 2 * 1024 * 1024 / 64; i++)
		g_string_append(s, "0123456789012345678901234567890123456789012345678901234567890\xc3\xa9\n");
	m2 = parse_ok(s->str, NULL);
	g_assert_cmpuint(strlen(m2->text), <=, 1024 * 1024);
	g_assert_cmpuint(strlen(m2->text), >, 1000 * 1000);
	g_assert_true(g_utf8_validate(m2->text, -1, NULL));
	g_assert_true(has_problem(m2, "cut"));
	g_string_free(s, TRUE);
}

static void
test_errors(void)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *dir = g_dir_make_tmp("test-mail-XXXXXX", NULL);
	g_autofree char *empty = g_build_filename(dir, "empty.eml", NULL);
	g_autofree char *missing = g_build_filename(dir, "missing.eml", NULL);
	g_autofree char *cmd = NULL;
	mail_msg *m;

	g_assert_true(g_file_set_contents(empty, "", 0, NULL));
	m = mail_parse_file(empty, NULL, &err);
	g_assert_null(m);
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_assert_nonnull(strstr(err->message, "empty"));
	g_clear_error(&err);

	m = mail_parse_file(missing, NULL, &err);
	g_assert_null(m);
	g_assert_error(err, CG_ERROR, CG_ERROR_TEMP);
	g_clear_error(&err);

	m = mail_parse_file(dir, NULL, &err);
	g_assert_null(m);
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);

	m = mail_parse_data("", 0, NULL, &err);
	g_assert_null(m);
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);

	m = mail_parse_data("just text, no header\n", 21, NULL, &err);
	g_assert_null(m);
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);

	m = mail_parse_data("\0\0\0\xff\xfe", 5, NULL, &err);
	g_assert_null(m);
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	mail_msg_free(NULL);
	cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

/*
 * Real messages from tests/corpus/ (see each folder's SOURCE.md).  The
 * expected values were read off the files by hand.
 */

static const mail_case corpus_cases[] = {
	{ "bounceparser-corpus/polish-autoreply.msg", NULL,
	  "[Automatyczna odpowied\xc5\xba] test", "example10@wp.pl",
	  "the cat sat on the mat", 0, 0, NULL, NULL, NULL },
	{ "mailgun-flanker/bilingual-simple.eml", NULL,
	  "Simple text. How are you? \xd0\x9a\xd0\xb0\xd0\xba \xd1\x82\xd1\x8b "
	  "\xd0\xbf\xd0\xbe\xd0\xb6\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xb5\xd1\x88\xd1\x8c?",
	  "hello@example.com", "\xd0\x90 \xd1\x8d\xd1\x82\xd0\xb0 \xd0\xbb\xd0\xb8\xd0\xbd\xd0\xb8\xd1\x8f",
	  0, 0, NULL, NULL, NULL },
	{ "mailgun-flanker/from-encoding.eml", NULL,
	  "Re: running server as root (Was: Re: PUT method)", "ingo@blank.pages.de",
	  "switching to an EUID of nobody", 0, 0, NULL, NULL, "windows-1252" },
	{ "mailgun-flanker/long-header.eml", NULL,
	  NULL, "bob@example.com", "test", 0, 0, NULL, NULL, "value cut" },
	{ "mikel-mail/emails/multi_charset/japanese_attachment_long_name.eml", NULL,
	  /* 4 encoded-words, 10 x "まみむめも" */
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82"
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82",
	  "mikel@test.lindsaar.net", "", 0, 1,
	  /* RFC 2231 continuation: 5 x "かきくけこ" + ".txt" */
	  "\xe3\x81\x8b\xe3\x81\x8d\xe3\x81\x8f\xe3\x81\x91\xe3\x81\x93"
	  "\xe3\x81\x8b\xe3\x81\x8d\xe3\x81\x8f\xe3\x81\x91\xe3\x81\x93"
	  "\xe3\x81\x8b\xe3\x81\x8d\xe3\x81\x8f\xe3\x81\x91\xe3\x81\x93"
	  "\xe3\x81\x8b\xe3\x81\x8d\xe3\x81\x8f\xe3\x81\x91\xe3\x81\x93"
	  "\xe3\x81\x8b\xe3\x81\x8d\xe3\x81\x8f\xe3\x81\x91\xe3\x81\x93.txt",
	  "text/plain", NULL },
	{ "mikel-mail/emails/attachment_emails/attachment_with_quoted_filename.eml", NULL,
	  "Eelanal\xc3\xbc\xc3\xbcsi p\xc3\xa4ring", "jeff@37signals.com", "", 0, 1,
	  "Eelanal\xc3\xbc\xc3\xbcsi p\xc3\xa4ring.jpg", "image/jpeg", NULL },
	{ "mikel-mail/emails/attachment_emails/attachment_with_encoded_name.eml", NULL,
	  "Fwd: Signed email causes file attachments", "xxxxxxxxx.xxxxxxx@gmail.com",
	  "Test attachments oddly encoded with japanese charset", 0, 1,
	  NULL, NULL, NULL },
	{ "mikel-mail/emails/multi_charset/japanese_shift_jis.eml", NULL,
	  "test", "xxxxxxx@docomo.ne.jp",
	  /* "このメールはテスト用のメールです" */
	  "\xe3\x81\x93\xe3\x81\xae\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x81\xaf"
	  "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88\xe7\x94\xa8\xe3\x81\xae\xe3\x83\xa1"
	  "\xe3\x83\xbc\xe3\x83\xab\xe3\x81\xa7\xe3\x81\x99",
	  0, 0, NULL, NULL, NULL },
	{ "mikel-mail/emails/multi_charset/japanese_iso_2022.eml", NULL,
	  "\xe3\x81\xbe\xe3\x81\xbf\xe3\x82\x80\xe3\x82\x81\xe3\x82\x82", "raasdnil@gmail.com",
	  "\xe3\x81\x99\xe3\x81\xbf\xe3\x81\xbe\xe3\x81\x9b\xe3\x82\x93", 0, 0, NULL, NULL, NULL },
	{ "mikel-mail/emails/plain_emails/raw_email10.eml", NULL,
	  "", "xxx@xxxx.xxx", "Envoy\xc3\xa9 par le service de messagerie texte de Bell Mobilit\xc3\xa9",
	  0, 0, NULL, NULL, "charset X-UNKNOWN unknown" },
	{ "mikel-mail/emails/attachment_emails/attachment_message_rfc822.eml", NULL,
	  "testing", "foo@example.com", "This is the first part.", 0, 1,
	  "broken.pdf", "application/pdf", NULL },
	{ "mime4j/mimetools-testmsgs/attachment-filename-encoding-Latin1.msg", NULL,
	  "", "-", "Attachment Test", 0, 1, "attachment.\xc3\xa4\xc3\xb6\xc3\xbc", "text/plain", NULL },
	{ "mime4j/mimetools-testmsgs/attachment-filename-encoding-UTF8.msg", NULL,
	  "", "-", "Attachment Test", 0, 1, "attachment.\xc3\xa4\xc3\xb6\xc3\xbc", "text/plain", NULL },
	{ "redmine-mail_handler/thunderbird_with_attachment_iso-8859-1.eml", NULL,
	  "test", "JSmith@somenet.foo", "test", 0, 1,
	  "\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc"
	  "\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc"
	  "\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc"
	  "\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc"
	  "\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc"
	  "\xc3\x84\xc3\xa4\xc3\x96\xc3\xb6\xc3\x9c\xc3\xbc.png", "image/png", NULL },
	{ "redmine-mail_handler/gmail-iso8859-2.eml", NULL,
	  "Nikad vi\xc5\xa1" "e", "JSmith@somenet.foo",
	  "Na \xc5\xa1triku se su\xc5\xa1i \xc5\xa1osi\xc4\x87.", 0, 0, NULL, NULL, NULL },
	{ "redmine-mail_handler/outlook_web_access_2010_html_only.eml", NULL,
	  "Upgrade Redmine to 3.0.x", "jsmith@somenet.foo", "A mess.", 1, 0, NULL, NULL, NULL },
	{ "rt-t-data-emails/new-ticket-from-gb18030", NULL,
	  "\xe6\xb5\x8b\xe8\xaf\x95", "root@localhost", "\xe6\xb5\x8b\xe8\xaf\x95", 0, 0, NULL, NULL, NULL },
	{ "rt-t-data-emails/nested-rfc-822", NULL,
	  "[Jonas Liljegren] Re: [Para] Niv\xc3\xa5" "er?", "jonas@example.com",
	  "Material f\xc3\xb6r att uppdatera texten om niv\xc3\xa5" "er.", 0, 0, NULL, NULL, NULL },
	{ "libetpan-mime-parser/mbox/jwz/73", NULL,
	  "multipart/related MHTML test case", "jwz@netscape.com",
	  "MHTML test\n\n> This is a test of multipart/related", 1, 1, "attachment", "image/jpeg", NULL },
	{ "libetpan-mime-parser/mbox/jwz/101", NULL,
	  "Re: multi-bytes richtext", "ysato@etl.go.jp",
	  "sending a copy of this message to the author of richlex.c", 0, 4,
	  "attachment", "image/gif", NULL },
	{ "sisimai-set-of-emails/mac/rfc3834-01.eml", NULL,
	  "Away until May 5", "kijitora@example.net",
	  "I am currently away returning to the office on May 5th.", 0, 0, NULL, NULL, "CR-only" },
	{ "mailgun-talon/standard_replies/outlook.eml", NULL,
	  "Test", "me@example.com", "Hello\n\nFrom: xxx@xxx.mailgun.org", 0, 0, NULL, NULL, NULL },
	{ "cpython-test_email/msg_40.txt", NULL,
	  "", "-", "", 1, 0, NULL, NULL, NULL },
	{ "cpython-test_email/msg_08.txt", NULL,
	  "Lyrics", "barry@python.org", "", 0, 0, NULL, NULL, NULL },
};

static void
test_corpus_cases(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(corpus_cases); i++) {
		const mail_case *c = &corpus_cases[i];
		g_autofree char *path = g_build_filename(corpus_dir(), c->name, NULL);
		g_autoptr(GError) err = NULL;
		g_autoptr(mail_msg) m = mail_parse_file(path, NULL, &err);

		g_assert_no_error(err);
		check_case(c, m);
	}
}

/* Specific fields the table does not cover. */
static void
test_corpus_details(void)
{
	g_autofree char *p1 = g_build_filename(corpus_dir(),
	    "mailgun-flanker/from-encoding.eml", NULL);
	g_autofree char *p2 = g_build_filename(corpus_dir(),
	    "libetpan-mime-parser/mbox/jwz/101", NULL);
	g_autofree char *p3 = g_build_filename(corpus_dir(),
	    "mikel-mail/emails/attachment_emails/attachment_with_encoded_name.eml", NULL);
	g_autoptr(mail_msg) m1 = mail_parse_file(p1, NULL, NULL);
	g_autoptr(mail_msg) m2 = mail_parse_file(p2, NULL, NULL);
	g_autoptr(mail_msg) m3 = mail_parse_file(p3, NULL, NULL);
	mail_attachment *a;

	/* raw latin1 in a From display name */
	g_assert_cmpstr(m1->from_name, ==, "Ingo L\xc3\xbctkebohle");
	g_assert_cmpstr(m1->reply_to, ==, "new-httpd@apache.org");
	g_assert_cmpstr(m1->message_id, ==, "33C7E4E1.2A12445E@blank.pages.de");
	/* an ISO-2022-JP encoded-word in a comment-style display name */
	g_assert_cmpstr(m2->from_name, ==, "Yutaka Sato \xe4\xbd\x90\xe8\x97\xa4\xe8\xb1\x8a");
	g_assert_cmpuint(m2->references->len, ==, 4);
	g_assert_cmpstr(g_ptr_array_index(m2->cc, 0), ==, "rhys@cs.uq.oz.au");
	a = g_ptr_array_index(m2->attachments, 0);
	g_assert_cmpint(a->size, ==, 42638);
	/* RFC 2231 value whose bytes are not valid in the declared charset */
	a = g_ptr_array_index(m3->attachments, 0);
	g_assert_true(g_str_has_prefix(a->name, "01 Quien Te Dij"));
	g_assert_true(g_str_has_suffix(a->name, "at. Pitbull.mp3"));
	g_assert_cmpstr(m3->in_reply_to, ==, "F6E2D0B4-CC35-4A91-BA4C-C7C712B10C13@mac.com");
}

/*
 * Does the file start like a message (a header field or an mbox "From "
 * line)?  The corpus also holds body-only reply fixtures and raw TNEF
 * blobs, which other tests read.
 */
static gboolean
looks_like_message(const char *path)
{
	char buf[256];
	FILE *fp = fopen(path, "rb");
	size_t n, i;

	if (fp == NULL)
		return FALSE;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	if (strncmp(buf, "From ", 5) == 0)
		return TRUE;
	for (i = 0; i < n && buf[i] > ' ' && buf[i] < 127 && buf[i] != ':'; i++)
		;
	return i > 0 && i < n && buf[i] == ':';
}

static void
walk_corpus(const char *dir, GPtrArray *out)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		char *path = g_build_filename(dir, name, NULL);

		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			walk_corpus(path, out);
			g_free(path);
		} else if (strcmp(name, "SOURCE.md") == 0 || !looks_like_message(path))
			g_free(path);
		else
			g_ptr_array_add(out, path);
	}
	g_dir_close(d);
}

/* Every corpus file parses, into sane values, with attachments spooled. */
static void
test_corpus_all(void)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *dir = g_dir_make_tmp("test-mail-XXXXXX", NULL);
	g_autoptr(spool) sp = spool_open(dir, NULL);
	g_autofree char *cmd = NULL;
	guint i;

	walk_corpus(corpus_dir(), files);
	g_assert_cmpuint(files->len, >=, 20);
	for (i = 0; i < files->len; i++) {
		g_autoptr(GError) err = NULL;
		g_autoptr(mail_msg) m = mail_parse_file(g_ptr_array_index(files, i), sp, &err);

		g_test_message("%s", (char *)g_ptr_array_index(files, i));
		g_assert_no_error(err);
		assert_sane(m);
	}
	cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/text/decode-header", test_decode_header);
	g_test_add_func("/text/to-utf8", test_to_utf8);
	g_test_add_func("/text/header-clean", test_header_clean);
	g_test_add_func("/text/merge-words", test_merge_words);
	g_test_add_func("/text/html", test_html);
	g_test_add_func("/mail/inline", test_inline_cases);
	g_test_add_func("/mail/inline-file-spool", test_inline_cases_file_spool);
	g_test_add_func("/mail/attachment-content", test_attachment_content);
	g_test_add_func("/mail/addresses", test_addresses);
	g_test_add_func("/mail/crlf-address", test_crlf_address);
	g_test_add_func("/mail/return-path", test_return_path);
	g_test_add_func("/mail/ids-and-date", test_ids_and_date);
	g_test_add_func("/mail/headers", test_headers);
	g_test_add_func("/mail/nul-bytes", test_nul_bytes);
	g_test_add_func("/mail/caps", test_caps);
	g_test_add_func("/mail/errors", test_errors);
	g_test_add_func("/mail/corpus-cases", test_corpus_cases);
	g_test_add_func("/mail/corpus-details", test_corpus_details);
	g_test_add_func("/mail/corpus-all", test_corpus_all);
	return g_test_run();
}
