/*
 * test_text.c - UTF-8 validation and repair, normalization, case folding,
 * removal of invisible characters, whitespace, counting.
 *
 * References: golden vectors generated from Python's unicodedata and
 * codecs (tests/golden/gen_*.py), utf8proc's whole-string functions for
 * the segmenting fast path, and simple byte loops for the word-at-a-time
 * scanners.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "curate/text.h"

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    /* xorshift64*: a fixed seed keeps failures reproducible */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static FILE *open_golden(const char *name)
{
    char path[1024];
    const char *dir = getenv("CURATE_TESTS");
    snprintf(path, sizeof path, "%s/golden/%s", dir ? dir : ".", name);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(path, sizeof path, "golden/%s", name);
        f = fopen(path, "r");
    }
    if (!f)
        fail_msg("cannot open golden file %s", name);
    return f;
}

/* Parse "0041 0301" (code points) into UTF-8. */
static size_t parse_cps(const char *field, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = field;
    while (*p) {
        char *end;
        unsigned long cp = strtoul(p, &end, 16);
        if (end == p)
            break;
        assert_true(n + 4 < cap);
        n += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out + n);
        p = end;
        while (*p == ' ')
            p++;
    }
    out[n] = 0;
    return n;
}

/* Parse "C3 A9" (bytes) into raw bytes. */
static size_t parse_bytes(const char *field, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = field;
    while (*p) {
        char *end;
        unsigned long b = strtoul(p, &end, 16);
        if (end == p)
            break;
        assert_true(n < cap);
        out[n++] = (char)b;
        p = end;
        while (*p == ' ')
            p++;
    }
    return n;
}

/* Split a golden line at tabs in place; returns the number of fields. */
static int split_tabs(char *line, char **fields, int max)
{
    int k = 0;
    line[strcspn(line, "\n")] = 0;
    fields[k++] = line;
    for (char *p = line; *p && k < max; p++) {
        if (*p == '\t') {
            *p = 0;
            fields[k++] = p + 1;
        }
    }
    return k;
}

/* Reference validator: index of the first byte utf8proc_iterate refuses. */
static size_t ref_utf8_check(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0)
            return i;
        i += (size_t)k;
    }
    return n;
}

/* ---- UTF-8 ----------------------------------------------------------------- */

static void test_utf8_check_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        size_t bad; /* where the invalid byte sits in s, or n if valid */
    } cases[] = {
        {"plain ascii text", 16, 16},
        {"caf\xC3\xA9", 5, 5},
        {"\xE2\x82\xAC and \xF0\x9F\x98\x80", 12, 12},
        {"\xF4\x8F\xBF\xBF", 4, 4},         /* U+10FFFF, the last valid */
        {"\xED\x9F\xBF", 3, 3},             /* U+D7FF, just below surrogates */
        {"ab\x80", 3, 2},                   /* stray continuation */
        {"ab\xC0\x80", 4, 2},               /* overlong NUL */
        {"\xC1\xBF", 2, 0},                 /* overlong U+007F */
        {"x\xE0\x80\x80", 4, 1},            /* overlong 3-byte */
        {"x\xE0\x9F\xBF", 4, 1},            /* overlong U+07FF */
        {"xy\xF0\x8F\xBF\xBF", 6, 2},       /* overlong 4-byte */
        {"\xED\xA0\x80", 3, 0},             /* U+D800 */
        {"a\xED\xBF\xBF", 4, 1},            /* U+DFFF */
        {"\xF4\x90\x80\x80", 4, 0},         /* U+110000 */
        {"abc\xF5\x80\x80\x80", 7, 3},      /* lead byte beyond F4 */
        {"\xFF", 1, 0},
        {"ok \xE2\x82", 5, 3},              /* truncated at the end */
        {"ok \xE2\x82 more", 10, 3},        /* truncated in the middle */
        {"\xF0\x9F\x98", 3, 0},             /* truncated 4-byte */
        {"12345678901234567890\xC3", 21, 20}, /* after the 8-byte skip */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = curate_utf8_check(cases[i].s, cases[i].n);
        if (got != cases[i].bad)
            fail_msg("case %zu: check gave %zu, want %zu", i, got, cases[i].bad);
        assert_int_equal(ref_utf8_check(cases[i].s, cases[i].n), cases[i].bad);
    }
}

