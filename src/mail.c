/*
 * mail.c - one raw message into a mail_msg.
 *
 * Rationale:
 * - GMime parses from a GMimeStreamFs with persist_stream on, so every
 *   part's content stays a window into the file: a 50 MB attachment is
 *   decoded straight from the file into the spool and never sits in
 *   memory (libs.md 5.1, 7).  The file must not change while we parse.
 * - Header values are decoded by text_decode_header() from GMime's raw
 *   value, never by GMime's own decoder, which truncates runs of base64
 *   encoded-words (bug #133).  Where GMime must parse a value itself
 *   (address lists, filename parameters) the runs are first merged into
 *   one encoded-word, which it decodes correctly.
 * - Addresses are unfolded before parsing and kept only when they pass
 *   cg_address_valid(): a folded quoted local part would otherwise carry a
 *   raw CRLF into SMTP (libs.md 5.7).
 * - Parts are walked by our own recursion (not g_mime_message_foreach,
 *   which skips message/rfc822) so the body choice can prefer the outer
 *   message: plain text, then HTML, then the same inside forwarded mail.
 * - Whatever is kept in memory is capped (text, headers, addresses,
 *   attachments, problems); every cut is noted in problems.
 * - The configured limits (mail_limits: message size, attachment size
 *   and count, MIME depth and part count) never fail a parse: what they
 *   leave out is named in m->dropped, which the acknowledgement quotes,
 *   so nothing is lost silently.  A message over the size limit is read
 *   up to the end of its header.
 * - winmail.dat is unpacked (tnef.c) into the files Outlook packed into
 *   it; when that fails the blob is kept as it came.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "mail.h"
#include "text.h"
#include "tnef.h"

#define MAIL_TEXT_MAX		(1024 * 1024)
#define MAIL_HEADERS_MAX	1000
#define MAIL_HEADER_VALUE_MAX	(16 * 1024)
#define MAIL_ADDRS_MAX		1000
#define MAIL_REFS_MAX		100
#define MAIL_ATTS_MAX		1000
#define MAIL_PARTS_MAX		10000
#define MAIL_DEPTH_MAX		64
#define MAIL_PROBLEMS_MAX	50
#define MAIL_MSGID_MAX		250
#define MAIL_CRONLY_MAX		(64 * 1024 * 1024)
#define MAIL_TNEF_MAX		(64 * 1024 * 1024)
#define MAIL_HEADER_ONLY_MAX	(256 * 1024)
#define MAIL_DROPPED_MAX	50

/* A part that could be the body; rank 2*depth (+1 for HTML), low wins. */
typedef struct {
	GMimePart	*part;		/* owned by the message */
	int		 rank;
} body_candidate;

#define MAIL_BODIES_MAX		5	/* tried when the best is blank */

typedef struct {
	mail_msg	*m;
	spool		*sp;
	GArray		*bodies;	/* body_candidate, best first */
	int		 parts;
	GError		*error;		/* spool failure: abort with this */
	const mail_limits *lim;		/* may be NULL */
	gboolean	 depth_noted, parts_noted, count_noted;
} parse_ctx;

static void G_GNUC_PRINTF(2, 3)
problem(mail_msg *m, const char *fmt, ...)
{
	va_list ap;
	char *s;
	guint i;

	if (m->problems->len > MAIL_PROBLEMS_MAX)
		return;
	va_start(ap, fmt);
	s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	for (i = 0; i < m->problems->len; i++) {
		if (strcmp(g_ptr_array_index(m->problems, i), s) == 0) {
			g_free(s);
			return;
		}
	}
	if (m->problems->len == MAIL_PROBLEMS_MAX) {
		g_free(s);
		s = g_strdup("more problems, not recorded");
	}
	g_ptr_array_add(m->problems, s);
}

/* Take over a problem note from text_*(), prefixed with where it was. */
static void
problem_take(mail_msg *m, const char *where, char *note)
{
	if (note == NULL)
		return;
	problem(m, "%s: %s", where, note);
	g_free(note);
}

/* An untrusted string short and clean enough to quote in a problem. */
static char *
quotable(const char *s)
{
	char *c = text_header_clean(s);

	text_truncate_utf8(c, 80);
	return c;
}

static void
attachment_free(mail_attachment *a)
{
	if (a == NULL)
		return;
	g_free(a->name);
	g_free(a->content_type);
	g_free(a->digest);
	g_free(a);
}

static void
header_free(mail_header *h)
{
	if (h == NULL)
		return;
	g_free(h->name);
	g_free(h->value);
	g_free(h);
}

void
mail_msg_free(mail_msg *m)
{
	if (m == NULL)
		return;
	g_free(m->message_id);
	g_free(m->from_addr);
	g_free(m->from_name);
	g_free(m->reply_to);
	g_free(m->return_path);
	g_ptr_array_unref(m->to);
	g_ptr_array_unref(m->cc);
	g_free(m->subject);
	g_free(m->in_reply_to);
	g_ptr_array_unref(m->references);
	g_free(m->text);
	g_ptr_array_unref(m->attachments);
	g_ptr_array_unref(m->headers);
	g_ptr_array_unref(m->problems);
	g_ptr_array_unref(m->dropped);
	g_free(m->visible);
	g_free(m);
}

