/*
 * guard.h - the loop policy (RFC 3834): when casegate must not answer a
 * message automatically.  One table, one place: docs/loops.md.
 */
#ifndef CG_GUARD_H
#define CG_GUARD_H

#include "config.h"
#include "mail.h"

/*
 * Why no automatic reply may be sent in answer to m, or NULL when one
 * may.  The reason is a static string suitable for the case record
 * ("Auto-Submitted: auto-replied", "Precedence: bulk", ...).
 */
const char *guard_no_autoreply(const config *cfg, const mail_msg *m);

#endif
