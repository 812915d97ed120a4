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
 *
 * Quantization end to end (the same random model and tokenizer): every
 * method runs and gives finite figures; nothing quantized gives KL 0, top-1
 * 1 and the evaluation-only PPL; W8A8 changes the numbers; --exclude keeps
 * a tensor bit-identical in the exported GGUF, whose PPL (loaded back by
 * the tool) is the fake-quant PPL within 0.1%; --eval-split equals the
 * same records given as separate files; the calibration account adds up;
 * the imatrix file is written in both formats.
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
#include "curate/calibrate.h"
#include "curate/gguf.h"
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

/* ---- quantization end to end ---------------------------------------------------------- */

/* A JSONL file of n records of about len bytes each, domains alternating
 * between the names given. */
static void write_records(const char *path, int n, size_t len, uint64_t seed, const char *dom1,
                          const char *dom2)
{
    curate_buf b;
    curate_buf_init(&b);
    for (int i = 0; i < n; i++) {
        size_t l;
        char *t = mh_make_text(seed + (uint64_t)i, len, &l);
        curate_buf_append_str(&b, "{\"text\":");
        json_escape(&b, t);
        curate_buf_printf(&b, ",\"domain\":\"%s\"}\n", i % 2 ? dom2 : dom1);
        free(t);
    }
    assert_int_equal(mh_write_file(path, b.data, b.len), 0);
    curate_buf_release(&b);
}

/* The number after "key": at or after from in a JSON text (NAN for null). */
static double jnum(const char *json, const char *key, const char *from)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(from ? from : json, pat);
    assert_non_null(p);
    p += strlen(pat);
    if (!strncmp(p, "null", 4))
        return NAN;
    return strtod(p, NULL);
}

/* One comparison line of the table: scored, PPL orig, PPL quant, change,
 * KL mean, KL p99, top-1, verdict. */
typedef struct cmp_line {
    unsigned long long scored;
    double po, pq, d, kl, p99, top1;
    char verdict[32];
} cmp_line;

static void parse_cmp(const char *out_path, const char *name, cmp_line *l)
{
    size_t n;
    char *got = mh_read_file(out_path, &n);
    assert_non_null(got);
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s ", name);
    char *p = strstr(got, pat);
    if (!p)
        fprintf(stderr, "no line for %s in:\n%s", name, got);
    assert_non_null(p);
    char word[32];
    int k = sscanf(p + 1, "%31s %llu %lf %lf %lf%% %lf %lf %lf %31s", word, &l->scored, &l->po,
                   &l->pq, &l->d, &l->kl, &l->p99, &l->top1, l->verdict);
    assert_int_equal(k, 9);
    free(got);
}

static char calib_file[1400], eval_a[1400], eval_b[1400];

static void need_quant_fixtures(void)
{
    need_fixtures();
    if (!calib_file[0]) {
        snprintf(calib_file, sizeof calib_file, "%s/calib.jsonl", mh_scratch_dir());
        snprintf(eval_a, sizeof eval_a, "%s/qa.jsonl", mh_scratch_dir());
        snprintf(eval_b, sizeof eval_b, "%s/qb.jsonl", mh_scratch_dir());
        write_records(calib_file, 40, 400, 1000, "x", "y");
        write_records(eval_a, 10, 600, 2000, "a", "a");
        write_records(eval_b, 10, 600, 3000, "b", "b");
    }
}

