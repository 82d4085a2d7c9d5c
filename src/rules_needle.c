/*
 * rules_needle.c - what a pattern requires of a text, for the literal
 * prefilter (rules_filter.c).
 *
 * Each subject, body and field pattern is read once more at load, by a
 * small parser of the PCRE2 syntax, for what every match must contain:
 * clauses of literal strings ("needles"), each clause a set of which at
 * least one is in the text.  "\b(?:urgent|asap)\b" needs "urgent" or
 * "asap"; "(?:change|update).*\bbank" needs one of those two and
 * "bank".  A part is known either exactly (the set of strings it
 * matches, multiplied out along a sequence up to EXACT_MAX) or by its
 * clauses; an alternation unites the best clause of each branch.
 *
 * Correctness rests on the parser being conservative: whatever part of
 * the syntax it does not fully understand (\Q...\E, extended mode,
 * recursion, conditionals, verbs, odd braces) leaves the whole pattern
 * without needles, and parts it cannot pin down (classes, \d, ., \p,
 * backreferences, lookarounds) count as "any text".  Needles hold ASCII
 * letters folded to lowercase (the scan folds the text the same way).
 * Under caseless matching a non-ASCII literal counts as any text (its
 * case partners are other bytes); k and s, which also match U+212A and
 * U+017F, are handled by the scan.
 */
#include <string.h>

#include "rules_impl.h"

#define NEEDLE_MIN	3	/* bytes; shorter needles are in most texts */
#define EXACT_MAX	16	/* strings an exact set may hold */
#define CLAUSE_MAX	64	/* needles in one clause */
#define CLAUSES_MAX	4	/* clauses kept per pattern */
#define DEPTH_MAX	64	/* groups nested */
#define REPEAT_MAX	8	/* x{n}: copies of x spelt out */
#define UNBOUNDED	G_MAXUINT

/* ---------------------------------------------------------------- */
/* What a part of a pattern matches                                 */

/*
 * Either the exact set of strings it matches (folded), or clauses that
 * every string it matches satisfies (none: any text).
 */
typedef struct {
	GPtrArray	*exact;		/* char *; NULL: not known exactly */
	GPtrArray	*cnf;		/* GPtrArray * of char * */
} rx_info;

static GPtrArray *
strs_new(void)
{
	return g_ptr_array_new_with_free_func(g_free);
}

static gboolean
strs_has(const GPtrArray *a, const char *s)
{
	guint i;

	for (i = 0; i < a->len; i++)
		if (strcmp(g_ptr_array_index(a, i), s) == 0)
			return TRUE;
	return FALSE;
}

static void
strs_add(GPtrArray *a, const char *s)
{
	if (!strs_has(a, s))
		g_ptr_array_add(a, g_strdup(s));
}

static GPtrArray *
strs_copy(const GPtrArray *a)
{
	GPtrArray *out = strs_new();
	guint i;

	for (i = 0; i < a->len; i++)
		g_ptr_array_add(out, g_strdup(g_ptr_array_index(a, i)));
	return out;
}

static rx_info *
info_new(GPtrArray *exact)
{
	rx_info *x = g_new0(rx_info, 1);

	x->exact = exact;
	x->cnf = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	return x;
}

static rx_info *
info_any(void)
{
	return info_new(NULL);
}

static rx_info *
info_exact(const char *s, size_t len)
{
	GPtrArray *a = strs_new();

	g_ptr_array_add(a, g_strndup(s, len));
	return info_new(a);
}

static void
info_free(rx_info *x)
{
	if (x == NULL)
		return;
	if (x->exact != NULL)
		g_ptr_array_unref(x->exact);
	g_ptr_array_unref(x->cnf);
	g_free(x);
}

/* ---- clauses ---- */

static gboolean
clause_usable(const GPtrArray *cl)
{
	guint i;

	if (cl->len == 0 || cl->len > CLAUSE_MAX)
		return FALSE;
	for (i = 0; i < cl->len; i++)
		if (strlen(g_ptr_array_index(cl, i)) < NEEDLE_MIN)
			return FALSE;
	return TRUE;
}

