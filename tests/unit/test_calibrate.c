/*
 * test_calibrate.c - the model stage's orchestration (curate/calibrate.h)
 * on random test models (curate/testmodel.h), no ../shared needed:
 *
 * - SHA-256 on FIPS 180 vectors and against the sha256sum program;
 * - packing: concat chunks are the stream cut as llama.cpp's imatrix cuts
 *   it, and the account equals curate_pack_simulate()'s replay of the same
 *   loader (an independent implementation); sample packing by hand;
 * - evaluation chunks and compare with no quantized model give exactly
 *   curate_ppl_tokens()'s numbers;
 * - the input hook: the fast pass and the scalar reference agree with an
 *   activation-rounding hook installed (both scopes), and the hook changes
 *   the logits;
 * - collect: the observers hold what a plain observer fed by the model's
 *   own callback holds;
 * - quantize: each tensor equals curate_quant_matrix() on it; excluded
 *   and unselected tensors stay bit-identical; include patterns; the
 *   embedding fallback; thread count does not change a bit;
 * - compare: identical models give KL 0 and top-1 1; per-row KL against a
 *   naive double log-softmax reference; p99 by brute force; 1 vs 2 threads.
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

#include "curate/calibrate.h"
#include "curate/packing.h"
#include "curate/ppl.h"
#include "curate/testmodel.h"
#include "helper_model.h"

#define OK(expr)                                                                  \
    do {                                                                          \
        curate_status st_ = (expr);                                               \
        if (st_ != CURATE_OK) {                                                   \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr,   \
                    curate_strerror(st_), err.message);                           \
            fail();                                                               \
        }                                                                         \
    } while (0)

static char model_path[1024], tied_path[1024];

/* A random llama with ffn 96 (3 groups of 32) and a second, tied one whose
 * ffn (40) ends in a short group. */
static int setup(void **state)
{
    (void)state;
    curate_error err;
    curate_testmodel_config c;
    curate_testmodel_config_init(&c);
    c.seed = 5;
    c.scale = 0.3f;
    /* a vocabulary, so the model names its BOS (1) as GGUFs from llama.cpp do */
    static char names[128][8];
    static const char *tokens[128];
    for (int i = 0; i < 128; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        tokens[i] = names[i];
    }
    c.tokens = tokens;
    snprintf(model_path, sizeof model_path, "%s/calib-model.gguf", mh_scratch_dir());
    if (curate_testmodel_write(&c, model_path, &err) != CURATE_OK)
        return -1;
    curate_testmodel_config_init(&c);
    c.seed = 9;
    c.dim = 32;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    c.ffn_dim = 40;
    c.tied_output = 1;
    snprintf(tied_path, sizeof tied_path, "%s/calib-tied.gguf", mh_scratch_dir());
    if (curate_testmodel_write(&c, tied_path, &err) != CURATE_OK)
        return -1;
    return 0;
}

static curate_model *load(const char *path)
{
    curate_error err;
    curate_model *m = curate_model_load(path, &err);
    if (!m)
        fprintf(stderr, "%s: %s\n", path, err.message);
    assert_non_null(m);
    return m;
}

/* n pseudo-random tokens below V */
static int32_t *rand_tokens(size_t n, uint32_t V, uint64_t seed)
{
    int32_t *t = malloc(n * sizeof *t);
    assert_non_null(t);
    curate_rng r;
    curate_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        t[i] = (int32_t)curate_rng_below(&r, V);
    return t;
}

/* ---- SHA-256 ---------------------------------------------------------------------- */

static void hex_of(const void *data, size_t len, char out[65])
{
    curate_sha256 s;
    uint8_t d[32];
    curate_sha256_init(&s);
    curate_sha256_update(&s, data, len);
    curate_sha256_final(&s, d);
    curate_sha256_hex(d, out);
}

