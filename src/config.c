/*
 * config.c - casegate.conf(5), read with libconfig.
 *
 * The file is checked against a table of known settings: an unknown key
 * is an error (a typo must not silently fall back to a default), so is a
 * wrong type or a missing required setting.  Every problem is collected
 * as "file:line: message" before failing, so an admin fixes them in one
 * pass (OpenSMTPD's discipline).  Relative paths are taken relative to
 * the config file's directory, not to wherever the daemon was started.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "cg.h"
#include "config.h"
#include "lang.h"
#include "oauth.h"

/* config_destroy frees what the config_t holds, not the struct itself */
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(config_t, config_destroy)

typedef enum { K_STR, K_INT, K_BOOL, K_GROUP, K_LIST, K_STRINGS, K_NUM } key_kind;

typedef struct {
	const char *name;
	key_kind kind;
	gboolean required;
} key_spec;

static const key_spec root_keys[] = {
	{ "gateway", K_GROUP, TRUE },
	{ "imap", K_GROUP, FALSE },	/* one mailbox ... */
	{ "mailboxes", K_LIST, FALSE },	/* ... or several */
	{ "smtp", K_GROUP, TRUE },
	{ "database", K_STR, TRUE },
	{ "spool", K_STR, TRUE },
	{ "rules", K_STR, FALSE },
	{ "templates", K_STR, TRUE },
	{ "outbox", K_GROUP, FALSE },
	{ "staff", K_GROUP, FALSE },
	{ "cases", K_GROUP, FALSE },
	{ "limits", K_GROUP, FALSE },
	{ "guard", K_GROUP, FALSE },
	{ "spam", K_GROUP, FALSE },
	{ "members", K_GROUP, FALSE },
	{ NULL, 0, FALSE },
};

static const key_spec gateway_keys[] = {
	{ "address", K_STR, TRUE },
	{ "name", K_STR, FALSE },
	{ "domain", K_STR, FALSE },
	{ "case_prefix", K_STR, FALSE },
	{ "case_digits", K_INT, FALSE },
	{ "secret_file", K_STR, FALSE },
	{ "plus_addressing", K_BOOL, FALSE },
	{ "language", K_STR, FALSE },
	{ NULL, 0, FALSE },
};

#define ENDPOINT_KEYS \
	{ "host", K_STR, TRUE }, \
	{ "port", K_INT, FALSE }, \
	{ "tls", K_STR, FALSE }, \
	{ "ca_file", K_STR, FALSE }, \
	{ "system_ca", K_BOOL, FALSE }, \
	{ "user", K_STR, FALSE }, \
	{ "password_file", K_STR, FALSE }, \
	{ "timeout", K_INT, FALSE }, \
	{ "auth", K_STR, FALSE }, \
	{ "token_command", K_STR, FALSE }, \
	{ "token_file", K_STR, FALSE }, \
	{ "token_lifetime", K_INT, FALSE }, \
	{ "token_refresh", K_INT, FALSE }

static const key_spec imap_keys[] = {
	ENDPOINT_KEYS,
	{ "name", K_STR, FALSE },
	{ "address", K_STR, FALSE },
	{ "default", K_GROUP, FALSE },
	{ "folder", K_STR, FALSE },
	{ "processed_folder", K_STR, FALSE },
	{ "poll_interval", K_INT, FALSE },
	{ "idle_restart", K_INT, FALSE },
	{ "fetch_batch", K_INT, FALSE },
	{ NULL, 0, FALSE },
};

static const key_spec route_keys[] = {
	{ "type", K_STR, FALSE },
	{ "sub_type", K_STR, FALSE },
	{ "team", K_STR, FALSE },
	{ NULL, 0, FALSE },
};

static const key_spec smtp_keys[] = {
	ENDPOINT_KEYS,
	{ "connections", K_INT, FALSE },
	{ NULL, 0, FALSE },
};

static const key_spec outbox_keys[] = {
	{ "max_attempts", K_INT, FALSE },
	{ "retry_min", K_INT, FALSE },
	{ "retry_max", K_INT, FALSE },
	{ NULL, 0, FALSE },
};

typedef struct {
	const char *path;	/* the main file, for errors without a setting */
	GPtrArray *errors;
	int flags;		/* CONFIG_SKIP_SECRETS */
} loader;

static void G_GNUC_PRINTF(3, 4)
load_error(loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file = NULL;
	int line = 0;
	va_list ap;
	g_autofree char *msg = NULL;

	if (s != NULL) {
		file = config_setting_source_file(s);
		line = config_setting_source_line(s);
	}
	if (file == NULL)
		file = ld->path;
	if (line <= 0)
		line = 1;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_ptr_array_add(ld->errors, g_strdup_printf("%s:%d: %s", file, line, msg));
}

static const char *
kind_name(key_kind k)
{
	switch (k) {
	case K_STR:
		return "a string in double quotes";
	case K_INT:
		return "an integer";
	case K_BOOL:
		return "true or false";
	case K_LIST:
		return "a list ( { ... }, { ... } )";
	case K_STRINGS:
		return "a list of strings [ \"...\", \"...\" ]";
	case K_NUM:
		return "a number";
	default:
		return "a group { ... }";
	}
}

static gboolean
kind_matches(key_kind k, const config_setting_t *s)
{
	int t = config_setting_type(s);

	switch (k) {
	case K_STR:
		return t == CONFIG_TYPE_STRING;
	case K_INT:
		return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
	case K_BOOL:
		return t == CONFIG_TYPE_BOOL;
	case K_LIST:
		return t == CONFIG_TYPE_LIST;
	case K_STRINGS:
		return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
	case K_NUM:
		return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 ||
		    t == CONFIG_TYPE_FLOAT;
	default:
		return t == CONFIG_TYPE_GROUP;
	}
}

