/*
 * test_gguf.c - the GGUF reader and writer (curate/gguf.h) and the random
 * test-model generator (curate/testmodel.h).
 *
 * 1. Round trips: every metadata type (nested arrays included) and every
 *    tensor type written and read back bit for bit; re-writing what was
 *    read gives the same bytes; v2 files; the file path with rename.
 * 2. Typed access: the conversion and range rules of the getters, the
 *    required-key errors naming the key, tensor shape checks, conversion.
 * 3. The corrupt-file table (after llama.cpp's test-gguf): a valid file
 *    from the writer, patched into each kind of damage, must fail with the
 *    expected status and a message naming the problem, at a byte offset
 *    inside the file; every truncation point is tried; random byte flips
 *    must never crash.  Run under ASan/UBSan builds too.
 * 4. The test models: keys, shapes, determinism, weight types, tied output.
 * 5. Real files from ../shared (skipped when $CURATE_SHARED is absent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "curate/gguf.h"
#include "curate/testmodel.h"

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rnd_state = 99;
static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void check_ok(curate_status st, const curate_error *err)
{
    if (st != CURATE_OK) {
        char buf[1200];
        fprintf(stderr, "unexpected failure: %s\n", curate_error_format(err, buf, sizeof buf));
        fail();
    }
}
#define OK(call) check_ok((call), &err)

static const char *tmp_dir(void)
{
    const char *t = getenv("CURATE_TMP");
    if (!t || !*t)
        t = "/tmp";
    mkdir(t, 0777);
    return t;
}

/* Open an exact-size heap copy, so ASan sees any read past the end. */
static curate_gguf *open_copy(const void *data, size_t n, unsigned char **copy, curate_error *err)
{
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    if (n)
        memcpy(*copy, data, n);
    return curate_gguf_open_memory(*copy, n, "test.gguf", err);
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* Offset of the first occurrence of s in buf (must exist). */
static size_t find(const curate_buf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->len; i++)
        if (!memcmp(b->data + i, s, n))
            return i;
    fprintf(stderr, "'%s' not found in the file\n", s);
    fail();
    return 0;
}

/* ---- the base file of the corrupt table -------------------------------------- */

/*
 * Keys: general.architecture (string), t.u32, t.arr (int32 x 3), t.strs
 * (string x 2); tensors aa.weight f32 [4, 2], ab.weight q8_0 [32, 2],
 * ac.weight f16 [8].  Names are unique in the file so tests can find them.
 */
static void make_base(curate_buf *out, uint32_t alignment)
{
    curate_error err;
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    assert_non_null(w);
    if (alignment)
        OK(curate_gguf_writer_set_alignment(w, alignment, &err));
    OK(curate_gguf_writer_add_str(w, "general.architecture", "llama", 5, &err));
    OK(curate_gguf_writer_add_u32(w, "t.u32", 7, &err));
    int32_t arr[3] = {1, -2, 3};
    OK(curate_gguf_writer_add_array(w, "t.arr", CURATE_GGUF_TYPE_INT32, arr, 3, &err));
    const char *strs[2] = {"a", "bc"};
    OK(curate_gguf_writer_add_str_array(w, "t.strs", strs, NULL, 2, &err));
    float a[8], b[64], c[8];
    for (int i = 0; i < 64; i++)
        b[i] = (float)i / 7.0f - 4.0f;
    for (int i = 0; i < 8; i++)
        a[i] = c[i] = (float)i - 3.5f;
    uint64_t ne_a[2] = {4, 2}, ne_b[2] = {32, 2}, ne_c[1] = {8};
    OK(curate_gguf_writer_add_tensor_f32(w, "aa.weight", CURATE_GGML_TYPE_F32, 2, ne_a, a, &err));
    OK(curate_gguf_writer_add_tensor_f32(w, "ab.weight", CURATE_GGML_TYPE_Q8_0, 2, ne_b, b, &err));
    OK(curate_gguf_writer_add_tensor_f32(w, "ac.weight", CURATE_GGML_TYPE_F16, 1, ne_c, c, &err));
    curate_buf_init(out);
    OK(curate_gguf_writer_write_buf(w, out, &err));
    curate_gguf_writer_free(w);
}

/* Byte positions of a tensor info's fields, found by its name. */
typedef struct tinfo_pos {
    size_t name_len_at, n_dims_at, ne_at, type_at, offset_at;
} tinfo_pos;

static tinfo_pos tensor_pos(const curate_buf *b, const char *name, uint32_t n_dims)
{
    tinfo_pos p;
    size_t at = find(b, name);
    p.name_len_at = at - 8;
    p.n_dims_at = at + strlen(name);
    p.ne_at = p.n_dims_at + 4;
    p.type_at = p.ne_at + 8 * n_dims;
    p.offset_at = p.type_at + 4;
    return p;
}

/* Position of a key's type tag (the value follows it). */
static size_t key_type_pos(const curate_buf *b, const char *key)
{
    return find(b, key) + strlen(key);
}

/* The file must fail to open with status and a message containing what. */
static void expect_fail_(const unsigned char *data, size_t n, curate_status status,
                         const char *what, const char *label, int line)
{
    curate_error err;
    unsigned char *copy;
    curate_gguf *g = open_copy(data, n, &copy, &err);
    if (g || err.code != status || !strstr(err.message, what)) {
        char buf[1200];
        fprintf(stderr, "case '%s' (line %d): expected status %d with '%s', got %s: %s\n", label,
                line, status, what, g ? "success" : curate_strerror(err.code),
                g ? "" : curate_error_format(&err, buf, sizeof buf));
        curate_gguf_close(g);
        free(copy);
        fail();
    }
    assert_true(err.has_offset);
    assert_true(err.offset <= n);
    assert_string_equal(err.file, "test.gguf");
    char buf[1200];
    printf("  %-28s -> %s\n", label, curate_error_format(&err, buf, sizeof buf));
    free(copy);
}
#define expect_fail(d, n, st, what, label) expect_fail_(d, n, st, what, label, __LINE__)

/* ---- 1. round trips ----------------------------------------------------------- */

/* Every scalar type, strings, arrays of each type, nested arrays. */
static curate_gguf_writer *make_all_types(void)
{
    curate_error err;
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    assert_non_null(w);
    OK(curate_gguf_writer_add_u8(w, "v.u8", 250, &err));
    OK(curate_gguf_writer_add_i8(w, "v.i8", -128, &err));
    OK(curate_gguf_writer_add_u16(w, "v.u16", 65535, &err));
    OK(curate_gguf_writer_add_i16(w, "v.i16", -32768, &err));
    OK(curate_gguf_writer_add_u32(w, "v.u32", 4000000000u, &err));
    OK(curate_gguf_writer_add_i32(w, "v.i32", INT32_MIN, &err));
    OK(curate_gguf_writer_add_f32(w, "v.f32", -1.5e-39f, &err)); /* a subnormal */
    OK(curate_gguf_writer_add_bool(w, "v.bool", 1, &err));
    OK(curate_gguf_writer_add_str(w, "v.str", "a\0b\xc3\xa9\n", 6, &err));
    OK(curate_gguf_writer_add_str(w, "v.empty", "", 0, &err));
    OK(curate_gguf_writer_add_u64(w, "v.u64", UINT64_MAX, &err));
    OK(curate_gguf_writer_add_i64(w, "v.i64", INT64_MIN, &err));
    OK(curate_gguf_writer_add_f64(w, "v.f64", -0.0, &err));
    /* an array of every scalar type, 5 elements each, from random bytes */
    static const curate_gguf_type scalars[] = {
        CURATE_GGUF_TYPE_UINT8, CURATE_GGUF_TYPE_INT8, CURATE_GGUF_TYPE_UINT16,
        CURATE_GGUF_TYPE_INT16, CURATE_GGUF_TYPE_UINT32, CURATE_GGUF_TYPE_INT32,
        CURATE_GGUF_TYPE_FLOAT32, CURATE_GGUF_TYPE_BOOL, CURATE_GGUF_TYPE_UINT64,
        CURATE_GGUF_TYPE_INT64, CURATE_GGUF_TYPE_FLOAT64};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        unsigned char bytes[40];
        for (size_t k = 0; k < sizeof bytes; k++)
            bytes[k] = (unsigned char)rnd();
        if (scalars[i] == CURATE_GGUF_TYPE_BOOL)
            for (size_t k = 0; k < 5; k++)
                bytes[k] &= 1;
        char key[32];
        snprintf(key, sizeof key, "a.%s", curate_gguf_type_name(scalars[i]));
        OK(curate_gguf_writer_add_array(w, key, scalars[i], bytes, 5, &err));
    }
    OK(curate_gguf_writer_add_array(w, "a.empty", CURATE_GGUF_TYPE_FLOAT32, NULL, 0, &err));
    const char *strs[3] = {"x", "", "zzz"};
    OK(curate_gguf_writer_add_str_array(w, "a.string", strs, NULL, 3, &err));
    /* nested: [[1, 2] (u32), [-1, -2, -3] (i16), [["deep"]], [] (f64)] */
    OK(curate_gguf_writer_begin_array(w, "a.nested", CURATE_GGUF_TYPE_ARRAY, &err));
    OK(curate_gguf_writer_begin_array(w, NULL, CURATE_GGUF_TYPE_UINT32, &err));
    OK(curate_gguf_writer_add_u32(w, NULL, 1, &err));
    OK(curate_gguf_writer_add_u32(w, NULL, 2, &err));
    OK(curate_gguf_writer_end_array(w, &err));
    int16_t i16[3] = {-1, -2, -3};
    OK(curate_gguf_writer_add_array(w, NULL, CURATE_GGUF_TYPE_INT16, i16, 3, &err));
    OK(curate_gguf_writer_begin_array(w, NULL, CURATE_GGUF_TYPE_ARRAY, &err));
    const char *deep[1] = {"deep"};
    OK(curate_gguf_writer_add_str_array(w, NULL, deep, NULL, 1, &err));
    OK(curate_gguf_writer_end_array(w, &err));
    OK(curate_gguf_writer_begin_array(w, NULL, CURATE_GGUF_TYPE_FLOAT64, &err));
    OK(curate_gguf_writer_end_array(w, &err));
    OK(curate_gguf_writer_end_array(w, &err));
    return w;
}

