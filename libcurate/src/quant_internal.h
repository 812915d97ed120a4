/*
 * quant_internal.h - private: the pieces the weight quantizers share
 * (quant.c, quant_awq.c, quant_gptq.c) and the scalar references the unit
 * tests compare the fast paths with (quant_ref.c).
 */
#ifndef CURATE_QUANT_INTERNAL_H
#define CURATE_QUANT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "curate/quant.h"

/* Clipping factor i of a grid of n evenly spaced from 1 down to pmin. */
float curate_quant_clip_factor(unsigned i, unsigned n, float pmin);

/*
 * The clipping search on one group: the factor among n from 1 down to
 * pmin whose rounding has the least sum wt[j] (x_j - x'_j)^2 (wt NULL: 1).
 * Strictly-less comparisons, so ties keep the larger factor (1 first).
 * Writes the chosen d, m and returns the factor.
 */
float curate_quant_clip_search(const curate_quant_config *cfg, const float *x, size_t n,
                               const float *wt, unsigned grid, float pmin, float *d, float *m);

/*
 * Round w (rows x cols) group by group with per-group factors p[r][g]
 * (NULL: 1 everywhere) into q, and the optional scales/mins/codes.
 * Returns sum (w - q)^2.
 */
double curate_quant_rows_apply(const curate_quant_config *cfg, const float *w, size_t rows,
                               size_t cols, const float *p, float *q, float *scales, float *mins,
                               uint8_t *codes);

/* 1 if every x[0..n) is finite. */
int curate_quant_all_finite(const float *x, size_t n);

/* The method implementations; arguments already checked by curate_quant_matrix. */
curate_status curate_quant_awq_run(const curate_quant_config *cfg, const float *w, size_t rows,
                                   size_t cols, const curate_quant_stats *st,
                                   const curate_quant_out *out, curate_quant_report *rep,
                                   curate_error *err);
curate_status curate_quant_gptq_run(const curate_quant_config *cfg, const float *w, size_t rows,
                                    size_t cols, const float *h, const curate_quant_out *out,
                                    curate_quant_report *rep, curate_error *err);

/* ---- scalar references (quant_ref.c), for the tests ---------------------- */

/* tr(dW H dW^T) by plain loops in double. */
double curate_quant_output_error_ref(const float *w, const float *q, size_t rows, size_t cols,
                                     const float *h);

/*
 * GPTQ without lazy batching or BLAS: everything in double, the Cholesky
 * factorisations and the inverse by textbook loops, each column's error
 * pushed into every later column at once.  Same options as the fast path
 * (groups, act_order, static groups, gptq_clip, dead columns, damping
 * without retries).  Writes q and codes (codes may be NULL).
 * CURATE_ERR_MODEL if the damped Hessian is not positive definite.
 */
curate_status curate_quant_gptq_ref(const curate_quant_config *cfg, const float *w, size_t rows,
                                    size_t cols, const float *h, float *q, uint8_t *codes);

/*
 * AWQ by loops in double: the same scale grid and clipping grid, every
 * objective evaluated by plain sums instead of BLAS products.  Writes q,
 * the alpha kept and whether the clipping was kept.
 */
curate_status curate_quant_awq_ref(const curate_quant_config *cfg, const float *w, size_t rows,
                                   size_t cols, const float *absmean, const float *h, float *q,
                                   float *alpha, int *clipped);

#endif /* CURATE_QUANT_INTERNAL_H */
