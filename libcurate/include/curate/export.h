/*
 * curate/export.h - write a model quantized by curate/quant.h as a GGUF
 * file in ggml block formats, so llama.cpp (or curate's own loader) can
 * run the quantized model itself, not only its fake-quant F32 stand-in.
 *
 * What maps to what.  ggml stores one scale (and for Q4_1 one offset) per
 * block of 32 consecutive elements of a row, as an IEEE half (fp16), then
 * the packed integers.  Three quantizer settings have exactly that shape:
 *
 *   bits 8, group 32, symmetric   -> Q8_0  (34 bytes: f16 d, int8 qs[32];
 *                                          x = qs[j] * d)
 *   bits 4, group 32, symmetric   -> Q4_0  (18 bytes: f16 d, u8 qs[16];
 *                                          element j < 16 in the low nibble of
 *                                          qs[j], element j + 16 in its high
 *                                          nibble; x = (nibble - 8) * d)
 *   bits 4, group 32, asymmetric  -> Q4_1  (20 bytes: f16 d, f16 m, u8 qs[16];
 *                                          same nibble order; x = nibble*d + m)
 *
 * Both symmetric ranges of curate/quant.h fit: the full range (codes
 * -2^(b-1)..2^(b-1)-1, ggml's own Q4_0 rule) and the restricted one
 * (+-(2^(b-1)-1), ggml's own Q8_0 rule).  Note that full-range 8-bit uses
 * the int8 value -128, which ggml's Q8_0 never produces itself; ggml's
 * reference and SIMD dot products handle it, but `restricted` gives the
 * range llama-quantize's own Q8_0 files have.  Every other setting (other
 * bit widths, other group sizes, per-row groups, 8-bit asymmetric) has no
 * ggml block type of the same shape and is refused with
 * CURATE_ERR_UNSUPPORTED, as is AWQ: its per-input-channel scales would
 * have to be folded into the previous operation, which this exporter does
 * not do.  Check a setting before a long calibration run with
 * curate_export_block_type().
 *
 * Exactness and the fp16 scales.  The blocks are built from the
 * quantizer's own integer codes and scales, not by quantizing the F32
 * weights again, so what GPTQ or a clipping search chose is what the file
 * holds.  curate_quant_matrix() computes its scales in float; the file can
 * only hold them rounded to fp16 (relative error at most 2^-11 for normal
 * halves).  The packer therefore rounds d (and m) to fp16 first and then
 * re-derives each code as the one whose value under the rounded scale is
 * nearest to the fake-quant value code * d (+ m), clamped to the block's
 * range.  For normal scales this is the quantizer's own code in practice
 * (the ratio d / fp16(d) moves a code by at most 128 * 2^-11 < 1/2 step);
 * it differs where the scale is an fp16 subnormal or, for Q4_1, where the
 * offset's rounding is a sizeable fraction of a step (a group far from
 * zero relative to its spread).  The result: the file dequantizes to the
 * fake-quant weights up to the fp16 rounding of the scales, never worse
 * than keeping the codes; the report gives the measured difference per
 * tensor (codes changed, max |file - fake-quant|, sum of squares).  A
 * scale beyond the fp16 range (|d| > 65504) is an error, not an infinity.
 *
 * Rows that do not split into blocks.  A quantized tensor whose row length
 * (ne[0]) is not a multiple of 32 cannot be stored in blocks; it is
 * written as plain floats instead: F16 when the source tensor is F16,
 * F32 otherwise.  The values written are the fake-quant weights (so the
 * file computes what the evaluation measured), or, with
 * fallback_original, the source weights.  The report says which tensors
 * took this path and in which type.
 *
 * Metadata.  Every key of the source is copied, in order, with
 * curate_gguf_writer_add_value(), except:
 *   - general.file_type: set to llama.cpp's llama_ftype of the block type
 *     (MOSTLY_Q4_0 = 2, MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7) when at least one
 *     tensor is packed; otherwise the source's value is kept;
 *   - general.quantization_version: set to 2 (ggml's current block
 *     layouts) when at least one tensor is packed, as llama-quantize does;
 *   - keys starting with "curate.": dropped, because they describe how the
 *     source was made, and replaced by this export's own:
 *       curate.version               string  libcurate's version
 *       curate.quant.method          string  "rtn", "gptq", ... (or the
 *                                            provenance's method text)
 *       curate.quant.type            string  "q8_0", "q4_0" or "q4_1"
 *       curate.quant.bits            u32
 *       curate.quant.group_size      u32
 *       curate.quant.sym             bool
 *       curate.quant.restricted      bool
 *       curate.quant.tensors         u32     tensors packed in blocks
 *       curate.quant.fallback_tensors u32    tensors written as floats
 *       curate.calib.source          string  (when given)
 *       curate.calib.sha256          string  (when given)
 *       curate.calib.records         u64     (when any calib field is given)
 *       curate.calib.tokens          u64     (idem)
 *       curate.calib.seed            u64     (when has_seed)
 *     plus any extra "curate.*" string pairs the caller passes.
 *     The curate.quant.* keys are written only when a quant config is given.
 * Tensors keep the source's order, names and shapes.  A tensor the caller
 * does not list, or lists without a quantized result, is copied byte for
 * byte in its source type: the token embedding and output matrix stay as
 * they were unless the caller quantized them and passes the result.
 *
 * Thread safety: reentrant; the source handle may be shared with other
 * readers while an export runs.
 */
