/*
 * curate/imatrix.h - write the importance matrix of a calibration run in
 * the files llama.cpp's `llama-quantize --imatrix FILE` reads, so a set
 * curated here can drive llama.cpp's own importance-aware quantization.
 *
 * What an importance matrix is.  For each weight matrix of the
 * transformer blocks, the sum over every calibration position (BOS
 * included: llama.cpp's imatrix tool feeds BOS at the start of each chunk
 * and counts it) of x_j^2, for each input channel j, plus how many rows
 * (token positions) were summed.  llama-quantize divides the sums by the
 * count and uses the mean square of channel j to weight the rounding
 * error of column j.  curate's observers (curate/observe.h, with
 * CURATE_OBSERVE_SUMSQ) keep exactly these sums, in double.
 *
 * Which tensors.  Only the blk.* matrices, named as llama.cpp names them:
 * blk.N.attn_q.weight, attn_k, attn_v, attn_output, ffn_gate, ffn_up,
 * ffn_down.  Q, K and V read the same input, as do gate and up, so one
 * observer gives several entries with equal values (llama.cpp's imatrix
 * tool also stores one entry per weight).  The output matrix is not
 * written (llama.cpp collects it only with --process-output).  Two small
 * differences from llama.cpp's collector, both on the side of more data:
 * it skips matrix products of fewer than 16 rows, curate's observers do
 * not; and curate sums in double, llama.cpp in float.
 *
 * The two file formats (both read back by current llama-quantize; the
 * legacy one also by builds from before mid-2025).  The layouts below were
 * checked against llama.cpp's tools/imatrix/imatrix.cpp (its writers
 * save_imatrix and save_imatrix_legacy) and common/imatrix-loader.cpp
 * (the loader llama-quantize uses):
 *
 * GGUF (CURATE_IMATRIX_GGUF), the current format:
 *   keys   general.type = "imatrix"
 *          imatrix.datasets    array of strings (the calibration sources)
 *          imatrix.chunk_count u32 (chunks the statistics came from)
 *          imatrix.chunk_size  u32 (tokens per chunk, the context length)
 *   per entry, in name order, two F32 tensors:
 *          "<name>.in_sum2"  ne = [n_channels, 1]  the sums of x^2
 *          "<name>.counts"   ne = [1, 1]           the row count
 *   The loader divides in_sum2 by counts.  llama-quantize refuses a GGUF
 *   imatrix without all three imatrix.* keys.  Sums and counts are
 *   stored as float (as llama.cpp does): a count above 2^24 rounds.
 *
 * Legacy binary (CURATE_IMATRIX_DAT), all little-endian int32/float32:
 *   int32 n_entries
 *   per entry, in name order:
 *          int32 name length, name bytes (no NUL),
 *          int32 ncall, int32 nval, float values[nval]
 *   int32 chunk count, int32 dataset name length, dataset name bytes
 *   Here llama.cpp stores not the sums but the mean scaled by the call
 *   count: values[j] = (sum_j / count) * ncall with
 *   ncall = ceil(count / chunk_size), and the loader divides values by
 *   ncall.  curate computes (sum_j / count) * ncall in double and rounds
 *   once to float.  Entries with a count of 0 are left out (as llama.cpp
 *   does); the file holds one dataset name: the last of meta->datasets.
 *
 * Usage:
 *   curate_imatrix *im = curate_imatrix_new(&err);
 *   for each layer and input: curate_imatrix_add_observer(im, layer, which, obs, &err);
 *   curate_imatrix_write(im, &meta, curate_imatrix_format_from_path(path), path, &err);
 *   curate_imatrix_free(im);
 *
 * Thread safety: a curate_imatrix belongs to one thread at a time; the
 * format functions are pure.
 */
#ifndef CURATE_IMATRIX_H
#define CURATE_IMATRIX_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/model.h"
#include "curate/observe.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum curate_imatrix_format {
    CURATE_IMATRIX_GGUF = 0, /* GGUF imatrix of current llama.cpp */
    CURATE_IMATRIX_DAT = 1   /* the legacy binary .dat */
} curate_imatrix_format;

