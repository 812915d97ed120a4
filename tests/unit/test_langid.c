/*
 * test_langid.c - the CLD2 shim and the script counter (curate/langid.h).
 *
 * Runs without ../shared: the multilingual cases come from the committed
 * fixture golden/langid/udhr_sample.tsv, whose labels are the languages the
 * UDHR translations are written in (not a detector's answers).  The large
 * accuracy measurement over ../shared is test_langid_accuracy.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/buf.h"
#include "curate/langid.h"

static curate_langid *new_detector(size_t max_bytes, size_t min_letters)
{
    curate_langid_opts o;
    curate_langid_opts_default(&o);
    if (max_bytes)
        o.max_bytes = max_bytes;
    o.min_letters = min_letters;
    curate_error err;
    curate_error_clear(&err);
    curate_langid *id = curate_langid_init(&o, &err);
    assert_non_null(id);
    return id;
}

/* Detect on an exactly sized heap copy, so that AddressSanitizer catches a
 * read past the end of the text by the shim or by CLD2. */
static void detect(curate_langid *id, const char *text, size_t n, curate_langid_result *r)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, text, n);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_langid_detect(id, copy, n, r, &err), CURATE_OK);
    assert_memory_equal(copy, text, n); /* the text is only read */
    free(copy);
}

static const char *script_of(const char *s)
{
    curate_script_result r;
    assert_int_equal(curate_script_detect(s, strlen(s), &r, NULL), CURATE_OK);
    return r.script;
}

/* ---- fixture ------------------------------------------------------------ */

typedef struct {
    char lang[8], script[8];
    char *text;
    size_t len;
} sample;

static sample *g_samples;
static size_t g_n_samples;

static void load_fixture(void)
{
    if (g_samples)
        return;
    const char *dir = getenv("CURATE_TESTS");
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/langid/udhr_sample.tsv", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        fail();
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n')
            line[--got] = 0;
        char *t1 = strchr(line, '\t');
        assert_non_null(t1);
        char *t2 = strchr(t1 + 1, '\t');
        assert_non_null(t2);
        g_samples = realloc(g_samples, (g_n_samples + 1) * sizeof *g_samples);
        assert_non_null(g_samples);
        sample *s = &g_samples[g_n_samples++];
        snprintf(s->lang, sizeof s->lang, "%.*s", (int)(t1 - line), line);
        snprintf(s->script, sizeof s->script, "%.*s", (int)(t2 - t1 - 1), t1 + 1);
        /* Undo the \n and \\ escapes. */
        const char *p = t2 + 1;
        s->text = malloc(strlen(p) + 1);
        assert_non_null(s->text);
        size_t k = 0;
        for (; *p; p++) {
            if (*p == '\\' && p[1] == 'n') {
                s->text[k++] = '\n';
                p++;
            } else if (*p == '\\' && p[1] == '\\') {
                s->text[k++] = '\\';
                p++;
            } else {
                s->text[k++] = *p;
            }
        }
        s->text[k] = 0;
        s->len = k;
    }
    free(line);
    fclose(f);
    assert_int_equal(g_n_samples, 69);
}

/* ---- scripts ------------------------------------------------------------ */

static void test_script_basic(void **state)
{
    (void)state;
    assert_string_equal(script_of("Hello, world"), "Latn");
    assert_string_equal(script_of("Привет, мир"), "Cyrl");
    assert_string_equal(script_of("Γειά σου κόσμε"), "Grek");
    assert_string_equal(script_of("مرحبا بالعالم"), "Arab");
    assert_string_equal(script_of("שלום עולם"), "Hebr");
    assert_string_equal(script_of("你好，世界"), "Hani");
    assert_string_equal(script_of("こんにちは世界"), "Jpan");
    assert_string_equal(script_of("カタカナだけ"), "Jpan");
    assert_string_equal(script_of("안녕하세요 세계"), "Hang");
    assert_string_equal(script_of("नमस्ते दुनिया"), "Deva");
    assert_string_equal(script_of("ওহে বিশ্ব"), "Beng");
    assert_string_equal(script_of("สวัสดีชาวโลก"), "Thai");
    assert_string_equal(script_of("Բարեւ աշխարհ"), "Armn");
    assert_string_equal(script_of("გამარჯობა"), "Geor");
    assert_string_equal(script_of("ሰላም ልዑል"), "Ethi");
    assert_string_equal(script_of("ᏣᎳᎩ"), "Cher");
    assert_string_equal(script_of("ＡＢＣ"), "Latn"); /* fullwidth */
    /* Letters of a script outside the table (Runic). */
    assert_string_equal(script_of("ᚠᚢᚦᚨᚱᚲ"), "Zzzz");
}

