/*
 * hash.c - XXH3 wrappers.
 *
 * The library is linked (not XXH_INLINE_ALL) so that the xxHash version
 * reported by --version is the one that runs.  For the short inputs of
 * MinHash shingles the call costs a few nanoseconds more than an inlined
 * copy would; minhash.c hashes each word once, so that cost is per word,
 * not per shingle and permutation.
 */
#include "curate/hash.h"

#include <stdio.h>
#include <stdlib.h>

#include <xxhash.h>

uint64_t curate_hash64(const void *data, size_t len, uint64_t seed)
{
    return (uint64_t)XXH3_64bits_withSeed(data, len, (XXH64_hash_t)seed);
}

curate_h128 curate_hash128(const void *data, size_t len, uint64_t seed)
{
    XXH128_hash_t h = XXH3_128bits_withSeed(data, len, (XXH64_hash_t)seed);
    curate_h128 r = { (uint64_t)h.low64, (uint64_t)h.high64 };
    return r;
}

char *curate_hash64_hex(uint64_t h, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return out;
}

char *curate_h128_hex(curate_h128 h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.hi, (unsigned long long)h.lo);
    return out;
}

struct curate_hasher {
    XXH3_state_t *state; /* allocated by xxHash, freed through it */
};

curate_hasher *curate_hasher_init(curate_error *err)
{
    curate_hasher *h = calloc(1, sizeof *h);
    if (h)
        h->state = XXH3_createState();
    if (!h || !h->state) {
        free(h);
        curate_error_set(err, CURATE_ERR_NOMEM, "cannot allocate a hash state");
        return NULL;
    }
    XXH3_64bits_reset(h->state);
    return h;
}

void curate_hasher_free(curate_hasher *h)
{
    if (!h)
        return;
    XXH3_freeState(h->state);
    free(h);
}

void curate_hasher_reset(curate_hasher *h, uint64_t seed)
{
    /* One reset serves both digests: in XXH3 the 64- and 128-bit variants
     * share the state layout and the update step (the unit test checks
     * both digests against the one-shot functions). */
    XXH3_64bits_reset_withSeed(h->state, (XXH64_hash_t)seed);
}

void curate_hasher_update(curate_hasher *h, const void *data, size_t len)
{
    if (len)
        XXH3_64bits_update(h->state, data, len);
}

uint64_t curate_hasher_digest64(const curate_hasher *h)
{
    return (uint64_t)XXH3_64bits_digest(h->state);
}

curate_h128 curate_hasher_digest128(const curate_hasher *h)
{
    XXH128_hash_t d = XXH3_128bits_digest(h->state);
    curate_h128 r = { (uint64_t)d.low64, (uint64_t)d.high64 };
    return r;
}
