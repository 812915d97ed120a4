/*
 * model.c - hyper-parameters, weight storage, loading a llama GGUF, and the
 * helpers both forward passes share (RoPE tables, token checks).
 *
 * Loading reads every llama.* key the architecture needs, derives the sizes,
 * checks each tensor's shape before converting it, and converts everything
 * to F32 once: the runtime computes in F32 only, so weight types matter at
 * load time and nowhere else.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity */
#endif
#include "model_internal.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "curate/gguf.h"

/* ---- architectures ------------------------------------------------------- */

/*
 * What differs between the supported architectures.  qwen2 would be
 * {"qwen2", CURATE_ROPE_NEOX, 1}: its keys are qwen2.*, and the Q/K/V bias
 * tensors blk.N.attn_{q,k,v}.bias are loaded when qkv_bias is set.  It is
 * not listed until a test model checks it against a reference.
 */
typedef struct arch_info {
    const char *name;
    curate_rope_mode rope_mode;
    int qkv_bias;
} arch_info;

static const arch_info known_archs[] = {
    {"llama", CURATE_ROPE_NORM, 0},
};

static const arch_info *find_arch(const char *name)
{
    for (size_t i = 0; i < sizeof known_archs / sizeof known_archs[0]; i++)
        if (strcmp(known_archs[i].name, name) == 0)
            return &known_archs[i];
    return NULL;
}

/* ---- small helpers ---------------------------------------------------------- */

float *curate_falloc(size_t n)
{
    if (n == 0)
        n = 1;
    if (n > (SIZE_MAX - 63) / sizeof(float))
        return NULL;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes);
}

unsigned curate_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int a = CPU_COUNT(&set);
        if (a > 0 && (n <= 0 || a < n))
            n = a;
    }
    return n > 0 ? (unsigned)n : 1u;
}

curate_model_dims curate_model_dims_of(const curate_model_params *p)
{
    curate_model_dims d;
    d.d = p->n_embd;
    d.hd = p->head_dim;
    d.q = (size_t)p->n_head * p->head_dim;
    d.kv = (size_t)p->n_head_kv * p->head_dim;
    d.f = p->n_ff;
    d.V = p->n_vocab;
    d.n_rot = p->n_rot;
    return d;
}

/* a * b without overflow, into *out; 0 on overflow */
static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

curate_status curate_model_params_check(const curate_model_params *p, curate_error *err)
{
    if (!p)
        return curate_error_set(err, CURATE_ERR_INVALID, "no model parameters");
    if (memchr(p->arch, 0, sizeof p->arch) == NULL)
        return curate_error_set(err, CURATE_ERR_MODEL, "architecture name is not terminated");
    if (!find_arch(p->arch))
        return curate_error_set(err, CURATE_ERR_UNSUPPORTED,
                                "unsupported architecture '%s' (supported: llama)", p->arch);
    if (!p->n_vocab || !p->n_embd || !p->n_layer || !p->n_ff || !p->n_head || !p->n_head_kv ||
        !p->head_dim)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "a model size is zero (vocab %u, embd %u, layers %u, ffn %u, "
                                "heads %u, kv heads %u, head dim %u)",
                                p->n_vocab, p->n_embd, p->n_layer, p->n_ff, p->n_head,
                                p->n_head_kv, p->head_dim);
    if ((uint64_t)p->n_head * p->head_dim != p->n_embd)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "embedding length %u is not heads %u x head dim %u", p->n_embd,
                                p->n_head, p->head_dim);
    if (p->n_head % p->n_head_kv != 0)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "%u kv heads do not divide %u query heads", p->n_head_kv,
                                p->n_head);
    if (p->n_rot == 0 || p->n_rot % 2 != 0 || p->n_rot > p->head_dim)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "rope dimension %u must be even and at most the head dim %u",
                                p->n_rot, p->head_dim);
    if (!(p->norm_eps > 0.0f) || !isfinite(p->norm_eps))
        return curate_error_set(err, CURATE_ERR_MODEL, "RMSNorm epsilon %g is not positive",
                                (double)p->norm_eps);
    if (!(p->rope_freq_base > 0.0f) || !isfinite(p->rope_freq_base))
        return curate_error_set(err, CURATE_ERR_MODEL, "rope base %g is not positive",
                                (double)p->rope_freq_base);
    if (p->rope_mode != CURATE_ROPE_NORM && p->rope_mode != CURATE_ROPE_NEOX)
        return curate_error_set(err, CURATE_ERR_MODEL, "unknown rope mode %d", (int)p->rope_mode);
    if (p->bos_id < -1 || p->bos_id >= (int64_t)p->n_vocab || p->eos_id < -1 ||
        p->eos_id >= (int64_t)p->n_vocab)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "BOS %ld or EOS %ld outside the vocabulary of %u",
                                (long)p->bos_id, (long)p->eos_id, p->n_vocab);
    /* every matrix and the largest scratch row must be addressable */
    curate_model_dims d = curate_model_dims_of(p);
    size_t t;
    const size_t rows[] = {d.V, d.q + 2 * d.kv, 2 * d.f, d.d};
    const size_t cols[] = {d.d, d.d, d.d, d.f > d.q ? d.f : d.q};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (!mul_ok(rows[i], cols[i], &t) || !mul_ok(t, sizeof(float), &t) ||
            t > SIZE_MAX / 4)
            return curate_error_set(err, CURATE_ERR_RANGE, "model tensors are too large");
    return CURATE_OK;
}

