/*
 * minhash.c - shingles, MinHash signatures, LSH banding and index.
 *
 * The hot path is the signature: P permutations times the number of
 * shingles.  sign_scalar is the reference (blocks of eight independent
 * minima so the multiplies pipeline); sign_avx2 computes the same bits
 * four permutations per vector and is used when the CPU has AVX2
 * (tests/unit/test_minhash.c checks that they agree).  Neither allocates.
 */
#include "curate/minhash.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "curate/hash.h"
#include "minhash_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#else
#define HAVE_AVX2_PATH 0
#endif

/* ---- small mixers ---------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* murmur3's fmix64: every input bit reaches every output bit. */
static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    k *= 0xC4CEB9FE1A85EC53ull;
    k ^= k >> 33;
    return k;
}

/* ---- the signer -------------------------------------------------------------- */

struct curate_minhash {
    curate_minhash_opts opts;
    uint64_t word_seed;   /* seed of XXH3 for words / character spans */
    uint64_t *a;          /* [perm] multipliers */
    uint64_t *b;          /* [perm] addends */
    uint64_t *a_lo;       /* [perm] low and high halves of a, one per 64-bit */
    uint64_t *a_hi;       /*        lane, as the vector multiply wants them */
    uint32_t *keys;       /* scratch: shingle keys of the last text */
    size_t cap_keys;
};

void curate_minhash_opts_default(curate_minhash_opts *opts)
{
    opts->kind = CURATE_SHINGLE_WORD;
    opts->ngram = 3;
    opts->perm = 128;
    opts->seed = 0;
}

curate_minhash *curate_minhash_init(const curate_minhash_opts *opts, curate_error *err)
{
    if (!opts || (opts->kind != CURATE_SHINGLE_WORD && opts->kind != CURATE_SHINGLE_CHAR)) {
        curate_error_set(err, CURATE_ERR_INVALID, "unknown shingle kind");
        return NULL;
    }
    if (opts->ngram < 1 || opts->ngram > CURATE_MINHASH_MAX_NGRAM) {
        curate_error_set(err, CURATE_ERR_INVALID, "ngram must be 1..%u, not %u",
                         CURATE_MINHASH_MAX_NGRAM, opts->ngram);
        return NULL;
    }
    if (opts->perm < 1 || opts->perm > CURATE_MINHASH_MAX_PERM) {
        curate_error_set(err, CURATE_ERR_INVALID, "perm must be 1..%u, not %u",
                         CURATE_MINHASH_MAX_PERM, opts->perm);
        return NULL;
    }
    curate_minhash *mh = calloc(1, sizeof *mh);
    if (mh) {
        mh->a = malloc(opts->perm * sizeof *mh->a);
        mh->b = malloc(opts->perm * sizeof *mh->b);
        mh->a_lo = malloc(opts->perm * sizeof *mh->a_lo);
        mh->a_hi = malloc(opts->perm * sizeof *mh->a_hi);
    }
    if (!mh || !mh->a || !mh->b || !mh->a_lo || !mh->a_hi) {
        curate_minhash_free(mh);
        curate_error_set(err, CURATE_ERR_NOMEM, "cannot allocate a MinHash signer");
        return NULL;
    }
    mh->opts = *opts;
    uint64_t st = opts->seed;
    mh->word_seed = splitmix64(&st);
    for (unsigned i = 0; i < opts->perm; i++) {
        mh->a[i] = splitmix64(&st);
        mh->b[i] = splitmix64(&st);
        mh->a_lo[i] = mh->a[i] & 0xFFFFFFFFu;
        mh->a_hi[i] = mh->a[i] >> 32;
    }
    return mh;
}

void curate_minhash_free(curate_minhash *mh)
{
    if (!mh)
        return;
    free(mh->a);
    free(mh->b);
    free(mh->a_lo);
    free(mh->a_hi);
    free(mh->keys);
    free(mh);
}

const curate_minhash_opts *curate_minhash_options(const curate_minhash *mh)
{
    return &mh->opts;
}

/* Length of the Unicode White_Space character at p, or 0 if p does not
 * start one.  Only the code points listed in minhash.h. */
