/*
 * curate/observe.h - statistics of the input of one linear layer, gathered
 * over a calibration run: the numbers every quantizer of curate/quant.h
 * and curate/actquant.h starts from.
 *
 * A linear layer computes y = x W^T with x a row of `cols` input features
 * (one row per token).  An observer is fed blocks of such rows,
 * x[T][cols] row-major, and keeps, as asked:
 *
 *   - per input channel j: the sum of x_j^2 (divided by the row count this
 *     is the importance matrix of llama.cpp's imatrix and of the
 *     importance-weighted quantizer) and the sum of |x_j| (its mean is the
 *     activation magnitude AWQ scales by);
 *   - the smallest and largest value per channel and over the whole tensor;
 *   - a histogram of |x| for static activation ranges (see curate_hist);
 *   - the Hessian proxy H = X^T X over all rows seen, cols x cols, for
 *     GPTQ and for the output-error objective of AWQ.
 *
 * Every row covers every channel, so one row count serves as the count of
 * every channel (llama.cpp's imatrix keeps one count per tensor too).
 *
 * Precision: the per-channel sums are kept in double.  The Hessian of each
 * block of rows is computed in float by cblas_ssyrk and added into a double
 * accumulator (the default), so rounding does not grow with the number of
 * blocks; with hessian_f32 the float product is accumulated in place, which
 * halves the memory (cols^2 floats instead of cols^2 floats plus cols^2
 * doubles) at the price of float summation across blocks.
 *
 * Histogram design: one pass, a fixed number of bins over a range [0, R]
 * that grows.  R starts at the first non-zero max|x| seen; when a block
 * holds a larger |x|, R is doubled as often as needed and each doubling
 * merges neighbouring bins in pairs.  Because the new edges are a subset of
 * the old ones the re-binning is exact: no count is ever split or guessed.
 * The price is resolution: the data always spans between half and all of
 * the bins, which is why the default bin count (4096) is twice the 2048
 * bins TensorRT's entropy calibrator uses.
 *
 * Values that are not finite (NaN, +-Inf) are refused: curate_observer_add
 * fails with CURATE_ERR_RANGE and leaves the observer unchanged, so nothing
 * is dropped silently.
 *
 * Thread safety: an observer belongs to one thread at a time (the model's
 * observer callback runs on the thread that calls the forward pass).  It
 * calls OpenBLAS, which follows the process-wide thread setting.
 */
#ifndef CURATE_OBSERVE_H
#define CURATE_OBSERVE_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an observer keeps (bits, or-ed together). */
enum {
    CURATE_OBSERVE_SUMSQ = 1u << 0,   /* per-channel sum of x^2 (importance) */
    CURATE_OBSERVE_MINMAX = 1u << 1,  /* per-channel min and max */
    CURATE_OBSERVE_HIST = 1u << 2,    /* histogram of |x| */
    CURATE_OBSERVE_ABSMEAN = 1u << 3, /* per-channel sum of |x| (AWQ) */
    CURATE_OBSERVE_HESSIAN = 1u << 4, /* X^T X, cols x cols */
    CURATE_OBSERVE_ALL = 0x1fu
};

/* Default number of histogram bins. */
#define CURATE_HIST_DEFAULT_BINS 4096

/*
 * A histogram of |x|.  Bin i counts the values with
 * i * width < |x| <= (i + 1) * width, width = range / n_bins (closed on
 * the right, so |x| == range lands in the last bin); bin 0 also holds 0.
 * While every value seen is 0, range is 0 and those zeros sit in bin 0
 * (which holds 0 whatever the range becomes).  Because of the exact
 * re-binning the counts are exactly those of a histogram built in one
 * pass with the final range.
 */
typedef struct curate_hist {
    uint64_t *counts; /* [n_bins] */
    size_t n_bins;    /* even, >= 2 */
    double range;     /* R: the upper edge of the last bin, 0 until a non-zero |x| */
    double amax;      /* the exact largest |x| seen (<= range) */
    uint64_t total;   /* values counted, the sum of counts */
} curate_hist;

