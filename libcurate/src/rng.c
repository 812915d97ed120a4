/*
 * rng.c - splitmix64 seeding and the xoshiro256** generator.
 *
 * Written from the published descriptions of both algorithms; the constants
 * are the ones the authors specify (they are part of the algorithms, and
 * changing any of them would change every sampled set).
 */
#include "curate/rng.h"

uint64_t curate_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void curate_rng_seed(curate_rng *rng, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = curate_splitmix64(&st);
    /* splitmix64 is a bijection of its counter, so four consecutive outputs
     * cannot all be zero; the all-zero state (the one fixed point of
     * xoshiro) is therefore unreachable. */
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t curate_rng_next(curate_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t curate_rng_below(curate_rng *rng, uint64_t n)
{
    if (n == 0)
        return 0;
    /* The high word of x * n is uniform over [0, n) once the low word falls
     * outside the first (2^64 mod n) values; those few are redrawn. */
    unsigned __int128 m = (unsigned __int128)curate_rng_next(rng) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
        while (low < threshold) {
            m = (unsigned __int128)curate_rng_next(rng) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double curate_rng_uniform(curate_rng *rng)
{
    return (double)(curate_rng_next(rng) >> 11) * 0x1.0p-53;
}
