/*
 * ctl_quarantine.c - casectl quarantine list|show|release|delete: what
 * casegate held back (spam, blocked senders, ignored by a rule,
 * unparseable, bounces and auto-replies matching none of our mail).
 *
 * Rationale: the logic is in quarantine.c; here is only its command
 * line.  Release ingests the message as if it were new, with the rules
 * the daemon uses.
 */
#include <stdio.h>
#include <string.h>

#include "cg.h"
#include "ctl.h"
#include "quarantine.h"
#include "spool.h"

static int
ctl_quarantine_id(const char *arg, gint64 *id_r)
{
	char *end = NULL;

	*id_r = g_ascii_strtoll(arg, &end, 10);
	if (end == arg || *end != '\0' || *id_r <= 0) {
		fprintf(stderr, "casectl: \"%s\" is not a quarantine entry number (see "
		    "casectl quarantine list)\n", arg);
		return CG_EX_USAGE;
	}
	return 0;
}

static int
ctl_quarantine_failed(const char *what, GError *err)
{
	if (err != NULL && err->code == CG_ERROR_PERM) {
		fprintf(stderr, "casectl: quarantine %s: %s\n", what, err->message);
		return CTL_EX_NOCASE;
	}
	return ctl_store_failed(err);
}

static int
ctl_quarantine_list(ctl *c, int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	gboolean json = FALSE, all = FALSE;
	int i, rc;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = TRUE;
		else if (strcmp(argv[i], "--all") == 0)
			all = TRUE;
		else
			ctl_usage();
	}
	if ((rc = ctl_open_store(c)) != 0)
		return rc;
	if (!quarantine_print_list(c->st, all, json, stdout, &err))
		return ctl_store_failed(err);
	return 0;
}

static int
ctl_quarantine_release_one(ctl *c, gint64 id)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = NULL;
	g_autoptr(rules) r = NULL;
	ingest_ctx ctx = { 0 };
	ingest_result res;
	int rc;

	if (c->cfg->rules != NULL && (rc = ctl_rules(c, &r)) != 0)
		return rc;
	if ((sp = spool_open(c->cfg->spool, &err)) == NULL)
		return ctl_store_failed(err);
	ctx.cfg = c->cfg;
	ctx.st = c->st;
	ctx.sp = sp;
	ctx.rules = r;
	if (!quarantine_release(&ctx, id, &res, &err))
		return ctl_quarantine_failed("release", err);
	printf("released entry %" G_GINT64_FORMAT ": %s %s: %s\n", id,
	    res.public_id ? res.public_id : "-", ingest_outcome_name(res.outcome),
	    res.decision ? res.decision : "");
	ingest_result_clear(&res);
	return 0;
}

int
ctl_cmd_quarantine(ctl *c, int argc, char **argv)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(spool) sp = NULL;
	gint64 id;
	int rc;

	if (argc < 2)
		ctl_usage();
	if (strcmp(argv[1], "list") == 0)
		return ctl_quarantine_list(c, argc, argv);
	if (argc != 3 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "release") != 0 &&
	    strcmp(argv[1], "delete") != 0))
		ctl_usage();
	if ((rc = ctl_quarantine_id(argv[2], &id)) != 0)
		return rc;
	if (strcmp(argv[1], "show") == 0) {
		if ((rc = ctl_open_store(c)) != 0)
			return rc;
		if ((sp = spool_open(c->cfg->spool, &err)) == NULL ||
		    !quarantine_print_one(c->st, sp, id, stdout, &err))
			return ctl_quarantine_failed("show", err);
		return 0;
	}
	if ((rc = ctl_open_store_rw(c)) != 0)
		return rc;
	if (strcmp(argv[1], "release") == 0)
		return ctl_quarantine_release_one(c, id);
	if ((sp = spool_open(c->cfg->spool, &err)) == NULL ||
	    !quarantine_delete(c->st, sp, id, &err))
		return ctl_quarantine_failed("delete", err);
	printf("deleted entry %" G_GINT64_FORMAT "\n", id);
	return 0;
}
