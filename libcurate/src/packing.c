/*
 * packing.c - replay of the calibration loaders of llama.cpp's imatrix,
 * AutoAWQ, AutoRound and GPTQModel on per-record token counts.
 *
 * The rules are described in curate/packing.h.  Each replay walks the
 * records in order and sorts every record token into kept, dropped or
 * truncated; the two concatenating consumers (imatrix, AutoAWQ) first find
 * where their stream is cut, then walk it again to see which records the
 * cut falls in.
 */
#include "curate/packing.h"

#include <string.h>

static const char *const names[CURATE_PACK_COUNT_] = {"llama.cpp imatrix", "AutoAWQ", "AutoRound",
                                                      "GPTQModel"};
static const char *const keys[CURATE_PACK_COUNT_] = {"llama_imatrix", "autoawq", "autoround",
                                                     "gptqmodel"};

const char *curate_packer_name(curate_packer p)
{
    return (unsigned)p < CURATE_PACK_COUNT_ ? names[p] : NULL;
}

const char *curate_packer_key(curate_packer p)
{
    return (unsigned)p < CURATE_PACK_COUNT_ ? keys[p] : NULL;
}

void curate_pack_opts_default(curate_pack_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->ctx = 512;
    opts->bos = 1;
    opts->awq_max_samples = 128;
    opts->autoround_nsamples = 128;
    opts->gptq_min_length = 10;
    opts->gptq_max_positions = 0;
}

/* a += b, failing on overflow. */
static int add_u64(uint64_t *a, uint64_t b)
{
    if (*a > UINT64_MAX - b)
        return 0;
    *a += b;
    return 1;
}

static void drop(curate_pack_result *r, uint64_t t, uint64_t *reason)
{
    r->samples_dropped++;
    r->tokens_dropped += t;
    (*reason)++;
}

/* A used record keeping t - lost of its t tokens. */
static void use(curate_pack_result *r, uint64_t t, uint64_t lost)
{
    r->samples_used++;
    r->tokens_kept += t - lost;
    r->tokens_truncated += lost;
    if (lost)
        r->samples_truncated++;
}

static curate_status imatrix(const uint64_t *tok, size_t n, const curate_pack_opts *o,
                             curate_pack_result *r)
{
    const uint64_t b = o->bos ? 1 : 0, ctx = o->ctx;
    uint64_t total = b;
    for (size_t i = 0; i < n; i++)
        if (!add_u64(&total, tok[i]))
            return CURATE_ERR_RANGE;
    r->stream_tokens = total;
    r->unit_tokens = ctx;
    if (ctx > UINT64_MAX / 2 || total < 2 * ctx) {
        r->fails = 1;
        for (size_t i = 0; i < n; i++)
            drop(r, tok[i], tok[i] ? &r->dropped_tail : &r->dropped_empty);
        return CURATE_OK;
    }
    const uint64_t chunks = total / ctx, cut = chunks * ctx;
    r->units = chunks;
    uint64_t pos = b;
    for (size_t i = 0; i < n; i++) {
        const uint64_t t = tok[i], s = pos, e = pos + t;
        pos = e;
        if (t == 0) {
            drop(r, 0, &r->dropped_empty);
            continue;
        }
        if (s >= cut) {
            drop(r, t, &r->dropped_tail);
            continue;
        }
        uint64_t lost = e > cut ? e - cut : 0, over = 0;
        /* chunk starts k x ctx (k >= 1) inside the kept part [s, min(e, cut)) */
        uint64_t lo = s > ctx ? s : ctx, hi = e < cut ? e : cut;
        if (b && lo < hi)
            over = (hi - 1) / ctx - (lo - 1) / ctx;
        if (lost + over == t) {
            drop(r, t, &r->dropped_tail);
            continue;
        }
        r->bos_overwritten += over;
        use(r, t, lost + over);
    }
    return CURATE_OK;
}

