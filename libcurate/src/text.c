/*
 * text.c - UTF-8 validation and repair, normalization, case folding,
 * invisible-character removal and whitespace normalization.
 *
 * Speed matters here: curate-clean runs every function on every record.
 * The common input is English-like web text that is pure ASCII or nearly
 * so, hence:
 *   - validation and the ASCII test skip 8 bytes at a time;
 *   - normalization never calls utf8proc on ASCII, and on other text only
 *     on short "segments" around characters that normalization can change
 *     or that can interact with their neighbours (see norm_tables_init);
 *   - the removal and whitespace passes are single byte loops driven by a
 *     256-entry table and only decode a character at a candidate lead byte.
 * Each fast path has a reference to be tested against: utf8proc itself
 * (tests/unit/test_text.c compares on random strings).
 */
#include "curate/text.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text_internal.h"

/* ------------------------------------------------------------------------ */
/* Tables                                                                   */
/* ------------------------------------------------------------------------ */

const unsigned char curate__ws_byte_class[256] = {
    ['\t'] = CURATE__WSB_SPACE, [' '] = CURATE__WSB_SPACE,
    ['\n'] = CURATE__WSB_LF,    ['\r'] = CURATE__WSB_CR,
    ['\v'] = CURATE__WSB_VTFF,  ['\f'] = CURATE__WSB_VTFF,
    [0xC2] = CURATE__WSB_LEAD,  [0xE1] = CURATE__WSB_LEAD,
    [0xE2] = CURATE__WSB_LEAD,  [0xE3] = CURATE__WSB_LEAD,
};

/* ------------------------------------------------------------------------ */
/* Validation and repair                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Inspect the sequence at p (p[0] >= 0x80).  Returns its length if it is a
 * valid character; otherwise returns 0 and stores in *bad the length of the
 * "maximal subpart" (Unicode 15, section 3.9, U+FFFD substitution): the
 * longest prefix that could still have begun a valid sequence, at least 1.
 */
static size_t utf8_seq(const unsigned char *p, size_t left, size_t *bad)
{
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800-DFFF surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *bad = 1; /* 80-BF stray continuation, C0/C1 overlong, F5-FF */
        return 0;
    }
    if (left < 2 || p[1] < lo || p[1] > hi) {
        *bad = 1;
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if (i >= left || (p[i] & 0xC0) != 0x80) {
            *bad = i;
            return 0;
        }
    }
    return need;
}

size_t curate_utf8_check(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        while (i + 8 <= n && (curate__load64(p + i) & CURATE__HIGHS) == 0)
            i += 8;
        if (i >= n)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t bad;
        size_t k = utf8_seq(p + i, n - i, &bad);
        if (k == 0)
            return i;
        i += k;
    }
    return n;
}

int curate_is_ascii(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t acc = 0;
    size_t i = 0;
    /* No early exit inside the block: the OR chain vectorises. */
    for (; i + 32 <= n; i += 32) {
        acc |= curate__load64(p + i) | curate__load64(p + i + 8) | curate__load64(p + i + 16) | curate__load64(p + i + 24);
        if (acc & CURATE__HIGHS)
            return 0;
    }
    for (; i + 8 <= n; i += 8)
        acc |= curate__load64(p + i);
    unsigned tail = 0;
    for (; i < n; i++)
        tail |= p[i];
    return (acc & CURATE__HIGHS) == 0 && tail < 0x80;
}

