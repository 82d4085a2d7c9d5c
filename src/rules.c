/*
 * rules.c - load, validate and compile a casegate.rules(5) file, and
 * print it back in canonical form.
 *
 * Why the file is pre-processed before libconfig sees it: libconfig 1.5
 * resolves @include against the process's working directory (or one
 * fixed include_dir), blames a syntax error at the end of an included
 * file on its parent, and cannot tell where an include starts.  So we
 * expand @include ourselves, relative to the including file, scanning
 * with libconfig's own lexical rules (strings, comments, "@include" at
 * the start of a line), and keep a map from each line of the expanded
 * text back to its file and line.  The same scan checks that strings,
 * comments and brackets are closed in the file that opened them.
 *
 * Every problem is collected with its file:line, sorted, and reported
 * at once; a file with any problem yields no rules object, so a reload
 * that fails keeps the old rules running.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

#include "cg.h"
#include "log.h"
#include "rules_impl.h"

#define RULES_MAX_FILE		(16 * 1024 * 1024)
#define RULES_MAX_INCLUDE	10
#define RULES_MAX_NAME		200

/* ---------------------------------------------------------------- */
/* Errors with positions                                            */

typedef struct {
	const char	*file;		/* owned by rules->files */
	guint		 line;
} src_pos;

typedef struct {
	guint		 file_idx;
	guint		 line;
	guint		 seq;
	char		*text;		/* complete "file:line: message" */
} load_error;

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

static guint
file_index(loader *ld, const char *file)
{
	guint i;

	for (i = 0; i < ld->r->files->len; i++)
		if (g_ptr_array_index(ld->r->files, i) == file)
			return i;
	return G_MAXUINT;
}

static void
add_error_at(loader *ld, const char *file, guint line, const char *msg)
{
	load_error e;

	e.file_idx = file != NULL ? file_index(ld, file) : G_MAXUINT;
	e.line = line;
	e.seq = ld->errs->len;
	if (file == NULL)
		e.text = g_strdup_printf("%s: %s", ld->r->path, msg);
	else if (line == 0)
		e.text = g_strdup_printf("%s: %s", file, msg);
	else
		e.text = g_strdup_printf("%s:%u: %s", file, line, msg);
	g_array_append_val(ld->errs, e);
}

G_GNUC_PRINTF(4, 5) static void
perr(loader *ld, const char *file, guint line, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	add_error_at(ld, file, line, msg);
}

static src_pos
pos_of(loader *ld, const config_setting_t *s)
{
	src_pos p = { NULL, 0 };
	guint line = s != NULL ? config_setting_source_line(s) : 0;

	if (ld->map->len == 0)
		return p;
	if (line == 0)
		line = 1;
	if (line > ld->map->len)
		line = ld->map->len;
	return g_array_index(ld->map, src_pos, line - 1);
}

/* An error about setting s, prefixed with ctx ("rule \"x\"") when set. */
G_GNUC_PRINTF(4, 5) static void
serr(loader *ld, const config_setting_t *s, const char *ctx, const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;
	src_pos p = pos_of(ld, s);

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (ctx != NULL) {
		g_autofree char *full = g_strdup_printf("%s: %s", ctx, msg);

		add_error_at(ld, p.file, p.line, full);
	} else
		add_error_at(ld, p.file, p.line, msg);
}

