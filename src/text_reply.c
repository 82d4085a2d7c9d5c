/*
 * text_reply.c - the new text of a reply: quoted history and signature
 * removed (text_reply_visible in text.h).
 *
 * Rationale:
 * - Line-based, no regular expressions: every test is a few string
 *   comparisons per line, so hostile input costs linear time (the
 *   upstream "pathological" fixture hangs naive regex parsers).
 * - Cut at the first quote header, whatever the client: Gmail, Apple
 *   Mail and Thunderbird write "On <date>, <name> wrote:" (in the
 *   sender's language, often wrapped over two or three lines, sometimes
 *   with no verb at all: "ср, 30 апр. 2025 г. в 15:19, Name <a@b>:");
 *   Outlook writes "-----Original Message-----" or a "From: / Sent: /
 *   To: / Subject:" block, often under a line of underscores.
 * - Lines quoted with '>' are dropped wherever they are.  A reply
 *   written below or between quotes (bottom posting) is kept: after an
 *   "On ... wrote:" header that introduces '>' lines, unquoted text
 *   that follows the quote is still the writer's.
 * - The signature starts at "-- " (RFC 3676) or at a short mobile
 *   footer ("Sent from my iPhone", "Envoyé de mon iPhone") that ends the
 *   text; "sent from" inside a sentence is text.
 */
#include <string.h>

#include "text.h"

#define HEADER_JOIN_LINES	3	/* a wrapped "On ... wrote:" spans at most this many */
#define HEADER_MAX_LEN		400
#define FOOTER_MAX_LEN		60
#define WRAP_WIDTH		60	/* a quoted line this long may have been wrapped */

/* Verbs that end a quote header, casefolded; matched as words. */
static const char *const wrote_verbs[] = {
	"wrote", "writes", "a écrit", "schrieb", "escribió", "escreveu", "ha scritto",
	"scrisse", "schreef", "skrev", "kirjoitti", "napisał", "napisała", "napisał(a)",
	"написал", "написала", "написал(а)", "yazdı", "írta", "napsal", "napísal",
	"έγραψε", "כתב", "كتب", "wrote on", NULL,
};

/* Words an "On ... wrote:" header starts with, casefolded. */
static const char *const on_words[] = {
	"on", "le", "am", "el", "il", "op", "den", "w dniu", "dnia", "em", "på", "pe",
	"ma", "ti", "ke", "to", "la", "vào", "в", "el día", NULL,
};

/* "-----Original Message-----" and its translations, casefolded. */
static const char *const original_phrases[] = {
	"original message", "message d'origine", "message d’origine", "ursprüngliche nachricht",
	"oprindelig besked", "oprindelig meddelelse", "opprinnelig melding",
	"ursprungligt meddelande", "originalmeddelande", "alkuperäinen viesti",
	"oorspronkelijk bericht", "messaggio originale", "mensaje original",
	"mensagem original", "wiadomość oryginalna", "původní zpráva", "исходное сообщение",
	"forwarded message", "message transféré", "weitergeleitete nachricht",
	"mensaje reenviado", "messaggio inoltrato", "reply message", "wrote", NULL,
};

/* Outlook header names, casefolded: the block starts with a "from" one. */
static const char *const from_names[] = {
	"from", "de", "von", "van", "da", "fra", "från", "od", "от", "lähettäjä", "feladó",
	"kimden", "差出人", "送信者", "发件人", NULL,
};
static const char *const other_names[] = {
	"sent", "date", "to", "subject", "cc", "envoyé", "à", "objet", "date d'envoi",
	"gesendet", "an", "betreff", "datum", "verzonden", "aan", "onderwerp", "inviato",
	"a", "oggetto", "data", "enviado", "para", "asunto", "assunto", "fecha", "sendt",
	"til", "emne", "dato", "skickat", "till", "ämne", "lähetetty", "vastaanottaja",
	"aihe", "wysłano", "do", "temat", "отправлено", "кому", "тема", "дата",
	"送信日時", "宛先", "件名", "发送时间", "收件人", "主题", NULL,
};

