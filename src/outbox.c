/*
 * outbox.c - compose mail about a case and deliver the outbox.
 *
 * Queueing a mail, inside the caller's transaction, records its recipe
 * (recipe.h: addresses, subject, text, threading, attachments by
 * digest) and its Message-ID in the outbox row; the mail is composed
 * when it is sent.  Why: composing (and, before, spooling) an
 * acknowledgement and a team notification was a third of the CPU of
 * ingesting a message, and a notification copied the member's
 * attachments into the spool once more.  Composition is a pure function
 * of the recipe and the row: Date: is the row's creation time (UTC),
 * the MIME boundary comes from the Message-ID, the attachments are
 * content-addressed, so every retry sends exactly the same bytes.  Rows
 * queued by older versions name a composed file in the spool
 * (SPOOL_OUT), which is sent as it is.
 * Delivery reads due rows and hands the bytes to smtp.c, over
 * smtp.connections connections at once, each with its own share of the
 * rows (outbox_pool, below).
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
 *
 * Templates come in languages: templates/<lang>/<name>, else the
 * default language's, else templates/<name> (the layout before there
 * were languages), so an install that kept only its old files still
 * works.  A template whose first line is "Subject: ..." gives the
 * subject of its mail too; casegate keeps the case token in it.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "cg.h"
#include "lang.h"
#include "log.h"
#include "outbox.h"
#include "recipe.h"
#include "smtp.h"
#include "thread.h"

#define TEMPLATE_MAX	(64 * 1024)
#define REFERENCES_MAX	20	/* ids kept in References:, the newest */
#define DELIVER_BATCH	100

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeDataWrapper, g_object_unref)

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

/*
 * The file of template name in lang: templates/<lang>/<name>, else the
 * default language's, else templates/<name>.  NULL when there is none
 * (the first path tried is named in the error).
 */
static char *
template_path(const config *cfg, const char *lang, const char *name, GError **error)
{
	const char *dirs[] = { lang, lang_default(cfg), "" };
	g_autofree char *first = NULL;
	struct stat sb;
	size_t i;

	if (cfg->templates == NULL || !template_name_ok(name)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "template %s: no templates "
		    "directory configured or bad template name", name != NULL ? name : "(null)");
		return NULL;
	}
	for (i = 0; i < G_N_ELEMENTS(dirs); i++) {
		g_autofree char *path = NULL;

		if (dirs[i] == NULL || (*dirs[i] != '\0' && !template_name_ok(dirs[i])))
			continue;
		path = *dirs[i] != '\0' ? g_build_filename(cfg->templates, dirs[i], name, NULL) :
		    g_build_filename(cfg->templates, name, NULL);
		if (stat(path, &sb) == 0)
			return g_steal_pointer(&path);
		if (first == NULL)
			first = g_strdup_printf("%s: %s", path, g_strerror(errno));
	}
	g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "template %s (in no language directory "
	    "either)", first != NULL ? first : name);
	return NULL;
}

static char *
template_read(const config *cfg, const char *lang, const char *name, GError **error)
{
	g_autofree char *path = template_path(cfg, lang, name, error);
	GError *e = NULL;
	struct stat sb;
	char *text;
	gsize len;

	if (path == NULL)
		return NULL;
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
outbox_render_lang(const config *cfg, const char *lang, const char *name, GHashTable *vars,
    char **subject_r, GError **error)
{
	g_autofree char *text = template_read(cfg, lang, name, error);
	const char *body;
	GString *out;

	if (subject_r != NULL)
		*subject_r = NULL;
	if (text == NULL)
		return NULL;
	body = text;
	/* "Subject: ..." on the first line is the mail's subject, not its text */
	if (g_ascii_strncasecmp(text, "Subject:", 8) == 0) {
		const char *nl = strchr(text, '\n');
		g_autofree char *line = g_strndup(text + 8, nl != NULL ? (gsize)(nl - text - 8) :
		    strlen(text + 8));

		body = nl != NULL ? nl + 1 : text + strlen(text);
		if (*body == '\n')
			body++;
		else if (body[0] == '\r' && body[1] == '\n')
			body += 2;
		if (subject_r != NULL) {
			GString *subj = g_string_new(NULL);

			expand(subj, g_strstrip(line), vars);
			*subject_r = one_line(subj->str);
			g_string_free(subj, TRUE);
			if (**subject_r == '\0')
				g_clear_pointer(subject_r, g_free);
		}
	}
	out = g_string_sized_new(strlen(body) + 256);
	expand(out, body, vars);
	return g_string_free(out, FALSE);
}

char *
outbox_render(const config *cfg, const char *name, GHashTable *vars, GError **error)
{
	return outbox_render_lang(cfg, NULL, name, vars, NULL, error);
}

gboolean
outbox_template_exists(const config *cfg, const char *lang, const char *name)
{
	g_autofree char *path = template_path(cfg, lang, name, NULL);

	return path != NULL;
}

/*
 * An optional piece of a template (the "we still need" paragraph):
 * rendered from name in lang, or fallback when no language has the file
 * (an install from before it existed).  Other errors are the caller's.
 */
static char *
render_piece(const config *cfg, const char *lang, const char *name, GHashTable *vars,
    const char *fallback, GError **error)
{
	g_autofree char *path = template_path(cfg, lang, name, NULL);

	if (path == NULL)
		return g_strdup(fallback);
	return outbox_render_lang(cfg, lang, name, vars, NULL, error);
}

/* "Type / Sub type / Update type" from the parts that are set. */
static char *
case_type_line(const store_case *c, const char *lang)
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
		g_string_append(out, g_strcmp0(lang, "fr") == 0 ? "pas encore classée" :
		    "not classified yet");
	return g_string_free(out, FALSE);
}