/* Check a group's members against spec: unknown keys, types, required ones. */
static void
check_group(loader *ld, const config_setting_t *group, const char *where,
    const key_spec *spec)
{
	int i, n = config_setting_length(group);
	const key_spec *k;

	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, i);
		const char *name = config_setting_name(s);

		for (k = spec; k->name != NULL; k++)
			if (strcmp(k->name, name) == 0)
				break;
		if (k->name == NULL) {
			load_error(ld, s, "unknown setting \"%s%s%s\"", where,
			    *where ? "." : "", name);
			continue;
		}
		if (!kind_matches(k->kind, s))
			load_error(ld, s, "\"%s%s%s\" must be %s", where,
			    *where ? "." : "", name, kind_name(k->kind));
	}
	for (k = spec; k->name != NULL; k++)
		if (k->required && config_setting_get_member(group, k->name) == NULL)
			load_error(ld, group, "missing required setting \"%s%s%s\"",
			    where, *where ? "." : "", k->name);
}

static const char *
get_str(const config_setting_t *g, const char *name)
{
	const char *v = NULL;

	if (g == NULL || !config_setting_lookup_string(g, name, &v))
		return NULL;
	return v;
}

/* An integer in [min, max], or def when absent; an error when out of range. */
static int
get_int(loader *ld, const config_setting_t *g, const char *where, const char *name,
    int def, int min, int max)
{
	config_setting_t *s;
	long long v;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL)
		return def;
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		v = config_setting_get_int(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT64)
		v = config_setting_get_int64(s);
	else
		return def;	/* type error reported by check_group */
	if (v < min || v > max) {
		load_error(ld, s, "\"%s.%s\" is %lld; it must be between %d and %d",
		    where, name, v, min, max);
		return def;
	}
	return (int)v;
}

static gboolean
get_bool(const config_setting_t *g, const char *name, gboolean def)
{
	int v;

	if (g == NULL || !config_setting_lookup_bool(g, name, &v))
		return def;
	return v != 0;
}

static char *
abs_path(const config *cfg, const char *p)
{
	if (p == NULL)
		return NULL;
	if (g_path_is_absolute(p) || g_str_has_prefix(p, CONFIG_CREDENTIAL_PREFIX))
		return g_strdup(p);
	return g_build_filename(cfg->dir, p, NULL);
}

static gboolean
is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	    g_str_has_prefix(host, "127.");
}

/* token_command: split like a shell word list, but no shell runs it. */
static void
load_token_command(loader *ld, config *cfg, const config_setting_t *g, const char *where,
    endpoint *ep)
{
	const config_setting_t *s = config_setting_get_member(g, "token_command");
	g_autoptr(GError) err = NULL;
	char **argv = NULL;

	if (!g_shell_parse_argv(ep->token_command, NULL, &argv, &err)) {
		load_error(ld, s, "\"%s.token_command\" cannot be split into words: %s",
		    where, err->message);
		return;
	}
	/* A relative program path is relative to the config file, like every path. */
	if (strchr(argv[0], '/') != NULL && !g_path_is_absolute(argv[0])) {
		char *p = g_canonicalize_filename(argv[0], cfg->dir);

		g_free(argv[0]);
		argv[0] = p;
	}
	ep->token_argv = argv;
	if (!(ld->flags & CONFIG_SKIP_SECRETS) && !oauth_command_check(argv, &err))
		load_error(ld, s, "\"%s.token_command\": %s", where, err->message);
}

/*
 * auth = "oauth2": a user and exactly one token source, no password.
 * Returns FALSE when the password checks must be skipped.
 */
static gboolean
load_endpoint_auth(loader *ld, config *cfg, const config_setting_t *g, const char *where,
    endpoint *ep)
{
	const char *auth = get_str(g, "auth");
	const config_setting_t *s = config_setting_get_member(g, "auth");
	gboolean oauth2 = auth != NULL && strcmp(auth, "oauth2") == 0;
	static const char *const token_keys[] = { "token_command", "token_file",
	    "token_lifetime", "token_refresh" };
	g_autoptr(GError) err = NULL;
	gsize i;

	if (auth != NULL && !oauth2 && strcmp(auth, "password") != 0)
		load_error(ld, s, "\"%s.auth\" must be \"password\" or \"oauth2\"", where);
	if (!oauth2) {
		for (i = 0; i < G_N_ELEMENTS(token_keys); i++)
			if ((s = config_setting_get_member(g, token_keys[i])) != NULL)
				load_error(ld, s, "\"%s.%s\" is only used with auth = \"oauth2\"",
				    where, token_keys[i]);
		return TRUE;
	}
	ep->auth = AUTH_OAUTH2;
	ep->token_command = g_strdup(get_str(g, "token_command"));
	ep->token_file = abs_path(cfg, get_str(g, "token_file"));
	ep->token_lifetime = get_int(ld, g, where, "token_lifetime", 3600, 60, 86400);
	ep->token_refresh = get_int(ld, g, where, "token_refresh", 300, 0, 3600);
	if (ep->user == NULL)
		load_error(ld, g, "\"%s.auth = oauth2\" needs \"%s.user\" (the mailbox the "
		    "token is for)", where, where);
	if (ep->password_file != NULL)
		load_error(ld, config_setting_get_member(g, "password_file"),
		    "\"%s.password_file\" is not used with auth = \"oauth2\"; remove it", where);
	if ((ep->token_command == NULL) == (ep->token_file == NULL))
		load_error(ld, g, "\"%s.auth = oauth2\" needs exactly one of "
		    "\"%s.token_command\" and \"%s.token_file\"", where, where, where);
	else if (ep->token_command != NULL)
		load_token_command(ld, cfg, g, where, ep);
	else if (!(ld->flags & CONFIG_SKIP_SECRETS) && !oauth_file_check(ep->token_file, &err))
		load_error(ld, config_setting_get_member(g, "token_file"), "\"%s.token_file\": %s",
		    where, err->message);
	if (ep->token_refresh >= ep->token_lifetime)
		load_error(ld, config_setting_get_member(g, "token_refresh"),
		    "\"%s.token_refresh\" (%d s) must be below \"%s.token_lifetime\" (%d s)",
		    where, ep->token_refresh, where, ep->token_lifetime);
	return FALSE;
}

