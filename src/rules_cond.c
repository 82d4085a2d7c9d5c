/*
 * rules_cond.c - classify one message against loaded rules: evaluate
 * conditions, apply actions, extract required fields, and explain.
 *
 * Evaluation is three-valued: a condition holds (1), does not (0), or
 * could not be decided (-1) because PCRE2 gave up (match limit, depth
 * limit, JIT stack).  An undecided rule never matches, the failure is
 * logged, and the explanation says so: "not (body ~ /x/)" must not
 * become true because a pathological pattern ran out of budget.
 *
 * Speed: the message is prepared once (sender, recipients, attachment
 * names lowercased; subject and body capped, made valid UTF-8 and
 * scanned by the literal prefilter; headers linked by the names that
 * conditions test), the patterns were compiled and JIT-compiled at
 * load, globs are refused on their literal ends before GPatternSpec
 * runs, and nothing is allocated per rule.  The PCRE2 match data, match
 * context, JIT stack and the per-message arrays live in one scratch
 * slot on the rules object, claimed with an atomic flag.  A second
 * thread that finds it busy allocates its own, so a rules object stays
 * shareable.
 */
#include <stdarg.h>
#include <string.h>

#include "cg.h"
#include "log.h"
#include "rules_impl.h"

#define SUBJECT_CAP	(16 * 1024)
#define HEADER_CAP	(64 * 1024)
#define EXCERPT_MAX	80
#define VALUE_MAX	1000
#define DESCRIPTION_MIN	20	/* non-blank characters that make a description */

typedef struct {
	const rules	*r;
	const mail_msg	*m;
	rules_scratch	*sc;
	char		*from;		/* lowercase sender, NULL if none */
	size_t		 from_len;
	const char	*domain;	/* into from */
	size_t		 domain_len;
	GPtrArray	*rcpts;		/* char *, lowercase */
	const char	*subject;	/* valid UTF-8, capped (not NUL-terminated there) */
	size_t		 subject_len;
	const char	*body;		/* the same */
	size_t		 body_len;
	char		*owned_subject, *owned_body;	/* repaired copies, or NULL */
	GPtrArray	*att_names;	/* char *, lowercase */
	GPtrArray	*att_types;	/* char *, lowercase */
	const int	*hfirst;	/* header id -> first header of the message, -1 */
	const int	*hnext;		/* header -> next one with the same id, -1 */
	gboolean	 explain;
	GPtrArray	*why;		/* char *: matched leaves of the current rule */
	GPtrArray	*errs;		/* char *: undecided leaves of the current rule */
	const rules_rule *rule;		/* current rule, for logging */
	GArray		*spans;		/* gsize pairs: body bytes used by fields */
} cx;

/* ---------------------------------------------------------------- */
/* Scratch                                                          */

rules_scratch *
rules_scratch_new(const rules *r)
{
	rules_scratch *s = g_new0(rules_scratch, 1);
	guint nbytes = (rules_filter_count(r->filter) + 7) / 8;

	s->md = pcre2_match_data_create(RULES_OVECTOR_PAIRS, NULL);
	s->mc = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(s->mc, RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(s->mc, RULES_DEPTH_LIMIT);
	pcre2_set_heap_limit(s->mc, RULES_HEAP_LIMIT_KIB);
	s->js = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
	if (s->js != NULL)
		pcre2_jit_stack_assign(s->mc, NULL, s->js);
	if (nbytes > 0) {
		s->subject_bits = g_malloc0(nbytes);
		s->body_bits = g_malloc0(nbytes);
	}
	s->hfirst = g_new(int, MAX(r->header_names->len, 1));
	s->hnext = g_array_new(FALSE, FALSE, sizeof(int));
	s->rcpts = g_ptr_array_new_with_free_func(g_free);
	s->att_names = g_ptr_array_new_with_free_func(g_free);
	s->att_types = g_ptr_array_new_with_free_func(g_free);
	s->why = g_ptr_array_new_with_free_func(g_free);
	s->errs = g_ptr_array_new_with_free_func(g_free);
	return s;
}

void
rules_scratch_free(rules_scratch *s)
{
	if (s == NULL)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mc);
	pcre2_jit_stack_free(s->js);
	g_free(s->subject_bits);
	g_free(s->body_bits);
	g_free(s->hfirst);
	g_array_free(s->hnext, TRUE);
	g_ptr_array_free(s->rcpts, TRUE);
	g_ptr_array_free(s->att_names, TRUE);
	g_ptr_array_free(s->att_types, TRUE);
	g_ptr_array_free(s->why, TRUE);
	g_ptr_array_free(s->errs, TRUE);
	g_free(s);
}

