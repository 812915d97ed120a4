/*
 * calibrate.c - the bookkeeping half of the model stage: token sequences,
 * packing a calibration set (with an account of every record token),
 * evaluation chunks, the list of weight matrices and their selection by
 * pattern, model copies, verdicts.  The parts that run a model are in
 * calibrate_collect.c, calibrate_quant.c, calibrate_act.c and
 * calibrate_compare.c.
 */
#include "curate/calibrate.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sequences ------------------------------------------------------------- */

void curate_seqs_init(curate_seqs *s)
{
    memset(s, 0, sizeof *s);
}

void curate_seqs_release(curate_seqs *s)
{
    free(s->ids);
    free(s->start);
    free(s->first);
    free(s->tag);
    curate_seqs_init(s);
}

void curate_seqs_reset(curate_seqs *s)
{
    s->n = 0;
    s->max_len = 0;
    if (s->start)
        s->start[0] = 0;
}

/* Grow an array to hold need elements of size sz (doubling). */
static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 1;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return 0;
        c *= 2;
    }
    if (c > SIZE_MAX / sz)
        return 0;
    void *q = realloc(*p, c * sz);
    if (!q)
        return 0;
    *p = q;
    *cap = c;
    return 1;
}

curate_status curate_seqs_add(curate_seqs *s, const int32_t *ids, size_t len, size_t first,
                              uint64_t tag, curate_error *err)
{
    if (!ids || len == 0 || first >= len)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "a sequence needs tokens and a first scored position inside it");
    size_t used = s->n ? s->start[s->n] : 0;
    if (len > SIZE_MAX - used || s->n > SIZE_MAX - 2)
        return curate_error_set(err, CURATE_ERR_RANGE, "too many tokens");
    /* start, first and tag grow together: they share the capacity s->cap,
     * so each is grown from the same old capacity */
    size_t cap = s->cap, c1 = cap, c2 = cap;
    if (!grow((void **)&s->start, &cap, s->n + 2, sizeof *s->start) ||
        !grow((void **)&s->first, &c1, s->n + 2, sizeof *s->first) ||
        !grow((void **)&s->tag, &c2, s->n + 2, sizeof *s->tag) ||
        !grow((void **)&s->ids, &s->cap_ids, used + len, sizeof *s->ids))
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for token sequences");
    s->cap = cap;
    if (s->n == 0)
        s->start[0] = 0;
    memcpy(s->ids + used, ids, len * sizeof *ids);
    s->first[s->n] = first;
    s->tag[s->n] = tag;
    s->start[s->n + 1] = used + len;
    s->n++;
    if (len > s->max_len)
        s->max_len = len;
    return CURATE_OK;
}

uint64_t curate_seqs_tokens(const curate_seqs *s)
{
    return s->n ? (uint64_t)s->start[s->n] : 0;
}

uint64_t curate_seqs_scored(const curate_seqs *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += curate_seqs_len(s, i) - 1 - s->first[i];
    return n;
}

/* ---- packing ------------------------------------------------------------------ */

const char *curate_calib_pack_name(curate_calib_pack p)
{
    switch (p) {
    case CURATE_CALIB_PACK_CONCAT: return "concat";
    case CURATE_CALIB_PACK_SAMPLE: return "sample";
    }
    return "?";
}

curate_status curate_calib_pack_parse(const char *name, curate_calib_pack *out,
                                      curate_error *err)
{
    if (name && strcmp(name, "concat") == 0)
        *out = CURATE_CALIB_PACK_CONCAT;
    else if (name && strcmp(name, "sample") == 0)
        *out = CURATE_CALIB_PACK_SAMPLE;
    else
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "unknown packing '%s' (choose from concat, sample)",
                                name ? name : "");
    return CURATE_OK;
}

/* A used record keeping t - lost of its t tokens, or a dropped one. */
static void account(curate_calib_pack_stats *st, uint64_t t, uint64_t lost)
{
    if (lost >= t) {
        st->records_dropped++;
        st->tokens_dropped += t;
        return;
    }
    st->records_used++;
    st->tokens_used += t - lost;
    st->tokens_truncated += lost;
    if (lost)
        st->records_truncated++;
}

