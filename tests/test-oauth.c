/*
 * test-oauth.c - OAuth2 token sources: parsing what a command or file
 * hands over (plain line, JSON, JWT exp), the expiry and refresh rules
 * under a fake clock, and every way a token command fails, each with
 * its precise message.  No message may ever quote the token.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cg.h"
#include "log.h"
#include "config.h"
#include "oauth.h"

static char *dir;
static gint64 fake_now;

static gint64
fake_clock(void)
{
	return fake_now;
}

static char *
b64url(const char *s)
{
	char *b = g_base64_encode((const guchar *)s, strlen(s));
	char *p;

	for (p = b; *p != '\0'; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=')
			*p = '\0';
	}
	return b;
}

/* An unsigned-looking JWT: the client never checks the signature. */
static char *
jwt(const char *header, const char *payload)
{
	g_autofree char *h = b64url(header), *p = b64url(payload);

	return g_strdup_printf("%s.%s.c2lnbmF0dXJl", h, p);
}

static char *
write_file(const char *name, const char *text, int mode)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(chmod(path, mode), ==, 0);
	return path;
}

static void
assert_no_secret(const GError *e, const char *secret)
{
	g_assert_nonnull(e);
	if (secret != NULL && *secret != '\0')
		g_assert_null(strstr(e->message, secret));
}

/* ---- parsing ---- */

typedef struct {
	const char *in;
	const char *token;	/* NULL: expect an error */
	gint64	 expires;	/* with issued 1000, lifetime 3600 */
	const char *from;
	const char *error;	/* substring of the error */
} parse_row;

static const parse_row parse_rows[] = {
	{ "ya29.a0AfH6SMB-token_x~y+z/1==\n", "ya29.a0AfH6SMB-token_x~y+z/1==", 4600,
	  "token_lifetime", NULL },
	{ "  tok\r\n\r\n", "tok", 4600, "token_lifetime", NULL },
	{ "{\"access_token\":\"abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}",
	  "abc", 4599, "expires_in", NULL },
	{ "{\"access_token\":\"abc\",\"expires_in\":\"120\"}", "abc", 1120, "expires_in", NULL },
	{ "{\"access_token\":\"abc\",\"expires_in\":1.5e2}", "abc", 1150, "expires_in", NULL },
	{ "{\"access_token\":\"a\\u0062c\"}", "abc", 4600, "token_lifetime", NULL },
	{ "{\"scope\":[\"a\",{\"b\":[1,2,{}]}],\"access_token\":\"abc\",\"x\":null,\"y\":true}",
	  "abc", 4600, "token_lifetime", NULL },
	{ "", NULL, 0, NULL, "empty output" },
	{ " \n\t ", NULL, 0, NULL, "empty output" },
	{ "tok\nsecond", NULL, 0, NULL, "more than one line" },
	{ "tok en", NULL, 0, NULL, "offset 3" },
	{ "tok\001x", NULL, 0, NULL, "b64token" },
	{ "=abc", NULL, 0, NULL, "offset 0" },
	{ "abc=d", NULL, 0, NULL, "offset 4" },
	{ "{\"access_token\":\"abc\"", NULL, 0, NULL, "not valid JSON" },
	{ "{\"token\":\"abc\"}", NULL, 0, NULL, "no \"access_token\" string" },
	{ "{\"error\":\"invalid_grant\",\"error_description\":\"expired\"}", NULL, 0, NULL,
	  "(error \"invalid_grant\")" },
	{ "{\"access_token\":42}", NULL, 0, NULL, "no \"access_token\" string" },
	{ "{\"access_token\":\"\"}", NULL, 0, NULL, "the token is empty" },
	{ "{\"access_token\":\"a b\"}", NULL, 0, NULL, "b64token" },
	{ "{\"access_token\":\"abc\",\"expires_in\":-5}", NULL, 0, NULL, "expires_in" },
	{ "{\"access_token\":\"abc\",\"expires_in\":\"soon\"}", NULL, 0, NULL, "expires_in" },
	{ "{\"access_token\":\"abc\",\"expires_in\":null}", NULL, 0, NULL, "expires_in" },
	{ "{\"access_token\":\"abc\",\"access_token\":\"def\"}", NULL, 0, NULL, "twice" },
	{ "{\"access_token\":\"abc\"} x", NULL, 0, NULL, "text after the object" },
	{ "{\"access_token\":\"abc\",}", NULL, 0, NULL, "member name" },
	{ "{\"access_token\":\"a\\qc\"}", NULL, 0, NULL, "bad escape" },
	{ "{\"access_token\":\"a\\ud800c\"}", NULL, 0, NULL, "surrogate" },
	{ "{\"access_token\":\"a\\u0000c\"}", NULL, 0, NULL, "NUL" },
	{ "{\"access_token\":\"a\tc\"}", NULL, 0, NULL, "control character" },
	{ "{\"access_token\":\"abc\",\"n\":01}", NULL, 0, NULL, "not valid JSON" },
	{ "{\"access_token\":\"abc\",\"n\":tru}", NULL, 0, NULL, "not valid JSON" },
	{ "{\"access_token\":\"\xff\xfe\"}", NULL, 0, NULL, "UTF-8" },
};

