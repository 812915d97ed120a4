/*
 * test_ggml_types.c - the ggml weight types (curate/gguf.h, ggml_types.h).
 *
 * The float formats are checked exhaustively against references written
 * here from the IEEE definitions with ldexp() (not bit shuffling), so the
 * library's bit manipulation is compared with arithmetic.  Rounding from
 * F32 is checked against "the nearest representable value, ties to even"
 * computed in double, and where the compiler has _Float16, against it too.
 * The block types are checked on hand-built blocks (the documented
 * layouts) and by round-trip error bounds derived from each format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/gguf.h"
#include "ggml_types.h"

/* ---- references ---------------------------------------------------------- */

/* The value of a binary16 bit pattern, from the IEEE 754 definition. */
static double ref_half(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -24);           /* 0.m * 2^-14 */
    else
        v = ldexp(1024.0 + m, e - 25);       /* 1.m * 2^(e-15) */
    return s ? -v : v;
}

/* The value of a bfloat16 bit pattern: 8-bit exponent, 7-bit mantissa. */
static double ref_bf16(uint16_t h)
{
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 255)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -133);          /* 0.m * 2^-126 */
    else
        v = ldexp(128.0 + m, e - 134);       /* 1.m * 2^(e-127) */
    return s ? -v : v;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Deterministic test values (splitmix64). */
static uint64_t rnd_state = 12345;
static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rnd_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rnd() >> 11) / 9007199254740992.0);
}

/*
 * Check that h is the correctly rounded (nearest, ties to even) half or
 * bf16 of x, given the format's value function and the largest finite
 * pattern.  The neighbours of h toward and away from zero must not be
 * closer; the comparison is exact in double.
 */
static void check_nearest(float x, uint16_t h, double (*value)(uint16_t), uint16_t max_finite,
                          const char *what)
{
    double xv = x;
    double hv = value(h);
    uint16_t sign = (uint16_t)(h & 0x8000u), mag = (uint16_t)(h & 0x7fffu);
    if (isinf(hv)) {
        /* overflow: x must be at least halfway past the largest finite value */
        double maxv = value(max_finite);
        double next = 2 * maxv - value((uint16_t)(max_finite - 1)); /* one ulp past max */
        if (!(fabs(xv) >= (maxv + next) / 2)) {
            fprintf(stderr, "%s: %.9g rounded to inf\n", what, xv);
            fail();
        }
        return;
    }
    if (x != 0.0f && (signbit(x) != 0) != (sign != 0)) {
        fprintf(stderr, "%s: %.9g got the wrong sign\n", what, xv);
        fail();
    }
    double err = fabs(xv - hv);
    if (mag > 0) {
        double lower = value((uint16_t)(sign | (mag - 1)));
        double e2 = fabs(xv - lower);
        if (e2 < err || (e2 == err && (mag & 1))) {
            fprintf(stderr, "%s: %.9g -> 0x%04x, but 0x%04x is nearer or even\n", what, xv, h,
                    sign | (mag - 1));
            fail();
        }
    }
    if (mag < max_finite) {
        double upper = value((uint16_t)(sign | (mag + 1)));
        double e2 = fabs(xv - upper);
        if (e2 < err || (e2 == err && (mag & 1))) {
            fprintf(stderr, "%s: %.9g -> 0x%04x, but 0x%04x is nearer or even\n", what, xv, h,
                    sign | (mag + 1));
            fail();
        }
    }
}

/* ---- F16 ------------------------------------------------------------------- */

static void test_f16_to_f32_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = curate_f16_to_f32((uint16_t)h);
        double want = ref_half((uint16_t)h);
        if (isnan(want)) {
            assert_true(isnan(got));
            assert_int_equal(bits(got) >> 31, h >> 15); /* sign kept */
        } else {
            if ((double)got != want || !signbit(got) != !signbit(want)) {
                fprintf(stderr, "f16 0x%04x: got %.9g want %.9g\n", h, got, want);
                fail();
            }
        }
    }
}

static void test_f16_roundtrip_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = curate_f32_to_f16(curate_f16_to_f32((uint16_t)h));
        if (isnan(ref_half((uint16_t)h)))
            assert_true(isnan(ref_half(back)));
        else
            assert_int_equal(back, h);
    }
}

