/*
 * imatrix.c - importance-matrix files for llama-quantize (GGUF and the
 * legacy .dat); the layouts and their sources are in curate/imatrix.h.
 *
 * Entries keep the observers' double sums until the file is written, so
 * rounding to float happens once, at the end, as in llama.cpp.  Both
 * formats list entries sorted by name (byte order), which is what
 * llama.cpp's writers do too: the same inputs give the same bytes.
 */
#include "curate/imatrix.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "curate/gguf.h"

/* ggml's GGML_MAX_NAME: a tensor name must be shorter than this. */
#define GGML_NAME_MAX 64
#define SUFFIX_SUM2 ".in_sum2"
#define SUFFIX_COUNTS ".counts"

typedef struct entry {
    char *name;
    double *sums;     /* [n] sums of x^2 */
    size_t n;
    uint64_t count;   /* rows summed */
} entry;

struct curate_imatrix {
    entry *e;
    size_t n, cap;
};

/* ---- formats ---------------------------------------------------------------------- */

curate_imatrix_format curate_imatrix_format_from_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n >= 5 && strcasecmp(path + n - 5, ".gguf") == 0 ? CURATE_IMATRIX_GGUF
                                                            : CURATE_IMATRIX_DAT;
}

curate_status curate_imatrix_format_parse(const char *name, curate_imatrix_format *out,
                                          curate_error *err)
{
    if (name && !strcmp(name, "gguf")) {
        *out = CURATE_IMATRIX_GGUF;
        return CURATE_OK;
    }
    if (name && !strcmp(name, "dat")) {
        *out = CURATE_IMATRIX_DAT;
        return CURATE_OK;
    }
    return curate_error_set(err, CURATE_ERR_INVALID, "unknown imatrix format '%s' (gguf, dat)",
                            name ? name : "");
}

const char *curate_imatrix_format_name(curate_imatrix_format fmt)
{
    switch (fmt) {
    case CURATE_IMATRIX_GGUF: return "gguf";
    case CURATE_IMATRIX_DAT: return "dat";
    }
    return "?";
}

/* ---- entries ------------------------------------------------------------------------ */

curate_imatrix *curate_imatrix_new(curate_error *err)
{
    curate_imatrix *im = calloc(1, sizeof *im);
    if (!im)
        curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
    return im;
}

void curate_imatrix_free(curate_imatrix *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; i++) {
        free(im->e[i].name);
        free(im->e[i].sums);
    }
    free(im->e);
    free(im);
}

size_t curate_imatrix_n_entries(const curate_imatrix *im)
{
    return im ? im->n : 0;
}

/*
 * "blk.<digits>.<something>".  The check is on the name only: llama.cpp
 * matches imatrix entries to tensors by name, and an entry under another
 * name would be ignored by llama-quantize without a word.
 */
static int is_blk_name(const char *s)
{
    if (strncmp(s, "blk.", 4) != 0)
        return 0;
    s += 4;
    if (*s < '0' || *s > '9')
        return 0;
    while (*s >= '0' && *s <= '9')
        s++;
    return s[0] == '.' && s[1] != '\0';
}

curate_status curate_imatrix_add(curate_imatrix *im, const char *name, const double *sumsq,
                                 size_t n_channels, uint64_t count, curate_error *err)
{
    if (!im || !name || !sumsq)
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: NULL argument");
    if (!is_blk_name(name))
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "imatrix: '%s' is not a blk.* matrix (llama.cpp's imatrix "
                                "holds only the transformer blocks' weights)",
                                name);
    size_t len = strlen(name);
    if (len + sizeof SUFFIX_SUM2 > GGML_NAME_MAX)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "imatrix: name '%s' is too long for a ggml tensor name", name);
    if (n_channels == 0 || n_channels > INT32_MAX)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "imatrix: '%s': %zu channels (must be 1..%d)", name, n_channels,
                                INT32_MAX);
    for (size_t i = 0; i < im->n; i++)
        if (!strcmp(im->e[i].name, name))
            return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: '%s' added twice", name);
    /* A negative or NaN sum cannot come from squares; it would become a
     * negative importance in llama-quantize's weighted error. */
    for (size_t j = 0; j < n_channels; j++)
        if (!(sumsq[j] >= 0.0) || !isfinite(sumsq[j]))
            return curate_error_set(err, CURATE_ERR_RANGE,
                                    "imatrix: '%s': channel %zu has sum %g", name, j, sumsq[j]);
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 16;
        entry *e = realloc(im->e, cap * sizeof *e);
        if (!e)
            return curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
        im->e = e;
        im->cap = cap;
    }
    entry *e = &im->e[im->n];
    e->name = malloc(len + 1);
    e->sums = malloc(n_channels * sizeof *e->sums);
    if (!e->name || !e->sums) {
        free(e->name);
        free(e->sums);
        return curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
    }
    memcpy(e->name, name, len + 1);
    memcpy(e->sums, sumsq, n_channels * sizeof *e->sums);
    e->n = n_channels;
    e->count = count;
    im->n++;
    return CURATE_OK;
}

