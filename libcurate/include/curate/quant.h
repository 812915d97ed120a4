/*
 * curate/quant.h - weight quantizers for linear layers (fake quantization
 * in F32 for evaluation, plus the integer codes and per-group scales that
 * a GGUF block writer needs).
 *
 * Layout.  A weight is W[rows][cols] row-major, rows = output features,
 * cols = input features, as ggml stores a linear layer (ne[0] = cols is
 * contiguous).  Quantization groups run along a row, i.e. along the input
 * dimension: group g of row r holds columns [g*G, min((g+1)*G, cols)).
 * G = 0 means one group per row (per output channel).  When cols is not a
 * multiple of G the row ends in a shorter group (cols 172, G 32: five
 * groups of 32 and one of 12); curate_quant_report says so.
 *
 * Number formats (b = bits, 2..8), for a group with scale d:
 *
 *   symmetric, full range (default): codes q in [-2^(b-1), 2^(b-1)-1],
 *     x' = q * d, d = p * xm / -2^(b-1) where xm is the group's element of
 *     largest magnitude (the first one on ties) and p the clipping factor
 *     (1 = none).  The extreme maps exactly onto the code -2^(b-1); d is
 *     negative when xm is positive.  This is ggml's Q4_0 rule (d = max/-8)
 *     generalised to b bits and uses all 2^b levels.
 *   symmetric, restricted (`restricted`): q in [-(2^(b-1)-1), 2^(b-1)-1],
 *     d = p * max|x| / (2^(b-1)-1) >= 0.  ggml's Q8_0 rule (amax/127).
 *   asymmetric (`asym`): q in [0, 2^b-1], x' = q * d + m with
 *     d = (hi - lo) / (2^b - 1), m = lo, where [lo, hi] is the group's
 *     [min, max] shrunk by p towards the anchor a (a = 0 when the group
 *     straddles 0, else the endpoint nearest 0):
 *     lo = a + p (min - a), hi = a + p (max - a).  ggml's Q4_1 stores d and
 *     m in exactly this form.  Zero is not necessarily representable.
 *
 * Codes are returned unsigned, in [0, 2^b-1]: code = q + 2^(b-1) for the
 * symmetric formats (Q4_0's nibble; Q8_0's int8 is code - 128), code = q
 * for asymmetric.  Rounding: q = round(x / d) (C roundf: ties away from
 * zero; x / d computed as x * (1/d)), then clamped.  A group whose scale is
 * 0 (all zero, or asym constant) gets d = 0, inverse 0 and codes of 0
 * (x' = 0, or x' = m for asym): never NaN or Inf.
 *
 * Methods:
 *   rtn      round to nearest with the plain min/max (p = 1).
 *   mse      per group, p searched over clip_grid factors evenly spaced
 *            from 1 down to clip_min; keeps the one with the least
 *            sum (w - w')^2.  p = 1 is a candidate, so never worse than rtn.
 *   imatrix  the same search minimising sum_j imp[j] (w_j - w'_j)^2 with
 *            imp[j] the mean square of input channel j (curate_observer_
 *            imatrix): errors on channels that carry large activations
 *            cost more.  Never worse than rtn on that weighted error.
 *   awq      per-input-channel scales s_j = absmean_j^alpha, clamped below
 *            at 1e-4 and divided by sqrt(max(s) min(s)); the weights are
 *            quantized as Q(W diag(s)) diag(s)^-1.  alpha runs over
 *            awq_grid points evenly spaced in [0, 1] and the one with the
 *            least output error E = tr(dW H dW^T), H = X^T X / n, is kept
 *            (the Hessian form: no raw activations needed).  alpha = 0 is
 *            exactly rtn, so the search never does worse than rtn on E.
 *            Then, unless awq_clip_grid is 0, a clipping search per group
 *            on the group's share of E (dw_g^T H_gg dw_g) over
 *            awq_clip_grid factors from 1 down to awq_clip_min; the
 *            clipped result is kept only if it lowers E over the whole
 *            matrix.  The scales are per matrix (fake quantization); a
 *            real AWQ export would fold 1/s into the previous operation.
 *   gptq     Frantar et al.'s column-by-column quantization with error
 *            feedback through the inverse Hessian.  H = X^T X / n;
 *            channels with H_jj = 0 ("dead": never active in calibration)
 *            get H_jj = 1 so the matrix stays invertible; their weights
 *            are quantized like rtn and kept, not zeroed as the GPTQ
 *            reference does (a channel the calibration set missed may
 *            still be active at inference).  Damping lambda = damp *
 *            mean(diag H) is added to the diagonal; if the Cholesky
 *            factorisation still fails, lambda is multiplied by 10 up to
 *            4 times (the report gives the fraction used).  The inverse
 *            and its upper Cholesky factor U (H^-1 = U^T U) are computed
 *            in double through LAPACKE.  Columns are processed in blocks
 *            of block_size with lazy batch updates of the later columns
 *            through cblas_sgemm.  Group parameters: without act_order, a
 *            group's d and m are computed when the group starts, from the
 *            current (error-updated) weights (min/max, or the weight-MSE
 *            clipping search with gptq_clip); blocks are aligned to groups
 *            so a group never straddles a block.  With act_order, columns
 *            are processed by decreasing H_jj and groups are static: every
 *            group's parameters come from the original weights, on the
 *            original column order, before any update, so the groups stay
 *            contiguous and pack into ggml blocks.  With G = 0 the
 *            per-row parameters always come from the original row.
 *
 * Thread safety: every function is reentrant (no global state).  The
 * quantizers call OpenBLAS/LAPACKE, which follow the process-wide thread
 * setting; run different matrices on different threads if you like.
 */