static void
test_parse(void)
{
	gsize i;

	for (i = 0; i < G_N_ELEMENTS(parse_rows); i++) {
		const parse_row *r = &parse_rows[i];
		g_autoptr(GError) e = NULL;
		g_autoptr(oauth_token) t = oauth_token_parse(r->in, strlen(r->in), 1000, 3600, &e);
		g_autofree char *shown = g_strescape(r->in, NULL);

		g_test_message("row %zu: %s", i, shown);
		if (r->token != NULL) {
			g_assert_no_error(e);
			g_assert_nonnull(t);
			g_assert_cmpstr(t->access_token, ==, r->token);
			g_assert_cmpint(t->expires, ==, r->expires);
			g_assert_cmpstr(t->expires_from, ==, r->from);
		} else {
			g_assert_null(t);
			g_assert_error(e, CG_ERROR, CG_ERROR_CONFIG);
			if (strstr(e->message, r->error) == NULL)
				g_error("row %zu: \"%s\" lacks \"%s\"", i, e->message, r->error);
		}
	}
}

static void
test_parse_not_terminated(void)
{
	/* data is a length, not a C string: bytes after len are not read */
	const char buf[] = "tokXYZ";
	g_autoptr(GError) e = NULL;
	g_autoptr(oauth_token) t = oauth_token_parse(buf, 3, 0, 60, &e);

	g_assert_no_error(e);
	g_assert_cmpstr(t->access_token, ==, "tok");
}

static void
test_parse_limits(void)
{
	g_autoptr(GError) e = NULL;
	g_autoptr(GString) deep = g_string_new("{\"access_token\":\"abc\",\"x\":");
	g_autofree char *big = g_strnfill(OAUTH_TOKEN_MAX + 1, 'a');
	g_autofree char *huge = g_strnfill(OAUTH_OUTPUT_MAX + 10, 'a');
	oauth_token *t;
	int i;

	for (i = 0; i < 40; i++)
		g_string_append_c(deep, '[');
	for (i = 0; i < 40; i++)
		g_string_append_c(deep, ']');
	g_string_append_c(deep, '}');
	t = oauth_token_parse(deep->str, deep->len, 0, 60, &e);
	g_assert_null(t);
	g_assert_nonnull(strstr(e->message, "nested too deeply"));
	g_clear_error(&e);

	t = oauth_token_parse(big, strlen(big), 0, 60, &e);
	g_assert_null(t);
	g_assert_nonnull(strstr(e->message, "longer than 16384"));
	g_clear_error(&e);

	t = oauth_token_parse(huge, strlen(huge), 0, 60, &e);
	g_assert_null(t);
	g_assert_nonnull(strstr(e->message, "output longer than 65536"));
}