static rules_scratch *
scratch_claim(const rules *r)
{
	rules *rw = (rules *)r;	/* the one mutable slot, see rules_impl.h */

	if (g_atomic_int_compare_and_exchange(&rw->scratch_busy, 0, 1)) {
		if (rw->scratch == NULL)
			rw->scratch = rules_scratch_new(r);
		return rw->scratch;
	}
	return rules_scratch_new(r);
}

static void
scratch_release(const rules *r, rules_scratch *s)
{
	rules *rw = (rules *)r;

	if (s == rw->scratch)
		g_atomic_int_set(&rw->scratch_busy, 0);
	else
		rules_scratch_free(s);
}

/* ---------------------------------------------------------------- */
/* Preparing the message                                            */

/* g_utf8_validate_len with a fast path for the usual all-ASCII text. */
static gboolean
utf8_valid(const char *s, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		guint64 w;

		memcpy(&w, s + i, 8);
		if (w & G_GUINT64_CONSTANT(0x8080808080808080))
			break;
	}
	for (; i < len && (guchar)s[i] < 0x80; i++)
		;
	return i == len || g_utf8_validate_len(s + i, len - i, NULL);
}

/*
 * s as valid UTF-8 of at most cap bytes: s itself when it already is
 * (*owned_r NULL), else a repaired copy in *owned_r.  A cut in the
 * middle of a character is harmless: patterns are compiled with
 * MATCH_INVALID_UTF.
 */
static const char *
text_prepare(const char *s, size_t cap, size_t *len_r, char **owned_r)
{
	size_t len;
	char *out;

	*owned_r = NULL;
	if (s == NULL)
		s = "";
	len = strnlen(s, cap);
	if (utf8_valid(s, len)) {
		*len_r = len;
		return s;
	}
	out = g_utf8_make_valid(s, len);
	if (strlen(out) > cap) {
		const char *end = g_utf8_find_prev_char(out, out + cap + 1);

		out[end != NULL ? (size_t)(end - out) : 0] = '\0';
	}
	*len_r = strlen(out);
	*owned_r = out;
	return out;
}

/*
 * s lowercased, as valid UTF-8.  ASCII without "I" lowercases the same
 * in every locale (a Turkic one turns "I" into U+0131), so that common
 * case skips g_utf8_strdown's per-character Unicode lookups.
 */
static char *
lower_valid(const char *s)
{
	g_autofree char *v = NULL;
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0' && *p < 0x80 && *p != 'I'; p++)
		;
	if (*p == '\0')
		return g_ascii_strdown(s, -1);
	if (g_utf8_validate(s, -1, NULL))
		return g_utf8_strdown(s, -1);
	v = g_utf8_make_valid(s, -1);
	return g_utf8_strdown(v, -1);
}

static void
add_rcpt(cx *c, const char *addr)
{
	if (addr != NULL && *addr != '\0' && c->rcpts->len < 100)
		g_ptr_array_add(c->rcpts, lower_valid(addr));
}

static void
add_rcpt_headers(cx *c, const char *name)
{
	guint i;

	for (i = 0; c->m->headers != NULL && i < c->m->headers->len; i++) {
		const mail_header *h = g_ptr_array_index(c->m->headers, i);
		g_autofree char *v = NULL;

		if (g_ascii_strcasecmp(h->name, name) != 0 || h->value == NULL)
			continue;
		v = g_strstrip(g_strdup(h->value));
		/* Delivered-To: a@b, X-Original-To: <a@b> */
		if (*v == '<' && v[strlen(v) - 1] == '>') {
			v[strlen(v) - 1] = '\0';
			add_rcpt(c, v + 1);
		} else
			add_rcpt(c, v);
	}
}

/*
 * Link the message's headers by the id of their name (only names some
 * condition tests), in message order, so a header condition visits
 * just its own headers.
 */
static void
index_headers(cx *c)
{
	const GPtrArray *hs = c->m->headers;
	rules_scratch *sc = c->sc;
	guint n = hs != NULL ? hs->len : 0, nids = c->r->header_names->len, i;

	c->hfirst = sc->hfirst;
	for (i = 0; i < nids; i++)
		sc->hfirst[i] = -1;
	g_array_set_size(sc->hnext, n);
	c->hnext = (const int *)(void *)sc->hnext->data;
	if (nids == 0)
		return;
	for (i = n; i-- > 0;) {
		const mail_header *h = g_ptr_array_index(hs, i);
		int id = h->name != NULL ? rules_header_id(c->r, h->name) : -1;

		g_array_index(sc->hnext, int, i) = id >= 0 ? sc->hfirst[id] : -1;
		if (id >= 0)
			sc->hfirst[id] = (int)i;
	}
}

