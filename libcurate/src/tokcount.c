/*
 * tokcount.c - per-segment token count cache over the SentencePiece shim.
 *
 * The header explains why summing segment counts is exact and which checks
 * guard it.  Here: an open-addressing table of {hash, key, count} with the
 * key bytes in one arena, both inside a fixed memory budget.
 */
#include "curate/tokcount.h"

#include <stdlib.h>
#include <string.h>

#include "curate/hash.h"

typedef struct slot {
    uint64_t hash;
    uint32_t off;    /* key offset in the arena; UINT32_MAX = empty slot */
    uint32_t count;  /* tokens of the key */
    uint32_t len;    /* key bytes */
} slot;

struct curate_token_counter {
    const curate_tokenizer *tok;
    curate_token_counter_opts opts;
    slot *table;
    size_t cap;        /* slots, a power of two */
    size_t used;
    char *arena;
    size_t arena_len, arena_cap;
    int full;          /* budget reached: no more inserts */
    int enabled;
    const char *why;
    curate_token_counter_stats st;
};

void curate_token_counter_opts_default(curate_token_counter_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_cache_bytes = (size_t)64 << 20;
    opts->max_segment_bytes = 64;
    opts->verify_first = 32;
    opts->verify_every = 1024;
}

static size_t memory_of(const curate_token_counter *tc)
{
    return tc->cap * sizeof(slot) + tc->arena_cap;
}

static curate_status direct(curate_token_counter *tc, const char *s, size_t n, uint64_t *out,
                            curate_error *err)
{
    tc->st.direct++;
    return curate_tokenizer_count(tc->tok, s, n, 0, out, err);
}

static slot *find(curate_token_counter *tc, uint64_t h, const char *key, size_t n)
{
    size_t mask = tc->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        slot *s = &tc->table[i];
        if (s->off == UINT32_MAX)
            return s;
        if (s->hash == h && s->len == n && memcmp(tc->arena + s->off, key, n) == 0)
            return s;
    }
}

/* Double the table if the budget allows; 0 on success. */
static int grow_table(curate_token_counter *tc)
{
    size_t ncap = tc->cap * 2;
    if (ncap * sizeof(slot) + tc->arena_cap > tc->opts.max_cache_bytes)
        return -1;
    slot *nt = malloc(ncap * sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < ncap; i++)
        nt[i].off = UINT32_MAX;
    slot *old = tc->table;
    size_t ocap = tc->cap;
    tc->table = nt;
    tc->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].off != UINT32_MAX)
            *find(tc, old[i].hash, tc->arena + old[i].off, old[i].len) = old[i];
    free(old);
    return 0;
}

/* Copy key into the arena; its offset in *off; 0 on success. */
static int store_key(curate_token_counter *tc, const char *key, size_t n, uint32_t *off)
{
    if (tc->arena_len + n > tc->arena_cap) {
        size_t ncap = tc->arena_cap ? tc->arena_cap * 2 : 1 << 16;
        while (ncap < tc->arena_len + n)
            ncap *= 2;
        if (ncap > UINT32_MAX || tc->cap * sizeof(slot) + ncap > tc->opts.max_cache_bytes)
            return -1;
        char *na = realloc(tc->arena, ncap);
        if (!na)
            return -1;
        tc->arena = na;
        tc->arena_cap = ncap;
    }
    memcpy(tc->arena + tc->arena_len, key, n);
    *off = (uint32_t)tc->arena_len;
    tc->arena_len += n;
    return 0;
}

/* Count one segment's encoder input through the cache. */
static curate_status count_segment(curate_token_counter *tc, const char *key, size_t n,
                                   uint64_t *out, curate_error *err)
{
    if (n > tc->opts.max_segment_bytes)
        return direct(tc, key, n, out, err);
    tc->st.segments++;
    uint64_t h = curate_hash64(key, n, 0);
    slot *s = find(tc, h, key, n);
    if (s->off != UINT32_MAX) {
        tc->st.hits++;
        *out = s->count;
        return CURATE_OK;
    }
    curate_status st = direct(tc, key, n, out, err);
    if (st != CURATE_OK || tc->full || *out > UINT32_MAX)
        return st;
    if ((tc->used + 1) * 2 > tc->cap) {
        if (grow_table(tc) != 0) {
            tc->full = 1;
            return CURATE_OK;
        }
        s = find(tc, h, key, n);
    }
    uint32_t off;
    if (store_key(tc, key, n, &off) != 0) {
        tc->full = 1;
        return CURATE_OK;
    }
    s->hash = h;
    s->off = off;
    s->len = (uint32_t)n;
    s->count = (uint32_t)*out;
    tc->used++;
    tc->st.entries = tc->used;
    return CURATE_OK;
}