static mail_msg *
msg_new(void)
{
	mail_msg *m = g_new0(mail_msg, 1);

	m->to = g_ptr_array_new_with_free_func(g_free);
	m->cc = g_ptr_array_new_with_free_func(g_free);
	m->references = g_ptr_array_new_with_free_func(g_free);
	m->attachments = g_ptr_array_new_with_free_func((GDestroyNotify)attachment_free);
	m->headers = g_ptr_array_new_with_free_func((GDestroyNotify)header_free);
	m->problems = g_ptr_array_new_with_free_func(g_free);
	m->dropped = g_ptr_array_new_with_free_func(g_free);
	return m;
}

char *
mail_size_text(gint64 bytes)
{
	g_autofree char *s = g_format_size(MAX(bytes, 0));
	GString *out = g_string_new(NULL);
	const char *p;

	/* GLib puts a no-break space between number and unit: keep mail 7-bit */
	for (p = s; *p != '\0'; p = g_utf8_next_char(p))
		if (g_utf8_get_char(p) == 0xa0)
			g_string_append_c(out, ' ');
		else
			g_string_append_len(out, p, g_utf8_next_char(p) - p);
	return g_string_free(out, FALSE);
}

void
mail_dropped(mail_msg *m, const char *fmt, ...)
{
	va_list ap;

	if (m->dropped->len > MAIL_DROPPED_MAX)
		return;
	if (m->dropped->len == MAIL_DROPPED_MAX) {
		g_ptr_array_add(m->dropped, g_strdup("more was left out, not listed"));
		return;
	}
	va_start(ap, fmt);
	g_ptr_array_add(m->dropped, g_strdup_vprintf(fmt, ap));
	va_end(ap);
}

const char *
mail_header_get(const mail_msg *m, const char *name)
{
	guint i;

	if (m == NULL || name == NULL)
		return NULL;
	for (i = 0; i < m->headers->len; i++) {
		mail_header *h = g_ptr_array_index(m->headers, i);

		if (g_ascii_strcasecmp(h->name, name) == 0)
			return h->value;
	}
	return NULL;
}

const char *
mail_addr_domain(const char *addr)
{
	const char *at;

	if (addr == NULL || (at = strrchr(addr, '@')) == NULL || at[1] == '\0')
		return NULL;
	return at + 1;
}

/*
 * Headers.
 */

/* The raw value with folding removed; GMime keeps the CRLFs. */
static char *
unfold(const char *raw)
{
	GString *s = g_string_new(NULL);

	for (; raw != NULL && *raw != '\0'; raw++)
		if (*raw != '\r' && *raw != '\n')
			g_string_append_c(s, *raw);
	return g_string_free(s, FALSE);
}

static const char *
raw_value(GMimeHeader *h)
{
	const char *raw = g_mime_header_get_raw_value(h);

	return raw != NULL ? raw : g_mime_header_get_value(h);
}

static void
read_headers(mail_msg *m, GMimeHeaderList *hl)
{
	int i, n = g_mime_header_list_get_count(hl);

	if (n > MAIL_HEADERS_MAX)
		problem(m, "%d headers, only the first %d kept", n, MAIL_HEADERS_MAX);
	for (i = 0; i < n && i < MAIL_HEADERS_MAX; i++) {
		GMimeHeader *gh = g_mime_header_list_get_header_at(hl, i);
		mail_header *h = g_new0(mail_header, 1);
		char *note = NULL;

		h->name = text_header_clean(g_mime_header_get_name(gh));
		h->value = text_decode_header(raw_value(gh), &note);
		if (strlen(h->value) > MAIL_HEADER_VALUE_MAX) {
			text_truncate_utf8(h->value, MAIL_HEADER_VALUE_MAX);
			problem(m, "%s: value cut to %d bytes", h->name,
			    MAIL_HEADER_VALUE_MAX);
		}
		problem_take(m, h->name, note);
		g_ptr_array_add(m->headers, h);
	}
}

/*
 * GMime 3 keeps the Content-* headers of the message on its top MIME
 * part, not in the message's header list: add them, so a rule or the
 * guard sees "Content-Type: multipart/report" like any other header.
 */
static void
read_content_headers(mail_msg *m, GMimeObject *top)
{
	GMimeHeaderList *hl = top != NULL ? g_mime_object_get_header_list(top) : NULL;
	int i, n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < n && m->headers->len < MAIL_HEADERS_MAX; i++) {
		GMimeHeader *gh = g_mime_header_list_get_header_at(hl, i);
		mail_header *h;
		char *note = NULL;

		if (g_ascii_strncasecmp(g_mime_header_get_name(gh), "Content-", 8) != 0 ||
		    mail_header_get(m, g_mime_header_get_name(gh)) != NULL)
			continue;
		h = g_new0(mail_header, 1);
		h->name = text_header_clean(g_mime_header_get_name(gh));
		h->value = text_decode_header(raw_value(gh), &note);
		text_truncate_utf8(h->value, MAIL_HEADER_VALUE_MAX);
		problem_take(m, h->name, note);
		g_ptr_array_add(m->headers, h);
	}
}

/*
 * Addresses.
 */