static void test_roundtrip_metadata(void **state)
{
    (void)state;
    curate_error err;
    curate_gguf_writer *w = make_all_types();
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_gguf_writer_write_buf(w, &b, &err));
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "mem", &err);
    check_ok(g ? CURATE_OK : err.code, &err);
    assert_int_equal(curate_gguf_version(g), 3);
    assert_int_equal(curate_gguf_n_tensors(g), 0);
    assert_int_equal(curate_gguf_n_kv(g), 13 + 11 + 3);
    assert_string_equal(curate_gguf_kv_key(g, 0), "v.u8"); /* file order kept */
    assert_null(curate_gguf_kv_key(g, 1000));

    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    int bl;
    const char *s;
    size_t len;
    OK(curate_gguf_require_u32(g, "v.u8", &u32, &err));
    assert_int_equal(u32, 250);
    OK(curate_gguf_require_i32(g, "v.i8", &i32, &err));
    assert_int_equal(i32, -128);
    OK(curate_gguf_require_u32(g, "v.u16", &u32, &err));
    assert_int_equal(u32, 65535);
    OK(curate_gguf_require_i32(g, "v.i16", &i32, &err));
    assert_int_equal(i32, -32768);
    OK(curate_gguf_require_u32(g, "v.u32", &u32, &err));
    assert_int_equal(u32, 4000000000u);
    OK(curate_gguf_require_i32(g, "v.i32", &i32, &err));
    assert_int_equal(i32, INT32_MIN);
    OK(curate_gguf_require_f32(g, "v.f32", &f32, &err));
    assert_true(f32 == -1.5e-39f);
    OK(curate_gguf_require_bool(g, "v.bool", &bl, &err));
    assert_int_equal(bl, 1);
    OK(curate_gguf_require_str(g, "v.str", &s, &len, &err));
    assert_int_equal(len, 6);
    assert_memory_equal(s, "a\0b\xc3\xa9\n", 6);
    OK(curate_gguf_require_str(g, "v.empty", &s, &len, &err));
    assert_int_equal(len, 0);
    OK(curate_gguf_require_u64(g, "v.u64", &u64, &err));
    assert_true(u64 == UINT64_MAX);
    OK(curate_gguf_value_i64(curate_gguf_get(g, "v.i64"), &i64, &err));
    assert_true(i64 == INT64_MIN);
    OK(curate_gguf_value_f64(curate_gguf_get(g, "v.f64"), &f64, &err));
    assert_true(f64 == 0.0 && signbit(f64));

    /* arrays: the payload bytes are what we wrote (rnd replayed) */
    const curate_gguf_value *v = curate_gguf_get(g, "a.uint64");
    assert_non_null(v);
    assert_int_equal(v->type, CURATE_GGUF_TYPE_ARRAY);
    assert_int_equal(v->elem_type, CURATE_GGUF_TYPE_UINT64);
    assert_int_equal(v->len, 5);
    assert_null(v->elems);
    v = curate_gguf_get(g, "a.empty");
    assert_int_equal(v->len, 0);
    const curate_gguf_value *sa;
    OK(curate_gguf_require_array(g, "a.string", CURATE_GGUF_TYPE_STRING, &sa, &err));
    assert_int_equal(sa->len, 3);
    curate_gguf_value e;
    OK(curate_gguf_value_elem(sa, 2, &e, &err));
    OK(curate_gguf_value_str(&e, &s, &len, &err));
    assert_int_equal(len, 3);
    assert_memory_equal(s, "zzz", 3);
    assert_int_equal(curate_gguf_value_elem(sa, 3, &e, &err), CURATE_ERR_RANGE);

    /* nested */
    const curate_gguf_value *n;
    OK(curate_gguf_require_array(g, "a.nested", CURATE_GGUF_TYPE_ARRAY, &n, &err));
    assert_int_equal(n->len, 4);
    assert_int_equal(n->elems[0].elem_type, CURATE_GGUF_TYPE_UINT32);
    uint32_t two[2];
    OK(curate_gguf_array_u32(&n->elems[0], two, 2, &err));
    assert_int_equal(two[0], 1);
    assert_int_equal(two[1], 2);
    int32_t three[3];
    OK(curate_gguf_array_i32(&n->elems[1], three, 3, &err));
    assert_int_equal(three[2], -3);
    assert_int_equal(n->elems[2].elem_type, CURATE_GGUF_TYPE_ARRAY);
    OK(curate_gguf_value_elem(&n->elems[2], 0, &e, &err));
    curate_gguf_value e2;
    OK(curate_gguf_value_elem(&e, 0, &e2, &err));
    OK(curate_gguf_value_str(&e2, &s, &len, &err));
    assert_int_equal(len, 4);
    assert_memory_equal(s, "deep", 4);
    assert_int_equal(n->elems[3].elem_type, CURATE_GGUF_TYPE_FLOAT64);
    assert_int_equal(n->elems[3].len, 0);

    /* Re-writing everything that was read gives the same bytes. */
    curate_gguf_writer *w2 = curate_gguf_writer_new(&err);
    for (size_t i = 0; i < curate_gguf_n_kv(g); i++)
        OK(curate_gguf_writer_add_value(w2, curate_gguf_kv_key(g, i), curate_gguf_kv_value(g, i),
                                        &err));
    curate_buf b2;
    curate_buf_init(&b2);
    OK(curate_gguf_writer_write_buf(w2, &b2, &err));
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    curate_buf_release(&b2);
    curate_gguf_writer_free(w2);
    curate_gguf_close(g);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);
}

static void test_roundtrip_tensors(void **state)
{
    (void)state;
    static const curate_ggml_type types[] = {CURATE_GGML_TYPE_F32, CURATE_GGML_TYPE_F16,
                                             CURATE_GGML_TYPE_BF16, CURATE_GGML_TYPE_Q8_0,
                                             CURATE_GGML_TYPE_Q4_0, CURATE_GGML_TYPE_Q4_1};
    static const uint32_t aligns[] = {0, 1, 64, 4096};
    enum { NT = sizeof types / sizeof types[0] };
    for (size_t ai = 0; ai < sizeof aligns / sizeof aligns[0]; ai++) {
        curate_error err;
        curate_gguf_writer *w = curate_gguf_writer_new(&err);
        if (aligns[ai])
            OK(curate_gguf_writer_set_alignment(w, aligns[ai], &err));
        OK(curate_gguf_writer_add_str(w, "general.architecture", "x", 1, &err));
        unsigned char *raw[NT * 4];
        size_t raw_len[NT * 4];
        uint64_t shapes[NT * 4][4];
        int k = 0;
        for (size_t ti = 0; ti < NT; ti++) {
            for (uint32_t nd = 1; nd <= 4; nd++, k++) {
                uint64_t ne[4] = {64, 3, 2, 1};
                ne[nd - 1] = nd == 1 ? 96 : ne[nd - 1]; /* some variety */
                uint64_t n = 1;
                for (uint32_t d = 0; d < nd; d++)
                    n *= ne[d];
                uint64_t bytes;
                assert_int_equal(curate_ggml_row_size(types[ti], n, &bytes), CURATE_OK);
                raw[k] = malloc(bytes);
                raw_len[k] = bytes;
                for (uint64_t i = 0; i < bytes; i++)
                    raw[k][i] = (unsigned char)rnd(); /* any bit pattern is data */
                memcpy(shapes[k], ne, sizeof ne);
                char name[64];
                snprintf(name, sizeof name, "t.%s.%u", curate_ggml_type_name(types[ti]), nd);
                OK(curate_gguf_writer_add_tensor(w, name, types[ti], nd, ne, raw[k], bytes, &err));
            }
        }
        curate_buf b;
        curate_buf_init(&b);
        OK(curate_gguf_writer_write_buf(w, &b, &err));
        curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "mem", &err);
        check_ok(g ? CURATE_OK : err.code, &err);
        uint64_t align = aligns[ai] ? aligns[ai] : 32;
        assert_int_equal(curate_gguf_alignment(g), align);
        assert_int_equal(curate_gguf_data_offset(g) % align, 0);
        assert_int_equal(b.len % align, 0); /* the last tensor is padded too */
        assert_int_equal(curate_gguf_n_tensors(g), NT * 4);
        k = 0;
        for (size_t ti = 0; ti < NT; ti++) {
            for (uint32_t nd = 1; nd <= 4; nd++, k++) {
                char name[64];
                snprintf(name, sizeof name, "t.%s.%u", curate_ggml_type_name(types[ti]), nd);
                const curate_gguf_tensor *t = curate_gguf_find_tensor(g, name);
                assert_non_null(t);
                assert_ptr_equal(t, curate_gguf_tensor_at(g, (size_t)k));
                assert_string_equal(t->name, name);
                assert_int_equal(t->type, types[ti]);
                assert_int_equal(t->n_dims, nd);
                for (uint32_t d = 0; d < 4; d++)
                    assert_int_equal(t->ne[d], d < nd ? shapes[k][d] : 1);
                assert_int_equal(t->n_bytes, raw_len[k]);
                assert_int_equal(t->offset % align, 0);
                assert_memory_equal(t->data, raw[k], raw_len[k]);
                /* conversion through the handle equals the direct one */
                if (types[ti] != CURATE_GGML_TYPE_F32) {
                    float *x = malloc(t->n_elements * sizeof *x), *y = malloc(t->n_elements * sizeof *y);
                    OK(curate_gguf_tensor_to_f32(t, x, t->n_elements, &err));
                    OK(curate_ggml_to_f32(types[ti], raw[k], y, t->n_elements));
                    assert_memory_equal(x, y, t->n_elements * sizeof *x);
                    free(x);
                    free(y);
                }
            }
        }
        /* re-writing the tensors read gives the same file */
        curate_gguf_writer *w2 = curate_gguf_writer_new(&err);
        for (size_t i = 0; i < curate_gguf_n_kv(g); i++)
            OK(curate_gguf_writer_add_value(w2, curate_gguf_kv_key(g, i),
                                            curate_gguf_kv_value(g, i), &err));
        for (size_t i = 0; i < curate_gguf_n_tensors(g); i++) {
            const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
            OK(curate_gguf_writer_add_tensor(w2, t->name, t->type, t->n_dims, t->ne, t->data,
                                             t->n_bytes, &err));
        }
        curate_buf b2;
        curate_buf_init(&b2);
        OK(curate_gguf_writer_write_buf(w2, &b2, &err));
        assert_int_equal(b2.len, b.len);
        assert_memory_equal(b2.data, b.data, b.len);
        curate_buf_release(&b2);
        curate_gguf_writer_free(w2);
        curate_gguf_close(g);
        curate_buf_release(&b);
        curate_gguf_writer_free(w);
        for (int i = 0; i < NT * 4; i++)
            free(raw[i]);
    }
}

