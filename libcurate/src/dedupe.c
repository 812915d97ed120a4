/*
 * dedupe.c - normalized keys, the exact-duplicate set, near-duplicate
 * clustering.
 */
#include "curate/dedupe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "curate/text.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- keys ------------------------------------------------------------------ */

const char *curate_dedupe_norm_name(curate_dedupe_norm norm)
{
    switch (norm) {
    case CURATE_DEDUPE_NORM_BYTES: return "bytes";
    case CURATE_DEDUPE_NORM_WHITESPACE: return "whitespace";
    case CURATE_DEDUPE_NORM_NFKC: return "nfkc";
    case CURATE_DEDUPE_NORM_CASEFOLD: return "casefold";
    }
    return NULL;
}

void curate_dedupe_key_init(curate_dedupe_key *k)
{
    curate_buf_init(&k->out);
    curate_buf_init(&k->tmp1);
    curate_buf_init(&k->tmp2);
}

void curate_dedupe_key_release(curate_dedupe_key *k)
{
    curate_buf_release(&k->out);
    curate_buf_release(&k->tmp1);
    curate_buf_release(&k->tmp2);
}

/*
 * The fused ASCII pass, branch-free per byte: every byte is stored through
 * a table (ASCII whitespace -> ' ', A-Z -> a-z when folding) and the
 * output position advances unless the byte is whitespace following
 * whitespace.  Starting as if after whitespace drops leading space; one
 * trailing space is taken back at the end.  A branch per byte on "is it a
 * space" would mispredict at every word boundary, which costs more than
 * the rest of the pass.
 */
typedef struct ascii_tables {
    unsigned char space[256];  /* 1 for \t \n \v \f \r and ' ' */
    unsigned char keep[256];   /* byte as stored, whitespace as ' ' */
    unsigned char fold[256];   /* same, A-Z lower-cased */
} ascii_tables;

static ascii_tables tables;
static int tables_ready; /* benign race: every thread writes the same bytes */

