/*
 * rules_filter.c - a literal prefilter in front of PCRE2, so that 500
 * rules cost one pass over the text instead of 500.
 *
 * At load, each subject, body and field pattern yields a "needle": the
 * longest literal run that every match must contain (rules_needle).
 * All needles go into one Aho-Corasick automaton.  Per message, the
 * subject and the body are scanned once; a pattern whose needle is not
 * in the text cannot match and is not run.  A pattern with no usable
 * needle is always run.
 *
 * Correctness rests on the extraction being conservative: whenever the
 * pattern syntax is not fully understood (alternation at the top level,
 * \Q...\E, extended mode), there is no needle.  Text and needles are
 * compared with ASCII letters folded to lowercase.  A caseless needle
 * holds no non-ASCII character and no k or s: under Unicode caseless
 * matching those also match U+212A KELVIN SIGN and U+017F LONG S (the
 * only ASCII letters with non-ASCII case partners in PCRE2 10.42,
 * checked by trying every code point).
 */
#include <string.h>

#include "rules_impl.h"

#define NEEDLE_MIN	3
#define FILTER_MAX_CELLS (16 * 1024 * 1024)	/* transition table entries (< 2^31) */

struct rules_filter {
	GHashTable	*ids;		/* needle -> id + 1 */
	GPtrArray	*needles;	/* char *, by id */
	guint8		 cls[256];	/* byte (folded) -> class */
	guint		 nclass;
	gint32		*delta;		/* state * nclass -> state (while building) */
	guint32		*jump;		/* the same as offsets: next * nclass << 1 | output */
	gint32		*out;		/* state -> needle id, -1 */
	gint32		*dict;		/* state -> next state with output, 0 none */
	guint		 nstates;
	gboolean	 usable;
};

/* ---------------------------------------------------------------- */
/* Needle extraction                                                */

typedef struct {
	GString		*run;
	GString		*best;
	gboolean	 caseless;
} needle_scan;

static void
run_end(needle_scan *ns)
{
	if (ns->run->len > ns->best->len)
		g_string_assign(ns->best, ns->run->str);
	g_string_truncate(ns->run, 0);
}

/* A quantifier that may repeat zero times: the last character is optional. */
static void
run_drop_last(needle_scan *ns)
{
	const char *prev;

	if (ns->run->len == 0)
		return;
	prev = g_utf8_find_prev_char(ns->run->str, ns->run->str + ns->run->len);
	g_string_truncate(ns->run, prev != NULL ? (gsize)(prev - ns->run->str) : 0);
}

/* One literal character (len bytes at p). */
static void
run_add(needle_scan *ns, const char *p, size_t len)
{
	unsigned char c = (unsigned char)*p;

	if (ns->caseless) {
		if (len != 1 || c >= 0x80 || c == 'k' || c == 'K' || c == 's' || c == 'S') {
			run_end(ns);
			return;
		}
		g_string_append_c(ns->run, g_ascii_tolower((char)c));
		return;
	}
	if (len == 1)
		g_string_append_c(ns->run, g_ascii_tolower((char)c));
	else
		g_string_append_len(ns->run, p, len);
}

/* Does an inline option setting "(?letters)" or "(?letters:" hold opt? */
static gboolean
inline_option(const char *p, char opt)
{
	const char *q;

	for (q = strstr(p, "(?"); q != NULL; q = strstr(q + 2, "(?")) {
		const char *r = q + 2;

		while (g_ascii_isalpha(*r) || *r == '-' || *r == '^') {
			if (*r == opt)
				return TRUE;
			r++;
		}
	}
	return FALSE;
}

/* p[*i] is '['; move past the class.  FALSE if it does not end. */
static gboolean
skip_class(const char *p, size_t n, size_t *i)
{
	size_t j = *i + 1;

	if (j < n && p[j] == '^')
		j++;
	if (j < n && p[j] == ']')
		j++;
	while (j < n) {
		if (p[j] == '\\')
			j += 2;
		else if (p[j] == '[' && j + 1 < n && p[j + 1] == ':') {
			const char *e = strstr(p + j + 2, ":]");

			if (e == NULL)
				return FALSE;
			j = (size_t)(e - p) + 2;
		} else if (p[j] == ']') {
			*i = j + 1;
			return TRUE;
		} else
			j++;
	}
	return FALSE;
}

/* p[*i] is '('; move past the group, nested groups and all. */
static gboolean
skip_group(const char *p, size_t n, size_t *i)
{
	size_t j = *i;
	int depth = 0;

	while (j < n) {
		if (p[j] == '\\')
			j += 2;
		else if (p[j] == '[') {
			if (!skip_class(p, n, &j))
				return FALSE;
		} else {
			if (p[j] == '(')
				depth++;
			else if (p[j] == ')' && --depth == 0) {
				*i = j + 1;
				return TRUE;
			}
			j++;
		}
	}
	return FALSE;
}

static void
skip_to(const char *p, size_t n, size_t *i, char close)
{
	while (*i < n && p[*i] != close)
		(*i)++;
	if (*i < n)
		(*i)++;
}

