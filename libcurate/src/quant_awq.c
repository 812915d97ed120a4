/*
 * quant_awq.c - activation-aware weight quantization (Lin et al., 2023):
 * scale up the input channels that carry large activations before
 * rounding, so their weights lose less precision, and scale back after.
 *
 * The objective is the layer's output error E = tr(dW H dW^T) with
 * H = X^T X / n from the observer (no raw activations are kept).  Each
 * evaluation is one BLAS product, 2 rows cols^2 flops.
 */
#include "quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

/*
 * s_j = max(a_j^alpha, 1e-4) / sqrt(max s * min s); alpha == 0 gives
 * exactly 1 (special-cased: the normalisation must not leave 1 +- ulp, or
 * alpha = 0 would not reproduce rtn bit for bit).  The normalisation
 * centres the scales around 1 on a log scale, keeping W diag(s) in the
 * magnitude range of W.
 */
static void awq_scales(const float *absmean, size_t n, float alpha, float *s)
{
    if (alpha == 0.0f) {
        for (size_t j = 0; j < n; j++)
            s[j] = 1.0f;
        return;
    }
    float lo = INFINITY, hi = 0.0f;
    for (size_t j = 0; j < n; j++) {
        float v = powf(absmean[j], alpha);
        s[j] = v > 1e-4f ? v : 1e-4f;
        lo = s[j] < lo ? s[j] : lo;
        hi = s[j] > hi ? s[j] : hi;
    }
    float norm = sqrtf(hi * lo);
    for (size_t j = 0; j < n; j++)
        s[j] /= norm;
}

static void scale_cols(const float *w, size_t rows, size_t n, const float *s, float *ws)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++)
            ws[r * n + j] = w[r * n + j] * s[j];
}

static void unscale_cols(float *q, size_t rows, size_t n, const float *s)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++)
            q[r * n + j] /= s[j];
}

/*
 * Per group, the clipping factor minimising the group's own share of the
 * output error, dw_g^T H_gg dw_g, for every row at once: one product
 * D H_gg per candidate.  ws = W diag(s); d and e are rows x G scratch.
 */
static void clip_groups(const curate_quant_config *cfg, const float *w, const float *ws,
                        size_t rows, size_t n, const float *s, const float *h, float *p,
                        float *dmat, float *emat, double *best, float *xq)
{
    size_t G = cfg->group_size && cfg->group_size < n ? cfg->group_size : n;
    size_t ng = curate_quant_n_groups(n, cfg->group_size);
    for (size_t g = 0; g < ng; g++) {
        size_t c0 = g * G, len = c0 + G <= n ? G : n - c0;
        for (unsigned k = 0; k < cfg->awq_clip_grid; k++) {
            float f = curate_quant_clip_factor(k, cfg->awq_clip_grid, cfg->awq_clip_min);
            for (size_t r = 0; r < rows; r++) {
                const float *x = ws + r * n + c0;
                float d, m;
                curate_quant_group_params(cfg, x, len, f, &d, &m);
                curate_quant_group_apply(cfg, x, len, d, m, xq, NULL);
                for (size_t t = 0; t < len; t++)
                    dmat[r * len + t] = w[r * n + c0 + t] - xq[t] / s[c0 + t];
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)len, (int)len,
                        1.0f, dmat, (int)len, h + c0 * n + c0, (int)n, 0.0f, emat, (int)len);
            for (size_t r = 0; r < rows; r++) {
                double e = 0.0;
                for (size_t t = 0; t < len; t++)
                    e += (double)dmat[r * len + t] * (double)emat[r * len + t];
                if (k == 0 || e < best[r]) {
                    best[r] = e;
                    p[r * ng + g] = f;
                }
            }
        }
    }
}

curate_status curate_quant_awq_run(const curate_quant_config *cfg, const float *w, size_t rows,
                                   size_t n, const curate_quant_stats *st,
                                   const curate_quant_out *out, curate_quant_report *rep,
                                   curate_error *err)
{
    for (size_t j = 0; j < n; j++)
        if (st->absmean[j] < 0.0f)
            return curate_error_set(err, CURATE_ERR_RANGE, "awq: mean |x| of channel %zu is negative",
                                    j);
    size_t G = cfg->group_size && cfg->group_size < n ? cfg->group_size : n;
    size_t ng = curate_quant_n_groups(n, cfg->group_size);
    float *s = malloc(n * sizeof(float));
    float *sbest = malloc(n * sizeof(float));
    float *ws = malloc(rows * n * sizeof(float));
    float *qs = malloc(rows * n * sizeof(float));
    float *p = malloc(rows * ng * sizeof(float));
    float *dmat = malloc(rows * G * sizeof(float));
    float *emat = malloc(rows * G * sizeof(float));
    double *best = malloc(rows * sizeof(double));
    float *xq = malloc(G * sizeof(float));
    curate_status rc = CURATE_OK;
    if (!s || !sbest || !ws || !qs || !p || !dmat || !emat || !best || !xq) {
        rc = curate_error_set(err, CURATE_ERR_NOMEM, "awq: out of memory for %zu x %zu", rows, n);
        goto done;
    }

    /* The scale search: alpha on an even grid over [0, 1], rtn rounding.
     * The first candidate is alpha = 0 (s = 1, plain rtn) and only a
     * strictly smaller error replaces it. */
    double ebest = INFINITY;
    float abest = 0.0f;
    for (unsigned k = 0; k < cfg->awq_grid; k++) {
        float alpha = cfg->awq_grid > 1 ? (float)k / (float)(cfg->awq_grid - 1) : 0.0f;
        awq_scales(st->absmean, n, alpha, s);
        scale_cols(w, rows, n, s, ws);
        curate_quant_rows_apply(cfg, ws, rows, n, NULL, qs, NULL, NULL, NULL);
        unscale_cols(qs, rows, n, s);
        double e;
        if ((rc = curate_quant_output_error(w, qs, rows, n, st->hessian, &e, err)) != CURATE_OK)
            goto done;
        if (k == 0 || e < ebest) {
            ebest = e;
            abest = alpha;
            memcpy(sbest, s, n * sizeof(float));
        }
    }
    scale_cols(w, rows, n, sbest, ws);

    /* The clipping search on top; kept only if the whole matrix gains:
     * each group's choice ignores the cross terms of H between groups, so
     * the sum of group optima need not be optimal for the matrix. */
    int clipped = 0;
    if (cfg->awq_clip_grid > 0) {
        clip_groups(cfg, w, ws, rows, n, sbest, st->hessian, p, dmat, emat, best, xq);
        curate_quant_rows_apply(cfg, ws, rows, n, p, qs, NULL, NULL, NULL);
        unscale_cols(qs, rows, n, sbest);
        double e;
        if ((rc = curate_quant_output_error(w, qs, rows, n, st->hessian, &e, err)) != CURATE_OK)
            goto done;
        clipped = e < ebest;
    }
    curate_quant_rows_apply(cfg, ws, rows, n, clipped ? p : NULL, out->q, out->scales, out->mins,
                            out->codes);
    unscale_cols(out->q, rows, n, sbest);
    if (out->in_scale)
        memcpy(out->in_scale, sbest, n * sizeof(float));
    if (rep) {
        rep->awq_alpha = abest;
        rep->awq_clipped = clipped;
    }
done:
    free(s);
    free(sbest);
    free(ws);
    free(qs);
    free(p);
    free(dmat);
    free(emat);
    free(best);
    free(xq);
    return rc;
}
