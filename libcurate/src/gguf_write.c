/*
 * gguf_write.c - the GGUF writer.
 *
 * Metadata is serialized as it is added, into one buffer, so nested arrays
 * need only a small stack of "where is this array's count" positions that
 * end_array patches.  Tensors are remembered (name, shape, pointer) and laid
 * out at write time, each at the next multiple of the alignment and padded
 * after, as llama.cpp lays them out, so the file size is a multiple of the
 * alignment too.
 *
 * One serializer feeds two sinks (a curate_buf or a FILE), so the bytes of
 * write_buf and write are the same by construction.
 */
#include "curate/gguf.h"

#include "ggml_types.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRITER_MAX_NESTING 64
#define WRITER_MAX_NAME 63 /* llama.cpp's GGML_MAX_NAME is 64 including the NUL */

typedef struct open_array {
    size_t count_pos;   /* where the u64 count sits in kv */
    uint32_t elem_type;
    uint64_t count;
} open_array;

/*
 * Tensor data is borrowed (the caller's buffer, often another file's
 * mapping) rather than copied: exporting a model would otherwise hold every
 * weight twice.  Only data the writer converted itself is owned.
 */
typedef struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[4];
    const void *data;   /* borrowed, or == owned */
    uint64_t n_bytes;
    void *owned;        /* converted data the writer allocated */
} wtensor;

struct curate_gguf_writer {
    uint32_t version;
    uint32_t alignment;
    curate_buf kv;      /* serialized key/value pairs */
    size_t n_kv;
    char **keys;        /* for duplicate checks */
    size_t cap_keys;
    open_array stack[WRITER_MAX_NESTING];
    int depth;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    int broken;         /* an append failed half way: refuse to write */
};

curate_gguf_writer *curate_gguf_writer_new(curate_error *err)
{
    curate_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    w->version = 3;
    w->alignment = 32;
    curate_buf_init(&w->kv);
    return w;
}

void curate_gguf_writer_free(curate_gguf_writer *w)
{
    if (!w)
        return;
    curate_buf_release(&w->kv);
    for (size_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].owned);
    }
    free(w->tensors);
    free(w);
}

curate_status curate_gguf_writer_set_version(curate_gguf_writer *w, uint32_t version,
                                             curate_error *err)
{
    if (version != 2 && version != 3)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "GGUF version %u cannot be written (2 or 3)", version);
    w->version = version;
    return CURATE_OK;
}

/* ---- serialization helpers ------------------------------------------------------- */

static curate_status put(curate_gguf_writer *w, const void *p, size_t n, curate_error *err)
{
    if (curate_buf_append(&w->kv, p, n)) {
        w->broken = 1;
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    }
    return CURATE_OK;
}

static curate_status put_u32(curate_gguf_writer *w, uint32_t v, curate_error *err)
{
    return put(w, &v, 4, err);
}

static curate_status put_u64(curate_gguf_writer *w, uint64_t v, curate_error *err)
{
    return put(w, &v, 8, err);
}

static curate_status put_str(curate_gguf_writer *w, const char *s, size_t len, curate_error *err)
{
    curate_status st = put_u64(w, (uint64_t)len, err);
    return st ? st : put(w, s, len, err);
}

/* Linear: files have tens of keys, and only the writer pays for it. */
static int has_key(const curate_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return 1;
    return 0;
}

/*
 * Start a value of type: with a key, a new top-level pair (key + type
 * tag); without, the next element of the innermost open array, which must
 * hold this type.  The caller then appends the payload.
 */
static curate_status begin_value(curate_gguf_writer *w, const char *key, uint32_t type,
                                 curate_error *err)
{
    if (w->broken)
        return curate_error_set(err, CURATE_ERR_NOMEM, "writer failed earlier (out of memory)");
    if (!key) {
        if (w->depth == 0)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "a value without a key needs an open array");
        open_array *a = &w->stack[w->depth - 1];
        if (a->elem_type != type)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "array of %s cannot take a %s element",
                                    curate_gguf_type_name(a->elem_type),
                                    curate_gguf_type_name(type));
        a->count++;
        return CURATE_OK;
    }
    if (w->depth > 0)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "key '%s' added while an array is open", key);
    if (has_key(w, key))
        return curate_error_set(err, CURATE_ERR_INVALID, "duplicate key '%s'", key);
    if (w->n_kv == w->cap_keys) {
        size_t cap = w->cap_keys ? 2 * w->cap_keys : 16;
        char **nk = realloc(w->keys, cap * sizeof *nk);
        if (!nk)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        w->keys = nk;
        w->cap_keys = cap;
    }
    char *copy = strdup(key);
    if (!copy)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    curate_status st = put_str(w, key, strlen(key), err);
    if (!st)
        st = put_u32(w, type, err);
    if (st) {
        free(copy);
        return st;
    }
    w->keys[w->n_kv++] = copy;
    return CURATE_OK;
}

