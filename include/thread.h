/*
 * thread.h - case tokens and Message-IDs: how mail finds its case.
 */
#ifndef CG_THREAD_H
#define CG_THREAD_H

#include <glib.h>
#include "config.h"

/*
 * A new Message-ID for mail about a case, without <>:
 * "CASE-000123.<16 hex nonce><16 hex HMAC>@domain", signed with
 * cfg->secret (all 32 hex digits random when there is no secret).
 * Newly allocated.
 */
char *thread_message_id(const config *cfg, const char *public_id);

/*
 * The case number of a Message-ID (without <>) that casegate issued and
 * signed with cfg->secret for this domain, or 0 when it is not one (no
 * secret, another shape, a wrong MAC).
 */
gint64 thread_message_id_case(const config *cfg, const char *message_id);

/*
 * The case number named by a "[CASE-000123]" token in subject (this
 * config's prefix, case-insensitive), or 0 if there is none.
 */
gint64 thread_subject_token(const config *cfg, const char *subject);

/*
 * The subject for mail we send about a case: the member's subject with
 * reply prefixes (Re:, AW:, SV:, Fwd: ...) and any old token removed,
 * then "Re: " when reply is TRUE, then " [CASE-000123]".  Newly allocated.
 */
char *thread_subject(const config *cfg, const char *subject, const char *public_id,
    gboolean reply);

/* The subject without reply prefixes and tokens (pointer-free copy). */
char *thread_subject_base(const config *cfg, const char *subject);

#endif