static inline size_t space_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80)
        return (c == ' ' || (c >= '\t' && c <= '\r')) ? 1 : 0;
    size_t left = (size_t)(end - p);
    if (c == 0xC2)
        return (left >= 2 && (p[1] == 0x85 || p[1] == 0xA0)) ? 2 : 0;
    if (left < 3)
        return 0;
    if (c == 0xE1)
        return (p[1] == 0x9A && p[2] == 0x80) ? 3 : 0;
    if (c == 0xE2) {
        if (p[1] == 0x80)
            return (p[2] <= 0x8A && p[2] >= 0x80) || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF
                       ? 3 : 0;
        return (p[1] == 0x81 && p[2] == 0x9F) ? 3 : 0;
    }
    if (c == 0xE3)
        return (p[1] == 0x80 && p[2] == 0x80) ? 3 : 0;
    return 0;
}

/* Make room for need keys in the scratch array. */
static curate_status reserve_keys(curate_minhash *mh, size_t need)
{
    if (need <= mh->cap_keys)
        return CURATE_OK;
    size_t cap = mh->cap_keys ? mh->cap_keys : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2 / sizeof(uint32_t))
            return CURATE_ERR_NOMEM;
        cap *= 2;
    }
    uint32_t *p = realloc(mh->keys, cap * sizeof *p);
    if (!p)
        return CURATE_ERR_NOMEM;
    mh->keys = p;
    mh->cap_keys = cap;
    return CURATE_OK;
}

/*
 * The key of the n word hashes ring[(start + k) % n], k = 0..n-1, in
 * order: a sum with a distinct odd multiplier per position (so a changed
 * word always changes the sum, and order matters), plus the count, folded
 * to 32 bits.  The products are independent, so this costs a few cycles,
 * not a chain of n dependent mixes.
 */
static inline uint32_t combine_words(const uint64_t *ring, unsigned n, unsigned start)
{
    uint64_t acc = (uint64_t)n * 0x9E3779B97F4A7C15ull;
    unsigned k = start;
    for (unsigned i = 0; i < n; i++) {
        acc += ring[k] * (0xD1B54A32D192ED03ull + 2ull * i);
        if (++k == n)
            k = 0;
    }
    acc ^= acc >> 32;
    acc *= 0xD6E8FEB86659FD93ull;
    return (uint32_t)(acc >> 32);
}

static curate_status shingle_words(curate_minhash *mh, const unsigned char *s, size_t len,
                                   size_t *count)
{
    const unsigned n = mh->opts.ngram;
    const unsigned char *p = s, *end = s + len;
    uint64_t ring[CURATE_MINHASH_MAX_NGRAM];
    size_t words = 0, out = 0;
    unsigned pos = 0; /* next ring slot */

    while (p < end) {
        /* Skip whitespace; ASCII bytes decide by a comparison, others
         * through space_len. */
        while (p < end) {
            if (*p < 0x80) {
                if (!(*p == ' ' || (*p >= '\t' && *p <= '\r')))
                    break;
                p++;
            } else {
                size_t k = space_len(p, end);
                if (!k)
                    break;
                p += k;
            }
        }
        if (p >= end)
            break;
        const unsigned char *w = p;
        while (p < end) {
            if (*p < 0x80) {
                if (*p == ' ' || (*p >= '\t' && *p <= '\r'))
                    break;
            } else if (space_len(p, end)) {
                break;
            }
            p++;
        }
        ring[pos] = curate_hash64(w, (size_t)(p - w), mh->word_seed);
        if (++pos == n)
            pos = 0;
        words++;
        if (words >= n) {
            /* Every word is at most one shingle: out < words <= len. */
            if (out >= mh->cap_keys && reserve_keys(mh, out + 1) != CURATE_OK)
                return CURATE_ERR_NOMEM;
            mh->keys[out++] = combine_words(ring, n, pos);
        }
    }
    if (words > 0 && words < n) {
        /* Fewer words than n: all of them, in ring[0..words), are the one
         * shingle. */
        if (reserve_keys(mh, 1) != CURATE_OK)
            return CURATE_ERR_NOMEM;
        mh->keys[out++] = combine_words(ring, (unsigned)words, 0);
    }
    *count = out;
    return CURATE_OK;
}

