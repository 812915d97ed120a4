/*
 * calibrate_quant.c - quantize every selected weight matrix of a model into
 * a copy of it, with the statistics of the calibration pass.
 *
 * Work is split by tensor: each worker takes the next tensor, extracts the
 * statistics it needs from the observer of its input (importance, mean
 * |x|, H = X^T X / n), quantizes it from the source model's weights
 * straight into the destination's, and measures the weight and output
 * errors.  Tensors that share an input (Q/K/V, gate/up) extract the same
 * statistics again rather than keep them: memory then stays at a few
 * matrices per worker whatever the model's size, and the extraction is a
 * copy, cheap next to the quantizers.  Each tensor's result depends only on
 * its own inputs, so the thread count never changes a number.
 */
#include "curate/calibrate.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void curate_calib_quant_opts_init(curate_calib_quant_opts *o)
{
    memset(o, 0, sizeof *o);
    curate_quant_config_default(&o->cfg);
}

void curate_calib_quant_result_release(curate_calib_quant_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->t && i < r->n; i++) {
        free(r->t[i].out.scales);
        free(r->t[i].out.mins);
        free(r->t[i].out.codes);
    }
    free(r->t);
    memset(r, 0, sizeof *r);
}

static int needs_stats(curate_quant_method m)
{
    return m == CURATE_QUANT_IMATRIX || m == CURATE_QUANT_AWQ || m == CURATE_QUANT_GPTQ;
}

typedef struct job {
    const curate_model *src;
    curate_model *dst;
    const curate_calib_obs *obs;
    const curate_calib_quant_opts *o;
    curate_calib_qtensor *t;
    size_t n;
    curate_status *status; /* [n] */
    curate_error *errs;    /* [n] */
    /* shared queue */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next, done;
    int failed;
} job;

/* sum of squares of n floats, in double */
static double sumsq(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

/* Quantize tensor t (see the file comment).  Runs on a worker thread. */
static curate_status quantize_one(const job *j, curate_calib_qtensor *t, curate_error *err)
{
    const double t0 = now_s();
    const curate_calib_tensor *info = &t->info;
    const size_t rows = info->rows, cols = info->cols;
    curate_quant_config cfg = j->o->cfg;
    if (needs_stats(cfg.method) && !info->has_input) {
        /* a lookup table sees no activations: the weight-error search is
         * the closest method that needs none */
        cfg.method = CURATE_QUANT_MSE;
        t->fallback = 1;
    }
    t->method = cfg.method;
    const curate_observer *ob =
        info->has_input ? curate_calib_obs_get(j->obs, info->layer, info->input) : NULL;
    const unsigned what = ob ? curate_observer_what(ob) : 0;
    if (needs_stats(cfg.method) && (!ob || curate_observer_rows(ob) == 0))
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "%s: method %s needs calibration statistics of its input, and "
                                "none were collected",
                                info->name, curate_quant_method_name(cfg.method));

    float *imp = NULL, *absmean = NULL, *h = NULL, *zero = NULL;
    curate_status st = CURATE_OK;
    const int want_h = (what & CURATE_OBSERVE_HESSIAN) != 0;
    if (cols > SIZE_MAX / sizeof(float) / cols) /* cols^2 floats */
        return curate_error_set(err, CURATE_ERR_RANGE, "%s: too many columns", info->name);
    if (cfg.method == CURATE_QUANT_IMATRIX && !(imp = malloc(cols * sizeof *imp)))
        goto nomem;
    if (cfg.method == CURATE_QUANT_AWQ && !(absmean = malloc(cols * sizeof *absmean)))
        goto nomem;
    if (want_h && !(h = malloc(cols * cols * sizeof *h)))
        goto nomem;
    if (imp && (st = curate_observer_imatrix(ob, imp, err)))
        goto out;
    if (absmean && (st = curate_observer_absmean(ob, absmean, err)))
        goto out;
    if (h && (st = curate_observer_hessian(ob, h, err)))
        goto out;

    if (j->o->keep_codes) {
        size_t ng = curate_quant_n_groups(cols, cfg.group_size);
        if (rows > SIZE_MAX / cols || rows > SIZE_MAX / sizeof(float) / ng)
            return curate_error_set(err, CURATE_ERR_RANGE, "%s: too large", info->name);
        t->out.scales = malloc(rows * ng * sizeof(float));
        t->out.mins = malloc(rows * ng * sizeof(float));
        t->out.codes = malloc(rows * cols);
        if (!t->out.scales || !t->out.mins || !t->out.codes)
            goto nomem;
    }
    const float *w = curate_calib_tensor_cdata(j->src, info);
    t->out.q = curate_calib_tensor_data(j->dst, info);
    if (!w || !t->out.q)
        return curate_error_set(err, CURATE_ERR_INTERNAL, "%s: weights not found", info->name);
    curate_quant_stats qs = {imp, absmean, h};
    st = curate_quant_matrix(&cfg, w, rows, cols, &qs, &t->out, &t->rep, err);
    if (st) {
        char msg[sizeof err->message];
        memcpy(msg, err ? err->message : "", err ? sizeof msg : 1);
        if (err)
            curate_error_set(err, st, "%s: %s", info->name, msg);
        goto out;
    }
    double w2 = sumsq(w, rows * cols);
    t->weight_rel = w2 > 0 ? sqrt(t->rep.weight_err / w2) : 0.0;
    t->out_err = t->out_rel = NAN;
    if (h) {
        /* tr(W H W^T) is the output error of replacing W by zero: the
         * scale the output error is relative to */
        double e = 0, base = 0;
        if (!(zero = calloc(rows * cols, sizeof *zero)))
            goto nomem;
        if ((st = curate_quant_output_error(w, t->out.q, rows, cols, h, &e, err)) ||
            (st = curate_quant_output_error(w, zero, rows, cols, h, &base, err)))
            goto out;
        t->out_err = e;
        t->out_rel = base > 0 ? e / base : 0.0;
    }
    t->seconds = now_s() - t0;
    goto out;
nomem:
    st = curate_error_set(err, CURATE_ERR_NOMEM, "%s: out of memory", info->name);
out:
    free(imp);
    free(absmean);
    free(h);
    free(zero);
    return st;
}

