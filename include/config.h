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

/* How an endpoint logs in: casegate.conf(5) "auth". */
typedef enum {
	AUTH_PASSWORD,		/* IMAP LOGIN / SMTP AUTH PLAIN, password_file */
	AUTH_OAUTH2,		/* XOAUTH2, token from token_command or token_file (oauth.h) */
} auth_mode;

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
	auth_mode auth;		/* default AUTH_PASSWORD */
	char	*token_command;	/* oauth2: as written in the config, for messages */
	char	**token_argv;	/* oauth2: token_command split (no shell), argv[0] resolved */
	char	*token_file;	/* oauth2: or read the token from this file (0600) */
	int	 token_lifetime; /* oauth2: seconds a token lasts if nothing says; default 3600 */
	int	 token_refresh;	/* oauth2: fetch anew when fewer seconds remain; default 300 */
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

/* members.unknown: a new case from an address the member directory lacks. */
typedef enum {
	MEMBERS_UNKNOWN_ACCEPT,	/* a case like any other (the default) */
	MEMBERS_UNKNOWN_FLAG,	/* a case tagged "unknown-member" */
	MEMBERS_UNKNOWN_HOLD,	/* no case, no answer: the quarantine ("unknown sender") */
} members_unknown_mode;

/* Mail hygiene limits: casegate.conf(5) "limits".  0 means no limit. */
typedef struct {
	gint64	 max_message_size;	/* bytes, from RFC822.SIZE before fetching; default 50 MiB */
	gint64	 max_attachment_size;	/* decoded bytes per attachment; default 25 MiB */
	int	 max_attachments;	/* kept per message; default 100 */
	int	 max_mime_depth;	/* nesting of multiparts and messages; default 20 */
	int	 max_parts;		/* MIME parts read per message; default 500 */
} limits_config;

/* The loop guard and the quarantine: "guard" and "spam". */
typedef struct {
	int	 autoreply_per_day;	/* automatic mails per recipient in 24 h; default 5 */
	int	 bounce_limit;		/* this many hard bounces ... (default 3) */
	int	 bounce_window_days;	/* ... within these days (default 7) ... */
	int	 suppress_days;		/* ... stop mail to the address this long (default 30) */
	GPtrArray *blocked_senders;	/* char *, lowercase "user@dom" or "*@dom"; never NULL */
	char	*spam_header;		/* a value starting with "yes" is spam; default X-Spam-Flag */
	char	*spam_score_header;	/* first number in it >= threshold is spam; NULL: none */
	double	 spam_threshold;	/* default 5.0 */
} guard_config;

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
	int	 smtp_connections; /* smtp.connections: parallel deliveries, default 2, 1..8 */

	char	*database;
	char	*spool;
	char	*rules;		/* NULL: no rules file, default routing */
	char	*templates;	/* directory holding en/ack.txt, fr/ack.txt ... (or ack.txt) */
	char	*language;	/* gateway.language: "en" (default) or "fr"; NULL: "en" */
	members_unknown_mode members_unknown;	/* members.unknown; default accept */

	/* conversations: casegate.conf(5), "gateway", "staff", "cases" */
	char	*secret_file;	/* HMAC key for Message-IDs; default: "secret" beside the database */
	char	*secret;	/* its contents; NULL with CONFIG_SKIP_SECRETS when unreadable */
	gboolean plus_addressing;	/* members+CASE-000123@ names a case; default false */
	staff_config staff;
	int	 reopen_days;	/* a member's reply reopens a resolved case within this; default 14 */
	GPtrArray *status_words; /* char *, casefolded: subjects that ask for a status list */

	limits_config limits;
	guard_config guard;

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

/* A password_file of "credential:NAME" names a systemd credential. */
#define CONFIG_CREDENTIAL_PREFIX "credential:"

/*
 * Read a secret from path ("credential:NAME" reads
 * $CREDENTIALS_DIRECTORY/NAME): refuses a file readable by group or others,
 * strips one trailing newline.  Returns NULL and sets error otherwise.
 */
char *config_read_secret(const char *path, GError **error);

/* Render the case public id: prefix + zero-padded number, newly allocated. */
char *config_case_id(const config *cfg, gint64 number);

/* Parse "CASE-000123" (this config's prefix) back to 123, or 0 if it is not one. */
gint64 config_case_number(const config *cfg, const char *public_id);

#endif
