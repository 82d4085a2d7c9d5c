/*
 * text.h - turning whatever bytes a message carries into clean UTF-8:
 * charset conversion with a fallback, RFC 2047 header decoding (with the
 * workaround for GMime bug #133), header value cleaning, HTML to text.
 *
 * Every function here returns newly allocated, valid UTF-8 without NUL
 * bytes, whatever the input; none of them fails.  Charset names are
 * looked up in GMime's tables: cg_mime_init() must have run.
 */
#ifndef CG_TEXT_H
#define CG_TEXT_H

#include <glib.h>

/*
 * s (len bytes, or up to NUL when len < 0) as valid UTF-8: valid
 * sequences are kept, every other byte is read as windows-1252, NUL bytes
 * are dropped.  *fallback_r (may be NULL) is set when a byte needed the
 * fallback.
 */
char *text_make_utf8(const char *s, gssize len, gboolean *fallback_r);

/*
 * in (len bytes) in charset converted to UTF-8.  NULL or empty charset,
 * and utf-8/us-ascii, mean "UTF-8 if valid, else windows-1252"; an
 * unknown charset gets the same fallback.  Invalid sequences in a known
 * charset become U+FFFD.  When something was lost or guessed, *problem_r
 * (may be NULL) gets a human-readable note (caller frees), else NULL.
 */
char *text_to_utf8(const char *in, size_t len, const char *charset, char **problem_r);

/*
 * A header value fit for one line: valid UTF-8, CR/LF/NUL and other
 * control characters removed (tab becomes a space), runs of spaces
 * collapsed, leading and trailing spaces trimmed.
 */
char *text_header_clean(const char *s);

/*
 * Decode a raw (possibly folded, possibly 8-bit) header value: unfold,
 * decode RFC 2047 encoded-words one by one (each base64 word on its own,
 * which is what GMime 3.2.13 gets wrong, bug #133), join adjacent words
 * of one charset before converting so characters split across words
 * survive, then text_header_clean().  *problem_r as for text_to_utf8().
 */
char *text_decode_header(const char *raw, char **problem_r);

/*
 * raw with every run of two or more adjacent encoded-words rewritten as
 * one UTF-8 base64 encoded-word.  For values GMime must parse itself
 * (address lists, Content-Disposition parameters): its decoder handles a
 * single word correctly but truncates runs (bug #133).
 */
char *text_merge_encoded_words(const char *raw);

/*
 * Plain text from HTML (UTF-8, len bytes) using libxml2's forgiving HTML
 * parser: scripts and styles dropped, block elements and <br> become line
 * breaks, <blockquote> lines get "> ", links keep their target.  At most
 * max bytes of output (cut on a character boundary).
 */
char *text_from_html(const char *html, size_t len, size_t max);

/*
 * The new text of a reply (UTF-8, as mail.c or text_from_html gives
 * it): cut at the first quote header ("On ... wrote:" in many
 * languages, "-----Original Message-----", an Outlook "From: / Sent:"
 * block), without '>' lines, without the signature ("-- ", mobile
 * footers); text written below a quote is kept.  Trimmed; never NULL
 * (src/text_reply.c).
 */
char *text_reply_visible(const char *text);

/* Cut s in place to at most max bytes on a UTF-8 character boundary. */
void text_truncate_utf8(char *s, size_t max);

#endif
