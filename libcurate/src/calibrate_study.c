/*
 * calibrate_study.c - the small pieces of curate-calibrate's studies that
 * are worth testing on their own: the spread of a figure over repeated
 * calibrations, the noise rule, and the seeded sub-samples the repeats
 * calibrate on.  See curate/calibrate.h ("Studies").
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "curate/calibrate.h"

void curate_calib_spread_of(const double *v, size_t n, curate_calib_spread *out)
{
    out->n = 0;
    out->mean = out->std = out->min = out->max = NAN;
    if (!v)
        return;
    /* two passes in double: the values are a handful of figures, and the
     * second pass makes the variance exact to rounding (no cancellation
     * of a large mean) */
    double sum = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        if (k == 0 || v[i] < out->min)
            out->min = v[i];
        if (k == 0 || v[i] > out->max)
            out->max = v[i];
        sum += v[i];
        k++;
    }
    out->n = k;
    if (k == 0)
        return;
    out->mean = sum / (double)k;
    if (k < 2)
        return;
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        double d = v[i] - out->mean;
        ss += d * d;
    }
    out->std = sqrt(ss / (double)(k - 1));
}

int curate_calib_within_noise(const curate_calib_spread *s, double k)
{
    if (!s || s->n < 2 || !isfinite(s->mean) || !isfinite(s->std))
        return 0;
    return fabs(s->mean) < k * s->std;
}

size_t curate_calib_subsample_size(size_t n, double frac)
{
    if (n == 0)
        return 0;
    if (!(frac > 0.0))
        return 1;
    if (frac >= 1.0)
        return n;
    double k = floor(frac * (double)n + 0.5);
    if (k < 1.0)
        return 1;
    if (k >= (double)n)
        return n;
    return (size_t)k;
}

void curate_calib_subsample(uint64_t seed, uint64_t repeat, size_t n, size_t k, size_t *out)
{
    curate_rng rng;
    /* seed + repeat wraps like any uint64_t sum: every repeat still gets
     * its own stream */
    curate_rng_seed(&rng, seed + repeat);
    curate_calib_pick(&rng, n, k, out);
}
