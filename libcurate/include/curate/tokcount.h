/*
 * curate/tokcount.h - fast token counting with a SentencePiece tokenizer:
 * a cache of per-word counts in front of curate_tokenizer_count().
 *
 * Why: SentencePiece's BPE encoder runs at a few MB/s on one core, and
 * counting tokens (curate-length-bucket, curate-audit) must keep up with
 * the other filters.  Natural text repeats its words, so counting each
 * distinct word once and remembering the count makes counting several
 * times faster without changing a single result.
 *
 * How, and why the counts are exact.  The text is cut before every ASCII
 * space that follows a non-space byte, giving segments of the form
 * "[spaces][non-spaces]" ("Hello", " world.", "  two").  SentencePiece
 * turns each space into U+2581 "▁" and merges pieces only into pieces of
 * its vocabulary, so when no vocabulary piece contains a character other
 * than "▁" followed by "▁", no merge can cross a cut, and the count of the
 * text is the sum of the counts of its segments.  A segment after the
 * first is counted as its bytes without their first space: the model's
 * dummy-prefix "▁" stands in for that space.  The conditions are checked,
 * not assumed:
 *   - at init, every piece is scanned for a non-"▁" character followed by
 *     "▁" (models that attach the space at the end of pieces fail this);
 *   - at init, a battery of probe texts (runs of spaces, leading and
 *     trailing spaces, tabs and newlines, non-ASCII, digits) is counted
 *     both ways; this catches models whose normalizer removes or folds
 *     spaces, or that add no dummy prefix;
 *   - while counting, the first verify_first texts and then one text in
 *     every verify_every are also counted directly.
 * If any check disagrees the cache is switched off for good, and every
 * count from then on is a direct one: the counter never returns a count
 * that differs from curate_tokenizer_count(text, flags = 0) on a text it
 * has verified, and it stops trusting the cache at the first disagreement.
 *
 * Counts are without BOS and EOS (flags 0 of curate_tokenizer_count()).
 *
 * Segments longer than max_segment_bytes (text without spaces: Chinese,
 * Japanese, Thai, long URLs, base64) are counted directly every time, so
 * such text runs at SentencePiece speed.  Once the cache holds
 * max_cache_bytes, new segments are counted directly and not stored.
 *
 * Thread safety: a counter belongs to one thread at a time; several
 * counters may share one tokenizer (the tokenizer is thread-safe).
 */
#ifndef CURATE_TOKCOUNT_H
#define CURATE_TOKCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"
#include "curate/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct curate_token_counter_opts {
    size_t max_cache_bytes;    /* memory for cached segments; 0 = 64 MiB */
    size_t max_segment_bytes;  /* longest cached segment; 0 = 64 */
    uint64_t verify_first;     /* texts always verified first; default 32 */
    uint64_t verify_every;     /* then one text in this many; 0 = never; default 1024 */
    int disable_cache;         /* 1 = count every text directly */
} curate_token_counter_opts;

/* Fill opts with the defaults given above. */
void curate_token_counter_opts_default(curate_token_counter_opts *opts);

typedef struct curate_token_counter curate_token_counter;

/*
 * A counter over tok (borrowed: it must outlive the counter).  opts may be
 * NULL for defaults.  Runs the init checks described above; a model that
 * fails them gets a counter that counts directly (see
 * curate_token_counter_stats.cache_enabled and .why_disabled).  Returns
 * NULL with CURATE_ERR_NOMEM, or CURATE_ERR_TOKENIZER when a probe cannot
 * be encoded at all.  Free with curate_token_counter_free (accepts NULL).
 */
curate_token_counter *curate_token_counter_init(const curate_tokenizer *tok,
                                                const curate_token_counter_opts *opts,
                                                curate_error *err);
void curate_token_counter_free(curate_token_counter *tc);

/*
 * Number of tokens of text[0..len) without BOS/EOS into *n.  Errors are
 * those of curate_tokenizer_count() (CURATE_ERR_TOKENIZER, CURATE_ERR_RANGE,
 * CURATE_ERR_NOMEM); a cache that cannot grow is not an error.
 */
curate_status curate_token_counter_count(curate_token_counter *tc, const char *text, size_t len,
                                         uint64_t *n, curate_error *err);

typedef struct curate_token_counter_stats {
    uint64_t texts;          /* texts counted */
    uint64_t segments;       /* segments looked up in the cache */
    uint64_t hits;           /* of which found */
    uint64_t direct;         /* direct SentencePiece calls (misses, long
                                segments, verifications, disabled cache) */
    uint64_t verified;       /* texts checked against a direct count */
    uint64_t entries;        /* distinct segments cached */
    size_t memory;           /* bytes allocated */
    int cache_enabled;       /* 0 once any check failed (or by option) */
    const char *why_disabled; /* static text, NULL while enabled */
} curate_token_counter_stats;

void curate_token_counter_get_stats(const curate_token_counter *tc,
                                    curate_token_counter_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_TOKCOUNT_H */
