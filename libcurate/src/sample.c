/*
 * sample.c - budget allocation across strata, explicit shares, the
 * streaming stratified sampler, and text fingerprints.
 *
 * Allocation is solved exactly.  The real-valued quota of a stratum,
 * clamp(L * w, floor, available), is a piecewise linear, non-decreasing
 * function of the level L with two breakpoints (floor / w and available /
 * w), so their sum is too.  Walking the sorted breakpoints finds the
 * segment where the sum reaches the budget; inside it the level is a ratio
 * of two integers P / W, and each quota's integer and fractional parts
 * come from one 128-bit multiplication and division.  No floating point,
 * so ties are real ties and are broken by stratum order, the same way on
 * every machine.
 *
 * Reservoirs are bottom-k samples kept as max-heaps on (key, ordinal): the
 * root is the item that leaves first.  Payloads are copied once, when an
 * item enters a heap; most items of a large input never enter one (the
 * chance that item t of a stratum enters is k / t), so the per-record cost
 * is a key lookup, one random draw and one comparison.
 */
#include "curate/sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate/text.h"

typedef unsigned __int128 u128;

/* ------------------------------------------------------------------------ */
/* Allocation                                                               */
/* ------------------------------------------------------------------------ */

/* A breakpoint of the level: stratum i becomes free (enter) or capped at
 * L = num / den. */
typedef struct alloc_event {
    uint64_t num, den;
    size_t i;
    int enter;
} alloc_event;

static int cmp_event(const void *pa, const void *pb)
{
    const alloc_event *a = pa, *b = pb;
    u128 l = (u128)a->num * b->den, r = (u128)b->num * a->den;
    if (l != r)
        return l < r ? -1 : 1;
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    return b->enter - a->enter;
}

typedef struct alloc_rem {
    u128 rem;
    size_t i;
} alloc_rem;

static int cmp_rem(const void *pa, const void *pb)
{
    const alloc_rem *a = pa, *b = pb;
    if (a->rem != b->rem)
        return a->rem > b->rem ? -1 : 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

/*
 * q_i = clamp(L w_i, lo_i, hi_i) (w_i = 0: lo_i) integerized, summing to R.
 * Needs sum lo <= R <= sum over w>0 of hi + sum over w=0 of lo, lo <= hi,
 * and every value and sum <= 2^60 (checked by the caller).
 */
static curate_status alloc_core(size_t n, const uint64_t *w, const uint64_t *lo, const uint64_t *hi,
                                uint64_t R, uint64_t *q, curate_error *err)
{
    u128 C = 0, W = 0;
    for (size_t i = 0; i < n; i++)
        C += lo[i];
    if (C >= R) {
        /* Only possible with C == R: the floors use the whole budget. */
        memcpy(q, lo, n * sizeof *q);
        return CURATE_OK;
    }
    alloc_event *ev = malloc(2 * n * sizeof *ev + 1);
    if (!ev)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0)
            continue;
        ev[ne++] = (alloc_event){lo[i], w[i], i, 1};
        ev[ne++] = (alloc_event){hi[i], w[i], i, 0};
    }
    qsort(ev, ne, sizeof *ev, cmp_event);
    /* S(L) = C + L * W on the current segment; S is continuous, so it can
     * be checked before applying each breakpoint, one at a time. */
    size_t k;
    for (k = 0; k < ne; k++) {
        const alloc_event *e = &ev[k];
        if (C * e->den + (u128)e->num * W >= (u128)R * e->den)
            break;
        if (e->enter) {
            C -= lo[e->i];
            W += w[e->i];
        } else {
            C += hi[e->i];
            W -= w[e->i];
        }
    }
    free(ev);
    if (k == ne || W == 0)
        return curate_error_set(err, CURATE_ERR_INTERNAL, "allocation: no level reaches the budget");
    const u128 P = (u128)R - C; /* L = P / W */
    alloc_rem *rem = malloc(n * sizeof *rem + 1);
    if (!rem)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    size_t nr = 0;
    u128 placed = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0) {
            q[i] = lo[i];
        } else {
            u128 x = P * w[i];
            if (x <= (u128)lo[i] * W) {
                q[i] = lo[i];
            } else if (x >= (u128)hi[i] * W) {
                q[i] = hi[i];
            } else {
                q[i] = (uint64_t)(x / W);
                u128 r = x % W;
                if (r)
                    rem[nr++] = (alloc_rem){r, i};
            }
        }
        placed += q[i];
    }
    if (placed > R || (u128)R - placed > nr) {
        free(rem);
        return curate_error_set(err, CURATE_ERR_INTERNAL, "allocation: remainders do not add up");
    }
    size_t extra = (size_t)((u128)R - placed);
    if (extra) {
        qsort(rem, nr, sizeof *rem, cmp_rem);
        for (size_t j = 0; j < extra; j++)
            q[rem[j].i]++;
    }
    free(rem);
    return CURATE_OK;
}