static const char *const footers[] = {
	"sent from my ", "sent from outlook", "sent from mail for windows", "get outlook for ",
	"sent from yahoo mail", "sent from samsung", "sent via ", "envoyé de mon ",
	"envoyé depuis mon ", "envoyé à partir de ", "obtenir outlook pour ",
	"von meinem ", "gesendet von meinem ", "enviado desde mi ", "enviado do meu ",
	"inviato da ", "verzonden vanaf mijn ", "gesendet von ", "sent with ", "sent from ", "sendt fra min ", "skickat från min ",
	"wysłane z mojego ", "отправлено с ", NULL,
};

/*
 * Stripped and casefolded.  Every line is folded several times (each
 * header test folds it again), and g_utf8_casefold builds its result a
 * character at a time: 13% of the daemon's instructions went here
 * (bench/README.md).  For ASCII, casefolding is lowercasing.
 */
static char *
fold(const char *s)
{
	char *t = g_strstrip(g_strdup(s)), *p, *f;

	for (p = t; *p != '\0' && !(*p & 0x80); p++)
		*p = g_ascii_tolower(*p);
	if (*p == '\0')
		return t;
	/* the part lowered already folds the same */
	f = g_utf8_casefold(t, -1);
	g_free(t);
	return f;
}

static gboolean
starts_with_any(const char *s, const char *const *list, gboolean word)
{
	for (; *list != NULL; list++) {
		size_t n = strlen(*list);

		if (strncmp(s, *list, n) == 0 && (!word || s[n] == ' ' || s[n] == ',' ||
		    s[n] == '\0'))
			return TRUE;
	}
	return FALSE;
}

/* Does folded s contain one of the verbs as a whole word? */
static gboolean
has_verb(const char *s)
{
	const char *const *v;

	for (v = wrote_verbs; *v != NULL; v++) {
		const char *p = s;
		size_t n = strlen(*v);

		while ((p = strstr(p, *v)) != NULL) {
			gboolean before = p == s || p[-1] == ' ' || p[-1] == ',' || p[-1] == ')' ||
			    p[-1] == '>';
			char after = p[n];

			if (before && (after == '\0' || after == ' ' || after == ':' ||
			    after == ','))
				return TRUE;
			p += n;
		}
	}
	return FALSE;
}

/* "Name <a@b>:" with a digit somewhere: the verb-less Gmail header. */
static gboolean
looks_like_dated_address_header(const char *s)
{
	const char *lt = strrchr(s, '<'), *gt = strrchr(s, '>');
	size_t n = strlen(s);

	return lt != NULL && gt != NULL && gt > lt && memchr(lt, '@', gt - lt) != NULL &&
	    strpbrk(s, "0123456789") != NULL && n > 0 && s[n - 1] == ':' &&
	    gt >= s + n - 3;
}

/* Ends with ':' (or "wrote" in a dashed zoho line), after trimming. */
static gboolean
ends_header(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && (s[n - 1] == ':' || g_str_has_suffix(s, "wrote"));
}

/*
 * Is lines[i] the first line of an "On ... wrote:" header?  Returns the
 * number of lines it spans, or 0.
 */
static int
on_wrote_header(char **folded, int i, int n)
{
	g_autoptr(GString) joined = g_string_new(NULL);
	const char *first = folded[i];
	gboolean opener;
	int k;

	if (*first == '\0' || *first == '>')
		return 0;
	opener = starts_with_any(first, on_words, TRUE);
	/* "tir. 18. apr. 2017 kl. 13:09 skrev Name <a@b" / ">:": a dated first
	 * line may start a wrapped header too, unless the next line starts
	 * one itself (then this line is the writer's last). */
	if (!opener && strpbrk(first, "0123456789") != NULL && i + 1 < n) {
		const char *next = folded[i + 1];

		opener = !starts_with_any(next, on_words, TRUE);
	}
	for (k = 0; k < HEADER_JOIN_LINES && i + k < n; k++) {
		const char *l = folded[i + k];

		/* a wrapped address may leave ">:" alone on the last line */
		if (*l == '\0' || (k > 0 && *l == '>' && !g_str_has_prefix(l, ">:")))
			break;
		if (joined->len > 0)
			g_string_append_c(joined, ' ');
		g_string_append(joined, l);
		if (joined->len > HEADER_MAX_LEN)
			return 0;
		if (!ends_header(joined->str))
			continue;
		/* one line may start anywhere; a wrapped one must start like a header */
		if ((k == 0 || opener) && (has_verb(joined->str) ||
		    looks_like_dated_address_header(joined->str)))
			return k + 1;
	}
	return 0;
}

