/*
 * curate/langid.h - language identification (CLD2) and writing-script
 * detection.
 *
 * Two independent services live here:
 *
 *   curate_langid_*   which natural language a text is written in, as
 *                     decided by Google's Compact Language Detector 2
 *                     (CLD2, the Debian libcld2 build) behind a C shim, with
 *                     the answer mapped to ISO 639 codes and turned into a
 *                     0..1 confidence score;
 *   curate_script_*   which Unicode script dominates a text, counted by
 *                     this library from code points (CLD2 is not used).
 *
 * The implementation (langid_cld2.cpp) is C++ because CLD2 is; no C++
 * exception crosses this interface: an allocation failure or any other
 * exception inside CLD2 comes back as a status with a message.
 *
 * ---- Language codes ------------------------------------------------------
 *
 * Results use ISO 639-1 (two letters) where that standard has a code, and
 * otherwise the ISO 639-2/3 code CLD2 uses ("ceb" Cebuano, "hmn" Hmong,
 * "haw" Hawaiian, "chr" Cherokee, "syr" Syriac, "lif" Limbu).  "und"
 * (ISO 639-2 "undetermined") means no language was identified.  CLD2's own
 * codes are mapped as follows; every other CLD2 code is used unchanged:
 *
 *     CLD2 code            result   why
 *     "iw"                 "he"     Hebrew: "iw" was withdrawn from 639-1 in 1989
 *     "jw"                 "jv"     Javanese: CLD2 keeps a non-standard code
 *     "in", "ji", "mo"     "id", "yi", "ro"   withdrawn 639-1 codes (not
 *                                   produced by this CLD2, mapped for safety)
 *     "zh-Hant"            "zh"     Traditional Chinese: ISO 639 has one
 *                                   code for Chinese; cld2_code keeps it
 *     "sr-ME"              "sr"     Montenegrin: no ISO 639-1 code
 *     "blu"                "hmn"    Hmong: "blu" is a retired 639-3 code
 *     "un", "xxx"          "und"    CLD2's unknown
 *     "xx-Xxxx"            "und"    CLD2 saw only a script it cannot name a
 *                                   language for (Tifinagh, Vai, Yi, ...)
 *     "zzb" "zzp" "zzh" "zze"  "und"   CLD2's joke pseudo-languages
 *
 * ---- Which languages CLD2 knows -------------------------------------------
 *
 * The tables in Debian's libcld2 (the "small" CLD2 tables, built 2014)
 * identify 95 CLD2 codes, which map to 94 result codes: 71 languages by
 * quadgram statistics (Latin, Cyrillic, Arabic, Hebrew, Devanagari and
 * Bengali scripts), Chinese (simplified and traditional), Japanese and
 * Korean by CJK unigram/bigram statistics, and 20 more that CLD2 decides by
 * script alone because their script is used by one language only (Greek
 * "el", Thai "th", Armenian "hy", Georgian "ka", Tamil "ta", ...).
 * curate_langid_language_count() and curate_langid_language() list them.
 * Scripts that several languages share and that CLD2 has no statistics for
 * (Ethiopic: Amharic and Tigrinya; Tibetan) give "und".
 *
 * ---- Scores ---------------------------------------------------------------
 *
 * CLD2 reports, for up to three languages, the percentage of the scored
 * text bytes in that language (percent) and a normalized score (the
 * language's accumulated n-gram score per 1024 bytes of its text), plus an
 * is_reliable flag for the top ("summary") language.  score combines them:
 *
 *     score = percent/100 * min(1, normalized_score / 512)
 *             * (is_reliable ? 1 : 0.5)
 *
 * rounded to three decimals.  The first factor is the share of the text in
 * the language (mixed texts score lower); the second is the strength of the
 * match (clean paragraphs of every UDHR language in the test set score 387
 * to 3700 per KB, most above 512; weak matches of noise or code score less);
 * the third caps any answer CLD2 itself calls unreliable at 0.5.  So a score
 * above 0.5 always means "CLD2 says reliable", and 1 means "the whole text,
 * strongly".  Score is 0 for "und".
 *
 * ---- Short and long texts ---------------------------------------------------
 *
 * CLD2 is unreliable on very short texts (on UDHR lines of 10-19 characters
 * it is wrong one time in four, and it answers "unknown" for most lines
 * under 10).  A text with fewer letters than opts.min_letters (default 20;
 * letters are code points of Unicode categories L and M) is not shown to
 * CLD2 at all: the result is "und" with short_text set.
 *
 * CLD2's cost grows with the text (it reads about 30 MB/s), so it is shown
 * a sample of long texts, in up to two passes:
 *
 *   quick pass  a text longer than opts.quick_bytes (default 256) is first
 *               sampled down to quick_bytes; if CLD2 answers reliably with
 *               at least CURATE_LANGID_QUICK_MIN_PERCENT (90%) of the sample
 *               in that language, the answer stands (most monolingual
 *               records end here);
 *   full pass   otherwise (and for every text when quick_bytes is 0 or not
 *               below max_bytes) CLD2 sees at most opts.max_bytes (default
 *               2048) bytes: the whole text if it is that short, or a sample.
 *
 * A sample is k windows of equal size spread evenly from the start to the
 * end of the text (k = limit / 128, between 1 and 8), each moved to UTF-8
 * character boundaries and, when a space is within 32 bytes, to word
 * boundaries, joined by newlines.  So percentages describe the whole text,
 * not only its beginning, and a mixed text (which the quick pass does not
 * settle) is judged on the larger sample.  The script is counted over the
 * bytes of the pass that gave the answer.
 *
  * ---- Invalid UTF-8 -----------------------------------------------------------
 *
 * Detection never fails because of the text: bytes that are not valid UTF-8
 * (curate/text.h's definition) count as non-letters, and the copy shown to
 * CLD2 has each invalid byte replaced by a space.  The caller's text is
 * never modified.
 *
 * Thread safety: a curate_langid handle holds scratch memory and belongs to
 * one thread at a time; distinct handles may be used from distinct threads
 * at once (CLD2's tables are read-only; its source also stores two
 * debug-only globals on each call, never read for results).  The curate_script_* functions and the language list are
 * reentrant.
 */