curate_status curate_allocate(curate_alloc_item *items, size_t n, uint64_t total, unsigned *flags,
                              curate_error *err)
{
    const uint64_t MAXU = CURATE_SAMPLE_MAX_UNITS;
    unsigned fl = 0;
    if (flags)
        *flags = 0;
    if (total > MAXU)
        return curate_error_set(err, CURATE_ERR_RANGE, "budget %llu is too large",
                                (unsigned long long)total);
    u128 sum_a = 0, sum_w = 0, sum_f = 0, absorb = 0;
    for (size_t i = 0; i < n; i++) {
        const curate_alloc_item *it = &items[i];
        if (it->available > MAXU || it->weight > MAXU || it->minimum > MAXU)
            return curate_error_set(err, CURATE_ERR_RANGE, "stratum %zu: value too large", i);
        uint64_t f = it->minimum < it->available ? it->minimum : it->available;
        sum_a += it->available;
        sum_w += it->weight;
        sum_f += f;
        absorb += it->weight ? it->available : f;
    }
    if (sum_a > MAXU || sum_w > MAXU)
        return curate_error_set(err, CURATE_ERR_RANGE, "allocation: totals too large");
    if (n == 0) {
        if (flags && total)
            *flags = CURATE_ALLOC_SHORT;
        return CURATE_OK;
    }
    uint64_t *buf = malloc(4 * n * sizeof *buf);
    if (!buf)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    uint64_t *w = buf, *lo = buf + n, *hi = buf + 2 * n, *q = buf + 3 * n;
    uint64_t R = total;
    if (absorb < R) {
        R = (uint64_t)absorb;
        fl |= CURATE_ALLOC_SHORT;
    }
    if (sum_f > R) {
        /* The floors alone exceed the budget: share it evenly, nobody above
         * their floor. */
        fl |= CURATE_ALLOC_MIN_UNMET;
        for (size_t i = 0; i < n; i++) {
            uint64_t f = items[i].minimum < items[i].available ? items[i].minimum : items[i].available;
            w[i] = f ? 1 : 0;
            lo[i] = 0;
            hi[i] = f;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint64_t f = items[i].minimum < items[i].available ? items[i].minimum : items[i].available;
            w[i] = items[i].weight;
            lo[i] = f;
            hi[i] = items[i].available;
        }
    }
    curate_status st = alloc_core(n, w, lo, hi, R, q, err);
    if (st == CURATE_OK)
        for (size_t i = 0; i < n; i++)
            items[i].quota = q[i];
    free(buf);
    if (flags)
        *flags = fl;
    return st;
}

/* ------------------------------------------------------------------------ */
/* Shares                                                                   */
/* ------------------------------------------------------------------------ */

struct curate_shares {
    char *field;
    size_t n;
    char **values;
    size_t *lens;
    double *share; /* normalized to sum 1 */
};

void curate_shares_free(curate_shares *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->values[i]);
    free(s->values);
    free(s->lens);
    free(s->share);
    free(s->field);
    free(s);
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t' || **p == '\r')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r'))
        (*n)--;
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

static curate_shares *shares_fail(curate_shares *s, char *text)
{
    curate_shares_free(s);
    free(text);
    return NULL;
}

/*
 * The parser works on a copy with comments removed, then splits once at
 * the first '=' (the field), then at commas and newlines (items), then
 * each item at its last ':' (value and share).  Splitting at the last
 * colon is what lets a value such as "a:b" through; values with commas
 * cannot be written, which the header says.  Every failure names the
 * offending item, because a shares file is edited by hand.
 */
curate_shares *curate_shares_parse(const char *spec, size_t len, curate_error *err)
{
    /* Drop comments first, so '#' never reaches the item parser. */
    char *t = malloc(len + 1);
    curate_shares *s = calloc(1, sizeof *s);
    if (!t || !s) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return shares_fail(s, t);
    }
    size_t tn = 0;
    for (size_t i = 0; i < len; i++) {
        if (spec[i] == '#') {
            while (i < len && spec[i] != '\n')
                i++;
            if (i == len)
                break;
        }
        if (spec[i] == 0) {
            curate_error_set(err, CURATE_ERR_INVALID, "shares: NUL byte in the specification");
            return shares_fail(s, t);
        }
        t[tn++] = spec[i];
    }
    t[tn] = 0;
    char *eq = memchr(t, '=', tn);
    if (!eq) {
        curate_error_set(err, CURATE_ERR_INVALID,
                         "shares: expected FIELD=VALUE:SHARE,... (no '=' found)");
        return shares_fail(s, t);
    }
    const char *fp = t;
    size_t fn = (size_t)(eq - t);
    trim(&fp, &fn);
    /* A comment or blank line may precede the field name. */
    while (fn && memchr(fp, '\n', fn)) {
        const char *nl = memchr(fp, '\n', fn);
        fn -= (size_t)(nl + 1 - fp);
        fp = nl + 1;
        trim(&fp, &fn);
    }
    if (fn == 0 || memchr(fp, ',', fn) || memchr(fp, ':', fn)) {
        curate_error_set(err, CURATE_ERR_INVALID, "shares: missing or malformed field name before '='");
        return shares_fail(s, t);
    }
    if (!(s->field = dup_bytes(fp, fn))) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return shares_fail(s, t);
    }
    size_t cap = 0;
    double total = 0;
    const char *p = eq + 1, *end = t + tn;
    while (p <= end) {
        const char *q = p;
        while (q < end && *q != ',' && *q != '\n')
            q++;
        const char *ip = p;
        size_t in = (size_t)(q - p);
        p = q + 1;
        trim(&ip, &in);
        if (in == 0)
            continue;
        const char *colon = NULL;
        for (size_t k = in; k-- > 0;)
            if (ip[k] == ':') {
                colon = ip + k;
                break;
            }
        if (!colon) {
            curate_error_set(err, CURATE_ERR_INVALID, "shares: item '%.*s' has no ':SHARE'",
                             (int)(in > 200 ? 200 : in), ip);
            return shares_fail(s, t);
        }
        const char *vp = ip, *np = colon + 1;
        size_t vn = (size_t)(colon - ip), nn = in - vn - 1;
        trim(&vp, &vn);
        trim(&np, &nn);
        if (vn == 0) {
            curate_error_set(err, CURATE_ERR_INVALID, "shares: item '%.*s' has an empty value",
                             (int)(in > 200 ? 200 : in), ip);
            return shares_fail(s, t);
        }
        char num[64];
        double v = -1;
        if (nn > 0 && nn < sizeof num) {
            memcpy(num, np, nn);
            num[nn] = 0;
            char *e;
            errno = 0;
            v = strtod(num, &e);
            if (*e || errno == ERANGE || !isfinite(v))
                v = -1;
        }
        if (!(v >= 0)) {
            curate_error_set(err, CURATE_ERR_INVALID,
                             "shares: '%.*s' is not a share (a number >= 0) for value '%.*s'",
                             (int)(nn > 64 ? 64 : nn), np, (int)(vn > 200 ? 200 : vn), vp);
            return shares_fail(s, t);
        }
        for (size_t k = 0; k < s->n; k++)
            if (s->lens[k] == vn && memcmp(s->values[k], vp, vn) == 0) {
                curate_error_set(err, CURATE_ERR_INVALID, "shares: value '%.*s' is listed twice",
                                 (int)(vn > 200 ? 200 : vn), vp);
                return shares_fail(s, t);
            }
        if (s->n == cap) {
            size_t nc = cap ? 2 * cap : 8;
            char **nv = realloc(s->values, nc * sizeof *nv);
            if (nv)
                s->values = nv;
            size_t *nl = realloc(s->lens, nc * sizeof *nl);
            if (nl)
                s->lens = nl;
            double *ns = realloc(s->share, nc * sizeof *ns);
            if (ns)
                s->share = ns;
            if (!nv || !nl || !ns) {
                curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
                return shares_fail(s, t);
            }
            cap = nc;
        }
        if (!(s->values[s->n] = dup_bytes(vp, vn))) {
            curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
            return shares_fail(s, t);
        }
        s->lens[s->n] = vn;
        s->share[s->n] = v;
        s->n++;
        total += v;
    }
    if (s->n == 0 || !(total > 0) || !isfinite(total)) {
        curate_error_set(err, CURATE_ERR_INVALID,
                         s->n ? "shares: at least one share must be positive"
                              : "shares: no VALUE:SHARE items after '='");
        return shares_fail(s, t);
    }
    for (size_t k = 0; k < s->n; k++)
        s->share[k] /= total;
    free(t);
    return s;
}

