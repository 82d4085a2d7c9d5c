/*
 * spool.c - content-addressed files.
 *
 * Rationale:
 * - A file's name is the sha256 of its bytes, so a second copy of the
 *   same message or attachment costs nothing, a name can never come from
 *   a message, and a reader can check what it got.
 * - Durability follows the classic recipe: write to tmp/, fsync the file,
 *   rename into KIND/ab/<digest>, fsync the directory.  A crash leaves at
 *   worst a stray file in tmp/, never a half-written file under a digest.
 * - Batch mode (spool_set_batch) skips both fsyncs: the daemon's worker
 *   writes a raw message, its attachments and an acknowledgement per
 *   message (4 to 5 fsyncs of about 1 ms each, most of its wall time),
 *   then makes all of a group durable with one syncfs(2) (spool_sync)
 *   right before the COMMIT whose rows refer to them.  The rule either
 *   way: a file is durable before a committed row can name it.  Until
 *   that barrier a crash can leave a file under its digest that is
 *   shorter than it should be (a rename reaches the disk before the
 *   data); no committed row names it, and a later commit of the same
 *   digest sees the wrong size and replaces it instead of trusting it.
 * - SHA-256 comes from GnuTLS (nettle, with the CPU's SHA instructions):
 *   4.5 times the speed of GChecksum here, and hashing every byte the
 *   spool writes was 46% of the daemon's CPU (bench/README.md).
 * - Attachments are decoded by GMime straight into the spool through a
 *   tiny GMimeStream subclass that writes and hashes, so an attachment
 *   never sits in memory whole.
 * - Files are 0640 and directories 0750: the spool holds members' mail.
 */
#define _GNU_SOURCE		/* syncfs */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "cg.h"
#include "log.h"
#include "spool.h"
#include "text.h"

#define SPOOL_NAME_MAX	200
#define SHA256_LEN	32

/* syncfs(2) is Linux only; elsewhere batch mode is ignored (fsync per file). */
#ifdef __linux__
#define HAVE_SYNCFS	1
#else
#define HAVE_SYNCFS	0
#endif

struct spool {
	char		*dir;
	int		 dirfd;		/* the spool's root, for syncfs */
	gboolean	 batch;		/* commits leave durability to spool_sync */
	gboolean	 pending;	/* a batch commit since the last spool_sync */
};

struct spool_tmp {
	spool		*sp;
	int		 fd;
	char		*path;
	gnutls_hash_hd_t hash;		/* NULL once the digest was taken */
	gint64		 size;
	GError		*error;		/* first write error, reported at commit */
};

static const char *const spool_kinds[] = { SPOOL_RAW, SPOOL_ATT, SPOOL_OUT, NULL };

static gboolean
kind_valid(const char *kind)
{
	int i;

	for (i = 0; kind != NULL && spool_kinds[i] != NULL; i++)
		if (strcmp(kind, spool_kinds[i]) == 0)
			return TRUE;
	return FALSE;
}

static gboolean
digest_valid(const char *digest)
{
	int i;

	if (digest == NULL)
		return FALSE;
	for (i = 0; i < 64; i++)
		if (!g_ascii_isdigit(digest[i]) && !(digest[i] >= 'a' && digest[i] <= 'f'))
			return FALSE;
	return digest[64] == '\0';
}

static gboolean
make_dir(const char *path, int code, GError **error)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return TRUE;
	g_set_error(error, CG_ERROR, code, "spool: mkdir(%s) failed: %s",
	    path, g_strerror(errno));
	return FALSE;
}

static gboolean
fsync_dir(const char *path, GError **error)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1 || fsync(fd) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: fsync(%s) "
		    "failed: %s", path, g_strerror(errno));
		if (fd != -1)
			close(fd);
		return FALSE;
	}
	close(fd);
	return TRUE;
}

