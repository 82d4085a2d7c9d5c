/*
 * rules_impl.h - the inside of a loaded rules object, shared by
 * rules.c (load, validate), rules_include.c (@include expansion),
 * rules_when.c (conditions and patterns), rules_dump.c (canonical
 * form), rules_cond.c (classify, explain, field extraction) and
 * rules_cmd.c (casectl rules ...).  Nothing else includes it.
 *
 * Everything refers to the taxonomy by index, so classifying never
 * compares names, and a loaded object is never written again except for
 * the scratch slot, which is claimed atomically.
 */
#ifndef CG_RULES_IMPL_H
#define CG_RULES_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <libconfig.h>

#include "rules.h"

/* Matching limits: a pathological pattern costs a few ms, not seconds. */
#define RULES_MATCH_LIMIT	1000000
#define RULES_DEPTH_LIMIT	10000
#define RULES_HEAP_LIMIT_KIB	16384
#define RULES_TEXT_CAP		(256 * 1024)	/* bytes of body matched */
#define RULES_OVECTOR_PAIRS	16

typedef struct {
	char		*source;	/* the pattern as written */
	gboolean	 nocase;
	pcre2_code	*code;
	int		*req;		/* prefilter requirement (rules_filter_add), NULL: always run */
} rules_rx;

typedef struct rules_filter rules_filter;

typedef enum {
	COND_ALL,
	COND_ANY,
	COND_NOT,
	COND_FROM,		/* globs on the sender address */
	COND_FROM_DOMAIN,	/* globs on the sender's domain */
	COND_RECIPIENT,		/* globs on the gateway address(es) */
	COND_SUBJECT,		/* regexes */
	COND_BODY,		/* regexes */
	COND_HEADER,		/* header name, optional regexes */
	COND_ATTACHMENT,	/* flag: has / has no attachment */
	COND_ATT_NAME,		/* globs on attachment names */
	COND_ATT_TYPE,		/* globs on attachment content types */
	COND_SIZE_OVER,
	COND_SIZE_UNDER,
} cond_kind;

typedef struct cond cond;
/* A glob's literal ends: a value that lacks them cannot match. */
typedef struct {
	size_t		 len;		/* of the glob */
	size_t		 pre;		/* bytes before the first wildcard (len: none) */
	size_t		 suf;		/* bytes after the last wildcard */
} glob_lit;

struct cond {
	cond_kind	 kind;
	GPtrArray	*kids;		/* cond *: ALL, ANY, NOT (one) */
	GPtrArray	*globs;		/* char *, lowercase, as written */
	GPtrArray	*specs;		/* GPatternSpec *, parallel to globs */
	GArray		*lits;		/* glob_lit, parallel to globs */
	GPtrArray	*rxs;		/* rules_rx * */
	char		*header;	/* COND_HEADER: the name */
	char		*what;		/* COND_HEADER: "header NAME", for messages */
	int		 header_id;	/* COND_HEADER: index into rules->header_names */
	gboolean	 flag;		/* COND_ATTACHMENT */
	gint64		 size;		/* COND_SIZE_* */
	int		 cost;		/* rough evaluation cost, cheap first */
};

typedef struct {
	int		 type, sub_type, update_type;	/* -1: not set */
	int		 team;				/* -1: not set */
	char		*priority;			/* NULL: not set */
	GPtrArray	*tags;				/* char *, NULL: none */
	GArray		*require;			/* int, NULL: not set */
	char		*ignore;			/* reason, NULL: no */
	gboolean	 cont;
} rules_action;

typedef struct {
	char		*name;
	GPtrArray	*sub_types;	/* char * */
	GPtrArray	*update_types;	/* char * */
	int		 team;		/* -1 */
	GArray		*require;	/* int field indices, NULL: none */
} rules_type;

typedef struct {
	char		*name;
	char		*address;	/* NULL: none */
} rules_team;

typedef struct {
	char		*name;
	char		*label;
	GPtrArray	*rxs;		/* rules_rx * */
} rules_fdef;

typedef struct {
	char		*name;
	const char	*file;		/* owned by rules->files */
	int		 line;
	cond		*when;
	rules_action	 then;
} rules_rule;

/*
 * Per-classify state: allocated once, reused.  The arrays are emptied
 * (elements freed) after each message and keep their storage.
 */
typedef struct {
	pcre2_match_data	*md;
	pcre2_match_context	*mc;
	pcre2_jit_stack		*js;
	guint8			*subject_bits;	/* needles present in the subject */
	guint8			*body_bits;	/* and in the body */
	int			*hfirst;	/* header id -> first message header, -1 */
	GArray			*hnext;		/* int: message header -> next of its id, -1 */
	GPtrArray		*rcpts, *att_names, *att_types, *why, *errs;	/* char * */
} rules_scratch;

