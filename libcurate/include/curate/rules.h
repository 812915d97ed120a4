/*
 * curate/rules.h - rewrite rules over text: regular expressions (PCRE2,
 * 8-bit, UTF mode) that replace, redact or drop, read from rule files or
 * taken from built-in presets.  Each pattern is compiled once, with the
 * JIT when the platform has one.
 *
 * Rule syntax (one rule per line):
 *
 *     # a comment: '#' as the first non-blank character of a line
 *     replace /PATTERN/FLAGS REPLACEMENT
 *     redact  /PATTERN/FLAGS LABEL
 *     drop    /PATTERN/FLAGS [NAME]
 *
 *   - Blank lines are ignored; "\r\n" line ends are accepted.
 *   - The delimiter is the first character after the action and the blanks
 *     that follow it; any ASCII punctuation except '\' works ("/", "|",
 *     "!", "#", ...).  Inside the pattern the delimiter is written as
 *     '\' + delimiter (PCRE2 reads that as the literal character, so the
 *     pattern is handed to PCRE2 exactly as written).  Choose a delimiter
 *     the pattern does not need as an operator: with "|" as delimiter,
 *     "\|" is a literal bar, not an alternation.
 *   - FLAGS, right after the closing delimiter, are any of
 *       i  caseless                      m  ^ and $ match at line breaks
 *       s  . matches line breaks too     x  extended (blanks, # comments)
 *       u  Unicode properties for \w, \d, \b, [[:alpha:]] (PCRE2_UCP)
 *     Patterns are always compiled in UTF mode; \C is refused.
 *   - REPLACEMENT is the rest of the line (trailing blanks removed), or a
 *     double-quoted string when it starts with '"' (escapes \\ \" \n \t \r;
 *     quotes are the way to write leading or trailing spaces).  It may be
 *     empty: the match is deleted.  "$1" or "${1}" insert a captured group,
 *     "${name}" a named group, "$$" a dollar sign; a group that did not
 *     take part in the match inserts nothing.
 *   - LABEL ([A-Za-z0-9_-], at most 32) makes each match "<LABEL>"; it is
 *     inserted literally, and matches are counted per rule for reports.
 *   - drop: if the pattern matches anywhere, the text is dropped (the tool
 *     rejects the record).  NAME ([A-Za-z0-9_-], at most 32; default
 *     "drop") names the reason.
 *
 * Every match of a replace or redact rule is rewritten (global); rules run
 * in the order they were added, each on the output of the one before.
 * After an empty match the search moves on by one character, so a pattern
 * that can match the empty string still terminates.
 *
 * Thread safety: building a set is single-threaded.  curate_rules_apply
 * uses scratch buffers and counters inside the set, so one set serves one
 * thread at a time; give each thread its own set.
 */
#ifndef CURATE_RULES_H
#define CURATE_RULES_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum curate_rule_action {
    CURATE_RULE_REPLACE = 0,
    CURATE_RULE_REDACT,
    CURATE_RULE_DROP
} curate_rule_action;

/* What a rule is and what it has done so far (counters are cumulative
 * over every curate_rules_apply call on the set). */
typedef struct curate_rule_info {
    curate_rule_action action;
    const char *source;     /* rule file name, or "preset:NAME" */
    uint64_t line;          /* 1-based line in source */
    const char *name;       /* redact: the label ("EMAIL"); drop: the name
                               ("drop" by default); replace: "" */
    uint64_t texts;         /* texts in which the rule matched */
    uint64_t matches;       /* matches rewritten (replace, redact) */
} curate_rule_info;

typedef struct curate_rules curate_rules;

/* An empty set.  Returns NULL (err: CURATE_ERR_NOMEM) on failure. */
curate_rules *curate_rules_new(curate_error *err);

/* Free the set and everything it compiled (accepts NULL). */
void curate_rules_free(curate_rules *rs);

/*
 * Parse rules from text (n bytes, need not be NUL-terminated) and append
 * them to the set.  source names the text in errors and in
 * curate_rule_info.  On a malformed line nothing from this text is kept
 * and err says where: file = source, line = the line number, and a message
 * such as "bad pattern /(ab/: missing closing parenthesis at offset 3"
 * (PCRE2's message and its offset within the pattern).  Returns
 * CURATE_ERR_RULES (syntax), CURATE_ERR_REGEX (PCRE2 refused the pattern)
 * or CURATE_ERR_NOMEM.
 */
curate_status curate_rules_add_text(curate_rules *rs, const char *text, size_t n,
                                    const char *source, curate_error *err);

/*
 * Read a rule file and add its rules as curate_rules_add_text does.
 * CURATE_ERR_IO if it cannot be read (err names the file and the system's
 * reason); CURATE_ERR_TOO_LARGE above 16 MiB.
 */
curate_status curate_rules_add_file(curate_rules *rs, const char *path, curate_error *err);

/*
 * Add a built-in preset by name (source "preset:NAME").  Presets:
 *   html    script/style blocks and comments removed, block tags become
 *           line breaks, other tags removed, common entities decoded
 *   urls    http(s)/ftp URLs and www. hosts redacted as <URL>
 *   emails  e-mail addresses redacted as <EMAIL>
 *   phones  phone numbers (North American forms; international forms
 *           with a leading +) redacted as <PHONE>
 *   pii     emails and phones
 * CURATE_ERR_INVALID for an unknown name.
 */
curate_status curate_rules_add_preset(curate_rules *rs, const char *name, curate_error *err);

/* NULL-terminated list of preset names (static). */
const char *const *curate_rules_preset_names(void);

/* The rule text of a preset, in the syntax above (static), or NULL. */
const char *curate_rules_preset_text(const char *name);

/* Number of rules in the set, and rule i (0-based; NULL if out of range). */
size_t curate_rules_count(const curate_rules *rs);
const curate_rule_info *curate_rules_info(const curate_rules *rs, size_t i);

/* What curate_rules_apply did to one text. */
typedef struct curate_rules_result {
    int dropped;            /* a drop rule matched; out was not touched */
    size_t drop_rule;       /* index of that rule (when dropped) */
    int changed;            /* the text was rewritten and appended to out */
    uint64_t matches;       /* matches rewritten in this text */
} curate_rules_result;

/*
 * Run every rule over valid UTF-8 s[0..n).  If some rule rewrote the text,
 * the final text is appended to out and res->changed is 1; if nothing
 * matched, out is left untouched (the text is s itself) and changed is 0;
 * if a drop rule matched, processing stops there with res->dropped = 1.
 * Errors: CURATE_ERR_UTF8 if s is not valid UTF-8 (offset in err);
 * CURATE_ERR_REGEX if PCRE2 gave up on a match (its match or depth limit,
 * a JIT stack overflow: catastrophic backtracking), with the rule's file
 * and line in the message; CURATE_ERR_NOMEM.
 */
curate_status curate_rules_apply(curate_rules *rs, const char *s, size_t n, curate_buf *out,
                                 curate_rules_result *res, curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_RULES_H */
