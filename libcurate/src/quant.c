/*
 * quant.c - the number formats, one-group rounding, the clipping search,
 * the rtn/mse/imatrix methods and the entry point that checks arguments
 * and dispatches (awq and gptq live in their own files).
 *
 * Everything here is scalar and simple on purpose: it is the reference the
 * BLAS-based methods build on.  Sums of squared errors are kept in double.
 */
#include "quant_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

/* ---- methods and config ------------------------------------------------- */

static const char *const method_names[CURATE_QUANT_METHOD_COUNT_] = {
    [CURATE_QUANT_RTN] = "rtn",   [CURATE_QUANT_MSE] = "mse", [CURATE_QUANT_IMATRIX] = "imatrix",
    [CURATE_QUANT_AWQ] = "awq",   [CURATE_QUANT_GPTQ] = "gptq",
};

const char *curate_quant_method_name(curate_quant_method m)
{
    return (unsigned)m < CURATE_QUANT_METHOD_COUNT_ ? method_names[m] : "?";
}

curate_status curate_quant_method_parse(const char *name, curate_quant_method *out,
                                        curate_error *err)
{
    for (unsigned i = 0; name && i < CURATE_QUANT_METHOD_COUNT_; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (curate_quant_method)i;
            return CURATE_OK;
        }
    return curate_error_set(err, CURATE_ERR_INVALID,
                            "unknown quantization method '%s' (rtn, mse, imatrix, awq, gptq)",
                            name ? name : "");
}

void curate_quant_config_default(curate_quant_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->method = CURATE_QUANT_RTN;
    cfg->bits = 4;
    cfg->group_size = 32;
    cfg->clip_grid = 81;
    cfg->clip_min = 0.2f;
    cfg->awq_grid = 20;
    cfg->awq_clip_grid = 10;
    cfg->awq_clip_min = 0.55f;
    cfg->damp = 0.01f;
    cfg->block_size = 128;
}

curate_status curate_quant_config_check(const curate_quant_config *c, curate_error *err)
{
    if (!c)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: NULL config");
    if ((unsigned)c->method >= CURATE_QUANT_METHOD_COUNT_)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: unknown method %d", (int)c->method);
    if (c->bits < CURATE_QUANT_MIN_BITS || c->bits > CURATE_QUANT_MAX_BITS)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: bits must be in %d..%d, not %u",
                                CURATE_QUANT_MIN_BITS, CURATE_QUANT_MAX_BITS, c->bits);
    if (c->clip_grid < 1)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: clip_grid must be at least 1");
    if (!(c->clip_min > 0.0f && c->clip_min <= 1.0f))
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: clip_min must be in (0, 1]");
    if (c->awq_grid < 1)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: awq_grid must be at least 1");
    if (!(c->awq_clip_min > 0.0f && c->awq_clip_min <= 1.0f))
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: awq_clip_min must be in (0, 1]");
    if (!(c->damp >= 0.0f && c->damp <= 1e6f))
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: damp must be in [0, 1e6]");
    if (c->block_size < 1)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: block_size must be at least 1");
    return CURATE_OK;
}

size_t curate_quant_n_groups(size_t cols, size_t g)
{
    if (g == 0 || g >= cols)
        return cols ? 1 : 0;
    return cols / g + (cols % g != 0);
}

size_t curate_quant_last_group(size_t cols, size_t g)
{
    if (g == 0 || g >= cols)
        return cols;
    return cols % g ? cols % g : g;
}

/* ---- one group ------------------------------------------------------------ */

/*
 * The code range of a format, as floats: q in [qlo, qhi], code = q + off.
 * Codes are handled as floats until they are stored: every value involved
 * is a small integer, exactly representable, and this avoids float-to-int
 * conversions of values that could be out of range.
 */
typedef struct qfmt {
    int asym;
    float qlo, qhi, off;
} qfmt;

static qfmt fmt_of(const curate_quant_config *c)
{
    qfmt f;
    f.asym = c->asym != 0;
    float half = (float)(1u << (c->bits - 1));
    if (f.asym) {
        f.qlo = 0.0f;
        f.qhi = 2.0f * half - 1.0f;
        f.off = 0.0f;
    } else {
        f.qlo = c->restricted ? 1.0f - half : -half;
        f.qhi = half - 1.0f;
        f.off = half;
    }
    return f;
}

