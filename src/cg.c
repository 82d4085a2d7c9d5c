/*
 * cg.c - small things every module needs: the error domain, GMime
 * initialisation, protocol-safety checks and clocks.
 */
#include <string.h>
#include <time.h>

#include "cg.h"

GQuark
cg_error_quark(void)
{
	return g_quark_from_static_string("casegate-error-quark");
}

void
cg_mime_init(void)
{
	static gboolean done;

	if (done)
		return;
	done = TRUE;
	g_mime_init();
}

gboolean
cg_protocol_safe(const char *s, size_t maxlen)
{
	size_t n;

	if (s == NULL || *s == '\0')
		return FALSE;
	for (n = 0; s[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)s[n];

		if (n >= maxlen)
			return FALSE;
		if (ch < 0x20 || ch == 0x7f || ch == ' ' || ch == '<' || ch == '>')
			return FALSE;
	}
	return TRUE;
}

gboolean
cg_address_valid(const char *addr)
{
	const char *at;
	const unsigned char *p;

	if (!cg_protocol_safe(addr, 254))
		return FALSE;
	at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0')
		return FALSE;
	if (strchr(at + 1, '.') == NULL && strcmp(at + 1, "localhost") != 0)
		return FALSE;
	for (p = (const unsigned char *)addr; *p != '\0'; p++) {
		/* SMTP without SMTPUTF8: ASCII only; quotes and commas would
		 * need quoting rules we refuse to get wrong. */
		if (*p >= 0x80 || *p == '"' || *p == ',' || *p == ';' ||
		    *p == '(' || *p == ')' || *p == '\\' || *p == '[' || *p == ']')
			return FALSE;
	}
	if (strchr(at + 1, '@') != NULL || at[1] == '.' || at[strlen(at) - 1] == '.')
		return FALSE;
	return TRUE;
}

gint64
cg_now(void)
{
	return (gint64)time(NULL);
}

gint64
cg_mono_ms(void)
{
	return g_get_monotonic_time() / 1000;
}
