/*
 * report.c - formatting for casectl's reports.
 *
 * Kept apart from casectl.c so the parts with rules to get right (CSV
 * quoting, an even-sized median, the "Type / Sub" notation) can be
 * tested without a database.  CSV follows RFC 4180 to the letter: CRLF
 * line ends, a field quoted only when it must be.  Leading "=", "+",
 * "-" or "@" are left alone (no formula-escaping): an export is data for
 * scripts first, and altering it would break round trips; casectl(1)
 * warns spreadsheet users.
 */
#include <stdlib.h>
#include <string.h>

#include "report.h"

void
report_csv_field(GString *out, const char *s)
{
	g_autofree char *valid = NULL;
	const char *p;

	if (s == NULL)
		return;
	valid = g_utf8_make_valid(s, -1);
	if (strpbrk(valid, ",\"\r\n") == NULL) {
		g_string_append(out, valid);
		return;
	}
	g_string_append_c(out, '"');
	for (p = valid; *p != '\0'; p++) {
		if (*p == '"')
			g_string_append_c(out, '"');
		g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

void
report_csv_row(GString *out, const char *const *fields, gsize n)
{
	gsize i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		report_csv_field(out, fields[i]);
	}
	g_string_append(out, "\r\n");
}

static int
cmp_int64(const void *a, const void *b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

	return x < y ? -1 : x > y;
}

gboolean
report_median(const gint64 *v, gsize n, double *median_r)
{
	g_autofree gint64 *copy = NULL;

	if (n == 0 || v == NULL)
		return FALSE;
	copy = g_memdup2(v, n * sizeof(*v));
	qsort(copy, n, sizeof(*copy), cmp_int64);
	/* Halves first: the sum of two large values could overflow. */
	if (n % 2 == 1)
		*median_r = (double)copy[n / 2];
	else
		*median_r = (double)copy[n / 2 - 1] / 2.0 + (double)copy[n / 2] / 2.0;
	return TRUE;
}

char *
report_duration(gint64 s)
{
	if (s < 0)
		return g_strdup("-");
	if (s < 60)
		return g_strdup_printf("%" G_GINT64_FORMAT "s", s);
	if (s < 3600)
		return g_strdup_printf("%" G_GINT64_FORMAT "m", s / 60);
	if (s < 86400)
		return g_strdup_printf("%" G_GINT64_FORMAT "h %02" G_GINT64_FORMAT "m", s / 3600,
		    s % 3600 / 60);
	return g_strdup_printf("%" G_GINT64_FORMAT "d %02" G_GINT64_FORMAT "h", s / 86400,
	    s % 86400 / 3600);
}

char *
report_iso_time(gint64 t)
{
	g_autoptr(GDateTime) dt = NULL;

	if (t <= 0 || (dt = g_date_time_new_from_unix_utc(t)) == NULL)
		return g_strdup("");
	return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

gboolean
report_parse_type(const char *spec, char **type_r, char **sub_r, char **update_r)
{
	g_auto(GStrv) parts = NULL;
	guint n, i;

	*type_r = *sub_r = *update_r = NULL;
	if (spec == NULL)
		return FALSE;
	parts = g_strsplit(spec, "/", 4);
	n = g_strv_length(parts);
	if (n < 1 || n > 3)
		return FALSE;
	for (i = 0; i < n; i++)
		if (*g_strstrip(parts[i]) == '\0')
			return FALSE;
	*type_r = g_strdup(parts[0]);
	*sub_r = n > 1 ? g_strdup(parts[1]) : NULL;
	*update_r = n > 2 ? g_strdup(parts[2]) : NULL;
	return TRUE;
}
