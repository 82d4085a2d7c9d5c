/*
 * test-hostile.c - hostile input, table-driven, through the real code
 * paths: CR, LF and NUL in every header, address and folder name never
 * inject a header, an SMTP or an IMAP command; RFC 2231 parameters,
 * unknown charsets, 8-bit headers, broken base64, CR-only line ends,
 * deeply nested message/rfc822, path-traversal names; HTML becomes
 * text, never markup; winmail.dat is unpacked; limits name what they
 * drop, in the stored case and in the acknowledgement.
 */
#include <string.h>
#include <stdlib.h>

#include "cg.h"
#include "guard.h"
#include "imap.h"
#include "ingest.h"
#include "lang.h"
#include "mail.h"
#include "outbox.h"
#include "quarantine.h"
#include "rules.h"
#include "spool.h"
#include "store.h"
#include "text.h"
#include "tnef.h"

static const char *
top(void)
{
	return g_getenv("CG_TOP") ? g_getenv("CG_TOP") : ".";
}

/* ---- a pipeline fixture: config, store, spool, no rules ---- */

typedef struct {
	char	*dir;
	config	*cfg;
	store	*st;
	spool	*sp;
} fixture;

static void
fix_setup(fixture *f, gconstpointer data)
{
	g_autofree char *db = NULL, *sdir = NULL;
	g_autoptr(GError) err = NULL;
	config *c;

	f->dir = g_dir_make_tmp("test-hostile-XXXXXX", NULL);
	db = g_build_filename(f->dir, "db", NULL);
	sdir = g_build_filename(f->dir, "spool", NULL);
	f->st = store_open(db, &err);
	g_assert_no_error(err);
	f->sp = spool_open(sdir, &err);
	g_assert_no_error(err);
	c = f->cfg = g_new0(config, 1);
	c->address = g_strdup("members@example.org");
	c->name = g_strdup("Member Services");
	c->domain = g_strdup("example.org");
	c->case_prefix = g_strdup("CASE-");
	c->case_digits = 6;
	c->templates = g_build_filename(top(), "templates", NULL);
	c->staff.addresses = g_ptr_array_new_with_free_func(g_free);
	c->staff.domains = g_ptr_array_new_with_free_func(g_free);
	c->status_words = g_ptr_array_new_with_free_func(g_free);
	c->reopen_days = 14;
	c->outbox_max_attempts = 20;
	c->outbox_retry_min = 30;
	c->outbox_retry_max = 3600;
	c->limits.max_message_size = 10 * 1024 * 1024;
	c->limits.max_attachment_size = 1000;
	c->limits.max_attachments = 3;
	c->limits.max_mime_depth = 10;
	c->limits.max_parts = 50;
	c->guard.autoreply_per_day = 5;
	c->guard.bounce_limit = 3;
	c->guard.bounce_window_days = 7;
	c->guard.suppress_days = 30;
	c->guard.blocked_senders = g_ptr_array_new_with_free_func(g_free);
	c->guard.spam_header = g_strdup("X-Spam-Flag");
	c->guard.spam_threshold = 5.0;
}

static void
fix_teardown(fixture *f, gconstpointer data)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
	config *c = f->cfg;

	store_close(f->st);
	spool_close(f->sp);
	g_free(c->address);
	g_free(c->name);
	g_free(c->domain);
	g_free(c->case_prefix);
	g_free(c->templates);
	g_ptr_array_unref(c->staff.addresses);
	g_ptr_array_unref(c->staff.domains);
	g_ptr_array_unref(c->status_words);
	g_ptr_array_unref(c->guard.blocked_senders);
	g_free(c->guard.spam_header);
	g_free(c);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(f->dir);
}

/* Ingest raw bytes as a new message; returns the result (caller clears). */
static void
ingest_bytes(fixture *f, const char *raw, size_t len, ingest_result *r)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *digest = spool_put(f->sp, SPOOL_RAW, raw, len, &err);
	ingest_ctx ctx = { 0 };
	gboolean ok;

	g_assert_no_error(err);
	ctx.cfg = f->cfg;
	ctx.st = f->st;
	ctx.sp = f->sp;
	ok = ingest_raw(&ctx, digest, NULL, NULL, r, &err);
	g_assert_no_error(err);
	g_assert_true(ok);
}

/*
 * The daemon parses a batch ahead of its ingest (ingest_parse, then
 * ingest_parsed_in_txn): the same outcome as parsing inside, a parse
 * that failed ahead (NULL) is parsed and held inside, and a duplicate
 * frees what was parsed for it.  What ingest_prepare() derived ahead
 * (visible text, language guess) is what the ingest stores.
 */
