/*
 * test_rules.c - rule syntax, the three actions, flags, empty matches,
 * error reporting (file, line, PCRE2 message and offset) and the presets on
 * realistic strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "curate/rules.h"

/* Build a set from rule text; fails the test if it does not load. */
static curate_rules *set_of(const char *text)
{
    curate_error err;
    curate_error_clear(&err);
    curate_rules *rs = curate_rules_new(&err);
    assert_non_null(rs);
    curate_status st = curate_rules_add_text(rs, text, strlen(text), "t.rules", &err);
    if (st != CURATE_OK)
        fail_msg("rules did not load: %s (line %llu)", err.message, (unsigned long long)err.line);
    return rs;
}

/* Apply and return the text after the rules (static buffer). */
static const char *run(curate_rules *rs, const char *in, curate_rules_result *res)
{
    static curate_buf out;
    static char copy[4096];
    curate_buf_init(&out);
    curate_rules_result local;
    if (!res)
        res = &local;
    curate_error err;
    curate_status st = curate_rules_apply(rs, in, strlen(in), &out, res, &err);
    if (st != CURATE_OK)
        fail_msg("apply failed: %s", err.message);
    const char *r = res->changed ? out.data : in;
    snprintf(copy, sizeof copy, "%s", r);
    curate_buf_release(&out);
    return copy;
}

static void expect_rule(const char *rules, const char *in, const char *want)
{
    curate_rules *rs = set_of(rules);
    assert_string_equal(run(rs, in, NULL), want);
    curate_rules_free(rs);
}

/* ---- actions ----------------------------------------------------------------- */

static void test_replace(void **state)
{
    (void)state;
    expect_rule("replace /cat/ dog", "cat and cat", "dog and dog");
    expect_rule("replace /(\\w+)@(\\w+)/ $2 at ${1}", "me@home", "home at me");
    expect_rule("replace /(?<user>\\w+)@/ ${user}-", "me@home", "me-home");
    expect_rule("replace /USD/ $$", "10 USD", "10 $");
    expect_rule("replace /\\s*-\\s*/ \" - \"", "a-b", "a - b");
    expect_rule("replace /<br>/ \"\\n\\t\\\"q\\\"\\\\\"", "x<br>y", "x\n\t\"q\"\\y");
    expect_rule("replace /[0-9]+/", "a1b22c", "abc");          /* empty: delete */
    expect_rule("replace /[0-9]+/ \"\"", "a1b22c", "abc");
    expect_rule("replace /(a)|b/ [$1]", "ab", "[a][]");       /* unset group: empty */
    expect_rule("replace /x/ two words here  ", "x", "two words here");
    /* Later rules see earlier output. */
    expect_rule("replace /a/ b\nreplace /b/ c", "a", "c");
}

static void test_replace_unchanged(void **state)
{
    (void)state;
    curate_rules *rs = set_of("replace /zzz/ y");
    curate_buf out;
    curate_buf_init(&out);
    curate_buf_append_str(&out, "keep");
    curate_rules_result res;
    assert_int_equal(curate_rules_apply(rs, "abc", 3, &out, &res, NULL), CURATE_OK);
    assert_int_equal(res.changed, 0);
    assert_int_equal(res.dropped, 0);
    assert_int_equal(res.matches, 0);
    assert_string_equal(out.data, "keep"); /* untouched */
    curate_buf_release(&out);
    curate_rules_free(rs);
}

static void test_empty_matches(void **state)
{
    (void)state;
    /* Python's re.sub('x*', '-', 'abc') == '-a-b-c-' */
    expect_rule("replace /x*/ -", "abc", "-a-b-c-");
    /* Stepping over an empty match moves by a whole character. */
    expect_rule("replace /x*/ -", "\xC3\xA9\xE2\x82\xAC", "-\xC3\xA9-\xE2\x82\xAC-");
    expect_rule("replace /\\b/ |", "hi you", "|hi| |you|");
    expect_rule("replace /^/m > ", "a\nb", ">a\n>b");
}

static void test_redact(void **state)
{
    (void)state;
    curate_rules *rs = set_of("redact /\\d{4}/ YEAR\nredact /secret/i TOP_SECRET");
    curate_rules_result res;
    assert_string_equal(run(rs, "In 1999 and 2024 the Secret", &res),
                        "In <YEAR> and <YEAR> the <TOP_SECRET>");
    assert_int_equal(res.matches, 3);
    assert_int_equal(res.changed, 1);
    const curate_rule_info *ri = curate_rules_info(rs, 0);
    assert_int_equal(ri->action, CURATE_RULE_REDACT);
    assert_string_equal(ri->name, "YEAR");
    assert_int_equal(ri->matches, 2);
    assert_int_equal(ri->texts, 1);
    /* $ in a label context is literal: labels are not templates. */
    assert_string_equal(run(rs, "no numbers", &res), "no numbers");
    assert_int_equal(curate_rules_info(rs, 1)->texts, 1);
    curate_rules_free(rs);
}

