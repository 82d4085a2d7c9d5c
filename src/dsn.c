/*
 * dsn.c - read a bounce: who could not be reached, why, and which of
 * our messages it was.
 *
 * Rationale:
 * - A standard DSN (RFC 3464) is a multipart/report whose
 *   message/delivery-status part holds header-like blocks: one for the
 *   message, one per recipient.  GMime gives that part as a plain
 *   GMimePart, so its fields are read here from the decoded bytes.  The
 *   original's Message-ID comes from the message/rfc822 part or, when
 *   only headers were returned, from a text/rfc822-headers part.
 * - Half the bounces in the wild are not standard (qmail, old sendmail,
 *   Exchange, Notes, webmail).  They are recognised by who sent them
 *   (MAILER-DAEMON, postmaster, the null sender, "Mail Delivery
 *   System"), by their subject and by failure evidence in the text
 *   (status codes, "user unknown", X-Failed-Recipients); the recipient
 *   and the original Message-ID are then searched in the text.
 * - Patterns are GRegex in raw mode over a bounded copy of the message
 *   (no UTF-8 assumption, no backtracking-heavy expressions): a bounce
 *   is untrusted input like any other.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "dsn.h"
#include "text.h"

#define DSN_READ_MAX	(4 * 1024 * 1024)
#define DSN_SCAN_MAX	(512 * 1024)	/* bytes of text searched by the heuristics */
#define DSN_PARTS_MAX	200
#define DSN_DEPTH_MAX	8
#define DSN_RCPTS_MAX	100
#define DSN_IDS_MAX	10
#define DSN_DIAG_MAX	300

enum {
	RX_BOUNCE_SUBJECT,
	RX_FAILURE_TEXT,
	RX_HARD_TEXT,
	RX_SOFT_TEXT,
	RX_STATUS,
	RX_SMTP_CODE,
	RX_FIELD_RCPT,
	RX_ANGLE_LINE,
	RX_ADDR,
	RX_MSGID,
	RX_COUNT
};