static void
load_endpoint(loader *ld, config *cfg, const config_setting_t *g, const char *where,
    endpoint *ep, gboolean is_imap)
{
	const char *tls = get_str(g, "tls");
	const config_setting_t *s;

	ep->host = g_strdup(get_str(g, "host"));
	if (ep->host != NULL && !cg_protocol_safe(ep->host, 253))
		load_error(ld, config_setting_get_member(g, "host"),
		    "\"%s.host\" is not a valid host name", where);
	if (tls == NULL || strcmp(tls, "implicit") == 0)
		ep->tls = TLS_IMPLICIT;
	else if (strcmp(tls, "starttls") == 0)
		ep->tls = TLS_STARTTLS;
	else if (strcmp(tls, "none") == 0 && !is_imap)
		ep->tls = TLS_NONE;
	else {
		s = config_setting_get_member(g, "tls");
		load_error(ld, s, "\"%s.tls\" must be \"implicit\" or \"starttls\"%s", where,
		    is_imap ? " (plaintext IMAP is not supported)" : " or \"none\"");
	}
	if (ep->tls == TLS_NONE && ep->host != NULL && !is_loopback(ep->host))
		load_error(ld, config_setting_get_member(g, "tls"),
		    "\"%s.tls = none\" is only allowed for a relay on loopback", where);
	if (is_imap)
		ep->port = get_int(ld, g, where, "port", ep->tls == TLS_IMPLICIT ? 993 : 143,
		    1, 65535);
	else
		ep->port = get_int(ld, g, where, "port", ep->tls == TLS_IMPLICIT ? 465 : 587,
		    1, 65535);
	ep->ca_file = abs_path(cfg, get_str(g, "ca_file"));
	ep->system_ca = get_bool(g, "system_ca", TRUE);
	ep->user = g_strdup(get_str(g, "user"));
	ep->password_file = abs_path(cfg, get_str(g, "password_file"));
	ep->timeout = get_int(ld, g, where, "timeout", 30, 1, 600);

	if (ep->ca_file != NULL && access(ep->ca_file, R_OK) != 0)
		load_error(ld, config_setting_get_member(g, "ca_file"),
		    "\"%s.ca_file\" %s: %s", where, ep->ca_file, g_strerror(errno));
	if (is_imap && ep->user == NULL)
		load_error(ld, g, "missing required setting \"%s.user\"", where);
	if (!load_endpoint_auth(ld, cfg, g, where, ep))
		return;
	if (ep->user != NULL && ep->password_file == NULL)
		load_error(ld, g, "\"%s.user\" is set but \"%s.password_file\" is missing",
		    where, where);
	if (ep->password_file != NULL && !(ld->flags & CONFIG_SKIP_SECRETS)) {
		g_autoptr(GError) err = NULL;

		ep->password = config_read_secret(ep->password_file, &err);
		if (ep->password == NULL)
			load_error(ld, config_setting_get_member(g, "password_file"),
			    "\"%s.password_file\": %s", where, err->message);
	}
}

static void
wipe_free(char *secret)
{
	if (secret != NULL) {
		memset(secret, 0, strlen(secret));
		g_free(secret);
	}
}

static void
endpoint_clear(endpoint *ep)
{
	g_free(ep->host);
	g_free(ep->ca_file);
	g_free(ep->user);
	g_free(ep->password_file);
	wipe_free(ep->password);
	g_free(ep->token_command);
	g_strfreev(ep->token_argv);
	g_free(ep->token_file);
}

static void
imap_account_free(imap_account *a)
{
	if (a == NULL)
		return;
	g_free(a->name);
	g_free(a->address);
	g_free(a->default_type);
	g_free(a->default_sub_type);
	g_free(a->default_team);
	endpoint_clear(&a->ep);
	g_free(a->folder);
	g_free(a->processed_folder);
	g_free(a);
}

static void
load_route(loader *ld, imap_account *a, const config_setting_t *g, const char *where)
{
	g_autofree char *w = g_strdup_printf("%s.default", where);

	if (g == NULL)
		return;
	check_group(ld, g, w, route_keys);
	a->default_type = g_strdup(get_str(g, "type"));
	a->default_sub_type = g_strdup(get_str(g, "sub_type"));
	a->default_team = g_strdup(get_str(g, "team"));
	if (a->default_sub_type != NULL && a->default_type == NULL)
		load_error(ld, g, "\"%s.sub_type\" needs \"%s.type\"", w, w);
}