static void test_sha256(void **state)
{
    (void)state;
    char h[65];
    /* FIPS 180-4 example messages */
    hex_of("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a million 'a', fed in uneven pieces (buffering across blocks) */
    curate_sha256 s;
    curate_sha256_init(&s);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    for (size_t k = 1; left; k = k % 997 + 1) {
        size_t n = k < left ? k : left;
        curate_sha256_update(&s, a, n);
        left -= n;
    }
    uint8_t d[32];
    curate_sha256_final(&s, d);
    assert_string_equal(curate_sha256_hex(d, h),
                        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* a file, against sha256sum when it is installed */
    char path[1200], cmd[2600];
    snprintf(path, sizeof path, "%s/sha.txt", mh_scratch_dir());
    size_t len;
    char *text = mh_make_text(3, 100000, &len);
    assert_int_equal(mh_write_file(path, text, len), 0);
    curate_error err;
    char fh[65];
    OK(curate_sha256_file(path, fh, &err));
    hex_of(text, len, h);
    assert_string_equal(fh, h);
    free(text);
    snprintf(cmd, sizeof cmd, "sha256sum '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    char line[256] = "";
    if (p && fgets(line, sizeof line, p) && strlen(line) > 64) {
        line[64] = 0;
        assert_string_equal(line, fh);
    } else {
        fprintf(stderr, "note: sha256sum not available, file hash checked in-process only\n");
    }
    if (p)
        pclose(p);
    snprintf(path, sizeof path, "%s/none.txt", mh_scratch_dir());
    assert_int_equal(curate_sha256_file(path, fh, &err), CURATE_ERR_IO);
}

/* ---- packing ---------------------------------------------------------------------- */

/* records with the given lengths; token values encode (record, position) */
static void make_records(curate_seqs *rec, const size_t *lens, size_t n)
{
    curate_error err;
    curate_seqs_init(rec);
    int32_t buf[4096];
    for (size_t r = 0; r < n; r++) {
        for (size_t k = 0; k < lens[r]; k++)
            buf[k] = (int32_t)(1000 * (r + 1) + k);
        if (lens[r])
            OK(curate_seqs_add(rec, buf, lens[r], lens[r] - 1, r, &err));
    }
}

static void test_pack_concat(void **state)
{
    (void)state;
    curate_error err;
    curate_rng rng;
    curate_rng_seed(&rng, 17);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + (size_t)curate_rng_below(&rng, 30);
        size_t lens[30];
        uint64_t lens64[30];
        for (size_t i = 0; i < n; i++) {
            lens[i] = 1 + (size_t)curate_rng_below(&rng, trial % 3 ? 40 : 200);
            lens64[i] = lens[i];
        }
        size_t ctx = 2 + (size_t)curate_rng_below(&rng, 60);
        int32_t bos = trial % 4 == 3 ? -1 : 1;
        curate_seqs rec, out;
        make_records(&rec, lens, n);
        curate_seqs_init(&out);
        curate_calib_pack_stats st;
        uint64_t total = (bos >= 0);
        for (size_t i = 0; i < n; i++)
            total += lens[i];
        curate_status s = curate_calib_pack_records(&rec, 0, NULL, 0, CURATE_CALIB_PACK_CONCAT,
                                                    ctx, bos, &out, &st, &err);
        if (total < ctx) {
            assert_int_equal(s, CURATE_ERR_INVALID);
            assert_non_null(strstr(err.message, "too small"));
            curate_seqs_release(&rec);
            curate_seqs_release(&out);
            continue;
        }
        OK(s);
        /* the chunks are the stream cut in ctx pieces, BOS first */
        int32_t *stream = malloc(total * sizeof *stream);
        size_t pos = 0;
        if (bos >= 0)
            stream[pos++] = bos;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < lens[i]; k++)
                stream[pos++] = (int32_t)(1000 * (i + 1) + k);
        assert_int_equal(out.n, total / ctx);
        for (size_t c = 0; c < out.n; c++) {
            assert_int_equal(curate_seqs_len(&out, c), ctx);
            assert_int_equal(out.first[c], ctx - 1);
            const int32_t *ch = out.ids + out.start[c];
            if (bos >= 0)
                assert_int_equal(ch[0], bos);
            else
                assert_int_equal(ch[0], stream[c * ctx]);
            assert_memory_equal(ch + 1, stream + c * ctx + 1, (ctx - 1) * sizeof *ch);
        }
        free(stream);
        /* invariants */
        assert_int_equal(st.tokens, st.tokens_used + st.tokens_truncated + st.tokens_dropped);
        assert_int_equal(st.records, st.records_used + st.records_dropped);
        assert_true(st.records_truncated <= st.records_used);
        assert_int_equal(st.model_tokens, out.n * ctx);
        /* the same loader replayed by curate/packing.h (it requires 2 x ctx) */
        if (total >= 2 * ctx) {
            curate_pack_opts po;
            curate_pack_opts_default(&po);
            po.ctx = ctx;
            po.bos = bos >= 0;
            curate_pack_result pr;
            assert_int_equal(curate_pack_simulate(CURATE_PACK_LLAMA_IMATRIX, lens64, n, &po, &pr),
                             CURATE_OK);
            assert_false(pr.fails);
            assert_int_equal(pr.units, out.n);
            assert_int_equal(pr.samples_used, st.records_used);
            assert_int_equal(pr.samples_dropped, st.records_dropped);
            assert_int_equal(pr.samples_truncated, st.records_truncated);
            assert_int_equal(pr.tokens_kept, st.tokens_used);
            assert_int_equal(pr.tokens_truncated, st.tokens_truncated);
            assert_int_equal(pr.tokens_dropped, st.tokens_dropped);
        }
        curate_seqs_release(&rec);
        curate_seqs_release(&out);
    }
}

static void test_pack_sample(void **state)
{
    (void)state;
    curate_error err;
    size_t lens[5] = {3, 10, 7, 1, 12};
    curate_seqs rec, out;
    make_records(&rec, lens, 5);
    curate_seqs_init(&out);
    curate_calib_pack_stats st;
    /* records 4, 1, 2 (picked), ctx 8: BOS + at most 7 tokens; 2 empty ones */
    size_t pick[3] = {4, 1, 2};
    OK(curate_calib_pack_records(&rec, 2, pick, 3, CURATE_CALIB_PACK_SAMPLE, 8, 1, &out, &st,
                                 &err));
    assert_int_equal(out.n, 3);
    assert_int_equal(st.records, 5);
    assert_int_equal(st.records_empty, 2);
    assert_int_equal(st.records_dropped, 2);
    assert_int_equal(st.records_used, 3);
    assert_int_equal(st.records_truncated, 2); /* 12 and 10 tokens */
    assert_int_equal(st.tokens, 29);
    assert_int_equal(st.tokens_used, 7 + 7 + 7);
    assert_int_equal(st.tokens_truncated, 5 + 3);
    assert_int_equal(st.tokens_dropped, 0);
    assert_int_equal(st.bos, 3);
    assert_int_equal(st.model_tokens, 24);
    size_t want_len[3] = {8, 8, 8};
    size_t want_rec[3] = {4, 1, 2};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(curate_seqs_len(&out, i), want_len[i]);
        assert_int_equal(out.tag[i], want_rec[i]);
        const int32_t *s = out.ids + out.start[i];
        assert_int_equal(s[0], 1);
        for (size_t k = 1; k < want_len[i]; k++)
            assert_int_equal(s[k], (int32_t)(1000 * (want_rec[i] + 1) + k - 1));
    }
    /* without BOS, ctx tokens of the record itself */
    curate_seqs_reset(&out);
    OK(curate_calib_pack_records(&rec, 0, NULL, 0, CURATE_CALIB_PACK_SAMPLE, 8, -1, &out, &st,
                                 &err));
    assert_int_equal(out.n, 5);
    assert_int_equal(curate_seqs_len(&out, 0), 3);
    assert_int_equal(curate_seqs_len(&out, 4), 8);
    assert_int_equal(st.tokens_used, 3 + 8 + 7 + 1 + 8);
    /* bad arguments */
    size_t bad = 9;
    assert_int_equal(curate_calib_pack_records(&rec, 0, &bad, 1, CURATE_CALIB_PACK_SAMPLE, 8, 1,
                                               &out, &st, &err),
                     CURATE_ERR_INVALID);
    assert_int_equal(curate_calib_pack_records(&rec, 0, NULL, 0, CURATE_CALIB_PACK_SAMPLE, 1, 1,
                                               &out, &st, &err),
                     CURATE_ERR_INVALID);
    curate_calib_pack p;
    OK(curate_calib_pack_parse("sample", &p, &err));
    assert_int_equal(p, CURATE_CALIB_PACK_SAMPLE);
    assert_string_equal(curate_calib_pack_name(p), "sample");
    assert_int_equal(curate_calib_pack_parse("zip", &p, &err), CURATE_ERR_INVALID);
    curate_seqs_release(&rec);
    curate_seqs_release(&out);
}

