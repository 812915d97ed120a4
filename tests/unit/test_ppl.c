/*
 * test_ppl.c - perplexity (curate/ppl.h).
 *
 * Without ../shared: the llama.cpp protocol is recomputed here from the
 * scalar reference forward pass and a plain double log-softmax (chunking,
 * BOS over each chunk's first token, the scored half, the error formula)
 * and compared with curate_ppl_tokens; then the text entry point, the
 * trailing-newline rule, the modes and the error cases.
 *
 * With ../shared: stories260K + tok512.model on wiki.test.raw, ctx 512,
 * first 40 chunks, against llama.cpp's PPL = 130.05 +/- 5.01 (must agree
 * within 0.5%; with the keep-whitespace tokenizer load it agrees to the
 * printed digits).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/model.h"
#include "curate/ppl.h"
#include "curate/testmodel.h"
#include "curate/tokenizer.h"
#include "helper_model.h"

/* ---- a random model with a vocabulary ---------------------------------------- */

static curate_model *vocab_model(uint32_t V, uint32_t ctx, const char *const *pieces,
                                 const char *name)
{
    char **own = NULL;
    if (!pieces) {
        own = calloc(V, sizeof *own);
        for (uint32_t i = 0; i < V; i++) {
            own[i] = malloc(16);
            snprintf(own[i], 16, "t%u", i);
        }
        pieces = (const char *const *)own;
    }
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    cfg.vocab_size = V;
    cfg.ctx_len = ctx;
    cfg.tokens = pieces;
    cfg.scale = 0.5f;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", mh_scratch_dir(), name);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_testmodel_write(&cfg, path, &err), CURATE_OK);
    if (own) {
        for (uint32_t i = 0; i < V; i++)
            free(own[i]);
        free(own);
    }
    curate_model *m = curate_model_load(path, &err);
    assert_non_null(m);
    return m;
}

/* llama-perplexity's loop, written out with the reference forward pass */
typedef struct expect {
    double ppl, err;
    uint64_t count;
} expect;

static expect protocol(const curate_model *m, const int32_t *tokens, size_t n, size_t ctx,
                       size_t max_chunks, int full)
{
    const curate_model_params *p = curate_model_get_params(m);
    size_t V = p->n_vocab, n_chunks = n / ctx;
    if (max_chunks && n_chunks > max_chunks)
        n_chunks = max_chunks;
    size_t first = full ? 0 : ctx / 2;
    int32_t *chunk = malloc(ctx * sizeof *chunk);
    float *logits = malloc(ctx * V * sizeof(float));
    double nll = 0, nll2 = 0;
    uint64_t count = 0;
    curate_error err;
    for (size_t k = 0; k < n_chunks; k++) {
        memcpy(chunk, tokens + k * ctx, ctx * sizeof *chunk);
        chunk[0] = p->bos_id;
        assert_int_equal(curate_model_forward_ref(m, chunk, ctx, 0, logits, &err), CURATE_OK);
        for (size_t j = first; j + 1 < ctx; j++) {
            const float *x = logits + j * V;
            double mx = x[0], s = 0;
            for (size_t i = 1; i < V; i++)
                mx = x[i] > mx ? x[i] : mx;
            for (size_t i = 0; i < V; i++)
                s += exp((double)x[i] - mx);
            double v = -((double)x[chunk[j + 1]] - mx - log(s));
            nll += v;
            nll2 += v * v;
            count++;
        }
    }
    nll /= (double)count;
    nll2 /= (double)count;
    expect e = {exp(nll), sqrt((nll2 - nll * nll) / (double)(count - 1)) * exp(nll), count};
    free(chunk);
    free(logits);
    return e;
}

static void rand_stream(int32_t *t, size_t n, uint32_t V, uint64_t seed)
{
    /* a learnable-ish stream: mostly t[i-1] + 1, sometimes a jump */
    uint64_t s = seed;
    t[0] = 1;
    for (size_t i = 1; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (s >> 60) < 3 ? (int32_t)((s >> 33) % V) : (t[i - 1] + 1) % (int32_t)V;
    }
}

typedef struct chunk_log {
    size_t calls, rows, n_chunks;
    double sum;
} chunk_log;