static void test_methods(void **state)
{
    (void)state;
    need_quant_fixtures();
    char out[1400], errf[1400], rep[1400], args[8192];
    snprintf(out, sizeof out, "%s/m-out.txt", mh_scratch_dir());
    snprintf(errf, sizeof errf, "%s/m-err.txt", mh_scratch_dir());
    snprintf(rep, sizeof rep, "%s/m-rep.json", mh_scratch_dir());
    /* the original alone, for its PPL */
    snprintf(args, sizeof args, "-q -c 32 --eval 'a=%s'", eval_a);
    assert_int_equal(run_tool(args, out, errf), 0);
    size_t n;
    char *plain = mh_read_file(out, &n);
    double ppl0;
    assert_int_equal(sscanf(strchr(plain, '\n') + 1, "a %*u %*u %*u %lf", &ppl0), 1);
    free(plain);

    const char *methods[] = {"rtn", "mse", "imatrix", "awq", "gptq"};
    double kl_prev = -1;
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args,
                 "-c 32 -j 2 --calib '%s' --method %s --bits 3 --eval 'a=%s' --eval 'b=%s' "
                 "--report '%s'",
                 calib_file, methods[i], eval_a, eval_b, rep);
        int rc = run_tool(args, out, errf);
        if (rc != 0) {
            char *e = mh_read_file(errf, &n);
            fprintf(stderr, "%s: exit %d\n%s", methods[i], rc, e);
            free(e);
        }
        assert_int_equal(rc, 0);
        cmp_line a, b;
        parse_cmp(out, "a", &a);
        parse_cmp(out, "b", &b);
        /* the original's PPL is the evaluation-only one (4 decimals) */
        assert_true(fabs(a.po - ppl0) < 1e-4 * ppl0);
        assert_true(isfinite(a.pq) && a.pq > 0 && isfinite(b.pq));
        assert_true(a.kl > 0 && a.p99 >= a.kl && a.top1 > 0 && a.top1 < 1);
        assert_true(fabs(a.d - 100.0 * (a.pq / a.po - 1.0)) < 0.01);
        assert_true(a.kl != kl_prev);
        kl_prev = a.kl;
        /* the summary lines: signed mean, and the mean size with the verdict */
        char *tab = mh_read_file(out, &n);
        double mean, mean_abs, mkl;
        char verdict[32];
        const char *ml = strstr(tab, "\nmean ");
        assert_non_null(ml);
        assert_int_equal(sscanf(ml + 1, "mean %lf%% %lf", &mean, &mkl), 2);
        const char *mal = strstr(tab, "\nmean |dPPL| ");
        assert_non_null(mal);
        assert_int_equal(sscanf(mal + 13, "%lf%% %31s", &mean_abs, verdict), 2);
        assert_true(fabs(mean - (a.d + b.d) / 2) < 0.011);
        assert_true(fabs(mean_abs - (fabs(a.d) + fabs(b.d)) / 2) < 0.011);
        assert_true(fabs(mkl - (a.kl + b.kl) / 2) < 2e-6);
        assert_string_equal(verdict, mean_abs < 1 ? "excellent" : (mean_abs <= 3 ? "acceptable"
                                                                                  : "needs"));
        free(tab);
        char *r = mh_read_file(rep, &n);
        assert_non_null(r);
        char want[64];
        snprintf(want, sizeof want, "\"method\":\"%s\"", methods[i]);
        assert_non_null(strstr(r, want));
        const char *da = strstr(r, "\"name\":\"a\"");
        assert_non_null(da);
        assert_true(isfinite(jnum(r, "kl_mean", da)) && isfinite(jnum(r, "ppl_quant", da)));
        assert_true(isfinite(jnum(r, "mean_dppl_pct", NULL)));
        /* the provenance: the sha256 of the calibration file */
        char hex[65];
        curate_error err;
        assert_int_equal(curate_sha256_file(calib_file, hex, &err), CURATE_OK);
        assert_non_null(strstr(r, hex));
        assert_non_null(strstr(r, "\"tool\":\"curate-calibrate\""));
        /* the calibration account adds up */
        const char *cal = strstr(r, "\"calibration\":");
        double tk = jnum(r, "tokens", cal), tu = jnum(r, "tokens_used", cal);
        double tt = jnum(r, "tokens_truncated", cal), td = jnum(r, "tokens_dropped", cal);
        assert_true(tk == tu + tt + td && tu > 0);
        free(r);
        char *e = mh_read_file(errf, &n);
        assert_non_null(strstr(e, "calibration: 40 records"));
        assert_non_null(strstr(e, "quantized 14 of 16 matrices"));
        free(e);
    }
}