curate_status curate_utf8_repair(const char *s, size_t n, curate_buf *out, size_t *n_repaired)
{
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    const unsigned char *p = (const unsigned char *)s;
    size_t repaired = 0, copied = 0, i = 0;
    if (n_repaired)
        *n_repaired = 0;
    while (i < n) {
        size_t bad_at = i + curate_utf8_check(s + i, n - i);
        if (bad_at >= n)
            break;
        size_t bad = 1;
        utf8_seq(p + bad_at, n - bad_at, &bad);
        if (curate_buf_append(out, s + copied, bad_at - copied) != CURATE_OK ||
            curate_buf_append(out, fffd, 3) != CURATE_OK)
            return CURATE_ERR_NOMEM;
        repaired++;
        i = copied = bad_at + bad;
    }
    if (curate_buf_append(out, s + copied, n - copied) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    if (n_repaired)
        *n_repaired = repaired;
    return CURATE_OK;
}

static curate_status utf8_error(curate_error *err, size_t at)
{
    curate_error_set(err, CURATE_ERR_UTF8, "invalid UTF-8");
    curate_error_at_offset(err, at);
    return CURATE_ERR_UTF8;
}

size_t curate_utf8_length(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* ------------------------------------------------------------------------ */
/* Normalization                                                            */
/* ------------------------------------------------------------------------ */

/*
 * "Inert" code points, one bit set per form.  A code point is inert when it
 * has combining class 0, normalizes to itself on its own, and never
 * composes with a character before it.  Then normalization can be split
 * just before it (UAX #15, section 9: such a character is a boundary), and
 * a run of inert characters needs no work at all.  Only the character right
 * before a non-inert one has to join it in a segment, because it may
 * compose forward with it (e + U+0301 -> U+00E9).
 *
 * "Never composes backward" is derived from utf8proc's own data: any code
 * point that appears after the first position in the canonical
 * decomposition of some character is treated as a possible second element.
 * That is a superset of the real set (NFC_Quick_Check=Maybe), which only
 * costs a few needless utf8proc calls.  The tables are built once, on the
 * first non-ASCII input, in a few milliseconds.
 */
#define CP_LIMIT 0x110000u
static uint64_t g_inert[2][CP_LIMIT / 64];
static pthread_once_t g_inert_once = PTHREAD_ONCE_INIT;

static const utf8proc_option_t k_norm_opts[2] = {
    UTF8PROC_STABLE | UTF8PROC_COMPOSE,
    UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
};

static inline int bit_get(const uint64_t *set, uint32_t cp)
{
    return (int)((set[cp >> 6] >> (cp & 63)) & 1u);
}

static inline void bit_put(uint64_t *set, uint32_t cp, int v)
{
    if (v)
        set[cp >> 6] |= 1ull << (cp & 63);
    else
        set[cp >> 6] &= ~(1ull << (cp & 63));
}

/* Does cp normalize to itself under opts? */
static int norm_stays(uint32_t cp, utf8proc_option_t opts)
{
    utf8proc_int32_t tmp[32];
    int bc = 0;
    utf8proc_ssize_t r = utf8proc_decompose_char((utf8proc_int32_t)cp, tmp, 32, opts, &bc);
    if (r < 1 || r > 32)
        return 0;
    r = utf8proc_normalize_utf32(tmp, r, opts);
    return r == 1 && (uint32_t)tmp[0] == cp;
}

static void norm_tables_init(void)
{
    static uint64_t tails[CP_LIMIT / 64];
    for (uint32_t cp = 0; cp < CP_LIMIT; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        const utf8proc_property_t *pr = utf8proc_get_property((utf8proc_int32_t)cp);
        if (pr->combining_class != 0)
            continue;
        int hangul = cp >= 0xAC00 && cp <= 0xD7A3;
        if (pr->decomp_seqindex == UINT16_MAX && !hangul) {
            bit_put(g_inert[0], cp, 1);
            bit_put(g_inert[1], cp, 1);
            continue;
        }
        bit_put(g_inert[0], cp, norm_stays(cp, k_norm_opts[0]));
        bit_put(g_inert[1], cp, norm_stays(cp, k_norm_opts[1]));
        if (hangul || pr->decomp_type == 0) {
            utf8proc_int32_t d[32];
            int bc = 0;
            utf8proc_ssize_t r =
                utf8proc_decompose_char((utf8proc_int32_t)cp, d, 32, UTF8PROC_DECOMPOSE, &bc);
            for (utf8proc_ssize_t k = 1; k < r && k < 32; k++)
                bit_put(tails, (uint32_t)d[k], 1);
        }
    }
    for (size_t w = 0; w < CP_LIMIT / 64; w++) {
        g_inert[0][w] &= ~tails[w];
        g_inert[1][w] &= ~tails[w];
    }
}

/* A growable code point buffer with a small inline part (no malloc for
 * the usual few-character segments). */
typedef struct cpbuf {
    utf8proc_int32_t small[128];
    utf8proc_int32_t *heap;
    size_t cap;
    utf8proc_int32_t *data;
} cpbuf;

/* Normalize one segment and append it. */
static curate_status norm_segment(const unsigned char *s, size_t n, utf8proc_option_t opts,
                                  cpbuf *cb, curate_buf *out)
{
    for (;;) {
        utf8proc_ssize_t r = utf8proc_decompose_custom(s, (utf8proc_ssize_t)n, cb->data,
                                                       (utf8proc_ssize_t)cb->cap, opts, NULL, NULL);
        if (r < 0)
            return r == UTF8PROC_ERROR_NOMEM ? CURATE_ERR_NOMEM : CURATE_ERR_UTF8;
        /* reencode writes UTF-8 in place and needs one spare byte. */
        if ((size_t)r + 1 <= cb->cap) {
            r = utf8proc_reencode(cb->data, r, opts);
            if (r < 0)
                return CURATE_ERR_INTERNAL;
            return curate_buf_append(out, cb->data, (size_t)r);
        }
        size_t want = (size_t)r + 1 + (size_t)r / 2;
        if (want > SIZE_MAX / sizeof *cb->heap)
            return CURATE_ERR_NOMEM;
        utf8proc_int32_t *h = realloc(cb->heap, want * sizeof *h);
        if (!h)
            return CURATE_ERR_NOMEM;
        cb->heap = cb->data = h;
        cb->cap = want;
    }
}

/* Stream-Safe Text Format (UAX #15, section 13): after 30 non-starters in
 * a row a COMBINING GRAPHEME JOINER is inserted.  Real text never comes
 * close; it keeps utf8proc's quadratic reordering of marks bounded on
 * "zalgo" input. */
#define MAX_NONSTARTERS 30
static const char k_cgj[2] = {(char)0xCD, (char)0x8F}; /* U+034F */

curate_status curate_normalize(const char *s, size_t n, curate_norm form, curate_buf *out,
                               curate_error *err)
{
    size_t bad = curate_utf8_check(s, n);
    if (bad < n)
        return utf8_error(err, bad);
    if (form == CURATE_NORM_NONE || curate_is_ascii(s, n)) {
        if (curate_buf_append(out, s, n) != CURATE_OK)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return CURATE_OK;
    }
    if (form != CURATE_NORM_NFC && form != CURATE_NORM_NFKC)
        return curate_error_set(err, CURATE_ERR_INVALID, "unknown normalization form");
    pthread_once(&g_inert_once, norm_tables_init);
    const int fi = form == CURATE_NORM_NFKC;
    const uint64_t *inert = g_inert[fi];
    const utf8proc_option_t opts = k_norm_opts[fi];

    cpbuf cb;
    cb.heap = NULL;
    cb.data = cb.small;
    cb.cap = sizeof cb.small / sizeof cb.small[0];

    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    const unsigned char *copied = p, *prev = NULL;
    curate_status st = CURATE_OK;
    while (p < e) {
        if (*p < 0x80) {
            prev = p++;
            continue;
        }
        size_t len;
        uint32_t cp = curate__utf8_decode(p, e, &len);
        if (bit_get(inert, cp)) {
            prev = p;
            p += len;
            continue;
        }
        /* A segment: the inert character before (if any), this one, and
         * every following non-inert character. */
        const unsigned char *seg = prev ? prev : p;
        const unsigned char *q = p + len;
        unsigned run = utf8proc_get_property((utf8proc_int32_t)cp)->combining_class ? 1u : 0u;
        int split = 0;
        while (q < e && *q >= 0x80) {
            uint32_t c2 = curate__utf8_decode(q, e, &len);
            if (bit_get(inert, c2))
                break;
            if (utf8proc_get_property((utf8proc_int32_t)c2)->combining_class) {
                if (++run > MAX_NONSTARTERS) {
                    split = 1;
                    break;
                }
            } else {
                run = 0;
            }
            q += len;
        }
        if (curate_buf_append(out, copied, (size_t)(seg - copied)) != CURATE_OK) {
            st = CURATE_ERR_NOMEM;
            break;
        }
        st = norm_segment(seg, (size_t)(q - seg), opts, &cb, out);
        if (st == CURATE_OK && split)
            st = curate_buf_append(out, k_cgj, 2);
        if (st != CURATE_OK)
            break;
        copied = p = q;
        prev = NULL;
    }
    if (st == CURATE_OK && curate_buf_append(out, copied, (size_t)(e - copied)) != CURATE_OK)
        st = CURATE_ERR_NOMEM;
    free(cb.heap);
    if (st != CURATE_OK)
        return curate_error_set(err, st, "normalization failed: %s", curate_strerror(st));
    return CURATE_OK;
}

/* ------------------------------------------------------------------------ */
/* Case folding                                                             */
/* ------------------------------------------------------------------------ */

curate_status curate_casefold(const char *s, size_t n, curate_buf *out, curate_error *err)
{
    size_t bad = curate_utf8_check(s, n);
    if (bad < n)
        return utf8_error(err, bad);
    /* ASCII folds in place, so n bytes cover that; longer foldings
     * (U+0390 -> 3 code points) reserve more as they come. */
    if (curate_buf_reserve(out, n) != CURATE_OK)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    size_t o = out->len;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            out->data[o++] = (char)(c - 'A' < 26u ? c + 32 : c);
            p++;
            continue;
        }
        size_t len;
        uint32_t cp = curate__utf8_decode(p, e, &len);
        const utf8proc_property_t *pr = utf8proc_get_property((utf8proc_int32_t)cp);
        if (pr->casefold_seqindex == UINT16_MAX) {
            memcpy(out->data + o, p, len);
            o += len;
            p += len;
            continue;
        }
        utf8proc_int32_t f[8];
        int bc = 0;
        utf8proc_ssize_t r =
            utf8proc_decompose_char((utf8proc_int32_t)cp, f, 8, UTF8PROC_CASEFOLD, &bc);
        if (r < 1 || r > 8)
            return curate_error_set(err, CURATE_ERR_INTERNAL, "case folding failed");
        /* Worst case 4 bytes per folded code point, plus what is left. */
        out->len = o;
        if (curate_buf_reserve(out, (size_t)r * 4 + (size_t)(e - p)) != CURATE_OK)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        for (utf8proc_ssize_t k = 0; k < r; k++)
            o += curate__utf8_encode((uint32_t)f[k], (unsigned char *)out->data + o);
        p += len;
    }
    out->len = o;
    out->data[o] = 0;
    return CURATE_OK;
}

