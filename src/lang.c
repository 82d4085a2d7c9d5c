/*
 * lang.c - language tags, Content-Language, and a cheap guess at the
 * language of a mail.
 *
 * Rationale: the guess only has to tell English from French in mail
 * members write to an office, and it must be honest about doubt, so
 * it counts the short function words every sentence is built from
 * (articles, pronouns, prepositions: "le", "vous", "pour" against
 * "the", "you", "for").  Words both languages use ("a", "on", "me",
 * "plus", "son") count for neither, and so do the letters English
 * contractions leave behind ("it's", "I'm", "I'd": s, m, d); a word with a French accent is one
 * more point for French, since English mail rarely has any.  A side
 * must lead clearly (2 points and twice the other's) or the answer is
 * "undecided" and the caller falls back to the configured default: a
 * wrong guess costs a member a mail in the wrong language, a "don't
 * know" costs nothing.  No dictionary, no n-gram model, no library.
 */
#include <stdlib.h>
#include <string.h>

#include "lang.h"

#define DETECT_MAX	(8 * 1024)	/* bytes of subject + text looked at */
#define WORD_MAX	24		/* longer tokens are no function words */

/* Both sorted (bytewise), for bsearch; tests/test-lang.c checks it. */
static const char *const french_words[] = {
	"au", "aux", "avec", "avez", "avons", "bonjour", "c", "ce", "cela", "ces", "cette",
	"cordialement", "dans", "de", "des", "du", "elle", "en", "est", "et", "ici", "il",
	"j", "je", "l", "la", "le", "les", "leur", "lui", "ma", "mais", "merci", "mes", "moi",
	"mon", "n", "ne", "nos", "notre", "nous", "ou", "par", "pas", "pour", "qu", "que",
	"qui", "sans", "ses", "suis", "sur", "toujours", "très", "un", "une", "vos", "votre",
	"vous", "y", "à", "été", "êtes",
};

static const char *const english_words[] = {
	"about", "am", "and", "are", "at", "be", "been", "but", "by", "can", "could", "dear",
	"did", "do", "for", "from", "had", "has", "have", "hello", "hi", "i", "in", "is",
	"it", "my", "not", "of", "our", "please", "regards", "still", "thank", "thanks",
	"that", "the", "there", "this", "to", "was", "we", "were", "what", "when", "which",
	"will", "with", "would", "you", "your",
};

