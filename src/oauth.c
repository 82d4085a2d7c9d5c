/*
 * oauth.c - OAuth2 access tokens for XOAUTH2, from a command or a file.
 *
 * Why it looks like this:
 *  - casegate holds no client secret and speaks no OAuth2 flow.  Token
 *    endpoints, refresh tokens and consent differ between Microsoft and
 *    Google and change over time; a command the admin chooses (oauth2l,
 *    a small script, a sidecar writing a file) deals with them and
 *    hands over an access token.  That keeps the daemon small and its
 *    systemd sandbox free of outbound HTTPS.
 *  - The command runs without a shell: token_command is split like a
 *    shell word list (g_shell_parse_argv) but nothing expands it, so a
 *    config value cannot smuggle in a pipeline.  g_spawn_sync has no
 *    timeout, so the child is spawned with pipes and read with poll();
 *    it gets its own process group, which is killed as a whole when it
 *    runs over (a script's curl must not linger).
 *  - Expiry: the provider's expires_in is the contract (RFC 6749 says
 *    access tokens are opaque to clients); only without it is a JWT's
 *    exp claim used, then the configured token_lifetime.  A token is
 *    fetched anew when fewer than token_refresh seconds remain, so a
 *    login never goes out with a token about to lapse.  A failed
 *    refresh falls back to the cached token while it is still valid.
 *  - The cache is keyed by the token source (user, command or file),
 *    not by the endpoint's address: a reload builds a new config, and
 *    IMAP and SMTP sharing one command share one token.
 *  - Tokens are secrets: they are never logged, never quoted in an
 *    error, and every buffer that held one is wiped before it is freed.
 *  - A small JSON reader of its own: the daemon needs two members of a
 *    flat object, and output from a command is hostile input (depth
 *    and size limits, UTF-8 checked, duplicate keys refused).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cg.h"
#include "log.h"
#include "oauth.h"

#define JSON_MAX_DEPTH	32
#define STDERR_KEEP	4096
#define QUOTE_MAX	200

/* ---- small helpers ---- */

void
oauth_secret_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

static void
wipe_gstring(GString *s)
{
	if (s != NULL) {
		explicit_bzero(s->str, s->allocated_len);
		g_string_free(s, TRUE);
	}
}

void
oauth_token_free(oauth_token *t)
{
	if (t == NULL)
		return;
	oauth_secret_free(t->access_token);
	g_free(t);
}

static gint64 (*clock_fn)(void) = cg_now;

void
oauth_set_clock(gint64 (*now)(void))
{
	clock_fn = now != NULL ? now : cg_now;
}

/* "2026-11-29 18:04:05 UTC" for an epoch time. */
static char *
fmt_time(gint64 t)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);

	if (dt == NULL)
		return g_strdup_printf("%" G_GINT64_FORMAT, t);
	return g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC");
}

/* Printable, one line, bounded: for quoting other programs' text. */
static char *
printable(const char *s, gsize len)
{
	GString *out = g_string_new(NULL);
	gsize i;

	for (i = 0; i < len && out->len < QUOTE_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\t' || ch == '\r' || ch == '\n')
			ch = ' ';
		else if (ch < 0x20 || ch >= 0x7f)
			ch = '?';
		g_string_append_c(out, (char)ch);
	}
	g_strstrip(out->str);
	out->len = strlen(out->str);
	return g_string_free(out, FALSE);
}

/* ---- a minimal JSON reader: one flat object's scalar members ---- */

typedef enum { J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL, J_OBJECT, J_ARRAY } json_type;

typedef struct {
	json_type type;
	char	*text;		/* decoded string or number text; NULL for the rest */
} json_member;

typedef struct {
	const char *p, *end;
	int	 depth;
	const char *error;
} json_reader;

static void
json_member_free(gpointer p)
{
	json_member *m = p;

	if (m->text != NULL) {
		explicit_bzero(m->text, strlen(m->text));
		g_free(m->text);
	}
	g_free(m);
}

static void
json_ws(json_reader *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
	    *j->p == '\r'))
		j->p++;
}

static gboolean
json_fail(json_reader *j, const char *what)
{
	if (j->error == NULL)
		j->error = what;
	return FALSE;
}

