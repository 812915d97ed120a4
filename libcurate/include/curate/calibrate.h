/*
 * curate/calibrate.h - the model stage's orchestration: pack a tokenized
 * calibration set into sequences, run the original model over them with
 * observers on every linear layer, quantize a copy of the model with those
 * statistics, simulate activation quantization, and compare the original
 * and the quantized model on the same evaluation tokens.
 *
 * The pieces, in the order a calibration run uses them:
 *
 *   curate_seqs                 token sequences (calibration chunks or
 *                               samples, evaluation chunks), each with the
 *                               first position whose prediction is scored
 *   curate_calib_pack()         records -> sequences (--pack concat|sample),
 *                               with an exact account of what was used,
 *                               cut and dropped
 *   curate_calib_eval_seqs()    an evaluation token stream -> llama.cpp's
 *                               perplexity chunks
 *   curate_calib_obs            one observer per linear-layer input
 *   curate_calib_collect()      original model over the calibration
 *                               sequences, filling the observers
 *   curate_calib_quantize()     every selected weight matrix of the
 *                               original, quantized into a copy
 *   curate_calib_act            static or per-token activation rounding,
 *                               installed on a model context as its input
 *                               hook
 *   curate_calib_compare()      original vs one or more quantized contexts,
 *                               chunk by chunk on the same tokens: PPL of
 *                               each, KL(original || quantized) mean and
 *                               p99, top-1 agreement
 *
 * Each step is a function over explicit inputs so that studies are loops:
 * a calibration matrix (one calibration per domain) is collect + quantize
 * per domain and one compare with several quantized contexts; repeats on
 * seeded sub-samples pick records with curate_calib_pick() and pack again.
 *
 * Tensor names are GGUF's (llama.cpp's): token_embd.weight,
 * blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight,
 * output.weight.
 *
 * Thread safety: the objects here belong to one thread at a time.  The
 * functions that run a model use the given contexts' thread pools;
 * curate_calib_quantize() runs its own worker threads.  Nothing keeps
 * global state.
 */
#ifndef CURATE_CALIBRATE_H
#define CURATE_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>
#include "curate/actquant.h"
#include "curate/imatrix.h"
#include "curate/model.h"
#include "curate/observe.h"
#include "curate/ppl.h"
#include "curate/quant.h"
#include "curate/rng.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* SHA-256 (the calibration set's provenance)                               */
/* ------------------------------------------------------------------------ */

/*
 * FIPS 180-4 SHA-256, for the report's fingerprint of the calibration
 * input (the hash users can check with sha256sum).  Embed the struct,
 * _init, _update any number of times, _final.  Never fails.
 */
typedef struct curate_sha256 {
    uint32_t h[8];      /* chaining state */
    uint64_t n_bytes;   /* message length so far */
    uint8_t buf[64];    /* partial block */
    size_t n_buf;       /* bytes in buf */
} curate_sha256;

void curate_sha256_init(curate_sha256 *s);
void curate_sha256_update(curate_sha256 *s, const void *data, size_t len);
/* The digest of everything added; s must be initialised again to reuse. */
void curate_sha256_final(curate_sha256 *s, uint8_t digest[32]);
/* 64 lowercase hex digits and a NUL into out; returns out. */
char *curate_sha256_hex(const uint8_t digest[32], char out[65]);
/* The hex digest of a whole file.  CURATE_ERR_IO (err->file = path). */
curate_status curate_sha256_file(const char *path, char hex[65], curate_error *err);

/* ------------------------------------------------------------------------ */
/* Token sequences                                                          */
/* ------------------------------------------------------------------------ */

/*
 * A list of token sequences stored back to back.  Sequence i is
 * ids[start[i] .. start[i + 1]); positions first[i] .. len - 2 are scored,
 * each predicting the next token (so len - 1 - first[i] rows; 0 for
 * calibration sequences, which are only run).  tag[i] is the caller's
 * label: the record a sample came from, a chunk index.
 *
 * Embed, curate_seqs_init() once, curate_seqs_release() at the end.
 */
typedef struct curate_seqs {
    int32_t *ids;      /* [start[n]] tokens */
    size_t *start;     /* [n + 1] */
    size_t *first;     /* [n] first scored position */
    uint64_t *tag;     /* [n] */
    size_t n;          /* sequences */
    size_t max_len;    /* longest sequence */
    /* private */
    size_t cap_ids, cap;
} curate_seqs;

