/*
 * test_chat.c - chat templates (curate/chat.h).
 *
 * Every template renders the same conversation: a system turn and three
 * turns (user, assistant, user) whose contents carry whitespace at their
 * ends (ASCII spaces, a newline, a trailing NO-BREAK SPACE) and non-ASCII
 * text, so the strip rules and the decoding are exercised.  The expected
 * strings were also checked against the Hugging Face Jinja templates of
 * Llama-2-chat, Llama-3-Instruct and Gemma 3 rendered with jinja2 (outside
 * this test, which must not need Python).  Then malformed arrays: each
 * must fail with the right status, a message naming the turn, and the
 * byte offset of the problem in the record line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "curate/chat.h"

static const char conversation[] =
    "{\"id\":7,\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"user\",\"content\":\"  What is 2+2?\\n\"},"
    "{\"content\":\"4\\u00a0\",\"role\":\"assistant\",\"name\":\"bot\"},"
    "{\"role\":\"user\",\"content\":\"And 3+3 in Fran\\u00e7ais?\"}"
    "],\"domain\":\"chat\"}";

/* Render `line`'s "messages" with tpl; assert success and the text. */
static void expect_render(const char *line, curate_chat_template tpl, const char *want)
{
    curate_record rec;
    curate_record_init(&rec);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_record_parse(&rec, line, strlen(line), &err), CURATE_OK);
    curate_buf out;
    curate_buf_init(&out);
    curate_status st = curate_chat_render(&rec, NULL, tpl, &out, &err);
    if (st != CURATE_OK)
        fprintf(stderr, "render failed: %s\n", err.message);
    assert_int_equal(st, CURATE_OK);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
        fprintf(stderr, "got  [%s]\nwant [%s]\n", out.data, want);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);

    /* The same array given as JSON text renders the same. */
    const curate_member *m = curate_record_get(&rec, "messages");
    assert_non_null(m);
    curate_buf out2;
    curate_buf_init(&out2);
    assert_int_equal(curate_chat_render_json(m->value, m->value_len, tpl, &out2, &err), CURATE_OK);
    assert_int_equal(out2.len, out.len);
    assert_memory_equal(out2.data, out.data, out.len);
    curate_buf_release(&out2);
    curate_buf_release(&out);
    curate_record_release(&rec);
}

static void test_plain(void **state)
{
    (void)state;
    expect_render(conversation, CURATE_CHAT_PLAIN,
                  "system: You are terse.\n"
                  "user:   What is 2+2?\n\n"
                  "assistant: 4\xc2\xa0\n"
                  "user: And 3+3 in Fran\xc3\xa7" "ais?");
}

static void test_chatml(void **state)
{
    (void)state;
    expect_render(conversation, CURATE_CHAT_CHATML,
                  "<|im_start|>system\nYou are terse.<|im_end|>\n"
                  "<|im_start|>user\n  What is 2+2?\n<|im_end|>\n"
                  "<|im_start|>assistant\n4\xc2\xa0<|im_end|>\n"
                  "<|im_start|>user\nAnd 3+3 in Fran\xc3\xa7" "ais?<|im_end|>\n");
}

static void test_llama2(void **state)
{
    (void)state;
    /* The system block joins the first user content and the two are
     * stripped together: the user's leading spaces survive, its trailing
     * newline does not. */
    expect_render(conversation, CURATE_CHAT_LLAMA2,
                  "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n  What is 2+2? [/INST]"
                  " 4 </s>"
                  "<s>[INST] And 3+3 in Fran\xc3\xa7" "ais? [/INST]");
    /* Without a system turn. */
    expect_render("{\"messages\":[{\"role\":\"user\",\"content\":\" hi \"},"
                  "{\"role\":\"assistant\",\"content\":\"hello\"}]}",
                  CURATE_CHAT_LLAMA2, "<s>[INST] hi [/INST] hello </s>");
}

static void test_llama3(void **state)
{
    (void)state;
    expect_render(conversation, CURATE_CHAT_LLAMA3,
                  "<|begin_of_text|>"
                  "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3 in Fran\xc3\xa7"
                  "ais?<|eot_id|>");
}

