/*
 * curate/quality.h - Gopher-style text quality signals and filters.
 *
 * The heuristics follow the quality filters of the Gopher paper (Rae et
 * al. 2021, "Scaling Language Models", appendix A.1.1), which MassiveText,
 * RefinedWeb, FineWeb and datatrove also use to drop boilerplate, lists of
 * links, spam and machine-generated repetition from web text.  The default
 * thresholds are the paper's.  Definitions used here (language-agnostic,
 * no tokenizer):
 *
 *   word          a maximal run of non-whitespace characters (Unicode
 *                 White_Space, as in curate/text.h); punctuation attached
 *                 to a word is part of it
 *   chars         code points in the whole text, whitespace included
 *   line          a piece of text between line breaks (LF, CR, VT, FF,
 *                 U+0085, U+2028, U+2029), leading and trailing whitespace
 *                 trimmed; lines left empty are not counted
 *
 *   word_count        number of words; Gopher keeps 50..100000
 *   mean_word_length  mean code points per word over words that hold a
 *                     letter or digit; Gopher keeps 3..10
 *   symbol_ratio      the larger of ('#' count / words) and (ellipsis
 *                     count / words), an ellipsis being "..." (each run of
 *                     dots counts len/3) or U+2026 "…"; Gopher: <= 0.1
 *   ellipsis_lines    share of lines ending in "..." or "…"; <= 0.3
 *   alpha_words       share of words holding at least one letter
 *                     (Unicode general category L*); >= 0.8
 *   dup_lines         share of lines equal to an earlier line; <= 0.3
 *   dup_line_chars    code points in those duplicate lines / chars; <= 0.2
 *   top_2gram, top_3gram, top_4gram
 *                     for word n-grams, the share of chars covered by the
 *                     most frequent one: occurrences (overlapping) x its
 *                     length in code points (words plus n-1 separating
 *                     spaces) / chars, capped at 1; an n-gram seen only
 *                     once counts 0 (nothing repeats); ties go to the
 *                     longer n-gram.  Gopher: <= 0.20, 0.18, 0.16
 *
 * Words, lines and n-grams are compared exactly (case and punctuation
 * matter), through 64-bit hashes (XXH3).  The duplicate-line and n-gram
 * counts cover the first CURATE_QUALITY_MAX_ITEMS lines and words of a
 * text, which bounds memory at roughly 40 bytes per word on huge records;
 * the shares are then relative to the chars of that prefix.
 *
 * These filters suit prose in languages that separate words with spaces.
 * For Chinese, Japanese or Thai text, word_count and mean_word_length are
 * meaningless: switch them off.
 *
 * Thread safety: curate_quality_opts functions are pure.  A curate_quality
 * holds scratch tables reused across texts: one per thread.
 */
#ifndef CURATE_QUALITY_H
#define CURATE_QUALITY_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Filters, in the order they are evaluated (the first failure is the
 * reported reason).  Append only. */
typedef enum curate_quality_filter {
    CURATE_QF_WORD_COUNT = 0,
    CURATE_QF_MEAN_WORD_LENGTH,
    CURATE_QF_SYMBOL_RATIO,
    CURATE_QF_ELLIPSIS_LINES,
    CURATE_QF_ALPHA_WORDS,
    CURATE_QF_DUP_LINES,
    CURATE_QF_DUP_LINE_CHARS,
    CURATE_QF_TOP_2GRAM,
    CURATE_QF_TOP_3GRAM,
    CURATE_QF_TOP_4GRAM,
    CURATE_QF_COUNT           /* not a filter; also "none failed" */
} curate_quality_filter;

#define CURATE_QUALITY_ALL_FILTERS ((1u << CURATE_QF_COUNT) - 1u)
#define CURATE_QUALITY_MAX_ITEMS ((size_t)1 << 20)

/* Measured signals of one text (definitions above). */
typedef struct curate_quality_signals {
    uint64_t chars;
    uint64_t words;
    uint64_t lines;              /* non-empty lines */
    double mean_word_length;
    double hash_ratio;           /* '#' per word */
    double ellipsis_ratio;       /* ellipses per word */
    double symbol_ratio;         /* max of the two */
    double ellipsis_lines;
    double alpha_words;
    double dup_lines;
    double dup_line_chars;
    double top_ngram[3];         /* n = 2, 3, 4 */
    int have_lines;              /* dup_lines / dup_line_chars were measured */
    int have_ngrams;             /* top_ngram was measured */
} curate_quality_signals;

/* Thresholds; a filter is active when its bit is set in enabled. */
typedef struct curate_quality_opts {
    unsigned enabled;            /* bits (1u << curate_quality_filter) */
    uint64_t min_words;          /* word_count: 50 */
    uint64_t max_words;          /* word_count: 100000 */
    double min_mean_word_length; /* 3 */
    double max_mean_word_length; /* 10 */
    double max_symbol_ratio;     /* 0.1 */
    double max_ellipsis_lines;   /* 0.3 */
    double min_alpha_words;      /* 0.8 */
    double max_dup_lines;        /* 0.3 */
    double max_dup_line_chars;   /* 0.2 */
    double max_top_ngram[3];     /* 0.20, 0.18, 0.16 */
} curate_quality_opts;

/* Gopher's thresholds with every filter enabled. */
void curate_quality_opts_default(curate_quality_opts *o);

/* "word_count", "mean_word_length", ... (the names above); NULL if f is
 * out of range. */
const char *curate_quality_filter_name(curate_quality_filter f);

/* The filter with that name, or CURATE_QF_COUNT if none. */
curate_quality_filter curate_quality_filter_lookup(const char *name);

/*
 * Set a threshold by name: "min_words", "max_words",
 * "min_mean_word_length", "max_mean_word_length", "max_symbol_ratio",
 * "max_ellipsis_lines", "min_alpha_words", "max_dup_lines",
 * "max_dup_line_chars", "max_top_2gram", "max_top_3gram", "max_top_4gram".
 * Setting one also enables its filter.  CURATE_ERR_INVALID for an unknown
 * name, CURATE_ERR_RANGE for a value out of range (ratios and shares in
 * [0, 1], lengths >= 0, word counts whole numbers below 2^53).
 * *filter (may be NULL) receives the filter the threshold belongs to.
 */
curate_status curate_quality_opts_set(curate_quality_opts *o, const char *threshold, double value,
                                      curate_quality_filter *filter);

/* Scratch state for measuring.  NULL on allocation failure (err set). */
typedef struct curate_quality curate_quality;
curate_quality *curate_quality_new(curate_error *err);
void curate_quality_free(curate_quality *q);    /* accepts NULL */

enum {
    /* Measure every signal even when an early filter already failed (for
     * reports); without it the n-gram and line tables are skipped when
     * their filters are off or the text has already failed. */
    CURATE_QUALITY_ALL_SIGNALS = 1u << 0
};

/*
 * Measure valid UTF-8 s[0..n) and evaluate the enabled filters of o.
 * *failed receives the first filter the text fails, or CURATE_QF_COUNT if
 * it passes them all.  o may be NULL to only measure (then every signal is
 * measured and *failed is CURATE_QF_COUNT).  Only CURATE_ERR_NOMEM can
 * fail.  Cost: one pass over the bytes, plus one pass over the words when
 * n-gram filters run; the tables are reused across calls.
 */
curate_status curate_quality_eval(curate_quality *q, const curate_quality_opts *o, const char *s,
                                  size_t n, unsigned flags, curate_quality_signals *sig,
                                  curate_quality_filter *failed);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_QUALITY_H */
