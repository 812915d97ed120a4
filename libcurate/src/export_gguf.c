/*
 * export_gguf.c - quantized GGUF export: the quantizer's codes and scales
 * packed into ggml Q8_0 / Q4_0 / Q4_1 blocks, everything else copied.
 *
 * The packer works from codes, not from F32 weights: re-quantizing the
 * fake-quant weights with ggml's own rules would pick different scales
 * (GPTQ and the clipping searches choose scales that min/max would not)
 * and lose exactly what the calibration bought.  The one thing the codes
 * cannot carry over is the float scale, which the block holds in fp16;
 * see export.h for why the codes are re-derived against the rounded scale.
 *
 * Every packed or converted tensor is decoded again with the reference
 * conversions of ggml_types.c and compared with the fake-quant weights, so
 * the report is a measurement of the file's contents, not a promise.
 */
#include "curate/export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"

#define QK 32 /* elements per block of all three block types */

/* ---- settings ------------------------------------------------------------- */

/*
 * Only the shape matters here (bits, group, symmetry): the methods differ
 * in how they choose scales and codes, not in what a block can hold.  AWQ
 * is the exception because its output is not blocks alone.
 */
curate_status curate_export_block_type(const curate_quant_config *cfg, curate_ggml_type *type,
                                       curate_error *err)
{
    if (!cfg)
        return curate_error_set(err, CURATE_ERR_INVALID, "export: no quantization config");
    if (cfg->method == CURATE_QUANT_AWQ)
        return curate_error_set(
            err, CURATE_ERR_UNSUPPORTED,
            "cannot export awq to a ggml block type: its per-input-channel scales are not "
            "folded into the model (use rtn, mse, imatrix or gptq)");
    if (cfg->group_size == QK) {
        if (cfg->bits == 8 && !cfg->asym) {
            *type = CURATE_GGML_TYPE_Q8_0;
            return CURATE_OK;
        }
        if (cfg->bits == 4) {
            *type = cfg->asym ? CURATE_GGML_TYPE_Q4_1 : CURATE_GGML_TYPE_Q4_0;
            return CURATE_OK;
        }
    }
    char groups[64];
    if (cfg->group_size == 0)
        snprintf(groups, sizeof groups, "per-row groups");
    else
        snprintf(groups, sizeof groups, "groups of %zu", cfg->group_size);
    return curate_error_set(err, CURATE_ERR_UNSUPPORTED,
                            "cannot export %u-bit %s %s as a ggml block type (supported: 8-bit "
                            "symmetric groups of 32 as q8_0, 4-bit symmetric groups of 32 as "
                            "q4_0, 4-bit asymmetric groups of 32 as q4_1)",
                            cfg->bits, cfg->asym ? "asymmetric" : "symmetric", groups);
}

uint32_t curate_export_ftype(curate_ggml_type type)
{
    switch (type) {
    case CURATE_GGML_TYPE_F32: return CURATE_FTYPE_ALL_F32;
    case CURATE_GGML_TYPE_F16: return CURATE_FTYPE_MOSTLY_F16;
    case CURATE_GGML_TYPE_Q4_0: return CURATE_FTYPE_MOSTLY_Q4_0;
    case CURATE_GGML_TYPE_Q4_1: return CURATE_FTYPE_MOSTLY_Q4_1;
    case CURATE_GGML_TYPE_Q8_0: return CURATE_FTYPE_MOSTLY_Q8_0;
    default: return UINT32_MAX;
    }
}

void curate_export_options_init(curate_export_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

const char *curate_export_kind_name(curate_export_kind kind)
{
    switch (kind) {
    case CURATE_EXPORT_COPIED: return "copied";
    case CURATE_EXPORT_PACKED: return "packed";
    case CURATE_EXPORT_FALLBACK: return "fallback";
    }
    return "?";
}

void curate_export_result_release(curate_export_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->tensors && i < r->n_tensors; i++)
        free(r->tensors[i].name);
    free(r->tensors);
    memset(r, 0, sizeof *r);
    r->file_type = UINT32_MAX;
}

/* ---- packing ----------------------------------------------------------------- */

/*
 * The integer range of a block type: q in [qlo, qhi], code = q + off.
 * The ranges are the full ones the bytes can hold, wider than what either
 * symmetric rule of curate/quant.h produces, so re-deriving a code near
 * the edge never has to clamp where the quantizer did not.
 */
