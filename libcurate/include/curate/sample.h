/*
 * curate/sample.h - stratified sampling in one streaming pass: strata keys
 * from record fields, budget allocation across strata (equal, proportional
 * or explicit shares, with per-stratum minimums and redistribution of
 * shortfall), per-stratum reservoirs with bounded memory, record or token
 * budgets; plus the text fingerprint curate-badcase-inject uses to
 * recognise a record that is already in a set.
 *
 * The pieces, each usable alone:
 *
 *   curate_allocate       split an integer budget across strata (pure
 *                         function; exact integer arithmetic)
 *   curate_shares         explicit shares "FIELD=value:share,..."
 *   curate_sampler        the streaming sampler: strata keys, reservoirs,
 *                         final quotas and selection
 *   curate_text_fingerprint  XXH3-128 of whitespace-normalized text
 *
 * How the sampler stays in one pass.  Equal and proportional allocation
 * need the size of every stratum, which is only known at the end of the
 * input.  So every stratum keeps a reservoir large enough for the largest
 * quota it could still receive (the whole budget: one stratum may end up
 * alone), and the final quotas are computed at the end.  Reservoirs are
 * "bottom-k" samples: every record draws a uniform 64-bit key and a
 * stratum keeps the records with the smallest keys.  The k smallest keys of
 * a stratum are a uniform random k-subset of it, and the q smallest among
 * them (q <= k) are a uniform q-subset, so cutting a reservoir down to its
 * quota at the end is still uniform sampling without replacement.  A record
 * pushed out of a reservoir can never come back (later records only make
 * the kept keys smaller), so the caller learns at once that it is not
 * sampled and can pass it on (curate-stratified-sample writes it to its
 * rejects file with reason "not_sampled").
 *
 * Memory: at most min(records in the stratum, capacity) stored items per
 * stratum in record mode, i.e. O(capacity x number of strata) items in the
 * worst case, each holding a copy of its payload bytes (the record line).
 * In token mode a stratum keeps the shortest key-prefix of its records whose
 * tokens reach the capacity.  Never more than the input.
 *
 * Randomness comes only from the curate_rng passed to curate_sampler_add;
 * the same items in the same order with the same generator state give the
 * same selection on every platform.
 *
 * Thread safety: objects belong to one thread at a time; curate_allocate
 * and curate_text_fingerprint are reentrant.
 */
#ifndef CURATE_SAMPLE_H
#define CURATE_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/hash.h"
#include "curate/jsonl.h"
#include "curate/rng.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest budget, availability, minimum or weight accepted anywhere here
 * (2^60): keeps every product of two of them inside 128 bits. */
#define CURATE_SAMPLE_MAX_UNITS ((uint64_t)1 << 60)

/* ------------------------------------------------------------------------ */
/* Allocation                                                               */
/* ------------------------------------------------------------------------ */

/* One stratum as the allocator sees it. */
typedef struct curate_alloc_item {
    uint64_t available; /* units the stratum has; its quota never exceeds it */
    uint64_t weight;    /* relative claim on the budget; 0 = its minimum only */
    uint64_t minimum;   /* wanted floor; the floor used is min(minimum, available) */
    uint64_t quota;     /* out: the units it gets */
} curate_alloc_item;

/* Flags curate_allocate reports (bit set). */
enum {
    CURATE_ALLOC_SHORT = 1 << 0,      /* the strata could not absorb the whole
                                         budget: the quotas add up to less */
    CURATE_ALLOC_MIN_UNMET = 1 << 1   /* the minimums add up to more than the
                                         budget: not every floor is met */
};

