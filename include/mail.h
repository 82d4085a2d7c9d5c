/*
 * mail.h - a parsed message in a plain struct the rest of the code reads.
 *
 * mail_parse_file() parses with GMime from a file (streamed, never the
 * whole message in memory), decodes every header and the best text body
 * to valid UTF-8, and decodes attachments straight into the spool.
 * Everything in a mail_msg is owned by it and freed by mail_msg_free().
 */
#ifndef CG_MAIL_H
#define CG_MAIL_H

#include <glib.h>
#include "spool.h"

typedef struct {
	char	*name;		/* sanitised display name (spool_safe_name) */
	char	*content_type;	/* "application/pdf", lowercase */
	char	*digest;	/* in the spool, kind SPOOL_ATT; NULL if not saved */
	gint64	 size;		/* decoded bytes */
} mail_attachment;

typedef struct {
	char	*name;		/* header name as sent */
	char	*value;		/* decoded, unfolded, valid UTF-8, CR/LF/NUL removed */
} mail_header;

typedef struct {
	char	*message_id;	/* without <>, NULL if missing or unusable */
	char	*from_addr;	/* lowercase-domain address, NULL if none valid */
	char	*from_name;	/* display name, may be NULL */
	char	*reply_to;	/* address or NULL */
	char	*return_path;	/* envelope sender from Return-Path: "" for <>, NULL if absent */
	GPtrArray *to;		/* char *: addresses that passed cg_address_valid */
	GPtrArray *cc;		/* char * */
	char	*subject;	/* decoded, single line; "" if missing */
	gint64	 date;		/* seconds since epoch, 0 if missing or bad */
	char	*in_reply_to;	/* message id without <>, or NULL */
	GPtrArray *references;	/* char *, oldest first, without <> */
	char	*text;		/* best text body, valid UTF-8, "" if none */
	gboolean text_from_html; /* text came from a text/html part */
	GPtrArray *attachments;	/* mail_attachment * */
	GPtrArray *headers;	/* mail_header *, in order */
	gint64	 size;		/* bytes of the raw message */
	GPtrArray *problems;	/* char *: what was odd or dropped, for the record */
	GPtrArray *dropped;	/* char *: what a limit left out, one line each, for
				 * the member's acknowledgement and the case record */
	/*
	 * Derived from the text by ingest_prepare(), in the worker that
	 * parses ahead, so the single database writer need not: NULL and
	 * FALSE mean "not yet", and the user computes it then.
	 */
	char	*visible;	/* text_reply_visible(text) */
	const char *lang_guess;	/* lang_detect(subject, text); static, NULL: undecided */
	gboolean lang_guessed;	/* lang_guess holds the answer */
} mail_msg;

/*
 * Limits applied while parsing (config.h limits_config); 0 means no
 * limit.  Over a limit nothing fails: what is left out is named in
 * m->dropped.  A message over max_message_size is read up to the end
 * of its header only.
 */
typedef struct {
	gint64	 max_message_size;
	gint64	 max_attachment_size;
	int	 max_attachments;
	int	 max_mime_depth;
	int	 max_parts;
} mail_limits;

/*
 * Parse the raw message in path.  When sp is not NULL, attachments are
 * decoded into it (kind SPOOL_ATT); otherwise they are only listed.
 * Returns NULL with CG_ERROR_PERM only when nothing usable could be
 * read (empty file, not a message at all); odd input is parsed as far as
 * it goes and noted in problems.  CG_ERROR_TEMP on I/O errors.
 */
mail_msg *mail_parse_file(const char *path, spool *sp, GError **error);

/* Same, from a memory buffer (tests, rules test). */
mail_msg *mail_parse_data(const char *data, size_t len, spool *sp, GError **error);

/*
 * mail_parse_file / mail_parse_data with limits (NULL: the built-in
 * caps only).  winmail.dat (application/ms-tnef) attachments are
 * unpacked into the files inside them.
 */
mail_msg *mail_parse_file_limits(const char *path, spool *sp, const mail_limits *lim,
    GError **error);
mail_msg *mail_parse_data_limits(const char *data, size_t len, spool *sp,
    const mail_limits *lim, GError **error);

/* "52.4 MB": a size for people, ASCII only.  Newly allocated. */
char *mail_size_text(gint64 bytes);

/* Note something a limit left out (m->dropped), printf-style. */
void mail_dropped(mail_msg *m, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

void mail_msg_free(mail_msg *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(mail_msg, mail_msg_free)

/* First header named name (case-insensitive), or NULL; owned by m. */
const char *mail_header_get(const mail_msg *m, const char *name);

/* The domain part of an address (pointer into addr), or NULL. */
const char *mail_addr_domain(const char *addr);

#endif
