/*
 * calibrate_collect.c - the calibration pass: the original model runs over
 * the calibration sequences and every linear-layer input goes into its
 * observer (curate/observe.h).
 *
 * Only the inputs are wanted, so each sequence is run with `first` at its
 * last position: the output product (the widest one, V x d per row) is
 * computed for one row instead of all, unless the output matrix's input is
 * observed too.
 *
 * The observers' work (the Hessian above all: rows x cols^2 per input) would
 * run on one thread inside the forward pass's callback.  Instead the
 * callback copies each input into a staging area, and after the forward
 * pass the inputs are added to their observers in parallel on the model
 * context's pool, one task per observer.  Each observer still receives its
 * rows in sequence order from one thread at a time, so the sums do not
 * depend on the thread count.  When one sequence's inputs would take more
 * than STAGE_MAX bytes the callback adds directly instead (one thread).
 */
#include "curate/calibrate.h"
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

/* inputs per block: Q/K/V, attention output, gate/up, down */
#define N_IN 4

/* the most staging memory collect uses (bytes) */
#define STAGE_MAX ((size_t)512 << 20)

struct curate_calib_obs {
    uint32_t n_layer;
    size_t cols[N_IN + 1];       /* columns per input kind (OUTPUT last) */
    curate_observer **obs;       /* [n_layer * N_IN + 1]; the last is the output's */
    uint64_t sequences, tokens;
    /* the first error inside the observer callback (which cannot return one) */
    curate_status cb_status;
    curate_error cb_err;
    /* staging during curate_calib_collect: per observer, its rows of the
     * current sequence (NULL when adding directly) */
    float **stage;
    size_t *stage_rows;
    curate_status *task_status;
    curate_error *task_err;
};

curate_calib_obs *curate_calib_obs_new(const curate_model *m, unsigned what, int with_output,
                                       size_t hist_bins, curate_error *err)
{
    if (!m) {
        curate_error_set(err, CURATE_ERR_INVALID, "no model");
        return NULL;
    }
    const curate_model_params *p = curate_model_get_params(m);
    curate_calib_obs *o = calloc(1, sizeof *o);
    if (!o) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for observers");
        return NULL;
    }
    o->n_layer = p->n_layer;
    const size_t q = (size_t)p->n_head * p->head_dim;
    o->cols[CURATE_LIN_ATTN_QKV] = p->n_embd;
    o->cols[CURATE_LIN_ATTN_OUT] = q;
    o->cols[CURATE_LIN_FFN_GATE_UP] = p->n_embd;
    o->cols[CURATE_LIN_FFN_DOWN] = p->n_ff;
    o->cols[CURATE_LIN_OUTPUT] = p->n_embd;
    size_t n = (size_t)p->n_layer * N_IN + 1;
    o->obs = calloc(n, sizeof *o->obs);
    if (!o->obs) {
        free(o);
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for observers");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int is_out = i == n - 1;
        if (is_out && !with_output)
            continue;
        curate_observer_config oc;
        memset(&oc, 0, sizeof oc);
        oc.cols = o->cols[is_out ? CURATE_LIN_OUTPUT : i % N_IN];
        oc.what = what;
        oc.hist_bins = hist_bins;
        o->obs[i] = curate_observer_init(&oc, err);
        if (!o->obs[i]) {
            curate_calib_obs_free(o);
            return NULL;
        }
    }
    return o;
}

void curate_calib_obs_free(curate_calib_obs *o)
{
    if (!o)
        return;
    if (o->obs)
        for (size_t i = 0; i < (size_t)o->n_layer * N_IN + 1; i++)
            curate_observer_free(o->obs[i]);
    free(o->obs);
    free(o);
}

static curate_observer *slot(const curate_calib_obs *o, uint32_t layer, curate_linear_input w)
{
    if (w == CURATE_LIN_OUTPUT)
        return o->obs[(size_t)o->n_layer * N_IN];
    if (layer >= o->n_layer || (unsigned)w >= N_IN)
        return NULL;
    return o->obs[(size_t)layer * N_IN + (size_t)w];
}