curate_shares *curate_shares_load(const char *path, curate_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        curate_error_set(err, CURATE_ERR_IO, "cannot open: %s", strerror(errno));
        curate_error_at(err, path, 0);
        return NULL;
    }
    curate_buf b;
    curate_buf_init(&b);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + got > ((size_t)1 << 20)) {
            fclose(f);
            curate_buf_release(&b);
            curate_error_set(err, CURATE_ERR_TOO_LARGE, "shares file larger than 1 MiB");
            curate_error_at(err, path, 0);
            return NULL;
        }
        if (curate_buf_append(&b, chunk, got) != CURATE_OK) {
            fclose(f);
            curate_buf_release(&b);
            curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
            return NULL;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        curate_buf_release(&b);
        curate_error_set(err, CURATE_ERR_IO, "read error");
        curate_error_at(err, path, 0);
        return NULL;
    }
    curate_shares *s = curate_shares_parse(b.data ? b.data : "", b.len, err);
    if (!s)
        curate_error_at(err, path, 0);
    curate_buf_release(&b);
    return s;
}

const char *curate_shares_field(const curate_shares *s) { return s->field; }
size_t curate_shares_count(const curate_shares *s) { return s->n; }
double curate_shares_share(const curate_shares *s, size_t i) { return i < s->n ? s->share[i] : 0; }

const char *curate_shares_value(const curate_shares *s, size_t i, size_t *len)
{
    if (i >= s->n) {
        *len = 0;
        return NULL;
    }
    *len = s->lens[i];
    return s->values[i];
}

static curate_shares *shares_copy(const curate_shares *src)
{
    curate_shares *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->field = dup_bytes(src->field, strlen(src->field));
    s->values = calloc(src->n + 1, sizeof *s->values);
    s->lens = malloc((src->n + 1) * sizeof *s->lens);
    s->share = malloc((src->n + 1) * sizeof *s->share);
    if (!s->field || !s->values || !s->lens || !s->share) {
        curate_shares_free(s);
        return NULL;
    }
    for (size_t i = 0; i < src->n; i++) {
        if (!(s->values[i] = dup_bytes(src->values[i], src->lens[i]))) {
            s->n = i;
            curate_shares_free(s);
            return NULL;
        }
        s->lens[i] = src->lens[i];
        s->share[i] = src->share[i];
    }
    s->n = src->n;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Sampler                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct entry {
    curate_sample_item it; /* it.data is owned (malloc'd, NUL-terminated) */
    uint64_t key;
} entry;

typedef struct stratum {
    char *kbuf;           /* encoded key: per part a 4-byte length, then bytes */
    size_t klen;
    uint64_t hash;
    const char **values;  /* n_fields pointers into kbuf */
    size_t *lens;
    long group;           /* shares: index of the listed value, -1 if unlisted */
    uint64_t cap;         /* reservoir capacity in units */
    uint64_t records, units;
    entry *heap;          /* max-heap on (key, ordinal) */
    size_t n, alloc;
    uint64_t heap_cost;
    uint64_t target, quota, selected, selected_records;
} stratum;

struct curate_sampler {
    /* options, copied at init */
    char **fields;
    size_t n_fields;
    int by_tokens;
    uint64_t capacity;       /* units: the largest budget finish may get */
    curate_alloc_mode alloc;
    curate_shares *shares;
    size_t share_field;      /* index in fields of the shares' field */
    uint64_t min_per;
    size_t max_strata;

    /* Strata in creation order.  Indices handed to the caller stay valid
     * because strata are never removed; the array may move on growth, so
     * nothing keeps a pointer to a stratum across an add. */
    stratum *strata;
    size_t n_strata, alloc_strata;
    uint32_t *table; /* open addressing: stratum index + 1, 0 = empty */
    size_t table_size;
    curate_buf keybuf, decbuf; /* scratch for the key of the current record */

    /* Items dropped by the last add.  Their payloads stay allocated until
     * the next add so the caller can still write them to a rejects file. */
    curate_sample_item *dropped;
    size_t n_dropped, cap_dropped, dropped_pos;
    char **garbage;
    size_t n_garbage, cap_garbage;

    uint64_t last_ordinal;
    int have_ordinal;
    int finished;
    unsigned flags;           /* CURATE_SAMPLE_* after finish */
    size_t *order;            /* strata in sorted key order (after finish) */
    curate_sample_item *selected, *unselected; /* point into the heaps */
    size_t n_selected, n_unselected;
    uint64_t bytes_held;      /* payload bytes in all heaps */
};

void curate_sampler_free(curate_sampler *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_fields; i++)
        free(s->fields[i]);
    free(s->fields);
    curate_shares_free(s->shares);
    for (size_t i = 0; i < s->n_strata; i++) {
        stratum *st = &s->strata[i];
        for (size_t k = 0; k < st->n; k++)
            free((char *)st->heap[k].it.data);
        free(st->heap);
        free(st->kbuf);
        free(st->values);
        free(st->lens);
    }
    free(s->strata);
    free(s->table);
    curate_buf_release(&s->keybuf);
    curate_buf_release(&s->decbuf);
    free(s->dropped);
    for (size_t i = 0; i < s->n_garbage; i++)
        free(s->garbage[i]);
    free(s->garbage);
    free(s->order);
    free(s->selected);
    free(s->unselected);
    free(s);
}

