/*
 * ggml_types.c - the ggml weight types: table, F16/BF16 bit conversions and
 * the scalar reference (de)quantizers.
 *
 * These are the reference implementations every faster path is tested
 * against, so they favour obviously-right code over speed: integer bit
 * manipulation for the float formats (no reliance on the compiler's
 * _Float16), one block at a time for the Q types.  The quantizers follow
 * ggml's reference rounding (scale from the f32 maximum, multiply by the
 * f32 inverse scale, roundf) so that a file we quantize matches what
 * llama-quantize writes for the same weights.
 */
#include "ggml_types.h"

#include <math.h>
#include <string.h>

/* ---- scalar float formats ------------------------------------------------ */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float curate_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf or NaN: keep the payload in the top mantissa bits */
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0)
        return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0)
        return bits_f32(sign);
    /* Subnormal half: mant * 2^-24.  Shift until the implicit bit appears;
     * every half subnormal is a normal f32. */
    uint32_t e = 113; /* biased f32 exponent of 2^-14 */
    while (!(mant & 0x400u)) {
        mant <<= 1;
        e--;
    }
    return bits_f32(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

/* Round the value m * 2^-shift to an integer, ties to even (shift >= 1). */
static uint32_t shift_round_even(uint32_t m, uint32_t shift)
{
    if (shift >= 32)
        return 0;
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

uint16_t curate_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) /* NaN: keep it a (quiet) NaN, with the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    if (x >= 0x477ff000u) /* >= 65520 rounds to infinity (65504 is the largest half) */
        return (uint16_t)(sign | 0x7c00u);
    uint32_t e = x >> 23;
    if (e < 113) {
        /* Below 2^-14: a half subnormal, value = round(|f| * 2^24) units.
         * |f| * 2^24 = m * 2^(e - 126) with m the full 24-bit significand. */
        if (e == 0)
            return sign; /* f32 subnormals are far below half's 2^-25 */
        uint32_t m = (x & 0x7fffffu) | 0x800000u;
        /* A carry to 0x400 correctly becomes the smallest normal. */
        return (uint16_t)(sign | shift_round_even(m, 126 - e));
    }
    /* Normal: rebias the exponent, round the 23-bit mantissa to 10 bits.
     * A mantissa carry rolls into the exponent, which is what we want. */
    uint32_t h = ((e - 112) << 10) | ((x >> 13) & 0x3ffu);
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

float curate_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t curate_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: truncate and force quiet */
        return (uint16_t)((x >> 16) | 0x40u);
    /* Round to nearest even on the dropped 16 bits; overflow to inf is the
     * correct rounding of values above the largest bf16. */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- row converters -------------------------------------------------------- */

static uint16_t load_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void store_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xffu);
    p[1] = (unsigned char)(v >> 8);
}

static void f32_to_f32_row(const void *src, float *dst, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
}

static void f32_from_f32_row(const float *src, void *dst, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
}

void curate_ggml_f16_to_f32_row(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++)
        dst[i] = curate_f16_to_f32(load_u16(p + 2 * i));
}

static void f16_from_f32_row(const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    for (size_t i = 0; i < n; i++)
        store_u16(p + 2 * i, curate_f32_to_f16(src[i]));
}

void curate_ggml_bf16_to_f32_row(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++)
        dst[i] = curate_bf16_to_f32(load_u16(p + 2 * i));
}

static void bf16_from_f32_row(const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    for (size_t i = 0; i < n; i++)
        store_u16(p + 2 * i, curate_f32_to_bf16(src[i]));
}

void curate_ggml_q8_0_to_f32_row(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t b = 0; b < n / CURATE_QK8_0; b++) {
        curate_block_q8_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float d = curate_f16_to_f32(blk.d);
        for (int j = 0; j < CURATE_QK8_0; j++)
            dst[b * CURATE_QK8_0 + (size_t)j] = (float)blk.qs[j] * d;
    }
}

