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
    uint32_t *cand;          /* n-gram candidates: positions, then their slots */
    uint64_t *keys;          /* per position: the key of its n-gram */
    size_t cap_slots;
    uint64_t *line_hash, *line_chars; /* per kept line */
    size_t cap_lines;
    uint64_t *seen;          /* 2-gram filter: "once" and "twice" bit sets */
    size_t cap_seen;         /* 64-bit words in each set */
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
    free(q->cand);
    free(q->keys);
    free(q->seen);
    free(q->line_hash);
    free(q->line_chars);
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

/* Scanner state shared by the 16-byte fast path and the per-character
 * path, so the two can take turns anywhere in the text. */
typedef struct scan {
    curate_quality *q;
    pass1 *r;
    int want_words, want_lines;
    const unsigned char *end;
    const unsigned char *word;            /* start of the current word, or NULL */
    uint64_t word_chars;
    unsigned word_cls;
    const unsigned char *line, *line_end; /* trimmed bytes of the open line */
    uint64_t line_c0, line_c1;            /* chars before / after them */
    uint64_t dots;                        /* length of the current run of '.' */
    uint64_t chars;                       /* chars before the scan position */
    size_t lines_kept;
    int nomem;                            /* a line array could not grow */
} scan;

/*
 * Hash of a word's bytes.  Words up to 16 bytes (nearly all) are hashed
 * inline from one or two 8-byte loads; longer ones go to XXH3.  The value
 * depends only on the bytes, never on where the word sits in the text.  A
 * word of up to 8 bytes only needs a cheap bijective scramble: n-gram keys
 * are run through mix64 before anything indexes by them.
 */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

static ALWAYS_INLINE uint64_t word_hash(const unsigned char *p, size_t len,
                                        const unsigned char *end)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull * (uint64_t)(len + 1);
    if (len <= 8) {
        uint64_t v = 0;
        if (end - p >= 8) {
            v = curate__load64(p);
            if (len < 8)
                v &= (1ull << (8 * len)) - 1;
        } else {
            for (size_t i = 0; i < len; i++)
                v |= (uint64_t)p[i] << (8 * i);
        }
        v = (v ^ k) * 0xBF58476D1CE4E5B9ull;
        return v ^ (v >> 31);
    }
    if (len <= 16)
        return mix64(curate__load64(p) ^ mix64(curate__load64(p + len - 8) ^ k));
    return XXH3_64bits(p, len);
}

static ALWAYS_INLINE void end_word(scan *st, const unsigned char *at, uint64_t chars_at)
{
    pass1 *r = st->r;
    r->words++;
    if (st->word_cls & CA_ALPHA)
        r->alpha_words++;
    if (st->word_cls) {
        r->alnum_words++;
        r->alnum_word_chars += st->word_chars;
    }
    if (st->want_words && r->kept_words < CURATE_QUALITY_MAX_ITEMS) {
        curate_quality *q = st->q;
        size_t k = r->kept_words++;
        q->word_hash[k] = word_hash(st->word, (size_t)(at - st->word), st->end);
        q->word_chars[k + 1] = q->word_chars[k] + st->word_chars;
        r->kept_chars = chars_at;
    }
    st->word = NULL;
}

static inline void end_line(scan *st)
{
    pass1 *r = st->r;
    size_t ll = (size_t)(st->line_end - st->line);
    r->lines++;
    if (ll >= 3 && (memcmp(st->line_end - 3, "...", 3) == 0 ||
                    memcmp(st->line_end - 3, "\xE2\x80\xA6", 3) == 0))
        r->ellipsis_lines++;
    if (st->want_lines && st->lines_kept < CURATE_QUALITY_MAX_ITEMS) {
        /* Duplicates are counted after the scan, in a table sized for the
         * lines actually seen (a few per text, so it stays in cache). */
        curate_quality *q = st->q;
        size_t k = st->lines_kept;
        if (k == q->cap_lines) {
            size_t cap = q->cap_lines ? q->cap_lines * 2 : 256;
            uint64_t *a = realloc(q->line_hash, cap * sizeof *a);
            if (a)
                q->line_hash = a;
            uint64_t *b = a ? realloc(q->line_chars, cap * sizeof *b) : NULL;
            if (b)
                q->line_chars = b;
            if (!a || !b) {
                st->nomem = 1;
                st->line = NULL;
                return;
            }
            q->cap_lines = cap;
        }
        q->line_hash[k] = XXH3_64bits(st->line, ll);
        q->line_chars[k] = st->line_c1 - st->line_c0;
        st->lines_kept++;
    }
    st->line = NULL;
}

