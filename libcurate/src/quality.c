/*
 * quality.c - Gopher-style quality signals (see curate/quality.h).
 *
 * One pass over the bytes gathers counts, word hashes and line hashes;
 * duplicate lines are found on the way with a hash set, and a second pass
 * over the word hashes fills three n-gram count tables at once.  The
 * tables are open-addressing arrays kept in the curate_quality object and
 * cleared (only the part in use) per text, so steady state allocates
 * nothing.
 */
#include "curate/quality.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>
#include <xxhash.h>

#include "text_internal.h"

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

static const char *const k_filter_names[CURATE_QF_COUNT] = {
    "word_count", "mean_word_length", "symbol_ratio", "ellipsis_lines", "alpha_words",
    "dup_lines",  "dup_line_chars",   "top_2gram",    "top_3gram",      "top_4gram",
};

void curate_quality_opts_default(curate_quality_opts *o)
{
    memset(o, 0, sizeof *o);
    o->enabled = CURATE_QUALITY_ALL_FILTERS;
    o->min_words = 50;
    o->max_words = 100000;
    o->min_mean_word_length = 3;
    o->max_mean_word_length = 10;
    o->max_symbol_ratio = 0.1;
    o->max_ellipsis_lines = 0.3;
    o->min_alpha_words = 0.8;
    o->max_dup_lines = 0.3;
    o->max_dup_line_chars = 0.2;
    o->max_top_ngram[0] = 0.20;
    o->max_top_ngram[1] = 0.18;
    o->max_top_ngram[2] = 0.16;
}

const char *curate_quality_filter_name(curate_quality_filter f)
{
    return (unsigned)f < CURATE_QF_COUNT ? k_filter_names[f] : NULL;
}

curate_quality_filter curate_quality_filter_lookup(const char *name)
{
    for (unsigned i = 0; i < CURATE_QF_COUNT; i++)
        if (strcmp(k_filter_names[i], name) == 0)
            return (curate_quality_filter)i;
    return CURATE_QF_COUNT;
}

curate_status curate_quality_opts_set(curate_quality_opts *o, const char *threshold, double value,
                                      curate_quality_filter *filter)
{
    enum { WORDS, LENGTH, SHARE };
    static const struct {
        const char *name;
        curate_quality_filter f;
        int kind;
        size_t off;
    } k[] = {
        {"min_words", CURATE_QF_WORD_COUNT, WORDS, offsetof(curate_quality_opts, min_words)},
        {"max_words", CURATE_QF_WORD_COUNT, WORDS, offsetof(curate_quality_opts, max_words)},
        {"min_mean_word_length", CURATE_QF_MEAN_WORD_LENGTH, LENGTH,
         offsetof(curate_quality_opts, min_mean_word_length)},
        {"max_mean_word_length", CURATE_QF_MEAN_WORD_LENGTH, LENGTH,
         offsetof(curate_quality_opts, max_mean_word_length)},
        {"max_symbol_ratio", CURATE_QF_SYMBOL_RATIO, SHARE,
         offsetof(curate_quality_opts, max_symbol_ratio)},
        {"max_ellipsis_lines", CURATE_QF_ELLIPSIS_LINES, SHARE,
         offsetof(curate_quality_opts, max_ellipsis_lines)},
        {"min_alpha_words", CURATE_QF_ALPHA_WORDS, SHARE,
         offsetof(curate_quality_opts, min_alpha_words)},
        {"max_dup_lines", CURATE_QF_DUP_LINES, SHARE, offsetof(curate_quality_opts, max_dup_lines)},
        {"max_dup_line_chars", CURATE_QF_DUP_LINE_CHARS, SHARE,
         offsetof(curate_quality_opts, max_dup_line_chars)},
        {"max_top_2gram", CURATE_QF_TOP_2GRAM, SHARE, offsetof(curate_quality_opts, max_top_ngram)},
        {"max_top_3gram", CURATE_QF_TOP_3GRAM, SHARE,
         offsetof(curate_quality_opts, max_top_ngram) + sizeof(double)},
        {"max_top_4gram", CURATE_QF_TOP_4GRAM, SHARE,
         offsetof(curate_quality_opts, max_top_ngram) + 2 * sizeof(double)},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (strcmp(k[i].name, threshold) != 0)
            continue;
        if (!isfinite(value) || value < 0)
            return CURATE_ERR_RANGE;
        char *field = (char *)o + k[i].off;
        if (k[i].kind == WORDS) {
            if (value != floor(value) || value >= 9007199254740992.0)
                return CURATE_ERR_RANGE;
            uint64_t v = (uint64_t)value;
            memcpy(field, &v, sizeof v);
        } else {
            if (k[i].kind == SHARE && value > 1)
                return CURATE_ERR_RANGE;
            memcpy(field, &value, sizeof value);
        }
        o->enabled |= 1u << k[i].f;
        if (filter)
            *filter = k[i].f;
        return CURATE_OK;
    }
    return CURATE_ERR_INVALID;
}

