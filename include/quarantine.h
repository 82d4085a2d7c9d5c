/*
 * quarantine.h - mail casegate holds back instead of turning it into a
 * case or answering it: spam, blocked senders, mail a rule ignores,
 * mail that cannot be parsed, bounces and auto-replies that match none
 * of our mail.  The raw copy stays in the spool; a row in the store
 * says why.  An admin lists, shows, releases (ingested as if new, with
 * no screening) or deletes entries with casectl quarantine.
 */
#ifndef CG_QUARANTINE_H
#define CG_QUARANTINE_H

#include <stdio.h>
#include <glib.h>
#include "ingest.h"
#include "mail.h"
#include "spool.h"
#include "store.h"

/*
 * Hold the raw message raw_digest (m may be NULL when it could not be
 * parsed) with reason.  Call inside the ingest transaction.  Returns the
 * entry's id, 0 on error.
 */
gint64 quarantine_add(store *st, const mail_msg *m, const char *raw_digest,
    const char *source_key, gint64 size, const char *reason, GError **error);

/* Print held entries (all with all = TRUE), as a table or JSON lines. */
gboolean quarantine_print_list(store *st, gboolean all, gboolean json, FILE *out,
    GError **error);

/*
 * Print an entry's record and its raw message; control characters other
 * than tab and newline are shown as "\xNN" so a hostile message cannot
 * drive the terminal.  CG_ERROR_PERM for an unknown id.
 */
gboolean quarantine_print_one(store *st, spool *sp, gint64 id, FILE *out, GError **error);

/*
 * Ingest a held entry as if it were new (ingest_raw_released: no
 * quarantine, no screening beyond the loop table), then mark it
 * released.  CG_ERROR_PERM when the id is unknown or not held.
 */
gboolean quarantine_release(ingest_ctx *ctx, gint64 id, ingest_result *r, GError **error);

/*
 * Mark an entry deleted and remove its raw copy from the spool unless a
 * message or another entry still uses it.
 */
gboolean quarantine_delete(store *st, spool *sp, gint64 id, GError **error);

#endif