/*
 * Integer code for x * id rounded half away from zero and clamped to
 * [lo, hi].  Non-finite products (NaN inputs, or inf times a zero inverse
 * scale) become 0 rather than an undefined float-to-int conversion.
 */
static int quant_code(float v, int lo, int hi)
{
    if (!(v == v) || isinf(v))
        return 0;
    float r = roundf(v);
    if (r < (float)lo)
        return lo;
    if (r > (float)hi)
        return hi;
    return (int)r;
}

void curate_ggml_f32_to_q8_0_row(const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    for (size_t b = 0; b < n / CURATE_QK8_0; b++) {
        const float *x = src + b * CURATE_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < CURATE_QK8_0; j++) {
            float a = fabsf(x[j]);
            if (a > amax)
                amax = a;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f; /* all-zero block: d = 0, q = 0 */
        curate_block_q8_0 blk;
        blk.d = curate_f32_to_f16(d);
        for (int j = 0; j < CURATE_QK8_0; j++)
            blk.qs[j] = (int8_t)quant_code(x[j] * id, -127, 127);
        memcpy(p + b * sizeof blk, &blk, sizeof blk);
    }
}

void curate_ggml_q4_0_to_f32_row(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t b = 0; b < n / CURATE_QK4_0; b++) {
        curate_block_q4_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float d = curate_f16_to_f32(blk.d);
        float *y = dst + b * CURATE_QK4_0;
        for (int j = 0; j < CURATE_QK4_0 / 2; j++) {
            y[j] = (float)((blk.qs[j] & 0x0f) - 8) * d;
            y[j + CURATE_QK4_0 / 2] = (float)((blk.qs[j] >> 4) - 8) * d;
        }
    }
}

static int q4_0_code(float v)
{
    if (!(v == v))
        return 8;
    return quant_code(floorf(v + 8.5f), 0, 15);
}

void curate_ggml_f32_to_q4_0_row(const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    for (size_t b = 0; b < n / CURATE_QK4_0; b++) {
        const float *x = src + b * CURATE_QK4_0;
        /* The signed value of largest magnitude maps to code 0 (-8): that
         * uses the asymmetric end of the 4-bit range for the extreme. */
        float amax = 0.0f, vmax = 0.0f;
        for (int j = 0; j < CURATE_QK4_0; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                vmax = x[j];
            }
        }
        float d = vmax / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        curate_block_q4_0 blk;
        blk.d = curate_f32_to_f16(d);
        for (int j = 0; j < CURATE_QK4_0 / 2; j++) {
            /* code = trunc(x*id + 8.5), i.e. round half up around 8, max 15;
             * a NaN input gets the zero code 8 */
            int lo = q4_0_code(x[j] * id);
            int hi = q4_0_code(x[j + CURATE_QK4_0 / 2] * id);
            blk.qs[j] = (uint8_t)(lo | (hi << 4));
        }
        memcpy(p + b * sizeof blk, &blk, sizeof blk);
    }
}

void curate_ggml_q4_1_to_f32_row(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t b = 0; b < n / CURATE_QK4_1; b++) {
        curate_block_q4_1 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float d = curate_f16_to_f32(blk.d);
        float m = curate_f16_to_f32(blk.m);
        float *y = dst + b * CURATE_QK4_1;
        for (int j = 0; j < CURATE_QK4_1 / 2; j++) {
            y[j] = (float)(blk.qs[j] & 0x0f) * d + m;
            y[j + CURATE_QK4_1 / 2] = (float)(blk.qs[j] >> 4) * d + m;
        }
    }
}

