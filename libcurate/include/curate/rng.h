/*
 * curate/rng.h - a small, fast, seeded pseudo-random generator.
 *
 * Every random choice in libcurate (sampling, shuffling, tie breaks) draws
 * from a curate_rng that the caller owns and passes in explicitly.  There is
 * no hidden global state, so the same seed and the same sequence of calls
 * give the same numbers on every platform and in every build: that is what
 * makes `--seed` reproducible byte for byte.
 *
 * The generator is xoshiro256** (Blackman and Vigna, 2018): 256 bits of
 * state, period 2^256 - 1, passes BigCrush and PractRand, about one
 * nanosecond per 64-bit output.  The 256-bit state is filled from the 64-bit
 * seed with splitmix64, which guarantees a non-zero state for every seed
 * (including 0) and decorrelates nearby seeds (1, 2, 3 ... give unrelated
 * streams).  It is NOT a cryptographic generator: never use it for keys or
 * anything an adversary must not predict.
 *
 * Thread safety: a curate_rng is plain data; one generator belongs to one
 * thread at a time.  Functions never allocate and never fail.
 */
#ifndef CURATE_RNG_H
#define CURATE_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Generator state.  Embed it and seed it before use; copying the struct
 * forks an identical stream. */
typedef struct curate_rng {
    uint64_t s[4];
} curate_rng;

/* Seed the generator: s is filled with four successive splitmix64 outputs
 * starting from seed. */
void curate_rng_seed(curate_rng *rng, uint64_t seed);

/*
 * One step of splitmix64 (Steele, Lea and Flood, 2014): advances *state by
 * the golden-ratio increment and returns the mixed value.  Exposed because
 * it is a handy deterministic mixer for deriving sub-seeds.
 */
uint64_t curate_splitmix64(uint64_t *state);

/* Next 64 uniformly distributed bits. */
uint64_t curate_rng_next(curate_rng *rng);

/*
 * A uniform integer in [0, n) without modulo bias (Lemire's multiply-shift
 * with rejection, 2019: one multiplication, and a retry with probability
 * below n / 2^64).  n == 0 returns 0.
 */
uint64_t curate_rng_below(curate_rng *rng, uint64_t n);

/* A uniform double in [0, 1) with 53 random bits (never 1.0). */
double curate_rng_uniform(curate_rng *rng);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_RNG_H */
