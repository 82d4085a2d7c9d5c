/*
 * test-config.c - casegate.conf loading: a good file, and for each kind
 * of mistake the exact "file:line: message" an admin gets.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cg.h"
#include "config.h"

static char *dir;

static char *
write_file(const char *name, const char *text, int mode)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(chmod(path, mode), ==, 0);
	return path;
}

#define GOOD_IMAP \
	"imap = { host = \"localhost\"; port = 993; tls = \"implicit\";\n" \
	"  user = \"members\"; password_file = \"pw\"; };\n"
#define GOOD_REST \
	"smtp = { host = \"localhost\"; port = 25; tls = \"none\"; };\n" \
	"database = \"cases.db\";\nspool = \"spool\";\ntemplates = \"tpl\";\n"

static void
test_good(void)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *path = write_file("good.conf",
	    "gateway = { address = \"members@example.org\"; name = \"Member Services\"; };\n"
	    GOOD_IMAP GOOD_REST, 0644);
	g_autoptr(config) cfg = config_load(path, errors);

	if (errors->len)
		g_printerr("%s\n", (char *)g_ptr_array_index(errors, 0));
	g_assert_nonnull(cfg);
	g_assert_cmpstr(cfg->address, ==, "members@example.org");
	g_assert_cmpstr(cfg->domain, ==, "example.org");	/* from the address */
	imap_account *a = g_ptr_array_index(cfg->mailboxes, 0);

	g_assert_cmpuint(cfg->mailboxes->len, ==, 1);
	g_assert_cmpstr(a->ep.password, ==, "s3cret");
	g_assert_cmpstr(a->folder, ==, "INBOX");
	g_assert_cmpstr(a->processed_folder, ==, "Processed");
	g_assert_cmpint(a->poll_interval, ==, 60);
	g_assert_cmpstr(a->address, ==, "members@example.org");	/* the gateway's */
	g_assert_cmpint(cfg->smtp.tls, ==, TLS_NONE);
	g_assert_true(g_str_has_prefix(cfg->database, dir));	/* relative to the file */
	g_assert_cmpint(cfg->case_digits, ==, 6);
	g_assert_cmpint(cfg->smtp_connections, ==, 2);	/* parallel delivery by default */
}

/* smtp.connections: 1..8 as written; anything else is a file:line error. */
static void
test_smtp_connections(void)
{
	static const struct {
		const char *value;
		int want;	/* 0: an error */
		const char *error;
	} rows[] = {
		{ "1", 1, NULL },
		{ "8", 8, NULL },
		{ "3", 3, NULL },
		{ "0", 0, ":4: \"smtp.connections\" is 0; it must be between 1 and 8" },
		{ "9", 0, ":4: \"smtp.connections\" is 9; it must be between 1 and 8" },
		{ "-1", 0, ":4: \"smtp.connections\" is -1; it must be between 1 and 8" },
		{ "\"2\"", 0, ":4: \"smtp.connections\" must be an integer" },
		{ "2.5", 0, ":4: \"smtp.connections\" must be an integer" },
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
		g_autofree char *name = g_strdup_printf("conns%u.conf", i);
		g_autofree char *text = g_strdup_printf(
		    "gateway = { address = \"m@example.org\"; };\n" GOOD_IMAP
		    "smtp = { host = \"localhost\"; tls = \"none\"; connections = %s; };\n"
		    "database = \"cases.db\";\nspool = \"spool\";\ntemplates = \"tpl\";\n",
		    rows[i].value);
		g_autofree char *path = write_file(name, text, 0644);
		g_autoptr(config) cfg = config_load(path, errors);

		if (rows[i].want != 0) {
			if (errors->len > 0)
				g_printerr("row %u: %s\n", i, (char *)g_ptr_array_index(errors, 0));
			g_assert_nonnull(cfg);
			g_assert_cmpint(cfg->smtp_connections, ==, rows[i].want);
		} else {
			g_autofree char *want = g_strconcat(path, rows[i].error, NULL);

			g_assert_null(cfg);
			g_assert_cmpuint(errors->len, ==, 1);
			if (!g_str_has_prefix(g_ptr_array_index(errors, 0), want))
				g_printerr("row %u: got  %s\n        want %s\n", i,
				    (char *)g_ptr_array_index(errors, 0), want);
			g_assert_true(g_str_has_prefix(g_ptr_array_index(errors, 0), want));
		}
	}
}

