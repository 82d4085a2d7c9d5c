/*
 * fuzz-rules.c - libFuzzer target for the rules loader: one input is
 * one rules file (libconfig syntax, @include, PCRE2 patterns); when it
 * loads, it is dumped and used to classify a fixed message.  rules_load
 * reads from a path, so the input is written to a private temporary
 * file first.  Replayed by tests/test-fuzz.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "mail.h"
#include "rules.h"

static const char fuzz_rules_msg[] =
	"From: Alice <alice@example.net>\nTo: members@example.org\n"
	"Subject: Missing royalties for Blue River\nMessage-ID: <f@example.net>\n\n"
	"My song has not been paid.\nWork titles: Blue River\nPlatform: Spotify\n";

static int
fuzz_rules_one(const uint8_t *data, size_t size)
{
	static char *path;
	static mail_msg *m;
	GPtrArray *errors = g_ptr_array_new_with_free_func(g_free);
	rules *r;
	FILE *fp;

	if (path == NULL) {
		char *dir = g_dir_make_tmp("fuzz-rules-XXXXXX", NULL);

		path = g_build_filename(dir, "fuzz.rules", NULL);
		g_free(dir);
		m = mail_parse_data(fuzz_rules_msg, sizeof(fuzz_rules_msg) - 1, NULL, NULL);
	}
	fp = fopen(path, "wb");
	if (fp == NULL)
		__builtin_trap();
	fwrite(data, 1, size, fp);
	fclose(fp);
	r = rules_load(path, errors);
	if (r != NULL) {
		char *dump = rules_dump(r);
		rules_decision *d = rules_classify(r, m, "members@example.org", FALSE);

		g_free(dump);
		rules_decision_free(d);
		rules_free(r);
	} else if (errors->len == 0)
		__builtin_trap();	/* a refused file always says why */
	g_ptr_array_unref(errors);
	return 0;
}

#ifndef FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean init;

	if (!init) {
		cg_mime_init();
		init = TRUE;
	}
	return fuzz_rules_one(data, size);
}
#endif
