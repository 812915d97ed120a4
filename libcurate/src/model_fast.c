/*
 * model_fast.c - the fast forward pass: every product through cblas_sgemm,
 * work split over a thread pool.
 *
 * Determinism.  Every parallel step is cut into tasks whose boundaries
 * depend only on the shapes (never on the thread count), each task writes
 * only its own outputs, and OpenBLAS runs single-threaded inside a task.  So
 * each output element is computed by the same sequence of floating-point
 * operations whatever the number of threads, and results are bit-identical
 * across thread counts (the tests check this).
 *
 * Layout of one layer for a chunk of T tokens:
 *   xn  = rmsnorm(x) * attn_norm                       [T][d]
 *   qkv = xn * [wq|wk|wv]^T (+ bias), RoPE on q and k  [T][q + 2kv]
 *   att = causal softmax(q k^T / sqrt(hd)) v, by (head, row block) tasks
 *   x  += att * wo^T                (sgemm with beta = 1: the residual add)
 *   xn  = rmsnorm(x) * ffn_norm
 *   gu  = xn * [w_gate|w_up]^T                         [T][2f]
 *   hh  = silu(gate) * up                              [T][f]
 *   x  += hh * w_down^T
 * The loader keeps wq|wk|wv and w_gate|w_up contiguous so each pair or triple
 * is one product; if a caller replaced those pointers, separate products are
 * used instead.
 */
#include "model_internal.h"
#include "model_vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

/* Rows of queries per attention task. */
#define ATT_ROWS 64
/* Columns (output features) per product task, and the row split for narrow
 * products; both are fixed so task boundaries never depend on threads. */
#define GEMM_COLS 256
#define GEMM_MIN_TASKS 8
#define GEMM_MIN_ROWS 32
/* Rows per task of the element-wise steps. */
#define ROW_TASK 16

struct curate_model_ctx {
    const curate_model *m;
    size_t max_tokens;
    curate_pool *pool;
    curate_linear_observer obs;
    void *obs_user;
    curate_linear_hook hook;
    void *hook_user;
    /* activations, [max_tokens][...] */
    float *x;      /* residual stream [T][d] */
    float *xn;     /* normed input of a block [T][d] */
    float *qkv;    /* [T][q + 2kv] */
    float *att;    /* [T][q] */
    float *gu;     /* [T][2f] */
    float *hh;     /* [T][f] */
    float *scores; /* per thread [ATT_ROWS][max_tokens] */
    float *cos_t, *sin_t; /* [max_tokens][n_rot/2] */
};

/* ---- products --------------------------------------------------------------- */

typedef struct gemm_job {
    const float *A;  /* [M][K], row stride lda */
    size_t lda;
    const float *W;  /* [N][K], row stride K */
    float *C;        /* [M][N], row stride ldc */
    size_t ldc;
    size_t M, N, K;
    float beta;
    size_t row_block, col_block, n_col_blocks;
} gemm_job;

static void gemm_task(void *arg, size_t task, unsigned thread)
{
    (void)thread;
    const gemm_job *j = arg;
    size_t rb = task / j->n_col_blocks, cb = task % j->n_col_blocks;
    size_t r0 = rb * j->row_block, c0 = cb * j->col_block;
    size_t rows = j->M - r0 < j->row_block ? j->M - r0 : j->row_block;
    size_t cols = j->N - c0 < j->col_block ? j->N - c0 : j->col_block;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)cols,
                (blasint)j->K, 1.0f, j->A + r0 * j->lda, (blasint)j->lda, j->W + c0 * j->K,
                (blasint)j->K, j->beta, j->C + r0 * j->ldc + c0, (blasint)j->ldc);
}

