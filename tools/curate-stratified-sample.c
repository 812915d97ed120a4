/*
 * curate-stratified-sample - sample N records (or N tokens) by strata, in
 * one streaming pass, reproducibly.
 *
 * Every record is offered to the reservoir of its stratum (libcurate's
 * curate_sampler); the quotas are fixed at the end, when the stratum sizes
 * are known, and the chosen records are written in input order.  A record
 * that is not chosen is accounted for as a reject with reason
 * "not_sampled", so read = written + rejected holds as for every filter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "curate/hash.h"
#include "curate/jsonl.h"
#include "curate/rng.h"
#include "curate/sample.h"

enum {
    OPT_BY = 1000,
    OPT_N,
    OPT_TOKENS,
    OPT_ALLOC,
    OPT_MIN,
    OPT_SEED,
    OPT_MAX_STRATA
};

static const cli_option options[] = {
    {"by", 0, CLI_REQ_ARG, "FIELDS", "strata fields, comma-separated (e.g. domain,lang,bucket);\n"
     "a missing field is the value '-'; default: one stratum", OPT_BY},
    {"n", 'n', CLI_REQ_ARG, "N", "sample N records", OPT_N},
    {"tokens", 0, CLI_REQ_ARG, "N", "sample up to N tokens instead (K, M, G suffixes); needs an\n"
     "integer \"tokens\" field in every record (curate-length-bucket)", OPT_TOKENS},
    {"alloc", 0, CLI_REQ_ARG, "MODE", "equal (default), proportional, explicit shares\n"
     "FIELD=VALUE:SHARE,... (e.g. bucket=short:0.25,medium:0.5,long:0.25),\n"
     "or @FILE holding such shares", OPT_ALLOC},
    {"min-per-stratum", 0, CLI_REQ_ARG, "K", "give every stratum at least K records (tokens with\n"
     "--tokens), or all it has if fewer", OPT_MIN},
    {"seed", 0, CLI_REQ_ARG, "S", "random seed (default 0); the same input, options and seed\n"
     "give the same output", OPT_SEED},
    {"max-strata", 0, CLI_REQ_ARG, "N", "fail when the --by fields give more than N strata\n"
     "(default 10000)", OPT_MAX_STRATA},
    {"max-record-bytes", 0, CLI_REQ_ARG, "N", "longest accepted record line (default 64M; K, M, G\n"
     "suffixes)", CLI_OPT_MAX_RECORD},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-stratified-sample",
    "[OPTION]... (--n N | --tokens N) [FILE]...",
    "Sample N records or N tokens from JSONL by strata, in one pass, reproducibly.",
    "Records are grouped into strata by the values of the --by fields; the budget\n"
    "is split across strata by --alloc, and each stratum gives a uniform random\n"
    "sample of its quota.  A stratum with too few records gives all it has and\n"
    "the rest goes to the others (reported on standard error and in --stats).\n"
    "Chosen records are written unchanged, in input order; the others count as\n"
    "rejected with reason \"not_sampled\".",
    options,
    CLI_COMMON_OUTPUT | CLI_COMMON_FILTER | CLI_COMMON_STATS,
    "Memory: each stratum keeps up to N records (the largest quota it could get),\n"
    "so the worst case is N x (number of strata) records: about 100 bytes each when\n"
    "the inputs are regular files (chosen records are read again at the end), the\n"
    "record's line from a pipe.",
};

static const char *alloc_name(curate_alloc_mode m)
{
    return m == CURATE_ALLOC_EQUAL ? "equal" : m == CURATE_ALLOC_PROPORTIONAL ? "proportional"
                                                                             : "shares";
}

/* Split "a,b,c" into fields (the string is modified in place). */
static size_t split_fields(char *s, char **out, size_t max)
{
    size_t n = 0;
    for (char *p = s;;) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        if (!*p)
            cli_usage_error("--by: empty field name in '%s'", s);
        if (n == max)
            cli_usage_error("--by: at most %zu fields", max);
        for (size_t i = 0; i < n; i++)
            if (strcmp(out[i], p) == 0)
                cli_usage_error("--by: field '%s' given twice", p);
        out[n++] = p;
        if (!c)
            break;
        p = c + 1;
    }
    return n;
}

