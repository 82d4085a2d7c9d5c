/* test-thread.c - subject tokens, reply prefixes and Message-IDs. */
#include <string.h>

#include "cg.h"
#include "config.h"
#include "thread.h"

static config cfg = {
	.domain = "example.test",
	.case_prefix = "CASE-",
	.case_digits = 6,
};

static void
test_token(void)
{
	static const struct { const char *subject; gint64 want; } rows[] = {
		{ "Re: Missing royalties [CASE-000123]", 123 },
		{ "[case-000042] hello", 42 },
		{ "AW: WG: [CASE-7]", 7 },
		{ "no token here", 0 },
		{ "[CASE-]", 0 },
		{ "[CASE-000000]", 0 },
		{ "[CASE-12x]", 0 },
		{ "[CASE-0000000000000000001]", 0 },	/* more than 18 digits */
		{ "[TICKET-5] [CASE-9]", 9 },
		{ "[CASE-5", 0 },
		{ "", 0 },
		{ NULL, 0 },
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++)
		g_assert_cmpint(thread_subject_token(&cfg, rows[i].subject), ==, rows[i].want);
}

static void
test_subject(void)
{
	static const struct { const char *in; gboolean reply; const char *want; } rows[] = {
		{ "Missing royalties", TRUE, "Re: Missing royalties [CASE-000001]" },
		{ "Re: Missing royalties", TRUE, "Re: Missing royalties [CASE-000001]" },
		{ "RE: AW: SV: VS: WG: Fwd: Fw: TR: x", TRUE, "Re: x [CASE-000001]" },
		{ "Re[2]: Re(3): x", FALSE, "x [CASE-000001]" },
		{ "Re: x [CASE-000001]", TRUE, "Re: x [CASE-000001]" },
		{ "[CASE-000001] Re: x", TRUE, "Re: x [CASE-000001]" },
		{ "Réf : Relevé", TRUE, "Re: Relevé [CASE-000001]" },
		{ "", TRUE, "Re: (no subject) [CASE-000001]" },
		{ NULL, FALSE, "(no subject) [CASE-000001]" },
		{ "Regarding tax", TRUE, "Re: Regarding tax [CASE-000001]" },
		{ "  lots   of\tspace  ", FALSE, "lots of space [CASE-000001]" },
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autofree char *got = thread_subject(&cfg, rows[i].in, "CASE-000001",
		    rows[i].reply);

		g_assert_cmpstr(got, ==, rows[i].want);
	}
}

static void
test_message_id(void)
{
	g_autofree char *a = thread_message_id(&cfg, "CASE-000123");
	g_autofree char *b = thread_message_id(&cfg, "CASE-000123");
	const char *p;

	g_assert_true(g_str_has_prefix(a, "CASE-000123."));
	g_assert_true(g_str_has_suffix(a, "@example.test"));
	g_assert_cmpuint(strlen(a), ==, strlen("CASE-000123.") + 32 + strlen("@example.test"));
	for (p = a + strlen("CASE-000123."); *p != '@'; p++)
		g_assert_true(g_ascii_isxdigit(*p));
	g_assert_cmpstr(a, !=, b);
}

static void
test_case_id(void)
{
	g_autofree char *id = config_case_id(&cfg, 123);

	g_assert_cmpstr(id, ==, "CASE-000123");
	g_assert_cmpint(config_case_number(&cfg, "CASE-000123"), ==, 123);
	g_assert_cmpint(config_case_number(&cfg, "case-9"), ==, 9);
	g_assert_cmpint(config_case_number(&cfg, "CASE-"), ==, 0);
	g_assert_cmpint(config_case_number(&cfg, "CASE-1a"), ==, 0);
	g_assert_cmpint(config_case_number(&cfg, "TICKET-1"), ==, 0);
	g_assert_cmpint(config_case_number(&cfg, NULL), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/thread/token", test_token);
	g_test_add_func("/thread/subject", test_subject);
	g_test_add_func("/thread/message-id", test_message_id);
	g_test_add_func("/thread/case-id", test_case_id);
	return g_test_run();
}
