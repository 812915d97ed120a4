/*
 * minhash_internal.h - hooks for tests/unit/test_minhash.c (not public).
 */
#ifndef CURATE_MINHASH_INTERNAL_H
#define CURATE_MINHASH_INTERNAL_H

#include "curate/minhash.h"

/* The portable signature, the reference the vector path must equal. */
void curate_minhash_sign_scalar_(const curate_minhash *mh, const uint32_t *keys, size_t count,
                                 uint32_t *sig);

/* Choose the signature path: enable = 0 forces the portable one, 1 uses
 * AVX2 when the CPU has it, -1 decides by the CPU.  Returns 1 when the
 * AVX2 path is now in use.  Not thread-safe (tests only). */
int curate_minhash_simd_(int enable);

#endif