static curate_status add_scalar(curate_gguf_writer *w, const char *key, uint32_t type,
                                const void *v, curate_error *err)
{
    curate_status st = begin_value(w, key, type, err);
    return st ? st : put(w, v, curate_gguf_type_size(type), err);
}

curate_status curate_gguf_writer_add_u8(curate_gguf_writer *w, const char *key, uint8_t v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_UINT8, &v, err);
}
curate_status curate_gguf_writer_add_i8(curate_gguf_writer *w, const char *key, int8_t v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_INT8, &v, err);
}
curate_status curate_gguf_writer_add_u16(curate_gguf_writer *w, const char *key, uint16_t v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_UINT16, &v, err);
}
curate_status curate_gguf_writer_add_i16(curate_gguf_writer *w, const char *key, int16_t v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_INT16, &v, err);
}
curate_status curate_gguf_writer_add_i32(curate_gguf_writer *w, const char *key, int32_t v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_INT32, &v, err);
}
curate_status curate_gguf_writer_add_u64(curate_gguf_writer *w, const char *key, uint64_t v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_UINT64, &v, err);
}
curate_status curate_gguf_writer_add_i64(curate_gguf_writer *w, const char *key, int64_t v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_INT64, &v, err);
}
curate_status curate_gguf_writer_add_f32(curate_gguf_writer *w, const char *key, float v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_FLOAT32, &v, err);
}
curate_status curate_gguf_writer_add_f64(curate_gguf_writer *w, const char *key, double v, curate_error *err)
{
    return add_scalar(w, key, CURATE_GGUF_TYPE_FLOAT64, &v, err);
}
curate_status curate_gguf_writer_add_bool(curate_gguf_writer *w, const char *key, int v, curate_error *err)
{
    uint8_t b = v != 0;
    return add_scalar(w, key, CURATE_GGUF_TYPE_BOOL, &b, err);
}

curate_status curate_gguf_writer_add_u32(curate_gguf_writer *w, const char *key, uint32_t v,
                                         curate_error *err)
{
    /* general.alignment decides the layout: validate it where it enters */
    if (key && !strcmp(key, "general.alignment")) {
        if (v == 0 || (v & (v - 1u)) != 0)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "general.alignment %u is not a nonzero power of two", v);
        curate_status st = add_scalar(w, key, CURATE_GGUF_TYPE_UINT32, &v, err);
        if (!st)
            w->alignment = v;
        return st;
    }
    return add_scalar(w, key, CURATE_GGUF_TYPE_UINT32, &v, err);
}

curate_status curate_gguf_writer_set_alignment(curate_gguf_writer *w, uint32_t alignment,
                                               curate_error *err)
{
    return curate_gguf_writer_add_u32(w, "general.alignment", alignment, err);
}

/*
 * general.alignment decides where every tensor goes, so it may only enter
 * as a uint32 through add_u32, which validates it and records it for the
 * layout; any other type under that key would give a file readers refuse.
 */
static curate_status check_not_alignment(const char *key, uint32_t type, curate_error *err)
{
    if (key && !strcmp(key, "general.alignment") && type != CURATE_GGUF_TYPE_UINT32)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "general.alignment must be a uint32, not %s",
                                curate_gguf_type_name(type));
    return CURATE_OK;
}

curate_status curate_gguf_writer_add_str(curate_gguf_writer *w, const char *key, const char *s,
                                         size_t len, curate_error *err)
{
    curate_status st = check_not_alignment(key, CURATE_GGUF_TYPE_STRING, err);
    if (!st)
        st = begin_value(w, key, CURATE_GGUF_TYPE_STRING, err);
    return st ? st : put_str(w, s, len, err);
}

