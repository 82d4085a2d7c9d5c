/*
 * casectl - the staff and admin tool: read cases from the database,
 * check and dry-run the rules.  Readable tables for people, stable JSON
 * (--json) for scripts.
 *
 * Staff work a case from here too (resolve, reopen, note, reply,
 * set-type, assign): each change is one transaction that also records
 * an event naming who did it, and mail to the member goes through the
 * same outbox as the daemon's, so casegated delivers it with retries.
 * Reports (export, outbox, stats, status) only read.
 *
 * This file holds main, the command table (the usage and --help are
 * printed from it) and the helpers every command shares (include/ctl.h);
 * the commands are in src/ctl_*.c by concern.
 *
 * Exit status: 0 success, 1 no such case (or outbox row), 64 usage, 65
 * bad input (unknown type or team, empty reply), 66 database missing or
 * unreadable, 70 database error, 75 database busy (try again), 78
 * configuration or rules errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "config.h"
#include "ctl.h"
#include "log.h"
#include "rules.h"
#include "store.h"

/* rules check|dump|test: rules_cmd.c does the work; this finds the file. */
static int
cmd_rules(ctl *c, int argc, char **argv)
{
	const char *path = NULL;
	gboolean json = FALSE;
	int rc, first = 2;

	if (argc < 2)
		ctl_usage();
	if (strcmp(argv[1], "check") == 0 || strcmp(argv[1], "dump") == 0) {
		if (argc > 3)
			ctl_usage();
		if (argc == 3)
			return argv[1][0] == 'c' ? rules_cmd_check(argv[2]) :
			    rules_cmd_dump(argv[2]);
	} else if (strcmp(argv[1], "test") == 0) {
		if (argc > 2 && strcmp(argv[2], "--json") == 0) {
			json = TRUE;
			first = 3;
		}
		if (argc <= first)
			ctl_usage();
	} else
		ctl_usage();
	if ((rc = ctl_load_config(c)) != 0)
		return rc;
	path = c->cfg->rules;
	if (path == NULL) {
		fprintf(stderr, "casectl: %s sets no rules file\n", c->conf_path);
		return CG_EX_CONFIG;
	}
	if (strcmp(argv[1], "check") == 0)
		return rules_cmd_check(path);
	if (strcmp(argv[1], "dump") == 0)
		return rules_cmd_dump(path);
	return rules_cmd_test(path, argc - first, argv + first, json);
}

/*
 * Every command: casectl NAME runs run.  synopsis is NAME's part of the
 * usage, one line per form ("\t" starts a continuation line).
 */
static const struct {
	const char	*name;
	int		(*run)(ctl *c, int argc, char **argv);
	const char	*help;		/* one line, for --help */
	const char	*synopsis;
} commands[] = {
	{ "list", ctl_cmd_list, "cases as a table or JSON, filtered",
	    "[--json] [--status S] [--type T] [--team T]\n"
	    "\t[--member ADDR] [--since YYYY-MM-DD] [--limit N]" },
	{ "show", ctl_cmd_show, "one case: fields, messages, events, outbox",
	    "[--json] CASE-ID" },
	{ "rules", cmd_rules, "check, dump or dry-run the rules file",
	    "check|dump [FILE]\n"
	    "test [--json] MESSAGE.eml ..." },
	{ "search", ctl_cmd_search, "cases whose mail holds every word",
	    "[--json] TEXT ..." },
	{ "resolve", ctl_cmd_resolve, "resolve a case and tell the member",
	    "[--no-notice] CASE-ID" },
	{ "reopen", ctl_cmd_reopen, "make a case Active again",
	    "CASE-ID" },
	{ "note", ctl_cmd_note, "add an internal note to a case",
	    "CASE-ID TEXT ..." },
	{ "reply", ctl_cmd_reply, "queue a reply to the member",
	    "CASE-ID [--from-name NAME] [--file F | TEXT ...]" },
	{ "set-type", ctl_cmd_set_type, "change a case's type",
	    "CASE-ID \"Type / Sub type [/ Update type]\"" },
	{ "assign", ctl_cmd_assign, "hand a case to a team",
	    "CASE-ID TEAM" },
	{ "export", ctl_cmd_export, "every case with its fields, as JSON or CSV",
	    "--format json|csv [--status S] [--type T]\n"
	    "\t[--team T] [--member ADDR] [--since YYYY-MM-DD]" },
	{ "outbox", ctl_cmd_outbox, "outgoing mail; queue failed mail again",
	    "list [--json] [--state queued|sent|failed]\n"
	    "retry ID|--all-failed" },
	{ "stats", ctl_cmd_stats, "cases by status, type and team; reply time; backlog",
	    "[--json]" },
	{ "status", ctl_cmd_status, "what the daemon reported, the outbox, recent errors",
	    "[--json]" },
	{ "quarantine", ctl_cmd_quarantine, "mail held back: list, show, release, delete",
	    "list [--json] [--all]\n"
	    "show|release|delete ID" },
	{ "members", ctl_cmd_members, "the member directory: import, list, show",
	    "import [--replace] FILE.csv\n"
	    "list [--json]\n"
	    "show [--json] NUMBER|ADDRESS" },
};

