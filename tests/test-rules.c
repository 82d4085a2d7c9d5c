/*
 * test-rules.c - the routing rules: golden files (tests/rules/N.rules
 * against N.ok: the canonical dump, or every error as file:line), one
 * table row per condition, decisions (first match, continue, ignore,
 * default), required fields and their placeholders, explanations, and
 * a throughput figure printed as a diagnostic.
 *
 * Messages are built by hand as mail_msg structs, except for the
 * sample .eml files under tests/rules/msg, which go through mail.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "log.h"
#include "rules.h"
#include "../src/rules_impl.h"	/* rules_needle */

static char *tmpdir;

/* ---------------------------------------------------------------- */
/* Hand-built messages                                              */

typedef struct {
	const char	*from;
	const char	*to[3];
	const char	*subject;
	const char	*text;
	const char	*headers[4];	/* "Name: value" */
	const char	*att[3];	/* "name|content/type" */
	gint64		 size;
} msg_spec;

static void
att_free(mail_attachment *a)
{
	g_free(a->name);
	g_free(a->content_type);
	g_free(a->digest);
	g_free(a);
}

static void
hdr_free(mail_header *h)
{
	g_free(h->name);
	g_free(h->value);
	g_free(h);
}

static mail_msg *
msg_build(const msg_spec *s)
{
	mail_msg *m = g_new0(mail_msg, 1);
	int i;

	m->from_addr = g_strdup(s->from);
	m->to = g_ptr_array_new_with_free_func(g_free);
	m->cc = g_ptr_array_new_with_free_func(g_free);
	m->references = g_ptr_array_new_with_free_func(g_free);
	m->attachments = g_ptr_array_new_with_free_func((GDestroyNotify)att_free);
	m->headers = g_ptr_array_new_with_free_func((GDestroyNotify)hdr_free);
	m->problems = g_ptr_array_new_with_free_func(g_free);
	m->subject = g_strdup(s->subject != NULL ? s->subject : "");
	m->text = g_strdup(s->text != NULL ? s->text : "");
	m->size = s->size != 0 ? s->size : 1000;
	for (i = 0; i < 3 && s->to[i] != NULL; i++)
		g_ptr_array_add(m->to, g_strdup(s->to[i]));
	for (i = 0; i < 4 && s->headers[i] != NULL; i++) {
		mail_header *h = g_new0(mail_header, 1);
		const char *colon = strchr(s->headers[i], ':');

		h->name = g_strndup(s->headers[i], colon - s->headers[i]);
		h->value = g_strdup(colon + 2);
		g_ptr_array_add(m->headers, h);
	}
	for (i = 0; i < 3 && s->att[i] != NULL; i++) {
		mail_attachment *a = g_new0(mail_attachment, 1);
		const char *bar = strchr(s->att[i], '|');

		a->name = g_strndup(s->att[i], bar - s->att[i]);
		a->content_type = g_strdup(bar + 1);
		a->size = 100;
		g_ptr_array_add(m->attachments, a);
	}
	return m;
}

static void
msg_free(mail_msg *m)
{
	g_free(m->from_addr);
	g_free(m->subject);
	g_free(m->text);
	g_ptr_array_unref(m->to);
	g_ptr_array_unref(m->cc);
	g_ptr_array_unref(m->references);
	g_ptr_array_unref(m->attachments);
	g_ptr_array_unref(m->headers);
	g_ptr_array_unref(m->problems);
	g_free(m);
}

/* ---------------------------------------------------------------- */
/* Rules from strings                                               */

#define BASE \
	"teams = ( { name = \"distribution\"; address = \"distribution@example.org\"; },\n" \
	"  { name = \"membership\"; address = \"membership@example.org\"; } );\n" \
	"fields = (\n" \
	"  { name = \"work_titles\"; label = \"Work title(s)\"; pattern = \"(?im)^work titles?:[ \\t]*(.+)$\"; },\n" \
	"  { name = \"platform\"; label = \"Platform or service\"; pattern = \"(?im)^platform:[ \\t]*(.+)$\"; },\n" \
	"  { name = \"dates\"; label = \"Date(s)\"; pattern = \"(?im)^dates?:[ \\t]*(.+)$\"; } );\n" \
	"case_types = (\n" \
	"  { name = \"Royalties\"; sub_types = [ \"Missing Royalties\", \"Statement Question\" ];\n" \
	"    team = \"distribution\"; require = [ \"work_titles\" ]; },\n" \
	"  { name = \"Account Update\"; sub_types = [ \"Member Account\" ];\n" \
	"    update_types = [ \"Address\", \"Banking\" ]; },\n" \
	"  { name = \"Support Request\"; } );\n" \
	"default = { type = \"Support Request\"; team = \"membership\"; tags = [ \"unsorted\" ]; };\n"

