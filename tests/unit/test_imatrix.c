/*
 * test_imatrix.c - importance-matrix files for llama-quantize
 * (curate/imatrix.h).
 *
 * Synthetic observers are written in both formats and read back by
 * independent readers: the GGUF file with curate's GGUF reader, the
 * legacy .dat by parsing its bytes here.  Checked: the structure
 * (keys, tensor names and shapes, entry order, the trailing chunk count
 * and dataset name), that in_sum2 equals the observers' sums and counts
 * their row counts exactly (after the one rounding to float), that the
 * .dat values divided by ncall give the mean square, and the refusals.
 * A last test runs a small random model with an observer on every linear
 * input (as curate-calibrate does) and writes its imatrix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "curate/gguf.h"
#include "curate/imatrix.h"
#include "curate/model.h"
#include "curate/observe.h"
#include "curate/testmodel.h"
#include "helper_model.h"

#define OK(expr)                                                                  \
    do {                                                                          \
        curate_status st_ = (expr);                                               \
        if (st_ != CURATE_OK) {                                                   \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr,   \
                    curate_strerror(st_), err.message);                           \
            fail();                                                               \
        }                                                                         \
    } while (0)

static uint64_t rng = 99;
static float frand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* An observer of cols channels fed rows random rows; the sums of x^2 are
 * also computed here, independently, into ref[cols]. */
static curate_observer *make_observer(size_t cols, size_t rows, double *ref)
{
    curate_error err;
    curate_error_clear(&err);
    curate_observer_config oc = {cols, CURATE_OBSERVE_SUMSQ, 0, 0};
    curate_observer *o = curate_observer_init(&oc, &err);
    assert_non_null(o);
    float *x = malloc(rows * cols * sizeof *x);
    assert_non_null(x);
    for (size_t j = 0; j < cols; j++)
        ref[j] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            /* channel scales differ, as in real activations */
            float v = frand() * (float)(1 + j % 5);
            x[r * cols + j] = v;
            ref[j] += (double)v * v;
        }
    /* fed in two blocks, like two chunks */
    OK(curate_observer_add(o, x, rows / 2, &err));
    OK(curate_observer_add(o, x + rows / 2 * cols, rows - rows / 2, &err));
    free(x);
    const double *s = curate_observer_sumsq(o);
    for (size_t j = 0; j < cols; j++)
        assert_true(fabs(s[j] - ref[j]) <= 1e-9 * ref[j]);
    return o;
}

/* ---- the synthetic set ------------------------------------------------------------ */

#define D 64
#define F 96
#define ROWS 300   /* not a multiple of the chunk size below: ncall rounds up */
#define CHUNK 128

typedef struct synth {
    curate_imatrix *im;
    curate_observer *obs[2][4];
    double ref[2][4][F];
} synth;

static const curate_linear_input inputs[4] = {CURATE_LIN_ATTN_QKV, CURATE_LIN_ATTN_OUT,
                                              CURATE_LIN_FFN_GATE_UP, CURATE_LIN_FFN_DOWN};

static void synth_build(synth *s)
{
    curate_error err;
    curate_error_clear(&err);
    memset(s, 0, sizeof *s);
    s->im = curate_imatrix_new(&err);
    assert_non_null(s->im);
    for (uint32_t l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++) {
            size_t cols = inputs[k] == CURATE_LIN_FFN_DOWN ? F : D;
            s->obs[l][k] = make_observer(cols, ROWS + l, s->ref[l][k]);
            OK(curate_imatrix_add_observer(s->im, l, inputs[k], s->obs[l][k], &err));
        }
    assert_int_equal(curate_imatrix_n_entries(s->im), 2 * 7);
}

static void synth_free(synth *s)
{
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++)
            curate_observer_free(s->obs[l][k]);
    curate_imatrix_free(s->im);
}

/* The observer and channel count behind an entry name; NULL if not one of ours. */
static const curate_observer *synth_find(const synth *s, const char *name, const double **ref)
{
    static const char *const wn[4][3] = {{"attn_q", "attn_k", "attn_v"},
                                         {"attn_output", NULL, NULL},
                                         {"ffn_gate", "ffn_up", NULL},
                                         {"ffn_down", NULL, NULL}};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 3 && wn[k][i]; i++) {
                char buf[64];
                snprintf(buf, sizeof buf, "blk.%d.%s.weight", l, wn[k][i]);
                if (!strcmp(buf, name)) {
                    *ref = s->ref[l][k];
                    return s->obs[l][k];
                }
            }
    return NULL;
}

