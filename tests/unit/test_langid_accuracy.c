/*
 * test_langid_accuracy.c - accuracy of curate_langid_detect() on the UDHR
 * translations in ../shared (23 languages), per language and overall.
 *
 * // ctest-label: full
 *
 * The labelled set: each $CURATE_SHARED/data/multilingual/udhr2/<code>.txt
 * is cut into paragraphs (lines with ASCII spaces, tabs and CRs trimmed,
 * blank lines skipped, consecutive lines joined with "\n" until the unit
 * holds at least 100 characters, i.e. code points; a shorter remainder at
 * the end is dropped) and every paragraph is labelled with the ISO 639-1
 * code of the file's language.  The test asserts at least 95% overall on
 * these paragraphs (the bar) and that the dominant script is the
 * file's script for every paragraph; it prints a per-language table (the
 * one in docs/lang.md) and, for information, how single short lines fare
 * with and without the short-text threshold.
 *
 * Skips (exit 77) when $CURATE_SHARED or the files are absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "curate/buf.h"
#include "curate/langid.h"

static const struct {
    const char *file, *lang, *script, *name;
} kSet[] = {
    {"arb", "ar", "Arab", "Arabic"},       {"ben", "bn", "Beng", "Bengali"},
    {"cmn_hans", "zh", "Hani", "Chinese (simplified)"},
    {"cmn_hant", "zh", "Hani", "Chinese (traditional)"},
    {"deu", "de", "Latn", "German"},       {"eng", "en", "Latn", "English"},
    {"fra", "fr", "Latn", "French"},       {"heb", "he", "Hebr", "Hebrew"},
    {"hin", "hi", "Deva", "Hindi"},        {"ind", "id", "Latn", "Indonesian"},
    {"ita", "it", "Latn", "Italian"},      {"jpn", "ja", "Jpan", "Japanese"},
    {"kor", "ko", "Hang", "Korean"},       {"nld", "nl", "Latn", "Dutch"},
    {"pol", "pl", "Latn", "Polish"},       {"por_BR", "pt", "Latn", "Portuguese (Brazil)"},
    {"rus", "ru", "Cyrl", "Russian"},      {"spa", "es", "Latn", "Spanish"},
    {"swh", "sw", "Latn", "Swahili"},      {"tha", "th", "Thai", "Thai"},
    {"tur", "tr", "Latn", "Turkish"},      {"ukr", "uk", "Cyrl", "Ukrainian"},
    {"vie", "vi", "Latn", "Vietnamese"},
};
#define N_SET (sizeof kSet / sizeof kSet[0])

static char g_dir[1024];

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Read a whole file into b (reset first). */
static int read_file(const char *path, curate_buf *b)
{
    curate_buf_reset(b);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(curate_buf_append(b, chunk, got), CURATE_OK);
    fclose(f);
    return 0;
}

/* Call fn on each trimmed non-blank line of text. */
typedef void (*line_fn)(const char *s, size_t n, void *ctx);
static void each_line(const char *text, size_t len, line_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        size_t a = i, z = e;
        while (a < z && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        while (z > a && (text[z - 1] == ' ' || text[z - 1] == '\t' || text[z - 1] == '\r'))
            z--;
        if (z > a)
            fn(text + a, z - a, ctx);
        i = e + 1;
    }
}

typedef struct {
    curate_langid *id;
    const char *want_lang, *want_script;
    curate_buf unit;
    size_t n, ok, und, script_ok;
    char confused[8][8]; /* wrong answers seen, with counts */
    size_t confused_n[8];
    size_t n_confused;
} para_ctx;

static void judge(para_ctx *c, const char *s, size_t n)
{
    curate_langid_result r;
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_langid_detect(c->id, s, n, &r, &err), CURATE_OK);
    c->n++;
    c->script_ok += strcmp(r.script.script, c->want_script) == 0;
    if (strcmp(r.lang, c->want_lang) == 0) {
        c->ok++;
        return;
    }
    if (strcmp(r.lang, "und") == 0)
        c->und++;
    size_t k = 0;
    while (k < c->n_confused && strcmp(c->confused[k], r.lang) != 0)
        k++;
    if (k == c->n_confused && k < 8) {
        snprintf(c->confused[k], sizeof c->confused[k], "%s", r.lang);
        c->confused_n[k] = 0;
        c->n_confused++;
    }
    if (k < 8)
        c->confused_n[k]++;
}

static void para_line(const char *s, size_t n, void *ctx)
{
    para_ctx *c = ctx;
    if (c->unit.len)
        assert_int_equal(curate_buf_append_char(&c->unit, '\n'), CURATE_OK);
    assert_int_equal(curate_buf_append(&c->unit, s, n), CURATE_OK);
    if (utf8_chars(c->unit.data, c->unit.len) >= 100) {
        judge(c, c->unit.data, c->unit.len);
        curate_buf_reset(&c->unit);
    }
}

