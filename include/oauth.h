/*
 * oauth.h - OAuth2 access tokens for XOAUTH2 (Microsoft 365, Gmail):
 * taken from a command or a file, cached per token source and fetched
 * again before they expire.  casegate never talks to the identity
 * provider itself; the command (oauth2l, a Python script, a sidecar
 * that writes the file) does, and hands over an access token.
 *
 * What a source may produce (casegate.conf(5), "OAuth2"):
 *   - one line holding the token, or
 *   - a JSON object with "access_token" and optionally "expires_in"
 *     (the provider's token response, passed through).
 * The expiry is taken from expires_in, else from the "exp" claim when
 * the token is a JWT, else the endpoint's token_lifetime.
 *
 * Tokens are secrets: no function here logs one, and every copy handed
 * out is wiped by oauth_secret_free().  Errors name the source (the
 * command's program, never its arguments, or the file) and what failed.
 */
#ifndef CG_OAUTH_H
#define CG_OAUTH_H

#include <glib.h>
#include "config.h"

/* Largest token source output accepted, and largest token. */
#define OAUTH_OUTPUT_MAX	(64 * 1024)
#define OAUTH_TOKEN_MAX		(16 * 1024)

typedef struct {
	char	*access_token;
	gint64	 expires;	/* epoch seconds */
	const char *expires_from; /* static: "expires_in", "the JWT exp claim", "token_lifetime" */
} oauth_token;

/*
 * Parse what a token source produced (len bytes of data, not
 * necessarily NUL-terminated): a JSON object or one token line,
 * surrounding white space ignored.  issued is when the token was
 * obtained (expires_in counts from it); lifetime applies when nothing
 * says how long the token lasts.  The token must consist of RFC 6750
 * b64token characters.  Returns a new token (free with
 * oauth_token_free) or NULL and CG_ERROR_CONFIG with a message saying
 * what is wrong, never quoting the token.
 */
oauth_token *oauth_token_parse(const char *data, gsize len, gint64 issued, int lifetime,
    GError **error);

/* Wipe and free; NULL-safe. */
void oauth_token_free(oauth_token *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(oauth_token, oauth_token_free)

/*
 * If token is a signed JWT (three base64url parts, a JSON header and
 * payload) with a numeric "exp" claim, store it in exp_r and return
 * TRUE; FALSE for anything else (opaque tokens are normal).
 */
gboolean oauth_jwt_exp(const char *token, gint64 *exp_r);

/*
 * Run argv (no shell; argv[0] is looked up in PATH unless it holds a
 * '/') with stdin from /dev/null and at most timeout seconds; the
 * whole process group is killed when it runs over.  Returns stdout
 * (newly allocated, NUL-terminated, length in len_r; free with
 * oauth_secret_free) or NULL with an error naming argv[0] and what
 * went wrong: cannot run (CG_ERROR_CONFIG), timed out, non-zero exit
 * or killed by a signal (CG_ERROR_TEMP, quoting the last line of its
 * stderr), empty or too large output (CG_ERROR_CONFIG).
 */
char *oauth_command_output(char **argv, int timeout, gsize *len_r, GError **error);

/*
 * Read a token file: a regular file (no symlink) not readable by
 * group or others, at most OAUTH_OUTPUT_MAX bytes.  Returns its
 * contents (free with oauth_secret_free) and its mtime in mtime_r, or
 * NULL and CG_ERROR_CONFIG.
 */
char *oauth_file_read(const char *path, gsize *len_r, gint64 *mtime_r, GError **error);

/*
 * The access token for ep (ep->auth == AUTH_OAUTH2), newly allocated
 * (free with oauth_secret_free).  The cached one while more than
 * ep->token_refresh seconds remain; otherwise the command is run again
 * or the file re-read (a token file is also re-read whenever it
 * changed).  When a refresh fails but the cached token has not expired
 * yet, that token is returned and a warning logged.  Errors name the
 * source and say what failed, including "expired" with the time.
 * Safe to call from several threads.
 */
char *oauth_access_token(const endpoint *ep, GError **error);

/* The server refused ep's token: forget it, so the next call fetches anew. */
void oauth_token_refused(const endpoint *ep);

/*
 * The XOAUTH2 error challenge (the base64 JSON a server sends in its
 * "+ " or "334 " line) as printable text for an error message, e.g.
 * "status 401, schemes bearer, scope mail"; NULL when it is not one.
 */
char *oauth_challenge_describe(const char *b64);

/*
 * Check at config load time that a token_command can be parsed and its
 * program run, or that a token_file is present with a safe mode.
 */
gboolean oauth_command_check(char **argv, GError **error);
gboolean oauth_file_check(const char *path, GError **error);

/* Wipe and free a token or source output; NULL-safe. */
void oauth_secret_free(char *s);

/* Drop every cached token (tests, shutdown). */
void oauth_cache_clear(void);

/* Tests: replace the clock (epoch seconds); NULL restores cg_now(). */
void oauth_set_clock(gint64 (*now)(void));

#endif