static void on_chunk(void *user, size_t chunk, size_t n_chunks, const float *logits,
                     size_t n_rows, const int32_t *targets, const double *nll)
{
    (void)logits;
    (void)targets;
    chunk_log *l = user;
    assert_int_equal(chunk, l->calls);
    l->calls++;
    l->rows += n_rows;
    l->n_chunks = n_chunks;
    for (size_t r = 0; r < n_rows; r++)
        l->sum += nll[r];
}

static void test_protocol(void **state)
{
    (void)state;
    curate_model *m = vocab_model(128, 64, NULL, "ppl-v128");
    const size_t n = 300;
    int32_t tokens[300], saved[300];
    rand_stream(tokens, n, 128, 9);
    memcpy(saved, tokens, sizeof tokens);
    curate_error err;
    curate_error_clear(&err);
    curate_model_ctx *c = curate_model_ctx_init(m, 64, 2, &err);
    assert_non_null(c);

    curate_ppl_opts o;
    curate_ppl_opts_init(&o);
    assert_int_equal(o.ctx, 512);
    o.ctx = 32;
    chunk_log clog = {0, 0, 0, 0};
    o.on_chunk = on_chunk;
    o.user = &clog;
    curate_ppl_result r;
    assert_int_equal(curate_ppl_tokens(c, tokens, n, &o, &r, &err), CURATE_OK);
    expect e = protocol(m, tokens, n, 32, 0, 0);
    fprintf(stderr, "llama.cpp mode: %.6f +/- %.6f (%llu tokens); protocol %.6f +/- %.6f\n",
            r.ppl, r.ppl_err, (unsigned long long)r.n_scored, e.ppl, e.err);
    assert_int_equal(r.n_chunks, 9);               /* 300 / 32, the tail dropped */
    assert_int_equal(r.n_scored, 9 * 15);          /* positions 16..30 of each chunk */
    assert_int_equal(r.n_scored, e.count);
    assert_int_equal(r.n_tokens, 300);
    assert_int_equal(r.ctx, 32);
    assert_false(r.ctx_capped);
    assert_true(fabs(r.ppl - e.ppl) <= 1e-5 * e.ppl);
    assert_true(fabs(r.ppl_err - e.err) <= 1e-4 * e.err);
    assert_true(fabs(log(r.ppl) - r.nll_mean) < 1e-12);
    assert_true(r.top1 >= 0 && r.top1 <= 1);
    assert_int_equal(clog.calls, 9);
    assert_int_equal(clog.n_chunks, 9);
    assert_int_equal(clog.rows, r.n_scored);
    assert_true(fabs(clog.sum / (double)clog.rows - r.nll_mean) < 1e-9);
    /* the caller's tokens are not modified by the BOS overwrite */
    assert_memory_equal(tokens, saved, sizeof tokens);

    /* full mode scores every position after the first of each chunk */
    o.mode = CURATE_PPL_FULL;
    o.on_chunk = NULL;
    assert_int_equal(curate_ppl_tokens(c, tokens, n, &o, &r, &err), CURATE_OK);
    e = protocol(m, tokens, n, 32, 0, 1);
    assert_int_equal(r.n_scored, 9 * 31);
    assert_true(fabs(r.ppl - e.ppl) <= 1e-5 * e.ppl);

    /* max_chunks */
    o.mode = CURATE_PPL_LLAMACPP;
    o.max_chunks = 3;
    assert_int_equal(curate_ppl_tokens(c, tokens, n, &o, &r, &err), CURATE_OK);
    e = protocol(m, tokens, n, 32, 3, 0);
    assert_int_equal(r.n_chunks, 3);
    assert_int_equal(r.n_scored, 45);
    assert_true(fabs(r.ppl - e.ppl) <= 1e-5 * e.ppl);
    o.max_chunks = 0;

    /* the same results with one thread (bit for bit) */
    curate_model_ctx *c1 = curate_model_ctx_init(m, 64, 1, &err);
    curate_ppl_result r1;
    assert_int_equal(curate_ppl_tokens(c, tokens, n, &o, &r, &err), CURATE_OK);
    assert_int_equal(curate_ppl_tokens(c1, tokens, n, &o, &r1, &err), CURATE_OK);
    assert_true(r.ppl == r1.ppl && r.ppl_err == r1.ppl_err);
    curate_model_ctx_free(c1);

    /* too few tokens: llama.cpp needs 2 x ctx */
    curate_error_clear(&err);
    assert_int_equal(curate_ppl_tokens(c, tokens, 63, &o, &r, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "63"));
    assert_non_null(strstr(err.message, "64"));
    assert_int_equal(curate_ppl_tokens(c, tokens, 64, &o, &r, &err), CURATE_OK);
    assert_int_equal(r.n_chunks, 2);
    /* full mode needs one chunk */
    o.mode = CURATE_PPL_FULL;
    assert_int_equal(curate_ppl_tokens(c, tokens, 40, &o, &r, &err), CURATE_OK);
    assert_int_equal(r.n_chunks, 1);
    assert_int_equal(curate_ppl_tokens(c, tokens, 31, &o, &r, &err), CURATE_ERR_INVALID);
    o.mode = CURATE_PPL_LLAMACPP;

    /* ctx above the model's context_length is capped */
    o.ctx = 100;
    assert_int_equal(curate_ppl_tokens(c, tokens, n, &o, &r, &err), CURATE_OK);
    assert_int_equal(r.ctx, 64);
    assert_true(r.ctx_capped);
    assert_int_equal(r.n_chunks, 4);
    /* a chunk longer than the context's scratch */
    curate_model_ctx *small = curate_model_ctx_init(m, 16, 1, &err);
    o.ctx = 32;
    assert_int_equal(curate_ppl_tokens(small, tokens, n, &o, &r, &err), CURATE_ERR_RANGE);
    curate_model_ctx_free(small);

    /* without BOS the chunk starts are left alone: a different result */
    o.add_bos = 0;
    curate_ppl_result nob;
    assert_int_equal(curate_ppl_tokens(c, tokens, n, &o, &nob, &err), CURATE_OK);
    o.add_bos = -1;
    assert_int_equal(curate_ppl_tokens(c, tokens, n, &o, &r, &err), CURATE_OK);
    assert_true(nob.ppl != r.ppl);

    curate_model_ctx_free(c);
    curate_model_free(m);
}

