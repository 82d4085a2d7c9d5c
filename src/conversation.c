/*
 * conversation.c - a case is a conversation between the member, the
 * team and casegate; this file decides where each mail belongs and who
 * hears about it.
 *
 * Rationale:
 * - No hijacking.  A subject token, a plus-address or a Message-ID that
 *   somebody may have seen (the member's own) is a claim anyone can
 *   copy, so it admits only the member, people copied on the case and
 *   trusted staff.  A Message-ID that casegate signed for the case
 *   (thread.c) cannot be made up, so a reply to one is let in whoever
 *   sends it.  A refused claim opens a new case and says so in its
 *   record, never a silent drop.
 * - Staff answer from their own mail client: the team notification has
 *   Reply-To the gateway and carries the case token and a signed
 *   Message-ID, so the reply comes back here, is checked (staff.c),
 *   its commands run (command.c) and its new text, without quotes,
 *   goes to the member from the gateway's address, threaded under the
 *   member's last message.
 * - Machine mail (auto-replies, bounces) on a case is recorded but
 *   never relayed, never reopens a case, never notifies anyone: an
 *   out-of-office reply to a notification must not reach the member.
 * - Every mail comes from a template in a language: mail to a member in
 *   theirs (members_case_lang: the directory, else the language of
 *   their first mail), mail to staff in the gateway's default.
 */
#include <stdarg.h>
#include <string.h>

#include "cg.h"
#include "command.h"
#include "conversation.h"
#include "guard.h"
#include "lang.h"
#include "log.h"
#include "members.h"
#include "outbox.h"
#include "text.h"
#include "thread.h"

#define STATUS_MAX_CASES	50
#define DAY			(24 * 60 * 60)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_message, store_message_free)

/* ---- finding the case ---- */

typedef enum { CLAIM_NONE, CLAIM_SIGNED, CLAIM_ID, CLAIM_TOKEN, CLAIM_PLUS } claim_kind;

/* The case named by a reference, signed ones first; 0 none, -1 error. */
static gint64
case_by_reference(ingest_ctx *ctx, const char *id, claim_kind *kind, GError **error)
{
	gint64 n;

	if (id == NULL)
		return 0;
	if ((n = thread_message_id_case(ctx->cfg, id)) > 0) {
		*kind = CLAIM_SIGNED;
		return n;
	}
	n = store_case_by_message_id(ctx->st, id, error);
	if (n > 0)
		*kind = CLAIM_ID;
	return n;
}

static gint64
case_by_references(ingest_ctx *ctx, const mail_msg *m, claim_kind *kind, GError **error)
{
	gint64 n;
	guint i;

	if ((n = case_by_reference(ctx, m->in_reply_to, kind, error)) != 0)
		return n;
	for (i = m->references != NULL ? m->references->len : 0; i > 0; i--)
		if ((n = case_by_reference(ctx, g_ptr_array_index(m->references, i - 1), kind,
		    error)) != 0)
			return n;
	return 0;
}

/* "members+CASE-000123@example.org" for one of our addresses: the case number, or 0. */
static gint64
plus_token(const config *cfg, const char *addr, const char *gateway)
{
	const char *plus, *at, *gat;
	g_autofree char *token = NULL;

	if (addr == NULL || gateway == NULL || (plus = strchr(addr, '+')) == NULL ||
	    (at = strrchr(addr, '@')) == NULL || plus > at || (gat = strrchr(gateway, '@')) == NULL)
		return 0;
	/* the part before '+' and the domain must be the gateway's */
	if ((size_t)(plus - addr) != (size_t)(gat - gateway) ||
	    g_ascii_strncasecmp(addr, gateway, plus - addr) != 0 ||
	    g_ascii_strcasecmp(at, gat) != 0)
		return 0;
	token = g_strndup(plus + 1, at - plus - 1);
	return config_case_number(cfg, token);
}

static gint64
plus_in(const config *cfg, GPtrArray *addrs, const char *gateway)
{
	gint64 n;
	guint i;

	for (i = 0; addrs != NULL && i < addrs->len; i++)
		if ((n = plus_token(cfg, g_ptr_array_index(addrs, i), gateway)) > 0)
			return n;
	return 0;
}

