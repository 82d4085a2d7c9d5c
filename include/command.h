/*
 * command.h - the commands staff put in the first lines of a reply:
 *
 *   #note                       internal: nothing is relayed to the member
 *   #resolve / #reopen          set the status (Resolved / Active)
 *   #type Type / Sub type [/ Update type]
 *   #team name
 *   #priority low|normal|high|urgent
 *
 * Command lines are removed from the text that is relayed.  Parsing
 * checks the syntax only; the caller checks names against the rules
 * (command_fail) and applies nothing when anything failed.
 */
#ifndef CG_COMMAND_H
#define CG_COMMAND_H

#include <glib.h>

typedef enum {
	CMD_NOTE,
	CMD_RESOLVE,
	CMD_REOPEN,
	CMD_TYPE,
	CMD_TEAM,
	CMD_PRIORITY,
} command_kind;

typedef struct {
	command_kind kind;
	char	*line;		/* the line as written, trimmed */
	char	*args[3];	/* #type: type, sub type, update type; #team, #priority: [0] */
	char	*error;		/* NULL, or why this command cannot be done */
} command;

typedef struct {
	GPtrArray *commands;	/* command *, in order */
	char	*body;		/* the text without the command lines */
	gboolean note;		/* #note was given */
	int	 errors;	/* commands with an error (parse or command_fail) */
} command_set;

/*
 * Commands from the first lines of text (UTF-8): leading blank lines
 * are skipped, then every line that starts with '#' and a letter is a
 * command, until the first other non-blank line.  Unknown commands, bad
 * arguments and contradictions (#resolve with #reopen, a command given
 * twice) are recorded as errors on their command.  Never NULL.
 */
command_set *command_parse(const char *text);
void command_set_free(command_set *cs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(command_set, command_set_free)

/* The first command of kind, or NULL. */
const command *command_find(const command_set *cs, command_kind kind);

/* Mark cmd as failed with a message (printf-style); counts it once. */
void command_fail(command_set *cs, command *cmd, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/*
 * What happened to each command, for the mail back to staff: the line,
 * then "  -> ok" or "  -> error: why"; when anything failed a closing
 * line says that nothing was done and nothing was relayed.  Newly
 * allocated.
 */
char *command_transcript(const command_set *cs);

/* "#note" ... for a kind. */
const char *command_name(command_kind kind);

#endif