/* Round one value: the integer q (as a float) for x with scale d. */
static inline float round_one(const qfmt *f, float x, float d, float id, float m)
{
    float v = f->asym ? x - m : x;
    /* Multiplying by the reciprocal (not dividing by d) is what ggml's
     * reference quantizers do, so codes agree with theirs on the same d.
     * A subnormal d has no finite reciprocal; divide then. */
    v = isfinite(id) ? v * id : v / d;
    v = roundf(v);
    if (!(v >= f->qlo)) /* also catches a NaN (not reachable with finite input) */
        v = f->qlo;
    if (v > f->qhi)
        v = f->qhi;
    return v;
}

static inline float dequant_one(const qfmt *f, float q, float d, float m)
{
    return f->asym ? q * d + m : q * d;
}

void curate_quant_group_params(const curate_quant_config *cfg, const float *x, size_t n, float p,
                               float *d, float *m)
{
    unsigned b = cfg->bits;
    if (cfg->asym) {
        float lo = x[0], hi = x[0];
        for (size_t j = 1; j < n; j++) {
            lo = x[j] < lo ? x[j] : lo;
            hi = x[j] > hi ? x[j] : hi;
        }
        /* p == 1 leaves lo and hi untouched: a + (lo - a) may round. */
        if (p != 1.0f) {
            /* Shrink towards 0 when the range holds it (clipping both tails
             * in proportion), else towards the end nearest 0 (clip only the
             * far tail: the near end is the group's bulk). */
            float a = lo > 0.0f ? lo : (hi < 0.0f ? hi : 0.0f);
            lo = a + p * (lo - a);
            hi = a + p * (hi - a);
        }
        *d = (hi - lo) / (float)((1u << b) - 1);
        *m = lo;
    } else if (cfg->restricted) {
        float amax = 0.0f;
        for (size_t j = 0; j < n; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        *d = p * amax / (float)((1u << (b - 1)) - 1);
        *m = 0.0f;
    } else {
        /* The signed extreme, first one on ties (strictly greater), as
         * ggml's Q4_0 picks it; dividing it by -2^(b-1) puts it on the
         * most negative code whatever its sign. */
        float amax = 0.0f, xm = 0.0f;
        for (size_t j = 0; j < n; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                xm = x[j];
            }
        *d = p * xm / -(float)(1u << (b - 1));
        *m = 0.0f;
    }
}

double curate_quant_group_apply(const curate_quant_config *cfg, const float *x, size_t n, float d,
                                float m, float *xq, uint8_t *codes)
{
    qfmt f = fmt_of(cfg);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    double e = 0.0;
    for (size_t j = 0; j < n; j++) {
        float q = round_one(&f, x[j], d, id, m);
        float y = dequant_one(&f, q, d, m);
        if (xq)
            xq[j] = y;
        if (codes)
            codes[j] = (uint8_t)(q + f.off);
        double dx = (double)x[j] - (double)y;
        e += dx * dx;
    }
    return e;
}

/* The (optionally weighted) error of rounding x with (d, m), nothing stored. */
static double group_error(const qfmt *f, const float *x, size_t n, float d, float m,
                          const float *wt)
{
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    double e = 0.0;
    for (size_t j = 0; j < n; j++) {
        double dx = (double)x[j] - (double)dequant_one(f, round_one(f, x[j], d, id, m), d, m);
        e += wt ? (double)wt[j] * dx * dx : dx * dx;
    }
    return e;
}

float curate_quant_clip_factor(unsigned i, unsigned n, float pmin)
{
    if (n <= 1 || i == 0)
        return 1.0f;
    return (float)(1.0 - (double)i * (1.0 - (double)pmin) / (double)(n - 1));
}

float curate_quant_clip_search(const curate_quant_config *cfg, const float *x, size_t n,
                               const float *wt, unsigned grid, float pmin, float *d, float *m)
{
    /* Factor 1 is tried first and only a strictly smaller error replaces
     * it, so a group where clipping does not help keeps rtn's rounding
     * bit for bit (the "never worse than rtn" property rests on this).
     * A zero error cannot be improved: stop there. */
    qfmt f = fmt_of(cfg);
    float best_p = 1.0f;
    curate_quant_group_params(cfg, x, n, 1.0f, d, m);
    double best = group_error(&f, x, n, *d, *m, wt);
    for (unsigned i = 1; i < grid && best > 0.0; i++) {
        float p = curate_quant_clip_factor(i, grid, pmin), dd, mm;
        curate_quant_group_params(cfg, x, n, p, &dd, &mm);
        double e = group_error(&f, x, n, dd, mm, wt);
        if (e < best) {
            best = e;
            best_p = p;
            *d = dd;
            *m = mm;
        }
    }
    return best_p;
}

double curate_quant_rows_apply(const curate_quant_config *cfg, const float *w, size_t rows,
                               size_t cols, const float *p, float *q, float *scales, float *mins,
                               uint8_t *codes)
{
    size_t G = cfg->group_size && cfg->group_size < cols ? cfg->group_size : cols;
    size_t ng = curate_quant_n_groups(cols, cfg->group_size);
    double e = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < ng; g++) {
            size_t c0 = g * G, n = c0 + G <= cols ? G : cols - c0;
            size_t at = r * cols + c0;
            float d, m;
            curate_quant_group_params(cfg, w + at, n, p ? p[r * ng + g] : 1.0f, &d, &m);
            e += curate_quant_group_apply(cfg, w + at, n, d, m, q + at, codes ? codes + at : NULL);
            if (scales)
                scales[r * ng + g] = d;
            if (mins)
                mins[r * ng + g] = m;
        }
    return e;
}

