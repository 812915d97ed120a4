/*
 * test_quality.c - Gopher-style quality signals and filters.
 *
 * Two kinds of checks: every signal against a naive reference written
 * here from the definitions in curate/quality.h (quadratic, obviously
 * right) on random texts, and every filter firing on a text made to
 * violate it while a normal paragraph passes them all.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/buf.h"
#include "curate/quality.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- naive reference ----------------------------------------------------
 * Texts: ASCII plus "\xC3\xA9" (é, a letter) and "\xE2\x80\xA6" (…, an
 * ellipsis); whitespace ' ', '\t' (spaces) and '\n' (line break). */

static int is_sp(char c)
{
    return c == ' ' || c == '\t';
}

static double utf8_chars(const char *s, size_t n)
{
    double c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

typedef struct ref_sig {
    double chars, words, lines;
    double mean_word_length, symbol_ratio, ellipsis_lines, alpha_words;
    double dup_lines, dup_line_chars, top[3];
} ref_sig;

#define MAXW 512

static void reference(const char *s, ref_sig *r)
{
    memset(r, 0, sizeof *r);
    size_t n = strlen(s);
    r->chars = utf8_chars(s, n);
    /* words */
    const char *w[MAXW];
    size_t wl[MAXW], nw = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && (is_sp(s[i]) || s[i] == '\n'))
            i++;
        if (i >= n)
            break;
        size_t j = i;
        while (j < n && !is_sp(s[j]) && s[j] != '\n')
            j++;
        assert_true(nw < MAXW);
        w[nw] = s + i;
        wl[nw++] = j - i;
        i = j;
    }
    r->words = (double)nw;
    double alnum = 0, alnum_chars = 0, alpha = 0, hashes = 0, ell = 0;
    for (size_t k = 0; k < nw; k++) {
        int has_alpha = 0, has_alnum = 0;
        for (size_t c = 0; c < wl[k]; c++) {
            char ch = w[k][c];
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '\xC3')
                has_alpha = has_alnum = 1;
            if (ch >= '0' && ch <= '9')
                has_alnum = 1;
        }
        alpha += has_alpha;
        if (has_alnum) {
            alnum++;
            alnum_chars += utf8_chars(w[k], wl[k]);
        }
    }
    for (size_t i = 0; i < n; i++)
        hashes += s[i] == '#';
    for (size_t i = 0; i < n;) { /* non-overlapping "...", like str.count */
        if (i + 3 <= n && (memcmp(s + i, "...", 3) == 0 || memcmp(s + i, "\xE2\x80\xA6", 3) == 0)) {
            ell++;
            i += 3;
        } else {
            i++;
        }
    }
    if (alnum)
        r->mean_word_length = alnum_chars / alnum;
    if (nw) {
        r->alpha_words = alpha / (double)nw;
        double hr = hashes / (double)nw, er = ell / (double)nw;
        r->symbol_ratio = hr > er ? hr : er;
    }
    /* lines */
    const char *ln[MAXW * 2];
    size_t ll[MAXW * 2], nl = 0;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && s[j] != '\n')
            j++;
        size_t a = i, b = j;
        while (a < b && is_sp(s[a]))
            a++;
        while (b > a && is_sp(s[b - 1]))
            b--;
        if (b > a) {
            ln[nl] = s + a;
            ll[nl++] = b - a;
        }
        i = j + 1;
    }
    r->lines = (double)nl;
    double ell_lines = 0, dup = 0, dup_chars = 0;
    for (size_t k = 0; k < nl; k++) {
        if (ll[k] >= 3 && (memcmp(ln[k] + ll[k] - 3, "...", 3) == 0 ||
                           memcmp(ln[k] + ll[k] - 3, "\xE2\x80\xA6", 3) == 0))
            ell_lines++;
        for (size_t m = 0; m < k; m++) {
            if (ll[m] == ll[k] && memcmp(ln[m], ln[k], ll[k]) == 0) {
                dup++;
                dup_chars += utf8_chars(ln[k], ll[k]);
                break;
            }
        }
    }
    if (nl) {
        r->ellipsis_lines = ell_lines / (double)nl;
        r->dup_lines = dup / (double)nl;
    }
    if (n)
        r->dup_line_chars = dup_chars / r->chars;
    /* n-grams: most occurrences, then longest */
    for (size_t g = 2; g <= 4; g++) {
        double best_count = 0, best_len = 0;
        for (size_t i = 0; i + g <= nw; i++) {
            double count = 0;
            for (size_t j = 0; j + g <= nw; j++) {
                int same = 1;
                for (size_t t = 0; t < g && same; t++)
                    same = wl[i + t] == wl[j + t] && memcmp(w[i + t], w[j + t], wl[i + t]) == 0;
                count += same;
            }
            double len = (double)(g - 1);
            for (size_t t = 0; t < g; t++)
                len += utf8_chars(w[i + t], wl[i + t]);
            if (count > best_count || (count == best_count && len > best_len)) {
                best_count = count;
                best_len = len;
            }
        }
        if (best_count >= 2) {
            double share = best_count * best_len / r->chars;
            r->top[g - 2] = share > 1 ? 1 : share;
        }
    }
}

