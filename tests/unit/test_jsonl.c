/*
 * test_jsonl.c - the JSONL reader, the strict record parser, string
 * decoding and the byte-preserving writer.
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

#include "curate/jsonl.h"

/* Write bytes to a fresh temporary file and open a reader on it. */
static curate_reader *reader_on(const char *bytes, size_t n, size_t max_record, size_t buf_bytes)
{
    char path[] = "/tmp/curate-test-jsonl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, n), (ssize_t)n);
    close(fd);
    curate_reader_opts ro = {max_record, buf_bytes};
    curate_error err;
    curate_reader *r = curate_reader_open(path, &ro, &err);
    assert_non_null(r);
    unlink(path); /* the open descriptor keeps it alive */
    return r;
}

static void test_reader_lines(void **state)
{
    (void)state;
    /* BOM, CRLF, a blank line, a whitespace-only line, no final newline. */
    const char in[] = "\xEF\xBB\xBF{\"a\":1}\r\n\n  \t\n{\"b\":2}\n{\"c\":3}";
    curate_reader *r = reader_on(in, sizeof in - 1, 0, 0);
    curate_line l;
    assert_int_equal(curate_reader_next(r, &l, NULL), CURATE_OK);
    assert_int_equal(l.len, 7);
    assert_memory_equal(l.data, "{\"a\":1}", 7);
    assert_int_equal(l.lineno, 1);
    assert_int_equal(l.offset, 3); /* after the BOM */
    assert_int_equal(curate_reader_next(r, &l, NULL), CURATE_OK);
    assert_string_equal(l.data, "{\"b\":2}");
    assert_int_equal(l.lineno, 4);
    assert_int_equal(l.offset, 17);
    assert_int_equal(curate_reader_next(r, &l, NULL), CURATE_OK);
    assert_string_equal(l.data, "{\"c\":3}");
    assert_int_equal(l.lineno, 5);
    assert_int_equal(curate_reader_next(r, &l, NULL), CURATE_END);
    assert_int_equal(curate_reader_bytes(r), sizeof in - 1);
    /* Rewind gives the same first line again. */
    assert_int_equal(curate_reader_rewind(r, NULL), CURATE_OK);
    assert_int_equal(curate_reader_next(r, &l, NULL), CURATE_OK);
    assert_int_equal(l.lineno, 1);
    assert_string_equal(l.data, "{\"a\":1}");
    curate_reader_free(r);
}

/* Lines much longer than the read buffer come back whole. */
static void test_reader_long_lines(void **state)
{
    (void)state;
    size_t n = 200000;
    char *in = malloc(3 * n + 3);
    size_t k = 0;
    for (int line = 0; line < 3; line++) {
        for (size_t i = 0; i < n - 1; i++)
            in[k++] = (char)('a' + (i + (size_t)line) % 26);
        in[k++] = '\n';
    }
    curate_reader *r = reader_on(in, k, 0, 4096);
    curate_line l;
    for (int line = 0; line < 3; line++) {
        assert_int_equal(curate_reader_next(r, &l, NULL), CURATE_OK);
        assert_int_equal(l.len, n - 1);
        assert_memory_equal(l.data, in + (size_t)line * n, n - 1);
    }
    assert_int_equal(curate_reader_next(r, &l, NULL), CURATE_END);
    curate_reader_free(r);
    free(in);
}

/* A line past the limit is reported with its line number and skipped;
 * the reader goes on with the next line. */
