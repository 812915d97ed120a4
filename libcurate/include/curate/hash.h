/*
 * curate/hash.h - 64- and 128-bit hashes of byte strings (XXH3 through
 * libxxhash).
 *
 * Why XXH3: it is the fastest good-quality non-cryptographic hash on
 * current CPUs (well over 10 GB/s for long inputs, a few nanoseconds for
 * short ones), its output is specified and stable across platforms and
 * versions since xxHash 0.8.0, and Debian ships it.  It is NOT a
 * cryptographic hash: an adversary can build colliding inputs.  curate uses
 * it to find duplicate text, where a deliberate collision only causes one
 * record to be dropped as a "duplicate" of another.
 *
 * The values are exactly XXH3_64bits_withSeed() and
 * XXH3_128bits_withSeed(), so they can be reproduced with any other XXH3
 * implementation (seed 0 gives the unseeded XXH3 values, the ones
 * `xxhsum -H3` and `xxhsum -H2` print).
 *
 * Thread safety: the one-shot functions are pure and thread-safe; a
 * curate_hasher belongs to one thread at a time.
 */
#ifndef CURATE_HASH_H
#define CURATE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A 128-bit hash.  lo and hi are XXH3's low64 and high64 halves; the
 * canonical (printed) form is hi followed by lo, big-endian, as xxhsum
 * prints it.
 */
typedef struct curate_h128 {
    uint64_t lo;
    uint64_t hi;
} curate_h128;

/* XXH3-64 of data[0..len) with seed.  data may be NULL when len is 0. */
uint64_t curate_hash64(const void *data, size_t len, uint64_t seed);

/* XXH3-128 of data[0..len) with seed.  data may be NULL when len is 0. */
curate_h128 curate_hash128(const void *data, size_t len, uint64_t seed);

/* 1 if a and b are the same hash, 0 otherwise. */
static inline int curate_h128_equal(curate_h128 a, curate_h128 b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

/* Canonical lowercase hex: 16 digits for 64-bit, 32 for 128-bit (hi then
 * lo).  out must hold 17 / 33 bytes; it is NUL-terminated.  Returns out. */
char *curate_hash64_hex(uint64_t h, char out[17]);
char *curate_h128_hex(curate_h128 h, char out[33]);

/*
 * Streaming form, for text that arrives in pieces (it gives the same value
 * as the one-shot functions on the concatenation).  A hasher is allocated
 * once and reset for every message; reset, update and digest never
 * allocate.
 *
 * curate_hasher_init returns NULL (err: CURATE_ERR_NOMEM) when memory is
 * short; curate_hasher_free accepts NULL.
 */
typedef struct curate_hasher curate_hasher;

curate_hasher *curate_hasher_init(curate_error *err);
void curate_hasher_free(curate_hasher *h);

/* Start a new message with seed. */
void curate_hasher_reset(curate_hasher *h, uint64_t seed);
/* Add len bytes (data may be NULL when len is 0). */
void curate_hasher_update(curate_hasher *h, const void *data, size_t len);
/* The hash of everything added since the last reset; the state is kept, so
 * more bytes may be added afterwards.  A message is hashed as either 64 or
 * 128 bits: both digests of one state are defined, and equal the one-shot
 * functions with the seed given to reset. */
uint64_t curate_hasher_digest64(const curate_hasher *h);
curate_h128 curate_hasher_digest128(const curate_hasher *h);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_HASH_H */
