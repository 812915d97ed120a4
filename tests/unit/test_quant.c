/*
 * test_quant.c - the weight quantizers: exact codes on hand-checkable
 * blocks, grouping (short last group), all-zero and constant groups,
 * error bounds, and the properties each method promises on seeded random
 * data: mse/imatrix never worse than rtn on their objectives, awq never
 * worse than rtn on the output error, gptq below rtn on the output error;
 * the BLAS paths against the scalar references (output error, GPTQ with
 * and without lazy batches).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include <cmocka.h>

#include "curate/observe.h"
#include "curate/quant.h"
#include "quant_internal.h"

/* ---- seeded data ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}
static double rng_gauss(uint64_t *s)
{
    return sqrt(-2.0 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s));
}

/* Weights: Gaussian rows of varying scale, heavy-tailed if `tails`
 * (a Student-t-like ratio), like trained linear layers. */
static float *make_w(size_t rows, size_t cols, uint64_t seed, int tails)
{
    uint64_t s = seed;
    float *w = malloc(rows * cols * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        double sc = 0.02 * (0.5 + rng_unit(&s));
        for (size_t j = 0; j < cols; j++) {
            double v = rng_gauss(&s);
            if (tails)
                v /= sqrt(fabs(rng_gauss(&s)) + 0.05);
            w[r * cols + j] = (float)(sc * v);
        }
    }
    return w;
}

/*
 * Activations x[n][cols]: channel scales spread over ~2 orders of
 * magnitude with a few large "outlier" channels, and correlation between
 * channels through 8 shared latent factors (GPTQ has something to
 * exploit).  Columns listed in `dead` (terminated by SIZE_MAX) stay 0.
 */
static float *make_x(size_t n, size_t cols, uint64_t seed, const size_t *dead)
{
    uint64_t s = seed;
    double *sc = malloc(cols * sizeof(double)), *load = malloc(cols * 8 * sizeof(double));
    for (size_t j = 0; j < cols; j++) {
        sc[j] = exp(0.8 * rng_gauss(&s)) * (j % 23 == 5 ? 10.0 : 1.0);
        for (int k = 0; k < 8; k++)
            load[j * 8 + k] = rng_gauss(&s) * 0.6;
    }
    for (size_t i = 0; dead && dead[i] != SIZE_MAX; i++)
        sc[dead[i]] = 0.0;
    float *x = malloc(n * cols * sizeof(float));
    for (size_t t = 0; t < n; t++) {
        double f[8];
        for (int k = 0; k < 8; k++)
            f[k] = rng_gauss(&s);
        for (size_t j = 0; j < cols; j++) {
            double v = rng_gauss(&s);
            for (int k = 0; k < 8; k++)
                v += load[j * 8 + k] * f[k];
            x[t * cols + j] = (float)(sc[j] * v);
        }
    }
    free(sc);
    free(load);
    return x;
}

/* Calibration statistics of x through the observer (tested in test_observe). */
typedef struct stats {
    float *h, *imp, *absmean;
    curate_quant_stats qs;
} stats;

static void stats_of(stats *st, const float *x, size_t n, size_t cols)
{
    curate_observer_config oc = {.cols = cols, .what = CURATE_OBSERVE_ALL};
    curate_observer *o = curate_observer_init(&oc, NULL);
    assert_non_null(o);
    assert_int_equal(curate_observer_add(o, x, n, NULL), CURATE_OK);
    st->h = malloc(cols * cols * sizeof(float));
    st->imp = malloc(cols * sizeof(float));
    st->absmean = malloc(cols * sizeof(float));
    assert_int_equal(curate_observer_hessian(o, st->h, NULL), CURATE_OK);
    assert_int_equal(curate_observer_imatrix(o, st->imp, NULL), CURATE_OK);
    assert_int_equal(curate_observer_absmean(o, st->absmean, NULL), CURATE_OK);
    curate_observer_free(o);
    st->qs.hessian = st->h;
    st->qs.imp = st->imp;
    st->qs.absmean = st->absmean;
}

static void stats_free(stats *st)
{
    free(st->h);
    free(st->imp);
    free(st->absmean);
}

static curate_quant_config cfg_of(curate_quant_method m, unsigned bits, size_t g, int asym,
                                  int restricted)
{
    curate_quant_config c;
    curate_quant_config_default(&c);
    c.method = m;
    c.bits = bits;
    c.group_size = g;
    c.asym = asym;
    c.restricted = restricted;
    return c;
}

/* Run a method; returns the output error tr(dW H dW^T) when h is given. */
static double run(const curate_quant_config *c, const float *w, size_t rows, size_t cols,
                  const stats *st, float *q, curate_quant_report *rep)
{
    curate_quant_out out = {.q = q};
    curate_error err;
    curate_quant_report r;
    if (curate_quant_matrix(c, w, rows, cols, st ? &st->qs : NULL, &out, rep ? rep : &r, &err) !=
        CURATE_OK)
        fail_msg("quant %s: %s", curate_quant_method_name(c->method), err.message);
    double e = 0;
    if (st)
        assert_int_equal(curate_quant_output_error(w, q, rows, cols, st->h, &e, NULL), CURATE_OK);
    return e;
}

/* ---- hand-checkable blocks ------------------------------------------------------ */

static const float ramp[5] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f};

static void check_block(const curate_quant_config *c, const float *x, float want_d, float want_m,
                        const uint8_t *want_codes, const float *want_vals)
{
    float d, m, xq[5];
    uint8_t codes[5];
    curate_quant_group_params(c, x, 5, 1.0f, &d, &m);
    if (d != want_d || m != want_m)
        fail_msg("%u bits asym %d restricted %d: d %g m %g, want %g %g", c->bits, c->asym,
                 c->restricted, d, m, want_d, want_m);
    double e = curate_quant_group_apply(c, x, 5, d, m, xq, codes);
    double want_e = 0;
    for (int j = 0; j < 5; j++) {
        if (codes[j] != want_codes[j] || xq[j] != want_vals[j])
            fail_msg("%u bits asym %d restricted %d, x[%d] = %g: code %u value %g, want %u %g",
                     c->bits, c->asym, c->restricted, j, x[j], codes[j], xq[j], want_codes[j],
                     want_vals[j]);
        want_e += ((double)x[j] - want_vals[j]) * ((double)x[j] - want_vals[j]);
    }
    assert_true(e == want_e);
}

