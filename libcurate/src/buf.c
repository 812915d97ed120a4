/*
 * buf.c - growable byte buffer.
 */
#include "curate/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void curate_buf_init(curate_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void curate_buf_release(curate_buf *b)
{
    free(b->data);
    curate_buf_init(b);
}

curate_status curate_buf_reserve(curate_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return CURATE_ERR_NOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return CURATE_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return CURATE_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return CURATE_OK;
}

curate_status curate_buf_append(curate_buf *b, const void *p, size_t n)
{
    if (curate_buf_reserve(b, n) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return CURATE_OK;
}

curate_status curate_buf_append_str(curate_buf *b, const char *s)
{
    return curate_buf_append(b, s, strlen(s));
}

curate_status curate_buf_append_char(curate_buf *b, char c)
{
    return curate_buf_append(b, &c, 1);
}

curate_status curate_buf_printf(curate_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CURATE_ERR_INVALID;
    if ((size_t)n < sizeof small)
        return curate_buf_append(b, small, (size_t)n);
    if (curate_buf_reserve(b, (size_t)n) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CURATE_OK;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

curate_status curate_buf_append_json_string(curate_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX (6) or \ufffd (6). */
    if (n > (SIZE_MAX - 2) / 6 || curate_buf_reserve(b, n * 6 + 2) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    char *o = b->data + b->len;
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + n;
    *o++ = '"';
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq_len(p, (size_t)(end - p));
            if (k == 0) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                p++;
            } else {
                memcpy(o, p, k);
                o += k;
                p += k;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = hex[c >> 4]; *o++ = hex[c & 15];
        }
        p++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = 0;
    return CURATE_OK;
}