/* {{dropped_block}}{{dropped}}: what a limit left out of the member's mail (mail.c). */
static gboolean
ack_dropped(const config *cfg, const char *lang, GHashTable *v, const mail_msg *orig,
    GError **error)
{
	GString *dropped = g_string_new(NULL);
	char *block = g_strdup("");
	guint i;

	for (i = 0; orig != NULL && orig->dropped != NULL && i < orig->dropped->len; i++) {
		g_autofree char *line = one_line(g_ptr_array_index(orig->dropped, i));

		if (*line != '\0')
			g_string_append_printf(dropped, "  - %s\n", line);
	}
	if (dropped->len > 0) {
		g_free(block);
		block = render_piece(cfg, lang, "ack-dropped.txt", v,
		    "\nYour message was over our limits, so we could not keep all of it.\n"
		    "Left out were:\n\n", error);
	}
	g_hash_table_insert(v, "dropped", g_string_free(dropped, FALSE));
	if (block == NULL)
		return FALSE;
	g_hash_table_insert(v, "dropped_block", block);
	return TRUE;
}

/* The language of mail about c: the caller's choice, the case's, the default. */
static const char *
case_lang(const config *cfg, const char *lang, const store_case *c)
{
	if (lang_normalise(lang) != NULL)
		return lang_normalise(lang);
	if (c != NULL && lang_normalise(c->lang) != NULL)
		return lang_normalise(c->lang);
	return lang_default(cfg);
}

static GHashTable *
ack_vars(const config *cfg, const outbox_ack_info *info, const char *lang, GError **error)
{
	const store_case *c = info->c;
	g_autoptr(GHashTable) v = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	const char *subject = c->subject;
	GString *missing = g_string_new(NULL);
	char *block = NULL;
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
	g_hash_table_insert(v, "member_number", one_line(c->member_number));
	g_hash_table_insert(v, "type", case_type_line(c, lang));
	g_hash_table_insert(v, "team", one_line(c->team != NULL && *c->team != '\0' ?
	    c->team : cfg->name));
	g_hash_table_insert(v, "gateway_name", one_line(cfg->name));
	g_hash_table_insert(v, "gateway_address", one_line(cfg->address));
	block = missing->len == 0 ? g_strdup("") : render_piece(cfg, lang, "ack-missing.txt", v,
	    "\nTo handle your request we still need the following. Please reply\n"
	    "to this message with:\n\n", error);
	g_hash_table_insert(v, "missing", g_string_free(missing, FALSE));
	if (block == NULL)
		return NULL;
	g_hash_table_insert(v, "missing_block", block);
	if (!ack_dropped(cfg, lang, v, info->orig, error))
		return NULL;
	return g_steal_pointer(&v);
}

/* The case's public id, or the prefix with number 0 for mail about no case. */
static char *
mail_public_id(const config *cfg, const store_case *c)
{
	if (c != NULL && c->public_id != NULL)
		return g_strdup(c->public_id);
	return g_strdup_printf("%s%0*d", cfg->case_prefix != NULL ? cfg->case_prefix : "CASE-",
	    cfg->case_digits > 0 ? cfg->case_digits : 6, 0);
}