static int
hex4(const char *p)
{
	int i, v = 0;

	for (i = 0; i < 4; i++) {
		int d = g_ascii_xdigit_value(p[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* \uHHHH (four hex digits), with a surrogate pair when it takes two; p is after "\u". */
static gboolean
json_unicode(json_reader *j, GString *out)
{
	int hi, lo;
	gunichar c;

	if (j->end - j->p < 4 || (hi = hex4(j->p)) < 0)
		return json_fail(j, "bad \\u escape");
	j->p += 4;
	c = (gunichar)hi;
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
		    (lo = hex4(j->p + 2)) < 0xdc00 || lo > 0xdfff)
			return json_fail(j, "unpaired surrogate in \\u escape");
		j->p += 6;
		c = 0x10000 + (((gunichar)hi - 0xd800) << 10) + ((gunichar)lo - 0xdc00);
	} else if (hi >= 0xdc00 && hi <= 0xdfff) {
		return json_fail(j, "unpaired surrogate in \\u escape");
	}
	if (c == 0)
		return json_fail(j, "NUL in a string");
	if (out != NULL)
		g_string_append_unichar(out, c);
	return TRUE;
}

/* A string; j->p is on the opening quote.  out may be NULL (skip). */
static gboolean
json_string(json_reader *j, GString *out)
{
	static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";

	j->p++;
	while (j->p < j->end && *j->p != '"') {
		unsigned char ch = (unsigned char)*j->p++;
		const char *e;

		if (ch < 0x20)
			return json_fail(j, "control character in a string");
		if (ch != '\\') {
			if (out != NULL)
				g_string_append_c(out, (char)ch);
			continue;
		}
		if (j->p >= j->end)
			break;
		ch = (unsigned char)*j->p++;
		if (ch == 'u') {
			if (!json_unicode(j, out))
				return FALSE;
		} else if (ch != '\0' && (e = strchr(esc_in, ch)) != NULL) {
			if (out != NULL)
				g_string_append_c(out, esc_out[e - esc_in]);
		} else {
			return json_fail(j, "bad escape in a string");
		}
	}
	if (j->p >= j->end)
		return json_fail(j, "unterminated string");
	j->p++;
	return TRUE;
}

/* RFC 8259 number syntax; the text is kept, converted by the caller. */
static gboolean
json_number(json_reader *j, GString *out)
{
	const char *s = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end || !g_ascii_isdigit(*j->p))
		return json_fail(j, "bad number");
	if (*j->p == '0')
		j->p++;
	else
		while (j->p < j->end && g_ascii_isdigit(*j->p))
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || !g_ascii_isdigit(*j->p))
			return json_fail(j, "bad number");
		while (j->p < j->end && g_ascii_isdigit(*j->p))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (j->p >= j->end || !g_ascii_isdigit(*j->p))
			return json_fail(j, "bad number");
		while (j->p < j->end && g_ascii_isdigit(*j->p))
			j->p++;
	}
	if (out != NULL)
		g_string_append_len(out, s, j->p - s);
	return TRUE;
}

static gboolean json_value(json_reader *j, json_type *type_r, GString *out);

static gboolean
json_word(json_reader *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
		return json_fail(j, "unexpected character");
	j->p += n;
	return TRUE;
}

/* Skip the members or elements of a container; j->p is on '{' or '['. */
static gboolean
json_container(json_reader *j, gboolean object)
{
	char close = object ? '}' : ']';
	gboolean first = TRUE;
	json_type t;

	if (++j->depth > JSON_MAX_DEPTH)
		return json_fail(j, "nested too deeply");
	j->p++;
	for (;;) {
		json_ws(j);
		if (j->p < j->end && *j->p == close && first)
			break;
		if (!first) {
			if (j->p < j->end && *j->p == close)
				break;
			if (j->p >= j->end || *j->p != ',')
				return json_fail(j, "expected ',' or a closing bracket");
			j->p++;
			json_ws(j);
		}
		first = FALSE;
		if (object) {
			if (j->p >= j->end || *j->p != '"')
				return json_fail(j, "expected a member name");
			if (!json_string(j, NULL))
				return FALSE;
			json_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return json_fail(j, "expected ':'");
			j->p++;
		}
		if (!json_value(j, &t, NULL))
			return FALSE;
	}
	j->p++;
	j->depth--;
	return TRUE;
}

static gboolean
json_value(json_reader *j, json_type *type_r, GString *out)
{
	json_ws(j);
	if (j->p >= j->end)
		return json_fail(j, "unexpected end");
	switch (*j->p) {
	case '"':
		*type_r = J_STRING;
		return json_string(j, out);
	case '{':
		*type_r = J_OBJECT;
		return json_container(j, TRUE);
	case '[':
		*type_r = J_ARRAY;
		return json_container(j, FALSE);
	case 't':
		*type_r = J_TRUE;
		return json_word(j, "true");
	case 'f':
		*type_r = J_FALSE;
		return json_word(j, "false");
	case 'n':
		*type_r = J_NULL;
		return json_word(j, "null");
	default:
		*type_r = J_NUMBER;
		return json_number(j, out);
	}
}

