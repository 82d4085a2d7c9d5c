/*
 * ingest.c - one message from the spool to a committed case.
 *
 *   dedupe (source key, raw digest) -> parse -> dedupe (Message-ID)
 *   -> BEGIN -> thread or classify -> case, message, attachments,
 *   fields, events, acknowledgement in the outbox -> COMMIT
 *
 * Everything that the member will be told about goes into the same
 * transaction as the case itself, so a crash leaves either nothing (the
 * message is fetched again and ingested from scratch) or everything.
 * Re-ingesting a message that was committed is a no-op thanks to the
 * unique keys: at-least-once fetch plus this is exactly-once cases.
 */
#include <string.h>

#include "cg.h"
#include "conversation.h"
#include "dsn.h"
#include "guard.h"
#include "ingest.h"
#include "lang.h"
#include "log.h"
#include "mail.h"
#include "members.h"
#include "outbox.h"
#include "quarantine.h"
#include "text.h"
#include "thread.h"

const char *
ingest_outcome_name(ingest_outcome o)
{
	switch (o) {
	case INGEST_NEW_CASE:
		return "new-case";
	case INGEST_FOLLOWUP:
		return "follow-up";
	case INGEST_DUPLICATE:
		return "duplicate";
	case INGEST_QUARANTINED:
		return "quarantined";
	case INGEST_RECORDED:
		return "recorded";
	default:
		return "ignored";
	}
}

void
ingest_result_clear(ingest_result *r)
{
	g_clear_pointer(&r->public_id, g_free);
	g_clear_pointer(&r->message_id, g_free);
	g_clear_pointer(&r->decision, g_free);
}

static char *
join_addrs(const GPtrArray *a)
{
	GString *s = g_string_new(NULL);
	guint i;

	for (i = 0; a != NULL && i < a->len; i++) {
		if (i > 0)
			g_string_append(s, ", ");
		g_string_append(s, g_ptr_array_index(a, i));
	}
	return g_string_free(s, FALSE);
}

/* The case a reply belongs to, by the Message-IDs it answers; 0 if none. */
static gint64
case_by_references(store *st, const mail_msg *m, GError **error)
{
	gint64 id;
	guint i;

	if (m->in_reply_to != NULL) {
		id = store_case_by_message_id(st, m->in_reply_to, error);
		if (id != 0)
			return id;
	}
	for (i = m->references ? m->references->len : 0; i > 0; i--) {
		id = store_case_by_message_id(st, g_ptr_array_index(m->references, i - 1), error);
		if (id != 0)
			return id;
	}
	return 0;
}

static gint64
add_message(ingest_ctx *ctx, gint64 case_id, const mail_msg *m, const char *role,
    const char *raw_digest, const char *source_key, GError **error)
{
	g_autofree char *to = join_addrs(m->to);
	store_message row = {
		.case_id = case_id,
		.direction = "in",
		.role = (char *)role,
		.message_id = m->message_id,
		.source_key = (char *)source_key,
		.raw_digest = (char *)raw_digest,
		.from_addr = m->from_addr ? m->from_addr : "",
		.to_addrs = to,
		.subject = m->subject,
		.text = m->text,
		.date = m->date,
	};
	gint64 msg_row;
	guint i;

	msg_row = store_message_add(ctx->st, &row, error);
	if (msg_row == 0)
		return 0;
	for (i = 0; i < m->attachments->len; i++) {
		const mail_attachment *a = g_ptr_array_index(m->attachments, i);
		store_attachment at = {
			.message_row = msg_row,
			.digest = a->digest,
			.name = a->name,
			.content_type = a->content_type,
			.size = a->size,
		};

		if (store_attachment_add(ctx->st, &at, error) == 0)
			return 0;
	}
	for (i = 0; m->dropped != NULL && i < m->dropped->len; i++)
		if (!store_event_add(ctx->st, case_id, "dropped", "casegated",
		    g_ptr_array_index(m->dropped, i), error))
			return 0;
	for (i = 0; m->problems != NULL && i < m->problems->len; i++)
		if (!store_event_add(ctx->st, case_id, "parse-note", "casegated",
		    g_ptr_array_index(m->problems, i), error))
			return 0;
	return msg_row;
}