static void test_utf8_check_random(void **state)
{
    (void)state;
    static const unsigned char pool[] = {0x41, 0x20, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
                                         0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF4, 0xF5};
    char s[64];
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = (size_t)(rnd() % sizeof s);
        /* Mostly ASCII with a few hard bytes, so both paths are hit. */
        for (size_t i = 0; i < n; i++)
            s[i] = (char)(rnd() % 4 ? 'a' + (int)(rnd() % 26) : pool[rnd() % sizeof pool]);
        size_t want = ref_utf8_check(s, n);
        size_t got = curate_utf8_check(s, n);
        if (want != got)
            fail_msg("iteration %d: got %zu, want %zu", iter, got, want);
    }
}

static void test_is_ascii(void **state)
{
    (void)state;
    char s[80];
    memset(s, 'a', sizeof s);
    for (size_t n = 0; n <= sizeof s; n++)
        assert_true(curate_is_ascii(s, n));
    /* A high byte at every position of every length. */
    for (size_t n = 1; n <= sizeof s; n++) {
        for (size_t at = 0; at < n; at++) {
            s[at] = (char)0x80;
            assert_false(curate_is_ascii(s, n));
            s[at] = 'a';
        }
    }
}

static void test_utf8_repair_golden(void **state)
{
    (void)state;
    FILE *f = open_golden("utf8_repair.txt");
    char line[4096], in[256], want[1024];
    int checked = 0;
    curate_buf out;
    curate_buf_init(&out);
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char *fld[3];
        assert_int_equal(split_tabs(line, fld, 3), 3);
        size_t n = parse_bytes(fld[0], in, sizeof in);
        size_t wn = parse_bytes(fld[1], want, sizeof want);
        size_t want_count = (size_t)strtoul(fld[2], NULL, 10);
        curate_buf_reset(&out);
        size_t count = 99;
        assert_int_equal(curate_utf8_repair(in, n, &out, &count), CURATE_OK);
        if (out.len != wn || memcmp(out.data, want, wn) != 0 || count != want_count)
            fail_msg("repair of [%s]: got %zu bytes / %zu repairs, want [%s] / %zu", fld[0],
                     out.len, count, fld[1], want_count);
        assert_int_equal(curate_utf8_check(out.data, out.len), out.len);
        checked++;
    }
    fclose(f);
    curate_buf_release(&out);
    assert_true(checked > 1000);
}

static void test_utf8_repair_valid_untouched(void **state)
{
    (void)state;
    const char s[] = "d\xC3\xA9j\xC3\xA0 vu \xF0\x9F\x98\x80";
    curate_buf out;
    curate_buf_init(&out);
    size_t count = 7;
    assert_int_equal(curate_utf8_repair(s, sizeof s - 1, &out, &count), CURATE_OK);
    assert_int_equal(count, 0);
    assert_int_equal(out.len, sizeof s - 1);
    assert_memory_equal(out.data, s, sizeof s - 1);
    /* Empty input appends nothing. */
    curate_buf_reset(&out);
    assert_int_equal(curate_utf8_repair("", 0, &out, NULL), CURATE_OK);
    assert_int_equal(out.len, 0);
    curate_buf_release(&out);
}