static curate_status pack_concat(const curate_seqs *rec, const size_t *pick, size_t n_pick,
                                 size_t ctx, int32_t bos, curate_seqs *out,
                                 curate_calib_pack_stats *st, curate_error *err)
{
    const uint64_t b = bos >= 0 ? 1 : 0;
    uint64_t total = b;
    for (size_t i = 0; i < n_pick; i++)
        total += curate_seqs_len(rec, pick ? pick[i] : i);
    const uint64_t n_chunks = total / ctx, cut = n_chunks * ctx;
    if (n_chunks == 0)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "the calibration set is too small: %llu tokens (BOS included) "
                                "do not fill one chunk of %zu",
                                (unsigned long long)total, ctx);
    int32_t *chunk = malloc(ctx * sizeof *chunk);
    if (!chunk)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    /* Walk the stream once: fill chunks, and sort each record's tokens
     * into used, overwritten by a chunk's BOS, or past the cut. */
    size_t fill = 0;
    uint64_t pos = 0, made = 0;
    curate_status stt = CURATE_OK;
    if (b) {
        chunk[fill++] = bos;
        pos = 1;
    }
    for (size_t i = 0; i < n_pick && stt == CURATE_OK; i++) {
        size_t r = pick ? pick[i] : i;
        const int32_t *ids = rec->ids + rec->start[r];
        uint64_t t = curate_seqs_len(rec, r), lost = 0;
        for (uint64_t k = 0; k < t; k++, pos++) {
            if (pos >= cut) {
                lost += t - k;
                pos += t - k;
                break;
            }
            int32_t id = ids[k];
            if (fill == 0 && b) { /* a chunk's first token becomes BOS */
                id = bos;
                lost++;
            }
            chunk[fill++] = id;
            if (fill == ctx) {
                stt = curate_seqs_add(out, chunk, ctx, ctx - 1, made++, err);
                fill = 0;
                if (stt)
                    break;
            }
        }
        account(st, t, lost);
    }
    free(chunk);
    if (stt)
        return stt;
    st->sequences = made;
    st->bos = b * made;
    return CURATE_OK;
}

static curate_status pack_sample(const curate_seqs *rec, const size_t *pick, size_t n_pick,
                                 size_t ctx, int32_t bos, curate_seqs *out,
                                 curate_calib_pack_stats *st, curate_error *err)
{
    const size_t b = bos >= 0 ? 1 : 0;
    int32_t *seq = malloc(ctx * sizeof *seq);
    if (!seq)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    curate_status stt = CURATE_OK;
    uint64_t made = 0;
    for (size_t i = 0; i < n_pick; i++) {
        size_t r = pick ? pick[i] : i;
        size_t t = curate_seqs_len(rec, r), keep = t < ctx - b ? t : ctx - b;
        if (b)
            seq[0] = bos;
        memcpy(seq + b, rec->ids + rec->start[r], keep * sizeof *seq);
        stt = curate_seqs_add(out, seq, keep + b, keep + b - 1, r, err);
        if (stt)
            break;
        made++;
        account(st, t, t - keep);
    }
    free(seq);
    if (stt)
        return stt;
    if (made == 0)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "the calibration set has no record with tokens");
    st->sequences = made;
    st->bos = b * made;
    return CURATE_OK;
}

curate_status curate_calib_pack_records(const curate_seqs *records, uint64_t n_empty,
                                        const size_t *pick, size_t n_pick,
                                        curate_calib_pack mode, size_t ctx, int32_t bos,
                                        curate_seqs *out, curate_calib_pack_stats *st,
                                        curate_error *err)
{
    if (!records || !out || !st)
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to packing");
    if (ctx < 2)
        return curate_error_set(err, CURATE_ERR_INVALID, "a context of %zu tokens is too short",
                                ctx);
    if (!pick)
        n_pick = records->n;
    for (size_t i = 0; pick && i < n_pick; i++)
        if (pick[i] >= records->n)
            return curate_error_set(err, CURATE_ERR_INVALID,
                                    "record index %zu is out of range (%zu records)", pick[i],
                                    records->n);
    memset(st, 0, sizeof *st);
    st->records = n_pick + n_empty;
    st->records_empty = n_empty;
    st->records_dropped = n_empty;
    for (size_t i = 0; i < n_pick; i++)
        st->tokens += curate_seqs_len(records, pick ? pick[i] : i);
    curate_status stt;
    if (mode == CURATE_CALIB_PACK_CONCAT)
        stt = pack_concat(records, pick, n_pick, ctx, bos, out, st, err);
    else if (mode == CURATE_CALIB_PACK_SAMPLE)
        stt = pack_sample(records, pick, n_pick, ctx, bos, out, st, err);
    else
        stt = curate_error_set(err, CURATE_ERR_INVALID, "unknown packing mode");
    st->model_tokens = st->tokens_used + st->bos;
    return stt;
}