int curate_quant_all_finite(const float *x, size_t n)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= isfinite(x[i]) != 0;
    return ok;
}

/* ---- error measures -------------------------------------------------------- */

double curate_quant_sq_error(const float *w, const float *q, size_t rows, size_t cols,
                             const float *wt)
{
    double e = 0.0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            double dx = (double)w[r * cols + j] - (double)q[r * cols + j];
            e += wt ? (double)wt[j] * dx * dx : dx * dx;
        }
    return e;
}

curate_status curate_quant_output_error(const float *w, const float *q, size_t rows, size_t cols,
                                        const float *h, double *out, curate_error *err)
{
    if (cols > INT_MAX || rows > INT_MAX)
        return curate_error_set(err, CURATE_ERR_RANGE, "quant: %zu x %zu is too large for BLAS",
                                rows, cols);
    /* Rows in chunks so the scratch stays small for tall matrices (an
     * output matrix of 32000 rows would otherwise need two copies).  The
     * products are float, as in every other BLAS path here; the final
     * sum is double because it adds rows x cols terms. */
    size_t chunk = rows < 256 ? rows : 256;
    float *dw = malloc(chunk * cols * sizeof(float));
    float *dh = malloc(chunk * cols * sizeof(float));
    if (!dw || !dh) {
        free(dw);
        free(dh);
        return curate_error_set(err, CURATE_ERR_NOMEM, "quant: out of memory");
    }
    double e = 0.0;
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        for (size_t i = 0; i < nr * cols; i++)
            dw[i] = w[r0 * cols + i] - q[r0 * cols + i];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)cols, (int)cols, 1.0f,
                    dw, (int)cols, h, (int)cols, 0.0f, dh, (int)cols);
        for (size_t i = 0; i < nr * cols; i++)
            e += (double)dw[i] * (double)dh[i];
    }
    free(dw);
    free(dh);
    *out = e;
    return CURATE_OK;
}

/* ---- the entry point ------------------------------------------------------- */

/*
 * mse and imatrix: the clipping search group by group.  The importance is
 * used as given (a mean square); its overall scale does not change which
 * factor wins, so sums or means from the observer give the same result.
 */
static curate_status quant_search(const curate_quant_config *cfg, const float *w, size_t rows,
                                  size_t cols, const float *imp, const curate_quant_out *out)
{
    size_t G = cfg->group_size && cfg->group_size < cols ? cfg->group_size : cols;
    size_t ng = curate_quant_n_groups(cols, cfg->group_size);
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < ng; g++) {
            size_t c0 = g * G, n = c0 + G <= cols ? G : cols - c0;
            size_t at = r * cols + c0;
            float d, m;
            curate_quant_clip_search(cfg, w + at, n, imp ? imp + c0 : NULL, cfg->clip_grid,
                                     cfg->clip_min, &d, &m);
            curate_quant_group_apply(cfg, w + at, n, d, m, out->q + at,
                                     out->codes ? out->codes + at : NULL);
            if (out->scales)
                out->scales[r * ng + g] = d;
            if (out->mins)
                out->mins[r * ng + g] = m;
        }
    return CURATE_OK;
}