#ifndef CURATE_QUANT_H
#define CURATE_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CURATE_QUANT_MIN_BITS 2
#define CURATE_QUANT_MAX_BITS 8

typedef enum curate_quant_method {
    CURATE_QUANT_RTN = 0,
    CURATE_QUANT_MSE,
    CURATE_QUANT_IMATRIX,
    CURATE_QUANT_AWQ,
    CURATE_QUANT_GPTQ,
    CURATE_QUANT_METHOD_COUNT_ /* not a method; keep last */
} curate_quant_method;

/* "rtn", "mse", "imatrix", "awq", "gptq"; "?" for an unknown value. */
const char *curate_quant_method_name(curate_quant_method m);

/* The method named name (as above, exact); CURATE_ERR_INVALID otherwise. */
curate_status curate_quant_method_parse(const char *name, curate_quant_method *out,
                                        curate_error *err);

typedef struct curate_quant_config {
    curate_quant_method method;
    unsigned bits;         /* 2..8; default 4 */
    size_t group_size;     /* G, 0 = one group per row; default 32 */
    int asym;              /* 1: asymmetric (Q4_1 form); default 0 */
    int restricted;        /* symmetric only: the +-(2^(b-1)-1) range; default 0 */
    /* clipping search (mse, imatrix, and gptq with gptq_clip) */
    unsigned clip_grid;    /* factors tried, >= 1; default 81 (1.00, 0.99, ..., 0.20) */
    float clip_min;        /* smallest factor, in (0, 1]; default 0.2 */
    /* awq */
    unsigned awq_grid;     /* alpha values in [0, 1], >= 1; default 20 */
    unsigned awq_clip_grid;/* clipping factors after the scale search, 0 = none; default 10 */
    float awq_clip_min;    /* smallest factor, in (0, 1]; default 0.55 */
    /* gptq */
    float damp;            /* damping as a fraction of mean(diag H), >= 0; default 0.01 */
    size_t block_size;     /* columns per lazy-update block, >= 1; default 128 */
    int act_order;         /* 1: process columns by decreasing H_jj; default 0 */
    int gptq_clip;         /* 1: group parameters by the weight-MSE search; default 0 */
} curate_quant_config;

/* Fill cfg with the defaults above (method rtn). */
void curate_quant_config_default(curate_quant_config *cfg);

/* CURATE_ERR_INVALID (naming the field) unless every field is in range. */
curate_status curate_quant_config_check(const curate_quant_config *cfg, curate_error *err);

/* Groups per row for cols columns (>= 1 when cols >= 1), and the size of
 * the last one (== group_size unless the row ends short; cols when
 * group_size is 0 or >= cols). */
size_t curate_quant_n_groups(size_t cols, size_t group_size);
size_t curate_quant_last_group(size_t cols, size_t group_size);

