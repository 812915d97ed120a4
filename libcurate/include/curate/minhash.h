/*
 * curate/minhash.h - shingling, MinHash signatures and LSH banding.
 *
 * MinHash estimates the Jaccard similarity J(A, B) = |A n B| / |A u B| of
 * two sets of shingles without comparing the sets: for a random
 * permutation of all possible shingles, the smallest element of A and the
 * smallest element of B are the same with probability exactly J.  A
 * signature keeps the minimum under P permutations; the share of equal
 * slots between two signatures estimates J with standard deviation
 * sqrt(J (1 - J) / P).
 *
 * Shingles.  The text is split into
 *   - words: maximal runs of characters that are not Unicode White_Space
 *     (ASCII space, \t \n \v \f \r, U+0085, U+00A0, U+1680, U+2000-U+200A,
 *     U+2028, U+2029, U+202F, U+205F, U+3000); punctuation stays part of
 *     the word it touches, or
 *   - characters: Unicode code points (a byte that is not valid UTF-8
 *     counts as one character, so every input has a defined result).
 * A shingle is n consecutive words or characters (n = ngram).  A text with
 * fewer than n units (but at least one) has exactly one shingle: all of
 * it.  An empty text (or one made only of whitespace, in word mode) has no
 * shingles.  The set is what counts: a shingle repeated in one text counts
 * once.  No normalization happens here; callers normalize first (see
 * curate/dedupe.h, which collapses whitespace and folds case).
 *
 * Hashing and permutations (the scheme, so it can be reproduced):
 *   - word mode: every word is hashed once with XXH3-64 (seed w); the
 *     32-bit key of a shingle is n * phi + sum_k h_k * (c + 2k) mod 2^64
 *     (h_k the k-th word's hash, c an odd constant), folded by one
 *     xorshift-multiply to its high 32 bits: order-sensitive, and a change
 *     of any word changes the sum;
 *   - char mode: the bytes of the n characters are hashed with XXH3-64
 *     (seed w), low 32 bits kept;
 *   - permutation i maps a 32-bit key x to the high 32 bits of
 *     (a_i * x + b_i) mod 2^64, with a_i and b_i 64-bit: Dietzfelbinger's
 *     multiply-add-shift family, strongly universal for 32-bit keys.
 *     Slot i of the signature is the minimum over the text's shingles.
 *   w, a_i and b_i come from a splitmix64 stream started at the seed, so a
 *   seed fixes every signature on every platform.
 *   One hash per unit plus P multiply-adds is far cheaper than P
 *   independent hashes, and it vectorizes (an AVX2 version, chosen at run
 *   time, gives the same bits as the portable one).  Measured against
 *   exact Jaccard in tests/unit/test_minhash.c, the estimates show no bias
 *   and the binomial variance J (1 - J) / P of independent permutations.
 *   32-bit keys collide inside one text with probability about n^2 / 2^33
 *   (n shingles), which changes an estimate negligibly.
 *
 * LSH banding.  The P slots are cut into b bands of r rows (b * r <= P);
 * two texts become candidates when all r slots of at least one band are
 * equal, which happens with probability 1 - (1 - J^r)^b: an S-curve whose
 * steep part sits near (1/b)^(1/r).  curate_lsh_choose() picks b and r for
 * a threshold t by minimizing the weighted area of false positives
 * (integral of the curve over [0, t]) plus false negatives (integral of
 * one minus the curve over [t, 1]), the usual choice.
 *
 * Thread safety: a curate_minhash or curate_lsh belongs to one thread at a
 * time (both keep reusable scratch buffers); curate_minhash_similarity and
 * curate_lsh_choose are pure.
 */
#ifndef CURATE_MINHASH_H
#define CURATE_MINHASH_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum curate_shingle_kind {
    CURATE_SHINGLE_WORD = 0,
    CURATE_SHINGLE_CHAR
} curate_shingle_kind;

/* Limits accepted by curate_minhash_init. */
#define CURATE_MINHASH_MAX_NGRAM 64u
#define CURATE_MINHASH_MAX_PERM 1024u

typedef struct curate_minhash_opts {
    curate_shingle_kind kind; /* words or characters */
    unsigned ngram;           /* units per shingle, 1..CURATE_MINHASH_MAX_NGRAM */
    unsigned perm;            /* signature slots P, 1..CURATE_MINHASH_MAX_PERM */
    uint64_t seed;            /* fixes the word hash and the permutations */
} curate_minhash_opts;

/*
 * The defaults curate-dedupe uses (word shingles; ngram, perm and seed as
 * documented in curate-dedupe(1), where the measurements that chose them
 * are given).
 */
void curate_minhash_opts_default(curate_minhash_opts *opts);

typedef struct curate_minhash curate_minhash;

/*
 * A signer for the given options.  Returns NULL and fills err with
 * CURATE_ERR_INVALID (an option out of range, named in the message) or
 * CURATE_ERR_NOMEM.  Free with curate_minhash_free (accepts NULL).
 */