static gboolean
json_member_read(json_reader *j, GHashTable *members)
{
	g_autoptr(GString) key = g_string_new(NULL);
	GString *val = g_string_new(NULL);
	json_member *m;
	json_type t;

	if (j->p >= j->end || *j->p != '"' || !json_string(j, key)) {
		wipe_gstring(val);
		return json_fail(j, "expected a member name");
	}
	json_ws(j);
	if (j->p >= j->end || *j->p != ':') {
		wipe_gstring(val);
		return json_fail(j, "expected ':'");
	}
	j->p++;
	if (!json_value(j, &t, val)) {
		wipe_gstring(val);
		return FALSE;
	}
	if (g_hash_table_contains(members, key->str)) {
		wipe_gstring(val);
		return json_fail(j, "a member appears twice");
	}
	m = g_new0(json_member, 1);
	m->type = t;
	if (t == J_STRING || t == J_NUMBER)
		m->text = g_strndup(val->str, val->len);
	wipe_gstring(val);
	g_hash_table_insert(members, g_strdup(key->str), m);
	return TRUE;
}

/*
 * Parse a JSON object; returns its members by name (nested values are
 * checked but only their type is kept), or NULL with *error_r set.
 */
static GHashTable *
json_object_parse(const char *s, gsize len, const char **error_r)
{
	json_reader j = { s, s + len, 1, NULL };
	GHashTable *members;
	gboolean first = TRUE;

	if (!g_utf8_validate(s, len, NULL)) {
		*error_r = "not valid UTF-8";
		return NULL;
	}
	members = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, json_member_free);
	json_ws(&j);
	if (j.p >= j.end || *j.p != '{') {
		json_fail(&j, "not a JSON object");
		goto fail;
	}
	j.p++;
	for (;;) {
		json_ws(&j);
		if (j.p < j.end && *j.p == '}')
			break;
		if (!first) {
			if (j.p >= j.end || *j.p != ',') {
				json_fail(&j, "expected ',' or '}'");
				goto fail;
			}
			j.p++;
			json_ws(&j);
		}
		first = FALSE;
		if (!json_member_read(&j, members))
			goto fail;
	}
	j.p++;
	json_ws(&j);
	if (j.p != j.end) {
		json_fail(&j, "text after the object");
		goto fail;
	}
	return members;
fail:
	*error_r = j.error;
	g_hash_table_destroy(members);
	return NULL;
}

/* A JSON number (or a string holding one, as some providers send) as seconds. */
static gboolean
json_seconds(const json_member *m, gint64 *v_r)
{
	char *end;
	double d;

	if (m == NULL || m->text == NULL || (m->type != J_NUMBER && m->type != J_STRING))
		return FALSE;
	errno = 0;
	d = g_ascii_strtod(m->text, &end);
	if (errno != 0 || end == m->text || *end != '\0' || !isfinite(d) || d < 0 ||
	    d > 1e12)
		return FALSE;
	*v_r = (gint64)d;
	return TRUE;
}

/* ---- tokens ---- */

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static gssize
token_bad_offset(const char *t)
{
	gsize i = 0;

	while (g_ascii_isalnum(t[i]) || strchr("-._~+/", t[i]) != NULL) {
		if (t[i] == '\0')
			break;
		i++;
	}
	if (i == 0)
		return 0;
	while (t[i] == '=')
		i++;
	return t[i] == '\0' ? -1 : (gssize)i;
}

static gboolean
token_check(const char *t, GError **error)
{
	gssize bad;

	if (*t == '\0') {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "the token is empty");
		return FALSE;
	}
	if (strlen(t) > OAUTH_TOKEN_MAX) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "the token is longer than %d bytes", OAUTH_TOKEN_MAX);
		return FALSE;
	}
	if ((bad = token_bad_offset(t)) >= 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "the token has a character outside RFC 6750's b64token set at "
		    "offset %" G_GSSIZE_FORMAT " (not a bearer token?)", bad);
		return FALSE;
	}
	return TRUE;
}