/* ---- mail hygiene (issue 5): quarantine, auto-replies, bounces, limits ---- */

/*
 * How the current call was entered: ingest_raw_oversize and
 * ingest_raw_released set this around their ingest_raw.  Per thread
 * (casegated ingests in one thread per mailbox), and not in ingest_ctx,
 * whose callers initialise it positionally.
 */
typedef struct {
	gint64	 declared_size;	/* RFC822.SIZE of mail fetched header-only; 0: none */
	gboolean releasing;	/* released from the quarantine: no screening */
} hygiene_mode;

static _Thread_local hygiene_mode mode;

/* Hold the message in the quarantine (inside the transaction). */
static gboolean
hold(ingest_ctx *ctx, const mail_msg *m, const char *raw_digest, const char *source_key,
    const char *why, ingest_result *r, GError **error)
{
	gint64 q = quarantine_add(ctx->st, m, raw_digest, source_key, 0, why, error);

	if (q == 0)
		return FALSE;
	r->outcome = INGEST_QUARANTINED;
	r->decision = g_strdup_printf("quarantined as entry %" G_GINT64_FORMAT ": %s", q, why);
	return TRUE;
}

/* May the acknowledgement go out?  *quiet_r gets the reason when not. */
static gboolean
ack_allowed(ingest_ctx *ctx, const mail_msg *m, const store_case *c, char **quiet_r,
    GError **error)
{
	g_autoptr(GError) err = NULL;

	*quiet_r = guard_may_send(ctx->cfg, ctx->st, m, c->member, cg_now(), &err);
	if (err != NULL) {
		g_propagate_error(error, g_steal_pointer(&err));
		return FALSE;
	}
	return TRUE;
}

static gboolean
recorded(ingest_ctx *ctx, gint64 case_id, const char *what, ingest_result *r,
    GError **error)
{
	g_autoptr(store_case) c = store_case_get(ctx->st, case_id, error);

	if (c == NULL)
		return FALSE;
	r->outcome = INGEST_RECORDED;
	r->case_id = case_id;
	r->public_id = g_strdup(c->public_id);
	r->decision = g_strdup(what);
	return TRUE;
}

/*
 * An auto-reply (out of office ...) to our mail: noted on its case,
 * found by the Message-IDs it answers; never answered, and the case is
 * neither touched nor reopened.
 */
static gboolean
record_autoreply(ingest_ctx *ctx, const mail_msg *m, const char *raw_digest,
    const char *source_key, ingest_result *r, GError **error)
{
	g_autofree char *detail = NULL;
	gint64 id = case_by_references(ctx->st, m, error);

	if (id < 0)
		return FALSE;
	if (id == 0)
		return hold(ctx, m, raw_digest, source_key,
		    "auto-reply that answers no mail of ours", r, error);
	detail = g_strdup_printf("auto-reply from %s: %s", m->from_addr ? m->from_addr :
	    "an unknown sender", m->subject);
	if (add_message(ctx, id, m, "auto-reply", raw_digest, source_key, error) == 0 ||
	    !store_event_add(ctx->st, id, "auto-reply", m->from_addr ? m->from_addr :
	    "unknown", detail, error))
		return FALSE;
	return recorded(ctx, id, "auto-reply recorded on its case; not answered", r, error);
}

