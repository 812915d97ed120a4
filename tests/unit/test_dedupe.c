/*
 * test_dedupe.c - normalized keys, the exact-duplicate set and the
 * near-duplicate clustering.
 *
 * Keys are checked against the composition of the curate/text.h
 * functions they are specified by (the fused ASCII pass must give the same
 * bytes); the exact set against a brute-force list; the clustering against
 * hand-built cases whose similarities are far from the threshold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/dedupe.h"
#include "curate/text.h"

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The reference key: the text.h functions in the documented order. */
static void reference_key(curate_dedupe_norm norm, const char *s, size_t n, curate_buf *out)
{
    curate_buf a, b;
    curate_buf_init(&a);
    curate_buf_init(&b);
    const char *cur = s;
    size_t len = n;
    if (norm >= CURATE_DEDUPE_NORM_NFKC) {
        assert_int_equal(curate_normalize(cur, len, CURATE_NORM_NFKC, &a, NULL), CURATE_OK);
        cur = a.data ? a.data : "";
        len = a.len;
    }
    if (norm == CURATE_DEDUPE_NORM_CASEFOLD) {
        assert_int_equal(curate_casefold(cur, len, &b, NULL), CURATE_OK);
        cur = b.data ? b.data : "";
        len = b.len;
    }
    curate_buf_reset(out);
    assert_int_equal(curate_normalize_whitespace(cur, len, 0, out), CURATE_OK);
    curate_buf_release(&a);
    curate_buf_release(&b);
}

static void test_key_levels(void **state)
{
    (void)state;
    curate_dedupe_key k;
    curate_dedupe_key_init(&k);
    const char *key;
    size_t len;
    const char *t = "  Hello,\t\tWORLD \n\n again ";
    /* bytes: the text itself, no copy */
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_BYTES, t, strlen(t), &key,
                                            &len, NULL), CURATE_OK);
    assert_ptr_equal(key, t);
    assert_int_equal(len, strlen(t));
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_WHITESPACE, t, strlen(t),
                                            &key, &len, NULL), CURATE_OK);
    assert_int_equal(len, strlen("Hello, WORLD again"));
    assert_memory_equal(key, "Hello, WORLD again", len);
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_NFKC, t, strlen(t), &key,
                                            &len, NULL), CURATE_OK);
    assert_memory_equal(key, "Hello, WORLD again", len);
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_CASEFOLD, t, strlen(t), &key,
                                            &len, NULL), CURATE_OK);
    assert_memory_equal(key, "hello, world again", len);
    /* Only whitespace, and empty. */
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_CASEFOLD, " \t\n", 3, &key,
                                            &len, NULL), CURATE_OK);
    assert_int_equal(len, 0);
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_WHITESPACE, "", 0, &key, &len,
                                            NULL), CURATE_OK);
    assert_int_equal(len, 0);

    /* Unicode: full-width letters, a ligature, NBSP and ideographic
     * space, German sharp s, Greek final sigma. */
    const char *u = "\xEF\xBC\xA1\xEF\xBC\xA2\xC2\xA0\xEF\xAC\x81ne\xE3\x80\x80Stra\xC3\x9F" "e "
                    "\xCE\xA3\xCE\xBF\xCF\x86\xCE\xAF\xCE\xB1\xCF\x82";
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_CASEFOLD, u, strlen(u), &key,
                                            &len, NULL), CURATE_OK);
    const char *want = "ab fine strasse \xCF\x83\xCE\xBF\xCF\x86\xCE\xAF\xCE\xB1\xCF\x83";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(key, want, len);
    /* whitespace level keeps the full-width letters and the ligature */
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_WHITESPACE, u, strlen(u),
                                            &key, &len, NULL), CURATE_OK);
    assert_memory_equal(key, "\xEF\xBC\xA1\xEF\xBC\xA2 \xEF\xAC\x81ne Stra\xC3\x9F" "e ", 19);

    /* Invalid UTF-8: an error with the offset, except at the bytes level. */
    curate_error err;
    curate_error_clear(&err);
    const char bad[] = "ok \xC3\x28 no";
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_WHITESPACE, bad,
                                            sizeof bad - 1, &key, &len, &err), CURATE_ERR_UTF8);
    assert_int_equal(err.code, CURATE_ERR_UTF8);
    assert_true(err.has_offset);
    assert_int_equal(err.offset, 3);
    assert_int_equal(curate_dedupe_key_make(&k, CURATE_DEDUPE_NORM_BYTES, bad, sizeof bad - 1,
                                            &key, &len, &err), CURATE_OK);
    assert_int_equal(curate_dedupe_key_make(&k, (curate_dedupe_norm)9, "x", 1, &key, &len, &err),
                     CURATE_ERR_INVALID);

    assert_string_equal(curate_dedupe_norm_name(CURATE_DEDUPE_NORM_CASEFOLD), "casefold");
    assert_string_equal(curate_dedupe_norm_name(CURATE_DEDUPE_NORM_BYTES), "bytes");
    assert_null(curate_dedupe_norm_name((curate_dedupe_norm)9));
    curate_dedupe_key_release(&k);
}

