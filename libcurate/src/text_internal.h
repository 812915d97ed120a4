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