/* C = A W^T + beta C, split into shape-determined tiles over the pool. */
static void gemm(curate_model_ctx *c, const float *A, size_t lda, const float *W, float *C,
                 size_t ldc, size_t M, size_t N, size_t K, float beta)
{
    /* wide products (the vocabulary) in wider tiles: each tile packs A again */
    gemm_job j = {A, lda, W, C, ldc, M, N, K, beta, M, N >= 8192 ? 4 * GEMM_COLS : GEMM_COLS, 0};
    if (N < j.col_block)
        j.col_block = N;
    j.n_col_blocks = (N + j.col_block - 1) / j.col_block;
    size_t n_row_blocks = 1;
    if (j.n_col_blocks < GEMM_MIN_TASKS && M >= 2 * GEMM_MIN_ROWS) {
        /* narrow product: cut the rows too, into blocks of a multiple of 16 */
        size_t want = (GEMM_MIN_TASKS + j.n_col_blocks - 1) / j.n_col_blocks;
        size_t rb = (M + want - 1) / want;
        rb = (rb + 15) / 16 * 16;
        if (rb < GEMM_MIN_ROWS)
            rb = GEMM_MIN_ROWS;
        j.row_block = rb;
        n_row_blocks = (M + rb - 1) / rb;
    }
    curate_pool_run(c->pool, gemm_task, &j, n_row_blocks * j.n_col_blocks);
}

/* ---- element-wise steps ---------------------------------------------------------- */

typedef struct rows_job {
    curate_model_ctx *c;
    const float *w;   /* norm weight */
    size_t row0, n_rows;
} rows_job;

static void rmsnorm_row(const float *x, const float *w, size_t n, float eps, float *out)
{
    /* four partial sums so the loop is not one long dependency chain */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)x[i] * x[i];
        s1 += (double)x[i + 1] * x[i + 1];
        s2 += (double)x[i + 2] * x[i + 2];
        s3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < n; i++)
        s0 += (double)x[i] * x[i];
    double ss = (s0 + s1) + (s2 + s3);
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (i = 0; i < n; i++)
        out[i] = (x[i] * scale) * w[i];
}

static void rmsnorm_task(void *arg, size_t task, unsigned thread)
{
    (void)thread;
    const rows_job *j = arg;
    const curate_model_ctx *c = j->c;
    const curate_model_params *p = &c->m->p;
    size_t d = p->n_embd;
    size_t t0 = j->row0 + task * ROW_TASK, t1 = t0 + ROW_TASK;
    if (t1 > j->row0 + j->n_rows)
        t1 = j->row0 + j->n_rows;
    for (size_t t = t0; t < t1; t++)
        rmsnorm_row(c->x + t * d, j->w, d, p->norm_eps, c->xn + t * d);
}

static void rmsnorm_rows(curate_model_ctx *c, const float *w, size_t row0, size_t n_rows)
{
    rows_job j = {c, w, row0, n_rows};
    curate_pool_run(c->pool, rmsnorm_task, &j, (n_rows + ROW_TASK - 1) / ROW_TASK);
}

typedef struct rope_job {
    curate_model_ctx *c;
    const curate_layer_weights *L;
    size_t n;
} rope_job;

static void rope_task(void *arg, size_t task, unsigned thread)
{
    (void)thread;
    const rope_job *j = arg;
    const curate_model_ctx *c = j->c;
    const curate_model_params *p = &c->m->p;
    curate_model_dims d = curate_model_dims_of(p);
    size_t ld = d.q + 2 * d.kv, half = d.n_rot / 2;
    size_t t0 = task * ROW_TASK, t1 = t0 + ROW_TASK < j->n ? t0 + ROW_TASK : j->n;
    for (size_t t = t0; t < t1; t++) {
        float *row = c->qkv + t * ld;
        if (j->L->bq) {
            for (size_t i = 0; i < d.q; i++)
                row[i] += j->L->bq[i];
            for (size_t i = 0; i < d.kv; i++) {
                row[d.q + i] += j->L->bk[i];
                row[d.q + d.kv + i] += j->L->bv[i];
            }
        }
        const float *cr = c->cos_t + t * half, *sr = c->sin_t + t * half;
        for (size_t h = 0; h < p->n_head; h++)
            curate_rope_apply(p->rope_mode, d.n_rot, row + h * d.hd, cr, sr);
        for (size_t h = 0; h < p->n_head_kv; h++)
            curate_rope_apply(p->rope_mode, d.n_rot, row + d.q + h * d.hd, cr, sr);
    }
}

typedef struct swiglu_job {
    curate_model_ctx *c;
    size_t n;
} swiglu_job;