static void test_pick(void **state)
{
    (void)state;
    curate_rng a, b;
    size_t out1[50], out2[50];
    unsigned hits[100] = {0};
    for (int t = 0; t < 400; t++) {
        curate_rng_seed(&a, (uint64_t)t);
        curate_calib_pick(&a, 100, 50, out1);
        curate_rng_seed(&b, (uint64_t)t);
        curate_calib_pick(&b, 100, 50, out2);
        assert_memory_equal(out1, out2, sizeof out1); /* seeded: reproducible */
        for (int i = 0; i < 50; i++) {
            assert_true(out1[i] < 100);
            if (i)
                assert_true(out1[i] > out1[i - 1]); /* sorted, distinct */
            hits[out1[i]]++;
        }
    }
    /* each index is picked with probability 1/2: 200 of 400, sd 10 */
    for (int i = 0; i < 100; i++)
        assert_true(hits[i] > 140 && hits[i] < 260);
    curate_rng_seed(&a, 1);
    curate_calib_pick(&a, 3, 10, out1); /* k > n: all */
    assert_int_equal(out1[0], 0);
    assert_int_equal(out1[2], 2);
}

/* ---- evaluation and compare without quantization ---------------------------------- */

static void test_eval_matches_ppl(void **state)
{
    (void)state;
    curate_error err;
    curate_model *m = load(model_path);
    const curate_model_params *p = curate_model_get_params(m);
    size_t n = 700;
    int32_t *tok = rand_tokens(n, p->n_vocab, 3);
    tok[0] = 1;
    for (int mode = 0; mode < 2; mode++) {
        size_t ctx = 64;
        curate_model_ctx *c = curate_model_ctx_init(m, ctx, 2, &err);
        assert_non_null(c);
        curate_ppl_opts o;
        curate_ppl_opts_init(&o);
        o.ctx = ctx;
        o.mode = mode ? CURATE_PPL_FULL : CURATE_PPL_LLAMACPP;
        o.max_chunks = 7;
        curate_ppl_result pr;
        OK(curate_ppl_tokens(c, tok, n, &o, &pr, &err));
        curate_seqs s;
        curate_seqs_init(&s);
        OK(curate_calib_eval_seqs(tok, n, ctx, o.mode, p->bos_id, 7, &s, &err));
        assert_int_equal(s.n, 7);
        curate_calib_cmp r;
        OK(curate_calib_compare(c, NULL, 0, &s, &r, NULL, NULL, &err));
        assert_int_equal(r.n_scored, pr.n_scored);
        assert_true(r.ppl_orig == pr.ppl); /* bit for bit */
        assert_true(r.ppl_orig_err == pr.ppl_err);
        assert_true(r.top1_orig == pr.top1);
        assert_true(isnan(r.ppl_quant) && isnan(r.kl_mean));
        curate_seqs_release(&s);
        curate_model_ctx_free(c);
    }
    /* too short: the words of curate/ppl.h */
    curate_seqs s;
    curate_seqs_init(&s);
    assert_int_equal(curate_calib_eval_seqs(tok, 100, 64, CURATE_PPL_LLAMACPP, 1, 0, &s, &err),
                     CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "100 tokens are too few: perplexity with a context of "
                                        "64 needs at least 128"));
    curate_seqs_release(&s);
    free(tok);
    curate_model_free(m);
}

/* ---- the input hook ------------------------------------------------------------------- */

typedef struct count_hook {
    unsigned calls[5];
    size_t rows[5];
} count_hook;

static void counting(void *user, uint32_t layer, curate_linear_input which, float *x,
                     size_t n_rows, size_t n_cols)
{
    (void)layer;
    (void)x;
    (void)n_cols;
    count_hook *h = user;
    h->calls[which]++;
    h->rows[which] += n_rows;
}

