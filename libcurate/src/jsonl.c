/*
 * jsonl.c - JSON Lines reader, strict record parser and byte-preserving
 * record writer.
 *
 * The parser indexes the top-level members of one object and validates the
 * nested values without building a tree: tools only look at a few fields
 * and pass everything else through untouched, so an index of spans into the
 * original line is all that is needed, and it is cheap.
 */
#include "curate/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Reader                                                                   */
/* ------------------------------------------------------------------------ */

struct curate_reader {
    int fd;
    int own_fd;
    char *name;
    char *buf;          /* holds [start, end) unconsumed bytes */
    size_t cap;         /* allocated bytes */
    size_t start, end;
    size_t scan;        /* bytes after start already searched for '\n' */
    size_t max_record;
    size_t read_size;
    int eof;
    int at_file_start;  /* BOM check pending */
    uint64_t lineno;
    uint64_t consumed;  /* bytes before buf[start] */
    uint64_t size;      /* file size if regular, else 0 */
    int seekable;
};

static curate_status io_error(curate_error *err, const char *name, const char *what)
{
    int e = errno;
    curate_error_set(err, CURATE_ERR_IO, "%s: %s", what, strerror(e));
    curate_error_at(err, name, 0);
    return CURATE_ERR_IO;
}

curate_reader *curate_reader_open_fd(int fd, const char *name, const curate_reader_opts *opts,
                                     curate_error *err)
{
    curate_reader *r = calloc(1, sizeof *r);
    if (!r) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->fd = fd;
    r->name = strdup(name ? name : "-");
    r->max_record = opts && opts->max_record_bytes ? opts->max_record_bytes
                                                   : CURATE_DEFAULT_MAX_RECORD_BYTES;
    r->read_size = opts && opts->buffer_bytes ? opts->buffer_bytes : (size_t)1 << 20;
    r->cap = r->read_size + 1;
    r->buf = malloc(r->cap);
    r->at_file_start = 1;
    if (!r->name || !r->buf) {
        curate_reader_free(r);
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        r->size = (uint64_t)st.st_size;
        r->seekable = 1;
#ifdef POSIX_FADV_SEQUENTIAL
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    }
    return r;
}

curate_reader *curate_reader_open(const char *path, const curate_reader_opts *opts,
                                  curate_error *err)
{
    if (!path || strcmp(path, "-") == 0)
        return curate_reader_open_fd(STDIN_FILENO, "-", opts, err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        io_error(err, path, "cannot open");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        curate_error_set(err, CURATE_ERR_IO, "cannot read: is a directory");
        curate_error_at(err, path, 0);
        return NULL;
    }
    curate_reader *r = curate_reader_open_fd(fd, path, opts, err);
    if (!r) {
        close(fd);
        return NULL;
    }
    r->own_fd = 1;
    return r;
}

void curate_reader_free(curate_reader *r)
{
    if (!r)
        return;
    if (r->own_fd)
        close(r->fd);
    free(r->name);
    free(r->buf);
    free(r);
}

const char *curate_reader_name(const curate_reader *r) { return r->name; }
uint64_t curate_reader_bytes(const curate_reader *r) { return r->consumed; }
uint64_t curate_reader_size(const curate_reader *r) { return r->size; }

curate_status curate_reader_rewind(curate_reader *r, curate_error *err)
{
    if (!r->seekable || lseek(r->fd, 0, SEEK_SET) != 0) {
        curate_error_set(err, CURATE_ERR_UNSUPPORTED, "cannot rewind a pipe or terminal");
        curate_error_at(err, r->name, 0);
        return CURATE_ERR_UNSUPPORTED;
    }
    r->start = r->end = r->scan = 0;
    r->eof = 0;
    r->at_file_start = 1;
    r->lineno = 0;
    r->consumed = 0;
    return CURATE_OK;
}

/*
 * Read more bytes after r->end.  Makes room first by moving the unconsumed
 * tail to the front, then by growing the buffer while it stays within the
 * record limit (+1 so that a line of exactly max bytes plus its '\n' fits).
 * Returns CURATE_OK (possibly setting eof) or CURATE_ERR_IO.
 */