/* One mailbox from the group g, reported as where ("imap", "mailboxes.[1]"). */
static imap_account *
load_mailbox(loader *ld, config *cfg, const config_setting_t *g, const char *where,
    const char *def_name)
{
	imap_account *a = g_new0(imap_account, 1);
	const char *f;

	check_group(ld, g, where, imap_keys);
	load_endpoint(ld, cfg, g, where, &a->ep, TRUE);
	a->name = g_strdup(get_str(g, "name") ? get_str(g, "name") : def_name);
	if (!cg_protocol_safe(a->name, 64))
		load_error(ld, config_setting_get_member(g, "name"),
		    "\"%s.name\" must be a short label without spaces", where);
	f = get_str(g, "address");
	a->address = g_strdup(f ? f : cfg->address);
	if (f != NULL && !cg_address_valid(f))
		load_error(ld, config_setting_get_member(g, "address"),
		    "\"%s.address\" \"%s\" is not a valid mail address", where, f);
	f = get_str(g, "folder");
	a->folder = g_strdup(f ? f : "INBOX");
	f = get_str(g, "processed_folder");
	a->processed_folder = g_strdup(f ? f : "Processed");
	if (!cg_protocol_safe(a->folder, 200) || !g_utf8_validate(a->folder, -1, NULL))
		load_error(ld, config_setting_get_member(g, "folder"),
		    "\"%s.folder\" must be a folder name without spaces or control characters",
		    where);
	if (!cg_protocol_safe(a->processed_folder, 200) ||
	    !g_utf8_validate(a->processed_folder, -1, NULL))
		load_error(ld, config_setting_get_member(g, "processed_folder"),
		    "\"%s.processed_folder\" must be a folder name without spaces or control characters",
		    where);
	else if (strcmp(a->folder, a->processed_folder) == 0)
		load_error(ld, config_setting_get_member(g, "processed_folder"),
		    "\"%s.processed_folder\" must differ from \"%s.folder\"", where, where);
	a->poll_interval = get_int(ld, g, where, "poll_interval", 60, 1, 3600);
	a->idle_restart = get_int(ld, g, where, "idle_restart", 25 * 60, 10, 28 * 60);
	a->fetch_batch = get_int(ld, g, where, "fetch_batch", 50, 1, 1000);
	load_route(ld, a, config_setting_get_member(g, "default"), where);
	return a;
}

/* "imap = { ... }" for one mailbox, or "mailboxes = ( { ... }, ... )". */
static void
load_mailboxes(loader *ld, config *cfg, const config_setting_t *root)
{
	const config_setting_t *one = config_setting_get_member(root, "imap");
	const config_setting_t *list = config_setting_get_member(root, "mailboxes");
	guint i, j;

	cfg->mailboxes = g_ptr_array_new_with_free_func((GDestroyNotify)imap_account_free);
	if (one != NULL && list != NULL) {
		load_error(ld, list, "set either \"imap\" (one mailbox) or \"mailboxes\", not both");
		return;
	}
	if (one == NULL && list == NULL) {
		load_error(ld, root, "missing required setting \"imap\" (or \"mailboxes\")");
		return;
	}
	if (one != NULL) {
		if (config_setting_is_group(one))
			g_ptr_array_add(cfg->mailboxes, load_mailbox(ld, cfg, one, "imap", "imap"));
		return;
	}
	if (!config_setting_is_list(list))
		return;
	if (config_setting_length(list) == 0)
		load_error(ld, list, "\"mailboxes\" is empty");
	for (i = 0; i < (guint)config_setting_length(list); i++) {
		const config_setting_t *g = config_setting_get_elem(list, i);
		g_autofree char *where = g_strdup_printf("mailboxes.[%u]", i);
		g_autofree char *def = g_strdup_printf("mailbox%u", i + 1);

		if (!config_setting_is_group(g)) {
			load_error(ld, g, "each of \"mailboxes\" must be a group { ... }");
			continue;
		}
		g_ptr_array_add(cfg->mailboxes, load_mailbox(ld, cfg, g, where, def));
	}
	for (i = 0; i < cfg->mailboxes->len; i++)
		for (j = 0; j < i; j++)
			if (strcmp(((imap_account *)cfg->mailboxes->pdata[i])->name,
			    ((imap_account *)cfg->mailboxes->pdata[j])->name) == 0)
				load_error(ld, config_setting_get_elem(list, i),
				    "two mailboxes are named \"%s\"; names must differ",
				    ((imap_account *)cfg->mailboxes->pdata[i])->name);
}

static void
load_gateway(loader *ld, config *cfg, const config_setting_t *g)
{
	const char *v;

	cfg->address = g_strdup(get_str(g, "address"));
	if (cfg->address != NULL && !cg_address_valid(cfg->address))
		load_error(ld, config_setting_get_member(g, "address"),
		    "\"gateway.address\" \"%s\" is not a valid mail address", cfg->address);
	v = get_str(g, "name");
	cfg->name = g_strdup(v ? v : "Member Services");
	if (strpbrk(cfg->name, "\r\n") != NULL)
		load_error(ld, config_setting_get_member(g, "name"),
		    "\"gateway.name\" must be one line");
	v = get_str(g, "domain");
	if (v == NULL && cfg->address != NULL && strchr(cfg->address, '@') != NULL)
		v = strchr(cfg->address, '@') + 1;
	cfg->domain = g_strdup(v);
	if (cfg->domain != NULL && (!cg_protocol_safe(cfg->domain, 253) ||
	    strchr(cfg->domain, '@') != NULL))
		load_error(ld, config_setting_get_member(g, "domain"),
		    "\"gateway.domain\" is not a valid domain");
	v = get_str(g, "case_prefix");
	cfg->case_prefix = g_strdup(v ? v : "CASE-");
	for (v = cfg->case_prefix; *v != '\0'; v++)
		if (!g_ascii_isalnum(*v) && *v != '-' && *v != '_')
			break;
	if (*v != '\0' || *cfg->case_prefix == '\0' || strlen(cfg->case_prefix) > 16)
		load_error(ld, config_setting_get_member(g, "case_prefix"),
		    "\"gateway.case_prefix\" must be 1-16 letters, digits, '-' or '_'");
	cfg->case_digits = get_int(ld, g, "gateway", "case_digits", 6, 1, 12);
}

