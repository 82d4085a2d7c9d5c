/*
 * conversation.h - a case as a conversation: which case a message
 * follows up and whether its sender may join it, what a follow-up does
 * (staff commands and relays, reopening, team updates), the team
 * notification of a new case, and "status" requests.  Called by
 * ingest.c inside its transaction; every function only adds rows and
 * outbox mail, so ingest's rollback undoes all of it.
 */
#ifndef CG_CONVERSATION_H
#define CG_CONVERSATION_H

#include <glib.h>
#include "ingest.h"
#include "mail.h"
#include "rules.h"
#include "staff.h"
#include "store.h"

typedef struct {
	gint64	 case_id;	/* the case this message follows up; 0: a new case */
	gint64	 link_to;	/* a new case continues this resolved case (window passed) */
	gint64	 refused;	/* a case it named that the sender may not join; 0: none */
	staff_role role;	/* of the sender on case_id (or on refused / link_to) */
	const char *via;	/* static: how the case was found, or why it was refused */
} conv_match;

/*
 * Find the case m follows up, in this order: In-Reply-To / References
 * naming a Message-ID casegate signed (thread_message_id_case) or
 * stored for a case; the "[CASE-000123]" subject token; with
 * gateway.plus_addressing, "local+CASE-000123@" on the recipient or To
 * / Cc / Delivered-To.  Only a signed Message-ID admits anyone; every
 * other way needs the sender to be the member, a participant or staff,
 * else the case is "refused" and m opens a new one.  A member's mail to
 * a case resolved more than cases.reopen_days ago opens a new case
 * linked to it.  FALSE only on a store error.
 */
gboolean conv_find_case(ingest_ctx *ctx, const mail_msg *m, const char *recipient,
    conv_match *match, GError **error);

/* The sender's role on case c (member, participant, staff, unknown). */
staff_role conv_role(ingest_ctx *ctx, const store_case *c, const mail_msg *m, GError **error);

/*
 * A "status" request (the whole subject, reply prefixes aside, is one
 * of cases.status_words, casefolded, with no case token): record m
 * without a case and queue the list of the sender's cases with status
 * and last update.  *handled says whether m was one; r is filled then.
 */
gboolean conv_status(ingest_ctx *ctx, const mail_msg *m, const char *raw_digest,
    const char *source_key, ingest_result *r, gboolean *handled, GError **error);

/*
 * After a new case c was stored from m (its message row msg_row):
 * record its visible text and the people copied, link it to link_to (0:
 * none), notify the team (d->team_address, else the case team's address
 * in the rules) with the case, fields, text and attachments, Reply-To
 * the gateway.  Appends to *decision_r (may be NULL) what it did.
 */
gboolean conv_new_case(ingest_ctx *ctx, const store_case *c, const mail_msg *m,
    const rules_decision *d, gint64 msg_row, gint64 link_to, GString *decision,
    GError **error);

/*
 * After follow-up m (message row msg_row, sender role) was stored on c:
 * staff replies run their commands and are relayed to the member (or a
 * transcript goes back when a command failed); a member's reply reopens
 * a resolved case; member and participant mail is passed on to the
 * team.  Machine mail (guard_no_autoreply) is only recorded.
 */
gboolean conv_follow_up(ingest_ctx *ctx, const store_case *c, staff_role role,
    const mail_msg *m, gint64 msg_row, GString *decision, GError **error);

/* Does subject ask for a status list under cfg's status words? */
gboolean conv_is_status_subject(const config *cfg, const char *subject);

#endif