typedef struct blockfmt {
    int asym;
    int qlo, qhi, off;
    size_t bytes;
} blockfmt;

static int block_fmt(curate_ggml_type type, blockfmt *f)
{
    switch (type) {
    case CURATE_GGML_TYPE_Q8_0:
        *f = (blockfmt){0, -128, 127, 128, sizeof(curate_block_q8_0)};
        return 1;
    case CURATE_GGML_TYPE_Q4_0:
        *f = (blockfmt){0, -8, 7, 8, sizeof(curate_block_q4_0)};
        return 1;
    case CURATE_GGML_TYPE_Q4_1:
        *f = (blockfmt){1, 0, 15, 0, sizeof(curate_block_q4_1)};
        return 1;
    default:
        return 0;
    }
}

/* v rounded to fp16: the bits, and the value they stand for. */
static curate_status to_half(float v, const char *what, size_t row, size_t blk, uint16_t *h,
                             float *back, curate_error *err)
{
    if (!isfinite(v))
        return curate_error_set(err, CURATE_ERR_RANGE, "row %zu block %zu: %s is not finite",
                                row, blk, what);
    *h = curate_f32_to_f16(v);
    *back = curate_f16_to_f32(*h);
    if (!isfinite(*back))
        return curate_error_set(err, CURATE_ERR_RANGE,
                                "row %zu block %zu: %s %g is beyond the fp16 range", row, blk,
                                what, (double)v);
    return CURATE_OK;
}

/*
 * The code nearest to the fake-quant value target under the fp16 scale
 * (d16, m16).  A scale that rounds to zero leaves one representable value
 * (0, or m16 for Q4_1): q = 0 stands for it.
 */
static int nearest_q(const blockfmt *f, float target, float d16, float m16)
{
    /* Division rather than multiplication by 1/d16: the quantizer's own
     * rounding used the reciprocal, but here the aim is the grid point
     * nearest to target, and the quotient is the exact ratio rounded once. */
    if (d16 == 0.0f)
        return 0;
    float v = roundf((target - m16) / d16);
    if (!(v >= (float)f->qlo))
        v = (float)f->qlo;
    if (v > (float)f->qhi)
        v = (float)f->qhi;
    return (int)v;
}