const curate_observer *curate_calib_obs_get(const curate_calib_obs *o, uint32_t layer,
                                            curate_linear_input which)
{
    return o ? slot(o, layer, which) : NULL;
}

uint64_t curate_calib_obs_sequences(const curate_calib_obs *o) { return o->sequences; }
uint64_t curate_calib_obs_tokens(const curate_calib_obs *o) { return o->tokens; }

/* Add rows to an observer, naming the input in an error. */
static curate_status add_rows(curate_observer *ob, uint32_t layer, curate_linear_input which,
                              const float *x, size_t n_rows, curate_error *err)
{
    curate_error e;
    curate_error_clear(&e);
    curate_status st = curate_observer_add(ob, x, n_rows, &e);
    if (st != CURATE_OK) {
        /* say where: the observer names row and column only */
        if (which == CURATE_LIN_OUTPUT)
            curate_error_set(err, st, "output matrix input: %s", e.message);
        else
            curate_error_set(err, st, "layer %u input %d: %s", layer, (int)which, e.message);
    }
    return st;
}

static size_t slot_index(const curate_calib_obs *o, uint32_t layer, curate_linear_input w)
{
    return w == CURATE_LIN_OUTPUT ? (size_t)o->n_layer * N_IN : (size_t)layer * N_IN + (size_t)w;
}

static void on_input(void *user, uint32_t layer, curate_linear_input which, const float *x,
                     size_t n_rows, size_t n_cols)
{
    curate_calib_obs *o = user;
    if (o->cb_status != CURATE_OK)
        return;
    curate_observer *ob = slot(o, layer, which);
    if (!ob)
        return;
    if (curate_observer_cols(ob) != n_cols) {
        o->cb_status = curate_error_set(&o->cb_err, CURATE_ERR_INVALID,
                                        "observers made for another model: input %d of layer "
                                        "%u has %zu columns, not %zu",
                                        (int)which, layer, n_cols, curate_observer_cols(ob));
        return;
    }
    size_t k = slot_index(o, layer, which);
    if (o->stage && o->stage[k]) {
        memcpy(o->stage[k], x, n_rows * n_cols * sizeof *x);
        o->stage_rows[k] = n_rows;
        return;
    }
    o->cb_status = add_rows(ob, layer, which, x, n_rows, &o->cb_err);
}

/* One pool task: the staged rows of observer `task`. */
static void add_task(void *arg, size_t task, unsigned thread)
{
    (void)thread;
    curate_calib_obs *o = arg;
    o->task_status[task] = CURATE_OK;
    if (!o->stage_rows[task])
        return;
    uint32_t layer = task == (size_t)o->n_layer * N_IN ? o->n_layer : (uint32_t)(task / N_IN);
    curate_linear_input w = task == (size_t)o->n_layer * N_IN ? CURATE_LIN_OUTPUT
                                                              : (curate_linear_input)(task % N_IN);
    o->task_status[task] = add_rows(o->obs[task], layer, w, o->stage[task], o->stage_rows[task],
                                    &o->task_err[task]);
    o->stage_rows[task] = 0;
}

static void stage_free(curate_calib_obs *o, size_t n)
{
    for (size_t i = 0; o->stage && i < n; i++)
        free(o->stage[i]);
    free(o->stage);
    free(o->stage_rows);
    free(o->task_status);
    free(o->task_err);
    o->stage = NULL;
    o->stage_rows = NULL;
    o->task_status = NULL;
    o->task_err = NULL;
}

/* Staging buffers for sequences of up to max_len rows, when they fit the
 * budget; otherwise none (direct adds).  Only a failed allocation of the
 * small arrays is an error. */