static const char *const rx_src[RX_COUNT] = {
	[RX_BOUNCE_SUBJECT] =
	    "undeliver|undelivered|delivery[ -](?:status|failure|failed|has failed|problem|"
	    "notification|report|error)|returned mail|return(?:ed)? to sender|failure notice|"
	    "mail delivery (?:failed|failure|system|subsystem)|could not be delivered|"
	    "non-?deliver|nondeliver|delivery unsuccessful|mail system error|mail failed|"
	    "mail failure|returning (?:message )?to sender|delivery failed|failure|"
	    "message not delivered|not delivered|unable to deliver|permanent error|"
	    "user unknown|no such user|could not send|mail could not|rejected|bounced?\\b|"
	    "unzustellbar|nicht zugestellt|zustellung|non recapitabile|non remis|"
	    "no entregado|onbestelbaar|nedeliver|nepiegādāt|neizdevās|error sending|"
	    "\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x82\xa8\xe3\x83\xa9\xe3\x83\xbc|"	/* mail error (ja) */
	    "\xe6\x9c\xaa\xe9\x81\x94|\xe8\xbf\x94\xe9\x80\x81",	/* undelivered, returned (ja) */
	[RX_FAILURE_TEXT] =
	    "final-recipient:|action:\\s*failed|\\b[45]\\.\\d{1,3}\\.\\d{1,3}\\b|"
	    "user unknown|unknown user|no such user|does not exist|mailbox unavailable|"
	    "permanent(?:ly)? (?:error|failure|fatal)|could not be delivered|"
	    "delivery (?:to the following|has failed|failed)|undeliverable|"
	    "\\b55[0-4][ -]|\\b45[0-2][ -]|quota|mailbox (?:is )?full|"
	    "following address(?:es)? (?:had|failed)|unable to deliver|"
	    "message could not be delivered|returned to sender|rejected",
	[RX_HARD_TEXT] =
	    "user unknown|unknown user|no such (?:user|address|mailbox|recipient)|"
	    "does(?: not|n't) exist|mailbox (?:unavailable|not found|disabled)|"
	    "invalid (?:recipient|address|mailbox)|recipient (?:address )?rejected|"
	    "address rejected|unrouteable|unknown (?:local|recipient|address)|"
	    "account (?:has been )?(?:disabled|closed|suspended|deactivated)|"
	    "host (?:unknown|not found)|domain (?:not found|does not exist)|"
	    "relay(?:ing)? (?:denied|not permitted)|no mailbox|not our customer|"
	    "permanent(?:ly)? (?:error|failure|fatal)|\\b55[0-4][ -]",
	[RX_SOFT_TEXT] =
	    "quota|mailbox (?:is )?full|over ?quota|temporar|try again|delay|deferred|"
	    "greylist|will (?:be )?retr|\\b4[0-5]\\d[ -]",
	[RX_STATUS] = "(?<![\\d.])([245])\\.(\\d{1,3})\\.(\\d{1,3})(?![\\d.]*\\d)",
	[RX_SMTP_CODE] = "(?<!\\d)([45][0-5]\\d)[ -](?=\\S)",
	[RX_FIELD_RCPT] =
	    "^[ \\t]*(?:final|original)-recipient:[ \\t]*(?:rfc822[ \\t]*;)?[ \\t]*<?"
	    "([^\\s<>;\"]+@[^\\s<>;\"]+?)>?[ \\t]*$",
	[RX_ANGLE_LINE] = "^[ \\t]*<([^\\s<>@]+@[^\\s<>]+)>",
	[RX_ADDR] = "[A-Za-z0-9._%+=/'!#$&*?^{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
	    "[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+",
	[RX_MSGID] = "^[ \\t>]*Message-ID:[ \\t]*(?:\\r?\\n[ \\t]+)?<([^<>\\s]{3,250})>",
};

static GRegex *rx[RX_COUNT];

static void
rx_init(void)
{
	static gsize done = 0;
	int i;

	if (!g_once_init_enter(&done))
		return;
	for (i = 0; i < RX_COUNT; i++) {
		g_autoptr(GError) err = NULL;

		rx[i] = g_regex_new(rx_src[i], G_REGEX_CASELESS | G_REGEX_MULTILINE |
		    G_REGEX_RAW | G_REGEX_OPTIMIZE, 0, &err);
		if (rx[i] == NULL)
			g_error("dsn: pattern %d: %s", i, err->message);	/* a bug here */
	}
	g_once_init_leave(&done, 1);
}

static gboolean
rx_has(int which, const char *s)
{
	return s != NULL && g_regex_match(rx[which], s, 0, NULL);
}

/* Group n of the first match, newly allocated, or NULL. */
static char *
rx_group(int which, const char *s, int n)
{
	g_autoptr(GMatchInfo) mi = NULL;

	if (s == NULL || !g_regex_match(rx[which], s, 0, &mi))
		return NULL;
	return g_match_info_fetch(mi, n);
}

/* ---- reports ---- */

static void
rcpt_free(dsn_rcpt *r)
{
	if (r == NULL)
		return;
	g_free(r->addr);
	g_free(r->action);
	g_free(r->status);
	g_free(r->diagnostic);
	g_free(r);
}

void
dsn_report_free(dsn_report *r)
{
	if (r == NULL)
		return;
	g_free(r->reporting_mta);
	g_free(r->orig_message_id);
	g_ptr_array_unref(r->message_ids);
	g_ptr_array_unref(r->rcpts);
	g_free(r);
}

static dsn_report *
report_new(void)
{
	dsn_report *r = g_new0(dsn_report, 1);

	r->message_ids = g_ptr_array_new_with_free_func(g_free);
	r->rcpts = g_ptr_array_new_with_free_func((GDestroyNotify)rcpt_free);
	return r;
}

