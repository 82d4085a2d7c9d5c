/*
 * casegated - the email-to-case gateway gated.
 *
 * One process, one loop: deliver what the outbox holds, fetch what the
 * mailbox holds, ingest each message in its own transaction, move what
 * was committed to the processed folder, then wait in IDLE (or sleep
 * and poll) until new mail, a retry time or a signal.  Nothing in the
 * loop blocks without a timeout; a broken account or relay is retried
 * with backoff and never takes the daemon down.
 *
 * Signals only set flags and write a byte to a self-pipe, which every
 * wait in the loop watches: SIGTERM/SIGINT finish the message in hand
 * and exit 0, SIGHUP reloads config and rules (a bad file keeps the old
 * ones).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libetpan/libetpan.h>

#include "cg.h"
#include "config.h"
#include "imap.h"
#include "ingest.h"
#include "log.h"
#include "outbox.h"
#include "rules.h"
#include "spool.h"
#include "store.h"

#define RECONNECT_MIN	2	/* seconds */
#define RECONNECT_MAX	300

typedef struct {
	char		*conf_path;
	config		*cfg;
	rules		*rules;
	store		*st;
	spool		*sp;
	imap_conn	*imap;
	gint64		 next_connect;	/* when to try IMAP again */
	int		 backoff;	/* current reconnect delay */
	gint64		 next_ingest;	/* after a temporary ingest failure */
} gated;

static volatile sig_atomic_t got_stop, got_reload;
static volatile int stop_flag;	/* what outbox_deliver_due watches */
static int wake_pipe[2] = { -1, -1 };

static void
on_signal(int sig)
{
	int saved = errno;
	char c = 0;

	if (sig == SIGHUP)
		got_reload = 1;
	else {
		got_stop = 1;
		stop_flag = 1;
	}
	if (write(wake_pipe[1], &c, 1) == -1) {
		/* pipe full: a wake-up is already pending */
	}
	errno = saved;
}

static void
setup_signals(void)
{
	struct sigaction sa;

	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* libetpan and GnuTLS write without MSG_NOSIGNAL */
	signal(SIGPIPE, SIG_IGN);
}

static void
drain_wake_pipe(void)
{
	char buf[64];

	while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/* Sleep up to secs, or until a signal arrives. */
static void
wait_wake(int secs)
{
	struct pollfd pfd = { wake_pipe[0], POLLIN, 0 };

	if (secs <= 0 || got_stop || got_reload)
		return;
	(void)poll(&pfd, 1, secs * 1000);
}

/*
 * libetpan waits with select(), which aborts on a descriptor >= 1024,
 * and reads without a timeout where the global network delay applies.
 */
static void
setup_limits(const config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 1024) {
		rl.rlim_cur = 1024;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	mailstream_network_delay.tv_sec = MAX(cfg->imap.ep.timeout, cfg->smtp.timeout);
	mailstream_network_delay.tv_usec = 0;
}

static void
print_errors(GPtrArray *errors)
{
	guint i;

	for (i = 0; i < errors->len; i++)
		fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
}

/* Load config and rules; NULL config and the errors printed on failure. */
static gboolean
load_all(const char *path, config **cfg_r, rules **rules_r)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(config) cfg = NULL;
	g_autoptr(rules) r = NULL;

	cfg = config_load(path, errors);
	if (cfg != NULL && cfg->rules != NULL)
		r = rules_load(cfg->rules, errors);
	if (errors->len > 0) {
		print_errors(errors);
		return FALSE;
	}
	*cfg_r = g_steal_pointer(&cfg);
	*rules_r = g_steal_pointer(&r);
	return TRUE;
}

static void
drop_imap(gated *d, const char *why)
{
	if (d->imap == NULL)
		return;
	imap_close(d->imap);
	d->imap = NULL;
	d->backoff = d->backoff ? MIN(d->backoff * 2, RECONNECT_MAX) : RECONNECT_MIN;
	d->next_connect = cg_now() + d->backoff / 2 + g_random_int_range(0, d->backoff / 2 + 1);
	log_warnx("imap %s: connection dropped (%s); reconnecting in %" G_GINT64_FORMAT " s",
	    d->cfg->imap.name, why, d->next_connect - cg_now());
}

static void
reload(gated *d)
{
	config *cfg = NULL;
	rules *r = NULL;

	got_reload = 0;
	log_info("reloading %s", d->conf_path);
	if (!load_all(d->conf_path, &cfg, &r)) {
		log_err("reload failed: the running configuration is kept (errors above)");
		return;
	}
	if (g_strcmp0(cfg->database, d->cfg->database) != 0 ||
	    g_strcmp0(cfg->spool, d->cfg->spool) != 0)
		log_warnx("database and spool paths are only read at start; restart to change them");
	rules_free(d->rules);
	d->rules = r;
	config_free(d->cfg);
	d->cfg = cfg;
	setup_limits(cfg);
	if (d->imap != NULL) {
		imap_close(d->imap);
		d->imap = NULL;
	}
	d->next_connect = 0;
	d->backoff = 0;
	log_info("configuration reloaded");
}