static void *keep_block(curate_model *m, void *p)
{
    if (!p)
        return NULL;
    if (m->n_blocks == m->cap_blocks) {
        size_t cap = m->cap_blocks ? m->cap_blocks * 2 : 64;
        void **nb = realloc(m->blocks, cap * sizeof *nb);
        if (!nb) {
            free(p);
            return NULL;
        }
        m->blocks = nb;
        m->cap_blocks = cap;
    }
    m->blocks[m->n_blocks++] = p;
    return p;
}

static float *zalloc_block(curate_model *m, size_t n)
{
    float *p = curate_falloc(n);
    if (!p)
        return NULL;
    memset(p, 0, n * sizeof(float));
    return keep_block(m, p);
}

void curate_model_free(curate_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_blocks; i++)
        free(m->blocks[i]);
    free(m->blocks);
    free(m->w.layers);
    free(m);
}

/*
 * Zeroed weights in blocks: wq|wk|wv and w_gate|w_up of a layer are
 * contiguous (the fast path multiplies each group at once), the two norms
 * of a layer share a block; each block is 64-byte aligned for BLAS.
 */
curate_model *curate_model_new(const curate_model_params *p, curate_error *err)
{
    if (curate_model_params_check(p, err) != CURATE_OK)
        return NULL;
    curate_model *m = calloc(1, sizeof *m);
    if (!m) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for the model");
        return NULL;
    }
    m->p = *p;
    curate_model_dims d = curate_model_dims_of(p);
    m->w.layers = calloc(p->n_layer, sizeof *m->w.layers);
    if (!m->w.layers)
        goto nomem;
    if (!(m->w.tok_embd = zalloc_block(m, d.V * d.d)))
        goto nomem;
    if (!(m->w.output_norm = zalloc_block(m, d.d)))
        goto nomem;
    if (p->tied_output)
        m->w.output = m->w.tok_embd;
    else if (!(m->w.output = zalloc_block(m, d.V * d.d)))
        goto nomem;
    for (uint32_t l = 0; l < p->n_layer; l++) {
        curate_layer_weights *L = &m->w.layers[l];
        float *qkv = zalloc_block(m, (d.q + 2 * d.kv) * d.d);
        float *gu = zalloc_block(m, 2 * d.f * d.d);
        float *norms = zalloc_block(m, 2 * d.d);
        if (!qkv || !gu || !norms)
            goto nomem;
        L->wq = qkv;
        L->wk = qkv + d.q * d.d;
        L->wv = L->wk + d.kv * d.d;
        L->w_gate = gu;
        L->w_up = gu + d.f * d.d;
        L->attn_norm = norms;
        L->ffn_norm = norms + d.d;
        if (!(L->wo = zalloc_block(m, d.d * d.q)))
            goto nomem;
        if (!(L->w_down = zalloc_block(m, d.d * d.f)))
            goto nomem;
        if (p->qkv_bias) {
            float *b = zalloc_block(m, d.q + 2 * d.kv);
            if (!b)
                goto nomem;
            L->bq = b;
            L->bk = b + d.q;
            L->bv = L->bk + d.kv;
        }
    }
    return m;
nomem:
    curate_model_free(m);
    curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for the model weights");
    return NULL;
}

const curate_model_params *curate_model_get_params(const curate_model *m) { return &m->p; }
const curate_model_weights *curate_model_weights_get(const curate_model *m) { return &m->w; }
curate_model_weights *curate_model_weights_mut(curate_model *m) { return &m->w; }

