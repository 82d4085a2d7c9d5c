/*
 * test-spool.c - content-addressed spool and safe attachment names.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "spool.h"

/* sha256("hello\n") */
#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

static char *
make_tmpdir(void)
{
	GError *err = NULL;
	char *d = g_dir_make_tmp("test-spool-XXXXXX", &err);

	g_assert_no_error(err);
	return d;
}

static void
rm_rf(const char *path)
{
	g_autofree char *cmd = NULL;

	g_assert_true(g_str_has_prefix(path, g_get_tmp_dir()));
	cmd = g_strdup_printf("rm -rf '%s'", path);
	g_assert_cmpint(system(cmd), ==, 0);
}

static void
test_put_and_path(void)
{
	g_autofree char *dir = make_tmpdir();
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = spool_open(dir, &err);
	g_autofree char *d1 = NULL, *d2 = NULL, *path = NULL, *data = NULL;
	struct stat st;
	gsize len;

	g_assert_no_error(err);
	d1 = spool_put(sp, SPOOL_RAW, "hello\n", 6, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(d1, ==, HELLO_SHA);
	g_assert_cmpuint(strlen(d1), ==, 64);
	path = spool_path(sp, SPOOL_RAW, d1);
	g_assert_nonnull(path);
	g_assert_true(g_str_has_suffix(path, "/raw/58/" HELLO_SHA));
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpmem(data, len, "hello\n", 6);
	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);
	g_free(path);
	path = g_build_filename(dir, "raw", "58", NULL);
	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0750);

	/* the same bytes again: same digest, one file, tmp/ left empty */
	d2 = spool_put(sp, SPOOL_RAW, "hello\n", 6, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(d1, ==, d2);
	g_free(path);
	path = g_build_filename(dir, "tmp", NULL);
	{
		GDir *gd = g_dir_open(path, 0, NULL);

		g_assert_nonnull(gd);
		g_assert_null(g_dir_read_name(gd));
		g_dir_close(gd);
	}
	rm_rf(dir);
}

/* GnuTLS's SHA-256 against GLib's, over writes of awkward sizes. */
static void
test_digest_chunks(void)
{
	static const gsize chunks[] = { 1, 63, 64, 65, 4096, 65537, 0, 7 };
	g_autofree char *dir = make_tmpdir();
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = spool_open(dir, &err);
	g_autofree guchar *data = g_malloc(1 << 20);
	g_autofree char *want = NULL, *got = NULL;
	spool_tmp *t;
	gsize off = 0, i;

	for (i = 0; i < (1 << 20); i++)
		data[i] = (guchar)(i * 2654435761u >> 13);
	t = spool_tmp_new(sp, &err);
	g_assert_nonnull(t);
	for (i = 0; off < (1 << 20); i++) {
		gsize n = MIN(chunks[i % G_N_ELEMENTS(chunks)] * (i + 1), (1 << 20) - off);

		g_assert_true(spool_tmp_write(t, data + off, n, &err));
		off += n;
	}
	got = spool_tmp_commit(t, SPOOL_RAW, &err);
	g_assert_no_error(err);
	want = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, 1 << 20);
	g_assert_cmpstr(got, ==, want);
	g_free(got);
	/* the empty file */
	got = spool_put(sp, SPOOL_RAW, "", 0, &err);
	g_assert_cmpstr(got, ==,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	rm_rf(dir);
}

