/*
 * gguf.c - the GGUF reader: map, validate, look up.
 *
 * curate_gguf_open() does all validation up front, in one forward pass over
 * the header with a bounds-checked cursor: every read first checks that the
 * bytes exist (n <= size - pos, which cannot overflow), and every count is
 * compared with the bytes left before anything is allocated for it, so a
 * 100-byte file can never make us allocate gigabytes.  After open, the
 * accessors only follow pointers that were checked then.
 *
 * Names (keys, tensor names) are copied into one arena with a NUL so that
 * callers get C strings (a name holding a NUL byte is refused as corrupt:
 * it could never be looked up); string values and tensor data stay in the
 * mapping.
 * Lookups go through index arrays sorted by name, which also makes the
 * duplicate checks O(n log n) for files with many tensors.
 */
#include "curate/gguf.h"

#include "ggml_types.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_DIMS 4u
#define GGUF_MAX_NESTING 64 /* arrays of arrays deeper than this are refused */

/* A name copied into the arena: offset until the arena stops moving. */
typedef struct name_ref {
    size_t off;
    size_t len;
} name_ref;

struct curate_gguf {
    const unsigned char *base; /* file bytes */
    uint64_t size;
    int mapped;                /* munmap base on close */
    char file[512];            /* name for error messages */

    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;

    size_t n_kv;
    const char **keys;         /* n_kv C strings in the arena */
    size_t *key_len;           /* their byte lengths */
    curate_gguf_value *values; /* n_kv */
    size_t *key_order;         /* kv indices sorted by key */

    size_t n_tensors;
    curate_gguf_tensor *tensors;
    size_t *tensor_len;        /* name lengths */
    size_t *tensor_order;      /* tensor indices sorted by name */

    char *arena;               /* all names, NUL-terminated */

    void **blocks;             /* element-view arrays to free */
    size_t n_blocks, cap_blocks;
};

/* ---- the cursor ---------------------------------------------------------- */

typedef struct cursor {
    curate_gguf *g;
    uint64_t pos;
    curate_error *err;
} cursor;

