/*
 * smtp.c - hand composed mail to the relay with libetpan.
 *
 * What libetpan does not do, and this file does (docs: libs.md §3):
 *  - it verifies no certificate and sends no SNI: the connect callback
 *    sets SNI and tls_verify_stream() checks the chain and the host name
 *    before any AUTH;
 *  - it always says "EHLO `hostname`": we send EHLO <domain> ourselves
 *    through the exported but unpublished mailsmtp_send_command /
 *    mailsmtp_read_response / mailesmtp_parse_ehlo;
 *  - it maps 450 and 550 to one error: temporary or permanent is read
 *    from the raw smtp->response_code;
 *  - mailsmtp_set_timeout() does not cover plaintext reads (they use the
 *    global mailstream_network_delay), so we lower that one too;
 *  - a relay that does not offer STARTTLS is refused (a man in the
 *    middle can strip the line), and plaintext is allowed only to a
 *    loopback relay (a local MTA); AUTH never goes out in plaintext.
 *
 *  - AUTH XOAUTH2 (auth = "oauth2") is spoken here, not through
 *    libetpan's mailsmtp_oauth2_authenticate, which always puts the
 *    token on the AUTH line: Postfix cuts that line at 2048 bytes, and
 *    Microsoft's tokens are longer.  libetpan's EHLO flags know no
 *    XOAUTH2 either, so the AUTH line of the EHLO reply is read here.
 *
 * One connection serves a batch: after a failed transaction we send
 * RSET, and a stream error marks the connection dead so the caller can
 * reopen it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <libetpan/libetpan.h>

#include "cg.h"
#include "log.h"
#include "oauth.h"
#include "smtp.h"
#include "tls.h"

/* Exported by libetpan 1.9.4 but declared only in its private header. */
int mailsmtp_send_command(mailsmtp *session, char *command);
int mailsmtp_send_command_private(mailsmtp *session, char *command);
int mailsmtp_read_response(mailsmtp *session);
int mailesmtp_parse_ehlo(mailsmtp *session);

#define SMTP_DEFAULT_TIMEOUT	60
/* Composed acknowledgements are a few KiB; anything this big is a bug. */
#define SMTP_MAX_MESSAGE	(32 * 1024 * 1024)	/* mailsmtp_data_message takes one buffer */

struct smtp_conn {
	mailsmtp	*smtp;
	char		*host;		/* SNI callback data: must outlive the session */
	char		*where;		/* "smtp host:port" for messages */
	gboolean	 tls;
	gboolean	 dead;
	gboolean	 xoauth2;	/* the last EHLO offered AUTH XOAUTH2 */
};

static gboolean
host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (g_ascii_strcasecmp(host, "localhost") == 0)
		return TRUE;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return FALSE;
}

/* The server's text, on one line, without control characters. */
static char *
server_text(const mailsmtp *s)
{
	GString *out = g_string_new(NULL);
	const char *p;

	for (p = s->response != NULL ? s->response : ""; *p != '\0' && out->len < 400; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '\n' || ch == '\r' || ch == '\t')
			ch = ' ';
		else if (ch < 0x20 || ch >= 0x7f)
			ch = '?';
		if (ch == ' ' && (out->len == 0 || out->str[out->len - 1] == ' '))
			continue;
		g_string_append_c(out, (char)ch);
	}
	while (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

/*
 * Turn a failed step into a GError from the raw reply code: 4xx and
 * network trouble are temporary, 5xx permanent.  A stream error or a
 * 421 means the connection is gone.
 */
static void
step_failed(smtp_conn *c, const char *step, int r, GError **error)
{
	int code = c->smtp->response_code;
	g_autofree char *text = NULL;

	if (r == MAILSMTP_ERROR_STREAM || code == 0) {
		c->dead = TRUE;
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "%s: %s: connection lost (%s)",
		    c->where, step, mailsmtp_strerror(r));
		return;
	}
	if (code == 421)
		c->dead = TRUE;
	text = server_text(c->smtp);
	g_set_error(error, CG_ERROR, code / 100 == 5 ? CG_ERROR_PERM : CG_ERROR_TEMP,
	    "%s: %s: %d %s", c->where, step, code, text);
}

