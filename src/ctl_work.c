/*
 * ctl_work.c - staff work a case from casectl: resolve, reopen, note,
 * reply, set-type, assign.
 *
 * Rationale:
 * - Each change is one transaction that also records an event naming
 *   who did it (ctl_actor), so the audit trail cannot miss a change.
 * - Mail to the member is composed here but goes through the same
 *   outbox as the daemon's, so casegated delivers it with retries.
 * - Types and teams are checked against the rules the daemon uses, so
 *   a case never holds one the rules do not know.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "ctl.h"
#include "lang.h"
#include "members.h"
#include "outbox.h"
#include "report.h"
#include "spool.h"

#define REPLY_MAX	(1024 * 1024)	/* bytes of text a reply may have */

/* A case ID for an error message: control characters escaped, cut short. */
static char *
ctl_shown_id(const char *id)
{
	g_autofree char *esc = g_strescape(id, NULL);

	if (strlen(esc) > 40)
		return g_strdup_printf("%.40s...", esc);
	return g_steal_pointer(&esc);
}

/*
 * Find a case by public ID ("CASE-000123", any case) or by number
 * ("123").  Returns 0 and *k_r, CTL_EX_NOCASE with a message, or another
 * exit status on a database error.
 */
static int
ctl_find_case(ctl *c, const char *id, store_case **k_r)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *shown = NULL, *example = NULL;
	store_case *k = NULL;
	char *end;
	gint64 n;

	*k_r = NULL;
	if (*id != '\0' && strspn(id, "0123456789") == strlen(id) && strlen(id) <= 18) {
		n = g_ascii_strtoll(id, &end, 10);
		if (n > 0)
			k = store_case_get(c->st, n, &err);
	} else {
		k = store_case_get_public(c->st, id, &err);
	}
	if (err != NULL)
		return ctl_store_failed(err);
	if (k == NULL) {
		shown = ctl_shown_id(id);
		example = config_case_id(c->cfg, 123);
		fprintf(stderr, "casectl: no case \"%s\" (case IDs look like %s, or give the "
		    "number: 123)\n", shown, example);
		return CTL_EX_NOCASE;
	}
	*k_r = k;
	return 0;
}

/* Open read-write, start a transaction and load the case. */
static int
ctl_begin_case(ctl *c, const char *id, store_case **k_r)
{
	g_autoptr(GError) err = NULL;
	int rc;

	if ((rc = ctl_open_store_rw(c)) != 0)
		return rc;
	if (!store_begin(c->st, &err))
		return ctl_store_failed(err);
	if ((rc = ctl_find_case(c, id, k_r)) != 0)
		store_rollback(c->st);
	return rc;
}

/*
 * In-Reply-To and References for mail to the member about case k:
 * answer the member's last message that has a Message-ID (else the last
 * message of the case that has one); References are the case's ids up
 * to it, oldest first.  *irt_r is NULL when nothing can be threaded.
 */
static gboolean
case_thread(ctl *c, const store_case *k, char **irt_r, GPtrArray **refs_r, GError **error)
{
	g_autoptr(GPtrArray) msgs = store_case_messages(c->st, k->id, error);
	g_autoptr(GPtrArray) refs = g_ptr_array_new_with_free_func(g_free);
	gint last = -1, any = -1, i;

	*irt_r = NULL;
	*refs_r = NULL;
	if (msgs == NULL)
		return FALSE;
	for (i = 0; i < (gint)msgs->len; i++) {
		const store_message *m = g_ptr_array_index(msgs, i);

		if (m->message_id == NULL || *m->message_id == '\0')
			continue;
		any = i;
		if (strcmp(m->direction, "in") == 0 && m->from_addr != NULL &&
		    g_ascii_strcasecmp(m->from_addr, k->member) == 0)
			last = i;
	}
	if (last < 0)
		last = any;
	if (last < 0)
		return TRUE;
	for (i = 0; i < last; i++) {
		const store_message *m = g_ptr_array_index(msgs, i);

		if (m->message_id != NULL && *m->message_id != '\0')
			g_ptr_array_add(refs, g_strdup(m->message_id));
	}
	*irt_r = g_strdup(((store_message *)g_ptr_array_index(msgs, last))->message_id);
	*refs_r = g_steal_pointer(&refs);
	return TRUE;
}