static curate_status reader_fill(curate_reader *r, curate_error *err)
{
    if (r->start > 0 && (r->cap - 1 - r->end) < r->read_size / 2) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - 1 - r->end < r->read_size / 2) {
        size_t limit = r->max_record + 8;
        size_t ncap = r->cap * 2;
        if (ncap > limit + r->read_size)
            ncap = limit + r->read_size;
        if (ncap > r->cap) {
            char *nb = realloc(r->buf, ncap);
            if (!nb)
                return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
            r->buf = nb;
            r->cap = ncap;
        }
    }
    size_t room = r->cap - 1 - r->end;
    if (room == 0)
        return CURATE_OK;
    if (room > r->read_size)
        room = r->read_size;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return io_error(err, r->name, "read error");
        if (n == 0)
            r->eof = 1;
        r->end += (size_t)n;
        return CURATE_OK;
    }
}

/* Drop bytes up to and including the next '\n'; *len gets the count. */
static curate_status reader_skip_line(curate_reader *r, uint64_t *len, curate_error *err)
{
    uint64_t total = 0;
    for (;;) {
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            size_t k = (size_t)(nl - (r->buf + r->start));
            total += k;
            r->consumed += k + 1;
            r->start += k + 1;
            r->scan = 0;
            *len = total;
            return CURATE_OK;
        }
        total += r->end - r->start;
        r->consumed += r->end - r->start;
        r->start = r->end = 0;
        r->scan = 0;
        if (r->eof) {
            *len = total;
            return CURATE_OK;
        }
        curate_status st = reader_fill(r, err);
        if (st != CURATE_OK)
            return st;
    }
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

