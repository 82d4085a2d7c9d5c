/*
 * rules_impl.h - the inside of a loaded rules object, shared by
 * rules.c (load, validate, compile), rules_dump.c (canonical form),
 * rules_cond.c (classify, explain, field extraction) and rules_cmd.c
 * (casectl rules ...).
 * Nothing outside these four files includes it.
 *
 * Everything refers to the taxonomy by index, so classifying never
 * compares names, and a loaded object is never written again except for
 * the scratch slot, which is claimed atomically.
 */
#ifndef CG_RULES_IMPL_H
#define CG_RULES_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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
} rules_rx;

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
struct cond {
	cond_kind	 kind;
	GPtrArray	*kids;		/* cond *: ALL, ANY, NOT (one) */
	GPtrArray	*globs;		/* char *, lowercase, as written */
	GPtrArray	*specs;		/* GPatternSpec *, parallel to globs */
	GPtrArray	*rxs;		/* rules_rx * */
	char		*header;	/* COND_HEADER: the name */
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

/* Per-classify matching state: allocated once, reused. */
typedef struct {
	pcre2_match_data	*md;
	pcre2_match_context	*mc;
	pcre2_jit_stack		*js;
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
	rules_scratch	*scratch;	/* claimed with scratch_busy */
	gint		 scratch_busy;
};

/* rules_cond.c */
rules_scratch *rules_scratch_new(void);
void rules_scratch_free(rules_scratch *s);

/* rules.c: the key a condition kind is written with ("subject") */
const char *rules_cond_key(int kind);

#endif
