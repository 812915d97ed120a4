/*
 * quant_ref.c - scalar references for the BLAS/LAPACK paths of the weight
 * quantizers: plain loops, double precision, no batching.  Slow (cubic in
 * cols with no blocking); only the unit tests call them.
 *
 * They share with the fast paths only the one-group rounding of quant.c
 * (itself a plain scalar routine checked against hand-derived codes):
 * the linear algebra, the permutation, the scale computation and the
 * error propagation are written again from the textbook, so that a
 * mistake in the fast path's indexing, batching or BLAS/LAPACK calls is
 * not repeated here.
 */
#include "quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double curate_quant_output_error_ref(const float *w, const float *q, size_t rows, size_t cols,
                                     const float *h)
{
    double e = 0.0;
    double *dw = malloc(cols * sizeof(double));
    if (!dw)
        return NAN;
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++)
            dw[j] = (double)w[r * cols + j] - (double)q[r * cols + j];
        for (size_t i = 0; i < cols; i++) {
            double t = 0.0;
            for (size_t j = 0; j < cols; j++)
                t += (double)h[i * cols + j] * dw[j];
            e += dw[i] * t;
        }
    }
    free(dw);
    return e;
}

/* a = L L^T in place (lower triangle; the upper is zeroed).  0 if not positive definite. */
static int chol_lower(double *a, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (size_t k = 0; k < j; k++)
            d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0.0))
            return 0;
        d = sqrt(d);
        a[j * n + j] = d;
        for (size_t i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (size_t k = 0; k < j; k++)
                s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / d;
        }
        for (size_t i = 0; i < j; i++)
            a[i * n + j] = 0.0;
    }
    return 1;
}

/* From L (lower), A^-1 = L^-T L^-1 into inv. */
static void chol_inverse(const double *l, size_t n, double *linv, double *inv)
{
    memset(linv, 0, n * n * sizeof(double));
    for (size_t j = 0; j < n; j++) { /* forward substitution, column j of L^-1 */
        linv[j * n + j] = 1.0 / l[j * n + j];
        for (size_t i = j + 1; i < n; i++) {
            double s = 0.0;
            for (size_t k = j; k < i; k++)
                s -= l[i * n + k] * linv[k * n + j];
            linv[i * n + j] = s / l[i * n + i];
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t k = i > j ? i : j; k < n; k++)
                s += linv[k * n + i] * linv[k * n + j];
            inv[i * n + j] = s;
        }
}

curate_status curate_quant_gptq_ref(const curate_quant_config *cfg, const float *w, size_t rows,
                                    size_t n, const float *h, float *q, uint8_t *codes)
{
    size_t G = cfg->group_size && cfg->group_size < n ? cfg->group_size : n;
    size_t ng = curate_quant_n_groups(n, cfg->group_size);
    int fixed = G == n || cfg->act_order;
    size_t *perm = malloc(n * sizeof *perm);
    double *a = malloc(n * n * sizeof(double));
    double *b = malloc(n * n * sizeof(double));
    double *c = malloc(n * n * sizeof(double));
    double *wr = malloc(n * sizeof(double));
    float *tmp = malloc(n * sizeof(float));
    float *pd = malloc(ng * sizeof(float));
    float *pm = malloc(ng * sizeof(float));
    curate_status st = CURATE_OK;
    if (!perm || !a || !b || !c || !wr || !tmp || !pd || !pm) {
        st = CURATE_ERR_NOMEM;
        goto done;
    }
    /* Permutation: insertion sort by decreasing diagonal, stable on ties
     * (the same order as the fast path's qsort with an index tie-break,
     * reached another way). */
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        if (cfg->act_order)
            while (k > 0 && h[perm[k - 1] * n + perm[k - 1]] < h[i * n + i]) {
                perm[k] = perm[k - 1];
                k--;
            }
        perm[k] = i;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            a[i * n + j] = h[perm[i] * n + perm[j]];
    double mean = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (a[i * n + i] == 0.0)
            a[i * n + i] = 1.0;
        mean += a[i * n + i];
    }
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        a[i * n + i] += (double)cfg->damp * mean;
    if (!chol_lower(a, n)) {
        st = CURATE_ERR_MODEL;
        goto done;
    }
    /* The same damping as the fast path's first attempt; no retries, the
     * tests give it Hessians that need none. */
    chol_inverse(a, n, b, c); /* c = H^-1 */
    if (!chol_lower(c, n)) {  /* c = L2, H^-1 = L2 L2^T, so U = L2^T */
        st = CURATE_ERR_MODEL;
        goto done;
    }

    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < n; i++)
            wr[i] = (double)w[r * n + perm[i]];
        if (fixed)
            for (size_t g = 0; g < ng; g++) {
                const float *x = w + r * n + g * G;
                size_t len = g * G + G <= n ? G : n - g * G;
                if (cfg->gptq_clip)
                    curate_quant_clip_search(cfg, x, len, NULL, cfg->clip_grid, cfg->clip_min,
                                             &pd[g], &pm[g]);
                else
                    curate_quant_group_params(cfg, x, len, 1.0f, &pd[g], &pm[g]);
            }
        for (size_t i = 0; i < n; i++) {
            size_t col = perm[i], g = col / G;
            if (!fixed && i % G == 0) {
                size_t len = i + G <= n ? G : n - i;
                for (size_t t = 0; t < len; t++)
                    tmp[t] = (float)wr[i + t];
                if (cfg->gptq_clip)
                    curate_quant_clip_search(cfg, tmp, len, NULL, cfg->clip_grid, cfg->clip_min,
                                             &pd[g], &pm[g]);
                else
                    curate_quant_group_params(cfg, tmp, len, 1.0f, &pd[g], &pm[g]);
            }
            float x = (float)wr[i], y;
            uint8_t code;
            curate_quant_group_apply(cfg, &x, 1, pd[g], pm[g], &y, &code);
            q[r * n + col] = y;
            if (codes)
                codes[r * n + col] = code;
            /* No lazy batches: the error goes into every later column at
             * once, U[i][j] = L2[j][i]. */
            double e = (wr[i] - (double)y) / c[i * n + i];
            for (size_t j = i + 1; j < n; j++)
                wr[j] -= e * c[j * n + i];
        }
    }