static void test_hook_fast_vs_ref(void **state)
{
    (void)state;
    curate_error err;
    curate_model *m = load(model_path);
    const curate_model_params *p = curate_model_get_params(m);
    const size_t n = 40, first = 10, V = p->n_vocab;
    int32_t *tok = rand_tokens(n, p->n_vocab, 8);
    float *lf = malloc((n - first) * V * sizeof *lf), *lr = malloc((n - first) * V * sizeof *lr);
    float *l0 = malloc((n - first) * V * sizeof *l0);
    curate_model_ctx *c = curate_model_ctx_init(m, n, 2, &err);
    assert_non_null(c);
    OK(curate_model_ctx_forward(c, tok, n, first, l0, &err));

    /* calls: per layer one per input, output once; ref: one per token */
    count_hook hf, hr;
    memset(&hf, 0, sizeof hf);
    memset(&hr, 0, sizeof hr);
    curate_model_ctx_set_input_hook(c, counting, &hf);
    OK(curate_model_ctx_forward(c, tok, n, first, lf, &err));
    OK(curate_model_forward_ref_hooked(m, tok, n, first, lr, counting, &hr, &err));
    for (int w = 0; w < 4; w++) {
        assert_int_equal(hf.calls[w], p->n_layer);
        assert_int_equal(hf.rows[w], p->n_layer * n);
        assert_int_equal(hr.calls[w], p->n_layer * n);
    }
    assert_int_equal(hf.calls[4], 1);
    assert_int_equal(hf.rows[4], n - first);
    assert_int_equal(hr.calls[4], n - first);
    /* a hook that changes nothing changes nothing */
    assert_memory_equal(lf, l0, (n - first) * V * sizeof *lf);

    /* activation rounding at 4 bits (coarse, so the change is visible):
     * static (from a calibration on the same model) and per token */
    curate_calib_obs *obs = curate_calib_obs_new(m, CURATE_OBSERVE_HIST, 1, 0, &err);
    assert_non_null(obs);
    curate_seqs cs;
    curate_seqs_init(&cs);
    int32_t *ctok = rand_tokens(n, p->n_vocab, 99);
    OK(curate_seqs_add(&cs, ctok, n, n - 1, 0, &err));
    OK(curate_calib_collect(c, &cs, obs, NULL, NULL, &err));
    curate_calib_select all = {(const char *const[]){"*"}, 1, NULL, 0};
    for (int scope = 0; scope < 2; scope++) {
        curate_act_config ac;
        curate_act_config_default(&ac);
        ac.bits = 4;
        ac.scope = scope ? CURATE_ACT_TOKEN : CURATE_ACT_TENSOR;
        curate_calib_act *a = curate_calib_act_new(m, obs, &ac, &all, &err);
        assert_non_null(a);
        curate_calib_act_attach(a, c);
        OK(curate_model_ctx_forward(c, tok, n, first, lf, &err));
        OK(curate_model_forward_ref_hooked(m, tok, n, first, lr, curate_calib_act_hook, a, &err));
        double maxd = 0, maxv = 0, change = 0;
        for (size_t i = 0; i < (n - first) * V; i++) {
            double d = fabs((double)lf[i] - lr[i]);
            maxd = d > maxd ? d : maxd;
            maxv = fabs(lr[i]) > maxv ? fabs(lr[i]) : maxv;
            double dc = fabs((double)lf[i] - l0[i]);
            change = dc > change ? dc : change;
        }
        /* measured: 1.4e-6 of the largest logit (float rounding).  A value
         * that float rounding pushes across a rounding boundary would move
         * by a step; the tolerance leaves room for that, and is still far
         * below what the rounding itself changes (next check) */
        assert_true(maxd <= 1e-3 * maxv);
        assert_true(change > 1e-3 * maxv); /* 4-bit activations move the logits */
        curate_calib_act_info ai = curate_calib_act_get(a, 0, CURATE_LIN_FFN_DOWN);
        assert_int_equal(ai.enabled, 1);
        assert_true(ai.values > 0);
        if (!scope) {
            /* static scales are the histogram's */
            float sc;
            OK(curate_act_scale_from_hist(
                curate_observer_hist(curate_calib_obs_get(obs, 0, CURATE_LIN_FFN_DOWN)), &ac, &sc,
                &err));
            assert_true(ai.scale == sc && sc > 0);
        }
        curate_calib_act_attach(NULL, c);
        curate_calib_act_free(a);
    }
    /* the default selection leaves the output's input alone */
    curate_act_config ac;
    curate_act_config_default(&ac);
    curate_calib_act *a = curate_calib_act_new(m, obs, &ac, NULL, &err);
    assert_non_null(a);
    assert_int_equal(curate_calib_act_get(a, 0, CURATE_LIN_ATTN_QKV).enabled, 1);
    assert_int_equal(curate_calib_act_get(a, p->n_layer, CURATE_LIN_OUTPUT).enabled, 0);
    curate_calib_act_free(a);
    /* static scales without histograms: refused */
    curate_calib_obs *bare = curate_calib_obs_new(m, CURATE_OBSERVE_SUMSQ, 0, 0, &err);
    assert_null(curate_calib_act_new(m, bare, &ac, NULL, &err));
    assert_non_null(strstr(err.message, "histograms"));
    curate_calib_obs_free(bare);

    curate_calib_obs_free(obs);
    curate_seqs_release(&cs);
    curate_model_ctx_free(c);
    free(ctok);
    free(tok);
    free(lf);
    free(lr);
    free(l0);
    curate_model_free(m);
}

/* ---- collect ---------------------------------------------------------------------------- */

typedef struct plain_obs {
    curate_observer *o[4][5];
} plain_obs;

