/*
 * observe.c - observer accumulators for the input of a linear layer.
 *
 * add() first checks the whole block for non-finite values so that a bad
 * block leaves no partial trace, then makes one pass over the rows for the
 * per-channel statistics and the histogram, and hands the Hessian to BLAS.
 */
#include "curate/observe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

/* Each statistic is allocated only when asked for: the Hessian of a wide
 * layer dominates memory and a tool may not need it. */
struct curate_observer {
    size_t cols;         /* input features per row */
    unsigned what;       /* CURATE_OBSERVE_* */
    uint64_t rows;       /* rows added */
    float tmin, tmax;    /* tensor range; valid when rows > 0 */
    double *sumsq;       /* [cols] or NULL */
    double *sumabs;      /* [cols] or NULL */
    float *cmin, *cmax;  /* [cols] or NULL */
    curate_hist hist;    /* counts == NULL when not kept */
    int hess_f32;        /* accumulate in hf directly */
    float *hf;           /* [cols][cols] upper triangle: the block product (or the sum) */
    double *hd;          /* [cols][cols] upper triangle: the sum, or NULL with hess_f32 */
};

curate_observer *curate_observer_init(const curate_observer_config *cfg, curate_error *err)
{
    if (!cfg || cfg->cols == 0) {
        curate_error_set(err, CURATE_ERR_INVALID, "observer: cols must be at least 1");
        return NULL;
    }
    size_t bins = cfg->hist_bins ? cfg->hist_bins : CURATE_HIST_DEFAULT_BINS;
    if ((cfg->what & CURATE_OBSERVE_HIST) && (bins < 2 || bins % 2 || bins > ((size_t)1 << 24))) {
        curate_error_set(err, CURATE_ERR_INVALID,
                         "observer: histogram bins must be even and in 2..16777216, not %zu", bins);
        return NULL;
    }
    size_t cols = cfg->cols;
    size_t cc = 0;
    if (cfg->what & CURATE_OBSERVE_HESSIAN) {
        if (cols > SIZE_MAX / cols || cols * cols > SIZE_MAX / sizeof(double)) {
            curate_error_set(err, CURATE_ERR_RANGE, "observer: a %zu x %zu Hessian is too large",
                             cols, cols);
            return NULL;
        }
        cc = cols * cols;
    }
    curate_observer *o = calloc(1, sizeof *o);
    if (!o)
        goto nomem;
    o->cols = cols;
    o->what = cfg->what & CURATE_OBSERVE_ALL;
    o->hess_f32 = cfg->hessian_f32 != 0;
    if (o->what & CURATE_OBSERVE_SUMSQ && !(o->sumsq = calloc(cols, sizeof(double))))
        goto nomem;
    if (o->what & CURATE_OBSERVE_ABSMEAN && !(o->sumabs = calloc(cols, sizeof(double))))
        goto nomem;
    if (o->what & CURATE_OBSERVE_MINMAX) {
        o->cmin = calloc(cols, sizeof(float));
        o->cmax = calloc(cols, sizeof(float));
        if (!o->cmin || !o->cmax)
            goto nomem;
    }
    if (o->what & CURATE_OBSERVE_HIST) {
        o->hist.n_bins = bins;
        if (!(o->hist.counts = calloc(bins, sizeof(uint64_t))))
            goto nomem;
    }
    if (o->what & CURATE_OBSERVE_HESSIAN) {
        if (!(o->hf = calloc(cc, sizeof(float))))
            goto nomem;
        if (!o->hess_f32 && !(o->hd = calloc(cc, sizeof(double))))
            goto nomem;
    }
    return o;
nomem:
    curate_observer_free(o);
    curate_error_set(err, CURATE_ERR_NOMEM, "observer: out of memory for %zu columns", cols);
    return NULL;
}

