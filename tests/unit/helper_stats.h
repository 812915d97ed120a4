/*
 * helper_stats.h - statistics shared by the unit tests.
 */
#ifndef CURATE_TEST_HELPER_STATS_H
#define CURATE_TEST_HELPER_STATS_H

/* Regularized lower incomplete gamma P(a, x). */
double helper_gamma_p(double a, double x);

/* The x with P(chi2_df <= x) = 1 - alpha. */
double helper_chi2_critical(double df, double alpha);

#endif
