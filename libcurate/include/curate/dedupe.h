/*
 * curate/dedupe.h - exact and near-duplicate detection over a stream of
 * texts, first occurrence kept.
 *
 * Three pieces, usable alone:
 *
 *   curate_dedupe_key    turns a text into the bytes that are compared
 *                        (normalization levels below), reusing its buffers;
 *   curate_dedupe_exact  a set of 128-bit hashes (XXH3-128 of the key),
 *                        each with the caller's 64-bit reference to the
 *                        first text that had it;
 *   curate_dedupe_near   MinHash + LSH near-duplicate clustering, with an
 *                        exact set in front of it.
 *
 * References ("ref") are opaque 64-bit values the caller chooses for each
 * text (an offset into its own table of ids, a line number...); the
 * library stores them and hands back the reference of the kept text.
 *
 * Nothing here prints or exits.  Objects belong to one thread at a time.
 */
#ifndef CURATE_DEDUPE_H
#define CURATE_DEDUPE_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/hash.h"
#include "curate/minhash.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Normalized keys                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Normalization levels; each includes the ones before it:
 *   BYTES       the text as decoded from JSON, byte for byte (any bytes)
 *   WHITESPACE  every run of Unicode whitespace becomes one space, leading
 *               and trailing whitespace removed (curate_normalize_whitespace
 *               without CURATE_WS_KEEP_NEWLINES)
 *   NFKC        NFKC first, then whitespace (full-width letters, ligatures,
 *               superscripts, NBSP ... fold into their plain forms)
 *   CASEFOLD    NFKC, Unicode case folding, then whitespace
 * Levels above BYTES need valid UTF-8 (CURATE_ERR_UTF8 otherwise, with
 * the offset of the first bad byte in err).
 *
 * Cost: pure-ASCII text takes one fused pass (collapse whitespace and, for
 * CASEFOLD, lower-case A-Z) into a reused buffer, for every level: on
 * ASCII, NFKC is the identity and case folding is tolower.  Text with any
 * byte >= 0x80 goes through utf8proc (curate/text.h), several times slower,
 * and gives the same bytes the fused pass would on ASCII.
 */
typedef enum curate_dedupe_norm {
    CURATE_DEDUPE_NORM_BYTES = 0,
    CURATE_DEDUPE_NORM_WHITESPACE,
    CURATE_DEDUPE_NORM_NFKC,
    CURATE_DEDUPE_NORM_CASEFOLD
} curate_dedupe_norm;

/* "bytes", "whitespace", "nfkc", "casefold"; NULL for an unknown value. */
const char *curate_dedupe_norm_name(curate_dedupe_norm norm);

/* Scratch space for making keys.  Embed, _init once, _release at the end. */
typedef struct curate_dedupe_key {
    curate_buf out;   /* the key, for levels above BYTES */
    curate_buf tmp1;  /* intermediate forms (non-ASCII text only) */
    curate_buf tmp2;
} curate_dedupe_key;

void curate_dedupe_key_init(curate_dedupe_key *k);
void curate_dedupe_key_release(curate_dedupe_key *k);

/*
 * The key of s[0..n) at level norm: *key and *key_len receive it.  For
 * BYTES the key is s itself (no copy); otherwise it lives in k->out until
 * the next call.  Returns CURATE_OK, CURATE_ERR_UTF8 (err has the offset)
 * or CURATE_ERR_NOMEM.
 */
curate_status curate_dedupe_key_make(curate_dedupe_key *k, curate_dedupe_norm norm,
                                     const char *s, size_t n, const char **key,
                                     size_t *key_len, curate_error *err);

/* ------------------------------------------------------------------------ */
/* Exact duplicates                                                          */
/* ------------------------------------------------------------------------ */

/*
 * A set of distinct 128-bit hashes with one reference each.
 *
 * Memory: a dense array of {hash, ref} entries (24 bytes each) in
 * insertion order, and an open-addressing index of 4-byte entry numbers
 * kept between 35% and 70% full (5.7 to 11.4 bytes per entry): 30 to 36
 * bytes per distinct hash, about 32 on average.  Growing the index frees
 * the old one before building the new one from the dense array, so there
 * is no doubled peak; the dense array grows by realloc, whose untouched
 * tail is not resident.  At most UINT32_MAX - 1 distinct hashes.
 *
 * A 128-bit hash makes a false "duplicate" between two different texts
 * practically impossible (about n^2 / 2^129 for n texts).
 */
typedef struct curate_dedupe_exact curate_dedupe_exact;

/* NULL with CURATE_ERR_NOMEM in err on failure; _free accepts NULL. */
curate_dedupe_exact *curate_dedupe_exact_init(curate_error *err);
void curate_dedupe_exact_free(curate_dedupe_exact *s);

/*
 * Look h up.  If it is new, store it with ref and set *found = 0; if it
 * was stored before, set *found = 1 and *first_ref to the stored reference
 * (first_ref may be NULL).  CURATE_ERR_NOMEM / CURATE_ERR_TOO_LARGE leave
 * the set unchanged.
 */
curate_status curate_dedupe_exact_add(curate_dedupe_exact *s, curate_h128 h, uint64_t ref,
                                      int *found, uint64_t *first_ref);

size_t curate_dedupe_exact_count(const curate_dedupe_exact *s);  /* distinct hashes */
size_t curate_dedupe_exact_memory(const curate_dedupe_exact *s); /* bytes allocated */

/* ------------------------------------------------------------------------ */
/* Near duplicates                                                           */
/* ------------------------------------------------------------------------ */