#ifndef CURATE_EXPORT_H
#define CURATE_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include "curate/gguf.h"
#include "curate/quant.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* llama.cpp's llama_ftype numbers, the value of general.file_type. */
#define CURATE_FTYPE_ALL_F32 0u
#define CURATE_FTYPE_MOSTLY_F16 1u
#define CURATE_FTYPE_MOSTLY_Q4_0 2u
#define CURATE_FTYPE_MOSTLY_Q4_1 3u
#define CURATE_FTYPE_MOSTLY_Q8_0 7u

/* ggml's quantization format version written to general.quantization_version. */
#define CURATE_GGML_QUANT_VERSION 2u

/*
 * The ggml block type a quantizer setting is written as (see the header
 * comment): only bits, group_size, asym and method are looked at.
 * CURATE_ERR_UNSUPPORTED, naming the setting and the three supported
 * ones, for anything else; CURATE_ERR_INVALID for cfg == NULL.
 */
curate_status curate_export_block_type(const curate_quant_config *cfg, curate_ggml_type *type,
                                       curate_error *err);

/* The llama_ftype of a block type (2, 3, 7; F32 0, F16 1); UINT32_MAX if none. */
uint32_t curate_export_ftype(curate_ggml_type type);

/*
 * Pack rows x cols quantizer output into blocks of type (Q8_0, Q4_0 or
 * Q4_1) at dst (rows * curate_ggml_row_size(type, cols) bytes).  cols must
 * be a multiple of 32; codes is [rows][cols] (unsigned, as curate/quant.h
 * returns them: code = q + 2^(b-1) for the symmetric types), scales and
 * mins are [rows][cols / 32] (mins only for Q4_1; ignored otherwise).
 * Codes are re-derived against the fp16-rounded scales as described
 * above; *codes_changed (may be NULL) receives how many differ from the
 * given ones.  Errors: CURATE_ERR_INVALID (type not a block type, cols not
 * a multiple of 32, NULL arrays), CURATE_ERR_RANGE (a scale or offset not
 * finite or beyond fp16, a code outside the type's range, sizes that
 * overflow; the message names the row and block).
 */
curate_status curate_export_pack(curate_ggml_type type, const uint8_t *codes,
                                 const float *scales, const float *mins, size_t rows,
                                 size_t cols, void *dst, uint64_t *codes_changed,
                                 curate_error *err);

/*
 * One tensor to quantize: name as in the source, and the curate_quant_out
 * that curate_quant_matrix() filled for it with rows = the product of
 * ne[1..], cols = ne[0] of the source tensor, using the options' quant
 * config.  Used: codes and scales (required when the row splits into
 * blocks), mins (Q4_1), q (the fake-quant weights: required for the
 * float fallback unless fallback_original, and when given the packed
 * result is measured against it), in_scale (must be NULL or all 1: AWQ
 * is refused).  The arrays are read during curate_export_gguf() only.
 * quant == NULL means copy the tensor, as for unlisted tensors.
 */