static void test_drop(void **state)
{
    (void)state;
    curate_rules *rs = set_of("replace /a/ b\n"
                              "drop /lorem ipsum/i boilerplate\n"
                              "drop /bbb/\n");
    curate_rules_result res;
    curate_buf out;
    curate_buf_init(&out);
    assert_int_equal(curate_rules_apply(rs, "Lorem Ipsum dolor", 17, &out, &res, NULL), CURATE_OK);
    assert_int_equal(res.dropped, 1);
    assert_int_equal(res.drop_rule, 1);
    assert_string_equal(curate_rules_info(rs, 1)->name, "boilerplate");
    assert_int_equal(out.len, 0);
    /* Drop rules see the output of earlier rules: "aaa" became "bbb". */
    assert_int_equal(curate_rules_apply(rs, "aaa", 3, &out, &res, NULL), CURATE_OK);
    assert_int_equal(res.dropped, 1);
    assert_int_equal(res.drop_rule, 2);
    assert_string_equal(curate_rules_info(rs, 2)->name, "drop");
    /* No drop: the rewrite is returned. */
    assert_int_equal(curate_rules_apply(rs, "a cat", 5, &out, &res, NULL), CURATE_OK);
    assert_int_equal(res.dropped, 0);
    assert_int_equal(res.changed, 1);
    assert_string_equal(out.data, "b cbt");
    curate_buf_release(&out);
    curate_rules_free(rs);
}

/* ---- flags and syntax ---------------------------------------------------------- */

static void test_flags(void **state)
{
    (void)state;
    expect_rule("replace /hello/ x", "Hello hello", "Hello x");
    expect_rule("replace /hello/i x", "Hello hello", "x x");
    expect_rule("replace /^b/ x", "a\nb", "a\nb");
    expect_rule("replace /^b/m x", "a\nb", "a\nx");
    expect_rule("replace /a.b/ x", "a\nb", "a\nb");
    expect_rule("replace /a.b/s x", "a\nb", "x");
    expect_rule("replace / a b # comment/x x", "ab", "x");
    /* \w is ASCII without u, Unicode with it. */
    expect_rule("replace /\\w+/ W", "caf\xC3\xA9", "W\xC3\xA9");
    expect_rule("replace /\\w+/u W", "caf\xC3\xA9", "W");
    /* UTF mode: . is one character, not one byte. */
    expect_rule("replace /^.$/ one", "\xE2\x82\xAC", "one");
}

static void test_syntax(void **state)
{
    (void)state;
    /* Comments, blank lines, CRLF, leading blanks, other delimiters. */
    curate_rules *rs = set_of("# comment\r\n\r\n   \t\n  replace |a| b\r\n"
                              "\t# indented comment\n"
                              "replace /x\\/y/ z\n"
                              "replace ~/~ -\n"
                              "replace #\\## hash\n");
    assert_int_equal(curate_rules_count(rs), 4);
    assert_int_equal(curate_rules_info(rs, 0)->line, 4);
    assert_int_equal(curate_rules_info(rs, 1)->line, 6);
    assert_string_equal(curate_rules_info(rs, 0)->source, "t.rules");
    assert_string_equal(run(rs, "a x/y 1/2 #", NULL), "b z 1-2 hash");
    curate_rules_free(rs);
    /* A replacement may contain '#' (comments only start lines). */
    expect_rule("replace /x/ #tag", "x", "#tag");
}

/* Load rule text that must fail; return the error. */
static curate_error load_bad(const char *text, curate_status want)
{
    curate_error err;
    curate_error_clear(&err);
    curate_rules *rs = curate_rules_new(NULL);
    assert_non_null(rs);
    /* A good rule first: it must be discarded with the bad text. */
    assert_int_equal(curate_rules_add_text(rs, "replace /ok/ fine", 17, "pre.rules", NULL),
                     CURATE_OK);
    curate_status st = curate_rules_add_text(rs, text, strlen(text), "bad.rules", &err);
    if (st != want)
        fail_msg("status %d (%s), want %d", st, err.message, want);
    assert_int_equal(err.code, want);
    assert_string_equal(err.file, "bad.rules");
    assert_int_equal(curate_rules_count(rs), 1);
    curate_rules_free(rs);
    return err;
}