void curate_seqs_init(curate_seqs *s);
void curate_seqs_release(curate_seqs *s); /* frees; s is re-initialised */
void curate_seqs_reset(curate_seqs *s);   /* n = 0, memory kept */

/*
 * Append a sequence of len tokens (copied), scored from position first
 * (first = len - 1 scores nothing: the last position predicts no token of
 * the sequence).  CURATE_ERR_INVALID for len 0, first >= len or ids NULL;
 * CURATE_ERR_NOMEM; CURATE_ERR_RANGE on size overflow.
 */
curate_status curate_seqs_add(curate_seqs *s, const int32_t *ids, size_t len, size_t first,
                              uint64_t tag, curate_error *err);

/* Length of sequence i. */
static inline size_t curate_seqs_len(const curate_seqs *s, size_t i)
{
    return s->start[i + 1] - s->start[i];
}

/* Tokens over all sequences, and scored rows (sum of len - 1 - first). */
uint64_t curate_seqs_tokens(const curate_seqs *s);
uint64_t curate_seqs_scored(const curate_seqs *s);

/* ------------------------------------------------------------------------ */
/* Packing a calibration set                                                */
/* ------------------------------------------------------------------------ */

/*
 * How records become model inputs.
 *
 *   concat  llama.cpp imatrix's way: one stream, BOS (when bos >= 0) then
 *           every record's tokens in order; cut into chunks of ctx tokens;
 *           the first token of every chunk is BOS (for the first chunk the
 *           stream's own; for the others a record token is overwritten and
 *           counted as truncated); the tail after the last whole chunk is
 *           dropped.  Fewer than ctx stream tokens is an error.
 *   sample  one sequence per record: BOS (when bos >= 0) then the record's
 *           tokens, truncated so the sequence has at most ctx tokens.  An
 *           empty record is dropped.  No record left is an error.
 *
 * Accounting (record tokens never include BOS):
 *   tokens = tokens_used + tokens_truncated + tokens_dropped
 *   records = records_used + records_dropped,  records_truncated <= used
 * A record is used when any of its tokens reaches the model, dropped when
 * none does, truncated when used but some of its tokens do not.
 */
typedef enum curate_calib_pack {
    CURATE_CALIB_PACK_CONCAT = 0,
    CURATE_CALIB_PACK_SAMPLE
} curate_calib_pack;

/* "concat", "sample" ("?" otherwise); parse the same names. */
const char *curate_calib_pack_name(curate_calib_pack p);
curate_status curate_calib_pack_parse(const char *name, curate_calib_pack *out,
                                      curate_error *err);

typedef struct curate_calib_pack_stats {
    uint64_t records;           /* records offered */
    uint64_t records_used, records_truncated, records_dropped;
    uint64_t records_empty;     /* records without tokens (part of dropped) */
    uint64_t tokens;            /* record tokens offered */
    uint64_t tokens_used, tokens_truncated, tokens_dropped;
    uint64_t sequences;         /* chunks or samples made */
    uint64_t bos;               /* BOS tokens in the sequences */
    uint64_t model_tokens;      /* tokens run through the model: used + bos */
} curate_calib_pack_stats;

/*
 * Pack records into out (appended; tags are chunk indices for concat,
 * record indices for sample).  records holds one tokenized record per
 * sequence (no BOS; empty records are not representable in curate_seqs,
 * so their count is passed as n_empty and they are counted as dropped).
 * pick (may be NULL = every record, in order) lists the record indices to
 * use, in the order to use them.  ctx >= 2.
 * Errors: CURATE_ERR_INVALID (ctx < 2, a pick index out of range, a set
 * too small for one chunk / sample: the message gives the counts),
 * CURATE_ERR_NOMEM.  st is filled on success.
 */
curate_status curate_calib_pack_records(const curate_seqs *records, uint64_t n_empty,
                                        const size_t *pick, size_t n_pick,
                                        curate_calib_pack mode, size_t ctx, int32_t bos,
                                        curate_seqs *out, curate_calib_pack_stats *st,
                                        curate_error *err);