typedef struct curate_export_tensor {
    const char *name;
    const curate_quant_out *quant;
} curate_export_tensor;

/* Where the calibration came from; every field optional (NULL / 0). */
typedef struct curate_export_provenance {
    const char *method;        /* curate.quant.method; NULL = the config's method name */
    const char *calib_source;  /* e.g. the calibration file's name */
    const char *calib_sha256;  /* 64 lowercase hex digits of the set's sha256 */
    uint64_t calib_records;    /* records used */
    uint64_t calib_tokens;     /* tokens used */
    uint64_t calib_seed;
    int has_seed;              /* 1: write curate.calib.seed */
    /* extra string keys: extra_keys[i] (must start with "curate.") = extra_values[i] */
    const char *const *extra_keys;
    const char *const *extra_values;
    size_t n_extra;
} curate_export_provenance;

typedef struct curate_export_options {
    const curate_quant_config *quant; /* the setting the listed tensors were
                                         quantized with; required when any
                                         listed tensor has a result */
    curate_export_provenance prov;
    int fallback_original;            /* 1: rows not splitting into blocks keep
                                         the source values (default 0: the
                                         fake-quant values) */
} curate_export_options;

/* Zero everything (no quant config, no provenance, fake-quant fallback). */
void curate_export_options_init(curate_export_options *opt);

/* What happened to a tensor. */
typedef enum curate_export_kind {
    CURATE_EXPORT_COPIED = 0, /* source bytes, source type */
    CURATE_EXPORT_PACKED,     /* quantizer codes and scales in the block type */
    CURATE_EXPORT_FALLBACK    /* quantized, but the rows do not split into blocks:
                                 written as F16 or F32 (see type) */
} curate_export_kind;

/* "copied", "packed", "fallback". */
const char *curate_export_kind_name(curate_export_kind kind);

typedef struct curate_export_tensor_report {
    char *name;               /* the tensor's name (owned by the result) */
    curate_export_kind kind;
    curate_ggml_type type;    /* the type written */
    uint64_t n_elements;
    uint64_t codes_changed;   /* packed: codes re-derived to another value */
    /* Packed and fallback tensors, measured on the file's bytes decoded with
     * the reference conversions, against the fake-quant weights (q; for a
     * packed tensor without q, against the codes decoded with the float
     * scales).  Copied tensors: all 0. */
    double max_abs_diff;      /* max |file - fake-quant| */
    double sq_diff;           /* sum (file - fake-quant)^2 */
    double sq_ref;            /* sum fake-quant^2 (for a relative figure) */
} curate_export_tensor_report;

/* The whole export; release with curate_export_result_release(). */
typedef struct curate_export_result {
    curate_export_tensor_report *tensors; /* [n_tensors], in file order */
    size_t n_tensors;
    size_t n_packed, n_fallback, n_copied;
    curate_ggml_type block_type;          /* meaningful when n_packed > 0 */
    uint32_t file_type;                   /* general.file_type written; UINT32_MAX
                                             when the source had none and none was set */
    double max_abs_diff;                  /* max over tensors */
    uint64_t codes_changed;               /* sum over tensors */
} curate_export_result;

/* Free the report array and zero the struct; r may be NULL. */
void curate_export_result_release(curate_export_result *r);

/*
 * Write src with the listed tensors quantized to path (GGUF v3, through a
 * temporary file and rename: a failed export leaves no partial file).
 * list may be NULL when n_list is 0 (a plain copy with curate.* keys).
 * res (may be NULL) receives the per-tensor report; on error it is left
 * released.
 *
 * Errors: CURATE_ERR_INVALID (a listed name missing from the source or
 * listed twice, a required array missing, an extra key not under
 * "curate.", a malformed sha256), CURATE_ERR_UNSUPPORTED (a setting with
 * no ggml block type, AWQ in_scale), CURATE_ERR_RANGE (see
 * curate_export_pack, or a non-finite fake-quant value), CURATE_ERR_NOMEM,
 * CURATE_ERR_IO.  Messages name the tensor.
 */
curate_status curate_export_gguf(const curate_gguf *src, const curate_export_tensor *list,
                                 size_t n_list, const curate_export_options *opt,
                                 const char *path, curate_export_result *res,
                                 curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_EXPORT_H */
