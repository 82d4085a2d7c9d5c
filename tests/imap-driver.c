/*
 * imap-driver.c - a thin command-line front to imap.c for the
 * integration tests (tests/0020-imap.t) and for measuring.
 *
 *   imap-driver --host H --port P --tls implicit|starttls [--ca FILE]
 *       [--no-system-ca] --user U --password-file F [--timeout S]
 *       [--batch N] [--folder F] [--spool DIR] [-v] COMMAND ARGS...
 *
 * Commands (each after login and, except ensure, SELECT of --folder):
 *   login                   just connect and log in; prints "ok"
 *   select                  "uidvalidity V uidnext N"
 *   list [MIN]              "UID SIZE" per message from MIN (default 1)
 *   fetch all|UID...        "UID SIZE PATH" per message stored in --spool
 *   fetch-each all|UID...   the same, one UID FETCH per message
 *   move DEST all|UID...    "moved N"
 *   ensure FOLDER           "ok"
 *   idle SECS               "newmail", "timeout" or "woken"; with
 *                           --wake-after S a self-pipe is written after S s
 *   move-then-idle DEST SECS
 *                           the daemon's pass: list INBOX and print
 *                           "listed N", read a line from stdin (the
 *                           test delivers new mail meanwhile), move the
 *                           listed UIDs to DEST, then idle SECS
 *
 * --no-idle makes idle poll with NOOP (every --poll S); --fill-fds N
 * opens N descriptors first (raising the soft limit as needed), to push
 * the socket past FD_SETSIZE.
 *
 * Errors go to stderr as "imap-driver: <message>"; the exit status is
 * 75 for CG_ERROR_TEMP, 78 for CG_ERROR_CONFIG, 64 for usage, 1 else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cg.h"
#include "config.h"
#include "imap.h"
#include "log.h"
#include "spool.h"

typedef struct {
	imap_account	 acct;
	char		*spool_dir;
	int		 verbose;
	int		 wake_after;
	int		 fill_fds;
	gboolean	 no_idle;
} opts;

static int
fail(GError *err)
{
	int code = err->domain != CG_ERROR ? 1 :
	    err->code == CG_ERROR_TEMP ? CG_EX_TEMPFAIL :
	    err->code == CG_ERROR_CONFIG ? CG_EX_CONFIG : 1;

	fprintf(stderr, "imap-driver: %s\n", err->message);
	g_error_free(err);
	return code;
}

static int
usage(const char *why)
{
	fprintf(stderr, "imap-driver: %s\nusage: imap-driver --host H --port P "
	    "--tls implicit|starttls [--ca FILE] [--no-system-ca] --user U "
	    "--password-file F [--timeout S] [--batch N] [--folder F] "
	    "[--spool DIR] [-v] login|select|list|fetch|fetch-each|move|ensure|idle ...\n",
	    why);
	return CG_EX_USAGE;
}

static int
parse_opts(int *argc, char ***argv, opts *o)
{
	g_autofree char *tls = NULL, *pwfile = NULL;
	gboolean no_system_ca = FALSE;
	GOptionEntry entries[] = {
		{ "host", 0, 0, G_OPTION_ARG_STRING, &o->acct.ep.host, NULL, NULL },
		{ "port", 0, 0, G_OPTION_ARG_INT, &o->acct.ep.port, NULL, NULL },
		{ "tls", 0, 0, G_OPTION_ARG_STRING, &tls, NULL, NULL },
		{ "ca", 0, 0, G_OPTION_ARG_FILENAME, &o->acct.ep.ca_file, NULL, NULL },
		{ "no-system-ca", 0, 0, G_OPTION_ARG_NONE, &no_system_ca, NULL, NULL },
		{ "user", 0, 0, G_OPTION_ARG_STRING, &o->acct.ep.user, NULL, NULL },
		{ "password-file", 0, 0, G_OPTION_ARG_FILENAME, &pwfile, NULL, NULL },
		{ "timeout", 0, 0, G_OPTION_ARG_INT, &o->acct.ep.timeout, NULL, NULL },
		{ "batch", 0, 0, G_OPTION_ARG_INT, &o->acct.fetch_batch, NULL, NULL },
		{ "poll", 0, 0, G_OPTION_ARG_INT, &o->acct.poll_interval, NULL, NULL },
		{ "folder", 0, 0, G_OPTION_ARG_STRING, &o->acct.folder, NULL, NULL },
		{ "spool", 0, 0, G_OPTION_ARG_FILENAME, &o->spool_dir, NULL, NULL },
		{ "wake-after", 0, 0, G_OPTION_ARG_INT, &o->wake_after, NULL, NULL },
		{ "no-idle", 0, 0, G_OPTION_ARG_NONE, &o->no_idle, NULL, NULL },
		{ "fill-fds", 0, 0, G_OPTION_ARG_INT, &o->fill_fds, NULL, NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL }
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("COMMAND ...");
	GError *err = NULL;
	int i;

	/* -v counts; GOption has no counter, so strip them first. */
	for (i = 1; i < *argc; i++) {
		if (strcmp((*argv)[i], "-v") == 0 || strcmp((*argv)[i], "-vv") == 0) {
			o->verbose += (int)strlen((*argv)[i]) - 1;
			memmove(&(*argv)[i], &(*argv)[i + 1], (*argc - i) * sizeof(char *));
			(*argc)--;
			i--;
		}
	}
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, argc, argv, &err)) {
		int r = usage(err->message);

		g_error_free(err);
		return r;
	}
	if (o->acct.ep.host == NULL || o->acct.ep.user == NULL || pwfile == NULL ||
	    tls == NULL)
		return usage("--host, --tls, --user and --password-file are required");
	if (strcmp(tls, "implicit") == 0)
		o->acct.ep.tls = TLS_IMPLICIT;
	else if (strcmp(tls, "starttls") == 0)
		o->acct.ep.tls = TLS_STARTTLS;
	else if (strcmp(tls, "none") == 0)
		o->acct.ep.tls = TLS_NONE;	/* to test that it is refused */
	else
		return usage("--tls must be implicit or starttls");
	o->acct.ep.system_ca = !no_system_ca;
	o->acct.ep.password_file = g_steal_pointer(&pwfile);
	o->acct.ep.password = config_read_secret(o->acct.ep.password_file, &err);
	if (o->acct.ep.password == NULL)
		return fail(err);
	if (o->acct.folder == NULL)
		o->acct.folder = g_strdup("INBOX");
	return 0;
}