struct rules {
	char		*path;
	GPtrArray	*files;		/* char *: every file read, for rule->file */
	GPtrArray	*types;		/* rules_type * */
	GPtrArray	*teams;		/* rules_team * */
	GPtrArray	*fdefs;		/* rules_fdef * */
	GPtrArray	*rules;		/* rules_rule * */
	rules_action	 dflt;
	const char	*dflt_file;
	int		 dflt_line;
	rules_filter	*filter;	/* literal prefilter for subject/body patterns */
	GHashTable	*header_ids;	/* header name (ASCII case-insensitive) -> id + 1 */
	GPtrArray	*header_names;	/* char *, by id: the names header conditions test */
	rules_scratch	*scratch;	/* claimed with scratch_busy */
	gint		 scratch_busy;
};

/* ---------------------------------------------------------------- */
/* Loading (rules.c, rules_include.c, rules_when.c)                  */

typedef struct {
	const char	*file;		/* owned by rules->files */
	guint		 line;
} src_pos;

typedef struct {
	rules		*r;
	GArray		*map;		/* src_pos per expanded line */
	GArray		*errs;		/* load_error */
	/* pre-processing */
	GString		*out;
	gboolean	 bol;
	GPtrArray	*stack;		/* char *: canonical paths being read */
	/* first definitions, for "duplicate" messages */
	GHashTable	*seen;
} loader;

/* rules.c: errors at a file:line, or at the line of setting s. */
void rules_perr(loader *ld, const char *file, guint line, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
void rules_serr(loader *ld, const config_setting_t *s, const char *ctx, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
src_pos rules_pos_of(loader *ld, const config_setting_t *s);

/* rules.c: typed access; each reports what is wrong and returns a fallback. */
const char *rules_type_word(const config_setting_t *s);
void rules_check_keys(loader *ld, const config_setting_t *group, const char *const *allowed,
    const char *ctx);
const char *rules_get_string(loader *ld, const config_setting_t *group, const char *key,
    gboolean required, const char *ctx);
GPtrArray *rules_get_strings(loader *ld, const config_setting_t *group, const char *key,
    const char *ctx);
GPtrArray *rules_get_strings_as(loader *ld, const config_setting_t *group, const char *key,
    const char *ctx, gboolean patterns);
gboolean rules_get_bool(loader *ld, const config_setting_t *group, const char *key,
    gboolean dflt, const char *ctx);
gboolean rules_get_size(loader *ld, const config_setting_t *s, const char *ctx, gint64 *size_r);

/* rules_include.c: expand path into ld->out / ld->map; FALSE if unreadable. */
gboolean rules_include_file(loader *ld, const char *path);

/* rules_when.c */
cond *rules_cond_parse(loader *ld, const config_setting_t *g, gboolean nocase, const char *ctx);
void rules_cond_free(cond *c);
GPtrArray *rules_rx_list(loader *ld, const config_setting_t *group, const char *key,
    const char *ctx, gboolean nocase, gboolean filtered);
void rules_rx_free(rules_rx *x);
/* Header names tested by conditions, compared as g_ascii_strcasecmp does. */
GHashTable *rules_header_table_new(void);
int rules_header_id(const rules *r, const char *name);	/* -1: none tests it */

/* ---------------------------------------------------------------- */
/* Classifying */

/*
 * rules_needle.c: what a pattern requires of a text; rules_filter.c:
 * the Aho-Corasick automaton over all such literals ("needles").
 *
 * rules_needles: clauses (GPtrArray of GPtrArray of char *, needles
 * ASCII-folded); every text the pattern matches holds at least one
 * needle of each clause.  NULL: nothing known, always run the pattern.
 * rules_needle: the same as text for tests ("a|b & c"), NULL: none.
 *
 * rules_filter_add: the requirement of a pattern as needle ids
 * { nclauses, n1, id, ..., n2, id, ... } (g_free), NULL: always run.
 * rules_filter_may_match: can a text whose needles are bits (from
 * rules_filter_scan) match a pattern with requirement req?
 */
GPtrArray *rules_needles(const char *pattern, gboolean nocase);
char *rules_needle(const char *pattern, gboolean nocase);
gboolean rules_pattern_caseless(const char *pattern, gboolean nocase);	/* nocase or (?i) */
rules_filter *rules_filter_new(void);
void rules_filter_free(rules_filter *f);
int *rules_filter_add(rules_filter *f, const char *pattern, gboolean nocase);
void rules_filter_build(rules_filter *f);
guint rules_filter_count(const rules_filter *f);	/* 0 when unusable */
void rules_filter_scan(const rules_filter *f, const char *text, size_t len, guint8 *bits);

static inline gboolean
rules_filter_may_match(const int *req, const guint8 *bits)
{
	int nc, n, id;

	if (req == NULL || bits == NULL)
		return TRUE;
	for (nc = *req++; nc > 0; nc--) {
		gboolean any = FALSE;

		for (n = *req++; n > 0; n--) {
			id = *req++;
			any |= (bits[id >> 3] >> (id & 7)) & 1;
		}
		if (!any)
			return FALSE;
	}
	return TRUE;
}

/* rules_cond.c */
rules_scratch *rules_scratch_new(const rules *r);
void rules_scratch_free(rules_scratch *s);

/* rules.c: the key a condition kind is written with ("subject") */
const char *rules_cond_key(int kind);

#endif
