/*
 * test-fuzz.c - the fuzz targets' entry points, replayed
 * deterministically inside make check: every message of tests/corpus
 * through fuzz-mime, fuzz-dsn and fuzz-thread, every rules file of
 * tests/rules and rules/ through fuzz-rules, every crasher kept in
 * tests/fuzz/<target>/ through its target, plus a few thousand
 * seeded-random mutations of corpus messages.  Under make check-san
 * this is the sanitizer run of the corpus.
 */
#define FUZZ_REPLAY 1
#include "fuzz-mime.c"
#include "fuzz-dsn.c"
#include "fuzz-thread.c"
#include "fuzz-rules.c"

#include <stdlib.h>

#define MUTATIONS	2000

/*
 * libconfig 1.5 leaks the buffer of a string after a syntax error and
 * a string that follows a setting name without "=" (found by make fuzz;
 * tests/fuzz/rules/libconfig-leak-*): not ours to fix, so LeakSanitizer
 * is told (it calls this hook when the test runs under check-san;
 * otherwise it is unused).  tests/fuzz/lsan.supp says the same for
 * make fuzz.
 */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static const char *
top(void)
{
	return g_getenv("CG_TOP") ? g_getenv("CG_TOP") : ".";
}

static void
walk(const char *dir, GPtrArray *out)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	if (d == NULL)
		return;
	while ((name = g_dir_read_name(d)) != NULL) {
		char *path = g_build_filename(dir, name, NULL);

		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			walk(path, out);
			g_free(path);
		} else if (strcmp(name, "SOURCE.md") == 0 || strcmp(name, "README") == 0)
			g_free(path);
		else
			g_ptr_array_add(out, path);
	}
	g_dir_close(d);
}

static gint
cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files under top/rel, sorted so every run replays the same order. */
static GPtrArray *
files_under(const char *rel)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *dir = g_build_filename(top(), rel, NULL);

	walk(dir, out);
	g_ptr_array_sort(out, cmp_str);
	return out;
}

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static guint
replay(GPtrArray *files, fuzz_fn fn)
{
	guint i;

	for (i = 0; i < files->len; i++) {
		g_autofree char *data = NULL;
		gsize len;

		g_assert_true(g_file_get_contents(g_ptr_array_index(files, i), &data, &len,
		    NULL));
		fn((const uint8_t *)data, len);
	}
	return files->len;
}

static void
test_corpus_mime(void)
{
	g_autoptr(GPtrArray) f = files_under("tests/corpus");
	g_autoptr(GPtrArray) c = files_under("tests/fuzz/mime");

	g_assert_cmpuint(replay(f, fuzz_mime_one), >=, 800);
	replay(c, fuzz_mime_one);
}

static void
test_corpus_dsn(void)
{
	g_autoptr(GPtrArray) f = files_under("tests/corpus");
	g_autoptr(GPtrArray) c = files_under("tests/fuzz/dsn");

	g_assert_cmpuint(replay(f, fuzz_dsn_one), >=, 800);
	replay(c, fuzz_dsn_one);
}

static void
test_thread(void)
{
	static const char *const subjects[] = {
		"Re: AW: Fwd: [CASE-000123] Missing royalties", "[case-000001]", "[CASE-]",
		"[CASE-99999999999999999999999]", "Re: Re: Re: Re: Re: Re: Re: Re: Re:",
		"<CASE-000001.00112233445566778899aabbccddeeff@example.org>",
		"<a> <b> <<<<>>>> <c@d> \t <e@f", "=?utf-8?q?=5BCASE-000007=5D?=", "",
	};
	g_autoptr(GPtrArray) c = files_under("tests/fuzz/thread");
	guint i;

	for (i = 0; i < G_N_ELEMENTS(subjects); i++)
		fuzz_thread_one((const uint8_t *)subjects[i], strlen(subjects[i]));
	replay(c, fuzz_thread_one);
}

static void
test_rules(void)
{
	g_autoptr(GPtrArray) f = files_under("tests/rules");
	g_autoptr(GPtrArray) d = files_under("rules");
	g_autoptr(GPtrArray) c = files_under("tests/fuzz/rules");

	g_assert_cmpuint(replay(f, fuzz_rules_one) + replay(d, fuzz_rules_one), >=, 10);
	replay(c, fuzz_rules_one);
}

/*
 * Seeded mutations of corpus messages (byte flips, cuts, duplicated
 * runs, injected CR/LF/NUL and boundaries): the same inputs every run.
 */
static void
test_mutations(void)
{
	static const char *const inserts[] = {
		"\r", "\n", "\0", "\r\n\r\n", "--", "=?", "?=", "Content-Type: multipart/mixed; "
		"boundary=\"\"\n", "Content-Type: message/rfc822\n\n", "\xff\xfe", "begin 644 x\n",
	};
	g_autoptr(GPtrArray) f = files_under("tests/corpus/sisimai-set-of-emails/bsd");
	GRand *rand = g_rand_new_with_seed(20261129);
	guint i;

	g_assert_cmpuint(f->len, >, 0);
	for (i = 0; i < MUTATIONS; i++) {
		g_autofree char *data = NULL;
		GString *s;
		gsize len;
		guint k, n;

		g_assert_true(g_file_get_contents(g_ptr_array_index(f, g_rand_int_range(rand, 0,
		    f->len)), &data, &len, NULL));
		s = g_string_new_len(data, len);
		n = g_rand_int_range(rand, 1, 8);
		for (k = 0; k < n && s->len > 0; k++) {
			gsize at = g_rand_int_range(rand, 0, s->len);
			const char *ins = inserts[g_rand_int_range(rand, 0, G_N_ELEMENTS(inserts))];

			switch (g_rand_int_range(rand, 0, 4)) {
			case 0:
				s->str[at] ^= 1 << g_rand_int_range(rand, 0, 8);
				break;
			case 1:
				g_string_truncate(s, at);
				break;
			case 2:
				g_string_insert_len(s, at, ins, strcmp(ins, "") == 0 ? 1 :
				    (gssize)strlen(ins));
				break;
			default:
				g_string_insert_len(s, at, s->str + at / 2, MIN(s->len - at, 512));
				break;
			}
		}
		fuzz_mime_one((const uint8_t *)s->str, s->len);
		fuzz_dsn_one((const uint8_t *)s->str, s->len);
		g_string_free(s, TRUE);
	}
	g_rand_free(rand);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	cg_mime_init();
	g_test_add_func("/fuzz/replay-mime", test_corpus_mime);
	g_test_add_func("/fuzz/replay-dsn", test_corpus_dsn);
	g_test_add_func("/fuzz/replay-thread", test_thread);
	g_test_add_func("/fuzz/replay-rules", test_rules);
	g_test_add_func("/fuzz/mutations", test_mutations);
	return g_test_run();
}
