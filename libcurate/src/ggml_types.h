/*
 * ggml_types.h - private: the ggml block layouts and the per-type table
 * behind the curate_ggml_* functions of curate/gguf.h.
 *
 * The block structs are the on-disk layouts (packed by construction: every
 * member is 1- or 2-byte aligned), checked with static_assert so that a
 * compiler that pads them fails the build instead of corrupting files.
 * Scales are stored as f16 bit patterns.
 *
 * Adding a type: its block struct, an entry in the table in ggml_types.c
 * (name, block size, type size, to_f32 and from_f32 row functions), and a
 * number in curate_ggml_type.
 */
#ifndef CURATE_GGML_TYPES_H
#define CURATE_GGML_TYPES_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "curate/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libcurate's GGUF code assumes a little-endian host"
#endif

#define CURATE_QK4_0 32
#define CURATE_QK4_1 32
#define CURATE_QK8_0 32

/* Q4_0: x[j] = ((qs[j] & 15) - 8) * d, x[j + 16] = ((qs[j] >> 4) - 8) * d. */
typedef struct curate_block_q4_0 {
    uint16_t d;                      /* scale, f16 bits */
    uint8_t qs[CURATE_QK4_0 / 2];    /* nibbles: low = element j, high = j + 16 */
} curate_block_q4_0;
static_assert(sizeof(curate_block_q4_0) == 18, "q4_0 block must be 18 bytes");

/* Q4_1: x[j] = (qs[j] & 15) * d + m, x[j + 16] = (qs[j] >> 4) * d + m. */
typedef struct curate_block_q4_1 {
    uint16_t d;                      /* scale, f16 bits */
    uint16_t m;                      /* minimum, f16 bits */
    uint8_t qs[CURATE_QK4_1 / 2];
} curate_block_q4_1;
static_assert(sizeof(curate_block_q4_1) == 20, "q4_1 block must be 20 bytes");

/* Q8_0: x[j] = qs[j] * d. */
typedef struct curate_block_q8_0 {
    uint16_t d;                      /* scale, f16 bits */
    int8_t qs[CURATE_QK8_0];
} curate_block_q8_0;
static_assert(sizeof(curate_block_q8_0) == 34, "q8_0 block must be 34 bytes");

/*
 * Row converters: n is a multiple of the block size (checked by the
 * callers in ggml_types.c); src/dst may have any alignment for the byte
 * side (they go through memcpy).
 */
typedef void (*curate_ggml_to_f32_fn)(const void *src, float *dst, size_t n);
typedef void (*curate_ggml_from_f32_fn)(const float *src, void *dst, size_t n);

typedef struct curate_ggml_traits {
    const char *name;                  /* "q8_0" */
    uint32_t block_size;               /* elements per block */
    uint32_t type_size;                /* bytes per block */
    curate_ggml_to_f32_fn to_f32;      /* NULL: cannot convert */
    curate_ggml_from_f32_fn from_f32;  /* NULL: cannot quantize */
} curate_ggml_traits;

/* Traits of type, or NULL if the type is unknown (storage-only types have
 * NULL converters). */
const curate_ggml_traits *curate_ggml_get_traits(uint32_t type);

/* The scalar reference row functions (also reachable through the table). */
void curate_ggml_f16_to_f32_row(const void *src, float *dst, size_t n);
void curate_ggml_bf16_to_f32_row(const void *src, float *dst, size_t n);
void curate_ggml_q8_0_to_f32_row(const void *src, float *dst, size_t n);
void curate_ggml_q4_0_to_f32_row(const void *src, float *dst, size_t n);
void curate_ggml_q4_1_to_f32_row(const void *src, float *dst, size_t n);
void curate_ggml_f32_to_q8_0_row(const float *src, void *dst, size_t n);
void curate_ggml_f32_to_q4_0_row(const float *src, void *dst, size_t n);
void curate_ggml_f32_to_q4_1_row(const float *src, void *dst, size_t n);

#endif /* CURATE_GGML_TYPES_H */
