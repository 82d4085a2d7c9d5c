/*
 * casegated - the email-to-case gateway daemon.
 *
 * Threads, each with its own SQLite connection and its own network
 * session, sharing the (read-only) config and rules:
 *
 *   one worker per mailbox  connect, fetch, ingest each message in its
 *                           own savepoint, groups in one transaction,
 *                           move what was committed, then wait in IDLE
 *                           (or sleep and poll); while a batch is
 *                           ingested (a short-lived thread of its own,
 *                           the worker's database connection handed
 *                           over), the worker moves the one before and
 *                           fetches and parses the next one
 *   the outbox              compose and deliver what is due over
 *                           smtp.connections SMTP connections at once (a
 *                           thread each per round), woken by the workers
 *                           after each batch
 *   main                    signals (signalfd), reload, systemd status
 *                           and watchdog
 *
 * So IMAP being down does not stop delivery, SMTP being down does not
 * stop ingest, and one broken mailbox does not stop another.  Nothing
 * blocks without a timeout; before each wait a thread announces how
 * long it may take, and main stops feeding systemd's watchdog when a
 * thread overruns that (a libetpan hang), so systemd restarts us.
 *
 * SIGTERM/SIGINT: each thread finishes the message in hand, then main
 * exits 0.  SIGHUP: load config and rules; if both are good, stop the
 * threads, swap, start them again; a bad file keeps the running ones.
 *
 * --deliver reads one message on stdin (MTA pipe delivery) and runs it
 * through the same pipeline: exit 0 once stored, 75 when it could not
 * be stored and the MTA should retry.
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
#include <sys/signalfd.h>
#include <unistd.h>

#include <libetpan/libetpan.h>

#include "cg.h"
#include "config.h"
#include "guard.h"
#include "imap.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "outbox.h"
#include "rules.h"
#include "spool.h"
#include "store.h"

#define RECONNECT_MIN	2	/* seconds */
#define RECONNECT_MAX	300
#define TICK_MS		5000	/* main loop: status and watchdog */
#define OUTBOX_NAP	3	/* seconds between looks at an idle outbox */

typedef struct gated gated;

/* What every thread has: its own database connection and spool handle. */
typedef struct {
	gated		*g;
	const char	*name;		/* for logs: mailbox name or "outbox" */
	GThread		*thread;
	store		*st;
	spool		*sp;
	gint64		 deadline;	/* (atomic) when the current step must be over, 0 idle */
} thread_base;

typedef struct {
	thread_base	 base;
	const imap_account *acct;
	imap_conn	*imap;
	spool		*fetch_sp;	/* the fetch's own handle: the ingest runs meanwhile */
	gint64		 next_connect;	/* when to try IMAP again */
	int		 backoff;	/* current reconnect delay */
	gint64		 next_ingest;	/* after a temporary ingest failure */
	gint64		 last_poll;	/* last completed look at the folder */
} worker;

struct gated {
	char		*conf_path;
	config		*cfg;
	rules		*rules;
	GPtrArray	*workers;	/* worker * */
	thread_base	 outbox;
	int		 stop_pipe[2];	/* readable once stopping: never drained while running */
	int		 kick_pipe[2];	/* wakes the outbox thread */
	gint64		 started;	/* for casectl status */
	volatile int	 stop;		/* (atomic) what outbox_deliver_due watches */
};

static void
pipe_write(int fd)
{
	char c = 0;

	if (write(fd, &c, 1) == -1 && errno != EAGAIN)
		log_warn("wake-up pipe");
}

static void
pipe_drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static gboolean
stopping(gated *g)
{
	return g_atomic_int_get(&g->stop) != 0;
}

/* A thread is about to block for up to secs (plus its network timeout). */
static void
expect(thread_base *t, int secs)
{
	__atomic_store_n(&t->deadline, cg_now() + secs, __ATOMIC_RELAXED);
}

/* Sleep up to secs, or until we are stopping or fd (if >= 0) is readable. */
static void
sleep_on(gated *g, int fd, int secs)
{
	struct pollfd pfd[2] = { { g->stop_pipe[0], POLLIN, 0 }, { fd, POLLIN, 0 } };

	if (secs > 0 && !stopping(g))
		(void)poll(pfd, fd >= 0 ? 2 : 1, secs * 1000);
}

/*
 * libetpan waits with select(), which aborts on a descriptor >= 1024,
 * and some of its reads use only the global network delay.
 */
static void
setup_limits(const config *cfg)
{
	struct rlimit rl;
	int timeout = cfg->smtp.timeout;
	guint i;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 1024) {
		rl.rlim_cur = 1024;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (i = 0; i < cfg->mailboxes->len; i++)
		timeout = MAX(timeout, ((imap_account *)cfg->mailboxes->pdata[i])->ep.timeout);
	mailstream_network_delay.tv_sec = timeout;
	mailstream_network_delay.tv_usec = 0;
}

static void
print_errors(GPtrArray *errors)
{
	guint i;

	for (i = 0; i < errors->len; i++)
		fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
}

