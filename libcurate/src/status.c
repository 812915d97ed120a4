/*
 * status.c - status strings, the error struct and version queries.
 */
#include "curate/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <pcre2.h>
#include <utf8proc.h>
#include <xxhash.h>
#include <cblas.h>

#include "curate_build_version.h"

static const char *const status_text[CURATE_STATUS_COUNT_] = {
    [CURATE_OK] = "success",
    [CURATE_END] = "end of input",
    [CURATE_ERR_NOMEM] = "out of memory",
    [CURATE_ERR_IO] = "input/output error",
    [CURATE_ERR_JSON] = "invalid JSON",
    [CURATE_ERR_NOT_OBJECT] = "not a JSON object",
    [CURATE_ERR_TOO_LARGE] = "too large",
    [CURATE_ERR_DEPTH] = "nesting too deep",
    [CURATE_ERR_UTF8] = "invalid UTF-8",
    [CURATE_ERR_NO_FIELD] = "missing field",
    [CURATE_ERR_FIELD_TYPE] = "field has the wrong type",
    [CURATE_ERR_INVALID] = "invalid argument",
    [CURATE_ERR_REGEX] = "invalid regular expression",
    [CURATE_ERR_RULES] = "invalid rule",
    [CURATE_ERR_FORMAT] = "corrupt or malformed file",
    [CURATE_ERR_UNSUPPORTED] = "unsupported",
    [CURATE_ERR_TOKENIZER] = "tokenizer error",
    [CURATE_ERR_MODEL] = "model error",
    [CURATE_ERR_RANGE] = "value out of range",
    [CURATE_ERR_INTERNAL] = "internal error",
    [CURATE_ERR_LANGID] = "language identification failed",
};

const char *curate_strerror(curate_status status)
{
    if ((unsigned)status >= CURATE_STATUS_COUNT_ || !status_text[status])
        return "unknown status";
    return status_text[status];
}

void curate_error_clear(curate_error *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
}

curate_status curate_error_set(curate_error *err, curate_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void curate_error_at(curate_error *err, const char *file, uint64_t line)
{
    if (!err)
        return;
    if (file)
        snprintf(err->file, sizeof err->file, "%s", file);
    err->line = line;
}

void curate_error_at_offset(curate_error *err, uint64_t offset)
{
    if (!err)
        return;
    err->offset = offset;
    err->has_offset = 1;
}

char *curate_error_format(const curate_error *err, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    buf[0] = 0;
    if (!err)
        return buf;
    size_t n = 0;
#define PUT(...)                                                              \
    do {                                                                      \
        if (n < size) {                                                       \
            int k_ = snprintf(buf + n, size - n, __VA_ARGS__);                \
            if (k_ > 0)                                                       \
                n += (size_t)k_;                                              \
        }                                                                     \
    } while (0)
    if (err->file[0] && err->line)
        PUT("%s:%llu: ", err->file, (unsigned long long)err->line);
    else if (err->file[0])
        PUT("%s: ", err->file);
    else if (err->line)
        PUT("line %llu: ", (unsigned long long)err->line);
    PUT("%s", err->message[0] ? err->message : curate_strerror(err->code));
    if (err->has_offset)
        PUT(" at byte %llu", (unsigned long long)err->offset);
#undef PUT
    return buf;
}

const char *curate_version(void)
{
    return CURATE_VERSION_STRING_;
}

unsigned curate_version_number(void)
{
    return CURATE_VERSION_MAJOR_ * 10000u + CURATE_VERSION_MINOR_ * 100u + CURATE_VERSION_PATCH_;
}

/* The build records these from pkg-config (CLD2 has no version API). */
#ifndef CURATE_SPM_VERSION
#define CURATE_SPM_VERSION "unknown"
#endif
#ifndef CURATE_CLD2_VERSION
#define CURATE_CLD2_VERSION "unknown"
#endif

const char *curate_version_string(void)
{
    static char text[512];
    if (!text[0]) {
        char pcre[64] = "";
        pcre2_config(PCRE2_CONFIG_VERSION, pcre);
        char blas[64] = "OpenBLAS";
#ifdef OPENBLAS_VERSION
        snprintf(blas, sizeof blas, "%s", OPENBLAS_VERSION);
        /* OPENBLAS_VERSION reads " OpenBLAS 0.3.21 "; trim the spaces. */
        char *s = blas;
        while (*s == ' ')
            s++;
        memmove(blas, s, strlen(s) + 1);
        size_t l = strlen(blas);
        while (l && blas[l - 1] == ' ')
            blas[--l] = 0;
#endif
        snprintf(text, sizeof text,
                 "libcurate %s (utf8proc %s, PCRE2 %s, xxHash %u.%u.%u, sentencepiece %s, CLD2 %s, %s)",
                 CURATE_VERSION_STRING_, utf8proc_version(), pcre,
                 XXH_versionNumber() / 10000, XXH_versionNumber() / 100 % 100,
                 XXH_versionNumber() % 100, CURATE_SPM_VERSION, CURATE_CLD2_VERSION, blas);
    }
    return text;
}