static oauth_token *
token_from_json(const char *s, gsize len, gint64 issued, GError **error)
{
	g_autoptr(GHashTable) m = NULL;
	const json_member *at, *ei;
	const char *err = NULL;
	oauth_token *t;
	gint64 secs;

	if ((m = json_object_parse(s, len, &err)) == NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "output starts with '{' but is not valid JSON: %s", err);
		return NULL;
	}
	at = g_hash_table_lookup(m, "access_token");
	if (at == NULL || at->type != J_STRING) {
		const json_member *e = g_hash_table_lookup(m, "error");
		g_autofree char *q = e != NULL && e->type == J_STRING ?
		    printable(e->text, strlen(e->text)) : NULL;

		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "JSON output has no \"access_token\" string%s%s%s",
		    q ? " (error \"" : "", q ? q : "", q ? "\")" : "");
		return NULL;
	}
	if (!token_check(at->text, error))
		return NULL;
	t = g_new0(oauth_token, 1);
	t->access_token = g_strdup(at->text);
	ei = g_hash_table_lookup(m, "expires_in");
	if (ei != NULL) {
		if (!json_seconds(ei, &secs)) {
			oauth_token_free(t);
			g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
			    "\"expires_in\" is not a number of seconds");
			return NULL;
		}
		t->expires = issued + secs;
		t->expires_from = "expires_in";
	}
	return t;
}

static oauth_token *
token_from_line(const char *s, gsize len, GError **error)
{
	const char *nl = memchr(s, '\n', len);
	g_autofree char *line = NULL;
	oauth_token *t;

	if (memchr(s, '\0', len) != NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "output holds a NUL byte");
		return NULL;
	}
	if (nl != NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "output has more than one line; expected one token line or a JSON object");
		return NULL;
	}
	line = g_strndup(s, len);
	if (!token_check(line, error)) {
		explicit_bzero(line, len);
		return NULL;
	}
	t = g_new0(oauth_token, 1);
	t->access_token = g_steal_pointer(&line);
	return t;
}

oauth_token *
oauth_token_parse(const char *data, gsize len, gint64 issued, int lifetime, GError **error)
{
	oauth_token *t;
	gint64 exp;

	/* Trim white space (including CR) at both ends. */
	while (len > 0 && g_ascii_isspace(*data)) {
		data++;
		len--;
	}
	while (len > 0 && g_ascii_isspace(data[len - 1]))
		len--;
	if (len == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "no token (empty output)");
		return NULL;
	}
	if (len > OAUTH_OUTPUT_MAX) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "output longer than %d bytes",
		    OAUTH_OUTPUT_MAX);
		return NULL;
	}
	t = *data == '{' ? token_from_json(data, len, issued, error) :
	    token_from_line(data, len, error);
	if (t == NULL)
		return NULL;
	if (t->expires_from == NULL && oauth_jwt_exp(t->access_token, &exp)) {
		t->expires = exp;
		t->expires_from = "the JWT exp claim";
	}
	if (t->expires_from == NULL) {
		t->expires = issued + lifetime;
		t->expires_from = "token_lifetime";
	}
	return t;
}

/* base64url without padding, as JWTs use it; NULL unless it decodes. */
static guchar *
b64url_decode(const char *s, gsize n, gsize *len_r)
{
	GString *b;
	guchar *out;
	gsize i;

	if (n == 0 || n % 4 == 1)
		return NULL;
	b = g_string_sized_new(n + 3);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!g_ascii_isalnum(c))
			break;
		g_string_append_c(b, c);
	}
	if (i != n) {
		g_string_free(b, TRUE);
		return NULL;
	}
	while (b->len % 4 != 0)
		g_string_append_c(b, '=');
	out = g_base64_decode(b->str, len_r);
	g_string_free(b, TRUE);
	return out;
}

gboolean
oauth_jwt_exp(const char *token, gint64 *exp_r)
{
	g_auto(GStrv) parts = NULL;
	g_autoptr(GHashTable) hdr = NULL, body = NULL;
	g_autofree guchar *h = NULL, *p = NULL;
	const char *err;
	gsize hl = 0, pl = 0;
	gboolean ok;
	gint64 v;

	if (token == NULL)
		return FALSE;
	parts = g_strsplit(token, ".", 4);
	if (g_strv_length(parts) != 3)
		return FALSE;
	h = b64url_decode(parts[0], strlen(parts[0]), &hl);
	p = b64url_decode(parts[1], strlen(parts[1]), &pl);
	if (h == NULL || p == NULL || (hdr = json_object_parse((char *)h, hl, &err)) == NULL ||
	    !g_hash_table_contains(hdr, "alg") ||
	    (body = json_object_parse((char *)p, pl, &err)) == NULL) {
		ok = FALSE;
	} else {
		const json_member *e = g_hash_table_lookup(body, "exp");

		ok = e != NULL && e->type == J_NUMBER && json_seconds(e, &v);
		if (ok)
			*exp_r = v;
	}
	if (p != NULL)
		explicit_bzero(p, pl);
	return ok;
}

