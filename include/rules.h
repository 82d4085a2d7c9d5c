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
 * "file:line: message" string per problem to errors.
 */
rules *rules_load(const char *path, GPtrArray *errors);
void rules_free(rules *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(rules, rules_free)

/*
 * Classify m, sent to recipient (the gateway address it reached; may be
 * NULL).  With explain, fill decision->explain.  Never fails: a regex
 * error during matching is logged and counts as no match, and the
 * explanation says so.
 */
rules_decision *rules_classify(const rules *r, const mail_msg *m, const char *recipient,
    gboolean explain);
void rules_decision_free(rules_decision *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(rules_decision, rules_decision_free)

/* Labels of the required fields that are still missing (char *, owned by the array). */
GPtrArray *rules_decision_missing(const rules_decision *d);

/* casectl rules check [FILE] / rules test [--json] MSG...: exit status. */
int rules_cmd_check(const char *path);
int rules_cmd_test(const char *path, int argc, char **argv, gboolean json);

#endif
