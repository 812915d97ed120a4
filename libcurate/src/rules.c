/*
 * rules.c - replace / redact / drop rules over PCRE2 (see curate/rules.h
 * for the syntax).
 *
 * Patterns are compiled in UTF mode and JIT-compiled once; matching uses
 * PCRE2_NO_UTF_CHECK because curate_rules_apply validates the text itself
 * (one fast pass) instead of letting every rule re-check it.  The global
 * replace loop is written here rather than with pcre2_substitute so that
 * a text nothing matched is never copied, and so matches can be counted.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "curate/rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "curate/text.h"

#define MAX_RULE_FILE ((size_t)16 << 20)
#define MAX_NAME 32

/* One piece of a replacement template: literal bytes or a group. */
typedef struct piece {
    int group;          /* -1: literal text[off..off+len) */
    size_t off, len;
} piece;

typedef struct rule {
    curate_rule_info info;
    pcre2_code *code;
    pcre2_match_data *md;
    char *text;         /* replacement literals (or "<LABEL>") */
    piece *pieces;
    size_t n_pieces;
    char *source;       /* owned copy behind info.source */
    char name[MAX_NAME + 3];
} rule;

struct curate_rules {
    rule *rules;
    size_t n, cap;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    curate_buf scratch[2];
};

/* ------------------------------------------------------------------------ */
/* Presets                                                                  */
/* ------------------------------------------------------------------------ */

static const char k_preset_html[] =
    "# Blocks whose content is not text: scripts, styles.\n"
    "replace /<(script|style|noscript)\\b[^>]*>.*?<\\/\\1\\s*>/is \"\"\n"
    "# Comments.\n"
    "replace /<!--.*?-->/s \"\"\n"
    "# Tags that end a block of text become line breaks.\n"
    "replace /<\\/?(?:p|div|br|hr|li|ul|ol|dl|dt|dd|tr|table|h[1-6]|blockquote|pre|section|"
    "article|header|footer|nav|aside|title)\\b[^<>]*>/i \"\\n\"\n"
    "# Every other tag.\n"
    "replace /<\\/?[A-Za-z][A-Za-z0-9:-]*(?:\\s[^<>]*)?\\/?>/ \"\"\n"
    "# The common entities; &amp; last so \"&amp;lt;\" becomes \"&lt;\".\n"
    "replace /&nbsp;/i \" \"\n"
    "replace /&lt;/i <\n"
    "replace /&gt;/i >\n"
    "replace /&quot;/i \"\\\"\"\n"
    "replace /&#0*39;|&apos;/i '\n"
    "replace /&amp;/i &\n";

static const char k_preset_urls[] =
    "# Scheme URLs, up to a blank, quote or angle bracket; trailing\n"
    "# punctuation stays outside.  '~' delimits: the patterns use '/' and '|'.\n"
    "redact ~\\b(?:https?|ftp)://[^\\s<>\"]*[^\\s<>\".,;:!?')\\]}]~i URL\n"
    "# Bare www. host names with an optional path.\n"
    "redact ~\\bwww\\.[a-z0-9-]+(?:\\.[a-z0-9-]+)+(?:/[^\\s<>\"]*[^\\s<>\".,;:!?')\\]}])?~i URL\n";

static const char k_preset_emails[] =
    "# The local part starts at a word boundary and is matched possessively,\n"
    "# so a word without '@' costs one short attempt, not a backtracking one\n"
    "# from each of its letters.\n"
    "redact /\\b[A-Za-z0-9._%+-]++@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}\\b/ EMAIL\n";

static const char k_preset_phones[] =
    "# North American: (555) 123-4567, 555-123-4567, 555.123.4567, +1 555 123 4567.\n"
    "redact /(?<![\\w+])(?:\\+?1[ .-]?)?(?:\\(\\d{3}\\)|\\d{3})[ .-]?\\d{3}[ .-]\\d{4}(?!\\w)/ PHONE\n"
    "# International with a leading +: +44 20 7946 0958, +49 (0)30 1234567.\n"
    "redact /(?<![\\w+])\\+\\d{1,3}(?:[ .-]?\\(\\d{1,4}\\))?[ .-]?\\d{1,4}(?:[ .-]?\\d{2,5}){2,5}"
    "(?!\\w)/ PHONE\n";