static void test_f32_to_f16_rounding(void **state)
{
    (void)state;
    /* All kinds of magnitudes: subnormal halves, normals, near overflow,
     * exact halfway points (odd and even), and random bit patterns. */
    for (int i = 0; i < 400000; i++) {
        float x;
        switch (i % 5) {
        case 0: x = rnd_uniform(-1e-4f, 1e-4f); break;            /* subnormal range */
        case 1: x = rnd_uniform(-70000.0f, 70000.0f); break;      /* up to overflow */
        case 2: x = from_bits((uint32_t)rnd()); break;            /* anything */
        case 3: {
            /* exactly halfway between two adjacent halves */
            uint16_t h = (uint16_t)(rnd() % 0x7bff);
            x = (float)((ref_half(h) + ref_half((uint16_t)(h + 1))) / 2);
            if (rnd() & 1)
                x = -x;
            break;
        }
        default: x = rnd_uniform(-2.0f, 2.0f); break;
        }
        uint16_t h = curate_f32_to_f16(x);
        if (isnan(x)) {
            assert_true(isnan(ref_half(h)));
            continue;
        }
        check_nearest(x, h, ref_half, 0x7bff, "f32->f16");
#ifdef __FLT16_MAX__
        _Float16 c = (_Float16)x;
        uint16_t cb;
        memcpy(&cb, &c, 2);
        if (cb != h) {
            fprintf(stderr, "f32->f16 %.9g: 0x%04x, _Float16 gives 0x%04x\n", x, h, cb);
            fail();
        }
#endif
    }
    /* named edges */
    assert_int_equal(curate_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(curate_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(curate_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(curate_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(curate_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);   /* smallest subnormal */
    assert_int_equal(curate_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);   /* tie to even zero */
    assert_int_equal(curate_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    assert_int_equal(curate_f32_to_f16(-0.0f), 0x8000);
    assert_true(isnan(ref_half(curate_f32_to_f16(NAN))));
}

/* ---- BF16 ---------------------------------------------------------------------- */

static void test_bf16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = curate_bf16_to_f32((uint16_t)h);
        double want = ref_bf16((uint16_t)h);
        if (isnan(want)) {
            assert_true(isnan(got));
        } else {
            if ((double)got != want || !signbit(got) != !signbit(want)) {
                fprintf(stderr, "bf16 0x%04x: got %.9g want %.9g\n", h, got, want);
                fail();
            }
            assert_int_equal(curate_f32_to_bf16(got), h); /* exact values stay */
        }
    }
}

static void test_f32_to_bf16_rounding(void **state)
{
    (void)state;
    for (int i = 0; i < 400000; i++) {
        float x = (i & 1) ? from_bits((uint32_t)rnd()) : rnd_uniform(-3.0f, 3.0f);
        if (i % 7 == 0) /* an exact tie: low 16 bits 0x8000 */
            x = from_bits((bits(x) & 0xffff0000u) | 0x8000u);
        uint16_t h = curate_f32_to_bf16(x);
        if (isnan(x)) {
            assert_true(isnan(ref_bf16(h)));
            continue;
        }
        check_nearest(x, h, ref_bf16, 0x7f7f, "f32->bf16");
    }
}

/* ---- the table ------------------------------------------------------------------- */

static void test_type_table(void **state)
{
    (void)state;
    static const struct {
        uint32_t type;
        const char *name;
        uint32_t block, size;
    } want[] = {
        {CURATE_GGML_TYPE_F32, "f32", 1, 4},    {CURATE_GGML_TYPE_F16, "f16", 1, 2},
        {CURATE_GGML_TYPE_BF16, "bf16", 1, 2},  {CURATE_GGML_TYPE_Q8_0, "q8_0", 32, 34},
        {CURATE_GGML_TYPE_Q4_0, "q4_0", 32, 18}, {CURATE_GGML_TYPE_Q4_1, "q4_1", 32, 20},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(curate_ggml_type_known(want[i].type));
        assert_string_equal(curate_ggml_type_name(want[i].type), want[i].name);
        assert_int_equal(curate_ggml_block_size(want[i].type), want[i].block);
        assert_int_equal(curate_ggml_type_size(want[i].type), want[i].size);
        assert_true(curate_ggml_type_convertible(want[i].type));
        uint64_t b = 0;
        assert_int_equal(curate_ggml_row_size(want[i].type, 64, &b), CURATE_OK);
        assert_int_equal(b, 64 / want[i].block * want[i].size);
    }
    /* ggml types known by size only: sizes from ggml's block layouts
     * (QK_K = 256: q6_K = 128 low + 64 high nibble bytes + 16 scales + f16 d) */
    static const struct {
        uint32_t type;
        const char *name;
        uint32_t block, size;
    } storage[] = {
        {6, "q5_0", 32, 2 + 4 + 16},        {12, "q4_K", 256, 4 + 12 + 128},
        {14, "q6_K", 256, 128 + 64 + 16 + 2}, {15, "q8_K", 256, 4 + 256 + 32},
        {20, "iq4_nl", 32, 2 + 16},         {26, "i32", 1, 4},
        {28, "f64", 1, 8},                  {39, "mxfp4", 32, 1 + 16},
    };
    for (size_t i = 0; i < sizeof storage / sizeof storage[0]; i++) {
        assert_true(curate_ggml_type_known(storage[i].type));
        assert_string_equal(curate_ggml_type_name(storage[i].type), storage[i].name);
        assert_int_equal(curate_ggml_block_size(storage[i].type), storage[i].block);
        assert_int_equal(curate_ggml_type_size(storage[i].type), storage[i].size);
        assert_false(curate_ggml_type_convertible(storage[i].type));
        float f[256];
        unsigned char raw[512] = {0};
        assert_int_equal(curate_ggml_to_f32(storage[i].type, raw, f, 256), CURATE_ERR_UNSUPPORTED);
        assert_int_equal(curate_ggml_from_f32(storage[i].type, f, raw, 256),
                         CURATE_ERR_UNSUPPORTED);
    }
    uint32_t unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 99, 0xffffffffu};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_false(curate_ggml_type_known(unknown[i]));
        assert_null(curate_ggml_type_name(unknown[i]));
        assert_int_equal(curate_ggml_block_size(unknown[i]), 0);
        assert_int_equal(curate_ggml_type_size(unknown[i]), 0);
        float f[32];
        assert_int_equal(curate_ggml_to_f32(unknown[i], f, f, 32), CURATE_ERR_INVALID);
    }
    uint64_t b;
    assert_int_equal(curate_ggml_row_size(CURATE_GGML_TYPE_Q8_0, 33, &b), CURATE_ERR_INVALID);
    assert_int_equal(curate_ggml_row_size(CURATE_GGML_TYPE_F32, UINT64_MAX / 2, &b),
                     CURATE_ERR_RANGE);
    assert_int_equal(curate_ggml_row_size(CURATE_GGML_TYPE_Q8_0, (UINT64_MAX / 32) * 32, &b),
                     CURATE_ERR_RANGE);
    float src[48] = {0}, dst[48];
    unsigned char q[64];
    assert_int_equal(curate_ggml_to_f32(CURATE_GGML_TYPE_Q8_0, q, dst, 48), CURATE_ERR_INVALID);
    assert_int_equal(curate_ggml_from_f32(CURATE_GGML_TYPE_Q4_0, src, q, 48), CURATE_ERR_INVALID);
}

/* ---- Q8_0 ------------------------------------------------------------------------------ */

static void test_q8_0_layout(void **state)
{
    (void)state;
    /* Two blocks built by hand from the documented layout: f16 d, 32 x int8. */
    unsigned char raw[68];
    raw[0] = 0x00;
    raw[1] = 0x38; /* f16 0x3800 = 0.5 */
    for (int j = 0; j < 32; j++)
        raw[2 + j] = (unsigned char)(int8_t)(j - 16);
    raw[34] = 0x00;
    raw[35] = 0xc0; /* f16 0xc000 = -2 */
    for (int j = 0; j < 32; j++)
        raw[36 + j] = (unsigned char)(int8_t)(j % 2 ? 127 : -128);
    float out[64];
    assert_int_equal(curate_ggml_to_f32(CURATE_GGML_TYPE_Q8_0, raw, out, 64), CURATE_OK);
    for (int j = 0; j < 32; j++) {
        assert_true(out[j] == (float)(j - 16) * 0.5f);
        assert_true(out[32 + j] == (j % 2 ? -254.0f : 256.0f));
    }
}

static void test_q8_0_quantize(void **state)
{
    (void)state;
    enum { NB = 2000 };
    float *x = malloc(NB * 32 * sizeof *x), *y = malloc(NB * 32 * sizeof *y);
    curate_block_q8_0 *q = malloc(NB * sizeof *q);
    assert_non_null(x);
    for (int b = 0; b < NB; b++) {
        float range = ldexpf(1.0f, (int)(rnd() % 30) - 15);
        for (int j = 0; j < 32; j++)
            x[b * 32 + j] = rnd_uniform(-range, range);
    }
    memset(x + 7 * 32, 0, 32 * sizeof *x);     /* an all-zero block */
    for (int j = 0; j < 32; j++)               /* one nonzero value */
        x[9 * 32 + j] = j == 5 ? -3.0f : 0.0f;
    assert_int_equal(curate_ggml_from_f32(CURATE_GGML_TYPE_Q8_0, x, q, NB * 32), CURATE_OK);
    assert_int_equal(curate_ggml_to_f32(CURATE_GGML_TYPE_Q8_0, q, y, NB * 32), CURATE_OK);
    for (int b = 0; b < NB; b++) {
        const float *xb = x + b * 32;
        double amax = 0;
        int imax = 0;
        for (int j = 0; j < 32; j++)
            if (fabs(xb[j]) > amax) {
                amax = fabs(xb[j]);
                imax = j;
            }
        double d = amax / 127.0;          /* the scale before f16 rounding */
        double d16 = ref_half(q[b].d);    /* the stored scale */
        assert_true(fabs(d16 - d) <= d * ldexp(1.0, -11) + ldexp(1.0, -25));
        if (amax == 0) {
            assert_int_equal(q[b].d, 0);
        } else {
            assert_int_equal(abs(q[b].qs[imax]), 127); /* the extreme uses the full range */
        }
        for (int j = 0; j < 32; j++) {
            assert_false(isnan(y[b * 32 + j]));
            assert_true(q[b].qs[j] >= -127);
            /* rounding to the f32 scale costs d/2, the f16 scale |q| * |d16 - d| */
            double bound = d / 2 * (1 + 1e-6) + 127 * fabs(d16 - d) + 1e-30;
            if (fabs(xb[j] - y[b * 32 + j]) > bound) {
                fprintf(stderr, "q8_0 block %d elem %d: %.9g -> %.9g (bound %.3g)\n", b, j,
                        xb[j], y[b * 32 + j], bound);
                fail();
            }
        }
    }
    for (int j = 0; j < 32; j++) {
        assert_int_equal(q[7].qs[j], 0);
        assert_true(y[7 * 32 + j] == 0.0f);
    }
    assert_int_equal(q[9].qs[5], -127);
    free(x);
    free(y);
    free(q);
}

static void test_q8_0_nonfinite(void **state)
{
    (void)state;
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)j;
    x[3] = NAN;
    curate_block_q8_0 q;
    assert_int_equal(curate_ggml_from_f32(CURATE_GGML_TYPE_Q8_0, x, &q, 32), CURATE_OK);
    assert_int_equal(q.qs[3], 0); /* NaN becomes 0, not undefined behaviour */
    assert_int_equal(q.qs[31], 127);
    x[3] = INFINITY;
    assert_int_equal(curate_ggml_from_f32(CURATE_GGML_TYPE_Q8_0, x, &q, 32), CURATE_OK);
}

