/*
 * rules-bench - classification speed: the messages of a Maildir against
 * a 500-rule file, in-process.
 *
 *   rules-bench RULES MAILDIR [COUNT] [TOTAL_RULES]
 *
 * The rule file is RULES (rules/default.rules) with generated rules put
 * in front of its own until there are TOTAL_RULES (500): the shapes an
 * admin adds over the years (a keyword in the subject, a phrase in the
 * body, a sender domain with a subject, a recipient or a header), none
 * of which matches the benchmark mail, so every message is tried
 * against all of them before the default rules decide.  Messages are
 * parsed first (not timed; attachments listed, not stored), then
 * classified once each; only rules_classify is timed.
 * Prints one line of JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "log.h"
#include "mail.h"
#include "rules.h"

/* Rules of the default file: count "name" lines at rule depth. */
static int
count_rules(const char *rules_part)
{
	const char *p = rules_part;
	int n = 0;

	while ((p = strstr(p, "\n\t\tname = ")) != NULL) {
		n++;
		p++;
	}
	return n;
}

static void
generated_rule(GString *s, int i)
{
	switch (i % 4) {
	case 0:
		g_string_append_printf(s, "\t{ name = \"gen %d\"; when = { subject = "
		    "\"\\\\bcatalogue-%d\\\\b\"; }; then = { type = \"Royalties\"; "
		    "sub_type = \"Statement Question\"; }; },\n", i, i);
		break;
	case 1:
		g_string_append_printf(s, "\t{ name = \"gen %d\"; when = { body = "
		    "\"(?i)agreement number %d\\\\b\"; }; then = { type = \"Royalties\"; "
		    "sub_type = \"Payment Inquiry\"; }; },\n", i, i);
		break;
	case 2:
		g_string_append_printf(s, "\t{ name = \"gen %d\"; when = { from = "
		    "\"*@publisher%d.example\"; subject = \"(?i)contract\"; }; then = { "
		    "type = \"Royalties\"; sub_type = \"Payment Inquiry\"; }; },\n", i, i);
		break;
	default:
		g_string_append_printf(s, "\t{ name = \"gen %d\"; when = { any = ( { recipient = "
		    "\"box%d@*\"; }, { header = { name = \"X-Campaign\"; pattern = \"c%d\"; }; } ); "
		    "}; then = { type = \"Royalties\"; sub_type = \"Statement Question\"; "
		    "continue = true; }; },\n", i, i, i);
		break;
	}
}

/* The default rules with generated ones in front; path of a temp file. */
static char *
write_rules(const char *path, int total, int *own_r, GError **error)
{
	g_autofree char *text = NULL, *out = NULL;
	GString *s;
	const char *list;
	int own, i, fd;

	if (!g_file_get_contents(path, &text, NULL, error))
		return NULL;
	list = strstr(text, "\nrules = (\n");
	if (list == NULL) {
		g_set_error(error, CG_ERROR, CG_ERROR_CONFIG, "%s: no \"rules = (\" line", path);
		return NULL;
	}
	list += strlen("\nrules = (\n");
	own = count_rules(list - 1);
	s = g_string_new_len(text, list - text);
	for (i = 0; i < total - own; i++)
		generated_rule(s, i);
	g_string_append(s, list);
	/* an @include in RULES would now be relative to the temp dir */
	fd = g_file_open_tmp("rules-bench-XXXXXX.rules", &out, error);
	if (fd == -1 || (close(fd), !g_file_set_contents(out, s->str, (gssize)s->len, error))) {
		g_string_free(s, TRUE);
		return NULL;
	}
	g_string_free(s, TRUE);
	*own_r = own;
	return g_steal_pointer(&out);
}

/* g_ptr_array_sort hands over pointers to the elements. */
static int
name_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static GPtrArray *
parse_all(const char *maildir, guint max)
{
	GPtrArray *msgs = g_ptr_array_new_with_free_func((GDestroyNotify)mail_msg_free);
	g_autofree char *cur = g_build_filename(maildir, "cur", NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) d = g_dir_open(cur, 0, NULL);
	const char *name;
	guint i;

	if (d == NULL)
		return msgs;
	while ((name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, name_cmp);
	for (i = 0; i < names->len && msgs->len < max; i++) {
		g_autofree char *p = g_build_filename(cur, g_ptr_array_index(names, i), NULL);
		g_autoptr(GError) err = NULL;
		mail_msg *m = mail_parse_file(p, NULL, &err);

		if (m != NULL)
			g_ptr_array_add(msgs, m);
		else
			fprintf(stderr, "rules-bench: %s: %s\n", p, err->message);
	}
	return msgs;
}

int
main(int argc, char **argv)
{
	g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) msgs = NULL;
	g_autoptr(GError) err = NULL;
	g_autofree char *path = NULL;
	rules *r;
	guint count = 10000, i, ignored = 0, typed = 0;
	int total = 500, own = 0;
	gint64 t0, us;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: rules-bench RULES MAILDIR [COUNT] [TOTAL_RULES]\n");
		return 2;
	}
	if (argc > 3)
		count = (guint)strtoul(argv[3], NULL, 10);
	if (argc > 4)
		total = atoi(argv[4]);
	log_init("rules-bench", LOG_TO_STDERR, 0);
	cg_mime_init();
	path = write_rules(argv[1], total, &own, &err);
	if (path == NULL) {
		fprintf(stderr, "rules-bench: %s\n", err->message);
		return 1;
	}
	r = rules_load(path, errors);
	unlink(path);
	for (i = 0; i < errors->len; i++)
		fprintf(stderr, "%s\n", (char *)g_ptr_array_index(errors, i));
	if (r == NULL)
		return 1;
	msgs = parse_all(argv[2], count);
	if (msgs->len == 0) {
		fprintf(stderr, "rules-bench: no messages in %s/cur\n", argv[2]);
		return 1;
	}
	t0 = g_get_monotonic_time();
	for (i = 0; i < msgs->len; i++) {
		rules_decision *d = rules_classify(r, g_ptr_array_index(msgs, i),
		    "members@example.test", FALSE);

		if (d != NULL && d->ignore)
			ignored++;
		else if (d != NULL && d->type != NULL)
			typed++;
		rules_decision_free(d);
	}
	us = MAX(g_get_monotonic_time() - t0, 1);
	printf("{\"messages\":%u,\"rules\":%d,\"default_rules\":%d,\"typed\":%u,\"ignored\":%u,"
	    "\"seconds\":%.3f,\"msgs_per_s\":%.0f}\n", msgs->len, total > own ? total : own, own,
	    typed, ignored, us / 1e6, msgs->len * 1e6 / us);
	rules_free(r);
	g_clear_pointer(&msgs, g_ptr_array_unref);
	g_mime_shutdown();
	return 0;
}
