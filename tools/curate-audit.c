/*
 * curate-audit - a report on a calibration set: what is in it, what is
 * duplicated, what overlaps evaluation sets, what each quantizer's loader
 * will do with it, and warnings where it departs from PTQ practice.
 *
 * The audit reads records; it does not filter them.  Bad input still goes
 * through --on-error (and --rejects), but nothing is written except the
 * report, so read = written + rejected does not apply.
 *
 * One pass over the set.  Memory: per record 8 bytes of length plus what
 * the duplicate detector keeps (about 2 x 128 bytes of MinHash signature
 * per distinct text, see curate/dedupe.h), per distinct field value its
 * bytes; per evaluation record a 128-slot signature and its LSH entries.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "curate/dedupe.h"
#include "curate/hash.h"
#include "curate/jsonl.h"
#include "curate/minhash.h"
#include "curate/packing.h"
#include "curate/text.h"
#include "curate/tokcount.h"
#include "curate/tokenizer.h"

/* The PTQ practice rules (documented in curate-audit(1), WARNINGS). */
#define MIN_SAMPLES 128u
#define MAX_SAMPLES 4096u
#define MIN_PER_LANGUAGE 64u
#define MIX_TOLERANCE 0.15
#define MAX_STRATUM_SHARE 0.5

#define MAX_VALUE_BYTES 200u   /* field values are cut to this for counting */
#define MAX_DISTINCT 100000u   /* distinct values kept per field */
#define MAX_EVAL 16
#define MAX_STRATA_FIELDS 8
#define MAX_MIX 16
#define LEN_UNKNOWN UINT64_MAX

enum {
    OPT_JSON = 1000,
    OPT_DOMAIN_FIELD,
    OPT_LANG_FIELD,
    OPT_BUCKET_FIELD,
    OPT_TOKENS_FIELD,
    OPT_BADCASE_FIELD,
    OPT_STRATA,
    OPT_LENGTH_MIX,
    OPT_TOKENIZER,
    OPT_UNIT,
    OPT_NORM,
    OPT_NEAR_THRESHOLD,
    OPT_NO_NEAR,
    OPT_EVAL,
    OPT_CTX,
    OPT_NO_BOS,
    OPT_AWQ_SAMPLES,
    OPT_AUTOROUND_SAMPLES,
    OPT_TOP,
    OPT_STRICT
};

static const cli_option options[] = {
    {"json", 0, CLI_NO_ARG, NULL, "write the report as one JSON object", OPT_JSON},
    {"domain-field", 0, CLI_REQ_ARG, "NAME", "field holding the domain (default domain)",
     OPT_DOMAIN_FIELD},
    {"lang-field", 0, CLI_REQ_ARG, "NAME", "field holding the language (default lang)",
     OPT_LANG_FIELD},
    {"bucket-field", 0, CLI_REQ_ARG, "NAME", "field holding the length bucket (default\n"
     "bucket)", OPT_BUCKET_FIELD},
    {"tokens-field", 0, CLI_REQ_ARG, "NAME", "field holding the token count (default tokens)",
     OPT_TOKENS_FIELD},
    {"badcase-field", 0, CLI_REQ_ARG, "NAME", "field marking bad cases with true (default\n"
     "badcase)", OPT_BADCASE_FIELD},
    {"strata", 0, CLI_REQ_ARG, "LIST", "fields whose value combination is a stratum,\n"
     "for the one-stratum-over-half warning\n"
     "(default: the domain and language fields)", OPT_STRATA},
    {"length-mix", 0, CLI_REQ_ARG, "LIST", "target bucket shares (default\n"
     "short:0.25,medium:0.5,long:0.25)", OPT_LENGTH_MIX},
    {"tokenizer", 't', CLI_REQ_ARG, "FILE", "count tokens with this SentencePiece model\n"
     "for records without a token count field", OPT_TOKENIZER},
    {"unit", 0, CLI_REQ_ARG, "UNIT", "without a tokenizer, measure records without a\n"
     "token count in 'chars' or 'words'", OPT_UNIT},
    {"normalize", 0, CLI_REQ_ARG, "LEVEL", "what counts as the same text: bytes,\n"
     "whitespace (default), nfkc or casefold\n"
     "(levels of curate-dedupe)", OPT_NORM},
    {"near-threshold", 0, CLI_REQ_ARG, "J", "estimated Jaccard similarity that makes a near\n"
     "duplicate (default 0.5, as curate-dedupe)", OPT_NEAR_THRESHOLD},
    {"no-near", 0, CLI_NO_ARG, NULL, "skip near duplicates (exact ones only)", OPT_NO_NEAR},
    {"eval", 0, CLI_REQ_ARG, "FILE", "an evaluation set (JSONL) to check for overlap\n"
     "(repeatable, up to 16)", OPT_EVAL},
    {"ctx", 0, CLI_REQ_ARG, "N", "context length for the packing report (default\n"
     "512)", OPT_CTX},
    {"no-bos", 0, CLI_NO_ARG, NULL, "the model's tokenizer adds no BOS token", OPT_NO_BOS},
    {"awq-samples", 0, CLI_REQ_ARG, "N", "AutoAWQ max_calib_samples (default 128; 0: all)",
     OPT_AWQ_SAMPLES},
    {"autoround-samples", 0, CLI_REQ_ARG, "N", "AutoRound nsamples (default 128; 0: all)",
     OPT_AUTOROUND_SAMPLES},
    {"top", 0, CLI_REQ_ARG, "N", "values listed per field (default 20; the rest\n"
     "are summed)", OPT_TOP},
    {"strict", 0, CLI_NO_ARG, NULL, "exit 1 when any warning fires (for CI)", OPT_STRICT},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-audit",
    "[OPTION]... [FILE]...",
    "Report on a calibration set and warn where it departs from PTQ practice.",
    "Counts by domain, language and length bucket; a histogram of token lengths;\n"
    "exact and near duplicates; the share of bad cases; overlap with evaluation\n"
    "sets; what llama.cpp's imatrix, AutoAWQ, AutoRound and GPTQModel would keep,\n"
    "drop and cut at --ctx; and warnings (see curate-audit(1) for each rule).\n"
    "The report goes to standard output (or -o FILE); nothing else is written.",
    options,
    CLI_COMMON_ALL,
    "Warnings: fewer than 128 or more than 4096 samples; a language with fewer than\n"
    "64 samples; a bucket share more than 15 points from --length-mix; one stratum\n"
    "over half the set; any exact or near overlap with an --eval set.",
};

/* ---- a counter of string values ----------------------------------------------- */

typedef struct vslot {
    uint64_t hash;
    uint32_t off, len;  /* key in the arena; off = UINT32_MAX: empty */
    uint64_t count;
} vslot;

typedef struct value_map {
    vslot *slots;
    size_t cap, used;
    curate_buf arena;
    uint64_t missing;   /* records without the field */
    uint64_t overflow;  /* records whose value did not fit (MAX_DISTINCT) */
    uint64_t present;   /* records with the field */
} value_map;

static void oom(void) __attribute__((noreturn));
static void oom(void)
{
    cli_die(CLI_EXIT_INTERNAL, "out of memory");
}

