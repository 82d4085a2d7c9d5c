/*
 * outbox.c - compose mail about a case and deliver the outbox.
 *
 * Composition happens when the mail is queued, inside the caller's
 * transaction: the bytes go to the spool (SPOOL_OUT) once, so the
 * Message-ID is known from the start and every retry sends exactly the
 * same message.  Delivery reads due rows and hands the spool files to
 * smtp.c over one connection.
 *
 * Outgoing mail is 7-bit with CRLF line ends: libetpan never announces
 * BODY=8BITMIME and sends the bytes as they are.  Names and subjects
 * lose CR/LF before they reach GMime (which would encode them safely,
 * but unreadably), and nothing of the incoming mail's MIME structure is
 * copied: GMime 3.2.13 can loop forever re-encoding a hostile
 * Content-Type parameter (bug #165).
 *
 * Acknowledgements follow RFC 3834: Auto-Submitted: auto-replied and an
 * empty envelope sender, so a bounce never comes back to a robot.
 */
#include <sys/stat.h>
#include <errno.h>
#include <string.h>

#include "cg.h"
#include "log.h"
#include "outbox.h"
#include "smtp.h"
#include "thread.h"

#define TEMPLATE_MAX	(64 * 1024)
#define REFERENCES_MAX	20	/* ids kept in References:, the newest */
#define DELIVER_BATCH	100

/* A single line of valid UTF-8 without control characters; never NULL. */
static char *
one_line(const char *s)
{
	g_autofree char *valid = g_utf8_make_valid(s != NULL ? s : "", -1);
	GString *out = g_string_sized_new(strlen(valid));
	const char *p;

	for (p = valid; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 || ch == 0x7f || ch == ' ') {
			if (out->len > 0 && out->str[out->len - 1] != ' ')
				g_string_append_c(out, ' ');
		} else {
			g_string_append_c(out, (char)ch);
		}
	}
	g_strstrip(out->str);
	out->len = strlen(out->str);
	return g_string_free(out, FALSE);
}

static gboolean
template_name_ok(const char *name)
{
	return name != NULL && *name != '\0' && *name != '.' && strchr(name, '/') == NULL;
}

static char *
template_read(const config *cfg, const char *name, GError **error)
{
	g_autofree char *path = NULL;
	GError *e = NULL;
	struct stat sb;
	char *text;
	gsize len;

	if (cfg->templates == NULL || !template_name_ok(name)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "template %s: no templates "
		    "directory configured or bad template name", name != NULL ? name : "(null)");
		return NULL;
	}
	path = g_build_filename(cfg->templates, name, NULL);
	if (stat(path, &sb) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "template %s: %s", path,
		    g_strerror(errno));
		return NULL;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > TEMPLATE_MAX) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "template %s: not a regular file of at most %d bytes", path, TEMPLATE_MAX);
		return NULL;
	}
	if (!g_file_get_contents(path, &text, &len, &e)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "template %s", e->message);
		g_error_free(e);
		return NULL;
	}
	/* stat and read are not atomic: check again. */
	if (len > TEMPLATE_MAX || !g_utf8_validate(text, (gssize)len, NULL)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "template %s: larger than %d bytes or not valid UTF-8", path, TEMPLATE_MAX);
		g_free(text);
		return NULL;
	}
	return text;
}

static gboolean
is_key(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 64)
		return FALSE;
	for (i = 0; i < len; i++)
		if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-')
			return FALSE;
	return TRUE;
}

static void
expand(GString *out, const char *text, GHashTable *vars)
{
	const char *p = text, *open, *close;

	while ((open = strstr(p, "{{")) != NULL) {
		const char *k, *value;
		size_t klen;

		g_string_append_len(out, p, open - p);
		if ((close = strstr(open + 2, "}}")) == NULL)
			break;
		for (k = open + 2; *k == ' '; k++)
			;
		for (klen = close - k; klen > 0 && k[klen - 1] == ' '; klen--)
			;
		if (!is_key(k, klen)) {
			/* Not a placeholder: keep one brace as text and look
			 * again from the next ("{{{key}}}" is "{value}"). */
			g_string_append_c(out, '{');
			p = open + 1;
			continue;
		}
		{
			g_autofree char *key = g_strndup(k, klen);

			value = vars != NULL ? g_hash_table_lookup(vars, key) : NULL;
		}
		if (value != NULL)
			g_string_append(out, value);
		p = close + 2;
	}
	if (open == NULL)
		g_string_append(out, p);
	else
		g_string_append(out, open);
}

char *
outbox_render(const config *cfg, const char *name, GHashTable *vars, GError **error)
{
	g_autofree char *text = template_read(cfg, name, error);
	GString *out;

	if (text == NULL)
		return NULL;
	out = g_string_sized_new(strlen(text) + 256);
	expand(out, text, vars);
	return g_string_free(out, FALSE);
}

