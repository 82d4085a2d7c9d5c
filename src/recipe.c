/*
 * recipe.c - encode and decode the recipe of a queued mail.
 *
 * Rationale: composing an acknowledgement or a team notification costs
 * as much as parsing the member's mail, and the member's attachments
 * copied into a notification doubled them in the spool.  So ingest
 * only records what the mail is made of (this recipe, in the outbox
 * row, in the same transaction as the case) and the outbox composes it
 * when it sends, in its own threads.  Composition is a pure function of
 * the recipe and the row (Date: from the row's creation time, the MIME
 * boundary from the Message-ID), so every retry sends the same bytes.
 *
 * GVariant with byte strings, behind a version number: it is in GLib
 * already, its serialised form is safe to read from an untrusted file
 * (g_variant_new_from_bytes with trusted = FALSE), and a field added
 * later means a new version, not a broken row.
 */
#include <string.h>

#include "cg.h"
#include "recipe.h"
#include "store.h"

#define RECIPE_VERSION	1
/* version, from_name, from_addr, to_name, to_addr, subject, text,
 * in_reply_to, reply_to, auto_submitted, references, attachments */
#define RECIPE_TYPE	"(umaymaymaymaymaymaymaymaymayaaya(maymaymayx))"

static GVariant *
maybe_bytes(const char *s)
{
	return g_variant_new_maybe(G_VARIANT_TYPE_BYTESTRING,
	    s != NULL ? g_variant_new_bytestring(s) : NULL);
}

static GVariant *
references_value(const GPtrArray *refs)
{
	GVariantBuilder b;
	guint i;

	g_variant_builder_init(&b, G_VARIANT_TYPE("aay"));
	for (i = 0; refs != NULL && i < refs->len; i++)
		g_variant_builder_add_value(&b, g_variant_new_bytestring(refs->pdata[i]));
	return g_variant_builder_end(&b);
}

static GVariant *
attachments_value(const GPtrArray *atts)
{
	GVariantBuilder b;
	guint i;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a(maymaymayx)"));
	for (i = 0; atts != NULL && i < atts->len; i++) {
		const store_attachment *a = atts->pdata[i];
		GVariant *v[] = { maybe_bytes(a->digest), maybe_bytes(a->name),
		    maybe_bytes(a->content_type), g_variant_new_int64(a->size) };

		g_variant_builder_add_value(&b, g_variant_new_tuple(v, G_N_ELEMENTS(v)));
	}
	return g_variant_builder_end(&b);
}

GBytes *
recipe_encode(const recipe *r)
{
	GVariant *v[] = {
		g_variant_new_uint32(RECIPE_VERSION),
		maybe_bytes(r->from_name), maybe_bytes(r->from_addr),
		maybe_bytes(r->to_name), maybe_bytes(r->to_addr),
		maybe_bytes(r->subject), maybe_bytes(r->text),
		maybe_bytes(r->in_reply_to), maybe_bytes(r->reply_to),
		maybe_bytes(r->auto_submitted),
		references_value(r->references), attachments_value(r->attachments),
	};
	g_autoptr(GVariant) t = g_variant_ref_sink(g_variant_new_tuple(v, G_N_ELEMENTS(v)));

	return g_variant_get_data_as_bytes(t);
}

/* Child i of t as a new string, NULL for "nothing". */
static char *
child_string(GVariant *t, gsize i)
{
	g_autoptr(GVariant) m = g_variant_get_child_value(t, i);
	g_autoptr(GVariant) s = g_variant_get_maybe(m);

	return s != NULL ? g_strdup(g_variant_get_bytestring(s)) : NULL;
}

static GPtrArray *
decode_references(GVariant *t)
{
	g_autoptr(GVariant) a = g_variant_get_child_value(t, 10);
	GPtrArray *refs = g_ptr_array_new_with_free_func(g_free);
	gsize i, n = g_variant_n_children(a);

	for (i = 0; i < n; i++) {
		g_autoptr(GVariant) s = g_variant_get_child_value(a, i);

		g_ptr_array_add(refs, g_strdup(g_variant_get_bytestring(s)));
	}
	return refs;
}

static GPtrArray *
decode_attachments(GVariant *t)
{
	g_autoptr(GVariant) a = g_variant_get_child_value(t, 11);
	GPtrArray *atts = g_ptr_array_new_with_free_func((GDestroyNotify)store_attachment_free);
	gsize i, n = g_variant_n_children(a);

	for (i = 0; i < n; i++) {
		g_autoptr(GVariant) e = g_variant_get_child_value(a, i);
		g_autoptr(GVariant) size = g_variant_get_child_value(e, 3);
		store_attachment *att = g_new0(store_attachment, 1);

		att->digest = child_string(e, 0);
		att->name = child_string(e, 1);
		att->content_type = child_string(e, 2);
		att->size = g_variant_get_int64(size);
		g_ptr_array_add(atts, att);
	}
	return atts;
}

recipe *
recipe_decode(GBytes *bytes, GError **error)
{
	g_autoptr(GVariant) t = NULL;
	g_autoptr(GVariant) version = NULL;
	recipe *r;

	if (bytes == NULL || g_bytes_get_size(bytes) == 0) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "queued mail: no recipe");
		return NULL;
	}
	t = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE(RECIPE_TYPE), bytes,
	    FALSE));
	version = g_variant_get_child_value(t, 0);
	if (g_variant_get_uint32(version) != RECIPE_VERSION) {
		g_set_error(error, CG_ERROR, CG_ERROR_PERM, "queued mail: recipe version %u is "
		    "not %d (written by another casegate, or damaged)",
		    g_variant_get_uint32(version), RECIPE_VERSION);
		return NULL;
	}
	r = g_new0(recipe, 1);
	r->from_name = child_string(t, 1);
	r->from_addr = child_string(t, 2);
	r->to_name = child_string(t, 3);
	r->to_addr = child_string(t, 4);
	r->subject = child_string(t, 5);
	r->text = child_string(t, 6);
	r->in_reply_to = child_string(t, 7);
	r->reply_to = child_string(t, 8);
	r->auto_submitted = child_string(t, 9);
	r->references = decode_references(t);
	r->attachments = decode_attachments(t);
	if (r->to_addr == NULL || r->from_addr == NULL || r->subject == NULL) {
		recipe_free(r);
		g_set_error(error, CG_ERROR, CG_ERROR_PERM,
		    "queued mail: the recipe has no sender, recipient or subject (damaged)");
		return NULL;
	}
	return r;
}

void
recipe_free(recipe *r)
{
	if (r == NULL)
		return;
	g_free(r->from_name);
	g_free(r->from_addr);
	g_free(r->to_name);
	g_free(r->to_addr);
	g_free(r->subject);
	g_free(r->text);
	g_free(r->in_reply_to);
	g_free(r->reply_to);
	g_free(r->auto_submitted);
	if (r->references != NULL)
		g_ptr_array_unref(r->references);
	if (r->attachments != NULL)
		g_ptr_array_unref(r->attachments);
	g_free(r);
}