static void vm_init(value_map *m)
{
    memset(m, 0, sizeof *m);
    curate_buf_init(&m->arena);
}

static void vm_free(value_map *m)
{
    free(m->slots);
    curate_buf_release(&m->arena);
}

static vslot *vm_find(value_map *m, uint64_t h, const char *k, size_t n)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        vslot *s = &m->slots[i];
        if (s->off == UINT32_MAX ||
            (s->hash == h && s->len == n && memcmp(m->arena.data + s->off, k, n) == 0))
            return s;
    }
}

static void vm_grow(value_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    vslot *ns = malloc(ncap * sizeof *ns);
    if (!ns)
        oom();
    for (size_t i = 0; i < ncap; i++)
        ns[i].off = UINT32_MAX;
    vslot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = ns;
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].off != UINT32_MAX)
            *vm_find(m, old[i].hash, m->arena.data + old[i].off, old[i].len) = old[i];
    free(old);
}

static void vm_add(value_map *m, const char *k, size_t n)
{
    m->present++;
    if (n > MAX_VALUE_BYTES)
        n = MAX_VALUE_BYTES;
    uint64_t h = curate_hash64(k, n, 0);
    if (m->cap) {
        vslot *s = vm_find(m, h, k, n);
        if (s->off != UINT32_MAX) {
            s->count++;
            return;
        }
    }
    if (m->used >= MAX_DISTINCT || m->arena.len > UINT32_MAX - n) {
        m->overflow++;
        return;
    }
    if ((m->used + 1) * 2 > m->cap)
        vm_grow(m);
    vslot *s = vm_find(m, h, k, n);
    s->hash = h;
    s->off = (uint32_t)m->arena.len;
    s->len = (uint32_t)n;
    s->count = 1;
    if (curate_buf_append(&m->arena, k, n) != CURATE_OK)
        oom();
    m->used++;
}

static const value_map *sort_map; /* qsort has no context argument */

static int cmp_slots(const void *a, const void *b)
{
    const vslot *x = &sort_map->slots[*(const size_t *)a], *y = &sort_map->slots[*(const size_t *)b];
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(sort_map->arena.data + x->off, sort_map->arena.data + y->off, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Slot indices sorted by count (descending), then value; caller frees. */
static size_t *vm_sorted(const value_map *m)
{
    size_t *idx = malloc((m->used ? m->used : 1) * sizeof *idx);
    if (!idx)
        oom();
    size_t k = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].off != UINT32_MAX)
            idx[k++] = i;
    sort_map = m;
    qsort(idx, k, sizeof *idx, cmp_slots);
    return idx;
}

static uint64_t vm_get(const value_map *m, const char *k)
{
    size_t n = strlen(k);
    if (!m->cap)
        return 0;
    vslot *s = vm_find((value_map *)m, curate_hash64(k, n, 0), k, n);
    return s->off == UINT32_MAX ? 0 : s->count;
}

/* ---- settings ------------------------------------------------------------------- */

typedef struct mix_target {
    char *name;
    double share;
} mix_target;

typedef struct eval_set {
    const char *path;
    uint64_t records;
    curate_dedupe_exact *exact;
    curate_lsh *lsh;
    uint32_t *sigs;        /* perm slots per record */
    size_t n_sigs, cap_sigs;
    uint64_t hit_exact, hit_near;
} eval_set;

typedef struct settings {
    int json, strict, near, bos;
    const char *domain_field, *lang_field, *bucket_field, *tokens_field, *badcase_field;
    const char *strata[MAX_STRATA_FIELDS];
    size_t n_strata;
    int strata_given;
    mix_target mix[MAX_MIX];
    size_t n_mix;
    const char *tokenizer_path;
    int unit; /* -1 none, 0 chars, 1 words */
    curate_dedupe_norm norm;
    double near_threshold;
    eval_set evals[MAX_EVAL];
    size_t n_evals;
    curate_pack_opts pack;
    uint64_t top;
    int shared_ids[64];
    const char *shared_args[64];
    size_t n_shared;
} settings;

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        oom();
    return p;
}

static void parse_mix(settings *s, const char *arg)
{
    char *items[MAX_MIX];
    size_t n = cli_split_list("--length-mix", xstrdup(arg), items, MAX_MIX);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        char *colon = strrchr(items[i], ':');
        if (!colon || colon == items[i])
            cli_usage_error("--length-mix: '%s' is not NAME:SHARE", items[i]);
        *colon = 0;
        s->mix[i].name = items[i];
        s->mix[i].share = cli_parse_double("--length-mix", colon + 1, 0.0, 1.0);
        sum += s->mix[i].share;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->mix[j].name, items[i]) == 0)
                cli_usage_error("--length-mix: '%s' given twice", items[i]);
    }
    if (fabs(sum - 1.0) > 1e-6)
        cli_usage_error("--length-mix: the shares add up to %g, not 1", sum);
    s->n_mix = n;
}

static void parse_options(int argc, char **argv, cli_run *run, settings *s, int *first)
{
    static const char *const units[] = {"chars", "words", NULL};
    static const char *const norms[] = {"bytes", "whitespace", "nfkc", "casefold", NULL};
    int id, optind_ = 1;
    const char *arg;
    while ((id = cli_getopt(argc, argv, &arg, &optind_)) != -1) {
        if (cli_run_option(run, id, arg)) {
            if (s->n_shared < sizeof s->shared_ids / sizeof s->shared_ids[0]) {
                s->shared_ids[s->n_shared] = id;
                s->shared_args[s->n_shared++] = arg;
            }
            continue;
        }
        switch (id) {
        case OPT_JSON: s->json = 1; break;
        case OPT_DOMAIN_FIELD: s->domain_field = arg; break;
        case OPT_LANG_FIELD: s->lang_field = arg; break;
        case OPT_BUCKET_FIELD: s->bucket_field = arg; break;
        case OPT_TOKENS_FIELD: s->tokens_field = arg; break;
        case OPT_BADCASE_FIELD: s->badcase_field = arg; break;
        case OPT_STRATA: {
            char *items[MAX_STRATA_FIELDS];
            s->n_strata = cli_split_list("--strata", xstrdup(arg), items, MAX_STRATA_FIELDS);
            for (size_t i = 0; i < s->n_strata; i++)
                s->strata[i] = items[i];
            s->strata_given = 1;
            break;
        }
        case OPT_LENGTH_MIX: parse_mix(s, arg); break;
        case OPT_TOKENIZER: s->tokenizer_path = arg; break;
        case OPT_UNIT: s->unit = cli_parse_choice("--unit", arg, units); break;
        case OPT_NORM:
            s->norm = (curate_dedupe_norm)cli_parse_choice("--normalize", arg, norms);
            break;
        case OPT_NEAR_THRESHOLD:
            s->near_threshold = cli_parse_double("--near-threshold", arg, 0.0, 1.0);
            if (s->near_threshold <= 0.0)
                cli_usage_error("--near-threshold: must be above 0");
            break;
        case OPT_NO_NEAR: s->near = 0; break;
        case OPT_EVAL:
            if (s->n_evals == MAX_EVAL)
                cli_usage_error("--eval: at most %d files", MAX_EVAL);
            s->evals[s->n_evals++].path = arg;
            break;
        case OPT_CTX: s->pack.ctx = cli_parse_u64("--ctx", arg, 1, (uint64_t)1 << 32, 1); break;
        case OPT_NO_BOS: s->bos = 0; break;
        case OPT_AWQ_SAMPLES:
            s->pack.awq_max_samples = cli_parse_u64("--awq-samples", arg, 0, UINT64_MAX, 1);
            break;
        case OPT_AUTOROUND_SAMPLES:
            s->pack.autoround_nsamples = cli_parse_u64("--autoround-samples", arg, 0, UINT64_MAX, 1);
            break;
        case OPT_TOP: s->top = cli_parse_u64("--top", arg, 1, 100000, 0); break;
        case OPT_STRICT: s->strict = 1; break;
        default: cli_usage_error("unexpected option");
        }
    }
    *first = optind_;
    const char *names[] = {s->domain_field, s->lang_field, s->bucket_field, s->tokens_field,
                           s->badcase_field};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!*names[i])
            cli_usage_error("field names must not be empty");
    if (s->tokenizer_path && s->unit >= 0)
        cli_usage_error("--tokenizer and --unit exclude each other");
    if (!s->strata_given) {
        s->strata[0] = s->domain_field;
        s->strata[1] = s->lang_field;
        s->n_strata = strcmp(s->domain_field, s->lang_field) ? 2 : 1;
    }
    if (!s->n_mix)
        parse_mix(s, "short:0.25,medium:0.5,long:0.25");
    s->pack.bos = s->bos;
}

