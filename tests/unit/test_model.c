/*
 * test_model.c - the llama runtime (curate/model.h).
 *
 * - An independent hand-written forward pass for tiny models (one layer,
 *   RoPE pairs spelled out) checks the reference's semantics, in NORM and
 *   NEOX mode, with and without QKV bias.
 * - The BLAS path against the scalar reference on random GGUF models from
 *   curate/testmodel.h: several shapes (GQA, MQA, MHA, tied output, partial
 *   rotary, vocab wider than one product tile, chunks longer than one
 *   attention block), weight types F32/F16/BF16/Q8_0.  Tolerance: every
 *   logit within LOGIT_TOL * (1 + max |logit|) of the reference (float
 *   products against double dot products).
 * - Bit-identical logits for 1, 2 and 3 threads.
 * - The corrupt/invalid model table: each case gives its status and names
 *   its subject in the message.
 * - Tokenizer/model agreement, observers, the NLL kernel, the vector exp.
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

#include "curate/gguf.h"
#include "curate/model.h"
#include "curate/testmodel.h"
#include "curate/tokenizer.h"
#include "helper_model.h"
#include "model_vec.h"

/* fast vs reference, relative to the logit scale */
#define LOGIT_TOL 2e-5
/* hand-written check vs reference (both in double where it matters) */
#define EXACT_TOL 1e-5

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rng_state = 12345;
static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static void fill(float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * scale;
}

static char *model_path(const char *name)
{
    static char buf[8][1200];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1200, "%s/%s.gguf", mh_scratch_dir(), name);
    return p;
}

static curate_model *write_and_load(const curate_testmodel_config *cfg, const char *name)
{
    curate_error err;
    curate_error_clear(&err);
    const char *path = model_path(name);
    if (curate_testmodel_write(cfg, path, &err) != CURATE_OK) {
        fprintf(stderr, "testmodel_write: %s\n", err.message);
        fail();
    }
    curate_model *m = curate_model_load(path, &err);
    if (!m)
        fprintf(stderr, "load %s: %s\n", path, err.message);
    assert_non_null(m);
    return m;
}

static void rand_tokens(int32_t *t, size_t n, uint32_t V)
{
    for (size_t i = 0; i < n; i++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((rng_state >> 33) % V);
    }
}

/* max |a - b| / (1 + max |b|) */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double mx = 0, md = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md)
            md = d;
        if (fabs((double)b[i]) > mx)
            mx = fabs((double)b[i]);
    }
    return md / (1.0 + mx);
}

/* ---- an independent forward pass for one-layer models ------------------------- */

static void hand_rmsnorm(const float *x, const float *w, size_t n, double eps, double *out)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    double r = 1.0 / sqrt(ss / (double)n + eps);
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] * r * w[i];
}

/* rotate pair (a, b) of head vector v by angle pos * base^(-2i/n_rot) */
static void hand_rope(double *v, size_t hd, size_t n_rot, double base, size_t pos, int neox)
{
    (void)hd;
    for (size_t i = 0; i < n_rot / 2; i++) {
        double ang = (double)pos * pow(base, -2.0 * (double)i / (double)n_rot);
        size_t a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
        double x0 = v[a], x1 = v[b];
        v[a] = x0 * cos(ang) - x1 * sin(ang);
        v[b] = x0 * sin(ang) + x1 * cos(ang);
    }
}

/*
 * One layer, n_head heads sharing kv heads, FFN included; T tokens.  Written
 * from the llama equations directly: nothing shared with libcurate.
 */