static void plain_cb(void *user, uint32_t layer, curate_linear_input which, const float *x,
                     size_t n_rows, size_t n_cols)
{
    plain_obs *po = user;
    curate_error err;
    if (!po->o[layer < 4 ? layer : 3][which]) {
        curate_observer_config oc = {n_cols, CURATE_OBSERVE_SUMSQ | CURATE_OBSERVE_HESSIAN, 0, 0};
        po->o[layer < 4 ? layer : 3][which] = curate_observer_init(&oc, &err);
    }
    curate_observer_add(po->o[layer < 4 ? layer : 3][which], x, n_rows, &err);
}

static void test_collect(void **state)
{
    (void)state;
    curate_error err;
    curate_model *m = load(model_path);
    const curate_model_params *p = curate_model_get_params(m);
    assert_true(p->n_layer <= 3);
    curate_seqs s;
    curate_seqs_init(&s);
    int32_t *t = rand_tokens(300, p->n_vocab, 4);
    OK(curate_seqs_add(&s, t, 64, 63, 0, &err));
    OK(curate_seqs_add(&s, t + 64, 17, 16, 1, &err));
    OK(curate_seqs_add(&s, t + 100, 50, 49, 2, &err));
    curate_model_ctx *c = curate_model_ctx_init(m, 64, 2, &err);
    assert_non_null(c);
    curate_calib_obs *o = curate_calib_obs_new(
        m, CURATE_OBSERVE_SUMSQ | CURATE_OBSERVE_HESSIAN, 1, 0, &err);
    assert_non_null(o);
    OK(curate_calib_collect(c, &s, o, NULL, NULL, &err));
    assert_int_equal(curate_calib_obs_sequences(o), 3);
    assert_int_equal(curate_calib_obs_tokens(o), 131);

    /* the same rows through the model's own observer slot */
    plain_obs po;
    memset(&po, 0, sizeof po);
    float *logits = malloc(64 * p->n_vocab * sizeof *logits);
    curate_model_ctx_set_observer(c, plain_cb, &po);
    OK(curate_model_ctx_forward(c, t, 64, 0, logits, &err));
    OK(curate_model_ctx_forward(c, t + 64, 17, 0, logits, &err));
    OK(curate_model_ctx_forward(c, t + 100, 50, 0, logits, &err));
    curate_model_ctx_set_observer(c, NULL, NULL);
    for (uint32_t l = 0; l <= p->n_layer; l++)
        for (int w = 0; w < 5; w++) {
            if ((l == p->n_layer) != (w == CURATE_LIN_OUTPUT))
                continue;
            const curate_observer *a = curate_calib_obs_get(o, l, (curate_linear_input)w);
            const curate_observer *b = po.o[l < 4 ? l : 3][w];
            assert_non_null(a);
            assert_non_null(b);
            assert_int_equal(curate_observer_rows(a), 131);
            assert_int_equal(curate_observer_rows(b), 131);
            size_t cols = curate_observer_cols(a);
            assert_memory_equal(curate_observer_sumsq(a), curate_observer_sumsq(b),
                                cols * sizeof(double));
            /* staged adds on the pool (2 threads) give the direct adds' Hessian */
            float *ha = malloc(cols * cols * sizeof *ha), *hb = malloc(cols * cols * sizeof *hb);
            OK(curate_observer_hessian(a, ha, &err));
            OK(curate_observer_hessian(b, hb, &err));
            assert_memory_equal(ha, hb, cols * cols * sizeof *ha);
            free(ha);
            free(hb);
        }
    /* the importance matrix of the observers: one entry per blk.* weight */
    curate_imatrix *im = curate_imatrix_new(&err);
    OK(curate_calib_obs_imatrix(o, im, &err));
    assert_int_equal(curate_imatrix_n_entries(im), 7 * p->n_layer);
    curate_imatrix_free(im);
    /* without the output's observer, only one logits row per sequence */
    curate_calib_obs *o2 = curate_calib_obs_new(m, CURATE_OBSERVE_SUMSQ, 0, 0, &err);
    OK(curate_calib_collect(c, &s, o2, NULL, NULL, &err));
    assert_null(curate_calib_obs_get(o2, p->n_layer, CURATE_LIN_OUTPUT));
    assert_memory_equal(curate_observer_sumsq(curate_calib_obs_get(o2, 1, CURATE_LIN_FFN_DOWN)),
                        curate_observer_sumsq(curate_calib_obs_get(o, 1, CURATE_LIN_FFN_DOWN)),
                        p->n_ff * sizeof(double));
    /* a sequence longer than the context */
    curate_seqs big;
    curate_seqs_init(&big);
    OK(curate_seqs_add(&big, t, 65, 64, 0, &err));
    assert_int_equal(curate_calib_collect(c, &big, o2, NULL, NULL, &err), CURATE_ERR_RANGE);
    curate_seqs_release(&big);

    for (int l = 0; l < 4; l++)
        for (int w = 0; w < 5; w++)
            curate_observer_free(po.o[l][w]);
    curate_calib_obs_free(o);
    curate_calib_obs_free(o2);
    curate_model_ctx_free(c);
    curate_seqs_release(&s);
    free(t);
    free(logits);
    curate_model_free(m);
}

/* ---- quantize ------------------------------------------------------------------------------ */