spool *
spool_open(const char *dir, GError **error)
{
	g_autofree char *tmp = NULL;
	spool *sp;
	int i;

	if (g_mkdir_with_parents(dir, 0750) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "spool: cannot "
		    "create %s: %s", dir, g_strerror(errno));
		return NULL;
	}
	tmp = g_build_filename(dir, "tmp", NULL);
	/* a spool we cannot set up is the admin's problem, not the message's */
	if (!make_dir(tmp, CG_ERROR_CONFIG, error))
		return NULL;
	for (i = 0; spool_kinds[i] != NULL; i++) {
		g_autofree char *k = g_build_filename(dir, spool_kinds[i], NULL);

		if (!make_dir(k, CG_ERROR_CONFIG, error))
			return NULL;
	}
	if (access(tmp, W_OK) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "spool: %s is "
		    "not writable: %s", tmp, g_strerror(errno));
		return NULL;
	}
	sp = g_new0(spool, 1);
	sp->dir = g_strdup(dir);
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "spool: open(%s) "
		    "failed: %s", dir, g_strerror(errno));
		spool_close(sp);
		return NULL;
	}
	return sp;
}

void
spool_close(spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->dirfd != -1)
		close(sp->dirfd);
	g_free(sp->dir);
	g_free(sp);
}

void
spool_set_batch(spool *sp, gboolean on)
{
	sp->batch = on && HAVE_SYNCFS;
}

gboolean
spool_batch(const spool *sp)
{
	return sp->batch;
}

gboolean
spool_sync(spool *sp, GError **error)
{
	if (sp == NULL || !sp->pending)
		return TRUE;
#if HAVE_SYNCFS
	/*
	 * One flush of the file system for a whole group instead of two
	 * fsyncs per file.  Since Linux 5.8 syncfs reports write-back
	 * errors of the file system since dirfd was opened; before, it
	 * always returned 0.
	 */
	if (syncfs(sp->dirfd) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: syncfs(%s) "
		    "failed: %s", sp->dir, g_strerror(errno));
		return FALSE;
	}
#endif
	sp->pending = FALSE;
	return TRUE;
}

spool_tmp *
spool_tmp_new(spool *sp, GError **error)
{
	spool_tmp *t;
	char *path;
	int fd;

	path = g_build_filename(sp->dir, "tmp", "spool-XXXXXX", NULL);
	fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0640);
	if (fd == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: cannot "
		    "create a file in %s/tmp: %s", sp->dir, g_strerror(errno));
		g_free(path);
		return NULL;
	}
	fchmod(fd, 0640);	/* whatever the umask */
	t = g_new0(spool_tmp, 1);
	t->sp = sp;
	t->fd = fd;
	t->path = path;
	if (gnutls_hash_init(&t->hash, GNUTLS_DIG_SHA256) < 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: GnuTLS "
		    "offers no SHA-256");
		t->hash = NULL;
		spool_tmp_abort(t);
		return NULL;
	}
	return t;
}

gboolean
spool_tmp_write(spool_tmp *t, const void *buf, size_t len, GError **error)
{
	const char *p = buf;
	ssize_t n;

	if (t->error != NULL) {
		g_propagate_error(error, g_error_copy(t->error));
		return FALSE;
	}
	if (len > 0)
		gnutls_hash(t->hash, buf, len);
	while (len > 0) {
		n = write(t->fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			g_set_error(&t->error, CG_ERROR, CG_ERROR_TEMP,
			    "spool: write(%s) failed: %s", t->path,
			    n == 0 ? g_strerror(ENOSPC) : g_strerror(errno));
			g_propagate_error(error, g_error_copy(t->error));
			return FALSE;
		}
		p += n;
		len -= n;
		t->size += n;
	}
	return TRUE;
}

gint64
spool_tmp_size(const spool_tmp *t)
{
	return t->size;
}

const char *
spool_tmp_path(const spool_tmp *t)
{
	return t->path;
}

static void
tmp_free(spool_tmp *t)
{
	if (t->fd != -1)
		close(t->fd);
	if (t->hash != NULL)
		gnutls_hash_deinit(t->hash, NULL);
	g_clear_error(&t->error);
	g_free(t->path);
	g_free(t);
}

void
spool_tmp_abort(spool_tmp *t)
{
	if (t == NULL)
		return;
	unlink(t->path);
	tmp_free(t);
}

/* fsync a file that is already in place. */
static gboolean
fsync_file(const char *path, GError **error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1 || fsync(fd) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: fsync(%s) "
		    "failed: %s", path, g_strerror(errno));
		if (fd != -1)
			close(fd);
		return FALSE;
	}
	close(fd);
	return TRUE;
}