static char *
write_file(const char *name, const char *text)
{
	char *path = g_build_filename(tmpdir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	return path;
}

static rules *
load_text(const char *rules_text)
{
	g_autofree char *text = g_strconcat(BASE, rules_text, NULL);
	g_autofree char *path = write_file("t.rules", text);
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	rules *r = rules_load(path, errors);
	guint i;

	for (i = 0; i < errors->len; i++)
		g_test_message("%s", (char *)g_ptr_array_index(errors, i));
	g_assert_nonnull(r);
	return r;
}

static rules *
load_when(const char *when)
{
	g_autofree char *text = g_strdup_printf("rules = ( { name = \"r\"; when = %s;\n"
	    "  then = { type = \"Royalties\"; sub_type = \"Missing Royalties\"; }; } );\n", when);

	return load_text(text);
}

static gboolean
has_line(GPtrArray *lines, const char *needle)
{
	guint i;

	for (i = 0; lines != NULL && i < lines->len; i++)
		if (strstr(g_ptr_array_index(lines, i), needle) != NULL)
			return TRUE;
	return FALSE;
}

static void
dump_explain(const rules_decision *d)
{
	guint i;

	for (i = 0; d->explain != NULL && i < d->explain->len; i++)
		g_test_message("  %s", (char *)g_ptr_array_index(d->explain, i));
}

/* ---------------------------------------------------------------- */
/* One row per condition                                            */

typedef struct {
	const char	*what;
	const char	*when;
	msg_spec	 msg;
	const char	*recipient;
	gboolean	 match;
} cond_row;

static const cond_row cond_rows[] = {
	{ "from glob", "{ from = \"*@example.net\"; }",
	    { .from = "jane@example.net" }, NULL, TRUE },
	{ "from glob, other domain", "{ from = \"*@example.net\"; }",
	    { .from = "jane@example.com" }, NULL, FALSE },
	{ "from glob, case", "{ from = \"JANE@*\"; }",
	    { .from = "Jane@example.net" }, NULL, TRUE },
	{ "from, no sender", "{ from = \"*\"; }",
	    { .from = NULL }, NULL, FALSE },
	{ "from list", "{ from = [ \"a@x.org\", \"b@y.org\" ]; }",
	    { .from = "b@y.org" }, NULL, TRUE },
	{ "from_domain", "{ from_domain = \"example.net\"; }",
	    { .from = "jane@example.net" }, NULL, TRUE },
	{ "from_domain subdomain glob", "{ from_domain = \"*.example.net\"; }",
	    { .from = "jane@mail.example.net" }, NULL, TRUE },
	{ "from_domain not a suffix", "{ from_domain = \"example.net\"; }",
	    { .from = "jane@badexample.net" }, NULL, FALSE },
	{ "recipient given", "{ recipient = \"royalties@*\"; }",
	    { .to = { "members@example.org" } }, "royalties@example.org", TRUE },
	{ "recipient given wins over To", "{ recipient = \"royalties@*\"; }",
	    { .to = { "royalties@example.org" } }, "members@example.org", FALSE },
	{ "recipient from To", "{ recipient = \"royalties@example.org\"; }",
	    { .to = { "someone@else.org", "Royalties@Example.org" } }, NULL, TRUE },
	{ "recipient from Delivered-To", "{ recipient = \"royalties@*\"; }",
	    { .headers = { "Delivered-To: royalties@example.org" } }, NULL, TRUE },
	{ "subject", "{ subject = \"(?i)missing royalt\"; }",
	    { .subject = "Missing royalties for Q3" }, NULL, TRUE },
	{ "subject is case-sensitive without nocase", "{ subject = \"missing royalt\"; }",
	    { .subject = "Missing royalties for Q3" }, NULL, FALSE },
	{ "subject nocase", "{ subject = \"missing royalt\"; nocase = true; }",
	    { .subject = "MISSING ROYALTIES" }, NULL, TRUE },
	{ "subject list", "{ subject = [ \"nothing\", \"Q3\" ]; }",
	    { .subject = "Missing royalties for Q3" }, NULL, TRUE },
	{ "body", "{ body = \"not (been )?paid\"; }",
	    { .text = "Hello,\nI have not been paid.\n" }, NULL, TRUE },
	{ "body no match", "{ body = \"not (been )?paid\"; }",
	    { .text = "Hello,\nI was paid.\n" }, NULL, FALSE },
	{ "header with pattern", "{ header = { name = \"X-Portal\"; pattern = \"^case$\"; }; }",
	    { .headers = { "x-portal: case" } }, NULL, TRUE },
	{ "header pattern no match", "{ header = { name = \"X-Portal\"; pattern = \"^case$\"; }; }",
	    { .headers = { "X-Portal: other" } }, NULL, FALSE },
	{ "header second occurrence", "{ header = { name = \"Received\"; pattern = \"mx2\"; }; }",
	    { .headers = { "Received: from mx1", "Received: from mx2" } }, NULL, TRUE },
	{ "header present", "{ header = { name = \"List-Id\"; }; }",
	    { .headers = { "List-Id: <news.example.org>" } }, NULL, TRUE },
	{ "header absent", "{ header = { name = \"List-Id\"; }; }",
	    { .headers = { "Subject: hi" } }, NULL, FALSE },
	{ "attachment present", "{ attachment = true; }",
	    { .att = { "works.pdf|application/pdf" } }, NULL, TRUE },
	{ "attachment present, none", "{ attachment = true; }",
	    { .text = "no files" }, NULL, FALSE },
	{ "attachment absent", "{ attachment = false; }",
	    { .text = "no files" }, NULL, TRUE },
	{ "attachment name glob, case", "{ attachment_name = \"*.pdf\"; }",
	    { .att = { "logo.png|image/png", "Works.PDF|application/pdf" } }, NULL, TRUE },
	{ "attachment name glob no match", "{ attachment_name = \"*cue*sheet*\"; }",
	    { .att = { "works.pdf|application/pdf" } }, NULL, FALSE },
	{ "attachment type", "{ attachment_type = \"application/pdf\"; }",
	    { .att = { "works.pdf|application/pdf" } }, NULL, TRUE },
	{ "attachment type glob", "{ attachment_type = \"image/*\"; }",
	    { .att = { "works.pdf|application/pdf" } }, NULL, FALSE },
	{ "size over", "{ size_over = \"10k\"; }",
	    { .size = 20000 }, NULL, TRUE },
	{ "size over, equal", "{ size_over = 10240; }",
	    { .size = 10240 }, NULL, FALSE },
	{ "size under", "{ size_under = \"1M\"; }",
	    { .size = 20000 }, NULL, TRUE },
	{ "size under, 64-bit", "{ size_under = 3000000000L; }",
	    { .size = 2999999999LL }, NULL, TRUE },
	{ "group means all", "{ from = \"*@example.net\"; subject = \"Q3\"; }",
	    { .from = "a@example.net", .subject = "Q4" }, NULL, FALSE },
	{ "all", "{ all = ( { from = \"*@example.net\"; }, { subject = \"Q3\"; } ); }",
	    { .from = "a@example.net", .subject = "Q3" }, NULL, TRUE },
	{ "any", "{ any = ( { from = \"*@example.com\"; }, { subject = \"Q3\"; } ); }",
	    { .from = "a@example.net", .subject = "Q3" }, NULL, TRUE },
	{ "any, none", "{ any = ( { from = \"*@example.com\"; }, { subject = \"Q4\"; } ); }",
	    { .from = "a@example.net", .subject = "Q3" }, NULL, FALSE },
	{ "not", "{ not = { attachment = true; }; }",
	    { .text = "x" }, NULL, TRUE },
	{ "not, negated", "{ not = { subject = \"Q3\"; }; }",
	    { .subject = "Q3" }, NULL, FALSE },
	{ "nested all/any/not",
	    "{ any = ( { all = ( { subject = \"(?i)royalt\"; }, { not = { from_domain = \"spam.example\"; }; } ); },"
	    " { recipient = \"royalties@*\"; } ); }",
	    { .from = "a@example.net", .subject = "Royalties?" }, NULL, TRUE },
	{ "nested all/any/not, excluded",
	    "{ any = ( { all = ( { subject = \"(?i)royalt\"; }, { not = { from_domain = \"spam.example\"; }; } ); },"
	    " { recipient = \"royalties@*\"; } ); }",
	    { .from = "a@spam.example", .subject = "Royalties?", .to = { "members@example.org" } },
	    NULL, FALSE },
	{ "nocase inherited into any", "{ nocase = true; any = ( { subject = \"q3\"; } ); }",
	    { .subject = "Q3" }, NULL, TRUE },
	{ "nocase switched off inside", "{ nocase = true; any = ( { subject = \"q3\"; nocase = false; } ); }",
	    { .subject = "Q3" }, NULL, FALSE },
	{ "French accents, nocase", "{ subject = \"déménag\"; nocase = true; }",
	    { .subject = "DÉMÉNAGEMENT au 1er juillet" }, NULL, TRUE },
	{ "French accents, (?i)", "{ subject = \"(?i)RÉPARTITION\"; }",
	    { .subject = "question sur la répartition" }, NULL, TRUE },
	{ "French accents without nocase", "{ subject = \"déménag\"; }",
	    { .subject = "DÉMÉNAGEMENT" }, NULL, FALSE },
	{ "word boundary with accents (UCP)", "{ subject = \"(?i)\\\\bété\\\\b\"; }",
	    { .subject = "pas ÉTÉ payé" }, NULL, TRUE },
	{ "invalid UTF-8 subject still matches", "{ subject = \"(?i)missing royalt\"; }",
	    { .subject = "Missing \xff\xfe royalties? no: Missing royalties" }, NULL, TRUE },
	{ "invalid UTF-8 body still matches", "{ body = \"not paid\"; }",
	    { .text = "caf\xe9 \xc3 not paid \x80" }, NULL, TRUE },
	/* Globs are checked by their literal ends first (glob_lit). */
	{ "glob ?, one character", "{ from = \"?@x.org\"; }",
	    { .from = "a@x.org" }, NULL, TRUE },
	{ "glob ?, not two", "{ from = \"?@x.org\"; }",
	    { .from = "ab@x.org" }, NULL, FALSE },
	{ "glob ?, one UTF-8 character", "{ from = \"jos?@x.org\"; }",
	    { .from = "jos\xc3\xa9@x.org" }, NULL, TRUE },
	{ "glob without wildcard is exact", "{ from = \"jane@example.net\"; }",
	    { .from = "jane@example.net.evil" }, NULL, FALSE },
	{ "glob ends overlap", "{ from = \"ab*ba\"; }",
	    { .from = "aba" }, NULL, FALSE },
	{ "glob ends meet", "{ from = \"ab*ba\"; }",
	    { .from = "abba" }, NULL, TRUE },
	{ "glob star in the middle", "{ from = \"a*z@x.org\"; }",
	    { .from = "abcz@x.org" }, NULL, TRUE },
	{ "glob ? before the suffix", "{ from = \"*?@x.org\"; }",
	    { .from = "@x.org" }, NULL, FALSE },
	{ "glob upper case in the address", "{ recipient = \"box7@*\"; }",
	    { .to = { "BOX7@Example.org" } }, NULL, TRUE },
	{ "glob on a dotted I (Unicode lowercase)", "{ from = \"i\xcc\x87nfo@*\"; }",
	    { .from = "\xc4\xb0NFO@x.org" }, NULL, TRUE },
	/* Header conditions go through an index of names. */
	{ "header name case, both ways", "{ header = { name = \"x-PORTAL\"; pattern = \"^case$\"; }; }",
	    { .headers = { "X-Portal: case" } }, NULL, TRUE },
	{ "two header names in one rule",
	    "{ header = { name = \"X-A\"; pattern = \"a\"; }; any = ( { header = { name = \"X-B\"; }; } ); }",
	    { .headers = { "X-B: b", "X-A: a" } }, NULL, TRUE },
	{ "two header names, one missing",
	    "{ header = { name = \"X-A\"; pattern = \"a\"; }; any = ( { header = { name = \"X-C\"; }; } ); }",
	    { .headers = { "X-B: b", "X-A: a" } }, NULL, FALSE },
	{ "header, third occurrence", "{ header = { name = \"Received\"; pattern = \"mx3\"; }; }",
	    { .headers = { "Received: from mx1", "X-Other: mx3", "Received: from mx2", "received: mx3" } },
	    NULL, TRUE },
	{ "header of another name does not count", "{ header = { name = \"Received\"; pattern = \"mx3\"; }; }",
	    { .headers = { "Received: from mx1", "X-Received: mx3" } }, NULL, FALSE },
	/* Prefilter traps: each must still match. */
	{ "alternation, nocase", "{ subject = \"\\\\b(?:urgent|asap)\\\\b\"; nocase = true; }",
	    { .subject = "Reply ASAP please" }, NULL, TRUE },
	{ "alternation, no branch there", "{ subject = \"\\\\b(?:urgent|asap)\\\\b\"; nocase = true; }",
	    { .subject = "Reply soon please" }, NULL, FALSE },
	{ "KELVIN SIGN matches k caselessly", "{ subject = \"(?i)kelvin\"; }",
	    { .subject = "\xe2\x84\xaa" "ELVIN" }, NULL, TRUE },
	{ "LONG S matches s caselessly", "{ subject = \"sums\"; nocase = true; }",
	    { .subject = "\xc5\xbfUM\xc5\xbf" }, NULL, TRUE },
	{ "LONG S in an alternation", "{ body = \"(?i)\\\\b(?:stat|asap)\\\\b\"; }",
	    { .text = "hello\n\xc5\xbftat\n" }, NULL, TRUE },
	{ "KELVIN SIGN in a class", "{ subject = \"(?i)[kq]ey\"; }",
	    { .subject = "the \xe2\x84\xaa" "ey" }, NULL, TRUE },
	{ "LONG S without caseless is not s", "{ subject = \"sum\"; }",
	    { .subject = "\xc5\xbfum" }, NULL, FALSE },
	{ "class, nocase", "{ subject = \"licen[cs]e\"; nocase = true; }",
	    { .subject = "LICENSE" }, NULL, TRUE },
	{ "optional letter", "{ subject = \"colou?r pens\"; }",
	    { .subject = "color pens" }, NULL, TRUE },
	{ "accents, case-sensitive alternation", "{ subject = \"(?:\xc3\xa9t\xc3\xa9|hiver) pay\"; }",
	    { .subject = "\xc3\xa9t\xc3\xa9 pay\xc3\xa9" }, NULL, TRUE },
	{ "accents, caseless alternation", "{ subject = \"(?i)(?:\xc3\xa9t\xc3\xa9|hiver) pay\"; }",
	    { .subject = "\xc3\x89T\xc3\x89 PAY\xc3\x89" }, NULL, TRUE },
	{ "escapes: hex, dot, class", "{ subject = \"\\\\x41bc\\\\.[d]ef\"; }",
	    { .subject = "xAbc.def" }, NULL, TRUE },
	{ "backreference", "{ subject = \"(?i)(abc)-\\\\1\"; }",
	    { .subject = "ABC-abc" }, NULL, TRUE },
	{ "lookahead holds no needle", "{ subject = \"ab(?=cde)\"; }",
	    { .subject = "abcde" }, NULL, TRUE },
	{ "repeat", "{ subject = \"(?:ab){2}c\"; }",
	    { .subject = "xababcx" }, NULL, TRUE },
	{ "needle across the middle of a long body", "{ body = \"(?i)middle needle\"; }",
	    { .text = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa MIDDLE NEEDLE "
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" },
	    NULL, TRUE },
};

static void
test_conditions(void)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(cond_rows); i++) {
		const cond_row *row = &cond_rows[i];
		g_autoptr(rules) r = load_when(row->when);
		mail_msg *m = msg_build(&row->msg);
		g_autoptr(rules_decision) d = rules_classify(r, m, row->recipient, TRUE);
		gboolean matched = strcmp(d->type, "Royalties") == 0;

		if (matched != row->match) {
			g_test_message("row \"%s\": %s", row->what, row->when);
			dump_explain(d);
		}
		g_assert_cmpint(matched, ==, row->match);
		/* An explanation names the rule when it matched. */
		g_assert_cmpint(has_line(d->explain, "rule \"r\" ("), ==, row->match);
		msg_free(m);
	}
}

