/*
 * test_sample.c - stratified sampling.
 *
 *   - allocation against an independent floating-point reference (the
 *     level found by bisection) on thousands of random instances, and
 *     against an exact integer Hamilton's method;
 *   - the statistical test: over 2000 seeds the quotas are exact every
 *     time and every record of a stratum is chosen with equal probability
 *     (chi-square goodness of fit at alpha = 0.001, critical values
 *     computed here and checked against a published table), and every
 *     7-subset of a 10-record stratum is equally likely; deliberately
 *     biased samplers fail the same test, so it has teeth;
 *   - the streaming reservoirs (record and token mode) against a
 *     brute-force replay of the same random keys;
 *   - strata keys from records, explicit shares, fingerprints.
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

#include "helper_stats.h"

#include "curate/hash.h"
#include "curate/jsonl.h"
#include "curate/rng.h"
#include "curate/sample.h"

/* ------------------------------------------------------------------------ */
/* Chi-square critical values                                               */
/* ------------------------------------------------------------------------ */

static void test_chi2_table(void **state)
{
    (void)state;
    /* Upper 0.1% points, NIST/SEMATECH e-Handbook of Statistical Methods,
     * table 1.3.6.7.4. */
    assert_true(fabs(helper_chi2_critical(9, 0.001) - 27.877) < 0.002);
    assert_true(fabs(helper_chi2_critical(19, 0.001) - 43.820) < 0.002);
    assert_true(fabs(helper_chi2_critical(39, 0.001) - 72.055) < 0.002);
    assert_true(fabs(helper_chi2_critical(100, 0.001) - 149.449) < 0.002);
}

/* ------------------------------------------------------------------------ */
/* Allocation                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Reference: the real-valued quotas of curate_allocate's specification,
 * with the level found by bisection in long double.  Returns R, the budget
 * actually placed.
 */
static uint64_t ref_alloc_real(const curate_alloc_item *it, size_t n, uint64_t total, long double *r,
                               int *min_unmet)
{
    uint64_t absorb = 0, sum_f = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t f = it[i].minimum < it[i].available ? it[i].minimum : it[i].available;
        absorb += it[i].weight ? it[i].available : f;
        sum_f += f;
    }
    uint64_t R = total < absorb ? total : absorb;
    *min_unmet = sum_f > R;
    long double lo = 0, hi = 1;
    /* S(L) for the current regime. */
#define S_OF(L, out)                                                                            \
    do {                                                                                        \
        long double s_ = 0;                                                                     \
        for (size_t i = 0; i < n; i++) {                                                        \
            uint64_t f = it[i].minimum < it[i].available ? it[i].minimum : it[i].available;     \
            long double v;                                                                      \
            if (*min_unmet)                                                                     \
                v = f ? fminl((L), (long double)f) : 0;                                         \
            else if (it[i].weight == 0)                                                         \
                v = f;                                                                          \
            else                                                                                \
                v = fminl(fmaxl((L) * it[i].weight, (long double)f), (long double)it[i].available); \
            if (r)                                                                              \
                r[i] = v;                                                                       \
            s_ += v;                                                                            \
        }                                                                                       \
        out = s_;                                                                               \
    } while (0)
    long double s;
    for (;;) {
        S_OF(hi, s);
        if (s >= R || hi > 1e30L)
            break;
        hi *= 2;
    }
    for (int k = 0; k < 300; k++) {
        long double mid = (lo + hi) / 2;
        S_OF(mid, s);
        if (s < R)
            lo = mid;
        else
            hi = mid;
    }
    S_OF(hi, s);
#undef S_OF
    return R;
}

static void check_against_reference(curate_alloc_item *it, size_t n, uint64_t total)
{
    long double r[64];
    int min_unmet;
    uint64_t R = ref_alloc_real(it, n, total, r, &min_unmet);
    unsigned flags = 99;
    assert_int_equal(curate_allocate(it, n, total, &flags, NULL), CURATE_OK);
    assert_int_equal(!!(flags & CURATE_ALLOC_MIN_UNMET), min_unmet);
    assert_int_equal(!!(flags & CURATE_ALLOC_SHORT), R < total);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t f = it[i].minimum < it[i].available ? it[i].minimum : it[i].available;
        sum += it[i].quota;
        assert_true(it[i].quota <= it[i].available);
        if (!min_unmet)
            assert_true(it[i].quota >= f);
        else
            assert_true(it[i].quota <= f);
        assert_true(fabsl((long double)it[i].quota - r[i]) < 1 + 1e-9L);
    }
    assert_true(sum == R);
    /* Where no two fractional parts are within 1e-6 of each other (no
     * ties, no rounding doubt), the quotas are exactly the largest-
     * remainder rounding of the reference. */
    long double fr[64];
    uint64_t fl[64], placed = 0;
    for (size_t i = 0; i < n; i++) {
        long double x = r[i] + 1e-12L;
        fl[i] = (uint64_t)floorl(x);
        fr[i] = x - (long double)fl[i];
        if (fr[i] < 1e-9L)
            fr[i] = 0;
        placed += fl[i];
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (fr[i] > 0 && fr[j] > 0 && fabsl(fr[i] - fr[j]) < 1e-6L)
                return;
    size_t extra = (size_t)(R - placed);
    for (size_t e = 0; e < extra; e++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (fr[i] > 0 && (best == n || fr[i] > fr[best]))
                best = i;
        assert_true(best < n);
        fl[best]++;
        fr[best] = 0;
    }
    for (size_t i = 0; i < n; i++)
        assert_true(fl[i] == it[i].quota);
}

