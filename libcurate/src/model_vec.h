/*
 * model_vec.h - private: vectorised element-wise kernels of the fast
 * forward pass (see model_vec.c for the exp scheme and its accuracy).
 */
#ifndef CURATE_MODEL_VEC_H
#define CURATE_MODEL_VEC_H

#include <stddef.h>
#include <stdint.h>

/* max of x[0..n); -inf for n == 0 */
float curate_vec_max(const float *x, size_t n);

/* sum of exp(x[i] - shift) in double */
double curate_vec_sum_exp(const float *x, size_t n, float shift);

/* x[i] = exp(x[i] - shift); returns their sum in double */
double curate_vec_exp_store(float *x, size_t n, float shift);

/* h[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u */
void curate_vec_swiglu(const float *g, const float *u, float *h, size_t n);

/* the same exp on one value (for tests) */
float curate_exp_scalar(float x);

#endif