/*
 * The file under digest exists already.  It holds the same bytes if it
 * has the same size: a different size is what a crash before a batch's
 * barrier leaves (the rename on disk, the data not), never a file a
 * committed row names, so it is replaced.  Same size: keep it, but it
 * may itself be waiting for another writer's barrier, so make it
 * durable too (fsync now, or with this handle's spool_sync).
 */
static gboolean
tmp_install_existing(spool_tmp *t, const char *dir, const char *dest,
    const struct stat *st, gboolean *done_r, GError **error)
{
	*done_r = FALSE;
	if (st->st_size != t->size) {
		log_warnx("spool: %s has %lld bytes instead of %lld (left by a "
		    "crash?): replaced", dest, (long long)st->st_size,
		    (long long)t->size);
		return TRUE;
	}
	unlink(t->path);
	*done_r = TRUE;
	if (t->sp->batch) {
		t->sp->pending = TRUE;
		return TRUE;
	}
	return fsync_file(dest, error) && fsync_dir(dir, error);
}

/* Move the finished file to kind/ab/digest; fsync the directories touched. */
static gboolean
tmp_install(spool_tmp *t, const char *kind, const char *digest, GError **error)
{
	g_autofree char *kdir = g_build_filename(t->sp->dir, kind, NULL);
	g_autofree char *sub = g_strndup(digest, 2);
	g_autofree char *dir = g_build_filename(kdir, sub, NULL);
	g_autofree char *dest = g_build_filename(dir, digest, NULL);
	gboolean batch = t->sp->batch, done;
	struct stat st;

	if (stat(dir, &st) == -1) {
		if (!make_dir(dir, CG_ERROR_TEMP, error) ||
		    (!batch && !fsync_dir(kdir, error)))
			return FALSE;
	}
	if (stat(dest, &st) == 0) {
		if (!tmp_install_existing(t, dir, dest, &st, &done, error))
			return FALSE;
		if (done)
			return TRUE;
	}
	if (rename(t->path, dest) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: rename(%s, "
		    "%s) failed: %s", t->path, dest, g_strerror(errno));
		return FALSE;
	}
	if (batch) {
		t->sp->pending = TRUE;
		return TRUE;
	}
	return fsync_dir(dir, error);
}

/* The hex digest of what was written; the hash is used up. */
static char *
tmp_digest(spool_tmp *t)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_LEN];
	char *out = g_malloc(2 * SHA256_LEN + 1);
	int i;

	gnutls_hash_deinit(t->hash, md);
	t->hash = NULL;
	for (i = 0; i < SHA256_LEN; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[2 * SHA256_LEN] = '\0';
	return out;
}

char *
spool_tmp_commit(spool_tmp *t, const char *kind, GError **error)
{
	char *digest;
	int rc;

	if (t->error != NULL) {
		g_propagate_error(error, g_steal_pointer(&t->error));
		spool_tmp_abort(t);
		return NULL;
	}
	if (!kind_valid(kind)) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: unknown "
		    "kind \"%s\"", kind != NULL ? kind : "(null)");
		spool_tmp_abort(t);
		return NULL;
	}
	/* in batch mode the data is flushed by spool_sync, with the rest */
	if (!t->sp->batch && fsync(t->fd) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: fsync(%s) "
		    "failed: %s", t->path, g_strerror(errno));
		spool_tmp_abort(t);
		return NULL;
	}
	rc = close(t->fd);
	t->fd = -1;		/* closed even when close fails */
	if (rc == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_TEMP, "spool: close(%s) "
		    "failed: %s", t->path, g_strerror(errno));
		spool_tmp_abort(t);
		return NULL;
	}
	digest = tmp_digest(t);
	if (!tmp_install(t, kind, digest, error)) {
		g_free(digest);
		spool_tmp_abort(t);
		return NULL;
	}
	tmp_free(t);
	return digest;
}

char *
spool_path(spool *sp, const char *kind, const char *digest)
{
	char sub[3];

	if (sp == NULL || !kind_valid(kind) || !digest_valid(digest))
		return NULL;
	sub[0] = digest[0];
	sub[1] = digest[1];
	sub[2] = '\0';
	return g_build_filename(sp->dir, kind, sub, digest, NULL);
}

