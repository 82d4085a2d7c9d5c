/*
 * fuzz-thread.c - libFuzzer target for the threading parsers: the input
 * is read as a subject (case tokens, reply prefixes) and as a
 * Message-ID (our signed ids) and as a References/In-Reply-To header
 * inside a minimal message.  Replayed by tests/test-fuzz.c.
 */
#include <stdint.h>
#include <string.h>

#include "cg.h"
#include "mail.h"
#include "thread.h"

static int
fuzz_thread_one(const uint8_t *data, size_t size)
{
	static config cfg;
	char *s = g_strndup((const char *)data, size);	/* stops at a NUL, as C callers do */
	char *t;
	GString *msg;
	mail_msg *m;

	if (cfg.case_prefix == NULL) {
		cfg.case_prefix = "CASE-";
		cfg.case_digits = 6;
		cfg.domain = "example.org";
		cfg.secret = "fuzz-secret";
	}
	if (g_utf8_validate(s, -1, NULL)) {
		(void)thread_subject_token(&cfg, s);
		t = thread_subject(&cfg, s, "CASE-000001", TRUE);
		g_free(t);
		t = thread_subject_base(&cfg, s);
		g_free(t);
	}
	(void)thread_message_id_case(&cfg, s);
	msg = g_string_new("From: a@example.net\nSubject: x\nIn-Reply-To: ");
	g_string_append_len(msg, (const char *)data, size);
	g_string_append(msg, "\nReferences: ");
	g_string_append_len(msg, (const char *)data, size);
	g_string_append(msg, "\n\nbody\n");
	m = mail_parse_data(msg->str, msg->len, NULL, NULL);
	if (m != NULL) {
		if (m->in_reply_to != NULL && !cg_protocol_safe(m->in_reply_to, 250))
			__builtin_trap();
		mail_msg_free(m);
	}
	g_string_free(msg, TRUE);
	g_free(s);
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
	return fuzz_thread_one(data, size);
}
#endif