static void test_utf8_length(void **state)
{
    (void)state;
    const char s[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";
    assert_int_equal(curate_utf8_length(s, sizeof s - 1), 5);
    assert_int_equal(curate_utf8_length("", 0), 0);
}

/* ---- normalization ---------------------------------------------------------- */

static void test_normalize_golden(void **state)
{
    (void)state;
    FILE *f = open_golden("normalization.txt");
    char line[8192], in[1024], nfc[1024], nfkc[1024], fold[1024];
    curate_buf out;
    curate_buf_init(&out);
    int checked = 0, failures = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char *fld[4];
        assert_int_equal(split_tabs(line, fld, 4), 4);
        size_t n = parse_cps(fld[0], in, sizeof in);
        size_t n_nfc = parse_cps(fld[1], nfc, sizeof nfc);
        size_t n_nfkc = parse_cps(fld[2], nfkc, sizeof nfkc);
        size_t n_fold = parse_cps(fld[3], fold, sizeof fold);
        curate_error err;
        const struct {
            curate_norm form;
            const char *want;
            size_t wn;
            const char *name;
        } forms[] = {{CURATE_NORM_NFC, nfc, n_nfc, "NFC"}, {CURATE_NORM_NFKC, nfkc, n_nfkc, "NFKC"}};
        for (int k = 0; k < 2; k++) {
            curate_buf_reset(&out);
            assert_int_equal(curate_normalize(in, n, forms[k].form, &out, &err), CURATE_OK);
            if (out.len != forms[k].wn || memcmp(out.data, forms[k].want, forms[k].wn) != 0) {
                if (failures++ < 10)
                    print_error("%s of [%s] differs from Python's\n", forms[k].name, fld[0]);
            }
        }
        curate_buf_reset(&out);
        assert_int_equal(curate_casefold(in, n, &out, &err), CURATE_OK);
        if (out.len != n_fold || memcmp(out.data, fold, n_fold) != 0) {
            if (failures++ < 10)
                print_error("casefold of [%s] differs from Python's\n", fld[0]);
        }
        checked++;
    }
    fclose(f);
    curate_buf_release(&out);
    assert_int_equal(failures, 0);
    assert_true(checked > 5000);
}

/* Named vectors from the brief, so a failure reads as what broke. */
static void expect_norm(const char *in, curate_norm form, const char *want)
{
    curate_buf out;
    curate_buf_init(&out);
    assert_int_equal(curate_normalize(in, strlen(in), form, &out, NULL), CURATE_OK);
    assert_string_equal(out.data ? out.data : "", want);
    curate_buf_release(&out);
}

static void test_normalize_named(void **state)
{
    (void)state;
    /* "fi" ligature: kept by NFC, split by NFKC. */
    expect_norm("\xEF\xAC\x81nd", CURATE_NORM_NFC, "\xEF\xAC\x81nd");
    expect_norm("\xEF\xAC\x81nd", CURATE_NORM_NFKC, "find");
    /* A + combining ring, U+212B ANGSTROM SIGN and U+00C5 all end as U+00C5. */
    expect_norm("A\xCC\x8A", CURATE_NORM_NFC, "\xC3\x85");
    expect_norm("\xE2\x84\xAB", CURATE_NORM_NFC, "\xC3\x85");
    expect_norm("\xC3\x85", CURATE_NORM_NFKC, "\xC3\x85");
    /* Fullwidth letters and digits: NFKC only. */
    expect_norm("\xEF\xBC\xA1\xEF\xBC\x91", CURATE_NORM_NFC, "\xEF\xBC\xA1\xEF\xBC\x91");
    expect_norm("\xEF\xBC\xA1\xEF\xBC\x91", CURATE_NORM_NFKC, "A1");
    /* NBSP becomes a space under NFKC. */
    expect_norm("a\xC2\xA0" "b", CURATE_NORM_NFKC, "a b");
    /* Marks are reordered by combining class and composed. */
    expect_norm("a\xCC\x81\xCC\xA3", CURATE_NORM_NFC, "\xE1\xBA\xA1\xCC\x81");
    /* Conjoining Hangul jamo compose to a syllable. */
    expect_norm("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", CURATE_NORM_NFC, "\xEA\xB0\x81");
    /* NONE is a copy. */
    expect_norm("A\xCC\x8A", CURATE_NORM_NONE, "A\xCC\x8A");
    /* Empty in, empty out. */
    expect_norm("", CURATE_NORM_NFC, "");
}

