/*
 * calibrate_collect.c - the calibration pass: the original model runs over
 * the calibration sequences and every linear-layer input goes into its
 * observer (curate/observe.h).
 *
 * Only the inputs are wanted, so each sequence is run with `first` at its
 * last position: the output product (the widest one, V x d per row) is
 * computed for one row instead of all, unless the output matrix's input is
 * observed too.
 */
#include "curate/calibrate.h"

#include <stdlib.h>
#include <string.h>

/* inputs per block: Q/K/V, attention output, gate/up, down */
#define N_IN 4

struct curate_calib_obs {
    uint32_t n_layer;
    size_t cols[N_IN + 1];       /* columns per input kind (OUTPUT last) */
    curate_observer **obs;       /* [n_layer * N_IN + 1]; the last is the output's */
    uint64_t sequences, tokens;
    /* the first error inside the observer callback (which cannot return one) */
    curate_status cb_status;
    curate_error cb_err;
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
    curate_error e;
    curate_error_clear(&e);
    curate_status st = curate_observer_add(ob, x, n_rows, &e);
    if (st != CURATE_OK) {
        o->cb_status = st;
        o->cb_err = e;
        /* say where: the observer names row and column only */
        char msg[sizeof e.message];
        memcpy(msg, e.message, sizeof msg);
        if (which == CURATE_LIN_OUTPUT)
            curate_error_set(&o->cb_err, st, "output matrix input: %s", msg);
        else
            curate_error_set(&o->cb_err, st, "layer %u input %d: %s", layer, (int)which, msg);
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
    curate_model_ctx_set_observer(c, on_input, o);
    curate_status st = CURATE_OK;
    for (size_t i = 0; i < seqs->n; i++) {
        size_t len = curate_seqs_len(seqs, i);
        st = curate_model_ctx_forward(c, seqs->ids + seqs->start[i], len, out_obs ? 0 : len - 1,
                                      logits, err);
        if (st)
            break;
        if (o->cb_status) {
            st = o->cb_status;
            if (err) {
                *err = o->cb_err;
            }
            break;
        }
        o->sequences++;
        o->tokens += len;
        if (progress)
            progress(user, "calibrate", i + 1, seqs->n);
    }
    curate_model_ctx_set_observer(c, NULL, NULL);
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