/* ---------------------------------------------------------------- */
/* Decisions                                                        */

static const char decide_rules[] =
	"rules = (\n"
	"  { name = \"lists\"; when = { header = { name = \"List-Id\"; }; };\n"
	"    then = { ignore = \"mailing list\"; }; },\n"
	"  { name = \"urgent\"; when = { subject = \"(?i)urgent\"; };\n"
	"    then = { priority = \"high\"; tags = [ \"urgent\" ]; continue = true; }; },\n"
	"  { name = \"vip\"; when = { from_domain = \"label.example\"; };\n"
	"    then = { tags = [ \"vip\", \"urgent\" ]; team = \"membership\"; continue = true; }; },\n"
	"  { name = \"royalties\"; when = { subject = \"(?i)royalt\"; };\n"
	"    then = { type = \"Royalties\"; sub_type = \"Missing Royalties\";\n"
	"      require = [ \"work_titles\", \"platform\" ]; }; },\n"
	"  { name = \"statements\"; when = { subject = \"(?i)statement\"; };\n"
	"    then = { type = \"Royalties\"; sub_type = \"Statement Question\"; priority = \"low\"; }; },\n"
	"  { name = \"banking\"; when = { subject = \"(?i)bank\"; };\n"
	"    then = { type = \"Account Update\"; sub_type = \"Member Account\";\n"
	"      update_type = \"Banking\"; priority = \"urgent\"; }; }\n"
	");\n";

typedef struct {
	const char	*what;
	msg_spec	 msg;
	gboolean	 ignore;
	const char	*type, *sub_type, *update_type, *team, *priority, *tags, *rule;
} decide_row;