static void test_allocate_random(void **state)
{
    (void)state;
    curate_rng g;
    curate_rng_seed(&g, 2024);
    for (int trial = 0; trial < 5000; trial++) {
        size_t n = 1 + (size_t)curate_rng_below(&g, 12);
        curate_alloc_item it[64];
        for (size_t i = 0; i < n; i++) {
            it[i].available = curate_rng_below(&g, 60);
            it[i].weight = curate_rng_below(&g, 4) == 0 ? 0 : curate_rng_below(&g, 30);
            it[i].minimum = curate_rng_below(&g, 3) == 0 ? curate_rng_below(&g, 12) : 0;
            it[i].quota = 12345;
        }
        uint64_t total = curate_rng_below(&g, 400);
        check_against_reference(it, n, total);
    }
    /* Large values: exactness where doubles would round. */
    for (int trial = 0; trial < 500; trial++) {
        size_t n = 1 + (size_t)curate_rng_below(&g, 8);
        curate_alloc_item it[64];
        for (size_t i = 0; i < n; i++) {
            it[i].available = curate_rng_below(&g, (uint64_t)1 << 40);
            it[i].weight = curate_rng_below(&g, (uint64_t)1 << 40);
            it[i].minimum = curate_rng_below(&g, (uint64_t)1 << 30);
        }
        uint64_t total = curate_rng_below(&g, (uint64_t)1 << 42);
        unsigned flags;
        assert_int_equal(curate_allocate(it, n, total, &flags, NULL), CURATE_OK);
        uint64_t sum = 0, absorb = 0;
        for (size_t i = 0; i < n; i++) {
            sum += it[i].quota;
            assert_true(it[i].quota <= it[i].available);
            uint64_t f = it[i].minimum < it[i].available ? it[i].minimum : it[i].available;
            absorb += it[i].weight ? it[i].available : f;
        }
        assert_true(sum == (total < absorb ? total : absorb));
    }
}

/* Hamilton's method in exact integers: floor(N a_i / A) plus one for the
 * largest remainders (N a_i mod A), ties to the lower index. */
static void test_allocate_hamilton(void **state)
{
    (void)state;
    curate_rng g;
    curate_rng_seed(&g, 77);
    for (int trial = 0; trial < 2000; trial++) {
        size_t n = 1 + (size_t)curate_rng_below(&g, 10);
        curate_alloc_item it[16];
        uint64_t A = 0;
        for (size_t i = 0; i < n; i++) {
            it[i].available = 1 + curate_rng_below(&g, 1000);
            it[i].weight = it[i].available;
            it[i].minimum = 0;
            A += it[i].available;
        }
        uint64_t N = curate_rng_below(&g, A + 1);
        assert_int_equal(curate_allocate(it, n, N, NULL, NULL), CURATE_OK);
        uint64_t want[16], rem[16], placed = 0;
        int used[16] = {0};
        for (size_t i = 0; i < n; i++) {
            want[i] = N * it[i].available / A;
            rem[i] = N * it[i].available % A;
            placed += want[i];
        }
        for (uint64_t e = placed; e < N; e++) {
            size_t best = n;
            for (size_t i = 0; i < n; i++)
                if (!used[i] && rem[i] > 0 && (best == n || rem[i] > rem[best]))
                    best = i;
            assert_true(best < n);
            want[best]++;
            used[best] = 1;
        }
        for (size_t i = 0; i < n; i++)
            assert_true(want[i] == it[i].quota);
    }
}

static void test_allocate_cases(void **state)
{
    (void)state;
    /* Equal allocation with a short stratum: it gives all it has, the
     * others split the rest; a tie in the remainders goes to the lower
     * index, and the quotas always add up. */
    curate_alloc_item it[3] = {{3, 1, 0, 0}, {20, 1, 0, 0}, {40, 1, 0, 0}};
    unsigned fl;
    assert_int_equal(curate_allocate(it, 3, 30, &fl, NULL), CURATE_OK);
    assert_true(it[0].quota == 3 && it[1].quota + it[2].quota == 27);
    assert_true(it[1].quota == it[2].quota + 1);
    assert_int_equal(fl, 0);
    /* More budget than records. */
    assert_int_equal(curate_allocate(it, 3, 100, &fl, NULL), CURATE_OK);
    assert_true(it[0].quota == 3 && it[1].quota == 20 && it[2].quota == 40);
    assert_int_equal(fl, CURATE_ALLOC_SHORT);
    /* Floors above the budget: spread evenly up to the floors. */
    curate_alloc_item m[3] = {{10, 1, 5, 0}, {10, 1, 5, 0}, {2, 1, 5, 0}};
    assert_int_equal(curate_allocate(m, 3, 9, &fl, NULL), CURATE_OK);
    assert_true(fl & CURATE_ALLOC_MIN_UNMET);
    assert_true(m[0].quota + m[1].quota + m[2].quota == 9);
    assert_true(m[2].quota == 2 && m[0].quota <= 5 && m[1].quota <= 5);
    /* Zero weights get only their floors, even when budget is left. */
    curate_alloc_item z[2] = {{10, 0, 2, 0}, {5, 1, 0, 0}};
    assert_int_equal(curate_allocate(z, 2, 20, &fl, NULL), CURATE_OK);
    assert_true(z[0].quota == 2 && z[1].quota == 5);
    assert_true(fl & CURATE_ALLOC_SHORT);
    /* Range checks. */
    curate_alloc_item big[1] = {{CURATE_SAMPLE_MAX_UNITS + 1, 1, 0, 0}};
    curate_error err;
    assert_int_equal(curate_allocate(big, 1, 5, NULL, &err), CURATE_ERR_RANGE);
    assert_int_equal(curate_allocate(NULL, 0, 5, &fl, NULL), CURATE_OK);
    assert_int_equal(fl, CURATE_ALLOC_SHORT);
}

/* ------------------------------------------------------------------------ */
/* Sampler helpers                                                          */
/* ------------------------------------------------------------------------ */

static curate_sampler *new_sampler(const char *const *fields, size_t nf, int by_tokens,
                                   uint64_t capacity, curate_alloc_mode mode,
                                   const curate_shares *sh, uint64_t min_per)
{
    curate_sampler_opts o = {fields, nf, by_tokens, capacity, mode, sh, min_per, 0};
    curate_error err;
    curate_sampler *s = curate_sampler_init(&o, &err);
    if (!s)
        fail_msg("sampler init: %s", err.message);
    return s;
}