/* ---- Q4_0 / Q4_1 ------------------------------------------------------------------------ */

static void test_q4_layout(void **state)
{
    (void)state;
    /* Q4_0: low nibble of byte j is element j, high nibble element j+16. */
    unsigned char b0[18] = {0x00, 0x3c}; /* d = 1.0 */
    for (int j = 0; j < 16; j++)
        b0[2 + j] = (unsigned char)(j | ((15 - j) << 4));
    float y[32];
    assert_int_equal(curate_ggml_to_f32(CURATE_GGML_TYPE_Q4_0, b0, y, 32), CURATE_OK);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == (float)(j - 8));
        assert_true(y[j + 16] == (float)(15 - j - 8));
    }
    /* Q4_1: d = 0.5, m = -1; x = q*d + m. */
    unsigned char b1[20] = {0x00, 0x38, 0x00, 0xbc};
    for (int j = 0; j < 16; j++)
        b1[4 + j] = (unsigned char)(j | ((15 - j) << 4));
    assert_int_equal(curate_ggml_to_f32(CURATE_GGML_TYPE_Q4_1, b1, y, 32), CURATE_OK);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == (float)j * 0.5f - 1.0f);
        assert_true(y[j + 16] == (float)(15 - j) * 0.5f - 1.0f);
    }
}