/* The sum of segment counts (the cached path). */
static curate_status count_cached(curate_token_counter *tc, const char *text, size_t len,
                                  uint64_t *n, curate_error *err)
{
    /* Start of the run of spaces that ends the text: a segment made only
     * of trailing spaces is joined to the one before it (its encoder input
     * could otherwise be empty). */
    size_t tail = len;
    while (tail > 0 && text[tail - 1] == ' ')
        tail--;
    uint64_t sum = 0;
    size_t a = 0;
    while (a < len) {
        size_t p = a;
        while (p < len && text[p] == ' ')
            p++;
        const char *q = p < len ? memchr(text + p, ' ', len - p) : NULL;
        size_t b = q ? (size_t)(q - text) : len;
        if (b == tail)
            b = len;
        /* The first segment is encoded as it is; later ones lose their
         * first space to the dummy prefix. */
        const char *key = a == 0 ? text : text + a + 1;
        size_t klen = a == 0 ? b : b - a - 1;
        uint64_t c;
        curate_status st = count_segment(tc, key, klen, &c, err);
        if (st != CURATE_OK)
            return st;
        sum += c;
        a = b;
    }
    *n = sum;
    return CURATE_OK;
}

curate_status curate_token_counter_count(curate_token_counter *tc, const char *text, size_t len,
                                         uint64_t *n, curate_error *err)
{
    uint64_t k = tc->st.texts++;
    if (!tc->enabled || len == 0)
        return direct(tc, text, len, n, err);
    int verify = k < tc->opts.verify_first ||
                 (tc->opts.verify_every && (k - tc->opts.verify_first) % tc->opts.verify_every == 0);
    curate_status st = count_cached(tc, text, len, n, err);
    if (st != CURATE_OK || !verify)
        return st;
    uint64_t want;
    st = direct(tc, text, len, &want, err);
    if (st != CURATE_OK)
        return st;
    tc->st.verified++;
    if (want != *n) {
        tc->enabled = 0;
        tc->why = "a text counted through the cache disagreed with SentencePiece";
        *n = want;
    }
    return CURATE_OK;
}

/* Any piece with a character other than U+2581 right before a U+2581? */
static int pieces_cross_spaces(const curate_tokenizer *tok)
{
    static const char ws[] = "\xe2\x96\x81";
    size_t n = curate_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < n && i <= INT32_MAX; i++) {
        const char *p = curate_tokenizer_piece(tok, (int32_t)i);
        curate_piece_type t = curate_tokenizer_piece_type(tok, (int32_t)i);
        if (!p || (t != CURATE_PIECE_NORMAL && t != CURATE_PIECE_UNUSED))
            continue;
        for (const char *q = strstr(p, ws); q; q = strstr(q + 3, ws))
            if (q > p && !(q - p >= 3 && memcmp(q - 3, ws, 3) == 0))
                return 1;
    }
    return 0;
}

/*
 * Does the model write spaces as U+2581 and add the dummy prefix?  The
 * pieces of "a" must start with it, and those of "a b" hold it twice.
 */
