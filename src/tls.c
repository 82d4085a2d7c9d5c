/*
 * tls.c - certificate checks libetpan leaves out.
 *
 * libetpan's GnuTLS build completes every handshake without looking at
 * the certificate, sends no SNI and cannot be given a CA file
 * (mailstream_ssl_set_server_certicate() returns -1).  So the protocol
 * modules connect through libetpan, passing tls_sni_callback, and then,
 * before a single credential goes out, call tls_verify_stream(), which
 * rebuilds the peer's chain from the stream and verifies it with GnuTLS
 * against the trust anchors the account names, including the host name
 * and the TLS server purpose.
 *
 * The trust list is built per call: connections are rare (one per
 * account and reconnect), and a fresh list notices a replaced CA file.
 */
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cg.h"
#include "tls.h"

/* A chain longer than this is not one a mail server sends. */
#define TLS_MAX_CHAIN	16

void
tls_sni_callback(struct mailstream_ssl_context *ctx, void *data)
{
	const char *host = data;

	/* RFC 6066 3: literal IP addresses are not permitted in SNI. */
	if (host == NULL || *host == '\0' || g_hostname_is_ip_address(host))
		return;
	/* libetpan's prototype wants a char *; it does not modify it. */
	(void)mailstream_ssl_set_server_name(ctx, (char *)host);
}

/* Human-readable reasons for a GnuTLS verification status. */
static char *
tls_status_reasons(unsigned int status, gboolean self_signed)
{
	static const struct {
		unsigned int	 bit;
		const char	*text;
	} reasons[] = {
		{ GNUTLS_CERT_UNEXPECTED_OWNER,		"name mismatch" },
		{ GNUTLS_CERT_EXPIRED,			"expired" },
		{ GNUTLS_CERT_NOT_ACTIVATED,		"not yet valid" },
		{ GNUTLS_CERT_REVOKED,			"revoked" },
		{ GNUTLS_CERT_INSECURE_ALGORITHM,	"insecure algorithm" },
		{ GNUTLS_CERT_PURPOSE_MISMATCH,		"not for TLS servers" },
		{ GNUTLS_CERT_SIGNATURE_FAILURE,	"bad signature" },
		{ GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE, "issuer constraints violated" },
	};
	GString *s = g_string_new(NULL);
	size_t i;

	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		g_string_append(s, self_signed ? "self-signed, issuer unknown" :
		    "issuer unknown");
	else if (status & GNUTLS_CERT_SIGNER_NOT_CA)
		g_string_append(s, "issuer is not a CA");
	for (i = 0; i < G_N_ELEMENTS(reasons); i++) {
		if ((status & reasons[i].bit) == 0)
			continue;
		if (s->len > 0)
			g_string_append(s, ", ");
		g_string_append(s, reasons[i].text);
	}
	if (s->len == 0)
		g_string_append_printf(s, "verification failed (status 0x%x)", status);
	return g_string_free(s, FALSE);
}

static void
tls_crts_free(gnutls_x509_crt_t *crts, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
}

/* DER chain from libetpan -> GnuTLS certificates; returns how many. */
static unsigned int
tls_import_chain(carray *chain, gnutls_x509_crt_t *crts, const char *host,
    GError **error)
{
	unsigned int i, n = carray_count(chain);

	if (n == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "certificate for %s not trusted: server sent no certificate", host);
		return 0;
	}
	if (n > TLS_MAX_CHAIN)
		n = TLS_MAX_CHAIN;
	for (i = 0; i < n; i++) {
		MMAPString *der = carray_get(chain, i);
		gnutls_datum_t d = { (unsigned char *)der->str, (unsigned int)der->len };

		if (gnutls_x509_crt_init(&crts[i]) < 0 ||
		    gnutls_x509_crt_import(crts[i], &d, GNUTLS_X509_FMT_DER) < 0) {
			if (crts[i] != NULL)
				gnutls_x509_crt_deinit(crts[i]);
			tls_crts_free(crts, i);
			g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
			    "certificate for %s not trusted: unreadable certificate", host);
			return 0;
		}
	}
	return n;
}

static gboolean
tls_trust_list(gnutls_x509_trust_list_t *tl_r, const char *host,
    const char *ca_file, gboolean system_ca, GError **error)
{
	gnutls_x509_trust_list_t tl;
	int added = 0, r;

	if (gnutls_x509_trust_list_init(&tl, 0) < 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "cannot set up a trust list");
		return FALSE;
	}
	if (system_ca) {
		r = gnutls_x509_trust_list_add_system_trust(tl, 0, 0);
		if (r > 0)
			added += r;
	}
	if (ca_file != NULL) {
		r = gnutls_x509_trust_list_add_trust_file(tl, ca_file, NULL,
		    GNUTLS_X509_FMT_PEM, 0, 0);
		if (r <= 0) {
			g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
			    "cannot verify %s: no certificate loaded from CA file %s: %s",
			    host, ca_file, r < 0 ? gnutls_strerror(r) : "file holds none");
			gnutls_x509_trust_list_deinit(tl, 1);
			return FALSE;
		}
		added += r;
	}
	if (added == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "cannot verify %s: no trust anchors (system store empty and no ca_file)",
		    host);
		gnutls_x509_trust_list_deinit(tl, 1);
		return FALSE;
	}
	*tl_r = tl;
	return TRUE;
}

static gboolean
tls_is_self_signed(gnutls_x509_crt_t crt)
{
	return gnutls_x509_crt_check_issuer(crt, crt) != 0;
}

gboolean
tls_verify_stream(mailstream *s, const char *host, const char *ca_file,
    gboolean system_ca, GError **error)
{
	gnutls_x509_crt_t crts[TLS_MAX_CHAIN] = { 0 };
	gnutls_x509_trust_list_t tl;
	gnutls_typed_vdata_st vd[2];
	unsigned int n, status = 0;
	carray *chain;
	int r;

	if (s == NULL || host == NULL || *host == '\0') {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "certificate not verified: no stream or host name");
		return FALSE;
	}
	/*
	 * The GnuTLS build leaves the result uninitialised only when the
	 * peer sent no certificate, which the certificate-only credentials
	 * libetpan configures do not allow: the handshake would have failed.
	 */
	chain = mailstream_get_certificate_chain(s);
	if (chain == NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "certificate for %s not trusted: no certificate chain (not a TLS stream?)",
		    host);
		return FALSE;
	}
	n = tls_import_chain(chain, crts, host, error);
	mailstream_certificate_chain_free(chain);
	if (n == 0)
		return FALSE;
	if (!tls_trust_list(&tl, host, ca_file, system_ca, error)) {
		tls_crts_free(crts, n);
		return FALSE;
	}

	memset(vd, 0, sizeof(vd));
	vd[0].type = GNUTLS_DT_DNS_HOSTNAME;
	vd[0].data = (unsigned char *)host;
	vd[1].type = GNUTLS_DT_KEY_PURPOSE_OID;
	vd[1].data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER;
	r = gnutls_x509_trust_list_verify_crt2(tl, crts, n, vd, 2, 0, &status, NULL);
	gnutls_x509_trust_list_deinit(tl, 1);

	if (r < 0 || status != 0) {
		g_autofree char *why = NULL;

		if (r < 0)
			why = g_strdup(gnutls_strerror(r));
		else
			why = tls_status_reasons(status,
			    n == 1 && tls_is_self_signed(crts[0]));
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "certificate for %s not trusted: %s", host, why);
		tls_crts_free(crts, n);
		return FALSE;
	}
	tls_crts_free(crts, n);
	return TRUE;
}