static void test_roundtrip_file_and_v2(void **state)
{
    (void)state;
    curate_error err;
    char path[1024];
    snprintf(path, sizeof path, "%s/test_gguf_rt.gguf", tmp_dir());
    curate_gguf_writer *w = make_all_types();
    OK(curate_gguf_writer_set_version(w, 2, &err));
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)i * 0.25f;
    uint64_t ne[2] = {32, 2};
    OK(curate_gguf_writer_add_tensor_f32(w, "q", CURATE_GGML_TYPE_Q8_0, 2, ne, x, &err));
    OK(curate_gguf_writer_write(w, path, &err));
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_gguf_writer_write_buf(w, &b, &err));

    curate_gguf *g = curate_gguf_open(path, &err);
    check_ok(g ? CURATE_OK : err.code, &err);
    assert_int_equal(curate_gguf_version(g), 2);
    assert_int_equal(curate_gguf_file_size(g), b.len);
    /* the file holds the same bytes as write_buf */
    FILE *f = fopen(path, "rb");
    unsigned char *fb = malloc(b.len + 1);
    assert_int_equal(fread(fb, 1, b.len + 1, f), b.len);
    fclose(f);
    assert_memory_equal(fb, b.data, b.len);
    free(fb);
    /* Q8_0 of exact multiples of a power-of-two scale is lossless here */
    float y[64];
    OK(curate_gguf_tensor_to_f32(curate_gguf_find_tensor(g, "q"), y, 64, &err));
    for (int i = 0; i < 64; i++)
        assert_true(fabsf(y[i] - x[i]) <= (i < 32 ? 7.75f : 15.75f) / 127.0f); /* <= d */
    curate_gguf_close(g);

    /* no temporary left behind next to it */
    DIR *d = opendir(tmp_dir());
    struct dirent *de;
    while ((de = readdir(d)))
        assert_null(strstr(de->d_name, "test_gguf_rt.gguf.tmp."));
    closedir(d);
    /* a write into a missing directory fails cleanly */
    assert_int_equal(curate_gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), CURATE_ERR_IO);
    unlink(path);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);

    /* open errors */
    assert_null(curate_gguf_open("/nonexistent/file.gguf", &err));
    assert_int_equal(err.code, CURATE_ERR_IO);
    assert_null(curate_gguf_open(tmp_dir(), &err));
    assert_int_equal(err.code, CURATE_ERR_IO);
    curate_gguf_close(NULL);
    curate_gguf_writer_free(NULL);
}

static void test_many_keys_lookup(void **state)
{
    (void)state;
    curate_error err;
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    char keys[300][24];
    for (int i = 0; i < 300; i++) {
        snprintf(keys[i], sizeof keys[i], "k%08llx.%d", (unsigned long long)(rnd() >> 32), i);
        OK(curate_gguf_writer_add_i32(w, keys[i], i, &err));
    }
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_gguf_writer_write_buf(w, &b, &err));
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, NULL, &err);
    assert_non_null(g);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(curate_gguf_find_key(g, keys[i]), i);
        int32_t v;
        OK(curate_gguf_require_i32(g, keys[i], &v, &err));
        assert_int_equal(v, i);
    }
    assert_int_equal(curate_gguf_find_key(g, "k"), -1);
    assert_int_equal(curate_gguf_find_key(g, ""), -1);
    assert_null(curate_gguf_find_tensor(g, "k"));
    curate_gguf_close(g);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);
}

/* ---- 2. typed access and writer errors ------------------------------------------- */

static void test_getters(void **state)
{
    (void)state;
    curate_error err;
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    OK(curate_gguf_writer_add_u8(w, "u8", 200, &err));
    OK(curate_gguf_writer_add_i8(w, "i8", -5, &err));
    OK(curate_gguf_writer_add_u64(w, "big", (uint64_t)1 << 40, &err));
    OK(curate_gguf_writer_add_i64(w, "neg", -((int64_t)1 << 40), &err));
    OK(curate_gguf_writer_add_f64(w, "f64", 1e300, &err));
    OK(curate_gguf_writer_add_f64(w, "f64s", 0.25, &err));
    OK(curate_gguf_writer_add_str(w, "str", "hi", 2, &err));
    OK(curate_gguf_writer_add_bool(w, "flag", 0, &err));
    float fa[3] = {1, 2, 3};
    OK(curate_gguf_writer_add_array(w, "fa", CURATE_GGUF_TYPE_FLOAT32, fa, 3, &err));
    uint32_t ua[2] = {5, 4000000000u};
    OK(curate_gguf_writer_add_array(w, "ua", CURATE_GGUF_TYPE_UINT32, ua, 2, &err));
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_gguf_writer_write_buf(w, &b, &err));
    curate_gguf_writer_free(w);
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "model.gguf", &err);
    assert_non_null(g);

    uint32_t u32 = 0;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    int bl;
    const char *s;
    size_t len;
    /* integers convert when the value fits */
    OK(curate_gguf_require_u32(g, "u8", &u32, &err));
    assert_int_equal(u32, 200);
    OK(curate_gguf_require_i32(g, "i8", &i32, &err));
    assert_int_equal(i32, -5);
    OK(curate_gguf_require_u64(g, "big", &u64, &err));
    assert_true(u64 == (uint64_t)1 << 40);
    OK(curate_gguf_value_i64(curate_gguf_get(g, "neg"), &i64, &err));
    assert_true(i64 == -((int64_t)1 << 40));
    /* and fail with RANGE when it does not */
    u32 = 77;
    assert_int_equal(curate_gguf_require_u32(g, "i8", &u32, &err), CURATE_ERR_RANGE);
    assert_int_equal(u32, 77); /* untouched on failure */
    assert_non_null(strstr(err.message, "key 'i8'"));
    assert_non_null(strstr(err.message, "-5"));
    assert_int_equal(curate_gguf_require_u32(g, "big", &u32, &err), CURATE_ERR_RANGE);
    assert_int_equal(curate_gguf_require_i32(g, "neg", &i32, &err), CURATE_ERR_RANGE);
    assert_int_equal(curate_gguf_require_u64(g, "neg", &u64, &err), CURATE_ERR_RANGE);
    /* wrong types name what was expected and found */
    assert_int_equal(curate_gguf_require_u32(g, "str", &u32, &err), CURATE_ERR_FORMAT);
    assert_non_null(strstr(err.message, "key 'str'"));
    assert_non_null(strstr(err.message, "found string"));
    assert_string_equal(err.file, "model.gguf");
    assert_int_equal(curate_gguf_require_u32(g, "flag", &u32, &err), CURATE_ERR_FORMAT);
    assert_int_equal(curate_gguf_require_bool(g, "u8", &bl, &err), CURATE_ERR_FORMAT);
    assert_int_equal(curate_gguf_require_str(g, "u8", &s, &len, &err), CURATE_ERR_FORMAT);
    assert_int_equal(curate_gguf_require_f32(g, "u8", &f32, &err), CURATE_ERR_FORMAT);
    assert_int_equal(curate_gguf_require_u32(g, "fa", &u32, &err), CURATE_ERR_FORMAT);
    assert_non_null(strstr(err.message, "found array of float32"));
    /* floats: f64 narrows when it fits */
    OK(curate_gguf_require_f32(g, "f64s", &f32, &err));
    assert_true(f32 == 0.25f);
    assert_int_equal(curate_gguf_require_f32(g, "f64", &f32, &err), CURATE_ERR_RANGE);
    /* missing keys */
    assert_int_equal(curate_gguf_require_u32(g, "llama.block_count", &u32, &err),
                     CURATE_ERR_FORMAT);
    assert_string_equal(err.message, "missing required key 'llama.block_count'");
    assert_string_equal(err.file, "model.gguf");
    const curate_gguf_value *arr;
    assert_int_equal(curate_gguf_require_array(g, "nope", -1, &arr, &err), CURATE_ERR_FORMAT);
    assert_int_equal(curate_gguf_require_array(g, "str", -1, &arr, &err), CURATE_ERR_FORMAT);
    assert_int_equal(curate_gguf_require_array(g, "fa", CURATE_GGUF_TYPE_INT32, &arr, &err),
                     CURATE_ERR_FORMAT);
    assert_non_null(strstr(err.message, "expected array of int32, found array of float32"));
    /* optional keys */
    OK(curate_gguf_get_u32(g, "absent", 42, &u32, &err));
    assert_int_equal(u32, 42);
    OK(curate_gguf_get_f32(g, "absent", 1e4f, &f32, &err));
    assert_true(f32 == 1e4f);
    OK(curate_gguf_get_bool(g, "flag", 1, &bl, &err));
    assert_int_equal(bl, 0);
    assert_int_equal(curate_gguf_get_u32(g, "str", 1, &u32, &err), CURATE_ERR_FORMAT);
    /* whole arrays */
    OK(curate_gguf_require_array(g, "fa", CURATE_GGUF_TYPE_FLOAT32, &arr, &err));
    float fo[3];
    OK(curate_gguf_array_f32(arr, fo, 3, &err));
    assert_true(fo[0] == 1 && fo[1] == 2 && fo[2] == 3);
    assert_int_equal(curate_gguf_array_f32(arr, fo, 2, &err), CURATE_ERR_RANGE);
    int32_t io[3];
    assert_int_equal(curate_gguf_array_i32(arr, io, 3, &err), CURATE_ERR_FORMAT);
    assert_non_null(strstr(err.message, "element 0"));
    OK(curate_gguf_require_array(g, "ua", -1, &arr, &err));
    uint32_t uo[2];
    OK(curate_gguf_array_u32(arr, uo, 2, &err));
    assert_int_equal(uo[1], 4000000000u);
    assert_int_equal(curate_gguf_array_i32(arr, io, 2, &err), CURATE_ERR_RANGE);
    assert_non_null(strstr(err.message, "element 1"));
    curate_gguf_value e;
    assert_int_equal(curate_gguf_value_elem(curate_gguf_get(g, "u8"), 0, &e, &err),
                     CURATE_ERR_FORMAT);
    curate_gguf_close(g);
    curate_buf_release(&b);
}