/* A stratum's name for messages: "domain=code,lang=en" (control bytes
 * shown as '?'; long values cut). */
static void stratum_name(const char *const *fields, size_t nf, const curate_stratum_info *si,
                         curate_buf *b)
{
    curate_buf_reset(b);
    if (nf == 0) {
        curate_buf_append_str(b, "(all)");
        return;
    }
    for (size_t f = 0; f < nf; f++) {
        curate_buf_printf(b, "%s%s=", f ? "," : "", fields[f]);
        size_t n = si->value_lens[f] > 80 ? 80 : si->value_lens[f];
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)si->values[f][i];
            curate_buf_append_char(b, c < 0x20 || c == 0x7f ? '?' : (char)c);
        }
        if (n < si->value_lens[f])
            curate_buf_append_str(b, "...");
    }
}

/*
 * Where kept records live.  When every input is a regular file, the
 * reservoirs hold only each record's position (input, offset, length and an
 * XXH3-64 of its bytes, 24 bytes of payload instead of the line) and the
 * few records that are finally needed are read back with pread; the hash
 * catches a file that changed in between.  From a pipe or standard input
 * the line itself is kept.
 */
typedef struct stored_pos {
    uint64_t offset;
    uint64_t len;
    uint64_t hash;
} stored_pos;

typedef struct store {
    int by_position;
    int *fds;          /* per input, opened on first use; -1 = not yet */
    size_t n_fds;
    curate_buf buf;    /* the last record read back */
    stored_pos pos;    /* payload of the current record */
} store;

static void store_init(store *st, cli_run *run)
{
    memset(st, 0, sizeof *st);
    curate_buf_init(&st->buf);
    st->by_position = 1;
    for (size_t i = 0; i < run->n_inputs; i++) {
        struct stat sb;
        if (strcmp(run->inputs[i], "-") == 0 || stat(run->inputs[i], &sb) != 0 || !S_ISREG(sb.st_mode))
            st->by_position = 0;
    }
    if (!st->by_position)
        return;
    st->n_fds = run->n_inputs;
    st->fds = malloc(st->n_fds * sizeof *st->fds);
    if (!st->fds)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    for (size_t i = 0; i < st->n_fds; i++)
        st->fds[i] = -1;
}

static void store_release(store *st)
{
    for (size_t i = 0; i < st->n_fds; i++)
        if (st->fds[i] >= 0)
            close(st->fds[i]);
    free(st->fds);
    curate_buf_release(&st->buf);
}

/* The payload to keep for the current record. */
static void store_payload(store *st, const cli_run *run, const char **data, size_t *len)
{
    if (!st->by_position) {
        *data = run->line.data;
        *len = run->line.len;
        return;
    }
    st->pos.offset = run->line.offset;
    st->pos.len = run->line.len;
    st->pos.hash = curate_hash64(run->line.data, run->line.len, 0);
    *data = (const char *)&st->pos;
    *len = sizeof st->pos;
}

/* The line of a kept item (read back from its input when stored by
 * position); exits 3 when the input cannot be read or has changed. */