curate_status curate_imatrix_add_observer(curate_imatrix *im, uint32_t layer,
                                          curate_linear_input which,
                                          const curate_observer *obs, curate_error *err)
{
    static const char *const qkv[] = {"attn_q", "attn_k", "attn_v", NULL};
    static const char *const out[] = {"attn_output", NULL};
    static const char *const gate_up[] = {"ffn_gate", "ffn_up", NULL};
    static const char *const down[] = {"ffn_down", NULL};
    const char *const *names;
    switch (which) {
    case CURATE_LIN_ATTN_QKV: names = qkv; break;
    case CURATE_LIN_ATTN_OUT: names = out; break;
    case CURATE_LIN_FFN_GATE_UP: names = gate_up; break;
    case CURATE_LIN_FFN_DOWN: names = down; break;
    case CURATE_LIN_OUTPUT: return CURATE_OK;
    default:
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: unknown input %d",
                                (int)which);
    }
    if (!obs)
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: NULL observer");
    const double *s = curate_observer_sumsq(obs);
    if (!s)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "imatrix: the observer of block %u does not keep sums of squares",
                                layer);
    /* One entry per weight, as llama.cpp's collector makes one per matrix
     * product: llama-quantize looks each weight up by its own name. */
    for (size_t i = 0; names[i]; i++) {
        char name[GGML_NAME_MAX];
        snprintf(name, sizeof name, "blk.%u.%s.weight", layer, names[i]);
        curate_status st = curate_imatrix_add(im, name, s, curate_observer_cols(obs),
                                              curate_observer_rows(obs), err);
        if (st)
            return st;
    }
    return CURATE_OK;
}

/* ---- writing ------------------------------------------------------------------------- */

static int cmp_entry_ptr(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    return strcmp(x->name, y->name);
}

/* Entries sorted by name, as an array of pointers the caller frees. */
static const entry **sorted(const curate_imatrix *im, curate_error *err)
{
    const entry **v = malloc((im->n ? im->n : 1) * sizeof *v);
    if (!v) {
        curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < im->n; i++)
        v[i] = &im->e[i];
    qsort(v, im->n, sizeof *v, cmp_entry_ptr);
    return v;
}

/* The file holds floats; a sum beyond float's range is an error, not an inf
 * that llama-quantize would turn into NaN weights. */
static curate_status to_float(double v, const char *name, float *out, curate_error *err)
{
    if (!(fabs(v) <= (double)FLT_MAX))
        return curate_error_set(err, CURATE_ERR_RANGE, "imatrix: '%s': %g does not fit a float",
                                name, v);
    *out = (float)v;
    return CURATE_OK;
}

/*
 * Key order and tensor order as llama.cpp's save_imatrix writes them, so a
 * file from curate and one from llama-imatrix on the same data differ only
 * in the numbers.  Both tensors are 2-D ([n, 1] and [1, 1]): the second
 * dimension is the expert count of MoE models, 1 for dense ones.
 */