/* A q6_K tensor (known size, no conversion) opens, copies, and refuses
 * conversion with UNSUPPORTED naming the tensor and type. */
static void test_storage_only_type(void **state)
{
    (void)state;
    curate_error err;
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    unsigned char raw[2 * 210];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)rnd();
    uint64_t ne[2] = {256, 2};
    OK(curate_gguf_writer_add_tensor(w, "output.weight", (curate_ggml_type)14, 2, ne, raw,
                                     sizeof raw, &err));
    float x[512];
    assert_int_equal(curate_gguf_writer_add_tensor_f32(w, "other", (curate_ggml_type)14, 2, ne, x,
                                                       &err),
                     CURATE_ERR_UNSUPPORTED);
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_gguf_writer_write_buf(w, &b, &err));
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "q6k.gguf", &err);
    check_ok(g ? CURATE_OK : err.code, &err);
    const curate_gguf_tensor *t = curate_gguf_find_tensor(g, "output.weight");
    assert_non_null(t);
    assert_int_equal(t->n_bytes, sizeof raw);
    assert_memory_equal(t->data, raw, sizeof raw);
    assert_int_equal(curate_gguf_tensor_to_f32(t, x, 512, &err), CURATE_ERR_UNSUPPORTED);
    assert_string_equal(err.message,
                        "tensor 'output.weight': type q6_K cannot be converted to f32");
    /* a q6_K row must be whole 256-element super-blocks */
    unsigned char *f = malloc(b.len);
    memcpy(f, b.data, b.len);
    tinfo_pos p = tensor_pos(&b, "output.weight", 2);
    put64(f + p.ne_at, 128);
    expect_fail(f, b.len, CURATE_ERR_FORMAT, "not a multiple of the q6_K block size 256",
                "q6_K row of 128");
    free(f);
    curate_gguf_close(g);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);
}

static void test_tensor_access(void **state)
{
    (void)state;
    curate_error err;
    curate_buf b;
    make_base(&b, 0);
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "base.gguf", &err);
    assert_non_null(g);
    uint64_t want[2] = {32, 2}, any[2] = {0, 2}, wrong[2] = {32, 3};
    const curate_gguf_tensor *t = curate_gguf_require_tensor(g, "ab.weight", 2, want, &err);
    assert_non_null(t);
    assert_ptr_equal(curate_gguf_require_tensor(g, "ab.weight", 2, any, &err), t);
    assert_null(curate_gguf_require_tensor(g, "ab.weight", 2, wrong, &err));
    assert_int_equal(err.code, CURATE_ERR_FORMAT);
    assert_string_equal(err.message, "tensor 'ab.weight' has shape [32, 2], expected [32, 3]");
    assert_null(curate_gguf_require_tensor(g, "ab.weight", 1, want, &err));
    assert_null(curate_gguf_require_tensor(g, "output.weight", 2, want, &err));
    assert_string_equal(err.message, "missing tensor 'output.weight'");

    float all[64], rows[32];
    OK(curate_gguf_tensor_to_f32(t, all, 64, &err));
    assert_int_equal(curate_gguf_tensor_to_f32(t, all, 63, &err), CURATE_ERR_RANGE);
    OK(curate_gguf_tensor_rows_to_f32(t, 1, 1, rows, &err));
    assert_memory_equal(rows, all + 32, sizeof rows);
    assert_int_equal(curate_gguf_tensor_rows_to_f32(t, 2, 1, rows, &err), CURATE_ERR_RANGE);
    assert_int_equal(curate_gguf_tensor_rows_to_f32(t, 1, UINT64_MAX, rows, &err),
                     CURATE_ERR_RANGE);
    /* the Q8_0 values are within the block bound of the inputs */
    for (int i = 0; i < 64; i++) {
        float x = (float)i / 7.0f - 4.0f;
        float amax = i < 32 ? 4.0f : fabsf((float)63 / 7.0f - 4.0f);
        assert_true(fabsf(all[i] - x) <= amax / 127.0f);
    }
    const curate_gguf_tensor *c = curate_gguf_find_tensor(g, "ac.weight");
    float cf[8];
    OK(curate_gguf_tensor_to_f32(c, cf, 8, &err));
    for (int i = 0; i < 8; i++)
        assert_true(cf[i] == (float)i - 3.5f); /* exact in f16 */
    curate_gguf_close(g);
    curate_buf_release(&b);
}