static int
load_error_cmp(gconstpointer a, gconstpointer b)
{
	const load_error *x = a, *y = b;

	if (x->file_idx != y->file_idx)
		return x->file_idx < y->file_idx ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---------------------------------------------------------------- */
/* Pre-processing: @include relative to the including file          */

typedef struct {
	char	 ch;
	guint	 line;
} bracket;

static void
out_putc(loader *ld, char c, const char *file, guint line)
{
	if (ld->bol) {
		src_pos p = { file, line };

		g_array_append_val(ld->map, p);
		ld->bol = FALSE;
	}
	g_string_append_c(ld->out, c);
	if (c == '\n')
		ld->bol = TRUE;
}

static const char *
remember_file(loader *ld, const char *path)
{
	char *f = g_strdup(path);

	g_ptr_array_add(ld->r->files, f);
	return f;
}

static char *
include_path(const char *parent, const char *name)
{
	g_autofree char *dir = NULL;

	if (g_path_is_absolute(name))
		return g_strdup(name);
	dir = g_path_get_dirname(parent);
	if (strcmp(dir, ".") == 0)
		return g_strdup(name);
	return g_build_filename(dir, name, NULL);
}

static gboolean pre_file(loader *ld, const char *path, const char *from_file,
    guint from_line);

/*
 * At the start of a line in the INITIAL state: is this libconfig's
 * ^[ \t]*@include[ \t]+" ?  On success *name_r is the file name and
 * *end_r the offset after the closing quote.
 */
static gboolean
scan_include(const char *buf, size_t len, size_t i, char **name_r, size_t *end_r,
    guint *newlines_r)
{
	GString *name;

	while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	if (len - i < 9 || strncmp(buf + i, "@include", 8) != 0)
		return FALSE;
	i += 8;
	if (buf[i] != ' ' && buf[i] != '\t')
		return FALSE;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	if (i >= len || buf[i] != '"')
		return FALSE;
	i++;
	name = g_string_new(NULL);
	*newlines_r = 0;
	while (i < len && buf[i] != '"') {
		if (buf[i] == '\\' && i + 1 < len &&
		    (buf[i + 1] == '\\' || buf[i + 1] == '"'))
			i++;
		if (buf[i] == '\n')
			(*newlines_r)++;
		g_string_append_c(name, buf[i]);
		i++;
	}
	if (i >= len) {
		g_string_free(name, TRUE);
		*name_r = NULL;
		*end_r = len;
		return TRUE;
	}
	*name_r = g_string_free(name, FALSE);
	*end_r = i + 1;
	return TRUE;
}

static void
pre_include(loader *ld, const char *file, guint line, const char *name)
{
	g_autofree char *path = include_path(file, name);

	if (ld->stack->len > RULES_MAX_INCLUDE) {
		perr(ld, file, line, "@include \"%s\": nested more than %d deep",
		    name, RULES_MAX_INCLUDE);
		return;
	}
	/* The included text starts on a line of its own. */
	if (!ld->bol)
		out_putc(ld, '\n', file, line);
	pre_file(ld, path, file, line);
	if (!ld->bol)
		out_putc(ld, '\n', file, line);
}

static gboolean
read_source(loader *ld, const char *path, const char *from_file, guint from_line,
    char **buf_r, size_t *len_r)
{
	GError *error = NULL;
	struct stat st;
	const char *why = NULL;

	if (stat(path, &st) == -1)
		why = g_strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	if (why != NULL) {

		if (from_file != NULL)
			perr(ld, from_file, from_line,
			    "cannot open include file \"%s\": %s", path, why);
		else
			perr(ld, path, 0, "cannot open rules file: %s", why);
		return FALSE;
	}
	if (st.st_size > RULES_MAX_FILE) {
		perr(ld, from_file != NULL ? from_file : path, from_line,
		    "\"%s\" is larger than %d MiB", path, RULES_MAX_FILE >> 20);
		return FALSE;
	}
	if (!g_file_get_contents(path, buf_r, len_r, &error)) {
		perr(ld, from_file != NULL ? from_file : path, from_line,
		    "cannot read \"%s\": %s", path, error->message);
		g_error_free(error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
include_loops(loader *ld, const char *path, const char *from_file, guint from_line)
{
	g_autofree char *canon = realpath(path, NULL);
	guint i;

	if (canon == NULL)
		canon = g_strdup(path);
	for (i = 0; i < ld->stack->len; i++)
		if (strcmp(g_ptr_array_index(ld->stack, i), canon) == 0) {
			perr(ld, from_file, from_line,
			    "@include \"%s\" includes itself", path);
			return TRUE;
		}
	g_ptr_array_add(ld->stack, g_steal_pointer(&canon));
	return FALSE;
}

enum { ST_INITIAL, ST_COMMENT, ST_STRING };

static void
pre_close_bracket(loader *ld, GArray *open, char c, const char *file, guint line)
{
	if (open->len == 0) {
		perr(ld, file, line, "\"%c\" without a matching opening bracket in this file", c);
		return;
	}
	g_array_set_size(open, open->len - 1);
}

static void
pre_scan(loader *ld, const char *file, const char *buf, size_t len)
{
	g_autoptr(GArray) open = g_array_new(FALSE, FALSE, sizeof(bracket));
	guint line = 1, state_line = 0;
	int state = ST_INITIAL;
	gboolean line_start = TRUE;
	size_t i = 0;

	while (i < len) {
		char c = buf[i];

		if (state == ST_INITIAL && line_start) {
			char *name = NULL;
			size_t end;
			guint nl;

			line_start = FALSE;
			if (scan_include(buf, len, i, &name, &end, &nl)) {
				if (name == NULL)
					perr(ld, file, line, "@include: unterminated file name");
				else
					pre_include(ld, file, line, name);
				g_free(name);
				line += nl;
				i = end;
				continue;
			}
		}
		switch (state) {
		case ST_INITIAL:
			if (c == '/' && i + 1 < len && buf[i + 1] == '*') {
				state = ST_COMMENT;
				state_line = line;
				out_putc(ld, c, file, line);
				c = buf[++i];
			} else if (c == '#' || (c == '/' && i + 1 < len && buf[i + 1] == '/')) {
				while (i < len && buf[i] != '\n')
					out_putc(ld, buf[i++], file, line);
				continue;
			} else if (c == '"') {
				state = ST_STRING;
				state_line = line;
			} else if (c == '{' || c == '(' || c == '[') {
				bracket b = { c, line };

				g_array_append_val(open, b);
			} else if (c == '}' || c == ')' || c == ']')
				pre_close_bracket(ld, open, c, file, line);
			break;
		case ST_COMMENT:
			if (c == '*' && i + 1 < len && buf[i + 1] == '/') {
				out_putc(ld, c, file, line);
				c = buf[++i];
				state = ST_INITIAL;
			}
			break;
		case ST_STRING:
			if (c == '\\' && i + 1 < len &&
			    (buf[i + 1] == '\\' || buf[i + 1] == '"')) {
				out_putc(ld, c, file, line);
				c = buf[++i];
			} else if (c == '"')
				state = ST_INITIAL;
			break;
		}
		out_putc(ld, c, file, line);
		if (c == '\n') {
			line++;
			line_start = TRUE;
		}
		i++;
	}
	if (state == ST_STRING)
		perr(ld, file, state_line, "string not closed by the end of the file");
	else if (state == ST_COMMENT)
		perr(ld, file, state_line, "comment not closed by the end of the file");
	if (open->len > 0) {
		bracket *b = &g_array_index(open, bracket, open->len - 1);

		perr(ld, file, b->line, "\"%c\" not closed by the end of the file", b->ch);
	}
}

static gboolean
pre_file(loader *ld, const char *path, const char *from_file, guint from_line)
{
	g_autofree char *buf = NULL;
	size_t len;
	const char *file;

	if (!read_source(ld, path, from_file, from_line, &buf, &len))
		return FALSE;
	if (memchr(buf, '\0', len) != NULL) {
		perr(ld, path, 0, "contains a NUL byte (not a text file?)");
		return FALSE;
	}
	if (include_loops(ld, path, from_file, from_line))
		return FALSE;
	file = remember_file(ld, path);
	pre_scan(ld, file, buf, len);
	g_free(g_ptr_array_steal_index(ld->stack, ld->stack->len - 1));
	return TRUE;
}

/* ---------------------------------------------------------------- */
/* Typed access to settings, with errors                            */

static const char *
type_word(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:	return "a group { }";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:	return "a number";
	case CONFIG_TYPE_FLOAT:	return "a decimal number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL:	return "a boolean";
	case CONFIG_TYPE_ARRAY:	return "an array [ ]";
	case CONFIG_TYPE_LIST:	return "a list ( )";
	default:		return "something else";
	}
}

static gboolean
text_ok(const char *s, size_t max)
{
	const unsigned char *p;

	if (s == NULL || *s == '\0' || strlen(s) > max || !g_utf8_validate(s, -1, NULL))
		return FALSE;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return FALSE;
	return TRUE;
}

/* Keys of group that are not in allowed (NULL-terminated) are errors. */
static void
check_keys(loader *ld, const config_setting_t *group, const char *const *allowed,
    const char *ctx)
{
	int i, n = config_setting_length(group);

	for (i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(group, i);
		const char *name = config_setting_name(m);
		const char *const *a;

		for (a = allowed; *a != NULL; a++)
			if (strcmp(*a, name) == 0)
				break;
		if (*a == NULL)
			serr(ld, m, ctx, "unknown key \"%s\"", name);
	}
}

static const char *
get_string(loader *ld, const config_setting_t *group, const char *key, gboolean required,
    const char *ctx)
{
	config_setting_t *s = config_setting_get_member(group, key);
	const char *v;

	if (s == NULL) {
		if (required)
			serr(ld, group, ctx, "\"%s\" is missing", key);
		return NULL;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		serr(ld, s, ctx, "\"%s\" must be a string, not %s", key, type_word(s));
		return NULL;
	}
	v = config_setting_get_string(s);
	if (!text_ok(v, 4096)) {
		serr(ld, s, ctx, "\"%s\" must be non-empty UTF-8 text without control characters", key);
		return NULL;
	}
	return v;
}

/* Patterns may hold TAB or newline ("\t" in a libconfig string is one). */
static gboolean
pattern_ok(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) <= 4096 && g_utf8_validate(s, -1, NULL);
}

/*
 * A string, or an array or list of strings; NULL when absent or wrong.
 * Patterns (regexes) may hold control characters, names may not.
 */
static GPtrArray *
get_strings_as(loader *ld, const config_setting_t *group, const char *key, const char *ctx,
    gboolean patterns)
{
	config_setting_t *s = config_setting_get_member(group, key);
	GPtrArray *out;
	int i, n;

	if (s == NULL)
		return NULL;
	out = g_ptr_array_new();
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		const char *v = config_setting_get_string(s);

		if (!(patterns ? pattern_ok(v) : text_ok(v, 4096)))
			serr(ld, s, ctx, "\"%s\" must be non-empty UTF-8 text%s", key,
			    patterns ? "" : " without control characters");
		else
			g_ptr_array_add(out, (char *)v);
		return out;
	}
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		serr(ld, s, ctx, "\"%s\" must be a string or a list of strings, not %s",
		    key, type_word(s));
		return out;
	}
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);
		const char *v;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			serr(ld, e, ctx, "\"%s\" must hold strings, not %s", key, type_word(e));
			continue;
		}
		v = config_setting_get_string(e);
		if (!(patterns ? pattern_ok(v) : text_ok(v, 4096))) {
			serr(ld, e, ctx, "\"%s\": empty, not UTF-8%s", key,
			    patterns ? "" : " or control characters");
			continue;
		}
		g_ptr_array_add(out, (char *)v);
	}
	return out;
}