static curate_status build_gguf(const entry **v, size_t n, const curate_imatrix_meta *meta,
                                curate_gguf_writer *w, curate_error *err)
{
    curate_status st = curate_gguf_writer_add_str(w, "general.type", "imatrix", 7, err);
    if (!st)
        st = curate_gguf_writer_add_str_array(w, "imatrix.datasets", meta->datasets, NULL,
                                              meta->n_datasets, err);
    if (!st)
        st = curate_gguf_writer_add_u32(w, "imatrix.chunk_count", meta->chunk_count, err);
    if (!st)
        st = curate_gguf_writer_add_u32(w, "imatrix.chunk_size", meta->chunk_size, err);
    for (size_t i = 0; i < n && !st; i++) {
        const entry *e = v[i];
        char name[GGML_NAME_MAX];
        float *vals = malloc(e->n * sizeof *vals);
        if (!vals)
            return curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
        for (size_t j = 0; j < e->n && !st; j++)
            st = to_float(e->sums[j], e->name, &vals[j], err);
        float cnt = (float)e->count;
        uint64_t ne_sum[2] = {e->n, 1}, ne_cnt[2] = {1, 1};
        if (!st) {
            snprintf(name, sizeof name, "%s" SUFFIX_SUM2, e->name);
            st = curate_gguf_writer_add_tensor_f32(w, name, CURATE_GGML_TYPE_F32, 2, ne_sum,
                                                   vals, err);
        }
        if (!st) {
            snprintf(name, sizeof name, "%s" SUFFIX_COUNTS, e->name);
            st = curate_gguf_writer_add_tensor_f32(w, name, CURATE_GGML_TYPE_F32, 2, ne_cnt,
                                                   &cnt, err);
        }
        free(vals);
    }
    return st;
}

static curate_status put_i32(curate_buf *b, uint64_t v, const char *what, curate_error *err)
{
    if (v > INT32_MAX)
        return curate_error_set(err, CURATE_ERR_RANGE, "imatrix: %s %llu does not fit int32",
                                what, (unsigned long long)v);
    int32_t x = (int32_t)v;
    if (curate_buf_append(b, &x, sizeof x))
        return curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
    return CURATE_OK;
}

/*
 * The legacy layout has no version field and no way to mark an entry as
 * empty, so entries without data are left out (as llama.cpp does) rather
 * than written with a zero ncall that readers would divide by.
 */
static curate_status build_dat(const entry **v, size_t n, const curate_imatrix_meta *meta,
                               curate_buf *out, curate_error *err)
{
    size_t n_data = 0;
    for (size_t i = 0; i < n; i++)
        n_data += v[i]->count > 0;
    if (n_data == 0)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "imatrix: no entry has data (every count is 0)");
    curate_status st = put_i32(out, n_data, "entry count", err);
    for (size_t i = 0; i < n && !st; i++) {
        const entry *e = v[i];
        if (e->count == 0)
            continue;
        /* ncall: the chunks the entry's rows span, rounded up, as llama.cpp
         * writes it; the values are the mean square times ncall, so that the
         * reader's division by ncall gives the mean back. */
        uint64_t ncall = e->count / meta->chunk_size + (e->count % meta->chunk_size != 0);
        size_t len = strlen(e->name);
        st = put_i32(out, len, "name length", err);
        if (!st && curate_buf_append(out, e->name, len))
            st = curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
        if (!st)
            st = put_i32(out, ncall, "call count", err);
        if (!st)
            st = put_i32(out, e->n, "value count", err);
        for (size_t j = 0; j < e->n && !st; j++) {
            float f;
            st = to_float(e->sums[j] / (double)e->count * (double)ncall, e->name, &f, err);
            if (!st && curate_buf_append(out, &f, sizeof f))
                st = curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
        }
    }
    const char *ds = meta->n_datasets ? meta->datasets[meta->n_datasets - 1] : "";
    size_t dlen = strlen(ds);
    if (!st)
        st = put_i32(out, meta->chunk_count, "chunk count", err);
    if (!st)
        st = put_i32(out, dlen, "dataset name length", err);
    if (!st && curate_buf_append(out, ds, dlen))
        st = curate_error_set(err, CURATE_ERR_NOMEM, "imatrix: out of memory");
    return st;
}

