/*
 * curate/buf.h - a growable byte buffer (in the spirit of git's strbuf).
 *
 * The caller embeds a curate_buf, calls curate_buf_init() once and
 * curate_buf_release() at the end.  data is always NUL-terminated after a
 * successful append (the NUL is not counted in len), so it can be passed to
 * C string functions when it holds text without NULs.
 *
 * Appends return CURATE_OK or CURATE_ERR_NOMEM; on failure the buffer keeps
 * its previous contents.  Not thread-safe: one buffer, one thread.
 */
#ifndef CURATE_BUF_H
#define CURATE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct curate_buf {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes in use, excluding the trailing NUL */
    size_t cap;   /* bytes allocated */
} curate_buf;

void curate_buf_init(curate_buf *b);
void curate_buf_release(curate_buf *b);           /* frees; b is re-initialised */
static inline void curate_buf_reset(curate_buf *b) { b->len = 0; if (b->data) b->data[0] = 0; }

/* Make room for at least extra more bytes (plus the NUL). */
curate_status curate_buf_reserve(curate_buf *b, size_t extra);
curate_status curate_buf_append(curate_buf *b, const void *p, size_t n);
curate_status curate_buf_append_str(curate_buf *b, const char *s);
curate_status curate_buf_append_char(curate_buf *b, char c);
curate_status curate_buf_printf(curate_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/*
 * Append s[0..n) as a JSON string literal, quotes included.  Bytes that are
 * not valid UTF-8 are written as \ufffd so the output is always valid JSON;
 * control characters are escaped (\n, \t, ... or \u00XX).
 */
curate_status curate_buf_append_json_string(curate_buf *b, const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_BUF_H */