/* "Type / Sub type / Update type" from the parts that are set. */
static char *
case_type_line(const store_case *c)
{
	const char *parts[] = { c->type, c->sub_type, c->update_type };
	GString *out = g_string_new(NULL);
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(parts); i++) {
		if (parts[i] == NULL || *parts[i] == '\0')
			continue;
		if (out->len > 0)
			g_string_append(out, " / ");
		g_string_append(out, parts[i]);
	}
	if (out->len == 0)
		g_string_append(out, "not classified yet");
	return g_string_free(out, FALSE);
}

static GHashTable *
ack_vars(const config *cfg, const outbox_ack_info *info)
{
	const store_case *c = info->c;
	GHashTable *v = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	const char *subject = c->subject;
	GString *missing = g_string_new(NULL);
	guint i;

	if ((subject == NULL || *subject == '\0') && info->orig != NULL)
		subject = info->orig->subject;
	for (i = 0; info->missing != NULL && i < info->missing->len; i++) {
		g_autofree char *label = one_line(g_ptr_array_index(info->missing, i));

		if (*label != '\0')
			g_string_append_printf(missing, "  - %s\n", label);
	}
	g_hash_table_insert(v, "case_id", one_line(c->public_id));
	g_hash_table_insert(v, "subject", one_line(subject));
	g_hash_table_insert(v, "member_name", one_line(c->member_name != NULL &&
	    *c->member_name != '\0' ? c->member_name : c->member));
	g_hash_table_insert(v, "type", case_type_line(c));
	g_hash_table_insert(v, "team", one_line(c->team != NULL && *c->team != '\0' ?
	    c->team : cfg->name));
	g_hash_table_insert(v, "missing_block", g_strdup(missing->len == 0 ? "" :
	    "\nTo handle your request we still need the following. Please reply\n"
	    "to this message with:\n\n"));
	g_hash_table_insert(v, "missing", g_string_free(missing, FALSE));
	g_hash_table_insert(v, "gateway_name", one_line(cfg->name));
	g_hash_table_insert(v, "gateway_address", one_line(cfg->address));
	return v;
}

/* "<a> <b> ... <orig>", the last REFERENCES_MAX ids; NULL without a Message-ID. */
static char *
references_line(const mail_msg *orig)
{
	GString *out;
	guint i, n, start;

	if (orig == NULL || !cg_protocol_safe(orig->message_id, 250))
		return NULL;
	out = g_string_new(NULL);
	n = orig->references != NULL ? orig->references->len : 0;
	start = n > REFERENCES_MAX - 1 ? n - (REFERENCES_MAX - 1) : 0;
	for (i = start; i < n; i++) {
		const char *id = g_ptr_array_index(orig->references, i);

		if (!cg_protocol_safe(id, 250) || strcmp(id, orig->message_id) == 0)
			continue;
		g_string_append_printf(out, "<%s> ", id);
	}
	g_string_append_printf(out, "<%s>", orig->message_id);
	return g_string_free(out, FALSE);
}

static GMimeMessage *
ack_compose(const config *cfg, const outbox_ack_info *info, const char *message_id,
    const char *subject, const char *body)
{
	const store_case *c = info->c;
	GMimeMessage *m = g_mime_message_new(TRUE);
	g_autoptr(GMimeTextPart) part = g_mime_text_part_new_with_subtype("plain");
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree char *from_name = one_line(cfg->name);
	g_autofree char *to_name = one_line(c->member_name);
	g_autofree char *refs = references_line(info->orig);

	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM,
	    *from_name != '\0' ? from_name : NULL, cfg->address);
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO,
	    *to_name != '\0' ? to_name : NULL, c->member);
	g_mime_message_set_subject(m, subject, NULL);
	g_mime_message_set_date(m, now);
	g_mime_message_set_message_id(m, message_id);
	if (refs != NULL) {
		g_autofree char *irt = g_strdup_printf("<%s>", info->orig->message_id);

		g_mime_object_set_header((GMimeObject *)m, "In-Reply-To", irt, NULL);
		g_mime_object_set_header((GMimeObject *)m, "References", refs, NULL);
	}
	g_mime_object_set_header((GMimeObject *)m, "Auto-Submitted", "auto-replied", NULL);
	g_mime_object_set_header((GMimeObject *)m, "X-Auto-Response-Suppress", "All", NULL);

	g_mime_text_part_set_text(part, body);
	g_mime_message_set_mime_part(m, (GMimeObject *)part);
	g_mime_object_encode((GMimeObject *)m, GMIME_ENCODING_CONSTRAINT_7BIT);
	return m;
}

