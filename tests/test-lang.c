/*
 * test-lang.c - language tags, Content-Language, the English/French
 * guess (tables of mail a member might write, including mail that
 * must stay undecided), and the order lang_for_mail decides in.
 */
#include <string.h>

#include "cg.h"
#include "config.h"
#include "lang.h"
#include "mail.h"

gboolean lang_lists_sorted(void);	/* src/lang.c, for this test */

static const struct {
	const char *tag;
	const char *want;	/* NULL: not a language casegate writes */
} norm_rows[] = {
	{ "fr", "fr" }, { "FR", "fr" }, { " fr ", "fr" }, { "fr-CA", "fr" },
	{ "fr_FR.UTF-8", "fr" }, { "French", "fr" }, { "français", "fr" },
	{ "FRANÇAIS", "fr" }, { "francais", "fr" }, { "fra", "fr" },
	{ "en", "en" }, { "en-GB", "en" }, { "EN_us", "en" }, { "English", "en" },
	{ "anglais", "en" },
	{ "de", NULL }, { "deutsch", NULL }, { "", NULL }, { "   ", NULL }, { NULL, NULL },
	{ "-fr", NULL }, { "f r", NULL }, { "\xff\xfe", NULL }, { "frx", NULL },
	{ "fr\nen", NULL }, { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL },
};

static void
test_normalise(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(norm_rows); i++) {
		const char *got = lang_normalise(norm_rows[i].tag);

		if (g_strcmp0(got, norm_rows[i].want) != 0)
			g_error("lang_normalise(\"%s\") = %s, want %s",
			    norm_rows[i].tag ? norm_rows[i].tag : "(null)", got ? got : "NULL",
			    norm_rows[i].want ? norm_rows[i].want : "NULL");
	}
}

static const struct {
	const char *value;
	const char *want;
} header_rows[] = {
	{ "fr", "fr" }, { "fr-FR", "fr" }, { "de, fr-CA", "fr" }, { "en, fr", "en" },
	{ " , en", "en" }, { "de", NULL }, { "", NULL }, { NULL, NULL },
	{ "fr<script>", NULL }, { "x-klingon, de-CH", NULL }, { "fr ;q=1", NULL },
	{ ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,fr", NULL },	/* only the first 16 tags are read */
};

static void
test_header(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(header_rows); i++) {
		const char *got = lang_from_header(header_rows[i].value);

		if (g_strcmp0(got, header_rows[i].want) != 0)
			g_error("lang_from_header(\"%s\") = %s, want %s",
			    header_rows[i].value ? header_rows[i].value : "(null)",
			    got ? got : "NULL", header_rows[i].want ? header_rows[i].want : "NULL");
	}
}

static const struct {
	const char *subject;
	const char *text;
	const char *want;	/* NULL: undecided */
} detect_rows[] = {
	{ "Droits d'auteur manquants",
	  "Bonjour,\n\nje n'ai pas reçu mes droits pour la chanson « Rivière ».\n"
	  "Pouvez-vous vérifier ?\n\nCordialement,\nÉlodie", "fr" },
	{ "Missing royalties", "Hello,\n\nI have not been paid for my song Blue River.\n"
	  "Could you please check?\n\nRegards,\nAlice", "en" },
	/* French without a single accent */
	{ "question", "je voudrais savoir si vous avez recu mon dossier", "fr" },
	/* accents alone: a French name in English mail does not tip it */
	{ "Concert at Café Rouge", "Hello, I played at the Café Rouge in Montréal and "
	  "was not paid for it.", "en" },
	/* the accent hint decides short French mail */
	{ "Déclaration", "Œuvre déposée à la société", "fr" },
	/* quoted lines are someone else's words */
	{ "Re: question", "Thanks, it is fine now.\n\n> Bonjour, je voudrais savoir\n"
	  "> pour mes droits, merci de votre aide\n", "en" },
	{ "Re: question", "Merci, c'est bon pour moi.\n\n> Hello, I would like to know\n"
	  "> what is the status of my case, thank you\n", "fr" },
	/* contractions leave s, m, d behind: not French */
	{ "", "It's what I'm told, I'd say", "en" },
	/* too little to tell */
	{ "Bonjour", "", NULL },
	{ "Hello", "", NULL },
	{ "", "", NULL },
	{ NULL, NULL, NULL },
	{ "12345", "0612345678 https://example.org/x?y=z", NULL },
	/* balanced: undecided, not a coin toss */
	{ "", "the le and et", NULL },
	{ "", "the the le le le", NULL },	/* 3 against 2 is no clear lead */
	/* words both languages use count for neither */
	{ "", "a on me plus son", NULL },
	/* invalid UTF-8 in the text does not stop the count */
	{ "", "je \xff vous \xc3 pour", "fr" },
	/* a very long "word" is skipped, not truncated into a function word */
	{ "", "leeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee theeeeeeeeeeeeeeeeeeeeeeeeeee", NULL },
};

