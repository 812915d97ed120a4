/*
 * curate/gguf.h - read and write GGUF model files, and the ggml weight
 * types they hold.
 *
 * GGUF (the llama.cpp/ggml model container) is, in order, all little-endian:
 *
 *   u32 magic "GGUF", u32 version (2 or 3), u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 value type, value },
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *                 u64 offset (relative to the data section) },
 *   zero padding up to general.alignment (default 32), the data section.
 *
 * A string is u64 length + bytes (no NUL); an array is u32 element type +
 * u64 count + elements, and an element may itself be an array (nested
 * arrays carry their own element type and count).
 *
 * Reading: curate_gguf_open() maps the file read-only and validates the
 * whole header before returning: every length, count and offset is checked
 * against the file size with overflow-checked 64-bit arithmetic, so once a
 * handle exists every accessor below is safe on any input.  Strings and
 * tensor data point into the mapping and stay valid until
 * curate_gguf_close().  Version 1 files are refused (CURATE_ERR_UNSUPPORTED).
 *
 * Writing: a curate_gguf_writer collects metadata and tensors and writes a
 * GGUF v3 file (v2 on request) through a temporary file and rename().
 * What it writes, the reader reads back bit for bit.
 *
 * Errors: corrupt input gives CURATE_ERR_FORMAT, a valid but unsupported
 * input (version, tensor type this build cannot convert) gives
 * CURATE_ERR_UNSUPPORTED; the curate_error names the problem and carries
 * the byte offset in the file where it was found.
 *
 * Thread safety: an open curate_gguf is immutable; any number of threads
 * may read it concurrently.  A writer belongs to one thread.  The ggml type
 * functions are pure and reentrant.
 *
 * The host must be little-endian (the build refuses others).
 */
#ifndef CURATE_GGUF_H
#define CURATE_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* ggml tensor types                                                         */
/* ------------------------------------------------------------------------ */

/*
 * Tensor element types, numbered as in ggml (the number is what the file
 * stores).  A block type packs block_size elements into type_size bytes;
 * plain types have block_size 1.  The enum lists the types this build can
 * convert to and from F32.  Every other current ggml type (q5_0, q2_K ..
 * q8_K, the iq types, i8..i64, f64, tq1_0, tq2_0, mxfp4: numbers up to 39)
 * is known by name and size only: files holding them open and validate,
 * their tensors can be copied through the writer, and converting them
 * gives CURATE_ERR_UNSUPPORTED.  Any other number in a file is an
 * "unknown tensor type" error.
 */
typedef enum curate_ggml_type {
    CURATE_GGML_TYPE_F32 = 0,   /* IEEE binary32 */
    CURATE_GGML_TYPE_F16 = 1,   /* IEEE binary16 */
    CURATE_GGML_TYPE_Q4_0 = 2,  /* 32 elements: f16 d, 16 bytes of nibbles; x = (q-8)*d */
    CURATE_GGML_TYPE_Q4_1 = 3,  /* 32 elements: f16 d, f16 m, 16 bytes; x = q*d + m */
    CURATE_GGML_TYPE_Q8_0 = 8,  /* 32 elements: f16 d, 32 x int8; x = q*d */
    CURATE_GGML_TYPE_BF16 = 30  /* bfloat16: the top 16 bits of a binary32 */
} curate_ggml_type;

/* 1 if type is a ggml type this build knows the size of (see above). */
int curate_ggml_type_known(uint32_t type);

/* ggml's name: "f32", "f16", "q4_0", "q8_0", "bf16", "q6_K", ...; NULL if unknown. */
const char *curate_ggml_type_name(uint32_t type);

/* Elements per block (1 for F32/F16/BF16, 32 for Q4_0/Q8_0, 256 for K types); 0 if unknown. */
uint32_t curate_ggml_block_size(uint32_t type);

/* Bytes per block (f32 4, f16 2, q4_0 18, q4_1 20, q8_0 34, bf16 2, ...); 0 if unknown. */
uint32_t curate_ggml_type_size(uint32_t type);