static void test_noop_and_w8a8(void **state)
{
    (void)state;
    need_quant_fixtures();
    char out[1400], errf[1400], args[8192];
    snprintf(out, sizeof out, "%s/n-out.txt", mh_scratch_dir());
    snprintf(errf, sizeof errf, "%s/n-err.txt", mh_scratch_dir());
    /* nothing quantized: KL exactly 0, every argmax the same, no change */
    snprintf(args, sizeof args, "-q -c 32 --method rtn --bits 8 --exclude '*' --eval 'a=%s'",
             eval_a);
    assert_int_equal(run_tool(args, out, errf), 0);
    cmp_line z;
    parse_cmp(out, "a", &z);
    assert_true(z.kl == 0.0 && z.p99 == 0.0 && z.top1 == 1.0 && z.po == z.pq);
    assert_string_equal(z.verdict, "excellent");

    /* 8-bit weights, then with 8-bit activations (static, minmax; and per
     * token): the activations add error */
    snprintf(args, sizeof args, "-q -c 32 --calib '%s' --method rtn --bits 8 --eval 'a=%s'",
             calib_file, eval_a);
    assert_int_equal(run_tool(args, out, errf), 0);
    cmp_line w8;
    parse_cmp(out, "a", &w8);
    const char *variants[] = {"", "--act-method kl", "--act-method percentile:99.9",
                              "--act-method mse", "--act-scope token"};
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args,
                 "-q -c 32 --calib '%s' --method rtn --bits 8 --act-bits 8 %s --eval 'a=%s'",
                 calib_file, variants[i], eval_a);
        assert_int_equal(run_tool(args, out, errf), 0);
        cmp_line a8;
        parse_cmp(out, "a", &a8);
        assert_true(a8.kl != w8.kl && a8.kl > 0);
        assert_true(a8.po == w8.po);
    }
    /* per-token scales need no calibration set */
    snprintf(args, sizeof args, "-q -c 32 --act-bits 4 --act-scope token --eval 'a=%s'", eval_a);
    assert_int_equal(run_tool(args, out, errf), 0);
    cmp_line t4;
    parse_cmp(out, "a", &t4);
    assert_true(t4.kl > w8.kl);
}