curate_sampler *curate_sampler_init(const curate_sampler_opts *o, curate_error *err)
{
    if (!o || o->capacity == 0 || o->capacity > CURATE_SAMPLE_MAX_UNITS ||
        o->min_per_stratum > CURATE_SAMPLE_MAX_UNITS || (o->n_fields && !o->fields)) {
        curate_error_set(err, CURATE_ERR_INVALID, "sampler: capacity must be 1 to 2^60");
        return NULL;
    }
    if (o->alloc == CURATE_ALLOC_SHARES && !o->shares) {
        curate_error_set(err, CURATE_ERR_INVALID, "sampler: explicit allocation needs shares");
        return NULL;
    }
    curate_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    curate_buf_init(&s->keybuf);
    curate_buf_init(&s->decbuf);
    s->by_tokens = o->by_tokens != 0;
    s->capacity = o->capacity;
    s->alloc = o->alloc;
    s->min_per = o->min_per_stratum;
    s->max_strata = o->max_strata ? o->max_strata : CURATE_SAMPLE_DEFAULT_MAX_STRATA;
    if (s->max_strata > UINT32_MAX - 1)
        s->max_strata = UINT32_MAX - 1;
    s->fields = calloc(o->n_fields + 1, sizeof *s->fields);
    if (!s->fields)
        goto nomem;
    for (size_t i = 0; i < o->n_fields; i++) {
        if (!(s->fields[i] = dup_bytes(o->fields[i], strlen(o->fields[i]))))
            goto nomem;
        s->n_fields++;
    }
    if (o->alloc == CURATE_ALLOC_SHARES) {
        size_t f;
        for (f = 0; f < o->n_fields; f++)
            if (strcmp(o->fields[f], curate_shares_field(o->shares)) == 0)
                break;
        if (f == o->n_fields) {
            curate_error_set(err, CURATE_ERR_INVALID,
                             "sampler: the shares' field \"%s\" is not a strata field",
                             curate_shares_field(o->shares));
            curate_sampler_free(s);
            return NULL;
        }
        s->share_field = f;
        if (!(s->shares = shares_copy(o->shares)))
            goto nomem;
    }
    return s;
nomem:
    curate_sampler_free(s);
    curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    return NULL;
}

/* The strata table is kept at most half full, so a lookup probes one or
 * two slots; rebuilding from the strata array needs no stored keys. */
static curate_status table_grow(curate_sampler *s, curate_error *err)
{
    size_t ns = s->table_size ? 2 * s->table_size : 64;
    uint32_t *t = calloc(ns, sizeof *t);
    if (!t)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n_strata; i++) {
        size_t h = (size_t)s->strata[i].hash & (ns - 1);
        while (t[h])
            h = (h + 1) & (ns - 1);
        t[h] = (uint32_t)(i + 1);
    }
    free(s->table);
    s->table = t;
    s->table_size = ns;
    return CURATE_OK;
}

