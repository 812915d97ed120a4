/*
 * tools/calib_report.h - the figures of one curate-calibrate run, as the
 * report writers (JSON, HTML) see them.  Tools-only: presentation lives with
 * the tools, the numbers come from libcurate.
 *
 * Ownership: every pointer is borrowed from the caller for the duration of
 * the write call.  NaN marks a figure that was not computed (for example KL
 * when no quantization ran); writers print it as "-" (HTML) or null (JSON).
 */
#ifndef CURATE_CALIB_REPORT_H
#define CURATE_CALIB_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "curate/status.h"

/* One evaluation domain: the same tokens scored by both models. */
typedef struct calib_domain_row {
    const char *name;          /* "wiki", "code", ... */
    const char *source;        /* the file it came from */
    uint64_t tokens_scored;    /* tokens that entered the PPL */
    uint64_t chunks;
    double ppl_orig, ppl_orig_err;     /* original model: PPL and its +/- */
    double ppl_quant, ppl_quant_err;   /* quantized model (NaN without one) */
    double dppl_pct;           /* 100 * (ppl_quant / ppl_orig - 1) */
    double kl_mean, kl_p99;    /* KL(original || quantized) per token, nats */
    double top1;               /* share of positions with the same argmax, 0..1 */
    const char *verdict;       /* "excellent" (<1%), "acceptable" (1-3%), "needs work" (>3%) */
} calib_domain_row;

/* Composition of the calibration set by domain (or any field). */
typedef struct calib_comp_row {
    const char *name;          /* domain value, "-" when missing */
    uint64_t records;
    uint64_t tokens;
} calib_comp_row;

/* A tensor that stayed in full precision or was changed, for the report. */
typedef struct calib_tensor_note {
    const char *name;          /* "blk.0.ffn_down.weight" */
    const char *note;          /* "excluded by '*ffn_down*'", "last group of 12 columns", ... */
} calib_tensor_note;

/* One row of a --matrix study: the calibration source (a domain of the
 * calibration set, or "all") and its figures on each evaluation domain, in
 * the order of calib_report.domains (NaN = not run). */
typedef struct calib_matrix_row {
    const char *calib;
    uint64_t records, tokens;
    const double *dppl_pct;    /* [n_domains] */
    const double *kl_mean;     /* [n_domains] */
} calib_matrix_row;

typedef struct calib_report {
    /* configuration */
    const char *tool_version;      /* curate_version_string() */
    const char *model_path;
    const char *model_name;        /* general.name or the file name */
    const char *tokenizer_path;
    const char *method;            /* "rtn", "gptq", ... or NULL (evaluation only) */
    unsigned bits;                 /* weight bits, 0 when not quantized */
    unsigned group_size;           /* 0 = per output channel */
    int symmetric;
    unsigned act_bits;             /* 0 = no activation quantization */
    const char *act_method;        /* "minmax", "percentile:99.99", "kl", "mse" */
    const char *act_scope;         /* "tensor" or "token" */
    unsigned ctx;
    const char *ppl_mode;          /* "llamacpp" or "full" */
    unsigned threads;

    /* calibration set provenance */
    const char *calib_path;
    const char *calib_sha256;      /* hex of the input file(s) */
    uint64_t calib_records;
    uint64_t calib_tokens_used, calib_tokens_truncated, calib_tokens_dropped;
    const char *pack;              /* "concat" or "sample" */
    uint64_t seed;
    const calib_comp_row *composition;
    size_t n_composition;

    /* results */
    const calib_domain_row *domains;
    size_t n_domains;
    double mean_dppl_pct, mean_kl;  /* overall means over domains */
    double mean_abs_dppl_pct;       /* mean of |dppl_pct|: the overall verdict */
    const calib_tensor_note *notes;
    size_t n_notes;
    double seconds_calibrate, seconds_quantize, seconds_eval;
    double eval_tokens_per_s;

    /* --matrix: one row per calibration source (none: no matrix section) */
    const calib_matrix_row *matrix;
    size_t n_matrix;
} calib_report;

/*
 * Write a self-contained HTML page (no external resources: inline CSS and
 * SVG) with the configuration, the per-domain table, a bar chart of the PPL
 * change per domain (with the 1% and 3% verdict bands), a bar chart of mean
 * KL per domain, and the calibration composition.  Written to a temporary
 * file beside path and renamed.  Returns CURATE_OK or CURATE_ERR_IO /
 * CURATE_ERR_NOMEM with err filled.
 */
curate_status calib_report_write_html(const calib_report *r, const char *path, curate_error *err);

#endif /* CURATE_CALIB_REPORT_H */