static void hand_forward(const curate_model *m, const int32_t *tok, size_t T, double *logits)
{
    const curate_model_params *p = curate_model_get_params(m);
    const curate_model_weights *w = curate_model_weights_get(m);
    const curate_layer_weights *L = &w->layers[0];
    size_t d = p->n_embd, hd = p->head_dim, H = p->n_head, Hkv = p->n_head_kv, f = p->n_ff;
    size_t V = p->n_vocab;
    double eps = p->norm_eps;
    int neox = p->rope_mode == CURATE_ROPE_NEOX;
    double q[16][64], k[16][64], v[16][64], x[16][64], xn[64], att[64], tmp[256], g[256], u[256];
    float xf[64];
    assert_true(T <= 16 && d <= 64 && f <= 256);
    for (size_t t = 0; t < T; t++) {
        for (size_t i = 0; i < d; i++)
            x[t][i] = w->tok_embd[(size_t)tok[t] * d + i];
        for (size_t i = 0; i < d; i++)
            xf[i] = (float)x[t][i];
        hand_rmsnorm(xf, L->attn_norm, d, eps, xn);
        for (size_t o = 0; o < H * hd; o++) {
            q[t][o] = L->bq ? L->bq[o] : 0;
            for (size_t i = 0; i < d; i++)
                q[t][o] += L->wq[o * d + i] * xn[i];
        }
        for (size_t o = 0; o < Hkv * hd; o++) {
            k[t][o] = L->bk ? L->bk[o] : 0;
            v[t][o] = L->bv ? L->bv[o] : 0;
            for (size_t i = 0; i < d; i++) {
                k[t][o] += L->wk[o * d + i] * xn[i];
                v[t][o] += L->wv[o * d + i] * xn[i];
            }
        }
        for (size_t h = 0; h < H; h++)
            hand_rope(q[t] + h * hd, hd, p->n_rot, p->rope_freq_base, t, neox);
        for (size_t h = 0; h < Hkv; h++)
            hand_rope(k[t] + h * hd, hd, p->n_rot, p->rope_freq_base, t, neox);
    }
    for (size_t t = 0; t < T; t++) {
        for (size_t h = 0; h < H; h++) {
            size_t kh = h / (H / Hkv);
            double s[16], mx = -1e300, sum = 0;
            for (size_t j = 0; j <= t; j++) {
                s[j] = 0;
                for (size_t i = 0; i < hd; i++)
                    s[j] += q[t][h * hd + i] * k[j][kh * hd + i];
                s[j] /= sqrt((double)hd);
                if (s[j] > mx)
                    mx = s[j];
            }
            for (size_t j = 0; j <= t; j++)
                sum += (s[j] = exp(s[j] - mx));
            for (size_t i = 0; i < hd; i++) {
                att[h * hd + i] = 0;
                for (size_t j = 0; j <= t; j++)
                    att[h * hd + i] += s[j] / sum * v[j][kh * hd + i];
            }
        }
        for (size_t o = 0; o < d; o++) {
            tmp[o] = 0;
            for (size_t i = 0; i < H * hd; i++)
                tmp[o] += L->wo[o * H * hd + i] * att[i];
        }
        for (size_t i = 0; i < d; i++)
            x[t][i] += tmp[i];
        for (size_t i = 0; i < d; i++)
            xf[i] = (float)x[t][i];
        hand_rmsnorm(xf, L->ffn_norm, d, eps, xn);
        for (size_t o = 0; o < f; o++) {
            g[o] = u[o] = 0;
            for (size_t i = 0; i < d; i++) {
                g[o] += L->w_gate[o * d + i] * xn[i];
                u[o] += L->w_up[o * d + i] * xn[i];
            }
            g[o] = g[o] / (1 + exp(-g[o])) * u[o];
        }
        for (size_t o = 0; o < d; o++) {
            double acc = 0;
            for (size_t i = 0; i < f; i++)
                acc += L->w_down[o * f + i] * g[i];
            x[t][o] += acc;
        }
        for (size_t i = 0; i < d; i++)
            xf[i] = (float)x[t][i];
        hand_rmsnorm(xf, w->output_norm, d, eps, xn);
        for (size_t o = 0; o < V; o++) {
            double acc = 0;
            for (size_t i = 0; i < d; i++)
                acc += w->output[o * d + i] * xn[i];
            logits[t * V + o] = acc;
        }
    }
}

static curate_model *tiny_model(curate_rope_mode mode, int bias, int tied, uint32_t n_head,
                                uint32_t n_kv, uint32_t n_rot)
{
    curate_model_params p;
    memset(&p, 0, sizeof p);
    strcpy(p.arch, "llama");
    p.n_vocab = 40;
    p.n_ctx_train = 16;
    p.n_embd = 16;
    p.n_layer = 1;
    p.n_ff = 24;
    p.n_head = n_head;
    p.n_head_kv = n_kv;
    p.head_dim = 16 / n_head;
    p.n_rot = n_rot;
    p.rope_freq_base = 10000.0f;
    p.norm_eps = 1e-5f;
    p.rope_mode = mode;
    p.qkv_bias = bias;
    p.tied_output = tied;
    p.add_bos = 1;
    p.bos_id = 1;
    p.eos_id = 2;
    curate_error err;
    curate_error_clear(&err);
    curate_model *m = curate_model_new(&p, &err);
    if (!m)
        fprintf(stderr, "model_new: %s\n", err.message);
    assert_non_null(m);
    curate_model_weights *w = curate_model_weights_mut(m);
    size_t d = 16, q = 16, kv = (size_t)n_kv * p.head_dim, f = 24, V = 40;
    fill(w->tok_embd, V * d, 1.0f);
    for (size_t i = 0; i < d; i++)
        w->output_norm[i] = 1.0f + 0.2f * frand();
    if (!tied)
        fill(w->output, V * d, 0.5f);
    curate_layer_weights *L = &w->layers[0];
    /* large enough weights that attention is far from uniform */
    fill(L->wq, q * d, 0.8f);
    fill(L->wk, kv * d, 0.8f);
    fill(L->wv, kv * d, 0.5f);
    fill(L->wo, d * q, 0.3f);
    fill(L->w_gate, f * d, 0.4f);
    fill(L->w_up, f * d, 0.4f);
    fill(L->w_down, d * f, 0.3f);
    for (size_t i = 0; i < d; i++) {
        L->attn_norm[i] = 1.0f + 0.2f * frand();
        L->ffn_norm[i] = 1.0f + 0.2f * frand();
    }
    if (bias) {
        fill(L->bq, q, 0.3f);
        fill(L->bk, kv, 0.3f);
        fill(L->bv, kv, 0.3f);
    }
    return m;
}