static void
load_paths(loader *ld, config *cfg, const config_setting_t *root)
{
	cfg->database = abs_path(cfg, get_str(root, "database"));
	cfg->spool = abs_path(cfg, get_str(root, "spool"));
	cfg->rules = abs_path(cfg, get_str(root, "rules"));
	cfg->templates = abs_path(cfg, get_str(root, "templates"));
	if (cfg->rules != NULL && access(cfg->rules, R_OK) != 0)
		load_error(ld, config_setting_get_member(root, "rules"),
		    "rules file %s: %s", cfg->rules, g_strerror(errno));
	if (cfg->templates != NULL) {
		/* templates/<language>/ack.txt, or templates/ack.txt (older layout) */
		g_autofree char *ack = g_build_filename(cfg->templates, lang_default(cfg),
		    "ack.txt", NULL);
		g_autofree char *flat = g_build_filename(cfg->templates, "ack.txt", NULL);

		if (access(ack, R_OK) != 0 && access(flat, R_OK) != 0)
			load_error(ld, config_setting_get_member(root, "templates"),
			    "template %s: %s (nor is there %s)", ack, g_strerror(errno), flat);
	}
}

/*
 * The member directory and languages: gateway.language (the default
 * language of mail to members, and the language of mail to staff) and
 * members.unknown (what a new case from an address the directory does
 * not know becomes).
 */
static const key_spec members_keys[] = {
	{ "unknown", K_STR, FALSE },
	{ NULL, 0, FALSE },
};

static void
load_language(loader *ld, config *cfg, config_setting_t *root)
{
	config_setting_t *gw = config_setting_get_member(root, "gateway");
	config_setting_t *g = config_setting_get_member(root, "members");
	const char *v, *code;

	if (gw != NULL && !config_setting_is_group(gw))
		gw = NULL;
	v = get_str(gw, "language");
	code = v != NULL ? lang_normalise(v) : LANG_FALLBACK;
	if (code == NULL) {
		load_error(ld, config_setting_get_member(gw, "language"),
		    "\"gateway.language\" \"%s\" is not a language casegate writes (%s)", v,
		    lang_known());
		code = LANG_FALLBACK;
	}
	cfg->language = g_strdup(code);
	if (g == NULL || !config_setting_is_group(g))
		return;
	check_group(ld, g, "members", members_keys);
	v = get_str(g, "unknown");
	if (v == NULL || strcmp(v, "accept") == 0)
		cfg->members_unknown = MEMBERS_UNKNOWN_ACCEPT;
	else if (strcmp(v, "flag") == 0)
		cfg->members_unknown = MEMBERS_UNKNOWN_FLAG;
	else if (strcmp(v, "hold") == 0)
		cfg->members_unknown = MEMBERS_UNKNOWN_HOLD;
	else
		load_error(ld, config_setting_get_member(g, "unknown"),
		    "\"members.unknown\" must be \"accept\", \"flag\" or \"hold\"");
}

static void
load_outbox(loader *ld, config *cfg, const config_setting_t *g)
{
	cfg->outbox_max_attempts = get_int(ld, g, "outbox", "max_attempts", 20, 1, 1000);
	cfg->outbox_retry_min = get_int(ld, g, "outbox", "retry_min", 30, 1, 86400);
	cfg->outbox_retry_max = get_int(ld, g, "outbox", "retry_max", 3600, 1, 7 * 86400);
	if (cfg->outbox_retry_max < cfg->outbox_retry_min)
		load_error(ld, g, "\"outbox.retry_max\" must not be below \"outbox.retry_min\"");
}

/* ---- conversations: secret, staff, cases (casegate.conf(5)) ---- */

static const key_spec staff_keys[] = {
	{ "addresses", K_STRINGS, FALSE },
	{ "domains", K_STRINGS, FALSE },
	{ "authserv_id", K_STR, FALSE },
	{ "require_auth", K_BOOL, FALSE },
	{ "expose_address", K_BOOL, FALSE },
	{ NULL, 0, FALSE },
};

static const key_spec cases_keys[] = {
	{ "reopen_days", K_INT, FALSE },
	{ "status_words", K_STRINGS, FALSE },
	{ NULL, 0, FALSE },
};

/* English and French: what a member may write as the whole subject. */
static const char *const default_status_words[] = {
	"status", "statut", "état", "etat", "état de mes dossiers", "my cases", "mes dossiers",
	NULL,
};

/* The string elements of list or array g, lowercased (casefolded with fold). */
static GPtrArray *
get_strings(loader *ld, const config_setting_t *g, const char *where, const char *name,
    gboolean fold)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	config_setting_t *s;
	int i, n;

	if (g == NULL || (s = config_setting_get_member(g, name)) == NULL ||
	    !kind_matches(K_STRINGS, s))
		return out;
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || *v == '\0' || !g_utf8_validate(v, -1, NULL)) {
			load_error(ld, e, "\"%s.%s\" element %d must be a non-empty string",
			    where, name, i + 1);
			continue;
		}
		g_ptr_array_add(out, fold ? g_utf8_casefold(v, -1) : g_ascii_strdown(v, -1));
	}
	return out;
}

