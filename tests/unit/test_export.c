/*
 * test_export.c - quantized GGUF export (curate/export.h).
 *
 * - block layouts: hand-made codes and fp16-exact scales give the bytes
 *   ggml defines (fp16 scale first, then the packed quants), and decode
 *   with the reference conversions to exactly the fake-quant values;
 * - the fp16 scale rounding: codes are re-derived, the result is never
 *   further from the fake-quant value than keeping the codes, and a scale
 *   beyond fp16 is an error;
 * - whole models (curate/testmodel.h) exported at Q8_0, Q4_0, Q4_1: the
 *   file read back with the GGUF reader and decoded matches the fake-quant
 *   weights up to the fp16 rounding of the scales, unlisted tensors are
 *   byte-identical, metadata is copied, general.file_type and curate.*
 *   keys are set, and curate's loader on the file gives the fake-quant
 *   model's perplexity within 0.1%;
 * - rows that do not split into blocks fall back to F32 / F16;
 * - refusals (unsupported settings, AWQ, bad lists);
 * - tinymix-f32 from ../shared at Q8_0 (and the 4-bit types, measured),
 *   skipped when ../shared is absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "curate/export.h"
#include "curate/gguf.h"
#include "curate/model.h"
#include "curate/observe.h"
#include "curate/quant.h"
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

static char *tmp_path(const char *name)
{
    static char buf[8][1200];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1200, "%s/%s", mh_scratch_dir(), name);
    return p;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- block layouts on hand-made blocks ------------------------------------------ */

/* Little-endian fp16 bit patterns of a few exact values. */
#define H_0_5 0x3800u
#define H_0_25 0x3400u
#define H_1 0x3c00u
#define H_M1 0xbc00u

static void test_layout_q4_0(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    /* element j < 16 gets code j, element j + 16 gets code 15 - j */
    uint8_t codes[32];
    for (int j = 0; j < 16; j++) {
        codes[j] = (uint8_t)j;
        codes[j + 16] = (uint8_t)(15 - j);
    }
    float d = 0.5f; /* exact in fp16 */
    unsigned char out[18];
    uint64_t changed = 99;
    OK(curate_export_pack(CURATE_GGML_TYPE_Q4_0, codes, &d, NULL, 1, 32, out, &changed, &err));
    assert_int_equal(changed, 0);
    /* fp16 d little-endian, then byte j = low nibble code j | high nibble code j+16 */
    static const unsigned char want[18] = {0x00, 0x38, 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5,
                                           0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d,
                                           0x1e, 0x0f};
    assert_memory_equal(out, want, sizeof want);
    /* decoded by the reference conversion: (code - 8) * d */
    float x[32];
    OK(curate_ggml_to_f32(CURATE_GGML_TYPE_Q4_0, out, x, 32));
    for (int j = 0; j < 32; j++)
        assert_true(x[j] == (float)((int)codes[j] - 8) * d);
}

static void test_layout_q4_1(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    uint8_t codes[32];
    for (int j = 0; j < 32; j++)
        codes[j] = (uint8_t)((j * 7) % 16);
    float d = 0.25f, m = -1.0f;
    unsigned char out[20];
    uint64_t changed = 99;
    OK(curate_export_pack(CURATE_GGML_TYPE_Q4_1, codes, &d, &m, 1, 32, out, &changed, &err));
    assert_int_equal(changed, 0);
    assert_int_equal(out[0] | out[1] << 8, H_0_25); /* d first */
    assert_int_equal(out[2] | out[3] << 8, H_M1);   /* then m */
    for (int j = 0; j < 16; j++)
        assert_int_equal(out[4 + j], codes[j] | codes[j + 16] << 4);
    float x[32];
    OK(curate_ggml_to_f32(CURATE_GGML_TYPE_Q4_1, out, x, 32));
    for (int j = 0; j < 32; j++)
        assert_true(x[j] == (float)codes[j] * d + m);
}

static void test_layout_q8_0(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    /* two rows: codes 0..31 and 224..255, i.e. q = -128..-97 and 96..127 */
    uint8_t codes[64];
    for (int j = 0; j < 32; j++) {
        codes[j] = (uint8_t)j;
        codes[32 + j] = (uint8_t)(224 + j);
    }
    float d[2] = {1.0f, 0.5f};
    unsigned char out[68];
    OK(curate_export_pack(CURATE_GGML_TYPE_Q8_0, codes, d, NULL, 2, 32, out, NULL, &err));
    assert_int_equal(out[0] | out[1] << 8, H_1);
    assert_int_equal(out[34] | out[35] << 8, H_0_5);
    for (int j = 0; j < 32; j++) {
        assert_int_equal((int8_t)out[2 + j], j - 128);
        assert_int_equal((int8_t)out[36 + j], 96 + j);
    }
    float x[64];
    OK(curate_ggml_to_f32(CURATE_GGML_TYPE_Q8_0, out, x, 64));
    for (int j = 0; j < 32; j++) {
        assert_true(x[j] == (float)(j - 128) * 1.0f);
        assert_true(x[32 + j] == (float)(96 + j) * 0.5f);
    }
}

/* The export of the quantizer's own output for one group equals ggml's
 * own quantizer where both rules agree (Q4_0: d = max / -8 with full-range
 * symmetric codes; Q8_0: d = amax / 127 with the restricted range), as
 * long as the scale is exact in fp16: an independent reference. */