static GPtrArray *
get_strings(loader *ld, const config_setting_t *group, const char *key, const char *ctx)
{
	return get_strings_as(ld, group, key, ctx, FALSE);
}

static gboolean
get_bool(loader *ld, const config_setting_t *group, const char *key, gboolean dflt,
    const char *ctx)
{
	config_setting_t *s = config_setting_get_member(group, key);

	if (s == NULL)
		return dflt;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		serr(ld, s, ctx, "\"%s\" must be true or false, not %s", key, type_word(s));
		return dflt;
	}
	return config_setting_get_bool(s) != 0;
}

/*
 * A size: a non-negative integer (64-bit ones need the L suffix) or a
 * string such as "500k", "10M", "1G" (binary multiples).  libconfig
 * silently wraps a plain integer above 2^31-1, which shows up here as
 * a negative number: reported, never used.
 */
static gboolean
get_size(loader *ld, const config_setting_t *s, const char *ctx, gint64 *size_r)
{
	const gint64 max = G_GINT64_CONSTANT(1) << 50;
	const char *name = config_setting_name(s);
	gint64 v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_type(s) == CONFIG_TYPE_INT ?
		    config_setting_get_int(s) : config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_STRING: {
		const char *str = config_setting_get_string(s);
		char *end;
		guint64 u, mult = 1;

		if (!g_ascii_isdigit(str[0])) {
			serr(ld, s, ctx, "\"%s\": \"%s\" is not a size (use e.g. 500k, 10M or 1G)",
			    name, str);
			return FALSE;
		}
		errno = 0;
		u = g_ascii_strtoull(str, &end, 10);
		switch (*end) {
		case 'k': case 'K': mult = 1024; end++; break;
		case 'm': case 'M': mult = 1024 * 1024; end++; break;
		case 'g': case 'G': mult = 1024 * 1024 * 1024; end++; break;
		}
		if (*end != '\0') {
			serr(ld, s, ctx, "\"%s\": \"%s\" is not a size (use e.g. 500k, 10M or 1G)",
			    name, str);
			return FALSE;
		}
		if (errno != 0 || u > (guint64)max / mult) {
			serr(ld, s, ctx, "\"%s\": \"%s\" is too large", name, str);
			return FALSE;
		}
		v = (gint64)(u * mult);
		break;
	}
	default:
		serr(ld, s, ctx, "\"%s\" must be a size such as \"10M\" or 1048576L, not %s",
		    name, type_word(s));
		return FALSE;
	}
	if (v < 0) {
		serr(ld, s, ctx, "\"%s\": negative size %" G_GINT64_FORMAT
		    " (a plain number above 2147483647 wraps: write it with an L suffix or as \"10M\")",
		    name, v);
		return FALSE;
	}
	if (v > max) {
		serr(ld, s, ctx, "\"%s\": size %" G_GINT64_FORMAT " is too large", name, v);
		return FALSE;
	}
	*size_r = v;
	return TRUE;
}

