/*
 * test-staff.c - staff recognition: listed addresses and domains,
 * Authentication-Results parsing (comments, quotes, alignment, the
 * trusted authserv-id, forged copies below the real one), and the role
 * of a sender on a case.
 */
#include <string.h>

#include "cg.h"
#include "config.h"
#include "mail.h"
#include "staff.h"

#define TRUSTED "mx.example.test"

static const struct {
	const char *value;
	const char *domain;
	gboolean want;
} ar_rows[] = {
	{ "mx.example.test; dkim=pass header.d=example.test header.s=s1", "example.test", TRUE },
	{ "mx.example.test; spf=pass smtp.mailfrom=staff@example.test", "example.test", TRUE },
	{ "mx.example.test; spf=pass smtp.mailfrom=example.test", "example.test", TRUE },
	{ "MX.Example.Test 1; DKIM=Pass header.d=EXAMPLE.test", "example.test", TRUE },
	{ "mx.example.test;\n\tdkim = pass (good signature) header.d = example.test", "example.test", TRUE },
	{ "mx.example.test; dkim=pass header.i=@example.test", "example.test", TRUE },
	{ "mx.example.test; dkim=fail header.d=example.test; spf=pass smtp.mailfrom=x@example.test",
	  "example.test", TRUE },
	{ "mx.example.test; dkim/1=pass header.d=example.test", "example.test", TRUE },
	/* no */
	{ "mx.example.test; dkim=fail header.d=example.test", "example.test", FALSE },
	{ "mx.example.test; spf=softfail smtp.mailfrom=staff@example.test", "example.test", FALSE },
	{ "mx.example.test; dkim=pass header.d=evil.test", "example.test", FALSE },
	{ "mx.example.test; dkim=pass header.d=sub.example.test", "example.test", FALSE },
	{ "mx.example.test; dkim=pass header.d=example.test.evil.test", "example.test", FALSE },
	{ "mx.example.test; spf=pass smtp.mailfrom=staff@evil.test", "example.test", FALSE },
	{ "mx.example.test; spf=pass smtp.helo=example.test", "example.test", FALSE },
	{ "evil.test; dkim=pass header.d=example.test", "example.test", FALSE },
	{ "mx.example.test.evil.test; dkim=pass header.d=example.test", "example.test", FALSE },
	{ "mx.example.test; none", "example.test", FALSE },
	{ "mx.example.test; dkim=none (dkim=pass header.d=example.test)", "example.test", FALSE },
	{ "mx.example.test; dkim=none reason=\"dkim=pass header.d=example.test\"", "example.test", FALSE },
	{ "mx.example.test; dkim=none reason=\"x; dkim=pass header.d=example.test\"", "example.test", FALSE },
	{ "mx.example.test; dkim=pass (unclosed header.d=example.test", "example.test", FALSE },
	{ "mx.example.test; dkim=pass header.d=\"unclosed", "example.test", FALSE },
	{ "(comment) ; dkim=pass header.d=example.test", "example.test", FALSE },
	{ "dkim=pass header.d=example.test", "example.test", FALSE },
	{ "mx.example.test; dkim=pass", "example.test", FALSE },
	{ "mx.example.test; dkim=pass header.d=", "example.test", FALSE },
	{ "mx.example.test; =pass header.d=example.test", "example.test", FALSE },
	{ "mx.example.test; ; ; ===", "example.test", FALSE },
	{ "", "example.test", FALSE },
	{ NULL, "example.test", FALSE },
};

static void
test_auth_results(void)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(ar_rows); i++) {
		gboolean got = staff_auth_results_pass(ar_rows[i].value, TRUSTED, ar_rows[i].domain);

		if (got != ar_rows[i].want)
			g_error("row %u \"%s\": got %d, want %d", i,
			    ar_rows[i].value ? ar_rows[i].value : "(null)", got, ar_rows[i].want);
	}
	/* nesting and escapes inside comments */
	g_assert_true(staff_auth_results_pass("mx.example.test (a (b) \\) c); "
	    "spf=pass smtp.mailfrom=a@example.test", TRUSTED, "example.test"));
	g_assert_false(staff_auth_results_pass("mx.example.test; dkim=pass header.d=example.test",
	    NULL, "example.test"));
}

/* A long hostile value does not hang or crash, and is "no". */
static void
test_auth_results_hostile(void)
{
	GString *s = g_string_new("mx.example.test; ");
	int i;

	for (i = 0; i < 5000; i++)
		g_string_append(s, "((((\"=;");
	g_assert_false(staff_auth_results_pass(s->str, TRUSTED, "example.test"));
	g_string_free(s, TRUE);
}

typedef struct {
	config	 cfg;
} fixture;

static void
fixture_init(config *cfg, gboolean require_auth)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->address = "members@example.test";
	cfg->staff.addresses = g_ptr_array_new();
	g_ptr_array_add(cfg->staff.addresses, "boss@partner.test");
	cfg->staff.domains = g_ptr_array_new();
	g_ptr_array_add(cfg->staff.domains, "example.test");
	cfg->staff.authserv_id = TRUSTED;
	cfg->staff.require_auth = require_auth;
}

static void
fixture_fini(config *cfg)
{
	g_ptr_array_unref(cfg->staff.addresses);
	g_ptr_array_unref(cfg->staff.domains);
}