curate_status curate_gguf_writer_begin_array(curate_gguf_writer *w, const char *key,
                                             curate_gguf_type elem_type, curate_error *err)
{
    if ((uint32_t)elem_type > CURATE_GGUF_TYPE_FLOAT64)
        return curate_error_set(err, CURATE_ERR_INVALID, "unknown array element type %u",
                                (unsigned)elem_type);
    if (w->depth >= WRITER_MAX_NESTING)
        return curate_error_set(err, CURATE_ERR_INVALID, "arrays nested deeper than %d",
                                WRITER_MAX_NESTING);
    curate_status st = check_not_alignment(key, CURATE_GGUF_TYPE_ARRAY, err);
    if (!st)
        st = begin_value(w, key, CURATE_GGUF_TYPE_ARRAY, err);
    if (!st)
        st = put_u32(w, (uint32_t)elem_type, err);
    if (st)
        return st;
    open_array *a = &w->stack[w->depth];
    a->count_pos = w->kv.len;
    a->elem_type = (uint32_t)elem_type;
    a->count = 0;
    if ((st = put_u64(w, 0, err)))
        return st;
    w->depth++;
    return CURATE_OK;
}

curate_status curate_gguf_writer_end_array(curate_gguf_writer *w, curate_error *err)
{
    if (w->depth == 0)
        return curate_error_set(err, CURATE_ERR_INVALID, "end_array without an open array");
    open_array *a = &w->stack[--w->depth];
    memcpy(w->kv.data + a->count_pos, &a->count, 8);
    return CURATE_OK;
}

curate_status curate_gguf_writer_add_array(curate_gguf_writer *w, const char *key,
                                           curate_gguf_type elem_type, const void *elems,
                                           size_t n, curate_error *err)
{
    size_t sz = curate_gguf_type_size(elem_type);
    if (!sz)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "add_array takes scalar elements, not %s",
                                curate_gguf_type_name(elem_type));
    if (n > SIZE_MAX / sz)
        return curate_error_set(err, CURATE_ERR_RANGE, "array too large");
    curate_status st = curate_gguf_writer_begin_array(w, key, elem_type, err);
    if (st)
        return st;
    if (n && (st = put(w, elems, n * sz, err)))
        return st;
    w->stack[w->depth - 1].count = n;
    return curate_gguf_writer_end_array(w, err);
}

curate_status curate_gguf_writer_add_str_array(curate_gguf_writer *w, const char *key,
                                               const char *const *strs, const size_t *lens,
                                               size_t n, curate_error *err)
{
    curate_status st = curate_gguf_writer_begin_array(w, key, CURATE_GGUF_TYPE_STRING, err);
    for (size_t i = 0; !st && i < n; i++) {
        size_t len = lens ? lens[i] : strlen(strs[i]);
        st = curate_gguf_writer_add_str(w, NULL, strs[i], len, err);
    }
    if (st) {
        /* leave no half-built array behind: the buffer is inconsistent now */
        w->broken = 1;
        return st;
    }
    return curate_gguf_writer_end_array(w, err);
}

/*
 * Serialize v's payload (no key, no type tag) as the writer's next bytes.
 * Scalars and scalar arrays are copied as stored, so a copied value is
 * bit-identical to the source (bool bytes other than 0/1 included).
 */
static curate_status put_payload(curate_gguf_writer *w, const curate_gguf_value *v, int depth,
                                 curate_error *err)
{
    size_t sz = curate_gguf_type_size(v->type);
    if (sz)
        return put(w, v->data, sz, err);
    if (v->type == CURATE_GGUF_TYPE_STRING)
        return put_str(w, v->data, (size_t)v->len, err);
    if (v->type != CURATE_GGUF_TYPE_ARRAY || depth >= WRITER_MAX_NESTING)
        return curate_error_set(err, CURATE_ERR_INVALID, "cannot copy a value of type %u",
                                (unsigned)v->type);
    curate_status st = put_u32(w, (uint32_t)v->elem_type, err);
    if (!st)
        st = put_u64(w, v->len, err);
    if (st)
        return st;
    size_t esz = curate_gguf_type_size(v->elem_type);
    if (esz) {
        if (v->len > SIZE_MAX / esz)
            return curate_error_set(err, CURATE_ERR_RANGE, "array too large");
        return put(w, v->data, (size_t)v->len * esz, err);
    }
    for (uint64_t i = 0; i < v->len; i++) {
        if (!v->elems)
            return curate_error_set(err, CURATE_ERR_INVALID, "array view without elements");
        if ((st = put_payload(w, &v->elems[i], depth + 1, err)))
            return st;
    }
    return CURATE_OK;
}