/* The SMTP form of a mailbox: punycode domain, lowercased; or NULL. */
static char *
mailbox_addr(mail_msg *m, const char *hname, InternetAddressMailbox *mb)
{
	const char *idn = internet_address_mailbox_get_idn_addr(mb);
	char *addr, *at;

	if (idn == NULL || *idn == '\0')
		return NULL;
	addr = g_strdup(idn);
	if ((at = strrchr(addr, '@')) != NULL) {
		char *dom = g_ascii_strdown(at + 1, -1);

		strcpy(at + 1, dom);	/* same length */
		g_free(dom);
	}
	if (!cg_address_valid(addr)) {
		g_autofree char *q = quotable(addr);

		problem(m, "%s: unusable address \"%s\" dropped", hname, q);
		g_free(addr);
		return NULL;
	}
	return addr;
}

static gboolean
strv_has(GPtrArray *a, const char *s)
{
	guint i;

	for (i = 0; i < a->len; i++)
		if (g_ascii_strcasecmp(g_ptr_array_index(a, i), s) == 0)
			return TRUE;
	return FALSE;
}

/* Collect the valid mailboxes of list (groups flattened) into out. */
static void
collect_addrs(mail_msg *m, const char *hname, InternetAddressList *list,
    GPtrArray *out, char **name_r, int depth)
{
	int i, n = internet_address_list_length(list);

	for (i = 0; i < n && depth < 4; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		char *addr;

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			collect_addrs(m, hname, internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia)), out, name_r, depth + 1);
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		addr = mailbox_addr(m, hname, INTERNET_ADDRESS_MAILBOX(ia));
		if (addr == NULL)
			continue;
		if (out->len >= MAIL_ADDRS_MAX || strv_has(out, addr)) {
			if (out->len >= MAIL_ADDRS_MAX)
				problem(m, "%s: more than %d addresses, rest "
				    "ignored", hname, MAIL_ADDRS_MAX);
			g_free(addr);
			continue;
		}
		if (name_r != NULL && *name_r == NULL && out->len == 0 &&
		    internet_address_get_name(ia) != NULL) {
			*name_r = text_header_clean(internet_address_get_name(ia));
			if (**name_r == '\0')
				g_clear_pointer(name_r, g_free);
		}
		g_ptr_array_add(out, addr);
	}
}

/* Every valid address in every header called hname. */
static GPtrArray *
header_addrs(mail_msg *m, GMimeHeaderList *hl, const char *hname, char **name_r)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	int i, n = MIN(g_mime_header_list_get_count(hl), MAIL_HEADERS_MAX);

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		g_autofree char *flat = NULL, *merged = NULL;
		InternetAddressList *list;

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), hname) != 0)
			continue;
		flat = unfold(raw_value(h));
		merged = text_merge_encoded_words(flat);
		list = internet_address_list_parse(NULL, merged);
		if (list == NULL)
			continue;
		collect_addrs(m, hname, list, out, name_r, 0);
		g_object_unref(list);
	}
	return out;
}

static char *
first_addr(GPtrArray *a)
{
	char *s = a->len > 0 ? g_strdup(g_ptr_array_index(a, 0)) : NULL;

	g_ptr_array_unref(a);
	return s;
}

static void
read_addresses(mail_msg *m, GMimeHeaderList *hl)
{
	g_ptr_array_unref(m->to);	/* replaced by the parsed lists */
	g_ptr_array_unref(m->cc);
	m->from_addr = first_addr(header_addrs(m, hl, "From", &m->from_name));
	m->reply_to = first_addr(header_addrs(m, hl, "Reply-To", NULL));
	m->to = header_addrs(m, hl, "To", NULL);
	m->cc = header_addrs(m, hl, "Cc", NULL);
}

/* Return-Path: "<>" is the null sender, kept as "". */
static void
read_return_path(mail_msg *m)
{
	const char *v = mail_header_get(m, "Return-Path");
	g_autofree char *a = NULL;
	const char *lt, *gt;
	char *at;

	if (v == NULL)
		return;
	lt = strchr(v, '<');
	gt = lt != NULL ? strchr(lt, '>') : NULL;
	if (lt != NULL && gt != NULL)
		a = g_strndup(lt + 1, gt - lt - 1);
	else
		a = g_strdup(v);
	g_strstrip(a);
	if (*a == '\0') {
		m->return_path = g_strdup("");
		return;
	}
	if ((at = strrchr(a, '@')) != NULL)
		for (at++; *at != '\0'; at++)
			*at = g_ascii_tolower(*at);
	if (cg_address_valid(a))
		m->return_path = g_steal_pointer(&a);
	else
		problem(m, "Return-Path: unusable address dropped");
}

/*
 * Message ids.
 */

static gboolean
msgid_valid(const char *id)
{
	const char *p;

	if (!cg_protocol_safe(id, MAIL_MSGID_MAX))
		return FALSE;
	for (p = id; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return FALSE;	/* outgoing References stay 7-bit */
	return TRUE;
}

/* The raw header value (no RFC 2047 decoding: ids are not text). */
static char *
first_raw(GMimeHeaderList *hl, const char *name)
{
	int i, n = MIN(g_mime_header_list_get_count(hl), MAIL_HEADERS_MAX);

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), name) == 0)
			return unfold(raw_value(h));
	}
	return NULL;
}