static void test_bad_pattern(void **state)
{
    (void)state;
    /* The expected message and offset come from PCRE2 itself. */
    const char *pats[] = {"(ab", "a{2,1}", "[z-a]", "x++++", "(?<n>a)(?<n>b)"};
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)pats[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec,
                                      &eo, NULL);
        assert_null(c);
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        char text[256], want_off[64];
        snprintf(text, sizeof text, "# one\n\nreplace /ok/ x\nreplace /%s/ y\n", pats[i]);
        curate_error err = load_bad(text, CURATE_ERR_REGEX);
        assert_int_equal(err.line, 4);
        if (!strstr(err.message, (const char *)msg))
            fail_msg("message '%s' lacks PCRE2's '%s'", err.message, (const char *)msg);
        snprintf(want_off, sizeof want_off, "at offset %zu", (size_t)eo);
        if (!strstr(err.message, want_off))
            fail_msg("message '%s' lacks '%s'", err.message, want_off);
        assert_non_null(strstr(err.message, pats[i]));
        char line[1024];
        curate_error_format(&err, line, sizeof line);
        assert_true(strncmp(line, "bad.rules:4: ", 13) == 0);
    }
}

static void test_bad_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t line;
        const char *fragment;
    } cases[] = {
        {"substitute /a/ b", 1, "unknown action 'substitute'"},
        {"\n\nreplace/a/ b", 3, "expected a blank"},
        {"replace", 1, "expected a blank"},
        {"drop    ", 1, "missing pattern"},
        {"replace a/ b", 1, "punctuation delimiter"},
        {"replace /abc", 1, "unterminated pattern"},
        {"replace /ab\\/ c", 1, "unterminated pattern"},
        {"replace /a/g b", 1, "unknown flag 'g'"},
        {"replace /a/ \"open", 1, "unterminated quoted"},
        {"replace /a/ \"x\" y", 1, "after the closing quote"},
        {"replace /a/ \"\\q\"", 1, "unknown escape"},
        {"replace /(a)/ $2", 1, "refers to group 2, the pattern has 1"},
        {"replace /a/ ${nope}", 1, "no group named 'nope'"},
        {"replace /a/ ${1", 1, "unterminated ${"},
        {"replace /a/ cost $x", 1, "'$' in a replacement"},
        {"replace /a/ \"\xFF\"", 1, "not valid UTF-8"},
        {"redact /a/", 1, "LABEL"},
        {"redact /a/ two words", 1, "LABEL"},
        {"drop /a/ bad name!", 1, "drop NAME"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        curate_error err = load_bad(cases[i].text, CURATE_ERR_RULES);
        if (err.line != cases[i].line || !strstr(err.message, cases[i].fragment))
            fail_msg("case %zu: line %llu message '%s'", i, (unsigned long long)err.line,
                     err.message);
    }
    /* Invalid UTF-8 inside a pattern is PCRE2's to refuse. */
    load_bad("replace /\xC3(/ x", CURATE_ERR_REGEX);
}

static void test_files(void **state)
{
    (void)state;
    char path[] = "/tmp/curate-test-rules-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char body[] = "# file rules\nredact /\\d+/ NUM\n";
    assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    close(fd);
    curate_rules *rs = curate_rules_new(NULL);
    curate_error err;
    assert_int_equal(curate_rules_add_file(rs, path, &err), CURATE_OK);
    assert_string_equal(curate_rules_info(rs, 0)->source, path);
    assert_int_equal(curate_rules_info(rs, 0)->line, 2);
    assert_string_equal(run(rs, "call 911", NULL), "call <NUM>");
    unlink(path);
    curate_error_clear(&err);
    assert_int_equal(curate_rules_add_file(rs, path, &err), CURATE_ERR_IO);
    assert_string_equal(err.file, path);
    assert_non_null(strstr(err.message, "No such file"));
    curate_rules_free(rs);
}

static void test_match_errors(void **state)
{
    (void)state;
    /* Catastrophic backtracking hits PCRE2's match limit: an error that
     * names the rule, never a hang. */
    curate_rules *rs = set_of("\n\nreplace /^(a+)+$/ x");
    char in[64];
    memset(in, 'a', 40);
    in[40] = 'b';
    in[41] = 0;
    curate_buf out;
    curate_buf_init(&out);
    curate_rules_result res;
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_rules_apply(rs, in, 41, &out, &res, &err), CURATE_ERR_REGEX);
    assert_non_null(strstr(err.message, "t.rules:3"));
    /* Invalid UTF-8 text is refused before PCRE2 sees it. */
    curate_error_clear(&err);
    assert_int_equal(curate_rules_apply(rs, "ab\xC0", 3, &out, &res, &err), CURATE_ERR_UTF8);
    assert_int_equal(err.offset, 2);
    curate_buf_release(&out);
    curate_rules_free(rs);
}

/* ---- presets ------------------------------------------------------------------- */

static curate_rules *preset(const char *name)
{
    curate_rules *rs = curate_rules_new(NULL);
    curate_error err;
    if (curate_rules_add_preset(rs, name, &err) != CURATE_OK)
        fail_msg("preset %s: %s", name, err.message);
    return rs;
}