void curate_observer_free(curate_observer *o)
{
    if (!o)
        return;
    free(o->sumsq);
    free(o->sumabs);
    free(o->cmin);
    free(o->cmax);
    free(o->hist.counts);
    free(o->hf);
    free(o->hd);
    free(o);
}

/* Grow the histogram range to cover amax: double R, merging bins in pairs. */
static void hist_grow(curate_hist *h, double amax)
{
    if (h->range == 0) {
        h->range = amax; /* counts so far are zeros, in bin 0 whatever R is */
        return;
    }
    size_t n = h->n_bins;
    while (h->range < amax) {
        for (size_t i = 0; i < n / 2; i++)
            h->counts[i] = h->counts[2 * i] + h->counts[2 * i + 1];
        memset(h->counts + n / 2, 0, n / 2 * sizeof(uint64_t));
        h->range *= 2;
    }
}

/*
 * Bins are closed on the right: bin i holds i w < |x| <= (i + 1) w, bin 0
 * also 0.  y = (|x| / R) N scales exactly by 1/2 when R doubles, and
 * ceil(y / 2) - 1 == floor((ceil(y) - 1) / 2), so binning against a later,
 * doubled R gives the same bin as binning now and merging: the histogram
 * equals the one a second pass with the final R would build.
 */
static void hist_add_row(curate_hist *h, const float *x, size_t n)
{
    if (h->range == 0) { /* everything seen, this row included, is 0 */
        h->counts[0] += n;
        return;
    }
    double nb = (double)h->n_bins, r = h->range;
    size_t last = h->n_bins - 1;
    for (size_t j = 0; j < n; j++) {
        double y = ceil(fabs((double)x[j]) / r * nb); /* in [0, n_bins]: the cast is defined */
        size_t i = y > 0.0 ? (size_t)y - 1 : 0;
        h->counts[i > last ? last : i]++;
    }
}

curate_status curate_observer_add(curate_observer *o, const float *x, size_t T, curate_error *err)
{
    if (!o)
        return curate_error_set(err, CURATE_ERR_INVALID, "observer: NULL observer");
    if (T == 0)
        return CURATE_OK;
    if (!x)
        return curate_error_set(err, CURATE_ERR_INVALID, "observer: NULL input with %zu rows", T);
    size_t cols = o->cols;
    if (T > SIZE_MAX / cols || (uint64_t)T > UINT64_MAX - o->rows)
        return curate_error_set(err, CURATE_ERR_RANGE, "observer: %zu rows overflow the count", T);

    /* Validate and find the block's range before touching any state: a
     * rejected block must leave no partial trace, or the counts would no
     * longer match the rows. */
    float bmin = x[0], bmax = x[0];
    for (size_t r = 0; r < T; r++) {
        const float *row = x + r * cols;
        for (size_t j = 0; j < cols; j++) {
            float v = row[j];
            if (!isfinite(v))
                return curate_error_set(err, CURATE_ERR_RANGE,
                                        "observer: non-finite input %g at row %zu column %zu",
                                        (double)v, r, j);
            bmin = v < bmin ? v : bmin;
            bmax = v > bmax ? v : bmax;
        }
    }
    if (o->rows == 0) {
        o->tmin = bmin;
        o->tmax = bmax;
        if (o->cmin) {
            memcpy(o->cmin, x, cols * sizeof(float));
            memcpy(o->cmax, x, cols * sizeof(float));
        }
    } else {
        o->tmin = bmin < o->tmin ? bmin : o->tmin;
        o->tmax = bmax > o->tmax ? bmax : o->tmax;
    }

    curate_hist *h = o->hist.counts ? &o->hist : NULL;
    if (h) {
        double bamax = fmax(fabs((double)bmin), fabs((double)bmax));
        if (bamax > h->range)
            hist_grow(h, bamax);
        h->amax = fmax(h->amax, bamax);
        h->total += (uint64_t)T * (uint64_t)cols;
    }

    for (size_t r = 0; r < T; r++) {
        const float *row = x + r * cols;
        if (o->sumsq)
            for (size_t j = 0; j < cols; j++)
                o->sumsq[j] += (double)row[j] * (double)row[j];
        if (o->sumabs)
            for (size_t j = 0; j < cols; j++)
                o->sumabs[j] += fabs((double)row[j]);
        if (o->cmin)
            for (size_t j = 0; j < cols; j++) {
                o->cmin[j] = row[j] < o->cmin[j] ? row[j] : o->cmin[j];
                o->cmax[j] = row[j] > o->cmax[j] ? row[j] : o->cmax[j];
            }
        if (h)
            hist_add_row(h, row, cols);
    }

    if (o->hf) {
        /* BLAS takes int dimensions.  The block's product is float (a few
         * hundred tokens: float rounding is negligible there); summing the
         * blocks in double keeps long runs from drifting. */
        if (cols > (size_t)INT32_MAX || T > (size_t)INT32_MAX) {
            return curate_error_set(err, CURATE_ERR_RANGE,
                                    "observer: a %zu x %zu block is too large for BLAS", T, cols);
        }
        int n = (int)cols, k = (int)T;
        /* Upper triangle of X^T X; X is T x cols row-major. */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n, k, 1.0f, x, n,
                    o->hess_f32 ? 1.0f : 0.0f, o->hf, n);
        if (!o->hess_f32)
            for (size_t i = 0; i < cols; i++)
                for (size_t j = i; j < cols; j++)
                    o->hd[i * cols + j] += (double)o->hf[i * cols + j];
    }
    o->rows += T;
    return CURATE_OK;
}

