/*
 * actquant.c - activation ranges from histograms, and fake quantization.
 *
 * The histogram searches work on bin edges only: the histogram cannot say
 * where inside a bin a value lies, so finer candidates would only pretend
 * to more precision (percentile interpolates, as a best guess).
 */
#include "curate/actquant.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void curate_act_config_default(curate_act_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bits = 8;
    cfg->method = CURATE_ACT_MINMAX;
    cfg->percentile = 99.99;
    cfg->scope = CURATE_ACT_TENSOR;
}

const char *curate_act_method_name(curate_act_method m)
{
    switch (m) {
    case CURATE_ACT_MINMAX: return "minmax";
    case CURATE_ACT_PERCENTILE: return "percentile";
    case CURATE_ACT_KL: return "kl";
    case CURATE_ACT_MSE: return "mse";
    }
    return "?";
}

curate_status curate_act_method_parse(const char *spec, curate_act_config *cfg, curate_error *err)
{
    static const char pre[] = "percentile";
    if (!spec)
        spec = "";
    if (strcmp(spec, "minmax") == 0) {
        cfg->method = CURATE_ACT_MINMAX;
    } else if (strcmp(spec, "kl") == 0) {
        cfg->method = CURATE_ACT_KL;
    } else if (strcmp(spec, "mse") == 0) {
        cfg->method = CURATE_ACT_MSE;
    } else if (strcmp(spec, pre) == 0) {
        cfg->method = CURATE_ACT_PERCENTILE;
        cfg->percentile = 99.99;
    } else if (strncmp(spec, pre, sizeof pre - 1) == 0 && spec[sizeof pre - 1] == ':') {
        const char *num = spec + sizeof pre;
        char *end = NULL;
        errno = 0;
        double p = strtod(num, &end);
        if (end == num || *end || errno || !(p > 0.0 && p <= 100.0))
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "invalid percentile '%s' (a number in (0, 100])", num);
        cfg->method = CURATE_ACT_PERCENTILE;
        cfg->percentile = p;
    } else {
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "unknown activation method '%s' (minmax, percentile[:P], kl, mse)",
                                spec);
    }
    return CURATE_OK;
}

curate_status curate_act_scope_parse(const char *spec, curate_act_config *cfg, curate_error *err)
{
    if (spec && strcmp(spec, "tensor") == 0)
        cfg->scope = CURATE_ACT_TENSOR;
    else if (spec && strcmp(spec, "token") == 0)
        cfg->scope = CURATE_ACT_TOKEN;
    else
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "unknown activation scope '%s' (tensor, token)", spec ? spec : "");
    return CURATE_OK;
}

unsigned curate_act_qmax(unsigned bits)
{
    return bits >= 2 && bits <= 16 ? (1u << (bits - 1)) - 1 : 0;
}

/* ---- threshold searches ------------------------------------------------------ */

/*
 * The histogram cannot say where values sit inside a bin; interpolating
 * linearly assumes they are spread evenly, which is the best guess and is
 * exact in the limit of narrow bins.  The result never exceeds amax.
 */
static double thr_percentile(const curate_hist *h, size_t last, double pct)
{
    double width = h->range / (double)h->n_bins;
    double target = pct / 100.0 * (double)h->total;
    double cum = 0.0;
    for (size_t k = 0; k <= last; k++) {
        double c = (double)h->counts[k];
        if (c > 0.0 && cum + c >= target) {
            double frac = (target - cum) / c;
            frac = frac < 0.0 ? 0.0 : frac;
            return width * ((double)k + frac);
        }
        cum += c;
    }
    return h->amax;
}

/*
 * KL(P || Q) for the threshold at edge i (see the header); INFINITY if
 * undefined.  Level l covers bins [l i / levels, (l + 1) i / levels): the
 * integer split spreads the remainder over the levels instead of lumping
 * it into the last one.  Q spreads a level's count over the bins that are
 * non-empty in P only: the quantized distribution should keep P's support,
 * otherwise empty bins would receive mass, and every candidate would pay
 * for the mere coarseness of the histogram instead of for clipping.
 */
static double kl_at(const curate_hist *h, size_t i, size_t levels, uint64_t outliers)
{
    const uint64_t *n = h->counts;
    double psum = 0.0, qsum = 0.0;
    for (size_t k = 0; k < i; k++)
        psum += (double)n[k];
    psum += (double)outliers;
    qsum = psum - (double)outliers;
    if (qsum <= 0.0)
        return INFINITY;
    double kl = 0.0;
    for (size_t l = 0; l < levels; l++) {
        size_t s = l * i / levels, e = (l + 1) * i / levels;
        double sum = 0.0;
        size_t nz = 0;
        for (size_t k = s; k < e; k++) {
            sum += (double)n[k];
            nz += n[k] > 0 || (k == i - 1 && outliers > 0);
        }
        for (size_t k = s; k < e; k++) {
            double pk = (double)n[k] + (k == i - 1 ? (double)outliers : 0.0);
            if (pk <= 0.0)
                continue;
            double qk = sum / (double)nz;
            if (qk <= 0.0)
                return INFINITY;
            double p = pk / psum, q = qk / qsum;
            kl += p * log(p / q);
        }
    }
    return kl;
}