/*
 * Symmetric full range, ramp {-1, -0.5, 0, 0.5, 1}: the first element of
 * largest magnitude is -1, so d = -1 / -2^(b-1) = 2^-(b-1), q = round(x/d)
 * clamped to [-2^(b-1), 2^(b-1)-1]; code = q + 2^(b-1).  The +1 end is one
 * step past the top code and is clipped (the price of using all 2^b codes).
 */
static void test_hand_sym_full(void **state)
{
    (void)state;
    curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 2, 0, 0, 0);
    /* 2 bits: d 0.5, q {-2,-1,0,1,2->1} */
    check_block(&c, ramp, 0.5f, 0, (const uint8_t[]){0, 1, 2, 3, 3},
                (const float[]){-1, -0.5f, 0, 0.5f, 0.5f});
    /* 3 bits: d 0.25, q {-4,-2,0,2,4->3} */
    c.bits = 3;
    check_block(&c, ramp, 0.25f, 0, (const uint8_t[]){0, 2, 4, 6, 7},
                (const float[]){-1, -0.5f, 0, 0.5f, 0.75f});
    /* 4 bits: d 0.125, q {-8,-4,0,4,8->7} */
    c.bits = 4;
    check_block(&c, ramp, 0.125f, 0, (const uint8_t[]){0, 4, 8, 12, 15},
                (const float[]){-1, -0.5f, 0, 0.5f, 0.875f});
    /* mirrored: the extreme is +1, so d is negative (-0.5 at 2 bits) and
     * the -1 end is the clipped one: q = x/d = {2->1, 1, 0, -1, -2} */
    const float rev[5] = {1.0f, 0.5f, 0.0f, -0.5f, -1.0f};
    c.bits = 2;
    check_block(&c, rev, -0.5f, 0, (const uint8_t[]){0, 1, 2, 3, 3},
                (const float[]){1, 0.5f, 0, -0.5f, -0.5f});
    /* 8 bits: d 1/128, every ramp value is a multiple: exact */
    c.bits = 8;
    check_block(&c, ramp, 1.0f / 128, 0, (const uint8_t[]){0, 64, 128, 192, 255},
                (const float[]){-1, -0.5f, 0, 0.5f, 127.0f / 128});
}

/*
 * Symmetric restricted: d = amax / (2^(b-1)-1), q in +-(2^(b-1)-1),
 * code = q + 2^(b-1).  Blocks chosen with amax = qmax so d = 1 exactly;
 * the halves are ties, which roundf breaks away from zero.
 */
static void test_hand_sym_restricted(void **state)
{
    (void)state;
    curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 2, 0, 0, 1);
    /* 2 bits, qmax 1: q = round({-1,-0.5,0,0.5,1}) = {-1,-1,0,1,1} */
    check_block(&c, ramp, 1.0f, 0, (const uint8_t[]){1, 1, 2, 3, 3},
                (const float[]){-1, -1, 0, 1, 1});
    /* 3 bits, qmax 3 */
    c.bits = 3;
    check_block(&c, (const float[]){-3, -1.5f, 0, 1.5f, 3}, 1.0f, 0,
                (const uint8_t[]){1, 2, 4, 6, 7}, (const float[]){-3, -2, 0, 2, 3});
    /* 4 bits, qmax 7 */
    c.bits = 4;
    check_block(&c, (const float[]){-7, -3.5f, 0, 3.5f, 7}, 1.0f, 0,
                (const uint8_t[]){1, 4, 8, 12, 15}, (const float[]){-7, -4, 0, 4, 7});
}

/*
 * Asymmetric: d = (max - min) / (2^b - 1), m = min, q = round((x - m)/d)
 * in [0, 2^b-1].  Blocks chosen with max - min = 2^b - 1 so d = 1.
 */
static void test_hand_asym(void **state)
{
    (void)state;
    curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 2, 0, 1, 0);
    /* x - m = {0, 0.5, 1, 1.5, 3} -> {0, 1, 1, 2, 3} */
    check_block(&c, (const float[]){-1, -0.5f, 0, 0.5f, 2}, 1.0f, -1.0f,
                (const uint8_t[]){0, 1, 1, 2, 3}, (const float[]){-1, 0, 0, 1, 2});
    /* 3 bits: x - m = {0, 1.75, 3, 3.5, 7} -> {0, 2, 3, 4, 7} */
    c.bits = 3;
    check_block(&c, (const float[]){-3, -1.25f, 0, 0.5f, 4}, 1.0f, -3.0f,
                (const uint8_t[]){0, 2, 3, 4, 7}, (const float[]){-3, -1, 0, 1, 4});
    /* 4 bits: x - m = {0, 5.25, 7.5, 8, 15} -> {0, 5, 8, 8, 15} */
    c.bits = 4;
    check_block(&c, (const float[]){-7.5f, -2.25f, 0, 0.5f, 7.5f}, 1.0f, -7.5f,
                (const uint8_t[]){0, 5, 8, 8, 15}, (const float[]){-7.5f, -2.5f, 0.5f, 0.5f, 7.5f});
    /* the ramp itself at 2 bits: d = 2/3, codes 0, 0.75->1, 1.5->2, 2.25->2, 3 */
    c.bits = 2;
    float d, m, xq[5];
    uint8_t codes[5];
    curate_quant_group_params(&c, ramp, 5, 1.0f, &d, &m);
    assert_true(d == 2.0f / 3.0f && m == -1.0f);
    curate_quant_group_apply(&c, ramp, 5, d, m, xq, codes);
    const uint8_t want[5] = {0, 1, 2, 2, 3};
    for (int j = 0; j < 5; j++) {
        assert_int_equal(codes[j], want[j]);
        assert_true(xq[j] == (float)want[j] * d + m);
    }
}