static int
cmp_word(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

static gboolean
listed(const char *w, const char *const *list, size_t n)
{
	return bsearch(w, list, n, sizeof(*list), cmp_word) != NULL;
}

/* For the tests: is each list sorted for bsearch? */
gboolean lang_lists_sorted(void);

gboolean
lang_lists_sorted(void)
{
	size_t i;

	for (i = 1; i < G_N_ELEMENTS(french_words); i++)
		if (strcmp(french_words[i - 1], french_words[i]) >= 0)
			return FALSE;
	for (i = 1; i < G_N_ELEMENTS(english_words); i++)
		if (strcmp(english_words[i - 1], english_words[i]) >= 0)
			return FALSE;
	return TRUE;
}

static const struct {
	const char *name;	/* lowercase ASCII or UTF-8 */
	const char *code;
} lang_names[] = {
	{ "en", "en" }, { "eng", "en" }, { "english", "en" }, { "anglais", "en" },
	{ "fr", "fr" }, { "fra", "fr" }, { "fre", "fr" }, { "french", "fr" },
	{ "français", "fr" }, { "francais", "fr" },
};

const char *
lang_normalise(const char *tag)
{
	g_autofree char *t = NULL, *low = NULL;
	size_t n, i;

	if (tag == NULL || !g_utf8_validate(tag, -1, NULL))
		return NULL;
	t = g_strstrip(g_strdup(tag));
	/* "fr-CA", "fr_FR.UTF-8": the primary subtag decides */
	n = strcspn(t, "-_.@");
	if (n == 0 || n > 16)
		return NULL;
	t[n] = '\0';
	low = g_utf8_strdown(t, -1);
	for (i = 0; i < G_N_ELEMENTS(lang_names); i++)
		if (strcmp(low, lang_names[i].name) == 0)
			return lang_names[i].code;
	return NULL;
}

const char *
lang_known(void)
{
	return "en, fr";
}

const char *
lang_from_header(const char *value)
{
	g_auto(GStrv) tags = NULL;
	const char *code;
	guint i;

	if (value == NULL)
		return NULL;
	tags = g_strsplit(value, ",", 16);
	for (i = 0; tags[i] != NULL; i++) {
		/* a language tag is letters, digits and '-' (RFC 5646) */
		g_strstrip(tags[i]);
		if (strspn(tags[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
		    != strlen(tags[i]))
			continue;
		if ((code = lang_normalise(tags[i])) != NULL)
			return code;
	}
	return NULL;
}

static gboolean
french_accent(gunichar c)
{
	return c != 0 && g_utf8_strchr("éèêëàâîïôûùüçœæ", -1, c) != NULL;
}

/* Score one lowercase word. */
static void
score_word(const char *w, gboolean accent, lang_score *sc)
{
	if (listed(w, french_words, G_N_ELEMENTS(french_words)))
		sc->fr++;
	else if (accent)
		sc->fr++;
	if (listed(w, english_words, G_N_ELEMENTS(english_words)))
		sc->en++;
}

/*
 * One line: split into words at anything that is not a letter.  ASCII,
 * most of every line, takes the cheap path; a word is kept in a fixed
 * buffer with its length in characters counted as it grows.
 */
static void
score_line(const char *line, const char *end, lang_score *sc)
{
	char w[WORD_MAX * 6 + 1];
	size_t wlen = 0, chars = 0;
	gboolean accent = FALSE, too_long = FALSE;
	const char *p = line;

	for (;;) {
		gunichar c = 0;
		gboolean alpha;

		if (p < end && (unsigned char)*p < 0x80) {
			c = (unsigned char)*p;
			alpha = g_ascii_isalpha(c);
			c = g_ascii_tolower(c);
		} else if (p < end) {
			c = g_utf8_get_char(p);
			alpha = g_unichar_isalpha(c);
			if (alpha) {
				c = g_unichar_tolower(c);
				accent = accent || french_accent(c);
			}
		} else {
			alpha = FALSE;
		}
		if (alpha) {
			if (chars < WORD_MAX) {
				wlen += g_unichar_to_utf8(c, w + wlen);
				chars++;
			} else {
				too_long = TRUE;
			}
		} else {
			if (wlen > 0 && !too_long) {
				w[wlen] = '\0';
				score_word(w, accent, sc);
			}
			wlen = chars = 0;
			accent = too_long = FALSE;
			if (p >= end || c == 0)
				break;
		}
		p = g_utf8_next_char(p);
	}
}

static void
score_text(const char *text, size_t *budget, lang_score *sc)
{
	const char *p = text, *nl;
	g_autofree char *valid = NULL;

	if (text == NULL || *budget == 0)
		return;
	/* the budget may cut a character in two: make it whole again */
	valid = g_utf8_make_valid(text, (gssize)MIN(strlen(text), *budget));
	*budget -= MIN(strlen(text), *budget);
	for (p = valid; *p != '\0'; p = *nl != '\0' ? nl + 1 : nl) {
		const char *q;

		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p);
		for (q = p; q < nl && (*q == ' ' || *q == '\t'); q++)
			;
		if (q < nl && *q == '>')
			continue;	/* quoted: someone else's words */
		score_line(p, nl, sc);
	}
}

const char *
lang_detect(const char *subject, const char *text, lang_score *score_r)
{
	lang_score sc = { 0, 0 };
	size_t budget = DETECT_MAX;

	score_text(subject, &budget, &sc);
	score_text(text, &budget, &sc);
	if (score_r != NULL)
		*score_r = sc;
	if (sc.fr >= 2 && sc.fr >= 2 * sc.en)
		return "fr";
	if (sc.en >= 2 && sc.en >= 2 * sc.fr)
		return "en";
	return NULL;
}

const char *
lang_default(const config *cfg)
{
	return cfg != NULL && cfg->language != NULL ? cfg->language : LANG_FALLBACK;
}

const char *
lang_for_mail(const config *cfg, const char *member_lang, const mail_msg *m,
    const char **why_r)
{
	const char *code, *why;

	if ((code = lang_normalise(member_lang)) != NULL)
		why = "member directory";
	else if (m != NULL &&
	    (code = lang_from_header(mail_header_get(m, "Content-Language"))) != NULL)
		why = "Content-Language";
	else if (m != NULL && (code = m->lang_guessed ? m->lang_guess :
	    lang_detect(m->subject, m->text, NULL)) != NULL)
		why = "detected";
	else {
		code = lang_default(cfg);
		why = "default";
	}
	if (why_r != NULL)
		*why_r = why;
	return code;
}

const char *
lang_status_label(const char *lang, const char *status)
{
	if (status == NULL)
		return "";
	if (g_strcmp0(lang, "fr") == 0) {
		if (strcmp(status, "Active") == 0)
			return "En cours";
		if (strcmp(status, "Resolved") == 0)
			return "Résolu";
	}
	return status;
}
