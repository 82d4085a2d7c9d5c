/*
 * staff.h - who wrote a message, as far as a case is concerned: the
 * case's member, someone copied on the case, trusted staff, or an
 * unknown sender.  Staff are recognised by configured addresses or
 * domains AND, where the config requires it, by an
 * Authentication-Results header (RFC 8601) of the trusted receiving
 * server that shows dkim=pass or spf=pass for the sender's domain.
 */
#ifndef CG_STAFF_H
#define CG_STAFF_H

#include <glib.h>
#include "config.h"
#include "mail.h"
#include "store.h"

typedef enum {
	ROLE_UNKNOWN,
	ROLE_MEMBER,
	ROLE_PARTICIPANT,
	ROLE_STAFF,
} staff_role;

/* "unknown", "member", "participant", "staff" (messages.role). */
const char *staff_role_name(staff_role r);

/* addr is listed in staff.addresses or its domain in staff.domains. */
gboolean staff_address_listed(const staff_config *sc, const char *addr);

/*
 * Does one Authentication-Results value (unfolded) come from authserv_id
 * and report dkim=pass with header.d = domain, or spf=pass with an
 * smtp.mailfrom in domain?  Comments and quoted strings are understood;
 * anything malformed is "no".
 */
gboolean staff_auth_results_pass(const char *value, const char *authserv_id,
    const char *domain);

/*
 * Is m from trusted staff?  Listed, and when cfg->staff.require_auth the
 * first Authentication-Results header from cfg->staff.authserv_id (the
 * one the trusted server added on top; RFC 8601 section 5 has it remove
 * forged copies) passes for the From domain.  *why_r (may be NULL) gets
 * a static reason either way, for the case record.
 */
gboolean staff_is_trusted(const config *cfg, const mail_msg *m, const char **why_r);

/*
 * The role of m's sender on case c: member (From is c->member), staff
 * (staff_is_trusted), participant (From is in participants, char *
 * addresses, may be NULL), else unknown.  Member beats staff, so a
 * staff member who opened a case as a member is answered as one.
 */
staff_role staff_role_of(const config *cfg, const store_case *c, GPtrArray *participants,
    const mail_msg *m, const char **why_r);

#endif