static size_t
clause_min_len(const GPtrArray *cl)
{
	size_t m = G_MAXSIZE;
	guint i;

	for (i = 0; i < cl->len; i++)
		m = MIN(m, strlen(g_ptr_array_index(cl, i)));
	return m;
}

/* Rarer first: longer shortest needle, then fewer needles. */
static int
clause_cmp(gconstpointer pa, gconstpointer pb)
{
	const GPtrArray *a = *(GPtrArray *const *)pa, *b = *(GPtrArray *const *)pb;
	size_t la = clause_min_len(a), lb = clause_min_len(b);

	if (la != lb)
		return la > lb ? -1 : 1;
	return (a->len > b->len) - (a->len < b->len);
}

/* A needle that holds another of its clause adds nothing: drop it. */
static GPtrArray *
clause_minimal(const GPtrArray *cl)
{
	GPtrArray *out = strs_new();
	guint i, j;

	for (i = 0; i < cl->len; i++) {
		const char *s = g_ptr_array_index(cl, i);
		gboolean redundant = FALSE;

		for (j = 0; j < cl->len && !redundant; j++) {
			const char *t = g_ptr_array_index(cl, j);

			if (j == i || strstr(s, t) == NULL)
				continue;
			/* equal strings: keep the first */
			redundant = strcmp(s, t) != 0 || j < i;
		}
		if (!redundant)
			g_ptr_array_add(out, g_strdup(s));
	}
	return out;
}

/* Add a copy of clause cl to cnf, when it can filter anything. */
static void
cnf_add(GPtrArray *cnf, const GPtrArray *cl)
{
	if (!clause_usable(cl))
		return;
	g_ptr_array_add(cnf, clause_minimal(cl));
	if (cnf->len > 2 * CLAUSES_MAX) {
		/* Dropping a clause only weakens the filter. */
		g_ptr_array_sort(cnf, clause_cmp);
		g_ptr_array_set_size(cnf, CLAUSES_MAX);
	}
}

/* The clause of x that filters best, NULL when none (borrowed). */
static const GPtrArray *
info_best(const rx_info *x)
{
	const GPtrArray *best = NULL;
	guint i;

	if (x->exact != NULL)
		return clause_usable(x->exact) ? x->exact : NULL;
	for (i = 0; i < x->cnf->len; i++) {
		const GPtrArray *cl = g_ptr_array_index(x->cnf, i);

		if (best == NULL || clause_cmp(&cl, &best) < 0)
			best = cl;
	}
	return best;
}

/* ---- a sequence of parts ---- */

typedef struct {
	GPtrArray	*run;		/* exact strings since the last inexact part */
	GPtrArray	*cnf;
	gboolean	 exact;		/* every part so far was exact */
} seq;

static void
seq_init(seq *q)
{
	q->run = strs_new();
	g_ptr_array_add(q->run, g_strdup(""));
	q->cnf = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	q->exact = TRUE;
}

static void
seq_restart(seq *q, GPtrArray *run)
{
	cnf_add(q->cnf, q->run);
	g_ptr_array_unref(q->run);
	q->run = run;
	q->exact = FALSE;
}

/* Append part x (consumed). */
static void
seq_push(seq *q, rx_info *x)
{
	guint i, j;

	if (x->exact != NULL && q->run->len * x->exact->len <= EXACT_MAX) {
		GPtrArray *prod = strs_new();

		for (i = 0; i < q->run->len; i++)
			for (j = 0; j < x->exact->len; j++) {
				g_autofree char *s = g_strconcat(g_ptr_array_index(q->run, i),
				    g_ptr_array_index(x->exact, j), NULL);

				strs_add(prod, s);
			}
		g_ptr_array_unref(q->run);
		q->run = prod;
	} else if (x->exact != NULL) {
		/* Too many combinations: the run so far is one clause. */
		seq_restart(q, g_ptr_array_ref(x->exact));
	} else {
		GPtrArray *empty = strs_new();

		g_ptr_array_add(empty, g_strdup(""));
		seq_restart(q, empty);
		for (i = 0; i < x->cnf->len; i++)
			cnf_add(q->cnf, g_ptr_array_index(x->cnf, i));
	}
	info_free(x);
}