static char *
read_msgid(mail_msg *m, GMimeHeaderList *hl)
{
	g_autofree char *raw = first_raw(hl, "Message-ID");
	g_autofree char *id = NULL;

	if (raw == NULL)
		return NULL;
	id = g_mime_utils_decode_message_id(raw);
	if (id != NULL && msgid_valid(id))
		return g_steal_pointer(&id);
	problem(m, "Message-ID: unusable id ignored");
	return NULL;
}

static void
read_references(mail_msg *m, GMimeHeaderList *hl)
{
	g_autofree char *irt = first_raw(hl, "In-Reply-To");
	g_autofree char *refs = first_raw(hl, "References");
	GMimeReferences *r;
	int i, n;

	if (irt != NULL && (r = g_mime_references_parse(NULL, irt)) != NULL) {
		n = g_mime_references_length(r);
		for (i = 0; i < n && m->in_reply_to == NULL; i++) {
			const char *id = g_mime_references_get_message_id(r, i);

			if (msgid_valid(id))
				m->in_reply_to = g_strdup(id);
		}
		g_mime_references_free(r);
	}
	if (irt != NULL && m->in_reply_to == NULL)
		problem(m, "In-Reply-To: no usable id");
	if (refs == NULL || (r = g_mime_references_parse(NULL, refs)) == NULL)
		return;
	n = g_mime_references_length(r);
	if (n > MAIL_REFS_MAX)
		problem(m, "References: %d ids, kept the first and the last %d",
		    n, MAIL_REFS_MAX - 1);
	for (i = 0; i < n; i++) {
		const char *id = g_mime_references_get_message_id(r, i);

		/* the root and the nearest ancestors matter for threading */
		if (n > MAIL_REFS_MAX && i > 0 && i < n - (MAIL_REFS_MAX - 1))
			continue;
		if (msgid_valid(id) && !strv_has(m->references, id))
			g_ptr_array_add(m->references, g_strdup(id));
	}
	g_mime_references_free(r);
}

static void
read_date(mail_msg *m)
{
	const char *v = mail_header_get(m, "Date");
	GDateTime *dt;

	if (v == NULL)
		return;
	dt = g_mime_utils_header_decode_date(v);
	if (dt != NULL)
		m->date = MAX(g_date_time_to_unix(dt), 0);
	if (dt == NULL || m->date == 0)
		problem(m, "Date: not a usable date");
	if (dt != NULL)
		g_date_time_unref(dt);
}

/*
 * Parts.
 */

static char *
lower_type(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *t = ct ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *s = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
	g_autofree char *joined = NULL, *clean = NULL;

	joined = g_strdup_printf("%s/%s", t ? t : "application",
	    s ? s : "octet-stream");
	clean = text_header_clean(joined);
	return g_ascii_strdown(clean, -1);
}

/* A parameter from a raw header of obj, re-parsed after merging words. */
static char *
raw_param(GMimeObject *obj, const char *hname, const char *param)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	int i, n = g_mime_header_list_get_count(hl);
	char *res = NULL;

	for (i = 0; i < n && res == NULL; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		g_autofree char *flat = NULL, *merged = NULL;
		const char *v;

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), hname) != 0)
			continue;
		flat = unfold(raw_value(h));
		merged = text_merge_encoded_words(flat);
		if (g_ascii_strcasecmp(hname, "Content-Disposition") == 0) {
			GMimeContentDisposition *d =
			    g_mime_content_disposition_parse(NULL, merged);

			v = d ? g_mime_content_disposition_get_parameter(d, param) : NULL;
			res = v ? g_strdup(v) : NULL;
			g_clear_object(&d);
		} else {
			GMimeContentType *ct = g_mime_content_type_parse(NULL, merged);

			v = ct ? g_mime_content_type_get_parameter(ct, param) : NULL;
			res = v ? g_strdup(v) : NULL;
			g_clear_object(&ct);
		}
	}
	return res;
}

/* The filename, decoded with the bug #133 workaround; NULL if none. */
static char *
part_filename(GMimePart *part)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	const char *fn = g_mime_part_get_filename(part);
	g_autofree char *fixed = NULL;

	if (fn == NULL)
		return NULL;
	fixed = raw_param(obj, "Content-Disposition", "filename");
	if (fixed == NULL)
		fixed = raw_param(obj, "Content-Type", "name");
	return text_header_clean(fixed != NULL ? fixed : fn);
}

static gboolean
is_signature(const char *type)
{
	return strcmp(type, "application/pgp-signature") == 0 ||
	    strcmp(type, "application/pkcs7-signature") == 0 ||
	    strcmp(type, "application/x-pkcs7-signature") == 0;
}

/* Leaves worth keeping as files; the body candidates are excluded. */
static gboolean
is_attachment(GMimePart *part, const char *type, const char *filename)
{
	gboolean text = g_str_has_prefix(type, "text/");

	if (g_mime_part_is_attachment(part))
		return TRUE;
	if (text || is_signature(type))
		return FALSE;
	if (filename != NULL)
		return TRUE;
	return g_str_has_prefix(type, "image/") || g_str_has_prefix(type, "audio/") ||
	    g_str_has_prefix(type, "video/") || g_str_has_prefix(type, "application/") ||
	    g_str_has_prefix(type, "model/") || g_str_has_prefix(type, "font/");
}

