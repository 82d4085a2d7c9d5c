/*
 * imap.c - the IMAP source, on libetpan 1.9.4 (Debian 12).
 *
 * libetpan does the protocol; this file makes it safe to point at a
 * real server (docs: libs.md, "libetpan: IMAP"):
 *
 *  - TLS only.  Plaintext IMAP is refused outright, not just for LOGIN:
 *    on a plaintext stream an EOF inside a literal makes libetpan spin
 *    forever.  STARTTLS must be advertised, and bytes the server sent
 *    after its STARTTLS reply (injection before the handshake) end the
 *    session.  The certificate and host name are checked (tls.c) before
 *    LOGIN, and CAPABILITY is asked again after STARTTLS and after
 *    LOGIN, because libetpan keeps the stale pre-TLS list.
 *  - Timeouts are set before connecting (libetpan copies them into the
 *    stream at connect time only).
 *  - Bodies are streamed: a message-body handler writes each chunk to a
 *    spool file, and a message-attribute handler, called once per
 *    complete FETCH response (after which libetpan frees that
 *    response, so section pointers may be reused and cannot mark where
 *    a message starts), commits the file under the UID it names.  So
 *    memory is flat however large the message (15 MB peak RSS for a
 *    50 MB one), and libetpan never mallocs the literal size the
 *    server announces.
 *  - OAuth2 (auth = "oauth2") uses libetpan's AUTHENTICATE XOAUTH2
 *    (SASL-IR on one line, fine for the 2-3 KB tokens Microsoft issues).
 *    On a refusal the server sends a "+ <base64 JSON>" challenge that
 *    libetpan answers and drops; the logger keeps it for the message.
 *  - Folder names are checked and encoded to modified UTF-7 here,
 *    since libetpan sends them raw and 1.9.4 has no encoder.
 *  - After a stream or parse error the session is dead: it is marked so
 *    and never written to again (writing to a closed socket is what
 *    raised SIGPIPE), and imap_close() drops the stream before
 *    mailimap_free(), which would otherwise wait for a LOGOUT reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <libetpan/libetpan.h>

#include "cg.h"
#include "imap.h"
#include "log.h"
#include "oauth.h"
#include "tls.h"

#define IMAP_DEFAULT_TIMEOUT	60
#define IMAP_DEFAULT_BATCH	50
#define IMAP_MAX_WAIT		(28 * 60)	/* RFC 2177: re-IDLE before 29 min */
#define IMAP_FOLDER_MAX		512
#define IMAP_TEXT_MAX		300		/* server text quoted in errors */

struct imap_conn {
	mailimap	*imap;
	char		*label;		/* "user@host:port" */
	char		*host;
	int		 poll_interval;
	int		 fetch_batch;
	gboolean	 dead;		/* stream or parse error seen */
	gboolean	 idle_broken;	/* IDLE refused: poll instead */
	GString		*auth_reply;	/* during AUTHENTICATE: what the server said */
};

static void imap_err(imap_conn *c, GError **error, int code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static void
imap_err(imap_conn *c, GError **error, int code, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, CG_ERROR, code, "imap %s: %s", c->label, msg);
}

/* The server's last response text, printable and bounded. */
static char *
imap_server_text(imap_conn *c)
{
	const char *t = c->imap != NULL ? c->imap->imap_response : NULL;
	GString *s;
	size_t i;

	if (t == NULL || *t == '\0')
		return g_strdup("(no text)");
	s = g_string_new(NULL);
	for (i = 0; t[i] != '\0' && i < IMAP_TEXT_MAX; i++) {
		unsigned char ch = (unsigned char)t[i];

		g_string_append_c(s, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
	}
	if (!g_utf8_validate(s->str, s->len, NULL)) {
		char *v = g_utf8_make_valid(s->str, s->len);

		g_string_free(s, TRUE);
		return v;
	}
	return g_string_free(s, FALSE);
}

/*
 * Turn a libetpan result into a GError.  Stream and parse errors (and
 * a body handler abort, reported as MEMORY) leave the session
 * unusable; anything else is the server saying NO or BAD.
 */
static void
imap_fail(imap_conn *c, int r, int refused_code, const char *what, GError **error)
{
	switch (r) {
	case MAILIMAP_ERROR_STREAM:
		c->dead = TRUE;
		imap_err(c, error, CG_ERROR_TEMP, "%s: connection lost or timed out", what);
		break;
	case MAILIMAP_ERROR_PARSE:
		c->dead = TRUE;
		imap_err(c, error, CG_ERROR_TEMP, "%s: unparsable server response", what);
		break;
	case MAILIMAP_ERROR_MEMORY:
		c->dead = TRUE;
		imap_err(c, error, CG_ERROR_TEMP, "%s: aborted (out of memory)", what);
		break;
	case MAILIMAP_ERROR_BAD_STATE:
		imap_err(c, error, CG_ERROR_TEMP, "%s: wrong session state", what);
		break;
	default: {
		g_autofree char *text = imap_server_text(c);

		imap_err(c, error, refused_code, "%s refused: %s", what, text);
		break;
	}
	}
}

static gboolean
imap_usable(imap_conn *c, GError **error)
{
	if (c == NULL || c->imap == NULL || c->imap->imap_stream == NULL || c->dead) {
		if (c != NULL)
			imap_err(c, error, CG_ERROR_TEMP, "connection is closed; reconnect");
		else
			g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "imap: no connection");
		return FALSE;
	}
	return TRUE;
}