/*
 * Does an EHLO reply (libetpan keeps its lines without the codes, one
 * per line) list mech in its AUTH line?  libetpan's flags know no
 * XOAUTH2.
 */
static gboolean
ehlo_offers(const char *response, const char *mech)
{
	g_auto(GStrv) lines = g_strsplit(response != NULL ? response : "", "\n", -1);
	guint i, j;

	for (i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) words = NULL;

		if (g_ascii_strncasecmp(lines[i], "AUTH", 4) != 0 ||
		    (lines[i][4] != ' ' && lines[i][4] != '='))
			continue;
		words = g_strsplit_set(lines[i] + 5, " \r", -1);
		for (j = 0; words[j] != NULL; j++)
			if (g_ascii_strcasecmp(words[j], mech) == 0)
				return TRUE;
	}
	return FALSE;
}

/* EHLO with our own name (libetpan would send gethostname()). */
static gboolean
send_ehlo(smtp_conn *c, const char *helo_name, GError **error)
{
	g_autofree char *cmd = g_strdup_printf("EHLO %s\r\n", helo_name);
	int code;

	c->smtp->response_code = 0;
	if (mailsmtp_send_command(c->smtp, cmd) == -1) {
		step_failed(c, "EHLO", MAILSMTP_ERROR_STREAM, error);
		return FALSE;
	}
	code = mailsmtp_read_response(c->smtp);
	if (code != 250) {
		step_failed(c, "EHLO", code == 0 ? MAILSMTP_ERROR_STREAM :
		    MAILSMTP_ERROR_UNEXPECTED_CODE, error);
		return FALSE;
	}
	c->xoauth2 = ehlo_offers(c->smtp->response, "XOAUTH2");
	mailesmtp_parse_ehlo(c->smtp);
	return TRUE;
}

static gboolean
verify(smtp_conn *c, const endpoint *ep, GError **error)
{
	GError *e = NULL;

	if (tls_verify_stream(c->smtp->stream, ep->host, ep->ca_file, ep->system_ca, &e))
		return TRUE;
	g_set_error(error, CG_ERROR, e->code, "%s: %s", c->where, e->message);
	g_error_free(e);
	return FALSE;
}

static gboolean
connect_failed(smtp_conn *c, const char *how, int r, GError **error)
{
	/* A greeting other than 220 (554, 421) has a code to go by; a
	 * refused or timed out connection has none. */
	if (r != MAILSMTP_ERROR_STREAM && c->smtp->response_code != 0) {
		step_failed(c, "greeting", r, error);
		return FALSE;
	}
	c->dead = TRUE;
	g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "%s: %s failed: %s", c->where, how,
	    mailsmtp_strerror(r));
	return FALSE;
}

static gboolean
open_implicit(smtp_conn *c, const endpoint *ep, const char *helo_name, GError **error)
{
	int r;

	r = mailsmtp_ssl_connect_with_callback(c->smtp, c->host, (uint16_t)ep->port,
	    tls_sni_callback, c->host);
	if (r != MAILSMTP_NO_ERROR)
		return connect_failed(c, "TLS connect", r, error);
	c->tls = TRUE;
	return verify(c, ep, error) && send_ehlo(c, helo_name, error);
}

static gboolean
open_starttls(smtp_conn *c, const endpoint *ep, const char *helo_name, GError **error)
{
	int r;

	r = mailsmtp_socket_connect(c->smtp, c->host, (uint16_t)ep->port);
	if (r != MAILSMTP_NO_ERROR)
		return connect_failed(c, "connect", r, error);
	if (!send_ehlo(c, helo_name, error))
		return FALSE;
	if ((c->smtp->esmtp & MAILSMTP_ESMTP_STARTTLS) == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: relay does not offer STARTTLS; refusing to continue in plaintext "
		    "(use tls = \"implicit\" or fix the relay)", c->where);
		return FALSE;
	}
	c->smtp->response_code = 0;
	r = mailsmtp_socket_starttls_with_callback(c->smtp, tls_sni_callback, c->host);
	if (r != MAILSMTP_NO_ERROR) {
		if (c->smtp->response_code != 0 && c->smtp->response_code != 220) {
			step_failed(c, "STARTTLS", r, error);
			return FALSE;
		}
		c->dead = TRUE;
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "%s: STARTTLS failed: %s",
		    c->where, mailsmtp_strerror(r));
		return FALSE;
	}
	c->tls = TRUE;
	/* The pre-TLS EHLO answer may have been tampered with: ask again. */
	return verify(c, ep, error) && send_ehlo(c, helo_name, error);
}