static gboolean
over_size(const parse_ctx *ctx, gint64 n)
{
	return ctx->lim != NULL && ctx->lim->max_attachment_size > 0 &&
	    n > ctx->lim->max_attachment_size;
}

/* Decode into sp (or just count when sp is NULL); FALSE on a spool error. */
static gboolean
save_content(parse_ctx *ctx, GMimeDataWrapper *content, mail_attachment *a)
{
	GMimeStream *s;
	spool_tmp *t = NULL;
	gint64 n;

	if (ctx->sp != NULL) {
		t = spool_tmp_new(ctx->sp, &ctx->error);
		if (t == NULL)
			return FALSE;
		s = spool_tmp_stream(t);
	} else
		s = g_mime_stream_null_new();
	n = content != NULL ? g_mime_data_wrapper_write_to_stream(content, s) : 0;
	g_mime_stream_flush(s);
	g_object_unref(s);
	if (t == NULL) {
		a->size = MAX(n, 0);
		return TRUE;
	}
	if (n >= 0 && over_size(ctx, n)) {
		/* over the attachment limit: the caller names it in dropped */
		spool_tmp_abort(t);
		a->size = n;
		return TRUE;
	}
	if (n < 0) {
		/* a zero-length write reports the spool's own error, if any */
		if (spool_tmp_write(t, "", 0, &ctx->error))
			g_set_error(&ctx->error, CG_ERROR, CG_ERROR_TEMP, "reading "
			    "attachment \"%s\" from the message failed", a->name);
		spool_tmp_abort(t);
		return FALSE;
	}
	a->size = n;
	a->digest = spool_tmp_commit(t, SPOOL_ATT, &ctx->error);
	return a->digest != NULL;
}

/* Room for one more attachment?  Names the one that does not fit. */
static gboolean
attachment_room(parse_ctx *ctx, const char *name)
{
	mail_msg *m = ctx->m;
	int max = ctx->lim != NULL ? ctx->lim->max_attachments : 0;
	g_autofree char *safe = NULL;

	if (m->attachments->len >= MAIL_ATTS_MAX) {
		problem(m, "more than %d attachments, rest ignored", MAIL_ATTS_MAX);
		max = MAIL_ATTS_MAX;
	} else if (max <= 0 || (int)m->attachments->len < max)
		return TRUE;
	safe = spool_safe_name(name);
	mail_dropped(m, "attachment \"%s\": more than %d attachments", safe, max);
	return FALSE;
}

/* Drop the last attachment when it came out over the size limit. */
static void
check_size(parse_ctx *ctx)
{
	mail_msg *m = ctx->m;
	mail_attachment *a;
	g_autofree char *size = NULL, *limit = NULL;

	if (m->attachments->len == 0 || ctx->error != NULL)
		return;
	a = g_ptr_array_index(m->attachments, m->attachments->len - 1);
	if (!over_size(ctx, a->size))
		return;
	size = mail_size_text(a->size);
	limit = mail_size_text(ctx->lim->max_attachment_size);
	mail_dropped(m, "attachment \"%s\" (%s): larger than the %s limit", a->name, size,
	    limit);
	g_ptr_array_remove_index(m->attachments, m->attachments->len - 1);
}

static void
add_attachment(parse_ctx *ctx, GMimePart *part, const char *type, const char *filename)
{
	mail_msg *m = ctx->m;
	mail_attachment *a;

	if (!attachment_room(ctx, filename))
		return;
	a = g_new0(mail_attachment, 1);
	a->name = spool_safe_name(filename);
	if (filename != NULL && strcmp(a->name, filename) != 0)
		problem(m, "attachment name sanitised to \"%s\"", a->name);
	a->content_type = g_strdup(type);
	g_ptr_array_add(m->attachments, a);
	save_content(ctx, g_mime_part_get_content(part), a);
	check_size(ctx);
}

/* Keep the candidates sorted by rank, in document order within a rank. */
static void
add_body(parse_ctx *ctx, GMimePart *part, int rank)
{
	body_candidate c = { part, rank };
	guint i;

	for (i = 0; i < ctx->bodies->len; i++)
		if (g_array_index(ctx->bodies, body_candidate, i).rank > rank)
			break;
	if (i < MAIL_BODIES_MAX)
		g_array_insert_val(ctx->bodies, i, c);
	if (ctx->bodies->len > MAIL_BODIES_MAX)
		g_array_set_size(ctx->bodies, MAIL_BODIES_MAX);
}

static GByteArray *read_decoded(GMimePart *part, size_t max);

static gboolean
is_tnef(const char *type, const char *filename)
{
	return strcmp(type, "application/ms-tnef") == 0 ||
	    strcmp(type, "application/vnd.ms-tnef") == 0 ||
	    (filename != NULL && g_ascii_strcasecmp(filename, "winmail.dat") == 0);
}

