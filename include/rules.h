/*
 * rules.h - the routing rules file, casegate.rules(5): taxonomy (case
 * types, sub types, update types), teams, fields with extraction
 * patterns, ordered rules with conditions and actions, a default.
 *
 * rules_load() compiles everything once (PCRE2) and validates every
 * reference; rules_classify() decides for one parsed message and can
 * explain why.  A loaded rules object is read-only and can be shared.
 */
#ifndef CG_RULES_H
#define CG_RULES_H

#include <glib.h>
#include "mail.h"

typedef struct rules rules;

typedef struct {
	char	*name;		/* "work_titles" */
	char	*label;		/* "Work title(s)" */
	char	*value;		/* extracted value, or NULL when missing */
} rules_field;

typedef struct {
	char	*type, *sub_type, *update_type;	/* update_type may be NULL */
	char	*team;		/* team name, NULL if none */
	char	*team_address;	/* its notification address, NULL if none */
	char	*priority;	/* "normal" unless a rule says otherwise */
	GPtrArray *tags;	/* char * */
	GPtrArray *fields;	/* rules_field *: every required field, found or not */
	gboolean ignore;	/* no case, no acknowledgement */
	char	*ignore_reason;
	char	*rule;		/* name of the rule that decided, or "default" */
	GPtrArray *explain;	/* char *: lines saying which condition matched what; NULL unless asked */
} rules_decision;

/*
 * Load and validate path.  On failure returns NULL and appends one
 * newly allocated "file:line: message" string per problem to errors
 * (create it with g_free as free func; may be NULL), sorted by file and
 * line.  @include paths are relative to the including file.
 */
rules *rules_load(const char *path, GPtrArray *errors);
void rules_free(rules *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(rules, rules_free)

/*
 * Classify m, sent to recipient (the gateway address it reached; may be
 * NULL: then Delivered-To, X-Original-To, To and Cc are used).  With
 * explain, fill decision->explain.  Never fails: a pattern that runs
 * out of its match budget is logged and makes its rule not apply (even
 * under "not"), and the explanation says so.  Thread-safe: a rules
 * object may be shared (one scratch area is claimed atomically; a
 * second concurrent caller allocates its own).
 */
rules_decision *rules_classify(const rules *r, const mail_msg *m, const char *recipient,
    gboolean explain);
void rules_decision_free(rules_decision *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(rules_decision, rules_decision_free)

/* Labels of the required fields that are still missing (char *, owned by the array). */
GPtrArray *rules_decision_missing(const rules_decision *d);

/*
 * Extract the named fields (char *names, e.g. a case's missing ones)
 * from a follow-up message, so the daemon can fill them.  Returns one
 * rules_field per known name, in order, value NULL when still missing
 * ("See attached document" counts only when m has an attachment, "See
 * description" only when the body says more than the field lines).
 * Unknown names are skipped.  The array owns its elements.
 */
GPtrArray *rules_extract_fields(const rules *r, const mail_msg *m, GPtrArray *names);

/*
 * The rules in canonical form, itself a valid rules file: fixed key
 * order, one setting per line, conditions as evaluated.  Newly allocated.
 */
char *rules_dump(const rules *r);

/* A decision as indented text lines, or as one JSON object; newly allocated. */
char *rules_decision_to_text(const rules_decision *d);
char *rules_decision_to_json(const rules_decision *d);

/*
 * Is "type / sub_type / update_type" in the taxonomy?  type is
 * required; sub_type and update_type may be NULL or "" (not set) and
 * must otherwise belong to that type.  Names compare exactly.  FALSE
 * with CG_ERROR_PERM saying what is unknown and listing the choices.
 */
gboolean rules_taxonomy_valid(const rules *r, const char *type, const char *sub_type,
    const char *update_type, GError **error);
/* Is team defined in the rules?  FALSE with CG_ERROR_PERM listing the teams. */
gboolean rules_team_valid(const rules *r, const char *team, GError **error);

/*
 * Staff commands: the notification address of a team (NULL when the
 * team is unknown or has none), and its name as the rules spell it
 * (names compare case-insensitively; NULL when unknown).
 */
const char *rules_team_address(const rules *r, const char *team);
const char *rules_team_name(const rules *r, const char *team);

/*
 * Check in[] = { type, sub type or NULL, update type or NULL } against
 * the taxonomy (case-insensitively).  Returns NULL and sets out[] to the
 * names as the rules spell them (owned by r), or a newly allocated
 * message saying what is wrong.
 */
char *rules_type_check(const rules *r, const char *const in[3], const char *out[3]);

/*
 * casectl rules check FILE / rules dump FILE / rules test [--json] MSG...:
 * print to stdout (errors as file:line: message to stderr) and return an
 * exit status: 0, 78 (CG_EX_CONFIG) for a bad rules file, 64 for no
 * message, 65/66 when a message could not be parsed/read (the others are
 * still tested).  rules_cmd_dump prints rules_dump().
 */
int rules_cmd_check(const char *path);
int rules_cmd_dump(const char *path);
int rules_cmd_test(const char *path, int argc, char **argv, gboolean json);

#endif