/* Queue mail of kind with text to the case's member, threaded; outbox id or 0. */
static gint64
queue_to_member(ctl *c, const store_case *k, const char *kind, const char *from_name,
    const char *subject, const char *text, const char *auto_submitted, const char *role,
    GError **error)
{
	g_autoptr(spool) sp = NULL;
	g_autoptr(GPtrArray) refs = NULL;
	g_autofree char *irt = NULL;
	outbox_mail m = { 0 };

	if ((sp = spool_open(c->cfg->spool, error)) == NULL)
		return 0;
	if (!case_thread(c, k, &irt, &refs, error))
		return 0;
	m.c = k;
	m.kind = kind;
	m.to_addr = k->member;
	m.to_name = k->member_name;
	m.from_name = from_name;
	m.subject = subject;
	m.text = text;
	m.in_reply_to = irt;
	m.references = refs;
	m.auto_submitted = auto_submitted;
	m.role = role;
	return outbox_queue_mail(c->cfg, c->st, sp, &m, error);
}


/* The {{placeholders}} of mail to the member of case k, written in lang. */
static GHashTable *
member_vars(ctl *c, const store_case *k, const char *lang)
{
	GHashTable *v = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

	g_hash_table_insert(v, "case_id", g_strdup(k->public_id));
	g_hash_table_insert(v, "subject", g_strdup(k->subject));
	g_hash_table_insert(v, "member_name", g_strdup(k->member_name != NULL &&
	    *k->member_name != '\0' ? k->member_name : k->member));
	g_hash_table_insert(v, "type", k->type == NULL && g_strcmp0(lang, "fr") == 0 ?
	    g_strdup("pas encore classée") : ctl_type_line(k->type, k->sub_type, k->update_type));
	g_hash_table_insert(v, "team", g_strdup(k->team != NULL ? k->team : c->cfg->name));
	g_hash_table_insert(v, "status", g_strdup(lang_status_label(lang, k->status)));
	g_hash_table_insert(v, "member", g_strdup(k->member));
	g_hash_table_insert(v, "member_number", g_strdup(k->member_number != NULL ?
	    k->member_number : "-"));
	g_hash_table_insert(v, "gateway_name", g_strdup(c->cfg->name));
	g_hash_table_insert(v, "gateway_address", g_strdup(c->cfg->address));
	return v;
}

/*
 * The text (and the template's subject, if it has one) of mail to the
 * member of case k from template name, in the member's language.
 */
static char *
member_text(ctl *c, const store_case *k, const char *name, char **subject_r,
    GError **error)
{
	const char *lang = members_case_lang(c->cfg, c->st, k);
	g_autoptr(GHashTable) v = member_vars(c, k, lang);

	return outbox_render_lang(c->cfg, lang, name, v, subject_r, error);
}

/* resolve/reopen: set status, record it, tell the member on resolve. */
static int
set_status(ctl *c, const char *id, const char *status, gboolean notice)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *actor = ctl_actor(), *text = NULL, *subject = NULL;
	gboolean resolve = strcmp(status, CASE_RESOLVED) == 0, ok;
	gint64 ob = 0;
	int rc;

	if ((rc = ctl_begin_case(c, id, &k)) != 0)
		return rc;
	if (strcmp(k->status, status) == 0) {
		store_rollback(c->st);
		printf("%s is already %s; nothing changed\n", k->public_id, status);
		return 0;
	}
	ok = store_case_set_status(c->st, k->id, status, &err) &&
	    store_event_add(c->st, k->id, resolve ? "resolved" : "reopened", actor, NULL, &err);
	if (ok && resolve && notice) {
		ok = (text = member_text(c, k, "resolved.txt", &subject, &err)) != NULL &&
		    (ob = queue_to_member(c, k, "resolved", NULL, subject, text, "auto-generated",
		    "gateway", &err)) != 0;
	}
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	if (ob != 0)
		printf("%s: %s; notice to %s queued (outbox %" G_GINT64_FORMAT ")\n",
		    k->public_id, status, k->member, ob);
	else
		printf("%s: %s\n", k->public_id, status);
	return 0;
}

