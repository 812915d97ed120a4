/*
 * test_tokenizer.c - the SentencePiece shim (curate/tokenizer.h).
 *
 * 1. Golden vectors: llama.cpp's ggml-vocab-llama-spm.gguf.inp/.out must
 *    come out of the Llama 2 tokenizer.model exactly (needs ../shared).
 *    As in llama.cpp's test-tokenizer-0, inputs are separated by
 *    "\n__ggml_vocab_test__\n", each .out line holds the ids of one input,
 *    and they are compared without BOS (add_special = false there); the
 *    dummy-prefix space is part of the expected ids.
 * 2. A tokenizer trained here with spm_train on generated text, so the rest
 *    runs on a fresh machine: round trips, BOS/EOS, count, byte fallback,
 *    piece lookups, and the error paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/tokenizer.h"
#include "helper_model.h"

/* ---- golden vectors ------------------------------------------------------- */

static void test_llama_spm_golden(void **state)
{
    (void)state;
    char *model = mh_shared_path("models/llama2-tokenizer/tokenizer.model");
    char *inp_path = mh_shared_path("models/llama2-tokenizer/ggml-vocab-llama-spm.gguf.inp");
    char *out_path = mh_shared_path("models/llama2-tokenizer/ggml-vocab-llama-spm.gguf.out");
    if (!model || !inp_path || !out_path) {
        free(model);
        free(inp_path);
        free(out_path);
        skip();
    }
    curate_error err;
    curate_error_clear(&err);
    curate_tokenizer *tok = curate_tokenizer_load(model, &err);
    assert_non_null(tok);
    assert_int_equal(curate_tokenizer_vocab_size(tok), 32000);
    assert_int_equal(curate_tokenizer_bos(tok), 1);
    assert_int_equal(curate_tokenizer_eos(tok), 2);
    assert_int_equal(curate_tokenizer_unk(tok), 0);

    size_t inp_len, out_len;
    char *inp = mh_read_file(inp_path, &inp_len);
    char *out = mh_read_file(out_path, &out_len);
    assert_non_null(inp);
    assert_non_null(out);

    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    size_t pos = 0, opos = 0, n_cases = 0, n_ids = 0;
    curate_tokens got;
    curate_tokens_init(&got);
    while (pos < inp_len) {
        const char *next = strstr(inp + pos, sep);
        size_t end = next ? (size_t)(next - inp) : inp_len;
        /* the matching .out line */
        assert_true(opos < out_len);
        const char *nl = memchr(out + opos, '\n', out_len - opos);
        size_t oend = nl ? (size_t)(nl - out) : out_len;

        curate_tokens_reset(&got);
        assert_int_equal(curate_tokenizer_encode(tok, inp + pos, end - pos, 0, &got, &err),
                         CURATE_OK);
        /* parse the expected ids */
        size_t k = 0;
        const char *p = out + opos;
        const char *pe = out + oend;
        while (p < pe) {
            while (p < pe && *p == ' ')
                p++;
            if (p >= pe)
                break;
            char *q;
            long want = strtol(p, &q, 10);
            assert_true(q > p);
            p = q;
            if (k >= got.n || got.ids[k] != want) {
                fprintf(stderr, "case %zu (%.*s): id %zu: want %ld got %ld\n", n_cases,
                        (int)(end - pos), inp + pos, k, want,
                        k < got.n ? (long)got.ids[k] : -1L);
                fail();
            }
            k++;
        }
        assert_int_equal(k, got.n);
        n_ids += k;
        n_cases++;
        opos = nl ? oend + 1 : out_len;
        if (!next)
            break;
        pos = end + sep_len;
    }
    /* every expected line was used */
    assert_true(opos >= out_len);
    assert_true(n_cases > 30);
    fprintf(stderr, "llama-spm golden: %zu cases, %zu ids identical\n", n_cases, n_ids);

    /* with BOS requested, the same ids follow a leading 1 */
    curate_tokens_reset(&got);
    assert_int_equal(curate_tokenizer_encode(tok, "Hello world", 11, CURATE_TOK_ADD_BOS, &got, &err),
                     CURATE_OK);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.ids[0], 1);
    assert_int_equal(got.ids[1], 15043); /* "▁Hello" in the golden file */
    assert_int_equal(got.ids[2], 3186);

    curate_tokens_release(&got);
    free(inp);
    free(out);
    curate_tokenizer_free(tok);
    free(model);
    free(inp_path);
    free(out_path);
}