void curate_ggml_f32_to_q4_1_row(const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    for (size_t b = 0; b < n / CURATE_QK4_1; b++) {
        const float *x = src + b * CURATE_QK4_1;
        float vmin = INFINITY, vmax = -INFINITY;
        for (int j = 0; j < CURATE_QK4_1; j++) {
            if (x[j] < vmin)
                vmin = x[j];
            if (x[j] > vmax)
                vmax = x[j];
        }
        if (!isfinite(vmin) || !isfinite(vmax)) { /* all NaN or an infinity */
            vmin = isfinite(vmin) ? vmin : 0.0f;
            vmax = isfinite(vmax) ? vmax : vmin;
        }
        float d = (vmax - vmin) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        curate_block_q4_1 blk;
        blk.d = curate_f32_to_f16(d);
        blk.m = curate_f32_to_f16(vmin);
        for (int j = 0; j < CURATE_QK4_1 / 2; j++) {
            /* code = trunc((x - min)*id + 0.5), max 15 */
            int lo = quant_code(floorf((x[j] - vmin) * id + 0.5f), 0, 15);
            int hi = quant_code(floorf((x[j + CURATE_QK4_1 / 2] - vmin) * id + 0.5f), 0, 15);
            blk.qs[j] = (uint8_t)(lo | (hi << 4));
        }
        memcpy(p + b * sizeof blk, &blk, sizeof blk);
    }
}

/* ---- the table --------------------------------------------------------------- */

static const curate_ggml_traits traits_f32 = {"f32", 1, 4, f32_to_f32_row, f32_from_f32_row};
static const curate_ggml_traits traits_f16 = {"f16", 1, 2, curate_ggml_f16_to_f32_row,
                                              f16_from_f32_row};
static const curate_ggml_traits traits_bf16 = {"bf16", 1, 2, curate_ggml_bf16_to_f32_row,
                                               bf16_from_f32_row};
static const curate_ggml_traits traits_q8_0 = {"q8_0", CURATE_QK8_0, sizeof(curate_block_q8_0),
                                               curate_ggml_q8_0_to_f32_row,
                                               curate_ggml_f32_to_q8_0_row};
static const curate_ggml_traits traits_q4_0 = {"q4_0", CURATE_QK4_0, sizeof(curate_block_q4_0),
                                               curate_ggml_q4_0_to_f32_row,
                                               curate_ggml_f32_to_q4_0_row};
static const curate_ggml_traits traits_q4_1 = {"q4_1", CURATE_QK4_1, sizeof(curate_block_q4_1),
                                               curate_ggml_q4_1_to_f32_row,
                                               curate_ggml_f32_to_q4_1_row};

/*
 * The other ggml types, known by name and size only (no conversion yet):
 * enough to open and validate any llama.cpp file, report what it holds, and
 * copy such tensors through the writer unchanged (a Q4_0 file from
 * llama-quantize keeps output.weight in q6_K).  Sizes are those of ggml's
 * block structs; QK_K super-blocks hold 256 elements.  Numbers 4, 5, 31-33
 * and 36-38 were removed from ggml and stay unknown.
 */
static const struct {
    uint32_t type;
    curate_ggml_traits traits;
} storage_only[] = {
    {6, {"q5_0", 32, 22, NULL, NULL}},     {7, {"q5_1", 32, 24, NULL, NULL}},
    {9, {"q8_1", 32, 36, NULL, NULL}},     {10, {"q2_K", 256, 84, NULL, NULL}},
    {11, {"q3_K", 256, 110, NULL, NULL}},  {12, {"q4_K", 256, 144, NULL, NULL}},
    {13, {"q5_K", 256, 176, NULL, NULL}},  {14, {"q6_K", 256, 210, NULL, NULL}},
    {15, {"q8_K", 256, 292, NULL, NULL}},  {16, {"iq2_xxs", 256, 66, NULL, NULL}},
    {17, {"iq2_xs", 256, 74, NULL, NULL}}, {18, {"iq3_xxs", 256, 98, NULL, NULL}},
    {19, {"iq1_s", 256, 50, NULL, NULL}},  {20, {"iq4_nl", 32, 18, NULL, NULL}},
    {21, {"iq3_s", 256, 110, NULL, NULL}}, {22, {"iq2_s", 256, 82, NULL, NULL}},
    {23, {"iq4_xs", 256, 136, NULL, NULL}}, {24, {"i8", 1, 1, NULL, NULL}},
    {25, {"i16", 1, 2, NULL, NULL}},       {26, {"i32", 1, 4, NULL, NULL}},
    {27, {"i64", 1, 8, NULL, NULL}},       {28, {"f64", 1, 8, NULL, NULL}},
    {29, {"iq1_m", 256, 56, NULL, NULL}},  {34, {"tq1_0", 256, 54, NULL, NULL}},
    {35, {"tq2_0", 256, 66, NULL, NULL}},  {39, {"mxfp4", 32, 17, NULL, NULL}},
};

