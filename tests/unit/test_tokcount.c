/*
 * test_tokcount.c - the token count cache (curate/tokcount.h).
 *
 * The reference is curate_tokenizer_count() itself: on every text the
 * cached count must equal the direct count.  Verification is switched off
 * in these runs (verify_first = verify_every = 0), so what is compared is
 * the cache path alone, not the safety net.
 *
 * Models: SentencePiece BPE models trained here with spm_train with the
 * settings that matter to the segment rule (Llama-style identity
 * normalization; the default NFKC with whitespace squashing; no dummy
 * prefix; whitespace as suffix), plus the Llama 2 tokenizer from
 * ../shared on real text when it is there.  The last two must switch the
 * cache off and still count right.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/tokcount.h"
#include "helper_model.h"

/* Train a 400-piece BPE model on mh_make_text(seed) with extra flags. */
static char *train(const char *tag, const char *flags)
{
    if (system("command -v spm_train >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skip: spm_train is not installed\n");
        return NULL;
    }
    const char *dir = mh_scratch_dir();
    char corpus[1200], prefix[1200], cmd[4096];
    snprintf(corpus, sizeof corpus, "%s/tc-corpus.txt", dir);
    snprintf(prefix, sizeof prefix, "%s/tc-%s", dir, tag);
    size_t len;
    char *text = mh_make_text(11, 200000, &len);
    assert_non_null(text);
    /* Runs of spaces and some full-width / no-break spaces, so models can
     * learn whitespace pieces. */
    for (size_t i = 97; i + 3 < len; i += 211)
        if (text[i] == ' ')
            memcpy(text + i, "   ", 3);
    assert_int_equal(mh_write_file(corpus, text, len), 0);
    free(text);
    snprintf(cmd, sizeof cmd,
             "spm_train --input='%s' --model_prefix='%s' --vocab_size=400 --model_type=bpe "
             "--byte_fallback=true --character_coverage=1.0 --num_threads=1 --minloglevel=2 %s "
             ">/dev/null 2>&1",
             corpus, prefix, flags);
    assert_int_equal(system(cmd), 0);
    char *path = malloc(strlen(prefix) + 8);
    assert_non_null(path);
    sprintf(path, "%s.model", prefix);
    return path;
}

static const char *const tricky[] = {
    "", " ", "  ", "a", " a", "a ", "  a  ", "a  b   c    d     e",
    "  leading", "trailing   ", "tab\tseparated\twords and\nnew\n lines \n",
    "no-break\xc2\xa0space and\xc2\xa0 mixed \xc2\xa0 ones",
    "ideographic\xe3\x80\x80space \xe3\x80\x80 here", "en\xe2\x80\x82space",
    "diaeresis \xc2\xa8 alone", "\xef\xbd\x86\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c width",
    "caf\xc3\xa9 na\xc3\xafve \xc3\x9c\xc3\x9f", "\xe6\x9d\xb1\xe4\xba\xac \xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc",
    "emoji \xf0\x9f\xa4\x96 and \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", "digits 1234567 89 0.25",
    "broken \xff\xfe bytes \xc3", "a-very-long-token-without-any-space-that-goes-on-and-on-"
    "and-on-past-sixty-four-bytes-for-sure-yes", "x x x x x x x x x x x x",
    "<s>[INST] hi [/INST] ok </s>", " \n ", "\n", "end.\n\n",
};

/* Compare counter and direct counts on all texts; returns texts compared. */
static size_t compare_all(const curate_tokenizer *tok, curate_token_counter *tc, const char *corpus,
                          size_t corpus_len)
{
    curate_error err;
    curate_error_clear(&err);
    size_t n = 0;
    for (int round = 0; round < 2; round++) { /* the second round hits the cache */
        for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
            uint64_t a, b;
            size_t len = strlen(tricky[i]);
            assert_int_equal(curate_token_counter_count(tc, tricky[i], len, &a, &err), CURATE_OK);
            assert_int_equal(curate_tokenizer_count(tok, tricky[i], len, 0, &b, &err), CURATE_OK);
            if (a != b)
                fprintf(stderr, "text [%s]: cache %llu, direct %llu\n", tricky[i],
                        (unsigned long long)a, (unsigned long long)b);
            assert_int_equal(a, b);
            n++;
        }
        /* Slices of the corpus with varying starts and lengths. */
        uint64_t s = 12345 + (uint64_t)round;
        for (size_t k = 0; k < 400 && corpus_len > 10; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t start = (size_t)(s >> 33) % corpus_len;
            size_t len = (size_t)(s >> 20) % 3000;
            if (len > corpus_len - start)
                len = corpus_len - start;
            uint64_t a, b;
            assert_int_equal(curate_token_counter_count(tc, corpus + start, len, &a, &err), CURATE_OK);
            assert_int_equal(curate_tokenizer_count(tok, corpus + start, len, 0, &b, &err), CURATE_OK);
            if (a != b)
                fprintf(stderr, "slice %zu+%zu: cache %llu, direct %llu\n", start, len,
                        (unsigned long long)a, (unsigned long long)b);
            assert_int_equal(a, b);
            n++;
        }
    }
    return n;
}