/* The message as bytes with CRLF line ends. */
static GByteArray *
serialise(GMimeMessage *m)
{
	GMimeFormatOptions *fo = g_mime_format_options_clone(g_mime_format_options_get_default());
	GMimeStream *mem = g_mime_stream_mem_new();
	GByteArray *bytes;

	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	g_mime_object_write_to_stream((GMimeObject *)m, fo, mem);
	g_mime_stream_flush(mem);
	/* Take the array over: an owning stream frees its contents even
	 * when the array has another reference. */
	bytes = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
	g_mime_stream_mem_set_owner((GMimeStreamMem *)mem, FALSE);
	g_object_unref(mem);
	g_mime_format_options_free(fo);
	return bytes;
}

static gint64
ack_record(const config *cfg, store *st, const store_case *c, const char *message_id,
    const char *subject, const char *body, const char *digest, GError **error)
{
	g_autofree char *detail = g_strdup_printf("to <%s>", c->member);
	store_message msg = { 0 };
	store_outbox o = { 0 };
	gint64 id;

	msg.case_id = c->id;
	msg.direction = "out";
	msg.role = "gateway";
	msg.message_id = (char *)message_id;
	msg.raw_digest = (char *)digest;
	msg.from_addr = cfg->address;
	msg.to_addrs = c->member;
	msg.subject = (char *)subject;
	msg.text = (char *)body;
	msg.date = cg_now();
	if (store_message_add(st, &msg, error) == 0)
		return 0;

	o.case_id = c->id;
	o.kind = "ack";
	o.env_from = "";	/* null sender: RFC 3834 */
	o.rcpt = c->member;
	o.message_id = (char *)message_id;
	o.spool_digest = (char *)digest;
	o.state = OUTBOX_QUEUED;
	o.next_attempt = cg_now();
	if ((id = store_outbox_add(st, &o, error)) == 0)
		return 0;
	if (!store_event_add(st, c->id, "ack-queued", "casegated", detail, error))
		return 0;
	return id;
}

gint64
outbox_queue_ack(const config *cfg, store *st, spool *sp, const outbox_ack_info *info,
    GError **error)
{
	const store_case *c = info != NULL ? info->c : NULL;
	g_autoptr(GHashTable) vars = NULL;
	g_autoptr(GMimeMessage) m = NULL;
	g_autoptr(GByteArray) bytes = NULL;
	g_autofree char *body = NULL, *message_id = NULL, *subject = NULL, *raw_subject = NULL;
	g_autofree char *digest = NULL;

	if (c == NULL || c->public_id == NULL || !cg_address_valid(c->member)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM,
		    "ack: case %s has no deliverable member address",
		    c != NULL && c->public_id != NULL ? c->public_id : "(none)");
		return 0;
	}
	if (!cg_address_valid(cfg->address)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "ack: gateway address \"%s\" is not a valid address",
		    cfg->address != NULL ? cfg->address : "");
		return 0;
	}
	vars = ack_vars(cfg, info);
	if ((body = outbox_render(cfg, "ack.txt", vars, error)) == NULL)
		return 0;
	message_id = thread_message_id(cfg, c->public_id);
	raw_subject = thread_subject(cfg, info->orig != NULL ? info->orig->subject : c->subject,
	    c->public_id, TRUE);
	subject = one_line(raw_subject);

	m = ack_compose(cfg, info, message_id, subject, body);
	bytes = serialise(m);
	if ((digest = spool_put(sp, SPOOL_OUT, bytes->data, bytes->len, error)) == NULL)
		return 0;
	return ack_record(cfg, st, c, message_id, subject, body, digest, error);
}

gint64
outbox_backoff(const config *cfg, int attempts)
{
	gint64 lo = cfg->outbox_retry_min > 0 ? cfg->outbox_retry_min : 30;
	gint64 hi = cfg->outbox_retry_max > lo ? cfg->outbox_retry_max : lo;
	gint64 base = lo, floor_ = lo / 2 > 0 ? lo / 2 : 1, wait;
	int i;

	/* Doubling stops at the cap, so no shift can overflow. */
	for (i = 0; i < attempts && base < hi; i++)
		base *= 2;
	if (base > hi)
		base = hi;
	wait = (gint64)(base * g_random_double_range(0.8, 1.2));
	return wait < floor_ ? floor_ : wait;
}

/* Record the outcome of one row in one transaction. */
static void
record(store *st, const store_outbox *o, const char *state, gint64 next, const char *why)
{
	GError *e = NULL;
	g_autofree char *detail = NULL;
	gboolean ok;