static void test_reader_too_large(void **state)
{
    (void)state;
    size_t big = 100000;
    char *in = malloc(big + 64);
    size_t k = (size_t)sprintf(in, "{\"a\":1}\n");
    memset(in + k, 'x', big);
    k += big;
    k += (size_t)sprintf(in + k, "\n{\"b\":2}\n");
    curate_reader *r = reader_on(in, k, 1000, 512);
    curate_line l;
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_reader_next(r, &l, &err), CURATE_OK);
    assert_int_equal(curate_reader_next(r, &l, &err), CURATE_ERR_TOO_LARGE);
    assert_int_equal(l.lineno, 2);
    assert_int_equal(l.len, big);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.message, "exceeds the limit of 1000 bytes"));
    assert_int_equal(curate_reader_next(r, &l, &err), CURATE_OK);
    assert_string_equal(l.data, "{\"b\":2}");
    assert_int_equal(l.lineno, 3);
    assert_int_equal(curate_reader_next(r, &l, &err), CURATE_END);
    curate_reader_free(r);
    /* Exactly at the limit is fine. */
    r = reader_on(in + 8, 1000, 1000, 64);
    assert_int_equal(curate_reader_next(r, &l, &err), CURATE_OK);
    assert_int_equal(l.len, 1000);
    curate_reader_free(r);
    free(in);
}

static void test_reader_missing_file(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    assert_null(curate_reader_open("/nonexistent/dir/x.jsonl", NULL, &err));
    assert_int_equal(err.code, CURATE_ERR_IO);
    assert_string_equal(err.file, "/nonexistent/dir/x.jsonl");
    assert_non_null(strstr(err.message, "No such file"));
}

/* ---- parser --------------------------------------------------------------- */

static void test_parse_valid(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "{}", " { } ", "{\"a\":1}", "{\"a\":-0.5e+10,\"b\":true,\"c\":false,\"d\":null}",
        "{\"a\":[],\"b\":[1,[2,[3]]],\"c\":{\"d\":{}}}", "{\"k\\\"ey\":\"v\\u00e9\\n\"}",
        "\t{\"a\" :\t\"b\" , \"c\":0}\t", "{\"a\":\"\xE2\x82\xAC\"}", "{\"a\":1E5,\"b\":0.0e0}",
    };
    curate_record rec;
    curate_record_init(&rec);
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        curate_error err;
        curate_error_clear(&err);
        curate_status st = curate_record_parse(&rec, valid[i], strlen(valid[i]), &err);
        if (st != CURATE_OK)
            fail_msg("'%s' rejected: %s", valid[i], err.message);
    }
    curate_record_release(&rec);
}

struct bad_case {
    const char *line;
    curate_status status;
    size_t offset;
    const char *message; /* a substring of the message */
};

static void test_parse_malformed_table(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"", CURATE_ERR_JSON, 0, "empty line"},
        {"{", CURATE_ERR_JSON, 1, "unterminated object"},
        {"{\"a\":1,}", CURATE_ERR_JSON, 7, "trailing comma"},
        {"{\"a\":[1,]}", CURATE_ERR_JSON, 8, "trailing comma"},
        {"{\"a\" 1}", CURATE_ERR_JSON, 5, "expected ':'"},
        {"{a:1}", CURATE_ERR_JSON, 1, "expected a string key"},
        {"{\"a\":01}", CURATE_ERR_JSON, 6, "leading zero"},
        {"{\"a\":1.}", CURATE_ERR_JSON, 7, "after '.'"},
        {"{\"a\":1e}", CURATE_ERR_JSON, 7, "exponent"},
        {"{\"a\":-}", CURATE_ERR_JSON, 6, "expected a digit"},
        {"{\"a\":+1}", CURATE_ERR_JSON, 5, "expected a value"},
        {"{\"a\":tru}", CURATE_ERR_JSON, 5, "invalid literal"},
        {"{\"a\":\"x}", CURATE_ERR_JSON, 8, "unterminated string"},
        {"{\"a\":\"\\x\"}", CURATE_ERR_JSON, 6, "invalid escape"},
        {"{\"a\":\"\\u12G4\"}", CURATE_ERR_JSON, 6, "4 hex digits"},
        {"{\"a\":\"tab\there\"}", CURATE_ERR_JSON, 9, "control character"},
        {"{\"a\":1} x", CURATE_ERR_JSON, 8, "trailing characters"},
        {"{\"a\":1}{}", CURATE_ERR_JSON, 7, "trailing characters"},
        {"{\"a\":[1 2]}", CURATE_ERR_JSON, 8, "expected ',' or ']'"},
        {"{\"a\":1 \"b\":2}", CURATE_ERR_JSON, 7, "expected ',' or '}'"},
        {"{'a':1}", CURATE_ERR_JSON, 1, "expected a string key"},
        {"{\"a\":NaN}", CURATE_ERR_JSON, 5, "expected a value"},
        {"[1,2]", CURATE_ERR_NOT_OBJECT, 0, "not an object (an array)"},
        {"\"text\"", CURATE_ERR_NOT_OBJECT, 0, "not an object (a string)"},
        {"42", CURATE_ERR_NOT_OBJECT, 0, "not an object (a number)"},
        {"null", CURATE_ERR_NOT_OBJECT, 0, "not an object (null)"},
        {"[1,2", CURATE_ERR_JSON, 4, "unterminated array"},
    };
    curate_record rec;
    curate_record_init(&rec);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_case *c = &cases[i];
        curate_error err;
        curate_error_clear(&err);
        curate_status st = curate_record_parse(&rec, c->line, strlen(c->line), &err);
        if (st != c->status)
            fail_msg("'%s': status %d (%s), expected %d", c->line, st, err.message, c->status);
        if (!strstr(err.message, c->message))
            fail_msg("'%s': message '%s' lacks '%s'", c->line, err.message, c->message);
        if (!err.has_offset || err.offset != c->offset)
            fail_msg("'%s': offset %llu, expected %zu", c->line, (unsigned long long)err.offset,
                     c->offset);
    }
    curate_record_release(&rec);
}