static void test_matches_ggml_quantizer(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    float w[32];
    for (int j = 0; j < 32; j++)
        w[j] = (float)((j * 37) % 15 - 7) * 0.25f; /* on the grid of d = -0.25 */
    w[5] = 2.0f; /* the signed extreme: d = 2 / -8 = -0.25, exact in fp16 */
    curate_quant_config cfg;
    curate_quant_config_default(&cfg);
    cfg.bits = 4;
    float q[32], scale, mn;
    uint8_t codes[32];
    curate_quant_out qo = {q, &scale, &mn, codes, NULL};
    OK(curate_quant_matrix(&cfg, w, 1, 32, NULL, &qo, NULL, &err));
    unsigned char mine[18], ggml[18];
    OK(curate_export_pack(CURATE_GGML_TYPE_Q4_0, codes, &scale, NULL, 1, 32, mine, NULL, &err));
    OK(curate_ggml_from_f32(CURATE_GGML_TYPE_Q4_0, w, ggml, 32));
    /* ggml rounds x*id + 8.5 down, curate rounds half away from zero: the
     * values here are on the grid, so no tie decides */
    assert_memory_equal(mine, ggml, sizeof mine);

    cfg.bits = 8;
    cfg.restricted = 1;
    for (int j = 0; j < 32; j++)
        w[j] = (float)(j - 16) * 0.5f; /* amax 8 at j = 0: d = 8/127, not exact in fp16 */
    w[0] = 127.0f * 0.25f;             /* amax 31.75: d = 0.25 */
    unsigned char mine8[34], ggml8[34];
    OK(curate_quant_matrix(&cfg, w, 1, 32, NULL, &qo, NULL, &err));
    OK(curate_export_pack(CURATE_GGML_TYPE_Q8_0, codes, &scale, NULL, 1, 32, mine8, NULL,
                          &err));
    OK(curate_ggml_from_f32(CURATE_GGML_TYPE_Q8_0, w, ggml8, 32));
    assert_memory_equal(mine8, ggml8, sizeof mine8);
}

/* ---- fp16 scale rounding ---------------------------------------------------------- */

/* |file - target| for every element must not exceed what keeping the codes
 * would give, and the report of changed codes must match. */
static void check_never_worse(curate_ggml_type type, const uint8_t *codes, float d, float m,
                              int expect_changes)
{
    curate_error err;
    curate_error_clear(&err);
    int asym = type == CURATE_GGML_TYPE_Q4_1;
    int off = type == CURATE_GGML_TYPE_Q8_0 ? 128 : (asym ? 0 : 8);
    unsigned char out[40];
    uint64_t changed = 0;
    OK(curate_export_pack(type, codes, &d, &m, 1, 32, out, &changed, &err));
    float x[32];
    OK(curate_ggml_to_f32(type, out, x, 32));
    float d16 = curate_f16_to_f32(curate_f32_to_f16(d));
    float m16 = asym ? curate_f16_to_f32(curate_f32_to_f16(m)) : 0.0f;
    for (int j = 0; j < 32; j++) {
        float q0 = (float)((int)codes[j] - off);
        double target = asym ? (double)(q0 * d + m) : (double)(q0 * d);
        double kept = asym ? (double)(q0 * d16 + m16) : (double)(q0 * d16);
        assert_true(fabs((double)x[j] - target) <= fabs(kept - target) + 1e-12);
    }
    if (expect_changes)
        assert_true(changed > 0);
    else
        assert_int_equal(changed, 0);
}

static void test_fp16_rounding(void **state)
{
    (void)state;
    uint8_t codes[32];
    for (int j = 0; j < 32; j++)
        codes[j] = (uint8_t)(j % 16);
    /* a normal scale not exact in fp16: the codes stay */
    check_never_worse(CURATE_GGML_TYPE_Q4_0, codes, 0.1f, 0.0f, 0);
    /* Q4_1 with an offset far from zero relative to the step: m's rounding
     * (fp16 spacing 1/16 at 100) is 2.5 steps of 0.01, the codes move */
    check_never_worse(CURATE_GGML_TYPE_Q4_1, codes, 0.01f, 100.1f, 1);
    /* an fp16-subnormal scale: the relative rounding is large, codes move */
    uint8_t c8[32];
    for (int j = 0; j < 32; j++)
        c8[j] = (uint8_t)(128 + (j * 8) - 128 + (j < 16 ? 0 : 1));
    check_never_worse(CURATE_GGML_TYPE_Q8_0, c8, 1.3e-6f, 0.0f, 1);
    /* a scale that rounds to zero in fp16: everything decodes to 0 */
    check_never_worse(CURATE_GGML_TYPE_Q8_0, c8, 1e-9f, 0.0f, 1);
}