static curate_status shingle_chars(curate_minhash *mh, const unsigned char *s, size_t len,
                                   size_t *count)
{
    const unsigned n = mh->opts.ngram;
    /* starts[] rings the byte offsets of the last n character starts. */
    size_t starts[CURATE_MINHASH_MAX_NGRAM];
    size_t chars = 0, out = 0;
    unsigned pos = 0;
    size_t i = 0;
    while (i < len) {
        starts[pos] = i;
        if (++pos == n)
            pos = 0;
        i++;
        /* A character runs to the next byte that is not a continuation
         * byte (10xxxxxx). */
        while (i < len && (s[i] & 0xC0) == 0x80)
            i++;
        chars++;
        if (chars >= n) {
            size_t from = starts[pos]; /* oldest of the last n starts */
            if (out >= mh->cap_keys && reserve_keys(mh, out + 1) != CURATE_OK)
                return CURATE_ERR_NOMEM;
            mh->keys[out++] = (uint32_t)curate_hash64(s + from, i - from, mh->word_seed);
        }
    }
    if (chars > 0 && chars < n) {
        if (reserve_keys(mh, 1) != CURATE_OK)
            return CURATE_ERR_NOMEM;
        mh->keys[out++] = (uint32_t)curate_hash64(s, len, mh->word_seed);
    }
    *count = out;
    return CURATE_OK;
}

curate_status curate_minhash_shingles(curate_minhash *mh, const char *text, size_t len,
                                      const uint32_t **keys, size_t *count)
{
    size_t c = 0;
    curate_status st = mh->opts.kind == CURATE_SHINGLE_WORD
                           ? shingle_words(mh, (const unsigned char *)text, len, &c)
                           : shingle_chars(mh, (const unsigned char *)text, len, &c);
    *keys = mh->keys;
    *count = st == CURATE_OK ? c : 0;
    return st;
}

/* Permutation i of key x: the high half of a_i * x + b_i mod 2^64. */
static inline uint32_t perm_value(uint64_t a, uint64_t b, uint32_t x)
{
    return (uint32_t)((a * (uint64_t)x + b) >> 32);
}

/* Slots [from, P) by the portable method. */
static void sign_scalar_from(const curate_minhash *mh, unsigned from, const uint32_t *x,
                             size_t count, uint32_t *sig)
{
    const unsigned P = mh->opts.perm;
    const uint64_t *A = mh->a, *B = mh->b;
    unsigned i = from;
    /* Eight permutations at a time: eight independent running minima keep
     * the multiplier busy. */
    for (; i + 8 <= P; i += 8) {
        uint32_t m0 = UINT32_MAX, m1 = UINT32_MAX, m2 = UINT32_MAX, m3 = UINT32_MAX;
        uint32_t m4 = UINT32_MAX, m5 = UINT32_MAX, m6 = UINT32_MAX, m7 = UINT32_MAX;
        for (size_t j = 0; j < count; j++) {
            const uint32_t k = x[j];
            uint32_t v;
#define CURATE_MH_STEP(q)                                                                  \
    v = perm_value(A[i + q], B[i + q], k);                                                 \
    m##q = v < m##q ? v : m##q;
            CURATE_MH_STEP(0) CURATE_MH_STEP(1) CURATE_MH_STEP(2) CURATE_MH_STEP(3)
            CURATE_MH_STEP(4) CURATE_MH_STEP(5) CURATE_MH_STEP(6) CURATE_MH_STEP(7)
#undef CURATE_MH_STEP
        }
        sig[i] = m0; sig[i + 1] = m1; sig[i + 2] = m2; sig[i + 3] = m3;
        sig[i + 4] = m4; sig[i + 5] = m5; sig[i + 6] = m6; sig[i + 7] = m7;
    }
    for (; i < P; i++) {
        uint32_t m = UINT32_MAX;
        for (size_t j = 0; j < count; j++) {
            uint32_t v = perm_value(A[i], B[i], x[j]);
            m = v < m ? v : m;
        }
        sig[i] = m;
    }
}