/* ------------------------------------------------------------------------ */
/* Removal of control and invisible characters                              */
/* ------------------------------------------------------------------------ */

/* Bytes that may start something curate_strip_chars acts on. */
enum { SB_CTRL = 1, SB_LEAD = 2 };
static const unsigned char k_strip_byte[256] = {
    [0x00] = SB_CTRL, [0x01] = SB_CTRL, [0x02] = SB_CTRL, [0x03] = SB_CTRL,
    [0x04] = SB_CTRL, [0x05] = SB_CTRL, [0x06] = SB_CTRL, [0x07] = SB_CTRL,
    [0x08] = SB_CTRL, [0x0B] = SB_CTRL, [0x0C] = SB_CTRL, [0x0D] = SB_CTRL,
    [0x0E] = SB_CTRL, [0x0F] = SB_CTRL, [0x10] = SB_CTRL, [0x11] = SB_CTRL,
    [0x12] = SB_CTRL, [0x13] = SB_CTRL, [0x14] = SB_CTRL, [0x15] = SB_CTRL,
    [0x16] = SB_CTRL, [0x17] = SB_CTRL, [0x18] = SB_CTRL, [0x19] = SB_CTRL,
    [0x1A] = SB_CTRL, [0x1B] = SB_CTRL, [0x1C] = SB_CTRL, [0x1D] = SB_CTRL,
    [0x1E] = SB_CTRL, [0x1F] = SB_CTRL, [0x7F] = SB_CTRL,
    [0xC2] = SB_LEAD, [0xD8] = SB_LEAD, [0xE1] = SB_LEAD, [0xE2] = SB_LEAD, [0xEF] = SB_LEAD,
};