static void test_writer_errors(void **state)
{
    (void)state;
    curate_error err;
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    OK(curate_gguf_writer_add_u32(w, "a", 1, &err));
    assert_int_equal(curate_gguf_writer_add_u32(w, "a", 2, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "duplicate key 'a'"));
    assert_int_equal(curate_gguf_writer_add_u32(w, NULL, 2, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_end_array(w, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_set_alignment(w, 0, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_set_alignment(w, 48, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_add_str(w, "general.alignment", "32", 2, &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_set_version(w, 1, &err), CURATE_ERR_INVALID);
    OK(curate_gguf_writer_begin_array(w, "arr", CURATE_GGUF_TYPE_INT32, &err));
    assert_int_equal(curate_gguf_writer_add_u32(w, NULL, 1, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_add_i32(w, "other", 1, &err), CURATE_ERR_INVALID);
    curate_buf b;
    curate_buf_init(&b);
    assert_int_equal(curate_gguf_writer_write_buf(w, &b, &err), CURATE_ERR_INVALID);
    OK(curate_gguf_writer_add_i32(w, NULL, 1, &err));
    OK(curate_gguf_writer_end_array(w, &err));
    assert_int_equal(curate_gguf_writer_add_array(w, "s", CURATE_GGUF_TYPE_STRING, NULL, 0, &err),
                     CURATE_ERR_INVALID);

    float x[64] = {0};
    uint64_t ne[5] = {32, 2, 1, 1, 1}, ne_bad[2] = {16, 4};
    OK(curate_gguf_writer_add_tensor_f32(w, "t", CURATE_GGML_TYPE_Q8_0, 2, ne, x, &err));
    assert_int_equal(curate_gguf_writer_add_tensor_f32(w, "t", CURATE_GGML_TYPE_F32, 2, ne, x, &err),
                     CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "duplicate tensor name 't'"));
    assert_int_equal(curate_gguf_writer_add_tensor_f32(w, "u", CURATE_GGML_TYPE_Q8_0, 2, ne_bad,
                                                       x, &err),
                     CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "block size"));
    assert_int_equal(curate_gguf_writer_add_tensor_f32(w, "u", CURATE_GGML_TYPE_F32, 5, ne, x, &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_add_tensor_f32(w, "u", CURATE_GGML_TYPE_F32, 0, ne, x, &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_add_tensor_f32(w, "u", (curate_ggml_type)99, 1, ne, x, &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_gguf_writer_add_tensor(w, "u", CURATE_GGML_TYPE_F32, 1, ne, x, 100, &err),
                     CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "needs 128"));
    uint64_t huge[2] = {(uint64_t)1 << 40, (uint64_t)1 << 40};
    assert_int_equal(curate_gguf_writer_add_tensor(w, "u", CURATE_GGML_TYPE_F32, 2, huge, x, 4, &err),
                     CURATE_ERR_RANGE);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[79] = 0;
    assert_int_equal(curate_gguf_writer_add_tensor(w, longname, CURATE_GGML_TYPE_F32, 1, ne, x,
                                                   128, &err),
                     CURATE_ERR_INVALID);
    /* after all those refusals the writer still writes a valid file */
    OK(curate_gguf_writer_write_buf(w, &b, &err));
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, NULL, &err);
    assert_non_null(g);
    assert_int_equal(curate_gguf_n_kv(g), 2);
    assert_int_equal(curate_gguf_n_tensors(g), 1);
    curate_gguf_close(g);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);
}

/* ---- 3. the corrupt-file table ------------------------------------------------------ */

static void test_corrupt_table(void **state)
{
    (void)state;
    curate_buf base;
    make_base(&base, 0);
    const size_t n = base.len;
    unsigned char *f = malloc(n);
    curate_error err;
    unsigned char *copy;
    curate_gguf *g = open_copy(base.data, n, &copy, &err);
    check_ok(g ? CURATE_OK : err.code, &err);
    curate_gguf_close(g);
    free(copy);

#define FRESH() memcpy(f, base.data, n)
    FRESH();
    f[0] = 'X';
    expect_fail(f, n, CURATE_ERR_FORMAT, "bad magic", "bad magic");
    FRESH();
    put32(f + 4, 1);
    expect_fail(f, n, CURATE_ERR_UNSUPPORTED, "unsupported GGUF version 1", "version 1");
    FRESH();
    put32(f + 4, 99);
    expect_fail(f, n, CURATE_ERR_UNSUPPORTED, "unsupported GGUF version 99", "version 99");
    FRESH();
    put32(f + 4, 0x03000000u);
    expect_fail(f, n, CURATE_ERR_UNSUPPORTED, "big-endian", "big-endian version");
    expect_fail(f, 0, CURATE_ERR_FORMAT, "truncated", "empty file");
    expect_fail((const unsigned char *)base.data, 10, CURATE_ERR_FORMAT, "truncated", "mid-header");

    FRESH();
    put64(f + 16, (uint64_t)1 << 60);
    expect_fail(f, n, CURATE_ERR_FORMAT, "metadata count", "n_kv absurd");
    FRESH();
    put64(f + 8, (uint64_t)1 << 60);
    expect_fail(f, n, CURATE_ERR_FORMAT, "tensor count", "n_tensors absurd");
    FRESH();
    put64(f + 16, 5); /* one more key than present: tensor infos parse as a key */
    expect_fail(f, n, CURATE_ERR_FORMAT, "string length", "n_kv off by one");

    /* strings */
    size_t arch = find(&base, "general.architecture");
    FRESH();
    put64(f + arch - 8, (uint64_t)1 << 63);
    expect_fail(f, n, CURATE_ERR_FORMAT, "string length 9223372036854775808",
                "key length 2^63");
    size_t arch_val = key_type_pos(&base, "general.architecture") + 4;
    FRESH();
    put64(f + arch_val, UINT64_MAX);
    expect_fail(f, n, CURATE_ERR_FORMAT, "string length", "value length 2^64-1");

    /* value types */
    size_t u32_type = key_type_pos(&base, "t.u32");
    FRESH();
    put32(f + u32_type, 99);
    expect_fail(f, n, CURATE_ERR_FORMAT, "key 't.u32': unknown value type 99",
                "unknown value type");
    FRESH();
    put32(f + u32_type, 13);
    expect_fail(f, n, CURATE_ERR_FORMAT, "unknown value type 13", "value type 13");
    size_t arr_type = key_type_pos(&base, "t.arr");
    FRESH();
    put32(f + arr_type + 4, 99);
    expect_fail(f, n, CURATE_ERR_FORMAT, "unknown array element type 99",
                "unknown element type");
    FRESH();
    put64(f + arr_type + 8, (uint64_t)1 << 62);
    expect_fail(f, n, CURATE_ERR_FORMAT, "array of 4611686018427387904 int32",
                "array count absurd");
    FRESH();
    put64(f + arr_type + 8, UINT64_MAX);
    expect_fail(f, n, CURATE_ERR_FORMAT, "exceeds", "array count 2^64-1");
    size_t strs_type = key_type_pos(&base, "t.strs");
    FRESH();
    put64(f + strs_type + 8, (uint64_t)1 << 61);
    expect_fail(f, n, CURATE_ERR_FORMAT, "string elements exceeds", "string array count");

    /* duplicate key: rename t.arr to t.u32's name (same length) */
    FRESH();
    memcpy(f + find(&base, "t.arr"), "t.u32", 5);
    expect_fail(f, n, CURATE_ERR_FORMAT, "duplicate metadata key 't.u32'", "duplicate key");

    /* tensor infos */
    tinfo_pos pa = tensor_pos(&base, "aa.weight", 2);
    tinfo_pos pb = tensor_pos(&base, "ab.weight", 2);
    tinfo_pos pc = tensor_pos(&base, "ac.weight", 1);
    FRESH();
    put32(f + pa.n_dims_at, 5);
    expect_fail(f, n, CURATE_ERR_FORMAT, "tensor 'aa.weight': 5 dimensions", "n_dims 5");
    FRESH();
    put64(f + pa.ne_at, (uint64_t)1 << 32);
    put64(f + pa.ne_at + 8, (uint64_t)1 << 32);
    expect_fail(f, n, CURATE_ERR_FORMAT, "overflow", "dims product 2^64");
    FRESH();
    put64(f + pa.ne_at, (uint64_t)3 << 31);
    put64(f + pa.ne_at + 8, (uint64_t)3 << 31);
    expect_fail(f, n, CURATE_ERR_FORMAT, "overflow", "dims product > 2^63");
    FRESH();
    put64(f + pa.ne_at, (uint64_t)1 << 63);
    put64(f + pa.ne_at + 8, 1);
    expect_fail(f, n, CURATE_ERR_FORMAT, "too large", "dim 2^63");
    FRESH();
    put64(f + pa.ne_at, (uint64_t)1 << 61); /* fits in elements, not in bytes */
    put64(f + pa.ne_at + 8, 2);
    expect_fail(f, n, CURATE_ERR_FORMAT, "data size overflows", "bytes 2^64");
    FRESH();
    put64(f + pa.ne_at, (uint64_t)1 << 60); /* 2^63 bytes: fits, but not in the file */
    put64(f + pa.ne_at + 8, 2);
    expect_fail(f, n, CURATE_ERR_FORMAT, "past the end", "bytes 2^63");
    FRESH();
    put32(f + pa.type_at, 99);
    expect_fail(f, n, CURATE_ERR_FORMAT, "tensor 'aa.weight': unknown tensor type 99",
                "unknown tensor type 99");
    FRESH();
    put32(f + pa.type_at, 4); /* Q4_2, removed from ggml long ago */
    expect_fail(f, n, CURATE_ERR_FORMAT, "unknown tensor type 4", "tensor type 4");
    FRESH();
    put64(f + pb.ne_at, 16); /* q8_0 row of 16 */
    expect_fail(f, n, CURATE_ERR_FORMAT, "block size", "q8_0 row not whole blocks");
    FRESH();
    put64(f + pc.offset_at, (uint64_t)1 << 40);
    expect_fail(f, n, CURATE_ERR_FORMAT, "tensor 'ac.weight': data", "offset past EOF");
    FRESH();
    put64(f + pc.offset_at, UINT64_MAX - 31); /* aligned, and offset + size wraps */
    expect_fail(f, n, CURATE_ERR_FORMAT, "past the end", "offset wraps");
    FRESH();
    uint64_t off;
    memcpy(&off, base.data + pc.offset_at, 8);
    put64(f + pc.offset_at, off + 1);
    expect_fail(f, n, CURATE_ERR_FORMAT, "not a multiple of the alignment", "misaligned offset");
    FRESH();
    put64(f + pc.offset_at, off + 32); /* aligned but the data runs past the end */
    expect_fail(f, n, CURATE_ERR_FORMAT, "past the end", "offset + size past EOF");
    FRESH();
    memcpy(f + find(&base, "ab.weight"), "aa.weight", 9);
    expect_fail(f, n, CURATE_ERR_FORMAT, "duplicate tensor name 'aa.weight'", "duplicate tensor");
    FRESH();
    f[find(&base, "ab.weight") + 2] = 0;
    expect_fail(f, n, CURATE_ERR_FORMAT, "tensor name 'ab\\x00weight' contains a NUL byte",
                "NUL in tensor name");
    FRESH();
    f[find(&base, "t.u32") + 1] = 0;
    expect_fail(f, n, CURATE_ERR_FORMAT, "contains a NUL byte", "NUL in key");
    FRESH();
    put64(f + pa.name_len_at, (uint64_t)1 << 63);
    expect_fail(f, n, CURATE_ERR_FORMAT, "tensor name: string length", "tensor name 2^63");
    free(f);

    /* alignment: a file written with 64, patched */
    curate_buf al;
    make_base(&al, 64);
    unsigned char *h = malloc(al.len);
    size_t at = key_type_pos(&al, "general.alignment");
    memcpy(h, al.data, al.len);
    put32(h + at + 4, 0);
    expect_fail(h, al.len, CURATE_ERR_FORMAT, "general.alignment 0", "alignment 0");
    memcpy(h, al.data, al.len);
    put32(h + at + 4, 48);
    expect_fail(h, al.len, CURATE_ERR_FORMAT, "general.alignment 48 is not", "alignment 48");
    memcpy(h, al.data, al.len);
    put32(h + at, CURATE_GGUF_TYPE_INT32);
    expect_fail(h, al.len, CURATE_ERR_FORMAT, "general.alignment must be a uint32",
                "alignment int32");
    memcpy(h, al.data, al.len);
    put32(h + at + 4, 16); /* a smaller valid alignment moves the data start */
    g = open_copy(h, al.len, &copy, &err);
    /* the offsets are multiples of 64, so of 16 too; the data section moves
     * but stays inside the file: this must open */
    assert_non_null(g);
    assert_int_equal(curate_gguf_alignment(g), 16);
    curate_gguf_close(g);
    free(copy);
    free(h);
    curate_buf_release(&al);

    /* nesting depth: key "x" = 100 arrays of one array, hand-built */
    curate_buf deep;
    curate_buf_init(&deep);
    uint32_t u;
    uint64_t q;
    u = 0x46554747u; curate_buf_append(&deep, &u, 4);
    u = 3; curate_buf_append(&deep, &u, 4);
    q = 0; curate_buf_append(&deep, &q, 8);
    q = 1; curate_buf_append(&deep, &q, 8);
    q = 1; curate_buf_append(&deep, &q, 8);
    curate_buf_append(&deep, "x", 1);
    u = CURATE_GGUF_TYPE_ARRAY; curate_buf_append(&deep, &u, 4);
    for (int i = 0; i < 100; i++) {
        u = CURATE_GGUF_TYPE_ARRAY; curate_buf_append(&deep, &u, 4);
        q = 1; curate_buf_append(&deep, &q, 8);
    }
    u = CURATE_GGUF_TYPE_UINT8; curate_buf_append(&deep, &u, 4);
    q = 0; curate_buf_append(&deep, &q, 8);
    expect_fail((unsigned char *)deep.data, deep.len, CURATE_ERR_FORMAT, "nested deeper",
                "arrays nested 100 deep");
    curate_buf_release(&deep);
    curate_buf_release(&base);
#undef FRESH
}

static void test_truncation_everywhere(void **state)
{
    (void)state;
    curate_buf base;
    make_base(&base, 0);
    curate_error err;
    unsigned char *copy;
    curate_gguf *g = open_copy(base.data, base.len, &copy, &err);
    assert_non_null(g);
    uint64_t need = 0;
    for (size_t i = 0; i < curate_gguf_n_tensors(g); i++) {
        const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
        uint64_t end = curate_gguf_data_offset(g) + t->offset + t->n_bytes;
        if (end > need)
            need = end;
    }
    curate_gguf_close(g);
    free(copy);
    size_t failures = 0;
    for (size_t len = 0; len < base.len; len++) {
        g = open_copy(base.data, len, &copy, &err);
        if (len < need) {
            if (g || err.code != CURATE_ERR_FORMAT ||
                (!strstr(err.message, "truncated") && !strstr(err.message, "past the end") &&
                 !strstr(err.message, "exceeds") && !strstr(err.message, "impossible"))) {
                fprintf(stderr, "truncated at %zu: %s\n", len, g ? "opened" : err.message);
                fail();
            }
            assert_true(err.has_offset && err.offset <= len);
            failures++;
        } else {
            /* only the padding after the last tensor is missing */
            assert_non_null(g);
        }
        curate_gguf_close(g);
        free(copy);
    }
    printf("  %zu truncation points fail cleanly, %zu tolerated (trailing padding)\n", failures,
           base.len - failures);
    assert_true(failures > 300);
    curate_buf_release(&base);
}

/* Walk every value (nested arrays included) and convert every tensor. */
static void walk_value(const curate_gguf_value *v)
{
    if (v->type != CURATE_GGUF_TYPE_ARRAY)
        return;
    for (uint64_t i = 0; i < v->len; i++) {
        curate_gguf_value e;
        assert_int_equal(curate_gguf_value_elem(v, i, &e, NULL), CURATE_OK);
        if (e.type == CURATE_GGUF_TYPE_STRING) {
            volatile unsigned char sink = 0;
            for (uint64_t k = 0; k < e.len; k++)
                sink ^= ((const unsigned char *)e.data)[k];
            (void)sink;
        }
        walk_value(&e);
    }
}

static void test_random_damage(void **state)
{
    (void)state;
    curate_buf base;
    make_base(&base, 0);
    size_t header = 0;
    {
        curate_gguf *g = curate_gguf_open_memory(base.data, base.len, NULL, NULL);
        header = (size_t)curate_gguf_data_offset(g);
        curate_gguf_close(g);
    }
    int opened = 0, refused = 0;
    for (int iter = 0; iter < 4000; iter++) {
        unsigned char *f = malloc(base.len);
        memcpy(f, base.data, base.len);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(rnd() % header);
            switch (rnd() % 3) {
            case 0: f[at] ^= (unsigned char)(1u << (rnd() % 8)); break;
            case 1: f[at] = (unsigned char)rnd(); break;
            default: f[at] = (rnd() & 1) ? 0xff : 0x00; break;
            }
        }
        curate_error err;
        size_t len = (rnd() % 8 == 0) ? (size_t)(rnd() % base.len) : base.len;
        curate_gguf *g = curate_gguf_open_memory(f, len, NULL, &err);
        if (g) {
            opened++;
            for (size_t i = 0; i < curate_gguf_n_kv(g); i++) {
                assert_non_null(curate_gguf_kv_key(g, i));
                walk_value(curate_gguf_kv_value(g, i));
            }
            for (size_t i = 0; i < curate_gguf_n_tensors(g); i++) {
                const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
                assert_true(curate_gguf_find_tensor(g, t->name) != NULL);
                if (t->n_elements <= 4096) {
                    float *x = malloc((size_t)t->n_elements * sizeof *x + 1);
                    assert_int_equal(curate_gguf_tensor_to_f32(t, x, (size_t)t->n_elements, &err),
                                     curate_ggml_type_convertible(t->type)
                                         ? CURATE_OK
                                         : CURATE_ERR_UNSUPPORTED);
                    free(x);
                }
            }
            curate_gguf_close(g);
        } else {
            refused++;
            assert_true(err.code == CURATE_ERR_FORMAT || err.code == CURATE_ERR_UNSUPPORTED);
            assert_true(err.message[0] != 0);
        }
        free(f);
    }
    printf("  random damage: %d opened, %d refused\n", opened, refused);
    assert_true(refused > 0);
    curate_buf_release(&base);
}

/* ---- 4. test models ------------------------------------------------------------------- */

static curate_gguf *build_model(const curate_testmodel_config *cfg, curate_buf *b)
{
    curate_error err;
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    OK(curate_testmodel_build(cfg, w, &err));
    curate_buf_init(b);
    OK(curate_gguf_writer_write_buf(w, b, &err));
    curate_gguf_writer_free(w);
    curate_gguf *g = curate_gguf_open_memory(b->data, b->len, "testmodel", &err);
    check_ok(g ? CURATE_OK : err.code, &err);
    return g;
}

static void test_testmodel_shapes(void **state)
{
    (void)state;
    static const struct {
        uint32_t dim, layers, heads, kv, ffn, vocab;
        int tied;
        curate_ggml_type type;
    } shapes[] = {
        {64, 2, 4, 2, 96, 128, 0, CURATE_GGML_TYPE_F32},
        {64, 1, 4, 4, 96, 100, 1, CURATE_GGML_TYPE_F16},
        {96, 3, 6, 1, 160, 50, 0, CURATE_GGML_TYPE_BF16},
        {64, 2, 8, 2, 128, 77, 1, CURATE_GGML_TYPE_Q8_0},
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        curate_testmodel_config cfg;
        curate_testmodel_config_init(&cfg);
        cfg.dim = shapes[si].dim;
        cfg.n_layers = shapes[si].layers;
        cfg.n_heads = shapes[si].heads;
        cfg.n_kv_heads = shapes[si].kv;
        cfg.ffn_dim = shapes[si].ffn;
        cfg.vocab_size = shapes[si].vocab;
        cfg.tied_output = shapes[si].tied;
        cfg.weight_type = shapes[si].type;
        cfg.seed = 7 + si;
        curate_buf b;
        curate_gguf *g = build_model(&cfg, &b);
        curate_error err;
        const char *arch;
        size_t len;
        OK(curate_gguf_require_str(g, "general.architecture", &arch, &len, &err));
        assert_int_equal(len, 5);
        assert_memory_equal(arch, "llama", 5);
        static const char *const ukeys[] = {
            "llama.vocab_size", "llama.context_length", "llama.embedding_length",
            "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
            "llama.attention.head_count_kv", "llama.rope.dimension_count"};
        uint32_t want[8] = {cfg.vocab_size, cfg.ctx_len, cfg.dim, cfg.n_layers, cfg.ffn_dim,
                            cfg.n_heads, cfg.n_kv_heads, cfg.dim / cfg.n_heads};
        for (int k = 0; k < 8; k++) {
            uint32_t v;
            OK(curate_gguf_require_u32(g, ukeys[k], &v, &err));
            assert_int_equal(v, want[k]);
        }
        float fb, eps;
        OK(curate_gguf_require_f32(g, "llama.rope.freq_base", &fb, &err));
        OK(curate_gguf_require_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, &err));
        assert_true(fb == 10000.0f && eps == 1e-5f);
        assert_int_equal(curate_gguf_find_key(g, "tokenizer.ggml.tokens"), -1);
        size_t n_t = 1 + 9 * (size_t)cfg.n_layers + 1 + (cfg.tied_output ? 0 : 1);
        assert_int_equal(curate_gguf_n_tensors(g), n_t);
        uint64_t d = cfg.dim, f = cfg.ffn_dim, V = cfg.vocab_size,
                 kvd = (uint64_t)cfg.n_kv_heads * (cfg.dim / cfg.n_heads);
        uint64_t s_emb[2] = {d, V}, s_norm[1] = {d}, s_q[2] = {d, d}, s_k[2] = {d, kvd},
                 s_up[2] = {d, f}, s_down[2] = {f, d};
        assert_non_null(curate_gguf_require_tensor(g, "token_embd.weight", 2, s_emb, &err));
        assert_non_null(curate_gguf_require_tensor(g, "output_norm.weight", 1, s_norm, &err));
        if (cfg.tied_output)
            assert_null(curate_gguf_find_tensor(g, "output.weight"));
        else
            assert_non_null(curate_gguf_require_tensor(g, "output.weight", 2, s_emb, &err));
        for (uint32_t l = 0; l < cfg.n_layers; l++) {
            char nm[64];
#define T(part, nd, shape, ty)                                                                \
    do {                                                                                      \
        snprintf(nm, sizeof nm, "blk.%u." part ".weight", l);                                \
        const curate_gguf_tensor *t_ = curate_gguf_require_tensor(g, nm, nd, shape, &err);    \
        check_ok(t_ ? CURATE_OK : err.code, &err);                                            \
        assert_int_equal(t_->type, ty);                                                       \
    } while (0)
            T("attn_norm", 1, s_norm, CURATE_GGML_TYPE_F32);
            T("attn_q", 2, s_q, cfg.weight_type);
            T("attn_k", 2, s_k, cfg.weight_type);
            T("attn_v", 2, s_k, cfg.weight_type);
            T("attn_output", 2, s_q, cfg.weight_type);
            T("ffn_norm", 1, s_norm, CURATE_GGML_TYPE_F32);
            T("ffn_gate", 2, s_up, cfg.weight_type);
            T("ffn_up", 2, s_up, cfg.weight_type);
            T("ffn_down", 2, s_down, cfg.weight_type);
#undef T
        }
        /* weights in [-scale, scale] (up to the type's rounding), norms near 1 */
        float scale = 1.0f / sqrtf((float)cfg.dim);
        for (size_t i = 0; i < curate_gguf_n_tensors(g); i++) {
            const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
            float *x = malloc((size_t)t->n_elements * sizeof *x);
            OK(curate_gguf_tensor_to_f32(t, x, (size_t)t->n_elements, &err));
            double sum = 0;
            for (uint64_t k = 0; k < t->n_elements; k++) {
                if (t->n_dims == 1)
                    assert_true(x[k] >= 0.899f && x[k] <= 1.101f);
                else
                    assert_true(fabsf(x[k]) <= scale * 1.01f);
                sum += x[k];
            }
            if (t->n_dims == 2) /* centred: the mean is small against the range */
                assert_true(fabs(sum / (double)t->n_elements) < scale * 0.2);
            free(x);
        }
        curate_gguf_close(g);
        curate_buf_release(&b);
    }
}

static void test_testmodel_determinism_and_types(void **state)
{
    (void)state;
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    cfg.seed = 42;
    curate_buf b1, b2, b3, bq;
    curate_gguf *g1 = build_model(&cfg, &b1);
    curate_gguf *g2 = build_model(&cfg, &b2);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);
    cfg.seed = 43;
    curate_gguf *g3 = build_model(&cfg, &b3);
    assert_int_equal(b1.len, b3.len);
    assert_true(memcmp(b1.data, b3.data, b1.len) != 0);
    /* the Q8_0 model is the quantized F32 model of the same seed */
    cfg.seed = 42;
    cfg.weight_type = CURATE_GGML_TYPE_Q8_0;
    curate_gguf *gq = build_model(&cfg, &bq);
    uint32_t ft;
    curate_error err;
    OK(curate_gguf_require_u32(gq, "general.file_type", &ft, &err));
    assert_int_equal(ft, 7);
    assert_int_equal(curate_gguf_n_tensors(gq), curate_gguf_n_tensors(g1));
    for (size_t i = 0; i < curate_gguf_n_tensors(g1); i++) {
        const curate_gguf_tensor *a = curate_gguf_tensor_at(g1, i);
        const curate_gguf_tensor *q = curate_gguf_tensor_at(gq, i);
        assert_string_equal(a->name, q->name);
        if (a->n_dims == 1) {
            assert_int_equal(q->type, CURATE_GGML_TYPE_F32);
            assert_memory_equal(a->data, q->data, a->n_bytes);
            continue;
        }
        assert_int_equal(q->type, CURATE_GGML_TYPE_Q8_0);
        float *x = malloc(a->n_bytes);
        memcpy(x, a->data, a->n_bytes);
        unsigned char *qq = malloc(q->n_bytes);
        OK(curate_ggml_from_f32(CURATE_GGML_TYPE_Q8_0, x, qq, (size_t)a->n_elements));
        assert_memory_equal(qq, q->data, q->n_bytes);
        free(x);
        free(qq);
    }
    curate_gguf_close(g1);
    curate_gguf_close(g2);
    curate_gguf_close(g3);
    curate_gguf_close(gq);
    curate_buf_release(&b1);
    curate_buf_release(&b2);
    curate_buf_release(&b3);
    curate_buf_release(&bq);
}

static void test_testmodel_vocab_and_errors(void **state)
{
    (void)state;
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    cfg.vocab_size = 6;
    const char *tokens[6] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81hi", "a", "b"};
    float scores[6] = {0, 0, 0, -1, -2, -3};
    int32_t types[6] = {2, 3, 3, 1, 1, 1};
    cfg.tokens = tokens;
    cfg.scores = scores;
    cfg.token_types = types;
    curate_buf b;
    curate_gguf *g = build_model(&cfg, &b);
    curate_error err;
    const curate_gguf_value *tv;
    OK(curate_gguf_require_array(g, "tokenizer.ggml.tokens", CURATE_GGUF_TYPE_STRING, &tv, &err));
    assert_int_equal(tv->len, 6);
    for (int i = 0; i < 6; i++) {
        const char *s;
        size_t len;
        OK(curate_gguf_value_str(&tv->elems[i], &s, &len, &err));
        assert_int_equal(len, strlen(tokens[i]));
        assert_memory_equal(s, tokens[i], len);
    }
    const curate_gguf_value *sv, *yv;
    OK(curate_gguf_require_array(g, "tokenizer.ggml.scores", CURATE_GGUF_TYPE_FLOAT32, &sv, &err));
    OK(curate_gguf_require_array(g, "tokenizer.ggml.token_type", CURATE_GGUF_TYPE_INT32, &yv, &err));
    float so[6];
    int32_t yo[6];
    OK(curate_gguf_array_f32(sv, so, 6, &err));
    OK(curate_gguf_array_i32(yv, yo, 6, &err));
    assert_memory_equal(so, scores, sizeof so);
    assert_memory_equal(yo, types, sizeof yo);
    uint32_t bos;
    int add_bos;
    OK(curate_gguf_require_u32(g, "tokenizer.ggml.bos_token_id", &bos, &err));
    OK(curate_gguf_require_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &err));
    assert_int_equal(bos, 1);
    assert_int_equal(add_bos, 1);
    const char *model;
    size_t len;
    OK(curate_gguf_require_str(g, "tokenizer.ggml.model", &model, &len, &err));
    assert_memory_equal(model, "llama", 5);
    curate_gguf_close(g);
    curate_buf_release(&b);

    /* the file path */
    char path[1024];
    snprintf(path, sizeof path, "%s/test_gguf_model.gguf", tmp_dir());
    cfg.tokens = NULL;
    OK(curate_testmodel_write(&cfg, path, &err));
    g = curate_gguf_open(path, &err);
    assert_non_null(g);
    curate_gguf_close(g);
    unlink(path);

    /* invalid configs are refused naming the problem */
    curate_testmodel_config bad;
    curate_testmodel_config_init(&bad);
    bad.n_heads = 5;
    assert_int_equal(curate_testmodel_write(&bad, path, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "n_heads"));
    curate_testmodel_config_init(&bad);
    bad.n_kv_heads = 3;
    assert_int_equal(curate_testmodel_write(&bad, path, &err), CURATE_ERR_INVALID);
    curate_testmodel_config_init(&bad);
    bad.dim = 48;
    bad.n_heads = 4;
    bad.weight_type = CURATE_GGML_TYPE_Q8_0;
    assert_int_equal(curate_testmodel_write(&bad, path, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "multiples of 32"));
    curate_testmodel_config_init(&bad);
    bad.rope_dim = 32;
    assert_int_equal(curate_testmodel_write(&bad, path, &err), CURATE_ERR_INVALID);
    curate_testmodel_config_init(&bad);
    bad.vocab_size = 0;
    assert_int_equal(curate_testmodel_write(&bad, path, &err), CURATE_ERR_INVALID);
    assert_int_equal(access(path, F_OK), -1); /* nothing written */
}