static gboolean
imap_selected(imap_conn *c, GError **error)
{
	if (!imap_usable(c, error))
		return FALSE;
	if (c->imap->imap_state != MAILIMAP_STATE_SELECTED ||
	    c->imap->imap_selection_info == NULL) {
		imap_err(c, error, CG_ERROR_TEMP, "no folder selected");
		return FALSE;
	}
	return TRUE;
}

/* ---- folder names: RFC 3501 5.1.3 modified UTF-7 ---- */

static void
mutf7_flush(GString *out, const guint8 *u16, size_t n)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
	guint32 bits = 0;
	int nbits = 0;
	size_t i;

	if (n == 0)
		return;
	g_string_append_c(out, '&');
	for (i = 0; i < n; i++) {
		bits = (bits << 8) | u16[i];
		nbits += 8;
		while (nbits >= 6) {
			nbits -= 6;
			g_string_append_c(out, b64[(bits >> nbits) & 0x3f]);
		}
	}
	if (nbits > 0)
		g_string_append_c(out, b64[(bits << (6 - nbits)) & 0x3f]);
	g_string_append_c(out, '-');
}

char *
imap_folder_encode(const char *folder, GError **error)
{
	g_autoptr(GByteArray) run = NULL;
	GString *out;
	const char *p;

	if (folder == NULL || !cg_protocol_safe(folder, IMAP_FOLDER_MAX)) {
		g_autofree char *shown = folder != NULL ?
		    g_strescape(folder, NULL) : g_strdup("(null)");

		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "folder name \"%.80s\" refused: empty, longer than %d bytes, or "
		    "holds control characters, whitespace, '<' or '>'",
		    shown, IMAP_FOLDER_MAX);
		return NULL;
	}
	if (!g_utf8_validate(folder, -1, NULL)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "folder name refused: not valid UTF-8");
		return NULL;
	}
	run = g_byte_array_new();
	out = g_string_new(NULL);
	for (p = folder; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar ch = g_utf8_get_char(p);

		if (ch >= 0x20 && ch <= 0x7e) {
			mutf7_flush(out, run->data, run->len);
			g_byte_array_set_size(run, 0);
			g_string_append(out, ch == '&' ? "&-" : (char[]){ (char)ch, 0 });
			continue;
		}
		if (ch > 0xffff) {
			gunichar v = ch - 0x10000;
			guint16 hi = 0xd800 | (v >> 10), lo = 0xdc00 | (v & 0x3ff);
			guint8 b[4] = { hi >> 8, hi & 0xff, lo >> 8, lo & 0xff };

			g_byte_array_append(run, b, 4);
		} else {
			guint8 b[2] = { ch >> 8, ch & 0xff };

			g_byte_array_append(run, b, 2);
		}
	}
	mutf7_flush(out, run->data, run->len);
	return g_string_free(out, FALSE);
}

static char *
imap_folder(imap_conn *c, const char *folder, GError **error)
{
	g_autoptr(GError) err = NULL;
	char *enc = imap_folder_encode(folder, &err);

	if (enc == NULL)
		imap_err(c, error, CG_ERROR_CONFIG, "%s", err->message);
	return enc;
}

/* ---- connecting ---- */

/*
 * libetpan waits with select(), which aborts the process for an fd at
 * or above FD_SETSIZE.  The socket it creates gets the lowest free
 * number, so look at that first.
 */
static gboolean
imap_fd_room(imap_conn *c, GError **error)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		imap_err(c, error, CG_ERROR_TEMP, "cannot open a file descriptor: %s",
		    g_strerror(errno));
		return FALSE;
	}
	close(fd);
	if (fd >= FD_SETSIZE - 1) {
		imap_err(c, error, CG_ERROR_TEMP,
		    "lowest free file descriptor is %d: libetpan cannot wait on "
		    "descriptors >= %d; too many files open", fd, FD_SETSIZE);
		return FALSE;
	}
	return TRUE;
}

/*
 * Protocol trace at -vv.  Only what we send, and never the
 * LOGIN line (libetpan marks it DATA_SENT_PRIVATE): received data
 * would include message bodies, which are never logged.
 */
static void
imap_logger(mailimap *s, int log_type, const char *str, size_t size, void *ctx)
{
	imap_conn *c = ctx;
	g_autofree char *line = NULL;

	/* XOAUTH2 failures come as a "+ <base64 JSON>" challenge that
	 * libetpan answers and drops; keep it for the error message. */
	if (c->auth_reply != NULL && log_type == MAILSTREAM_LOG_TYPE_DATA_RECEIVED &&
	    c->auth_reply->len < 2048)
		g_string_append_len(c->auth_reply, str, MIN(size, 2048 - c->auth_reply->len));
	if (log_get_verbose() < 2)
		return;
	switch (log_type) {
	case MAILSTREAM_LOG_TYPE_DATA_SENT:
		while (size > 0 && (str[size - 1] == '\n' || str[size - 1] == '\r'))
			size--;
		line = g_strndup(str, MIN(size, 200));
		g_strdelimit(line, "\r\n\t", ' ');
		log_debug("imap %s: C: %s", c->label, line);
		break;
	case MAILSTREAM_LOG_TYPE_ERROR_PARSE:
	case MAILSTREAM_LOG_TYPE_ERROR_RECEIVED:
	case MAILSTREAM_LOG_TYPE_ERROR_SENT:
		log_debug("imap %s: stream error (type %d)", c->label, log_type);
		break;
	default:
		break;
	}
}