/* ---- per-record helpers ------------------------------------------------------ */

/* The value of field `key` as text: strings decoded, other JSON as written.
 * Returns 0 when the record has no such field. */
static int field_value(const curate_record *rec, const char *key, curate_buf *out)
{
    curate_buf_reset(out);
    const curate_member *m = curate_record_get(rec, key);
    if (!m)
        return 0;
    if (m->type == CURATE_JSON_STRING) {
        if (curate_json_string_decode(m->value, m->value_len, CURATE_SURROGATE_REPLACE, out, NULL) !=
            CURATE_OK)
            oom();
    } else if (curate_buf_append(out, m->value, m->value_len) != CURATE_OK) {
        oom();
    }
    return 1;
}

typedef struct counter {
    curate_tokenizer *tok;
    curate_token_counter *tc;
} counter;

typedef struct lengths {
    uint64_t *v;     /* per audited record; LEN_UNKNOWN when not measured */
    size_t n, cap;
    uint64_t from_field, from_tokenizer, from_unit, unknown;
} lengths;

static void lengths_push(lengths *l, uint64_t x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        uint64_t *p = realloc(l->v, cap * sizeof *p);
        if (!p)
            oom();
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

/*
 * The record's length into *len: the tokens field when present (it must be
 * a non-negative integer), else counted with the tokenizer or in the unit,
 * else LEN_UNKNOWN.  Returns 0 when the record was handled as bad input.
 */
static int record_length(cli_run *run, const settings *s, counter *c, lengths *l, uint64_t *len)
{
    curate_error err;
    curate_error_clear(&err);
    const curate_member *m = curate_record_get(&run->rec, s->tokens_field);
    if (m) {
        int64_t v;
        if (curate_record_get_int64(&run->rec, s->tokens_field, &v) != CURATE_OK || v < 0) {
            curate_error_set(&err, CURATE_ERR_FIELD_TYPE,
                             "field \"%s\" is not a non-negative integer: %.*s", s->tokens_field,
                             (int)(m->value_len > 40 ? 40 : m->value_len), m->value);
            curate_error_at(&err, run->input_name, run->line.lineno);
            return cli_run_bad(run, "bad_tokens", &err);
        }
        *len = (uint64_t)v;
        l->from_field++;
        return 1;
    }
    const char *t = run->text.data ? run->text.data : "";
    if (c->tc) {
        curate_status st = curate_token_counter_count(c->tc, t, run->text.len, len, &err);
        if (st == CURATE_ERR_NOMEM)
            oom();
        if (st != CURATE_OK) {
            curate_error_at(&err, run->input_name, run->line.lineno);
            return cli_run_bad(run, "tokenizer_error", &err);
        }
        l->from_tokenizer++;
        return 1;
    }
    if (s->unit >= 0) {
        *len = s->unit == 0 ? curate_utf8_length(t, run->text.len) : curate_word_count(t, run->text.len);
        l->from_unit++;
        return 1;
    }
    *len = LEN_UNKNOWN;
    l->unknown++;
    return 1;
}

/* Normalized key of text; invalid UTF-8 is repaired first (U+FFFD). */
static void make_key(curate_dedupe_key *k, curate_dedupe_norm norm, const char *t, size_t n,
                     curate_buf *repair, const char **key, size_t *klen)
{
    curate_error err;
    curate_error_clear(&err);
    curate_status st = curate_dedupe_key_make(k, norm, t, n, key, klen, &err);
    if (st == CURATE_ERR_UTF8) {
        curate_buf_reset(repair);
        if (curate_utf8_repair(t, n, repair, NULL) != CURATE_OK)
            oom();
        st = curate_dedupe_key_make(k, norm, repair->data ? repair->data : "", repair->len, key,
                                    klen, &err);
    }
    if (st != CURATE_OK)
        oom();
}

/* ---- evaluation sets ----------------------------------------------------------- */

/* Release what a record loop holds when cli_run_finish is not called. */
static void run_release(cli_run *r)
{
    if (r->progress_shown)
        fputs("\r\033[K", stderr);
    curate_record_release(&r->rec);
    curate_buf_release(&r->text);
    curate_buf_release(&r->extra_stats);
    curate_buf_release(&r->outbuf);
}

static void load_eval(eval_set *ev, const settings *s, curate_minhash *mh, unsigned bands,
                      unsigned rows, int quiet)
{
    curate_error err;
    curate_error_clear(&err);
    ev->exact = curate_dedupe_exact_init(&err);
    if (!ev->exact)
        oom();
    unsigned perm = curate_minhash_options(mh)->perm;
    if (s->near) {
        ev->lsh = curate_lsh_init(bands, rows, CURATE_DEDUPE_NEAR_MAX_PER_BAND, &err);
        if (!ev->lsh)
            cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
    }
    cli_run p;
    cli_run_init(&p);
    for (size_t i = 0; i < s->n_shared; i++)
        cli_run_option(&p, s->shared_ids[i], s->shared_args[i]);
    p.output_path = p.rejects_path = p.stats_path = NULL;
    p.quiet = quiet;
    char *files[1] = {(char *)ev->path};
    cli_run_start(&p, 1, files);
    curate_dedupe_key key;
    curate_dedupe_key_init(&key);
    curate_buf repair;
    curate_buf_init(&repair);
    while (cli_run_next(&p)) {
        if (!cli_run_parse(&p) || !cli_run_text(&p))
            continue;
        const char *k;
        size_t klen;
        make_key(&key, s->norm, p.text.data ? p.text.data : "", p.text.len, &repair, &k, &klen);
        int found;
        if (curate_dedupe_exact_add(ev->exact, curate_hash128(k, klen, 0), ev->records, &found,
                                    NULL) != CURATE_OK)
            oom();
        if (s->near) {
            if (ev->n_sigs == ev->cap_sigs) {
                size_t cap = ev->cap_sigs ? ev->cap_sigs * 2 : 256;
                uint32_t *q = realloc(ev->sigs, cap * perm * sizeof *q);
                if (!q)
                    oom();
                ev->sigs = q;
                ev->cap_sigs = cap;
            }
            uint32_t *sig = ev->sigs + ev->n_sigs * perm;
            if (curate_minhash_sign(mh, k, klen, sig, NULL) != CURATE_OK ||
                curate_lsh_insert(ev->lsh, sig, NULL) != CURATE_OK)
                oom();
            ev->n_sigs++;
        }
        ev->records++;
    }
    curate_dedupe_key_release(&key);
    curate_buf_release(&repair);
    run_release(&p);
}

/* ---- the report ------------------------------------------------------------- */

typedef struct warning {
    const char *rule;
    char message[512];
} warning;

typedef struct audit {
    settings *s;
    uint64_t records, bad;
    value_map domain, lang, bucket, strata;
    uint64_t strata_present; /* records with any strata field */
    uint64_t badcases;
    uint64_t exact, exact_groups, near;
    int near_done;
    lengths len;
    const char *len_unit;    /* "tokens", "chars", "words" or "mixed" */
    curate_pack_result pack[CURATE_PACK_COUNT_];
    int pack_done;
    const char *pack_skipped;
    warning warnings[64];
    size_t n_warnings;
    curate_token_counter_stats tstats;
    int have_tstats;
} audit;

static void warn_add(audit *a, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_add(audit *a, const char *rule, const char *fmt, ...)
{
    if (a->n_warnings == sizeof a->warnings / sizeof a->warnings[0])
        return;
    warning *w = &a->warnings[a->n_warnings++];
    w->rule = rule;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->message, sizeof w->message, fmt, ap);
    va_end(ap);
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Printable form of a value for the text report (control bytes as '?'). */
static void printable(const char *s, size_t n, curate_buf *out)
{
    curate_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (curate_buf_append_char(out, c < 0x20 || c == 0x7f ? '?' : (char)c) != CURATE_OK)
            oom();
    }
    if (!out->data && curate_buf_append_str(out, "") != CURATE_OK)
        oom();
}

/*
 * The rules of curate-audit(1), WARNINGS.  Each check is skipped when the
 * set has none of the fields it needs: a set without a language field is
 * not "a language with fewer than 64 samples", it is a set whose languages
 * are unknown, and the report says so in its counts.
 */
static void evaluate_warnings(audit *a)
{
    const settings *s = a->s;
    uint64_t n = a->records;
    if (n < MIN_SAMPLES)
        warn_add(a, "too_few_samples",
                 "%llu samples; PTQ practice uses %u to %u (GPTQ and AWQ statistics from fewer "
                 "samples are noisy)", (unsigned long long)n, MIN_SAMPLES, MAX_SAMPLES);
    if (n > MAX_SAMPLES)
        warn_add(a, "too_many_samples",
                 "%llu samples; more than %u adds quantization time with little gain (512 good "
                 "samples beat 5000 random ones)", (unsigned long long)n, MAX_SAMPLES);
    /* languages */
    if (a->lang.present) {
        size_t *idx = vm_sorted(&a->lang);
        curate_buf v;
        curate_buf_init(&v);
        for (size_t i = 0; i < a->lang.used; i++) {
            const vslot *sl = &a->lang.slots[idx[i]];
            if (sl->count >= MIN_PER_LANGUAGE)
                continue;
            printable(a->lang.arena.data + sl->off, sl->len, &v);
            warn_add(a, "small_language", "language \"%s\" has %llu samples, fewer than %u", v.data,
                     (unsigned long long)sl->count, MIN_PER_LANGUAGE);
        }
        curate_buf_release(&v);
        free(idx);
    }
    /* Length mix: shares over the records that have a bucket; a bucket
     * name without a target (custom edges) counts against the mix. */
    if (a->bucket.present) {
        uint64_t with = a->bucket.present;
        int off = 0;
        char detail[400] = "";
        size_t dn = 0;
        for (size_t i = 0; i < s->n_mix; i++) {
            double share = (double)vm_get(&a->bucket, s->mix[i].name) / (double)with;
            if (fabs(share - s->mix[i].share) > MIX_TOLERANCE)
                off = 1;
            int k = snprintf(detail + dn, sizeof detail - dn, "%s%s %.1f%% (target %.0f%%)",
                             i ? ", " : "", s->mix[i].name, 100.0 * share, 100.0 * s->mix[i].share);
            if (k > 0 && (size_t)k < sizeof detail - dn)
                dn += (size_t)k;
        }
        /* values outside the targets have a target of 0 */
        uint64_t other = with;
        for (size_t i = 0; i < s->n_mix; i++)
            other -= vm_get(&a->bucket, s->mix[i].name);
        if ((double)other / (double)with > MIX_TOLERANCE)
            off = 1;
        if (other) {
            int k = snprintf(detail + dn, sizeof detail - dn, ", other buckets %.1f%%",
                             pct(other, with));
            if (k > 0 && (size_t)k < sizeof detail - dn)
                dn += (size_t)k;
        }
        if (off)
            warn_add(a, "length_mix", "length mix %s: a share is more than %.0f points off",
                     detail, 100.0 * MIX_TOLERANCE);
    }
    /* One stratum over half.  The strata map is keyed by the values of the
     * --strata fields joined with 0x1f (a byte JSON text decodes to only
     * from an escape, so real values practically never contain it). */
    if (a->strata_present && a->strata.used) {
        size_t *idx = vm_sorted(&a->strata);
        const vslot *top = &a->strata.slots[idx[0]];
        if ((double)top->count > MAX_STRATUM_SHARE * (double)n) {
            curate_buf v, name;
            curate_buf_init(&v);
            curate_buf_init(&name);
            /* the key is the values joined by 0x1f */
            const char *p = a->strata.arena.data + top->off, *e = p + top->len;
            for (size_t f = 0; f < s->n_strata; f++) {
                const char *q = memchr(p, 0x1f, (size_t)(e - p));
                if (!q)
                    q = e;
                printable(p, (size_t)(q - p), &v);
                curate_buf_printf(&name, "%s%s=%s", f ? "," : "", s->strata[f], v.data);
                p = q < e ? q + 1 : e;
            }
            warn_add(a, "dominant_stratum", "stratum %s holds %.1f%% of the set (over %.0f%%)",
                     name.data, pct(top->count, n), 100.0 * MAX_STRATUM_SHARE);
            curate_buf_release(&v);
            curate_buf_release(&name);
        }
        free(idx);
    }
    for (size_t i = 0; i < s->n_evals; i++) {
        const eval_set *ev = &s->evals[i];
        if (ev->hit_exact)
            warn_add(a, "eval_overlap_exact", "%llu samples equal a text of evaluation set %s",
                     (unsigned long long)ev->hit_exact, ev->path);
        if (ev->hit_near)
            warn_add(a, "eval_overlap_near",
                     "%llu samples are near duplicates (estimated Jaccard >= %.2f) of texts of "
                     "evaluation set %s", (unsigned long long)ev->hit_near, s->near_threshold,
                     ev->path);
    }
}

/* Nearest-rank percentile of sorted v[0..n). */
static uint64_t percentile(const uint64_t *v, size_t n, double q)
{
    double r = q * (double)n - 1e-9;
    size_t rank = r <= 1.0 ? 1 : (size_t)r + ((double)(size_t)r < r);
    return v[(rank > n ? n : rank) - 1];
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Histogram bin of a length: [0,16) is bin 0, then [2^(k+3), 2^(k+4)). */
static unsigned bin_of(uint64_t v)
{
    if (v < 16)
        return 0;
    unsigned k = 0;
    while (v >> (k + 1))
        k++;
    return k - 3;
}

static uint64_t bin_lo(unsigned b) { return b ? (uint64_t)1 << (b + 3) : 0; }
static uint64_t bin_hi(unsigned b) { return (b ? (uint64_t)1 << (b + 4) : 16) - 1; }

typedef struct len_summary {
    size_t n;
    uint64_t total, min, p25, median, p75, max;
    double mean;
    uint64_t bins[64];
    unsigned n_bins;
} len_summary;

static void summarize_lengths(const lengths *l, len_summary *sm)
{
    memset(sm, 0, sizeof *sm);
    uint64_t *v = malloc((l->n ? l->n : 1) * sizeof *v);
    if (!v)
        oom();
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] != LEN_UNKNOWN) {
            v[sm->n++] = l->v[i];
            sm->total += l->v[i];
            unsigned b = bin_of(l->v[i]);
            sm->bins[b]++;
            if (b + 1 > sm->n_bins)
                sm->n_bins = b + 1;
        }
    if (sm->n) {
        qsort(v, sm->n, sizeof *v, cmp_u64);
        sm->min = v[0];
        sm->max = v[sm->n - 1];
        sm->p25 = percentile(v, sm->n, 0.25);
        sm->median = percentile(v, sm->n, 0.5);
        sm->p75 = percentile(v, sm->n, 0.75);
        sm->mean = (double)sm->total / (double)sm->n;
    }
    free(v);
}

