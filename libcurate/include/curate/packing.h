/*
 * curate/packing.h - what a quantizer's calibration loader does with a set:
 * which samples it keeps, drops or cuts, and how many tokens reach the
 * model.
 *
 * Each PTQ tool turns a list of texts into model inputs its own way, and
 * the differences decide whether a carefully balanced set survives.  This
 * module replays those rules on the token counts of a set's records (in
 * file order) without running anything.  The rules, as read in each
 * project's calibration code:
 *
 *   llama.cpp imatrix   the whole text is tokenized as one stream with one
 *                       BOS at its start; the stream is cut into chunks of
 *                       ctx tokens and the remainder after the last whole
 *                       chunk is not used; the first token of every chunk
 *                       is replaced by BOS while it is evaluated (for the
 *                       first chunk that is the stream's own BOS, for the
 *                       others a token of the text is lost); fewer than
 *                       2 x ctx tokens is an error ("you need at least ...
 *                       tokens").
 *   AutoAWQ             samples in order: each is tokenized (with BOS); a
 *                       sample longer than max_calib_seq_len (= ctx) is
 *                       skipped, an empty one too; collection stops after
 *                       max_calib_samples accepted samples (default 128);
 *                       the accepted samples are concatenated and re-split
 *                       into blocks of ctx tokens, the remainder dropped.
 *                       No whole block is an error (or an empty result,
 *                       depending on the version).
 *   AutoRound           each sample is tokenized with truncation to seqlen
 *                       (= ctx) tokens; samples shorter than seqlen are
 *                       dropped; the first nsamples (default 128) of the
 *                       rest are used.  AutoRound shuffles a local dataset
 *                       with a fixed seed first, so which ones are used is
 *                       not the file order: the counts here take the first
 *                       in file order, which changes which samples, not
 *                       how many.  None left is an error.
 *   GPTQModel           each sample is tokenized (with BOS) and, when the
 *                       model's max_position_embeddings is known, trimmed
 *                       to it; samples of min_length (default 10) tokens
 *                       or fewer are dropped; the rest are used whole
 *                       (padded in batches; no concatenation unless asked).
 *
 * Token counts given here are per record, without BOS (what
 * curate-length-bucket writes to "tokens").  With opts.bos every sample is
 * taken to carry one BOS token (Llama, Mistral and Gemma tokenizers add
 * it; Qwen's do not) and, for llama.cpp, the stream starts with one.  The
 * imatrix stream is approximated as the sum of the record counts: the text
 * file llama.cpp reads joins the records, and tokenizing the joined text
 * can differ by about one token per record boundary.
 *
 * Accounting: every record token is kept, dropped or truncated:
 *   tokens_kept + tokens_dropped + tokens_truncated = sum of the counts,
 *   samples_used + samples_dropped = n,  samples_truncated <= samples_used.
 * A record is "used" when any of its tokens reaches the model, "dropped"
 * when none does, "truncated" when it is used but loses tokens (cut off by
 * a block or chunk end or a length limit, or overwritten by a chunk's BOS).
 * BOS tokens themselves are never counted as record tokens.
 *
 * Thread safety: pure functions.
 */
#ifndef CURATE_PACKING_H
#define CURATE_PACKING_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Consumers.  Append only. */
typedef enum curate_packer {
    CURATE_PACK_LLAMA_IMATRIX = 0,
    CURATE_PACK_AUTOAWQ,
    CURATE_PACK_AUTOROUND,
    CURATE_PACK_GPTQMODEL,
    CURATE_PACK_COUNT_  /* not a consumer; keep last */
} curate_packer;

/* "llama.cpp imatrix", "AutoAWQ", "AutoRound", "GPTQModel"; NULL if unknown. */
const char *curate_packer_name(curate_packer p);
/* Short key for JSON: "llama_imatrix", "autoawq", "autoround", "gptqmodel". */
const char *curate_packer_key(curate_packer p);

typedef struct curate_pack_opts {
    uint64_t ctx;              /* imatrix -c, AutoAWQ max_calib_seq_len,
                                  AutoRound seqlen; >= 1 */
    int bos;                   /* 1: one BOS per sample / stream start */
    uint64_t awq_max_samples;  /* AutoAWQ max_calib_samples; 0 = no limit */
    uint64_t autoround_nsamples; /* AutoRound nsamples; 0 = no limit */
    uint64_t gptq_min_length;  /* GPTQModel calibration_data_min_length */
    uint64_t gptq_max_positions; /* GPTQModel trim length; 0 = not known */
} curate_pack_opts;

/* ctx 512, bos 1, 128 AutoAWQ samples, 128 AutoRound samples, GPTQModel
 * minimum 10, no trimming (each tool's own default). */
void curate_pack_opts_default(curate_pack_opts *opts);

typedef struct curate_pack_result {
    int fails;                  /* the tool stops with an error (see above) */
    uint64_t samples_used, samples_dropped, samples_truncated;
    uint64_t tokens_kept, tokens_dropped, tokens_truncated;
    /* why samples were dropped (they add up to samples_dropped) */
    uint64_t dropped_short;     /* under a minimum length (AutoRound, GPTQModel) */
    uint64_t dropped_long;      /* over the length limit (AutoAWQ) */
    uint64_t dropped_limit;     /* past the sample limit (AutoAWQ, AutoRound) */
    uint64_t dropped_tail;      /* in the unused remainder after the last whole
                                   chunk or block (imatrix, AutoAWQ), or all
                                   samples when the tool fails */
    uint64_t dropped_empty;     /* no tokens at all (AutoAWQ without BOS) */
    uint64_t units;             /* chunks (imatrix), blocks (AutoAWQ) or
                                   samples fed (AutoRound, GPTQModel) */
    uint64_t unit_tokens;       /* tokens per unit, BOS included, or 0 when
                                   they vary (GPTQModel) */
    uint64_t bos_overwritten;   /* imatrix: record tokens replaced by a
                                   chunk's BOS (part of tokens_truncated) */
    uint64_t stream_tokens;     /* tokens the tool had before cutting, BOS
                                   included (imatrix stream, AutoAWQ
                                   concatenation, sum of fed samples) */
} curate_pack_result;

/*
 * Replay consumer p on tokens[0..n) (records in file order, counts without
 * BOS).  Returns CURATE_OK, or CURATE_ERR_INVALID (unknown consumer, ctx 0,
 * NULL arguments with n > 0) or CURATE_ERR_RANGE (sums overflow 64 bits).
 * *out is filled on success.
 */
curate_status curate_pack_simulate(curate_packer p, const uint64_t *tokens, size_t n,
                                   const curate_pack_opts *opts, curate_pack_result *out);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_PACKING_H */