char *
oauth_challenge_describe(const char *b64)
{
	g_autofree guchar *raw = NULL;
	g_autoptr(GHashTable) m = NULL;
	g_autoptr(GString) out = NULL;
	static const char *const keys[] = { "status", "schemes", "scope" };
	g_autofree char *clean = NULL;
	const char *err;
	gsize len = 0, i;

	if (b64 == NULL)
		return NULL;
	clean = g_strstrip(g_strdup(b64));
	if (*clean == '\0' || strspn(clean, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
	    "vwxyz0123456789+/=") != strlen(clean) || strlen(clean) % 4 != 0)
		return NULL;
	raw = g_base64_decode(clean, &len);
	if (raw == NULL || len == 0 || (m = json_object_parse((char *)raw, len, &err)) == NULL)
		return NULL;
	out = g_string_new(NULL);
	for (i = 0; i < G_N_ELEMENTS(keys); i++) {
		const json_member *v = g_hash_table_lookup(m, keys[i]);
		g_autofree char *q = NULL;

		if (v == NULL || v->text == NULL)
			continue;
		q = printable(v->text, strlen(v->text));
		g_string_append_printf(out, "%s%s %s", out->len ? ", " : "", keys[i], q);
	}
	if (out->len == 0)
		return NULL;
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* ---- running the command ---- */

/*
 * In the child, before exec (async-signal-safe calls only): its own
 * process group, and signals as a fresh program expects them - the
 * daemon blocks some for its signalfd and ignores SIGPIPE, and both
 * would be inherited across exec.
 */
static void
child_setup(gpointer data)
{
	sigset_t none;
	int sig;

	setpgid(0, 0);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Append what fd has; FALSE at EOF or on error. */
static gboolean
drain(int fd, GString *buf, gsize keep, gboolean tail)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return TRUE;
	if (n <= 0)
		return FALSE;
	g_string_append_len(buf, chunk, n);
	if (tail && buf->len > keep)
		g_string_erase(buf, 0, buf->len - keep);
	explicit_bzero(chunk, sizeof(chunk));
	return TRUE;
}

/* The last non-empty line of a command's stderr, printable, or NULL. */
static char *
last_line(GString *err)
{
	gsize end = err->len, start;

	while (end > 0 && g_ascii_isspace(err->str[end - 1]))
		end--;
	if (end == 0)
		return NULL;
	start = end;
	while (start > 0 && err->str[start - 1] != '\n')
		start--;
	return printable(err->str + start, end - start);
}

typedef struct {
	GPid	 pid;
	int	 out, err;
	GString	*stdout_buf, *stderr_buf;
	gboolean too_big;
} child;

/* Read both pipes until EOF, the deadline or too much output. */
static gboolean
child_read(child *ch, gint64 deadline)
{
	while (ch->out >= 0 || ch->err >= 0) {
		struct pollfd pf[2] = { { ch->out, POLLIN, 0 }, { ch->err, POLLIN, 0 } };
		gint64 left = deadline - cg_mono_ms();

		if (left <= 0)
			return FALSE;
		if (poll(pf, 2, (int)MIN(left, 1000)) < 0 && errno != EINTR)
			return FALSE;
		if (pf[0].revents && !drain(ch->out, ch->stdout_buf, 0, FALSE)) {
			close(ch->out);
			ch->out = -1;
		}
		if (pf[1].revents && !drain(ch->err, ch->stderr_buf, STDERR_KEEP, TRUE)) {
			close(ch->err);
			ch->err = -1;
		}
		if (ch->stdout_buf->len > OAUTH_OUTPUT_MAX) {
			ch->too_big = TRUE;
			return FALSE;
		}
	}
	return TRUE;
}

/* Wait for the exit until the deadline; -1 when it is still running. */
static int
child_wait(child *ch, gint64 deadline)
{
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(ch->pid, &status, WNOHANG);
		if (r == ch->pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -2;
		if (cg_mono_ms() >= deadline)
			return -1;
		g_usleep(10 * 1000);
	}
}

static void
child_kill(child *ch)
{
	int status;

	/* The group first (a script's children), then the leader itself. */
	kill(-ch->pid, SIGKILL);
	kill(ch->pid, SIGKILL);
	while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
		;
}

static void
child_close(child *ch)
{
	if (ch->out >= 0)
		close(ch->out);
	if (ch->err >= 0)
		close(ch->err);
	wipe_gstring(ch->stdout_buf);
	g_string_free(ch->stderr_buf, TRUE);
}

static void
command_failed(GError **error, int code, const char *prog, GString *err, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

static void
command_failed(GError **error, int code, const char *prog, GString *err, const char *fmt, ...)
{
	g_autofree char *what = NULL, *line = err != NULL ? last_line(err) : NULL;
	va_list ap;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, CG_ERROR, code, "OAuth2 token command %s %s%s%s%s", prog, what,
	    line ? " (its stderr: \"" : "", line ? line : "", line ? "\")" : "");
}

char *
oauth_command_output(char **argv, int timeout, gsize *len_r, GError **error)
{
	g_autoptr(GError) e = NULL;
	child ch = { 0, -1, -1, NULL, NULL, FALSE };
	gint64 deadline;
	int status;
	char *out;

	if (argv == NULL || argv[0] == NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "OAuth2 token command is empty");
		return NULL;
	}
	if (!g_spawn_async_with_pipes(NULL, argv, NULL,
	    G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH, child_setup, NULL,
	    &ch.pid, NULL, &ch.out, &ch.err, &e)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "OAuth2 token command %s cannot be run: %s", argv[0], e->message);
		return NULL;
	}
	ch.stdout_buf = g_string_new(NULL);
	ch.stderr_buf = g_string_new(NULL);
	deadline = cg_mono_ms() + (gint64)MAX(timeout, 1) * 1000;
	if (!child_read(&ch, deadline) || (status = child_wait(&ch, deadline)) == -1) {
		child_kill(&ch);
		if (ch.too_big)
			command_failed(error, CG_ERROR_CONFIG, argv[0], NULL,
			    "printed more than %d bytes; expected one token", OAUTH_OUTPUT_MAX);
		else
			command_failed(error, CG_ERROR_TEMP, argv[0], ch.stderr_buf,
			    "timed out after %d s and was killed", MAX(timeout, 1));
		child_close(&ch);
		return NULL;
	}
	if (status == -2) {
		command_failed(error, CG_ERROR_TEMP, argv[0], NULL, "could not be waited for: %s",
		    g_strerror(errno));
		child_close(&ch);
		return NULL;
	}
	if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
		if (WIFSIGNALED(status))
			command_failed(error, CG_ERROR_TEMP, argv[0], ch.stderr_buf,
			    "was killed by signal %d (%s)", WTERMSIG(status),
			    g_strsignal(WTERMSIG(status)));
		else
			command_failed(error, CG_ERROR_TEMP, argv[0], ch.stderr_buf,
			    "exited with status %d", WEXITSTATUS(status));
		child_close(&ch);
		return NULL;
	}
	if (ch.stdout_buf->len == 0 || strspn(ch.stdout_buf->str, " \t\r\n") ==
	    ch.stdout_buf->len) {
		command_failed(error, CG_ERROR_CONFIG, argv[0], ch.stderr_buf,
		    "exited with status 0 but printed no token");
		child_close(&ch);
		return NULL;
	}
	*len_r = ch.stdout_buf->len;
	out = g_strndup(ch.stdout_buf->str, ch.stdout_buf->len);
	child_close(&ch);
	return out;
}

