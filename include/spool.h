/*
 * spool.h - content-addressed files: raw messages, attachments and
 * composed outgoing mail.
 *
 * Files are written to tmp/, fsynced, then renamed to KIND/ab/<sha256>
 * and the directory fsynced (or, in batch mode, made durable together
 * by spool_sync).  A digest is 64 lowercase hex characters and
 * the only thing that ever becomes part of a path: no name taken from a
 * message is used for a file name.
 */
#ifndef CG_SPOOL_H
#define CG_SPOOL_H

#include <glib.h>
#include <gmime/gmime.h>

typedef struct spool spool;
typedef struct spool_tmp spool_tmp;

/* The kinds of files, each a subdirectory. */
#define SPOOL_RAW	"raw"	/* raw incoming messages */
#define SPOOL_ATT	"att"	/* decoded attachments */
#define SPOOL_OUT	"out"	/* composed outgoing messages */

/* Open (creating as needed, mode 0750) the spool rooted at dir. */
spool *spool_open(const char *dir, GError **error);
void spool_close(spool *sp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(spool, spool_close)

/* Start a new temporary file in the spool's tmp/. */
spool_tmp *spool_tmp_new(spool *sp, GError **error);

/* Append bytes, hashing as they go.  Fails on a short write (ENOSPC). */
gboolean spool_tmp_write(spool_tmp *t, const void *buf, size_t len, GError **error);

/*
 * A GMimeStream writing to the temporary file (caller unrefs it); bytes
 * written through it are hashed too.  Use either this or spool_tmp_write
 * for one file, not both.
 */
GMimeStream *spool_tmp_stream(spool_tmp *t);

/* Bytes written so far. */
gint64 spool_tmp_size(const spool_tmp *t);

/* Path of the temporary file (valid until commit or abort). */
const char *spool_tmp_path(const spool_tmp *t);

/*
 * fsync, rename into kind/ and fsync the directory (in batch mode: only
 * rename; see spool_set_batch).  Returns the hex sha256 digest (newly
 * allocated) and frees t in every case.  If a file with that digest
 * exists already the temporary one is dropped (unless the existing one
 * has the wrong size, a crash's leftover: then it is replaced).
 */
char *spool_tmp_commit(spool_tmp *t, const char *kind, GError **error);

/*
 * Batch mode (off after spool_open): spool_tmp_commit and spool_put on
 * this handle skip their fsyncs, and the caller promises to call
 * spool_sync before committing any database row that names a file
 * committed meanwhile.  A no-op where syncfs(2) is missing (not Linux).
 * A handle belongs to one thread.
 */
void spool_set_batch(spool *sp, gboolean on);
gboolean spool_batch(const spool *sp);

/*
 * Make every file committed through this handle in batch mode durable,
 * with one syncfs(2) of the spool's file system; TRUE at once when there
 * is nothing to flush.  CG_ERROR_TEMP on failure: commit nothing that
 * names those files.
 */
gboolean spool_sync(spool *sp, GError **error);

/* Remove the temporary file and free t; NULL-safe. */
void spool_tmp_abort(spool_tmp *t);

/*
 * Path of a committed file (newly allocated), or NULL if digest is not
 * 64 lowercase hex characters or kind is not one of the SPOOL_ kinds.
 */
char *spool_path(spool *sp, const char *kind, const char *digest);

/* Store a whole buffer; returns the digest like spool_tmp_commit. */
char *spool_put(spool *sp, const char *kind, const void *buf, size_t len, GError **error);

/*
 * A display name safe to show and to put in a Content-Disposition:
 * valid UTF-8, no directory part, no control characters, no leading dots,
 * at most 200 bytes, never empty ("attachment" then).  Newly allocated.
 */
char *spool_safe_name(const char *untrusted);

#endif