static void test_pack_errors(void **state)
{
    (void)state;
    curate_error err;
    uint8_t codes[32] = {0};
    unsigned char out[40];
    float d = 1e5f, m = 0.0f;
    curate_error_clear(&err);
    assert_int_equal(curate_export_pack(CURATE_GGML_TYPE_Q8_0, codes, &d, NULL, 1, 32, out,
                                        NULL, &err),
                     CURATE_ERR_RANGE);
    assert_non_null(strstr(err.message, "fp16"));
    d = NAN;
    assert_int_equal(curate_export_pack(CURATE_GGML_TYPE_Q4_0, codes, &d, NULL, 1, 32, out,
                                        NULL, &err),
                     CURATE_ERR_RANGE);
    d = 1.0f;
    m = INFINITY;
    assert_int_equal(curate_export_pack(CURATE_GGML_TYPE_Q4_1, codes, &d, &m, 1, 32, out, NULL,
                                        &err),
                     CURATE_ERR_RANGE);
    codes[3] = 16; /* not a nibble */
    assert_int_equal(curate_export_pack(CURATE_GGML_TYPE_Q4_0, codes, &d, NULL, 1, 32, out,
                                        NULL, &err),
                     CURATE_ERR_RANGE);
    assert_non_null(strstr(err.message, "code 16"));
    codes[3] = 0;
    assert_int_equal(curate_export_pack(CURATE_GGML_TYPE_Q4_0, codes, &d, NULL, 1, 31, out,
                                        NULL, &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_export_pack(CURATE_GGML_TYPE_F16, codes, &d, NULL, 1, 32, out, NULL,
                                        &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_export_pack(CURATE_GGML_TYPE_Q4_1, codes, &d, NULL, 1, 32, out, NULL,
                                        &err),
                     CURATE_ERR_INVALID); /* no mins */
}

/* ---- settings -------------------------------------------------------------------- */

static void test_block_type(void **state)
{
    (void)state;
    curate_error err;
    curate_quant_config cfg;
    curate_ggml_type t;
    curate_quant_config_default(&cfg);
    curate_error_clear(&err);
    cfg.bits = 8;
    OK(curate_export_block_type(&cfg, &t, &err));
    assert_int_equal(t, CURATE_GGML_TYPE_Q8_0);
    cfg.restricted = 1;
    OK(curate_export_block_type(&cfg, &t, &err));
    assert_int_equal(t, CURATE_GGML_TYPE_Q8_0);
    cfg.bits = 4;
    OK(curate_export_block_type(&cfg, &t, &err));
    assert_int_equal(t, CURATE_GGML_TYPE_Q4_0);
    cfg.asym = 1;
    cfg.method = CURATE_QUANT_GPTQ;
    OK(curate_export_block_type(&cfg, &t, &err));
    assert_int_equal(t, CURATE_GGML_TYPE_Q4_1);
    assert_int_equal(curate_export_ftype(CURATE_GGML_TYPE_Q4_0), 2);
    assert_int_equal(curate_export_ftype(CURATE_GGML_TYPE_Q4_1), 3);
    assert_int_equal(curate_export_ftype(CURATE_GGML_TYPE_Q8_0), 7);
    assert_int_equal(curate_export_ftype(CURATE_GGML_TYPE_F16), 1);
    assert_int_equal(curate_export_ftype(CURATE_GGML_TYPE_F32), 0);

    static const struct {
        unsigned bits;
        size_t group;
        int asym;
        const char *named;
    } bad[] = {
        {3, 32, 0, "3-bit symmetric groups of 32"},
        {4, 64, 0, "4-bit symmetric groups of 64"},
        {4, 128, 1, "4-bit asymmetric groups of 128"},
        {8, 32, 1, "8-bit asymmetric groups of 32"},
        {4, 0, 0, "4-bit symmetric per-row groups"},
        {2, 32, 0, "2-bit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        curate_quant_config_default(&cfg);
        cfg.bits = bad[i].bits;
        cfg.group_size = bad[i].group;
        cfg.asym = bad[i].asym;
        curate_error_clear(&err);
        assert_int_equal(curate_export_block_type(&cfg, &t, &err), CURATE_ERR_UNSUPPORTED);
        assert_non_null(strstr(err.message, bad[i].named));
        assert_non_null(strstr(err.message, "q8_0"));
        assert_non_null(strstr(err.message, "q4_0"));
        assert_non_null(strstr(err.message, "q4_1"));
    }
    curate_quant_config_default(&cfg);
    cfg.method = CURATE_QUANT_AWQ;
    assert_int_equal(curate_export_block_type(&cfg, &t, &err), CURATE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "awq"));
}

/* ---- whole models ------------------------------------------------------------------ */

/* A model's block matrices, quantized. */
typedef struct qmat {
    char name[64];
    size_t rows, cols;
    float *w; /* points into the fake-quant model's weights */
    float *q, *scales, *mins;
    uint8_t *codes;
    curate_quant_out out;
} qmat;

typedef struct qmodel {
    curate_model *fake; /* the source model with the fake-quant weights in place */
    qmat *m;
    size_t n;
} qmodel;

static void qmodel_free(qmodel *qm)
{
    for (size_t i = 0; i < qm->n; i++) {
        free(qm->m[i].q);
        free(qm->m[i].scales);
        free(qm->m[i].mins);
        free(qm->m[i].codes);
    }
    free(qm->m);
    curate_model_free(qm->fake);
    memset(qm, 0, sizeof *qm);
}

/* Load path, quantize every blk.* matrix with cfg, put the fake-quant
 * weights into the model (so it is the model the evaluation measures). */
/* Hessians X^T X / n of every linear input of a model, [layer][input]. */
typedef struct hess {
    curate_observer *obs[8][5];
    float *h[8][5];
} hess;

static void on_linear(void *user, uint32_t layer, curate_linear_input which, const float *x,
                      size_t n_rows, size_t n_cols)
{
    hess *hs = user;
    curate_error err;
    curate_error_clear(&err);
    curate_observer **o = &hs->obs[layer][which];
    if (!*o) {
        curate_observer_config oc = {n_cols, CURATE_OBSERVE_HESSIAN, 0, 0};
        *o = curate_observer_init(&oc, &err);
    }
    if (*o)
        curate_observer_add(*o, x, n_rows, &err);
}

static void hess_collect(hess *hs, const char *path, size_t n)
{
    curate_error err;
    curate_error_clear(&err);
    memset(hs, 0, sizeof *hs);
    curate_model *m = curate_model_load(path, &err);
    assert_non_null(m);
    uint32_t V = curate_model_get_params(m)->n_vocab;
    int32_t *tok = malloc(n * sizeof *tok);
    float *logits = malloc(n * V * sizeof *logits);
    for (size_t i = 0; i < n; i++)
        tok[i] = (int32_t)((i * 2654435761u) % V);
    curate_model_ctx *c = curate_model_ctx_init(m, n, 1, &err);
    assert_non_null(c);
    curate_model_ctx_set_observer(c, on_linear, hs);
    OK(curate_model_ctx_forward(c, tok, n, 0, logits, &err));
    for (int l = 0; l < 8; l++)
        for (int k = 0; k < 4; k++)
            if (hs->obs[l][k]) {
                size_t cols = curate_observer_cols(hs->obs[l][k]);
                hs->h[l][k] = malloc(cols * cols * sizeof(float));
                OK(curate_observer_hessian(hs->obs[l][k], hs->h[l][k], &err));
            }
    curate_model_ctx_free(c);
    curate_model_free(m);
    free(tok);
    free(logits);
}

static void hess_free(hess *hs)
{
    for (int l = 0; l < 8; l++)
        for (int k = 0; k < 5; k++) {
            curate_observer_free(hs->obs[l][k]);
            free(hs->h[l][k]);
        }
}

static void qmodel_build_h(qmodel *qm, const char *path, const curate_quant_config *cfg,
                           const hess *hs)
{
    curate_error err;
    curate_error_clear(&err);
    memset(qm, 0, sizeof *qm);
    qm->fake = curate_model_load(path, &err);
    if (!qm->fake)
        fprintf(stderr, "load %s: %s\n", path, err.message);
    assert_non_null(qm->fake);
    const curate_model_params *p = curate_model_get_params(qm->fake);
    curate_model_weights *wt = curate_model_weights_mut(qm->fake);
    size_t d = p->n_embd, f = p->n_ff, qd = (size_t)p->n_head * p->head_dim,
           kv = (size_t)p->n_head_kv * p->head_dim;
    qm->n = (size_t)p->n_layer * 7;
    qm->m = calloc(qm->n, sizeof *qm->m);
    assert_non_null(qm->m);
    for (uint32_t l = 0; l < p->n_layer; l++) {
        curate_layer_weights *L = &wt->layers[l];
        struct {
            const char *n;
            float *w;
            size_t rows, cols;
            curate_linear_input in;
        } mats[7] = {{"attn_q", L->wq, qd, d, CURATE_LIN_ATTN_QKV},
                     {"attn_k", L->wk, kv, d, CURATE_LIN_ATTN_QKV},
                     {"attn_v", L->wv, kv, d, CURATE_LIN_ATTN_QKV},
                     {"attn_output", L->wo, d, qd, CURATE_LIN_ATTN_OUT},
                     {"ffn_gate", L->w_gate, f, d, CURATE_LIN_FFN_GATE_UP},
                     {"ffn_up", L->w_up, f, d, CURATE_LIN_FFN_GATE_UP},
                     {"ffn_down", L->w_down, d, f, CURATE_LIN_FFN_DOWN}};
        for (int k = 0; k < 7; k++) {
            qmat *m = &qm->m[l * 7 + (uint32_t)k];
            snprintf(m->name, sizeof m->name, "blk.%u.%s.weight", l, mats[k].n);
            m->rows = mats[k].rows;
            m->cols = mats[k].cols;
            m->w = mats[k].w;
            size_t ng = curate_quant_n_groups(m->cols, cfg->group_size);
            m->q = malloc(m->rows * m->cols * sizeof(float));
            m->codes = malloc(m->rows * m->cols);
            m->scales = malloc(m->rows * ng * sizeof(float));
            m->mins = malloc(m->rows * ng * sizeof(float));
            assert_true(m->q && m->codes && m->scales && m->mins);
            m->out = (curate_quant_out){m->q, m->scales, m->mins, m->codes, NULL};
            curate_quant_stats qs = {NULL, NULL, hs ? hs->h[l][mats[k].in] : NULL};
            OK(curate_quant_matrix(cfg, m->w, m->rows, m->cols, &qs, &m->out, NULL, &err));
            memcpy(m->w, m->q, m->rows * m->cols * sizeof(float));
        }
    }
}

static void qmodel_build(qmodel *qm, const char *path, const curate_quant_config *cfg)
{
    qmodel_build_h(qm, path, cfg, NULL);
}

static curate_export_tensor *qmodel_list(const qmodel *qm)
{
    curate_export_tensor *l = calloc(qm->n, sizeof *l);
    assert_non_null(l);
    for (size_t i = 0; i < qm->n; i++) {
        l[i].name = qm->m[i].name;
        l[i].quant = &qm->m[i].out;
    }
    return l;
}

/* Mean NLL of a fixed pseudo-random token sequence. */
static double mean_nll(const curate_model *m, size_t n)
{
    curate_error err;
    curate_error_clear(&err);
    uint32_t V = curate_model_get_params(m)->n_vocab;
    int32_t *tok = malloc(n * sizeof *tok);
    float *logits = malloc(n * V * sizeof *logits);
    double *nll = malloc(n * sizeof *nll);
    assert_true(tok && logits && nll);
    uint64_t s = 42;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % V);
    }
    curate_model_ctx *c = curate_model_ctx_init(m, n, 1, &err);
    assert_non_null(c);
    OK(curate_model_ctx_forward(c, tok, n, 0, logits, &err));
    OK(curate_model_ctx_nll(c, logits, n - 1, tok + 1, nll, NULL, &err));
    double sum = 0;
    for (size_t i = 0; i + 1 < n; i++)
        sum += nll[i];
    curate_model_ctx_free(c);
    free(tok);
    free(logits);
    free(nll);
    return sum / (double)(n - 1);
}