static void
test_mailboxes(void)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *path = write_file("two.conf",
	    "gateway = { address = \"members@example.org\"; };\n"
	    "mailboxes = (\n"
	    "  { name = \"members\"; host = \"localhost\"; user = \"m\"; password_file = \"pw\"; },\n"
	    "  { name = \"royalties\"; address = \"royalties@example.org\"; host = \"localhost\";\n"
	    "    user = \"r\"; password_file = \"pw\"; folder = \"Cases\";\n"
	    "    default = { type = \"Royalties\"; team = \"distribution\"; }; }\n"
	    ");\n" GOOD_REST, 0644);
	g_autoptr(config) cfg = config_load(path, errors);
	imap_account *r;

	if (errors->len)
		g_printerr("%s\n", (char *)g_ptr_array_index(errors, 0));
	g_assert_nonnull(cfg);
	g_assert_cmpuint(cfg->mailboxes->len, ==, 2);
	r = g_ptr_array_index(cfg->mailboxes, 1);
	g_assert_cmpstr(r->name, ==, "royalties");
	g_assert_cmpstr(r->address, ==, "royalties@example.org");
	g_assert_cmpstr(r->folder, ==, "Cases");
	g_assert_cmpstr(r->default_type, ==, "Royalties");
	g_assert_cmpstr(r->default_team, ==, "distribution");
	g_assert_cmpstr(((imap_account *)g_ptr_array_index(cfg->mailboxes, 0))->address, ==,
	    "members@example.org");
}

static void
test_errors(void)
{
	static const struct {
		const char *text;
		const char *want;	/* every expected error, "|" separated */
	} rows[] = {
		{ "gateway = { address = \"m@example.org\"; adress = \"x\"; };\n" GOOD_IMAP GOOD_REST,
		  ":1: unknown setting \"gateway.adress\"" },
		{ "gateway = { address = \"m@example.org\"; };\n"
		  "imap = { host = \"localhost\"; port = \"993\";\n user = \"members\"; password_file = \"pw\"; };\n"
		  GOOD_REST,
		  ":2: \"imap.port\" must be an integer" },
		{ "gateway = { address = \"m@example.org\"; };\n" GOOD_REST,
		  ":1: missing required setting \"imap\" (or \"mailboxes\")" },
		{ "gateway = { address = \"m@example.org\"; };\n"
		  "mailboxes = ( { name = \"a\"; host = \"h\"; user = \"u\"; password_file = \"pw\"; },\n"
		  "  { name = \"a\"; host = \"h\"; user = \"u\"; password_file = \"pw\";\n"
		  "    default = { tema = \"x\"; }; } );\n" GOOD_REST,
		  ":4: unknown setting \"mailboxes.[1].default.tema\"|"
		  ":3: two mailboxes are named \"a\"; names must differ" },
		{ "gateway = { address = \"not an address\"; };\n" GOOD_IMAP GOOD_REST,
		  ":1: \"gateway.address\" \"not an address\" is not a valid mail address" },
		{ "gateway = { address = \"m@example.org\"; };\n"
		  "imap = { host = \"localhost\"; tls = \"none\";\n user = \"members\"; password_file = \"pw\"; };\n"
		  GOOD_REST,
		  ":2: \"imap.tls\" must be \"implicit\" or \"starttls\" (plaintext IMAP is not supported)" },
		{ "gateway = { address = \"m@example.org\"; };\n"
		  "imap = { host = \"localhost\"; port = 70000;\n user = \"members\"; password_file = \"pw\"; };\n"
		  GOOD_REST,
		  ":2: \"imap.port\" is 70000; it must be between 1 and 65535" },
		{ "gateway = { address = \"m@example.org\"; };\n"
		  "imap = { host = \"localhost\";\n user = \"members\"; password_file = \"loose\"; };\n"
		  GOOD_REST,
		  ":3: \"imap.password_file\": " "%DIR%/loose is readable by group or others (mode 0644)" },
		{ "gateway = { address = \"m@example.org\"; };\n"
		  "imap = { host = \"localhost\";\n user = \"members\"; password_file = \"pw\"; folder = \"In\\r\\nbox\"; };\n"
		  GOOD_REST,
		  ":3: \"imap.folder\" must be a folder name without spaces or control characters" },
		{ "gateway = { address = \"m@example.org\"; };\n" GOOD_IMAP
		  "smtp = { host = \"mail.example.org\"; tls = \"none\"; };\n"
		  "database = \"cases.db\";\nspool = \"spool\";\ntemplates = \"tpl\";\n",
		  ":4: \"smtp.tls = none\" is only allowed for a relay on loopback" },
		{ "gateway = { address = \"m@example.org\"; };\n" GOOD_IMAP GOOD_REST "templates2 = 1;\n",
		  ":8: unknown setting \"templates2\"" },
		/* two mistakes: both reported */
		{ "gateway = { address = \"m@example.org\"; case_digits = 40; };\n" GOOD_IMAP
		  "smtp = { host = \"localhost\"; tls = \"smtps\"; };\n"
		  "database = \"cases.db\";\nspool = \"spool\";\ntemplates = \"tpl\";\n",
		  ":1: \"gateway.case_digits\" is 40; it must be between 1 and 12|"
		  ":4: \"smtp.tls\" must be \"implicit\" or \"starttls\" or \"none\"" },
		{ "gateway = {\n address = ;\n};\n",
		  ":2: syntax error" },
		{ "gateway = { address = \"m@example.org\"; };\n" GOOD_IMAP GOOD_REST
		  "rules = \"missing.rules\";\n",
		  ":8: rules file %DIR%/missing.rules: No such file or directory" },
	};
	guint i;

	for (i = 0; i < G_N_ELEMENTS(rows); i++) {
		g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
		g_autofree char *name = g_strdup_printf("bad%u.conf", i);
		g_autofree char *path = write_file(name, rows[i].text, 0644);
		g_autoptr(config) cfg = config_load(path, errors);
		g_auto(GStrv) wants = g_strsplit(rows[i].want, "|", 0);
		guint j;

		g_assert_null(cfg);
		if (errors->len != g_strv_length(wants))
			for (j = 0; j < errors->len; j++)
				g_printerr("row %u: %s\n", i, (char *)g_ptr_array_index(errors, j));
		g_assert_cmpuint(errors->len, ==, g_strv_length(wants));
		for (j = 0; wants[j] != NULL; j++) {
			g_autoptr(GString) want = g_string_new(wants[j]);
			g_autofree char *full = NULL;

			g_string_replace(want, "%DIR%", dir, 0);
			full = g_strconcat(path, want->str, NULL);
			if (!g_str_has_prefix(g_ptr_array_index(errors, j), full))
				g_printerr("row %u: got  %s\n        want %s\n", i,
				    (char *)g_ptr_array_index(errors, j), full);
			g_assert_true(g_str_has_prefix(g_ptr_array_index(errors, j), full));
		}
	}
}

