/*
 * curate-dedupe - drop exact and near-duplicate records, keeping the first.
 *
 * exact: XXH3-128 of the normalized text in a set of ~32 bytes per
 * distinct text.  near: the same exact step, then MinHash + LSH candidates
 * verified by estimated Jaccard, clusters joined (libcurate's
 * curate_dedupe_near).  Rejected records carry "dup_of" (the kept record's
 * id, or its line) and, in near mode, "similarity".
 *
 * References: every kept record is remembered by a 64-bit ref.  Records
 * with an id (string or number) keep the id's raw JSON bytes in one
 * append-only arena and the ref is the arena offset; records without one
 * are named by input number and line, packed into the ref with the top
 * bit set.  The id is appended before the lookup and taken back when the
 * record turns out to be a duplicate, so duplicates cost nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "curate/dedupe.h"
#include "curate/hash.h"
#include "curate/minhash.h"

enum {
    OPT_MODE = 1000, OPT_NORMALIZE, OPT_ID_FIELD, OPT_SHINGLE, OPT_NGRAM, OPT_PERM,
    OPT_THRESHOLD, OPT_BANDS, OPT_ROWS, OPT_SEED, OPT_MAX_PER_BAND
};

/* The defaults, chosen by measurement (docs/curate-dedupe.1, "DEFAULTS"). */
#define DEFAULT_WORD_NGRAM 3u
#define DEFAULT_CHAR_NGRAM 5u
#define DEFAULT_PERM 128u
#define DEFAULT_THRESHOLD 0.5

static const cli_option options[] = {
    {"mode", 'm', CLI_REQ_ARG, "MODE",
     "'exact' (default): same normalized text; 'near': also texts whose\n"
     "estimated Jaccard similarity reaches --threshold", OPT_MODE},
    {"normalize", 0, CLI_REQ_ARG, "LEVEL",
     "what counts as the same text: 'bytes', 'whitespace', 'nfkc' or\n"
     "'casefold' (default: NFKC, case folding and whitespace collapsed)", OPT_NORMALIZE},
    {"id-field", 0, CLI_REQ_ARG, "NAME",
     "field whose value names the kept record in dup_of (default: id);\n"
     "records without it, or an empty NAME, use the line number", OPT_ID_FIELD},
    {"shingle", 0, CLI_REQ_ARG, "UNIT", "near: shingles of 'word' (default) or 'char' (code points)",
     OPT_SHINGLE},
    {"ngram", 'n', CLI_REQ_ARG, "N", "near: units per shingle, 1-64 (default: 3 words, 5 chars)",
     OPT_NGRAM},
    {"perm", 0, CLI_REQ_ARG, "P", "near: MinHash permutations, 1-1024 (default 128)", OPT_PERM},
    {"threshold", 't', CLI_REQ_ARG, "T",
     "near: estimated Jaccard similarity that makes a duplicate,\n"
     "in (0, 1] (default 0.5)", OPT_THRESHOLD},
    {"bands", 0, CLI_REQ_ARG, "B",
     "near: LSH bands (with --rows; default: chosen from --threshold)", OPT_BANDS},
    {"rows", 0, CLI_REQ_ARG, "R", "near: rows per LSH band (with --bands)", OPT_ROWS},
    {"seed", 0, CLI_REQ_ARG, "S", "near: seed of the MinHash permutations (default 0)", OPT_SEED},
    {"max-per-band", 0, CLI_REQ_ARG, "N",
     "near: at most N earlier records from one LSH bucket, newest first\n"
     "(default 64; 0 = no limit)", OPT_MAX_PER_BAND},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-dedupe",
    "[OPTION]... [FILE]...",
    "Drop duplicate and near-duplicate JSONL records, keeping the first of each.",
    "Reads JSON Lines from the FILEs in order (standard input if none, or '-'),\n"
    "writes every record whose text was not seen before, byte for byte, and\n"
    "sends duplicates to --rejects with \"dup_of\" (and \"similarity\" in near mode).",
    options,
    CLI_COMMON_ALL,
    "Memory: exact mode keeps about 32 bytes per distinct text (plus the id\n"
    "bytes of kept records); near mode adds 2*P bytes of signature and the LSH\n"
    "index per kept record.  Peak RSS is in --stats.",
};

/* ---- references ---------------------------------------------------------- */

#define REF_LINE_BIT ((uint64_t)1 << 63)
#define REF_LINE_BITS 40
#define REF_MAX_LINE (((uint64_t)1 << REF_LINE_BITS) - 1)
#define REF_MAX_INPUT (((uint64_t)1 << (63 - REF_LINE_BITS)) - 1)

typedef struct refs {
    const char *id_field;   /* NULL: always lines */
    curate_buf ids;         /* varint length + raw JSON id, back to back */
    char **names;           /* input names by number */
    size_t n_names, cap_names;
    const char *last_name;  /* run->input_name of the last record */
    int several_inputs;
} refs;