#ifndef CURATE_LANGID_H
#define CURATE_LANGID_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Scripts                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The dominant script of a text, by counting letters (Unicode categories L
 * and M; digits, punctuation, symbols and spaces do not count) per script.
 * Scripts are named by ISO 15924 codes:
 *
 *   Latn Latin      Cyrl Cyrillic    Grek Greek       Armn Armenian
 *   Geor Georgian   Hebr Hebrew      Arab Arabic      Syrc Syriac
 *   Thaa Thaana     Deva Devanagari  Beng Bengali     Guru Gurmukhi
 *   Gujr Gujarati   Orya Oriya       Taml Tamil       Telu Telugu
 *   Knda Kannada    Mlym Malayalam   Sinh Sinhala     Thai Thai
 *   Laoo Lao        Tibt Tibetan     Mymr Myanmar     Khmr Khmer
 *   Mong Mongolian  Ethi Ethiopic    Cher Cherokee    Cans Canadian
 *                                                          Aboriginal
 *   Hani Han        Hira Hiragana    Kana Katakana    Bopo Bopomofo
 *   Hang Hangul     Jpan Japanese (Han + Hiragana + Katakana, see below)
 *   Yiii Yi         Tfng Tifinagh    Vaii Vai         Nkoo N'Ko
 *   Zzzz a letter of a script not in this list
 *   Zyyy no letters at all (digits, punctuation, emoji, empty text)
 *
 * Japanese mixes kanji (Han) with kana.  When Hiragana and Katakana letters
 * together are at least 10% of the Han, Hiragana and Katakana letters, the
 * three are counted as one script "Jpan"; otherwise each counts alone (a
 * Chinese text quoting one Japanese word stays "Hani").  Korean Hanja stay
 * "Hani", Hangul is "Hang": modern Korean text is overwhelmingly Hangul.
 * Fullwidth Latin letters count as Latin, halfwidth katakana as Katakana.
 * Combining marks of the shared blocks (U+0300-U+036F ...) count for no
 * script.  Ties go to the script listed first above.
 */
typedef struct curate_script_result {
    const char *script;  /* ISO 15924 code (static string, see above) */
    double share;        /* letters of that script / all letters, 0..1;
                            0 when there are no letters */
    uint64_t letters;    /* letters counted (code points of categories L, M) */
    uint64_t invalid;    /* bytes that were not valid UTF-8 (not letters) */
} curate_script_result;

/*
 * Count the scripts of s[0..n) into out.  s need not be valid UTF-8 (see
 * the top of this file) nor NUL-terminated.  Returns CURATE_OK, or
 * CURATE_ERR_INVALID when s is NULL with n > 0 or out is NULL.
 */
curate_status curate_script_detect(const char *s, size_t n, curate_script_result *out,
                                   curate_error *err);

/* English name of an ISO 15924 code from the list above ("Latn" ->
 * "Latin"), or NULL when the code is not in the list. */
const char *curate_script_name(const char *code);

/* ------------------------------------------------------------------------ */
/* Language identification                                                  */
/* ------------------------------------------------------------------------ */

/* Defaults (see "Short and long texts" above). */
#define CURATE_LANGID_DEFAULT_MAX_BYTES ((size_t)2048)
#define CURATE_LANGID_DEFAULT_QUICK_BYTES ((size_t)256)
#define CURATE_LANGID_DEFAULT_MIN_LETTERS ((size_t)20)
/* Share of the quick sample the answer needs to settle it. */
#define CURATE_LANGID_QUICK_MIN_PERCENT 90u
/* Nominal size of one sampling window, and the smallest max_bytes and
 * (nonzero) quick_bytes; a sample of L bytes has L/WINDOW_BYTES windows,
 * at most MAX_WINDOWS (larger windows beyond that). */