/* ---- a tokenizer trained at test time ------------------------------------------- */

static char trained_path[1200];
static int trained_status = -2;

static curate_tokenizer *trained(void)
{
    if (trained_status == -2)
        trained_status = mh_train_tokenizer(400, 7, trained_path, sizeof trained_path);
    if (trained_status == 77)
        skip();
    assert_int_equal(trained_status, 0);
    curate_error err;
    curate_error_clear(&err);
    curate_tokenizer *tok = curate_tokenizer_load(trained_path, &err);
    if (!tok)
        fprintf(stderr, "load: %s\n", err.message);
    assert_non_null(tok);
    return tok;
}

static void test_trained_basics(void **state)
{
    (void)state;
    curate_tokenizer *tok = trained();
    assert_int_equal(curate_tokenizer_vocab_size(tok), 400);
    assert_int_equal(curate_tokenizer_unk(tok), 0);
    assert_int_equal(curate_tokenizer_bos(tok), 1);
    assert_int_equal(curate_tokenizer_eos(tok), 2);
    assert_int_equal(curate_tokenizer_pad(tok), -1);
    assert_string_equal(curate_tokenizer_piece(tok, 1), "<s>");
    assert_string_equal(curate_tokenizer_piece(tok, 2), "</s>");
    assert_null(curate_tokenizer_piece(tok, 400));
    assert_null(curate_tokenizer_piece(tok, -1));
    assert_int_equal(curate_tokenizer_piece_type(tok, 0), CURATE_PIECE_UNKNOWN);
    assert_int_equal(curate_tokenizer_piece_type(tok, 1), CURATE_PIECE_CONTROL);
    assert_int_equal(curate_tokenizer_piece_type(tok, 400), CURATE_PIECE_INVALID);
    /* byte pieces follow the specials: <0x00> is id 3, <0x0A> id 13 */
    assert_int_equal(curate_tokenizer_piece_id(tok, "<0x0A>", 6), 13);
    assert_int_equal(curate_tokenizer_piece_type(tok, 13), CURATE_PIECE_BYTE);
    /* a piece that is not there is -1, not unk */
    assert_int_equal(curate_tokenizer_piece_id(tok, "no-such-piece", 13), -1);
    assert_int_equal(curate_tokenizer_piece_id(tok, "<unk>", 5), 0);
    /* every id's piece maps back to that id */
    for (int32_t id = 0; id < 400; id++) {
        const char *p = curate_tokenizer_piece(tok, id);
        assert_non_null(p);
        assert_int_equal(curate_tokenizer_piece_id(tok, p, strlen(p)), id);
    }
    /* a frequent word of the corpus became one piece ("▁the") */
    int32_t the = curate_tokenizer_piece_id(tok, "\xe2\x96\x81the", 6);
    assert_true(the > 258);
    assert_int_equal(curate_tokenizer_piece_type(tok, the), CURATE_PIECE_NORMAL);
    curate_tokenizer_free(tok);
}