static void check_against_hand(curate_model *m)
{
    const size_t T = 9, V = 40;
    int32_t tok[9];
    rand_tokens(tok, T, 40);
    double want[9 * 40];
    float got[9 * 40], fast[9 * 40];
    hand_forward(m, tok, T, want);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_model_forward_ref(m, tok, T, 0, got, &err), CURATE_OK);
    double worst = 0;
    for (size_t i = 0; i < T * V; i++) {
        double dlt = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
        if (dlt > worst)
            worst = dlt;
    }
    if (worst > EXACT_TOL)
        fprintf(stderr, "reference vs hand-written: %.3g\n", worst);
    assert_true(worst <= EXACT_TOL);
    curate_model_ctx *c = curate_model_ctx_init(m, 16, 2, &err);
    assert_non_null(c);
    assert_int_equal(curate_model_ctx_forward(c, tok, T, 0, fast, &err), CURATE_OK);
    assert_true(rel_diff(fast, got, T * V) <= LOGIT_TOL);
    curate_model_ctx_free(c);
}

static void test_reference_semantics(void **state)
{
    (void)state;
    /* NORM rope, GQA 4/2, full rotary */
    curate_model *m = tiny_model(CURATE_ROPE_NORM, 0, 0, 4, 2, 4);
    check_against_hand(m);
    curate_model_free(m);
    /* NEOX rope with QKV bias (the qwen2 hooks), MHA, tied output */
    m = tiny_model(CURATE_ROPE_NEOX, 1, 1, 2, 2, 8);
    check_against_hand(m);
    curate_model_free(m);
    /* partial rotary: only 2 of 8 dims of each head turn; MQA */
    m = tiny_model(CURATE_ROPE_NORM, 1, 0, 2, 1, 2);
    check_against_hand(m);
    curate_model_free(m);
}

/* The two RoPE modes really differ (a swapped convention would not be caught
 * by comparing the library with itself). */
static void test_rope_modes_differ(void **state)
{
    (void)state;
    rng_state = 777;
    curate_model *a = tiny_model(CURATE_ROPE_NORM, 0, 0, 2, 2, 8);
    rng_state = 777;
    curate_model *b = tiny_model(CURATE_ROPE_NEOX, 0, 0, 2, 2, 8);
    int32_t tok[6] = {3, 7, 11, 5, 9, 2};
    float la[6 * 40], lb[6 * 40];
    curate_error err;
    assert_int_equal(curate_model_forward_ref(a, tok, 6, 0, la, &err), CURATE_OK);
    assert_int_equal(curate_model_forward_ref(b, tok, 6, 0, lb, &err), CURATE_OK);
    /* position 0 is not rotated: identical; later positions differ */
    assert_memory_equal(la, lb, 40 * sizeof(float));
    assert_true(rel_diff(la + 5 * 40, lb + 5 * 40, 40) > 1e-3);
    curate_model_free(a);
    curate_model_free(b);
}

/* ---- BLAS path vs reference on random GGUF models -------------------------------- */

typedef struct shape_case {
    const char *name;
    uint32_t dim, layers, heads, kv, ffn, vocab, ctx, rope_dim;
    int tied;
    curate_ggml_type type;
    size_t T;
} shape_case;

