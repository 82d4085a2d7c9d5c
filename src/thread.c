/*
 * thread.c - how mail finds its case: the "[CASE-000123]" subject token
 * and the Message-IDs casegate issues ("CASE-000123.<random>@domain").
 *
 * The random part is 128 bits from getrandom(2), so an outsider cannot
 * guess the Message-ID of mail sent about somebody else's case.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "cg.h"
#include "config.h"
#include "log.h"
#include "thread.h"

char *
thread_message_id(const config *cfg, const char *public_id)
{
	guint8 rnd[16];
	char hex[33];
	size_t got = 0;
	int i;

	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("getrandom");
		}
		got += (size_t)n;
	}
	for (i = 0; i < 16; i++)
		g_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	return g_strdup_printf("%s.%s@%s", public_id, hex, cfg->domain);
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