#define CURATE_LANGID_WINDOW_BYTES ((size_t)128)
#define CURATE_LANGID_MAX_WINDOWS ((size_t)8)
/* Largest max_bytes (CLD2 takes an int length; keep far below it). */
#define CURATE_LANGID_MAX_MAX_BYTES ((size_t)1 << 26)

typedef struct curate_langid_opts {
    size_t max_bytes;    /* bytes shown to CLD2 per text in the full pass,
                            in [CURATE_LANGID_WINDOW_BYTES, CURATE_LANGID_MAX_MAX_BYTES] */
    size_t quick_bytes;  /* sample of the quick pass: 0 (no quick pass) or
                            >= CURATE_LANGID_WINDOW_BYTES; no quick pass
                            either when >= max_bytes */
    size_t min_letters;  /* fewer letters than this: "und" without asking
                            CLD2; 0 lets CLD2 decide on any text */
} curate_langid_opts;

/* Fill opts with the defaults.  Callers change fields afterwards. */
void curate_langid_opts_default(curate_langid_opts *opts);

/* Number of languages in curate_langid_result.top. */
#define CURATE_LANGID_TOP 3

/* One of CLD2's (up to) three languages for a text. */
typedef struct curate_lang_share {
    const char *lang;         /* result code (mapped as above; static) */
    unsigned percent;         /* 1..100: share of the scored text bytes */
    double normalized_score;  /* CLD2's score per 1024 bytes of that text */
} curate_lang_share;

typedef struct curate_langid_result {
    const char *lang;       /* result code, "und" when unknown (static string) */
    const char *cld2_code;  /* CLD2's own code for lang ("iw", "zh-Hant",
                               "un"); "un" when CLD2 was not asked (static) */
    double score;           /* 0..1, see "Scores"; 0 for "und" */
    int reliable;           /* CLD2's is_reliable for lang (0 for "und") */
    int short_text;         /* 1: fewer than min_letters letters, CLD2 not asked */
    curate_lang_share top[CURATE_LANGID_TOP]; /* best first; codes merged
                               when two CLD2 codes map to one (zh + zh-Hant),
                               "und" and 0% entries left out */
    size_t n_top;           /* entries used in top, 0..3 */
    curate_script_result script; /* dominant script of the examined bytes */
    size_t bytes_examined;  /* bytes of the text the answering pass examined
                               (all of it, or the sampled windows) */
    unsigned passes;        /* passes run: 1, or 2 when the quick pass did
                               not settle the answer (0 after an error) */
    uint64_t text_bytes;    /* bytes CLD2 scored (letters, after its own
                               removal of repeated and non-letter text) */
} curate_langid_result;

typedef struct curate_langid curate_langid;

/*
 * A detector with its options and scratch space.  opts may be NULL for the
 * defaults.  Returns NULL and fills err on failure: CURATE_ERR_INVALID for
 * max_bytes or quick_bytes out of range, CURATE_ERR_NOMEM.  Free with
 * curate_langid_free().
 */
curate_langid *curate_langid_init(const curate_langid_opts *opts, curate_error *err);

/* Release the detector; accepts NULL. */
void curate_langid_free(curate_langid *id);

/*
 * Identify the language of text[0..n) (UTF-8 expected; see "Invalid
 * UTF-8") and fill out.  The text is only read.  Returns CURATE_OK,
 * CURATE_ERR_INVALID (NULL arguments), CURATE_ERR_NOMEM, or
 * CURATE_ERR_LANGID when CLD2 failed in another way (an exception; the
 * message says which).  On error out is set to an "und" result.
 */
curate_status curate_langid_detect(curate_langid *id, const char *text, size_t n,
                                   curate_langid_result *out, curate_error *err);

/*
 * The result code for a CLD2 language code (the mapping table above):
 * "iw" -> "he", "zh-Hant" -> "zh", "un" -> "und"; codes without a rule are
 * returned as given (the same pointer).  NULL gives "und".
 */
const char *curate_langid_code_from_cld2(const char *cld2_code);

/*
 * The languages CLD2's linked tables can answer, in order of result code
 * (94 entries for Debian's libcld2).  curate_langid_language() returns 0 and
 * sets *code ("en") and *name ("English") for i < count, or returns -1 for i
 * out of range.  Names are static English names.
 */
size_t curate_langid_language_count(void);
int curate_langid_language(size_t i, const char **code, const char **name);

/* 1 if code is in that list or is "und", else 0. */
int curate_langid_language_known(const char *code);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_LANGID_H */
