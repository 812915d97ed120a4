/*
 * curate/model.h - a Llama-family decoder on the CPU: load from GGUF, run a
 * causal forward pass over a chunk of tokens, get logits.
 *
 * What is supported
 *   - GGUF architecture "llama" (Llama 1/2/3, Mistral, TinyLlama, SmolLM,
 *     llama2.c's TinyStories models): token embedding, per block RMSNorm ->
 *     attention with RoPE -> residual, RMSNorm -> SwiGLU FFN -> residual;
 *     final RMSNorm; output matrix, or the token embedding when
 *     output.weight is absent (tied output).
 *   - grouped-query attention (n_head_kv divides n_head; query head h uses
 *     key/value head h / (n_head / n_head_kv), as llama.cpp does).
 *   - RoPE in llama.cpp's NORM mode (adjacent pairs x[2i], x[2i+1] rotated,
 *     the "llama" arch) and its NEOX mode (pairs x[i], x[i + n_rot/2]); the
 *     params also carry optional Q/K/V biases, so qwen2 (NEOX + QKV bias) is
 *     a small addition.  Any other architecture is refused by name
 *     (CURATE_ERR_UNSUPPORTED "unsupported architecture 'NAME'").
 *   - weights stored as F32, F16, BF16 or Q8_0 (whatever curate/gguf.h can
 *     convert) are converted to F32 once, at load.
 *
 * Two forward passes over the same weights:
 *   - curate_model_forward_ref(): the plain scalar reference (naive loops,
 *     double accumulators in dot products), kept for tests;
 *   - curate_model_ctx_forward(): the fast path, every linear layer through
 *     cblas_sgemm (OpenBLAS), attention by row blocks through sgemm, and
 *     the work split over a pool of threads.  It agrees with the reference
 *     within float rounding (see tests/unit/test_model.c for the tolerance)
 *     and gives bit-identical results for any thread count.
 *
 * Layout conventions (all row-major, F32):
 *   - a linear layer with n_in inputs and n_out outputs is a matrix
 *     [n_out][n_in] (GGUF's ne = [n_in, n_out], innermost first); y = W x.
 *   - activations of a chunk of T tokens are [T][dim].
 *   - logits are [rows][n_vocab].
 *
 * Thread safety: a loaded model is read-only during forward passes; any
 * number of curate_model_ctx objects (one per thread) may run forward
 * passes on the same model at once.  Changing weights through
 * curate_model_weights_mut() while a forward pass runs is a data race.
 * One curate_model_ctx belongs to one thread at a time.
 */
#ifndef CURATE_MODEL_H
#define CURATE_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"
#include "curate/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Hyper-parameters and weights                                             */
/* ------------------------------------------------------------------------ */

/* How RoPE pairs the dimensions of a head (numbered as llama.cpp's modes). */
typedef enum curate_rope_mode {
    CURATE_ROPE_NORM = 0,  /* (x[2i], x[2i+1]): llama, Meta's original layout */
    CURATE_ROPE_NEOX = 2   /* (x[i], x[i + n_rot/2]): "rotate half", qwen2, neox */
} curate_rope_mode;

typedef struct curate_model_params {
    char arch[32];            /* "llama" */
    uint32_t n_vocab;         /* vocabulary size V */
    uint32_t n_ctx_train;     /* llama.context_length: longest trained context */
    uint32_t n_embd;          /* model width d */
    uint32_t n_layer;         /* blocks */
    uint32_t n_ff;            /* FFN hidden width f */
    uint32_t n_head;          /* query heads */
    uint32_t n_head_kv;       /* key/value heads (divides n_head) */
    uint32_t head_dim;        /* n_embd / n_head */
    uint32_t n_rot;           /* rotated dims per head (<= head_dim, even) */
    float rope_freq_base;     /* theta base, 10000 for Llama 2 */
    float norm_eps;           /* RMSNorm epsilon */
    curate_rope_mode rope_mode;
    int qkv_bias;             /* 1: attention Q/K/V have bias vectors */
    int tied_output;          /* 1: the output matrix is the token embedding */
    /* from the GGUF tokenizer keys (defaults when absent) */
    int add_bos;              /* tokenizer.ggml.add_bos_token (default 1) */
    int32_t bos_id;           /* tokenizer.ggml.bos_token_id, -1 if absent */
    int32_t eos_id;           /* tokenizer.ggml.eos_token_id, -1 if absent */
} curate_model_params;

