/*
 * guard.c - never answer a machine.  A gateway that acknowledges mail
 * automatically is one header away from a mail loop, so every rule that
 * keeps casegate quiet lives in this table (RFC 3834 section 2 and the
 * vendor headers seen in the wild).  Quiet does not mean lost: the
 * message is still recorded, only the acknowledgement is withheld.
 */
#include <string.h>

#include "cg.h"
#include "guard.h"

typedef struct {
	const char *header;
	const char *value;	/* NULL: any value; otherwise case-insensitive prefix */
	gboolean negate;	/* match when the value is NOT this */
	const char *reason;
} guard_rule;

static const guard_rule guard_rules[] = {
	{ "Auto-Submitted", "no", TRUE, "Auto-Submitted is not \"no\"" },
	{ "Precedence", "bulk", FALSE, "Precedence: bulk" },
	{ "Precedence", "junk", FALSE, "Precedence: junk" },
	{ "Precedence", "list", FALSE, "Precedence: list" },
	{ "List-Id", NULL, FALSE, "mailing list (List-Id)" },
	{ "List-Unsubscribe", NULL, FALSE, "mailing list (List-Unsubscribe)" },
	{ "X-Auto-Response-Suppress", NULL, FALSE, "X-Auto-Response-Suppress" },
	{ "X-Autoreply", NULL, FALSE, "vendor auto-reply header (X-Autoreply)" },
	{ "X-Autorespond", NULL, FALSE, "vendor auto-reply header (X-Autorespond)" },
	{ "X-Auto-Reply", NULL, FALSE, "vendor auto-reply header (X-Auto-Reply)" },
	{ "X-Loop", NULL, FALSE, "X-Loop" },
	{ NULL, NULL, FALSE, NULL },
};

static gboolean
sender_is_system(const char *addr)
{
	const char *at = strchr(addr, '@');
	size_t n = at ? (size_t)(at - addr) : strlen(addr);

	return (n == 13 && g_ascii_strncasecmp(addr, "mailer-daemon", n) == 0) ||
	    (n == 10 && g_ascii_strncasecmp(addr, "postmaster", n) == 0) ||
	    g_ascii_strncasecmp(addr, "owner-", 6) == 0 ||
	    (n > 8 && g_ascii_strncasecmp(addr + n - 8, "-request", 8) == 0);
}

const char *
guard_no_autoreply(const config *cfg, const mail_msg *m)
{
	const guard_rule *r;

	if (m->from_addr == NULL)
		return "no valid sender address";
	if (m->return_path != NULL && *m->return_path == '\0')
		return "null Return-Path (a bounce or an auto-reply)";
	if (sender_is_system(m->from_addr))
		return "sender is a system address (MAILER-DAEMON, postmaster, list owner)";
	if (cfg->address != NULL && g_ascii_strcasecmp(m->from_addr, cfg->address) == 0)
		return "our own mail came back";
	if (m->message_id != NULL && cfg->domain != NULL &&
	    g_str_has_suffix(m->message_id, cfg->domain) &&
	    g_ascii_strncasecmp(m->message_id, cfg->case_prefix, strlen(cfg->case_prefix)) == 0)
		return "our own mail came back (Message-ID)";
	for (r = guard_rules; r->header != NULL; r++) {
		const char *v = mail_header_get(m, r->header);
		gboolean hit;

		if (v == NULL)
			continue;
		while (*v == ' ' || *v == '\t')
			v++;
		if (r->value == NULL)
			hit = TRUE;
		else
			hit = g_ascii_strncasecmp(v, r->value, strlen(r->value)) == 0;
		if (r->negate)
			hit = !hit;
		if (hit)
			return r->reason;
	}
	return NULL;
}
