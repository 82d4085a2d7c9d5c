/*
 * fuzz-dsn.c - libFuzzer target for the bounce parser: one input is
 * one raw message read as a delivery status notification.  Replayed in
 * make check by tests/test-fuzz.c (FUZZ_REPLAY).
 */
#include <stdint.h>
#include <string.h>

#include "cg.h"
#include "dsn.h"

static int
fuzz_dsn_one(const uint8_t *data, size_t size)
{
	dsn_report *r = dsn_parse_data((const char *)data, size);
	guint i;

	if (r == NULL)
		return 0;
	for (i = 0; i < r->rcpts->len; i++) {
		const dsn_rcpt *x = g_ptr_array_index(r->rcpts, i);

		if ((x->addr != NULL && !cg_address_valid(x->addr)) ||
		    (x->diagnostic != NULL && strpbrk(x->diagnostic, "\r\n") != NULL))
			__builtin_trap();
	}
	if (r->orig_message_id != NULL && !cg_protocol_safe(r->orig_message_id, 250))
		__builtin_trap();
	(void)dsn_report_failed(r);
	dsn_report_free(r);
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
	return fuzz_dsn_one(data, size);
}
#endif