static curate_token_counter *counter(const curate_tokenizer *tok, size_t budget)
{
    curate_token_counter_opts o;
    curate_token_counter_opts_default(&o);
    o.verify_first = 0;
    o.verify_every = 0;
    o.max_cache_bytes = budget;
    curate_error err;
    curate_error_clear(&err);
    curate_token_counter *tc = curate_token_counter_init(tok, &o, &err);
    if (!tc)
        fprintf(stderr, "init: %s\n", err.message);
    assert_non_null(tc);
    return tc;
}

/* Train with flags, check exactness, and that the cache is on or off. */
static void check_model(const char *tag, const char *flags, int want_enabled)
{
    char *path = train(tag, flags);
    if (!path)
        skip();
    curate_error err;
    curate_error_clear(&err);
    curate_tokenizer *tok = curate_tokenizer_load(path, &err);
    assert_non_null(tok);
    size_t len;
    char *corpus = mh_make_text(99, 100000, &len);
    curate_token_counter *tc = counter(tok, 0);
    size_t n = compare_all(tok, tc, corpus, len);
    curate_token_counter_stats st;
    curate_token_counter_get_stats(tc, &st);
    fprintf(stderr, "%s: %zu texts equal; cache %s%s%s, %llu/%llu segment hits\n", tag, n,
            st.cache_enabled ? "on" : "off", st.why_disabled ? ": " : "",
            st.why_disabled ? st.why_disabled : "", (unsigned long long)st.hits,
            (unsigned long long)st.segments);
    assert_int_equal(st.cache_enabled, want_enabled);
    if (want_enabled) {
        assert_null(st.why_disabled);
        assert_true(st.hits > st.segments / 2);
        assert_true(st.direct < st.segments / 10);
    } else {
        assert_non_null(st.why_disabled);
        assert_int_equal(st.direct, st.texts); /* every count was direct */
    }
    curate_token_counter_free(tc);
    curate_tokenizer_free(tok);
    free(corpus);
    free(path);
}

static void test_llama_style(void **state)
{
    (void)state;
    check_model("llama", "--normalization_rule_name=identity --remove_extra_whitespaces=false "
                         "--add_dummy_prefix=true --split_digits=true --allow_whitespace_only_pieces=true",
                1);
}

static void test_nfkc_squashing(void **state)
{
    (void)state;
    /* spm_train's defaults: NFKC, leading/trailing/duplicate spaces removed. */
    check_model("nfkc", "", 1);
}

static void test_no_dummy_prefix(void **state)
{
    (void)state;
    check_model("nodummy", "--add_dummy_prefix=false --normalization_rule_name=identity "
                           "--remove_extra_whitespaces=false",
                0);
}

static void test_whitespace_suffix(void **state)
{
    (void)state;
    check_model("suffix", "--treat_whitespace_as_suffix=true --normalization_rule_name=identity "
                          "--remove_extra_whitespaces=false",
                0);
}

