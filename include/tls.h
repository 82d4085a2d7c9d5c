/*
 * tls.h - what libetpan does not do: send SNI and verify the server's
 * certificate chain and host name (GnuTLS), before any credential goes
 * out.  Used by imap.c and smtp.c.
 */
#ifndef CG_TLS_H
#define CG_TLS_H

#include <glib.h>
#include <libetpan/libetpan.h>

/*
 * Connect callback for mailimap/mailsmtp *_with_callback(): sets SNI to
 * the host name passed as data (a const char *, not copied).
 */
void tls_sni_callback(struct mailstream_ssl_context *ctx, void *data);

/*
 * Verify the certificate chain of the TLS stream s for host against the
 * system trust store (when system_ca) plus ca_file (PEM, may be NULL).
 * On failure sets CG_ERROR_CONFIG with a reason an admin can act on:
 * "certificate for imap.example.org not trusted: issuer unknown",
 * "... name mismatch", "... expired".  Never call on a plaintext stream.
 */
gboolean tls_verify_stream(mailstream *s, const char *host, const char *ca_file,
    gboolean system_ca, GError **error);

#endif