static void
cx_init(cx *c, const rules *r, const mail_msg *m, const char *recipient, gboolean explain)
{
	guint i;

	memset(c, 0, sizeof(*c));
	c->r = r;
	c->m = m;
	c->explain = explain;
	c->sc = scratch_claim(r);
	if (m->from_addr != NULL && *m->from_addr != '\0') {
		const char *at;

		c->from = lower_valid(m->from_addr);
		c->from_len = strlen(c->from);
		at = strrchr(c->from, '@');
		c->domain = at != NULL ? at + 1 : NULL;
		c->domain_len = at != NULL ? c->from_len - (size_t)(at + 1 - c->from) : 0;
	}
	/* The address the mail reached: the caller knows it; otherwise
	 * what the MTA recorded, then the visible recipients. */
	c->rcpts = c->sc->rcpts;
	if (recipient != NULL)
		add_rcpt(c, recipient);
	else {
		add_rcpt_headers(c, "Delivered-To");
		add_rcpt_headers(c, "X-Original-To");
		for (i = 0; m->to != NULL && i < m->to->len; i++)
			add_rcpt(c, g_ptr_array_index(m->to, i));
		for (i = 0; m->cc != NULL && i < m->cc->len; i++)
			add_rcpt(c, g_ptr_array_index(m->cc, i));
	}
	c->subject = text_prepare(m->subject, SUBJECT_CAP, &c->subject_len, &c->owned_subject);
	c->body = text_prepare(m->text, RULES_TEXT_CAP, &c->body_len, &c->owned_body);
	if (c->sc->subject_bits != NULL) {
		rules_filter_scan(r->filter, c->subject, c->subject_len, c->sc->subject_bits);
		rules_filter_scan(r->filter, c->body, c->body_len, c->sc->body_bits);
	}
	c->att_names = c->sc->att_names;
	c->att_types = c->sc->att_types;
	for (i = 0; m->attachments != NULL && i < m->attachments->len; i++) {
		const mail_attachment *a = g_ptr_array_index(m->attachments, i);

		g_ptr_array_add(c->att_names, lower_valid(a->name != NULL ? a->name : ""));
		g_ptr_array_add(c->att_types,
		    lower_valid(a->content_type != NULL ? a->content_type : ""));
	}
	c->why = c->sc->why;
	c->errs = c->sc->errs;
	index_headers(c);
}

static void
cx_clear(cx *c)
{
	g_free(c->from);
	g_ptr_array_set_size(c->rcpts, 0);
	g_free(c->owned_subject);
	g_free(c->owned_body);
	g_ptr_array_set_size(c->att_names, 0);
	g_ptr_array_set_size(c->att_types, 0);
	g_ptr_array_set_size(c->why, 0);
	g_ptr_array_set_size(c->errs, 0);
	if (c->spans != NULL)
		g_array_free(c->spans, TRUE);
	scratch_release(c->r, c->sc);
}

/* ---------------------------------------------------------------- */
/* Describing conditions and matched text                           */

/* A short, printable, valid UTF-8 excerpt of s[0..len), quoted. */
static void
append_excerpt(GString *out, const char *s, size_t len)
{
	g_autofree char *v = g_utf8_make_valid(s, MIN(len, (size_t)EXCERPT_MAX * 4));
	const char *p;
	size_t n = 0;

	g_string_append_c(out, '"');
	for (p = v; *p != '\0' && n < EXCERPT_MAX; p = g_utf8_next_char(p), n++) {
		gunichar u = g_utf8_get_char(p);

		if (u < 0x20 || u == 0x7f)
			g_string_append_c(out, ' ');
		else if (u == '"' || u == '\\') {
			g_string_append_c(out, '\\');
			g_string_append_c(out, (char)u);
		} else
			g_string_append_unichar(out, u);
	}
	if (*p != '\0' || len > (size_t)EXCERPT_MAX * 4)
		g_string_append(out, "...");
	g_string_append_c(out, '"');
}

static void
append_rx(GString *out, const rules_rx *x)
{
	g_string_append_printf(out, "/%s/%s", x->source, x->nocase ? "i" : "");
}