static int value_equal(const curate_gguf_value *a, const curate_gguf_value *b)
{
    if (a->type != b->type || a->elem_type != b->elem_type || a->len != b->len)
        return 0;
    if (a->type == CURATE_GGUF_TYPE_STRING)
        return memcmp(a->data, b->data, (size_t)a->len) == 0;
    if (a->type != CURATE_GGUF_TYPE_ARRAY)
        return memcmp(a->data, b->data, curate_gguf_type_size(a->type)) == 0;
    if (a->elems) {
        for (uint64_t i = 0; i < a->len; i++)
            if (!value_equal(&a->elems[i], &b->elems[i]))
                return 0;
        return 1;
    }
    return memcmp(a->data, b->data, (size_t)a->len * curate_gguf_type_size(a->elem_type)) == 0;
}

typedef struct measured {
    double max_abs;  /* max |file - fake-quant| */
    double max_rel;  /* max over tensors of max|file - fake-quant| / max|fake-quant| */
    double sq_diff, sq_ref;
} measured;

/*
 * Check an exported file against its source and the fake-quant weights:
 * types, the fp16-rounding bound per element, untouched tensors
 * byte-identical, metadata.  Returns the measured difference.
 */
static measured check_export(const char *src_path, const char *out_path, const qmodel *qm,
                             curate_ggml_type want, const curate_export_result *res)
{
    curate_error err;
    curate_error_clear(&err);
    curate_gguf *src = curate_gguf_open(src_path, &err);
    curate_gguf *out = curate_gguf_open(out_path, &err);
    assert_non_null(src);
    assert_non_null(out);
    assert_int_equal(curate_gguf_version(out), 3);
    assert_int_equal(curate_gguf_n_tensors(out), curate_gguf_n_tensors(src));
    measured ms = {0, 0, 0, 0};
    int asym = want == CURATE_GGML_TYPE_Q4_1;
    int off = want == CURATE_GGML_TYPE_Q8_0 ? 128 : (asym ? 0 : 8);
    for (size_t i = 0; i < curate_gguf_n_tensors(src); i++) {
        const curate_gguf_tensor *s = curate_gguf_tensor_at(src, i);
        const curate_gguf_tensor *t = curate_gguf_tensor_at(out, i);
        assert_string_equal(s->name, t->name); /* same order */
        assert_int_equal(s->n_dims, t->n_dims);
        assert_memory_equal(s->ne, t->ne, sizeof s->ne);
        const qmat *m = NULL;
        for (size_t k = 0; k < qm->n; k++)
            if (!strcmp(qm->m[k].name, s->name))
                m = &qm->m[k];
        assert_string_equal(res->tensors[i].name, s->name);
        if (!m) {
            assert_int_equal(t->type, s->type);
            assert_int_equal(t->n_bytes, s->n_bytes);
            assert_memory_equal(t->data, s->data, (size_t)s->n_bytes);
            assert_int_equal(res->tensors[i].kind, CURATE_EXPORT_COPIED);
            continue;
        }
        assert_int_equal(t->type, want);
        assert_int_equal(res->tensors[i].kind, CURATE_EXPORT_PACKED);
        size_t n = m->rows * m->cols, ng = m->cols / 32;
        float *x = malloc(n * sizeof *x);
        assert_non_null(x);
        OK(curate_gguf_tensor_to_f32(t, x, n, &err));
        double tmax = 0, qmax = 0;
        for (size_t r = 0; r < m->rows; r++)
            for (size_t j = 0; j < m->cols; j++) {
                size_t k = r * m->cols + j;
                float d = m->scales[r * ng + j / 32], mn = asym ? m->mins[r * ng + j / 32] : 0;
                float d16 = curate_f16_to_f32(curate_f32_to_f16(d));
                float m16 = curate_f16_to_f32(curate_f32_to_f16(mn));
                float q0 = (float)((int)m->codes[k] - off);
                /* the bound: what keeping the code under the fp16 scale would give */
                double bound = fabs((double)q0 * d16 + m16 - (double)m->q[k]);
                double diff = fabs((double)x[k] - (double)m->q[k]);
                assert_true(diff <= bound + 1e-12);
                if (d == d16 && mn == m16)
                    assert_true(diff == 0.0);
                tmax = diff > tmax ? diff : tmax;
                ms.sq_diff += diff * diff;
                ms.sq_ref += (double)m->q[k] * m->q[k];
                double a = fabs((double)m->q[k]);
                qmax = a > qmax ? a : qmax;
            }
        if (qmax > 0 && tmax / qmax > ms.max_rel)
            ms.max_rel = tmax / qmax;
        assert_true(tmax == res->tensors[i].max_abs_diff); /* the report measures the same */
        ms.max_abs = tmax > ms.max_abs ? tmax : ms.max_abs;
        free(x);
    }
    /* every source key is in the output with the same value, except the ones
     * the export sets */
    for (size_t i = 0; i < curate_gguf_n_kv(src); i++) {
        const char *key = curate_gguf_kv_key(src, i);
        if (!strcmp(key, "general.file_type") || !strncmp(key, "curate.", 7))
            continue;
        const curate_gguf_value *v = curate_gguf_get(out, key);
        assert_non_null(v);
        assert_true(value_equal(curate_gguf_kv_value(src, i), v));
    }
    uint32_t ft, qv;
    OK(curate_gguf_require_u32(out, "general.file_type", &ft, &err));
    assert_int_equal(ft, curate_export_ftype(want));
    assert_int_equal(res->file_type, ft);
    OK(curate_gguf_require_u32(out, "general.quantization_version", &qv, &err));
    assert_int_equal(qv, 2);
    curate_gguf_close(src);
    curate_gguf_close(out);
    return ms;
}