static rx_info *
seq_end(seq *q)
{
	rx_info *x;

	if (q->exact) {
		x = info_new(q->run);
		g_ptr_array_unref(q->cnf);
		return x;
	}
	cnf_add(q->cnf, q->run);
	g_ptr_array_unref(q->run);
	x = info_any();
	g_ptr_array_unref(x->cnf);
	x->cnf = q->cnf;
	return x;
}

/* Branches of an alternation (consumed): one of them matched. */
static rx_info *
alt_join(GPtrArray *branches)
{
	GPtrArray *uni;
	rx_info *x;
	guint i, j;

	if (branches->len == 1)
		return g_ptr_array_steal_index(branches, 0);
	uni = strs_new();
	for (i = 0; i < branches->len && uni != NULL; i++) {
		const rx_info *b = g_ptr_array_index(branches, i);

		if (b->exact == NULL)
			g_clear_pointer(&uni, g_ptr_array_unref);
		else
			for (j = 0; j < b->exact->len; j++)
				strs_add(uni, g_ptr_array_index(b->exact, j));
	}
	if (uni != NULL && uni->len <= EXACT_MAX)
		return info_new(uni);
	if (uni != NULL)
		g_ptr_array_unref(uni);
	/* One clause: the best of each branch, united. */
	uni = strs_new();
	for (i = 0; i < branches->len; i++) {
		const GPtrArray *best = info_best(g_ptr_array_index(branches, i));

		if (best == NULL) {
			g_ptr_array_unref(uni);
			return info_any();
		}
		for (j = 0; j < best->len; j++)
			strs_add(uni, g_ptr_array_index(best, j));
	}
	x = info_any();
	cnf_add(x->cnf, uni);
	g_ptr_array_unref(uni);
	return x;
}

/* ---------------------------------------------------------------- */
/* The parser                                                       */

typedef struct {
	const char	*p;
	size_t		 n, i;
	gboolean	 caseless;
	gboolean	 fail;		/* syntax not understood: no needles */
	int		 depth;
} rx_parse;

static rx_info *parse_alt(rx_parse *ps);