/*
 * Bytes needed for n elements of type: CURATE_ERR_INVALID for an unknown
 * type or n not a multiple of the block size, CURATE_ERR_RANGE on overflow.
 */
curate_status curate_ggml_row_size(uint32_t type, uint64_t n, uint64_t *bytes);

/*
 * 1 if this build can convert the type to F32 (curate_ggml_to_f32) and
 * from F32 (curate_ggml_from_f32).  Today: F32, F16, BF16, Q8_0, Q4_0, Q4_1.
 */
int curate_ggml_type_convertible(uint32_t type);

/*
 * Convert n elements of type at src (packed, any alignment) to F32 at dst.
 * n must be a multiple of the block size.  These are the scalar reference
 * conversions: F16 exact incl. subnormals, inf and NaN; BF16 exact;
 * Q8_0 x = d*q with d widened from f16.  Returns CURATE_ERR_INVALID for a
 * bad n, CURATE_ERR_UNSUPPORTED for a type this build cannot convert.
 */
curate_status curate_ggml_to_f32(uint32_t type, const void *src, float *dst, size_t n);

/*
 * Convert (quantize) n F32 values at src to type at dst (packed, needs
 * curate_ggml_row_size() bytes).  F16/BF16 round to nearest even (NaN
 * stays NaN); Q8_0 uses d = amax/127, q = round(x/d), and an all-zero
 * block gets d = 0, q = 0.  Same errors as curate_ggml_to_f32().
 */
curate_status curate_ggml_from_f32(uint32_t type, const float *src, void *dst, size_t n);

/* Single-value F16 / BF16 conversions (the bit patterns as uint16_t). */
float curate_f16_to_f32(uint16_t h);
uint16_t curate_f32_to_f16(float f);
float curate_bf16_to_f32(uint16_t h);
uint16_t curate_f32_to_bf16(float f);

/* ------------------------------------------------------------------------ */
/* metadata values                                                           */
/* ------------------------------------------------------------------------ */

/* Metadata value types, numbered as in the file. */
typedef enum curate_gguf_type {
    CURATE_GGUF_TYPE_UINT8 = 0,
    CURATE_GGUF_TYPE_INT8 = 1,
    CURATE_GGUF_TYPE_UINT16 = 2,
    CURATE_GGUF_TYPE_INT16 = 3,
    CURATE_GGUF_TYPE_UINT32 = 4,
    CURATE_GGUF_TYPE_INT32 = 5,
    CURATE_GGUF_TYPE_FLOAT32 = 6,
    CURATE_GGUF_TYPE_BOOL = 7,     /* one byte, nonzero = true */
    CURATE_GGUF_TYPE_STRING = 8,
    CURATE_GGUF_TYPE_ARRAY = 9,
    CURATE_GGUF_TYPE_UINT64 = 10,
    CURATE_GGUF_TYPE_INT64 = 11,
    CURATE_GGUF_TYPE_FLOAT64 = 12
} curate_gguf_type;

/* "uint8", ..., "float64"; "unknown" for other numbers. */
const char *curate_gguf_type_name(uint32_t type);

/* Size in bytes of a scalar value type (1..8); 0 for string, array, unknown. */
size_t curate_gguf_type_size(uint32_t type);

/*
 * A read-only view of one metadata value (a key's value or an array
 * element).  It points into the open file: valid until curate_gguf_close().
 * Prefer the accessors below; the fields are public so that a tokenizer can
 * walk a 32000-entry array without a call per element.
 */
typedef struct curate_gguf_value {
    curate_gguf_type type;       /* the value's type */
    curate_gguf_type elem_type;  /* arrays: the element type; else 0 */
    uint64_t len;                /* strings: bytes; arrays: elements; else 0 */
    const void *data;            /* scalars: the little-endian bytes (unaligned);
                                    strings: the bytes (not NUL-terminated);
                                    arrays of scalars: the packed elements */
    const struct curate_gguf_value *elems; /* arrays of strings or arrays:
                                              len element views; else NULL */
} curate_gguf_value;