static void swiglu_task(void *arg, size_t task, unsigned thread)
{
    (void)thread;
    const swiglu_job *j = arg;
    const curate_model_ctx *c = j->c;
    size_t f = c->m->p.n_ff;
    size_t t0 = task * ROW_TASK, t1 = t0 + ROW_TASK < j->n ? t0 + ROW_TASK : j->n;
    for (size_t t = t0; t < t1; t++) {
        const float *g = c->gu + t * 2 * f, *u = g + f;
        float *h = c->hh + t * f;
        curate_vec_swiglu(g, u, h, f);
    }
}

/* ---- attention ------------------------------------------------------------------ */

typedef struct att_job {
    curate_model_ctx *c;
    size_t n, n_row_blocks;
} att_job;

static void att_task(void *arg, size_t task, unsigned thread)
{
    const att_job *j = arg;
    curate_model_ctx *c = j->c;
    const curate_model_params *p = &c->m->p;
    curate_model_dims d = curate_model_dims_of(p);
    const size_t ld = d.q + 2 * d.kv;
    const size_t h = task / j->n_row_blocks, rb = task % j->n_row_blocks;
    const size_t kvh = h / (p->n_head / p->n_head_kv);
    const size_t r0 = rb * ATT_ROWS;
    const size_t r1 = r0 + ATT_ROWS < j->n ? r0 + ATT_ROWS : j->n;
    const size_t rows = r1 - r0, nk = r1; /* keys 0..r1-1 can be seen */
    float *S = c->scores + (size_t)thread * ATT_ROWS * c->max_tokens;
    const float *Q = c->qkv + r0 * ld + h * d.hd;
    const float *K = c->qkv + d.q + kvh * d.hd;
    const float *V = c->qkv + d.q + d.kv + kvh * d.hd;
    float *O = c->att + r0 * d.q + h * d.hd;
    const float scale = (float)(1.0 / sqrt((double)d.hd));

    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)nk,
                (blasint)d.hd, scale, Q, (blasint)ld, K, (blasint)ld, 0.0f, S, (blasint)nk);
    float inv_sum[ATT_ROWS];
    for (size_t i = 0; i < rows; i++) {
        float *s = S + i * nk;
        size_t valid = r0 + i + 1; /* causal: keys 0..r0+i */
        float mx = curate_vec_max(s, valid);
        double sum = curate_vec_exp_store(s, valid, mx);
        if (valid < nk)
            memset(s + valid, 0, (nk - valid) * sizeof(float));
        inv_sum[i] = (float)(1.0 / sum);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)d.hd,
                (blasint)nk, 1.0f, S, (blasint)nk, V, (blasint)ld, 0.0f, O, (blasint)d.q);
    for (size_t i = 0; i < rows; i++)
        for (size_t k = 0; k < d.hd; k++)
            O[i * d.q + k] *= inv_sum[i];
}

/* ---- context --------------------------------------------------------------------- */

void curate_model_ctx_free(curate_model_ctx *c)
{
    if (!c)
        return;
    curate_pool_free(c->pool);
    free(c->x);
    free(c->xn);
    free(c->qkv);
    free(c->att);
    free(c->gu);
    free(c->hh);
    free(c->scores);
    free(c->cos_t);
    free(c->sin_t);
    free(c);
}

/* n1 * n2 floats, NULL on overflow or no memory */
static float *alloc2(size_t n1, size_t n2)
{
    if (n2 && n1 > SIZE_MAX / n2)
        return NULL;
    return curate_falloc(n1 * n2);
}