static void
deliver(gated *d)
{
	g_autoptr(GError) err = NULL;
	int n;

	n = outbox_deliver_due(d->cfg, d->st, d->sp, &stop_flag, &err);
	if (n < 0)
		log_warnx("outbox: %s", err ? err->message : "delivery failed");
	else if (n > 0)
		log_info("outbox: %d message%s sent", n, n == 1 ? "" : "s");
}

static gboolean
connect_imap(gated *d)
{
	g_autoptr(GError) err = NULL;
	imap_account *a = &d->cfg->imap;

	d->imap = imap_open(a, &err);
	if (d->imap == NULL || !imap_ensure_folder(d->imap, a->processed_folder, &err)) {
		g_clear_pointer(&d->imap, imap_close);
		d->backoff = d->backoff ? MIN(d->backoff * 2, RECONNECT_MAX) : RECONNECT_MIN;
		if (err->code == CG_ERROR_CONFIG)
			d->backoff = MAX(d->backoff, 60);
		d->next_connect = cg_now() + d->backoff;
		log_err("%s; retrying in %d s", err->message, d->backoff);
		return FALSE;
	}
	log_info("imap %s: connected to %s:%d as %s (%s)", a->name, a->ep.host, a->ep.port,
	    a->ep.user, imap_has_idle(d->imap) ? "IDLE" : "polling");
	d->backoff = 0;
	return TRUE;
}

/* Ingest fetched messages; collect the UIDs that may leave the folder. */
static gboolean
ingest_batch(gated *d, GArray *fetched, guint32 uidvalidity, GArray *done)
{
	ingest_ctx ctx = { d->cfg, d->st, d->sp, d->rules };
	imap_account *a = &d->cfg->imap;
	guint i;

	for (i = 0; i < fetched->len && !got_stop; i++) {
		imap_fetched *f = &g_array_index(fetched, imap_fetched, i);
		g_autoptr(GError) err = NULL;
		g_autofree char *key = g_strdup_printf("%s/%s/%u/%u", a->name, a->folder,
		    uidvalidity, f->uid);
		ingest_result r;
		gint64 t0 = cg_mono_ms();

		if (!ingest_raw(&ctx, f->digest, key, d->cfg->address, &r, &err)) {
			log_err("imap %s: uid %u: not stored, left in %s for a retry: %s",
			    a->name, f->uid, a->folder, err ? err->message : "unknown error");
			if (err == NULL || err->code == CG_ERROR_TEMP) {
				d->next_ingest = cg_now() + 30;
				return FALSE;
			}
			continue;
		}
		log_info("imap %s: uid %u: <%s>: %s %s: %s (%" G_GINT64_FORMAT " ms)", a->name,
		    f->uid, r.message_id ? r.message_id : "no Message-ID",
		    r.public_id ? r.public_id : "-", ingest_outcome_name(r.outcome),
		    r.decision ? r.decision : "", cg_mono_ms() - t0);
		ingest_result_clear(&r);
		g_array_append_val(done, f->uid);
	}
	return TRUE;
}

/* One pass over the watched folder: fetch, ingest, move, in batches. */
static gboolean
process_mailbox(gated *d)
{
	imap_account *a = &d->cfg->imap;
	g_autoptr(GError) err = NULL;
	g_autoptr(GArray) list = NULL;
	guint32 uidvalidity, uidnext, old_validity, last_uid = 0;
	guint i, j;

	if (!imap_select(d->imap, a->folder, &uidvalidity, &uidnext, &err)) {
		drop_imap(d, err->message);
		return FALSE;
	}
	if (store_mailbox_get(d->st, a->name, a->folder, &old_validity, &last_uid, NULL) &&
	    old_validity != uidvalidity)
		log_warnx("imap %s: UIDVALIDITY of %s changed (%u -> %u): rescanning; messages "
		    "stored before are recognised by digest and Message-ID", a->name, a->folder,
		    old_validity, uidvalidity);
	/* Everything still in the folder is unprocessed: processed mail is moved. */
	list = imap_list_from(d->imap, 1, &err);
	if (list == NULL) {
		drop_imap(d, err->message);
		return FALSE;
	}
	for (i = 0; i < list->len && !got_stop; i += a->fetch_batch) {
		guint n = MIN((guint)a->fetch_batch, list->len - i);
		g_autofree guint32 *uids = g_new(guint32, n);
		g_autoptr(GArray) done = g_array_new(FALSE, FALSE, sizeof(guint32));
		GArray *fetched;
		gboolean ok;

		for (j = 0; j < n; j++)
			uids[j] = g_array_index(list, imap_uid, i + j).uid;
		fetched = imap_fetch(d->imap, d->sp, uids, n, &err);
		if (fetched == NULL) {
			drop_imap(d, err->message);
			return FALSE;
		}
		ok = ingest_batch(d, fetched, uidvalidity, done);
		imap_fetched_array_free(fetched);
		if (done->len > 0) {
			guint32 max = g_array_index(done, guint32, done->len - 1);

			if (!imap_move(d->imap, (guint32 *)done->data, done->len,
			    a->processed_folder, &err)) {
				drop_imap(d, err->message);
				return FALSE;
			}
			if (!store_mailbox_set(d->st, a->name, a->folder, uidvalidity,
			    MAX(max, last_uid), &err)) {
				log_warnx("imap %s: %s", a->name, err->message);
				g_clear_error(&err);
			}
			last_uid = MAX(max, last_uid);
		}
		deliver(d);
		if (!ok)
			break;
	}
	return TRUE;
}

