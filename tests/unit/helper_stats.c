/*
 * helper_stats.c - chi-square critical values for the statistical tests
 * (test_rng.c, test_sample.c): the regularized incomplete gamma function
 * and a bisection on the chi-square CDF.
 */
#include "helper_stats.h"

#include <math.h>

/* Regularized lower incomplete gamma P(a, x): power series below a + 1,
 * Lentz's continued fraction for the upper tail above. */
double helper_gamma_p(double a, double x)
{
    if (x <= 0)
        return 0;
    double lg = lgamma(a);
    if (x < a + 1) {
        double term = 1 / a, sum = term;
        for (int n = 1; n < 10000; n++) {
            term *= x / (a + n);
            sum += term;
            if (fabs(term) < fabs(sum) * 1e-15)
                break;
        }
        return sum * exp(-x + a * log(x) - lg);
    }
    double b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < 1e-300)
            d = 1e-300;
        c = b + an / c;
        if (fabs(c) < 1e-300)
            c = 1e-300;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15)
            break;
    }
    return 1 - exp(-x + a * log(x) - lg) * h;
}

/* x with P(chi2_df <= x) = 1 - alpha, by bisection on the CDF. */
double helper_chi2_critical(double df, double alpha)
{
    double lo = 0, hi = df + 100 * sqrt(df) + 100;
    for (int i = 0; i < 200; i++) {
        double mid = (lo + hi) / 2;
        if (helper_gamma_p(df / 2, mid / 2) < 1 - alpha)
            lo = mid;
        else
            hi = mid;
    }
    return (lo + hi) / 2;
}

