/*
 * text.c - bytes from a message to clean UTF-8.
 *
 * Rationale:
 * - Mail lies about charsets.  Bytes that are not valid UTF-8 and carry no
 *   usable charset are read as windows-1252, byte by byte: that is what
 *   unlabelled 8-bit mail almost always is (and what browsers do for
 *   iso-8859-1), and a per-byte fallback keeps the valid UTF-8 around it.
 * - RFC 2047 words are decoded here and not by GMime: GMime 3.2.13 drops
 *   everything after a padded base64 word (bug #133, libs.md PITFALL 10).
 *   Each word is base64/QP-decoded on its own, then the bytes of adjacent
 *   words in one charset are converted together, because senders split
 *   multi-byte characters across words.
 * - HTML goes through libxml2's HTML parser (forgiving, entity-aware) and a
 *   small tree walk; the output keeps paragraph breaks and marks quoted
 *   blocks with "> " so the reply trimmer can see them.
 */
#include <errno.h>
#include <string.h>

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include "text.h"

#define REPLACEMENT	"\xEF\xBF\xBD"	/* U+FFFD */
#define HTML_MAX_DEPTH	256

/* windows-1252 0x80..0x9F; 0 where the code page leaves a hole. */
static const gunichar cp1252_c1[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

static void
append_cp1252(GString *out, unsigned char ch)
{
	gunichar u = ch;

	if (ch >= 0x80 && ch < 0xA0)
		u = cp1252_c1[ch - 0x80];
	if (u == 0)
		g_string_append(out, REPLACEMENT);
	else
		g_string_append_unichar(out, u);
}

char *
text_make_utf8(const char *s, gssize len, gboolean *fallback_r)
{
	GString *out;
	const char *p, *end, *stop;

	if (fallback_r != NULL)
		*fallback_r = FALSE;
	if (s == NULL)
		return g_strdup("");
	if (len < 0)
		len = strlen(s);
	out = g_string_sized_new(len + 1);
	p = s;
	stop = s + len;
	while (p < stop) {
		/* g_utf8_validate_len stops at an invalid byte or a NUL */
		g_utf8_validate_len(p, stop - p, &end);
		g_string_append_len(out, p, end - p);
		if (end >= stop)
			break;
		if (*end != '\0') {
			append_cp1252(out, (unsigned char)*end);
			if (fallback_r != NULL)
				*fallback_r = TRUE;
		}
		p = end + 1;
	}
	return g_string_free(out, FALSE);
}

void
text_truncate_utf8(char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return;
	/* back up over continuation bytes to a character start */
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

static char *
printable_charset(const char *charset)
{
	char *c = text_header_clean(charset);

	text_truncate_utf8(c, 40);
	return c;
}

static gboolean
charset_is_utf8(const char *cs)
{
	static const char *names[] = { "utf-8", "utf8", "us-ascii", "ascii",
	    "ansi_x3.4-1968", "unicode-1-1-utf-8", "x-unicode20utf8", NULL };
	int i;

	for (i = 0; names[i] != NULL; i++)
		if (g_ascii_strcasecmp(cs, names[i]) == 0)
			return TRUE;
	return FALSE;
}

/* Names iconv does not know, or knows as a narrower set than is meant. */
static const char *
charset_iconv_name(const char *cs)
{
	static const struct { const char *mime, *iconv; } aliases[] = {
		{ "iso-8859-1", "WINDOWS-1252" },	/* as browsers do */
		{ "latin1", "WINDOWS-1252" },
		{ "iso_8859-1", "WINDOWS-1252" },
		{ "unicode-1-1-utf-7", "UTF-7" },
		{ "x-mac-cyrillic", "MAC-CYRILLIC" },
		{ "x-mac-roman", "MACINTOSH" },
		{ "ks_c_5601-1987", "CP949" },
		{ "iso-8859-8-i", "ISO-8859-8" },
		{ "gb2312", "GB18030" },		/* superset */
		{ "gbk", "GB18030" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(aliases); i++)
		if (g_ascii_strcasecmp(cs, aliases[i].mime) == 0)
			return aliases[i].iconv;
	return g_mime_charset_iconv_name(cs);
}

/* Run in through cd; undecodable bytes become U+FFFD. */
static char *
iconv_all(GIConv cd, const char *in, size_t len, gboolean *lossy_r)
{
	GString *out = g_string_sized_new(len + len / 2 + 16);
	char buf[4096], *ip = (char *)in, *op;
	gsize il = len, ol, r;

	while (il > 0) {
		op = buf;
		ol = sizeof(buf);
		r = g_iconv(cd, &ip, &il, &op, &ol);
		g_string_append_len(out, buf, op - buf);
		if (r != (gsize)-1 || errno == E2BIG)
			continue;
		g_string_append(out, REPLACEMENT);
		*lossy_r = TRUE;
		if (errno == EINVAL)	/* incomplete sequence at the end */
			break;
		ip++;
		il--;
	}
	op = buf;
	ol = sizeof(buf);
	if (g_iconv(cd, NULL, NULL, &op, &ol) != (gsize)-1)
		g_string_append_len(out, buf, op - buf);
	/* iconv output is UTF-8 already; this drops NULs and guarantees it */
	{
		char *res = text_make_utf8(out->str, out->len, NULL);

		g_string_free(out, TRUE);
		return res;
	}
}

char *
text_to_utf8(const char *in, size_t len, const char *charset, char **problem_r)
{
	g_autofree char *cs = NULL;
	gboolean fallback = FALSE, lossy = FALSE;
	GIConv cd;
	char *res;

	if (problem_r != NULL)
		*problem_r = NULL;
	if (in == NULL)
		return g_strdup("");
	if (charset == NULL || *charset == '\0' || charset_is_utf8(charset)) {
		res = text_make_utf8(in, len, &fallback);
		if (fallback && problem_r != NULL) {
			cs = charset != NULL && *charset != '\0' ?
			    printable_charset(charset) : g_strdup("no charset");
			*problem_r = g_strdup_printf("%s text is not valid UTF-8, "
			    "invalid bytes read as windows-1252", cs);
		}
		return res;
	}
	cd = g_iconv_open("UTF-8", charset_iconv_name(charset));
	if (cd == (GIConv)-1) {
		res = text_make_utf8(in, len, &fallback);
		if (problem_r != NULL) {
			cs = printable_charset(charset);
			*problem_r = g_strdup_printf("charset %s unknown, "
			    "decoded as %s", cs, fallback ? "windows-1252" : "UTF-8");
		}
		return res;
	}
	res = iconv_all(cd, in, len, &lossy);
	g_iconv_close(cd);
	if (lossy && problem_r != NULL) {
		cs = printable_charset(charset);
		*problem_r = g_strdup_printf("invalid bytes for charset %s "
		    "replaced", cs);
	}
	return res;
}

char *
text_header_clean(const char *s)
{
	g_autofree char *u = text_make_utf8(s, -1, NULL);
	GString *out = g_string_sized_new(strlen(u) + 1);
	gboolean space = FALSE;
	const char *p;

	for (p = u; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c == '\r' || c == '\n')
			continue;	/* unfolding: the fold's WSP stays */
		if (c == '\t' || c == ' ') {
			space = TRUE;
			continue;
		}
		if (c < 0x20 || (c >= 0x7F && c < 0xA0))
			continue;
		if (space && out->len > 0)
			g_string_append_c(out, ' ');
		space = FALSE;
		g_string_append_unichar(out, c);
	}
	return g_string_free(out, FALSE);
}

/*
 * RFC 2047 encoded-words.
 */

typedef struct {
	char		 charset[76];
	GByteArray	*bytes;		/* decoded payload */
	const char	*end;		/* just after "?=" */
} encoded_word;

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = g_ascii_tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void
decode_q(const char *s, size_t len, GByteArray *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		guint8 b = (guint8)s[i];

		if (b == '_')
			b = ' ';
		else if (b == '=' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			b = (guint8)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		}
		g_byte_array_append(out, &b, 1);
	}
}

static void
decode_b(const char *s, size_t len, GByteArray *out)
{
	gint state = 0;
	guint save = 0;
	guint8 *buf = g_malloc(len * 3 / 4 + 3);
	gsize n;

	/* a fresh decoder state per word: padding ends the word, not the run */
	n = g_base64_decode_step(s, len, buf, &state, &save);
	g_byte_array_append(out, buf, n);
	g_free(buf);
}

/* Parse "=?charset?E?payload?=" at p; fills w on success. */
static gboolean
parse_encoded_word(const char *p, encoded_word *w)
{
	const char *cs, *q, *payload;
	size_t cslen;
	char enc;

	if (p[0] != '=' || p[1] != '?')
		return FALSE;
	cs = p + 2;
	for (q = cs; *q != '\0' && *q != '?'; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7F)
			return FALSE;
	cslen = q - cs;
	if (*q != '?' || cslen == 0 || cslen >= sizeof(w->charset))
		return FALSE;
	enc = g_ascii_toupper(q[1]);
	if ((enc != 'B' && enc != 'Q') || q[2] != '?')
		return FALSE;
	payload = q + 3;
	for (q = payload; *q != '\0' && *q != '?'; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7F)
			return FALSE;
	if (q[0] != '?' || q[1] != '=')
		return FALSE;
	memcpy(w->charset, cs, cslen);
	w->charset[cslen] = '\0';
	/* RFC 2231 language suffix: "utf-8*de" */
	if (strchr(w->charset, '*') != NULL)
		*strchr(w->charset, '*') = '\0';
	w->bytes = g_byte_array_new();
	if (enc == 'B')
		decode_b(payload, q - payload, w->bytes);
	else
		decode_q(payload, q - payload, w->bytes);
	w->end = q + 2;
	return TRUE;
}

/* The words of one header, decoded and grouped by charset. */
typedef struct {
	GString		*out;
	GByteArray	*pending;	/* bytes of adjacent words */
	char		 charset[76];	/* of pending */
	char		*problem;	/* first problem seen */
} word_decoder;

static void
decoder_flush(word_decoder *d)
{
	char *problem = NULL, *s;

	if (d->pending->len == 0)
		return;
	s = text_to_utf8((const char *)d->pending->data, d->pending->len,
	    d->charset, &problem);
	g_string_append(d->out, s);
	g_free(s);
	if (problem != NULL && d->problem == NULL)
		d->problem = problem;
	else
		g_free(problem);
	g_byte_array_set_size(d->pending, 0);
}

static void
decoder_add_word(word_decoder *d, encoded_word *w)
{
	if (d->pending->len > 0 && g_ascii_strcasecmp(d->charset, w->charset) != 0)
		decoder_flush(d);
	g_strlcpy(d->charset, w->charset, sizeof(d->charset));
	g_byte_array_append(d->pending, w->bytes->data, w->bytes->len);
	g_byte_array_unref(w->bytes);
}

static gboolean
all_space(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return FALSE;
	return TRUE;
}

/* Length of the plain run at p: up to the next parsable encoded-word. */
static size_t
plain_run(const char *p)
{
	const char *q;
	encoded_word w;

	for (q = p + 1; *q != '\0'; q++) {
		if (q[0] == '=' && q[1] == '?' && parse_encoded_word(q, &w)) {
			g_byte_array_unref(w.bytes);
			break;
		}
	}
	return q - p;
}

char *
text_decode_header(const char *raw, char **problem_r)
{
	word_decoder d = { 0 };
	gboolean prev_word = FALSE;
	const char *p;
	char *res;

	if (problem_r != NULL)
		*problem_r = NULL;
	if (raw == NULL)
		return g_strdup("");
	d.out = g_string_new(NULL);
	d.pending = g_byte_array_new();
	for (p = raw; *p != '\0';) {
		encoded_word w;
		size_t n;

		if (parse_encoded_word(p, &w)) {
			decoder_add_word(&d, &w);
			prev_word = TRUE;
			p = w.end;
			continue;
		}
		n = plain_run(p);
		/* RFC 2047 6.2: white space between adjacent words vanishes */
		if (prev_word && p[n] != '\0' && all_space(p, n)) {
			p += n;
			continue;
		}
		decoder_flush(&d);
		{
			gboolean fb;
			char *s = text_make_utf8(p, n, &fb);

			g_string_append(d.out, s);
			g_free(s);
			if (fb && d.problem == NULL)
				d.problem = g_strdup("raw 8-bit header text "
				    "is not UTF-8, read as windows-1252");
		}
		prev_word = FALSE;
		p += n;
	}
	decoder_flush(&d);
	g_byte_array_unref(d.pending);
	res = text_header_clean(d.out->str);
	g_string_free(d.out, TRUE);
	if (problem_r != NULL)
		*problem_r = d.problem;
	else
		g_free(d.problem);
	return res;
}

static void
append_merged(GString *out, GString *run)
{
	g_autofree char *b64 = g_base64_encode((const guchar *)run->str, run->len);

	g_string_append_printf(out, "=?UTF-8?B?%s?=", b64);
}

char *
text_merge_encoded_words(const char *raw)
{
	GString *out, *run;
	const char *p, *run_start = NULL;
	int words = 0;

	if (raw == NULL)
		return g_strdup("");
	if (strstr(raw, "=?") == NULL)
		return g_strdup(raw);
	out = g_string_new(NULL);
	run = g_string_new(NULL);
	for (p = raw; ; ) {
		encoded_word w;
		const char *q;

		if (*p != '\0' && parse_encoded_word(p, &w)) {
			g_byte_array_unref(w.bytes);
			if (words == 0)
				run_start = p;
			words++;
			p = w.end;
			continue;
		}
		/* whitespace followed by another word continues the run */
		for (q = p; words > 0 && (*q == ' ' || *q == '\t' || *q == '\r' ||
		    *q == '\n'); q++)
			;
		if (words > 0 && q != p && q[0] == '=' && q[1] == '?' &&
		    parse_encoded_word(q, &w)) {
			g_byte_array_unref(w.bytes);
			p = q;
			continue;
		}
		if (words == 1) {
			g_string_append_len(out, run_start, p - run_start);
		} else if (words > 1) {
			g_autofree char *seg = g_strndup(run_start, p - run_start);
			g_autofree char *dec = text_decode_header(seg, NULL);

			g_string_assign(run, dec);
			append_merged(out, run);
		}
		words = 0;
		if (*p == '\0')
			break;
		g_string_append_c(out, *p++);
	}
	g_string_free(run, TRUE);
	return g_string_free(out, FALSE);
}

/*
 * HTML to text.
 */

typedef struct {
	GString		*out;
	size_t		 max;
	int		 quote;		/* <blockquote> depth */
	int		 pre;		/* inside <pre> */
	int		 newlines;	/* pending line breaks, at most 2 */
	int		 nl_quote;	/* quote depth when the first was asked for */
	gboolean	 space;		/* pending space */
	gboolean	 bol;		/* at the beginning of a line */
} html_out;

static void
out_break(html_out *o, int n)
{
	if (o->out->len == 0)
		return;
	if (o->newlines == 0)
		o->nl_quote = o->quote;
	if (n > o->newlines)
		o->newlines = n;
}

static void
out_char(html_out *o, gunichar c)
{
	int i;

	if (o->newlines > 0) {
		for (i = 0; i < o->newlines; i++) {
			g_string_append_c(o->out, '\n');
			/* keep the quote marker on blank lines inside a quote */
			if (i + 1 < o->newlines)
				for (int q = 0; q < MIN(o->quote, o->nl_quote); q++)
					g_string_append_c(o->out, '>');
		}
		o->newlines = 0;
		o->space = FALSE;
		o->bol = TRUE;
	}
	if (o->bol) {
		for (i = 0; i < o->quote; i++)
			g_string_append(o->out, "> ");
		o->bol = FALSE;
		o->space = FALSE;
	}
	if (o->space)
		g_string_append_c(o->out, ' ');
	o->space = FALSE;
	g_string_append_unichar(o->out, c);
}

static void
out_text(html_out *o, const char *s)
{
	const char *p;

	if (s == NULL || !g_utf8_validate(s, -1, NULL))
		return;
	for (p = s; *p != '\0' && o->out->len < o->max; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (o->pre && c == '\n') {
			out_break(o, MIN(o->newlines + 1, 2));
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		    c == '\f' || c == 0xA0 || g_unichar_isspace(c)) {
			if (o->pre && c != '\r')
				out_char(o, ' ');
			else if (!o->pre)
				o->space = o->out->len > 0;
			continue;
		}
		if (c < 0x20 || (c >= 0x7F && c < 0xA0))
			continue;
		out_char(o, c);
	}
}

static gboolean
name_in(const char *name, const char *const *list)
{
	for (; *list != NULL; list++)
		if (g_ascii_strcasecmp(name, *list) == 0)
			return TRUE;
	return FALSE;
}

static const char *const html_skip[] = { "script", "style", "head", "title",
    "template", "svg", "iframe", "object", "math", NULL };
static const char *const html_para[] = { "p", "h1", "h2", "h3", "h4", "h5",
    "h6", "pre", "table", "ul", "ol", "dl", "hr", NULL };
static const char *const html_block[] = { "div", "li", "tr", "form",
    "section", "article", "header", "footer", "nav", "aside", "address",
    "figure", "main", "center", "fieldset", "dt", "dd", "caption",
    "tbody", "thead", "tfoot", "body", NULL };

static void html_walk(html_out *o, xmlNode *n, int depth);

/* Append " <url>" after a link whose text does not show its target. */
static void
html_link(html_out *o, xmlNode *n, size_t start)
{
	xmlChar *prop = xmlGetProp(n, (const xmlChar *)"href");
	const char *href = (const char *)prop, *shown;

	if (href == NULL)
		return;
	if ((g_ascii_strncasecmp(href, "http://", 7) == 0 ||
	    g_ascii_strncasecmp(href, "https://", 8) == 0 ||
	    g_ascii_strncasecmp(href, "mailto:", 7) == 0) && strlen(href) <= 2000) {
		shown = g_ascii_strncasecmp(href, "mailto:", 7) == 0 ? href + 7 : href;
		if (strstr(o->out->str + start, shown) == NULL) {
			out_text(o, " <");
			out_text(o, href);
			out_text(o, ">");
		}
	}
	xmlFree(prop);
}

static void
html_element(html_out *o, xmlNode *n, int depth)
{
	const char *name = (const char *)n->name;
	size_t start = o->out->len;
	int brk = 0;

	if (name_in(name, html_skip))
		return;
	if (g_ascii_strcasecmp(name, "br") == 0) {
		out_break(o, MIN(o->newlines + 1, 2));
		return;
	}
	if (g_ascii_strcasecmp(name, "img") == 0) {
		xmlChar *alt = xmlGetProp(n, (const xmlChar *)"alt");

		out_text(o, (const char *)alt);
		xmlFree(alt);
		return;
	}
	if (name_in(name, html_para))
		brk = 2;
	else if (name_in(name, html_block))
		brk = 1;
	else if (g_ascii_strcasecmp(name, "blockquote") == 0)
		brk = 2;
	else if (g_ascii_strcasecmp(name, "td") == 0 || g_ascii_strcasecmp(name, "th") == 0)
		o->space = o->out->len > 0;
	out_break(o, brk);
	if (g_ascii_strcasecmp(name, "li") == 0)
		out_text(o, "- ");
	if (g_ascii_strcasecmp(name, "blockquote") == 0)
		o->quote++;
	if (g_ascii_strcasecmp(name, "pre") == 0)
		o->pre++;
	html_walk(o, n->children, depth + 1);
	if (g_ascii_strcasecmp(name, "pre") == 0)
		o->pre--;
	if (g_ascii_strcasecmp(name, "blockquote") == 0)
		o->quote--;
	if (g_ascii_strcasecmp(name, "a") == 0)
		html_link(o, n, start);
	out_break(o, brk);
}

static void
html_walk(html_out *o, xmlNode *n, int depth)
{
	if (depth > HTML_MAX_DEPTH)
		return;
	for (; n != NULL && o->out->len < o->max; n = n->next) {
		if (n->type == XML_ELEMENT_NODE && n->name != NULL)
			html_element(o, n, depth);
		else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
			out_text(o, (const char *)n->content);
	}
}

char *
text_from_html(const char *html, size_t len, size_t max)
{
	static gsize once;
	html_out o = { 0 };
	htmlDocPtr doc;
	char *res;

	if (g_once_init_enter(&once)) {
		xmlInitParser();
		g_once_init_leave(&once, 1);
	}
	if (html == NULL || len == 0)
		return g_strdup("");
	len = MIN(len, (size_t)G_MAXINT);
	doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
	    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
	    HTML_PARSE_NONET);
	if (doc == NULL)
		return g_strdup("");
	o.out = g_string_new(NULL);
	o.max = max;
	o.bol = TRUE;
	html_walk(&o, xmlDocGetRootElement(doc), 0);
	xmlFreeDoc(doc);
	res = text_make_utf8(o.out->str, o.out->len, NULL);
	g_string_free(o.out, TRUE);
	text_truncate_utf8(res, max);
	return res;
}