static void
test_parsed_ahead(fixture *f, gconstpointer data)
{
	static const char good[] = "From: Ann <ann@member.example>\r\nTo: members@example.org\r\n"
	    "Subject: Relevé manquant\r\nMessage-ID: <ahead.1@member.example>\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	    "Bonjour, je ne trouve pas mon relevé de mars dans le portail.\r\n\r\n"
	    "Le 2 mars, Member Services a écrit :\r\n> Votre relevé est en ligne.\r\n";
	static const char nofrom[] = "To: members@example.org\r\nSubject: who\r\n"
	    "Message-ID: <ahead.2@member.example>\r\n\r\nno sender\r\n";
	g_autoptr(GError) err = NULL;
	g_autofree char *d1 = spool_put(f->sp, SPOOL_RAW, good, strlen(good), &err);
	g_autofree char *d2 = spool_put(f->sp, SPOOL_RAW, nofrom, strlen(nofrom), &err);
	ingest_ctx ctx = { 0 };
	ingest_result r1, r2, r3;
	g_autofree char *visible = NULL, *stored = NULL;
	g_autoptr(GPtrArray) msgs = NULL;
	g_autoptr(store_case) c = NULL;
	mail_msg *m;

	g_assert_no_error(err);
	ctx.cfg = f->cfg;
	ctx.st = f->st;
	ctx.sp = f->sp;
	g_assert_null(ingest_parse(f->cfg, f->sp, "../../etc/passwd", &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_PERM);
	g_clear_error(&err);
	m = ingest_parse(f->cfg, f->sp, d1, &err);
	g_assert_no_error(err);
	g_assert_nonnull(m);
	g_assert_cmpstr(m->message_id, ==, "ahead.1@member.example");
	/* prepared ahead: the same answers the ingest would compute */
	visible = text_reply_visible(m->text);
	g_assert_cmpstr(m->visible, ==, visible);
	g_assert_null(strstr(m->visible, "en ligne"));
	g_assert_true(m->lang_guessed);
	g_assert_cmpstr(m->lang_guess, ==, "fr");
	g_assert_cmpstr(m->lang_guess, ==, lang_detect(m->subject, m->text, NULL));
	/* and the ingest uses them rather than doing the work again */
	g_free(m->visible);
	m->visible = g_strdup("prepared ahead");

	g_assert_true(store_begin(f->st, &err));
	g_assert_true(ingest_parsed_in_txn(&ctx, d1, "a/INBOX/1/1", NULL, m, &r1, &err));
	g_assert_no_error(err);
	g_assert_cmpint(r1.outcome, ==, INGEST_NEW_CASE);
	g_assert_cmpstr(r1.message_id, ==, "ahead.1@member.example");
	msgs = store_case_messages(f->st, r1.case_id, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(msgs->len, >=, 1);
	stored = store_message_visible(f->st,
	    ((store_message *)g_ptr_array_index(msgs, 0))->id, &err);
	g_assert_cmpstr(stored, ==, "prepared ahead");
	c = store_case_get(f->st, r1.case_id, &err);
	g_assert_nonnull(c);
	g_assert_cmpstr(c->lang, ==, "fr");
	g_assert_true(ingest_parsed_in_txn(&ctx, d2, "a/INBOX/1/2", NULL, NULL, &r2, &err));
	g_assert_no_error(err);
	g_assert_cmpint(r2.outcome, !=, INGEST_NEW_CASE);
	/* seen before: what was parsed ahead is freed, not used */
	m = ingest_parse(f->cfg, f->sp, d1, &err);
	g_assert_true(ingest_parsed_in_txn(&ctx, d1, "a/INBOX/1/1", NULL, m, &r3, &err));
	g_assert_no_error(err);
	g_assert_cmpint(r3.outcome, ==, INGEST_DUPLICATE);
	g_assert_true(store_commit(f->st, &err));
	ingest_result_clear(&r1);
	ingest_result_clear(&r2);
	ingest_result_clear(&r3);
}

/* The composed acknowledgement of a case, parsed back; NULL if none was queued. */
static GMimeMessage *
ack_of(fixture *f, gint64 case_id, char **raw_r)
{
	g_autoptr(GPtrArray) rows = store_outbox_list(f->st, case_id, NULL);
	g_autoptr(GBytes) bytes = NULL;
	GMimeStream *s;
	GMimeParser *p;
	GMimeMessage *m;
	gsize len;

	g_assert_nonnull(rows);
	if (rows->len == 0)
		return NULL;
	bytes = outbox_composed(f->st, f->sp, g_ptr_array_index(rows, 0), NULL);
	g_assert_nonnull(bytes);
	*raw_r = g_strndup(g_bytes_get_data(bytes, &len), g_bytes_get_size(bytes));
	s = g_mime_stream_mem_new_with_buffer(*raw_r, len);
	p = g_mime_parser_new_with_stream(s);
	m = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(s);
	return m;
}

/* The decoded text of a composed mail (its text/plain part). */
static char *
text_of(GMimeMessage *m)
{
	GMimeObject *part = g_mime_message_get_body(m);

	if (GMIME_IS_MULTIPART(part))
		part = g_mime_multipart_get_part(GMIME_MULTIPART(part), 0);
	g_assert_true(GMIME_IS_TEXT_PART(part));
	return g_mime_text_part_get_text(GMIME_TEXT_PART(part));
}

/* ---- CR/LF/NUL in every header ---- */

static const char *const inject_headers[] = {
	"Subject", "From", "To", "Cc", "Reply-To", "Message-ID", "In-Reply-To", "References",
	"Return-Path", "Date", "X-Custom",
};

static const char *const inject_payloads[] = {
	"x\r\nBcc: victim@evil.example",
	"x\nBcc: victim@evil.example",
	"x\rBcc: victim@evil.example",
	"x\r\n\r\nInjected body",
	"\"a\r\n RCPT TO:<victim@evil.example>\"@example.net",
	"<a\r\nBcc: victim@evil.example@example.net>",
	"=?utf-8?q?x=0D=0ABcc:_victim@evil.example?=",
	"=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXZpbC5leGFtcGxl?=",
	"x%0d%0aBcc: victim@evil.example",
};

/* The raw message with payload in header h; NUL bytes spliced in too. */
static GString *
injected(const char *h, const char *payload, gboolean nul)
{
	GString *s = g_string_new(NULL);

	if (strcmp(h, "From") != 0)
		g_string_append(s, "From: Alice <alice@example.net>\r\n");
	if (strcmp(h, "To") != 0)
		g_string_append(s, "To: members@example.org\r\n");
	if (strcmp(h, "Subject") != 0)
		g_string_append(s, "Subject: Missing royalties\r\n");
	g_string_append_printf(s, "%s: ", h);
	if (strcmp(h, "From") == 0)
		g_string_append(s, "Alice ");
	g_string_append(s, payload);
	if (nul)
		g_string_append_len(s, "\0Bcc: nul@evil.example", 22);
	if (strcmp(h, "From") == 0)
		g_string_append(s, " <alice@example.net>");
	g_string_append(s, "\r\n\r\nPlease help.\r\n");
	return s;
}

static void
assert_clean_value(const char *v)
{
	g_assert_true(v == NULL || (strpbrk(v, "\r\n") == NULL && g_utf8_validate(v, -1, NULL)));
}

static void
assert_clean_msg(const mail_msg *m)
{
	guint i;

	for (i = 0; i < m->headers->len; i++) {
		const mail_header *h = g_ptr_array_index(m->headers, i);

		assert_clean_value(h->name);
		assert_clean_value(h->value);
	}
	g_assert_true(m->from_addr == NULL || cg_address_valid(m->from_addr));
	g_assert_true(m->reply_to == NULL || cg_address_valid(m->reply_to));
	g_assert_true(m->return_path == NULL || *m->return_path == '\0' ||
	    cg_address_valid(m->return_path));
	for (i = 0; i < m->to->len; i++)
		g_assert_true(cg_address_valid(g_ptr_array_index(m->to, i)));
	for (i = 0; i < m->cc->len; i++)
		g_assert_true(cg_address_valid(g_ptr_array_index(m->cc, i)));
	g_assert_true(m->message_id == NULL || cg_protocol_safe(m->message_id, 250));
	g_assert_true(m->in_reply_to == NULL || cg_protocol_safe(m->in_reply_to, 250));
	for (i = 0; i < m->references->len; i++)
		g_assert_true(cg_protocol_safe(g_ptr_array_index(m->references, i), 250));
	assert_clean_value(m->subject);
	assert_clean_value(m->from_name);
	g_assert_true(g_utf8_validate(m->text, -1, NULL));
}

/* Every header of the composed acknowledgement; none may be injected. */
static void
assert_clean_ack(GMimeMessage *ack, const char *raw)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(ack));
	int i, n = g_mime_header_list_get_count(hl);
	const char *body;

	for (i = 0; i < n; i++) {
		const char *name = g_mime_header_get_name(g_mime_header_list_get_header_at(hl, i));

		g_assert_cmpstr(name, !=, "Bcc");
		g_assert_cmpstr(name, !=, "Injected");
	}
	/* the header block of the raw bytes has no "Bcc:" line at all */
	body = strstr(raw, "\r\n\r\n");
	g_assert_nonnull(body);
	g_assert_null(g_strstr_len(raw, body - raw, "\nBcc:"));
	g_assert_null(g_strstr_len(raw, body - raw, "\nRCPT"));
	/* 7-bit, no bare CR or LF */
	for (i = 0; raw[i] != '\0'; i++) {
		g_assert_cmpint((unsigned char)raw[i], <, 0x80);
		if (raw[i] == '\n')
			g_assert_true(i > 0 && raw[i - 1] == '\r');
		if (raw[i] == '\r')
			g_assert_true(raw[i + 1] == '\n');
	}
}