static const decide_row decide_rows[] = {
	{ "ignore with reason", { .subject = "royalties", .headers = { "List-Id: <x.example>" } },
	    TRUE, NULL, NULL, NULL, NULL, NULL, "", "lists" },
	{ "default", { .subject = "hello" },
	    FALSE, "Support Request", NULL, NULL, "membership", "normal", "unsorted", "default" },
	{ "first match wins", { .subject = "royalty statement" },
	    FALSE, "Royalties", "Missing Royalties", NULL, "distribution", "normal", "",
	    "royalties" },
	{ "later rule when the first does not match", { .subject = "my statement" },
	    FALSE, "Royalties", "Statement Question", NULL, "distribution", "low", "",
	    "statements" },
	{ "continue adds priority and tags", { .subject = "URGENT royalties" },
	    FALSE, "Royalties", "Missing Royalties", NULL, "distribution", "high", "urgent",
	    "royalties" },
	{ "a later rule's priority wins", { .subject = "urgent: new bank" },
	    FALSE, "Account Update", "Member Account", "Banking", "membership", "urgent", "urgent",
	    "banking" },
	{ "team from continue beats the type's team, tags merged",
	    { .from = "boss@label.example", .subject = "urgent royalties" },
	    FALSE, "Royalties", "Missing Royalties", NULL, "membership", "high", "urgent,vip",
	    "royalties" },
	{ "only continue rules: the default fills in",
	    { .from = "boss@label.example", .subject = "hello" },
	    FALSE, "Support Request", NULL, NULL, "membership", "normal", "vip,urgent,unsorted",
	    "default" },
};

static void
test_decisions(void)
{
	g_autoptr(rules) r = load_text(decide_rules);
	guint i;

	for (i = 0; i < G_N_ELEMENTS(decide_rows); i++) {
		const decide_row *row = &decide_rows[i];
		mail_msg *m = msg_build(&row->msg);
		g_autoptr(rules_decision) d = rules_classify(r, m, NULL, TRUE);
		g_autofree char *tags = NULL;

		g_test_message("row \"%s\"", row->what);
		dump_explain(d);
		g_ptr_array_add(d->tags, NULL);
		tags = g_strjoinv(",", (char **)d->tags->pdata);
		g_ptr_array_set_size(d->tags, d->tags->len - 1);
		g_assert_cmpint(d->ignore, ==, row->ignore);
		g_assert_cmpstr(d->rule, ==, row->rule);
		if (row->ignore) {
			g_assert_cmpstr(d->ignore_reason, ==, "mailing list");
			g_assert_null(d->type);
			g_assert_cmpuint(d->fields->len, ==, 0);
		} else
			g_assert_null(d->ignore_reason);
		g_assert_cmpstr(d->type, ==, row->type);
		g_assert_cmpstr(d->sub_type, ==, row->sub_type);
		g_assert_cmpstr(d->update_type, ==, row->update_type);
		g_assert_cmpstr(d->team, ==, row->team);
		g_assert_cmpstr(d->priority, ==, row->priority);
		g_assert_cmpstr(tags, ==, row->tags);
		msg_free(m);
	}
}

static void
test_team_address(void)
{
	g_autoptr(rules) r = load_text(decide_rules);
	msg_spec s = { .subject = "royalties" };
	mail_msg *m = msg_build(&s);
	g_autoptr(rules_decision) d = rules_classify(r, m, NULL, FALSE);

	g_assert_cmpstr(d->team, ==, "distribution");
	g_assert_cmpstr(d->team_address, ==, "distribution@example.org");
	g_assert_null(d->explain);
	msg_free(m);
}

/* ---------------------------------------------------------------- */
/* Required fields                                                  */

typedef struct {
	const char	*what;
	msg_spec	 msg;
	const char	*work_titles;	/* expected value, NULL: missing */
	const char	*platform;
	const char	*missing;	/* labels joined by "," */
} field_row;

static const field_row field_rows[] = {
	{ "both found", { .subject = "royalties",
	    .text = "Work title: Northern Lights\nPlatform: Spotify\n" },
	    "Northern Lights", "Spotify", "" },
	{ "one missing", { .subject = "royalties", .text = "Work titles:  Blue Moon  \n" },
	    "Blue Moon", NULL, "Platform or service" },
	{ "none", { .subject = "royalties", .text = "Please help." },
	    NULL, NULL, "Work title(s),Platform or service" },
	{ "empty value is missing", { .subject = "royalties",
	    .text = "Work title:\nPlatform: Spotify\n" },
	    NULL, "Spotify", "Work title(s)" },
	{ "quoted lines do not count", { .subject = "royalties",
	    .text = "> Work title: Old\n> Platform: Radio\n" },
	    NULL, NULL, "Work title(s),Platform or service" },
	{ "See attached document, with attachment", { .subject = "royalties",
	    .text = "Work title: See attached document\nPlatform: Spotify\n",
	    .att = { "list.xlsx|application/vnd.ms-excel" } },
	    "See attached document", "Spotify", "" },
	{ "See attached document, without attachment", { .subject = "royalties",
	    .text = "Work title: See attached document\nPlatform: Spotify\n" },
	    NULL, "Spotify", "Work title(s)" },
	{ "French: voir pièce jointe, with attachment", { .subject = "royalties",
	    .text = "Work title: Voir pièce jointe\nPlatform: Spotify\n",
	    .att = { "liste.pdf|application/pdf" } },
	    "Voir pièce jointe", "Spotify", "" },
	{ "See description, with a description", { .subject = "royalties",
	    .text = "My three songs were played on the radio all summer long and "
	    "nothing arrived.\n\nWork title: See description\nPlatform: CBC Radio\n" },
	    "See description", "CBC Radio", "" },
	{ "See description, nothing else in the body", { .subject = "royalties",
	    .text = "Work title: See description\nPlatform: See description\n" },
	    NULL, NULL, "Work title(s),Platform or service" },
	{ "See description, only a quote besides", { .subject = "royalties",
	    .text = "Work title: See description\nPlatform: Spotify\n"
	    "> On Monday you wrote: please tell us the work titles and the platform\n" },
	    NULL, "Spotify", "Work title(s)" },
};

static const char field_rules[] =
	"rules = ( { name = \"royalties\"; when = { subject = \"royalt\"; };\n"
	"  then = { type = \"Royalties\"; require = [ \"work_titles\", \"platform\" ]; }; } );\n";

static void
test_fields(void)
{
	g_autoptr(rules) r = load_text(field_rules);
	guint i;

	for (i = 0; i < G_N_ELEMENTS(field_rows); i++) {
		const field_row *row = &field_rows[i];
		mail_msg *m = msg_build(&row->msg);
		g_autoptr(rules_decision) d = rules_classify(r, m, NULL, TRUE);
		g_autoptr(GPtrArray) missing = rules_decision_missing(d);
		g_autofree char *joined = NULL;
		rules_field *f0, *f1;

		g_test_message("row \"%s\"", row->what);
		dump_explain(d);
		g_assert_cmpuint(d->fields->len, ==, 2);
		f0 = g_ptr_array_index(d->fields, 0);
		f1 = g_ptr_array_index(d->fields, 1);
		g_assert_cmpstr(f0->name, ==, "work_titles");
		g_assert_cmpstr(f0->label, ==, "Work title(s)");
		g_assert_cmpstr(f0->value, ==, row->work_titles);
		g_assert_cmpstr(f1->name, ==, "platform");
		g_assert_cmpstr(f1->value, ==, row->platform);
		g_ptr_array_add(missing, NULL);
		joined = g_strjoinv(",", (char **)missing->pdata);
		g_assert_cmpstr(joined, ==, row->missing);
		msg_free(m);
	}
}

/* The type's require applies when the rule sets none; the default's own. */
static void
test_fields_from_type(void)
{
	g_autoptr(rules) r = load_text("rules = ( { name = \"r\"; when = { subject = \"x\"; };"
	    " then = { type = \"Royalties\"; }; } );\n");
	msg_spec s = { .subject = "x", .text = "work title: A\n" };
	mail_msg *m = msg_build(&s);
	g_autoptr(rules_decision) d = rules_classify(r, m, NULL, FALSE);

	g_assert_cmpuint(d->fields->len, ==, 1);
	g_assert_cmpstr(((rules_field *)g_ptr_array_index(d->fields, 0))->value, ==, "A");
	msg_free(m);
}