gboolean
oauth_command_check(char **argv, GError **error)
{
	g_autofree char *found = NULL;

	if (argv == NULL || argv[0] == NULL || *argv[0] == '\0') {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "the command is empty");
		return FALSE;
	}
	if (strchr(argv[0], '/') == NULL) {
		if ((found = g_find_program_in_path(argv[0])) == NULL) {
			g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
			    "program \"%s\" not found in PATH", argv[0]);
			return FALSE;
		}
		return TRUE;
	}
	if (access(argv[0], X_OK) != 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "%s: %s", argv[0],
		    g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* ---- token files ---- */

static int
file_open_checked(const char *path, struct stat *sb, GError **error)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "OAuth2 token file %s: %s", path,
		    errno == ELOOP ? "is a symbolic link; name the file itself" :
		    g_strerror(errno));
		return -1;
	}
	if (fstat(fd, sb) == -1 || !S_ISREG(sb->st_mode)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "OAuth2 token file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (sb->st_mode & 077) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "OAuth2 token file %s is readable by group or others (mode %04o); "
		    "run chmod 600 %s", path, (unsigned)(sb->st_mode & 07777), path);
		close(fd);
		return -1;
	}
	return fd;
}

gboolean
oauth_file_check(const char *path, GError **error)
{
	struct stat sb;
	int fd = file_open_checked(path, &sb, error);

	if (fd < 0)
		return FALSE;
	close(fd);
	return TRUE;
}