static void
test_missing_file(void)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *path = g_build_filename(dir, "nope.conf", NULL);
	g_autoptr(config) cfg = config_load(path, errors);
	g_autofree char *want = g_strdup_printf("%s: cannot open: No such file or directory", path);

	g_assert_null(cfg);
	g_assert_cmpuint(errors->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(errors, 0), ==, want);
}

static void
test_secret(void)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *empty = write_file("empty", "\n", 0600);
	g_autofree char *two = write_file("two", "a\nb\n", 0600);
	g_autofree char *pw = g_build_filename(dir, "pw", NULL);
	g_autofree char *s = config_read_secret(pw, &err);

	g_assert_cmpstr(s, ==, "s3cret");
	g_assert_null(config_read_secret(empty, &err) ? (gpointer)1 : NULL);
	g_clear_error(&err);
	g_assert_null(config_read_secret(two, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
	g_clear_error(&err);
	g_assert_null(config_read_secret("/nonexistent/pw", &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
	g_clear_error(&err);

	/* systemd credentials */
	g_unsetenv("CREDENTIALS_DIRECTORY");
	g_assert_null(config_read_secret("credential:pw", &err));
	g_assert_nonnull(strstr(err->message, "CREDENTIALS_DIRECTORY is not set"));
	g_clear_error(&err);
	g_setenv("CREDENTIALS_DIRECTORY", dir, TRUE);
	{
		g_autofree char *c = config_read_secret("credential:pw", &err);

		g_assert_no_error(err);
		g_assert_cmpstr(c, ==, "s3cret");
	}
	g_assert_null(config_read_secret("credential:../pw", &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
	g_clear_error(&err);
	g_assert_null(config_read_secret("credential:loose", &err));	/* 0644: refused */
	g_assert_nonnull(strstr(err->message, "readable by group or others"));
	g_unsetenv("CREDENTIALS_DIRECTORY");
}

int
main(int argc, char **argv)
{
	g_autofree char *tpl = NULL, *ack = NULL, *pw = NULL, *loose = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	dir = g_dir_make_tmp("cgconf.XXXXXX", NULL);
	tpl = g_build_filename(dir, "tpl", NULL);
	mkdir(tpl, 0755);
	ack = write_file("tpl/ack.txt", "Case {{case_id}}\n", 0644);
	pw = write_file("pw", "s3cret\n", 0600);
	loose = write_file("loose", "s3cret\n", 0644);
	g_test_add_func("/config/good", test_good);
	g_test_add_func("/config/smtp-connections", test_smtp_connections);
	g_test_add_func("/config/errors", test_errors);
	g_test_add_func("/config/mailboxes", test_mailboxes);
	g_test_add_func("/config/missing-file", test_missing_file);
	g_test_add_func("/config/secret", test_secret);
	rc = g_test_run();
	if (rc == 0) {
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

		if (system(cmd) != 0)
			g_printerr("could not remove %s\n", dir);
	}
	g_free(dir);
	return rc;
}
