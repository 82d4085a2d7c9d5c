/*
 * smtp.h - delivery to the SMTP relay (libetpan): TLS verified as for
 * IMAP, optional AUTH PLAIN, one connection reused for a batch (RSET
 * between messages).  Temporary or permanent is decided from the raw
 * reply code (libetpan folds 450 and 550 into one error).
 */
#ifndef CG_SMTP_H
#define CG_SMTP_H

#include <glib.h>
#include "config.h"

typedef struct smtp_conn smtp_conn;

/*
 * Connect, EHLO helo_name, STARTTLS or implicit TLS, verify, AUTH
 * (PLAIN, or XOAUTH2 with auth = "oauth2": the token is fetched before
 * connecting, and a refusal reads "server refused the OAuth2 token").
 */
smtp_conn *smtp_open(const endpoint *ep, const char *helo_name, GError **error);

/*
 * Send the message data (len bytes, CRLF line ends) from env_from (""
 * is the null sender) to rcpt.  Both addresses are checked with
 * cg_address_valid first.  CG_ERROR_TEMP for 4xx and network errors,
 * CG_ERROR_PERM for 5xx; the message names the code and the server's
 * text.  After a failure the connection is RSET (or marked dead) and
 * can be used again or closed.
 */
gboolean smtp_send_data(smtp_conn *c, const char *env_from, const char *rcpt,
    const void *data, gsize len, GError **error);

/* Is the connection still usable? */
gboolean smtp_alive(smtp_conn *c);

/* QUIT (with the timeout) and free; NULL-safe. */
void smtp_close(smtp_conn *c);

#endif
