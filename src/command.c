/*
 * command.c - staff commands at the top of a reply.
 *
 * Rationale:
 * - Commands live only in the first lines, where a person types them
 *   on purpose; a '#' further down (a quoted mail, "#3 on the list") is
 *   text.  '#' must be followed by a letter, so "# heading" and "#1"
 *   end the command block instead of failing it.
 * - All or nothing: one bad command means nothing is applied and
 *   nothing relayed, because a half-applied reply ("resolved, but the
 *   type was misspelt") is worse than asking again.  The transcript
 *   tells the staff member exactly which line failed and why.
 */
#include <stdarg.h>
#include <string.h>

#include "command.h"

#define CMD_LINE_MAX	500

static const struct {
	const char *name;
	command_kind kind;
	int min_args, max_args;		/* words for team/priority, parts for type */
} command_table[] = {
	{ "note", CMD_NOTE, 0, -1 },	/* -1: free text after it is kept */
	{ "resolve", CMD_RESOLVE, 0, 0 },
	{ "reopen", CMD_REOPEN, 0, 0 },
	{ "type", CMD_TYPE, 1, 3 },
	{ "team", CMD_TEAM, 1, 1 },
	{ "priority", CMD_PRIORITY, 1, 1 },
};

static const char *const priorities[] = { "low", "normal", "high", "urgent", NULL };

const char *
command_name(command_kind kind)
{
	static const char *const names[] = { "#note", "#resolve", "#reopen", "#type", "#team",
	    "#priority" };

	return (guint)kind < G_N_ELEMENTS(names) ? names[kind] : "#?";
}

static void
command_free(command *c)
{
	int i;

	if (c == NULL)
		return;
	g_free(c->line);
	for (i = 0; i < 3; i++)
		g_free(c->args[i]);
	g_free(c->error);
	g_free(c);
}

void
command_set_free(command_set *cs)
{
	if (cs == NULL)
		return;
	g_ptr_array_unref(cs->commands);
	g_free(cs->body);
	g_free(cs);
}

void
command_fail(command_set *cs, command *cmd, const char *fmt, ...)
{
	va_list ap;

	if (cmd->error == NULL)
		cs->errors++;
	g_free(cmd->error);
	va_start(ap, fmt);
	cmd->error = g_strdup_vprintf(fmt, ap);
	va_end(ap);
}

const command *
command_find(const command_set *cs, command_kind kind)
{
	guint i;

	for (i = 0; i < cs->commands->len; i++) {
		const command *c = g_ptr_array_index(cs->commands, i);

		if (c->kind == kind)
			return c;
	}
	return NULL;
}

/* Is line (trimmed) a command line: '#' then an ASCII letter? */
static gboolean
is_command_line(const char *line)
{
	return line[0] == '#' && g_ascii_isalpha(line[1]);
}

static void
parse_type_args(command_set *cs, command *c, const char *rest)
{
	g_auto(GStrv) parts = g_strsplit(rest, "/", -1);
	guint n = g_strv_length(parts), i;

	if (*rest == '\0') {
		command_fail(cs, c, "#type needs a case type: #type Type / Sub type [/ Update type]");
		return;
	}
	if (n > 3) {
		command_fail(cs, c, "#type takes at most three parts: Type / Sub type / Update type");
		return;
	}
	for (i = 0; i < n; i++) {
		g_strstrip(parts[i]);
		if (*parts[i] == '\0') {
			command_fail(cs, c, "#type: part %u is empty", i + 1);
			return;
		}
		c->args[i] = g_strdup(parts[i]);
	}
}

static void
parse_word_arg(command_set *cs, command *c, const char *name, const char *rest)
{
	if (*rest == '\0') {
		command_fail(cs, c, "#%s needs a value", name);
		return;
	}
	if (c->kind == CMD_PRIORITY) {
		g_autofree char *p = g_ascii_strdown(rest, -1);

		if (!g_strv_contains(priorities, p)) {
			command_fail(cs, c, "unknown priority \"%s\" (use low, normal, high or urgent)",
			    rest);
			return;
		}
		c->args[0] = g_steal_pointer(&p);
		return;
	}
	c->args[0] = g_strdup(rest);
}