static double thr_kl(const curate_hist *h, size_t last, unsigned bits)
{
    size_t levels = (size_t)1 << (bits - 1);
    if (last + 1 <= levels) /* fewer occupied bins than levels: nothing to gain by clipping */
        return h->amax;
    double width = h->range / (double)h->n_bins;
    /* outliers beyond edge i, kept as a running suffix sum */
    uint64_t beyond = 0;
    for (size_t k = levels; k <= last; k++)
        beyond += h->counts[k];
    double best = INFINITY;
    size_t best_i = last + 1;
    for (size_t i = levels; i <= last + 1; i++) {
        double kl = kl_at(h, i, levels, beyond);
        if (kl < best) {
            best = kl;
            best_i = i;
        }
        if (i <= last)
            beyond -= h->counts[i];
    }
    return width * (double)best_i;
}

/*
 * The expected error model: a value inside the range is off by the
 * rounding noise of a uniform quantizer (step^2 / 12, exact on average
 * when the values are spread over many steps); a clipped value is off by
 * its distance to t, taken at its bin's centre.  Direct O(bins^2) sums:
 * prefix sums would be O(bins) but subtract large nearly equal terms.
 */
static double thr_mse(const curate_hist *h, size_t last, unsigned bits)
{
    double width = h->range / (double)h->n_bins;
    double qmax = (double)curate_act_qmax(bits);
    double best = INFINITY, best_t = h->amax;
    for (size_t i = 1; i <= last + 1; i++) {
        double t = width * (double)i, step = t / qmax;
        double in = 0.0, out = 0.0;
        for (size_t k = 0; k < i; k++)
            in += (double)h->counts[k];
        for (size_t k = i; k <= last; k++) {
            double c = width * ((double)k + 0.5) - t;
            out += (double)h->counts[k] * c * c;
        }
        double e = in * step * step / 12.0 + out;
        if (e < best) {
            best = e;
            best_t = t;
        }
    }
    return best_t;
}

curate_status curate_act_threshold_from_hist(const curate_hist *h, const curate_act_config *cfg,
                                             double *threshold, curate_error *err)
{
    if (!cfg || cfg->bits < 2 || cfg->bits > 16)
        return curate_error_set(err, CURATE_ERR_INVALID, "activation bits must be in 2..16");
    if (!h || !h->counts || h->n_bins < 2 || h->n_bins % 2 || !(h->range >= 0.0) ||
        !(h->amax >= 0.0) || h->amax > h->range)
        return curate_error_set(err, CURATE_ERR_INVALID, "malformed activation histogram");
    if (cfg->method == CURATE_ACT_PERCENTILE && !(cfg->percentile > 0.0 && cfg->percentile <= 100.0))
        return curate_error_set(err, CURATE_ERR_INVALID, "percentile must be in (0, 100]");
    *threshold = 0.0;
    if (h->total == 0 || h->range == 0.0 || h->amax == 0.0)
        return CURATE_OK;
    size_t last = h->n_bins - 1;
    while (last > 0 && h->counts[last] == 0)
        last--;
    double t;
    switch (cfg->method) {
    case CURATE_ACT_MINMAX: t = h->amax; break;
    case CURATE_ACT_PERCENTILE: t = thr_percentile(h, last, cfg->percentile); break;
    case CURATE_ACT_KL: t = thr_kl(h, last, cfg->bits); break;
    case CURATE_ACT_MSE: t = thr_mse(h, last, cfg->bits); break;
    default: return curate_error_set(err, CURATE_ERR_INVALID, "unknown activation method");
    }
    *threshold = t < h->amax ? t : h->amax;
    return CURATE_OK;
}

curate_status curate_act_scale_from_hist(const curate_hist *h, const curate_act_config *cfg,
                                         float *scale, curate_error *err)
{
    double t;
    curate_status st = curate_act_threshold_from_hist(h, cfg, &t, err);
    if (st == CURATE_OK)
        *scale = (float)(t / (double)curate_act_qmax(cfg->bits));
    return st;
}

/* ---- fake quantization -------------------------------------------------------- */

/*
 * Clamp before rounding (equivalent, since the bounds are integers) so the
 * value never leaves the small integer range; no float-to-int conversion,
 * so NaN and Inf have defined results: NaN stays NaN (a broken forward
 * pass should stay visible in the perplexity), Inf clamps.
 */
static void fq_row(float *x, size_t n, float qmax, float scale)
{
    if (!(scale > 0.0f)) {
        for (size_t j = 0; j < n; j++)
            x[j] = isnan(x[j]) ? x[j] : 0.0f;
        return;
    }
    float id = 1.0f / scale;
    int div = !isfinite(id);
    for (size_t j = 0; j < n; j++) {
        float v = div ? x[j] / scale : x[j] * id;
        if (v > qmax)
            v = qmax;
        else if (v < -qmax)
            v = -qmax;
        x[j] = roundf(v) * scale; /* NaN passes through */
    }
}

void curate_act_fake_quant(float *x, size_t rows, size_t cols, unsigned bits, float scale)
{
    unsigned qmax = curate_act_qmax(bits);
    if (!qmax || !x)
        return;
    for (size_t r = 0; r < rows; r++)
        fq_row(x + r * cols, cols, (float)qmax, scale);
}

void curate_act_fake_quant_token(float *x, size_t rows, size_t cols, unsigned bits)
{
    unsigned qmax = curate_act_qmax(bits);
    if (!qmax || !x)
        return;
    /* The scale comes from the finite values only, so one Inf does not turn
     * the whole row into NaN (Inf * 0); it is clipped like any outlier. */
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * cols, amax = 0.0f;
        for (size_t j = 0; j < cols; j++)
            if (isfinite(row[j]) && fabsf(row[j]) > amax)
                amax = fabsf(row[j]);
        fq_row(row, cols, (float)qmax, amax / (float)qmax);
    }
}
