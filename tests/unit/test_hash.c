/*
 * test_hash.c - the XXH3 wrappers against xxHash's published sanity
 * vectors, the streaming form against the one-shot form, hex output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "curate/hash.h"

/*
 * The vectors come from the xxHash project's self-test table
 * (cli/xsum_sanity_check.c upstream): inputs are prefixes of a buffer
 * filled by byte[i] = gen >> 56; gen *= PRIME64 starting at gen = PRIME32.
 * They are the reference values every XXH3 implementation must give.
 */
#define PRIME32 2654435761u
#define PRIME64 11400714785074694797ull

static unsigned char sanity[2400];

static int fill_sanity(void **state)
{
    (void)state;
    uint64_t gen = PRIME32;
    for (size_t i = 0; i < sizeof sanity; i++) {
        sanity[i] = (unsigned char)(gen >> 56);
        gen *= PRIME64;
    }
    return 0;
}

static const struct { size_t len; uint64_t seed; uint64_t h; } v64[] = {
    { 0, 0, 0x2D06800538D394C2ull },    { 0, PRIME64, 0xA8A6B918B2F0364Aull },
    { 1, 0, 0xC44BDFF4074EECDBull },    { 1, PRIME64, 0x032BE332DD766EF8ull },
    { 6, 0, 0x27B56A84CD2D7325ull },    { 6, PRIME64, 0x84589C116AB59AB9ull },
    { 12, 0, 0xA713DAF0DFBB77E7ull },   { 12, PRIME64, 0xE7303E1B2336DE0Eull },
    { 24, 0, 0xA3FE70BF9D3510EBull },   { 24, PRIME64, 0x850E80FC35BDD690ull },
    { 48, 0, 0x397DA259ECBA1F11ull },   { 48, PRIME64, 0xADC2CBAA44ACC616ull },
    { 80, 0, 0xBCDEFBBB2C47C90Aull },   { 80, PRIME64, 0xC6DD0CB699532E73ull },
    { 195, 0, 0xCD94217EE362EC3Aull },  { 195, PRIME64, 0xBA68003D370CB3D9ull },
    { 403, 0, 0xCDEB804D65C6DEA4ull },  { 403, PRIME64, 0x6259F6ECFD6443FDull },
    { 512, 0, 0x617E49599013CB6Bull },  { 512, PRIME64, 0x3CE457DE14C27708ull },
    { 2048, 0, 0xDD59E2C3A5F038E0ull }, { 2048, PRIME64, 0x66F81670669ABABCull },
    { 2367, 0, 0xCB37AEB9E5D361EDull }, { 2367, PRIME64, 0xD2DB3415B942B42Aull },
};

static const struct { size_t len; uint64_t seed; uint64_t lo, hi; } v128[] = {
    { 0, 0, 0x6001C324468D497Full, 0x99AA06D3014798D8ull },
    { 0, PRIME32, 0x5444F7869C671AB0ull, 0x92220AE55E14AB50ull },
    { 1, 0, 0xC44BDFF4074EECDBull, 0xA6CD5E9392000F6Aull },
    { 1, PRIME32, 0xB53D5557E7F76F8Dull, 0x89B99554BA22467Cull },
    { 6, 0, 0x3E7039BDDA43CFC6ull, 0x082AFE0B8162D12Aull },
    { 12, PRIME32, 0x9BE9F9A67F3C7DFBull, 0xD7E09D518A3405D3ull },
    { 24, 0, 0x1E7044D28B1B901Dull, 0x0CE966E4678D3761ull },
    { 48, PRIME32, 0x7BA3C3E453A1934Eull, 0x163ADDE36C072295ull },
    { 81, 0, 0x5E8BAFB9F95FB803ull, 0x4952F58181AB0042ull },
    { 222, PRIME32, 0xAE995BB8AF917A8Dull, 0x91820016621E97F1ull },
    { 403, PRIME64, 0x6259F6ECFD6443FDull, 0xBED311971E0BE8F2ull },
    { 512, 0, 0x617E49599013CB6Bull, 0x18D2D110DCC9BCA1ull },
    { 2048, PRIME32, 0x230D43F30206260Bull, 0x7FB03F7E7186C3EAull },
    { 2367, 0, 0xCB37AEB9E5D361EDull, 0xE89C0F6FF369B427ull },
};

