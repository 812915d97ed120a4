/*
 * test_packing.c - the quantizer loader replays (curate/packing.h).
 *
 * The reference here works token by token, the way the tools do: it builds
 * each sample as an array of labels (the record index, or -1 for BOS),
 * concatenates, cuts, truncates and overwrites exactly as described, and
 * then counts which record's tokens are left.  curate_pack_simulate does
 * the same with arithmetic on counts; the two must agree on every field
 * over thousands of random sets, and a few small cases are spelled out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/packing.h"

typedef struct labels {
    long *v;
    size_t n, cap;
} labels;

static void push(labels *l, long x)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    l->v[l->n++] = x;
}

typedef struct ref_result {
    int fails;
    uint64_t kept[64];   /* per record */
    uint64_t units;
} ref_result;

/* Token-level reference. */
static void reference(curate_packer p, const uint64_t *tok, size_t n, const curate_pack_opts *o,
                      ref_result *out)
{
    memset(out, 0, sizeof *out);
    labels s = {0}, cat = {0};
    const uint64_t ctx = o->ctx;
    switch (p) {
    case CURATE_PACK_LLAMA_IMATRIX:
        if (o->bos)
            push(&s, -1);
        for (size_t i = 0; i < n; i++)
            for (uint64_t k = 0; k < tok[i]; k++)
                push(&s, (long)i);
        if (s.n < 2 * ctx) {
            out->fails = 1;
            break;
        }
        out->units = s.n / ctx;
        for (uint64_t c = 0; c < out->units; c++) {
            long *chunk = s.v + c * ctx;
            if (o->bos)
                chunk[0] = -1;
            for (uint64_t k = 0; k < ctx; k++)
                if (chunk[k] >= 0)
                    out->kept[chunk[k]]++;
        }
        break;
    case CURATE_PACK_AUTOAWQ: {
        uint64_t accepted = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t len = tok[i] + (o->bos ? 1 : 0);
            if (len > ctx || len == 0)
                continue;
            if (o->bos)
                push(&cat, -1);
            for (uint64_t k = 0; k < tok[i]; k++)
                push(&cat, (long)i);
            if (++accepted == o->awq_max_samples)
                break; /* AutoAWQ stops collecting here */
        }
        out->units = cat.n / ctx;
        out->fails = out->units == 0;
        for (size_t k = 0; k < out->units * ctx; k++)
            if (cat.v[k] >= 0)
                out->kept[cat.v[k]]++;
        break;
    }
    case CURATE_PACK_AUTOROUND:
        for (size_t i = 0; i < n; i++) {
            labels ids = {0};
            if (o->bos)
                push(&ids, -1);
            for (uint64_t k = 0; k < tok[i]; k++)
                push(&ids, (long)i);
            int keep = ids.n >= ctx && (!o->autoround_nsamples || out->units < o->autoround_nsamples);
            if (keep) {
                out->units++;
                for (size_t k = 0; k < ctx; k++) /* truncation to seqlen */
                    if (ids.v[k] >= 0)
                        out->kept[i]++;
            }
            free(ids.v);
        }
        out->fails = out->units == 0;
        break;
    default:
        for (size_t i = 0; i < n; i++) {
            labels ids = {0};
            if (o->bos)
                push(&ids, -1);
            for (uint64_t k = 0; k < tok[i]; k++)
                push(&ids, (long)i);
            if (o->gptq_max_positions && ids.n > o->gptq_max_positions)
                ids.n = o->gptq_max_positions;
            if (ids.n > o->gptq_min_length) {
                out->units++;
                for (size_t k = 0; k < ids.n; k++)
                    if (ids.v[k] >= 0)
                        out->kept[i]++;
            }
            free(ids.v);
        }
        out->fails = out->units == 0;
        break;
    }
    free(s.v);
    free(cat.v);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(uint64_t bound)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return bound ? rng_state % bound : 0;
}