void curate_minhash_sign_scalar_(const curate_minhash *mh, const uint32_t *keys, size_t count,
                                 uint32_t *sig)
{
    sign_scalar_from(mh, 0, keys, count, sig);
}

#if HAVE_AVX2_PATH
/*
 * Eight permutations per step in two vectors of four 64-bit lanes:
 * a * x = a_lo * x + (a_hi * x << 32) with two 32x32->64 multiplies, plus
 * b, shifted down 32; the result sits in the low half of each lane (high
 * half zero), so an unsigned 32-bit min keeps the running minimum.
 */
__attribute__((target("avx2"))) static unsigned sign_avx2(const curate_minhash *mh,
                                                          const uint32_t *x, size_t count,
                                                          uint32_t *sig)
{
    const unsigned P = mh->opts.perm;
    unsigned i = 0;
    for (; i + 8 <= P; i += 8) {
        const __m256i alo0 = _mm256_loadu_si256((const __m256i *)(const void *)(mh->a_lo + i));
        const __m256i alo1 = _mm256_loadu_si256((const __m256i *)(const void *)(mh->a_lo + i + 4));
        const __m256i ahi0 = _mm256_loadu_si256((const __m256i *)(const void *)(mh->a_hi + i));
        const __m256i ahi1 = _mm256_loadu_si256((const __m256i *)(const void *)(mh->a_hi + i + 4));
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)(mh->b + i));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(mh->b + i + 4));
        __m256i m0 = _mm256_set1_epi64x(0xFFFFFFFFll), m1 = m0;
        for (size_t j = 0; j < count; j++) {
            const __m256i k = _mm256_set1_epi64x((long long)x[j]);
            __m256i p0 = _mm256_add_epi64(_mm256_mul_epu32(alo0, k),
                                          _mm256_slli_epi64(_mm256_mul_epu32(ahi0, k), 32));
            __m256i p1 = _mm256_add_epi64(_mm256_mul_epu32(alo1, k),
                                          _mm256_slli_epi64(_mm256_mul_epu32(ahi1, k), 32));
            p0 = _mm256_srli_epi64(_mm256_add_epi64(p0, b0), 32);
            p1 = _mm256_srli_epi64(_mm256_add_epi64(p1, b1), 32);
            m0 = _mm256_min_epu32(m0, p0);
            m1 = _mm256_min_epu32(m1, p1);
        }
        uint64_t t[8];
        _mm256_storeu_si256((__m256i *)(void *)t, m0);
        _mm256_storeu_si256((__m256i *)(void *)(t + 4), m1);
        for (unsigned q = 0; q < 8; q++)
            sig[i + q] = (uint32_t)t[q];
    }
    return i;
}
#endif

/* -1 = not yet decided, else 1 when the AVX2 path runs. */
static int use_avx2 = -1;

int curate_minhash_simd_(int enable)
{
#if HAVE_AVX2_PATH
    int have = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    int have = 0;
#endif
    use_avx2 = enable < 0 ? have : (enable && have);
    return use_avx2;
}

void curate_minhash_sign_keys(const curate_minhash *mh, const uint32_t *keys, size_t count,
                              uint32_t *sig)
{
    if (use_avx2 < 0)
        curate_minhash_simd_(-1); /* benign race: every thread stores the same */
    unsigned done = 0;
#if HAVE_AVX2_PATH
    if (use_avx2)
        done = sign_avx2(mh, keys, count, sig);
#endif
    sign_scalar_from(mh, done, keys, count, sig);
}

curate_status curate_minhash_sign(curate_minhash *mh, const char *text, size_t len, uint32_t *sig,
                                  size_t *n_shingles)
{
    const uint32_t *k;
    size_t n;
    curate_status st = curate_minhash_shingles(mh, text, len, &k, &n);
    if (st != CURATE_OK)
        return st;
    curate_minhash_sign_keys(mh, k, n, sig);
    if (n_shingles)
        *n_shingles = n;
    return CURATE_OK;
}

