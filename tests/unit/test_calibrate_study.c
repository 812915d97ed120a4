/*
 * test_calibrate_study.c - the study helpers of curate/calibrate.h:
 *
 * - curate_calib_spread_of() against a reference computed a different way
 *   (the sample variance as the mean of squared pairwise differences / 2,
 *   which needs no mean), on random vectors; NaN and Inf values are left
 *   out; the edge counts 0 and 1;
 * - the noise rule on both sides of its boundary, and its refusals (n < 2,
 *   std 0, NaN);
 * - curate_calib_subsample_size() rounding and clamps;
 * - curate_calib_subsample(): reproducible for the same seed and repeat,
 *   different for another repeat, sorted and distinct, and uniform: over
 *   many repeats every record is drawn about k / n of the time;
 * - curate-calibrate --out-imatrix (the program, on stories260K from
 *   ../shared; skipped without it): the .dat and the GGUF file of a run
 *   hold one entry per blk.* matrix whose values are exactly what
 *   observers collect when this test packs and runs the same records
 *   itself through the library (in_sum2 = the sums of x^2 rounded to
 *   float, counts = every position including BOS; .dat values = sum /
 *   count * ncall with ncall = the chunk count; the chunk count and the
 *   dataset name at the end).
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
#include "curate/gguf.h"
#include "curate/model.h"
#include "curate/rng.h"
#include "curate/tokenizer.h"

static void test_spread_random(void **state)
{
    (void)state;
    curate_rng rng;
    curate_rng_seed(&rng, 42);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 2 + (size_t)curate_rng_below(&rng, 30);
        double v[40];
        double off = (curate_rng_uniform(&rng) - 0.5) * 1e3;
        for (size_t i = 0; i < n; i++)
            v[i] = off + (curate_rng_uniform(&rng) - 0.5) * 10.0;
        curate_calib_spread sp;
        curate_calib_spread_of(v, n, &sp);
        assert_int_equal(sp.n, n);
        /* reference: pairwise differences give the variance without a mean;
         * min and max by a scan; the mean by a sum in reverse order */
        double pair = 0, mn = v[0], mx = v[0], sum = 0;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++)
                pair += (v[i] - v[j]) * (v[i] - v[j]);
            mn = fmin(mn, v[i]);
            mx = fmax(mx, v[i]);
        }
        for (size_t i = n; i-- > 0;)
            sum += v[i];
        double var = pair / (2.0 * (double)n * (double)(n - 1));
        assert_true(fabs(sp.mean - sum / (double)n) < 1e-9 * (1 + fabs(sp.mean)));
        assert_true(fabs(sp.std - sqrt(var)) < 1e-9 * (1 + sqrt(var)));
        assert_true(sp.min == mn);
        assert_true(sp.max == mx);
        assert_true(sp.min <= sp.mean && sp.mean <= sp.max);
    }
}

static void test_spread_edges(void **state)
{
    (void)state;
    curate_calib_spread sp;
    curate_calib_spread_of(NULL, 0, &sp);
    assert_int_equal(sp.n, 0);
    assert_true(isnan(sp.mean) && isnan(sp.std) && isnan(sp.min) && isnan(sp.max));
    double one = 3.5;
    curate_calib_spread_of(&one, 1, &sp);
    assert_int_equal(sp.n, 1);
    assert_true(sp.mean == 3.5 && sp.min == 3.5 && sp.max == 3.5);
    assert_true(isnan(sp.std));
    /* non-finite values are left out, not propagated */
    double v[] = {1.0, NAN, 3.0, INFINITY, -INFINITY};
    curate_calib_spread_of(v, 5, &sp);
    assert_int_equal(sp.n, 2);
    assert_true(sp.mean == 2.0 && sp.min == 1.0 && sp.max == 3.0);
    assert_true(fabs(sp.std - sqrt(2.0)) < 1e-15);
    /* constant values: std exactly 0 */
    double c[] = {0.7, 0.7, 0.7, 0.7};
    curate_calib_spread_of(c, 4, &sp);
    assert_true(sp.std == 0.0);
}