curate_model_ctx *curate_model_ctx_init(const curate_model *m, size_t max_tokens,
                                        unsigned n_threads, curate_error *err)
{
    if (!m || max_tokens == 0) {
        curate_error_set(err, CURATE_ERR_INVALID, "a context needs a model and max_tokens > 0");
        return NULL;
    }
    if (max_tokens > (size_t)INT32_MAX / 2) {
        curate_error_set(err, CURATE_ERR_RANGE, "context of %zu tokens is too long", max_tokens);
        return NULL;
    }
    if (n_threads == 0)
        n_threads = curate_cpu_count();
    curate_model_dims d = curate_model_dims_of(&m->p);
    curate_model_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for the model context");
        return NULL;
    }
    c->m = m;
    c->max_tokens = max_tokens;
    size_t half = d.n_rot / 2;
    c->x = alloc2(max_tokens, d.d);
    c->xn = alloc2(max_tokens, d.d);
    c->qkv = alloc2(max_tokens, d.q + 2 * d.kv);
    c->att = alloc2(max_tokens, d.q);
    c->gu = alloc2(max_tokens, 2 * d.f);
    c->hh = alloc2(max_tokens, d.f);
    c->scores = alloc2((size_t)n_threads * ATT_ROWS, max_tokens);
    c->cos_t = alloc2(max_tokens, half);
    c->sin_t = alloc2(max_tokens, half);
    if (!c->x || !c->xn || !c->qkv || !c->att || !c->gu || !c->hh || !c->scores || !c->cos_t ||
        !c->sin_t) {
        curate_model_ctx_free(c);
        curate_error_set(err, CURATE_ERR_NOMEM,
                         "out of memory for a context of %zu tokens", max_tokens);
        return NULL;
    }
    curate_rope_tables(&m->p, max_tokens, c->cos_t, c->sin_t);
    c->pool = curate_pool_new(n_threads);
    if (!c->pool) {
        curate_model_ctx_free(c);
        curate_error_set(err, CURATE_ERR_INTERNAL, "cannot start %u threads", n_threads);
        return NULL;
    }
    /* The pool splits every product itself; OpenBLAS threads inside the
     * tasks would oversubscribe the cores and make results depend on the
     * thread count. */
    openblas_set_num_threads(1);
    return c;
}

unsigned curate_model_ctx_threads(const curate_model_ctx *c)
{
    return curate_pool_threads(c->pool);
}

const curate_model *curate_model_ctx_model(const curate_model_ctx *c) { return c->m; }
size_t curate_model_ctx_max_tokens(const curate_model_ctx *c) { return c->max_tokens; }

void curate_model_ctx_set_observer(curate_model_ctx *c, curate_linear_observer fn, void *user)
{
    c->obs = fn;
    c->obs_user = user;
}

void curate_model_ctx_set_input_hook(curate_model_ctx *c, curate_linear_hook fn, void *user)
{
    c->hook = fn;
    c->hook_user = user;
}

curate_pool *curate_model_ctx_pool(curate_model_ctx *c) { return c->pool; }

/* The input of a linear layer is ready: the hook may change it, then the
 * observer sees what the layer will read. */
static void observe(curate_model_ctx *c, uint32_t layer, curate_linear_input which, float *x,
                    size_t rows, size_t cols)
{
    if (c->hook)
        c->hook(c->hook_user, layer, which, x, rows, cols);
    if (c->obs)
        c->obs(c->obs_user, layer, which, x, rows, cols);
}