size_t curate_observer_cols(const curate_observer *o) { return o->cols; }
uint64_t curate_observer_rows(const curate_observer *o) { return o->rows; }
unsigned curate_observer_what(const curate_observer *o) { return o->what; }

void curate_observer_range(const curate_observer *o, float *min, float *max)
{
    if (min)
        *min = o->rows ? o->tmin : 0.0f;
    if (max)
        *max = o->rows ? o->tmax : 0.0f;
}

const double *curate_observer_sumsq(const curate_observer *o) { return o->sumsq; }
const double *curate_observer_sumabs(const curate_observer *o) { return o->sumabs; }
const float *curate_observer_channel_min(const curate_observer *o) { return o->cmin; }
const float *curate_observer_channel_max(const curate_observer *o) { return o->cmax; }
const curate_hist *curate_observer_hist(const curate_observer *o)
{
    return o->hist.counts ? &o->hist : NULL;
}

static curate_status channel_mean(const curate_observer *o, const double *sum, const char *what,
                                  float *out, curate_error *err)
{
    if (!sum)
        return curate_error_set(err, CURATE_ERR_INVALID, "observer: %s was not observed", what);
    double inv = o->rows ? 1.0 / (double)o->rows : 0.0;
    for (size_t j = 0; j < o->cols; j++)
        out[j] = (float)(sum[j] * inv);
    return CURATE_OK;
}

curate_status curate_observer_imatrix(const curate_observer *o, float *out, curate_error *err)
{
    return channel_mean(o, o->sumsq, "the sum of squares", out, err);
}

curate_status curate_observer_absmean(const curate_observer *o, float *out, curate_error *err)
{
    return channel_mean(o, o->sumabs, "the mean |x|", out, err);
}

curate_status curate_observer_hessian(const curate_observer *o, float *out, curate_error *err)
{
    if (!o->hf)
        return curate_error_set(err, CURATE_ERR_INVALID, "observer: the Hessian was not observed");
    size_t n = o->cols;
    double inv = o->rows ? 1.0 / (double)o->rows : 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++) {
            double v = o->hd ? o->hd[i * n + j] : (double)o->hf[i * n + j];
            out[i * n + j] = out[j * n + i] = (float)(v * inv);
        }
    return CURATE_OK;
}