/* One file from winmail.dat into the spool as an attachment. */
static void
add_tnef_file(parse_ctx *ctx, const tnef_file *f)
{
	mail_attachment *a;
	gsize len;
	const void *data = g_bytes_get_data(f->data, &len);

	if (!attachment_room(ctx, f->name))
		return;
	a = g_new0(mail_attachment, 1);
	a->name = spool_safe_name(f->name);
	a->content_type = g_strdup("application/octet-stream");
	a->size = len;
	g_ptr_array_add(ctx->m->attachments, a);
	if (ctx->sp != NULL)
		a->digest = spool_put(ctx->sp, SPOOL_ATT, data, len, &ctx->error);
}

/*
 * Replace winmail.dat by the files inside it.  FALSE when there is
 * nothing to unpack: the caller then keeps the blob as it is.
 */
static gboolean
unpack_tnef(parse_ctx *ctx, GMimePart *part)
{
	gint64 max = ctx->lim != NULL ? ctx->lim->max_attachment_size : 0;
	size_t cap = max > 0 && max < MAIL_TNEF_MAX ? (size_t)max : MAIL_TNEF_MAX;
	g_autoptr(GByteArray) raw = read_decoded(part, cap);
	g_autoptr(GPtrArray) files = NULL;
	g_autofree char *note = NULL;
	guint i;

	if (raw->len > cap)
		return FALSE;	/* too large to open: kept (and limited) as it is */
	files = tnef_unpack(raw->data, raw->len, MAIL_ATTS_MAX, max, &note);
	if (note != NULL && strstr(note, "left out") != NULL)
		mail_dropped(ctx->m, "%s", note);
	else if (note != NULL)
		problem(ctx->m, "%s", note);
	if (files == NULL || files->len == 0)
		return FALSE;
	for (i = 0; i < files->len && ctx->error == NULL; i++)
		add_tnef_file(ctx, g_ptr_array_index(files, i));
	problem(ctx->m, "winmail.dat unpacked into %u attachment%s", files->len,
	    files->len == 1 ? "" : "s");
	return TRUE;
}

static void
leaf(parse_ctx *ctx, GMimePart *part, int msg_depth)
{
	g_autofree char *type = lower_type(GMIME_OBJECT(part));
	g_autofree char *filename = part_filename(part);
	int rank;

	if (is_tnef(type, filename) && unpack_tnef(ctx, part))
		return;
	if (is_attachment(part, type, filename)) {
		add_attachment(ctx, part, type, filename);
		return;
	}
	if (strcmp(type, "text/plain") == 0)
		rank = 2 * msg_depth;
	else if (strcmp(type, "text/html") == 0)
		rank = 2 * msg_depth + 1;
	else
		return;
	add_body(ctx, part, rank);
}

/* The configured depth and part limits; TRUE when obj must be skipped. */
static gboolean
over_limits(parse_ctx *ctx, int depth)
{
	const mail_limits *l = ctx->lim;

	if (l == NULL)
		return FALSE;
	if (l->max_mime_depth > 0 && depth > l->max_mime_depth) {
		if (!ctx->depth_noted)
			mail_dropped(ctx->m, "MIME parts nested deeper than %d levels",
			    l->max_mime_depth);
		ctx->depth_noted = TRUE;
		return TRUE;
	}
	if (l->max_parts > 0 && ctx->parts >= l->max_parts) {
		if (!ctx->parts_noted)
			mail_dropped(ctx->m, "MIME parts after the first %d", l->max_parts);
		ctx->parts_noted = TRUE;
		return TRUE;
	}
	return FALSE;
}

static void
walk(parse_ctx *ctx, GMimeObject *obj, int depth, int msg_depth)
{
	if (obj == NULL || ctx->error != NULL || over_limits(ctx, depth))
		return;
	if (depth > MAIL_DEPTH_MAX || ++ctx->parts > MAIL_PARTS_MAX) {
		problem(ctx->m, "MIME structure too deep or too large, rest ignored");
		return;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		int i, n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));

		for (i = 0; i < n; i++)
			walk(ctx, g_mime_multipart_get_part(GMIME_MULTIPART(obj), i),
			    depth + 1, msg_depth);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(obj));

		if (inner != NULL)
			walk(ctx, g_mime_message_get_mime_part(inner), depth + 1,
			    msg_depth + 1);
	} else if (GMIME_IS_PART(obj))
		leaf(ctx, GMIME_PART(obj), msg_depth);
}

/* Up to max+1 decoded bytes of part (so the caller can tell it was cut). */
static GByteArray *
read_decoded(GMimePart *part, size_t max)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GByteArray *ba = g_byte_array_new();
	GMimeContentEncoding enc;
	GMimeStream *src, *f;
	char buf[8192];
	ssize_t n;

	if (w == NULL || (src = g_mime_data_wrapper_get_stream(w)) == NULL)
		return ba;
	enc = g_mime_data_wrapper_get_encoding(w);
	g_mime_stream_reset(src);
	f = g_mime_stream_filter_new(src);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeFilter *dec = g_mime_filter_basic_new(enc, FALSE);

		g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), dec);
		g_object_unref(dec);
	}
	while (ba->len <= max && (n = g_mime_stream_read(f, buf, sizeof(buf))) > 0)
		g_byte_array_append(ba, (guint8 *)buf, MIN((size_t)n, max + 1 - ba->len));
	g_object_unref(f);
	return ba;
}