/*
 * A dead peer must not kill the daemon: libetpan and GnuTLS write
 * without MSG_NOSIGNAL.  main() ignores SIGPIPE; this covers other
 * callers (tools, tests) that forgot.
 */
static void
imap_ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
}

static gboolean
imap_refresh_caps(imap_conn *c, const char *when, GError **error)
{
	struct mailimap_capability_data *cap = NULL;
	int r = mailimap_capability(c->imap, &cap);

	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("CAPABILITY %s", when);

		imap_fail(c, r, CG_ERROR_TEMP, what, error);
		return FALSE;
	}
	mailimap_capability_data_free(cap);
	return TRUE;
}

static gboolean
imap_connect_error(imap_conn *c, int r, GError **error)
{
	switch (r) {
	case MAILIMAP_ERROR_CONNECTION_REFUSED:
		imap_err(c, error, CG_ERROR_TEMP, "cannot connect (refused, unreachable "
		    "or unknown host)");
		break;
	case MAILIMAP_ERROR_SSL:
		imap_err(c, error, CG_ERROR_TEMP, "TLS handshake failed (is this a TLS port?)");
		break;
	case MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION:
		imap_err(c, error, CG_ERROR_TEMP, "server refused the connection (BYE)");
		break;
	default:
		imap_fail(c, r, CG_ERROR_TEMP, "connect", error);
		break;
	}
	c->dead = TRUE;
	return FALSE;
}

static gboolean
imap_starttls(imap_conn *c, GError **error)
{
	int r;

	if (c->imap->imap_connection_info == NULL ||
	    c->imap->imap_connection_info->imap_capability == NULL) {
		if (!imap_refresh_caps(c, "before STARTTLS", error))
			return FALSE;
	}
	if (!mailimap_has_extension(c->imap, "STARTTLS")) {
		imap_err(c, error, CG_ERROR_CONFIG,
		    "server does not offer STARTTLS; refusing to log in over plaintext");
		c->dead = TRUE;
		return FALSE;
	}
	r = mailimap_socket_starttls_with_callback(c->imap, tls_sni_callback, c->host);
	/* Bytes already buffered were sent in plaintext before the
	 * handshake and would be read as if protected (CVE-2020-15953).
	 * Debian's 1.9.4 carries the upstream check, which fails with
	 * MAILIMAP_ERROR_STARTTLS; the test below covers builds without. */
	if (c->imap->imap_stream != NULL && c->imap->imap_stream->read_buffer_len > 0) {
		imap_err(c, error, CG_ERROR_CONFIG, "server sent data after its STARTTLS "
		    "reply (injection attempt?); refusing");
		c->dead = TRUE;
		return FALSE;
	}
	if (r != MAILIMAP_NO_ERROR) {
		if (r == MAILIMAP_ERROR_STREAM && c->imap->imap_response == NULL)
			imap_err(c, error, CG_ERROR_TEMP, "STARTTLS failed: TLS handshake "
			    "failed or connection lost");
		else
			imap_fail(c, r, CG_ERROR_TEMP, "STARTTLS", error);
		c->dead = TRUE;
		return FALSE;
	}
	return TRUE;
}

/* The XOAUTH2 challenge in what the server sent, described, or NULL. */
static char *
imap_oauth_challenge(imap_conn *c)
{
	g_auto(GStrv) lines = NULL;
	guint i;

	if (c->auth_reply == NULL)
		return NULL;
	lines = g_strsplit(c->auth_reply->str, "\n", -1);
	for (i = 0; lines[i] != NULL; i++)
		if (g_str_has_prefix(lines[i], "+ "))
			return oauth_challenge_describe(lines[i] + 2);
	return NULL;
}

/*
 * AUTHENTICATE XOAUTH2 with the token (RFC 7628's predecessor, as Gmail
 * and Microsoft 365 speak it).  A refusal makes the token forgotten, so
 * the next connection fetches a new one.
 */
static gboolean
imap_oauth2(imap_conn *c, const endpoint *ep, const char *token, GError **error)
{
	g_autofree char *text = NULL, *challenge = NULL;
	int r;

	if (!mailimap_has_xoauth2(c->imap)) {
		imap_err(c, error, CG_ERROR_CONFIG, "server does not offer AUTH=XOAUTH2; "
		    "cannot log in with auth = \"oauth2\"");
		return FALSE;
	}
	c->auth_reply = g_string_new(NULL);
	r = mailimap_oauth2_authenticate(c->imap, ep->user, token);
	challenge = imap_oauth_challenge(c);
	g_string_free(c->auth_reply, TRUE);
	c->auth_reply = NULL;
	if (r == MAILIMAP_ERROR_LOGIN) {
		text = imap_server_text(c);
		oauth_token_refused(ep);
		imap_err(c, error, CG_ERROR_CONFIG, "server refused the OAuth2 token: %s%s%s%s",
		    text, challenge ? " (" : "", challenge ? challenge : "", challenge ? ")" : "");
		return FALSE;
	}
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "AUTHENTICATE XOAUTH2", error);
		return FALSE;
	}
	return imap_refresh_caps(c, "after AUTHENTICATE", error);
}