static void test_disable_option_and_verification(void **state)
{
    (void)state;
    char *path = train("llama", "--normalization_rule_name=identity --remove_extra_whitespaces=false");
    if (!path)
        skip();
    curate_error err;
    curate_tokenizer *tok = curate_tokenizer_load(path, &err);
    assert_non_null(tok);
    curate_token_counter_opts o;
    curate_token_counter_opts_default(&o);
    o.disable_cache = 1;
    curate_token_counter *tc = curate_token_counter_init(tok, &o, &err);
    assert_non_null(tc);
    uint64_t n;
    assert_int_equal(curate_token_counter_count(tc, "the cat sat", 11, &n, &err), CURATE_OK);
    curate_token_counter_stats st;
    curate_token_counter_get_stats(tc, &st);
    assert_int_equal(st.cache_enabled, 0);
    assert_string_equal(st.why_disabled, "disabled by option");
    assert_int_equal(st.segments, 0);
    curate_token_counter_free(tc);

    /* verify_first 3, then one in 5: 23 texts give 3 + 4 verifications. */
    curate_token_counter_opts_default(&o);
    o.verify_first = 3;
    o.verify_every = 5;
    tc = curate_token_counter_init(tok, &o, &err);
    assert_non_null(tc);
    for (int i = 0; i < 23; i++)
        assert_int_equal(curate_token_counter_count(tc, "one two three", 13, &n, &err), CURATE_OK);
    curate_token_counter_get_stats(tc, &st);
    assert_int_equal(st.texts, 23);
    assert_int_equal(st.verified, 7);
    assert_int_equal(st.cache_enabled, 1);
    curate_token_counter_free(tc);
    assert_null(curate_token_counter_init(NULL, NULL, &err));
    curate_token_counter_free(NULL);
    curate_tokenizer_free(tok);
    free(path);
}

static void test_memory_budget(void **state)
{
    (void)state;
    char *path = train("llama", "--normalization_rule_name=identity --remove_extra_whitespaces=false");
    if (!path)
        skip();
    curate_error err;
    curate_tokenizer *tok = curate_tokenizer_load(path, &err);
    assert_non_null(tok);
    const size_t budget = 256 * 1024;
    curate_token_counter *tc = counter(tok, budget);
    /* Many distinct "words": far more than fit. */
    char text[64];
    for (unsigned i = 0; i < 60000; i++) {
        int k = snprintf(text, sizeof text, "w%u x%u", i * 7919u, i);
        uint64_t a, b;
        assert_int_equal(curate_token_counter_count(tc, text, (size_t)k, &a, &err), CURATE_OK);
        if (i % 97 == 0) {
            assert_int_equal(curate_tokenizer_count(tok, text, (size_t)k, 0, &b, &err), CURATE_OK);
            assert_int_equal(a, b);
        }
    }
    curate_token_counter_stats st;
    curate_token_counter_get_stats(tc, &st);
    assert_true(st.memory <= budget + 4096);
    assert_true(st.entries > 1000);
    assert_true(st.entries < 60000);
    curate_token_counter_free(tc);
    curate_tokenizer_free(tok);
    free(path);
}

static void test_llama2_real_text(void **state)
{
    (void)state;
    char *model = mh_shared_path("models/llama2-tokenizer/tokenizer.model");
    char *data = mh_shared_path("data/web/c4_demo.jsonl");
    char *code = mh_shared_path("data/code/HumanEval.jsonl");
    if (!model || !data || !code) {
        free(model);
        free(data);
        free(code);
        skip();
    }
    curate_error err;
    curate_tokenizer *tok = curate_tokenizer_load(model, &err);
    assert_non_null(tok);
    size_t len1, len2;
    char *web = mh_read_file(data, &len1);
    char *py = mh_read_file(code, &len2);
    assert_non_null(web);
    assert_non_null(py);
    curate_token_counter *tc = counter(tok, 0);
    size_t n = compare_all(tok, tc, web, len1 > 300000 ? 300000 : len1);
    n += compare_all(tok, tc, py, len2 > 200000 ? 200000 : len2);
    curate_token_counter_stats st;
    curate_token_counter_get_stats(tc, &st);
    fprintf(stderr, "llama2: %zu texts equal, %llu/%llu segment hits\n", n,
            (unsigned long long)st.hits, (unsigned long long)st.segments);
    assert_int_equal(st.cache_enabled, 1);
    curate_token_counter_free(tc);
    curate_tokenizer_free(tok);
    free(web);
    free(py);
    free(model);
    free(data);
    free(code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_style),
        cmocka_unit_test(test_nfkc_squashing),
        cmocka_unit_test(test_no_dummy_prefix),
        cmocka_unit_test(test_whitespace_suffix),
        cmocka_unit_test(test_disable_option_and_verification),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_llama2_real_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