curate_status curate_reader_next(curate_reader *r, curate_line *line, curate_error *err)
{
    for (;;) {
        /* Look for the end of the current line in what is buffered. */
        char *base = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = avail > r->scan ? memchr(base + r->scan, '\n', avail - r->scan) : NULL;
        size_t len;
        int have = 0;
        if (nl) {
            len = (size_t)(nl - base);
            have = 1;
        } else if (r->eof) {
            if (avail == 0)
                return CURATE_END;
            len = avail; /* final line without a newline */
            have = 1;
        } else {
            len = avail;
        }

        /* Without a newline yet, a line longer than the limit plus room for
         * a BOM and a '\r' can be given up on before it is all read. */
        if (!have && len > r->max_record + 4u) {
            /* Too long: report where it starts, skip to its end. */
            uint64_t skipped = 0;
            uint64_t off = r->consumed;
            curate_status st = reader_skip_line(r, &skipped, err);
            if (st != CURATE_OK)
                return st;
            r->lineno++;
            r->at_file_start = 0;
            line->data = "";
            line->len = (size_t)(skipped > SIZE_MAX ? SIZE_MAX : skipped);
            line->lineno = r->lineno;
            line->offset = off;
            curate_error_set(err, CURATE_ERR_TOO_LARGE,
                             "record of %llu bytes exceeds the limit of %zu bytes",
                             (unsigned long long)skipped, r->max_record);
            curate_error_at(err, r->name, r->lineno);
            return CURATE_ERR_TOO_LARGE;
        }

        if (!have) {
            r->scan = avail;
            curate_status st = reader_fill(r, err);
            if (st != CURATE_OK)
                return st;
            continue;
        }

        /* A whole line: [base, base+len), newline (if any) at base[len]. */
        uint64_t off = r->consumed;
        size_t adv = nl ? len + 1 : len;
        r->start += adv;
        r->consumed += adv;
        r->scan = 0;
        r->lineno++;
        char *s = base;
        if (r->at_file_start) {
            r->at_file_start = 0;
            if (len >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
                (unsigned char)s[2] == 0xBF) {
                s += 3;
                len -= 3;
                off += 3;
            }
        }
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (len > r->max_record) {
            line->data = "";
            line->len = len;
            line->lineno = r->lineno;
            line->offset = off;
            curate_error_set(err, CURATE_ERR_TOO_LARGE,
                             "record of %zu bytes exceeds the limit of %zu bytes", len,
                             r->max_record);
            curate_error_at(err, r->name, r->lineno);
            return CURATE_ERR_TOO_LARGE;
        }
        if (is_blank(s, len))
            continue;
        s[len] = '\0'; /* overwrites '\n' or '\r', or the spare byte at the end */
        line->data = s;
        line->len = len;
        line->lineno = r->lineno;
        line->offset = off;
        return CURATE_OK;
    }
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct parser {
    const unsigned char *s;
    size_t n;
    size_t pos;
    unsigned max_depth;
    curate_error *err;
} parser;

static curate_status perr(parser *p, const char *msg)
{
    curate_error_set(p->err, CURATE_ERR_JSON, "%s", msg);
    curate_error_at_offset(p->err, p->pos);
    return CURATE_ERR_JSON;
}

static curate_status perr_char(parser *p, const char *what)
{
    if (p->pos >= p->n)
        return perr(p, what[0] ? what : "unexpected end of line");
    unsigned c = p->s[p->pos];
    char msg[160];
    if (c >= 0x20 && c < 0x7f)
        snprintf(msg, sizeof msg, "%s, found '%c'", what, (char)c);
    else
        snprintf(msg, sizeof msg, "%s, found byte 0x%02x", what, c);
    curate_error_set(p->err, CURATE_ERR_JSON, "%s", msg);
    curate_error_at_offset(p->err, p->pos);
    return CURATE_ERR_JSON;
}

static inline void skip_ws(parser *p)
{
    while (p->pos < p->n) {
        unsigned c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static inline int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

/* True if any byte of w is '"', '\\' or < 0x20 (SWAR over 8 bytes). */
static inline int word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"');
    uint64_t b = w ^ (ones * '\\');
    uint64_t hq = (q - ones) & ~q;
    uint64_t hb = (b - ones) & ~b;
    uint64_t lt = (w - ones * 0x20) & ~w;
    return ((hq | hb | lt) & highs) != 0;
}

/* At the opening quote; leaves pos after the closing quote.  *escaped is
 * set when the string holds a backslash. */
static curate_status parse_string(parser *p, int *escaped)
{
    const unsigned char *s = p->s;
    size_t i = p->pos + 1, n = p->n;
    int esc = 0;
    for (;;) {
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (word_special(w))
                break;
            i += 8;
        }
        if (i >= n) {
            p->pos = n;
            return perr(p, "unterminated string");
        }
        unsigned c = s[i];
        if (c == '"') {
            p->pos = i + 1;
            if (escaped)
                *escaped = esc;
            return CURATE_OK;
        }
        if (c == '\\') {
            esc = 1;
            if (i + 1 >= n) {
                p->pos = n;
                return perr(p, "unterminated string");
            }
            unsigned e = s[i + 1];
            switch (e) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                i += 2;
                break;
            case 'u':
                for (int k = 0; k < 4; k++) {
                    if (i + 2 + (size_t)k >= n || hexval(s[i + 2 + (size_t)k]) < 0) {
                        p->pos = i;
                        return perr(p, "invalid \\u escape: expected 4 hex digits");
                    }
                }
                i += 6;
                break;
            default:
                p->pos = i;
                return perr(p, "invalid escape in string");
            }
            continue;
        }
        if (c < 0x20) {
            p->pos = i;
            return perr(p, "control character in string (must be escaped)");
        }
        i++;
    }
}

static curate_status parse_number(parser *p)
{
    const unsigned char *s = p->s;
    size_t i = p->pos, n = p->n;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || s[i] < '0' || s[i] > '9') {
        p->pos = i;
        return perr(p, "invalid number: expected a digit");
    }
    if (s[i] == '0') {
        i++;
        if (i < n && s[i] >= '0' && s[i] <= '9') {
            p->pos = i;
            return perr(p, "invalid number: leading zero");
        }
    } else {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') {
            p->pos = i;
            return perr(p, "invalid number: expected a digit after '.'");
        }
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9') {
            p->pos = i;
            return perr(p, "invalid number: expected a digit in the exponent");
        }
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    p->pos = i;
    return CURATE_OK;
}