static const shape_case shapes[] = {
    {"gqa", 64, 2, 4, 2, 96, 128, 128, 0, 0, CURATE_GGML_TYPE_F32, 100},
    {"mha-tied", 48, 1, 3, 3, 80, 100, 64, 0, 1, CURATE_GGML_TYPE_F32, 33},
    {"mqa-partial-rope", 64, 2, 8, 1, 160, 300, 160, 4, 0, CURATE_GGML_TYPE_F32, 150},
    {"wide-vocab", 32, 1, 2, 1, 64, 9000, 32, 0, 1, CURATE_GGML_TYPE_F32, 20},
    {"f16", 64, 2, 4, 4, 96, 128, 64, 0, 0, CURATE_GGML_TYPE_F16, 64},
    {"bf16", 64, 1, 4, 2, 64, 96, 64, 0, 1, CURATE_GGML_TYPE_BF16, 17},
    {"q8_0", 64, 2, 4, 2, 96, 128, 128, 0, 0, CURATE_GGML_TYPE_Q8_0, 65},
};

static void test_fast_matches_reference(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape_case *sc = &shapes[s];
        curate_testmodel_config cfg;
        curate_testmodel_config_init(&cfg);
        cfg.dim = sc->dim;
        cfg.n_layers = sc->layers;
        cfg.n_heads = sc->heads;
        cfg.n_kv_heads = sc->kv;
        cfg.ffn_dim = sc->ffn;
        cfg.vocab_size = sc->vocab;
        cfg.ctx_len = sc->ctx;
        cfg.rope_dim = sc->rope_dim;
        cfg.tied_output = sc->tied;
        cfg.weight_type = sc->type;
        cfg.seed = 100 + s;
        /* weights large enough to make attention peaky: a wrong mask or
         * rotation then shows up clearly */
        cfg.scale = 2.0f / sqrtf((float)sc->dim);
        curate_model *m = write_and_load(&cfg, sc->name);
        const curate_model_params *p = curate_model_get_params(m);
        assert_int_equal(p->n_vocab, sc->vocab);
        assert_int_equal(p->n_head_kv, sc->kv);
        assert_int_equal(p->tied_output, sc->tied);
        assert_int_equal(p->n_rot, sc->rope_dim ? sc->rope_dim : sc->dim / sc->heads);

        size_t T = sc->T, V = sc->vocab;
        int32_t *tok = malloc(T * sizeof *tok);
        float *ref = malloc(T * V * sizeof(float));
        float *fast[3];
        rand_tokens(tok, T, sc->vocab);
        curate_error err;
        curate_error_clear(&err);
        assert_int_equal(curate_model_forward_ref(m, tok, T, 0, ref, &err), CURATE_OK);
        for (unsigned th = 1; th <= 3; th++) {
            fast[th - 1] = malloc(T * V * sizeof(float));
            curate_model_ctx *c = curate_model_ctx_init(m, sc->ctx, th, &err);
            assert_non_null(c);
            assert_int_equal(curate_model_ctx_threads(c), th);
            assert_int_equal(curate_model_ctx_forward(c, tok, T, 0, fast[th - 1], &err),
                             CURATE_OK);
            curate_model_ctx_free(c);
        }
        double diff = rel_diff(fast[0], ref, T * V);
        fprintf(stderr, "%-18s T=%3zu  fast vs reference: %.2e (tolerance %.0e)\n", sc->name,
                T, diff, LOGIT_TOL);
        assert_true(diff <= LOGIT_TOL);
        /* bit-identical whatever the thread count */
        assert_memory_equal(fast[0], fast[1], T * V * sizeof(float));
        assert_memory_equal(fast[0], fast[2], T * V * sizeof(float));
        /* a later first row gives the same rows (within rounding: the
         * output product is tiled by rows differently) */
        size_t first = T / 2;
        float *tail = malloc((T - first) * V * sizeof(float));
        curate_model_ctx *c = curate_model_ctx_init(m, sc->ctx, 2, &err);
        assert_int_equal(curate_model_ctx_forward(c, tok, T, first, tail, &err), CURATE_OK);
        assert_true(rel_diff(tail, fast[0] + first * V, (T - first) * V) <= 1e-6);
        /* the reference with first agrees with itself too */
        assert_int_equal(curate_model_forward_ref(m, tok, T, first, tail, &err), CURATE_OK);
        assert_memory_equal(tail, ref + first * V, (T - first) * V * sizeof(float));
        curate_model_ctx_free(c);
        free(tail);
        for (int i = 0; i < 3; i++)
            free(fast[i]);
        free(tok);
        free(ref);
        curate_model_free(m);
    }
}

