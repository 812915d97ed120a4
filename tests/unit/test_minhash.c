/*
 * test_minhash.c - shingling, MinHash estimates against exact Jaccard,
 * the choice of LSH bands, and the LSH index.
 *
 * The exact Jaccard similarities are computed here from the shingle
 * strings themselves (split, join, sort, intersect), independently of the
 * library's hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "curate/minhash.h"
#include "minhash_internal.h"

/* ---- a deterministic generator of English-like text --------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static double rng_unit(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}

#define VOCAB 5000
static char vocab[VOCAB][12];

static void make_vocab(void)
{
    rng_state = 0x1234567;
    for (int i = 0; i < VOCAB; i++) {
        int len = 3 + (int)(rng() % 7);
        for (int k = 0; k < len; k++)
            vocab[i][k] = (char)('a' + rng() % 26);
        vocab[i][len] = 0;
    }
}

/* Words are vocabulary indices; texts are built from them. */
typedef struct { int w[1200]; int n; } words_t;

static void random_doc(words_t *d, int n)
{
    d->n = n;
    for (int i = 0; i < n; i++)
        d->w[i] = (int)(rng() % VOCAB);
}

/* Copy src into dst with about frac of the words edited (substituted,
 * inserted after, or deleted, in equal shares). */
static void edit_doc(const words_t *src, words_t *dst, double frac)
{
    dst->n = 0;
    for (int i = 0; i < src->n; i++) {
        if (rng_unit() < frac) {
            int op = (int)(rng() % 3);
            if (op == 0) {
                dst->w[dst->n++] = (int)(rng() % VOCAB);
            } else if (op == 1) {
                dst->w[dst->n++] = src->w[i];
                if (dst->n < 1200)
                    dst->w[dst->n++] = (int)(rng() % VOCAB);
            } /* op 2: deleted */
        } else {
            dst->w[dst->n++] = src->w[i];
        }
        if (dst->n >= 1199)
            break;
    }
}

static size_t render(const words_t *d, char *out, size_t cap)
{
    size_t o = 0;
    for (int i = 0; i < d->n; i++) {
        size_t l = strlen(vocab[d->w[i]]);
        assert_true(o + l + 2 < cap);
        if (i)
            out[o++] = ' ';
        memcpy(out + o, vocab[d->w[i]], l);
        o += l;
    }
    out[o] = 0;
    return o;
}

/* ---- exact Jaccard from shingle strings ----------------------------------- */

typedef struct { char **s; size_t n; } strset;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Word n-grams of an ASCII text split on single spaces (our renderer's
 * output), or character n-grams of an ASCII text; sorted and unique. */
static strset shingle_set(const char *text, int ngram, int chars)
{
    strset st = { NULL, 0 };
    size_t len = strlen(text);
    if (chars) {
        size_t cnt = len >= (size_t)ngram ? len - (size_t)ngram + 1 : (len ? 1 : 0);
        st.s = calloc(cnt + 1, sizeof(char *));
        for (size_t i = 0; i < cnt; i++) {
            size_t l = len >= (size_t)ngram ? (size_t)ngram : len;
            st.s[i] = strndup(text + i, l);
        }
        st.n = cnt;
    } else {
        /* word starts */
        size_t nw = 0, cap = 16;
        const char **ws = malloc(cap * sizeof *ws);
        size_t *wl = malloc(cap * sizeof *wl);
        const char *p = text;
        while (*p) {
            while (*p == ' ')
                p++;
            if (!*p)
                break;
            const char *w = p;
            while (*p && *p != ' ')
                p++;
            if (nw == cap) {
                cap *= 2;
                ws = realloc(ws, cap * sizeof *ws);
                wl = realloc(wl, cap * sizeof *wl);
            }
            ws[nw] = w;
            wl[nw] = (size_t)(p - w);
            nw++;
        }
        size_t cnt = nw >= (size_t)ngram ? nw - (size_t)ngram + 1 : (nw ? 1 : 0);
        st.s = calloc(cnt + 1, sizeof(char *));
        for (size_t i = 0; i < cnt; i++) {
            size_t last = i + (size_t)ngram - 1 < nw ? i + (size_t)ngram - 1 : nw - 1;
            size_t l = (size_t)(ws[last] + wl[last] - ws[i]);
            st.s[i] = strndup(ws[i], l);
        }
        st.n = cnt;
        free(ws);
        free(wl);
    }
    qsort(st.s, st.n, sizeof(char *), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < st.n; i++) {
        if (u && strcmp(st.s[u - 1], st.s[i]) == 0) {
            free(st.s[i]);
            continue;
        }
        st.s[u++] = st.s[i];
    }
    st.n = u;
    return st;
}