uint64_t curate_model_n_params(const curate_model *m)
{
    curate_model_dims d = curate_model_dims_of(&m->p);
    uint64_t per_layer = 2 * (uint64_t)d.d + (uint64_t)(d.q + 2 * d.kv) * d.d +
                         (uint64_t)d.d * d.q + 3 * (uint64_t)d.f * d.d;
    if (m->p.qkv_bias)
        per_layer += d.q + 2 * d.kv;
    uint64_t n = (uint64_t)d.V * d.d + d.d + per_layer * m->p.n_layer;
    if (!m->p.tied_output)
        n += (uint64_t)d.V * d.d;
    return n;
}

/* ---- loading ------------------------------------------------------------------ */

/* Read "ARCH.suffix" with the given reader. */
static void arch_key(char *buf, size_t size, const char *arch, const char *suffix)
{
    snprintf(buf, size, "%s.%s", arch, suffix);
}

/*
 * Once a tensor is converted its bytes in the file mapping are not needed
 * again: drop the whole pages inside it, so that the peak memory of a load
 * is about the F32 weights rather than the weights plus the whole file.
 * The mapping is private and read-only (curate_gguf_open), so this only
 * discards clean page-cache pages; pages shared with neighbouring tensors
 * are kept.  Purely an optimisation: errors are ignored.
 */
