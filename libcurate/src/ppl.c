/*
 * ppl.c - perplexity over chunks, llama-perplexity's protocol (see
 * curate/ppl.h for the steps and why each is there).
 */
#include "curate/ppl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void curate_ppl_opts_init(curate_ppl_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ctx = 512;
    o->mode = CURATE_PPL_LLAMACPP;
    o->add_bos = -1;
}

static curate_status run_chunks(curate_model_ctx *c, const int32_t *tokens, size_t n,
                                int32_t bos, int add_bos, const curate_ppl_opts *opts,
                                curate_ppl_result *res, curate_error *err)
{
    const curate_model *m = curate_model_ctx_model(c);
    const curate_model_params *p = curate_model_get_params(m);
    curate_ppl_opts def;
    if (!opts) {
        curate_ppl_opts_init(&def);
        opts = &def;
    }
    memset(res, 0, sizeof *res);
    /* llama-perplexity only warns when -c exceeds the trained context; a
     * model run past it gives meaningless numbers, so it is capped here and
     * the result says so. */
    size_t ctx = opts->ctx ? opts->ctx : 512;
    if (p->n_ctx_train && ctx > p->n_ctx_train) {
        ctx = p->n_ctx_train;
        res->ctx_capped = 1;
    }
    if (ctx < 2)
        return curate_error_set(err, CURATE_ERR_INVALID, "context of %zu tokens is too short",
                                ctx);
    if (ctx > curate_model_ctx_max_tokens(c))
        return curate_error_set(err, CURATE_ERR_RANGE,
                                "chunks of %zu tokens do not fit a model context of %zu", ctx,
                                curate_model_ctx_max_tokens(c));
    res->ctx = ctx;
    res->n_tokens = n;
    const int full = opts->mode == CURATE_PPL_FULL;
    if (!full && n < 2 * ctx)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "%zu tokens are too few: perplexity with a context of %zu needs "
                                "at least %zu",
                                n, ctx, 2 * ctx);
    if (full && n < ctx)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "%zu tokens are too few: one chunk needs %zu", n, ctx);
    /* like llama-perplexity: whole chunks only, the tail is dropped */
    size_t n_chunks = n / ctx;
    if (opts->max_chunks && n_chunks > opts->max_chunks)
        n_chunks = opts->max_chunks;
    /* the first scored position and the number of scored rows per chunk */
    const size_t first = full ? 0 : ctx / 2;
    const size_t rows = ctx - 1 - first;
    if (rows == 0)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "a context of %zu scores no tokens", ctx);
    const size_t V = p->n_vocab;

    int32_t *chunk = malloc(ctx * sizeof *chunk);
    float *logits = (rows <= SIZE_MAX / sizeof(float) / V) ? malloc(rows * V * sizeof(float))
                                                           : NULL;
    double *nll = malloc(rows * sizeof *nll);
    int32_t *top1 = malloc(rows * sizeof *top1);
    curate_status st = CURATE_OK;
    if (!chunk || !logits || !nll || !top1) {
        st = curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for %zu rows of logits",
                              rows);
        goto out;
    }
    /* running sums of NLL and NLL^2 in double, as llama.cpp keeps them; the
     * error estimate below is its formula */
    double sum = 0.0, sum2 = 0.0;
    uint64_t count = 0, hits = 0;
    const double t0 = now_seconds();
    for (size_t k = 0; k < n_chunks; k++) {
        /* a copy, so the caller's stream keeps its tokens when the chunk's
         * first one is replaced by BOS */
        memcpy(chunk, tokens + k * ctx, ctx * sizeof *chunk);
        if (add_bos)
            chunk[0] = bos;
        /* The last position predicts nothing inside the chunk and, the
         * attention being causal, cannot change earlier logits: ctx - 1
         * tokens are enough.  Rows before `first` skip the output product. */
        st = curate_model_ctx_forward(c, chunk, ctx - 1, first, logits, err);
        if (st)
            goto out;
        st = curate_model_ctx_nll(c, logits, rows, chunk + first + 1, nll, top1, err);
        if (st)
            goto out;
        for (size_t r = 0; r < rows; r++) {
            sum += nll[r];
            sum2 += nll[r] * nll[r];
            hits += top1[r] == chunk[first + 1 + r];
        }
        count += rows;
        res->n_chunks = k + 1;
        res->n_evaluated += ctx;
        if (opts->on_chunk)
            opts->on_chunk(opts->user, k, n_chunks, logits, rows, chunk + first + 1, nll);
    }
    res->seconds_eval = now_seconds() - t0;
    res->n_scored = count;
    /* var / (count - 1) is the variance of the mean; times PPL it is the
     * first-order error of exp(mean), which is what llama.cpp prints */
    double mean = sum / (double)count;
    double var = sum2 / (double)count - mean * mean;
    res->nll_mean = mean;
    res->nll_std = var > 0 ? sqrt(var) : 0.0;
    res->ppl = exp(mean);
    res->ppl_err = (var > 0 && count > 1) ? sqrt(var / (double)(count - 1)) * res->ppl : 0.0;
    res->top1 = (double)hits / (double)count;
out:
    free(chunk);
    free(logits);
    free(nll);
    free(top1);
    return st;
}

curate_status curate_ppl_tokens(curate_model_ctx *c, const int32_t *tokens, size_t n,
                                const curate_ppl_opts *opts, curate_ppl_result *res,
                                curate_error *err)
{
    if (!c || !res || (!tokens && n))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to perplexity");
    const curate_model_params *p = curate_model_get_params(curate_model_ctx_model(c));
    int add_bos = (opts && opts->add_bos >= 0) ? opts->add_bos : p->add_bos;
    if (add_bos && p->bos_id < 0)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "the model names no BOS token (tokenizer.ggml.bos_token_id)");
    return run_chunks(c, tokens, n, p->bos_id, add_bos, opts, res, err);
}

curate_status curate_ppl_text(curate_model_ctx *c, const curate_tokenizer *tok, const char *text,
                              size_t len, const curate_ppl_opts *opts, curate_ppl_result *res,
                              curate_error *err)
{
    if (!c || !tok || !res || (!text && len))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to perplexity");
    const curate_model *m = curate_model_ctx_model(c);
    curate_status st = curate_model_check_tokenizer(m, tok, err);
    if (st)
        return st;
    const curate_model_params *p = curate_model_get_params(m);
    int add_bos = (opts && opts->add_bos >= 0) ? opts->add_bos : p->add_bos;
    /* the tokenizer's BOS (check_tokenizer made sure it is the GGUF's when
     * the GGUF names one) */
    int32_t bos = curate_tokenizer_bos(tok);
    if (add_bos && bos < 0)
        return curate_error_set(err, CURATE_ERR_TOKENIZER, "the tokenizer has no BOS token");
    /* llama-perplexity -f drops one trailing newline */
    if (len && text[len - 1] == '\n')
        len--;
    curate_tokens toks;
    curate_tokens_init(&toks);
    const double t0 = now_seconds();
    st = curate_tokenizer_encode(tok, text, len, add_bos ? CURATE_TOK_ADD_BOS : 0, &toks, err);
    const double t1 = now_seconds();
    if (st == CURATE_OK)
        st = run_chunks(c, toks.ids, toks.n, bos, add_bos, opts, res, err);
    res->seconds_tokenize = t1 - t0;
    curate_tokens_release(&toks);
    return st;
}