static curate_status parse_literal(parser *p, const char *word, size_t len)
{
    if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len) != 0)
        return perr_char(p, "invalid literal");
    p->pos += len;
    return CURATE_OK;
}

static curate_status parse_value(parser *p, unsigned depth, curate_json_type *type);

static curate_status parse_array(parser *p, unsigned depth)
{
    if (depth >= p->max_depth) {
        curate_error_set(p->err, CURATE_ERR_DEPTH, "nesting deeper than %u levels", p->max_depth);
        curate_error_at_offset(p->err, p->pos);
        return CURATE_ERR_DEPTH;
    }
    p->pos++; /* '[' */
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ']') {
        p->pos++;
        return CURATE_OK;
    }
    for (;;) {
        curate_json_type t;
        curate_status st = parse_value(p, depth + 1, &t);
        if (st != CURATE_OK)
            return st;
        skip_ws(p);
        if (p->pos >= p->n)
            return perr(p, "unterminated array");
        unsigned c = p->s[p->pos];
        if (c == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == ']')
                return perr(p, "trailing comma in array");
            continue;
        }
        if (c == ']') {
            p->pos++;
            return CURATE_OK;
        }
        return perr_char(p, "expected ',' or ']' in array");
    }
}

static curate_status parse_object(parser *p, unsigned depth, curate_record *rec);

static curate_status parse_value(parser *p, unsigned depth, curate_json_type *type)
{
    skip_ws(p);
    if (p->pos >= p->n)
        return perr(p, "unexpected end of line, expected a value");
    switch (p->s[p->pos]) {
    case '"': *type = CURATE_JSON_STRING; return parse_string(p, NULL);
    case '{': *type = CURATE_JSON_OBJECT; return parse_object(p, depth, NULL);
    case '[': *type = CURATE_JSON_ARRAY; return parse_array(p, depth);
    case 't': *type = CURATE_JSON_TRUE; return parse_literal(p, "true", 4);
    case 'f': *type = CURATE_JSON_FALSE; return parse_literal(p, "false", 5);
    case 'n': *type = CURATE_JSON_NULL; return parse_literal(p, "null", 4);
    default:
        if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')) {
            *type = CURATE_JSON_NUMBER;
            return parse_number(p);
        }
        return perr_char(p, "expected a value");
    }
}

static curate_status add_member(curate_record *rec, const curate_member *m)
{
    if (rec->n_members == rec->cap_members) {
        size_t nc = rec->cap_members ? rec->cap_members * 2 : 16;
        curate_member *nm = realloc(rec->members, nc * sizeof *nm);
        if (!nm)
            return CURATE_ERR_NOMEM;
        rec->members = nm;
        rec->cap_members = nc;
    }
    rec->members[rec->n_members++] = *m;
    return CURATE_OK;
}

/* Parse an object at p->pos; when rec is given, index its members. */
static curate_status parse_object(parser *p, unsigned depth, curate_record *rec)
{
    if (depth >= p->max_depth) {
        curate_error_set(p->err, CURATE_ERR_DEPTH, "nesting deeper than %u levels", p->max_depth);
        curate_error_at_offset(p->err, p->pos);
        return CURATE_ERR_DEPTH;
    }
    p->pos++; /* '{' */
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == '}') {
        if (rec)
            rec->close = p->pos;
        p->pos++;
        return CURATE_OK;
    }
    for (;;) {
        if (p->pos >= p->n)
            return perr(p, "unterminated object");
        if (p->s[p->pos] != '"')
            return perr_char(p, "expected a string key");
        curate_member m;
        m.start = p->pos;
        int esc = 0;
        curate_status st = parse_string(p, &esc);
        if (st != CURATE_OK)
            return st;
        m.key = (const char *)p->s + m.start + 1;
        m.key_len = p->pos - m.start - 2;
        m.key_escaped = esc;
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != ':')
            return perr_char(p, "expected ':' after key");
        p->pos++;
        skip_ws(p);
        size_t vstart = p->pos;
        st = parse_value(p, depth + 1, &m.type);
        if (st != CURATE_OK)
            return st;
        m.value = (const char *)p->s + vstart;
        m.value_len = p->pos - vstart;
        m.end = p->pos;
        if (rec && add_member(rec, &m) != CURATE_OK)
            return curate_error_set(p->err, CURATE_ERR_NOMEM, "out of memory");
        skip_ws(p);
        if (p->pos >= p->n)
            return perr(p, "unterminated object");
        unsigned c = p->s[p->pos];
        if (c == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == '}')
                return perr(p, "trailing comma in object");
            continue;
        }
        if (c == '}') {
            if (rec)
                rec->close = p->pos;
            p->pos++;
            return CURATE_OK;
        }
        return perr_char(p, "expected ',' or '}' in object");
    }
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