/* ------------------------------------------------------------------------ */
/* Scratch state                                                            */
/* ------------------------------------------------------------------------ */

typedef struct slot {
    uint64_t key;
    uint32_t count;  /* 0: empty */
    uint32_t first;  /* index of the first occurrence */
} slot;

/*
 * Slots are empty (count 0) between texts: instead of clearing the whole
 * array per text, the indices a text filled are listed in used[] and only
 * those are reset.  The mask can then follow each text's size.
 */
typedef struct table {
    slot *s;
    size_t cap;        /* allocated slots, a power of two */
    size_t mask;       /* slots in use for this text - 1 */
    uint32_t *used;    /* slot indices filled by the current text */
    size_t n_used, cap_used;
} table;

struct curate_quality {
    uint64_t *word_hash;   /* per kept word */
    uint64_t *word_chars;  /* prefix sums: chars of words 0..i-1 */
    size_t cap_words;
    table lines, ngram[3];
};

curate_quality *curate_quality_new(curate_error *err)
{
    curate_quality *q = calloc(1, sizeof *q);
    if (!q)
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    return q;
}

static void table_free(table *t)
{
    free(t->s);
    free(t->used);
}

void curate_quality_free(curate_quality *q)
{
    if (!q)
        return;
    free(q->word_hash);
    free(q->word_chars);
    table_free(&q->lines);
    for (int i = 0; i < 3; i++)
        table_free(&q->ngram[i]);
    free(q);
}

/* Empty t and size it for up to items distinct keys (load <= 1/2). */
static int table_prepare(table *t, size_t items)
{
    for (size_t k = 0; k < t->n_used; k++)
        t->s[t->used[k]].count = 0;
    t->n_used = 0;
    size_t need = 16;
    while (need < items * 2)
        need *= 2;
    if (need > t->cap) {
        slot *s = calloc(need, sizeof *s);
        if (!s)
            return 0;
        free(t->s);
        t->s = s;
        t->cap = need;
    }
    if (items > t->cap_used) {
        uint32_t *u = realloc(t->used, items * sizeof *u);
        if (!u)
            return 0;
        t->used = u;
        t->cap_used = items;
    }
    t->mask = need - 1;
    return 1;
}

/* Find or insert key; returns the slot (count 0 means it was just added). */
static inline slot *table_find(table *t, uint64_t key)
{
    size_t i = (size_t)(key ^ (key >> 29)) & t->mask;
    for (;;) {
        slot *s = &t->s[i];
        if (s->count == 0) {
            s->key = key;
            t->used[t->n_used++] = (uint32_t)i;
            return s;
        }
        if (s->key == key)
            return s;
        i = (i + 1) & t->mask;
    }
}