/*
 * Split total units across n strata.  The result, in words: every stratum
 * gets at least its floor, never more than it has, and the rest goes in
 * proportion to the weights; a stratum that cannot take its proportional
 * part gives what it has and the difference goes to the others, again in
 * proportion to their weights.  Precisely, with f_i = min(minimum_i,
 * available_i), the real-valued quotas are
 *
 *     r_i = clamp(L * weight_i, f_i, available_i)     (weight_i > 0)
 *     r_i = f_i                                       (weight_i = 0)
 *
 * where the level L is chosen so that sum r_i = R, the budget actually
 * placed: R = min(total, what the strata can take).  The integer quotas
 * are floor(r_i) plus one for the R - sum floor(r_i) strata with the
 * largest fractional parts (ties: the lower index wins), so they add up to
 * exactly R and each is within 1 of r_i.  With weights equal to the
 * availabilities and no floors this is Hamilton's (largest remainder)
 * method.  L and the fractional parts are computed exactly with 128-bit
 * integers, so there is no rounding noise and the result is the same on
 * every platform.
 *
 * When the floors alone exceed total (CURATE_ALLOC_MIN_UNMET), total is
 * spread evenly over the strata, each capped at its floor.  Strata of
 * weight 0 never get more than their floor: when the weighted strata run
 * out, the quotas add up to less than total (CURATE_ALLOC_SHORT, which is
 * also set when sum available < total).
 *
 * items[i].quota is written for every item.  *flags (may be NULL) receives
 * CURATE_ALLOC_* bits.  Errors: CURATE_ERR_RANGE when a value or a sum of
 * availabilities or weights exceeds CURATE_SAMPLE_MAX_UNITS, CURATE_ERR_NOMEM.
 */
curate_status curate_allocate(curate_alloc_item *items, size_t n, uint64_t total, unsigned *flags,
                              curate_error *err);

/* ------------------------------------------------------------------------ */
/* Explicit shares                                                          */
/* ------------------------------------------------------------------------ */

/*
 * Explicit shares of one field's values, written
 *
 *     FIELD=VALUE:SHARE,VALUE:SHARE,...      e.g. bucket=short:0.25,medium:0.5,long:0.25
 *
 * Spaces around tokens are ignored; newlines separate items like commas
 * and "#" starts a comment to the end of the line (so the same text can
 * live in a file, one item per line).  An item splits at its last ':', so
 * values may contain ':' but not ',' or newlines.  Shares are non-negative
 * finite numbers, at least one positive; they are relative weights and are
 * normalized to sum to 1.  A value may be listed once.  "-" stands for
 * records without the field, like everywhere in stratum keys.
 */
typedef struct curate_shares curate_shares;

/* Parse spec[0..len).  NULL with CURATE_ERR_INVALID (message names the
 * problem) or CURATE_ERR_NOMEM in err. */
curate_shares *curate_shares_parse(const char *spec, size_t len, curate_error *err);

/* Read and parse a file (same syntax).  CURATE_ERR_IO when it cannot be
 * read; err's file is set to path. */
curate_shares *curate_shares_load(const char *path, curate_error *err);

void curate_shares_free(curate_shares *s); /* accepts NULL */

const char *curate_shares_field(const curate_shares *s);
size_t curate_shares_count(const curate_shares *s);
/* Value i (not NUL-safe: use *len) and its normalized share. */
const char *curate_shares_value(const curate_shares *s, size_t i, size_t *len);
double curate_shares_share(const curate_shares *s, size_t i);

/* ------------------------------------------------------------------------ */
/* The sampler                                                              */
/* ------------------------------------------------------------------------ */

typedef enum curate_alloc_mode {
    CURATE_ALLOC_EQUAL = 0,     /* every stratum weighs the same */
    CURATE_ALLOC_PROPORTIONAL,  /* weight = the stratum's available units */
    CURATE_ALLOC_SHARES         /* explicit shares of one field (below) */
} curate_alloc_mode;

typedef struct curate_sampler_opts {
    const char *const *fields; /* strata fields (copied); may be empty: one stratum */
    size_t n_fields;
    int by_tokens;             /* 0: units are records; 1: units are the items'
                                  costs (token counts) */
    uint64_t capacity;         /* the largest budget curate_sampler_finish will
                                  be asked for, in units; sizes the reservoirs */
    curate_alloc_mode alloc;
    const curate_shares *shares; /* CURATE_ALLOC_SHARES only (copied); its field
                                  must be one of fields */
    uint64_t min_per_stratum;  /* floor per stratum, in units (0 = none) */
    size_t max_strata;         /* 0 = CURATE_SAMPLE_DEFAULT_MAX_STRATA */
} curate_sampler_opts;