/* "<a> <b> ... <last>": the newest REFERENCES_MAX safe ids, last not repeated. */
static char *
references_header(GPtrArray *refs, const char *last)
{
	GString *out = g_string_new(NULL);
	guint i, n = refs != NULL ? refs->len : 0, start;

	start = n > REFERENCES_MAX - 1 ? n - (REFERENCES_MAX - 1) : 0;
	for (i = start; i < n; i++) {
		const char *id = g_ptr_array_index(refs, i);

		if (!cg_protocol_safe(id, 250) || (last != NULL && strcmp(id, last) == 0))
			continue;
		g_string_append_printf(out, "%s<%s>", out->len ? " " : "", id);
	}
	if (cg_protocol_safe(last, 250))
		g_string_append_printf(out, "%s<%s>", out->len ? " " : "", last);
	if (out->len == 0) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}

/* A content type we may copy: "type/subtype" of token characters, else octet-stream. */
static char *
safe_content_type(const char *ct)
{
	const char *p, *slash;

	if (ct == NULL || (slash = strchr(ct, '/')) == NULL || slash == ct || slash[1] == '\0' ||
	    strlen(ct) > 100)
		return g_strdup("application/octet-stream");
	for (p = ct; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && strchr("!#$&^_.+-/", *p) == NULL)
			return g_strdup("application/octet-stream");
	if (strchr(slash + 1, '/') != NULL)
		return g_strdup("application/octet-stream");
	return g_ascii_strdown(ct, -1);
}

/*
 * A MIME part for an attachment stored in the spool.  Only the type and
 * the sanitised name are taken over, never the sender's parameters (GMime
 * bug #165).  NULL with an error when the file is gone.
 */
static GMimeObject *
attachment_part(spool *sp, const store_attachment *a, GError **error)
{
	g_autofree char *path = spool_path(sp, SPOOL_ATT, a->digest);
	g_autofree char *ct = safe_content_type(a->content_type);
	g_autofree char *name = spool_safe_name(a->name);
	g_autoptr(GMimeStream) fs = NULL;
	g_autoptr(GMimeDataWrapper) dw = NULL;
	GMimePart *part;
	char *slash;
	int fd;

	if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "attachment \"%s\" (%s) is missing "
		    "from the spool", a->name != NULL ? a->name : "", a->digest != NULL ?
		    a->digest : "no digest");
		return NULL;
	}
	fs = g_mime_stream_fs_new(fd);
	dw = g_mime_data_wrapper_new_with_stream(fs, GMIME_CONTENT_ENCODING_DEFAULT);
	slash = strchr(ct, '/');
	*slash = '\0';
	part = g_mime_part_new_with_type(ct, slash + 1);
	g_mime_part_set_content(part, dw);
	g_mime_part_set_filename(part, name);
	g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
	return (GMimeObject *)part;
}

static void
set_address(GMimeMessage *msg, GMimeAddressType type, const char *name, const char *addr)
{
	g_autofree char *n = one_line(name);

	g_mime_message_add_mailbox(msg, type, *n != '\0' ? n : NULL, addr);
}

/* A boundary nobody can guess before the mail exists, the same at every retry. */
static char *
boundary_for(const char *message_id)
{
	g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256,
	    message_id != NULL ? message_id : "", -1);

	return g_strdup_printf("=-cg-%.32s", sum);
}