static const char *const datasets[] = {"pool.jsonl", "calib.jsonl"};
static const curate_imatrix_meta meta = {datasets, 2, 5, CHUNK};

/* ---- GGUF ----------------------------------------------------------------------------- */

static void check_gguf(const synth *s, curate_gguf *g)
{
    curate_error err;
    curate_error_clear(&err);
    const char *str;
    size_t len;
    OK(curate_gguf_require_str(g, "general.type", &str, &len, &err));
    assert_int_equal(len, 7);
    assert_memory_equal(str, "imatrix", 7);
    const curate_gguf_value *ds;
    OK(curate_gguf_require_array(g, "imatrix.datasets", CURATE_GGUF_TYPE_STRING, &ds, &err));
    assert_int_equal(ds->len, 2);
    for (int i = 0; i < 2; i++) {
        OK(curate_gguf_value_str(&ds->elems[i], &str, &len, &err));
        assert_int_equal(len, strlen(datasets[i]));
        assert_memory_equal(str, datasets[i], len);
    }
    uint32_t u;
    assert_int_equal(curate_gguf_get(g, "imatrix.chunk_count")->type, CURATE_GGUF_TYPE_UINT32);
    OK(curate_gguf_require_u32(g, "imatrix.chunk_count", &u, &err));
    assert_int_equal(u, 5);
    assert_int_equal(curate_gguf_get(g, "imatrix.chunk_size")->type, CURATE_GGUF_TYPE_UINT32);
    OK(curate_gguf_require_u32(g, "imatrix.chunk_size", &u, &err));
    assert_int_equal(u, CHUNK);

    /* two tensors per entry, sorted by entry name: in_sum2 then counts */
    size_t nt = curate_gguf_n_tensors(g);
    assert_int_equal(nt, 2 * 14);
    char prev[64] = "";
    for (size_t i = 0; i < nt; i += 2) {
        const curate_gguf_tensor *a = curate_gguf_tensor_at(g, i);
        const curate_gguf_tensor *c = curate_gguf_tensor_at(g, i + 1);
        size_t al = strlen(a->name);
        assert_true(al > 8 && !strcmp(a->name + al - 8, ".in_sum2"));
        char name[64];
        memcpy(name, a->name, al - 8);
        name[al - 8] = 0;
        assert_true(strcmp(prev, name) < 0);
        strcpy(prev, name);
        char cname[80];
        snprintf(cname, sizeof cname, "%s.counts", name);
        assert_string_equal(c->name, cname);

        const double *ref;
        const curate_observer *o = synth_find(s, name, &ref);
        assert_non_null(o);
        size_t cols = curate_observer_cols(o);
        assert_int_equal(a->type, CURATE_GGML_TYPE_F32);
        assert_int_equal(a->n_dims, 2);
        assert_int_equal(a->ne[0], cols);
        assert_int_equal(a->ne[1], 1);
        assert_int_equal(c->type, CURATE_GGML_TYPE_F32);
        assert_int_equal(c->n_dims, 2);
        assert_int_equal(c->ne[0], 1);
        assert_int_equal(c->ne[1], 1);
        float v[F], cnt;
        OK(curate_gguf_tensor_to_f32(a, v, cols, &err));
        OK(curate_gguf_tensor_to_f32(c, &cnt, 1, &err));
        const double *sums = curate_observer_sumsq(o);
        for (size_t j = 0; j < cols; j++) {
            assert_true(v[j] == (float)sums[j]); /* the observer's sum, rounded once */
            assert_true(fabs((double)v[j] - ref[j]) <= 1e-6 * ref[j]);
        }
        assert_true(cnt == (float)curate_observer_rows(o));
    }
}

static void test_gguf(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    synth s;
    synth_build(&s);
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_imatrix_write_buf(s.im, &meta, CURATE_IMATRIX_GGUF, &b, &err));
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "imatrix", &err);
    assert_non_null(g);
    check_gguf(&s, g);
    curate_gguf_close(g);

    /* the file is the same bytes */
    char path[1200];
    snprintf(path, sizeof path, "%s/imatrix.gguf", mh_scratch_dir());
    OK(curate_imatrix_write(s.im, &meta, curate_imatrix_format_from_path(path), path, &err));
    size_t n;
    char *file = mh_read_file(path, &n);
    assert_non_null(file);
    assert_int_equal(n, b.len);
    assert_memory_equal(file, b.data, n);
    free(file);
    curate_buf_release(&b);
    synth_free(&s);
}