/* Load config and rules; on failure print every error and return FALSE. */
static gboolean
load_all(const char *path, config **cfg_r, rules **rules_r, gboolean quiet)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(config) cfg = NULL;
	g_autoptr(rules) r = NULL;
	guint i;

	cfg = config_load(path, errors);
	if (cfg != NULL && cfg->rules != NULL)
		r = rules_load(cfg->rules, errors);
	if (errors->len > 0) {
		if (quiet)
			for (i = 0; i < errors->len; i++)
				log_err("%s", (char *)g_ptr_array_index(errors, i));
		else
			print_errors(errors);
		return FALSE;
	}
	*cfg_r = g_steal_pointer(&cfg);
	*rules_r = g_steal_pointer(&r);
	return TRUE;
}

static gboolean
thread_base_open(gated *g, thread_base *t, const char *name, GError **error)
{
	t->g = g;
	t->name = name;
	t->deadline = 0;
	if ((t->sp = spool_open(g->cfg->spool, error)) == NULL)
		return FALSE;
	if ((t->st = store_open(g->cfg->database, error)) == NULL) {
		g_clear_pointer(&t->sp, spool_close);
		return FALSE;
	}
	return TRUE;
}

static void
thread_base_close(thread_base *t)
{
	g_clear_pointer(&t->st, store_close);
	g_clear_pointer(&t->sp, spool_close);
}

/* --- the outbox thread ------------------------------------------------ */

static gpointer
outbox_main(gpointer data)
{
	thread_base *t = data;
	gated *g = t->g;
	g_autoptr(GError) serr = NULL;
	g_autoptr(outbox_pool) pool = NULL;

	/*
	 * Marks that need no fsync: one lost in a power failure only means
	 * the same bytes (same Message-ID) are sent once more; see
	 * store_set_synchronous.  FULL stays if SQLite refuses.
	 */
	if (!store_set_synchronous(t->st, FALSE, &serr))
		log_warnx("outbox: %s", serr->message);
	/*
	 * One outbox thread still sleeps, wakes on a kick and announces its
	 * deadline; each round it runs the pool's connections in threads
	 * of their own and joins them (outbox.c says why), so the watchdog,
	 * the kick pipe and a stop see one thread as before.  A round of
	 * several connections takes no longer than one of one.
	 */
	g_clear_error(&serr);
	pool = outbox_pool_new(g->cfg, t->st, t->sp, g->cfg->smtp_connections, &serr);
	if (pool == NULL) {
		log_warnx("outbox: %s; delivering over one connection", serr->message);
		pool = outbox_pool_new(g->cfg, t->st, t->sp, 1, NULL);
	}
	if (outbox_pool_size(pool) > 1)
		log_info("outbox: delivering over %d connections", outbox_pool_size(pool));
	while (!stopping(g)) {
		g_autoptr(GError) err = NULL;
		gint64 due, now;
		int n, secs;

		expect(t, 10 * g->cfg->smtp.timeout + 60);
		n = outbox_pool_deliver_due(pool, &g->stop, &err);
		if (n < 0)
			log_warnx("outbox: %s", err ? err->message : "delivery failed");
		else if (n > 0)
			log_info("outbox: %d message%s sent", n, n == 1 ? "" : "s");
		now = cg_now();
		due = store_outbox_next_due(t->st, NULL);
		/* a short nap: casectl queues mail (replies, notices) behind our back */
		secs = due > 0 ? (int)CLAMP(due - now, 0, OUTBOX_NAP) : OUTBOX_NAP;
		/*
		 * After a failure the rows may still look due (the database
		 * could not record their next attempt): nap anyway, or this
		 * loop spins and floods the log while the disk is full.
		 */
		if (n < 0)
			secs = OUTBOX_NAP;
		if (secs == 0)
			continue;
		expect(t, secs + 5);
		sleep_on(g, g->kick_pipe[0], secs);
		pipe_drain(g->kick_pipe[0]);
	}
	__atomic_store_n(&t->deadline, 0, __ATOMIC_RELAXED);
	return NULL;
}

/* --- one worker per mailbox ------------------------------------------- */

static void
schedule_reconnect(worker *w, gboolean long_wait)
{
	w->backoff = w->backoff ? MIN(w->backoff * 2, RECONNECT_MAX) : RECONNECT_MIN;
	if (long_wait)
		w->backoff = MAX(w->backoff, 60);
	/* jitter: several mailboxes on one server do not reconnect in step */
	w->next_connect = cg_now() + w->backoff / 2 + g_random_int_range(0, w->backoff / 2 + 1);
}

/* What `casectl status` shows: one row per mailbox, updated at each poll or failure. */
static void
report_status(worker *w, gint64 waiting, const char *error)
{
	store_daemon_status ds = {
		.account = (char *)w->acct->name,
		.pid = getpid(),
		.started = w->base.g->started,
		.last_poll = error == NULL ? cg_now() : w->last_poll,
		.waiting = waiting,
		.last_error = (char *)error,
	};
	g_autoptr(GError) err = NULL;

	if (error == NULL)
		w->last_poll = ds.last_poll;
	if (!store_daemon_status_set(w->base.st, &ds, &err))
		log_debug("imap %s: status not recorded: %s", w->acct->name, err->message);
}