static GMimeMessage *
compose(spool *sp, const recipe *r, const char *message_id, gint64 created, GError **error)
{
	g_autoptr(GMimeMessage) msg = g_mime_message_new(TRUE);
	g_autoptr(GMimeTextPart) text = g_mime_text_part_new_with_subtype("plain");
	g_autoptr(GDateTime) date = g_date_time_new_from_unix_utc(created);
	g_autofree char *refs = references_header(r->references, r->in_reply_to);
	guint i;

	set_address(msg, GMIME_ADDRESS_TYPE_FROM, r->from_name, r->from_addr);
	set_address(msg, GMIME_ADDRESS_TYPE_TO, r->to_name, r->to_addr);
	if (r->reply_to != NULL)
		set_address(msg, GMIME_ADDRESS_TYPE_REPLY_TO, r->from_name, r->reply_to);
	g_mime_message_set_subject(msg, r->subject, NULL);
	if (date != NULL)
		g_mime_message_set_date(msg, date);
	g_mime_message_set_message_id(msg, message_id);
	if (cg_protocol_safe(r->in_reply_to, 250)) {
		g_autofree char *irt = g_strdup_printf("<%s>", r->in_reply_to);

		g_mime_object_set_header((GMimeObject *)msg, "In-Reply-To", irt, NULL);
	}
	if (refs != NULL)
		g_mime_object_set_header((GMimeObject *)msg, "References", refs, NULL);
	if (r->auto_submitted != NULL) {
		g_autofree char *as = one_line(r->auto_submitted);

		g_mime_object_set_header((GMimeObject *)msg, "Auto-Submitted", as, NULL);
		g_mime_object_set_header((GMimeObject *)msg, "X-Auto-Response-Suppress", "All",
		    NULL);
	}
	g_mime_text_part_set_text(text, r->text != NULL ? r->text : "");
	if (r->attachments == NULL || r->attachments->len == 0) {
		g_mime_message_set_mime_part(msg, (GMimeObject *)text);
	} else {
		g_autoptr(GMimeMultipart) mixed = g_mime_multipart_new_with_subtype("mixed");
		g_autofree char *boundary = boundary_for(message_id);

		g_mime_multipart_set_boundary(mixed, boundary);
		g_mime_multipart_add(mixed, (GMimeObject *)text);
		for (i = 0; i < r->attachments->len; i++) {
			GMimeObject *part = attachment_part(sp, g_ptr_array_index(r->attachments, i),
			    error);

			if (part == NULL)
				return NULL;
			g_mime_multipart_add(mixed, part);
			g_object_unref(part);
		}
		g_mime_message_set_mime_part(msg, (GMimeObject *)mixed);
	}
	g_mime_object_encode((GMimeObject *)msg, GMIME_ENCODING_CONSTRAINT_7BIT);
	return g_steal_pointer(&msg);
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

/* The outgoing messages row (with its attachments), the outbox row, the event. */
static gint64
mail_record(const config *cfg, store *st, const outbox_mail *m, const char *message_id,
    const char *subject, GBytes *recipe_bytes, GError **error)
{
	g_autofree char *detail = g_strdup_printf("to <%s>", m->to_addr);
	g_autofree char *ev = g_strdup_printf("%s-queued", m->kind);
	gint64 case_id = m->c != NULL ? m->c->id : 0, id, row;
	store_message msg = { 0 };
	store_outbox o = { 0 };
	guint i;

	if (m->c != NULL) {
		msg.case_id = case_id;
		msg.direction = "out";
		msg.role = (char *)(m->role != NULL ? m->role : "gateway");
		msg.message_id = (char *)message_id;
		msg.from_addr = cfg->address;
		msg.to_addrs = (char *)m->to_addr;
		msg.subject = (char *)subject;
		msg.text = (char *)(m->text != NULL ? m->text : "");
		msg.date = cg_now();
		if ((row = store_message_add(st, &msg, error)) == 0)
			return 0;
		for (i = 0; m->attachments != NULL && i < m->attachments->len; i++) {
			store_attachment a = *(store_attachment *)g_ptr_array_index(m->attachments, i);

			a.message_row = row;
			if (store_attachment_add(st, &a, error) == 0)
				return 0;
		}
	}
	o.case_id = case_id;
	o.kind = (char *)m->kind;
	/* NULL: the gateway's address; "" the null sender (RFC 3834). */
	o.env_from = (char *)(m->env_from != NULL ? m->env_from : cfg->address);
	o.rcpt = (char *)m->to_addr;
	o.message_id = (char *)message_id;
	o.recipe = recipe_bytes;
	o.state = OUTBOX_QUEUED;
	o.next_attempt = cg_now();
	if ((id = store_outbox_add(st, &o, error)) == 0)
		return 0;
	if (!store_event_add(st, case_id, ev, "casegated", detail, error))
		return 0;
	return id;
}

static gboolean
mail_valid(const config *cfg, const outbox_mail *m, GError **error)
{
	if (m == NULL || m->kind == NULL || *m->kind == '\0' || !cg_address_valid(m->to_addr)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "%s: no deliverable recipient "
		    "address (\"%s\")", m != NULL && m->kind != NULL ? m->kind : "mail",
		    m != NULL && m->to_addr != NULL ? m->to_addr : "");
		return FALSE;
	}
	if (!cg_address_valid(cfg->address)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: gateway address \"%s\" is not a valid address", m->kind,
		    cfg->address != NULL ? cfg->address : "");
		return FALSE;
	}
	if (m->reply_to != NULL && !cg_address_valid(m->reply_to)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "%s: Reply-To \"%s\" is not a valid "
		    "address", m->kind, m->reply_to);
		return FALSE;
	}
	if (m->env_from != NULL && *m->env_from != '\0' && !cg_address_valid(m->env_from)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "%s: envelope sender \"%s\" is not a "
		    "valid address", m->kind, m->env_from);
		return FALSE;
	}
	return TRUE;
}

