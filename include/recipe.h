/*
 * recipe.h - what a queued mail is composed from, kept in its outbox
 * row until delivery (outbox.c composes it then).
 *
 * Every field is a byte string (names and subjects from hostile mail
 * need not be UTF-8); NULL and "" are told apart.  The encoding is a
 * versioned GVariant, read back with untrusted-data rules: a damaged
 * row gives an error, never a crash.
 */
#ifndef CG_RECIPE_H
#define CG_RECIPE_H

#include <glib.h>

typedef struct {
	char		*from_name;	/* display name, resolved when queued */
	char		*from_addr;	/* the gateway's address when queued */
	char		*to_name;
	char		*to_addr;
	char		*subject;	/* final, one line */
	char		*text;		/* body, UTF-8 */
	char		*in_reply_to;	/* without <> */
	char		*reply_to;
	char		*auto_submitted;
	GPtrArray	*references;	/* char *, oldest first; may be NULL */
	GPtrArray	*attachments;	/* store_attachment *: digest, name, content_type, size */
} recipe;

/* The bytes for the outbox row. */
GBytes *recipe_encode(const recipe *r);
/* Back from the row; CG_ERROR_PERM when the bytes are not a recipe. */
recipe *recipe_decode(GBytes *bytes, GError **error);
/* NULL-safe; for decoded recipes (owns its strings and arrays). */
void recipe_free(recipe *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(recipe, recipe_free)

#endif
