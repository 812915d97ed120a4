/*
 * calibrate_act.c - simulated activation quantization through the model's
 * input hook: static per-tensor scales from the calibration histograms, or
 * a dynamic scale per token.
 *
 * Which inputs are rounded follows the weight selection, because in a real
 * W8A8 kernel the activation is quantized for the integer product of a
 * quantized weight: an input is rounded when a selected weight reads it.
 * Q/K/V (and gate/up) read one shared buffer in the forward pass, so when
 * only some of them are selected all three read the rounded input; the
 * report lists inputs, not weights, to make this visible.
 */
#include "curate/calibrate.h"
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_IN 4

typedef struct act_slot {
    curate_calib_act_info info;
} act_slot;

struct curate_calib_act {
    curate_act_config cfg;
    uint32_t n_layer;
    act_slot *slots; /* [n_layer * N_IN + 1], the output's last */
    /* the pool of the context it is attached to: rows are rounded in
     * parallel (each row by one task, so the result does not depend on
     * the threads); NULL = on the calling thread */
    curate_pool *pool;
    uint64_t *task_clipped; /* [cap_tasks] */
    size_t cap_tasks;
};

/* rows per rounding task */
#define ACT_ROWS 16

static act_slot *slot(const curate_calib_act *a, uint32_t layer, curate_linear_input w)
{
    if (w == CURATE_LIN_OUTPUT)
        return &a->slots[(size_t)a->n_layer * N_IN];
    if (layer >= a->n_layer || (unsigned)w >= N_IN)
        return NULL;
    return &a->slots[(size_t)layer * N_IN + (size_t)w];
}