static void
describe(GString *out, const cond *k)
{
	guint i;

	switch (k->kind) {
	case COND_ALL:
	case COND_ANY:
		g_string_append(out, k->kind == COND_ALL ? "all(" : "any(");
		for (i = 0; i < k->kids->len; i++) {
			if (i > 0)
				g_string_append(out, ", ");
			describe(out, g_ptr_array_index(k->kids, i));
		}
		g_string_append_c(out, ')');
		return;
	case COND_NOT:
		g_string_append(out, "not(");
		if (k->kids->len > 0)
			describe(out, g_ptr_array_index(k->kids, 0));
		g_string_append_c(out, ')');
		return;
	case COND_ATTACHMENT:
		g_string_append(out, k->flag ? "attachment" : "no attachment");
		return;
	case COND_SIZE_OVER:
	case COND_SIZE_UNDER:
		g_string_append_printf(out, "size %s %" G_GINT64_FORMAT,
		    k->kind == COND_SIZE_OVER ? ">" : "<", k->size);
		return;
	case COND_HEADER:
		g_string_append_printf(out, "header %s", k->header != NULL ? k->header : "?");
		if (k->rxs == NULL) {
			g_string_append(out, " present");
			return;
		}
		break;
	default:
		g_string_append(out, rules_cond_key(k->kind));
		break;
	}
	g_string_append(out, " ~ ");
	if (k->rxs != NULL)
		for (i = 0; i < k->rxs->len; i++) {
			if (i > 0)
				g_string_append(out, " | ");
			append_rx(out, g_ptr_array_index(k->rxs, i));
		}
	else
		for (i = 0; i < k->globs->len; i++)
			g_string_append_printf(out, "%s\"%s\"", i > 0 ? " | " : "",
			    (char *)g_ptr_array_index(k->globs, i));
}

static void
why_add(cx *c, GString *s)
{
	g_ptr_array_add(c->why, g_string_free(s, FALSE));
}

/* ---------------------------------------------------------------- */
/* Matching                                                         */

static const char *
rx_error(int rc, char *buf, size_t len)
{
	if (pcre2_get_error_message(rc, (PCRE2_UCHAR *)buf, len) < 0)
		g_strlcpy(buf, "matching failed", len);
	return buf;
}

/* PCRE2 gave up (rc): log it and record it for the explanation; -1. */
static G_GNUC_NO_INLINE int
rx_failed(cx *c, const rules_rx *x, const char *what, int rc)
{
	char msg[160];

	rx_error(rc, msg, sizeof(msg));
	if (c->rule != NULL) {
		log_warnx("rules: rule \"%s\" (%s:%d): %s ~ /%s/: %s; the rule does not match",
		    c->rule->name, c->rule->file, c->rule->line, what, x->source, msg);
		g_ptr_array_add(c->errs, g_strdup_printf("%s ~ /%s/: %s", what, x->source, msg));
	} else
		log_warnx("rules: %s ~ /%s/: %s", what, x->source, msg);
	return -1;
}

/*
 * 1 match (ovector in c->sc->md), 0 none, -1 undecided (recorded).
 * bits: the needles present in s (NULL: not scanned, always match).
 */
static inline int
rx_match(cx *c, const rules_rx *x, const guint8 *bits, const char *what, const char *s,
    size_t len)
{
	int rc;

	if (!rules_filter_may_match(x->req, bits))
		return 0;
	rc = pcre2_match(x->code, (PCRE2_SPTR)s, len, 0, 0, c->sc->md, c->sc->mc);
	if (rc >= 0)	/* 0: ovector too small, still a match */
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	return rx_failed(c, x, what, rc);
}

static int
rx_any(cx *c, const cond *k, const guint8 *bits, const char *what, const char *s, size_t len)
{
	int res = 0;
	guint i;

	for (i = 0; i < k->rxs->len; i++) {
		const rules_rx *x = g_ptr_array_index(k->rxs, i);
		int m = rx_match(c, x, bits, what, s, len);

		if (m == 1) {
			if (c->explain) {
				PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->sc->md);
				GString *w = g_string_new(what);

				g_string_append(w, " ~ ");
				append_rx(w, x);
				g_string_append(w, " matched ");
				append_excerpt(w, s + ov[0], ov[1] - ov[0]);
				why_add(c, w);
			}
			return 1;
		}
		if (m < 0)
			res = -1;
	}
	return res;
}

/*
 * Does glob i of k match s (len bytes)?  The literal ends are compared
 * first: most globs ("*@example.org", "box12@*") fail there, and a glob
 * without wildcards is decided there.
 */
static gboolean
glob_match(const cond *k, guint i, const char *s, size_t len)
{
	const glob_lit *g = &g_array_index(k->lits, glob_lit, i);
	const char *glob = g_ptr_array_index(k->globs, i);

	/* the first and last bytes inline, before a call to memcmp */
	if (len < g->pre + g->suf ||
	    (g->pre > 0 && (s[0] != glob[0] || memcmp(s, glob, g->pre) != 0)) ||
	    (g->suf > 0 && (s[len - 1] != glob[g->len - 1] ||
	    memcmp(s + len - g->suf, glob + g->len - g->suf, g->suf) != 0)))
		return FALSE;
	if (g->pre == g->len)
		return len == g->len;
	return g_pattern_spec_match(g_ptr_array_index(k->specs, i), len, s, NULL);
}