static void test_signals_vs_reference(void **state)
{
    (void)state;
    static const char *vocab[] = {"the", "cat", "sat", "on", "mat", "...", "#tag", "42",
                                  "end.", "wait...", "x", "Hello", "world", "a#b", ".....",
                                  "caf\xC3\xA9", "so\xE2\x80\xA6", "..", "internationally",
                                  "a.b..c...d", "1.5"};
    static const char *seps[] = {" ", " ", " ", " ", "\n", "  ", "\n\n", " \n ", "\t", " "};
    curate_quality *q = curate_quality_new(NULL);
    assert_non_null(q);
    char text[8192];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0, words = (size_t)(rnd() % 80);
        /* A small vocabulary so that lines and n-grams repeat. */
        size_t vsize = 2 + (size_t)(rnd() % (sizeof vocab / sizeof vocab[0] - 1));
        if (rnd() % 4 == 0)
            len += (size_t)snprintf(text + len, sizeof text - len, " ");
        for (size_t k = 0; k < words; k++) {
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", vocab[rnd() % vsize],
                                    k + 1 < words ? seps[rnd() % 10] : "");
        }
        text[len] = 0;
        ref_sig ref;
        reference(text, &ref);
        curate_quality_signals sig;
        curate_quality_filter failed;
        assert_int_equal(curate_quality_eval(q, NULL, text, len, 0, &sig, &failed), CURATE_OK);
        assert_int_equal(failed, CURATE_QF_COUNT);
        assert_true(sig.have_lines && sig.have_ngrams);
        const double eps = 1e-12;
#define CHECK(field, want)                                                             \
        if (fabs((double)(field) - (want)) > eps)                                      \
            fail_msg("iteration %d: %s = %.15g, reference %.15g\ntext: [%s]", iter, #field, \
                     (double)(field), (want), text)
        CHECK(sig.chars, ref.chars);
        CHECK(sig.words, ref.words);
        CHECK(sig.lines, ref.lines);
        CHECK(sig.mean_word_length, ref.mean_word_length);
        CHECK(sig.symbol_ratio, ref.symbol_ratio);
        CHECK(sig.ellipsis_lines, ref.ellipsis_lines);
        CHECK(sig.alpha_words, ref.alpha_words);
        CHECK(sig.dup_lines, ref.dup_lines);
        CHECK(sig.dup_line_chars, ref.dup_line_chars);
        CHECK(sig.top_ngram[0], ref.top[0]);
        CHECK(sig.top_ngram[1], ref.top[1]);
        CHECK(sig.top_ngram[2], ref.top[2]);
#undef CHECK
    }
    curate_quality_free(q);
}

/* ---- crafted texts ---------------------------------------------------- */

/* A normal paragraph of 130 words: passes every default filter. */
static const char k_normal[] =
    "The river town grew slowly during the nineteenth century, when a railway line reached "
    "the valley and brought merchants, teachers and engineers from the coast. Most families "
    "still worked on small farms, but the new station changed the rhythm of daily life: "
    "markets moved to the square beside the tracks, and the old ferry crossing fell out of use.\n\n"
    "Historians who studied the parish records found that the population doubled within "
    "thirty years. Letters kept in the municipal archive describe crowded schools, a brief "
    "outbreak of cholera, and long arguments about whether the council should pave the main "
    "street. By 1900 the town had electric lighting, two newspapers and a modest library, "
    "funded largely by a retired shipbuilder who had grown up there and wanted children to "
    "read more than he ever could.";