static void test_script_counting(void **state)
{
    (void)state;
    curate_script_result r;
    /* Digits, punctuation, symbols, emoji and spaces are not letters. */
    const char *none = "12345 !?,. \xC3\x97\xC3\xB7 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE3\x80\x82";
    assert_int_equal(curate_script_detect(none, strlen(none), &r, NULL), CURATE_OK);
    assert_string_equal(r.script, "Zyyy");
    assert_int_equal(r.letters, 0);
    assert_true(r.share == 0.0);
    assert_int_equal(curate_script_detect(NULL, 0, &r, NULL), CURATE_OK);
    assert_string_equal(r.script, "Zyyy");

    /* 6 Latin letters, 3 Cyrillic: Latin, share 6/9. */
    const char *mix = "abc def 123 где";
    assert_int_equal(curate_script_detect(mix, strlen(mix), &r, NULL), CURATE_OK);
    assert_string_equal(r.script, "Latn");
    assert_int_equal(r.letters, 9);
    assert_true(r.share > 0.66 && r.share < 0.67);

    /* The majority wins; a tie goes to the script listed first (Latin
     * before Cyrillic). */
    assert_string_equal(script_of("ab где"), "Cyrl");
    assert_string_equal(script_of("abc где"), "Latn");

    /* Chinese quoting one short Japanese word stays Han: 2 kana against
     * 30 Han letters is under 10%. */
    assert_string_equal(script_of("人人有权享有生命自由和人身安全人人有权享有生命自由和人身安全です"), "Hani");
    /* Korean with a few Hanja stays Hangul. */
    assert_string_equal(script_of("대한민국 헌법 大韓民國"), "Hang");

    /* Invalid UTF-8 is counted, not fatal: a stray continuation byte, a
     * truncated sequence, an overlong form, a surrogate. */
    const char bad[] = "ab\x80" "c\xE2\x82" "d\xC0\xAF" "e\xED\xA0\x80";
    assert_int_equal(curate_script_detect(bad, sizeof bad - 1, &r, NULL), CURATE_OK);
    assert_string_equal(r.script, "Latn");
    assert_int_equal(r.letters, 5);
    assert_int_equal(r.invalid, 1 + 2 + 2 + 3);

    assert_int_equal(curate_script_detect(NULL, 3, &r, NULL), CURATE_ERR_INVALID);
    assert_int_equal(curate_script_detect("a", 1, NULL, NULL), CURATE_ERR_INVALID);
}

static void test_script_names(void **state)
{
    (void)state;
    assert_string_equal(curate_script_name("Latn"), "Latin");
    assert_string_equal(curate_script_name("Jpan"), "Japanese");
    assert_string_equal(curate_script_name("Zyyy"), "no letters");
    assert_null(curate_script_name("Xxxx"));
    assert_null(curate_script_name(NULL));
}

/* ---- codes and the language list ---------------------------------------- */

