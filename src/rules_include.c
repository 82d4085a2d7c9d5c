/*
 * rules_include.c - expand @include in a rules file before libconfig
 * sees it.
 *
 * Why: libconfig 1.5 resolves @include against the process's working
 * directory (or one fixed include_dir), blames a syntax error at the
 * end of an included file on its parent, and cannot tell where an
 * include starts.  So we expand @include ourselves, relative to the
 * including file, scanning with libconfig's own lexical rules (strings,
 * comments, "@include" at the start of a line), and keep a map from
 * each line of the expanded text back to its file and line.  The same
 * scan checks that strings, comments and brackets are closed in the
 * file that opened them, which puts the blame on the right file.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rules_impl.h"

#define RULES_MAX_FILE		(16 * 1024 * 1024)
#define RULES_MAX_INCLUDE	10

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
		rules_perr(ld, file, line, "@include \"%s\": nested more than %d deep",
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
			rules_perr(ld, from_file, from_line,
			    "cannot open include file \"%s\": %s", path, why);
		else
			rules_perr(ld, path, 0, "cannot open rules file: %s", why);
		return FALSE;
	}
	if (st.st_size > RULES_MAX_FILE) {
		rules_perr(ld, from_file != NULL ? from_file : path, from_line,
		    "\"%s\" is larger than %d MiB", path, RULES_MAX_FILE >> 20);
		return FALSE;
	}
	if (!g_file_get_contents(path, buf_r, len_r, &error)) {
		rules_perr(ld, from_file != NULL ? from_file : path, from_line,
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
			rules_perr(ld, from_file, from_line,
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
		rules_perr(ld, file, line, "\"%c\" without a matching opening bracket in this file", c);
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
					rules_perr(ld, file, line, "@include: unterminated file name");
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
		rules_perr(ld, file, state_line, "string not closed by the end of the file");
	else if (state == ST_COMMENT)
		rules_perr(ld, file, state_line, "comment not closed by the end of the file");
	if (open->len > 0) {
		bracket *b = &g_array_index(open, bracket, open->len - 1);

		rules_perr(ld, file, b->line, "\"%c\" not closed by the end of the file", b->ch);
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
		rules_perr(ld, path, 0, "contains a NUL byte (not a text file?)");
		return FALSE;
	}
	if (include_loops(ld, path, from_file, from_line))
		return FALSE;
	file = remember_file(ld, path);
	pre_scan(ld, file, buf, len);
	g_free(g_ptr_array_steal_index(ld->stack, ld->stack->len - 1));
	return TRUE;
}

gboolean
rules_include_file(loader *ld, const char *path)
{
	return pre_file(ld, path, NULL, 0);
}