/*
 * k distinct record indices out of n, chosen uniformly with rng (a partial
 * Fisher-Yates shuffle), returned sorted ascending so the records keep
 * their file order.  k > n is clamped to n.  out has room for k.
 */
void curate_calib_pick(curate_rng *rng, size_t n, size_t k, size_t *out);

/* ------------------------------------------------------------------------ */
/* Evaluation chunks                                                        */
/* ------------------------------------------------------------------------ */

/*
 * The chunks curate/ppl.h evaluates, as sequences: the stream (already
 * tokenized, BOS first if wanted) is cut into n / ctx chunks of ctx tokens
 * (at most max_chunks, 0 = all), the first token of each replaced by bos
 * when bos >= 0; scored from ctx / 2 (CURATE_PPL_LLAMACPP) or from 0
 * (CURATE_PPL_FULL).  The same minimum lengths and messages as
 * curate_ppl_tokens ("N tokens are too few: perplexity with a context of
 * C needs at least 2C"), CURATE_ERR_INVALID.  Tags are chunk indices.
 */
curate_status curate_calib_eval_seqs(const int32_t *stream, size_t n, size_t ctx,
                                     curate_ppl_mode mode, int32_t bos, size_t max_chunks,
                                     curate_seqs *out, curate_error *err);

/* ------------------------------------------------------------------------ */
/* Tensors and their selection                                              */
/* ------------------------------------------------------------------------ */

/* One weight matrix of the model, as the quantizer sees it. */
typedef struct curate_calib_tensor {
    char name[48];              /* GGUF name, "blk.3.ffn_down.weight" */
    uint32_t layer;             /* block; n_layer for token_embd and output */
    curate_linear_input input;  /* the observed input that feeds it */
    int has_input;              /* 0: no activations feed it (an untied
                                   token_embd is a lookup table) */
    size_t rows, cols;          /* [rows][cols], cols = the input dimension */
} curate_calib_tensor;

/*
 * Every weight matrix of m, in GGUF order (token_embd, then per block
 * attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down, then
 * output unless tied).  A tied embedding is listed once, as
 * token_embd.weight with the output's input (it is also the output
 * matrix).  Writes at most cap entries and returns how many there are.
 */
size_t curate_calib_tensors(const curate_model *m, curate_calib_tensor *out, size_t cap);

/* The weights of t in m, [rows][cols]. */
float *curate_calib_tensor_data(curate_model *m, const curate_calib_tensor *t);
const float *curate_calib_tensor_cdata(const curate_model *m, const curate_calib_tensor *t);

/*
 * Which matrices are quantized, by fnmatch(3) patterns on the names.
 * Without include patterns the default set is every blk.* matrix (the
 * token embedding and the output matrix stay as they are); with include
 * patterns exactly the matching tensors are candidates (e.g. "*" for all,
 * "output.weight" alone).  An exclude pattern removes a candidate (layer
 * fallback: "*ffn_down*" keeps every ffn_down in full precision).  The
 * pattern arrays are borrowed.
 */
typedef struct curate_calib_select {
    const char *const *include;
    size_t n_include;
    const char *const *exclude;
    size_t n_exclude;
} curate_calib_select;

/*
 * 1 if name is quantized under sel (NULL = the default set), else 0 with
 * *why (may be NULL) pointing at the reason: the exclude pattern that
 * matched, or NULL when the name is simply not a candidate.
 */
int curate_calib_selected(const curate_calib_select *sel, const char *name, const char **why);

/* ------------------------------------------------------------------------ */
/* Observers over a model                                                   */
/* ------------------------------------------------------------------------ */

/*
 * One curate_observer per linear-layer input: 4 per block (Q/K/V share
 * one input, gate/up another) plus, when asked, the output matrix's input.
 */
typedef struct curate_calib_obs curate_calib_obs;

/*
 * Observers for m keeping `what` (CURATE_OBSERVE_* bits) on every block
 * input, and on the output matrix's input when with_output.  hist_bins 0 =
 * the default.  NULL + err (CURATE_ERR_INVALID, CURATE_ERR_NOMEM).
 * Memory: the Hessian bit costs cols^2 * 12 bytes per input.
 */