static void test_q4_roundtrip(void **state)
{
    (void)state;
    enum { NB = 1000 };
    float x[NB * 32], y[NB * 32];
    static unsigned char q[NB * 20];
    for (int i = 0; i < NB * 32; i++)
        x[i] = rnd_uniform(-4.0f, 4.0f) + (i / 32 % 3 == 0 ? 2.0f : 0.0f);
    memset(x, 0, 32 * sizeof *x);
    /* Q4_0: the extreme value maps to -8 * d exactly (up to f16 d); the
     * others round to the nearest of 16 levels, except values on the far
     * side, where +8 is not representable and clamps to +7: error <= d. */
    assert_int_equal(curate_ggml_from_f32(CURATE_GGML_TYPE_Q4_0, x, q, NB * 32), CURATE_OK);
    assert_int_equal(curate_ggml_to_f32(CURATE_GGML_TYPE_Q4_0, q, y, NB * 32), CURATE_OK);
    for (int b = 0; b < NB; b++) {
        double amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmax(amax, fabs(x[b * 32 + j]));
        double d = amax / 8, d16 = fabs(ref_half((uint16_t)(q[b * 18] | (q[b * 18 + 1] << 8))));
        for (int j = 0; j < 32; j++)
            assert_true(fabs(x[b * 32 + j] - y[b * 32 + j]) <= d * (1 + 1e-6) + 8 * fabs(d16 - d));
        if (amax == 0)
            for (int j = 0; j < 32; j++)
                assert_true(y[b * 32 + j] == 0.0f);
    }
    /* Q4_1: 16 levels from min to max: error <= d/2 plus f16 effects. */
    assert_int_equal(curate_ggml_from_f32(CURATE_GGML_TYPE_Q4_1, x, q, NB * 32), CURATE_OK);
    assert_int_equal(curate_ggml_to_f32(CURATE_GGML_TYPE_Q4_1, q, y, NB * 32), CURATE_OK);
    for (int b = 0; b < NB; b++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < 32; j++) {
            lo = fmin(lo, x[b * 32 + j]);
            hi = fmax(hi, x[b * 32 + j]);
        }
        const unsigned char *blk = q + b * 20;
        double d = (hi - lo) / 15;
        double d16 = ref_half((uint16_t)(blk[0] | (blk[1] << 8)));
        double m16 = ref_half((uint16_t)(blk[2] | (blk[3] << 8)));
        double bound = d / 2 * (1 + 1e-6) + 15 * fabs(d16 - d) + fabs(m16 - lo) + 1e-7;
        for (int j = 0; j < 32; j++)
            assert_true(fabs(x[b * 32 + j] - y[b * 32 + j]) <= bound);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_to_f32_exhaustive),
        cmocka_unit_test(test_f16_roundtrip_exhaustive),
        cmocka_unit_test(test_f32_to_f16_rounding),
        cmocka_unit_test(test_bf16_exhaustive),
        cmocka_unit_test(test_f32_to_bf16_rounding),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_q8_0_layout),
        cmocka_unit_test(test_q8_0_quantize),
        cmocka_unit_test(test_q8_0_nonfinite),
        cmocka_unit_test(test_q4_layout),
        cmocka_unit_test(test_q4_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
