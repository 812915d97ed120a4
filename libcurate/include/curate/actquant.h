/*
 * curate/actquant.h - simulated activation quantization (the "A8" of
 * W8A8): ranges calibrated from the observer's histograms, and fake
 * quantization of activation rows in place.
 *
 * Format: symmetric, restricted range, round to nearest.  With b bits,
 * qmax = 2^(b-1) - 1 (127 for 8 bits), scale = threshold / qmax and
 *
 *     x' = scale * clamp(round(x / scale), -qmax, qmax)
 *
 * (roundf: ties away from zero).  Values beyond +-threshold are clipped
 * to it; inside, the error is at most scale / 2.  A scale of 0 maps every
 * value to 0.  NaN stays NaN (so a broken forward pass stays visible);
 * +-Inf is clipped like any large value.
 *
 * Scope:
 *   tensor  one static scale per tensor, from calibration (below);
 *   token   dynamic: each row gets scale = max|x_row| / qmax at run time,
 *           no calibration involved (nothing is ever clipped).
 *
 * Static thresholds from the histogram of |x| (curate_hist, see
 * curate/observe.h):
 *   minmax      the largest |x| seen (exact, not a bin edge).
 *   percentile  the |x| below which P% of the values fall (P in (0, 100],
 *               default 99.99), linearly interpolated inside the bin
 *               where the cumulative count crosses P%.
 *   kl          entropy calibration as in TensorRT: for each candidate
 *               threshold at a bin edge i (from 2^(b-1) bins up to the last
 *               non-empty one), the reference distribution P is the
 *               histogram cut at i with everything beyond added to its
 *               last bin; the candidate Q squeezes the same bins into
 *               2^(b-1) levels (128 for 8 bits: the magnitude levels of
 *               the signed code) and spreads each level's count evenly
 *               over the bins of that level that are non-empty in P.  The
 *               threshold with the least KL(P || Q) wins.  A candidate
 *               where Q is 0 on a bin P is not is skipped (infinite KL).
 *   mse         the threshold t (at a bin edge) minimising the expected
 *               squared error over the histogram: values at or below t
 *               cost the rounding noise of a uniform quantizer,
 *               step^2 / 12 with step = t / qmax, values above t cost
 *               (|x| - t)^2 measured at the bin centre.
 * KL and MSE look at every bin edge, O(bins^2) work: about 8 million
 * steps for 4096 bins, a few tens of milliseconds.
 *
 * Thread safety: all functions are pure and reentrant.
 */
#ifndef CURATE_ACTQUANT_H
#define CURATE_ACTQUANT_H

#include <stddef.h>
#include "curate/observe.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum curate_act_method {
    CURATE_ACT_MINMAX = 0,
    CURATE_ACT_PERCENTILE,
    CURATE_ACT_KL,
    CURATE_ACT_MSE
} curate_act_method;

typedef enum curate_act_scope {
    CURATE_ACT_TENSOR = 0, /* static, one scale per tensor */
    CURATE_ACT_TOKEN       /* dynamic, one scale per row */
} curate_act_scope;

typedef struct curate_act_config {
    unsigned bits;             /* 2..16; default 8 */
    curate_act_method method;  /* default minmax */
    double percentile;         /* in (0, 100], for CURATE_ACT_PERCENTILE; default 99.99 */
    curate_act_scope scope;    /* default tensor */
} curate_act_config;

/* The defaults above. */
void curate_act_config_default(curate_act_config *cfg);

/*
 * Parse an --act-method value into cfg->method (and cfg->percentile):
 * "minmax", "percentile" (99.99), "percentile:P" with P a number in
 * (0, 100], "kl", "mse".  CURATE_ERR_INVALID with a message otherwise;
 * cfg is unchanged on error.
 */
curate_status curate_act_method_parse(const char *spec, curate_act_config *cfg, curate_error *err);

/* Parse an --act-scope value ("tensor", "token") into cfg->scope. */
curate_status curate_act_scope_parse(const char *spec, curate_act_config *cfg, curate_error *err);

/* "minmax", "percentile", "kl", "mse" ("?" otherwise). */
const char *curate_act_method_name(curate_act_method m);

/*
 * The clipping threshold (>= 0, in the units of x) the method chooses for
 * histogram h; 0 when the histogram is empty or all zero.  cfg->scope is
 * ignored.  CURATE_ERR_INVALID for a bad config or a malformed histogram
 * (no counts, odd or zero bin count, negative range).
 */
curate_status curate_act_threshold_from_hist(const curate_hist *h, const curate_act_config *cfg,
                                             double *threshold, curate_error *err);

/* As above, converted to the quantization scale: threshold / qmax. */
curate_status curate_act_scale_from_hist(const curate_hist *h, const curate_act_config *cfg,
                                         float *scale, curate_error *err);

/* qmax for bits (2^(bits-1) - 1); 0 if bits is outside 2..16. */
unsigned curate_act_qmax(unsigned bits);

/*
 * Fake-quantize x[rows][cols] in place with one static scale (>= 0), or
 * per row (dynamic, from each row's max |x|).  bits in 2..16 (the caller
 * checks; anything else leaves x unchanged).
 */
void curate_act_fake_quant(float *x, size_t rows, size_t cols, unsigned bits, float scale);
void curate_act_fake_quant_token(float *x, size_t rows, size_t cols, unsigned bits);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_ACTQUANT_H */