static void
read_text(mail_msg *m, GMimePart *part, int rank)
{
	g_clear_pointer(&m->text, g_free);
	GByteArray *raw = read_decoded(part, MAIL_TEXT_MAX);
	const char *cs = g_mime_object_get_content_type_parameter(
	    GMIME_OBJECT(part), "charset");
	gboolean cut = raw->len > MAIL_TEXT_MAX;
	char *note = NULL, *u;

	if (cut)
		g_byte_array_set_size(raw, MAIL_TEXT_MAX);
	u = text_to_utf8((const char *)raw->data, raw->len, cs, &note);
	g_byte_array_unref(raw);
	problem_take(m, "body", note);
	m->text_from_html = rank % 2 == 1;
	if (m->text_from_html) {
		m->text = text_from_html(u, strlen(u), MAIL_TEXT_MAX);
		g_free(u);
	} else
		m->text = u;
	if (strlen(m->text) >= MAIL_TEXT_MAX)
		cut = TRUE;
	text_truncate_utf8(m->text, MAIL_TEXT_MAX);
	if (cut)
		problem(m, "body text cut to %d bytes", MAIL_TEXT_MAX);
}

static gboolean
blank(const char *s)
{
	for (; *s != '\0'; s = g_utf8_next_char(s))
		if (!g_unichar_isspace(g_utf8_get_char(s)))
			return FALSE;
	return TRUE;
}

/* The first candidate with some text: an empty text/plain alternative
 * beside the real HTML is common. */
static void
read_best_text(mail_msg *m, GArray *bodies)
{
	guint i;

	for (i = 0; i < bodies->len; i++) {
		body_candidate *c = &g_array_index(bodies, body_candidate, i);

		read_text(m, c->part, c->rank);
		if (!blank(m->text))
			return;
	}
	if (m->text == NULL)
		m->text = g_strdup("");
	m->text_from_html = FALSE;
}

/*
 * Parsing.
 */

static void
parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data)
{
	mail_msg *m = data;

	switch (code) {
	case GMIME_WARN_TRUNCATED_MESSAGE:
		problem(m, "message is truncated");
		break;
	case GMIME_WARN_MALFORMED_MULTIPART:
		problem(m, "multipart without parts");
		break;
	case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
		problem(m, "multipart without boundary, read as one part");
		break;
	case GMIME_CRIT_NESTING_OVERFLOW:
		problem(m, "MIME nesting too deep, inner parts not parsed");
		break;
	case GMIME_CRIT_INVALID_HEADER_NAME:
		problem(m, "invalid header name, parts of the message may be lost");
		break;
	case GMIME_WARN_INVALID_CONTENT_TYPE:
		problem(m, "invalid Content-Type, read as application/octet-stream");
		break;
	case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
		problem(m, "MIME part without headers or content");
		break;
	default:
		break;
	}
}

static mail_msg *
parse_stream(GMimeStream *stream, gint64 size, spool *sp, const mail_limits *lim,
    GError **error)
{
	GMimeParserOptions *opts = g_mime_parser_options_new();
	g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
	g_autoptr(GMimeMessage) msg = NULL;
	parse_ctx ctx = { 0 };
	GMimeHeaderList *hl;
	mail_msg *m = msg_new();

	m->size = size;
	g_mime_parser_options_set_warning_callback(opts, parser_warning, m);
	msg = g_mime_parser_construct_message(parser, opts);
	if (msg == NULL || g_mime_header_list_get_count(
	    (hl = g_mime_object_get_header_list(GMIME_OBJECT(msg)))) == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "no header found: "
		    "not an RFC 5322 message");
		mail_msg_free(m);
		g_mime_parser_options_free(opts);
		return NULL;
	}
	read_headers(m, hl);
	read_content_headers(m, g_mime_message_get_mime_part(msg));
	read_addresses(m, hl);
	read_return_path(m);
	m->message_id = read_msgid(m, hl);
	read_references(m, hl);
	read_date(m);
	m->subject = g_strdup(mail_header_get(m, "Subject") ?
	    mail_header_get(m, "Subject") : "");

	ctx.m = m;
	ctx.sp = sp;
	ctx.lim = lim;
	ctx.bodies = g_array_new(FALSE, FALSE, sizeof(body_candidate));
	walk(&ctx, g_mime_message_get_mime_part(msg), 0, 0);
	g_mime_parser_options_free(opts);
	if (ctx.error != NULL) {
		g_propagate_error(error, ctx.error);
		g_array_unref(ctx.bodies);
		mail_msg_free(m);
		return NULL;
	}
	read_best_text(m, ctx.bodies);
	g_array_unref(ctx.bodies);
	return m;
}

/*
 * Old Mac mail ends lines with a bare CR, which GMime reads as one long
 * line.  Such files are rare and small: convert them in memory.
 */
static gboolean
cr_only(int fd)
{
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	return n > 0 && memchr(buf, '\n', n) == NULL && memchr(buf, '\r', n) != NULL;
}