static void stage_alloc(curate_calib_obs *o, size_t n, size_t max_len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (o->obs[i]) {
            size_t c = curate_observer_cols(o->obs[i]);
            if (c > STAGE_MAX / sizeof(float) / max_len)
                return;
            total += c * max_len * sizeof(float);
            if (total > STAGE_MAX)
                return;
        }
    o->stage = calloc(n, sizeof *o->stage);
    o->stage_rows = calloc(n, sizeof *o->stage_rows);
    o->task_status = calloc(n, sizeof *o->task_status);
    o->task_err = calloc(n, sizeof *o->task_err);
    if (!o->stage || !o->stage_rows || !o->task_status || !o->task_err) {
        stage_free(o, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (o->obs[i] &&
            !(o->stage[i] = malloc(curate_observer_cols(o->obs[i]) * max_len * sizeof(float)))) {
            stage_free(o, n);
            return;
        }
}

curate_status curate_calib_collect(curate_model_ctx *c, const curate_seqs *seqs,
                                   curate_calib_obs *o, curate_calib_progress_fn progress,
                                   void *user, curate_error *err)
{
    if (!c || !seqs || !o)
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to collect");
    const curate_model_params *p = curate_model_get_params(curate_model_ctx_model(c));
    if (p->n_layer != o->n_layer || p->n_embd != o->cols[CURATE_LIN_ATTN_QKV] ||
        p->n_ff != o->cols[CURATE_LIN_FFN_DOWN])
        return curate_error_set(err, CURATE_ERR_INVALID, "observers made for another model");
    if (seqs->max_len > curate_model_ctx_max_tokens(c))
        return curate_error_set(err, CURATE_ERR_RANGE,
                                "sequences of %zu tokens do not fit a context of %zu",
                                seqs->max_len, curate_model_ctx_max_tokens(c));
    const int out_obs = slot(o, 0, CURATE_LIN_OUTPUT) != NULL;
    const size_t V = p->n_vocab;
    size_t rows = out_obs ? seqs->max_len : 1;
    if (rows && V > SIZE_MAX / sizeof(float) / rows)
        return curate_error_set(err, CURATE_ERR_RANGE, "logits too large");
    float *logits = malloc((rows ? rows : 1) * V * sizeof *logits);
    if (!logits)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for logits");
    o->cb_status = CURATE_OK;
    curate_error_clear(&o->cb_err);
    const size_t n_obs = (size_t)o->n_layer * N_IN + 1;
    curate_pool *pool = curate_model_ctx_pool(c);
    if (curate_model_ctx_threads(c) > 1 && seqs->max_len)
        stage_alloc(o, n_obs, seqs->max_len);
    curate_model_ctx_set_observer(c, on_input, o);
    curate_status st = CURATE_OK;
    for (size_t i = 0; i < seqs->n; i++) {
        size_t len = curate_seqs_len(seqs, i);
        st = curate_model_ctx_forward(c, seqs->ids + seqs->start[i], len, out_obs ? 0 : len - 1,
                                      logits, err);
        if (st)
            break;
        if (o->stage && !o->cb_status) {
            curate_pool_run(pool, add_task, o, n_obs);
            for (size_t k = 0; k < n_obs && !o->cb_status; k++)
                if (o->task_status[k]) {
                    o->cb_status = o->task_status[k];
                    o->cb_err = o->task_err[k];
                }
        }
        if (o->cb_status) {
            st = o->cb_status;
            if (err)
                *err = o->cb_err;
            break;
        }
        o->sequences++;
        o->tokens += len;
        if (progress)
            progress(user, "calibrate", i + 1, seqs->n);
    }
    curate_model_ctx_set_observer(c, NULL, NULL);
    stage_free(o, n_obs);
    free(logits);
    return st;
}

curate_status curate_calib_obs_imatrix(const curate_calib_obs *o, curate_imatrix *im,
                                       curate_error *err)
{
    if (!o || !im)
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument");
    for (uint32_t l = 0; l < o->n_layer; l++)
        for (int k = 0; k < N_IN; k++) {
            const curate_observer *ob = slot(o, l, (curate_linear_input)k);
            curate_status st = curate_imatrix_add_observer(im, l, (curate_linear_input)k, ob, err);
            if (st)
                return st;
        }
    return CURATE_OK;
}