/* What to do with a non-ASCII character. */
enum { ZA_KEEP = 0, ZA_DROP_CTRL, ZA_NEWLINE_CTRL, ZA_DROP_ZW, ZA_JOINER };

static int zw_action(uint32_t cp)
{
    if (cp >= 0x80 && cp <= 0x9F)
        return cp == 0x85 ? ZA_NEWLINE_CTRL : ZA_DROP_CTRL;
    if (cp == 0x200C || cp == 0x200D)
        return ZA_JOINER;
    if (cp == 0x00AD || cp == 0x061C || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
        (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) ||
        (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF)
        return ZA_DROP_ZW;
    return ZA_KEEP;
}

/* A character that may stand on either side of a kept joiner: not ASCII
 * and not itself one of the invisible characters. */
static int joinable(uint32_t cp)
{
    return cp >= 0x80 && zw_action(cp) == ZA_KEEP;
}

/* Skip to the first byte at p that may need the strip pass: a C0 control
 * other than tab and LF, DEL, or any non-ASCII byte. */
static inline const unsigned char *strip_skip(const unsigned char *p, const unsigned char *e)
{
    while (e - p >= 16) {
        curate__v16 v = curate__v16_load(p);
        unsigned m = (curate__v16_lt(v, 0x20) & ~curate__v16_eq(v, '\t') & ~curate__v16_eq(v, '\n')) |
                     curate__v16_eq(v, 0x7F) | curate__v16_high(v);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return p;
}

/* Would curate_strip_chars act on the character at p (given flags)? */
static int strip_acts(const unsigned char *p, const unsigned char *e, unsigned flags, size_t *len)
{
    unsigned cls = k_strip_byte[*p];
    *len = 1;
    if (cls == 0)
        return 0;
    if (cls == SB_CTRL)
        return (flags & CURATE_STRIP_CONTROL) != 0;
    uint32_t cp = curate__utf8_decode(p, e, len);
    switch (zw_action(cp)) {
    case ZA_DROP_CTRL:
    case ZA_NEWLINE_CTRL:
        return (flags & CURATE_STRIP_CONTROL) != 0;
    case ZA_DROP_ZW:
    case ZA_JOINER:
        return (flags & CURATE_STRIP_ZERO_WIDTH) != 0;
    default:
        return 0;
    }
}

size_t curate_strip_scan(const char *s, size_t n, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        p = strip_skip(p, e);
        if (p >= e)
            break;
        size_t len;
        if (strip_acts(p, e, flags, &len))
            return (size_t)(p - (const unsigned char *)s);
        p += len;
    }
    return n;
}

curate_status curate_strip_chars(const char *s, size_t n, unsigned flags, curate_buf *out,
                                 size_t *n_removed)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    const unsigned char *copied = p;
    const size_t out_start = out->len;
    const int ctrl = (flags & CURATE_STRIP_CONTROL) != 0;
    const int zw = (flags & CURATE_STRIP_ZERO_WIDTH) != 0;
    size_t removed = 0;
    if (n_removed)
        *n_removed = 0;
    if (curate_buf_reserve(out, n) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    /* The clean prefix is copied as it is. */
    p += curate_strip_scan(s, n, flags);

#define FLUSH_TO(ptr)                                                                  \
    do {                                                                               \
        if (curate_buf_append(out, copied, (size_t)((ptr) - copied)) != CURATE_OK)     \
            return CURATE_ERR_NOMEM;                                                   \
    } while (0)

    while (p < e) {
        p = strip_skip(p, e);
        if (p >= e)
            break;
        unsigned c = *p;
        unsigned cls = k_strip_byte[c];
        if (cls == 0) {
            p++;
            continue;
        }
        if (cls == SB_CTRL) {
            if (!ctrl) {
                p++;
                continue;
            }
            FLUSH_TO(p);
            if (c == '\r' && p + 1 < e && p[1] == '\n') {
                removed++; /* the CR of CRLF; the LF stays */
            } else if (c == '\r' || c == '\v' || c == '\f') {
                if (curate_buf_append_char(out, '\n') != CURATE_OK)
                    return CURATE_ERR_NOMEM;
            } else {
                removed++;
            }
            copied = ++p;
            continue;
        }
        size_t len;
        uint32_t cp = curate__utf8_decode(p, e, &len);
        int act = zw_action(cp);
        if (act == ZA_KEEP || ((act == ZA_DROP_CTRL || act == ZA_NEWLINE_CTRL) && !ctrl) ||
            ((act == ZA_DROP_ZW || act == ZA_JOINER) && !zw)) {
            p += len;
            continue;
        }
        FLUSH_TO(p);
        if (act == ZA_NEWLINE_CTRL) {
            if (curate_buf_append_char(out, '\n') != CURATE_OK)
                return CURATE_ERR_NOMEM;
        } else if (act == ZA_JOINER) {
            /* Keep ZWJ/ZWNJ between two visible non-ASCII characters
             * (emoji sequences, Indic and Persian orthography). */
            int keep = 0;
            if (p + len < e && out->len > out_start) {
                size_t nlen;
                uint32_t next = curate__utf8_decode(p + len, e, &nlen);
                const unsigned char *ob = (const unsigned char *)out->data;
                size_t b = out->len - 1;
                while (b > out_start && (ob[b] & 0xC0) == 0x80)
                    b--;
                size_t plen;
                uint32_t prevc = curate__utf8_decode(ob + b, ob + out->len, &plen);
                keep = joinable(prevc) && joinable(next);
            }
            if (keep) {
                if (curate_buf_append(out, p, len) != CURATE_OK)
                    return CURATE_ERR_NOMEM;
            } else {
                removed++;
            }
        } else {
            removed++;
        }
        p += len;
        copied = p;
    }
    FLUSH_TO(e);
#undef FLUSH_TO
    if (n_removed)
        *n_removed = removed;
    return CURATE_OK;
}

/* ------------------------------------------------------------------------ */
/* Whitespace                                                               */
/* ------------------------------------------------------------------------ */

/*
 * The common case is text that is already normalized (single spaces, "\n"
 * or "\n\n" between words).  A per-byte state machine mispredicts a
 * branch at nearly every word, so the check runs on 16-byte blocks with
 * masks instead: a space after any whitespace, a newline after a space, a
 * third newline in a row, a control byte, or a non-ASCII whitespace
 * character all mean "needs work".
 */
size_t curate_whitespace_scan(const char *s, size_t n, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s;
    const int keep = (flags & CURATE_WS_KEEP_NEWLINES) != 0;
    size_t safe = 0;
    /* Masks of the previous block (bit i = byte i); the text start behaves
     * as if it followed a space. */
    unsigned pws = 0x8000, psp = 0x8000, pnl = 0;
    for (size_t i = 0; i < n;) {
        size_t valid = n - i < 16 ? n - i : 16;
        curate__v16 v;
        if (valid == 16) {
            v = curate__v16_load(p + i);
        } else {
            unsigned char tmp[16];
            memset(tmp, 'a', sizeof tmp); /* neutral padding */
            memcpy(tmp, p + i, valid);
            v = curate__v16_load(tmp);
        }
        unsigned sp = curate__v16_eq(v, ' '), nl = curate__v16_eq(v, '\n'), ws = sp | nl;
        unsigned ws1 = (ws << 1) | (pws >> 15), sp1 = (sp << 1) | (psp >> 15);
        unsigned nl1 = (nl << 1) | (pnl >> 15), nl2 = (nl << 2) | (pnl >> 14);
        unsigned bad = (sp & ws1) | (nl & sp1) | (curate__v16_lt(v, 0x20) & ~nl);
        bad |= keep ? (nl & nl1 & nl2) : nl;
        if (bad & 0xFFFFu)
            return safe;
        for (unsigned hb = curate__v16_high(v); hb; hb &= hb - 1) {
            size_t k = (size_t)__builtin_ctz(hb);
            int kind;
            if (k < valid && curate__ws_byte_class[p[i + k]] == CURATE__WSB_LEAD &&
                curate__ws_at(p + i + k, p + n, &kind))
                return safe;
        }
        unsigned nws = ~ws & ((1u << valid) - 1u);
        if (nws)
            safe = i + (size_t)(31 - __builtin_clz(nws)) + 1;
        pws = ws;
        psp = sp;
        pnl = nl;
        i += valid;
    }
    if (n && (p[n - 1] == ' ' || p[n - 1] == '\n'))
        return safe;
    return n;
}

curate_status curate_normalize_whitespace(const char *s, size_t n, unsigned flags, curate_buf *out)
{
    /* The output is never longer than the input: every run shrinks to at
     * most as many bytes as it had ("\n\n" needs two breaks, and U+2029 is
     * three bytes). */
    if (curate_buf_reserve(out, n) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    const int keep = (flags & CURATE_WS_KEEP_NEWLINES) != 0;
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    unsigned char *o0 = (unsigned char *)out->data + out->len, *o = o0;
    /* Copy the part that is already normalized; it ends after a
     * non-whitespace byte (or is empty), where the loop below may start. */
    size_t k = curate_whitespace_scan(s, n, flags);
    memcpy(o, p, k);
    o += k;
    p += k;
    int in_ws = 0, prev_cr = 0;
    unsigned breaks = 0;
    while (p < e) {
        unsigned c = *p;
        unsigned cls = curate__ws_byte_class[c];
        if (cls == 0) {
        plain:
            if (in_ws) {
                if (o != o0) {
                    if (keep && breaks >= 2) {
                        *o++ = '\n';
                        *o++ = '\n';
                    } else {
                        *o++ = keep && breaks ? '\n' : ' ';
                    }
                }
                in_ws = 0;
                breaks = 0;
            }
            *o++ = (unsigned char)c;
            p++;
            prev_cr = 0;
            continue;
        }
        int kind;
        size_t len;
        if (cls == CURATE__WSB_LEAD) {
            len = curate__ws_at(p, e, &kind);
            if (len == 0)
                goto plain; /* a lead byte of some other character */
        } else {
            len = 1;
            kind = cls == CURATE__WSB_SPACE ? CURATE__WS_SPACE : CURATE__WS_BREAK;
        }
        in_ws = 1;
        if (kind == CURATE__WS_BREAK && !(c == '\n' && prev_cr))
            breaks++;
        else if (kind == CURATE__WS_PARA)
            breaks += 2;
        prev_cr = c == '\r';
        p += len;
    }
    out->len += (size_t)(o - o0);
    out->data[out->len] = 0;
    return CURATE_OK;
}

size_t curate_word_count(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    size_t words = 0;
    int in_word = 0;
    while (p < e) {
        int kind;
        size_t len = curate__ws_at(p, e, &kind);
        if (len) {
            in_word = 0;
            p += len;
        } else {
            words += !in_word;
            in_word = 1;
            p++;
        }
    }
    return words;
}
