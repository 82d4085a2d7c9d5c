/*
 * report.h - pure formatting helpers for casectl's reports: CSV fields
 * (RFC 4180), medians, durations, times, and the "Type / Sub type"
 * notation staff type.  No I/O, no database: unit-tested on their own.
 */
#ifndef CG_REPORT_H
#define CG_REPORT_H

#include <glib.h>

/*
 * Append s as one CSV field (RFC 4180): quoted, with embedded quotes
 * doubled, when it holds a comma, a quote, CR or LF; as is otherwise.
 * NULL is the empty field.  Invalid UTF-8 is replaced (U+FFFD).
 */
void report_csv_field(GString *out, const char *s);

/* Append n fields (NULL entries are empty) separated by commas, then CRLF. */
void report_csv_row(GString *out, const char *const *fields, gsize n);

/*
 * Median of n values (the mean of the two middle ones when n is even),
 * without changing v.  FALSE when n is 0.
 */
gboolean report_median(const gint64 *v, gsize n, double *median_r);

/* "45s", "12m", "3h 05m", "2d 04h"; negative is "-".  Newly allocated. */
char *report_duration(gint64 seconds);

/* "2026-11-29T10:00:00Z" (UTC), or "" for 0 or less.  Newly allocated. */
char *report_iso_time(gint64 t);

/*
 * Split "Type / Sub type / Update type" (1 to 3 parts, each trimmed,
 * none empty) into newly allocated strings; absent parts are NULL.
 * FALSE, with nothing allocated, for anything else.
 */
gboolean report_parse_type(const char *spec, char **type_r, char **sub_r, char **update_r);

#endif