double curate_minhash_similarity(const uint32_t *a, const uint32_t *b, unsigned perm)
{
    if (perm == 0)
        return 0.0;
    unsigned eq = 0;
    for (unsigned i = 0; i < perm; i++)
        eq += a[i] == b[i];
    return (double)eq / (double)perm;
}

/* ---- choosing bands and rows ------------------------------------------------ */

/* 1 - P(j): computed with log1p so that tiny j^r is not lost to 1 - x
 * rounding (otherwise every many-row banding would tie at zero). */
static double lsh_miss(double j, unsigned bands, unsigned rows)
{
    return exp((double)bands * log1p(-pow(j, (double)rows)));
}

double curate_lsh_probability(double j, unsigned bands, unsigned rows)
{
    return -expm1((double)bands * log1p(-pow(j, (double)rows)));
}

/* Simpson's rule for the false-positive or false-negative area. */
static double lsh_area(double lo, double hi, unsigned bands, unsigned rows, int negative)
{
    const unsigned steps = 256; /* even */
    double h = (hi - lo) / steps, sum = 0.0;
    for (unsigned k = 0; k <= steps; k++) {
        double x = lo + h * k;
        double y = negative ? lsh_miss(x, bands, rows) : curate_lsh_probability(x, bands, rows);
        double w = (k == 0 || k == steps) ? 1.0 : (k % 2 ? 4.0 : 2.0);
        sum += w * y;
    }
    return sum * h / 3.0;
}

curate_status curate_lsh_choose(double threshold, unsigned perm, double fp_weight,
                                double fn_weight, unsigned *bands, unsigned *rows)
{
    if (!(threshold > 0.0 && threshold < 1.0) || perm < 1 || perm > CURATE_MINHASH_MAX_PERM ||
        !(fp_weight >= 0.0) || !(fn_weight >= 0.0) || fp_weight + fn_weight <= 0.0)
        return CURATE_ERR_INVALID;
    double best = INFINITY;
    unsigned best_b = 1, best_r = perm;
    for (unsigned b = 1; b <= perm; b++) {
        for (unsigned r = 1; r <= perm / b; r++) {
            double fp = lsh_area(0.0, threshold, b, r, 0);
            double fn = lsh_area(threshold, 1.0, b, r, 1);
            double cost = fp_weight * fp + fn_weight * fn;
            if (cost < best) {
                best = cost;
                best_b = b;
                best_r = r;
            }
        }
    }
    *bands = best_b;
    *rows = best_r;
    return CURATE_OK;
}

/* ---- the LSH index ------------------------------------------------------------ */

/*
 * One hash table holds every distinct (band, band value): a 32-bit tag
 * derived from both, and the newest record with it (id + 1; 0 = empty
 * slot).  Older records with the same band value are chained through
 * next[id * bands + band] (id + 1; 0 ends the chain).  Two distinct band
 * values with the same tag would share a chain; that costs only a
 * candidate that fails verification, at a rate of about one per 2^32
 * comparisons.
 */
typedef struct lsh_slot {
    uint32_t tag;
    uint32_t head; /* newest id + 1; 0 = empty */
} lsh_slot;

struct curate_lsh {
    unsigned bands, rows;
    size_t max_per_band;
    uint32_t n;            /* records inserted */
    size_t cap;            /* records that fit in next / stamp */
    uint32_t *next;        /* [cap * bands] chain links */
    uint32_t *stamp;       /* [cap] last query that returned the record */
    uint32_t query_no;
    lsh_slot *slots;       /* [mask + 1] */
    size_t mask;
    size_t used;           /* occupied slots */
    uint32_t *tags;        /* [bands] scratch: the band tags of one signature */
    uint32_t *result;      /* candidates of the last query */
    size_t cap_result;
};

/* The tag of one band: the same sum-of-products scheme as combine_words
 * over its rows, salted by the band number, folded to 32 bits. */