static void store_line(store *st, cli_run *run, const curate_sample_item *it, const char **data,
                       size_t *len)
{
    if (!st->by_position) {
        *data = it->data;
        *len = it->len;
        return;
    }
    stored_pos p;
    memcpy(&p, it->data, sizeof p);
    const char *name = run->inputs[it->source];
    if (st->fds[it->source] < 0) {
        st->fds[it->source] = open(name, O_RDONLY | O_CLOEXEC);
        if (st->fds[it->source] < 0) {
            cli_error("%s: cannot open again to read the sample: %s", name, strerror(errno));
            cli_run_abort(run, CLI_EXIT_IO);
        }
    }
    curate_buf_reset(&st->buf);
    if (p.len > SIZE_MAX - 1 || curate_buf_reserve(&st->buf, (size_t)p.len) != CURATE_OK)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    size_t got = 0;
    while (got < p.len) {
        ssize_t k = pread(st->fds[it->source], st->buf.data + got, (size_t)p.len - got,
                          (off_t)(p.offset + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            cli_error("%s:%llu: cannot read the record again: %s", name,
                      (unsigned long long)it->line, k < 0 ? strerror(errno) : "file shortened");
            cli_run_abort(run, CLI_EXIT_IO);
        }
        got += (size_t)k;
    }
    st->buf.len = got;
    st->buf.data[got] = 0;
    if (curate_hash64(st->buf.data, got, 0) != p.hash) {
        cli_error("%s:%llu: the file changed while it was being sampled", name,
                  (unsigned long long)it->line);
        cli_run_abort(run, CLI_EXIT_IO);
    }
    *data = st->buf.data;
    *len = got;
}

/*
 * Reject an item the sampler let go.  The current record is rejected as
 * it is; an earlier one is put back in run->line (and re-indexed when a
 * rejects file wants its members) so the shared writer can tag it.
 * run->input_index names the input each item came from: it is in the
 * public struct, and cli.h offers no other way to learn it.
 */
static void reject_item(cli_run *run, store *st, const curate_sample_item *it, uint64_t current)
{
    if (it->ordinal == current) {
        cli_run_reject(run, "not_sampled", NULL);
        return;
    }
    curate_line saved = run->line;
    const char *saved_name = run->input_name;
    if (run->rejects_path || !st->by_position) {
        store_line(st, run, it, &run->line.data, &run->line.len);
    } else {
        /* Only counted: the length is all that is needed. */
        stored_pos p;
        memcpy(&p, it->data, sizeof p);
        run->line.data = "";
        run->line.len = (size_t)p.len;
    }
    run->line.lineno = it->line;
    run->input_name = run->inputs[it->source];
    if (run->rejects_path)
        (void)cli_run_parse(run); /* it parsed when it was read */
    cli_run_reject(run, "not_sampled", NULL);
    run->line = saved;
    run->input_name = saved_name;
}

static void drain_dropped(cli_run *run, store *st, curate_sampler *s, uint64_t current)
{
    curate_sample_item it;
    while (curate_sampler_next_dropped(s, &it))
        reject_item(run, st, &it, current);
}

/* The record's token count into *out; 0 with the record handled per
 * --on-error when it is missing or not a non-negative integer. */
static int record_tokens(cli_run *run, uint64_t *out)
{
    curate_error err;
    const curate_member *m = curate_record_get(&run->rec, "tokens");
    int64_t v = -1;
    const char *reason = NULL;
    if (m && m->type == CURATE_JSON_NUMBER && curate_record_get_int64(&run->rec, "tokens", &v) == CURATE_OK &&
        v >= 0) {
        *out = (uint64_t)v;
        return 1;
    }
    curate_error_clear(&err);
    if (!m) {
        reason = "no_tokens";
        curate_error_set(&err, CURATE_ERR_NO_FIELD,
                         "no \"tokens\" field (--tokens needs a token count in every record; "
                         "run curate-length-bucket first)");
    } else {
        reason = "bad_tokens";
        curate_error_set(&err, CURATE_ERR_FIELD_TYPE,
                         "field \"tokens\" is not a non-negative integer: %.*s",
                         (int)(m->value_len > 40 ? 40 : m->value_len), m->value);
    }
    curate_error_at(&err, run->input_name, run->line.lineno);
    return cli_run_bad(run, reason, &err);
}

/* Shortfalls and shortages on standard error (they change what the user
 * gets, so they are said even though the run succeeds), and the per-stratum
 * table in --stats. */
static void report(cli_run *run, curate_sampler *s, const char *const *fields, size_t nf,
                   const curate_shares *shares, int by_tokens, uint64_t budget,
                   const char *alloc_label, uint64_t min_per, uint64_t seed)
{
    const char *unit = by_tokens ? "tokens" : "records";
    size_t ns = curate_sampler_strata_count(s);
    unsigned fl = curate_sampler_flags(s);
    curate_buf name;
    curate_buf_init(&name);
    uint64_t total_units = 0, sel_units = 0, sel_records = 0, shortfall = 0;
    for (size_t i = 0; i < ns; i++) {
        curate_stratum_info si;
        curate_sampler_stratum_info(s, i, &si);
        total_units += si.available;
        sel_units += si.selected;
        sel_records += si.selected_records;
        shortfall += si.shortfall;
        if (si.shortfall && !run->quiet) {
            stratum_name(fields, nf, &si, &name);
            cli_warn("stratum %s: target %llu %s, only %llu available; shortfall of %llu "
                     "redistributed", name.data, (unsigned long long)si.target, unit,
                     (unsigned long long)si.available, (unsigned long long)si.shortfall);
        }
    }
    if (!run->quiet) {
        if (shares)
            for (size_t g = 0; g < curate_shares_count(shares); g++) {
                size_t vl;
                const char *v = curate_shares_value(shares, g, &vl);
                size_t f;
                for (f = 0; f < nf; f++)
                    if (strcmp(fields[f], curate_shares_field(shares)) == 0)
                        break;
                int seen = 0;
                for (size_t i = 0; i < ns && !seen; i++) {
                    curate_stratum_info si;
                    curate_sampler_stratum_info(s, i, &si);
                    seen = si.value_lens[f] == vl && memcmp(si.values[f], v, vl) == 0;
                }
                if (!seen && curate_shares_share(shares, g) > 0)
                    cli_warn("%s=%.*s: no records; its share goes to the other values",
                             curate_shares_field(shares), (int)vl, v);
            }
        if (fl & CURATE_SAMPLE_MIN_UNMET)
            cli_warn("the per-stratum minimums add up to more than the budget; "
                     "the budget was spread evenly up to the minimums");
        if (fl & CURATE_SAMPLE_SHORT)
            cli_warn("selected %llu of the %llu %s asked for (%llu available in total)",
                     (unsigned long long)sel_units, (unsigned long long)budget, unit,
                     (unsigned long long)total_units);
    }
    /* --stats: the run's parameters, totals and one object per stratum. */
    curate_buf *x = &run->extra_stats;
    curate_buf_printf(x, ",\"sample\":{\"unit\":\"%s\",\"budget\":%llu,\"alloc\":\"%s\","
                      "\"min_per_stratum\":%llu,\"seed\":%llu,\"by\":[", unit,
                      (unsigned long long)budget, alloc_label, (unsigned long long)min_per,
                      (unsigned long long)seed);
    for (size_t f = 0; f < nf; f++) {
        if (f)
            curate_buf_append_char(x, ',');
        curate_buf_append_json_string(x, fields[f], strlen(fields[f]));
    }
    curate_buf_printf(x, "],\"available\":%llu,\"selected\":%llu,\"selected_records\":%llu,"
                      "\"shortfall\":%llu,\"short\":%s,\"minimums_unmet\":%s,\"strata_count\":%zu,"
                      "\"strata\":[", (unsigned long long)total_units, (unsigned long long)sel_units,
                      (unsigned long long)sel_records, (unsigned long long)shortfall,
                      (fl & CURATE_SAMPLE_SHORT) ? "true" : "false",
                      (fl & CURATE_SAMPLE_MIN_UNMET) ? "true" : "false", ns);
    for (size_t i = 0; i < ns; i++) {
        curate_stratum_info si;
        curate_sampler_stratum_info(s, i, &si);
        curate_buf_append_str(x, i ? ",{\"key\":{" : "{\"key\":{");
        for (size_t f = 0; f < nf; f++) {
            if (f)
                curate_buf_append_char(x, ',');
            curate_buf_append_json_string(x, fields[f], strlen(fields[f]));
            curate_buf_append_char(x, ':');
            curate_buf_append_json_string(x, si.values[f], si.value_lens[f]);
        }
        curate_buf_printf(x, "},\"records\":%llu,\"available\":%llu,\"target\":%llu,"
                          "\"quota\":%llu,\"selected\":%llu,\"selected_records\":%llu,"
                          "\"shortfall\":%llu}", (unsigned long long)si.records,
                          (unsigned long long)si.available, (unsigned long long)si.target,
                          (unsigned long long)si.quota, (unsigned long long)si.selected,
                          (unsigned long long)si.selected_records,
                          (unsigned long long)si.shortfall);
    }
    curate_buf_append_str(x, "]}");
    curate_buf_release(&name);
}

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    char *by_arg = NULL;
    const char *alloc_arg = "equal";
    uint64_t n_records = 0, n_tokens = 0, min_per = 0, seed = 0;
    size_t max_strata = CURATE_SAMPLE_DEFAULT_MAX_STRATA;
    int have_n = 0, have_tokens = 0;
    const char *arg;
    int optind_ = 0, id;
    while ((id = cli_getopt(argc, argv, &arg, &optind_)) != -1) {
        if (cli_run_option(&run, id, arg))
            continue;
        switch (id) {
        case OPT_BY: by_arg = (char *)arg; break;
        case OPT_N:
            n_records = cli_parse_u64("--n", arg, 1, CURATE_SAMPLE_MAX_UNITS, 0);
            have_n = 1;
            break;
        case OPT_TOKENS:
            n_tokens = cli_parse_u64("--tokens", arg, 1, CURATE_SAMPLE_MAX_UNITS, 1);
            have_tokens = 1;
            break;
        case OPT_ALLOC: alloc_arg = arg; break;
        case OPT_MIN: min_per = cli_parse_u64("--min-per-stratum", arg, 0, CURATE_SAMPLE_MAX_UNITS, 1); break;
        case OPT_SEED: seed = cli_parse_u64("--seed", arg, 0, UINT64_MAX, 0); break;
        case OPT_MAX_STRATA:
            max_strata = (size_t)cli_parse_u64("--max-strata", arg, 1, 1000000, 0);
            break;
        default: cli_usage_error("unexpected option");
        }
    }
    if (have_n == have_tokens)
        cli_usage_error(have_n ? "--n and --tokens cannot be used together"
                               : "give the sample size with --n N or --tokens N");
    int by_tokens = have_tokens;
    uint64_t budget = by_tokens ? n_tokens : n_records;

    /* --alloc: a keyword, else shares inline (they always hold '='), else
     * a file; a bad shares file is the user's input, a missing one I/O. */
    curate_alloc_mode mode;
    curate_shares *shares = NULL;
    curate_error err;
    curate_error_clear(&err);
    if (strcmp(alloc_arg, "equal") == 0) {
        mode = CURATE_ALLOC_EQUAL;
    } else if (strcmp(alloc_arg, "proportional") == 0) {
        mode = CURATE_ALLOC_PROPORTIONAL;
    } else {
        mode = CURATE_ALLOC_SHARES;
        if (alloc_arg[0] == '@') {
            shares = curate_shares_load(alloc_arg + 1, &err);
            if (!shares) {
                cli_error_lib(&err);
                return err.code == CURATE_ERR_IO ? CLI_EXIT_IO : CLI_EXIT_USAGE;
            }
        } else {
            if (!strchr(alloc_arg, '='))
                cli_usage_error("--alloc: '%s' is not equal, proportional, FIELD=VALUE:SHARE,... "
                                "or @FILE", alloc_arg);
            shares = curate_shares_parse(alloc_arg, strlen(alloc_arg), &err);
            if (!shares)
                cli_usage_error("--alloc: %s", err.message);
        }
    }

    /* Without --by, explicit shares stratify by their own field. */
    char *fields[64];
    size_t nf = 0;
    if (by_arg && *by_arg)
        nf = split_fields(by_arg, fields, sizeof fields / sizeof fields[0]);
    else if (by_arg)
        cli_usage_error("--by: empty field list");
    if (shares) {
        const char *sf = curate_shares_field(shares);
        size_t f;
        for (f = 0; f < nf; f++)
            if (strcmp(fields[f], sf) == 0)
                break;
        if (nf == 0)
            fields[nf++] = (char *)sf;
        else if (f == nf)
            cli_usage_error("--alloc: the shares' field '%s' is not one of the --by fields", sf);
    }

    curate_sampler_opts so = {
        (const char *const *)fields, nf, by_tokens, budget, mode, shares, min_per, max_strata,
    };
    curate_sampler *s = curate_sampler_init(&so, &err);
    if (!s) {
        cli_error_lib(&err);
        return err.code == CURATE_ERR_NOMEM ? CLI_EXIT_INTERNAL : CLI_EXIT_USAGE;
    }
    curate_rng rng;
    curate_rng_seed(&rng, seed);

    /* The one pass: every valid record goes to its stratum's reservoir;
     * whatever the sampler lets go is accounted for at once. */
    cli_run_start(&run, argc - optind_, argv + optind_);
    store stor;
    store_init(&stor, &run);
    while (cli_run_next(&run)) {
        if (!cli_run_parse(&run))
            continue;
        uint64_t cost = 1;
        if (by_tokens && !record_tokens(&run, &cost))
            continue;
        size_t si;
        err.has_offset = 0; /* a full clear per record would cost ~1.5% */
        curate_status st = curate_sampler_stratum_of(s, &run.rec, &si, &err);
        if (st == CURATE_ERR_TOO_LARGE) {
            curate_error_at(&err, run.input_name, run.line.lineno);
            cli_error_lib(&err);
            cli_run_abort(&run, CLI_EXIT_DATA);
        }
        if (st == CURATE_ERR_NOMEM) {
            cli_error("out of memory");
            cli_run_abort(&run, CLI_EXIT_INTERNAL);
        }
        if (st != CURATE_OK) {
            curate_error_at(&err, run.input_name, run.line.lineno);
            cli_run_bad(&run, "bad_key", &err);
            continue;
        }
        curate_sample_item item = {NULL, 0, run.records_read, cost, run.line.lineno,
                                   (uint32_t)run.input_index, 0};
        store_payload(&stor, &run, &item.data, &item.len);
        st = curate_sampler_add(s, si, &item, &rng, &err);
        if (st != CURATE_OK) {
            cli_error_lib(&err);
            cli_run_abort(&run, st == CURATE_ERR_RANGE ? CLI_EXIT_DATA : CLI_EXIT_INTERNAL);
        }
        drain_dropped(&run, &stor, s, run.records_read);
    }

    curate_error_clear(&err);
    if (curate_sampler_finish(s, budget, &err) != CURATE_OK) {
        cli_error_lib(&err);
        cli_run_abort(&run, CLI_EXIT_INTERNAL);
    }
    for (size_t i = 0; i < curate_sampler_selected_count(s); i++) {
        const char *data;
        size_t len;
        store_line(&stor, &run, curate_sampler_selected(s, i), &data, &len);
        cli_run_write_line(&run, data, len);
    }
    for (size_t i = 0; i < curate_sampler_unselected_count(s); i++)
        reject_item(&run, &stor, curate_sampler_unselected(s, i), UINT64_MAX);

    report(&run, s, (const char *const *)fields, nf, shares, by_tokens, budget, alloc_name(mode),
           min_per, seed);
    int rc = cli_run_finish(&run);
    store_release(&stor);
    curate_sampler_free(s);
    curate_shares_free(shares);
    return rc;
}