static void test_gemma(void **state)
{
    (void)state;
    expect_render(conversation, CURATE_CHAT_GEMMA,
                  "<bos><start_of_turn>user\nYou are terse.\n\nWhat is 2+2?<end_of_turn>\n"
                  "<start_of_turn>model\n4<end_of_turn>\n"
                  "<start_of_turn>user\nAnd 3+3 in Fran\xc3\xa7" "ais?<end_of_turn>\n");
    /* "model" is Gemma's own name for the assistant role. */
    expect_render("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                  "{\"role\":\"model\",\"content\":\"b\"}]}",
                  CURATE_CHAT_GEMMA,
                  "<bos><start_of_turn>user\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n");
}

static void test_strip_rules(void **state)
{
    (void)state;
    /* Python's str.strip() set: U+001F, U+3000, U+2028, U+0085 go, while
     * U+200B ZERO WIDTH SPACE (not whitespace) stays. */
    expect_render("{\"messages\":[{\"role\":\"user\",\"content\":"
                  "\"\\u001f\\u3000x y\\u2028\\u0085\"},"
                  "{\"role\":\"assistant\",\"content\":\"\\u200bz\"}]}",
                  CURATE_CHAT_LLAMA3,
                  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx y<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n\xe2\x80\x8bz<|eot_id|>");
    /* Content of only whitespace strips to nothing. */
    expect_render("{\"messages\":[{\"role\":\"user\",\"content\":\" \\t\\n \"}]}",
                  CURATE_CHAT_LLAMA2, "<s>[INST]  [/INST]");
    /* Escaped keys are keys; spacing inside the array is allowed. */
    expect_render("{\"messages\": [ {\"r\\u006fle\" : \"tool\" , \"content\":\"42\"} ] }",
                  CURATE_CHAT_CHATML, "<|im_start|>tool\n42<|im_end|>\n");
}

static void test_template_names(void **state)
{
    (void)state;
    curate_error err;
    for (int i = 0; i < CURATE_CHAT_TEMPLATE_COUNT_; i++) {
        const char *name = curate_chat_template_name((curate_chat_template)i);
        assert_non_null(name);
        assert_non_null(strstr(curate_chat_template_names(), name));
        curate_chat_template t = CURATE_CHAT_TEMPLATE_COUNT_;
        assert_int_equal(curate_chat_template_parse(name, &t, &err), CURATE_OK);
        assert_int_equal(t, i);
    }
    curate_chat_template t;
    curate_error_clear(&err);
    assert_int_equal(curate_chat_template_parse("Llama2", &t, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "llama2"));
    assert_int_equal(curate_chat_template_parse(NULL, &t, &err), CURATE_ERR_INVALID);
    assert_null(curate_chat_template_name(CURATE_CHAT_TEMPLATE_COUNT_));
}

/*
 * Render and expect failure with status want, a message containing
 * `msg`, and the offset of the first occurrence of `at` in the line.
 */
static void expect_fail(const char *line, curate_chat_template tpl, curate_status want,
                        const char *msg, const char *at)
{
    curate_record rec;
    curate_record_init(&rec);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_record_parse(&rec, line, strlen(line), &err), CURATE_OK);
    curate_buf out;
    curate_buf_init(&out);
    curate_error_clear(&err);
    curate_status st = curate_chat_render(&rec, NULL, tpl, &out, &err);
    if (st != want || !strstr(err.message, msg))
        fprintf(stderr, "line %s: status %d (%s), message '%s'\n", line, st, curate_strerror(st),
                err.message);
    assert_int_equal(st, want);
    assert_non_null(strstr(err.message, msg));
    assert_int_equal(out.len, 0);
    if (at) {
        const char *p = strstr(line, at);
        assert_non_null(p);
        assert_true(err.has_offset);
        assert_int_equal(err.offset, (uint64_t)(p - line));
    }
    curate_buf_release(&out);
    curate_record_release(&rec);
}

static void test_malformed(void **state)
{
    (void)state;
    const curate_chat_template P = CURATE_CHAT_PLAIN;
    expect_fail("{\"text\":\"x\"}", P, CURATE_ERR_NO_FIELD, "no \"messages\" field", NULL);
    expect_fail("{\"messages\":\"hi\"}", P, CURATE_ERR_FIELD_TYPE, "\"messages\" is a string", "\"hi\"");
    expect_fail("{\"messages\":{\"role\":\"user\"}}", P, CURATE_ERR_FIELD_TYPE, "not an array", "{\"role");
    expect_fail("{\"messages\":null}", P, CURATE_ERR_FIELD_TYPE, "is null", "null");
    expect_fail("{\"messages\":[ ]}", P, CURATE_ERR_INVALID, "empty array", "]");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},7]}", P, CURATE_ERR_FIELD_TYPE,
                "messages[1] is a number, not an object", "7");
    expect_fail("{\"messages\":[[\"user\",\"a\"]]}", P, CURATE_ERR_FIELD_TYPE,
                "messages[0] is an array", "[\"user");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\"}]}", P,
                CURATE_ERR_NO_FIELD, "messages[1]: no \"content\" member", "{\"role\":\"assistant");
    expect_fail("{\"messages\":[{\"content\":\"a\"}]}", P, CURATE_ERR_NO_FIELD,
                "messages[0]: no \"role\" member", "{\"content");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":null}]}", P, CURATE_ERR_FIELD_TYPE,
                "messages[0]: \"content\" is null, not a string", "null");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}]}",
                P, CURATE_ERR_FIELD_TYPE, "\"content\" is an array", "[{\"type");
    expect_fail("{\"messages\":[{\"role\":1,\"content\":\"a\"}]}", P, CURATE_ERR_FIELD_TYPE,
                "\"role\" is a number", "1,");
    expect_fail("{\"messages\":[{\"role\":\"user\",\"role\":\"user\",\"content\":\"a\"}]}", P,
                CURATE_ERR_INVALID, "two \"role\" members", "\"role\":\"user\",\"content");
    expect_fail("{\"messages\":[{\"role\":\"\",\"content\":\"a\"}]}", P, CURATE_ERR_INVALID,
                "role is empty", "\"\"");
    expect_fail("{\"messages\":[{\"role\":\"us\\ner\",\"content\":\"a\"}]}", P, CURATE_ERR_INVALID,
                "control character", "\"us");
    /* A lone surrogate is an error under the default policy ... */
    expect_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"a\\ud800\"}]}", P, CURATE_ERR_JSON,
                "messages[0]: content", "{\"role");

    /* ... and U+FFFD under the replace policy. */
    const char *lone = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\ud800\"}]}";
    curate_record rec;
    curate_record_init(&rec);
    rec.surrogates = CURATE_SURROGATE_REPLACE;
    curate_error err;
    assert_int_equal(curate_record_parse(&rec, lone, strlen(lone), &err), CURATE_OK);
    curate_buf out;
    curate_buf_init(&out);
    assert_int_equal(curate_chat_render(&rec, "messages", P, &out, &err), CURATE_OK);
    assert_string_equal(out.data, "user: a\xef\xbf\xbd");
    curate_buf_release(&out);
    curate_record_release(&rec);
}