static void test_parse_depth(void **state)
{
    (void)state;
    char line[600];
    size_t k = 0;
    k += (size_t)sprintf(line, "{\"a\":");
    for (int i = 0; i < 200; i++)
        line[k++] = '[';
    for (int i = 0; i < 200; i++)
        line[k++] = ']';
    line[k++] = '}';
    line[k] = 0;
    curate_record rec;
    curate_record_init(&rec);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_record_parse(&rec, line, k, &err), CURATE_ERR_DEPTH);
    assert_non_null(strstr(err.message, "128"));
    rec.max_depth = 256;
    assert_int_equal(curate_record_parse(&rec, line, k, &err), CURATE_OK);
    curate_record_release(&rec);
}

static void test_members_and_lookup(void **state)
{
    (void)state;
    const char *line = "{ \"id\" : 7, \"te\\u0078t\": \"hi\", \"n\": 2.5, \"t\":\"x\", \"id\":8 }";
    curate_record rec;
    curate_record_init(&rec);
    assert_int_equal(curate_record_parse(&rec, line, strlen(line), NULL), CURATE_OK);
    assert_int_equal(rec.n_members, 5);
    const curate_member *m = curate_record_get(&rec, "id");
    assert_non_null(m);
    assert_int_equal(m->type, CURATE_JSON_NUMBER);
    assert_memory_equal(m->value, "7", 1); /* the first of duplicate keys */
    m = curate_record_get(&rec, "text"); /* escaped key is matched decoded */
    assert_non_null(m);
    assert_int_equal(m->type, CURATE_JSON_STRING);
    assert_null(curate_record_get(&rec, "missing"));
    double d;
    assert_int_equal(curate_record_get_double(&rec, "n", &d), CURATE_OK);
    assert_true(d == 2.5);
    int64_t v;
    assert_int_equal(curate_record_get_int64(&rec, "id", &v), CURATE_OK);
    assert_int_equal(v, 7);
    assert_int_equal(curate_record_get_int64(&rec, "n", &v), CURATE_ERR_FIELD_TYPE);
    curate_buf b;
    curate_buf_init(&b);
    assert_int_equal(curate_record_get_string(&rec, "text", &b, NULL), CURATE_OK);
    assert_string_equal(b.data, "hi");
    assert_int_equal(curate_record_get_string(&rec, "nope", &b, NULL), CURATE_ERR_NO_FIELD);
    assert_int_equal(curate_record_get_string(&rec, "id", &b, NULL), CURATE_ERR_FIELD_TYPE);
    curate_buf_release(&b);
    curate_record_release(&rec);
}

/* ---- string decoding --------------------------------------------------------- */