static gboolean
bounce_event(ingest_ctx *ctx, gint64 id, const dsn_rcpt *x, GError **error)
{
	g_autofree char *detail = NULL;
	gint64 until = 0;

	detail = g_strdup_printf("to <%s>: %s%s%s (%s)", x->addr ? x->addr : "unknown",
	    x->status ? x->status : "no status", x->diagnostic ? ": " : "",
	    x->diagnostic ? x->diagnostic : "", x->hard ? "permanent" : x->failed ?
	    "temporary" : x->action ? x->action : "report");
	if (!store_event_add(ctx->st, id, x->failed ? "delivery-failure" : "delivery-report",
	    "casegated", detail, error))
		return FALSE;
	if (!x->failed || x->addr == NULL)
		return TRUE;
	if (!guard_bounce(ctx->cfg, ctx->st, x->addr, x->hard, x->status, x->diagnostic, id,
	    cg_now(), &until, error))
		return FALSE;
	if (until > 0) {
		g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(until);
		g_autofree char *when = g_date_time_format(dt, "%Y-%m-%d");
		g_autofree char *why = g_strdup_printf("no more mail to <%s> until %s: "
		    "repeated hard bounces", x->addr, when);

		return store_event_add(ctx->st, id, "suppressed", "casegated", why, error);
	}
	return TRUE;
}

/*
 * A delivery status notification: matched to our outgoing mail by the
 * Message-ID of the returned original (or the bounce's own
 * References), recorded on that case as a delivery failure.  A bounce
 * for mail we did not send is held in the quarantine and counts for
 * nothing.
 */
static gboolean
record_bounce(ingest_ctx *ctx, const mail_msg *m, const char *path, const char *raw_digest,
    const char *source_key, ingest_result *r, GError **error)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(dsn_report) rep = dsn_parse_file(path, &err);
	gint64 id = 0;
	guint i;

	if (err != NULL) {
		g_propagate_error(error, g_steal_pointer(&err));
		return FALSE;
	}
	for (i = 0; rep != NULL && i < rep->message_ids->len && id == 0; i++)
		id = store_case_by_message_id(ctx->st, g_ptr_array_index(rep->message_ids, i),
		    error);
	if (id == 0)
		id = case_by_references(ctx->st, m, error);
	if (id < 0)
		return FALSE;
	if (id == 0)
		return hold(ctx, m, raw_digest, source_key,
		    "bounce for mail casegate did not send (no Message-ID of ours in it)", r,
		    error);
	if (add_message(ctx, id, m, "bounce", raw_digest, source_key, error) == 0)
		return FALSE;
	if (rep == NULL || rep->rcpts->len == 0) {
		if (!store_event_add(ctx->st, id, "delivery-failure", "casegated",
		    "a bounce without a readable report", error))
			return FALSE;
	}
	for (i = 0; rep != NULL && i < rep->rcpts->len; i++)
		if (!bounce_event(ctx, id, g_ptr_array_index(rep->rcpts, i), error))
			return FALSE;
	return recorded(ctx, id, "bounce recorded on its case as a delivery failure", r,
	    error);
}

/*
 * Before threading: spam and blocked senders go to the quarantine,
 * bounces and auto-replies are recorded without an answer.  *handled
 * says the message needs nothing more.  A released message is not
 * screened again.
 */
static gboolean
screen(ingest_ctx *ctx, const mail_msg *m, const char *path, const char *raw_digest,
    const char *source_key, ingest_result *r, gboolean *handled, GError **error)
{
	g_autofree char *why = NULL;

	*handled = FALSE;
	if (!mode.releasing && (why = guard_quarantine_reason(ctx->cfg, m)) != NULL) {
		*handled = TRUE;
		return hold(ctx, m, raw_digest, source_key, why, r, error);
	}
	switch (mode.releasing ? GUARD_PERSON : guard_classify(ctx->cfg, m)) {
	case GUARD_BOUNCE:
		*handled = TRUE;
		return record_bounce(ctx, m, path, raw_digest, source_key, r, error);
	case GUARD_AUTOREPLY:
		*handled = TRUE;
		return record_autoreply(ctx, m, raw_digest, source_key, r, error);
	default:
		break;	/* bulk mail is a case; the loop table keeps it unanswered */
	}
	if (m->from_addr == NULL) {
		/* a case needs a member to write to; the store refuses none */
		*handled = TRUE;
		if (!mode.releasing)
			return hold(ctx, m, raw_digest, source_key,
			    "no usable sender address in From", r, error);
		r->outcome = INGEST_IGNORED;
		r->decision = g_strdup("still no usable sender address in From");
	}
	return TRUE;
}