static void test_noise(void **state)
{
    (void)state;
    curate_calib_spread sp = {3, 1.0, 0.5, 0.4, 1.6};
    /* |1.0| < 2 * 0.5 is false: the boundary is not noise */
    assert_int_equal(curate_calib_within_noise(&sp, 2.0), 0);
    sp.std = 0.5000001;
    assert_int_equal(curate_calib_within_noise(&sp, 2.0), 1);
    sp.mean = -0.9;
    assert_int_equal(curate_calib_within_noise(&sp, 2.0), 1);
    sp.mean = -1.1;
    assert_int_equal(curate_calib_within_noise(&sp, 2.0), 0);
    /* too few repeats, no spread, NaN: never marked */
    curate_calib_spread one = {1, 0.1, NAN, 0.1, 0.1};
    assert_int_equal(curate_calib_within_noise(&one, 2.0), 0);
    curate_calib_spread flat = {4, 0.0, 0.0, 0.0, 0.0};
    assert_int_equal(curate_calib_within_noise(&flat, 2.0), 0);
    curate_calib_spread nan = {4, NAN, 1.0, 0.0, 0.0};
    assert_int_equal(curate_calib_within_noise(&nan, 2.0), 0);
    assert_int_equal(curate_calib_within_noise(NULL, 2.0), 0);
}

static void test_subsample_size(void **state)
{
    (void)state;
    assert_int_equal(curate_calib_subsample_size(0, 0.8), 0);
    assert_int_equal(curate_calib_subsample_size(512, 0.8), 410); /* 409.6 */
    assert_int_equal(curate_calib_subsample_size(512, 0.25), 128);
    assert_int_equal(curate_calib_subsample_size(10, 0.25), 3);   /* 2.5 rounds up */
    assert_int_equal(curate_calib_subsample_size(3, 0.01), 1);
    assert_int_equal(curate_calib_subsample_size(3, 0.0), 1);
    assert_int_equal(curate_calib_subsample_size(3, 1.0), 3);
    assert_int_equal(curate_calib_subsample_size(3, 7.0), 3);
    assert_int_equal(curate_calib_subsample_size(1, 0.9999), 1);
}

static void test_subsample(void **state)
{
    (void)state;
    enum { N = 50, K = 10, R = 4000 };
    size_t a[K], b[K];
    curate_calib_subsample(7, 1, N, K, a);
    curate_calib_subsample(7, 1, N, K, b);
    assert_memory_equal(a, b, sizeof a);
    /* repeat 2 of seed 7 is seed 8's repeat 1 by the documented scheme */
    curate_calib_subsample(7, 2, N, K, a);
    curate_calib_subsample(8, 1, N, K, b);
    assert_memory_equal(a, b, sizeof a);
    curate_calib_subsample(7, 1, N, K, b);
    assert_true(memcmp(a, b, sizeof a) != 0);
    /* sorted, distinct, in range; each record drawn about R K / N times */
    unsigned hits[N];
    memset(hits, 0, sizeof hits);
    for (uint64_t r = 0; r < R; r++) {
        curate_calib_subsample(99, r, N, K, a);
        for (size_t i = 0; i < K; i++) {
            assert_true(a[i] < N);
            if (i)
                assert_true(a[i - 1] < a[i]);
            hits[a[i]]++;
        }
    }
    const double expect = (double)R * K / N; /* 800; binomial sd ~ 25 */
    for (size_t i = 0; i < N; i++)
        assert_true(fabs((double)hits[i] - expect) < 6 * sqrt(expect * (1.0 - (double)K / N)));
    /* k = n: every record */
    size_t all[5];
    curate_calib_subsample(1, 0, 5, 9, all);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(all[i], i);
}

#define OK(expr)                                                                    \
    do {                                                                            \
        curate_status st_ = (expr);                                                 \
        if (st_ != CURATE_OK) {                                                     \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, err.message); \
            fail();                                                                 \
        }                                                                           \
    } while (0)

static char *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        b[n] = 0;
    *len = (size_t)n;
    return b;
}