static const ascii_tables *get_tables(void)
{
    if (!tables_ready) {
        for (int c = 0; c < 256; c++) {
            int sp = c == ' ' || (c >= '\t' && c <= '\r');
            tables.space[c] = (unsigned char)sp;
            tables.keep[c] = (unsigned char)(sp ? ' ' : c);
            tables.fold[c] = (unsigned char)(sp ? ' ' : (c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        tables_ready = 1;
    }
    return &tables;
}

/* The scalar pass over s[i..end): see above.  Returns the OR of the bytes
 * (bit 7 set: not ASCII). */
static inline unsigned ascii_span(const ascii_tables *t, const unsigned char *map,
                                  const unsigned char *s, size_t i, size_t end, char *out,
                                  size_t *o_io, unsigned *prev_io)
{
    unsigned high = 0, prev = *prev_io;
    size_t o = *o_io;
    for (; i < end; i++) {
        unsigned c = s[i];
        unsigned sp = t->space[c];
        high |= c;
        out[o] = (char)map[c];
        o += 1u - (sp & prev);
        prev = sp;
    }
    *o_io = o;
    *prev_io = prev;
    return high;
}

/* Returns 0 if s has a byte >= 0x80 (out is then unspecified), else 1 with
 * the key in out[0..*out_len).  out must have room for n bytes. */
static int ascii_key(const unsigned char *s, size_t n, int fold, char *out, size_t *out_len)
{
    const ascii_tables *t = get_tables();
    const unsigned char *map = fold ? t->fold : t->keep;
    unsigned prev = 1; /* "after whitespace": leading spaces vanish */
    size_t o = 0, i = 0;
#if defined(__SSE2__)
    /* 16 bytes at a time while no two whitespace bytes touch (true of most
     * of running text: one space between words).  A block that holds a
     * run of whitespace goes through the scalar pass, which the unit tests
     * check against the text.h reference like everything else. */
    const __m128i space = _mm_set1_epi8(' ');
    const __m128i c8 = _mm_set1_epi8(8), c14 = _mm_set1_epi8(14);
    const __m128i cA = _mm_set1_epi8('A' - 1), cZ = _mm_set1_epi8('Z' + 1);
    const __m128i case_bit = _mm_set1_epi8(fold ? 32 : 0);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        if (_mm_movemask_epi8(v))
            return 0; /* a byte >= 0x80 */
        __m128i ws = _mm_or_si128(_mm_cmpeq_epi8(v, space),
                                  _mm_and_si128(_mm_cmpgt_epi8(v, c8), _mm_cmplt_epi8(v, c14)));
        unsigned m = (unsigned)_mm_movemask_epi8(ws);
        if (m & ((m << 1) | prev)) {
            ascii_span(t, map, s, i, i + 16, out, &o, &prev);
            continue;
        }
        __m128i up = _mm_and_si128(_mm_cmpgt_epi8(v, cA), _mm_cmplt_epi8(v, cZ));
        __m128i r = _mm_or_si128(_mm_and_si128(ws, space), _mm_andnot_si128(ws, v));
        r = _mm_add_epi8(r, _mm_and_si128(up, case_bit));
        _mm_storeu_si128((__m128i *)(void *)(out + o), r);
        o += 16;
        prev = (m >> 15) & 1u;
    }
#endif
    if (ascii_span(t, map, s, i, n, out, &o, &prev) & 0x80)
        return 0;
    if (o && out[o - 1] == ' ')
        o--;
    *out_len = o;
    return 1;
}

curate_status curate_dedupe_key_make(curate_dedupe_key *k, curate_dedupe_norm norm,
                                     const char *s, size_t n, const char **key,
                                     size_t *key_len, curate_error *err)
{
    if (norm == CURATE_DEDUPE_NORM_BYTES) {
        *key = s;
        *key_len = n;
        return CURATE_OK;
    }
    if (norm > CURATE_DEDUPE_NORM_CASEFOLD)
        return curate_error_set(err, CURATE_ERR_INVALID, "unknown normalization level %d",
                                (int)norm);
    curate_buf_reset(&k->out);
    if (curate_buf_reserve(&k->out, n) != CURATE_OK)
        return curate_error_set(err, CURATE_ERR_NOMEM, "cannot allocate a key buffer");
    size_t len;
    if (ascii_key((const unsigned char *)s, n, norm == CURATE_DEDUPE_NORM_CASEFOLD, k->out.data,
                  &len)) {
        k->out.len = len;
        k->out.data[len] = 0;
        *key = k->out.data;
        *key_len = len;
        return CURATE_OK;
    }

    /* Some byte >= 0x80: the Unicode path. */
    size_t bad = curate_utf8_check(s, n);
    if (bad < n) {
        curate_error_set(err, CURATE_ERR_UTF8, "invalid UTF-8 in text");
        curate_error_at_offset(err, bad);
        return CURATE_ERR_UTF8;
    }
    const char *cur = s;
    size_t cur_len = n;
    curate_status st;
    if (norm >= CURATE_DEDUPE_NORM_NFKC) {
        curate_buf_reset(&k->tmp1);
        st = curate_normalize(cur, cur_len, CURATE_NORM_NFKC, &k->tmp1, err);
        if (st != CURATE_OK)
            return st;
        cur = k->tmp1.data ? k->tmp1.data : "";
        cur_len = k->tmp1.len;
    }
    if (norm == CURATE_DEDUPE_NORM_CASEFOLD) {
        curate_buf_reset(&k->tmp2);
        st = curate_casefold(cur, cur_len, &k->tmp2, err);
        if (st != CURATE_OK)
            return st;
        cur = k->tmp2.data ? k->tmp2.data : "";
        cur_len = k->tmp2.len;
    }
    curate_buf_reset(&k->out);
    st = curate_normalize_whitespace(cur, cur_len, 0, &k->out);
    if (st != CURATE_OK)
        return curate_error_set(err, st, "cannot normalize whitespace");
    *key = k->out.data ? k->out.data : "";
    *key_len = k->out.len;
    return CURATE_OK;
}

/* ---- the exact set ------------------------------------------------------------ */

typedef struct exact_entry {
    uint64_t lo, hi; /* the hash */
    uint64_t ref;
} exact_entry;

struct curate_dedupe_exact {
    exact_entry *e;   /* [cap] dense, insertion order */
    size_t n, cap;
    uint32_t *index;  /* [mask + 1] entry number + 1; 0 = empty */
    size_t mask;
};

curate_dedupe_exact *curate_dedupe_exact_init(curate_error *err)
{
    curate_dedupe_exact *s = calloc(1, sizeof *s);
    if (s)
        s->index = calloc(1024, sizeof *s->index);
    if (!s || !s->index) {
        curate_dedupe_exact_free(s);
        curate_error_set(err, CURATE_ERR_NOMEM, "cannot allocate a duplicate set");
        return NULL;
    }
    s->mask = 1023;
    return s;
}

void curate_dedupe_exact_free(curate_dedupe_exact *s)
{
    if (!s)
        return;
    free(s->e);
    free(s->index);
    free(s);
}

size_t curate_dedupe_exact_count(const curate_dedupe_exact *s)
{
    return s->n;
}

size_t curate_dedupe_exact_memory(const curate_dedupe_exact *s)
{
    return sizeof *s + s->cap * sizeof *s->e + (s->mask + 1) * sizeof *s->index;
}

/* XXH3 output is uniform, so its low bits are a fine home slot. */
static inline size_t exact_home(uint64_t lo, size_t mask)
{
    return (size_t)lo & mask;
}

static curate_status exact_rebuild(curate_dedupe_exact *s, size_t slots)
{
    /* Free first: the index is rebuilt from the dense array, so the old
     * one is not needed and the peak stays at one index. */
    free(s->index);
    s->index = calloc(slots, sizeof *s->index);
    if (!s->index) {
        s->mask = 0;
        return CURATE_ERR_NOMEM;
    }
    s->mask = slots - 1;
    for (size_t k = 0; k < s->n; k++) {
        size_t i = exact_home(s->e[k].lo, s->mask);
        while (s->index[i])
            i = (i + 1) & s->mask;
        s->index[i] = (uint32_t)(k + 1);
    }
    return CURATE_OK;
}

curate_status curate_dedupe_exact_add(curate_dedupe_exact *s, curate_h128 h, uint64_t ref,
                                      int *found, uint64_t *first_ref)
{
    if (!s->index) {
        /* A previous rebuild failed for lack of memory; try again. */
        size_t slots = 1024;
        while (slots * 7 < (s->n + 1) * 10)
            slots *= 2;
        if (exact_rebuild(s, slots) != CURATE_OK)
            return CURATE_ERR_NOMEM;
    }
    size_t i = exact_home(h.lo, s->mask);
    for (;;) {
        uint32_t v = s->index[i];
        if (v == 0)
            break;
        const exact_entry *e = &s->e[v - 1];
        if (e->lo == h.lo && e->hi == h.hi) {
            *found = 1;
            if (first_ref)
                *first_ref = e->ref;
            return CURATE_OK;
        }
        i = (i + 1) & s->mask;
    }
    /* New hash: append to the dense array, then index it. */
    if (s->n >= (size_t)UINT32_MAX - 1)
        return CURATE_ERR_TOO_LARGE;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        if (cap > SIZE_MAX / sizeof *s->e)
            return CURATE_ERR_NOMEM;
        exact_entry *ne = realloc(s->e, cap * sizeof *ne);
        if (!ne)
            return CURATE_ERR_NOMEM;
        s->e = ne;
        s->cap = cap;
    }
    s->e[s->n].lo = h.lo;
    s->e[s->n].hi = h.hi;
    s->e[s->n].ref = ref;
    s->n++;
    if (s->n * 10 > (s->mask + 1) * 7) {
        if ((s->mask + 1) > SIZE_MAX / 2 / sizeof *s->index ||
            exact_rebuild(s, (s->mask + 1) * 2) != CURATE_OK) {
            /* The entry is in the dense array and will be indexed by the
             * next successful rebuild; report the failure now. */
            return CURATE_ERR_NOMEM;
        }
    } else {
        s->index[i] = (uint32_t)s->n;
    }
    *found = 0;
    return CURATE_OK;
}

/* ---- near duplicates ----------------------------------------------------------- */

struct curate_dedupe_near {
    curate_dedupe_near_opts opts;
    unsigned bands, rows;
    unsigned min_equal;        /* equal slots needed: smallest e with e/P >= threshold */
    curate_minhash *mh;
    curate_lsh *lsh;
    curate_dedupe_exact *exact;
    uint32_t *sig;             /* [perm] the current text's signature */
    uint16_t *sig16;           /* [cap * perm] stored signatures (low 16 bits) */
    uint32_t *parent;          /* [cap] union-find; a root is its cluster's first member */
    uint64_t *ref;             /* [cap] caller references */
    size_t n, cap;
    curate_dedupe_near_stats stats;
};

void curate_dedupe_near_opts_default(curate_dedupe_near_opts *opts)
{
    curate_minhash_opts_default(&opts->minhash);
    opts->threshold = 0.5;
    opts->bands = 0;
    opts->rows = 0;
    opts->fn_weight = CURATE_DEDUPE_NEAR_FN_WEIGHT;
    opts->max_per_band = 0;
}

curate_dedupe_near *curate_dedupe_near_init(const curate_dedupe_near_opts *opts,
                                            curate_error *err)
{
    if (!(opts->threshold > 0.0 && opts->threshold <= 1.0)) {
        curate_error_set(err, CURATE_ERR_INVALID, "threshold must be in (0, 1], not %g",
                         opts->threshold);
        return NULL;
    }
    unsigned P = opts->minhash.perm;
    unsigned bands = opts->bands, rows = opts->rows;
    if ((bands == 0) != (rows == 0)) {
        curate_error_set(err, CURATE_ERR_INVALID, "give both bands and rows, or neither");
        return NULL;
    }
    if (P < 1 || P > CURATE_MINHASH_MAX_PERM) {
        curate_error_set(err, CURATE_ERR_INVALID, "perm must be 1..%u, not %u",
                         CURATE_MINHASH_MAX_PERM, P);
        return NULL;
    }
    double fnw = opts->fn_weight == 0.0 ? CURATE_DEDUPE_NEAR_FN_WEIGHT : opts->fn_weight;
    if (!(fnw > 0.0 && fnw <= 1.0)) {
        curate_error_set(err, CURATE_ERR_INVALID, "fn_weight must be in (0, 1], not %g",
                         opts->fn_weight);
        return NULL;
    }
    if (bands == 0) {
        /* A threshold of 1 has no false-negative area to weigh: band for
         * a value just under it. */
        double t = opts->threshold < 0.999 ? opts->threshold : 0.999;
        if (curate_lsh_choose(t, P, 1.0 - fnw, fnw, &bands, &rows) != CURATE_OK) {
            curate_error_set(err, CURATE_ERR_INVALID, "cannot choose LSH bands");
            return NULL;
        }
    } else if (rows > P / bands) {
        curate_error_set(err, CURATE_ERR_INVALID,
                         "bands x rows (%u x %u) exceeds the %u permutations", bands, rows, P);
        return NULL;
    }
    curate_dedupe_near *d = calloc(1, sizeof *d);
    if (!d) {
        curate_error_set(err, CURATE_ERR_NOMEM, "cannot allocate a near-duplicate index");
        return NULL;
    }
    d->opts = *opts;
    d->bands = bands;
    d->rows = rows;
    d->opts.bands = bands;
    d->opts.rows = rows;
    d->opts.fn_weight = fnw;
    if (!d->opts.max_per_band)
        d->opts.max_per_band = CURATE_DEDUPE_NEAR_MAX_PER_BAND;
    /* Integer form of "similarity >= threshold", decided with the same
     * double division the similarity uses. */
    unsigned e = (unsigned)floor(opts->threshold * P);
    e = e > 0 ? e - 1 : 0;
    while (e < P && (double)e / (double)P < opts->threshold)
        e++;
    d->min_equal = e;
    d->mh = curate_minhash_init(&opts->minhash, err);
    if (!d->mh) {
        curate_dedupe_near_free(d);
        return NULL;
    }
    d->lsh = curate_lsh_init(bands, rows, d->opts.max_per_band, err);
    if (!d->lsh) {
        curate_dedupe_near_free(d);
        return NULL;
    }
    d->exact = curate_dedupe_exact_init(err);
    if (!d->exact) {
        curate_dedupe_near_free(d);
        return NULL;
    }
    d->sig = malloc(P * sizeof *d->sig);
    if (!d->sig) {
        curate_dedupe_near_free(d);
        curate_error_set(err, CURATE_ERR_NOMEM, "cannot allocate a near-duplicate index");
        return NULL;
    }
    return d;
}

void curate_dedupe_near_free(curate_dedupe_near *d)
{
    if (!d)
        return;
    curate_minhash_free(d->mh);
    curate_lsh_free(d->lsh);
    curate_dedupe_exact_free(d->exact);
    free(d->sig);
    free(d->sig16);
    free(d->parent);
    free(d->ref);
    free(d);
}

void curate_dedupe_near_banding(const curate_dedupe_near *d, unsigned *bands, unsigned *rows)
{
    *bands = d->bands;
    *rows = d->rows;
}

const curate_dedupe_near_opts *curate_dedupe_near_options(const curate_dedupe_near *d)
{
    return &d->opts;
}

void curate_dedupe_near_get_stats(const curate_dedupe_near *d, curate_dedupe_near_stats *st)
{
    *st = d->stats;
}

size_t curate_dedupe_near_memory(const curate_dedupe_near *d)
{
    size_t P = d->opts.minhash.perm;
    return sizeof *d + curate_lsh_memory(d->lsh) + curate_dedupe_exact_memory(d->exact) +
           P * sizeof *d->sig +
           d->cap * (P * sizeof *d->sig16 + sizeof *d->parent + sizeof *d->ref);
}

/* Root of x's cluster, halving the path on the way. */
static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static curate_status near_reserve(curate_dedupe_near *d)
{
    if (d->n < d->cap)
        return CURATE_OK;
    size_t P = d->opts.minhash.perm;
    size_t cap = d->cap ? d->cap * 2 : 1024;
    if (cap > (size_t)UINT32_MAX)
        cap = UINT32_MAX;
    if (cap > SIZE_MAX / (P * sizeof *d->sig16))
        return CURATE_ERR_NOMEM;
    uint16_t *s16 = realloc(d->sig16, cap * P * sizeof *s16);
    if (!s16)
        return CURATE_ERR_NOMEM;
    d->sig16 = s16;
    uint32_t *par = realloc(d->parent, cap * sizeof *par);
    if (!par)
        return CURATE_ERR_NOMEM;
    d->parent = par;
    uint64_t *r = realloc(d->ref, cap * sizeof *r);
    if (!r)
        return CURATE_ERR_NOMEM;
    d->ref = r;
    d->cap = cap;
    return CURATE_OK;
}

static unsigned equal_slots16(const uint16_t *a, const uint16_t *b, unsigned P)
{
    unsigned eq = 0;
    for (unsigned i = 0; i < P; i++)
        eq += a[i] == b[i];
    return eq;
}

curate_status curate_dedupe_near_add(curate_dedupe_near *d, const char *key, size_t len,
                                     uint64_t ref, curate_dedupe_match *m, curate_error *err)
{
    const unsigned P = d->opts.minhash.perm;
    if (d->n >= (size_t)UINT32_MAX - 1)
        return curate_error_set(err, CURATE_ERR_TOO_LARGE,
                                "too many texts for the near-duplicate index");
    if (near_reserve(d) != CURATE_OK)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory in the near-duplicate index");

    /* 1. exact repeats */
    int found = 0;
    uint64_t twin = 0;
    curate_status st = curate_dedupe_exact_add(d->exact, curate_hash128(key, len, 0),
                                               (uint64_t)d->n, &found, &twin);
    if (st != CURATE_OK)
        return curate_error_set(err, st, "out of memory in the duplicate set");
    d->stats.texts++;
    if (found) {
        d->stats.exact++;
        m->verdict = CURATE_DEDUPE_EXACT;
        m->first_ref = d->ref[uf_find(d->parent, (uint32_t)twin)];
        m->nearest_ref = d->ref[twin];
        m->similarity = 1.0;
        return CURATE_OK;
    }

    /* 2. signature and candidates */
    st = curate_minhash_sign(d->mh, key, len, d->sig, NULL);
    if (st != CURATE_OK)
        return curate_error_set(err, st, "out of memory while shingling");
    uint16_t *mine = d->sig16 + d->n * P;
    for (unsigned i = 0; i < P; i++)
        mine[i] = (uint16_t)d->sig[i];
    const uint32_t *cand;
    size_t nc;
    int cut = 0;
    /* Candidates among the earlier texts, and this text indexed in the
     * same pass (also when it turns out a near duplicate: later texts may
     * be near it and not near the cluster's first member). */
    st = curate_lsh_query_insert(d->lsh, d->sig, &cand, &nc, &cut, NULL);
    if (st != CURATE_OK)
        return curate_error_set(err, st, "cannot grow the LSH index");
    d->stats.truncated += (uint64_t)cut;

    const uint32_t me = (uint32_t)d->n;
    d->parent[me] = me;
    unsigned best_eq = 0;
    uint32_t best = me;
    uint32_t root = me; /* root of the cluster this text is joining */
    for (size_t k = 0; k < nc; k++) {
        uint32_t c = cand[k];
        unsigned eq = equal_slots16(mine, d->sig16 + (size_t)c * P, P);
        d->stats.candidates++;
        if (eq < d->min_equal)
            continue;
        d->stats.verified++;
        /* Most similar wins; on a tie the earlier text. */
        if (eq > best_eq || (eq == best_eq && c < best)) {
            best_eq = eq;
            best = c;
        }
        uint32_t rc = uf_find(d->parent, c);
        if (rc == root)
            continue;
        if (root != me)
            d->stats.clusters_merged++;
        /* The smaller index (the earlier text) stays root. */
        if (rc < root) {
            d->parent[root] = rc;
            root = rc;
        } else {
            d->parent[rc] = root;
        }
    }
    d->parent[me] = root;

    d->ref[me] = ref;
    d->n++;

    if (root == me) {
        m->verdict = CURATE_DEDUPE_NEW;
        m->first_ref = ref;
        m->nearest_ref = ref;
        m->similarity = 0.0;
    } else {
        d->stats.near++;
        m->verdict = CURATE_DEDUPE_NEAR;
        m->first_ref = d->ref[root];
        m->nearest_ref = d->ref[best];
        m->similarity = (double)best_eq / (double)P;
    }
    return CURATE_OK;
}