/* The same blocks through curate_quant_matrix, with codes, scales and mins. */
static void test_hand_matrix(void **state)
{
    (void)state;
    /* 3 bits sym full, groups of 5: row 0 = ramp | reversed ramp, row 1 = 2 * ramp reversed | zeros */
    const float w[20] = {-1, -0.5f, 0, 0.5f, 1, 1, 0.5f, 0, -0.5f, -1,
                         2,  1,     0, -1,   -2, 0, 0,    0, 0,     0};
    float q[20], sc[4], mn[4], ins[10];
    uint8_t codes[20];
    curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 3, 5, 0, 0);
    curate_quant_out out = {.q = q, .scales = sc, .mins = mn, .codes = codes, .in_scale = ins};
    curate_quant_report rep;
    assert_int_equal(curate_quant_matrix(&c, w, 2, 10, NULL, &out, &rep, NULL), CURATE_OK);
    const float want_sc[4] = {0.25f, -0.25f, -0.5f, 0.0f};
    const uint8_t want_codes[20] = {0, 2, 4, 6, 7, 0, 2, 4, 6, 7, 0, 2, 4, 6, 7, 4, 4, 4, 4, 4};
    const float want_q[20] = {-1, -0.5f, 0, 0.5f, 0.75f, 1, 0.5f, 0, -0.5f, -0.75f,
                              2,  1,     0, -1,   -1.5f, 0, 0,    0, 0,     0};
    for (int i = 0; i < 4; i++) {
        assert_true(sc[i] == want_sc[i]);
        assert_true(mn[i] == 0.0f);
    }
    for (int i = 0; i < 20; i++) {
        assert_int_equal(codes[i], want_codes[i]);
        assert_true(q[i] == want_q[i]);
    }
    for (int j = 0; j < 10; j++)
        assert_true(ins[j] == 1.0f);
    assert_int_equal(rep.n_groups, 2);
    assert_int_equal(rep.last_group, 5);
    assert_int_equal(rep.short_group, 0);
    assert_true(rep.weight_err == 2 * 0.25 * 0.25 + 0.5 * 0.5);
}

/* Codes, scales and mins decode back to q (the packing contract of #6). */
static void check_decode(const curate_quant_config *c, const curate_quant_out *o, size_t rows,
                         size_t cols)
{
    size_t ng = curate_quant_n_groups(cols, c->group_size);
    size_t G = c->group_size && c->group_size < cols ? c->group_size : cols;
    float off = c->asym ? 0.0f : (float)(1u << (c->bits - 1));
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            size_t g = j / G;
            float d = o->scales[r * ng + g], m = o->mins[r * ng + g];
            float v = c->asym ? (float)o->codes[r * cols + j] * d + m
                              : ((float)o->codes[r * cols + j] - off) * d;
            if (o->in_scale)
                v /= o->in_scale[j];
            if (v != o->q[r * cols + j])
                fail_msg("%s: [%zu][%zu] decodes to %g, q is %g", curate_quant_method_name(c->method),
                         r, j, v, o->q[r * cols + j]);
            if (c->restricted && !c->asym)
                assert_true(o->codes[r * cols + j] >= 1);
            assert_true(o->codes[r * cols + j] < (1u << c->bits));
        }
}

/* cols 172 with G 32: five groups of 32 and one of 12. */
static void test_short_group(void **state)
{
    (void)state;
    assert_int_equal(curate_quant_n_groups(172, 32), 6);
    assert_int_equal(curate_quant_last_group(172, 32), 12);
    assert_int_equal(curate_quant_n_groups(172, 0), 1);
    assert_int_equal(curate_quant_last_group(172, 0), 172);
    assert_int_equal(curate_quant_n_groups(172, 172), 1);
    assert_int_equal(curate_quant_n_groups(128, 32), 4);
    assert_int_equal(curate_quant_last_group(128, 32), 32);

    const size_t rows = 3, cols = 172;
    float *w = make_w(rows, cols, 11, 1), *q = malloc(rows * cols * sizeof(float));
    float sc[3 * 6], mn[3 * 6];
    uint8_t *codes = malloc(rows * cols);
    for (int asym = 0; asym <= 1; asym++) {
        curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 4, 32, asym, 0);
        curate_quant_out out = {.q = q, .scales = sc, .mins = mn, .codes = codes};
        curate_quant_report rep;
        assert_int_equal(curate_quant_matrix(&c, w, rows, cols, NULL, &out, &rep, NULL), CURATE_OK);
        assert_int_equal(rep.n_groups, 6);
        assert_int_equal(rep.last_group, 12);
        assert_int_equal(rep.short_group, 1);
        /* each group's scale is that of its own slice, the last one 12 wide */
        for (size_t r = 0; r < rows; r++)
            for (size_t g = 0; g < 6; g++) {
                float d, m;
                curate_quant_group_params(&c, w + r * cols + g * 32, g < 5 ? 32 : 12, 1.0f, &d, &m);
                assert_true(sc[r * 6 + g] == d && mn[r * 6 + g] == m);
            }
        check_decode(&c, &out, rows, cols);
    }
    /* a group wider than the row is a single short group */
    curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 4, 256, 0, 0);
    curate_quant_out out = {.q = q};
    curate_quant_report rep;
    assert_int_equal(curate_quant_matrix(&c, w, rows, cols, NULL, &out, &rep, NULL), CURATE_OK);
    assert_int_equal(rep.n_groups, 1);
    assert_int_equal(rep.short_group, 1);
    free(w);
    free(q);
    free(codes);
}

/* ---- degenerate groups --------------------------------------------------------- */

