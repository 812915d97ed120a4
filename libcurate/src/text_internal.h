/*
 * text_internal.h - small inline UTF-8 helpers shared by text.c, rules.c and
 * quality.c.  Private to libcurate: not installed, not part of the API.
 *
 * Every helper here assumes valid UTF-8 (checked or repaired beforehand with
 * curate_utf8_check / curate_utf8_repair); they never read past `end`.
 */
#ifndef CURATE_TEXT_INTERNAL_H
#define CURATE_TEXT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Decode the valid UTF-8 character at p (p < end); *len gets its size. */
static inline uint32_t curate__utf8_decode(const unsigned char *p, const unsigned char *end,
                                           size_t *len)
{
    uint32_t c = p[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c < 0xE0 && end - p >= 2) {
        *len = 2;
        return ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    }
    if (c < 0xF0 && end - p >= 3) {
        *len = 3;
        return ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    }
    if (end - p >= 4) {
        *len = 4;
        return ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
               (p[3] & 0x3Fu);
    }
    /* Not reachable on valid input; degrade to one byte rather than overrun. */
    *len = 1;
    return 0xFFFD;
}

/* Encode cp (<= 0x10FFFF, not a surrogate) at o; returns the byte count. */
static inline size_t curate__utf8_encode(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- SWAR: eight bytes at a time in a uint64_t ---------------------------- */

#define CURATE__ONES 0x0101010101010101ull
#define CURATE__HIGHS 0x8080808080808080ull

static inline uint64_t curate__load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* High bit of each byte set iff the byte equals c.  Exact: the sums stay
 * inside their byte, so no carry can make a false positive. */
static inline uint64_t curate__swar_eq(uint64_t w, unsigned char c)
{
    uint64_t x = w ^ (CURATE__ONES * c);
    return ~(((x & ~CURATE__HIGHS) + ~CURATE__HIGHS) | x | ~CURATE__HIGHS);
}

/* High bit of each byte set iff the byte is ASCII and below n (n <= 0x80). */
static inline uint64_t curate__swar_lt(uint64_t w, unsigned char n)
{
    return ~(((w & ~CURATE__HIGHS) + CURATE__ONES * (unsigned char)(0x80 - n)) | w) &
           CURATE__HIGHS;
}


/*
 * 16-byte blocks as bit masks (bit i = byte i), for the scanners that must
 * find word and line boundaries without a branch per byte.  SSE2 (always
 * present on x86-64) does a block in a handful of instructions; elsewhere
 * the SWAR helpers above build the same masks from two 8-byte halves
 * (define CURATE_NO_SIMD to test that path on x86 too).
 */
#if defined(__SSE2__) && !defined(CURATE_NO_SIMD)
#include <emmintrin.h>
typedef __m128i curate__v16;
static inline curate__v16 curate__v16_load(const unsigned char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}
/* bytes equal to c */
static inline unsigned curate__v16_eq(curate__v16 v, unsigned char c)
{
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)c)));
}
/* bytes >= 0x80 */
static inline unsigned curate__v16_high(curate__v16 v)
{
    return (unsigned)_mm_movemask_epi8(v);
}
/* ASCII bytes below c (c <= 0x80); signed compare, high bytes masked off */
static inline unsigned curate__v16_lt(curate__v16 v, unsigned char c)
{
    return (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8((char)c))) &
           ~curate__v16_high(v);
}
/* ASCII bytes in [lo, hi] (both < 0x80), after OR-ing every byte with m */
static inline unsigned curate__v16_range(curate__v16 v, unsigned char m, unsigned char lo,
                                         unsigned char hi)
{
    __m128i x = _mm_or_si128(v, _mm_set1_epi8((char)m));
    __m128i ge = _mm_cmpgt_epi8(x, _mm_set1_epi8((char)(lo - 1)));
    __m128i le = _mm_cmplt_epi8(x, _mm_set1_epi8((char)(hi + 1)));
    return (unsigned)_mm_movemask_epi8(_mm_and_si128(ge, le));
}
#else
typedef struct curate__v16 {
    uint64_t a, b;
} curate__v16;
static inline curate__v16 curate__v16_load(const unsigned char *p)
{
    curate__v16 v = {curate__load64(p), curate__load64(p + 8)};
    return v;
}
static inline unsigned curate__movemask8(uint64_t m)
{
    return (unsigned)((((m & CURATE__HIGHS) >> 7) * 0x0102040810204080ull) >> 56);
}
static inline unsigned curate__v16_eq(curate__v16 v, unsigned char c)
{
    return curate__movemask8(curate__swar_eq(v.a, c)) |
           curate__movemask8(curate__swar_eq(v.b, c)) << 8;
}
static inline unsigned curate__v16_high(curate__v16 v)
{
    return curate__movemask8(v.a) | curate__movemask8(v.b) << 8;
}
static inline unsigned curate__v16_lt(curate__v16 v, unsigned char c)
{
    return curate__movemask8(curate__swar_lt(v.a, c)) |
           curate__movemask8(curate__swar_lt(v.b, c)) << 8;
}
static inline unsigned curate__v16_range(curate__v16 v, unsigned char m, unsigned char lo,
                                         unsigned char hi)
{
    uint64_t a = v.a | (CURATE__ONES * m), b = v.b | (CURATE__ONES * m);
    uint64_t ra = curate__swar_lt(a, (unsigned char)(hi + 1)) & ~curate__swar_lt(a, lo);
    uint64_t rb = curate__swar_lt(b, (unsigned char)(hi + 1)) & ~curate__swar_lt(b, lo);
    return curate__movemask8(ra) | curate__movemask8(rb) << 8;
}
#endif