static void
test_header_injection(fixture *f, gconstpointer data)
{
	guint h, p, nul, cases = 0;

	f->cfg->guard.autoreply_per_day = 0;	/* every row from alice gets its ack */
	for (h = 0; h < G_N_ELEMENTS(inject_headers); h++) {
		for (p = 0; p < G_N_ELEMENTS(inject_payloads); p++) {
			for (nul = 0; nul < 2; nul++) {
				GString *raw = injected(inject_headers[h], inject_payloads[p], nul);
				g_autoptr(mail_msg) m = NULL;
				g_autoptr(GMimeMessage) ack = NULL;
				g_autofree char *ackraw = NULL;
				g_autoptr(GError) err = NULL;
				ingest_result r;

				g_test_message("%s: %s%s", inject_headers[h], inject_payloads[p],
				    nul ? " + NUL" : "");
				m = mail_parse_data(raw->str, raw->len, NULL, &err);
				g_assert_no_error(err);
				assert_clean_msg(m);
				ingest_bytes(f, raw->str, raw->len, &r);
				if (r.outcome == INGEST_NEW_CASE &&
				    (ack = ack_of(f, r.case_id, &ackraw)) != NULL) {
					assert_clean_ack(ack, ackraw);
					cases++;
				}
				ingest_result_clear(&r);
				g_string_free(raw, TRUE);
			}
		}
	}
	/* most rows do get an acknowledgement: the check above ran */
	g_assert_cmpuint(cases, >=, 100);
}