/* Remember name under kind; report a duplicate with the first position. */
static gboolean
unique_name(loader *ld, const char *kind, const char *name, const config_setting_t *s,
    const char *ctx)
{
	g_autofree char *key = g_strdup_printf("%s\x1f%s", kind, name);
	const char *first = g_hash_table_lookup(ld->seen, key);
	src_pos p;

	if (first != NULL) {
		serr(ld, s, ctx, "duplicate %s \"%s\" (first defined at %s)", kind, name, first);
		return FALSE;
	}
	p = pos_of(ld, s);
	g_hash_table_insert(ld->seen, g_steal_pointer(&key),
	    g_strdup_printf("%s:%u", p.file != NULL ? p.file : "?", p.line));
	return TRUE;
}

static int
str_index(GPtrArray *a, const char *s)
{
	guint i;

	if (a == NULL || s == NULL)
		return -1;
	for (i = 0; i < a->len; i++)
		if (strcmp(g_ptr_array_index(a, i), s) == 0)
			return (int)i;
	return -1;
}

static int
type_index(const rules *r, const char *name)
{
	guint i;

	for (i = 0; i < r->types->len; i++)
		if (strcmp(((rules_type *)g_ptr_array_index(r->types, i))->name, name) == 0)
			return (int)i;
	return -1;
}

static int
team_index(const rules *r, const char *name)
{
	guint i;

	for (i = 0; i < r->teams->len; i++)
		if (strcmp(((rules_team *)g_ptr_array_index(r->teams, i))->name, name) == 0)
			return (int)i;
	return -1;
}

static int
fdef_index(const rules *r, const char *name)
{
	guint i;

	for (i = 0; i < r->fdefs->len; i++)
		if (strcmp(((rules_fdef *)g_ptr_array_index(r->fdefs, i))->name, name) == 0)
			return (int)i;
	return -1;
}

/* The named list of groups at top level; NULL when absent or wrong. */
static config_setting_t *
top_list(loader *ld, config_t *cfg, const char *key, gboolean required)
{
	config_setting_t *s = config_setting_get_member(config_root_setting(cfg), key);

	if (s == NULL) {
		if (required)
			perr(ld, ld->r->files->len > 0 ? g_ptr_array_index(ld->r->files, 0) : NULL,
			    0, "\"%s\" is missing", key);
		return NULL;
	}
	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		serr(ld, s, NULL, "\"%s\" must be a list ( { ... }, { ... } ), not %s",
		    key, type_word(s));
		return NULL;
	}
	return s;
}

/* ---------------------------------------------------------------- */
/* Regular expressions                                              */

static void
rx_free(rules_rx *x)
{
	if (x == NULL)
		return;
	pcre2_code_free(x->code);
	g_free(x->source);
	g_free(x);
}

static rules_rx *
rx_compile(loader *ld, const config_setting_t *s, const char *ctx, const char *what,
    const char *pattern, gboolean nocase)
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
		serr(ld, s, ctx, "%s: bad regular expression /%s/: %s at offset %zu",
		    what, pattern, (char *)msg, (size_t)off);
		g_free(x);
		return NULL;
	}
	/* The interpreter is the fallback when JIT is unavailable. */
	(void)pcre2_jit_compile(x->code, PCRE2_JIT_COMPLETE);
	x->source = g_strdup(pattern);
	x->nocase = nocase;
	return x;
}