static gint64
case_by_plus(ingest_ctx *ctx, const mail_msg *m, const char *recipient)
{
	const char *gateway = ctx->mailbox != NULL && ctx->mailbox->address != NULL ?
	    ctx->mailbox->address : ctx->cfg->address;
	static const char *const hdrs[] = { "Delivered-To", "X-Original-To", NULL };
	const char *const *h;
	gint64 n;

	if (!ctx->cfg->plus_addressing)
		return 0;
	if ((n = plus_token(ctx->cfg, recipient, gateway)) > 0 ||
	    (n = plus_in(ctx->cfg, m->to, gateway)) > 0 || (n = plus_in(ctx->cfg, m->cc, gateway)) > 0)
		return n;
	for (h = hdrs; *h != NULL; h++) {
		const char *v = mail_header_get(m, *h);
		g_autofree char *addr = NULL;

		if (v == NULL)
			continue;
		addr = g_strstrip(g_strdup(v));
		if (*addr == '<' && addr[strlen(addr) - 1] == '>') {
			addr[strlen(addr) - 1] = '\0';
			memmove(addr, addr + 1, strlen(addr));
		}
		if ((n = plus_token(ctx->cfg, addr, gateway)) > 0)
			return n;
	}
	return 0;
}

staff_role
conv_role(ingest_ctx *ctx, const store_case *c, const mail_msg *m, GError **error)
{
	g_autoptr(GPtrArray) parts = store_case_participants(ctx->st, c->id, error);

	return staff_role_of(ctx->cfg, c, parts, m, NULL);
}

/* When c was resolved: its last "resolved" event, else its last update. */
static gint64
resolved_at(ingest_ctx *ctx, const store_case *c, GError **error)
{
	gint64 at = store_case_last_event(ctx->st, c->id, "resolved", error);

	return at > 0 ? at : c->updated;
}

gboolean
conv_find_case(ingest_ctx *ctx, const mail_msg *m, const char *recipient, conv_match *match,
    GError **error)
{
	g_autoptr(store_case) c = NULL;
	claim_kind kind = CLAIM_NONE;
	gint64 n;

	memset(match, 0, sizeof(*match));
	n = case_by_references(ctx, m, &kind, error);
	if (n < 0)
		return FALSE;
	if (n == 0 && (n = thread_subject_token(ctx->cfg, m->subject)) > 0)
		kind = CLAIM_TOKEN;
	if (n == 0 && (n = case_by_plus(ctx, m, recipient)) > 0)
		kind = CLAIM_PLUS;
	if (n == 0)
		return TRUE;
	if ((c = store_case_get(ctx->st, n, error)) == NULL)
		return error == NULL || *error == NULL;	/* a token for no case: a new one */
	match->role = conv_role(ctx, c, m, error);
	if (error != NULL && *error != NULL)
		return FALSE;
	if (match->role == ROLE_UNKNOWN && kind != CLAIM_SIGNED) {
		match->refused = n;
		match->via = kind == CLAIM_TOKEN ? "a copied subject token from a sender who is not "
		    "on the case" : kind == CLAIM_PLUS ? "a plus-address from a sender who is not on "
		    "the case" : "a reference from a sender who is not on the case";
		return TRUE;
	}
	match->via = kind == CLAIM_SIGNED ? "reply to a casegate Message-ID" :
	    kind == CLAIM_ID ? "reply to a message of the case" :
	    kind == CLAIM_TOKEN ? "subject token" : "plus-address";
	if (strcmp(c->status, CASE_RESOLVED) == 0 &&
	    (match->role == ROLE_MEMBER || match->role == ROLE_PARTICIPANT)) {
		gint64 at = resolved_at(ctx, c, error);

		if (at < 0)
			return FALSE;
		if (cg_now() - at > (gint64)ctx->cfg->reopen_days * DAY) {
			match->link_to = n;
			match->via = "resolved longer ago than the reopen window: a new linked case";
			return TRUE;
		}
	}
	match->case_id = n;
	return TRUE;
}

/* ---- common pieces ---- */

static const char *
gateway_address(ingest_ctx *ctx)
{
	return ctx->mailbox != NULL && ctx->mailbox->address != NULL ? ctx->mailbox->address :
	    ctx->cfg->address;
}

static char *
type_line(const store_case *c, const char *lang)
{
	GString *s = g_string_new(NULL);
	const char *parts[] = { c->type, c->sub_type, c->update_type };
	guint i;

	for (i = 0; i < G_N_ELEMENTS(parts); i++)
		if (parts[i] != NULL && *parts[i] != '\0')
			g_string_append_printf(s, "%s%s", s->len ? " / " : "", parts[i]);
	if (s->len == 0)
		g_string_append(s, g_strcmp0(lang, "fr") == 0 ? "pas encore classée" :
		    "not classified");
	return g_string_free(s, FALSE);
}