static curate_calib_obs *calibrate(curate_model *m, unsigned what, int with_output)
{
    curate_error err;
    const curate_model_params *p = curate_model_get_params(m);
    curate_calib_obs *o = curate_calib_obs_new(m, what, with_output, 0, &err);
    assert_non_null(o);
    curate_model_ctx *c = curate_model_ctx_init(m, 64, 1, &err);
    assert_non_null(c);
    curate_seqs s;
    curate_seqs_init(&s);
    int32_t *t = rand_tokens(640, p->n_vocab, 12);
    for (int i = 0; i < 10; i++)
        OK(curate_seqs_add(&s, t + 64 * i, 64, 63, (uint64_t)i, &err));
    OK(curate_calib_collect(c, &s, o, NULL, NULL, &err));
    curate_seqs_release(&s);
    curate_model_ctx_free(c);
    free(t);
    return o;
}

static void test_quantize(void **state)
{
    (void)state;
    curate_error err;
    curate_model *m = load(model_path);
    curate_calib_obs *obs = calibrate(m, CURATE_OBSERVE_ALL, 0);
    const curate_quant_method methods[] = {CURATE_QUANT_RTN, CURATE_QUANT_MSE,
                                           CURATE_QUANT_IMATRIX, CURATE_QUANT_AWQ,
                                           CURATE_QUANT_GPTQ};
    for (size_t mi = 0; mi < 5; mi++) {
        curate_model *q1 = curate_calib_model_copy(m, &err);
        curate_model *q2 = curate_calib_model_copy(m, &err);
        assert_non_null(q1);
        assert_non_null(q2);
        curate_calib_quant_opts o;
        curate_calib_quant_opts_init(&o);
        o.cfg.method = methods[mi];
        o.cfg.bits = 3;
        const char *ex[] = {"*ffn_down*"};
        o.sel.exclude = ex;
        o.sel.n_exclude = 1;
        o.keep_codes = 1;
        o.n_threads = 1;
        curate_calib_quant_result r1, r2;
        OK(curate_calib_quantize(m, q1, obs, &o, &r1, &err));
        o.n_threads = 2;
        OK(curate_calib_quantize(m, q2, obs, &o, &r2, &err));
        assert_int_equal(r1.n, curate_calib_tensors(m, NULL, 0));
        const curate_model_params *p = curate_model_get_params(m);
        assert_int_equal(r1.n_quantized, 6 * p->n_layer);
        for (size_t i = 0; i < r1.n; i++) {
            const curate_calib_qtensor *t = &r1.t[i];
            size_t n = t->info.rows * t->info.cols;
            const float *w = curate_calib_tensor_cdata(m, &t->info);
            const float *w1 = curate_calib_tensor_cdata(q1, &t->info);
            const float *w2 = curate_calib_tensor_cdata(q2, &t->info);
            /* thread count changes nothing */
            assert_memory_equal(w1, w2, n * sizeof(float));
            if (!t->quantized) {
                /* excluded or not a candidate: bit-identical to the source */
                assert_memory_equal(w1, w, n * sizeof(float));
                if (strstr(t->info.name, "ffn_down"))
                    assert_string_equal(t->excluded_by, "*ffn_down*");
                else
                    assert_true(!strncmp(t->info.name, "token_embd", 10) ||
                                !strncmp(t->info.name, "output", 6));
                continue;
            }
            assert_memory_equal(t->out.codes, r2.t[i].out.codes, n);
            /* each tensor is curate_quant_matrix() on it with its input's
             * statistics, computed here from the observer directly */
            const curate_observer *ob = curate_calib_obs_get(obs, t->info.layer, t->info.input);
            size_t cols = t->info.cols;
            float *imp = malloc(cols * sizeof *imp), *am = malloc(cols * sizeof *am);
            float *h = malloc(cols * cols * sizeof *h), *q = malloc(n * sizeof *q);
            OK(curate_observer_imatrix(ob, imp, &err));
            OK(curate_observer_absmean(ob, am, &err));
            OK(curate_observer_hessian(ob, h, &err));
            curate_quant_stats qs = {imp, am, h};
            curate_quant_out qo = {q, NULL, NULL, NULL, NULL};
            curate_quant_report rep;
            OK(curate_quant_matrix(&o.cfg, w, t->info.rows, cols, &qs, &qo, &rep, &err));
            assert_memory_equal(q, w1, n * sizeof(float));
            assert_true(rep.weight_err == t->rep.weight_err);
            assert_true(t->out_rel > 0 && t->out_rel < 1 && isfinite(t->out_err));
            assert_true(t->weight_rel > 0 && t->weight_rel < 1);
            assert_int_equal(t->method, methods[mi]);
            free(imp);
            free(am);
            free(h);
            free(q);
        }
        curate_calib_quant_result_release(&r1);
        curate_calib_quant_result_release(&r2);
        curate_model_free(q1);
        curate_model_free(q2);
    }
    curate_calib_obs_free(obs);
    curate_model_free(m);
}