static int
glob_any(cx *c, const cond *k, const char *s, size_t len)
{
	guint i;

	if (s == NULL)
		return 0;
	for (i = 0; i < k->specs->len; i++)
		if (glob_match(k, i, s, len)) {
			if (c->explain) {
				GString *w = g_string_new(NULL);

				g_string_append_printf(w, "%s ~ \"%s\" matched ",
				    rules_cond_key(k->kind), (char *)g_ptr_array_index(k->globs, i));
				append_excerpt(w, s, len);
				why_add(c, w);
			}
			return 1;
		}
	return 0;
}

static int
glob_list(cx *c, const cond *k, GPtrArray *values)
{
	guint i;

	for (i = 0; i < values->len; i++) {
		const char *v = g_ptr_array_index(values, i);

		if (glob_any(c, k, v, strlen(v)))
			return 1;
	}
	return 0;
}

static G_GNUC_NO_INLINE int
eval_header(cx *c, const cond *k)
{
	const GPtrArray *hs = c->m->headers;
	int res = 0, i;

	if (k->header_id < 0)
		return 0;
	for (i = c->hfirst[k->header_id]; i >= 0; i = c->hnext[i]) {
		const mail_header *h = g_ptr_array_index(hs, i);
		g_autofree char *owned = NULL;
		const char *v;
		size_t len;
		int m;

		if (k->rxs == NULL) {
			if (c->explain)
				g_ptr_array_add(c->why, g_strdup_printf("%s present", k->what));
			return 1;
		}
		v = text_prepare(h->value, HEADER_CAP, &len, &owned);
		if ((m = rx_any(c, k, NULL, k->what, v, len)) == 1)
			return 1;
		if (m < 0)
			res = -1;
	}
	return res;
}

static int
eval_attachment(cx *c, const cond *k)
{
	gboolean has = c->att_names->len > 0;

	if (has != k->flag)
		return 0;
	if (c->explain)
		g_ptr_array_add(c->why, has ?
		    g_strdup_printf("attachment present (%u)", c->att_names->len) :
		    g_strdup("no attachment"));
	return 1;
}

static int
eval_size(cx *c, const cond *k)
{
	gint64 size = c->m->size;
	gboolean over = k->kind == COND_SIZE_OVER;

	if (over ? size <= k->size : size >= k->size)
		return 0;
	if (c->explain)
		g_ptr_array_add(c->why, g_strdup_printf("size %" G_GINT64_FORMAT " %s %"
		    G_GINT64_FORMAT, size, over ? ">" : "<", k->size));
	return 1;
}

static int eval(cx *c, const cond *k);

static int
eval_all(cx *c, const cond *k)
{
	guint mark = c->why->len, i;
	int res = 1;

	for (i = 0; i < k->kids->len; i++) {
		int m = eval(c, g_ptr_array_index(k->kids, i));

		if (m == 0) {
			if (c->why->len > mark)
				g_ptr_array_set_size(c->why, mark);
			return 0;
		}
		if (m < 0)
			res = -1;
	}
	if (res < 0)
		g_ptr_array_set_size(c->why, mark);
	return res;
}

static int
eval_any(cx *c, const cond *k)
{
	guint mark = c->why->len, i;
	int res = 0;

	for (i = 0; i < k->kids->len; i++) {
		int m = eval(c, g_ptr_array_index(k->kids, i));

		if (m == 1)
			return 1;
		if (c->why->len > mark)
			g_ptr_array_set_size(c->why, mark);
		if (m < 0)
			res = -1;
	}
	return res;
}

static int
eval_not(cx *c, const cond *k)
{
	guint mark = c->why->len;
	const cond *kid = g_ptr_array_index(k->kids, 0);
	int m = eval(c, kid);

	g_ptr_array_set_size(c->why, mark);
	if (m < 0)
		return -1;
	if (m == 0 && c->explain) {
		GString *w = g_string_new("not(");

		describe(w, kid);
		g_string_append(w, ") held");
		why_add(c, w);
	}
	return !m;
}