int
ctl_cmd_resolve(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-notice", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	gboolean notice = TRUE;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'n')
			ctl_usage();
		notice = FALSE;
	}
	if (optind != argc - 1)
		ctl_usage();
	return set_status(c, argv[optind], CASE_RESOLVED, notice);
}

int
ctl_cmd_reopen(ctl *c, int argc, char **argv)
{
	if (argc != 2)
		ctl_usage();
	return set_status(c, argv[1], CASE_ACTIVE, FALSE);
}

/* Text staff typed: valid UTF-8, not blank, bounded. */
static gboolean
staff_text_ok(const char *what, const char *text, gsize len)
{
	const char *p;

	if (len > REPLY_MAX) {
		fprintf(stderr, "casectl: %s is longer than %d bytes\n", what, REPLY_MAX);
		return FALSE;
	}
	if (memchr(text, '\0', len) != NULL || !g_utf8_validate(text, (gssize)len, NULL)) {
		fprintf(stderr, "casectl: %s is not valid UTF-8 text\n", what);
		return FALSE;
	}
	for (p = text; *p != '\0' && g_ascii_isspace(*p); p++)
		;
	if (*p == '\0') {
		fprintf(stderr, "casectl: %s is empty\n", what);
		return FALSE;
	}
	return TRUE;
}

int
ctl_cmd_note(ctl *c, int argc, char **argv)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *actor = ctl_actor(), *text = NULL;
	gboolean ok;
	int rc;

	if (argc < 3)
		ctl_usage();
	text = g_strjoinv(" ", argv + 2);
	if (!staff_text_ok("the note", text, strlen(text)))
		return CG_EX_DATAERR;
	if ((rc = ctl_begin_case(c, argv[1], &k)) != 0)
		return rc;
	ok = store_event_add(c->st, k->id, "note", actor, text, &err) &&
	    store_case_touch(c->st, k->id, &err);
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: note added\n", k->public_id);
	return 0;
}

/* The reply text: --file F (- is stdin) or the remaining words. */
static char *
reply_text(const char *file, int argc, char **argv, gsize *len_r)
{
	g_autoptr(GError) err = NULL;
	char *text = NULL;

	if (file == NULL) {
		text = g_strjoinv(" ", argv);
		*len_r = strlen(text);
		return text;
	}
	if (strcmp(file, "-") == 0) {
		GString *in = g_string_new(NULL);
		char buf[8192];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0 && in->len <= REPLY_MAX)
			g_string_append_len(in, buf, (gssize)n);
		*len_r = in->len;
		return g_string_free(in, FALSE);
	}
	if (!g_file_get_contents(file, &text, len_r, &err)) {
		fprintf(stderr, "casectl: %s\n", err->message);
		return NULL;
	}
	return text;
}