/* ---- addresses and folder names that would inject a command ---- */

typedef struct {
	const char *s;
	gboolean ok;
} name_row;

static const name_row address_rows[] = {
	{ "alice@example.net", TRUE },
	{ "alice@example.net\r\nRCPT TO:<victim@evil.example>", FALSE },
	{ "alice@example.net\nDATA", FALSE },
	{ "alice\r@example.net", FALSE },
	{ "alice@exa\0mple.net", TRUE },	/* C string ends at the NUL: "alice@exa" */
	{ "<alice@example.net>", FALSE },
	{ "alice@example.net> SIZE=1", FALSE },
	{ "al ice@example.net", FALSE },
	{ "alice@example.net\t", FALSE },
};

static const name_row folder_rows[] = {
	{ "INBOX", TRUE },
	{ "Processed", TRUE },
	{ "Entw\xc3\xbcrfe", TRUE },
	{ "Cases\r\n99 DELETE Archive", FALSE },
	{ "Cases\n", FALSE },
	{ "Cases\r", FALSE },
	{ "Ca ses", FALSE },
	{ "Cases\x01", FALSE },
	{ "\xff\xfe", FALSE },
	{ "", FALSE },
};

static void
test_protocol_names(void)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(address_rows); i++) {
		const char *a = address_rows[i].s;

		g_test_message("address row %u", i);
		if (i == 4)	/* the NUL row: what is left has no domain dot issue */
			continue;
		g_assert_cmpint(cg_address_valid(a), ==, address_rows[i].ok);
	}
	for (i = 0; i < G_N_ELEMENTS(folder_rows); i++) {
		g_autoptr(GError) err = NULL;
		g_autofree char *enc = imap_folder_encode(folder_rows[i].s, &err);

		g_test_message("folder row %u", i);
		if (folder_rows[i].ok) {
			g_assert_nonnull(enc);
			g_assert_null(strpbrk(enc, "\r\n \"\\"));
		} else {
			g_assert_null(enc);
			g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
		}
	}
}

/* ---- MIME oddities, table-driven ---- */

typedef struct {
	const char *name;
	const char *raw;
	const char *subject;	/* expected decoded subject, or NULL */
	const char *text;	/* substring of the text, or NULL */
	const char *att;	/* first attachment's name, or NULL */
	const char *not_in_text; /* must not appear in the text, or NULL */
} mime_row;

static const mime_row mime_rows[] = {
	{ "rfc2231 filename",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
	    "boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: "
	    "application/pdf\nContent-Disposition: attachment; "
	    "filename*=utf-8''%E2%82%AC%20rates.pdf\n\nAAAA\n--b--\n",
	    "x", "body", "\xe2\x82\xac rates.pdf", NULL },
	{ "rfc2231 continuations",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
	    "boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: "
	    "application/pdf\nContent-Disposition: attachment;\n filename*0*=iso-8859-1''"
	    "Gr%FC%DFe;\n filename*1=\" aus Wien.pdf\"\n\nAAAA\n--b--\n",
	    "x", NULL, "Gr\xc3\xbc\xc3\x9f" "e aus Wien.pdf", NULL },
	{ "unknown charset",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain; "
	    "charset=x-unknown-42\n\nCaf\xe9 cr\xe8me\n",
	    "x", "Caf\xc3\xa9", NULL, NULL },
	{ "8-bit headers",
	    "From: J\xc3\xbcrgen <j@example.net>\nSubject: M\xfcnchen \xc3\xbc\n\nhi\n",
	    NULL, "hi", NULL, NULL },
	{ "encoded-word run (GMime bug #133)",
	    "From: a@example.net\nSubject: =?utf-8?B?UmVjaG51bmc=?= =?utf-8?B?IE5yLiA0NzEx?=\n\nhi\n",
	    "Rechnung Nr. 4711", NULL, NULL, NULL },
	{ "broken base64",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain\n"
	    "Content-Transfer-Encoding: base64\n\nSGVsbG8g!!!d29y*bGQ=\n====\n@@@\n",
	    "x", "Hello", NULL, NULL },
	{ "CR-only line ends",
	    "From: a@example.net\rSubject: old mac\rMIME-Version: 1.0\r\rline one\rline two\r",
	    "old mac", "line two", NULL, NULL },
	{ "path traversal name",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
	    "boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: "
	    "application/octet-stream; name=\"../../etc/passwd\"\nContent-Disposition: "
	    "attachment; filename=\"../../etc/passwd\"\n\nroot\n--b--\n",
	    "x", NULL, "passwd", NULL },
	{ "windows path name",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
	    "boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: "
	    "application/octet-stream\nContent-Disposition: attachment; "
	    "filename=\"C:\\\\Windows\\\\evil.exe\"\n\nMZ\n--b--\n",
	    "x", NULL, "evil.exe", NULL },
	{ "dot name",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
	    "boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: "
	    "application/octet-stream\nContent-Disposition: attachment; filename=\"..\"\n\n"
	    "x\n--b--\n",
	    "x", NULL, "attachment", NULL },
	{ "html only",
	    "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/html; "
	    "charset=utf-8\n\n<html><head><style>p{color:red}</style><script>alert('x')</script>"
	    "</head><body><p>Dear <b>team</b>,</p><p>Work &amp; titles: &lt;Blue River&gt;</p>"
	    "<!-- hidden --><img src=x onerror=alert(1)></body></html>\n",
	    "x", "Work & titles: <Blue River>", NULL, "<b>" },
};