static inline uint32_t band_tag(const uint32_t *sig, unsigned band, unsigned rows)
{
    uint64_t acc = ((uint64_t)band + 1) * 0x6A09E667F3BCC909ull;
    const uint32_t *v = sig + (size_t)band * rows;
    for (unsigned r = 0; r < rows; r++)
        acc += (uint64_t)v[r] * (0x9E3779B97F4A7C15ull + 2ull * r);
    acc ^= acc >> 32;
    acc *= 0xD6E8FEB86659FD93ull;
    acc ^= acc >> 29;
    return (uint32_t)(acc >> 32);
}

/* Home slot of a tag (the tag is already well mixed; spread it again so
 * the table may exceed 2^32 slots). */
static inline size_t tag_home(uint32_t tag, size_t mask)
{
    return (size_t)(((uint64_t)tag * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

curate_lsh *curate_lsh_init(unsigned bands, unsigned rows, size_t max_per_band, curate_error *err)
{
    if (bands < 1 || rows < 1 || bands > CURATE_MINHASH_MAX_PERM ||
        rows > CURATE_MINHASH_MAX_PERM / bands) {
        curate_error_set(err, CURATE_ERR_INVALID,
                         "bands x rows must be between 1 and %u (got %u x %u)",
                         CURATE_MINHASH_MAX_PERM, bands, rows);
        return NULL;
    }
    curate_lsh *l = calloc(1, sizeof *l);
    if (l) {
        l->slots = calloc(1024, sizeof *l->slots);
        l->tags = malloc(bands * sizeof *l->tags);
    }
    if (!l || !l->slots || !l->tags) {
        curate_lsh_free(l);
        curate_error_set(err, CURATE_ERR_NOMEM, "cannot allocate an LSH index");
        return NULL;
    }
    l->bands = bands;
    l->rows = rows;
    l->max_per_band = max_per_band;
    l->mask = 1023;
    return l;
}

void curate_lsh_free(curate_lsh *l)
{
    if (!l)
        return;
    free(l->next);
    free(l->stamp);
    free(l->slots);
    free(l->tags);
    free(l->result);
    free(l);
}

size_t curate_lsh_count(const curate_lsh *l)
{
    return l->n;
}

size_t curate_lsh_memory(const curate_lsh *l)
{
    return sizeof *l + l->cap * ((size_t)l->bands + 1) * sizeof(uint32_t) +
           (l->mask + 1) * sizeof(lsh_slot) + (l->cap_result + l->bands) * sizeof(uint32_t);
}

/* Find the slot for tag: the occupied one holding it, or the empty one
 * where it would go. */
static inline lsh_slot *lsh_find(const curate_lsh *l, uint32_t tag)
{
    size_t i = tag_home(tag, l->mask);
    for (;;) {
        lsh_slot *s = &l->slots[i];
        if (s->head == 0 || s->tag == tag)
            return s;
        i = (i + 1) & l->mask;
    }
}

static curate_status lsh_grow_table(curate_lsh *l)
{
    size_t old_n = l->mask + 1;
    if (old_n > SIZE_MAX / 2 / sizeof(lsh_slot))
        return CURATE_ERR_NOMEM;
    size_t new_n = old_n * 2;
    lsh_slot *ns = calloc(new_n, sizeof *ns);
    if (!ns)
        return CURATE_ERR_NOMEM;
    lsh_slot *old = l->slots;
    l->slots = ns;
    l->mask = new_n - 1;
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].head == 0)
            continue;
        *lsh_find(l, old[i].tag) = old[i];
    }
    free(old);
    return CURATE_OK;
}

/* Room for one more record, and table load at most 7/10 even if all its
 * bands are new. */
static curate_status lsh_reserve(curate_lsh *l)
{
    if (l->n >= UINT32_MAX - 1)
        return CURATE_ERR_TOO_LARGE;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        if (cap > UINT32_MAX)
            cap = UINT32_MAX;
        if (cap > SIZE_MAX / sizeof(uint32_t) / ((size_t)l->bands + 1))
            return CURATE_ERR_NOMEM;
        uint32_t *nx = realloc(l->next, cap * l->bands * sizeof *nx);
        if (!nx)
            return CURATE_ERR_NOMEM;
        l->next = nx;
        uint32_t *stp = realloc(l->stamp, cap * sizeof *stp);
        if (!stp)
            return CURATE_ERR_NOMEM;
        l->stamp = stp;
        l->cap = cap;
    }
    while ((l->used + l->bands) * 10 > (l->mask + 1) * 7)
        if (lsh_grow_table(l) != CURATE_OK)
            return CURATE_ERR_NOMEM;
    return CURATE_OK;
}