static const struct {
    const char *name;
    const char *text[3];
} k_presets[] = {
    {"html", {k_preset_html, NULL, NULL}},
    {"urls", {k_preset_urls, NULL, NULL}},
    {"emails", {k_preset_emails, NULL, NULL}},
    {"phones", {k_preset_phones, NULL, NULL}},
    {"pii", {k_preset_emails, k_preset_phones, NULL}},
};
#define N_PRESETS (sizeof k_presets / sizeof k_presets[0])

const char *const *curate_rules_preset_names(void)
{
    static const char *const names[] = {"html", "urls", "emails", "phones", "pii", NULL};
    return names;
}

const char *curate_rules_preset_text(const char *name)
{
    /* pii is the concatenation; build it once (static, never freed). */
    static char pii[sizeof k_preset_emails + sizeof k_preset_phones];
    if (!name)
        return NULL;
    if (strcmp(name, "pii") == 0) {
        if (!pii[0])
            snprintf(pii, sizeof pii, "%s%s", k_preset_emails, k_preset_phones);
        return pii;
    }
    for (size_t i = 0; i < N_PRESETS; i++)
        if (strcmp(k_presets[i].name, name) == 0)
            return k_presets[i].text[0];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Set lifetime                                                             */
/* ------------------------------------------------------------------------ */

curate_rules *curate_rules_new(curate_error *err)
{
    curate_rules *rs = calloc(1, sizeof *rs);
    if (!rs)
        goto nomem;
    curate_buf_init(&rs->scratch[0]);
    curate_buf_init(&rs->scratch[1]);
    rs->mctx = pcre2_match_context_create(NULL);
    /* The default JIT stack (32 KiB) is small for alternations over long
     * texts; 8 MiB is ample and only touched when needed. */
    rs->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!rs->mctx || !rs->jit_stack) {
        curate_rules_free(rs);
        goto nomem;
    }
    pcre2_jit_stack_assign(rs->mctx, NULL, rs->jit_stack);
    return rs;
nomem:
    curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    return NULL;
}

static void rule_release(rule *r)
{
    pcre2_match_data_free(r->md);
    pcre2_code_free(r->code);
    free(r->text);
    free(r->pieces);
    free(r->source);
}

void curate_rules_free(curate_rules *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++)
        rule_release(&rs->rules[i]);
    free(rs->rules);
    pcre2_jit_stack_free(rs->jit_stack);
    pcre2_match_context_free(rs->mctx);
    curate_buf_release(&rs->scratch[0]);
    curate_buf_release(&rs->scratch[1]);
    free(rs);
}

size_t curate_rules_count(const curate_rules *rs)
{
    return rs ? rs->n : 0;
}