static rx_info *
parse_fail(rx_parse *ps)
{
	ps->fail = TRUE;
	return info_any();
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

/* Move past the next close (included); FALSE if there is none. */
static gboolean
skip_to(rx_parse *ps, char close)
{
	while (ps->i < ps->n && ps->p[ps->i] != close)
		ps->i++;
	if (ps->i >= ps->n)
		return FALSE;
	ps->i++;
	return TRUE;
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
			const char *e = g_strstr_len(p + j + 2, (gssize)(n - j - 2), ":]");

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

/* One literal character, s[0..len). */
static rx_info *
literal(rx_parse *ps, const char *s, size_t len)
{
	char c;

	if (len == 1 && (guchar)s[0] < 0x80) {
		c = g_ascii_tolower(s[0]);
		return info_exact(&c, 1);
	}
	/* Caseless, a non-ASCII letter also matches other bytes. */
	if (ps->caseless)
		return info_any();
	return info_exact(s, len);
}

static rx_info *
parse_literal(rx_parse *ps)
{
	size_t len = MIN((size_t)g_utf8_skip[(guchar)ps->p[ps->i]], ps->n - ps->i);
	rx_info *x = literal(ps, ps->p + ps->i, len);

	ps->i += len;
	return x;
}

/* "[abc]": up to four plain ASCII characters; anything else is any. */
static rx_info *
parse_class(rx_parse *ps)
{
	size_t start = ps->i, j;
	GPtrArray *set;

	if (!skip_class(ps->p, ps->n, &ps->i))
		return parse_fail(ps);
	set = strs_new();
	for (j = start + 1; j + 1 < ps->i; j++) {
		guchar c = (guchar)ps->p[j];
		char f = g_ascii_tolower((char)c);

		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '[' || c == '-' ||
		    (c == '^' && j == start + 1) || (c == ']' && j != start + 1) ||
		    set->len >= 4) {
			g_ptr_array_unref(set);
			return info_any();
		}
		if (!strs_has(set, (char[]){ f, '\0' }))
			g_ptr_array_add(set, g_strndup(&f, 1));
	}
	if (set->len == 0) {
		g_ptr_array_unref(set);
		return info_any();
	}
	return info_new(set);
}

/*
 * A group reference by name or number after \g or \k: "{...}", "<...>"
 * or "'...'"; ps->i is on the opening character.  It matches what the
 * group matched, which says nothing about required literals.
 */
static rx_info *
skip_group_name(rx_parse *ps)
{
	char open = ps->p[ps->i];
	char close = open == '{' ? '}' : open == '<' ? '>' : '\'';

	if (open == '\'')
		ps->i++;
	return skip_to(ps, close) ? info_any() : parse_fail(ps);
}

/* "\d", "\.", "\x{41}", ...: what it matches; fails on the unknown. */
static rx_info *
parse_escape(rx_parse *ps)
{
	char d;

	if (ps->i + 1 >= ps->n)
		return parse_fail(ps);
	d = ps->p[ps->i + 1];
	if (!g_ascii_isalnum(d)) {
		/* An escaped non-alphanumeric is itself. */
		ps->i++;
		return parse_literal(ps);
	}
	ps->i += 2;
	switch (d) {
	case 'b': case 'B': case 'A': case 'z': case 'Z': case 'G': case 'K':
		return info_exact("", 0);
	case 'd': case 'D': case 'w': case 'W': case 's': case 'S': case 'h': case 'H':
	case 'v': case 'V': case 'R': case 'X': case 'n': case 't': case 'r': case 'f':
	case 'e': case 'a':
		return info_any();
	case 'N':
		if (ps->i < ps->n && ps->p[ps->i] == '{')
			return parse_fail(ps);
		return info_any();
	case 'p': case 'P':
		if (ps->i < ps->n && ps->p[ps->i] == '{')
			return skip_to(ps, '}') ? info_any() : parse_fail(ps);
		if (ps->i >= ps->n || !g_ascii_isalpha(ps->p[ps->i]))
			return parse_fail(ps);
		ps->i++;
		return info_any();
	case 'x':
		if (ps->i < ps->n && ps->p[ps->i] == '{')
			return skip_to(ps, '}') ? info_any() : parse_fail(ps);
		for (d = 0; d < 2 && ps->i < ps->n && g_ascii_isxdigit(ps->p[ps->i]); d++)
			ps->i++;
		return info_any();
	case 'o':
		if (ps->i < ps->n && ps->p[ps->i] == '{')
			return skip_to(ps, '}') ? info_any() : parse_fail(ps);
		return parse_fail(ps);
	case 'c':
		if (ps->i >= ps->n || (guchar)ps->p[ps->i] >= 0x80)
			return parse_fail(ps);
		ps->i++;
		return info_any();
	case 'g':
		if (ps->i < ps->n && strchr("{<'", ps->p[ps->i]) != NULL)
			return skip_group_name(ps);
		if (ps->i < ps->n && (ps->p[ps->i] == '+' || ps->p[ps->i] == '-'))
			ps->i++;
		if (ps->i >= ps->n || !g_ascii_isdigit(ps->p[ps->i]))
			return parse_fail(ps);
		while (ps->i < ps->n && g_ascii_isdigit(ps->p[ps->i]))
			ps->i++;
		return info_any();
	case 'k':
		if (ps->i < ps->n && strchr("{<'", ps->p[ps->i]) != NULL)
			return skip_group_name(ps);
		return parse_fail(ps);
	default:
		if (g_ascii_isdigit(d)) {
			/* A backreference or an octal code, and any digits after it. */
			while (ps->i < ps->n && g_ascii_isdigit(ps->p[ps->i]))
				ps->i++;
			return info_any();
		}
		return parse_fail(ps);	/* \Q, \E, \u, ... */
	}
}

/* "(...)" in its forms; lookarounds match no text of their own. */
static rx_info *
parse_group(rx_parse *ps)
{
	gboolean keep = TRUE;
	rx_info *x;

	if (ps->depth >= DEPTH_MAX)
		return parse_fail(ps);
	ps->i++;
	if (ps->i < ps->n && ps->p[ps->i] == '*')
		return parse_fail(ps);		/* verbs, (*pla:...) */
	if (ps->i < ps->n && ps->p[ps->i] == '?') {
		char c = ++ps->i < ps->n ? ps->p[ps->i] : '\0';
		char c2 = ps->i + 1 < ps->n ? ps->p[ps->i + 1] : '\0';

		switch (c) {
		case ':': case '|': case '>':
			ps->i++;
			break;
		case '=': case '!':
			ps->i++;
			keep = FALSE;
			break;
		case '<':
			if (c2 == '=' || c2 == '!') {
				ps->i += 2;
				keep = FALSE;
			} else if (!skip_to(ps, '>'))
				return parse_fail(ps);
			break;
		case '\'':
			ps->i++;
			if (!skip_to(ps, '\''))
				return parse_fail(ps);
			break;
		case 'P':
			if (c2 == '<') {
				if (!skip_to(ps, '>'))
					return parse_fail(ps);
			} else if (c2 == '=')
				return skip_to(ps, ')') ? info_any() : parse_fail(ps);
			else
				return parse_fail(ps);
			break;
		case '#':
			return skip_to(ps, ')') ? info_exact("", 0) : parse_fail(ps);
		default:
			/* Option letters: "(?i)" sets them, "(?i:" opens a group. */
			while (ps->i < ps->n && (strchr("imnsxJUr-^", ps->p[ps->i]) != NULL) &&
			    ps->p[ps->i] != '\0')
				ps->i++;
			if (ps->i < ps->n && ps->p[ps->i] == ')') {
				ps->i++;
				return info_exact("", 0);
			}
			if (ps->i >= ps->n || ps->p[ps->i] != ':')
				return parse_fail(ps);	/* (?R), (?1), (?&n), (?(, (?C */
			ps->i++;
			break;
		}
	}
	ps->depth++;
	x = parse_alt(ps);
	ps->depth--;
	if (ps->fail)
		return x;
	if (ps->i >= ps->n || ps->p[ps->i] != ')') {
		info_free(x);
		return parse_fail(ps);
	}
	ps->i++;
	if (!keep) {
		info_free(x);
		return info_exact("", 0);
	}
	return x;
}

static rx_info *
parse_atom(rx_parse *ps)
{
	switch (ps->p[ps->i]) {
	case '(':
		return parse_group(ps);
	case '[':
		return parse_class(ps);
	case '\\':
		return parse_escape(ps);
	case '.':
		ps->i++;
		return info_any();
	case '^':
	case '$':
		ps->i++;
		return info_exact("", 0);
	case '*':
	case '+':
	case '?':
	case '{':
		return parse_fail(ps);	/* nothing to repeat, or an odd brace */
	default:
		return parse_literal(ps);
	}
}

static guint
parse_number(rx_parse *ps, gboolean *ok_r)
{
	guint v = 0;

	*ok_r = ps->i < ps->n && g_ascii_isdigit(ps->p[ps->i]);
	while (ps->i < ps->n && g_ascii_isdigit(ps->p[ps->i])) {
		v = MIN(v * 10 + (guint)(ps->p[ps->i] - '0'), 1000000u);
		ps->i++;
	}
	return v;
}

/*
 * "{n}", "{n,}", "{n,m}" at p[i].  Anything else with a brace fails:
 * PCRE2 versions differ on what is a literal brace.
 */
static gboolean
parse_braces(rx_parse *ps, guint *min_r, guint *max_r)
{
	gboolean ok;

	ps->i++;
	*min_r = *max_r = parse_number(ps, &ok);
	if (!ok)
		return FALSE;
	if (ps->i < ps->n && ps->p[ps->i] == ',') {
		ps->i++;
		*max_r = parse_number(ps, &ok);
		if (!ok)
			*max_r = UNBOUNDED;
	}
	if (ps->i >= ps->n || ps->p[ps->i] != '}')
		return FALSE;
	ps->i++;
	return TRUE;
}

/* Append x repeated min to max times (x consumed). */
static void
seq_repeat(seq *q, rx_info *x, guint min, guint max)
{
	guint k;

	if (max == 0) {
		info_free(x);
		seq_push(q, info_exact("", 0));
	} else if (min == 0) {
		if (x->exact != NULL && max == 1 && x->exact->len < EXACT_MAX) {
			strs_add(x->exact, "");
			seq_push(q, x);
		} else {
			info_free(x);
			seq_push(q, info_any());
		}
	} else if (x->exact != NULL) {
		for (k = 1; k < MIN(min, REPEAT_MAX); k++)
			seq_push(q, info_new(strs_copy(x->exact)));
		seq_push(q, x);
		if (max != min || min > REPEAT_MAX)
			seq_push(q, info_any());
	} else
		seq_push(q, x);
}

static rx_info *
parse_seq(rx_parse *ps)
{
	seq q;

	seq_init(&q);
	while (ps->i < ps->n && !ps->fail && ps->p[ps->i] != '|' && ps->p[ps->i] != ')') {
		rx_info *x = parse_atom(ps);
		guint min = 1, max = 1;
		gboolean quant = TRUE;

		if (ps->fail) {
			info_free(x);
			break;
		}
		switch (ps->i < ps->n ? ps->p[ps->i] : '\0') {
		case '?': min = 0; max = 1; ps->i++; break;
		case '*': min = 0; max = UNBOUNDED; ps->i++; break;
		case '+': min = 1; max = UNBOUNDED; ps->i++; break;
		case '{':
			if (!parse_braces(ps, &min, &max)) {
				info_free(x);
				ps->fail = TRUE;
				continue;
			}
			break;
		default:
			quant = FALSE;
			break;
		}
		/* lazy or possessive */
		if (quant && ps->i < ps->n && (ps->p[ps->i] == '?' || ps->p[ps->i] == '+'))
			ps->i++;
		seq_repeat(&q, x, min, max);
	}
	return seq_end(&q);
}

static rx_info *
parse_alt(rx_parse *ps)
{
	GPtrArray *branches = g_ptr_array_new_with_free_func((GDestroyNotify)info_free);
	rx_info *x;

	for (;;) {
		g_ptr_array_add(branches, parse_seq(ps));
		if (ps->fail || ps->i >= ps->n || ps->p[ps->i] != '|')
			break;
		ps->i++;
	}
	x = alt_join(branches);
	g_ptr_array_unref(branches);
	return x;
}

gboolean
rules_pattern_caseless(const char *pattern, gboolean nocase)
{
	return nocase || inline_option(pattern, 'i');
}

GPtrArray *
rules_needles(const char *pattern, gboolean nocase)
{
	rx_parse ps = { 0 };
	GPtrArray *cnf;
	rx_info *x;

	if (pattern == NULL || strstr(pattern, "\\Q") != NULL || inline_option(pattern, 'x'))
		return NULL;
	ps.p = pattern;
	ps.n = strlen(pattern);
	ps.caseless = rules_pattern_caseless(pattern, nocase);
	x = parse_alt(&ps);
	if (ps.fail || ps.i != ps.n) {		/* an unmatched ")" stops early */
		info_free(x);
		return NULL;
	}
	if (x->exact != NULL)
		cnf_add(x->cnf, x->exact);
	cnf = g_ptr_array_ref(x->cnf);
	info_free(x);
	if (cnf->len == 0) {
		g_ptr_array_unref(cnf);
		return NULL;
	}
	g_ptr_array_sort(cnf, clause_cmp);
	if (cnf->len > CLAUSES_MAX)
		g_ptr_array_set_size(cnf, CLAUSES_MAX);
	return cnf;
}

char *
rules_needle(const char *pattern, gboolean nocase)
{
	g_autoptr(GPtrArray) cnf = rules_needles(pattern, nocase);
	GString *out;
	guint i, j;

	if (cnf == NULL)
		return NULL;
	out = g_string_new(NULL);
	for (i = 0; i < cnf->len; i++) {
		const GPtrArray *cl = g_ptr_array_index(cnf, i);

		if (i > 0)
			g_string_append(out, " & ");
		for (j = 0; j < cl->len; j++)
			g_string_append_printf(out, "%s%s", j > 0 ? "|" : "",
			    (char *)g_ptr_array_index(cl, j));
	}
	return g_string_free(out, FALSE);
}