static void test_export_and_exclude(void **state)
{
    (void)state;
    need_quant_fixtures();
    char out[1400], errf[1400], args[8192], gg[1400], rep[1400];
    snprintf(out, sizeof out, "%s/x-out.txt", mh_scratch_dir());
    snprintf(errf, sizeof errf, "%s/x-err.txt", mh_scratch_dir());
    snprintf(gg, sizeof gg, "%s/x-q4.gguf", mh_scratch_dir());
    snprintf(rep, sizeof rep, "%s/x-rep.json", mh_scratch_dir());
    const char *methods[] = {"rtn", "gptq --act-order", "mse --bits 8", "imatrix --asym"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args,
                 "-q -c 32 --calib '%s' --method %s --exclude 'blk.1.ffn_*' --eval 'a=%s' "
                 "--out-gguf '%s' --report '%s'",
                 calib_file, methods[i], eval_a, gg, rep);
        assert_int_equal(run_tool(args, out, errf), 0);
        cmp_line fake;
        parse_cmp(out, "a", &fake);
        /* the file, evaluated by the tool on its own: the fake-quant PPL */
        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "'%s/curate-calibrate' -q -m '%s' -t '%s' -c 32 --eval 'a=%s' > '%s' 2> '%s'",
                 getenv("CURATE_BIN"), gg, tok_path, eval_a, out, errf);
        assert_int_equal(system(cmd), 0);
        size_t n;
        char *got = mh_read_file(out, &n);
        double pf;
        assert_int_equal(sscanf(strchr(got, '\n') + 1, "a %*u %*u %*u %lf", &pf), 1);
        free(got);
        assert_true(fabs(pf / fake.pq - 1.0) < 1e-3);

        /* excluded tensors are the source's bytes; the rest are blocks */
        curate_error err;
        curate_gguf *src = curate_gguf_open(model_file, &err);
        curate_gguf *dst = curate_gguf_open(gg, &err);
        assert_non_null(src);
        assert_non_null(dst);
        const curate_ggml_type want = i == 2 ? CURATE_GGML_TYPE_Q8_0
                                             : (i == 3 ? CURATE_GGML_TYPE_Q4_1
                                                       : CURATE_GGML_TYPE_Q4_0);
        for (size_t k = 0; k < curate_gguf_n_tensors(src); k++) {
            const curate_gguf_tensor *a = curate_gguf_tensor_at(src, k);
            const curate_gguf_tensor *b = curate_gguf_find_tensor(dst, a->name);
            assert_non_null(b);
            int quant = !strncmp(a->name, "blk.", 4) && a->n_dims == 2 &&
                        strncmp(a->name, "blk.1.ffn_", 10) != 0;
            if (quant) {
                assert_int_equal(b->type, want);
            } else {
                assert_int_equal(b->type, a->type);
                assert_int_equal(b->n_bytes, a->n_bytes);
                assert_memory_equal(b->data, a->data, (size_t)a->n_bytes);
            }
        }
        const char *m;
        size_t ml;
        assert_int_equal(curate_gguf_require_str(dst, "curate.calib.sha256", &m, &ml, &err),
                         CURATE_OK);
        assert_int_equal(ml, 64);
        curate_gguf_close(src);
        curate_gguf_close(dst);
        char *r = mh_read_file(rep, &n);
        assert_non_null(strstr(r, "\"excluded_by\":\"blk.1.ffn_*\""));
        assert_true(jnum(r, "packed", strstr(r, "\"exports\"")) == 11);
        free(r);
    }
    /* settings without a ggml block type are refused before any work */
    snprintf(args, sizeof args, "-c 32 --method rtn --bits 3 --eval 'a=%s' --out-gguf '%s'",
             eval_a, gg);
    assert_int_equal(run_tool(args, out, errf), 2);
    size_t n;
    char *e = mh_read_file(errf, &n);
    assert_non_null(strstr(e, "q4_0"));
    free(e);
    snprintf(args, sizeof args,
             "-c 32 --calib '%s' --method awq --eval 'a=%s' --out-gguf '%s'", calib_file, eval_a,
             gg);
    assert_int_equal(run_tool(args, out, errf), 2);
}