/*
 * Typed reads of a scalar value.  Each checks the type and the range:
 * - _u32/_i32/_u64/_i64 accept any integer type whose value fits
 *   (bool is not an integer); out of range gives CURATE_ERR_RANGE,
 * - _f32/_f64 accept float32 and float64 (f64 -> f32 rounds; a finite f64
 *   beyond the f32 range gives CURATE_ERR_RANGE),
 * - _bool accepts bool only, _str accepts string only (*s is not
 *   NUL-terminated; *len is its byte length).
 * A wrong type gives CURATE_ERR_FORMAT with "expected X, found Y".
 * out is written only on success.  err may be NULL.
 */
curate_status curate_gguf_value_u32(const curate_gguf_value *v, uint32_t *out, curate_error *err);
curate_status curate_gguf_value_i32(const curate_gguf_value *v, int32_t *out, curate_error *err);
curate_status curate_gguf_value_u64(const curate_gguf_value *v, uint64_t *out, curate_error *err);
curate_status curate_gguf_value_i64(const curate_gguf_value *v, int64_t *out, curate_error *err);
curate_status curate_gguf_value_f32(const curate_gguf_value *v, float *out, curate_error *err);
curate_status curate_gguf_value_f64(const curate_gguf_value *v, double *out, curate_error *err);
curate_status curate_gguf_value_bool(const curate_gguf_value *v, int *out, curate_error *err);
curate_status curate_gguf_value_str(const curate_gguf_value *v, const char **s, size_t *len,
                                    curate_error *err);

/*
 * Element i of an array value, as a view in *out (scalars: data points at
 * the element's bytes; strings and nested arrays: a copy of the element's
 * view).  CURATE_ERR_FORMAT if v is not an array, CURATE_ERR_RANGE if
 * i >= v->len.
 */
curate_status curate_gguf_value_elem(const curate_gguf_value *v, uint64_t i,
                                     curate_gguf_value *out, curate_error *err);

/*
 * Copy a whole numeric array into dst[0..n), converting each element with
 * the rules of curate_gguf_value_f32 / _i32 / _u32.  n must equal v->len
 * (else CURATE_ERR_RANGE: this catches a vocabulary whose scores and
 * tokens disagree in length).
 */
curate_status curate_gguf_array_f32(const curate_gguf_value *v, float *dst, size_t n,
                                    curate_error *err);
curate_status curate_gguf_array_i32(const curate_gguf_value *v, int32_t *dst, size_t n,
                                    curate_error *err);
curate_status curate_gguf_array_u32(const curate_gguf_value *v, uint32_t *dst, size_t n,
                                    curate_error *err);

/* ------------------------------------------------------------------------ */
/* reader                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct curate_gguf curate_gguf;

/* One tensor's description; owned by the curate_gguf handle. */
typedef struct curate_gguf_tensor {
    const char *name;      /* NUL-terminated copy of the name */
    uint32_t n_dims;       /* 1..4 as stored (0 is read as a scalar) */
    uint64_t ne[4];        /* elements per dimension, ne[0] innermost (the
                              row length); dims beyond n_dims are 1 */
    curate_ggml_type type; /* element type (always a known type) */
    uint64_t n_elements;   /* product of ne[] */
    uint64_t offset;       /* data offset relative to the data section */
    uint64_t n_bytes;      /* size of the data in bytes */
    const void *data;      /* the data in the mapping, aligned to the file's
                              alignment (not necessarily to 4 if that is 1 or 2) */
} curate_gguf_tensor;