/* -- text form -- */

static void text_counts(FILE *f, const char *title, const char *field, const value_map *m,
                        uint64_t n, uint64_t top)
{
    fprintf(f, "\n%s (field \"%s\")\n", title, field);
    if (!m->present) {
        fprintf(f, "  no record has this field\n");
        return;
    }
    size_t *idx = vm_sorted(m);
    curate_buf v;
    curate_buf_init(&v);
    uint64_t rest = 0, rest_values = 0;
    for (size_t i = 0; i < m->used; i++) {
        const vslot *s = &m->slots[idx[i]];
        if (i >= top) {
            rest += s->count;
            rest_values++;
            continue;
        }
        printable(m->arena.data + s->off, s->len, &v);
        fprintf(f, "  %-40.40s %8llu %6.1f%%\n", v.data, (unsigned long long)s->count,
                pct(s->count, n));
    }
    char label[64];
    if (rest_values) {
        snprintf(label, sizeof label, "(%llu more values)", (unsigned long long)rest_values);
        fprintf(f, "  %-40s %8llu %6.1f%%\n", label, (unsigned long long)rest, pct(rest, n));
    }
    if (m->overflow) {
        snprintf(label, sizeof label, "(values past the first %u)", MAX_DISTINCT);
        fprintf(f, "  %-40s %8llu %6.1f%%\n", label, (unsigned long long)m->overflow,
                pct(m->overflow, n));
    }
    if (m->missing)
        fprintf(f, "  %-40s %8llu %6.1f%%\n", "(missing)", (unsigned long long)m->missing,
                pct(m->missing, n));
    curate_buf_release(&v);
    free(idx);
}

