/*
 * model_vec.c - the element-wise hot loops of the fast forward pass
 * (exponentials for softmax, log-softmax and SiLU; row maxima), written
 * with GCC/Clang vector extensions so they run 8 lanes at a time without
 * -ffast-math.
 *
 * Why not expf(): the perplexity of a 32000-token vocabulary needs 8 M
 * exponentials per 512-token chunk; one libm call per element cost about
 * a quarter of the whole run.  Here exp uses the classic Cephes scheme
 * (x = k ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r, 2^k from the
 * exponent bits), accurate to about 2 ulp over the clamped range
 * [-87.3, 88.3] (so 2^k stays a normal float); sums are kept in double.
 * The operation order is fixed by the code (no reassociation is left to
 * the compiler), so results do not depend on threads.
 *
 * On x86-64 each entry point is compiled twice (AVX2 and baseline SSE2) and
 * picked at load time through target_clones; both compute the same values
 * (the build uses ISO C, where GCC does not contract a*b+c into FMA).
 */
#include "model_vec.h"

#include <math.h>
#include <string.h>

/* The 32-byte vectors only live inside this file (static inline helpers),
 * so the ABI note GCC gives for them on a non-AVX baseline does not apply. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float vf __attribute__((vector_size(32)));
typedef int32_t vi __attribute__((vector_size(32)));
typedef float vf4 __attribute__((vector_size(16)));
typedef double vd4 __attribute__((vector_size(32)));

#define LANES 8

#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VEC_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef VEC_CLONES
#define VEC_CLONES
#endif

/* The helpers below pass 32-byte vectors by value.  They must be inlined
 * into each clone: an out-of-line copy is compiled for the default target,
 * and calling it from the AVX2 clone passes the vectors under a different
 * ABI (this crashed -O0 builds, where nothing is inlined by default). */
#define VEC_INLINE static inline __attribute__((always_inline))

VEC_INLINE vf splat(float c)
{
    vf v = {c, c, c, c, c, c, c, c};
    return v;
}

VEC_INLINE vf load(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

VEC_INLINE void store(float *p, vf v)
{
    memcpy(p, &v, sizeof v);
}

/* lane-wise m ? a : b, m from a comparison (all ones or all zeros) */
VEC_INLINE vf select(vi m, vf a, vf b)
{
    return (vf)(((vi)a & m) | ((vi)b & ~m));
}

VEC_INLINE vf vexp(vf x)
{
    const vf hi = splat(88.3762626647949f), lo = splat(-87.3365478515625f);
    x = select(x > hi, hi, x);
    x = select(x < lo, lo, x);
    /* k = round(x / ln2) with the 1.5 * 2^23 trick (round to nearest) */
    const vf magic = splat(12582912.0f);
    vf t = x * splat(1.44269504088896341f) + magic;
    vf k = t - magic;
    vi ki = (vi)t - (vi)magic;
    /* r = x - k ln2, ln2 split in two so the product is exact enough */
    vf r = x - k * splat(0.693359375f);
    r = r - k * splat(-2.12194440e-4f);
    vf p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f);
    p = p * r + splat(8.3334519073e-3f);
    p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f);
    p = p * r + splat(5.0000001201e-1f);
    p = p * (r * r) + r + splat(1.0f);
    vi bits = (ki + 127) << 23;
    return p * (vf)bits;
}

/* add the 8 lanes of v to two double accumulators */
VEC_INLINE void acc_double(vf v, vd4 *a0, vd4 *a1)
{
    vf4 l = {v[0], v[1], v[2], v[3]};
    vf4 h = {v[4], v[5], v[6], v[7]};
    *a0 += __builtin_convertvector(l, vd4);
    *a1 += __builtin_convertvector(h, vd4);
}

VEC_INLINE double hsum(vd4 a0, vd4 a1)
{
    vd4 s = a0 + a1;
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* the tail (n < 8 elements) as one vector padded with pad */
VEC_INLINE vf load_tail(const float *x, size_t n, float pad)
{
    float tmp[LANES];
    for (size_t i = 0; i < LANES; i++)
        tmp[i] = i < n ? x[i] : pad;
    return load(tmp);
}

VEC_CLONES
float curate_vec_max(const float *x, size_t n)
{
    if (n == 0)
        return -INFINITY;
    vf m = splat(x[0]);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf v = load(x + i);
        m = select(v > m, v, m);
    }
    if (i < n) {
        vf v = load_tail(x + i, n - i, x[0]);
        m = select(v > m, v, m);
    }
    float r = m[0];
    for (int k = 1; k < LANES; k++)
        r = m[k] > r ? m[k] : r;
    return r;
}

VEC_CLONES
double curate_vec_sum_exp(const float *x, size_t n, float shift)
{
    vd4 a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    const vf s = splat(shift);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        acc_double(vexp(load(x + i) - s), &a0, &a1);
    if (i < n) {
        vf e = vexp(load_tail(x + i, n - i, shift) - s);
        for (size_t k = n - i; k < LANES; k++)
            e[k] = 0.0f;
        acc_double(e, &a0, &a1);
    }
    return hsum(a0, a1);
}

VEC_CLONES
double curate_vec_exp_store(float *x, size_t n, float shift)
{
    vd4 a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    const vf s = splat(shift);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf e = vexp(load(x + i) - s);
        store(x + i, e);
        acc_double(e, &a0, &a1);
    }
    if (i < n) {
        vf e = vexp(load_tail(x + i, n - i, shift) - s);
        for (size_t k = n - i; k < LANES; k++)
            e[k] = 0.0f;
        for (size_t k = 0; k < n - i; k++)
            x[i + k] = e[k];
        acc_double(e, &a0, &a1);
    }
    return hsum(a0, a1);
}

VEC_CLONES
void curate_vec_swiglu(const float *g, const float *u, float *h, size_t n)
{
    const vf one = splat(1.0f);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf gv = load(g + i);
        store(h + i, gv / (one + vexp(-gv)) * load(u + i));
    }
    if (i < n) {
        vf gv = load_tail(g + i, n - i, 0.0f);
        vf uv = load_tail(u + i, n - i, 0.0f);
        vf r = gv / (one + vexp(-gv)) * uv;
        for (size_t k = 0; k < n - i; k++)
            h[i + k] = r[k];
    }
}

float curate_exp_scalar(float x)
{
    return vexp(splat(x))[0];
}
