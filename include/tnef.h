/*
 * tnef.h - unpacking winmail.dat (application/ms-tnef) into the files
 * Outlook packed into it, with libytnef.
 */
#ifndef CG_TNEF_H
#define CG_TNEF_H

#include <glib.h>

typedef struct {
	char	*name;		/* as sent (untrusted: sanitise before use), never NULL */
	GBytes	*data;
} tnef_file;

void tnef_file_free(tnef_file *f);

/*
 * The attachments inside a TNEF blob of len bytes: at most max_files,
 * each at most max_size bytes (0: no limit; larger ones are skipped and
 * named in *problem_r).  Returns an array of tnef_file * (possibly
 * empty), or NULL when data is not TNEF or cannot be read, with the
 * reason in *problem_r (newly allocated; may be NULL to ignore).
 */
GPtrArray *tnef_unpack(const void *data, size_t len, guint max_files, gint64 max_size,
    char **problem_r);

#endif
