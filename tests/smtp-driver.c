/*
 * smtp-driver.c - send one file through smtp.c, for tests/0030-smtp.t.
 *
 *   smtp-driver [-u user -p password] [-c ca.pem] [-H helo] [-n count]
 *       host port starttls|implicit|none from rcpt file
 *
 * "-" as from is the null sender.  -n sends the file count times over
 * one connection (RSET reuse after failures).  Exit status: 0 sent,
 * 75 temporary failure, 76 permanent failure, 78 configuration or
 * certificate problem, 64 usage.  The error goes to stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "log.h"
#include "smtp.h"

#define EX_PERM	76

static int
exit_code(const GError *e)
{
	switch (e->code) {
	case CG_ERROR_PERM:
		return EX_PERM;
	case CG_ERROR_CONFIG:
		return CG_EX_CONFIG;
	default:
		return CG_EX_TEMPFAIL;
	}
}

static gboolean
parse_tls(const char *s, tls_mode *mode_r)
{
	if (strcmp(s, "starttls") == 0)
		*mode_r = TLS_STARTTLS;
	else if (strcmp(s, "implicit") == 0)
		*mode_r = TLS_IMPLICIT;
	else if (strcmp(s, "none") == 0)
		*mode_r = TLS_NONE;
	else
		return FALSE;
	return TRUE;
}

int
main(int argc, char **argv)
{
	endpoint ep = { 0 };
	const char *helo = "casegate.example.test", *from;
	smtp_conn *c;
	GError *e = NULL;
	g_autofree char *data = NULL;
	gsize len = 0;
	int ch, count = 1, i, rc = 0;

	signal(SIGPIPE, SIG_IGN);
	log_init("smtp-driver", LOG_TO_STDERR, 1);
	ep.system_ca = FALSE;
	ep.timeout = 20;
	while ((ch = getopt(argc, argv, "c:H:n:p:u:")) != -1) {
		switch (ch) {
		case 'c': ep.ca_file = optarg; break;
		case 'H': helo = optarg; break;
		case 'n': count = atoi(optarg); break;
		case 'p': ep.password = optarg; break;
		case 'u': ep.user = optarg; break;
		default: return CG_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 6 || !parse_tls(argv[2], &ep.tls) || count < 1) {
		fprintf(stderr, "usage: smtp-driver [-u user -p pass] [-c ca.pem] [-H helo] "
		    "[-n count] host port starttls|implicit|none from rcpt file\n");
		return CG_EX_USAGE;
	}
	ep.host = argv[0];
	ep.port = atoi(argv[1]);
	from = strcmp(argv[3], "-") == 0 ? "" : argv[3];

	if ((c = smtp_open(&ep, helo, &e)) == NULL) {
		fprintf(stderr, "smtp-driver: %s\n", e->message);
		rc = exit_code(e);
		g_error_free(e);
		return rc;
	}
	if (!g_file_get_contents(argv[5], &data, &len, &e)) {
		fprintf(stderr, "smtp-driver: %s\n", e->message);
		g_error_free(e);
		smtp_close(c);
		return 1;
	}
	for (i = 0; i < count; i++) {
		if (!smtp_send_data(c, from, argv[4], data, len, &e)) {
			fprintf(stderr, "smtp-driver: %s\n", e->message);
			rc = exit_code(e);
			g_clear_error(&e);
		}
	}
	printf("alive=%d\n", smtp_alive(c) ? 1 : 0);
	smtp_close(c);
	return rc;
}