/* Causality: changing a later token never changes earlier logits. */
static void test_causal(void **state)
{
    (void)state;
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    cfg.scale = 0.3f;
    curate_model *m = write_and_load(&cfg, "causal");
    int32_t tok[40];
    rand_tokens(tok, 40, 128);
    float a[40 * 128], b[40 * 128];
    curate_error err;
    curate_model_ctx *c = curate_model_ctx_init(m, 64, 2, &err);
    assert_int_equal(curate_model_ctx_forward(c, tok, 40, 0, a, &err), CURATE_OK);
    tok[30] = (tok[30] + 1) % 128;
    assert_int_equal(curate_model_ctx_forward(c, tok, 40, 0, b, &err), CURATE_OK);
    assert_memory_equal(a, b, 30 * 128 * sizeof(float));
    assert_true(rel_diff(a + 30 * 128, b + 30 * 128, 128) > 1e-6);
    curate_model_ctx_free(c);
    curate_model_free(m);
}

/* ---- the corrupt / invalid model table ---------------------------------------------- */

typedef struct edit {
    const char *drop_key;      /* key left out */
    const char *drop_tensor;   /* tensor left out */
    const char *u32_key;       /* key overridden with a u32 */
    uint32_t u32_value;
    const char *str_key;       /* key overridden with a string */
    const char *str_value;
    const char *reshape;       /* tensor written with ne[1] + 1 rows */
} edit;

/* Copy src to dst applying e; 0 on success. */
static int copy_edited(const char *src, const char *dst, const edit *e)
{
    curate_error err;
    curate_error_clear(&err);
    curate_gguf *g = curate_gguf_open(src, &err);
    if (!g) {
        fprintf(stderr, "copy_edited: %s\n", err.message);
        return -1;
    }
    curate_gguf_writer *w = curate_gguf_writer_new(&err);
    float *extra = NULL;
    int rc = 0;
    for (size_t i = 0; i < curate_gguf_n_kv(g) && !rc; i++) {
        const char *key = curate_gguf_kv_key(g, i);
        if (e->drop_key && strcmp(key, e->drop_key) == 0)
            continue;
        if (strcmp(key, "general.alignment") == 0)
            continue; /* the writer adds its own */
        if (e->u32_key && strcmp(key, e->u32_key) == 0)
            rc = curate_gguf_writer_add_u32(w, key, e->u32_value, &err);
        else if (e->str_key && strcmp(key, e->str_key) == 0)
            rc = curate_gguf_writer_add_str(w, key, e->str_value, strlen(e->str_value), &err);
        else
            rc = curate_gguf_writer_add_value(w, key, curate_gguf_kv_value(g, i), &err);
    }
    for (size_t i = 0; i < curate_gguf_n_tensors(g) && !rc; i++) {
        const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
        if (e->drop_tensor && strcmp(t->name, e->drop_tensor) == 0)
            continue;
        if (e->reshape && strcmp(t->name, e->reshape) == 0) {
            uint64_t ne[2] = {t->ne[0], t->ne[1] + 1};
            extra = calloc(ne[0] * ne[1], sizeof(float));
            rc = curate_gguf_writer_add_tensor_f32(w, t->name, CURATE_GGML_TYPE_F32, 2, ne, extra,
                                                   &err);
            continue;
        }
        rc = curate_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data,
                                           (size_t)t->n_bytes, &err);
    }
    if (!rc)
        rc = curate_gguf_writer_write(w, dst, &err);
    if (rc)
        fprintf(stderr, "copy_edited: %s\n", err.message);
    curate_gguf_writer_free(w);
    free(extra);
    curate_gguf_close(g);
    return rc ? -1 : 0;
}

typedef struct bad_case {
    const char *name;
    edit e;
    curate_status want;
    const char *msg; /* substring of the message */
} bad_case;