static void text_lengths(FILE *f, const audit *a, const len_summary *sm)
{
    const lengths *l = &a->len;
    fprintf(f, "\nLengths in %s (%llu from \"%s\", %llu counted with the tokenizer, %llu in %s, "
               "%llu unknown)\n", a->len_unit, (unsigned long long)l->from_field,
            a->s->tokens_field, (unsigned long long)l->from_tokenizer,
            (unsigned long long)l->from_unit, a->s->unit == 1 ? "words" : "chars",
            (unsigned long long)l->unknown);
    if (!sm->n) {
        fprintf(f, "  no lengths: give --tokenizer FILE or --unit, or run curate-length-bucket "
                   "first\n");
        return;
    }
    if (!strcmp(a->len_unit, "mixed units"))
        fprintf(f, "  note: token counts and %s are mixed in this histogram\n",
                a->s->unit == 1 ? "words" : "chars");
    fprintf(f, "  total %llu  mean %.1f  min %llu  p25 %llu  median %llu  p75 %llu  max %llu\n",
            (unsigned long long)sm->total, sm->mean, (unsigned long long)sm->min,
            (unsigned long long)sm->p25, (unsigned long long)sm->median,
            (unsigned long long)sm->p75, (unsigned long long)sm->max);
    uint64_t most = 0;
    for (unsigned b = 0; b < sm->n_bins; b++)
        if (sm->bins[b] > most)
            most = sm->bins[b];
    const int width = 40;
    for (unsigned b = 0; b < sm->n_bins; b++) {
        int bar = most ? (int)((sm->bins[b] * (uint64_t)width + most - 1) / most) : 0;
        if (sm->bins[b] == 0)
            bar = 0;
        char range[48];
        snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)bin_lo(b),
                 (unsigned long long)bin_hi(b));
        fprintf(f, "  %15s |", range);
        for (int i = 0; i < width; i++)
            fputc(i < bar ? '#' : ' ', f);
        fprintf(f, "| %7llu\n", (unsigned long long)sm->bins[b]);
    }
}