/* One block's weights (shapes with q = n_head*head_dim, kv = n_head_kv*head_dim). */
typedef struct curate_layer_weights {
    float *attn_norm;   /* [d] */
    float *wq;          /* [q][d] */
    float *wk;          /* [kv][d] */
    float *wv;          /* [kv][d] */
    float *bq, *bk, *bv;/* [q], [kv], [kv] when params.qkv_bias, else NULL */
    float *wo;          /* [d][q] */
    float *ffn_norm;    /* [d] */
    float *w_gate;      /* [f][d]  (ffn_gate, "w1") */
    float *w_up;        /* [f][d]  (ffn_up,   "w3") */
    float *w_down;      /* [d][f]  (ffn_down, "w2") */
} curate_layer_weights;

typedef struct curate_model_weights {
    float *tok_embd;              /* [V][d] */
    curate_layer_weights *layers; /* [n_layer] */
    float *output_norm;           /* [d] */
    float *output;                /* [V][d]; equals tok_embd when tied */
} curate_model_weights;

typedef struct curate_model curate_model;

/* ------------------------------------------------------------------------ */
/* Creating and loading                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Check params for consistency: known architecture, nonzero sizes,
 * n_embd == n_head * head_dim, n_head_kv divides n_head, n_rot even and
 * <= head_dim, positive finite eps and base, bos/eos inside the vocabulary
 * (or -1), and every tensor size representable.  CURATE_ERR_MODEL with the
 * reason otherwise (CURATE_ERR_UNSUPPORTED for an unknown arch).
 */
curate_status curate_model_params_check(const curate_model_params *p, curate_error *err);

/*
 * A model with the given params and zeroed weights, for callers that build
 * weights in memory (tests, converters).  Fill them through
 * curate_model_weights_mut().  NULL + err on invalid params or no memory.
 */
curate_model *curate_model_new(const curate_model_params *p, curate_error *err);

/*
 * Load a GGUF model file.  Reads the llama.* hyper-parameters (vocab size
 * from llama.vocab_size, else the length of tokenizer.ggml.tokens, else
 * token_embd's shape; all three must agree when present), checks every
 * tensor's shape, and converts all weights to F32.  The file is closed
 * before returning; the model owns its F32 copy.
 *
 * Errors (err->file set to path): CURATE_ERR_IO, CURATE_ERR_FORMAT
 * (corrupt GGUF, missing key or tensor, wrong shape),
 * CURATE_ERR_UNSUPPORTED (other architecture, weight type that cannot be
 * converted), CURATE_ERR_MODEL (inconsistent hyper-parameters),
 * CURATE_ERR_NOMEM.
 */
curate_model *curate_model_load(const char *path, curate_error *err);

/* Free the model; accepts NULL.  Contexts using it must be freed first. */
void curate_model_free(curate_model *m);

const curate_model_params *curate_model_get_params(const curate_model *m);
const curate_model_weights *curate_model_weights_get(const curate_model *m);
/* Mutable weights (for fake-quantizing in place); see thread safety above. */
curate_model_weights *curate_model_weights_mut(curate_model *m);

/* Number of parameters (tied output counted once). */
uint64_t curate_model_n_params(const curate_model *m);

/*
 * Check that tok can drive this model: the vocabulary sizes must be equal
 * (CURATE_ERR_MODEL "tokenizer has X tokens but the model's vocabulary has
 * Y"), and when the GGUF names a BOS/EOS id it must equal the tokenizer's.
 */
curate_status curate_model_check_tokenizer(const curate_model *m, const curate_tokenizer *tok,
                                           curate_error *err);

/* ------------------------------------------------------------------------ */
/* The scalar reference forward pass                                        */
/* ------------------------------------------------------------------------ */

/*
 * Run tokens[0..n) at positions 0..n-1 through the model and write the
 * logits of positions first..n-1 to logits ([n - first][V]).  Plain loops,
 * one thread, dot products accumulated in double: slow, simple, the
 * reference the fast path is tested against.  Allocates its own scratch.
 * CURATE_ERR_INVALID for n == 0 or first >= n, CURATE_ERR_RANGE for a
 * token id outside the vocabulary, CURATE_ERR_NOMEM.
 */
curate_status curate_model_forward_ref(const curate_model *m, const int32_t *tokens, size_t n,
                                       size_t first, float *logits, curate_error *err);


/* ------------------------------------------------------------------------ */
/* The fast forward pass                                                    */
/* ------------------------------------------------------------------------ */

/*
 * The inputs of the linear layers, as seen by an observer (one call per
 * distinct input: Q, K and V share theirs, so do gate and up).
 */
typedef enum curate_linear_input {
    CURATE_LIN_ATTN_QKV = 0, /* normed x feeding wq, wk, wv: [T][d] */
    CURATE_LIN_ATTN_OUT,     /* attention output feeding wo: [T][q] */
    CURATE_LIN_FFN_GATE_UP,  /* normed x feeding w_gate, w_up: [T][d] */
    CURATE_LIN_FFN_DOWN,     /* silu(gate) * up feeding w_down: [T][f] */
    CURATE_LIN_OUTPUT        /* final normed x feeding the output matrix: [T][d] */
} curate_linear_input;