char *
oauth_file_read(const char *path, gsize *len_r, gint64 *mtime_r, GError **error)
{
	GString *buf;
	struct stat sb;
	char chunk[4096];
	ssize_t n;
	int fd;

	if ((fd = file_open_checked(path, &sb, error)) < 0)
		return NULL;
	buf = g_string_new(NULL);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR)) {
		if (n > 0)
			g_string_append_len(buf, chunk, n);
		if (buf->len > OAUTH_OUTPUT_MAX)
			break;
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	if (n < 0 || buf->len > OAUTH_OUTPUT_MAX) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "OAuth2 token file %s: %s", path,
		    n < 0 ? g_strerror(errno) : "larger than 64 KiB");
		wipe_gstring(buf);
		return NULL;
	}
	*len_r = buf->len;
	*mtime_r = (gint64)sb.st_mtim.tv_sec;
	return g_string_free(buf, FALSE);
}

/* ---- the cache ---- */

typedef struct {
	GMutex	 lock;		/* held while fetching */
	oauth_token *tok;
	/* token_file: the file the token came from, to notice a rewrite */
	gboolean have_stat;
	dev_t	 dev;
	ino_t	 ino;
	off_t	 size;
	struct timespec mtime, ctime;
	gboolean warned;	/* "file not refreshed" said once per token */
} cache_entry;

static GMutex cache_lock;
static GHashTable *cache;	/* source key -> cache_entry */

static void
cache_entry_free(gpointer p)
{
	cache_entry *ce = p;

	oauth_token_free(ce->tok);
	g_mutex_clear(&ce->lock);
	g_free(ce);
}

/* The key names the source: the same command or file shares one token. */
static char *
cache_key(const endpoint *ep)
{
	return g_strdup_printf("%s\n%s\n%s\n%d", ep->user ? ep->user : "",
	    ep->token_file ? "file" : "command",
	    ep->token_file ? ep->token_file : ep->token_command ? ep->token_command : "",
	    ep->token_lifetime);
}

static cache_entry *
cache_get(const endpoint *ep)
{
	g_autofree char *key = cache_key(ep);
	cache_entry *ce;

	g_mutex_lock(&cache_lock);
	if (cache == NULL)
		cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
		    cache_entry_free);
	if ((ce = g_hash_table_lookup(cache, key)) == NULL) {
		ce = g_new0(cache_entry, 1);
		g_mutex_init(&ce->lock);
		g_hash_table_insert(cache, g_steal_pointer(&key), ce);
	}
	g_mutex_unlock(&cache_lock);
	return ce;
}

void
oauth_cache_clear(void)
{
	g_mutex_lock(&cache_lock);
	g_clear_pointer(&cache, g_hash_table_destroy);
	g_mutex_unlock(&cache_lock);
}

static const char *
source_kind(const endpoint *ep)
{
	return ep->token_file != NULL ? "file" : "command";
}

static const char *
source_name(const endpoint *ep)
{
	if (ep->token_file != NULL)
		return ep->token_file;
	return ep->token_argv != NULL && ep->token_argv[0] != NULL ? ep->token_argv[0] : "?";
}

static void
expired_error(const endpoint *ep, const oauth_token *t, gint64 now, GError **error)
{
	g_autofree char *when = fmt_time(t->expires);

	g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
	    "OAuth2 token from %s %s expired at %s (%" G_GINT64_FORMAT " s ago, by %s)%s",
	    source_kind(ep), source_name(ep), when, now - t->expires, t->expires_from,
	    ep->token_file != NULL ? "; whatever refreshes that file has not run" :
	    "; the command handed out a stale token");
}

/* Run the command and parse its output. */
static oauth_token *
fetch_command(const endpoint *ep, gint64 now, GError **error)
{
	g_autoptr(GError) e = NULL;
	oauth_token *t;
	gsize len = 0;
	char *out;

	out = oauth_command_output(ep->token_argv, ep->timeout > 0 ? ep->timeout : 30, &len,
	    error);
	if (out == NULL)
		return NULL;
	t = oauth_token_parse(out, len, now, ep->token_lifetime, &e);
	oauth_secret_free(out);
	if (t == NULL)
		g_set_error(error, CG_ERROR, e->code, "OAuth2 token command %s: %s",
		    source_name(ep), e->message);
	return t;
}

static gboolean
file_changed(const cache_entry *ce, const struct stat *sb)
{
	return !ce->have_stat || ce->dev != sb->st_dev || ce->ino != sb->st_ino ||
	    ce->size != sb->st_size || ce->mtime.tv_sec != sb->st_mtim.tv_sec ||
	    ce->mtime.tv_nsec != sb->st_mtim.tv_nsec ||
	    ce->ctime.tv_sec != sb->st_ctim.tv_sec || ce->ctime.tv_nsec != sb->st_ctim.tv_nsec;
}

