/*
 * test-imap.c - the pure parts of imap.c: folder-name checks and the
 * modified UTF-7 encoding of RFC 3501 5.1.3.  The protocol itself is
 * tested against a real Dovecot in tests/0020-imap.t.
 */
#include <string.h>

#include "cg.h"
#include "imap.h"

static const struct {
	const char	*in;
	const char	*out;		/* NULL: refused */
} folder_cases[] = {
	{ "INBOX",		"INBOX" },
	{ "Processed",		"Processed" },
	{ "Cases/Open",		"Cases/Open" },
	{ "Entwürfe",		"Entw&APw-rfe" },
	{ "&",			"&-" },
	{ "A&B",		"A&-B" },
	{ "~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },	/* RFC 3501 */
	{ "ü",			"&APw-" },
	{ "üü",			"&APwA,A-" },
	{ "üüü",		"&APwA,AD8-" },
	{ "Ärger&Co",		"&AMQ-rger&-Co" },
	{ "€",			"&IKw-" },
	{ "😀",			"&2D3eAA-" },	/* U+1F600: a surrogate pair */
	{ "x😀y",		"x&2D3eAA-y" },
	{ "+-,",		"+-," },	/* only '&' is special in ASCII */
	/* refused: injection, controls, whitespace, brackets, empty */
	{ "Cases\r\n99 DELETE Archive", NULL },
	{ "Cases\n",		NULL },
	{ "Cases\r",		NULL },
	{ "Sent Items",		NULL },
	{ "a\tb",		NULL },
	{ "a\x01",		NULL },
	{ "a\x7f",		NULL },
	{ "<x>",		NULL },
	{ "",			NULL },
	/* refused: not UTF-8 */
	{ "Entw\xfc" "rfe",	NULL },
	{ "\xc3",		NULL },
	{ "\xed\xa0\x80",	NULL },	/* an encoded surrogate */
};

static void
test_folder_encode(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(folder_cases); i++) {
		g_autoptr(GError) err = NULL;
		g_autofree char *got = imap_folder_encode(folder_cases[i].in, &err);

		if (folder_cases[i].out == NULL) {
			g_assert_null(got);
			g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
		} else {
			g_assert_no_error(err);
			g_assert_cmpstr(got, ==, folder_cases[i].out);
		}
	}
}

/* The error names what is wrong without echoing raw control bytes. */
static void
test_folder_error_text(void)
{
	g_autoptr(GError) err = NULL;
	char *got = imap_folder_encode("Cases\r\n99 DELETE Archive", &err);

	g_assert_null(got);
	g_assert_nonnull(err);
	g_assert_null(strchr(err->message, '\r'));
	g_assert_null(strchr(err->message, '\n'));
	g_assert_nonnull(strstr(err->message, "refused"));
}

static void
test_folder_null(void)
{
	g_autoptr(GError) err = NULL;

	g_assert_null(imap_folder_encode(NULL, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
}

/* 512 bytes pass, 513 do not. */
static void
test_folder_length(void)
{
	g_autofree char *ok = g_strnfill(512, 'a');
	g_autofree char *bad = g_strnfill(513, 'a');
	g_autofree char *enc = imap_folder_encode(ok, NULL);
	g_autoptr(GError) err = NULL;

	g_assert_cmpstr(enc, ==, ok);
	g_assert_null(imap_folder_encode(bad, &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_CONFIG);
}

/* Operations on a missing connection fail cleanly. */
static void
test_null_conn(void)
{
	g_autoptr(GError) err = NULL;
	guint32 uid = 1;

	g_assert_false(imap_has_idle(NULL));
	g_assert_false(imap_move(NULL, &uid, 1, "Processed", &err));
	g_assert_error(err, CG_ERROR, CG_ERROR_TEMP);
	imap_close(NULL);
	imap_fetched_array_free(NULL);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/imap/folder/encode", test_folder_encode);
	g_test_add_func("/imap/folder/error-text", test_folder_error_text);
	g_test_add_func("/imap/folder/null", test_folder_null);
	g_test_add_func("/imap/folder/length", test_folder_length);
	g_test_add_func("/imap/null-conn", test_null_conn);
	return g_test_run();
}