static void check_str_key(const curate_gguf *g, const char *key, const char *want)
{
    curate_error err;
    curate_error_clear(&err);
    const char *s;
    size_t len;
    OK(curate_gguf_require_str(g, key, &s, &len, &err));
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
}

static void test_export_testmodel(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    curate_testmodel_config tc;
    curate_testmodel_config_init(&tc);
    tc.seed = 7;
    const char *src_path = tmp_path("export-src.gguf");
    OK(curate_testmodel_write(&tc, src_path, &err));

    static const struct {
        unsigned bits;
        int asym, restricted;
        curate_quant_method method;
        curate_ggml_type type;
        const char *file;
    } cases[] = {
        {8, 0, 0, CURATE_QUANT_RTN, CURATE_GGML_TYPE_Q8_0, "export-q8_0.gguf"},
        {8, 0, 1, CURATE_QUANT_MSE, CURATE_GGML_TYPE_Q8_0, "export-q8_0r.gguf"},
        {4, 0, 0, CURATE_QUANT_RTN, CURATE_GGML_TYPE_Q4_0, "export-q4_0.gguf"},
        {4, 0, 0, CURATE_QUANT_MSE, CURATE_GGML_TYPE_Q4_0, "export-q4_0m.gguf"},
        {4, 1, 0, CURATE_QUANT_RTN, CURATE_GGML_TYPE_Q4_1, "export-q4_1.gguf"},
        {4, 1, 0, CURATE_QUANT_MSE, CURATE_GGML_TYPE_Q4_1, "export-q4_1m.gguf"},
        {4, 0, 0, CURATE_QUANT_GPTQ, CURATE_GGML_TYPE_Q4_0, "export-q4_0g.gguf"},
        {4, 1, 0, CURATE_QUANT_GPTQ, CURATE_GGML_TYPE_Q4_1, "export-q4_1g.gguf"},
        {8, 0, 1, CURATE_QUANT_GPTQ, CURATE_GGML_TYPE_Q8_0, "export-q8_0g.gguf"},
    };
    hess hs;
    hess_collect(&hs, src_path, 64);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        curate_quant_config cfg;
        curate_quant_config_default(&cfg);
        cfg.bits = cases[c].bits;
        cfg.asym = cases[c].asym;
        cfg.restricted = cases[c].restricted;
        cfg.method = cases[c].method;
        cfg.act_order = c % 2; /* gptq with and without act-order (static groups) */
        qmodel qm;
        qmodel_build_h(&qm, src_path, &cfg, &hs);
        curate_export_tensor *list = qmodel_list(&qm);
        curate_export_options opt;
        curate_export_options_init(&opt);
        opt.quant = &cfg;
        opt.prov.calib_source = "calib.jsonl";
        opt.prov.calib_sha256 =
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        opt.prov.calib_records = 512;
        opt.prov.calib_tokens = 65536;
        opt.prov.calib_seed = 3;
        opt.prov.has_seed = 1;
        const char *ek[] = {"curate.calib.pack"}, *ev[] = {"concat"};
        opt.prov.extra_keys = ek;
        opt.prov.extra_values = ev;
        opt.prov.n_extra = 1;
        curate_gguf *src = curate_gguf_open(src_path, &err);
        assert_non_null(src);
        const char *out_path = tmp_path(cases[c].file);
        curate_export_result res;
        OK(curate_export_gguf(src, list, qm.n, &opt, out_path, &res, &err));
        curate_gguf_close(src);
        assert_int_equal(res.n_packed, qm.n);
        assert_int_equal(res.n_fallback, 0);
        assert_int_equal(res.block_type, cases[c].type);

        measured ms = check_export(src_path, out_path, &qm, cases[c].type, &res);

        /* curate.* keys */
        curate_gguf *g = curate_gguf_open(out_path, &err);
        assert_non_null(g);
        check_str_key(g, "curate.quant.method", curate_quant_method_name(cfg.method));
        check_str_key(g, "curate.quant.type", curate_ggml_type_name(cases[c].type));
        check_str_key(g, "curate.calib.sha256", opt.prov.calib_sha256);
        check_str_key(g, "curate.calib.source", "calib.jsonl");
        check_str_key(g, "curate.calib.pack", "concat");
        check_str_key(g, "curate.version", curate_version());
        uint32_t u;
        int b;
        uint64_t u64;
        OK(curate_gguf_require_u32(g, "curate.quant.bits", &u, &err));
        assert_int_equal(u, cfg.bits);
        OK(curate_gguf_require_u32(g, "curate.quant.group_size", &u, &err));
        assert_int_equal(u, 32);
        OK(curate_gguf_require_u32(g, "curate.quant.tensors", &u, &err));
        assert_int_equal(u, qm.n);
        OK(curate_gguf_require_bool(g, "curate.quant.sym", &b, &err));
        assert_int_equal(b, !cfg.asym);
        OK(curate_gguf_require_bool(g, "curate.quant.restricted", &b, &err));
        assert_int_equal(b, cfg.restricted);
        OK(curate_gguf_value_u64(curate_gguf_get(g, "curate.calib.records"), &u64, &err));
        assert_int_equal(u64, 512);
        OK(curate_gguf_value_u64(curate_gguf_get(g, "curate.calib.tokens"), &u64, &err));
        assert_int_equal(u64, 65536);
        OK(curate_gguf_value_u64(curate_gguf_get(g, "curate.calib.seed"), &u64, &err));
        assert_int_equal(u64, 3);
        curate_gguf_close(g);

        /* curate's loader on the file vs the fake-quant model */
        curate_model *loaded = curate_model_load(out_path, &err);
        assert_non_null(loaded);
        double a = mean_nll(qm.fake, 48), bnll = mean_nll(loaded, 48);
        double rel = fabs(exp(bnll - a) - 1.0);
        printf("# %-18s max|file-fake| %.3g  (/ max|w| %.3g)  rel rms %.3g  codes changed %llu  "
               "PPL fake %.6f file %.6f (rel %.2g)\n",
               cases[c].file, ms.max_abs, ms.max_rel, sqrt(ms.sq_diff / ms.sq_ref),
               (unsigned long long)res.codes_changed, exp(a), exp(bnll), rel);
        assert_true(rel < 1e-3);
        curate_model_free(loaded);
        curate_export_result_release(&res);
        free(list);
        qmodel_free(&qm);
    }
    hess_free(&hs);
}