static void
test_detect(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(detect_rows); i++) {
		lang_score sc;
		const char *got = lang_detect(detect_rows[i].subject, detect_rows[i].text, &sc);

		if (g_strcmp0(got, detect_rows[i].want) != 0)
			g_error("row %zu (%s): lang_detect = %s (fr %d, en %d), want %s", i,
			    detect_rows[i].subject ? detect_rows[i].subject : "(null)",
			    got ? got : "NULL", sc.fr, sc.en,
			    detect_rows[i].want ? detect_rows[i].want : "NULL");
	}
}

/* Only the first 8 KiB are read; a cut inside a character is harmless. */
static void
test_detect_budget(void)
{
	GString *s = g_string_new(NULL);
	lang_score sc;
	size_t i;

	for (i = 0; i < 4095; i++)
		g_string_append(s, "x ");
	g_string_append(s, "é je vous pour avec les des");	/* "é" straddles byte 8192 */
	g_assert_null(lang_detect(NULL, s->str, &sc));
	g_assert_cmpint(sc.fr, <=, 1);
	g_assert_cmpint(sc.en, ==, 0);
	/* the subject counts against the same budget */
	g_assert_cmpstr(lang_detect("je vous", "pour les", NULL), ==, "fr");
	g_string_free(s, TRUE);
}

static void
test_lists_sorted(void)
{
	g_assert_true(lang_lists_sorted());
}

static mail_msg *
msg(const char *headers, const char *body)
{
	g_autofree char *raw = g_strdup_printf("From: M <m@example.test>\nTo: members@example.test\n"
	    "%sMessage-ID: <x@example.test>\n\n%s\n", headers, body);
	GError *e = NULL;
	mail_msg *m = mail_parse_data(raw, strlen(raw), NULL, &e);

	g_assert_no_error(e);
	return m;
}

static void
test_for_mail(void)
{
	config cfg = { 0 };
	g_autoptr(mail_msg) french = msg("Subject: Droits\n", "Bonjour, je n'ai pas reçu mes "
	    "droits pour la chanson.");
	g_autoptr(mail_msg) english = msg("Subject: Royalties\n", "Hello, I have not been paid "
	    "for my song.");
	g_autoptr(mail_msg) tagged = msg("Subject: Royalties\nContent-Language: fr-CA\n",
	    "Hello, I have not been paid for my song.");
	g_autoptr(mail_msg) unclear = msg("Subject: 4711\n", "4711");
	const char *why;

	/* nothing configured (tests build configs by hand): English */
	g_assert_cmpstr(lang_default(&cfg), ==, "en");
	g_assert_cmpstr(lang_default(NULL), ==, "en");
	/* the directory beats everything */
	g_assert_cmpstr(lang_for_mail(&cfg, "fr", english, &why), ==, "fr");
	g_assert_cmpstr(why, ==, "member directory");
	g_assert_cmpstr(lang_for_mail(&cfg, "English", tagged, &why), ==, "en");
	/* an unusable directory language is ignored */
	g_assert_cmpstr(lang_for_mail(&cfg, "de", french, &why), ==, "fr");
	g_assert_cmpstr(why, ==, "detected");
	/* Content-Language beats the words */
	g_assert_cmpstr(lang_for_mail(&cfg, NULL, tagged, &why), ==, "fr");
	g_assert_cmpstr(why, ==, "Content-Language");
	g_assert_cmpstr(lang_for_mail(&cfg, NULL, english, &why), ==, "en");
	g_assert_cmpstr(why, ==, "detected");
	/* undecided: the configured default */
	g_assert_cmpstr(lang_for_mail(&cfg, NULL, unclear, &why), ==, "en");
	g_assert_cmpstr(why, ==, "default");
	cfg.language = "fr";
	g_assert_cmpstr(lang_for_mail(&cfg, NULL, unclear, &why), ==, "fr");
	g_assert_cmpstr(why, ==, "default");
	g_assert_cmpstr(lang_for_mail(&cfg, NULL, NULL, NULL), ==, "fr");
}

static void
test_status_label(void)
{
	g_assert_cmpstr(lang_status_label("fr", "Active"), ==, "En cours");
	g_assert_cmpstr(lang_status_label("fr", "Resolved"), ==, "Résolu");
	g_assert_cmpstr(lang_status_label("en", "Resolved"), ==, "Resolved");
	g_assert_cmpstr(lang_status_label(NULL, "Active"), ==, "Active");
	g_assert_cmpstr(lang_status_label("fr", "Other"), ==, "Other");
	g_assert_cmpstr(lang_status_label("fr", NULL), ==, "");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/lang/normalise", test_normalise);
	g_test_add_func("/lang/content-language", test_header);
	g_test_add_func("/lang/detect", test_detect);
	g_test_add_func("/lang/detect-budget", test_detect_budget);
	g_test_add_func("/lang/lists-sorted", test_lists_sorted);
	g_test_add_func("/lang/for-mail", test_for_mail);
	g_test_add_func("/lang/status-label", test_status_label);
	return g_test_run();
}