void curate_calib_pick(curate_rng *rng, size_t n, size_t k, size_t *out)
{
    if (k > n)
        k = n;
    if (k == 0)
        return;
    /* Fisher-Yates over an index array; only the first k swaps matter.
     * Without memory for the array, fall back to selection sampling
     * (Knuth's algorithm S), which needs none. */
    size_t *idx = malloc(n * sizeof *idx);
    if (idx) {
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        for (size_t i = 0; i < k; i++) {
            size_t j = i + (size_t)curate_rng_below(rng, (uint64_t)(n - i));
            size_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        /* sort the k chosen ascending (counting through a bitmap would need
         * n bits; an insertion-friendly qsort is simpler) */
        memcpy(out, idx, k * sizeof *out);
        free(idx);
        for (size_t i = 1; i < k; i++) {
            size_t v = out[i], j = i;
            while (j > 0 && out[j - 1] > v) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = v;
        }
        return;
    }
    size_t chosen = 0;
    for (size_t i = 0; i < n && chosen < k; i++)
        if (curate_rng_below(rng, (uint64_t)(n - i)) < (uint64_t)(k - chosen))
            out[chosen++] = i;
}

/* ---- evaluation chunks ----------------------------------------------------------- */

curate_status curate_calib_eval_seqs(const int32_t *stream, size_t n, size_t ctx,
                                     curate_ppl_mode mode, int32_t bos, size_t max_chunks,
                                     curate_seqs *out, curate_error *err)
{
    if (!out || (!stream && n))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument");
    if (ctx < 2)
        return curate_error_set(err, CURATE_ERR_INVALID, "context of %zu tokens is too short",
                                ctx);
    const int full = mode == CURATE_PPL_FULL;
    /* the same limits and words as curate_ppl_tokens() */
    if (!full && n / 2 < ctx)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "%zu tokens are too few: perplexity with a context of %zu needs "
                                "at least %zu",
                                n, ctx, 2 * ctx);
    if (full && n < ctx)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "%zu tokens are too few: one chunk needs %zu", n, ctx);
    const size_t first = full ? 0 : ctx / 2;
    if (ctx - 1 - first == 0)
        return curate_error_set(err, CURATE_ERR_INVALID, "a context of %zu scores no tokens",
                                ctx);
    size_t n_chunks = n / ctx;
    if (max_chunks && n_chunks > max_chunks)
        n_chunks = max_chunks;
    int32_t *chunk = malloc(ctx * sizeof *chunk);
    if (!chunk)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    curate_status st = CURATE_OK;
    for (size_t k = 0; k < n_chunks && st == CURATE_OK; k++) {
        memcpy(chunk, stream + k * ctx, ctx * sizeof *chunk);
        if (bos >= 0)
            chunk[0] = bos;
        st = curate_seqs_add(out, chunk, ctx, first, k, err);
    }
    free(chunk);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    curate_linear_input input;
} block_mats[7] = {
    {"attn_q", CURATE_LIN_ATTN_QKV},     {"attn_k", CURATE_LIN_ATTN_QKV},
    {"attn_v", CURATE_LIN_ATTN_QKV},     {"attn_output", CURATE_LIN_ATTN_OUT},
    {"ffn_gate", CURATE_LIN_FFN_GATE_UP}, {"ffn_up", CURATE_LIN_FFN_GATE_UP},
    {"ffn_down", CURATE_LIN_FFN_DOWN},
};