/* Every attachment is in the spool: better refused now than failed at delivery. */
static gboolean
attachments_present(spool *sp, const GPtrArray *atts, GError **error)
{
	guint i;

	for (i = 0; atts != NULL && i < atts->len; i++) {
		const store_attachment *a = atts->pdata[i];
		g_autofree char *path = spool_path(sp, SPOOL_ATT, a->digest);

		if (path == NULL || !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
			g_set_error(error, CG_ERROR, CG_ERROR_PERM, "attachment \"%s\" (%s) is "
			    "missing from the spool", a->name != NULL ? a->name : "",
			    a->digest != NULL ? a->digest : "no digest");
			return FALSE;
		}
	}
	return TRUE;
}

/* Does hay contain needle, ASCII letters compared without regard to case? */
static const char *
strcasestr_ascii(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (g_ascii_strncasecmp(hay, needle, n) == 0)
			return hay;
	return NULL;
}

gint64
outbox_queue_mail(const config *cfg, store *st, spool *sp, const outbox_mail *m,
    GError **error)
{
	g_autofree char *public_id = NULL, *message_id = NULL, *raw_subject = NULL;
	g_autofree char *subject = NULL;
	g_autoptr(GBytes) bytes = NULL;
	recipe r = { 0 };

	if (!mail_valid(cfg, m, error))
		return 0;
	public_id = mail_public_id(cfg, m->c);
	message_id = thread_message_id(cfg, public_id);
	if (m->subject != NULL && m->c != NULL && m->c->public_id != NULL &&
	    strcasestr_ascii(m->subject, m->c->public_id) == NULL)
		/* a template's subject without the token: replies must still find the case */
		raw_subject = g_strdup_printf("%s [%s]", m->subject, m->c->public_id);
	else if (m->subject != NULL)
		raw_subject = g_strdup(m->subject);
	else
		raw_subject = thread_subject(cfg, m->c != NULL ? m->c->subject : NULL, public_id,
		    TRUE);
	subject = one_line(raw_subject);
	/* everything taken from cfg now: a reload before delivery changes nothing */
	r.from_name = (char *)(m->from_name != NULL ? m->from_name : cfg->name);
	r.from_addr = cfg->address;
	r.to_name = (char *)m->to_name;
	r.to_addr = (char *)m->to_addr;
	r.subject = subject;
	r.text = (char *)(m->text != NULL ? m->text : "");
	r.in_reply_to = (char *)m->in_reply_to;
	r.reply_to = (char *)m->reply_to;
	r.auto_submitted = (char *)m->auto_submitted;
	r.references = m->references;
	r.attachments = m->attachments;
	if (!attachments_present(sp, m->attachments, error))
		return 0;
	bytes = recipe_encode(&r);
	return mail_record(cfg, st, m, message_id, subject, bytes, error);
}

gint64
outbox_queue_ack(const config *cfg, store *st, spool *sp, const outbox_ack_info *info,
    GError **error)
{
	const store_case *c = info != NULL ? info->c : NULL;
	g_autoptr(GHashTable) vars = NULL;
	g_autofree char *body = NULL, *subject = NULL, *tsubject = NULL;
	const mail_msg *orig;
	outbox_mail m = { 0 };
	gboolean threaded;
	const char *lang;

	if (c == NULL || c->public_id == NULL || !cg_address_valid(c->member)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM,
		    "ack: case %s has no deliverable member address",
		    c != NULL && c->public_id != NULL ? c->public_id : "(none)");
		return 0;
	}
	orig = info->orig;
	lang = case_lang(cfg, NULL, c);
	if ((vars = ack_vars(cfg, info, lang, error)) == NULL ||
	    (body = outbox_render_lang(cfg, lang, "ack.txt", vars, &tsubject, error)) == NULL)
		return 0;
	subject = tsubject != NULL ? g_steal_pointer(&tsubject) : thread_subject(cfg,
	    orig != NULL ? orig->subject : c->subject, c->public_id, TRUE);
	/* Without a usable Message-ID of the member's mail there is nothing to thread under. */
	threaded = orig != NULL && cg_protocol_safe(orig->message_id, 250);
	m.c = c;
	m.kind = "ack";
	m.to_addr = c->member;
	m.to_name = c->member_name;
	m.subject = subject;
	m.text = body;
	m.in_reply_to = threaded ? orig->message_id : NULL;
	m.references = threaded ? orig->references : NULL;
	m.auto_submitted = "auto-replied";
	m.env_from = "";	/* null sender: RFC 3834 */
	m.role = "gateway";
	return outbox_queue_mail(cfg, st, sp, &m, error);
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