/* A file whose rows do not split into blocks: ffn_down has 72 columns. */
static void test_fallback(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    for (int f16 = 0; f16 < 2; f16++) {
        curate_testmodel_config tc;
        curate_testmodel_config_init(&tc);
        tc.ffn_dim = 72;
        tc.weight_type = f16 ? CURATE_GGML_TYPE_F16 : CURATE_GGML_TYPE_F32;
        const char *src_path = tmp_path(f16 ? "fallback-src16.gguf" : "fallback-src32.gguf");
        OK(curate_testmodel_write(&tc, src_path, &err));
        curate_quant_config cfg;
        curate_quant_config_default(&cfg);
        qmodel qm;
        qmodel_build(&qm, src_path, &cfg);
        curate_export_tensor *list = qmodel_list(&qm);
        curate_export_options opt;
        curate_export_options_init(&opt);
        opt.quant = &cfg;
        curate_gguf *src = curate_gguf_open(src_path, &err);
        assert_non_null(src);
        for (int orig = 0; orig < 2; orig++) {
            opt.fallback_original = orig;
            const char *out_path = tmp_path("fallback-out.gguf");
            curate_export_result res;
            OK(curate_export_gguf(src, list, qm.n, &opt, out_path, &res, &err));
            assert_int_equal(res.n_fallback, 2); /* ffn_down of both layers */
            assert_int_equal(res.n_packed, qm.n - 2);
            curate_gguf *g = curate_gguf_open(out_path, &err);
            assert_non_null(g);
            for (size_t k = 0; k < qm.n; k++) {
                const qmat *m = &qm.m[k];
                const curate_gguf_tensor *t = curate_gguf_find_tensor(g, m->name);
                const curate_gguf_tensor *s = curate_gguf_find_tensor(src, m->name);
                assert_non_null(t);
                if (m->cols % 32 == 0) {
                    assert_int_equal(t->type, CURATE_GGML_TYPE_Q4_0);
                    continue;
                }
                curate_ggml_type want = f16 ? CURATE_GGML_TYPE_F16 : CURATE_GGML_TYPE_F32;
                assert_int_equal(t->type, want);
                size_t idx = 0;
                while (strcmp(res.tensors[idx].name, m->name))
                    idx++;
                assert_int_equal(res.tensors[idx].kind, CURATE_EXPORT_FALLBACK);
                assert_int_equal(res.tensors[idx].type, want);
                size_t n = m->rows * m->cols;
                float *x = malloc(n * sizeof *x), *o = malloc(n * sizeof *o);
                OK(curate_gguf_tensor_to_f32(t, x, n, &err));
                OK(curate_gguf_tensor_to_f32(s, o, n, &err));
                for (size_t j = 0; j < n; j++) {
                    float expect = orig ? o[j] : m->q[j];
                    if (f16)
                        expect = curate_f16_to_f32(curate_f32_to_f16(expect));
                    assert_true(x[j] == expect);
                }
                if (orig && f16) /* the source's own bytes */
                    assert_memory_equal(t->data, s->data, (size_t)s->n_bytes);
                free(x);
                free(o);
            }
            curate_gguf_close(g);
            curate_export_result_release(&res);
        }
        curate_gguf_close(src);
        free(list);
        qmodel_free(&qm);
    }
}