static void test_hash64_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof v64 / sizeof v64[0]; i++) {
        uint64_t h = curate_hash64(v64[i].len ? sanity : NULL, v64[i].len, v64[i].seed);
        if (h != v64[i].h)
            fail_msg("XXH3-64 len %zu seed %llx: got %016llx want %016llx", v64[i].len,
                     (unsigned long long)v64[i].seed, (unsigned long long)h,
                     (unsigned long long)v64[i].h);
    }
}

static void test_hash128_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof v128 / sizeof v128[0]; i++) {
        curate_h128 h = curate_hash128(v128[i].len ? sanity : NULL, v128[i].len, v128[i].seed);
        if (h.lo != v128[i].lo || h.hi != v128[i].hi)
            fail_msg("XXH3-128 len %zu: got %016llx%016llx", v128[i].len,
                     (unsigned long long)h.hi, (unsigned long long)h.lo);
        curate_h128 want = { v128[i].lo, v128[i].hi };
        assert_true(curate_h128_equal(h, want));
    }
    /* Equality looks at both halves. */
    curate_h128 a = { 1, 2 }, b = { 1, 3 }, c = { 0, 2 };
    assert_false(curate_h128_equal(a, b));
    assert_false(curate_h128_equal(a, c));
}

static void test_hex(void **state)
{
    (void)state;
    char h64[17], h128[33];
    assert_string_equal(curate_hash64_hex(0x2D06800538D394C2ull, h64), "2d06800538d394c2");
    assert_string_equal(curate_hash64_hex(0x1ull, h64), "0000000000000001");
    curate_h128 e = curate_hash128("", 0, 0);
    /* xxhsum prints XXH128 high half first. */
    assert_string_equal(curate_h128_hex(e, h128), "99aa06d3014798d86001c324468d497f");
}

static void test_streaming_matches_oneshot(void **state)
{
    (void)state;
    curate_error err;
    curate_hasher *h = curate_hasher_init(&err);
    assert_non_null(h);
    const size_t lens[] = { 0, 1, 3, 17, 64, 129, 240, 241, 1000, 2367 };
    const uint64_t seeds[] = { 0, 1, PRIME64 };
    for (size_t si = 0; si < 3; si++) {
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            size_t len = lens[li];
            /* Feed in uneven pieces (1, 2, 3, ... bytes). */
            curate_hasher_reset(h, seeds[si]);
            size_t pos = 0, piece = 1;
            while (pos < len) {
                size_t k = piece < len - pos ? piece : len - pos;
                curate_hasher_update(h, sanity + pos, k);
                pos += k;
                piece++;
            }
            curate_hasher_update(h, NULL, 0);
            assert_true(curate_hasher_digest64(h) == curate_hash64(sanity, len, seeds[si]));
            assert_true(curate_h128_equal(curate_hasher_digest128(h),
                                          curate_hash128(sanity, len, seeds[si])));
        }
    }
    /* The reset really starts over. */
    curate_hasher_reset(h, 0);
    curate_hasher_update(h, "abc", 3);
    curate_hasher_reset(h, 0);
    assert_true(curate_hasher_digest64(h) == 0x2D06800538D394C2ull);
    curate_hasher_free(h);
    curate_hasher_free(NULL);
}

static void test_seed_and_input_sensitivity(void **state)
{
    (void)state;
    /* Different seeds and one flipped bit give different values. */
    uint64_t a = curate_hash64("near duplicate", 14, 0);
    uint64_t b = curate_hash64("near duplicate", 14, 1);
    uint64_t c = curate_hash64("near duplicatf", 14, 0);
    assert_true(a != b && a != c && b != c);
    curate_h128 x = curate_hash128("near duplicate", 14, 0);
    curate_h128 y = curate_hash128("near duplicatf", 14, 0);
    assert_false(curate_h128_equal(x, y));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash64_vectors),
        cmocka_unit_test(test_hash128_vectors),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_streaming_matches_oneshot),
        cmocka_unit_test(test_seed_and_input_sensitivity),
    };
    return cmocka_run_group_tests(tests, fill_sanity, NULL);
}