static int32_t rd32(const char *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void test_imatrix_cli(void **state)
{
    (void)state;
    const char *shared = getenv("CURATE_SHARED"), *bin = getenv("CURATE_BIN");
    const char *tmp = getenv("CURATE_TMP");
    if (!shared || !bin || !tmp) {
        fprintf(stderr, "CURATE_SHARED, CURATE_BIN or CURATE_TMP not set: skipped\n");
        skip();
    }
    char model[1200], tokp[1200], calib[1200], dat[1200], gg[1200], cmd[6000];
    snprintf(model, sizeof model, "%s/models/stories260K/stories260K.gguf", shared);
    snprintf(tokp, sizeof tokp, "%s/models/stories260K/tok512.model", shared);
    FILE *probe = fopen(model, "rb");
    if (!probe) {
        fprintf(stderr, "%s missing: skipped\n", model);
        skip();
    }
    fclose(probe);
    snprintf(calib, sizeof calib, "%s/study-imatrix-calib.jsonl", tmp);
    snprintf(dat, sizeof dat, "%s/study-imatrix.dat", tmp);
    snprintf(gg, sizeof gg, "%s/study-imatrix.gguf", tmp);
    /* 30 records of seeded words (lengths differ, so chunks cut records) */
    static const char *const words[] = {"the", "little", "dog", "ran", "to", "a", "big",
                                        "tree", "and", "saw", "bird", "sky", "happy", "girl",
                                        "said", "hello", "friend", "cat", "played", "sun"};
    curate_rng rng;
    curate_rng_seed(&rng, 11);
    FILE *f = fopen(calib, "wb");
    assert_non_null(f);
    enum { NREC = 30 };
    char text[NREC][1200];
    for (int r = 0; r < NREC; r++) {
        size_t n = 10 + (size_t)curate_rng_below(&rng, 120), len = 0;
        text[r][0] = 0;
        for (size_t i = 0; i < n && len + 10 < sizeof text[r]; i++)
            len += (size_t)snprintf(text[r] + len, sizeof text[r] - len, "%s%s", i ? " " : "",
                                    words[curate_rng_below(&rng, 20)]);
        fprintf(f, "{\"text\": \"%s.\", \"domain\": \"d%d\"}\n", text[r], r % 3);
        strcat(text[r], ".");
    }
    fclose(f);
    const size_t ctx = 64;
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "'%s/curate-calibrate' -q -m '%s' -t '%s' -c %zu --calib '%s' --out-imatrix '%s'",
                 bin, model, tokp, ctx, calib, k ? gg : dat);
        assert_int_equal(system(cmd), 0);
    }

    /* the same calibration by hand: tokenize (no BOS), pack concat, collect */
    curate_error err;
    curate_error_clear(&err);
    curate_model *m = curate_model_load(model, &err);
    assert_non_null(m);
    curate_tokenizer *tok = curate_tokenizer_load_ex(tokp, CURATE_TOK_LOAD_KEEP_WHITESPACE, &err);
    assert_non_null(tok);
    curate_seqs recs, seqs;
    curate_seqs_init(&recs);
    curate_seqs_init(&seqs);
    curate_tokens ids;
    curate_tokens_init(&ids);
    for (int r = 0; r < NREC; r++) {
        curate_tokens_reset(&ids);
        OK(curate_tokenizer_encode(tok, text[r], strlen(text[r]), 0, &ids, &err));
        OK(curate_seqs_add(&recs, ids.ids, ids.n, ids.n - 1, (uint64_t)r, &err));
    }
    curate_calib_pack_stats ps;
    OK(curate_calib_pack_records(&recs, 0, NULL, 0, CURATE_CALIB_PACK_CONCAT, ctx,
                                 curate_tokenizer_bos(tok), &seqs, &ps, &err));
    /* a NULL pick means every record: check the pack used them */
    assert_true(ps.records_used > 0 && ps.sequences >= 2);
    curate_calib_obs *obs = curate_calib_obs_new(m, CURATE_OBSERVE_SUMSQ, 0, 0, &err);
    assert_non_null(obs);
    curate_model_ctx *c = curate_model_ctx_init(m, ctx, 1, &err);
    assert_non_null(c);
    OK(curate_calib_collect(c, &seqs, obs, NULL, NULL, &err));
    const uint64_t count = ps.sequences * ctx;
    assert_int_equal(curate_calib_obs_tokens(obs), count);

    size_t nt = curate_calib_tensors(m, NULL, 0);
    curate_calib_tensor *tl = calloc(nt, sizeof *tl);
    curate_calib_tensors(m, tl, nt);
    size_t n_blk = 0;
    for (size_t i = 0; i < nt; i++)
        n_blk += strncmp(tl[i].name, "blk.", 4) == 0;
    assert_int_equal(n_blk, (size_t)curate_model_get_params(m)->n_layer * 7);

    /* GGUF: in_sum2 and counts per blk.* matrix, nothing else */
    curate_gguf *g = curate_gguf_open(gg, &err);
    assert_non_null(g);
    assert_int_equal(curate_gguf_n_tensors(g), 2 * n_blk);
    float *v = malloc(4096 * sizeof *v);
    for (size_t i = 0; i < nt; i++) {
        if (strncmp(tl[i].name, "blk.", 4) != 0)
            continue;
        const double *sums = curate_observer_sumsq(curate_calib_obs_get(obs, tl[i].layer,
                                                                        tl[i].input));
        char name[96];
        snprintf(name, sizeof name, "%s.in_sum2", tl[i].name);
        const curate_gguf_tensor *t = curate_gguf_find_tensor(g, name);
        assert_non_null(t);
        assert_int_equal(t->ne[0], tl[i].cols);
        OK(curate_gguf_tensor_to_f32(t, v, tl[i].cols, &err));
        for (size_t j = 0; j < tl[i].cols; j++)
            assert_true(v[j] == (float)sums[j]);
        snprintf(name, sizeof name, "%s.counts", tl[i].name);
        float cnt;
        OK(curate_gguf_tensor_to_f32(curate_gguf_find_tensor(g, name), &cnt, 1, &err));
        assert_true(cnt == (float)count);
    }
    curate_gguf_close(g);

    /* .dat: n entries; name, ncall, nval, values; chunk count; dataset */
    size_t len = 0;
    char *d = slurp(dat, &len);
    assert_non_null(d);
    const char *p = d, *end = d + len;
    assert_int_equal(rd32(p), (int32_t)n_blk);
    p += 4;
    size_t seen = 0;
    for (size_t e = 0; e < n_blk; e++) {
        int32_t nl = rd32(p);
        p += 4;
        assert_true(nl > 0 && p + nl + 8 <= end);
        char name[96];
        assert_true((size_t)nl < sizeof name);
        memcpy(name, p, (size_t)nl);
        name[nl] = 0;
        p += nl;
        int32_t ncall = rd32(p), nval = rd32(p + 4);
        p += 8;
        assert_int_equal(ncall, (int32_t)ps.sequences); /* ceil(count / ctx) */
        const curate_calib_tensor *t = NULL;
        for (size_t i = 0; i < nt; i++)
            if (strcmp(tl[i].name, name) == 0)
                t = &tl[i];
        assert_non_null(t);
        assert_int_equal(nval, (int32_t)t->cols);
        const double *sums = curate_observer_sumsq(curate_calib_obs_get(obs, t->layer, t->input));
        for (int32_t j = 0; j < nval; j++) {
            float x;
            memcpy(&x, p + 4 * j, 4);
            float want = (float)(sums[j] / (double)count * (double)ncall);
            assert_true(x == want);
        }
        p += 4 * (size_t)nval;
        seen++;
    }
    assert_int_equal(seen, n_blk);
    assert_int_equal(rd32(p), (int32_t)ps.sequences);
    int32_t dl = rd32(p + 4);
    assert_int_equal(dl, (int32_t)strlen(calib));
    assert_memory_equal(p + 8, calib, strlen(calib));
    assert_true(p + 8 + dl == end);
    free(d);
    free(v);
    free(tl);
    curate_model_ctx_free(c);
    curate_calib_obs_free(obs);
    curate_tokens_release(&ids);
    curate_seqs_release(&recs);
    curate_seqs_release(&seqs);
    curate_tokenizer_free(tok);
    curate_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread_random),
        cmocka_unit_test(test_spread_edges),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_subsample_size),
        cmocka_unit_test(test_subsample),
        cmocka_unit_test(test_imatrix_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