/* ---- 5. real files from ../shared ------------------------------------------------------ */

static char *shared_path(const char *rel)
{
    const char *root = getenv("CURATE_SHARED");
    if (!root || !*root) {
        printf("  skip: CURATE_SHARED is not set\n");
        return NULL;
    }
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", root, rel);
    if (access(p, R_OK) != 0) {
        printf("  skip: %s is absent\n", p);
        free(p);
        return NULL;
    }
    return p;
}

static curate_gguf *open_shared(const char *rel)
{
    char *p = shared_path(rel);
    if (!p)
        return NULL;
    curate_error err;
    curate_gguf *g = curate_gguf_open(p, &err);
    check_ok(g ? CURATE_OK : err.code, &err);
    free(p);
    return g;
}

static void test_shared_stories260k(void **state)
{
    (void)state;
    curate_gguf *g = open_shared("models/stories260K/stories260K.gguf");
    if (!g)
        skip();
    curate_error err;
    assert_int_equal(curate_gguf_version(g), 3);
    assert_int_equal(curate_gguf_n_tensors(g), 48);
    assert_int_equal(curate_gguf_n_kv(g), 19);
    uint32_t dim, layers, heads, kv, ffn;
    OK(curate_gguf_require_u32(g, "llama.embedding_length", &dim, &err));
    OK(curate_gguf_require_u32(g, "llama.block_count", &layers, &err));
    OK(curate_gguf_require_u32(g, "llama.attention.head_count", &heads, &err));
    OK(curate_gguf_require_u32(g, "llama.attention.head_count_kv", &kv, &err));
    OK(curate_gguf_require_u32(g, "llama.feed_forward_length", &ffn, &err));
    assert_true(dim == 64 && layers == 5 && heads == 8 && kv == 4 && ffn == 172);
    const curate_gguf_value *tok;
    OK(curate_gguf_require_array(g, "tokenizer.ggml.tokens", CURATE_GGUF_TYPE_STRING, &tok, &err));
    assert_int_equal(tok->len, 512);
    uint64_t s_emb[2] = {64, 512}, s_k[2] = {64, 32}, s_down[2] = {172, 64};
    assert_non_null(curate_gguf_require_tensor(g, "token_embd.weight", 2, s_emb, &err));
    assert_non_null(curate_gguf_require_tensor(g, "blk.4.attn_k.weight", 2, s_k, &err));
    assert_non_null(curate_gguf_require_tensor(g, "blk.0.ffn_down.weight", 2, s_down, &err));
    uint64_t params = 0;
    for (size_t i = 0; i < curate_gguf_n_tensors(g); i++) {
        const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
        assert_int_equal(t->type, CURATE_GGML_TYPE_F32);
        params += t->n_elements;
    }
    /* ASSETS.md: 264128 floats in the .bin minus 4096 freq_cis, plus the
     * untied output copy of the 32768-entry embedding */
    assert_int_equal(params, 264128 - 4096 + 32768);
    curate_gguf_close(g);
}