static void
test_extract_fields(void)
{
	g_autoptr(rules) r = load_text(field_rules);
	msg_spec s = { .subject = "Re: [CASE-000001] royalties",
	    .text = "Here you are.\nPlatform: Deezer\nDates: June 2024\n\n> Work title:\n" };
	mail_msg *m = msg_build(&s);
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	g_autoptr(GPtrArray) got = NULL;

	g_ptr_array_add(names, "platform");
	g_ptr_array_add(names, "no_such_field");
	g_ptr_array_add(names, "work_titles");
	g_ptr_array_add(names, "dates");
	got = rules_extract_fields(r, m, names);
	g_assert_cmpuint(got->len, ==, 3);
	g_assert_cmpstr(((rules_field *)g_ptr_array_index(got, 0))->name, ==, "platform");
	g_assert_cmpstr(((rules_field *)g_ptr_array_index(got, 0))->value, ==, "Deezer");
	g_assert_cmpstr(((rules_field *)g_ptr_array_index(got, 1))->name, ==, "work_titles");
	g_assert_null(((rules_field *)g_ptr_array_index(got, 1))->value);
	g_assert_cmpstr(((rules_field *)g_ptr_array_index(got, 2))->value, ==, "June 2024");
	msg_free(m);
}

/* ---------------------------------------------------------------- */
/* Explanations, undecidable patterns, JSON                         */

static void
test_explain(void)
{
	g_autoptr(rules) r = load_text("rules = (\n"
	    "  { name = \"missing royalties\";\n"
	    "    when = { subject = \"(?i)missing royalt\"; };\n"
	    "    then = { type = \"Royalties\"; }; } );\n");
	msg_spec s = { .subject = "Missing royalties for Q3\n(second line)" };
	mail_msg *m = msg_build(&s);
	g_autoptr(rules_decision) d = rules_classify(r, m, NULL, TRUE);
	g_autofree char *want = g_strdup_printf("rule \"missing royalties\" (%s/t.rules:%d): "
	    "subject ~ /(?i)missing royalt/ matched \"Missing royalt\"", tmpdir, 15);

	dump_explain(d);
	g_assert_true(has_line(d->explain, want));
	g_assert_true(has_line(d->explain, "field work_titles: missing"));
	msg_free(m);
}

/* A pattern that backtracks forever hits the match limit: the rule
 * does not match, "not" does not turn that into a match, and the
 * explanation says why. */
static void
test_redos(void)
{
	g_autoptr(rules) r = load_text("rules = (\n"
	    "  { name = \"evil\"; when = { body = \"(a+)+$\"; }; then = { type = \"Royalties\"; }; },\n"
	    "  { name = \"evil not\"; when = { not = { body = \"(a+)+$\"; }; };\n"
	    "    then = { type = \"Account Update\"; }; } );\n");
	g_autofree char *body = g_strnfill(40, 'a');
	g_autofree char *text = g_strconcat(body, "!", NULL);
	msg_spec s = { .subject = "x", .text = text };
	mail_msg *m = msg_build(&s);
	g_autoptr(rules_decision) d = NULL;
	gint64 t0 = g_get_monotonic_time();

	d = rules_classify(r, m, NULL, TRUE);
	g_test_message("ReDoS classify took %" G_GINT64_FORMAT " us",
	    g_get_monotonic_time() - t0);
	dump_explain(d);
	g_assert_cmpstr(d->type, ==, "Support Request");
	g_assert_true(has_line(d->explain, "rule \"evil\" ("));
	g_assert_true(has_line(d->explain, "limit"));
	g_assert_true(has_line(d->explain, "the rule does not match"));
	g_assert_true(has_line(d->explain, "rule \"evil not\" ("));
	msg_free(m);
}

static void
test_json(void)
{
	g_autoptr(rules) r = load_text(field_rules);
	msg_spec s = { .subject = "royalties \"Q3\"", .text = "Work title: A \"B\"\\C\n" };
	mail_msg *m = msg_build(&s);
	g_autoptr(rules_decision) d = rules_classify(r, m, NULL, FALSE);
	g_autofree char *json = rules_decision_to_json(d);

	g_assert_cmpstr(json, ==, "{\"ignore\":false,\"ignore_reason\":null,"
	    "\"type\":\"Royalties\",\"sub_type\":null,\"update_type\":null,"
	    "\"team\":\"distribution\",\"team_address\":\"distribution@example.org\","
	    "\"priority\":\"normal\",\"tags\":[],\"rule\":\"royalties\","
	    "\"fields\":[{\"name\":\"work_titles\",\"label\":\"Work title(s)\","
	    "\"value\":\"A \\\"B\\\"\\\\C\"},{\"name\":\"platform\","
	    "\"label\":\"Platform or service\",\"value\":null}],"
	    "\"missing\":[\"Platform or service\"],\"explain\":[]}");
	msg_free(m);
}

/* ---------------------------------------------------------------- */
/* Golden files                                                     */

static int
golden_cmp(gconstpointer a, gconstpointer b)
{
	return atoi(*(char *const *)a) - atoi(*(char *const *)b);
}

static char *
golden_output(const char *path, gboolean *ok_r)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(rules) r = rules_load(path, errors);
	GString *out = g_string_new(NULL);
	guint i;

	*ok_r = r != NULL;
	if (r != NULL) {
		g_autofree char *dump = rules_dump(r);

		g_string_append(out, dump);
	}
	for (i = 0; i < errors->len; i++)
		g_string_append_printf(out, "%s\n", (char *)g_ptr_array_index(errors, i));
	return g_string_free(out, FALSE);
}

static void
test_golden(void)
{
	g_autoptr(GDir) dir = g_dir_open("tests/rules", 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *name;
	guint i, bad = 0;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL)
		if (g_str_has_suffix(name, ".rules"))
			g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, golden_cmp);
	g_assert_cmpuint(names->len, >=, 12);
	for (i = 0; i < names->len; i++) {
		g_autofree char *path = g_build_filename("tests/rules",
		    (char *)g_ptr_array_index(names, i), NULL);
		g_autofree char *okpath = g_strdup_printf("%.*s.ok", (int)strlen(path) - 6, path);
		g_autofree char *want = NULL, *got = NULL;
		gboolean ok;

		got = golden_output(path, &ok);
		if (!ok)
			bad++;
		if (g_getenv("CG_REGOLD") != NULL)
			g_assert_true(g_file_set_contents(okpath, got, -1, NULL));
		g_assert_true(g_file_get_contents(okpath, &want, NULL, NULL));
		if (strcmp(want, got) != 0)
			g_test_message("%s: got\n%s", path, got);
		g_assert_cmpstr(got, ==, want);
		if (ok) {
			/* The dump is a rules file that dumps to itself. */
			g_autofree char *again = write_file("again.rules", got);
			g_autofree char *got2 = golden_output(again, &ok);

			g_assert_true(ok);
			g_assert_cmpstr(got2, ==, got);
		}
	}
	g_assert_cmpuint(bad, >=, 8);
}

/* The shipped default rules load, and dump to a file that loads. */
static void
test_default_rules(void)
{
	gboolean ok;
	g_autofree char *dump = golden_output("rules/default.rules", &ok);
	g_autofree char *again = NULL, *dump2 = NULL;

	g_assert_true(ok);
	again = write_file("default-again.rules", dump);
	dump2 = golden_output(again, &ok);
	g_assert_true(ok);
	g_assert_cmpstr(dump2, ==, dump);
}