/* The fused ASCII pass agrees with the reference on random ASCII (all
 * 128 code points, whitespace-heavy), on word-like text, and on texts with
 * one non-ASCII character dropped in (which take the Unicode path). */
static void test_key_matches_reference(void **state)
{
    (void)state;
    curate_dedupe_key k;
    curate_dedupe_key_init(&k);
    curate_buf ref;
    curate_buf_init(&ref);
    char text[300];
    for (int iter = 0; iter < 6000; iter++) {
        size_t n = (size_t)(rng() % 200);
        if (iter % 2) {
            /* any ASCII, whitespace-heavy: runs of whitespace everywhere */
            for (size_t i = 0; i < n; i++) {
                unsigned r = (unsigned)(rng() % 10);
                text[i] = r < 3 ? " \t\n\r\v\f"[rng() % 6] : (char)(1 + rng() % 127);
            }
        } else {
            /* running text: mixed-case words, mostly single spaces, so the
             * 16-byte blocks of the SIMD pass (where built) are exercised,
             * with a whitespace run now and then at any block offset */
            for (size_t i = 0; i < n; i++) {
                unsigned r = (unsigned)(rng() % 100);
                text[i] = r < 15   ? ' '
                          : r < 17 ? " \t\n\r\v\f"[rng() % 6]
                          : r < 40 ? (char)('A' + rng() % 26)
                          : r < 95 ? (char)('a' + rng() % 26)
                                   : (char)(33 + rng() % 32);
                if (text[i] == ' ' && i && text[i - 1] == ' ' && rng() % 4)
                    text[i] = 'x';
            }
        }
        size_t tn = n;
        if (iter % 3 == 0 && n > 0) {
            /* insert U+00C9 (E acute) somewhere */
            size_t at = (size_t)(rng() % n);
            memmove(text + at + 2, text + at, n - at);
            text[at] = (char)0xC3;
            text[at + 1] = (char)0x89;
            tn = n + 2;
        }
        for (int lv = CURATE_DEDUPE_NORM_WHITESPACE; lv <= CURATE_DEDUPE_NORM_CASEFOLD; lv++) {
            const char *key;
            size_t len;
            assert_int_equal(curate_dedupe_key_make(&k, (curate_dedupe_norm)lv, text, tn, &key,
                                                    &len, NULL), CURATE_OK);
            reference_key((curate_dedupe_norm)lv, text, tn, &ref);
            assert_int_equal(len, ref.len);
            if (len)
                assert_memory_equal(key, ref.data, len);
        }
    }
    curate_buf_release(&ref);
    curate_dedupe_key_release(&k);
}

static void test_exact_set(void **state)
{
    (void)state;
    curate_error err;
    curate_dedupe_exact *s = curate_dedupe_exact_init(&err);
    assert_non_null(s);
    enum { N = 300000 };
    /* Distinct hashes, each added twice (second time must be found with the
     * first ref); the brute-force truth is "i-th distinct has ref i". */
    for (uint64_t i = 0; i < N; i++) {
        curate_h128 h = curate_hash128(&i, sizeof i, 0);
        int found = -1;
        uint64_t first = 0;
        assert_int_equal(curate_dedupe_exact_add(s, h, i, &found, &first), CURATE_OK);
        assert_int_equal(found, 0);
        if (i % 3 == 0) {
            /* an immediate repeat */
            assert_int_equal(curate_dedupe_exact_add(s, h, 999999999, &found, &first), CURATE_OK);
            assert_int_equal(found, 1);
            assert_int_equal(first, i);
        }
    }
    assert_int_equal(curate_dedupe_exact_count(s), N);
    /* Every hash is still found after all the index rebuilds. */
    for (uint64_t i = 0; i < N; i += 7) {
        curate_h128 h = curate_hash128(&i, sizeof i, 0);
        int found = 0;
        uint64_t first = 0;
        assert_int_equal(curate_dedupe_exact_add(s, h, 0, &found, &first), CURATE_OK);
        assert_int_equal(found, 1);
        assert_int_equal(first, i);
    }
    /* Hashes equal in one half only are different. */
    curate_h128 a = { 12345, 1 }, b = { 12345, 2 };
    int found;
    assert_int_equal(curate_dedupe_exact_add(s, a, 1, &found, NULL), CURATE_OK);
    assert_int_equal(found, 0);
    assert_int_equal(curate_dedupe_exact_add(s, b, 2, &found, NULL), CURATE_OK);
    assert_int_equal(found, 0);
    assert_int_equal(curate_dedupe_exact_count(s), N + 2);
    /* Memory: 24-byte entries (capacity rounds to a power of two) plus
     * the index; per distinct hash at most 24 * cap / n + 11.4. */
    size_t mem = curate_dedupe_exact_memory(s);
    double per = (double)mem / (N + 2);
    print_message("exact set: %zu bytes allocated for %d hashes (%.1f bytes each)\n", mem,
                  N + 2, per);
    assert_true(per < 24.0 * 524288 / (N + 2) + 11.5);
    curate_dedupe_exact_free(s);
    curate_dedupe_exact_free(NULL);
}

