/*
 * rules_when.c - compile the "when" of a rule: condition groups (all,
 * any, not and the leaf conditions) and their PCRE2 patterns.
 *
 * Patterns are compiled once per load with UTF, UCP, MATCH_INVALID_UTF
 * and NEVER_BACKSLASH_C (CASELESS with nocase), then JIT-compiled where
 * the platform allows.  Inside an "all" or "any", conditions are sorted
 * cheapest first (sizes and globs before subject, before body), which
 * changes nothing but the time it takes.
 */
#include <string.h>

#include "rules_impl.h"

void
rules_rx_free(rules_rx *x)
{
	if (x == NULL)
		return;
	pcre2_code_free(x->code);
	g_free(x->source);
	g_free(x->req);
	g_free(x);
}

static rules_rx *
rx_compile(loader *ld, const config_setting_t *s, const char *ctx, const char *what,
    const char *pattern, gboolean nocase, gboolean filtered)
{
	uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
	    PCRE2_NEVER_BACKSLASH_C;
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	int code;
	rules_rx *x;

	if (nocase)
		opts |= PCRE2_CASELESS;
	x = g_new0(rules_rx, 1);
	x->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code,
	    &off, NULL);
	if (x->code == NULL) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		rules_serr(ld, s, ctx, "%s: bad regular expression /%s/: %s at offset %zu",
		    what, pattern, (char *)msg, (size_t)off);
		g_free(x);
		return NULL;
	}
	/* The interpreter is the fallback when JIT is unavailable. */
	(void)pcre2_jit_compile(x->code, PCRE2_JIT_COMPLETE);
	x->source = g_strdup(pattern);
	x->nocase = nocase;
	x->req = filtered ? rules_filter_add(ld->r->filter, pattern, nocase) : NULL;
	return x;
}

GPtrArray *
rules_rx_list(loader *ld, const config_setting_t *group, const char *key, const char *ctx,
    gboolean nocase, gboolean filtered)
{
	g_autoptr(GPtrArray) pats = rules_get_strings_as(ld, group, key, ctx, TRUE);
	config_setting_t *s = config_setting_get_member(group, key);
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)rules_rx_free);
	guint i;

	for (i = 0; pats != NULL && i < pats->len; i++) {
		rules_rx *x = rx_compile(ld, s, ctx, key, g_ptr_array_index(pats, i), nocase,
		    filtered);

		if (x != NULL)
			g_ptr_array_add(out, x);
	}
	return out;
}

/* ---------------------------------------------------------------- */
/* Conditions                                                       */

void
rules_cond_free(cond *c)
{
	if (c == NULL)
		return;
	if (c->kids != NULL)
		g_ptr_array_free(c->kids, TRUE);
	if (c->globs != NULL)
		g_ptr_array_free(c->globs, TRUE);
	if (c->specs != NULL)
		g_ptr_array_free(c->specs, TRUE);
	if (c->lits != NULL)
		g_array_free(c->lits, TRUE);
	if (c->rxs != NULL)
		g_ptr_array_free(c->rxs, TRUE);
	g_free(c->header);
	g_free(c->what);
	g_free(c);
}

static cond *
cond_new(cond_kind kind)
{
	cond *c = g_new0(cond, 1);

	c->kind = kind;
	if (kind == COND_ALL || kind == COND_ANY || kind == COND_NOT)
		c->kids = g_ptr_array_new_with_free_func((GDestroyNotify)rules_cond_free);
	return c;
}

static const struct {
	const char	*key;
	cond_kind	 kind;
	int		 cost;
} cond_keys[] = {
	{ "all",		COND_ALL,		0 },
	{ "any",		COND_ANY,		0 },
	{ "not",		COND_NOT,		0 },
	{ "from",		COND_FROM,		2 },
	{ "from_domain",	COND_FROM_DOMAIN,	2 },
	{ "recipient",		COND_RECIPIENT,		2 },
	{ "subject",		COND_SUBJECT,		4 },
	{ "body",		COND_BODY,		20 },
	{ "header",		COND_HEADER,		6 },
	{ "attachment",		COND_ATTACHMENT,	1 },
	{ "attachment_name",	COND_ATT_NAME,		3 },
	{ "attachment_type",	COND_ATT_TYPE,		3 },
	{ "size_over",		COND_SIZE_OVER,		1 },
	{ "size_under",		COND_SIZE_UNDER,	1 },
};

const char *
rules_cond_key(int kind)
{
	guint i;

	for (i = 0; i < G_N_ELEMENTS(cond_keys); i++)
		if ((int)cond_keys[i].kind == kind)
			return cond_keys[i].key;
	return "?";
}