/* Seconds until the loop has something to do without being woken. */
static int
next_wakeup(gated *d)
{
	gint64 now = cg_now(), next = now + d->cfg->imap.idle_restart, due;

	due = store_outbox_next_due(d->st, NULL);
	if (due > 0 && due < next)
		next = due;
	if (d->imap == NULL && d->next_connect < next)
		next = d->next_connect;
	if (d->next_ingest > now && d->next_ingest < next)
		next = d->next_ingest;
	return (int)CLAMP(next - now, 1, 28 * 60);
}

static void
wait_for_work(gated *d)
{
	g_autoptr(GError) err = NULL;
	int secs = next_wakeup(d);
	imap_wait_result w;

	if (d->imap == NULL) {
		wait_wake(secs);
		return;
	}
	w = imap_wait(d->imap, secs, wake_pipe[0], &err);
	if (w == IMAP_WAIT_ERROR)
		drop_imap(d, err ? err->message : "wait failed");
	else if (w == IMAP_WAIT_NEWMAIL)
		log_debug("imap %s: new mail", d->cfg->imap.name);
}

static int
run(gated *d)
{
	while (!got_stop) {
		if (got_reload)
			reload(d);
		deliver(d);
		if (d->imap == NULL && cg_now() >= d->next_connect)
			connect_imap(d);
		if (d->imap != NULL && cg_now() >= d->next_ingest)
			process_mailbox(d);
		if (got_stop)
			break;
		wait_for_work(d);
		drain_wake_pipe();
	}
	log_info("stopping");
	return CG_EX_OK;
}

static void G_GNUC_NORETURN
usage(void)
{
	fprintf(stderr, "usage: casegated [-dnv] [-f config]\n");
	exit(CG_EX_USAGE);
}

static log_target
pick_log_target(gboolean debug)
{
	if (getenv("JOURNAL_STREAM") != NULL)
		return LOG_TO_JOURNAL;
	if (debug)
		return LOG_TO_STDERR;
	return LOG_TO_SYSLOG;
}

int
main(int argc, char **argv)
{
	const char *conf = "/etc/casegate/casegate.conf";
	gboolean check = FALSE, debug = FALSE;
	gated d = { 0 };
	g_autoptr(GError) err = NULL;
	int ch, verbose = 0, rc;

	while ((ch = getopt(argc, argv, "df:nvh")) != -1) {
		switch (ch) {
		case 'd':
			debug = TRUE;
			break;
		case 'f':
			conf = optarg;
			break;
		case 'n':
			check = TRUE;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("casegated", check ? LOG_TO_STDERR : pick_log_target(debug), verbose);
	log_capture_glib();
	cg_mime_init();

	if (!load_all(conf, &d.cfg, &d.rules))
		return CG_EX_CONFIG;
	if (check) {
		if (verbose > 0 && d.rules != NULL) {
			g_autofree char *dump = rules_dump(d.rules);

			fputs(dump, stdout);
		}
		printf("configuration OK\n");
		rules_free(d.rules);
		config_free(d.cfg);
		g_mime_shutdown();
		return CG_EX_OK;
	}
	d.conf_path = g_strdup(conf);
	setup_signals();
	setup_limits(d.cfg);
	if ((d.sp = spool_open(d.cfg->spool, &err)) == NULL ||
	    (d.st = store_open(d.cfg->database, &err)) == NULL) {
		log_err("%s", err->message);
		return err->code == CG_ERROR_TEMP ? CG_EX_TEMPFAIL : CG_EX_CONFIG;
	}
	log_info("started: %s, database %s, spool %s", conf, d.cfg->database, d.cfg->spool);
	rc = run(&d);

	imap_close(d.imap);
	store_close(d.st);
	spool_close(d.sp);
	rules_free(d.rules);
	config_free(d.cfg);
	g_free(d.conf_path);
	g_mime_shutdown();
	return rc;
}
