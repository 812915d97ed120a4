/*
 * fuzz_gguf.c - the GGUF reader on arbitrary bytes.
 *
 * Properties checked on every input:
 * - open either succeeds or fails with CURATE_ERR_FORMAT/UNSUPPORTED and a
 *   message (never a crash, never a read outside the input: the replay
 *   gives the input in an exact-size allocation for ASan);
 * - on success every accessor is safe: every value (nested arrays too) is
 *   walked and read with every typed getter, every key and tensor is found
 *   by its own name, every small tensor is converted to f32;
 * - what was read can be written again, and writing the re-read file once
 *   more gives the same bytes (the writer's layout is a fixed point).
 *
 * The seed corpus in corpus/fuzz_gguf was made by this file built with
 * -DFUZZ_GGUF_GEN_MAIN (see gen_main at the end):
 *   cc -std=c11 -DFUZZ_GGUF_GEN_MAIN -Ilibcurate/include tests/fuzz/fuzz_gguf.c \
 *      build/libcurate.a $(pkg-config --libs ...) -lm -o gen && ./gen tests/fuzz/corpus/fuzz_gguf
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate/gguf.h"
#include "curate/testmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_gguf: property failed: %s\n", what);
    abort();
}

static void walk(const curate_gguf_value *v, int depth)
{
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    int b;
    const char *s;
    size_t len;
    /* each getter either succeeds or says why; none may misbehave */
    (void)curate_gguf_value_u32(v, &u32, NULL);
    (void)curate_gguf_value_i32(v, &i32, NULL);
    (void)curate_gguf_value_u64(v, &u64, NULL);
    (void)curate_gguf_value_i64(v, &i64, NULL);
    (void)curate_gguf_value_f32(v, &f32, NULL);
    (void)curate_gguf_value_f64(v, &f64, NULL);
    (void)curate_gguf_value_bool(v, &b, NULL);
    if (curate_gguf_value_str(v, &s, &len, NULL) == CURATE_OK) {
        volatile unsigned char x = 0;
        for (size_t i = 0; i < len; i++)
            x ^= (unsigned char)s[i];
        (void)x;
    }
    if (v->type != CURATE_GGUF_TYPE_ARRAY)
        return;
    if (depth > 64)
        die("nesting deeper than the reader allows");
    for (uint64_t i = 0; i < v->len; i++) {
        curate_gguf_value e;
        if (curate_gguf_value_elem(v, i, &e, NULL) != CURATE_OK)
            die("array element not readable");
        walk(&e, depth + 1);
    }
    curate_gguf_value e;
    if (curate_gguf_value_elem(v, v->len, &e, NULL) != CURATE_ERR_RANGE)
        die("element past the end not refused");
}

/* Rewrite g; NULL when the writer refuses something the reader accepts
 * (longer names, n_dims 0: the writer is stricter, by design). */
static curate_buf *rewrite(const curate_gguf *g)
{
    curate_gguf_writer *w = curate_gguf_writer_new(NULL);
    if (!w)
        return NULL;
    if (curate_gguf_version(g) == 2)
        curate_gguf_writer_set_version(w, 2, NULL);
    int ok = 1;
    for (size_t i = 0; ok && i < curate_gguf_n_kv(g); i++)
        ok = curate_gguf_writer_add_value(w, curate_gguf_kv_key(g, i),
                                          curate_gguf_kv_value(g, i), NULL) == CURATE_OK;
    for (size_t i = 0; ok && i < curate_gguf_n_tensors(g); i++) {
        const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
        ok = curate_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data,
                                           (size_t)t->n_bytes, NULL) == CURATE_OK;
    }
    curate_buf *out = NULL;
    if (ok) {
        out = malloc(sizeof *out);
        if (out) {
            curate_buf_init(out);
            if (curate_gguf_writer_write_buf(w, out, NULL) != CURATE_OK) {
                curate_buf_release(out);
                free(out);
                out = NULL;
            }
        }
    }
    curate_gguf_writer_free(w);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    curate_error err;
    curate_gguf *g = curate_gguf_open_memory(data, size, "fuzz", &err);
    if (!g) {
        if (err.code != CURATE_ERR_FORMAT && err.code != CURATE_ERR_UNSUPPORTED &&
            err.code != CURATE_ERR_NOMEM)
            die("unexpected status");
        if (!err.message[0] || !err.has_offset || err.offset > size)
            die("error without message or offset");
        return 0;
    }
    for (size_t i = 0; i < curate_gguf_n_kv(g); i++) {
        const char *key = curate_gguf_kv_key(g, i);
        if (curate_gguf_find_key(g, key) != (int64_t)i)
            die("key not found by its name");
        walk(curate_gguf_kv_value(g, i), 0);
    }
    for (size_t i = 0; i < curate_gguf_n_tensors(g); i++) {
        const curate_gguf_tensor *t = curate_gguf_tensor_at(g, i);
        if (curate_gguf_find_tensor(g, t->name) != t)
            die("tensor not found by its name");
        if ((const unsigned char *)t->data + t->n_bytes > data + size)
            die("tensor data outside the input");
        if (t->n_elements > 0 && t->n_elements <= 65536) {
            float *x = malloc((size_t)t->n_elements * sizeof *x);
            curate_status want =
                curate_ggml_type_convertible(t->type) ? CURATE_OK : CURATE_ERR_UNSUPPORTED;
            if (x && curate_gguf_tensor_to_f32(t, x, (size_t)t->n_elements, NULL) != want)
                die("tensor conversion gave the wrong status");
            free(x);
        }
    }
    curate_buf *once = rewrite(g);
    if (once) {
        curate_gguf *g2 = curate_gguf_open_memory(once->data, once->len, "rewrite", &err);
        if (!g2)
            die("rewritten file does not open");
        if (curate_gguf_n_kv(g2) != curate_gguf_n_kv(g) ||
            curate_gguf_n_tensors(g2) != curate_gguf_n_tensors(g))
            die("rewritten file has other counts");
        curate_buf *twice = rewrite(g2);
        if (!twice || twice->len != once->len || memcmp(twice->data, once->data, once->len))
            die("rewriting is not a fixed point");
        curate_buf_release(twice);
        free(twice);
        curate_gguf_close(g2);
        curate_buf_release(once);
        free(once);
    }
    curate_gguf_close(g);
    return 0;
}