static void test_bad_models(void **state)
{
    (void)state;
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    char good[1200];
    snprintf(good, sizeof good, "%s", model_path("good"));
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_testmodel_write(&cfg, good, &err), CURATE_OK);
    /* the unedited copy loads: the table below fails for its edit only */
    edit none = {0};
    const char *copy = model_path("copy");
    assert_int_equal(copy_edited(good, copy, &none), 0);
    curate_model *m = curate_model_load(copy, &err);
    assert_non_null(m);
    curate_model_free(m);

    const bad_case cases[] = {
        {"arch", {.str_key = "general.architecture", .str_value = "gpt2"},
         CURATE_ERR_UNSUPPORTED, "unsupported architecture 'gpt2'"},
        {"no-arch", {.drop_key = "general.architecture"}, CURATE_ERR_FORMAT,
         "general.architecture"},
        {"no-embd-len", {.drop_key = "llama.embedding_length"}, CURATE_ERR_FORMAT,
         "llama.embedding_length"},
        {"no-eps", {.drop_key = "llama.attention.layer_norm_rms_epsilon"}, CURATE_ERR_FORMAT,
         "layer_norm_rms_epsilon"},
        {"eps-type", {.str_key = "llama.attention.layer_norm_rms_epsilon", .str_value = "1e-5"},
         CURATE_ERR_FORMAT, "layer_norm_rms_epsilon"},
        {"no-tensor", {.drop_tensor = "blk.1.ffn_up.weight"}, CURATE_ERR_FORMAT,
         "blk.1.ffn_up.weight"},
        {"no-output-norm", {.drop_tensor = "output_norm.weight"}, CURATE_ERR_FORMAT,
         "output_norm.weight"},
        {"shape", {.reshape = "blk.0.attn_k.weight"}, CURATE_ERR_FORMAT, "blk.0.attn_k.weight"},
        {"embd-shape", {.reshape = "token_embd.weight"}, CURATE_ERR_MODEL, "vocab_size"},
        {"kv-heads", {.u32_key = "llama.attention.head_count_kv", .u32_value = 3},
         CURATE_ERR_MODEL, "kv heads"},
        {"heads", {.u32_key = "llama.attention.head_count", .u32_value = 5}, CURATE_ERR_MODEL,
         "heads"},
        {"rope-dim", {.u32_key = "llama.rope.dimension_count", .u32_value = 7},
         CURATE_ERR_MODEL, "rope dimension"},
        {"vocab", {.u32_key = "llama.vocab_size", .u32_value = 129}, CURATE_ERR_MODEL,
         "vocab_size"},
        {"layers", {.u32_key = "llama.block_count", .u32_value = 3}, CURATE_ERR_FORMAT,
         "blk.2.attn_norm.weight"},
        {"zero-ffn", {.u32_key = "llama.feed_forward_length", .u32_value = 0}, CURATE_ERR_MODEL,
         "zero"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *bc = &cases[i];
        char name[64];
        snprintf(name, sizeof name, "bad-%s", bc->name);
        const char *path = model_path(name);
        assert_int_equal(copy_edited(good, path, &bc->e), 0);
        curate_error_clear(&err);
        m = curate_model_load(path, &err);
        if (m || err.code != bc->want || !strstr(err.message, bc->msg)) {
            fprintf(stderr, "case %s: got status %d message '%s'\n", bc->name, (int)err.code,
                    err.message);
            curate_model_free(m);
            fail();
        }
        /* the file is named */
        assert_string_equal(err.file, path);
    }

    /* not GGUF at all, and no file */
    const char *junk = model_path("junk");
    assert_int_equal(mh_write_file(junk, "GGML this is not gguf", 21), 0);
    curate_error_clear(&err);
    assert_null(curate_model_load(junk, &err));
    assert_int_equal(err.code, CURATE_ERR_FORMAT);
    curate_error_clear(&err);
    assert_null(curate_model_load("/nonexistent/model.gguf", &err));
    assert_int_equal(err.code, CURATE_ERR_IO);
}

static void test_params_check(void **state)
{
    (void)state;
    curate_model *m = tiny_model(CURATE_ROPE_NORM, 0, 0, 4, 2, 4);
    curate_model_params p = *curate_model_get_params(m);
    curate_model_free(m);
    curate_error err;
    curate_error_clear(&err);
    assert_int_equal(curate_model_params_check(&p, &err), CURATE_OK);
    curate_model_params q = p;
    strcpy(q.arch, "qwen2");
    assert_int_equal(curate_model_params_check(&q, &err), CURATE_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "qwen2"));
    q = p;
    q.n_rot = 5;
    assert_int_equal(curate_model_params_check(&q, &err), CURATE_ERR_MODEL);
    q = p;
    q.norm_eps = 0;
    assert_int_equal(curate_model_params_check(&q, &err), CURATE_ERR_MODEL);
    q = p;
    q.bos_id = 40;
    assert_int_equal(curate_model_params_check(&q, &err), CURATE_ERR_MODEL);
    q = p;
    q.n_vocab = UINT32_MAX;
    q.n_embd = 1u << 30;
    q.n_head = 1u << 20;
    q.head_dim = 1u << 10;
    q.n_head_kv = 1;
    assert_int_equal(curate_model_params_check(&q, &err), CURATE_ERR_RANGE);
    assert_null(curate_model_new(&q, &err));
}

/* ---- forward argument errors ----------------------------------------------------------- */