/* Whitespace kinds returned by curate__ws_at. */
enum {
    CURATE__WS_NONE = 0,
    CURATE__WS_SPACE,   /* horizontal: space, tab, NBSP, U+2000-200A, ... */
    CURATE__WS_BREAK,   /* a line break: LF, CR, VT, FF, NEL, U+2028 */
    CURATE__WS_PARA     /* U+2029 PARAGRAPH SEPARATOR: counts as two breaks */
};

/*
 * Per-byte class for the whitespace scanners: 0 = not whitespace and not a
 * lead byte that may start a non-ASCII whitespace character.
 */
extern const unsigned char curate__ws_byte_class[256];
enum { CURATE__WSB_SPACE = 1, CURATE__WSB_LF, CURATE__WSB_CR, CURATE__WSB_VTFF, CURATE__WSB_LEAD };

/*
 * If a Unicode White_Space character starts at p, return its byte length
 * and store its kind; else return 0.  The ASCII cases come from the table;
 * the multi-byte ones are: U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000.
 */
static inline size_t curate__ws_at(const unsigned char *p, const unsigned char *end, int *kind)
{
    switch (curate__ws_byte_class[p[0]]) {
    case 0:
        return 0;
    case CURATE__WSB_SPACE:
        *kind = CURATE__WS_SPACE;
        return 1;
    case CURATE__WSB_LF:
    case CURATE__WSB_CR:
    case CURATE__WSB_VTFF:
        *kind = CURATE__WS_BREAK;
        return 1;
    default:
        break;
    }
    size_t left = (size_t)(end - p);
    if (p[0] == 0xC2) {
        if (left >= 2 && p[1] == 0x85) {
            *kind = CURATE__WS_BREAK;
            return 2;
        }
        if (left >= 2 && p[1] == 0xA0) {
            *kind = CURATE__WS_SPACE;
            return 2;
        }
        return 0;
    }
    if (left < 3)
        return 0;
    if (p[0] == 0xE2) {
        if (p[1] == 0x80) {
            unsigned c = p[2];
            if (c <= 0x8A || c == 0xAF) {
                *kind = CURATE__WS_SPACE;
                return 3;
            }
            if (c == 0xA8) {
                *kind = CURATE__WS_BREAK;
                return 3;
            }
            if (c == 0xA9) {
                *kind = CURATE__WS_PARA;
                return 3;
            }
            return 0;
        }
        if (p[1] == 0x81 && p[2] == 0x9F) {
            *kind = CURATE__WS_SPACE;
            return 3;
        }
        return 0;
    }
    if ((p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) ||
        (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)) {
        *kind = CURATE__WS_SPACE;
        return 3;
    }
    return 0;
}

#endif /* CURATE_TEXT_INTERNAL_H */