static void *worker(void *arg)
{
    job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next < j->n && !j->failed ? j->next++ : j->n;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n)
            break;
        curate_status st = CURATE_OK;
        if (j->t[i].quantized) {
            curate_error_clear(&j->errs[i]);
            st = quantize_one(j, &j->t[i], &j->errs[i]);
        }
        pthread_mutex_lock(&j->mu);
        j->status[i] = st;
        if (st)
            j->failed = 1;
        j->done++;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}

curate_status curate_calib_quantize(const curate_model *src, curate_model *dst,
                                    const curate_calib_obs *obs,
                                    const curate_calib_quant_opts *o,
                                    curate_calib_quant_result *res, curate_error *err)
{
    if (!src || !dst || !o || !res)
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to quantize");
    memset(res, 0, sizeof *res);
    curate_status st = curate_quant_config_check(&o->cfg, err);
    if (st)
        return st;
    const curate_model_params *ps = curate_model_get_params(src),
                              *pd = curate_model_get_params(dst);
    if (ps->n_vocab != pd->n_vocab || ps->n_embd != pd->n_embd || ps->n_layer != pd->n_layer ||
        ps->n_ff != pd->n_ff || ps->n_head != pd->n_head || ps->n_head_kv != pd->n_head_kv ||
        ps->tied_output != pd->tied_output)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "the destination model does not have the source's shape");
    const double t0 = now_s();
    size_t n = curate_calib_tensors(src, NULL, 0);
    curate_calib_tensor *list = calloc(n, sizeof *list);
    res->t = calloc(n, sizeof *res->t);
    job j;
    memset(&j, 0, sizeof j);
    j.status = calloc(n, sizeof *j.status);
    j.errs = calloc(n, sizeof *j.errs);
    if (!list || !res->t || !j.status || !j.errs) {
        free(list);
        free(j.status);
        free(j.errs);
        curate_calib_quant_result_release(res);
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    }
    curate_calib_tensors(src, list, n);
    res->n = n;
    size_t n_work = 0;
    for (size_t i = 0; i < n; i++) {
        curate_calib_qtensor *t = &res->t[i];
        t->info = list[i];
        t->method = o->cfg.method;
        t->out_err = t->out_rel = NAN;
        t->quantized = curate_calib_selected(&o->sel, t->info.name, &t->excluded_by);
        n_work += (size_t)t->quantized;
    }
    free(list);

    j.src = src;
    j.dst = dst;
    j.obs = obs;
    j.o = o;
    j.t = res->t;
    j.n = n;
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    unsigned nt = o->n_threads ? o->n_threads : curate_cpu_count();
    if (nt > n_work)
        nt = n_work ? (unsigned)n_work : 1;
    pthread_t *th = calloc(nt, sizeof *th);
    unsigned started = 0;
    if (th && nt > 1)
        for (; started < nt; started++)
            if (pthread_create(&th[started], NULL, worker, &j) != 0)
                break;
    if (started == 0) {
        /* one thread (or none could start): the caller works */
        for (size_t i = 0; i < n && !j.failed; i++) {
            if (res->t[i].quantized) {
                j.status[i] = quantize_one(&j, &res->t[i], &j.errs[i]);
                j.failed = j.status[i] != CURATE_OK;
            }
            if (o->progress && !j.failed)
                o->progress(o->user, "quantize", i + 1, n);
        }
    } else {
        /* the caller reports progress while the workers run */
        size_t seen = 0;
        pthread_mutex_lock(&j.mu);
        while (j.done < n && !j.failed) {
            while (j.done == seen)
                pthread_cond_wait(&j.cv, &j.mu);
            seen = j.done;
            if (j.failed)
                break;
            pthread_mutex_unlock(&j.mu);
            if (o->progress)
                o->progress(o->user, "quantize", seen, n);
            pthread_mutex_lock(&j.mu);
        }
        pthread_mutex_unlock(&j.mu);
        for (unsigned i = 0; i < started; i++)
            pthread_join(th[i], NULL);
    }
    free(th);
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.cv);

    /* the first failure in tensor order, whatever thread met it */
    st = CURATE_OK;
    for (size_t i = 0; i < n; i++)
        if (j.status[i]) {
            st = j.status[i];
            if (err)
                *err = j.errs[i];
            break;
        }
    free(j.status);
    free(j.errs);
    if (st) {
        curate_calib_quant_result_release(res);
        return st;
    }
    for (size_t i = 0; i < n; i++)
        if (res->t[i].quantized) {
            res->n_quantized++;
            res->n_short_group += (size_t)res->t[i].rep.short_group;
        }
    res->seconds = now_s() - t0;
    return CURATE_OK;
}