/*
 * Sent but not recorded: the relay said 250 but the database refused
 * the update (disk full, read-only, locked past the busy timeout).  The
 * row is still queued, so without this every later round would send it
 * again for as long as the database stays unwritable (0620-signals-
 * deliver.t saw each acknowledgement of a backlog go out 13 times in a
 * minute).  Kept in memory only: a restart forgets it and sends once
 * more, the one duplicate per crash and connection (smtp.connections)
 * that SMTP cannot avoid.
 */
static GMutex unrecorded_lock;
static GHashTable *unrecorded;	/* outbox ids (gint64 *) */

static gboolean
unrecorded_has(gint64 id)
{
	gboolean has;

	g_mutex_lock(&unrecorded_lock);
	has = unrecorded != NULL && g_hash_table_contains(unrecorded, &id);
	g_mutex_unlock(&unrecorded_lock);
	return has;
}

static void
unrecorded_set(gint64 id, gboolean on)
{
	g_mutex_lock(&unrecorded_lock);
	if (unrecorded == NULL)
		unrecorded = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	if (on)
		g_hash_table_add(unrecorded, g_memdup2(&id, sizeof(id)));
	else
		g_hash_table_remove(unrecorded, &id);
	g_mutex_unlock(&unrecorded_lock);
}

/* Record the outcome of one row in one transaction; FALSE if the database refused. */
static gboolean
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
		return TRUE;
fail:
	log_warnx("outbox %" G_GINT64_FORMAT ": cannot record state %s: %s", o->id, state,
	    e->message);
	g_error_free(e);
	return FALSE;
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

/* Compose row o from its recipe. */
static GBytes *
compose_row(store *st, spool *sp, const store_outbox *o, GError **error)
{
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(recipe) r = NULL;
	g_autoptr(GMimeMessage) msg = NULL;
	GError *e = NULL;

	if ((bytes = store_outbox_recipe(st, o->id, &e)) == NULL) {
		if (e != NULL) {
			g_propagate_error(error, e);
			return NULL;
		}
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "outbox %" G_GINT64_FORMAT
		    ": neither a recipe nor a composed message; nothing to send", o->id);
		return NULL;
	}
	if ((r = recipe_decode(bytes, error)) == NULL ||
	    (msg = compose(sp, r, o->message_id, o->created, error)) == NULL)
		return NULL;
	return g_byte_array_free_to_bytes(serialise(msg));
}

GBytes *
outbox_composed(store *st, spool *sp, const store_outbox *o, GError **error)
{
	g_autofree char *path = NULL;
	GError *e = NULL;
	char *data;
	gsize len;

	if (o->spool_digest == NULL)
		return compose_row(st, sp, o, error);
	path = spool_path(sp, SPOOL_OUT, o->spool_digest);
	if (path == NULL || !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "composed message %s/%s is missing "
		    "from the spool; nothing to send", SPOOL_OUT, o->spool_digest);
		return NULL;
	}
	if (!g_file_get_contents(path, &data, &len, &e)) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "composed message %s/%s: %s",
		    SPOOL_OUT, o->spool_digest, e->message);
		g_error_free(e);
		return NULL;
	}
	return g_bytes_new_take(data, len);
}

/*
 * Send one row and record the outcome; smtp_alive() tells whether conn
 * survived.  FALSE: it was sent but the database cannot say so; stop.
 */