static void test_normalize_invalid(void **state)
{
    (void)state;
    curate_buf out;
    curate_buf_init(&out);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_normalize("abc\xFFz", 5, CURATE_NORM_NFC, &out, &err), CURATE_ERR_UTF8);
    assert_int_equal(err.code, CURATE_ERR_UTF8);
    assert_true(err.has_offset);
    assert_int_equal(err.offset, 3);
    assert_int_equal(out.len, 0);
    curate_error_clear(&err);
    assert_int_equal(curate_casefold("\xED\xA0\x80", 3, &out, &err), CURATE_ERR_UTF8);
    assert_int_equal(err.offset, 0);
    curate_buf_release(&out);
}

/* The segmenting fast path against utf8proc on whole strings. */
static void test_normalize_vs_utf8proc(void **state)
{
    (void)state;
    static const uint32_t pool[] = {
        'a', 'e', 'o', 'A', 'K', 's', ' ', '.', 0x00E9, 0x00C5, 0x212B, 0x0300, 0x0301,
        0x0308, 0x0323, 0x0327, 0x031B, 0x0345, 0x0344, 0x0340, 0x1100, 0x1161, 0x11A8,
        0xAC00, 0xAC01, 0xFB01, 0x00DF, 0x01C4, 0x1E9B, 0x0915, 0x093C, 0x0F73, 0x0FB5,
        0xFF76, 0xFF9E, 0x3099, 0x304B, 0x2460, 0x00A0, 0x3000, 0x4E2D, 0x0628, 0x064B,
        0x0651, 0x1F600, 0x1D15E, 0x1D165, 0x2F800, 0x09C7, 0x09BE, 0x0B47, 0x0B3E, 0x2126,
    };
    const size_t npool = sizeof pool / sizeof pool[0];
    char s[1024];
    curate_buf out;
    curate_buf_init(&out);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0, len = 1 + (size_t)(rnd() % 60);
        for (size_t i = 0; i < len; i++)
            n += (size_t)utf8proc_encode_char((utf8proc_int32_t)pool[rnd() % npool],
                                              (utf8proc_uint8_t *)s + n);
        s[n] = 0;
        for (int form = 0; form < 2; form++) {
            utf8proc_uint8_t *ref = form ? utf8proc_NFKC((const utf8proc_uint8_t *)s)
                                         : utf8proc_NFC((const utf8proc_uint8_t *)s);
            assert_non_null(ref);
            curate_buf_reset(&out);
            assert_int_equal(curate_normalize(s, n, form ? CURATE_NORM_NFKC : CURATE_NORM_NFC,
                                              &out, NULL),
                             CURATE_OK);
            if (strlen((char *)ref) != out.len || memcmp(ref, out.data, out.len) != 0)
                fail_msg("iteration %d form %d: fast path differs from utf8proc", iter, form);
            free(ref);
        }
    }
    curate_buf_release(&out);
}

static void test_normalize_stream_safe(void **state)
{
    (void)state;
    /* 'a' followed by 40 U+0301: a CGJ goes after the 30th mark. */
    char s[128];
    size_t n = 0;
    s[n++] = 'a';
    for (int i = 0; i < 40; i++) {
        s[n++] = (char)0xCC;
        s[n++] = (char)0x81;
    }
    curate_buf out;
    curate_buf_init(&out);
    assert_int_equal(curate_normalize(s, n, CURATE_NORM_NFC, &out, NULL), CURATE_OK);
    /* á (composed) + 29 marks + CGJ + 10 marks */
    assert_int_equal(out.len, 2 + 29 * 2 + 2 + 10 * 2);
    assert_memory_equal(out.data, "\xC3\xA1", 2);
    assert_memory_equal(out.data + 2 + 29 * 2, "\xCD\x8F", 2);
    curate_buf_release(&out);
}

static void test_casefold_named(void **state)
{
    (void)state;
    struct {
        const char *in, *want;
    } cases[] = {
        {"Stra\xC3\x9F" "e", "strasse"},
        {"HELLO World 123", "hello world 123"},
        {"\xCE\xA3\xCE\x91\xCE\xA3", "\xCF\x83\xCE\xB1\xCF\x83"},  /* ΣΑΣ -> σασ */
        {"\xC4\xB0", "i\xCC\x87"},                                   /* İ */
        {"\xEF\xAC\x81", "fi"},                                      /* ﬁ folds to fi */
        {"", ""},
    };
    curate_buf out;
    curate_buf_init(&out);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        curate_buf_reset(&out);
        assert_int_equal(curate_casefold(cases[i].in, strlen(cases[i].in), &out, NULL), CURATE_OK);
        assert_string_equal(out.data ? out.data : "", cases[i].want);
    }
    curate_buf_release(&out);
}