const curate_rule_info *curate_rules_info(const curate_rules *rs, size_t i)
{
    return rs && i < rs->n ? &rs->rules[i].info : NULL;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct parse_ctx {
    const char *source;
    uint64_t line;
    curate_error *err;
} parse_ctx;

static curate_status perr(const parse_ctx *pc, curate_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static curate_status perr(const parse_ctx *pc, curate_status code, const char *fmt, ...)
{
    if (!pc->err)
        return code;
    char msg[sizeof pc->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    curate_error_set(pc->err, code, "%s", msg);
    curate_error_at(pc->err, pc->source, pc->line);
    return code;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Decode a double-quoted replacement: s[0] is the opening quote. */
static curate_status parse_quoted(const parse_ctx *pc, const char *s, size_t n, curate_buf *out)
{
    size_t i = 1;
    for (; i < n && s[i] != '"'; i++) {
        char c = s[i];
        if (c == '\\') {
            if (++i >= n)
                break;
            switch (s[i]) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            default:
                return perr(pc, CURATE_ERR_RULES, "unknown escape '\\%c' in quoted replacement",
                            s[i]);
            }
        }
        if (curate_buf_append_char(out, c) != CURATE_OK)
            return CURATE_ERR_NOMEM;
    }
    if (i >= n)
        return perr(pc, CURATE_ERR_RULES, "unterminated quoted replacement");
    for (i++; i < n; i++)
        if (!is_blank(s[i]))
            return perr(pc, CURATE_ERR_RULES, "text after the closing quote of the replacement");
    return CURATE_OK;
}

/* Split a replacement into literal pieces and group references. */
static curate_status parse_template(const parse_ctx *pc, rule *r, const char *t, size_t n)
{
    uint32_t groups = 0;
    pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    /* At most one piece per byte plus one. */
    r->pieces = calloc(n + 1, sizeof *r->pieces);
    r->text = malloc(n + 1);
    if (!r->pieces || !r->text)
        return CURATE_ERR_NOMEM;
    size_t tlen = 0, lit_start = 0, np = 0;
    for (size_t i = 0; i < n;) {
        if (t[i] != '$') {
            r->text[tlen++] = t[i++];
            continue;
        }
        if (i + 1 < n && t[i + 1] == '$') {
            r->text[tlen++] = '$';
            i += 2;
            continue;
        }
        long g = -1;
        size_t j = i + 1;
        if (j < n && t[j] >= '0' && t[j] <= '9') {
            g = 0;
            while (j < n && t[j] >= '0' && t[j] <= '9' && g < 100000)
                g = g * 10 + (t[j++] - '0');
        } else if (j < n && t[j] == '{') {
            size_t k = j + 1;
            while (k < n && t[k] != '}')
                k++;
            if (k >= n || k == j + 1)
                return perr(pc, CURATE_ERR_RULES, "unterminated ${...} in replacement");
            char ref[64];
            size_t rl = k - j - 1;
            if (rl >= sizeof ref)
                return perr(pc, CURATE_ERR_RULES, "group name too long in replacement");
            memcpy(ref, t + j + 1, rl);
            ref[rl] = 0;
            if (ref[0] >= '0' && ref[0] <= '9') {
                char *end;
                g = strtol(ref, &end, 10);
                if (*end)
                    return perr(pc, CURATE_ERR_RULES, "bad group reference ${%s}", ref);
            } else {
                int num = pcre2_substring_number_from_name(r->code, (PCRE2_SPTR)ref);
                if (num < 0)
                    return perr(pc, CURATE_ERR_RULES, "no group named '%s' in the pattern", ref);
                g = num;
            }
            j = k + 1;
        } else {
            return perr(pc, CURATE_ERR_RULES,
                        "'$' in a replacement must be followed by a group number, {NAME} or '$'");
        }
        if (g < 0 || (uint32_t)g > groups)
            return perr(pc, CURATE_ERR_RULES, "replacement refers to group %ld, the pattern has %u",
                        g, groups);
        if (tlen > lit_start) {
            r->pieces[np++] = (piece){-1, lit_start, tlen - lit_start};
        }
        r->pieces[np++] = (piece){(int)g, 0, 0};
        lit_start = tlen;
        i = j;
    }
    if (tlen > lit_start)
        r->pieces[np++] = (piece){-1, lit_start, tlen - lit_start};
    r->text[tlen] = 0;
    r->n_pieces = np;
    return CURATE_OK;
}

static curate_status add_rule_slot(curate_rules *rs, rule **out)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof *rs->rules)
            return CURATE_ERR_NOMEM;
        rule *p = realloc(rs->rules, cap * sizeof *p);
        if (!p)
            return CURATE_ERR_NOMEM;
        rs->rules = p;
        rs->cap = cap;
    }
    *out = &rs->rules[rs->n];
    memset(*out, 0, sizeof **out);
    return CURATE_OK;
}