#define CURATE_SAMPLE_DEFAULT_MAX_STRATA ((size_t)10000)

/*
 * An item offered to the sampler.  Only data/len, ordinal and cost matter
 * to it; line and source are the caller's, stored and handed back (e.g. the
 * input line number and the index of the input file).
 */
typedef struct curate_sample_item {
    const char *data;  /* payload bytes, copied by curate_sampler_add */
    size_t len;
    uint64_t ordinal;  /* the caller's sequence number; results come back in
                          increasing ordinal order; ties broken by it too */
    uint64_t cost;     /* units in token mode (ignored in record mode: 1) */
    uint64_t line;     /* caller data */
    uint32_t source;   /* caller data */
    size_t stratum;    /* set by the sampler: the stratum the item is in */
} curate_sample_item;

/*
 * How allocation works across strata.  Equal and proportional allocation
 * call curate_allocate once over all strata.  Explicit shares allocate in
 * two levels: first over the listed values of the share field (weight =
 * share; a group's availability and floor are the sums over its strata),
 * then, inside each group, evenly over its strata (the other --by fields).
 * Strata whose value is not listed, or listed with share 0, get only their
 * floors.  A group that runs short hands its remainder to the other groups
 * by share, so the mix of the share field stays as close to the shares as
 * the data allows.
 *
 * "target" is what a stratum would have received had every stratum had
 * unlimited records; shortfall = max(0, target - available) is what it
 * could not give and was redistributed.
 */
typedef struct curate_sampler curate_sampler;

/* NULL with CURATE_ERR_INVALID (options inconsistent: capacity 0 or above
 * CURATE_SAMPLE_MAX_UNITS, shares missing or on a field that is not a
 * strata field) or CURATE_ERR_NOMEM in err. */
curate_sampler *curate_sampler_init(const curate_sampler_opts *opts, curate_error *err);
void curate_sampler_free(curate_sampler *s); /* accepts NULL */

/*
 * The stratum of a parsed record: its key is the value of each strata
 * field in order - the decoded text for a string, the raw JSON text for
 * any other type (3, true, null, [1,2]), "-" when the field is absent (so
 * an absent field and the string "-" fall in the same stratum, as do the
 * number 3 and the string "3").  A new key creates a stratum.  *index
 * receives its number (creation order; stable until free).  Errors:
 * CURATE_ERR_TOO_LARGE beyond max_strata, CURATE_ERR_JSON for a string
 * that does not decode, CURATE_ERR_NOMEM.
 */
curate_status curate_sampler_stratum_of(curate_sampler *s, const curate_record *rec,
                                        size_t *index, curate_error *err);

/*
 * The same from key parts given directly (n_fields values; values[f] may
 * hold any bytes, value_lens[f] is its length).  For callers that do not
 * have records, such as tests.
 */
curate_status curate_sampler_stratum_of_values(curate_sampler *s, const char *const *values,
                                               const size_t *value_lens, size_t *index,
                                               curate_error *err);

/*
 * Offer item to stratum (an index from curate_sampler_stratum_of*).  Draws
 * one 64-bit key from rng.  Items the sampler will never select (this one,
 * or earlier ones it pushes out of the reservoir) are queued: fetch them
 * with curate_sampler_next_dropped before the next add.  In token mode an
 * item whose cost exceeds the capacity can never be selected: it is
 * dropped at once and not counted in the stratum's available units.
 * Ordinals must increase from call to call (CURATE_ERR_INVALID otherwise).
 * Errors: CURATE_ERR_RANGE when a stratum's units pass
 * CURATE_SAMPLE_MAX_UNITS, CURATE_ERR_NOMEM (the item is then neither
 * kept nor dropped; stop).
 */
curate_status curate_sampler_add(curate_sampler *s, size_t stratum, const curate_sample_item *item,
                                 curate_rng *rng, curate_error *err);

/*
 * The same with the caller's key instead of a random one: a stratum keeps
 * the items of smallest key (ties: smallest ordinal) and selects from the
 * smallest up.  This turns the sampler into a bounded "top k" keeper, for
 * example of the highest scores with curate_score_key.  Do not mix keyed
 * and random adds in one sampler unless that mix is what you mean.
 */
