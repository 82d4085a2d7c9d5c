/*
 * imap-baseline - the floor casegated is measured against: log in with
 * the same TLS settings (implicit TLS, SNI, chain and host name checked
 * by tls.c before LOGIN) and UID FETCH every message body of a folder,
 * in batches of the same size casegated uses, discarding the bytes.
 *
 *   imap-baseline HOST PORT USER PASSWORD_FILE CA_FILE FOLDER [BATCH [MOVE_TO]]
 *
 * With MOVE_TO, each batch is then UID MOVEd there, as casegated moves
 * what it committed: the IMAP work the daemon cannot avoid, with no
 * processing in between (the server's cost of moving shows apart).
 *
 * Bodies are streamed through libetpan's body handler, as imap.c does,
 * so neither program pays for buffering a 50 MB literal.  BODY.PEEK[]
 * leaves \Seen alone, so casegated can ingest the same folder after.
 * Prints one line of JSON: messages, bytes, wall_ms, cpu_ms, max_rss_kb.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libetpan/libetpan.h>

#include "cg.h"
#include "tls.h"

typedef struct {
	unsigned long long	 bytes;
	unsigned		 messages;
} counts;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool
on_chunk(int type, struct mailimap_msg_att_body_section *sec, const char *bytes, size_t len,
    void *data)
{
	counts *c = data;

	c->bytes += len;
	return true;
}

static void
on_msg_att(struct mailimap_msg_att *att, void *data)
{
	counts *c = data;

	c->messages++;
}

/* libetpan only calls the handlers while a progress callback is set. */
static void
on_progress(size_t cur, size_t max, void *data)
{
}

static void
die(const char *what, int r)
{
	fprintf(stderr, "imap-baseline: %s failed (libetpan error %d)\n", what, r);
	exit(1);
}

static char *
read_password(const char *path)
{
	char *pw = NULL;
	gsize len;

	if (!g_file_get_contents(path, &pw, &len, NULL)) {
		fprintf(stderr, "imap-baseline: cannot read %s\n", path);
		exit(1);
	}
	g_strchomp(pw);
	return pw;
}

/* Every UID of the selected folder, ascending. */
static GArray *
list_uids(mailimap *imap)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = mailimap_set_new_interval(1, 0);
	GArray *uids = g_array_new(FALSE, FALSE, sizeof(guint32));
	clist *list = NULL;
	clistiter *it, *jt;
	int r;

	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	r = mailimap_uid_fetch(imap, set, ft, &list);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		die("UID FETCH 1:* (UID)", r);
	for (it = clist_begin(list); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att *att = clist_content(it);

		for (jt = clist_begin(att->att_list); jt != NULL; jt = clist_next(jt)) {
			struct mailimap_msg_att_item *item = clist_content(jt);

			if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
			    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
				g_array_append_val(uids, item->att_data.att_static->att_data.att_uid);
		}
	}
	mailimap_fetch_list_free(list);
	return uids;
}

static struct mailimap_set *
uid_set(const guint32 *uids, guint n)
{
	struct mailimap_set *set = mailimap_set_new_empty();
	guint i;

	for (i = 0; i < n; i++)
		mailimap_set_add_single(set, uids[i]);
	return set;
}

static void
move_batch(mailimap *imap, const guint32 *uids, guint n, const char *to)
{
	struct mailimap_set *set = uid_set(uids, n);
	int r = mailimap_uid_move(imap, set, to);

	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		die("UID MOVE", r);
}

static void
fetch_bodies(mailimap *imap, const guint32 *uids, guint n, counts *c)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	struct mailimap_set *set = uid_set(uids, n);
	clist *list = NULL;
	int r;

	mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(ft,
	    mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
	mailimap_set_progress_callback(imap, on_progress, NULL, NULL);
	mailimap_set_msg_body_handler(imap, on_chunk, c);
	mailimap_set_msg_att_handler(imap, on_msg_att, c);
	r = mailimap_uid_fetch(imap, set, ft, &list);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		die("UID FETCH BODY.PEEK[]", r);
	mailimap_fetch_list_free(list);
}

int
main(int argc, char **argv)
{
	const char *host, *user, *ca, *folder, *move_to = NULL;
	g_autofree char *pw = NULL;
	g_autoptr(GError) err = NULL;
	GArray *uids;
	mailimap *imap;
	counts c = { 0, 0 };
	struct rusage ru;
	double t0, wall;
	int port, batch = 50, r;
	guint i;

	if (argc < 7 || argc > 9) {
		fprintf(stderr, "usage: imap-baseline HOST PORT USER PASSWORD_FILE CA_FILE "
		    "FOLDER [BATCH [MOVE_TO]]\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	user = argv[3];
	pw = read_password(argv[4]);
	ca = argv[5];
	folder = argv[6];
	if (argc >= 8 && (batch = atoi(argv[7])) < 1)
		batch = 50;
	if (argc == 9)
		move_to = argv[8];
	signal(SIGPIPE, SIG_IGN);
	mailstream_network_delay.tv_sec = 30;

	t0 = now_ms();
	imap = mailimap_new(0, NULL);
	mailimap_set_timeout(imap, 30);
	r = mailimap_ssl_connect_with_callback(imap, host, (uint16_t)port, tls_sni_callback,
	    (void *)host);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED)
		die("connect", r);
	if (!tls_verify_stream(imap->imap_stream, host, ca, FALSE, &err)) {
		fprintf(stderr, "imap-baseline: %s\n", err->message);
		return 1;
	}
	if ((r = mailimap_login(imap, user, pw)) != MAILIMAP_NO_ERROR)
		die("LOGIN", r);
	if ((r = mailimap_select(imap, folder)) != MAILIMAP_NO_ERROR)
		die("SELECT", r);
	if (move_to != NULL)
		mailimap_create(imap, move_to);	/* may exist: MOVE says if it is missing */
	uids = list_uids(imap);
	for (i = 0; i < uids->len; i += (guint)batch) {
		guint n = MIN((guint)batch, uids->len - i);

		fetch_bodies(imap, &g_array_index(uids, guint32, i), n, &c);
		if (move_to != NULL)
			move_batch(imap, &g_array_index(uids, guint32, i), n, move_to);
	}
	mailimap_logout(imap);
	wall = now_ms() - t0;
	mailimap_free(imap);
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"messages\":%u,\"uids\":%u,\"bytes\":%llu,\"wall_ms\":%.1f,\"cpu_ms\":%.1f,"
	    "\"max_rss_kb\":%ld}\n", c.messages, uids->len, c.bytes, wall,
	    (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3, ru.ru_maxrss);
	r = c.messages == uids->len ? 0 : 1;
	g_array_free(uids, TRUE);
	return r;
}