static gboolean
deliver_one(const config *cfg, store *st, spool *sp, smtp_conn *conn, const store_outbox *o,
    int *sent)
{
	g_autoptr(GBytes) bytes = NULL;
	GError *e = NULL;

	if ((bytes = outbox_composed(st, sp, o, &e)) == NULL) {
		if (g_error_matches(e, CG_ERROR, CG_ERROR_PERM)) {
			log_warnx("outbox %" G_GINT64_FORMAT ": %s", o->id, e->message);
			record(st, o, OUTBOX_FAILED, 0, e->message);
		} else {
			retry_or_fail(cfg, st, o, e);
		}
		g_error_free(e);
		return TRUE;
	}
	if (smtp_send_data(conn, o->env_from != NULL ? o->env_from : "", o->rcpt,
	    g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), &e)) {
		log_info("outbox %" G_GINT64_FORMAT ": sent %s to <%s>", o->id, o->kind, o->rcpt);
		(*sent)++;
		if (!record(st, o, OUTBOX_SENT, 0, NULL)) {
			unrecorded_set(o->id, TRUE);
			return FALSE;
		}
		return TRUE;
	}
	retry_or_fail(cfg, st, o, e);
	g_error_free(e);
	return TRUE;
}

/* Rows sent before whose update failed: record them now, never resend. */
static gboolean
record_unrecorded(store *st, GPtrArray *rows)
{
	guint i = 0;

	while (i < rows->len) {
		const store_outbox *o = g_ptr_array_index(rows, i);

		if (!unrecorded_has(o->id)) {
			i++;
			continue;
		}
		if (!record(st, o, OUTBOX_SENT, 0, NULL))
			return FALSE;
		log_info("outbox %" G_GINT64_FORMAT ": recorded as sent (it went out before "
		    "the database could be written)", o->id);
		unrecorded_set(o->id, FALSE);
		g_ptr_array_remove_index(rows, i);
	}
	return TRUE;
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

/* Due rows, less those recorded as sent now; NULL if the database fails. */
static GPtrArray *
due_rows(store *st, int share, int shares, GError **error)
{
	g_autoptr(GPtrArray) rows = shares > 1 ?
	    store_outbox_due_share(st, cg_now(), DELIVER_BATCH, share, shares, error) :
	    store_outbox_due(st, cg_now(), DELIVER_BATCH, error);

	if (rows == NULL)
		return NULL;
	if (!record_unrecorded(st, rows)) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "the database cannot be written; "
		    "nothing is sent until it can");
		return NULL;
	}
	return g_steal_pointer(&rows);
}

/*
 * Deliver rows over one SMTP connection; label names the connection in
 * logs ("" with only one).  An unreachable relay is logged here.
 */
static int
deliver_rows(const config *cfg, store *st, spool *sp, GPtrArray *rows, const char *label,
    volatile int *stop, GError **error)
{
	smtp_conn *conn;
	GError *e = NULL;
	gboolean reopened = FALSE;
	int sent = 0;
	guint i;

	if (rows->len == 0)
		return 0;
	if ((conn = smtp_open(&cfg->smtp, cfg->domain, &e)) == NULL) {
		log_warnx("outbox%s: %u due, relay unreachable: %s", label, rows->len, e->message);
		retry_all(cfg, st, rows, e);
		g_propagate_error(error, e);
		return -1;
	}
	for (i = 0; i < rows->len; i++) {
		if (stop != NULL && g_atomic_int_get(stop))
			break;
		if (!smtp_alive(conn)) {
			/* Reopen once per batch; the rest waits for the next round. */
			smtp_close(conn);
			conn = NULL;
			if (reopened)
				break;
			reopened = TRUE;
			if ((conn = smtp_open(&cfg->smtp, cfg->domain, &e)) == NULL) {
				log_warnx("outbox%s: reconnect failed: %s", label, e->message);
				g_clear_error(&e);
				break;
			}
		}
		if (!deliver_one(cfg, st, sp, conn, g_ptr_array_index(rows, i), &sent))
			break;
	}
	smtp_close(conn);
	return sent;
}

int
outbox_deliver_due(const config *cfg, store *st, spool *sp, volatile int *stop,
    GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;

	if ((rows = due_rows(st, 0, 1, error)) == NULL)
		return -1;
	return deliver_rows(cfg, st, sp, rows, "", stop, error);
}

int
outbox_deliver_share(const config *cfg, store *st, spool *sp, int share, int shares,
    volatile int *stop, GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree char *label = NULL;
	GError *e = NULL;
	int sent;

	if (shares <= 1)
		return outbox_deliver_due(cfg, st, sp, stop, error);
	label = g_strdup_printf(" connection %d of %d", share + 1, shares);
	if ((rows = due_rows(st, share, shares, &e)) == NULL) {
		log_warnx("outbox%s: %s", label, e->message);
		g_propagate_error(error, e);
		return -1;
	}
	sent = deliver_rows(cfg, st, sp, rows, label, stop, error);
	if (sent > 0)
		log_info("outbox%s: %d of %u due sent", label, sent, rows->len);
	return sent;
}