static void test_forward_errors(void **state)
{
    (void)state;
    curate_model *m = tiny_model(CURATE_ROPE_NORM, 0, 0, 4, 2, 4);
    curate_error err;
    curate_error_clear(&err);
    curate_model_ctx *c = curate_model_ctx_init(m, 8, 1, &err);
    assert_non_null(c);
    assert_int_equal(curate_model_ctx_max_tokens(c), 8);
    assert_ptr_equal(curate_model_ctx_model(c), m);
    int32_t tok[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    float out[10 * 40];
    assert_int_equal(curate_model_ctx_forward(c, tok, 9, 0, out, &err), CURATE_ERR_RANGE);
    assert_int_equal(curate_model_ctx_forward(c, tok, 4, 4, out, &err), CURATE_ERR_INVALID);
    assert_int_equal(curate_model_ctx_forward(c, tok, 0, 0, out, &err), CURATE_ERR_INVALID);
    tok[2] = 40;
    assert_int_equal(curate_model_ctx_forward(c, tok, 4, 0, out, &err), CURATE_ERR_RANGE);
    assert_non_null(strstr(err.message, "position 2"));
    assert_int_equal(curate_model_forward_ref(m, tok, 4, 0, out, &err), CURATE_ERR_RANGE);
    tok[2] = -1;
    assert_int_equal(curate_model_ctx_forward(c, tok, 4, 0, out, &err), CURATE_ERR_RANGE);
    assert_null(curate_model_ctx_init(m, 0, 1, &err));
    assert_int_equal(err.code, CURATE_ERR_INVALID);
    curate_model_ctx_free(c);
    curate_model_ctx_free(NULL);
    curate_model_free(m);
    curate_model_free(NULL);
}

/* ---- tokenizer agreement ------------------------------------------------------------------ */

static void test_tokenizer_agreement(void **state)
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

    /* vocab 128 vs 400 */
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    curate_model *m = write_and_load(&cfg, "v128");
    assert_int_equal(curate_model_check_tokenizer(m, tok, &err), CURATE_ERR_MODEL);
    assert_non_null(strstr(err.message, "400"));
    assert_non_null(strstr(err.message, "128"));
    curate_model_free(m);

    /* the tokenizer's own pieces embedded: agrees */
    const char *pieces[400];
    for (int32_t i = 0; i < 400; i++)
        pieces[i] = curate_tokenizer_piece(tok, i);
    cfg.vocab_size = 400;
    cfg.tokens = pieces;
    m = write_and_load(&cfg, "v400");
    const curate_model_params *p = curate_model_get_params(m);
    assert_int_equal(p->bos_id, 1);
    assert_int_equal(p->eos_id, 2);
    assert_int_equal(p->add_bos, 1);
    curate_error_clear(&err);
    assert_int_equal(curate_model_check_tokenizer(m, tok, &err), CURATE_OK);
    curate_model_free(m);

    /* a GGUF naming another BOS id */
    cfg.bos_id = 5;
    cfg.add_bos = 0;
    m = write_and_load(&cfg, "v400-bos5");
    assert_int_equal(curate_model_get_params(m)->add_bos, 0);
    assert_int_equal(curate_model_check_tokenizer(m, tok, &err), CURATE_ERR_MODEL);
    assert_non_null(strstr(err.message, "BOS"));
    curate_model_free(m);
    curate_tokenizer_free(tok);
}

/* ---- observers ----------------------------------------------------------------------------- */

typedef struct obs_log {
    int calls;
    int order_ok;
    uint32_t last_layer;
    int last_which;
    double first_row_sum; /* layer 0 QKV input, row 3 */
    size_t rows[8];
} obs_log;

static void observer(void *user, uint32_t layer, curate_linear_input which, const float *x,
                     size_t n_rows, size_t n_cols)
{
    obs_log *o = user;
    int expect = o->calls % 4;
    if (which == CURATE_LIN_OUTPUT)
        expect = CURATE_LIN_OUTPUT;
    if ((int)which != expect || (o->calls && layer < o->last_layer))
        o->order_ok = 0;
    if (o->calls < 8)
        o->rows[o->calls] = n_rows;
    if (layer == 0 && which == CURATE_LIN_ATTN_QKV) {
        double s = 0;
        for (size_t i = 0; i < n_cols; i++)
            s += x[3 * n_cols + i];
        o->first_row_sum = s;
    }
    o->calls++;
    o->last_layer = layer;
    o->last_which = which;
}