static void test_paragraphs(void **state)
{
    (void)state;
    curate_langid *id = curate_langid_init(NULL, NULL);
    assert_non_null(id);
    curate_buf text;
    curate_buf_init(&text);
    size_t n = 0, ok = 0, script_ok = 0;
    printf("| language | file | paragraphs | correct | accuracy | wrong answers |\n");
    printf("|---|---|---:|---:|---:|---|\n");
    for (size_t f = 0; f < N_SET; f++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.txt", g_dir, kSet[f].file);
        assert_int_equal(read_file(path, &text), 0);
        para_ctx c;
        memset(&c, 0, sizeof c);
        c.id = id;
        c.want_lang = kSet[f].lang;
        c.want_script = kSet[f].script;
        curate_buf_init(&c.unit);
        each_line(text.data, text.len, para_line, &c);
        curate_buf_release(&c.unit);
        assert_true(c.n >= 10); /* the cut is not degenerate */
        char wrong[160] = "";
        size_t w = 0;
        for (size_t k = 0; k < c.n_confused; k++) {
            int m = snprintf(wrong + w, sizeof wrong - w, "%s%s %zu", k ? ", " : "",
                             c.confused[k], c.confused_n[k]);
            if (m > 0 && (size_t)m < sizeof wrong - w)
                w += (size_t)m;
        }
        printf("| %s (%s) | %s.txt | %zu | %zu | %.1f%% | %s |\n", kSet[f].name, kSet[f].lang,
               kSet[f].file, c.n, c.ok, 100.0 * (double)c.ok / (double)c.n, w ? wrong : "-");
        n += c.n;
        ok += c.ok;
        script_ok += c.script_ok;
        /* Scripts come from code points: every paragraph must be right. */
        if (c.script_ok != c.n)
            print_error("%s: script %s on only %zu of %zu paragraphs\n", kSet[f].file,
                        kSet[f].script, c.script_ok, c.n);
        assert_int_equal(c.script_ok, c.n);
    }
    printf("| **all** | 23 files | %zu | %zu | **%.2f%%** | |\n", n, ok,
           100.0 * (double)ok / (double)n);
    curate_buf_release(&text);
    curate_langid_free(id);
    assert_int_equal(script_ok, n);
    assert_true(ok * 100 >= n * 95);
}

/* ---- short single lines (information, plus weak sanity bounds) ---------- */

typedef struct {
    curate_langid *id;
    const char *want;
    size_t lo, hi; /* character range of the lines judged */
    size_t n, ok, und, wrong;
} line_ctx;

static void short_line(const char *s, size_t n, void *ctx)
{
    line_ctx *c = ctx;
    size_t chars = utf8_chars(s, n);
    if (chars < c->lo || chars >= c->hi)
        return;
    curate_langid_result r;
    assert_int_equal(curate_langid_detect(c->id, s, n, &r, NULL), CURATE_OK);
    c->n++;
    if (strcmp(r.lang, c->want) == 0)
        c->ok++;
    else if (strcmp(r.lang, "und") == 0)
        c->und++;
    else
        c->wrong++;
}

static void test_short_lines(void **state)
{
    (void)state;
    static const size_t bounds[][2] = {{1, 10}, {10, 20}, {20, 30}, {30, 50}, {50, 100}};
    curate_buf text;
    curate_buf_init(&text);
    printf("\n| line length (chars) | min letters | lines | correct | und | wrong | precision |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (int pass = 0; pass < 2; pass++) {
        curate_langid_opts o;
        curate_langid_opts_default(&o);
        if (pass == 1)
            o.min_letters = 0;
        curate_langid *id = curate_langid_init(&o, NULL);
        assert_non_null(id);
        for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
            line_ctx c;
            memset(&c, 0, sizeof c);
            c.id = id;
            c.lo = bounds[b][0];
            c.hi = bounds[b][1];
            for (size_t f = 0; f < N_SET; f++) {
                char path[1200];
                snprintf(path, sizeof path, "%s/%s.txt", g_dir, kSet[f].file);
                assert_int_equal(read_file(path, &text), 0);
                c.want = kSet[f].lang;
                each_line(text.data, text.len, short_line, &c);
            }
            size_t decided = c.ok + c.wrong;
            char prec[16] = "-";
            if (decided)
                snprintf(prec, sizeof prec, "%.1f%%", 100.0 * (double)c.ok / (double)decided);
            printf("| %zu-%zu | %zu | %zu | %zu | %zu | %zu | %s |\n", c.lo, c.hi - 1,
                   o.min_letters, c.n, c.ok, c.und, c.wrong, prec);
            /* Lines of 50-99 characters are full sentences: CLD2 should
             * still get the vast majority right. */
            if (c.lo == 50)
                assert_true(c.ok * 100 >= c.n * 90);
            /* Under 10 characters nothing passes the default threshold. */
            if (c.hi == 10 && pass == 0)
                assert_int_equal(c.ok + c.wrong, 0);
        }
        curate_langid_free(id);
    }
    curate_buf_release(&text);
}

int main(void)
{
    const char *shared = getenv("CURATE_SHARED");
    struct stat st;
    if (!shared || !*shared) {
        printf("SKIP: CURATE_SHARED is not set (the UDHR texts live in ../shared)\n");
        return 77;
    }
    snprintf(g_dir, sizeof g_dir, "%s/data/multilingual/udhr2", shared);
    if (stat(g_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("SKIP: %s is absent\n", g_dir);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paragraphs),
        cmocka_unit_test(test_short_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