/*
 * Parallel delivery.  Why rounds: the outbox thread stays the only one
 * that sleeps, wakes on a kick and answers to the watchdog (one
 * deadline per round, as before); each round it runs one thread per
 * further connection and delivers share 0 itself, then joins them all,
 * so a reload or a stop never finds a delivery thread running, and two
 * rounds never overlap.  The shares are disjoint (case_id % n: one case's
 * mail keeps its order) and fixed for
 * the pool's life, so a row is only ever in one connection's hands; a
 * row "sent but not recorded" (unrecorded) is checked by whichever
 * share holds it, under unrecorded_lock.  A thread per round costs some
 * tens of microseconds against a round of up to DELIVER_BATCH messages
 * per connection.
 */
struct outbox_pool {
	const config	*cfg;
	int		 n;
	store		**st;	/* [0] the caller's, borrowed; [1..n-1] our own */
	spool		**sp;
};

typedef struct {
	outbox_pool	*p;
	int		 share;
	volatile int	*stop;
	int		 sent;
	GError		*error;
	GThread		*thread;	/* NULL: runs in the caller's thread */
} share_run;

outbox_pool *
outbox_pool_new(const config *cfg, store *st, spool *sp, int connections, GError **error)
{
	outbox_pool *p = g_new0(outbox_pool, 1);
	int i;

	p->cfg = cfg;
	p->n = CLAMP(connections, 1, OUTBOX_CONNECTIONS_MAX);
	p->st = g_new0(store *, p->n);
	p->sp = g_new0(spool *, p->n);
	p->st[0] = st;
	p->sp[0] = sp;
	for (i = 1; i < p->n; i++) {
		if ((p->sp[i] = spool_open(cfg->spool, error)) == NULL ||
		    (p->st[i] = store_open(cfg->database, error)) == NULL ||
		    /* as the outbox thread's own: see store_set_synchronous */
		    !store_set_synchronous(p->st[i], FALSE, error)) {
			outbox_pool_free(p);
			return NULL;
		}
	}
	return p;
}

void
outbox_pool_free(outbox_pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 1; i < p->n; i++) {
		g_clear_pointer(&p->st[i], store_close);
		g_clear_pointer(&p->sp[i], spool_close);
	}
	g_free(p->st);
	g_free(p->sp);
	g_free(p);
}

int
outbox_pool_size(const outbox_pool *p)
{
	return p != NULL ? p->n : 0;
}

static gpointer
share_main(gpointer data)
{
	share_run *r = data;

	r->sent = outbox_deliver_share(r->p->cfg, r->p->st[r->share], r->p->sp[r->share],
	    r->share, r->p->n, r->stop, &r->error);
	return NULL;
}

int
outbox_pool_deliver_due(outbox_pool *p, volatile int *stop, GError **error)
{
	g_autofree share_run *runs = g_new0(share_run, p->n);
	GError *first = NULL;
	gboolean failed = FALSE;
	int i, sent = 0;

	for (i = 0; i < p->n; i++) {
		runs[i].p = p;
		runs[i].share = i;
		runs[i].stop = stop;
	}
	for (i = 1; i < p->n; i++) {
		g_autoptr(GError) e = NULL;

		runs[i].thread = g_thread_try_new("outbox", share_main, &runs[i], &e);
		if (runs[i].thread == NULL)
			log_warnx("outbox connection %d of %d: %s; delivered after the others",
			    i + 1, p->n, e->message);
	}
	share_main(&runs[0]);
	for (i = 1; i < p->n; i++) {
		if (runs[i].thread != NULL)
			g_thread_join(runs[i].thread);
		else
			share_main(&runs[i]);
	}
	for (i = 0; i < p->n; i++) {
		if (runs[i].sent >= 0) {
			sent += runs[i].sent;
			continue;
		}
		failed = TRUE;
		if (first == NULL)
			first = g_steal_pointer(&runs[i].error);
		g_clear_error(&runs[i].error);
	}
	/*
	 * Each share logged its own failure.  Some mail went out: report
	 * that (the failed share's rows have their next attempt).  Nothing
	 * did: -1, and the caller naps as after a failure over one
	 * connection, so an unwritable database does not make it spin.
	 */
	if (failed && sent == 0) {
		if (first != NULL)
			g_propagate_error(error, first);
		else
			g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "delivery failed");
		return -1;
	}
	g_clear_error(&first);
	return sent;
}