/* ---- removal of invisible characters ------------------------------------------ */

static void expect_strip(const char *in, size_t n, unsigned flags, const char *want,
                         size_t want_removed)
{
    curate_buf out;
    curate_buf_init(&out);
    size_t removed = 999;
    assert_int_equal(curate_strip_chars(in, n, flags, &out, &removed), CURATE_OK);
    assert_string_equal(out.data ? out.data : "", want);
    if (removed != want_removed)
        fail_msg("strip of \"%s\": removed %zu, want %zu", want, removed, want_removed);
    curate_buf_release(&out);
}

/* Literal inputs: the length comes from sizeof, so embedded NULs count. */
#define STRIP(lit, ...) expect_strip(lit, sizeof(lit) - 1, __VA_ARGS__)
#define BOTH (CURATE_STRIP_CONTROL | CURATE_STRIP_ZERO_WIDTH)
#define ZWJ "\xE2\x80\x8D"
#define ZWNJ "\xE2\x80\x8C"

static void test_strip_control(void **state)
{
    (void)state;
    STRIP("a\x01" "b\x7F" "c", BOTH, "abc", 2);
    STRIP("line1\r\nline2\rline3", BOTH, "line1\nline2\nline3", 1);
    STRIP("tab\there\nnext", BOTH, "tab\there\nnext", 0);
    STRIP("page\fbreak\vv", BOTH, "page\nbreak\nv", 0);
    STRIP("nul\0byte", BOTH, "nulbyte", 1);
    /* C1 controls go, NEL becomes a line break. */
    STRIP("x\xC2\x80y\xC2\x9F" "z\xC2\x85w", BOTH, "xyz\nw", 2);
    /* Off: untouched. */
    STRIP("a\x01" "b\r\n", CURATE_STRIP_ZERO_WIDTH, "a\x01" "b\r\n", 0);
    /* Non-control non-ASCII that shares a lead byte stays (NBSP, ©, ’). */
    STRIP("\xC2\xA0\xC2\xA9\xE2\x80\x99", BOTH, "\xC2\xA0\xC2\xA9\xE2\x80\x99", 0);
}

static void test_strip_zero_width(void **state)
{
    (void)state;
    /* ZWSP, soft hyphen, BOM, LRM, bidi override, word joiner, isolate. */
    STRIP("zero\xE2\x80\x8Bwidth", BOTH, "zerowidth", 1);
    STRIP("hy\xC2\xADphen", BOTH, "hyphen", 1);
    STRIP("\xEF\xBB\xBFstart", BOTH, "start", 1);
    STRIP("a\xE2\x80\x8E" "b\xE2\x80\xAE" "c\xE2\x81\xA0" "d\xE2\x81\xA6" "e", BOTH,
                 "abcde", 4);
    /* Joiners between ASCII letters are removed... */
    expect_strip("a" ZWJ "b", 5, BOTH, "ab", 1);
    expect_strip("a" ZWNJ "b", 5, BOTH, "ab", 1);
    /* ...kept inside an emoji sequence (man ZWJ woman)... */
    expect_strip("\xF0\x9F\x91\xA8" ZWJ "\xF0\x9F\x91\xA9", 11, BOTH,
                 "\xF0\x9F\x91\xA8" ZWJ "\xF0\x9F\x91\xA9", 0);
    /* ...and in Persian "mi-khaham" with ZWNJ. */
    expect_strip("\xD9\x85\xDB\x8C" ZWNJ "\xD8\xAE", 9, BOTH, "\xD9\x85\xDB\x8C" ZWNJ "\xD8\xAE", 0);
    /* At the start or end there is no pair to join. */
    expect_strip(ZWJ "\xF0\x9F\x91\xA8", 7, BOTH, "\xF0\x9F\x91\xA8", 1);
    expect_strip("\xF0\x9F\x91\xA8" ZWJ, 7, BOTH, "\xF0\x9F\x91\xA8", 1);
    /* A joiner next to a removed invisible character is not kept. */
    expect_strip("\xF0\x9F\x91\xA8" ZWJ "\xE2\x80\x8B\xF0\x9F\x91\xA9", 14, BOTH,
                 "\xF0\x9F\x91\xA8\xF0\x9F\x91\xA9", 2);
    /* Off: untouched. */
    STRIP("zero\xE2\x80\x8Bwidth", CURATE_STRIP_CONTROL, "zero\xE2\x80\x8Bwidth", 0);
}