/* Upper edge of bin i of h (i + 1 bins' worth of width). */
static inline double curate_hist_edge(const curate_hist *h, size_t i)
{
    return h->range * (double)(i + 1) / (double)h->n_bins;
}

typedef struct curate_observer_config {
    size_t cols;      /* input features per row, >= 1 */
    unsigned what;    /* CURATE_OBSERVE_* bits; 0 keeps only the row count and range */
    size_t hist_bins; /* 0 = CURATE_HIST_DEFAULT_BINS; otherwise even, 2..2^24 */
    int hessian_f32;  /* 1: accumulate X^T X in float (see the header comment) */
} curate_observer_config;

typedef struct curate_observer curate_observer;

/*
 * A new, empty observer.  NULL + err on failure: CURATE_ERR_INVALID for
 * cols 0 or a bad bin count, CURATE_ERR_RANGE when cols^2 overflows,
 * CURATE_ERR_NOMEM.  Memory: a few arrays of cols, plus the Hessian
 * (cols^2 * 12 bytes by default, 4 with hessian_f32) and 8 bytes per bin.
 */
curate_observer *curate_observer_init(const curate_observer_config *cfg, curate_error *err);

/* Free an observer; accepts NULL. */
void curate_observer_free(curate_observer *obs);

/*
 * Add T rows x[T][cols] (row-major, the layout the model's observer
 * callback passes).  T == 0 is a no-op.  CURATE_ERR_RANGE if a value is not
 * finite (the message names its row and column; nothing is added),
 * CURATE_ERR_INVALID for x == NULL with T > 0, CURATE_ERR_RANGE if the row
 * count would overflow.
 */
curate_status curate_observer_add(curate_observer *obs, const float *x, size_t T,
                                  curate_error *err);

/* Input features per row, and the number of rows added so far. */
size_t curate_observer_cols(const curate_observer *obs);
uint64_t curate_observer_rows(const curate_observer *obs);

/* What the observer keeps (its config's `what`). */
unsigned curate_observer_what(const curate_observer *obs);

/*
 * The smallest and largest value over the whole tensor.  Both 0 when no
 * row was added.  Always kept.
 */
void curate_observer_range(const curate_observer *obs, float *min, float *max);

/*
 * Per-channel sums: sum of x^2 and sum of |x| over all rows, [cols],
 * double.  NULL when not kept.  Valid until the next add or the free.
 */
const double *curate_observer_sumsq(const curate_observer *obs);
const double *curate_observer_sumabs(const curate_observer *obs);

/* Per-channel min and max, [cols]; NULL when not kept (0 before any row). */
const float *curate_observer_channel_min(const curate_observer *obs);
const float *curate_observer_channel_max(const curate_observer *obs);

/*
 * Importance: out[j] = sum of x_j^2 / rows (the mean square of channel j),
 * and the AWQ activation magnitude: out[j] = sum of |x_j| / rows.  out has
 * cols floats; all zero before any row.  CURATE_ERR_INVALID if the
 * statistic is not kept.
 */
curate_status curate_observer_imatrix(const curate_observer *obs, float *out, curate_error *err);
curate_status curate_observer_absmean(const curate_observer *obs, float *out, curate_error *err);

/*
 * The histogram of |x| (always present when CURATE_OBSERVE_HIST is kept,
 * NULL otherwise).  Owned by the observer; valid until the next add.
 */
const curate_hist *curate_observer_hist(const curate_observer *obs);

/*
 * The Hessian proxy H = X^T X / rows, written as a full symmetric matrix
 * out[cols][cols] (floats).  All zero before any row.
 * CURATE_ERR_INVALID if the Hessian is not kept.
 */
curate_status curate_observer_hessian(const curate_observer *obs, float *out, curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_OBSERVE_H */