const dsn_rcpt *
dsn_report_failed(const dsn_report *r)
{
	guint i;

	for (i = 0; r != NULL && i < r->rcpts->len; i++) {
		const dsn_rcpt *x = g_ptr_array_index(r->rcpts, i);

		if (x->failed)
			return x;
	}
	return NULL;
}

/* A clean, lowercase-domain address, or NULL when it is not usable. */
static char *
clean_addr(const char *s)
{
	g_autofree char *a = NULL;
	char *at;

	if (s == NULL)
		return NULL;
	a = g_strdup(s);
	g_strstrip(a);
	if (*a == '<')
		memmove(a, a + 1, strlen(a));
	if (*a != '\0' && a[strlen(a) - 1] == '>')
		a[strlen(a) - 1] = '\0';
	if ((at = strrchr(a, '@')) != NULL)
		for (at++; *at != '\0'; at++)
			*at = g_ascii_tolower(*at);
	return cg_address_valid(a) ? g_steal_pointer(&a) : NULL;
}

static void
add_id(dsn_report *r, const char *id)
{
	guint i;

	if (id == NULL || !cg_protocol_safe(id, 250) || r->message_ids->len >= DSN_IDS_MAX)
		return;
	for (i = 0; i < r->message_ids->len; i++)
		if (strcmp(g_ptr_array_index(r->message_ids, i), id) == 0)
			return;
	g_ptr_array_add(r->message_ids, g_strdup(id));
	if (r->orig_message_id == NULL)
		r->orig_message_id = g_strdup(id);
}

/* Every Message-ID header line in text, in order. */
static void
ids_from_text(dsn_report *r, const char *text)
{
	g_autoptr(GMatchInfo) mi = NULL;

	if (text == NULL || !g_regex_match(rx[RX_MSGID], text, 0, &mi))
		return;
	while (g_match_info_matches(mi)) {
		g_autofree char *id = g_match_info_fetch(mi, 1);

		add_id(r, id);
		g_match_info_next(mi, NULL);
	}
}

static char *
one_line(const char *s, size_t max)
{
	char *c = text_header_clean(s);

	text_truncate_utf8(c, max);
	return c;
}

/* Fill in what a recipient's fields left open. */
static void
rcpt_settle(dsn_rcpt *x)
{
	if (x->status == NULL && x->diagnostic != NULL)
		x->status = rx_group(RX_STATUS, x->diagnostic, 0);
	if (x->action != NULL)
		x->failed = strcmp(x->action, "failed") == 0;
	else
		x->failed = TRUE;
	if (x->status != NULL)
		x->hard = x->status[0] == '5';
	else if (x->diagnostic != NULL)
		x->hard = !rx_has(RX_SOFT_TEXT, x->diagnostic) &&
		    rx_has(RX_HARD_TEXT, x->diagnostic);
	else
		x->hard = x->failed;
	if (x->status != NULL && x->status[0] == '4')
		x->failed = x->action == NULL ? FALSE : x->failed;
	if (x->status != NULL && x->status[0] == '2')
		x->failed = FALSE;
	x->hard = x->hard && x->failed;
}

/* ---- message/delivery-status fields ---- */

typedef struct {
	char *name;
	char *value;
} field;