/* ---- legacy .dat, parsed by hand -------------------------------------------------------- */

typedef struct rd {
    const unsigned char *p;
    size_t n, pos;
} rd;

static int32_t rd_i32(rd *r)
{
    assert_true(r->pos + 4 <= r->n);
    int32_t v;
    memcpy(&v, r->p + r->pos, 4);
    r->pos += 4;
    return v;
}

static float rd_f32(rd *r)
{
    assert_true(r->pos + 4 <= r->n);
    float v;
    memcpy(&v, r->p + r->pos, 4);
    r->pos += 4;
    return v;
}

static void test_dat(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    synth s;
    synth_build(&s);
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_imatrix_write_buf(s.im, &meta, CURATE_IMATRIX_DAT, &b, &err));
    rd r = {(const unsigned char *)b.data, b.len, 0};
    int32_t n_entries = rd_i32(&r);
    assert_int_equal(n_entries, 14);
    char prev[64] = "";
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t len = rd_i32(&r);
        assert_true(len > 0 && len < 64 && r.pos + (size_t)len <= r.n);
        char name[64];
        memcpy(name, r.p + r.pos, (size_t)len);
        name[len] = 0;
        r.pos += (size_t)len;
        assert_true(strcmp(prev, name) < 0); /* sorted */
        strcpy(prev, name);
        const double *ref;
        const curate_observer *o = synth_find(&s, name, &ref);
        assert_non_null(o);
        uint64_t rows = curate_observer_rows(o);
        int32_t ncall = rd_i32(&r);
        /* the chunks the rows span, rounded up: 300 rows of 128 -> 3 */
        assert_int_equal(ncall, (int32_t)((rows + CHUNK - 1) / CHUNK));
        assert_int_equal(ncall, 3);
        int32_t nval = rd_i32(&r);
        assert_int_equal(nval, (int32_t)curate_observer_cols(o));
        const double *sums = curate_observer_sumsq(o);
        for (int32_t j = 0; j < nval; j++) {
            float v = rd_f32(&r);
            /* llama.cpp's rule: the mean times ncall, one rounding */
            assert_true(v == (float)(sums[j] / (double)rows * (double)ncall));
            /* what llama-quantize does with it: divide by ncall -> the mean square */
            double mean = ref[j] / (double)rows;
            assert_true(fabs((double)v / ncall - mean) <= 1e-6 * mean);
        }
    }
    assert_int_equal(rd_i32(&r), 5); /* chunk count */
    int32_t dl = rd_i32(&r);
    assert_int_equal(dl, (int32_t)strlen("calib.jsonl")); /* the last dataset */
    assert_true(r.pos + (size_t)dl == r.n);               /* nothing after it */
    assert_memory_equal(r.p + r.pos, "calib.jsonl", (size_t)dl);

    /* the file is the same bytes */
    char path[1200];
    snprintf(path, sizeof path, "%s/imatrix.dat", mh_scratch_dir());
    assert_int_equal(curate_imatrix_format_from_path(path), CURATE_IMATRIX_DAT);
    OK(curate_imatrix_write(s.im, &meta, CURATE_IMATRIX_DAT, path, &err));
    size_t n;
    char *file = mh_read_file(path, &n);
    assert_non_null(file);
    assert_int_equal(n, b.len);
    assert_memory_equal(file, b.data, n);
    free(file);
    curate_buf_release(&b);
    synth_free(&s);
}

/* An entry with a count of 0: kept in GGUF (llama-quantize then uses 1s),
 * left out of the .dat as llama.cpp does; no datasets gives an empty name. */