/* Sample messages through mail.c and the default rules, against .out files. */
static void
test_samples(void)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(rules) r = rules_load("rules/default.rules", errors);
	g_autoptr(GDir) dir = g_dir_open("tests/rules/msg", 0, NULL);
	const char *name;
	guint n = 0;

	g_assert_nonnull(r);
	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = NULL, *outpath = NULL, *want = NULL, *got = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(mail_msg) m = NULL;
		g_autoptr(rules_decision) d = NULL;

		if (!g_str_has_suffix(name, ".eml"))
			continue;
		path = g_build_filename("tests/rules/msg", name, NULL);
		outpath = g_strdup_printf("%.*s.out", (int)strlen(path) - 4, path);
		m = mail_parse_file(path, NULL, &error);
		g_assert_no_error(error);
		d = rules_classify(r, m, NULL, TRUE);
		got = rules_decision_to_text(d);
		if (g_getenv("CG_REGOLD") != NULL)
			g_assert_true(g_file_set_contents(outpath, got, -1, NULL));
		g_assert_true(g_file_get_contents(outpath, &want, NULL, NULL));
		if (strcmp(want, got) != 0)
			g_test_message("%s: got\n%s", path, got);
		g_assert_cmpstr(got, ==, want);
		n++;
	}
	g_assert_cmpuint(n, >=, 6);
}

/* casectl's two commands: exit status and where the output goes. */
static void
test_cmd_check(void)
{
	if (g_test_subprocess()) {
		exit(rules_cmd_check("tests/rules/9.rules"));
	}
	g_test_trap_subprocess(NULL, 0, 0);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr("*tests/rules/9.rules:2: team \"distribution\"*"
	    "tests/rules/9.rules:29: default: \"type\" is missing*");
	g_test_trap_assert_stdout("");
}

static void
test_cmd_check_ok(void)
{
	if (g_test_subprocess()) {
		exit(rules_cmd_check("rules/default.rules"));
	}
	g_test_trap_subprocess(NULL, 0, 0);
	g_test_trap_assert_passed();
	g_test_trap_assert_stdout("rules/default.rules: rules OK*");
}

static void
test_cmd_check_status(void)
{
	if (g_test_subprocess()) {
		int rc = rules_cmd_check("tests/rules/1.rules");

		exit(rc == 78 ? 0 : 1);
	}
	g_test_trap_subprocess(NULL, 0, 0);
	g_test_trap_assert_passed();
}

static void
test_cmd_test_json(void)
{
	if (g_test_subprocess()) {
		char *argv[] = { "tests/rules/msg/banking.eml", "tests/rules/msg/nonexistent.eml" };

		exit(rules_cmd_test("rules/default.rules", 2, argv, TRUE));
	}
	g_test_trap_subprocess(NULL, 0, 0);
	g_test_trap_assert_failed();
	g_test_trap_assert_stdout("[\n  {\"file\":\"tests/rules/msg/banking.eml\",\"error\":null,"
	    "\"ignore\":false,*\"type\":\"Account Update\",*\"update_type\":\"Banking\",*},\n"
	    "  {\"file\":\"tests/rules/msg/nonexistent.eml\",\"error\":*}\n]\n");
}

/* ---------------------------------------------------------------- */
/* The literal prefilter                                             */

static const struct {
	const char	*pattern;
	gboolean	 nocase;
	const char	*needle;	/* clauses "a|b & c"; NULL: none, always run */
} needle_rows[] = {
	{ "missing royalt", FALSE, "missing royalt" },
	{ "(?i)missing royalt", FALSE, "missing royalt" },	/* s: also U+017F, see scan */
	{ "missing royalt", TRUE, "missing royalt" },
	{ "(?i)KEYWORD12", FALSE, "keyword12" },		/* K: also U+212A */
	{ "Q3 Report", FALSE, "q3 report" },
	{ "ab|cd", FALSE, NULL },				/* too short */
	{ "abc|cd", FALSE, NULL },				/* one branch too short */
	{ "abc|cde", FALSE, "abc|cde" },
	{ "(foo|bar)bazz", FALSE, "foobazz|barbazz" },
	{ "colou?r pens", FALSE, "colour pens|color pens" },
	{ "abcx{2}yz", FALSE, "abcxxyz" },
	{ "abcx{2,}yz", FALSE, "abcxx" },
	{ "abcx{0}yz", FALSE, "abcyz" },
	{ "abcx{0,1}yz", FALSE, "abcxyz|abcyz" },
	{ "abcx{0,2}yz", FALSE, "abc" },
	{ "x{,3}abcd", FALSE, NULL },			/* a brace PCRE2 versions disagree on */
	{ "abc{x}", FALSE, NULL },
	{ "\\x41bcd", FALSE, "bcd" },
	{ "\\x{41}bcd", FALSE, "bcd" },
	{ "\\d+ invoices", FALSE, " invoices" },
	{ "\\p{Lu}bcd", FALSE, "bcd" },
	{ "\\pLbcd", FALSE, "bcd" },
	{ "[abc]def", FALSE, "adef|bdef|cdef" },
	{ "[]x)]def", FALSE, "]def|xdef|)def" },
	{ "[^a]def", FALSE, "def" },
	{ "[a-c]def", FALSE, "def" },
	{ "[[:alpha:]]def", FALSE, "def" },
	{ "licen[CS]e", TRUE, "licence|license" },
	{ "(?x)a b c d", FALSE, NULL },
	{ "\\Qa.b.c\\E", FALSE, NULL },
	{ "abc\\Edef", FALSE, NULL },
	{ "déménag", FALSE, "déménag" },
	{ "déménag", TRUE, "nag" },
	{ "\\bété\\b", TRUE, NULL },
	{ "(?:été|hiver) payé", FALSE, "été payé|hiver payé" },
	{ "(?:été|hiver) payé", TRUE, " pay" },
	{ "a\\.b\\.c", FALSE, "a.b.c" },
	{ "a\\éb\\+c", FALSE, "aéb+c" },
	{ "abc*", FALSE, NULL },
	{ "abcd*", FALSE, "abc" },
	{ "abc+d", FALSE, "abc" },
	{ "abc+?defg", FALSE, "defg & abc" },
	{ "abc++defg", FALSE, "defg & abc" },
	{ "(?<=xyz)abc", FALSE, "abc" },
	{ "(?<!xyz)abc", FALSE, "abc" },
	{ "abc(?=def)", FALSE, "abc" },
	{ "abc(?!def)", FALSE, "abc" },
	{ "abc(?#note)def", FALSE, "abcdef" },
	{ "abc\\Kdef", FALSE, "abcdef" },
	{ "(?<n>abc)(?P=n)", FALSE, "abc" },
	{ "(?'n'abc)\\k<n>", FALSE, "abc" },
	{ "(?P<n>abc)\\g{n}", FALSE, "abc" },
	{ "(abc)\\1", FALSE, "abc" },
	{ "(?i:abc)", FALSE, "abc" },
	{ "(?|abc|abd)", FALSE, "abc|abd" },
	{ "(?>abc|xyz)+", FALSE, "abc|xyz" },
	{ "(?R)abc", FALSE, NULL },
	{ "(?1)(abc)", FALSE, NULL },
	{ "(?&n)(?<n>abc)", FALSE, NULL },
	{ "(?(1)abc|def)", FALSE, NULL },
	{ "(*UTF)abc", FALSE, NULL },
	{ "(?C1)abc", FALSE, NULL },
	{ "\\N{U+41}abc", FALSE, NULL },
	{ "^work titles?:\\h*(.+)$", FALSE, "work titles:|work title:" },
	{ "\\b(?:urgent|asap)\\b", TRUE, "urgent|asap" },
	{ "\\b(?:bank|direct deposit)\\b.*\\b(?:change|update|new)\\b", TRUE,
	    "bank|direct deposit & change|update|new" },
	{ "\\bfoo\\b.*\\bbar\\b.*\\bbazz\\b.*quux.*zzzz.*yyyy", FALSE,
	    "bazz & quux & zzzz & yyyy" },			/* four clauses at most */
	{ "(?:a|b)(?:c|d)(?:e|f)(?:g|h)(?:i|j)xyz", FALSE,
	    "ixyz|jxyz & aceg|aceh|acfg|acfh|adeg|adeh|adfg|adfh|bceg|bceh|bcfg|bcfh|bdeg|bdeh|bdfg|bdfh" },
	{ "(a+)+$", FALSE, NULL },
	{ "unbalanced)", FALSE, NULL },
	{ "(unbalanced", FALSE, NULL },
	{ "[unbalanced", FALSE, NULL },
	{ "trailing\\", FALSE, NULL },
	{ "a|", FALSE, NULL },
	{ "", FALSE, NULL },
};