/* Split text into blocks of unfolded "Name: value" fields. */
static GPtrArray *
field_blocks(const char *text)
{
	GPtrArray *blocks = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	g_auto(GStrv) lines = g_strsplit(text, "\n", 0);
	GPtrArray *cur = NULL;
	GString *val = NULL;
	char *name = NULL;
	guint i;

	for (i = 0; lines[i] != NULL && blocks->len < DSN_RCPTS_MAX + 1; i++) {
		char *l = lines[i], *colon;

		g_strchomp(l);
		if (*l == '\0') {
			cur = NULL;
			continue;
		}
		if ((*l == ' ' || *l == '\t') && val != NULL) {
			g_string_append_c(val, ' ');
			g_string_append(val, g_strstrip(l));
			continue;
		}
		if ((colon = strchr(l, ':')) == NULL)
			continue;
		if (cur == NULL) {
			cur = g_ptr_array_new_with_free_func(g_free);
			g_ptr_array_add(blocks, cur);
		}
		/* name and value kept as "name\0value" pairs, flat */
		*colon = '\0';
		name = g_strstrip(l);
		val = g_string_new(g_strstrip(colon + 1));
		g_ptr_array_add(cur, g_strdup(name));
		g_ptr_array_add(cur, val);	/* a GString until the block ends */
	}
	/* Turn the GStrings into plain strings. */
	for (i = 0; i < blocks->len; i++) {
		GPtrArray *b = g_ptr_array_index(blocks, i);
		guint j;

		for (j = 1; j < b->len; j += 2)
			b->pdata[j] = g_string_free(b->pdata[j], FALSE);
	}
	return blocks;
}

static const char *
block_get(GPtrArray *b, const char *name)
{
	guint j;

	for (j = 0; j + 1 < b->len; j += 2)
		if (g_ascii_strcasecmp(b->pdata[j], name) == 0)
			return b->pdata[j + 1];
	return NULL;
}

/* "rfc822; a@b" -> "a@b" */
static const char *
after_type(const char *v)
{
	const char *semi = v ? strchr(v, ';') : NULL;

	return semi != NULL ? semi + 1 : v;
}

static void
read_delivery_status(dsn_report *r, const char *text)
{
	g_autoptr(GPtrArray) blocks = field_blocks(text);
	guint i;

	for (i = 0; i < blocks->len && r->rcpts->len < DSN_RCPTS_MAX; i++) {
		GPtrArray *b = g_ptr_array_index(blocks, i);
		const char *fin = block_get(b, "Final-Recipient");
		const char *orig = block_get(b, "Original-Recipient");
		const char *v;
		dsn_rcpt *x;

		if ((v = block_get(b, "Reporting-MTA")) != NULL && r->reporting_mta == NULL)
			r->reporting_mta = one_line(after_type(v), 200);
		if (fin == NULL && orig == NULL)
			continue;
		x = g_new0(dsn_rcpt, 1);
		x->addr = clean_addr(after_type(fin != NULL ? fin : orig));
		if (x->addr == NULL && orig != NULL)
			x->addr = clean_addr(after_type(orig));
		if ((v = block_get(b, "Action")) != NULL) {
			g_autofree char *a = one_line(v, 40);

			x->action = g_ascii_strdown(a, -1);
			g_strstrip(x->action);
		}
		if ((v = block_get(b, "Status")) != NULL)
			x->status = rx_group(RX_STATUS, v, 0);
		if ((v = block_get(b, "Diagnostic-Code")) != NULL)
			x->diagnostic = one_line(after_type(v), DSN_DIAG_MAX);
		rcpt_settle(x);
		g_ptr_array_add(r->rcpts, x);
	}
}

/* ---- walking the MIME tree ---- */

typedef struct {
	dsn_report *r;
	gboolean report;	/* saw a delivery-status part */
	int parts;
} walk_ctx;

static char *
part_text(GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *mem;
	GByteArray *ba;
	char *s;

	if (w == NULL)
		return g_strdup("");
	mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, mem);
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	s = text_make_utf8((const char *)ba->data, MIN(ba->len, DSN_SCAN_MAX), NULL);
	g_object_unref(mem);
	return s;
}

static gboolean
type_is(GMimeObject *o, const char *type, const char *sub)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);

	return ct != NULL && g_mime_content_type_is_type(ct, type, sub);
}