/* GGUF when path ends in ".gguf" (any letter case), else DAT - the
 * default of `--imatrix-format`. */
curate_imatrix_format curate_imatrix_format_from_path(const char *path);

/* "gguf" or "dat" (exact) into *out; CURATE_ERR_INVALID otherwise. */
curate_status curate_imatrix_format_parse(const char *name, curate_imatrix_format *out,
                                          curate_error *err);

/* "gguf", "dat"; "?" for other values. */
const char *curate_imatrix_format_name(curate_imatrix_format fmt);

typedef struct curate_imatrix curate_imatrix;

/* An empty set of entries; NULL + CURATE_ERR_NOMEM. */
curate_imatrix *curate_imatrix_new(curate_error *err);

/* Free; im may be NULL. */
void curate_imatrix_free(curate_imatrix *im);

/*
 * Add the entry for the weight `name` (copied): sumsq[0..n_channels) the
 * per-input-channel sums of x^2 (copied), count the rows summed.
 * Errors (CURATE_ERR_INVALID): a name that is not "blk.<N>.<...>", a name
 * too long for ggml (the "<name>.in_sum2" tensor name must stay under 64
 * bytes), a duplicate name, n_channels 0 or beyond int32, sumsq NULL;
 * CURATE_ERR_RANGE: a negative or non-finite sum; CURATE_ERR_NOMEM.
 */
curate_status curate_imatrix_add(curate_imatrix *im, const char *name, const double *sumsq,
                                 size_t n_channels, uint64_t count, curate_error *err);

/*
 * Add the entries of every weight that reads input `which` of block
 * `layer`, from an observer of that input (it must keep
 * CURATE_OBSERVE_SUMSQ, else CURATE_ERR_INVALID):
 *   CURATE_LIN_ATTN_QKV    -> blk.L.attn_q.weight, attn_k, attn_v
 *   CURATE_LIN_ATTN_OUT    -> blk.L.attn_output.weight
 *   CURATE_LIN_FFN_GATE_UP -> blk.L.ffn_gate.weight, ffn_up
 *   CURATE_LIN_FFN_DOWN    -> blk.L.ffn_down.weight
 *   CURATE_LIN_OUTPUT      -> nothing (not a blk.* matrix); returns CURATE_OK
 * The counts are curate_observer_rows(obs).  Other errors as
 * curate_imatrix_add().
 */
curate_status curate_imatrix_add_observer(curate_imatrix *im, uint32_t layer,
                                          curate_linear_input which,
                                          const curate_observer *obs, curate_error *err);

/* Entries added so far. */
size_t curate_imatrix_n_entries(const curate_imatrix *im);

/* The file's metadata. */
typedef struct curate_imatrix_meta {
    const char *const *datasets; /* n_datasets names (e.g. the calibration
                                    file); the .dat keeps the last one */
    size_t n_datasets;           /* may be 0 */
    uint32_t chunk_count;        /* chunks (sequences) evaluated */
    uint32_t chunk_size;         /* tokens per chunk (--ctx); >= 1 */
} curate_imatrix_meta;

/*
 * Write the entries to path in format fmt (through a temporary file and
 * rename, so a failed write leaves no partial file).  Errors:
 * CURATE_ERR_INVALID (no entries - llama.cpp refuses an empty imatrix -,
 * no entry with a nonzero count for DAT, chunk_size 0, a dataset name
 * NULL, an unknown format), CURATE_ERR_RANGE (a count, ncall or length
 * beyond int32 in DAT; a value beyond float), CURATE_ERR_NOMEM,
 * CURATE_ERR_IO.
 */
curate_status curate_imatrix_write(const curate_imatrix *im, const curate_imatrix_meta *meta,
                                   curate_imatrix_format fmt, const char *path,
                                   curate_error *err);

/* The same file image appended to out (for tests). */
curate_status curate_imatrix_write_buf(const curate_imatrix *im,
                                       const curate_imatrix_meta *meta,
                                       curate_imatrix_format fmt, curate_buf *out,
                                       curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_IMATRIX_H */