	if (!store_begin(st, &e))
		goto fail;
	if (strcmp(state, OUTBOX_SENT) == 0) {
		detail = g_strdup_printf("to <%s>", o->rcpt);
		ok = store_outbox_mark_sent(st, o->id, &e) &&
		    store_event_add(st, o->case_id, "sent", "casegated", detail, &e);
	} else if (strcmp(state, OUTBOX_FAILED) == 0) {
		detail = g_strdup_printf("to <%s>: %s", o->rcpt, why);
		ok = store_outbox_mark_failed(st, o->id, why, &e) &&
		    store_event_add(st, o->case_id, "delivery-failed", "casegated", detail, &e);
	} else {
		ok = store_outbox_mark_retry(st, o->id, next, why, &e);
	}
	if (!ok) {
		store_rollback(st);
		goto fail;
	}
	if (store_commit(st, &e))
		return;
fail:
	log_warnx("outbox %" G_GINT64_FORMAT ": cannot record state %s: %s", o->id, state,
	    e->message);
	g_error_free(e);
}

static void
retry_or_fail(const config *cfg, store *st, const store_outbox *o, const GError *e)
{
	int max = cfg->outbox_max_attempts > 0 ? cfg->outbox_max_attempts : 20;

	if (e->code == CG_ERROR_PERM || o->attempts + 1 >= max) {
		g_autofree char *why = o->attempts + 1 >= max && e->code != CG_ERROR_PERM ?
		    g_strdup_printf("%s (gave up after %d attempts)", e->message, o->attempts + 1) :
		    g_strdup(e->message);

		log_warnx("outbox %" G_GINT64_FORMAT ": delivery to <%s> failed: %s", o->id,
		    o->rcpt, why);
		record(st, o, OUTBOX_FAILED, 0, why);
		return;
	}
	log_info("outbox %" G_GINT64_FORMAT ": to <%s>: will retry: %s", o->id, o->rcpt,
	    e->message);
	record(st, o, OUTBOX_QUEUED, cg_now() + outbox_backoff(cfg, o->attempts), e->message);
}

/* Send one row and record the outcome; smtp_alive() tells whether conn survived. */
static void
deliver_one(const config *cfg, store *st, spool *sp, smtp_conn *conn, const store_outbox *o,
    int *sent)
{
	g_autofree char *path = spool_path(sp, SPOOL_OUT, o->spool_digest);
	GError *e = NULL;

	if (path == NULL || !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_autofree char *why = g_strdup_printf("composed message %s/%s is missing from "
		    "the spool; nothing to send", SPOOL_OUT,
		    o->spool_digest != NULL ? o->spool_digest : "(none)");

		log_warnx("outbox %" G_GINT64_FORMAT ": %s", o->id, why);
		record(st, o, OUTBOX_FAILED, 0, why);
		return;
	}
	if (smtp_send_file(conn, o->env_from != NULL ? o->env_from : "", o->rcpt, path, &e)) {
		log_info("outbox %" G_GINT64_FORMAT ": sent %s to <%s>", o->id, o->kind, o->rcpt);
		record(st, o, OUTBOX_SENT, 0, NULL);
		(*sent)++;
		return;
	}
	retry_or_fail(cfg, st, o, e);
	g_error_free(e);
}

static void
retry_all(const config *cfg, store *st, GPtrArray *rows, const GError *e)
{
	guint i;

	for (i = 0; i < rows->len; i++) {
		const store_outbox *o = g_ptr_array_index(rows, i);

		record(st, o, OUTBOX_QUEUED, cg_now() + outbox_backoff(cfg, o->attempts),
		    e->message);
	}
}

int
outbox_deliver_due(const config *cfg, store *st, spool *sp, volatile int *stop,
    GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;
	smtp_conn *conn;
	GError *e = NULL;
	gboolean reopened = FALSE;
	int sent = 0;
	guint i;

	if ((rows = store_outbox_due(st, cg_now(), DELIVER_BATCH, error)) == NULL)
		return -1;
	if (rows->len == 0)
		return 0;
	if ((conn = smtp_open(&cfg->smtp, cfg->domain, &e)) == NULL) {
		log_warnx("outbox: %u due, relay unreachable: %s", rows->len, e->message);
		retry_all(cfg, st, rows, e);
		g_propagate_error(error, e);
		return -1;
	}
	for (i = 0; i < rows->len; i++) {
		if (stop != NULL && *stop)
			break;
		if (!smtp_alive(conn)) {
			/* Reopen once per batch; the rest waits for the next round. */
			smtp_close(conn);
			conn = NULL;
			if (reopened)
				break;
			reopened = TRUE;
			if ((conn = smtp_open(&cfg->smtp, cfg->domain, &e)) == NULL) {
				log_warnx("outbox: reconnect failed: %s", e->message);
				g_clear_error(&e);
				break;
			}
		}
		deliver_one(cfg, st, sp, conn, g_ptr_array_index(rows, i), &sent);
	}
	smtp_close(conn);
	return sent;
}
