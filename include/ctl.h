/*
 * ctl.h - private to casectl: the state every command shares, the
 * helpers src/casectl.c gives them, and one entry point per command.
 *
 * The commands live by concern in src/ctl_cases.c (list, show, search,
 * export), src/ctl_work.c (resolve, reopen, note, reply, set-type,
 * assign) and src/ctl_admin.c (outbox, stats, status, quarantine,
 * members); src/casectl.c holds main, the command table and the helpers
 * below.  The Makefile puts the ctl_*.c files into libcasegate.a, but
 * only casectl links them: they call back into casectl.c.
 *
 * A command gets argv from its own name on (argv[0] is "list"), prints
 * its result to stdout and its errors to stderr, and returns an exit
 * status (CG_EX_* from cg.h, or CTL_EX_NOCASE); on a usage error it
 * calls ctl_usage(), which does not return.
 */
#ifndef CG_CTL_H
#define CG_CTL_H

#include <glib.h>

#include "config.h"
#include "rules.h"
#include "store.h"

/* Exit status: no such case, outbox row, quarantine entry or member. */
#define CTL_EX_NOCASE 1

/* What casectl has open; each field NULL until a command needs it. */
typedef struct {
	const char *conf_path;	/* -f, $CASEGATE_CONF or the default */
	config *cfg;		/* ctl_load_config */
	store *st;		/* ctl_open_store or ctl_open_store_rw */
} ctl;

/* ---- helpers, in src/casectl.c ---------------------------------------- */

/* Print the usage (every command's synopsis) to stderr and exit 64. */
void ctl_usage(void) G_GNUC_NORETURN;

/*
 * Load c->conf_path into c->cfg (secrets skipped) unless loaded already.
 * Returns 0, or CG_EX_CONFIG with every error printed.
 */
int ctl_load_config(ctl *c);

/*
 * Load the config and open its database read-only into c->st.  Returns
 * 0, or an exit status (CG_EX_CONFIG, CG_EX_NOINPUT) with a message.
 */
int ctl_open_store(ctl *c);

/*
 * Load the config and open its database read-write into c->st, never
 * creating it.  Returns 0, or an exit status with a message.
 */
int ctl_open_store_rw(ctl *c);

/* Local "YYYY-MM-DD HH:MM" of t, "-" for none; the caller frees it. */
char *ctl_fmt_time(gint64 t);

/* At most width characters of s, "..." when cut, "-" for NULL; caller frees. */
char *ctl_clip(const char *s, glong width);

/* "Type / Sub type / Update type" (NULL parts left out), "-" without type; caller frees. */
char *ctl_type_line(const char *type, const char *sub, const char *upd);

/*
 * Parse a command's options when --json is the only one: *json_r says
 * whether it was given, optind is left at the first other argument.
 * FALSE on any other option (the caller then calls ctl_usage).
 */
gboolean ctl_json_opts(int argc, char **argv, gboolean *json_r);

/* Who acts, for the audit trail ("jane (sudo) via casectl"); caller frees. */
char *ctl_actor(void);

/*
 * Print err (a failed store call; may be NULL) and return its exit
 * status: CG_EX_TEMPFAIL when the database was busy, else CG_EX_SOFTWARE.
 */
int ctl_store_failed(const GError *err);

/*
 * End the transaction: commit when ok, else roll back and report err
 * (borrowed; may be NULL).  Returns 0 or the exit status.
 */
int ctl_finish(ctl *c, gboolean ok, GError *err);

/*
 * Load the rules file the config names into *r_r (the caller owns it).
 * Returns 0, or CG_EX_CONFIG with the errors printed.
 */
int ctl_rules(ctl *c, rules **r_r);

/* Print each message of errors (char *) on a line of its own to stderr. */
void ctl_print_errors(GPtrArray *errors);

/* ---- commands: ctl_cmd_NAME(c, argc, argv) runs "casectl NAME ..." ---- */

/* src/ctl_cases.c: reading cases */
int ctl_cmd_list(ctl *c, int argc, char **argv);
int ctl_cmd_show(ctl *c, int argc, char **argv);
int ctl_cmd_search(ctl *c, int argc, char **argv);
int ctl_cmd_export(ctl *c, int argc, char **argv);

/* src/ctl_work.c: working a case, each change one transaction */
int ctl_cmd_resolve(ctl *c, int argc, char **argv);
int ctl_cmd_reopen(ctl *c, int argc, char **argv);
int ctl_cmd_note(ctl *c, int argc, char **argv);
int ctl_cmd_reply(ctl *c, int argc, char **argv);
int ctl_cmd_set_type(ctl *c, int argc, char **argv);
int ctl_cmd_assign(ctl *c, int argc, char **argv);

/* src/ctl_admin.c: the outbox, reports, quarantine, member directory */
int ctl_cmd_outbox(ctl *c, int argc, char **argv);
int ctl_cmd_stats(ctl *c, int argc, char **argv);
int ctl_cmd_status(ctl *c, int argc, char **argv);
int ctl_cmd_quarantine(ctl *c, int argc, char **argv);
int ctl_cmd_members(ctl *c, int argc, char **argv);

#endif