/*
 * Open and validate a GGUF file; read-only mmap.  Returns NULL with err
 * filled (file name and byte offset set) on any failure:
 * CURATE_ERR_IO (open/mmap), CURATE_ERR_FORMAT (corrupt: bad magic,
 * truncation, out-of-range offsets, unknown value or tensor types,
 * overflowing dims, duplicate keys or tensor names, a NUL byte inside a
 * key or tensor name, misaligned tensor data, bad general.alignment), CURATE_ERR_UNSUPPORTED (version other than 2/3),
 * CURATE_ERR_NOMEM.  The caller owns the handle; curate_gguf_close() it.
 */
curate_gguf *curate_gguf_open(const char *path, curate_error *err);

/*
 * Same as curate_gguf_open() on bytes already in memory.  The bytes are
 * borrowed, not copied: they must stay valid and unchanged until the handle
 * is closed.  name (may be NULL) is used in error messages.
 */
curate_gguf *curate_gguf_open_memory(const void *data, size_t size, const char *name,
                                     curate_error *err);

/* Unmap and free; g may be NULL. */
void curate_gguf_close(curate_gguf *g);

uint32_t curate_gguf_version(const curate_gguf *g);      /* 2 or 3 */
uint64_t curate_gguf_alignment(const curate_gguf *g);    /* general.alignment or 32 */
uint64_t curate_gguf_data_offset(const curate_gguf *g);  /* file offset of the data section */
uint64_t curate_gguf_file_size(const curate_gguf *g);

/* -- metadata -- */

size_t curate_gguf_n_kv(const curate_gguf *g);

/* Key i (0 <= i < n_kv) as a NUL-terminated string owned by g; NULL if out of range. */
const char *curate_gguf_kv_key(const curate_gguf *g, size_t i);

/* Value of key i; NULL if out of range. */
const curate_gguf_value *curate_gguf_kv_value(const curate_gguf *g, size_t i);

/* Index of key, or -1 when absent.  O(log n_kv). */
int64_t curate_gguf_find_key(const curate_gguf *g, const char *key);

/* Value of key, or NULL when absent. */
const curate_gguf_value *curate_gguf_get(const curate_gguf *g, const char *key);

/*
 * Required keys: read key with the rules of curate_gguf_value_*.  A missing
 * key gives CURATE_ERR_FORMAT "missing required key 'KEY'"; a wrong type or
 * range gives the value error prefixed with "key 'KEY': ".  The file name is
 * set in err.  out is written only on success.
 */
curate_status curate_gguf_require_u32(const curate_gguf *g, const char *key, uint32_t *out,
                                      curate_error *err);
curate_status curate_gguf_require_u64(const curate_gguf *g, const char *key, uint64_t *out,
                                      curate_error *err);
curate_status curate_gguf_require_i32(const curate_gguf *g, const char *key, int32_t *out,
                                      curate_error *err);
curate_status curate_gguf_require_f32(const curate_gguf *g, const char *key, float *out,
                                      curate_error *err);
curate_status curate_gguf_require_bool(const curate_gguf *g, const char *key, int *out,
                                       curate_error *err);
curate_status curate_gguf_require_str(const curate_gguf *g, const char *key, const char **s,
                                      size_t *len, curate_error *err);
/*
 * An array key whose elements have type elem_type (any type, including
 * CURATE_GGUF_TYPE_ARRAY; pass -1 to accept any element type).
 */
curate_status curate_gguf_require_array(const curate_gguf *g, const char *key, int elem_type,
                                        const curate_gguf_value **out, curate_error *err);

/*
 * Optional keys: like require, but an absent key stores def in *out and
 * returns CURATE_OK.  A present key of the wrong type is still an error.
 */
curate_status curate_gguf_get_u32(const curate_gguf *g, const char *key, uint32_t def,
                                  uint32_t *out, curate_error *err);
curate_status curate_gguf_get_f32(const curate_gguf *g, const char *key, float def,
                                  float *out, curate_error *err);
curate_status curate_gguf_get_bool(const curate_gguf *g, const char *key, int def, int *out,
                                   curate_error *err);

/* -- tensors -- */