static void test_trained_roundtrip(void **state)
{
    (void)state;
    curate_tokenizer *tok = trained();
    curate_error err;
    curate_error_clear(&err);
    /* text from another seed (unseen sentences), plus characters never in
     * the corpus: they must go through byte fallback and come back intact */
    size_t len;
    char *text = mh_make_text(99, 5000, &len);
    assert_non_null(text);
    curate_buf s;
    curate_buf_init(&s);
    assert_int_equal(curate_buf_append(&s, text, len), CURATE_OK);
    assert_int_equal(curate_buf_append_str(&s, "  double  spaces\tand tabs \xe2\x82\xac \xf0\x9f\xa6\x99 \xe4\xb8\xad"), CURATE_OK);

    curate_tokens ids;
    curate_tokens_init(&ids);
    assert_int_equal(curate_tokenizer_encode(tok, s.data, s.len, 0, &ids, &err), CURATE_OK);
    assert_true(ids.n > 100);
    assert_true(ids.n < s.len); /* merges happened */
    size_t n_bytes = 0;
    for (size_t i = 0; i < ids.n; i++) {
        assert_true(ids.ids[i] >= 0 && ids.ids[i] < 400);
        if (curate_tokenizer_piece_type(tok, ids.ids[i]) == CURATE_PIECE_BYTE)
            n_bytes++;
        assert_int_not_equal(ids.ids[i], 0); /* no unk with byte fallback */
    }
    /* euro (3 bytes), llama (4) and 中 (3) at least */
    assert_true(n_bytes >= 10);

    curate_buf back;
    curate_buf_init(&back);
    assert_int_equal(curate_tokenizer_decode(tok, ids.ids, ids.n, &back, &err), CURATE_OK);
    assert_int_equal(back.len, s.len);
    assert_memory_equal(back.data, s.data, s.len);

    /* count agrees with encode, with and without BOS/EOS */
    uint64_t n = 0;
    assert_int_equal(curate_tokenizer_count(tok, s.data, s.len, 0, &n, &err), CURATE_OK);
    assert_int_equal(n, ids.n);
    assert_int_equal(curate_tokenizer_count(tok, s.data, s.len, CURATE_TOK_ADD_BOS | CURATE_TOK_ADD_EOS, &n, &err), CURATE_OK);
    assert_int_equal(n, ids.n + 2);

    /* BOS/EOS placement, and encode appends rather than replaces */
    curate_tokens two;
    curate_tokens_init(&two);
    assert_int_equal(curate_tokenizer_encode(tok, "the cat", 7, CURATE_TOK_ADD_BOS, &two, &err), CURATE_OK);
    size_t first = two.n;
    assert_int_equal(two.ids[0], 1);
    assert_int_equal(curate_tokenizer_encode(tok, "the cat", 7, CURATE_TOK_ADD_EOS, &two, &err), CURATE_OK);
    assert_int_equal(two.n, 2 * first);
    assert_int_equal(two.ids[two.n - 1], 2);
    assert_memory_equal(two.ids + 1, two.ids + first, (first - 1) * sizeof(int32_t));
    /* BOS and EOS decode to nothing; */
    curate_buf_reset(&back);
    assert_int_equal(curate_tokenizer_decode(tok, two.ids, two.n, &back, &err), CURATE_OK);
    /* only the very first dummy-prefix space is dropped */
    assert_string_equal(back.data, "the cat the cat");

    /* empty text: no ids, or just BOS */
    curate_tokens_reset(&two);
    assert_int_equal(curate_tokenizer_encode(tok, "", 0, 0, &two, &err), CURATE_OK);
    assert_int_equal(two.n, 0);
    assert_int_equal(curate_tokenizer_encode(tok, NULL, 0, CURATE_TOK_ADD_BOS, &two, &err), CURATE_OK);
    assert_int_equal(two.n, 1);

    /* the dummy prefix: "cat" and " cat" differ only by the leading space */
    curate_tokens a, b;
    curate_tokens_init(&a);
    curate_tokens_init(&b);
    assert_int_equal(curate_tokenizer_encode(tok, "cat", 3, 0, &a, &err), CURATE_OK);
    assert_int_equal(curate_tokenizer_encode(tok, " cat", 4, 0, &b, &err), CURATE_OK);
    assert_true(b.n > a.n || memcmp(a.ids, b.ids, a.n * sizeof(int32_t)) != 0);

    curate_tokens_release(&a);
    curate_tokens_release(&b);
    curate_tokens_release(&two);
    curate_tokens_release(&ids);
    curate_buf_release(&back);
    curate_buf_release(&s);
    free(text);
    curate_tokenizer_free(tok);
}