static void text_packing(FILE *f, const audit *a)
{
    const curate_pack_opts *o = &a->s->pack;
    fprintf(f, "\nPacking at ctx %llu (%s)\n", (unsigned long long)o->ctx,
            o->bos ? "one BOS per sample" : "no BOS");
    if (!a->pack_done) {
        fprintf(f, "  not simulated: %s\n", a->pack_skipped);
        return;
    }
    fprintf(f, "  %-18s %21s %33s\n", "", "samples", "tokens");
    fprintf(f, "  %-18s %7s %7s %5s %12s %10s %10s\n", "consumer", "used", "dropped", "cut",
            "kept", "dropped", "truncated");
    for (int p = 0; p < CURATE_PACK_COUNT_; p++) {
        const curate_pack_result *r = &a->pack[p];
        fprintf(f, "  %-18s %7llu %7llu %5llu %12llu %10llu %10llu\n",
                curate_packer_name((curate_packer)p), (unsigned long long)r->samples_used,
                (unsigned long long)r->samples_dropped, (unsigned long long)r->samples_truncated,
                (unsigned long long)r->tokens_kept, (unsigned long long)r->tokens_dropped,
                (unsigned long long)r->tokens_truncated);
        fprintf(f, "  %-18s ", "");
        switch (p) {
        case CURATE_PACK_LLAMA_IMATRIX:
            if (r->fails)
                fprintf(f, "FAILS: %llu tokens, llama-imatrix needs at least %llu (2 x ctx)\n",
                        (unsigned long long)r->stream_tokens, (unsigned long long)(2 * o->ctx));
            else
                fprintf(f, "%llu chunks of %llu; %llu tokens overwritten by BOS\n",
                        (unsigned long long)r->units, (unsigned long long)o->ctx,
                        (unsigned long long)r->bos_overwritten);
            break;
        case CURATE_PACK_AUTOAWQ:
            fprintf(f, "%s%llu blocks of %llu; %llu over ctx, %llu past max_calib_samples %llu\n",
                    r->fails ? "FAILS: " : "", (unsigned long long)r->units,
                    (unsigned long long)o->ctx, (unsigned long long)r->dropped_long,
                    (unsigned long long)r->dropped_limit,
                    (unsigned long long)o->awq_max_samples);
            break;
        case CURATE_PACK_AUTOROUND:
            fprintf(f, "%s%llu samples of %llu; %llu under seqlen, %llu past nsamples %llu\n",
                    r->fails ? "FAILS: " : "", (unsigned long long)r->units,
                    (unsigned long long)o->ctx, (unsigned long long)r->dropped_short,
                    (unsigned long long)r->dropped_limit,
                    (unsigned long long)o->autoround_nsamples);
            break;
        default:
            fprintf(f, "%s%llu samples; %llu of %llu tokens or fewer\n", r->fails ? "FAILS: " : "",
                    (unsigned long long)r->units, (unsigned long long)r->dropped_short,
                    (unsigned long long)o->gptq_min_length);
            break;
        }
    }
}

static void write_text(FILE *f, audit *a, int n_files)
{
    const settings *s = a->s;
    uint64_t n = a->records;
    fprintf(f, "Calibration set audit: %llu records from %d file%s", (unsigned long long)n,
            n_files ? n_files : 1, n_files > 1 ? "s" : "");
    if (a->bad)
        fprintf(f, " (%llu bad records skipped)", (unsigned long long)a->bad);
    fputc('\n', f);
    text_counts(f, "Domains", s->domain_field, &a->domain, n, s->top);
    text_counts(f, "Languages", s->lang_field, &a->lang, n, s->top);
    text_counts(f, "Length buckets", s->bucket_field, &a->bucket, n, s->top);
    len_summary sm;
    summarize_lengths(&a->len, &sm);
    text_lengths(f, a, &sm);

    static const char *const norm_names[] = {"bytes", "whitespace", "NFKC", "case-folded"};
    fprintf(f, "\nDuplicates (%s-normalized text)\n", norm_names[s->norm]);
    fprintf(f, "  exact   %8llu records in %llu groups (%.1f%%)\n", (unsigned long long)a->exact,
            (unsigned long long)a->exact_groups, pct(a->exact, n));
    if (a->near_done)
        fprintf(f, "  near    %8llu records (MinHash estimate, Jaccard >= %.2f) (%.1f%%)\n",
                (unsigned long long)a->near, s->near_threshold, pct(a->near, n));
    else
        fprintf(f, "  near    not checked (--no-near)\n");
    fprintf(f, "\nBad cases (\"%s\": true)\n  %llu records (%.1f%%)\n", s->badcase_field,
            (unsigned long long)a->badcases, pct(a->badcases, n));
    if (s->n_evals) {
        fprintf(f, "\nOverlap with evaluation sets\n");
        for (size_t i = 0; i < s->n_evals; i++) {
            const eval_set *ev = &s->evals[i];
            fprintf(f, "  %s (%llu records): %llu exact", ev->path, (unsigned long long)ev->records,
                    (unsigned long long)ev->hit_exact);
            if (s->near)
                fprintf(f, ", %llu near", (unsigned long long)ev->hit_near);
            fputc('\n', f);
        }
    }
    text_packing(f, a);
    fprintf(f, "\nWarnings: %zu\n", a->n_warnings);
    for (size_t i = 0; i < a->n_warnings; i++)
        fprintf(f, "  ! %s: %s\n", a->warnings[i].rule, a->warnings[i].message);
}

/* -- JSON form -- */

static void j_str(curate_buf *b, const char *s)
{
    if (curate_buf_append_json_string(b, s, strlen(s)) != CURATE_OK)
        oom();
}

static void j_counts(curate_buf *b, const char *key, const char *field, const value_map *m)
{
    curate_buf_printf(b, ",\"%s\":{\"field\":", key);
    j_str(b, field);
    curate_buf_printf(b, ",\"present\":%llu,\"missing\":%llu,\"distinct\":%zu,\"values\":[",
                      (unsigned long long)m->present, (unsigned long long)m->missing, m->used);
    size_t *idx = vm_sorted(m);
    for (size_t i = 0; i < m->used; i++) {
        const vslot *s = &m->slots[idx[i]];
        curate_buf_append_str(b, i ? ",{\"value\":" : "{\"value\":");
        if (curate_buf_append_json_string(b, m->arena.data + s->off, s->len) != CURATE_OK)
            oom();
        curate_buf_printf(b, ",\"count\":%llu}", (unsigned long long)s->count);
    }
    curate_buf_printf(b, "],\"overflow\":%llu}", (unsigned long long)m->overflow);
    free(idx);
}