static curate_quality_filter eval_default(const char *text, curate_quality_signals *sig)
{
    curate_quality *q = curate_quality_new(NULL);
    curate_quality_opts o;
    curate_quality_opts_default(&o);
    curate_quality_signals local;
    curate_quality_filter failed;
    assert_int_equal(curate_quality_eval(q, &o, text, strlen(text), 0, sig ? sig : &local, &failed),
                     CURATE_OK);
    curate_quality_free(q);
    return failed;
}

/* The normal paragraph plus filler: a fresh buffer the caller frees. */
static char *normal_plus(const char *extra, int times, const char *sep)
{
    curate_buf b;
    curate_buf_init(&b);
    curate_buf_append_str(&b, k_normal);
    for (int i = 0; i < times; i++) {
        curate_buf_append_str(&b, sep);
        curate_buf_append_str(&b, extra);
    }
    return b.data;
}

static void test_normal_passes(void **state)
{
    (void)state;
    curate_quality_signals sig;
    assert_int_equal(eval_default(k_normal, &sig), CURATE_QF_COUNT);
    assert_true(sig.words >= 120 && sig.words <= 140);
    assert_true(sig.mean_word_length > 4 && sig.mean_word_length < 7);
    assert_true(sig.alpha_words > 0.95);
    assert_int_equal(sig.lines, 2);
    assert_true(sig.have_ngrams);
}

static void test_each_filter_fires(void **state)
{
    (void)state;
    char *t;
    /* word_count: too few */
    assert_int_equal(eval_default("Only a handful of words here.", NULL), CURATE_QF_WORD_COUNT);
    /* mean_word_length: too short, then too long */
    {
        curate_buf b;
        curate_buf_init(&b);
        for (int i = 0; i < 80; i++)
            curate_buf_printf(&b, "%c%c ", 'a' + i % 26, 'a' + (i * 7) % 26);
        assert_int_equal(eval_default(b.data, NULL), CURATE_QF_MEAN_WORD_LENGTH);
        curate_buf_reset(&b);
        for (int i = 0; i < 80; i++)
            curate_buf_printf(&b, "internationalization%c%c ", 'a' + i % 26, 'a' + (i * 7) % 26);
        assert_int_equal(eval_default(b.data, NULL), CURATE_QF_MEAN_WORD_LENGTH);
        curate_buf_release(&b);
    }
    /* symbol_ratio: hashtags, then ellipses */
    t = normal_plus("#news #today", 10, " ");
    assert_int_equal(eval_default(t, NULL), CURATE_QF_SYMBOL_RATIO);
    free(t);
    t = normal_plus("and then\xE2\x80\xA6 well...", 8, " ");
    assert_int_equal(eval_default(t, NULL), CURATE_QF_SYMBOL_RATIO);
    free(t);
    /* ellipsis_lines: teaser lines ("Read more...") */
    {
        curate_buf b;
        curate_buf_init(&b);
        curate_buf_append_str(&b, k_normal);
        for (int i = 0; i < 3; i++)
            curate_buf_printf(&b, "\nStory number %d continues in the next issue of the paper...", i);
        assert_int_equal(eval_default(b.data, NULL), CURATE_QF_ELLIPSIS_LINES);
        curate_buf_release(&b);
    }
    /* alpha_words: tables of numbers */
    t = normal_plus("1990 2.5% 31,000 -4 17", 10, " ");
    assert_int_equal(eval_default(t, NULL), CURATE_QF_ALPHA_WORDS);
    free(t);
    /* dup_lines: the same short line many times */
    t = normal_plus("Share this page", 4, "\n");
    assert_int_equal(eval_default(t, NULL), CURATE_QF_DUP_LINES);
    free(t);
    /* dup_line_chars: one long line twice (few duplicate lines, many chars) */
    {
        const char *long_line =
            "Subscribe to our newsletter to receive weekly updates about new articles, "
            "upcoming events, special offers from partners and everything else going on";
        curate_buf b;
        curate_buf_init(&b);
        curate_buf_append_str(&b, k_normal);
        for (int i = 0; i < 5; i++)
            curate_buf_printf(&b, "\nDistinct line number %d", i);
        for (int i = 0; i < 3; i++)
            curate_buf_printf(&b, "\n%s", long_line);
        curate_quality_signals sig;
        assert_int_equal(eval_default(b.data, &sig), CURATE_QF_DUP_LINE_CHARS);
        assert_true(sig.dup_lines <= 0.3);
        curate_buf_release(&b);
    }
    /* top_2gram: a repeated pair inside one line */
    t = normal_plus("click here", 25, " ");
    assert_int_equal(eval_default(t, NULL), CURATE_QF_TOP_2GRAM);
    free(t);
}