/* Parse one non-blank, non-comment line (no line end) into a new rule. */
static curate_status parse_line(curate_rules *rs, const parse_ctx *pc, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_blank(s[i]))
        i++;
    size_t a0 = i;
    while (i < n && s[i] >= 'a' && s[i] <= 'z')
        i++;
    size_t alen = i - a0;
    curate_rule_action action;
    if (alen == 7 && memcmp(s + a0, "replace", 7) == 0)
        action = CURATE_RULE_REPLACE;
    else if (alen == 6 && memcmp(s + a0, "redact", 6) == 0)
        action = CURATE_RULE_REDACT;
    else if (alen == 4 && memcmp(s + a0, "drop", 4) == 0)
        action = CURATE_RULE_DROP;
    else {
        size_t w = a0;
        while (w < n && !is_blank(s[w]))
            w++;
        return perr(pc, CURATE_ERR_RULES,
                    "unknown action '%.*s' (expected replace, redact or drop)", (int)(w - a0 > 40 ? 40 : w - a0),
                    s + a0);
    }
    if (i >= n || !is_blank(s[i]))
        return perr(pc, CURATE_ERR_RULES, "expected a blank and a /PATTERN/ after '%.*s'",
                    (int)alen, s + a0);
    while (i < n && is_blank(s[i]))
        i++;
    if (i >= n)
        return perr(pc, CURATE_ERR_RULES, "missing pattern");
    char delim = s[i];
    if (!(delim > 0x20 && delim < 0x7F) || delim == '\\' ||
        (delim >= '0' && delim <= '9') || (delim >= 'A' && delim <= 'Z') ||
        (delim >= 'a' && delim <= 'z'))
        return perr(pc, CURATE_ERR_RULES,
                    "the pattern must start with a punctuation delimiter such as '/'");
    size_t p0 = ++i;
    while (i < n && s[i] != delim) {
        if (s[i] == '\\')
            i++;
        i++;
    }
    if (i >= n)
        return perr(pc, CURATE_ERR_RULES, "unterminated pattern: no closing '%c'", delim);
    size_t plen = i - p0;
    i++;
    uint32_t opts = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C;
    for (; i < n && !is_blank(s[i]); i++) {
        switch (s[i]) {
        case 'i': opts |= PCRE2_CASELESS; break;
        case 'm': opts |= PCRE2_MULTILINE; break;
        case 's': opts |= PCRE2_DOTALL; break;
        case 'x': opts |= PCRE2_EXTENDED; break;
        case 'u': opts |= PCRE2_UCP; break;
        default:
            return perr(pc, CURATE_ERR_RULES, "unknown flag '%c' (flags are i, m, s, x, u)", s[i]);
        }
    }
    while (i < n && is_blank(s[i]))
        i++;
    const char *rest = s + i;
    size_t rlen = n - i;
    while (rlen && is_blank(rest[rlen - 1]))
        rlen--;

    rule *r;
    if (add_rule_slot(rs, &r) != CURATE_OK)
        return CURATE_ERR_NOMEM;
    r->info.action = action;
    r->info.line = pc->line;
    r->source = strdup(pc->source);
    if (!r->source)
        return CURATE_ERR_NOMEM;
    r->info.source = r->source;
    r->info.name = r->name;
    rs->n++; /* from here on, the caller's cleanup frees this slot */

    int ecode;
    PCRE2_SIZE eoff;
    r->code = pcre2_compile((PCRE2_SPTR)(s + p0), plen, opts, &ecode, &eoff, NULL);
    if (!r->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        return perr(pc, CURATE_ERR_REGEX, "bad pattern %c%.*s%c: %s at offset %zu", delim,
                    (int)(plen > 80 ? 80 : plen), s + p0, delim, (const char *)msg, (size_t)eoff);
    }
    /* Without a JIT (unsupported CPU) the interpreter is used. */
    (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    r->md = pcre2_match_data_create_from_pattern(r->code, NULL);
    if (!r->md)
        return CURATE_ERR_NOMEM;

    switch (action) {
    case CURATE_RULE_REPLACE: {
        curate_buf rep;
        curate_buf_init(&rep);
        curate_status st = CURATE_OK;
        if (rlen && rest[0] == '"')
            st = parse_quoted(pc, rest, rlen, &rep);
        else
            st = curate_buf_append(&rep, rest, rlen);
        if (st == CURATE_OK && curate_utf8_check(rep.data ? rep.data : "", rep.len) != rep.len)
            st = perr(pc, CURATE_ERR_RULES, "replacement is not valid UTF-8");
        if (st == CURATE_OK)
            st = parse_template(pc, r, rep.data ? rep.data : "", rep.len);
        curate_buf_release(&rep);
        return st;
    }
    case CURATE_RULE_REDACT: {
        if (!name_ok(rest, rlen))
            return perr(pc, CURATE_ERR_RULES,
                        "redact needs a LABEL of letters, digits, '_' or '-' (at most %d)", MAX_NAME);
        memcpy(r->name, rest, rlen);
        r->name[rlen] = 0;
        r->text = malloc(rlen + 3);
        r->pieces = malloc(sizeof *r->pieces);
        if (!r->text || !r->pieces)
            return CURATE_ERR_NOMEM;
        r->text[0] = '<';
        memcpy(r->text + 1, rest, rlen);
        r->text[rlen + 1] = '>';
        r->text[rlen + 2] = 0;
        r->pieces[0] = (piece){-1, 0, rlen + 2};
        r->n_pieces = 1;
        return CURATE_OK;
    }
    case CURATE_RULE_DROP:
    default:
        if (rlen == 0) {
            strcpy(r->name, "drop");
        } else if (name_ok(rest, rlen)) {
            memcpy(r->name, rest, rlen);
            r->name[rlen] = 0;
        } else {
            return perr(pc, CURATE_ERR_RULES,
                        "a drop NAME is letters, digits, '_' or '-' (at most %d)", MAX_NAME);
        }
        return CURATE_OK;
    }
}