size_t curate_gguf_n_tensors(const curate_gguf *g);

/* Tensor i in file order; NULL if out of range. */
const curate_gguf_tensor *curate_gguf_tensor_at(const curate_gguf *g, size_t i);

/* Tensor by name, or NULL.  O(log n_tensors). */
const curate_gguf_tensor *curate_gguf_find_tensor(const curate_gguf *g, const char *name);

/*
 * A tensor that must exist with this shape: n_dims and ne[0..n_dims) must
 * match exactly (ne[k] == 0 accepts any size in that dimension).  Returns
 * NULL with CURATE_ERR_FORMAT "missing tensor 'NAME'" or "tensor 'NAME' has
 * shape [a, b], expected [c, d]".
 */
const curate_gguf_tensor *curate_gguf_require_tensor(const curate_gguf *g, const char *name,
                                                     uint32_t n_dims, const uint64_t *ne,
                                                     curate_error *err);

/*
 * Convert a whole tensor to F32 into dst[0..n); n must equal t->n_elements
 * (else CURATE_ERR_RANGE).  CURATE_ERR_UNSUPPORTED for a type this build
 * cannot convert, naming the tensor and type.
 */
curate_status curate_gguf_tensor_to_f32(const curate_gguf_tensor *t, float *dst, size_t n,
                                        curate_error *err);

/*
 * Convert rows [row, row + n_rows) of a tensor to F32 (a row is ne[0]
 * elements; rows are counted across all outer dims).  dst needs
 * n_rows * ne[0] floats.  For embedding lookups.  CURATE_ERR_RANGE if the
 * rows are out of range.
 */
curate_status curate_gguf_tensor_rows_to_f32(const curate_gguf_tensor *t, uint64_t row,
                                             uint64_t n_rows, float *dst, curate_error *err);

/* ------------------------------------------------------------------------ */
/* writer                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct curate_gguf_writer curate_gguf_writer;

/* A new empty writer (GGUF v3, alignment 32); NULL + CURATE_ERR_NOMEM. */
curate_gguf_writer *curate_gguf_writer_new(curate_error *err);

/* Free the writer and any data it owns; w may be NULL. */
void curate_gguf_writer_free(curate_gguf_writer *w);

/* Write version 2 or 3 (default 3).  Other values: CURATE_ERR_INVALID. */
curate_status curate_gguf_writer_set_version(curate_gguf_writer *w, uint32_t version,
                                             curate_error *err);

/*
 * Set the data alignment: a nonzero power of two.  Equivalent to
 * curate_gguf_writer_add_u32(w, "general.alignment", a); either way the key
 * is written (once: a second call is a duplicate key) and the data laid
 * out with it.
 */
curate_status curate_gguf_writer_set_alignment(curate_gguf_writer *w, uint32_t alignment,
                                               curate_error *err);

/*
 * Metadata, in the order added.  Keys are copied; a duplicate key gives
 * CURATE_ERR_INVALID.
 *
 * With key == NULL the value is instead appended as the next element of the
 * innermost open array (see begin_array), whose element type must match
 * (else CURATE_ERR_INVALID).
 */
curate_status curate_gguf_writer_add_u8(curate_gguf_writer *w, const char *key, uint8_t v, curate_error *err);
curate_status curate_gguf_writer_add_i8(curate_gguf_writer *w, const char *key, int8_t v, curate_error *err);
curate_status curate_gguf_writer_add_u16(curate_gguf_writer *w, const char *key, uint16_t v, curate_error *err);
curate_status curate_gguf_writer_add_i16(curate_gguf_writer *w, const char *key, int16_t v, curate_error *err);
curate_status curate_gguf_writer_add_u32(curate_gguf_writer *w, const char *key, uint32_t v, curate_error *err);
curate_status curate_gguf_writer_add_i32(curate_gguf_writer *w, const char *key, int32_t v, curate_error *err);
curate_status curate_gguf_writer_add_u64(curate_gguf_writer *w, const char *key, uint64_t v, curate_error *err);
curate_status curate_gguf_writer_add_i64(curate_gguf_writer *w, const char *key, int64_t v, curate_error *err);
curate_status curate_gguf_writer_add_f32(curate_gguf_writer *w, const char *key, float v, curate_error *err);
curate_status curate_gguf_writer_add_f64(curate_gguf_writer *w, const char *key, double v, curate_error *err);
curate_status curate_gguf_writer_add_bool(curate_gguf_writer *w, const char *key, int v, curate_error *err);
/* s[0..len) is copied; it may contain any bytes. */
curate_status curate_gguf_writer_add_str(curate_gguf_writer *w, const char *key, const char *s,
                                         size_t len, curate_error *err);