static void test_turn_order(void **state)
{
    (void)state;
    const char *asst_first = "{\"messages\":[{\"role\":\"assistant\",\"content\":\"a\"}]}";
    expect_fail(asst_first, CURATE_CHAT_LLAMA2, CURATE_ERR_INVALID,
                "messages[0]: expected a user turn", "{\"role");
    expect_fail(asst_first, CURATE_CHAT_GEMMA, CURATE_ERR_INVALID,
                "messages[0]: expected a user turn", "{\"role");
    /* The free-form templates take it. */
    expect_render(asst_first, CURATE_CHAT_LLAMA3,
                  "<|begin_of_text|><|start_header_id|>assistant<|end_header_id|>\n\na<|eot_id|>");

    const char *two_users = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                            "{\"role\":\"user\",\"content\":\"b\"}]}";
    expect_fail(two_users, CURATE_CHAT_LLAMA2, CURATE_ERR_INVALID,
                "messages[1]: expected an assistant turn", "{\"role\":\"user\",\"content\":\"b");

    const char *late_system = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                              "{\"role\":\"assistant\",\"content\":\"b\"},"
                              "{\"role\":\"system\",\"content\":\"c\"}]}";
    expect_fail(late_system, CURATE_CHAT_LLAMA2, CURATE_ERR_INVALID,
                "a system turn may only come first", "{\"role\":\"system");
    expect_fail(late_system, CURATE_CHAT_GEMMA, CURATE_ERR_INVALID,
                "a system turn may only come first", "{\"role\":\"system");

    const char *only_system = "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}";
    expect_fail(only_system, CURATE_CHAT_LLAMA2, CURATE_ERR_INVALID, "needs a user turn after it",
                "{\"role");
    expect_fail(only_system, CURATE_CHAT_GEMMA, CURATE_ERR_INVALID, "needs a user turn after it",
                "{\"role");
    expect_render(only_system, CURATE_CHAT_CHATML, "<|im_start|>system\ns<|im_end|>\n");

    const char *tool = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                       "{\"role\":\"tool\",\"content\":\"b\"}]}";
    expect_fail(tool, CURATE_CHAT_LLAMA2, CURATE_ERR_INVALID, "role \"tool\" not accepted by the llama2",
                "{\"role\":\"tool");
    /* "model" is only Gemma's word. */
    const char *model = "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                        "{\"role\":\"model\",\"content\":\"b\"}]}";
    expect_fail(model, CURATE_CHAT_LLAMA2, CURATE_ERR_INVALID, "role \"model\" not accepted",
                "{\"role\":\"model");
}

static void test_render_json_errors(void **state)
{
    (void)state;
    curate_buf out;
    curate_buf_init(&out);
    curate_error err;
    curate_error_clear(&err);
    static const char bad[] = "[{\"role\":\"user\",\"content\":\"a\"},]";
    assert_int_equal(curate_chat_render_json(bad, sizeof bad - 1, CURATE_CHAT_PLAIN, &out, &err),
                     CURATE_ERR_JSON);
    assert_true(err.has_offset);
    assert_int_equal(err.offset, sizeof bad - 2); /* the ']' after the comma */
    curate_error_clear(&err);
    static const char good[] = "  [{\"role\":\"user\",\"content\":\"a\"}]\n";
    assert_int_equal(curate_chat_render_json(good, sizeof good - 1, CURATE_CHAT_PLAIN, &out, &err),
                     CURATE_OK);
    assert_string_equal(out.data, "user: a");
    /* out is reset by every call, also on failure. */
    assert_int_equal(curate_chat_render_json("3", 1, CURATE_CHAT_PLAIN, &out, &err),
                     CURATE_ERR_FIELD_TYPE);
    assert_int_equal(out.len, 0);
    assert_int_equal(curate_chat_render_json(good, sizeof good - 1, CURATE_CHAT_TEMPLATE_COUNT_,
                                             &out, &err),
                     CURATE_ERR_INVALID);
    curate_buf_release(&out);
}

/* A long conversation: many turns, long contents, every template. */
static void test_long_conversation(void **state)
{
    (void)state;
    curate_buf line;
    curate_buf_init(&line);
    curate_buf_append_str(&line, "{\"messages\":[");
    size_t content_bytes = 0;
    for (int i = 0; i < 200; i++) {
        if (i)
            curate_buf_append_char(&line, ',');
        curate_buf_printf(&line, "{\"role\":\"%s\",\"content\":\"", i % 2 ? "assistant" : "user");
        for (int k = 0; k < 50 + i; k++) {
            curate_buf_append_str(&line, "word ");
            content_bytes += 5;
        }
        curate_buf_append_str(&line, "end\"}");
        content_bytes += 3;
    }
    curate_buf_append_str(&line, "]}");
    curate_record rec;
    curate_record_init(&rec);
    curate_error err;
    assert_int_equal(curate_record_parse(&rec, line.data, line.len, &err), CURATE_OK);
    curate_buf out;
    curate_buf_init(&out);
    for (int t = 0; t < CURATE_CHAT_TEMPLATE_COUNT_; t++) {
        assert_int_equal(curate_chat_render(&rec, NULL, (curate_chat_template)t, &out, &err), CURATE_OK);
        assert_true(out.len > content_bytes);
    }
    curate_buf_release(&out);
    curate_record_release(&rec);
    curate_buf_release(&line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),          cmocka_unit_test(test_chatml),
        cmocka_unit_test(test_llama2),         cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_gemma),          cmocka_unit_test(test_strip_rules),
        cmocka_unit_test(test_template_names), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_turn_order),     cmocka_unit_test(test_render_json_errors),
        cmocka_unit_test(test_long_conversation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