typedef struct curate_dedupe_near_opts {
    curate_minhash_opts minhash; /* shingles and signature */
    double threshold;            /* estimated Jaccard a candidate needs, (0, 1] */
    unsigned bands, rows;        /* LSH banding; both 0 = chosen from threshold
                                    with curate_lsh_choose and fn_weight */
    double fn_weight;            /* weight of false negatives in that choice,
                                    (0, 1], false positives weigh 1 - fn_weight;
                                    0 = CURATE_DEDUPE_NEAR_FN_WEIGHT */
    size_t max_per_band;         /* candidates one band may give (newest first);
                                    0 = CURATE_DEDUPE_NEAR_MAX_PER_BAND */
} curate_dedupe_near_opts;

#define CURATE_DEDUPE_NEAR_MAX_PER_BAND 64u

/*
 * Bands are chosen weighting missed pairs 9 to 1 over false candidates:
 * every candidate is verified against the threshold, so a false one costs
 * a signature comparison, while a missed pair is a duplicate kept.  For
 * threshold 0.5 and 128 permutations this gives 32 bands of 4 rows (equal
 * weights would give 25 x 5, which finds a pair at J = 0.6 only 87% of the
 * time instead of 99%).
 */
#define CURATE_DEDUPE_NEAR_FN_WEIGHT 0.9

/* Defaults: curate_minhash_opts_default, the threshold and banding
 * curate-dedupe uses (see curate-dedupe(1) for how they were measured). */
void curate_dedupe_near_opts_default(curate_dedupe_near_opts *opts);

typedef enum curate_dedupe_verdict {
    CURATE_DEDUPE_NEW = 0,   /* first of its kind: keep it */
    CURATE_DEDUPE_EXACT,     /* same key as an earlier text */
    CURATE_DEDUPE_NEAR       /* estimated Jaccard >= threshold with an earlier text */
} curate_dedupe_verdict;

typedef struct curate_dedupe_match {
    curate_dedupe_verdict verdict;
    uint64_t first_ref;   /* the kept text: the first member of the cluster
                             (for NEW: the text's own ref) */
    uint64_t nearest_ref; /* the earlier text most similar to this one (the
                             exact twin for EXACT; own ref for NEW) */
    double similarity;    /* estimated Jaccard with nearest_ref (1 for EXACT,
                             0 for NEW) */
} curate_dedupe_match;

/*
 * Near-duplicate clustering.  Every text added is compared, in order, to
 * the earlier ones:
 *   1. its XXH3-128 is looked up in an exact set: a repeat is EXACT, its
 *      cluster is the cluster of the earlier twin;
 *   2. otherwise its MinHash signature is computed, the LSH index gives
 *      candidate earlier texts, and each candidate whose estimated Jaccard
 *      is >= threshold is a match;
 *   3. the text joins the clusters of all its matches (union-find; two
 *      clusters it links merge); the first member of a cluster is the
 *      text kept, and stays the earliest text of the merged cluster.
 *      With no match the text starts a new cluster (NEW).
 *   A text with no shingles (empty, or only whitespace in word mode) has
 *   the signature of the empty set: all such texts are near duplicates of
 *   one another (similarity 1).
 *
 * Signatures are stored with their low 16 bits per slot ("b-bit minwise
 * hashing", b = 16): two different minima then look equal with probability
 * 2^-16, which raises an estimate by at most (1 - J) / 65536.
 *
 * Memory per text that passes step 1: 2 * perm bytes of signature, 12 for
 * the cluster parent and ref, the exact set's ~32, and the LSH index
 * (4 * bands + 4 bytes plus 8-byte table slots at 35-70% load for each
 * new band value, i.e. about 4 + 16 * bands bytes for a text unlike all
 * others).  curate_dedupe_near_memory() reports the allocated total.
 */
typedef struct curate_dedupe_near curate_dedupe_near;

/* NULL with CURATE_ERR_INVALID (options) or CURATE_ERR_NOMEM in err. */
curate_dedupe_near *curate_dedupe_near_init(const curate_dedupe_near_opts *opts,
                                            curate_error *err);
void curate_dedupe_near_free(curate_dedupe_near *d);

/*
 * Add the next text (its key: normalize first) with reference ref; *m
 * receives the verdict.  Errors: CURATE_ERR_NOMEM, or CURATE_ERR_TOO_LARGE
 * past UINT32_MAX - 1 texts, with err filled; after an error the index
 * may hold part of the failed text and must only be freed.
 */
curate_status curate_dedupe_near_add(curate_dedupe_near *d, const char *key, size_t len,
                                     uint64_t ref, curate_dedupe_match *m, curate_error *err);

/* The banding in use (chosen or given), and the options. */
void curate_dedupe_near_banding(const curate_dedupe_near *d, unsigned *bands, unsigned *rows);
const curate_dedupe_near_opts *curate_dedupe_near_options(const curate_dedupe_near *d);

/* Counters since init. */
typedef struct curate_dedupe_near_stats {
    uint64_t texts;           /* added */
    uint64_t exact;           /* EXACT verdicts */
    uint64_t near;            /* NEAR verdicts */
    uint64_t candidates;      /* candidate pairs verified */
    uint64_t verified;        /* of which >= threshold */
    uint64_t truncated;       /* queries cut short by max_per_band */
    uint64_t clusters_merged; /* times a text linked two existing clusters */
} curate_dedupe_near_stats;

void curate_dedupe_near_get_stats(const curate_dedupe_near *d, curate_dedupe_near_stats *st);
size_t curate_dedupe_near_memory(const curate_dedupe_near *d); /* bytes allocated */

#ifdef __cplusplus
}
#endif
#endif /* CURATE_DEDUPE_H */