static mail_limits
parse_limits(const config *cfg)
{
	const limits_config *l = &cfg->limits;
	mail_limits lim = { l->max_message_size, l->max_attachment_size, l->max_attachments,
	    l->max_mime_depth, l->max_parts };

	return lim;
}

/* Parse with the configured limits; mail fetched header-only says so. */
static mail_msg *
parse_limited(ingest_ctx *ctx, const char *path, GError **error)
{
	mail_limits lim = parse_limits(ctx->cfg);
	mail_msg *m = mail_parse_file_limits(path, ctx->sp, &lim, error);

	if (m != NULL && mode.declared_size > 0) {
		g_autofree char *have = mail_size_text(mode.declared_size);
		g_autofree char *limit = mail_size_text(ctx->cfg->limits.max_message_size);

		m->size = mode.declared_size;
		mail_dropped(m, "the whole message (%s): larger than the %s limit; only its "
		    "header was read", have, limit);
	}
	return m;
}

static char *
describe_decision(const rules_decision *d)
{
	if (d == NULL)
		return g_strdup("no rules: default routing");
	return g_strdup_printf("%s%s%s%s%s -> %s (rule \"%s\")",
	    d->type ? d->type : "-",
	    d->sub_type ? " / " : "", d->sub_type ? d->sub_type : "",
	    d->update_type ? " / " : "", d->update_type ? d->update_type : "",
	    d->team ? d->team : "no team", d->rule ? d->rule : "default");
}

static gboolean
store_fields(ingest_ctx *ctx, gint64 case_id, const rules_decision *d, GError **error)
{
	guint i;

	for (i = 0; d != NULL && d->fields != NULL && i < d->fields->len; i++) {
		const rules_field *f = g_ptr_array_index(d->fields, i);

		/* "" marks a required field that is still missing */
		if (!store_field_set(ctx->st, case_id, f->name, f->value ? f->value : "",
		    error))
			return FALSE;
	}
	return TRUE;
}

/*
 * A mailbox may route what no rule claims: mail to royalties@ that
 * matches nothing is still a royalties case.
 */
static void
apply_mailbox_route(ingest_ctx *ctx, const rules_decision *d, store_case *nc)
{
	const imap_account *mb = ctx->mailbox;

	if (mb == NULL || (d != NULL && g_strcmp0(d->rule, "default") != 0))
		return;
	if (mb->default_type != NULL) {
		nc->type = mb->default_type;
		nc->sub_type = mb->default_sub_type;
		nc->update_type = NULL;
	}
	if (mb->default_team != NULL)
		nc->team = mb->default_team;
}

/*
 * The member directory (issue 4, point 11): who the sender is.  *member_r
 * is NULL for an address the directory lacks; *held says the message
 * went to the quarantine instead (members.unknown = hold; a release from
 * the quarantine is an admin's decision and is not held again).
 */
static gboolean
sender_member(ingest_ctx *ctx, const mail_msg *m, const char *raw_digest,
    const char *source_key, store_member **member_r, ingest_result *r, gboolean *held,
    GError **error)
{
	g_autoptr(GError) err = NULL;

	*held = FALSE;
	*member_r = m->from_addr != NULL ? store_member_get(ctx->st, NULL, m->from_addr, &err) :
	    NULL;
	if (err != NULL) {
		g_propagate_error(error, g_steal_pointer(&err));
		return FALSE;
	}
	if (*member_r != NULL || ctx->cfg->members_unknown != MEMBERS_UNKNOWN_HOLD ||
	    mode.releasing)
		return TRUE;
	*held = TRUE;
	return hold(ctx, m, raw_digest, source_key,
	    "unknown sender (not in the member directory)", r, error);
}