/* Parse one command line; the #note text after the word goes to note_text. */
static command *
parse_line(command_set *cs, const char *line, GString *note_text)
{
	command *c = g_new0(command, 1);
	const char *p = line + 1, *rest;
	g_autofree char *word = NULL;
	guint i;

	c->line = g_strdup(line);
	while (g_ascii_isalnum(*p) || *p == '-' || *p == '_')
		p++;
	word = g_ascii_strdown(line + 1, p - (line + 1));
	for (rest = p; *rest == ' ' || *rest == '\t' || *rest == ':'; rest++)
		;
	for (i = 0; i < G_N_ELEMENTS(command_table); i++)
		if (strcmp(command_table[i].name, word) == 0)
			break;
	if (i == G_N_ELEMENTS(command_table) || (*p != '\0' && *p != ' ' && *p != '\t' &&
	    *p != ':')) {
		c->kind = CMD_NOTE;	/* placeholder; the error is what counts */
		command_fail(cs, c, "unknown command \"#%s\" (known: #note, #resolve, #reopen, "
		    "#type, #team, #priority)", word);
		return c;
	}
	c->kind = command_table[i].kind;
	switch (c->kind) {
	case CMD_NOTE:
		cs->note = TRUE;
		if (*rest != '\0')
			g_string_append_printf(note_text, "%s\n", rest);
		break;
	case CMD_RESOLVE:
	case CMD_REOPEN:
		if (*rest != '\0')
			command_fail(cs, c, "#%s takes no argument (got \"%s\")", word, rest);
		break;
	case CMD_TYPE:
		parse_type_args(cs, c, rest);
		break;
	default:
		parse_word_arg(cs, c, word, rest);
		break;
	}
	return c;
}

/* Contradictions and repeats, once every command is known. */
static void
check_set(command_set *cs)
{
	gboolean seen[CMD_PRIORITY + 1] = { FALSE };
	guint i;

	for (i = 0; i < cs->commands->len; i++) {
		command *c = g_ptr_array_index(cs->commands, i);

		if (c->error != NULL)
			continue;
		if (seen[c->kind] && c->kind != CMD_NOTE)
			command_fail(cs, c, "%s is given twice", command_name(c->kind));
		else if ((c->kind == CMD_RESOLVE && seen[CMD_REOPEN]) ||
		    (c->kind == CMD_REOPEN && seen[CMD_RESOLVE]))
			command_fail(cs, c, "#resolve and #reopen contradict each other");
		seen[c->kind] = TRUE;
	}
}

command_set *
command_parse(const char *text)
{
	command_set *cs = g_new0(command_set, 1);
	g_auto(GStrv) lines = g_strsplit(text != NULL ? text : "", "\n", -1);
	GString *note_text = g_string_new(NULL);
	GString *body = g_string_new(NULL);
	gboolean in_block = TRUE;
	char **l;

	cs->commands = g_ptr_array_new_with_free_func((GDestroyNotify)command_free);
	for (l = lines; *l != NULL; l++) {
		g_autofree char *t = g_strstrip(g_strdup(*l));

		if (in_block && *t == '\0')
			continue;
		if (in_block && is_command_line(t)) {
			if (strlen(t) > CMD_LINE_MAX)
				t[CMD_LINE_MAX] = '\0';
			g_ptr_array_add(cs->commands, parse_line(cs, t, note_text));
			continue;
		}
		in_block = FALSE;
		g_string_append(body, *l);
		if (l[1] != NULL)
			g_string_append_c(body, '\n');
	}
	check_set(cs);
	/* text after "#note" on its line is part of the note */
	g_string_prepend(body, note_text->str);
	g_string_free(note_text, TRUE);
	cs->body = g_string_free(body, FALSE);
	return cs;
}

char *
command_transcript(const command_set *cs)
{
	GString *out = g_string_new(NULL);
	guint i;

	for (i = 0; i < cs->commands->len; i++) {
		const command *c = g_ptr_array_index(cs->commands, i);

		g_string_append_printf(out, "> %s\n", c->line);
		if (c->error != NULL)
			g_string_append_printf(out, "  -> error: %s\n", c->error);
		else
			g_string_append(out, cs->errors > 0 ? "  -> not done\n" : "  -> ok\n");
	}
	if (cs->errors > 0)
		g_string_append_printf(out, "\n%d command%s failed: nothing was changed and "
		    "nothing was sent to the member.  Please correct the command%s and send "
		    "your reply again.\n", cs->errors, cs->errors == 1 ? "" : "s",
		    cs->errors == 1 ? "" : "s");
	return g_string_free(out, FALSE);
}