static void
test_needles(void)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(needle_rows); i++) {
		g_autofree char *n = rules_needle(needle_rows[i].pattern, needle_rows[i].nocase);

		g_test_message("/%s/%s -> %s", needle_rows[i].pattern,
		    needle_rows[i].nocase ? "i" : "", n != NULL ? n : "(none)");
		g_assert_cmpstr(n, ==, needle_rows[i].needle);
	}
}

/*
 * The property the prefilter rests on: whenever a pattern matches a
 * text, the filter (needles, automaton and scan) lets it run.  Random
 * patterns and texts from pieces chosen to provoke the traps: Kelvin
 * sign, long s, accents, quantifiers, classes, alternation, escapes;
 * noise around the text moves the needles across the middle, where
 * the scan splits long texts in two.
 */
/* A pattern piece and texts it may match (one chosen at random). */
static const struct {
	const char	*pat;
	const char	*text[4];
} pieces[] = {
	{ "abc", { "abc", "ABC", "aBc" } },
	{ "Kel", { "Kel", "KEL", "kel", "\xe2\x84\xaa" "el" } },
	{ "sum", { "sum", "SUM", "\xc5\xbf" "um", "s\xc5\xbfm" } },
	{ "ask", { "ask", "A\xc5\xbf\xe2\x84\xaa", "ASK" } },
	{ "\xc3\xa9", { "\xc3\xa9", "\xc3\x89" } },
	{ "\xc3\x89", { "\xc3\x89", "\xc3\xa9" } },
	{ "x?", { "", "x", "X" } },
	{ "y*", { "", "yy", "Y" } },
	{ "z+", { "z", "zzz", "Z" } },
	{ "(ab|cd)", { "ab", "cd", "CD" } },
	{ "(?:task|desk|mask)", { "task", "DESK", "ma\xc5\xbf\xe2\x84\xaa", "de\xc5\xbfk" } },
	{ "(?:yes|no)", { "yes", "NO", "ye\xc5\xbf" } },
	{ "[a-c]", { "b", "B" } },
	{ "[ks]", { "k", "S", "\xe2\x84\xaa", "\xc5\xbf" } },
	{ "[xy]", { "x", "Y" } },
	{ "\\d", { "1", "7" } },
	{ "\\b", { "", " " } },
	{ ".", { "q", "." } },
	{ "\\.", { "." } },
	{ "q{1,2}", { "q", "qq", "Q" } },
	{ "(?:ab){2}", { "abab", "ABab" } },
	{ "(?i)", { "" } },
	{ "\\x41", { "A", "a" } },
	{ "\\s", { " ", "\t" } },
	{ " ", { " " } },
	{ "(?:ing)?", { "", "ing", "ING" } },
	{ "(?:ing|ed)", { "ing", "ED" } },
	{ "\\w+", { "w", "word" } },
	{ "\xc5\xbf", { "\xc5\xbf", "s", "S" } },
	{ "\xe2\x84\xaa", { "\xe2\x84\xaa", "k", "K" } },
	{ "in", { "in", "IN" } },
	{ "g", { "g", "G" } },
	{ "AB", { "AB", "ab" } },
	{ "[^x]", { "y", "Y" } },
	{ "(?-i)", { "" } },
	{ "\\x{e9}", { "\xc3\xa9", "\xc3\x89" } },
	{ "b{0}", { "" } },
	{ "(?=ab)", { "" } },
	{ "(?<=b)", { "" } },
	{ "(?!zqx)", { "" } },
	{ "(?<!zqx)", { "" } },
	{ "|", { "" } },
	{ "(?i:stk)", { "stk", "\xc5\xbfT\xe2\x84\xaa" } },
};

/* Does PCRE2 find pattern in text, and would the filter let it run? */
static void
filter_check(const char *pattern, gboolean nocase, const char *text, size_t len,
    pcre2_match_data *md, guint *matched_r, guint *skipped_r)
{
	rules_filter *f;
	pcre2_code *re;
	PCRE2_SIZE off;
	g_autofree guint8 *bits = NULL;
	g_autofree int *req = NULL;
	int err, rc;
	guint n;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP |
	    PCRE2_MATCH_INVALID_UTF | (nocase ? PCRE2_CASELESS : 0), &err, &off, NULL);
	if (re == NULL)
		return;
	rc = pcre2_match(re, (PCRE2_SPTR)text, len, 0, 0, md, NULL);
	pcre2_code_free(re);
	f = rules_filter_new();
	req = rules_filter_add(f, pattern, nocase);
	rules_filter_build(f);
	n = rules_filter_count(f);
	if (n > 0) {
		bits = g_malloc0((n + 7) / 8);
		rules_filter_scan(f, text, len, bits);
	}
	if (rc >= 0) {
		(*matched_r)++;
		if (!rules_filter_may_match(req, bits))
			g_error("/%s/%s matches \"%s\" but the filter skips it",
			    pattern, nocase ? "i" : "", text);
	} else if (!rules_filter_may_match(req, bits))
		(*skipped_r)++;
	rules_filter_free(f);
}

static void
test_needle_property(void)
{
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	guint i, matched = 0, skipped = 0;

	for (i = 0; i < 30000; i++) {
		GString *pat = g_string_new(NULL), *text = g_string_new(NULL);
		GString *other = g_string_new(NULL);
		gboolean nocase = g_test_rand_bit();
		int k, np = g_test_rand_int_range(1, 8), noise;

		/* Texts of other pieces: mostly no match, so the filter has work. */
		for (k = 0; k < np; k++) {
			int p = g_test_rand_int_range(0, G_N_ELEMENTS(pieces));

			g_string_append(other, pieces[p].text[0]);
		}

		noise = g_test_rand_int_range(0, 4) == 0 ? g_test_rand_int_range(0, 400) : 0;
		for (k = 0; k < noise; k++)
			g_string_append_c(text, "noise "[k % 6]);
		for (k = 0; k < np; k++) {
			int p = g_test_rand_int_range(0, G_N_ELEMENTS(pieces)), t, nt = 0;

			while (nt < 4 && pieces[p].text[nt] != NULL)
				nt++;
			t = g_test_rand_int_range(0, nt);
			if (k > 0 && g_test_rand_int_range(0, 6) == 0)
				g_string_append_c(pat, '|');
			g_string_append(pat, pieces[p].pat);
			g_string_append(text, pieces[p].text[t]);
		}
		noise = g_test_rand_bit() ? g_test_rand_int_range(0, 400) : 0;
		for (k = 0; k < noise; k++)
			g_string_append_c(text, " more"[k % 5]);
		filter_check(pat->str, nocase, text->str, text->len, md, &matched, &skipped);
		filter_check(pat->str, nocase, other->str, other->len, md, &matched, &skipped);
		g_string_free(pat, TRUE);
		g_string_free(text, TRUE);
		g_string_free(other, TRUE);
	}
	pcre2_match_data_free(md);
	g_test_message("filter property: %u matches, %u non-matches skipped", matched, skipped);
	g_assert_cmpuint(matched, >, 5000);
	g_assert_cmpuint(skipped, >, 5000);
}