static void
walk(walk_ctx *w, GMimeObject *o, int depth)
{
	if (o == NULL || depth > DSN_DEPTH_MAX || ++w->parts > DSN_PARTS_MAX)
		return;
	if (GMIME_IS_MULTIPART(o)) {
		int i, n = g_mime_multipart_get_count(GMIME_MULTIPART(o));

		for (i = 0; i < n; i++)
			walk(w, g_mime_multipart_get_part(GMIME_MULTIPART(o), i), depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));

		if (inner != NULL && g_mime_message_get_message_id(inner) != NULL)
			add_id(w->r, g_mime_message_get_message_id(inner));
		else if (inner != NULL) {
			/* no usable id: look into its header text */
			g_autofree char *h = g_mime_object_get_headers(GMIME_OBJECT(inner), NULL);

			ids_from_text(w->r, h);
		}
	} else if (GMIME_IS_PART(o)) {
		g_autofree char *text = NULL;

		if (type_is(o, "message", "delivery-status") ||
		    type_is(o, "message", "global-delivery-status")) {
			text = part_text(GMIME_PART(o));
			read_delivery_status(w->r, text);
			w->report = TRUE;
		} else if (type_is(o, "text", "rfc822-headers") ||
		    type_is(o, "message", "global-headers") ||
		    type_is(o, "message", "rfc822")) {
			text = part_text(GMIME_PART(o));
			ids_from_text(w->r, text);
		}
	}
}

/* ---- heuristics ---- */

typedef struct {
	const char *from_addr, *from_raw, *return_path, *subject, *content_type;
	const char *auto_submitted, *failed_rcpts;
} signals;

static gboolean
daemon_address(const char *a)
{
	return a != NULL && (g_ascii_strncasecmp(a, "mailer-daemon", 13) == 0 ||
	    g_ascii_strncasecmp(a, "postmaster", 10) == 0 ||
	    g_ascii_strncasecmp(a, "mail-daemon", 11) == 0 ||
	    g_ascii_strncasecmp(a, "mailerdaemon", 12) == 0);
}

/* The From header as written: "MAILER-DAEMON" often has no domain. */
static gboolean
daemon_from(const char *from_raw)
{
	static const char *const names[] = {
		"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "post_master",
		"mail delivery", NULL,
	};
	g_autofree char *low = NULL;
	const char *const *n;

	if (from_raw == NULL)
		return FALSE;
	low = g_ascii_strdown(from_raw, MIN(strlen(from_raw), 512));
	for (n = names; *n != NULL; n++)
		if (strstr(low, *n) != NULL)
			return TRUE;
	return FALSE;
}

static gboolean
system_sender(const signals *s)
{
	if (s->return_path != NULL && *s->return_path == '\0')
		return TRUE;
	return daemon_address(s->from_addr) || daemon_from(s->from_raw);
}

static gboolean
is_report_type(const char *ct)
{
	g_autofree char *low = NULL;

	if (ct == NULL)
		return FALSE;
	low = g_ascii_strdown(ct, -1);
	return g_str_has_prefix(g_strchug(low), "multipart/report") &&
	    strstr(low, "disposition-notification") == NULL &&
	    strstr(low, "feedback-report") == NULL;
}

/*
 * The first DSN_SCAN_MAX bytes of s, for the heuristics.  Not
 * g_strndup(s, DSN_SCAN_MAX): it pads its copy with NULs to the full
 * 512 KB, which every message paid for (2.7% of the ingest thread).
 */
static char *
scan_prefix(const char *s)
{
	return g_strndup(s, strnlen(s, DSN_SCAN_MAX));
}

static gboolean
decide(const signals *s, const char *text)
{
	if (is_report_type(s->content_type) || s->failed_rcpts != NULL)
		return TRUE;
	/* Exim marks its bounces auto-replied too: only a person's
	 * auto-responder is taken at its word. */
	if (s->auto_submitted != NULL &&
	    g_ascii_strncasecmp(s->auto_submitted, "auto-replied", 12) == 0 &&
	    !daemon_address(s->from_addr) && !daemon_from(s->from_raw))
		return FALSE;
	/* Amazon SES forwards bounces as JSON notifications */
	if (text != NULL && strstr(text, "\"notificationType\"") != NULL &&
	    strstr(text, "\"Bounce\"") != NULL)
		return TRUE;
	if (rx_has(RX_BOUNCE_SUBJECT, s->subject) &&
	    (system_sender(s) || rx_has(RX_FAILURE_TEXT, text)))
		return TRUE;
	return system_sender(s) && rx_has(RX_FAILURE_TEXT, text);
}