int
ctl_cmd_reply(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from-name", required_argument, NULL, 'n' },
		{ "file", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *actor = ctl_actor(), *text = NULL, *from = NULL, *detail = NULL;
	const char *name = NULL, *file = NULL, *id;
	gboolean ok;
	gint64 ob = 0;
	gsize len;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'n')
			name = optarg;
		else if (ch == 'F')
			file = optarg;
		else
			ctl_usage();
	}
	if (optind >= argc || (file != NULL) != (optind == argc - 1))
		ctl_usage();
	id = argv[optind];
	if ((text = reply_text(file, argc - optind - 1, argv + optind + 1, &len)) == NULL)
		return CG_EX_NOINPUT;
	if (!staff_text_ok("the reply", text, len))
		return CG_EX_DATAERR;
	if (name != NULL && (!g_utf8_validate(name, -1, NULL) || strlen(name) > 100)) {
		fprintf(stderr, "casectl: --from-name must be UTF-8 text of at most 100 bytes\n");
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_begin_case(c, id, &k)) != 0)
		return rc;
	/* As for relayed staff mail: the person, via the gateway. */
	if (name != NULL && *name != '\0')
		from = g_strdup_printf("%s via %s", name, c->cfg->name);
	detail = g_strdup_printf("to <%s>%s%s", k->member, name != NULL ? " as " : "",
	    name != NULL ? name : "");
	/* the staff member wrote the whole mail here: it goes as written, no relay.txt */
	ok = (ob = queue_to_member(c, k, "reply", from, NULL, text, NULL, "staff", &err)) != 0 &&
	    store_event_add(c->st, k->id, "reply", actor, detail, &err) &&
	    store_case_touch(c->st, k->id, &err);
	if (!ok && err != NULL && err->code == CG_ERROR_PERM) {
		store_rollback(c->st);
		fprintf(stderr, "casectl: %s\n", err->message);
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: reply to %s queued (outbox %" G_GINT64_FORMAT ")\n", k->public_id, k->member,
	    ob);
	return 0;
}

int
ctl_cmd_set_type(ctl *c, int argc, char **argv)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(rules) r = NULL;
	g_autofree char *type = NULL, *sub = NULL, *upd = NULL, *actor = ctl_actor();
	g_autofree char *before = NULL, *after = NULL, *detail = NULL;
	gboolean ok;
	int rc;

	if (argc != 3)
		ctl_usage();
	if (!report_parse_type(argv[2], &type, &sub, &upd)) {
		fprintf(stderr, "casectl: write the type as \"Type\", \"Type / Sub type\" or "
		    "\"Type / Sub type / Update type\"\n");
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_load_config(c)) != 0 || (rc = ctl_rules(c, &r)) != 0)
		return rc;
	if (!rules_taxonomy_valid(r, type, sub, upd, &err)) {
		fprintf(stderr, "casectl: %s: %s\n", c->cfg->rules, err->message);
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_begin_case(c, argv[1], &k)) != 0)
		return rc;
	before = ctl_type_line(k->type, k->sub_type, k->update_type);
	after = ctl_type_line(type, sub, upd);
	detail = g_strdup_printf("%s -> %s", before, after);
	ok = store_case_set_type(c->st, k->id, type, sub, upd, &err) &&
	    store_event_add(c->st, k->id, "type", actor, detail, &err);
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: type %s\n", k->public_id, detail);
	return 0;
}

int
ctl_cmd_assign(ctl *c, int argc, char **argv)
{
	g_autoptr(store_case) k = NULL;
	g_autoptr(GError) err = NULL;
	g_autoptr(rules) r = NULL;
	g_autofree char *actor = ctl_actor(), *detail = NULL;
	gboolean ok;
	int rc;

	if (argc != 3)
		ctl_usage();
	if ((rc = ctl_load_config(c)) != 0 || (rc = ctl_rules(c, &r)) != 0)
		return rc;
	if (!rules_team_valid(r, argv[2], &err)) {
		fprintf(stderr, "casectl: %s: %s\n", c->cfg->rules, err->message);
		return CG_EX_DATAERR;
	}
	if ((rc = ctl_begin_case(c, argv[1], &k)) != 0)
		return rc;
	detail = g_strdup_printf("%s -> %s", k->team != NULL ? k->team : "-", argv[2]);
	ok = store_case_set_team(c->st, k->id, argv[2], &err) &&
	    store_event_add(c->st, k->id, "team", actor, detail, &err);
	if ((rc = ctl_finish(c, ok, err)) != 0)
		return rc;
	printf("%s: team %s\n", k->public_id, detail);
	return 0;
}

