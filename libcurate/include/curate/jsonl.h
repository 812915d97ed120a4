/*
 * curate/jsonl.h - streaming JSON Lines reader, strict record parser and a
 * byte-preserving record writer.
 *
 * The model: a reader hands out lines; a curate_record parses one line (a
 * JSON object) into an index of its top-level members without copying; the
 * caller looks fields up, decodes strings, and may queue edits (set, remove)
 * that curate_record_render() applies while copying every other byte of the
 * original line unchanged: key order, number spelling, escapes and spacing
 * stay as they were.
 *
 * Thread safety: a reader or record belongs to one thread at a time;
 * distinct objects may be used from distinct threads.
 */
#ifndef CURATE_JSONL_H
#define CURATE_JSONL_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default upper bound for one record (64 MiB); a longer line is an error. */
#define CURATE_DEFAULT_MAX_RECORD_BYTES ((size_t)64 << 20)
/* Default nesting limit for arrays/objects inside a record. */
#define CURATE_DEFAULT_MAX_DEPTH 128u

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct curate_reader curate_reader;

typedef struct curate_reader_opts {
    size_t max_record_bytes;  /* 0 means CURATE_DEFAULT_MAX_RECORD_BYTES */
    size_t buffer_bytes;      /* read size; 0 means 1 MiB */
} curate_reader_opts;

/* One line of input, borrowed from the reader until the next call. */
typedef struct curate_line {
    const char *data;  /* line bytes without "\n" or "\r\n"; NUL-terminated */
    size_t len;        /* bytes in data (for a too-large line: bytes seen) */
    uint64_t lineno;   /* 1-based physical line number */
    uint64_t offset;   /* byte offset of the line's first byte in the input */
} curate_line;

/*
 * Open path for reading ("-" or NULL is standard input).  Returns NULL and
 * fills err (CURATE_ERR_IO with errno's text, file set) on failure.  opts may
 * be NULL for defaults.  The caller frees with curate_reader_free().
 */
curate_reader *curate_reader_open(const char *path, const curate_reader_opts *opts,
                                  curate_error *err);

/* Same over an open descriptor; name is used in messages.  The reader does
 * not close fd. */
curate_reader *curate_reader_open_fd(int fd, const char *name, const curate_reader_opts *opts,
                                     curate_error *err);

/*
 * Next non-blank line.  A UTF-8 byte order mark at the start of the input
 * and the "\r" of a CRLF line end are removed; lines holding only spaces and
 * tabs are skipped (they are not records).  Returns:
 *   CURATE_OK            line filled; valid until the next call
 *   CURATE_END           no more lines
 *   CURATE_ERR_TOO_LARGE the line exceeded max_record_bytes; it has been
 *                        skipped to its end, line->lineno/offset name it and
 *                        line->len is the full length; reading may go on
 *   CURATE_ERR_IO        a read failed; err says why; do not go on
 * A final line without "\n" is returned as a normal line.
 */
curate_status curate_reader_next(curate_reader *r, curate_line *line, curate_error *err);

/* Start again from the beginning (regular files only; CURATE_ERR_UNSUPPORTED
 * for pipes).  Line numbers restart at 1. */
curate_status curate_reader_rewind(curate_reader *r, curate_error *err);

const char *curate_reader_name(const curate_reader *r); /* "-" for stdin */
uint64_t curate_reader_bytes(const curate_reader *r);   /* bytes consumed so far */
uint64_t curate_reader_size(const curate_reader *r);    /* file size, 0 if unknown */
void curate_reader_free(curate_reader *r);              /* accepts NULL */

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum curate_json_type {
    CURATE_JSON_NULL,
    CURATE_JSON_FALSE,
    CURATE_JSON_TRUE,
    CURATE_JSON_NUMBER,
    CURATE_JSON_STRING,
    CURATE_JSON_ARRAY,
    CURATE_JSON_OBJECT
} curate_json_type;

/* One top-level member of a record; all pointers point into the line. */
typedef struct curate_member {
    const char *key;      /* key bytes between the quotes, escapes as written */
    size_t key_len;
    const char *value;    /* the raw JSON text of the value */
    size_t value_len;
    curate_json_type type;
    int key_escaped;      /* the key contains a backslash escape */
    size_t start;         /* offset of the key's opening quote in the line */
    size_t end;           /* offset just past the value */
} curate_member;