curate_status curate_export_pack(curate_ggml_type type, const uint8_t *codes,
                                 const float *scales, const float *mins, size_t rows,
                                 size_t cols, void *dst, uint64_t *codes_changed,
                                 curate_error *err)
{
    blockfmt f;
    if (!block_fmt(type, &f))
        return curate_error_set(err, CURATE_ERR_INVALID, "export: %s is not a block type",
                                curate_ggml_type_name((uint32_t)type)
                                    ? curate_ggml_type_name((uint32_t)type)
                                    : "?");
    if (cols == 0 || cols % QK)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "export: row length %zu is not a multiple of %d", cols, QK);
    if (rows && (!codes || !scales || !dst || (f.asym && !mins)))
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "export: codes, scales%s and the output are required",
                                f.asym ? ", mins" : "");
    size_t nb = cols / QK;
    if (rows > SIZE_MAX / cols || rows > SIZE_MAX / nb / f.bytes)
        return curate_error_set(err, CURATE_ERR_RANGE, "export: %zu x %zu is too large", rows,
                                cols);
    uint64_t changed = 0;
    unsigned char *out = dst;
    for (size_t r = 0; r < rows; r++) {
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *c = codes + r * cols + b * QK;
            float d = scales[r * nb + b], m = f.asym ? mins[r * nb + b] : 0.0f;
            uint16_t dh, mh = 0;
            float d16, m16 = 0.0f;
            curate_status st = to_half(d, "scale", r, b, &dh, &d16, err);
            if (!st && f.asym)
                st = to_half(m, "min", r, b, &mh, &m16, err);
            if (st)
                return st;
            /* Codes are validated rather than masked: a code outside the
             * type's range means the caller passed another setting's
             * output, and a silently wrapped nibble would be a wrong weight. */
            int q[QK];
            for (int j = 0; j < QK; j++) {
                int q0 = (int)c[j] - f.off;
                if (q0 < f.qlo || q0 > f.qhi)
                    return curate_error_set(err, CURATE_ERR_RANGE,
                                            "row %zu block %zu: code %u outside %s's range "
                                            "0..%d",
                                            r, b, (unsigned)c[j],
                                            curate_ggml_type_name((uint32_t)type),
                                            f.qhi - f.qlo);
                /* The fake-quant value, computed as curate/quant.h does. */
                float target = f.asym ? (float)q0 * d + m : (float)q0 * d;
                q[j] = nearest_q(&f, target, d16, m16);
                changed += q[j] != q0;
            }
            unsigned char *o = out + (r * nb + b) * f.bytes;
            if (type == CURATE_GGML_TYPE_Q8_0) {
                curate_block_q8_0 blk;
                blk.d = dh;
                for (int j = 0; j < QK; j++)
                    blk.qs[j] = (int8_t)q[j];
                memcpy(o, &blk, sizeof blk);
            } else {
                /* Q4_0 and Q4_1 share the nibble order: element j in the low
                 * half of byte j, element j + 16 in its high half. */
                uint8_t qs[QK / 2];
                for (int j = 0; j < QK / 2; j++)
                    qs[j] = (uint8_t)((q[j] + f.off) | ((q[j + QK / 2] + f.off) << 4));
                if (type == CURATE_GGML_TYPE_Q4_0) {
                    curate_block_q4_0 blk;
                    blk.d = dh;
                    memcpy(blk.qs, qs, sizeof qs);
                    memcpy(o, &blk, sizeof blk);
                } else {
                    curate_block_q4_1 blk;
                    blk.d = dh;
                    blk.m = mh;
                    memcpy(blk.qs, qs, sizeof qs);
                    memcpy(o, &blk, sizeof blk);
                }
            }
        }
    }
    if (codes_changed)
        *codes_changed = changed;
    return CURATE_OK;
}

/* ---- measuring ------------------------------------------------------------------ */

/* Accumulate |a - b| statistics of one row; CURATE_ERR_RANGE on a non-finite value. */
static curate_status measure_row(const float *file, const float *ref, size_t n,
                                 curate_export_tensor_report *rep, curate_error *err)
{
    for (size_t j = 0; j < n; j++) {
        if (!isfinite(file[j]) || !isfinite(ref[j]))
            return curate_error_set(err, CURATE_ERR_RANGE,
                                    "tensor '%s': value %zu is not finite (%g written for %g)",
                                    rep->name, j, (double)file[j], (double)ref[j]);
        double dd = (double)file[j] - (double)ref[j];
        double a = fabs(dd);
        if (a > rep->max_abs_diff)
            rep->max_abs_diff = a;
        rep->sq_diff += dd * dd;
        rep->sq_ref += (double)ref[j] * (double)ref[j];
    }
    return CURATE_OK;
}

/* ---- the export ---------------------------------------------------------------- */

typedef struct plan_entry {
    const curate_quant_out *quant; /* NULL: copy */
    int packed;                    /* 1: blocks, 0: float fallback (when quant) */
    int listed;                    /* named in the caller's list */
} plan_entry;

typedef struct export_state {
    const curate_gguf *src;
    const curate_export_options *opt;
    curate_ggml_type block;
    plan_entry *plan;          /* [n_tensors] */
    void **bufs;               /* buffers handed to the writer, freed at the end */
    size_t n_bufs;
    curate_export_result res;
} export_state;

static int is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 64;
}

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/*
 * Everything that can be refused is refused here, before a byte is packed
 * or written: a long export should not fail halfway on a typo in the list.
 */