/* Batch mode: the same files, made durable by spool_sync. */
static void
test_batch(void)
{
	g_autofree char *dir = make_tmpdir();
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = spool_open(dir, &err);
	g_autofree char *d1 = NULL, *d2 = NULL, *path = NULL, *data = NULL;
	gsize len;

	g_assert_false(spool_batch(sp));
	g_assert_true(spool_sync(sp, &err));	/* nothing to do */
	spool_set_batch(sp, TRUE);
	g_assert_true(spool_batch(sp));
	d1 = spool_put(sp, SPOOL_RAW, "hello\n", 6, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(d1, ==, HELLO_SHA);
	d2 = spool_put(sp, SPOOL_OUT, "hello\n", 6, &err);	/* a new kind/ab/ */
	g_assert_cmpstr(d2, ==, HELLO_SHA);
	path = spool_path(sp, SPOOL_OUT, d2);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpmem(data, len, "hello\n", 6);
	g_assert_true(spool_sync(sp, &err));
	g_assert_no_error(err);
	g_assert_true(spool_sync(sp, &err));
	spool_set_batch(sp, FALSE);
	g_assert_false(spool_batch(sp));
	rm_rf(dir);
}

/*
 * A crash before a batch's barrier can leave a short file under a
 * digest; the next commit of those bytes replaces it.  A file of the
 * right size is kept (the same inode).
 */
static void
test_leftover(void)
{
	g_autofree char *dir = make_tmpdir();
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = spool_open(dir, &err);
	g_autofree char *sub = g_build_filename(dir, SPOOL_RAW, "58", NULL);
	g_autofree char *path = spool_path(sp, SPOOL_RAW, HELLO_SHA);
	g_autofree char *d = NULL, *data = NULL;
	struct stat st1, st2;
	gsize len;

	g_assert_cmpint(g_mkdir_with_parents(sub, 0750), ==, 0);
	g_assert_true(g_file_set_contents(path, "", 0, NULL));
	d = spool_put(sp, SPOOL_RAW, "hello\n", 6, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(d, ==, HELLO_SHA);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpmem(data, len, "hello\n", 6);
	g_assert_cmpint(stat(path, &st1), ==, 0);
	g_free(d);
	spool_set_batch(sp, TRUE);
	d = spool_put(sp, SPOOL_RAW, "hello\n", 6, &err);
	g_assert_cmpstr(d, ==, HELLO_SHA);
	g_assert_cmpint(stat(path, &st2), ==, 0);
	g_assert_cmpuint(st1.st_ino, ==, st2.st_ino);
	g_assert_true(spool_sync(sp, &err));
	rm_rf(dir);
}

static void
test_path_rejects(void)
{
	static const struct { const char *kind, *digest; gboolean ok; } rows[] = {
		{ SPOOL_RAW, HELLO_SHA, TRUE },
		{ SPOOL_ATT, HELLO_SHA, TRUE },
		{ SPOOL_OUT, HELLO_SHA, TRUE },
		{ "tmp", HELLO_SHA, FALSE },
		{ "../raw", HELLO_SHA, FALSE },
		{ NULL, HELLO_SHA, FALSE },
		{ SPOOL_RAW, NULL, FALSE },
		{ SPOOL_RAW, "", FALSE },
		{ SPOOL_RAW, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0", FALSE },
		{ SPOOL_RAW, HELLO_SHA "0", FALSE },
		{ SPOOL_RAW, "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03", FALSE },
		{ SPOOL_RAW, "../../../../../../../../../../../../../../../../../etc/passwd/..", FALSE },
		{ SPOOL_RAW, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be0g", FALSE },
	};
	g_autofree char *dir = make_tmpdir();
	g_autoptr(spool) sp = spool_open(dir, NULL);
	size_t i;

	g_assert_nonnull(sp);
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *p = spool_path(sp, rows[i].kind, rows[i].digest);

		if (rows[i].ok)
			g_assert_nonnull(p);
		else
			g_assert_null(p);
	}
	rm_rf(dir);
}

static void
test_stream(void)
{
	g_autofree char *dir = make_tmpdir();
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = spool_open(dir, &err);
	spool_tmp *t = spool_tmp_new(sp, &err);
	g_autofree char *digest = NULL, *path = NULL, *data = NULL;
	g_autofree char *tmppath = NULL;
	GMimeStream *s;
	gsize len;

	g_assert_no_error(err);
	g_assert_nonnull(t);
	tmppath = g_strdup(spool_tmp_path(t));
	s = spool_tmp_stream(t);
	g_assert_cmpint(g_mime_stream_write_string(s, "hel"), ==, 3);
	g_assert_cmpint(g_mime_stream_write(s, "lo\n", 3), ==, 3);
	g_assert_cmpint(g_mime_stream_flush(s), ==, 0);
	g_object_unref(s);
	g_assert_cmpint(spool_tmp_size(t), ==, 6);
	g_assert_true(g_file_test(tmppath, G_FILE_TEST_EXISTS));
	digest = spool_tmp_commit(t, SPOOL_ATT, &err);
	g_assert_no_error(err);
	g_assert_cmpstr(digest, ==, HELLO_SHA);
	g_assert_false(g_file_test(tmppath, G_FILE_TEST_EXISTS));
	path = spool_path(sp, SPOOL_ATT, digest);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpmem(data, len, "hello\n", 6);
	rm_rf(dir);
}

static void
test_abort_and_bad_kind(void)
{
	g_autofree char *dir = make_tmpdir();
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = spool_open(dir, &err);
	g_autofree char *tmppath = NULL;
	spool_tmp *t;
	char *digest;

	t = spool_tmp_new(sp, &err);
	g_assert_nonnull(t);
	tmppath = g_strdup(spool_tmp_path(t));
	g_assert_true(spool_tmp_write(t, "x", 1, &err));
	spool_tmp_abort(t);
	g_assert_false(g_file_test(tmppath, G_FILE_TEST_EXISTS));
	spool_tmp_abort(NULL);

	t = spool_tmp_new(sp, &err);
	g_free(tmppath);
	tmppath = g_strdup(spool_tmp_path(t));
	digest = spool_tmp_commit(t, "../etc", &err);
	g_assert_null(digest);
	g_assert_error(err, CG_ERROR, CG_ERROR_TEMP);
	g_assert_false(g_file_test(tmppath, G_FILE_TEST_EXISTS));
	rm_rf(dir);
}

/*
 * A full disk, simulated with RLIMIT_FSIZE (works for root too, unlike
 * a read-only directory): write() fails with EFBIG after a short write.
 */
static void
test_short_write(void)
{
	g_autofree char *dir = make_tmpdir();
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = spool_open(dir, &err);
	g_autofree char *buf = g_malloc0(64 * 1024);
	struct rlimit old, lim;
	GMimeStream *s;
	spool_tmp *t;
	char *digest;

	g_assert_nonnull(sp);
	signal(SIGXFSZ, SIG_IGN);
	g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &old), ==, 0);
	lim = old;
	lim.rlim_cur = 10000;

	/* through spool_tmp_write */
	t = spool_tmp_new(sp, &err);
	g_assert_nonnull(t);
	g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &lim), ==, 0);
	g_assert_false(spool_tmp_write(t, buf, 64 * 1024, &err));
	g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &old), ==, 0);
	g_assert_error(err, CG_ERROR, CG_ERROR_TEMP);
	g_assert_nonnull(strstr(err->message, "write("));
	g_clear_error(&err);
	digest = spool_tmp_commit(t, SPOOL_RAW, &err);
	g_assert_null(digest);
	g_assert_error(err, CG_ERROR, CG_ERROR_TEMP);
	g_clear_error(&err);

	/* through the GMime stream: the error surfaces at commit */
	t = spool_tmp_new(sp, &err);
	s = spool_tmp_stream(t);
	g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &lim), ==, 0);
	g_assert_cmpint(g_mime_stream_write(s, buf, 64 * 1024), ==, -1);
	g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &old), ==, 0);
	g_object_unref(s);
	digest = spool_tmp_commit(t, SPOOL_ATT, &err);
	g_assert_null(digest);
	g_assert_error(err, CG_ERROR, CG_ERROR_TEMP);
	signal(SIGXFSZ, SIG_DFL);
	rm_rf(dir);
}

