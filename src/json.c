/*
 * json.c - JSON output for scripts.  Small on purpose: casectl writes
 * JSON, it never reads it, so an escaper is all that is needed.
 */
#include "json.h"

void
json_string(GString *out, const char *s)
{
	g_autofree char *valid = NULL;
	const unsigned char *p;

	if (s == NULL) {
		g_string_append(out, "null");
		return;
	}
	if (!g_utf8_validate(s, -1, NULL))
		s = valid = g_utf8_make_valid(s, -1);
	g_string_append_c(out, '"');
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			g_string_append(out, "\\\"");
			break;
		case '\\':
			g_string_append(out, "\\\\");
			break;
		case '\n':
			g_string_append(out, "\\n");
			break;
		case '\r':
			g_string_append(out, "\\r");
			break;
		case '\t':
			g_string_append(out, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				g_string_append_printf(out, "\\u%04x", *p);
			else
				g_string_append_c(out, (char)*p);
		}
	}
	g_string_append_c(out, '"');
}

void
json_key(GString *out, const char *key)
{
	json_string(out, key);
	g_string_append_c(out, ':');
}

static void
comma(GString *out, gboolean *first)
{
	if (!*first)
		g_string_append_c(out, ',');
	*first = FALSE;
}

void
json_member_str(GString *out, gboolean *first, const char *key, const char *value)
{
	comma(out, first);
	json_key(out, key);
	json_string(out, value);
}

void
json_member_int(GString *out, gboolean *first, const char *key, gint64 value)
{
	comma(out, first);
	json_key(out, key);
	g_string_append_printf(out, "%" G_GINT64_FORMAT, value);
}

void
json_member_bool(GString *out, gboolean *first, const char *key, gboolean value)
{
	comma(out, first);
	json_key(out, key);
	g_string_append(out, value ? "true" : "false");
}