static curate_status check_inputs(export_state *es, const curate_export_tensor *list,
                                  size_t n_list, curate_error *err)
{
    const curate_export_options *opt = es->opt;
    const curate_export_provenance *pv = &opt->prov;
    if (pv->calib_sha256 && !is_hex64(pv->calib_sha256))
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "export: calib_sha256 must be 64 lowercase hex digits");
    if (pv->n_extra && (!pv->extra_keys || !pv->extra_values))
        return curate_error_set(err, CURATE_ERR_INVALID, "export: extra keys without values");
    for (size_t i = 0; i < pv->n_extra; i++)
        if (!pv->extra_keys[i] || !pv->extra_values[i] ||
            !has_prefix(pv->extra_keys[i], "curate."))
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "export: extra key '%s' must start with \"curate.\"",
                                    pv->extra_keys[i] ? pv->extra_keys[i] : "(null)");
    if (n_list && !list)
        return curate_error_set(err, CURATE_ERR_INVALID, "export: NULL tensor list");

    int any_quant = 0;
    for (size_t i = 0; i < n_list; i++) {
        const char *name = list[i].name;
        if (!name)
            return curate_error_set(err, CURATE_ERR_INVALID, "export: entry %zu has no name", i);
        const curate_gguf_tensor *t = curate_gguf_find_tensor(es->src, name);
        if (!t)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "export: the model has no tensor '%s'", name);
        /* The plan is indexed like the source's tensors (file order); a
         * model has a few hundred, so the linear search is no cost. */
        size_t idx = 0;
        while (curate_gguf_tensor_at(es->src, idx) != t)
            idx++;
        plan_entry *pe = &es->plan[idx];
        if (pe->listed)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "export: tensor '%s' is listed twice", name);
        pe->listed = 1;
        const curate_quant_out *qo = list[i].quant;
        if (!qo)
            continue;
        if (t->n_elements == 0)
            return curate_error_set(err, CURATE_ERR_INVALID, "tensor '%s' is empty", name);
        any_quant = 1;
        pe->quant = qo;
        pe->packed = t->ne[0] % QK == 0;
        if (qo->in_scale)
            for (uint64_t j = 0; j < t->ne[0]; j++)
                if (qo->in_scale[j] != 1.0f)
                    return curate_error_set(
                        err, CURATE_ERR_UNSUPPORTED,
                        "tensor '%s': per-input-channel scales (awq) cannot be stored in "
                        "ggml blocks",
                        name);
        if (pe->packed && (!qo->codes || !qo->scales))
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "tensor '%s': the quantizer's codes and scales are required",
                                    name);
        if (!pe->packed && !qo->q && !opt->fallback_original)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "tensor '%s': rows of %llu do not split into blocks of %d "
                                    "and no fake-quant values (q) were given",
                                    name, (unsigned long long)t->ne[0], QK);
    }
    if (any_quant || opt->quant) {
        curate_status st = curate_export_block_type(opt->quant, &es->block, err);
        if (st)
            return st;
    }
    if (es->block == CURATE_GGML_TYPE_Q4_1)
        for (size_t i = 0; i < curate_gguf_n_tensors(es->src); i++)
            if (es->plan[i].quant && es->plan[i].packed && !es->plan[i].quant->mins)
                return curate_error_set(err, CURATE_ERR_INVALID,
                                        "tensor '%s': q4_1 needs the quantizer's mins",
                                        curate_gguf_tensor_at(es->src, i)->name);
    return CURATE_OK;
}

/*
 * Keys keep the source's order and the replaced ones their position, so a
 * diff of two dumps shows only what changed.  The source's curate.* keys
 * are dropped wholesale: re-exporting an export must not carry a previous
 * run's method or calibration hash into a file they no longer describe.
 */