static void test_zero_groups_all_methods(void **state)
{
    (void)state;
    const size_t rows = 8, cols = 64, G = 16, ng = 4;
    float *w = make_w(rows, cols, 5, 0);
    memset(w + 3 * cols + 16, 0, 16 * sizeof(float)); /* row 3, group 1 */
    memset(w + 5 * cols, 0, cols * sizeof(float));      /* all of row 5 */
    float *x = make_x(256, cols, 6, NULL);
    stats st;
    stats_of(&st, x, 256, cols);
    float *q = malloc(rows * cols * sizeof(float)), sc[8 * 4], mn[8 * 4], ins[64];
    uint8_t codes[8 * 64];
    for (int m = 0; m < CURATE_QUANT_METHOD_COUNT_; m++)
        for (int f = 0; f < 3; f++)
            for (int ao = 0; ao <= (m == CURATE_QUANT_GPTQ); ao++) {
                curate_quant_config c = cfg_of((curate_quant_method)m, 3, G, f == 2, f == 1);
                c.act_order = ao;
                curate_quant_out out = {.q = q, .scales = sc, .mins = mn, .codes = codes,
                                        .in_scale = ins};
                curate_error err;
                if (curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, NULL, &err) != CURATE_OK)
                    fail_msg("%s: %s", curate_quant_method_name(c.method), err.message);
                assert_true(curate_quant_all_finite(q, rows * cols));
                assert_true(curate_quant_all_finite(sc, rows * ng));
                assert_true(curate_quant_all_finite(mn, rows * ng));
                /* Row 5 is zero: every scale 0, every value 0, codes at zero.
                 * (GPTQ's error feedback makes row 3's zero group non-zero
                 * before it is rounded, so only the whole zero row is
                 * checked for it; the other methods see the original.) */
                for (size_t g = 0; g < ng; g++) {
                    assert_true(sc[5 * ng + g] == 0.0f && mn[5 * ng + g] == 0.0f);
                    if (m != CURATE_QUANT_GPTQ || ao)
                        assert_true(sc[3 * ng + 1] == 0.0f);
                }
                uint8_t zc = f == 2 ? 0 : 4;
                for (size_t j = 0; j < cols; j++) {
                    assert_true(q[5 * cols + j] == 0.0f);
                    assert_int_equal(codes[5 * cols + j], zc);
                }
                if (m != CURATE_QUANT_GPTQ)
                    for (size_t j = 16; j < 32; j++)
                        assert_true(q[3 * cols + j] == 0.0f);
                check_decode(&c, &out, rows, cols);
            }
    free(w);
    free(x);
    free(q);
    stats_free(&st);
}

/* A constant group: symmetric full range and asym are exact; restricted within an ulp. */
static void test_constant_group(void **state)
{
    (void)state;
    const float vals[] = {0.3f, -0.7f, 1e-30f, 12345.0f};
    for (unsigned bits = 2; bits <= 8; bits++)
        for (int f = 0; f < 3; f++)
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                float x[7], xq[7], d, m;
                for (int j = 0; j < 7; j++)
                    x[j] = vals[k];
                curate_quant_config c = cfg_of(CURATE_QUANT_RTN, bits, 0, f == 2, f == 1);
                curate_quant_group_params(&c, x, 7, 1.0f, &d, &m);
                curate_quant_group_apply(&c, x, 7, d, m, xq, NULL);
                for (int j = 0; j < 7; j++) {
                    if (f == 1)
                        assert_true(fabsf(xq[j] - x[j]) <= 2e-7f * fabsf(x[j]));
                    else if (xq[j] != x[j])
                        fail_msg("%u bits fmt %d: %g -> %g", bits, f, x[j], xq[j]);
                }
                if (f == 2)
                    assert_true(d == 0.0f && m == vals[k]);
            }
}

/* ---- error bounds ---------------------------------------------------------------- */

static void test_rtn_bounds(void **state)
{
    (void)state;
    const size_t rows = 16, cols = 96;
    float *w = make_w(rows, cols, 21, 1), *q = malloc(rows * cols * sizeof(float));
    float sc[16 * 3], mn[16 * 3];
    for (unsigned bits = 2; bits <= 8; bits++)
        for (int f = 0; f < 3; f++) {
            curate_quant_config c = cfg_of(CURATE_QUANT_RTN, bits, 32, f == 2, f == 1);
            curate_quant_out out = {.q = q, .scales = sc, .mins = mn};
            assert_int_equal(curate_quant_matrix(&c, w, rows, cols, NULL, &out, NULL, NULL),
                             CURATE_OK);
            float top = (float)((1u << (bits - 1)) - 1);
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < cols; j++) {
                    float d = fabsf(sc[r * 3 + j / 32]), x = w[r * cols + j];
                    float e = fabsf(x - q[r * cols + j]);
                    /* within the representable range: half a step; beyond
                     * it (the clipped end of the full range): one step */
                    float bound = f == 0 && fabsf(x) > top * d ? d : 0.5f * d;
                    if (!(e <= bound * (1 + 1e-5f) + 1e-12f))
                        fail_msg("%u bits fmt %d: |%g - %g| > %g", bits, f, x, q[r * cols + j], bound);
                }
            if (bits == 8) {
                double rel = sqrt(curate_quant_sq_error(w, q, rows, cols, NULL) /
                                  curate_quant_sq_error(w, (const float[1536]){0}, rows, cols, NULL));
                /* 8 bits, groups of 32 on heavy-tailed rows: well under 1% */
                if (!(rel < 0.01))
                    fail_msg("8-bit relative error %g", rel);
            }
        }
    free(w);
    free(q);
}

/* ---- clipping searches ---------------------------------------------------------- */

static double group_err(const float *w, const float *q, size_t cols, size_t r, size_t c0,
                        size_t n, const float *wt)
{
    return curate_quant_sq_error(w + r * cols + c0, q + r * cols + c0, 1, n, wt ? wt + c0 : NULL);
}