/* ---- near ----------------------------------------------------------------- */

static char words[2000][10];

static void make_words(void)
{
    for (int i = 0; i < 2000; i++) {
        int len = 3 + (int)(rng() % 6);
        for (int k = 0; k < len; k++)
            words[i][k] = (char)('a' + rng() % 26);
        words[i][len] = 0;
    }
}

/* A text of n random words from the vocabulary. */
static size_t random_text(char *out, size_t cap, int n)
{
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const char *w = words[rng() % 2000];
        size_t l = strlen(w);
        assert_true(o + l + 2 < cap);
        if (i)
            out[o++] = ' ';
        memcpy(out + o, w, l);
        o += l;
    }
    out[o] = 0;
    return o;
}

/* Replace every k-th word of src (k >= 10 keeps J(3-grams) above ~0.5). */
static void mutate(const char *src, char *dst, int every)
{
    int wi = 0;
    size_t o = 0;
    const char *p = src;
    while (*p) {
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        if (wi % every == every - 1) {
            memcpy(dst + o, "zzqx", 4);
            o += 4;
        } else {
            memcpy(dst + o, w, (size_t)(p - w));
            o += (size_t)(p - w);
        }
        if (*p)
            dst[o++] = *p++;
        wi++;
    }
    dst[o] = 0;
}