static gboolean
open_plain(smtp_conn *c, const endpoint *ep, const char *helo_name, GError **error)
{
	int r;

	if (!host_is_loopback(ep->host)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: tls = \"none\" is only allowed for a loopback relay "
		    "(127.0.0.1, ::1, localhost); use \"starttls\" or \"implicit\"", c->where);
		return FALSE;
	}
	r = mailsmtp_socket_connect(c->smtp, c->host, (uint16_t)ep->port);
	if (r != MAILSMTP_NO_ERROR)
		return connect_failed(c, "connect", r, error);
	return send_ehlo(c, helo_name, error);
}

/* Send a line that holds a secret (kept out of any stream log) and read the reply. */
static int
send_private(smtp_conn *c, char *line)
{
	c->smtp->response_code = 0;
	if (mailsmtp_send_command_private(c->smtp, line) == -1)
		return 0;
	return mailsmtp_read_response(c->smtp);
}

/*
 * The XOAUTH2 exchange.  libetpan's mailsmtp_oauth2_authenticate always
 * sends the token as an initial response on the AUTH line; Postfix cuts
 * lines at 2048 bytes and then reports "Invalid base64 data in initial
 * response", and a Microsoft token is 2-3 KB.  So the initial response
 * is used only when the line fits in 512 bytes (RFC 5321 4.5.3.1.4);
 * otherwise AUTH XOAUTH2 waits for "334" and the token follows alone.
 * A failure is a "334 <base64 JSON>" challenge, answered with an empty
 * line, then the final 5xx.
 */
static int
xoauth2_exchange(smtp_conn *c, const char *user, const char *token, char **challenge_r)
{
	g_autofree char *ir = g_strdup_printf("user=%s\001auth=Bearer %s\001\001", user, token);
	char *b64 = g_base64_encode((const guchar *)ir, strlen(ir));
	char *line = g_strdup_printf("AUTH XOAUTH2 %s\r\n", b64);
	int code;

	explicit_bzero(ir, strlen(ir));
	if (strlen(line) <= 512) {
		code = send_private(c, line);
	} else {
		code = send_private(c, (char *)"AUTH XOAUTH2\r\n");
		if (code == 334) {
			g_free(line);
			line = g_strdup_printf("%s\r\n", b64);
			code = send_private(c, line);
		}
	}
	explicit_bzero(b64, strlen(b64));
	explicit_bzero(line, strlen(line));
	g_free(b64);
	g_free(line);
	if (code == 334) {
		*challenge_r = oauth_challenge_describe(c->smtp->response);
		code = send_private(c, (char *)"\r\n");
	}
	return code;
}

static gboolean
authenticate_oauth2(smtp_conn *c, const endpoint *ep, const char *token, GError **error)
{
	g_autofree char *challenge = NULL, *text = NULL;
	int code;

	if (!c->tls) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: refusing to send an OAuth2 token without TLS", c->where);
		return FALSE;
	}
	if (!c->xoauth2) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: relay does not offer AUTH XOAUTH2; cannot log in with auth = \"oauth2\"",
		    c->where);
		return FALSE;
	}
	code = xoauth2_exchange(c, ep->user, token, &challenge);
	if (code == 235)
		return TRUE;
	if (code == 0 || code / 100 == 4) {
		step_failed(c, "AUTH XOAUTH2", code == 0 ? MAILSMTP_ERROR_STREAM :
		    MAILSMTP_ERROR_UNEXPECTED_CODE, error);
		return FALSE;
	}
	oauth_token_refused(ep);
	text = server_text(c->smtp);
	g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
	    "%s: server refused the OAuth2 token: %d %s%s%s%s", c->where, code, text,
	    challenge ? " (" : "", challenge ? challenge : "", challenge ? ")" : "");
	return FALSE;
}