static void test_mse_imatrix_never_worse(void **state)
{
    (void)state;
    const size_t rows = 24, cols = 100;
    float *w = make_w(rows, cols, 31, 1);
    float *x = make_x(300, cols, 32, NULL);
    stats st;
    stats_of(&st, x, 300, cols);
    float *qr = malloc(rows * cols * sizeof(float)), *qm = malloc(rows * cols * sizeof(float));
    float *qi = malloc(rows * cols * sizeof(float));
    const size_t groups[] = {0, 32, 24}; /* 100 = 3 x 32 + 4, 4 x 24 + 4 */
    double gain_mse = 1, gain_imp = 1;
    for (unsigned bits = 2; bits <= 5; bits++)
        for (int f = 0; f < 3; f++)
            for (size_t gi = 0; gi < 3; gi++) {
                size_t G = groups[gi] ? groups[gi] : cols;
                curate_quant_config c = cfg_of(CURATE_QUANT_RTN, bits, groups[gi], f == 2, f == 1);
                run(&c, w, rows, cols, NULL, qr, NULL);
                c.method = CURATE_QUANT_MSE;
                run(&c, w, rows, cols, NULL, qm, NULL);
                c.method = CURATE_QUANT_IMATRIX;
                run(&c, w, rows, cols, &st, qi, NULL);
                for (size_t r = 0; r < rows; r++)
                    for (size_t c0 = 0; c0 < cols; c0 += G) {
                        size_t n = c0 + G <= cols ? G : cols - c0;
                        double er = group_err(w, qr, cols, r, c0, n, NULL);
                        double em = group_err(w, qm, cols, r, c0, n, NULL);
                        double wr = group_err(w, qr, cols, r, c0, n, st.imp);
                        double wm = group_err(w, qm, cols, r, c0, n, st.imp);
                        double wi = group_err(w, qi, cols, r, c0, n, st.imp);
                        /* each search picks the least of its own objective
                         * over a grid holding factor 1 (rtn), and the same
                         * grid as the other search */
                        assert_true(em <= er);
                        assert_true(wi <= wr);
                        assert_true(wi <= wm);
                    }
                double er = curate_quant_sq_error(w, qr, rows, cols, NULL);
                double em = curate_quant_sq_error(w, qm, rows, cols, NULL);
                double wr = curate_quant_sq_error(w, qr, rows, cols, st.imp);
                double wi = curate_quant_sq_error(w, qi, rows, cols, st.imp);
                gain_mse = fmin(gain_mse, em / er);
                gain_imp = fmin(gain_imp, wi / wr);
            }
    /* and the searches do something on heavy-tailed weights */
    printf("best mse/rtn weight error ratio %.3f, best imatrix/rtn weighted ratio %.3f\n", gain_mse,
           gain_imp);
    assert_true(gain_mse < 0.9);
    assert_true(gain_imp < 0.9);

    /* With equal importance everywhere the weighted search is the plain one. */
    float *ones = malloc(cols * sizeof(float));
    for (size_t j = 0; j < cols; j++)
        ones[j] = 2.5f;
    curate_quant_config c = cfg_of(CURATE_QUANT_MSE, 3, 32, 0, 0);
    run(&c, w, rows, cols, NULL, qm, NULL);
    c.method = CURATE_QUANT_IMATRIX;
    curate_quant_stats s1 = {.imp = ones};
    curate_quant_out out = {.q = qi};
    assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &s1, &out, NULL, NULL), CURATE_OK);
    assert_memory_equal(qm, qi, rows * cols * sizeof(float));
    free(ones);
    free(w);
    free(x);
    free(qr);
    free(qm);
    free(qi);
    stats_free(&st);
}

/* ---- output error: BLAS against the scalar reference ------------------------------ */

static void test_output_error_ref(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{5, 7}, {300, 50}, {64, 129}};
    for (size_t s = 0; s < 3; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1];
        float *w = make_w(rows, cols, 40 + s, 0), *x = make_x(200, cols, 50 + s, NULL);
        float *q = malloc(rows * cols * sizeof(float));
        stats st;
        stats_of(&st, x, 200, cols);
        curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 3, 16, 0, 0);
        double fast = run(&c, w, rows, cols, &st, q, NULL);
        double ref = curate_quant_output_error_ref(w, q, rows, cols, st.h);
        /* float products of magnitude ~|dW||H||dW| summed in double: 1e-4 */
        if (!(fabs(fast - ref) <= 1e-4 * ref))
            fail_msg("%zux%zu: BLAS %.9g, reference %.9g", rows, cols, fast, ref);
        free(w);
        free(x);
        free(q);
        stats_free(&st);
    }
}

/* ---- AWQ ---------------------------------------------------------------------------- */

static void test_awq_never_worse(void **state)
{
    (void)state;
    const size_t shapes[][3] = {{48, 64, 0}, {64, 40, 16}, {33, 100, 32}, {80, 96, 32}};
    double best_ratio = 1;
    for (size_t s = 0; s < 4; s++)
        for (unsigned bits = 3; bits <= 4; bits++)
            for (int f = 0; f < 3; f++) {
                size_t rows = shapes[s][0], cols = shapes[s][1];
                float *w = make_w(rows, cols, 60 + s, 1), *x = make_x(400, cols, 70 + s, NULL);
                float *qr = malloc(rows * cols * sizeof(float)), *qa = malloc(rows * cols * sizeof(float));
                size_t ng = curate_quant_n_groups(cols, shapes[s][2]);
                float *sc = malloc(rows * ng * sizeof(float)), *mn = malloc(rows * ng * sizeof(float));
                float *ins = malloc(cols * sizeof(float));
                uint8_t *codes = malloc(rows * cols);
                stats st;
                stats_of(&st, x, 400, cols);
                curate_quant_config c = cfg_of(CURATE_QUANT_RTN, bits, shapes[s][2], f == 2, f == 1);
                double er = run(&c, w, rows, cols, &st, qr, NULL);
                c.method = CURATE_QUANT_AWQ;
                curate_quant_out out = {.q = qa, .scales = sc, .mins = mn, .codes = codes,
                                        .in_scale = ins};
                curate_quant_report rep;
                assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, &rep, NULL),
                                 CURATE_OK);
                double ea;
                assert_int_equal(curate_quant_output_error(w, qa, rows, cols, st.h, &ea, NULL),
                                 CURATE_OK);
                /* alpha = 0 reproduces rtn exactly and is a candidate */
                if (!(ea <= er))
                    fail_msg("%zux%zu G%zu %u bits fmt %d: awq %.6g > rtn %.6g", rows, cols,
                             shapes[s][2], bits, f, ea, er);
                best_ratio = fmin(best_ratio, ea / er);
                assert_true(rep.awq_alpha >= 0.0f && rep.awq_alpha <= 1.0f);
                for (size_t j = 0; j < cols; j++)
                    assert_true(ins[j] > 0.0f && isfinite(ins[j]));
                check_decode(&c, &out, rows, cols);

                /* a one-point grid without clipping is rtn itself */
                c.awq_grid = 1;
                c.awq_clip_grid = 0;
                assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, &rep, NULL),
                                 CURATE_OK);
                assert_memory_equal(qa, qr, rows * cols * sizeof(float));
                free(w);
                free(x);
                free(qr);
                free(qa);
                free(sc);
                free(mn);
                free(ins);
                free(codes);
                stats_free(&st);
            }
    printf("best awq/rtn output error ratio %.3f\n", best_ratio);
    assert_true(best_ratio < 0.95); /* the search does find something */
}