curate_calib_obs *curate_calib_obs_new(const curate_model *m, unsigned what, int with_output,
                                       size_t hist_bins, curate_error *err);
void curate_calib_obs_free(curate_calib_obs *o); /* accepts NULL */

/* The observer of (layer, which); NULL when not observed (the output's
 * input without with_output; layer out of range). */
const curate_observer *curate_calib_obs_get(const curate_calib_obs *o, uint32_t layer,
                                            curate_linear_input which);

/* Sequences and tokens run through curate_calib_collect() so far. */
uint64_t curate_calib_obs_sequences(const curate_calib_obs *o);
uint64_t curate_calib_obs_tokens(const curate_calib_obs *o);

/*
 * Progress of a long step: stage ("calibrate", "quantize", "evaluate"),
 * units done and in all.  Called on the caller's thread.
 */
typedef void (*curate_calib_progress_fn)(void *user, const char *stage, uint64_t done,
                                         uint64_t total);

/*
 * Run every sequence of seqs through c's model (the original) and add the
 * inputs of every linear layer to o's observers.  c's observer slot is
 * used during the call and cleared afterwards.  Errors: those of the
 * forward pass (a sequence longer than the context: CURATE_ERR_RANGE), a
 * non-finite activation (CURATE_ERR_RANGE from the observer, naming the
 * layer), CURATE_ERR_INVALID when o was made for another shape.
 */
curate_status curate_calib_collect(curate_model_ctx *c, const curate_seqs *seqs,
                                   curate_calib_obs *o, curate_calib_progress_fn progress,
                                   void *user, curate_error *err);

/*
 * Add every blk.* entry of o to an importance matrix (see curate/imatrix.h;
 * the observers must keep CURATE_OBSERVE_SUMSQ).
 */
curate_status curate_calib_obs_imatrix(const curate_calib_obs *o, curate_imatrix *im,
                                       curate_error *err);

/* ------------------------------------------------------------------------ */
/* Weight quantization of a whole model                                     */
/* ------------------------------------------------------------------------ */

/* The result for one tensor. */
typedef struct curate_calib_qtensor {
    curate_calib_tensor info;
    int quantized;              /* 0: kept as it was (not selected) */
    const char *excluded_by;    /* the exclude pattern, or NULL */
    curate_quant_method method; /* the method actually used (see fallback) */
    int fallback;               /* 1: the configured method needs activations
                                   this tensor has none of (untied
                                   token_embd): mse was used */
    curate_quant_report rep;
    double weight_rel;          /* sqrt(sum dW^2 / sum W^2) */
    double out_err;             /* tr(dW H dW^T), H = X^T X / n, when the
                                   observer keeps the Hessian; else NaN */
    double out_rel;             /* out_err / tr(W H W^T); NaN likewise */
    double seconds;
    /* q points into the destination model's weights; scales, mins and
     * codes are allocated only with keep_codes (for an export) */
    curate_quant_out out;
} curate_calib_qtensor;

typedef struct curate_calib_quant_result {
    curate_calib_qtensor *t;    /* [n], in curate_calib_tensors() order */
    size_t n;
    size_t n_quantized;
    size_t n_short_group;       /* quantized tensors whose rows end in a shorter group */
    double seconds;
} curate_calib_quant_result;

/* Free the arrays and zero the struct; accepts NULL. */
void curate_calib_quant_result_release(curate_calib_quant_result *r);

typedef struct curate_calib_quant_opts {
    curate_quant_config cfg;    /* method, bits, groups, ... (curate/quant.h) */
    curate_calib_select sel;    /* which tensors */
    int keep_codes;             /* 1: keep codes, scales and mins (export) */
    unsigned n_threads;         /* tensors quantized at once; 0 = one per CPU */
    curate_calib_progress_fn progress; /* stage "quantize", tensors done */
    void *user;
} curate_calib_quant_opts;

/* cfg = curate_quant_config_default(), default selection, one thread per CPU. */
void curate_calib_quant_opts_init(curate_calib_quant_opts *o);