/* Only what the caller lists is quantized; a plain copy keeps file_type. */
static void test_partial_and_copy(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    curate_testmodel_config tc;
    curate_testmodel_config_init(&tc);
    const char *src_path = tmp_path("partial-src.gguf");
    OK(curate_testmodel_write(&tc, src_path, &err));
    curate_gguf *src = curate_gguf_open(src_path, &err);
    assert_non_null(src);

    /* a plain copy: no quant config, every tensor byte-identical, file_type kept */
    const char *copy = tmp_path("partial-copy.gguf");
    curate_export_result res;
    OK(curate_export_gguf(src, NULL, 0, NULL, copy, &res, &err));
    assert_int_equal(res.n_copied, curate_gguf_n_tensors(src));
    assert_int_equal(res.file_type, 0);
    curate_gguf *g = curate_gguf_open(copy, &err);
    assert_non_null(g);
    assert_null(curate_gguf_get(g, "curate.quant.method"));
    assert_null(curate_gguf_get(g, "general.quantization_version"));
    assert_non_null(curate_gguf_get(g, "curate.version"));
    uint32_t ft;
    OK(curate_gguf_require_u32(g, "general.file_type", &ft, &err));
    assert_int_equal(ft, 0);
    curate_gguf_close(g);
    curate_export_result_release(&res);

    /* one tensor quantized, one listed without a result (copied), token_embd untouched */
    curate_quant_config cfg;
    curate_quant_config_default(&cfg);
    cfg.bits = 8;
    qmodel qm;
    qmodel_build(&qm, src_path, &cfg);
    curate_export_tensor list[2] = {{qm.m[0].name, &qm.m[0].out}, {"output.weight", NULL}};
    curate_export_options opt;
    curate_export_options_init(&opt);
    opt.quant = &cfg;
    const char *part = tmp_path("partial-one.gguf");
    OK(curate_export_gguf(src, list, 2, &opt, part, &res, &err));
    assert_int_equal(res.n_packed, 1);
    assert_int_equal(res.n_copied, curate_gguf_n_tensors(src) - 1);
    g = curate_gguf_open(part, &err);
    assert_non_null(g);
    assert_int_equal(curate_gguf_find_tensor(g, qm.m[0].name)->type, CURATE_GGML_TYPE_Q8_0);
    assert_int_equal(curate_gguf_find_tensor(g, qm.m[1].name)->type, CURATE_GGML_TYPE_F32);
    assert_int_equal(curate_gguf_find_tensor(g, "token_embd.weight")->type,
                     CURATE_GGML_TYPE_F32);
    assert_int_equal(curate_gguf_find_tensor(g, "output.weight")->type, CURATE_GGML_TYPE_F32);
    curate_gguf_close(g);
    curate_export_result_release(&res);

    /* re-exporting an export drops the old curate.* keys and replaces them */
    curate_gguf *again = curate_gguf_open(part, &err);
    assert_non_null(again);
    const char *re = tmp_path("partial-re.gguf");
    OK(curate_export_gguf(again, NULL, 0, NULL, re, &res, &err));
    curate_gguf_close(again);
    g = curate_gguf_open(re, &err);
    assert_non_null(g);
    assert_null(curate_gguf_get(g, "curate.quant.method"));
    OK(curate_gguf_require_u32(g, "general.file_type", &ft, &err));
    assert_int_equal(ft, 7); /* the copy keeps the file's own type */
    curate_gguf_close(g);
    curate_export_result_release(&res);
    qmodel_free(&qm);
    curate_gguf_close(src);
}

