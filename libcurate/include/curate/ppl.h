/*
 * curate/ppl.h - perplexity of a model on a text, by default with exactly
 * the method of llama.cpp's llama-perplexity, so the numbers agree with the
 * ones users already know.
 *
 * The llama.cpp method (CURATE_PPL_LLAMACPP):
 *   1. one trailing "\n" of the text is removed (llama-perplexity -f does
 *      this when it reads the file);
 *   2. the whole text is tokenized once, with BOS first when the model's
 *      GGUF says add_bos_token (SentencePiece adds its dummy-prefix space);
 *   3. the token stream is cut into non-overlapping chunks of ctx tokens;
 *      trailing tokens that do not fill a chunk are dropped; fewer than
 *      2 x ctx tokens is an error (CURATE_ERR_INVALID), as in llama.cpp;
 *   4. the first token of every chunk is overwritten with BOS (when the
 *      model adds BOS), and each chunk is run from position 0;
 *   5. in each chunk the positions j = ctx/2 .. ctx-2 are scored, each
 *      predicting token j+1 (255 tokens per chunk at ctx 512): the earlier
 *      half only provides context;
 *   6. PPL = exp(mean NLL) over all scored tokens, where NLL is
 *      -log softmax(logits)[target] (max subtracted, exponentials summed in
 *      double); the error estimate is llama.cpp's:
 *      e = PPL * sqrt((mean(NLL^2) - mean(NLL)^2) / (count - 1)).
 *
 * CURATE_PPL_FULL keeps steps 1-4 but scores every position j = 0 .. ctx-2
 * of each chunk (every token after the chunk's first); it needs at least
 * one full chunk.
 *
 * Thread safety: the functions use the given model context, which belongs
 * to one thread at a time; different contexts may run in parallel.
 */
#ifndef CURATE_PPL_H
#define CURATE_PPL_H

#include <stddef.h>
#include <stdint.h>
#include "curate/model.h"
#include "curate/status.h"
#include "curate/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum curate_ppl_mode {
    CURATE_PPL_LLAMACPP = 0, /* second half of each chunk (llama-perplexity) */
    CURATE_PPL_FULL          /* every position after each chunk's first */
} curate_ppl_mode;

/*
 * Called after every chunk: chunk index, chunks in all, and the chunk's
 * scored rows: logits[n_rows][V] (position first + r predicts targets[r])
 * and their nll[n_rows].  The pointers are valid during the call only.
 * For progress bars and for per-token statistics such as KL divergence.
 */
typedef void (*curate_ppl_chunk_fn)(void *user, size_t chunk, size_t n_chunks,
                                    const float *logits, size_t n_rows, const int32_t *targets,
                                    const double *nll);

typedef struct curate_ppl_opts {
    size_t ctx;              /* chunk length; 0 = 512.  Capped by the model's
                                context_length (the result says what was used) */
    curate_ppl_mode mode;    /* CURATE_PPL_LLAMACPP by default */
    size_t max_chunks;       /* 0 = every chunk */
    int add_bos;             /* -1 = as the model's GGUF says, 0 = no, 1 = yes */
    curate_ppl_chunk_fn on_chunk; /* may be NULL */
    void *user;
} curate_ppl_opts;

/* Defaults: ctx 512, llama.cpp mode, all chunks, BOS as the model says. */
void curate_ppl_opts_init(curate_ppl_opts *o);

typedef struct curate_ppl_result {
    double ppl;             /* exp(mean NLL) */
    double ppl_err;         /* llama.cpp's +/- estimate (0 if count < 2) */
    double nll_mean;        /* mean NLL in nats */
    double nll_std;         /* population standard deviation of the NLL */
    uint64_t n_scored;      /* tokens scored */
    uint64_t n_tokens;      /* tokens in the whole text (BOS included) */
    uint64_t n_chunks;      /* chunks evaluated */
    uint64_t n_evaluated;   /* tokens run through the model (n_chunks * ctx) */
    size_t ctx;             /* chunk length used (after capping) */
    int ctx_capped;         /* 1 if opts.ctx was reduced to the model's limit */
    double top1;            /* share of scored tokens that were the argmax */
    double seconds_tokenize;/* wall time spent tokenizing (0 for _tokens) */
    double seconds_eval;    /* wall time of the forward passes and scoring */
} curate_ppl_result;

/*
 * Perplexity of text[0..len) (UTF-8) under the context's model, tokenized
 * with tok (checked against the model with curate_model_check_tokenizer).
 * The context must hold at least the chunk length (else CURATE_ERR_RANGE).
 * Errors: CURATE_ERR_INVALID (text too short for the mode: the message
 * gives the token count and what is needed), CURATE_ERR_MODEL (tokenizer
 * does not fit the model), CURATE_ERR_TOKENIZER, CURATE_ERR_NOMEM.
 */
curate_status curate_ppl_text(curate_model_ctx *c, const curate_tokenizer *tok, const char *text,
                              size_t len, const curate_ppl_opts *opts, curate_ppl_result *res,
                              curate_error *err);

/*
 * Same on a token stream that is already tokenized (BOS, if wanted, already
 * first).  tokens is not modified (chunks are copied before their first
 * token is replaced by BOS).
 */
curate_status curate_ppl_tokens(curate_model_ctx *c, const int32_t *tokens, size_t n,
                                const curate_ppl_opts *opts, curate_ppl_result *res,
                                curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_PPL_H */
