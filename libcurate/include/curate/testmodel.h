/*
 * curate/testmodel.h - deterministic small random-weight llama models.
 *
 * Tests of the model runtime must run without ../shared, so they build
 * their own models: curate_testmodel_write() writes a GGUF v3 file of
 * architecture "llama" with random weights of any shape (GQA, tied or
 * untied output, any weight type), and every llama.* key the runtime reads.
 * The same config and seed always give the same bytes.
 *
 * Tensors written (names and shapes as llama.cpp's converter writes them,
 * dims innermost first; d = dim, f = ffn_dim, hd = dim / n_heads,
 * kv = n_kv_heads * hd, V = vocab_size):
 *
 *   token_embd.weight          [d, V]      weight_type
 *   blk.N.attn_norm.weight     [d]         F32
 *   blk.N.attn_q.weight        [d, d]      weight_type
 *   blk.N.attn_k.weight        [d, kv]     weight_type
 *   blk.N.attn_v.weight        [d, kv]     weight_type
 *   blk.N.attn_output.weight   [d, d]      weight_type
 *   blk.N.ffn_norm.weight      [d]         F32
 *   blk.N.ffn_gate.weight      [d, f]      weight_type
 *   blk.N.ffn_up.weight        [d, f]      weight_type
 *   blk.N.ffn_down.weight      [f, d]      weight_type
 *   output_norm.weight         [d]         F32
 *   output.weight              [d, V]      weight_type  (absent when tied)
 *
 * Keys written: general.architecture = "llama", general.name,
 * general.file_type (0 F32, 1 F16, 7 Q8_0, 32 BF16, as llama.cpp numbers
 * them), llama.vocab_size, llama.context_length, llama.embedding_length,
 * llama.block_count, llama.feed_forward_length, llama.attention.head_count,
 * llama.attention.head_count_kv, llama.rope.dimension_count,
 * llama.rope.freq_base, llama.attention.layer_norm_rms_epsilon; and when
 * tokens are given: tokenizer.ggml.model = "llama", .tokens, .scores,
 * .token_type, .bos_token_id, .eos_token_id, .unknown_token_id,
 * .add_bos_token, .add_eos_token.
 *
 * Weights are uniform in [-scale, scale] from a xoshiro256** stream seeded
 * by seed (one stream, tensors drawn in the order above); norm weights are
 * 1 + uniform in [-0.1, 0.1].  Thread safety: reentrant.
 */
#ifndef CURATE_TESTMODEL_H
#define CURATE_TESTMODEL_H

#include <stdint.h>
#include "curate/gguf.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct curate_testmodel_config {
    uint32_t dim;            /* embedding length d */
    uint32_t n_layers;       /* blocks */
    uint32_t n_heads;        /* query heads; dim % n_heads == 0 */
    uint32_t n_kv_heads;     /* key/value heads; n_heads % n_kv_heads == 0 */
    uint32_t ffn_dim;        /* feed-forward hidden length f */
    uint32_t vocab_size;     /* V */
    uint32_t ctx_len;        /* llama.context_length */
    uint32_t rope_dim;       /* llama.rope.dimension_count; 0 = dim / n_heads */
    float rope_freq_base;    /* 0 = 10000 */
    float norm_eps;          /* 0 = 1e-5 */
    int tied_output;         /* 1: no output.weight (token_embd is reused) */
    curate_ggml_type weight_type; /* matrices: F32, F16, BF16 or Q8_0 (Q types
                                     need every row length % 32 == 0) */
    uint64_t seed;           /* PRNG seed */
    float scale;             /* weights uniform in [-scale, scale]; 0 = 1/sqrt(dim) */
    const char *name;        /* general.name; NULL = "curate-testmodel" */

    /* Optional vocabulary (all NULL = no tokenizer.* keys).  tokens has
     * vocab_size NUL-terminated strings; scores and token_types may be NULL
     * (then 0.0 and 1 = normal for every token). */
    const char *const *tokens;
    const float *scores;
    const int32_t *token_types;
    uint32_t bos_id, eos_id, unk_id; /* defaults 1, 2, 0 after _config_init */
    int add_bos;             /* tokenizer.ggml.add_bos_token (default 1) */
} curate_testmodel_config;

/*
 * Fill cfg with a tiny valid model: dim 64, 2 layers, 4 heads, 2 kv heads,
 * ffn 96, vocab 128, ctx 64, F32, untied, seed 1, no vocabulary.
 */
void curate_testmodel_config_init(curate_testmodel_config *cfg);

/*
 * Check cfg (CURATE_ERR_INVALID naming the bad field) and write the model
 * to path (through a temporary file and rename).  CURATE_ERR_IO on write
 * failure.
 */
curate_status curate_testmodel_write(const curate_testmodel_config *cfg, const char *path,
                                     curate_error *err);

/* Same, but add the keys and tensors to an existing writer (no write). */
curate_status curate_testmodel_build(const curate_testmodel_config *cfg, curate_gguf_writer *w,
                                     curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_TESTMODEL_H */