struct curate_edit_ {
    size_t key_off, key_len;   /* decoded key, in the arena */
    size_t val_off, val_len;   /* raw JSON value, in the arena */
    int remove;
};

void curate_record_init(curate_record *r)
{
    memset(r, 0, sizeof *r);
    r->max_depth = CURATE_DEFAULT_MAX_DEPTH;
    curate_buf_init(&r->arena);
}

void curate_record_release(curate_record *r)
{
    free(r->members);
    free(r->edits);
    curate_buf_release(&r->arena);
    unsigned depth = r->max_depth;
    curate_surrogate_policy pol = r->surrogates;
    curate_record_init(r);
    r->max_depth = depth;
    r->surrogates = pol;
}

curate_status curate_record_parse(curate_record *r, const char *line, size_t len,
                                  curate_error *err)
{
    r->line = line;
    r->len = len;
    r->n_members = 0;
    r->n_edits = 0;
    r->close = 0;
    curate_buf_reset(&r->arena);
    parser p = {(const unsigned char *)line, len, 0, r->max_depth ? r->max_depth : 1, err};
    skip_ws(&p);
    if (p.pos >= p.n)
        return perr(&p, "empty line");
    if (p.s[p.pos] != '{') {
        /* Find out whether it is valid JSON of another type, for a better
         * message: "not an object" is a different problem than bad JSON. */
        curate_json_type t;
        curate_status st = parse_value(&p, 0, &t);
        if (st != CURATE_OK)
            return st;
        skip_ws(&p);
        if (p.pos != p.n)
            return perr_char(&p, "trailing characters after the value");
        static const char *const names[] = {"null", "false", "true", "a number",
                                            "a string", "an array", "an object"};
        curate_error_set(err, CURATE_ERR_NOT_OBJECT, "valid JSON but not an object (%s)",
                         names[t]);
        curate_error_at_offset(err, 0);
        return CURATE_ERR_NOT_OBJECT;
    }
    curate_status st = parse_object(&p, 0, r);
    if (st != CURATE_OK) {
        r->n_members = 0;
        return st;
    }
    skip_ws(&p);
    if (p.pos != p.n)
        return perr_char(&p, "trailing characters after the object");
    return CURATE_OK;
}

curate_status curate_json_validate(const char *s, size_t n, unsigned max_depth, curate_error *err)
{
    parser p = {(const unsigned char *)s, n, 0, max_depth ? max_depth : 1, err};
    curate_json_type t;
    curate_status st = parse_value(&p, 0, &t);
    if (st != CURATE_OK)
        return st;
    skip_ws(&p);
    if (p.pos != p.n)
        return perr_char(&p, "trailing characters after the value");
    return CURATE_OK;
}

static void put_utf8(unsigned char *o, size_t *k, uint32_t cp)
{
    if (cp < 0x80) {
        o[(*k)++] = (unsigned char)cp;
    } else if (cp < 0x800) {
        o[(*k)++] = (unsigned char)(0xC0 | (cp >> 6));
        o[(*k)++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*k)++] = (unsigned char)(0xE0 | (cp >> 12));
        o[(*k)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        o[(*k)++] = (unsigned char)(0xF0 | (cp >> 18));
        o[(*k)++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*k)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (unsigned char)(0x80 | (cp & 0x3F));
    }
}