static void
drop_imap(worker *w, const char *why)
{
	if (w->imap == NULL)
		return;
	imap_close(w->imap);
	w->imap = NULL;
	schedule_reconnect(w, FALSE);
	report_status(w, -1, why);
	log_warnx("imap %s: connection dropped (%s); reconnecting in %" G_GINT64_FORMAT " s",
	    w->acct->name, why, w->next_connect - cg_now());
}

static gboolean
connect_imap(worker *w)
{
	g_autoptr(GError) err = NULL;
	const imap_account *a = w->acct;

	expect(&w->base, 3 * a->ep.timeout + 10);
	w->imap = imap_open(a, &err);
	if (w->imap == NULL || !imap_ensure_folder(w->imap, a->processed_folder, &err)) {
		g_clear_pointer(&w->imap, imap_close);
		schedule_reconnect(w, err->code == CG_ERROR_CONFIG);
		report_status(w, -1, err->message);
		log_err("%s; retrying in %" G_GINT64_FORMAT " s", err->message,
		    w->next_connect - cg_now());
		return FALSE;
	}
	log_info("imap %s: connected to %s:%d as %s (%s)", a->name, a->ep.host, a->ep.port,
	    a->ep.user, imap_has_idle(w->imap) ? "IDLE" : "polling");
	w->backoff = 0;
	return TRUE;
}

/*
 * Group commit.  A durable COMMIT (an fsync of the WAL) costs about as
 * much as parsing a small message, so a backlog is ingested several
 * messages per transaction, each message in its own savepoint.  A UID
 * joins `done`, and so may be moved out of the folder, only after the
 * COMMIT that holds its case returned.  A message that fails is undone
 * alone and stays in the folder, and the group ends there; when the
 * COMMIT fails, or SQLite dropped the whole transaction (disk full, I/O
 * error), nothing of the group is moved and all of it is fetched again
 * later, where the unique keys make the second pass exactly-once.  A
 * group is also cut after COMMIT_GROUP_MS, so the write lock (which the
 * outbox thread needs too) is never held for long.
 * -DCG_COMMIT_GROUP=1 builds the one-transaction-per-message daemon;
 * make bench compares both.
 */
#ifndef CG_COMMIT_GROUP
#define CG_COMMIT_GROUP		50
#endif
#define COMMIT_GROUP_MS		250

/*
 * Ingest fetched messages from *next on inside the open transaction,
 * a group's worth at most; their UIDs go to group, their log lines to
 * lines (printed once committed).  FALSE: one failed, stop the batch.
 */
static gboolean
ingest_group(worker *w, GArray *fetched, GPtrArray *parsed, guint *next, guint32 uidvalidity,
    GArray *group, GPtrArray *lines)
{
	gated *g = w->base.g;
	ingest_ctx ctx = { g->cfg, w->base.st, w->base.sp, g->rules, w->acct };
	const imap_account *a = w->acct;
	gint64 start = cg_mono_ms();
	guint n;

	for (n = 0; *next < fetched->len && !stopping(g) && n < CG_COMMIT_GROUP &&
	    cg_mono_ms() - start < COMMIT_GROUP_MS; (*next)++, n++) {
		imap_fetched *f = &g_array_index(fetched, imap_fetched, *next);
		g_autoptr(GError) err = NULL;
		g_autofree char *key = g_strdup_printf("%s/%s/%u/%u", a->name, a->folder,
		    uidvalidity, f->uid);
		ingest_result r;
		gint64 t0 = cg_mono_ms();

		/* parsed ahead by the worker (NULL: parse here) */
		mail_msg *m = parsed != NULL && *next < parsed->len ?
		    g_ptr_array_index(parsed, *next) : NULL;

		if (m != NULL)
			g_ptr_array_index(parsed, *next) = NULL;
		if (!ingest_parsed_in_txn(&ctx, f->digest, key, a->address, m, &r, &err)) {
			log_err("imap %s: uid %u: not stored, left in %s for a retry: %s",
			    a->name, f->uid, a->folder, err ? err->message : "unknown error");
			w->next_ingest = cg_now() + 30;
			return FALSE;
		}
		g_ptr_array_add(lines, g_strdup_printf("imap %s: uid %u: <%s>: %s %s: %s "
		    "(%" G_GINT64_FORMAT " ms)", a->name, f->uid,
		    r.message_id ? r.message_id : "no Message-ID",
		    r.public_id ? r.public_id : "-", ingest_outcome_name(r.outcome),
		    r.decision ? r.decision : "", cg_mono_ms() - t0));
		ingest_result_clear(&r);
		g_array_append_val(group, f->uid);
	}
	return TRUE;
}