/* "-----Original Message-----", "-------- Oprindelig besked --------", "---- On ... wrote ----". */
static gboolean
dashed_separator(const char *f)
{
	const char *const *p;
	size_t n = strlen(f);

	if (n < 6 || strncmp(f, "---", 3) != 0 || !g_str_has_suffix(f, "---"))
		return FALSE;
	for (p = original_phrases; *p != NULL; p++)
		if (strstr(f, *p) != NULL)
			return TRUE;
	return FALSE;
}

/* "From: x" (optionally "*From:*"), by one of names; f is folded. */
static gboolean
header_line(const char *f, const char *const *names)
{
	const char *p = f, *colon;
	g_autofree char *name = NULL;

	if (*p == '*')
		p++;
	if ((colon = strchr(p, ':')) == NULL || colon == p || colon - p > 20)
		return FALSE;
	name = g_strndup(p, colon - p);
	g_strstrip(name);
	if (*name != '\0' && name[strlen(name) - 1] == '*')
		name[strlen(name) - 1] = '\0';
	g_strstrip(name);
	return g_strv_contains((const char *const *)names, name);
}

/* "Name: value" with a short name of at most three words; f is folded. */
static gboolean
header_shaped(const char *f)
{
	const char *p = f, *colon;
	int words = 1;

	if (*p == '*')
		p++;
	if ((colon = strchr(p, ':')) == NULL || colon == p || colon - p > 25)
		return FALSE;
	for (; p < colon; p++)
		if (*p == ' ' && p[1] != ' ' && p + 1 < colon)
			words++;
	return words <= 3;
}

/*
 * An Outlook-style header block starting at lines[i]: at least three
 * header lines ("From:", "Sent:", "To:", "Subject:" in any language and
 * order, a wrapped From address allowed), one of them a From line and
 * one a known name; or a From line and two known names.
 */
static gboolean
outlook_block(char **lines, char **folded, int i, int n)
{
	int k, shaped = 0, known = 0;
	gboolean from = FALSE;

	if (!header_shaped(folded[i]))
		return FALSE;
	for (k = i; k < n && k <= i + 7; k++) {
		if (header_line(folded[k], from_names))
			from = TRUE, shaped++;
		else if (header_line(folded[k], other_names))
			known++, shaped++;
		else if (header_shaped(folded[k]))
			shaped++;
		else if (k > i && (*lines[k] == '<' || *lines[k] == ' ') &&
		    header_line(folded[k - 1], from_names))
			continue;	/* "From: Name" / "<address>" */
		else
			break;
	}
	return from && ((shaped >= 3 && known >= 1) || known >= 2);
}

/* A line of at least 10 underscores (Outlook) followed by an Outlook block. */
static gboolean
underscore_rule(char **lines, char **folded, int i, int n)
{
	const char *f = folded[i];
	int k;

	if (strlen(f) < 10 || strspn(f, "_") != strlen(f))
		return FALSE;
	for (k = i + 1; k < n && *lines[k] == '\0'; k++)
		;
	return k < n && outlook_block(lines, folded, k, n);
}

static gboolean
is_quoted(const char *line)
{
	while (*line == ' ')
		line++;
	return *line == '>';
}

/* "-- " (RFC 3676), and "__" that mailing lists put above their footer. */
static gboolean
is_sig_delimiter(const char *line)
{
	size_t n = strlen(line);

	return strcmp(line, "-- ") == 0 || strcmp(line, "--") == 0 ||
	    (n >= 2 && n < 10 && strspn(line, "_") == n);
}

static int
words(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		if (*s != ' ' && (s[1] == ' ' || s[1] == '\0'))
			n++;
	return n;
}

/*
 * A short mobile footer on a line of its own, after a blank line:
 * "Sent from my iPhone", "Gesendet von Outlook für Android<https://...>".
 */