static void
test_open_errors(void)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *dir = make_tmpdir();
	g_autofree char *file = g_build_filename(dir, "plainfile", NULL);
	g_autofree char *below = g_build_filename(file, "spool", NULL);
	spool *sp;

	/* a regular file where a directory should be */
	g_assert_true(g_file_set_contents(file, "x", 1, NULL));
	sp = spool_open(below, &err);
	g_assert_null(sp);
	g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
	g_clear_error(&err);
	sp = spool_open(file, &err);
	g_assert_null(sp);
	g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
	spool_close(NULL);
	rm_rf(dir);
}

static void
test_safe_name(void)
{
	static const struct { const char *in, *out; } rows[] = {
		{ "report.pdf", "report.pdf" },
		{ "../../etc/passwd", "passwd" },
		{ "..\\..\\x", "x" },
		{ "C:\\Users\\me\\bill.doc", "bill.doc" },
		{ "/abs", "abs" },
		{ "/", "attachment" },
		{ "dir/", "attachment" },
		{ ".", "attachment" },
		{ "..", "attachment" },
		{ "...", "attachment" },
		{ ".bashrc", "bashrc" },
		{ "", "attachment" },
		{ "   ", "attachment" },
		{ "\r\nX: y", "X: y" },
		{ "a\rb\nc\td", "abcd" },
		{ "evil\xe2\x80\xaegpj.exe", "evilgpj.exe" },	/* U+202E */
		{ "caf\xe9.txt", "caf\xc3\xa9.txt" },		/* latin1 -> UTF-8 */
		{ "\xff\xfe", "\xc3\xbf\xc3\xbe" },
		{ "r\xc3\xa9sum\xc3\xa9.docx", "r\xc3\xa9sum\xc3\xa9.docx" },
		{ " spaced name.txt ", "spaced name.txt" },
		{ "a\x7f" "b", "ab" },
		{ "a\xc2\x85" "b", "ab" },			/* U+0085 NEL */
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *got = spool_safe_name(rows[i].in);

		g_assert_cmpstr(got, ==, rows[i].out);
	}
	{
		g_autofree char *got = spool_safe_name(NULL);

		g_assert_cmpstr(got, ==, "attachment");
	}
}