static void test_near_clusters(void **state)
{
    (void)state;
    curate_dedupe_near_opts o;
    curate_dedupe_near_opts_default(&o);
    curate_error err;
    curate_dedupe_near *d = curate_dedupe_near_init(&o, &err);
    assert_non_null(d);
    unsigned b, r;
    curate_dedupe_near_banding(d, &b, &r);
    assert_true(b * r <= o.minhash.perm && b > 0 && r > 0);

    static char a[8192], a2[8192], c[8192], e[8192];
    random_text(a, sizeof a, 300);
    mutate(a, a2, 25);            /* 4% substituted: well above the threshold */
    random_text(c, sizeof c, 300); /* unrelated */
    curate_dedupe_match m;
    assert_int_equal(curate_dedupe_near_add(d, a, strlen(a), 100, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEW);
    assert_int_equal(m.first_ref, 100);
    assert_int_equal(curate_dedupe_near_add(d, c, strlen(c), 101, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEW);
    assert_int_equal(curate_dedupe_near_add(d, a2, strlen(a2), 102, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEAR);
    assert_int_equal(m.first_ref, 100);
    assert_int_equal(m.nearest_ref, 100);
    assert_true(m.similarity >= o.threshold && m.similarity < 1.0);
    /* An exact repeat of the near duplicate: EXACT, cluster of a. */
    assert_int_equal(curate_dedupe_near_add(d, a2, strlen(a2), 103, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_EXACT);
    assert_int_equal(m.first_ref, 100);
    assert_int_equal(m.nearest_ref, 102);
    assert_true(m.similarity == 1.0);

    /* Chaining: e is a2 with another 5% substituted; whether or not it is
     * near a itself, it joins a's cluster (through a2). */
    mutate(a2, e, 20);
    assert_int_equal(curate_dedupe_near_add(d, e, strlen(e), 104, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEAR);
    assert_int_equal(m.first_ref, 100);

    /* Empty keys: the first is new, the next one an exact repeat. */
    assert_int_equal(curate_dedupe_near_add(d, "", 0, 105, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEW);
    assert_int_equal(curate_dedupe_near_add(d, "", 0, 106, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_EXACT);
    assert_int_equal(m.first_ref, 105);

    curate_dedupe_near_stats st;
    curate_dedupe_near_get_stats(d, &st);
    assert_int_equal(st.texts, 7);
    assert_int_equal(st.exact, 2);
    assert_int_equal(st.near, 2);
    assert_true(st.candidates >= 2);
    assert_true(curate_dedupe_near_memory(d) > 0);
    curate_dedupe_near_free(d);
}

/* Two clusters started apart, then a text near both merges them: the
 * merged cluster's first member is the earliest. */
static void test_near_merge(void **state)
{
    (void)state;
    curate_dedupe_near_opts o;
    curate_dedupe_near_opts_default(&o);
    o.threshold = 0.5;
    /* Many short bands: a pair at J = 2/3 is a candidate with probability
     * 1 - (1 - (2/3)^3)^42 > 0.99999, so the test does not depend on luck. */
    o.bands = 42;
    o.rows = 3;
    curate_error err;
    curate_dedupe_near *d = curate_dedupe_near_init(&o, &err);
    assert_non_null(d);
    /* x = P Q and y = Q R, with P, Q, R 200 random words each: J(x, y) of
     * word 3-grams ~ 1/3, apart. */
    static char P[4096], Q[4096], R[4096], x[9000], y[9000], z[13000];
    random_text(P, sizeof P, 200);
    random_text(Q, sizeof Q, 200);
    random_text(R, sizeof R, 200);
    snprintf(x, sizeof x, "%s %s", P, Q);
    snprintf(y, sizeof y, "%s %s", Q, R);
    curate_dedupe_match m;
    assert_int_equal(curate_dedupe_near_add(d, x, strlen(x), 1, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEW);
    assert_int_equal(curate_dedupe_near_add(d, y, strlen(y), 2, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEW);
    /* z = P Q R: J(z, x) = J(z, y) ~ 2/3, both above the threshold */
    snprintf(z, sizeof z, "%s %s %s", P, Q, R);
    assert_int_equal(curate_dedupe_near_add(d, z, strlen(z), 3, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_NEAR);
    assert_int_equal(m.first_ref, 1);
    curate_dedupe_near_stats st;
    curate_dedupe_near_get_stats(d, &st);
    assert_int_equal(st.clusters_merged, 1);
    /* y's exact repeat now belongs to the merged cluster: first member 1. */
    assert_int_equal(curate_dedupe_near_add(d, y, strlen(y), 4, &m, &err), CURATE_OK);
    assert_int_equal(m.verdict, CURATE_DEDUPE_EXACT);
    assert_int_equal(m.first_ref, 1);
    assert_int_equal(m.nearest_ref, 2);
    curate_dedupe_near_free(d);
}

/* The same stream and seed give the same verdicts; options are checked. */
static void test_near_determinism_and_options(void **state)
{
    (void)state;
    curate_error err;
    curate_dedupe_near_opts o;
    curate_dedupe_near_opts_default(&o);
    o.minhash.seed = 7;
    static char texts[60][4096];
    for (int i = 0; i < 60; i++) {
        if (i % 4 == 3)
            mutate(texts[i - 3], texts[i], 8 + (int)(rng() % 20));
        else
            random_text(texts[i], sizeof texts[i], 150);
    }
    curate_dedupe_match m1[60], m2[60];
    for (int run = 0; run < 2; run++) {
        curate_dedupe_near *d = curate_dedupe_near_init(&o, &err);
        assert_non_null(d);
        for (int i = 0; i < 60; i++)
            assert_int_equal(curate_dedupe_near_add(d, texts[i], strlen(texts[i]), (uint64_t)i,
                                                    run ? &m2[i] : &m1[i], &err), CURATE_OK);
        curate_dedupe_near_free(d);
    }
    for (int i = 0; i < 60; i++) {
        assert_int_equal(m1[i].verdict, m2[i].verdict);
        assert_int_equal(m1[i].first_ref, m2[i].first_ref);
        assert_true(m1[i].similarity == m2[i].similarity);
    }

    /* Given banding is used as given. */
    o.bands = 16;
    o.rows = 8;
    curate_dedupe_near *d = curate_dedupe_near_init(&o, &err);
    assert_non_null(d);
    unsigned b, r;
    curate_dedupe_near_banding(d, &b, &r);
    assert_true(b == 16 && r == 8);
    curate_dedupe_near_free(d);
    o.rows = 9; /* 144 > 128 */
    assert_null(curate_dedupe_near_init(&o, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    o.rows = 0; /* bands without rows */
    assert_null(curate_dedupe_near_init(&o, &err));
    o.bands = 0;
    o.threshold = 0.0;
    assert_null(curate_dedupe_near_init(&o, &err));
    o.threshold = 1.5;
    assert_null(curate_dedupe_near_init(&o, &err));
    o.threshold = 1.0; /* allowed: only identical signatures */
    d = curate_dedupe_near_init(&o, &err);
    assert_non_null(d);
    curate_dedupe_near_free(d);
    curate_dedupe_near_free(NULL);
}

int main(void)
{
    make_words();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_levels),
        cmocka_unit_test(test_key_matches_reference),
        cmocka_unit_test(test_exact_set),
        cmocka_unit_test(test_near_clusters),
        cmocka_unit_test(test_near_merge),
        cmocka_unit_test(test_near_determinism_and_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