static void test_errors(void **state)
{
    (void)state;
    curate_error err;
    curate_error_clear(&err);
    /* missing file: I/O error naming the file */
    assert_null(curate_tokenizer_load("/nonexistent/dir/tok.model", &err));
    assert_int_equal(err.code, CURATE_ERR_IO);
    assert_string_equal(err.file, "/nonexistent/dir/tok.model");
    assert_non_null(strstr(err.message, "No such file"));

    /* not a model: tokenizer error */
    char path[1200];
    snprintf(path, sizeof path, "%s/garbage.model", mh_scratch_dir());
    assert_int_equal(mh_write_file(path, "this is not a protobuf\xff\xff\xff", 25), 0);
    curate_error_clear(&err);
    assert_null(curate_tokenizer_load(path, &err));
    assert_int_equal(err.code, CURATE_ERR_TOKENIZER);
    assert_true(err.message[0] != 0);
    curate_error_clear(&err);
    assert_null(curate_tokenizer_load_mem("", 0, "empty", &err));
    assert_int_equal(err.code, CURATE_ERR_TOKENIZER);
    assert_null(curate_tokenizer_load(NULL, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);

    /* NULL handle is safe for the queries and free */
    curate_tokenizer_free(NULL);
    assert_int_equal(curate_tokenizer_vocab_size(NULL), 0);
    assert_int_equal(curate_tokenizer_bos(NULL), -1);

    curate_tokenizer *tok = trained();
    /* out-of-range ids in decode */
    int32_t bad[] = {5, 400};
    curate_buf out;
    curate_buf_init(&out);
    curate_error_clear(&err);
    assert_int_equal(curate_tokenizer_decode(tok, bad, 2, &out, &err), CURATE_ERR_RANGE);
    assert_non_null(strstr(err.message, "400"));
    int32_t neg[] = {-3};
    assert_int_equal(curate_tokenizer_decode(tok, neg, 1, &out, &err), CURATE_ERR_RANGE);
    assert_int_equal(out.len, 0);

    /* the same model loaded from memory behaves the same */
    size_t len;
    char *bytes = mh_read_file(trained_path, &len);
    assert_non_null(bytes);
    curate_tokenizer *tok2 = curate_tokenizer_load_mem(bytes, len, "mem", &err);
    free(bytes);
    assert_non_null(tok2);
    curate_tokens x, y;
    curate_tokens_init(&x);
    curate_tokens_init(&y);
    const char *t = "The quick brown fox jumps over the lazy dog.";
    assert_int_equal(curate_tokenizer_encode(tok, t, strlen(t), 0, &x, &err), CURATE_OK);
    assert_int_equal(curate_tokenizer_encode(tok2, t, strlen(t), 0, &y, &err), CURATE_OK);
    assert_int_equal(x.n, y.n);
    assert_memory_equal(x.ids, y.ids, x.n * sizeof(int32_t));
    curate_tokens_release(&x);
    curate_tokens_release(&y);
    curate_tokenizer_free(tok2);
    curate_buf_release(&out);
    curate_tokenizer_free(tok);
}

/* Encoding a long text in parts cut before newlines gives the ids of the
 * whole text in one piece. */
static void same_ids_in_parts(const char *model, unsigned flags, const char *text, size_t len)
{
    curate_error err;
    curate_error_clear(&err);
    curate_tokenizer *parts = curate_tokenizer_load_ex(model, flags, &err);
    curate_tokenizer *whole =
        curate_tokenizer_load_ex(model, flags | CURATE_TOK_LOAD_WHOLE_TEXT, &err);
    assert_non_null(parts);
    assert_non_null(whole);
    assert_true(curate_tokenizer_in_parts(parts));
    assert_false(curate_tokenizer_in_parts(whole));
    curate_tokens a, b;
    curate_tokens_init(&a);
    curate_tokens_init(&b);
    assert_int_equal(curate_tokenizer_encode(parts, text, len, CURATE_TOK_ADD_BOS, &a, &err),
                     CURATE_OK);
    assert_int_equal(curate_tokenizer_encode(whole, text, len, CURATE_TOK_ADD_BOS, &b, &err),
                     CURATE_OK);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ids, b.ids, a.n * sizeof(int32_t));
    uint64_t n = 0;
    assert_int_equal(curate_tokenizer_count(parts, text, len, 0, &n, &err), CURATE_OK);
    assert_int_equal(n + 1, a.n);
    fprintf(stderr, "%s: %zu bytes, %zu ids, the same in parts and whole\n", model, len, a.n);
    curate_tokens_release(&a);
    curate_tokens_release(&b);
    curate_tokenizer_free(parts);
    curate_tokenizer_free(whole);
}