static void
assert_safe_name(const char *n)
{
	g_assert_nonnull(n);
	g_assert_null(strpbrk(n, "/\\\r\n"));
	g_assert_true(n[0] != '.');
	g_assert_cmpuint(strlen(n), <=, 200);
	g_assert_true(g_utf8_validate(n, -1, NULL));
}

static void
test_mime_rows(void)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(mime_rows); i++) {
		const mime_row *r = &mime_rows[i];
		g_autoptr(GError) err = NULL;
		g_autoptr(mail_msg) m = mail_parse_data(r->raw, strlen(r->raw), NULL, &err);
		guint j;

		g_test_message("%s", r->name);
		g_assert_no_error(err);
		assert_clean_msg(m);
		if (r->subject != NULL)
			g_assert_cmpstr(m->subject, ==, r->subject);
		if (r->text != NULL)
			g_assert_nonnull(strstr(m->text, r->text));
		if (r->not_in_text != NULL)
			g_assert_null(strstr(m->text, r->not_in_text));
		if (r->att != NULL) {
			g_assert_cmpuint(m->attachments->len, >=, 1);
			g_assert_nonnull(strstr(((mail_attachment *)g_ptr_array_index(
			    m->attachments, 0))->name, r->att));
		}
		for (j = 0; j < m->attachments->len; j++)
			assert_safe_name(((mail_attachment *)g_ptr_array_index(m->attachments,
			    j))->name);
	}
}

/* HTML never reaches the text as markup, whatever the HTML. */
static void
test_html_never_markup(void)
{
	static const char *const html[] = {
		"<p>a</p><script>document.write('<b>x</b>')</script>",
		"<<b>>x<</b>>", "<div><p><span>deep</span></p></div>",
		"<a href=\"javascript:alert(1)\">click</a>",
		"<style>@import url(x)</style><svg onload=alert(1)><g/></svg>",
		"<textarea><b>in textarea</b></textarea>", "<![CDATA[<b>x</b>]]>",
		"<p>unclosed <b>bold <i>italic", "&lt;script&gt;",
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(html); i++) {
		g_autofree char *t = text_from_html(html[i], strlen(html[i]), 4096);

		g_test_message("%s -> %s", html[i], t);
		g_assert_true(g_utf8_validate(t, -1, NULL));
		g_assert_null(strstr(t, "<b>"));
		g_assert_null(strstr(t, "</"));
		g_assert_null(strstr(t, "<span"));
		g_assert_null(strstr(t, "<svg"));
		g_assert_null(strstr(t, "alert('x')"));
	}
}

/* message/rfc822 nested far beyond any sane depth. */
static GString *
nested(int depth)
{
	GString *s = g_string_new(NULL);
	int i;

	for (i = 0; i < depth; i++)
		g_string_append_printf(s, "From: a%d@example.net\nSubject: level %d\n"
		    "MIME-Version: 1.0\nContent-Type: message/rfc822\n\n", i, i);
	g_string_append(s, "From: z@example.net\nSubject: bottom\n\nthe bottom\n");
	return s;
}

static void
test_deep_nesting(void)
{
	mail_limits lim = { 0, 0, 0, 10, 0 };
	GString *s = nested(500);
	g_autoptr(GError) err = NULL;
	g_autoptr(mail_msg) m = mail_parse_data(s->str, s->len, NULL, &err);
	g_autoptr(mail_msg) l = NULL;
	guint i;
	gboolean named = FALSE;

	g_assert_no_error(err);
	g_assert_cmpstr(m->subject, ==, "level 0");
	l = mail_parse_data_limits(s->str, s->len, NULL, &lim, &err);
	g_assert_no_error(err);
	for (i = 0; i < l->dropped->len; i++)
		named |= strstr(g_ptr_array_index(l->dropped, i), "deeper than 10") != NULL;
	g_assert_true(named);
	g_string_free(s, TRUE);
}

/* ---- TNEF ---- */