/* Re-read the token file when it changed since the cached token came from it. */
static gboolean
refresh_file(const endpoint *ep, cache_entry *ce, GError **error)
{
	g_autoptr(GError) e = NULL;
	struct stat sb;
	oauth_token *t;
	gint64 mtime = 0;
	gsize len = 0;
	char *data;

	if (stat(ep->token_file, &sb) == 0 && ce->tok != NULL && !file_changed(ce, &sb))
		return TRUE;
	if ((data = oauth_file_read(ep->token_file, &len, &mtime, error)) == NULL)
		return FALSE;
	/* A token without an expiry is taken to have been issued when the file was written. */
	t = oauth_token_parse(data, len, mtime, ep->token_lifetime, &e);
	oauth_secret_free(data);
	if (t == NULL) {
		g_set_error(error, CG_ERROR, e->code, "OAuth2 token file %s: %s",
		    ep->token_file, e->message);
		return FALSE;
	}
	oauth_token_free(ce->tok);
	ce->tok = t;
	ce->warned = FALSE;
	ce->have_stat = TRUE;
	ce->dev = sb.st_dev;
	ce->ino = sb.st_ino;
	ce->size = sb.st_size;
	ce->mtime = sb.st_mtim;
	ce->ctime = sb.st_ctim;
	return TRUE;
}

/* Under ce->lock: make ce->tok current, or fail. */
static gboolean
refresh(const endpoint *ep, cache_entry *ce, gint64 now, GError **error)
{
	g_autoptr(GError) e = NULL;
	oauth_token *t;

	if (ep->token_file != NULL) {
		if (!refresh_file(ep, ce, &e)) {
			if (ce->tok == NULL || ce->tok->expires <= now) {
				g_propagate_error(error, g_steal_pointer(&e));
				return FALSE;
			}
			log_warnx("%s; using the token read before, valid %" G_GINT64_FORMAT
			    " s more", e->message, ce->tok->expires - now);
			return TRUE;
		}
		if (ce->tok->expires <= now) {
			expired_error(ep, ce->tok, now, error);
			return FALSE;
		}
		if (ce->tok->expires - now <= ep->token_refresh && !ce->warned) {
			log_warnx("OAuth2 token file %s has not been refreshed: its token expires "
			    "in %" G_GINT64_FORMAT " s", ep->token_file, ce->tok->expires - now);
			ce->warned = TRUE;
		}
		return TRUE;
	}
	if (ce->tok != NULL && ce->tok->expires - now > ep->token_refresh)
		return TRUE;
	if ((t = fetch_command(ep, now, &e)) == NULL) {
		if (ce->tok == NULL || ce->tok->expires <= now) {
			g_propagate_error(error, g_steal_pointer(&e));
			return FALSE;
		}
		log_warnx("%s; using the cached token, valid %" G_GINT64_FORMAT " s more",
		    e->message, ce->tok->expires - now);
		return TRUE;
	}
	if (t->expires <= now) {
		expired_error(ep, t, now, error);
		oauth_token_free(t);
		return FALSE;
	}
	if (t->expires - now <= ep->token_refresh)
		log_warnx("OAuth2 token command %s: the new token lasts only %" G_GINT64_FORMAT
		    " s (by %s), not more than token_refresh (%d s); it will be fetched "
		    "again at every login", source_name(ep), t->expires - now, t->expires_from,
		    ep->token_refresh);
	log_debug("OAuth2 token command %s: new token, expires in %" G_GINT64_FORMAT
	    " s (by %s)", source_name(ep), t->expires - now, t->expires_from);
	oauth_token_free(ce->tok);
	ce->tok = t;
	return TRUE;
}

char *
oauth_access_token(const endpoint *ep, GError **error)
{
	cache_entry *ce;
	char *copy = NULL;

	if (ep == NULL || ep->auth != AUTH_OAUTH2 ||
	    (ep->token_file == NULL && ep->token_argv == NULL)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "OAuth2: neither token_command nor token_file is configured");
		return NULL;
	}
	ce = cache_get(ep);
	g_mutex_lock(&ce->lock);
	if (refresh(ep, ce, clock_fn(), error))
		copy = g_strdup(ce->tok->access_token);
	g_mutex_unlock(&ce->lock);
	return copy;
}

void
oauth_token_refused(const endpoint *ep)
{
	cache_entry *ce;

	if (ep == NULL || ep->auth != AUTH_OAUTH2)
		return;
	ce = cache_get(ep);
	g_mutex_lock(&ce->lock);
	g_clear_pointer(&ce->tok, oauth_token_free);
	ce->have_stat = FALSE;
	g_mutex_unlock(&ce->lock);
}