static int
eval(cx *c, const cond *k)
{
	switch (k->kind) {
	case COND_ALL:
		return eval_all(c, k);
	case COND_ANY:
		return eval_any(c, k);
	case COND_NOT:
		return eval_not(c, k);
	case COND_FROM:
		return glob_any(c, k, c->from, c->from_len);
	case COND_FROM_DOMAIN:
		return glob_any(c, k, c->domain, c->domain_len);
	case COND_RECIPIENT:
		return glob_list(c, k, c->rcpts);
	case COND_SUBJECT:
		return rx_any(c, k, c->sc->subject_bits, "subject", c->subject, c->subject_len);
	case COND_BODY:
		return rx_any(c, k, c->sc->body_bits, "body", c->body, c->body_len);
	case COND_HEADER:
		return eval_header(c, k);
	case COND_ATTACHMENT:
		return eval_attachment(c, k);
	case COND_ATT_NAME:
		return glob_list(c, k, c->att_names);
	case COND_ATT_TYPE:
		return glob_list(c, k, c->att_types);
	case COND_SIZE_OVER:
	case COND_SIZE_UNDER:
		return eval_size(c, k);
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Required fields                                                  */

typedef enum {
	PH_NONE,
	PH_ATTACHED,		/* "See attached document" */
	PH_DESCRIPTION,		/* "See description" */
} placeholder;

/* The member portal's two stand-ins, in English and French. */
static placeholder
placeholder_kind(const char *v)
{
	g_autofree char *f = g_utf8_casefold(v, -1);
	const char *p = f;

	while (*p != '\0' && !g_ascii_isalnum(*p))
		p++;
	if (!g_str_has_prefix(p, "see ") && !g_str_has_prefix(p, "voir ") &&
	    !g_str_has_prefix(p, "cf"))
		return PH_NONE;
	if (strstr(p, "attach") != NULL || strstr(p, "joint") != NULL ||
	    strstr(p, "annex") != NULL)
		return PH_ATTACHED;
	if (strstr(p, "description") != NULL || strstr(p, "descriptif") != NULL ||
	    strstr(p, "below") != NULL || strstr(p, "ci-dessous") != NULL)
		return PH_DESCRIPTION;
	return PH_NONE;
}

static void
field_free(rules_field *f)
{
	if (f == NULL)
		return;
	g_free(f->name);
	g_free(f->label);
	g_free(f->value);
	g_free(f);
}

/* The first non-empty value a pattern of f finds in the body, or NULL. */
static char *
field_find(cx *c, const rules_fdef *f, GPtrArray *explain)
{
	g_autofree char *what = g_strdup_printf("field %s", f->name);
	guint i;

	for (i = 0; i < f->rxs->len; i++) {
		const rules_rx *x = g_ptr_array_index(f->rxs, i);
		PCRE2_SIZE *ov, s, e;
		int m = rx_match(c, x, c->sc->body_bits, what, c->body, c->body_len);
		char *v;

		if (m < 0 && explain != NULL)
			g_ptr_array_add(explain, g_strdup_printf("%s: /%s/: matching failed, "
			    "treated as not found", what, x->source));
		if (m != 1)
			continue;
		ov = pcre2_get_ovector_pointer(c->sc->md);
		s = ov[0];
		e = ov[1];
		if (pcre2_get_ovector_count(c->sc->md) > 1 && ov[2] != PCRE2_UNSET) {
			s = ov[2];
			e = ov[3];
		}
		if (c->spans == NULL)
			c->spans = g_array_new(FALSE, FALSE, sizeof(gsize));
		g_array_append_val(c->spans, ov[0]);
		g_array_append_val(c->spans, ov[1]);
		/* A value cut at the text cap may end in half a character. */
		v = g_utf8_make_valid(c->body + s, (gssize)(e - s));
		g_strstrip(v);
		if (*v == '\0') {
			g_free(v);
			continue;
		}
		if (strlen(v) > VALUE_MAX)
			*g_utf8_find_prev_char(v, v + VALUE_MAX + 1) = '\0';
		return v;
	}
	return NULL;
}

/* Does the body say something beyond the field lines and quotes? */
static gboolean
has_description(cx *c)
{
	g_autofree guchar *used = g_malloc0(c->body_len + 1);
	gboolean line_start = TRUE, quoted = FALSE;
	size_t i, n = 0;

	for (i = 0; c->spans != NULL && i + 1 < c->spans->len; i += 2) {
		gsize s = g_array_index(c->spans, gsize, i);
		gsize e = g_array_index(c->spans, gsize, i + 1);

		memset(used + s, 1, MIN(e, c->body_len) - MIN(s, e));
	}
	for (i = 0; i < c->body_len; i++) {
		char ch = c->body[i];

		if (line_start)
			quoted = ch == '>';
		line_start = ch == '\n';
		if (!used[i] && !quoted && !g_ascii_isspace(ch))
			n++;
	}
	return n >= DESCRIPTION_MIN;
}

/* Placeholders count only when what they point at is there. */
static void
fields_settle(cx *c, GPtrArray *fields, GPtrArray *explain)
{
	int described = -1;
	guint i;

	for (i = 0; i < fields->len; i++) {
		rules_field *f = g_ptr_array_index(fields, i);
		placeholder ph;
		const char *why = NULL;

		if (f->value == NULL) {
			if (explain != NULL)
				g_ptr_array_add(explain, g_strdup_printf("field %s: missing", f->name));
			continue;
		}
		ph = placeholder_kind(f->value);
		if (ph == PH_ATTACHED && c->att_names->len == 0)
			why = "but the message has no attachment";
		else if (ph == PH_DESCRIPTION) {
			if (described == -1)
				described = has_description(c);
			if (!described)
				why = "but the body has no description";
		}
		if (explain != NULL) {
			GString *w = g_string_new(NULL);

			g_string_append_printf(w, "field %s: found ", f->name);
			append_excerpt(w, f->value, strlen(f->value));
			if (why != NULL)
				g_string_append_printf(w, " %s: missing", why);
			g_ptr_array_add(explain, g_string_free(w, FALSE));
		}
		if (why != NULL)
			g_clear_pointer(&f->value, g_free);
	}
}

static rules_field *
field_extract(cx *c, int idx, GPtrArray *explain)
{
	const rules_fdef *fd = g_ptr_array_index(c->r->fdefs, idx);
	rules_field *f = g_new0(rules_field, 1);

	f->name = g_strdup(fd->name);
	f->label = g_strdup(fd->label);
	f->value = field_find(c, fd, explain);
	return f;
}

GPtrArray *
rules_extract_fields(const rules *r, const mail_msg *m, GPtrArray *names)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)field_free);
	guint i, j;
	cx c;

	if (r == NULL || m == NULL || names == NULL)
		return out;
	cx_init(&c, r, m, NULL, FALSE);
	for (i = 0; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);

		for (j = 0; j < r->fdefs->len; j++)
			if (strcmp(((rules_fdef *)g_ptr_array_index(r->fdefs, j))->name, name) == 0)
				break;
		if (j == r->fdefs->len) {
			log_debug("rules: no field \"%s\" in %s", name, r->path);
			continue;
		}
		g_ptr_array_add(out, field_extract(&c, (int)j, NULL));
	}
	fields_settle(&c, out, NULL);
	cx_clear(&c);
	return out;
}