static void test_zero_count(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    curate_imatrix *im = curate_imatrix_new(&err);
    double zeros[4] = {0, 0, 0, 0}, sums[4] = {1, 2, 3, 4.5};
    OK(curate_imatrix_add(im, "blk.0.ffn_down.weight", zeros, 4, 0, &err));
    curate_imatrix_meta m0 = {NULL, 0, 1, 512};
    curate_buf b;
    curate_buf_init(&b);
    assert_int_equal(curate_imatrix_write_buf(im, &m0, CURATE_IMATRIX_DAT, &b, &err),
                     CURATE_ERR_INVALID); /* nothing to write: llama.cpp refuses 0 entries */
    OK(curate_imatrix_add(im, "blk.0.attn_q.weight", sums, 4, 7, &err));
    curate_buf_reset(&b);
    OK(curate_imatrix_write_buf(im, &m0, CURATE_IMATRIX_DAT, &b, &err));
    rd r = {(const unsigned char *)b.data, b.len, 0};
    assert_int_equal(rd_i32(&r), 1);
    assert_int_equal(rd_i32(&r), 19);
    r.pos += 19;
    assert_int_equal(rd_i32(&r), 1); /* 7 rows in chunks of 512: one call */
    assert_int_equal(rd_i32(&r), 4);
    for (int j = 0; j < 4; j++)
        assert_true(rd_f32(&r) == (float)(sums[j] / 7.0));
    assert_int_equal(rd_i32(&r), 1);
    assert_int_equal(rd_i32(&r), 0); /* no dataset name */
    assert_int_equal(r.pos, r.n);

    curate_buf_reset(&b);
    OK(curate_imatrix_write_buf(im, &m0, CURATE_IMATRIX_GGUF, &b, &err));
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "im", &err);
    assert_non_null(g);
    assert_int_equal(curate_gguf_n_tensors(g), 4);
    const curate_gguf_tensor *c = curate_gguf_find_tensor(g, "blk.0.ffn_down.weight.counts");
    assert_non_null(c);
    float cnt;
    OK(curate_gguf_tensor_to_f32(c, &cnt, 1, &err));
    assert_true(cnt == 0.0f);
    const curate_gguf_value *ds = curate_gguf_get(g, "imatrix.datasets");
    assert_non_null(ds);
    assert_int_equal(ds->len, 0);
    curate_gguf_close(g);
    curate_buf_release(&b);
    curate_imatrix_free(im);
}

static void test_formats(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_imatrix_format_from_path("imatrix.gguf"), CURATE_IMATRIX_GGUF);
    assert_int_equal(curate_imatrix_format_from_path("/a/b/X.GGUF"), CURATE_IMATRIX_GGUF);
    assert_int_equal(curate_imatrix_format_from_path("imatrix.dat"), CURATE_IMATRIX_DAT);
    assert_int_equal(curate_imatrix_format_from_path("imatrix"), CURATE_IMATRIX_DAT);
    assert_int_equal(curate_imatrix_format_from_path("gguf"), CURATE_IMATRIX_DAT);
    assert_int_equal(curate_imatrix_format_from_path("x.gguf.dat"), CURATE_IMATRIX_DAT);
    assert_int_equal(curate_imatrix_format_from_path(".gguf"), CURATE_IMATRIX_GGUF);
    curate_imatrix_format f;
    OK(curate_imatrix_format_parse("gguf", &f, &err));
    assert_int_equal(f, CURATE_IMATRIX_GGUF);
    OK(curate_imatrix_format_parse("dat", &f, &err));
    assert_int_equal(f, CURATE_IMATRIX_DAT);
    assert_int_equal(curate_imatrix_format_parse("GGUF", &f, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "gguf, dat"));
    assert_string_equal(curate_imatrix_format_name(CURATE_IMATRIX_DAT), "dat");
    assert_string_equal(curate_imatrix_format_name(CURATE_IMATRIX_GGUF), "gguf");
}