curate_calib_act *curate_calib_act_new(const curate_model *m, const curate_calib_obs *obs,
                                       const curate_act_config *cfg,
                                       const curate_calib_select *sel, curate_error *err)
{
    if (!m || !cfg) {
        curate_error_set(err, CURATE_ERR_INVALID, "NULL argument");
        return NULL;
    }
    if (curate_act_qmax(cfg->bits) == 0) {
        curate_error_set(err, CURATE_ERR_INVALID, "activation bits must be in 2..16, not %u",
                         cfg->bits);
        return NULL;
    }
    const curate_model_params *p = curate_model_get_params(m);
    curate_calib_act *a = calloc(1, sizeof *a);
    size_t n_tensors = curate_calib_tensors(m, NULL, 0);
    curate_calib_tensor *list = calloc(n_tensors, sizeof *list);
    if (a)
        a->slots = calloc((size_t)p->n_layer * N_IN + 1, sizeof *a->slots);
    if (!a || !a->slots || !list) {
        free(list);
        curate_calib_act_free(a);
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    a->n_layer = p->n_layer;
    curate_calib_tensors(m, list, n_tensors);
    for (size_t i = 0; i < n_tensors; i++)
        if (list[i].has_input && curate_calib_selected(sel, list[i].name, NULL))
            slot(a, list[i].layer, list[i].input)->info.enabled = 1;
    free(list);
    if (cfg->scope == CURATE_ACT_TOKEN)
        return a;
    for (size_t i = 0; i < (size_t)p->n_layer * N_IN + 1; i++) {
        act_slot *s = &a->slots[i];
        if (!s->info.enabled)
            continue;
        uint32_t layer = i == (size_t)p->n_layer * N_IN ? p->n_layer : (uint32_t)(i / N_IN);
        curate_linear_input w =
            i == (size_t)p->n_layer * N_IN ? CURATE_LIN_OUTPUT : (curate_linear_input)(i % N_IN);
        const curate_observer *ob = curate_calib_obs_get(obs, layer, w);
        const curate_hist *h = ob ? curate_observer_hist(ob) : NULL;
        if (!h || h->total == 0) {
            curate_error_set(err, CURATE_ERR_INVALID,
                             "static activation scales need calibration histograms, and input "
                             "%d of layer %u has none",
                             (int)w, layer);
            curate_calib_act_free(a);
            return NULL;
        }
        if (curate_act_threshold_from_hist(h, cfg, &s->info.threshold, err) != CURATE_OK ||
            curate_act_scale_from_hist(h, cfg, &s->info.scale, err) != CURATE_OK) {
            curate_calib_act_free(a);
            return NULL;
        }
    }
    return a;
}

void curate_calib_act_free(curate_calib_act *a)
{
    if (!a)
        return;
    free(a->slots);
    free(a->task_clipped);
    free(a);
}

typedef struct act_job {
    const curate_calib_act *a;
    const act_slot *s;
    float *x;
    size_t n_rows, n_cols;
    uint64_t *clipped; /* [tasks] */
} act_job;

/* Round rows [r0, r1) of the job; returns the values beyond the static
 * threshold (the ones the static range clips). */
static uint64_t round_rows(const act_job *j, size_t r0, size_t r1)
{
    float *x = j->x + r0 * j->n_cols;
    const size_t rows = r1 - r0, n = rows * j->n_cols;
    if (j->a->cfg.scope == CURATE_ACT_TOKEN) {
        curate_act_fake_quant_token(x, rows, j->n_cols, j->a->cfg.bits);
        return 0;
    }
    const float t = (float)j->s->info.threshold;
    uint64_t clipped = 0;
    for (size_t i = 0; i < n; i++)
        clipped += fabsf(x[i]) > t;
    curate_act_fake_quant(x, rows, j->n_cols, j->a->cfg.bits, j->s->info.scale);
    return clipped;
}

static void act_task(void *arg, size_t task, unsigned thread)
{
    (void)thread;
    const act_job *j = arg;
    size_t r0 = task * ACT_ROWS, r1 = r0 + ACT_ROWS < j->n_rows ? r0 + ACT_ROWS : j->n_rows;
    j->clipped[task] = round_rows(j, r0, r1);
}

void curate_calib_act_hook(void *user, uint32_t layer, curate_linear_input which, float *x,
                           size_t n_rows, size_t n_cols)
{
    curate_calib_act *a = user;
    act_slot *s = slot(a, layer, which);
    if (!s || !s->info.enabled)
        return;
    s->info.values += n_rows * n_cols;
    act_job j = {a, s, x, n_rows, n_cols, NULL};
    size_t n_tasks = (n_rows + ACT_ROWS - 1) / ACT_ROWS;
    if (a->pool && n_tasks > 1) {
        if (n_tasks > a->cap_tasks) {
            uint64_t *t = realloc(a->task_clipped, n_tasks * sizeof *t);
            if (t) {
                a->task_clipped = t;
                a->cap_tasks = n_tasks;
            }
        }
        if (n_tasks <= a->cap_tasks) {
            j.clipped = a->task_clipped;
            curate_pool_run(a->pool, act_task, &j, n_tasks);
            for (size_t i = 0; i < n_tasks; i++)
                s->info.clipped += j.clipped[i];
            return;
        }
    }
    /* one thread (the reference pass, or no memory for the counters) */
    s->info.clipped += round_rows(&j, 0, n_rows);
}

void curate_calib_act_attach(curate_calib_act *a, curate_model_ctx *c)
{
    if (a)
        a->pool = curate_model_ctx_pool(c);
    curate_model_ctx_set_input_hook(c, a ? curate_calib_act_hook : NULL, a);
}

curate_calib_act_info curate_calib_act_get(const curate_calib_act *a, uint32_t layer,
                                           curate_linear_input which)
{
    curate_calib_act_info none;
    memset(&none, 0, sizeof none);
    const act_slot *s = a ? slot(a, layer, which) : NULL;
    return s ? s->info : none;
}

void curate_calib_act_reset_counts(curate_calib_act *a)
{
    for (size_t i = 0; a && i < (size_t)a->n_layer * N_IN + 1; i++)
        a->slots[i].info.values = a->slots[i].info.clipped = 0;
}