/* One character at p (whitespace or not); returns the next position. */
static const unsigned char *scan_char(scan *st, const unsigned char *p)
{
    const unsigned char *e = st->end;
    int kind = CURATE__WS_NONE;
    size_t len = 0;
    if (*p >= 0x80 || curate__ws_byte_class[*p])
        len = curate__ws_at(p, e, &kind);
    if (len) {
        if (st->word)
            end_word(st, p, st->chars);
        st->r->ellipses += st->dots / 3;
        st->dots = 0;
        if (kind != CURATE__WS_SPACE && st->line)
            end_line(st);
        st->chars++;
        return p + len;
    }
    unsigned c = *p;
    if (!st->word) {
        st->word = p;
        st->word_chars = 0;
        st->word_cls = 0;
    }
    if (!st->line) {
        st->line = p;
        st->line_c0 = st->chars;
    }
    if (c < 0x80) {
        st->word_cls |= k_ascii_class[c];
        if (c == '.') {
            st->dots++;
        } else {
            st->r->ellipses += st->dots / 3;
            st->dots = 0;
            st->r->hashes += c == '#';
        }
        len = 1;
    } else {
        uint32_t cp = curate__utf8_decode(p, e, &len);
        /* Category lookups only until the word is known to hold a letter:
         * one per word at most in the common case. */
        if (!(st->word_cls & CA_ALPHA))
            st->word_cls |= unicode_class(cp);
        st->r->ellipses += st->dots / 3 + (cp == 0x2026);
        st->dots = 0;
    }
    st->chars++;
    st->word_chars++;
    p += len;
    st->line_end = p;
    st->line_c1 = st->chars;
    return p;
}

/*
 * 16 bytes at p as masks.  Handles only blocks of ASCII whose whitespace
 * is ' ' and '\n' and where no run of dots reaches three (runs of dots
 * only count from three on, so a shorter run changes nothing); returns 0
 * for anything else, which scan_char then takes.  Word and line boundaries
 * are visited in order from the masks, one step per boundary, not per
 * byte.
 */
static int scan_block(scan *st, const unsigned char *p)
{
    curate__v16 v = curate__v16_load(p);
    unsigned nl = curate__v16_eq(v, '\n');
    unsigned dm = curate__v16_eq(v, '.');
    unsigned d1 = st->dots >= 1, d2 = st->dots >= 2;
    unsigned dm1 = (dm << 1) | d1, dm2 = (dm << 2) | (d1 << 1) | d2;
    if (curate__v16_high(v) | (curate__v16_lt(v, 0x20) & ~nl) | (dm & dm1 & dm2 & 0xFFFFu))
        return 0;
    /* A run the character path left behind may have reached three; if it
     * ends here, count it now (if it goes on, it stayed below three). */
    if (!(dm & 1u))
        st->r->ellipses += st->dots / 3;
    unsigned sp = curate__v16_eq(v, ' ');
    unsigned ws = sp | nl, nws = ~ws & 0xFFFFu;
    unsigned am = curate__v16_range(v, 0x20, 'a', 'z');
    unsigned dg = curate__v16_range(v, 0, '0', '9');
    unsigned hm = curate__v16_eq(v, '#');
    if (hm) /* rare; and popcount is a library call without -mpopcnt */
        st->r->hashes += (uint64_t)__builtin_popcount(hm);
    unsigned in_word = st->word != NULL;
    unsigned starts = nws & ((ws << 1) | (in_word ^ 1u));
    unsigned ends = ws & ((nws << 1) | in_word);
    unsigned ev = starts | ends | nl;
    unsigned wk = 0; /* first byte of the current word inside this block */
    const uint64_t base = st->chars;
    while (ev) {
        unsigned k = (unsigned)__builtin_ctz(ev);
        unsigned bit = 1u << k;
        ev &= ev - 1;
        if (ends & bit) {
            unsigned range = (bit - 1u) & ~((1u << wk) - 1u);
            st->word_cls |= ((am & range) ? CA_ALPHA : 0u) | ((dg & range) ? CA_DIGIT : 0u);
            st->word_chars += k - wk;
            st->line_end = p + k;
            st->line_c1 = base + k;
            end_word(st, p + k, base + k);
        }
        if ((nl & bit) && st->line)
            end_line(st);
        if (starts & bit) {
            st->word = p + k;
            st->word_chars = 0;
            st->word_cls = 0;
            wk = k;
            if (!st->line) {
                st->line = p + k;
                st->line_c0 = base + k;
            }
        }
    }
    if (st->word) { /* the last byte is part of a word that goes on */
        unsigned range = 0xFFFFu & ~((1u << wk) - 1u);
        st->word_cls |= ((am & range) ? CA_ALPHA : 0u) | ((dg & range) ? CA_DIGIT : 0u);
        st->word_chars += 16 - wk;
        st->line_end = p + 16;
        st->line_c1 = base + 16;
    }
    /* Runs of dots inside the block are shorter than three; only the one
     * touching the block's end carries over. */
    st->dots = (dm & 0x8000u) ? ((dm & 0x4000u) ? 2 : 1) : 0;
    st->chars = base + 16;
    return 1;
}