static void check_tinymix_meta(curate_gguf *g, uint32_t file_type)
{
    curate_error err;
    assert_int_equal(curate_gguf_n_tensors(g), 48);
    assert_int_equal(curate_gguf_n_kv(g), 23);
    uint32_t ft, vocab;
    OK(curate_gguf_require_u32(g, "general.file_type", &ft, &err));
    OK(curate_gguf_require_u32(g, "llama.vocab_size", &vocab, &err));
    assert_int_equal(ft, file_type);
    assert_int_equal(vocab, 4096);
    uint64_t s_k[2] = {256, 128}, s_down[2] = {704, 256};
    for (int l = 0; l < 5; l++) {
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%d.attn_k.weight", l);
        assert_non_null(curate_gguf_require_tensor(g, nm, 2, s_k, &err));
        snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", l);
        assert_non_null(curate_gguf_require_tensor(g, nm, 2, s_down, &err));
    }
    uint64_t params = 0;
    for (size_t i = 0; i < curate_gguf_n_tensors(g); i++)
        params += curate_gguf_tensor_at(g, i)->n_elements;
    assert_int_equal(params, 5786368); /* MODEL.md */
}

static void test_shared_tinymix(void **state)
{
    (void)state;
    curate_gguf *a = open_shared("models/tinymix/tinymix-f32.gguf");
    curate_gguf *h = a ? open_shared("models/tinymix/tinymix-f16.gguf") : NULL;
    if (!a || !h) {
        curate_gguf_close(a);
        skip();
    }
    check_tinymix_meta(a, 0);
    check_tinymix_meta(h, 1);
    curate_error err;
    size_t exact = 0, total = 0;
    double worst = 0;
    for (size_t i = 0; i < curate_gguf_n_tensors(a); i++) {
        const curate_gguf_tensor *ta = curate_gguf_tensor_at(a, i);
        const curate_gguf_tensor *th = curate_gguf_find_tensor(h, ta->name);
        assert_non_null(th);
        assert_int_equal(ta->type, CURATE_GGML_TYPE_F32);
        assert_int_equal(th->type, ta->n_dims == 2 ? CURATE_GGML_TYPE_F16 : CURATE_GGML_TYPE_F32);
        assert_int_equal(th->n_elements, ta->n_elements);
        size_t n = (size_t)ta->n_elements;
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        OK(curate_gguf_tensor_to_f32(ta, x, n, &err));
        OK(curate_gguf_tensor_to_f32(th, y, n, &err));
        for (size_t k = 0; k < n; k++) {
            /* within half an f16 ulp: 2^-11 relative, 2^-25 absolute below 2^-14 */
            double tol = fmax(fabs(x[k]) * ldexp(1.0, -11), ldexp(1.0, -25));
            double dlt = fabs((double)x[k] - y[k]);
            if (dlt > tol) {
                fprintf(stderr, "%s[%zu]: f32 %.9g vs f16 %.9g\n", ta->name, k, x[k], y[k]);
                fail();
            }
            if (dlt / tol > worst)
                worst = dlt / tol;
            if (th->type == CURATE_GGML_TYPE_F32) {
                assert_true(x[k] == y[k]); /* norms are kept in f32 */
            } else {
                exact += curate_f16_to_f32(curate_f32_to_f16(x[k])) == y[k];
                total++;
            }
        }
        free(x);
        free(y);
    }
    printf("  tinymix f16 vs f32: %zu f16 values, worst error %.3f of half an ulp, %zu (%.4f%%) "
           "equal to our own round-to-nearest-even\n",
           total, worst, exact, 100.0 * (double)exact / (double)total);
    assert_int_equal(exact, total);
    curate_gguf_close(a);
    curate_gguf_close(h);
}