/* The stratum of the key in s->keybuf, created when new. */
static curate_status lookup_key(curate_sampler *s, size_t *index, curate_error *err)
{
    const char *k = s->keybuf.data ? s->keybuf.data : "";
    size_t kl = s->keybuf.len;
    uint64_t h = curate_hash64(k, kl, 0);
    if (s->table_size) {
        size_t pos = (size_t)h & (s->table_size - 1);
        while (s->table[pos]) {
            const stratum *st = &s->strata[s->table[pos] - 1];
            if (st->hash == h && st->klen == kl && memcmp(st->kbuf, k, kl) == 0) {
                *index = s->table[pos] - 1;
                return CURATE_OK;
            }
            pos = (pos + 1) & (s->table_size - 1);
        }
    }
    if (s->n_strata >= s->max_strata)
        return curate_error_set(err, CURATE_ERR_TOO_LARGE,
                                "more than %zu strata (see --max-strata)", s->max_strata);
    if ((s->n_strata + 1) * 2 > s->table_size) {
        curate_status st = table_grow(s, err);
        if (st != CURATE_OK)
            return st;
    }
    if (s->n_strata == s->alloc_strata) {
        size_t na = s->alloc_strata ? 2 * s->alloc_strata : 16;
        stratum *ns = realloc(s->strata, na * sizeof *ns);
        if (!ns)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        s->strata = ns;
        s->alloc_strata = na;
    }
    stratum *st = &s->strata[s->n_strata];
    memset(st, 0, sizeof *st);
    st->kbuf = malloc(kl + 1);
    st->values = calloc(s->n_fields + 1, sizeof *st->values);
    st->lens = calloc(s->n_fields + 1, sizeof *st->lens);
    if (!st->kbuf || !st->values || !st->lens) {
        free(st->kbuf);
        free(st->values);
        free(st->lens);
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    }
    memcpy(st->kbuf, k, kl);
    st->kbuf[kl] = 0;
    st->klen = kl;
    st->hash = h;
    size_t off = 0;
    for (size_t f = 0; f < s->n_fields; f++) {
        uint32_t len;
        memcpy(&len, st->kbuf + off, 4);
        st->values[f] = st->kbuf + off + 4;
        st->lens[f] = len;
        off += 4 + (size_t)len;
    }
    st->group = -1;
    st->cap = s->capacity;
    if (s->shares) {
        const char *v = st->values[s->share_field];
        size_t vl = st->lens[s->share_field];
        for (size_t g = 0; g < s->shares->n; g++)
            if (s->shares->lens[g] == vl && memcmp(s->shares->values[g], v, vl) == 0) {
                st->group = (long)g;
                break;
            }
        /* A stratum outside the shares only ever gets its floor. */
        if (st->group < 0 || s->shares->share[st->group] <= 0)
            st->cap = s->min_per < s->capacity ? s->min_per : s->capacity;
    }
    size_t pos = (size_t)h & (s->table_size - 1);
    while (s->table[pos])
        pos = (pos + 1) & (s->table_size - 1);
    s->table[pos] = (uint32_t)(s->n_strata + 1);
    *index = s->n_strata++;
    return CURATE_OK;
}

/* Keys are length-prefixed parts: ("ab", "c") and ("a", "bc") must not
 * meet, and values may hold any byte, NUL included, so no separator byte
 * would be safe. */
static curate_status key_append(curate_sampler *s, const char *p, size_t n, curate_error *err)
{
    if (n > UINT32_MAX)
        return curate_error_set(err, CURATE_ERR_TOO_LARGE, "stratum value too long");
    uint32_t len = (uint32_t)n;
    if (curate_buf_append(&s->keybuf, &len, 4) != CURATE_OK ||
        curate_buf_append(&s->keybuf, p, n) != CURATE_OK)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    return CURATE_OK;
}

/* Strings are used as they appear between the quotes unless they hold a
 * backslash: the common short value ("en", "code") then costs no decoding,
 * and an escaped spelling of the same text still lands in the same stratum. */
curate_status curate_sampler_stratum_of(curate_sampler *s, const curate_record *rec, size_t *index,
                                        curate_error *err)
{
    curate_buf_reset(&s->keybuf);
    for (size_t f = 0; f < s->n_fields; f++) {
        const curate_member *m = curate_record_get(rec, s->fields[f]);
        const char *p;
        size_t n;
        if (!m) {
            p = "-";
            n = 1;
        } else if (m->type == CURATE_JSON_STRING) {
            p = m->value + 1;
            n = m->value_len - 2;
            if (memchr(p, '\\', n)) {
                curate_buf_reset(&s->decbuf);
                curate_status st = curate_json_string_decode(m->value, m->value_len, rec->surrogates,
                                                             &s->decbuf, err);
                if (st != CURATE_OK)
                    return st;
                p = s->decbuf.data ? s->decbuf.data : "";
                n = s->decbuf.len;
            }
        } else {
            p = m->value;
            n = m->value_len;
        }
        curate_status st = key_append(s, p, n, err);
        if (st != CURATE_OK)
            return st;
    }
    return lookup_key(s, index, err);
}

curate_status curate_sampler_stratum_of_values(curate_sampler *s, const char *const *values,
                                               const size_t *value_lens, size_t *index,
                                               curate_error *err)
{
    curate_buf_reset(&s->keybuf);
    for (size_t f = 0; f < s->n_fields; f++) {
        curate_status st = key_append(s, values[f], value_lens[f], err);
        if (st != CURATE_OK)
            return st;
    }
    return lookup_key(s, index, err);
}

/* a leaves the reservoir before b. */
static inline int entry_after(const entry *a, const entry *b)
{
    return a->key > b->key || (a->key == b->key && a->it.ordinal > b->it.ordinal);
}

