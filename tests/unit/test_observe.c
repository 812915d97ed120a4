/*
 * test_observe.c - the observer accumulators against a naive recomputation
 * in double precision on seeded random data fed in several add() calls of
 * different sizes; the histogram's exact re-binning; refusal of non-finite
 * input.
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

#include "curate/observe.h"

/* splitmix64: a tiny seeded generator, enough for test data. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) /* (0, 1) */
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}
static double rng_gauss(uint64_t *s)
{
    return sqrt(-2.0 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s));
}

/*
 * Random activations: channel j has its own scale (a few "outlier"
 * channels are 20x larger) and a mean offset, so min/max, absmean and the
 * Hessian's off-diagonals are all non-trivial.
 */
static float *make_x(size_t T, size_t cols, uint64_t seed, double growth)
{
    uint64_t s = seed;
    float *x = malloc(T * cols * sizeof(float));
    for (size_t r = 0; r < T; r++)
        for (size_t j = 0; j < cols; j++) {
            double sc = (j % 17 == 3 ? 20.0 : 1.0) * (1.0 + growth * (double)r);
            x[r * cols + j] = (float)(sc * rng_gauss(&s) + 0.1 * (double)(j % 5));
        }
    return x;
}

/* Relative closeness with a floor on the denominator. */
static void assert_close(double got, double want, double rel, double floor_, const char *what,
                         size_t i)
{
    double tol = rel * fmax(fabs(want), floor_);
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%zu]: got %.17g want %.17g (tol %.3g)", what, i, got, want, tol);
}

static void check_against_naive(int hess_f32)
{
    const size_t cols = 37;
    const size_t batches[] = {5, 1, 0, 64, 13, 200};
    size_t total = 0;
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
        total += batches[b];
    /* Later batches have a larger spread, so the histogram range grows. */
    float *x = make_x(total, cols, 42, 0.02);

    curate_observer_config cfg = {.cols = cols, .what = CURATE_OBSERVE_ALL, .hist_bins = 64,
                                  .hessian_f32 = hess_f32};
    curate_error err;
    curate_observer *o = curate_observer_init(&cfg, &err);
    assert_non_null(o);
    size_t at = 0;
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        assert_int_equal(curate_observer_add(o, x + at * cols, batches[b], &err), CURATE_OK);
        at += batches[b];
    }
    assert_int_equal(curate_observer_rows(o), total);
    assert_int_equal(curate_observer_cols(o), cols);

    /* naive, in double */
    double *ss = calloc(cols, sizeof(double)), *sa = calloc(cols, sizeof(double));
    double *h = calloc(cols * cols, sizeof(double));
    float *mn = malloc(cols * sizeof(float)), *mx = malloc(cols * sizeof(float));
    float tmin = x[0], tmax = x[0];
    for (size_t j = 0; j < cols; j++)
        mn[j] = mx[j] = x[j];
    for (size_t r = 0; r < total; r++)
        for (size_t j = 0; j < cols; j++) {
            double v = x[r * cols + j];
            ss[j] += v * v;
            sa[j] += fabs(v);
            mn[j] = fminf(mn[j], (float)v);
            mx[j] = fmaxf(mx[j], (float)v);
            tmin = fminf(tmin, (float)v);
            tmax = fmaxf(tmax, (float)v);
            for (size_t k = 0; k < cols; k++)
                h[j * cols + k] += v * (double)x[r * cols + k];
        }

    /* Per-channel sums are double accumulations of the same values: only
     * summation order can differ (the order is the same here, so 1e-12 is
     * generous). */
    const double *gs = curate_observer_sumsq(o), *ga = curate_observer_sumabs(o);
    for (size_t j = 0; j < cols; j++) {
        assert_close(gs[j], ss[j], 1e-12, 0, "sumsq", j);
        assert_close(ga[j], sa[j], 1e-12, 0, "sumabs", j);
    }
    /* min/max are exact */
    for (size_t j = 0; j < cols; j++) {
        assert_true(curate_observer_channel_min(o)[j] == mn[j]);
        assert_true(curate_observer_channel_max(o)[j] == mx[j]);
    }
    float gmin, gmax;
    curate_observer_range(o, &gmin, &gmax);
    assert_true(gmin == tmin && gmax == tmax);

    /* the means, rounded to float: 1e-6 relative */
    float *imp = malloc(cols * sizeof(float)), *am = malloc(cols * sizeof(float));
    assert_int_equal(curate_observer_imatrix(o, imp, &err), CURATE_OK);
    assert_int_equal(curate_observer_absmean(o, am, &err), CURATE_OK);
    for (size_t j = 0; j < cols; j++) {
        assert_close(imp[j], ss[j] / (double)total, 1e-6, 0, "imatrix", j);
        assert_close(am[j], sa[j] / (double)total, 1e-6, 0, "absmean", j);
    }

    /* Hessian: float products inside a batch (and, with hessian_f32, float
     * sums across batches).  Tolerance relative to the largest diagonal
     * entry, since off-diagonals can cancel to near 0: 1e-5 for the double
     * accumulator, 1e-4 for float. */
    float *gh = malloc(cols * cols * sizeof(float));
    assert_int_equal(curate_observer_hessian(o, gh, &err), CURATE_OK);
    double hmax = 0;
    for (size_t j = 0; j < cols; j++)
        hmax = fmax(hmax, h[j * cols + j] / (double)total);
    for (size_t i = 0; i < cols * cols; i++)
        assert_close(gh[i], h[i] / (double)total, hess_f32 ? 1e-4 : 1e-5, hmax, "hessian", i);
    for (size_t i = 0; i < cols; i++) /* exactly symmetric */
        for (size_t j = 0; j < cols; j++)
            assert_true(gh[i * cols + j] == gh[j * cols + i]);

    /* Histogram: exactly a one-pass histogram over the final range. */
    const curate_hist *hist = curate_observer_hist(o);
    assert_non_null(hist);
    assert_int_equal(hist->total, total * cols);
    double amax = fmax(fabs((double)tmin), fabs((double)tmax));
    assert_true(hist->amax == amax);
    assert_true(hist->range >= amax);
    uint64_t *want = calloc(hist->n_bins, sizeof(uint64_t)), sum = 0;
    for (size_t i = 0; i < total * cols; i++) {
        double y = ceil(fabs((double)x[i]) / hist->range * (double)hist->n_bins);
        size_t b = y > 0 ? (size_t)y - 1 : 0;
        want[b < hist->n_bins ? b : hist->n_bins - 1]++;
        /* the value lies inside its bin's edges */
        double lo = b ? curate_hist_edge(hist, b - 1) : 0.0;
        assert_true(fabs((double)x[i]) <= curate_hist_edge(hist, b) * (1 + 1e-15));
        assert_true(b == 0 || fabs((double)x[i]) > lo * (1 - 1e-15));
    }
    for (size_t b = 0; b < hist->n_bins; b++) {
        if (hist->counts[b] != want[b])
            fail_msg("bin %zu: %llu, one-pass histogram %llu", b,
                     (unsigned long long)hist->counts[b], (unsigned long long)want[b]);
        sum += hist->counts[b];
    }
    assert_int_equal(sum, hist->total);
    /* the range grew from the first batch's max by doublings (at least one
     * here, or the re-binning would be untested): data spans > half */
    double first = 0;
    for (size_t i = 0; i < batches[0] * cols; i++)
        first = fmax(first, fabs((double)x[i]));
    assert_true(hist->range >= 2 * first);
    assert_true(hist->amax > hist->range / 2);

    free(want);
    free(gh);
    free(imp);
    free(am);
    free(ss);
    free(sa);
    free(h);
    free(mn);
    free(mx);
    free(x);
    curate_observer_free(o);
}