static int words_reserve(curate_quality *q, size_t words)
{
    if (words <= q->cap_words)
        return 1;
    size_t cap = q->cap_words ? q->cap_words : 1024;
    while (cap < words)
        cap *= 2;
    uint64_t *h = realloc(q->word_hash, cap * sizeof *h);
    if (!h)
        return 0;
    q->word_hash = h;
    uint64_t *p = realloc(q->word_chars, (cap + 1) * sizeof *p);
    if (!p)
        return 0;
    q->word_chars = p;
    q->cap_words = cap;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Measuring                                                                */
/* ------------------------------------------------------------------------ */

/* ASCII letter / digit classes for the per-word flags. */
enum { CA_ALPHA = 1, CA_DIGIT = 2 };
static const unsigned char k_ascii_class[128] = {
    ['0'] = CA_DIGIT, ['1'] = CA_DIGIT, ['2'] = CA_DIGIT, ['3'] = CA_DIGIT, ['4'] = CA_DIGIT,
    ['5'] = CA_DIGIT, ['6'] = CA_DIGIT, ['7'] = CA_DIGIT, ['8'] = CA_DIGIT, ['9'] = CA_DIGIT,
#define L(c) [c] = CA_ALPHA, [c + 32] = CA_ALPHA
    L('A'), L('B'), L('C'), L('D'), L('E'), L('F'), L('G'), L('H'), L('I'),
    L('J'), L('K'), L('L'), L('M'), L('N'), L('O'), L('P'), L('Q'), L('R'),
    L('S'), L('T'), L('U'), L('V'), L('W'), L('X'), L('Y'), L('Z'),
#undef L
};

static unsigned unicode_class(uint32_t cp)
{
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return CA_ALPHA;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return CA_DIGIT;
    default:
        return 0;
    }
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
}

/* Gathered by the byte pass. */
typedef struct pass1 {
    uint64_t chars, words, alpha_words, alnum_words, alnum_word_chars;
    uint64_t hashes, ellipses, lines, ellipsis_lines, dup_lines, dup_line_chars;
    size_t kept_words;       /* words with hashes stored (<= MAX_ITEMS) */
    uint64_t kept_chars;     /* chars up to the end of the last kept word */
} pass1;

static int measure_bytes(curate_quality *q, const unsigned char *s, size_t n, int want_words,
                         int want_lines, pass1 *r)
{
    memset(r, 0, sizeof *r);
    if (want_lines) {
        /* Lines <= bytes / 1; size the set for the capped count. */
        size_t cap = n / 2 + 1;
        if (cap > CURATE_QUALITY_MAX_ITEMS)
            cap = CURATE_QUALITY_MAX_ITEMS;
        if (!table_prepare(&q->lines, cap))
            return 0;
    }
    if (want_words) {
        size_t cap = n / 2 + 1;
        if (cap > CURATE_QUALITY_MAX_ITEMS)
            cap = CURATE_QUALITY_MAX_ITEMS;
        if (!words_reserve(q, cap))
            return 0;
        q->word_chars[0] = 0;
    }
    const unsigned char *p = s, *e = s + n;
    const unsigned char *word = NULL;     /* start of the current word */
    uint64_t word_chars = 0;
    unsigned word_cls = 0;
    const unsigned char *line = NULL, *line_end = NULL; /* trimmed line bytes */
    uint64_t line_c0 = 0, line_c1 = 0;                  /* chars before / after it */
    uint64_t dots = 0, chars = 0;
    size_t lines_kept = 0;

    for (;;) {
        int kind = CURATE__WS_NONE;
        size_t len = 0;
        int at_end = p >= e;
        if (!at_end) {
            if (*p < 0x80 && curate__ws_byte_class[*p] == 0)
                len = 0;
            else
                len = curate__ws_at(p, e, &kind);
        }
        if (at_end || len) {
            /* whitespace (or the end): close the word, maybe the line */
            if (word) {
                r->words++;
                if (word_cls & CA_ALPHA)
                    r->alpha_words++;
                if (word_cls) {
                    r->alnum_words++;
                    r->alnum_word_chars += word_chars;
                }
                if (want_words && r->kept_words < CURATE_QUALITY_MAX_ITEMS) {
                    q->word_hash[r->kept_words] = XXH3_64bits(word, (size_t)(p - word));
                    q->word_chars[r->kept_words + 1] = q->word_chars[r->kept_words] + word_chars;
                    r->kept_words++;
                    r->kept_chars = chars;
                }
                word = NULL;
            }
            r->ellipses += dots / 3;
            dots = 0;
            if ((at_end || kind != CURATE__WS_SPACE) && line) {
                size_t ll = (size_t)(line_end - line);
                r->lines++;
                if ((ll >= 3 && memcmp(line_end - 3, "...", 3) == 0) ||
                    (ll >= 3 && memcmp(line_end - 3, "\xE2\x80\xA6", 3) == 0))
                    r->ellipsis_lines++;
                if (want_lines && lines_kept < CURATE_QUALITY_MAX_ITEMS) {
                    slot *sl = table_find(&q->lines, XXH3_64bits(line, ll));
                    if (sl->count++) {
                        r->dup_lines++;
                        r->dup_line_chars += line_c1 - line_c0;
                    }
                    lines_kept++;
                }
                line = NULL;
            }
            if (at_end)
                break;
            chars++;
            p += len;
            continue;
        }
        /* a visible character */
        unsigned c = *p;
        if (!word) {
            word = p;
            word_chars = 0;
            word_cls = 0;
        }
        if (!line) {
            line = p;
            line_c0 = chars;
        }
        if (c < 0x80) {
            word_cls |= k_ascii_class[c];
            if (c == '.') {
                dots++;
            } else {
                r->ellipses += dots / 3;
                dots = 0;
                r->hashes += c == '#';
            }
            len = 1;
        } else {
            uint32_t cp = curate__utf8_decode(p, e, &len);
            /* Category lookups only until the word is known to hold a
             * letter: the common case needs one per word at most. */
            if (!(word_cls & CA_ALPHA))
                word_cls |= unicode_class(cp);
            r->ellipses += dots / 3 + (cp == 0x2026);
            dots = 0;
        }
        chars++;
        word_chars++;
        p += len;
        line_end = p;
        line_c1 = chars;
    }
    r->chars = chars;
    return 1;
}

