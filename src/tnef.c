/*
 * tnef.c - winmail.dat into real attachments.
 *
 * Outlook sends "rich text" mail as one application/ms-tnef part, so
 * the member's PDF arrives as winmail.dat.  libytnef reads the blob;
 * this file only walks its attachment list and copies out names and
 * bytes.  ytnef.h defines BYTE, WORD and friends as macros, so it is
 * included here and nowhere else.
 *
 * libytnef has had memory-safety bugs with hostile input (several CVEs
 * fixed before 2.0); the blob is already capped by the attachment
 * limit before it gets here, and the fuzz targets run through it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ytnef.h>

#include "tnef.h"

#define TNEF_SIGNATURE	0x223e9f78

void
tnef_file_free(tnef_file *f)
{
	if (f == NULL)
		return;
	g_free(f->name);
	g_bytes_unref(f->data);
	g_free(f);
}

/* A NUL-terminated copy of a length-counted name; "" when absent. */
static char *
name_of(const variableLength *v)
{
	if (v == NULL || v->data == NULL || v->size <= 0)
		return g_strdup("");
	return g_strndup((const char *)v->data, MIN(v->size, 1024));
}

/*
 * The long file name.  MAPIFindProperty matches the property id only,
 * whatever type was asked for, so the bytes may be 8-bit or UTF-16LE:
 * tell them apart by the zero high bytes of UTF-16 ASCII.
 */
static char *
attachment_name(Attachment *a)
{
	variableLength *v;
	const guint8 *d;

	v = MAPIFindProperty(&a->MAPI, PROP_TAG(PT_STRING8, PR_ATTACH_LONG_FILENAME));
	if (v == MAPI_UNDEFINED || v == NULL || v->data == NULL || v->size < 2)
		return name_of(&a->Title);
	d = v->data;
	if (v->size >= 4 && d[1] == 0 && d[0] != 0) {
		char *n = g_utf16_to_utf8((const gunichar2 *)d, MIN(v->size, 2048) / 2,
		    NULL, NULL, NULL);

		if (n != NULL)
			return n;
	}
	return name_of(v);
}

static variableLength *
attachment_data(Attachment *a)
{
	variableLength *v;

	if (a->FileData.data != NULL && a->FileData.size > 0)
		return &a->FileData;
	v = MAPIFindProperty(&a->MAPI, PROP_TAG(PT_BINARY, PR_ATTACH_DATA_OBJ));
	if (v != MAPI_UNDEFINED && v != NULL && v->data != NULL && v->size > 0)
		return v;
	return NULL;
}

/*
 * libytnef reports damage with printf() on stdout, where it would end
 * up in the daemon's journal and in test output: point stdout at
 * /dev/null for the call.  File descriptors are per process, so the
 * mailbox threads take turns.
 */
static int
parse_quietly(TNEFStruct *t, const void *data, size_t len)
{
	static GMutex lock;
	int saved, null, rc;

	g_mutex_lock(&lock);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved != -1 && null != -1)
		dup2(null, STDOUT_FILENO);
	rc = TNEFParseMemory((BYTE *)data, (long)len, t);
	fflush(stdout);
	if (saved != -1 && null != -1)
		dup2(saved, STDOUT_FILENO);
	if (saved != -1)
		close(saved);
	if (null != -1)
		close(null);
	g_mutex_unlock(&lock);
	return rc;
}

GPtrArray *
tnef_unpack(const void *data, size_t len, guint max_files, gint64 max_size,
    char **problem_r)
{
	GPtrArray *out;
	GString *skipped = NULL;
	TNEFStruct t;
	Attachment *a;
	guint32 sig;
	gboolean damaged;

	if (problem_r != NULL)
		*problem_r = NULL;
	if (data == NULL || len < 6 || len > G_MAXINT32) {
		if (problem_r != NULL)
			*problem_r = g_strdup("winmail.dat: too short or too large");
		return NULL;
	}
	memcpy(&sig, data, 4);
	if (GUINT32_FROM_LE(sig) != TNEF_SIGNATURE) {
		if (problem_r != NULL)
			*problem_r = g_strdup("winmail.dat: not TNEF (no signature)");
		return NULL;
	}
	TNEFInitialize(&t);
	t.Debug = 0;
	/* ytnef takes a non-const pointer but does not write through it */
	damaged = parse_quietly(&t, data, len) < 0;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)tnef_file_free);
	for (a = t.starting_attach.next; a != NULL; a = a->next) {
		variableLength *v = attachment_data(a);
		g_autofree char *name = NULL;
		tnef_file *f;

		if (v == NULL)
			continue;
		name = attachment_name(a);
		if (out->len >= max_files || (max_size > 0 && v->size > max_size)) {
			if (skipped == NULL)
				skipped = g_string_new("winmail.dat: left out ");
			else
				g_string_append(skipped, ", ");
			g_string_append_printf(skipped, "\"%.80s\" (%d bytes)", name, v->size);
			continue;
		}
		f = g_new0(tnef_file, 1);
		f->name = g_steal_pointer(&name);
		f->data = g_bytes_new(v->data, v->size);
		g_ptr_array_add(out, f);
	}
	TNEFFree(&t);
	if (damaged && out->len == 0) {
		g_ptr_array_unref(out);
		if (skipped != NULL)
			g_string_free(skipped, TRUE);
		if (problem_r != NULL)
			*problem_r = g_strdup("winmail.dat: damaged TNEF, kept as it is");
		return NULL;
	}
	if (damaged) {
		if (skipped == NULL)
			skipped = g_string_new("winmail.dat: damaged; unpacked what could be read");
		else
			g_string_append(skipped, "; the blob is damaged");
	}
	if (skipped != NULL) {
		if (problem_r != NULL)
			*problem_r = g_string_free(skipped, FALSE);
		else
			g_string_free(skipped, TRUE);
	}
	return out;
}