static void decode_ok(const char *lit, const char *want, size_t want_len, curate_surrogate_policy pol)
{
    curate_buf b;
    curate_buf_init(&b);
    curate_error err;
    curate_error_clear(&err);
    curate_status st = curate_json_string_decode(lit, strlen(lit), pol, &b, &err);
    if (st != CURATE_OK)
        fail_msg("%s: %s", lit, err.message);
    assert_int_equal(b.len, want_len);
    assert_memory_equal(b.data, want, want_len);
    curate_buf_release(&b);
}

static void test_string_decode(void **state)
{
    (void)state;
    decode_ok("\"plain\"", "plain", 5, CURATE_SURROGATE_ERROR);
    decode_ok("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"", "a\"b\\c/d\be\ff\ng\rh\ti", 17,
              CURATE_SURROGATE_ERROR);
    decode_ok("\"\\u00e9\\u20AC\"", "\xC3\xA9\xE2\x82\xAC", 5, CURATE_SURROGATE_ERROR);
    decode_ok("\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4, CURATE_SURROGATE_ERROR); /* pair */
    decode_ok("\"a\\u0000b\"", "a\0b", 3, CURATE_SURROGATE_ERROR);              /* NUL kept */
    decode_ok("\"x\\ud800y\"", "x\xEF\xBF\xBDy", 5, CURATE_SURROGATE_REPLACE);
    decode_ok("\"\\udc00\"", "\xEF\xBF\xBD", 3, CURATE_SURROGATE_REPLACE);
    decode_ok("\"\\ud800\\u0041\"", "\xEF\xBF\xBD" "A", 4, CURATE_SURROGATE_REPLACE);
    decode_ok("\"raw \xFF bytes\"", "raw \xFF bytes", 11, CURATE_SURROGATE_ERROR);

    curate_buf b;
    curate_buf_init(&b);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_json_string_decode("\"x\\ud800\"", 9, CURATE_SURROGATE_ERROR, &b, &err),
                     CURATE_ERR_JSON);
    assert_non_null(strstr(err.message, "lone surrogate"));
    assert_int_equal(err.offset, 2);
    curate_buf_release(&b);
}

/* ---- writer ------------------------------------------------------------------- */

static void render_expect(curate_record *rec, const char *want)
{
    curate_buf b;
    curate_buf_init(&b);
    assert_int_equal(curate_record_render(rec, &b), CURATE_OK);
    if (strcmp(b.data ? b.data : "", want) != 0)
        fail_msg("rendered\n  %s\nexpected\n  %s", b.data, want);
    assert_int_equal(curate_json_validate(b.data, b.len, 128, NULL), CURATE_OK);
    curate_buf_release(&b);
}

static void test_passthrough_exact(void **state)
{
    (void)state;
    /* Odd spacing, number spellings and escapes all survive untouched. */
    static const char *const lines[] = {
        "{\"b\":1.50E+3,  \"a\" :\"\\u00e9\\/\" ,\"z\":[ 1 ,2 ]}",
        "  {  }  ",
        "{\"text\":\"x\",\"n\":-0.0,\"big\":123456789012345678901234567890}",
    };
    curate_record rec;
    curate_record_init(&rec);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        assert_int_equal(curate_record_parse(&rec, lines[i], strlen(lines[i]), NULL), CURATE_OK);
        render_expect(&rec, lines[i]);
    }
    curate_record_release(&rec);
}