static void compare(curate_packer p, const uint64_t *tok, size_t n, const curate_pack_opts *o)
{
    ref_result ref;
    reference(p, tok, n, o, &ref);
    curate_pack_result r;
    assert_int_equal(curate_pack_simulate(p, tok, n, o, &r), CURATE_OK);
    uint64_t used = 0, trunc = 0, kept = 0, dropped_tok = 0, trunc_tok = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += tok[i];
        if (ref.kept[i] > 0) {
            used++;
            kept += ref.kept[i];
            trunc_tok += tok[i] - ref.kept[i];
            trunc += ref.kept[i] < tok[i];
        } else {
            dropped_tok += tok[i];
        }
    }
    int ok = r.fails == ref.fails && r.samples_used == used && r.samples_truncated == trunc &&
             r.tokens_kept == kept && r.tokens_dropped == dropped_tok &&
             r.tokens_truncated == trunc_tok && r.samples_dropped == n - used;
    if (!ref.fails || p == CURATE_PACK_AUTOAWQ)
        ok = ok && r.units == ref.units;
    if (!ok) {
        fprintf(stderr, "%s ctx %llu bos %d n %zu:", curate_packer_name(p),
                (unsigned long long)o->ctx, o->bos, n);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %llu", (unsigned long long)tok[i]);
        fprintf(stderr, "\n  ref: fails %d used %llu trunc %llu kept %llu dropped %llu cut %llu units %llu\n"
                        "  got: fails %d used %llu trunc %llu kept %llu dropped %llu cut %llu units %llu\n",
                ref.fails, (unsigned long long)used, (unsigned long long)trunc,
                (unsigned long long)kept, (unsigned long long)dropped_tok,
                (unsigned long long)trunc_tok, (unsigned long long)ref.units, r.fails,
                (unsigned long long)r.samples_used, (unsigned long long)r.samples_truncated,
                (unsigned long long)r.tokens_kept, (unsigned long long)r.tokens_dropped,
                (unsigned long long)r.tokens_truncated, (unsigned long long)r.units);
    }
    assert_true(ok);
    /* The accounting identities of the header. */
    assert_int_equal(r.tokens_kept + r.tokens_dropped + r.tokens_truncated, sum);
    assert_int_equal(r.samples_used + r.samples_dropped, n);
    assert_int_equal(r.dropped_short + r.dropped_long + r.dropped_limit + r.dropped_tail +
                         r.dropped_empty,
                     r.samples_dropped);
    assert_true(r.bos_overwritten <= r.tokens_truncated);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    uint64_t tok[64];
    for (int iter = 0; iter < 20000; iter++) {
        curate_pack_opts o;
        curate_pack_opts_default(&o);
        o.ctx = 1 + rnd(40);
        o.bos = (int)rnd(2);
        o.awq_max_samples = rnd(3) ? rnd(10) : 0;
        o.autoround_nsamples = rnd(3) ? rnd(10) : 0;
        o.gptq_min_length = rnd(15);
        o.gptq_max_positions = rnd(2) ? rnd(60) : 0;
        size_t n = (size_t)rnd(40);
        for (size_t i = 0; i < n; i++)
            tok[i] = rnd(5) == 0 ? 0 : rnd(3 * o.ctx + 3);
        for (int p = 0; p < CURATE_PACK_COUNT_; p++)
            compare((curate_packer)p, tok, n, &o);
    }
}

