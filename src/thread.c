/*
 * thread.c - how mail finds its case: the "[CASE-000123]" subject token
 * and the Message-IDs casegate issues ("CASE-000123.<random>@domain").
 *
 * Message-IDs are "CASE-000123.<nonce><mac>@domain": a 64-bit nonce
 * from getrandom(2) and the first 64 bits of HMAC-SHA256 (GLib's GHmac)
 * over "CASE-000123.<nonce>" keyed with the server secret
 * (gateway.secret_file).  A reply naming such an id proves the sender
 * saw mail casegate sent about that very case: nobody can forge one for
 * another case, and it can be checked without the database.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "cg.h"
#include "config.h"
#include "log.h"
#include "thread.h"

/*
 * 8 random bytes and the first 8 bytes of the MAC: 32 hex digits in all,
 * the same shape as before signing.  A forger must hit 64 bits of MAC
 * with one mail per try.
 */
#define NONCE_BYTES	8
#define MAC_BYTES	8

static void
random_bytes(guint8 *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("getrandom");
		}
		got += (size_t)n;
	}
}

static void
to_hex(const guint8 *bytes, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		g_snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

/* The first MAC_BYTES of HMAC-SHA256(secret, "public_id.nonce") as hex into mac_hex. */
static void
mac_of(const char *secret, const char *public_id, size_t id_len, const char *nonce_hex,
    char *mac_hex)
{
	g_autoptr(GHmac) h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *)secret,
	    strlen(secret));
	guint8 digest[32];
	gsize dlen = sizeof(digest);

	g_hmac_update(h, (const guchar *)public_id, (gssize)id_len);
	g_hmac_update(h, (const guchar *)".", 1);
	g_hmac_update(h, (const guchar *)nonce_hex, NONCE_BYTES * 2);
	g_hmac_get_digest(h, digest, &dlen);
	to_hex(digest, MAC_BYTES, mac_hex);
}

char *
thread_message_id(const config *cfg, const char *public_id)
{
	guint8 rnd[NONCE_BYTES + MAC_BYTES];
	char hex[2 * sizeof(rnd) + 1];

	random_bytes(rnd, sizeof(rnd));
	to_hex(rnd, sizeof(rnd), hex);
	/* Without a secret (unit tests, casectl without access to it) the
	 * whole part is random: unguessable still, but not verifiable. */
	if (cfg->secret != NULL && *cfg->secret != '\0')
		mac_of(cfg->secret, public_id, strlen(public_id), hex, hex + 2 * NONCE_BYTES);
	return g_strdup_printf("%s.%s@%s", public_id, hex, cfg->domain);
}

gint64
thread_message_id_case(const config *cfg, const char *message_id)
{
	char mac[2 * MAC_BYTES + 1];
	const char *at, *dot, *hex;
	g_autofree char *public_id = NULL;
	gint64 n;
	int i, diff = 0;

	if (message_id == NULL || cfg->secret == NULL || *cfg->secret == '\0' ||
	    cfg->domain == NULL || (at = strrchr(message_id, '@')) == NULL ||
	    g_ascii_strcasecmp(at + 1, cfg->domain) != 0)
		return 0;
	dot = memchr(message_id, '.', at - message_id);
	if (dot == NULL || at - (dot + 1) != 2 * (NONCE_BYTES + MAC_BYTES))
		return 0;
	hex = dot + 1;
	for (i = 0; i < 2 * (NONCE_BYTES + MAC_BYTES); i++)
		if (!g_ascii_isxdigit(hex[i]) || g_ascii_isupper(hex[i]))
			return 0;
	public_id = g_strndup(message_id, dot - message_id);
	if ((n = config_case_number(cfg, public_id)) == 0)
		return 0;
	mac_of(cfg->secret, public_id, strlen(public_id), hex, mac);
	/* constant time: the comparison must not tell how much was right */
	for (i = 0; i < 2 * MAC_BYTES; i++)
		diff |= mac[i] ^ hex[2 * NONCE_BYTES + i];
	return diff == 0 ? n : 0;
}

/* Length of a "[PREFIX123]" token at p, or 0; the number goes to *num_r. */
static size_t
token_at(const config *cfg, const char *p, gint64 *num_r)
{
	size_t plen = strlen(cfg->case_prefix);
	const char *q;
	gint64 n = 0;
	int digits = 0;

	if (*p != '[' || g_ascii_strncasecmp(p + 1, cfg->case_prefix, plen) != 0)
		return 0;
	for (q = p + 1 + plen; g_ascii_isdigit(*q); q++) {
		if (++digits > 18)
			return 0;
		n = n * 10 + (*q - '0');
	}
	if (digits == 0 || *q != ']' || n == 0)
		return 0;
	*num_r = n;
	return (size_t)(q + 1 - p);
}

gint64
thread_subject_token(const config *cfg, const char *subject)
{
	const char *p;
	gint64 n;

	if (subject == NULL)
		return 0;
	for (p = strchr(subject, '['); p != NULL; p = strchr(p + 1, '['))
		if (token_at(cfg, p, &n) > 0)
			return n;
	return 0;
}

/*
 * Reply and forward prefixes in the languages members write in:
 * Re (most), AW/WG (German), SV/VS (Nordic), TR (French "transféré"),
 * RV (Spanish), Antw (Dutch), Ref, Fwd/Fw.
 */
static const char *const reply_prefixes[] = {
	"re", "aw", "sv", "vs", "wg", "fw", "fwd", "tr", "rv", "antw", "ref", "réf", "rif",
	NULL,
};

/* Length of a reply prefix ("Re:", "RE[2]:", "Fwd :") at p, or 0. */
static size_t
prefix_at(const char *p)
{
	int i;

	for (i = 0; reply_prefixes[i] != NULL; i++) {
		size_t n = strlen(reply_prefixes[i]);
		const char *q = p + n;

		if (g_ascii_strncasecmp(p, reply_prefixes[i], n) != 0)
			continue;
		if (*q == '[' || *q == '(') {
			char close = *q == '[' ? ']' : ')';

			for (q++; g_ascii_isdigit(*q); q++)
				;
			if (*q != close)
				continue;
			q++;
		}
		while (*q == ' ')
			q++;
		if (*q == ':')
			return (size_t)(q + 1 - p);
	}
	return 0;
}

char *
thread_subject_base(const config *cfg, const char *subject)
{
	GString *out = g_string_new(NULL);
	const char *p = subject ? subject : "";
	gint64 n;
	size_t len;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if ((len = prefix_at(p)) > 0 || (len = token_at(cfg, p, &n)) > 0)
			p += len;
		else
			break;
	}
	/* Drop tokens anywhere else too, and collapse the spaces they leave. */
	while (*p != '\0') {
		if (*p == '[' && (len = token_at(cfg, p, &n)) > 0) {
			p += len;
			continue;
		}
		if ((*p == ' ' || *p == '\t') && (out->len == 0 ||
		    out->str[out->len - 1] == ' ')) {
			p++;
			continue;
		}
		g_string_append_c(out, *p == '\t' ? ' ' : *p);
		p++;
	}
	while (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

char *
thread_subject(const config *cfg, const char *subject, const char *public_id,
    gboolean reply)
{
	g_autofree char *base = thread_subject_base(cfg, subject);

	return g_strdup_printf("%s%s [%s]", reply ? "Re: " : "",
	    *base ? base : "(no subject)", public_id);
}