curate_status curate_rules_add_text(curate_rules *rs, const char *text, size_t n,
                                    const char *source, curate_error *err)
{
    parse_ctx pc = {source ? source : "", 0, err};
    const size_t keep = rs->n;
    curate_status st = CURATE_OK;
    size_t i = 0;
    while (i < n && st == CURATE_OK) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - text) : n;
        size_t len = end - i;
        if (len && text[i + len - 1] == '\r')
            len--;
        pc.line++;
        size_t k = 0;
        while (k < len && is_blank(text[i + k]))
            k++;
        if (k < len && text[i + k] != '#') {
            st = parse_line(rs, &pc, text + i, len);
            if (st == CURATE_ERR_NOMEM)
                perr(&pc, st, "out of memory");
        }
        i = end + 1;
    }
    if (st != CURATE_OK) {
        while (rs->n > keep)
            rule_release(&rs->rules[--rs->n]);
    }
    return st;
}

curate_status curate_rules_add_file(curate_rules *rs, const char *path, curate_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        curate_error_set(err, CURATE_ERR_IO, "cannot open rule file: %s", strerror(errno));
        curate_error_at(err, path, 0);
        return CURATE_ERR_IO;
    }
    curate_buf b;
    curate_buf_init(&b);
    curate_status st = CURATE_OK;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + got > MAX_RULE_FILE) {
            st = curate_error_set(err, CURATE_ERR_TOO_LARGE, "rule file larger than 16 MiB");
            break;
        }
        if (curate_buf_append(&b, chunk, got) != CURATE_OK) {
            st = curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
            break;
        }
    }
    if (st == CURATE_OK && ferror(f))
        st = curate_error_set(err, CURATE_ERR_IO, "cannot read rule file: %s", strerror(errno));
    fclose(f);
    if (st != CURATE_OK) {
        curate_error_at(err, path, 0);
        curate_buf_release(&b);
        return st;
    }
    st = curate_rules_add_text(rs, b.data ? b.data : "", b.len, path, err);
    curate_buf_release(&b);
    return st;
}

curate_status curate_rules_add_preset(curate_rules *rs, const char *name, curate_error *err)
{
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (strcmp(k_presets[i].name, name) != 0)
            continue;
        char source[64];
        snprintf(source, sizeof source, "preset:%s", name);
        const size_t keep = rs->n;
        for (int k = 0; k < 3 && k_presets[i].text[k]; k++) {
            curate_status st = curate_rules_add_text(rs, k_presets[i].text[k],
                                                     strlen(k_presets[i].text[k]), source, err);
            if (st != CURATE_OK) {
                while (rs->n > keep)
                    rule_release(&rs->rules[--rs->n]);
                return st;
            }
        }
        return CURATE_OK;
    }
    return curate_error_set(err, CURATE_ERR_INVALID,
                            "unknown preset '%s' (known: html, urls, emails, phones, pii)", name);
}