static void drop_pages(const void *data, uint64_t n_bytes)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || n_bytes > UINTPTR_MAX)
        return;
    uintptr_t a = (uintptr_t)data, b = a + (uintptr_t)n_bytes;
    uintptr_t lo = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t hi = b & ~((uintptr_t)page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static curate_status load_tensor(const curate_gguf *g, const char *name, uint32_t n_dims,
                                 uint64_t ne0, uint64_t ne1, float *dst, curate_error *err)
{
    uint64_t ne[2] = {ne0, ne1};
    const curate_gguf_tensor *t = curate_gguf_require_tensor(g, name, n_dims, ne, err);
    if (!t)
        return err ? err->code : CURATE_ERR_FORMAT;
    curate_status st = curate_gguf_tensor_to_f32(t, dst, (size_t)t->n_elements, err);
    if (st == CURATE_OK)
        drop_pages(t->data, t->n_bytes);
    return st;
}

static curate_status read_params(const curate_gguf *g, curate_model_params *p, curate_error *err)
{
    char key[96];
    const char *s;
    size_t len;
    curate_status st = curate_gguf_require_str(g, "general.architecture", &s, &len, err);
    if (st)
        return st;
    memset(p, 0, sizeof *p);
    if (len >= sizeof p->arch || memchr(s, 0, len))
        return curate_error_set(err, CURATE_ERR_UNSUPPORTED, "unsupported architecture '%.*s'",
                                (int)(len > 64 ? 64 : len), s);
    memcpy(p->arch, s, len);
    p->arch[len] = 0;
    const arch_info *ai = find_arch(p->arch);
    if (!ai)
        return curate_error_set(err, CURATE_ERR_UNSUPPORTED,
                                "unsupported architecture '%s' (supported: llama)", p->arch);
    p->rope_mode = ai->rope_mode;
    p->qkv_bias = ai->qkv_bias;

    struct {
        const char *suffix;
        uint32_t *out;
    } req[] = {
        {"context_length", &p->n_ctx_train},
        {"embedding_length", &p->n_embd},
        {"block_count", &p->n_layer},
        {"feed_forward_length", &p->n_ff},
        {"attention.head_count", &p->n_head},
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        arch_key(key, sizeof key, p->arch, req[i].suffix);
        if ((st = curate_gguf_require_u32(g, key, req[i].out, err)))
            return st;
    }
    /* Optional keys take llama.cpp's defaults: no head_count_kv means plain
     * multi-head attention, no rope.dimension_count rotates whole heads, no
     * rope.freq_base means Llama's 10000.  The RMSNorm epsilon has no safe
     * default (1e-5 and 1e-6 are both common), so it is required, as
     * llama.cpp requires it. */
    arch_key(key, sizeof key, p->arch, "attention.head_count_kv");
    if ((st = curate_gguf_get_u32(g, key, p->n_head, &p->n_head_kv, err)))
        return st;
    if (p->n_head == 0 || p->n_embd % p->n_head != 0)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "embedding length %u is not a multiple of %u heads", p->n_embd,
                                p->n_head);
    p->head_dim = p->n_embd / p->n_head;
    arch_key(key, sizeof key, p->arch, "rope.dimension_count");
    if ((st = curate_gguf_get_u32(g, key, p->head_dim, &p->n_rot, err)))
        return st;
    arch_key(key, sizeof key, p->arch, "rope.freq_base");
    if ((st = curate_gguf_get_f32(g, key, 10000.0f, &p->rope_freq_base, err)))
        return st;
    arch_key(key, sizeof key, p->arch, "attention.layer_norm_rms_epsilon");
    if ((st = curate_gguf_require_f32(g, key, &p->norm_eps, err)))
        return st;

    /* vocabulary size: three places may say it; they must agree */
    const curate_gguf_tensor *embd = curate_gguf_find_tensor(g, "token_embd.weight");
    if (!embd)
        return curate_error_set(err, CURATE_ERR_FORMAT, "missing tensor 'token_embd.weight'");
    if (embd->n_dims != 2 || embd->ne[0] != p->n_embd || embd->ne[1] == 0 ||
        embd->ne[1] > UINT32_MAX)
        return curate_error_set(err, CURATE_ERR_FORMAT,
                                "tensor 'token_embd.weight' has shape [%llu, %llu], expected "
                                "[%u, vocab]",
                                (unsigned long long)embd->ne[0], (unsigned long long)embd->ne[1],
                                p->n_embd);
    p->n_vocab = (uint32_t)embd->ne[1];
    uint32_t kv_vocab;
    arch_key(key, sizeof key, p->arch, "vocab_size");
    if ((st = curate_gguf_get_u32(g, key, p->n_vocab, &kv_vocab, err)))
        return st;
    if (kv_vocab != p->n_vocab)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "%s says %u but token_embd.weight has %u rows", key, kv_vocab,
                                p->n_vocab);
    const curate_gguf_value *toks = curate_gguf_get(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == CURATE_GGUF_TYPE_ARRAY && toks->len != p->n_vocab)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "tokenizer.ggml.tokens has %llu entries but token_embd.weight "
                                "has %u rows",
                                (unsigned long long)toks->len, p->n_vocab);

    /* Tokenizer keys the runtime uses.  add_bos_token defaults to true, as
     * llama.cpp does for SentencePiece ("llama") vocabularies; the ids are
     * only recorded here and compared with the tokenizer's later. */
    if ((st = curate_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", 1, &p->add_bos, err)))
        return st;
    uint32_t id;
    p->bos_id = p->eos_id = -1;
    if (curate_gguf_get(g, "tokenizer.ggml.bos_token_id")) {
        if ((st = curate_gguf_require_u32(g, "tokenizer.ggml.bos_token_id", &id, err)))
            return st;
        if (id >= p->n_vocab)
            return curate_error_set(err, CURATE_ERR_MODEL, "BOS id %u outside the vocabulary", id);
        p->bos_id = (int32_t)id;
    }
    if (curate_gguf_get(g, "tokenizer.ggml.eos_token_id")) {
        if ((st = curate_gguf_require_u32(g, "tokenizer.ggml.eos_token_id", &id, err)))
            return st;
        if (id >= p->n_vocab)
            return curate_error_set(err, CURATE_ERR_MODEL, "EOS id %u outside the vocabulary", id);
        p->eos_id = (int32_t)id;
    }
    /* llama.cpp's rule: without output.weight the embedding is the output */
    p->tied_output = curate_gguf_find_tensor(g, "output.weight") == NULL;
    return curate_model_params_check(p, err);
}

static curate_status load_weights(const curate_gguf *g, curate_model *m, curate_error *err)
{
    const curate_model_params *p = &m->p;
    curate_model_dims d = curate_model_dims_of(p);
    curate_model_weights *w = &m->w;
    curate_status st;
    if ((st = load_tensor(g, "token_embd.weight", 2, d.d, d.V, w->tok_embd, err)))
        return st;
    if ((st = load_tensor(g, "output_norm.weight", 1, d.d, 0, w->output_norm, err)))
        return st;
    if (!p->tied_output && (st = load_tensor(g, "output.weight", 2, d.d, d.V, w->output, err)))
        return st;
    char name[96];
    for (uint32_t l = 0; l < p->n_layer; l++) {
        curate_layer_weights *L = &w->layers[l];
        struct {
            const char *what;
            uint32_t n_dims;
            size_t ne0, ne1;
            float *dst;
        } list[] = {
            {"attn_norm.weight", 1, d.d, 0, L->attn_norm},
            {"attn_q.weight", 2, d.d, d.q, L->wq},
            {"attn_k.weight", 2, d.d, d.kv, L->wk},
            {"attn_v.weight", 2, d.d, d.kv, L->wv},
            {"attn_output.weight", 2, d.q, d.d, L->wo},
            {"ffn_norm.weight", 1, d.d, 0, L->ffn_norm},
            {"ffn_gate.weight", 2, d.d, d.f, L->w_gate},
            {"ffn_up.weight", 2, d.d, d.f, L->w_up},
            {"ffn_down.weight", 2, d.f, d.d, L->w_down},
            {"attn_q.bias", 1, d.q, 0, L->bq},
            {"attn_k.bias", 1, d.kv, 0, L->bk},
            {"attn_v.bias", 1, d.kv, 0, L->bv},
        };
        size_t n_list = sizeof list / sizeof list[0];
        if (!p->qkv_bias)
            n_list -= 3;
        for (size_t i = 0; i < n_list; i++) {
            snprintf(name, sizeof name, "blk.%u.%s", l, list[i].what);
            if ((st = load_tensor(g, name, list[i].n_dims, list[i].ne0, list[i].ne1, list[i].dst,
                                  err)))
                return st;
        }
    }
    return CURATE_OK;
}

/*
 * Parameters first (all keys checked before any large allocation), then
 * the weights; the GGUF handle is closed before returning so the model
 * owns nothing of the file.
 */
curate_model *curate_model_load(const char *path, curate_error *err)
{
    curate_gguf *g = curate_gguf_open(path, err);
    if (!g)
        return NULL;
    curate_model_params p;
    curate_model *m = NULL;
    curate_status st = read_params(g, &p, err);
    if (st == CURATE_OK) {
        m = curate_model_new(&p, err);
        if (m && load_weights(g, m, err) != CURATE_OK) {
            curate_model_free(m);
            m = NULL;
        }
    }
    curate_gguf_close(g);
    if (!m)
        curate_error_at(err, path, 0);
    return m;
}

curate_status curate_model_check_tokenizer(const curate_model *m, const curate_tokenizer *tok,
                                           curate_error *err)
{
    size_t n = curate_tokenizer_vocab_size(tok);
    if (n != m->p.n_vocab)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "tokenizer has %zu tokens but the model's vocabulary has %u "
                                "(wrong tokenizer for this model?)",
                                n, m->p.n_vocab);
    int32_t bos = curate_tokenizer_bos(tok), eos = curate_tokenizer_eos(tok);
    if (m->p.bos_id >= 0 && bos != m->p.bos_id)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "tokenizer BOS id %ld differs from the model's %ld", (long)bos,
                                (long)m->p.bos_id);
    if (m->p.eos_id >= 0 && eos != m->p.eos_id)
        return curate_error_set(err, CURATE_ERR_MODEL,
                                "tokenizer EOS id %ld differs from the model's %ld", (long)eos,
                                (long)m->p.eos_id);
    return CURATE_OK;
}