static int measure_bytes(curate_quality *q, const unsigned char *s, size_t n, int want_words,
                         int want_lines, pass1 *r)
{
    memset(r, 0, sizeof *r);
    if (want_words) {
        size_t cap = n / 2 + 1;
        if (cap > CURATE_QUALITY_MAX_ITEMS)
            cap = CURATE_QUALITY_MAX_ITEMS;
        if (!words_reserve(q, cap))
            return 0;
        q->word_chars[0] = 0;
    }
    scan st;
    memset(&st, 0, sizeof st);
    st.q = q;
    st.r = r;
    st.want_words = want_words;
    st.want_lines = want_lines;
    st.end = s + n;
    const unsigned char *p = s, *e = s + n;
    while (p < e) {
        if (e - p >= 16 && scan_block(&st, p)) {
            p += 16;
            continue;
        }
        /* A block the fast path refused: take it a character at a time. */
        const unsigned char *stop = e - p > 16 ? p + 16 : e;
        while (p < stop)
            p = scan_char(&st, p);
    }
    if (st.word)
        end_word(&st, e, st.chars);
    r->ellipses += st.dots / 3;
    if (st.line)
        end_line(&st);
    r->chars = st.chars;
    if (st.nomem)
        return 0;
    if (want_lines) {
        if (!table_prepare(&q->lines, st.lines_kept))
            return 0;
        for (size_t k = 0; k < st.lines_kept; k++) {
            slot *sl = table_find(&q->lines, q->line_hash[k]);
            if (sl->count++) {
                r->dup_lines++;
                r->dup_line_chars += q->line_chars[k];
            }
        }
    }
    return 1;
}

static int ngrams_reserve(curate_quality *q, size_t w)
{
    size_t bits = 64;
    while (bits < 8 * w)
        bits *= 2;
    if (w <= q->cap_slots && bits / 64 <= q->cap_seen)
        return 1;
    uint32_t *a = realloc(q->cand, 2 * w * sizeof *a);
    if (!a)
        return 0;
    q->cand = a;
    uint64_t *k = realloc(q->keys, w * sizeof *k);
    if (!k)
        return 0;
    q->keys = k;
    q->cap_slots = w;
    uint64_t *c = realloc(q->seen, 2 * (bits / 64) * sizeof *c);
    if (!c)
        return 0;
    q->seen = c;
    q->cap_seen = bits / 64;
    return 1;
}

#define NGRAM_MIX 0x9E3779B97F4A7C15ull

static inline uint64_t ngram_next(uint64_t key, uint64_t h)
{
    return mix64(key ^ (h * NGRAM_MIX));
}

/* Count one n-gram occurrence exactly and keep the running top; returns
 * its slot. */