static void test_refusals(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    curate_imatrix *im = curate_imatrix_new(&err);
    double s[3] = {1, 2, 3};
    curate_buf b;
    curate_buf_init(&b);
    curate_imatrix_meta m = {NULL, 0, 1, 16};
    /* empty */
    assert_int_equal(curate_imatrix_write_buf(im, &m, CURATE_IMATRIX_GGUF, &b, &err),
                     CURATE_ERR_INVALID);
    /* only blk.* matrices */
    static const char *const bad_names[] = {"output.weight", "token_embd.weight", "blk.",
                                            "blk.x.attn_q.weight", "blk.0.", "blk.0"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_int_equal(curate_imatrix_add(im, bad_names[i], s, 3, 1, &err),
                         CURATE_ERR_INVALID);
    /* too long for ggml's 64-byte tensor names once ".in_sum2" is added */
    char longname[80];
    memset(longname, 0, sizeof longname);
    snprintf(longname, sizeof longname, "blk.0.%043d.weight", 0); /* 56 + 8 bytes */
    assert_int_equal(curate_imatrix_add(im, longname, s, 3, 1, &err), CURATE_ERR_INVALID);
    snprintf(longname, sizeof longname, "blk.0.%042d.weight", 0); /* 55 + 8 = 63: fits */
    OK(curate_imatrix_add(im, longname, s, 3, 1, &err));
    OK(curate_imatrix_add(im, "blk.0.attn_q.weight", s, 3, 1, &err));
    assert_int_equal(curate_imatrix_add(im, "blk.0.attn_q.weight", s, 3, 1, &err),
                     CURATE_ERR_INVALID); /* duplicate */
    assert_int_equal(curate_imatrix_add(im, "blk.1.attn_q.weight", s, 0, 1, &err),
                     CURATE_ERR_INVALID);
    double neg[3] = {1, -2, 3}, inf[3] = {1, INFINITY, 3}, nan_[3] = {NAN, 0, 0};
    assert_int_equal(curate_imatrix_add(im, "blk.1.attn_q.weight", neg, 3, 1, &err),
                     CURATE_ERR_RANGE);
    assert_int_equal(curate_imatrix_add(im, "blk.1.attn_q.weight", inf, 3, 1, &err),
                     CURATE_ERR_RANGE);
    assert_int_equal(curate_imatrix_add(im, "blk.1.attn_q.weight", nan_, 3, 1, &err),
                     CURATE_ERR_RANGE);
    /* a sum beyond float */
    double huge[3] = {1e39, 0, 0};
    OK(curate_imatrix_add(im, "blk.2.attn_q.weight", huge, 3, 1, &err));
    assert_int_equal(curate_imatrix_write_buf(im, &m, CURATE_IMATRIX_GGUF, &b, &err),
                     CURATE_ERR_RANGE);
    curate_imatrix_free(im);
    im = curate_imatrix_new(&err);
    OK(curate_imatrix_add(im, "blk.0.attn_q.weight", s, 3, 1, &err));
    /* chunk size 0, NULL dataset, unknown format */
    m.chunk_size = 0;
    assert_int_equal(curate_imatrix_write_buf(im, &m, CURATE_IMATRIX_DAT, &b, &err),
                     CURATE_ERR_INVALID);
    m.chunk_size = 16;
    const char *nulls[1] = {NULL};
    curate_imatrix_meta mn = {nulls, 1, 1, 16};
    assert_int_equal(curate_imatrix_write_buf(im, &mn, CURATE_IMATRIX_GGUF, &b, &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_imatrix_write_buf(im, &m, (curate_imatrix_format)7, &b, &err),
                     CURATE_ERR_INVALID);
    /* an observer without sums of squares; the output input adds nothing */
    curate_observer_config oc = {3, CURATE_OBSERVE_MINMAX, 0, 0};
    curate_observer *o = curate_observer_init(&oc, &err);
    assert_non_null(o);
    assert_int_equal(curate_imatrix_add_observer(im, 0, CURATE_LIN_FFN_DOWN, o, &err),
                     CURATE_ERR_INVALID);
    OK(curate_imatrix_add_observer(im, 0, CURATE_LIN_OUTPUT, o, &err));
    assert_int_equal(curate_imatrix_n_entries(im), 1);
    curate_observer_free(o);
    /* an unwritable path */
    assert_int_equal(curate_imatrix_write(im, &m, CURATE_IMATRIX_DAT, "/nonexistent-dir/i.dat",
                                          &err),
                     CURATE_ERR_IO);
    curate_imatrix_free(im);
    curate_buf_release(&b);
}

/* ---- a model run, as curate-calibrate collects it ----------------------------------------- */

typedef struct collect {
    curate_observer *obs[8][5];
    uint32_t n_layer;
    size_t calls;
} collect;

static void on_linear(void *user, uint32_t layer, curate_linear_input which, const float *x,
                      size_t n_rows, size_t n_cols)
{
    collect *c = user;
    curate_error err;
    curate_error_clear(&err);
    curate_observer **o = &c->obs[layer][which];
    if (!*o) {
        curate_observer_config oc = {n_cols, CURATE_OBSERVE_SUMSQ, 0, 0};
        *o = curate_observer_init(&oc, &err);
    }
    if (*o)
        curate_observer_add(*o, x, n_rows, &err);
    c->calls++;
}

static void test_model_run(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    curate_testmodel_config tc;
    curate_testmodel_config_init(&tc);
    char path[1200];
    snprintf(path, sizeof path, "%s/imatrix-model.gguf", mh_scratch_dir());
    OK(curate_testmodel_write(&tc, path, &err));
    curate_model *m = curate_model_load(path, &err);
    assert_non_null(m);
    const curate_model_params *p = curate_model_get_params(m);
    size_t n = 40;
    int32_t tok[40];
    tok[0] = 1; /* BOS, counted like every other position */
    for (size_t i = 1; i < n; i++)
        tok[i] = (int32_t)(3 + (i * 17) % (p->n_vocab - 3));
    curate_model_ctx *ctx = curate_model_ctx_init(m, n, 1, &err);
    assert_non_null(ctx);
    collect c;
    memset(&c, 0, sizeof c);
    c.n_layer = p->n_layer;
    curate_model_ctx_set_observer(ctx, on_linear, &c);
    float *logits = malloc(n * p->n_vocab * sizeof *logits);
    OK(curate_model_ctx_forward(ctx, tok, n, 0, logits, &err));
    OK(curate_model_ctx_forward(ctx, tok, n / 2, 0, logits, &err)); /* a second, shorter chunk */

    curate_imatrix *im = curate_imatrix_new(&err);
    for (uint32_t l = 0; l <= p->n_layer; l++)
        for (int k = 0; k < 5; k++)
            if (c.obs[l][k])
                OK(curate_imatrix_add_observer(im, l, (curate_linear_input)k, c.obs[l][k],
                                               &err));
    assert_int_equal(curate_imatrix_n_entries(im), (size_t)p->n_layer * 7);
    const char *ds[] = {"calib.jsonl"};
    curate_imatrix_meta meta2 = {ds, 1, 2, (uint32_t)n};
    curate_buf b;
    curate_buf_init(&b);
    OK(curate_imatrix_write_buf(im, &meta2, CURATE_IMATRIX_GGUF, &b, &err));
    curate_gguf *g = curate_gguf_open_memory(b.data, b.len, "im", &err);
    assert_non_null(g);
    assert_int_equal(curate_gguf_n_tensors(g), (size_t)p->n_layer * 14);
    for (uint32_t l = 0; l < p->n_layer; l++) {
        static const char *const qkv[3] = {"attn_q", "attn_k", "attn_v"};
        const double *sums = curate_observer_sumsq(c.obs[l][CURATE_LIN_ATTN_QKV]);
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%u.%s.weight.in_sum2", l, qkv[k]);
            const curate_gguf_tensor *t = curate_gguf_find_tensor(g, name);
            assert_non_null(t);
            assert_int_equal(t->ne[0], p->n_embd);
            float v[256];
            OK(curate_gguf_tensor_to_f32(t, v, p->n_embd, &err));
            for (uint32_t j = 0; j < p->n_embd; j++)
                assert_true(v[j] == (float)sums[j]);
            snprintf(name, sizeof name, "blk.%u.%s.weight.counts", l, qkv[k]);
            float cnt;
            OK(curate_gguf_tensor_to_f32(curate_gguf_find_tensor(g, name), &cnt, 1, &err));
            assert_true(cnt == (float)(n + n / 2)); /* every position, BOS included */
        }
        char name[64];
        snprintf(name, sizeof name, "blk.%u.ffn_down.weight.in_sum2", l);
        assert_int_equal(curate_gguf_find_tensor(g, name)->ne[0], p->n_ff);
    }
    assert_null(curate_gguf_find_tensor(g, "output.weight.in_sum2"));
    curate_gguf_close(g);
    curate_buf_release(&b);
    curate_imatrix_free(im);
    for (uint32_t l = 0; l <= p->n_layer; l++)
        for (int k = 0; k < 5; k++)
            curate_observer_free(c.obs[l][k]);
    free(logits);
    curate_model_ctx_free(ctx);
    curate_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf),         cmocka_unit_test(test_dat),
        cmocka_unit_test(test_zero_count),   cmocka_unit_test(test_formats),
        cmocka_unit_test(test_refusals),     cmocka_unit_test(test_model_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