static cond *cond_group(loader *ld, const config_setting_t *g, gboolean nocase,
    const char *ctx, int depth);

/* ---------------------------------------------------------------- */
/* Header names: each name a condition tests gets an id, so that a    */
/* message's headers are sorted by name once, not once per condition. */

static guint
ascii_case_hash(gconstpointer p)
{
	const unsigned char *s = p;
	guint h = 5381;

	for (; *s != '\0'; s++)
		h = h * 33 + (guint)g_ascii_tolower(*s);
	return h;
}

static gboolean
ascii_case_equal(gconstpointer a, gconstpointer b)
{
	return g_ascii_strcasecmp(a, b) == 0;
}

GHashTable *
rules_header_table_new(void)
{
	return g_hash_table_new(ascii_case_hash, ascii_case_equal);
}

int
rules_header_id(const rules *r, const char *name)
{
	return GPOINTER_TO_INT(g_hash_table_lookup(r->header_ids, name)) - 1;
}

static int
header_id_add(rules *r, const char *name)
{
	int id = rules_header_id(r, name);

	if (id >= 0)
		return id;
	g_ptr_array_add(r->header_names, g_strdup(name));
	g_hash_table_insert(r->header_ids, g_ptr_array_index(r->header_names,
	    r->header_names->len - 1), GINT_TO_POINTER(r->header_names->len));
	return (int)r->header_names->len - 1;
}

/* ---------------------------------------------------------------- */
/* Globs                                                            */

static glob_lit
glob_literals(const char *glob)
{
	glob_lit g;
	const char *last = NULL, *p;

	g.len = strlen(glob);
	g.pre = strcspn(glob, "*?");
	for (p = glob; *p != '\0'; p++)
		if (*p == '*' || *p == '?')
			last = p;
	g.suf = last != NULL ? g.len - (size_t)(last + 1 - glob) : 0;
	return g;
}

static void
cond_globs(loader *ld, cond *c, const config_setting_t *group, const char *key,
    const char *ctx)
{
	g_autoptr(GPtrArray) pats = rules_get_strings(ld, group, key, ctx);
	guint i;

	c->globs = g_ptr_array_new_with_free_func(g_free);
	c->specs = g_ptr_array_new_with_free_func((GDestroyNotify)g_pattern_spec_free);
	c->lits = g_array_new(FALSE, FALSE, sizeof(glob_lit));
	for (i = 0; pats != NULL && i < pats->len; i++) {
		char *low = g_utf8_strdown(g_ptr_array_index(pats, i), -1);
		glob_lit g = glob_literals(low);

		g_ptr_array_add(c->globs, low);
		g_ptr_array_add(c->specs, g_pattern_spec_new(low));
		g_array_append_val(c->lits, g);
	}
}

static cond *
cond_list(loader *ld, cond_kind kind, const config_setting_t *s, gboolean nocase,
    const char *ctx, int depth)
{
	cond *c = cond_new(kind);
	int i, n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		rules_serr(ld, s, ctx, "\"%s\" must be a list of condition groups ( { ... }, ... ), not %s",
		    config_setting_name(s), rules_type_word(s));
		return c;
	}
	n = config_setting_length(s);
	if (n == 0)
		rules_serr(ld, s, ctx, "\"%s\" is empty", config_setting_name(s));
	for (i = 0; i < n; i++) {
		cond *k = cond_group(ld, config_setting_get_elem(s, i), nocase, ctx, depth + 1);

		if (k != NULL)
			g_ptr_array_add(c->kids, k);
	}
	return c;
}

static cond *
cond_header(loader *ld, const config_setting_t *s, gboolean nocase, const char *ctx)
{
	static const char *const keys[] = { "name", "pattern", "nocase", NULL };
	cond *c = cond_new(COND_HEADER);
	g_autofree char *hctx = NULL;
	const char *name;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		rules_serr(ld, s, ctx, "\"header\" must be a group { name = \"...\"; pattern = \"...\"; }, not %s",
		    rules_type_word(s));
		return c;
	}
	hctx = g_strdup_printf("%s: header", ctx);
	rules_check_keys(ld, s, keys, hctx);
	nocase = rules_get_bool(ld, s, "nocase", nocase, hctx);
	name = rules_get_string(ld, s, "name", TRUE, hctx);
	if (name != NULL && strpbrk(name, ": ") != NULL)
		rules_serr(ld, s, hctx, "\"%s\": no colon or space in a header name", name);
	c->header = g_strdup(name);
	c->what = g_strdup_printf("header %s", name != NULL ? name : "?");
	c->header_id = name != NULL ? header_id_add(ld->r, name) : -1;
	if (config_setting_get_member(s, "pattern") != NULL)
		c->rxs = rules_rx_list(ld, s, "pattern", hctx, nocase, FALSE);
	return c;
}

