/*
 * ingest-profile - the ingest path without the network, for profilers
 * (callgrind, strace -c) and for a quick look at group commit.
 *
 *   ingest-profile CONFIG MAILDIR COUNT GROUP [fsync]
 *
 * For each of the first COUNT messages of MAILDIR/cur: stream the file
 * into the spool as imap.c does with a fetched body (spool_tmp_write in
 * 64 KB chunks, spool_tmp_commit),
 * then ingest it as casegated's worker does: ingest_raw_in_txn inside a
 * transaction of GROUP messages (GROUP 1: one transaction each).  The
 * spool is in batch mode, as the daemon's worker's: no fsync per file,
 * one spool_sync before each COMMIT; "fsync" keeps the per-file fsyncs
 * (the spool's default, and the daemon before batch mode).  The
 * database and spool are CONFIG's; start from empty ones.
 * Prints one line of JSON: messages, outcomes, wall and CPU time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cg.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "rules.h"
#include "spool.h"
#include "store.h"

static char *
spool_file(spool *sp, const char *path, GError **error)
{
	char buf[65536];
	spool_tmp *t;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "%s: %s", path, g_strerror(errno));
		return NULL;
	}
	if ((t = spool_tmp_new(sp, error)) == NULL) {
		close(fd);
		return NULL;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (!spool_tmp_write(t, buf, (size_t)n, error)) {
			spool_tmp_abort(t);
			close(fd);
			return NULL;
		}
	close(fd);
	return spool_tmp_commit(t, SPOOL_RAW, error);
}

static GPtrArray *
list_files(const char *maildir, guint max)
{
	g_autofree char *cur = g_build_filename(maildir, "cur", NULL);
	g_autoptr(GDir) d = g_dir_open(cur, 0, NULL);
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(files, g_build_filename(cur, name, NULL));
	g_ptr_array_sort(files, (GCompareFunc)g_strcmp0);
	if (files->len > max)
		g_ptr_array_set_size(files, max);
	return files;
}

static double
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int
main(int argc, char **argv)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) files = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(config) cfg = NULL;
	g_autoptr(rules) r = NULL;
	g_autoptr(store) st = NULL;
	g_autoptr(spool) sp = NULL;
	guint i, group, done = 0, failed = 0, outcomes[4] = { 0 };
	gint64 t0;
	double c0;

	if (argc != 5 && !(argc == 6 && strcmp(argv[5], "fsync") == 0)) {
		fprintf(stderr, "usage: ingest-profile CONFIG MAILDIR COUNT GROUP [fsync]\n");
		return 2;
	}
	log_init("ingest-profile", LOG_TO_STDERR, 0);
	cg_mime_init();
	group = (guint)MAX(atoi(argv[4]), 1);
	cfg = config_load(argv[1], errors);
	if (cfg != NULL && cfg->rules != NULL)
		r = rules_load(cfg->rules, errors);
	for (i = 0; i < errors->len; i++)
		fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
	if (cfg == NULL || errors->len > 0)
		return 1;
	if ((sp = spool_open(cfg->spool, &err)) == NULL ||
	    (st = store_open(cfg->database, &err)) == NULL) {
		fprintf(stderr, "ingest-profile: %s\n", err->message);
		return 1;
	}
	files = list_files(argv[2], (guint)strtoul(argv[3], NULL, 10));
	spool_set_batch(sp, argc == 5);

	t0 = g_get_monotonic_time();
	c0 = cpu_ms();
	for (i = 0; i < files->len;) {
		const imap_account *a = cfg->mailboxes->len ? g_ptr_array_index(cfg->mailboxes, 0) :
		    NULL;
		ingest_ctx ctx = { cfg, st, sp, r, a };
		guint n;

		if (!store_begin(st, &err))
			break;
		for (n = 0; n < group && i < files->len; n++, i++) {
			g_autofree char *digest = NULL, *key = NULL;
			ingest_result res;

			if ((digest = spool_file(sp, g_ptr_array_index(files, i), &err)) == NULL)
				break;
			key = g_strdup_printf("profile/INBOX/1/%u", i + 1);
			if (!ingest_raw_in_txn(&ctx, digest, key, a ? a->address : NULL, &res,
			    &err)) {
				fprintf(stderr, "ingest-profile: %s: %s\n",
				    (char *)g_ptr_array_index(files, i), err->message);
				g_clear_error(&err);
				failed++;
				continue;
			}
			outcomes[MIN((guint)res.outcome, 3)]++;
			ingest_result_clear(&res);
			done++;
		}
		if (err != NULL || !spool_sync(sp, &err) || !store_commit(st, &err))
			break;
	}
	if (err != NULL) {
		fprintf(stderr, "ingest-profile: %s\n", err->message);
		store_rollback(st);
		return 1;
	}
	printf("{\"messages\":%u,\"failed\":%u,\"new\":%u,\"follow_up\":%u,\"duplicate\":%u,"
	    "\"ignored\":%u,\"group\":%u,\"wall_ms\":%.1f,\"cpu_ms\":%.1f}\n", done, failed,
	    outcomes[INGEST_NEW_CASE], outcomes[INGEST_FOLLOWUP], outcomes[INGEST_DUPLICATE],
	    outcomes[INGEST_IGNORED], group, (g_get_monotonic_time() - t0) / 1e3,
	    cpu_ms() - c0);
	g_clear_pointer(&st, store_close);
	g_mime_shutdown();
	return 0;
}
