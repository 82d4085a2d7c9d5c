/*
 * latency - how long a member waits: send messages through the SMTP
 * server one at a time and time, for each, from the server's 250 after
 * DATA to (1) its case committed in casegated's database and (2) the
 * acknowledgement landing in the member's Maildir.
 *
 *   latency SMTP_PORT FROM RCPT DATABASE MEMBER_MAILDIR COUNT
 *
 * Nothing in casegated is instrumented: the database is polled
 * read-only (WAL readers never block the writer) for the message's
 * Message-ID, and the member's Maildir (new/ and cur/) for one more
 * file, every 2 ms.  The next message goes out once the previous one's
 * acknowledgement arrived, so the daemon is back in IDLE each time.
 * SMTP is spoken by hand over loopback, plaintext: the point is the
 * moment of acceptance, not the client.
 * Prints one line of JSON with p50/p95/p99/max of both intervals.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <sqlite3.h>

#define POLL_US		2000
#define WAIT_MAX_MS	30000.0

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Read one SMTP reply (all its lines); returns the code, -1 on error. */
static int
smtp_reply(FILE *in)
{
	char line[1024];

	while (fgets(line, sizeof(line), in) != NULL) {
		if (strlen(line) < 4)
			return -1;
		if (line[3] == ' ')
			return atoi(line);
	}
	return -1;
}

static int
smtp_cmd(FILE *in, int fd, const char *cmd)
{
	size_t n = strlen(cmd);

	if (write(fd, cmd, n) != (ssize_t)n)
		return -1;
	return smtp_reply(in);
}

/* One SMTP transaction; returns the moment of the final 250, or < 0. */
static double
smtp_send(int port, const char *from, const char *rcpt, const char *data)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	g_autofree char *mail = g_strdup_printf("MAIL FROM:<%s>\r\n", from);
	g_autofree char *to = g_strdup_printf("RCPT TO:<%s>\r\n", rcpt);
	double accepted = -1;
	FILE *in;
	int fd;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    (in = fdopen(dup(fd), "r")) == NULL) {
		close(fd);
		return -1;
	}
	if (smtp_reply(in) == 220 &&
	    smtp_cmd(in, fd, "EHLO bench.example.test\r\n") == 250 &&
	    smtp_cmd(in, fd, mail) == 250 && smtp_cmd(in, fd, to) == 250 &&
	    smtp_cmd(in, fd, "DATA\r\n") == 354 &&
	    write(fd, data, strlen(data)) == (ssize_t)strlen(data) &&
	    smtp_cmd(in, fd, ".\r\n") == 250)
		accepted = now_ms();
	(void)smtp_cmd(in, fd, "QUIT\r\n");
	fclose(in);
	close(fd);
	return accepted;
}

static int
count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
count_maildir(const char *maildir)
{
	g_autofree char *n = g_build_filename(maildir, "new", NULL);
	g_autofree char *c = g_build_filename(maildir, "cur", NULL);

	return count_dir(n) + count_dir(c);
}

/* Is a message with this Message-ID stored?  The database may not exist yet. */
static gboolean
committed(const char *db_path, const char *msgid)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	gboolean found = FALSE;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT 1 FROM messages WHERE message_id = ?1", -1, &s,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, msgid, -1, SQLITE_STATIC);
		found = sqlite3_step(s) == SQLITE_ROW;
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return found;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double
pct(const double *v, int n, double p)
{
	int k = (int)(p / 100.0 * n + 0.999999);

	if (n == 0)
		return -1;
	return v[CLAMP(k, 1, n) - 1];
}

static void
print_stats(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("\"%s\":{\"n\":%d,\"p50_ms\":%.1f,\"p95_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}",
	    name, n, pct(v, n, 50), pct(v, n, 95), pct(v, n, 99), n ? v[n - 1] : -1);
}

int
main(int argc, char **argv)
{
	const char *from, *rcpt, *db, *maildir;
	double *commit, *ack;
	int port, count, i, nc = 0, na = 0, lost = 0;

	if (argc != 7) {
		fprintf(stderr, "usage: latency SMTP_PORT FROM RCPT DATABASE MEMBER_MAILDIR "
		    "COUNT\n");
		return 2;
	}
	port = atoi(argv[1]);
	from = argv[2];
	rcpt = argv[3];
	db = argv[4];
	maildir = argv[5];
	count = atoi(argv[6]);
	commit = g_new(double, count);
	ack = g_new(double, count);
	for (i = 0; i < count; i++) {
		g_autofree char *msgid = g_strdup_printf("lat-%d.%d@example.test", i, (int)getpid());
		g_autofree char *data = g_strdup_printf("From: Alice Member <%s>\r\nTo: <%s>\r\n"
		    "Subject: Missing royalties for my song number %d\r\nMessage-ID: <%s>\r\n"
		    "Date: Mon, 2 Mar 2026 10:00:00 -0500\r\nMIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nMy song "
		    "Blue River was played on CBC last quarter and I have not been paid.\r\n"
		    "Member number: 123456\r\nWork title: Blue River\r\n\r\nRegards,\r\n"
		    "Alice\r\n", from, rcpt, i, msgid);
		int before = count_maildir(maildir);
		double t0 = smtp_send(port, from, rcpt, data), t;
		gboolean got_commit = FALSE;

		if (t0 < 0) {
			fprintf(stderr, "latency: message %d: SMTP transaction failed\n", i);
			return 1;
		}
		for (;;) {
			t = now_ms();
			if (!got_commit && committed(db, msgid)) {
				commit[nc++] = t - t0;
				got_commit = TRUE;
			}
			if (got_commit && count_maildir(maildir) > before) {
				ack[na++] = t - t0;
				break;
			}
			if (t - t0 > WAIT_MAX_MS) {
				fprintf(stderr, "latency: message %d: no %s within %.0f s\n", i,
				    got_commit ? "acknowledgement" : "case", WAIT_MAX_MS / 1e3);
				lost++;
				break;
			}
			g_usleep(POLL_US);
		}
	}
	printf("{\"messages\":%d,\"lost\":%d,", count, lost);
	print_stats("to_commit", commit, nc);
	printf(",");
	print_stats("to_ack", ack, na);
	printf("}\n");
	g_free(commit);
	g_free(ack);
	return lost > 0 ? 1 : 0;
}