/* ---- shared by both forward passes ------------------------------------------ */

curate_status curate_model_check_tokens(const curate_model *m, const int32_t *tokens, size_t n,
                                        curate_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= m->p.n_vocab)
            return curate_error_set(err, CURATE_ERR_RANGE,
                                    "token %ld at position %zu is outside the vocabulary of %u",
                                    (long)tokens[i], i, m->p.n_vocab);
    return CURATE_OK;
}

/*
 * Angles in double: llama.cpp accumulates theta in float, but the
 * difference (a few 1e-5 rad at position 512) is far below what the
 * reference checks can see, and double keeps both of our passes exact to
 * each other.
 */
void curate_rope_tables(const curate_model_params *p, size_t n_pos, float *cos_t, float *sin_t)
{
    size_t half = p->n_rot / 2;
    for (size_t i = 0; i < half; i++) {
        double inv_freq = pow((double)p->rope_freq_base, -2.0 * (double)i / (double)p->n_rot);
        for (size_t pos = 0; pos < n_pos; pos++) {
            double a = (double)pos * inv_freq;
            cos_t[pos * half + i] = (float)cos(a);
            sin_t[pos * half + i] = (float)sin(a);
        }
    }
}

void curate_rope_apply(curate_rope_mode mode, size_t n_rot, float *x, const float *cos_row,
                       const float *sin_row)
{
    size_t half = n_rot / 2;
    if (mode == CURATE_ROPE_NORM) {
        for (size_t i = 0; i < half; i++) {
            float x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i] = x0 * cos_row[i] - x1 * sin_row[i];
            x[2 * i + 1] = x0 * sin_row[i] + x1 * cos_row[i];
        }
    } else {
        for (size_t i = 0; i < half; i++) {
            float x0 = x[i], x1 = x[i + half];
            x[i] = x0 * cos_row[i] - x1 * sin_row[i];
            x[i + half] = x0 * sin_row[i] + x1 * cos_row[i];
        }
    }
}