static gboolean
imap_login(imap_conn *c, const endpoint *ep, GError **error)
{
	int r;

	if (mailimap_has_extension(c->imap, "LOGINDISABLED")) {
		imap_err(c, error, CG_ERROR_CONFIG, "server announces LOGINDISABLED even "
		    "over TLS; cannot log in");
		return FALSE;
	}
	r = mailimap_login(c->imap, ep->user, ep->password);
	if (r == MAILIMAP_ERROR_LOGIN) {
		g_autofree char *text = imap_server_text(c);

		imap_err(c, error, CG_ERROR_CONFIG, "login refused: %s", text);
		return FALSE;
	}
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "LOGIN", error);
		return FALSE;
	}
	/* Servers announce MOVE, UIDPLUS and more only after login. */
	return imap_refresh_caps(c, "after LOGIN", error);
}

static gboolean
imap_check_account(imap_conn *c, const imap_account *acct, GError **error)
{
	const endpoint *ep = &acct->ep;

	if (ep->tls != TLS_IMPLICIT && ep->tls != TLS_STARTTLS) {
		imap_err(c, error, CG_ERROR_CONFIG, "plaintext IMAP is not supported; "
		    "use tls implicit (993) or starttls (143)");
		return FALSE;
	}
	if (ep->host == NULL || *ep->host == '\0' || ep->host[0] == '/' ||
	    ep->port <= 0 || ep->port > 65535) {
		imap_err(c, error, CG_ERROR_CONFIG, "bad host or port");
		return FALSE;
	}
	if (ep->user == NULL || (ep->auth != AUTH_OAUTH2 && ep->password == NULL)) {
		imap_err(c, error, CG_ERROR_CONFIG, "no user or password configured");
		return FALSE;
	}
	return TRUE;
}

static char *
imap_label(const endpoint *ep)
{
	const char *host = ep->host != NULL ? ep->host : "?";
	const char *user = ep->user != NULL ? ep->user : "?";

	if (strchr(host, ':') != NULL)
		return g_strdup_printf("%s@[%s]:%d", user, host, ep->port);
	return g_strdup_printf("%s@%s:%d", user, host, ep->port);
}

imap_conn *
imap_open(const imap_account *acct, GError **error)
{
	const endpoint *ep = &acct->ep;
	imap_conn *c = g_new0(imap_conn, 1);
	int timeout = ep->timeout > 0 ? ep->timeout : IMAP_DEFAULT_TIMEOUT;
	char *token = NULL;
	int r;

	c->label = imap_label(ep);
	c->host = g_strdup(ep->host);
	c->poll_interval = acct->poll_interval;
	c->fetch_batch = acct->fetch_batch > 0 ? acct->fetch_batch : IMAP_DEFAULT_BATCH;
	if (!imap_check_account(c, acct, error) || !imap_fd_room(c, error))
		goto fail;
	/* Before connecting: a token that cannot be had means no login attempt. */
	if (ep->auth == AUTH_OAUTH2 && (token = oauth_access_token(ep, error)) == NULL) {
		g_prefix_error(error, "imap %s: ", c->label);
		goto fail;
	}

	imap_ignore_sigpipe();
	/* Paths that read the stream timeout before it is set fall back to
	 * this global; lower libetpan's 300 s default once, leave any value
	 * another module chose. */
	if (mailstream_network_delay.tv_sec == 300)
		mailstream_network_delay.tv_sec = timeout;

	c->imap = mailimap_new(0, NULL);
	mailimap_set_timeout(c->imap, timeout);	/* before connect, or ignored */
	mailimap_set_logger(c->imap, imap_logger, c);

	if (ep->tls == TLS_IMPLICIT)
		r = mailimap_ssl_connect_with_callback(c->imap, ep->host,
		    (uint16_t)ep->port, tls_sni_callback, c->host);
	else
		r = mailimap_socket_connect(c->imap, ep->host, (uint16_t)ep->port);
	if (r == MAILIMAP_NO_ERROR_AUTHENTICATED) {
		imap_err(c, error, CG_ERROR_CONFIG, "server sent PREAUTH; refusing a "
		    "session we did not authenticate");
		goto fail;
	}
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		imap_connect_error(c, r, error);
		goto fail;
	}
	if (ep->tls == TLS_STARTTLS && !imap_starttls(c, error))
		goto fail;
	if (!tls_verify_stream(c->imap->imap_stream, ep->host, ep->ca_file,
	    ep->system_ca, error)) {
		g_prefix_error(error, "imap %s: ", c->label);
		goto fail;
	}
	/* The pre-TLS list may have been forged or is simply stale. */
	if (ep->tls == TLS_STARTTLS && !imap_refresh_caps(c, "after STARTTLS", error))
		goto fail;
	if (token != NULL ? !imap_oauth2(c, ep, token, error) : !imap_login(c, ep, error))
		goto fail;
	g_clear_pointer(&token, oauth_secret_free);
	log_debug("imap %s: logged in (IDLE %s, MOVE %s, UIDPLUS %s)", c->label,
	    mailimap_has_idle(c->imap) ? "yes" : "no",
	    mailimap_has_extension(c->imap, "MOVE") ? "yes" : "no",
	    mailimap_has_uidplus(c->imap) ? "yes" : "no");
	return c;
fail:
	oauth_secret_free(token);
	imap_close(c);
	return NULL;
}

void
imap_close(imap_conn *c)
{
	if (c == NULL)
		return;
	if (c->imap != NULL) {
		/* Without a stream mailimap_free() skips its blocking LOGOUT. */
		if (c->imap->imap_stream != NULL) {
			mailstream_close(c->imap->imap_stream);
			c->imap->imap_stream = NULL;
		}
		mailimap_free(c->imap);
	}
	g_free(c->label);
	g_free(c->host);
	g_free(c);
}