static void
load_staff(loader *ld, config *cfg, const config_setting_t *g)
{
	staff_config *sc = &cfg->staff;
	const char *v;
	guint i;

	if (g != NULL)
		check_group(ld, g, "staff", staff_keys);
	sc->addresses = get_strings(ld, g, "staff", "addresses", FALSE);
	sc->domains = get_strings(ld, g, "staff", "domains", FALSE);
	for (i = 0; i < sc->addresses->len; i++)
		if (!cg_address_valid(g_ptr_array_index(sc->addresses, i)))
			load_error(ld, config_setting_get_member(g, "addresses"),
			    "\"staff.addresses\": \"%s\" is not a valid mail address",
			    (char *)g_ptr_array_index(sc->addresses, i));
	for (i = 0; i < sc->domains->len; i++) {
		const char *d = g_ptr_array_index(sc->domains, i);

		if (!cg_protocol_safe(d, 253) || strchr(d, '@') != NULL || *d == '.')
			load_error(ld, config_setting_get_member(g, "domains"),
			    "\"staff.domains\": \"%s\" is not a domain name", d);
	}
	v = get_str(g, "authserv_id");
	sc->authserv_id = v != NULL && *v != '\0' ? g_strdup(v) : NULL;
	if (sc->authserv_id != NULL && !cg_protocol_safe(sc->authserv_id, 253))
		load_error(ld, config_setting_get_member(g, "authserv_id"),
		    "\"staff.authserv_id\" must be a host name without spaces");
	sc->require_auth = get_bool(g, "require_auth", TRUE);
	sc->expose_address = get_bool(g, "expose_address", FALSE);
	if (sc->require_auth && sc->authserv_id == NULL &&
	    (sc->addresses->len > 0 || sc->domains->len > 0))
		load_error(ld, g, "\"staff.require_auth\" is true (the default) but "
		    "\"staff.authserv_id\" is not set: name the server whose "
		    "Authentication-Results you trust, or set require_auth = false to trust "
		    "From addresses alone");
}

static void
load_cases(loader *ld, config *cfg, const config_setting_t *g)
{
	const char *const *w;

	if (g != NULL)
		check_group(ld, g, "cases", cases_keys);
	cfg->reopen_days = get_int(ld, g, "cases", "reopen_days", 14, 0, 3650);
	if (g != NULL && config_setting_get_member(g, "status_words") != NULL) {
		cfg->status_words = get_strings(ld, g, "cases", "status_words", TRUE);
		return;
	}
	cfg->status_words = g_ptr_array_new_with_free_func(g_free);
	for (w = default_status_words; *w != NULL; w++)
		g_ptr_array_add(cfg->status_words, g_utf8_casefold(*w, -1));
}

/* 32 random bytes as hex into a new file, mode 0600, never over an existing one. */
static gboolean
secret_generate(const char *path, GError **error)
{
	guint8 rnd[32];
	char hex[65];
	ssize_t w;
	int fd, i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "getrandom: %s", g_strerror(errno));
		return FALSE;
	}
	for (i = 0; i < 32; i++)
		g_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	memset(rnd, 0, sizeof(rnd));
	hex[64] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "cannot create %s: %s", path,
		    g_strerror(errno));
		return FALSE;
	}
	w = write(fd, hex, sizeof(hex));
	memset(hex, 0, sizeof(hex));
	if (w != (ssize_t)sizeof(hex) || fsync(fd) == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "cannot write %s: %s", path,
		    g_strerror(errno));
		close(fd);
		unlink(path);
		return FALSE;
	}
	close(fd);
	return TRUE;
}

/*
 * The Message-ID key: gateway.secret_file, by default "secret" beside the
 * database.  A missing file is generated (0600); casectl (SKIP_SECRETS)
 * reads it when it can and never creates it.
 */
static void
load_secret(loader *ld, config *cfg, const config_setting_t *gw)
{
	g_autoptr(GError) err = NULL;
	const char *v = get_str(gw, "secret_file");

	if (v != NULL)
		cfg->secret_file = abs_path(cfg, v);
	else if (cfg->database != NULL) {
		g_autofree char *dir = g_path_get_dirname(cfg->database);

		cfg->secret_file = g_build_filename(dir, "secret", NULL);
	}
	if (cfg->secret_file == NULL)
		return;
	if (ld->flags & CONFIG_SKIP_SECRETS) {
		cfg->secret = config_read_secret(cfg->secret_file, NULL);
		return;
	}
	if (access(cfg->secret_file, F_OK) != 0 && errno == ENOENT &&
	    !secret_generate(cfg->secret_file, &err)) {
		load_error(ld, config_setting_get_member(gw, "secret_file"),
		    "gateway.secret_file: %s", err->message);
		return;
	}
	cfg->secret = config_read_secret(cfg->secret_file, &err);
	if (cfg->secret == NULL)
		load_error(ld, config_setting_get_member(gw, "secret_file"),
		    "gateway.secret_file: %s", err->message);
	else if (strlen(cfg->secret) < 16)
		load_error(ld, config_setting_get_member(gw, "secret_file"),
		    "gateway.secret_file %s: the secret must be at least 16 characters",
		    cfg->secret_file);
}

static void
load_conversations(loader *ld, config *cfg, const config_setting_t *root)
{
	config_setting_t *gw = config_setting_get_member(root, "gateway");
	config_setting_t *g;

	if (gw != NULL && !config_setting_is_group(gw))
		gw = NULL;
	cfg->plus_addressing = get_bool(gw, "plus_addressing", FALSE);
	load_secret(ld, cfg, gw);
	g = config_setting_get_member(root, "staff");
	load_staff(ld, cfg, g != NULL && config_setting_is_group(g) ? g : NULL);
	g = config_setting_get_member(root, "cases");
	load_cases(ld, cfg, g != NULL && config_setting_is_group(g) ? g : NULL);
}