done:
    free(perm);
    free(a);
    free(b);
    free(c);
    free(wr);
    free(tmp);
    free(pd);
    free(pm);
    return st;
}

/* The group's share of the output error, dw_g^T H_gg dw_g, by loops. */
static double group_out_err(const double *dw, const float *h, size_t n, size_t c0, size_t len)
{
    double e = 0.0;
    for (size_t i = 0; i < len; i++)
        for (size_t j = 0; j < len; j++)
            e += dw[i] * (double)h[(c0 + i) * n + c0 + j] * dw[j];
    return e;
}

curate_status curate_quant_awq_ref(const curate_quant_config *cfg, const float *w, size_t rows,
                                   size_t n, const float *absmean, const float *h, float *q,
                                   float *alpha_out, int *clipped_out)
{
    size_t G = cfg->group_size && cfg->group_size < n ? cfg->group_size : n;
    size_t ng = curate_quant_n_groups(n, cfg->group_size);
    float *s = malloc(n * sizeof(float)), *sb = malloc(n * sizeof(float));
    float *ws = malloc(rows * n * sizeof(float)), *qt = malloc(rows * n * sizeof(float));
    float *p = malloc(rows * ng * sizeof(float)), *xq = malloc(G * sizeof(float));
    double *dw = malloc(G * sizeof(double));
    curate_status st = CURATE_OK;
    if (!s || !sb || !ws || !qt || !p || !xq || !dw) {
        st = CURATE_ERR_NOMEM;
        goto done;
    }
    double best = INFINITY;
    float abest = 0.0f;
    for (unsigned k = 0; k < cfg->awq_grid; k++) {
        float alpha = cfg->awq_grid > 1 ? (float)k / (float)(cfg->awq_grid - 1) : 0.0f;
        /* s_j = max(a_j^alpha, 1e-4) / sqrt(max s min s); 1 when alpha is 0 */
        double lo = INFINITY, hi = 0.0;
        for (size_t j = 0; j < n; j++) {
            double v = alpha == 0.0f ? 1.0 : fmax(pow((double)absmean[j], (double)alpha), 1e-4);
            s[j] = (float)v;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
        for (size_t j = 0; j < n; j++)
            s[j] = (float)((double)s[j] / sqrt(hi * lo));
        for (size_t i = 0; i < rows * n; i++)
            ws[i] = w[i] * s[i % n];
        curate_quant_rows_apply(cfg, ws, rows, n, NULL, qt, NULL, NULL, NULL);
        for (size_t i = 0; i < rows * n; i++)
            qt[i] /= s[i % n];
        double e = curate_quant_output_error_ref(w, qt, rows, n, h);
        if (k == 0 || e < best) {
            best = e;
            abest = alpha;
            memcpy(sb, s, n * sizeof(float));
            memcpy(q, qt, rows * n * sizeof(float));
        }
    }
    int clipped = 0;
    if (cfg->awq_clip_grid > 0) {
        for (size_t i = 0; i < rows * n; i++)
            ws[i] = w[i] * sb[i % n];
        for (size_t r = 0; r < rows; r++)
            for (size_t g = 0; g < ng; g++) {
                size_t c0 = g * G, len = c0 + G <= n ? G : n - c0;
                double eb = INFINITY;
                for (unsigned k = 0; k < cfg->awq_clip_grid; k++) {
                    float f = curate_quant_clip_factor(k, cfg->awq_clip_grid, cfg->awq_clip_min), d, m;
                    curate_quant_group_params(cfg, ws + r * n + c0, len, f, &d, &m);
                    curate_quant_group_apply(cfg, ws + r * n + c0, len, d, m, xq, NULL);
                    for (size_t t = 0; t < len; t++)
                        dw[t] = (double)w[r * n + c0 + t] - (double)(xq[t] / sb[c0 + t]);
                    double e = group_out_err(dw, h, n, c0, len);
                    if (k == 0 || e < eb) {
                        eb = e;
                        p[r * ng + g] = f;
                    }
                }
            }
        curate_quant_rows_apply(cfg, ws, rows, n, p, qt, NULL, NULL, NULL);
        for (size_t i = 0; i < rows * n; i++)
            qt[i] /= sb[i % n];
        double e = curate_quant_output_error_ref(w, qt, rows, n, h);
        if (e < best) {
            clipped = 1;
            memcpy(q, qt, rows * n * sizeof(float));
        }
    }
    *alpha_out = abest;
    *clipped_out = clipped;
done:
    free(s);
    free(sb);
    free(ws);
    free(qt);
    free(p);
    free(xq);
    free(dw);
    return st;
}
