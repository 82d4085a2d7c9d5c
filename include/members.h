/*
 * members.h - the member directory: who a sender is, and in which
 * language to write to them.
 *
 * Admins load it from the membership system's export with
 * "casectl members import members.csv": RFC 4180 CSV (UTF-8, an
 * optional BOM, CRLF or LF), a header row naming the columns (member
 * number, name, email addresses, language: see members_csv_parse), one
 * member per row.  An import is all or nothing: any bad row is reported
 * as "file:line: message" and nothing is written.
 */
#ifndef CG_MEMBERS_H
#define CG_MEMBERS_H

#include <stdio.h>
#include <glib.h>
#include "config.h"
#include "store.h"

#define MEMBERS_CSV_MAX		(64 * 1024 * 1024)	/* bytes of a CSV file */
#define MEMBERS_ERRORS_MAX	50			/* errors reported per file */

/* The tag a case from an address the directory lacks gets (members.unknown = flag). */
#define MEMBERS_TAG_UNKNOWN	"unknown-member"

typedef struct {
	store_member *m;	/* number, name, lang (normalised or NULL), addresses (lowercase) */
	int	 line;		/* where its row starts in the file */
} members_entry;

void members_entry_free(members_entry *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(members_entry, members_entry_free)

/*
 * Parse a members CSV (data, len bytes; name for messages).  The header
 * row names the columns in any order, without regard to case: the
 * member number ("member number", "number", "numéro" ...), the email
 * addresses ("email addresses", "emails", "adresses" ...; several per
 * cell, separated by ';', ',' or white space), and optionally the name
 * ("name", "nom") and the language ("language", "langue": en, fr,
 * English, français ...; empty for unknown).  Returns the members
 * (members_entry *) or NULL after appending one "name:line: message"
 * per problem (at most MEMBERS_ERRORS_MAX) to errors: broken quoting,
 * NUL bytes, invalid UTF-8, a wrong number of fields, a missing or
 * duplicate member number, a bad or missing address, an address given
 * for two members, an unknown language.
 */
GPtrArray *members_csv_parse(const char *data, gsize len, const char *name,
    GPtrArray *errors);

/*
 * Write parsed members to the directory (call inside a transaction; the
 * caller rolls back when this fails).  A member in the file is created
 * or replaced, addresses included.  With replace the directory becomes
 * exactly the file; without it, an address that belongs to a member the
 * file does not mention is an error ("name:line: ...", appended to
 * errors, FALSE without GError).  *added_r and *updated_r (may be NULL)
 * count new and replaced members.  FALSE with error on a store failure.
 */
gboolean members_import(store *st, GPtrArray *entries, gboolean replace, const char *name,
    GPtrArray *errors, int *added_r, int *updated_r, GError **error);

/*
 * The language to write to case c's member in: the directory's for
 * c->member, else the case's (c->lang: that of the member's first mail),
 * else the default.  Never NULL; static.
 */
const char *members_case_lang(const config *cfg, store *st, const store_case *c);

/* casectl members list: a table, or a JSON array. */
gboolean members_print_list(store *st, gboolean json, FILE *out, GError **error);

/*
 * casectl members show: the member with number key, or whose address
 * key is (it contains '@'), with the cases from their addresses.
 * CG_ERROR_PERM when there is none.
 */
gboolean members_print_one(store *st, const char *key, gboolean json, FILE *out,
    GError **error);

#endif