/* ---- folders ---- */

/*
 * libetpan records an untagged EXISTS in the selection info whatever
 * command it came with, and mailimap_idle() clears it.  Mail that
 * arrives after a listing is announced in the response to the FETCH or
 * MOVE that follows, and the server does not announce it again in IDLE,
 * so imap_wait() checks first.  A SELECT or a listing sees everything
 * announced so far, so each starts afresh.  (RECENT alone is no news:
 * the count also changes when our own MOVE takes messages away.)
 */
static void
imap_forget_news(imap_conn *c)
{
	c->imap->imap_selection_info->sel_has_exists = 0;
}

static gboolean
imap_has_news(imap_conn *c)
{
	return c->imap->imap_selection_info->sel_has_exists;
}

gboolean
imap_select(imap_conn *c, const char *folder, guint32 *uidvalidity_r,
    guint32 *uidnext_r, GError **error)
{
	g_autofree char *mb = NULL;
	int r;

	if (!imap_usable(c, error) || (mb = imap_folder(c, folder, error)) == NULL)
		return FALSE;
	r = mailimap_select(c->imap, mb);
	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("SELECT %s", folder);

		imap_fail(c, r, CG_ERROR_CONFIG, what, error);
		return FALSE;
	}
	if (c->imap->imap_selection_info == NULL) {
		imap_err(c, error, CG_ERROR_TEMP, "SELECT %s: no selection data", folder);
		return FALSE;
	}
	imap_forget_news(c);
	if (uidvalidity_r != NULL)
		*uidvalidity_r = c->imap->imap_selection_info->sel_uidvalidity;
	if (uidnext_r != NULL)
		*uidnext_r = c->imap->imap_selection_info->sel_uidnext;
	return TRUE;
}

static gboolean
imap_folder_exists(imap_conn *c, const char *mb, gboolean *exists_r, GError **error)
{
	clist *list = NULL;
	clistiter *it;
	int r;

	*exists_r = FALSE;
	r = mailimap_list(c->imap, "", mb, &list);
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "LIST", error);
		return FALSE;
	}
	/* The name may hold LIST wildcards: compare, don't just count. */
	for (it = clist_begin(list); it != NULL; it = clist_next(it)) {
		struct mailimap_mailbox_list *ml = clist_content(it);

		if (ml->mb_name != NULL && (strcmp(ml->mb_name, mb) == 0 ||
		    (g_ascii_strcasecmp(mb, "INBOX") == 0 &&
		    g_ascii_strcasecmp(ml->mb_name, "INBOX") == 0)))
			*exists_r = TRUE;
	}
	mailimap_list_result_free(list);
	return TRUE;
}

gboolean
imap_ensure_folder(imap_conn *c, const char *folder, GError **error)
{
	g_autofree char *mb = NULL;
	gboolean exists;
	int r;

	if (!imap_usable(c, error) || (mb = imap_folder(c, folder, error)) == NULL)
		return FALSE;
	if (!imap_folder_exists(c, mb, &exists, error))
		return FALSE;
	if (exists)
		return TRUE;
	r = mailimap_create(c->imap, mb);
	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("CREATE %s", folder);

		imap_fail(c, r, CG_ERROR_CONFIG, what, error);
		return FALSE;
	}
	log_info("imap %s: created folder %s", c->label, folder);
	return TRUE;
}

/* ---- listing ---- */

static gint
imap_uid_cmp(gconstpointer a, gconstpointer b)
{
	guint32 x = ((const imap_uid *)a)->uid, y = ((const imap_uid *)b)->uid;

	return x < y ? -1 : x > y;
}

static void
imap_msg_att_uid_size(struct mailimap_msg_att *att, guint32 *uid_r, gint64 *size_r)
{
	clistiter *it;

	for (it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		if (item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
			*uid_r = item->att_data.att_static->att_data.att_uid;
		else if (item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE)
			*size_r = item->att_data.att_static->att_data.att_rfc822_size;
	}
}

GArray *
imap_list_from(imap_conn *c, guint32 min_uid, GError **error)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	clist *list = NULL;
	clistiter *it;
	GArray *out;
	int r;

	if (!imap_selected(c, error))
		return NULL;
	imap_forget_news(c);
	out = g_array_new(FALSE, FALSE, sizeof(imap_uid));
	/* "n:*" on an empty folder is an error on some servers. */
	if (c->imap->imap_selection_info->sel_exists == 0)
		return out;
	if (min_uid == 0)
		min_uid = 1;
	set = mailimap_set_new_interval(min_uid, 0);
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
	r = mailimap_uid_fetch(c->imap, set, ft, &list);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "UID FETCH (list)", error);
		g_array_free(out, TRUE);
		return NULL;
	}
	for (it = clist_begin(list); it != NULL; it = clist_next(it)) {
		imap_uid u = { 0, -1 };

		imap_msg_att_uid_size(clist_content(it), &u.uid, &u.size);
		/* "n:*" always matches the highest UID, even below n. */
		if (u.uid >= min_uid)
			g_array_append_val(out, u);
	}
	mailimap_fetch_list_free(list);
	g_array_sort(out, imap_uid_cmp);
	return out;
}

/* ---- fetching ---- */