/*
 * Quantize every selected matrix of src into dst, which must have src's
 * shape (curate_calib_model_copy()); dst's other weights are not touched,
 * so dst should start as a copy.  Statistics come from obs (may be NULL
 * for rtn and mse): imatrix needs CURATE_OBSERVE_SUMSQ, awq
 * CURATE_OBSERVE_ABSMEAN and the Hessian, gptq the Hessian.  A tensor the
 * observers did not see (the output's input without with_output) makes a
 * method that needs activations fail with CURATE_ERR_INVALID naming it.
 * Tensors run in parallel on n_threads threads (results do not depend on
 * the thread count).  res is filled on success; on error it is released.
 */
curate_status curate_calib_quantize(const curate_model *src, curate_model *dst,
                                    const curate_calib_obs *obs,
                                    const curate_calib_quant_opts *o,
                                    curate_calib_quant_result *res, curate_error *err);

/*
 * A deep copy of m (same params, every weight copied, same block layout),
 * the usual dst of curate_calib_quantize().  NULL + err (CURATE_ERR_NOMEM).
 */
curate_model *curate_calib_model_copy(const curate_model *m, curate_error *err);

/* ------------------------------------------------------------------------ */
/* Activation quantization                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Simulated activation quantization of the linear-layer inputs (see
 * curate/actquant.h for the number format and the threshold methods).  An
 * input is rounded when at least one weight reading it is selected by sel
 * (Q/K/V share their input, so do gate/up; the output matrix's input only
 * when output.weight, or a tied token_embd.weight, is selected).  With
 * scope tensor each input gets one static scale from its observer's
 * histogram (obs must keep CURATE_OBSERVE_HIST for those inputs); with
 * scope token each row is scaled by its own max |x| at run time (obs may
 * be NULL).
 */
typedef struct curate_calib_act curate_calib_act;

curate_calib_act *curate_calib_act_new(const curate_model *m, const curate_calib_obs *obs,
                                       const curate_act_config *cfg,
                                       const curate_calib_select *sel, curate_error *err);
void curate_calib_act_free(curate_calib_act *a); /* accepts NULL */

/*
 * Install a as c's input hook (or, with a == NULL, remove the hook).  a
 * must outlive its use by c.  Counters of rounded and clipped values are
 * kept per input while the hook runs.  The rows are rounded in parallel
 * on c's thread pool (each row by one task: the result does not depend on
 * the thread count), so a serves one context at a time: the last one it
 * was attached to.
 */
void curate_calib_act_attach(curate_calib_act *a, curate_model_ctx *c);

/* The hook itself, for curate_model_forward_ref_hooked() (user = a); a
 * call of one row runs on the calling thread. */
void curate_calib_act_hook(void *user, uint32_t layer, curate_linear_input which, float *x,
                           size_t n_rows, size_t n_cols);

/* Per input: whether it is rounded, its static scale (0 for token scope),
 * its threshold, and the values rounded / clipped so far. */
typedef struct curate_calib_act_info {
    int enabled;
    float scale;
    double threshold;
    uint64_t values, clipped;
} curate_calib_act_info;

/* Info of (layer, which); all zero for an input out of range. */
curate_calib_act_info curate_calib_act_get(const curate_calib_act *a, uint32_t layer,
                                           curate_linear_input which);

/* Reset the value counters (between evaluations). */
void curate_calib_act_reset_counts(curate_calib_act *a);

/* ------------------------------------------------------------------------ */
/* Comparing the original and quantized models                              */
/* ------------------------------------------------------------------------ */

/*
 * Figures of one quantized model on one set of sequences (one domain).
 * PPL as curate/ppl.h computes it (the same NLL function, so the original's
 * figures equal curate_ppl_tokens() on the same chunks); KL per scored
 * position is KL(P_orig || P_quant) = sum_v p(v) (log p(v) - log q(v)) with
 * both log-softmaxes in double; kl_p99 is the nearest-rank 99th percentile
 * (the value at rank ceil(0.99 n) of the sorted KLs).  KL is 0 exactly
 * where both models give bit-identical logits; rounding can leave values
 * of order -1e-16 elsewhere, which are kept as they are.
 */
typedef struct curate_calib_cmp {
    uint64_t n_seq, n_scored;
    double ppl_orig, ppl_orig_err, nll_orig;     /* nll: mean in nats */
    double ppl_quant, ppl_quant_err, nll_quant;  /* NaN without a quantized model */
    double dppl_pct;            /* 100 (ppl_quant / ppl_orig - 1) */
    double kl_mean, kl_p99, kl_max;
    double top1_agree;          /* share of positions where the argmaxes agree */
    double top1_orig, top1_quant; /* share where the argmax is the target */
    double seconds;             /* wall time of the comparison */
} curate_calib_cmp;