curate_status curate_gguf_writer_add_value(curate_gguf_writer *w, const char *key,
                                           const curate_gguf_value *v, curate_error *err)
{
    if (!v)
        return curate_error_set(err, CURATE_ERR_INVALID, "no value");
    if (key && !strcmp(key, "general.alignment")) {
        uint32_t a;
        if (v->type != CURATE_GGUF_TYPE_UINT32)
            return check_not_alignment(key, v->type, err);
        memcpy(&a, v->data, 4);
        return curate_gguf_writer_add_u32(w, key, a, err);
    }
    curate_status st = begin_value(w, key, v->type, err);
    if (st)
        return st;
    if ((st = put_payload(w, v, 0, err)))
        w->broken = 1;
    return st;
}

/* ---- tensors ------------------------------------------------------------------------ */

/*
 * The writer is stricter than the reader: what it writes must load in
 * llama.cpp too, so names are limited to ggml's 63 bytes and n_dims to 1..4.
 */
static curate_status check_tensor(const curate_gguf_writer *w, const char *name, uint32_t type,
                                  uint32_t n_dims, const uint64_t *ne, uint64_t *n_elements,
                                  uint64_t *n_bytes, curate_error *err)
{
    if (!name)
        return curate_error_set(err, CURATE_ERR_INVALID, "tensor without a name");
    if (strlen(name) > WRITER_MAX_NAME)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "tensor name '%s' is longer than %d bytes", name,
                                WRITER_MAX_NAME);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return curate_error_set(err, CURATE_ERR_INVALID, "duplicate tensor name '%s'", name);
    if (!curate_ggml_type_known(type))
        return curate_error_set(err, CURATE_ERR_INVALID, "tensor '%s': unknown type %u", name,
                                type);
    if (n_dims < 1 || n_dims > 4)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "tensor '%s': %u dimensions (1 to 4 allowed)", name, n_dims);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] > (uint64_t)INT64_MAX || (ne[d] && n > (uint64_t)INT64_MAX / ne[d]))
            return curate_error_set(err, CURATE_ERR_RANGE,
                                    "tensor '%s': dimensions overflow", name);
        n *= ne[d];
    }
    uint32_t bs = curate_ggml_block_size(type);
    if (ne[0] % bs)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "tensor '%s': row length %llu is not a multiple of the %s block "
                                "size %u",
                                name, (unsigned long long)ne[0], curate_ggml_type_name(type), bs);
    curate_status st = curate_ggml_row_size(type, n, n_bytes);
    if (st)
        return curate_error_set(err, st, "tensor '%s': data size overflows", name);
    if (*n_bytes > SIZE_MAX)
        return curate_error_set(err, CURATE_ERR_RANGE, "tensor '%s' too large", name);
    *n_elements = n;
    return CURATE_OK;
}

static curate_status push_tensor(curate_gguf_writer *w, const char *name, uint32_t type,
                                 uint32_t n_dims, const uint64_t *ne, const void *data,
                                 uint64_t n_bytes, void *owned, curate_error *err)
{
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        wtensor *nt = realloc(w->tensors, cap * sizeof *nt);
        if (!nt)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < 4; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->n_bytes = n_bytes;
    t->owned = owned;
    w->n_tensors++;
    return CURATE_OK;
}

curate_status curate_gguf_writer_add_tensor(curate_gguf_writer *w, const char *name,
                                            curate_ggml_type type, uint32_t n_dims,
                                            const uint64_t *ne, const void *data,
                                            size_t n_bytes, curate_error *err)
{
    uint64_t n_el, want;
    curate_status st = check_tensor(w, name, (uint32_t)type, n_dims, ne, &n_el, &want, err);
    if (st)
        return st;
    if (want != n_bytes)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "tensor '%s': %zu bytes given, %s of this shape needs %llu", name,
                                n_bytes, curate_ggml_type_name(type), (unsigned long long)want);
    if (n_bytes && !data)
        return curate_error_set(err, CURATE_ERR_INVALID, "tensor '%s': no data", name);
    return push_tensor(w, name, (uint32_t)type, n_dims, ne, data, n_bytes, NULL, err);
}