/* ---- whitespace ---------------------------------------------------------------- */

static void expect_ws(const char *in, unsigned flags, const char *want)
{
    curate_buf out;
    curate_buf_init(&out);
    assert_int_equal(curate_normalize_whitespace(in, strlen(in), flags, &out), CURATE_OK);
    assert_string_equal(out.data ? out.data : "", want);
    assert_true(out.len <= strlen(in));
    curate_buf_release(&out);
}

static void test_whitespace(void **state)
{
    (void)state;
    const unsigned K = CURATE_WS_KEEP_NEWLINES;
    expect_ws("  hello   world  ", K, "hello world");
    expect_ws("a\t\tb", K, "a b");
    expect_ws("a\xC2\xA0\xC2\xA0" "b", K, "a b");                 /* NBSP */
    expect_ws("\xE3\x80\x80\xE4\xB8\xAD\xE3\x80\x80\xE6\x96\x87\xE3\x80\x80", K,
              "\xE4\xB8\xAD \xE6\x96\x87");                          /* ideographic space */
    expect_ws("a\xE2\x80\x83\xE2\x80\xAF" "b", K, "a b");           /* em space, NNBSP */
    expect_ws("line one  \r\nline two", K, "line one\nline two");   /* CRLF is one break */
    expect_ws("para one\r\n\r\npara two", K, "para one\n\npara two");
    expect_ws("para one\n \n\t\n\npara two", K, "para one\n\npara two");
    expect_ws("x\ry", K, "x\ny");                                   /* lone CR */
    expect_ws("a\xE2\x80\xA8" "b\xE2\x80\xA9" "c", K, "a\nb\n\nc"); /* LS, PS */
    expect_ws("a\xC2\x85" "b", K, "a\nb");                          /* NEL */
    expect_ws("\n\n  lead and trail \n\n", K, "lead and trail");
    expect_ws("a\n\nb  c", 0, "a b c");                             /* flag off */
    expect_ws(" \t\r\n ", K, "");
    expect_ws("", K, "");
    /* Characters that share a lead byte with whitespace are left alone. */
    expect_ws("\xE2\x80\x99quote\xE2\x80\x9D \xC2\xA9 \xE3\x81\x82", K,
              "\xE2\x80\x99quote\xE2\x80\x9D \xC2\xA9 \xE3\x81\x82");
    /* Zero-width space is not White_Space: it is the strip pass's job. */
    expect_ws("a\xE2\x80\x8B" "b", K, "a\xE2\x80\x8B" "b");
}


/* Reference whitespace normalizer written from the header's definition,
 * one code point at a time. */
static size_t ref_ws(const char *s, size_t n, int keep, char *out)
{
    size_t o = 0, i = 0;
    int in_ws = 0, prev_cr = 0;
    unsigned breaks = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(n - i), &cp);
        assert_true(k > 0);
        int space = cp == ' ' || cp == '\t' || cp == 0xA0 || cp == 0x1680 ||
                    (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F ||
                    cp == 0x3000;
        int brk = cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x85 ||
                  cp == 0x2028;
        int para = cp == 0x2029;
        if (space || brk || para) {
            in_ws = 1;
            if (brk && !(cp == '\n' && prev_cr))
                breaks++;
            if (para)
                breaks += 2;
        } else {
            if (in_ws && o > 0) {
                if (keep && breaks >= 2) {
                    out[o++] = '\n';
                    out[o++] = '\n';
                } else {
                    out[o++] = keep && breaks ? '\n' : ' ';
                }
            }
            in_ws = 0;
            breaks = 0;
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
        }
        prev_cr = cp == '\r';
        i += (size_t)k;
    }
    return o;
}