static void test_refusals(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    curate_testmodel_config tc;
    curate_testmodel_config_init(&tc);
    const char *src_path = tmp_path("refuse-src.gguf");
    OK(curate_testmodel_write(&tc, src_path, &err));
    curate_gguf *src = curate_gguf_open(src_path, &err);
    assert_non_null(src);
    curate_quant_config cfg;
    curate_quant_config_default(&cfg);
    qmodel qm;
    qmodel_build(&qm, src_path, &cfg);
    const char *out = tmp_path("refused.gguf");
    remove(out);
    curate_export_options opt;
    curate_export_options_init(&opt);
    curate_export_result res;
    curate_export_tensor one = {qm.m[0].name, &qm.m[0].out};

    /* no config although a tensor is quantized */
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err),
                     CURATE_ERR_INVALID);
    assert_null(res.tensors);
    /* unsupported settings */
    curate_quant_config bad = cfg;
    bad.bits = 3;
    opt.quant = &bad;
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err),
                     CURATE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "3-bit"));
    bad = cfg;
    bad.group_size = 64;
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err),
                     CURATE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "groups of 64"));
    bad.group_size = 128;
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err),
                     CURATE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "groups of 128"));
    opt.quant = &cfg;
    /* AWQ's in_scale */
    float *ins = malloc(qm.m[0].cols * sizeof *ins);
    for (size_t j = 0; j < qm.m[0].cols; j++)
        ins[j] = j == 5 ? 1.5f : 1.0f;
    curate_quant_out awq = qm.m[0].out;
    awq.in_scale = ins;
    curate_export_tensor ta = {qm.m[0].name, &awq};
    assert_int_equal(curate_export_gguf(src, &ta, 1, &opt, out, &res, &err),
                     CURATE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, qm.m[0].name));
    /* all-ones in_scale is fine (non-AWQ methods fill it with 1) */
    for (size_t j = 0; j < qm.m[0].cols; j++)
        ins[j] = 1.0f;
    OK(curate_export_gguf(src, &ta, 1, &opt, out, &res, &err));
    curate_export_result_release(&res);
    remove(out);
    free(ins);
    /* list problems */
    curate_export_tensor missing = {"blk.9.attn_q.weight", &qm.m[0].out};
    assert_int_equal(curate_export_gguf(src, &missing, 1, &opt, out, &res, &err),
                     CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "blk.9.attn_q.weight"));
    curate_export_tensor twice[2] = {one, {qm.m[0].name, NULL}};
    assert_int_equal(curate_export_gguf(src, twice, 2, &opt, out, &res, &err),
                     CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "twice"));
    curate_quant_out nocodes = qm.m[0].out;
    nocodes.codes = NULL;
    curate_export_tensor tn = {qm.m[0].name, &nocodes};
    assert_int_equal(curate_export_gguf(src, &tn, 1, &opt, out, &res, &err),
                     CURATE_ERR_INVALID);
    /* provenance problems */
    opt.prov.calib_sha256 = "not-a-hash";
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err),
                     CURATE_ERR_INVALID);
    opt.prov.calib_sha256 = NULL;
    const char *ek[] = {"general.name"}, *ev[] = {"x"};
    opt.prov.extra_keys = ek;
    opt.prov.extra_values = ev;
    opt.prov.n_extra = 1;
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err),
                     CURATE_ERR_INVALID);
    /* an extra key that collides with the export's own */
    ek[0] = "curate.quant.bits";
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err),
                     CURATE_ERR_INVALID);
    opt.prov.n_extra = 0;
    /* a scale beyond fp16 */
    float saved = qm.m[0].scales[3];
    qm.m[0].scales[3] = 1e6f;
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, out, &res, &err), CURATE_ERR_RANGE);
    assert_non_null(strstr(err.message, qm.m[0].name));
    qm.m[0].scales[3] = saved;
    /* an unwritable path */
    assert_int_equal(curate_export_gguf(src, &one, 1, &opt, "/nonexistent-dir/x.gguf", &res,
                                        &err),
                     CURATE_ERR_IO);
    assert_false(file_exists(out)); /* nothing left behind by the failures */
    qmodel_free(&qm);
    curate_gguf_close(src);
}

/* ---- tinymix from ../shared -------------------------------------------------------- */

static void test_tinymix(void **state)
{
    (void)state;
    char *path = mh_shared_path("models/tinymix/tinymix-f32.gguf");
    if (!path)
        skip();
    curate_error err;
    curate_error_clear(&err);
    static const struct {
        unsigned bits;
        int asym;
        curate_ggml_type type;
    } cases[] = {{8, 0, CURATE_GGML_TYPE_Q8_0},
                 {4, 0, CURATE_GGML_TYPE_Q4_0},
                 {4, 1, CURATE_GGML_TYPE_Q4_1}};
    for (size_t c = 0; c < 3; c++) {
        curate_quant_config cfg;
        curate_quant_config_default(&cfg);
        cfg.bits = cases[c].bits;
        cfg.asym = cases[c].asym;
        qmodel qm;
        qmodel_build(&qm, path, &cfg);
        curate_export_tensor *list = qmodel_list(&qm);
        curate_export_options opt;
        curate_export_options_init(&opt);
        opt.quant = &cfg;
        curate_gguf *src = curate_gguf_open(path, &err);
        assert_non_null(src);
        const char *out = tmp_path("tinymix-export.gguf");
        curate_export_result res;
        OK(curate_export_gguf(src, list, qm.n, &opt, out, &res, &err));
        curate_gguf_close(src);
        measured ms = check_export(path, out, &qm, cases[c].type, &res);
        curate_model *loaded = curate_model_load(out, &err);
        assert_non_null(loaded);
        double a = mean_nll(qm.fake, 128), b = mean_nll(loaded, 128);
        double rel = fabs(exp(b - a) - 1.0);
        printf("# tinymix %s: max|file-fake| %.3g  (/ max|w| %.3g)  rel rms %.3g  codes changed "
               "%llu  PPL(random tokens) fake %.4f file %.4f (rel %.2g)\n",
               curate_ggml_type_name(cases[c].type), ms.max_abs, ms.max_rel,
               sqrt(ms.sq_diff / ms.sq_ref), (unsigned long long)res.codes_changed, exp(a),
               exp(b), rel);
        assert_true(rel < 1e-3);
        curate_model_free(loaded);
        curate_export_result_release(&res);
        free(list);
        qmodel_free(&qm);
    }
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_q4_0),
        cmocka_unit_test(test_layout_q4_1),
        cmocka_unit_test(test_layout_q8_0),
        cmocka_unit_test(test_matches_ggml_quantizer),
        cmocka_unit_test(test_fp16_rounding),
        cmocka_unit_test(test_pack_errors),
        cmocka_unit_test(test_block_type),
        cmocka_unit_test(test_export_testmodel),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_partial_and_copy),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_tinymix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
