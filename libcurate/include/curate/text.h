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
 * Invalid UTF-8 gives CURATE_ERR_UTF8 with the offset of the first bad byte
 * in err (nothing is appended).
 *
 * The result equals utf8proc's NFC/NFKC of the whole string, except for
 * one deliberate deviation: a run of more than 30 consecutive non-starters
 * (combining marks) gets U+034F COMBINING GRAPHEME JOINER inserted after
 * the 30th, as the Stream-Safe Text Format of UAX #15 prescribes.  Real
 * text never has such runs; the limit keeps reordering of "zalgo" input
 * linear instead of quadratic.
 *
 * Cost: ASCII input is one check plus a copy.  Otherwise utf8proc only sees
 * short segments around characters that normalization may change (tables
 * built once per process, on the first non-ASCII call, in a few ms).
 */
curate_status curate_normalize(const char *s, size_t n, curate_norm form, curate_buf *out,
                               curate_error *err);

/*
 * Append the full Unicode case folding (CaseFolding.txt, statuses C and F:
 * "Straße" -> "strasse") of valid UTF-8 s; ASCII is a table lookup.  No
 * normalization is applied: fold after curate_normalize if both are
 * wanted.  Invalid UTF-8 gives CURATE_ERR_UTF8 with the offset in err.
 */
curate_status curate_casefold(const char *s, size_t n, curate_buf *out, curate_error *err);

/*
 * Remove invisible characters from valid UTF-8 s, appending the rest.
 *
 * CURATE_STRIP_CONTROL acts on control characters (general category Cc):
 *   - "\r\n" becomes "\n"; a lone "\r", "\v", "\f" and U+0085 NEL become
 *     "\n" (they separate lines or pages; deleting them would glue words);
 *   - "\t" and "\n" stay;
 *   - every other C0 control, DEL and the C1 controls U+0080-U+009F are
 *     removed (this includes NUL, which a JSON "\u0000" decodes to).
 * CURATE_STRIP_ZERO_WIDTH removes invisible format characters: U+00AD SOFT
 * HYPHEN, U+061C ARABIC LETTER MARK, U+180E MONGOLIAN VOWEL SEPARATOR,
 * U+200B ZERO WIDTH SPACE, U+200E/U+200F direction marks, U+202A-U+202E
 * bidi embeddings and overrides, U+2060-U+2064 (word joiner, invisible
 * operators), U+2066-U+2069 bidi isolates and U+FEFF (BOM / ZWNBSP).
 * U+200C ZERO WIDTH NON-JOINER and U+200D ZERO WIDTH JOINER are kept when
 * both the previous kept character and the next character are visible
 * non-ASCII characters - not a C1 control and not one of the invisible
 * characters above (emoji ZWJ sequences, Persian and Indic orthography) -
 * and removed otherwise.  Variation selectors are kept.
 *
 * *n_removed (may be NULL) counts removed characters (the "\r" of a CRLF
 * counts; a character turned into "\n" does not).  Only CURATE_ERR_NOMEM
 * can fail.
 */
enum {
    CURATE_STRIP_CONTROL = 1 << 0,
    CURATE_STRIP_ZERO_WIDTH = 1 << 1
};
curate_status curate_strip_chars(const char *s, size_t n, unsigned flags, curate_buf *out,
                                 size_t *n_removed);

/*
 * Offset of the first character curate_strip_chars may act on with these
 * flags, or n if there is none (then stripping would copy s unchanged, and
 * a caller can skip it).  Clean ASCII is checked 8 bytes at a time.
 */
size_t curate_strip_scan(const char *s, size_t n, unsigned flags);

/*
 * Whitespace normalization of valid UTF-8 s, appended to out.  Whitespace
 * is the Unicode White_Space set: tab, LF, VT, FF, CR, space, U+0085,
 * U+00A0 NBSP, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and
 * U+3000 IDEOGRAPHIC SPACE.  Line breaks among them are LF, VT, FF, CR,
 * U+0085 and U+2028 ("\r\n" counts as one break); U+2029 PARAGRAPH
 * SEPARATOR counts as two.
 *
 * Every maximal run of whitespace becomes one separator; runs at the start
 * and end of the text are removed.  With CURATE_WS_KEEP_NEWLINES the
 * separator is "\n\n" for a run with two or more breaks (a paragraph
 * break survives), "\n" for a run with one, " " for a run with none
 * (so trailing spaces on a line disappear).  Without the flag every run
 * becomes " ".  The output is never longer than the input.  Only
 * CURATE_ERR_NOMEM can fail.
 */
enum { CURATE_WS_KEEP_NEWLINES = 1 << 0 };
curate_status curate_normalize_whitespace(const char *s, size_t n, unsigned flags, curate_buf *out);

/*
 * n if valid UTF-8 s is already normalized (curate_normalize_whitespace
 * would copy it unchanged), else a smaller offset k such that s[0..k) is
 * left unchanged by normalization.  It may return less than n for some
 * texts normalization leaves alone (it is conservative about control
 * characters), never n for a text normalization would change.  Checks 8
 * bytes at a time.
 */
size_t curate_whitespace_scan(const char *s, size_t n, unsigned flags);

/* Number of Unicode code points in valid UTF-8 s. */
size_t curate_utf8_length(const char *s, size_t n);

/* Number of words: maximal runs of characters that are not White_Space
 * (as defined for curate_normalize_whitespace). */
size_t curate_word_count(const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_TEXT_H */