static void oom(void)
{
    cli_die(CLI_EXIT_INTERNAL, "out of memory");
}

/* Input number of the current record (names are remembered for dup_of). */
static size_t input_number(refs *r, const char *name)
{
    /* The pointer is a cheap first test; the name decides (a reader's name
     * may be freed and another allocated at the same address). */
    if (r->n_names && r->last_name == name && strcmp(r->names[r->n_names - 1], name) == 0)
        return r->n_names - 1;
    if (r->n_names == r->cap_names) {
        size_t cap = r->cap_names ? r->cap_names * 2 : 8;
        char **p = realloc(r->names, cap * sizeof *p);
        if (!p)
            oom();
        r->names = p;
        r->cap_names = cap;
    }
    r->names[r->n_names] = strdup(name);
    if (!r->names[r->n_names])
        oom();
    r->last_name = name;
    return r->n_names++;
}

/* Make the ref of the current record; *arena_mark receives the arena length
 * before any id was appended, so a duplicate can give the bytes back. */
static uint64_t make_ref(refs *r, cli_run *run, size_t *arena_mark)
{
    *arena_mark = r->ids.len;
    if (r->id_field) {
        const curate_member *m = curate_record_get(&run->rec, r->id_field);
        if (m && (m->type == CURATE_JSON_STRING || m->type == CURATE_JSON_NUMBER)) {
            unsigned char len[10];
            size_t k = 0;
            uint64_t v = m->value_len;
            do {
                len[k++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
                v >>= 7;
            } while (v);
            uint64_t off = r->ids.len;
            if (curate_buf_append(&r->ids, len, k) != CURATE_OK ||
                curate_buf_append(&r->ids, m->value, m->value_len) != CURATE_OK)
                oom();
            return off;
        }
    }
    size_t in = input_number(r, run->input_name);
    uint64_t line = run->line.lineno;
    if (line > REF_MAX_LINE || in > REF_MAX_INPUT)
        cli_die(CLI_EXIT_INTERNAL, "too many lines or inputs to name duplicates by line");
    return REF_LINE_BIT | ((uint64_t)in << REF_LINE_BITS) | line;
}

/* Append the JSON value naming ref to b. */
static void append_ref(refs *r, uint64_t ref, curate_buf *b)
{
    curate_status st;
    if (ref & REF_LINE_BIT) {
        uint64_t line = ref & REF_MAX_LINE;
        size_t in = (size_t)((ref & ~REF_LINE_BIT) >> REF_LINE_BITS);
        if (!r->several_inputs) {
            st = curate_buf_printf(b, "%llu", (unsigned long long)line);
        } else {
            char tail[32];
            snprintf(tail, sizeof tail, ":%llu", (unsigned long long)line);
            curate_buf s;
            curate_buf_init(&s);
            st = curate_buf_append_str(&s, r->names[in]);
            if (st == CURATE_OK)
                st = curate_buf_append_str(&s, tail);
            if (st == CURATE_OK)
                st = curate_buf_append_json_string(b, s.data, s.len);
            curate_buf_release(&s);
        }
    } else {
        const unsigned char *p = (const unsigned char *)r->ids.data + ref;
        uint64_t len = 0;
        unsigned shift = 0;
        do {
            len |= (uint64_t)(*p & 0x7F) << shift;
            shift += 7;
        } while (*p++ & 0x80);
        st = curate_buf_append(b, p, (size_t)len);
    }
    if (st != CURATE_OK)
        oom();
}

/* ---- main ------------------------------------------------------------------ */

typedef struct settings {
    int near;
    curate_dedupe_norm norm;
    curate_dedupe_near_opts nopts;
    int ngram_given;
} settings;

static void parse_options(int argc, char **argv, cli_run *run, settings *s, refs *r, int *first)
{
    static const char *const modes[] = {"exact", "near", NULL};
    static const char *const norms[] = {"bytes", "whitespace", "nfkc", "casefold", NULL};
    static const char *const units[] = {"word", "char", NULL};
    int near_only = 0; /* a near-mode option was given */
    const char *arg;
    int id, optind_out = 1;
    while ((id = cli_getopt(argc, argv, &arg, &optind_out)) != -1) {
        if (cli_run_option(run, id, arg))
            continue;
        switch (id) {
        case OPT_MODE: s->near = cli_parse_choice("--mode", arg, modes); break;
        case OPT_NORMALIZE:
            s->norm = (curate_dedupe_norm)cli_parse_choice("--normalize", arg, norms);
            break;
        case OPT_ID_FIELD: r->id_field = *arg ? arg : NULL; break;
        case OPT_SHINGLE:
            s->nopts.minhash.kind = (curate_shingle_kind)cli_parse_choice("--shingle", arg, units);
            near_only = 1;
            break;
        case OPT_NGRAM:
            s->nopts.minhash.ngram =
                (unsigned)cli_parse_u64("--ngram", arg, 1, CURATE_MINHASH_MAX_NGRAM, 0);
            s->ngram_given = 1;
            near_only = 1;
            break;
        case OPT_PERM:
            s->nopts.minhash.perm =
                (unsigned)cli_parse_u64("--perm", arg, 1, CURATE_MINHASH_MAX_PERM, 0);
            near_only = 1;
            break;
        case OPT_THRESHOLD:
            s->nopts.threshold = cli_parse_double("--threshold", arg, 0.0, 1.0);
            if (!(s->nopts.threshold > 0.0))
                cli_usage_error("--threshold: must be above 0");
            near_only = 1;
            break;
        case OPT_BANDS:
            s->nopts.bands = (unsigned)cli_parse_u64("--bands", arg, 1, CURATE_MINHASH_MAX_PERM, 0);
            near_only = 1;
            break;
        case OPT_ROWS:
            s->nopts.rows = (unsigned)cli_parse_u64("--rows", arg, 1, CURATE_MINHASH_MAX_PERM, 0);
            near_only = 1;
            break;
        case OPT_SEED:
            s->nopts.minhash.seed = cli_parse_u64("--seed", arg, 0, UINT64_MAX, 0);
            near_only = 1;
            break;
        case OPT_MAX_PER_BAND:
            s->nopts.max_per_band =
                (size_t)cli_parse_u64("--max-per-band", arg, 0, UINT32_MAX, 0);
            if (s->nopts.max_per_band == 0)
                s->nopts.max_per_band = SIZE_MAX; /* library: 0 would mean "default" */
            near_only = 1;
            break;
        default: cli_usage_error("unhandled option");
        }
    }
    *first = optind_out;
    if (near_only && !s->near)
        cli_usage_error("--shingle, --ngram, --perm, --threshold, --bands, --rows, --seed and "
                        "--max-per-band need --mode near");
    if ((s->nopts.bands == 0) != (s->nopts.rows == 0))
        cli_usage_error("--bands and --rows go together");
    if (!s->ngram_given)
        s->nopts.minhash.ngram = s->nopts.minhash.kind == CURATE_SHINGLE_CHAR ? DEFAULT_CHAR_NGRAM
                                                                             : DEFAULT_WORD_NGRAM;
    if (s->nopts.bands &&
        (uint64_t)s->nopts.bands * s->nopts.rows > s->nopts.minhash.perm)
        cli_usage_error("--bands x --rows (%u x %u) exceeds --perm %u", s->nopts.bands,
                        s->nopts.rows, s->nopts.minhash.perm);
}

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    settings s;
    memset(&s, 0, sizeof s);
    s.norm = CURATE_DEDUPE_NORM_CASEFOLD;
    curate_dedupe_near_opts_default(&s.nopts);
    s.nopts.minhash.perm = DEFAULT_PERM;
    s.nopts.threshold = DEFAULT_THRESHOLD;
    refs r;
    memset(&r, 0, sizeof r);
    r.id_field = "id";
    curate_buf_init(&r.ids);
    int first;
    parse_options(argc, argv, &run, &s, &r, &first);
    r.several_inputs = argc - first > 1;

    curate_error err;
    curate_error_clear(&err);
    curate_dedupe_exact *exact = NULL;
    curate_dedupe_near *near = NULL;
    if (s.near) {
        near = curate_dedupe_near_init(&s.nopts, &err);
        if (!near) {
            if (err.code == CURATE_ERR_INVALID)
                cli_usage_error("%s", err.message);
            cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
        }
    } else {
        exact = curate_dedupe_exact_init(&err);
        if (!exact)
            cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
    }

    curate_dedupe_key key;
    curate_dedupe_key_init(&key);
    curate_buf extra;
    curate_buf_init(&extra);
    uint64_t n_exact = 0, n_near = 0;

    cli_run_start(&run, argc - first, argv + first);
    while (cli_run_next(&run)) {
        if (!cli_run_parse(&run) || !cli_run_text(&run))
            continue;
        const char *k;
        size_t klen;
        /* err is only read after a failure, which fills it (no per-record
         * clear: the struct is a kilobyte). */
        curate_status st = curate_dedupe_key_make(&key, s.norm, run.text.data ? run.text.data : "",
                                                  run.text.len, &k, &klen, &err);
        if (st == CURATE_ERR_UTF8) {
            /* The library's offset is into the decoded text, not the line:
             * say so in the message rather than as "at byte N". */
            uint64_t off = err.offset;
            curate_error_clear(&err);
            curate_error_set(&err, CURATE_ERR_UTF8,
                             "invalid UTF-8 in field \"%s\" at byte %llu of its value", run.field,
                             (unsigned long long)off);
            curate_error_at(&err, run.input_name, run.line.lineno);
            cli_run_bad(&run, "invalid_utf8", &err);
            continue;
        }
        if (st != CURATE_OK)
            oom();

        size_t mark;
        uint64_t ref = make_ref(&r, &run, &mark);
        uint64_t kept;
        double sim = 0.0;
        int verdict;
        if (!s.near) {
            int found = 0;
            st = curate_dedupe_exact_add(exact, curate_hash128(k, klen, 0), ref, &found, &kept);
            if (st != CURATE_OK)
                cli_die(CLI_EXIT_INTERNAL, "%s: %s", run.input_name, curate_strerror(st));
            verdict = found ? CURATE_DEDUPE_EXACT : CURATE_DEDUPE_NEW;
        } else {
            curate_dedupe_match m;
            st = curate_dedupe_near_add(near, k, klen, ref, &m, &err);
            if (st != CURATE_OK)
                cli_die(CLI_EXIT_INTERNAL, "%s: %s", run.input_name, err.message);
            verdict = (int)m.verdict;
            kept = m.first_ref;
            sim = m.similarity;
        }
        if (verdict == CURATE_DEDUPE_NEW) {
            cli_run_write(&run);
            continue;
        }
        if (verdict == CURATE_DEDUPE_EXACT && r.ids.len != mark) {
            r.ids.len = mark; /* the duplicate's id is not kept */
            r.ids.data[mark] = 0;
        }
        curate_buf_reset(&extra);
        if (curate_buf_append_str(&extra, "\"dup_of\":") != CURATE_OK)
            oom();
        append_ref(&r, kept, &extra);
        if (s.near && curate_buf_printf(&extra, ",\"similarity\":%.4f", sim) != CURATE_OK)
            oom();
        if (verdict == CURATE_DEDUPE_EXACT) {
            n_exact++;
            cli_run_reject(&run, "duplicate", extra.data);
        } else {
            n_near++;
            cli_run_reject(&run, "near_duplicate", extra.data);
        }
    }

    /* --stats: what was kept and what it cost. */
    curate_buf *x = &run.extra_stats;
    int ok = curate_buf_printf(
        x, ",\"dedupe\":{\"mode\":\"%s\",\"normalize\":\"%s\",\"duplicates\":%llu",
        s.near ? "near" : "exact", curate_dedupe_norm_name(s.norm), (unsigned long long)n_exact) == CURATE_OK;
    if (!s.near) {
        ok &= curate_buf_printf(x, ",\"distinct\":%llu,\"index_bytes\":%llu",
                                 (unsigned long long)curate_dedupe_exact_count(exact),
                                 (unsigned long long)curate_dedupe_exact_memory(exact)) ==
              CURATE_OK;
    } else {
        curate_dedupe_near_stats ns;
        curate_dedupe_near_get_stats(near, &ns);
        unsigned b, rw;
        curate_dedupe_near_banding(near, &b, &rw);
        const curate_dedupe_near_opts *o = curate_dedupe_near_options(near);
        ok &= curate_buf_printf(
            x,
            ",\"near_duplicates\":%llu,\"distinct\":%llu,\"shingle\":\"%s\",\"ngram\":%u,"
            "\"perm\":%u,\"threshold\":%g,\"bands\":%u,\"rows\":%u,\"seed\":%llu,"
            "\"candidates\":%llu,\"verified\":%llu,\"clusters_merged\":%llu,"
            "\"truncated_queries\":%llu,\"index_bytes\":%llu",
            (unsigned long long)n_near, (unsigned long long)(ns.texts - ns.exact - ns.near),
            o->minhash.kind == CURATE_SHINGLE_CHAR ? "char" : "word", o->minhash.ngram,
            o->minhash.perm, o->threshold, b, rw, (unsigned long long)o->minhash.seed,
            (unsigned long long)ns.candidates, (unsigned long long)ns.verified,
            (unsigned long long)ns.clusters_merged, (unsigned long long)ns.truncated,
            (unsigned long long)curate_dedupe_near_memory(near)) == CURATE_OK;
    }
    ok &= curate_buf_printf(x, ",\"id_bytes\":%llu}", (unsigned long long)r.ids.cap) == CURATE_OK;
    if (!ok)
        oom();

    int status = cli_run_finish(&run);
    curate_dedupe_exact_free(exact);
    curate_dedupe_near_free(near);
    curate_dedupe_key_release(&key);
    curate_buf_release(&extra);
    curate_buf_release(&r.ids);
    for (size_t i = 0; i < r.n_names; i++)
        free(r.names[i]);
    free(r.names);
    return status;
}