/* ---------------------------------------------------------------- */
/* Deciding                                                         */

typedef struct {
	int		 type, sub_type, update_type, team;
	const char	*priority;
	const GArray	*require;
	gboolean	 type_from_default;
} verdict;

static void
apply(const rules_action *a, verdict *v, GPtrArray *tags)
{
	guint i;

	if (a->type >= 0) {
		/* A type comes with its own sub and update type. */
		v->type = a->type;
		v->sub_type = a->sub_type;
		v->update_type = a->update_type;
	}
	if (a->team >= 0)
		v->team = a->team;
	if (a->priority != NULL)
		v->priority = a->priority;
	if (a->require != NULL)
		v->require = a->require;
	for (i = 0; a->tags != NULL && i < a->tags->len; i++) {
		const char *t = g_ptr_array_index(a->tags, i);

		if (!g_ptr_array_find_with_equal_func(tags, t, g_str_equal, NULL))
			g_ptr_array_add(tags, g_strdup(t));
	}
}

G_GNUC_PRINTF(3, 4) static void
say(rules_decision *d, const rules_rule *rule, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	if (d->explain == NULL)
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (rule != NULL)
		g_ptr_array_add(d->explain, g_strdup_printf("rule \"%s\" (%s:%d): %s",
		    rule->name, rule->file, rule->line, msg));
	else
		g_ptr_array_add(d->explain, g_steal_pointer(&msg));
}

/* Run the rules in order; the deciding rule, or NULL. */
static const rules_rule *
run_rules(cx *c, rules_decision *d, verdict *v)
{
	guint i, j;

	for (i = 0; i < c->r->rules->len; i++) {
		const rules_rule *rule = g_ptr_array_index(c->r->rules, i);
		int m;

		c->rule = rule;
		if (c->why->len > 0)
			g_ptr_array_set_size(c->why, 0);
		if (c->errs->len > 0)
			g_ptr_array_set_size(c->errs, 0);
		m = eval(c, rule->when);
		for (j = 0; j < c->errs->len; j++)
			say(d, rule, "error: %s; the rule does not match",
			    (char *)g_ptr_array_index(c->errs, j));
		if (m != 1)
			continue;
		for (j = 0; j < c->why->len; j++)
			say(d, rule, "%s", (char *)g_ptr_array_index(c->why, j));
		if (rule->then.ignore != NULL) {
			d->ignore = TRUE;
			d->ignore_reason = g_strdup(rule->then.ignore);
			say(d, rule, "ignore: %s", rule->then.ignore);
			return rule;
		}
		apply(&rule->then, v, d->tags);
		if (!rule->then.cont)
			return rule;
		say(d, rule, "continue");
	}
	c->rule = NULL;
	return NULL;
}