static size_t stratum_named(curate_sampler *s, const char *v)
{
    const char *vals[1] = {v};
    size_t lens[1] = {strlen(v)}, idx = 0;
    assert_int_equal(curate_sampler_stratum_of_values(s, vals, lens, &idx, NULL), CURATE_OK);
    return idx;
}

/* Add an item; every dropped one is recorded in dropped[ordinal]. */
static void add_item(curate_sampler *s, size_t st, uint64_t ordinal, uint64_t cost, curate_rng *rng,
                     unsigned char *dropped)
{
    char payload[32];
    int n = snprintf(payload, sizeof payload, "item-%llu", (unsigned long long)ordinal);
    curate_sample_item it = {payload, (size_t)n, ordinal, cost, ordinal + 1, 0, 0};
    assert_int_equal(curate_sampler_add(s, st, &it, rng, NULL), CURATE_OK);
    curate_sample_item d;
    while (curate_sampler_next_dropped(s, &d)) {
        char want[32];
        int wn = snprintf(want, sizeof want, "item-%llu", (unsigned long long)d.ordinal);
        assert_true(d.len == (size_t)wn && memcmp(d.data, want, d.len) == 0);
        if (dropped) {
            assert_int_equal(dropped[d.ordinal], 0);
            dropped[d.ordinal] = 1;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The statistical test                                                     */
/* ------------------------------------------------------------------------ */

#define T_SEEDS 2000
#define N_REC 70

/* Stratum of each record: 10 of A, 20 of B, 40 of C, in a fixed shuffled
 * order (the same for every seed). */
static int rec_stratum[N_REC];
static const uint64_t stratum_size[3] = {10, 20, 40};

static void make_layout(void)
{
    int k = 0;
    for (int s = 0; s < 3; s++)
        for (uint64_t j = 0; j < stratum_size[s]; j++)
            rec_stratum[k++] = s;
    curate_rng g;
    curate_rng_seed(&g, 12345);
    for (int i = N_REC - 1; i > 0; i--) {
        int j = (int)curate_rng_below(&g, (uint64_t)i + 1);
        int t = rec_stratum[i];
        rec_stratum[i] = rec_stratum[j];
        rec_stratum[j] = t;
    }
}

/*
 * Chi-square statistic for the selection counts of one stratum of a
 * records over T trials, each trial choosing a uniform q-subset.  A
 * record's count is Binomial(T, p = q/a); the counts are negatively
 * correlated (Cov = -T p (1-p) / (a-1)), so the Pearson sum
 * sum (c - Tp)^2 / (Tp) converges to (1-p) a/(a-1) times a chi-square with
 * a - 1 degrees of freedom (the covariance matrix is that multiple of a
 * projection of rank a - 1).  Dividing by the factor gives a statistic
 * that is chi-square(a - 1) under the null hypothesis.
 */
static double chi2_subset_counts(const uint64_t *cnt, uint64_t a, uint64_t q, uint64_t T)
{
    double p = (double)q / (double)a, e = (double)T * p, x = 0;
    for (uint64_t j = 0; j < a; j++)
        x += ((double)cnt[j] - e) * ((double)cnt[j] - e) / e;
    return x * (double)(a - 1) / ((double)a * (1 - p));
}

typedef struct trial_result {
    uint64_t hits[N_REC];     /* times each record was chosen */
    uint64_t subsets[1024];   /* stratum A: times each subset (bitmask) was chosen */
} trial_result;

/* Run the real sampler over T_SEEDS seeds with n records of budget and
 * the given allocation; check quotas against want[] every time. */
static void run_trials(curate_alloc_mode mode, uint64_t budget, const uint64_t *want,
                       trial_result *res)
{
    const char *fields[1] = {"s"};
    static const char *names[3] = {"A", "B", "C"};
    memset(res, 0, sizeof *res);
    for (uint64_t seed = 1; seed <= T_SEEDS; seed++) {
        curate_sampler *s = new_sampler(fields, 1, 0, budget, mode, NULL, 0);
        curate_rng rng;
        curate_rng_seed(&rng, seed);
        size_t idx[3];
        for (int k = 0; k < 3; k++)
            idx[k] = stratum_named(s, names[k]);
        unsigned char dropped[N_REC] = {0};
        for (uint64_t r = 0; r < N_REC; r++)
            add_item(s, idx[rec_stratum[r]], r, 1, &rng, dropped);
        assert_int_equal(curate_sampler_finish(s, budget, NULL), CURATE_OK);
        uint64_t per[3] = {0};
        unsigned mask = 0;
        size_t ns = curate_sampler_selected_count(s);
        uint64_t last = 0;
        for (size_t i = 0; i < ns; i++) {
            const curate_sample_item *it = curate_sampler_selected(s, i);
            assert_true(i == 0 || it->ordinal > last);
            last = it->ordinal;
            assert_int_equal(dropped[it->ordinal], 0);
            res->hits[it->ordinal]++;
            int st = rec_stratum[it->ordinal];
            per[st]++;
            if (st == 0) {
                /* position of the record inside stratum A */
                unsigned pos = 0;
                for (uint64_t r = 0; r < it->ordinal; r++)
                    pos += rec_stratum[r] == 0;
                mask |= 1u << pos;
            }
        }
        for (int k = 0; k < 3; k++) {
            curate_stratum_info si;
            assert_int_equal(curate_sampler_stratum_info(s, (size_t)k, &si), CURATE_OK);
            assert_true(si.quota == want[k]);
            assert_true(si.selected == want[k]);
            assert_true(per[k] == want[k]);
        }
        /* Every record is selected, held unselected, or dropped: once. */
        size_t n_dropped = 0;
        for (int r = 0; r < N_REC; r++)
            n_dropped += dropped[r];
        assert_int_equal(ns + curate_sampler_unselected_count(s) + n_dropped, N_REC);
        res->subsets[mask]++;
        curate_sampler_free(s);
    }
}

/* Per-stratum chi-square of a hit table; returns the largest ratio
 * statistic / critical value, printing the figures. */
static double stratum_chi2(const char *label, const uint64_t *hits, const uint64_t *quota)
{
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        uint64_t cnt[64], a = 0;
        for (int r = 0; r < N_REC; r++)
            if (rec_stratum[r] == k)
                cnt[a++] = hits[r];
        if (quota[k] == 0 || quota[k] == a)
            continue; /* nothing random to test */
        double x = chi2_subset_counts(cnt, a, quota[k], T_SEEDS);
        double crit = helper_chi2_critical((double)(a - 1), 0.001);
        printf("  %s stratum %c (a=%llu, q=%llu): chi2 = %.2f, df = %llu, critical(0.001) = %.3f\n",
               label, 'A' + k, (unsigned long long)a, (unsigned long long)quota[k], x,
               (unsigned long long)(a - 1), crit);
        if (x / crit > worst)
            worst = x / crit;
    }
    return worst;
}

/* Expected quotas from the reference allocation (they are integers in
 * these set-ups: checked). */
static void ref_quotas(curate_alloc_mode mode, uint64_t budget, uint64_t *want)
{
    curate_alloc_item it[3];
    for (int k = 0; k < 3; k++) {
        it[k].available = stratum_size[k];
        it[k].weight = mode == CURATE_ALLOC_EQUAL ? 1 : stratum_size[k];
        it[k].minimum = 0;
    }
    long double r[3];
    int mu;
    ref_alloc_real(it, 3, budget, r, &mu);
    for (int k = 0; k < 3; k++) {
        want[k] = (uint64_t)llroundl(r[k]);
        assert_true(fabsl(r[k] - (long double)want[k]) < 1e-9L);
    }
}

static void test_uniform_equal(void **state)
{
    (void)state;
    make_layout();
    static trial_result res;
    uint64_t want[3];
    ref_quotas(CURATE_ALLOC_EQUAL, 21, want); /* 7, 7, 7 */
    run_trials(CURATE_ALLOC_EQUAL, 21, want, &res);
    printf("equal allocation, n = 21, %d seeds:\n", T_SEEDS);
    assert_true(stratum_chi2("equal", res.hits, want) < 1);

    /* Stratum A: each of the C(10,7) = 120 subsets is one cell of a
     * multinomial over the 2000 trials (expected 16.7 per cell), so the
     * plain Pearson statistic is chi-square with 119 degrees of freedom. */
    double e = (double)T_SEEDS / 120.0, x = 0;
    int cells = 0;
    for (unsigned m = 0; m < 1024; m++) {
        if (__builtin_popcount(m) != 7)
            continue;
        cells++;
        x += ((double)res.subsets[m] - e) * ((double)res.subsets[m] - e) / e;
    }
    assert_int_equal(cells, 120);
    double crit = helper_chi2_critical(119, 0.001);
    printf("  stratum A, all 120 subsets of 7: chi2 = %.2f, df = 119, critical(0.001) = %.3f\n", x,
           crit);
    assert_true(x < crit);
}

static void test_uniform_proportional(void **state)
{
    (void)state;
    make_layout();
    static trial_result res;
    uint64_t want[3];
    ref_quotas(CURATE_ALLOC_PROPORTIONAL, 14, want); /* 2, 4, 8 */
    run_trials(CURATE_ALLOC_PROPORTIONAL, 14, want, &res);
    printf("proportional allocation, n = 14, %d seeds:\n", T_SEEDS);
    assert_true(stratum_chi2("proportional", res.hits, want) < 1);
}

/*
 * The test has power: two classic sampler bugs on the same records and
 * seeds are rejected by it.
 *   1. Algorithm R with the off-by-one draw j = below(t) instead of
 *      below(t + 1) for the t-th item (0-based): late items win too often.
 *   2. Bottom-k with only 3 key bits, ties going to the earlier record
 *      (what a too-short key or a stable sort on a coarse key does):
 *      early records win too often.
 */
static void test_biased_samplers_fail(void **state)
{
    (void)state;
    make_layout();
    static uint64_t hits1[N_REC], hits2[N_REC];
    memset(hits1, 0, sizeof hits1);
    memset(hits2, 0, sizeof hits2);
    const uint64_t q[3] = {7, 7, 7};
    for (uint64_t seed = 1; seed <= T_SEEDS; seed++) {
        curate_rng rng;
        curate_rng_seed(&rng, seed);
        for (int k = 0; k < 3; k++) {
            int res[64], t = 0;
            uint64_t keys[64];
            int members[64], m = 0;
            for (int r = 0; r < N_REC; r++)
                if (rec_stratum[r] == k)
                    members[m++] = r;
            for (t = 0; t < m; t++) {
                if (t < (int)q[k]) {
                    res[t] = members[t];
                } else {
                    uint64_t j = curate_rng_below(&rng, (uint64_t)t); /* bug: t, not t + 1 */
                    if (j < q[k])
                        res[j] = members[t];
                }
                keys[t] = curate_rng_next(&rng) >> 61; /* bug 2: 3-bit keys */
            }
            for (uint64_t j = 0; j < q[k]; j++)
                hits1[res[j]]++;
            /* q smallest (key, position) pairs */
            int taken[64] = {0};
            for (uint64_t j = 0; j < q[k]; j++) {
                int best = -1;
                for (int i = 0; i < m; i++)
                    if (!taken[i] && (best < 0 || keys[i] < keys[best]))
                        best = i;
                taken[best] = 1;
                hits2[members[best]]++;
            }
        }
    }
    printf("biased samplers, n = 21 (7 per stratum), %d seeds:\n", T_SEEDS);
    assert_true(stratum_chi2("off-by-one Algorithm R", hits1, q) > 1);
    assert_true(stratum_chi2("3-bit keys", hits2, q) > 1);
}

/* ------------------------------------------------------------------------ */
/* Reservoirs against a brute-force replay                                  */
/* ------------------------------------------------------------------------ */

typedef struct ref_item {
    uint64_t key, ordinal, cost;
    int stratum;
} ref_item;

static int cmp_ref(const void *pa, const void *pb)
{
    const ref_item *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->ordinal < b->ordinal ? -1 : (a->ordinal > b->ordinal);
}

/*
 * The sampler draws one key per add, in order; the chosen records must be,
 * per stratum, the quota smallest keys (record mode), or the greedy fill of
 * the quota over the shortest key-prefix reaching the capacity (token mode).
 */
static void replay_check(int by_tokens, uint64_t seed)
{
    enum { NI = 400, NS = 4 };
    static const char *names[NS] = {"a", "b", "c", "d"};
    const char *fields[1] = {"s"};
    curate_rng g;
    curate_rng_seed(&g, seed * 7919);
    static ref_item items[NI];
    uint64_t capacity = by_tokens ? 500 + curate_rng_below(&g, 2000) : 5 + curate_rng_below(&g, 80);
    uint64_t budget = capacity - curate_rng_below(&g, capacity / 2);
    uint64_t min_per = curate_rng_below(&g, 2) ? curate_rng_below(&g, by_tokens ? 300 : 20) : 0;
    curate_alloc_mode mode = curate_rng_below(&g, 2) ? CURATE_ALLOC_EQUAL : CURATE_ALLOC_PROPORTIONAL;
    /* Skewed strata sizes, one nearly empty. */
    for (int i = 0; i < NI; i++) {
        uint64_t u = curate_rng_below(&g, 100);
        items[i].stratum = u < 5 ? 0 : u < 25 ? 1 : u < 60 ? 2 : 3;
        items[i].ordinal = (uint64_t)i * 3 + 1;
        items[i].cost = by_tokens ? curate_rng_below(&g, 120) : 1;
        if (by_tokens && curate_rng_below(&g, 50) == 0)
            items[i].cost = capacity + 1 + curate_rng_below(&g, 10); /* can never fit */
    }
    curate_sampler *s = new_sampler(fields, 1, by_tokens, capacity, mode, NULL, min_per);
    curate_rng rng, rrng;
    curate_rng_seed(&rng, seed);
    curate_rng_seed(&rrng, seed);
    size_t idx[NS];
    for (int k = 0; k < NS; k++)
        idx[k] = stratum_named(s, names[k]);
    static unsigned char dropped[NI * 3 + 2];
    memset(dropped, 0, sizeof dropped);
    for (int i = 0; i < NI; i++) {
        add_item(s, idx[items[i].stratum], items[i].ordinal, items[i].cost, &rng, dropped);
        items[i].key = curate_rng_next(&rrng);
    }
    assert_int_equal(curate_sampler_finish(s, budget, NULL), CURATE_OK);

    /* Reference quotas with curate_allocate on the true availabilities. */
    curate_alloc_item al[NS];
    for (int k = 0; k < NS; k++) {
        uint64_t units = 0;
        for (int i = 0; i < NI; i++)
            if (items[i].stratum == k && items[i].cost <= capacity)
                units += items[i].cost;
        al[k].available = units;
        al[k].weight = mode == CURATE_ALLOC_EQUAL ? 1 : units;
        al[k].minimum = min_per;
    }
    assert_int_equal(curate_allocate(al, NS, budget, NULL, NULL), CURATE_OK);

    static unsigned char want_sel[NI * 3 + 2];
    memset(want_sel, 0, sizeof want_sel);
    for (int k = 0; k < NS; k++) {
        curate_stratum_info si;
        assert_int_equal(curate_sampler_stratum_info(s, (size_t)k, &si), CURATE_OK);
        assert_true(si.quota == al[k].quota);
        assert_true(si.available == al[k].available);
        static ref_item mine[NI];
        int m = 0;
        for (int i = 0; i < NI; i++)
            if (items[i].stratum == k && items[i].cost <= capacity)
                mine[m++] = items[i];
        qsort(mine, (size_t)m, sizeof *mine, cmp_ref);
        uint64_t used = 0, prefix = 0, nsel = 0;
        for (int j = 0; j < m; j++) {
            if (by_tokens) {
                if (prefix >= capacity)
                    break; /* beyond the shortest prefix reaching capacity */
                prefix += mine[j].cost;
                if (mine[j].cost <= al[k].quota - used) {
                    used += mine[j].cost;
                    want_sel[mine[j].ordinal] = 1;
                    nsel++;
                }
            } else if (used < al[k].quota) {
                used++;
                want_sel[mine[j].ordinal] = 1;
                nsel++;
            }
        }
        assert_true(si.selected == used);
        assert_true(si.selected_records == nsel);
        assert_true(used <= si.quota);
    }
    size_t got = curate_sampler_selected_count(s), n_want = 0;
    for (int i = 0; i < NI; i++)
        n_want += want_sel[items[i].ordinal];
    assert_int_equal(got, n_want);
    for (size_t i = 0; i < got; i++) {
        const curate_sample_item *it = curate_sampler_selected(s, i);
        assert_true(want_sel[it->ordinal]);
        assert_int_equal(dropped[it->ordinal], 0);
        assert_true(it->line == it->ordinal + 1);
    }
    /* Partition: selected + unselected + dropped = all. */
    size_t nd = 0;
    for (int i = 0; i < NI; i++)
        nd += dropped[items[i].ordinal];
    for (size_t i = 0; i < curate_sampler_unselected_count(s); i++) {
        const curate_sample_item *it = curate_sampler_unselected(s, i);
        assert_false(want_sel[it->ordinal]);
        assert_int_equal(dropped[it->ordinal], 0);
    }
    assert_int_equal(got + curate_sampler_unselected_count(s) + nd, NI);
    /* Memory is bounded: record mode holds at most capacity per stratum. */
    curate_sampler_free(s);
}

static void test_reservoir_replay(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        replay_check(0, seed);
        replay_check(1, seed);
    }
}

static void test_memory_bound(void **state)
{
    (void)state;
    const char *fields[1] = {"s"};
    curate_sampler *s = new_sampler(fields, 1, 0, 10, CURATE_ALLOC_EQUAL, NULL, 0);
    curate_rng rng;
    curate_rng_seed(&rng, 5);
    size_t a = stratum_named(s, "a"), b = stratum_named(s, "b");
    uint64_t peak = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        add_item(s, i % 3 ? a : b, i, 1, &rng, NULL);
        uint64_t h = curate_sampler_bytes_held(s);
        if (h > peak)
            peak = h;
    }
    /* 2 strata x 10 items x at most 11 bytes ("item-99999"). */
    assert_true(peak <= 2 * 10 * 11);
    assert_int_equal(curate_sampler_finish(s, 10, NULL), CURATE_OK);
    assert_int_equal(curate_sampler_selected_count(s), 10);
    curate_error err;
    assert_int_equal(curate_sampler_finish(s, 10, &err), CURATE_ERR_INVALID);
    curate_sampler_free(s);

    /* The budget may not exceed the capacity; ordinals must increase. */
    s = new_sampler(fields, 1, 0, 10, CURATE_ALLOC_EQUAL, NULL, 0);
    a = stratum_named(s, "a");
    curate_sample_item it = {"x", 1, 5, 1, 0, 0, 0};
    assert_int_equal(curate_sampler_add(s, a, &it, &rng, NULL), CURATE_OK);
    assert_int_equal(curate_sampler_add(s, a, &it, &rng, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_sampler_finish(s, 11, &err), CURATE_ERR_INVALID);
    curate_sampler_free(s);
    curate_sampler_opts bad = {fields, 1, 0, 0, CURATE_ALLOC_EQUAL, NULL, 0, 0};
    assert_null(curate_sampler_init(&bad, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
}

/* ------------------------------------------------------------------------ */
/* Strata keys from records                                                 */
/* ------------------------------------------------------------------------ */

static size_t key_of(curate_sampler *s, curate_record *rec, const char *line, curate_status want)
{
    curate_error err;
    assert_int_equal(curate_record_parse(rec, line, strlen(line), &err), CURATE_OK);
    size_t idx = 999;
    assert_int_equal(curate_sampler_stratum_of(s, rec, &idx, &err), want);
    return idx;
}

static void test_strata_keys(void **state)
{
    (void)state;
    const char *fields[2] = {"d", "n"};
    curate_sampler *s = new_sampler(fields, 2, 0, 10, CURATE_ALLOC_EQUAL, NULL, 0);
    curate_record rec;
    curate_record_init(&rec);
    size_t a = key_of(s, &rec, "{\"d\":\"a\",\"n\":3}", CURATE_OK);
    assert_int_equal(key_of(s, &rec, "{\"n\":3,\"d\":\"\\u0061\",\"x\":[1]}", CURATE_OK), a);
    assert_int_equal(key_of(s, &rec, "{\"d\":\"a\",\"n\":\"3\"}", CURATE_OK), a);
    size_t b = key_of(s, &rec, "{\"d\":\"a\",\"n\":3.0}", CURATE_OK);
    assert_true(b != a);
    size_t miss = key_of(s, &rec, "{\"n\":3}", CURATE_OK);
    assert_int_equal(key_of(s, &rec, "{\"d\":\"-\",\"n\":3}", CURATE_OK), miss);
    size_t other = key_of(s, &rec, "{\"d\":true,\"n\":null}", CURATE_OK);
    size_t nothing = key_of(s, &rec, "{}", CURATE_OK);
    /* Parts do not run into each other: ("ab", "c") != ("a", "bc"). */
    size_t p1 = key_of(s, &rec, "{\"d\":\"ab\",\"n\":\"c\"}", CURATE_OK);
    size_t p2 = key_of(s, &rec, "{\"d\":\"a\",\"n\":\"bc\"}", CURATE_OK);
    assert_true(p1 != p2);
    assert_int_equal(curate_sampler_strata_count(s), 7);
    curate_stratum_info si;
    assert_int_equal(curate_sampler_stratum_info(s, other, &si), CURATE_OK);
    assert_true(si.value_lens[0] == 4 && memcmp(si.values[0], "true", 4) == 0);
    assert_true(si.value_lens[1] == 4 && memcmp(si.values[1], "null", 4) == 0);
    assert_int_equal(curate_sampler_stratum_info(s, nothing, &si), CURATE_OK);
    assert_true(si.value_lens[0] == 1 && si.values[0][0] == '-');
    assert_int_equal(curate_sampler_stratum_info(s, 7, &si), CURATE_ERR_INVALID);
    /* After finish, strata come in sorted order: "-" < "a" < "ab" < "true". */
    assert_int_equal(curate_sampler_finish(s, 5, NULL), CURATE_OK);
    const char *prev = NULL;
    size_t prev_len = 0;
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(curate_sampler_stratum_info(s, i, &si), CURATE_OK);
        if (prev) {
            size_t l = prev_len < si.value_lens[0] ? prev_len : si.value_lens[0];
            int c = memcmp(prev, si.values[0], l);
            assert_true(c < 0 || (c == 0 && prev_len <= si.value_lens[0]));
        }
        prev = si.values[0];
        prev_len = si.value_lens[0];
    }
    curate_sampler_free(s);

    /* Too many strata. */
    curate_sampler_opts o = {fields, 1, 0, 10, CURATE_ALLOC_EQUAL, NULL, 0, 2};
    s = curate_sampler_init(&o, NULL);
    assert_non_null(s);
    key_of(s, &rec, "{\"d\":\"x\"}", CURATE_OK);
    key_of(s, &rec, "{\"d\":\"y\"}", CURATE_OK);
    key_of(s, &rec, "{\"d\":\"x\"}", CURATE_OK);
    key_of(s, &rec, "{\"d\":\"z\"}", CURATE_ERR_TOO_LARGE);
    curate_sampler_free(s);

    /* No fields: one stratum for everything. */
    s = new_sampler(NULL, 0, 0, 10, CURATE_ALLOC_EQUAL, NULL, 0);
    assert_int_equal(key_of(s, &rec, "{\"d\":\"x\"}", CURATE_OK), 0);
    assert_int_equal(key_of(s, &rec, "{\"e\":1}", CURATE_OK), 0);
    curate_sampler_free(s);
    curate_record_release(&rec);
}

/* ------------------------------------------------------------------------ */
/* Shares                                                                   */
/* ------------------------------------------------------------------------ */

static curate_shares *parse_ok(const char *spec)
{
    curate_error err;
    curate_shares *sh = curate_shares_parse(spec, strlen(spec), &err);
    if (!sh)
        fail_msg("'%s': %s", spec, err.message);
    return sh;
}

static void parse_bad(const char *spec, const char *msg_part)
{
    curate_error err;
    curate_error_clear(&err);
    curate_shares *sh = curate_shares_parse(spec, strlen(spec), &err);
    if (sh)
        fail_msg("'%s' parsed", spec);
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    if (!strstr(err.message, msg_part))
        fail_msg("'%s': message '%s' lacks '%s'", spec, err.message, msg_part);
}

static void test_shares_parse(void **state)
{
    (void)state;
    curate_shares *sh = parse_ok("bucket=short:0.25,medium:0.5,long:0.25");
    assert_string_equal(curate_shares_field(sh), "bucket");
    assert_int_equal(curate_shares_count(sh), 3);
    size_t l;
    const char *v = curate_shares_value(sh, 1, &l);
    assert_true(l == 6 && memcmp(v, "medium", 6) == 0);
    assert_true(fabs(curate_shares_share(sh, 1) - 0.5) < 1e-15);
    curate_shares_free(sh);

    /* File form: comments, newlines, spaces; weights normalized; a value
     * may contain ':' (split at the last one). */
    sh = parse_ok("# length mix\n bucket = short : 1\nmedium:2 # the bulk\n\nlong:1,\n a:b : 0\n");
    assert_int_equal(curate_shares_count(sh), 4);
    assert_true(fabs(curate_shares_share(sh, 0) - 0.25) < 1e-15);
    assert_true(fabs(curate_shares_share(sh, 1) - 0.5) < 1e-15);
    v = curate_shares_value(sh, 3, &l);
    assert_true(l == 3 && memcmp(v, "a:b", 3) == 0);
    assert_true(curate_shares_share(sh, 3) == 0);
    curate_shares_free(sh);

    parse_bad("short:0.25,long:0.75", "no '='");
    parse_bad("=short:1", "field name");
    parse_bad("b=short", "no ':SHARE'");
    parse_bad("b=short:-1", "not a share");
    parse_bad("b=short:abc", "not a share");
    parse_bad("b=short:nan", "not a share");
    parse_bad("b=short:1,short:2", "listed twice");
    parse_bad("b=:1", "empty value");
    parse_bad("b=x:0,y:0", "positive");
    parse_bad("b=", "no VALUE:SHARE");

    curate_error err;
    assert_null(curate_shares_load("/nonexistent/shares.txt", &err));
    assert_int_equal(err.code, CURATE_ERR_IO);
    const char *tmp = getenv("CURATE_TMP");
    char path[4096];
    snprintf(path, sizeof path, "%s/test_sample_shares.txt", tmp ? tmp : "/tmp");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("lang=\nen: 3\nzh: 1\n", f);
    fclose(f);
    sh = curate_shares_load(path, &err);
    assert_non_null(sh);
    assert_string_equal(curate_shares_field(sh), "lang");
    assert_true(fabs(curate_shares_share(sh, 0) - 0.75) < 1e-15);
    curate_shares_free(sh);
    remove(path);
}

/* Two-level allocation: groups by share, then evenly inside a group.
 * Expected quotas come from the reference allocation applied the same two
 * ways. */
static void test_shares_allocation(void **state)
{
    (void)state;
    const char *fields[2] = {"d", "b"};
    curate_shares *sh = parse_ok("b=short:1,long:3,gone:1");
    struct { const char *d, *b; uint64_t n; } strata[] = {
        {"x", "short", 100}, {"y", "short", 100}, {"x", "long", 5}, {"y", "long", 100},
        {"z", "other", 50},
    };
    const size_t ns = sizeof strata / sizeof strata[0];
    for (int variant = 0; variant < 2; variant++) {
        uint64_t budget = 40, min_per = variant ? 2 : 0;
        if (variant)
            strata[0].n = strata[1].n = 2; /* the short group runs short */
        curate_sampler *s = new_sampler(fields, 2, 0, budget, CURATE_ALLOC_SHARES, sh, min_per);
        curate_rng rng;
        curate_rng_seed(&rng, 3);
        uint64_t ord = 0;
        size_t idx[8];
        for (size_t k = 0; k < ns; k++) {
            const char *vals[2] = {strata[k].d, strata[k].b};
            size_t lens[2] = {strlen(strata[k].d), strlen(strata[k].b)};
            assert_int_equal(curate_sampler_stratum_of_values(s, vals, lens, &idx[k], NULL),
                             CURATE_OK);
        }
        for (uint64_t j = 0; j < 100; j++)
            for (size_t k = 0; k < ns; k++)
                if (j < strata[k].n)
                    add_item(s, idx[k], ord++, 1, &rng, NULL);
        assert_int_equal(curate_sampler_finish(s, budget, NULL), CURATE_OK);

        /* Reference, level 1: short, long, gone (no strata), rest (weight 0). */
        long double r[8];
        int mu;
        curate_alloc_item g[4] = {
            {strata[0].n + strata[1].n, 1000, 0, 0}, {strata[2].n + strata[3].n, 3000, 0, 0},
            {0, 1000, 0, 0}, {strata[4].n, 0, 0, 0}};
        g[0].minimum = 2 * min_per;
        g[1].minimum = 2 * min_per;
        g[3].minimum = min_per;
        ref_alloc_real(g, 4, budget, r, &mu);
        uint64_t gq[4];
        for (int k = 0; k < 4; k++) {
            gq[k] = (uint64_t)llroundl(r[k]);
            assert_true(fabsl(r[k] - (long double)gq[k]) < 1e-9L);
        }
        /* Level 2 inside short (strata 0, 1), long (2, 3) and the rest (4). */
        uint64_t want[5];
        const size_t grp[3][2] = {{0, 1}, {2, 3}, {4, 4}};
        for (int gi = 0; gi < 3; gi++) {
            size_t m = grp[gi][0] == grp[gi][1] ? 1 : 2;
            curate_alloc_item in[2];
            for (size_t j = 0; j < m; j++)
                in[j] = (curate_alloc_item){strata[grp[gi][j]].n, 1, min_per, 0};
            uint64_t q = gi == 2 ? gq[3] : gq[gi];
            ref_alloc_real(in, m, q, r, &mu);
            for (size_t j = 0; j < m; j++) {
                want[grp[gi][j]] = (uint64_t)llroundl(r[j]);
                assert_true(fabsl(r[j] - (long double)want[grp[gi][j]]) < 1e-9L);
            }
        }
        /* Sorted order: (x,long) (x,short) (y,long) (y,short) (z,other). */
        const size_t sorted[5] = {2, 0, 3, 1, 4};
        uint64_t total = 0;
        for (size_t i = 0; i < ns; i++) {
            curate_stratum_info si;
            assert_int_equal(curate_sampler_stratum_info(s, i, &si), CURATE_OK);
            printf("  shares variant %d: %.*s/%.*s quota %llu (reference %llu)\n", variant,
                   (int)si.value_lens[0], si.values[0], (int)si.value_lens[1], si.values[1],
                   (unsigned long long)si.quota, (unsigned long long)want[sorted[i]]);
            assert_true(si.quota == want[sorted[i]]);
            assert_true(si.selected == si.quota);
            total += si.quota;
        }
        assert_true(total == budget);
        curate_sampler_free(s);
    }
    /* The shares' field must be a strata field. */
    const char *one[1] = {"d"};
    curate_sampler_opts o = {one, 1, 0, 10, CURATE_ALLOC_SHARES, sh, 0, 0};
    curate_error err;
    assert_null(curate_sampler_init(&o, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    curate_shares_free(sh);
}

/* ------------------------------------------------------------------------ */
/* Caller keys: a bounded "top k" of scores                                 */
/* ------------------------------------------------------------------------ */

static void test_score_keys(void **state)
{
    (void)state;
    const double v[] = {INFINITY, 1e300, 2.5, 1, 1e-300, 0, -1e-300, -1, -2.5, -1e300, -INFINITY};
    const size_t n = sizeof v / sizeof v[0];
    for (size_t i = 0; i + 1 < n; i++)
        assert_true(curate_score_key(v[i]) < curate_score_key(v[i + 1]));
    assert_true(curate_score_key(-0.0) == curate_score_key(0.0));
    assert_true(curate_score_key(NAN) > curate_score_key(-INFINITY));

    /* Keep the 3 highest of 10 scores; ties go to the earlier item. */
    const double sc[10] = {0.5, 3, 1, 3, 7, 2, 7, 0, 3, 1};
    curate_sampler *s = new_sampler(NULL, 0, 0, 3, CURATE_ALLOC_EQUAL, NULL, 0);
    size_t idx;
    assert_int_equal(curate_sampler_stratum_of_values(s, NULL, NULL, &idx, NULL), CURATE_OK);
    unsigned char dropped[16] = {0};
    for (uint64_t i = 0; i < 10; i++) {
        char payload[32];
        int len = snprintf(payload, sizeof payload, "item-%llu", (unsigned long long)i);
        curate_sample_item it = {payload, (size_t)len, i, 1, i + 1, 0, 0};
        assert_int_equal(curate_sampler_add_keyed(s, idx, &it, curate_score_key(sc[i]), NULL), CURATE_OK);
        curate_sample_item d;
        while (curate_sampler_next_dropped(s, &d))
            dropped[d.ordinal] = 1;
    }
    assert_int_equal(curate_sampler_finish(s, 2, NULL), CURATE_OK);
    /* The two best are items 4 and 6 (score 7); item 1 (3, earliest of the
     * tied threes) is held but not selected; everything else dropped. */
    assert_int_equal(curate_sampler_selected_count(s), 2);
    assert_true(curate_sampler_selected(s, 0)->ordinal == 4);
    assert_true(curate_sampler_selected(s, 1)->ordinal == 6);
    assert_int_equal(curate_sampler_unselected_count(s), 1);
    assert_true(curate_sampler_unselected(s, 0)->ordinal == 1);
    for (uint64_t i = 0; i < 10; i++)
        assert_int_equal(dropped[i], !(i == 1 || i == 4 || i == 6));
    curate_sampler_free(s);
}

/* ------------------------------------------------------------------------ */
/* Fingerprints                                                             */
/* ------------------------------------------------------------------------ */

static curate_h128 fp(const char *s, size_t n)
{
    curate_buf b;
    curate_buf_init(&b);
    curate_h128 h;
    assert_int_equal(curate_text_fingerprint(s, n, &b, &h, NULL), CURATE_OK);
    curate_buf_release(&b);
    return h;
}

static void test_fingerprint(void **state)
{
    (void)state;
    curate_h128 a = fp("a b c", 5);
    assert_true(curate_h128_equal(a, curate_hash128("a b c", 5, 0)));
    assert_true(curate_h128_equal(a, fp("  a\t b\n\n c \r\n", 13)));
    assert_true(curate_h128_equal(a, fp("a\xc2\xa0" "b\xe3\x80\x80" "c", 8))); /* NBSP, ideographic space */
    assert_false(curate_h128_equal(a, fp("a b  d", 6)));
    assert_false(curate_h128_equal(a, fp("A b c", 5)));
    /* Invalid UTF-8 is repaired to U+FFFD first. */
    assert_true(curate_h128_equal(fp("x \xff y", 5), curate_hash128("x \xef\xbf\xbd y", 7, 0)));
    assert_true(curate_h128_equal(fp("", 0), curate_hash128("", 0, 0)));
    assert_true(curate_h128_equal(fp(" \n ", 3), curate_hash128("", 0, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chi2_table),
        cmocka_unit_test(test_allocate_cases),
        cmocka_unit_test(test_allocate_random),
        cmocka_unit_test(test_allocate_hamilton),
        cmocka_unit_test(test_uniform_equal),
        cmocka_unit_test(test_uniform_proportional),
        cmocka_unit_test(test_biased_samplers_fail),
        cmocka_unit_test(test_reservoir_replay),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_strata_keys),
        cmocka_unit_test(test_shares_parse),
        cmocka_unit_test(test_shares_allocation),
        cmocka_unit_test(test_score_keys),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
