/*
 * test_calibrate_cli.c - curate-calibrate end to end without ../shared: a
 * tokenizer trained here with spm_train and a random llama GGUF that embeds
 * its vocabulary, evaluation files written here (JSONL text records, chat
 * records, plain text), and the tool run as a program ($CURATE_BIN).
 *
 * What the tool prints is compared with the library run on the text this
 * test builds itself (records joined by a blank line; chat turns rendered
 * by hand as the plain template's "role: content" lines), so the file
 * reading, joining and chat rendering of the tool are checked, not assumed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "curate/buf.h"
#include "curate/model.h"
#include "curate/ppl.h"
#include "curate/testmodel.h"
#include "curate/tokenizer.h"
#include "helper_model.h"

static char tok_path[1200], model_file[1200], dir[1200];
static curate_tokenizer *tok;
static curate_model *model;

static int setup(void **state)
{
    (void)state;
    if (!getenv("CURATE_BIN")) {
        fprintf(stderr, "skip: CURATE_BIN is not set (run through ctest)\n");
        return 0;
    }
    int rc = mh_train_tokenizer(400, 11, tok_path, sizeof tok_path);
    if (rc != 0)
        return rc == 77 ? 0 : -1;
    curate_error err;
    curate_error_clear(&err);
    tok = curate_tokenizer_load_ex(tok_path, CURATE_TOK_LOAD_KEEP_WHITESPACE, &err);
    if (!tok)
        return -1;
    const char *pieces[400];
    for (int32_t i = 0; i < 400; i++)
        pieces[i] = curate_tokenizer_piece(tok, i);
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    cfg.vocab_size = 400;
    cfg.ctx_len = 64;
    cfg.tokens = pieces;
    cfg.scale = 0.4f;
    snprintf(model_file, sizeof model_file, "%s/cli-model.gguf", mh_scratch_dir());
    if (curate_testmodel_write(&cfg, model_file, &err) != CURATE_OK)
        return -1;
    model = curate_model_load(model_file, &err);
    snprintf(dir, sizeof dir, "%s/eval", mh_scratch_dir());
    mkdir(dir, 0777);
    return model ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    curate_model_free(model);
    curate_tokenizer_free(tok);
    return 0;
}

static void need_fixtures(void)
{
    if (!model)
        skip();
}

/* Run the tool with args; stdout and stderr into files; returns the exit status. */
static int run_tool(const char *args, const char *out, const char *errf)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s/curate-calibrate' -m '%s' -t '%s' %s > '%s' 2> '%s'",
             getenv("CURATE_BIN"), model_file, tok_path, args, out, errf);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The library's answer for a text, formatted as the tool's table prints it. */
static void expected_line(const char *name, const char *text, size_t len, size_t ctx,
                          char *line, size_t cap, double *ppl)
{
    curate_error err;
    curate_model_ctx *c = curate_model_ctx_init(model, ctx, 1, &err);
    assert_non_null(c);
    curate_ppl_opts o;
    curate_ppl_opts_init(&o);
    o.ctx = ctx;
    curate_ppl_result r;
    assert_int_equal(curate_ppl_text(c, tok, text, len, &o, &r, &err), CURATE_OK);
    snprintf(line, cap, "%-16s %10llu %8llu %10llu %12.4f %10.5f", name,
             (unsigned long long)r.n_tokens, (unsigned long long)r.n_chunks,
             (unsigned long long)r.n_scored, r.ppl, r.ppl_err);
    *ppl = r.ppl;
    curate_model_ctx_free(c);
}

static void json_escape(curate_buf *b, const char *s)
{
    assert_int_equal(curate_buf_append_json_string(b, s, strlen(s)), CURATE_OK);
}

