/*
 * quarantine.c - hold mail back with its reason; let an admin look,
 * release or delete.
 *
 * Rationale:
 * - Nothing is lost: every message casegate will not turn into a case
 *   keeps its raw copy in the spool (content-addressed, already fsynced
 *   by the fetch) and a row saying why.  Deleting is the admin's call.
 * - Release runs the normal ingestion with ctx->releasing set, so the
 *   message is processed as if new but cannot land in the quarantine
 *   again; the loop table still decides whether it is acknowledged.
 * - What a message sent is shown escaped: a raw message may carry
 *   terminal escape sequences.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "json.h"
#include "quarantine.h"
#include "text.h"

#define SHOW_MAX	(1024 * 1024)	/* bytes of the raw message printed */

gint64
quarantine_add(store *st, const mail_msg *m, const char *raw_digest,
    const char *source_key, gint64 size, const char *reason, GError **error)
{
	g_autofree char *clean = text_header_clean(reason);
	store_quarantine q = { 0 };

	q.raw_digest = (char *)raw_digest;
	q.source_key = (char *)source_key;
	q.reason = clean;
	q.size = size;
	if (m != NULL) {
		q.from_addr = m->from_addr;
		q.subject = m->subject;
		q.message_id = m->message_id;
		if (m->size > 0)
			q.size = m->size;
	}
	return store_quarantine_add(st, &q, error);
}

static char *
fmt_time(gint64 t)
{
	g_autoptr(GDateTime) dt = t > 0 ? g_date_time_new_from_unix_local(t) : NULL;

	return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M") : g_strdup("-");
}

static void
print_json(FILE *out, const store_quarantine *q)
{
	GString *s = g_string_new("{");
	gboolean first = TRUE;

	json_member_int(s, &first, "id", q->id);
	json_member_str(s, &first, "state", q->state);
	json_member_int(s, &first, "created", q->created);
	json_member_str(s, &first, "reason", q->reason);
	json_member_str(s, &first, "from", q->from_addr);
	json_member_str(s, &first, "subject", q->subject);
	json_member_str(s, &first, "message_id", q->message_id);
	json_member_int(s, &first, "size", q->size);
	json_member_str(s, &first, "raw_digest", q->raw_digest);
	g_string_append(s, "}\n");
	fputs(s->str, out);
	g_string_free(s, TRUE);
}

gboolean
quarantine_print_list(store *st, gboolean all, gboolean json, FILE *out, GError **error)
{
	g_autoptr(GPtrArray) rows = store_quarantine_list(st, all ? NULL : QUARANTINE_HELD,
	    error);
	guint i;

	if (rows == NULL)
		return FALSE;
	if (!json)
		fprintf(out, "%-6s %-9s %-16s %-30s %s\n", "ID", "STATE", "HELD", "FROM",
		    "REASON");
	for (i = 0; i < rows->len; i++) {
		const store_quarantine *q = g_ptr_array_index(rows, i);
		g_autofree char *when = NULL, *from = NULL, *reason = NULL;

		if (json) {
			print_json(out, q);
			continue;
		}
		when = fmt_time(q->created);
		from = text_header_clean(q->from_addr ? q->from_addr : "-");
		reason = text_header_clean(q->reason);
		fprintf(out, "%-6" G_GINT64_FORMAT " %-9s %-16s %-30.30s %s\n", q->id, q->state,
		    when, from, reason);
	}
	return TRUE;
}

/* Bytes as text a terminal shows literally. */
static void
print_escaped(FILE *out, const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f))
			fputc(c, out);
		else if (c == '\r' && i + 1 < len && buf[i + 1] == '\n')
			continue;
		else
			fprintf(out, "\\x%02x", c);
	}
}

gboolean
quarantine_print_one(store *st, spool *sp, gint64 id, FILE *out, GError **error)
{
	g_autoptr(store_quarantine) q = store_quarantine_get(st, id, error);
	g_autofree char *path = NULL, *raw = NULL, *when = NULL;
	gsize len = 0;

	if (q == NULL) {
		if (error != NULL && *error == NULL)
			g_set_error(error, CG_ERROR, CG_ERROR_PERM, "no quarantine entry %"
			    G_GINT64_FORMAT, id);
		return FALSE;
	}
	when = fmt_time(q->created);
	fprintf(out, "Entry:      %" G_GINT64_FORMAT "\nState:      %s\nHeld:       %s\n",
	    q->id, q->state, when);
	fprintf(out, "Reason:     ");
	print_escaped(out, q->reason, strlen(q->reason));
	fprintf(out, "\nFrom:       %s\nSubject:    ", q->from_addr ? q->from_addr : "-");
	print_escaped(out, q->subject ? q->subject : "-", strlen(q->subject ? q->subject : "-"));
	fprintf(out, "\nMessage-ID: %s\nSize:       %" G_GINT64_FORMAT "\nRaw copy:   %s\n\n",
	    q->message_id ? q->message_id : "-", q->size, q->raw_digest);
	path = spool_path(sp, SPOOL_RAW, q->raw_digest);
	if (path == NULL || !g_file_get_contents(path, &raw, &len, NULL)) {
		fprintf(out, "(the raw copy is no longer in the spool)\n");
		return TRUE;
	}
	print_escaped(out, raw, MIN(len, SHOW_MAX));
	if (len > SHOW_MAX)
		fprintf(out, "\n(%" G_GSIZE_FORMAT " more bytes not shown)\n", len - SHOW_MAX);
	return TRUE;
}

static store_quarantine *
held(store *st, gint64 id, GError **error)
{
	store_quarantine *q = store_quarantine_get(st, id, error);

	if (q == NULL) {
		if (error != NULL && *error == NULL)
			g_set_error(error, CG_ERROR, CG_ERROR_PERM, "no quarantine entry %"
			    G_GINT64_FORMAT, id);
		return NULL;
	}
	if (strcmp(q->state, QUARANTINE_HELD) != 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "quarantine entry %" G_GINT64_FORMAT
		    " is %s, not held", id, q->state);
		store_quarantine_free(q);
		return NULL;
	}
	return q;
}

gboolean
quarantine_release(ingest_ctx *ctx, gint64 id, ingest_result *r, GError **error)
{
	g_autoptr(store_quarantine) q = held(ctx->st, id, error);

	memset(r, 0, sizeof(*r));
	if (q == NULL)
		return FALSE;
	/* no source key: the source was acked when the entry was held */
	if (!ingest_raw_released(ctx, q->raw_digest, r, error))
		return FALSE;
	if (!store_quarantine_set_state(ctx->st, id, QUARANTINE_RELEASED, error)) {
		ingest_result_clear(r);
		return FALSE;
	}
	return TRUE;
}

gboolean
quarantine_delete(store *st, spool *sp, gint64 id, GError **error)
{
	g_autoptr(store_quarantine) q = held(st, id, error);
	g_autofree char *path = NULL;
	gint64 refs;

	if (q == NULL)
		return FALSE;
	if (!store_quarantine_set_state(st, id, QUARANTINE_DELETED, error))
		return FALSE;
	refs = store_digest_refs(st, q->raw_digest, error);
	if (refs < 0)
		return FALSE;
	path = spool_path(sp, SPOOL_RAW, q->raw_digest);
	if (refs == 0 && path != NULL && unlink(path) == -1 && errno != ENOENT) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "unlink(%s) failed: %s", path,
		    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}