static void write_json(FILE *f, audit *a)
{
    const settings *s = a->s;
    curate_buf b;
    curate_buf_init(&b);
    curate_buf_printf(&b, "{\"records\":%llu,\"bad_records\":%llu", (unsigned long long)a->records,
                      (unsigned long long)a->bad);
    j_counts(&b, "domain", s->domain_field, &a->domain);
    j_counts(&b, "lang", s->lang_field, &a->lang);
    j_counts(&b, "bucket", s->bucket_field, &a->bucket);
    len_summary sm;
    summarize_lengths(&a->len, &sm);
    curate_buf_append_str(&b, ",\"lengths\":{\"unit\":");
    j_str(&b, a->len_unit);
    curate_buf_printf(&b, ",\"from_field\":%llu,\"from_tokenizer\":%llu,\"from_unit\":%llu,"
                      "\"unknown\":%llu,\"measured\":%zu,\"total\":%llu",
                      (unsigned long long)a->len.from_field,
                      (unsigned long long)a->len.from_tokenizer,
                      (unsigned long long)a->len.from_unit, (unsigned long long)a->len.unknown,
                      sm.n, (unsigned long long)sm.total);
    if (sm.n)
        curate_buf_printf(&b, ",\"mean\":%.6g,\"min\":%llu,\"p25\":%llu,\"median\":%llu,"
                          "\"p75\":%llu,\"max\":%llu", sm.mean, (unsigned long long)sm.min,
                          (unsigned long long)sm.p25, (unsigned long long)sm.median,
                          (unsigned long long)sm.p75, (unsigned long long)sm.max);
    curate_buf_append_str(&b, ",\"histogram\":[");
    for (unsigned k = 0; k < sm.n_bins; k++)
        curate_buf_printf(&b, "%s{\"from\":%llu,\"to\":%llu,\"count\":%llu}", k ? "," : "",
                          (unsigned long long)bin_lo(k), (unsigned long long)bin_hi(k),
                          (unsigned long long)sm.bins[k]);
    curate_buf_append_str(&b, "]}");
    static const char *const norm_keys[] = {"bytes", "whitespace", "nfkc", "casefold"};
    curate_buf_printf(&b, ",\"duplicates\":{\"normalization\":\"%s\",\"exact\":%llu,"
                      "\"exact_groups\":%llu", norm_keys[s->norm], (unsigned long long)a->exact,
                      (unsigned long long)a->exact_groups);
    if (a->near_done)
        curate_buf_printf(&b, ",\"near\":%llu,\"near_threshold\":%.6g", (unsigned long long)a->near,
                          s->near_threshold);
    else
        curate_buf_append_str(&b, ",\"near\":null");
    curate_buf_append_str(&b, "},\"badcases\":{\"field\":");
    j_str(&b, s->badcase_field);
    curate_buf_printf(&b, ",\"count\":%llu,\"share\":%.6g}", (unsigned long long)a->badcases,
                      a->records ? (double)a->badcases / (double)a->records : 0.0);
    curate_buf_append_str(&b, ",\"eval\":[");
    for (size_t i = 0; i < s->n_evals; i++) {
        const eval_set *ev = &s->evals[i];
        curate_buf_append_str(&b, i ? ",{\"file\":" : "{\"file\":");
        j_str(&b, ev->path);
        curate_buf_printf(&b, ",\"records\":%llu,\"exact\":%llu,", (unsigned long long)ev->records,
                          (unsigned long long)ev->hit_exact);
        if (s->near)
            curate_buf_printf(&b, "\"near\":%llu}", (unsigned long long)ev->hit_near);
        else
            curate_buf_append_str(&b, "\"near\":null}");
    }
    const curate_pack_opts *o = &s->pack;
    curate_buf_printf(&b, "],\"packing\":{\"ctx\":%llu,\"bos\":%s,\"awq_max_samples\":%llu,"
                      "\"autoround_nsamples\":%llu,\"gptq_min_length\":%llu",
                      (unsigned long long)o->ctx, o->bos ? "true" : "false",
                      (unsigned long long)o->awq_max_samples,
                      (unsigned long long)o->autoround_nsamples,
                      (unsigned long long)o->gptq_min_length);
    if (!a->pack_done) {
        curate_buf_append_str(&b, ",\"skipped\":");
        j_str(&b, a->pack_skipped);
    } else {
        for (int p = 0; p < CURATE_PACK_COUNT_; p++) {
            const curate_pack_result *r = &a->pack[p];
            curate_buf_printf(
                &b,
                ",\"%s\":{\"fails\":%s,\"samples_used\":%llu,\"samples_dropped\":%llu,"
                "\"samples_truncated\":%llu,\"tokens_kept\":%llu,\"tokens_dropped\":%llu,"
                "\"tokens_truncated\":%llu,\"dropped_short\":%llu,\"dropped_long\":%llu,"
                "\"dropped_limit\":%llu,\"dropped_tail\":%llu,\"dropped_empty\":%llu,"
                "\"units\":%llu,\"unit_tokens\":%llu,\"bos_overwritten\":%llu,"
                "\"stream_tokens\":%llu}",
                curate_packer_key((curate_packer)p), r->fails ? "true" : "false",
                (unsigned long long)r->samples_used, (unsigned long long)r->samples_dropped,
                (unsigned long long)r->samples_truncated, (unsigned long long)r->tokens_kept,
                (unsigned long long)r->tokens_dropped, (unsigned long long)r->tokens_truncated,
                (unsigned long long)r->dropped_short, (unsigned long long)r->dropped_long,
                (unsigned long long)r->dropped_limit, (unsigned long long)r->dropped_tail,
                (unsigned long long)r->dropped_empty, (unsigned long long)r->units,
                (unsigned long long)r->unit_tokens, (unsigned long long)r->bos_overwritten,
                (unsigned long long)r->stream_tokens);
        }
    }
    curate_buf_append_str(&b, "},\"warnings\":[");
    for (size_t i = 0; i < a->n_warnings; i++) {
        curate_buf_append_str(&b, i ? ",{\"rule\":" : "{\"rule\":");
        j_str(&b, a->warnings[i].rule);
        curate_buf_append_str(&b, ",\"message\":");
        j_str(&b, a->warnings[i].message);
        curate_buf_append_char(&b, '}');
    }
    curate_buf_append_str(&b, "]}\n");
    if (!b.data)
        oom();
    fwrite(b.data, 1, b.len, f); /* errors are caught when the output is closed */
    curate_buf_release(&b);
}