/* Fill one list entry (when there is room). */
static void put_tensor(curate_calib_tensor *out, size_t cap, size_t n, const char *name,
                       uint32_t layer, curate_linear_input in, int has_input, size_t rows,
                       size_t cols)
{
    if (n >= cap)
        return;
    curate_calib_tensor *t = &out[n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->layer = layer;
    t->input = in;
    t->has_input = has_input;
    t->rows = rows;
    t->cols = cols;
}

size_t curate_calib_tensors(const curate_model *m, curate_calib_tensor *out, size_t cap)
{
    const curate_model_params *p = curate_model_get_params(m);
    size_t d = p->n_embd, f = p->n_ff, q = (size_t)p->n_head * p->head_dim,
           kv = (size_t)p->n_head_kv * p->head_dim;
    size_t n = 0;
    /* A tied embedding is the output matrix too: its input is observed
     * there.  An untied one is only looked up, never multiplied. */
    put_tensor(out, cap, n++, "token_embd.weight", p->n_layer, CURATE_LIN_OUTPUT,
               p->tied_output ? 1 : 0, p->n_vocab, d);
    const size_t rows[7] = {q, kv, kv, d, f, f, d};
    const size_t cols[7] = {d, d, d, q, d, d, f};
    char name[48];
    for (uint32_t l = 0; l < p->n_layer; l++)
        for (int k = 0; k < 7; k++) {
            snprintf(name, sizeof name, "blk.%u.%s.weight", (unsigned)l, block_mats[k].name);
            put_tensor(out, cap, n++, name, l, block_mats[k].input, 1, rows[k], cols[k]);
        }
    if (!p->tied_output)
        put_tensor(out, cap, n++, "output.weight", p->n_layer, CURATE_LIN_OUTPUT, 1,
                   p->n_vocab, d);
    return n;
}

const float *curate_calib_tensor_cdata(const curate_model *m, const curate_calib_tensor *t)
{
    const curate_model_weights *w = curate_model_weights_get(m);
    const curate_model_params *p = curate_model_get_params(m);
    if (strcmp(t->name, "token_embd.weight") == 0)
        return w->tok_embd;
    if (strcmp(t->name, "output.weight") == 0)
        return w->output;
    if (t->layer >= p->n_layer)
        return NULL;
    const curate_layer_weights *L = &w->layers[t->layer];
    const char *rest = strchr(t->name + 4, '.');
    if (!rest)
        return NULL;
    rest++;
    const float *const ptr[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
    for (int k = 0; k < 7; k++) {
        size_t len = strlen(block_mats[k].name);
        if (strncmp(rest, block_mats[k].name, len) == 0 && strcmp(rest + len, ".weight") == 0)
            return ptr[k];
    }
    return NULL;
}

float *curate_calib_tensor_data(curate_model *m, const curate_calib_tensor *t)
{
    /* the weights are the model's own mutable arrays; the const version
     * finds the pointer, this one hands it back writable */
    const float *p = curate_calib_tensor_cdata(m, t);
    curate_model_weights *w = curate_model_weights_mut(m);
    if (!p)
        return NULL;
    if (p == w->tok_embd)
        return w->tok_embd;
    if (p == w->output)
        return w->output;
    const curate_model_params *mp = curate_model_get_params(m);
    for (uint32_t l = 0; l < mp->n_layer; l++) {
        curate_layer_weights *L = &w->layers[l];
        float *const ptr[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
        for (int k = 0; k < 7; k++)
            if (ptr[k] == p)
                return ptr[k];
    }
    return NULL;
}

int curate_calib_selected(const curate_calib_select *sel, const char *name, const char **why)
{
    if (why)
        *why = NULL;
    int cand;
    if (!sel || sel->n_include == 0) {
        cand = strncmp(name, "blk.", 4) == 0;
    } else {
        cand = 0;
        for (size_t i = 0; i < sel->n_include && !cand; i++)
            cand = fnmatch(sel->include[i], name, 0) == 0;
    }
    if (!cand)
        return 0;
    for (size_t i = 0; sel && i < sel->n_exclude; i++)
        if (fnmatch(sel->exclude[i], name, 0) == 0) {
            if (why)
                *why = sel->exclude[i];
            return 0;
        }
    return 1;
}

/* ---- model copies -------------------------------------------------------------------- */

curate_model *curate_calib_model_copy(const curate_model *m, curate_error *err)
{
    const curate_model_params *p = curate_model_get_params(m);
    curate_model *c = curate_model_new(p, err);
    if (!c)
        return NULL;
    const curate_model_weights *s = curate_model_weights_get(m);
    curate_model_weights *d = curate_model_weights_mut(c);
    size_t dm = p->n_embd, f = p->n_ff, q = (size_t)p->n_head * p->head_dim,
           kv = (size_t)p->n_head_kv * p->head_dim, V = p->n_vocab;
    const size_t fl = sizeof(float);
    memcpy(d->tok_embd, s->tok_embd, V * dm * fl);
    memcpy(d->output_norm, s->output_norm, dm * fl);
    if (!p->tied_output)
        memcpy(d->output, s->output, V * dm * fl);
    for (uint32_t l = 0; l < p->n_layer; l++) {
        const curate_layer_weights *a = &s->layers[l];
        curate_layer_weights *b = &d->layers[l];
        memcpy(b->attn_norm, a->attn_norm, dm * fl);
        memcpy(b->ffn_norm, a->ffn_norm, dm * fl);
        memcpy(b->wq, a->wq, q * dm * fl);
        memcpy(b->wk, a->wk, kv * dm * fl);
        memcpy(b->wv, a->wv, kv * dm * fl);
        memcpy(b->wo, a->wo, dm * q * fl);
        memcpy(b->w_gate, a->w_gate, f * dm * fl);
        memcpy(b->w_up, a->w_up, f * dm * fl);
        memcpy(b->w_down, a->w_down, dm * f * fl);
        if (p->qkv_bias) {
            memcpy(b->bq, a->bq, q * fl);
            memcpy(b->bk, a->bk, kv * fl);
            memcpy(b->bv, a->bv, kv * fl);
        }
    }
    return c;
}

const char *curate_calib_verdict(double dppl_pct)
{
    if (isnan(dppl_pct))
        return "-";
    double a = fabs(dppl_pct);
    if (a < 1.0)
        return "excellent";
    if (a <= 3.0)
        return "acceptable";
    return "needs work";
}