/* "all" or a list of UIDs; "all" means every UID now in the folder. */
static GArray *
uid_args(imap_conn *c, int argc, char **argv, GError **error)
{
	GArray *uids = g_array_new(FALSE, FALSE, sizeof(guint32));
	int i;

	if (argc == 1 && strcmp(argv[0], "all") == 0) {
		GArray *l = imap_list_from(c, 1, error);

		if (l == NULL) {
			g_array_free(uids, TRUE);
			return NULL;
		}
		for (guint k = 0; k < l->len; k++)
			g_array_append_val(uids, g_array_index(l, imap_uid, k).uid);
		g_array_free(l, TRUE);
		return uids;
	}
	for (i = 0; i < argc; i++) {
		guint32 u = (guint32)strtoul(argv[i], NULL, 10);

		g_array_append_val(uids, u);
	}
	return uids;
}

static int
cmd_fetch(imap_conn *c, const opts *o, gboolean each, int argc, char **argv)
{
	g_autoptr(spool) sp = NULL;
	GError *err = NULL;
	GArray *uids, *got;
	struct rusage ru;
	gint64 t0;
	guint i, j, total = 0;

	if (o->spool_dir == NULL)
		return usage("fetch needs --spool");
	if ((sp = spool_open(o->spool_dir, &err)) == NULL)
		return fail(err);
	if ((uids = uid_args(c, argc, argv, &err)) == NULL)
		return fail(err);
	t0 = g_get_monotonic_time();
	for (i = 0; i < uids->len; i = each ? i + 1 : uids->len) {
		guint n = each ? 1 : uids->len;

		got = imap_fetch(c, sp, &g_array_index(uids, guint32, i), n, &err);
		if (got == NULL) {
			g_array_free(uids, TRUE);
			return fail(err);
		}
		for (j = 0; j < got->len; j++) {
			imap_fetched *f = &g_array_index(got, imap_fetched, j);
			g_autofree char *path = spool_path(sp, SPOOL_RAW, f->digest);

			printf("%u %" G_GINT64_FORMAT " %s\n", f->uid, f->size, path);
		}
		total += got->len;
		imap_fetched_array_free(got);
		if (uids->len == 0)
			break;
	}
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "imap-driver: fetched %u messages in %.3f s, max RSS %ld kB\n",
	    total, (g_get_monotonic_time() - t0) / 1e6, ru.ru_maxrss);
	g_array_free(uids, TRUE);
	return 0;
}

static int
cmd_move(imap_conn *c, int argc, char **argv)
{
	GError *err = NULL;
	GArray *uids;

	if (argc < 2)
		return usage("move DEST all|UID...");
	if ((uids = uid_args(c, argc - 1, argv + 1, &err)) == NULL)
		return fail(err);
	if (!imap_move(c, (guint32 *)(void *)uids->data, uids->len, argv[0], &err)) {
		g_array_free(uids, TRUE);
		return fail(err);
	}
	printf("moved %u\n", uids->len);
	g_array_free(uids, TRUE);
	return 0;
}

static int wake_pipe[2] = { -1, -1 };

static gpointer
waker(gpointer data)
{
	g_usleep((gulong)GPOINTER_TO_INT(data) * G_USEC_PER_SEC);
	if (write(wake_pipe[1], "w", 1) != 1)
		perror("imap-driver: wake pipe");
	return NULL;
}