/* {{flags}}: a line naming the case's tags, for staff; "" when none. */
static char *
flags_line(const store_case *c, const char *lang)
{
	gboolean fr = g_strcmp0(lang, "fr") == 0;

	if (c->tags == NULL || *c->tags == '\0')
		return g_strdup("");
	if (strstr(c->tags, MEMBERS_TAG_UNKNOWN) != NULL)
		return g_strdup_printf(fr ? "  Marqueurs :    %s (l'expéditeur n'est pas dans "
		    "l'annuaire des membres)\n" : "  Flags:     %s (the sender is not in the "
		    "member directory)\n", c->tags);
	return g_strdup_printf(fr ? "  Marqueurs :    %s\n" : "  Flags:     %s\n", c->tags);
}

/* The {{placeholders}} of mail about c, written in lang. */
static GHashTable *
case_vars_lang(ingest_ctx *ctx, const store_case *c, const char *lang)
{
	GHashTable *v = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	g_autofree char *base = NULL;

	g_hash_table_insert(v, "gateway_name", g_strdup(ctx->cfg->name));
	g_hash_table_insert(v, "gateway_address", g_strdup(gateway_address(ctx)));
	if (c == NULL)
		return v;
	g_hash_table_insert(v, "case_id", g_strdup(c->public_id));
	g_hash_table_insert(v, "subject", g_strdup(c->subject));
	g_hash_table_insert(v, "member", g_strdup(c->member));
	g_hash_table_insert(v, "member_name", g_strdup(c->member_name != NULL &&
	    *c->member_name != '\0' ? c->member_name : c->member));
	g_hash_table_insert(v, "type", type_line(c, lang));
	g_hash_table_insert(v, "team", g_strdup(c->team != NULL ? c->team : "none"));
	g_hash_table_insert(v, "priority", g_strdup(c->priority != NULL ? c->priority : "normal"));
	g_hash_table_insert(v, "status", g_strdup(lang_status_label(lang, c->status)));
	g_hash_table_insert(v, "member_number", g_strdup(c->member_number != NULL ?
	    c->member_number : "-"));
	g_hash_table_insert(v, "flags", flags_line(c, lang));
	base = thread_subject_base(ctx->cfg, c->subject);
	g_hash_table_insert(v, "subject_base", g_strdup(*base != '\0' ? base :
	    g_strcmp0(lang, "fr") == 0 ? "(sans objet)" : "(no subject)"));
	return v;
}

/* Mail to staff is in the gateway's default language. */
static GHashTable *
case_vars(ingest_ctx *ctx, const store_case *c)
{
	return case_vars_lang(ctx, c, lang_default(ctx->cfg));
}

/* The visible text of m, stored on its row. */
static char *
record_visible(ingest_ctx *ctx, const mail_msg *m, gint64 msg_row, GError **error)
{
	g_autofree char *visible = m->visible != NULL ? g_strdup(m->visible) :
	    text_reply_visible(m->text);

	if (msg_row > 0 && !store_message_set_visible(ctx->st, msg_row, visible, error))
		return NULL;
	return g_steal_pointer(&visible);
}

/* The team address for case c: the decision's, else the rules' for c->team. */
static const char *
team_address(ingest_ctx *ctx, const store_case *c, const rules_decision *d)
{
	if (d != NULL && d->team_address != NULL)
		return d->team_address;
	if (ctx->rules != NULL && c->team != NULL)
		return rules_team_address(ctx->rules, c->team);
	return NULL;
}