static curate_status fail_at(cursor *c, uint64_t offset, curate_status code, const char *fmt,
                             ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static curate_status fail_at(cursor *c, uint64_t offset, curate_status code, const char *fmt,
                             ...)
{
    if (c->err) {
        va_list ap;
        va_start(ap, fmt);
        char msg[sizeof c->err->message];
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        curate_error_set(c->err, code, "%s", msg);
        curate_error_at(c->err, c->g->file, 0);
        curate_error_at_offset(c->err, offset);
    }
    return code;
}

/* Ensure n more bytes exist at the cursor; what names the thing being read. */
static curate_status need(cursor *c, uint64_t n, const char *what)
{
    if (n > c->g->size - c->pos)
        return fail_at(c, c->pos,
                       CURATE_ERR_FORMAT,
                       "truncated file: %s needs %llu bytes, %llu left", what,
                       (unsigned long long)n, (unsigned long long)(c->g->size - c->pos));
    return CURATE_OK;
}

static curate_status rd_u32(cursor *c, uint32_t *v, const char *what)
{
    curate_status st = need(c, 4, what);
    if (st)
        return st;
    memcpy(v, c->g->base + c->pos, 4);
    c->pos += 4;
    return CURATE_OK;
}

static curate_status rd_u64(cursor *c, uint64_t *v, const char *what)
{
    curate_status st = need(c, 8, what);
    if (st)
        return st;
    memcpy(v, c->g->base + c->pos, 8);
    c->pos += 8;
    return CURATE_OK;
}

/* A GGUF string: u64 length then bytes; *p points into the file. */
static curate_status rd_str(cursor *c, const unsigned char **p, uint64_t *len, const char *what)
{
    uint64_t at = c->pos;
    curate_status st = rd_u64(c, len, what);
    if (st)
        return st;
    if (*len > c->g->size - c->pos)
        return fail_at(c, at, CURATE_ERR_FORMAT,
                       "%s: string length %llu exceeds the %llu bytes left in the file", what,
                       (unsigned long long)*len, (unsigned long long)(c->g->size - c->pos));
    *p = c->g->base + c->pos;
    c->pos += *len;
    return CURATE_OK;
}

/* ---- type names ---------------------------------------------------------------- */

static const char *const value_type_names[] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

const char *curate_gguf_type_name(uint32_t type)
{
    if (type < sizeof value_type_names / sizeof value_type_names[0])
        return value_type_names[type];
    return "unknown";
}

size_t curate_gguf_type_size(uint32_t type)
{
    switch (type) {
    case CURATE_GGUF_TYPE_UINT8:
    case CURATE_GGUF_TYPE_INT8:
    case CURATE_GGUF_TYPE_BOOL: return 1;
    case CURATE_GGUF_TYPE_UINT16:
    case CURATE_GGUF_TYPE_INT16: return 2;
    case CURATE_GGUF_TYPE_UINT32:
    case CURATE_GGUF_TYPE_INT32:
    case CURATE_GGUF_TYPE_FLOAT32: return 4;
    case CURATE_GGUF_TYPE_UINT64:
    case CURATE_GGUF_TYPE_INT64:
    case CURATE_GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static int value_type_known(uint32_t t)
{
    return t <= CURATE_GGUF_TYPE_FLOAT64;
}

/* ---- metadata values ---------------------------------------------------------- */

static curate_status keep_block(curate_gguf *g, void *p)
{
    if (g->n_blocks == g->cap_blocks) {
        size_t cap = g->cap_blocks ? 2 * g->cap_blocks : 16;
        void **nb = realloc(g->blocks, cap * sizeof *nb);
        if (!nb)
            return CURATE_ERR_NOMEM;
        g->blocks = nb;
        g->cap_blocks = cap;
    }
    g->blocks[g->n_blocks++] = p;
    return CURATE_OK;
}

/*
 * Parse one value of type at the cursor into *v.  what names the key for
 * messages; depth counts array nesting.
 */
static curate_status parse_value(cursor *c, uint32_t type, curate_gguf_value *v, const char *what,
                                 int depth)
{
    memset(v, 0, sizeof *v);
    v->type = (curate_gguf_type)type;
    size_t sz = curate_gguf_type_size(type);
    if (sz) {
        curate_status st = need(c, sz, what);
        if (st)
            return st;
        v->data = c->g->base + c->pos;
        c->pos += sz;
        return CURATE_OK;
    }
    if (type == CURATE_GGUF_TYPE_STRING) {
        const unsigned char *p;
        uint64_t len;
        curate_status st = rd_str(c, &p, &len, what);
        if (st)
            return st;
        v->data = p;
        v->len = len;
        return CURATE_OK;
    }
    if (type != CURATE_GGUF_TYPE_ARRAY) /* callers check, but stay safe */
        return fail_at(c, c->pos, CURATE_ERR_FORMAT, "%s: unknown value type %u", what, type);

    if (depth >= GGUF_MAX_NESTING)
        return fail_at(c, c->pos, CURATE_ERR_FORMAT, "%s: arrays nested deeper than %d", what,
                       GGUF_MAX_NESTING);
    uint64_t at = c->pos;
    uint32_t et;
    uint64_t n;
    curate_status st = rd_u32(c, &et, what);
    if (st)
        return st;
    if (!value_type_known(et))
        return fail_at(c, at, CURATE_ERR_FORMAT, "%s: unknown array element type %u", what, et);
    uint64_t count_at = c->pos;
    if ((st = rd_u64(c, &n, what)))
        return st;
    v->elem_type = (curate_gguf_type)et;
    v->len = n;
    v->data = c->g->base + c->pos;
    uint64_t left = c->g->size - c->pos;
    size_t esz = curate_gguf_type_size(et);
    if (esz) {
        /* n * esz <= left, written so that it cannot overflow */
        if (n > left / esz)
            return fail_at(c, count_at, CURATE_ERR_FORMAT,
                           "%s: array of %llu %s elements exceeds the %llu bytes left in the file",
                           what, (unsigned long long)n, curate_gguf_type_name(et),
                           (unsigned long long)left);
        c->pos += n * esz;
        return CURATE_OK;
    }
    /* Strings take at least 8 bytes each, arrays at least 12: bound the
     * count by the bytes left before allocating element views. */
    uint64_t min_elem = et == CURATE_GGUF_TYPE_STRING ? 8 : 12;
    if (n > left / min_elem)
        return fail_at(c, count_at, CURATE_ERR_FORMAT,
                       "%s: array of %llu %s elements exceeds the %llu bytes left in the file",
                       what, (unsigned long long)n, curate_gguf_type_name(et),
                       (unsigned long long)left);
    if (n == 0)
        return CURATE_OK;
    curate_gguf_value *elems = calloc((size_t)n, sizeof *elems);
    if (!elems || keep_block(c->g, elems)) {
        free(elems);
        return fail_at(c, at, CURATE_ERR_NOMEM, "%s: out of memory for %llu array elements",
                       what, (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++) {
        if ((st = parse_value(c, et, &elems[i], what, depth + 1)))
            return st;
    }
    v->elems = elems;
    return CURATE_OK;
}

/*
 * Integer value of an integer-typed scalar as sign + magnitude, so that one
 * range check serves every target type: the eight stored widths and
 * signednesses all fit in (neg, uint64 magnitude) without loss.
 */
static int value_integer(const curate_gguf_value *v, uint64_t *mag, int *neg)
{
    const unsigned char *p = v->data;
    int64_t s = 0;
    uint64_t u = 0;
    int is_signed = 0;
    switch (v->type) {
    case CURATE_GGUF_TYPE_UINT8: u = p[0]; break;
    case CURATE_GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); u = x; break; }
    case CURATE_GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); u = x; break; }
    case CURATE_GGUF_TYPE_UINT64: memcpy(&u, p, 8); break;
    case CURATE_GGUF_TYPE_INT8: { int8_t x; memcpy(&x, p, 1); s = x; is_signed = 1; break; }
    case CURATE_GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); s = x; is_signed = 1; break; }
    case CURATE_GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); s = x; is_signed = 1; break; }
    case CURATE_GGUF_TYPE_INT64: memcpy(&s, p, 8); is_signed = 1; break;
    default: return 0;
    }
    if (is_signed && s < 0) {
        *neg = 1;
        *mag = (uint64_t)(-(s + 1)) + 1u; /* no overflow at INT64_MIN */
    } else {
        *neg = 0;
        *mag = is_signed ? (uint64_t)s : u;
    }
    return 1;
}

static curate_status wrong_type(const curate_gguf_value *v, const char *expected,
                                curate_error *err)
{
    if (!v)
        return curate_error_set(err, CURATE_ERR_INVALID, "no value");
    if (v->type == CURATE_GGUF_TYPE_ARRAY)
        return curate_error_set(err, CURATE_ERR_FORMAT, "expected %s, found array of %s",
                                expected, curate_gguf_type_name(v->elem_type));
    return curate_error_set(err, CURATE_ERR_FORMAT, "expected %s, found %s", expected,
                            curate_gguf_type_name(v->type));
}

/*
 * Integer in [-neg_limit, pos_limit].  Metadata writers disagree on widths
 * (llama.cpp writes context_length as u32, some converters as u64 or i32),
 * so the getters accept any integer type and check only the value.
 */
static curate_status value_int_range(const curate_gguf_value *v, const char *expected,
                                     uint64_t neg_limit, uint64_t pos_limit, uint64_t *mag,
                                     int *neg, curate_error *err)
{
    if (!v || !value_integer(v, mag, neg))
        return wrong_type(v, expected, err);
    if ((*neg && *mag > neg_limit) || (!*neg && *mag > pos_limit))
        return curate_error_set(err, CURATE_ERR_RANGE, "value %s%llu does not fit in %s",
                                *neg ? "-" : "", (unsigned long long)*mag, expected);
    return CURATE_OK;
}

