/*
 * curate/status.h - status codes, the error struct and version queries.
 *
 * Every libcurate function that can fail returns a curate_status and, when
 * the caller passes a non-NULL curate_error *, fills it with a message and
 * the position of the problem (file, line, byte offset).  The library never
 * prints and never exits; tools decide what to say.
 *
 * Thread safety: everything here is thread-safe; a curate_error belongs to
 * one thread at a time.
 */
#ifndef CURATE_STATUS_H
#define CURATE_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Status codes.  Append only: new codes go last, none is ever removed or
 * renumbered, so a number seen in a log keeps its meaning.
 */
typedef enum curate_status {
    CURATE_OK = 0,
    CURATE_END,              /* not an error: end of input reached */
    CURATE_ERR_NOMEM,        /* allocation failed */
    CURATE_ERR_IO,           /* read, write, open, rename or mmap failed */
    CURATE_ERR_JSON,         /* the line is not valid JSON (RFC 8259) */
    CURATE_ERR_NOT_OBJECT,   /* valid JSON, but not an object */
    CURATE_ERR_TOO_LARGE,    /* a record or value exceeds a size limit */
    CURATE_ERR_DEPTH,        /* JSON nesting deeper than the limit */
    CURATE_ERR_UTF8,         /* invalid UTF-8 where the policy rejects it */
    CURATE_ERR_NO_FIELD,     /* the text field is missing */
    CURATE_ERR_FIELD_TYPE,   /* the field has the wrong JSON type */
    CURATE_ERR_INVALID,      /* an invalid argument or option value */
    CURATE_ERR_REGEX,        /* a pattern failed to compile */
    CURATE_ERR_RULES,        /* a rule file line is malformed */
    CURATE_ERR_FORMAT,       /* a binary file (model, tokenizer) is corrupt */
    CURATE_ERR_UNSUPPORTED,  /* a valid input this version cannot handle */
    CURATE_ERR_TOKENIZER,    /* the tokenizer failed to load or encode */
    CURATE_ERR_MODEL,        /* the model is inconsistent or cannot run */
    CURATE_ERR_RANGE,        /* a number out of range or an overflowing size */
    CURATE_ERR_INTERNAL,     /* a bug: an invariant did not hold */
    CURATE_ERR_LANGID,       /* language identification failed */
    CURATE_STATUS_COUNT_     /* not a status; keep last */
} curate_status;

/* A short fixed description of a status ("invalid JSON"); never NULL. */
const char *curate_strerror(curate_status status);

/*
 * Where and why something failed.  Fields are filled as far as they are
 * known: file is "" when the input had no name, line and offset are 0 when
 * they do not apply (line numbers start at 1, offsets are 0-based bytes
 * from the start of the line for JSON errors, of the file otherwise).
 */
typedef struct curate_error {
    curate_status code;
    char message[512];   /* human text, no trailing period or newline */
    char file[512];      /* input name, "-" for stdin */
    uint64_t line;       /* 1-based line, 0 if unknown */
    uint64_t offset;     /* byte offset (see above) */
    int has_offset;      /* offset is meaningful */
} curate_error;

/* Reset to CURATE_OK with empty strings.  err may be NULL. */
void curate_error_clear(curate_error *err);

/*
 * Set code and message (printf format) and return code, so library code can
 * write `return curate_error_set(err, CURATE_ERR_IO, "...")`.  err may be
 * NULL, in which case only code is returned.  file/line/offset are kept.
 */
curate_status curate_error_set(curate_error *err, curate_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Record where the error is (file may be NULL to keep the current one). */
void curate_error_at(curate_error *err, const char *file, uint64_t line);
void curate_error_at_offset(curate_error *err, uint64_t offset);

/*
 * Format "FILE:LINE: message (at byte N)" into buf (always NUL-terminated,
 * truncated to size).  Parts that are unknown are left out.  Returns buf.
 */
char *curate_error_format(const curate_error *err, char *buf, size_t size);

/* Version of libcurate ("0.1.0") and its parts. */
const char *curate_version(void);
unsigned curate_version_number(void); /* major*10000 + minor*100 + patch */

/*
 * One line naming libcurate and each dependency with its version, e.g.
 * "libcurate 0.1.0 (utf8proc 2.6.0, PCRE2 10.42, xxHash 0.8.1, ...)".
 * The string is static.
 */
const char *curate_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_STATUS_H */