/* After "\d" (d alphanumeric): skip what belongs to the escape. */
static void
skip_escape_args(const char *p, size_t n, size_t *i, char d)
{
	size_t k;

	if (*i < n && p[*i] == '{') {
		skip_to(p, n, i, '}');
		return;
	}
	switch (d) {
	case 'x':
		for (k = 0; k < 2 && *i < n && g_ascii_isxdigit(p[*i]); k++)
			(*i)++;
		break;
	case 'c':
		if (*i < n)
			(*i)++;
		break;
	case 'p':
	case 'P':
		if (*i < n)
			(*i)++;
		break;
	case 'g':
	case 'k':
		if (*i < n && (p[*i] == '<' || p[*i] == '\''))
			skip_to(p, n, i, p[*i] == '<' ? '>' : '\'');
		else
			while (*i < n && (g_ascii_isdigit(p[*i]) || p[*i] == '-' || p[*i] == '+'))
				(*i)++;
		break;
	default:
		if (g_ascii_isdigit(d))
			while (*i < n && g_ascii_isdigit(p[*i]))
				(*i)++;
		break;
	}
}

/* "{n}", "{n,}", "{n,m}": skip it when it is one (it repeats the last atom). */
static void
skip_brace(const char *p, size_t n, size_t *i)
{
	size_t j = *i + 1;

	while (j < n && (g_ascii_isdigit(p[j]) || p[j] == ',' || p[j] == ' '))
		j++;
	*i = j < n && p[j] == '}' ? j + 1 : *i + 1;
}

static gboolean
needle_walk(needle_scan *ns, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];

		switch (c) {
		case '|':
		case ')':
			return FALSE;
		case '(':
			run_end(ns);
			if (!skip_group(p, n, &i))
				return FALSE;
			continue;
		case '[':
			run_end(ns);
			if (!skip_class(p, n, &i))
				return FALSE;
			continue;
		case '?':
		case '*':
			run_drop_last(ns);
			run_end(ns);
			i++;
			continue;
		case '{':
			run_drop_last(ns);
			run_end(ns);
			skip_brace(p, n, &i);
			continue;
		case '+':
		case '.':
		case '^':
		case '$':
			run_end(ns);
			i++;
			continue;
		case '\\':
			if (i + 1 >= n)
				return FALSE;
			if (g_ascii_isalnum(p[i + 1])) {
				run_end(ns);
				i += 2;
				skip_escape_args(p, n, &i, p[i - 1]);
				continue;
			}
			i++;
			break;
		}
		{
			size_t len = MIN((size_t)g_utf8_skip[(guchar)p[i]], n - i);

			run_add(ns, p + i, len);
			i += len;
		}
	}
	run_end(ns);
	return TRUE;
}

char *
rules_needle(const char *pattern, gboolean nocase)
{
	needle_scan ns;
	gboolean ok;
	char *out = NULL;

	if (pattern == NULL || strstr(pattern, "\\Q") != NULL || inline_option(pattern, 'x'))
		return NULL;
	ns.caseless = nocase || inline_option(pattern, 'i');
	ns.run = g_string_new(NULL);
	ns.best = g_string_new(NULL);
	ok = needle_walk(&ns, pattern, strlen(pattern));
	if (ok && ns.best->len >= NEEDLE_MIN)
		out = g_strdup(ns.best->str);
	g_string_free(ns.run, TRUE);
	g_string_free(ns.best, TRUE);
	return out;
}

/* ---------------------------------------------------------------- */
/* The automaton                                                    */

rules_filter *
rules_filter_new(void)
{
	rules_filter *f = g_new0(rules_filter, 1);

	f->ids = g_hash_table_new(g_str_hash, g_str_equal);
	f->needles = g_ptr_array_new_with_free_func(g_free);
	return f;
}

void
rules_filter_free(rules_filter *f)
{
	if (f == NULL)
		return;
	g_hash_table_destroy(f->ids);
	g_ptr_array_free(f->needles, TRUE);
	g_free(f->delta);
	g_free(f->jump);
	g_free(f->out);
	g_free(f->dict);
	g_free(f);
}

int
rules_filter_add(rules_filter *f, const char *pattern, gboolean nocase)
{
	g_autofree char *needle = rules_needle(pattern, nocase);
	gpointer id;

	if (needle == NULL)
		return -1;
	if ((id = g_hash_table_lookup(f->ids, needle)) != NULL)
		return GPOINTER_TO_INT(id) - 1;
	g_ptr_array_add(f->needles, g_steal_pointer(&needle));
	g_hash_table_insert(f->ids, g_ptr_array_index(f->needles, f->needles->len - 1),
	    GINT_TO_POINTER(f->needles->len));
	return (int)f->needles->len - 1;
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
	if (f->needles->len == 0)
		return;
	build_classes(f);
	if (!build_trie(f))
		return;		/* too big: every pattern runs */
	build_links(f);
	build_jump(f);
	f->usable = TRUE;
}

static void
mark(const rules_filter *f, gint32 s, guint8 *bits)
{
	gint32 d;

	if (f->out[s] >= 0)
		bits[f->out[s] >> 3] |= (guint8)(1u << (f->out[s] & 7));
	for (d = f->dict[s]; d != 0; d = f->dict[d])
		bits[f->out[d] >> 3] |= (guint8)(1u << (f->out[d] & 7));
}

/*
 * The hot loop: locals, because stores through bits (a byte pointer)
 * could alias anything and would make the compiler reload every field.
 */
void
rules_filter_scan(const rules_filter *f, const char *text, size_t len, guint8 *bits)
{
	const guchar *p = (const guchar *)text, *end = p + len;
	const guint32 *jump = f->jump;
	const guint8 *cls = f->cls;
	const guint32 ncl = f->nclass;
	guint32 at = 0;

	if (!f->usable)
		return;
	memset(bits, 0, (f->needles->len + 7) / 8);
	for (; p < end; p++) {
		guint32 e = jump[at + cls[*p]];

		at = e >> 1;
		if (e & 1)
			mark(f, (gint32)(at / ncl), bits);
	}
}
