/*
 * rules_filter.c - a literal prefilter in front of PCRE2, so that 500
 * rules cost one pass over the text instead of 500.
 *
 * At load, each subject, body and field pattern yields clauses of
 * needles (rules_needle.c): literals of which every match holds at
 * least one per clause.  All needles go into one Aho-Corasick
 * automaton.  Per message, the subject and the body are scanned once; a
 * pattern with a clause none of whose needles is in the text cannot
 * match and is not run.  A pattern with no clause is always run.
 *
 * Text and needles are compared with ASCII letters folded to lowercase.
 * Caseless, k and s also match U+212A KELVIN SIGN and U+017F LONG S
 * (the only non-ASCII case partners of ASCII letters in PCRE2 10.42,
 * checked by trying every code point): both are needles of their own,
 * and a text holding either marks every caseless needle with a k or s
 * as present.
 */
#include <string.h>

#include "rules_impl.h"

#define FILTER_MAX_CELLS (16 * 1024 * 1024)	/* transition table entries (< 2^31) */

/* The two non-ASCII characters that caseless k and s also match. */
#define LONG_S		"\xc5\xbf"
#define KELVIN		"\xe2\x84\xaa"

struct rules_filter {
	GHashTable	*ids;		/* needle -> id + 1 */
	GPtrArray	*needles;	/* char *, by id */
	GByteArray	*ks;		/* by id: a caseless needle holding k or s */
	GArray		*ks_ids;	/* int: the ids with ks set */
	int		 special[2];	/* ids of LONG_S and KELVIN, -1 */
	guint8		 cls[256];	/* byte (folded) -> class */
	guint		 nclass;
	gint32		*delta;		/* state * nclass -> state (while building) */
	guint32		*jump;		/* the same as offsets: next * nclass << 1 | output */
	gint32		*out;		/* state -> needle id, -1 */
	gint32		*dict;		/* state -> next state with output, 0 none */
	guint		 nstates;
	size_t		 maxlen;	/* of the longest needle */
	gboolean	 usable;
};

/* ---------------------------------------------------------------- */
/* The automaton                                                    */

rules_filter *
rules_filter_new(void)
{
	rules_filter *f = g_new0(rules_filter, 1);

	f->ids = g_hash_table_new(g_str_hash, g_str_equal);
	f->needles = g_ptr_array_new_with_free_func(g_free);
	f->ks = g_byte_array_new();
	f->ks_ids = g_array_new(FALSE, FALSE, sizeof(int));
	f->special[0] = f->special[1] = -1;
	return f;
}

void
rules_filter_free(rules_filter *f)
{
	if (f == NULL)
		return;
	g_hash_table_destroy(f->ids);
	g_ptr_array_free(f->needles, TRUE);
	g_byte_array_free(f->ks, TRUE);
	g_array_free(f->ks_ids, TRUE);
	g_free(f->delta);
	g_free(f->jump);
	g_free(f->out);
	g_free(f->dict);
	g_free(f);
}

static int
needle_id(rules_filter *f, const char *needle, gboolean ks)
{
	gpointer p = g_hash_table_lookup(f->ids, needle);
	int id;

	if (p != NULL)
		id = GPOINTER_TO_INT(p) - 1;
	else {
		guint8 no = 0;

		g_ptr_array_add(f->needles, g_strdup(needle));
		g_byte_array_append(f->ks, &no, 1);
		id = (int)f->needles->len - 1;
		g_hash_table_insert(f->ids, g_ptr_array_index(f->needles, id),
		    GINT_TO_POINTER(id + 1));
	}
	if (ks && !f->ks->data[id]) {
		f->ks->data[id] = 1;
		g_array_append_val(f->ks_ids, id);
	}
	return id;
}