/* Link case id to its member, record its language and tags. */
static gboolean
case_member_info(ingest_ctx *ctx, gint64 id, const mail_msg *m, const store_member *member,
    GError **error)
{
	const char *why, *lang = lang_for_mail(ctx->cfg, member != NULL ? member->lang : NULL, m,
	    &why);
	gboolean flag = member == NULL && ctx->cfg->members_unknown != MEMBERS_UNKNOWN_ACCEPT;
	g_autofree char *detail = g_strdup_printf("%s (%s)", lang, why);
	g_autofree char *who = member != NULL ? g_strdup_printf("member %s%s%s", member->number,
	    *member->name != '\0' ? ": " : "", member->name) : NULL;

	if (!store_case_set_member_info(ctx->st, id, member != NULL ? member->number : NULL,
	    lang, flag ? MEMBERS_TAG_UNKNOWN : NULL, error) ||
	    !store_event_add(ctx->st, id, "language", "casegated", detail, error))
		return FALSE;
	if (member != NULL)
		return store_event_add(ctx->st, id, "member", "casegated", who, error);
	if (flag)
		return store_event_add(ctx->st, id, MEMBERS_TAG_UNKNOWN, "casegated",
		    "the sender is not in the member directory", error);
	return TRUE;
}

static gboolean
new_case(ingest_ctx *ctx, const mail_msg *m, const char *raw_digest, const char *source_key,
    const char *recipient, const conv_match *cm, ingest_result *r, GError **error)
{
	g_autoptr(store_member) member = NULL;
	gboolean held;
	g_autoptr(GString) conv = g_string_new(NULL);
	gint64 msg_row;
	g_autoptr(rules_decision) d = NULL;
	g_autoptr(GPtrArray) missing = NULL;
	g_autoptr(store_case) c = NULL;
	g_autofree char *what = NULL;
	store_case nc = { 0 };
	g_autofree char *quiet = NULL;
	gint64 id;

	if (ctx->rules != NULL)
		d = rules_classify(ctx->rules, m, recipient, FALSE);
	what = describe_decision(d);
	if (d != NULL && d->ignore && !mode.releasing) {
		g_autofree char *why = g_strdup_printf("ignored by rule \"%s\": %s", d->rule,
		    d->ignore_reason ? d->ignore_reason : "no reason given");

		return hold(ctx, m, raw_digest, source_key, why, r, error);
	}
	if (!sender_member(ctx, m, raw_digest, source_key, &member, r, &held, error))
		return FALSE;
	if (held)
		return TRUE;
	missing = d ? rules_decision_missing(d) : g_ptr_array_new_with_free_func(g_free);

	nc.member = m->from_addr ? m->from_addr : "";
	/* the directory knows the member's name better than a From header does */
	nc.member_name = member != NULL && *member->name != '\0' ? member->name : m->from_name;
	nc.subject = m->subject;
	if (d != NULL) {
		nc.type = d->type;
		nc.sub_type = d->sub_type;
		nc.update_type = d->update_type;
		nc.team = d->team;
		nc.priority = d->priority;
	}
	apply_mailbox_route(ctx, d, &nc);
	nc.needs_info = missing->len > 0;
	id = store_case_create(ctx->st, &nc, ctx->cfg->case_prefix, ctx->cfg->case_digits, error);
	if (id == 0 || !case_member_info(ctx, id, m, member, error))
		return FALSE;
	c = store_case_get(ctx->st, id, error);
	if (c == NULL)
		return FALSE;
	if ((msg_row = add_message(ctx, id, m, "member", raw_digest, source_key, error)) == 0 ||
	    !store_fields(ctx, id, d, error) ||
	    !store_event_add(ctx->st, id, "created", m->from_addr ? m->from_addr : "unknown",
	    what, error))
		return FALSE;

	if (!ack_allowed(ctx, m, c, &quiet, error))
		return FALSE;
	if (quiet != NULL) {
		if (!store_event_add(ctx->st, id, "no-ack", "casegated", quiet, error))
			return FALSE;
		r->decision = g_strdup_printf("%s; no acknowledgement: %s", what, quiet);
	} else {
		outbox_ack_info info = { c, m, missing };

		if (outbox_queue_ack(ctx->cfg, ctx->st, ctx->sp, &info, error) == 0 ||
		    !guard_sent(ctx->st, c->member, "ack", id, cg_now(), error))
			return FALSE;
		r->decision = g_strdup_printf("%s; acknowledgement queued%s", what,
		    missing->len ? " (asks for missing fields)" : "");
	}
	/* conversation.c: visible text, people copied, link, team notification */
	if (cm->refused > 0) {
		g_autofree char *why = g_strdup_printf("named case %" G_GINT64_FORMAT " by %s",
		    cm->refused, cm->via);

		if (!store_event_add(ctx->st, id, "claim-refused", m->from_addr ? m->from_addr :
		    "unknown", why, error))
			return FALSE;
		g_string_append(conv, why);
	}
	if (!conv_new_case(ctx, c, m, d, msg_row, cm->link_to, conv, error))
		return FALSE;
	if (conv->len > 0) {
		char *all = g_strdup_printf("%s; %s", r->decision, conv->str);

		g_free(r->decision);
		r->decision = all;
	}
	r->outcome = INGEST_NEW_CASE;
	r->case_id = id;
	r->public_id = g_strdup(c->public_id);
	return TRUE;
}