static uint32_t hex4(const char *s)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 4) | (uint32_t)hexval((unsigned char)s[i]);
    return v;
}

curate_status curate_json_string_decode(const char *lit, size_t len, curate_surrogate_policy policy,
                                        curate_buf *out, curate_error *err)
{
    if (len < 2 || lit[0] != '"' || lit[len - 1] != '"')
        return curate_error_set(err, CURATE_ERR_INVALID, "not a JSON string literal");
    const char *s = lit + 1;
    size_t n = len - 2;
    /* Decoded text is never longer than the literal. */
    if (curate_buf_reserve(out, n) != CURATE_OK)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    unsigned char *o = (unsigned char *)out->data + out->len;
    size_t k = 0, i = 0;
    while (i < n) {
        const char *bs = memchr(s + i, '\\', n - i);
        size_t run = bs ? (size_t)(bs - (s + i)) : n - i;
        memcpy(o + k, s + i, run);
        k += run;
        i += run;
        if (!bs)
            break;
        if (i + 1 >= n)
            goto bad;
        char e = s[i + 1];
        switch (e) {
        case '"': o[k++] = '"'; i += 2; continue;
        case '\\': o[k++] = '\\'; i += 2; continue;
        case '/': o[k++] = '/'; i += 2; continue;
        case 'b': o[k++] = '\b'; i += 2; continue;
        case 'f': o[k++] = '\f'; i += 2; continue;
        case 'n': o[k++] = '\n'; i += 2; continue;
        case 'r': o[k++] = '\r'; i += 2; continue;
        case 't': o[k++] = '\t'; i += 2; continue;
        case 'u': break;
        default: goto bad;
        }
        if (i + 6 > n)
            goto bad;
        for (int d = 0; d < 4; d++)
            if (hexval((unsigned char)s[i + 2 + (size_t)d]) < 0)
                goto bad;
        uint32_t cp = hex4(s + i + 2);
        size_t at = i;
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* High surrogate: must be followed by \uDC00-\uDFFF. */
            if (i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u' && hexval((unsigned char)s[i + 2]) >= 0 &&
                hexval((unsigned char)s[i + 3]) >= 0 && hexval((unsigned char)s[i + 4]) >= 0 &&
                hexval((unsigned char)s[i + 5]) >= 0) {
                uint32_t lo = hex4(s + i + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                    put_utf8(o, &k, cp);
                    continue;
                }
            }
            goto lone;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            goto lone;
        put_utf8(o, &k, cp);
        continue;
    lone:
        if (policy == CURATE_SURROGATE_REPLACE) {
            put_utf8(o, &k, 0xFFFD);
            continue;
        }
        curate_error_set(err, CURATE_ERR_JSON, "lone surrogate \\u%04X in string", (unsigned)cp);
        curate_error_at_offset(err, (uint64_t)(at + 1));
        return CURATE_ERR_JSON;
    }
    out->len += k;
    out->data[out->len] = 0;
    return CURATE_OK;
bad:
    curate_error_set(err, CURATE_ERR_JSON, "invalid escape in string");
    curate_error_at_offset(err, (uint64_t)(i + 1));
    return CURATE_ERR_JSON;
}

/* Does member m have the decoded key `key` (of length klen)? */
static int member_key_is(const curate_member *m, const char *key, size_t klen)
{
    if (!m->key_escaped)
        return m->key_len == klen && memcmp(m->key, key, klen) == 0;
    curate_buf tmp;
    curate_buf_init(&tmp);
    int eq = 0;
    if (curate_json_string_decode(m->key - 1, m->key_len + 2, CURATE_SURROGATE_REPLACE, &tmp, NULL) ==
        CURATE_OK)
        eq = tmp.len == klen && memcmp(tmp.data, key, klen) == 0;
    curate_buf_release(&tmp);
    return eq;
}