/* ------------------------------------------------------------------------ */
/* Matching                                                                 */
/* ------------------------------------------------------------------------ */

static curate_status match_error(const rule *r, int rc, curate_error *err)
{
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return curate_error_set(err, CURATE_ERR_REGEX, "rule %s:%llu: matching failed: %s",
                            r->info.source, (unsigned long long)r->info.line, (const char *)msg);
}

/* Append the expansion of r's template for the current match. */
static curate_status expand(const rule *r, const char *subj, const PCRE2_SIZE *ov, curate_buf *dst)
{
    for (size_t k = 0; k < r->n_pieces; k++) {
        const piece *pc = &r->pieces[k];
        curate_status st;
        if (pc->group < 0) {
            st = curate_buf_append(dst, r->text + pc->off, pc->len);
        } else {
            PCRE2_SIZE a = ov[2 * pc->group], b = ov[2 * pc->group + 1];
            if (a == PCRE2_UNSET || b < a)
                continue;
            st = curate_buf_append(dst, subj + a, b - a);
        }
        if (st != CURATE_OK)
            return st;
    }
    return CURATE_OK;
}

/* Length of the UTF-8 character starting with byte c. */
static size_t char_len(unsigned char c)
{
    return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

curate_status curate_rules_apply(curate_rules *rs, const char *s, size_t n, curate_buf *out,
                                 curate_rules_result *res, curate_error *err)
{
    memset(res, 0, sizeof *res);
    size_t bad = curate_utf8_check(s, n);
    if (bad < n) {
        curate_error_set(err, CURATE_ERR_UTF8, "invalid UTF-8");
        curate_error_at_offset(err, bad);
        return CURATE_ERR_UTF8;
    }
    const char *cur = s;
    size_t curn = n;
    int which = 0; /* scratch buffer to write next */
    for (size_t ri = 0; ri < rs->n; ri++) {
        rule *r = &rs->rules[ri];
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        size_t offset = 0, copied = 0;
        uint64_t count = 0;
        uint32_t mopts = 0;
        curate_buf *dst = &rs->scratch[which];
        for (;;) {
            int rc = pcre2_match(r->code, (PCRE2_SPTR)cur, curn, offset,
                                 mopts | PCRE2_NO_UTF_CHECK, r->md, rs->mctx);
            if (rc == PCRE2_ERROR_NOMATCH) {
                if (mopts == 0)
                    break;
                /* No non-empty match where the empty one was: step over
                 * one character and search on. */
                offset += char_len((unsigned char)cur[offset]);
                mopts = 0;
                if (offset > curn)
                    break;
                continue;
            }
            if (rc < 0)
                return match_error(r, rc, err);
            if (r->info.action == CURATE_RULE_DROP) {
                r->info.texts++;
                res->dropped = 1;
                res->drop_rule = ri;
                return CURATE_OK;
            }
            size_t ms = ov[0], me = ov[1];
            if (ms < copied || me < ms) /* \K tricks; treat as no rewrite */
                ms = me = me < copied ? copied : me;
            if (count == 0)
                curate_buf_reset(dst);
            if (curate_buf_append(dst, cur + copied, ms - copied) != CURATE_OK ||
                expand(r, cur, ov, dst) != CURATE_OK)
                return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
            copied = me;
            count++;
            offset = me;
            if (ov[0] == ov[1]) {
                if (me >= curn)
                    break;
                mopts = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
            } else {
                mopts = 0;
            }
        }
        if (count == 0)
            continue;
        if (curate_buf_append(dst, cur + copied, curn - copied) != CURATE_OK)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        r->info.texts++;
        r->info.matches += count;
        res->matches += count;
        cur = dst->data ? dst->data : "";
        curn = dst->len;
        which ^= 1;
        res->changed = 1;
    }
    if (res->changed && curate_buf_append(out, cur, curn) != CURATE_OK)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    return CURATE_OK;
}
