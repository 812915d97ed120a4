/*
 * quant_gptq.c - GPTQ (Frantar et al., 2022): quantize one column at a
 * time and push each column's rounding error into the columns not yet
 * quantized, weighted by the inverse Hessian, so that the layer's output
 * X W^T changes as little as possible.
 *
 * Rows are independent (groups run along a row, so every row has its own
 * scales), which lets the inner loop walk one row at a time over
 * contiguous memory: for row r and column i of the current block,
 *
 *     q = Q(w[i]);  e = (w[i] - q) / U[i][i];  w[j] -= e U[i][j]  (j in block, j > i)
 *
 * where U is the upper Cholesky factor of H^-1 (H^-1 = U^T U).  The
 * columns after the block receive the block's errors in one product,
 * W[:, b1:] -= E U[b0:b1, b1:] (the "lazy batch" update), through
 * cblas_sgemm.  quant_ref.c has the same algorithm without batching, in
 * double, for the tests.
 */
#include "quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

typedef struct diag_idx {
    double d;
    size_t i;
} diag_idx;

/* Decreasing diagonal, then increasing index: a total order, so qsort is deterministic. */
static int by_diag_desc(const void *pa, const void *pb)
{
    const diag_idx *a = pa, *b = pb;
    if (a->d != b->d)
        return a->d > b->d ? -1 : 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

/*
 * From the (permuted, dead-fixed) Hessian hd[n][n], the upper Cholesky
 * factor of (H + lambda I)^-1 into u (float, upper triangle; the rest
 * zeroed).  Retries with 10x the damping when a factorisation fails.
 */
static curate_status inverse_factor(const double *hd, size_t n, double damp, double *work,
                                    float *u, double *used, curate_error *err)
{
    double mean = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += hd[i * n + i];
    mean /= (double)n;
    lapack_int ln = (lapack_int)n;
    for (int attempt = 0; attempt < 5; attempt++) {
        double frac = damp;
        if (attempt > 0)
            frac = damp > 0.0 ? damp * pow(10.0, attempt) : 1e-4 * pow(10.0, attempt - 1);
        memcpy(work, hd, n * n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            work[i * n + i] += frac * mean;
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', ln, work, ln) != 0)
            continue;
        if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', ln, work, ln) != 0)
            continue;
        for (size_t i = 0; i < n; i++) /* the lower triangle holds H^-1: mirror it */
            for (size_t j = i + 1; j < n; j++)
                work[i * n + j] = work[j * n + i];
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', ln, work, ln) != 0)
            continue;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                u[i * n + j] = j >= i ? (float)work[i * n + j] : 0.0f;
        *used = frac;
        return CURATE_OK;
    }
    return curate_error_set(err, CURATE_ERR_MODEL,
                            "gptq: the damped Hessian is not positive definite (damping up to "
                            "%g x mean diagonal)",
                            damp > 0.0 ? damp * 1e4 : 1e-1);
}

curate_status curate_quant_gptq_run(const curate_quant_config *cfg, const float *w, size_t rows,
                                    size_t n, const float *h, const curate_quant_out *out,
                                    curate_quant_report *rep, curate_error *err)
{
    size_t G = cfg->group_size && cfg->group_size < n ? cfg->group_size : n;
    size_t ng = curate_quant_n_groups(n, cfg->group_size);
    /* Parameters from the original weights: always per row (G == n), and
     * for every group with act_order (static groups). */
    int fixed = G == n || cfg->act_order;
    size_t B = cfg->block_size < n ? cfg->block_size : n; /* also bounds the scratch */
    if (!cfg->act_order && G < n) /* align blocks to groups */
        B = G <= B ? B / G * G : G;

    size_t *perm = malloc(n * sizeof *perm);
    diag_idx *di = malloc(n * sizeof *di);
    double *hd = malloc(n * n * sizeof(double));
    double *work = malloc(n * n * sizeof(double));
    float *u = malloc(n * n * sizeof(float));
    float *wp = malloc(rows * n * sizeof(float));
    float *eb = malloc(rows * B * sizeof(float));
    float *pd = malloc(rows * ng * sizeof(float));
    float *pm = malloc(rows * ng * sizeof(float));
    curate_status st = CURATE_OK;
    if (!perm || !di || !hd || !work || !u || !wp || !eb || !pd || !pm) {
        st = curate_error_set(err, CURATE_ERR_NOMEM, "gptq: out of memory for %zu x %zu", rows, n);
        goto done;
    }

    for (size_t i = 0; i < n; i++) {
        di[i].d = h[i * n + i];
        di[i].i = i;
    }
    if (cfg->act_order)
        qsort(di, n, sizeof *di, by_diag_desc);
    for (size_t i = 0; i < n; i++)
        perm[i] = di[i].i;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            hd[i * n + j] = h[perm[i] * n + perm[j]];
    for (size_t i = 0; i < n; i++)
        if (hd[i * n + i] == 0.0) /* dead channel: decouple it */
            hd[i * n + i] = 1.0;
    double used = 0.0;
    if ((st = inverse_factor(hd, n, cfg->damp, work, u, &used, err)) != CURATE_OK)
        goto done;

    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++)
            wp[r * n + i] = w[r * n + perm[i]];
    if (fixed)
        for (size_t r = 0; r < rows; r++)
            for (size_t g = 0; g < ng; g++) {
                const float *x = w + r * n + g * G;
                size_t len = g * G + G <= n ? G : n - g * G;
                if (cfg->gptq_clip)
                    curate_quant_clip_search(cfg, x, len, NULL, cfg->clip_grid, cfg->clip_min,
                                             &pd[r * ng + g], &pm[r * ng + g]);
                else
                    curate_quant_group_params(cfg, x, len, 1.0f, &pd[r * ng + g], &pm[r * ng + g]);
            }

    for (size_t b0 = 0; b0 < n; b0 += B) {
        size_t b1 = b0 + B < n ? b0 + B : n, bw = b1 - b0;
        for (size_t r = 0; r < rows; r++) {
            float *wr = wp + r * n, *er = eb + r * bw;
            for (size_t i = b0; i < b1; i++) {
                size_t col = perm[i], g = col / G;
                if (!fixed && i % G == 0) { /* a group starts: from the current weights */
                    size_t len = i + G <= n ? G : n - i;
                    if (cfg->gptq_clip)
                        curate_quant_clip_search(cfg, wr + i, len, NULL, cfg->clip_grid,
                                                 cfg->clip_min, &pd[r * ng + g], &pm[r * ng + g]);
                    else
                        curate_quant_group_params(cfg, wr + i, len, 1.0f, &pd[r * ng + g],
                                                  &pm[r * ng + g]);
                }
                float x = wr[i], y;
                uint8_t code;
                curate_quant_group_apply(cfg, &x, 1, pd[r * ng + g], pm[r * ng + g], &y, &code);
                out->q[r * n + col] = y;
                if (out->codes)
                    out->codes[r * n + col] = code;
                float e = (x - y) / u[i * n + i];
                er[i - b0] = e;
                const float *ui = u + i * n;
                for (size_t j = i + 1; j < b1; j++)
                    wr[j] -= e * ui[j];
            }
        }
        if (b1 < n)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(n - b1),
                        (int)bw, -1.0f, eb, (int)bw, u + b0 * n + b1, (int)n, 1.0f, wp + b1,
                        (int)n);
    }
    if (out->scales)
        memcpy(out->scales, pd, rows * ng * sizeof(float));
    if (out->mins)
        memcpy(out->mins, pm, rows * ng * sizeof(float));
    if (rep)
        rep->gptq_damp = used;
done:
    free(perm);
    free(di);
    free(hd);
    free(work);
    free(u);
    free(wp);
    free(eb);
    free(pd);
    free(pm);
    return st;
}