static void test_domains(void **state)
{
    (void)state;
    need_fixtures();
    char path[1400];
    curate_buf file, joined, chat_file, chat_text;
    curate_buf_init(&file);
    curate_buf_init(&joined);
    curate_buf_init(&chat_file);
    curate_buf_init(&chat_text);

    /* a.jsonl: text records with other fields around the text */
    for (int i = 0; i < 12; i++) {
        size_t len;
        char *t = mh_make_text(200 + (uint64_t)i, 300 + 40 * (size_t)i, &len);
        curate_buf_printf(&file, "{\"id\":%d,\"text\":", i);
        json_escape(&file, t);
        curate_buf_append_str(&file, ",\"domain\":\"a\"}\n");
        if (i)
            curate_buf_append(&joined, "\n\n", 2);
        curate_buf_append(&joined, t, len);
        free(t);
    }
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    assert_int_equal(mh_write_file(path, file.data, file.len), 0);

    /* chat.jsonl: messages records; the plain template is "role: content"
     * per turn, turns joined by "\n" */
    for (int i = 0; i < 10; i++) {
        size_t l1, l2;
        char *q = mh_make_text(300 + (uint64_t)i, 150, &l1);
        char *a = mh_make_text(400 + (uint64_t)i, 250, &l2);
        curate_buf_append_str(&chat_file, "{\"messages\":[{\"role\":\"user\",\"content\":");
        json_escape(&chat_file, q);
        curate_buf_append_str(&chat_file, "},{\"role\":\"assistant\",\"content\":");
        json_escape(&chat_file, a);
        curate_buf_append_str(&chat_file, "}]}\n");
        if (i)
            curate_buf_append(&chat_text, "\n\n", 2);
        curate_buf_printf(&chat_text, "user: %s\nassistant: %s", q, a);
        free(q);
        free(a);
    }
    snprintf(path, sizeof path, "%s/chat.jsonl", dir);
    assert_int_equal(mh_write_file(path, chat_file.data, chat_file.len), 0);

    /* b.txt: plain text, taken as it is (one trailing newline dropped by
     * the perplexity method itself) */
    size_t blen;
    char *btext = mh_make_text(77, 4000, &blen);
    btext[blen++] = '\n';
    snprintf(path, sizeof path, "%s/b.txt", dir);
    assert_int_equal(mh_write_file(path, btext, blen), 0);
    /* not an evaluation file: ignored by --eval-dir */
    snprintf(path, sizeof path, "%s/notes.md", dir);
    assert_int_equal(mh_write_file(path, "# notes\n", 8), 0);

    char want_a[256], want_b[256], want_chat[256];
    double ppl_a, ppl_b, ppl_chat;
    expected_line("a", joined.data, joined.len, 32, want_a, sizeof want_a, &ppl_a);
    expected_line("b", btext, blen, 32, want_b, sizeof want_b, &ppl_b);
    expected_line("chat", chat_text.data, chat_text.len, 32, want_chat, sizeof want_chat,
                  &ppl_chat);

    char out[1400], errf[1400], report[1400], args[4096];
    snprintf(out, sizeof out, "%s/out.txt", mh_scratch_dir());
    snprintf(errf, sizeof errf, "%s/err.txt", mh_scratch_dir());
    snprintf(report, sizeof report, "%s/report.json", mh_scratch_dir());
    snprintf(args, sizeof args, "--eval-dir '%s' -c 32 -j 2 --report '%s'", dir, report);
    assert_int_equal(run_tool(args, out, errf), 0);
    size_t n;
    char *got = mh_read_file(out, &n);
    assert_non_null(got);
    /* header, then a, b, chat in name order */
    char want[1024];
    snprintf(want, sizeof want, "%-16s %10s %8s %10s %12s %10s\n%s\n%s\n%s\n", "domain",
             "tokens", "chunks", "scored", "PPL", "+/-", want_a, want_b, want_chat);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "got:\n%swant:\n%s", got, want);
    assert_string_equal(got, want);
    free(got);
    char *err_text = mh_read_file(errf, &n);
    assert_non_null(strstr(err_text, "a: 12 records"));
    assert_non_null(strstr(err_text, "chat: 10 records"));
    free(err_text);

    /* the report names each domain with its figures */
    char *rep = mh_read_file(report, &n);
    assert_non_null(rep);
    assert_true(n > 0 && rep[0] == '{' && rep[n - 1] == '\n' && rep[n - 2] == '}');
    char frag[256];
    snprintf(frag, sizeof frag, "\"name\":\"chat\"");
    assert_non_null(strstr(rep, frag));
    snprintf(frag, sizeof frag, "\"ppl\":%.6f", ppl_chat);
    assert_non_null(strstr(rep, frag));
    snprintf(frag, sizeof frag, "\"ppl\":%.6f", ppl_b);
    assert_non_null(strstr(rep, frag));
    assert_non_null(strstr(rep, "\"format\":\"text\""));
    assert_non_null(strstr(rep, "\"records\":12"));
    assert_non_null(strstr(rep, "\"n_vocab\":400"));
    assert_null(strstr(rep, "\"name\":\"notes\""));
    assert_null(strstr(rep, "notes.md"));
    free(rep);

    /* one thread: the same table, byte for byte; --eval names its domain */
    char out1[1400];
    snprintf(out1, sizeof out1, "%s/out1.txt", mh_scratch_dir());
    snprintf(args, sizeof args, "-q -c 32 -j 1 --eval 'renamed=%s/a.jsonl'", dir);
    assert_int_equal(run_tool(args, out1, errf), 0);
    got = mh_read_file(out1, &n);
    char *line2 = strchr(got, '\n') + 1;
    assert_int_equal(strncmp(line2, "renamed ", 8), 0);
    assert_int_equal(strncmp(line2 + 16, want_a + 16, strlen(want_a + 16)), 0);
    assert_string_equal(line2 + 16 + strlen(want_a + 16), "\n");
    free(got);
    err_text = mh_read_file(errf, &n);
    assert_int_equal(n, 0); /* -q: nothing on stderr */
    free(err_text);

    /* the llama.cpp mode and full mode differ; full scores ctx-1 per chunk */
    snprintf(args, sizeof args, "-q -c 32 --ppl-mode full --max-chunks 3 --eval 'a=%s/a.jsonl'",
             dir);
    assert_int_equal(run_tool(args, out1, errf), 0);
    got = mh_read_file(out1, &n);
    unsigned long long tokens, chunks, scored;
    assert_int_equal(sscanf(strchr(got, '\n') + 1, "a %llu %llu %llu", &tokens, &chunks, &scored),
                     3);
    assert_int_equal(chunks, 3);
    assert_int_equal(scored, 3 * 31);
    free(got);

    curate_buf_release(&file);
    curate_buf_release(&joined);
    curate_buf_release(&chat_file);
    curate_buf_release(&chat_text);
    free(btext);
}