static void test_text(void **state)
{
    (void)state;
    char tok_path[1200];
    int rc = mh_train_tokenizer(400, 7, tok_path, sizeof tok_path);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 0);
    curate_error err;
    curate_error_clear(&err);
    curate_tokenizer *tok = curate_tokenizer_load(tok_path, &err);
    assert_non_null(tok);
    const char *pieces[400];
    for (int32_t i = 0; i < 400; i++)
        pieces[i] = curate_tokenizer_piece(tok, i);
    curate_model *m = vocab_model(400, 64, pieces, "ppl-v400");
    curate_model_ctx *c = curate_model_ctx_init(m, 64, 2, &err);

    size_t len;
    char *text = mh_make_text(3, 3000, &len);
    curate_ppl_opts o;
    curate_ppl_opts_init(&o);
    o.ctx = 64;
    curate_ppl_result a, b;
    assert_int_equal(curate_ppl_text(c, tok, text, len, &o, &a, &err), CURATE_OK);
    assert_true(a.n_chunks >= 4);
    /* equals: tokenize with BOS, then the token entry point */
    curate_tokens ids;
    curate_tokens_init(&ids);
    assert_int_equal(curate_tokenizer_encode(tok, text, len, CURATE_TOK_ADD_BOS, &ids, &err),
                     CURATE_OK);
    assert_int_equal(ids.ids[0], 1);
    assert_int_equal(curate_ppl_tokens(c, ids.ids, ids.n, &o, &b, &err), CURATE_OK);
    assert_true(a.ppl == b.ppl);
    assert_int_equal(a.n_tokens, ids.n);

    /* one trailing newline is dropped, as llama-perplexity -f does; two are not */
    char *t2 = malloc(len + 3);
    memcpy(t2, text, len);
    t2[len] = '\n';
    assert_int_equal(curate_ppl_text(c, tok, t2, len + 1, &o, &b, &err), CURATE_OK);
    assert_int_equal(b.n_tokens, a.n_tokens);
    assert_true(a.ppl == b.ppl);
    t2[len + 1] = '\n';
    assert_int_equal(curate_ppl_text(c, tok, t2, len + 2, &o, &b, &err), CURATE_OK);
    assert_true(b.n_tokens > a.n_tokens);
    free(t2);

    /* too short a text: the message gives the count */
    curate_error_clear(&err);
    assert_int_equal(curate_ppl_text(c, tok, "Hello there.", 12, &o, &b, &err),
                     CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "too few"));

    /* a model whose vocabulary does not fit the tokenizer */
    curate_model *m128 = vocab_model(128, 64, NULL, "ppl-v128b");
    curate_model_ctx *c128 = curate_model_ctx_init(m128, 64, 1, &err);
    assert_int_equal(curate_ppl_text(c128, tok, text, len, &o, &b, &err), CURATE_ERR_MODEL);
    assert_non_null(strstr(err.message, "400"));
    curate_model_ctx_free(c128);
    curate_model_free(m128);

    curate_tokens_release(&ids);
    free(text);
    curate_model_ctx_free(c);
    curate_model_free(m);
    curate_tokenizer_free(tok);
}