/* Random texts built from pieces that stress the 8-byte scanners: the
 * library against the reference, and the scan functions' promises. */
static void test_scans_random(void **state)
{
    (void)state;
    static const char *pieces[] = {
        "word", "a", "longerword", " ", " ", " ", "\n", "\n\n", "\n\n\n", "  ", "\t",
        "\r\n", "\r", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA9", "\xC3\xA9",
        "\xE2\x80\x99", "\xE2\x80\x8B", "\x01", "\x7F", "\xC2\x85", "\xE2\x80\x8D",
        "\xF0\x9F\x98\x80", ".", "x", "\xD8\x9C",
    };
    const size_t np = sizeof pieces / sizeof pieces[0];
    char s[512], want[512];
    curate_buf out;
    curate_buf_init(&out);
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = 0, count = (size_t)(rnd() % 40);
        /* Mostly words and single spaces, like clean text, so the scans
         * often succeed for a while before they stop. */
        for (size_t k = 0; k < count; k++) {
            const char *pc = rnd() % 3 ? (k % 2 ? " " : "word") : pieces[rnd() % np];
            size_t l = strlen(pc);
            memcpy(s + n, pc, l);
            n += l;
        }
        for (int keep = 0; keep < 2; keep++) {
            unsigned flags = keep ? CURATE_WS_KEEP_NEWLINES : 0;
            size_t wn = ref_ws(s, n, keep, want);
            curate_buf_reset(&out);
            assert_int_equal(curate_normalize_whitespace(s, n, flags, &out), CURATE_OK);
            if (out.len != wn || memcmp(out.data, want, wn) != 0)
                fail_msg("iteration %d keep %d: whitespace differs from the reference", iter, keep);
            size_t k = curate_whitespace_scan(s, n, flags);
            assert_true(k <= n);
            if (k == n)
                assert_true(wn == n && memcmp(want, s, n) == 0);
            else
                assert_true(wn >= k && memcmp(want, s, k) == 0);
        }
        unsigned sf = (unsigned)(rnd() % 4);
        size_t k = curate_strip_scan(s, n, sf);
        curate_buf_reset(&out);
        assert_int_equal(curate_strip_chars(s, n, sf, &out, NULL), CURATE_OK);
        assert_true(out.len >= k && (k == 0 || memcmp(out.data, s, k) == 0));
        if (k == n)
            assert_true(out.len == n && (n == 0 || memcmp(out.data, s, n) == 0));
    }
    curate_buf_release(&out);
}

static void test_word_count(void **state)
{
    (void)state;
    assert_int_equal(curate_word_count("", 0), 0);
    assert_int_equal(curate_word_count("   ", 3), 0);
    assert_int_equal(curate_word_count("one", 3), 1);
    assert_int_equal(curate_word_count(" one  two\tthree\n", 16), 3);
    const char s[] = "a\xC2\xA0" "b\xE3\x80\x80" "c\xE2\x80\x8B" "d";
    /* NBSP and ideographic space separate, ZWSP does not. */
    assert_int_equal(curate_word_count(s, sizeof s - 1), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_check_table),
        cmocka_unit_test(test_utf8_check_random),
        cmocka_unit_test(test_is_ascii),
        cmocka_unit_test(test_utf8_repair_golden),
        cmocka_unit_test(test_utf8_repair_valid_untouched),
        cmocka_unit_test(test_utf8_length),
        cmocka_unit_test(test_normalize_golden),
        cmocka_unit_test(test_normalize_named),
        cmocka_unit_test(test_normalize_invalid),
        cmocka_unit_test(test_normalize_vs_utf8proc),
        cmocka_unit_test(test_normalize_stream_safe),
        cmocka_unit_test(test_casefold_named),
        cmocka_unit_test(test_strip_control),
        cmocka_unit_test(test_strip_zero_width),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_scans_random),
        cmocka_unit_test(test_word_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