static curate_status write_keys(export_state *es, curate_gguf_writer *w, curate_error *err)
{
    const curate_gguf *src = es->src;
    const curate_export_options *opt = es->opt;
    int packed = es->res.n_packed > 0;
    uint32_t ftype = curate_export_ftype(es->block);
    int seen_ftype = 0, seen_qver = 0;
    curate_status st = CURATE_OK;
    es->res.file_type = UINT32_MAX;

    for (size_t i = 0; i < curate_gguf_n_kv(src) && !st; i++) {
        const char *key = curate_gguf_kv_key(src, i);
        const curate_gguf_value *v = curate_gguf_kv_value(src, i);
        if (has_prefix(key, "curate."))
            continue;
        if (!strcmp(key, "general.file_type")) {
            seen_ftype = 1;
            if (packed) {
                st = curate_gguf_writer_add_u32(w, key, ftype, err);
                es->res.file_type = ftype;
                continue;
            }
            uint32_t old;
            if (curate_gguf_value_u32(v, &old, NULL) == CURATE_OK)
                es->res.file_type = old;
        } else if (packed && !strcmp(key, "general.quantization_version")) {
            seen_qver = 1;
            st = curate_gguf_writer_add_u32(w, key, CURATE_GGML_QUANT_VERSION, err);
            continue;
        }
        st = curate_gguf_writer_add_value(w, key, v, err);
    }
    if (!st && packed && !seen_ftype) {
        st = curate_gguf_writer_add_u32(w, "general.file_type", ftype, err);
        es->res.file_type = ftype;
    }
    if (!st && packed && !seen_qver)
        st = curate_gguf_writer_add_u32(w, "general.quantization_version",
                                        CURATE_GGML_QUANT_VERSION, err);

    /* provenance: written after the copied keys, all under curate.* */
    const curate_export_provenance *pv = &opt->prov;
    const curate_quant_config *qc = opt->quant;
    if (!st)
        st = curate_gguf_writer_add_str(w, "curate.version", curate_version(),
                                        strlen(curate_version()), err);
    if (qc) {
        const char *method = pv->method ? pv->method : curate_quant_method_name(qc->method);
        const char *tname = curate_ggml_type_name((uint32_t)es->block);
        if (!st)
            st = curate_gguf_writer_add_str(w, "curate.quant.method", method, strlen(method),
                                            err);
        if (!st)
            st = curate_gguf_writer_add_str(w, "curate.quant.type", tname, strlen(tname), err);
        if (!st)
            st = curate_gguf_writer_add_u32(w, "curate.quant.bits", qc->bits, err);
        if (!st)
            st = curate_gguf_writer_add_u32(w, "curate.quant.group_size",
                                            (uint32_t)qc->group_size, err);
        if (!st)
            st = curate_gguf_writer_add_bool(w, "curate.quant.sym", !qc->asym, err);
        if (!st)
            st = curate_gguf_writer_add_bool(w, "curate.quant.restricted",
                                             !qc->asym && qc->restricted, err);
        if (!st)
            st = curate_gguf_writer_add_u32(w, "curate.quant.tensors",
                                            (uint32_t)es->res.n_packed, err);
        if (!st)
            st = curate_gguf_writer_add_u32(w, "curate.quant.fallback_tensors",
                                            (uint32_t)es->res.n_fallback, err);
    }
    if (!st && pv->calib_source)
        st = curate_gguf_writer_add_str(w, "curate.calib.source", pv->calib_source,
                                        strlen(pv->calib_source), err);
    if (!st && pv->calib_sha256)
        st = curate_gguf_writer_add_str(w, "curate.calib.sha256", pv->calib_sha256, 64, err);
    if (!st && (pv->calib_source || pv->calib_sha256 || pv->calib_records || pv->calib_tokens)) {
        st = curate_gguf_writer_add_u64(w, "curate.calib.records", pv->calib_records, err);
        if (!st)
            st = curate_gguf_writer_add_u64(w, "curate.calib.tokens", pv->calib_tokens, err);
    }
    if (!st && pv->has_seed)
        st = curate_gguf_writer_add_u64(w, "curate.calib.seed", pv->calib_seed, err);
    for (size_t i = 0; i < pv->n_extra && !st; i++)
        st = curate_gguf_writer_add_str(w, pv->extra_keys[i], pv->extra_values[i],
                                        strlen(pv->extra_values[i]), err);
    return st;
}

/* A buffer the writer will read at write time; owned by es. */
static void *own_buf(export_state *es, size_t n, curate_error *err)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        curate_error_set(err, CURATE_ERR_NOMEM, "export: out of memory");
        return NULL;
    }
    es->bufs[es->n_bufs++] = p;
    return p;
}

/*
 * Pack one tensor and decode it again: the measurement uses the same
 * reference conversion curate's loader uses, so the report says what a
 * reader of the file will get, not what the packer meant to write.
 */