static void test_examples(void **state)
{
    (void)state;
    curate_pack_opts o;
    curate_pack_opts_default(&o);
    o.ctx = 10;
    curate_pack_result r;
    /* imatrix: 1 + 6 + 9 + 4 = 20 tokens = 2 chunks; the second chunk
     * starts at stream position 10, inside record 1 (positions 7..15): one
     * of its tokens is overwritten by BOS; record 2 (16..19) is used. */
    const uint64_t a[] = {6, 9, 4};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_LLAMA_IMATRIX, a, 3, &o, &r), CURATE_OK);
    assert_int_equal(r.fails, 0);
    assert_int_equal(r.units, 2);
    assert_int_equal(r.tokens_kept, 18);
    assert_int_equal(r.bos_overwritten, 1);
    assert_int_equal(r.samples_truncated, 1);
    /* one token fewer: 19 < 2 x 10, llama-imatrix refuses the file */
    const uint64_t b[] = {6, 9, 3};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_LLAMA_IMATRIX, b, 3, &o, &r), CURATE_OK);
    assert_int_equal(r.fails, 1);
    assert_int_equal(r.tokens_kept, 0);
    assert_int_equal(r.samples_dropped, 3);

    /* AutoAWQ: 12 + BOS > 10 is skipped; 4+1 and 5+1 make 11 tokens, one
     * block of 10: the last token of the second sample falls off. */
    const uint64_t c[] = {12, 4, 5};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_AUTOAWQ, c, 3, &o, &r), CURATE_OK);
    assert_int_equal(r.dropped_long, 1);
    assert_int_equal(r.units, 1);
    assert_int_equal(r.tokens_kept, 8);
    assert_int_equal(r.tokens_truncated, 1);
    assert_int_equal(r.tokens_dropped, 12);
    /* max_calib_samples: only the first 2 accepted samples count */
    o.awq_max_samples = 2;
    const uint64_t d[] = {4, 4, 4, 4};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_AUTOAWQ, d, 4, &o, &r), CURATE_OK);
    assert_int_equal(r.dropped_limit, 2);
    assert_int_equal(r.units, 1);
    assert_int_equal(r.tokens_kept, 8);

    /* AutoRound: under seqlen is dropped, over is cut to seqlen. */
    const uint64_t e[] = {8, 9, 30};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_AUTOROUND, e, 3, &o, &r), CURATE_OK);
    assert_int_equal(r.dropped_short, 1); /* 8 + BOS < 10 */
    assert_int_equal(r.samples_used, 2);
    assert_int_equal(r.tokens_kept, 18);
    assert_int_equal(r.tokens_truncated, 21);
    const uint64_t f[] = {3, 5};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_AUTOROUND, f, 2, &o, &r), CURATE_OK);
    assert_int_equal(r.fails, 1);

    /* GPTQModel: 10 tokens or fewer (BOS included) are dropped. */
    const uint64_t g[] = {9, 10, 500};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_GPTQMODEL, g, 3, &o, &r), CURATE_OK);
    assert_int_equal(r.dropped_short, 1);
    assert_int_equal(r.tokens_kept, 510);
    o.bos = 0;
    assert_int_equal(curate_pack_simulate(CURATE_PACK_GPTQMODEL, g, 3, &o, &r), CURATE_OK);
    assert_int_equal(r.dropped_short, 2);
}

static void test_errors_and_names(void **state)
{
    (void)state;
    curate_pack_opts o;
    curate_pack_opts_default(&o);
    curate_pack_result r;
    const uint64_t t[] = {1};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_COUNT_, t, 1, &o, &r), CURATE_ERR_INVALID);
    assert_int_equal(curate_pack_simulate(CURATE_PACK_AUTOAWQ, NULL, 1, &o, &r), CURATE_ERR_INVALID);
    o.ctx = 0;
    assert_int_equal(curate_pack_simulate(CURATE_PACK_AUTOAWQ, t, 1, &o, &r), CURATE_ERR_INVALID);
    curate_pack_opts_default(&o);
    const uint64_t big[] = {UINT64_MAX, 1};
    assert_int_equal(curate_pack_simulate(CURATE_PACK_LLAMA_IMATRIX, big, 2, &o, &r), CURATE_ERR_RANGE);
    assert_int_equal(curate_pack_simulate(CURATE_PACK_GPTQMODEL, big, 1, &o, &r), CURATE_ERR_RANGE);
    /* n = 0: everything fails, nothing is counted */
    for (int p = 0; p < CURATE_PACK_COUNT_; p++) {
        assert_int_equal(curate_pack_simulate((curate_packer)p, NULL, 0, &o, &r), CURATE_OK);
        assert_int_equal(r.fails, 1);
        assert_non_null(curate_packer_name((curate_packer)p));
        assert_non_null(curate_packer_key((curate_packer)p));
    }
    assert_null(curate_packer_name(CURATE_PACK_COUNT_));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_errors_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