static void test_naive_f64(void **state)
{
    (void)state;
    check_against_naive(0);
}

static void test_naive_f32(void **state)
{
    (void)state;
    check_against_naive(1);
}

/* A larger width, to exercise the BLAS kernel's blocked paths. */
static void test_hessian_wide(void **state)
{
    (void)state;
    const size_t cols = 300, T = 257;
    float *x = make_x(T, cols, 7, 0.0);
    curate_observer_config cfg = {.cols = cols, .what = CURATE_OBSERVE_HESSIAN};
    curate_observer *o = curate_observer_init(&cfg, NULL);
    assert_non_null(o);
    assert_int_equal(curate_observer_add(o, x, 100, NULL), CURATE_OK);
    assert_int_equal(curate_observer_add(o, x + 100 * cols, T - 100, NULL), CURATE_OK);
    float *gh = malloc(cols * cols * sizeof(float));
    assert_int_equal(curate_observer_hessian(o, gh, NULL), CURATE_OK);
    double hmax = 0;
    for (size_t j = 0; j < cols; j++) {
        double d = 0;
        for (size_t r = 0; r < T; r++)
            d += (double)x[r * cols + j] * x[r * cols + j];
        hmax = fmax(hmax, d / T);
    }
    for (size_t i = 0; i < cols; i += 7)
        for (size_t j = 0; j < cols; j += 3) {
            double h = 0;
            for (size_t r = 0; r < T; r++)
                h += (double)x[r * cols + i] * x[r * cols + j];
            assert_close(gh[i * cols + j], h / T, 1e-5, hmax, "hessian", i * cols + j);
        }
    /* statistics not kept are refused */
    float tmp[300];
    curate_error err;
    assert_int_equal(curate_observer_imatrix(o, tmp, &err), CURATE_ERR_INVALID);
    assert_null(curate_observer_sumsq(o));
    assert_null(curate_observer_hist(o));
    free(gh);
    free(x);
    curate_observer_free(o);
}