static void test_shared_fixture_and_vocab(void **state)
{
    (void)state;
    curate_gguf *g = open_shared("models/fixtures/llama-2-tiny-random.gguf");
    if (!g)
        skip();
    curate_error err;
    assert_int_equal(curate_gguf_n_tensors(g), 12);
    size_t f16 = 0;
    for (size_t i = 0; i < curate_gguf_n_tensors(g); i++) {
        const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
        assert_int_equal(t->type, t->n_dims == 1 ? CURATE_GGML_TYPE_F32 : CURATE_GGML_TYPE_F16);
        f16 += t->type == CURATE_GGML_TYPE_F16;
        float *x = malloc((size_t)t->n_elements * sizeof *x);
        OK(curate_gguf_tensor_to_f32(t, x, (size_t)t->n_elements, &err));
        for (uint64_t k = 0; k < t->n_elements; k++)
            assert_true(isfinite(x[k]));
        free(x);
    }
    assert_int_equal(f16, 9);
    uint64_t s_emb[2] = {8, 32000};
    assert_non_null(curate_gguf_require_tensor(g, "token_embd.weight", 2, s_emb, &err));
    const curate_gguf_value *tok;
    OK(curate_gguf_require_array(g, "tokenizer.ggml.tokens", CURATE_GGUF_TYPE_STRING, &tok, &err));
    assert_int_equal(tok->len, 32000);
    curate_gguf_close(g);

    g = open_shared("models/llama2-tokenizer/ggml-vocab-llama-spm.gguf");
    if (!g)
        skip();
    /* vocabulary only: no tensors, and the file ends before the (empty)
     * data section's alignment padding */
    assert_int_equal(curate_gguf_n_tensors(g), 0);
    assert_true(curate_gguf_data_offset(g) >= curate_gguf_file_size(g));
    OK(curate_gguf_require_array(g, "tokenizer.ggml.tokens", CURATE_GGUF_TYPE_STRING, &tok, &err));
    assert_int_equal(tok->len, 32000);
    const curate_gguf_value *scores;
    OK(curate_gguf_require_array(g, "tokenizer.ggml.scores", CURATE_GGUF_TYPE_FLOAT32, &scores,
                                 &err));
    float *sc = malloc(32000 * sizeof *sc);
    OK(curate_gguf_array_f32(scores, sc, 32000, &err));
    free(sc);
    curate_gguf_value e;
    OK(curate_gguf_value_elem(tok, 1, &e, &err));
    assert_int_equal(e.len, 3);
    assert_memory_equal(e.data, "<s>", 3);
    int add_bos;
    OK(curate_gguf_require_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &err));
    assert_int_equal(add_bos, 1);
    curate_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_metadata),
        cmocka_unit_test(test_roundtrip_tensors),
        cmocka_unit_test(test_roundtrip_file_and_v2),
        cmocka_unit_test(test_many_keys_lookup),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_tensor_access),
        cmocka_unit_test(test_storage_only_type),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_corrupt_table),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_testmodel_shapes),
        cmocka_unit_test(test_testmodel_determinism_and_types),
        cmocka_unit_test(test_testmodel_vocab_and_errors),
        cmocka_unit_test(test_shared_stories260k),
        cmocka_unit_test(test_shared_tinymix),
        cmocka_unit_test(test_shared_fixture_and_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