curate_status curate_model_ctx_forward(curate_model_ctx *c, const int32_t *tokens, size_t n,
                                       size_t first, float *logits, curate_error *err)
{
    if (!c || !tokens || !logits || n == 0 || first >= n)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "forward needs at least one token and first < n");
    if (n > c->max_tokens)
        return curate_error_set(err, CURATE_ERR_RANGE,
                                "%zu tokens do not fit a context of %zu", n, c->max_tokens);
    const curate_model *m = c->m;
    curate_status st = curate_model_check_tokens(m, tokens, n, err);
    if (st)
        return st;
    const curate_model_params *p = &m->p;
    const curate_model_weights *w = &m->w;
    curate_model_dims d = curate_model_dims_of(p);
    const size_t ld_qkv = d.q + 2 * d.kv;

    for (size_t t = 0; t < n; t++)
        memcpy(c->x + t * d.d, w->tok_embd + (size_t)tokens[t] * d.d, d.d * sizeof(float));

    const size_t n_row_tasks = (n + ROW_TASK - 1) / ROW_TASK;
    for (uint32_t l = 0; l < p->n_layer; l++) {
        const curate_layer_weights *L = &w->layers[l];

        /* attention */
        rmsnorm_rows(c, L->attn_norm, 0, n);
        observe(c, l, CURATE_LIN_ATTN_QKV, c->xn, n, d.d);
        if (L->wk == L->wq + d.q * d.d && L->wv == L->wk + d.kv * d.d) {
            gemm(c, c->xn, d.d, L->wq, c->qkv, ld_qkv, n, ld_qkv, d.d, 0.0f);
        } else {
            gemm(c, c->xn, d.d, L->wq, c->qkv, ld_qkv, n, d.q, d.d, 0.0f);
            gemm(c, c->xn, d.d, L->wk, c->qkv + d.q, ld_qkv, n, d.kv, d.d, 0.0f);
            gemm(c, c->xn, d.d, L->wv, c->qkv + d.q + d.kv, ld_qkv, n, d.kv, d.d, 0.0f);
        }
        rope_job rj = {c, L, n};
        curate_pool_run(c->pool, rope_task, &rj, n_row_tasks);
        att_job aj = {c, n, (n + ATT_ROWS - 1) / ATT_ROWS};
        curate_pool_run(c->pool, att_task, &aj, (size_t)p->n_head * aj.n_row_blocks);
        observe(c, l, CURATE_LIN_ATTN_OUT, c->att, n, d.q);
        gemm(c, c->att, d.q, L->wo, c->x, d.d, n, d.d, d.q, 1.0f);

        /* feed-forward */
        rmsnorm_rows(c, L->ffn_norm, 0, n);
        observe(c, l, CURATE_LIN_FFN_GATE_UP, c->xn, n, d.d);
        if (L->w_up == L->w_gate + d.f * d.d) {
            gemm(c, c->xn, d.d, L->w_gate, c->gu, 2 * d.f, n, 2 * d.f, d.d, 0.0f);
        } else {
            gemm(c, c->xn, d.d, L->w_gate, c->gu, 2 * d.f, n, d.f, d.d, 0.0f);
            gemm(c, c->xn, d.d, L->w_up, c->gu + d.f, 2 * d.f, n, d.f, d.d, 0.0f);
        }
        swiglu_job sj = {c, n};
        curate_pool_run(c->pool, swiglu_task, &sj, n_row_tasks);
        observe(c, l, CURATE_LIN_FFN_DOWN, c->hh, n, d.f);
        gemm(c, c->hh, d.f, L->w_down, c->x, d.d, n, d.d, d.f, 1.0f);
    }

    /* output: only the rows the caller asked for */
    const size_t rows = n - first;
    rmsnorm_rows(c, w->output_norm, first, rows);
    observe(c, p->n_layer, CURATE_LIN_OUTPUT, c->xn + first * d.d, rows, d.d);
    gemm(c, c->xn + first * d.d, d.d, w->output, logits, d.V, rows, d.V, d.d, 0.0f);
    return CURATE_OK;
}

/* ---- negative log-likelihood ------------------------------------------------------- */

typedef struct nll_job {
    const float *logits;
    size_t V, n_rows;
    const int32_t *targets;
    double *nll;
    int32_t *top1;
} nll_job;

#define NLL_ROWS 4

static void nll_task(void *arg, size_t task, unsigned thread)
{
    (void)thread;
    const nll_job *j = arg;
    size_t r0 = task * NLL_ROWS, r1 = r0 + NLL_ROWS < j->n_rows ? r0 + NLL_ROWS : j->n_rows;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->logits + r * j->V;
        const float mx = curate_vec_max(x, j->V);
        const double sum = curate_vec_sum_exp(x, j->V, mx);
        j->nll[r] = -((double)(x[j->targets[r]] - mx) - log(sum));
        if (j->top1) {
            size_t arg_max = 0;
            while (x[arg_max] != mx)
                arg_max++;
            j->top1[r] = (int32_t)arg_max;
        }
    }
}

curate_status curate_model_ctx_nll(curate_model_ctx *c, const float *logits, size_t n_rows,
                                   const int32_t *targets, double *nll, int32_t *top1,
                                   curate_error *err)
{
    if (!c || (n_rows && (!logits || !targets || !nll)))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to nll");
    size_t V = c->m->p.n_vocab;
    for (size_t r = 0; r < n_rows; r++)
        if (targets[r] < 0 || (size_t)targets[r] >= V)
            return curate_error_set(err, CURATE_ERR_RANGE,
                                    "target %ld of row %zu is outside the vocabulary of %zu",
                                    (long)targets[r], r, V);
    nll_job j = {logits, V, n_rows, targets, nll, top1};
    curate_pool_run(c->pool, nll_task, &j, (n_rows + NLL_ROWS - 1) / NLL_ROWS);
    return CURATE_OK;
}