/* Read the file; on failure report where and why, as libconfig knows it. */
static gboolean
read_file(loader *ld, config_t *cf, const char *path)
{
	FILE *fp;

	fp = fopen(path, "r");
	if (fp == NULL) {
		g_ptr_array_add(ld->errors, g_strdup_printf("%s: cannot open: %s", path,
		    g_strerror(errno)));
		return FALSE;
	}
	fclose(fp);
	if (config_read_file(cf, path) == CONFIG_TRUE)
		return TRUE;
	if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
		g_ptr_array_add(ld->errors, g_strdup_printf("%s: cannot read: %s", path,
		    config_error_text(cf)));
	else
		g_ptr_array_add(ld->errors, g_strdup_printf("%s:%d: %s",
		    config_error_file(cf) ? config_error_file(cf) : path,
		    config_error_line(cf), config_error_text(cf)));
	return FALSE;
}

/*
 * Mail hygiene: "limits", "guard" and "spam" (casegate.conf(5)).  Every
 * setting has a default, so a config without these groups is valid.
 */
static const key_spec limits_keys[] = {
	{ "max_message_size", K_INT, FALSE },
	{ "max_attachment_size", K_INT, FALSE },
	{ "max_attachments", K_INT, FALSE },
	{ "max_mime_depth", K_INT, FALSE },
	{ "max_parts", K_INT, FALSE },
	{ NULL, 0, FALSE },
};

static const key_spec guard_keys[] = {
	{ "autoreply_per_day", K_INT, FALSE },
	{ "bounce_limit", K_INT, FALSE },
	{ "bounce_window_days", K_INT, FALSE },
	{ "suppress_days", K_INT, FALSE },
	{ "blocked_senders", K_STRINGS, FALSE },
	{ NULL, 0, FALSE },
};

static const key_spec spam_keys[] = {
	{ "header", K_STR, FALSE },
	{ "score_header", K_STR, FALSE },
	{ "threshold", K_NUM, FALSE },
	{ NULL, 0, FALSE },
};

/* A member group of root when it is a group (its type error is reported elsewhere). */
static config_setting_t *
subgroup(loader *ld, config_setting_t *root, const char *name, const key_spec *spec)
{
	config_setting_t *g = config_setting_get_member(root, name);

	if (g == NULL || !config_setting_is_group(g))
		return NULL;
	check_group(ld, g, name, spec);
	return g;
}

/* A header name as RFC 5322 allows it: printable ASCII without ':' or space. */
static gboolean
header_name_ok(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 76)
		return FALSE;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 127 || *s == ':')
			return FALSE;
	return TRUE;
}

static void
load_spam(loader *ld, config *cfg, config_setting_t *g)
{
	guard_config *gc = &cfg->guard;
	const char *v;
	double d;

	v = get_str(g, "header");
	gc->spam_header = g_strdup(v != NULL ? v : "X-Spam-Flag");
	v = get_str(g, "score_header");
	gc->spam_score_header = g_strdup(v);
	if (!header_name_ok(gc->spam_header))
		load_error(ld, config_setting_get_member(g, "header"),
		    "\"spam.header\" must be a header name such as \"X-Spam-Flag\"");
	if (gc->spam_score_header != NULL && !header_name_ok(gc->spam_score_header))
		load_error(ld, config_setting_get_member(g, "score_header"),
		    "\"spam.score_header\" must be a header name such as \"X-Spam-Score\"");
	gc->spam_threshold = 5.0;
	if (g != NULL && config_setting_get_member(g, "threshold") != NULL) {
		config_setting_t *s = config_setting_get_member(g, "threshold");

		if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
			d = config_setting_get_float(s);
		else if (config_setting_type(s) == CONFIG_TYPE_INT64)
			d = (double)config_setting_get_int64(s);
		else
			d = config_setting_get_int(s);
		if (d < -1000 || d > 1000)
			load_error(ld, s, "\"spam.threshold\" must be between -1000 and 1000");
		else
			gc->spam_threshold = d;
	}
}

static void
load_hygiene(loader *ld, config *cfg, config_setting_t *root)
{
	limits_config *l = &cfg->limits;
	guard_config *gc = &cfg->guard;
	config_setting_t *g;
	guint i;

	g = subgroup(ld, root, "limits", limits_keys);
	l->max_message_size = get_int(ld, g, "limits", "max_message_size", 50 << 20, 0, 1 << 30);
	l->max_attachment_size = get_int(ld, g, "limits", "max_attachment_size", 25 << 20, 0,
	    1 << 30);
	l->max_attachments = get_int(ld, g, "limits", "max_attachments", 100, 0, 1000);
	l->max_mime_depth = get_int(ld, g, "limits", "max_mime_depth", 20, 0, 64);
	l->max_parts = get_int(ld, g, "limits", "max_parts", 500, 0, 10000);

	g = subgroup(ld, root, "guard", guard_keys);
	gc->autoreply_per_day = get_int(ld, g, "guard", "autoreply_per_day", 5, 0, 1000);
	gc->bounce_limit = get_int(ld, g, "guard", "bounce_limit", 3, 0, 100);
	gc->bounce_window_days = get_int(ld, g, "guard", "bounce_window_days", 7, 1, 365);
	gc->suppress_days = get_int(ld, g, "guard", "suppress_days", 30, 0, 3650);
	gc->blocked_senders = get_strings(ld, g, "guard", "blocked_senders", FALSE);
	for (i = 0; i < gc->blocked_senders->len; i++) {
		const char *p = g_ptr_array_index(gc->blocked_senders, i);

		if (strchr(p, '@') == NULL || strpbrk(p, " \t\r\n<>") != NULL)
			load_error(ld, config_setting_get_member(g, "blocked_senders"),
			    "\"guard.blocked_senders\": \"%s\" must be an address or a pattern "
			    "like \"*@example.com\"", p);
	}

	load_spam(ld, cfg, subgroup(ld, root, "spam", spam_keys));
}

config *
config_load(const char *path, GPtrArray *errors)
{
	return config_load_flags(path, 0, errors);
}