static GPtrArray *
rx_list(loader *ld, const config_setting_t *group, const char *key, const char *ctx,
    gboolean nocase)
{
	g_autoptr(GPtrArray) pats = get_strings_as(ld, group, key, ctx, TRUE);
	config_setting_t *s = config_setting_get_member(group, key);
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)rx_free);
	guint i;

	for (i = 0; pats != NULL && i < pats->len; i++) {
		rules_rx *x = rx_compile(ld, s, ctx, key, g_ptr_array_index(pats, i), nocase);

		if (x != NULL)
			g_ptr_array_add(out, x);
	}
	return out;
}

/* ---------------------------------------------------------------- */
/* Conditions                                                       */

static void
cond_free(cond *c)
{
	if (c == NULL)
		return;
	if (c->kids != NULL)
		g_ptr_array_free(c->kids, TRUE);
	if (c->globs != NULL)
		g_ptr_array_free(c->globs, TRUE);
	if (c->specs != NULL)
		g_ptr_array_free(c->specs, TRUE);
	if (c->rxs != NULL)
		g_ptr_array_free(c->rxs, TRUE);
	g_free(c->header);
	g_free(c);
}

static cond *
cond_new(cond_kind kind)
{
	cond *c = g_new0(cond, 1);

	c->kind = kind;
	if (kind == COND_ALL || kind == COND_ANY || kind == COND_NOT)
		c->kids = g_ptr_array_new_with_free_func((GDestroyNotify)cond_free);
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

static void
cond_globs(loader *ld, cond *c, const config_setting_t *group, const char *key,
    const char *ctx)
{
	g_autoptr(GPtrArray) pats = get_strings(ld, group, key, ctx);
	guint i;

	c->globs = g_ptr_array_new_with_free_func(g_free);
	c->specs = g_ptr_array_new_with_free_func((GDestroyNotify)g_pattern_spec_free);
	for (i = 0; pats != NULL && i < pats->len; i++) {
		char *low = g_utf8_strdown(g_ptr_array_index(pats, i), -1);

		g_ptr_array_add(c->globs, low);
		g_ptr_array_add(c->specs, g_pattern_spec_new(low));
	}
}

static cond *
cond_list(loader *ld, cond_kind kind, const config_setting_t *s, gboolean nocase,
    const char *ctx, int depth)
{
	cond *c = cond_new(kind);
	int i, n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		serr(ld, s, ctx, "\"%s\" must be a list of condition groups ( { ... }, ... ), not %s",
		    config_setting_name(s), type_word(s));
		return c;
	}
	n = config_setting_length(s);
	if (n == 0)
		serr(ld, s, ctx, "\"%s\" is empty", config_setting_name(s));
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
		serr(ld, s, ctx, "\"header\" must be a group { name = \"...\"; pattern = \"...\"; }, not %s",
		    type_word(s));
		return c;
	}
	hctx = g_strdup_printf("%s: header", ctx);
	check_keys(ld, s, keys, hctx);
	nocase = get_bool(ld, s, "nocase", nocase, hctx);
	name = get_string(ld, s, "name", TRUE, hctx);
	if (name != NULL && strpbrk(name, ": ") != NULL)
		serr(ld, s, hctx, "\"%s\": no colon or space in a header name", name);
	c->header = g_strdup(name);
	if (config_setting_get_member(s, "pattern") != NULL)
		c->rxs = rx_list(ld, s, "pattern", hctx, nocase);
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
		serr(ld, m, ctx, "unknown condition \"%s\"", key);
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
			serr(ld, m, ctx, "\"not\" must be a condition group { ... }, not %s",
			    type_word(m));
		else {
			cond *k = cond_group(ld, m, nocase, ctx, depth + 1);

			if (k != NULL)
				g_ptr_array_add(c->kids, k);
		}
		break;
	case COND_SUBJECT:
	case COND_BODY:
		c = cond_new(cond_keys[i].kind);
		c->rxs = rx_list(ld, g, key, ctx, nocase);
		break;
	case COND_HEADER:
		c = cond_header(ld, m, nocase, ctx);
		break;
	case COND_ATTACHMENT:
		c = cond_new(COND_ATTACHMENT);
		c->flag = get_bool(ld, g, key, TRUE, ctx);
		break;
	case COND_SIZE_OVER:
	case COND_SIZE_UNDER:
		c = cond_new(cond_keys[i].kind);
		(void)get_size(ld, m, ctx, &c->size);
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
	g_autoptr(GPtrArray) leaves = g_ptr_array_new_with_free_func((GDestroyNotify)cond_free);
	cond *c;
	int i, n;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		serr(ld, g, ctx, "a condition must be a group { ... }, not %s", type_word(g));
		return NULL;
	}
	if (depth > 32) {
		serr(ld, g, ctx, "conditions nested more than 32 deep");
		return NULL;
	}
	nocase = get_bool(ld, g, "nocase", nocase, ctx);
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
			serr(ld, g, ctx, "empty condition group (the default catches what no rule does)");
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

/* ---------------------------------------------------------------- */
/* Actions                                                          */

static const char *const priorities[] = { "low", "normal", "high", "urgent", NULL };

static void
action_clear(rules_action *a)
{
	if (a->tags != NULL)
		g_ptr_array_free(a->tags, TRUE);
	if (a->require != NULL)
		g_array_free(a->require, TRUE);
	g_free(a->priority);
	g_free(a->ignore);
	memset(a, 0, sizeof(*a));
	a->type = a->sub_type = a->update_type = a->team = -1;
}