static void
print_usage(FILE *f)
{
	const char *lead = "usage:";
	guint i, j;

	for (i = 0; i < G_N_ELEMENTS(commands); i++) {
		g_auto(GStrv) forms = g_strsplit(commands[i].synopsis, "\n", 0);

		for (j = 0; forms[j] != NULL; j++) {
			if (forms[j][0] == '\t') {
				fprintf(f, "%31s%s\n", "", forms[j] + 1);
				continue;
			}
			fprintf(f, "%6s casectl [-f config] %s %s\n", lead, commands[i].name,
			    forms[j]);
			lead = "";
		}
	}
}

void
ctl_usage(void)
{
	print_usage(stderr);
	exit(CG_EX_USAGE);
}

/* casectl -h or --help: asked for, so to stdout, and not an error. */
static void G_GNUC_NORETURN
help(void)
{
	guint i;

	print_usage(stdout);
	printf("\n  -f config   the configuration file (default $CASEGATE_CONF, else\n"
	    "              /etc/casegate/casegate.conf)\n"
	    "  -v          more log output\n\ncommands:\n");
	for (i = 0; i < G_N_ELEMENTS(commands); i++)
		printf("  %-11s %s\n", commands[i].name, commands[i].help);
	printf("\nSee casectl(1).\n");
	exit(0);
}

int
ctl_load_config(ctl *c)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

	if (c->cfg != NULL)
		return 0;
	c->cfg = config_load_flags(c->conf_path, CONFIG_SKIP_SECRETS, errors);
	if (c->cfg == NULL) {
		ctl_print_errors(errors);
		return CG_EX_CONFIG;
	}
	return 0;
}

int
ctl_open_store(ctl *c)
{
	g_autoptr(GError) err = NULL;
	int rc;

	if ((rc = ctl_load_config(c)) != 0)
		return rc;
	c->st = store_open_readonly(c->cfg->database, &err);
	if (c->st == NULL) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_NOINPUT;
	}
	return 0;
}

char *
ctl_fmt_time(gint64 t)
{
	g_autoptr(GDateTime) dt = NULL;

	if (t <= 0)
		return g_strdup("-");
	dt = g_date_time_new_from_unix_local(t);
	return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M") : g_strdup("-");
}

/* Display characters, not bytes: subjects and names are UTF-8. */
char *
ctl_clip(const char *s, glong width)
{
	if (s == NULL)
		return g_strdup("-");
	if (g_utf8_strlen(s, -1) <= width)
		return g_strdup(s);
	return g_strdup_printf("%.*s...", (int)(g_utf8_offset_to_pointer(s, width - 3) - s), s);
}

char *
ctl_type_line(const char *type, const char *sub, const char *upd)
{
	if (type == NULL)
		return g_strdup("-");
	return g_strdup_printf("%s%s%s%s%s", type, sub ? " / " : "", sub ? sub : "",
	    upd ? " / " : "", upd ? upd : "");
}