static void test_nonfinite_refused(void **state)
{
    (void)state;
    curate_observer_config cfg = {.cols = 3, .what = CURATE_OBSERVE_ALL};
    curate_observer *o = curate_observer_init(&cfg, NULL);
    float good[6] = {1, -2, 3, 0.5f, 0.25f, -4};
    float bad[6] = {1, 2, 3, 4, NAN, 6};
    curate_error err;
    assert_int_equal(curate_observer_add(o, good, 2, &err), CURATE_OK);
    assert_int_equal(curate_observer_add(o, bad, 2, &err), CURATE_ERR_RANGE);
    assert_non_null(strstr(err.message, "row 1 column 1"));
    bad[4] = INFINITY;
    assert_int_equal(curate_observer_add(o, bad, 2, &err), CURATE_ERR_RANGE);
    /* nothing of the bad blocks was kept */
    assert_int_equal(curate_observer_rows(o), 2);
    assert_true(curate_observer_sumsq(o)[0] == 1.0 + 0.25);
    float mn, mx;
    curate_observer_range(o, &mn, &mx);
    assert_true(mn == -4 && mx == 3);
    assert_int_equal(curate_observer_hist(o)->total, 6);
    curate_observer_free(o);
}

static void test_zeros_and_empty(void **state)
{
    (void)state;
    curate_observer_config cfg = {.cols = 4, .what = CURATE_OBSERVE_ALL, .hist_bins = 8};
    curate_observer *o = curate_observer_init(&cfg, NULL);
    float h[16], imp[4];
    /* before any row: zeros, no NaN from 0/0 */
    assert_int_equal(curate_observer_hessian(o, h, NULL), CURATE_OK);
    assert_int_equal(curate_observer_imatrix(o, imp, NULL), CURATE_OK);
    for (int i = 0; i < 16; i++)
        assert_true(h[i] == 0.0f);
    for (int i = 0; i < 4; i++)
        assert_true(imp[i] == 0.0f);
    /* all-zero rows go to bin 0 with range 0, and stay there when data arrives */
    float z[8] = {0};
    assert_int_equal(curate_observer_add(o, z, 2, NULL), CURATE_OK);
    const curate_hist *hist = curate_observer_hist(o);
    assert_true(hist->range == 0.0 && hist->counts[0] == 8);
    float v[4] = {8, -4, 1, 0};
    assert_int_equal(curate_observer_add(o, v, 1, NULL), CURATE_OK);
    assert_true(hist->range == 8.0 && hist->amax == 8.0);
    /* width 1: 0s and 1 in bin 0 (0 < 1 <= 1), 4 in bin 3, 8 in bin 7 */
    assert_int_equal(hist->counts[0], 10);
    assert_int_equal(hist->counts[3], 1);
    assert_int_equal(hist->counts[7], 1);
    /* growth to 32 (two doublings): bins of width 4 */
    float w[4] = {-30, 2.5f, 0, 0};
    assert_int_equal(curate_observer_add(o, w, 1, NULL), CURATE_OK);
    assert_true(hist->range == 32.0 && hist->amax == 30.0);
    /* 0 x11, 1, 2.5, 4 -> bin 0; 8 -> bin 1 (4 < 8 <= 8); 30 -> bin 7 */
    assert_int_equal(hist->counts[0], 14);
    assert_int_equal(hist->counts[1], 1);
    assert_int_equal(hist->counts[7], 1);
    assert_int_equal(hist->total, 16);
    curate_observer_free(o);
}

static void test_bad_config(void **state)
{
    (void)state;
    curate_error err;
    curate_observer_config cfg = {.cols = 0};
    assert_null(curate_observer_init(&cfg, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    cfg.cols = 4;
    cfg.what = CURATE_OBSERVE_HIST;
    cfg.hist_bins = 7;
    assert_null(curate_observer_init(&cfg, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    cfg.hist_bins = 0;
    cfg.what = CURATE_OBSERVE_HESSIAN;
    cfg.cols = SIZE_MAX / 2;
    assert_null(curate_observer_init(&cfg, &err));
    assert_int_equal(err.code, CURATE_ERR_RANGE);
    curate_observer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_naive_f64),
        cmocka_unit_test(test_naive_f32),
        cmocka_unit_test(test_hessian_wide),
        cmocka_unit_test(test_nonfinite_refused),
        cmocka_unit_test(test_zeros_and_empty),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
