/*
 * gen-corpus - a reproducible member-mail backlog written straight into
 * a Maildir (the fastest way to load 10,000 messages into Dovecot).
 *
 *   gen-corpus MAILDIR [COUNT [SEED [BIG_MB]]]
 *
 * Writes COUNT member messages plus one of BIG_MB MB (0: none) into
 * MAILDIR/cur, named "<secs>.M<usecs>P1.bench,S=<size>:2," so Dovecot
 * hands out UIDs in generation order.  The same COUNT and SEED give the
 * same bytes on every machine: the PRNG is our own (xorshift64*), dates
 * are fixed, nothing reads the clock.
 *
 * The mix (issue 8): most messages 1-3 KB of plain text; 20% with an
 * HTML alternative; 10% with a 50-300 KB attachment; 5% replies to an
 * earlier message of the same member; 12% in a legacy charset
 * (ISO-8859-1 quoted-printable, windows-1252 8bit, ISO-8859-15 with an
 * RFC 2047 subject).  Subjects are drawn from what members really ask
 * a rights society, so the default rules have real work to do.  The big
 * message sits in the middle of the backlog, a 50 MB PDF attachment.
 *
 * Prints one line of JSON with the counts and bytes written.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BASE_SECS	1700000000L
#define MEMBERS		2000

static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static unsigned
pick(unsigned n)
{
	return (unsigned)(rng() % n);
}

/* A growing byte buffer: messages are built whole except the big one. */
typedef struct {
	char	*p;
	size_t	 len, cap;
} buf;

static void
buf_add(buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 8192;
		if ((b->p = realloc(b->p, b->cap)) == NULL) {
			perror("realloc");
			exit(1);
		}
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
bprintf(buf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		fprintf(stderr, "gen-corpus: line too long\n");
		exit(1);
	}
	buf_add(b, tmp, (size_t)n);
}

static const char *const first_names[] = {
	"Alice", "Bruno", "Chantal", "David", "Élodie", "François", "Gabriel", "Hélène",
	"Isabelle", "Jacques", "Karim", "Léa", "Marc", "Nadia", "Olivier", "Pascale",
	"Quentin", "Renée", "Sophie", "Thomas", "Ursula", "Victor", "William", "Zoé",
};
static const char *const last_names[] = {
	"Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie",
	"Fortin", "Gagné", "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Smith",
	"Brown", "Wilson", "Martin", "Taylor", "Campbell",
};

/* What members write about; most match a rule of rules/default.rules. */
static const char *const subjects[] = {
	"Missing royalties for my song %s",
	"Question about my statement (%s)",
	"Payment inquiry: deposit not received",
	"Foreign royalties from abroad for %s",
	"Change of address",
	"New address as of next month",
	"Banking information update",
	"Registration of a new work: %s",
	"Correction to the splits on %s",
	"Cue sheet for the documentary",
	"Tax form W-8BEN",
	"Licence for background music in my café",
	"Someone is using my music without a licence",
	"Membership application",
	"Cannot log in to the member portal",
	"Urgent: wrong shares on %s",
	"Unpaid royalties for live concerts",
	"Hello",
	"A question",
	"Re: your letter about %s",
};

static const char *const titles[] = {
	"Blue River", "Northern Lights", "Midnight Train", "Paper Boats", "Lullaby for June",
	"Le Vent du Nord", "Chanson d'automne", "Glass Houses", "Summer of '99", "Rue Saint-Denis",
};

static const char *const words[] = {
	"the", "royalties", "statement", "quarter", "song", "work", "performance", "radio",
	"station", "streaming", "platform", "payment", "account", "member", "number", "please",
	"could", "you", "check", "why", "my", "was", "not", "paid", "for", "last", "year",
	"broadcast", "television", "concert", "festival", "venue", "publisher", "co-writer",
	"split", "share", "percent", "registration", "catalogue", "album", "single", "release",
	"date", "thank", "regards", "kind", "attached", "document", "invoice", "contract",
	"licence", "usage", "background", "music", "shop", "restaurant", "distribution",
	"a", "an", "and", "or", "of", "in", "on", "to", "with", "from", "we", "our", "they",
	"have", "has", "been", "never", "received", "anything", "since", "January", "April",
	"CBC", "Spotify", "YouTube", "Apple", "Deezer", "SiriusXM", "SOCAN", "SACEM", "PRS",
};