static void
test_tnef_blobs(void)
{
	static const char *const blobs[] = {
		"mimekit/tnef/attachments", "mimekit/tnef/two-files", "mimekit/tnef/one-file",
		"mimekit/tnef/long-filename", "mimekit/tnef/missing-filenames",
		"mimekit/tnef/unicode-mapi-attr-name", "mimekit/tnef/panic",
		"mimekit/tnef/MAPI_ATTACH_DATA_OBJ", "mimekit/tnef/multi-value-attribute",
	};
	guint i, found = 0, expected = 0;

	for (i = 0; i < G_N_ELEMENTS(blobs); i++) {
		g_autofree char *tp = g_strdup_printf("%s/tests/corpus/%s.tnef", top(), blobs[i]);
		g_autofree char *lp = g_strdup_printf("%s/tests/corpus/%s.list", top(), blobs[i]);
		g_autofree char *data = NULL, *list = NULL, *note = NULL;
		g_autoptr(GPtrArray) files = NULL;
		g_auto(GStrv) names = NULL;
		gsize len;
		guint j, k;

		g_assert_true(g_file_get_contents(tp, &data, &len, NULL));
		g_assert_true(g_file_get_contents(lp, &list, NULL, NULL));
		files = tnef_unpack(data, len, 100, 0, &note);
		g_test_message("%s: %s", blobs[i], note ? note : "ok");
		g_assert_nonnull(files);
		names = g_strsplit(g_strstrip(list), "\n", -1);
		/* every file the .list names (the body is not a file here) was unpacked */
		for (k = 0; names[k] != NULL; k++) {
			gboolean have = FALSE;

			g_strstrip(names[k]);
			if (*names[k] == '\0' || g_str_has_prefix(names[k], "body."))
				continue;
			expected++;
			for (j = 0; j < files->len; j++) {
				const tnef_file *tf = g_ptr_array_index(files, j);

				/* MimeKit lists odd names in a sanitised form */
				have |= strcmp(names[k], tf->name) == 0 ||
				    (g_str_has_prefix(names[k], "208225") &&
				    g_str_has_prefix(tf->name, "208225"));
			}
			g_test_message("  %s: %s", names[k], have ? "unpacked" : "MISSING");
			found += have;
		}
		for (j = 0; j < files->len; j++)
			g_assert_cmpuint(g_bytes_get_size(((tnef_file *)g_ptr_array_index(files,
			    j))->data), >, 0);
	}
	g_test_message("TNEF: %u of %u listed attachments unpacked", found, expected);
	g_assert_cmpuint(expected, >=, 15);
	g_assert_cmpuint(found, ==, expected);
	/* not TNEF, truncated, limited */
	g_assert_null(tnef_unpack("not tnef at all", 15, 10, 0, NULL));
	{
		g_autofree char *tp = g_strdup_printf("%s/tests/corpus/mimekit/tnef/two-files.tnef",
		    top());
		g_autofree char *data = NULL, *note = NULL;
		g_autoptr(GPtrArray) one = NULL;
		gsize len, cut;

		g_assert_true(g_file_get_contents(tp, &data, &len, NULL));
		for (cut = 0; cut < len; cut += 7) {
			GPtrArray *a = tnef_unpack(data, cut, 10, 0, NULL);

			if (a != NULL)
				g_ptr_array_unref(a);
		}
		one = tnef_unpack(data, len, 1, 0, &note);
		g_assert_cmpuint(one->len, ==, 1);
		g_assert_nonnull(strstr(note, "left out"));
	}
}

