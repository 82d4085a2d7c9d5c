/*
 * json.h - just enough JSON output for casectl --json: strings escaped
 * per RFC 8259 (invalid UTF-8 replaced), numbers, null.
 */
#ifndef CG_JSON_H
#define CG_JSON_H

#include <glib.h>

/* Append s as a quoted JSON string, or null when s is NULL. */
void json_string(GString *out, const char *s);

/* Append "key": */
void json_key(GString *out, const char *key);

/* Append "key": "value" (or null) / "key": number / "key": true|false, with a leading comma unless first. */
void json_member_str(GString *out, gboolean *first, const char *key, const char *value);
void json_member_int(GString *out, gboolean *first, const char *key, gint64 value);
void json_member_bool(GString *out, gboolean *first, const char *key, gboolean value);

#endif