static gboolean
authenticate(smtp_conn *c, const endpoint *ep, const char *token, GError **error)
{
	int r;

	if (ep->user == NULL)
		return TRUE;
	if (ep->auth == AUTH_OAUTH2)
		return authenticate_oauth2(c, ep, token, error);
	if (!c->tls) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: refusing to send a password without TLS", c->where);
		return FALSE;
	}
	if (ep->password == NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "%s: user set but no password",
		    c->where);
		return FALSE;
	}
	if ((c->smtp->auth & MAILSMTP_AUTH_PLAIN) == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: relay does not offer AUTH PLAIN", c->where);
		return FALSE;
	}
	c->smtp->response_code = 0;
	r = mailsmtp_auth_type(c->smtp, ep->user, ep->password, MAILSMTP_AUTH_PLAIN);
	if (r == MAILSMTP_NO_ERROR)
		return TRUE;
	if (r == MAILSMTP_ERROR_STREAM) {
		step_failed(c, "AUTH", r, error);
	} else if (c->smtp->response_code / 100 == 4) {
		step_failed(c, "AUTH", r, error);
	} else if (c->smtp->response_code / 100 == 5) {
		g_autofree char *text = server_text(c->smtp);

		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: authentication as %s refused: %d %s", c->where, ep->user,
		    c->smtp->response_code, text);
	} else {
		/* Nothing reached the server: cyrus-sasl has no PLAIN plugin. */
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: AUTH PLAIN failed locally (%s); is libsasl2-modules installed?",
		    c->where, mailsmtp_strerror(r));
	}
	return FALSE;
}

smtp_conn *
smtp_open(const endpoint *ep, const char *helo_name, GError **error)
{
	smtp_conn *c;
	char *token = NULL;
	int timeout;
	gboolean ok;

	if (ep == NULL || ep->host == NULL || ep->port <= 0 || ep->port > 65535) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "smtp: no relay host or port");
		return NULL;
	}
	if (!cg_protocol_safe(helo_name, 253)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "smtp %s: EHLO name \"%s\" is not a valid host name", ep->host,
		    helo_name != NULL ? helo_name : "");
		return NULL;
	}
	/* Before connecting: a token that cannot be had means no AUTH attempt. */
	if (ep->auth == AUTH_OAUTH2 && ep->user != NULL &&
	    (token = oauth_access_token(ep, error)) == NULL) {
		g_prefix_error(error, "smtp %s:%d: ", ep->host, ep->port);
		return NULL;
	}
	timeout = ep->timeout > 0 ? ep->timeout : SMTP_DEFAULT_TIMEOUT;
	/* Plaintext reads ignore the session timeout (libs.md §3.6). */
	if (mailstream_network_delay.tv_sec == 0 || mailstream_network_delay.tv_sec > timeout) {
		mailstream_network_delay.tv_sec = timeout;
		mailstream_network_delay.tv_usec = 0;
	}

	c = g_new0(smtp_conn, 1);
	c->host = g_strdup(ep->host);
	c->where = strchr(ep->host, ':') != NULL ?
	    g_strdup_printf("smtp [%s]:%d", ep->host, ep->port) :
	    g_strdup_printf("smtp %s:%d", ep->host, ep->port);
	c->smtp = mailsmtp_new(0, NULL);
	if (c->smtp == NULL)
		g_error("mailsmtp_new: out of memory");
	mailsmtp_set_timeout(c->smtp, timeout);

	switch (ep->tls) {
	case TLS_IMPLICIT:
		ok = open_implicit(c, ep, helo_name, error);
		break;
	case TLS_STARTTLS:
		ok = open_starttls(c, ep, helo_name, error);
		break;
	case TLS_NONE:
		ok = open_plain(c, ep, helo_name, error);
		break;
	default:
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "%s: unknown TLS mode", c->where);
		ok = FALSE;
		break;
	}
	if (ok)
		ok = authenticate(c, ep, token, error);
	oauth_secret_free(token);
	if (!ok) {
		c->dead = TRUE;
		smtp_close(c);
		return NULL;
	}
	log_debug("%s: connected (%s)", c->where, c->tls ? "TLS verified" : "plaintext, loopback");
	return c;
}