/* Ingest fetched messages; collect the UIDs that may leave the folder. */
static gboolean
ingest_batch(worker *w, GArray *fetched, GPtrArray *parsed, guint32 uidvalidity, GArray *done)
{
	const imap_account *a = w->acct;
	store *st = w->base.st;
	guint next = 0, i;

	while (next < fetched->len && !stopping(w->base.g)) {
		g_autoptr(GArray) group = g_array_new(FALSE, FALSE, sizeof(guint32));
		g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GError) err = NULL;
		gboolean ok;

		if (!store_begin(st, &err)) {
			log_err("imap %s: %s; messages left in %s for a retry", a->name,
			    err->message, a->folder);
			w->next_ingest = cg_now() + 30;
			return FALSE;
		}
		ok = ingest_group(w, fetched, parsed, &next, uidvalidity, group, lines);
		/* the spool files the group's rows name are durable first */
		if (!store_in_transaction(st) || !spool_sync(w->base.sp, &err) ||
		    !store_commit(st, &err)) {
			store_rollback(st);
			log_err("imap %s: %u message%s not committed, left in %s for a retry: %s",
			    a->name, group->len, group->len == 1 ? "" : "s", a->folder,
			    err ? err->message : "the transaction was rolled back");
			w->next_ingest = cg_now() + 30;
			return FALSE;
		}
		for (i = 0; i < lines->len; i++)
			log_info("%s", (char *)g_ptr_array_index(lines, i));
		g_array_append_vals(done, group->data, group->len);
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

/*
 * Mail over limits.max_message_size (by RFC822.SIZE, before fetching):
 * only its header is fetched; it still becomes a case whose
 * acknowledgement says it was too large.  Rare, so one transaction
 * each.  Returns the number moved, or -1 when the connection is gone.
 */
static int
process_oversize(worker *w, const GArray *big, guint32 uidvalidity)
{
	gated *g = w->base.g;
	const imap_account *a = w->acct;
	ingest_ctx ctx = { g->cfg, w->base.st, w->base.sp, g->rules, w->acct };
	g_autoptr(GError) err = NULL;
	g_autoptr(GArray) done = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_autofree guint32 *uids = g_new(guint32, big->len + 1);
	GArray *fetched;
	guint i;

	for (i = 0; i < big->len; i++)
		uids[i] = g_array_index(big, imap_uid, i).uid;
	expect(&w->base, 4 * a->ep.timeout + 10 * (int)big->len + 10);
	fetched = imap_fetch_headers(w->imap, w->base.sp, uids, big->len, &err);
	if (fetched == NULL) {
		drop_imap(w, err->message);
		return -1;
	}
	for (i = 0; i < fetched->len && !stopping(g); i++) {
		imap_fetched *f = &g_array_index(fetched, imap_fetched, i);
		g_autofree char *key = g_strdup_printf("%s/%s/%u/%u", a->name, a->folder,
		    uidvalidity, f->uid);
		g_autoptr(GError) ierr = NULL;
		gint64 size = 0;
		ingest_result r;
		guint j;

		for (j = 0; j < big->len; j++)
			if (g_array_index(big, imap_uid, j).uid == f->uid)
				size = g_array_index(big, imap_uid, j).size;
		if (!ingest_raw_oversize(&ctx, f->digest, key, a->address, size, &r, &ierr)) {
			log_err("imap %s: uid %u: oversize message not stored, left in %s: %s",
			    a->name, f->uid, a->folder, ierr ? ierr->message : "unknown error");
			continue;
		}
		log_info("imap %s: uid %u: <%s>: %s %s: %s (%" G_GINT64_FORMAT " bytes, header only)",
		    a->name, f->uid, r.message_id ? r.message_id : "no Message-ID",
		    r.public_id ? r.public_id : "-", ingest_outcome_name(r.outcome),
		    r.decision ? r.decision : "", size);
		ingest_result_clear(&r);
		g_array_append_val(done, f->uid);
	}
	imap_fetched_array_free(fetched);
	if (done->len > 0) {
		pipe_write(g->kick_pipe[1]);
		if (!imap_move(w->imap, (guint32 *)done->data, done->len, a->processed_folder,
		    &err)) {
			drop_imap(w, err->message);
			return -1;
		}
	}
	return (int)done->len;
}

/*
 * A fetched batch being ingested in a thread of its own while the
 * worker fetches the next batch: the ingest and the fetch each take
 * about half of the time per message and used to wait for each other.
 * The worker's database connection and spool handle belong to the
 * ingest until the join; the worker fetches with fetch_sp.
 */
typedef struct {
	worker		*w;
	GArray		*fetched;	/* imap_fetched */
	GPtrArray	*parsed;	/* mail_msg * or NULL, one per fetched message */
	guint32		 uidvalidity;
	GArray		*done;		/* UIDs committed, to be moved */
	gboolean	 ok;
	GThread		*thread;	/* NULL: ran in the worker's thread */
} ingest_job;

static gpointer
ingest_job_run(gpointer data)
{
	ingest_job *j = data;

	j->ok = ingest_batch(j->w, j->fetched, j->parsed, j->uidvalidity, j->done);
	return NULL;
}

static ingest_job *
ingest_job_start(worker *w, GArray *fetched, GPtrArray *parsed, guint32 uidvalidity)
{
	ingest_job *j = g_new0(ingest_job, 1);
	g_autoptr(GError) err = NULL;

	j->w = w;
	j->fetched = fetched;
	j->parsed = parsed;
	j->uidvalidity = uidvalidity;
	j->done = g_array_new(FALSE, FALSE, sizeof(guint32));
	j->thread = g_thread_try_new("ingest", ingest_job_run, j, &err);
	if (j->thread == NULL) {
		log_warnx("imap %s: %s; ingesting without overlap", w->acct->name, err->message);
		ingest_job_run(j);
	}
	return j;
}

/* Wait for the job; TRUE when it ingested the whole batch. */
static gboolean
ingest_job_finish(ingest_job *j)
{
	if (j->thread != NULL)
		g_thread_join(j->thread);
	j->thread = NULL;
	return j->ok;
}

static void
ingest_job_free(ingest_job *j)
{
	if (j == NULL)
		return;
	ingest_job_finish(j);
	imap_fetched_array_free(j->fetched);
	if (j->parsed != NULL)
		g_ptr_array_unref(j->parsed);
	g_array_unref(j->done);
	g_free(j);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ingest_job, ingest_job_free)

/*
 * Move what a job committed out of the folder.  Runs beside the next
 * job, so it touches neither the database nor the connection's state on
 * failure: the caller drops the connection once the job is joined, and
 * the UIDs left behind are fetched again, where their source keys make
 * them duplicates.
 */
static gboolean
move_committed(worker *w, const GArray *done, guint32 *last_uid, guint *moved,
    GError **error)
{
	if (done->len == 0)
		return TRUE;
	pipe_write(w->base.g->kick_pipe[1]);
	if (!imap_move(w->imap, (guint32 *)done->data, done->len, w->acct->processed_folder,
	    error))
		return FALSE;
	*moved += done->len;
	*last_uid = MAX(*last_uid, g_array_index(done, guint32, done->len - 1));
	return TRUE;
}

/*
 * Parse each fetched message ahead of its ingest (attachments into
 * fetch_sp): parsing is a fifth of the ingest's work and the worker
 * would only wait for the join.  A message that does not parse gets
 * NULL; the ingest parses it again and holds it with the reason.
 */
static GPtrArray *
parse_batch(worker *w, const GArray *fetched)
{
	GPtrArray *parsed = g_ptr_array_new_full(fetched->len, (GDestroyNotify)mail_msg_free);
	guint i;

	for (i = 0; i < fetched->len; i++) {
		const imap_fetched *f = &g_array_index(fetched, imap_fetched, i);

		g_ptr_array_add(parsed, stopping(w->base.g) ? NULL :
		    ingest_parse(w->base.g->cfg, w->fetch_sp, f->digest, NULL));
	}
	return parsed;
}

/*
 * Fetch the next batch into fetch_sp, parse it, and make its files
 * durable: the ingest's own barrier before its COMMIT (spool_sync)
 * knows only the files of its handle.  Runs beside an ingest job, so
 * it touches neither the worker's database connection nor its fields:
 * on error *lost says whether the connection is gone, and the caller
 * acts once the job is joined.
 */
static GArray *
fetch_batch(worker *w, const GArray *list, guint i, guint n, GPtrArray **parsed_r,
    gboolean *lost, GError **error)
{
	g_autofree guint32 *uids = g_new(guint32, n);
	GArray *fetched;
	guint j;

	for (j = 0; j < n; j++)
		uids[j] = g_array_index(list, imap_uid, i + j).uid;
	*lost = FALSE;
	if ((fetched = imap_fetch(w->imap, w->fetch_sp, uids, n, error)) == NULL) {
		*lost = TRUE;
		return NULL;
	}
	*parsed_r = parse_batch(w, fetched);
	if (!spool_sync(w->fetch_sp, error)) {
		g_clear_pointer(parsed_r, g_ptr_array_unref);
		imap_fetched_array_free(fetched);
		return NULL;
	}
	return fetched;
}

/*
 * The batches of list, in a pipeline: while batch k is ingested, the
 * worker moves batch k-1 (committed) and fetches batch k+1.  Dovecot's
 * MOVE took 29% of the wall time when it waited for nothing else.  A
 * UID leaves the folder only after the COMMIT that holds its case.
 * Returns with every job joined; the highest UID moved is in *last_uid.
 */
static void
fetch_ingest_move(worker *w, const GArray *list, guint32 uidvalidity, guint *moved,
    guint32 *last_uid)
{
	gated *g = w->base.g;
	const imap_account *a = w->acct;
	g_autoptr(ingest_job) job = NULL;
	guint i;

	for (i = 0; i < list->len && !stopping(g); i += a->fetch_batch) {
		guint n = MIN((guint)a->fetch_batch, list->len - i);
		g_autoptr(ingest_job) prev = NULL;
		g_autoptr(GError) err = NULL;
		gboolean ok, lost;
		GPtrArray *parsed = NULL;
		GArray *fetched;

		expect(&w->base, 4 * a->ep.timeout + 10 * (int)n + 10);
		fetched = fetch_batch(w, list, i, n, &parsed, &lost, &err);
		prev = g_steal_pointer(&job);
		ok = prev == NULL || ingest_job_finish(prev);
		/* from here on the worker's connection and fields are ours again */
		if (fetched == NULL) {
			if (lost) {
				drop_imap(w, err->message);
				return;	/* prev's UIDs stay: fetched again, duplicates */
			}
			log_err("imap %s: %s; messages left in %s for a retry", a->name,
			    err->message, a->folder);
			w->next_ingest = cg_now() + 30;
		} else if (ok)
			job = ingest_job_start(w, fetched, parsed, uidvalidity);
		else {
			imap_fetched_array_free(fetched);
			g_ptr_array_unref(parsed);
		}
		g_clear_error(&err);
		if (prev != NULL && !move_committed(w, prev->done, last_uid, moved, &err)) {
			g_clear_pointer(&job, ingest_job_free);
			drop_imap(w, err->message);
			return;
		}
		if (job == NULL)
			return;
	}
	if (job != NULL) {
		g_autoptr(GError) err = NULL;

		expect(&w->base, 4 * a->ep.timeout + 10 * (int)job->fetched->len + 10);
		ingest_job_finish(job);
		if (!move_committed(w, job->done, last_uid, moved, &err))
			drop_imap(w, err->message);
	}
}

/* One pass over the watched folder: fetch, ingest, move, in batches. */
static void
process_mailbox(worker *w)
{
	gated *g = w->base.g;
	const imap_account *a = w->acct;
	g_autoptr(GError) err = NULL;
	g_autoptr(GArray) list = NULL, big = NULL;
	guint32 uidvalidity, uidnext, old_validity, last_uid = 0;
	guint i, moved, big_left = 0;

	expect(&w->base, 4 * a->ep.timeout + 10);
	if (!imap_select(w->imap, a->folder, &uidvalidity, &uidnext, &err)) {
		drop_imap(w, err->message);
		return;
	}
	if (store_mailbox_get(w->base.st, a->name, a->folder, &old_validity, &last_uid, NULL) &&
	    old_validity != uidvalidity)
		log_warnx("imap %s: UIDVALIDITY of %s changed (%u -> %u): rescanning; messages "
		    "stored before are recognised by digest and Message-ID", a->name, a->folder,
		    old_validity, uidvalidity);
	/* Everything still in the folder is unprocessed: processed mail is moved. */
	list = imap_list_from(w->imap, 1, &err);
	if (list == NULL) {
		drop_imap(w, err->message);
		return;
	}
	moved = 0;
	big = g_array_new(FALSE, FALSE, sizeof(imap_uid));
	for (i = 0; i < list->len; ) {
		imap_uid u = g_array_index(list, imap_uid, i);

		if (guard_too_large(g->cfg, u.size)) {
			g_array_append_val(big, u);
			g_array_remove_index(list, i);
		} else
			i++;
	}
	if (big->len > 0) {
		int n = process_oversize(w, big, uidvalidity);

		if (n < 0)
			return;
		big_left = big->len - (guint)n;
	}
	last_uid = 0;
	fetch_ingest_move(w, list, uidvalidity, &moved, &last_uid);
	if (last_uid > 0 && !store_mailbox_set(w->base.st, a->name, a->folder, uidvalidity,
	    last_uid, &err))
		log_warnx("imap %s: %s", a->name, err->message);
	if (w->imap != NULL)
		report_status(w, list->len - moved + big_left, NULL);
}

static void
wait_for_mail(worker *w)
{
	gated *g = w->base.g;
	g_autoptr(GError) err = NULL;
	gint64 now = cg_now(), next = now + w->acct->idle_restart;
	imap_wait_result r;
	int secs;

	if (w->imap == NULL && w->next_connect < next)
		next = w->next_connect;
	if (w->next_ingest > now && w->next_ingest < next)
		next = w->next_ingest;
	secs = (int)CLAMP(next - now, 1, 28 * 60);
	expect(&w->base, secs + 2 * w->acct->ep.timeout + 10);
	if (w->imap == NULL) {
		sleep_on(g, -1, secs);
		return;
	}
	r = imap_wait(w->imap, secs, g->stop_pipe[0], &err);
	if (r == IMAP_WAIT_ERROR)
		drop_imap(w, err ? err->message : "wait failed");
	else if (r == IMAP_WAIT_NEWMAIL)
		log_debug("imap %s: new mail", w->acct->name);
}

static gpointer
worker_main(gpointer data)
{
	worker *w = data;
	gated *g = w->base.g;

	/*
	 * The worker's spool files (fetched raw messages, attachments,
	 * acknowledgements) skip their own fsyncs: ingest_batch makes them
	 * durable with one spool_sync right before each COMMIT, and a UID
	 * is moved only after that.
	 */
	spool_set_batch(w->base.sp, TRUE);
	spool_set_batch(w->fetch_sp, TRUE);
	while (!stopping(g)) {
		if (w->imap == NULL && cg_now() >= w->next_connect)
			connect_imap(w);
		if (w->imap != NULL && cg_now() >= w->next_ingest)
			process_mailbox(w);
		if (stopping(g))
			break;
		wait_for_mail(w);
	}
	g_clear_pointer(&w->imap, imap_close);
	__atomic_store_n(&w->base.deadline, 0, __ATOMIC_RELAXED);
	return NULL;
}

/* --- starting, stopping, watching ------------------------------------- */

static void
worker_free(worker *w)
{
	spool_close(w->fetch_sp);
	thread_base_close(&w->base);
	g_free(w);
}

static gboolean
threads_start(gated *g, GError **error)
{
	guint i;

	g_atomic_int_set(&g->stop, 0);
	pipe_drain(g->stop_pipe[0]);
	setup_limits(g->cfg);
	if (!thread_base_open(g, &g->outbox, "outbox", error))
		return FALSE;
	g->workers = g_ptr_array_new_with_free_func((GDestroyNotify)worker_free);
	for (i = 0; i < g->cfg->mailboxes->len; i++) {
		worker *w = g_new0(worker, 1);

		w->acct = g_ptr_array_index(g->cfg->mailboxes, i);
		g_ptr_array_add(g->workers, w);
		if (!thread_base_open(g, &w->base, w->acct->name, error) ||
		    (w->fetch_sp = spool_open(g->cfg->spool, error)) == NULL)
			return FALSE;
	}
	g->outbox.thread = g_thread_new("outbox", outbox_main, &g->outbox);
	for (i = 0; i < g->workers->len; i++) {
		worker *w = g_ptr_array_index(g->workers, i);

		w->base.thread = g_thread_new(w->acct->name, worker_main, w);
	}
	return TRUE;
}

static void
threads_stop(gated *g)
{
	guint i;

	g_atomic_int_set(&g->stop, 1);
	pipe_write(g->stop_pipe[1]);
	for (i = 0; g->workers != NULL && i < g->workers->len; i++) {
		worker *w = g_ptr_array_index(g->workers, i);

		if (w->base.thread != NULL)
			g_thread_join(w->base.thread);
	}
	if (g->outbox.thread != NULL)
		g_thread_join(g->outbox.thread);
	g->outbox.thread = NULL;
	thread_base_close(&g->outbox);
	g_clear_pointer(&g->workers, g_ptr_array_unref);
}

/* A thread past its announced deadline is stuck: say so, starve the watchdog. */
static gboolean
threads_healthy(gated *g)
{
	gint64 now = cg_now();
	gboolean ok = TRUE;
	guint i;

	for (i = 0; i <= g->workers->len; i++) {
		thread_base *t = i < g->workers->len ?
		    &((worker *)g_ptr_array_index(g->workers, i))->base : &g->outbox;
		gint64 d = __atomic_load_n(&t->deadline, __ATOMIC_RELAXED);

		if (d != 0 && now > d) {
			log_err("%s: stuck for %" G_GINT64_FORMAT " s past its deadline",
			    t->name, now - d);
			ok = FALSE;
		}
	}
	return ok;
}

/* Exchange the running config and rules with (c, r). */
#define SWAP_CONFIG(g, c, r) do {					\
	config *tc_ = (g)->cfg; rules *tr_ = (g)->rules;		\
	(g)->cfg = (c); (g)->rules = (r); (c) = tc_; (r) = tr_;		\
} while (0)