static GArray *
field_refs(loader *ld, const config_setting_t *group, const char *key, const char *ctx)
{
	g_autoptr(GPtrArray) names = get_strings(ld, group, key, ctx);
	config_setting_t *s = config_setting_get_member(group, key);
	GArray *out;
	guint i;

	if (names == NULL)
		return NULL;
	out = g_array_new(FALSE, FALSE, sizeof(int));
	for (i = 0; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		int f = fdef_index(ld->r, name), j;
		gboolean dup = FALSE;

		if (f < 0) {
			serr(ld, s, ctx, "unknown field \"%s\"", name);
			continue;
		}
		for (j = 0; j < (int)out->len; j++)
			dup |= g_array_index(out, int, j) == f;
		if (dup)
			serr(ld, s, ctx, "field \"%s\" required twice", name);
		else
			g_array_append_val(out, f);
	}
	return out;
}

static void
action_taxonomy(loader *ld, const config_setting_t *g, const char *ctx, rules_action *a)
{
	const char *type = get_string(ld, g, "type", FALSE, ctx);
	const char *sub = get_string(ld, g, "sub_type", FALSE, ctx);
	const char *upd = get_string(ld, g, "update_type", FALSE, ctx);
	rules_type *t;

	if (type != NULL && (a->type = type_index(ld->r, type)) < 0)
		serr(ld, config_setting_get_member(g, "type"), ctx, "unknown case type \"%s\"", type);
	if ((sub != NULL || upd != NULL) && type == NULL)
		serr(ld, config_setting_get_member(g, sub != NULL ? "sub_type" : "update_type"), ctx,
		    "\"%s\" needs \"type\" in the same action", sub != NULL ? "sub_type" : "update_type");
	if (a->type < 0)
		return;
	t = g_ptr_array_index(ld->r->types, a->type);
	if (sub != NULL && (a->sub_type = str_index(t->sub_types, sub)) < 0)
		serr(ld, config_setting_get_member(g, "sub_type"), ctx,
		    "unknown sub type \"%s\" of case type \"%s\"", sub, t->name);
	if (upd != NULL && (a->update_type = str_index(t->update_types, upd)) < 0)
		serr(ld, config_setting_get_member(g, "update_type"), ctx,
		    "unknown update type \"%s\" of case type \"%s\"", upd, t->name);
}

static void
action_parse(loader *ld, const config_setting_t *g, gboolean is_default, const char *ctx,
    rules_action *a)
{
	static const char *const rule_keys[] = { "type", "sub_type", "update_type", "team",
	    "priority", "tags", "require", "ignore", "continue", NULL };
	const char *team, *prio, *ignore;

	action_clear(a);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		serr(ld, g, ctx, "\"%s\" must be a group { ... }, not %s",
		    config_setting_name(g), type_word(g));
		return;
	}
	/* The default has the rule keys minus ignore and continue. */
	check_keys(ld, g, is_default ? (const char *const[]){ "type", "sub_type",
	    "update_type", "team", "priority", "tags", "require", NULL } : rule_keys, ctx);
	if (config_setting_length(g) == 0)
		serr(ld, g, ctx, "no action");
	if (is_default && config_setting_get_member(g, "type") == NULL)
		serr(ld, g, ctx, "\"type\" is missing");
	action_taxonomy(ld, g, ctx, a);
	if ((team = get_string(ld, g, "team", FALSE, ctx)) != NULL &&
	    (a->team = team_index(ld->r, team)) < 0)
		serr(ld, config_setting_get_member(g, "team"), ctx, "unknown team \"%s\"", team);
	if ((prio = get_string(ld, g, "priority", FALSE, ctx)) != NULL) {
		if (g_strv_contains(priorities, prio))
			a->priority = g_strdup(prio);
		else
			serr(ld, config_setting_get_member(g, "priority"), ctx,
			    "unknown priority \"%s\" (use low, normal, high or urgent)", prio);
	}
	if (config_setting_get_member(g, "tags") != NULL) {
		g_autoptr(GPtrArray) tags = get_strings(ld, g, "tags", ctx);
		guint i;

		a->tags = g_ptr_array_new_with_free_func(g_free);
		for (i = 0; tags != NULL && i < tags->len; i++)
			g_ptr_array_add(a->tags, g_strdup(g_ptr_array_index(tags, i)));
	}
	a->require = field_refs(ld, g, "require", ctx);
	if (is_default)
		return;
	a->cont = get_bool(ld, g, "continue", FALSE, ctx);
	if ((ignore = get_string(ld, g, "ignore", FALSE, ctx)) != NULL) {
		a->ignore = g_strdup(ignore);
		if (config_setting_length(g) > 1)
			serr(ld, config_setting_get_member(g, "ignore"), ctx,
			    "\"ignore\" cannot be combined with other actions");
	}
}

/* ---------------------------------------------------------------- */
/* Taxonomy, teams, fields, rules, default                          */

static void
type_free(rules_type *t)
{
	if (t == NULL)
		return;
	g_free(t->name);
	g_ptr_array_free(t->sub_types, TRUE);
	g_ptr_array_free(t->update_types, TRUE);
	if (t->require != NULL)
		g_array_free(t->require, TRUE);
	g_free(t);
}

static void
team_free(rules_team *t)
{
	if (t == NULL)
		return;
	g_free(t->name);
	g_free(t->address);
	g_free(t);
}

static void
fdef_free(rules_fdef *f)
{
	if (f == NULL)
		return;
	g_free(f->name);
	g_free(f->label);
	g_ptr_array_free(f->rxs, TRUE);
	g_free(f);
}