static void test_quantize_include(void **state)
{
    (void)state;
    curate_error err;
    /* tied model: token_embd is also the output matrix, observed there */
    curate_model *m = load(tied_path);
    const curate_model_params *p = curate_model_get_params(m);
    assert_int_equal(p->tied_output, 1);
    curate_calib_obs *obs = calibrate(m, CURATE_OBSERVE_SUMSQ | CURATE_OBSERVE_HESSIAN, 1);
    curate_model *q = curate_calib_model_copy(m, &err);
    curate_calib_quant_opts o;
    curate_calib_quant_opts_init(&o);
    o.cfg.method = CURATE_QUANT_GPTQ;
    const char *inc[] = {"token_embd.weight", "blk.0.*"};
    o.sel.include = inc;
    o.sel.n_include = 2;
    curate_calib_quant_result r;
    OK(curate_calib_quantize(m, q, obs, &o, &r, &err));
    assert_int_equal(r.n_quantized, 1 + 7);
    assert_true(r.t[0].quantized && r.t[0].info.has_input && !r.t[0].fallback);
    /* the shared matrix changed, so the output matrix did too */
    assert_true(curate_model_weights_get(q)->output == curate_model_weights_get(q)->tok_embd);
    assert_true(memcmp(curate_model_weights_get(q)->tok_embd,
                       curate_model_weights_get(m)->tok_embd,
                       (size_t)p->n_vocab * p->n_embd * sizeof(float)) != 0);
    /* ffn_down of this model has 40 columns: groups of 32 end in one of 8 */
    for (size_t i = 0; i < r.n; i++)
        if (r.t[i].quantized && strstr(r.t[i].info.name, "ffn_down")) {
            assert_int_equal(r.t[i].rep.short_group, 1);
            assert_int_equal(r.t[i].rep.last_group, 8);
        }
    assert_int_equal(r.n_short_group, 1);
    curate_calib_quant_result_release(&r);
    curate_model_free(q);
    curate_calib_obs_free(obs);
    curate_model_free(m);

    /* untied: token_embd has no input; gptq falls back to mse for it, and
     * the output matrix without its observer is refused */
    m = load(model_path);
    obs = calibrate(m, CURATE_OBSERVE_HESSIAN, 0);
    q = curate_calib_model_copy(m, &err);
    const char *inc2[] = {"token_embd.weight"};
    o.sel.include = inc2;
    o.sel.n_include = 1;
    OK(curate_calib_quantize(m, q, obs, &o, &r, &err));
    assert_int_equal(r.n_quantized, 1);
    assert_int_equal(r.t[0].fallback, 1);
    assert_int_equal(r.t[0].method, CURATE_QUANT_MSE);
    curate_calib_quant_result_release(&r);
    const char *inc3[] = {"output.weight"};
    o.sel.include = inc3;
    assert_int_equal(curate_calib_quantize(m, q, obs, &o, &r, &err), CURATE_ERR_INVALID);
    assert_non_null(strstr(err.message, "output.weight"));
    /* rtn needs no statistics at all */
    o.cfg.method = CURATE_QUANT_RTN;
    OK(curate_calib_quantize(m, q, NULL, &o, &r, &err));
    curate_calib_quant_result_release(&r);
    /* a bad config is refused before anything runs */
    o.cfg.bits = 9;
    assert_int_equal(curate_calib_quantize(m, q, NULL, &o, &r, &err), CURATE_ERR_INVALID);
    curate_model_free(q);
    curate_calib_obs_free(obs);
    curate_model_free(m);

    /* selection rules */
    const char *ex[] = {"blk.1.*"};
    curate_calib_select sel = {NULL, 0, ex, 1};
    const char *why;
    assert_int_equal(curate_calib_selected(&sel, "blk.0.attn_q.weight", &why), 1);
    assert_int_equal(curate_calib_selected(&sel, "blk.1.attn_q.weight", &why), 0);
    assert_string_equal(why, "blk.1.*");
    assert_int_equal(curate_calib_selected(&sel, "output.weight", &why), 0);
    assert_null(why);
    assert_int_equal(curate_calib_selected(NULL, "token_embd.weight", NULL), 0);
}

/* ---- compare ------------------------------------------------------------------------------ */

/* KL(P || Q) of two logit rows the naive way: each log-softmax in double,
 * then sum p (log p - log q). */
static double naive_kl(const float *a, const float *b, size_t V)
{
    double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0;
    for (size_t v = 0; v < V; v++) {
        ma = a[v] > ma ? a[v] : ma;
        mb = b[v] > mb ? b[v] : mb;
    }
    for (size_t v = 0; v < V; v++) {
        sa += exp(a[v] - ma);
        sb += exp(b[v] - mb);
    }
    double kl = 0;
    for (size_t v = 0; v < V; v++) {
        double la = a[v] - ma - log(sa), lb = b[v] - mb - log(sb);
        kl += exp(la) * (la - lb);
    }
    return kl;
}

typedef struct seq_log {
    size_t calls;
    double kl_sum, nll_q;
    uint64_t rows;
} seq_log;

static void on_seq(void *user, size_t seq, size_t n_seq, const curate_calib_seq_score *s)
{
    (void)n_seq;
    seq_log *l = user;
    assert_int_equal(seq, l->calls);
    l->calls++;
    l->kl_sum += s[0].kl;
    l->nll_q += s[0].nll_quant;
    l->rows += s[0].rows;
}