curate_status curate_gguf_writer_add_tensor_f32(curate_gguf_writer *w, const char *name,
                                                curate_ggml_type type, uint32_t n_dims,
                                                const uint64_t *ne, const float *src,
                                                curate_error *err)
{
    uint64_t n_el, n_bytes;
    curate_status st = check_tensor(w, name, (uint32_t)type, n_dims, ne, &n_el, &n_bytes, err);
    if (st)
        return st;
    if (!curate_ggml_type_convertible((uint32_t)type))
        return curate_error_set(err, CURATE_ERR_UNSUPPORTED,
                                "tensor '%s': cannot convert f32 to %s", name,
                                curate_ggml_type_name(type));
    void *buf = malloc(n_bytes ? (size_t)n_bytes : 1);
    if (!buf)
        return curate_error_set(err, CURATE_ERR_NOMEM, "tensor '%s': out of memory", name);
    if (n_el && (st = curate_ggml_from_f32((uint32_t)type, src, buf, (size_t)n_el))) {
        free(buf);
        return curate_error_set(err, st, "tensor '%s': conversion failed", name);
    }
    st = push_tensor(w, name, (uint32_t)type, n_dims, ne, buf, n_bytes, buf, err);
    if (st)
        free(buf);
    return st;
}

/* ---- output ---------------------------------------------------------------------------- */

/* Where serialized bytes go: a memory buffer or a stdio stream. */
typedef struct sink {
    curate_buf *buf;
    FILE *fp;
    int failed;
    int errnum;
} sink;

static void emit(sink *s, const void *p, size_t n)
{
    if (s->failed || n == 0)
        return;
    if (s->buf) {
        if (curate_buf_append(s->buf, p, n))
            s->failed = 1;
    } else if (fwrite(p, 1, n, s->fp) != n) {
        s->failed = 1;
        s->errnum = errno;
    }
}

static void emit_zeros(sink *s, uint64_t n)
{
    static const unsigned char zeros[64];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        emit(s, zeros, k);
        n -= k;
    }
}

static uint64_t pad_to(uint64_t pos, uint64_t a)
{
    return (a - pos % a) % a;
}

/*
 * Offsets are computed in the same pass that writes the tensor infos, with
 * the same padding rule used for the data below, so the two cannot drift.
 */
static curate_status serialize(curate_gguf_writer *w, sink *s, curate_error *err)
{
    if (w->broken)
        return curate_error_set(err, CURATE_ERR_NOMEM, "writer failed earlier (out of memory)");
    if (w->depth > 0)
        return curate_error_set(err, CURATE_ERR_INVALID, "an array is still open");
    uint32_t magic = 0x46554747u, version = w->version;
    uint64_t n_tensors = w->n_tensors, n_kv = w->n_kv;
    emit(s, &magic, 4);
    emit(s, &version, 4);
    emit(s, &n_tensors, 8);
    emit(s, &n_kv, 8);
    emit(s, w->kv.data, w->kv.len);
    uint64_t pos = 24 + (uint64_t)w->kv.len;
    uint64_t offset = 0; /* data offset of the next tensor */
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        emit(s, &len, 8);
        emit(s, t->name, (size_t)len);
        emit(s, &t->n_dims, 4);
        emit(s, t->ne, 8 * (size_t)t->n_dims);
        emit(s, &t->type, 4);
        emit(s, &offset, 8);
        pos += 8 + len + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
        offset += t->n_bytes + pad_to(t->n_bytes, w->alignment);
    }
    emit_zeros(s, pad_to(pos, w->alignment));
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        emit(s, t->data, (size_t)t->n_bytes);
        emit_zeros(s, pad_to(t->n_bytes, w->alignment));
    }
    if (s->failed && s->buf)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    if (s->failed)
        return curate_error_set(err, CURATE_ERR_IO, "write failed: %s", strerror(s->errnum));
    return CURATE_OK;
}

curate_status curate_gguf_writer_write_buf(curate_gguf_writer *w, curate_buf *out,
                                           curate_error *err)
{
    sink s = {out, NULL, 0, 0};
    return serialize(w, &s, err);
}

curate_status curate_gguf_writer_write(curate_gguf_writer *w, const char *path,
                                       curate_error *err)
{
    curate_error_at(err, path, 0);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    /* Same directory as the target so rename() is atomic (same filesystem). */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        curate_status st = curate_error_set(err, CURATE_ERR_IO,
                                            "cannot create a temporary file next to it: %s",
                                            strerror(errno));
        free(tmp);
        return st;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; a model file is for sharing */
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        curate_status st = curate_error_set(err, CURATE_ERR_IO, "cannot open: %s",
                                            strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    sink s = {NULL, fp, 0, 0};
    curate_status st = serialize(w, &s, err);
    if (fclose(fp) != 0 && !st)
        st = curate_error_set(err, CURATE_ERR_IO, "write failed: %s", strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = curate_error_set(err, CURATE_ERR_IO, "cannot rename the temporary file: %s",
                              strerror(errno));
    if (st)
        unlink(tmp);
    free(tmp);
    return st;
}