#ifdef FUZZ_GGUF_GEN_MAIN
/* Writes the seed corpus into the directory argv[1]. */
static void save(const char *dir, const char *name, const curate_buf *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
        die(path);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    curate_buf b;
    curate_gguf_writer *w;

    /* 1. a tiny llama test model with a vocabulary, Q8_0 weights */
    const char *tokens[8] = {"<unk>", "<s>", "</s>", "a", "b", "c", "\xe2\x96\x81", "ab"};
    curate_testmodel_config cfg;
    curate_testmodel_config_init(&cfg);
    cfg.dim = 32;
    cfg.n_layers = 1;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 1;
    cfg.ffn_dim = 32;
    cfg.vocab_size = 8;
    cfg.ctx_len = 16;
    cfg.tied_output = 1;
    cfg.weight_type = CURATE_GGML_TYPE_Q8_0;
    cfg.tokens = tokens;
    w = curate_gguf_writer_new(NULL);
    curate_testmodel_build(&cfg, w, NULL);
    curate_buf_init(&b);
    curate_gguf_writer_write_buf(w, &b, NULL);
    save(argv[1], "llama-q8_0.gguf", &b);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);

    /* 2. every metadata type and nested arrays, v2, alignment 8 */
    w = curate_gguf_writer_new(NULL);
    curate_gguf_writer_set_version(w, 2, NULL);
    curate_gguf_writer_set_alignment(w, 8, NULL);
    curate_gguf_writer_add_u8(w, "u8", 1, NULL);
    curate_gguf_writer_add_i8(w, "i8", -1, NULL);
    curate_gguf_writer_add_u16(w, "u16", 2, NULL);
    curate_gguf_writer_add_i16(w, "i16", -2, NULL);
    curate_gguf_writer_add_u32(w, "u32", 3, NULL);
    curate_gguf_writer_add_i32(w, "i32", -3, NULL);
    curate_gguf_writer_add_f32(w, "f32", 0.5f, NULL);
    curate_gguf_writer_add_bool(w, "bool", 1, NULL);
    curate_gguf_writer_add_str(w, "str", "text", 4, NULL);
    curate_gguf_writer_add_u64(w, "u64", 4, NULL);
    curate_gguf_writer_add_i64(w, "i64", -4, NULL);
    curate_gguf_writer_add_f64(w, "f64", 0.25, NULL);
    curate_gguf_writer_begin_array(w, "nested", CURATE_GGUF_TYPE_ARRAY, NULL);
    curate_gguf_writer_begin_array(w, NULL, CURATE_GGUF_TYPE_STRING, NULL);
    curate_gguf_writer_add_str(w, NULL, "x", 1, NULL);
    curate_gguf_writer_end_array(w, NULL);
    curate_gguf_writer_begin_array(w, NULL, CURATE_GGUF_TYPE_ARRAY, NULL);
    curate_gguf_writer_begin_array(w, NULL, CURATE_GGUF_TYPE_UINT16, NULL);
    curate_gguf_writer_add_u16(w, NULL, 7, NULL);
    curate_gguf_writer_end_array(w, NULL);
    curate_gguf_writer_end_array(w, NULL);
    curate_gguf_writer_end_array(w, NULL);
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)i - 30.0f;
    uint64_t ne1[1] = {64}, ne2[2] = {32, 2}, ne4[4] = {2, 2, 2, 2};
    curate_gguf_writer_add_tensor_f32(w, "f16", CURATE_GGML_TYPE_F16, 1, ne1, x, NULL);
    curate_gguf_writer_add_tensor_f32(w, "bf16", CURATE_GGML_TYPE_BF16, 4, ne4, x, NULL);
    curate_gguf_writer_add_tensor_f32(w, "q4_0", CURATE_GGML_TYPE_Q4_0, 2, ne2, x, NULL);
    curate_gguf_writer_add_tensor_f32(w, "q4_1", CURATE_GGML_TYPE_Q4_1, 2, ne2, x, NULL);
    curate_buf_init(&b);
    curate_gguf_writer_write_buf(w, &b, NULL);
    save(argv[1], "all-types-v2.gguf", &b);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);

    /* 3. vocabulary only, ending before the data padding */
    w = curate_gguf_writer_new(NULL);
    curate_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tokens, NULL, 8, NULL);
    curate_buf_init(&b);
    curate_gguf_writer_write_buf(w, &b, NULL);
    b.len -= 3; /* cut inside the padding: still valid without tensors */
    save(argv[1], "vocab-only.gguf", &b);
    curate_buf_release(&b);
    curate_gguf_writer_free(w);
    return 0;
}
#endif