static void
rule_free(rules_rule *r)
{
	if (r == NULL)
		return;
	g_free(r->name);
	cond_free(r->when);
	action_clear(&r->then);
	g_free(r);
}

static GPtrArray *
unique_strings(loader *ld, const config_setting_t *g, const char *key, const char *ctx)
{
	g_autoptr(GPtrArray) in = get_strings(ld, g, key, ctx);
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	guint i;

	for (i = 0; in != NULL && i < in->len; i++) {
		const char *s = g_ptr_array_index(in, i);

		if (strlen(s) > RULES_MAX_NAME)
			serr(ld, config_setting_get_member(g, key), ctx, "\"%s\" is too long", s);
		else if (str_index(out, s) >= 0)
			serr(ld, config_setting_get_member(g, key), ctx,
			    "%s: \"%s\" listed twice", key, s);
		else
			g_ptr_array_add(out, g_strdup(s));
	}
	return out;
}

/* The "name" of a list element, checked and made unique; NULL if bad. */
static const char *
elem_name(loader *ld, const config_setting_t *g, const char *kind, int idx, char **ctx_r)
{
	const char *name;
	g_autofree char *ctx = g_strdup_printf("%s #%d", kind, idx + 1);

	*ctx_r = NULL;
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		serr(ld, g, ctx, "must be a group { name = \"...\"; ... }, not %s", type_word(g));
		return NULL;
	}
	if ((name = get_string(ld, g, "name", TRUE, ctx)) == NULL)
		return NULL;
	if (strlen(name) > RULES_MAX_NAME) {
		serr(ld, g, ctx, "name is longer than %d bytes", RULES_MAX_NAME);
		return NULL;
	}
	*ctx_r = g_strdup_printf("%s \"%s\"", kind, name);
	if (!unique_name(ld, kind, name, config_setting_get_member(g, "name"), NULL))
		return NULL;
	return name;
}

static void
load_teams(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "address", NULL };
	config_setting_t *list = top_list(ld, cfg, "teams", FALSE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "team", i, &ctx), *addr;
		rules_team *t;

		if (name == NULL)
			continue;
		check_keys(ld, g, keys, ctx);
		t = g_new0(rules_team, 1);
		t->name = g_strdup(name);
		if ((addr = get_string(ld, g, "address", FALSE, ctx)) != NULL) {
			if (cg_address_valid(addr))
				t->address = g_strdup(addr);
			else
				serr(ld, config_setting_get_member(g, "address"), ctx,
				    "\"%s\" is not a valid mail address", addr);
		}
		g_ptr_array_add(ld->r->teams, t);
	}
}

static gboolean
field_name_ok(const char *s)
{
	if (!g_ascii_islower(*s))
		return FALSE;
	for (; *s != '\0'; s++)
		if (!g_ascii_islower(*s) && !g_ascii_isdigit(*s) && *s != '_')
			return FALSE;
	return TRUE;
}

static void
load_fields(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "label", "pattern", "nocase", NULL };
	config_setting_t *list = top_list(ld, cfg, "fields", FALSE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "field", i, &ctx), *label;
		rules_fdef *f;

		if (name == NULL)
			continue;
		check_keys(ld, g, keys, ctx);
		if (!field_name_ok(name))
			serr(ld, config_setting_get_member(g, "name"), ctx,
			    "a field name is lowercase letters, digits and _, starting with a letter");
		f = g_new0(rules_fdef, 1);
		f->name = g_strdup(name);
		label = get_string(ld, g, "label", FALSE, ctx);
		f->label = g_strdup(label != NULL ? label : name);
		if (config_setting_get_member(g, "pattern") == NULL) {
			serr(ld, g, ctx, "\"pattern\" is missing");
			f->rxs = g_ptr_array_new();
		} else
			f->rxs = rx_list(ld, g, "pattern", ctx, get_bool(ld, g, "nocase", FALSE, ctx));
		g_ptr_array_add(ld->r->fdefs, f);
	}
}

static void
load_types(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "sub_types", "update_types", "team",
	    "require", NULL };
	config_setting_t *list = top_list(ld, cfg, "case_types", TRUE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	if (list != NULL && n == 0)
		serr(ld, list, NULL, "\"case_types\" is empty");
	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i);
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "case type", i, &ctx), *team;
		rules_type *t;

		if (name == NULL)
			continue;
		check_keys(ld, g, keys, ctx);
		t = g_new0(rules_type, 1);
		t->name = g_strdup(name);
		t->sub_types = unique_strings(ld, g, "sub_types", ctx);
		t->update_types = unique_strings(ld, g, "update_types", ctx);
		t->team = -1;
		if ((team = get_string(ld, g, "team", FALSE, ctx)) != NULL &&
		    (t->team = team_index(ld->r, team)) < 0)
			serr(ld, config_setting_get_member(g, "team"), ctx, "unknown team \"%s\"", team);
		t->require = field_refs(ld, g, "require", ctx);
		g_ptr_array_add(ld->r->types, t);
	}
}

