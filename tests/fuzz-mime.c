/*
 * fuzz-mime.c - libFuzzer target for the message parser: one input is
 * one raw message, parsed with and without limits, then through what
 * reads a parsed message (the loop guard, the classifier of senders,
 * the quarantine checks) and, as a blob, through the TNEF reader.
 *
 * Built by `make fuzz` (clang, -fsanitize=fuzzer,address,undefined).
 * tests/test-fuzz.c includes this file with FUZZ_REPLAY defined and
 * replays the corpus and every crasher through fuzz_mime_one().
 */
#include <stdint.h>
#include <string.h>

#include "cg.h"
#include "guard.h"
#include "mail.h"
#include "tnef.h"

static void
fuzz_mime_check(const mail_msg *m)
{
	guint i;

	/* what every consumer relies on */
	if (!g_utf8_validate(m->text, -1, NULL) || !g_utf8_validate(m->subject, -1, NULL) ||
	    strpbrk(m->subject, "\r\n") != NULL)
		__builtin_trap();
	if (m->from_addr != NULL && !cg_address_valid(m->from_addr))
		__builtin_trap();
	for (i = 0; i < m->attachments->len; i++) {
		const mail_attachment *a = g_ptr_array_index(m->attachments, i);

		if (strchr(a->name, '/') != NULL || a->name[0] == '.')
			__builtin_trap();
	}
}

static int
fuzz_mime_one(const uint8_t *data, size_t size)
{
	static const mail_limits lim = { 64 * 1024, 4096, 5, 8, 50 };
	static config cfg;
	mail_msg *m;
	GPtrArray *files;

	if (cfg.address == NULL) {
		cfg.address = "members@example.org";
		cfg.domain = "example.org";
		cfg.case_prefix = "CASE-";
		cfg.guard.spam_header = "X-Spam-Flag";
		cfg.guard.spam_score_header = "X-Spam-Score";
		cfg.guard.spam_threshold = 5.0;
	}
	m = mail_parse_data((const char *)data, size, NULL, NULL);
	if (m != NULL) {
		char *q = guard_quarantine_reason(&cfg, m);

		fuzz_mime_check(m);
		(void)guard_no_autoreply(&cfg, m);
		(void)guard_classify(&cfg, m);
		g_free(q);
		mail_msg_free(m);
	}
	m = mail_parse_data_limits((const char *)data, size, NULL, &lim, NULL);
	if (m != NULL) {
		fuzz_mime_check(m);
		mail_msg_free(m);
	}
	files = tnef_unpack(data, size, 10, 4096, NULL);
	if (files != NULL)
		g_ptr_array_unref(files);
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
	return fuzz_mime_one(data, size);
}
#endif