static void
reload(gated *g)
{
	g_autoptr(GError) err = NULL;
	config *cfg = NULL;
	rules *r = NULL;

	log_info("reloading %s", g->conf_path);
	notify_send("RELOADING=1");
	if (!load_all(g->conf_path, &cfg, &r, TRUE)) {
		log_err("reload failed: the running configuration is kept (errors above)");
		notify_send("READY=1\nSTATUS=reload failed, running configuration kept");
		return;
	}
	if (g_strcmp0(cfg->database, g->cfg->database) != 0 ||
	    g_strcmp0(cfg->spool, g->cfg->spool) != 0)
		log_warnx("database and spool changed: the new paths are used from now on");
	threads_stop(g);
	SWAP_CONFIG(g, cfg, r);
	if (!threads_start(g, &err)) {
		/* e.g. a new database path that cannot be opened: go back */
		log_err("reload failed: %s; the previous configuration is kept", err->message);
		g_clear_error(&err);
		threads_stop(g);
		SWAP_CONFIG(g, cfg, r);
		if (!threads_start(g, &err))
			fatalx("after a failed reload: %s", err->message);
		notify_send("READY=1\nSTATUS=reload failed, previous configuration kept");
	} else {
		log_info("configuration reloaded");
		notify_send("READY=1\nSTATUS=configuration reloaded");
	}
	rules_free(r);
	config_free(cfg);
}

