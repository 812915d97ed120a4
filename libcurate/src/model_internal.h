/*
 * model_internal.h - private parts of the model runtime shared by model.c
 * (params, loading), model_ref.c (scalar reference), model_fast.c (BLAS
 * path) and model_pool.c (the thread pool).
 */
#ifndef CURATE_MODEL_INTERNAL_H
#define CURATE_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "curate/model.h"

struct curate_model {
    curate_model_params p;
    curate_model_weights w;
    /*
     * Allocation blocks.  Per layer, wq|wk|wv are one block ([q+2kv][d]) and
     * w_gate|w_up another ([2f][d]) so that the fast path can run each as a
     * single product; the public pointers point into these blocks.
     */
    void **blocks;
    size_t n_blocks, cap_blocks;
};

/* Sizes derived from params (all fit in size_t once params_check passed). */
typedef struct curate_model_dims {
    size_t d, q, kv, f, V, hd, n_rot;
} curate_model_dims;

curate_model_dims curate_model_dims_of(const curate_model_params *p);

/*
 * RoPE tables for positions 0..n_pos-1: cos/sin of pos * base^(-2i/n_rot)
 * for i < n_rot/2, computed in double and stored as float
 * ([n_pos][n_rot/2] each).  Shared by both forward passes so they rotate by
 * the same angles.
 */
void curate_rope_tables(const curate_model_params *p, size_t n_pos, float *cos_t, float *sin_t);

/* Rotate one head vector x[head_dim] at table row (cos_row, sin_row). */
void curate_rope_apply(curate_rope_mode mode, size_t n_rot, float *x, const float *cos_row,
                       const float *sin_row);

/* Check that every token id is in [0, V). */
curate_status curate_model_check_tokens(const curate_model *m, const int32_t *tokens, size_t n,
                                        curate_error *err);

/* 64-byte aligned allocation of n floats (NULL on overflow or no memory);
 * free with free(). */
float *curate_falloc(size_t n);

/* ---- thread pool (model_pool.c) --------------------------------------- */

typedef struct curate_pool curate_pool;

/* fn(arg, task, thread) for task in [0, n_tasks); thread in [0, n_threads). */
typedef void (*curate_pool_fn)(void *arg, size_t task, unsigned thread);

/* n_threads in total (the caller counts as one); NULL on failure. */
curate_pool *curate_pool_new(unsigned n_threads);
void curate_pool_free(curate_pool *pool);
unsigned curate_pool_threads(const curate_pool *pool);

/*
 * Run all tasks and return when every one is done.  Tasks are handed out
 * dynamically, so a task must write only its own outputs: results do not
 * depend on which thread ran what.  Not reentrant.
 */
void curate_pool_run(curate_pool *pool, curate_pool_fn fn, void *arg, size_t n_tasks);

/* The pool of a model context (model_fast.c), for library code that splits
 * per-row work of a forward pass's results over the same threads, e.g. the
 * KL divergence of two models' logits (calibrate_compare.c). */
curate_pool *curate_model_ctx_pool(curate_model_ctx *c);

#endif