/* Latin-1 / cp1252 words, written as the raw legacy bytes. */
static const char *const legacy_words[] = {
	"r\xe9partition", "redevances", "d\xe9j\xe0", "re\xe7u", "ch\xe8que", "\xe9t\xe9",
	"num\xe9ro", "soci\xe9taire", "fran\xe7" "ais", "\xe0", "Montr\xe9" "al", "Qu\xe9" "bec",
};

static void
member(unsigned id, char *addr, size_t alen, char *name, size_t nlen)
{
	snprintf(addr, alen, "member%04u@members.example.net", id);
	snprintf(name, nlen, "%s %s", first_names[id % (sizeof(first_names) / sizeof(*first_names))],
	    last_names[(id / 7) % (sizeof(last_names) / sizeof(*last_names))]);
}

/* Roughly target bytes of wrapped text; legacy adds Latin-1 words. */
static void
text_body(buf *b, size_t target, int legacy, const char *title, unsigned member_no)
{
	size_t start = b->len, col = 0;

	bprintf(b, "Hello,\n\n");
	if (pick(3) == 0)
		bprintf(b, "Member number: %u\nWork title: %s\n\n", 100000 + member_no, title);
	while (b->len - start < target) {
		const char *w = legacy && pick(6) == 0 ?
		    legacy_words[pick(sizeof(legacy_words) / sizeof(*legacy_words))] :
		    words[pick(sizeof(words) / sizeof(*words))];
		size_t n = strlen(w);

		if (col + n + 1 > 72) {
			buf_add(b, "\n", 1);
			col = 0;
			if (pick(8) == 0)
				buf_add(b, "\n", 1);
		} else if (col > 0) {
			buf_add(b, " ", 1);
			col++;
		}
		buf_add(b, w, n);
		col += n;
	}
	bprintf(b, "\n\nRegards,\n-- \nMember %u\n", member_no);
}

/* Quoted-printable for Latin-1 text (soft breaks at 76). */
static void
qp_encode(buf *out, const char *s, size_t len)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[4];
		size_t n;

		if (c == '\n') {
			buf_add(out, "\n", 1);
			col = 0;
			continue;
		}
		if (c >= 128 || c == '=') {
			snprintf(tmp, sizeof(tmp), "=%02X", c);
			n = 3;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (col + n > 75) {
			buf_add(out, "=\n", 2);
			col = 0;
		}
		buf_add(out, tmp, n);
		col += n;
	}
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* n random bytes, base64 in lines of 76, written to out or f. */
static void
b64_random(buf *out, FILE *f, size_t n)
{
	char line[80];
	size_t col = 0, done = 0;

	while (done < n) {
		uint64_t r = rng();
		int k;

		/* 6 bytes of randomness per draw -> 8 characters */
		for (k = 0; k < 8; k++) {
			line[col++] = b64[r & 63];
			r >>= 6;
			if (col == 76) {
				line[col++] = '\n';
				if (out != NULL)
					buf_add(out, line, col);
				else if (fwrite(line, 1, col, f) != col) {
					perror("write");
					exit(1);
				}
				col = 0;
			}
		}
		done += 6;
	}
	if (col > 0) {
		line[col++] = '\n';
		if (out != NULL)
			buf_add(out, line, col);
		else if (fwrite(line, 1, col, f) != col) {
			perror("write");
			exit(1);
		}
	}
}

static void
html_body(buf *b, const char *text)
{
	const char *p;

	bprintf(b, "<html><head><meta charset=\"utf-8\"></head><body><p>");
	for (p = text; *p != '\0'; p++) {
		if (*p == '\n' && p[1] == '\n') {
			bprintf(b, "</p>\n<p>");
			p++;
		} else if (*p == '<')
			bprintf(b, "&lt;");
		else if (*p == '&')
			bprintf(b, "&amp;");
		else
			buf_add(b, p, 1);
	}
	bprintf(b, "</p></body></html>\n");
}

typedef struct {
	unsigned	 n, html, attach, reply, legacy, big;
	unsigned long long bytes;
} stats;

static void
write_file(const char *dir, unsigned long idx, const char *data, size_t len)
{
	char tmp[4096], name[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%ld.M%06luP1.bench", dir, BASE_SECS + (long)idx,
	    idx % 1000000);
	snprintf(name, sizeof(name), "%s/cur/%ld.M%06luP1.bench,S=%zu:2,", dir,
	    BASE_SECS + (long)idx, idx % 1000000, len);
	if ((f = fopen(tmp, "w")) == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0 ||
	    rename(tmp, name) != 0) {
		fprintf(stderr, "gen-corpus: %s: %s\n", name, strerror(errno));
		exit(1);
	}
}