static curate_status export_packed(export_state *es, curate_gguf_writer *w,
                                   const curate_gguf_tensor *t, const curate_quant_out *qo,
                                   curate_export_tensor_report *rep, curate_error *err)
{
    size_t cols = (size_t)t->ne[0], rows = (size_t)(t->n_elements / t->ne[0]);
    uint64_t row_bytes;
    curate_status st = curate_ggml_row_size((uint32_t)es->block, t->ne[0], &row_bytes);
    if (st || row_bytes > SIZE_MAX / (rows ? rows : 1))
        return curate_error_set(err, CURATE_ERR_RANGE, "tensor '%s': too large", t->name);
    size_t n_bytes = (size_t)row_bytes * rows;
    unsigned char *buf = own_buf(es, n_bytes, err);
    float *row = buf ? malloc(cols * sizeof *row) : NULL;
    float *ref = row ? malloc(cols * sizeof *ref) : NULL;
    if (!ref) {
        free(row);
        return curate_error_set(err, CURATE_ERR_NOMEM, "export: out of memory");
    }
    st = curate_export_pack(es->block, qo->codes, qo->scales, qo->mins, rows, cols, buf,
                            &rep->codes_changed, err);
    if (st) {
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err ? err->message : "");
        st = curate_error_set(err, st, "tensor '%s': %s", t->name, msg);
    }
    blockfmt f = {0, 0, 0, 0, 0};
    (void)block_fmt(es->block, &f); /* es->block is a block type (checked) */
    size_t nb = cols / QK;
    for (size_t r = 0; r < rows && !st; r++) {
        st = curate_ggml_to_f32((uint32_t)es->block, buf + r * (size_t)row_bytes, row, cols);
        if (st) {
            st = curate_error_set(err, CURATE_ERR_INTERNAL, "tensor '%s': decode failed",
                                  t->name);
            break;
        }
        const float *want = qo->q ? qo->q + r * cols : ref;
        if (!qo->q)
            for (size_t j = 0; j < cols; j++) {
                float d = qo->scales[r * nb + j / QK];
                float q0 = (float)((int)qo->codes[r * cols + j] - f.off);
                ref[j] = f.asym ? q0 * d + qo->mins[r * nb + j / QK] : q0 * d;
            }
        st = measure_row(row, want, cols, rep, err);
    }
    free(row);
    free(ref);
    if (st)
        return st;
    rep->type = es->block;
    return curate_gguf_writer_add_tensor(w, t->name, es->block, t->n_dims ? t->n_dims : 1, t->ne,
                                         buf, n_bytes, err);
}

/*
 * F16 only when the source was F16: a model shipped in F16 should not grow
 * to F32 for one tensor, and one shipped in F32 (or BF16, whose range F16
 * cannot always hold) should not lose precision the evaluation did not see.
 */
static curate_status export_fallback(export_state *es, curate_gguf_writer *w,
                                     const curate_gguf_tensor *t, const curate_quant_out *qo,
                                     curate_export_tensor_report *rep, curate_error *err)
{
    curate_ggml_type type =
        t->type == CURATE_GGML_TYPE_F16 ? CURATE_GGML_TYPE_F16 : CURATE_GGML_TYPE_F32;
    size_t n = (size_t)t->n_elements, cols = (size_t)t->ne[0];
    uint64_t n_bytes;
    if (curate_ggml_row_size((uint32_t)type, t->n_elements, &n_bytes) || n > SIZE_MAX / 4)
        return curate_error_set(err, CURATE_ERR_RANGE, "tensor '%s': too large", t->name);
    const float *vals = qo->q;
    float *orig = NULL;
    curate_status st = CURATE_OK;
    if (es->opt->fallback_original) {
        orig = malloc(n * sizeof *orig);
        if (!orig)
            return curate_error_set(err, CURATE_ERR_NOMEM, "export: out of memory");
        st = curate_gguf_tensor_to_f32(t, orig, n, err);
        vals = orig;
    }
    void *buf = st ? NULL : own_buf(es, (size_t)n_bytes, err);
    float *row = buf ? malloc(cols * sizeof *row) : NULL;
    if (!st && !row)
        st = CURATE_ERR_NOMEM;
    if (!st && curate_ggml_from_f32((uint32_t)type, vals, buf, n))
        st = curate_error_set(err, CURATE_ERR_INTERNAL, "tensor '%s': conversion failed",
                              t->name);
    const float *want = qo->q ? qo->q : vals;
    size_t esz = curate_ggml_type_size((uint32_t)type);
    for (size_t r = 0; !st && r < n / cols; r++) {
        curate_ggml_to_f32((uint32_t)type, (const unsigned char *)buf + r * cols * esz, row,
                           cols);
        st = measure_row(row, want + r * cols, cols, rep, err);
    }
    free(row);
    free(orig);
    if (st)
        return st == CURATE_ERR_NOMEM ? curate_error_set(err, st, "export: out of memory") : st;
    rep->type = type;
    return curate_gguf_writer_add_tensor(w, t->name, type, t->n_dims ? t->n_dims : 1, t->ne, buf,
                                         (size_t)n_bytes, err);
}