/* n-gram filters one at a time: with the others off, each fires. */
static void test_ngram_filters(void **state)
{
    (void)state;
    char *t = normal_plus("alpha bravo charlie delta", 8, " ");
    curate_quality *q = curate_quality_new(NULL);
    curate_quality_signals sig;
    curate_quality_filter failed;
    for (int k = 0; k < 3; k++) {
        curate_quality_opts o;
        curate_quality_opts_default(&o);
        o.enabled = 1u << (CURATE_QF_TOP_2GRAM + k);
        /* A threshold just below the measured share must fire, one just
         * above must not. */
        assert_int_equal(curate_quality_eval(q, &o, t, strlen(t), 0, &sig, &failed), CURATE_OK);
        double share = sig.top_ngram[k];
        assert_true(share > 0.05);
        o.max_top_ngram[k] = share - 1e-9;
        assert_int_equal(curate_quality_eval(q, &o, t, strlen(t), 0, &sig, &failed), CURATE_OK);
        assert_int_equal(failed, CURATE_QF_TOP_2GRAM + k);
        o.max_top_ngram[k] = share + 1e-9;
        assert_int_equal(curate_quality_eval(q, &o, t, strlen(t), 0, &sig, &failed), CURATE_OK);
        assert_int_equal(failed, CURATE_QF_COUNT);
    }
    /* The repeated 4-gram covers more of the text than any 2-gram, so its
     * share is the largest of the three. */
    assert_true(sig.top_ngram[2] > sig.top_ngram[0]);
    curate_quality_free(q);
    free(t);
}

static void test_switches(void **state)
{
    (void)state;
    curate_quality *q = curate_quality_new(NULL);
    curate_quality_opts o;
    curate_quality_opts_default(&o);
    curate_quality_signals sig;
    curate_quality_filter failed;
    const char *shorty = "Only a handful of words here.";
    /* With word_count off the short text fails nothing else... */
    o.enabled &= ~(1u << CURATE_QF_WORD_COUNT);
    assert_int_equal(curate_quality_eval(q, &o, shorty, strlen(shorty), 0, &sig, &failed),
                     CURATE_OK);
    assert_int_equal(failed, CURATE_QF_COUNT);
    /* ...and with everything off nothing fails at all. */
    o.enabled = 0;
    const char *junk = "# # # # ... ... 1 2 3";
    assert_int_equal(curate_quality_eval(q, &o, junk, strlen(junk), 0, &sig, &failed), CURATE_OK);
    assert_int_equal(failed, CURATE_QF_COUNT);
    assert_false(sig.have_ngrams);
    assert_false(sig.have_lines);
    /* Early failure skips the n-gram tables unless all signals are asked. */
    curate_quality_opts_default(&o);
    assert_int_equal(curate_quality_eval(q, &o, shorty, strlen(shorty), 0, &sig, &failed),
                     CURATE_OK);
    assert_int_equal(failed, CURATE_QF_WORD_COUNT);
    assert_false(sig.have_ngrams);
    assert_int_equal(curate_quality_eval(q, &o, shorty, strlen(shorty), CURATE_QUALITY_ALL_SIGNALS,
                                         &sig, &failed),
                     CURATE_OK);
    assert_int_equal(failed, CURATE_QF_WORD_COUNT);
    assert_true(sig.have_ngrams && sig.have_lines);
    /* max_words 0 means no upper bound. */
    o.max_words = 0;
    o.min_words = 1;
    assert_int_equal(curate_quality_eval(q, &o, shorty, strlen(shorty), 0, &sig, &failed),
                     CURATE_OK);
    assert_int_not_equal(failed, CURATE_QF_WORD_COUNT);
    curate_quality_free(q);
}