gboolean
dsn_looks_like_bounce(const mail_msg *m)
{
	g_autofree char *text = NULL;
	signals s = { 0 };

	rx_init();
	s.from_addr = m->from_addr;
	s.from_raw = mail_header_get(m, "From");
	s.return_path = m->return_path;
	s.subject = m->subject;
	s.content_type = mail_header_get(m, "Content-Type");
	s.auto_submitted = mail_header_get(m, "Auto-Submitted");
	s.failed_rcpts = mail_header_get(m, "X-Failed-Recipients");
	if (s.auto_submitted != NULL)
		while (*s.auto_submitted == ' ')
			s.auto_submitted++;
	text = scan_prefix(m->text);
	return decide(&s, text);
}

/* Recipients named in a non-standard bounce's text. */
static void
rcpts_from_text(dsn_report *r, const char *body, const char *failed_hdr,
    const char *from_addr)
{
	g_autofree char *addr = NULL, *code = NULL;
	dsn_rcpt *x;

	if (failed_hdr != NULL) {
		g_autofree char *first = rx_group(RX_ADDR, failed_hdr, 0);

		addr = clean_addr(first);
	}
	if (addr == NULL) {
		g_autofree char *a = rx_group(RX_FIELD_RCPT, body, 1);

		addr = clean_addr(a);
	}
	if (addr == NULL) {
		g_autofree char *a = rx_group(RX_ANGLE_LINE, body, 1);

		addr = clean_addr(a);
	}
	if (addr == NULL) {
		/* the first address in the text that is not the reporter's */
		g_autoptr(GMatchInfo) mi = NULL;

		g_regex_match(rx[RX_ADDR], body, 0, &mi);
		while (addr == NULL && g_match_info_matches(mi)) {
			g_autofree char *a = g_match_info_fetch(mi, 0);
			char *c = clean_addr(a);

			if (c != NULL && (from_addr == NULL ||
			    g_ascii_strcasecmp(c, from_addr) != 0) &&
			    g_ascii_strncasecmp(c, "mailer-daemon@", 14) != 0 &&
			    g_ascii_strncasecmp(c, "postmaster@", 11) != 0)
				addr = c;
			else
				g_free(c);
			g_match_info_next(mi, NULL);
		}
	}
	x = g_new0(dsn_rcpt, 1);
	x->addr = g_steal_pointer(&addr);
	x->status = rx_group(RX_STATUS, body, 0);
	code = rx_group(RX_SMTP_CODE, body, 1);
	if (x->status == NULL && code != NULL)
		x->status = g_strdup_printf("%c.0.0", code[0]);
	if (x->status == NULL) {
		if (rx_has(RX_SOFT_TEXT, body) && !rx_has(RX_HARD_TEXT, body))
			x->status = g_strdup("4.0.0");
		else
			x->status = g_strdup("5.0.0");
	}
	x->diagnostic = NULL;
	rcpt_settle(x);
	g_ptr_array_add(r->rcpts, x);
}

static const char *
hdr(GMimeObject *o, const char *name)
{
	const char *v = g_mime_object_get_header(o, name);

	while (v != NULL && (*v == ' ' || *v == '\t'))
		v++;
	return v;
}

/* After the top header block: where the body starts in raw. */
static const char *
body_of(const char *raw)
{
	const char *p = strstr(raw, "\n\n"), *q = strstr(raw, "\r\n\r\n");

	if (p == NULL || (q != NULL && q < p))
		p = q;
	return p != NULL ? p : raw + strlen(raw);
}