static int
signals_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* blocked before any thread starts, so only main sees them */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd == -1)
		fatal("signalfd");
	/* libetpan and GnuTLS write without MSG_NOSIGNAL */
	signal(SIGPIPE, SIG_IGN);
	return fd;
}

static int
run(gated *g)
{
	g_autoptr(GError) err = NULL;
	gint64 wd = notify_watchdog_ms();
	int sfd = signals_fd(), tick = wd > 0 ? (int)MIN(wd / 2, TICK_MS) : TICK_MS;
	struct pollfd pfd = { sfd, POLLIN, 0 };

	if (pipe2(g->stop_pipe, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    pipe2(g->kick_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	if (!threads_start(g, &err)) {
		log_err("%s", err->message);
		threads_stop(g);
		return err->code == CG_ERROR_TEMP ? CG_EX_TEMPFAIL : CG_EX_CONFIG;
	}
	notify_printf("READY=1\nSTATUS=watching %u mailbox%s", g->cfg->mailboxes->len,
	    g->cfg->mailboxes->len == 1 ? "" : "es");
	for (;;) {
		struct signalfd_siginfo si;

		if (poll(&pfd, 1, tick) > 0 && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				reload(g);
				continue;
			}
			log_info("signal %u: stopping after the messages in hand", si.ssi_signo);
			break;
		}
		if (threads_healthy(g))
			notify_send("WATCHDOG=1");
	}
	notify_send("STOPPING=1");
	threads_stop(g);
	close(sfd);
	log_info("stopped");
	return CG_EX_OK;
}

/* --- MTA pipe delivery ------------------------------------------------ */

static const imap_account *
mailbox_for(const config *cfg, const char *recipient)
{
	guint i;

	for (i = 0; recipient != NULL && i < cfg->mailboxes->len; i++) {
		const imap_account *a = g_ptr_array_index(cfg->mailboxes, i);

		if (a->address != NULL && g_ascii_strcasecmp(a->address, recipient) == 0)
			return a;
	}
	return NULL;
}

/* Spool stdin; EX_TEMPFAIL whenever the message is not safely stored. */
static int
deliver_stdin(gated *g, const char *recipient)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = NULL;
	g_autoptr(store) st = NULL;
	g_autofree char *digest = NULL;
	ingest_ctx ctx = { g->cfg, NULL, NULL, g->rules, mailbox_for(g->cfg, recipient) };
	ingest_result r;
	spool_tmp *t;
	char buf[65536];
	ssize_t n;

	signal(SIGPIPE, SIG_IGN);
	if ((sp = spool_open(g->cfg->spool, &err)) == NULL ||
	    (st = store_open(g->cfg->database, &err)) == NULL ||
	    (t = spool_tmp_new(sp, &err)) == NULL) {
		log_err("deliver: %s", err->message);
		return CG_EX_TEMPFAIL;
	}
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || !spool_tmp_write(t, buf, (size_t)n, &err)) {
			log_err("deliver: reading the message: %s",
			    err ? err->message : g_strerror(errno));
			spool_tmp_abort(t);
			return CG_EX_TEMPFAIL;
		}
	}
	if ((digest = spool_tmp_commit(t, SPOOL_RAW, &err)) == NULL) {
		log_err("deliver: %s", err->message);
		return CG_EX_TEMPFAIL;
	}
	ctx.st = st;
	ctx.sp = sp;
	if (!ingest_raw(&ctx, digest, NULL, recipient ? recipient : g->cfg->address, &r, &err)) {
		log_err("deliver: not stored (the MTA will retry): %s", err->message);
		return CG_EX_TEMPFAIL;
	}
	log_info("deliver: <%s>: %s %s: %s", r.message_id ? r.message_id : "no Message-ID",
	    r.public_id ? r.public_id : "-", ingest_outcome_name(r.outcome),
	    r.decision ? r.decision : "");
	ingest_result_clear(&r);
	return CG_EX_OK;
}