/* ---- main ----------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    static settings s;
    s.near = 1;
    s.bos = 1;
    s.unit = -1;
    s.domain_field = "domain";
    s.lang_field = "lang";
    s.bucket_field = "bucket";
    s.tokens_field = "tokens";
    s.badcase_field = "badcase";
    s.norm = CURATE_DEDUPE_NORM_WHITESPACE;
    s.top = 20;
    curate_pack_opts_default(&s.pack);
    curate_dedupe_near_opts nopts;
    curate_dedupe_near_opts_default(&nopts);
    s.near_threshold = nopts.threshold;
    int first;
    parse_options(argc, argv, &run, &s, &first);
    nopts.threshold = s.near_threshold;

    curate_error err;
    curate_error_clear(&err);
    counter c = {NULL, NULL};
    if (s.tokenizer_path) {
        c.tok = curate_tokenizer_load(s.tokenizer_path, &err);
        if (!c.tok) {
            cli_error_lib(&err);
            return err.code == CURATE_ERR_IO ? CLI_EXIT_IO : CLI_EXIT_DATA;
        }
        c.tc = curate_token_counter_init(c.tok, NULL, &err);
        if (!c.tc)
            cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
    }

    /* Duplicate detection over the set, and MinHash for the eval sets.  The
     * eval indexes use the banding curate_dedupe_near chooses for the same
     * options, so "near" means the same thing in both places. */
    curate_dedupe_near *near = NULL;
    curate_dedupe_exact *exact = NULL;
    curate_minhash *mh = NULL;
    unsigned bands = 0, rows = 0;
    if (s.near || s.n_evals) {
        near = curate_dedupe_near_init(&nopts, &err);
        if (!near)
            cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
        curate_dedupe_near_banding(near, &bands, &rows);
    }
    if (!s.near) {
        curate_dedupe_near_free(near);
        near = NULL;
        exact = curate_dedupe_exact_init(&err);
        if (!exact)
            oom();
    }
    if (s.n_evals) {
        mh = curate_minhash_init(&nopts.minhash, &err);
        if (!mh)
            cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
        for (size_t i = 0; i < s.n_evals; i++)
            load_eval(&s.evals[i], &s, mh, bands, rows, run.quiet);
    }
    unsigned perm = nopts.minhash.perm;
    uint32_t *sig = malloc(perm * sizeof *sig);
    if (!sig)
        oom();

    static audit a;
    a.s = &s;
    vm_init(&a.domain);
    vm_init(&a.lang);
    vm_init(&a.bucket);
    vm_init(&a.strata);
    uint8_t *group_seen = NULL; /* per record: already counted as an exact group */
    size_t group_cap = 0;

    curate_dedupe_key key;
    curate_dedupe_key_init(&key);
    curate_buf val, skey, repair;
    curate_buf_init(&val);
    curate_buf_init(&skey);
    curate_buf_init(&repair);

    cli_run_start(&run, argc - first, argv + first);
    while (cli_run_next(&run)) {
        if (!cli_run_parse(&run) || !cli_run_text(&run))
            continue;
        /* Lengths are kept per record, in file order: the packing replay
         * needs the order (AutoAWQ takes the first samples that fit,
         * llama.cpp cuts one stream). */
        uint64_t len;
        if (!record_length(&run, &s, &c, &a.len, &len))
            continue;
        uint64_t ref = a.records++;
        lengths_push(&a.len, len);

        struct {
            const char *field;
            value_map *m;
        } fields[] = {{s.domain_field, &a.domain}, {s.lang_field, &a.lang}, {s.bucket_field, &a.bucket}};
        for (size_t i = 0; i < 3; i++) {
            if (field_value(&run.rec, fields[i].field, &val))
                vm_add(fields[i].m, val.data ? val.data : "", val.len);
            else
                fields[i].m->missing++;
        }
        curate_buf_reset(&skey);
        int any = 0;
        for (size_t i = 0; i < s.n_strata; i++) {
            if (i)
                curate_buf_append_char(&skey, 0x1f);
            if (field_value(&run.rec, s.strata[i], &val)) {
                any = 1;
                curate_buf_append(&skey, val.data ? val.data : "", val.len > 64 ? 64 : val.len);
            } else {
                curate_buf_append_char(&skey, '-');
            }
        }
        a.strata_present += any;
        vm_add(&a.strata, skey.data ? skey.data : "", skey.len);
        const curate_member *bc = curate_record_get(&run.rec, s.badcase_field);
        a.badcases += bc && bc->type == CURATE_JSON_TRUE;

        const char *k;
        size_t klen;
        make_key(&key, s.norm, run.text.data ? run.text.data : "", run.text.len, &repair, &k, &klen);
        uint64_t first_ref = ref;
        int is_exact = 0;
        if (near) {
            curate_dedupe_match m;
            if (curate_dedupe_near_add(near, k, klen, ref, &m, &err) != CURATE_OK)
                cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
            is_exact = m.verdict == CURATE_DEDUPE_EXACT;
            a.near += m.verdict == CURATE_DEDUPE_NEAR;
            first_ref = m.first_ref;
        } else {
            int found;
            if (curate_dedupe_exact_add(exact, curate_hash128(k, klen, 0), ref, &found,
                                        &first_ref) != CURATE_OK)
                oom();
            is_exact = found;
        }
        /* A group is counted once, at its second member: one byte per
         * record says whether its first member was seen repeated. */
        if (is_exact) {
            a.exact++;
            if (first_ref >= group_cap) {
                size_t cap = group_cap ? group_cap : 1024;
                while (cap <= first_ref)
                    cap *= 2;
                uint8_t *g = realloc(group_seen, cap);
                if (!g)
                    oom();
                memset(g + group_cap, 0, cap - group_cap);
                group_seen = g;
                group_cap = cap;
            }
            if (!group_seen[first_ref]) {
                group_seen[first_ref] = 1;
                a.exact_groups++;
            }
        }
        /* Overlap with each evaluation set.  Set records go into the eval
         * set's exact table with the reference UINT64_MAX, so a later set
         * record equal to an earlier one is found with that reference and
         * not mistaken for an evaluation text; only the evaluation
         * records carry their own indices. */
        if (s.n_evals) {
            curate_h128 h = curate_hash128(k, klen, 0);
            int signed_ = 0;
            for (size_t i = 0; i < s.n_evals; i++) {
                eval_set *ev = &s.evals[i];
                int found;
                uint64_t fr = 0;
                if (curate_dedupe_exact_add(ev->exact, h, UINT64_MAX, &found, &fr) != CURATE_OK)
                    oom();
                if (found && fr != UINT64_MAX) {
                    ev->hit_exact++;
                    continue;
                }
                if (!s.near || !ev->n_sigs)
                    continue;
                if (!signed_ && curate_minhash_sign(mh, k, klen, sig, NULL) != CURATE_OK)
                    oom();
                signed_ = 1;
                const uint32_t *ids;
                size_t nid;
                if (curate_lsh_query(ev->lsh, sig, &ids, &nid, NULL) != CURATE_OK)
                    oom();
                for (size_t j = 0; j < nid; j++)
                    if (curate_minhash_similarity(sig, ev->sigs + (size_t)ids[j] * perm, perm) >=
                        s.near_threshold) {
                        ev->hit_near++;
                        break;
                    }
            }
        }
    }
    a.bad = run.records_rejected;
    a.near_done = s.near;

    /* Lengths: in which unit, and can the packing be replayed? */
    const lengths *l = &a.len;
    uint64_t tok_lengths = l->from_field + l->from_tokenizer;
    a.len_unit = l->from_unit == 0 ? "tokens"
                 : tok_lengths == 0 ? (s.unit == 1 ? "words" : "chars")
                                    : "mixed units";
    if (a.records == 0)
        a.pack_skipped = "no records";
    else if (l->unknown || l->from_unit)
        a.pack_skipped = "some records have no token count (give --tokenizer, or run "
                         "curate-length-bucket with a tokenizer first)";
    else {
        a.pack_done = 1;
        for (int p = 0; p < CURATE_PACK_COUNT_; p++)
            if (curate_pack_simulate((curate_packer)p, l->v, l->n, &s.pack, &a.pack[p]) !=
                CURATE_OK) {
                a.pack_done = 0;
                a.pack_skipped = "token counts too large to add up";
                break;
            }
    }
    evaluate_warnings(&a);

    if (s.json)
        write_json(run.out, &a);
    else
        write_text(run.out, &a, argc - first);

    curate_buf *x = &run.extra_stats;
    curate_buf_printf(x, ",\"audit\":{\"records\":%llu,\"warnings\":[", (unsigned long long)a.records);
    for (size_t i = 0; i < a.n_warnings; i++) {
        if (i)
            curate_buf_append_char(x, ',');
        j_str(x, a.warnings[i].rule);
    }
    curate_buf_append_str(x, "]}");
    /* The shared summary ("N read, 0 written") would only confuse: the
     * report is the output. */
    run.quiet = 1;
    int status = cli_run_finish(&run);

    curate_dedupe_key_release(&key);
    curate_buf_release(&val);
    curate_buf_release(&skey);
    curate_buf_release(&repair);
    free(group_seen);
    free(sig);
    free(a.len.v);
    vm_free(&a.domain);
    vm_free(&a.lang);
    vm_free(&a.bucket);
    vm_free(&a.strata);
    for (size_t i = 0; i < s.n_evals; i++) {
        curate_dedupe_exact_free(s.evals[i].exact);
        curate_lsh_free(s.evals[i].lsh);
        free(s.evals[i].sigs);
    }
    curate_minhash_free(mh);
    curate_dedupe_near_free(near);
    curate_dedupe_exact_free(exact);
    curate_token_counter_free(c.tc);
    curate_tokenizer_free(c.tok);
    if (status == CLI_EXIT_OK && s.strict && a.n_warnings)
        status = CLI_EXIT_DATA;
    return status;
}
