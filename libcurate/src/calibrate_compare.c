/*
 * calibrate_compare.c - the original model against quantized ones, chunk by
 * chunk on the same tokens.
 *
 * Per sequence: the original's logits of the scored rows, then for each
 * quantized context its logits of the same rows; NLL and argmax of each
 * through curate_model_ctx_nll() (the function curate/ppl.h uses, so the
 * original's PPL is bit-identical to curate_ppl_tokens() on the same
 * chunks), and KL(P_orig || P_quant) per row.
 *
 * The KL of one row, with a, b the two logit vectors, ma, mb their maxima,
 * ea_v = exp(a_v - ma), sa = sum ea_v (likewise sb):
 *
 *   KL = sum_v p_v (log p_v - log q_v)
 *      = (1/sa) sum_v ea_v (a_v - b_v) - [(ma + log sa) - (mb + log sb)]
 *
 * since sum_v p_v = 1.  Everything after reading the floats is in double.
 * With bit-identical rows both terms are exactly 0, so an unquantized
 * model gives KL = 0 exactly, not a rounding residue.  Rows are split over
 * the original context's thread pool in fixed tasks, each row computed by
 * one thread in a fixed order: the numbers do not depend on the threads.
 */
#include "curate/calibrate.h"
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* rows per KL task */
#define KL_ROWS 4

typedef struct kl_job {
    const float *a, *b;  /* [rows][V] */
    size_t V, rows;
    double *kl;          /* [rows] */
    double *scratch;     /* [threads][V] */
} kl_job;

static void kl_task(void *arg, size_t task, unsigned thread)
{
    const kl_job *j = arg;
    double *ea = j->scratch + (size_t)thread * j->V;
    size_t r0 = task * KL_ROWS, r1 = r0 + KL_ROWS < j->rows ? r0 + KL_ROWS : j->rows;
    for (size_t r = r0; r < r1; r++) {
        const float *a = j->a + r * j->V, *b = j->b + r * j->V;
        float fa = a[0], fb = b[0];
        for (size_t v = 1; v < j->V; v++) {
            fa = a[v] > fa ? a[v] : fa;
            fb = b[v] > fb ? b[v] : fb;
        }
        const double ma = fa, mb = fb;
        double sa = 0, sb = 0, dot = 0;
        for (size_t v = 0; v < j->V; v++) {
            ea[v] = exp((double)a[v] - ma);
            sa += ea[v];
        }
        for (size_t v = 0; v < j->V; v++)
            sb += exp((double)b[v] - mb);
        for (size_t v = 0; v < j->V; v++)
            dot += ea[v] * ((double)a[v] - (double)b[v]);
        j->kl[r] = dot / sa - ((ma + log(sa)) - (mb + log(sb)));
    }
}

/* Running sums of one model over all rows. */
typedef struct acc {
    double sum, sum2;
    uint64_t hits, agree, count;
    double *kl;          /* [n_scored] all KL values (quantized models) */
    size_t n_kl;
    double kl_sum;
} acc;

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* PPL and its error as curate/ppl.h computes them. */
static void ppl_of(const acc *s, double *ppl, double *ppl_err, double *nll)
{
    double mean = s->sum / (double)s->count;
    double var = s->sum2 / (double)s->count - mean * mean;
    *nll = mean;
    *ppl = exp(mean);
    *ppl_err = (var > 0 && s->count > 1) ? sqrt(var / (double)(s->count - 1)) * *ppl : 0.0;
}