static void test_opts_set(void **state)
{
    (void)state;
    curate_quality_opts o;
    curate_quality_opts_default(&o);
    curate_quality_filter f;
    o.enabled = 0;
    assert_int_equal(curate_quality_opts_set(&o, "max_symbol_ratio", 0.25, &f), CURATE_OK);
    assert_int_equal(f, CURATE_QF_SYMBOL_RATIO);
    assert_true(o.max_symbol_ratio == 0.25);
    assert_int_equal(o.enabled, 1u << CURATE_QF_SYMBOL_RATIO);
    assert_int_equal(curate_quality_opts_set(&o, "min_words", 10, &f), CURATE_OK);
    assert_int_equal(o.min_words, 10);
    assert_int_equal(curate_quality_opts_set(&o, "max_top_3gram", 0.5, &f), CURATE_OK);
    assert_true(o.max_top_ngram[1] == 0.5);
    assert_int_equal(f, CURATE_QF_TOP_3GRAM);
    assert_int_equal(curate_quality_opts_set(&o, "max_mean_word_length", 12.5, NULL), CURATE_OK);
    assert_true(o.max_mean_word_length == 12.5);
    assert_int_equal(curate_quality_opts_set(&o, "nope", 1, NULL), CURATE_ERR_INVALID);
    assert_int_equal(curate_quality_opts_set(&o, "max_dup_lines", 1.5, NULL), CURATE_ERR_RANGE);
    assert_int_equal(curate_quality_opts_set(&o, "min_words", 2.5, NULL), CURATE_ERR_RANGE);
    assert_int_equal(curate_quality_opts_set(&o, "min_words", -1, NULL), CURATE_ERR_RANGE);
    assert_int_equal(curate_quality_opts_set(&o, "max_symbol_ratio", NAN, NULL), CURATE_ERR_RANGE);
    /* Names round-trip. */
    for (unsigned i = 0; i < CURATE_QF_COUNT; i++)
        assert_int_equal(curate_quality_filter_lookup(curate_quality_filter_name(i)), i);
    assert_int_equal(curate_quality_filter_lookup("bogus"), CURATE_QF_COUNT);
    assert_null(curate_quality_filter_name(CURATE_QF_COUNT));
}

static void test_unicode_text(void **state)
{
    (void)state;
    curate_quality *q = curate_quality_new(NULL);
    curate_quality_signals sig;
    curate_quality_filter failed;
    /* Letters in other scripts count as letters; NBSP and ideographic
     * space separate words; chars are code points. */
    const char s[] = "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82\xC2\xA0\xE4\xB8\x96"
                     "\xE7\x95\x8C\xE3\x80\x80\xD9\xA3\xD9\xA4 caf\xC3\xA9\xE2\x80\xA6";
    assert_int_equal(curate_quality_eval(q, NULL, s, sizeof s - 1, 0, &sig, &failed), CURATE_OK);
    assert_int_equal(sig.words, 4);      /* Привет 世界 ٣٤ café… */
    assert_int_equal(sig.chars, 6 + 1 + 2 + 1 + 2 + 1 + 5);
    assert_true(fabs(sig.alpha_words - 0.75) < 1e-12); /* Arabic-Indic digits are not letters */
    assert_true(fabs(sig.mean_word_length - (6.0 + 2 + 2 + 5) / 4) < 1e-12);
    assert_true(fabs(sig.ellipsis_lines - 1.0) < 1e-12);
    assert_true(fabs(sig.symbol_ratio - 0.25) < 1e-12);
    /* Empty text: zeros, no division by zero. */
    assert_int_equal(curate_quality_eval(q, NULL, "", 0, 0, &sig, &failed), CURATE_OK);
    assert_int_equal(sig.words, 0);
    assert_true(sig.symbol_ratio == 0 && sig.top_ngram[0] == 0 && sig.dup_lines == 0);
    curate_quality_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signals_vs_reference),
        cmocka_unit_test(test_normal_passes),
        cmocka_unit_test(test_each_filter_fires),
        cmocka_unit_test(test_ngram_filters),
        cmocka_unit_test(test_switches),
        cmocka_unit_test(test_opts_set),
        cmocka_unit_test(test_unicode_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
