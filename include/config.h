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
	char	*name;		/* label used in logs and source keys: "members" */
	char	*address;	/* the gateway address this mailbox serves (rules "recipient") */
	char	*default_type, *default_sub_type, *default_team;	/* routing when no rule decides; may be NULL */
	endpoint ep;
	char	*folder;	/* watched, default INBOX */
	char	*processed_folder; /* default "Processed" */
	int	 poll_interval;	/* seconds, when IDLE is missing; default 60 */
	int	 idle_restart;	/* seconds; re-issue IDLE before 29 min */
	int	 fetch_batch;	/* UIDs per UID FETCH, default 50 */
} imap_account;

/*
 * Who counts as staff: a From address in addresses or a domain in
 * domains (lowercase) and, when require_auth, an Authentication-Results
 * header added by authserv_id with dkim=pass or spf=pass for that
 * domain.  require_auth without authserv_id is a config error.
 */
typedef struct {
	GPtrArray *addresses;	/* char *, lowercase; never NULL after load */
	GPtrArray *domains;	/* char *, lowercase; never NULL after load */
	char	*authserv_id;	/* NULL: none trusted */
	gboolean require_auth;	/* default true */
	gboolean expose_address; /* relays show the staff address in Reply-To; default false */
} staff_config;

typedef struct config {
	char	*path;		/* the file that was loaded */
	char	*dir;		/* its directory, base for relative paths */

	/* gateway */
	char	*address;	/* members@example.org */
	char	*name;		/* "Member Services" */
	char	*domain;	/* for Message-IDs: example.org */
	char	*case_prefix;	/* "CASE-" */
	int	 case_digits;	/* 6 -> CASE-000123 */

	GPtrArray *mailboxes;	/* imap_account *: the "imap" group, or each of "mailboxes" */
	endpoint smtp;

	char	*database;
	char	*spool;
	char	*rules;		/* NULL: no rules file, default routing */
	char	*templates;	/* directory holding ack.txt etc. */

	/* conversations: casegate.conf(5), "gateway", "staff", "cases" */
	char	*secret_file;	/* HMAC key for Message-IDs; default: "secret" beside the database */
	char	*secret;	/* its contents; NULL with CONFIG_SKIP_SECRETS when unreadable */
	gboolean plus_addressing;	/* members+CASE-000123@ names a case; default false */
	staff_config staff;
	int	 reopen_days;	/* a member's reply reopens a resolved case within this; default 14 */
	GPtrArray *status_words; /* char *, casefolded: subjects that ask for a status list */

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