/* How \uD800-\uDFFF escapes without a partner are decoded. */
typedef enum curate_surrogate_policy {
    CURATE_SURROGATE_ERROR = 0,  /* CURATE_ERR_JSON (default) */
    CURATE_SURROGATE_REPLACE     /* decode as U+FFFD */
} curate_surrogate_policy;

struct curate_edit_; /* private */

/*
 * A parsed record.  Embed it, curate_record_init() once, parse many lines
 * into it, curate_record_release() at the end.  Pointers in members borrow
 * from the line passed to parse, which must stay alive while it is used.
 */
typedef struct curate_record {
    const char *line;           /* the parsed line (borrowed) */
    size_t len;
    curate_member *members;     /* top-level members in order */
    size_t n_members;
    size_t close;               /* offset of the closing '}' */
    unsigned max_depth;         /* nesting limit (default 128) */
    curate_surrogate_policy surrogates;
    /* private */
    size_t cap_members;
    struct curate_edit_ *edits;
    size_t n_edits, cap_edits;
    curate_buf arena;           /* owned copies of edit keys and values */
} curate_record;

void curate_record_init(curate_record *r);
void curate_record_release(curate_record *r);

/*
 * Parse line[0..len) as one JSON object (RFC 8259, strict: no trailing
 * commas, no comments, no leading zeros, no raw control characters in
 * strings, no trailing garbage; whitespace around it is allowed).  Clears
 * pending edits.  On error returns CURATE_ERR_JSON, CURATE_ERR_DEPTH or
 * CURATE_ERR_NOT_OBJECT (valid JSON of another type) and sets err's message
 * and offset (byte offset within the line); err's file and line are left for
 * the caller.  Byte values >= 0x80 inside strings are not checked here:
 * UTF-8 validity is a text policy (see curate/text.h).
 */
curate_status curate_record_parse(curate_record *r, const char *line, size_t len,
                                  curate_error *err);

/* First top-level member whose (decoded) key equals key, or NULL. */
const curate_member *curate_record_get(const curate_record *r, const char *key);

/*
 * Decode a JSON string literal (with its quotes) to UTF-8, appending to out.
 * \u0000 becomes a NUL byte; surrogate pairs are joined; a lone surrogate is
 * handled by policy.  Raw bytes are copied as they are (invalid UTF-8 stays
 * invalid: validate or repair with curate/text.h).
 */
curate_status curate_json_string_decode(const char *lit, size_t len, curate_surrogate_policy policy,
                                        curate_buf *out, curate_error *err);

/*
 * Decode the string field key into out (out is reset first).  Returns
 * CURATE_ERR_NO_FIELD if absent, CURATE_ERR_FIELD_TYPE if not a string.
 */
curate_status curate_record_get_string(const curate_record *r, const char *key,
                                       curate_buf *out, curate_error *err);

/* Parse a number field as double / int64 (CURATE_ERR_FIELD_TYPE when the
 * field is not a number or, for int64, not an integer in range). */
curate_status curate_record_get_double(const curate_record *r, const char *key, double *out);
curate_status curate_record_get_int64(const curate_record *r, const char *key, int64_t *out);

/*
 * Queue edits.  set replaces the value of an existing key in place (the
 * first member with that key) or appends a new member before the closing
 * brace; remove deletes every member with that key.  Later edits of the same
 * key win.  json must be one valid JSON value (it is not re-validated).
 */
curate_status curate_record_set_raw(curate_record *r, const char *key, const char *json, size_t len);
curate_status curate_record_set_string(curate_record *r, const char *key, const char *s, size_t n);
curate_status curate_record_set_int(curate_record *r, const char *key, int64_t v);
curate_status curate_record_set_double(curate_record *r, const char *key, double v);
curate_status curate_record_set_bool(curate_record *r, const char *key, int v);
curate_status curate_record_remove(curate_record *r, const char *key);

/* Append the record with its edits applied to out (no newline).  With no
 * edits this is the original line, byte for byte. */
curate_status curate_record_render(const curate_record *r, curate_buf *out);

/* Check that s[0..n) is exactly one valid JSON value (any type). */
curate_status curate_json_validate(const char *s, size_t n, unsigned max_depth, curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_JSONL_H */