/* llama.cpp: llama-perplexity -m stories260K.gguf -f wiki.test.raw -c 512
 * --chunks 40 (F32 KV cache, 2 threads): PPL = 130.05 +/- 5.01 */
static void test_stories260k_reference(void **state)
{
    (void)state;
    char *model = mh_shared_path("models/stories260K/stories260K.gguf");
    char *tokp = mh_shared_path("models/stories260K/tok512.model");
    char *wiki = mh_shared_path("data/wiki/wikitext-2-raw/wiki.test.raw");
    if (!model || !tokp || !wiki) {
        free(model);
        free(tokp);
        free(wiki);
        skip();
    }
    curate_error err;
    curate_error_clear(&err);
    curate_model *m = curate_model_load(model, &err);
    assert_non_null(m);
    size_t len;
    char *text = mh_read_file(wiki, &len);
    assert_non_null(text);
    curate_model_ctx *c = curate_model_ctx_init(m, 512, 0, &err);
    curate_ppl_opts o;
    curate_ppl_opts_init(&o);
    o.ctx = 512;
    o.max_chunks = 40;
    curate_ppl_result r;
    /* llama.cpp's tokenizer never squashes whitespace; tok512.model would */
    curate_tokenizer *tok = curate_tokenizer_load_ex(tokp, CURATE_TOK_LOAD_KEEP_WHITESPACE, &err);
    assert_non_null(tok);
    assert_int_equal(curate_ppl_text(c, tok, text, len, &o, &r, &err), CURATE_OK);
    fprintf(stderr, "stories260K wiki.test.raw ctx 512 x 40: PPL = %.4f +/- %.5f "
                    "(llama.cpp 130.05 +/- 5.01), %llu tokens scored, %.0f tokens/s\n",
            r.ppl, r.ppl_err, (unsigned long long)r.n_scored,
            (double)r.n_evaluated / r.seconds_eval);
    assert_int_equal(r.n_chunks, 40);
    assert_int_equal(r.n_scored, 40 * 255);
    assert_true(fabs(r.ppl - 130.05) / 130.05 < 0.005);
    assert_true(fabs(r.ppl - 130.05) < 0.01);  /* what the keep-whitespace load gives */
    assert_true(fabs(r.ppl_err - 5.01) < 0.01);
    curate_tokenizer_free(tok);

    /* SentencePiece's own normalization (whitespace squashed) still lands
     * within the 0.5% the issue allows, but not on llama.cpp's digits */
    tok = curate_tokenizer_load(tokp, &err);
    curate_ppl_result r2;
    assert_int_equal(curate_ppl_text(c, tok, text, len, &o, &r2, &err), CURATE_OK);
    fprintf(stderr, "  with whitespace squashed: PPL = %.4f\n", r2.ppl);
    assert_true(fabs(r2.ppl - 130.05) / 130.05 < 0.005);
    assert_true(r2.n_tokens < r.n_tokens);
    curate_tokenizer_free(tok);

    curate_model_ctx_free(c);
    curate_model_free(m);
    free(text);
    free(model);
    free(tokp);
    free(wiki);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_stories260k_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