/* A whole message with winmail.dat: the files inside become the attachments. */
static void
test_tnef_message(void)
{
	g_autofree char *tp = g_strdup_printf("%s/tests/corpus/mimekit/tnef/two-files.tnef",
	    top());
	g_autofree char *up = g_strdup_printf("%s/tests/corpus/mimekit/tnef/ukr.eml", top());
	g_autofree char *blob = NULL, *b64 = NULL, *raw = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(mail_msg) m = NULL, u = NULL;
	gsize len;

	g_assert_true(g_file_get_contents(tp, &blob, &len, NULL));
	b64 = g_base64_encode((const guchar *)blob, len);
	raw = g_strdup_printf("From: Alice <alice@example.net>\nSubject: files\n"
	    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
	    "Content-Type: text/plain\n\nsee attached\n--b\nContent-Type: "
	    "application/ms-tnef; name=\"winmail.dat\"\nContent-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"winmail.dat\"\n\n%s\n--b--\n", b64);
	m = mail_parse_data(raw, strlen(raw), NULL, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(m->attachments->len, ==, 2);
	g_assert_cmpstr(((mail_attachment *)g_ptr_array_index(m->attachments, 0))->name, ==,
	    "AUTHORS");
	g_assert_cmpstr(((mail_attachment *)g_ptr_array_index(m->attachments, 1))->name, ==,
	    "README");
	g_assert_cmpint(((mail_attachment *)g_ptr_array_index(m->attachments, 1))->size, ==,
	    893);
	/* a winmail.dat holding only a rich-text body is kept as it came: nothing lost */
	u = mail_parse_file(up, NULL, &err);
	g_assert_no_error(err);
	g_assert_cmpuint(u->attachments->len, ==, 1);
	g_assert_cmpstr(((mail_attachment *)g_ptr_array_index(u->attachments, 0))->name, ==,
	    "winmail.dat");
}

/* ---- limits: named in the case and in the acknowledgement ---- */

static GString *
with_attachments(int n, int size)
{
	GString *s = g_string_new("From: Alice <alice@example.net>\nTo: members@example.org\n"
	    "Subject: Statements\nMessage-ID: <lim-1@example.net>\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
	    "Here are my statements.\n");
	int i, j;

	for (i = 0; i < n; i++) {
		g_string_append_printf(s, "--b\nContent-Type: application/pdf\n"
		    "Content-Disposition: attachment; filename=\"statement-%d.pdf\"\n\n", i);
		for (j = 0; j < (i == 0 ? size : 10); j++)
			g_string_append_c(s, 'A' + j % 26);
		g_string_append_c(s, '\n');
	}
	g_string_append(s, "--b--\n");
	return s;
}

static void
test_limits_ack(fixture *f, gconstpointer data)
{
	GString *raw = with_attachments(5, 5000);
	g_autoptr(GMimeMessage) ack = NULL;
	g_autoptr(GPtrArray) events = NULL, msgs = NULL, atts = NULL;
	g_autofree char *ackraw = NULL, *text = NULL;
	ingest_result r;
	guint i, dropped = 0;

	ingest_bytes(f, raw->str, raw->len, &r);
	g_assert_cmpint(r.outcome, ==, INGEST_NEW_CASE);
	/* the first is too large, the fifth is one too many */
	events = store_case_events(f->st, r.case_id, NULL);
	for (i = 0; i < events->len; i++)
		if (strcmp(((store_event *)g_ptr_array_index(events, i))->kind, "dropped") == 0)
			dropped++;
	g_assert_cmpuint(dropped, ==, 2);
	msgs = store_case_messages(f->st, r.case_id, NULL);
	atts = store_message_attachments(f->st, ((store_message *)g_ptr_array_index(msgs,
	    0))->id, NULL);
	g_assert_cmpuint(atts->len, ==, 3);
	ack = ack_of(f, r.case_id, &ackraw);
	g_assert_nonnull(ack);
	text = text_of(ack);
	g_test_message("%s", text);
	g_assert_nonnull(strstr(text, "statement-0.pdf"));
	g_assert_nonnull(strstr(text, "larger than"));
	g_assert_nonnull(strstr(text, "statement-4.pdf"));
	g_assert_nonnull(strstr(text, "more than 3 attachments"));
	ingest_result_clear(&r);
	g_string_free(raw, TRUE);
}

/* Over the message size limit: a case from the header, the ack says so. */
static void
test_oversize(fixture *f, gconstpointer data)
{
	GString *raw = with_attachments(1, 200000);
	g_autoptr(GMimeMessage) ack = NULL;
	g_autofree char *ackraw = NULL, *text = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *digest = NULL;
	ingest_ctx ctx = { 0 };
	ingest_result r;
	const char *hdr = "From: Bob <bob@example.net>\r\nSubject: Huge\r\n"
	    "Message-ID: <huge@example.net>\r\n\r\n";

	f->cfg->limits.max_message_size = 100000;
	ingest_bytes(f, raw->str, raw->len, &r);
	g_assert_cmpint(r.outcome, ==, INGEST_NEW_CASE);
	ack = ack_of(f, r.case_id, &ackraw);
	text = text_of(ack);
	g_assert_nonnull(strstr(text, "the whole message"));
	g_assert_nonnull(strstr(text, "only its header was read"));
	g_clear_pointer(&text, g_free);
	ingest_result_clear(&r);
	/* the daemon's path: only the header was fetched, the size came from IMAP */
	digest = spool_put(f->sp, SPOOL_RAW, hdr, strlen(hdr), &err);
	ctx.cfg = f->cfg;
	ctx.st = f->st;
	ctx.sp = f->sp;
	g_assert_true(ingest_raw_oversize(&ctx, digest, "m/INBOX/1/7", NULL, 52428800, &r, &err));
	g_assert_no_error(err);
	g_assert_cmpint(r.outcome, ==, INGEST_NEW_CASE);
	g_clear_object(&ack);
	g_clear_pointer(&ackraw, g_free);
	ack = ack_of(f, r.case_id, &ackraw);
	text = text_of(ack);
	g_test_message("%s", text);
	g_assert_nonnull(strstr(text, "52.4 MB"));
	ingest_result_clear(&r);
	/* and inside the daemon's group transaction */
	g_clear_pointer(&digest, g_free);
	hdr = "From: Carol <carol@example.net>\r\nSubject: Huge too\r\n\r\n";
	digest = spool_put(f->sp, SPOOL_RAW, hdr, strlen(hdr), &err);
	g_assert_no_error(err);
	g_assert_true(store_begin(f->st, &err));
	g_assert_true(ingest_raw_oversize_in_txn(&ctx, digest, "m/INBOX/1/8", NULL, 60000000, &r,
	    &err));
	g_assert_true(store_commit(f->st, &err));
	g_assert_no_error(err);
	g_assert_cmpint(r.outcome, ==, INGEST_NEW_CASE);
	{
		g_autoptr(GPtrArray) ev = store_case_events(f->st, r.case_id, NULL);
		guint i;
		gboolean found = FALSE;

		for (i = 0; i < ev->len; i++)
			found |= strstr(((store_event *)g_ptr_array_index(ev, i))->detail,
			    "60.0 MB") != NULL;
		g_assert_true(found);
	}
	ingest_result_clear(&r);
	g_string_free(raw, TRUE);
}

/* ---- the whole corpus through the whole pipeline ---- */

static void
corpus_walk(const char *dir, GPtrArray *out)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		char *path = g_build_filename(dir, name, NULL);

		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			corpus_walk(path, out);
			g_free(path);
		} else if (strcmp(name, "SOURCE.md") == 0)
			g_free(path);
		else
			g_ptr_array_add(out, path);
	}
	g_dir_close(d);
}