typedef struct {
	imap_conn	*c;
	spool		*sp;
	spool_tmp	*t;		/* the body being received, if any */
	const guint32	*want;		/* this batch, ascending */
	guint		 nwant;
	GArray		*out;		/* imap_fetched */
	GHashTable	*seen;		/* UIDs already committed */
	GError		*error;		/* first spool error; aborts the fetch */
	gboolean	 headers_only;	/* BODY.PEEK[HEADER]: mail over the size limit */
} fetch_ctx;

static bool
imap_body_chunk(int att_type, struct mailimap_msg_att_body_section *section,
    const char *bytes, size_t len, void *data)
{
	fetch_ctx *fc = data;

	if (fc->error != NULL)
		return false;
	if (fc->t == NULL && (fc->t = spool_tmp_new(fc->sp, &fc->error)) == NULL)
		return false;
	if (!spool_tmp_write(fc->t, bytes, len, &fc->error)) {
		g_clear_pointer(&fc->t, spool_tmp_abort);
		return false;
	}
	return true;
}

static gboolean
imap_uid_wanted(const fetch_ctx *fc, guint32 uid)
{
	guint lo = 0, hi = fc->nwant;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;

		if (fc->want[mid] == uid)
			return TRUE;
		if (fc->want[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return FALSE;
}

static struct mailimap_msg_att_body_section *
imap_msg_att_body(struct mailimap_msg_att *att)
{
	clistiter *it;

	for (it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
		    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_BODY_SECTION)
			return item->att_data.att_static->att_data.att_body_section;
	}
	return NULL;
}

static void
imap_commit_body(fetch_ctx *fc, guint32 uid, struct mailimap_msg_att_body_section *sec)
{
	imap_fetched f = { uid, NULL, 0 };

	/* A body sent as a quoted string bypasses the chunk handler; a
	 * literal {0} calls it never.  Both still make a (small) file. */
	if (fc->t == NULL && (fc->t = spool_tmp_new(fc->sp, &fc->error)) == NULL)
		return;
	if (sec->sec_length > 0 && spool_tmp_size(fc->t) == 0 &&
	    !spool_tmp_write(fc->t, sec->sec_body_part, sec->sec_length, &fc->error)) {
		g_clear_pointer(&fc->t, spool_tmp_abort);
		return;
	}
	f.size = spool_tmp_size(fc->t);
	f.digest = spool_tmp_commit(g_steal_pointer(&fc->t), SPOOL_RAW, &fc->error);
	if (f.digest == NULL)
		return;
	g_array_append_val(fc->out, f);
	g_hash_table_add(fc->seen, GUINT_TO_POINTER(uid));
}

/* Called once per complete FETCH response; libetpan frees att after. */
static void
imap_msg_att_done(struct mailimap_msg_att *att, void *data)
{
	fetch_ctx *fc = data;
	struct mailimap_msg_att_body_section *sec = imap_msg_att_body(att);
	guint32 uid = 0;
	gint64 size = -1;

	imap_msg_att_uid_size(att, &uid, &size);
	if (fc->error != NULL || sec == NULL) {
		/* a flag update or the like, not one of ours */
		g_clear_pointer(&fc->t, spool_tmp_abort);
		return;
	}
	if (uid == 0 || !imap_uid_wanted(fc, uid) ||
	    g_hash_table_contains(fc->seen, GUINT_TO_POINTER(uid))) {
		log_warnx("imap %s: uid %u: unexpected or repeated FETCH body; ignored",
		    fc->c->label, uid);
		g_clear_pointer(&fc->t, spool_tmp_abort);
		return;
	}
	if (sec->sec_body_part == NULL) {
		log_warnx("imap %s: uid %u: server sent BODY[] NIL; skipped",
		    fc->c->label, uid);
		g_clear_pointer(&fc->t, spool_tmp_abort);
		return;
	}
	imap_commit_body(fc, uid, sec);
}

static struct mailimap_set *
imap_set_from(const guint32 *uids, guint n)
{
	struct mailimap_set *set = mailimap_set_new_empty();
	guint i = 0;

	while (i < n) {
		guint j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		mailimap_set_add_interval(set, uids[i], uids[j]);
		i = j + 1;
	}
	return set;
}

static gint
guint32_cmp(gconstpointer a, gconstpointer b)
{
	guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

	return x < y ? -1 : x > y;
}

/* Sorted, without 0 and duplicates; newly allocated, count in *n_r. */
static guint32 *
imap_uids_clean(const guint32 *uids, guint n, guint *n_r)
{
	guint32 *v = g_new(guint32, n > 0 ? n : 1);
	guint i, k = 0;

	for (i = 0; i < n; i++)
		if (uids[i] != 0)
			v[k++] = uids[i];
	qsort(v, k, sizeof(*v), guint32_cmp);
	for (i = 0, n = k, k = 0; i < n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	*n_r = k;
	return v;
}

static void
imap_progress_noop(size_t current, size_t maximum, void *data)
{
}

static gboolean
imap_fetch_batch(imap_conn *c, fetch_ctx *fc, GError **error)
{
	struct mailimap_fetch_type *ft;
	struct mailimap_set *set;
	clist *list = NULL;
	int r;

	set = imap_set_from(fc->want, fc->nwant);
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_body_peek_section(fc->headers_only ?
	    mailimap_section_new_header() : mailimap_section_new(NULL)));

	/*
	 * libetpan 1.9.4 hands the message-attribute handler to its parser
	 * only while a progress callback is set (mailimap_parse_response):
	 * without one, every response piles up in the fetch list.
	 */
	mailimap_set_progress_callback(c->imap, imap_progress_noop, NULL, NULL);
	mailimap_set_msg_body_handler(c->imap, imap_body_chunk, fc);
	mailimap_set_msg_att_handler(c->imap, imap_msg_att_done, fc);
	r = mailimap_uid_fetch(c->imap, set, ft, &list);
	/* Other commands' FETCH responses (IDLE, NOOP) must not land here. */
	mailimap_set_msg_body_handler(c->imap, NULL, NULL);
	mailimap_set_msg_att_handler(c->imap, NULL, NULL);
	mailimap_set_progress_callback(c->imap, NULL, NULL, NULL);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r == MAILIMAP_NO_ERROR)
		mailimap_fetch_list_free(list);
	g_clear_pointer(&fc->t, spool_tmp_abort);	/* a body cut short */

	if (fc->error != NULL) {
		/* The handler stopped the parser mid-literal: out of sync. */
		c->dead = TRUE;
		imap_err(c, error, fc->error->code, "UID FETCH: %s", fc->error->message);
		g_clear_error(&fc->error);
		return FALSE;
	}
	if (r == MAILIMAP_ERROR_UID_FETCH) {
		/* NO: some messages may be gone; keep what arrived. */
		g_autofree char *text = imap_server_text(c);

		log_warnx("imap %s: UID FETCH partly refused: %s", c->label, text);
		return TRUE;
	}
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "UID FETCH", error);
		return FALSE;
	}
	return TRUE;
}