/* Top n-gram shares for n = 2, 3, 4 over the kept words. */
static int measure_ngrams(curate_quality *q, const pass1 *r, double top[3])
{
    const size_t W = r->kept_words;
    uint32_t best_count[3] = {0, 0, 0};
    uint64_t best_len[3] = {0, 0, 0};
    top[0] = top[1] = top[2] = 0;
    if (W < 2)
        return 1;
    for (int k = 0; k < 3; k++)
        if (W >= (size_t)k + 2 && !table_prepare(&q->ngram[k], W - (size_t)k - 1))
            return 0;
    const uint64_t *h = q->word_hash, *wc = q->word_chars;
    /* Shares are relative to the whole text, or to the chars up to the
     * last kept word when the word list was capped. */
    const uint64_t denom = W == r->words ? r->chars : r->kept_chars;
    for (size_t i = 0; i + 1 < W; i++) {
        uint64_t key = h[i];
        for (int k = 0; k < 3 && i + (size_t)k + 1 < W; k++) {
            size_t n = (size_t)k + 2;
            key = mix64(key ^ (h[i + n - 1] * 0x9E3779B97F4A7C15ull));
            slot *sl = table_find(&q->ngram[k], key);
            if (sl->count == 0)
                sl->first = (uint32_t)i;
            uint32_t cnt = ++sl->count;
            if (cnt < 2 || cnt < best_count[k])
                continue;
            /* the n-gram as Gopher measures it: its words joined by
             * single spaces */
            size_t f = sl->first;
            uint64_t len = wc[f + n] - wc[f] + (uint64_t)(n - 1);
            if (cnt > best_count[k] || len > best_len[k]) {
                best_count[k] = cnt;
                best_len[k] = len;
            }
        }
    }
    for (int k = 0; k < 3; k++) {
        if (best_count[k] >= 2) {
            double share = (double)best_count[k] * (double)best_len[k] / (double)denom;
            top[k] = share > 1 ? 1 : share;
        }
    }
    return 1;
}