static gboolean
transaction(smtp_conn *c, const char *env_from, const char *rcpt, const char *data,
    gsize len, GError **error)
{
	g_autofree char *step = NULL;
	gsize send_len = len;
	int r;

	if (c->smtp->smtp_max_msg_size != 0 && len > c->smtp->smtp_max_msg_size) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM,
		    "%s: message of %zu bytes exceeds the relay's SIZE limit of %zu",
		    c->where, (size_t)len, c->smtp->smtp_max_msg_size);
		return FALSE;
	}
	c->smtp->response_code = 0;
	r = mailesmtp_mail_size(c->smtp, env_from, 0, NULL, len);
	if (r != MAILSMTP_NO_ERROR) {
		step = g_strdup_printf("MAIL FROM <%s>", env_from);
		step_failed(c, step, r, error);
		return FALSE;
	}
	c->smtp->response_code = 0;
	r = mailesmtp_rcpt(c->smtp, rcpt, 0, NULL);
	if (r != MAILSMTP_NO_ERROR) {
		step = g_strdup_printf("RCPT TO <%s>", rcpt);
		step_failed(c, step, r, error);
		return FALSE;
	}
	c->smtp->response_code = 0;
	r = mailsmtp_data(c->smtp);
	if (r != MAILSMTP_NO_ERROR) {
		step_failed(c, "DATA", r, error);
		return FALSE;
	}
	/* libetpan appends CRLF "." CRLF itself; without this the message
	 * would grow an empty last line and differ from the spool file. */
	if (send_len >= 2 && data[send_len - 2] == '\r' && data[send_len - 1] == '\n')
		send_len -= 2;
	else if (send_len >= 1 && data[send_len - 1] == '\n')
		send_len -= 1;
	c->smtp->response_code = 0;
	r = mailsmtp_data_message(c->smtp, data, send_len);
	if (r != MAILSMTP_NO_ERROR) {
		step_failed(c, "end of DATA", r, error);
		return FALSE;
	}
	return TRUE;
}

/* Envelope and connection checks shared by both ways of sending. */
static gboolean
send_ready(smtp_conn *c, const char *env_from, const char *rcpt, GError **error)
{
	if (env_from == NULL || (*env_from != '\0' && !cg_address_valid(env_from))) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "%s: invalid envelope sender",
		    c->where);
		return FALSE;
	}
	if (!cg_address_valid(rcpt)) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "%s: invalid recipient address",
		    c->where);
		return FALSE;
	}
	if (!smtp_alive(c)) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "%s: connection is closed", c->where);
		return FALSE;
	}
	return TRUE;
}

static gboolean
send_bytes(smtp_conn *c, const char *env_from, const char *rcpt, const char *what,
    const char *data, gsize len, GError **error)
{
	if (transaction(c, env_from, rcpt, data, len, error)) {
		g_autofree char *text = server_text(c->smtp);

		log_debug("%s: %s -> <%s>: %s", c->where, what, rcpt, text);
		return TRUE;
	}
	/* Leave the connection ready for the next message, or mark it dead. */
	if (!c->dead && mailsmtp_reset(c->smtp) != MAILSMTP_NO_ERROR)
		c->dead = TRUE;
	return FALSE;
}

gboolean
smtp_send_data(smtp_conn *c, const char *env_from, const char *rcpt, const void *data,
    gsize len, GError **error)
{
	g_return_val_if_fail(c != NULL, FALSE);
	if (!send_ready(c, env_from, rcpt, error))
		return FALSE;
	if (data == NULL || len == 0 || len > SMTP_MAX_MESSAGE) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM,
		    "%s: a message of 1 to %d bytes is required", c->where, SMTP_MAX_MESSAGE);
		return FALSE;
	}
	return send_bytes(c, env_from, rcpt, "message", data, len, error);
}

gboolean
smtp_alive(smtp_conn *c)
{
	return c != NULL && !c->dead && c->smtp != NULL && c->smtp->stream != NULL;
}

void
smtp_close(smtp_conn *c)
{
	if (c == NULL)
		return;
	if (c->smtp != NULL) {
		if (smtp_alive(c)) {
			mailsmtp_quit(c->smtp);
		} else if (c->smtp->stream != NULL) {
			/* mailsmtp_free would QUIT on a dead stream and wait. */
			mailstream_close(c->smtp->stream);
			c->smtp->stream = NULL;
		}
		mailsmtp_free(c->smtp);
	}
	g_free(c->host);
	g_free(c->where);
	g_free(c);
}