curate_status curate_gguf_value_u32(const curate_gguf_value *v, uint32_t *out, curate_error *err)
{
    uint64_t m;
    int neg;
    curate_status st = value_int_range(v, "an unsigned 32-bit integer", 0, UINT32_MAX, &m, &neg,
                                       err);
    if (st)
        return st;
    *out = (uint32_t)m;
    return CURATE_OK;
}

curate_status curate_gguf_value_u64(const curate_gguf_value *v, uint64_t *out, curate_error *err)
{
    uint64_t m;
    int neg;
    curate_status st = value_int_range(v, "an unsigned 64-bit integer", 0, UINT64_MAX, &m, &neg,
                                       err);
    if (st)
        return st;
    *out = m;
    return CURATE_OK;
}

curate_status curate_gguf_value_i32(const curate_gguf_value *v, int32_t *out, curate_error *err)
{
    uint64_t m;
    int neg;
    curate_status st = value_int_range(v, "a signed 32-bit integer", (uint64_t)INT32_MAX + 1u,
                                       INT32_MAX, &m, &neg, err);
    if (st)
        return st;
    *out = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    return CURATE_OK;
}

curate_status curate_gguf_value_i64(const curate_gguf_value *v, int64_t *out, curate_error *err)
{
    uint64_t m;
    int neg;
    curate_status st = value_int_range(v, "a signed 64-bit integer", (uint64_t)INT64_MAX + 1u,
                                       INT64_MAX, &m, &neg, err);
    if (st)
        return st;
    if (neg)
        *out = m == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)m;
    else
        *out = (int64_t)m;
    return CURATE_OK;
}

curate_status curate_gguf_value_f64(const curate_gguf_value *v, double *out, curate_error *err)
{
    if (v && v->type == CURATE_GGUF_TYPE_FLOAT32) {
        float f;
        memcpy(&f, v->data, 4);
        *out = f;
        return CURATE_OK;
    }
    if (v && v->type == CURATE_GGUF_TYPE_FLOAT64) {
        memcpy(out, v->data, 8);
        return CURATE_OK;
    }
    return wrong_type(v, "a float", err);
}

curate_status curate_gguf_value_f32(const curate_gguf_value *v, float *out, curate_error *err)
{
    double d;
    curate_status st = curate_gguf_value_f64(v, &d, err);
    if (st)
        return st;
    if (isfinite(d) && fabs(d) > 3.4028234663852886e38)
        return curate_error_set(err, CURATE_ERR_RANGE, "value %g does not fit in a float32", d);
    *out = (float)d;
    return CURATE_OK;
}

curate_status curate_gguf_value_bool(const curate_gguf_value *v, int *out, curate_error *err)
{
    if (!v || v->type != CURATE_GGUF_TYPE_BOOL)
        return wrong_type(v, "a bool", err);
    *out = *(const unsigned char *)v->data != 0;
    return CURATE_OK;
}

curate_status curate_gguf_value_str(const curate_gguf_value *v, const char **s, size_t *len,
                                    curate_error *err)
{
    if (!v || v->type != CURATE_GGUF_TYPE_STRING)
        return wrong_type(v, "a string", err);
    *s = v->data;
    *len = (size_t)v->len;
    return CURATE_OK;
}

curate_status curate_gguf_value_elem(const curate_gguf_value *v, uint64_t i,
                                     curate_gguf_value *out, curate_error *err)
{
    if (!v || v->type != CURATE_GGUF_TYPE_ARRAY)
        return wrong_type(v, "an array", err);
    if (i >= v->len)
        return curate_error_set(err, CURATE_ERR_RANGE, "index %llu out of range for an array of %llu",
                                (unsigned long long)i, (unsigned long long)v->len);
    if (v->elems) {
        *out = v->elems[i];
        return CURATE_OK;
    }
    size_t sz = curate_gguf_type_size(v->elem_type);
    memset(out, 0, sizeof *out);
    out->type = v->elem_type;
    out->data = (const unsigned char *)v->data + i * sz;
    return CURATE_OK;
}

/*
 * Shared loop of the curate_gguf_array_* copies: element by element through
 * the scalar getters, so the conversion rules are the same as for single
 * values and the error names the element that failed.
 */
#define ARRAY_COPY(fn, T, getter)                                                           \
    curate_status fn(const curate_gguf_value *v, T *dst, size_t n, curate_error *err)       \
    {                                                                                       \
        if (!v || v->type != CURATE_GGUF_TYPE_ARRAY)                                        \
            return wrong_type(v, "an array", err);                                          \
        if (v->len != n)                                                                    \
            return curate_error_set(err, CURATE_ERR_RANGE,                                  \
                                    "array has %llu elements, expected %llu",              \
                                    (unsigned long long)v->len, (unsigned long long)n);     \
        for (size_t i = 0; i < n; i++) {                                                    \
            curate_gguf_value e;                                                            \
            curate_status st = curate_gguf_value_elem(v, i, &e, err);                       \
            if (!st)                                                                        \
                st = getter(&e, &dst[i], err);                                              \
            if (st) {                                                                       \
                if (err) {                                                                  \
                    char m_[sizeof err->message];                                           \
                    snprintf(m_, sizeof m_, "%s", err->message);                            \
                    curate_error_set(err, st, "element %zu: %s", i, m_);                    \
                }                                                                           \
                return st;                                                                  \
            }                                                                               \
        }                                                                                   \
        return CURATE_OK;                                                                   \
    }