static curate_status need(const float *stat, size_t n, const char *what,
                          const curate_quant_config *cfg, curate_error *err)
{
    if (!stat)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: method %s needs %s",
                                curate_quant_method_name(cfg->method), what);
    if (!curate_quant_all_finite(stat, n))
        return curate_error_set(err, CURATE_ERR_RANGE, "quant: %s holds a non-finite value", what);
    return CURATE_OK;
}

curate_status curate_quant_matrix(const curate_quant_config *cfg, const float *w, size_t rows,
                                  size_t cols, const curate_quant_stats *stats,
                                  const curate_quant_out *out, curate_quant_report *rep,
                                  curate_error *err)
{
    curate_status st = curate_quant_config_check(cfg, err);
    if (st != CURATE_OK)
        return st;
    if (!w || !out || !out->q)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: NULL weights or output");
    if (rows == 0 || cols == 0)
        return curate_error_set(err, CURATE_ERR_INVALID, "quant: empty %zu x %zu matrix", rows,
                                cols);
    if (rows > SIZE_MAX / cols || rows * cols > SIZE_MAX / sizeof(double) ||
        cols > SIZE_MAX / cols || cols * cols > SIZE_MAX / sizeof(double))
        return curate_error_set(err, CURATE_ERR_RANGE, "quant: a %zu x %zu matrix is too large",
                                rows, cols);
    if ((cfg->method == CURATE_QUANT_AWQ || cfg->method == CURATE_QUANT_GPTQ) &&
        (rows > INT_MAX || cols > INT_MAX))
        return curate_error_set(err, CURATE_ERR_RANGE, "quant: %zu x %zu is too large for BLAS",
                                rows, cols);
    /* A NaN would slip through every comparison of the searches and into
     * the BLAS products without a trace: refuse it up front. */
    if (!curate_quant_all_finite(w, rows * cols))
        return curate_error_set(err, CURATE_ERR_RANGE, "quant: the weights hold a non-finite value");
    static const curate_quant_stats none;
    const curate_quant_stats *s = stats ? stats : &none;

    size_t dead = 0;
    switch (cfg->method) {
    case CURATE_QUANT_RTN:
        curate_quant_rows_apply(cfg, w, rows, cols, NULL, out->q, out->scales, out->mins,
                                out->codes);
        break;
    case CURATE_QUANT_MSE:
        st = quant_search(cfg, w, rows, cols, NULL, out);
        break;
    case CURATE_QUANT_IMATRIX:
        if ((st = need(s->imp, cols, "the importance matrix", cfg, err)) != CURATE_OK)
            return st;
        for (size_t j = 0; j < cols; j++)
            if (s->imp[j] < 0.0f)
                return curate_error_set(err, CURATE_ERR_RANGE,
                                        "quant: importance of channel %zu is negative", j);
        st = quant_search(cfg, w, rows, cols, s->imp, out);
        break;
    case CURATE_QUANT_AWQ:
    case CURATE_QUANT_GPTQ:
        if ((st = need(s->hessian, cols * cols, "the Hessian", cfg, err)) != CURATE_OK)
            return st;
        for (size_t j = 0; j < cols; j++)
            dead += s->hessian[j * cols + j] == 0.0f;
        if (cfg->method == CURATE_QUANT_AWQ) {
            if ((st = need(s->absmean, cols, "the mean |x|", cfg, err)) != CURATE_OK)
                return st;
            st = curate_quant_awq_run(cfg, w, rows, cols, s, out, rep, err);
        } else {
            st = curate_quant_gptq_run(cfg, w, rows, cols, s->hessian, out, rep, err);
        }
        break;
    default:
        return curate_error_set(err, CURATE_ERR_INTERNAL, "quant: unhandled method");
    }
    if (st != CURATE_OK)
        return st;
    if (out->in_scale && cfg->method != CURATE_QUANT_AWQ)
        for (size_t j = 0; j < cols; j++)
            out->in_scale[j] = 1.0f;
    if (rep) {
        rep->n_groups = curate_quant_n_groups(cols, cfg->group_size);
        rep->last_group = curate_quant_last_group(cols, cfg->group_size);
        rep->short_group = cfg->group_size && rep->last_group < cfg->group_size;
        rep->weight_err = curate_quant_sq_error(w, out->q, rows, cols, NULL);
        rep->dead_cols = dead;
        if (cfg->method != CURATE_QUANT_AWQ) {
            rep->awq_alpha = 0.0f;
            rep->awq_clipped = 0;
        }
        if (cfg->method != CURATE_QUANT_GPTQ)
            rep->gptq_damp = 0.0;
    }
    return CURATE_OK;
}