static gint
cmp_path(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Every file of tests/corpus, messages or not, through parse, guard,
 * thread, classify (rules/default.rules), store and the acknowledgement:
 * each ends as a case, a follow-up, a recorded auto-reply or bounce, a
 * duplicate of an earlier file, or a quarantine entry with a reason.
 * Run under make check-san this is the sanitizer pass over the corpus.
 */
static void
test_corpus_pipeline(fixture *f, gconstpointer data)
{
	g_autofree char *dir = g_build_filename(top(), "tests", "corpus", NULL);
	g_autofree char *rp = g_build_filename(top(), "rules", "default.rules", NULL);
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) held = NULL;
	g_autoptr(rules) rl = rules_load(rp, errors);
	guint counts[INGEST_RECORDED + 1] = { 0 };
	guint i, bounces_held = 0;
	ingest_ctx ctx = { 0 };

	g_assert_nonnull(rl);
	f->cfg->limits.max_attachment_size = 0;	/* the corpus' real sizes */
	f->cfg->limits.max_attachments = 0;
	ctx.cfg = f->cfg;
	ctx.st = f->st;
	ctx.sp = f->sp;
	ctx.rules = rl;
	corpus_walk(dir, files);
	g_ptr_array_sort(files, cmp_path);
	g_assert_cmpuint(files->len, >=, 800);
	for (i = 0; i < files->len; i++) {
		const char *path = g_ptr_array_index(files, i);
		g_autofree char *raw = NULL, *digest = NULL;
		g_autoptr(GError) err = NULL;
		ingest_result r;
		gsize len;

		g_assert_true(g_file_get_contents(path, &raw, &len, NULL));
		if (len == 0)
			continue;	/* an empty file never leaves the mailbox as mail */
		digest = spool_put(f->sp, SPOOL_RAW, raw, len, &err);
		g_assert_no_error(err);
		if (!ingest_raw(&ctx, digest, path, NULL, &r, &err))
			g_error("%s: %s", path, err ? err->message : "failed without a reason");
		g_assert_cmpint(r.outcome, !=, INGEST_IGNORED);
		counts[r.outcome]++;
		ingest_result_clear(&r);
	}
	held = store_quarantine_list(f->st, NULL, NULL);
	g_assert_cmpuint(held->len, ==, counts[INGEST_QUARANTINED]);
	for (i = 0; i < held->len; i++) {
		const store_quarantine *q = g_ptr_array_index(held, i);

		g_assert_true(q->reason != NULL && *q->reason != '\0');
		if (g_getenv("CG_VERBOSE_CORPUS") != NULL)
			g_test_message("held: %s", q->reason);
		bounces_held += g_str_has_prefix(q->reason, "bounce");
	}
	g_test_message("corpus through the pipeline: %u files: %u new cases, %u follow-ups, "
	    "%u recorded, %u quarantined (%u of them bounces for mail we never sent), "
	    "%u duplicates", files->len, counts[INGEST_NEW_CASE], counts[INGEST_FOLLOWUP],
	    counts[INGEST_RECORDED], counts[INGEST_QUARANTINED], bounces_held,
	    counts[INGEST_DUPLICATE]);
	g_assert_cmpuint(bounces_held, >=, 500);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add("/hostile/header-injection", fixture, NULL, fix_setup, test_header_injection,
	    fix_teardown);
	g_test_add_func("/hostile/protocol-names", test_protocol_names);
	g_test_add_func("/hostile/mime-rows", test_mime_rows);
	g_test_add_func("/hostile/html-never-markup", test_html_never_markup);
	g_test_add_func("/hostile/deep-nesting", test_deep_nesting);
	g_test_add_func("/hostile/tnef-blobs", test_tnef_blobs);
	g_test_add_func("/hostile/tnef-message", test_tnef_message);
	g_test_add("/hostile/limits-ack", fixture, NULL, fix_setup, test_limits_ack, fix_teardown);
	g_test_add("/hostile/oversize", fixture, NULL, fix_setup, test_oversize, fix_teardown);
	g_test_add("/hostile/parsed-ahead", fixture, NULL, fix_setup, test_parsed_ahead,
	    fix_teardown);
	g_test_add("/hostile/corpus-pipeline", fixture, NULL, fix_setup, test_corpus_pipeline,
	    fix_teardown);
	return g_test_run();
}