static void test_preset_html(void **state)
{
    (void)state;
    curate_rules *rs = preset("html");
    assert_string_equal(
        run(rs,
            "<html><head><title>T</title><style>p { color: red }</style>"
            "<script type=\"x\">if (a < b) alert(1);</script></head>"
            "<body><p class=\"lead\">Fish &amp; chips &lt;3</p><!-- note -->"
            "Line<br/>next <a href=\"/x\">link</a> &quot;q&quot; it&#39;s&nbsp;ok</body></html>",
            NULL),
        "\nT\n\nFish & chips <3\nLine\nnext link \"q\" it's ok");
    /* "&amp;lt;" decodes once, to "&lt;". */
    assert_string_equal(run(rs, "a &amp;lt; b", NULL), "a &lt; b");
    /* Comparisons in prose are not tags. */
    assert_string_equal(run(rs, "if a < b and c > d", NULL), "if a < b and c > d");
    curate_rules_free(rs);
}

static void test_preset_pii(void **state)
{
    (void)state;
    curate_rules *rs = preset("pii");
    curate_rules_result res;
    assert_string_equal(run(rs,
                            "Mail john.doe+news@example.co.uk or ADMIN@test.org. "
                            "Call (555) 123-4567, 555.123.4567, +1 555 123 4567, "
                            "+44 20 7946 0958 or +49 (0)30 1234567.",
                            &res),
                        "Mail <EMAIL> or <EMAIL>. Call <PHONE>, <PHONE>, <PHONE>, "
                        "<PHONE> or <PHONE>.");
    assert_int_equal(res.matches, 7);
    /* Things that look numeric but are not phone numbers stay. */
    const char *keep = "Version 1.2.3 (2021-2022), ISBN 978-3-16-148410-0, "
                       "IP 192.168.100.200, 4111 1111 1111 1111, zip 90210, 1,000,000 people.";
    assert_string_equal(run(rs, keep, &res), keep);
    assert_int_equal(res.changed, 0);
    /* An @ in prose is not an address. */
    assert_string_equal(run(rs, "meet @ 5pm, user@localhost", NULL), "meet @ 5pm, user@localhost");
    curate_rules_free(rs);
}

static void test_preset_urls(void **state)
{
    (void)state;
    curate_rules *rs = preset("urls");
    assert_string_equal(run(rs,
                            "See https://example.com/a?b=c&d=e#f, or (www.example.org/path). "
                            "FTP: ftp://files.example.net/x.tar.gz!",
                            NULL),
                        "See <URL>, or (<URL>). FTP: <URL>!");
    /* "e.g." and file names are not URLs. */
    assert_string_equal(run(rs, "e.g. report.pdf", NULL), "e.g. report.pdf");
    curate_rules_free(rs);
    /* emails and phones alone. */
    rs = preset("emails");
    assert_string_equal(run(rs, "a@b.io 555-123-4567", NULL), "<EMAIL> 555-123-4567");
    curate_rules_free(rs);
    rs = preset("phones");
    assert_string_equal(run(rs, "a@b.io 555-123-4567", NULL), "a@b.io <PHONE>");
    curate_rules_free(rs);
}

static void test_preset_names(void **state)
{
    (void)state;
    const char *const *names = curate_rules_preset_names();
    size_t k = 0;
    for (; names[k]; k++) {
        const char *text = curate_rules_preset_text(names[k]);
        assert_non_null(text);
        /* The published text is exactly what the preset loads. */
        curate_rules *a = preset(names[k]);
        curate_rules *b = set_of(text);
        assert_int_equal(curate_rules_count(a), curate_rules_count(b));
        char src[64];
        snprintf(src, sizeof src, "preset:%s", names[k]);
        assert_string_equal(curate_rules_info(a, 0)->source, src);
        curate_rules_free(a);
        curate_rules_free(b);
    }
    assert_int_equal(k, 5);
    assert_null(curate_rules_preset_text("nope"));
    curate_rules *rs = curate_rules_new(NULL);
    curate_error err;
    assert_int_equal(curate_rules_add_preset(rs, "nope", &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "unknown preset 'nope'"));
    assert_int_equal(curate_rules_add_preset(rs, "pii", &err), CURATE_OK);
    assert_string_equal(curate_rules_info(rs, 0)->source, "preset:pii");
    curate_rules_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_replace_unchanged),
        cmocka_unit_test(test_empty_matches),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_bad_pattern),
        cmocka_unit_test(test_bad_syntax),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_match_errors),
        cmocka_unit_test(test_preset_html),
        cmocka_unit_test(test_preset_pii),
        cmocka_unit_test(test_preset_urls),
        cmocka_unit_test(test_preset_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