static mail_msg *
parse_cr_only(int fd, gint64 size, spool *sp, const mail_limits *lim, GError **error)
{
	GByteArray *ba;
	GMimeStream *s;
	mail_msg *m;
	char buf[65536];
	ssize_t n, i;

	if (size > MAIL_CRONLY_MAX) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "message with CR-only "
		    "line endings larger than %d bytes", MAIL_CRONLY_MAX);
		return NULL;
	}
	ba = g_byte_array_sized_new(size);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++)
			if (buf[i] == '\r')
				buf[i] = '\n';
		g_byte_array_append(ba, (guint8 *)buf, n);
	}
	if (n < 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "read failed: %s",
		    g_strerror(errno));
		g_byte_array_unref(ba);
		return NULL;
	}
	s = g_mime_stream_mem_new_with_byte_array(ba);	/* takes ba */
	m = parse_stream(s, size, sp, lim, error);
	g_object_unref(s);
	if (m != NULL)
		problem(m, "CR-only line endings read as LF");
	return m;
}

/* Where the header of data ends (after its blank line), or len. */
static size_t
header_end(const char *data, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (data[i] == '\n' && data[i + 1] == '\n')
			return i + 2;
		if (data[i] == '\n' && data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
			return i + 3;
		if (data[i] == '\r' && data[i + 1] == '\r')
			return i + 2;
	}
	return len;
}

/*
 * A message over the size limit: only its header is parsed (nothing of
 * the body reaches memory or the spool), and dropped says so.
 */
static mail_msg *
parse_header_only(const char *data, size_t len, gint64 size, const mail_limits *lim,
    GError **error)
{
	g_autofree char *have = NULL, *limit = NULL;
	mail_msg *m;

	len = header_end(data, MIN(len, MAIL_HEADER_ONLY_MAX));
	m = mail_parse_data_limits(data, len, NULL, NULL, error);
	if (m == NULL)
		return NULL;
	m->size = size;
	g_clear_pointer(&m->text, g_free);
	m->text = g_strdup("");
	g_ptr_array_set_size(m->attachments, 0);
	have = mail_size_text(size);
	limit = mail_size_text(lim->max_message_size);
	mail_dropped(m, "the whole message (%s): larger than the %s limit; only its header "
	    "was read", have, limit);
	return m;
}

static gboolean
too_large(const mail_limits *lim, gint64 size)
{
	return lim != NULL && lim->max_message_size > 0 && size > lim->max_message_size;
}

static mail_msg *
parse_file_header_only(int fd, gint64 size, const mail_limits *lim, GError **error)
{
	g_autofree char *buf = g_malloc(MAIL_HEADER_ONLY_MAX);
	ssize_t n = pread(fd, buf, MAIL_HEADER_ONLY_MAX, 0);

	if (n < 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "read failed: %s",
		    g_strerror(errno));
		return NULL;
	}
	return parse_header_only(buf, n, size, lim, error);
}

mail_msg *
mail_parse_file(const char *path, spool *sp, GError **error)
{
	return mail_parse_file_limits(path, sp, NULL, error);
}

mail_msg *
mail_parse_file_limits(const char *path, spool *sp, const mail_limits *lim, GError **error)
{
	struct stat st;
	GMimeStream *s;
	mail_msg *m;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "open(%s) failed: %s",
		    path, g_strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "fstat(%s) failed: %s",
		    path, g_strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "%s: %s", path,
		    !S_ISREG(st.st_mode) ? "not a regular file" : "empty message");
		close(fd);
		return NULL;
	}
	if (too_large(lim, st.st_size)) {
		m = parse_file_header_only(fd, st.st_size, lim, error);
		close(fd);
		return m;
	}
	if (cr_only(fd)) {
		m = parse_cr_only(fd, st.st_size, sp, lim, error);
		close(fd);
		return m;
	}
	s = g_mime_stream_fs_new(fd);	/* owns fd from here */
	m = parse_stream(s, st.st_size, sp, lim, error);
	g_object_unref(s);
	return m;
}

mail_msg *
mail_parse_data(const char *data, size_t len, spool *sp, GError **error)
{
	return mail_parse_data_limits(data, len, sp, NULL, error);
}

mail_msg *
mail_parse_data_limits(const char *data, size_t len, spool *sp, const mail_limits *lim,
    GError **error)
{
	GMimeStream *s;
	mail_msg *m;

	if (data == NULL || len == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "empty message");
		return NULL;
	}
	if (too_large(lim, len))
		return parse_header_only(data, len, len, lim, error);
	if (memchr(data, '\n', MIN(len, 8192)) == NULL &&
	    memchr(data, '\r', MIN(len, 8192)) != NULL) {
		GByteArray *ba = g_byte_array_sized_new(len);
		size_t i;

		g_byte_array_append(ba, (const guint8 *)data, len);
		for (i = 0; i < len; i++)
			if (ba->data[i] == '\r')
				ba->data[i] = '\n';
		s = g_mime_stream_mem_new_with_byte_array(ba);
		m = parse_stream(s, len, sp, lim, error);
		if (m != NULL)
			problem(m, "CR-only line endings read as LF");
	} else {
		s = g_mime_stream_mem_new_with_buffer(data, len);
		m = parse_stream(s, len, sp, lim, error);
	}
	g_object_unref(s);
	return m;
}