/*
 * Fill fields a follow-up supplies; clear needs-info when none is
 * missing any more.  A required field the member has not given yet is
 * stored with an empty value, so the case itself says what it lacks.
 */
static gboolean
fill_fields(ingest_ctx *ctx, const store_case *c, const mail_msg *m, GError **error)
{
	g_autoptr(GPtrArray) have = NULL, names = NULL, found = NULL;
	guint i, still = 0;

	if (!c->needs_info || ctx->rules == NULL)
		return TRUE;
	have = store_case_fields(ctx->st, c->id, error);
	if (have == NULL)
		return FALSE;
	names = g_ptr_array_new();
	for (i = 0; i < have->len; i++) {
		store_field *f = g_ptr_array_index(have, i);

		if (f->value == NULL || *f->value == '\0')
			g_ptr_array_add(names, f->name);
	}
	found = rules_extract_fields(ctx->rules, m, names);
	for (i = 0; i < found->len; i++) {
		const rules_field *f = g_ptr_array_index(found, i);

		if (f->value == NULL) {
			still++;
			continue;
		}
		if (!store_field_set(ctx->st, c->id, f->name, f->value, error) ||
		    !store_event_add(ctx->st, c->id, "field", m->from_addr, f->name, error))
			return FALSE;
	}
	if (still == 0 &&
	    (!store_case_set_needs_info(ctx->st, c->id, FALSE, error) ||
	    !store_event_add(ctx->st, c->id, "info-complete", "casegated",
	    "every required field is filled", error)))
		return FALSE;
	return TRUE;
}

static gboolean
follow_up(ingest_ctx *ctx, const conv_match *cm, const mail_msg *m,
    const char *raw_digest, const char *source_key, ingest_result *r, GError **error)
{
	gint64 case_id = cm->case_id;
	g_autoptr(store_case) c = store_case_get(ctx->st, case_id, error);
	g_autoptr(GString) conv = g_string_new(NULL);
	const char *role, *via = cm->via;
	gint64 msg_row;

	if (c == NULL) {
		if (error && *error == NULL)
			g_set_error(error, CG_ERROR, CG_ERROR_PERM, "case %" G_GINT64_FORMAT
			    " vanished", case_id);
		return FALSE;
	}
	role = staff_role_name(cm->role);
	if ((msg_row = add_message(ctx, case_id, m, role, raw_digest, source_key, error)) == 0 ||
	    !store_event_add(ctx->st, case_id, "message", m->from_addr ? m->from_addr :
	    "unknown", via, error) ||
	    !store_case_touch(ctx->st, case_id, error) ||
	    (strcmp(role, "member") == 0 && !fill_fields(ctx, c, m, error)) ||
	    !conv_follow_up(ctx, c, cm->role, m, msg_row, conv, error))
		return FALSE;
	r->outcome = INGEST_FOLLOWUP;
	r->case_id = case_id;
	r->public_id = g_strdup(c->public_id);
	r->decision = g_strdup_printf("follow-up by %s from %s%s%s", via, role,
	    conv->len ? "; " : "", conv->str);
	return TRUE;
}