char *
spool_put(spool *sp, const char *kind, const void *buf, size_t len, GError **error)
{
	spool_tmp *t = spool_tmp_new(sp, error);

	if (t == NULL)
		return NULL;
	if (!spool_tmp_write(t, buf, len, error)) {
		spool_tmp_abort(t);
		return NULL;
	}
	return spool_tmp_commit(t, kind, error);
}

/*
 * The stream: write-only, forwards to spool_tmp_write.  An error is kept
 * in the spool_tmp and reported by spool_tmp_commit.
 */

typedef struct {
	GMimeStream	 parent;
	spool_tmp	*t;
} SpoolStream;

typedef struct {
	GMimeStreamClass parent_class;
} SpoolStreamClass;

G_DEFINE_TYPE(SpoolStream, spool_stream, GMIME_TYPE_STREAM)

static ssize_t
spool_stream_read(GMimeStream *s, char *buf, size_t len)
{
	errno = EBADF;
	return -1;
}

static ssize_t
spool_stream_write(GMimeStream *s, const char *buf, size_t len)
{
	SpoolStream *ss = (SpoolStream *)s;

	if (ss->t == NULL || !spool_tmp_write(ss->t, buf, len, NULL)) {
		errno = ENOSPC;
		return -1;
	}
	s->position += len;
	return (ssize_t)len;
}

static int
spool_stream_flush(GMimeStream *s)
{
	return 0;
}

static int
spool_stream_close(GMimeStream *s)
{
	((SpoolStream *)s)->t = NULL;
	return 0;
}

static gboolean
spool_stream_eos(GMimeStream *s)
{
	return FALSE;
}

static int
spool_stream_reset(GMimeStream *s)
{
	return -1;
}

static gint64
spool_stream_seek(GMimeStream *s, gint64 offset, GMimeSeekWhence whence)
{
	return -1;
}

static gint64
spool_stream_tell(GMimeStream *s)
{
	return s->position;
}

static gint64
spool_stream_length(GMimeStream *s)
{
	return -1;
}

static GMimeStream *
spool_stream_substream(GMimeStream *s, gint64 start, gint64 end)
{
	return NULL;
}

static void
spool_stream_class_init(SpoolStreamClass *klass)
{
	GMimeStreamClass *sc = GMIME_STREAM_CLASS(klass);

	sc->read = spool_stream_read;
	sc->write = spool_stream_write;
	sc->flush = spool_stream_flush;
	sc->close = spool_stream_close;
	sc->eos = spool_stream_eos;
	sc->reset = spool_stream_reset;
	sc->seek = spool_stream_seek;
	sc->tell = spool_stream_tell;
	sc->length = spool_stream_length;
	sc->substream = spool_stream_substream;
}

static void
spool_stream_init(SpoolStream *s)
{
}

GMimeStream *
spool_tmp_stream(spool_tmp *t)
{
	SpoolStream *s = g_object_new(spool_stream_get_type(), NULL);

	g_mime_stream_construct(GMIME_STREAM(s), 0, -1);
	s->t = t;
	return GMIME_STREAM(s);
}

/*
 * Safe names.
 */

static gboolean
name_char_ok(gunichar c)
{
	if (c < 0x20 || (c >= 0x7F && c < 0xA0))
		return FALSE;
	/* bidi overrides turn "gpj.exe" into what looks like "exe.jpg" */
	if ((c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
	    c == 0x200E || c == 0x200F || c == 0xFEFF)
		return FALSE;
	return TRUE;
}

char *
spool_safe_name(const char *untrusted)
{
	g_autofree char *u = NULL;
	const char *base, *p;
	GString *out;

	if (untrusted == NULL)
		return g_strdup("attachment");
	u = text_make_utf8(untrusted, -1, NULL);
	/* the last path component, for both kinds of separator */
	base = u;
	for (p = u; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	out = g_string_new(NULL);
	for (p = base; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (!name_char_ok(c))
			continue;
		if (out->len == 0 && (c == '.' || g_unichar_isspace(c)))
			continue;
		g_string_append_unichar(out, c);
	}
	text_truncate_utf8(out->str, SPOOL_NAME_MAX);
	g_string_set_size(out, strlen(out->str));
	while (out->len > 0 && g_ascii_isspace(out->str[out->len - 1]))
		g_string_truncate(out, out->len - 1);
	if (out->len == 0)
		g_string_assign(out, "attachment");
	return g_string_free(out, FALSE);
}