ARRAY_COPY(curate_gguf_array_f32, float, curate_gguf_value_f32)
ARRAY_COPY(curate_gguf_array_i32, int32_t, curate_gguf_value_i32)
ARRAY_COPY(curate_gguf_array_u32, uint32_t, curate_gguf_value_u32)
#undef ARRAY_COPY

/* ---- sorting and lookup ----------------------------------------------------------- */

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* qsort has no context argument in C11: sort (index, name) pairs instead. */
typedef struct sort_item {
    const char *name;
    size_t len;
    size_t index;
} sort_item;

static int cmp_items(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    int c = cmp_bytes(a->name, a->len, b->name, b->len);
    if (c)
        return c;
    return a->index < b->index ? -1 : a->index > b->index; /* stable: first one wins */
}

/*
 * Fill order[] with indices sorted by name; returns the index of a second
 * occurrence of a duplicated name (the later one in file order), or
 * SIZE_MAX when all names are distinct.  CURATE_ERR_NOMEM via *st.
 */
static size_t sort_names(const char *const *names, const size_t *lens, size_t n, size_t *order,
                         curate_status *st)
{
    *st = CURATE_OK;
    if (n == 0)
        return SIZE_MAX;
    sort_item *items = malloc(n * sizeof *items);
    if (!items) {
        *st = CURATE_ERR_NOMEM;
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = (sort_item){names[i], lens[i], i};
    qsort(items, n, sizeof *items, cmp_items);
    size_t dup = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        order[i] = items[i].index;
        if (i && !cmp_bytes(items[i - 1].name, items[i - 1].len, items[i].name, items[i].len)) {
            if (dup == SIZE_MAX || items[i].index < dup)
                dup = items[i].index;
        }
    }
    free(items);
    return dup;
}

/* Binary search for name in the sorted order; n-th index or SIZE_MAX. */
static size_t find_sorted(const char *const *names, const size_t *lens, const size_t *order,
                          size_t n, const char *name)
{
    size_t len = strlen(name);
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t k = order[mid];
        int c = cmp_bytes(names[k], lens[k], name, len);
        if (c == 0)
            return k;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* ---- open ---------------------------------------------------------------------- */

static curate_status arena_add(curate_buf *arena, const unsigned char *p, uint64_t len,
                               name_ref *ref)
{
    ref->off = arena->len;
    ref->len = (size_t)len;
    curate_status st = curate_buf_append(arena, p, (size_t)len);
    if (!st)
        st = curate_buf_append_char(arena, 0);
    return st;
}

/*
 * Format a name for messages: names come from the file and may hold any
 * bytes, and a message must stay one printable line, so bytes outside
 * printable ASCII (and the quote we wrap names in) are shown as \xNN.
 */
static void show_name(char *out, size_t size, const unsigned char *p, uint64_t len)
{
    size_t j = 0;
    for (uint64_t i = 0; i < len && j + 5 < size; i++) {
        unsigned char ch = p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\'')
            out[j++] = (char)ch;
        else
            j += (size_t)snprintf(out + j, size - j, "\\x%02x", ch);
    }
    if (len > 0 && j + 5 >= size && j + 4 < size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j < size ? j : size - 1] = 0;
}