static gboolean
duplicate(ingest_ctx *ctx, gint64 case_id, const char *why, ingest_result *r,
    GError **error)
{
	g_autoptr(store_case) c = NULL;

	r->outcome = INGEST_DUPLICATE;
	r->case_id = case_id;
	if (case_id > 0 && (c = store_case_get(ctx->st, case_id, error)) != NULL)
		r->public_id = g_strdup(c->public_id);
	r->decision = g_strdup_printf("already stored (same %s)", why);
	return error == NULL || *error == NULL;
}

/*
 * End one message's work: release its savepoint in a group (the group's
 * owner syncs the spool before its COMMIT), else commit, with the spool
 * files it names made durable first (a no-op unless the spool is in
 * batch mode).
 */
static gboolean
finish(ingest_ctx *ctx, gboolean in_txn, GError **error)
{
	if (in_txn)
		return store_release(ctx->st, error);
	return spool_sync(ctx->sp, error) && store_commit(ctx->st, error);
}

/* Undo one message's work: its savepoint in a group, else the transaction. */
static gboolean
undo(ingest_ctx *ctx, gboolean in_txn, GError **error)
{
	if (!in_txn) {
		store_rollback(ctx->st);
		return TRUE;
	}
	return store_rollback_to(ctx->st, error);
}

/* An unparseable message is held in the quarantine, in its own transaction. */
static gboolean
hold_unparseable(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *why, gboolean in_txn, ingest_result *r, GError **error)
{
	g_autofree char *reason = g_strdup_printf("unparseable: %s", why);

	if (mode.releasing) {
		r->outcome = INGEST_IGNORED;
		r->decision = g_strdup_printf("still %s", reason);
		return TRUE;
	}
	if (!(in_txn ? store_savepoint(ctx->st, error) : store_begin(ctx->st, error)))
		return FALSE;
	if (!hold(ctx, NULL, raw_digest, source_key, reason, r, error) ||
	    !finish(ctx, in_txn, error)) {
		undo(ctx, in_txn, NULL);
		ingest_result_clear(r);
		return FALSE;
	}
	return TRUE;
}

gboolean
ingest_raw_oversize(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, gint64 size, ingest_result *r, GError **error)
{
	hygiene_mode saved = mode;
	gboolean ok;

	mode.declared_size = size;
	ok = ingest_raw(ctx, raw_digest, source_key, recipient, r, error);
	mode = saved;
	return ok;
}

gboolean
ingest_raw_oversize_in_txn(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, gint64 size, ingest_result *r, GError **error)
{
	hygiene_mode saved = mode;
	gboolean ok;

	mode.declared_size = size;
	ok = ingest_raw_in_txn(ctx, raw_digest, source_key, recipient, r, error);
	mode = saved;
	return ok;
}

gboolean
ingest_raw_released(ingest_ctx *ctx, const char *raw_digest, ingest_result *r,
    GError **error)
{
	hygiene_mode saved = mode;
	gboolean ok;

	mode.releasing = TRUE;
	ok = ingest_raw(ctx, raw_digest, NULL, NULL, r, error);
	mode = saved;
	return ok;
}

/*
 * in_txn: the caller holds a transaction (group commit); this message
 * gets a savepoint, released on success, rolled back otherwise.
 */