static void
load_rules(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "name", "when", "then", "nocase", NULL };
	config_setting_t *list = top_list(ld, cfg, "rules", FALSE);
	int i, n = list != NULL ? config_setting_length(list) : 0;

	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(list, i), *when, *then;
		g_autofree char *ctx = NULL;
		const char *name = elem_name(ld, g, "rule", i, &ctx);
		rules_rule *r;
		src_pos p;

		if (name == NULL)
			continue;
		check_keys(ld, g, keys, ctx);
		r = g_new0(rules_rule, 1);
		r->name = g_strdup(name);
		p = pos_of(ld, g);
		r->file = p.file;
		r->line = (int)p.line;
		if ((when = config_setting_get_member(g, "when")) == NULL)
			serr(ld, g, ctx, "\"when\" is missing");
		else
			r->when = cond_group(ld, when, get_bool(ld, g, "nocase", FALSE, ctx), ctx, 0);
		if ((then = config_setting_get_member(g, "then")) == NULL) {
			serr(ld, g, ctx, "\"then\" is missing");
			action_clear(&r->then);
		} else
			action_parse(ld, then, FALSE, ctx, &r->then);
		g_ptr_array_add(ld->r->rules, r);
	}
}

static void
load_default(loader *ld, config_t *cfg)
{
	config_setting_t *g = config_setting_get_member(config_root_setting(cfg), "default");
	src_pos p;

	action_clear(&ld->r->dflt);
	if (g == NULL) {
		perr(ld, g_ptr_array_index(ld->r->files, 0), 0,
		    "\"default\" is missing (the action when no rule matches)");
		return;
	}
	action_parse(ld, g, TRUE, "default", &ld->r->dflt);
	p = pos_of(ld, g);
	ld->r->dflt_file = p.file;
	ld->r->dflt_line = (int)p.line;
}

static void
load_config(loader *ld, config_t *cfg)
{
	static const char *const keys[] = { "case_types", "teams", "fields", "rules",
	    "default", NULL };

	check_keys(ld, config_root_setting(cfg), keys, NULL);
	load_teams(ld, cfg);
	load_fields(ld, cfg);
	load_types(ld, cfg);
	load_rules(ld, cfg);
	load_default(ld, cfg);
}

/* ---------------------------------------------------------------- */
/* Public: load and free                                            */

static gboolean
parse_expanded(loader *ld, config_t *cfg)
{
	src_pos p;
	guint line;

	config_init(cfg);
	/* Any @include left is one our scan did not see: make it fail
	 * loudly rather than resolve against the working directory. */
	config_set_include_dir(cfg, "/nonexistent/casegate-include");
	if (config_read_string(cfg, ld->out->str))
		return TRUE;
	line = (guint)MAX(config_error_line(cfg), 1);
	if (ld->map->len == 0) {
		perr(ld, g_ptr_array_index(ld->r->files, 0), line, "%s", config_error_text(cfg));
		return FALSE;
	}
	p = g_array_index(ld->map, src_pos, MIN(line, ld->map->len) - 1);
	perr(ld, p.file, p.line, "%s", config_error_text(cfg));
	return FALSE;
}

static void
flush_errors(loader *ld, GPtrArray *errors)
{
	guint i;

	g_array_sort(ld->errs, load_error_cmp);
	for (i = 0; i < ld->errs->len; i++) {
		load_error *e = &g_array_index(ld->errs, load_error, i);

		if (errors != NULL)
			g_ptr_array_add(errors, g_steal_pointer(&e->text));
		else
			g_free(e->text);
	}
}

rules *
rules_load(const char *path, GPtrArray *errors)
{
	loader ld = { 0 };
	config_t cfg;
	gboolean parsed = FALSE;
	rules *r;

	r = g_new0(rules, 1);
	r->path = g_strdup(path != NULL ? path : "(null)");
	r->files = g_ptr_array_new_with_free_func(g_free);
	r->types = g_ptr_array_new_with_free_func((GDestroyNotify)type_free);
	r->teams = g_ptr_array_new_with_free_func((GDestroyNotify)team_free);
	r->fdefs = g_ptr_array_new_with_free_func((GDestroyNotify)fdef_free);
	r->rules = g_ptr_array_new_with_free_func((GDestroyNotify)rule_free);
	action_clear(&r->dflt);
	ld.r = r;
	ld.map = g_array_new(FALSE, FALSE, sizeof(src_pos));
	ld.errs = g_array_new(FALSE, FALSE, sizeof(load_error));
	ld.out = g_string_new(NULL);
	ld.bol = TRUE;
	ld.stack = g_ptr_array_new_with_free_func(g_free);
	ld.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

	if (path == NULL)
		perr(&ld, NULL, 0, "no rules file given");
	else if (pre_file(&ld, path, NULL, 0) && ld.errs->len == 0) {
		parsed = parse_expanded(&ld, &cfg);
		if (parsed)
			load_config(&ld, &cfg);
		config_destroy(&cfg);
	}
	if (ld.errs->len > 0) {
		flush_errors(&ld, errors);
		g_clear_pointer(&r, rules_free);
	}
	g_array_free(ld.map, TRUE);
	g_array_free(ld.errs, TRUE);
	g_string_free(ld.out, TRUE);
	g_ptr_array_free(ld.stack, TRUE);
	g_hash_table_destroy(ld.seen);
	return r;
}

void
rules_free(rules *r)
{
	if (r == NULL)
		return;
	g_ptr_array_free(r->rules, TRUE);
	g_ptr_array_free(r->types, TRUE);
	g_ptr_array_free(r->teams, TRUE);
	g_ptr_array_free(r->fdefs, TRUE);
	action_clear(&r->dflt);
	rules_scratch_free(r->scratch);
	g_ptr_array_free(r->files, TRUE);
	g_free(r->path);
	g_free(r);
}