static void test_observer(void **state)
{
    (void)state;
    curate_model *m = tiny_model(CURATE_ROPE_NORM, 0, 0, 4, 2, 4);
    const curate_model_weights *w = curate_model_weights_get(m);
    curate_error err;
    curate_model_ctx *c = curate_model_ctx_init(m, 16, 2, &err);
    obs_log o = {0, 1, 0, -1, 0, {0}};
    curate_model_ctx_set_observer(c, observer, &o);
    int32_t tok[10];
    rand_tokens(tok, 10, 40);
    float out[10 * 40];
    assert_int_equal(curate_model_ctx_forward(c, tok, 10, 6, out, &err), CURATE_OK);
    assert_int_equal(o.calls, 4 * 1 + 1);
    assert_true(o.order_ok);
    assert_int_equal(o.last_which, CURATE_LIN_OUTPUT);
    assert_int_equal(o.last_layer, 1);
    assert_int_equal(o.rows[0], 10);
    assert_int_equal(o.rows[4], 4); /* output rows from first = 6 */
    /* the QKV input is rmsnorm(embedding) * attn_norm */
    double xn[16];
    hand_rmsnorm(w->tok_embd + (size_t)tok[3] * 16, w->layers[0].attn_norm, 16, 1e-5, xn);
    double s = 0;
    for (int i = 0; i < 16; i++)
        s += xn[i];
    assert_true(fabs(s - o.first_row_sum) < 1e-4);
    /* removing the observer stops the calls */
    curate_model_ctx_set_observer(c, NULL, NULL);
    assert_int_equal(curate_model_ctx_forward(c, tok, 10, 0, out, &err), CURATE_OK);
    assert_int_equal(o.calls, 5);
    curate_model_ctx_free(c);
    curate_model_free(m);
}

/* ---- NLL and the vector exp --------------------------------------------------------------- */

static void test_nll(void **state)
{
    (void)state;
    curate_model *m = tiny_model(CURATE_ROPE_NORM, 0, 0, 4, 2, 4);
    curate_error err;
    curate_model_ctx *c = curate_model_ctx_init(m, 16, 3, &err);
    enum { R = 11, V = 40 };
    float logits[R * V];
    int32_t tgt[R], top[R];
    double nll[R];
    for (int r = 0; r < R; r++) {
        fill(logits + r * V, V, 8.0f * (float)(r + 1));
        tgt[r] = (int32_t)(r * 7 % V);
    }
    logits[3 * V + 5] = logits[3 * V + 9] = 500.0f; /* a tie: first wins */
    assert_int_equal(curate_model_ctx_nll(c, logits, R, tgt, nll, top, &err), CURATE_OK);
    for (int r = 0; r < R; r++) {
        const float *x = logits + r * V;
        double mx = -1e300;
        int am = 0;
        for (int i = 0; i < V; i++)
            if (x[i] > mx) {
                mx = x[i];
                am = i;
            }
        double s = 0;
        for (int i = 0; i < V; i++)
            s += exp((double)x[i] - mx);
        double want = -((double)x[tgt[r]] - mx - log(s));
        assert_true(fabs(nll[r] - want) <= 1e-6 * (1 + fabs(want)));
        assert_int_equal(top[r], am);
    }
    assert_int_equal(top[3], 5);
    tgt[4] = V;
    assert_int_equal(curate_model_ctx_nll(c, logits, R, tgt, nll, NULL, &err), CURATE_ERR_RANGE);
    curate_model_ctx_free(c);
    curate_model_free(m);
}

static void test_vec_exp(void **state)
{
    (void)state;
    double worst = 0;
    for (double x = -87.0; x <= 88.0; x += 0.0137) {
        double want = exp((double)(float)x);
        double got = curate_exp_scalar((float)x);
        double rel = fabs(got - want) / want;
        if (rel > worst)
            worst = rel;
    }
    fprintf(stderr, "vector exp: worst relative error %.2e\n", worst);
    assert_true(worst < 3e-7);
    /* clamped ends stay finite and ordered */
    assert_true(curate_exp_scalar(-1000.0f) >= 0.0f && curate_exp_scalar(-1000.0f) < 1e-37f);
    assert_true(isfinite(curate_exp_scalar(1000.0f)));
    /* sum of exp and max on lengths around the lane width */
    float x[37];
    for (int n = 0; n <= 37; n++) {
        for (int i = 0; i < n; i++)
            x[i] = (float)(i % 7) - 3.5f + 0.01f * (float)n;
        double want = 0;
        float mx = -INFINITY;
        for (int i = 0; i < n; i++) {
            want += exp((double)x[i] - 1.0);
            if (x[i] > mx)
                mx = x[i];
        }
        assert_true(fabs(curate_vec_sum_exp(x, (size_t)n, 1.0f) - want) <= 1e-6 * (1 + want));
        assert_true(curate_vec_max(x, (size_t)n) == mx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_semantics),
        cmocka_unit_test(test_rope_modes_differ),
        cmocka_unit_test(test_fast_matches_reference),
        cmocka_unit_test(test_causal),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_params_check),
        cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_tokenizer_agreement),
        cmocka_unit_test(test_observer),
        cmocka_unit_test(test_nll),
        cmocka_unit_test(test_vec_exp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