static void test_bad_domain(void **state)
{
    (void)state;
    need_fixtures();
    char bad[1400], good[1400], out[1400], errf[1400], args[4096];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", mh_scratch_dir());
    snprintf(good, sizeof good, "%s/good.txt", mh_scratch_dir());
    snprintf(out, sizeof out, "%s/bad-out.txt", mh_scratch_dir());
    snprintf(errf, sizeof errf, "%s/bad-err.txt", mh_scratch_dir());
    const char *lines = "{\"text\":\"fine\"}\n{\"text\": broken}\n";
    assert_int_equal(mh_write_file(bad, lines, strlen(lines)), 0);
    size_t len;
    char *t = mh_make_text(5, 3000, &len);
    assert_int_equal(mh_write_file(good, t, len), 0);
    free(t);
    /* a bad record stops its domain with FILE:LINE; the next is measured */
    snprintf(args, sizeof args, "-c 32 --eval 'bad=%s' --eval 'good=%s'", bad, good);
    assert_int_equal(run_tool(args, out, errf), 1);
    size_t n;
    char *e = mh_read_file(errf, &n);
    assert_non_null(strstr(e, "bad.jsonl:2:"));
    free(e);
    char *o = mh_read_file(out, &n);
    assert_null(strstr(o, "\nbad "));
    assert_non_null(strstr(o, "\ngood "));
    free(o);
    /* a record without text or messages */
    const char *nofield = "{\"title\":\"x\"}\n";
    assert_int_equal(mh_write_file(bad, nofield, strlen(nofield)), 0);
    snprintf(args, sizeof args, "-q -c 32 --eval 'bad=%s'", bad);
    assert_int_equal(run_tool(args, out, errf), 1);
    e = mh_read_file(errf, &n);
    assert_non_null(strstr(e, "bad.jsonl:1:"));
    assert_non_null(strstr(e, "text"));
    free(e);
    /* --field picks another field */
    snprintf(args, sizeof args, "-q -c 2 --ppl-mode full --field title --eval 'bad=%s'", bad);
    assert_int_equal(run_tool(args, out, errf), 0);
    /* a missing evaluation file: I/O error */
    snprintf(args, sizeof args, "-q -c 32 --eval 'x=%s/none.jsonl'", mh_scratch_dir());
    assert_int_equal(run_tool(args, out, errf), 3);
    e = mh_read_file(errf, &n);
    assert_non_null(strstr(e, "none.jsonl"));
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_bad_domain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
