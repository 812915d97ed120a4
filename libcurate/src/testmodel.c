/*
 * testmodel.c - deterministic random-weight llama GGUF files for tests.
 *
 * One xoshiro256** stream (seeded through splitmix64, as its authors
 * recommend) draws every weight in a fixed order, so a config and seed
 * name exactly one file.  Weights are made in F32 and converted by the
 * writer, so a Q8_0 model holds exactly what curate_ggml_from_f32 makes of
 * the F32 model with the same seed.
 */
#include "curate/testmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/*
 * Uniform in [-1, 1): 24 random bits, exact in a float, so the values do
 * not depend on the platform's float rounding.
 */
static float rng_sym(rng *r)
{
    return (float)(rng_next(r) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

void curate_testmodel_config_init(curate_testmodel_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dim = 64;
    cfg->n_layers = 2;
    cfg->n_heads = 4;
    cfg->n_kv_heads = 2;
    cfg->ffn_dim = 96;
    cfg->vocab_size = 128;
    cfg->ctx_len = 64;
    cfg->weight_type = CURATE_GGML_TYPE_F32;
    cfg->seed = 1;
    cfg->bos_id = 1;
    cfg->eos_id = 2;
    cfg->unk_id = 0;
    cfg->add_bos = 1;
}

/* llama.cpp's general.file_type numbers ("mostly <type>"), which loaders
 * report as the model's type. */
static uint32_t file_type_of(curate_ggml_type t)
{
    switch (t) {
    case CURATE_GGML_TYPE_F32: return 0;
    case CURATE_GGML_TYPE_F16: return 1;
    case CURATE_GGML_TYPE_Q4_0: return 2;
    case CURATE_GGML_TYPE_Q4_1: return 3;
    case CURATE_GGML_TYPE_Q8_0: return 7;
    case CURATE_GGML_TYPE_BF16: return 32;
    }
    return 0;
}

static curate_status check_config(const curate_testmodel_config *c, curate_error *err)
{
#define BAD(...) curate_error_set(err, CURATE_ERR_INVALID, __VA_ARGS__)
    if (!c->dim || !c->n_layers || !c->n_heads || !c->n_kv_heads || !c->ffn_dim ||
        !c->vocab_size || !c->ctx_len)
        return BAD("testmodel: dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size and "
                   "ctx_len must all be nonzero");
    if (c->dim % c->n_heads)
        return BAD("testmodel: dim %u is not a multiple of n_heads %u", c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return BAD("testmodel: n_heads %u is not a multiple of n_kv_heads %u", c->n_heads,
                   c->n_kv_heads);
    uint32_t hd = c->dim / c->n_heads;
    uint32_t rd = c->rope_dim ? c->rope_dim : hd;
    if (rd > hd || rd % 2)
        return BAD("testmodel: rope_dim %u must be even and at most the head size %u", rd, hd);
    if (!curate_ggml_type_convertible((uint32_t)c->weight_type))
        return BAD("testmodel: weight_type %u is not a type the writer can produce",
                   (unsigned)c->weight_type);
    uint32_t bs = curate_ggml_block_size((uint32_t)c->weight_type);
    if (c->dim % bs || c->ffn_dim % bs)
        return BAD("testmodel: %s needs dim (%u) and ffn_dim (%u) to be multiples of %u",
                   curate_ggml_type_name((uint32_t)c->weight_type), c->dim, c->ffn_dim, bs);
    if (!(c->scale >= 0.0f) || !isfinite(c->scale))
        return BAD("testmodel: scale must be finite and >= 0");
    if (c->tokens) {
        for (uint32_t i = 0; i < c->vocab_size; i++)
            if (!c->tokens[i])
                return BAD("testmodel: token %u is NULL", i);
        if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size ||
            c->unk_id >= c->vocab_size)
            return BAD("testmodel: bos/eos/unk ids must be below vocab_size %u", c->vocab_size);
    }
#undef BAD
    return CURATE_OK;
}

/*
 * Draw one tensor of n values and add it to the writer.  Every tensor takes
 * its values from the one stream in a fixed order (the order in
 * curate/testmodel.h), so tests can rely on a seed naming the same weights
 * across builds.
 */
static curate_status add_random(curate_gguf_writer *w, rng *r, const char *name,
                                curate_ggml_type type, uint32_t n_dims, uint64_t ne0,
                                uint64_t ne1, float center, float scale, float *scratch,
                                curate_error *err)
{
    uint64_t ne[2] = {ne0, ne1};
    uint64_t n = ne0 * (n_dims > 1 ? ne1 : 1);
    for (uint64_t i = 0; i < n; i++)
        scratch[i] = center + scale * rng_sym(r);
    return curate_gguf_writer_add_tensor_f32(w, name, type, n_dims, ne, scratch, err);
}

curate_status curate_testmodel_build(const curate_testmodel_config *c, curate_gguf_writer *w,
                                     curate_error *err)
{
    curate_status st = check_config(c, err);
    if (st)
        return st;
    uint32_t hd = c->dim / c->n_heads;
    uint32_t kv = c->n_kv_heads * hd;
    /* 1/sqrt(dim) keeps activations O(1) through the layers, so logits
     * stay finite and perplexities of random models are comparable (near
     * the vocabulary size) rather than dominated by a few huge logits. */
    float scale = c->scale > 0.0f ? c->scale : 1.0f / sqrtf((float)c->dim);

#define TRY(call)                                                                           \
    do {                                                                                    \
        if ((st = (call)) != CURATE_OK)                                                     \
            goto out;                                                                       \
    } while (0)
    float *scratch = NULL;
    TRY(curate_gguf_writer_add_str(w, "general.architecture", "llama", 5, err));
    const char *name = c->name ? c->name : "curate-testmodel";
    TRY(curate_gguf_writer_add_str(w, "general.name", name, strlen(name), err));
    TRY(curate_gguf_writer_add_u32(w, "general.file_type", file_type_of(c->weight_type), err));
    TRY(curate_gguf_writer_add_u32(w, "llama.vocab_size", c->vocab_size, err));
    TRY(curate_gguf_writer_add_u32(w, "llama.context_length", c->ctx_len, err));
    TRY(curate_gguf_writer_add_u32(w, "llama.embedding_length", c->dim, err));
    TRY(curate_gguf_writer_add_u32(w, "llama.block_count", c->n_layers, err));
    TRY(curate_gguf_writer_add_u32(w, "llama.feed_forward_length", c->ffn_dim, err));
    TRY(curate_gguf_writer_add_u32(w, "llama.attention.head_count", c->n_heads, err));
    TRY(curate_gguf_writer_add_u32(w, "llama.attention.head_count_kv", c->n_kv_heads, err));
    TRY(curate_gguf_writer_add_u32(w, "llama.rope.dimension_count",
                                   c->rope_dim ? c->rope_dim : hd, err));
    TRY(curate_gguf_writer_add_f32(w, "llama.rope.freq_base",
                                   c->rope_freq_base > 0.0f ? c->rope_freq_base : 10000.0f, err));
    TRY(curate_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon",
                                   c->norm_eps > 0.0f ? c->norm_eps : 1e-5f, err));

    if (c->tokens) {
        TRY(curate_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", 5, err));
        TRY(curate_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", c->tokens, NULL,
                                             c->vocab_size, err));
        TRY(curate_gguf_writer_begin_array(w, "tokenizer.ggml.scores", CURATE_GGUF_TYPE_FLOAT32,
                                           err));
        for (uint32_t i = 0; i < c->vocab_size; i++)
            TRY(curate_gguf_writer_add_f32(w, NULL, c->scores ? c->scores[i] : 0.0f, err));
        TRY(curate_gguf_writer_end_array(w, err));
        TRY(curate_gguf_writer_begin_array(w, "tokenizer.ggml.token_type", CURATE_GGUF_TYPE_INT32,
                                           err));
        for (uint32_t i = 0; i < c->vocab_size; i++)
            TRY(curate_gguf_writer_add_i32(w, NULL, c->token_types ? c->token_types[i] : 1, err));
        TRY(curate_gguf_writer_end_array(w, err));
        TRY(curate_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", c->bos_id, err));
        TRY(curate_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", c->eos_id, err));
        TRY(curate_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", c->unk_id, err));
        TRY(curate_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", c->add_bos, err));
        TRY(curate_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", 0, err));
    }

    /* Weights are drawn in F32 into one scratch buffer sized for the
     * largest tensor and converted by the writer, so every weight type
     * shares one stream: a Q8_0 model is exactly the quantized F32 one. */
    uint64_t big = (uint64_t)c->dim * c->vocab_size;
    uint64_t ffn = (uint64_t)c->dim * c->ffn_dim;
    if (ffn > big)
        big = ffn;
    if (big > SIZE_MAX / sizeof(float)) {
        st = curate_error_set(err, CURATE_ERR_RANGE, "testmodel: tensors too large");
        goto out;
    }
    scratch = malloc((size_t)big * sizeof *scratch);
    if (!scratch) {
        st = curate_error_set(err, CURATE_ERR_NOMEM, "testmodel: out of memory");
        goto out;
    }
    rng r;
    rng_seed(&r, c->seed);
    curate_ggml_type wt = c->weight_type;
    const curate_ggml_type nt = CURATE_GGML_TYPE_F32;
    TRY(add_random(w, &r, "token_embd.weight", wt, 2, c->dim, c->vocab_size, 0.0f, scale,
                   scratch, err));
    for (uint32_t l = 0; l < c->n_layers; l++) {
        char nm[64];
#define NAME(part) (snprintf(nm, sizeof nm, "blk.%u." part ".weight", l), nm)
        /* norms near 1, not exactly 1: a bug that skips the norm weight
         * must change the output */
        TRY(add_random(w, &r, NAME("attn_norm"), nt, 1, c->dim, 1, 1.0f, 0.1f, scratch, err));
        TRY(add_random(w, &r, NAME("attn_q"), wt, 2, c->dim, c->dim, 0.0f, scale, scratch, err));
        TRY(add_random(w, &r, NAME("attn_k"), wt, 2, c->dim, kv, 0.0f, scale, scratch, err));
        TRY(add_random(w, &r, NAME("attn_v"), wt, 2, c->dim, kv, 0.0f, scale, scratch, err));
        TRY(add_random(w, &r, NAME("attn_output"), wt, 2, c->dim, c->dim, 0.0f, scale, scratch,
                       err));
        TRY(add_random(w, &r, NAME("ffn_norm"), nt, 1, c->dim, 1, 1.0f, 0.1f, scratch, err));
        TRY(add_random(w, &r, NAME("ffn_gate"), wt, 2, c->dim, c->ffn_dim, 0.0f, scale, scratch,
                       err));
        TRY(add_random(w, &r, NAME("ffn_up"), wt, 2, c->dim, c->ffn_dim, 0.0f, scale, scratch,
                       err));
        TRY(add_random(w, &r, NAME("ffn_down"), wt, 2, c->ffn_dim, c->dim, 0.0f, scale, scratch,
                       err));
#undef NAME
    }
    TRY(add_random(w, &r, "output_norm.weight", nt, 1, c->dim, 1, 1.0f, 0.1f, scratch, err));
    if (!c->tied_output)
        TRY(add_random(w, &r, "output.weight", wt, 2, c->dim, c->vocab_size, 0.0f, scale,
                       scratch, err));
#undef TRY
out:
    free(scratch);
    return st;
}

curate_status curate_testmodel_write(const curate_testmodel_config *cfg, const char *path,
                                     curate_error *err)
{
    curate_gguf_writer *w = curate_gguf_writer_new(err);
    if (!w)
        return CURATE_ERR_NOMEM;
    curate_status st = curate_testmodel_build(cfg, w, err);
    if (!st)
        st = curate_gguf_writer_write(w, path, err);
    curate_gguf_writer_free(w);
    return st;
}
