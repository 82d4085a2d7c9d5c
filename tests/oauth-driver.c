/*
 * oauth-driver.c - log in with XOAUTH2 through imap.c or smtp.c, for
 * tests/0500-oauth.t.
 *
 *   oauth-driver [-c ca.pem] (-t token_command | -f token_file)
 *       [-n logins] [-w secs] [-l token_lifetime] [-r token_refresh]
 *       [-s from,rcpt,file] [-v] imap|smtp user host port implicit|starttls|none
 *
 * Logs in n times (default 1) in one process, so the token cache and
 * its refresh are exercised, waiting secs between logins; prints
 * "login N ok" after each.  For smtp, -s sends file after each login.
 * Errors go to stderr as "oauth-driver: <message>"; exit status 0, 75
 * temporary, 76 permanent, 78 config or refusal, 64 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "config.h"
#include "imap.h"
#include "log.h"
#include "oauth.h"
#include "smtp.h"

#define EX_PERM	76

static int
fail(GError *e)
{
	int code = e->code == CG_ERROR_PERM ? EX_PERM :
	    e->code == CG_ERROR_CONFIG ? CG_EX_CONFIG : CG_EX_TEMPFAIL;

	fprintf(stderr, "oauth-driver: %s\n", e->message);
	g_error_free(e);
	return code;
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

static int
login_imap(endpoint *ep)
{
	imap_account acct = { 0 };
	GError *e = NULL;
	imap_conn *c;

	acct.name = "oauth";
	acct.ep = *ep;
	acct.poll_interval = 60;
	acct.fetch_batch = 50;
	if ((c = imap_open(&acct, &e)) == NULL)
		return fail(e);
	imap_close(c);
	return 0;
}

static int
login_smtp(endpoint *ep, char **send)
{
	GError *e = NULL;
	g_autofree char *data = NULL;
	gsize len = 0;
	smtp_conn *c;

	if (send != NULL && !g_file_get_contents(send[2], &data, &len, &e))
		return fail(e);
	if ((c = smtp_open(ep, "casegate.example.test", &e)) == NULL)
		return fail(e);
	if (send != NULL && !smtp_send_data(c, send[0], send[1], data, len, &e)) {
		smtp_close(c);
		return fail(e);
	}
	smtp_close(c);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: oauth-driver [-c ca.pem] (-t token_command | -f token_file) "
	    "[-n logins] [-w secs] [-l lifetime] [-r refresh] [-s from,rcpt,file] [-v] "
	    "imap|smtp user host port implicit|starttls|none\n");
}

int
main(int argc, char **argv)
{
	endpoint ep = { 0 };
	g_autoptr(GError) e = NULL;
	g_auto(GStrv) send = NULL;
	const char *command = NULL;
	int ch, n = 1, wait = 0, i, rc = 0, verbose = 0;

	signal(SIGPIPE, SIG_IGN);
	ep.system_ca = FALSE;
	ep.timeout = 20;
	ep.auth = AUTH_OAUTH2;
	ep.token_lifetime = 3600;
	ep.token_refresh = 300;
	while ((ch = getopt(argc, argv, "c:f:l:n:r:s:t:vw:")) != -1) {
		switch (ch) {
		case 'c': ep.ca_file = optarg; break;
		case 'f': ep.token_file = optarg; break;
		case 'l': ep.token_lifetime = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'r': ep.token_refresh = atoi(optarg); break;
		case 's': send = g_strsplit(optarg, ",", 3); break;
		case 't': command = optarg; break;
		case 'v': verbose++; break;
		case 'w': wait = atoi(optarg); break;
		default: usage(); return CG_EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 5 || !parse_tls(argv[4], &ep.tls) || n < 1 ||
	    (command == NULL) == (ep.token_file == NULL) ||
	    (send != NULL && g_strv_length(send) != 3)) {
		usage();
		return CG_EX_USAGE;
	}
	log_init("oauth-driver", LOG_TO_STDERR, verbose);
	ep.user = argv[1];
	ep.host = argv[2];
	ep.port = atoi(argv[3]);
	if (command != NULL) {
		ep.token_command = (char *)command;
		if (!g_shell_parse_argv(command, NULL, &ep.token_argv, &e)) {
			fprintf(stderr, "oauth-driver: -t: %s\n", e->message);
			return CG_EX_USAGE;
		}
	}
	for (i = 1; i <= n && rc == 0; i++) {
		if (i > 1 && wait > 0)
			sleep((unsigned)wait);
		rc = strcmp(argv[0], "imap") == 0 ? login_imap(&ep) : login_smtp(&ep, send);
		if (rc == 0)
			printf("login %d ok\n", i);
		fflush(stdout);
	}
	g_strfreev(ep.token_argv);
	oauth_cache_clear();
	return rc;
}
