/*
 * config.h - the daemon's configuration file (libconfig), casegate.conf(5).
 *
 * config_load() reads, validates and returns a complete config or NULL
 * with every problem found, each as "file:line: message".  Relative paths
 * in the file are resolved against the directory of the config file, so
 * a checkout runs from anywhere.  Secrets are read from their own files
 * (password_file), never from the config itself.
 */
#ifndef CG_CONFIG_H
#define CG_CONFIG_H

#include <glib.h>

typedef enum {
	TLS_IMPLICIT,		/* IMAPS 993 / SMTPS 465 */
	TLS_STARTTLS,		/* 143 / 587 + STARTTLS, refuse if missing */
	TLS_NONE,		/* SMTP only, and only to a loopback relay */
} tls_mode;

typedef struct {
	char	*host;
	int	 port;
	tls_mode tls;
	char	*ca_file;	/* extra trust anchors (PEM), or NULL */
	gboolean system_ca;	/* also trust the system store (default yes) */
	char	*user;		/* NULL: no authentication (SMTP) */
	char	*password_file;
	char	*password;	/* read from password_file at load */
	int	 timeout;	/* seconds, every network wait */
} endpoint;

typedef struct {
	char	*name;		/* label used in logs: "members" */
	endpoint ep;
	char	*folder;	/* watched, default INBOX */
	char	*processed_folder; /* default "Processed" */
	int	 poll_interval;	/* seconds, when IDLE is missing; default 60 */
	int	 idle_restart;	/* seconds; re-issue IDLE before 29 min */
	int	 fetch_batch;	/* UIDs per UID FETCH, default 50 */
} imap_account;

typedef struct config {
	char	*path;		/* the file that was loaded */
	char	*dir;		/* its directory, base for relative paths */

	/* gateway */
	char	*address;	/* members@example.org */
	char	*name;		/* "Member Services" */
	char	*domain;	/* for Message-IDs: example.org */
	char	*case_prefix;	/* "CASE-" */
	int	 case_digits;	/* 6 -> CASE-000123 */

	imap_account imap;
	endpoint smtp;

	char	*database;
	char	*spool;
	char	*rules;		/* NULL: no rules file, default routing */
	char	*templates;	/* directory holding ack.txt etc. */

	int	 outbox_max_attempts;	/* default 20 */
	int	 outbox_retry_min;	/* seconds, default 30 */
	int	 outbox_retry_max;	/* seconds, default 3600 */
} config;

/*
 * Load and validate path.  On failure returns NULL and appends one
 * newly allocated "file:line: message" string per problem to errors.
 * Never aborts on bad input.
 */
config *config_load(const char *path, GPtrArray *errors);

/* Flags for config_load_flags. */
#define CONFIG_SKIP_SECRETS	0x1	/* casectl: do not read password files */

/* config_load with flags (CONFIG_SKIP_SECRETS). */
config *config_load_flags(const char *path, int flags, GPtrArray *errors);

/* Free a config; NULL-safe.  Secrets are wiped before freeing. */
void config_free(config *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(config, config_free)

/*
 * Read a secret from path: refuses a file readable by group or others,
 * strips one trailing newline.  Returns NULL and sets error otherwise.
 */
char *config_read_secret(const char *path, GError **error);

/* Render the case public id: prefix + zero-padded number, newly allocated. */
char *config_case_id(const config *cfg, gint64 number);

/* Parse "CASE-000123" (this config's prefix) back to 123, or 0 if it is not one. */
gint64 config_case_number(const config *cfg, const char *public_id);

#endif