static void test_split_pack_imatrix(void **state)
{
    (void)state;
    need_quant_fixtures();
    char out[1400], out2[1400], errf[1400], args[8192], both[1400], im[1400], rep[1400];
    snprintf(out, sizeof out, "%s/s-out.txt", mh_scratch_dir());
    snprintf(out2, sizeof out2, "%s/s-out2.txt", mh_scratch_dir());
    snprintf(errf, sizeof errf, "%s/s-err.txt", mh_scratch_dir());
    snprintf(both, sizeof both, "%s/both.jsonl", mh_scratch_dir());
    snprintf(rep, sizeof rep, "%s/s-rep.json", mh_scratch_dir());
    /* b's records then a's, interleaved line by line */
    size_t la, lb;
    char *ta = mh_read_file(eval_a, &la), *tb = mh_read_file(eval_b, &lb);
    curate_buf m;
    curate_buf_init(&m);
    char *pa = ta, *pb = tb;
    while (*pa || *pb) {
        char *ea = strchr(pb, '\n');
        if (ea) {
            curate_buf_append(&m, pb, (size_t)(ea - pb) + 1);
            pb = ea + 1;
        }
        char *eb = strchr(pa, '\n');
        if (eb) {
            curate_buf_append(&m, pa, (size_t)(eb - pa) + 1);
            pa = eb + 1;
        }
        if (!ea && !eb)
            break;
    }
    assert_int_equal(mh_write_file(both, m.data, m.len), 0);
    curate_buf_release(&m);
    free(ta);
    free(tb);
    snprintf(args, sizeof args,
             "-q -c 32 --calib '%s' --method gptq --eval-split '%s'", calib_file, both);
    assert_int_equal(run_tool(args, out, errf), 0);
    snprintf(args, sizeof args,
             "-q -c 32 --calib '%s' --method gptq --eval 'a=%s' --eval 'b=%s'", calib_file,
             eval_a, eval_b);
    assert_int_equal(run_tool(args, out2, errf), 0);
    size_t n1, n2;
    char *o1 = mh_read_file(out, &n1), *o2 = mh_read_file(out2, &n2);
    assert_string_equal(o1, o2);
    free(o1);
    free(o2);

    /* --pack sample with a subset: the account in the report adds up, and
     * long records are truncated at the context */
    snprintf(im, sizeof im, "%s/s.imatrix", mh_scratch_dir());
    snprintf(args, sizeof args,
             "-c 32 --calib '%s' --pack sample --calib-records 25 --seed 3 --out-imatrix '%s' "
             "--report '%s'",
             calib_file, im, rep);
    assert_int_equal(run_tool(args, out, errf), 0);
    size_t n;
    char *r = mh_read_file(rep, &n);
    const char *cal = strstr(r, "\"calibration\":");
    assert_true(jnum(r, "records_picked", cal) == 25 && jnum(r, "records", cal) == 40);
    assert_true(jnum(r, "sequences", cal) == 25 && jnum(r, "records_truncated", cal) == 25);
    assert_true(jnum(r, "tokens", cal) == jnum(r, "tokens_used", cal) +
                                               jnum(r, "tokens_truncated", cal) +
                                               jnum(r, "tokens_dropped", cal));
    assert_true(jnum(r, "tokens_used", cal) == 25 * 31);
    assert_non_null(strstr(r, "\"format\":\"dat\""));
    free(r);
    /* the legacy imatrix: entry count first, 7 matrices per block */
    char *dat = mh_read_file(im, &n);
    assert_non_null(dat);
    int32_t entries;
    memcpy(&entries, dat, 4);
    assert_int_equal(entries, 14);
    free(dat);
    /* the GGUF one, by its extension */
    snprintf(im, sizeof im, "%s/s.imatrix.gguf", mh_scratch_dir());
    snprintf(args, sizeof args, "-q -c 32 --calib '%s' --out-imatrix '%s'", calib_file, im);
    assert_int_equal(run_tool(args, out, errf), 0);
    curate_error err;
    curate_gguf *g = curate_gguf_open(im, &err);
    assert_non_null(g);
    const char *t;
    size_t tl;
    assert_int_equal(curate_gguf_require_str(g, "general.type", &t, &tl, &err), CURATE_OK);
    assert_int_equal(tl, 7);
    assert_memory_equal(t, "imatrix", 7);
    assert_int_equal(curate_gguf_n_tensors(g), 28);
    curate_gguf_close(g);

    /* a bad calibration record stops the run, naming file and line */
    char bad[1400];
    snprintf(bad, sizeof bad, "%s/badcal.jsonl", mh_scratch_dir());
    const char *lines = "{\"text\":\"fine words here\"}\n{\"txt\":\"no text\"}\n";
    assert_int_equal(mh_write_file(bad, lines, strlen(lines)), 0);
    snprintf(args, sizeof args, "-c 32 --calib '%s' --method gptq --eval 'a=%s'", bad, eval_a);
    assert_int_equal(run_tool(args, out, errf), 1);
    char *e = mh_read_file(errf, &n);
    assert_non_null(strstr(e, "badcal.jsonl:2:"));
    free(e);
    /* too small for one chunk */
    lines = "{\"text\":\"a few words\"}\n";
    assert_int_equal(mh_write_file(bad, lines, strlen(lines)), 0);
    assert_int_equal(run_tool(args, out, errf), 1);
    e = mh_read_file(errf, &n);
    assert_non_null(strstr(e, "too small"));
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_bad_domain),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_noop_and_w8a8),
        cmocka_unit_test(test_export_and_exclude),
        cmocka_unit_test(test_split_pack_imatrix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