int *
rules_filter_add(rules_filter *f, const char *pattern, gboolean nocase)
{
	g_autoptr(GPtrArray) cnf = rules_needles(pattern, nocase);
	gboolean caseless = rules_pattern_caseless(pattern, nocase);
	GArray *req;
	guint i, j;
	int n;

	if (cnf == NULL)
		return NULL;
	req = g_array_new(FALSE, FALSE, sizeof(int));
	n = (int)cnf->len;
	g_array_append_val(req, n);
	for (i = 0; i < cnf->len; i++) {
		const GPtrArray *cl = g_ptr_array_index(cnf, i);

		n = (int)cl->len;
		g_array_append_val(req, n);
		for (j = 0; j < cl->len; j++) {
			const char *needle = g_ptr_array_index(cl, j);

			n = needle_id(f, needle, caseless && strpbrk(needle, "ks") != NULL);
			g_array_append_val(req, n);
		}
	}
	return (int *)(void *)g_array_free(req, FALSE);
}

guint
rules_filter_count(const rules_filter *f)
{
	return f != NULL && f->usable ? f->needles->len : 0;
}

static void
build_classes(rules_filter *f)
{
	guint i, c;

	memset(f->cls, 0, sizeof(f->cls));
	f->nclass = 1;			/* 0: a byte no needle has */
	for (i = 0; i < f->needles->len; i++) {
		const guchar *p = g_ptr_array_index(f->needles, i);

		for (; *p != '\0'; p++)
			if (f->cls[*p] == 0)
				f->cls[*p] = (guint8)MIN(f->nclass++, 255);
	}
	/* Text is folded the way needles were: A-Z read as a-z. */
	for (c = 'A'; c <= 'Z'; c++)
		f->cls[c] = f->cls[(guchar)g_ascii_tolower((char)c)];
}

static gboolean
build_trie(rules_filter *f)
{
	guint i, cap, total = 1;

	for (i = 0; i < f->needles->len; i++)
		total += strlen(g_ptr_array_index(f->needles, i));
	if ((guint64)total * f->nclass > FILTER_MAX_CELLS || f->nclass > 255)
		return FALSE;
	cap = total;
	f->delta = g_new0(gint32, (gsize)cap * f->nclass);
	f->out = g_new(gint32, cap);
	f->dict = g_new0(gint32, cap);
	for (i = 0; i < cap; i++)
		f->out[i] = -1;
	f->nstates = 1;
	for (i = 0; i < f->needles->len; i++) {
		const guchar *p = g_ptr_array_index(f->needles, i);
		gint32 s = 0;

		for (; *p != '\0'; p++) {
			gint32 *t = &f->delta[(gsize)s * f->nclass + f->cls[*p]];

			if (*t == 0)
				*t = (gint32)f->nstates++;
			s = *t;
		}
		f->out[s] = (gint32)i;
	}
	return TRUE;
}

/* Breadth first: failure transitions folded into delta, output links. */
static void
build_links(rules_filter *f)
{
	gint32 *fail = g_new0(gint32, f->nstates);
	gint32 *queue = g_new(gint32, f->nstates);
	guint head = 0, tail = 0, c;

	for (c = 0; c < f->nclass; c++)
		if (f->delta[c] != 0)
			queue[tail++] = f->delta[c];
	while (head < tail) {
		gint32 s = queue[head++];

		for (c = 0; c < f->nclass; c++) {
			gint32 *t = &f->delta[(gsize)s * f->nclass + c];
			gint32 via = f->delta[(gsize)fail[s] * f->nclass + c];

			if (*t == 0) {
				*t = via;
				continue;
			}
			fail[*t] = via;
			f->dict[*t] = f->out[via] >= 0 ? via : f->dict[via];
			queue[tail++] = *t;
		}
	}
	g_free(fail);
	g_free(queue);
}

/* Offsets instead of state numbers, and the output flag in bit 0. */
static void
build_jump(rules_filter *f)
{
	gsize i, cells = (gsize)f->nstates * f->nclass;

	f->jump = g_new(guint32, cells);
	for (i = 0; i < cells; i++) {
		gint32 t = f->delta[i];
		guint32 hit = f->out[t] >= 0 || f->dict[t] != 0;

		f->jump[i] = ((guint32)t * f->nclass) << 1 | hit;
	}
	g_clear_pointer(&f->delta, g_free);
}

