/*
 * ctl_members.c - casectl members import|list|show: the member
 * directory.
 *
 * Rationale: parsing and storing are in members.c; here is only the
 * command line.  An import is all or nothing: the file is parsed whole
 * before the database is opened, and written in one transaction.
 */
#include <stdio.h>
#include <string.h>

#include "cg.h"
#include "ctl.h"
#include "members.h"

/* Print "file:line: message" errors and say that nothing changed. */
static int
ctl_members_rejected(GPtrArray *errors, const char *file)
{
	ctl_print_errors(errors);
	fprintf(stderr, "casectl: %s was not imported; the member directory is unchanged\n",
	    file);
	return CG_EX_DATAERR;
}

static int
ctl_members_import_file(ctl *c, const char *file, gboolean replace)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *data = NULL;
	int added = 0, updated = 0, rc;
	gsize len;

	if (!g_file_get_contents(file, &data, &len, &err)) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_NOINPUT;
	}
	if ((entries = members_csv_parse(data, len, file, errors)) == NULL)
		return ctl_members_rejected(errors, file);
	if ((rc = ctl_open_store_rw(c)) != 0)
		return rc;
	if (!store_begin(c->st, &err))
		return ctl_store_failed(err);
	if (!members_import(c->st, entries, replace, file, errors, &added, &updated, &err)) {
		store_rollback(c->st);
		if (err != NULL)
			return ctl_store_failed(err);
		return ctl_members_rejected(errors, file);
	}
	if (!store_commit(c->st, &err))
		return ctl_store_failed(err);
	printf("%s: %u members imported (%d new, %d updated)%s\n", file, entries->len, added,
	    updated, replace ? "; the directory is now exactly this file" : "");
	return 0;
}

int
ctl_cmd_members(ctl *c, int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	gboolean json = FALSE, replace = FALSE;
	const char *arg = NULL;
	int i, rc;

	if (argc < 2)
		ctl_usage();
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && strcmp(argv[1], "import") != 0)
			json = TRUE;
		else if (strcmp(argv[i], "--replace") == 0 && strcmp(argv[1], "import") == 0)
			replace = TRUE;
		else if (arg == NULL && (argv[i][0] != '-' || argv[i][1] == '\0'))
			arg = argv[i];
		else
			ctl_usage();
	}
	if (strcmp(argv[1], "import") == 0) {
		if (arg == NULL)
			ctl_usage();
		return ctl_members_import_file(c, arg, replace);
	}
	if (strcmp(argv[1], "list") == 0) {
		if (arg != NULL)
			ctl_usage();
		if ((rc = ctl_open_store(c)) != 0)
			return rc;
		if (!members_print_list(c->st, json, stdout, &err))
			return ctl_store_failed(err);
		return 0;
	}
	if (strcmp(argv[1], "show") != 0 || arg == NULL)
		ctl_usage();
	if ((rc = ctl_open_store(c)) != 0)
		return rc;
	if (!members_print_one(c->st, arg, json, stdout, &err)) {
		if (err != NULL && err->code == CG_ERROR_PERM) {
			fprintf(stderr, "casectl: %s\n", err->message);
			return CTL_EX_NOCASE;
		}
		return ctl_store_failed(err);
	}
	return 0;
}

