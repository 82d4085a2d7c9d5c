/*
 * test-recipe.c - the recipe of a queued mail: what goes in comes out
 * (NULL and "" told apart, bytes that are not UTF-8 kept), and bytes
 * that are not a recipe give an error, never a crash.
 */
#include <string.h>

#include "cg.h"
#include "recipe.h"
#include "store.h"

static void
test_round_trip(void)
{
	g_autoptr(GPtrArray) refs = g_ptr_array_new();
	g_autoptr(GPtrArray) atts = g_ptr_array_new();
	store_attachment a1 = { .digest = (char *)"abc", .name = (char *)"r\xe9sum\xe9.pdf",
	    .content_type = NULL, .size = 12345 };
	store_attachment a2 = { .digest = (char *)"def", .name = (char *)"",
	    .content_type = (char *)"text/plain", .size = 0 };
	recipe in = {
		.from_name = (char *)"Member Services", .from_addr = (char *)"m@example.org",
		.to_name = NULL, .to_addr = (char *)"ann@example.org",
		.subject = (char *)"Re: \xff\xfe bytes [CASE-000001]", .text = (char *)"",
		.in_reply_to = (char *)"a@b", .reply_to = NULL, .auto_submitted = (char *)"auto-replied",
	};
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(recipe) out = NULL;
	GError *e = NULL;
	const store_attachment *o;

	g_ptr_array_add(refs, "r1@x");
	g_ptr_array_add(refs, "r2@y");
	g_ptr_array_add(atts, &a1);
	g_ptr_array_add(atts, &a2);
	in.references = refs;
	in.attachments = atts;
	bytes = recipe_encode(&in);
	out = recipe_decode(bytes, &e);
	g_assert_no_error(e);
	g_assert_cmpstr(out->from_name, ==, in.from_name);
	g_assert_cmpstr(out->from_addr, ==, in.from_addr);
	g_assert_null(out->to_name);
	g_assert_cmpstr(out->to_addr, ==, in.to_addr);
	g_assert_cmpstr(out->subject, ==, in.subject);
	g_assert_cmpstr(out->text, ==, "");
	g_assert_cmpstr(out->in_reply_to, ==, "a@b");
	g_assert_null(out->reply_to);
	g_assert_cmpstr(out->auto_submitted, ==, "auto-replied");
	g_assert_cmpuint(out->references->len, ==, 2);
	g_assert_cmpstr(out->references->pdata[1], ==, "r2@y");
	g_assert_cmpuint(out->attachments->len, ==, 2);
	o = out->attachments->pdata[0];
	g_assert_cmpstr(o->digest, ==, "abc");
	g_assert_cmpstr(o->name, ==, "r\xe9sum\xe9.pdf");
	g_assert_null(o->content_type);
	g_assert_cmpint(o->size, ==, 12345);
	o = out->attachments->pdata[1];
	g_assert_cmpstr(o->name, ==, "");
	g_assert_cmpstr(o->content_type, ==, "text/plain");
}

/* Garbage, truncations and every single-byte change of a real recipe. */
static void
test_hostile_bytes(void)
{
	recipe in = { .from_addr = (char *)"m@example.org", .to_addr = (char *)"a@example.org",
	    .subject = (char *)"s", .text = (char *)"hello" };
	g_autoptr(GBytes) good = recipe_encode(&in);
	gsize len = g_bytes_get_size(good), i, cut, errors = 0;
	const guint8 *p = g_bytes_get_data(good, NULL);
	static const char *const junk[] = { "", "x", "\x01\x02\x03\x04\x05", "\xff\xff\xff\xff" };

	for (i = 0; i < G_N_ELEMENTS(junk); i++) {
		g_autoptr(GBytes) b = g_bytes_new(junk[i], strlen(junk[i]));
		GError *e = NULL;
		recipe *r = recipe_decode(b, &e);

		g_assert_null(r);
		g_assert_error(e, CG_ERROR, CG_ERROR_PERM);
		g_error_free(e);
	}
	g_assert_null(recipe_decode(NULL, NULL));
	for (cut = 0; cut < len; cut++) {
		g_autoptr(GBytes) b = g_bytes_new(p, cut);
		GError *e = NULL;
		recipe *r = recipe_decode(b, &e);

		/* a cut recipe is either refused or missing its required fields */
		g_assert_true(r == NULL || (r->to_addr != NULL && r->subject != NULL));
		errors += r == NULL;
		recipe_free(r);
		g_clear_error(&e);
	}
	g_assert_cmpuint(errors, >, 0);
	for (i = 0; i < len; i++) {
		g_autofree guint8 *copy = g_memdup2(p, len);
		g_autoptr(GBytes) b = NULL;
		recipe *r;

		copy[i] ^= 0x5a;
		b = g_bytes_new(copy, len);
		r = recipe_decode(b, NULL);
		recipe_free(r);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/recipe/round-trip", test_round_trip);
	g_test_add_func("/recipe/hostile-bytes", test_hostile_bytes);
	return g_test_run();
}
