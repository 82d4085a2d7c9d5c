/*
 * lang.h - which language casegate writes to someone in.
 *
 * casegate writes English ("en") and French ("fr"); templates/<lang>/
 * holds the text of each (outbox.c).  The language of a member comes
 * from, in this order: the member directory, the Content-Language
 * header of their mail, a guess from the words of the mail
 * (lang_detect), the configured default (gateway.language).
 */
#ifndef CG_LANG_H
#define CG_LANG_H

#include <glib.h>
#include "config.h"
#include "mail.h"

#define LANG_FALLBACK	"en"	/* when the config names none */

/*
 * The language code casegate uses for tag: "en" or "fr" for a language
 * tag ("fr", "FR", "fr-CA", "fr_FR") or an English or French name of
 * the language ("French", "français", "anglais"); NULL for anything
 * else, NULL or empty.  Static string.
 */
const char *lang_normalise(const char *tag);

/* "en, fr": the languages lang_normalise knows, for error messages. */
const char *lang_known(void);

/*
 * The first language of a Content-Language value (RFC 3282: a comma
 * separated list of tags, "fr-CA, en") that casegate writes; NULL when
 * none.  Static string.
 */
const char *lang_from_header(const char *value);

typedef struct {
	int	 fr;	/* French function words + words with French accents */
	int	 en;	/* English function words */
} lang_score;

/*
 * Guess the language of a mail from its subject and text (either may be
 * NULL): count frequent function words of each language (words common
 * to both, like "a" or "on", count for neither) in the first 8 KiB,
 * quoted lines ("> ...") left out; a word with a French accent (é, è,
 * à, ç ...) is one more French point.  A side wins with at least 2
 * points and at least twice the other's; otherwise NULL (undecided).
 * *score_r (may be NULL) gets the counts.  Static string.
 */
const char *lang_detect(const char *subject, const char *text, lang_score *score_r);

/* cfg->language, or LANG_FALLBACK when unset (tests build configs by hand). */
const char *lang_default(const config *cfg);

/*
 * The language to write to the sender of m in: member_lang (from the
 * directory; may be NULL), else Content-Language, else lang_detect on
 * subject and text, else the default.  *why_r (may be NULL) gets a
 * static reason: "member directory", "Content-Language", "detected",
 * "default".  Never NULL; static or cfg-owned.
 */
const char *lang_for_mail(const config *cfg, const char *member_lang, const mail_msg *m,
    const char **why_r);

/* A case status (Active, Resolved) as written in lang; unknown ones as they are. */
const char *lang_status_label(const char *lang, const char *status);

#endif
