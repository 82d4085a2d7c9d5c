/*
 * cg.h - what every casegate module shares: the error domain and a few
 * autoptr declarations that GMime 3.2 and libconfig do not provide.
 *
 * Errors are GErrors in CG_ERROR.  The code tells the caller what to do:
 *   CG_ERROR_TEMP    retry later; leave the message where it is
 *                    (IMAP timeout, SQLITE_BUSY, SMTP 4xx, disk full)
 *   CG_ERROR_PERM    give up on this item, record why, move on
 *                    (SMTP 5xx, malformed beyond repair)
 *   CG_ERROR_CONFIG  stop and tell the admin (bad file, bad certificate)
 */
#ifndef CG_H
#define CG_H

#include <glib.h>
#include <gmime/gmime.h>

#define CG_ERROR (cg_error_quark())
typedef enum {
	CG_ERROR_TEMP = 1,
	CG_ERROR_PERM,
	CG_ERROR_CONFIG,
} cg_error_code;

GQuark cg_error_quark(void);

/* exit codes from sysexits.h, spelled out so no header is needed */
#define CG_EX_OK	  0
#define CG_EX_USAGE	 64
#define CG_EX_DATAERR	 65
#define CG_EX_NOINPUT	 66
#define CG_EX_SOFTWARE	 70
#define CG_EX_TEMPFAIL	 75
#define CG_EX_CONFIG	 78

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeMessage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeObject, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimePart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeTextPart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeMultipart, g_object_unref)

/* g_mime_init() is not thread-safe and must run once; call this from main(). */
void cg_mime_init(void);

/*
 * True when s is safe to put into a protocol line (IMAP folder, SMTP
 * address): non-empty, at most maxlen bytes, no CR, LF, NUL, other
 * control characters, '<', '>' or whitespace.  libetpan escapes none of
 * them (../docs/VIOLATIONS.md).
 */
gboolean cg_protocol_safe(const char *s, size_t maxlen);

/*
 * True when addr looks like a deliverable mailbox: local@domain, ASCII,
 * protocol-safe, at most 254 bytes.
 */
gboolean cg_address_valid(const char *addr);

/* Current time in seconds since the epoch and in milliseconds (monotonic). */
gint64 cg_now(void);
gint64 cg_mono_ms(void);

#endif