static gboolean
mobile_footer(char **lines, int i)
{
	g_autofree char *f = fold(lines[i]);
	char *link;

	if (i > 0 && *lines[i - 1] != '\0')
		return FALSE;
	if ((link = strchr(f, '<')) != NULL || (link = strstr(f, "http")) != NULL ||
	    (link = strchr(f, '(')) != NULL)
		*link = '\0';
	g_strchomp(f);
	/* "Sent from my desk, is much easier." is a sentence, not a footer */
	return strlen(f) <= FOOTER_MAX_LEN && starts_with_any(f, footers, FALSE) &&
	    strpbrk(f, ",;!?") == NULL && !g_str_has_suffix(f, ".") && words(f) <= 7;
}

/* Index of the first quote header at or after from, or n; *span_r its lines. */
static int
find_header(char **lines, char **folded, int from, int n, int *span_r, gboolean *on_r)
{
	int i, span;

	for (i = from; i < n; i++) {
		*on_r = FALSE;
		*span_r = 1;
		if ((span = on_wrote_header(folded, i, n)) > 0) {
			*span_r = span;
			*on_r = TRUE;
			return i;
		}
		if (dashed_separator(folded[i]) || underscore_rule(lines, folded, i, n) ||
		    outlook_block(lines, folded, i, n))
			return i;
	}
	return n;
}

/* Remove separator lines ("====", "----") left at the end of out. */
static void
drop_trailing_rules(GString *out)
{
	for (;;) {
		gssize end = (gssize)out->len, start;
		gboolean rule = TRUE, any = FALSE;
		gssize j;

		while (end > 0 && (out->str[end - 1] == '\n' || out->str[end - 1] == ' '))
			end--;
		for (start = end; start > 0 && out->str[start - 1] != '\n'; start--)
			;
		for (j = start; j < end; j++) {
			any = TRUE;
			if (strchr("=-_*~#", out->str[j]) == NULL)
				rule = FALSE;
		}
		if (!any || !rule || end - start < 2)
			return;
		g_string_truncate(out, start);
	}
}

static void
append_line(GString *out, const char *line)
{
	g_string_append(out, line);
	g_string_append_c(out, '\n');
}

char *
text_reply_visible(const char *text)
{
	g_autofree char *norm = NULL;
	g_auto(GStrv) lines = NULL, folded = NULL;
	GString *out;
	int n, i, stop, span, k;
	gboolean on;
	char *p;

	norm = g_strdup(text != NULL ? text : "");
	for (p = norm; *p != '\0'; p++)
		if (*p == '\r')
			*p = p[1] == '\n' ? ' ' : '\n';
	lines = g_strsplit(norm, "\n", -1);
	n = (int)g_strv_length(lines);
	/* each line folded once: the header tests look at a line many times */
	folded = g_new0(char *, n + 1);
	for (i = 0; i < n; i++) {
		g_strchomp(lines[i]);
		folded[i] = fold(lines[i]);
	}
	out = g_string_new(NULL);
	i = 0;
	for (;;) {
		stop = find_header(lines, folded, i, n, &span, &on);
		for (k = i; k < stop; k++) {
			if (is_sig_delimiter(lines[k]) || mobile_footer(lines, k))
				break;
			if (!is_quoted(lines[k]))
				append_line(out, lines[k]);
		}
		if (k < stop || stop >= n || !on)
			break;
		/*
		 * "On ... wrote:", '>' lines, a blank line, then unquoted text:
		 * a reply written below the quote.  Unquoted lines glued to the
		 * quote are a client's broken wrapping and stay cut.
		 */
		for (k = stop + span; k < n && *lines[k] == '\0'; k++)
			;
		if (k >= n || !is_quoted(lines[k]))
			break;
		for (; k < n && (*lines[k] == '\0' || is_quoted(lines[k])); k++)
			;
		if (k >= n || (*lines[k - 1] != '\0' && strlen(lines[k - 1]) >= WRAP_WIDTH))
			break;
		i = k;
	}
	drop_trailing_rules(out);
	/* trim blank lines and spaces at both ends */
	return g_strstrip(g_string_free(out, FALSE));
}