static void
date_header(buf *b, unsigned long idx)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun" };
	unsigned long m = idx * 7;	/* minutes after the first message */

	bprintf(b, "Date: %lu %s 2026 %02lu:%02lu:00 -0500\n", 1 + (m / 1440) % 28,
	    mon[(m / (1440 * 28)) % 6], (m / 60) % 24, m % 60);
}

/* One member message into b; *is_* say what kind it turned out to be. */
static void
member_message(buf *b, unsigned long idx, unsigned *last_of, stats *st)
{
	char addr[128], name[128], subj[256], msgid[128];
	unsigned mno = pick(MEMBERS), roll = pick(100);
	const char *title = titles[pick(sizeof(titles) / sizeof(*titles))];
	const char *charset = "utf-8";
	int html = pick(100) < 20, attach = pick(100) < 10, legacy = pick(100) < 12;
	int reply = roll < 7 && last_of[mno] != 0;
	buf text = { 0 };
	size_t target = 1000 + pick(2000);

	member(mno, addr, sizeof(addr), name, sizeof(name));
	/* every template has at most one %s, the work title */
	snprintf(subj, sizeof(subj), subjects[pick(sizeof(subjects) / sizeof(*subjects))],
	    title);
	snprintf(msgid, sizeof(msgid), "bench-%lu.m%04u@members.example.net", idx, mno);
	if (legacy)
		charset = pick(3) == 0 ? "windows-1252" : pick(2) ? "iso-8859-1" : "iso-8859-15";

	bprintf(b, "Return-Path: <%s>\n", addr);
	bprintf(b, "Received: from mail.members.example.net (mail.members.example.net "
	    "[192.0.2.%u])\n\tby mx.example.test (Postfix) with ESMTPS id 4B%08lX\n\t"
	    "for <members@example.test>; Mon, 2 Mar 2026 10:00:00 -0500\n", 1 + mno % 250, idx);
	if (legacy && strcmp(charset, "iso-8859-15") == 0)
		bprintf(b, "From: =?iso-8859-15?Q?%s?= <%s>\n", "Fran=E7ois_L=E9vesque", addr);
	else
		bprintf(b, "From: \"%s\" <%s>\n", name, addr);
	bprintf(b, "To: Member Services <members@example.test>\n");
	if (reply) {
		bprintf(b, "Subject: Re: %s\n", subj);
		bprintf(b, "In-Reply-To: <bench-%u.m%04u@members.example.net>\n", last_of[mno] - 1,
		    mno);
		bprintf(b, "References: <bench-%u.m%04u@members.example.net>\n", last_of[mno] - 1,
		    mno);
		st->reply++;
	} else if (legacy && strcmp(charset, "iso-8859-15") == 0) {
		bprintf(b, "Subject: =?iso-8859-15?Q?R=E9partition_du_trimestre_=E0_v=E9rifier?="
		    " %s\n", title);
	} else {
		bprintf(b, "Subject: %s\n", subj);
	}
	date_header(b, idx);
	bprintf(b, "Message-ID: <%s>\nMIME-Version: 1.0\n", msgid);
	last_of[mno] = (unsigned)idx + 1;

	text_body(&text, target, legacy, title, mno);
	if (attach) {
		bprintf(b, "Content-Type: multipart/mixed; boundary=\"mix-%lu\"\n\n", idx);
		bprintf(b, "This is a multi-part message in MIME format.\n\n--mix-%lu\n", idx);
		st->attach++;
	}
	if (html) {
		bprintf(b, "Content-Type: multipart/alternative; boundary=\"alt-%lu\"\n\n"
		    "--alt-%lu\n", idx, idx);
		st->html++;
	}
	if (legacy) {
		int qp = strcmp(charset, "windows-1252") != 0;

		bprintf(b, "Content-Type: text/plain; charset=%s\n"
		    "Content-Transfer-Encoding: %s\n\n", charset, qp ? "quoted-printable" : "8bit");
		if (qp)
			qp_encode(b, text.p, text.len);
		else {
			buf_add(b, text.p, text.len);
			bprintf(b, "Total: 12,50 \x80\n");	/* the euro sign in cp1252 */
		}
		st->legacy++;
	} else {
		bprintf(b, "Content-Type: text/plain; charset=utf-8\n"
		    "Content-Transfer-Encoding: 8bit\n\n");
		buf_add(b, text.p, text.len);
	}
	if (html) {
		bprintf(b, "\n--alt-%lu\nContent-Type: text/html; charset=utf-8\n"
		    "Content-Transfer-Encoding: 8bit\n\n", idx);
		html_body(b, text.p);	/* legacy bytes stay as they are: hostile enough */
		bprintf(b, "\n--alt-%lu--\n", idx);
	}
	if (attach) {
		size_t size = 50 * 1024 + pick(250 * 1024);

		bprintf(b, "\n--mix-%lu\nContent-Type: application/pdf; name=\"statement-%lu.pdf\"\n"
		    "Content-Disposition: attachment; filename=\"statement-%lu.pdf\"\n"
		    "Content-Transfer-Encoding: base64\n\n", idx, idx, idx);
		b64_random(b, NULL, size);
		bprintf(b, "\n--mix-%lu--\n", idx);
	}
	free(text.p);
}