curate_status curate_export_gguf(const curate_gguf *src, const curate_export_tensor *list,
                                 size_t n_list, const curate_export_options *opt,
                                 const char *path, curate_export_result *res,
                                 curate_error *err)
{
    curate_export_options defaults;
    if (res) {
        memset(res, 0, sizeof *res);
        res->file_type = UINT32_MAX;
    }
    if (!src || !path)
        return curate_error_set(err, CURATE_ERR_INVALID, "export: no model or no output path");
    if (!opt) {
        curate_export_options_init(&defaults);
        opt = &defaults;
    }
    size_t nt = curate_gguf_n_tensors(src);
    export_state es;
    memset(&es, 0, sizeof es);
    es.src = src;
    es.opt = opt;
    es.block = CURATE_GGML_TYPE_F32;
    es.plan = calloc(nt ? nt : 1, sizeof *es.plan);
    es.bufs = calloc(nt ? nt : 1, sizeof *es.bufs);
    es.res.tensors = calloc(nt ? nt : 1, sizeof *es.res.tensors);
    es.res.n_tensors = nt;
    curate_gguf_writer *w = NULL;
    curate_status st = CURATE_OK;
    if (!es.plan || !es.bufs || !es.res.tensors)
        st = curate_error_set(err, CURATE_ERR_NOMEM, "export: out of memory");
    if (!st)
        st = check_inputs(&es, list, n_list, err);
    if (!st && !(w = curate_gguf_writer_new(err)))
        st = err ? err->code : CURATE_ERR_NOMEM;

    for (size_t i = 0; i < nt && !st; i++) {
        es.res.n_packed += es.plan[i].quant && es.plan[i].packed;
        es.res.n_fallback += es.plan[i].quant && !es.plan[i].packed;
    }
    es.res.n_copied = nt - es.res.n_packed - es.res.n_fallback;
    es.res.block_type = es.block;
    if (!st)
        st = write_keys(&es, w, err);

    for (size_t i = 0; i < nt && !st; i++) {
        const curate_gguf_tensor *t = curate_gguf_tensor_at(src, i);
        curate_export_tensor_report *rep = &es.res.tensors[i];
        size_t nlen = strlen(t->name);
        if (!(rep->name = malloc(nlen + 1))) {
            st = curate_error_set(err, CURATE_ERR_NOMEM, "export: out of memory");
            break;
        }
        memcpy(rep->name, t->name, nlen + 1);
        rep->n_elements = t->n_elements;
        rep->type = t->type;
        const plan_entry *pe = &es.plan[i];
        if (!pe->quant) {
            /* Copied tensors point into the source mapping: nothing is
             * duplicated, the writer reads them at write time. */
            rep->kind = CURATE_EXPORT_COPIED;
            st = curate_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims ? t->n_dims : 1,
                                               t->ne, t->data, (size_t)t->n_bytes, err);
        } else if (pe->packed) {
            rep->kind = CURATE_EXPORT_PACKED;
            st = export_packed(&es, w, t, pe->quant, rep, err);
        } else {
            rep->kind = CURATE_EXPORT_FALLBACK;
            st = export_fallback(&es, w, t, pe->quant, rep, err);
        }
        if (rep->max_abs_diff > es.res.max_abs_diff)
            es.res.max_abs_diff = rep->max_abs_diff;
        es.res.codes_changed += rep->codes_changed;
    }
    if (!st)
        st = curate_gguf_writer_write(w, path, err);
    else if (err && err->file[0] == '\0')
        curate_error_at(err, path, 0);

    curate_gguf_writer_free(w);
    for (size_t i = 0; i < es.n_bufs; i++)
        free(es.bufs[i]);
    free(es.bufs);
    free(es.plan);
    if (!st && res)
        *res = es.res;
    else
        curate_export_result_release(&es.res);
    return st;
}