const curate_member *curate_record_get(const curate_record *r, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < r->n_members; i++)
        if (member_key_is(&r->members[i], key, klen))
            return &r->members[i];
    return NULL;
}

curate_status curate_record_get_string(const curate_record *r, const char *key, curate_buf *out,
                                       curate_error *err)
{
    curate_buf_reset(out);
    const curate_member *m = curate_record_get(r, key);
    if (!m)
        return curate_error_set(err, CURATE_ERR_NO_FIELD, "no \"%s\" field", key);
    if (m->type != CURATE_JSON_STRING)
        return curate_error_set(err, CURATE_ERR_FIELD_TYPE, "field \"%s\" is not a string", key);
    curate_status st = curate_json_string_decode(m->value, m->value_len, r->surrogates, out, err);
    if (st != CURATE_OK && err && err->has_offset)
        err->offset += (uint64_t)(m->value - r->line);
    return st;
}

/* Copy the number field key into buf as a C string (for strtod/strtoll). */
static curate_status number_text(const curate_record *r, const char *key, char *buf, size_t size)
{
    const curate_member *m = curate_record_get(r, key);
    if (!m)
        return CURATE_ERR_NO_FIELD;
    if (m->type != CURATE_JSON_NUMBER || m->value_len >= size)
        return CURATE_ERR_FIELD_TYPE;
    memcpy(buf, m->value, m->value_len);
    buf[m->value_len] = 0;
    return CURATE_OK;
}

curate_status curate_record_get_double(const curate_record *r, const char *key, double *out)
{
    char tmp[64];
    curate_status st = number_text(r, key, tmp, sizeof tmp);
    if (st == CURATE_OK)
        *out = strtod(tmp, NULL);
    return st;
}

curate_status curate_record_get_int64(const curate_record *r, const char *key, int64_t *out)
{
    char tmp[32];
    curate_status st = number_text(r, key, tmp, sizeof tmp);
    if (st != CURATE_OK)
        return st;
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end)
        return CURATE_ERR_FIELD_TYPE;
    *out = (int64_t)v;
    return CURATE_OK;
}