/* The band tags of sig into l->tags, with their home slots prefetched so
 * the cache misses of all bands overlap. */
static void lsh_tags(curate_lsh *l, const uint32_t *sig)
{
    for (unsigned band = 0; band < l->bands; band++) {
        uint32_t t = band_tag(sig, band, l->rows);
        l->tags[band] = t;
#if defined(__GNUC__)
        __builtin_prefetch(&l->slots[tag_home(t, l->mask)]);
#endif
    }
}

/* Candidates for the tags in l->tags. */
static curate_status lsh_collect(curate_lsh *l, const uint32_t **ids, size_t *count,
                                 int *truncated)
{
    size_t nres = 0;
    int cut = 0;
    if (++l->query_no == 0) {
        /* The stamp counter wrapped: forget every old stamp. */
        if (l->n)
            memset(l->stamp, 0, (size_t)l->n * sizeof *l->stamp);
        l->query_no = 1;
    }
    const uint32_t q = l->query_no;
    for (unsigned band = 0; band < l->bands && l->n; band++) {
        const lsh_slot *s = lsh_find(l, l->tags[band]);
        size_t taken = 0;
        for (uint32_t h = s->head; h != 0; h = l->next[(size_t)(h - 1) * l->bands + band]) {
            if (l->max_per_band && taken == l->max_per_band) {
                cut = 1;
                break;
            }
            taken++;
            uint32_t c = h - 1;
            if (l->stamp[c] == q)
                continue;
            l->stamp[c] = q;
            if (nres == l->cap_result) {
                size_t cap = l->cap_result ? l->cap_result * 2 : 64;
                uint32_t *r = realloc(l->result, cap * sizeof *r);
                if (!r) {
                    *count = 0;
                    return CURATE_ERR_NOMEM;
                }
                l->result = r;
                l->cap_result = cap;
            }
            l->result[nres++] = c;
        }
    }
    *ids = l->result;
    *count = nres;
    if (truncated)
        *truncated = cut;
    return CURATE_OK;
}

/* Link a new record under the tags in l->tags (lsh_reserve done). */
static uint32_t lsh_link(curate_lsh *l)
{
    uint32_t me = l->n;
    for (unsigned band = 0; band < l->bands; band++) {
        uint32_t tag = l->tags[band];
        lsh_slot *s = lsh_find(l, tag);
        size_t link = (size_t)me * l->bands + band;
        if (s->head == 0) {
            s->tag = tag;
            l->next[link] = 0;
            l->used++;
        } else {
            l->next[link] = s->head;
        }
        s->head = me + 1;
    }
    l->stamp[me] = 0;
    l->n = me + 1;
    return me;
}

curate_status curate_lsh_insert(curate_lsh *l, const uint32_t *sig, uint32_t *id)
{
    curate_status st = lsh_reserve(l);
    if (st != CURATE_OK)
        return st;
    lsh_tags(l, sig);
    uint32_t me = lsh_link(l);
    if (id)
        *id = me;
    return CURATE_OK;
}

curate_status curate_lsh_query(curate_lsh *l, const uint32_t *sig, const uint32_t **ids,
                               size_t *count, int *truncated)
{
    lsh_tags(l, sig);
    return lsh_collect(l, ids, count, truncated);
}

curate_status curate_lsh_query_insert(curate_lsh *l, const uint32_t *sig, const uint32_t **ids,
                                      size_t *count, int *truncated, uint32_t *id)
{
    *count = 0;
    curate_status st = lsh_reserve(l);
    if (st != CURATE_OK)
        return st;
    lsh_tags(l, sig);
    st = lsh_collect(l, ids, count, truncated);
    if (st != CURATE_OK)
        return st;
    uint32_t me = lsh_link(l);
    if (id)
        *id = me;
    return CURATE_OK;
}