/* The BLAS path of AWQ (products for every objective) against loops in double. */
static void test_awq_vs_ref(void **state)
{
    (void)state;
    const size_t rows = 24, cols = 72;
    float *w = make_w(rows, cols, 150, 1), *x = make_x(300, cols, 151, NULL);
    float *qf = malloc(rows * cols * sizeof(float)), *qref = malloc(rows * cols * sizeof(float));
    stats st;
    stats_of(&st, x, 300, cols);
    struct { unsigned bits; size_t g; int asym; unsigned clip; } cases[] = {
        {3, 0, 0, 10}, {4, 16, 0, 10}, {3, 32, 1, 10}, {4, 0, 1, 4}, {2, 16, 0, 0},
    };
    int any_clipped = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        curate_quant_config c = cfg_of(CURATE_QUANT_AWQ, cases[k].bits, cases[k].g, cases[k].asym, 0);
        c.awq_clip_grid = cases[k].clip;
        curate_quant_report rep;
        double ef = run(&c, w, rows, cols, &st, qf, &rep);
        float alpha;
        int clipped;
        assert_int_equal(curate_quant_awq_ref(&c, w, rows, cols, st.absmean, st.h, qref, &alpha,
                                              &clipped), CURATE_OK);
        double eref = curate_quant_output_error_ref(w, qref, rows, cols, st.h);
        /* values whose code differs (the scales s, float here and double
         * there, shift every value by an ulp or so: not a difference) */
        size_t diff = 0;
        for (size_t i = 0; i < rows * cols; i++)
            diff += fabsf(qf[i] - qref[i]) > 1e-5f * fmaxf(fabsf(qf[i]), fabsf(qref[i]));
        printf("case %zu: alpha %.3f/%.3f clipped %d/%d, %zu of %zu values differ, error %.6g vs "
               "reference %.6g\n", k, rep.awq_alpha, alpha, rep.awq_clipped, clipped, diff,
               rows * cols, ef, eref);
        /* the same choices; scales computed in float vs double may move a
         * value across a rounding boundary now and then: 1% */
        assert_true(rep.awq_alpha == alpha);
        assert_int_equal(rep.awq_clipped, clipped);
        assert_true(diff <= rows * cols / 100);
        assert_true(fabs(ef - eref) <= 0.01 * eref);
        any_clipped |= clipped;
    }
    assert_true(any_clipped); /* the clipping path was exercised */
    free(w);
    free(x);
    free(qf);
    free(qref);
    stats_free(&st);
}

/* ---- GPTQ ---------------------------------------------------------------------------- */

static void test_gptq_beats_rtn(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{64, 96}, {96, 64}, {40, 200}};
    const size_t groups[] = {0, 32};
    printf("%-8s %4s %4s %3s %4s %12s %12s %6s\n", "shape", "bits", "G", "ao", "fmt", "rtn", "gptq",
           "ratio");
    for (size_t s = 0; s < 3; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1];
        float *w = make_w(rows, cols, 80 + s, 0), *x = make_x(4 * cols, cols, 90 + s, NULL);
        float *qr = malloc(rows * cols * sizeof(float)), *qg = malloc(rows * cols * sizeof(float));
        stats st;
        stats_of(&st, x, 4 * cols, cols);
        for (unsigned bits = 3; bits <= 4; bits++)
            for (size_t gi = 0; gi < 2; gi++)
                for (int ao = 0; ao <= 1; ao++)
                    for (int f = 0; f < 3; f++) {
                        curate_quant_config c = cfg_of(CURATE_QUANT_RTN, bits, groups[gi], f == 2, f == 1);
                        double er = run(&c, w, rows, cols, &st, qr, NULL);
                        c.method = CURATE_QUANT_GPTQ;
                        c.act_order = ao;
                        curate_quant_report rep;
                        double eg = run(&c, w, rows, cols, &st, qg, &rep);
                        printf("%3zux%-4zu %4u %4zu %3d %4s %12.5g %12.5g %6.3f\n", rows, cols, bits,
                               groups[gi], ao, f == 2 ? "asym" : f ? "rest" : "sym", er, eg, eg / er);
                        if (!(eg < er))
                            fail_msg("gptq %.6g not below rtn %.6g", eg, er);
                        assert_true(rep.gptq_damp == c.damp);
                        assert_int_equal(rep.dead_cols, 0);
                    }
        free(w);
        free(x);
        free(qr);
        free(qg);
        stats_free(&st);
    }
}

