/*
 * curate/text.h - UTF-8 text primitives: validation and repair, Unicode
 * normalization (utf8proc), case folding, whitespace normalization, removal
 * of control and zero-width characters, and word/character counting.
 *
 * Every transforming function appends its result to a curate_buf the caller
 * owns (output may not alias input).  Pure ASCII input takes a fast path
 * that never calls utf8proc: NFC, NFKC and the removal rules are identity
 * or trivial on ASCII, and ASCII case folding is a table lookup.
 *
 * Thread safety: all functions are reentrant.
 */
#ifndef CURATE_TEXT_H
#define CURATE_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Normalization forms. */
typedef enum curate_norm {
    CURATE_NORM_NONE = 0,
    CURATE_NORM_NFC,
    CURATE_NORM_NFKC
} curate_norm;

/*
 * Offset of the first invalid UTF-8 byte in s[0..n), or n if s is valid.
 * Invalid means: stray continuation bytes, truncated sequences, overlong
 * forms, surrogates (U+D800-DFFF) and values above U+10FFFF.
 */
size_t curate_utf8_check(const char *s, size_t n);

/* 1 if s[0..n) is all ASCII (< 0x80). */
int curate_is_ascii(const char *s, size_t n);

/*
 * Append s with every maximal invalid subsequence replaced by U+FFFD (the
 * Unicode "substitution of maximal subparts" practice).  *n_repaired (may be
 * NULL) receives the number of replacements.
 */
curate_status curate_utf8_repair(const char *s, size_t n, curate_buf *out, size_t *n_repaired);

/*
 * Append the normalization of valid UTF-8 s (NFC or NFKC; NONE copies).
 * Invalid UTF-8 gives CURATE_ERR_UTF8 with the offset in err.
 */
curate_status curate_normalize(const char *s, size_t n, curate_norm form, curate_buf *out,
                               curate_error *err);

/* Append the Unicode case folding of valid UTF-8 s (ASCII: tolower). */
curate_status curate_casefold(const char *s, size_t n, curate_buf *out, curate_error *err);

/*
 * Remove control characters (Unicode Cc other than \t and \n; \r\n and lone
 * \r become \n) and zero-width / invisible formatting characters (U+200B-
 * U+200F, U+202A-U+202E, U+2060-U+2064, U+FEFF, U+00AD soft hyphen; U+200D
 * is kept between two non-ASCII characters, where it joins emoji and
 * Indic scripts).  Flags select which.  s must be valid UTF-8.
 * *n_removed (may be NULL) counts removed characters.
 */
enum {
    CURATE_STRIP_CONTROL = 1 << 0,
    CURATE_STRIP_ZERO_WIDTH = 1 << 1
};
curate_status curate_strip_chars(const char *s, size_t n, unsigned flags, curate_buf *out,
                                 size_t *n_removed);

/*
 * Whitespace normalization: every run of Unicode whitespace (White_Space
 * property, including NBSP and ideographic space) inside a line becomes one
 * ASCII space; spaces at line starts and ends are removed; with
 * CURATE_WS_KEEP_NEWLINES, runs containing line breaks become "\n", or
 * "\n\n" when they contained two or more line breaks (paragraphs survive);
 * without it every run becomes " ".  Leading and trailing whitespace of the
 * whole text is removed.  s must be valid UTF-8.
 */
enum { CURATE_WS_KEEP_NEWLINES = 1 << 0 };
curate_status curate_normalize_whitespace(const char *s, size_t n, unsigned flags, curate_buf *out);

/* Number of Unicode code points in valid UTF-8 s. */
size_t curate_utf8_length(const char *s, size_t n);

/* Number of whitespace-separated words. */
size_t curate_word_count(const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_TEXT_H */