static int spaces_are_pieces(const curate_tokenizer *tok)
{
    static const char ws[] = "\xe2\x96\x81";
    static const char *const texts[] = {"a", "a b"};
    int ok = 1;
    curate_tokens ids;
    curate_tokens_init(&ids);
    for (size_t t = 0; t < 2 && ok; t++) {
        curate_tokens_reset(&ids);
        if (curate_tokenizer_encode(tok, texts[t], strlen(texts[t]), 0, &ids, NULL) != CURATE_OK) {
            ok = 0;
            break;
        }
        char joined[256] = "";
        size_t n = 0;
        for (size_t i = 0; i < ids.n; i++) {
            const char *p = curate_tokenizer_piece(tok, ids.ids[i]);
            size_t k = p ? strlen(p) : 0;
            if (n + k >= sizeof joined)
                break;
            memcpy(joined + n, p, k);
            n += k;
            joined[n] = 0;
        }
        size_t found = 0;
        for (const char *q = strstr(joined, ws); q; q = strstr(q + 3, ws))
            found++;
        ok = strncmp(joined, ws, 3) == 0 && found == t + 1;
    }
    curate_tokens_release(&ids);
    return ok;
}

curate_token_counter *curate_token_counter_init(const curate_tokenizer *tok,
                                                const curate_token_counter_opts *opts,
                                                curate_error *err)
{
    if (!tok) {
        curate_error_set(err, CURATE_ERR_INVALID, "no tokenizer");
        return NULL;
    }
    curate_token_counter *tc = calloc(1, sizeof *tc);
    if (!tc) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    tc->tok = tok;
    curate_token_counter_opts_default(&tc->opts);
    if (opts) {
        tc->opts = *opts;
        if (!tc->opts.max_cache_bytes)
            tc->opts.max_cache_bytes = (size_t)64 << 20;
        if (!tc->opts.max_segment_bytes)
            tc->opts.max_segment_bytes = 64;
    }
    tc->cap = 4096;
    tc->table = malloc(tc->cap * sizeof *tc->table);
    if (!tc->table) {
        free(tc);
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < tc->cap; i++)
        tc->table[i].off = UINT32_MAX;
    tc->enabled = 1;
    if (tc->opts.disable_cache) {
        tc->enabled = 0;
        tc->why = "disabled by option";
    } else if (!spaces_are_pieces(tok)) {
        tc->enabled = 0;
        tc->why = "the model adds no dummy prefix or does not turn spaces into U+2581";
    } else if (pieces_cross_spaces(tok)) {
        tc->enabled = 0;
        tc->why = "the vocabulary has pieces that join a word to the space after it";
    } else {
        /* Texts that show whether the model keeps spaces as they are and
         * adds a dummy prefix, which the segment rule relies on. */
        static const char *const probes[] = {
            "Hello world", "a", " a", "  a", "a ", "a  ", " ", "   ", "x  y   z    w",
            "  leading and trailing  ", "tab\tand\nnew line  here", "naïve café Ünïcödé ßtraße",
            "東京 タワー 와 한국어", "emoji 🤖 and 👍🏽 ok", "1234 56789 0.5", "\xff\xfe broken bytes",
            "end with newline \n", "a\n b\n  c", "x\u00a0 y", "a\u00a0\u00a0b c  d", "\u00a8 x \u00a8",
            "\u3000 ideographic\u3000 space", "x\u2002 \u2003y",
        };
        for (size_t i = 0; i < sizeof probes / sizeof probes[0] && tc->enabled; i++) {
            size_t len = strlen(probes[i]);
            uint64_t via = 0, want = 0;
            if (count_cached(tc, probes[i], len, &via, err) != CURATE_OK ||
                curate_tokenizer_count(tok, probes[i], len, 0, &want, err) != CURATE_OK) {
                curate_token_counter_free(tc);
                return NULL;
            }
            if (via != want) {
                tc->enabled = 0;
                tc->why = "the model normalizes spaces or adds no dummy prefix (probe texts disagree)";
            }
        }
        tc->st = (curate_token_counter_stats){0};
    }
    return tc;
}

void curate_token_counter_free(curate_token_counter *tc)
{
    if (!tc)
        return;
    free(tc->table);
    free(tc->arena);
    free(tc);
}

void curate_token_counter_get_stats(const curate_token_counter *tc, curate_token_counter_stats *st)
{
    *st = tc->st;
    st->entries = tc->used;
    st->memory = sizeof *tc + memory_of(tc);
    st->cache_enabled = tc->enabled;
    st->why_disabled = tc->enabled ? NULL : tc->why;
}