curate_status curate_quality_eval(curate_quality *q, const curate_quality_opts *o, const char *s,
                                  size_t n, unsigned flags, curate_quality_signals *sig,
                                  curate_quality_filter *failed)
{
    const unsigned on = o ? o->enabled : 0;
    const int all = !o || (flags & CURATE_QUALITY_ALL_SIGNALS);
    const unsigned ngram_bits =
        (1u << CURATE_QF_TOP_2GRAM) | (1u << CURATE_QF_TOP_3GRAM) | (1u << CURATE_QF_TOP_4GRAM);
    const unsigned line_bits = (1u << CURATE_QF_DUP_LINES) | (1u << CURATE_QF_DUP_LINE_CHARS);
    const int want_words = all || (on & ngram_bits);
    const int want_lines = all || (on & line_bits);
    memset(sig, 0, sizeof *sig);
    *failed = CURATE_QF_COUNT;

    pass1 r;
    if (!measure_bytes(q, (const unsigned char *)s, n, want_words, want_lines, &r))
        return CURATE_ERR_NOMEM;
    sig->chars = r.chars;
    sig->words = r.words;
    sig->lines = r.lines;
    if (r.alnum_words)
        sig->mean_word_length = (double)r.alnum_word_chars / (double)r.alnum_words;
    if (r.words) {
        sig->hash_ratio = (double)r.hashes / (double)r.words;
        sig->ellipsis_ratio = (double)r.ellipses / (double)r.words;
        sig->alpha_words = (double)r.alpha_words / (double)r.words;
    }
    sig->symbol_ratio = sig->hash_ratio > sig->ellipsis_ratio ? sig->hash_ratio : sig->ellipsis_ratio;
    if (r.lines)
        sig->ellipsis_lines = (double)r.ellipsis_lines / (double)r.lines;
    if (want_lines) {
        sig->have_lines = 1;
        if (r.lines)
            sig->dup_lines = (double)r.dup_lines / (double)r.lines;
        if (r.chars)
            sig->dup_line_chars = (double)r.dup_line_chars / (double)r.chars;
    }

#define FAIL(f)                                                                \
    do {                                                                       \
        if (*failed == CURATE_QF_COUNT)                                        \
            *failed = (f);                                                     \
    } while (0)
#define ON(f) (on & (1u << (f)))
    if (ON(CURATE_QF_WORD_COUNT) &&
        (sig->words < o->min_words || (o->max_words && sig->words > o->max_words)))
        FAIL(CURATE_QF_WORD_COUNT);
    if (ON(CURATE_QF_MEAN_WORD_LENGTH) && (sig->mean_word_length < o->min_mean_word_length ||
                                           sig->mean_word_length > o->max_mean_word_length))
        FAIL(CURATE_QF_MEAN_WORD_LENGTH);
    if (ON(CURATE_QF_SYMBOL_RATIO) && sig->symbol_ratio > o->max_symbol_ratio)
        FAIL(CURATE_QF_SYMBOL_RATIO);
    if (ON(CURATE_QF_ELLIPSIS_LINES) && sig->ellipsis_lines > o->max_ellipsis_lines)
        FAIL(CURATE_QF_ELLIPSIS_LINES);
    if (ON(CURATE_QF_ALPHA_WORDS) && sig->alpha_words < o->min_alpha_words)
        FAIL(CURATE_QF_ALPHA_WORDS);
    if (ON(CURATE_QF_DUP_LINES) && sig->dup_lines > o->max_dup_lines)
        FAIL(CURATE_QF_DUP_LINES);
    if (ON(CURATE_QF_DUP_LINE_CHARS) && sig->dup_line_chars > o->max_dup_line_chars)
        FAIL(CURATE_QF_DUP_LINE_CHARS);

    if (all || ((on & ngram_bits) && *failed == CURATE_QF_COUNT)) {
        if (!measure_ngrams(q, &r, sig->top_ngram))
            return CURATE_ERR_NOMEM;
        sig->have_ngrams = 1;
        for (int k = 0; k < 3; k++)
            if (ON(CURATE_QF_TOP_2GRAM + k) && sig->top_ngram[k] > o->max_top_ngram[k])
                FAIL((curate_quality_filter)(CURATE_QF_TOP_2GRAM + k));
    }
#undef ON
#undef FAIL
    return CURATE_OK;
}