static void
imap_fetched_clear(gpointer p)
{
	imap_fetched *f = p;

	g_free(f->digest);
}

static GArray *
imap_fetch_section(imap_conn *c, spool *sp, const guint32 *uids, guint n,
    gboolean headers_only, GError **error)
{
	g_autofree guint32 *want = NULL;
	fetch_ctx fc = { 0 };
	guint nwant, i;

	if (!imap_selected(c, error))
		return NULL;
	want = imap_uids_clean(uids, n, &nwant);
	fc.c = c;
	fc.sp = sp;
	fc.headers_only = headers_only;
	fc.out = g_array_new(FALSE, FALSE, sizeof(imap_fetched));
	g_array_set_clear_func(fc.out, imap_fetched_clear);
	fc.seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (i = 0; i < nwant; i += (guint)c->fetch_batch) {
		fc.want = want + i;
		fc.nwant = MIN((guint)c->fetch_batch, nwant - i);
		if (!imap_fetch_batch(c, &fc, error)) {
			g_hash_table_destroy(fc.seen);
			imap_fetched_array_free(fc.out);
			return NULL;
		}
	}
	g_hash_table_destroy(fc.seen);
	return fc.out;
}

GArray *
imap_fetch(imap_conn *c, spool *sp, const guint32 *uids, guint n, GError **error)
{
	return imap_fetch_section(c, sp, uids, n, FALSE, error);
}

GArray *
imap_fetch_headers(imap_conn *c, spool *sp, const guint32 *uids, guint n, GError **error)
{
	return imap_fetch_section(c, sp, uids, n, TRUE, error);
}

void
imap_fetched_array_free(GArray *a)
{
	if (a != NULL)
		g_array_free(a, TRUE);
}

/* ---- moving ---- */

static gboolean
imap_store_flag(imap_conn *c, struct mailimap_set *set, struct mailimap_flag *flag,
    GError **error)
{
	struct mailimap_flag_list *fl = mailimap_flag_list_new_empty();
	struct mailimap_store_att_flags *sf;
	int r;

	mailimap_flag_list_add(fl, flag);
	sf = mailimap_store_att_flags_new_add_flags_silent(fl);
	r = mailimap_uid_store(c->imap, set, sf);
	mailimap_store_att_flags_free(sf);
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "UID STORE", error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
imap_copy_delete(imap_conn *c, struct mailimap_set *set, const char *mb,
    const char *folder, GError **error)
{
	int r = mailimap_uid_copy(c->imap, set, mb);

	if (r != MAILIMAP_NO_ERROR) {
		g_autofree char *what = g_strdup_printf("UID COPY to %s", folder);

		imap_fail(c, r, CG_ERROR_TEMP, what, error);
		return FALSE;
	}
	if (!mailimap_has_uidplus(c->imap)) {
		/* Plain EXPUNGE would remove every \Deleted message,
		 * including other clients' ones. */
		log_warnx("imap %s: server lacks MOVE and UIDPLUS: copied to %s and "
		    "flagged \\Seen, original left in place (not expunged)",
		    c->label, folder);
		return imap_store_flag(c, set, mailimap_flag_new_seen(), error);
	}
	if (!imap_store_flag(c, set, mailimap_flag_new_deleted(), error))
		return FALSE;
	r = mailimap_uid_expunge(c->imap, set);
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "UID EXPUNGE", error);
		return FALSE;
	}
	return TRUE;
}

gboolean
imap_move(imap_conn *c, const guint32 *uids, guint n, const char *folder,
    GError **error)
{
	g_autofree guint32 *v = NULL;
	g_autofree char *mb = NULL;
	struct mailimap_set *set;
	gboolean ok = TRUE;
	guint nv;
	int r;

	if (!imap_selected(c, error) || (mb = imap_folder(c, folder, error)) == NULL)
		return FALSE;
	v = imap_uids_clean(uids, n, &nv);
	if (nv == 0)
		return TRUE;
	set = imap_set_from(v, nv);
	if (mailimap_has_extension(c->imap, "MOVE")) {
		r = mailimap_uid_move(c->imap, set, mb);
		if (r != MAILIMAP_NO_ERROR) {
			g_autofree char *what = g_strdup_printf("UID MOVE to %s", folder);

			imap_fail(c, r, CG_ERROR_TEMP, what, error);
			ok = FALSE;
		}
	} else
		ok = imap_copy_delete(c, set, mb, folder, error);
	mailimap_set_free(set);
	return ok;
}