static void test_parts_equal_whole(void **state)
{
    (void)state;
    curate_tokenizer_free(trained()); /* trains it if needed */
    /* generated text: 300 KB with single and double newlines, spaces */
    size_t len;
    char *text = mh_make_text(5, 300000, &len);
    assert_non_null(text);
    for (size_t i = 0; i + 3 < len; i += 997)
        if (text[i] == ' ')
            text[i + 1] = ' '; /* some double spaces */
    same_ids_in_parts(trained_path, 0, text, len);
    free(text);
    curate_error err;

    /* the real tokenizers on wikitext (needs ../shared) */
    char *wiki = mh_shared_path("data/wiki/wikitext-2-raw/wiki.test.raw");
    char *llama2 = mh_shared_path("models/llama2-tokenizer/tokenizer.model");
    char *tok512 = mh_shared_path("models/stories260K/tok512.model");
    char *tinymix = mh_shared_path("models/tinymix/tokenizer.model");
    if (wiki && llama2 && tok512 && tinymix) {
        char *w = mh_read_file(wiki, &len);
        assert_non_null(w);
        if (len > 400000)
            len = 400000;
        same_ids_in_parts(llama2, 0, w, len);
        same_ids_in_parts(tinymix, 0, w, len);
        same_ids_in_parts(tok512, CURATE_TOK_LOAD_KEEP_WHITESPACE, w, len);
        free(w);
        /* tok512 as it is squashes whitespace: never cut (the trailing
         * spaces of a part would be stripped) */
        curate_tokenizer *squash = curate_tokenizer_load(tok512, &err);
        assert_non_null(squash);
        assert_false(curate_tokenizer_in_parts(squash));
        curate_tokenizer_free(squash);
    }
    free(wiki);
    free(llama2);
    free(tok512);
    free(tinymix);
}

static void test_tokens_vector(void **state)
{
    (void)state;
    curate_tokens t;
    curate_tokens_init(&t);
    for (int32_t i = 0; i < 10000; i++)
        assert_int_equal(curate_tokens_push(&t, i), CURATE_OK);
    assert_int_equal(t.n, 10000);
    for (int32_t i = 0; i < 10000; i++)
        assert_int_equal(t.ids[i], i);
    int32_t more[3] = {7, 8, 9};
    assert_int_equal(curate_tokens_append(&t, more, 3), CURATE_OK);
    assert_int_equal(t.ids[10002], 9);
    assert_int_equal(curate_tokens_reserve(&t, SIZE_MAX), CURATE_ERR_NOMEM);
    assert_int_equal(t.n, 10003);
    curate_tokens_release(&t);
    assert_null(t.ids);
    assert_int_equal(t.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_vector),
        cmocka_unit_test(test_llama_spm_golden),
        cmocka_unit_test(test_trained_basics),
        cmocka_unit_test(test_trained_roundtrip),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_parts_equal_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