/* The lazy-batch BLAS path against the unbatched double-precision reference. */
static void test_gptq_vs_ref(void **state)
{
    (void)state;
    const size_t rows = 40, cols = 80;
    float *w = make_w(rows, cols, 100, 1), *x = make_x(300, cols, 101, NULL);
    float *qf = malloc(rows * cols * sizeof(float)), *qref = malloc(rows * cols * sizeof(float));
    uint8_t *cf = malloc(rows * cols), *cref = malloc(rows * cols);
    stats st;
    stats_of(&st, x, 300, cols);
    struct { size_t g, b; int ao, asym, clip; } cases[] = {
        {16, 32, 0, 0, 0}, /* 5 blocks of 32 (aligned to groups), dynamic groups */
        {16, 24, 0, 1, 0}, /* block 24 rounds down to 16 */
        {0, 32, 1, 0, 0},  /* act-order, per row */
        {32, 32, 1, 0, 0}, /* act-order, static groups, 80 = 2 x 32 + 16 */
        {20, 128, 0, 0, 1},/* one block, groups by the weight-MSE search */
        {0, 7, 0, 1, 0},   /* odd block size */
        {16, SIZE_MAX, 0, 0, 0}, /* a block size beyond the width: one block */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        curate_quant_config c = cfg_of(CURATE_QUANT_GPTQ, 3, cases[k].g, cases[k].asym, 0);
        c.block_size = cases[k].b;
        c.act_order = cases[k].ao;
        c.gptq_clip = cases[k].clip;
        curate_quant_out out = {.q = qf, .codes = cf};
        assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, NULL, NULL), CURATE_OK);
        assert_int_equal(curate_quant_gptq_ref(&c, w, rows, cols, st.h, qref, cref), CURATE_OK);
        size_t diff = 0;
        for (size_t i = 0; i < rows * cols; i++)
            diff += cf[i] != cref[i];
        double ef, eref;
        assert_int_equal(curate_quant_output_error(w, qf, rows, cols, st.h, &ef, NULL), CURATE_OK);
        assert_int_equal(curate_quant_output_error(w, qref, rows, cols, st.h, &eref, NULL), CURATE_OK);
        printf("case %zu: %zu of %zu codes differ, error %.6g vs reference %.6g\n", k, diff,
               rows * cols, ef, eref);
        /* float vs double rounding flips a value sitting on a rounding
         * boundary now and then, and the flip propagates a little; 1% of
         * codes and 1% of the output error is the tolerance. */
        assert_true(diff <= rows * cols / 100);
        assert_true(fabs(ef - eref) <= 0.01 * eref);
    }
    free(w);
    free(x);
    free(qf);
    free(qref);
    free(cf);
    free(cref);
    stats_free(&st);
}

/* act_order + groups: static groups from the original weights, i.e. rtn's scales. */
static void test_gptq_static_groups(void **state)
{
    (void)state;
    const size_t rows = 20, cols = 96, ng = 3;
    float *w = make_w(rows, cols, 110, 0), *x = make_x(300, cols, 111, NULL);
    float *q = malloc(rows * cols * sizeof(float));
    float sr[20 * 3], mr[20 * 3], sg[20 * 3], mg[20 * 3];
    uint8_t *codes = malloc(rows * cols);
    stats st;
    stats_of(&st, x, 300, cols);
    for (int asym = 0; asym <= 1; asym++) {
        curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 4, 32, asym, 0);
        curate_quant_out out = {.q = q, .scales = sr, .mins = mr};
        assert_int_equal(curate_quant_matrix(&c, w, rows, cols, NULL, &out, NULL, NULL), CURATE_OK);
        c.method = CURATE_QUANT_GPTQ;
        c.act_order = 1;
        out = (curate_quant_out){.q = q, .scales = sg, .mins = mg, .codes = codes};
        assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, NULL, NULL), CURATE_OK);
        assert_memory_equal(sr, sg, sizeof sr);
        assert_memory_equal(mr, mg, sizeof mr);
        check_decode(&c, &out, rows, cols);
        /* without act_order, group 0 starts before any update (same scale),
         * later groups see the updated weights (some scale differs) */
        c.act_order = 0;
        assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, NULL, NULL), CURATE_OK);
        size_t later_diff = 0;
        for (size_t r = 0; r < rows; r++) {
            assert_true(sg[r * ng] == sr[r * ng]);
            later_diff += sg[r * ng + 1] != sr[r * ng + 1];
        }
        assert_true(later_diff > 0);
        check_decode(&c, &out, rows, cols);
    }
    free(w);
    free(x);
    free(q);
    free(codes);
    stats_free(&st);
}

/* Channels never active in calibration: H_jj = 0.  Quantized, not zeroed. */
static void test_gptq_dead_columns(void **state)
{
    (void)state;
    const size_t rows = 16, cols = 48;
    const size_t dead[] = {3, 17, 40, SIZE_MAX};
    float *w = make_w(rows, cols, 120, 0), *x = make_x(200, cols, 121, dead);
    float *q = malloc(rows * cols * sizeof(float)), sc[16];
    stats st;
    stats_of(&st, x, 200, cols);
    for (int ao = 0; ao <= 1; ao++) {
        curate_quant_config c = cfg_of(CURATE_QUANT_GPTQ, 4, 0, 0, 0);
        c.act_order = ao;
        curate_quant_out out = {.q = q, .scales = sc};
        curate_quant_report rep;
        assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, &rep, NULL), CURATE_OK);
        assert_int_equal(rep.dead_cols, 3);
        assert_true(curate_quant_all_finite(q, rows * cols));
        /* a dead column gets no error feedback (its row of H^-1 is
         * decoupled): it is rounded from its original value, within one step */
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; dead[i] != SIZE_MAX; i++) {
                size_t j = dead[i];
                assert_true(fabsf(q[r * cols + j] - w[r * cols + j]) <= fabsf(sc[r]) * 1.0001f);
            }
    }
    /* An empty Hessian (no calibration data): every column dead, H = I,
     * no feedback at all, so GPTQ is rtn exactly. */
    memset(st.h, 0, cols * cols * sizeof(float));
    float *qr = malloc(rows * cols * sizeof(float));
    curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 3, 16, 1, 0);
    run(&c, w, rows, cols, NULL, qr, NULL);
    c.method = CURATE_QUANT_GPTQ;
    curate_quant_report rep;
    run(&c, w, rows, cols, &st, q, &rep);
    assert_int_equal(rep.dead_cols, cols);
    assert_memory_equal(q, qr, rows * cols * sizeof(float));
    free(qr);
    free(w);
    free(x);
    free(q);
    stats_free(&st);
}

/* A Hessian that is not positive definite: damping retries, then failure. */
static void test_gptq_damping_retry(void **state)
{
    (void)state;
    const float w[6] = {0.1f, -0.2f, 0.3f, 0.05f, -0.4f, 0.25f};
    float q[6];
    /* eigenvalues 1 +- 5: needs a shift above 4 = 400 x 0.01 x mean diagonal */
    float h[4] = {1, 5, 5, 1};
    curate_quant_stats s = {.hessian = h};
    curate_quant_config c = cfg_of(CURATE_QUANT_GPTQ, 4, 0, 0, 0);
    curate_quant_out out = {.q = q};
    curate_quant_report rep;
    curate_error err;
    assert_int_equal(curate_quant_matrix(&c, w, 3, 2, &s, &out, &rep, &err), CURATE_OK);
    assert_true(fabs(rep.gptq_damp - 10.0) < 1e-5); /* 0.01f x 10^3 */
    assert_true(curate_quant_all_finite(q, 6));
    h[1] = h[2] = 500;
    assert_int_equal(curate_quant_matrix(&c, w, 3, 2, &s, &out, &rep, &err), CURATE_ERR_MODEL);
    assert_non_null(strstr(err.message, "positive definite"));
}