static void
add_decision(GString *decision, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
add_decision(GString *decision, const char *fmt, ...)
{
	va_list ap;

	if (decision == NULL)
		return;
	if (decision->len > 0)
		g_string_append(decision, "; ");
	va_start(ap, fmt);
	g_string_append_vprintf(decision, fmt, ap);
	va_end(ap);
}

/* Mail to the team about c: kind "notify" with template tpl. */
static gboolean
notify_team(ingest_ctx *ctx, const store_case *c, const rules_decision *d, const char *tpl,
    GHashTable *vars, gint64 msg_row, GString *decision, GError **error)
{
	const char *to = team_address(ctx, c, d);
	g_autoptr(GPtrArray) atts = NULL;
	g_autofree char *body = NULL, *subject = NULL, *base = NULL;
	outbox_mail om = { 0 };

	if (to == NULL || !cg_address_valid(to)) {
		add_decision(decision, "no team address to notify");
		return store_event_add(ctx->st, c->id, "no-notify", "casegated",
		    "the case's team has no notification address", error);
	}
	if ((body = outbox_render_lang(ctx->cfg, lang_default(ctx->cfg), tpl, vars, &subject,
	    error)) == NULL)
		return FALSE;
	if (msg_row > 0 && (atts = store_message_attachments(ctx->st, msg_row, error)) == NULL)
		return FALSE;
	if (subject == NULL) {
		/* a template without a "Subject:" line (an older install) */
		base = thread_subject_base(ctx->cfg, c->subject);
		subject = g_strdup_printf("%s %s [%s]", strcmp(tpl, "notify.txt") == 0 ?
		    "New case:" : "Update:", *base != '\0' ? base : "(no subject)", c->public_id);
	}
	om.c = c;
	om.kind = "notify";
	om.to_addr = to;
	om.subject = subject;
	om.text = body;
	om.attachments = atts;
	om.reply_to = gateway_address(ctx);
	om.auto_submitted = "auto-generated";
	om.role = "gateway";
	if (outbox_queue_mail(ctx->cfg, ctx->st, ctx->sp, &om, error) == 0)
		return FALSE;
	add_decision(decision, "team notified <%s>", to);
	return TRUE;
}

/* "  Label: value" per field of the decision, "(missing)" for empty ones. */
static char *
fields_block(const rules_decision *d)
{
	GString *s = g_string_new(NULL);
	guint i;

	for (i = 0; d != NULL && d->fields != NULL && i < d->fields->len; i++) {
		const rules_field *f = g_ptr_array_index(d->fields, i);

		g_string_append_printf(s, "  %s: %s\n", f->label != NULL ? f->label : f->name,
		    f->value != NULL ? f->value : "(missing)");
	}
	if (s->len == 0)
		g_string_append(s, "  (none required)\n");
	return g_string_free(s, FALSE);
}

static gboolean
is_gateway(ingest_ctx *ctx, const char *addr)
{
	return g_ascii_strcasecmp(addr, ctx->cfg->address) == 0 ||
	    g_ascii_strcasecmp(addr, gateway_address(ctx)) == 0 ||
	    plus_token(ctx->cfg, addr, gateway_address(ctx)) > 0;
}

/* People the member copied: participants of the case (not us, not staff, not the member). */
static gboolean
add_copied(ingest_ctx *ctx, const store_case *c, const mail_msg *m, GError **error)
{
	GPtrArray *lists[] = { m->to, m->cc };
	guint l, i;

	for (l = 0; l < G_N_ELEMENTS(lists); l++)
		for (i = 0; lists[l] != NULL && i < lists[l]->len; i++) {
			const char *a = g_ptr_array_index(lists[l], i);

			if (is_gateway(ctx, a) || g_ascii_strcasecmp(a, c->member) == 0 ||
			    staff_address_listed(&ctx->cfg->staff, a))
				continue;
			if (!store_participant_add(ctx->st, c->id, a, "cc", error))
				return FALSE;
		}
	return TRUE;
}

gboolean
conv_new_case(ingest_ctx *ctx, const store_case *c, const mail_msg *m,
    const rules_decision *d, gint64 msg_row, gint64 link_to, GString *decision,
    GError **error)
{
	g_autofree char *visible = record_visible(ctx, m, msg_row, error);
	g_autoptr(GHashTable) vars = NULL;
	g_autofree char *linked = NULL;

	if (visible == NULL || !add_copied(ctx, c, m, error))
		return FALSE;
	if (link_to > 0) {
		g_autoptr(store_case) old = store_case_get(ctx->st, link_to, error);
		g_autofree char *d1 = NULL, *d2 = NULL;

		if (old == NULL)
			return error == NULL || *error == NULL;
		d1 = g_strdup_printf("continues %s (resolved, reopen window passed)", old->public_id);
		d2 = g_strdup_printf("continued by %s", c->public_id);
		if (!store_case_set_linked(ctx->st, c->id, link_to, error) ||
		    !store_event_add(ctx->st, c->id, "linked", "casegated", d1, error) ||
		    !store_event_add(ctx->st, link_to, "linked", "casegated", d2, error))
			return FALSE;
		linked = g_strdup_printf("This case continues %s, which was resolved.\n\n",
		    old->public_id);
		add_decision(decision, "linked to %s", old->public_id);
	}
	vars = case_vars(ctx, c);
	g_hash_table_insert(vars, "fields", fields_block(d));
	g_hash_table_insert(vars, "text", g_strdup(m->text));
	g_hash_table_insert(vars, "linked", linked != NULL ? g_steal_pointer(&linked) :
	    g_strdup(""));
	g_hash_table_insert(vars, "attachments", g_strdup_printf("%u",
	    m->attachments != NULL ? m->attachments->len : 0));
	return notify_team(ctx, c, d, "notify.txt", vars, msg_row, decision, error);
}

/* ---- status requests ---- */

gboolean
conv_is_status_subject(const config *cfg, const char *subject)
{
	g_autofree char *base = NULL, *folded = NULL;
	size_t n;
	guint i;

	if (subject == NULL || cfg->status_words == NULL ||
	    thread_subject_token(cfg, subject) != 0)
		return FALSE;
	base = thread_subject_base(cfg, subject);
	/* "Status?", "statut :" */
	for (n = strlen(base); n > 0 && strchr(" ?!.:", base[n - 1]) != NULL; n--)
		base[n - 1] = '\0';
	folded = g_utf8_casefold(g_strstrip(base), -1);
	for (i = 0; i < cfg->status_words->len; i++)
		if (g_utf8_collate(folded, g_ptr_array_index(cfg->status_words, i)) == 0 ||
		    strcmp(folded, g_ptr_array_index(cfg->status_words, i)) == 0)
			return TRUE;
	return FALSE;
}

static char *
day_of(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d") : g_strdup("?");
}

/* One line per case: ID, status, last update, subject (type); the template explains. */
static char *
status_list(const config *cfg, GPtrArray *cases, const char *lang)
{
	GString *s = g_string_new(NULL);
	guint i;

	for (i = 0; i < cases->len; i++) {
		const store_case *c = g_ptr_array_index(cases, i);
		g_autofree char *day = day_of(c->updated), *type = type_line(c, lang);
		g_autofree char *subj = thread_subject_base(cfg, c->subject);
		const char *label = lang_status_label(lang, c->status);
		int pad = 8 - (int)g_utf8_strlen(label, -1);

		g_string_append_printf(s, "  %s  %s%*s  %s  %s (%s)\n", c->public_id, label,
		    pad > 0 ? pad : 0, "", day, subj, type);
	}
	return g_string_free(s, FALSE);
}

/* The language to answer the sender of m in: the directory's, else their mail's. */
static const char *
sender_lang(ingest_ctx *ctx, const mail_msg *m)
{
	g_autoptr(store_member) mb = m->from_addr != NULL ?
	    store_member_get(ctx->st, NULL, m->from_addr, NULL) : NULL;

	return lang_for_mail(ctx->cfg, mb != NULL ? mb->lang : NULL, m, NULL);
}

static gboolean
record_status_message(ingest_ctx *ctx, const mail_msg *m, const char *raw_digest,
    const char *source_key, GError **error)
{
	store_message row = {
		.direction = "in",
		.role = "member",
		.message_id = m->message_id,
		.source_key = (char *)source_key,
		.raw_digest = (char *)raw_digest,
		.from_addr = m->from_addr ? m->from_addr : "",
		.to_addrs = (char *)gateway_address(ctx),
		.subject = m->subject,
		.text = m->text,
		.date = m->date,
	};

	return store_message_add(ctx->st, &row, error) > 0;
}

gboolean
conv_status(ingest_ctx *ctx, const mail_msg *m, const char *raw_digest,
    const char *source_key, ingest_result *r, gboolean *handled, GError **error)
{
	store_filter f = { 0 };
	g_autoptr(GPtrArray) cases = NULL;
	g_autoptr(GHashTable) vars = NULL;
	g_autofree char *body = NULL, *subject = NULL;
	outbox_mail om = { 0 };
	const char *lang;

	*handled = FALSE;
	if (!conv_is_status_subject(ctx->cfg, m->subject) || m->from_addr == NULL)
		return TRUE;
	*handled = TRUE;
	r->outcome = INGEST_RECORDED;
	if (!record_status_message(ctx, m, raw_digest, source_key, error))
		return FALSE;
	/* a status list is an automatic answer: the loop table, bounce
	 * suppression and the daily cap apply as to acknowledgements */
	{
		g_autoptr(GError) gerr = NULL;
		g_autofree char *why = guard_may_send(ctx->cfg, ctx->st, m, m->from_addr,
		    cg_now(), &gerr);

		if (gerr != NULL) {
			g_propagate_error(error, g_steal_pointer(&gerr));
			return FALSE;
		}
		if (why != NULL) {
			r->decision = g_strdup_printf("status request, no answer: %s", why);
			return store_event_add(ctx->st, 0, "no-status", m->from_addr, why, error);
		}
	}
	f.member = m->from_addr;
	f.limit = STATUS_MAX_CASES;
	if ((cases = store_case_list(ctx->st, &f, error)) == NULL)
		return FALSE;
	lang = sender_lang(ctx, m);
	vars = case_vars(ctx, NULL);
	g_hash_table_insert(vars, "member_name", g_strdup(m->from_name != NULL &&
	    *m->from_name != '\0' ? m->from_name : m->from_addr));
	g_hash_table_insert(vars, "count", g_strdup_printf("%u", cases->len));
	g_hash_table_insert(vars, "cases", cases->len > 0 ? status_list(ctx->cfg, cases, lang) :
	    g_strdup(strcmp(lang, "fr") == 0 ? "  (aucune demande depuis cette adresse)\n" :
	    "  (no cases from this address)\n"));
	if ((body = outbox_render_lang(ctx->cfg, lang, "status.txt", vars, &subject,
	    error)) == NULL)
		return FALSE;
	if (subject == NULL)
		subject = g_strdup_printf("Re: %s", m->subject);
	om.kind = "status";
	om.to_addr = m->from_addr;	/* never Reply-To: only the address itself learns its cases */
	om.to_name = m->from_name;
	om.subject = subject;
	om.text = body;
	om.in_reply_to = m->message_id;
	om.references = m->references;
	om.auto_submitted = "auto-replied";
	om.env_from = "";
	if (outbox_queue_mail(ctx->cfg, ctx->st, ctx->sp, &om, error) == 0 ||
	    !guard_sent(ctx->st, m->from_addr, "status", 0, cg_now(), error))
		return FALSE;
	r->decision = g_strdup_printf("status request: list of %u case(s) queued", cases->len);
	return TRUE;
}

/* ---- follow-ups ---- */

/* In-Reply-To and References for mail to the member about c. */
static gboolean
member_thread(ingest_ctx *ctx, const store_case *c, char **irt_r, GPtrArray **refs_r,
    GError **error)
{
	g_autoptr(store_message) last = store_case_last_message(ctx->st, c->id, "in", "member",
	    error);

	if (last == NULL && error != NULL && *error != NULL)
		return FALSE;
	if ((*refs_r = store_case_message_ids(ctx->st, c->id, error)) == NULL)
		return FALSE;
	*irt_r = last != NULL ? g_strdup(last->message_id) : NULL;
	return TRUE;
}

/* Mail to the member about c, threaded under their last message. */
static gboolean
to_member(ingest_ctx *ctx, const store_case *c, outbox_mail *om, GError **error)
{
	g_autoptr(GPtrArray) refs = NULL;
	g_autofree char *irt = NULL;

	if (!member_thread(ctx, c, &irt, &refs, error))
		return FALSE;
	om->c = c;
	om->to_addr = c->member;
	om->to_name = c->member_name;
	om->in_reply_to = irt;
	om->references = refs;
	return outbox_queue_mail(ctx->cfg, ctx->st, ctx->sp, om, error) > 0;
}

/* Check #type and #team against the rules. */
static void
validate(ingest_ctx *ctx, command_set *cs)
{
	guint i;

	for (i = 0; i < cs->commands->len; i++) {
		command *cmd = g_ptr_array_index(cs->commands, i);
		const char *out[3];
		g_autofree char *err = NULL;

		if (cmd->error != NULL || (cmd->kind != CMD_TYPE && cmd->kind != CMD_TEAM))
			continue;
		if (ctx->rules == NULL) {
			command_fail(cs, cmd, "no rules are loaded, so %s cannot be checked",
			    command_name(cmd->kind));
			continue;
		}
		if (cmd->kind == CMD_TEAM) {
			const char *name = rules_team_name(ctx->rules, cmd->args[0]);

			if (name == NULL)
				command_fail(cs, cmd, "unknown team \"%s\"", cmd->args[0]);
			else {
				g_free(cmd->args[0]);
				cmd->args[0] = g_strdup(name);
			}
			continue;
		}
		if ((err = rules_type_check(ctx->rules, (const char *const *)cmd->args, out)) !=
		    NULL) {
			command_fail(cs, cmd, "%s", err);
			continue;
		}
		for (guint k = 0; k < 3; k++) {
			g_free(cmd->args[k]);
			cmd->args[k] = g_strdup(out[k]);
		}
	}
}

static gboolean
apply_one(ingest_ctx *ctx, const store_case *c, const command *cmd, const char *actor,
    GError **error)
{
	switch (cmd->kind) {
	case CMD_TYPE:
		return store_case_set_type(ctx->st, c->id, cmd->args[0], cmd->args[1], cmd->args[2],
		    error);
	case CMD_TEAM:
		return store_case_set_team(ctx->st, c->id, cmd->args[0], error);
	case CMD_PRIORITY:
		return store_case_set_priority(ctx->st, c->id, cmd->args[0], error);
	case CMD_RESOLVE:
		return store_case_set_status(ctx->st, c->id, CASE_RESOLVED, error) &&
		    store_event_add(ctx->st, c->id, "resolved", actor, "#resolve", error);
	case CMD_REOPEN:
		return store_case_set_status(ctx->st, c->id, CASE_ACTIVE, error) &&
		    store_event_add(ctx->st, c->id, "reopened", actor, "#reopen", error);
	default:
		return TRUE;
	}
}

static gboolean
transcript(ingest_ctx *ctx, const store_case *c, const mail_msg *m, command_set *cs,
    GString *decision, GError **error)
{
	g_autoptr(GHashTable) vars = case_vars(ctx, c);
	g_autofree char *t = command_transcript(cs), *body = NULL, *subject = NULL;
	outbox_mail om = { 0 };

	g_hash_table_insert(vars, "transcript", g_steal_pointer(&t));
	if ((body = outbox_render(ctx->cfg, "transcript.txt", vars, error)) == NULL)
		return FALSE;
	subject = thread_subject(ctx->cfg, m->subject, c->public_id, TRUE);
	om.c = c;
	om.kind = "transcript";
	om.to_addr = m->from_addr;
	om.to_name = m->from_name;
	om.subject = subject;
	om.text = body;
	om.in_reply_to = m->message_id;
	om.auto_submitted = "auto-replied";
	om.role = "gateway";
	if (outbox_queue_mail(ctx->cfg, ctx->st, ctx->sp, &om, error) == 0 ||
	    !store_event_add(ctx->st, c->id, "commands-rejected", m->from_addr,
	    "a command failed: nothing applied, nothing relayed", error))
		return FALSE;
	add_decision(decision, "staff commands failed: transcript sent, nothing relayed");
	return TRUE;
}

/* "Anna Staff via Member Services" (with the address when staff.expose_address). */
static char *
relay_name(ingest_ctx *ctx, const mail_msg *m)
{
	g_autofree char *who = NULL;

	if (m->from_name != NULL && *m->from_name != '\0')
		who = g_strdup(m->from_name);
	else
		who = g_strndup(m->from_addr, strcspn(m->from_addr, "@"));
	if (ctx->cfg->staff.expose_address)
		return g_strdup_printf("%s (%s) via %s", who, m->from_addr, ctx->cfg->name);
	return g_strdup_printf("%s via %s", who, ctx->cfg->name);
}

static gboolean
relay(ingest_ctx *ctx, const store_case *c, const mail_msg *m, const char *text,
    gint64 msg_row, GError **error)
{
	g_autoptr(GPtrArray) atts = store_message_attachments(ctx->st, msg_row, error);
	g_autofree char *from = relay_name(ctx, m);
	g_autofree char *subject = NULL, *body = NULL;
	g_autoptr(GHashTable) vars = NULL;
	const char *lang = members_case_lang(ctx->cfg, ctx->st, c);
	outbox_mail om = { 0 };

	if (atts == NULL)
		return FALSE;
	/* relay.txt wraps the staff member's text; without one (an older install) it goes as is */
	if (outbox_template_exists(ctx->cfg, lang, "relay.txt")) {
		vars = case_vars_lang(ctx, c, lang);
		g_hash_table_insert(vars, "text", g_strdup(text));
		g_hash_table_insert(vars, "staff_name", g_strdup(m->from_name != NULL ?
		    m->from_name : ""));
		if ((body = outbox_render_lang(ctx->cfg, lang, "relay.txt", vars, &subject,
		    error)) == NULL)
			return FALSE;
	}
	if (subject == NULL)
		subject = thread_subject(ctx->cfg, c->subject, c->public_id, TRUE);
	om.kind = "reply";
	om.from_name = from;
	om.subject = subject;
	om.text = body != NULL ? body : text;
	om.attachments = atts;
	om.role = "staff";
	return to_member(ctx, c, &om, error);
}

static gboolean
resolved_notice(ingest_ctx *ctx, const store_case *c, GError **error)
{
	const char *lang = members_case_lang(ctx->cfg, ctx->st, c);
	g_autoptr(GHashTable) vars = case_vars_lang(ctx, c, lang);
	g_autofree char *subject = NULL;
	g_autofree char *body = outbox_render_lang(ctx->cfg, lang, "resolved.txt", vars,
	    &subject, error);
	outbox_mail om = { 0 };

	if (body == NULL)
		return FALSE;
	if (subject == NULL)
		subject = thread_subject(ctx->cfg, c->subject, c->public_id, TRUE);
	om.kind = "resolved";
	om.subject = subject;
	om.text = body;
	om.auto_submitted = "auto-generated";
	om.role = "gateway";
	return to_member(ctx, c, &om, error);
}

static gboolean
staff_reply(ingest_ctx *ctx, const store_case *c, const mail_msg *m, const char *visible,
    gint64 msg_row, GString *decision, GError **error)
{
	g_autoptr(command_set) cs = command_parse(visible);
	g_autofree char *text = NULL;
	guint i;

	validate(ctx, cs);
	if (cs->errors > 0)
		return transcript(ctx, c, m, cs, decision, error);
	for (i = 0; i < cs->commands->len; i++) {
		const command *cmd = g_ptr_array_index(cs->commands, i);

		if (!apply_one(ctx, c, cmd, m->from_addr, error) ||
		    !store_event_add(ctx->st, c->id, "command", m->from_addr, cmd->line, error))
			return FALSE;
		add_decision(decision, "%s", cmd->line);
	}
	text = g_strstrip(g_strdup(cs->body));
	if (cs->note) {
		add_decision(decision, "internal note, not relayed");
		if (!store_event_add(ctx->st, c->id, "note", m->from_addr, "#note", error))
			return FALSE;
	} else if (*text != '\0') {
		if (!relay(ctx, c, m, text, msg_row, error))
			return FALSE;
		add_decision(decision, "relayed to the member");
	}
	if (command_find(cs, CMD_RESOLVE) != NULL) {
		g_autoptr(store_case) now = store_case_get(ctx->st, c->id, error);

		if (now == NULL || !resolved_notice(ctx, now, error))
			return FALSE;
		add_decision(decision, "resolution notice sent");
	}
	return TRUE;
}

gboolean
conv_follow_up(ingest_ctx *ctx, const store_case *c, staff_role role, const mail_msg *m,
    gint64 msg_row, GString *decision, GError **error)
{
	g_autofree char *visible = record_visible(ctx, m, msg_row, error);
	g_autoptr(GHashTable) vars = NULL;
	const char *quiet;

	if (visible == NULL)
		return FALSE;
	if ((quiet = guard_no_autoreply(ctx->cfg, m)) != NULL) {
		add_decision(decision, "machine mail (%s): recorded only", quiet);
		return TRUE;
	}
	if (role == ROLE_STAFF)
		return staff_reply(ctx, c, m, visible, msg_row, decision, error);
	if (role == ROLE_MEMBER && !add_copied(ctx, c, m, error))
		return FALSE;
	if (strcmp(c->status, CASE_RESOLVED) == 0 && role != ROLE_UNKNOWN) {
		if (!store_case_set_status(ctx->st, c->id, CASE_ACTIVE, error) ||
		    !store_event_add(ctx->st, c->id, "reopened", m->from_addr,
		    "a reply within the reopen window", error))
			return FALSE;
		add_decision(decision, "reopened");
	}
	vars = case_vars(ctx, c);
	g_hash_table_insert(vars, "from", g_strdup(m->from_addr));
	g_hash_table_insert(vars, "role", g_strdup(staff_role_name(role)));
	g_hash_table_insert(vars, "text", g_strdup(visible));
	g_hash_table_insert(vars, "status", g_strdup(strcmp(c->status, CASE_RESOLVED) == 0 &&
	    role != ROLE_UNKNOWN ? "Active (reopened by this reply)" : c->status));
	return notify_team(ctx, c, NULL, "update.txt", vars, msg_row, decision, error);
}