curate_status curate_calib_compare(curate_model_ctx *orig, curate_model_ctx *const *quant,
                                   size_t n_quant, const curate_seqs *seqs,
                                   curate_calib_cmp *res, curate_calib_seq_fn on_seq,
                                   void *user, curate_error *err)
{
    if (!orig || !seqs || !res || (n_quant && !quant))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to compare");
    const double t0 = now_s();
    const curate_model_params *p = curate_model_get_params(curate_model_ctx_model(orig));
    const size_t V = p->n_vocab;
    for (size_t q = 0; q < n_quant; q++) {
        const curate_model_params *pq = curate_model_get_params(curate_model_ctx_model(quant[q]));
        if (pq->n_vocab != V)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "the models to compare have different vocabularies");
    }
    const uint64_t n_scored = curate_seqs_scored(seqs);
    if (n_scored == 0)
        return curate_error_set(err, CURATE_ERR_INVALID, "no scored positions to compare");
    const size_t max_rows = seqs->max_len - 1;
    if (max_rows > SIZE_MAX / sizeof(float) / V || n_scored > SIZE_MAX / sizeof(double))
        return curate_error_set(err, CURATE_ERR_RANGE, "too many rows");
    const size_t n_acc = n_quant + 1;
    const unsigned threads = curate_model_ctx_threads(orig);
    float *lo = malloc(max_rows * V * sizeof *lo);
    float *lq = n_quant ? malloc(max_rows * V * sizeof *lq) : NULL;
    double *nll_o = malloc(max_rows * sizeof *nll_o);
    double *nll_q = malloc(max_rows * sizeof *nll_q);
    double *kl = malloc(max_rows * sizeof *kl);
    int32_t *top_o = malloc(max_rows * sizeof *top_o);
    int32_t *top_q = malloc(max_rows * sizeof *top_q);
    double *scratch = n_quant ? malloc((size_t)threads * V * sizeof *scratch) : NULL;
    acc *ac = calloc(n_acc, sizeof *ac);
    curate_calib_seq_score *sc = calloc(n_acc, sizeof *sc);
    curate_status st = CURATE_OK;
    if (!lo || (n_quant && (!lq || !scratch)) || !nll_o || !nll_q || !kl || !top_o || !top_q ||
        !ac || !sc) {
        st = curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for %zu rows of logits",
                              max_rows);
        goto out;
    }
    for (size_t q = 1; q < n_acc; q++)
        if (!(ac[q].kl = malloc((size_t)n_scored * sizeof(double)))) {
            st = curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for KL values");
            goto out;
        }
    curate_pool *pool = curate_model_ctx_pool(orig);
    for (size_t i = 0; i < seqs->n; i++) {
        const int32_t *tok = seqs->ids + seqs->start[i];
        const size_t len = curate_seqs_len(seqs, i), first = seqs->first[i];
        const size_t rows = len - 1 - first;
        memset(sc, 0, n_acc * sizeof *sc);
        if (rows == 0)
            continue;
        /* the last position predicts nothing inside the sequence: len - 1
         * tokens are run (as curate/ppl.h does) */
        const int32_t *targets = tok + first + 1;
        if ((st = curate_model_ctx_forward(orig, tok, len - 1, first, lo, err)) ||
            (st = curate_model_ctx_nll(orig, lo, rows, targets, nll_o, top_o, err)))
            goto out;
        double seq_nll_o = 0;
        for (size_t r = 0; r < rows; r++) {
            ac[0].sum += nll_o[r];
            ac[0].sum2 += nll_o[r] * nll_o[r];
            ac[0].hits += top_o[r] == targets[r];
            seq_nll_o += nll_o[r];
        }
        ac[0].count += rows;
        sc[0].rows = rows;
        sc[0].nll_orig = seq_nll_o;
        for (size_t q = 0; q < n_quant; q++) {
            acc *a = &ac[q + 1];
            curate_calib_seq_score *s = &sc[q];
            if ((st = curate_model_ctx_forward(quant[q], tok, len - 1, first, lq, err)) ||
                (st = curate_model_ctx_nll(quant[q], lq, rows, targets, nll_q, top_q, err)))
                goto out;
            kl_job kj = {lo, lq, V, rows, kl, scratch};
            curate_pool_run(pool, kl_task, &kj, (rows + KL_ROWS - 1) / KL_ROWS);
            s->rows = rows;
            s->nll_orig = seq_nll_o;
            for (size_t r = 0; r < rows; r++) {
                a->sum += nll_q[r];
                a->sum2 += nll_q[r] * nll_q[r];
                a->hits += top_q[r] == targets[r];
                a->agree += top_q[r] == top_o[r];
                a->kl_sum += kl[r];
                a->kl[a->n_kl++] = kl[r];
                s->nll_quant += nll_q[r];
                s->kl += kl[r];
                s->top1_agree += top_q[r] == top_o[r];
            }
            a->count += rows;
        }
        if (on_seq)
            on_seq(user, i, seqs->n, sc);
    }
    /* results */
    for (size_t q = 0; q < (n_quant ? n_quant : 1); q++) {
        curate_calib_cmp *r = &res[q];
        memset(r, 0, sizeof *r);
        r->n_seq = 0;
        for (size_t i = 0; i < seqs->n; i++)
            r->n_seq += curate_seqs_len(seqs, i) - 1 > seqs->first[i];
        r->n_scored = ac[0].count;
        ppl_of(&ac[0], &r->ppl_orig, &r->ppl_orig_err, &r->nll_orig);
        r->top1_orig = (double)ac[0].hits / (double)ac[0].count;
        if (!n_quant) {
            r->ppl_quant = r->ppl_quant_err = r->nll_quant = r->dppl_pct = NAN;
            r->kl_mean = r->kl_p99 = r->kl_max = r->top1_agree = r->top1_quant = NAN;
            continue;
        }
        acc *a = &ac[q + 1];
        ppl_of(a, &r->ppl_quant, &r->ppl_quant_err, &r->nll_quant);
        r->dppl_pct = 100.0 * (r->ppl_quant / r->ppl_orig - 1.0);
        r->top1_quant = (double)a->hits / (double)a->count;
        r->top1_agree = (double)a->agree / (double)a->count;
        r->kl_mean = a->kl_sum / (double)a->n_kl;
        qsort(a->kl, a->n_kl, sizeof *a->kl, cmp_double);
        size_t rank = (size_t)ceil(0.99 * (double)a->n_kl); /* nearest rank, 1-based */
        if (rank < 1)
            rank = 1;
        r->kl_p99 = a->kl[rank - 1];
        r->kl_max = a->kl[a->n_kl - 1];
    }
    for (size_t q = 0; q < (n_quant ? n_quant : 1); q++)
        res[q].seconds = now_s() - t0;
out:
    for (size_t q = 0; ac && q < n_acc; q++)
        free(ac[q].kl);
    free(ac);
    free(sc);
    free(lo);
    free(lq);
    free(nll_o);
    free(nll_q);
    free(kl);
    free(top_o);
    free(top_q);
    free(scratch);
    return st;
}