/*
 * Calibration statistics of the layer's input (from curate/observe.h),
 * each NULL when unknown.  Which ones a method needs: imatrix needs imp,
 * awq needs absmean and hessian, gptq needs hessian; rtn and mse none.
 * Extra ones are ignored.
 */
typedef struct curate_quant_stats {
    const float *imp;      /* [cols] mean x_j^2 (curate_observer_imatrix) */
    const float *absmean;  /* [cols] mean |x_j| (curate_observer_absmean) */
    const float *hessian;  /* [cols][cols] X^T X / n, symmetric (curate_observer_hessian) */
} curate_quant_stats;

/*
 * Where the results go.  q is required; the rest may be NULL.
 * For awq, scales/mins/codes describe W diag(s) (the matrix actually
 * rounded) and q[r][j] = decode(r, j) / s_j; in_scale receives s.
 */
typedef struct curate_quant_out {
    float *q;          /* [rows][cols] the dequantized weights W' */
    float *scales;     /* [rows][n_groups] d */
    float *mins;       /* [rows][n_groups] m (asym); 0 for symmetric formats */
    uint8_t *codes;    /* [rows][cols] unsigned codes (see the header comment) */
    float *in_scale;   /* [cols] AWQ's s; all 1 for the other methods */
} curate_quant_out;

/* What happened, for the tool's report. */
typedef struct curate_quant_report {
    size_t n_groups;       /* groups per row */
    size_t last_group;     /* columns in the last group of each row */
    int short_group;       /* 1 if last_group < group_size (the row ends short) */
    double weight_err;     /* sum over the matrix of (W - W')^2 */
    float awq_alpha;       /* awq: the alpha kept */
    int awq_clipped;       /* awq: 1 if the clipping search was kept */
    double gptq_damp;      /* gptq: the fraction of mean(diag H) actually added */
    size_t dead_cols;      /* awq/gptq: input channels with H_jj == 0 */
} curate_quant_report;

/*
 * Quantize w[rows][cols] with cfg and stats into out (see above), and fill
 * rep if non-NULL.  w is not modified and must not overlap out's arrays.
 * Errors: CURATE_ERR_INVALID for a bad config, a zero dimension, a
 * missing statistic the method needs or a NULL out->q; CURATE_ERR_RANGE
 * for a non-finite weight or statistic, or sizes that overflow (or exceed
 * BLAS's int); CURATE_ERR_NOMEM; CURATE_ERR_MODEL if GPTQ's Hessian stays
 * singular after the damping retries.  On error out's contents are
 * unspecified.
 */
curate_status curate_quant_matrix(const curate_quant_config *cfg, const float *w, size_t rows,
                                  size_t cols, const curate_quant_stats *stats,
                                  const curate_quant_out *out, curate_quant_report *rep,
                                  curate_error *err);

/* ---- one group, for block writers and tests ------------------------------ */

/*
 * The scale d and offset m (0 for symmetric) of the group x[0..n) in the
 * format cfg describes (bits, asym, restricted), with clipping factor p in
 * (0, 1] (1 = plain min/max).  n >= 1; x finite.
 */
void curate_quant_group_params(const curate_quant_config *cfg, const float *x, size_t n,
                               float p, float *d, float *m);

/*
 * Round x[0..n) with (d, m) into xq (dequantized values) and codes; either
 * output may be NULL.  Returns sum (x - xq)^2 (in double).
 */
double curate_quant_group_apply(const curate_quant_config *cfg, const float *x, size_t n,
                                float d, float m, float *xq, uint8_t *codes);

/* ---- error measures -------------------------------------------------------- */

/*
 * sum over r, j of wt[j] (w - q)^2, in double; wt NULL means weight 1
 * (the squared Frobenius norm of W - W').  wt has cols entries.
 */
double curate_quant_sq_error(const float *w, const float *q, size_t rows, size_t cols,
                             const float *wt);

/*
 * The output error tr(dW H dW^T) with dW = W - W' and H[cols][cols]
 * symmetric: with H = X^T X / n this is the mean over calibration rows of
 * ||x dW^T||^2, the squared change of the layer's output.  Computed with
 * BLAS (float products, double sums) into *out.  CURATE_ERR_NOMEM,
 * CURATE_ERR_RANGE for sizes too large.
 */
curate_status curate_quant_output_error(const float *w, const float *q, size_t rows, size_t cols,
                                        const float *h, double *out, curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_QUANT_H */