static void heap_sift_down(entry *h, size_t n, size_t i)
{
    entry x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && entry_after(&h[c + 1], &h[c]))
            c++;
        if (!entry_after(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_sift_up(entry *h, size_t i)
{
    entry x = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!entry_after(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static curate_status push_dropped(curate_sampler *s, const curate_sample_item *it, char *owned)
{
    if (s->n_dropped == s->cap_dropped) {
        size_t nc = s->cap_dropped ? 2 * s->cap_dropped : 8;
        curate_sample_item *nd = realloc(s->dropped, nc * sizeof *nd);
        if (!nd)
            return CURATE_ERR_NOMEM;
        s->dropped = nd;
        s->cap_dropped = nc;
    }
    if (owned) {
        if (s->n_garbage == s->cap_garbage) {
            size_t nc = s->cap_garbage ? 2 * s->cap_garbage : 8;
            char **ng = realloc(s->garbage, nc * sizeof *ng);
            if (!ng)
                return CURATE_ERR_NOMEM;
            s->garbage = ng;
            s->cap_garbage = nc;
        }
        s->garbage[s->n_garbage++] = owned;
    }
    s->dropped[s->n_dropped++] = *it;
    return CURATE_OK;
}

static void clear_dropped(curate_sampler *s)
{
    for (size_t i = 0; i < s->n_garbage; i++)
        free(s->garbage[i]);
    s->n_garbage = 0;
    s->n_dropped = 0;
    s->dropped_pos = 0;
}

int curate_sampler_next_dropped(curate_sampler *s, curate_sample_item *out)
{
    if (s->dropped_pos >= s->n_dropped)
        return 0;
    *out = s->dropped[s->dropped_pos++];
    return 1;
}

/* Copy x into a new heap slot (the payload is duplicated). */
static curate_status heap_push(curate_sampler *s, stratum *st, const entry *x)
{
    if (st->n == st->alloc) {
        size_t na = st->alloc ? 2 * st->alloc : 4;
        entry *nh = realloc(st->heap, na * sizeof *nh);
        if (!nh)
            return CURATE_ERR_NOMEM;
        st->heap = nh;
        st->alloc = na;
    }
    char *d = dup_bytes(x->it.data ? x->it.data : "", x->it.len);
    if (!d)
        return CURATE_ERR_NOMEM;
    st->heap[st->n] = *x;
    st->heap[st->n].it.data = d;
    heap_sift_up(st->heap, st->n);
    st->n++;
    st->heap_cost += x->it.cost;
    s->bytes_held += x->it.len;
    return CURATE_OK;
}

/* Remove the root (the item that leaves first) into the dropped queue. */
static curate_status heap_pop_dropped(curate_sampler *s, stratum *st)
{
    entry top = st->heap[0];
    st->n--;
    if (st->n) {
        st->heap[0] = st->heap[st->n];
        heap_sift_down(st->heap, st->n, 0);
    }
    st->heap_cost -= top.it.cost;
    s->bytes_held -= top.it.len;
    return push_dropped(s, &top.it, (char *)top.it.data);
}

static curate_status sampler_add(curate_sampler *s, size_t stratum_index,
                                 const curate_sample_item *item, uint64_t key, curate_error *err);

curate_status curate_sampler_add(curate_sampler *s, size_t stratum_index,
                                 const curate_sample_item *item, curate_rng *rng, curate_error *err)
{
    /* The key is drawn before any check, so the random stream advances by
     * exactly one draw per call whatever happens to the item. */
    return sampler_add(s, stratum_index, item, curate_rng_next(rng), err);
}

curate_status curate_sampler_add_keyed(curate_sampler *s, size_t stratum_index,
                                       const curate_sample_item *item, uint64_t key,
                                       curate_error *err)
{
    return sampler_add(s, stratum_index, item, key, err);
}

uint64_t curate_score_key(double score)
{
    if (isnan(score))
        return UINT64_MAX;
    if (score == 0)
        score = 0; /* -0.0 becomes +0.0 */
    uint64_t b;
    memcpy(&b, &score, sizeof b);
    /* IEEE-754 bits as an unsigned number that grows with the value:
     * negative numbers reversed below positive ones. */
    uint64_t asc = (b >> 63) ? ~b : (b | 0x8000000000000000ull);
    uint64_t desc = ~asc;
    return desc == UINT64_MAX ? UINT64_MAX - 1 : desc;
}

static curate_status sampler_add(curate_sampler *s, size_t stratum_index,
                                 const curate_sample_item *item, uint64_t key, curate_error *err)
{
    clear_dropped(s);
    if (s->finished || stratum_index >= s->n_strata)
        return curate_error_set(err, CURATE_ERR_INVALID, "sampler: add after finish or bad stratum");
    if (s->have_ordinal && item->ordinal <= s->last_ordinal)
        return curate_error_set(err, CURATE_ERR_INVALID, "sampler: ordinals must increase");
    s->have_ordinal = 1;
    s->last_ordinal = item->ordinal;
    stratum *st = &s->strata[stratum_index];
    entry x;
    x.it = *item;
    x.it.stratum = stratum_index;
    x.it.cost = s->by_tokens ? item->cost : 1;
    x.key = key;
    st->records++;
    curate_status rc = CURATE_OK;
    if (x.it.cost > s->capacity) {
        /* Larger than any budget: it could never be selected. */
        rc = push_dropped(s, &x.it, NULL);
        goto done;
    }
    if (st->units + x.it.cost > CURATE_SAMPLE_MAX_UNITS)
        return curate_error_set(err, CURATE_ERR_RANGE, "stratum units exceed 2^60");
    st->units += x.it.cost;
    if (st->cap == 0) {
        rc = push_dropped(s, &x.it, NULL);
    } else if (!s->by_tokens) {
        if (st->n < st->cap) {
            rc = heap_push(s, st, &x);
        } else if (entry_after(&st->heap[0], &x)) {
            /* x takes the root's place: the root leaves for good. */
            char *d = dup_bytes(x.it.data ? x.it.data : "", x.it.len);
            if (!d)
                return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
            entry old = st->heap[0];
            st->heap[0] = x;
            st->heap[0].it.data = d;
            heap_sift_down(st->heap, st->n, 0);
            s->bytes_held += x.it.len;
            s->bytes_held -= old.it.len;
            rc = push_dropped(s, &old.it, (char *)old.it.data);
        } else {
            rc = push_dropped(s, &x.it, NULL);
        }
    } else {
        /* Keep the shortest prefix (by key) whose tokens reach the
         * capacity: an item beyond it can never be selected.  Once a
         * stratum holds that many tokens it always will (only whole
         * surplus items leave), so every item that leaves sorts after every
         * item that stays: the heap is always exactly that prefix. */
        if (st->n && st->heap_cost >= st->cap && !entry_after(&st->heap[0], &x)) {
            rc = push_dropped(s, &x.it, NULL);
        } else {
            rc = heap_push(s, st, &x);
            while (rc == CURATE_OK && st->n && st->heap_cost - st->heap[0].it.cost >= st->cap)
                rc = heap_pop_dropped(s, st);
        }
    }
done:
    if (rc != CURATE_OK)
        return curate_error_set(err, rc, "out of memory");
    return CURATE_OK;
}

/* ---- finishing ------------------------------------------------------------ */

static int cmp_parts(const stratum *a, const stratum *b, size_t nf)
{
    for (size_t f = 0; f < nf; f++) {
        size_t la = a->lens[f], lb = b->lens[f];
        int c = memcmp(a->values[f], b->values[f], la < lb ? la : lb);
        if (c)
            return c;
        if (la != lb)
            return la < lb ? -1 : 1;
    }
    return 0;
}

/* qsort has no context argument; finishing is rare, so a file-scope
 * pointer set just before the sort is the simplest correct choice. */
static _Thread_local const curate_sampler *sort_ctx;

static int cmp_order(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = cmp_parts(&sort_ctx->strata[a], &sort_ctx->strata[b], sort_ctx->n_fields);
    return c ? c : (a < b ? -1 : (a > b));
}

static int cmp_entry_key(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    return entry_after(a, b) ? 1 : (entry_after(b, a) ? -1 : 0);
}

static int cmp_item_ordinal(const void *pa, const void *pb)
{
    const curate_sample_item *a = pa, *b = pb;
    return a->ordinal < b->ordinal ? -1 : (a->ordinal > b->ordinal);
}

/* Integer weight of a share: 40 bits of resolution are far finer than any
 * budget, and keep weight sums well inside 2^60.  Integer weights let the
 * allocator stay exact; rounding a share to a multiple of 2^-40 moves a
 * real-valued quota by less than budget * 2^-41, which can only change an
 * integer quota when two remainders were within that distance of a tie. */
static uint64_t share_weight(double share)
{
    if (!(share > 0))
        return 0;
    double w = floor(share * 1099511627776.0 + 0.5);
    return w < 1 ? 1 : (uint64_t)w;
}

/*
 * Quotas (or, with unlimited = 1, targets) for every stratum in sorted
 * order.  out[k] is for the stratum order[k].
 */
static curate_status allocate_all(curate_sampler *s, uint64_t budget, int unlimited, uint64_t *out,
                                  unsigned *flags, curate_error *err)
{
    size_t n = s->n_strata;
    curate_alloc_item *it = calloc(n + 1, sizeof *it);
    if (!it)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    curate_status rc = CURATE_OK;
    unsigned fl = 0, f1 = 0;
    if (s->alloc != CURATE_ALLOC_SHARES) {
        for (size_t k = 0; k < n; k++) {
            const stratum *st = &s->strata[s->order[k]];
            it[k].available = unlimited ? budget : st->units;
            it[k].weight = s->alloc == CURATE_ALLOC_EQUAL ? 1 : st->units;
            it[k].minimum = s->min_per;
        }
        rc = curate_allocate(it, n, budget, &fl, err);
        for (size_t k = 0; rc == CURATE_OK && k < n; k++)
            out[k] = it[k].quota;
        free(it);
        if (flags)
            *flags = fl;
        return rc;
    }
    /* Two levels: groups (listed values, then one group for the rest),
     * then evenly inside each group. */
    size_t ng = s->shares->n + 1;
    curate_alloc_item *g = calloc(ng, sizeof *g);
    if (!g) {
        free(it);
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < ng - 1; k++)
        g[k].weight = share_weight(s->shares->share[k]);
    for (size_t k = 0; k < n; k++) {
        const stratum *st = &s->strata[s->order[k]];
        size_t gi = st->group >= 0 ? (size_t)st->group : ng - 1;
        uint64_t a = unlimited ? budget : st->units;
        g[gi].available += a;
        g[gi].minimum += s->min_per < a ? s->min_per : a;
        if (g[gi].available > CURATE_SAMPLE_MAX_UNITS || g[gi].minimum > CURATE_SAMPLE_MAX_UNITS) {
            free(g);
            free(it);
            return curate_error_set(err, CURATE_ERR_RANGE, "allocation: totals too large");
        }
    }
    rc = curate_allocate(g, ng, budget, &f1, err);
    fl |= f1;
    size_t *members = malloc((n + 1) * sizeof *members);
    if (!members && rc == CURATE_OK)
        rc = curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    for (size_t gi = 0; rc == CURATE_OK && gi < ng; gi++) {
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
            const stratum *st = &s->strata[s->order[k]];
            size_t sg = st->group >= 0 ? (size_t)st->group : ng - 1;
            if (sg != gi)
                continue;
            it[m].available = unlimited ? budget : st->units;
            it[m].weight = 1;
            it[m].minimum = s->min_per;
            members[m++] = k;
        }
        rc = curate_allocate(it, m, g[gi].quota, &f1, err);
        fl |= f1 & CURATE_ALLOC_MIN_UNMET;
        for (size_t j = 0; rc == CURATE_OK && j < m; j++)
            out[members[j]] = it[j].quota;
    }
    free(members);
    free(g);
    free(it);
    if (flags)
        *flags = fl;
    return rc;
}

/*
 * Finishing: sort the strata (so quotas and ties do not depend on the
 * order strata were first seen), compute quotas and, for the report,
 * targets, then cut each heap down to its quota.  The heaps are sorted in
 * place; selected and unselected items point into them, so payloads are
 * never copied again.
 */
curate_status curate_sampler_finish(curate_sampler *s, uint64_t budget, curate_error *err)
{
    if (s->finished)
        return curate_error_set(err, CURATE_ERR_INVALID, "sampler: finish called twice");
    if (budget > s->capacity)
        return curate_error_set(err, CURATE_ERR_INVALID,
                                "sampler: budget %llu exceeds the capacity %llu",
                                (unsigned long long)budget, (unsigned long long)s->capacity);
    clear_dropped(s);
    s->finished = 1;
    size_t n = s->n_strata;
    s->order = malloc((n + 1) * sizeof *s->order);
    uint64_t *quota = malloc((n + 1) * sizeof *quota);
    uint64_t *target = malloc((n + 1) * sizeof *target);
    if (!s->order || !quota || !target) {
        free(quota);
        free(target);
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < n; k++)
        s->order[k] = k;
    sort_ctx = s;
    qsort(s->order, n, sizeof *s->order, cmp_order);
    sort_ctx = NULL;

    unsigned fl = 0;
    curate_status rc = allocate_all(s, budget, 0, quota, &fl, err);
    if (rc == CURATE_OK)
        rc = allocate_all(s, budget, 1, target, NULL, err);
    if (rc != CURATE_OK) {
        free(quota);
        free(target);
        return rc;
    }
    uint64_t placed = 0;
    size_t total_kept = 0;
    for (size_t k = 0; k < n; k++) {
        stratum *st = &s->strata[s->order[k]];
        st->quota = quota[k];
        st->target = target[k];
        placed += quota[k];
        total_kept += st->n;
        if (st->target > st->units)
            s->flags |= CURATE_SAMPLE_REDISTRIBUTED;
    }
    free(quota);
    free(target);
    if (placed < budget)
        s->flags |= CURATE_SAMPLE_SHORT;
    if (fl & CURATE_ALLOC_MIN_UNMET)
        s->flags |= CURATE_SAMPLE_MIN_UNMET;

    s->selected = malloc((total_kept + 1) * sizeof *s->selected);
    s->unselected = malloc((total_kept + 1) * sizeof *s->unselected);
    if (!s->selected || !s->unselected)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        stratum *st = &s->strata[s->order[k]];
        if (st->n > 1) /* smallest key first */
            qsort(st->heap, st->n, sizeof *st->heap, cmp_entry_key);
        uint64_t used = 0;
        for (size_t j = 0; j < st->n; j++) {
            const curate_sample_item *it = &st->heap[j].it;
            int take = s->by_tokens ? (it->cost <= st->quota - used) : (used < st->quota);
            if (take) {
                used += it->cost;
                st->selected_records++;
                s->selected[s->n_selected++] = *it;
            } else {
                s->unselected[s->n_unselected++] = *it;
            }
        }
        st->selected = used;
        if (!s->by_tokens && used != st->quota)
            return curate_error_set(err, CURATE_ERR_INTERNAL,
                                    "sampler: a reservoir holds fewer records than its quota");
    }
    qsort(s->selected, s->n_selected, sizeof *s->selected, cmp_item_ordinal);
    qsort(s->unselected, s->n_unselected, sizeof *s->unselected, cmp_item_ordinal);
    return CURATE_OK;
}

unsigned curate_sampler_flags(const curate_sampler *s) { return s->flags; }
size_t curate_sampler_strata_count(const curate_sampler *s) { return s->n_strata; }
size_t curate_sampler_selected_count(const curate_sampler *s) { return s->n_selected; }
size_t curate_sampler_unselected_count(const curate_sampler *s) { return s->n_unselected; }
uint64_t curate_sampler_bytes_held(const curate_sampler *s) { return s->bytes_held; }

const curate_sample_item *curate_sampler_selected(const curate_sampler *s, size_t i)
{
    return i < s->n_selected ? &s->selected[i] : NULL;
}

const curate_sample_item *curate_sampler_unselected(const curate_sampler *s, size_t i)
{
    return i < s->n_unselected ? &s->unselected[i] : NULL;
}

curate_status curate_sampler_stratum_info(const curate_sampler *s, size_t i, curate_stratum_info *out)
{
    if (i >= s->n_strata)
        return CURATE_ERR_INVALID;
    const stratum *st = &s->strata[s->finished ? s->order[i] : i];
    out->values = st->values;
    out->value_lens = st->lens;
    out->records = st->records;
    out->available = st->units;
    out->target = st->target;
    out->quota = st->quota;
    out->selected = st->selected;
    out->selected_records = st->selected_records;
    out->shortfall = st->target > st->units ? st->target - st->units : 0;
    return CURATE_OK;
}

/* ------------------------------------------------------------------------ */
/* Fingerprints                                                             */
/* ------------------------------------------------------------------------ */

/* Repair before normalizing: curate_normalize_whitespace needs valid
 * UTF-8, and a hard case with one broken byte is still the same hard case
 * for the purpose of not adding it twice. */
curate_status curate_text_fingerprint(const char *s, size_t n, curate_buf *scratch,
                                      curate_h128 *out, curate_error *err)
{
    curate_buf fixed;
    curate_buf_init(&fixed);
    if (curate_utf8_check(s, n) != n) {
        if (curate_utf8_repair(s, n, &fixed, NULL) != CURATE_OK)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
        s = fixed.data;
        n = fixed.len;
    }
    curate_buf_reset(scratch);
    curate_status st = curate_normalize_whitespace(s, n, 0, scratch);
    curate_buf_release(&fixed);
    if (st != CURATE_OK)
        return curate_error_set(err, st, "%s", curate_strerror(st));
    *out = curate_hash128(scratch->data, scratch->len, 0);
    return CURATE_OK;
}