static mail_msg *
msg_from(const char *from, const char *const *ar)
{
	g_autofree char *raw = NULL;
	GString *s = g_string_new(NULL);
	mail_msg *m;
	GError *e = NULL;

	for (; ar != NULL && *ar != NULL; ar++)
		g_string_append_printf(s, "Authentication-Results: %s\n", *ar);
	g_string_append_printf(s, "From: Someone <%s>\nTo: members@example.test\n"
	    "Subject: hi\nMessage-ID: <x@y.test>\n\nbody\n", from);
	raw = g_string_free(s, FALSE);
	m = mail_parse_data(raw, strlen(raw), NULL, &e);
	g_assert_no_error(e);
	g_assert_nonnull(m);
	return m;
}

static void
test_listed(void)
{
	config cfg;

	fixture_init(&cfg, TRUE);
	g_assert_true(staff_address_listed(&cfg.staff, "anna@example.test"));
	g_assert_true(staff_address_listed(&cfg.staff, "Anna@EXAMPLE.TEST"));
	g_assert_true(staff_address_listed(&cfg.staff, "boss@partner.test"));
	g_assert_false(staff_address_listed(&cfg.staff, "other@partner.test"));
	g_assert_false(staff_address_listed(&cfg.staff, "anna@sub.example.test"));
	g_assert_false(staff_address_listed(&cfg.staff, "anna@example.test.evil"));
	g_assert_false(staff_address_listed(&cfg.staff, "no-at-sign"));
	g_assert_false(staff_address_listed(&cfg.staff, NULL));
	fixture_fini(&cfg);
}

static void
test_trusted(void)
{
	static const char *const pass[] = { TRUSTED "; dkim=pass header.d=example.test", NULL };
	static const char *const fail[] = { TRUSTED "; dkim=fail header.d=example.test", NULL };
	static const char *const other[] = { "evil.test; dkim=pass header.d=example.test", NULL };
	/* the real header on top says fail; a forged pass further down must not count */
	static const char *const forged_below[] = {
		TRUSTED "; spf=fail smtp.mailfrom=anna@example.test",
		TRUSTED "; dkim=pass header.d=example.test", NULL };
	config cfg;
	const char *why;
	struct {
		const char *from;
		const char *const *ar;
		gboolean require;
		gboolean want;
	} rows[] = {
		{ "anna@example.test", pass, TRUE, TRUE },
		{ "anna@example.test", NULL, TRUE, FALSE },
		{ "anna@example.test", fail, TRUE, FALSE },
		{ "anna@example.test", other, TRUE, FALSE },
		{ "anna@example.test", forged_below, TRUE, FALSE },
		{ "anna@example.test", NULL, FALSE, TRUE },
		{ "mallory@evil.test", pass, TRUE, FALSE },
		{ "mallory@evil.test", NULL, FALSE, FALSE },
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		mail_msg *m = msg_from(rows[i].from, rows[i].ar);

		fixture_init(&cfg, rows[i].require);
		why = NULL;
		if (staff_is_trusted(&cfg, m, &why) != rows[i].want)
			g_error("row %u (%s): %s", i, rows[i].from, why);
		g_assert_nonnull(why);
		fixture_fini(&cfg);
		mail_msg_free(m);
	}
}

static void
test_role(void)
{
	static const char *const pass[] = { TRUSTED "; dkim=pass header.d=example.test", NULL };
	g_autoptr(GPtrArray) parts = g_ptr_array_new();
	store_case c = { .member = "alice@member.test" };
	config cfg;
	struct {
		const char *from;
		const char *const *ar;
		staff_role want;
	} rows[] = {
		{ "alice@member.test", NULL, ROLE_MEMBER },
		{ "ALICE@member.test", NULL, ROLE_MEMBER },
		{ "anna@example.test", pass, ROLE_STAFF },
		{ "anna@example.test", NULL, ROLE_UNKNOWN },	/* forged staff From */
		{ "carol@member.test", NULL, ROLE_PARTICIPANT },
		{ "mallory@evil.test", NULL, ROLE_UNKNOWN },
	};
	guint i;

	g_ptr_array_add(parts, "carol@member.test");
	fixture_init(&cfg, TRUE);
	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		mail_msg *m = msg_from(rows[i].from, rows[i].ar);
		const char *why = NULL;

		g_assert_cmpint(staff_role_of(&cfg, &c, parts, m, &why), ==, rows[i].want);
		g_assert_nonnull(why);
		mail_msg_free(m);
	}
	g_assert_cmpint(staff_role_of(&cfg, NULL, NULL, NULL, NULL), ==, ROLE_UNKNOWN);
	g_assert_cmpstr(staff_role_name(ROLE_STAFF), ==, "staff");
	g_assert_cmpstr(staff_role_name(ROLE_PARTICIPANT), ==, "participant");
	g_assert_cmpstr(staff_role_name(ROLE_MEMBER), ==, "member");
	g_assert_cmpstr(staff_role_name(ROLE_UNKNOWN), ==, "unknown");
	fixture_fini(&cfg);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/staff/auth-results/table", test_auth_results);
	g_test_add_func("/staff/auth-results/hostile", test_auth_results_hostile);
	g_test_add_func("/staff/listed", test_listed);
	g_test_add_func("/staff/trusted", test_trusted);
	g_test_add_func("/staff/role", test_role);
	return g_test_run();
}