curate_status curate_sampler_add_keyed(curate_sampler *s, size_t stratum,
                                       const curate_sample_item *item, uint64_t key,
                                       curate_error *err);

/*
 * A key that sorts scores from highest to lowest: a > b gives
 * curate_score_key(a) < curate_score_key(b); -0.0 and 0.0 give the same key,
 * infinities sort at the ends, NaN after everything.
 */
uint64_t curate_score_key(double score);

/*
 * Next item dropped by the last add, into *out (data valid until the next
 * add, finish or free).  Returns 1 while there is one, then 0.
 */
int curate_sampler_next_dropped(curate_sampler *s, curate_sample_item *out);

/* Flags set by curate_sampler_finish (bit set). */
enum {
    CURATE_SAMPLE_SHORT = 1 << 0,        /* less than the budget was available */
    CURATE_SAMPLE_MIN_UNMET = 1 << 1,    /* the floors exceed the budget */
    CURATE_SAMPLE_REDISTRIBUTED = 1 << 2 /* some stratum had a shortfall */
};

/*
 * Compute the quotas for budget units (budget <= capacity, else
 * CURATE_ERR_INVALID) and select.  Record mode: each stratum's quota is
 * met exactly with the records of smallest key.  Token mode: a stratum
 * walks its kept records in key order and takes each one whose tokens
 * still fit in its quota (so a long record is skipped, not allowed to
 * overrun); the quota may be left partly unused, and the unused part is
 * not redistributed.  May be called once.  Strata are then listed in
 * sorted key order (bytewise, field by field).
 */
curate_status curate_sampler_finish(curate_sampler *s, uint64_t budget, curate_error *err);

unsigned curate_sampler_flags(const curate_sampler *s);

/* Per-stratum figures after finish (units: records or tokens). */
typedef struct curate_stratum_info {
    const char *const *values; /* key parts, one per field (not NUL-safe) */
    const size_t *value_lens;
    uint64_t records;          /* records offered to the stratum */
    uint64_t available;        /* units available (record mode: = records) */
    uint64_t target;           /* quota with unlimited records (see above) */
    uint64_t quota;            /* final quota */
    uint64_t selected;         /* units selected (record mode: = quota) */
    uint64_t selected_records; /* records selected */
    uint64_t shortfall;        /* max(0, target - available) */
} curate_stratum_info;

size_t curate_sampler_strata_count(const curate_sampler *s);

/* Stratum i in sorted order (after finish), or in creation order before.
 * CURATE_ERR_INVALID for i out of range. */
curate_status curate_sampler_stratum_info(const curate_sampler *s, size_t i,
                                          curate_stratum_info *out);

/* The selected items in increasing ordinal order (after finish). */
size_t curate_sampler_selected_count(const curate_sampler *s);
const curate_sample_item *curate_sampler_selected(const curate_sampler *s, size_t i);

/* Items still held at the end but not selected, in ordinal order (together
 * with every dropped item these are exactly the records not sampled). */
size_t curate_sampler_unselected_count(const curate_sampler *s);
const curate_sample_item *curate_sampler_unselected(const curate_sampler *s, size_t i);

/* Payload bytes currently held (for memory reports). */
uint64_t curate_sampler_bytes_held(const curate_sampler *s);

/* ------------------------------------------------------------------------ */
/* Text fingerprints                                                        */
/* ------------------------------------------------------------------------ */

/*
 * XXH3-128 (seed 0) of the whitespace-normalized form of s[0..n): every run
 * of Unicode whitespace becomes one space, leading and trailing whitespace
 * is dropped (curate_normalize_whitespace without KEEP_NEWLINES; the
 * "whitespace" level of curate-dedupe).  Invalid UTF-8 is first repaired
 * (each bad sequence becomes U+FFFD), so every text has a fingerprint.
 * scratch is the caller's reusable buffer.  Errors: CURATE_ERR_NOMEM.
 */
curate_status curate_text_fingerprint(const char *s, size_t n, curate_buf *scratch,
                                      curate_h128 *out, curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_SAMPLE_H */
