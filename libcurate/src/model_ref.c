/*
 * model_ref.c - the scalar reference forward pass.
 *
 * Written to be obviously right rather than fast: one token at a time, one
 * output at a time, dot products and softmax sums in double.  Every
 * optimisation in model_fast.c is tested against this.
 */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* y[n_out] = W[n_out][n_in] x[n_in] (+ b), accumulated in double */
static void linear(const float *W, const float *b, const float *x, size_t n_in, size_t n_out,
                   float *y)
{
    for (size_t o = 0; o < n_out; o++) {
        const float *row = W + o * n_in;
        double acc = 0.0;
        for (size_t i = 0; i < n_in; i++)
            acc += (double)row[i] * (double)x[i];
        if (b)
            acc += (double)b[o];
        y[o] = (float)acc;
    }
}

/* out = x / sqrt(mean(x^2) + eps) * w */
static void rmsnorm(const float *x, const float *w, size_t n, float eps, float *out)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    double scale = 1.0 / sqrt(ss / (double)n + (double)eps);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((double)x[i] * scale) * w[i];
}

static float silu(float x)
{
    return (float)((double)x / (1.0 + exp(-(double)x)));
}

curate_status curate_model_forward_ref(const curate_model *m, const int32_t *tokens, size_t n,
                                       size_t first, float *logits, curate_error *err)
{
    return curate_model_forward_ref_hooked(m, tokens, n, first, logits, NULL, NULL, err);
}

curate_status curate_model_forward_ref_hooked(const curate_model *m, const int32_t *tokens,
                                              size_t n, size_t first, float *logits,
                                              curate_linear_hook hook, void *user,
                                              curate_error *err)
{
    if (!m || !tokens || !logits || n == 0 || first >= n)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "forward needs at least one token and first < n");
    curate_status st = curate_model_check_tokens(m, tokens, n, err);
    if (st)
        return st;
    const curate_model_params *p = &m->p;
    const curate_model_weights *w = &m->w;
    curate_model_dims d = curate_model_dims_of(p);
    const size_t group = p->n_head / p->n_head_kv;
    const size_t half = d.n_rot / 2;

    /* whole-sequence buffers: x, the keys and values of every position */
    float *x = malloc(n * d.d * sizeof(float));
    float *K = malloc(n * d.kv * sizeof(float));
    float *Vv = malloc(n * d.kv * sizeof(float));
    float *xn = malloc(d.d * sizeof(float));
    float *q = malloc(d.q * sizeof(float));
    float *att = malloc(d.q * sizeof(float));
    float *tmp = malloc((d.d > d.f ? d.d : d.f) * sizeof(float));
    float *g = malloc(d.f * sizeof(float));
    float *u = malloc(d.f * sizeof(float));
    double *score = malloc(n * sizeof(double));
    float *cos_t = malloc(n * (half ? half : 1) * sizeof(float));
    float *sin_t = malloc(n * (half ? half : 1) * sizeof(float));
    if (!x || !K || !Vv || !xn || !q || !att || !tmp || !g || !u || !score || !cos_t || !sin_t) {
        st = curate_error_set(err, CURATE_ERR_NOMEM, "out of memory in the reference forward");
        goto out;
    }
    curate_rope_tables(p, n, cos_t, sin_t);

    for (size_t t = 0; t < n; t++)
        memcpy(x + t * d.d, w->tok_embd + (size_t)tokens[t] * d.d, d.d * sizeof(float));

    for (uint32_t l = 0; l < p->n_layer; l++) {
        const curate_layer_weights *L = &w->layers[l];
        /* Causality lets each position be finished before the next: its
         * keys and values only need earlier positions. */
        for (size_t t = 0; t < n; t++) {
            float *xt = x + t * d.d;
            rmsnorm(xt, L->attn_norm, d.d, p->norm_eps, xn);
            if (hook)
                hook(user, l, CURATE_LIN_ATTN_QKV, xn, 1, d.d);
            linear(L->wq, L->bq, xn, d.d, d.q, q);
            linear(L->wk, L->bk, xn, d.d, d.kv, K + t * d.kv);
            linear(L->wv, L->bv, xn, d.d, d.kv, Vv + t * d.kv);
            for (size_t h = 0; h < p->n_head; h++)
                curate_rope_apply(p->rope_mode, d.n_rot, q + h * d.hd, cos_t + t * half,
                                  sin_t + t * half);
            for (size_t h = 0; h < p->n_head_kv; h++)
                curate_rope_apply(p->rope_mode, d.n_rot, K + t * d.kv + h * d.hd,
                                  cos_t + t * half, sin_t + t * half);
            const double scale = 1.0 / sqrt((double)d.hd);
            /* softmax over positions 0..t in double; query head h reads
             * key/value head h / group (consecutive query heads share) */
            for (size_t h = 0; h < p->n_head; h++) {
                const size_t kvh = h / group;
                const float *qh = q + h * d.hd;
                double mx = -INFINITY;
                for (size_t s = 0; s <= t; s++) {
                    const float *ks = K + s * d.kv + kvh * d.hd;
                    double dot = 0.0;
                    for (size_t i = 0; i < d.hd; i++)
                        dot += (double)qh[i] * (double)ks[i];
                    score[s] = dot * scale;
                    if (score[s] > mx)
                        mx = score[s];
                }
                double sum = 0.0;
                for (size_t s = 0; s <= t; s++) {
                    score[s] = exp(score[s] - mx);
                    sum += score[s];
                }
                for (size_t i = 0; i < d.hd; i++) {
                    double acc = 0.0;
                    for (size_t s = 0; s <= t; s++)
                        acc += score[s] * (double)Vv[s * d.kv + kvh * d.hd + i];
                    att[h * d.hd + i] = (float)(acc / sum);
                }
            }
            if (hook)
                hook(user, l, CURATE_LIN_ATTN_OUT, att, 1, d.q);
            linear(L->wo, NULL, att, d.q, d.d, tmp);
            for (size_t i = 0; i < d.d; i++)
                xt[i] += tmp[i];

            rmsnorm(xt, L->ffn_norm, d.d, p->norm_eps, xn);
            if (hook)
                hook(user, l, CURATE_LIN_FFN_GATE_UP, xn, 1, d.d);
            linear(L->w_gate, NULL, xn, d.d, d.f, g);
            linear(L->w_up, NULL, xn, d.d, d.f, u);
            for (size_t i = 0; i < d.f; i++)
                g[i] = silu(g[i]) * u[i];
            if (hook)
                hook(user, l, CURATE_LIN_FFN_DOWN, g, 1, d.f);
            linear(L->w_down, NULL, g, d.f, d.d, tmp);
            for (size_t i = 0; i < d.d; i++)
                xt[i] += tmp[i];
        }
    }
    for (size_t t = first; t < n; t++) {
        rmsnorm(x + t * d.d, w->output_norm, d.d, p->norm_eps, xn);
        if (hook)
            hook(user, p->n_layer, CURATE_LIN_OUTPUT, xn, 1, d.d);
        linear(w->output, NULL, xn, d.d, d.V, logits + (t - first) * d.V);
    }
    st = CURATE_OK;
out:
    free(x);
    free(K);
    free(Vv);
    free(xn);
    free(q);
    free(att);
    free(tmp);
    free(g);
    free(u);
    free(score);
    free(cos_t);
    free(sin_t);
    return st;
}