static void strset_free(strset *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->s[i]);
    free(st->s);
}

static double exact_jaccard(const strset *a, const strset *b)
{
    size_t i = 0, j = 0, inter = 0;
    while (i < a->n && j < b->n) {
        int c = strcmp(a->s[i], b->s[j]);
        if (c == 0) {
            inter++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    size_t uni = a->n + b->n - inter;
    return uni ? (double)inter / (double)uni : 1.0;
}

/* ---- tests ---------------------------------------------------------------- */

static curate_minhash *signer(curate_shingle_kind kind, unsigned ngram, unsigned perm,
                              uint64_t seed)
{
    curate_minhash_opts o = { kind, ngram, perm, seed };
    curate_error err;
    curate_minhash *mh = curate_minhash_init(&o, &err);
    assert_non_null(mh);
    return mh;
}

static size_t n_shingles(curate_minhash *mh, const char *s)
{
    const uint32_t *h;
    size_t n;
    assert_int_equal(curate_minhash_shingles(mh, s, strlen(s), &h, &n), CURATE_OK);
    return n;
}

static void test_shingle_counts(void **state)
{
    (void)state;
    curate_minhash *w3 = signer(CURATE_SHINGLE_WORD, 3, 16, 1);
    assert_int_equal(n_shingles(w3, "a b c d e"), 3);
    assert_int_equal(n_shingles(w3, "  a b c d e \n"), 3);
    assert_int_equal(n_shingles(w3, "a b"), 1);       /* fewer words than n */
    assert_int_equal(n_shingles(w3, "word"), 1);
    assert_int_equal(n_shingles(w3, ""), 0);
    assert_int_equal(n_shingles(w3, " \t\r\n "), 0);
    /* NBSP, U+3000 and U+2003 separate words; U+00E9 does not. */
    assert_int_equal(n_shingles(w3, "caf\xC3\xA9\xC2\xA0" "b\xE3\x80\x80" "c\xE2\x80\x83" "d"), 2);
    curate_minhash_free(w3);

    curate_minhash *c3 = signer(CURATE_SHINGLE_CHAR, 3, 16, 1);
    assert_int_equal(n_shingles(c3, "abcde"), 3);
    assert_int_equal(n_shingles(c3, "h\xC3\xA9llo"), 3);   /* 5 code points */
    assert_int_equal(n_shingles(c3, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"), 1); /* 3 CJK */
    assert_int_equal(n_shingles(c3, "ab"), 1);
    assert_int_equal(n_shingles(c3, ""), 0);
    /* An invalid byte counts as one character. */
    assert_int_equal(n_shingles(c3, "ab\xFF" "cd"), 3);
    curate_minhash_free(c3);
}

static void test_shingle_hash_properties(void **state)
{
    (void)state;
    curate_minhash *w2 = signer(CURATE_SHINGLE_WORD, 2, 16, 7);
    const uint32_t *h;
    size_t n;
    uint32_t x[4], y[4];
    /* Whitespace between words does not matter in word mode. */
    assert_int_equal(curate_minhash_shingles(w2, "the cat sat", 11, &h, &n), CURATE_OK);
    assert_int_equal(n, 2);
    memcpy(x, h, sizeof(uint32_t) * 2);
    assert_int_equal(curate_minhash_shingles(w2, "the\t cat\n\nsat ", 14, &h, &n), CURATE_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(x, h, sizeof(uint32_t) * 2);
    /* Order does: "cat the" is not "the cat". */
    assert_int_equal(curate_minhash_shingles(w2, "cat the", 7, &h, &n), CURATE_OK);
    assert_true(h[0] != x[0]);
    /* A repeated shingle hashes the same. */
    assert_int_equal(curate_minhash_shingles(w2, "a b a b", 7, &h, &n), CURATE_OK);
    assert_int_equal(n, 3);
    assert_true(h[0] == h[2] && h[0] != h[1]);
    curate_minhash_free(w2);

    /* The seed changes the hashes. */
    curate_minhash *s1 = signer(CURATE_SHINGLE_WORD, 1, 16, 1);
    curate_minhash *s2 = signer(CURATE_SHINGLE_WORD, 1, 16, 2);
    assert_int_equal(curate_minhash_shingles(s1, "word", 4, &h, &n), CURATE_OK);
    x[0] = h[0];
    assert_int_equal(curate_minhash_shingles(s2, "word", 4, &h, &n), CURATE_OK);
    y[0] = h[0];
    assert_true(x[0] != y[0]);
    curate_minhash_free(s1);
    curate_minhash_free(s2);
}

static void test_signature_basics(void **state)
{
    (void)state;
    curate_minhash *mh = signer(CURATE_SHINGLE_WORD, 3, 100, 42);
    uint32_t a[100], b[100], c[100];
    size_t n;
    const char *t = "one two three four five six seven";
    assert_int_equal(curate_minhash_sign(mh, t, strlen(t), a, &n), CURATE_OK);
    assert_int_equal(n, 5);
    /* Same text, same signature; sign_keys agrees with sign. */
    assert_int_equal(curate_minhash_sign(mh, t, strlen(t), b, NULL), CURATE_OK);
    assert_memory_equal(a, b, sizeof a);
    const uint32_t *h;
    assert_int_equal(curate_minhash_shingles(mh, t, strlen(t), &h, &n), CURATE_OK);
    curate_minhash_sign_keys(mh, h, n, c);
    assert_memory_equal(a, c, sizeof a);
    assert_true(curate_minhash_similarity(a, b, 100) == 1.0);
    /* The empty set: every slot UINT32_MAX. */
    assert_int_equal(curate_minhash_sign(mh, "", 0, c, &n), CURATE_OK);
    assert_int_equal(n, 0);
    for (int i = 0; i < 100; i++)
        assert_true(c[i] == UINT32_MAX);
    /* A fresh signer with the same options gives the same signature
     * (deterministic for a seed); another seed gives another one. */
    curate_minhash *same = signer(CURATE_SHINGLE_WORD, 3, 100, 42);
    curate_minhash *other = signer(CURATE_SHINGLE_WORD, 3, 100, 43);
    assert_int_equal(curate_minhash_sign(same, t, strlen(t), b, NULL), CURATE_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(curate_minhash_sign(other, t, strlen(t), b, NULL), CURATE_OK);
    assert_true(memcmp(a, b, sizeof a) != 0);
    curate_minhash_free(same);
    curate_minhash_free(other);
    curate_minhash_free(mh);

    /* perm not a multiple of 8 exercises the remainder loop: a signer with
     * 13 slots agrees with the first 13 of one with 16 (same seed stream). */
    curate_minhash *m13 = signer(CURATE_SHINGLE_CHAR, 4, 13, 9);
    curate_minhash *m16 = signer(CURATE_SHINGLE_CHAR, 4, 16, 9);
    uint32_t s13[13], s16[16];
    assert_int_equal(curate_minhash_sign(m13, t, strlen(t), s13, NULL), CURATE_OK);
    assert_int_equal(curate_minhash_sign(m16, t, strlen(t), s16, NULL), CURATE_OK);
    assert_memory_equal(s13, s16, sizeof s13);
    curate_minhash_free(m13);
    curate_minhash_free(m16);
}

static void test_bad_options(void **state)
{
    (void)state;
    curate_error err;
    curate_minhash_opts o = { CURATE_SHINGLE_WORD, 0, 128, 0 };
    assert_null(curate_minhash_init(&o, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    o.ngram = CURATE_MINHASH_MAX_NGRAM + 1;
    assert_null(curate_minhash_init(&o, &err));
    o.ngram = 5;
    o.perm = 0;
    assert_null(curate_minhash_init(&o, &err));
    o.perm = CURATE_MINHASH_MAX_PERM + 1;
    assert_null(curate_minhash_init(&o, &err));
    o.perm = 128;
    o.kind = (curate_shingle_kind)7;
    assert_null(curate_minhash_init(&o, &err));
    curate_minhash_free(NULL);
    curate_minhash_opts_default(&o);
    curate_minhash *mh = curate_minhash_init(&o, &err);
    assert_non_null(mh);
    curate_minhash_free(mh);
}

/*
 * The estimate against exact Jaccard, over generated pairs spanning
 * similarities from about 0.05 to 1.  Tolerance: each estimate within
 * 3 sigma = 3 sqrt(J (1 - J) / P) of the exact value (plus 1/P for the
 * discreteness of a share of P slots) for at least 98% of the pairs (a
 * normal estimator would give 99.7%); the mean error within 3 standard
 * errors of 0 (no bias); and the mean squared error divided by the
 * binomial variance between 0.75 and 1.25 (permutations behaving as
 * independent: correlated ones would inflate it).
 */
static void check_estimates(curate_shingle_kind kind, unsigned ngram, unsigned P, int pairs,
                            double jlow)
{
    uint32_t *sa = malloc(P * sizeof *sa), *sb = malloc(P * sizeof *sb);
    static words_t da, db;
    static char ta[16384], tb[16384];
    int within = 0;
    double sum_err = 0, sum_var = 0, sum_z2 = 0, jmin = 1, jmax = 0;
    int nz = 0;
    for (int p = 0; p < pairs; p++) {
        random_doc(&da, 150 + (int)(rng() % 350));
        /* edit rates 0 .. 0.95 give J from 1 down to near 0 */
        double frac = 0.95 * (double)p / (double)pairs;
        edit_doc(&da, &db, frac);
        render(&da, ta, sizeof ta);
        render(&db, tb, sizeof tb);
        strset A = shingle_set(ta, (int)ngram, kind == CURATE_SHINGLE_CHAR);
        strset B = shingle_set(tb, (int)ngram, kind == CURATE_SHINGLE_CHAR);
        double J = exact_jaccard(&A, &B);
        strset_free(&A);
        strset_free(&B);
        /* A fresh seed per pair: with one fixed set of permutations the
         * pairs' errors would be correlated through shingles they share
         * (common character n-grams), and the mean test would measure
         * that seed rather than the scheme. */
        curate_minhash *mh = signer(kind, ngram, P, 2024 + (uint64_t)p);
        assert_int_equal(curate_minhash_sign(mh, ta, strlen(ta), sa, NULL), CURATE_OK);
        assert_int_equal(curate_minhash_sign(mh, tb, strlen(tb), sb, NULL), CURATE_OK);
        curate_minhash_free(mh);
        double est = curate_minhash_similarity(sa, sb, P);
        double var = J * (1 - J) / P;
        double tol = 3 * sqrt(var) + 1.0 / P;
        within += fabs(est - J) <= tol;
        sum_err += est - J;
        sum_var += var;
        if (var > 0) {
            sum_z2 += (est - J) * (est - J) / var;
            nz++;
        } else {
            assert_true(est == J); /* identical sets: every slot equal */
        }
        jmin = J < jmin ? J : jmin;
        jmax = J > jmax ? J : jmax;
    }
    double share = (double)within / pairs;
    double mean_err = sum_err / pairs;
    double se = sqrt(sum_var) / pairs;
    double z2 = nz ? sum_z2 / nz : 1.0;
    print_message("%s %u-grams, P=%u, %d pairs, J in [%.3f, %.3f]: %.1f%% within 3 sigma, "
                  "mean error %+.4f (3 s.e. %.4f), MSE/variance %.3f\n",
                  kind == CURATE_SHINGLE_CHAR ? "char" : "word", ngram, P, pairs, jmin, jmax,
                  100 * share, mean_err, 3 * se, z2);
    assert_true(jmin < jlow && jmax == 1.0);
    assert_true(share >= 0.98);
    assert_true(fabs(mean_err) <= 3 * se);
    assert_true(z2 > 0.75 && z2 < 1.25);
    free(sa);
    free(sb);
}

static void test_estimates_word(void **state)
{
    (void)state;
    rng_state = 77;
    check_estimates(CURATE_SHINGLE_WORD, 3, 128, 600, 0.05);
    check_estimates(CURATE_SHINGLE_WORD, 1, 64, 400, 0.3);
    check_estimates(CURATE_SHINGLE_WORD, 5, 256, 300, 0.05);
}

static void test_estimates_char(void **state)
{
    (void)state;
    rng_state = 78;
    check_estimates(CURATE_SHINGLE_CHAR, 5, 128, 300, 0.2);
}

/* Disjoint sets: the estimate should be (nearly) 0. */
static void test_disjoint(void **state)
{
    (void)state;
    curate_minhash *mh = signer(CURATE_SHINGLE_WORD, 1, 128, 5);
    uint32_t a[128], b[128];
    int over = 0;
    for (int k = 0; k < 50; k++) {
        char ta[64], tb[64];
        snprintf(ta, sizeof ta, "alpha%d beta%d gamma%d", k, k, k);
        snprintf(tb, sizeof tb, "delta%d eps%d zeta%d", k, k, k);
        assert_int_equal(curate_minhash_sign(mh, ta, strlen(ta), a, NULL), CURATE_OK);
        assert_int_equal(curate_minhash_sign(mh, tb, strlen(tb), b, NULL), CURATE_OK);
        over += curate_minhash_similarity(a, b, 128) > 0.0;
    }
    /* Two 32-bit minima collide with probability ~2^-32 per slot. */
    assert_int_equal(over, 0);
    curate_minhash_free(mh);
}

/* ---- LSH parameters ----------------------------------------------------------- */

/* Reference areas by the midpoint rule on a fine grid (a different rule
 * from the library's Simpson integration). */
static double ref_cost(double t, unsigned b, unsigned r)
{
    const int steps = 4000;
    double fp = 0, fn = 0;
    for (int k = 0; k < steps; k++) {
        double x = (k + 0.5) / steps;
        double p = 1 - pow(1 - pow(x, r), b);
        if (x < t)
            fp += p / steps;
        else
            fn += (1 - p) / steps;
    }
    return 0.5 * fp + 0.5 * fn;
}

static void test_lsh_choose(void **state)
{
    (void)state;
    const double ts[] = { 0.3, 0.5, 0.7, 0.85 };
    const unsigned Ps[] = { 64, 128 };
    unsigned prev_r = 0;
    for (size_t pi = 0; pi < 2; pi++) {
        prev_r = 0;
        for (size_t ti = 0; ti < 4; ti++) {
            unsigned b, r;
            assert_int_equal(curate_lsh_choose(ts[ti], Ps[pi], 0.5, 0.5, &b, &r), CURATE_OK);
            assert_true(b >= 1 && r >= 1 && b * r <= Ps[pi]);
            /* Near-optimal under the reference integration: no (b, r)
             * is better by more than the integration error. */
            double mine = ref_cost(ts[ti], b, r), best = 1e9;
            for (unsigned bb = 1; bb <= Ps[pi]; bb++)
                for (unsigned rr = 1; rr <= Ps[pi] / bb; rr++) {
                    double c = ref_cost(ts[ti], bb, rr);
                    best = c < best ? c : best;
                }
            print_message("t=%.2f P=%u: b=%u r=%u cost %.5f (reference best %.5f)\n", ts[ti],
                          Ps[pi], b, r, mine, best);
            assert_true(mine <= best + 1e-4);
            /* A higher threshold never wants fewer rows. */
            assert_true(r >= prev_r);
            prev_r = r;
        }
    }
    unsigned b, r;
    assert_int_equal(curate_lsh_choose(0.0, 128, 0.5, 0.5, &b, &r), CURATE_ERR_INVALID);
    assert_int_equal(curate_lsh_choose(1.0, 128, 0.5, 0.5, &b, &r), CURATE_ERR_INVALID);
    assert_int_equal(curate_lsh_choose(0.5, 0, 0.5, 0.5, &b, &r), CURATE_ERR_INVALID);
    assert_int_equal(curate_lsh_choose(0.5, 128, 0, 0, &b, &r), CURATE_ERR_INVALID);
    /* Only false positives weigh: one band of as many rows as possible
     * (its area t^(r+1) / (r+1) is the smallest). */
    assert_int_equal(curate_lsh_choose(0.5, 64, 1.0, 0.0, &b, &r), CURATE_OK);
    assert_true(b == 1 && r == 64);
    assert_true(fabs(curate_lsh_probability(0.5, 4, 2) - (1 - pow(0.75, 4))) < 1e-12);
}

/* ---- the LSH index --------------------------------------------------------------- */

static void random_sig(uint32_t *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        s[i] = (uint32_t)rng();
}

static void test_lsh_index(void **state)
{
    (void)state;
    rng_state = 99;
    enum { B = 8, R = 4, N = 5000 };
    curate_error err;
    curate_lsh *l = curate_lsh_init(B, R, 0, &err);
    assert_non_null(l);
    static uint32_t sigs[N][B * R];
    for (int i = 0; i < N; i++) {
        random_sig(sigs[i], B * R);
        uint32_t id;
        assert_int_equal(curate_lsh_insert(l, sigs[i], &id), CURATE_OK);
        assert_int_equal(id, i);
    }
    assert_int_equal(curate_lsh_count(l), N);
    assert_true(curate_lsh_memory(l) > (size_t)N * B * 4);
    const uint32_t *ids;
    size_t n;
    int cut;
    /* A stored signature finds itself, once, and nothing else. */
    for (int i = 0; i < N; i += 97) {
        assert_int_equal(curate_lsh_query(l, sigs[i], &ids, &n, &cut), CURATE_OK);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], i);
        assert_int_equal(cut, 0);
    }
    /* Sharing exactly one band is enough; sharing none gives nothing. */
    uint32_t q[B * R];
    for (int band = 0; band < B; band++) {
        random_sig(q, B * R);
        memcpy(q + band * R, sigs[1234] + band * R, R * sizeof(uint32_t));
        assert_int_equal(curate_lsh_query(l, q, &ids, &n, NULL), CURATE_OK);
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], 1234);
        q[band * R + R - 1] ^= 1; /* one row differs: the band no longer matches */
        assert_int_equal(curate_lsh_query(l, q, &ids, &n, NULL), CURATE_OK);
        assert_int_equal(n, 0);
    }
    /* Two records each sharing a different band both come back. */
    random_sig(q, B * R);
    memcpy(q, sigs[10], R * sizeof(uint32_t));
    memcpy(q + 5 * R, sigs[4000] + 5 * R, R * sizeof(uint32_t));
    assert_int_equal(curate_lsh_query(l, q, &ids, &n, NULL), CURATE_OK);
    assert_int_equal(n, 2);
    assert_true((ids[0] == 10 && ids[1] == 4000) || (ids[0] == 4000 && ids[1] == 10));
    curate_lsh_free(l);

    /* max_per_band: the newest records of a crowded band, flagged. */
    l = curate_lsh_init(2, 2, 3, &err);
    assert_non_null(l);
    uint32_t same[4] = { 1, 2, 3, 4 };
    for (int i = 0; i < 10; i++)
        assert_int_equal(curate_lsh_insert(l, same, NULL), CURATE_OK);
    assert_int_equal(curate_lsh_query(l, same, &ids, &n, &cut), CURATE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(cut, 1);
    assert_int_equal(ids[0], 9);
    assert_int_equal(ids[1], 8);
    assert_int_equal(ids[2], 7);
    curate_lsh_free(l);

    assert_null(curate_lsh_init(0, 4, 0, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    assert_null(curate_lsh_init(64, 64, 0, &err));
    curate_lsh_free(NULL);
}

/* The candidate rate on real signatures follows the S-curve. */
static void test_lsh_rate(void **state)
{
    (void)state;
    rng_state = 5150;
    enum { B = 16, R = 8, P = 128, PAIRS = 300 };
    curate_minhash *mh = signer(CURATE_SHINGLE_WORD, 1, P, 11);
    uint32_t a[P], b[P];
    /* Sets of 200 distinct tokens sharing s of them: J = s / (400 - s). */
    const int shares[] = { 100, 200 - 24, 200 - 44 }; /* J = 1/3, ~0.79, ~0.64 */
    for (int si = 0; si < 3; si++) {
        int s = shares[si];
        double J = (double)s / (400 - s);
        int hits = 0;
        for (int p = 0; p < PAIRS; p++) {
            curate_error err;
            curate_lsh *l = curate_lsh_init(B, R, 0, &err);
            static char ta[8192], tb[8192];
            size_t oa = 0, ob = 0;
            uint64_t base = rng();
            for (int k = 0; k < 200; k++) {
                oa += (size_t)snprintf(ta + oa, sizeof ta - oa, "c%llx_%d ",
                                       (unsigned long long)base, k);
                if (k < s)
                    ob += (size_t)snprintf(tb + ob, sizeof tb - ob, "c%llx_%d ",
                                           (unsigned long long)base, k);
                else
                    ob += (size_t)snprintf(tb + ob, sizeof tb - ob, "d%llx_%d ",
                                           (unsigned long long)base, k);
            }
            assert_int_equal(curate_minhash_sign(mh, ta, oa, a, NULL), CURATE_OK);
            assert_int_equal(curate_minhash_sign(mh, tb, ob, b, NULL), CURATE_OK);
            assert_int_equal(curate_lsh_insert(l, a, NULL), CURATE_OK);
            const uint32_t *ids;
            size_t n;
            assert_int_equal(curate_lsh_query(l, b, &ids, &n, NULL), CURATE_OK);
            hits += n == 1;
            curate_lsh_free(l);
        }
        double rate = (double)hits / PAIRS;
        double want = curate_lsh_probability(J, B, R);
        double sd = sqrt(want * (1 - want) / PAIRS);
        print_message("J=%.3f: candidate rate %.3f, S-curve %.3f (sd %.3f)\n", J, rate, want, sd);
        assert_true(fabs(rate - want) <= 4 * sd + 0.02);
    }
    curate_minhash_free(mh);
}

/* The vector path gives the bits of the portable one, for every perm
 * count (block remainders) and shingle count, including 0. */
static void test_simd_matches_scalar(void **state)
{
    (void)state;
    int have = curate_minhash_simd_(1);
    if (!have) {
        print_message("no AVX2 on this CPU: only the portable path runs\n");
        curate_minhash_simd_(-1);
        return;
    }
    rng_state = 4242;
    static uint32_t keys[3000];
    for (size_t i = 0; i < 3000; i++)
        keys[i] = (uint32_t)rng();
    keys[7] = 0;
    keys[8] = UINT32_MAX;
    const unsigned perms[] = { 1, 7, 8, 9, 64, 100, 128, 257 };
    const size_t counts[] = { 0, 1, 2, 5, 17, 300, 3000 };
    uint32_t a[257], b[257];
    for (size_t pi = 0; pi < sizeof perms / sizeof perms[0]; pi++) {
        curate_minhash *mh = signer(CURATE_SHINGLE_WORD, 3, perms[pi], 1000 + pi);
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            curate_minhash_sign_keys(mh, keys, counts[ci], a);
            curate_minhash_sign_scalar_(mh, keys, counts[ci], b);
            assert_memory_equal(a, b, perms[pi] * sizeof(uint32_t));
        }
        curate_minhash_free(mh);
    }
    curate_minhash_simd_(-1);
}

/* query_insert = query, then insert. */
static void test_lsh_query_insert(void **state)
{
    (void)state;
    rng_state = 31337;
    curate_error err;
    curate_lsh *a = curate_lsh_init(6, 3, 0, &err), *b = curate_lsh_init(6, 3, 0, &err);
    assert_non_null(a);
    assert_non_null(b);
    static uint32_t sigs[3000][18];
    for (int i = 0; i < 3000; i++) {
        random_sig(sigs[i], 18);
        if (i >= 10 && i % 5 == 0) /* share a band with an earlier record */
            memcpy(sigs[i] + 3 * (i % 6), sigs[i / 2] + 3 * (i % 6), 3 * sizeof(uint32_t));
        const uint32_t *ia, *ib;
        size_t na, nb;
        int ca, cb;
        uint32_t ida, idb;
        assert_int_equal(curate_lsh_query_insert(a, sigs[i], &ia, &na, &ca, &ida), CURATE_OK);
        assert_int_equal(curate_lsh_query(b, sigs[i], &ib, &nb, &cb), CURATE_OK);
        assert_int_equal(na, nb);
        if (na)
            assert_memory_equal(ia, ib, na * sizeof(uint32_t));
        assert_int_equal(ca, cb);
        assert_int_equal(curate_lsh_insert(b, sigs[i], &idb), CURATE_OK);
        assert_int_equal(ida, idb);
        assert_int_equal(ida, i);
        if (i >= 10 && i % 5 == 0)
            assert_true(na >= 1);
    }
    curate_lsh_free(a);
    curate_lsh_free(b);
}

int main(void)
{
    make_vocab();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shingle_counts),
        cmocka_unit_test(test_shingle_hash_properties),
        cmocka_unit_test(test_signature_basics),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_estimates_word),
        cmocka_unit_test(test_estimates_char),
        cmocka_unit_test(test_disjoint),
        cmocka_unit_test(test_lsh_choose),
        cmocka_unit_test(test_lsh_index),
        cmocka_unit_test(test_lsh_rate),
        cmocka_unit_test(test_simd_matches_scalar),
        cmocka_unit_test(test_lsh_query_insert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