static void test_codes(void **state)
{
    (void)state;
    assert_string_equal(curate_langid_code_from_cld2("iw"), "he");
    assert_string_equal(curate_langid_code_from_cld2("jw"), "jv");
    assert_string_equal(curate_langid_code_from_cld2("zh-Hant"), "zh");
    assert_string_equal(curate_langid_code_from_cld2("sr-ME"), "sr");
    assert_string_equal(curate_langid_code_from_cld2("blu"), "hmn");
    assert_string_equal(curate_langid_code_from_cld2("un"), "und");
    assert_string_equal(curate_langid_code_from_cld2("xxx"), "und");
    assert_string_equal(curate_langid_code_from_cld2("xx-Tfng"), "und");
    assert_string_equal(curate_langid_code_from_cld2("zzp"), "und");
    assert_string_equal(curate_langid_code_from_cld2(NULL), "und");
    assert_string_equal(curate_langid_code_from_cld2(""), "und");
    const char *en = "en";
    assert_ptr_equal(curate_langid_code_from_cld2(en), en);

    size_t n = curate_langid_language_count();
    assert_int_equal(n, 94);
    const char *prev = "";
    for (size_t i = 0; i < n; i++) {
        const char *code, *name;
        assert_int_equal(curate_langid_language(i, &code, &name), 0);
        assert_true(strcmp(prev, code) < 0); /* sorted, no duplicates */
        assert_true(strlen(name) > 0);
        /* Every listed code is a result code: the mapping leaves it alone. */
        assert_string_equal(curate_langid_code_from_cld2(code), code);
        assert_true(curate_langid_language_known(code));
        prev = code;
    }
    assert_int_equal(curate_langid_language(n, NULL, NULL), -1);
    assert_true(curate_langid_language_known("und"));
    assert_true(curate_langid_language_known("he"));
    assert_false(curate_langid_language_known("iw"));
    assert_false(curate_langid_language_known("am")); /* Ethiopic: no statistics */
    assert_false(curate_langid_language_known("xx"));
    assert_false(curate_langid_language_known(NULL));
}

/* ---- detection ----------------------------------------------------------- */