static curate_status autoawq(const uint64_t *tok, size_t n, const curate_pack_opts *o,
                             curate_pack_result *r)
{
    const uint64_t b = o->bos ? 1 : 0, ctx = o->ctx;
    /* Pass 1: which samples are accepted, and the length of the
     * concatenation.  A record's state: 0 accepted, else its drop reason. */
    uint64_t accepted = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t len = tok[i] + b;
        if (tok[i] > UINT64_MAX - b)
            return CURATE_ERR_RANGE;
        if (len > ctx || len == 0 || (o->awq_max_samples && accepted >= o->awq_max_samples))
            continue;
        accepted++;
        if (!add_u64(&total, len))
            return CURATE_ERR_RANGE;
    }
    const uint64_t blocks = total / ctx, cut = blocks * ctx;
    r->units = blocks;
    r->unit_tokens = ctx;
    r->stream_tokens = total;
    r->fails = blocks == 0;
    /* Pass 2: the same decisions, now with positions in the concatenation. */
    uint64_t pos = 0;
    accepted = 0;
    for (size_t i = 0; i < n; i++) {
        const uint64_t t = tok[i], len = t + b;
        if (len > ctx) {
            drop(r, t, &r->dropped_long);
            continue;
        }
        if (len == 0) {
            drop(r, 0, &r->dropped_empty);
            continue;
        }
        if (o->awq_max_samples && accepted >= o->awq_max_samples) {
            drop(r, t, &r->dropped_limit);
            continue;
        }
        accepted++;
        const uint64_t s = pos + b, e = pos + len; /* the record's own tokens */
        pos = e;
        if (t == 0)
            drop(r, 0, &r->dropped_empty);
        else if (s >= cut)
            drop(r, t, &r->dropped_tail);
        else
            use(r, t, e > cut ? e - cut : 0);
    }
    return CURATE_OK;
}

static curate_status autoround(const uint64_t *tok, size_t n, const curate_pack_opts *o,
                               curate_pack_result *r)
{
    const uint64_t b = o->bos ? 1 : 0, ctx = o->ctx;
    r->unit_tokens = ctx;
    for (size_t i = 0; i < n; i++) {
        const uint64_t t = tok[i];
        if (t > UINT64_MAX - b)
            return CURATE_ERR_RANGE;
        if (t + b < ctx) {
            drop(r, t, t ? &r->dropped_short : &r->dropped_empty);
            continue;
        }
        if (o->autoround_nsamples && r->units >= o->autoround_nsamples) {
            drop(r, t, &r->dropped_limit);
            continue;
        }
        r->units++; /* fed, even when seqlen leaves room for BOS only */
        if (ctx <= b)
            drop(r, t, t ? &r->dropped_short : &r->dropped_empty);
        else
            use(r, t, t + b - ctx);
    }
    r->stream_tokens = r->units * ctx;
    r->fails = r->units == 0;
    return CURATE_OK;
}

static curate_status gptqmodel(const uint64_t *tok, size_t n, const curate_pack_opts *o,
                               curate_pack_result *r)
{
    const uint64_t b = o->bos ? 1 : 0, maxpos = o->gptq_max_positions;
    for (size_t i = 0; i < n; i++) {
        const uint64_t t = tok[i];
        if (t > UINT64_MAX - b)
            return CURATE_ERR_RANGE;
        uint64_t len = t + b, lost = 0;
        if (maxpos && len > maxpos) {
            lost = len - maxpos;
            len = maxpos;
        }
        if (len <= o->gptq_min_length) {
            drop(r, t, t ? &r->dropped_short : &r->dropped_empty);
            continue;
        }
        r->units++;
        if (!add_u64(&r->stream_tokens, len))
            return CURATE_ERR_RANGE;
        if (lost >= t) /* trimmed down to its BOS */
            drop(r, t, t ? &r->dropped_short : &r->dropped_empty);
        else
            use(r, t, lost);
    }
    r->fails = r->units == 0;
    return CURATE_OK;
}

curate_status curate_pack_simulate(curate_packer p, const uint64_t *tokens, size_t n,
                                   const curate_pack_opts *opts, curate_pack_result *out)
{
    if (!opts || !out || (n && !tokens) || opts->ctx == 0 || (unsigned)p >= CURATE_PACK_COUNT_)
        return CURATE_ERR_INVALID;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        if (!add_u64(&sum, tokens[i]))
            return CURATE_ERR_RANGE;
    curate_pack_result r;
    memset(&r, 0, sizeof r);
    curate_status st;
    switch (p) {
    case CURATE_PACK_LLAMA_IMATRIX: st = imatrix(tokens, n, opts, &r); break;
    case CURATE_PACK_AUTOAWQ: st = autoawq(tokens, n, opts, &r); break;
    case CURATE_PACK_AUTOROUND: st = autoround(tokens, n, opts, &r); break;
    default: st = gptqmodel(tokens, n, opts, &r); break;
    }
    if (st == CURATE_OK)
        *out = r;
    return st;
}