/* Queue an edit; a later edit of the same key replaces an earlier one. */
static curate_status record_edit(curate_record *r, const char *key, const char *json, size_t len,
                                 int remove)
{
    size_t klen = strlen(key);
    struct curate_edit_ *e = NULL;
    for (size_t i = 0; i < r->n_edits; i++) {
        struct curate_edit_ *x = &r->edits[i];
        if (x->key_len == klen && memcmp(r->arena.data + x->key_off, key, klen) == 0) {
            e = x;
            break;
        }
    }
    if (!e) {
        if (r->n_edits == r->cap_edits) {
            size_t nc = r->cap_edits ? r->cap_edits * 2 : 8;
            struct curate_edit_ *ne = realloc(r->edits, nc * sizeof *ne);
            if (!ne)
                return CURATE_ERR_NOMEM;
            r->edits = ne;
            r->cap_edits = nc;
        }
        e = &r->edits[r->n_edits++];
        e->key_off = r->arena.len;
        e->key_len = klen;
        if (curate_buf_append(&r->arena, key, klen) != CURATE_OK) {
            r->n_edits--;
            return CURATE_ERR_NOMEM;
        }
    }
    e->remove = remove;
    e->val_off = r->arena.len;
    e->val_len = len;
    if (len && curate_buf_append(&r->arena, json, len) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    return CURATE_OK;
}

curate_status curate_record_set_raw(curate_record *r, const char *key, const char *json, size_t len)
{
    return record_edit(r, key, json, len, 0);
}

curate_status curate_record_set_string(curate_record *r, const char *key, const char *s, size_t n)
{
    curate_buf tmp;
    curate_buf_init(&tmp);
    curate_status st = curate_buf_append_json_string(&tmp, s, n);
    if (st == CURATE_OK)
        st = record_edit(r, key, tmp.data, tmp.len, 0);
    curate_buf_release(&tmp);
    return st;
}

curate_status curate_record_set_int(curate_record *r, const char *key, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    return record_edit(r, key, tmp, (size_t)n, 0);
}

curate_status curate_record_set_double(curate_record *r, const char *key, double v)
{
    char tmp[40];
    /* JSON has no NaN or infinity: write null for them. */
    int n = (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308)
                ? snprintf(tmp, sizeof tmp, "null")
                : snprintf(tmp, sizeof tmp, "%.17g", v);
    /* Prefer the shortest spelling that reads back to the same double. */
    for (int prec = 6; prec < 17 && v == v; prec++) {
        char t2[40];
        int n2 = snprintf(t2, sizeof t2, "%.*g", prec, v);
        if (strtod(t2, NULL) == v) {
            memcpy(tmp, t2, (size_t)n2 + 1);
            n = n2;
            break;
        }
    }
    return record_edit(r, key, tmp, (size_t)n, 0);
}

curate_status curate_record_set_bool(curate_record *r, const char *key, int v)
{
    return record_edit(r, key, v ? "true" : "false", v ? 4u : 5u, 0);
}

curate_status curate_record_remove(curate_record *r, const char *key)
{
    return record_edit(r, key, NULL, 0, 1);
}

curate_status curate_record_render(const curate_record *r, curate_buf *out)
{
    if (r->n_edits == 0)
        return curate_buf_append(out, r->line, r->len);

    /* used[e]: edit e has been applied to a member already. */
    enum { SMALL = 32 };
    unsigned char small_used[SMALL];
    unsigned char *used = small_used;
    if (r->n_edits > SMALL && !(used = malloc(r->n_edits)))
        return CURATE_ERR_NOMEM;
    memset(used, 0, r->n_edits);
    curate_status st = CURATE_OK;
    const char *L = r->line;
    size_t lead_end = r->n_members ? r->members[0].start : r->close;
    st = curate_buf_append(out, L, lead_end);
    int any = 0;
    for (size_t i = 0; i < r->n_members && st == CURATE_OK; i++) {
        const curate_member *m = &r->members[i];
        long edit = -1;
        for (size_t e = 0; e < r->n_edits; e++) {
            const struct curate_edit_ *x = &r->edits[e];
            if (member_key_is(m, r->arena.data + x->key_off, x->key_len)) {
                edit = (long)e;
                break;
            }
        }
        if (edit >= 0 && r->edits[edit].remove)
            continue;
        if (edit >= 0 && used[edit])
            edit = -2; /* a later duplicate key: pass it through unchanged */
        if (any)
            st = curate_buf_append(out, L + r->members[i - 1].end,
                                   m->start - r->members[i - 1].end);
        any = 1;
        if (st != CURATE_OK)
            break;
        if (edit >= 0) {
            const struct curate_edit_ *x = &r->edits[edit];
            used[edit] = 1;
            st = curate_buf_append(out, L + m->start, (size_t)(m->value - L) - m->start);
            if (st == CURATE_OK)
                st = curate_buf_append(out, r->arena.data + x->val_off, x->val_len);
        } else {
            st = curate_buf_append(out, L + m->start, m->end - m->start);
        }
    }
    for (size_t e = 0; e < r->n_edits && st == CURATE_OK; e++) {
        const struct curate_edit_ *x = &r->edits[e];
        if (x->remove || used[e])
            continue;
        if (any)
            st = curate_buf_append_char(out, ',');
        any = 1;
        if (st == CURATE_OK)
            st = curate_buf_append_json_string(out, r->arena.data + x->key_off, x->key_len);
        if (st == CURATE_OK)
            st = curate_buf_append_char(out, ':');
        if (st == CURATE_OK)
            st = curate_buf_append(out, r->arena.data + x->val_off, x->val_len);
    }
    if (st == CURATE_OK) {
        size_t tail = r->n_members ? r->members[r->n_members - 1].end : r->close;
        st = curate_buf_append(out, L + tail, r->len - tail);
    }
    if (used != small_used)
        free(used);
    return st;
}