/* ---- waiting ---- */

gboolean
imap_has_idle(imap_conn *c)
{
	return c != NULL && c->imap != NULL && !c->dead && !c->idle_broken &&
	    mailimap_has_idle(c->imap);
}

void
imap_disable_idle(imap_conn *c)
{
	if (c != NULL)
		c->idle_broken = TRUE;
}

/*
 * poll() until fd or wake_fd is readable or ms elapse; EINTR restarts
 * with the time left.  Returns bit 1 for fd, bit 2 for wake_fd, 0 on
 * timeout, -1 on error.
 */
static int
imap_poll(int fd, int wake_fd, gint64 ms)
{
	gint64 deadline = cg_mono_ms() + ms;
	struct pollfd pfd[2];

	for (;;) {
		gint64 left = deadline - cg_mono_ms();
		int nfd = 0, ifd = -1, iwake = -1, n, res = 0;

		if (left < 0)
			left = 0;
		if (fd >= 0) {
			pfd[nfd] = (struct pollfd){ .fd = fd, .events = POLLIN };
			ifd = nfd++;
		}
		if (wake_fd >= 0) {
			pfd[nfd] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
			iwake = nfd++;
		}
		n = poll(pfd, nfd, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (ifd >= 0 && pfd[ifd].revents != 0)
			res |= 1;
		if (iwake >= 0 && pfd[iwake].revents != 0)
			res |= 2;
		return res;
	}
}

static imap_wait_result
imap_wait_idle(imap_conn *c, int secs, int wake_fd, GError **error)
{
	struct mailimap_selection_info *si = c->imap->imap_selection_info;
	gboolean data = FALSE, woken = FALSE;
	int r, ready = 0;

	r = mailimap_idle(c->imap);
	if (r == MAILIMAP_ERROR_PARSE && mailimap_noop(c->imap) == MAILIMAP_NO_ERROR) {
		/* A tagged NO/BAD instead of "+ idling" (the session is still
		 * in step, NOOP worked): poll from now on. */
		c->idle_broken = TRUE;
		log_warnx("imap %s: IDLE refused; polling instead", c->label);
		return IMAP_WAIT_TIMEOUT;
	}
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "IDLE", error);
		return IMAP_WAIT_ERROR;
	}
	/* Data that came with "+ idling" is already buffered: poll() on
	 * the socket would sleep through it. */
	if (c->imap->imap_stream->read_buffer_len > 0)
		data = TRUE;
	else {
		ready = imap_poll(mailimap_idle_get_fd(c->imap), wake_fd,
		    (gint64)secs * 1000);
		if (ready < 0) {
			imap_err(c, error, CG_ERROR_TEMP, "poll failed: %s", g_strerror(errno));
			c->dead = TRUE;
			return IMAP_WAIT_ERROR;
		}
		data = (ready & 1) != 0;
		woken = (ready & 2) != 0;
	}
	r = mailimap_idle_done(c->imap);
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "IDLE DONE", error);
		return IMAP_WAIT_ERROR;
	}
	if (woken)
		return IMAP_WAIT_WOKEN;
	if (data || si->sel_has_exists || si->sel_has_recent)
		return IMAP_WAIT_NEWMAIL;
	return IMAP_WAIT_TIMEOUT;
}

static imap_wait_result
imap_wait_poll(imap_conn *c, int secs, int wake_fd, GError **error)
{
	struct mailimap_selection_info *si = c->imap->imap_selection_info;
	guint32 before = si->sel_exists;
	int ready, r;

	if (c->poll_interval > 0 && c->poll_interval < secs)
		secs = c->poll_interval;
	ready = imap_poll(-1, wake_fd, (gint64)secs * 1000);
	if (ready < 0) {
		imap_err(c, error, CG_ERROR_TEMP, "poll failed: %s", g_strerror(errno));
		return IMAP_WAIT_ERROR;
	}
	if (ready & 2)
		return IMAP_WAIT_WOKEN;
	si->sel_has_exists = 0;
	si->sel_has_recent = 0;
	r = mailimap_noop(c->imap);
	if (r != MAILIMAP_NO_ERROR) {
		imap_fail(c, r, CG_ERROR_TEMP, "NOOP", error);
		return IMAP_WAIT_ERROR;
	}
	if (si->sel_has_recent || si->sel_has_exists || si->sel_exists != before)
		return IMAP_WAIT_NEWMAIL;
	return IMAP_WAIT_TIMEOUT;
}

imap_wait_result
imap_wait(imap_conn *c, int secs, int wake_fd, GError **error)
{
	if (!imap_selected(c, error))
		return IMAP_WAIT_ERROR;
	if (secs <= 0)
		secs = 1;
	if (secs > IMAP_MAX_WAIT)
		secs = IMAP_MAX_WAIT;
	if (imap_has_news(c)) {
		imap_forget_news(c);
		return IMAP_WAIT_NEWMAIL;
	}
	if (imap_has_idle(c))
		return imap_wait_idle(c, secs, wake_fd, error);
	return imap_wait_poll(c, secs, wake_fd, error);
}