/*
 * Called from the thread that runs curate_model_ctx_forward() (never from
 * a pool thread), in layer order, with the input rows x[n_rows][n_cols]
 * (n_rows = the chunk's token count, except for CURATE_LIN_OUTPUT where
 * only the rows from `first` on are computed and passed).  layer is the
 * block index (n_layer for CURATE_LIN_OUTPUT).  x is only valid during the
 * call.  For calibration statistics (#5).
 */
typedef void (*curate_linear_observer)(void *user, uint32_t layer, curate_linear_input which,
                                       const float *x, size_t n_rows, size_t n_cols);

/*
 * A hook that may change the input rows x[n_rows][n_cols] in place before
 * the linear layers read them (simulated activation quantization, W8A8).
 * Same inputs, order and thread as the observer; the hook runs first, so an
 * observer sees what the layers actually multiply.  For CURATE_LIN_ATTN_QKV
 * and CURATE_LIN_FFN_GATE_UP one call covers every weight reading that
 * input (Q, K and V; gate and up).  x is only valid during the call.
 */
typedef void (*curate_linear_hook)(void *user, uint32_t layer, curate_linear_input which,
                                   float *x, size_t n_rows, size_t n_cols);

/*
 * The reference pass with an input hook: the hook is called on every
 * linear-layer input right before the layer reads it, one token at a time
 * (n_rows == 1, in position order), and for the output matrix only on
 * positions first..n-1.  A hook that treats each row on its own (a static
 * scale, or one scale per row) therefore gives the fast pass's result up
 * to float rounding.  hook == NULL is curate_model_forward_ref().
 */
curate_status curate_model_forward_ref_hooked(const curate_model *m, const int32_t *tokens,
                                              size_t n, size_t first, float *logits,
                                              curate_linear_hook hook, void *user,
                                              curate_error *err);

typedef struct curate_model_ctx curate_model_ctx;

/*
 * Scratch for forward passes of up to max_tokens tokens on m, with
 * n_threads threads (0 = one per online CPU).  The threads are created
 * here and sleep between parallel steps (they never spin).  OpenBLAS is
 * switched to one thread per call (openblas_set_num_threads(1), a
 * process-wide setting) because this pool splits each product between
 * its threads itself; that is what makes results independent of the
 * thread count.  NULL + err on failure (CURATE_ERR_INVALID for
 * max_tokens 0, CURATE_ERR_NOMEM, CURATE_ERR_INTERNAL if a thread cannot
 * be started).  m must outlive the context.
 */
curate_model_ctx *curate_model_ctx_init(const curate_model *m, size_t max_tokens,
                                        unsigned n_threads, curate_error *err);

/* Stop the threads and free the scratch; accepts NULL. */
void curate_model_ctx_free(curate_model_ctx *c);

/* Threads in use (including the caller's). */
unsigned curate_model_ctx_threads(const curate_model_ctx *c);

/* The model and the longest chunk this context was made for. */
const curate_model *curate_model_ctx_model(const curate_model_ctx *c);
size_t curate_model_ctx_max_tokens(const curate_model_ctx *c);

/* Install (or with fn == NULL remove) an observer of linear-layer inputs. */
void curate_model_ctx_set_observer(curate_model_ctx *c, curate_linear_observer fn, void *user);

/* Install (or with fn == NULL remove) a mutating hook on linear-layer
 * inputs (see curate_linear_hook).  Independent of the observer. */
void curate_model_ctx_set_input_hook(curate_model_ctx *c, curate_linear_hook fn, void *user);

/*
 * The fast forward pass: same contract as curate_model_forward_ref (tokens
 * at positions 0..n-1, logits of positions first..n-1 into
 * logits[n - first][V]), with n <= max_tokens (else CURATE_ERR_RANGE).
 * Rows before first skip the output matrix, which saves time when only
 * later positions are scored.
 */
curate_status curate_model_ctx_forward(curate_model_ctx *c, const int32_t *tokens, size_t n,
                                       size_t first, float *logits, curate_error *err);

/*
 * Negative log-likelihood of targets under rows of logits:
 * nll[i] = -log softmax(logits[i])[targets[i]] for i < n_rows, with the
 * max subtracted before exp and the sum of exponentials in double (as
 * llama-perplexity does).  Rows are split over the context's threads.
 * CURATE_ERR_RANGE for a target outside the vocabulary.  If top1 is not
 * NULL, top1[i] receives the argmax of row i (first on ties).
 */
curate_status curate_model_ctx_nll(curate_model_ctx *c, const float *logits, size_t n_rows,
                                   const int32_t *targets, double *nll, int32_t *top1,
                                   curate_error *err);

/* Number of online CPUs (at least 1); the default thread count. */
unsigned curate_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_MODEL_H */