/* The 50 MB message, streamed to its file. */
static void
big_message(const char *dir, unsigned long idx, unsigned mb, stats *st)
{
	char tmp[4096], name[4096];
	buf head = { 0 };
	FILE *f;
	struct stat sb;
	size_t raw = (size_t)mb * 1024 * 1024 / 4 * 3;	/* base64 grows by 4/3 */

	bprintf(&head, "From: \"Studio Nord\" <studio@members.example.net>\n"
	    "To: Member Services <members@example.test>\n"
	    "Subject: Master recordings for registration (large attachment)\n");
	date_header(&head, idx);
	bprintf(&head, "Message-ID: <bench-big-%lu@members.example.net>\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"big\"\n\n--big\n"
	    "Content-Type: text/plain; charset=utf-8\n\nPlease register the works on the "
	    "attached masters.\nWork title: Northern Lights\n\n--big\n"
	    "Content-Type: application/pdf; name=\"masters.pdf\"\n"
	    "Content-Disposition: attachment; filename=\"masters.pdf\"\n"
	    "Content-Transfer-Encoding: base64\n\n", idx);
	snprintf(tmp, sizeof(tmp), "%s/tmp/big.bench", dir);
	if ((f = fopen(tmp, "w")) == NULL || fwrite(head.p, 1, head.len, f) != head.len) {
		fprintf(stderr, "gen-corpus: %s: %s\n", tmp, strerror(errno));
		exit(1);
	}
	b64_random(NULL, f, raw);
	fputs("\n--big--\n", f);
	if (fclose(f) != 0 || stat(tmp, &sb) != 0) {
		fprintf(stderr, "gen-corpus: %s: %s\n", tmp, strerror(errno));
		exit(1);
	}
	snprintf(name, sizeof(name), "%s/cur/%ld.M%06luP1.bench,S=%lld:2,", dir,
	    BASE_SECS + (long)idx, idx % 1000000, (long long)sb.st_size);
	if (rename(tmp, name) != 0) {
		fprintf(stderr, "gen-corpus: %s: %s\n", name, strerror(errno));
		exit(1);
	}
	st->big++;
	st->bytes += (unsigned long long)sb.st_size;
	free(head.p);
}

int
main(int argc, char **argv)
{
	unsigned long count = 10000, i, idx = 0;
	unsigned long long seed = 8;
	unsigned big_mb = 50, *last_of;
	stats st = { 0 };
	buf b = { 0 };
	char path[4096];
	const char *sub[] = { "cur", "new", "tmp" };
	int k;

	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: gen-corpus MAILDIR [COUNT [SEED [BIG_MB]]]\n");
		return 2;
	}
	if (argc > 2)
		count = strtoul(argv[2], NULL, 10);
	if (argc > 3)
		seed = strtoull(argv[3], NULL, 10);
	if (argc > 4)
		big_mb = (unsigned)strtoul(argv[4], NULL, 10);
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	for (k = 0; k < 3; k++) {
		snprintf(path, sizeof(path), "%s/%s", argv[1], sub[k]);
		if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
			perror(argv[1]);
			return 1;
		}
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			perror(path);
			return 1;
		}
	}
	if ((last_of = calloc(MEMBERS, sizeof(*last_of))) == NULL)
		return 1;
	for (i = 0; i < count; i++) {
		if (big_mb > 0 && i == count / 2)
			big_message(argv[1], idx++, big_mb, &st);
		b.len = 0;
		member_message(&b, idx, last_of, &st);
		write_file(argv[1], idx++, b.p, b.len);
		st.n++;
		st.bytes += b.len;
	}
	printf("{\"messages\":%u,\"html\":%u,\"attachments\":%u,\"replies\":%u,"
	    "\"legacy_charset\":%u,\"big\":%u,\"bytes\":%llu}\n", st.n + st.big, st.html,
	    st.attach, st.reply, st.legacy, st.big, st.bytes);
	free(last_of);
	free(b.p);
	return 0;
}