void
rules_filter_build(rules_filter *f)
{
	guint i;

	if (f->needles->len == 0)
		return;
	/* Found in a text, these make every caseless k or s needle present. */
	if (f->ks_ids->len > 0) {
		f->special[0] = needle_id(f, LONG_S, FALSE);
		f->special[1] = needle_id(f, KELVIN, FALSE);
	}
	build_classes(f);
	if (!build_trie(f))
		return;		/* too big: every pattern runs */
	build_links(f);
	build_jump(f);
	for (i = 0; i < f->needles->len; i++)
		f->maxlen = MAX(f->maxlen, strlen(g_ptr_array_index(f->needles, i)));
	f->usable = TRUE;
}

static inline void
set_bit(guint8 *bits, int id)
{
	bits[id >> 3] |= (guint8)(1u << (id & 7));
}

static inline gboolean
bit_set(const guint8 *bits, int id)
{
	return (bits[id >> 3] >> (id & 7)) & 1;
}

static void
mark(const rules_filter *f, gint32 s, guint8 *bits)
{
	gint32 d;

	if (f->out[s] >= 0)
		set_bit(bits, f->out[s]);
	for (d = f->dict[s]; d != 0; d = f->dict[d])
		set_bit(bits, f->out[d]);
}

/* One automaton run over p[0..n) from state at; the state it ends in. */
static inline guint32
scan_run(const rules_filter *f, const guchar *p, size_t n, guint32 at, guint8 *bits)
{
	const guint32 *jump = f->jump;
	const guint8 *cls = f->cls;
	size_t i;

	for (i = 0; i < n; i++) {
		guint32 e = jump[at + cls[p[i]]];

		at = e >> 1;
		if (e & 1)
			mark(f, (gint32)(at / f->nclass), bits);
	}
	return at;
}

/*
 * The hot loop.  Each step waits for the table load of the step before,
 * so the text is scanned as two halves at once: the first half runs on
 * by the longest needle less one byte, and every occurrence is found by
 * one of the two runs (the second finds those starting in its half).
 * Locals, because stores through bits (a byte pointer) could alias
 * anything and would make the compiler reload every field.
 */
void
rules_filter_scan(const rules_filter *f, const char *text, size_t len, guint8 *bits)
{
	const guchar *p = (const guchar *)text;
	const guint32 *jump = f->jump;
	const guint8 *cls = f->cls;
	const guint32 ncl = f->nclass;
	size_t half, n1, n2, both, i;
	guint32 a = 0, b = 0;

	if (!f->usable)
		return;
	memset(bits, 0, (f->needles->len + 7) / 8);
	if (len < 4 * f->maxlen + 64)
		(void)scan_run(f, p, len, 0, bits);
	else {
		half = len / 2;
		n1 = half + f->maxlen - 1;	/* < len: len >= 4 * maxlen */
		n2 = len - half;
		both = MIN(n1, n2);
		for (i = 0; i < both; i++) {
			guint32 ea = jump[a + cls[p[i]]];
			guint32 eb = jump[b + cls[p[half + i]]];

			a = ea >> 1;
			b = eb >> 1;
			if (G_UNLIKELY((ea | eb) & 1)) {
				if (ea & 1)
					mark(f, (gint32)(a / ncl), bits);
				if (eb & 1)
					mark(f, (gint32)(b / ncl), bits);
			}
		}
		if (n1 > both)
			(void)scan_run(f, p + both, n1 - both, a, bits);
		else
			(void)scan_run(f, p + half + both, n2 - both, b, bits);
	}
	if (f->special[0] >= 0 && (bit_set(bits, f->special[0]) || bit_set(bits, f->special[1])))
		for (i = 0; i < f->ks_ids->len; i++)
			set_bit(bits, g_array_index(f->ks_ids, int, i));
}