static void
test_safe_name_long(void)
{
	GString *in = g_string_new(NULL);
	g_autofree char *got = NULL, *got2 = NULL;
	int i;

	for (i = 0; i < 300; i++)
		g_string_append_c(in, 'a' + i % 26);
	got = spool_safe_name(in->str);
	g_assert_cmpuint(strlen(got), ==, 200);
	g_assert_true(strncmp(got, in->str, 200) == 0);

	/* 2-byte characters: the cut may not split one */
	g_string_assign(in, "x");
	for (i = 0; i < 150; i++)
		g_string_append(in, "\xc3\xa9");
	got2 = spool_safe_name(in->str);
	g_assert_cmpuint(strlen(got2), ==, 199);
	g_assert_true(g_utf8_validate(got2, -1, NULL));
	g_string_free(in, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/spool/put-and-path", test_put_and_path);
	g_test_add_func("/spool/path-rejects", test_path_rejects);
	g_test_add_func("/spool/digest-chunks", test_digest_chunks);
	g_test_add_func("/spool/batch", test_batch);
	g_test_add_func("/spool/leftover", test_leftover);
	g_test_add_func("/spool/stream", test_stream);
	g_test_add_func("/spool/abort-and-bad-kind", test_abort_and_bad_kind);
	g_test_add_func("/spool/short-write", test_short_write);
	g_test_add_func("/spool/open-errors", test_open_errors);
	g_test_add_func("/spool/safe-name", test_safe_name);
	g_test_add_func("/spool/safe-name-long", test_safe_name_long);
	return g_test_run();
}