/* Per-sequence sums over its scored rows, for per-record scores. */
typedef struct curate_calib_seq_score {
    size_t rows;
    double nll_orig, nll_quant, kl; /* sums over the rows (quant/kl 0 without a model) */
    uint64_t top1_agree;
} curate_calib_seq_score;

/* Called after each sequence with scores[max(n_quant, 1)]. */
typedef void (*curate_calib_seq_fn)(void *user, size_t seq, size_t n_seq,
                                    const curate_calib_seq_score *scores);

/*
 * Run every sequence of seqs through the original context and each of the
 * n_quant quantized contexts (n_quant may be 0: the original's PPL only),
 * and fill res[max(n_quant, 1)].  Every context must hold
 * seqs->max_len - 1 tokens and have the same vocabulary.  The per-row work
 * (log-softmax, KL, argmax) runs on orig's thread pool; results do not
 * depend on the thread count.  on_seq may be NULL.
 * Errors: those of the forward passes, CURATE_ERR_INVALID (no scored rows,
 * vocabularies differ), CURATE_ERR_NOMEM.
 */
curate_status curate_calib_compare(curate_model_ctx *orig, curate_model_ctx *const *quant,
                                   size_t n_quant, const curate_seqs *seqs,
                                   curate_calib_cmp *res, curate_calib_seq_fn on_seq,
                                   void *user, curate_error *err);

/*
 * The verdict for a PPL change in %: "excellent" below 1, "acceptable" up
 * to 3, "needs work" above, on the size of the change either way (a model
 * whose PPL falls by 5% has moved as far as one where it rises by 5%; on
 * a domain far from the model's training, rounding can "improve" PPL by
 * tens of percent while KL shows the damage); "-" for
 * NaN.
 */
const char *curate_calib_verdict(double dppl_pct);

/* ------------------------------------------------------------------------ */
/* Studies: repeats on sub-samples and their noise                          */
/* ------------------------------------------------------------------------ */

/*
 * The spread of one figure (a domain's dPPL%, its mean KL, its top-1
 * agreement) over repeated calibrations.  Only finite values count (a
 * repeat that produced no figure is NaN and is left out): n is how many
 * did.  mean and min/max are NaN for n = 0; std is the sample standard
 * deviation (divisor n - 1), NaN for n < 2.
 */
typedef struct curate_calib_spread {
    size_t n;
    double mean, std, min, max;
} curate_calib_spread;

/* The spread of v[0..n) (v may be NULL when n is 0). Never fails. */
void curate_calib_spread_of(const double *v, size_t n, curate_calib_spread *out);

/* The noise rule curate-calibrate's tables mark with "~". */
#define CURATE_CALIB_NOISE_K 2.0

/*
 * 1 when the figure's mean cannot be told from zero by the repeats:
 * n >= 2 and |mean| < k * std (k = CURATE_CALIB_NOISE_K in the tool).
 * A figure that does not move at all between repeats (std 0: a method that
 * reads no calibration data) is never "within noise" unless it is 0 -
 * and 0 < 0 is false, so not even then.  0 for NULL or n < 2.
 */
int curate_calib_within_noise(const curate_calib_spread *s, double k);

/*
 * The size of a sub-sample of n records at fraction frac: frac * n
 * rounded to the nearest integer, at least 1 and at most n (0 for n = 0;
 * frac <= 0 gives 1, frac >= 1 gives n).
 */
size_t curate_calib_subsample_size(size_t n, double frac);

/*
 * Repeat number `repeat`'s sub-sample: k of n record indices drawn
 * uniformly without replacement by curate_calib_pick() from a generator
 * seeded with seed + repeat, sorted ascending (file order).  The same
 * (seed, repeat, n, k) always gives the same records; different repeats
 * draw independently.  out has room for k (k > n is clamped to n).
 */
void curate_calib_subsample(uint64_t seed, uint64_t repeat, size_t n, size_t k, size_t *out);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_CALIBRATE_H */