/* The scan splits a long text in two: a needle anywhere is found. */
static void
test_filter_split(void)
{
	pcre2_match_data *md = pcre2_match_data_create(4, NULL);
	guint len, at, matched = 0, skipped = 0;

	for (len = 60; len < 400; len += 37)
		for (at = 0; at + 12 <= len; at++) {
			g_autofree char *text = g_strnfill(len, 'x');

			memcpy(text + at, "NEEDLE-abcde", 12);
			filter_check("(?i)needle-abcde", FALSE, text, len, md, &matched, &skipped);
			text[at + 11] = 'x';
			filter_check("(?i)needle-abcde", FALSE, text, len, md, &matched, &skipped);
		}
	pcre2_match_data_free(md);
	g_assert_cmpuint(matched, ==, skipped);
	g_assert_cmpuint(matched, >, 1000);
}

/* The same decisions and explanations with and without the prefilter. */
static void
assert_same(const rules *r1, const rules *r2, const mail_msg *m, const char *recipient)
{
	g_autoptr(rules_decision) d1 = rules_classify(r1, m, recipient, TRUE);
	g_autoptr(rules_decision) d2 = rules_classify(r2, m, recipient, TRUE);
	g_autofree char *j1 = rules_decision_to_json(d1);
	g_autofree char *j2 = rules_decision_to_json(d2);

	g_assert_cmpstr(j1, ==, j2);
}

static void
test_prefilter_same(void)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(rules) d1 = rules_load("rules/default.rules", errors);
	g_autoptr(rules) d2 = NULL;
	g_autoptr(GDir) dir = g_dir_open("tests/rules/msg", 0, NULL);
	const char *name;
	guint i, n = 0;

	for (i = 0; i < G_N_ELEMENTS(cond_rows); i++) {
		const cond_row *row = &cond_rows[i];
		g_autoptr(rules) r1 = load_when(row->when);
		g_autoptr(rules) r2 = NULL;
		mail_msg *m = msg_build(&row->msg);

		g_setenv("CASEGATE_RULES_NO_PREFILTER", "1", TRUE);
		r2 = load_when(row->when);
		g_unsetenv("CASEGATE_RULES_NO_PREFILTER");
		g_assert_cmpuint(rules_filter_count(r2->filter), ==, 0);
		assert_same(r1, r2, m, row->recipient);
		/* and each row's message against the default rules */
		g_setenv("CASEGATE_RULES_NO_PREFILTER", "1", TRUE);
		if (d2 == NULL)
			d2 = rules_load("rules/default.rules", errors);
		g_unsetenv("CASEGATE_RULES_NO_PREFILTER");
		assert_same(d1, d2, m, row->recipient);
		msg_free(m);
	}
	g_assert_cmpuint(rules_filter_count(d1->filter), >, 100);
	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename("tests/rules/msg", name, NULL);
		g_autoptr(mail_msg) m = NULL;

		if (!g_str_has_suffix(name, ".eml"))
			continue;
		m = mail_parse_file(path, NULL, NULL);
		g_assert_nonnull(m);
		assert_same(d1, d2, m, NULL);
		assert_same(d1, d2, m, "royalties@example.org");
		n++;
	}
	g_assert_cmpuint(n, >=, 6);
}

/* ---------------------------------------------------------------- */
/* Throughput: not asserted, printed                                 */

static void
test_throughput(void)
{
	GString *text = g_string_new(NULL);
	g_autoptr(rules) r = NULL;
	mail_msg *msgs[4];
	gint64 t0, us;
	int i, n = 10000;

	for (i = 0; i < 500; i++) {
		if (i % 4 == 0)
			g_string_append_printf(text, "%s{ name = \"r%d\"; when = { subject = "
			    "\"(?i)\\\\bkeyword%d\\\\b\"; }; then = { type = \"Royalties\"; }; }",
			    i ? ",\n" : "rules = (\n", i, i);
		else if (i % 4 == 1)
			g_string_append_printf(text, ",\n{ name = \"r%d\"; when = { body = "
			    "\"(?i)phrase number %d\"; }; then = { type = \"Account Update\"; }; }",
			    i, i);
		else if (i % 4 == 2)
			g_string_append_printf(text, ",\n{ name = \"r%d\"; when = { from = "
			    "\"*@sender%d.example\"; subject = \"x%d\"; }; then = { type = \"Royalties\"; }; }",
			    i, i, i);
		else
			g_string_append_printf(text, ",\n{ name = \"r%d\"; when = { any = ( "
			    "{ recipient = \"box%d@*\"; }, { header = { name = \"X-Tag\"; pattern = \"t%d\"; }; } ); };"
			    " then = { type = \"Royalties\"; continue = true; }; }", i, i, i);
	}
	g_string_append(text, ");\n");
	r = load_text(text->str);
	g_string_free(text, TRUE);
	for (i = 0; i < 4; i++) {
		g_autofree char *subject = g_strdup_printf("Question about keyword%d", i * 120);
		GString *body = g_string_new(NULL);
		msg_spec s = { .from = "member@example.net", .to = { "members@example.org" },
		    .headers = { "X-Mailer: test", "Received: from mx" } };
		int j;

		for (j = 0; j < 20; j++)
			g_string_append(body, "Hello, this is a line of an ordinary member "
			    "message about royalties and statements.\n");
		s.subject = subject;
		s.text = body->str;
		msgs[i] = msg_build(&s);
		g_string_free(body, TRUE);
	}
	t0 = g_get_monotonic_time();
	for (i = 0; i < n; i++) {
		rules_decision *d = rules_classify(r, msgs[i % 4], NULL, FALSE);

		g_assert_nonnull(d->type);
		rules_decision_free(d);
	}
	us = MAX(g_get_monotonic_time() - t0, 1);
	g_test_message("throughput: %d classifications against 500 rules in %.3f s: %.0f msgs/s",
	    n, us / 1e6, n * 1e6 / us);
	for (i = 0; i < 4; i++)
		msg_free(msgs[i]);
}

/* ---------------------------------------------------------------- */

static void
cleanup_tmpdir(void)
{
	g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *p = g_build_filename(tmpdir, name, NULL);

		unlink(p);
	}
	rmdir(tmpdir);
	g_free(tmpdir);
}

int
main(int argc, char **argv)
{
	const char *top = g_getenv("CG_TOP");
	int rc;

	g_test_init(&argc, &argv, NULL);
	log_init("test-rules", LOG_TO_STDERR, 0);
	cg_mime_init();
	if (top != NULL && chdir(top) == -1)
		g_error("chdir %s failed", top);
	tmpdir = g_dir_make_tmp("test-rules-XXXXXX", NULL);
	g_assert_nonnull(tmpdir);

	g_test_add_func("/rules/golden", test_golden);
	g_test_add_func("/rules/default-rules", test_default_rules);
	g_test_add_func("/rules/conditions", test_conditions);
	g_test_add_func("/rules/decisions", test_decisions);
	g_test_add_func("/rules/team-address", test_team_address);
	g_test_add_func("/rules/fields", test_fields);
	g_test_add_func("/rules/fields-from-type", test_fields_from_type);
	g_test_add_func("/rules/extract-fields", test_extract_fields);
	g_test_add_func("/rules/explain", test_explain);
	g_test_add_func("/rules/redos", test_redos);
	g_test_add_func("/rules/json", test_json);
	g_test_add_func("/rules/samples", test_samples);
	g_test_add_func("/rules/cmd-check", test_cmd_check);
	g_test_add_func("/rules/cmd-check-ok", test_cmd_check_ok);
	g_test_add_func("/rules/cmd-check-status", test_cmd_check_status);
	g_test_add_func("/rules/cmd-test-json", test_cmd_test_json);
	g_test_add_func("/rules/needles", test_needles);
	g_test_add_func("/rules/needle-property", test_needle_property);
	g_test_add_func("/rules/filter-split", test_filter_split);
	g_test_add_func("/rules/prefilter-same", test_prefilter_same);
	g_test_add_func("/rules/throughput", test_throughput);
	rc = g_test_run();
	cleanup_tmpdir();
	return rc;
}