static void
fill_in(cx *c, rules_decision *d, verdict *v, const rules_rule *decided)
{
	const rules *r = c->r;
	const rules_action *df = &r->dflt;
	const rules_type *t;
	guint i;

	if (decided == NULL) {
		say(d, NULL, "no rule decided: default (%s:%d)", r->dflt_file, r->dflt_line);
		for (i = 0; df->tags != NULL && i < df->tags->len; i++)
			if (!g_ptr_array_find_with_equal_func(d->tags,
			    g_ptr_array_index(df->tags, i), g_str_equal, NULL))
				g_ptr_array_add(d->tags, g_strdup(g_ptr_array_index(df->tags, i)));
	}
	if (v->type < 0) {
		v->type = df->type;
		v->sub_type = df->sub_type;
		v->update_type = df->update_type;
		v->type_from_default = TRUE;
		if (decided != NULL)
			say(d, NULL, "case type from the default (%s:%d)", r->dflt_file,
			    r->dflt_line);
	}
	t = g_ptr_array_index(r->types, v->type);
	if (v->team < 0 && t->team >= 0) {
		v->team = t->team;
		say(d, NULL, "team from case type \"%s\"", t->name);
	}
	if (v->team < 0)
		v->team = df->team;
	if (v->priority == NULL)
		v->priority = df->priority != NULL ? df->priority : "normal";
	if (v->require == NULL)
		v->require = t->require != NULL ? t->require :
		    v->type_from_default ? df->require : NULL;
}

static void
decision_fill(cx *c, rules_decision *d, const verdict *v)
{
	const rules_type *t = g_ptr_array_index(c->r->types, v->type);
	guint i;

	d->type = g_strdup(t->name);
	if (v->sub_type >= 0)
		d->sub_type = g_strdup(g_ptr_array_index(t->sub_types, v->sub_type));
	if (v->update_type >= 0)
		d->update_type = g_strdup(g_ptr_array_index(t->update_types, v->update_type));
	if (v->team >= 0) {
		const rules_team *tm = g_ptr_array_index(c->r->teams, v->team);

		d->team = g_strdup(tm->name);
		d->team_address = g_strdup(tm->address);
	}
	d->priority = g_strdup(v->priority);
	for (i = 0; v->require != NULL && i < v->require->len; i++)
		g_ptr_array_add(d->fields, field_extract(c, g_array_index(v->require, int, i),
		    d->explain));
	fields_settle(c, d->fields, d->explain);
}

rules_decision *
rules_classify(const rules *r, const mail_msg *m, const char *recipient, gboolean explain)
{
	rules_decision *d = g_new0(rules_decision, 1);
	verdict v = { -1, -1, -1, -1, NULL, NULL, FALSE };
	const rules_rule *decided;
	cx c;

	d->tags = g_ptr_array_new_with_free_func(g_free);
	d->fields = g_ptr_array_new_with_free_func((GDestroyNotify)field_free);
	if (explain)
		d->explain = g_ptr_array_new_with_free_func(g_free);
	cx_init(&c, r, m, recipient, explain);
	decided = run_rules(&c, d, &v);
	c.rule = NULL;
	d->rule = g_strdup(decided != NULL ? decided->name : "default");
	if (!d->ignore) {
		fill_in(&c, d, &v, decided);
		decision_fill(&c, d, &v);
	}
	cx_clear(&c);
	return d;
}

void
rules_decision_free(rules_decision *d)
{
	if (d == NULL)
		return;
	g_free(d->type);
	g_free(d->sub_type);
	g_free(d->update_type);
	g_free(d->team);
	g_free(d->team_address);
	g_free(d->priority);
	g_ptr_array_free(d->tags, TRUE);
	g_ptr_array_free(d->fields, TRUE);
	g_free(d->ignore_reason);
	g_free(d->rule);
	if (d->explain != NULL)
		g_ptr_array_free(d->explain, TRUE);
	g_free(d);
}

GPtrArray *
rules_decision_missing(const rules_decision *d)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	guint i;

	for (i = 0; d != NULL && d->fields != NULL && i < d->fields->len; i++) {
		const rules_field *f = g_ptr_array_index(d->fields, i);

		if (f->value == NULL)
			g_ptr_array_add(out, g_strdup(f->label));
	}
	return out;
}