/* A JWT's exp is used when nothing else says; expires_in wins over it. */
static void
test_jwt_expiry(void)
{
	g_autofree char *good = jwt("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	    "{\"sub\":\"members\",\"exp\":5000,\"nested\":{\"exp\":1}}");
	g_autofree char *noalg = jwt("{\"typ\":\"JWT\"}", "{\"exp\":5000}");
	g_autofree char *strexp = jwt("{\"alg\":\"HS256\"}", "{\"exp\":\"5000\"}");
	g_autofree char *noexp = jwt("{\"alg\":\"HS256\"}", "{\"sub\":\"x\"}");
	g_autofree char *fexp = jwt("{\"alg\":\"HS256\"}", "{\"exp\":5000.9}");
	g_autofree char *json = g_strdup_printf("{\"access_token\":\"%s\",\"expires_in\":60}",
	    good);
	g_autoptr(GError) e = NULL;
	g_autoptr(oauth_token) t1 = NULL, t2 = NULL;
	gint64 exp = 0;

	g_assert_true(oauth_jwt_exp(good, &exp));
	g_assert_cmpint(exp, ==, 5000);
	g_assert_true(oauth_jwt_exp(fexp, &exp));
	g_assert_cmpint(exp, ==, 5000);
	g_assert_false(oauth_jwt_exp(noalg, &exp));
	g_assert_false(oauth_jwt_exp(strexp, &exp));
	g_assert_false(oauth_jwt_exp(noexp, &exp));
	g_assert_false(oauth_jwt_exp("ya29.opaque", &exp));
	g_assert_false(oauth_jwt_exp("a.b.c.d.e", &exp));	/* JWE: opaque to us */
	g_assert_false(oauth_jwt_exp("!!!.###.$$$", &exp));
	g_assert_false(oauth_jwt_exp("..", &exp));
	g_assert_false(oauth_jwt_exp(NULL, &exp));

	t1 = oauth_token_parse(good, strlen(good), 1000, 3600, &e);
	g_assert_no_error(e);
	g_assert_cmpint(t1->expires, ==, 5000);
	g_assert_cmpstr(t1->expires_from, ==, "the JWT exp claim");
	t2 = oauth_token_parse(json, strlen(json), 1000, 3600, &e);
	g_assert_no_error(e);
	g_assert_cmpint(t2->expires, ==, 1060);
	g_assert_cmpstr(t2->expires_from, ==, "expires_in");
}

typedef struct {
	const char *json;	/* NULL: raw b64 in b64 */
	const char *b64;
	const char *want;	/* NULL: not a challenge */
} challenge_row;

static const challenge_row challenge_rows[] = {
	{ "{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"mail\"}", NULL,
	  "status 401, schemes bearer, scope mail" },
	{ "{\"status\":\"400\",\"schemes\":\"Bearer\",\"scope\":\"https://mail.google.com/\"}",
	  NULL, "status 400, schemes Bearer, scope https://mail.google.com/" },
	{ "{\"status\":\"401\\n\\u0001x\"}", NULL, "status 401 ?x" },
	{ "{\"other\":1}", NULL, NULL },
	{ "not json", NULL, NULL },
	{ NULL, "", NULL },
	{ NULL, "!!!!", NULL },
	{ NULL, "abc", NULL },
	{ NULL, NULL, NULL },
};

static void
test_challenge(void)
{
	gsize i;

	for (i = 0; i < G_N_ELEMENTS(challenge_rows); i++) {
		const challenge_row *r = &challenge_rows[i];
		g_autofree char *b = r->json != NULL ?
		    g_base64_encode((const guchar *)r->json, strlen(r->json)) : g_strdup(r->b64);
		g_autofree char *got = oauth_challenge_describe(b);

		g_test_message("row %zu", i);
		g_assert_cmpstr(got, ==, r->want);
	}
}

/* ---- the command ---- */

static char **
script(const char *name, const char *body)
{
	g_autofree char *text = g_strdup_printf("#!/bin/sh\n%s\n", body);
	char *path = write_file(name, text, 0700);
	char **argv = g_new0(char *, 2);

	argv[0] = path;
	return argv;
}

typedef struct {
	const char *name;
	const char *body;
	int	 timeout;
	int	 code;		/* 0: success */
	const char *want;	/* stdout on success, else error substring */
	const char *want2;	/* a second substring, or NULL */
} command_row;

static const command_row command_rows[] = {
	{ "plain", "echo tok-123", 5, 0, "tok-123\n", NULL },
	{ "json", "printf '{\"access_token\":\"abc\",\"expires_in\":3600}'", 5, 0,
	  "{\"access_token\":\"abc\",\"expires_in\":3600}", NULL },
	{ "status3", "echo secret-token; echo 'invalid_grant: refresh token revoked' >&2; exit 3",
	  5, CG_ERROR_TEMP, "exited with status 3",
	  "(its stderr: \"invalid_grant: refresh token revoked\")" },
	{ "signal", "kill -TERM $$", 5, CG_ERROR_TEMP, "was killed by signal 15", NULL },
	{ "empty", "true", 5, CG_ERROR_CONFIG, "exited with status 0 but printed no token", NULL },
	{ "blank", "printf '  \\n\\n'; echo 'no cached credentials' >&2", 5, CG_ERROR_CONFIG,
	  "printed no token", "no cached credentials" },
	{ "slow", "echo started >&2; exec sleep 30", 1, CG_ERROR_TEMP,
	  "timed out after 1 s and was killed", "started" },
	{ "closes", "exec >&- 2>&-; sleep 30", 1, CG_ERROR_TEMP, "timed out after 1 s", NULL },
	{ "big", "head -c 100000 /dev/zero | tr '\\0' a", 5, CG_ERROR_CONFIG,
	  "printed more than 65536 bytes", NULL },
	{ "ctrl", "printf 'x\\033[31mred\\n' >&2; exit 1", 5, CG_ERROR_TEMP,
	  "(its stderr: \"x?[31mred\")", NULL },
};

static void
test_command(void)
{
	gsize i;

	for (i = 0; i < G_N_ELEMENTS(command_rows); i++) {
		const command_row *r = &command_rows[i];
		g_auto(GStrv) argv = script(r->name, r->body);
		g_autoptr(GError) e = NULL;
		gint64 t0 = cg_mono_ms();
		gsize len = 0;
		char *out = oauth_command_output(argv, r->timeout, &len, &e);

		g_test_message("row %s", r->name);
		g_assert_cmpint(cg_mono_ms() - t0, <, (r->timeout + 2) * 1000);
		if (r->code == 0) {
			g_assert_no_error(e);
			g_assert_cmpstr(out, ==, r->want);
			g_assert_cmpuint(len, ==, strlen(r->want));
			oauth_secret_free(out);
			continue;
		}
		g_assert_null(out);
		g_assert_error(e, CG_ERROR, r->code);
		if (strstr(e->message, r->want) == NULL ||
		    (r->want2 != NULL && strstr(e->message, r->want2) == NULL))
			g_error("%s: \"%s\"", r->name, e->message);
		g_assert_true(g_str_has_prefix(e->message, "OAuth2 token command "));
		g_assert_nonnull(strstr(e->message, argv[0]));
		assert_no_secret(e, "secret-token");
	}
}

static void
test_command_not_found(void)
{
	char *argv[] = { "/nonexistent/get-token", "--client-secret", "s3cr3t", NULL };
	char *argv2[] = { "casegate-no-such-program", NULL };
	g_autoptr(GError) e = NULL;
	gsize len;

	g_assert_null(oauth_command_output(argv, 5, &len, &e));
	g_assert_error(e, CG_ERROR, CG_ERROR_CONFIG);
	g_assert_nonnull(strstr(e->message, "/nonexistent/get-token cannot be run"));
	assert_no_secret(e, "s3cr3t");	/* arguments are never quoted */
	g_clear_error(&e);
	g_assert_false(oauth_command_check(argv, &e));
	g_assert_nonnull(strstr(e->message, "No such file"));
	g_clear_error(&e);
	g_assert_false(oauth_command_check(argv2, &e));
	g_assert_nonnull(strstr(e->message, "not found in PATH"));
	g_clear_error(&e);
	g_assert_null(oauth_command_output(NULL, 5, &len, &e));
	g_assert_nonnull(strstr(e->message, "empty"));
}

/* A timed-out command's children die with it (its process group). */
static void
test_command_group_killed(void)
{
	g_autofree char *pidfile = g_build_filename(dir, "grandchild.pid", NULL);
	g_autofree char *body = g_strdup_printf("sleep 30 & echo $! > %s; wait", pidfile);
	g_auto(GStrv) argv = script("group", body);
	g_autoptr(GError) e = NULL;
	g_autofree char *pidtext = NULL, *stat_path = NULL, *st = NULL;
	gsize len;
	int i;

	g_assert_null(oauth_command_output(argv, 1, &len, &e));
	g_assert_nonnull(strstr(e->message, "timed out"));
	g_assert_true(g_file_get_contents(pidfile, &pidtext, NULL, NULL));
	stat_path = g_strdup_printf("/proc/%d/stat", atoi(pidtext));
	/* gone, or a zombie waiting for init to reap it */
	for (i = 0; i < 50; i++) {
		g_clear_pointer(&st, g_free);
		if (!g_file_get_contents(stat_path, &st, NULL, NULL) || strstr(st, ") Z ") != NULL)
			break;
		g_usleep(20 * 1000);
	}
	g_assert_true(st == NULL || strstr(st, ") Z ") != NULL);
}

/* A signal mask line of /proc/PID/status. */
static guint64
proc_sigmask(const char *status, const char *field)
{
	const char *p = strstr(status, field);

	g_assert_nonnull(p);
	return g_ascii_strtoull(p + strlen(field), NULL, 16);
}

/* The daemon blocks signals for its signalfd and ignores SIGPIPE; the child must not inherit that. */
static void
test_command_signals_reset(void)
{
	g_auto(GStrv) argv = script("sigs", "grep -E '^(SigBlk|SigIgn)' /proc/self/status");
	g_autoptr(GError) e = NULL;
	sigset_t set, old;
	gsize len;
	char *out;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	signal(SIGPIPE, SIG_IGN);
	out = oauth_command_output(argv, 5, &len, &e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	g_assert_no_error(e);
	/* Signals 1-31; glibc reserves 32 and 33 and cannot reset them. */
	g_assert_cmphex(proc_sigmask(out, "SigBlk:") & 0x7fffffff, ==, 0);
	g_assert_cmphex(proc_sigmask(out, "SigIgn:") & 0x7fffffff, ==, 0);
	oauth_secret_free(out);
}

/* ---- the cache and refresh, under a fake clock ---- */

static endpoint
command_endpoint(char **argv)
{
	endpoint ep = { 0 };

	ep.user = "members@example.test";
	ep.auth = AUTH_OAUTH2;
	ep.token_command = argv[0];
	ep.token_argv = argv;
	ep.token_lifetime = 3600;
	ep.token_refresh = 300;
	ep.timeout = 5;
	return ep;
}

static int
count_runs(void)
{
	g_autofree char *path = g_build_filename(dir, "runs", NULL);
	g_autofree char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	return (int)strlen(text);
}

static char *
token_now(const endpoint *ep, GError **e)
{
	return oauth_access_token(ep, e);
}

static void
test_refresh_command(void)
{
	g_autofree char *fail = g_build_filename(dir, "fail", NULL);
	g_autofree char *body = g_strdup_printf(
	    "cd %s || exit 9\n"
	    "[ -e fail ] && { echo 'token endpoint unreachable' >&2; exit 4; }\n"
	    "printf x >> runs\n"
	    "printf '{\"access_token\":\"tok-%%s\",\"expires_in\":3600}' $(wc -c < runs)",
	    dir);
	g_auto(GStrv) argv = script("counter", body);
	endpoint ep = command_endpoint(argv);
	g_autoptr(GError) e = NULL;
	char *t;

	oauth_cache_clear();
	oauth_set_clock(fake_clock);
	fake_now = 100000;

	t = token_now(&ep, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(t, ==, "tok-1");
	oauth_secret_free(t);

	/* well within the lifetime: cached, the command does not run */
	fake_now += 3600 - 301;
	t = token_now(&ep, &e);
	g_assert_cmpstr(t, ==, "tok-1");
	oauth_secret_free(t);
	g_assert_cmpint(count_runs(), ==, 1);

	/* 300 s left = token_refresh: fetched anew */
	fake_now += 1;
	t = token_now(&ep, &e);
	g_assert_cmpstr(t, ==, "tok-2");
	oauth_secret_free(t);
	g_assert_cmpint(count_runs(), ==, 2);

	/* refresh fails while the cached token is still valid: keep using it */
	g_assert_true(g_file_set_contents(fail, "", 0, NULL));
	fake_now += 3600 - 100;
	t = token_now(&ep, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(t, ==, "tok-2");
	oauth_secret_free(t);

	/* ... but not once it expired: the error names the command and its words */
	fake_now += 100;
	t = token_now(&ep, &e);
	g_assert_null(t);
	g_assert_error(e, CG_ERROR, CG_ERROR_TEMP);
	g_assert_nonnull(strstr(e->message, "exited with status 4"));
	g_assert_nonnull(strstr(e->message, "token endpoint unreachable"));
	g_clear_error(&e);

	/* the server refused the token: the next login fetches a new one */
	g_assert_cmpint(unlink(fail), ==, 0);
	t = token_now(&ep, &e);
	g_assert_cmpstr(t, ==, "tok-3");
	oauth_secret_free(t);
	oauth_token_refused(&ep);
	t = token_now(&ep, &e);
	g_assert_cmpstr(t, ==, "tok-4");
	oauth_secret_free(t);

	/* another endpoint with the same source shares the token */
	{
		endpoint ep2 = command_endpoint(argv);

		t = token_now(&ep2, &e);
		g_assert_cmpstr(t, ==, "tok-4");
		oauth_secret_free(t);
	}
	oauth_set_clock(NULL);
	oauth_cache_clear();
}

static void
test_refresh_expired_from_command(void)
{
	g_autofree char *old = jwt("{\"alg\":\"HS256\"}", "{\"sub\":\"m\",\"exp\":1000}");
	g_autofree char *body = g_strdup_printf("echo %s", old);
	g_auto(GStrv) argv = script("stale", body);
	g_auto(GStrv) argv2 = script("zero", "echo '{\"access_token\":\"abc\",\"expires_in\":0}'");
	endpoint ep = command_endpoint(argv), ep2 = command_endpoint(argv2);
	g_autoptr(GError) e = NULL;

	oauth_cache_clear();
	oauth_set_clock(fake_clock);
	fake_now = 1060;
	g_assert_null(token_now(&ep, &e));
	g_assert_error(e, CG_ERROR, CG_ERROR_CONFIG);
	g_assert_nonnull(strstr(e->message, "expired at 1970-01-01 00:16:40 UTC (60 s ago, "
	    "by the JWT exp claim)"));
	g_assert_nonnull(strstr(e->message, "stale"));
	assert_no_secret(e, old);
	g_clear_error(&e);

	g_assert_null(token_now(&ep2, &e));
	g_assert_nonnull(strstr(e->message, "(0 s ago, by expires_in)"));
	oauth_set_clock(NULL);
	oauth_cache_clear();
}

static void
test_refresh_short_lived(void)
{
	g_auto(GStrv) argv = script("short", "cd \"$(dirname \"$0\")\"; printf x >> runs2; "
	    "echo '{\"access_token\":\"abc\",\"expires_in\":100}'");
	endpoint ep = command_endpoint(argv);
	g_autofree char *runs = g_build_filename(dir, "runs2", NULL), *text = NULL;
	g_autoptr(GError) e = NULL;
	char *t;

	oauth_cache_clear();
	oauth_set_clock(fake_clock);
	fake_now = 5000;
	/* shorter than token_refresh: usable, but fetched at every login */
	t = token_now(&ep, &e);
	g_assert_cmpstr(t, ==, "abc");
	oauth_secret_free(t);
	t = token_now(&ep, &e);
	oauth_secret_free(t);
	g_assert_true(g_file_get_contents(runs, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "xx");
	oauth_set_clock(NULL);
	oauth_cache_clear();
}

static void
set_mtime(const char *path, gint64 t)
{
	struct timespec ts[2] = { { (time_t)t, 0 }, { (time_t)t, 0 } };

	g_assert_cmpint(utimensat(AT_FDCWD, path, ts, 0), ==, 0);
}

static void
test_refresh_file(void)
{
	g_autofree char *path = write_file("token", "file-tok-1\n", 0600);
	g_autofree char *link = g_build_filename(dir, "token-link", NULL);
	endpoint ep = { 0 };
	g_autoptr(GError) e = NULL;
	char *t;

	ep.user = "members";
	ep.auth = AUTH_OAUTH2;
	ep.token_file = path;
	ep.token_lifetime = 3600;
	ep.token_refresh = 300;
	oauth_cache_clear();
	oauth_set_clock(fake_clock);

	/* a plain token's lifetime counts from when the file was written */
	set_mtime(path, 200000);
	fake_now = 200000 + 3000;
	t = token_now(&ep, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(t, ==, "file-tok-1");
	oauth_secret_free(t);

	/* not rewritten, 100 s left: still used (with a warning) */
	fake_now = 200000 + 3500;
	t = token_now(&ep, &e);
	g_assert_cmpstr(t, ==, "file-tok-1");
	oauth_secret_free(t);

	/* expired and nobody rewrote the file */
	fake_now = 200000 + 3601;
	g_assert_null(token_now(&ep, &e));
	g_assert_error(e, CG_ERROR, CG_ERROR_CONFIG);
	g_assert_nonnull(strstr(e->message, "by token_lifetime"));
	g_assert_nonnull(strstr(e->message, "whatever refreshes that file has not run"));
	assert_no_secret(e, "file-tok-1");
	g_clear_error(&e);

	/* rewritten (JSON this time): re-read at once */
	g_assert_true(g_file_set_contents(path,
	    "{\"access_token\":\"file-tok-2\",\"expires_in\":3600}", -1, NULL));
	g_assert_cmpint(chmod(path, 0600), ==, 0);
	set_mtime(path, fake_now);
	t = token_now(&ep, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(t, ==, "file-tok-2");
	oauth_secret_free(t);

	/* a rewrite with bad content: keep the valid token read before */
	g_assert_true(g_file_set_contents(path, "two\nlines\n", -1, NULL));
	g_assert_cmpint(chmod(path, 0600), ==, 0);
	t = token_now(&ep, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(t, ==, "file-tok-2");
	oauth_secret_free(t);

	/* group-readable: refused, like a password file */
	oauth_cache_clear();
	g_assert_cmpint(chmod(path, 0640), ==, 0);
	g_assert_null(token_now(&ep, &e));
	g_assert_nonnull(strstr(e->message, "is readable by group or others (mode 0640); "
	    "run chmod 600"));
	g_clear_error(&e);
	g_assert_false(oauth_file_check(path, &e));
	g_clear_error(&e);
	g_assert_cmpint(chmod(path, 0600), ==, 0);
	g_assert_true(oauth_file_check(path, &e));

	/* a symlink is refused */
	g_assert_cmpint(symlink(path, link), ==, 0);
	ep.token_file = link;
	g_assert_null(token_now(&ep, &e));
	g_assert_nonnull(strstr(e->message, "symbolic link"));
	g_clear_error(&e);

	/* missing */
	ep.token_file = "/nonexistent/token";
	g_assert_null(token_now(&ep, &e));
	g_assert_nonnull(strstr(e->message, "OAuth2 token file /nonexistent/token: No such file"));
	g_clear_error(&e);

	/* not configured at all */
	ep.token_file = NULL;
	g_assert_null(token_now(&ep, &e));
	g_assert_nonnull(strstr(e->message, "neither token_command nor token_file"));
	oauth_set_clock(NULL);
	oauth_cache_clear();
}


/* ---- casegate.conf: auth = "oauth2" ---- */

#define CONF_HEAD \
	"gateway = { address = \"members@example.org\"; };\n" \
	"database = \"cases.db\";\nspool = \"spool\";\ntemplates = \"tpl\";\n"

typedef struct {
	const char *imap;	/* the imap group's extra settings */
	const char *smtp;	/* the smtp group's extra settings */
	const char *error;	/* NULL: loads; else a substring of one error */
} conf_row;

static const conf_row conf_rows[] = {
	{ "auth = \"oauth2\"; token_command = \"./get-token --for imap\";", "", NULL },
	{ "auth = \"oauth2\"; token_file = \"tok\";",
	  "user = \"members\"; auth = \"oauth2\"; token_file = \"tok\";", NULL },
	{ "password_file = \"pw\";", "", NULL },
	{ "password_file = \"pw\"; auth = \"password\";", "", NULL },
	{ "auth = \"oauth2\";", "", "needs exactly one of \"imap.token_command\" and "
	  "\"imap.token_file\"" },
	{ "auth = \"oauth2\"; token_file = \"tok\"; token_command = \"./get-token\";", "",
	  "needs exactly one of" },
	{ "auth = \"oauth2\"; token_file = \"tok\"; password_file = \"pw\";", "",
	  "\"imap.password_file\" is not used with auth = \"oauth2\"; remove it" },
	{ "auth = \"oauth\"; password_file = \"pw\";", "",
	  "\"imap.auth\" must be \"password\" or \"oauth2\"" },
	{ "password_file = \"pw\"; token_file = \"tok\";", "",
	  "\"imap.token_file\" is only used with auth = \"oauth2\"" },
	{ "auth = \"oauth2\"; token_command = \"./get-token 'unterminated\";", "",
	  "cannot be split into words" },
	{ "auth = \"oauth2\"; token_command = \"./no-such-script\";", "",
	  "\"imap.token_command\": " },
	{ "auth = \"oauth2\"; token_command = \"casegate-no-such-program\";", "",
	  "not found in PATH" },
	{ "auth = \"oauth2\"; token_file = \"loose-tok\";", "",
	  "is readable by group or others" },
	{ "auth = \"oauth2\"; token_file = \"tok\"; token_lifetime = 600; token_refresh = 600;",
	  "", "\"imap.token_refresh\" (600 s) must be below \"imap.token_lifetime\" (600 s)" },
	{ "auth = \"oauth2\"; token_file = \"tok\"; token_lifetime = 10;", "",
	  "must be between 60 and 86400" },
	{ "password_file = \"pw\";", "auth = \"oauth2\"; token_file = \"tok\";",
	  "\"smtp.auth = oauth2\" needs \"smtp.user\"" },
};

static void
test_config(void)
{
	gsize i;

	for (i = 0; i < G_N_ELEMENTS(conf_rows); i++) {
		const conf_row *r = &conf_rows[i];
		g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
		g_autofree char *text = g_strdup_printf(CONF_HEAD
		    "imap = { host = \"localhost\"; user = \"members\"; %s };\n"
		    "smtp = { host = \"localhost\"; port = 25; tls = \"none\"; %s };\n",
		    r->imap, r->smtp);
		g_autofree char *path = write_file("oauth.conf", text, 0644);
		g_autoptr(config) cfg = config_load(path, errors);
		guint j;
		gboolean found = FALSE;

		g_test_message("row %zu", i);
		if (r->error == NULL) {
			if (errors->len > 0)
				g_error("row %zu: %s", i, (char *)g_ptr_array_index(errors, 0));
			g_assert_nonnull(cfg);
			continue;
		}
		g_assert_null(cfg);
		for (j = 0; j < errors->len; j++)
			found |= strstr(g_ptr_array_index(errors, j), r->error) != NULL;
		if (!found)
			g_error("row %zu: no error has \"%s\"; first: %s", i, r->error,
			    errors->len ? (char *)g_ptr_array_index(errors, 0) : "(none)");
	}
}

/* What the loader fills in: argv split without a shell, paths resolved, defaults. */
static void
test_config_values(void)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *path = write_file("values.conf", CONF_HEAD
	    "imap = { host = \"localhost\"; user = \"members\"; auth = \"oauth2\";\n"
	    "  token_command = \"./get-token --scope 'https://outlook.office.com/IMAP "
	    "x' $HOME;\"; };\n"
	    "smtp = { host = \"localhost\"; user = \"members\"; auth = \"oauth2\";\n"
	    "  token_file = \"tok\"; token_lifetime = 7200; token_refresh = 60; };\n", 0644);
	g_autoptr(config) cfg = config_load(path, errors);
	g_autofree char *script_path = g_build_filename(dir, "get-token", NULL);
	g_autofree char *tok_path = g_build_filename(dir, "tok", NULL);
	const imap_account *a;

	if (errors->len > 0)
		g_error("%s", (char *)g_ptr_array_index(errors, 0));
	a = g_ptr_array_index(cfg->mailboxes, 0);
	g_assert_cmpint(a->ep.auth, ==, AUTH_OAUTH2);
	g_assert_null(a->ep.password);
	g_assert_cmpstr(a->ep.token_argv[0], ==, script_path);
	g_assert_cmpstr(a->ep.token_argv[1], ==, "--scope");
	g_assert_cmpstr(a->ep.token_argv[2], ==, "https://outlook.office.com/IMAP x");
	g_assert_cmpstr(a->ep.token_argv[3], ==, "$HOME;");	/* no shell expands it */
	g_assert_null(a->ep.token_argv[4]);
	g_assert_cmpint(a->ep.token_lifetime, ==, 3600);
	g_assert_cmpint(a->ep.token_refresh, ==, 300);
	g_assert_cmpint(cfg->smtp.auth, ==, AUTH_OAUTH2);
	g_assert_cmpstr(cfg->smtp.token_file, ==, tok_path);
	g_assert_cmpint(cfg->smtp.token_lifetime, ==, 7200);
	g_assert_cmpint(cfg->smtp.token_refresh, ==, 60);
}

int
main(int argc, char **argv)
{
	GError *e = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	log_init("test-oauth", LOG_TO_STDERR, 0);
	dir = g_dir_make_tmp("test-oauth-XXXXXX", &e);
	g_assert_no_error(e);
	{
		g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *f = NULL;
		g_autofree char *tpl = g_build_filename(dir, "tpl", NULL);

		g_assert_cmpint(mkdir(tpl, 0755), ==, 0);
		a = write_file("tpl/ack.txt", "Case {{case_id}}\n", 0644);
		b = write_file("pw", "s3cret\n", 0600);
		c = write_file("tok", "ya29.token\n", 0600);
		d = write_file("loose-tok", "ya29.token\n", 0644);
		f = write_file("get-token", "#!/bin/sh\necho ya29.token\n", 0700);
	}

	g_test_add_func("/oauth/parse", test_parse);
	g_test_add_func("/oauth/parse_not_terminated", test_parse_not_terminated);
	g_test_add_func("/oauth/parse_limits", test_parse_limits);
	g_test_add_func("/oauth/jwt_expiry", test_jwt_expiry);
	g_test_add_func("/oauth/challenge", test_challenge);
	g_test_add_func("/oauth/command", test_command);
	g_test_add_func("/oauth/command_not_found", test_command_not_found);
	g_test_add_func("/oauth/command_group_killed", test_command_group_killed);
	g_test_add_func("/oauth/command_signals_reset", test_command_signals_reset);
	g_test_add_func("/oauth/refresh_command", test_refresh_command);
	g_test_add_func("/oauth/refresh_expired_from_command", test_refresh_expired_from_command);
	g_test_add_func("/oauth/refresh_short_lived", test_refresh_short_lived);
	g_test_add_func("/oauth/refresh_file", test_refresh_file);
	g_test_add_func("/oauth/config", test_config);
	g_test_add_func("/oauth/config_values", test_config_values);
	rc = g_test_run();

	{
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

		if (g_str_has_prefix(dir, g_get_tmp_dir()) && system(cmd) != 0)
			rc = 1;
	}
	g_free(dir);
	return rc;
}