/* ---- arguments ------------------------------------------------------------------------ */

static void test_errors(void **state)
{
    (void)state;
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8}, q[8], h[16] = {0}, imp[4] = {1, 1, 1, 1};
    curate_quant_out out = {.q = q};
    curate_error err;
    curate_quant_config c = cfg_of(CURATE_QUANT_RTN, 1, 0, 0, 0);
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, NULL, &out, NULL, &err), CURATE_ERR_INVALID);
    c.bits = 9;
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, NULL, &out, NULL, &err), CURATE_ERR_INVALID);
    c.bits = 4;
    c.clip_grid = 0;
    assert_int_equal(curate_quant_config_check(&c, &err), CURATE_ERR_INVALID);
    c.clip_grid = 5;
    c.clip_min = 0;
    assert_int_equal(curate_quant_config_check(&c, &err), CURATE_ERR_INVALID);
    c = cfg_of(CURATE_QUANT_RTN, 4, 0, 0, 0);
    assert_int_equal(curate_quant_matrix(&c, w, 0, 4, NULL, &out, NULL, &err), CURATE_ERR_INVALID);
    curate_quant_out none = {0};
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, NULL, &none, NULL, &err), CURATE_ERR_INVALID);
    c.method = CURATE_QUANT_IMATRIX;
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, NULL, &out, NULL, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "imatrix"));
    c.method = CURATE_QUANT_GPTQ;
    curate_quant_stats s = {.imp = imp};
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, &s, &out, NULL, &err), CURATE_ERR_INVALID);
    c.method = CURATE_QUANT_AWQ;
    s.hessian = h;
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, &s, &out, NULL, &err), CURATE_ERR_INVALID);
    c.method = CURATE_QUANT_GPTQ;
    h[5] = NAN;
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, &s, &out, NULL, &err), CURATE_ERR_RANGE);
    c.method = CURATE_QUANT_RTN;
    w[3] = INFINITY;
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, NULL, &out, NULL, &err), CURATE_ERR_RANGE);
    imp[2] = -1;
    w[3] = 4;
    c.method = CURATE_QUANT_IMATRIX;
    assert_int_equal(curate_quant_matrix(&c, w, 2, 4, &s, &out, NULL, &err), CURATE_ERR_RANGE);

    curate_quant_method m;
    for (int i = 0; i < CURATE_QUANT_METHOD_COUNT_; i++) {
        assert_int_equal(curate_quant_method_parse(curate_quant_method_name((curate_quant_method)i),
                                                   &m, NULL), CURATE_OK);
        assert_int_equal(m, i);
    }
    assert_int_equal(curate_quant_method_parse("GPTQ", &m, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_quant_method_parse(NULL, &m, &err), CURATE_ERR_INVALID);
    assert_string_equal(curate_quant_method_name((curate_quant_method)99), "?");
}

/* ---- the tinymix FFN shapes: errors and time ------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_tinymix_shapes(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{704, 256}, {256, 704}};
    for (size_t s = 0; s < 2; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1];
        float *w = make_w(rows, cols, 130 + s, 1), *x = make_x(1024, cols, 140 + s, NULL);
        float *q = malloc(rows * cols * sizeof(float));
        stats st;
        stats_of(&st, x, 1024, cols);
        for (size_t gi = 0; gi < 2; gi++) {
            size_t G = gi ? 32 : 0;
            double e[CURATE_QUANT_METHOD_COUNT_], t[CURATE_QUANT_METHOD_COUNT_];
            for (int m = 0; m < CURATE_QUANT_METHOD_COUNT_; m++) {
                curate_quant_config c = cfg_of((curate_quant_method)m, 4, G, 0, 0);
                double t0 = now();
                curate_quant_out out = {.q = q};
                assert_int_equal(curate_quant_matrix(&c, w, rows, cols, &st.qs, &out, NULL, NULL),
                                 CURATE_OK);
                t[m] = now() - t0;
                assert_int_equal(curate_quant_output_error(w, q, rows, cols, st.h, &e[m], NULL),
                                 CURATE_OK);
            }
            printf("%zux%zu 4-bit G%-2zu output error / time:", rows, cols, G);
            for (int m = 0; m < CURATE_QUANT_METHOD_COUNT_; m++)
                printf("  %s %.4g (%.3fs)", curate_quant_method_name((curate_quant_method)m), e[m],
                       t[m]);
            printf("\n");
            assert_true(e[CURATE_QUANT_GPTQ] < e[CURATE_QUANT_RTN]);
            assert_true(e[CURATE_QUANT_AWQ] <= e[CURATE_QUANT_RTN]);
        }
        free(w);
        free(x);
        free(q);
        stats_free(&st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_sym_full),
        cmocka_unit_test(test_hand_sym_restricted),
        cmocka_unit_test(test_hand_asym),
        cmocka_unit_test(test_hand_matrix),
        cmocka_unit_test(test_short_group),
        cmocka_unit_test(test_zero_groups_all_methods),
        cmocka_unit_test(test_constant_group),
        cmocka_unit_test(test_rtn_bounds),
        cmocka_unit_test(test_mse_imatrix_never_worse),
        cmocka_unit_test(test_output_error_ref),
        cmocka_unit_test(test_awq_never_worse),
        cmocka_unit_test(test_awq_vs_ref),
        cmocka_unit_test(test_gptq_beats_rtn),
        cmocka_unit_test(test_gptq_vs_ref),
        cmocka_unit_test(test_gptq_static_groups),
        cmocka_unit_test(test_gptq_dead_columns),
        cmocka_unit_test(test_gptq_damping_retry),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tinymix_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