static curate_status parse_header(curate_gguf *g, curate_error *err)
{
    cursor c = {g, 0, err};
    cursor *cp = &c;
    curate_status st;
    curate_buf arena;
    curate_buf_init(&arena);
    name_ref *key_refs = NULL, *tensor_refs = NULL;
    uint64_t *key_at = NULL; /* file offset of each key, for messages */

    uint32_t magic;
    if ((st = rd_u32(cp, &magic, "header (magic)")))
        goto out;
    if (magic != GGUF_MAGIC) {
        const unsigned char *m = g->base;
        st = fail_at(cp, 0, CURATE_ERR_FORMAT,
                     "bad magic: expected \"GGUF\", found bytes %02x %02x %02x %02x", m[0],
                     m[1], m[2], m[3]);
        goto out;
    }
    if ((st = rd_u32(cp, &g->version, "header (version)")))
        goto out;
    if (g->version != 2 && g->version != 3) {
        st = fail_at(cp, 4, CURATE_ERR_UNSUPPORTED,
                     "unsupported GGUF version %u (versions 2 and 3 are supported)%s",
                     g->version,
                     (g->version & 0xffffu) == 0 ? "; the file may be big-endian" : "");
        goto out;
    }
    uint64_t n_tensors, n_kv;
    if ((st = rd_u64(cp, &n_tensors, "header (tensor count)")))
        goto out;
    if ((st = rd_u64(cp, &n_kv, "header (metadata count)")))
        goto out;
    /* Each key/value takes at least 13 bytes (key length, type, 1 byte),
     * each tensor info at least 24: bound the counts before allocating. */
    uint64_t left = g->size - c.pos;
    if (n_kv > left / 13) {
        st = fail_at(cp, 16, CURATE_ERR_FORMAT,
                     "metadata count %llu is impossible in the %llu bytes left in the file",
                     (unsigned long long)n_kv, (unsigned long long)left);
        goto out;
    }
    if (n_tensors > left / 24) {
        st = fail_at(cp, 8, CURATE_ERR_FORMAT,
                     "tensor count %llu is impossible in the %llu bytes left in the file",
                     (unsigned long long)n_tensors, (unsigned long long)left);
        goto out;
    }
    g->n_kv = (size_t)n_kv;
    g->n_tensors = (size_t)n_tensors;
    g->values = calloc(g->n_kv + 1, sizeof *g->values);
    g->keys = calloc(g->n_kv + 1, sizeof *g->keys);
    g->key_len = calloc(g->n_kv + 1, sizeof *g->key_len);
    g->key_order = calloc(g->n_kv + 1, sizeof *g->key_order);
    key_refs = calloc(g->n_kv + 1, sizeof *key_refs);
    key_at = calloc(g->n_kv + 1, sizeof *key_at);
    g->tensors = calloc(g->n_tensors + 1, sizeof *g->tensors);
    g->tensor_len = calloc(g->n_tensors + 1, sizeof *g->tensor_len);
    g->tensor_order = calloc(g->n_tensors + 1, sizeof *g->tensor_order);
    tensor_refs = calloc(g->n_tensors + 1, sizeof *tensor_refs);
    if (!g->values || !g->keys || !g->key_len || !g->key_order || !key_refs || !key_at || !g->tensors ||
        !g->tensor_len || !g->tensor_order || !tensor_refs) {
        st = fail_at(cp, 8, CURATE_ERR_NOMEM, "out of memory for the header");
        goto out;
    }

    /* -- key/value pairs --
     * general.alignment is applied as soon as it is seen: the tensor infos
     * that follow are checked against it.  The spec puts no order on keys,
     * but all keys precede all tensor infos, so this is always in time. */
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < g->n_kv; i++) {
        const unsigned char *kp;
        uint64_t klen;
        uint64_t kv_at = c.pos;
        key_at[i] = kv_at;
        if ((st = rd_str(cp, &kp, &klen, "metadata key")))
            goto out;
        char what[160];
        char shown[128];
        show_name(shown, sizeof shown, kp, klen);
        snprintf(what, sizeof what, "key '%s'", shown);
        if (memchr(kp, 0, (size_t)klen)) {
            st = fail_at(cp, kv_at, CURATE_ERR_FORMAT, "metadata %s contains a NUL byte", what);
            goto out;
        }
        uint64_t type_at = c.pos;
        uint32_t type;
        if ((st = rd_u32(cp, &type, what)))
            goto out;
        if (!value_type_known(type)) {
            st = fail_at(cp, type_at, CURATE_ERR_FORMAT, "%s: unknown value type %u", what, type);
            goto out;
        }
        if ((st = parse_value(cp, type, &g->values[i], what, 0)))
            goto out;
        if ((st = arena_add(&arena, kp, klen, &key_refs[i]))) {
            st = fail_at(cp, kv_at, CURATE_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (klen == 17 && !memcmp(kp, "general.alignment", 17)) {
            const curate_gguf_value *v = &g->values[i];
            uint32_t a;
            if (v->type != CURATE_GGUF_TYPE_UINT32) {
                st = fail_at(cp, type_at, CURATE_ERR_FORMAT,
                             "general.alignment must be a uint32, found %s",
                             curate_gguf_type_name(v->type));
                goto out;
            }
            memcpy(&a, v->data, 4);
            if (a == 0 || (a & (a - 1u)) != 0) {
                st = fail_at(cp, type_at + 4, CURATE_ERR_FORMAT,
                             "general.alignment %u is not a nonzero power of two", a);
                goto out;
            }
            g->alignment = a;
        }
    }

    /* -- tensor infos --
     * Checked in the order that keeps every later step safe: dims before
     * their product, the product before the byte size, the type before its
     * block size.  Data ranges are checked once the data start is known. */
    uint64_t *tensor_at = calloc(g->n_tensors + 1, sizeof *tensor_at);
    if (!tensor_at) {
        st = fail_at(cp, c.pos, CURATE_ERR_NOMEM, "out of memory for tensor infos");
        goto out;
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        curate_gguf_tensor *t = &g->tensors[i];
        const unsigned char *np;
        uint64_t nlen;
        tensor_at[i] = c.pos;
        if ((st = rd_str(cp, &np, &nlen, "tensor name")))
            break;
        char shown[128];
        show_name(shown, sizeof shown, np, nlen);
        char what[160];
        snprintf(what, sizeof what, "tensor '%s'", shown);
        if (memchr(np, 0, (size_t)nlen)) {
            st = fail_at(cp, tensor_at[i], CURATE_ERR_FORMAT,
                         "tensor name '%s' contains a NUL byte", shown);
            break;
        }
        uint64_t dims_at = c.pos;
        if ((st = rd_u32(cp, &t->n_dims, what)))
            break;
        if (t->n_dims > GGUF_MAX_DIMS) {
            st = fail_at(cp, dims_at, CURATE_ERR_FORMAT, "%s: %u dimensions, at most %u allowed",
                         what, t->n_dims, GGUF_MAX_DIMS);
            break;
        }
        uint64_t n_el = 1;
        int overflow = 0;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d >= t->n_dims)
                continue;
            uint64_t ne_at = c.pos;
            if ((st = rd_u64(cp, &t->ne[d], what)))
                break;
            /* ggml keeps sizes in int64_t: anything above INT64_MAX is corrupt */
            if (t->ne[d] > (uint64_t)INT64_MAX) {
                st = fail_at(cp, ne_at, CURATE_ERR_FORMAT, "%s: dimension %u is %llu, too large",
                             what, d, (unsigned long long)t->ne[d]);
                break;
            }
            if (t->ne[d] != 0 && n_el > (uint64_t)INT64_MAX / t->ne[d])
                overflow = 1;
            else
                n_el *= t->ne[d];
        }
        if (st)
            break;
        if (overflow) {
            st = fail_at(cp, dims_at, CURATE_ERR_FORMAT,
                         "%s: dimensions [%llu, %llu, %llu, %llu] overflow 64-bit element count",
                         what, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                         (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
            break;
        }
        t->n_elements = n_el;
        uint64_t type_at = c.pos;
        uint32_t type;
        if ((st = rd_u32(cp, &type, what)))
            break;
        if (!curate_ggml_type_known(type)) {
            st = fail_at(cp, type_at, CURATE_ERR_FORMAT, "%s: unknown tensor type %u", what,
                         type);
            break;
        }
        t->type = (curate_ggml_type)type;
        uint32_t bs = curate_ggml_block_size(type);
        if (t->ne[0] % bs != 0) {
            st = fail_at(cp, dims_at, CURATE_ERR_FORMAT,
                         "%s: row length %llu is not a multiple of the %s block size %u", what,
                         (unsigned long long)t->ne[0], curate_ggml_type_name(type), bs);
            break;
        }
        if (curate_ggml_row_size(type, n_el, &t->n_bytes) != CURATE_OK) {
            st = fail_at(cp, dims_at, CURATE_ERR_FORMAT, "%s: data size overflows 64 bits",
                         what);
            break;
        }
        uint64_t off_at = c.pos;
        if ((st = rd_u64(cp, &t->offset, what)))
            break;
        if (t->offset % g->alignment != 0) {
            st = fail_at(cp, off_at, CURATE_ERR_FORMAT,
                         "%s: data offset %llu is not a multiple of the alignment %llu", what,
                         (unsigned long long)t->offset, (unsigned long long)g->alignment);
            break;
        }
        if ((st = arena_add(&arena, np, nlen, &tensor_refs[i]))) {
            st = fail_at(cp, tensor_at[i], CURATE_ERR_NOMEM, "out of memory");
            break;
        }
    }
    if (st) {
        free(tensor_at);
        goto out;
    }

    /* -- data section: starts at the next multiple of the alignment --
     * A file without tensors may end before that padding (llama.cpp's
     * vocabulary-only files do), so the start is only required to be inside
     * the file when there is data to read. */
    uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    g->data_offset = c.pos + pad; /* c.pos <= size < 2^63, no overflow */
    if (g->n_tensors > 0 && g->data_offset > g->size) {
        st = fail_at(cp, c.pos, CURATE_ERR_FORMAT,
                     "truncated file: data section would start at byte %llu, file has %llu",
                     (unsigned long long)g->data_offset, (unsigned long long)g->size);
        free(tensor_at);
        goto out;
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        curate_gguf_tensor *t = &g->tensors[i];
        uint64_t room = g->size - g->data_offset;
        if (t->offset > room || t->n_bytes > room - t->offset) {
            char shown[128];
            show_name(shown, sizeof shown, (const unsigned char *)arena.data + tensor_refs[i].off,
                      tensor_refs[i].len);
            st = fail_at(cp, tensor_at[i], CURATE_ERR_FORMAT,
                         "tensor '%s': data [%llu, +%llu) runs past the end of the file "
                         "(data section holds %llu bytes)",
                         shown, (unsigned long long)t->offset, (unsigned long long)t->n_bytes,
                         (unsigned long long)room);
            free(tensor_at);
            goto out;
        }
        t->data = g->base + g->data_offset + t->offset;
    }

    /* -- names: fix pointers now that the arena is final, check duplicates --
     * A duplicate is corrupt rather than "last one wins": two readers of
     * the same file could otherwise disagree on which tensor is meant. */
    g->arena = arena.data ? arena.data : NULL;
    arena.data = NULL;
    for (size_t i = 0; i < g->n_kv; i++) {
        g->keys[i] = g->arena + key_refs[i].off;
        g->key_len[i] = key_refs[i].len;
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        g->tensors[i].name = g->arena + tensor_refs[i].off;
        g->tensor_len[i] = tensor_refs[i].len;
    }
    size_t dup = sort_names(g->keys, g->key_len, g->n_kv, g->key_order, &st);
    if (!st && dup != SIZE_MAX) {
        char shown[128];
        show_name(shown, sizeof shown, (const unsigned char *)g->keys[dup], g->key_len[dup]);
        st = fail_at(cp, key_at[dup], CURATE_ERR_FORMAT, "duplicate metadata key '%s'", shown);
    }
    if (!st) {
        const char **tnames = malloc((g->n_tensors + 1) * sizeof *tnames);
        if (!tnames) {
            st = CURATE_ERR_NOMEM;
        } else {
            for (size_t i = 0; i < g->n_tensors; i++)
                tnames[i] = g->tensors[i].name;
            dup = sort_names(tnames, g->tensor_len, g->n_tensors, g->tensor_order, &st);
            free(tnames);
            if (!st && dup != SIZE_MAX) {
                char shown[128];
                show_name(shown, sizeof shown, (const unsigned char *)g->tensors[dup].name,
                          g->tensor_len[dup]);
                st = fail_at(cp, tensor_at[dup], CURATE_ERR_FORMAT, "duplicate tensor name '%s'",
                             shown);
            }
        }
        if (st == CURATE_ERR_NOMEM)
            fail_at(cp, 0, CURATE_ERR_NOMEM, "out of memory sorting names");
    } else if (st == CURATE_ERR_NOMEM) {
        fail_at(cp, 0, CURATE_ERR_NOMEM, "out of memory sorting names");
    }
    free(tensor_at);

out:
    curate_buf_release(&arena);
    free(key_refs);
    free(key_at);
    free(tensor_refs);
    return st;
}

static curate_gguf *gguf_new(const char *name)
{
    curate_gguf *g = calloc(1, sizeof *g);
    if (g)
        snprintf(g->file, sizeof g->file, "%s", name ? name : "");
    return g;
}

curate_gguf *curate_gguf_open_memory(const void *data, size_t size, const char *name,
                                     curate_error *err)
{
    curate_error_clear(err);
    curate_gguf *g = gguf_new(name);
    if (!g) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    static const unsigned char empty[1];
    g->base = data && size ? data : empty;
    g->size = data ? size : 0;
    if (parse_header(g, err)) {
        curate_gguf_close(g);
        return NULL;
    }
    return g;
}

curate_gguf *curate_gguf_open(const char *path, curate_error *err)
{
    curate_error_clear(err);
    curate_error_at(err, path, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        curate_error_set(err, CURATE_ERR_IO, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        curate_error_set(err, CURATE_ERR_IO, "cannot stat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        curate_error_set(err, CURATE_ERR_IO, "not a regular file");
        close(fd);
        return NULL;
    }
    curate_gguf *g = gguf_new(path);
    if (!g) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        close(fd);
        return NULL;
    }
    static const unsigned char empty[1];
    g->base = empty;
    g->size = (uint64_t)sb.st_size;
    if (g->size > 0) {
        if ((uint64_t)sb.st_size > SIZE_MAX) {
            curate_error_set(err, CURATE_ERR_RANGE, "file too large to map");
            close(fd);
            curate_gguf_close(g);
            return NULL;
        }
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            curate_error_set(err, CURATE_ERR_IO, "cannot mmap: %s", strerror(errno));
            close(fd);
            curate_gguf_close(g);
            return NULL;
        }
        g->base = p;
        g->mapped = 1;
    }
    /* The mapping keeps the file contents reachable; the descriptor is not
     * needed.  MAP_PRIVATE + PROT_READ: nothing we do can change the file,
     * and weights are paged in on first use, not read up front. */
    close(fd);
    if (parse_header(g, err)) {
        curate_gguf_close(g);
        return NULL;
    }
    return g;
}

void curate_gguf_close(curate_gguf *g)
{
    if (!g)
        return;
    if (g->mapped)
        munmap((void *)(uintptr_t)g->base, (size_t)g->size);
    for (size_t i = 0; i < g->n_blocks; i++)
        free(g->blocks[i]);
    free(g->blocks);
    free(g->keys);
    free(g->key_len);
    free(g->values);
    free(g->key_order);
    free(g->tensors);
    free(g->tensor_len);
    free(g->tensor_order);
    free(g->arena);
    free(g);
}

/* ---- accessors ------------------------------------------------------------------- */

uint32_t curate_gguf_version(const curate_gguf *g) { return g->version; }
uint64_t curate_gguf_alignment(const curate_gguf *g) { return g->alignment; }
uint64_t curate_gguf_data_offset(const curate_gguf *g) { return g->data_offset; }
uint64_t curate_gguf_file_size(const curate_gguf *g) { return g->size; }
size_t curate_gguf_n_kv(const curate_gguf *g) { return g->n_kv; }
size_t curate_gguf_n_tensors(const curate_gguf *g) { return g->n_tensors; }

const char *curate_gguf_kv_key(const curate_gguf *g, size_t i)
{
    return i < g->n_kv ? g->keys[i] : NULL;
}

const curate_gguf_value *curate_gguf_kv_value(const curate_gguf *g, size_t i)
{
    return i < g->n_kv ? &g->values[i] : NULL;
}

int64_t curate_gguf_find_key(const curate_gguf *g, const char *key)
{
    if (!key)
        return -1;
    size_t k = find_sorted(g->keys, g->key_len, g->key_order, g->n_kv, key);
    return k == SIZE_MAX ? -1 : (int64_t)k;
}

const curate_gguf_value *curate_gguf_get(const curate_gguf *g, const char *key)
{
    int64_t k = curate_gguf_find_key(g, key);
    return k < 0 ? NULL : &g->values[k];
}

const curate_gguf_tensor *curate_gguf_tensor_at(const curate_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const curate_gguf_tensor *curate_gguf_find_tensor(const curate_gguf *g, const char *name)
{
    if (!name || g->n_tensors == 0)
        return NULL;
    /* same search as find_sorted(), but the names live in the tensor structs */
    size_t len = strlen(name);
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t k = g->tensor_order[mid];
        int c = cmp_bytes(g->tensors[k].name, g->tensor_len[k], name, len);
        if (c == 0)
            return &g->tensors[k];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- required and optional keys ------------------------------------------------ */

/* Prefix err's message with "key 'KEY': " and set the file name. */
static curate_status key_error(const curate_gguf *g, const char *key, curate_status st,
                               curate_error *err)
{
    if (err) {
        char m[sizeof err->message];
        snprintf(m, sizeof m, "%s", err->message);
        curate_error_set(err, st, "key '%s': %s", key, m);
        curate_error_at(err, g->file, 0);
    }
    return st;
}

static const curate_gguf_value *lookup_required(const curate_gguf *g, const char *key,
                                                curate_error *err)
{
    const curate_gguf_value *v = curate_gguf_get(g, key);
    if (!v) {
        curate_error_set(err, CURATE_ERR_FORMAT, "missing required key '%s'", key);
        curate_error_at(err, g->file, 0);
    }
    return v;
}

#define REQUIRE(fn, T, getter)                                                        \
    curate_status fn(const curate_gguf *g, const char *key, T *out, curate_error *err) \
    {                                                                                 \
        const curate_gguf_value *v = lookup_required(g, key, err);                    \
        if (!v)                                                                       \
            return CURATE_ERR_FORMAT;                                                 \
        curate_status st = getter(v, out, err);                                       \
        return st ? key_error(g, key, st, err) : CURATE_OK;                           \
    }

REQUIRE(curate_gguf_require_u32, uint32_t, curate_gguf_value_u32)
REQUIRE(curate_gguf_require_u64, uint64_t, curate_gguf_value_u64)
REQUIRE(curate_gguf_require_i32, int32_t, curate_gguf_value_i32)
REQUIRE(curate_gguf_require_f32, float, curate_gguf_value_f32)
REQUIRE(curate_gguf_require_bool, int, curate_gguf_value_bool)
#undef REQUIRE

curate_status curate_gguf_require_str(const curate_gguf *g, const char *key, const char **s,
                                      size_t *len, curate_error *err)
{
    const curate_gguf_value *v = lookup_required(g, key, err);
    if (!v)
        return CURATE_ERR_FORMAT;
    curate_status st = curate_gguf_value_str(v, s, len, err);
    return st ? key_error(g, key, st, err) : CURATE_OK;
}

curate_status curate_gguf_require_array(const curate_gguf *g, const char *key, int elem_type,
                                        const curate_gguf_value **out, curate_error *err)
{
    const curate_gguf_value *v = lookup_required(g, key, err);
    if (!v)
        return CURATE_ERR_FORMAT;
    if (v->type != CURATE_GGUF_TYPE_ARRAY) {
        wrong_type(v, "an array", err);
        return key_error(g, key, CURATE_ERR_FORMAT, err);
    }
    if (elem_type >= 0 && (uint32_t)elem_type != (uint32_t)v->elem_type) {
        curate_error_set(err, CURATE_ERR_FORMAT, "expected array of %s, found array of %s",
                         curate_gguf_type_name((uint32_t)elem_type),
                         curate_gguf_type_name(v->elem_type));
        return key_error(g, key, CURATE_ERR_FORMAT, err);
    }
    *out = v;
    return CURATE_OK;
}

#define GET_OPT(fn, T, getter)                                                              \
    curate_status fn(const curate_gguf *g, const char *key, T def, T *out, curate_error *err) \
    {                                                                                       \
        const curate_gguf_value *v = curate_gguf_get(g, key);                               \
        if (!v) {                                                                           \
            *out = def;                                                                     \
            return CURATE_OK;                                                               \
        }                                                                                   \
        curate_status st = getter(v, out, err);                                             \
        return st ? key_error(g, key, st, err) : CURATE_OK;                                 \
    }

GET_OPT(curate_gguf_get_u32, uint32_t, curate_gguf_value_u32)
GET_OPT(curate_gguf_get_f32, float, curate_gguf_value_f32)
GET_OPT(curate_gguf_get_bool, int, curate_gguf_value_bool)
#undef GET_OPT

/* ---- tensors ----------------------------------------------------------------------- */

static void format_shape(char *out, size_t size, uint32_t n_dims, const uint64_t *ne)
{
    size_t j = 0;
    j += (size_t)snprintf(out + j, size - j, "[");
    for (uint32_t d = 0; d < n_dims && j < size; d++) {
        if (ne[d] == 0) /* "any size" in an expected shape */
            j += (size_t)snprintf(out + j, size - j, "%s*", d ? ", " : "");
        else
            j += (size_t)snprintf(out + j, size - j, "%s%llu", d ? ", " : "",
                                  (unsigned long long)ne[d]);
    }
    if (j < size)
        snprintf(out + j, size - j, "]");
}

const curate_gguf_tensor *curate_gguf_require_tensor(const curate_gguf *g, const char *name,
                                                     uint32_t n_dims, const uint64_t *ne,
                                                     curate_error *err)
{
    const curate_gguf_tensor *t = curate_gguf_find_tensor(g, name);
    if (!t) {
        curate_error_set(err, CURATE_ERR_FORMAT, "missing tensor '%s'", name);
        curate_error_at(err, g->file, 0);
        return NULL;
    }
    int ok = t->n_dims == n_dims;
    for (uint32_t d = 0; ok && d < n_dims && d < GGUF_MAX_DIMS; d++)
        ok = ne[d] == 0 || ne[d] == t->ne[d];
    if (!ok) {
        char have[160], want[160];
        format_shape(have, sizeof have, t->n_dims, t->ne);
        uint64_t w[GGUF_MAX_DIMS] = {0, 0, 0, 0};
        for (uint32_t d = 0; d < n_dims && d < GGUF_MAX_DIMS; d++)
            w[d] = ne[d];
        format_shape(want, sizeof want, n_dims < GGUF_MAX_DIMS ? n_dims : GGUF_MAX_DIMS, w);
        curate_error_set(err, CURATE_ERR_FORMAT, "tensor '%s' has shape %s, expected %s", name,
                         have, want);
        curate_error_at(err, g->file, 0);
        return NULL;
    }
    return t;
}

/* Shared by the whole-tensor and row conversions: names the tensor on error. */
static curate_status convert(const curate_gguf_tensor *t, const unsigned char *src, float *dst,
                             uint64_t n, curate_error *err)
{
    if (!curate_ggml_type_convertible(t->type))
        return curate_error_set(err, CURATE_ERR_UNSUPPORTED,
                                "tensor '%s': type %s cannot be converted to f32", t->name,
                                curate_ggml_type_name(t->type));
    if (n > SIZE_MAX)
        return curate_error_set(err, CURATE_ERR_RANGE, "tensor '%s' too large", t->name);
    curate_status st = curate_ggml_to_f32(t->type, src, dst, (size_t)n);
    if (st)
        return curate_error_set(err, st, "tensor '%s': cannot convert %s to f32", t->name,
                                curate_ggml_type_name(t->type));
    return CURATE_OK;
}

curate_status curate_gguf_tensor_to_f32(const curate_gguf_tensor *t, float *dst, size_t n,
                                        curate_error *err)
{
    if (n != t->n_elements)
        return curate_error_set(err, CURATE_ERR_RANGE,
                                "tensor '%s' has %llu elements, destination holds %zu", t->name,
                                (unsigned long long)t->n_elements, n);
    return convert(t, t->data, dst, t->n_elements, err);
}

curate_status curate_gguf_tensor_rows_to_f32(const curate_gguf_tensor *t, uint64_t row,
                                             uint64_t n_rows, float *dst, curate_error *err)
{
    uint64_t rows = t->ne[0] ? t->n_elements / t->ne[0] : 0;
    if (row > rows || n_rows > rows - row)
        return curate_error_set(err, CURATE_ERR_RANGE,
                                "tensor '%s': rows [%llu, +%llu) out of range (%llu rows)",
                                t->name, (unsigned long long)row, (unsigned long long)n_rows,
                                (unsigned long long)rows);
    uint64_t row_bytes;
    if (curate_ggml_row_size(t->type, t->ne[0], &row_bytes))
        return curate_error_set(err, CURATE_ERR_INTERNAL, "tensor '%s': bad row size", t->name);
    /* row * row_bytes <= n_bytes, which was checked against the file size */
    return convert(t, (const unsigned char *)t->data + row * row_bytes, dst, n_rows * t->ne[0],
                   err);
}