static dsn_report *
parse_message(GMimeMessage *msg, const char *raw)
{
	GMimeObject *top = GMIME_OBJECT(msg);
	InternetAddressList *from = g_mime_message_get_from(msg);
	g_autofree char *from_addr = NULL, *rp = NULL, *subject = NULL;
	g_autofree char *body = NULL, *fr = NULL;
	walk_ctx w = { 0 };
	signals s = { 0 };
	const char *ct;

	if (from != NULL && internet_address_list_length(from) > 0) {
		InternetAddress *ia = internet_address_list_get_address(from, 0);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			from_addr = clean_addr(internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia)));
	}
	if (hdr(top, "Return-Path") != NULL) {
		rp = g_strdup(hdr(top, "Return-Path"));
		g_strstrip(rp);
		if (strcmp(rp, "<>") == 0)
			rp[0] = '\0';
	}
	subject = text_decode_header(hdr(top, "Subject") ? hdr(top, "Subject") : "", NULL);
	/* GMime 3 keeps Content-* on the top part, not on the message */
	ct = g_mime_message_get_mime_part(msg) != NULL ?
	    hdr(g_mime_message_get_mime_part(msg), "Content-Type") : NULL;
	fr = hdr(top, "X-Failed-Recipients") ? g_strdup(hdr(top, "X-Failed-Recipients")) : NULL;
	s = (signals){ from_addr, hdr(top, "From"), rp, subject, ct, hdr(top, "Auto-Submitted"),
	    fr };
	body = scan_prefix(body_of(raw));
	if (!decide(&s, body))
		return NULL;

	w.r = report_new();
	walk(&w, g_mime_message_get_mime_part(msg), 0);
	w.r->kind = w.report && w.r->rcpts->len > 0 ? DSN_STANDARD : DSN_HEURISTIC;
	if (w.r->rcpts->len == 0)
		rcpts_from_text(w.r, body, fr, from_addr);
	ids_from_text(w.r, body);
	return w.r;
}

dsn_report *
dsn_parse_data(const char *data, size_t len)
{
	g_autoptr(GMimeStream) s = NULL;
	g_autoptr(GMimeParser) p = NULL;
	g_autoptr(GMimeMessage) msg = NULL;
	g_autofree char *raw = NULL;
	GByteArray *ba;
	size_t i;

	if (data == NULL || len == 0)
		return NULL;
	rx_init();
	len = MIN(len, DSN_READ_MAX);
	/* CR-only line ends (old Mac mail) read as LF, as mail.c does */
	ba = g_byte_array_sized_new(len);
	g_byte_array_append(ba, (const guint8 *)data, len);
	if (memchr(data, '\n', MIN(len, 8192)) == NULL)
		for (i = 0; i < len; i++)
			if (ba->data[i] == '\r')
				ba->data[i] = '\n';
	raw = text_make_utf8((const char *)ba->data, MIN(len, DSN_SCAN_MAX), NULL);
	s = g_mime_stream_mem_new_with_byte_array(ba);	/* takes ba */
	p = g_mime_parser_new_with_stream(s);
	msg = g_mime_parser_construct_message(p, NULL);
	if (msg == NULL)
		return NULL;
	return parse_message(msg, raw);
}

dsn_report *
dsn_parse_file(const char *path, GError **error)
{
	g_autofree char *buf = g_malloc(DSN_READ_MAX);
	ssize_t n = 0;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "open(%s) failed: %s", path,
		    g_strerror(errno));
		return NULL;
	}
	while (got < DSN_READ_MAX && (n = read(fd, buf + got, DSN_READ_MAX - got)) > 0)
		got += n;
	if (n < 0 && got < DSN_READ_MAX) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "read(%s) failed: %s", path,
		    g_strerror(errno));
		close(fd);
		return NULL;
	}
	close(fd);
	return dsn_parse_data(buf, got);
}
