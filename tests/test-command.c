/*
 * test-command.c - staff commands: which lines are commands, their
 * arguments, errors and contradictions, what is left to relay, and the
 * transcript sent back when something failed.
 */
#include <string.h>

#include "command.h"

static const struct {
	const char *text;
	const char *kinds;	/* one letter per command: n r o t e p (team = e) */
	int errors;
	gboolean note;
	const char *body;
	const char *args;	/* "|"-joined args of the first command, or NULL */
} rows[] = {
	{ "Thanks, we fixed it.", "", 0, FALSE, "Thanks, we fixed it.", NULL },
	{ "#note\ncalled the member", "n", 0, TRUE, "called the member", NULL },
	{ "#note called the member\nmore", "n", 0, TRUE, "called the member\nmore", NULL },
	{ "#NOTE", "n", 0, TRUE, "", NULL },
	{ "\n\n#resolve\nAll done, thanks!", "r", 0, FALSE, "All done, thanks!", NULL },
	{ "#reopen\n", "o", 0, FALSE, "", NULL },
	{ "#type Royalties / Missing Royalties\nHi", "t", 0, FALSE, "Hi",
	  "Royalties|Missing Royalties" },
	{ "#type Account Update/Contact Information/ Address ", "t", 0, FALSE, "",
	  "Account Update|Contact Information|Address" },
	{ "#type Support Request", "t", 0, FALSE, "", "Support Request" },
	{ "#team distribution\n#priority HIGH\n\nText", "ep", 0, FALSE, "Text", "distribution" },
	{ "  #priority: urgent", "p", 0, FALSE, "", "urgent" },
	/* commands only at the top */
	{ "Hello\n#resolve", "", 0, FALSE, "Hello\n#resolve", NULL },
	{ "# heading\n#resolve", "", 0, FALSE, "# heading\n#resolve", NULL },
	{ "#1 on my list", "", 0, FALSE, "#1 on my list", NULL },
	/* errors */
	{ "#resolv\nHi", "n", 1, FALSE, "Hi", NULL },
	{ "#resolve now", "r", 1, FALSE, "", NULL },
	{ "#type", "t", 1, FALSE, "", NULL },
	{ "#type A / / C", "t", 1, FALSE, "", NULL },
	{ "#type A / B / C / D", "t", 1, FALSE, "", NULL },
	{ "#team", "e", 1, FALSE, "", NULL },
	{ "#priority whenever", "p", 1, FALSE, "", NULL },
	{ "#resolve\n#reopen", "ro", 1, FALSE, "", NULL },
	{ "#team a\n#team b", "ee", 1, FALSE, "", "a" },
	{ "#resolve.\nx", "n", 1, FALSE, "x", NULL },
	{ "", "", 0, FALSE, "", NULL },
	{ NULL, "", 0, FALSE, "", NULL },
};

static char
kind_letter(command_kind k)
{
	return "nrotep"[k];
}

static void
test_table(void)
{
	guint i, j;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(command_set) cs = command_parse(rows[i].text);
		GString *kinds = g_string_new(NULL);

		for (j = 0; j < cs->commands->len; j++) {
			const command *c = g_ptr_array_index(cs->commands, j);

			g_string_append_c(kinds, kind_letter(c->kind));
		}
		if (strcmp(kinds->str, rows[i].kinds) != 0 || cs->errors != rows[i].errors ||
		    cs->note != rows[i].note || strcmp(cs->body, rows[i].body) != 0)
			g_error("row %u (%s): kinds %s errors %d note %d body \"%s\"", i,
			    rows[i].text ? rows[i].text : "(null)", kinds->str, cs->errors,
			    cs->note, cs->body);
		if (rows[i].args != NULL) {
			const command *c = g_ptr_array_index(cs->commands, 0);
			GString *a = g_string_new(NULL);

			for (j = 0; j < 3 && c->args[j] != NULL; j++)
				g_string_append_printf(a, "%s%s", j ? "|" : "", c->args[j]);
			g_assert_cmpstr(a->str, ==, rows[i].args);
			g_string_free(a, TRUE);
		}
		g_string_free(kinds, TRUE);
	}
}

static void
test_find_and_fail(void)
{
	g_autoptr(command_set) cs = command_parse("#type Nope / Never\n#resolve\nDone.");
	g_autofree char *ok_text = NULL, *bad_text = NULL;
	command *t;

	g_assert_cmpint(cs->errors, ==, 0);
	g_assert_nonnull(command_find(cs, CMD_RESOLVE));
	g_assert_null(command_find(cs, CMD_TEAM));
	ok_text = command_transcript(cs);
	g_assert_nonnull(strstr(ok_text, "> #resolve\n  -> ok\n"));
	g_assert_null(strstr(ok_text, "failed"));

	/* the caller finds the type unknown in the rules */
	t = (command *)command_find(cs, CMD_TYPE);
	command_fail(cs, t, "unknown case type \"%s\"", t->args[0]);
	command_fail(cs, t, "counted once");
	g_assert_cmpint(cs->errors, ==, 1);
	bad_text = command_transcript(cs);
	g_assert_nonnull(strstr(bad_text, "> #type Nope / Never\n  -> error: counted once\n"));
	g_assert_nonnull(strstr(bad_text, "> #resolve\n  -> not done\n"));
	g_assert_nonnull(strstr(bad_text, "nothing was sent to the member"));
	g_assert_cmpstr(command_name(CMD_PRIORITY), ==, "#priority");
}

static void
test_hostile(void)
{
	GString *s = g_string_new(NULL);
	int i;

	for (i = 0; i < 2000; i++)
		g_string_append(s, "#typ\xff\xfe e ///// \t:\r\n");
	g_string_append(s, "#type ");
	for (i = 0; i < 5000; i++)
		g_string_append_c(s, 'x');
	{
		g_autoptr(command_set) cs = command_parse(s->str);
		g_autofree char *t = command_transcript(cs);

		const command *ty;

		/* every "#typ..." line is unknown; the long #type is cut, not refused */
		g_assert_cmpint(cs->errors, ==, 2000);
		ty = command_find(cs, CMD_TYPE);
		g_assert_nonnull(ty);
		g_assert_cmpuint(strlen(ty->args[0]), <, 500);
		g_assert_nonnull(t);
	}
	g_string_free(s, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/command/table", test_table);
	g_test_add_func("/command/find-and-fail", test_find_and_fail);
	g_test_add_func("/command/hostile", test_hostile);
	return g_test_run();
}