static void test_fixture(void **state)
{
    (void)state;
    load_fixture();
    curate_langid *id = new_detector(0, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    size_t ok = 0;
    for (size_t i = 0; i < g_n_samples; i++) {
        const sample *s = &g_samples[i];
        curate_langid_result r;
        detect(id, s->text, s->len, &r);
        /* The script is decided by code points alone: always right. */
        assert_string_equal(r.script.script, s->script);
        assert_true(r.score >= 0.0 && r.score <= 1.0);
        if (strcmp(r.lang, s->lang) == 0) {
            ok++;
            assert_true(r.reliable);
            assert_true(r.score > 0.5);
            assert_true(r.n_top >= 1);
            assert_string_equal(r.top[0].lang, s->lang);
        } else {
            print_message("fixture line %zu: %s detected as %s (cld2 %s)\n", i + 1, s->lang,
                          r.lang, r.cld2_code);
        }
    }
    /* The bar: at least 95% on paragraphs of 100+ characters. */
    assert_true(ok * 100 >= g_n_samples * 95);
    curate_langid_free(id);
}

static const char *find_text(const char *lang, size_t nth)
{
    load_fixture();
    for (size_t i = 0; i < g_n_samples; i++)
        if (strcmp(g_samples[i].lang, lang) == 0 && nth-- == 0)
            return g_samples[i].text;
    fail();
    return NULL;
}

static void test_traditional_chinese(void **state)
{
    (void)state;
    curate_langid *id = new_detector(0, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    curate_langid_result r;
    /* Samples 3-5 of "zh" are the cmn_hant paragraphs. */
    const char *t = find_text("zh", 4);
    detect(id, t, strlen(t), &r);
    assert_string_equal(r.lang, "zh");
    assert_string_equal(r.cld2_code, "zh-Hant");
    t = find_text("he", 0);
    detect(id, t, strlen(t), &r);
    assert_string_equal(r.lang, "he");
    assert_string_equal(r.cld2_code, "iw");
    curate_langid_free(id);
}

static void test_short_text(void **state)
{
    (void)state;
    curate_langid *id = new_detector(0, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    curate_langid_result r;
    const char *hello = "Hello, how are you?"; /* 14 letters */
    detect(id, hello, strlen(hello), &r);
    assert_string_equal(r.lang, "und");
    assert_true(r.short_text);
    assert_true(r.score == 0.0);
    assert_int_equal(r.n_top, 0);
    assert_string_equal(r.script.script, "Latn"); /* the script is still counted */
    assert_int_equal(r.script.letters, 14);

    detect(id, "", 0, &r);
    assert_string_equal(r.lang, "und");
    assert_string_equal(r.script.script, "Zyyy");
    curate_langid_free(id);

    /* With the threshold off, CLD2 decides (and knows this one). */
    id = new_detector(0, 0);
    const char *fr = "Bonjour tout le monde, comment allez-vous";
    detect(id, fr, strlen(fr), &r);
    assert_string_equal(r.lang, "fr");
    assert_false(r.short_text);
    /* Digits only: CLD2 has nothing to score. */
    detect(id, "12345 67890", 11, &r);
    assert_string_equal(r.lang, "und");
    assert_false(r.short_text);
    curate_langid_free(id);
}

static void test_mixed_text(void **state)
{
    (void)state;
    curate_langid *id = new_detector(0, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    curate_buf b;
    curate_buf_init(&b);
    const char *en = find_text("en", 1), *de = find_text("de", 1);
    curate_buf_printf(&b, "%s\n%s", en, de);
    curate_langid_result r, r_en;
    detect(id, b.data, b.len, &r);
    detect(id, en, strlen(en), &r_en);
    assert_true(r.n_top >= 2);
    unsigned sum = 0;
    int seen_en = 0, seen_de = 0;
    for (size_t i = 0; i < r.n_top; i++) {
        sum += r.top[i].percent;
        seen_en |= strcmp(r.top[i].lang, "en") == 0;
        seen_de |= strcmp(r.top[i].lang, "de") == 0;
        if (i)
            assert_true(r.top[i].percent <= r.top[i - 1].percent);
    }
    assert_true(seen_en && seen_de);
    assert_true(sum <= 100);
    /* A mixed text scores below its clean halves. */
    assert_true(r.score < r_en.score);
    assert_true(r.score <= r.top[0].percent / 100.0);
    curate_buf_release(&b);
    curate_langid_free(id);
}

/* A text longer than max_bytes is sampled over its whole length. */
static void test_long_text_sampling(void **state)
{
    (void)state;
    curate_langid *id = new_detector(2048, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    curate_buf b;
    curate_buf_init(&b);
    const char *en = find_text("en", 0), *fr = find_text("fr", 0);
    while (b.len < 20000)
        curate_buf_printf(&b, "%s\n", en);
    size_t half = b.len;
    while (b.len < 2 * half)
        curate_buf_printf(&b, "%s\n", fr);
    curate_langid_result r;
    detect(id, b.data, b.len, &r);
    /* The quick pass saw English and French: not settled, so the full
     * pass (8 windows of 256) answered. */
    assert_int_equal(r.passes, 2);
    assert_true(r.bytes_examined <= 2048);
    assert_true(r.bytes_examined >= 2048 - 8 * 2 * 36); /* each window end moves <= 35 bytes */
    /* A prefix would have seen English only. */
    assert_true(r.n_top >= 2);
    int seen_fr = 0;
    for (size_t i = 0; i < r.n_top; i++)
        seen_fr |= strcmp(r.top[i].lang, "fr") == 0 && r.top[i].percent >= 25;
    assert_true(seen_fr);

    /* Windows are cut at character boundaries even when there is no space
     * to cut at: a long run of 3-byte Han characters and of 2-byte Cyrillic
     * letters gives no invalid bytes. */
    curate_buf_reset(&b);
    const char *zh = find_text("zh", 0);
    while (b.len < 30001)
        for (const char *p = zh; *p; p++)
            if (*p != '\n' && (unsigned char)*p >= 0x80)
                curate_buf_append_char(&b, *p);
    curate_buf_append_str(&b, "x"); /* shift the byte alignment */
    detect(id, b.data, b.len, &r);
    assert_int_equal(r.script.invalid, 0);
    assert_string_equal(r.script.script, "Hani");
    assert_string_equal(r.lang, "zh");
    curate_buf_reset(&b);
    while (b.len < 10000)
        curate_buf_append_str(&b, "\xD0\xB4"); /* д */
    curate_buf_append_str(&b, "a");
    for (int i = 0; i < 3000; i++)
        curate_buf_append_str(&b, "\xD0\xB4");
    detect(id, b.data, b.len, &r);
    assert_int_equal(r.script.invalid, 0);
    assert_string_equal(r.script.script, "Cyrl");
    curate_buf_release(&b);
    curate_langid_free(id);

    /* A long monolingual text is settled by the quick pass. */
    curate_buf_init(&b);
    while (b.len < 20000)
        curate_buf_printf(&b, "%s\n", en);
    id = new_detector(2048, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    detect(id, b.data, b.len, &r);
    assert_int_equal(r.passes, 1);
    assert_true(r.bytes_examined <= CURATE_LANGID_DEFAULT_QUICK_BYTES);
    assert_string_equal(r.lang, "en");
    assert_true(r.top[0].percent >= CURATE_LANGID_QUICK_MIN_PERCENT);
    curate_langid_free(id);
    /* Without the quick pass the full sample is used. */
    curate_langid_opts o;
    curate_langid_opts_default(&o);
    o.quick_bytes = 0;
    id = curate_langid_init(&o, NULL);
    assert_non_null(id);
    detect(id, b.data, b.len, &r);
    assert_int_equal(r.passes, 1);
    assert_true(r.bytes_examined > 1500 && r.bytes_examined <= 2048);
    assert_string_equal(r.lang, "en");
    curate_langid_free(id);
    /* A text no longer than quick_bytes gets a single pass over all of it. */
    id = new_detector(2048, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    detect(id, b.data, 200, &r);
    assert_int_equal(r.passes, 1);
    assert_int_equal(r.bytes_examined, 200);
    curate_langid_free(id);
    curate_buf_release(&b);

    /* The smallest setting: one window (no quick pass: it is not smaller). */
    id = new_detector(CURATE_LANGID_WINDOW_BYTES, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    const char *ru = find_text("ru", 0);
    curate_buf_init(&b);
    while (b.len < 5000)
        curate_buf_printf(&b, "%s ", ru);
    detect(id, b.data, b.len, &r);
    assert_true(r.bytes_examined <= CURATE_LANGID_WINDOW_BYTES);
    assert_string_equal(r.lang, "ru");
    curate_buf_release(&b);
    curate_langid_free(id);
}

static void test_invalid_utf8_and_nul(void **state)
{
    (void)state;
    curate_langid *id = new_detector(0, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    const char *es = find_text("es", 0);
    curate_buf b;
    curate_buf_init(&b);
    /* Invalid bytes sprinkled between the words, a NUL in the middle. */
    for (const char *p = es; *p; p++) {
        curate_buf_append_char(&b, *p);
        if (*p == ' ' && (p - es) % 7 == 0)
            curate_buf_append(&b, "\xFF\xC3", 2);
    }
    curate_buf_append(&b, "\0 ", 2);
    curate_buf_append_str(&b, es);
    curate_langid_result r;
    detect(id, b.data, b.len, &r);
    assert_string_equal(r.lang, "es");
    assert_true(r.script.invalid > 0);
    assert_string_equal(r.script.script, "Latn");

    /* Same over the windowed path. */
    curate_buf bb;
    curate_buf_init(&bb);
    while (bb.len < 10000)
        curate_buf_append(&bb, b.data, b.len);
    detect(id, bb.data, bb.len, &r);
    assert_string_equal(r.lang, "es");
    assert_true(r.script.invalid > 0);
    curate_buf_release(&bb);
    curate_buf_release(&b);
    curate_langid_free(id);
}

static void test_deterministic(void **state)
{
    (void)state;
    load_fixture();
    curate_langid *a = new_detector(0, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    curate_langid *b = new_detector(0, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    for (size_t i = 0; i < g_n_samples; i++) {
        curate_langid_result r1, r2;
        detect(a, g_samples[i].text, g_samples[i].len, &r1);
        detect(b, g_samples[i].text, g_samples[i].len, &r2);
        assert_string_equal(r1.lang, r2.lang);
        assert_true(r1.score == r2.score);
        assert_int_equal(r1.n_top, r2.n_top);
        for (size_t k = 0; k < r1.n_top; k++)
            assert_int_equal(r1.top[k].percent, r2.top[k].percent);
    }
    curate_langid_free(a);
    curate_langid_free(b);
}

/* The score is the documented function of CLD2's numbers. */
static void test_score_formula(void **state)
{
    (void)state;
    load_fixture();
    curate_langid *id = new_detector(0, 0);
    for (size_t i = 0; i < g_n_samples; i++) {
        curate_langid_result r;
        detect(id, g_samples[i].text, g_samples[i].len, &r);
        if (strcmp(r.lang, "und") == 0) {
            assert_true(r.score == 0.0);
            continue;
        }
        const curate_lang_share *t = NULL;
        for (size_t k = 0; k < r.n_top; k++)
            if (strcmp(r.top[k].lang, r.lang) == 0)
                t = &r.top[k];
        assert_non_null(t);
        double strength = t->normalized_score / 512.0;
        if (strength > 1)
            strength = 1;
        double want = t->percent / 100.0 * strength * (r.reliable ? 1.0 : 0.5);
        assert_true(r.score > want - 0.0005 && r.score < want + 0.0005);
    }
    curate_langid_free(id);
}

static void test_errors(void **state)
{
    (void)state;
    curate_error err;
    curate_langid_opts o;
    curate_langid_opts_default(&o);
    assert_int_equal(o.max_bytes, CURATE_LANGID_DEFAULT_MAX_BYTES);
    assert_int_equal(o.min_letters, CURATE_LANGID_DEFAULT_MIN_LETTERS);
    assert_int_equal(o.quick_bytes, CURATE_LANGID_DEFAULT_QUICK_BYTES);
    o.max_bytes = CURATE_LANGID_WINDOW_BYTES - 1;
    curate_error_clear(&err);
    assert_null(curate_langid_init(&o, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    assert_true(strstr(err.message, "max_bytes") != NULL);
    o.max_bytes = CURATE_LANGID_MAX_MAX_BYTES + 1;
    assert_null(curate_langid_init(&o, NULL));
    curate_langid_opts_default(&o);
    o.quick_bytes = CURATE_LANGID_WINDOW_BYTES - 1;
    curate_error_clear(&err);
    assert_null(curate_langid_init(&o, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    assert_true(strstr(err.message, "quick_bytes") != NULL);
    curate_langid_free(NULL);

    curate_langid *id = curate_langid_init(NULL, &err);
    assert_non_null(id);
    curate_langid_result r;
    curate_error_clear(&err);
    assert_int_equal(curate_langid_detect(id, NULL, 5, &r, &err), CURATE_ERR_INVALID);
    assert_string_equal(r.lang, "und");
    assert_int_equal(curate_langid_detect(NULL, "abc", 3, &r, NULL), CURATE_ERR_INVALID);
    assert_int_equal(curate_langid_detect(id, "abc", 3, NULL, NULL), CURATE_ERR_INVALID);
    assert_int_equal(curate_langid_detect(id, NULL, 0, &r, NULL), CURATE_OK);
    curate_langid_free(id);
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_n_samples; i++)
        free(g_samples[i].text);
    free(g_samples);
    g_samples = NULL;
    g_n_samples = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script_basic),
        cmocka_unit_test(test_script_counting),
        cmocka_unit_test(test_script_names),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_traditional_chinese),
        cmocka_unit_test(test_short_text),
        cmocka_unit_test(test_mixed_text),
        cmocka_unit_test(test_long_text_sampling),
        cmocka_unit_test(test_invalid_utf8_and_nul),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_score_formula),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