/*
 * An array of n scalars of elem_type (not string or array), packed
 * little-endian at elems (n * curate_gguf_type_size(elem_type) bytes,
 * copied).
 */
curate_status curate_gguf_writer_add_array(curate_gguf_writer *w, const char *key,
                                           curate_gguf_type elem_type, const void *elems,
                                           size_t n, curate_error *err);

/* An array of n strings; lens may be NULL to use strlen() of each. */
curate_status curate_gguf_writer_add_str_array(curate_gguf_writer *w, const char *key,
                                               const char *const *strs, const size_t *lens,
                                               size_t n, curate_error *err);

/*
 * Build any array, including arrays of arrays: begin_array opens an array
 * of elem_type under key (or, with key == NULL, as the next element of the
 * open array, whose element type must be CURATE_GGUF_TYPE_ARRAY); add its
 * elements with key == NULL; end_array closes the innermost one.  No key
 * may be added while an array is open, and write fails while one is open.
 */
curate_status curate_gguf_writer_begin_array(curate_gguf_writer *w, const char *key,
                                             curate_gguf_type elem_type, curate_error *err);
curate_status curate_gguf_writer_end_array(curate_gguf_writer *w, curate_error *err);

/*
 * Copy a value read from another file (any type, nested arrays included)
 * under key, or as an array element with key == NULL.  For exporting a
 * model with its metadata.
 */
curate_status curate_gguf_writer_add_value(curate_gguf_writer *w, const char *key,
                                           const curate_gguf_value *v, curate_error *err);

/*
 * A tensor with data already in its type: n_dims 1..4, ne[0] a multiple of
 * the type's block size, n_bytes == curate_ggml_row_size(type, product).
 * The data is NOT copied: it must stay valid until the writer is written
 * or freed.  Tensors are laid out in the order added.  Errors:
 * CURATE_ERR_INVALID (duplicate name, bad shape/type/size), CURATE_ERR_RANGE.
 */
curate_status curate_gguf_writer_add_tensor(curate_gguf_writer *w, const char *name,
                                            curate_ggml_type type, uint32_t n_dims,
                                            const uint64_t *ne, const void *data,
                                            size_t n_bytes, curate_error *err);

/*
 * A tensor given as F32 values (n_elements of them), converted now with
 * curate_ggml_from_f32() into a buffer the writer owns.
 */
curate_status curate_gguf_writer_add_tensor_f32(curate_gguf_writer *w, const char *name,
                                                curate_ggml_type type, uint32_t n_dims,
                                                const uint64_t *ne, const float *src,
                                                curate_error *err);

/*
 * Write the file: to "PATH.tmp.XXXXXX" in the same directory, then
 * rename() over path, so a reader never sees a half-written file.  The
 * writer stays usable (write again, free).  CURATE_ERR_IO on failure (the
 * temporary file is removed).
 */
curate_status curate_gguf_writer_write(curate_gguf_writer *w, const char *path,
                                       curate_error *err);

/* Append the whole file image to out (for tests and fuzz seeds). */
curate_status curate_gguf_writer_write_buf(curate_gguf_writer *w, curate_buf *out,
                                           curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_GGUF_H */