/* --- main ------------------------------------------------------------- */

static void G_GNUC_NORETURN
usage(void)
{
	fprintf(stderr, "usage: casegated [-dnv] [-f config]\n"
	    "       casegated [-v] [-f config] --deliver [--recipient address] < message\n");
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
	static const struct option opts[] = {
		{ "deliver", no_argument, NULL, 'D' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = "/etc/casegate/casegate.conf", *recipient = NULL;
	gboolean check = FALSE, debug = FALSE, deliver = FALSE;
	gated g = { .stop_pipe = { -1, -1 }, .kick_pipe = { -1, -1 } };
	int ch, verbose = 0, rc;

	while ((ch = getopt_long(argc, argv, "df:nvh", opts, NULL)) != -1) {
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
		case 'D':
			deliver = TRUE;
			break;
		case 'r':
			recipient = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (recipient != NULL && !deliver) || (check && deliver))
		usage();
	if (recipient != NULL && !cg_address_valid(recipient)) {
		fprintf(stderr, "casegated: --recipient \"%s\" is not a valid address\n", recipient);
		return CG_EX_USAGE;
	}
	log_init("casegated", check ? LOG_TO_STDERR : deliver ? (debug ? LOG_TO_STDERR :
	    LOG_TO_SYSLOG) : pick_log_target(debug), verbose);
	log_capture_glib();
	cg_mime_init();
	/*
	 * A file size limit (ulimit -f, systemd LimitFSIZE=) must be a
	 * failed write (EFBIG), which SQLite and the spool report as a
	 * temporary error leaving the message where it was, not SIGXFSZ,
	 * which would kill us mid-transaction.
	 */
	signal(SIGXFSZ, SIG_IGN);

	if (!load_all(conf, &g.cfg, &g.rules, FALSE))
		return deliver ? CG_EX_TEMPFAIL : CG_EX_CONFIG;
	if (check) {
		if (verbose > 0 && g.rules != NULL) {
			g_autofree char *dump = rules_dump(g.rules);

			fputs(dump, stdout);
		}
		printf("configuration OK\n");
		rc = CG_EX_OK;
	} else if (deliver)
		rc = deliver_stdin(&g, recipient);
	else {
		g.conf_path = g_strdup(conf);
		g.started = cg_now();
		log_info("started: %s, %u mailbox%s, database %s, spool %s", conf,
		    g.cfg->mailboxes->len, g.cfg->mailboxes->len == 1 ? "" : "es",
		    g.cfg->database, g.cfg->spool);
		rc = run(&g);
	}
	rules_free(g.rules);
	config_free(g.cfg);
	g_free(g.conf_path);
	g_mime_shutdown();
	return rc;
}