curate_minhash *curate_minhash_init(const curate_minhash_opts *opts, curate_error *err);
void curate_minhash_free(curate_minhash *mh);

/* The options the signer was made with. */
const curate_minhash_opts *curate_minhash_options(const curate_minhash *mh);

/*
 * The 32-bit keys of the text's shingles in text order (a repeated
 * shingle appears again).  *keys points into the signer and is valid
 * until its next call.  CURATE_ERR_NOMEM if the scratch array cannot grow
 * (the signer stays usable); the array is reused, so a steady stream of
 * texts of similar size does not allocate.
 */
curate_status curate_minhash_shingles(curate_minhash *mh, const char *text, size_t len,
                                      const uint32_t **keys, size_t *count);

/*
 * The signature of the text's shingle set into sig[0..P).  *n_shingles
 * (may be NULL) receives the number of shingles (with repeats); when it is
 * 0 every slot is UINT32_MAX.  CURATE_ERR_NOMEM as above.
 */
curate_status curate_minhash_sign(curate_minhash *mh, const char *text, size_t len, uint32_t *sig,
                                  size_t *n_shingles);

/* The signature of a set given by shingle keys (as returned above). */
void curate_minhash_sign_keys(const curate_minhash *mh, const uint32_t *keys, size_t count,
                              uint32_t *sig);

/* Estimated Jaccard similarity: the share of equal slots among perm. */
double curate_minhash_similarity(const uint32_t *a, const uint32_t *b, unsigned perm);

/* ------------------------------------------------------------------------ */
/* LSH banding                                                               */
/* ------------------------------------------------------------------------ */

/* Probability that two sets of Jaccard similarity j share a band. */
double curate_lsh_probability(double j, unsigned bands, unsigned rows);

/*
 * Choose bands * rows <= perm for threshold t in (0, 1) minimizing
 * fp_weight * FP + fn_weight * FN (the areas described above; weights >= 0,
 * not both 0; integrals by Simpson's rule on 256 intervals, so the choice
 * is deterministic).  CURATE_ERR_INVALID on arguments out of range.
 */
curate_status curate_lsh_choose(double threshold, unsigned perm, double fp_weight,
                                double fn_weight, unsigned *bands, unsigned *rows);

/*
 * An LSH index of signatures.  Records get ids 0, 1, 2, ... in insertion
 * order; a query returns ids of earlier records sharing at least one band
 * with the signature, each once, most recent first within a band.
 *
 * Memory: per record and band a 4-byte chain link, plus a hash table of
 * distinct band values (8-byte slots, kept 35% to 70% full), plus 4 bytes
 * per record to deduplicate candidates; curate_lsh_memory() reports the
 * allocated total.  At most UINT32_MAX - 1 records.
 */
typedef struct curate_lsh curate_lsh;

/*
 * An index over signatures of at least bands * rows slots (the first
 * bands * rows are used).  max_per_band bounds how many records one query
 * takes from one band (the newest), so a band value shared by a huge group
 * of texts cannot make queries quadratic; 0 means no bound.  Returns NULL
 * with CURATE_ERR_INVALID (bands or rows 0, or bands * rows > 
 * CURATE_MINHASH_MAX_PERM) or CURATE_ERR_NOMEM.
 */
curate_lsh *curate_lsh_init(unsigned bands, unsigned rows, size_t max_per_band, curate_error *err);
void curate_lsh_free(curate_lsh *l);

/* Add a signature as the next record; *id (may be NULL) receives its id.
 * CURATE_ERR_NOMEM or CURATE_ERR_TOO_LARGE (too many records) leave the
 * index unchanged. */
curate_status curate_lsh_insert(curate_lsh *l, const uint32_t *sig, uint32_t *id);

/*
 * Candidates for sig among the records inserted so far.  *ids points into
 * the index, valid until its next call; *count is their number.
 * *truncated (may be NULL) is set to 1 when max_per_band cut a band short.
 * CURATE_ERR_NOMEM if the result array cannot grow.
 */
curate_status curate_lsh_query(curate_lsh *l, const uint32_t *sig, const uint32_t **ids,
                               size_t *count, int *truncated);

/*
 * curate_lsh_query followed by curate_lsh_insert of the same signature, in
 * one pass over the bands (the band hashes are computed once and the
 * table slots fetched together).  The candidates are the records before
 * this one; *id (may be NULL) is the new record's id.  On CURATE_ERR_NOMEM
 * or CURATE_ERR_TOO_LARGE nothing was inserted and no candidates are given.
 */
curate_status curate_lsh_query_insert(curate_lsh *l, const uint32_t *sig, const uint32_t **ids,
                                      size_t *count, int *truncated, uint32_t *id);

size_t curate_lsh_count(const curate_lsh *l);   /* records inserted */
size_t curate_lsh_memory(const curate_lsh *l);  /* bytes allocated */

#ifdef __cplusplus
}
#endif
#endif /* CURATE_MINHASH_H */