config *
config_load_flags(const char *path, int flags, GPtrArray *errors)
{
	g_auto(config_t) cfs = { 0 };
	config_t *cf = &cfs;
	g_autoptr(config) cfg = g_new0(config, 1);
	loader ld = { path, errors, flags };
	config_setting_t *root, *g;
	guint before = errors->len;

	config_init(cf);
	cfg->path = g_strdup(path);
	cfg->dir = g_path_get_dirname(path);
	if (!g_path_is_absolute(cfg->dir)) {
		g_autofree char *cwd = g_get_current_dir();
		char *d = g_build_filename(cwd, cfg->dir, NULL);

		g_free(cfg->dir);
		cfg->dir = d;
	}
	config_set_include_dir(cf, cfg->dir);
	if (!read_file(&ld, cf, path))
		return NULL;

	root = config_root_setting(cf);
	check_group(&ld, root, "", root_keys);
	if ((g = config_setting_get_member(root, "gateway")) != NULL &&
	    config_setting_is_group(g)) {
		check_group(&ld, g, "gateway", gateway_keys);
		load_gateway(&ld, cfg, g);
	}
	load_mailboxes(&ld, cfg, root);
	if ((g = config_setting_get_member(root, "smtp")) != NULL &&
	    config_setting_is_group(g)) {
		check_group(&ld, g, "smtp", smtp_keys);
		load_endpoint(&ld, cfg, g, "smtp", &cfg->smtp, FALSE);
		/* see casegate.conf(5): Postfix's fsync before each 250 is the limit */
		cfg->smtp_connections = get_int(&ld, g, "smtp", "connections", 2, 1, 8);
	}
	g = config_setting_get_member(root, "outbox");
	if (g != NULL && config_setting_is_group(g))
		check_group(&ld, g, "outbox", outbox_keys);
	else
		g = NULL;
	load_outbox(&ld, cfg, g);
	load_language(&ld, cfg, root);
	load_paths(&ld, cfg, root);
	load_conversations(&ld, cfg, root);
	load_hygiene(&ld, cfg, root);

	if (errors->len > before)
		return NULL;
	return g_steal_pointer(&cfg);
}

void
config_free(config *cfg)
{
	if (cfg == NULL)
		return;
	g_free(cfg->path);
	g_free(cfg->dir);
	g_free(cfg->address);
	g_free(cfg->name);
	g_free(cfg->domain);
	g_free(cfg->case_prefix);
	if (cfg->mailboxes != NULL)
		g_ptr_array_free(cfg->mailboxes, TRUE);
	endpoint_clear(&cfg->smtp);
	g_free(cfg->database);
	g_free(cfg->spool);
	g_free(cfg->rules);
	g_free(cfg->templates);
	g_free(cfg->language);
	g_free(cfg->secret_file);
	wipe_free(cfg->secret);
	g_clear_pointer(&cfg->staff.addresses, g_ptr_array_unref);
	g_clear_pointer(&cfg->staff.domains, g_ptr_array_unref);
	g_free(cfg->staff.authserv_id);
	g_clear_pointer(&cfg->status_words, g_ptr_array_unref);
	g_clear_pointer(&cfg->guard.blocked_senders, g_ptr_array_unref);
	g_free(cfg->guard.spam_header);
	g_free(cfg->guard.spam_score_header);
	g_free(cfg);
}

char *
config_read_secret(const char *path, GError **error)
{
	g_autofree char *cred = NULL;
	struct stat sb;
	char buf[4096];
	ssize_t n;
	int fd;
	char *secret;

	/* "credential:NAME": systemd's LoadCredential=, in $CREDENTIALS_DIRECTORY */
	if (g_str_has_prefix(path, CONFIG_CREDENTIAL_PREFIX)) {
		const char *name = path + strlen(CONFIG_CREDENTIAL_PREFIX);
		const char *dir = getenv("CREDENTIALS_DIRECTORY");

		if (*name == '\0' || strchr(name, '/') != NULL || strcmp(name, "..") == 0) {
			g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
			    "%s: a credential name must not be empty or contain '/'", path);
			return NULL;
		}
		if (dir == NULL) {
			g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
			    "%s: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)",
			    path);
			return NULL;
		}
		path = cred = g_build_filename(dir, name, NULL);
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "%s: %s", path, g_strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (sb.st_mode & 077) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s is readable by group or others (mode %04o); run chmod 600 %s",
		    path, (unsigned)(sb.st_mode & 07777), path);
		close(fd);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n == (ssize_t)sizeof(buf)) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "%s: %s", path,
		    n < 0 ? g_strerror(errno) : "secret longer than 4095 bytes");
		memset(buf, 0, sizeof(buf));
		return NULL;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(buf, '\0', n) != NULL || memchr(buf, '\n', n) != NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG,
		    "%s: the secret must be one non-empty line", path);
		memset(buf, 0, sizeof(buf));
		return NULL;
	}
	secret = g_strndup(buf, n);
	memset(buf, 0, sizeof(buf));
	return secret;
}

char *
config_case_id(const config *cfg, gint64 number)
{
	return g_strdup_printf("%s%0*" G_GINT64_FORMAT, cfg->case_prefix, cfg->case_digits,
	    number);
}

gint64
config_case_number(const config *cfg, const char *public_id)
{
	size_t plen = strlen(cfg->case_prefix);
	const char *p;
	gint64 n = 0;

	if (public_id == NULL || g_ascii_strncasecmp(public_id, cfg->case_prefix, plen) != 0)
		return 0;
	p = public_id + plen;
	if (*p == '\0' || strlen(p) > 18)
		return 0;
	for (; *p != '\0'; p++) {
		if (!g_ascii_isdigit(*p))
			return 0;
		n = n * 10 + (*p - '0');
	}
	return n;
}
