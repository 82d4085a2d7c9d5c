/*
 * staff.c - the role of a sender on a case, and the one check that makes
 * a staff From address worth believing.
 *
 * Rationale:
 * - Anyone can write "From: staff@example.org".  A configured address or
 *   domain is therefore only half of the test; the other half is the
 *   verdict of the receiving server, which records DKIM and SPF results
 *   in an Authentication-Results header (RFC 8601) named after itself
 *   (its authserv-id).  Only that server's header counts, and only the
 *   first one of it: the server prepends its own and must remove forged
 *   copies (RFC 8601 section 5), so one further down came from outside.
 * - The header is parsed with a small tokenizer that understands
 *   comments and quoted strings, because "(spf=pass)" in a comment or a
 *   reason="dkim=pass" must not count.  Whatever does not parse is "no".
 * - DKIM counts when the signing domain (header.d) is the From domain
 *   itself, SPF when the envelope sender's domain is: that is DMARC's
 *   strict alignment, the only kind that says the From domain vouched.
 */
#include <string.h>

#include "cg.h"
#include "staff.h"

#define AR_MAX_LEN	8192	/* longer values are not parsed */

const char *
staff_role_name(staff_role r)
{
	switch (r) {
	case ROLE_MEMBER:
		return "member";
	case ROLE_PARTICIPANT:
		return "participant";
	case ROLE_STAFF:
		return "staff";
	default:
		return "unknown";
	}
}

static gboolean
in_list(GPtrArray *list, const char *s)
{
	guint i;

	for (i = 0; list != NULL && i < list->len; i++)
		if (g_ascii_strcasecmp(g_ptr_array_index(list, i), s) == 0)
			return TRUE;
	return FALSE;
}

gboolean
staff_address_listed(const staff_config *sc, const char *addr)
{
	const char *domain;

	if (sc == NULL || addr == NULL || !cg_address_valid(addr))
		return FALSE;
	if (in_list(sc->addresses, addr))
		return TRUE;
	domain = mail_addr_domain(addr);
	return domain != NULL && in_list(sc->domains, domain);
}

/* ---- Authentication-Results tokenizer ---- */

typedef struct {
	GPtrArray *clauses;	/* GPtrArray * of char *: tokens, "=" separate */
	GPtrArray *cur;
	GString	*tok;
	gboolean in_tok;
} ar_lexer;

static void
lex_end_token(ar_lexer *lx)
{
	if (lx->in_tok) {
		g_ptr_array_add(lx->cur, g_strdup(lx->tok->str));
		g_string_truncate(lx->tok, 0);
		lx->in_tok = FALSE;
	}
}

static void
lex_end_clause(ar_lexer *lx)
{
	lex_end_token(lx);
	g_ptr_array_add(lx->clauses, lx->cur);
	lx->cur = g_ptr_array_new_with_free_func(g_free);
}

/* Skip a comment starting at p ('('); returns the character after it, or NULL if unclosed. */
static const char *
skip_comment(const char *p)
{
	int depth = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return NULL;
}

/* A quoted string at p ('"') appended to the token; returns the character after it. */
static const char *
read_quoted(ar_lexer *lx, const char *p)
{
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		g_string_append_c(lx->tok, *p);
	}
	lx->in_tok = TRUE;
	return *p == '"' ? p + 1 : NULL;
}

/* Clauses of tokens, with "a = b" merged into "a=b"; NULL when malformed. */
static GPtrArray *
ar_lex(const char *value)
{
	ar_lexer lx = { 0 };
	const char *p = value;
	GPtrArray *out;
	guint c, i;

	lx.clauses = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	lx.cur = g_ptr_array_new_with_free_func(g_free);
	lx.tok = g_string_new(NULL);
	while (p != NULL && *p != '\0') {
		if (*p == '(') {
			lex_end_token(&lx);
			p = skip_comment(p);
		} else if (*p == '"') {
			p = read_quoted(&lx, p);
		} else if (*p == ';') {
			lex_end_clause(&lx);
			p++;
		} else if (*p == '=') {
			lex_end_token(&lx);
			g_ptr_array_add(lx.cur, g_strdup("="));
			p++;
		} else if (g_ascii_isspace(*p)) {
			lex_end_token(&lx);
			p++;
		} else {
			g_string_append_c(lx.tok, *p++);
			lx.in_tok = TRUE;
		}
	}
	if (p == NULL) {
		g_string_free(lx.tok, TRUE);
		g_ptr_array_unref(lx.cur);
		g_ptr_array_unref(lx.clauses);
		return NULL;
	}
	lex_end_clause(&lx);
	g_string_free(lx.tok, TRUE);
	g_ptr_array_unref(lx.cur);	/* the empty clause lex_end_clause started */
	/* merge "key" "=" "value" */
	out = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	for (c = 0; c < lx.clauses->len; c++) {
		GPtrArray *in = g_ptr_array_index(lx.clauses, c);
		GPtrArray *m = g_ptr_array_new_with_free_func(g_free);

		for (i = 0; i < in->len; i++) {
			const char *t = g_ptr_array_index(in, i);

			if (strcmp(t, "=") == 0 && m->len > 0 && i + 1 < in->len &&
			    strcmp(g_ptr_array_index(in, i + 1), "=") != 0) {
				char *k = g_ptr_array_steal_index(m, m->len - 1);

				g_ptr_array_add(m, g_strconcat(k, "=", g_ptr_array_index(in, i + 1),
				    NULL));
				g_free(k);
				i++;
			} else {
				g_ptr_array_add(m, g_strdup(t));
			}
		}
		g_ptr_array_add(out, m);
	}
	g_ptr_array_unref(lx.clauses);
	return out;
}