const curate_ggml_traits *curate_ggml_get_traits(uint32_t type)
{
    switch (type) {
    case CURATE_GGML_TYPE_F32: return &traits_f32;
    case CURATE_GGML_TYPE_F16: return &traits_f16;
    case CURATE_GGML_TYPE_BF16: return &traits_bf16;
    case CURATE_GGML_TYPE_Q8_0: return &traits_q8_0;
    case CURATE_GGML_TYPE_Q4_0: return &traits_q4_0;
    case CURATE_GGML_TYPE_Q4_1: return &traits_q4_1;
    default: break;
    }
    for (size_t i = 0; i < sizeof storage_only / sizeof storage_only[0]; i++)
        if (storage_only[i].type == type)
            return &storage_only[i].traits;
    return NULL;
}

int curate_ggml_type_known(uint32_t type)
{
    return curate_ggml_get_traits(type) != NULL;
}

const char *curate_ggml_type_name(uint32_t type)
{
    const curate_ggml_traits *t = curate_ggml_get_traits(type);
    return t ? t->name : NULL;
}

uint32_t curate_ggml_block_size(uint32_t type)
{
    const curate_ggml_traits *t = curate_ggml_get_traits(type);
    return t ? t->block_size : 0;
}

uint32_t curate_ggml_type_size(uint32_t type)
{
    const curate_ggml_traits *t = curate_ggml_get_traits(type);
    return t ? t->type_size : 0;
}

curate_status curate_ggml_row_size(uint32_t type, uint64_t n, uint64_t *bytes)
{
    const curate_ggml_traits *t = curate_ggml_get_traits(type);
    if (!t || n % t->block_size != 0)
        return CURATE_ERR_INVALID;
    uint64_t blocks = n / t->block_size;
    if (blocks > UINT64_MAX / t->type_size)
        return CURATE_ERR_RANGE;
    *bytes = blocks * t->type_size;
    return CURATE_OK;
}

int curate_ggml_type_convertible(uint32_t type)
{
    const curate_ggml_traits *t = curate_ggml_get_traits(type);
    return t && t->to_f32 && t->from_f32;
}

curate_status curate_ggml_to_f32(uint32_t type, const void *src, float *dst, size_t n)
{
    const curate_ggml_traits *t = curate_ggml_get_traits(type);
    if (!t)
        return CURATE_ERR_INVALID;
    if (!t->to_f32)
        return CURATE_ERR_UNSUPPORTED;
    if (n % t->block_size != 0)
        return CURATE_ERR_INVALID;
    if (n)
        t->to_f32(src, dst, n);
    return CURATE_OK;
}

curate_status curate_ggml_from_f32(uint32_t type, const float *src, void *dst, size_t n)
{
    const curate_ggml_traits *t = curate_ggml_get_traits(type);
    if (!t)
        return CURATE_ERR_INVALID;
    if (!t->from_f32)
        return CURATE_ERR_UNSUPPORTED;
    if (n % t->block_size != 0)
        return CURATE_ERR_INVALID;
    if (n)
        t->from_f32(src, dst, n);
    return CURATE_OK;
}