static void test_compare(void **state)
{
    (void)state;
    curate_error err;
    curate_model *m = load(model_path);
    const curate_model_params *p = curate_model_get_params(m);
    const size_t V = p->n_vocab, ctx = 48;
    size_t n = 400;
    int32_t *tok = rand_tokens(n, p->n_vocab, 21);
    curate_seqs s;
    curate_seqs_init(&s);
    OK(curate_calib_eval_seqs(tok, n, ctx, CURATE_PPL_LLAMACPP, p->bos_id, 0, &s, &err));
    curate_calib_obs *obs = calibrate(m, CURATE_OBSERVE_ALL, 0);

    /* nothing quantized: KL 0 exactly, top-1 agreement 1, PPL unchanged */
    curate_model *same = curate_calib_model_copy(m, &err);
    curate_model *q3 = curate_calib_model_copy(m, &err);
    curate_calib_quant_opts o;
    curate_calib_quant_opts_init(&o);
    o.cfg.bits = 3;
    o.cfg.method = CURATE_QUANT_GPTQ;
    curate_calib_quant_result r;
    OK(curate_calib_quantize(m, q3, obs, &o, &r, &err));
    curate_calib_quant_result_release(&r);
    const char *ex[] = {"*"};
    o.sel.exclude = ex;
    o.sel.n_exclude = 1;
    OK(curate_calib_quantize(m, same, obs, &o, &r, &err));
    assert_int_equal(r.n_quantized, 0);
    curate_calib_quant_result_release(&r);

    curate_model_ctx *co = curate_model_ctx_init(m, ctx, 2, &err);
    curate_model_ctx *cs = curate_model_ctx_init(same, ctx, 2, &err);
    curate_model_ctx *cq = curate_model_ctx_init(q3, ctx, 2, &err);
    curate_model_ctx *both[2] = {cs, cq};
    curate_calib_cmp res[2];
    seq_log lg;
    memset(&lg, 0, sizeof lg);
    OK(curate_calib_compare(co, both, 2, &s, res, on_seq, &lg, &err));
    assert_true(res[0].kl_mean == 0.0 && res[0].kl_p99 == 0.0 && res[0].kl_max == 0.0);
    assert_true(res[0].top1_agree == 1.0);
    assert_true(res[0].dppl_pct == 0.0 && res[0].ppl_quant == res[0].ppl_orig);
    assert_true(res[1].kl_mean > 0 && res[1].kl_p99 >= res[1].kl_mean);
    assert_true(res[1].kl_max >= res[1].kl_p99);
    assert_true(res[1].top1_agree < 1.0 && res[1].top1_agree > 0.0);
    assert_true(res[1].ppl_orig == res[0].ppl_orig);
    assert_true(isfinite(res[1].dppl_pct) && res[1].dppl_pct != 0.0);
    assert_int_equal(lg.calls, s.n);
    assert_int_equal(lg.rows, res[0].n_scored);
    assert_true(lg.kl_sum == 0.0);

    /* per-row KL against the naive reference, and p99 by brute force */
    const size_t first = ctx / 2, rows = ctx - 1 - first;
    float *la = malloc(rows * V * sizeof *la), *lb = malloc(rows * V * sizeof *lb);
    double *all = malloc(res[1].n_scored * sizeof *all);
    size_t k = 0;
    double sum = 0;
    for (size_t i = 0; i < s.n; i++) {
        const int32_t *t = s.ids + s.start[i];
        OK(curate_model_ctx_forward(co, t, ctx - 1, first, la, &err));
        OK(curate_model_ctx_forward(cq, t, ctx - 1, first, lb, &err));
        for (size_t rr = 0; rr < rows; rr++) {
            all[k] = naive_kl(la + rr * V, lb + rr * V, V);
            sum += all[k++];
        }
    }
    assert_int_equal(k, res[1].n_scored);
    assert_true(fabs(sum / (double)k - res[1].kl_mean) <= 1e-9 * (sum / (double)k));
    /* nearest rank: the smallest value with at least 99% of values <= it */
    size_t below = 0, at = 0;
    for (size_t i = 0; i < k; i++) {
        below += all[i] < res[1].kl_p99 - 1e-12;
        at += all[i] <= res[1].kl_p99 + 1e-12;
    }
    assert_true((double)at >= 0.99 * (double)k);
    assert_true((double)below < 0.99 * (double)k);

    /* one thread: the same numbers */
    curate_model_ctx *co1 = curate_model_ctx_init(m, ctx, 1, &err);
    curate_model_ctx *cq1 = curate_model_ctx_init(q3, ctx, 1, &err);
    curate_calib_cmp r1;
    OK(curate_calib_compare(co1, &cq1, 1, &s, &r1, NULL, NULL, &err));
    assert_true(r1.kl_mean == res[1].kl_mean && r1.kl_p99 == res[1].kl_p99);
    assert_true(r1.ppl_quant == res[1].ppl_quant && r1.top1_agree == res[1].top1_agree);

    /* a sequence that does not fit the context */
    curate_seqs big;
    curate_seqs_init(&big);
    OK(curate_calib_eval_seqs(tok, n, 100, CURATE_PPL_LLAMACPP, 1, 0, &big, &err));
    assert_int_equal(curate_calib_compare(co, both, 2, &big, res, NULL, NULL, &err),
                     CURATE_ERR_RANGE);
    curate_seqs_release(&big);

    assert_string_equal(curate_calib_verdict(0.99), "excellent");
    assert_string_equal(curate_calib_verdict(-0.5), "excellent");
    assert_string_equal(curate_calib_verdict(-2.0), "acceptable");
    assert_string_equal(curate_calib_verdict(-4.0), "needs work");
    assert_string_equal(curate_calib_verdict(1.0), "acceptable");
    assert_string_equal(curate_calib_verdict(3.0), "acceptable");
    assert_string_equal(curate_calib_verdict(3.01), "needs work");
    assert_string_equal(curate_calib_verdict(NAN), "-");

    free(la);
    free(lb);
    free(all);
    curate_model_ctx_free(co);
    curate_model_ctx_free(cs);
    curate_model_ctx_free(cq);
    curate_model_ctx_free(co1);
    curate_model_ctx_free(cq1);
    curate_model_free(same);
    curate_model_free(q3);
    curate_calib_obs_free(obs);
    curate_seqs_release(&s);
    free(tok);
    curate_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_pack_concat),
        cmocka_unit_test(test_pack_sample),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_eval_matches_ppl),
        cmocka_unit_test(test_hook_fast_vs_ref),
        cmocka_unit_test(test_collect),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_quantize_include),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