static curate_status check_meta(const curate_imatrix *im, const curate_imatrix_meta *meta,
                                curate_imatrix_format fmt, curate_error *err)
{
    if (!im || !meta)
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: NULL argument");
    if (fmt != CURATE_IMATRIX_GGUF && fmt != CURATE_IMATRIX_DAT)
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: unknown format %d", (int)fmt);
    if (im->n == 0)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "imatrix: no entries (llama-quantize refuses an empty imatrix)");
    if (meta->chunk_size == 0)
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: chunk_size must be at least 1");
    if (meta->n_datasets && !meta->datasets)
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: NULL dataset list");
    for (size_t i = 0; i < meta->n_datasets; i++)
        if (!meta->datasets[i])
            return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: dataset %zu is NULL", i);
    return CURATE_OK;
}

/* Build the file image: into out (DAT) or into a writer (GGUF), one of them. */
static curate_status build(const curate_imatrix *im, const curate_imatrix_meta *meta,
                           curate_imatrix_format fmt, curate_buf *out, curate_gguf_writer *w,
                           curate_error *err)
{
    curate_status st = check_meta(im, meta, fmt, err);
    if (st)
        return st;
    const entry **v = sorted(im, err);
    if (!v)
        return CURATE_ERR_NOMEM;
    st = fmt == CURATE_IMATRIX_GGUF ? build_gguf(v, im->n, meta, w, err)
                                    : build_dat(v, im->n, meta, out, err);
    free(v);
    return st;
}

curate_status curate_imatrix_write_buf(const curate_imatrix *im,
                                       const curate_imatrix_meta *meta,
                                       curate_imatrix_format fmt, curate_buf *out,
                                       curate_error *err)
{
    if (fmt != CURATE_IMATRIX_GGUF)
        return build(im, meta, fmt, out, NULL, err);
    curate_gguf_writer *w = curate_gguf_writer_new(err);
    if (!w)
        return CURATE_ERR_NOMEM;
    curate_status st = build(im, meta, fmt, NULL, w, err);
    if (!st)
        st = curate_gguf_writer_write_buf(w, out, err);
    curate_gguf_writer_free(w);
    return st;
}

/*
 * bytes to path through a temporary file in the same directory and
 * rename(), so no reader sees a half-written file: the legacy format has
 * no checksum, and a file cut inside its optional trailer still parses.
 */
static curate_status write_file_atomic(const char *path, const void *data, size_t n,
                                       curate_error *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        curate_status st = curate_error_set(err, CURATE_ERR_IO,
                                            "cannot create a temporary file next to it: %s",
                                            strerror(errno));
        free(tmp);
        return st;
    }
    (void)fchmod(fd, 0644);
    curate_status st = CURATE_OK;
    const char *p = data;
    while (n > 0 && !st) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            st = curate_error_set(err, CURATE_ERR_IO, "write failed: %s", strerror(errno));
        else {
            p += k;
            n -= (size_t)k;
        }
    }
    if (close(fd) != 0 && !st)
        st = curate_error_set(err, CURATE_ERR_IO, "write failed: %s", strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = curate_error_set(err, CURATE_ERR_IO, "cannot rename the temporary file: %s",
                              strerror(errno));
    if (st)
        unlink(tmp);
    free(tmp);
    return st;
}

curate_status curate_imatrix_write(const curate_imatrix *im, const curate_imatrix_meta *meta,
                                   curate_imatrix_format fmt, const char *path,
                                   curate_error *err)
{
    if (!path)
        return curate_error_set(err, CURATE_ERR_INVALID, "imatrix: no output path");
    curate_status st;
    if (fmt == CURATE_IMATRIX_GGUF) {
        curate_gguf_writer *w = curate_gguf_writer_new(err);
        if (!w)
            return CURATE_ERR_NOMEM;
        st = build(im, meta, fmt, NULL, w, err);
        if (!st)
            st = curate_gguf_writer_write(w, path, err);
        curate_gguf_writer_free(w);
    } else {
        curate_buf b;
        curate_buf_init(&b);
        st = build(im, meta, fmt, &b, NULL, err);
        if (!st)
            st = write_file_atomic(path, b.data, b.len, err);
        curate_buf_release(&b);
    }
    if (st)
        curate_error_at(err, path, 0);
    return st;
}