/* The value of "key=value" in tokens (from index 1), or NULL. */
static const char *
prop_value(GPtrArray *tokens, const char *key)
{
	size_t klen = strlen(key);
	guint i;

	for (i = 1; i < tokens->len; i++) {
		const char *t = g_ptr_array_index(tokens, i);

		if (g_ascii_strncasecmp(t, key, klen) == 0 && t[klen] == '=')
			return t + klen + 1;
	}
	return NULL;
}

/* Does this resinfo clause say dkim or spf passed for domain? */
static gboolean
clause_passes(GPtrArray *tokens, const char *domain)
{
	const char *first, *eq, *slash, *v;
	g_autofree char *method = NULL;

	if (tokens->len == 0)
		return FALSE;
	first = g_ptr_array_index(tokens, 0);
	if ((eq = strchr(first, '=')) == NULL || g_ascii_strcasecmp(eq + 1, "pass") != 0)
		return FALSE;
	method = g_strndup(first, eq - first);
	if ((slash = strchr(method, '/')) != NULL)
		method[slash - method] = '\0';
	if (g_ascii_strcasecmp(method, "dkim") == 0) {
		v = prop_value(tokens, "header.d");
		if (v == NULL && (v = prop_value(tokens, "header.i")) != NULL)
			v = strchr(v, '@') != NULL ? strchr(v, '@') + 1 : v;
		return v != NULL && g_ascii_strcasecmp(v, domain) == 0;
	}
	if (g_ascii_strcasecmp(method, "spf") == 0) {
		v = prop_value(tokens, "smtp.mailfrom");
		if (v != NULL && strrchr(v, '@') != NULL)
			v = strrchr(v, '@') + 1;
		return v != NULL && g_ascii_strcasecmp(v, domain) == 0;
	}
	return FALSE;
}

/* The authserv-id of a value, newly allocated, or NULL. */
static char *
ar_authserv_id(GPtrArray *clauses)
{
	GPtrArray *head;

	if (clauses == NULL || clauses->len == 0)
		return NULL;
	head = g_ptr_array_index(clauses, 0);
	if (head->len == 0 || strchr(g_ptr_array_index(head, 0), '=') != NULL)
		return NULL;
	return g_strdup(g_ptr_array_index(head, 0));
}

gboolean
staff_auth_results_pass(const char *value, const char *authserv_id, const char *domain)
{
	g_autoptr(GPtrArray) clauses = NULL;
	g_autofree char *id = NULL;
	guint i;

	if (value == NULL || authserv_id == NULL || domain == NULL || *domain == '\0' ||
	    strlen(value) > AR_MAX_LEN)
		return FALSE;
	clauses = ar_lex(value);
	id = ar_authserv_id(clauses);
	if (id == NULL || g_ascii_strcasecmp(id, authserv_id) != 0)
		return FALSE;
	for (i = 1; i < clauses->len; i++)
		if (clause_passes(g_ptr_array_index(clauses, i), domain))
			return TRUE;
	return FALSE;
}

/* The first Authentication-Results header of authserv_id, or NULL. */
static const char *
first_ar_of(const mail_msg *m, const char *authserv_id)
{
	guint i;

	for (i = 0; m->headers != NULL && i < m->headers->len; i++) {
		const mail_header *h = g_ptr_array_index(m->headers, i);
		g_autoptr(GPtrArray) clauses = NULL;
		g_autofree char *id = NULL;

		if (g_ascii_strcasecmp(h->name, "Authentication-Results") != 0 ||
		    strlen(h->value) > AR_MAX_LEN)
			continue;
		clauses = ar_lex(h->value);
		id = ar_authserv_id(clauses);
		if (id != NULL && g_ascii_strcasecmp(id, authserv_id) == 0)
			return h->value;
	}
	return NULL;
}

gboolean
staff_is_trusted(const config *cfg, const mail_msg *m, const char **why_r)
{
	const staff_config *sc = &cfg->staff;
	const char *why, *ar;
	gboolean ok = FALSE;

	if (m == NULL || !staff_address_listed(sc, m->from_addr))
		why = "sender is not a staff address";
	else if (!sc->require_auth)
		why = "staff address (authentication not required)", ok = TRUE;
	else if (sc->authserv_id == NULL)
		why = "staff address, but no trusted authserv-id is configured";
	else if ((ar = first_ar_of(m, sc->authserv_id)) == NULL)
		why = "staff address without Authentication-Results from the trusted server";
	else if (!staff_auth_results_pass(ar, sc->authserv_id, mail_addr_domain(m->from_addr)))
		why = "staff address, but neither DKIM nor SPF passed for its domain";
	else
		why = "staff address, authenticated (DKIM or SPF pass)", ok = TRUE;
	if (why_r != NULL)
		*why_r = why;
	return ok;
}

staff_role
staff_role_of(const config *cfg, const store_case *c, GPtrArray *participants,
    const mail_msg *m, const char **why_r)
{
	const char *why = NULL;

	if (why_r != NULL)
		*why_r = "no valid sender address";
	if (m == NULL || m->from_addr == NULL)
		return ROLE_UNKNOWN;
	if (c != NULL && c->member != NULL && g_ascii_strcasecmp(c->member, m->from_addr) == 0) {
		if (why_r != NULL)
			*why_r = "the case's member";
		return ROLE_MEMBER;
	}
	if (staff_is_trusted(cfg, m, &why)) {
		if (why_r != NULL)
			*why_r = why;
		return ROLE_STAFF;
	}
	if (in_list(participants, m->from_addr)) {
		if (why_r != NULL)
			*why_r = "copied on the case";
		return ROLE_PARTICIPANT;
	}
	if (why_r != NULL)
		*why_r = why;
	return ROLE_UNKNOWN;
}