static gboolean
ingest_one(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, gboolean in_txn, mail_msg *parsed, ingest_result *r,
    GError **error)
{
	g_autofree char *path = spool_path(ctx->sp, SPOOL_RAW, raw_digest);
	g_autoptr(GError) perr = NULL;
	g_autoptr(mail_msg) m = parsed;
	conv_match cm;
	gint64 case_id = 0, seen;
	gboolean ok, handled = FALSE;

	memset(r, 0, sizeof(*r));
	if (path == NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "bad spool digest");
		return FALSE;
	}
	seen = store_message_seen(ctx->st, source_key, raw_digest, NULL, &case_id, error);
	if (seen < 0)
		return FALSE;
	if (seen > 0)
		return duplicate(ctx, case_id, "source or content", r, error);

	if (!mode.releasing && (seen = store_quarantine_seen(ctx->st, source_key, raw_digest,
	    error)) != 0)
		return seen > 0 ? duplicate(ctx, 0, "quarantine entry", r, error) : FALSE;
	if (m == NULL)
		m = parse_limited(ctx, path, &perr);
	if (m == NULL) {
		if (perr->code == CG_ERROR_TEMP) {
			g_propagate_error(error, g_steal_pointer(&perr));
			return FALSE;
		}
		return hold_unparseable(ctx, raw_digest, source_key, perr->message, in_txn, r,
		    error);
	}
	r->message_id = g_strdup(m->message_id);
	if (m->message_id != NULL) {
		seen = store_message_seen(ctx->st, NULL, NULL, m->message_id, &case_id, error);
		if (seen < 0)
			return FALSE;
		if (seen > 0)
			return duplicate(ctx, case_id, "Message-ID", r, error);
	}

	if (!(in_txn ? store_savepoint(ctx->st, error) : store_begin(ctx->st, error)))
		return FALSE;
	ok = screen(ctx, m, path, raw_digest, source_key, r, &handled, error);
	if (ok && !handled)
		ok = conv_status(ctx, m, raw_digest, source_key, r, &handled, error);
	if (ok && !handled) {
		if (!conv_find_case(ctx, m, recipient, &cm, error))
			ok = FALSE;
		else if (cm.case_id > 0)
			ok = follow_up(ctx, &cm, m, raw_digest, source_key, r, error);
		else
			ok = new_case(ctx, m, raw_digest, source_key, recipient, &cm, r, error);
	}
	if (ok && r->outcome == INGEST_IGNORED) {
		if (undo(ctx, in_txn, error))
			return TRUE;
		ingest_result_clear(r);
		return FALSE;
	}
	if (!ok || !finish(ctx, in_txn, error)) {
		undo(ctx, in_txn, NULL);
		ingest_result_clear(r);
		return FALSE;
	}
	return TRUE;
}

gboolean
ingest_raw(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, ingest_result *r, GError **error)
{
	return ingest_one(ctx, raw_digest, source_key, recipient, FALSE, NULL, r, error);
}

gboolean
ingest_raw_in_txn(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, ingest_result *r, GError **error)
{
	return ingest_one(ctx, raw_digest, source_key, recipient, TRUE, NULL, r, error);
}

void
ingest_prepare(mail_msg *m)
{
	if (m->visible == NULL)
		m->visible = text_reply_visible(m->text);
	if (!m->lang_guessed) {
		m->lang_guess = lang_detect(m->subject, m->text, NULL);
		m->lang_guessed = TRUE;
	}
}

mail_msg *
ingest_parse(const config *cfg, spool *sp, const char *raw_digest, GError **error)
{
	mail_limits lim = parse_limits(cfg);
	g_autofree char *path = spool_path(sp, SPOOL_RAW, raw_digest);
	mail_msg *m;

	if (path == NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "bad spool digest");
		return NULL;
	}
	if ((m = mail_parse_file_limits(path, sp, &lim, error)) != NULL)
		ingest_prepare(m);
	return m;
}

gboolean
ingest_parsed_in_txn(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, mail_msg *parsed, ingest_result *r, GError **error)
{
	return ingest_one(ctx, raw_digest, source_key, recipient, TRUE, parsed, r, error);
}