static int
cond_cost_cmp(gconstpointer a, gconstpointer b)
{
	const cond *x = *(cond *const *)a, *y = *(cond *const *)b;

	return (x->cost > y->cost) - (x->cost < y->cost);
}

static void
cond_set_cost(cond *c)
{
	guint i;

	if (c->kids == NULL)
		return;
	c->cost = 0;
	for (i = 0; i < c->kids->len; i++)
		c->cost += ((cond *)g_ptr_array_index(c->kids, i))->cost;
	/* Cheap tests first; a stable sort keeps the written order otherwise. */
	if (c->kind != COND_NOT)
		g_ptr_array_sort(c->kids, cond_cost_cmp);
}

static cond *
cond_leaf(loader *ld, const config_setting_t *m, gboolean nocase, const char *ctx,
    int depth)
{
	const char *key = config_setting_name(m);
	const config_setting_t *g = config_setting_parent(m);
	cond *c = NULL;
	guint i;

	for (i = 0; i < G_N_ELEMENTS(cond_keys); i++)
		if (strcmp(cond_keys[i].key, key) == 0)
			break;
	if (i == G_N_ELEMENTS(cond_keys)) {
		rules_serr(ld, m, ctx, "unknown condition \"%s\"", key);
		return NULL;
	}
	switch (cond_keys[i].kind) {
	case COND_ALL:
	case COND_ANY:
		c = cond_list(ld, cond_keys[i].kind, m, nocase, ctx, depth);
		break;
	case COND_NOT:
		c = cond_new(COND_NOT);
		if (config_setting_type(m) != CONFIG_TYPE_GROUP)
			rules_serr(ld, m, ctx, "\"not\" must be a condition group { ... }, not %s",
			    rules_type_word(m));
		else {
			cond *k = cond_group(ld, m, nocase, ctx, depth + 1);

			if (k != NULL)
				g_ptr_array_add(c->kids, k);
		}
		break;
	case COND_SUBJECT:
	case COND_BODY:
		c = cond_new(cond_keys[i].kind);
		c->rxs = rules_rx_list(ld, g, key, ctx, nocase, TRUE);
		break;
	case COND_HEADER:
		c = cond_header(ld, m, nocase, ctx);
		break;
	case COND_ATTACHMENT:
		c = cond_new(COND_ATTACHMENT);
		c->flag = rules_get_bool(ld, g, key, TRUE, ctx);
		break;
	case COND_SIZE_OVER:
	case COND_SIZE_UNDER:
		c = cond_new(cond_keys[i].kind);
		(void)rules_get_size(ld, m, ctx, &c->size);
		break;
	default:
		c = cond_new(cond_keys[i].kind);
		cond_globs(ld, c, g, key, ctx);
		break;
	}
	if (c->cost == 0)
		c->cost = cond_keys[i].cost;
	cond_set_cost(c);
	return c;
}

/* A condition group: every key must hold; "nocase" applies inside it. */
static cond *
cond_group(loader *ld, const config_setting_t *g, gboolean nocase, const char *ctx,
    int depth)
{
	g_autoptr(GPtrArray) leaves = g_ptr_array_new_with_free_func((GDestroyNotify)rules_cond_free);
	cond *c;
	int i, n;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		rules_serr(ld, g, ctx, "a condition must be a group { ... }, not %s", rules_type_word(g));
		return NULL;
	}
	if (depth > 32) {
		rules_serr(ld, g, ctx, "conditions nested more than 32 deep");
		return NULL;
	}
	nocase = rules_get_bool(ld, g, "nocase", nocase, ctx);
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(g, i);

		if (strcmp(config_setting_name(m), "nocase") == 0)
			continue;
		if ((c = cond_leaf(ld, m, nocase, ctx, depth)) != NULL)
			g_ptr_array_add(leaves, c);
	}
	if (leaves->len == 0) {
		/* With keys present, each was reported as unknown already. */
		if (n == 0 || (n == 1 && config_setting_get_member(g, "nocase") != NULL))
			rules_serr(ld, g, ctx, "empty condition group (the default catches what no rule does)");
		return NULL;
	}
	if (leaves->len == 1)
		return g_ptr_array_steal_index(leaves, 0);
	c = cond_new(COND_ALL);
	while (leaves->len > 0)
		g_ptr_array_add(c->kids, g_ptr_array_steal_index(leaves, 0));
	cond_set_cost(c);
	return c;
}

cond *
rules_cond_parse(loader *ld, const config_setting_t *g, gboolean nocase, const char *ctx)
{
	return cond_group(ld, g, nocase, ctx, 0);
}