gboolean
ctl_json_opts(int argc, char **argv, gboolean *json_r)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*json_r = FALSE;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'j')
			return FALSE;
		*json_r = TRUE;
	}
	return TRUE;
}

/*
 * Who did it, for the audit trail: the login name, and the sudo user
 * behind it when there is one (casectl runs as the daemon's user).
 */
char *
ctl_actor(void)
{
	const char *sudo = getenv("SUDO_USER");

	if (sudo != NULL && *sudo != '\0' && strlen(sudo) < 64 && cg_protocol_safe(sudo, 64))
		return g_strdup_printf("%s (sudo) via casectl", sudo);
	return g_strdup_printf("%s via casectl", g_get_user_name());
}

/* Busy is worth a retry; anything else is not. */
int
ctl_store_failed(const GError *err)
{
	fprintf(stderr, "casectl: %s\n", err != NULL ? err->message : "database error");
	if (err != NULL && err->code == CG_ERROR_TEMP) {
		fprintf(stderr, "casectl: nothing was changed; try again\n");
		return CG_EX_TEMPFAIL;
	}
	return CG_EX_SOFTWARE;
}

/*
 * Open the database read-write, never creating it: a missing file means
 * a wrong config or a daemon that never ran, and an empty new database
 * would hide that.
 */
int
ctl_open_store_rw(ctl *c)
{
	g_autoptr(GError) err = NULL;
	int rc;

	if ((rc = ctl_load_config(c)) != 0)
		return rc;
	if (!g_file_test(c->cfg->database, G_FILE_TEST_IS_REGULAR)) {
		fprintf(stderr, "casectl: database %s does not exist (is database set right in "
		    "%s? casegated creates it on its first start)\n", c->cfg->database,
		    c->conf_path);
		return CG_EX_NOINPUT;
	}
	c->st = store_open(c->cfg->database, &err);
	if (c->st == NULL) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_NOINPUT;
	}
	return 0;
}

int
ctl_finish(ctl *c, gboolean ok, GError *err)
{
	g_autoptr(GError) cerr = NULL;

	if (!ok) {
		store_rollback(c->st);
		if (err != NULL && err->code == CG_ERROR_CONFIG) {
			fprintf(stderr, "casectl: %s\n", err->message);
			return CG_EX_CONFIG;
		}
		return ctl_store_failed(err);
	}
	if (!store_commit(c->st, &cerr))
		return ctl_store_failed(cerr);
	return 0;
}

/* The rules the daemon uses, for validating taxonomy and teams. */
int
ctl_rules(ctl *c, rules **r_r)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

	if (c->cfg->rules == NULL) {
		fprintf(stderr, "casectl: %s sets no rules file, so there is no taxonomy or team "
		    "to check against\n", c->conf_path);
		return CG_EX_CONFIG;
	}
	if ((*r_r = rules_load(c->cfg->rules, errors)) == NULL) {
		ctl_print_errors(errors);
		return CG_EX_CONFIG;
	}
	return 0;
}

void
ctl_print_errors(GPtrArray *errors)
{
	guint i;

	for (i = 0; i < errors->len; i++)
		fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	ctl c = { 0 };
	guint i;
	int ch, rc;

	c.conf_path = getenv("CASEGATE_CONF");
	if (c.conf_path == NULL)
		c.conf_path = "/etc/casegate/casegate.conf";
	while ((ch = getopt_long(argc, argv, "+f:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			c.conf_path = optarg;
			break;
		case 'v':
			log_set_verbose(log_get_verbose() + 1);
			break;
		case 'h':
			help();
		default:
			ctl_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		ctl_usage();
	log_init("casectl", LOG_TO_STDERR, log_get_verbose());
	cg_mime_init();

	for (i = 0; i < G_N_ELEMENTS(commands); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			break;
	if (i == G_N_ELEMENTS(commands)) {
		fprintf(stderr, "casectl: unknown command \"%s\"\n", argv[0]);
		ctl_usage();
	}
	rc = commands[i].run(&c, argc, argv);
	store_close(c.st);
	config_free(c.cfg);
	g_mime_shutdown();
	return rc;
}