static inline slot *ngram_count(table *t, uint64_t key, size_t i, size_t n, const uint64_t *wc,
                                uint32_t *best_count, uint64_t *best_len)
{
    slot *sl = table_find(t, key);
    if (sl->count == 0)
        sl->first = (uint32_t)i;
    uint32_t cnt = ++sl->count;
    if (cnt >= 2 && cnt >= *best_count) {
        /* the n-gram as Gopher measures it: its words joined by single
         * spaces */
        size_t f = sl->first;
        uint64_t len = wc[f + n] - wc[f] + (uint64_t)(n - 1);
        if (cnt > *best_count || len > *best_len) {
            *best_count = cnt;
            *best_len = len;
        }
    }
    return sl;
}

/*
 * Top n-gram shares for n = 2, 3, 4 over the kept words.
 *
 * Most 2-grams of a text occur once and do not matter (a share needs two
 * occurrences).  So 2-grams first go through two bit sets, "seen" and
 * "seen twice", indexed by a hash; only positions whose bit was seen twice
 * (every repeating 2-gram, plus a few bit collisions) are then counted
 * exactly in a hash table.  A 3-gram is only counted where its leading
 * 2-gram occurs at least twice, and a 4-gram where its leading 3-gram
 * does: exact for every n-gram that repeats, since each of its occurrences
 * starts with the same repeating (n-1)-gram.  On prose this skips nearly
 * all of the hash table work.
 */
static int measure_ngrams(curate_quality *q, const pass1 *r, double top[3])
{
    const size_t W = r->kept_words;
    uint32_t best_count[3] = {0, 0, 0};
    uint64_t best_len[3] = {0, 0, 0};
    top[0] = top[1] = top[2] = 0;
    if (W < 2)
        return 1;
    if (!ngrams_reserve(q, W))
        return 0;
    const uint64_t *h = q->word_hash, *wc = q->word_chars;
    /* Shares are relative to the whole text, or to the chars up to the
     * last kept word when the word list was capped. */
    const uint64_t denom = W == r->words ? r->chars : r->kept_chars;

    /* 2-grams: the bit-set filter... */
    size_t bits = 64;
    while (bits < 8 * W)
        bits *= 2;
    const size_t nw64 = bits / 64;
    uint64_t *once = q->seen, *twice = q->seen + nw64, *keys = q->keys;
    memset(q->seen, 0, 2 * nw64 * sizeof *q->seen);
    for (size_t i = 0; i + 2 <= W; i++) {
        uint64_t key = ngram_next(h[i], h[i + 1]);
        keys[i] = key;
        uint64_t b = key & (bits - 1), m = 1ull << (b & 63);
        twice[b >> 6] |= once[b >> 6] & m;
        once[b >> 6] |= m;
    }
    /* ...then exact counts where a bit was seen twice.  cand[] lists the
     * positions counted, with their slots alongside. */
    table *t = &q->ngram[0];
    if (!table_prepare(t, W - 1))
        return 0;
    uint32_t *cand = q->cand, *cslot = q->cand + W;
    size_t nc = 0;
    for (size_t i = 0; i + 2 <= W; i++) {
        uint64_t b = keys[i] & (bits - 1);
        if (twice[b >> 6] & (1ull << (b & 63))) {
            slot *sl = ngram_count(t, keys[i], i, 2, wc, &best_count[0], &best_len[0]);
            cand[nc] = (uint32_t)i;
            cslot[nc++] = (uint32_t)(sl - t->s);
        }
    }

    /* 3- and 4-grams where the leading (n-1)-gram repeats.  keys[i] holds
     * the (n-1)-gram key at position i, extended in place. */
    for (int k = 1; k < 3 && nc; k++) {
        const size_t n = (size_t)k + 2;
        const table *pt = t;
        size_t positions = 0;
        for (size_t c = 0; c < nc; c++)
            positions += pt->s[cslot[c]].count >= 2;
        if (!positions)
            break;
        t = &q->ngram[k];
        if (!table_prepare(t, positions))
            return 0;
        size_t nn = 0;
        for (size_t c = 0; c < nc; c++) {
            size_t i = cand[c];
            if (pt->s[cslot[c]].count < 2 || i + n > W)
                continue;
            uint64_t key = ngram_next(keys[i], h[i + n - 1]);
            keys[i] = key;
            slot *sl = ngram_count(t, key, i, n, wc, &best_count[k], &best_len[k]);
            cand[nn] = (uint32_t)i; /* nn <= c: compacting in place is safe */
            cslot[nn++] = (uint32_t)(sl - t->s);
        }
        nc = nn;
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