static int
cmd_idle(imap_conn *c, const opts *o, int argc, char **argv)
{
	static const char *names[] = { "timeout", "newmail", "woken" };
	GThread *th = NULL;
	GError *err = NULL;
	imap_wait_result r;

	if (argc != 1)
		return usage("idle SECS");
	if (o->wake_after > 0) {
		if (pipe(wake_pipe) == -1) {
			perror("imap-driver: pipe");
			return 1;
		}
		th = g_thread_new("waker", waker, GINT_TO_POINTER(o->wake_after));
	}
	r = imap_wait(c, atoi(argv[0]), wake_pipe[0], &err);
	if (th != NULL)
		g_thread_join(th);
	if (r == IMAP_WAIT_ERROR)
		return fail(err);
	printf("%s\n", names[r]);
	return 0;
}

/*
 * Mail that arrives after the listing is announced in the MOVE's
 * response, not in the IDLE that follows: the wait must still report it.
 */
static int
cmd_move_then_idle(imap_conn *c, const opts *o, int argc, char **argv)
{
	char line[64];
	GError *err = NULL;
	GArray *l;

	if (argc != 2)
		return usage("move-then-idle DEST SECS");
	if ((l = imap_list_from(c, 1, &err)) == NULL)
		return fail(err);
	printf("listed %u\n", l->len);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		g_array_free(l, TRUE);
		return usage("move-then-idle: no go-ahead on stdin");
	}
	for (guint i = 0; i < l->len; i++) {
		guint32 uid = g_array_index(l, imap_uid, i).uid;

		if (!imap_move(c, &uid, 1, argv[0], &err)) {
			g_array_free(l, TRUE);
			return fail(err);
		}
	}
	g_array_free(l, TRUE);
	return cmd_idle(c, o, 1, argv + 1);
}

static int
cmd_list(imap_conn *c, int argc, char **argv)
{
	GError *err = NULL;
	GArray *l = imap_list_from(c, argc > 0 ? (guint32)strtoul(argv[0], NULL, 10) : 1,
	    &err);

	if (l == NULL)
		return fail(err);
	for (guint i = 0; i < l->len; i++) {
		imap_uid *u = &g_array_index(l, imap_uid, i);

		printf("%u %" G_GINT64_FORMAT "\n", u->uid, u->size);
	}
	g_array_free(l, TRUE);
	return 0;
}

static int
run(imap_conn *c, const opts *o, int argc, char **argv)
{
	const char *cmd = argv[0];
	GError *err = NULL;
	guint32 uidvalidity, uidnext;

	argc--, argv++;
	if (strcmp(cmd, "login") == 0) {
		printf("ok\n");
		return 0;
	}
	if (strcmp(cmd, "ensure") == 0) {
		if (argc != 1)
			return usage("ensure FOLDER");
		if (!imap_ensure_folder(c, argv[0], &err))
			return fail(err);
		printf("ok\n");
		return 0;
	}
	if (!imap_select(c, o->acct.folder, &uidvalidity, &uidnext, &err))
		return fail(err);
	if (strcmp(cmd, "select") == 0) {
		printf("uidvalidity %u uidnext %u\n", uidvalidity, uidnext);
		return 0;
	}
	if (strcmp(cmd, "list") == 0)
		return cmd_list(c, argc, argv);
	if (strcmp(cmd, "fetch") == 0 || strcmp(cmd, "fetch-each") == 0)
		return cmd_fetch(c, o, strcmp(cmd, "fetch-each") == 0, argc, argv);
	if (strcmp(cmd, "move") == 0)
		return cmd_move(c, argc, argv);
	if (strcmp(cmd, "idle") == 0)
		return cmd_idle(c, o, argc, argv);
	if (strcmp(cmd, "move-then-idle") == 0)
		return cmd_move_then_idle(c, o, argc, argv);
	return usage("unknown command");
}

/* Leaked on purpose: they only have to be open while connecting. */
static void
fill_fds(int n)
{
	struct rlimit rl;
	int i;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)n + 64);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (i = 0; i < n; i++)
		if (dup(2) == -1) {
			perror("imap-driver: dup");
			break;
		}
}

int
main(int argc, char **argv)
{
	opts o = { 0 };
	GError *err = NULL;
	imap_conn *c;
	int r;

	if ((r = parse_opts(&argc, &argv, &o)) != 0)
		return r;
	log_init("imap-driver", LOG_TO_STDERR, o.verbose);
	if (argc < 2)
		return usage("no command");
	if (o.fill_fds > 0)
		fill_fds(o.fill_fds);
	if ((c = imap_open(&o.acct, &err)) == NULL)
		r = fail(err);
	else {
		if (o.no_idle)
			imap_disable_idle(c);
		r = run(c, &o, argc - 1, argv + 1);
		imap_close(c);
	}
	fflush(stdout);
	if (o.acct.ep.password != NULL)
		memset(o.acct.ep.password, 0, strlen(o.acct.ep.password));
	g_free(o.acct.ep.password);
	g_free(o.acct.ep.password_file);
	g_free(o.acct.ep.host);
	g_free(o.acct.ep.user);
	g_free(o.acct.ep.ca_file);
	g_free(o.acct.folder);
	g_free(o.spool_dir);
	return r;
}
