/*
 * ingest.h - the path of one message, from a raw file in the spool to a
 * committed case: parse, guard, thread, classify, store, queue the
 * acknowledgement.  One SQLite transaction per message; the caller acks
 * the source (IMAP move, MTA exit 0) only after ingest_raw succeeded.
 */
#ifndef CG_INGEST_H
#define CG_INGEST_H

#include <glib.h>
#include "config.h"
#include "mail.h"
#include "rules.h"
#include "spool.h"
#include "store.h"

typedef struct {
	const config	*cfg;
	store		*st;
	spool		*sp;
	const rules	*rules;		/* NULL: every case gets the default */
	const imap_account *mailbox;	/* where the message came from; NULL: none */
} ingest_ctx;

typedef enum {
	INGEST_NEW_CASE,
	INGEST_FOLLOWUP,
	INGEST_DUPLICATE,	/* stored before: nothing new */
	INGEST_IGNORED,		/* recorded nowhere as a case; see reason */
	INGEST_QUARANTINED,	/* held in the quarantine with its reason */
	INGEST_RECORDED,	/* an auto-reply or bounce noted on its case, no answer */
} ingest_outcome;

typedef struct {
	ingest_outcome	 outcome;
	gint64		 case_id;	/* 0 when ignored */
	char		*public_id;	/* NULL when ignored */
	char		*message_id;	/* of the message, may be NULL */
	char		*decision;	/* one line for the log: type, team, rule, ack or why not */
} ingest_result;

/*
 * Ingest the raw message committed to the spool as raw_digest.
 * source_key names where it came from ("account/folder/uidvalidity/uid"
 * or NULL), recipient the gateway address it reached (NULL: the
 * configured one).  Returns FALSE with CG_ERROR_TEMP when it must be
 * retried later (database busy, disk full); everything else ends in an
 * outcome.  Free r's contents with ingest_result_clear.
 */
gboolean ingest_raw(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, ingest_result *r, GError **error);

/*
 * Same, for group commit: the caller has opened a transaction
 * (store_begin) and commits it after several messages; only then may it
 * ack their sources.  This message's work sits in a savepoint, undone on
 * failure or when ignored, so a failed message takes nothing else with
 * it.  After a FALSE return check store_in_transaction(): when SQLite
 * rolled the whole transaction back (disk full, I/O error) the group's
 * earlier messages are lost too and none of them may be acked.
 */
gboolean ingest_raw_in_txn(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, ingest_result *r, GError **error);

/*
 * Parse raw_digest with the configured limits, attachments into sp:
 * what ingest_raw does first, for a thread that parses ahead of the one
 * that ingests (the daemon's worker parses the batch it just fetched
 * while the previous batch is ingested).  The message comes prepared
 * (ingest_prepare).  NULL with the parse error.
 */
mail_msg *ingest_parse(const config *cfg, spool *sp, const char *raw_digest, GError **error);

/*
 * Fill m's derived fields (visible text, language guess): pure work on
 * the text, done ahead so the thread that holds the database does not.
 */
void ingest_prepare(mail_msg *m);
/*
 * ingest_raw_in_txn with the message parsed already (taken over and
 * freed; NULL: parse here, as ingest_raw_in_txn does).  The spool files
 * the parse wrote must be durable before the caller's COMMIT.
 */
gboolean ingest_parsed_in_txn(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, mail_msg *parsed, ingest_result *r, GError **error);

/*
 * A message over limits.max_message_size (guard_too_large() on its
 * RFC822.SIZE): the daemon fetched only its header (imap_fetch_headers)
 * into the spool as raw_digest.  It becomes a case like any other; the
 * acknowledgement says that it was too large to be read.
 */
gboolean ingest_raw_oversize(ingest_ctx *ctx, const char *raw_digest, const char *source_key,
    const char *recipient, gint64 size, ingest_result *r, GError **error);
/* The same inside the caller's transaction (see ingest_raw_in_txn). */
gboolean ingest_raw_oversize_in_txn(ingest_ctx *ctx, const char *raw_digest,
    const char *source_key, const char *recipient, gint64 size, ingest_result *r,
    GError **error);

/*
 * A message released from the quarantine: ingested as if new, but not
 * screened again (no quarantine, no bounce or auto-reply handling; the
 * loop table still decides on the acknowledgement).  No source key.
 */
gboolean ingest_raw_released(ingest_ctx *ctx, const char *raw_digest, ingest_result *r,
    GError **error);

void ingest_result_clear(ingest_result *r);

/* "new-case", "follow-up", "duplicate", "ignored", "quarantined", "recorded". */
const char *ingest_outcome_name(ingest_outcome o);

#endif