static void test_edits(void **state)
{
    (void)state;
    const char *line = "{\"id\": 1, \"text\": \"old\", \"n\":1.50E+3}";
    curate_record rec;
    curate_record_init(&rec);
    assert_int_equal(curate_record_parse(&rec, line, strlen(line), NULL), CURATE_OK);

    /* Replace in place: other members keep their bytes. */
    curate_record_set_string(&rec, "text", "new \"q\"\n", 8);
    render_expect(&rec, "{\"id\": 1, \"text\": \"new \\\"q\\\"\\n\", \"n\":1.50E+3}");

    /* Add two fields: appended before the closing brace, in order. */
    curate_record_set_int(&rec, "tokens", 42);
    curate_record_set_bool(&rec, "badcase", 1);
    render_expect(&rec, "{\"id\": 1, \"text\": \"new \\\"q\\\"\\n\", \"n\":1.50E+3,\"tokens\":42,\"badcase\":true}");

    /* A later edit of the same key wins. */
    curate_record_set_int(&rec, "tokens", 43);
    render_expect(&rec, "{\"id\": 1, \"text\": \"new \\\"q\\\"\\n\", \"n\":1.50E+3,\"tokens\":43,\"badcase\":true}");

    /* Remove the first, the last, and an absent key. */
    assert_int_equal(curate_record_parse(&rec, line, strlen(line), NULL), CURATE_OK);
    curate_record_remove(&rec, "id");
    render_expect(&rec, "{\"text\": \"old\", \"n\":1.50E+3}");
    curate_record_remove(&rec, "n");
    render_expect(&rec, "{\"text\": \"old\"}");
    curate_record_remove(&rec, "absent");
    render_expect(&rec, "{\"text\": \"old\"}");

    /* Remove everything, then add into the emptied object. */
    curate_record_remove(&rec, "text");
    render_expect(&rec, "{}");
    curate_record_set_double(&rec, "score", 0.25);
    render_expect(&rec, "{\"score\":0.25}");

    /* Into an empty object; a key that needs escaping. */
    assert_int_equal(curate_record_parse(&rec, "{ }", 3, NULL), CURATE_OK);
    curate_record_set_raw(&rec, "we\"ird", "[1]", 3);
    render_expect(&rec, "{ \"we\\\"ird\":[1]}");

    /* Removing a middle member keeps the separators of the rest. */
    const char *l2 = "{\"a\":1 , \"b\":2 , \"c\":3}";
    assert_int_equal(curate_record_parse(&rec, l2, strlen(l2), NULL), CURATE_OK);
    curate_record_remove(&rec, "b");
    render_expect(&rec, "{\"a\":1 , \"c\":3}");

    /* Parsing again clears the edits. */
    assert_int_equal(curate_record_parse(&rec, l2, strlen(l2), NULL), CURATE_OK);
    render_expect(&rec, l2);

    /* NaN cannot be written as JSON: it becomes null. */
    curate_record_set_double(&rec, "a", 0.0 / 0.0);
    render_expect(&rec, "{\"a\":null , \"b\":2 , \"c\":3}");
    curate_record_release(&rec);
}

static void test_json_string_escape(void **state)
{
    (void)state;
    curate_buf b;
    curate_buf_init(&b);
    /* Control characters escaped, invalid UTF-8 replaced, valid kept. */
    curate_buf_append_json_string(&b, "a\x01\"\\\t\xC3\xA9\xFF", 8);
    assert_string_equal(b.data, "\"a\\u0001\\\"\\\\\\t\xC3\xA9\\ufffd\"");
    /* Round trip through the decoder for every byte 0x01..0x7f. */
    char all[127];
    for (int i = 0; i < 127; i++)
        all[i] = (char)(i + 1);
    curate_buf_reset(&b);
    curate_buf_append_json_string(&b, all, sizeof all);
    curate_buf d;
    curate_buf_init(&d);
    assert_int_equal(curate_json_string_decode(b.data, b.len, CURATE_SURROGATE_ERROR, &d, NULL),
                     CURATE_OK);
    assert_int_equal(d.len, sizeof all);
    assert_memory_equal(d.data, all, sizeof all);
    curate_buf_release(&d);
    curate_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_lines),
        cmocka_unit_test(test_reader_long_lines),
        cmocka_unit_test(test_reader_too_large),
        cmocka_unit_test(test_reader_missing_file),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_malformed_table),
        cmocka_unit_test(test_parse_depth),
        cmocka_unit_test(test_members_and_lookup),
        cmocka_unit_test(test_string_decode),
        cmocka_unit_test(test_passthrough_exact),
        cmocka_unit_test(test_edits),
        cmocka_unit_test(test_json_string_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
